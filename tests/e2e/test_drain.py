"""A node drains on SIGTERM (issue 17): it refuses new connections at once, answers the
requests it has, lets running invocations, async events and event source batches finish,
then exits; `--drain-timeout` bounds the wait, and what is left then is ended."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import threading
import time

import boto3
from botocore.config import Config

from helpers import ADMIN_KEY_ID, ADMIN_SECRET, REGION, create_function, make_zip, wait_for

SLEEPER = """
import time
def handler(event, context):
    print("BEGIN", event["id"], flush=True)
    time.sleep(event.get("sleep", 0))
    print("MARKER", event["id"], flush=True)
    return {"slept": event.get("sleep", 0), "id": event["id"]}
"""

SQS_SLEEPER = """
import json, time
def handler(event, context):
    for record in event.get("Records", []):
        body = json.loads(record["body"])
        print("BEGIN", body["id"], flush=True)
        time.sleep(body["sleep"])
        print("MARKER", body["id"], flush=True)
"""


def _lambda(node, read_timeout: int = 60):
    """A Lambda client of `node` that never retries: an answer is the first request's."""
    return boto3.session.Session().client(
        "lambda", endpoint_url=node.endpoint, region_name=REGION, aws_access_key_id=ADMIN_KEY_ID,
        aws_secret_access_key=ADMIN_SECRET,
        config=Config(retries={"max_attempts": 0}, read_timeout=read_timeout, connect_timeout=5))


def _sleeper(node, name: str = "sleeper", code: str = SLEEPER):
    lam = node.lambda_client()
    create_function(lam, name, "python3.11", "index.handler", make_zip({"index.py": code}), Timeout=30)
    # Warm: the invocations under test are running their handler, not starting.
    r = lam.invoke(FunctionName=name, Payload=json.dumps({"id": "warm"}).encode())
    assert r["StatusCode"] == 200 and "FunctionError" not in r, r
    return lam


def _lines(node, text: str) -> list[str]:
    """The function's log lines holding `text`, through CloudWatch Logs (the node is up)."""
    events = node.logs_client().filter_log_events(logGroupName="/aws/lambda/sleeper", filterPattern=f'"{text}"')
    return [e["message"] for e in events["events"]]


def _running(node, event_id: str) -> None:
    """Waits until the handler is running with `event_id` (its first line is logged)."""
    wait_for(lambda: _lines(node, f"BEGIN {event_id}"), timeout=20, interval=0.1, what=f"{event_id} to be running")


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def _markers(node) -> list[str]:
    """The ids the function printed, from the log files in the node's data directory (read
    while it is down)."""
    found = []
    for path in node.data_dir.glob("logs/**/*.jsonl"):
        for line in path.read_text(errors="replace").splitlines():
            try:
                message = json.loads(line).get("m", "")
            except ValueError:
                continue
            if message.startswith("MARKER "):
                found.append(message.split()[1])
    return found


def _server_log(node) -> str:
    return node.log_path.read_text(errors="replace")


def test_a_sync_invoke_in_progress_is_answered_and_new_connections_refused(server_factory):
    s = server_factory()
    _sleeper(s)
    # An idle kept-alive connection, which the drain closes.
    idle = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
    idle.request("GET", "/health")
    assert idle.getresponse().read()
    result: dict = {}

    def call():
        started = time.monotonic()
        try:
            r = _lambda(s).invoke(FunctionName="sleeper", Payload=json.dumps({"id": "sync", "sleep": 3}).encode())
            result["answer"] = (r["StatusCode"], r.get("FunctionError"), json.loads(r["Payload"].read()))
        except Exception as e:  # noqa: BLE001: the test says what happened
            result["error"] = repr(e)
        result["took"] = time.monotonic() - started
        result["ended"] = time.monotonic()

    t = threading.Thread(target=call)
    t.start()
    _running(s, "sync")
    s.proc.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    wait_for(lambda: _refused(s.port), timeout=2, interval=0.05, what="new connections refused")
    assert t.is_alive(), f"the invoke ended before the listener closed: {result}"
    # The idle connection is closed by the server (EOF), not left open.
    idle.sock.settimeout(5)
    assert idle.sock.recv(1) == b"", "an idle kept-alive connection stays open through the drain"
    t.join(timeout=30)
    assert "error" not in result, result
    assert result["answer"] == (200, None, {"slept": 3, "id": "sync"}), result
    assert result["took"] >= 3, result
    rc = s.proc.wait(timeout=max(1.0, result["ended"] + 5 - time.monotonic()))
    assert rc == 0
    print(f"answered {result['ended'] - signalled:.1f} s after SIGTERM; exited {time.monotonic() - result['ended']:.1f} s later")
    log = _server_log(s)
    assert "draining: no new connections or work" in log, log[-3000:]
    assert "drained in" in log, log[-3000:]
    s.stop()


def test_an_async_event_in_progress_completes_on_the_node_and_runs_once(server_factory):
    s = server_factory()
    lam = _sleeper(s)
    r = lam.invoke(FunctionName="sleeper", InvocationType="Event", Payload=json.dumps({"id": "event-1", "sleep": 3}).encode())
    assert r["StatusCode"] == 202
    _running(s, "event-1")
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(timeout=15) == 0
    s.stop()
    assert _markers(s).count("event-1") == 1, _markers(s)
    # It was running when the drain began.
    started = [line for line in _server_log(s).splitlines() if "draining: no new connections or work" in line]
    assert len(started) == 1 and "1 async event" in started[0], started
    # The same data directory again: the event was completed, not left to run twice.
    s.start()
    time.sleep(4)
    s.stop()
    assert _markers(s).count("event-1") == 1, _markers(s)


def test_an_event_source_batch_in_progress_finishes_and_its_messages_are_deleted(server_factory):
    s = server_factory()
    lam = _sleeper(s, code=SQS_SLEEPER)
    sqs = s.client("sqs")
    url = sqs.create_queue(QueueName="jobs", Attributes={"VisibilityTimeout": "2"})["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName="sleeper", BatchSize=1)
    time.sleep(1)  # the pollers are long-polling
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"id": "message-1", "sleep": 3}))
    _running(s, "message-1")
    s.proc.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    assert s.proc.wait(timeout=15) == 0
    # Not held up by the pollers' 20 s long polls.
    assert time.monotonic() - signalled < 12
    s.stop()
    assert _markers(s).count("message-1") == 1, _markers(s)
    # Deleted: it does not come back after its visibility timeout (2 s) on the next start.
    s.start()
    time.sleep(4)
    attributes = s.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    s.stop()
    assert _markers(s).count("message-1") == 1, _markers(s)
    assert (attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesNotVisible"]) == ("0", "0")


def test_the_drain_timeout_ends_what_is_left(server_factory):
    """At the deadline the invoke in progress is cut off and the async event in progress is
    left as it was: it runs again at the next start (its cut-off attempt is no failure: with
    no retries allowed, a failure would end it for good)."""
    s = server_factory(args=["--drain-timeout", "1"])
    lam = _sleeper(s)
    lam.put_function_event_invoke_config(FunctionName="sleeper", MaximumRetryAttempts=0)
    r = lam.invoke(FunctionName="sleeper", InvocationType="Event", Payload=json.dumps({"id": "cut", "sleep": 8}).encode())
    assert r["StatusCode"] == 202
    result: dict = {}

    def call():
        try:
            r = _lambda(s).invoke(FunctionName="sleeper", Payload=json.dumps({"id": "long", "sleep": 10}).encode())
            result["answer"] = (r["StatusCode"], r.get("FunctionError"), r["Payload"].read())
        except Exception as e:  # noqa: BLE001: being cut off is the point
            result["error"] = repr(e)

    t = threading.Thread(target=call)
    t.start()
    _running(s, "cut")
    _running(s, "long")
    s.proc.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    assert s.proc.wait(timeout=15) == 0
    took = time.monotonic() - signalled
    t.join(timeout=15)
    s.stop()
    assert took < 8, f"exited {took:.1f} s after SIGTERM with a 1 s drain"
    # Cut off: the connection is dropped (no answer made of the stop, such as the runtime
    # exiting when its environment is killed).
    assert "error" in result, f"the 10 s invoke was answered: {result}"
    left = [line for line in _server_log(s).splitlines() if "draining: the deadline (1 s) passed with" in line]
    assert len(left) == 1 and "1 async event" in left[0] and "API connections still in progress" in left[0], left
    assert _markers(s).count("cut") == 0
    s.start()
    wait_for(lambda: _lines(s, "MARKER cut"), timeout=30, what="the cut-off event to run again")
    s.stop()
    assert _markers(s).count("cut") == 1, _markers(s)
    assert "long" not in _markers(s)



def test_a_second_signal_ends_the_drain_at_once(server_factory):
    s = server_factory()
    _sleeper(s)
    t = threading.Thread(target=lambda: _swallow(lambda: _lambda(s).invoke(
        FunctionName="sleeper", Payload=json.dumps({"id": "second", "sleep": 10}).encode())))
    t.start()
    _running(s, "second")
    s.proc.send_signal(signal.SIGTERM)
    time.sleep(1)
    assert s.proc.poll() is None, "the first signal did not wait for the invoke"
    s.proc.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    assert s.proc.wait(timeout=15) == 0
    assert time.monotonic() - signalled < 8
    t.join(timeout=15)
    s.stop()
    assert "draining: a second signal came with 1 invocation" in _server_log(s), _server_log(s)[-3000:]


def _swallow(call) -> None:
    try:
        call()
    except Exception:  # noqa: BLE001: the invoke is cut off
        pass

"""A node on PostgreSQL when the database goes away and comes back (issue 17): requests
that need it fail with AWS's ServiceException (500), warm invokes of functions it knows keep
working, and the node recovers by itself when the database returns. And a database that is
not there at start is a clear error."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from helpers import create_function, make_zip, run_here, wait_for

SCRIPT = str(Path(__file__).resolve().parents[2] / "scripts" / "pg-throwaway")

CODE = """
def handler(event, context):
    print("RAN", event.get("id", "-"))
    return {"ok": True, "event": event}
"""


@pytest.fixture
def own_postgres():
    """A PostgreSQL server of this test's own, which it may stop and start again."""
    d = tempfile.mkdtemp(prefix="nimbus-pg-fault-")
    url = subprocess.run([SCRIPT, "start", d], check=True, capture_output=True, text=True, timeout=120).stdout.strip()

    def run(cmd: str) -> None:
        subprocess.run([SCRIPT, cmd, d], check=True, capture_output=True, timeout=120)

    yield url, run
    subprocess.run([SCRIPT, "stop", d], capture_output=True, timeout=120)


def test_a_database_outage_fails_what_needs_it_and_heals(server_factory, tmp_path, own_postgres):
    url, pg = own_postgres
    node = server_factory(args=["--store", f"{url}/postgres"])
    lam = node.lambda_client()
    create_function(lam, "steady", "python3.11", "index.handler", make_zip({"index.py": CODE}))
    assert json.loads(lam.invoke(FunctionName="steady", Payload=b'{"id":"warm"}')["Payload"].read())["ok"]

    # Idle long enough for the node to give back its unused share of the concurrency limit
    # (every second): the warm invokes below cannot lease one again.
    time.sleep(2.5)
    pg("pause")
    try:
        # A warm invoke of a function the node knows never reads the store.
        for i in range(3):
            r = lam.invoke(FunctionName="steady", Payload=json.dumps({"id": f"down{i}"}).encode())
            assert r["StatusCode"] == 200 and "FunctionError" not in r
        # What needs the database fails as AWS fails, quickly, and acknowledges nothing.
        for call in (lambda: lam.list_functions(),
                     lambda: lam.get_function(FunctionName="steady"),
                     lambda: lam.invoke(FunctionName="steady", InvocationType="Event", Payload=b'{"id":"lost"}')):
            started = time.monotonic()
            with pytest.raises(ClientError) as e:
                call()
            assert e.value.response["Error"]["Code"] == "ServiceException", e.value.response
            assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
            assert time.monotonic() - started < 15, "a dead database must not hang requests"
        assert node.proc.poll() is None, "the node stays up"
    finally:
        pg("resume")

    # Back by itself: reads, writes and async events work again.
    wait_for(lambda: lam.list_functions()["Functions"], timeout=20, what="ListFunctions after the database returned")
    lam.update_function_configuration(FunctionName="steady", Description="after the outage")
    r = lam.invoke(FunctionName="steady", InvocationType="Event", Payload=b'{"id":"after"}')
    assert r["StatusCode"] == 202
    logs = node.logs_client()

    def ran_after() -> bool:
        events = logs.filter_log_events(logGroupName="/aws/lambda/steady", filterPattern='"RAN after"')["events"]
        return bool(events)

    wait_for(ran_after, timeout=30, what="the event accepted after the outage to run")
    # The lines the warm invokes printed while the database was away were kept (spooled and
    # in memory) and written once it was back.
    down = logs.filter_log_events(logGroupName="/aws/lambda/steady", filterPattern='"RAN down"')["events"]
    assert sorted(e["message"].split()[1] for e in down) == ["down0", "down1", "down2"]


def test_an_unreachable_database_at_start_is_a_clear_error(server_factory, own_postgres):
    url, pg = own_postgres
    pg("pause")
    s = server_factory(args=["--store", f"{url}/postgres"], start=False)
    with pytest.raises(RuntimeError) as e:
        s.start(timeout=30)
    assert "opening the database" in str(e.value) and "error connecting to server" in str(e.value), str(e.value)



def test_unreachable_blob_storage_fails_only_what_needs_it(server_factory, tmp_path):
    """The S3-compatible storage of `--blobs` goes away: a node that has a function's code
    runs it, a node that must fetch it answers a clear error, S3 objects whose bodies live
    there cannot be read, and everything else (queues, tables, functions' records) works."""
    from test_cluster_events import _cluster

    backing, (a, b) = _cluster(server_factory, tmp_path, 2)
    create_function(a.lambda_client(), "fetched", "python3.11", "index.handler", make_zip({"index.py": CODE}))
    # Pinned to a: were b the function's home, a forwarded invoke would leave the code on b.
    lam_a = a.lambda_client()
    lam_a.meta.events.register("before-sign.lambda.Invoke", run_here)
    assert json.loads(lam_a.invoke(FunctionName="fetched", Payload=b'{"id": "before"}')["Payload"].read())["ok"]
    a.client("s3").create_bucket(Bucket="bodies")
    a.client("s3").put_object(Bucket="bodies", Key="big", Body=os.urandom(200_000))
    backing.stop()

    # A node with the code runs it.
    assert json.loads(lam_a.invoke(FunctionName="fetched", Payload=b'{"id": "warm"}')["Payload"].read())["ok"]
    # A node without it (pinned, not forwarded to a) says why it cannot start it.
    lam_b = b.lambda_client()
    lam_b.meta.events.register("before-sign.lambda.Invoke", run_here)
    with pytest.raises(ClientError) as e:
        lam_b.invoke(FunctionName="fetched", Payload=b'{"id": "cold"}')
    err = e.value.response
    assert err["ResponseMetadata"]["HTTPStatusCode"] >= 500, err
    assert "code" in err["Error"]["Message"].lower() or "blob" in err["Error"]["Message"].lower(), err
    # An object whose body is in the storage cannot be read; everything else goes on.
    with pytest.raises(ClientError) as e:
        b.client("s3").get_object(Bucket="bodies", Key="big")["Body"].read()
    assert e.value.response["Error"]["Code"] == "InternalError"
    q = b.client("sqs").create_queue(QueueName="still-works")["QueueUrl"]
    b.client("sqs").send_message(QueueUrl=q, MessageBody="hi")
    assert a.client("sqs").receive_message(QueueUrl=q, WaitTimeSeconds=2)["Messages"][0]["Body"] == "hi"
    assert b.lambda_client().get_function(FunctionName="fetched")["Configuration"]["FunctionName"] == "fetched"

"""Asynchronous invocation: 202 after the event is stored durably, retries per the
event-invoke config, throttles that wait instead of failing, destinations with AWS's
invocation record, and no acknowledged event lost to `kill -9`."""

import json
import time

import pytest
from botocore.exceptions import ClientError

from helpers import expect_error as expect, ACCOUNT, arn, client_error, create_function, make_zip, unique, wait_for

RECORDER = {"index.js": "exports.handler = async (e) => { console.log('RECORD ' + JSON.stringify(e)); return 'ok'; };"}
FLAKY = {"index.js": "exports.handler = async (e) => { console.log('ATTEMPT ' + JSON.stringify(e)); if (e.fail) throw new Error('nope ' + e.n); return { got: e.n }; };"}


def group_lines(logs, name, needle=""):
    try:
        events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}", filterPattern=f'"{needle}"' if needle else "")["events"]
    except ClientError:
        return []
    return [e["message"] for e in events]


def records(logs, name):
    return [json.loads(m.split("RECORD ", 1)[1]) for m in group_lines(logs, name, "RECORD ") if "RECORD " in m]



@pytest.fixture
def fast_retries(server_factory):
    s = server_factory(args=["--async-retry-delay-ms", "200"])
    return s, s.lambda_client(), s.lambda_client(validate=False), s.logs_client()


def test_event_invoke_is_accepted_and_runs(lam, logs, make_fn):
    fn = make_fn("nodejs20.x", RECORDER, "index.handler")
    r = lam.invoke(FunctionName=fn.name, InvocationType="Event", Payload=json.dumps({"hello": "async"}))
    assert r["StatusCode"] == 202
    request_id = r["ResponseMetadata"]["RequestId"]
    assert r["Payload"].read() == b""
    got = wait_for(lambda: records(logs, fn.name), timeout=15, what="the async event to run")
    assert got == [{"hello": "async"}]
    starts = wait_for(lambda: group_lines(logs, fn.name, f"START RequestId: {request_id}"), timeout=5, what="START line")
    assert len(starts) == 1
    assert lam.invoke(FunctionName=fn.name, InvocationType="DryRun")["StatusCode"] == 204
    expect(lambda: lam.invoke(FunctionName=unique("none"), InvocationType="Event", Payload=b"{}"), "ResourceNotFoundException", 404)
    expect(lambda: lam.invoke(FunctionName=fn.name, InvocationType="Event", Payload=json.dumps({"x": "y" * (1024 * 1024)})),
           "RequestTooLargeException", 413)


def test_retries_then_on_failure_destination(fast_retries):
    _, lam, _, logs = fast_retries
    create_function(lam, "flaky", "nodejs20.x", "index.handler", make_zip(FLAKY))
    create_function(lam, "sink", "nodejs20.x", "index.handler", make_zip(RECORDER))
    cfg = lam.put_function_event_invoke_config(
        FunctionName="flaky", MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": arn("sink")}})
    assert cfg["MaximumRetryAttempts"] == 1
    r = lam.invoke(FunctionName="flaky", InvocationType="Event", Payload=json.dumps({"fail": True, "n": 7}))
    request_id = r["ResponseMetadata"]["RequestId"]
    got = wait_for(lambda: records(logs, "sink"), timeout=20, what="the failure record")
    rec = got[0]
    assert rec["version"] == "1.0"
    assert rec["requestContext"]["requestId"] == request_id
    assert rec["requestContext"]["condition"] == "RetriesExhausted"
    assert rec["requestContext"]["approximateInvokeCount"] == 2
    assert rec["requestContext"]["functionArn"] == arn("flaky") + ":$LATEST"
    assert rec["requestPayload"] == {"fail": True, "n": 7}
    assert rec["responseContext"]["functionError"] == "Unhandled"
    assert rec["responsePayload"]["errorMessage"] == "nope 7"
    attempts = group_lines(logs, "flaky", f"START RequestId: {request_id}")
    assert len(attempts) == 2, attempts


def test_on_success_destination(fast_retries):
    _, lam, _, logs = fast_retries
    create_function(lam, "works", "nodejs20.x", "index.handler", make_zip(FLAKY))
    create_function(lam, "okSink", "nodejs20.x", "index.handler", make_zip(RECORDER))
    lam.put_function_event_invoke_config(FunctionName="works", DestinationConfig={"OnSuccess": {"Destination": arn("okSink")}})
    lam.invoke(FunctionName="works", InvocationType="Event", Payload=json.dumps({"n": 3}))
    rec = wait_for(lambda: records(logs, "okSink"), timeout=15, what="the success record")[0]
    assert rec["requestContext"]["condition"] == "Success"
    assert rec["requestContext"]["approximateInvokeCount"] == 1
    assert rec["responsePayload"] == {"got": 3}
    assert rec["responseContext"]["statusCode"] == 200


def test_throttled_events_wait(fast_retries):
    _, lam, _, logs = fast_retries
    create_function(lam, "held", "nodejs20.x", "index.handler", make_zip(RECORDER))
    lam.put_function_concurrency(FunctionName="held", ReservedConcurrentExecutions=0)
    lam.invoke(FunctionName="held", InvocationType="Event", Payload=json.dumps({"held": 1}))
    time.sleep(1.5)
    assert records(logs, "held") == []
    lam.delete_function_concurrency(FunctionName="held")
    assert wait_for(lambda: records(logs, "held"), timeout=15, what="the throttled event") == [{"held": 1}]


def test_event_invoke_config_api(lam, lam_raw, make_fn):
    fn = make_fn("nodejs20.x", RECORDER, "index.handler", Publish=True)
    expect(lambda: lam.get_function_event_invoke_config(FunctionName=fn.name), "ResourceNotFoundException", 404)
    put = lam.put_function_event_invoke_config(FunctionName=fn.name, MaximumRetryAttempts=0, MaximumEventAgeInSeconds=120)
    assert (put["MaximumRetryAttempts"], put["MaximumEventAgeInSeconds"]) == (0, 120)
    assert put["FunctionArn"] == arn(fn.name) + ":$LATEST"
    upd = lam.update_function_event_invoke_config(FunctionName=fn.name, DestinationConfig={"OnFailure": {"Destination": arn(fn.name)}})
    assert upd["MaximumRetryAttempts"] == 0 and upd["DestinationConfig"]["OnFailure"]["Destination"] == arn(fn.name)
    lam.put_function_event_invoke_config(FunctionName=fn.name, Qualifier="1", MaximumRetryAttempts=2)
    listed = lam.list_function_event_invoke_configs(FunctionName=fn.name)["FunctionEventInvokeConfigs"]
    assert sorted(c["FunctionArn"] for c in listed) == sorted([arn(fn.name) + ":$LATEST", arn(fn.name) + ":1"])
    # Put replaces everything: the destination is gone.
    assert "OnFailure" not in lam.put_function_event_invoke_config(FunctionName=fn.name)["DestinationConfig"]
    lam.delete_function_event_invoke_config(FunctionName=fn.name)
    expect(lambda: lam.delete_function_event_invoke_config(FunctionName=fn.name), "ResourceNotFoundException", 404)
    expect(lambda: lam_raw.put_function_event_invoke_config(FunctionName=fn.name, MaximumRetryAttempts=3), "ValidationException", 400)
    expect(lambda: lam_raw.put_function_event_invoke_config(FunctionName=fn.name, MaximumEventAgeInSeconds=30), "ValidationException", 400)
    expect(lambda: lam.put_function_event_invoke_config(FunctionName=fn.name, Qualifier="9"), "ResourceNotFoundException", 404)
    expect(lambda: lam.put_function_event_invoke_config(FunctionName=fn.name, DestinationConfig={"OnSuccess": {"Destination": "nope"}}),
           "InvalidParameterValueException", 400)
    expect(lambda: lam.update_function_configuration(FunctionName=fn.name, DeadLetterConfig={"TargetArn": arn(fn.name)}),
           "InvalidParameterValueException", 400)
    dlq = f"arn:aws:sqs:us-east-1:{ACCOUNT}:dlq"
    assert lam.update_function_configuration(FunctionName=fn.name, DeadLetterConfig={"TargetArn": dlq})["DeadLetterConfig"] == {"TargetArn": dlq}


def test_accepted_events_survive_kill_9(server_factory):
    s = server_factory()
    lam, logs = s.lambda_client(), s.logs_client()
    slow = {"index.js": "exports.handler = async (e) => { await new Promise(r => setTimeout(r, 300)); console.log('DONE ' + e.n); };"}
    create_function(lam, "slow", "nodejs20.x", "index.handler", make_zip(slow))
    lam.put_function_concurrency(FunctionName="slow", ReservedConcurrentExecutions=2)
    accepted = [lam.invoke(FunctionName="slow", InvocationType="Event", Payload=json.dumps({"n": i}))["StatusCode"] for i in range(30)]
    assert accepted == [202] * 30
    s.kill()  # SIGKILL: no chance to flush anything
    s.start()
    logs = s.logs_client()

    def done():
        ns = {int(m.split("DONE ")[1].split()[0]) for m in group_lines(logs, "slow", "DONE ")}
        return ns if ns == set(range(30)) else None

    assert wait_for(done, timeout=60, interval=1, what="all 30 events after kill -9")


def test_dead_letter_queue_and_sqs_destination(fast_retries):
    s, lam, _, logs = fast_retries
    sqs = s.sqs_client()
    dlq_url = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    dest_url = sqs.create_queue(QueueName="records")["QueueUrl"]
    arn_of = lambda url: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    create_function(lam, "doomed", "nodejs20.x", "index.handler", make_zip(FLAKY),
                    DeadLetterConfig={"TargetArn": arn_of(dlq_url)})
    lam.put_function_event_invoke_config(FunctionName="doomed", MaximumRetryAttempts=0)
    r = lam.invoke(FunctionName="doomed", InvocationType="Event", Payload=json.dumps({"fail": True, "n": 1}))
    request_id = r["ResponseMetadata"]["RequestId"]

    def dead_letter():
        got = sqs.receive_message(QueueUrl=dlq_url, MessageAttributeNames=["All"], WaitTimeSeconds=1)
        return got.get("Messages")

    msg = wait_for(dead_letter, timeout=20, what="the dead letter")[0]
    assert json.loads(msg["Body"]) == {"fail": True, "n": 1}
    attrs = {k: v["StringValue"] for k, v in msg["MessageAttributes"].items()}
    assert attrs["RequestID"] == request_id and attrs["ErrorMessage"] == "nope 1" and attrs["ErrorCode"] == "200"

    # With an OnFailure destination the record goes there instead.
    lam.put_function_event_invoke_config(FunctionName="doomed", MaximumRetryAttempts=0,
                                         DestinationConfig={"OnFailure": {"Destination": arn_of(dest_url)}})
    lam.invoke(FunctionName="doomed", InvocationType="Event", Payload=json.dumps({"fail": True, "n": 2}))
    rec = wait_for(lambda: sqs.receive_message(QueueUrl=dest_url, WaitTimeSeconds=1).get("Messages"), timeout=20,
                   what="the failure record")[0]
    body = json.loads(rec["Body"])
    assert body["requestContext"]["condition"] == "RetriesExhausted" and body["requestPayload"] == {"fail": True, "n": 2}

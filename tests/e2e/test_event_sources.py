"""SQS event source mappings: the API, AWS's SQS event records, batches, partial batch
failures, redrive to the dead-letter queue, FIFO order, and disabled mappings."""

import json
import time

import pytest
from botocore.exceptions import ClientError

from helpers import expect_error as expect, client_error, create_function, make_zip, unique, wait_for

RECORDING = {"index.js": """
exports.handler = async (event) => {
  for (const r of event.Records) console.log('REC ' + JSON.stringify(r));
  const failures = event.Records.filter(r => r.body.startsWith('bad')).map(r => ({ itemIdentifier: r.messageId }));
  if (event.Records.some(r => r.body === 'explode')) throw new Error('whole batch fails');
  return { batchItemFailures: failures };
};
"""}


def records(logs, name):
    try:
        events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}", filterPattern='"REC "')["events"]
    except ClientError:
        return []
    return [json.loads(e["message"].split("REC ", 1)[1]) for e in events if "REC " in e["message"]]



@pytest.fixture
def env(server_factory):
    s = server_factory()
    return s.lambda_client(), s.sqs_client(), s.logs_client()


def queue(sqs, name, **attrs):
    url = sqs.create_queue(QueueName=name, Attributes={k: str(v) for k, v in attrs.items()})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def counts(sqs, url):
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


def test_mapping_api(env):
    lam, sqs, _ = env
    create_function(lam, "worker", "nodejs20.x", "index.handler", make_zip(RECORDING))
    url, arn = queue(sqs, "jobs")
    m = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="worker", BatchSize=5)
    assert m["State"] == "Creating" and m["BatchSize"] == 5 and m["EventSourceArn"] == arn
    assert m["FunctionArn"].endswith(":function:worker")
    got = lam.get_event_source_mapping(UUID=m["UUID"])
    assert got["State"] == "Enabled"
    assert [x["UUID"] for x in lam.list_event_source_mappings(FunctionName="worker")["EventSourceMappings"]] == [m["UUID"]]
    assert [x["UUID"] for x in lam.list_event_source_mappings(EventSourceArn=arn)["EventSourceMappings"]] == [m["UUID"]]
    expect(lambda: lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="worker"), "ResourceConflictException", 409)
    upd = lam.update_event_source_mapping(UUID=m["UUID"], Enabled=False, BatchSize=20, MaximumBatchingWindowInSeconds=1)
    assert upd["State"] == "Disabling"  # as AWS answers a change that turns a mapping off
    got = lam.get_event_source_mapping(UUID=m["UUID"])
    assert (got["State"], got["BatchSize"], got["MaximumBatchingWindowInSeconds"]) == ("Disabled", 20, 1)
    assert lam.delete_event_source_mapping(UUID=m["UUID"])["State"] == "Deleting"
    expect(lambda: lam.get_event_source_mapping(UUID=m["UUID"]), "ResourceNotFoundException", 404)
    # Bad input.
    expect(lambda: lam.create_event_source_mapping(EventSourceArn=arn.replace("jobs", "nope"), FunctionName="worker"),
           "InvalidParameterValueException", 400)
    # AWS answers a missing function with 400 "Function does not exist" here.
    msg = expect(lambda: lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="ghost"), "InvalidParameterValueException", 400)
    assert msg == "Function does not exist"
    expect(lambda: lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="worker", BatchSize=11),
           "InvalidParameterValueException", 400)
    _, fifo_arn = queue(sqs, "jobs.fifo", FifoQueue="true")
    expect(lambda: lam.create_event_source_mapping(EventSourceArn=fifo_arn, FunctionName="worker", BatchSize=20,
                                                   MaximumBatchingWindowInSeconds=1), "InvalidParameterValueException", 400)


def test_messages_reach_the_function_as_sqs_records(env):
    lam, sqs, logs = env
    create_function(lam, "worker", "nodejs20.x", "index.handler", make_zip(RECORDING))
    url, arn = queue(sqs, "work")
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="worker", BatchSize=10)
    sqs.send_message(QueueUrl=url, MessageBody="first", MessageAttributes={"kind": {"DataType": "String", "StringValue": "greeting"}})
    for i in range(24):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")
    got = wait_for(lambda: (r := records(logs, "worker")) and len(r) >= 25 and r, timeout=30, what="25 records")
    assert sorted(r["body"] for r in got) == sorted(["first"] + [f"m{i}" for i in range(24)])
    first = [r for r in got if r["body"] == "first"][0]
    assert first["eventSource"] == "aws:sqs" and first["eventSourceARN"] == arn and first["awsRegion"] == "us-east-1"
    assert first["messageAttributes"]["kind"]["stringValue"] == "greeting"
    assert first["messageAttributes"]["kind"]["dataType"] == "String"
    assert {"ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} <= set(first["attributes"])
    assert first["md5OfBody"] and first["receiptHandle"] and first["messageId"]
    assert wait_for(lambda: counts(sqs, url) == (0, 0), timeout=10, what="the queue to empty")


def test_partial_batch_failures_and_redrive(env):
    lam, sqs, logs = env
    create_function(lam, "worker", "nodejs20.x", "index.handler", make_zip(RECORDING))
    dlq_url, dlq_arn = queue(sqs, "dead")
    url, arn = queue(sqs, "partial", VisibilityTimeout=1,
                     RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}))
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="worker", BatchSize=10,
                                    FunctionResponseTypes=["ReportBatchItemFailures"])
    for body in ["good1", "bad1", "good2"]:
        sqs.send_message(QueueUrl=url, MessageBody=body)

    def dead():
        msgs = sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=1).get("Messages", [])
        return msgs

    msgs = wait_for(dead, timeout=30, what="the failed message in the DLQ")
    assert [m["Body"] for m in msgs] == ["bad1"]
    bodies = [r["body"] for r in records(logs, "worker")]
    assert bodies.count("good1") == 1 and bodies.count("good2") == 1, bodies
    assert bodies.count("bad1") == 2, "retried until maxReceiveCount"


def test_failed_batch_returns_to_the_queue(env):
    lam, sqs, logs = env
    create_function(lam, "worker", "nodejs20.x", "index.handler", make_zip(RECORDING))
    url, arn = queue(sqs, "boom", VisibilityTimeout=1)
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="worker", BatchSize=1)
    sqs.send_message(QueueUrl=url, MessageBody="explode")
    wait_for(lambda: sum(r["body"] == "explode" for r in records(logs, "worker")) >= 2, timeout=20, what="a retry")
    first = [r for r in records(logs, "worker") if r["body"] == "explode"]
    assert int(first[-1]["attributes"]["ApproximateReceiveCount"]) >= 2


def test_fifo_order_and_disabled_mapping(env):
    lam, sqs, logs = env
    create_function(lam, "worker", "nodejs20.x", "index.handler", make_zip(RECORDING))
    url, arn = queue(sqs, "ordered.fifo", FifoQueue="true", ContentBasedDeduplication="true")
    m = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="worker", BatchSize=3, Enabled=False)
    for i in range(9):
        sqs.send_message(QueueUrl=url, MessageBody=f"{i}", MessageGroupId="g")
    time.sleep(1.5)
    assert records(logs, "worker") == [] and counts(sqs, url)[0] == 9, "a disabled mapping takes nothing"
    lam.update_event_source_mapping(UUID=m["UUID"], Enabled=True)
    got = wait_for(lambda: (r := records(logs, "worker")) and len(r) >= 9 and r, timeout=30, what="9 records")
    assert [r["body"] for r in got] == [str(i) for i in range(9)]
    assert all(r["attributes"]["MessageGroupId"] == "g" for r in got)


def test_filter_criteria(env):
    lam, sqs, logs = env
    create_function(lam, "worker", "nodejs20.x", "index.handler", make_zip(RECORDING))
    url, arn = queue(sqs, "filtered")
    m = lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName="worker", BatchSize=10,
        FilterCriteria={"Filters": [{"Pattern": json.dumps({"body": {"kind": ["order"], "total": [{"numeric": [">", 100]}]}})},
                                    {"Pattern": json.dumps({"body": [{"prefix": "urgent"}]})}]})
    assert len(lam.get_event_source_mapping(UUID=m["UUID"])["FilterCriteria"]["Filters"]) == 2
    for body in [{"kind": "order", "total": 150}, {"kind": "order", "total": 50}, {"kind": "refund", "total": 500}]:
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))
    sqs.send_message(QueueUrl=url, MessageBody="urgent: call back")
    sqs.send_message(QueueUrl=url, MessageBody="routine")
    got = wait_for(lambda: (r := records(logs, "worker")) and len(r) >= 2 and r, timeout=20, what="the matching records")
    time.sleep(1.0)
    bodies = sorted(r["body"] for r in records(logs, "worker"))
    assert bodies == sorted([json.dumps({"kind": "order", "total": 150}), "urgent: call back"]), bodies
    # Filtered-out messages are dropped, not left in the queue.
    assert wait_for(lambda: counts(sqs, url) == (0, 0), timeout=10, what="the queue to empty")
    for bad in ("{not json", "simple string", json.dumps({"eventSource": "aws:sqs"}), json.dumps({"eventSource": []})):
        msg = expect(lambda: lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="worker",
                                                             FilterCriteria={"Filters": [{"Pattern": bad}]}),
                     "InvalidParameterValueException", 400)
        assert msg == "Invalid filter pattern definition.", bad  # AWS's words, with no reason

"""Stream event source mappings: Kinesis and DynamoDB Streams triggers with boto3. Records
in order with base64 data, table changes as INSERT/MODIFY/REMOVE, a poison record isolated
by bisection and sent to OnFailure, ReportBatchItemFailures, disable/enable, validation,
ParallelizationFactor (batches of one shard at once, in order per partition key), tumbling
windows (state carried between invocations, a final invocation per window), shard splits
and merges followed parent first, the IteratorAge metric, and resumption after SIGKILL
with no lost and no skipped record."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time

import pytest
from botocore.exceptions import ClientError

from helpers import TRUST_LAMBDA, Server, boto_client, create_function, expect_error as expect, make_zip, unique, wait_for

CONSUMER = {"lambda_function.py": """
import base64, json, time

def handler(event, context):
    started = time.time()
    recs = event["Records"]
    datas = [base64.b64decode(r["kinesis"]["data"]).decode() for r in recs if "kinesis" in r]
    if any(d.startswith("poison") for d in datas):
        raise Exception("poison record")
    if any(d.startswith("slow") for d in datas):
        time.sleep(0.3)
    failures = [{"itemIdentifier": r["kinesis"]["sequenceNumber"]} for r in recs
                if "kinesis" in r and base64.b64decode(r["kinesis"]["data"]).decode().startswith("bad")]
    print("BATCH " + json.dumps(recs))
    print("SPAN %f %f" % (started, time.time()))
    return {"batchItemFailures": failures}
"""}

WINDOWED = {"lambda_function.py": """
import base64, json

def handler(event, context):
    seen = {k: event.get(k) for k in ("window", "state", "shardId", "eventSourceARN", "isFinalInvokeForWindow",
                                      "isWindowTerminatedEarly")}
    seen["n"] = len(event["Records"])
    print("WINDOW " + json.dumps(seen))
    state = dict(event["state"])
    for r in event["Records"]:
        v = int(base64.b64decode(r["kinesis"]["data"]).decode())
        state["count"] = state.get("count", 0) + 1
        state["sum"] = state.get("sum", 0) + v
    return {"state": state}
"""}


@pytest.fixture(scope="module")
def lam(server):
    return server.lambda_client()


@pytest.fixture(scope="module")
def kinesis(server):
    return server.client("kinesis")


@pytest.fixture(scope="module")
def sqs(server):
    return server.sqs_client()


@pytest.fixture(scope="module")
def logs(server):
    return server.logs_client()


def batches(logs, fn):
    """The record lists the function logged for each batch it handled, in order."""
    try:
        events = logs.filter_log_events(logGroupName=f"/aws/lambda/{fn}", filterPattern='"BATCH "')["events"]
    except ClientError:
        return []
    return [json.loads(e["message"].split("BATCH ", 1)[1]) for e in events if "BATCH " in e["message"]]


def datas(logs, fn):
    return [base64.b64decode(r["kinesis"]["data"]).decode() for b in batches(logs, fn) for r in b]


def make_stream(kinesis, shards=1):
    name = unique("ks")
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return name, kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]


def put(kinesis, stream, items, key="pk"):
    return [kinesis.put_record(StreamName=stream, Data=d.encode(), PartitionKey=key)["SequenceNumber"] for d in items]


def consumer(lam):
    name = unique("consumer")
    create_function(lam, name, "python3.11", "lambda_function.handler", make_zip(CONSUMER))
    return name


def queue(sqs):
    url = sqs.create_queue(QueueName=unique("onfail"))["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def failure_records(sqs, url, want=1):
    got = []

    def arrived():
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            got.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return len(got) >= want
    wait_for(arrived, timeout=30, what="the on-failure record")
    return got


def test_kinesis_records_arrive_in_order_as_lambda_sends_them(lam, kinesis, logs):
    fn = consumer(lam)
    stream, arn = make_stream(kinesis)
    seqs = put(kinesis, stream, [f"r{i}" for i in range(25)])
    m = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, StartingPosition="TRIM_HORIZON", BatchSize=10)
    assert m["State"] == "Creating" and m["StartingPosition"] == "TRIM_HORIZON" and m["BatchSize"] == 10
    assert (m["ParallelizationFactor"], m["MaximumRetryAttempts"], m["MaximumRecordAgeInSeconds"]) == (1, -1, -1)
    assert (m["BisectBatchOnFunctionError"], m["TumblingWindowInSeconds"]) == (False, 0)
    wait_for(lambda: len(datas(logs, fn)) >= 25, timeout=60, what="every record")
    assert datas(logs, fn) == [f"r{i}" for i in range(25)]
    assert all(len(b) <= 10 for b in batches(logs, fn))
    first = batches(logs, fn)[0][0]
    assert first["eventSource"] == "aws:kinesis" and first["eventName"] == "aws:kinesis:record"
    assert first["eventVersion"] == "1.0" and first["eventSourceARN"] == arn and first["awsRegion"] == "us-east-1"
    assert first["eventID"] == f"shardId-000000000000:{seqs[0]}"
    assert first["invokeIdentityArn"].startswith("arn:aws:iam::")
    k = first["kinesis"]
    assert (k["kinesisSchemaVersion"], k["partitionKey"], k["sequenceNumber"]) == ("1.0", "pk", seqs[0])
    assert isinstance(k["approximateArrivalTimestamp"], float)
    got = lam.get_event_source_mapping(UUID=m["UUID"])
    assert got["State"] == "Enabled" and got["LastProcessingResult"] == "OK"
    lam.delete_event_source_mapping(UUID=m["UUID"])


def test_latest_disable_and_enable(lam, kinesis, logs):
    fn = consumer(lam)
    stream, arn = make_stream(kinesis)
    put(kinesis, stream, ["old"])
    m = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, StartingPosition="LATEST")
    put(kinesis, stream, ["a"])
    wait_for(lambda: datas(logs, fn) == ["a"], timeout=30, what="the record put after LATEST")
    lam.update_event_source_mapping(UUID=m["UUID"], Enabled=False)
    assert lam.get_event_source_mapping(UUID=m["UUID"])["State"] == "Disabled"
    put(kinesis, stream, ["b", "c"])
    time.sleep(3)
    assert datas(logs, fn) == ["a"]
    lam.update_event_source_mapping(UUID=m["UUID"], Enabled=True)
    wait_for(lambda: datas(logs, fn) == ["a", "b", "c"], timeout=30, what="the records put while disabled")
    lam.delete_event_source_mapping(UUID=m["UUID"])


def test_a_poison_record_is_bisected_out_and_sent_to_on_failure(lam, kinesis, sqs, logs):
    fn = consumer(lam)
    stream, arn = make_stream(kinesis)
    url, qarn = queue(sqs)
    items = [f"r{i}" for i in range(8)]
    items[5] = "poison"
    seqs = put(kinesis, stream, items)
    m = lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=fn, StartingPosition="TRIM_HORIZON", BatchSize=10,
        BisectBatchOnFunctionError=True, MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": qarn}})
    assert m["DestinationConfig"] == {"OnFailure": {"Destination": qarn}} and m["BisectBatchOnFunctionError"] is True
    [rec] = failure_records(sqs, url)
    info = rec["KinesisBatchInfo"]
    assert (info["shardId"], info["startSequenceNumber"], info["endSequenceNumber"]) == ("shardId-000000000000", seqs[5], seqs[5])
    assert (info["batchSize"], info["streamArn"]) == (1, arn)
    assert info["approximateArrivalOfFirstRecord"].endswith("Z")
    assert rec["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert rec["requestContext"]["functionArn"].endswith(f":function:{fn}")
    assert rec["responseContext"]["functionError"] == "Unhandled" and rec["version"] == "1.0"
    put(kinesis, stream, ["later"])
    want = [d for d in items if d != "poison"] + ["later"]
    wait_for(lambda: datas(logs, fn) == want, timeout=30, what="every good record, once, in order")
    lam.delete_event_source_mapping(UUID=m["UUID"])


def test_report_batch_item_failures_checkpoints_at_the_first_failure(lam, kinesis, sqs, logs):
    fn = consumer(lam)
    stream, arn = make_stream(kinesis)
    url, qarn = queue(sqs)
    seqs = put(kinesis, stream, ["a", "b", "bad", "c", "d"])
    m = lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=fn, StartingPosition="TRIM_HORIZON", BatchSize=10,
        FunctionResponseTypes=["ReportBatchItemFailures"], MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": qarn}})
    [rec] = failure_records(sqs, url)
    info = rec["KinesisBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (seqs[2], seqs[4], 3)
    assert rec["requestContext"]["approximateInvokeCount"] == 2
    # The function answered (with failed items): AWS's functionError is null.
    assert rec["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": None}
    # The first invocation had all five, the retry began at the failed record.
    assert datas(logs, fn) == ["a", "b", "bad", "c", "d", "bad", "c", "d"]
    put(kinesis, stream, ["e"])
    wait_for(lambda: datas(logs, fn)[-1:] == ["e"], timeout=30, what="the next record")
    lam.delete_event_source_mapping(UUID=m["UUID"])


def test_table_changes_reach_the_function(lam, server, logs):
    ddb = server.client("dynamodb")
    table = unique("tbl")
    arn = ddb.create_table(
        TableName=table, AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})["TableDescription"]["LatestStreamArn"]
    fn = consumer(lam)
    m = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, StartingPosition="LATEST", BatchSize=5)
    assert m["StartingPosition"] == "LATEST"
    ddb.put_item(TableName=table, Item={"id": {"S": "1"}, "v": {"N": "1"}})
    ddb.update_item(TableName=table, Key={"id": {"S": "1"}}, UpdateExpression="SET v = :v", ExpressionAttributeValues={":v": {"N": "2"}})
    ddb.delete_item(TableName=table, Key={"id": {"S": "1"}})

    def records():
        return [r for b in batches(logs, fn) for r in b]
    wait_for(lambda: len(records()) >= 3, timeout=30, what="three change records")
    got = records()
    assert [r["eventName"] for r in got] == ["INSERT", "MODIFY", "REMOVE"]
    assert all(r["eventSource"] == "aws:dynamodb" and r["eventVersion"] == "1.1" and r["eventSourceARN"] == arn for r in got)
    assert got[0]["dynamodb"]["NewImage"] == {"id": {"S": "1"}, "v": {"N": "1"}}
    assert got[1]["dynamodb"]["OldImage"]["v"] == {"N": "1"} and got[1]["dynamodb"]["NewImage"]["v"] == {"N": "2"}
    assert got[2]["dynamodb"]["Keys"] == {"id": {"S": "1"}} and got[2]["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    lam.delete_event_source_mapping(UUID=m["UUID"])


def test_filter_criteria_on_kinesis_data(lam, kinesis, logs):
    fn = consumer(lam)
    stream, arn = make_stream(kinesis)
    put(kinesis, stream, [json.dumps({"kind": k, "n": i}) for i, k in enumerate(["keep", "drop", "keep"])])
    m = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, StartingPosition="TRIM_HORIZON",
                                        FilterCriteria={"Filters": [{"Pattern": json.dumps({"data": {"kind": ["keep"]}})}]})
    wait_for(lambda: len(datas(logs, fn)) >= 2, timeout=30, what="the matching records")
    time.sleep(1)
    assert [json.loads(d)["n"] for d in datas(logs, fn)] == [0, 2]
    lam.delete_event_source_mapping(UUID=m["UUID"])


def test_bad_stream_mappings(lam, kinesis, server):
    fn = consumer(lam)
    raw = server.lambda_client(validate=False)
    _, arn = make_stream(kinesis)
    # AWS's codes and words (LocalStack's test_lambda_api.snapshot.json, AWS-validated).
    msg = expect(lambda: lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn), "InvalidParameterValueException", 400)
    assert msg == ("1 validation error detected: Value null at 'startingPosition' failed to satisfy constraint: "
                   "Member must not be null.")
    msg = expect(lambda: lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, StartingPosition="invalid"),
                 "ValidationException", 400)
    assert msg.endswith("Member must satisfy enum value set: [LATEST, AT_TIMESTAMP, TRIM_HORIZON]")
    expect(lambda: lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, StartingPosition="AT_TIMESTAMP"),
           "InvalidParameterValueException", 400)
    expect(lambda: lam.create_event_source_mapping(EventSourceArn=arn + "nope", FunctionName=fn, StartingPosition="LATEST"),
           "InvalidParameterValueException", 400)
    expect(lambda: lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, StartingPosition="LATEST",
                                                   ParallelizationFactor=2, TumblingWindowInSeconds=60),
           "InvalidParameterValueException", 400)
    msg = expect(lambda: lam.create_event_source_mapping(FunctionName=fn, StartingPosition="LATEST"),
                 "InvalidParameterValueException", 400)
    assert msg == "Unrecognized event source."  # test_lambda_api.snapshot.json, create_no_event_source_arn
    for member, value, constraint in [("parallelizationFactor", 11, "less than or equal to 10"),
                                      ("parallelizationFactor", 0, "greater than or equal to 1"),
                                      ("tumblingWindowInSeconds", 901, "less than or equal to 900")]:
        key = member[0].upper() + member[1:]
        msg = expect(lambda: raw.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, StartingPosition="LATEST",
                                                             **{key: value}), "ValidationException", 400)
        assert f"at '{member}' failed to satisfy constraint: Member must have value {constraint}" in msg, msg
    m = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, StartingPosition="LATEST", Enabled=False)
    assert (m["State"], m["StateTransitionReason"]) == ("Creating", "User action")
    expect(lambda: lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, StartingPosition="LATEST"),
           "ResourceConflictException", 409)
    upd = lam.update_event_source_mapping(UUID=m["UUID"], MaximumRetryAttempts=3, BisectBatchOnFunctionError=True, BatchSize=500)
    assert (upd["MaximumRetryAttempts"], upd["BisectBatchOnFunctionError"], upd["BatchSize"]) == (3, True, 500)
    assert lam.get_event_source_mapping(UUID=m["UUID"])["State"] == "Disabled"
    lam.delete_event_source_mapping(UUID=m["UUID"])


def test_the_role_must_be_able_to_read_the_stream(lam, server, kinesis):
    """As for SQS triggers, Lambda checks the execution role can read a Kinesis or DynamoDB
    stream when the mapping is created, and answers AWS's "Cannot access stream" text."""
    iam = boto_client("iam", server.endpoint)
    role = unique("basic-role")
    role_arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(TRUST_LAMBDA))["Role"]["Arn"]
    iam.attach_role_policy(RoleName=role, PolicyArn="arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole")
    fn = unique("reader")
    create_function(lam, fn, "python3.11", "lambda_function.handler", make_zip(CONSUMER), Role=role_arn)
    _, stream_arn = make_stream(kinesis)
    ddb = server.client("dynamodb")
    table_stream = ddb.create_table(
        TableName=unique("tbl"), AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"})["TableDescription"]["LatestStreamArn"]
    for arn in (stream_arn, table_stream):
        msg = expect(lambda: lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, StartingPosition="LATEST"),
                     "InvalidParameterValueException", 400)
        assert msg == (f"Cannot access stream {arn}. Please ensure the role can perform the GetRecords, GetShardIterator, "
                       "DescribeStream, and ListStreams Actions on your stream in IAM.")
    assert lam.list_event_source_mappings(FunctionName=fn)["EventSourceMappings"] == []
    # With AWS's managed policies for stream triggers, both are accepted.
    for managed in ("AWSLambdaKinesisExecutionRole", "AWSLambdaDynamoDBExecutionRole"):
        iam.attach_role_policy(RoleName=role, PolicyArn=f"arn:aws:iam::aws:policy/service-role/{managed}")
    for arn in (stream_arn, table_stream):
        m = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, StartingPosition="LATEST", Enabled=False)
        lam.delete_event_source_mapping(UUID=m["UUID"])
    # An OnFailure destination must be writable by the role too, when made and when changed.
    sqs = server.sqs_client()
    url = sqs.create_queue(QueueName=unique("onfail"))["QueueUrl"]
    qarn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bucket_arn = "arn:aws:s3:::" + unique("failed").lower()
    for dest, operation, service in ((qarn, "SendMessage", "SQS"), (bucket_arn, "PutObject", "S3")):
        msg = expect(lambda: lam.create_event_source_mapping(
            EventSourceArn=stream_arn, FunctionName=fn, StartingPosition="LATEST", Enabled=False,
            DestinationConfig={"OnFailure": {"Destination": dest}}), "InvalidParameterValueException", 400)
        assert msg == f"The provided execution role does not have permissions to call {operation} on {service}"
    m = lam.create_event_source_mapping(EventSourceArn=stream_arn, FunctionName=fn, StartingPosition="LATEST", Enabled=False)
    expect(lambda: lam.update_event_source_mapping(UUID=m["UUID"], DestinationConfig={"OnFailure": {"Destination": qarn}}),
           "InvalidParameterValueException", 400)
    iam.put_role_policy(RoleName=role, PolicyName="failures", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": qarn},
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": bucket_arn + "/*"}]}))
    lam.update_event_source_mapping(UUID=m["UUID"], DestinationConfig={"OnFailure": {"Destination": qarn}})
    lam.update_event_source_mapping(UUID=m["UUID"], DestinationConfig={"OnFailure": {"Destination": bucket_arn}})
    lam.delete_event_source_mapping(UUID=m["UUID"])


def test_delivery_resumes_after_sigkill_with_no_gap(nimbus_bin, tmp_path):
    srv = Server(nimbus_bin, tmp_path / "data", tmp_path / "server.log", name="stream-kill").start()
    try:
        lam, kinesis, logs = srv.lambda_client(), srv.client("kinesis"), srv.logs_client()
        fn = consumer(lam)
        stream, arn = make_stream(kinesis)
        items = [f"slow{i:03d}" for i in range(60)]
        put(kinesis, stream, items)
        lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, StartingPosition="TRIM_HORIZON", BatchSize=5)
        wait_for(lambda: len(datas(logs, fn)) >= 10, timeout=60, what="some batches before the kill")
        srv.kill()
        srv.start()
        lam, logs = srv.lambda_client(), srv.logs_client()
        wait_for(lambda: set(datas(logs, fn)) >= set(items), timeout=90, what="every record after the restart")
        got = datas(logs, fn)
        # At least once, in order: each record's first delivery comes in stream order.
        first_seen = list(dict.fromkeys(got))
        assert first_seen == items
        assert len(got) - len(items) <= 10, "redelivered more than the batches in flight"
    finally:
        srv.stop()


def spans(logs, fn):
    events = logs.filter_log_events(logGroupName=f"/aws/lambda/{fn}", filterPattern='"SPAN "')["events"]
    return [tuple(map(float, e["message"].split("SPAN ", 1)[1].split())) for e in events]


def test_parallelization_factor_runs_batches_at_once_in_order_per_key(lam, kinesis, logs):
    fn = consumer(lam)
    stream, arn = make_stream(kinesis)
    keys = [f"key{k}" for k in range(8)]
    items = [(keys[i % len(keys)], f"slow-{keys[i % len(keys)]}-{i:03d}") for i in range(48)]
    for key, data in items:
        kinesis.put_record(StreamName=stream, Data=data.encode(), PartitionKey=key)
    m = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, StartingPosition="TRIM_HORIZON",
                                        BatchSize=3, ParallelizationFactor=4)
    assert m["ParallelizationFactor"] == 4
    wait_for(lambda: len(datas(logs, fn)) >= len(items), timeout=90, what="every record")
    got = datas(logs, fn)
    assert sorted(got) == sorted(d for _, d in items), "each record once"
    for key in keys:
        mine = [d for d in got if d.startswith(f"slow-{key}-")]
        assert mine == [d for k, d in items if k == key], f"{key}'s records out of order"
    for b in batches(logs, fn):
        assert len(b) <= 3 and len({r["kinesis"]["partitionKey"] for r in b}) >= 1
    # Batches of the one shard overlapped in time (each sleeps 0.3 s).
    ranges = sorted(spans(logs, fn))
    assert any(b[0] < a[1] for a, b in zip(ranges, ranges[1:])), "no two batches of the shard ran at once"
    assert lam.get_event_source_mapping(UUID=m["UUID"])["ParallelizationFactor"] == 4
    lam.delete_event_source_mapping(UUID=m["UUID"])


def windows_seen(logs, fn):
    try:
        events = logs.filter_log_events(logGroupName=f"/aws/lambda/{fn}", filterPattern='"WINDOW "')["events"]
    except ClientError:
        return []
    return [json.loads(e["message"].split("WINDOW ", 1)[1]) for e in events]


def test_tumbling_windows_carry_state_and_end_with_a_final_invocation(lam, kinesis, logs):
    fn = unique("windowed")
    create_function(lam, fn, "python3.11", "lambda_function.handler", make_zip(WINDOWED))
    stream, arn = make_stream(kinesis)
    m = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, StartingPosition="TRIM_HORIZON",
                                        BatchSize=2, TumblingWindowInSeconds=3)
    assert m["TumblingWindowInSeconds"] == 3
    values = list(range(1, 11))
    for v in values:
        kinesis.put_record(StreamName=stream, Data=str(v).encode(), PartitionKey="pk")
    finals = lambda: [w for w in windows_seen(logs, fn) if w["isFinalInvokeForWindow"]]
    wait_for(lambda: sum(f["state"].get("count", 0) for f in finals()) >= len(values), timeout=60,
             what="the windows' final invocations")
    seen = windows_seen(logs, fn)
    assert sum(f["state"]["sum"] for f in finals()) == sum(values)
    for w in seen:
        assert (w["shardId"], w["eventSourceARN"], w["isWindowTerminatedEarly"]) == ("shardId-000000000000", arn, False)
        start = dt.datetime.strptime(w["window"]["start"], "%Y-%m-%dT%H:%M:%SZ")
        end = dt.datetime.strptime(w["window"]["end"], "%Y-%m-%dT%H:%M:%SZ")
        assert (end - start).total_seconds() == 3 and start.timestamp() % 3 == 0, w["window"]
    for f in finals():
        assert f["n"] == 0, "a final invocation carries no records"
    # Within a window, each invocation starts with the state the one before answered.
    by_window: dict = {}
    for w in seen:
        by_window.setdefault(w["window"]["start"], []).append(w)
    for start, calls in by_window.items():
        assert calls[0]["state"] == {}, f"window {start} did not start afresh"
        for before, after in zip(calls, calls[1:]):
            assert after["state"].get("count", 0) == before["state"].get("count", 0) + before["n"], calls
        assert calls[-1]["isFinalInvokeForWindow"], f"window {start} has no final invocation last"
    lam.delete_event_source_mapping(UUID=m["UUID"])


def test_a_windowed_function_must_answer_with_state(lam, kinesis, sqs):
    fn = consumer(lam)  # answers batchItemFailures only
    stream, arn = make_stream(kinesis)
    url, qarn = queue(sqs)
    seqs = put(kinesis, stream, ["a", "b"])
    m = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, StartingPosition="TRIM_HORIZON",
                                        TumblingWindowInSeconds=60, MaximumRetryAttempts=0,
                                        DestinationConfig={"OnFailure": {"Destination": qarn}})
    [rec] = failure_records(sqs, url)
    info = rec["KinesisBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (seqs[0], seqs[1], 2)
    assert rec["requestContext"]["condition"] == "RetryAttemptsExhausted"
    lam.delete_event_source_mapping(UUID=m["UUID"])


def test_splits_and_merges_are_followed_parent_first(lam, kinesis, logs):
    fn = consumer(lam)
    stream, arn = make_stream(kinesis)
    keys = [f"k{i}" for i in range(6)]
    sent = []

    def send(tag):
        for k in keys:
            data = f"{tag}-{k}"
            kinesis.put_record(StreamName=stream, Data=data.encode(), PartitionKey=k)
            sent.append((k, data))
    send("parent")
    m = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, StartingPosition="TRIM_HORIZON", BatchSize=4)
    kinesis.split_shard(StreamName=stream, ShardToSplit="shardId-000000000000", NewStartingHashKey=str(2 ** 127))
    kinesis.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    send("child")
    open_shards = [s["ShardId"] for s in kinesis.list_shards(StreamName=stream)["Shards"]
                   if "EndingSequenceNumber" not in s["SequenceNumberRange"]]
    assert len(open_shards) == 2
    kinesis.merge_shards(StreamName=stream, ShardToMerge=open_shards[0], AdjacentShardToMerge=open_shards[1])
    kinesis.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    send("merged")
    wait_for(lambda: len(datas(logs, fn)) >= len(sent), timeout=60, what="every record across the shards")
    got = datas(logs, fn)
    assert sorted(got) == sorted(d for _, d in sent), "each record once"
    for k in keys:
        assert [d for d in got if d.endswith(f"-{k}")] == [f"parent-{k}", f"child-{k}", f"merged-{k}"], k
    shard_of = {base64.b64decode(r["kinesis"]["data"]).decode(): r["eventID"].split(":")[0]
                for b in batches(logs, fn) for r in b}
    assert {shard_of[f"parent-{k}"] for k in keys} == {"shardId-000000000000"}
    assert {shard_of[f"child-{k}"] for k in keys} == set(open_shards)
    assert {shard_of[f"merged-{k}"] for k in keys} == {"shardId-000000000003"}
    lam.delete_event_source_mapping(UUID=m["UUID"])


def test_iterator_age_is_reported(lam, kinesis, logs, server):
    cw = server.client("cloudwatch")
    fn = consumer(lam)
    stream, arn = make_stream(kinesis)
    put(kinesis, stream, ["x", "y"])
    time.sleep(1.5)  # the records wait in the stream before the mapping reads them
    m = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, StartingPosition="TRIM_HORIZON")
    wait_for(lambda: len(datas(logs, fn)) >= 2, timeout=30, what="the records")
    now = dt.datetime.now(dt.timezone.utc)

    def stats():
        return cw.get_metric_statistics(
            Namespace="AWS/Lambda", MetricName="IteratorAge", Dimensions=[{"Name": "FunctionName", "Value": fn}],
            StartTime=now - dt.timedelta(minutes=5), EndTime=now + dt.timedelta(minutes=1), Period=60,
            Statistics=["Maximum", "SampleCount"])["Datapoints"]
    points = wait_for(stats, timeout=20, what="an IteratorAge datapoint")
    assert max(p["Maximum"] for p in points) >= 1500, points
    assert all(p["Unit"] == "Milliseconds" for p in points)
    lam.delete_event_source_mapping(UUID=m["UUID"])


def test_mappings_have_arns_and_tags(lam, kinesis):
    fn = consumer(lam)
    _, arn = make_stream(kinesis)
    m = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, StartingPosition="LATEST", Enabled=False,
                                        Tags={"team": "data", "env": "test"})
    mapping_arn = m["EventSourceMappingArn"]
    assert mapping_arn == f"arn:aws:lambda:us-east-1:{mapping_arn.split(':')[4]}:event-source-mapping:{m['UUID']}"
    assert lam.get_event_source_mapping(UUID=m["UUID"])["EventSourceMappingArn"] == mapping_arn
    assert lam.list_tags(Resource=mapping_arn)["Tags"] == {"team": "data", "env": "test"}
    lam.tag_resource(Resource=mapping_arn, Tags={"env": "prod", "owner": "me"})
    lam.untag_resource(Resource=mapping_arn, TagKeys=["team"])
    assert lam.list_tags(Resource=mapping_arn)["Tags"] == {"env": "prod", "owner": "me"}
    # Tags leave the mapping as it was.
    assert lam.get_event_source_mapping(UUID=m["UUID"])["State"] == "Disabled"
    lam.delete_event_source_mapping(UUID=m["UUID"])
    gone = mapping_arn.rsplit(":", 1)[0] + ":00000000-0000-0000-0000-000000000000"
    expect(lambda: lam.list_tags(Resource=gone), "ResourceNotFoundException", 404)
    expect(lambda: lam.tag_resource(Resource=mapping_arn.rsplit(":", 1)[0] + ":not-a-uuid", Tags={"a": "b"}),
           "ValidationException", 400)


def test_window_state_survives_sigkill(nimbus_bin, tmp_path):
    """The open window's state is stored with the checkpoint: after kill -9 the window goes
    on with the state it had, and its final call counts every record exactly once (the
    kill comes while the mapping is idle, so nothing was in flight)."""
    srv = Server(nimbus_bin, tmp_path / "data", tmp_path / "server.log", name="window-kill").start()
    try:
        lam, kinesis, logs = srv.lambda_client(), srv.client("kinesis"), srv.logs_client()
        fn = unique("windowed")
        create_function(lam, fn, "python3.11", "lambda_function.handler", make_zip(WINDOWED))
        stream, arn = make_stream(kinesis)
        lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, StartingPosition="TRIM_HORIZON",
                                        BatchSize=2, TumblingWindowInSeconds=20)
        before = list(range(1, 6))
        for v in before:
            kinesis.put_record(StreamName=stream, Data=str(v).encode(), PartitionKey="pk")

        def aggregated():
            calls = [w for w in windows_seen(logs, fn) if not w["isFinalInvokeForWindow"]]
            return sum(w["n"] for w in calls) >= len(before)
        wait_for(aggregated, timeout=60, what="the records before the kill")
        time.sleep(0.5)  # the checkpoint follows the answer
        srv.kill()
        srv.start()
        lam, kinesis, logs = srv.lambda_client(), srv.client("kinesis"), srv.logs_client()
        after = [10, 20]
        for v in after:
            kinesis.put_record(StreamName=stream, Data=str(v).encode(), PartitionKey="pk")
        finals = lambda: [w for w in windows_seen(logs, fn) if w["isFinalInvokeForWindow"]]
        wait_for(lambda: sum(f["state"].get("count", 0) for f in finals()) >= len(before) + len(after), timeout=90,
                 what="the final calls of the windows")
        assert sum(f["state"]["count"] for f in finals()) == len(before) + len(after), finals()
        assert sum(f["state"]["sum"] for f in finals()) == sum(before) + sum(after)
    finally:
        srv.stop()


def test_a_bucket_as_on_failure_destination_gets_the_records_too(lam, kinesis, server):
    s3 = server.client("s3")
    bucket = unique("failed").lower()
    s3.create_bucket(Bucket=bucket)
    fn = consumer(lam)
    stream, arn = make_stream(kinesis)
    seqs = put(kinesis, stream, ["poison-1"])
    m = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, StartingPosition="TRIM_HORIZON",
                                        MaximumRetryAttempts=0,
                                        DestinationConfig={"OnFailure": {"Destination": f"arn:aws:s3:::{bucket}"}})
    assert m["DestinationConfig"] == {"OnFailure": {"Destination": f"arn:aws:s3:::{bucket}"}}
    prefix = f"aws/lambda/{m['UUID']}/shardId-000000000000/"
    objects = wait_for(lambda: s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents"), timeout=30,
                       what="the failure record in the bucket")
    [obj] = objects
    rest = obj["Key"][len(prefix):]
    day, stamp = rest.rsplit("/", 1)
    assert len(day.split("/")) == 3 and stamp[:10] == day.replace("/", "-"), obj["Key"]
    body = json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
    info = body["KinesisBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (seqs[0], seqs[0], 1)
    assert body["requestContext"]["condition"] == "RetryAttemptsExhausted"
    payload = json.loads(body["payload"])
    assert [base64.b64decode(r["kinesis"]["data"]).decode() for r in payload["Records"]] == ["poison-1"]
    lam.delete_event_source_mapping(UUID=m["UUID"])


WINDOWED_FLAKY_FINAL = {"lambda_function.py": """
import base64, json, os

def handler(event, context):
    seen = {"final": event["isFinalInvokeForWindow"], "state": event["state"], "n": len(event["Records"])}
    print("WINDOW " + json.dumps(seen))
    if event["isFinalInvokeForWindow"] and not os.path.exists("/tmp/failed-once"):
        open("/tmp/failed-once", "w").close()
        raise Exception("the first final call fails")
    state = dict(event["state"])
    for r in event["Records"]:
        state["count"] = state.get("count", 0) + 1
    return {"state": state}
"""}


def test_a_failed_final_call_is_retried_until_it_succeeds(lam, kinesis, logs):
    """AWS suspends the shard until a window's final invocation succeeds: a failure there
    does not drop the window's state, whatever MaximumRetryAttempts says."""
    fn = unique("flaky-final")
    create_function(lam, fn, "python3.11", "lambda_function.handler", make_zip(WINDOWED_FLAKY_FINAL))
    stream, arn = make_stream(kinesis)
    m = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, StartingPosition="TRIM_HORIZON",
                                        TumblingWindowInSeconds=2, MaximumRetryAttempts=0)
    put(kinesis, stream, ["a", "b", "c"])

    def finals():
        events = logs.filter_log_events(logGroupName=f"/aws/lambda/{fn}", filterPattern='"WINDOW "').get("events", [])
        return [w for w in (json.loads(e["message"].split("WINDOW ", 1)[1]) for e in events) if w["final"]]
    got = wait_for(lambda: [f for f in finals() if f["state"]] if len(finals()) >= 2 else None, timeout=60,
                   what="the retried final call")
    # The failed call and its retry carry the same state; together they count every record once.
    counts = [f["state"]["count"] for f in finals() if f["state"]]
    assert sum(counts[1:]) == 3 and counts[0] == counts[1], finals()
    assert got
    lam.delete_event_source_mapping(UUID=m["UUID"])


def test_a_window_of_an_older_width_ends_when_the_width_changes(lam, kinesis, logs):
    fn = unique("rewindow")
    create_function(lam, fn, "python3.11", "lambda_function.handler", make_zip(WINDOWED))
    stream, arn = make_stream(kinesis)
    m = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn, StartingPosition="TRIM_HORIZON",
                                        TumblingWindowInSeconds=900)
    for v in (1, 2, 3):
        kinesis.put_record(StreamName=stream, Data=str(v).encode(), PartitionKey="pk")
    wait_for(lambda: sum(w["n"] for w in windows_seen(logs, fn) if not w["isFinalInvokeForWindow"]) >= 3, timeout=60,
             what="the records in the 900 s window")
    time.sleep(0.5)  # the checkpoint (with the window) follows the answer
    lam.update_event_source_mapping(UUID=m["UUID"], TumblingWindowInSeconds=2)
    finals = lambda: [w for w in windows_seen(logs, fn) if w["isFinalInvokeForWindow"]]
    [final] = wait_for(finals, timeout=30, what="the old window's final call")
    start = dt.datetime.strptime(final["window"]["start"], "%Y-%m-%dT%H:%M:%SZ")
    end = dt.datetime.strptime(final["window"]["end"], "%Y-%m-%dT%H:%M:%SZ")
    assert (end - start).total_seconds() == 900 and final["state"] == {"count": 3, "sum": 6}, final
    lam.delete_event_source_mapping(UUID=m["UUID"])

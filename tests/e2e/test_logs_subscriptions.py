"""CloudWatch Logs subscription filters with a Lambda destination (the CloudWatch Logs trigger):
PutSubscriptionFilter / DescribeSubscriptionFilters / DeleteSubscriptionFilter with AWS's
errors (LocalStack's AWS-validated snapshots, tests/aws/services/logs/
test_logs_subscription_filters.snapshot.json, and AWS's documented PutSubscriptionFilter
error for a function CloudWatch Logs may not invoke), and delivery: the events that match a
filter reach the function asynchronously as `{"awslogs": {"data": base64(gzip(JSON))}}`, in
AWS's DATA_MESSAGE shape, from a function's own lines and from PutLogEvents; filters survive a
restart."""

from __future__ import annotations

import json
import time

import pytest
from botocore.exceptions import ClientError

from helpers import ACCOUNT, REGION, all_group_messages, client_error, create_function, invoke, make_zip, unique, wait_for

CONSUMER = r'''
import base64, gzip, json

def handler(event, context):
    data = json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
    print("RECEIVED " + json.dumps({"keys": sorted(event), "awslogs": sorted(event["awslogs"]), "data": data}))
    return "ok"
'''

PRODUCER = r'''
def handler(event, context):
    for line in event["lines"]:
        print(line)
    return "done"
'''


def group_arn(name):
    return f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}"


def refused(call, **kwargs):
    with pytest.raises(ClientError) as e:
        call(**kwargs)
    return client_error(e)


def received(logs, consumer):
    """What the consumer was given, in order of arrival."""
    try:
        lines = all_group_messages(logs, f"/aws/lambda/{consumer}")
    except ClientError:
        return []
    return [json.loads(line.split("RECEIVED ", 1)[1]) for line in lines if "RECEIVED " in line]


def allow_logs(fn, source_group=None):
    kwargs = {"SourceArn": f"{group_arn(source_group)}:*"} if source_group else {}
    fn.client.add_permission(FunctionName=fn.name, StatementId=unique("logs"), Action="lambda:InvokeFunction",
                             Principal="logs.amazonaws.com", **kwargs)


@pytest.fixture
def consumer(make_fn):
    return make_fn("python3.11", {"index.py": CONSUMER}, "index.handler", prefix="consumer")


def test_function_lines_reach_the_consumer(make_fn, consumer, logs, lam):
    producer = make_fn("python3.11", {"index.py": PRODUCER}, "index.handler", prefix="producer")
    group = f"/aws/lambda/{producer.name}"
    # The producer's group exists once it has logged (or is made, as AWS lets one make it).
    logs.create_log_group(logGroupName=group)
    allow_logs(consumer, group)
    logs.put_subscription_filter(logGroupName=group, filterName="errors", filterPattern="ERROR -ignore",
                                 destinationArn=consumer.arn)
    out = invoke(lam, producer.name, {"lines": ["INFO fine", "ERROR one", "ERROR but ignore me", "ERROR two"]})
    assert out.ok() == "done"
    got = wait_for(lambda: received(logs, consumer.name), timeout=20, what="the consumer's batch")
    time.sleep(1.5)  # nothing else arrives
    got = received(logs, consumer.name)
    assert len(got) == 1, got
    assert got[0]["keys"] == ["awslogs"] and got[0]["awslogs"] == ["data"]
    data = got[0]["data"]
    assert list(data) == ["messageType", "owner", "logGroup", "logStream", "subscriptionFilters", "logEvents"]
    assert data["messageType"] == "DATA_MESSAGE"
    assert data["owner"] == ACCOUNT
    assert data["logGroup"] == group
    assert data["subscriptionFilters"] == ["errors"]
    streams = [s["logStreamName"] for s in logs.describe_log_streams(logGroupName=group)["logStreams"]]
    assert data["logStream"] in streams
    assert [e["message"].rstrip("\n") for e in data["logEvents"]] == ["ERROR one", "ERROR two"]
    for e in data["logEvents"]:
        assert list(e) == ["id", "timestamp", "message"]
        assert len(e["id"]) == 56 and e["id"].isdigit()
        assert abs(e["timestamp"] - time.time() * 1000) < 60_000


def test_put_log_events_deliver_and_filters_describe(consumer, logs):
    group = f"/app/{unique('subs')}"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    allow_logs(consumer)
    logs.put_subscription_filter(logGroupName=group, filterName="all", filterPattern="", destinationArn=consumer.arn)
    desc = logs.describe_subscription_filters(logGroupName=group)["subscriptionFilters"]
    assert abs(desc[0].pop("creationTime") - time.time() * 1000) < 60_000
    assert desc == [{
        "filterName": "all",
        "logGroupName": group,
        "filterPattern": "",
        "destinationArn": consumer.arn,
        "distribution": "ByLogStream",
        "applyOnTransformedLogs": False,
    }]
    t = int(time.time() * 1000)
    logs.put_log_events(logGroupName=group, logStreamName="s",
                        logEvents=[{"timestamp": t, "message": "first"}, {"timestamp": t + 1, "message": "second"}])
    got = wait_for(lambda: received(logs, consumer.name), timeout=20, what="the consumer's batch")
    data = got[0]["data"]
    assert (data["logGroup"], data["logStream"], data["subscriptionFilters"]) == (group, "s", ["all"])
    assert [(e["timestamp"], e["message"]) for e in data["logEvents"]] == [(t, "first"), (t + 1, "second")]

    # Deleted: nothing more is delivered.
    logs.delete_subscription_filter(logGroupName=group, filterName="all")
    assert logs.describe_subscription_filters(logGroupName=group)["subscriptionFilters"] == []
    logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=[{"timestamp": t + 2, "message": "third"}])
    time.sleep(2.5)
    assert len(received(logs, consumer.name)) == 1
    logs.delete_log_group(logGroupName=group)


def test_errors_and_limit(consumer, make_fn, logs):
    group = f"/app/{unique('subs')}"
    logs.create_log_group(logGroupName=group)
    put = logs.put_subscription_filter
    # No permission for CloudWatch Logs, then a function that does not exist: AWS's one answer.
    msg = ("InvalidParameterException", 400, "Could not execute the lambda function. Make sure you have given "
           "CloudWatch Logs permission to execute your function.")
    assert refused(put, logGroupName=group, filterName="f", filterPattern="", destinationArn=consumer.arn) == msg
    missing = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{unique('nope')}"
    assert refused(put, logGroupName=group, filterName="f", filterPattern="", destinationArn=missing) == msg
    # A permission for another group's ARN does not do.
    allow_logs(consumer, "/some/other/group")
    assert refused(put, logGroupName=group, filterName="f", filterPattern="", destinationArn=consumer.arn) == msg
    # Another account's function; a Kinesis stream without a role (snapshot wording).
    assert refused(put, logGroupName="not-existing-log-group", filterName="f", filterPattern="",
                   destinationArn="arn:aws:lambda:us-east-1:123456789012:function:test") == (
        "AccessDeniedException", 400, "Cross-account lambda invocation passing is not allowed. You must use "
        "DestinationPolicies to create cross account lambda triggers.")
    assert refused(put, logGroupName=group, filterName="f", filterPattern="",
                   destinationArn="arn:aws:kinesis:us-east-1:123456789012:stream/unknown-stream") == (
        "InvalidParameterException", 400, "destinationArn for vendor kinesis cannot be used without roleArn")

    allow_logs(consumer, group)
    missing_group = ("ResourceNotFoundException", 400, "The specified log group does not exist.")
    assert refused(put, logGroupName=f"/app/{unique('none')}", filterName="f", filterPattern="",
                   destinationArn=consumer.arn) == missing_group
    assert refused(logs.describe_subscription_filters, logGroupName=f"/app/{unique('none')}") == missing_group
    assert refused(logs.delete_subscription_filter, logGroupName=f"/app/{unique('none')}", filterName="f") == missing_group
    assert refused(logs.delete_subscription_filter, logGroupName=group, filterName="f") == (
        "ResourceNotFoundException", 400, "The specified subscription filter does not exist.")

    put(logGroupName=group, filterName="a", filterPattern="", destinationArn=consumer.arn)
    put(logGroupName=group, filterName="b", filterPattern="x", destinationArn=consumer.arn)
    assert refused(put, logGroupName=group, filterName="c", filterPattern="", destinationArn=consumer.arn) == (
        "LimitExceededException", 400, "Resource limit exceeded.")
    # The same name replaces its filter.
    put(logGroupName=group, filterName="b", filterPattern="[]", destinationArn=consumer.arn)
    desc = logs.describe_subscription_filters(logGroupName=group)["subscriptionFilters"]
    assert [(f["filterName"], f["filterPattern"]) for f in desc] == [("a", ""), ("b", "[]")]
    page = logs.describe_subscription_filters(logGroupName=group, limit=1)
    assert [f["filterName"] for f in page["subscriptionFilters"]] == ["a"]
    page = logs.describe_subscription_filters(logGroupName=group, limit=1, nextToken=page["nextToken"])
    assert [f["filterName"] for f in page["subscriptionFilters"]] == ["b"] and "nextToken" not in page
    assert [f["filterName"] for f in logs.describe_subscription_filters(
        logGroupName=group, filterNamePrefix="b")["subscriptionFilters"]] == ["b"]
    # Filters go with their group.
    logs.delete_log_group(logGroupName=group)
    logs.create_log_group(logGroupName=group)
    assert logs.describe_subscription_filters(logGroupName=group)["subscriptionFilters"] == []
    logs.delete_log_group(logGroupName=group)


def test_restart_keeps_filters(server_factory):
    s = server_factory()
    lam, logs = s.lambda_client(), s.logs_client()
    name = unique("consumer")
    fn = create_function(lam, name, "python3.11", "index.handler", make_zip({"index.py": CONSUMER}))
    allow_logs(fn)
    logs.create_log_group(logGroupName="/kept/subs")
    logs.create_log_stream(logGroupName="/kept/subs", logStreamName="s")
    logs.put_subscription_filter(logGroupName="/kept/subs", filterName="kept", filterPattern="keep",
                                 destinationArn=fn.arn)
    before = logs.describe_subscription_filters(logGroupName="/kept/subs")["subscriptionFilters"]
    s.restart()
    logs = s.logs_client()
    assert logs.describe_subscription_filters(logGroupName="/kept/subs")["subscriptionFilters"] == before
    t = int(time.time() * 1000)
    logs.put_log_events(logGroupName="/kept/subs", logStreamName="s",
                        logEvents=[{"timestamp": t, "message": "drop"}, {"timestamp": t, "message": "keep me"}])
    got = wait_for(lambda: received(logs, name), timeout=30, what="the consumer's batch after a restart")
    assert [e["message"] for e in got[0]["data"]["logEvents"]] == ["keep me"]

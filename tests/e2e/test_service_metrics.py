"""The built-in services' CloudWatch metrics as AWS publishes them: AWS/SQS by QueueName
(sends with their sizes, receives, empty receives, deletes, and the gauges sampled each
minute, here every half second), AWS/SNS by TopicName (publishes with their sizes,
deliveries to a queue and a function, filtered-out and failed ones) and AWS/Events by
RuleName (and account-wide): read back with GetMetricStatistics and ListMetrics."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from helpers import REGION, ACCOUNT, Server, boto_client, create_function, make_zip, sns_may_send, unique, wait_for


@pytest.fixture(scope="module")
def srv(nimbus_bin, node22, tmp_path_factory):
    """A server whose queue gauges are sampled every 500 ms instead of each minute."""
    base = tmp_path_factory.mktemp("service-metrics")
    s = Server(nimbus_bin, base / "data", base / "server.log", name="service-metrics",
               args=["--runtime-path", f"nodejs22.x={node22}", "--queue-gauge-interval-ms", "500"])
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def cw(srv):
    return boto_client("cloudwatch", srv.endpoint)


@pytest.fixture(scope="module")
def sqs(srv):
    return srv.sqs_client()


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def stat(cw, namespace: str, metric: str, dims: list[dict], statistic: str = "Sum") -> float | None:
    """`statistic` over the last ten minutes in one period, or None without datapoints."""
    pts = cw.get_metric_statistics(Namespace=namespace, MetricName=metric, Dimensions=dims,
                                   StartTime=now() - dt.timedelta(minutes=10), EndTime=now() + dt.timedelta(minutes=1),
                                   Period=900, Statistics=[statistic])["Datapoints"]
    assert len(pts) <= 1, pts
    return pts[0][statistic] if pts else None


def unit_of(cw, namespace: str, metric: str, dims: list[dict]) -> str:
    pts = cw.get_metric_statistics(Namespace=namespace, MetricName=metric, Dimensions=dims,
                                   StartTime=now() - dt.timedelta(minutes=10), EndTime=now() + dt.timedelta(minutes=1),
                                   Period=900, Statistics=["Sum"])["Datapoints"]
    return pts[0]["Unit"]


def test_sqs_counts_sends_receives_deletes_and_samples_gauges(cw, sqs):
    name = unique("metered")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    by_queue = [{"Name": "QueueName", "Value": name}]
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "ab"}, {"Id": "b", "MessageBody": "abc"}])
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=600)
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=600)["Messages"]
    assert len(got) == 2
    sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
    sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=600)
    assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)

    assert stat(cw, "AWS/SQS", "NumberOfMessagesSent", by_queue) == 4
    assert stat(cw, "AWS/SQS", "SentMessageSize", by_queue, "Sum") == 15
    assert stat(cw, "AWS/SQS", "SentMessageSize", by_queue, "Maximum") == 5
    assert unit_of(cw, "AWS/SQS", "SentMessageSize", by_queue) == "Bytes"
    assert stat(cw, "AWS/SQS", "NumberOfMessagesReceived", by_queue) == 3
    assert stat(cw, "AWS/SQS", "NumberOfEmptyReceives", by_queue) == 1
    assert stat(cw, "AWS/SQS", "NumberOfMessagesDeleted", by_queue) == 1
    assert unit_of(cw, "AWS/SQS", "NumberOfMessagesSent", by_queue) == "Count"

    # The gauges, sampled after all that: nothing visible, two in flight, one delayed.
    def sampled():
        return stat(cw, "AWS/SQS", "ApproximateNumberOfMessagesNotVisible", by_queue, "Maximum") == 2
    wait_for(sampled, timeout=10, what="the gauges' sample")
    # A sample may have come between the sends and the receives (three visible), or between
    # the two receives (one visible): each statistic is waited for, not read once.
    wait_for(lambda: stat(cw, "AWS/SQS", "ApproximateNumberOfMessagesVisible", by_queue, "Minimum") == 0, timeout=10,
             what="nothing visible sampled")
    assert stat(cw, "AWS/SQS", "ApproximateNumberOfMessagesDelayed", by_queue, "Maximum") == 1
    assert unit_of(cw, "AWS/SQS", "ApproximateAgeOfOldestMessage", by_queue) == "Seconds"
    # Every sample since the receives counted nothing visible, so the sum grows only once
    # the new message is sampled (the maximum may be an earlier sample's three).
    before = stat(cw, "AWS/SQS", "ApproximateNumberOfMessagesVisible", by_queue, "Sum")
    sqs.send_message(QueueUrl=url, MessageBody="ready")
    wait_for(lambda: stat(cw, "AWS/SQS", "ApproximateNumberOfMessagesVisible", by_queue, "Sum") > before, timeout=10,
             what="a visible message sampled")

    metrics = cw.list_metrics(Namespace="AWS/SQS", Dimensions=by_queue)["Metrics"]
    assert {m["MetricName"] for m in metrics} == {
        "NumberOfMessagesSent", "SentMessageSize", "NumberOfMessagesReceived", "NumberOfEmptyReceives",
        "NumberOfMessagesDeleted", "ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed", "ApproximateAgeOfOldestMessage"}
    assert all(m["Dimensions"] == by_queue for m in metrics), metrics


HANDLER = "exports.handler = async (e) => { console.log(JSON.stringify(e)); return 'ok'; };\n"


def function(srv, principal: str) -> tuple[str, str]:
    """A function that `principal` may invoke: (name, ARN)."""
    lam = srv.lambda_client()
    name = unique("metered")
    fn = create_function(lam, name, "nodejs20.x", "index.handler", make_zip({"index.js": HANDLER}))
    lam.add_permission(FunctionName=name, StatementId="service", Action="lambda:InvokeFunction", Principal=principal)
    return name, fn.config["FunctionArn"]


def test_sns_counts_publishes_deliveries_failures_and_filtered_out(srv, cw, sqs):
    sns = srv.sns_client()
    topic_name = unique("metered")
    topic = sns.create_topic(Name=topic_name)["TopicArn"]
    by_topic = [{"Name": "TopicName", "Value": topic_name}]

    def queue(policy: bool) -> tuple[str, str]:
        name = unique("from-sns")
        arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
        attrs = {"Policy": sns_may_send(arn)} if policy else {}
        return name, sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]

    (q_name, _), (filtered_name, _), (refusing_name, _) = queue(True), queue(True), queue(False)
    arn_of = lambda n: f"arn:aws:sqs:{REGION}:{ACCOUNT}:{n}"  # noqa: E731
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn_of(q_name))
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn_of(filtered_name),
                  Attributes={"FilterPolicy": json.dumps({"kind": ["big"]})})
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn_of(refusing_name))
    _, fn_arn = function(srv, "sns.amazonaws.com")
    sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=fn_arn)

    sns.publish(TopicArn=topic, Message="big one", MessageAttributes={"kind": {"DataType": "String", "StringValue": "big"}})
    sns.publish(TopicArn=topic, Message="small")

    assert stat(cw, "AWS/SNS", "NumberOfMessagesPublished", by_topic) == 2
    assert stat(cw, "AWS/SNS", "PublishSize", by_topic, "Sum") == len("big one") + len("kind") + len("String") + len("big") + len("small")
    assert unit_of(cw, "AWS/SNS", "PublishSize", by_topic) == "Bytes"
    assert stat(cw, "AWS/SNS", "NumberOfNotificationsFilteredOut", by_topic) == 1
    # Queue, function (queued for its asynchronous invocation) and the filtered queue's one.
    wait_for(lambda: stat(cw, "AWS/SNS", "NumberOfNotificationsDelivered", by_topic) == 5, timeout=15,
             what="five deliveries counted")
    # The queue whose policy does not let SNS send refuses: failed at once, not retried.
    wait_for(lambda: stat(cw, "AWS/SNS", "NumberOfNotificationsFailed", by_topic) == 2, timeout=15, what="two failures counted")
    # What SNS sent into the queues is counted by SQS too.
    assert stat(cw, "AWS/SQS", "NumberOfMessagesSent", [{"Name": "QueueName", "Value": q_name}]) == 2
    assert stat(cw, "AWS/SQS", "NumberOfMessagesSent", [{"Name": "QueueName", "Value": filtered_name}]) == 1
    assert stat(cw, "AWS/SQS", "NumberOfMessagesSent", [{"Name": "QueueName", "Value": refusing_name}]) is None

    metrics = cw.list_metrics(Namespace="AWS/SNS", Dimensions=by_topic)["Metrics"]
    assert {m["MetricName"] for m in metrics} == {
        "NumberOfMessagesPublished", "PublishSize", "NumberOfNotificationsDelivered", "NumberOfNotificationsFailed",
        "NumberOfNotificationsFilteredOut"}
    assert all(m["Dimensions"] == by_topic for m in metrics), metrics


def test_events_count_matches_triggers_and_invocations(srv, cw):
    events = srv.events_client()
    rule = unique("metered")
    events.put_rule(Name=rule, EventPattern=json.dumps({"source": ["metered.shop"]}))
    _, allowed = function(srv, "events.amazonaws.com")
    _, refusing = function(srv, "sns.amazonaws.com")
    events.put_targets(Rule=rule, Targets=[{"Id": "allowed", "Arn": allowed}, {"Id": "refusing", "Arn": refusing}])
    bus = "metered-bus"
    events.create_event_bus(Name=bus)
    custom = unique("on-bus")
    events.put_rule(Name=custom, EventBusName=bus, EventPattern=json.dumps({"source": ["metered.shop"]}))
    events.put_targets(Rule=custom, EventBusName=bus, Targets=[{"Id": "allowed", "Arn": allowed}])
    entry = {"Source": "metered.shop", "DetailType": "Order", "Detail": "{}"}
    out = events.put_events(Entries=[entry, entry, {**entry, "Source": "elsewhere"}, {**entry, "EventBusName": bus}])
    assert out["FailedEntryCount"] == 0

    by_rule = [{"Name": "RuleName", "Value": rule}]
    on_bus = [{"Name": "EventBusName", "Value": bus}, {"Name": "RuleName", "Value": custom}]
    assert stat(cw, "AWS/Events", "MatchedEvents", by_rule) == 2
    assert stat(cw, "AWS/Events", "TriggeredRules", by_rule) == 2
    assert stat(cw, "AWS/Events", "Invocations", by_rule) == 4
    # The function whose policy does not let EventBridge invoke it.
    assert stat(cw, "AWS/Events", "FailedInvocations", by_rule) == 2
    assert stat(cw, "AWS/Events", "Invocations", on_bus) == 1
    assert stat(cw, "AWS/Events", "FailedInvocations", on_bus) is None
    assert stat(cw, "AWS/Events", "Invocations", []) == 5
    assert stat(cw, "AWS/Events", "MatchedEvents", []) == 3
    assert unit_of(cw, "AWS/Events", "Invocations", by_rule) == "Count"

    listed = cw.list_metrics(Namespace="AWS/Events", Dimensions=by_rule)["Metrics"]
    assert {m["MetricName"] for m in listed} == {"MatchedEvents", "TriggeredRules", "Invocations", "FailedInvocations"}
    assert all(m["Dimensions"] == by_rule for m in listed), listed
    listed = cw.list_metrics(Namespace="AWS/Events", Dimensions=on_bus)["Metrics"]
    assert {m["MetricName"] for m in listed} == {"MatchedEvents", "TriggeredRules", "Invocations"}
    assert all(m["Dimensions"] == on_bus for m in listed), listed

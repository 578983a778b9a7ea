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
    assert stat(cw, "AWS/SQS", "ApproximateNumberOfMessagesVisible", by_queue, "Minimum") == 0
    assert stat(cw, "AWS/SQS", "ApproximateNumberOfMessagesDelayed", by_queue, "Maximum") == 1
    assert unit_of(cw, "AWS/SQS", "ApproximateAgeOfOldestMessage", by_queue) == "Seconds"
    sqs.send_message(QueueUrl=url, MessageBody="ready")
    wait_for(lambda: stat(cw, "AWS/SQS", "ApproximateNumberOfMessagesVisible", by_queue, "Maximum") == 1, timeout=10,
             what="a visible message sampled")

    metrics = cw.list_metrics(Namespace="AWS/SQS", Dimensions=by_queue)["Metrics"]
    assert {m["MetricName"] for m in metrics} == {
        "NumberOfMessagesSent", "SentMessageSize", "NumberOfMessagesReceived", "NumberOfEmptyReceives",
        "NumberOfMessagesDeleted", "ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed", "ApproximateAgeOfOldestMessage"}
    assert all(m["Dimensions"] == by_queue for m in metrics), metrics

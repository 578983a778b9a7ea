"""SQS: every action through boto3 (JSON 1.0, what current botocore speaks), the query
protocol through boto3 with botocore's last query model and through raw form posts, the aws
CLI, long polling, visibility, redrive, FIFO, MD5s and durability across kill -9."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET

import pytest
from botocore.exceptions import ClientError

from helpers import admin_signed, aws_cli_runner, ACCOUNT, REGION, client_error, sqs_attributes_md5, unique

NS = {"q": "http://queue.amazonaws.com/doc/2012-11-05/"}


@pytest.fixture(scope="module")
def sqs(server):
    return server.sqs_client()


@pytest.fixture(scope="module")
def sqs_raw(server):
    """No client-side parameter validation: lets invalid requests reach the server."""
    return server.sqs_client(validate=False)


@pytest.fixture
def queue(sqs):
    """make(name=None, fifo=False, **attributes) -> queue URL; queues deleted after the test."""
    made: list[str] = []

    def make(name: str | None = None, fifo: bool = False, tags: dict | None = None, **attributes) -> str:
        name = name or unique("q") + (".fifo" if fifo else "")
        attrs = {k: str(v) for k, v in attributes.items()}
        if fifo:
            attrs["FifoQueue"] = "true"
        kw = {"QueueName": name, "Attributes": attrs}
        if tags:
            kw["tags"] = tags
        url = sqs.create_queue(**kw)["QueueUrl"]
        made.append(url)
        return url

    yield make
    for url in made:
        try:
            sqs.delete_queue(QueueUrl=url)
        except ClientError:
            pass


def arn_of(url: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{url.rsplit('/', 1)[1]}"


def raw_json(server, target: str, body: dict) -> tuple[int, dict, dict]:
    u = urllib.parse.urlsplit(server.endpoint)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        data = json.dumps(body).encode()
        conn.request("POST", "/", body=data, headers=admin_signed(server.endpoint, "sqs", "POST", "/", {
            "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"AmazonSQS.{target}"}, data))
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, json.loads(r.read() or b"{}")
    finally:
        conn.close()


def raw_query(server, params: dict, path: str = "/") -> tuple[int, ET.Element]:
    u = urllib.parse.urlsplit(server.endpoint)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        data = urllib.parse.urlencode(params).encode()
        conn.request("POST", path, body=data, headers=admin_signed(
            server.endpoint, "sqs", "POST", path, {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, data))
        r = conn.getresponse()
        return r.status, ET.fromstring(r.read())
    finally:
        conn.close()


# ---- queues --------------------------------------------------------------------------------


def test_queue_lifecycle(sqs, queue, server):
    name = unique("life")
    url = queue(name, VisibilityTimeout=45, DelaySeconds=2)
    assert url == f"{server.endpoint}/{ACCOUNT}/{name}"
    assert queue(name, VisibilityTimeout=45) == url, "same attributes: the existing queue"
    with pytest.raises(ClientError) as ei:
        sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "46"})
    assert client_error(ei)[:2] == ("QueueAlreadyExists", 400)
    assert ei.value.response["Error"]["QueryErrorCode"] == "QueueNameExists"
    assert isinstance(ei.value, sqs.exceptions.QueueNameExists)
    assert sqs.get_queue_url(QueueName=name)["QueueUrl"] == url

    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["VisibilityTimeout"] == "45"
    assert attrs["DelaySeconds"] == "2"
    assert attrs["MaximumMessageSize"] == "1048576"
    assert attrs["MessageRetentionPeriod"] == "345600"
    assert attrs["QueueArn"] == arn_of(url)
    for k in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"):
        assert attrs[k] == "0"
    assert abs(int(attrs["CreatedTimestamp"]) - time.time()) < 60
    assert "FifoQueue" not in attrs
    only = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn", "DelaySeconds"])["Attributes"]
    assert set(only) == {"QueueArn", "DelaySeconds"}

    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "5", "ReceiveMessageWaitTimeSeconds": "1"})
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout", "ReceiveMessageWaitTimeSeconds"])["Attributes"]
    assert attrs == {"VisibilityTimeout": "5", "ReceiveMessageWaitTimeSeconds": "1"}
    with pytest.raises(ClientError) as ei:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Bogus": "1"})
    assert client_error(ei)[0] == "InvalidAttributeName"
    with pytest.raises(ClientError) as ei:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "43201"})
    assert client_error(ei)[0] == "InvalidAttributeValue"

    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist) as ei:
        sqs.get_queue_url(QueueName=name)
    assert client_error(ei) == ("AWS.SimpleQueueService.NonExistentQueue", 400, "The specified queue does not exist.")


def test_error_shape_json_protocol(server):
    status, headers, body = raw_json(server, "GetQueueUrl", {"QueueName": unique("missing")})
    assert status == 400
    assert body["__type"] == "com.amazonaws.sqs#QueueDoesNotExist"
    assert body["message"] == "The specified queue does not exist."
    assert headers["x-amzn-query-error"] == "AWS.SimpleQueueService.NonExistentQueue;Sender"
    assert headers["content-type"] == "application/x-amz-json-1.0"
    assert headers["x-amzn-requestid"]
    status, headers, body = raw_json(server, "NoSuchAction", {})
    assert status == 400 and body["__type"].endswith("#InvalidAction")


def test_queue_names_and_urls(sqs, queue, server):
    with pytest.raises(ClientError) as ei:
        sqs.create_queue(QueueName="bad name!")
    assert client_error(ei)[0] == "InvalidParameterValue"
    with pytest.raises(ClientError) as ei:
        sqs.create_queue(QueueName="x" * 81)
    assert client_error(ei)[0] == "InvalidParameterValue"
    with pytest.raises(ClientError) as ei:
        sqs.create_queue(QueueName=unique("nofifo") + ".fifo")
    assert client_error(ei)[0] == "InvalidParameterValue"
    url = queue()
    name = url.rsplit("/", 1)[1]
    # Any host, the localhost form, and the bare name all address the queue.
    for alias in (url, f"http://localhost:{server.port}/{ACCOUNT}/{name}", f"http://sqs.us-east-1.amazonaws.com/{ACCOUNT}/{name}", name):
        sqs.send_message(QueueUrl=alias, MessageBody="x")
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "4"
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.send_message(QueueUrl=f"http://localhost/123456789012/{name}", MessageBody="x")


def test_list_queues_prefix_and_pages(sqs, queue):
    prefix = unique("lst")
    urls = sorted(queue(f"{prefix}-{i}") for i in range(5))
    assert sorted(sqs.list_queues(QueueNamePrefix=prefix)["QueueUrls"]) == urls
    assert "NextToken" not in sqs.list_queues(QueueNamePrefix=prefix)
    seen, token = [], None
    for _ in range(5):
        kw = {"QueueNamePrefix": prefix, "MaxResults": 2}
        if token:
            kw["NextToken"] = token
        page = sqs.list_queues(**kw)
        assert len(page["QueueUrls"]) <= 2
        seen += page["QueueUrls"]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == urls
    assert "QueueUrls" not in sqs.list_queues(QueueNamePrefix=unique("none"))
    paginator = sqs.get_paginator("list_queues")
    assert sorted(u for p in paginator.paginate(QueueNamePrefix=prefix, MaxResults=2) for u in p.get("QueueUrls", [])) == urls


def test_tags(sqs, queue):
    url = queue(tags={"team": "a", "env": "dev"})
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "a", "env": "dev"}
    sqs.tag_queue(QueueUrl=url, Tags={"env": "prod", "cost": "42"})
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "a", "env": "prod", "cost": "42"}
    sqs.untag_queue(QueueUrl=url, TagKeys=["team", "cost"])
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"env": "prod"}
    sqs.untag_queue(QueueUrl=url, TagKeys=["env"])
    assert "Tags" not in sqs.list_queue_tags(QueueUrl=url)


def test_purge(sqs, queue):
    url = queue()
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")
    sqs.purge_queue(QueueUrl=url)
    assert "Messages" not in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.purge_queue(QueueUrl=url + "-gone")


# ---- messages ------------------------------------------------------------------------------


ATTRS = {
    "City": {"DataType": "String", "StringValue": "Any City"},
    "Population": {"DataType": "Number", "StringValue": "1250800"},
    "Blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xfe\xff"},
    "geo.lat": {"DataType": "Number.float", "StringValue": "47.61"},
    "geo.lon": {"DataType": "Number.float", "StringValue": "-122.33"},
    "unicode": {"DataType": "String", "StringValue": "snow ☃ \U0001f600"},
}


def test_send_receive_delete_with_attributes_and_md5s(sqs, queue):
    url = queue()
    body = "hello ☃ <xml> & \"quotes\"\n\ttab"
    sent = sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=ATTRS)
    assert sent["MD5OfMessageBody"] == hashlib.md5(body.encode()).hexdigest()
    assert sent["MD5OfMessageAttributes"] == sqs_attributes_md5(ATTRS)
    got = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], MessageSystemAttributeNames=["All"], WaitTimeSeconds=1)
    [m] = got["Messages"]
    assert m["MessageId"] == sent["MessageId"]
    assert m["Body"] == body
    assert m["MD5OfBody"] == sent["MD5OfMessageBody"]
    assert m["MessageAttributes"] == ATTRS
    assert m["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    a = m["Attributes"]
    assert a["ApproximateReceiveCount"] == "1"
    assert abs(int(a["SentTimestamp"]) / 1000 - time.time()) < 60
    assert int(a["ApproximateFirstReceiveTimestamp"]) >= int(a["SentTimestamp"])
    assert a["SenderId"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])  # already gone: still fine
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    with pytest.raises(ClientError) as ei:
        sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-handle")
    assert client_error(ei)[0] == "ReceiptHandleIsInvalid"


def test_attribute_selection(sqs, queue):
    url = queue()
    sqs.send_message(QueueUrl=url, MessageBody="x", MessageAttributes=ATTRS)
    m = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["geo.*", "City"], AttributeNames=["SentTimestamp"])["Messages"][0]
    assert set(m["MessageAttributes"]) == {"geo.lat", "geo.lon", "City"}
    # The digest covers the attributes returned.
    assert m["MD5OfMessageAttributes"] == sqs_attributes_md5(m["MessageAttributes"])
    assert set(m["Attributes"]) == {"SentTimestamp"}
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
    m = sqs.receive_message(QueueUrl=url)["Messages"][0]
    assert "MessageAttributes" not in m and "MD5OfMessageAttributes" not in m and "Attributes" not in m


def test_md5_of_aws_documented_examples(sqs, queue):
    """Messages from the aws CLI's SQS examples, whose digests were computed by real SQS
    (only the first and last 8 hex digits are published)."""
    url = queue()
    for attrs, head, tail in [
        ({"SellerName": "Example Store", "City": "Any City", "Region": "WA", "PostalCode": "99065", "PricePerGallon": ("Number", "1.99")},
         "10809b55", "baf283ef"),
        ({"SellerName": "Example Fuels", "City": "North Town", "Region": "WA", "PostalCode": "99123", "PricePerGallon": ("Number", "1.87")},
         "55623928", "ae354a25"),
        ({"PostalCode": "ABC123"}, "b8e89563", "e088e74f"),
    ]:
        ma = {k: ({"DataType": v[0], "StringValue": v[1]} if isinstance(v, tuple) else {"DataType": "String", "StringValue": v})
              for k, v in attrs.items()}
        md5 = sqs.send_message(QueueUrl=url, MessageBody="fuel report", MessageAttributes=ma)["MD5OfMessageAttributes"]
        assert md5.startswith(head) and md5.endswith(tail), md5
    assert sqs.send_message(QueueUrl=url, MessageBody="x", MessageAttributes={
        "SellerName": {"DataType": "String", "StringValue": "Example Store"}})["MD5OfMessageAttributes"] == "cd28f3b68aeee4b2eac9c66f2f694b58"


def test_batches(sqs, sqs_raw, queue):
    url = queue(MaximumMessageSize=1024)
    out = sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "a", "MessageBody": "one", "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}}},
        {"Id": "b", "MessageBody": "two", "DelaySeconds": 0},
        {"Id": "too-big", "MessageBody": "x" * 1025},
        {"Id": "bad-chars", "MessageBody": "nul \x00 here"},
    ])
    assert sorted(e["Id"] for e in out["Successful"]) == ["a", "b"]
    ok = {e["Id"]: e for e in out["Successful"]}
    assert ok["a"]["MD5OfMessageAttributes"] == sqs_attributes_md5({"k": {"DataType": "String", "StringValue": "v"}})
    assert ok["b"]["MD5OfMessageBody"] == hashlib.md5(b"two").hexdigest()
    failed = {e["Id"]: e for e in out["Failed"]}
    assert failed["too-big"]["Code"] == "InvalidParameterValue" and failed["too-big"]["SenderFault"] is True
    assert failed["bad-chars"]["Code"] == "InvalidMessageContents"

    msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30)["Messages"]
    assert sorted(m["Body"] for m in msgs) == ["one", "two"]
    cv = sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
        {"Id": "m0", "ReceiptHandle": msgs[0]["ReceiptHandle"], "VisibilityTimeout": 0},
        {"Id": "bad", "ReceiptHandle": "bad", "VisibilityTimeout": 0},
    ])
    assert [e["Id"] for e in cv["Successful"]] == ["m0"]
    assert cv["Failed"][0]["Code"] == "ReceiptHandleIsInvalid"
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in again] == [msgs[0]["Body"]]
    d = sqs.delete_message_batch(QueueUrl=url, Entries=[
        {"Id": "x", "ReceiptHandle": again[0]["ReceiptHandle"]},
        {"Id": "y", "ReceiptHandle": msgs[1]["ReceiptHandle"]},
        {"Id": "z", "ReceiptHandle": "bogus"},
    ])
    assert sorted(e["Id"] for e in d["Successful"]) == ["x", "y"]
    assert [e["Id"] for e in d["Failed"]] == ["z"]

    for entries, code in [
        ([], "AWS.SimpleQueueService.EmptyBatchRequest"),
        ([{"Id": str(i), "MessageBody": "x"} for i in range(11)], "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"),
        ([{"Id": "same", "MessageBody": "x"}, {"Id": "same", "MessageBody": "y"}], "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"),
        ([{"Id": "no spaces", "MessageBody": "x"}], "AWS.SimpleQueueService.InvalidBatchEntryId"),
    ]:
        with pytest.raises(ClientError) as ei:
            sqs_raw.send_message_batch(QueueUrl=url, Entries=entries)
        assert client_error(ei)[0] == code, entries
    with pytest.raises(sqs_raw.exceptions.EmptyBatchRequest):
        sqs_raw.delete_message_batch(QueueUrl=url, Entries=[])
    with pytest.raises(sqs_raw.exceptions.BatchEntryIdsNotDistinct):
        sqs_raw.change_message_visibility_batch(QueueUrl=url, Entries=[
            {"Id": "a", "ReceiptHandle": "r", "VisibilityTimeout": 1}, {"Id": "a", "ReceiptHandle": "r", "VisibilityTimeout": 1}])


def test_validation(sqs, sqs_raw, queue):
    url = queue(MaximumMessageSize=1024)
    cases = [
        (lambda: sqs.send_message(QueueUrl=url, MessageBody="x" * 1025), "InvalidParameterValue"),
        # attributes count towards the size
        (lambda: sqs.send_message(QueueUrl=url, MessageBody="x" * 1000,
                                  MessageAttributes={"a": {"DataType": "String", "StringValue": "y" * 30}}), "InvalidParameterValue"),
        (lambda: sqs.send_message(QueueUrl=url, MessageBody="\ufffe"), "InvalidMessageContents"),
        (lambda: sqs_raw.send_message(QueueUrl=url, MessageBody=""), "MissingParameter"),
        (lambda: sqs.send_message(QueueUrl=url, MessageBody="x", DelaySeconds=901), "InvalidParameterValue"),
        (lambda: sqs.send_message(QueueUrl=url, MessageBody="x", MessageAttributes={"n": {"DataType": "Number", "StringValue": "abc"}}),
         "InvalidParameterValue"),
        (lambda: sqs.send_message(QueueUrl=url, MessageBody="x", MessageAttributes={"AWS.x": {"DataType": "String", "StringValue": "v"}}),
         "InvalidParameterValue"),
        (lambda: sqs.send_message(QueueUrl=url, MessageBody="x", MessageAttributes={
            f"a{i}": {"DataType": "String", "StringValue": "v"} for i in range(11)}), "InvalidParameterValue"),
        (lambda: sqs.send_message(QueueUrl=url, MessageBody="x", MessageDeduplicationId="d"), "InvalidParameterValue"),
        (lambda: sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=11), "InvalidParameterValue"),
        (lambda: sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=0), "InvalidParameterValue"),
        (lambda: sqs.receive_message(QueueUrl=url, WaitTimeSeconds=21), "InvalidParameterValue"),
        (lambda: sqs.receive_message(QueueUrl=url, VisibilityTimeout=43201), "InvalidParameterValue"),
        (lambda: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Nope"]), "InvalidAttributeName"),
    ]
    for call, code in cases:
        with pytest.raises(ClientError) as ei:
            call()
        assert client_error(ei)[0] == code
    # 1 MiB is the default limit, attributes included.
    big = queue()
    sqs.send_message(QueueUrl=big, MessageBody="x" * (1048576 - 10), MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}})
    with pytest.raises(ClientError) as ei:
        sqs.send_message(QueueUrl=big, MessageBody="x" * 1048570, MessageAttributes={"k": {"DataType": "String", "StringValue": "vvvvv"}})
    assert "1048576" in client_error(ei)[2]


def test_change_visibility_and_not_inflight(sqs, queue):
    url = queue()
    sqs.send_message(QueueUrl=url, MessageBody="v")
    m = sqs.receive_message(QueueUrl=url, VisibilityTimeout=60)["Messages"][0]
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
    with pytest.raises(ClientError) as ei:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=10)
    assert client_error(ei)[0] == "AWS.SimpleQueueService.MessageNotInflight"
    assert isinstance(ei.value, sqs.exceptions.MessageNotInflight)
    m2 = sqs.receive_message(QueueUrl=url)["Messages"][0]
    assert m2["MessageId"] == m["MessageId"]


def test_visibility_timeout_expiry_redelivers(sqs, queue):
    url = queue(VisibilityTimeout=1)
    sqs.send_message(QueueUrl=url, MessageBody="again")
    first = sqs.receive_message(QueueUrl=url, AttributeNames=["All"])["Messages"][0]
    assert "Messages" not in sqs.receive_message(QueueUrl=url), "invisible while in flight"
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "1"
    t0 = time.monotonic()
    again = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5, AttributeNames=["All"])["Messages"][0]
    waited = time.monotonic() - t0
    assert waited < 2.5, f"a long poll wakes when the visibility timeout ends ({waited:.2f}s)"
    assert again["MessageId"] == first["MessageId"]
    assert again["ReceiptHandle"] != first["ReceiptHandle"]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"


def test_delay_seconds(sqs, queue):
    url = queue(DelaySeconds=1)
    sqs.send_message(QueueUrl=url, MessageBody="late")
    sqs.send_message(QueueUrl=url, MessageBody="now", DelaySeconds=0)
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesDelayed", "ApproximateNumberOfMessages"])
    assert attrs["Attributes"] == {"ApproximateNumberOfMessagesDelayed": "1", "ApproximateNumberOfMessages": "1"}
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]] == ["now"]
    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)
    assert [m["Body"] for m in got["Messages"]] == ["late"]


def test_long_polling_returns_when_a_message_arrives(sqs, server, queue):
    url = queue()
    sender = server.sqs_client()

    def send_later():
        time.sleep(0.5)
        sender.send_message(QueueUrl=url, MessageBody="wake up")

    threading.Thread(target=send_later, daemon=True).start()
    t0 = time.monotonic()
    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10)
    elapsed = time.monotonic() - t0
    assert [m["Body"] for m in got["Messages"]] == ["wake up"]
    assert 0.4 < elapsed < 1.5, f"returned after {elapsed:.3f}s"
    # An empty queue waits for the full wait time (here the queue's default).
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"ReceiveMessageWaitTimeSeconds": "1"})
    t0 = time.monotonic()
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    assert 0.95 < time.monotonic() - t0 < 2.0


def test_redrive_to_dead_letter_queue(sqs, queue):
    dlq = queue()
    policy = json.dumps({"deadLetterTargetArn": arn_of(dlq), "maxReceiveCount": "2"})
    src = queue(VisibilityTimeout=1, RedrivePolicy=policy)
    attrs = sqs.get_queue_attributes(QueueUrl=src, AttributeNames=["RedrivePolicy"])["Attributes"]
    assert json.loads(attrs["RedrivePolicy"]) == {"deadLetterTargetArn": arn_of(dlq), "maxReceiveCount": 2}
    sent = sqs.send_message(QueueUrl=src, MessageBody="poison", MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}})
    for n in (1, 2):
        m = sqs.receive_message(QueueUrl=src, WaitTimeSeconds=3, AttributeNames=["ApproximateReceiveCount"])["Messages"][0]
        assert m["Attributes"]["ApproximateReceiveCount"] == str(n)
    time.sleep(1.1)
    assert "Messages" not in sqs.receive_message(QueueUrl=src, WaitTimeSeconds=1), "third receive moves it instead"
    dead = sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=2, AttributeNames=["All"], MessageAttributeNames=["All"])["Messages"][0]
    assert dead["MessageId"] == sent["MessageId"]
    assert dead["Body"] == "poison"
    assert dead["MessageAttributes"] == {"k": {"DataType": "String", "StringValue": "v"}}
    assert dead["Attributes"]["DeadLetterQueueSourceArn"] == arn_of(src)
    assert sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"] == [src]
    assert sqs.list_dead_letter_source_queues(QueueUrl=src)["queueUrls"] == []
    with pytest.raises(ClientError) as ei:
        sqs.set_queue_attributes(QueueUrl=src, Attributes={"RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": arn_of(dlq) + "-missing", "maxReceiveCount": 2})})
    assert client_error(ei)[0] == "InvalidParameterValue"


def test_fifo_ordering_per_group(sqs, queue):
    url = queue(fifo=True, ContentBasedDeduplication="true")
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["FifoQueue"] == "true" and attrs["ContentBasedDeduplication"] == "true"
    seqs = []
    for group, body in [("A", "a1"), ("A", "a2"), ("B", "b1"), ("A", "a3"), ("B", "b2")]:
        r = sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=group)
        seqs.append(int(r["SequenceNumber"]))
    assert seqs == sorted(seqs)
    first = sqs.receive_message(QueueUrl=url, AttributeNames=["All"])["Messages"]
    assert [m["Body"] for m in first] == ["a1"]
    assert first[0]["Attributes"]["MessageGroupId"] == "A"
    assert first[0]["Attributes"]["SequenceNumber"] == str(seqs[0]).zfill(20)
    # A group with a message in flight delivers nothing more.
    rest = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in rest] == ["b1", "b2"]
    assert "Messages" not in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"])
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]] == ["a2", "a3"]

    with pytest.raises(ClientError) as ei:
        sqs.send_message(QueueUrl=url, MessageBody="x")
    assert client_error(ei)[0] == "MissingParameter"
    with pytest.raises(ClientError) as ei:
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="A", DelaySeconds=3)
    assert client_error(ei)[0] == "InvalidParameterValue"


def test_fifo_deduplication(sqs, queue):
    url = queue(fifo=True)
    with pytest.raises(ClientError) as ei:
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="g")
    assert client_error(ei)[0] == "InvalidParameterValue"
    a = sqs.send_message(QueueUrl=url, MessageBody="first", MessageGroupId="g", MessageDeduplicationId="k1")
    b = sqs.send_message(QueueUrl=url, MessageBody="second", MessageGroupId="g", MessageDeduplicationId="k1")
    c = sqs.send_message(QueueUrl=url, MessageBody="third", MessageGroupId="g", MessageDeduplicationId="k2")
    assert a["MessageId"] == b["MessageId"] and a["SequenceNumber"] == b["SequenceNumber"]
    assert c["MessageId"] != a["MessageId"]
    batch = sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "1", "MessageBody": "dup", "MessageGroupId": "g", "MessageDeduplicationId": "k2"},
        {"Id": "2", "MessageBody": "fourth", "MessageGroupId": "g", "MessageDeduplicationId": "k3"},
    ])
    assert len(batch["Successful"]) == 2
    msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    assert [m["Body"] for m in msgs] == ["first", "third", "fourth"]
    assert [m["Attributes"]["MessageDeduplicationId"] for m in msgs] == ["k1", "k2", "k3"]

    cb = queue(fifo=True, ContentBasedDeduplication="true")
    x = sqs.send_message(QueueUrl=cb, MessageBody="same body", MessageGroupId="g")
    y = sqs.send_message(QueueUrl=cb, MessageBody="same body", MessageGroupId="other")
    assert x["MessageId"] == y["MessageId"]
    m = sqs.receive_message(QueueUrl=cb, MaxNumberOfMessages=10, AttributeNames=["MessageDeduplicationId"])["Messages"]
    assert len(m) == 1
    assert m[0]["Attributes"]["MessageDeduplicationId"] == hashlib.sha256(b"same body").hexdigest()


# ---- the query protocol ----------------------------------------------------------------------


def test_query_protocol_with_boto3(server, queue):
    q = server.sqs_client(protocol="query")
    name = unique("qry")
    url = q.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "7"}, tags={"t": "1"})["QueueUrl"]
    try:
        assert url.endswith(f"/{ACCOUNT}/{name}")
        assert q.get_queue_url(QueueName=name)["QueueUrl"] == url
        assert url in q.list_queues(QueueNamePrefix=name)["QueueUrls"]
        sent = q.send_message(QueueUrl=url, MessageBody="<xml> & ☃", MessageAttributes=ATTRS)
        assert sent["MD5OfMessageAttributes"] == sqs_attributes_md5(ATTRS)
        batch = q.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "b1"}, {"Id": "bad", "MessageBody": "\x01"}])
        assert [e["Id"] for e in batch["Successful"]] == ["a"] and batch["Failed"][0]["Code"] == "InvalidMessageContents"
        msgs = q.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"])["Messages"]
        by_body = {m["Body"]: m for m in msgs}
        assert by_body["<xml> & ☃"]["MessageAttributes"] == ATTRS
        assert by_body["<xml> & ☃"]["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
        assert by_body["b1"]["Attributes"]["ApproximateReceiveCount"] == "1"
        q.change_message_visibility(QueueUrl=url, ReceiptHandle=by_body["b1"]["ReceiptHandle"], VisibilityTimeout=0)
        d = q.delete_message_batch(QueueUrl=url, Entries=[{"Id": "x", "ReceiptHandle": by_body["<xml> & ☃"]["ReceiptHandle"]}])
        assert d["Successful"] == [{"Id": "x"}]
        attrs = q.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert attrs["VisibilityTimeout"] == "7" and attrs["ApproximateNumberOfMessages"] == "1"
        q.set_queue_attributes(QueueUrl=url, Attributes={"DelaySeconds": "1"})
        q.tag_queue(QueueUrl=url, Tags={"u": "2"})
        assert q.list_queue_tags(QueueUrl=url)["Tags"] == {"t": "1", "u": "2"}
        q.untag_queue(QueueUrl=url, TagKeys=["t"])
        q.purge_queue(QueueUrl=url)
        assert q.list_dead_letter_source_queues(QueueUrl=url).get("queueUrls", []) == []
        with pytest.raises(ClientError) as ei:
            q.get_queue_url(QueueName=name + "-missing")
        assert client_error(ei)[:2] == ("AWS.SimpleQueueService.NonExistentQueue", 400)
        assert isinstance(ei.value, q.exceptions.QueueDoesNotExist)
    finally:
        q.delete_queue(QueueUrl=url)


def test_query_protocol_raw_form_posts(server, queue):
    url = queue()
    path = urllib.parse.urlsplit(url).path
    status, doc = raw_query(server, {"Action": "SendMessage", "Version": "2012-11-05", "QueueUrl": url, "MessageBody": "raw & <b>",
                                     "MessageAttribute.1.Name": "n", "MessageAttribute.1.Value.DataType": "Number",
                                     "MessageAttribute.1.Value.StringValue": "7"})
    assert status == 200
    assert doc.tag == "{%s}SendMessageResponse" % NS["q"]
    assert doc.find("q:SendMessageResult/q:MD5OfMessageBody", NS).text == hashlib.md5(b"raw & <b>").hexdigest()
    assert doc.find("q:SendMessageResult/q:MD5OfMessageAttributes", NS).text == sqs_attributes_md5({"n": {"DataType": "Number", "StringValue": "7"}})
    assert doc.find("q:ResponseMetadata/q:RequestId", NS).text
    # Posted to the queue's own URL, without QueueUrl or Version.
    status, doc = raw_query(server, {"Action": "ReceiveMessage", "AttributeName.1": "All", "MessageAttributeName.1": "All"}, path=path)
    assert status == 200
    msg = doc.find("q:ReceiveMessageResult/q:Message", NS)
    assert msg.find("q:Body", NS).text == "raw & <b>"
    attrs = {a.find("q:Name", NS).text: a.find("q:Value", NS).text for a in msg.findall("q:Attribute", NS)}
    assert attrs["ApproximateReceiveCount"] == "1"
    ma = msg.find("q:MessageAttribute", NS)
    assert ma.find("q:Name", NS).text == "n" and ma.find("q:Value/q:StringValue", NS).text == "7"
    receipt = msg.find("q:ReceiptHandle", NS).text
    status, doc = raw_query(server, {"Action": "DeleteMessage", "Version": "2012-11-05", "ReceiptHandle": receipt}, path=path)
    assert status == 200 and doc.tag.endswith("DeleteMessageResponse")
    # Errors are XML too.
    status, doc = raw_query(server, {"Action": "GetQueueUrl", "Version": "2012-11-05", "QueueName": unique("missing")})
    assert status == 400
    assert doc.tag == "{%s}ErrorResponse" % NS["q"]
    assert doc.find("q:Error/q:Type", NS).text == "Sender"
    assert doc.find("q:Error/q:Code", NS).text == "AWS.SimpleQueueService.NonExistentQueue"
    # AWS's query protocol says which WSDL (LocalStack's AWS-validated test_non_existent_queue).
    assert doc.find("q:Error/q:Message", NS).text == "The specified queue does not exist for this wsdl version."
    assert doc.find("q:RequestId", NS).text
    status, doc = raw_query(server, {"Action": "Frobnicate", "Version": "2012-11-05"})
    assert status == 400 and doc.find("q:Error/q:Code", NS).text == "InvalidAction"


# ---- the aws CLI -------------------------------------------------------------------------------


def test_aws_cli(aws_cli, server, tmp_path):
    cli = aws_cli_runner(aws_cli, server.endpoint, tmp_path / "home")

    def aws(*args):
        cp = cli("sqs", *args)
        return cp.returncode, cp.out, cp.err

    name = unique("cli")
    rc, out, err = aws("create-queue", "--queue-name", name, "--attributes", "VisibilityTimeout=20")
    assert rc == 0, err
    url = json.loads(out)["QueueUrl"]
    try:
        attr_file = tmp_path / "attrs.json"
        attr_file.write_text(json.dumps({"City": {"DataType": "String", "StringValue": "Any City"}}))
        rc, out, err = aws("send-message", "--queue-url", url, "--message-body", "from the cli", "--message-attributes", f"file://{attr_file}")
        assert rc == 0, err
        assert json.loads(out)["MD5OfMessageAttributes"] == sqs_attributes_md5({"City": {"DataType": "String", "StringValue": "Any City"}})
        rc, out, err = aws("receive-message", "--queue-url", url, "--attribute-names", "All", "--message-attribute-names", "All")
        assert rc == 0, err
        m = json.loads(out)["Messages"][0]
        assert m["Body"] == "from the cli" and m["MessageAttributes"]["City"]["StringValue"] == "Any City"
        rc, out, err = aws("delete-message", "--queue-url", url, "--receipt-handle", m["ReceiptHandle"])
        assert rc == 0, err
        rc, out, err = aws("get-queue-attributes", "--queue-url", url, "--attribute-names", "VisibilityTimeout")
        assert rc == 0 and json.loads(out)["Attributes"] == {"VisibilityTimeout": "20"}, err
        rc, out, err = aws("list-queues", "--queue-name-prefix", name)
        assert rc == 0 and json.loads(out)["QueueUrls"] == [url], err
        rc, out, err = aws("get-queue-url", "--queue-name", name + "-missing")
        assert rc != 0 and "NonExistentQueue" in err, err
    finally:
        rc, _, err = aws("delete-queue", "--queue-url", url)
        assert rc == 0, err


# ---- durability --------------------------------------------------------------------------------


def test_acknowledged_messages_survive_kill_9(server_factory):
    s = server_factory()
    c = s.sqs_client()
    url = c.create_queue(QueueName="durable")["QueueUrl"]
    sent = set()
    for i in range(40):
        sent.add(c.send_message(QueueUrl=url, MessageBody=f"message {i}")["MessageId"])
    out = c.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"batch {i}"} for i in range(10)])
    sent |= {e["MessageId"] for e in out["Successful"]}
    assert len(sent) == 50
    os.kill(s.proc.pid, signal.SIGKILL)
    s.proc.wait(timeout=10)
    s.start()
    c = s.sqs_client()
    url = c.get_queue_url(QueueName="durable")["QueueUrl"]
    assert c.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"] == {
        "ApproximateNumberOfMessages": "50"}
    got = set()
    for _ in range(20):
        msgs = c.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not msgs:
            break
        got |= {m["MessageId"] for m in msgs}
        c.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])
    assert got == sent

"""SNS: topics, attributes, tags and subscriptions through boto3 (the query protocol, the only
one botocore speaks for SNS) and the aws CLI; fan-out to SQS queues (envelope and raw
delivery), Lambda functions (AWS's SNS event, read back from the function's logs) and HTTP
endpoints (confirmation, AWS's headers); filter policies on attributes and bodies;
PublishBatch; FIFO topics to FIFO queues; AWS's errors; asynchronous-invocation dead letters
to a topic; and acknowledged publishes surviving kill -9."""

from __future__ import annotations

import base64
import http.client
import http.server
import json
import os
import queue
import signal
import threading
import time
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

import pytest
from botocore.exceptions import ClientError

from helpers import admin_signed, aws_cli_runner, ACCOUNT, REGION, client_error, create_function, make_zip, sns_may_send, unique, wait_for

NS = {"s": "http://sns.amazonaws.com/doc/2010-03-31/"}
TOPIC_PREFIX = f"arn:aws:sns:{REGION}:{ACCOUNT}:"


@pytest.fixture(scope="module")
def sns(server):
    return server.sns_client()


@pytest.fixture(scope="module")
def sns_raw(server):
    """No client-side parameter validation: lets invalid requests reach the server."""
    return server.sns_client(validate=False)


@pytest.fixture(scope="module")
def sqs(server):
    return server.sqs_client()


@pytest.fixture
def topic(sns):
    """make(name=None, fifo=False, **attributes) -> topic ARN; topics deleted after the test."""
    made: list[str] = []

    def make(name: str | None = None, fifo: bool = False, **attributes) -> str:
        name = name or unique("t") + (".fifo" if fifo else "")
        attrs = {k: str(v) for k, v in attributes.items()}
        if fifo:
            attrs["FifoTopic"] = "true"
        arn = sns.create_topic(Name=name, Attributes=attrs)["TopicArn"]
        made.append(arn)
        return arn

    yield make
    for arn in made:
        sns.delete_topic(TopicArn=arn)


@pytest.fixture
def queue_(sqs):
    """make(fifo=False) -> (url, arn); queues deleted after the test."""
    made: list[str] = []

    def make(fifo: bool = False, **attributes) -> tuple[str, str]:
        name = unique("q") + (".fifo" if fifo else "")
        attrs = {k: str(v) for k, v in attributes.items()}
        if fifo:
            attrs["FifoQueue"] = "true"
        arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
        url = sqs.create_queue(QueueName=name, Attributes={**attrs, "Policy": sns_may_send(arn)})["QueueUrl"]
        made.append(url)
        return url, arn

    yield make
    for url in made:
        try:
            sqs.delete_queue(QueueUrl=url)
        except ClientError:
            pass


def drain(sqs, url: str, n: int, timeout: float = 15.0) -> list[dict]:
    """Receives (and deletes) messages until n arrived or timeout; then checks nothing more
    is waiting."""
    got: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"],
                                   AttributeNames=["All"]).get("Messages", [])
        for m in msgs:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        got += msgs
    assert len(got) >= n, f"expected {n} messages, got {len(got)}: {[m['Body'][:200] for m in got]}"
    return got


def nothing_more(sqs, url: str, wait: int = 1):
    extra = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait).get("Messages", [])
    assert extra == [], [m["Body"][:200] for m in extra]


def expect(fn, code: str, status: int) -> str:
    with pytest.raises(ClientError) as e:
        fn()
    got = client_error(e)
    assert got[:2] == (code, status), got
    return got[2]


def raw_query(server, params: dict, method: str = "POST") -> tuple[int, dict, ET.Element]:
    u = urllib.parse.urlsplit(server.endpoint)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        if method == "POST":
            data = urllib.parse.urlencode(params).encode()
            conn.request("POST", "/", body=data, headers=admin_signed(
                server.endpoint, "sns", "POST", "/", {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, data))
        else:
            path = "/?" + urllib.parse.urlencode(params)
            conn.request("GET", path, headers=admin_signed(server.endpoint, "sns", "GET", path, {}))
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, ET.fromstring(r.read())
    finally:
        conn.close()


# ---- topics ------------------------------------------------------------------------------------


def test_topic_lifecycle_attributes_and_tags(sns, sns_raw, topic):
    name = unique("life")
    arn = topic(name, DisplayName="Life")
    assert arn == TOPIC_PREFIX + name
    assert sns.create_topic(Name=name, Attributes={"DisplayName": "Life"})["TopicArn"] == arn, "same attributes: the existing topic"
    msg = expect(lambda: sns.create_topic(Name=name, Attributes={"DisplayName": "Other"}), "InvalidParameter", 400)
    assert msg == "Invalid parameter: Attributes Reason: Topic already exists with different attributes"

    attrs = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert attrs["TopicArn"] == arn and attrs["Owner"] == ACCOUNT and attrs["DisplayName"] == "Life"
    assert (attrs["SubscriptionsConfirmed"], attrs["SubscriptionsPending"], attrs["SubscriptionsDeleted"]) == ("0", "0", "0")
    policy = json.loads(attrs["Policy"])
    assert policy["Statement"][0]["Resource"] == arn
    assert "FifoTopic" not in attrs and "EffectiveDeliveryPolicy" in attrs

    sns.set_topic_attributes(TopicArn=arn, AttributeName="DisplayName", AttributeValue="Renamed")
    new_policy = json.dumps({"Version": "2012-10-17", "Statement": []})
    sns.set_topic_attributes(TopicArn=arn, AttributeName="Policy", AttributeValue=new_policy)
    attrs = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert attrs["DisplayName"] == "Renamed" and json.loads(attrs["Policy"]) == json.loads(new_policy)
    assert expect(lambda: sns.set_topic_attributes(TopicArn=arn, AttributeName="Nope", AttributeValue="x"),
                  "InvalidParameter", 400) == "Invalid parameter: AttributeName"
    expect(lambda: sns.set_topic_attributes(TopicArn=arn, AttributeName="ContentBasedDeduplication", AttributeValue="true"),
           "InvalidParameter", 400)

    sns.tag_resource(ResourceArn=arn, Tags=[{"Key": "team", "Value": "a"}, {"Key": "env", "Value": "test"}])
    sns.untag_resource(ResourceArn=arn, TagKeys=["env"])
    assert sns.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "a"}]
    expect(lambda: sns.list_tags_for_resource(ResourceArn=arn + "-missing"), "ResourceNotFound", 404)

    listed = []
    kwargs = {}
    while True:
        page = sns.list_topics(**kwargs)
        listed += [t["TopicArn"] for t in page["Topics"]]
        if "NextToken" not in page:
            break
        kwargs["NextToken"] = page["NextToken"]
    assert arn in listed

    sns.delete_topic(TopicArn=arn)
    assert expect(lambda: sns.get_topic_attributes(TopicArn=arn), "NotFound", 404) == "Topic does not exist"
    sns.delete_topic(TopicArn=arn)  # deleting again is fine, as in AWS
    assert isinstance(pytest.raises(ClientError, sns.get_topic_attributes, TopicArn=arn).value, sns.exceptions.NotFoundException)
    assert expect(lambda: sns_raw.create_topic(Name="bad name"), "InvalidParameter", 400) == "Invalid parameter: Topic Name"
    expect(lambda: sns_raw.create_topic(Name="x.fifo"), "InvalidParameter", 400)


def test_list_topics_pages_by_100(server_factory):
    s = server_factory()
    sns = s.sns_client()
    arns = {sns.create_topic(Name=f"t{i:03}")["TopicArn"] for i in range(130)}
    first = sns.list_topics()
    assert len(first["Topics"]) == 100 and "NextToken" in first
    second = sns.list_topics(NextToken=first["NextToken"])
    assert "NextToken" not in second
    assert {t["TopicArn"] for t in first["Topics"] + second["Topics"]} == arns
    expect(lambda: sns.list_topics(NextToken="nonsense"), "InvalidParameter", 400)


# ---- SQS subscriptions -------------------------------------------------------------------------


def test_sqs_subscriptions_envelope_and_raw_delivery(sns, sqs, topic, queue_):
    arn = topic()
    env_url, env_arn = queue_()
    raw_url, raw_arn = queue_()
    env_sub = sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=env_arn)["SubscriptionArn"]
    raw_sub = sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=raw_arn, Attributes={"RawMessageDelivery": "true"},
                            ReturnSubscriptionArn=True)["SubscriptionArn"]
    assert env_sub.startswith(arn + ":") and raw_sub.startswith(arn + ":")
    assert sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=env_arn)["SubscriptionArn"] == env_sub, "idempotent"

    sub_attrs = sns.get_subscription_attributes(SubscriptionArn=raw_sub)["Attributes"]
    assert sub_attrs["RawMessageDelivery"] == "true" and sub_attrs["PendingConfirmation"] == "false"
    assert (sub_attrs["Protocol"], sub_attrs["Endpoint"], sub_attrs["TopicArn"], sub_attrs["Owner"]) == ("sqs", raw_arn, arn, ACCOUNT)
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["SubscriptionsConfirmed"] == "2"
    listed = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
    assert {s["SubscriptionArn"] for s in listed} == {env_sub, raw_sub}
    assert {s["SubscriptionArn"] for s in sns.list_subscriptions()["Subscriptions"]} >= {env_sub, raw_sub}

    attributes = {
        "color": {"DataType": "String", "StringValue": "blue"},
        "size": {"DataType": "Number", "StringValue": "42"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01\x02"},
        "tags": {"DataType": "String.Array", "StringValue": '["a", "b"]'},
    }
    r = sns.publish(TopicArn=arn, Message="hello subscribers", Subject="Greetings", MessageAttributes=attributes)
    message_id = r["MessageId"]

    env = drain(sqs, env_url, 1)
    doc = json.loads(env[0]["Body"])
    assert doc["Type"] == "Notification"
    assert doc["MessageId"] == message_id and doc["TopicArn"] == arn
    assert doc["Subject"] == "Greetings" and doc["Message"] == "hello subscribers"
    assert doc["SignatureVersion"] == "1" and doc["Signature"] and doc["SigningCertURL"].startswith("http")
    assert doc["UnsubscribeURL"].endswith("Action=Unsubscribe&SubscriptionArn=" + urllib.parse.quote(env_sub, safe=":"))
    assert time.strptime(doc["Timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert doc["MessageAttributes"] == {
        "color": {"Type": "String", "Value": "blue"},
        "size": {"Type": "Number", "Value": "42"},
        "blob": {"Type": "Binary", "Value": base64.b64encode(b"\x00\x01\x02").decode()},
        "tags": {"Type": "String.Array", "Value": '["a", "b"]'},
    }
    assert env[0].get("MessageAttributes") is None, "the envelope carries the attributes, not SQS"

    raw = drain(sqs, raw_url, 1)
    assert raw[0]["Body"] == "hello subscribers"
    assert raw[0]["MessageAttributes"] == {
        "color": {"DataType": "String", "StringValue": "blue"},
        "size": {"DataType": "Number", "StringValue": "42"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01\x02"},
        "tags": {"DataType": "String.Array", "StringValue": '["a", "b"]'},
    }

    # A structured message: each protocol gets its own text, others the default.
    sns.publish(TopicArn=arn, MessageStructure="json", Message=json.dumps({"default": "for all", "sqs": "for queues"}))
    assert json.loads(drain(sqs, env_url, 1)[0]["Body"])["Message"] == "for queues"
    assert drain(sqs, raw_url, 1)[0]["Body"] == "for queues"

    sns.set_subscription_attributes(SubscriptionArn=raw_sub, AttributeName="RawMessageDelivery", AttributeValue="false")
    sns.unsubscribe(SubscriptionArn=env_sub)
    sns.unsubscribe(SubscriptionArn=env_sub)  # again: fine
    attrs = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert (attrs["SubscriptionsConfirmed"], attrs["SubscriptionsDeleted"]) == ("1", "1")
    expect(lambda: sns.get_subscription_attributes(SubscriptionArn=env_sub), "NotFound", 404)
    sns.publish(TopicArn=arn, Message="after")
    assert json.loads(drain(sqs, raw_url, 1)[0]["Body"])["Message"] == "after"
    nothing_more(sqs, env_url)


# ---- Lambda subscriptions ----------------------------------------------------------------------

SNS_RECORDER = {"index.js": "exports.handler = async (e) => { console.log('SNSEVENT ' + JSON.stringify(e)); return 'ok'; };"}


def sns_events(logs, name):
    try:
        events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}", filterPattern='"SNSEVENT"')["events"]
    except ClientError:
        return []
    return [json.loads(e["message"].split("SNSEVENT ", 1)[1]) for e in events if "SNSEVENT " in e["message"]]


def test_lambda_subscription_receives_the_sns_event(sns, logs, topic, make_fn):
    fn = make_fn("nodejs20.x", SNS_RECORDER, "index.handler")
    arn = topic()
    fn.client.add_permission(FunctionName=fn.name, StatementId="sns", Action="lambda:InvokeFunction",
                             Principal="sns.amazonaws.com", SourceArn=arn)
    sub = sns.subscribe(TopicArn=arn, Protocol="lambda", Endpoint=fn.arn)["SubscriptionArn"]
    assert sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]["PendingConfirmation"] == "false"
    r = sns.publish(TopicArn=arn, Message='{"order": 1}', MessageAttributes={
        "kind": {"DataType": "String", "StringValue": "order"},
        "amount": {"DataType": "Number", "StringValue": "9.5"},
    })
    events = wait_for(lambda: sns_events(logs, fn.name), timeout=20, what="the SNS event in the function's log")
    assert len(events) == 1, events
    event = events[0]
    assert list(event) == ["Records"] and len(event["Records"]) == 1
    rec = event["Records"][0]
    assert set(rec) == {"EventVersion", "EventSubscriptionArn", "EventSource", "Sns"}
    assert (rec["EventVersion"], rec["EventSource"], rec["EventSubscriptionArn"]) == ("1.0", "aws:sns", sub)
    msg = rec["Sns"]
    assert set(msg) == {"Type", "MessageId", "TopicArn", "Subject", "Message", "Timestamp", "SignatureVersion", "Signature",
                        "SigningCertUrl", "UnsubscribeUrl", "MessageAttributes"}
    assert (msg["Type"], msg["MessageId"], msg["TopicArn"], msg["Message"]) == ("Notification", r["MessageId"], arn, '{"order": 1}')
    assert msg["Subject"] is None and msg["SignatureVersion"] == "1"
    assert msg["MessageAttributes"] == {"kind": {"Type": "String", "Value": "order"}, "amount": {"Type": "Number", "Value": "9.5"}}
    assert msg["UnsubscribeUrl"].split("SubscriptionArn=")[1] == urllib.parse.quote(sub, safe=":")

    # A qualified function ARN is invoked at that qualifier.
    sub2 = sns.subscribe(TopicArn=arn, Protocol="lambda", Endpoint=fn.arn + ":$LATEST")["SubscriptionArn"]
    sns.unsubscribe(SubscriptionArn=sub)
    sns.publish(TopicArn=arn, Message="second", Subject="Two")
    events = wait_for(lambda: [e for e in sns_events(logs, fn.name) if e["Records"][0]["Sns"]["Message"] == "second"],
                      timeout=20, what="the second event")
    assert events[0]["Records"][0]["EventSubscriptionArn"] == sub2
    assert events[0]["Records"][0]["Sns"]["Subject"] == "Two"
    assert events[0]["Records"][0]["Sns"]["MessageAttributes"] == {}


# ---- filter policies ---------------------------------------------------------------------------


def test_filter_policies_decide_who_gets_what(sns, sqs, topic, queue_):
    arn = topic()
    (all_url, all_arn), (attr_url, attr_arn), (body_url, body_arn), (or_url, or_arn) = queue_(), queue_(), queue_(), queue_()
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=all_arn, Attributes={"RawMessageDelivery": "true"})
    attr_sub = sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=attr_arn, ReturnSubscriptionArn=True, Attributes={
        "RawMessageDelivery": "true",
        "FilterPolicy": json.dumps({"store": ["example_corp"], "price_usd": [{"numeric": [">=", 100]}],
                                    "event": [{"anything-but": ["order_cancelled"]}]}),
    })["SubscriptionArn"]
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=body_arn, Attributes={
        "RawMessageDelivery": "true", "FilterPolicyScope": "MessageBody",
        "FilterPolicy": json.dumps({"customer": {"tier": ["gold"], "age": [{"numeric": [">", 30]}]}}),
    })
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=or_arn, Attributes={
        "RawMessageDelivery": "true",
        "FilterPolicy": json.dumps({"$or": [{"event": [{"prefix": "refund"}]}, {"interests": ["rugby"]}]}),
    })

    def s(v):
        return {"DataType": "String", "StringValue": v}

    def n(v):
        return {"DataType": "Number", "StringValue": str(v)}

    messages = [
        ("m1", {"store": s("example_corp"), "price_usd": n(210.75), "event": s("order_placed")}, "{}"),
        ("m2", {"store": s("example_corp"), "price_usd": n(99), "event": s("order_placed")}, "{}"),
        ("m3", {"store": s("example_corp"), "price_usd": n(500), "event": s("order_cancelled")}, "{}"),
        ("m4", {"store": s("example_corp"), "price_usd": s("500"), "event": s("refund_issued")}, "{}"),
        ("m5", {"interests": {"DataType": "String.Array", "StringValue": '["soccer", "rugby"]'}},
         json.dumps({"customer": {"tier": "gold", "age": 35}})),
        ("m6", {}, json.dumps({"customer": {"tier": "gold", "age": 25}})),
        ("m7", {}, json.dumps({"customer": [{"tier": "silver"}, {"tier": "gold", "age": 40}]})),
        ("m8", {}, "not json"),
    ]
    for tag, attrs, body in messages:
        sns.publish(TopicArn=arn, Message=json.dumps({"tag": tag, "body": body}) if body == "{}" else body,
                    MessageAttributes={**attrs, "tag": s(tag)})

    def tags(url, n):
        return sorted(m["MessageAttributes"]["tag"]["StringValue"] for m in drain(sqs, url, n))

    assert tags(all_url, 8) == [f"m{i}" for i in range(1, 9)]
    assert tags(attr_url, 1) == ["m1"]
    assert tags(body_url, 2) == ["m5", "m7"]
    assert tags(or_url, 2) == ["m4", "m5"]
    for url in (attr_url, body_url, or_url):
        nothing_more(sqs, url, wait=0)

    # Changing the policy changes what arrives; bad policies get AWS's messages.
    sns.set_subscription_attributes(SubscriptionArn=attr_sub, AttributeName="FilterPolicy",
                                    AttributeValue=json.dumps({"price_usd": [{"numeric": ["<", 100]}]}))
    attrs = sns.get_subscription_attributes(SubscriptionArn=attr_sub)["Attributes"]
    assert json.loads(attrs["FilterPolicy"]) == {"price_usd": [{"numeric": ["<", 100]}]}
    assert attrs["FilterPolicyScope"] == "MessageAttributes"
    sns.publish(TopicArn=arn, Message="cheap", MessageAttributes={"price_usd": n(5), "tag": s("m9")})
    assert tags(attr_url, 1) == ["m9"]
    drain(sqs, all_url, 1)
    msg = expect(lambda: sns.set_subscription_attributes(SubscriptionArn=attr_sub, AttributeName="FilterPolicy",
                                                         AttributeValue='{"a": [{"numeric": [">", 5, "<", 1]}]}'),
                 "InvalidParameter", 400)
    assert msg == "Invalid parameter: FilterPolicy: Bottom must be less than top"
    msg = expect(lambda: sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=all_arn + "x",
                                       Attributes={"FilterPolicy": '{"a": {"b": ["c"]}}'}), "InvalidParameter", 400)
    assert msg == "Invalid parameter: Attributes Reason: Filter policy scope MessageAttributes does not support nested filter policy"
    expect(lambda: sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=all_arn + "x", Attributes={"FilterPolicy": "not json"}),
           "InvalidParameter", 400)
    # Removing the policy lets everything through.
    sns.set_subscription_attributes(SubscriptionArn=attr_sub, AttributeName="FilterPolicy", AttributeValue="")
    assert "FilterPolicy" not in sns.get_subscription_attributes(SubscriptionArn=attr_sub)["Attributes"]
    sns.publish(TopicArn=arn, Message="any", MessageAttributes={"tag": s("m10")})
    assert tags(attr_url, 1) == ["m10"]


# ---- HTTP subscriptions ------------------------------------------------------------------------


class Endpoint:
    """A local HTTP server recording POSTs (headers lower-cased, body text)."""

    def __init__(self):
        self.posts: queue.Queue = queue.Queue()
        posts = self.posts

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                posts.put(({k.lower(): v for k, v in self.headers.items()}, body, self.path))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def next(self, timeout: float = 15.0):
        return self.posts.get(timeout=timeout)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def endpoint():
    e = Endpoint()
    yield e
    e.close()


def test_http_subscription_confirms_then_receives(sns, topic, endpoint):
    arn = topic()
    assert sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=endpoint.url)["SubscriptionArn"] == "pending confirmation"
    headers, body, path = endpoint.next()
    assert path == "/hook"
    assert headers["x-amz-sns-message-type"] == "SubscriptionConfirmation"
    assert headers["x-amz-sns-topic-arn"] == arn
    assert headers["content-type"].startswith("text/plain")
    doc = json.loads(body)
    assert doc["Type"] == "SubscriptionConfirmation" and doc["TopicArn"] == arn
    assert headers["x-amz-sns-message-id"] == doc["MessageId"]
    assert doc["Message"].startswith(f"You have chosen to subscribe to the topic {arn}.")
    token = doc["Token"]
    assert len(token) >= 128
    subscribe_url = urllib.parse.urlsplit(doc["SubscribeURL"])
    assert urllib.parse.parse_qs(subscribe_url.query) == {"Action": ["ConfirmSubscription"], "TopicArn": [arn], "Token": [token]}

    listed = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
    assert [s["SubscriptionArn"] for s in listed] == ["PendingConfirmation"]
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["SubscriptionsPending"] == "1"
    sns.publish(TopicArn=arn, Message="while pending")  # not delivered

    assert expect(lambda: sns.confirm_subscription(TopicArn=arn, Token="wrong"), "InvalidParameter", 400) == "Invalid parameter: Token"
    sub = sns.confirm_subscription(TopicArn=arn, Token=token)["SubscriptionArn"]
    assert sub.startswith(arn + ":")
    attrs = sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
    assert attrs["PendingConfirmation"] == "false" and attrs["Protocol"] == "http" and attrs["Endpoint"] == endpoint.url
    # The SubscribeURL works too (an HTTP GET, as a browser or an endpoint would do it).
    with urllib.request.urlopen(doc["SubscribeURL"], timeout=10) as r:
        root = ET.fromstring(r.read())
    assert root.find("s:ConfirmSubscriptionResult/s:SubscriptionArn", NS).text == sub

    r = sns.publish(TopicArn=arn, Message="hello http", Subject="Hi", MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}})
    headers, body, _ = endpoint.next()
    assert headers["x-amz-sns-message-type"] == "Notification"
    assert headers["x-amz-sns-message-id"] == r["MessageId"]
    assert headers["x-amz-sns-topic-arn"] == arn
    assert headers["x-amz-sns-subscription-arn"] == sub
    assert headers["user-agent"] == "Amazon Simple Notification Service Agent"
    doc = json.loads(body)
    assert (doc["Type"], doc["Message"], doc["Subject"], doc["MessageId"]) == ("Notification", "hello http", "Hi", r["MessageId"])
    assert doc["MessageAttributes"] == {"k": {"Type": "String", "Value": "v"}}

    sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="RawMessageDelivery", AttributeValue="true")
    sns.publish(TopicArn=arn, Message="raw body")
    headers, body, _ = endpoint.next()
    assert body == "raw body" and headers["x-amz-sns-rawdelivery"] == "true"

    # The UnsubscribeURL ends the subscription.
    with urllib.request.urlopen(doc["UnsubscribeURL"], timeout=10) as r:
        assert r.status == 200
    expect(lambda: sns.get_subscription_attributes(SubscriptionArn=sub), "NotFound", 404)
    sns.publish(TopicArn=arn, Message="gone")
    with pytest.raises(queue.Empty):
        endpoint.next(timeout=1.5)


# ---- batches and FIFO --------------------------------------------------------------------------


def test_publish_batch(sns, sns_raw, sqs, topic, queue_):
    arn = topic()
    url, qarn = queue_()
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=qarn, Attributes={"RawMessageDelivery": "true"})
    out = sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=[
        {"Id": "a", "Message": "first", "MessageAttributes": {"n": {"DataType": "Number", "StringValue": "1"}}},
        {"Id": "b", "Message": "second", "Subject": "S"},
        {"Id": "c", "Message": "bad", "MessageAttributes": {"n": {"DataType": "Number", "StringValue": "one"}}},
    ])
    assert [e["Id"] for e in out["Successful"]] == ["a", "b"]
    assert all(len(e["MessageId"]) == 36 for e in out["Successful"])
    assert out["Failed"] == [{"Id": "c", "Code": "ParameterValueInvalid", "SenderFault": True,
                              "Message": "Could not cast message attribute 'n' value to number."}]
    got = drain(sqs, url, 2)
    assert sorted(m["Body"] for m in got) == ["first", "second"]
    assert {m["MessageId"] for m in got} != set()

    expect(lambda: sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=[{"Id": "x", "Message": "1"}, {"Id": "x", "Message": "2"}]),
           "BatchEntryIdsNotDistinct", 400)
    expect(lambda: sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=[{"Id": str(i), "Message": "m"} for i in range(11)]),
           "TooManyEntriesInBatchRequest", 400)
    expect(lambda: sns_raw.publish_batch(TopicArn=arn, PublishBatchRequestEntries=[]), "EmptyBatchRequest", 400)
    expect(lambda: sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=[{"Id": "bad id!", "Message": "m"}]),
           "InvalidBatchEntryId", 400)
    expect(lambda: sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=[
        {"Id": str(i), "Message": "x" * 100_000} for i in range(3)]), "BatchRequestTooLong", 400)
    expect(lambda: sns.publish_batch(TopicArn=arn + "-missing", PublishBatchRequestEntries=[{"Id": "a", "Message": "m"}]), "NotFound", 404)


def test_fifo_topic_to_fifo_queue(sns, sqs, topic, queue_):
    arn = topic(fifo=True)
    assert arn.endswith(".fifo")
    attrs = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert attrs["FifoTopic"] == "true" and attrs["ContentBasedDeduplication"] == "false"
    url, qarn = queue_(fifo=True)
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=qarn, Attributes={"RawMessageDelivery": "true"})
    std_url, std_arn = queue_()
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=std_arn)

    results = []
    for i in range(6):
        group = "g1" if i % 2 == 0 else "g2"
        results.append(sns.publish(TopicArn=arn, Message=f"{group}-{i}", MessageGroupId=group, MessageDeduplicationId=f"d{i}"))
    seqs = [int(r["SequenceNumber"]) for r in results]
    assert seqs == sorted(seqs) and len(set(seqs)) == 6
    dup = sns.publish(TopicArn=arn, Message="again", MessageGroupId="g1", MessageDeduplicationId="d0")
    assert dup["MessageId"] == results[0]["MessageId"], "deduplicated within 5 minutes"

    got = drain(sqs, url, 6)
    by_group: dict[str, list[str]] = {}
    for m in got:
        by_group.setdefault(m["Attributes"]["MessageGroupId"], []).append(m["Body"])
    assert by_group == {"g1": ["g1-0", "g1-2", "g1-4"], "g2": ["g2-1", "g2-3", "g2-5"]}
    nothing_more(sqs, url, wait=0)
    envelopes = [json.loads(m["Body"]) for m in drain(sqs, std_url, 6)]
    assert {e["MessageId"] for e in envelopes} == {r["MessageId"] for r in results}
    assert all("SequenceNumber" in e for e in envelopes)

    msg = expect(lambda: sns.publish(TopicArn=arn, Message="m", MessageDeduplicationId="x"), "InvalidParameter", 400)
    assert msg == "Invalid parameter: The MessageGroupId parameter is required for FIFO topics"
    expect(lambda: sns.publish(TopicArn=arn, Message="m", MessageGroupId="g"), "InvalidParameter", 400)
    sns.set_topic_attributes(TopicArn=arn, AttributeName="ContentBasedDeduplication", AttributeValue="true")
    a = sns.publish(TopicArn=arn, Message="same body", MessageGroupId="g3")
    b = sns.publish(TopicArn=arn, Message="same body", MessageGroupId="g3")
    assert a["MessageId"] == b["MessageId"]
    assert [m["Body"] for m in drain(sqs, url, 1)] == ["same body"]

    std = topic()
    expect(lambda: sns.subscribe(TopicArn=std, Protocol="sqs", Endpoint=qarn), "InvalidParameter", 400)
    expect(lambda: sns.publish(TopicArn=std, Message="m", MessageGroupId="g"), "InvalidParameter", 400)
    expect(lambda: sns.subscribe(TopicArn=arn, Protocol="http", Endpoint="http://127.0.0.1:1/"), "InvalidParameter", 400)


# ---- errors ------------------------------------------------------------------------------------


def test_errors_as_aws(sns, sns_raw, server, topic, queue_):
    arn = topic()
    missing = TOPIC_PREFIX + unique("missing")
    assert expect(lambda: sns.publish(TopicArn=missing, Message="m"), "NotFound", 404) == "Topic does not exist"
    expect(lambda: sns.subscribe(TopicArn=missing, Protocol="sqs", Endpoint="arn:aws:sqs:us-east-1:000000000000:q"), "NotFound", 404)
    expect(lambda: sns.list_subscriptions_by_topic(TopicArn=missing), "NotFound", 404)
    assert expect(lambda: sns.get_topic_attributes(TopicArn="not-an-arn"), "InvalidParameter", 400) == "Invalid parameter: TopicArn"
    assert expect(lambda: sns.publish(TopicArn=arn, Message=""), "InvalidParameter", 400) == "Invalid parameter: Empty message"
    assert expect(lambda: sns.publish(TopicArn=arn, Message="x" * (256 * 1024 + 1)), "InvalidParameter", 400) == \
        "Invalid parameter: Message too long"
    sns.publish(TopicArn=arn, Message="x" * (256 * 1024 - 10))
    assert expect(lambda: sns.publish(TopicArn=arn, Message='{"sqs": "x"}', MessageStructure="json"), "InvalidParameter", 400) == \
        "Invalid parameter: Message Structure - No default entry in JSON message body"
    assert expect(lambda: sns.publish(TopicArn=arn, Message="{", MessageStructure="json"), "InvalidParameter", 400) == \
        "Invalid parameter: Message Structure - JSON message body failed to parse"
    expect(lambda: sns_raw.publish(TopicArn=arn, Message="m", Subject=""), "InvalidParameter", 400)
    expect(lambda: sns.publish(TopicArn=arn, Message="m", MessageAttributes={"n": {"DataType": "Number", "StringValue": "x"}}),
           "ParameterValueInvalid", 400)
    expect(lambda: sns.publish(TopicArn=arn, Message="m", MessageAttributes={"n": {"DataType": "Nope", "StringValue": "x"}}),
           "ParameterValueInvalid", 400)
    assert expect(lambda: sns.subscribe(TopicArn=arn, Protocol="carrier-pigeon", Endpoint="x"), "InvalidParameter", 400) == \
        "Invalid parameter: Amazon SNS does not support this protocol string: carrier-pigeon"
    assert expect(lambda: sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint="not-an-arn"), "InvalidParameter", 400) == \
        "Invalid parameter: SQS endpoint ARN"
    assert expect(lambda: sns.subscribe(TopicArn=arn, Protocol="http", Endpoint="https://example.com"), "InvalidParameter", 400) == \
        "Invalid parameter: Endpoint must match the specified protocol"
    _, qarn = queue_()
    expect(lambda: sns.subscribe(TopicArn=arn, Protocol="lambda", Endpoint=qarn, Attributes={"RawMessageDelivery": "true"}),
           "InvalidParameter", 400)
    expect(lambda: sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=qarn, Attributes={"Bogus": "1"}), "InvalidParameter", 400)
    sub = sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=qarn)["SubscriptionArn"]
    assert expect(lambda: sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="Bogus", AttributeValue="1"),
                  "InvalidParameter", 400) == "Invalid parameter: AttributeName"
    expect(lambda: sns.get_subscription_attributes(SubscriptionArn=arn + ":00000000-0000-0000-0000-000000000000"), "NotFound", 404)

    # The XML shapes on the wire.
    status, headers, root = raw_query(server, {"Action": "GetTopicAttributes", "Version": "2010-03-31", "TopicArn": missing})
    assert status == 404 and headers["content-type"] == "text/xml"
    assert root.tag == "{http://sns.amazonaws.com/doc/2010-03-31/}ErrorResponse"
    assert [root.find(f"s:Error/s:{k}", NS).text for k in ("Type", "Code", "Message")] == ["Sender", "NotFound", "Topic does not exist"]
    assert root.find("s:RequestId", NS).text == headers["x-amzn-requestid"]
    status, _, root = raw_query(server, {"Action": "Publish", "Version": "2010-03-31", "TopicArn": arn, "Message": "raw"})
    assert status == 200
    assert root.tag == "{http://sns.amazonaws.com/doc/2010-03-31/}PublishResponse"
    assert len(root.find("s:PublishResult/s:MessageId", NS).text) == 36
    assert root.find("s:ResponseMetadata/s:RequestId", NS).text
    status, _, root = raw_query(server, {"Action": "Frobnicate", "Version": "2010-03-31"})
    assert status == 400 and root.find("s:Error/s:Code", NS).text == "InvalidAction"
    status, _, root = raw_query(server, {"Action": "CreateTopic", "Version": "2010-03-31"})
    assert status == 400 and root.find("s:Error/s:Code", NS).text == "ValidationError"


def test_aws_cli(aws_cli, server, tmp_path):
    cli = aws_cli_runner(aws_cli, server.endpoint, tmp_path / "home")

    def aws(*args):
        cp = cli(*args)
        return cp.returncode, cp.out, cp.err

    name = unique("cli")
    rc, out, err = aws("sns", "create-topic", "--name", name, "--attributes", "DisplayName=FromCli", "--tags", "Key=k,Value=v")
    assert rc == 0, err
    arn = json.loads(out)["TopicArn"]
    try:
        rc, out, err = aws("sns", "list-topics")
        assert rc == 0, err
        assert arn in [t["TopicArn"] for t in json.loads(out)["Topics"]]
        rc, out, err = aws("sns", "get-topic-attributes", "--topic-arn", arn)
        assert rc == 0, err
        assert json.loads(out)["Attributes"]["DisplayName"] == "FromCli"
        qarn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
        rc, out, err = aws("sqs", "create-queue", "--queue-name", name, "--attributes", json.dumps({"Policy": sns_may_send(qarn, arn)}))
        assert rc == 0, err
        url = json.loads(out)["QueueUrl"]
        rc, out, err = aws("sns", "subscribe", "--topic-arn", arn, "--protocol", "sqs", "--notification-endpoint", qarn,
                           "--attributes", '{"RawMessageDelivery":"true"}')
        assert rc == 0, err
        rc, out, err = aws("sns", "publish", "--topic-arn", arn, "--message", "from the cli",
                           "--message-attributes", '{"src":{"DataType":"String","StringValue":"cli"}}')
        assert rc == 0, err
        message_id = json.loads(out)["MessageId"]
        assert len(message_id) == 36
        rc, out, err = aws("sqs", "receive-message", "--queue-url", url, "--wait-time-seconds", "5", "--message-attribute-names", "All")
        assert rc == 0, err
        m = json.loads(out)["Messages"][0]
        assert m["Body"] == "from the cli" and m["MessageAttributes"]["src"]["StringValue"] == "cli"
        rc, out, err = aws("sns", "get-topic-attributes", "--topic-arn", arn + "-missing")
        assert rc != 0 and "NotFound" in err and "Topic does not exist" in err
        aws("sqs", "delete-queue", "--queue-url", url)
    finally:
        rc, _, err = aws("sns", "delete-topic", "--topic-arn", arn)
        assert rc == 0, err


# ---- async invocation, durability --------------------------------------------------------------

FLAKY = {"index.js": "exports.handler = async (e) => { if (e.fail) throw new Error('nope ' + e.n); return { got: e.n }; };"}


def test_async_dead_letters_reach_a_topic(server_factory):
    s = server_factory(args=["--async-retry-delay-ms", "200"])
    lam, sns, sqs = s.lambda_client(), s.sns_client(), s.sqs_client()
    arn = sns.create_topic(Name="dead-letters")["TopicArn"]
    url = sqs.create_queue(QueueName="dl-copies", Attributes={"Policy": sns_may_send(f"arn:aws:sqs:{REGION}:{ACCOUNT}:dl-copies", arn)})["QueueUrl"]
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=f"arn:aws:sqs:{REGION}:{ACCOUNT}:dl-copies",
                  Attributes={"RawMessageDelivery": "true"})
    create_function(lam, "doomed", "nodejs20.x", "index.handler", make_zip(FLAKY), DeadLetterConfig={"TargetArn": arn})
    lam.put_function_event_invoke_config(FunctionName="doomed", MaximumRetryAttempts=0)
    r = lam.invoke(FunctionName="doomed", InvocationType="Event", Payload=json.dumps({"fail": True, "n": 3}))
    msg = drain(sqs, url, 1, timeout=30)[0]
    assert json.loads(msg["Body"]) == {"fail": True, "n": 3}
    attrs = {k: v["StringValue"] for k, v in msg["MessageAttributes"].items()}
    assert attrs["RequestID"] == r["ResponseMetadata"]["RequestId"] and attrs["ErrorMessage"] == "nope 3"


def test_acknowledged_publishes_survive_kill_9(server_factory):
    s = server_factory()
    sns, sqs = s.sns_client(), s.sqs_client()
    arn = sns.create_topic(Name="durable")["TopicArn"]
    url = sqs.create_queue(QueueName="durable-copies",
                           Attributes={"Policy": sns_may_send(f"arn:aws:sqs:{REGION}:{ACCOUNT}:durable-copies", arn)})["QueueUrl"]
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=f"arn:aws:sqs:{REGION}:{ACCOUNT}:durable-copies")
    # A queue that does not exist yet: its deliveries are still pending (retried) at the kill.
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=f"arn:aws:sqs:{REGION}:{ACCOUNT}:late-copies")
    published = set()
    for i in range(40):
        published.add(sns.publish(TopicArn=arn, Message=f"message {i}")["MessageId"])
    out = sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=[{"Id": str(i), "Message": f"batch {i}"} for i in range(10)])
    published |= {e["MessageId"] for e in out["Successful"]}
    os.kill(s.proc.pid, signal.SIGKILL)  # right after the last MessageId came back
    s.proc.wait(timeout=10)
    s.start()
    sns, sqs = s.sns_client(), s.sqs_client()
    assert sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"][0]["Endpoint"].endswith(":durable-copies")
    late_url = sqs.create_queue(QueueName="late-copies",
                                Attributes={"Policy": sns_may_send(f"arn:aws:sqs:{REGION}:{ACCOUNT}:late-copies", arn)})["QueueUrl"]
    url = sqs.get_queue_url(QueueName="durable-copies")["QueueUrl"]
    for queue_url in (url, late_url):
        got: set[str] = set()
        deadline = time.monotonic() + 30
        while not published <= got and time.monotonic() < deadline:
            for m in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
                got.add(json.loads(m["Body"])["MessageId"])
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
        # At least once: a copy in flight at the kill may come twice, but none is lost.
        assert got == published, f"{queue_url}: missing {len(published - got)} of {len(published)}"


def test_a_topic_invokes_only_functions_whose_policy_allows_it(sns, logs, topic, make_fn):
    fn = make_fn("nodejs20.x", SNS_RECORDER, "index.handler")
    arn, other = topic(), topic()
    sns.subscribe(TopicArn=arn, Protocol="lambda", Endpoint=fn.arn)
    sns.publish(TopicArn=arn, Message="no-policy")
    fn.client.add_permission(FunctionName=fn.name, StatementId="other", Action="lambda:InvokeFunction",
                             Principal="sns.amazonaws.com", SourceArn=other)
    sns.publish(TopicArn=arn, Message="other-topic")
    time.sleep(2.5)
    assert sns_events(logs, fn.name) == []
    fn.client.add_permission(FunctionName=fn.name, StatementId="this", Action="lambda:InvokeFunction",
                             Principal="sns.amazonaws.com", SourceArn=arn)
    sns.publish(TopicArn=arn, Message="allowed")
    wait_for(lambda: sns_events(logs, fn.name), timeout=20, what="the allowed message")
    time.sleep(1.0)
    assert [e["Records"][0]["Sns"]["Message"] for e in sns_events(logs, fn.name)] == ["allowed"]


def test_a_topic_sends_only_to_queues_whose_policy_allows_it(sns, sqs, topic):
    """As on AWS, a queue gets a topic's messages only if its `Policy` lets sns.amazonaws.com
    `sqs:SendMessage` for that topic; a refused message is not retried, it goes to the
    subscription's dead-letter queue (which needs such a policy too)."""
    arn, other = topic(), topic()
    name, dlq_name = unique("guarded"), unique("guarded-dlq")
    q_arn, dlq_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}", f"arn:aws:sqs:{REGION}:{ACCOUNT}:{dlq_name}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    dlq = sqs.create_queue(QueueName=dlq_name, Attributes={"Policy": sns_may_send(dlq_arn, arn)})["QueueUrl"]
    try:
        sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=q_arn, Attributes={
            "RawMessageDelivery": "true", "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn})})
        sns.publish(TopicArn=arn, Message="no-policy")
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": sns_may_send(q_arn, other)})
        sns.publish(TopicArn=arn, Message="other-topic")
        dead = drain(sqs, dlq, 2)
        assert sorted(json.loads(m["Body"])["Message"] for m in dead) == ["no-policy", "other-topic"]
        nothing_more(sqs, url)
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": sns_may_send(q_arn, arn)})
        sns.publish(TopicArn=arn, Message="allowed")
        assert [m["Body"] for m in drain(sqs, url, 1)] == ["allowed"]
        nothing_more(sqs, dlq)
    finally:
        for u in (url, dlq):
            sqs.delete_queue(QueueUrl=u)

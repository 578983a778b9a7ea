"""Queues and topics shared by the nodes of a cluster (issue 17): a message sent to one node
is received from any, a long poll on one node hears another's send, a FIFO group is held by
one node at a time, event source mappings made on one node poll on every node, topics and
subscriptions made on one node are every node's, and a node killed (kill -9) in the middle
of thousands of async events, queue messages or topic publishes loses none that was
acknowledged."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from helpers import create_function, make_zip, sns_may_send, wait_for
from test_cluster import Cluster, _delivered, _victims_logs, pg_url  # noqa: F401 (pg_url: a fixture)

SINK = """
def handler(event, context):
    if "Records" in event:
        for r in event["Records"]:
            print("DELIVERED", r["body"])
    else:
        print("DELIVERED", event["id"])
    return {}
"""


@pytest.fixture
def cluster(server_factory, tmp_path, pg_url):  # noqa: F811
    return Cluster(server_factory, tmp_path, pg_url, 3)


def test_a_queue_is_one_queue_on_every_node(cluster):
    sqs = [cluster.nodes[i].client("sqs") for i in range(3)]
    url0 = sqs[0].create_queue(QueueName="shared", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    urls = [sqs[i].get_queue_url(QueueName="shared")["QueueUrl"] for i in range(3)]
    assert urls[0] == url0
    for i in range(3):
        assert "shared" in sqs[i].list_queues()["QueueUrls"][0]

    # A long poll on node 2 hears a send on node 1 at once.
    got: dict = {}

    def poll():
        got["r"] = sqs[2].receive_message(QueueUrl=urls[2], WaitTimeSeconds=10)
        got["at"] = time.monotonic()

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.5)
    sent_at = time.monotonic()
    sent = sqs[1].send_message(QueueUrl=urls[1], MessageBody="hello")
    poller.join(15)
    messages = got["r"]["Messages"]
    assert [m["Body"] for m in messages] == ["hello"] and messages[0]["MessageId"] == sent["MessageId"]
    assert got["at"] - sent_at < 1.0, f"node 2's long poll answered {got['at'] - sent_at:.2f} s after node 1's send"

    # In flight on every node; deleted on node 0 with node 2's receipt: gone everywhere.
    for i in range(3):
        attrs = sqs[i].get_queue_attributes(QueueUrl=urls[i], AttributeNames=["All"])["Attributes"]
        assert (attrs["ApproximateNumberOfMessages"], attrs["ApproximateNumberOfMessagesNotVisible"]) == ("0", "1")
    sqs[0].delete_message(QueueUrl=urls[0], ReceiptHandle=messages[0]["ReceiptHandle"])
    attrs = sqs[1].get_queue_attributes(QueueUrl=urls[1], AttributeNames=["All"])["Attributes"]
    assert (attrs["ApproximateNumberOfMessages"], attrs["ApproximateNumberOfMessagesNotVisible"]) == ("0", "0")

    # A FIFO group: sent through all three nodes in turn, received in order, one node at a time.
    fifo = [sqs[i].create_queue(QueueName="orders.fifo",
                                Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
            for i in range(3)]
    for n in range(9):
        sqs[n % 3].send_message(QueueUrl=fifo[n % 3], MessageBody=f"{n}", MessageGroupId="g")
    first = sqs[1].receive_message(QueueUrl=fifo[1], MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in first] == [str(n) for n in range(9)]
    assert "Messages" not in sqs[2].receive_message(QueueUrl=fifo[2], MaxNumberOfMessages=10)

    # Deleted on one node: no such queue anywhere.
    sqs[2].delete_queue(QueueUrl=urls[2])
    for i in range(3):
        with pytest.raises(ClientError) as e:
            sqs[i].get_queue_url(QueueName="shared")
        assert e.value.response["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue"


def _queue_arn(sqs, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def test_a_mapping_made_on_one_node_polls_on_every_node(cluster):
    name = "consumer"
    lam0 = cluster.lam(0)
    create_function(lam0, name, "python3.11", "index.handler", make_zip({"index.py": SINK}))
    sqs0 = cluster.nodes[0].client("sqs")
    url = sqs0.create_queue(QueueName="jobs")["QueueUrl"]
    mapping = lam0.create_event_source_mapping(EventSourceArn=_queue_arn(sqs0, url), FunctionName=name, BatchSize=1)
    # Node 0 stops (SIGTERM): nodes 1 and 2 poll the mapping it made.
    assert cluster.nodes[0].stop() == 0
    sqs1 = cluster.nodes[1].client("sqs")
    url1 = sqs1.get_queue_url(QueueName="jobs")["QueueUrl"]
    for n in range(20):
        sqs1.send_message(QueueUrl=url1, MessageBody=f"m{n:02d}")
    want = {f"m{n:02d}" for n in range(20)}
    wait_for(lambda: want <= (_delivered(cluster.nodes[1], name) | _delivered(cluster.nodes[2], name)),
             timeout=30, what="nodes 1 and 2 running the mapping node 0 made")
    # Disabled on node 1: node 2's pollers stop too.
    lam1 = cluster.lam(1)
    lam1.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
    wait_for(lambda: lam1.get_event_source_mapping(UUID=mapping["UUID"])["State"] == "Disabled", timeout=10)
    time.sleep(1.0)
    sqs1.send_message(QueueUrl=url1, MessageBody="after")
    time.sleep(3.0)
    assert "after" not in (_delivered(cluster.nodes[1], name) | _delivered(cluster.nodes[2], name))
    attrs = sqs1.get_queue_attributes(QueueUrl=url1, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "1"


EVENTS = 5000
MESSAGES = 1000


def test_a_killed_node_loses_no_acknowledged_event_or_message(cluster):
    """5,000 async events and 1,000 queue messages (consumed by a mapping on every node) go
    to the three nodes while node 0 is killed (kill -9): every event and message a node
    acknowledged is delivered at least once, by whichever nodes are left."""
    name = "sink"
    lam0 = cluster.lam(0)
    create_function(lam0, name, "python3.11", "index.handler", make_zip({"index.py": SINK}), Timeout=10)
    sqs0 = cluster.nodes[0].client("sqs")
    url = sqs0.create_queue(QueueName="work", Attributes={"VisibilityTimeout": "5"})["QueueUrl"]
    lam0.create_event_source_mapping(EventSourceArn=_queue_arn(sqs0, url), FunctionName=name, BatchSize=10)
    victim = cluster.nodes[0]
    local = threading.local()

    def clients(i: int):
        if not hasattr(local, "c"):
            local.c = {}
        if i not in local.c:
            local.c[i] = (cluster.nodes[i].lambda_client(), cluster.nodes[i].client("sqs"))
        return local.c[i]

    acked: set[str] = set()
    lock = threading.Lock()
    killed = threading.Event()

    def to_node(n: int, send) -> None:
        """Sends through node n % 3, or another node when that one is down or does not
        answer (as a client retries elsewhere); the ids a node acknowledged are recorded."""
        errors = []
        for i in dict.fromkeys((n % 3, 1, 2)):
            try:
                ids = send(*clients(i), i)
            except (BotoCoreError, ClientError) as e:
                if not (i == 0 and killed.is_set()):
                    errors.append(f"node {i}: {e}")
                continue
            with lock:
                acked.update(ids)
            return
        raise AssertionError(f"no node took it: {errors}")

    def event(n: int) -> None:
        def send(lam, _sqs, _i):
            r = lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"id": f"e{n:04d}"}).encode())
            assert r["StatusCode"] == 202
            return [f"e{n:04d}"]
        to_node(n, send)
        if n == EVENTS // 2:
            killed.set()
            victim.kill()

    def batch(b: int) -> None:
        def send(_lam, sqs, i):
            q = sqs.get_queue_url(QueueName="work")["QueueUrl"]
            entries = [{"Id": f"m{k}", "MessageBody": f"m{b * 10 + k:04d}"} for k in range(10)]
            r = sqs.send_message_batch(QueueUrl=q, Entries=entries)
            assert not r.get("Failed"), r
            return [e["MessageBody"] for e in entries]
        to_node(b, send)

    started = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        work = [pool.submit(event, n) for n in range(EVENTS)]
        work += [pool.submit(batch, b) for b in range(MESSAGES // 10)]
        for w in work:
            w.result()
    sent_in = time.monotonic() - started
    assert killed.is_set()
    assert len(acked) == EVENTS + MESSAGES, len(acked)

    deadline = time.monotonic() + 120
    seen: set[str] = set()
    while time.monotonic() < deadline:
        seen = _delivered(cluster.nodes[1], name) | _delivered(cluster.nodes[2], name) | _victims_logs(victim, name)
        if acked <= seen:
            break
        time.sleep(2)
    lost = sorted(acked - seen)
    assert not lost, f"lost {len(lost)} of {len(acked)}: {lost[:20]}"
    print(f"{EVENTS} events and {MESSAGES} messages sent in {sent_in:.1f} s (node 0 killed halfway); "
          f"all delivered {time.monotonic() - started:.1f} s after the first")


def test_topics_are_every_nodes_and_a_killed_publisher_loses_nothing(cluster):
    """A topic and its queue subscription made on node 0 take publishes on every node; node
    0, publishing 600 messages from 8 threads, is killed (kill -9) halfway: every publish
    it acknowledged reaches the queue (deliveries it held are taken over by the others
    once its leases lapse)."""
    sns = [cluster.nodes[i].client("sns") for i in range(3)]
    sqs = [cluster.nodes[i].client("sqs") for i in range(3)]
    url = sqs[0].create_queue(QueueName="fanout")["QueueUrl"]
    topic = sns[0].create_topic(Name="news")["TopicArn"]
    sqs[0].set_queue_attributes(QueueUrl=url, Attributes={"Policy": sns_may_send(_queue_arn(sqs[0], url), topic)})
    sns[0].subscribe(TopicArn=topic, Protocol="sqs", Endpoint=_queue_arn(sqs[0], url),
                     Attributes={"RawMessageDelivery": "true"})
    # Every node has the topic and its subscription (within a second).
    for i in (1, 2):
        wait_for(lambda: len(sns[i].list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]) == 1,
                 timeout=5, interval=0.05, what=f"node {i} seeing the subscription")
    sns[2].publish(TopicArn=topic, Message="from node 2")
    url2 = sqs[2].get_queue_url(QueueName="fanout")["QueueUrl"]
    got = sqs[2].receive_message(QueueUrl=url2, WaitTimeSeconds=5)["Messages"]
    assert [m["Body"] for m in got] == ["from node 2"]
    sqs[2].delete_message(QueueUrl=url2, ReceiptHandle=got[0]["ReceiptHandle"])

    victim = cluster.nodes[0]
    acked: set[str] = set()
    lock = threading.Lock()
    killed = threading.Event()
    local = threading.local()

    def publish(n: int) -> None:
        if not hasattr(local, "sns"):
            local.sns = victim.client("sns")
        if n == 300:
            killed.set()
            victim.kill()
            return
        try:
            local.sns.publish(TopicArn=topic, Message=f"p{n:03d}")
        except (BotoCoreError, ClientError):
            assert killed.is_set(), f"publish {n} failed before the kill"
            return
        with lock:
            acked.add(f"p{n:03d}")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(publish, range(600)))
    assert len(acked) >= 250, len(acked)
    seen: set[str] = set()
    sqs1 = sqs[1]
    url1 = sqs1.get_queue_url(QueueName="fanout")["QueueUrl"]
    deadline = time.monotonic() + 60
    while not acked <= seen and time.monotonic() < deadline:
        r = sqs1.receive_message(QueueUrl=url1, MaxNumberOfMessages=10, WaitTimeSeconds=2)
        for m in r.get("Messages", []):
            seen.add(m["Body"])
            sqs1.delete_message(QueueUrl=url1, ReceiptHandle=m["ReceiptHandle"])
    lost = sorted(acked - seen)
    assert not lost, f"lost {len(lost)} of {len(acked)} acknowledged publishes: {lost[:20]}"
    taken = [line.split("took over ")[1] for i in (1, 2) for line in cluster.nodes[i].log_tail().splitlines()
             if "took over" in line]
    print(f"{len(acked)} publishes acknowledged before the kill, all delivered; taken over: {taken}")

"""DynamoDB and Kinesis across the nodes of a cluster (issue 17): tables, items, their streams
and Kinesis streams live in the shared PostgreSQL database, so a table or stream made on one
node is read and written on every node, a condition holds whichever nodes race on it, and a
stream mapping's shard is polled by one node at a time (each record reaches the function
once, not once per node), taken over by another node when its poller's node stops."""

from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from botocore.exceptions import ClientError

from helpers import create_function, http_get, make_zip, wait_for
from test_cluster_events import RECORDER, _everywhere, _nodes


def _table(client, name: str, stream: bool = False) -> str | None:
    kwargs = {"StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}} if stream else {}
    out = client.create_table(TableName=name, AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                              KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST", **kwargs)
    return out["TableDescription"].get("LatestStreamArn")


def test_a_table_is_every_nodes(server_factory, tmp_path):
    """Made on A, written on B, read on C; a conditional put raced from all three nodes
    succeeds once; counters added from every node lose no increment."""
    a, b, c = _nodes(server_factory, tmp_path, 3)
    _table(a.client("dynamodb"), "orders")
    assert "orders" in c.client("dynamodb").list_tables()["TableNames"]
    b.client("dynamodb").put_item(TableName="orders", Item={"pk": {"S": "o1"}, "total": {"N": "12"}})
    got = c.client("dynamodb").get_item(TableName="orders", Key={"pk": {"S": "o1"}}, ConsistentRead=True)
    assert got["Item"]["total"] == {"N": "12"}

    nodes = [a, b, c]

    def claim(i: int) -> str:
        try:
            nodes[i % 3].client("dynamodb").put_item(TableName="orders", Item={"pk": {"S": "once"}, "by": {"N": str(i)}},
                                                     ConditionExpression="attribute_not_exists(pk)")
            return "won"
        except ClientError as e:
            return e.response["Error"]["Code"]

    with ThreadPoolExecutor(12) as pool:
        outcomes = Counter(pool.map(claim, range(24)))
    assert outcomes == {"won": 1, "ConditionalCheckFailedException": 23}, outcomes

    def add(i: int) -> None:
        nodes[i % 3].client("dynamodb").update_item(TableName="orders", Key={"pk": {"S": "count"}},
                                                    UpdateExpression="ADD n :one", ExpressionAttributeValues={":one": {"N": "1"}})

    with ThreadPoolExecutor(12) as pool:
        list(pool.map(add, range(60)))
    got = a.client("dynamodb").get_item(TableName="orders", Key={"pk": {"S": "count"}}, ConsistentRead=True)
    assert got["Item"]["n"] == {"N": "60"}


def test_a_stream_mapping_delivers_each_record_once_and_moves_when_its_node_stops(server_factory, tmp_path):
    """Three nodes run the mapping; each change reaches the function once. Two nodes stop
    (SIGTERM, handing their leases back): the one left polls the shard, and the later
    changes arrive, each once, with nothing lost in between."""
    a, b, c = _nodes(server_factory, tmp_path, 3)
    stream_arn = _table(a.client("dynamodb"), "events", stream=True)
    create_function(a.lambda_client(), "watcher", "nodejs20.x", "index.handler", make_zip(RECORDER))
    a.lambda_client().create_event_source_mapping(FunctionName="watcher", EventSourceArn=stream_arn,
                                                  StartingPosition="TRIM_HORIZON", BatchSize=10)
    nodes = [a, b, c]
    for i in range(30):
        nodes[i % 3].client("dynamodb").put_item(TableName="events", Item={"pk": {"S": f"e{i:02d}"}})

    def seen() -> Counter:
        keys = Counter()
        for event in _everywhere(nodes, "watcher"):
            for record in event.get("Records", []):
                keys[record["dynamodb"]["Keys"]["pk"]["S"]] += 1
        return keys

    wait_for(lambda: len(seen()) == 30, timeout=30, what="every change delivered")
    time.sleep(2)  # a second node polling the shard would deliver them again by now
    assert max(seen().values()) == 1, seen()

    # Stop two of the three nodes (whichever held the shard, one of them or not): the one
    # left carries on from the stored checkpoint.
    assert a.stop() == 0
    assert b.stop() == 0
    for i in range(30, 40):
        c.client("dynamodb").put_item(TableName="events", Item={"pk": {"S": f"e{i:02d}"}})
    wait_for(lambda: len(seen()) == 40, timeout=60, what="the changes after the stop delivered by the node left")
    time.sleep(2)
    assert max(seen().values()) == 1, seen()


def test_a_kinesis_stream_is_every_nodes(server_factory, tmp_path):
    """Records put on all three nodes are one shard's sequence on every node (indexes given
    out one writer at a time), and a Kinesis mapping run by the three nodes delivers each
    record once."""
    a, b, c = _nodes(server_factory, tmp_path, 3)
    nodes = [a, b, c]
    a.client("kinesis").create_stream(StreamName="clicks", ShardCount=1)
    arn = c.client("kinesis").describe_stream_summary(StreamName="clicks")["StreamDescriptionSummary"]["StreamARN"]

    def put(i: int) -> str:
        return nodes[i % 3].client("kinesis").put_record(StreamName="clicks", Data=f"r{i:02d}".encode(), PartitionKey="k")["SequenceNumber"]

    with ThreadPoolExecutor(9) as pool:
        sequence_numbers = list(pool.map(put, range(45)))
    assert len(set(sequence_numbers)) == 45
    it = b.client("kinesis").get_shard_iterator(StreamName="clicks", ShardId="shardId-000000000000",
                                                ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    got = b.client("kinesis").get_records(ShardIterator=it, Limit=1000)["Records"]
    assert sorted(r["Data"].decode() for r in got) == [f"r{i:02d}" for i in range(45)]
    assert [r["SequenceNumber"] for r in got] == sorted(sequence_numbers, key=int)

    create_function(a.lambda_client(), "reader", "nodejs20.x", "index.handler", make_zip(RECORDER))
    a.lambda_client().create_event_source_mapping(FunctionName="reader", EventSourceArn=arn, StartingPosition="TRIM_HORIZON",
                                                  BatchSize=10)

    def seen() -> Counter:
        out = Counter()
        for event in _everywhere(nodes, "reader"):
            for record in event.get("Records", []):
                out[record["kinesis"]["sequenceNumber"]] += 1
        return out

    wait_for(lambda: len(seen()) == 45, timeout=30, what="every record delivered")
    time.sleep(2)  # a second node polling the shard would deliver them again by now
    assert max(seen().values()) == 1, seen()


def _pollers(node) -> int:
    code, _, body = http_get(node.endpoint + "/_nimbus/status")
    assert code == 200
    return json.loads(body)["eventSources"]["shardPollers"]


def test_a_mappings_shards_are_shared_out_among_the_nodes(server_factory, tmp_path):
    """Four shards, three nodes: each node polls at most two (a node over its share hands
    shards back until the others hold theirs), and every record still arrives once."""
    a, b, c = _nodes(server_factory, tmp_path, 3)
    nodes = [a, b, c]
    a.client("kinesis").create_stream(StreamName="wide", ShardCount=4)
    arn = a.client("kinesis").describe_stream_summary(StreamName="wide")["StreamDescriptionSummary"]["StreamARN"]
    create_function(a.lambda_client(), "spread", "nodejs20.x", "index.handler", make_zip(RECORDER))
    a.lambda_client().create_event_source_mapping(FunctionName="spread", EventSourceArn=arn, StartingPosition="TRIM_HORIZON",
                                                  BatchSize=10)

    def shared_out():
        counts = [_pollers(n) for n in nodes]
        return counts if sum(counts) == 4 and max(counts) <= 2 and sum(1 for x in counts if x) >= 2 else None

    wait_for(shared_out, timeout=20, what="the four shards shared out among the nodes")
    for i in range(40):
        nodes[i % 3].client("kinesis").put_record(StreamName="wide", Data=f"w{i:02d}".encode(), PartitionKey=f"key-{i}")

    def seen() -> Counter:
        out = Counter()
        for event in _everywhere(nodes, "spread"):
            for record in event.get("Records", []):
                out[record["kinesis"]["data"]] += 1
        return out

    wait_for(lambda: len(seen()) == 40, timeout=30, what="every record delivered")
    time.sleep(2)
    assert set(seen().values()) == {1}, seen()

"""DynamoDB Streams: a table with each view type, INSERT/MODIFY/REMOVE records in commit
order through boto3's `dynamodbstreams` client, iterators of each type, disabling and
enabling a table's stream, a TTL deletion's record, AWS's errors, and the aws CLI v1."""

from __future__ import annotations

import json
import time

import pytest
from botocore.exceptions import ClientError

from helpers import ACCOUNT, REGION, aws_cli_runner, client_error, unique, wait_for


@pytest.fixture(scope="module")
def ddb(server):
    return server.client("dynamodb")


@pytest.fixture(scope="module")
def streams(server):
    return server.client("dynamodbstreams")


def make_table(ddb, view_type: str | None = "NEW_AND_OLD_IMAGES", name: str | None = None) -> tuple[str, str | None]:
    name = name or unique("st")
    kw = {"StreamSpecification": {"StreamEnabled": True, "StreamViewType": view_type}} if view_type else {}
    d = ddb.create_table(TableName=name, AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST",
                         **kw)["TableDescription"]
    return name, d.get("LatestStreamArn")


def changes(ddb, table: str):
    ddb.put_item(TableName=table, Item={"id": {"S": "a"}, "v": {"N": "1"}})
    ddb.update_item(TableName=table, Key={"id": {"S": "a"}}, UpdateExpression="SET v = :v",
                    ExpressionAttributeValues={":v": {"N": "2"}})
    ddb.put_item(TableName=table, Item={"id": {"S": "b"}, "v": {"N": "1"}})
    ddb.delete_item(TableName=table, Key={"id": {"S": "a"}})


def shard_of(streams, arn: str) -> str:
    shards = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    assert len(shards) == 1
    return shards[0]["ShardId"]


def read_all(streams, arn: str, kind: str = "TRIM_HORIZON", **kw) -> list[dict]:
    it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard_of(streams, arn), ShardIteratorType=kind, **kw)["ShardIterator"]
    out = []
    for _ in range(20):
        page = streams.get_records(ShardIterator=it)
        out += page["Records"]
        it = page.get("NextShardIterator")
        if not it or not page["Records"]:
            break
    return out


def brief(r: dict) -> tuple:
    d = r["dynamodb"]
    img = lambda k: d[k].get("v", {}).get("N") if k in d else None  # noqa: E731
    return r["eventName"], d["Keys"]["id"]["S"], img("NewImage"), img("OldImage")


@pytest.mark.parametrize("view,want", [
    ("KEYS_ONLY", [("INSERT", "a", None, None), ("MODIFY", "a", None, None), ("INSERT", "b", None, None), ("REMOVE", "a", None, None)]),
    ("NEW_IMAGE", [("INSERT", "a", "1", None), ("MODIFY", "a", "2", None), ("INSERT", "b", "1", None), ("REMOVE", "a", None, None)]),
    ("OLD_IMAGE", [("INSERT", "a", None, None), ("MODIFY", "a", None, "1"), ("INSERT", "b", None, None), ("REMOVE", "a", None, "2")]),
    ("NEW_AND_OLD_IMAGES", [("INSERT", "a", "1", None), ("MODIFY", "a", "2", "1"), ("INSERT", "b", "1", None), ("REMOVE", "a", None, "2")]),
])
def test_view_types_and_record_shape(ddb, streams, view, want):
    table, arn = make_table(ddb, view)
    assert arn.startswith(f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}/stream/")
    d = streams.describe_stream(StreamArn=arn)["StreamDescription"]
    assert (d["StreamArn"], d["StreamStatus"], d["StreamViewType"], d["TableName"]) == (arn, "ENABLED", view, table)
    assert d["StreamLabel"] == arn.rsplit("/", 1)[1]
    assert d["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert "EndingSequenceNumber" not in d["Shards"][0]["SequenceNumberRange"]
    changes(ddb, table)
    records = read_all(streams, arn)
    assert [brief(r) for r in records] == want
    seqs = [r["dynamodb"]["SequenceNumber"] for r in records]
    assert all(len(s) >= 21 and s.isdigit() for s in seqs) and [int(s) for s in seqs] == sorted(int(s) for s in seqs)
    assert len(set(seqs)) == 4
    for r in records:
        assert (r["eventVersion"], r["eventSource"], r["awsRegion"]) == ("1.1", "aws:dynamodb", REGION)
        assert r["dynamodb"]["StreamViewType"] == view and "userIdentity" not in r
        assert abs(r["dynamodb"]["ApproximateCreationDateTime"].timestamp() - time.time()) < 60
    # AWS's sizes: keys {"id": "a"} 3 bytes, an image {"id": "a", "v": 1} 6 (a 1-digit number is 2 bytes).
    sizes = {"KEYS_ONLY": [3, 3, 3, 3], "NEW_IMAGE": [9, 9, 9, 3], "OLD_IMAGE": [3, 9, 3, 9], "NEW_AND_OLD_IMAGES": [9, 15, 9, 9]}[view]
    assert [r["dynamodb"]["SizeBytes"] for r in records] == sizes


def test_iterator_types_and_paging(ddb, streams):
    table, arn = make_table(ddb, "NEW_IMAGE")
    shard = shard_of(streams, arn)
    latest = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")["ShardIterator"]
    assert latest.startswith(arn + "|")
    changes(ddb, table)
    records = read_all(streams, arn)
    seq = [r["dynamodb"]["SequenceNumber"] for r in records]
    page = streams.get_records(ShardIterator=latest)
    assert [brief(r) for r in page["Records"]] == [brief(r) for r in records], "LATEST taken before the writes sees them"
    it = lambda kind, **kw: streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType=kind, **kw)["ShardIterator"]  # noqa: E731
    assert [r["dynamodb"]["SequenceNumber"] for r in streams.get_records(ShardIterator=it("AT_SEQUENCE_NUMBER", SequenceNumber=seq[1]))["Records"]] == seq[1:]
    assert [r["dynamodb"]["SequenceNumber"] for r in streams.get_records(ShardIterator=it("AFTER_SEQUENCE_NUMBER", SequenceNumber=seq[1]))["Records"]] == seq[2:]
    assert streams.get_records(ShardIterator=it("LATEST"))["Records"] == []
    first = streams.get_records(ShardIterator=it("TRIM_HORIZON"), Limit=3)
    assert len(first["Records"]) == 3
    rest = streams.get_records(ShardIterator=first["NextShardIterator"])
    assert [r["dynamodb"]["SequenceNumber"] for r in rest["Records"]] == seq[3:]
    assert rest["NextShardIterator"], "an open shard always has a next iterator"
    start = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["SequenceNumberRange"]["StartingSequenceNumber"]
    assert start == seq[0]
    # Batches and transactions record each item in commit order.
    ddb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": {"id": {"S": f"k{i}"}, "v": {"N": str(i)}}}} for i in range(3)]})
    ddb.transact_write_items(TransactItems=[{"Put": {"TableName": table, "Item": {"id": {"S": "t"}, "v": {"N": "9"}}}},
                                            {"Delete": {"TableName": table, "Key": {"id": {"S": "k0"}}}}])
    more = streams.get_records(ShardIterator=rest["NextShardIterator"])["Records"]
    assert [brief(r)[:2] for r in more] == [("INSERT", "k0"), ("INSERT", "k1"), ("INSERT", "k2"), ("INSERT", "t"), ("REMOVE", "k0")]


def test_disable_and_enable(ddb, streams):
    table, first = make_table(ddb, "KEYS_ONLY")
    ddb.put_item(TableName=table, Item={"id": {"S": "a"}})
    d = ddb.update_table(TableName=table, StreamSpecification={"StreamEnabled": False})["TableDescription"]
    assert "StreamSpecification" not in d
    ddb.put_item(TableName=table, Item={"id": {"S": "b"}})
    desc = streams.describe_stream(StreamArn=first)["StreamDescription"]
    assert desc["StreamStatus"] == "DISABLED"
    records = read_all(streams, first)
    assert [brief(r)[:2] for r in records] == [("INSERT", "a")]
    assert desc["Shards"][0]["SequenceNumberRange"]["EndingSequenceNumber"] == records[0]["dynamodb"]["SequenceNumber"]
    it = streams.get_shard_iterator(StreamArn=first, ShardId=desc["Shards"][0]["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    page = streams.get_records(ShardIterator=it)
    assert len(page["Records"]) == 1 and "NextShardIterator" not in page, "a closed shard read to its end"
    time.sleep(0.01)
    second = ddb.update_table(TableName=table, StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})["TableDescription"]["LatestStreamArn"]
    assert second != first
    ddb.put_item(TableName=table, Item={"id": {"S": "c"}})
    assert [brief(r)[:2] for r in read_all(streams, second)] == [("INSERT", "c")]
    listed = streams.list_streams(TableName=table)["Streams"]
    assert [s["StreamArn"] for s in listed] == [first, second]
    assert listed[0] == {"StreamArn": first, "TableName": table, "StreamLabel": first.rsplit("/", 1)[1]}
    page = streams.list_streams(TableName=table, Limit=1)
    assert (len(page["Streams"]), page["LastEvaluatedStreamArn"]) == (1, first)
    assert [s["StreamArn"] for s in streams.list_streams(TableName=table, ExclusiveStartStreamArn=first)["Streams"]] == [second]
    assert any(s["StreamArn"] == second for s in streams.list_streams()["Streams"])


def test_ttl_deletion_record(ddb, streams):
    table, arn = make_table(ddb, "NEW_AND_OLD_IMAGES")
    ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "exp"})
    ddb.put_item(TableName=table, Item={"id": {"S": "old"}, "exp": {"N": str(int(time.time()) - 10)}})
    records = wait_for(lambda: (r := read_all(streams, arn)) and len(r) == 2 and r, timeout=15, what="the TTL deletion's record")
    insert, remove = records
    assert "userIdentity" not in insert
    assert remove["eventName"] == "REMOVE"
    assert remove["userIdentity"] == {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}
    assert remove["dynamodb"]["OldImage"]["id"] == {"S": "old"} and "NewImage" not in remove["dynamodb"]


def test_errors(ddb, streams):
    table, arn = make_table(ddb, "KEYS_ONLY")
    shard = shard_of(streams, arn)
    gone = arn.rsplit("/", 1)[0] + "/2000-01-01T00:00:00.000"
    with pytest.raises(ClientError) as e:
        streams.describe_stream(StreamArn=gone)
    assert client_error(e) == ("ResourceNotFoundException", 400, f"Requested resource not found: Stream: {gone} not found")
    with pytest.raises(ClientError) as e:
        streams.get_shard_iterator(StreamArn=gone, ShardId=shard, ShardIteratorType="LATEST")
    assert client_error(e)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        streams.get_shard_iterator(StreamArn=arn, ShardId="shardId-00000000000000000000-00000000", ShardIteratorType="LATEST")
    assert client_error(e) == ("ResourceNotFoundException", 400, "Requested resource not found: Shard does not exist")
    with pytest.raises(ClientError) as e:
        streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="AT_SEQUENCE_NUMBER")
    assert client_error(e)[:2] == ("ValidationException", 400)
    with pytest.raises(ClientError) as e:
        streams.get_records(ShardIterator=arn + "|1|" + "A" * 68)
    assert client_error(e)[:2] == ("ValidationException", 400)
    with pytest.raises(ClientError) as e:
        streams.list_streams(TableName=unique("nope"))
    assert client_error(e)[0] == "ResourceNotFoundException"
    it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")["ShardIterator"]
    with pytest.raises(ClientError) as e:
        streams.get_records(ShardIterator=it, Limit=1001)
    assert client_error(e) == ("ValidationException", 400, "1 validation error detected: Value '1001' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 1000")
    # A table deleted: its stream is DISABLED and its records stay readable.
    ddb.put_item(TableName=table, Item={"id": {"S": "x"}})
    ddb.delete_table(TableName=table)
    assert streams.describe_stream(StreamArn=arn)["StreamDescription"]["StreamStatus"] == "DISABLED"
    assert [brief(r)[:2] for r in read_all(streams, arn)] == [("INSERT", "x")]


def test_expired_iterator_after_restart(server_factory):
    """Iterators are signed with a key of the server's run: one from before a restart is
    refused as expired (AWS's ExpiredIteratorException), as one older than 15 minutes is."""
    srv = server_factory()
    ddb, streams = srv.client("dynamodb"), srv.client("dynamodbstreams")
    table, arn = make_table(ddb, "KEYS_ONLY")
    it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard_of(streams, arn), ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    srv.restart()
    streams = srv.client("dynamodbstreams")
    with pytest.raises(ClientError) as e:
        streams.get_records(ShardIterator=it)
    assert client_error(e)[:2] == ("ExpiredIteratorException", 400)


def test_aws_cli(aws_cli, server, ddb, tmp_path):
    cli = aws_cli_runner(aws_cli, server.endpoint, tmp_path / "home")
    table, arn = make_table(ddb, "NEW_AND_OLD_IMAGES")
    ddb.put_item(TableName=table, Item={"id": {"S": "cli"}, "v": {"N": "1"}})
    cp = cli("dynamodbstreams", "list-streams", "--table-name", table)
    assert cp.returncode == 0, cp.err
    assert [s["StreamArn"] for s in json.loads(cp.out)["Streams"]] == [arn]
    cp = cli("dynamodbstreams", "describe-stream", "--stream-arn", arn)
    assert cp.returncode == 0, cp.err
    shard = json.loads(cp.out)["StreamDescription"]["Shards"][0]["ShardId"]
    cp = cli("dynamodbstreams", "get-shard-iterator", "--stream-arn", arn, "--shard-id", shard, "--shard-iterator-type", "TRIM_HORIZON")
    assert cp.returncode == 0, cp.err
    it = json.loads(cp.out)["ShardIterator"]
    cp = cli("dynamodbstreams", "get-records", "--shard-iterator", it)
    assert cp.returncode == 0, cp.err
    records = json.loads(cp.out)["Records"]
    assert [(r["eventName"], r["dynamodb"]["NewImage"]) for r in records] == [("INSERT", {"id": {"S": "cli"}, "v": {"N": "1"}})]
    cp = cli("dynamodbstreams", "describe-stream", "--stream-arn", arn + "x")
    assert cp.returncode != 0 and "ResourceNotFoundException" in cp.err, cp.err

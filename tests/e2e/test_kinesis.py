"""Kinesis Data Streams: every served action through boto3 (JSON 1.1) and the aws CLI v1:
streams by name and by ARN, records by partition key and ExplicitHashKey, every iterator type,
order per partition key, per-record failures, split then merge read parent first, retention,
tags, AWS's errors, and acknowledged records surviving kill -9."""

from __future__ import annotations

import base64
import hashlib
import json
import time

import pytest
from botocore.exceptions import ClientError

from helpers import ACCOUNT, REGION, Server, aws_cli_runner, client_error, unique

SHARD0 = "shardId-000000000000"
MAX_HASH = 2**128 - 1


@pytest.fixture(scope="module")
def kinesis(server):
    return server.client("kinesis")


@pytest.fixture(scope="module")
def kinesis_raw(server):
    """No client-side parameter validation: lets invalid requests reach the server."""
    return server.client("kinesis", validate=False)


@pytest.fixture
def stream(kinesis):
    """make(shards=1, name=None) -> stream name; streams deleted after the test."""
    made: list[str] = []

    def make(shards: int | None = 1, name: str | None = None, **kwargs) -> str:
        name = name or unique("ks")
        if shards is None:
            kinesis.create_stream(StreamName=name, StreamModeDetails={"StreamMode": "ON_DEMAND"}, **kwargs)
        else:
            kinesis.create_stream(StreamName=name, ShardCount=shards, **kwargs)
        made.append(name)
        return name

    yield make
    for name in made:
        try:
            kinesis.delete_stream(StreamName=name)
        except ClientError:
            pass


def read_all(kinesis, name: str, shard: str, kind: str = "TRIM_HORIZON", **kwargs) -> list[dict]:
    it = kinesis.get_shard_iterator(StreamName=name, ShardId=shard, ShardIteratorType=kind, **kwargs)["ShardIterator"]
    out: list[dict] = []
    while it:
        page = kinesis.get_records(ShardIterator=it, Limit=1000)
        out += page["Records"]
        if not page["Records"]:
            break
        it = page.get("NextShardIterator")
    return out


def test_create_describe_list_and_the_waiter(kinesis, stream):
    name = stream(3)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    d = kinesis.describe_stream(StreamName=name)["StreamDescription"]
    assert d["StreamStatus"] == "ACTIVE"
    assert d["StreamARN"] == f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}"
    assert d["RetentionPeriodHours"] == 24 and d["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
    ranges = [(int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"])) for s in d["Shards"]]
    third = 2**128 // 3
    assert ranges == [(0, third - 1), (third, 2 * third - 1), (2 * third, MAX_HASH)]
    assert [s["ShardId"] for s in d["Shards"]] == [f"shardId-00000000000{i}" for i in range(3)]
    assert all(len(s["SequenceNumberRange"]["StartingSequenceNumber"]) == 56 for s in d["Shards"])
    page = kinesis.describe_stream(StreamName=name, Limit=2)["StreamDescription"]
    assert len(page["Shards"]) == 2 and page["HasMoreShards"]
    rest = kinesis.describe_stream(StreamName=name, ExclusiveStartShardId=page["Shards"][-1]["ShardId"])["StreamDescription"]
    assert [s["ShardId"] for s in rest["Shards"]] == ["shardId-000000000002"] and not rest["HasMoreShards"]
    # By ARN, as new SDKs address streams.
    arn = d["StreamARN"]
    summary = kinesis.describe_stream_summary(StreamARN=arn)["StreamDescriptionSummary"]
    assert summary["OpenShardCount"] == 3 and summary["StreamName"] == name
    # On-demand streams start with four shards.
    od = stream(None)
    assert kinesis.describe_stream_summary(StreamName=od)["StreamDescriptionSummary"]["StreamModeDetails"]["StreamMode"] == "ON_DEMAND"
    assert len(kinesis.list_shards(StreamName=od)["Shards"]) == 4
    # Neither ShardCount nor a mode: AWS makes a four-shard on-demand stream too
    # (LocalStack's AWS-validated test_create_stream_without_shard_count).
    bare = unique("bare")
    kinesis.create_stream(StreamName=bare)
    kinesis.get_waiter("stream_exists").wait(StreamName=bare, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert len(kinesis.list_shards(StreamName=bare)["Shards"]) == 4
    kinesis.delete_stream(StreamName=bare)
    names = kinesis.list_streams(Limit=10000)["StreamNames"]
    assert name in names and od in names
    # Paging ListStreams with its token.
    seen, token = [], None
    while True:
        resp = kinesis.list_streams(Limit=1, **({"NextToken": token} if token else {}))
        seen += [s["StreamName"] for s in resp["StreamSummaries"]]
        if not resp["HasMoreStreams"]:
            break
        token = resp["NextToken"]
    assert {name, od} <= set(seen) and seen == sorted(seen)


def test_records_route_by_md5_and_explicit_hash_key(kinesis, stream):
    name = stream(4)
    quarter = 2**126
    for key, shard in [(0, 0), (quarter - 1, 0), (quarter, 1), (2 * quarter, 2), (MAX_HASH, 3)]:
        r = kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="ignored", ExplicitHashKey=str(key))
        assert r["ShardId"] == f"shardId-00000000000{shard}", key
    for pk in ["a", "orders-1", "ünïcødé"]:
        h = int(hashlib.md5(pk.encode()).hexdigest(), 16)
        r = kinesis.put_record(StreamName=name, Data=b"y", PartitionKey=pk)
        assert r["ShardId"] == f"shardId-00000000000{h // quarter}", pk
        assert len(r["SequenceNumber"]) == 56


def test_order_per_partition_key_and_every_iterator_type(kinesis, stream):
    name = stream(2)
    sent: dict[str, list[str]] = {}
    seqs: dict[str, list[str]] = {}
    for i in range(60):
        pk = f"key-{i % 5}"
        r = kinesis.put_record(StreamName=name, Data=f"{pk}:{i}".encode(), PartitionKey=pk)
        sent.setdefault(pk, []).append(f"{pk}:{i}")
        seqs.setdefault(r["ShardId"], []).append(r["SequenceNumber"])
    got: dict[str, list[str]] = {}
    for shard, shard_seqs in seqs.items():
        records = read_all(kinesis, name, shard)
        assert [r["SequenceNumber"] for r in records] == shard_seqs
        assert [int(s) for s in shard_seqs] == sorted(int(s) for s in shard_seqs)
        for r in records:
            got.setdefault(r["PartitionKey"], []).append(r["Data"].decode())
            assert r["ApproximateArrivalTimestamp"].timestamp() > time.time() - 60
    assert got == sent
    shard, shard_seqs = next(iter(seqs.items()))
    at = read_all(kinesis, name, shard, "AT_SEQUENCE_NUMBER", StartingSequenceNumber=shard_seqs[3])
    assert [r["SequenceNumber"] for r in at] == shard_seqs[3:]
    after = read_all(kinesis, name, shard, "AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=shard_seqs[3])
    assert [r["SequenceNumber"] for r in after] == shard_seqs[4:]
    latest = kinesis.get_shard_iterator(StreamName=name, ShardId=shard, ShardIteratorType="LATEST")["ShardIterator"]
    assert kinesis.get_records(ShardIterator=latest)["Records"] == []
    time.sleep(1.1)
    mark = time.time()
    time.sleep(0.05)
    put = kinesis.put_records(StreamName=name, Records=[{"Data": b"late", "PartitionKey": "x", "ExplicitHashKey": "0"}, {"Data": b"late2", "PartitionKey": "x", "ExplicitHashKey": str(MAX_HASH)}])
    late_shard = put["Records"][0]["ShardId"]
    if late_shard == shard:
        page = kinesis.get_records(ShardIterator=latest)
        assert [r["Data"] for r in page["Records"]] == [b"late"]
    ts = read_all(kinesis, name, late_shard, "AT_TIMESTAMP", Timestamp=mark)
    assert [r["Data"] for r in ts] == [b"late"]
    # Limit, MillisBehindLatest.
    it = kinesis.get_shard_iterator(StreamName=name, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    page = kinesis.get_records(ShardIterator=it, Limit=2)
    assert len(page["Records"]) == 2 and page["MillisBehindLatest"] > 0 and page["NextShardIterator"]


def test_put_records_reports_each_record(kinesis, stream, kinesis_raw):
    name = stream(2)
    resp = kinesis.put_records(StreamName=name, Records=[{"Data": f"r{i}".encode(), "PartitionKey": f"p{i}"} for i in range(10)])
    assert resp["FailedRecordCount"] == 0 and len(resp["Records"]) == 10
    assert all("SequenceNumber" in r and "ShardId" in r for r in resp["Records"])
    # Over a shard's 1,000 records per second: the excess fails one record at a time.
    big = [{"Data": b"z", "PartitionKey": "x", "ExplicitHashKey": "0"} for _ in range(500)]
    failed = 0
    # The bucket refills at 1,000 records a second while the calls run, so a slow machine
    # needs more calls to see the same refusals: up to 8, until 400 were refused.
    for _ in range(8):
        if failed >= 400:
            break
        r = kinesis.put_records(StreamName=name, Records=big)
        failed += r["FailedRecordCount"]
        for rec in r["Records"]:
            if "ErrorCode" in rec:
                assert rec["ErrorCode"] == "ProvisionedThroughputExceededException"
                assert rec["ErrorMessage"] == f"Rate exceeded for shard {SHARD0} in stream {name} under account {ACCOUNT}."
                assert "SequenceNumber" not in rec
    assert failed >= 400, failed
    # Over its 1 MiB per second: a second large record right after a first one is refused.
    kinesis.put_record(StreamName=name, Data=b"z" * 900_000, PartitionKey="k", ExplicitHashKey=str(MAX_HASH))
    with pytest.raises(ClientError) as e:
        kinesis.put_record(StreamName=name, Data=b"z" * 900_000, PartitionKey="k", ExplicitHashKey=str(MAX_HASH))
    assert client_error(e) == ("ProvisionedThroughputExceededException", 400,
                               f"Rate exceeded for shard shardId-000000000001 in stream {name} under account {ACCOUNT}.")


def test_split_then_merge_read_parent_then_children(kinesis, stream):
    name = stream(1)
    before = [kinesis.put_record(StreamName=name, Data=f"p{i}".encode(), PartitionKey=f"k{i}")["SequenceNumber"] for i in range(5)]
    half = 2**127
    kinesis.split_shard(StreamName=name, ShardToSplit=SHARD0, NewStartingHashKey=str(half))
    shards = kinesis.list_shards(StreamName=name)["Shards"]
    assert [s["ShardId"] for s in shards] == [SHARD0, "shardId-000000000001", "shardId-000000000002"]
    assert "EndingSequenceNumber" in shards[0]["SequenceNumberRange"]
    assert [s.get("ParentShardId") for s in shards] == [None, SHARD0, SHARD0]
    assert shards[1]["HashKeyRange"] == {"StartingHashKey": "0", "EndingHashKey": str(half - 1)}
    assert kinesis.put_record(StreamName=name, Data=b"c1", PartitionKey="x", ExplicitHashKey="1")["ShardId"] == "shardId-000000000001"
    assert kinesis.put_record(StreamName=name, Data=b"c2", PartitionKey="x", ExplicitHashKey=str(half))["ShardId"] == "shardId-000000000002"
    # The parent reads to its end: its records, then a null iterator and its children.
    it = kinesis.get_shard_iterator(StreamName=name, ShardId=SHARD0, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    page = kinesis.get_records(ShardIterator=it)
    assert [r["SequenceNumber"] for r in page["Records"]] == before
    assert "NextShardIterator" not in page or page["NextShardIterator"] is None
    assert sorted(c["ShardId"] for c in page["ChildShards"]) == ["shardId-000000000001", "shardId-000000000002"]
    assert [r["Data"] for r in read_all(kinesis, name, "shardId-000000000001")] == [b"c1"]
    assert [r["Data"] for r in read_all(kinesis, name, "shardId-000000000002")] == [b"c2"]
    kinesis.merge_shards(StreamName=name, ShardToMerge="shardId-000000000001", AdjacentShardToMerge="shardId-000000000002")
    merged = kinesis.list_shards(StreamName=name, ShardFilter={"Type": "AT_LATEST"})["Shards"]
    assert len(merged) == 1
    m = merged[0]
    assert (m["ShardId"], m["ParentShardId"], m["AdjacentParentShardId"]) == ("shardId-000000000003", "shardId-000000000001", "shardId-000000000002")
    assert m["HashKeyRange"] == {"StartingHashKey": "0", "EndingHashKey": str(MAX_HASH)}
    # UpdateShardCount reaches its target with uniform ranges.
    out = kinesis.update_shard_count(StreamName=name, TargetShardCount=2, ScalingType="UNIFORM_SCALING")
    assert (out["CurrentShardCount"], out["TargetShardCount"]) == (1, 2)
    open_shards = kinesis.list_shards(StreamName=name, ShardFilter={"Type": "AT_LATEST"})["Shards"]
    assert [(s["HashKeyRange"]["StartingHashKey"], s["HashKeyRange"]["EndingHashKey"]) for s in open_shards] == [("0", str(half - 1)), (str(half), str(MAX_HASH))]
    # ListShards pages with NextToken.
    first = kinesis.list_shards(StreamName=name, MaxResults=2)
    rest = kinesis.list_shards(NextToken=first["NextToken"])
    assert len(first["Shards"]) + len(rest["Shards"]) == len(kinesis.list_shards(StreamName=name)["Shards"])


def test_retention_and_tags(kinesis, stream):
    name = stream(1)
    kinesis.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=48)
    assert kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["RetentionPeriodHours"] == 48
    kinesis.decrease_stream_retention_period(StreamName=name, RetentionPeriodHours=24)
    assert kinesis.describe_stream(StreamName=name)["StreamDescription"]["RetentionPeriodHours"] == 24
    with pytest.raises(ClientError) as e:
        kinesis.decrease_stream_retention_period(StreamName=name, RetentionPeriodHours=12)
    assert client_error(e) == ("InvalidArgumentException", 400, "Minimum allowed retention period is 24 hours. Requested retention period (12 hours) is too short.")
    with pytest.raises(ClientError) as e:
        kinesis.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=9000)
    assert client_error(e)[0] == "InvalidArgumentException"
    kinesis.add_tags_to_stream(StreamName=name, Tags={"team": "a", "env": "prod"})
    kinesis.remove_tags_from_stream(StreamName=name, TagKeys=["env"])
    tags = kinesis.list_tags_for_stream(StreamName=name)
    assert tags["Tags"] == [{"Key": "team", "Value": "a"}] and tags["HasMoreTags"] is False


def test_errors_in_aws_words(kinesis, kinesis_raw, stream):
    name = stream(1)
    with pytest.raises(ClientError) as e:
        kinesis.describe_stream(StreamName="no-such-stream")
    assert client_error(e) == ("ResourceNotFoundException", 400, f"Stream no-such-stream under account {ACCOUNT} not found.")
    with pytest.raises(ClientError) as e:
        kinesis.create_stream(StreamName=name, ShardCount=1)
    assert client_error(e) == ("ResourceInUseException", 400, f"Stream {name} under account {ACCOUNT} already exists.")
    with pytest.raises(ClientError) as e:
        kinesis.get_shard_iterator(StreamName=name, ShardId="shardId-000000000007", ShardIteratorType="LATEST")
    assert client_error(e) == ("ResourceNotFoundException", 400, f"Shard shardId-000000000007 in stream {name} under account {ACCOUNT} does not exist")
    with pytest.raises(ClientError) as e:
        kinesis.get_records(ShardIterator="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    assert client_error(e) == ("InvalidArgumentException", 400, "Invalid ShardIterator.")
    # A forged iterator: one byte of a real one changed.
    it = bytearray(base64.b64decode(kinesis.get_shard_iterator(StreamName=name, ShardId=SHARD0, ShardIteratorType="LATEST")["ShardIterator"]))
    it[-20] ^= 1
    with pytest.raises(ClientError) as e:
        kinesis.get_records(ShardIterator=base64.b64encode(bytes(it)).decode())
    assert client_error(e)[:2] == ("InvalidArgumentException", 400)
    with pytest.raises(ClientError) as e:
        kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="k", ExplicitHashKey=str(2**128))
    assert client_error(e)[0] == "InvalidArgumentException"
    with pytest.raises(ClientError) as e:
        kinesis.get_shard_iterator(StreamName=name, ShardId=SHARD0, ShardIteratorType="TRIM_HORIZON", StartingSequenceNumber="1")
    assert client_error(e) == ("InvalidArgumentException", 400, "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified TRIM_HORIZON and also a StartingSequenceNumber.")
    with pytest.raises(ClientError) as e:
        kinesis_raw.create_stream(StreamName="bad name!", ShardCount=1)
    assert client_error(e) == ("ValidationException", 400, "1 validation error detected: Value 'bad name!' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+")
    with pytest.raises(ClientError) as e:
        kinesis_raw.put_record(StreamName=name, Data=b"x" * (1024 * 1024 + 1), PartitionKey="k")
    assert client_error(e)[0] == "ValidationException"
    with pytest.raises(ClientError) as e:
        kinesis.merge_shards(StreamName=name, ShardToMerge=SHARD0, AdjacentShardToMerge=SHARD0)
    assert client_error(e)[0] == "InvalidArgumentException"
    with pytest.raises(ClientError) as e:
        kinesis.subscribe_to_shard(ConsumerARN="arn:aws:kinesis:us-east-1:000000000000:stream/x/consumer/c:1", ShardId=SHARD0, StartingPosition={"Type": "LATEST"})
    assert client_error(e)[0] in ("UnknownOperationException", "UnknownOperation")
    kinesis.delete_stream(StreamName=name)
    with pytest.raises(ClientError) as e:
        kinesis.delete_stream(StreamName=name)
    assert client_error(e)[0] == "ResourceNotFoundException"


def test_aws_cli(aws_cli, server, tmp_path):
    cli = aws_cli_runner(aws_cli, server.endpoint, tmp_path / "home")
    name = unique("cli")
    cp = cli("kinesis", "create-stream", "--stream-name", name, "--shard-count", "2")
    assert cp.returncode == 0, cp.err
    try:
        cp = cli("kinesis", "wait", "stream-exists", "--stream-name", name)
        assert cp.returncode == 0, cp.err
        # The CLI v1 takes blob arguments as raw text and base64-encodes them itself.
        cp = cli("kinesis", "put-record", "--stream-name", name, "--partition-key", "k", "--data", "hello")
        assert cp.returncode == 0, cp.err
        shard = json.loads(cp.out)["ShardId"]
        cp = cli("kinesis", "get-shard-iterator", "--stream-name", name, "--shard-id", shard, "--shard-iterator-type", "TRIM_HORIZON")
        assert cp.returncode == 0, cp.err
        it = json.loads(cp.out)["ShardIterator"]
        cp = cli("kinesis", "get-records", "--shard-iterator", it)
        assert cp.returncode == 0, cp.err
        records = json.loads(cp.out)["Records"]
        assert [base64.b64decode(r["Data"]) for r in records] == [b"hello"] and records[0]["PartitionKey"] == "k"
        cp = cli("kinesis", "list-shards", "--stream-name", name)
        assert cp.returncode == 0 and len(json.loads(cp.out)["Shards"]) == 2, cp.err
        cp = cli("kinesis", "describe-stream", "--stream-name", "nope")
        assert cp.returncode != 0 and "ResourceNotFoundException" in cp.err
    finally:
        cli("kinesis", "delete-stream", "--stream-name", name)


def test_acknowledged_records_survive_sigkill(nimbus_bin, tmp_path):
    srv = Server(nimbus_bin, tmp_path / "data", tmp_path / "server.log", name="kinesis-kill").start()
    try:
        k = srv.client("kinesis")
        k.create_stream(StreamName="durable", ShardCount=2)
        acked: dict[str, list[str]] = {}
        for i in range(40):
            r = k.put_record(StreamName="durable", Data=f"r{i}".encode(), PartitionKey=f"p{i % 3}")
            acked.setdefault(r["ShardId"], []).append(r["SequenceNumber"])
        batch = k.put_records(StreamName="durable", Records=[{"Data": f"b{i}".encode(), "PartitionKey": f"q{i}"} for i in range(50)])
        for r in batch["Records"]:
            acked.setdefault(r["ShardId"], []).append(r["SequenceNumber"])
        srv.kill()
        srv.start()
        k = srv.client("kinesis")
        for shard, seqs in acked.items():
            assert [r["SequenceNumber"] for r in read_all(k, "durable", shard)] == seqs
        # Sequence numbers keep growing after the restart.
        r = k.put_record(StreamName="durable", Data=b"after", PartitionKey="p0")
        assert int(r["SequenceNumber"]) > max(int(s) for s in acked[r["ShardId"]])
    finally:
        srv.stop()


def test_tags_by_resource_arn(kinesis, stream):
    """The newer tagging API (TagResource, UntagResource, ListTagsForResource by ARN) sees the
    same tags as the stream-named one."""
    name = stream(1)
    arn = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    kinesis.tag_resource(ResourceARN=arn, Tags={"team": "data", "env": "test"})
    kinesis.untag_resource(ResourceARN=arn, TagKeys=["env"])
    kinesis.add_tags_to_stream(StreamName=name, Tags={"owner": "me"})
    assert kinesis.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "owner", "Value": "me"}, {"Key": "team", "Value": "data"}]
    assert [t["Key"] for t in kinesis.list_tags_for_stream(StreamName=name)["Tags"]] == ["owner", "team"]
    missing = arn.rsplit("/", 1)[0] + "/no-such-stream"
    with pytest.raises(ClientError) as e:
        kinesis.list_tags_for_resource(ResourceARN=missing)
    assert client_error(e)[:2] == ("ResourceNotFoundException", 400)

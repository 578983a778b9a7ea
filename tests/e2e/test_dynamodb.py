"""DynamoDB: tables, items, expressions, queries and scans, batches, transactions and TTL
through boto3's client and its resource API (Key/Attr condition builders), the aws CLI v1,
a Python function writing to a table under its role, and durability across kill -9."""

from __future__ import annotations

import json
import os
import signal
import time
from decimal import Decimal

import boto3
import pytest
from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from helpers import ACCOUNT, REGION, aws_cli_runner, client_error, create_function, make_zip, unique, wait_for


@pytest.fixture(scope="module")
def ddb(server):
    return server.client("dynamodb")


@pytest.fixture(scope="module")
def resource(server):
    return boto3.resource("dynamodb", endpoint_url=server.endpoint, region_name=REGION,
                          aws_access_key_id="test", aws_secret_access_key="test")


def make_table(ddb, name=None, range_key=None, range_type="S", **kw):
    name = name or unique("t")
    attrs = [{"AttributeName": "pk", "AttributeType": "S"}]
    keys = [{"AttributeName": "pk", "KeyType": "HASH"}]
    if range_key:
        attrs.append({"AttributeName": range_key, "AttributeType": range_type})
        keys.append({"AttributeName": range_key, "KeyType": "RANGE"})
    attrs += kw.pop("extra_attributes", [])
    ddb.create_table(TableName=name, AttributeDefinitions=attrs, KeySchema=keys, BillingMode="PAY_PER_REQUEST", **kw)
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 10})
    return name


def test_table_lifecycle(ddb):
    name = unique("life")
    out = ddb.create_table(TableName=name, AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                           KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                           ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5})
    d = out["TableDescription"]
    assert d["TableStatus"] == "CREATING"
    assert d["TableArn"] == f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
    assert d["ProvisionedThroughput"]["ReadCapacityUnits"] == 5
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    t = ddb.describe_table(TableName=name)["Table"]
    assert (t["TableStatus"], t["ItemCount"], t["KeySchema"]) == ("ACTIVE", 0, [{"AttributeName": "id", "KeyType": "HASH"}])
    with pytest.raises(ClientError) as e:
        ddb.create_table(TableName=name, AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST")
    assert client_error(e) == ("ResourceInUseException", 400, f"Table already exists: {name}")
    assert name in ddb.list_tables()["TableNames"]
    ddb.update_table(TableName=name, BillingMode="PAY_PER_REQUEST")
    assert ddb.describe_table(TableName=name)["Table"]["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert ddb.delete_table(TableName=name)["TableDescription"]["TableStatus"] == "DELETING"
    ddb.get_waiter("table_not_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    with pytest.raises(ClientError) as e:
        ddb.describe_table(TableName=name)
    assert client_error(e) == ("ResourceNotFoundException", 400, f"Requested resource not found: Table: {name} not found")
    with pytest.raises(ClientError) as e:
        ddb.get_item(TableName=name, Key={"id": {"S": "x"}})
    assert client_error(e) == ("ResourceNotFoundException", 400, "Requested resource not found")


def test_list_tables_pages(ddb):
    names = sorted(make_table(ddb, unique("page")) for _ in range(3))
    seen, start = [], None
    while True:
        kw = {"Limit": 2, **({"ExclusiveStartTableName": start} if start else {})}
        out = ddb.list_tables(**kw)
        seen += out["TableNames"]
        start = out.get("LastEvaluatedTableName")
        if not start:
            break
    assert [n for n in seen if n in names] == names


def test_create_table_refusals(ddb):
    cases = [
        (dict(AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
              KeySchema=[{"AttributeName": "other", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST"),
         "One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. "
         "Keys: [other], AttributeDefinitions: [id]"),
        (dict(AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}, {"AttributeName": "x", "AttributeType": "S"}],
              KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST"),
         "One or more parameter values were invalid: Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions"),
        (dict(AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
              KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}]),
         "One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED"),
    ]
    for kw, message in cases:
        with pytest.raises(ClientError) as e:
            ddb.create_table(TableName=unique("bad"), **kw)
        assert client_error(e) == ("ValidationException", 400, message)


def test_items_and_conditions(ddb):
    t = make_table(ddb)
    ddb.put_item(TableName=t, Item={"pk": {"S": "a"}, "n": {"N": "1"}, "tags": {"SS": ["x", "y"]}})
    assert ddb.get_item(TableName=t, Key={"pk": {"S": "a"}})["Item"]["n"] == {"N": "1"}
    assert "Item" not in ddb.get_item(TableName=t, Key={"pk": {"S": "missing"}})
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=t, Item={"pk": {"S": "a"}}, ConditionExpression="attribute_not_exists(pk)")
    assert client_error(e) == ("ConditionalCheckFailedException", 400, "The conditional request failed")
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=t, Item={"pk": {"S": "a"}}, ConditionExpression="n = :two",
                     ExpressionAttributeValues={":two": {"N": "2"}}, ReturnValuesOnConditionCheckFailure="ALL_OLD")
    assert e.value.response["Item"]["n"] == {"N": "1"}
    old = ddb.put_item(TableName=t, Item={"pk": {"S": "a"}, "n": {"N": "5"}}, ReturnValues="ALL_OLD")["Attributes"]
    assert old["tags"] == {"SS": ["x", "y"]}
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=t, Item={"pk": {"N": "1"}})
    assert client_error(e) == ("ValidationException", 400,
                               "One or more parameter values were invalid: Type mismatch for key pk expected: S actual: N")
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=t, Item={"other": {"S": "1"}})
    assert client_error(e)[2] == "One or more parameter values were invalid: Missing the key pk in the item"
    with pytest.raises(ClientError) as e:
        ddb.get_item(TableName=t, Key={"pk": {"S": "a"}, "extra": {"S": "b"}})
    assert client_error(e)[2] == "The provided key element does not match the schema"
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=t, Item={"pk": {"S": "big"}, "blob": {"S": "x" * (400 * 1024)}})
    assert client_error(e) == ("ValidationException", 400, "Item size has exceeded the maximum allowed size")
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=t, Item={"pk": {"S": "a"}, "n": {"N": "not a number"}})
    assert client_error(e)[0] == "ValidationException"
    assert ddb.delete_item(TableName=t, Key={"pk": {"S": "a"}}, ReturnValues="ALL_OLD")["Attributes"]["n"] == {"N": "5"}
    assert "Item" not in ddb.get_item(TableName=t, Key={"pk": {"S": "a"}})


def test_update_clauses_and_return_values(ddb):
    t = make_table(ddb)
    key = {"pk": {"S": "u"}}
    out = ddb.update_item(TableName=t, Key=key, UpdateExpression="SET #c = if_not_exists(#c, :zero) + :one, l = :l, m = :m",
                          ExpressionAttributeNames={"#c": "count"},
                          ExpressionAttributeValues={":zero": {"N": "0"}, ":one": {"N": "1"}, ":l": {"L": [{"S": "a"}]},
                                                     ":m": {"M": {"k": {"S": "v"}}}},
                          ReturnValues="ALL_NEW")
    assert out["Attributes"]["count"] == {"N": "1"}
    out = ddb.update_item(TableName=t, Key=key, UpdateExpression="SET l = list_append(l, :more) ADD s :s, #c :five REMOVE m.k",
                          ExpressionAttributeNames={"#c": "count"},
                          ExpressionAttributeValues={":more": {"L": [{"S": "b"}]}, ":s": {"SS": ["p", "q"]}, ":five": {"N": "5"}},
                          ReturnValues="UPDATED_NEW")
    assert out["Attributes"]["count"] == {"N": "6"}
    assert out["Attributes"]["l"] == {"L": [{"S": "a"}, {"S": "b"}]}
    out = ddb.update_item(TableName=t, Key=key, UpdateExpression="DELETE s :p", ExpressionAttributeValues={":p": {"SS": ["p"]}},
                          ReturnValues="UPDATED_OLD")
    assert sorted(out["Attributes"]["s"]["SS"]) == ["p", "q"]
    item = ddb.get_item(TableName=t, Key=key, ProjectionExpression="s, #c, m", ExpressionAttributeNames={"#c": "count"})["Item"]
    assert item == {"s": {"SS": ["q"]}, "count": {"N": "6"}, "m": {"M": {}}}
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=t, Key=key, UpdateExpression="SET pk = :v", ExpressionAttributeValues={":v": {"S": "x"}})
    assert client_error(e)[2] == "One or more parameter values were invalid: Cannot update attribute pk. This attribute is part of the key"
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=t, Key=key, UpdateExpression="SET a = :v", ExpressionAttributeValues={":v": {"S": "x"}, ":w": {"S": "y"}})
    assert client_error(e)[2] == "Value provided in ExpressionAttributeValues unused in expressions: keys: {:w}"
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=t, Key=key, UpdateExpression="SET a = :v", ConditionExpression="#c > :big",
                        ExpressionAttributeNames={"#c": "count"}, ExpressionAttributeValues={":v": {"S": "x"}, ":big": {"N": "100"}})
    assert client_error(e)[0] == "ConditionalCheckFailedException"


def test_resource_api_with_conditions(resource):
    name = unique("res")
    table = resource.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "user", "AttributeType": "S"}, {"AttributeName": "ts", "AttributeType": "N"},
                              {"AttributeName": "status", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "user", "KeyType": "HASH"}, {"AttributeName": "ts", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{"IndexName": "by-status", "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"},
                                                                         {"AttributeName": "ts", "KeyType": "RANGE"}],
                                 "Projection": {"ProjectionType": "KEYS_ONLY"}}])
    table.wait_until_exists()
    with table.batch_writer() as batch:
        for i in range(30):
            batch.put_item(Item={"user": "ann" if i % 2 else "bob", "ts": i, "status": "open" if i % 3 else "done", "v": Decimal(i) / 4})
    got = table.query(KeyConditionExpression=Key("user").eq("ann") & Key("ts").between(5, 11))["Items"]
    assert [int(i["ts"]) for i in got] == [5, 7, 9, 11]
    got = table.query(KeyConditionExpression=Key("user").eq("ann"), FilterExpression=Attr("v").gt(Decimal("5")),
                      ScanIndexForward=False)["Items"]
    assert [int(i["ts"]) for i in got] == [29, 27, 25, 23, 21]
    assert got[0]["v"] == Decimal("7.25")
    done = table.query(IndexName="by-status", KeyConditionExpression=Key("status").eq("done") & Key("ts").gte(10))["Items"]
    assert [int(i["ts"]) for i in done] == [12, 15, 18, 21, 24, 27]
    assert set(done[0]) == {"user", "ts", "status"}
    table.update_item(Key={"user": "bob", "ts": 0}, UpdateExpression="SET #s = :s", ExpressionAttributeNames={"#s": "status"},
                      ExpressionAttributeValues={":s": "open"}, ConditionExpression=Attr("status").eq("done"))
    done = table.query(IndexName="by-status", KeyConditionExpression=Key("status").eq("done"))["Items"]
    assert 0 not in [int(i["ts"]) for i in done], "the GSI follows updates"
    with pytest.raises(ClientError) as e:
        table.put_item(Item={"user": "bob", "ts": 0}, ConditionExpression=Attr("user").not_exists())
    assert client_error(e)[0] == "ConditionalCheckFailedException"
    assert table.query(KeyConditionExpression=Key("user").eq("bob"), Select="COUNT")["Count"] == 15
    table.delete()


def test_query_paging_and_begins_with(ddb):
    t = make_table(ddb, range_key="sk")
    for i in range(25):
        ddb.put_item(TableName=t, Item={"pk": {"S": "p"}, "sk": {"S": f"item#{i:03}"}, "n": {"N": str(i)}})
    ddb.put_item(TableName=t, Item={"pk": {"S": "p"}, "sk": {"S": "other"}})
    pages, start = [], None
    while True:
        kw = {"ExclusiveStartKey": start} if start else {}
        out = ddb.query(TableName=t, KeyConditionExpression="pk = :p AND begins_with(sk, :pre)",
                        ExpressionAttributeValues={":p": {"S": "p"}, ":pre": {"S": "item#"}}, Limit=10, **kw)
        pages.append([i["sk"]["S"] for i in out["Items"]])
        start = out.get("LastEvaluatedKey")
        if not start:
            break
    assert [len(p) for p in pages] == [10, 10, 5]
    assert sum(pages, []) == [f"item#{i:03}" for i in range(25)]
    with pytest.raises(ClientError) as e:
        ddb.query(TableName=t, KeyConditionExpression="sk = :p", ExpressionAttributeValues={":p": {"S": "p"}})
    assert client_error(e)[2] == "Query condition missed key schema element: pk"


def test_numbers_sort_numerically(ddb):
    t = make_table(ddb, range_key="n", range_type="N")
    values = ["-1e10", "-2.5", "-2", "-0.001", "0", "1e-100", "0.5", "1", "2", "10", "10.5", "1e20"]
    for v in reversed(values):
        ddb.put_item(TableName=t, Item={"pk": {"S": "x"}, "n": {"N": v}})
    got = ddb.query(TableName=t, KeyConditionExpression="pk = :x", ExpressionAttributeValues={":x": {"S": "x"}})["Items"]
    assert [Decimal(i["n"]["N"]) for i in got] == sorted(Decimal(v) for v in values)
    got = ddb.query(TableName=t, KeyConditionExpression="pk = :x AND n < :z",
                    ExpressionAttributeValues={":x": {"S": "x"}, ":z": {"N": "0"}})["Items"]
    assert len(got) == 4


def test_scan_segments_and_filters(ddb):
    t = make_table(ddb)
    for i in range(40):
        ddb.put_item(TableName=t, Item={"pk": {"S": f"k{i}"}, "even": {"BOOL": i % 2 == 0}})
    seen = []
    for segment in range(4):
        start = None
        while True:
            kw = {"ExclusiveStartKey": start} if start else {}
            out = ddb.scan(TableName=t, Segment=segment, TotalSegments=4, Limit=7, **kw)
            seen += [i["pk"]["S"] for i in out["Items"]]
            start = out.get("LastEvaluatedKey")
            if not start:
                break
    assert sorted(seen) == sorted(f"k{i}" for i in range(40))
    out = ddb.scan(TableName=t, FilterExpression="even = :t", ExpressionAttributeValues={":t": {"BOOL": True}})
    assert (out["Count"], out["ScannedCount"]) == (20, 40)
    with pytest.raises(ClientError) as e:
        ddb.scan(TableName=t, Segment=4, TotalSegments=4)
    assert client_error(e)[2] == "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: 4 is not less than TotalSegments: 4"


def test_batches(ddb):
    t = make_table(ddb)
    out = ddb.batch_write_item(RequestItems={t: [{"PutRequest": {"Item": {"pk": {"S": f"b{i}"}}}} for i in range(25)]})
    assert out["UnprocessedItems"] == {}
    with pytest.raises(ClientError) as e:
        ddb.batch_write_item(RequestItems={t: [{"PutRequest": {"Item": {"pk": {"S": f"c{i}"}}}} for i in range(26)]})
    assert client_error(e)[0] == "ValidationException"
    with pytest.raises(ClientError) as e:
        ddb.batch_write_item(RequestItems={t: [{"PutRequest": {"Item": {"pk": {"S": "d"}}}}, {"DeleteRequest": {"Key": {"pk": {"S": "d"}}}}]})
    assert client_error(e)[2] == "Provided list of item keys contains duplicates"
    # An item without its key (LocalStack's AWS-validated test_batch_write_not_matching_schema).
    with pytest.raises(ClientError) as e:
        ddb.batch_write_item(RequestItems={t: [{"PutRequest": {"Item": {"nonKey": {"S": "hello"}}}}]})
    assert client_error(e) == ("ValidationException", 400, "The provided key element does not match the schema")
    got = ddb.batch_get_item(RequestItems={t: {"Keys": [{"pk": {"S": f"b{i}"}} for i in range(0, 25, 5)] + [{"pk": {"S": "none"}}]}})
    assert sorted(i["pk"]["S"] for i in got["Responses"][t]) == ["b0", "b10", "b15", "b20", "b5"]
    assert got["UnprocessedKeys"] == {}
    with pytest.raises(ClientError) as e:
        ddb.batch_get_item(RequestItems={t: {"Keys": [{"pk": {"S": f"x{i}"}} for i in range(101)]}})
    assert client_error(e)[2] == "Too many items requested for the BatchGetItem call"


def test_transactions_are_all_or_nothing(ddb):
    t = make_table(ddb)
    ddb.put_item(TableName=t, Item={"pk": {"S": "acct1"}, "balance": {"N": "100"}})
    ddb.put_item(TableName=t, Item={"pk": {"S": "acct2"}, "balance": {"N": "0"}})

    def transfer(amount):
        ddb.transact_write_items(TransactItems=[
            {"Update": {"TableName": t, "Key": {"pk": {"S": "acct1"}}, "UpdateExpression": "SET balance = balance - :a",
                        "ConditionExpression": "balance >= :a", "ExpressionAttributeValues": {":a": {"N": str(amount)}}}},
            {"Update": {"TableName": t, "Key": {"pk": {"S": "acct2"}}, "UpdateExpression": "SET balance = balance + :a",
                        "ExpressionAttributeValues": {":a": {"N": str(amount)}}}},
        ])
    transfer(60)
    with pytest.raises(ClientError) as e:
        transfer(60)
    code, status, message = client_error(e)
    assert (code, status) == ("TransactionCanceledException", 400)
    assert message == "Transaction cancelled, please refer cancellation reasons for specific reasons [ConditionalCheckFailed, None]"
    assert e.value.response["CancellationReasons"] == [
        {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"}, {"Code": "None"}]
    got = ddb.transact_get_items(TransactItems=[{"Get": {"TableName": t, "Key": {"pk": {"S": k}}}} for k in ("acct1", "acct2")])
    assert [r["Item"]["balance"]["N"] for r in got["Responses"]] == ["40", "60"]
    with pytest.raises(ClientError) as e:
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": t, "Item": {"pk": {"S": "acct1"}}}},
            {"Delete": {"TableName": t, "Key": {"pk": {"S": "acct1"}}}}])
    assert client_error(e)[2] == "Transaction request cannot include multiple operations on one item"
    # AWS's answer for a missing table in a transaction (LocalStack's AWS-validated
    # test_dynamodb.snapshot.json, test_batch_write_not_existing_table).
    with pytest.raises(ClientError) as e:
        ddb.transact_write_items(TransactItems=[{"Put": {"TableName": "non-existing-table", "Item": {}}}])
    assert client_error(e) == ("ResourceNotFoundException", 400, "Requested resource not found")


def test_ttl_deletes_expired_items(ddb):
    t = make_table(ddb, StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    desc = ddb.describe_table(TableName=t)["Table"]
    assert desc["LatestStreamArn"] == f"{desc['TableArn']}/stream/{desc['LatestStreamLabel']}"
    assert desc["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert ddb.describe_time_to_live(TableName=t)["TimeToLiveDescription"] == {"TimeToLiveStatus": "DISABLED"}
    ddb.update_time_to_live(TableName=t, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"})
    assert ddb.describe_time_to_live(TableName=t)["TimeToLiveDescription"] == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires"}
    now = int(time.time())
    ddb.put_item(TableName=t, Item={"pk": {"S": "old"}, "expires": {"N": str(now - 10)}})
    ddb.put_item(TableName=t, Item={"pk": {"S": "new"}, "expires": {"N": str(now + 3600)}})
    ddb.put_item(TableName=t, Item={"pk": {"S": "never"}})
    wait_for(lambda: "Item" not in ddb.get_item(TableName=t, Key={"pk": {"S": "old"}}), timeout=15, what="the TTL sweep")
    assert ddb.scan(TableName=t)["Count"] == 2


def test_reads_and_keys_refused_as_aws_refuses_them(ddb):
    t = make_table(ddb, range_key="sk", extra_attributes=[{"AttributeName": "g", "AttributeType": "S"}],
                   GlobalSecondaryIndexes=[{"IndexName": "by-g", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                            "Projection": {"ProjectionType": "ALL"}}])
    ddb.put_item(TableName=t, Item={"pk": {"S": "p"}, "sk": {"S": "a"}, "g": {"S": "x"}})
    refusals = [
        (ddb.query, dict(IndexName="by-g", KeyConditionExpression="g = :g", ConsistentRead=True,
                         ExpressionAttributeValues={":g": {"S": "x"}}),
         "Consistent reads are not supported on global secondary indexes"),
        (ddb.scan, dict(IndexName="by-g", ConsistentRead=True), "Consistent reads are not supported on global secondary indexes"),
        (ddb.query, dict(KeyConditionExpression="pk = :p", FilterExpression="sk <> :s",
                         ExpressionAttributeValues={":p": {"S": "p"}, ":s": {"S": "b"}}),
         "Filter Expression can only contain non-primary key attributes: Primary key attribute: sk"),
        (ddb.put_item, dict(Item={"pk": {"S": "k" * 2049}, "sk": {"S": "a"}}),
         "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of2048 bytes"),
        (ddb.put_item, dict(Item={"pk": {"S": "p"}, "sk": {"S": "s" * 1025}}),
         "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of 1024 bytes"),
    ]
    for call, kw, text in refusals:
        with pytest.raises(ClientError) as e:
            call(TableName=t, **kw)
        assert client_error(e) == ("ValidationException", 400, text)
    assert ddb.query(TableName=t, KeyConditionExpression="pk = :p", ConsistentRead=True,
                     ExpressionAttributeValues={":p": {"S": "p"}})["Count"] == 1
    assert ddb.put_item(TableName=t, Item={"pk": {"S": "k" * 2048}, "sk": {"S": "s" * 1024}})


def test_return_consumed_capacity(ddb):
    """ConsumedCapacity as AWS counts it: 4 KB read units (halved when eventually consistent),
    1 KB write units, per item; Query/Scan over the bytes read; transactions double; INDEXES
    splits the table's and each index's share; batches and transactions answer a list."""
    t = make_table(ddb, extra_attributes=[{"AttributeName": "g", "AttributeType": "S"}],
                   GlobalSecondaryIndexes=[{"IndexName": "by-g", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                            "Projection": {"ProjectionType": "KEYS_ONLY"}}])
    out = ddb.put_item(TableName=t, Item={"pk": {"S": "small"}}, ReturnConsumedCapacity="TOTAL")
    assert out["ConsumedCapacity"] == {"TableName": t, "CapacityUnits": 1.0}
    big = {"pk": {"S": "big"}, "g": {"S": "x"}, "body": {"S": "b" * 5000}}   # 5,008 bytes: 5 write units, 2 read units
    out = ddb.put_item(TableName=t, Item=big, ReturnConsumedCapacity="INDEXES")
    assert out["ConsumedCapacity"] == {"TableName": t, "CapacityUnits": 6.0, "Table": {"CapacityUnits": 5.0},
                                       "GlobalSecondaryIndexes": {"by-g": {"CapacityUnits": 1.0}}}
    assert "ConsumedCapacity" not in ddb.put_item(TableName=t, Item={"pk": {"S": "small"}}, ReturnConsumedCapacity="NONE")
    assert "ConsumedCapacity" not in ddb.get_item(TableName=t, Key={"pk": {"S": "small"}})
    get = lambda key, **kw: ddb.get_item(TableName=t, Key={"pk": {"S": key}}, ReturnConsumedCapacity="TOTAL", **kw)["ConsumedCapacity"]
    assert get("big")["CapacityUnits"] == 1.0
    assert get("big", ConsistentRead=True)["CapacityUnits"] == 2.0
    assert get("missing")["CapacityUnits"] == 0.5
    scan = ddb.scan(TableName=t, ReturnConsumedCapacity="TOTAL", FilterExpression="attribute_exists(nothing)")
    assert (scan["Count"], scan["ConsumedCapacity"]) == (0, {"TableName": t, "CapacityUnits": 1.0})   # 5,019 bytes read
    q = ddb.query(TableName=t, IndexName="by-g", KeyConditionExpression="g = :g", ExpressionAttributeValues={":g": {"S": "x"}},
                  ReturnConsumedCapacity="INDEXES")
    assert q["ConsumedCapacity"] == {"TableName": t, "CapacityUnits": 0.5, "Table": {"CapacityUnits": 0.0},
                                     "GlobalSecondaryIndexes": {"by-g": {"CapacityUnits": 0.5}}}
    out = ddb.batch_write_item(RequestItems={t: [{"PutRequest": {"Item": {"pk": {"S": f"b{i}"}}}} for i in range(3)]},
                               ReturnConsumedCapacity="TOTAL")
    assert out["ConsumedCapacity"] == [{"TableName": t, "CapacityUnits": 3.0}]
    out = ddb.batch_get_item(RequestItems={t: {"Keys": [{"pk": {"S": "big"}}, {"pk": {"S": "b0"}}], "ConsistentRead": True}},
                             ReturnConsumedCapacity="TOTAL")
    assert out["ConsumedCapacity"] == [{"TableName": t, "CapacityUnits": 3.0}]
    out = ddb.transact_write_items(TransactItems=[{"Put": {"TableName": t, "Item": {"pk": {"S": "tx"}}}}], ReturnConsumedCapacity="TOTAL")
    assert out["ConsumedCapacity"] == [{"TableName": t, "CapacityUnits": 2.0, "WriteCapacityUnits": 2.0}]
    out = ddb.transact_get_items(TransactItems=[{"Get": {"TableName": t, "Key": {"pk": {"S": k}}}} for k in ("tx", "missing")],
                                 ReturnConsumedCapacity="INDEXES")
    assert out["ConsumedCapacity"] == [{"TableName": t, "CapacityUnits": 4.0, "ReadCapacityUnits": 4.0,
                                        "Table": {"CapacityUnits": 4.0, "ReadCapacityUnits": 4.0}}]
    out = ddb.update_item(TableName=t, Key={"pk": {"S": "big"}}, UpdateExpression="SET g = :y", ExpressionAttributeValues={":y": {"S": "y"}},
                          ReturnConsumedCapacity="INDEXES")
    assert out["ConsumedCapacity"]["GlobalSecondaryIndexes"] == {"by-g": {"CapacityUnits": 2.0}}, "moved within the index"
    out = ddb.delete_item(TableName=t, Key={"pk": {"S": "big"}}, ReturnConsumedCapacity="TOTAL")
    assert out["ConsumedCapacity"] == {"TableName": t, "CapacityUnits": 6.0}


def test_legacy_parameters(ddb):
    """The pre-expression parameters older SDKs send (DynamoDBMapper v1, old boto): AttributesToGet,
    KeyConditions, QueryFilter/ScanFilter with ConditionalOperator, Expected, AttributeUpdates;
    and AWS's refusals when they are mixed with expressions or malformed."""
    t = make_table(ddb, range_key="sk")
    for i in range(5):
        ddb.put_item(TableName=t, Item={"pk": {"S": "a"}, "sk": {"S": f"k{i}"}, "n": {"N": str(i)},
                                        "tags": {"SS": ["even" if i % 2 == 0 else "odd", "all"]}})

    got = ddb.get_item(TableName=t, Key={"pk": {"S": "a"}, "sk": {"S": "k1"}}, AttributesToGet=["n", "missing"])
    assert got["Item"] == {"n": {"N": "1"}}
    got = ddb.batch_get_item(RequestItems={t: {"Keys": [{"pk": {"S": "a"}, "sk": {"S": "k2"}}], "AttributesToGet": ["sk"]}})
    assert got["Responses"][t] == [{"sk": {"S": "k2"}}]

    out = ddb.query(TableName=t, KeyConditions={
        "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "a"}]},
        "sk": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"S": "k1"}, {"S": "k3"}]}},
        AttributesToGet=["sk"])
    assert out["Items"] == [{"sk": {"S": f"k{i}"}} for i in (1, 2, 3)]
    out = ddb.query(TableName=t, KeyConditions={
        "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "a"}]},
        "sk": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [{"S": "k"}]}},
        QueryFilter={"n": {"ComparisonOperator": "GE", "AttributeValueList": [{"N": "3"}]},
                     "tags": {"ComparisonOperator": "CONTAINS", "AttributeValueList": [{"S": "even"}]}},
        ConditionalOperator="OR")
    assert [i["sk"]["S"] for i in out["Items"]] == ["k0", "k2", "k3", "k4"]
    assert (out["Count"], out["ScannedCount"]) == (4, 5)
    # KeyConditions goes with a FilterExpression (no KeyConditionExpression).
    out = ddb.query(TableName=t, KeyConditions={"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "a"}]}},
                    FilterExpression="n < :n", ExpressionAttributeValues={":n": {"N": "2"}})
    assert out["Count"] == 2
    out = ddb.scan(TableName=t, ScanFilter={"n": {"ComparisonOperator": "IN", "AttributeValueList": [{"N": "1"}, {"N": "4"}]},
                                            "tags": {"ComparisonOperator": "NOT_CONTAINS", "AttributeValueList": [{"S": "odd"}]}})
    assert [i["sk"]["S"] for i in out["Items"]] == ["k4"]
    out = ddb.scan(TableName=t, ScanFilter={"missing": {"ComparisonOperator": "NULL"}}, Select="COUNT")
    assert out["Count"] == 5

    key = {"pk": {"S": "a"}, "sk": {"S": "k1"}}
    ddb.put_item(TableName=t, Item={**key, "n": {"N": "10"}}, Expected={"n": {"Value": {"N": "1"}, "Exists": True}})
    ddb.put_item(TableName=t, Item={"pk": {"S": "b"}, "sk": {"S": "new"}}, Expected={"pk": {"Exists": False}})
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=t, Item={"pk": {"S": "b"}, "sk": {"S": "new"}}, Expected={"pk": {"Exists": False}})
    assert client_error(e) == ("ConditionalCheckFailedException", 400, "The conditional request failed")
    with pytest.raises(ClientError) as e:
        ddb.delete_item(TableName=t, Key=key, Expected={"n": {"ComparisonOperator": "LT", "AttributeValueList": [{"N": "5"}]},
                                                        "sk": {"ComparisonOperator": "NULL"}}, ConditionalOperator="OR")
    assert client_error(e)[0] == "ConditionalCheckFailedException"
    ddb.delete_item(TableName=t, Key=key, Expected={"n": {"ComparisonOperator": "GT", "AttributeValueList": [{"N": "5"}]}})
    assert "Item" not in ddb.get_item(TableName=t, Key=key)

    key = {"pk": {"S": "a"}, "sk": {"S": "k2"}}
    out = ddb.update_item(TableName=t, Key=key, AttributeUpdates={
        "n": {"Action": "ADD", "Value": {"N": "5"}},
        "tags": {"Action": "DELETE", "Value": {"SS": ["all"]}},
        "list": {"Action": "ADD", "Value": {"L": [{"S": "x"}]}},
        "name": {"Action": "PUT", "Value": {"S": "two"}},
        "gone": {"Action": "DELETE"}},
        Expected={"n": {"Value": {"N": "2"}}}, ReturnValues="ALL_NEW")
    assert out["Attributes"] == {**key, "n": {"N": "7"}, "tags": {"SS": ["even"]}, "list": {"L": [{"S": "x"}]}, "name": {"S": "two"}}
    out = ddb.update_item(TableName=t, Key=key, AttributeUpdates={"name": {"Action": "DELETE"}, "list": {"Action": "ADD", "Value": {"L": [{"S": "y"}]}}},
                          ReturnValues="UPDATED_NEW")
    assert out["Attributes"] == {"list": {"L": [{"S": "x"}, {"S": "y"}]}}
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=t, Key=key, AttributeUpdates={"n": {"Action": "PUT", "Value": {"N": "0"}}},
                        Expected={"n": {"Exists": False}})
    assert client_error(e)[0] == "ConditionalCheckFailedException"

    refusals = [
        (lambda: ddb.get_item(TableName=t, Key=key, AttributesToGet=["n"], ProjectionExpression="n"),
         "Can not use both expression and non-expression parameters in the same request: "
         "Non-expression parameters: {AttributesToGet} Expression parameters: {ProjectionExpression}"),
        (lambda: ddb.update_item(TableName=t, Key=key, AttributeUpdates={"n": {"Value": {"N": "1"}}}, UpdateExpression="SET n = :n",
                                 ExpressionAttributeValues={":n": {"N": "1"}}),
         "Can not use both expression and non-expression parameters in the same request: "
         "Non-expression parameters: {AttributeUpdates} Expression parameters: {UpdateExpression}"),
        (lambda: ddb.query(TableName=t, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "a"}},
                           QueryFilter={"n": {"ComparisonOperator": "NOT_NULL"}}),
         "Can not use both expression and non-expression parameters in the same request: "
         "Non-expression parameters: {QueryFilter} Expression parameters: {KeyConditionExpression}"),
        (lambda: ddb.put_item(TableName=t, Item=key, Expected={"n": {"Exists": False}}, ExpressionAttributeNames={"#n": "n"}),
         "ExpressionAttributeNames can only be specified when using expressions"),
        (lambda: ddb.scan(TableName=t, ScanFilter={"n": {"ComparisonOperator": "EQ", "AttributeValueList": []}}),
         "One or more parameter values were invalid: Invalid number of argument(s) for the EQ ComparisonOperator"),
        (lambda: ddb.scan(TableName=t, ScanFilter={"n": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "3"}, {"N": "1"}]}}),
         "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound"),
        (lambda: ddb.put_item(TableName=t, Item=key, Expected={"n": {"Exists": True}}),
         "One or more parameter values were invalid: Value must be provided when Exists is true for Attribute: n"),
        (lambda: ddb.update_item(TableName=t, Key=key, AttributeUpdates={"n": {"Action": "ADD", "Value": {"S": "x"}}}),
         "One or more parameter values were invalid: ADD action is not supported for the type S"),
        (lambda: ddb.update_item(TableName=t, Key=key, AttributeUpdates={"n": {"Action": "ADD", "Value": {"NS": ["1"]}}}),
         "Type mismatch for attribute to update"),
        (lambda: ddb.update_item(TableName=t, Key=key, AttributeUpdates={"tags": {"Action": "DELETE", "Value": {"NS": ["1"]}}}),
         "Type mismatch for attribute to update"),
        (lambda: ddb.update_item(TableName=t, Key=key, AttributeUpdates={"sk": {"Action": "PUT", "Value": {"S": "x"}}}),
         "One or more parameter values were invalid: Cannot update attribute sk. This attribute is part of the key"),
        (lambda: ddb.query(TableName=t, KeyConditions={"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "a"}]}},
                           AttributesToGet=["n"], Select="COUNT"),
         "1 validation error detected: Cannot specify the AttributesToGet when choosing to get only the Count"),
        (lambda: ddb.scan(TableName=t, AttributesToGet=["n"], Select="ALL_ATTRIBUTES"),
         "Cannot specify the AttributesToGet when choosing to get ALL_ATTRIBUTES"),
        (lambda: ddb.query(TableName=t, KeyConditions={"pk": {"ComparisonOperator": "NE", "AttributeValueList": [{"S": "a"}]}}),
         "Attempted conditional constraint is not an indexable operation"),
        (lambda: ddb.query(TableName=t, KeyConditions={"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "a"}]}},
                           QueryFilter={"sk": {"ComparisonOperator": "NOT_NULL"}}),
         "QueryFilter can only contain non-primary key attributes: Primary key attribute: sk"),
    ]
    for call, text in refusals:
        with pytest.raises(ClientError) as e:
            call()
        assert client_error(e) == ("ValidationException", 400, text)


def test_tags(ddb):
    """TagResource, UntagResource and ListTagsOfResource on a table's ARN, CreateTable's Tags,
    and AWS's refusals (the reads Terraform's aws_dynamodb_table makes on every refresh)."""
    t = make_table(ddb, Tags=[{"Key": "env", "Value": "test"}])
    arn = ddb.describe_table(TableName=t)["Table"]["TableArn"]
    assert ddb.list_tags_of_resource(ResourceArn=arn)["Tags"] == [{"Key": "env", "Value": "test"}]
    ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "data platform"}])
    assert ddb.list_tags_of_resource(ResourceArn=arn)["Tags"] == [{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "data platform"}]
    ddb.untag_resource(ResourceArn=arn, TagKeys=["env", "not-there"])
    assert ddb.list_tags_of_resource(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "data platform"}]
    missing = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{unique('nope')}"
    for call in (lambda: ddb.list_tags_of_resource(ResourceArn=missing),
                 lambda: ddb.tag_resource(ResourceArn=missing, Tags=[{"Key": "k", "Value": "v"}]),
                 lambda: ddb.untag_resource(ResourceArn=missing, TagKeys=["k"])):
        with pytest.raises(ClientError) as e:
            call()
        assert client_error(e) == ("ResourceNotFoundException", 400, f"Requested resource not found: ResourceArn: {missing} not found")
    refusals = [
        ([{"Key": f"k{i}", "Value": "v"} for i in range(50)], "Number of Tags exceed the current limit for the provided ResourceArn"),
        ([{"Key": "aws:cloudformation", "Value": "v"}], "Tag Key cannot be prefixed with aws:, Key: aws:cloudformation"),
        ([{"Key": "bad#key", "Value": "v"}], "The Tag Key provided is invalid, Key: bad#key"),
        ([{"Key": "k", "Value": "1"}, {"Key": "k", "Value": "2"}], "Duplicate Tag Keys provided as input: Duplicate Tag Key found k"),
        ([], "Atleast one Tag needs to be provided as Input."),
    ]
    for tags, text in refusals:
        with pytest.raises(ClientError) as e:
            ddb.tag_resource(ResourceArn=arn, Tags=tags)
        assert client_error(e) == ("ValidationException", 400, text)
    with pytest.raises(ClientError) as e:
        ddb.list_tags_of_resource(ResourceArn=f"{arn}/index/byUser")
    assert client_error(e)[0] == "ValidationException"
    assert ddb.list_tags_of_resource(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "data platform"}]
    with pytest.raises(ClientError) as e:
        make_table(ddb, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(51)])
    assert client_error(e) == ("ValidationException", 400, "Number of Tags exceed the current limit for the provided ResourceArn")


def test_continuous_backups_limits_and_endpoints(ddb, server):
    t = make_table(ddb)
    off = ddb.describe_continuous_backups(TableName=t)["ContinuousBackupsDescription"]
    assert off == {"ContinuousBackupsStatus": "ENABLED", "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "DISABLED"}}
    before = time.time()
    on = ddb.update_continuous_backups(TableName=t, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    d = on["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert (d["PointInTimeRecoveryStatus"], d["RecoveryPeriodInDays"]) == ("ENABLED", 35)
    assert before - 1 <= d["EarliestRestorableDateTime"].timestamp() <= d["LatestRestorableDateTime"].timestamp() <= time.time() + 1
    arn = ddb.describe_table(TableName=t)["Table"]["TableArn"]
    again = ddb.describe_continuous_backups(TableName=arn)["ContinuousBackupsDescription"]
    assert again["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    with pytest.raises(ClientError) as e:
        ddb.update_continuous_backups(TableName=t, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False, "RecoveryPeriodInDays": 7})
    assert client_error(e) == ("ValidationException", 400, "Invalid Request: Cannot specify RecoveryPeriodInDays when disabling point-in-time recovery.")
    ddb.update_continuous_backups(TableName=t, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False})
    assert ddb.describe_continuous_backups(TableName=t)["ContinuousBackupsDescription"] == off
    missing = unique("nope")
    with pytest.raises(ClientError) as e:
        ddb.describe_continuous_backups(TableName=missing)
    assert client_error(e) == ("TableNotFoundException", 400, f"Table not found: {missing}")

    limits = ddb.describe_limits()
    limits.pop("ResponseMetadata")
    assert limits == {"AccountMaxReadCapacityUnits": 80000, "AccountMaxWriteCapacityUnits": 80000,
                      "TableMaxReadCapacityUnits": 40000, "TableMaxWriteCapacityUnits": 40000}
    endpoints = ddb.describe_endpoints()["Endpoints"]
    assert endpoints == [{"Address": server.endpoint.split("://", 1)[1], "CachePeriodInMinutes": 1440}]


def test_aws_cli(aws_cli, server, tmp_path):
    cli = aws_cli_runner(aws_cli, server.endpoint, tmp_path / "home")
    name = unique("cli")
    cp = cli("dynamodb", "create-table", "--table-name", name, "--attribute-definitions", "AttributeName=id,AttributeType=S",
             "--key-schema", "AttributeName=id,KeyType=HASH", "--billing-mode", "PAY_PER_REQUEST")
    assert cp.returncode == 0, cp.err
    cp = cli("dynamodb", "put-item", "--table-name", name, "--item", json.dumps({"id": {"S": "1"}, "v": {"N": "42"}}))
    assert cp.returncode == 0, cp.err
    cp = cli("dynamodb", "get-item", "--table-name", name, "--key", json.dumps({"id": {"S": "1"}}))
    assert json.loads(cp.out)["Item"]["v"] == {"N": "42"}
    cp = cli("dynamodb", "put-item", "--table-name", name, "--item", json.dumps({"id": {"S": "1"}}),
             "--condition-expression", "attribute_not_exists(id)")
    assert cp.returncode != 0 and "ConditionalCheckFailedException" in cp.err


def test_a_function_writes_to_a_table_with_its_role(sdk_server):
    ddb, lam, iam = sdk_server.client("dynamodb"), sdk_server.lambda_client(), sdk_server.client("iam")
    t = make_table(ddb)
    role = unique("writer")
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
    iam.put_role_policy(RoleName=role, PolicyName="table", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["dynamodb:PutItem", "dynamodb:UpdateItem"], "Resource": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{t}"},
        {"Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], "Resource": "*"}]}))
    code = f'''import boto3
from botocore.exceptions import ClientError

table = boto3.resource("dynamodb").Table("{t}")


def handler(event, context):
    table.put_item(Item={{"pk": event["id"], "body": event["body"]}})
    table.update_item(Key={{"pk": event["id"]}}, UpdateExpression="ADD hits :one", ExpressionAttributeValues={{":one": 1}})
    try:
        table.get_item(Key={{"pk": event["id"]}})
        return "read"
    except ClientError as e:
        return e.response["Error"]["Code"]
'''
    fn = create_function(lam, unique("writer"), "python3.11", "index.handler", make_zip({"index.py": code}),
                         Role=f"arn:aws:iam::{ACCOUNT}:role/{role}", Timeout=30)
    out = lam.invoke(FunctionName=fn.name, Payload=json.dumps({"id": "from-lambda", "body": "hi"}))
    assert json.loads(out["Payload"].read()) == "AccessDeniedException", "GetItem is not in the role's policy"
    item = ddb.get_item(TableName=t, Key={"pk": {"S": "from-lambda"}})["Item"]
    assert item == {"pk": {"S": "from-lambda"}, "body": {"S": "hi"}, "hits": {"N": "1"}}


def test_acknowledged_writes_survive_kill_9(server_factory):
    s = server_factory()
    c = s.client("dynamodb")
    t = make_table(c, "durable", range_key="sk")
    for i in range(30):
        c.put_item(TableName=t, Item={"pk": {"S": "p"}, "sk": {"S": f"{i:02}"}})
    c.batch_write_item(RequestItems={t: [{"PutRequest": {"Item": {"pk": {"S": "q"}, "sk": {"S": f"{i:02}"}}}} for i in range(20)]})
    c.update_item(TableName=t, Key={"pk": {"S": "p"}, "sk": {"S": "00"}}, UpdateExpression="SET v = :v", ExpressionAttributeValues={":v": {"N": "7"}})
    arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{t}"
    c.tag_resource(ResourceArn=arn, Tags=[{"Key": "owner", "Value": "me"}])
    c.update_continuous_backups(TableName=t, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True, "RecoveryPeriodInDays": 7})
    os.kill(s.proc.pid, signal.SIGKILL)
    s.proc.wait(timeout=10)
    s.start()
    c = s.client("dynamodb")
    assert c.scan(TableName=t, Select="COUNT")["Count"] == 50
    assert c.get_item(TableName=t, Key={"pk": {"S": "p"}, "sk": {"S": "00"}})["Item"]["v"] == {"N": "7"}
    assert c.list_tags_of_resource(ResourceArn=arn)["Tags"] == [{"Key": "owner", "Value": "me"}]
    pitr = c.describe_continuous_backups(TableName=t)["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert (pitr["PointInTimeRecoveryStatus"], pitr["RecoveryPeriodInDays"]) == ("ENABLED", 7)

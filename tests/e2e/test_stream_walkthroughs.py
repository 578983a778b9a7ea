"""The README's stream walkthroughs, run as written (issue 16): a table-change function that
keeps per-customer totals from a DynamoDB stream (section "Tables (DynamoDB)"), and a Kinesis
consumer that counts clicks per page over tumbling windows and writes each window's counts to
a table on its final invocation (section "Streams (Kinesis)"). The functions' code is read from
README.md itself (only the table names are made unique), their boto3 calls run under the roles
the walkthroughs make, with the runtime's boto3 from `nimbus runtimes install sdk`."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path

from helpers import ACCOUNT, REGION, create_function, make_zip, unique, wait_for

README = Path(__file__).resolve().parents[2] / "README.md"

# The trust policy the walkthroughs give `iam create-role`, as they write it.
TRUST = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def readme_code(test: str, tables: dict[str, str]) -> str:
    """The `index.py` of the README walkthrough that names `test`, with its table names
    replaced by `tables` (each must occur as a quoted string)."""
    lines = README.read_text().split("\n")
    at = next(i for i, line in enumerate(lines) if f"test_stream_walkthroughs.py::{test}" in line)
    start = next(i for i in range(at, len(lines)) if lines[i] == "    cat > index.py <<'PY'") + 1
    end = next(i for i in range(start, len(lines)) if lines[i] == "    PY")
    code = textwrap.dedent("\n".join(lines[start:end])) + "\n"
    for name, replacement in tables.items():
        assert code.count(f'"{name}"') == 1, f"the README's {test} code names the table {name!r} once"
        code = code.replace(f'"{name}"', f'"{replacement}"')
    return code


def role_with(iam, managed: str, action: str, table: str) -> str:
    """create-role, attach-role-policy (`managed`) and put-role-policy (`action` on `table`),
    as the walkthroughs make their roles; the role's ARN."""
    name = unique(action.split(":")[1].lower())
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))
    iam.attach_role_policy(RoleName=name, PolicyArn=f"arn:aws:iam::aws:policy/service-role/{managed}")
    iam.put_role_policy(RoleName=name, PolicyName="tables", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": action, "Resource": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}"}]}))
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


def test_the_order_totals_walkthrough(sdk_server):
    """Orders put, updated and deleted reach the function through the table's stream, in
    order; it keeps each customer's running total in a second table under its role."""
    ddb, lam, iam = sdk_server.client("dynamodb"), sdk_server.lambda_client(), sdk_server.client("iam")
    orders, totals = unique("orders"), unique("order-totals")
    ddb.create_table(TableName=orders, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    ddb.create_table(TableName=totals, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "customer", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "customer", "KeyType": "HASH"}])
    role = role_with(iam, "AWSLambdaDynamoDBExecutionRole", "dynamodb:UpdateItem", totals)
    code = readme_code("test_the_order_totals_walkthrough", {"order-totals": totals})
    fn = create_function(lam, unique("sum-orders"), "python3.11", "index.handler", make_zip({"index.py": code}), Role=role)
    stream = ddb.describe_table(TableName=orders)["Table"]["LatestStreamArn"]
    m = lam.create_event_source_mapping(FunctionName=fn.name, EventSourceArn=stream, StartingPosition="LATEST",
                                        FunctionResponseTypes=["ReportBatchItemFailures"])
    try:
        ddb.put_item(TableName=orders, Item={"id": {"S": "o1"}, "customer": {"S": "alice"}, "amount": {"N": "30"}})
        ddb.put_item(TableName=orders, Item={"id": {"S": "o2"}, "customer": {"S": "alice"}, "amount": {"N": "12.5"}})
        ddb.put_item(TableName=orders, Item={"id": {"S": "o3"}, "customer": {"S": "bob"}, "amount": {"N": "7"}})
        ddb.update_item(TableName=orders, Key={"id": {"S": "o1"}}, UpdateExpression="SET amount = :a",
                        ExpressionAttributeValues={":a": {"N": "25"}})
        ddb.delete_item(TableName=orders, Key={"id": {"S": "o3"}})

        def spent():
            return {i["customer"]["S"]: i["spent"]["N"] for i in ddb.scan(TableName=totals)["Items"]}
        want = {"alice": "37.5", "bob": "0"}
        wait_for(lambda: spent() == want, timeout=60, what=f"the totals {want}")
        assert lam.get_event_source_mapping(UUID=m["UUID"])["LastProcessingResult"] == "OK"
    finally:
        lam.delete_event_source_mapping(UUID=m["UUID"])


def test_the_click_counter_walkthrough(sdk_server):
    """Clicks put on a two-shard stream are counted per page over 10-second windows aligned
    to the clock; each window's final invocation writes its counts, which add up exactly to
    the clicks put."""
    kinesis, ddb, lam, iam = (sdk_server.client("kinesis"), sdk_server.client("dynamodb"), sdk_server.lambda_client(),
                              sdk_server.client("iam"))
    clicks, counts = unique("clicks"), unique("click-counts")
    kinesis.create_stream(StreamName=clicks, ShardCount=2)
    ddb.create_table(TableName=counts, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "page", "AttributeType": "S"},
                                           {"AttributeName": "window_start", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "page", "KeyType": "HASH"}, {"AttributeName": "window_start", "KeyType": "RANGE"}])
    role = role_with(iam, "AWSLambdaKinesisExecutionRole", "dynamodb:PutItem", counts)
    code = readme_code("test_the_click_counter_walkthrough", {"click-counts": counts})
    fn = create_function(lam, unique("count-clicks"), "python3.11", "index.handler", make_zip({"index.py": code}), Role=role)
    m = lam.create_event_source_mapping(FunctionName=fn.name, EventSourceArn=f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{clicks}",
                                        StartingPosition="LATEST", TumblingWindowInSeconds=10, BisectBatchOnFunctionError=True)
    assert (m["TumblingWindowInSeconds"], m["BisectBatchOnFunctionError"]) == (10, True)
    try:
        pages = ["/home", "/pricing", "/home", "/docs", "/home"]
        shards = {kinesis.put_record(StreamName=clicks, PartitionKey=page, Data=b'{"user":"u1"}')["ShardId"] for page in pages}
        want = {p: pages.count(p) for p in set(pages)}

        def rows():
            return ddb.scan(TableName=counts)["Items"]

        def totals():
            got: dict[str, int] = {}
            for r in rows():
                got[r["page"]["S"]] = got.get(r["page"]["S"], 0) + int(r["clicks"]["N"])
            return got
        wait_for(lambda: totals() == want, timeout=60, what=f"the windows' counts to add up to {want}")
        for r in rows():
            start = dt.datetime.strptime(r["window_start"]["S"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
            assert start.timestamp() % 10 == 0, r
        assert lam.get_event_source_mapping(UUID=m["UUID"])["LastProcessingResult"] == "OK"
    finally:
        lam.delete_event_source_mapping(UUID=m["UUID"])
    assert shards == {"shardId-000000000000", "shardId-000000000001"}, "the pages all went to one shard"

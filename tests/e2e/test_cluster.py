"""Several nodes on one PostgreSQL database and one S3-compatible bucket (issue 17).

Each test starts its own cluster: an S3 server (a plain Nimbus, whose S3 service holds the
code zips), then nodes started with `--store postgres://…` (a fresh database on the
server `NIMBUS_TEST_POSTGRES` names; scripts/test starts one) and `--blobs s3://…`, sharing
one master key. What is shared so far: function records (functions, versions, aliases,
layers, URLs, configs, async events), code, and IAM (users, roles, policies, access keys,
STS sessions): the suite's execution role is made once, by the first node's start (the
others' starts are answered EntityAlreadyExists). Queues and topics
(test_cluster_messaging.py), HTTP APIs (test_cluster_gateway.py), KMS keys and VPC networks
(test_cluster_kms_network.py), the organization's accounts, CloudWatch Logs (groups,
streams, events, filters) and CloudWatch's metrics and alarms are shared too; buckets, tables
and streams are still each node's own.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import uuid

import pytest

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from helpers import REGION, ROLE, boto_client, create_function, make_zip, run_here, sns_may_send, wait_for

ACCOUNT = "000000000000"

CODE = """
import os, time
def handler(event, context):
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if "id" in event:
        print("DELIVERED", event["id"])
    return {"says": os.environ.get("SAYS", ""), "version": context.function_version, "event": event}
"""


def _psql(base: str, sql: str) -> None:
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", f"{base}/postgres", "-c", sql], check=True,
                   capture_output=True, timeout=30)


@pytest.fixture
def pg_url() -> str:
    base = os.environ.get("NIMBUS_TEST_POSTGRES")
    if not base:
        pytest.fail("NIMBUS_TEST_POSTGRES is not set: it must name a PostgreSQL server (scripts/test starts one)",
                    pytrace=False)
    name = f"nimbus_e2e_{uuid.uuid4().hex[:12]}"
    _psql(base.rstrip("/"), f"CREATE DATABASE {name}")
    return f"{base.rstrip('/')}/{name}"


class Cluster:
    def __init__(self, server_factory, tmp_path, pg_url: str, nodes: int, extra_args: list[str] | None = None):
        self.s3_server = server_factory()
        self.s3 = self.s3_server.client("s3")
        self.bucket = "nimbus-code"
        self.s3.create_bucket(Bucket=self.bucket)
        key = tmp_path / "master.key"
        key.write_bytes(os.urandom(32))
        blobs = f"s3://{self.bucket}?endpoint={self.s3_server.endpoint}&region=us-east-1"
        # Claims on async events lapse after 5 s unrenewed (30 s by default), so a killed
        # node's events move on within a test's patience.
        self.args = ["--store", pg_url, "--blobs", blobs, "--master-key-file", str(key), "--async-lease", "5"] + (extra_args or [])
        self.factory = server_factory
        self.nodes = [server_factory(args=self.args) for _ in range(nodes)]

    def lam(self, i: int):
        return self.nodes[i].lambda_client()

    def invoke(self, i: int, name: str, payload: dict, qualifier: str | None = None) -> dict:
        extra = {"Qualifier": qualifier} if qualifier else {}
        r = self.lam(i).invoke(FunctionName=name, Payload=json.dumps(payload).encode(), **extra)
        body = json.loads(r["Payload"].read())
        assert "FunctionError" not in r, body
        return body


@pytest.fixture
def cluster(server_factory, tmp_path, pg_url):
    return Cluster(server_factory, tmp_path, pg_url, 3)


def test_a_function_made_on_one_node_runs_on_every_node(cluster):
    name = "everywhere"
    fn = create_function(cluster.lam(0), name, "python3.11", "index.handler", make_zip({"index.py": CODE}),
                         Environment={"Variables": {"SAYS": "hello"}})
    for i in (1, 2, 0):
        got = cluster.invoke(i, name, {"node": i})
        assert got == {"says": "hello", "version": "$LATEST", "event": {"node": i}}
    # Every node lists it, with the same configuration.
    for i in range(3):
        listed = [f["FunctionName"] for f in cluster.lam(i).list_functions()["Functions"]]
        assert name in listed
        assert cluster.lam(i).get_function(FunctionName=name)["Configuration"]["CodeSha256"] == fn.config["CodeSha256"]
    # The code is in the bucket once, under the account, named by its SHA-256.
    digest = base64.b64decode(fn.config["CodeSha256"]).hex()
    keys = [o["Key"] for o in cluster.s3.list_objects_v2(Bucket=cluster.bucket)["Contents"]]
    assert keys == [f"{ACCOUNT}/code/{digest[:2]}/{digest}.zip"]
    # Deleted on one node: gone on every node.
    cluster.lam(2).delete_function(FunctionName=name)
    for i in range(3):
        lam = cluster.lam(i)
        with pytest.raises(lam.exceptions.ResourceNotFoundException):
            lam.invoke(FunctionName=name, Payload=b"{}")


def _until_changed(cluster, i: int, name: str, want: dict, qualifier: str | None, started: float) -> float:
    """Invokes on node i until the answer's `says` and `version` are as wanted; returns
    the seconds since `started`."""
    while True:
        got = cluster.invoke(i, name, {}, qualifier)
        if {k: got[k] for k in want} == want:
            return time.monotonic() - started
        assert time.monotonic() - started < 5, f"node {i} still answers {got}"
        time.sleep(0.02)


def test_changes_on_one_node_reach_warm_nodes_within_a_second(cluster):
    name = "follow"
    lam0 = cluster.lam(0)
    create_function(lam0, name, "python3.11", "index.handler", make_zip({"index.py": CODE}),
                    Environment={"Variables": {"SAYS": "one"}})
    v1 = lam0.publish_version(FunctionName=name)["Version"]
    lam0.update_function_configuration(FunctionName=name, Environment={"Variables": {"SAYS": "two"}})
    wait_for(lambda: lam0.get_function_configuration(FunctionName=name)["LastUpdateStatus"] == "Successful")
    v2 = lam0.publish_version(FunctionName=name)["Version"]
    lam0.create_alias(FunctionName=name, Name="live", FunctionVersion=v1)
    # Every node warm on the alias (and on $LATEST).
    for i in range(3):
        assert cluster.invoke(i, name, {}, "live")["says"] == "one"
        assert cluster.invoke(i, name, {})["says"] == "two"
    # The alias moves on node 2: nodes 0 and 1 follow within a second of its commit (the
    # answer to the call).
    cluster.lam(2).update_alias(FunctionName=name, Name="live", FunctionVersion=v2)
    started = time.monotonic()
    for i in (0, 1):
        took = _until_changed(cluster, i, name, {"says": "two", "version": v2}, "live", started)
        assert took < 1.0, f"node {i} followed the alias after {took:.2f} s"
    # A configuration change on node 1: warm environments elsewhere are retired.
    cluster.lam(1).update_function_configuration(FunctionName=name, Environment={"Variables": {"SAYS": "three"}})
    started = time.monotonic()
    for i in (0, 2):
        took = _until_changed(cluster, i, name, {"says": "three", "version": "$LATEST"}, None, started)
        assert took < 1.0, f"node {i} ran the old configuration {took:.2f} s after the change"


def _delivered(node, name: str) -> set[str]:
    """The event ids a node's logs say its invocations of `name` received."""
    logs = node.logs_client()
    seen: set[str] = set()
    kwargs = {"logGroupName": f"/aws/lambda/{name}", "filterPattern": "DELIVERED"}
    try:
        while True:
            page = logs.filter_log_events(**kwargs)
            for e in page["events"]:
                seen.add(e["message"].split()[1])
            if "nextToken" not in page:
                return seen
            kwargs["nextToken"] = page["nextToken"]
    except logs.exceptions.ResourceNotFoundException:
        return seen


def test_a_killed_node_loses_no_accepted_event(cluster):
    """Events accepted by a node that is then killed (kill -9) while it runs some of them
    are all delivered: what it had claimed goes to the others once its leases lapse."""
    name = "durable"
    create_function(cluster.lam(0), name, "python3.11", "index.handler", make_zip({"index.py": CODE}), Timeout=10)
    ids = [f"e{i:03d}" for i in range(120)]
    victim = cluster.nodes[0]
    for n, event_id in enumerate(ids):
        # Two thirds go to the node that dies, the rest to node 1.
        node = cluster.lam(0 if n % 3 else 1)
        r = node.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"id": event_id, "sleep": 2}).encode())
        assert r["StatusCode"] == 202
    # The victim is in the middle of the events it claimed (each sleeps 2 s, then logs).
    time.sleep(1.0)
    victim.kill()
    killed_at = time.monotonic()
    # The dead node's claims lapse (5 s leases here) and nodes 1 and 2 run them.
    deadline = time.monotonic() + 60
    seen: set[str] = set()
    while time.monotonic() < deadline:
        seen = _delivered(cluster.nodes[1], name) | _delivered(cluster.nodes[2], name)
        if len(seen | _victims_logs(victim, name)) == len(ids):
            break
        time.sleep(1)
    everything = seen | _victims_logs(victim, name)
    assert sorted(set(ids) - everything) == [], f"lost {len(set(ids) - everything)} of {len(ids)}"
    taken_over = {i for n, i in enumerate(ids) if n % 3} & seen
    assert taken_over, "the surviving nodes ran none of the events the killed node had accepted"
    print(f"all {len(ids)} delivered {time.monotonic() - killed_at:.1f} s after the kill; "
          f"{len(taken_over)} of the killed node's by the others")


def _victims_logs(victim, name: str) -> set[str]:
    """The ids in the killed node's log spool: lines it had not yet written to PostgreSQL
    when it died (its next start would; every other line is read through the others)."""
    found: set[str] = set()
    for path in victim.data_dir.glob("logs/**/*.jsonl"):
        for line in path.read_text(errors="replace").splitlines():
            try:
                message = json.loads(line).get("m", "")
            except ValueError:
                continue
            if message.startswith("DELIVERED "):
                found.add(message.split()[1])
    return found


LOGGING = """
import json
def handler(event, context):
    print(event["say"])
    print(json.dumps({"ms": event["ms"]}))
    return context.log_stream_name
"""



def test_logs_are_every_nodes(cluster):
    """A function's lines, written on whichever node ran it, are read on any node; a group
    made, a filter set or events put on one node are every node's."""
    name = "chatty"
    create_function(cluster.lam(0), name, "python3.11", "index.handler", make_zip({"index.py": LOGGING}))
    group = f"/aws/lambda/{name}"
    streams = {}
    for i in (0, 1):
        # Each runs on the node it reaches (a forwarded request is never sent on), so the
        # lines are written by two nodes.
        lam = cluster.lam(i)
        lam.meta.events.register("before-sign.lambda.Invoke", run_here)
        r = lam.invoke(FunctionName=name, Payload=json.dumps({"say": f"hello from node {i}", "ms": i}).encode())
        streams[i] = json.loads(r["Payload"].read())
    assert streams[0] != streams[1]
    logs2 = cluster.nodes[2].logs_client()
    # Node 2 ran nothing, yet lists both environments' streams and reads their lines.
    listed = wait_for(lambda: {s["logStreamName"] for s in logs2.describe_log_streams(logGroupName=group)["logStreams"]}
                      if len(logs2.describe_log_streams(logGroupName=group)["logStreams"]) == 2 else None,
                      timeout=5, what="both streams on node 2")
    assert listed == set(streams.values())
    said = wait_for(lambda: sorted(e["message"].strip() for e in logs2.filter_log_events(
        logGroupName=group, filterPattern="hello")["events"]) or None, timeout=5, what="the lines on node 2")
    assert said == ["hello from node 0", "hello from node 1"]
    page = logs2.get_log_events(logGroupName=group, logStreamName=streams[0], startFromHead=True)
    messages = [e["message"] for e in page["events"]]
    assert messages[0].startswith("START RequestId:") and "hello from node 0" in messages
    assert any(m.startswith("REPORT RequestId:") for m in messages)
    # A group and stream made on node 1, events put there: node 0 reads them, refuses a second.
    logs0, logs1 = cluster.nodes[0].logs_client(), cluster.nodes[1].logs_client()
    logs1.create_log_group(logGroupName="/app/shared", tags={"team": "core"})
    with pytest.raises(logs0.exceptions.ResourceAlreadyExistsException):
        logs0.create_log_group(logGroupName="/app/shared")
    logs1.create_log_stream(logGroupName="/app/shared", logStreamName="s")
    now = int(time.time() * 1000)
    logs1.put_log_events(logGroupName="/app/shared", logStreamName="s",
                         logEvents=[{"timestamp": now, "message": "put on node 1"}])
    got = logs0.get_log_events(logGroupName="/app/shared", logStreamName="s")["events"]
    assert [e["message"] for e in got] == ["put on node 1"]
    assert logs0.list_tags_log_group(logGroupName="/app/shared")["tags"] == {"team": "core"}
    # A metric filter put on node 2 turns node 0's lines into node 0's metrics.
    ns = f"Cluster{uuid.uuid4().hex[:8]}"
    logs2.put_metric_filter(logGroupName=group, filterName="ms", filterPattern="{ $.ms = * }",
                            metricTransformations=[{"metricName": "Ms", "metricNamespace": ns, "metricValue": "$.ms"}])
    cw0 = cluster.nodes[0].client("cloudwatch")

    def counted():
        cluster.lam(0).invoke(FunctionName=name, Payload=json.dumps({"say": "again", "ms": 5}).encode())
        end = time.time() + 60
        points = cw0.get_metric_statistics(Namespace=ns, MetricName="Ms", StartTime=end - 900, EndTime=end,
                                           Period=60, Statistics=["Maximum"])["Datapoints"]
        return any(p["Maximum"] == 5 for p in points)

    wait_for(counted, timeout=5, interval=0.2, what="node 0 applies node 2's metric filter")
    # Deleted on node 0: gone on node 2.
    logs0.delete_log_group(logGroupName="/app/shared")
    with pytest.raises(logs2.exceptions.ResourceNotFoundException):
        logs2.get_log_events(logGroupName="/app/shared", logStreamName="s")


def _signed(node, service: str, key_id: str, secret: str, token: str | None = None):
    """A client of `node` signed with the given credentials, no retries."""
    return boto3.session.Session().client(
        service, endpoint_url=node.endpoint, region_name=REGION, aws_access_key_id=key_id,
        aws_secret_access_key=secret, aws_session_token=token, config=Config(retries={"max_attempts": 0}))


def _within_a_second(what: str, ok) -> float:
    """Polls ok() (a false answer or a client error: not yet) until it holds; returns the
    seconds it took, failing past 5 s."""
    started = time.monotonic()
    wait_for(ok, timeout=5, interval=0.02, what=what)
    return time.monotonic() - started


def test_iam_is_shared_by_every_node(cluster):
    """Users, their keys, roles and STS sessions made on one node authenticate (and are
    authorized) on every node within a second; a deleted key stops working everywhere."""
    iam = [cluster.nodes[i].client("iam") for i in range(3)]
    # The suite's execution role was made once, by the first node's start.
    role_name = ROLE.rsplit("/", 1)[1]
    assert len({iam[i].get_role(RoleName=role_name)["Role"]["RoleId"] for i in range(3)}) == 1

    # A user and its access key made on node 0 sign requests on nodes 1 and 2.
    iam[0].create_user(UserName="alice")
    key = iam[0].create_access_key(UserName="alice")["AccessKey"]
    alice = f"arn:aws:iam::{ACCOUNT}:user/alice"
    for i in (1, 2):
        sts = _signed(cluster.nodes[i], "sts", key["AccessKeyId"], key["SecretAccessKey"])
        took = _within_a_second(f"node {i} authenticating alice's key",
                                lambda: sts.get_caller_identity()["Arn"] == alice)
        assert took < 1.0, f"node {i} took alice's key after {took:.2f} s"

    # A role made on node 2 that alice may assume; a session assumed on node 1 works on
    # node 2, with the role's policies.
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": alice}, "Action": "sts:AssumeRole"}]}
    role = iam[2].create_role(RoleName="shared-admin", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    iam[2].attach_role_policy(RoleName="shared-admin", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    sts1 = _signed(cluster.nodes[1], "sts", key["AccessKeyId"], key["SecretAccessKey"])
    creds = wait_for(lambda: sts1.assume_role(RoleArn=role["Arn"], RoleSessionName="s1")["Credentials"],
                     timeout=5, interval=0.02, what="node 1 knowing the role")
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/shared-admin/s1"

    def as_session(service: str):
        return _signed(cluster.nodes[2], service, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])

    took = _within_a_second("node 2 authenticating the session",
                            lambda: as_session("sts").get_caller_identity()["Arn"] == session)
    assert took < 1.0, f"node 2 took the session after {took:.2f} s"
    as_session("lambda").list_functions()

    # Deleted on node 0: nodes 1 and 2 refuse the key.
    iam[0].delete_access_key(UserName="alice", AccessKeyId=key["AccessKeyId"])
    for i in (1, 2):
        sts = _signed(cluster.nodes[i], "sts", key["AccessKeyId"], key["SecretAccessKey"])

        def refused() -> bool:
            try:
                sts.get_caller_identity()
            except ClientError as e:
                return e.response["Error"]["Code"] == "InvalidClientTokenId"
            return False

        took = _within_a_second(f"node {i} refusing the deleted key", refused)
        assert took < 1.0, f"node {i} still took the deleted key after {took:.2f} s"


def test_store_and_blobs_urls_are_checked_at_start(server_factory, tmp_path, pg_url):
    cases = [
        (["--store", "mysql://x"], "--store must be a postgres:// URL"),
        (["--store", "postgres://nimbus:hunter2@127.0.0.1:1/x"],
         "--store postgres://nimbus@127.0.0.1:1/x: PostgreSQL: error connecting to server"),
        (["--blobs", "gs://bucket"], "--blobs must be an s3:// URL"),
        (["--blobs", "s3://bkt?endpoint=http://127.0.0.1:1&region=us-east-1"], "--blobs: storage backend: S3 blob store s3://bkt/000000000000: LIST"),
        (["--blobs", "s3://bkt?endpoint=http://127.0.0.1:1&colour=red"], "unknown parameter colour"),
    ]
    for args, text in cases:
        s = server_factory(args=args, start=False)
        with pytest.raises(RuntimeError) as e:
            s.start(timeout=20)
        assert text in str(e.value), str(e.value)
        # (the harness's own "===== start [command]" lines quote the arguments)
        said = "\n".join(line for line in s.log_tail().splitlines() if not line.startswith("===== start"))
        assert "hunter2" not in said, said


def test_an_account_made_on_one_node_is_every_nodes(cluster):
    """Organizations' CreateAccount on node 0: node 2 opens the new account within seconds,
    its access role works there, and a function made in it through node 1 runs on node 2."""
    from helpers import TRUST_LAMBDA

    org = cluster.nodes[0].client("organizations")
    org.create_organization(FeatureSet="ALL")
    status = org.create_account(Email="team@example.com", AccountName="team")["CreateAccountStatus"]
    account = status["AccountId"]
    role = f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole"
    # (Roles are assumed by users, not by the root.)
    iam = cluster.nodes[0].client("iam")
    iam.create_user(UserName="ops")
    iam.attach_user_policy(UserName="ops", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    key = iam.create_access_key(UserName="ops")["AccessKey"]
    sts2 = _signed(cluster.nodes[2], "sts", key["AccessKeyId"], key["SecretAccessKey"])
    took = _within_a_second("node 2 opening the new account",
                            lambda: sts2.assume_role(RoleArn=role, RoleSessionName="ops")["Credentials"])
    creds = sts2.assume_role(RoleArn=role, RoleSessionName="ops")["Credentials"]
    assert took < 2.0, f"node 2 opened the account after {took:.2f} s"
    ids = [a["Id"] for a in cluster.nodes[1].client("organizations").list_accounts()["Accounts"]]
    assert account in ids

    def member(i: int, service: str):
        return _signed(cluster.nodes[i], service, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])

    exec_role = member(1, "iam").create_role(RoleName="runner", AssumeRolePolicyDocument=json.dumps(TRUST_LAMBDA))["Role"]["Arn"]
    member(1, "lambda").create_function(FunctionName="in-member", Runtime="python3.11", Role=exec_role, Handler="index.handler",
                                        Code={"ZipFile": make_zip({"index.py": CODE})})
    lam2 = member(2, "lambda")
    wait_for(lambda: lam2.get_function(FunctionName="in-member")["Configuration"]["State"] == "Active", timeout=30)
    r = lam2.invoke(FunctionName="in-member", Payload=json.dumps({"id": "x"}).encode())
    assert "FunctionError" not in r and json.loads(r["Payload"].read())["event"] == {"id": "x"}
    assert json.loads(lam2.invoke(FunctionName="in-member", Payload=b"{}")["Payload"].read())["version"] == "$LATEST"


def test_each_node_shares_one_pool_per_account(cluster, pg_url):
    """Every shared store of a node's account uses one pool, and one change feed per channel
    (the account's, and its queues' sends): the database sees one pooled connection name per
    node and two feed connections beside it, and a node holds a few dozen connections at
    most."""
    name = "pooled"
    create_function(cluster.lam(0), name, "python3.11", "index.handler", make_zip({"index.py": CODE}))
    for i in range(3):
        cluster.invoke(i, name, {})
        cluster.nodes[i].client("sqs").create_queue(QueueName=f"q{i}")
        cluster.nodes[i].client("sns").create_topic(Name=f"t{i}")
    cp = subprocess.run(["psql", "-At", pg_url, "-c",
                         "SELECT application_name FROM pg_stat_activity WHERE datname = current_database() "
                         "AND application_name LIKE 'nimbus-%'"],
                        check=True, capture_output=True, text=True, timeout=30)
    names = cp.stdout.split()
    pools = {n for n in names if "/" not in n}
    assert len(pools) == 3, f"one pool name per node, got {sorted(pools)}"
    for pool in pools:
        held = [n for n in names if n.split("/")[0] == pool]
        assert len(held) <= 25, f"{pool} holds {len(held)} connections"
        feeds = sorted(n for n in held if "/feed-" in n)
        assert len(feeds) == 2, f"{pool}'s change feeds: {feeds}"


def test_metrics_and_alarms_are_every_nodes(server_factory, tmp_path, pg_url):
    """Datapoints put or counted on any node are one metric; an alarm made on one node is
    evaluated by one node at a time, so its action is told once however many nodes run."""
    cluster = Cluster(server_factory, tmp_path, pg_url, 3, ["--alarm-interval-ms", "300"])
    cw = [cluster.nodes[i].client("cloudwatch") for i in range(3)]
    ns = f"Shop{uuid.uuid4().hex[:8]}"
    dims = [{"Name": "Service", "Value": "cart"}]
    minute = (int(time.time()) // 60 - 1) * 60
    for i, value in ((0, 10.0), (1, 20.0)):
        cw[i].put_metric_data(Namespace=ns, MetricData=[{"MetricName": "Errors", "Dimensions": dims, "Value": value,
                                                         "Timestamp": minute + 1 + i, "Unit": "Count"}])

    def stats(node: int, namespace: str, metric: str, dimensions: list) -> dict | None:
        points = cw[node].get_metric_statistics(Namespace=namespace, MetricName=metric, Dimensions=dimensions,
                                                StartTime=minute - 600, EndTime=time.time() + 120, Period=3600,
                                                Statistics=["Sum", "SampleCount"])["Datapoints"]
        return points[0] if points else None

    got = stats(2, ns, "Errors", dims)
    assert (got["Sum"], got["SampleCount"]) == (30.0, 2.0)
    assert [m["Namespace"] for m in cw[2].list_metrics(Namespace=ns)["Metrics"]] == [ns]
    # AWS/Lambda's datapoints, counted in memory where the invocations ran, are summed once
    # each node writes them (every ten seconds).
    name = "counted"
    create_function(cluster.lam(0), name, "python3.11", "index.handler", make_zip({"index.py": CODE}))
    for i in (0, 0, 1, 1, 1):
        cluster.invoke(i, name, {})
    fn = [{"Name": "FunctionName", "Value": name}]
    wait_for(lambda: (stats(2, "AWS/Lambda", "Invocations", fn) or {}).get("Sum") == 5.0, timeout=15, interval=0.5,
             what="five invocations counted on node 2")
    # An alarm made on node 1 over the summed metric: ALARM, told to its topic once.
    sns, sqs = cluster.nodes[0].client("sns"), cluster.nodes[0].client("sqs")
    topic = sns.create_topic(Name="alarms")["TopicArn"]
    queue = sqs.create_queue(QueueName="alarm-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"Policy": sns_may_send(queue_arn, topic)})
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    cw[1].put_metric_alarm(AlarmName="errors-high", Namespace=ns, MetricName="Errors", Dimensions=dims, Statistic="Sum",
                           Period=60, EvaluationPeriods=3, DatapointsToAlarm=1, Threshold=25.0,
                           ComparisonOperator="GreaterThanThreshold", AlarmActions=[topic])
    told = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not told:
        told += sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1, MaxNumberOfMessages=10).get("Messages", [])
    assert told, "no alarm notification"
    # Every node evaluates every 300 ms: any second telling would be here by now.
    time.sleep(3)
    told += sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1, MaxNumberOfMessages=10).get("Messages", [])
    assert [json.loads(m["Body"])["NewStateValue"] for m in told] == ["ALARM"]
    for i in range(3):
        assert cw[i].describe_alarms(AlarmNames=["errors-high"])["MetricAlarms"][0]["StateValue"] == "ALARM"
    history = cw[2].describe_alarm_history(AlarmName="errors-high", HistoryItemType="StateUpdate")["AlarmHistoryItems"]
    assert [h["HistorySummary"] for h in history] == ["Alarm updated from INSUFFICIENT_DATA to ALARM"]

"""A data directory with one of everything Nimbus keeps, and the check that a server opened on
it still has all of it. `test_upgrade.py` runs the check on a data directory written by an
earlier release (tests/e2e/data/datadir-<release>.tar.gz); make a new one with

    .venv/bin/python tests/e2e/upgrade_fixture.py make target/debug/nimbus tests/e2e/data/datadir-<release>.tar.gz
"""

from __future__ import annotations

import json
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from helpers import (
    ACCOUNT,
    REGION,
    ROLE,
    Server,
    arn,
    boto_client,
    create_function,
    events_client,
    invoke,
    make_zip,
    sns_client,
    sqs_client,
)

FN = "keep-fn"


def _code(v: int) -> bytes:
    return make_zip({"h.py": f"def handler(event, context):\n    print('hello from v{v}')\n    return {{'v': {v}}}\n"})


# What IAM keeps: a user with a key and a policy that lets the key be used, a role trusting
# that user, a customer managed policy attached to the role.
IAM_USER, IAM_ROLE, IAM_POLICY = "keep-user", "keep-role", "keep-policy"
USER_CAN = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["sts:GetCallerIdentity", "lambda:ListFunctions", "sts:AssumeRole"], "Resource": "*"}]}


def populate(endpoint: str) -> dict:
    """Makes one of everything; answers the IAM user's access key (its secret is shown only
    once)."""
    key = populate_iam(endpoint)
    lam = boto_client("lambda", endpoint)
    create_function(lam, FN, "python3.11", "h.handler", _code(1), Environment={"Variables": {"KEEP": "kept"}})
    lam.publish_version(FunctionName=FN)
    lam.create_alias(FunctionName=FN, Name="live", FunctionVersion="1")
    lam.update_function_code(FunctionName=FN, ZipFile=_code(2))
    lam.put_function_concurrency(FunctionName=FN, ReservedConcurrentExecutions=5)
    lam.create_function_url_config(FunctionName=FN, AuthType="NONE")
    lam.put_function_event_invoke_config(FunctionName=FN, MaximumRetryAttempts=1)
    lam.publish_layer_version(LayerName="keep-layer", Content={"ZipFile": make_zip({"python/keep.py": "X = 1\n"})})
    assert invoke(lam, FN, {}).ok() == {"v": 2}

    sqs = sqs_client(endpoint)
    q = sqs.create_queue(QueueName="keep-q", Attributes={"VisibilityTimeout": "7"})["QueueUrl"]
    sqs.send_message(QueueUrl=q, MessageBody="hello", MessageAttributes={"a": {"DataType": "String", "StringValue": "b"}})
    q2 = sqs.create_queue(QueueName="keep-q2")["QueueUrl"]
    q2_arn = sqs.get_queue_attributes(QueueUrl=q2, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    lam.create_event_source_mapping(EventSourceArn=q2_arn, FunctionName=FN, Enabled=False, BatchSize=3)

    sns = sns_client(endpoint)
    topic = sns.create_topic(Name="keep-topic")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=q2_arn, Attributes={"RawMessageDelivery": "true"})

    ev = events_client(endpoint)
    ev.create_event_bus(Name="keep-bus")
    ev.put_rule(Name="keep-rule", EventPattern=json.dumps({"source": ["keep"]}))
    ev.put_targets(Rule="keep-rule", Targets=[{"Id": "t", "Arn": arn(FN)}])

    gw = boto_client("apigatewayv2", endpoint)
    gw.create_api(Name="keep-api", ProtocolType="HTTP", Target=arn(FN))
    return key


def populate_iam(endpoint: str) -> dict:
    iam = boto_client("iam", endpoint)
    user_arn = iam.create_user(UserName=IAM_USER)["User"]["Arn"]
    key = iam.create_access_key(UserName=IAM_USER)["AccessKey"]
    iam.put_user_policy(UserName=IAM_USER, PolicyName="keep", PolicyDocument=json.dumps(USER_CAN))
    trust = {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Principal": {"AWS": user_arn}, "Action": "sts:AssumeRole"}]}
    iam.create_role(RoleName=IAM_ROLE, AssumeRolePolicyDocument=json.dumps(trust))
    allow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "lambda:ListFunctions", "Resource": "*"}]}
    policy = iam.create_policy(PolicyName=IAM_POLICY, PolicyDocument=json.dumps(allow))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=IAM_ROLE, PolicyArn=policy)
    return {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}


def verify_iam(endpoint: str, key: dict) -> None:
    """What `populate_iam` made is there, and the user's key (`AccessKeyId`,
    `SecretAccessKey`) still signs requests."""
    import boto3

    iam = boto_client("iam", endpoint)
    assert [k["AccessKeyId"] for k in iam.list_access_keys(UserName=IAM_USER)["AccessKeyMetadata"]] == [key["AccessKeyId"]]
    assert iam.list_user_policies(UserName=IAM_USER)["PolicyNames"] == ["keep"]
    attached = iam.list_attached_role_policies(RoleName=IAM_ROLE)["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == [IAM_POLICY], attached
    as_user = boto3.session.Session(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                                    region_name=REGION)
    ident = as_user.client("sts", endpoint_url=endpoint).get_caller_identity()
    assert ident["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/{IAM_USER}", ident
    assert "Functions" in as_user.client("lambda", endpoint_url=endpoint).list_functions()


def verify(endpoint: str) -> None:
    """Everything `populate` made is there and works."""
    lam = boto_client("lambda", endpoint)
    cfg = lam.get_function_configuration(FunctionName=FN)
    assert cfg["Environment"]["Variables"] == {"KEEP": "kept"}, cfg
    assert invoke(lam, FN, {}).ok() == {"v": 2}
    assert invoke(lam, f"{FN}:live", {}).ok() == {"v": 1}
    assert lam.get_alias(FunctionName=FN, Name="live")["FunctionVersion"] == "1"
    assert [v["Version"] for v in lam.list_versions_by_function(FunctionName=FN)["Versions"]] == ["$LATEST", "1"]
    assert lam.get_function_concurrency(FunctionName=FN)["ReservedConcurrentExecutions"] == 5
    assert lam.get_function_url_config(FunctionName=FN)["AuthType"] == "NONE"
    assert lam.get_function_event_invoke_config(FunctionName=FN)["MaximumRetryAttempts"] == 1
    assert lam.get_layer_version(LayerName="keep-layer", VersionNumber=1)["Version"] == 1
    mappings = lam.list_event_source_mappings(FunctionName=FN)["EventSourceMappings"]
    assert [(m["State"], m["BatchSize"]) for m in mappings] == [("Disabled", 3)], mappings

    logs = boto_client("logs", endpoint)
    events = logs.filter_log_events(logGroupName=f"/aws/lambda/{FN}")["events"]
    assert any("hello from v2" in e["message"] for e in events), events

    sqs = sqs_client(endpoint)
    q = sqs.get_queue_url(QueueName="keep-q")["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["All"])["Attributes"]
    assert attrs["VisibilityTimeout"] == "7"
    got = sqs.receive_message(QueueUrl=q, MessageAttributeNames=["All"], WaitTimeSeconds=1).get("Messages", [])
    # The message was sent when the queue was made. Past the queue's retention period (four
    # days by default) it is gone, as on AWS: a fixture's message lives that long after the
    # fixture was made (a margin either side for the clock and the test's own run).
    age = time.time() - int(attrs["CreatedTimestamp"])
    retention = int(attrs["MessageRetentionPeriod"])
    if age < retention - 600:
        assert [(m["Body"], m["MessageAttributes"]["a"]["StringValue"]) for m in got] == [("hello", "b")]
        # Visible again at once, for the next check.
        sqs.change_message_visibility(QueueUrl=q, ReceiptHandle=got[0]["ReceiptHandle"], VisibilityTimeout=0)
    elif age > retention + 600:
        assert got == [], f"a message {age:.0f} s old outlived its queue's retention of {retention} s: {got}"

    sns = sns_client(endpoint)
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:keep-topic"
    subs = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [s["Protocol"] for s in subs] == ["sqs"], subs

    ev = events_client(endpoint)
    assert ev.describe_event_bus(Name="keep-bus")["Name"] == "keep-bus"
    assert json.loads(ev.describe_rule(Name="keep-rule")["EventPattern"]) == {"source": ["keep"]}
    assert [t["Id"] for t in ev.list_targets_by_rule(Rule="keep-rule")["Targets"]] == ["t"]

    gw = boto_client("apigatewayv2", endpoint)
    apis = [a for a in gw.get_apis()["Items"] if a["Name"] == "keep-api"]
    assert len(apis) == 1, apis
    assert [r["RouteKey"] for r in gw.get_routes(ApiId=apis[0]["ApiId"])["Items"]] == ["$default"]


def make(nimbus_bin: str, out: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        s = Server(nimbus_bin, data, Path(tmp) / "server.log", name="fixture")
        s.start()
        try:
            key = populate(s.endpoint)
            verify(s.endpoint)
            verify_iam(s.endpoint, key)
            time.sleep(1)  # let the log writer flush
        finally:
            s.stop()
        with tarfile.open(out, "w:gz") as tar:
            for p in sorted(data.iterdir()):
                # Unpacked code and layers, merged /opt trees, environments and the lock are
                # disposable: a server rebuilds them. The databases go as they are, WAL included.
                if p.name in ("envs", "code", "layers", "opt", "runtimes", "tmp", "nimbus.lock"):
                    continue
                tar.add(p, arcname=f"data/{p.name}")


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "make":
        sys.exit(__doc__)
    make(sys.argv[2], sys.argv[3])

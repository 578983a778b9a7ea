"""STS sessions: the temporary credentials of AssumeRole, GetSessionToken and the execution
roles of functions outlive a restart of the server (recorded in iam.db with their secrets
sealed: no file of the data directory holds a secret or a token) until they expire;
AssumeRole's session policies (`Policy`, `PolicyArns`) limit what a role session may do, as
AWS evaluates them; and environments, provisioned ones included, are renewed before their
role credentials expire."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from helpers import ACCOUNT, REGION, ROLE, boto_client, client_error, create_function, data_dir_holds, make_zip, unique, wait_for

TRUST_LAMBDA = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}

CREDS_PY = """
import os
def handler(event, context):
    return {k: os.environ[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")}
"""


def allow(*actions: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": "*"}]})


def client(endpoint: str, service: str, key: str, secret: str, token: str | None = None, *, validate: bool = True):
    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=Config(retries={"max_attempts": 0}, parameter_validation=validate),
    )


def with_creds(endpoint: str, service: str, creds: dict, **kw):
    return client(endpoint, service, creds["AccessKeyId"], creds["SecretAccessKey"], creds.get("SessionToken"), **kw)


def user_with_key(iam, *actions: str) -> tuple[str, dict]:
    name = unique("sts-user")
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    iam.put_user_policy(UserName=name, PolicyName="may", PolicyDocument=allow(*actions))
    return arn, iam.create_access_key(UserName=name)["AccessKey"]


def role_trusting(iam, principal_arn: str, *actions: str) -> str:
    name = unique("sts-role")
    trust = {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Principal": {"AWS": principal_arn}, "Action": "sts:AssumeRole"}]}
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="may", PolicyDocument=allow(*actions))
    return arn


def test_sessions_outlive_a_restart_and_are_sealed_on_disk(server_factory):
    s = server_factory()
    iam = boto_client("iam", s.endpoint)
    user_arn, key = user_with_key(iam, "sts:AssumeRole", "sts:GetSessionToken", "sts:GetCallerIdentity")
    role_arn = role_trusting(iam, user_arn, "sts:GetCallerIdentity")
    # The functions' execution role (every test server has it) may call STS.
    iam.put_role_policy(RoleName=ROLE.rsplit("/", 1)[1], PolicyName="may", PolicyDocument=allow("sts:GetCallerIdentity"))

    sts = with_creds(s.endpoint, "sts", key)
    assumed = sts.assume_role(RoleArn=role_arn, RoleSessionName="kept", DurationSeconds=900)["Credentials"]
    token = sts.get_session_token(DurationSeconds=900)["Credentials"]
    lam = s.lambda_client()
    fn = unique("sts-creds")
    create_function(lam, fn, "python3.11", "index.handler", make_zip({"index.py": CREDS_PY}))
    out = lam.invoke(FunctionName=fn, Payload=b"{}")
    env = json.loads(out["Payload"].read())
    function = {"AccessKeyId": env["AWS_ACCESS_KEY_ID"], "SecretAccessKey": env["AWS_SECRET_ACCESS_KEY"],
                "SessionToken": env["AWS_SESSION_TOKEN"]}
    expected = {
        "assumed": (assumed, f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_arn.rsplit('/', 1)[1]}/kept"),
        "token": (token, user_arn),
        "function": (function, f"arn:aws:sts::{ACCOUNT}:assumed-role/nimbus-e2e/{fn}"),
    }

    def check():
        for label, (creds, arn) in expected.items():
            assert with_creds(s.endpoint, "sts", creds).get_caller_identity()["Arn"] == arn, label
            for secret in (creds["SecretAccessKey"], creds["SessionToken"]):
                assert data_dir_holds(s.data_dir, secret) == [], label
        assert data_dir_holds(s.data_dir, key["SecretAccessKey"]) == []

    check()
    s.restart()
    check()
    # Without their token they are still refused.
    with pytest.raises(ClientError) as e:
        client(s.endpoint, "sts", assumed["AccessKeyId"], assumed["SecretAccessKey"]).get_caller_identity()
    assert client_error(e)[0] == "InvalidClientTokenId"
    # A deleted user's sessions end with it, also across a restart.
    iam = boto_client("iam", s.endpoint)
    iam.delete_user_policy(UserName=user_arn.rsplit("/", 1)[1], PolicyName="may")
    iam.delete_access_key(UserName=user_arn.rsplit("/", 1)[1], AccessKeyId=key["AccessKeyId"])
    iam.delete_user(UserName=user_arn.rsplit("/", 1)[1])
    s.restart()
    with pytest.raises(ClientError) as e:
        with_creds(s.endpoint, "sts", token).get_caller_identity()
    assert client_error(e)[0] == "InvalidClientTokenId"
    assert with_creds(s.endpoint, "sts", assumed).get_caller_identity()["Arn"] == expected["assumed"][1]


def test_a_session_policy_limits_what_a_role_session_may_do(server):
    iam = boto_client("iam", server.endpoint)
    user_arn, key = user_with_key(iam, "sts:AssumeRole")
    role_arn = role_trusting(iam, user_arn, "sqs:*")
    role_name = role_arn.rsplit("/", 1)[1]
    sts = with_creds(server.endpoint, "sts", key)

    # Without a session policy the role's policy applies: every SQS action.
    full = sts.assume_role(RoleArn=role_arn, RoleSessionName="full")
    assert "PackedPolicySize" not in full
    q = unique("sp-full")
    with_creds(server.endpoint, "sqs", full["Credentials"]).create_queue(QueueName=q)

    # With one allowing only ListQueues: listing works, creating does not.
    only_list = sts.assume_role(RoleArn=role_arn, RoleSessionName="list", Policy=allow("sqs:ListQueues"))
    assert 0 < only_list["PackedPolicySize"] < 100
    sqs = with_creds(server.endpoint, "sqs", only_list["Credentials"])
    assert any(u.endswith("/" + q) for u in sqs.list_queues().get("QueueUrls", []))
    with pytest.raises(ClientError) as e:
        sqs.create_queue(QueueName=unique("sp-denied"))
    code, status, message = client_error(e)
    assert code.startswith("AccessDenied"), (code, status, message)
    assert message.startswith(f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/list is not authorized to perform: sqs:createqueue")
    assert message.endswith("because no session policy allows the sqs:createqueue action"), message

    # A session policy cannot grant more than the role has.
    wider = sts.assume_role(RoleArn=role_arn, RoleSessionName="wider", Policy=allow("sqs:*", "lambda:ListFunctions"))
    with pytest.raises(ClientError) as e:
        with_creds(server.endpoint, "lambda", wider["Credentials"]).list_functions()
    assert "because no identity-based policy allows the lambda:ListFunctions action" in client_error(e)[2]

    # Managed session policies (PolicyArns) count with the inline one; either allowing is enough.
    managed = iam.create_policy(PolicyName=unique("sp-create"), PolicyDocument=allow("sqs:CreateQueue"))["Policy"]["Arn"]
    both = sts.assume_role(RoleArn=role_arn, RoleSessionName="both", Policy=allow("sqs:ListQueues"), PolicyArns=[{"arn": managed}])
    sqs = with_creds(server.endpoint, "sqs", both["Credentials"])
    sqs.create_queue(QueueName=unique("sp-managed"))
    sqs.list_queues()
    with pytest.raises(ClientError) as e:
        sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=q)["QueueUrl"])
    assert "no session policy allows" in client_error(e)[2]


def test_session_policies_are_checked_as_sts_checks_them(server):
    iam = boto_client("iam", server.endpoint)
    user_arn, key = user_with_key(iam, "sts:AssumeRole")
    role_arn = role_trusting(iam, user_arn, "sqs:*")
    sts = with_creds(server.endpoint, "sts", key, validate=False)
    statement = {"Effect": "Allow", "Action": "sqs:ListQueues", "Resource": "*",
                 "Condition": {"StringEquals": {"aws:PrincipalTag/team": "x" * 2100}}}
    cases = [
        ({"Policy": "{not json"}, ("MalformedPolicyDocument", 400, "Syntax errors in policy.")),
        ({"Policy": json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:*"}]})},
         ("MalformedPolicyDocument", 400, "Policy statement must contain resources.")),
        ({"Policy": json.dumps({"Version": "2012-10-17", "Statement": [statement]})},
         ("PackedPolicyTooLarge", 400, None)),
        ({"PolicyArns": [{"arn": f"arn:aws:iam::{ACCOUNT}:policy/{unique('absent')}"}]}, ("MalformedPolicyDocument", 400, None)),
    ]
    for extra, (code, status, message) in cases:
        with pytest.raises(ClientError) as e:
            sts.assume_role(RoleArn=role_arn, RoleSessionName="checked", **extra)
        got = client_error(e)
        assert got[:2] == (code, status), (extra, got)
        if message:
            assert got[2] == message, got
    with pytest.raises(ClientError) as e:
        sts.assume_role(RoleArn=role_arn, RoleSessionName="checked", Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]}))
    assert client_error(e)[2].startswith("Packed policy consumes ") and client_error(e)[2].endswith("% of allotted space, please use smaller policy.")
    # An AWS managed policy is a valid session policy.
    ok = sts.assume_role(RoleArn=role_arn, RoleSessionName="managed",
                         PolicyArns=[{"arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}])
    assert ok["Credentials"]["AccessKeyId"].startswith("ASIA")


RENEWED_PY = """
import os, time, uuid
TOKEN = uuid.uuid4().hex
def handler(event, context):
    if event.get("sleep"):
        time.sleep(event["sleep"])
    return {"key": os.environ["AWS_ACCESS_KEY_ID"], "secret": os.environ["AWS_SECRET_ACCESS_KEY"],
            "token": os.environ["AWS_SESSION_TOKEN"], "env": TOKEN,
            "init": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE")}
"""

# Credentials live 16 s on this server: renewed 4 s (a quarter) before they expire.
LIFETIME = 16


def test_provisioned_environments_are_recycled_before_their_credentials_expire(server_factory):
    s = server_factory(args=["--credentials-lifetime", str(LIFETIME)])
    iam = boto_client("iam", s.endpoint)
    role = ROLE.rsplit("/", 1)[1]
    iam.put_role_policy(RoleName=role, PolicyName="may", PolicyDocument=allow("sts:GetCallerIdentity"))
    lam = s.lambda_client()
    fn = unique("renewed")
    create_function(lam, fn, "python3.11", "index.handler", make_zip({"index.py": RENEWED_PY}), Timeout=30)
    version = lam.publish_version(FunctionName=fn)["Version"]
    lam.put_provisioned_concurrency_config(FunctionName=fn, Qualifier=version, ProvisionedConcurrentExecutions=1)
    wait_for(lambda: lam.get_provisioned_concurrency_config(FunctionName=fn, Qualifier=version)["Status"] == "READY",
             timeout=30, what="READY")

    def run(qualifier: str, payload: dict | None = None) -> dict:
        out = lam.invoke(FunctionName=f"{fn}:{qualifier}", Payload=json.dumps(payload or {}).encode())
        assert "FunctionError" not in out, out["Payload"].read()
        return json.loads(out["Payload"].read())

    def creds(got: dict) -> dict:
        return {"AccessKeyId": got["key"], "SecretAccessKey": got["secret"], "SessionToken": got["token"]}

    def works(got: dict) -> bool:
        arn = with_creds(s.endpoint, "sts", creds(got)).get_caller_identity()["Arn"]
        return arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{fn}"

    first = run(version)
    assert first["init"] == "provisioned-concurrency" and works(first)
    on_demand = run("$LATEST")
    assert works(on_demand)

    # An invocation running while its environment is recycled (the renewal starts 12 s
    # after the credentials were issued, at provisioning) runs to its end, with the
    # credentials it started with.
    long = run(version, {"sleep": 11})
    assert long["env"] == first["env"] and long["key"] == first["key"], long

    # Before the credentials expire the provisioned environment is replaced by a new one,
    # initialized as provisioned, with new credentials that work.
    renewed = wait_for(lambda: (lambda g: g if g["key"] != first["key"] else None)(run(version)),
                       timeout=LIFETIME + 10, interval=0.5, what="a renewed provisioned environment")
    assert renewed["env"] != first["env"] and renewed["init"] == "provisioned-concurrency"
    assert works(renewed)
    config = lam.get_provisioned_concurrency_config(FunctionName=fn, Qualifier=version)
    assert (config["Status"], config["AllocatedProvisionedConcurrentExecutions"]) == ("READY", 1), config
    # On-demand environments too get new credentials (warm ones with the old are not reused).
    later = wait_for(lambda: (lambda g: g if g["key"] != on_demand["key"] else None)(run("$LATEST")),
                     timeout=LIFETIME + 10, interval=0.5, what="renewed on-demand credentials")
    assert works(later)

    # The old credentials expire as they said; the new ones outlive a restart until then.
    def expired(got: dict) -> bool:
        try:
            with_creds(s.endpoint, "sts", creds(got)).get_caller_identity()
            return False
        except ClientError as e:
            assert e.response["Error"]["Code"] == "ExpiredToken", e.response["Error"]
            return True

    wait_for(lambda: expired(first), timeout=LIFETIME + 5, interval=0.5, what="the first credentials to expire")
    s.restart()
    assert works(renewed)
    wait_for(lambda: expired(renewed), timeout=LIFETIME + 5, interval=0.5, what="the renewed credentials to expire")

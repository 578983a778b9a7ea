"""IAM and STS: users, access keys, roles, inline and managed policies over the query
protocol with boto3 and the aws CLI; a user's new key authenticates (Lambda, STS) until it is
made Inactive or deleted; AssumeRole follows the role's trust policy and its session
credentials authenticate (and may do what their identity policies allow; authorization itself
is tested in test_authz_services.py). Exact answers recorded from AWS are listed in
tests/e2e/data/aws-answers/iam-sts.md."""

import json
import os
import subprocess
import urllib.parse

import pytest
from botocore.exceptions import ClientError

from helpers import ACCOUNT, REGION, boto_client, client_error, unique

TRUST_LAMBDA = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
ALLOW_LOGS = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "logs:*", "Resource": "*"}]}


@pytest.fixture(scope="module")
def iam(server):
    return boto_client("iam", server.endpoint)


@pytest.fixture(scope="module")
def sts(server):
    return boto_client("sts", server.endpoint)


def client_with(server, service, key, secret, token=None):
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        service,
        endpoint_url=server.endpoint,
        region_name=REGION,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=Config(retries={"max_attempts": 0}),
    )


def make_user_with_key(iam, prefix="u"):
    name = unique(prefix)
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return name, key


def test_admin_is_the_account_root(iam, sts):
    ident = sts.get_caller_identity()
    assert (ident["Account"], ident["Arn"], ident["UserId"]) == (ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root", ACCOUNT)
    user = iam.get_user()["User"]
    assert user["Arn"] == f"arn:aws:iam::{ACCOUNT}:root" and user["UserId"] == ACCOUNT and "UserName" not in user


def test_users_lifecycle_and_errors(iam):
    name = unique("user")
    created = iam.create_user(UserName=name, Path="/team/")["User"]
    assert created["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/team/{name}"
    assert created["UserId"].startswith("AIDA") and len(created["UserId"]) == 20
    assert created["Path"] == "/team/" and created["CreateDate"]
    assert iam.get_user(UserName=name)["User"]["UserId"] == created["UserId"]
    assert name in [u["UserName"] for u in iam.list_users(PathPrefix="/team/")["Users"]]

    with pytest.raises(ClientError) as e:
        iam.create_user(UserName=name)
    assert client_error(e) == ("EntityAlreadyExists", 409, f"User with name {name} already exists.")
    with pytest.raises(ClientError) as e:
        iam.get_user(UserName="non-existent-user")
    assert client_error(e) == ("NoSuchEntity", 404, "The user with name non-existent-user cannot be found.")

    key = iam.create_access_key(UserName=name)["AccessKey"]
    assert key["AccessKeyId"].startswith("AKIA") and len(key["AccessKeyId"]) == 20 and len(key["SecretAccessKey"]) == 40
    assert key["Status"] == "Active" and key["UserName"] == name
    listed = iam.list_access_keys(UserName=name)["AccessKeyMetadata"]
    assert [(k["AccessKeyId"], k["Status"]) for k in listed] == [(key["AccessKeyId"], "Active")]
    assert "SecretAccessKey" not in listed[0]
    iam.create_access_key(UserName=name)
    with pytest.raises(ClientError) as e:
        iam.create_access_key(UserName=name)
    assert client_error(e) == ("LimitExceeded", 409, "Cannot exceed quota for AccessKeysPerUser: 2")
    with pytest.raises(ClientError) as e:
        iam.delete_user(UserName=name)
    assert client_error(e) == ("DeleteConflict", 409, "Cannot delete entity, must delete access keys first.")
    for k in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:
        iam.delete_access_key(UserName=name, AccessKeyId=k["AccessKeyId"])
    iam.put_user_policy(UserName=name, PolicyName="logs", PolicyDocument=json.dumps(ALLOW_LOGS))
    assert iam.list_user_policies(UserName=name)["PolicyNames"] == ["logs"]
    assert iam.get_user_policy(UserName=name, PolicyName="logs")["PolicyDocument"] == ALLOW_LOGS
    with pytest.raises(ClientError) as e:
        iam.delete_user(UserName=name)
    assert client_error(e) == ("DeleteConflict", 409, "Cannot delete entity, must delete policies first.")
    iam.delete_user_policy(UserName=name, PolicyName="logs")
    basic = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    iam.attach_user_policy(UserName=name, PolicyArn=basic)
    assert iam.list_attached_user_policies(UserName=name)["AttachedPolicies"] == [
        {"PolicyName": "AWSLambdaBasicExecutionRole", "PolicyArn": basic}
    ]
    iam.detach_user_policy(UserName=name, PolicyArn=basic)
    iam.delete_user(UserName=name)
    with pytest.raises(ClientError) as e:
        iam.delete_user(UserName=name)
    assert client_error(e)[:2] == ("NoSuchEntity", 404)


def test_roles_policies_and_documents(iam):
    name = unique("role")
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST_LAMBDA), Description="d")["Role"]
    assert role["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/{name}" and role["RoleId"].startswith("AROA")
    # botocore decodes the URL-encoded document IAM answers with.
    assert role["AssumeRolePolicyDocument"] == TRUST_LAMBDA
    got = iam.get_role(RoleName=name)["Role"]
    assert got["MaxSessionDuration"] == 3600 and got["Description"] == "d"
    assert name in [r["RoleName"] for r in iam.list_roles()["Roles"]]
    iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(ALLOW_LOGS))
    assert iam.get_role_policy(RoleName=name, PolicyName="p")["PolicyDocument"] == ALLOW_LOGS
    assert iam.list_role_policies(RoleName=name)["PolicyNames"] == ["p"]
    with pytest.raises(ClientError) as e:
        iam.get_role_policy(RoleName=name, PolicyName="q")
    assert client_error(e) == ("NoSuchEntity", 404, "The role policy with name q cannot be found.")

    pname = unique("pol")
    pol = iam.create_policy(PolicyName=pname, PolicyDocument=json.dumps(ALLOW_LOGS))["Policy"]
    assert pol["Arn"] == f"arn:aws:iam::{ACCOUNT}:policy/{pname}" and pol["DefaultVersionId"] == "v1"
    iam.attach_role_policy(RoleName=name, PolicyArn=pol["Arn"])
    assert iam.get_policy(PolicyArn=pol["Arn"])["Policy"]["AttachmentCount"] == 1
    assert iam.get_policy_version(PolicyArn=pol["Arn"], VersionId="v1")["PolicyVersion"]["Document"] == ALLOW_LOGS
    assert [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]] == [pol["Arn"]]
    assert pname in [p["PolicyName"] for p in iam.list_policies(Scope="Local")["Policies"]]
    aws = {p["Arn"] for p in iam.list_policies(Scope="AWS")["Policies"]}
    assert "arn:aws:iam::aws:policy/AdministratorAccess" in aws and not any(pname in a for a in aws)
    admin = iam.get_policy_version(PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess", VersionId="v1")
    assert admin["PolicyVersion"]["Document"]["Statement"][0]["Action"] == "*"

    with pytest.raises(ClientError) as e:
        iam.delete_policy(PolicyArn=pol["Arn"])
    assert client_error(e) == ("DeleteConflict", 409, "Cannot delete a policy attached to entities.")
    with pytest.raises(ClientError) as e:
        iam.delete_role(RoleName=name)
    assert client_error(e) == ("DeleteConflict", 409, "Cannot delete entity, must delete policies first.")
    missing = f"arn:aws:iam::{ACCOUNT}:policy/{pname}123"
    with pytest.raises(ClientError) as e:
        iam.attach_role_policy(RoleName=name, PolicyArn=missing)
    assert client_error(e) == ("NoSuchEntity", 404, f"Policy {missing} does not exist or is not attachable.")
    with pytest.raises(ClientError) as e:
        iam.delete_policy(PolicyArn=f"arn:aws:iam::{ACCOUNT}:policy/non-existent-policy")
    assert client_error(e) == ("NoSuchEntity", 404, f"Policy arn:aws:iam::{ACCOUNT}:policy/non-existent-policy was not found.")
    iam.detach_role_policy(RoleName=name, PolicyArn=pol["Arn"])
    iam.delete_policy(PolicyArn=pol["Arn"])
    iam.delete_role_policy(RoleName=name, PolicyName="p")
    iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(TRUST_LAMBDA))
    iam.delete_role(RoleName=name)
    with pytest.raises(ClientError) as e:
        iam.get_role(RoleName=name)
    assert client_error(e) == ("NoSuchEntity", 404, f"The role with name {name} cannot be found.")


@pytest.mark.parametrize(
    "call, document, message",
    [
        ("role", "{not json", "This policy contains invalid Json"),
        ("role", json.dumps(ALLOW_LOGS), "Has prohibited field Resource"),
        ("inline", json.dumps({"Statement": [{"Effect": "Allow", "Action": "logs:*", "Resource": "*"}]}),
         "Policy document must be version 2012-10-17 or greater."),
        ("inline", json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*"}]}),
         "Policy statement must contain actions."),
        ("managed", json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "logs:*", "Resource": "*",
                                                                         "Principal": "*"}]}),
         "Policy document should not specify a principal."),
    ],
)
def test_malformed_policy_documents(iam, call, document, message):
    role = unique("mal")
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(TRUST_LAMBDA))
    try:
        with pytest.raises(ClientError) as e:
            if call == "role":
                iam.create_role(RoleName=unique("mal"), AssumeRolePolicyDocument=document)
            elif call == "inline":
                iam.put_role_policy(RoleName=role, PolicyName="p", PolicyDocument=document)
            else:
                iam.create_policy(PolicyName=unique("mal"), PolicyDocument=document)
        assert client_error(e) == ("MalformedPolicyDocument", 400, message)
    finally:
        iam.delete_role(RoleName=role)


# What the users and sessions below call, besides GetCallerIdentity (which needs nothing).
ALLOW_LISTING_AND_SELF = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["lambda:ListFunctions", "iam:GetUser"], "Resource": "*"}],
}


def test_a_users_key_authenticates_until_inactive_or_deleted(server, iam):
    name, key = make_user_with_key(iam)
    iam.put_user_policy(UserName=name, PolicyName="list", PolicyDocument=json.dumps(ALLOW_LISTING_AND_SELF))
    lam = client_with(server, "lambda", key["AccessKeyId"], key["SecretAccessKey"])
    assert "Functions" in lam.list_functions()
    sts = client_with(server, "sts", key["AccessKeyId"], key["SecretAccessKey"])
    ident = sts.get_caller_identity()
    user = iam.get_user(UserName=name)["User"]
    assert (ident["Arn"], ident["UserId"], ident["Account"]) == (user["Arn"], user["UserId"], ACCOUNT)
    # GetUser without a name answers about the caller.
    assert client_with(server, "iam", key["AccessKeyId"], key["SecretAccessKey"]).get_user()["User"]["UserName"] == name

    iam.update_access_key(UserName=name, AccessKeyId=key["AccessKeyId"], Status="Inactive")
    with pytest.raises(ClientError) as e:
        lam.list_functions()
    assert client_error(e) == ("UnrecognizedClientException", 403, "The security token included in the request is invalid.")
    with pytest.raises(ClientError) as e:
        sts.get_caller_identity()
    assert client_error(e) == ("InvalidClientTokenId", 403, "The security token included in the request is invalid.")
    iam.update_access_key(UserName=name, AccessKeyId=key["AccessKeyId"], Status="Active")
    assert "Functions" in lam.list_functions()
    iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    with pytest.raises(ClientError) as e:
        sts.get_caller_identity()
    assert client_error(e)[:2] == ("InvalidClientTokenId", 403)
    iam.delete_user_policy(UserName=name, PolicyName="list")
    iam.delete_user(UserName=name)


def test_assume_role_follows_the_trust_policy(server, iam):
    name, key = make_user_with_key(iam, "assumer")
    user_arn = f"arn:aws:iam::{ACCOUNT}:user/{name}"
    role = unique("target")
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": user_arn}, "Action": "sts:AssumeRole",
                       "Condition": {"StringEquals": {"sts:ExternalId": "secret-ext"}}}],
    }
    role_arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName=role, PolicyName="list", PolicyDocument=json.dumps(ALLOW_LISTING_AND_SELF))
    sts = client_with(server, "sts", key["AccessKeyId"], key["SecretAccessKey"])
    out = sts.assume_role(RoleArn=role_arn, RoleSessionName="s1", ExternalId="secret-ext", DurationSeconds=900)
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and creds["SessionToken"]
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/s1"
    session = client_with(server, "sts", creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    ident = session.get_caller_identity()
    assert ident["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/s1"
    assert ident["UserId"] == out["AssumedRoleUser"]["AssumedRoleId"]
    assert "Functions" in client_with(server, "lambda", creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]).list_functions()

    denied = f"User: {user_arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
    for kwargs in ({"ExternalId": "wrong"}, {}):
        with pytest.raises(ClientError) as e:
            sts.assume_role(RoleArn=role_arn, RoleSessionName="s2", **kwargs)
        assert client_error(e) == ("AccessDenied", 403, denied)
    # A role that does not trust the caller, and one that does not exist, look the same.
    other = unique("lambda-only")
    other_arn = iam.create_role(RoleName=other, AssumeRolePolicyDocument=json.dumps(TRUST_LAMBDA))["Role"]["Arn"]
    for arn in (other_arn, f"arn:aws:iam::{ACCOUNT}:role/{other}-missing"):
        with pytest.raises(ClientError) as e:
            sts.assume_role(RoleArn=arn, RoleSessionName="s3")
        assert client_error(e) == ("AccessDenied", 403, f"User: {user_arn} is not authorized to perform: sts:AssumeRole on resource: {arn}")
    with pytest.raises(ClientError) as e:
        sts.assume_role(RoleArn=role_arn, RoleSessionName="s4", ExternalId="secret-ext", DurationSeconds=7200)
    assert client_error(e) == ("ValidationError", 400, "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
    with pytest.raises(ClientError) as e:
        boto_client("sts", server.endpoint, validate=False).assume_role(RoleArn="nothing-valid-in-here", RoleSessionName="s5")
    assert client_error(e) == ("ValidationError", 400, "nothing-valid-in-here is invalid")

    # GetSessionToken: the user's own temporary credentials.
    tok = sts.get_session_token(DurationSeconds=900)["Credentials"]
    ident = client_with(server, "sts", tok["AccessKeyId"], tok["SecretAccessKey"], tok["SessionToken"]).get_caller_identity()
    assert ident["Arn"] == user_arn

    iam.delete_role_policy(RoleName=role, PolicyName="list")
    iam.delete_role(RoleName=role)
    iam.delete_role(RoleName=other)
    iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    iam.delete_user(UserName=name)


def test_unserved_and_unknown_actions(server):
    import http.client

    from test_auth import signed_headers

    body = b"Action=CreateGroup&Version=2010-05-08&GroupName=g"
    headers = signed_headers(server.endpoint, "iam", "POST", "/", {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, body)
    u = urllib.parse.urlsplit(server.endpoint)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.request("POST", "/", body=body, headers=headers)
    r = conn.getresponse()
    text = r.read().decode()
    assert r.status == 400 and "<Code>InvalidAction</Code>" in text and 'xmlns="https://iam.amazonaws.com/doc/2010-05-08/"' in text


def test_aws_cli_user_key_flow(aws_cli, server, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8",
        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(home / "no-config"), "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true", "AWS_MAX_ATTEMPTS": "1",
    }

    def aws(*args, **extra):
        cp = subprocess.run([aws_cli, "--endpoint-url", server.endpoint, "--output", "json", *args],
                            env={**env, **extra}, capture_output=True, timeout=120)
        assert cp.returncode == 0, cp.stderr.decode()
        return json.loads(cp.stdout or b"{}")

    name = unique("cli")
    assert aws("iam", "create-user", "--user-name", name)["User"]["UserName"] == name
    key = aws("iam", "create-access-key", "--user-name", name)["AccessKey"]
    ident = aws("sts", "get-caller-identity", AWS_ACCESS_KEY_ID=key["AccessKeyId"], AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"])
    assert ident["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/{name}"
    aws("iam", "delete-access-key", "--user-name", name, "--access-key-id", key["AccessKeyId"])
    aws("iam", "delete-user", "--user-name", name)

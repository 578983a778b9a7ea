"""Multiple accounts on one server, as AWS Organizations makes them: the first account
creates an organization and member accounts; each member account starts with the role
`OrganizationAccountAccessRole`, which the management account's administrators assume with
STS to work in it. Resources are per account (the same function or queue name in two
accounts are two resources), and another account's resource is reachable only where both
its resource policy and the caller's own policies allow it. Accounts, their resources and
their sessions outlive a restart."""

from __future__ import annotations

import io
import json
import zipfile

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from helpers import ACCOUNT, REGION, TRUST_LAMBDA, boto_client, client_error, create_function, http_request, make_zip, unique, url_id

ECHO_PY = """
import os
def handler(event, context):
    return {"account": context.invoked_function_arn.split(":")[4], "tag": os.environ.get("TAG")}
"""

ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"


def client(endpoint: str, service: str, creds: dict):
    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds.get("SessionToken"),
        config=Config(retries={"max_attempts": 0}),
    )


def user_key(iam, *, admin: bool) -> tuple[str, dict]:
    name = unique("acct-user")
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    if admin:
        iam.attach_user_policy(UserName=name, PolicyArn=ADMIN)
    return arn, iam.create_access_key(UserName=name)["AccessKey"]


def member_account(endpoint: str, org) -> str:
    status = org.create_account(Email=f"{unique('team')}@example.com", AccountName="team")["CreateAccountStatus"]
    assert status["State"] == "SUCCEEDED", status
    return status["AccountId"]


def assume_into(endpoint: str, ops_key: dict, account: str) -> dict:
    sts = client(endpoint, "sts", ops_key)
    return sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole", RoleSessionName="ops")["Credentials"]


def function_in(endpoint: str, creds: dict | None, name: str, tag: str) -> str:
    """A Python echo function `name` (with its own execution role) in the account of `creds`
    (None: the management account's administrator)."""
    iam = client(endpoint, "iam", creds) if creds else boto_client("iam", endpoint)
    lam = client(endpoint, "lambda", creds) if creds else boto_client("lambda", endpoint)
    role = unique("acct-fn")
    role_arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(TRUST_LAMBDA))["Role"]["Arn"]
    fn = create_function(lam, name, "python3.11", "index.handler", make_zip({"index.py": ECHO_PY}), Role=role_arn,
                         Environment={"Variables": {"TAG": tag}})
    return fn.config["FunctionArn"]


def invoke_json(lam, name: str) -> dict:
    r = lam.invoke(FunctionName=name, Payload=b"{}")
    assert "FunctionError" not in r, r["Payload"].read()
    return json.loads(r["Payload"].read())


def test_organization_accounts_and_their_errors(server_factory, aws_cli, tmp_path):
    s = server_factory()
    org = boto_client("organizations", s.endpoint)
    with pytest.raises(ClientError) as e:
        org.create_account(Email="a@example.com", AccountName="a")
    assert client_error(e) == ("AWSOrganizationsNotInUseException", 400, "Your account is not a member of an organization.")
    with pytest.raises(ClientError) as e:
        org.describe_organization()
    assert client_error(e)[0] == "AWSOrganizationsNotInUseException"

    o = org.create_organization(FeatureSet="ALL")["Organization"]
    assert o["Id"].startswith("o-") and o["MasterAccountId"] == ACCOUNT
    assert o["Arn"] == f"arn:aws:organizations::{ACCOUNT}:organization/{o['Id']}"
    with pytest.raises(ClientError) as e:
        org.create_organization()
    assert client_error(e)[0] == "AlreadyInOrganizationException"

    # The aws CLI makes an account just the same.
    aws = __import__("helpers").aws_cli_runner(aws_cli, s.endpoint, tmp_path / "home")
    cp = aws("organizations", "create-account", "--email", "cli@example.com", "--account-name", "from-cli")
    assert cp.returncode == 0, cp.err
    made = json.loads(cp.out)["CreateAccountStatus"]
    assert made["State"] == "SUCCEEDED" and len(made["AccountId"]) == 12 and made["Id"].startswith("car-")
    account = made["AccountId"]
    assert org.describe_create_account_status(CreateAccountRequestId=made["Id"])["CreateAccountStatus"]["AccountId"] == account
    # The same email again fails the request, not the call.
    again = org.create_account(Email="CLI@example.com", AccountName="twice")["CreateAccountStatus"]
    assert (again["State"], again["FailureReason"]) == ("FAILED", "EMAIL_ALREADY_EXISTS")
    assert "AccountId" not in again
    with pytest.raises(ClientError) as e:
        org.create_account(Email="not-an-email", AccountName="x")
    assert client_error(e)[:2] == ("InvalidInputException", 400)

    accounts = org.list_accounts()["Accounts"]
    assert [a["Id"] for a in accounts] == [ACCOUNT, account]
    assert accounts[1]["Name"] == "from-cli" and accounts[1]["JoinedMethod"] == "CREATED" and accounts[1]["Status"] == "ACTIVE"
    assert org.describe_account(AccountId=account)["Account"]["Email"] == "cli@example.com"
    with pytest.raises(ClientError) as e:
        org.describe_account(AccountId="123456789012")
    assert client_error(e)[0] == "AccountNotFoundException"
    statuses = org.list_create_account_status(States=["FAILED"])["CreateAccountStatuses"]
    assert [x["Id"] for x in statuses] == [again["Id"]]

    # The new account's role: not for root (as on AWS), for the management account's admins.
    role = f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole"
    with pytest.raises(ClientError) as e:
        boto_client("sts", s.endpoint).assume_role(RoleArn=role, RoleSessionName="root")
    assert client_error(e)[0] == "AccessDenied"
    _, ops = user_key(boto_client("iam", s.endpoint), admin=True)
    creds = assume_into(s.endpoint, ops, account)
    me = client(s.endpoint, "sts", creds).get_caller_identity()
    assert me["Account"] == account
    assert me["Arn"] == f"arn:aws:sts::{account}:assumed-role/OrganizationAccountAccessRole/ops"
    # A user without permissions in the management account cannot, whatever the trust says.
    _, limited = user_key(boto_client("iam", s.endpoint), admin=False)
    with pytest.raises(ClientError) as e:
        assume_into(s.endpoint, limited, account)
    assert client_error(e)[0] == "AccessDenied"
    # A member account sees its organization but does not manage it.
    member_org = client(s.endpoint, "organizations", creds)
    assert member_org.describe_organization()["Organization"]["Id"] == o["Id"]
    with pytest.raises(ClientError) as e:
        member_org.list_accounts()
    assert client_error(e)[0] == "AccessDeniedException"


def test_resources_are_per_account_and_cross_account_needs_both_policies(server_factory):
    s = server_factory()
    org = boto_client("organizations", s.endpoint)
    org.create_organization()
    account = member_account(s.endpoint, org)
    _, ops = user_key(boto_client("iam", s.endpoint), admin=True)
    creds = assume_into(s.endpoint, ops, account)

    name = unique("same-name")
    home_arn = function_in(s.endpoint, None, name, "management")
    member_arn = function_in(s.endpoint, creds, name, "member")
    assert home_arn == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    assert member_arn == f"arn:aws:lambda:{REGION}:{account}:function:{name}"
    admin_lam = boto_client("lambda", s.endpoint)
    member_lam = client(s.endpoint, "lambda", creds)
    assert invoke_json(admin_lam, name) == {"account": ACCOUNT, "tag": "management"}
    assert invoke_json(member_lam, name) == {"account": account, "tag": "member"}
    assert [f["FunctionName"] for f in member_lam.list_functions()["Functions"]] == [name]
    # Its code downloads from its own account's link.
    status, _, body = http_request(member_lam.get_function(FunctionName=name)["Code"]["Location"])
    assert status == 200 and zipfile.ZipFile(io.BytesIO(body)).read("index.py").decode() == ECHO_PY
    # Each account's IAM is its own: the member's roles are not the management account's.
    member_roles = {r["RoleName"] for r in client(s.endpoint, "iam", creds).list_roles()["Roles"]}
    assert "OrganizationAccountAccessRole" in member_roles and "nimbus-e2e" not in member_roles
    # Queues of one name in two accounts are two queues.
    q = unique("q")
    home_q = boto_client("sqs", s.endpoint).create_queue(QueueName=q)["QueueUrl"]
    member_sqs = client(s.endpoint, "sqs", creds)
    member_q = member_sqs.create_queue(QueueName=q)["QueueUrl"]
    assert f"/{account}/{q}" in member_q and home_q != member_q
    member_sqs.send_message(QueueUrl=member_q, MessageBody="for the member")
    assert "Messages" not in boto_client("sqs", s.endpoint).receive_message(QueueUrl=home_q, WaitTimeSeconds=0)

    # Cross-account: the management account's admin user may not invoke the member's
    # function until the function's policy names that account ...
    ops_lam = client(s.endpoint, "lambda", ops)
    with pytest.raises(ClientError) as e:
        ops_lam.invoke(FunctionName=member_arn, Payload=b"{}")
    code, status, message = client_error(e)
    assert (code, status) == ("AccessDeniedException", 403)
    assert f"on resource: {member_arn} because no resource-based policy allows the lambda:InvokeFunction action" in message
    with pytest.raises(ClientError) as e:
        ops_lam.get_function(FunctionName=member_arn)
    assert client_error(e)[0] == "AccessDeniedException"
    member_lam.add_permission(FunctionName=name, StatementId="from-management", Action="lambda:InvokeFunction", Principal=ACCOUNT)
    assert invoke_json(ops_lam, member_arn) == {"account": account, "tag": "member"}
    # ... and then only for what the policy grants, and only for whom the caller's own
    # account allows it.
    with pytest.raises(ClientError) as e:
        ops_lam.delete_function(FunctionName=member_arn)
    assert client_error(e)[0] == "AccessDeniedException"
    _, limited = user_key(boto_client("iam", s.endpoint), admin=False)
    with pytest.raises(ClientError) as e:
        client(s.endpoint, "lambda", limited).invoke(FunctionName=member_arn, Payload=b"{}")
    code, _, message = client_error(e)
    assert code == "AccessDeniedException" and "because no identity-based policy allows" in message
    # The same for a queue: its policy must let the other account send.
    ops_sqs = client(s.endpoint, "sqs", ops)
    with pytest.raises(ClientError) as e:
        ops_sqs.send_message(QueueUrl=member_q, MessageBody="x")
    assert client_error(e)[0] in ("AccessDenied", "AccessDeniedException")
    queue_arn = f"arn:aws:sqs:{REGION}:{account}:{q}"
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                                                      "Action": "sqs:SendMessage", "Resource": queue_arn}]}
    member_sqs.set_queue_attributes(QueueUrl=member_q, Attributes={"Policy": json.dumps(policy)})
    ops_sqs.send_message(QueueUrl=member_q, MessageBody="from the management account")
    got = member_sqs.receive_message(QueueUrl=member_q, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    assert sorted(m["Body"] for m in got) == ["for the member", "from the management account"]

    # A public function URL of the member's function is served from the member's account.
    member_lam.add_permission(FunctionName=name, StatementId="url", Action="lambda:InvokeFunctionUrl", Principal="*",
                              FunctionUrlAuthType="NONE")
    url = member_lam.create_function_url_config(FunctionName=name, AuthType="NONE")["FunctionUrl"]
    status, _, body = http_request(f"{s.endpoint}/_aws/lambda-url/{url_id(url)}/", "POST", b"{}")
    assert status == 200 and json.loads(body) == {"account": account, "tag": "member"}

    # Everything outlives a restart: the account, its function, the session's credentials.
    s.restart()
    assert [a["Id"] for a in boto_client("organizations", s.endpoint).list_accounts()["Accounts"]] == [ACCOUNT, account]
    assert invoke_json(client(s.endpoint, "lambda", creds), name) == {"account": account, "tag": "member"}
    assert invoke_json(boto_client("lambda", s.endpoint), name) == {"account": ACCOUNT, "tag": "management"}
    assert (s.data_dir / "accounts" / account / "nimbus.db").exists()

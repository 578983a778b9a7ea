"""Authorization of Lambda calls: IAM users and role sessions may do what their identity
policies or the function's resource policy allow and get AWS's AccessDeniedException (403,
naming principal, action and resource) otherwise; an explicit deny wins; a function's
execution role must exist and trust Lambda, and the caller must be allowed to pass it; a
function's own role credentials carry exactly its role's permissions."""

import json

import pytest
from botocore.exceptions import ClientError

from helpers import ACCOUNT, REGION, ROLE, TRUST_LAMBDA, boto_client, client_error, create_function, make_zip, unique

PY_ECHO = "def handler(event, context):\n    return event\n"


def client_with(server, service, key, secret, token=None):
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        service, endpoint_url=server.endpoint, region_name=REGION, aws_access_key_id=key,
        aws_secret_access_key=secret, aws_session_token=token, config=Config(retries={"max_attempts": 0}),
    )


def policy(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def fn_arn(name):
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


@pytest.fixture(scope="module")
def iam(server):
    return boto_client("iam", server.endpoint)


@pytest.fixture(scope="module")
def lam(server):
    return server.lambda_client()


@pytest.fixture(scope="module")
def two_functions(lam):
    a, b = unique("authz-a"), unique("authz-b")
    for name in (a, b):
        create_function(lam, name, "python3.11", "index.handler", make_zip({"index.py": PY_ECHO}))
    return a, b


def user(server, iam, *statements):
    """A new IAM user with `statements` as its inline policy, and a Lambda client signing as it."""
    name = unique("authz-user")
    iam.create_user(UserName=name)
    if statements:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=policy(*statements))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return name, client_with(server, "lambda", key["AccessKeyId"], key["SecretAccessKey"])


def denied(fn, principal, action, resource, why="because no identity-based policy allows the {action} action"):
    with pytest.raises(ClientError) as e:
        fn()
    code, status, message = client_error(e)
    want = f"User: {principal} is not authorized to perform: {action}"
    if resource != "*":
        want += f" on resource: {resource}"
    want += " " + why.format(action=action)
    assert (code, status, message) == ("AccessDeniedException", 403, want)


def test_a_user_may_do_what_its_policy_allows_and_nothing_else(server, iam, two_functions):
    a, b = two_functions
    name, lam = user(server, iam, {"Effect": "Allow", "Action": ["lambda:GetFunction", "lambda:InvokeFunction"], "Resource": fn_arn(a)})
    me = f"arn:aws:iam::{ACCOUNT}:user/{name}"
    assert lam.get_function(FunctionName=a)["Configuration"]["FunctionName"] == a
    assert json.load(lam.invoke(FunctionName=a, Payload=b'{"x": 1}')["Payload"]) == {"x": 1}
    denied(lambda: lam.get_function(FunctionName=b), me, "lambda:GetFunction", fn_arn(b))
    denied(lambda: lam.invoke(FunctionName=b, Payload=b"{}"), me, "lambda:InvokeFunction", fn_arn(b))
    denied(lambda: lam.list_functions(), me, "lambda:ListFunctions", "*")
    denied(lambda: lam.delete_function(FunctionName=a), me, "lambda:DeleteFunction", fn_arn(a))
    # A qualified call is a call on the qualified ARN, which `Resource: <function ARN>` does not match.
    denied(lambda: lam.get_function(FunctionName=a, Qualifier="$LATEST"), me, "lambda:GetFunction", fn_arn(a) + ":$LATEST")


def test_a_user_without_policies_is_denied_everything(server, iam, two_functions):
    name, lam = user(server, iam)
    me = f"arn:aws:iam::{ACCOUNT}:user/{name}"
    denied(lambda: lam.list_functions(), me, "lambda:ListFunctions", "*")
    denied(lambda: lam.get_account_settings(), me, "lambda:GetAccountSettings", "*")


def test_an_explicit_deny_wins(server, iam, two_functions):
    a, _ = two_functions
    name, lam = user(
        server, iam,
        {"Effect": "Allow", "Action": "lambda:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "lambda:Delete*", "Resource": fn_arn(a)},
    )
    me = f"arn:aws:iam::{ACCOUNT}:user/{name}"
    assert any(f["FunctionName"] == a for f in lam.list_functions()["Functions"])
    denied(lambda: lam.delete_function(FunctionName=a), me, "lambda:DeleteFunction", fn_arn(a),
           why="with an explicit deny in an identity-based policy")
    assert lam.get_function(FunctionName=a)


def test_the_functions_resource_policy_lets_a_named_user_invoke(server, iam, lam, two_functions):
    _, b = two_functions
    name, as_user = user(server, iam)
    other, as_other = user(server, iam)
    me = f"arn:aws:iam::{ACCOUNT}:user/{name}"
    lam.add_permission(FunctionName=b, StatementId=unique("s"), Action="lambda:InvokeFunction", Principal=me)
    assert json.load(as_user.invoke(FunctionName=b, Payload=b'{"via": "policy"}')["Payload"]) == {"via": "policy"}
    # The statement names that user and that action only.
    denied(lambda: as_user.get_function(FunctionName=b), me, "lambda:GetFunction", fn_arn(b))
    denied(lambda: as_other.invoke(FunctionName=b, Payload=b"{}"), f"arn:aws:iam::{ACCOUNT}:user/{other}",
           "lambda:InvokeFunction", fn_arn(b))


def test_the_execution_role_must_exist_and_trust_lambda(server, iam, lam):
    not_assumable = ("InvalidParameterValueException", 400, "The role defined for the function cannot be assumed by Lambda.")
    ec2_only = unique("ec2-role")
    iam.create_role(RoleName=ec2_only, AssumeRolePolicyDocument=policy(
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}))
    for role in (f"arn:aws:iam::{ACCOUNT}:role/{unique('missing')}", f"arn:aws:iam::{ACCOUNT}:role/{ec2_only}"):
        name = unique("norole")
        with pytest.raises(ClientError) as e:
            lam.create_function(FunctionName=name, Runtime="python3.11", Handler="index.handler", Role=role,
                                Code={"ZipFile": make_zip({"index.py": PY_ECHO})})
        assert client_error(e) == not_assumable
        with pytest.raises(ClientError):
            lam.get_function(FunctionName=name)  # nothing was half-created
    fn = unique("rerole")
    create_function(lam, fn, "python3.11", "index.handler", make_zip({"index.py": PY_ECHO}))
    with pytest.raises(ClientError) as e:
        lam.update_function_configuration(FunctionName=fn, Role=f"arn:aws:iam::{ACCOUNT}:role/{ec2_only}")
    assert client_error(e) == not_assumable
    assert lam.get_function_configuration(FunctionName=fn)["Role"] == ROLE
    # Once the role trusts Lambda, it is accepted.
    iam.update_assume_role_policy(RoleName=ec2_only, PolicyDocument=json.dumps(TRUST_LAMBDA))
    lam.update_function_configuration(FunctionName=fn, Role=f"arn:aws:iam::{ACCOUNT}:role/{ec2_only}")


def test_creating_a_function_needs_pass_role(server, iam):
    create = {"Effect": "Allow", "Action": ["lambda:CreateFunction", "lambda:GetFunction"], "Resource": "*"}
    name, lam = user(server, iam, create)
    fn = unique("passrole")
    kwargs = dict(FunctionName=fn, Runtime="python3.11", Handler="index.handler", Role=ROLE,
                  Code={"ZipFile": make_zip({"index.py": PY_ECHO})})
    denied(lambda: lam.create_function(**kwargs), f"arn:aws:iam::{ACCOUNT}:user/{name}", "iam:PassRole", ROLE)
    iam.put_user_policy(UserName=name, PolicyName="pass", PolicyDocument=policy(
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": ROLE,
         "Condition": {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}}))
    assert lam.create_function(**kwargs)["FunctionName"] == fn


SIGNED_CALLS = r'''
import datetime, hashlib, hmac, json, os, urllib.error, urllib.request

def call(path):
    env = os.environ
    key, secret, token, region = env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"], env["AWS_REGION"]
    url = env["AWS_ENDPOINT_URL"]
    host = url.split("//")[1]
    amz = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    scope = f"{amz[:8]}/{region}/lambda/aws4_request"
    signed = "host;x-amz-date;x-amz-security-token"
    canonical = "\n".join(["GET", path, "", f"host:{host}", f"x-amz-date:{amz}", f"x-amz-security-token:{token}", "", signed,
                           hashlib.sha256(b"").hexdigest()])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    k = ("AWS4" + secret).encode()
    for part in (amz[:8], region, "lambda", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    headers = {"x-amz-date": amz, "x-amz-security-token": token,
               "Authorization": f"AWS4-HMAC-SHA256 Credential={key}/{scope}, SignedHeaders={signed}, Signature={signature}"}
    try:
        with urllib.request.urlopen(urllib.request.Request(url + path, headers=headers), timeout=5) as r:
            return r.status, r.headers.get("x-amzn-ErrorType"), json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("x-amzn-ErrorType"), json.load(e)

def handler(event, context):
    return [call(p) for p in event["paths"]]
'''


def test_a_function_acts_with_exactly_its_roles_permissions(server, iam, lam, two_functions):
    a, _ = two_functions
    role = unique("list-only")
    role_arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(TRUST_LAMBDA))["Role"]["Arn"]
    iam.put_role_policy(RoleName=role, PolicyName="list", PolicyDocument=policy(
        {"Effect": "Allow", "Action": "lambda:ListFunctions", "Resource": "*"}))
    fn = unique("inside")
    lam.create_function(FunctionName=fn, Runtime="python3.11", Handler="index.handler", Role=role_arn,
                        Code={"ZipFile": make_zip({"index.py": SIGNED_CALLS})})
    lam.get_waiter("function_active_v2").wait(FunctionName=fn, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    out = json.load(lam.invoke(FunctionName=fn, Payload=json.dumps(
        {"paths": ["/2015-03-31/functions/", f"/2015-03-31/functions/{a}"]}).encode())["Payload"])
    (list_status, _, listed), (get_status, get_error, got) = out
    assert list_status == 200 and any(f["FunctionName"] == a for f in listed["Functions"])
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{fn}"
    assert (get_status, get_error) == (403, "AccessDeniedException")
    assert (got.get("message") or got.get("Message")) == (f"User: {session} is not authorized to perform: lambda:GetFunction on resource: {fn_arn(a)} "
                              "because no identity-based policy allows the lambda:GetFunction action")


def test_the_role_must_reach_queues_the_function_uses(server, iam, lam):
    """Lambda checks the execution role when a dead-letter queue, a destination or an SQS
    trigger is set, with AWS's InvalidParameterValueException texts."""
    sqs = server.sqs_client()
    queue_url = sqs.create_queue(QueueName=unique("role-q"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    role = unique("basic-role")
    role_arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(TRUST_LAMBDA))["Role"]["Arn"]
    iam.attach_role_policy(RoleName=role, PolicyArn="arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole")
    fn = unique("role-fn")
    code = {"ZipFile": make_zip({"index.py": PY_ECHO})}

    def invalid(call, message):
        with pytest.raises(ClientError) as e:
            call()
        assert client_error(e) == ("InvalidParameterValueException", 400, message)

    invalid(lambda: lam.create_function(FunctionName=fn, Runtime="python3.11", Handler="index.handler", Role=role_arn, Code=code,
                                        DeadLetterConfig={"TargetArn": queue_arn}),
            "The provided execution role does not have permissions to call SendMessage on SQS")
    lam.create_function(FunctionName=fn, Runtime="python3.11", Handler="index.handler", Role=role_arn, Code=code)
    lam.get_waiter("function_active_v2").wait(FunctionName=fn, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    invalid(lambda: lam.put_function_event_invoke_config(FunctionName=fn, DestinationConfig={"OnFailure": {"Destination": queue_arn}}),
            f"The function's execution role does not have permissions to call SendMessage on {queue_arn}")
    invalid(lambda: lam.create_event_source_mapping(FunctionName=fn, EventSourceArn=queue_arn),
            "The provided execution role does not have permissions to call ReceiveMessage on SQS")
    assert lam.list_event_source_mappings(FunctionName=fn)["EventSourceMappings"] == []

    # With the permissions, each is accepted.
    iam.attach_role_policy(RoleName=role, PolicyArn="arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole")
    iam.put_role_policy(RoleName=role, PolicyName="send", PolicyDocument=policy(
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": queue_arn}))
    lam.update_function_configuration(FunctionName=fn, DeadLetterConfig={"TargetArn": queue_arn})
    lam.get_waiter("function_updated_v2").wait(FunctionName=fn, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    lam.put_function_event_invoke_config(FunctionName=fn, DestinationConfig={"OnFailure": {"Destination": queue_arn}})
    uuid = lam.create_event_source_mapping(FunctionName=fn, EventSourceArn=queue_arn, Enabled=False)["UUID"]
    lam.delete_event_source_mapping(UUID=uuid)

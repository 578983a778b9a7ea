"""The AWS SDK for JavaScript v3 against Nimbus, with real SigV4 signing: the administrator,
an IAM user with a narrow policy, a role assumed through STS, and a function's own role from
inside the function (Node with the JS SDK from a layer, Python with boto3 from a layer).

The scripts are tests/e2e/js/*.mjs; they report every call's result or error (as the SDK
surfaces it: `err.name`, `err.message`, `err.$metadata.httpStatusCode`) and this module
checks them. The SDK is installed by `scripts/test` (npm ci in tests/e2e/js)."""

from __future__ import annotations

import base64
import io
import json
import os
import zipfile
from pathlib import Path

import pytest

from helpers import (ACCOUNT, ADMIN_KEY_ID, ADMIN_SECRET, REGION, ROLE, TRUST_LAMBDA, boto_client, create_function, make_zip,
                     run, unique)

JS = Path(__file__).parent / "js"
ADMIN = {"accessKeyId": ADMIN_KEY_ID, "secretAccessKey": ADMIN_SECRET}


@pytest.fixture(scope="module")
def node_sdk(node22) -> str:
    """The Node that runs the scripts (the SDK needs Node 20 or later; scripts/test's 22)."""
    if not (JS / "node_modules" / "@aws-sdk" / "client-lambda" / "package.json").is_file():
        pytest.fail(f"the AWS SDK for JavaScript is not installed in {JS / 'node_modules'}: "
                    "run scripts/test --setup-only", pytrace=False)
    return node22


@pytest.fixture(scope="module")
def js(node_sdk, server, tmp_path_factory):
    """js(script, **input) runs tests/e2e/js/<script>.mjs against the shared server and
    returns its report. A hermetic environment: no AWS variables, files or metadata."""
    home = tmp_path_factory.mktemp("js-home")

    def _run(script: str, **doc) -> dict:
        doc = {"endpoint": server.endpoint, "region": REGION, "credentials": ADMIN, **doc}
        arg = home / f"{script}-{unique('in')}.json"
        arg.write_text(json.dumps(doc))
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8",
            "AWS_CONFIG_FILE": str(home / "no-config"), "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        cp = run([node_sdk, str(JS / f"{script}.mjs"), str(arg)], env=env, timeout=90, cwd=JS)
        stdout, stderr = cp.stdout.decode(errors="replace"), cp.stderr.decode(errors="replace")
        assert cp.returncode == 0, f"{script}.mjs exited {cp.returncode}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        return json.loads(stdout.strip().splitlines()[-1])

    return _run


def ok(step: dict):
    assert "ok" in step, step
    return step["ok"]


def error(step: dict) -> tuple[str, str, int]:
    """(err.name, err.message, err.$metadata.httpStatusCode) of a failed call."""
    assert "error" in step, step
    e = step["error"]
    return e["name"], e["message"], e["status"]


NODE_ECHO = """
exports.handler = async (event, context) => ({
  got: event, greeting: process.env.GREETING, fn: context.functionName,
});
"""


def test_the_administrator(js, tmp_path):
    zip_file = tmp_path / "fn.zip"
    zip_file.write_bytes(make_zip({"index.js": NODE_ECHO}))
    name, queue = unique("js-admin"), unique("js-admin-q")
    r = js("admin", functionName=name, role=ROLE, runtime="nodejs22.x", zipFile=str(zip_file), queueName=queue)

    created = ok(r["create"])
    assert created["FunctionName"] == name
    assert created["FunctionArn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    assert created["$metadata"]["httpStatusCode"] == 201
    assert ok(r["active"]) == "SUCCESS"
    inv = ok(r["invoke"])
    assert (inv["StatusCode"], inv["FunctionError"], inv["ExecutedVersion"]) == (200, None, "$LATEST")
    assert inv["Payload"] == {"got": {"n": 41}, "greeting": "hello", "fn": name}
    assert "REPORT RequestId:" in inv["Log"]
    assert ok(r["invokeEvent"]) == {"StatusCode": 202, "Payload": None}  # no body, no Payload
    conf = ok(r["configuration"])
    assert (conf["Runtime"], conf["Handler"], conf["Role"], conf["State"]) == ("nodejs22.x", "index.handler", ROLE, "Active")
    assert conf["Environment"] == {"Variables": {"GREETING": "hello"}}
    got = ok(r["getFunction"])
    assert got["Configuration"]["FunctionName"] == name and got["Code"]["RepositoryType"] == "S3"

    url = ok(r["createQueue"])["QueueUrl"]
    assert url.endswith(f"/{ACCOUNT}/{queue}")
    assert ok(r["getQueueUrl"])["QueueUrl"] == url
    sent = ok(r["send"])
    assert sent["MessageId"] and sent["MD5OfMessageBody"]
    (msg,) = ok(r["receive"])["Messages"]
    assert msg["MessageId"] == sent["MessageId"] and msg["Body"] == "from the JS SDK"
    assert msg["MessageAttributes"] == {"kind": {"DataType": "String", "StringValue": "greeting"}}
    ok(r["deleteMessage"])

    me = ok(r["whoami"])
    assert (me["Account"], me["Arn"]) == (ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root")

    # Each protocol's errors reach the SDK as AWS's do: the exception's name, message, status.
    assert error(r["missingFunction"]) == (
        "ResourceNotFoundException", f"Function not found: arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}-missing", 404)
    assert error(r["missingQueue"]) == ("QueueDoesNotExist", "The specified queue does not exist.", 400)
    # IAM answers the code NoSuchEntity; the SDK names the error by its model's shape.
    assert error(r["missingUser"]) == ("NoSuchEntityException", f"The user with name {name}-missing cannot be found.", 404)
    assert r["missingUser"]["error"]["code"] == "NoSuchEntity"
    ok(r["deleteQueue"])
    ok(r["deleteFunction"])


PY_ECHO = "def handler(event, context):\n    return event\n"


@pytest.fixture(scope="module")
def targets(server):
    """Two functions and two queues; the narrow identities get one of each."""
    lam, sqs = server.lambda_client(), server.sqs_client()
    out = {}
    for which in ("allowed", "other"):
        name = unique(f"js-{which}")
        create_function(lam, name, "python3.11", "index.handler", make_zip({"index.py": PY_ECHO}))
        qname = unique(f"js-{which}-q")
        url = sqs.create_queue(QueueName=qname)["QueueUrl"]
        out[f"{which}Function"] = {"name": name, "arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"}
        out[f"{which}Queue"] = {"name": qname, "url": url, "arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{qname}"}
    return out


def received(server, queue_url: str) -> list[str]:
    """The bodies waiting in a queue (sent before: no need to wait for them)."""
    msgs = server.sqs_client().receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
    return [m["Body"] for m in msgs]


def lambda_denied(principal: str, action: str, resource: str | None) -> tuple[str, str, int]:
    on = f" on resource: {resource}" if resource else ""
    return ("AccessDeniedException", f"User: {principal} is not authorized to perform: {action}{on} "
            f"because no identity-based policy allows the {action} action", 403)


def sqs_denied(principal: str, queue_arn: str, action: str = "sqs:sendmessage") -> tuple[str, str, int]:
    """SQS's denial as the JS SDK and botocore surface it: the query-compatible code
    (x-amzn-query-error), the action lower-cased as SQS writes it."""
    return ("AccessDenied", f"User: {principal} is not authorized to perform: {action} on resource: {queue_arn} "
            f"because no identity-based policy allows the {action} action", 403)


# ---- an IAM user with a narrow policy -------------------------------------------------


@pytest.fixture(scope="module")
def narrow_user(js, targets) -> tuple[str, dict]:
    """A user allowed to invoke and read one function and send to one queue (made by the
    administrator with the JS IAM client), and the report of its calls."""
    name = unique("js-user")
    return f"arn:aws:iam::{ACCOUNT}:user/{name}", js("user", userName=name, **targets)


def test_a_user_gets_from_lambda_exactly_what_its_policy_grants(narrow_user, targets):
    me, r = narrow_user
    allowed, other = targets["allowedFunction"], targets["otherFunction"]
    assert ok(r["createUser"])["User"]["Arn"] == me
    ok(r["putPolicy"])
    key = ok(r["createKey"])["AccessKey"]
    assert key["Status"] == "Active" and key["AccessKeyId"].startswith("AKIA")
    assert ok(r["invokeAllowed"]) == {"StatusCode": 200, "Payload": {"by": me.rsplit("/", 1)[1]}}
    assert ok(r["configurationAllowed"])["FunctionName"] == allowed["name"]
    assert error(r["invokeOther"]) == lambda_denied(me, "lambda:InvokeFunction", other["arn"])
    assert error(r["getFunction"]) == lambda_denied(me, "lambda:GetFunction", allowed["arn"])
    assert error(r["listFunctions"]) == lambda_denied(me, "lambda:ListFunctions", None)


def test_a_user_gets_from_sqs_exactly_what_its_policy_grants(narrow_user, targets, server):
    me, r = narrow_user
    assert ok(r["sendAllowed"])
    assert error(r["sendOther"]) == sqs_denied(me, targets["otherQueue"]["arn"])
    assert received(server, targets["allowedQueue"]["url"]) == ["by the user"]
    assert received(server, targets["otherQueue"]["url"]) == []


def test_a_user_without_iam_permissions_is_denied_iam(narrow_user):
    me, r = narrow_user
    name, message, status = error(r["listUsers"])
    assert (name, status) == ("AccessDenied", 403)
    assert message.startswith(f"User: {me} is not authorized to perform: iam:ListUsers"), message


# ---- a role assumed through STS --------------------------------------------------------


@pytest.fixture(scope="module")
def assumed(js, targets) -> tuple[str, dict]:
    """A user that may assume a role that may invoke one function; the report of the
    session's calls."""
    role = unique("js-role")
    r = js("assume_role", userName=unique("js-assumer"), roleName=role, **targets)
    return f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/js-session", r


def test_a_role_assumed_with_the_js_sdk(assumed, targets):
    session, r = assumed
    assert error(r["assumeAsRoot"]) == ("AccessDenied", "Roles may not be assumed by root accounts.", 403)
    out = ok(r["assume"])
    assert out["AssumedRoleUser"]["Arn"] == session
    assert out["AssumedRoleUser"]["AssumedRoleId"] == f"{r['role']['RoleId']}:js-session"
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and creds["SessionToken"] and creds["Expiration"]
    assert ok(r["invokeAllowed"]) == {"StatusCode": 200, "Payload": {"as": "session"}}
    assert error(r["invokeOther"]) == lambda_denied(session, "lambda:InvokeFunction", targets["otherFunction"]["arn"])
    # The session's key without its token is no key at all.
    assert error(r["invokeWithoutToken"]) == (
        "UnrecognizedClientException", "The security token included in the request is invalid.", 403)


def test_anyone_may_ask_sts_who_they_are(narrow_user, assumed):
    """GetCallerIdentity needs no permission (AWS: "No permissions are required to perform
    this operation"): neither identity is granted sts:GetCallerIdentity."""
    me, r = narrow_user
    assert ok(r["whoami"])["Arn"] == me
    session, r = assumed
    assert ok(r["whoami"])["Arn"] == session


# ---- a function's own role, from inside the function ------------------------------------


@pytest.fixture(scope="module")
def function_role(server, targets) -> tuple[str, str]:
    """An execution role that may find and send to the allowed queue and do nothing else."""
    iam = boto_client("iam", server.endpoint)
    name = unique("js-fn-role")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST_LAMBDA))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="send-one", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["sqs:GetQueueUrl", "sqs:SendMessage"], "Resource": targets["allowedQueue"]["arn"]}],
    }))
    return name, arn


def node_layer_zip(packages: list[str]) -> bytes:
    """A layer of `packages` from tests/e2e/js/node_modules and everything they depend on,
    at nodejs/node_modules/ (where Lambda's Node runtimes look), with only the CommonJS
    builds: the SDK's export maps send Node (`node` condition) to dist-cjs, so dist-es and
    the type declarations (dist-types) are dead weight (1.2 MB of a 1.8 MB zip)."""
    modules = JS / "node_modules"
    seen: set[str] = set()
    todo = list(packages)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        manifest = json.loads((modules / name / "package.json").read_text())
        todo += [d for d in {**manifest.get("dependencies", {}), **manifest.get("optionalDependencies", {})}
                 if (modules / d).is_dir()]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(seen):
            for f in sorted((modules / name).rglob("*")):
                if f.is_file() and not {"dist-types", "dist-es"} & set(f.relative_to(modules / name).parts):
                    zf.write(f, "nodejs/node_modules/" + f.relative_to(modules).as_posix())
    return buf.getvalue()


def python_layer_zip(services: list[str]) -> bytes:
    """A layer of boto3 and what it needs from the test venv, at python/ (on the Python
    runtimes' path), with botocore's models of `services` only (botocore is ~30 MB with all
    of them; these are all a function here loads)."""
    from importlib import metadata
    from packaging.requirements import Requirement

    seen: set[str] = set()
    todo = ["boto3"]
    files: list = []
    while todo:
        name = todo.pop()
        dist = metadata.distribution(name)
        if dist.metadata["Name"].lower() in seen:
            continue
        seen.add(dist.metadata["Name"].lower())
        files += [(dist, f) for f in dist.files or []]
        for req in dist.requires or []:
            r = Requirement(req)
            if r.marker is None or r.marker.evaluate({"extra": ""}):
                todo.append(r.name)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for dist, f in files:
            parts = f.parts
            if parts[0] in ("..", "bin") or "__pycache__" in parts or parts[0].endswith(".dist-info"):
                continue
            if parts[:2] == ("botocore", "data") and len(parts) > 3 and parts[2] not in services:
                continue
            zf.write(dist.locate_file(f), "python/" + f.as_posix())
    return buf.getvalue()


def inside(server, targets, role_arn: str, runtime: str, handler_files: dict, layer: bytes, tag: str) -> dict:
    """Publishes `layer`, creates a function with it and `role_arn`, invokes it once and
    returns its report (the layer and function are deleted after)."""
    lam = server.lambda_client()
    layer_name = unique(f"sdk-{tag}")
    layer_arn = lam.publish_layer_version(LayerName=layer_name, Content={"ZipFile": layer},
                                          CompatibleRuntimes=[runtime])["LayerVersionArn"]
    name = unique(f"sdk-inside-{tag}")
    # 1769 MB: a whole core, as on AWS; an SDK's cold start on a fraction of one takes seconds.
    lam.create_function(FunctionName=name, Runtime=runtime, Handler="index.handler", Role=role_arn, Timeout=30,
                        MemorySize=1769, Layers=[layer_arn], Code={"ZipFile": make_zip(handler_files)})
    try:
        lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        event = {"allowedQueue": targets["allowedQueue"]["name"], "otherQueue": targets["otherQueue"]["name"],
                 "outsideUrl": targets["allowedQueue"]["url"], "body": f"from {tag}"}
        resp = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode(), LogType="Tail")
        body = resp["Payload"].read()
        log = base64.b64decode(resp.get("LogResult", "")).decode(errors="replace")
        assert "FunctionError" not in resp, f"{body!r}\n{log}"
        return {"name": name, "report": json.loads(body), "log": log,
                "received": received(server, targets["allowedQueue"]["url"]),
                "receivedOther": received(server, targets["otherQueue"]["url"])}
    finally:
        lam.delete_function(FunctionName=name)
        lam.delete_layer_version(LayerName=layer_name, VersionNumber=1)


def check_inside(server, targets, role: tuple[str, str], got: dict, tag: str):
    role_name, _ = role
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/{got['name']}"
    r = got["report"]
    assert r["endpoint"].startswith("http://") and r["endpoint"].endswith(f":{server.port}"), r
    assert r["keyInEnvironment"] == "ASIA", r  # the role's session key, from the environment
    assert ok(r["whoami"]) == session, got["log"]
    # The same URL as outside: asked through AWS_ENDPOINT_URL (the bridge's gateway, which
    # only environments reach), answered on the server's own address, which works everywhere.
    assert ok(r["urlAllowed"]) == targets["allowedQueue"]["url"], got["log"]
    assert targets["allowedQueue"]["url"] == f"http://127.0.0.1:{server.port}/{ACCOUNT}/{targets['allowedQueue']['name']}"
    assert error(r["urlOther"]) == sqs_denied(session, targets["otherQueue"]["arn"], "sqs:getqueueurl"), got["log"]
    assert ok(r["sendAllowed"]), got["log"]
    assert error(r["sendOther"]) == sqs_denied(session, targets["otherQueue"]["arn"]), got["log"]
    assert f"from {tag}" in got["received"] and got["receivedOther"] == []


@pytest.fixture(scope="module")
def node_inside(server, targets, function_role) -> dict:
    layer = node_layer_zip(["@aws-sdk/client-sqs", "@aws-sdk/client-sts"])
    assert len(layer) < 1 << 20, len(layer)
    return inside(server, targets, function_role[1], "nodejs22.x", {"index.js": (JS / "in_function.cjs").read_text()},
                  layer, "node")


def test_a_node_function_acts_with_its_role_through_the_js_sdk(server, targets, function_role, node_inside):
    check_inside(server, targets, function_role, node_inside, "node")


def test_a_node_function_can_use_a_queue_url_made_outside(node_inside):
    """The JS SDK's SQS client sends to the queue URL's host (useQueueUrlAsEndpoint): a URL
    made on the host names 127.0.0.1, which leads to the server inside the environment too."""
    r = node_inside["report"]
    assert ok(r["sendOutsideUrl"]), node_inside["log"]
    assert "from node (outside url)" in node_inside["received"]


PY_INSIDE = '''
"""boto3 from the layer, as on AWS: no keys, no endpoint, no region in the code."""
import os

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

CONFIG = Config(retries={"max_attempts": 0})
sqs = boto3.client("sqs", config=CONFIG)
sts = boto3.client("sts", config=CONFIG)


def attempt(call):
    try:
        return {"ok": call()}
    except ClientError as e:
        err = e.response["Error"]
        return {"error": {"name": err.get("Code"), "message": err.get("Message"),
                          "status": e.response["ResponseMetadata"]["HTTPStatusCode"]}}


def handler(event, context):
    out = {
        "endpoint": os.environ.get("AWS_ENDPOINT_URL"),
        "keyInEnvironment": os.environ.get("AWS_ACCESS_KEY_ID", "")[:4],
        "boto3": [boto3.__version__, boto3.__file__],
        "whoami": attempt(lambda: sts.get_caller_identity()["Arn"]),
        "urlAllowed": attempt(lambda: sqs.get_queue_url(QueueName=event["allowedQueue"])["QueueUrl"]),
        "urlOther": attempt(lambda: sqs.get_queue_url(QueueName=event["otherQueue"])["QueueUrl"]),
    }
    allowed_url = out["urlAllowed"].get("ok")
    if not allowed_url:
        return out
    # The other queue's URL, though the role may not ask for it: the same place, another name.
    other_url = allowed_url.rsplit("/", 1)[0] + "/" + event["otherQueue"]
    send = lambda url, body: attempt(lambda: sqs.send_message(QueueUrl=url, MessageBody=body)["MessageId"])
    out["sendAllowed"] = send(allowed_url, event["body"])
    out["sendOther"] = send(other_url, event["body"])
    # A URL made outside: botocore sends to its endpoint whatever host the URL names.
    out["sendOutsideUrl"] = send(event["outsideUrl"], event["body"] + " (outside url)")
    return out
'''


def test_a_python_function_acts_with_its_role_through_boto3(server, targets, function_role):
    import boto3

    layer = python_layer_zip(["sqs", "sts"])
    assert len(layer) < 2 << 20, len(layer)
    got = inside(server, targets, function_role[1], "python3.11", {"index.py": PY_INSIDE}, layer, "python")
    assert got["report"]["boto3"] == [boto3.__version__, "/opt/python/boto3/__init__.py"], got["report"]
    check_inside(server, targets, function_role, got, "python")
    assert ok(got["report"]["sendOutsideUrl"]) and "from python (outside url)" in got["received"]

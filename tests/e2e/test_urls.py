"""Every URL Nimbus hands out works from everywhere, with no name to resolve (issue 18, item
4): queue URLs, function URLs, HTTP API endpoints, `Code.Location` and SNS's confirmation and
unsubscribe links, used from the host by
Python's urllib and Node's fetch, and from inside functions by boto3 and the JS SDK v3 (from
layers, as in test_js_sdk.py) with urllib and fetch; a URL a function gets inside is the
one the host got. Function URLs and API endpoints are given by path on the server's own
address unless the operator chose a domain (--url-domain, --api-domain), whose names are
then the operator's to resolve; inside linked environments the server's loopback address
leads to the server, also when its port is the Runtime API's (9001)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import urllib.parse
import urllib.request

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from helpers import (ACCOUNT, ADMIN_KEY_ID, ADMIN_SECRET, REGION, ROLE, boto_client, create_function, http_get, make_zip,
                     public_url, run, unique, url_id, wait_for)
from test_js_sdk import JS, node_layer_zip, python_layer_zip

TARGET = """
import json
def handler(event, context):
    ctx = event.get("requestContext", {})
    return {"statusCode": 200, "headers": {"content-type": "application/json"},
            "body": json.dumps({"rawPath": event.get("rawPath"), "domainName": ctx.get("domainName")})}
"""


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def signed_send(queue_url: str, body: str, key: str = ADMIN_KEY_ID, secret: str = ADMIN_SECRET) -> tuple[int, bytes]:
    """SendMessage (query protocol) signed by botocore and sent by urllib to the queue URL
    itself: the URL's address must reach the server."""
    data = urllib.parse.urlencode({"Action": "SendMessage", "Version": "2012-11-05", "MessageBody": body}).encode()
    req = AWSRequest("POST", queue_url, data=data, headers={"content-type": "application/x-www-form-urlencoded"})
    SigV4Auth(Credentials(key, secret), "sqs", REGION).add_auth(req)
    r = urllib.request.Request(queue_url, data=data, headers=dict(req.headers.items()), method="POST")
    try:
        with urllib.request.urlopen(r, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def drain(sqs, queue_url: str) -> list[str]:
    """Every body waiting in the queue (all sent before: short polls until empty)."""
    bodies = []
    while True:
        msgs = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not msgs:
            return bodies
        for m in msgs:
            bodies.append(m["Body"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])


@pytest.fixture(scope="module")
def handed_out(server) -> dict:
    """One URL of each kind, as the host gets them: a function with a public function URL,
    an HTTP API in front of it (quick create), its code's location, and a queue."""
    lam = server.lambda_client()
    name = unique("urls-target")
    create_function(lam, name, "python3.11", "index.handler", make_zip({"index.py": TARGET}))
    lam.add_permission(FunctionName=name, StatementId="apigw", Action="lambda:InvokeFunction", Principal="apigateway.amazonaws.com")
    function_url = public_url(lam, FunctionName=name)["FunctionUrl"]
    apigw = boto_client("apigatewayv2", server.endpoint)
    api = apigw.create_api(Name=unique("urls-api"), ProtocolType="HTTP", Target=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}")
    got = lam.get_function(FunctionName=name)
    queue_name = unique("urls-q")
    queue_url = server.sqs_client().create_queue(QueueName=queue_name)["QueueUrl"]
    yield {
        "functionName": name, "functionUrl": function_url, "apiId": api["ApiId"], "apiEndpoint": api["ApiEndpoint"],
        "codeLocation": got["Code"]["Location"], "codeSha256": got["Configuration"]["CodeSha256"],
        "queueName": queue_name, "queueUrl": queue_url,
    }
    apigw.delete_api(ApiId=api["ApiId"])
    lam.delete_function(FunctionName=name)


def test_urls_are_on_the_servers_own_address(server, handed_out):
    """No name to resolve: each URL is on the address the client used (the listener's)."""
    h, base = handed_out, server.endpoint
    fid = url_id(h["functionUrl"])
    assert h["functionUrl"] == f"{base}/_aws/lambda-url/{fid}/"
    assert h["apiEndpoint"] == f"{base}/_aws/execute-api/{h['apiId']}"
    assert h["codeLocation"].startswith(f"{base}/_nimbus/code/")
    assert h["queueUrl"] == f"{base}/{ACCOUNT}/{h['queueName']}"


def check_target_answer(got: dict, path: str, url_of: str):
    assert got.get("status") == 200, got
    body = json.loads(got["body"])
    assert body["rawPath"] == path, body
    assert body["domainName"].startswith(url_id(url_of) + "."), body


def test_from_the_host_with_python_urllib(server, handed_out):
    h = handed_out
    status, _, body = http_get(h["functionUrl"] + "from-urllib?x=1")
    check_target_answer({"status": status, "body": body.decode()}, "/from-urllib", h["functionUrl"])
    status, _, body = http_get(h["apiEndpoint"] + "/from-urllib")
    check_target_answer({"status": status, "body": body.decode()}, "/from-urllib", h["apiEndpoint"])
    status, _, body = http_get(h["codeLocation"])
    assert status == 200 and sha256_b64(body) == h["codeSha256"]
    status, body = signed_send(h["queueUrl"], "from python urllib")
    assert status == 200, body
    assert drain(server.sqs_client(), h["queueUrl"]) == ["from python urllib"]


def test_from_the_host_with_node_fetch(server, handed_out, node22, tmp_path):
    h = handed_out
    doc = {**h, "region": REGION, "credentials": {"accessKeyId": ADMIN_KEY_ID, "secretAccessKey": ADMIN_SECRET}}
    (tmp_path / "in.json").write_text(json.dumps(doc))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    cp = run([node22, str(JS / "urls.mjs"), str(tmp_path / "in.json")], env=env, timeout=60, cwd=JS)
    assert cp.returncode == 0, cp.stderr.decode(errors="replace")
    r = json.loads(cp.stdout.decode().strip().splitlines()[-1])
    check_target_answer(r["functionUrl"], "/from-fetch", h["functionUrl"])
    check_target_answer(r["apiEndpoint"], "/from-fetch", h["apiEndpoint"])
    assert r["codeLocation"]["status"] == 200 and r["codeLocation"]["sha256"] == h["codeSha256"], r["codeLocation"]
    assert r["queueUrl"]["status"] == 200, r["queueUrl"]
    assert drain(server.sqs_client(), h["queueUrl"]) == ["from node fetch"]


def run_inside(server, runtime: str, files: dict, layer: bytes, event: dict) -> dict:
    """Creates a function with `layer` and the suite's role, invokes it once with `event`,
    and returns its report (function and layer deleted after)."""
    lam = server.lambda_client()
    layer_name = unique("urls-sdk")
    layer_arn = lam.publish_layer_version(LayerName=layer_name, Content={"ZipFile": layer}, CompatibleRuntimes=[runtime])["LayerVersionArn"]
    name = unique("urls-inside")
    lam.create_function(FunctionName=name, Runtime=runtime, Handler="index.handler", Role=ROLE, Timeout=30, MemorySize=1769,
                        Layers=[layer_arn], Code={"ZipFile": make_zip(files)})
    try:
        lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        resp = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode(), LogType="Tail")
        body = resp["Payload"].read()
        log = base64.b64decode(resp.get("LogResult", "")).decode(errors="replace")
        assert "FunctionError" not in resp, f"{body!r}\n{log}"
        return json.loads(body)
    finally:
        lam.delete_function(FunctionName=name)
        lam.delete_layer_version(LayerName=layer_name, VersionNumber=1)


def check_inside(server, h: dict, r: dict, tag: str, sdk_sends: bool):
    # Inside, the server is at the bridge's gateway (AWS_ENDPOINT_URL) ...
    assert not r["endpoint"].startswith("http://127.0.0.1"), r["endpoint"]
    # ... yet the URLs asked for there are the host's, which work on both sides.
    for kind in ("queueUrl", "functionUrl") + (("apiEndpoint",) if "apiEndpoint" in r["inside"] else ()):
        assert r["inside"][kind] == h[kind], (kind, r["inside"][kind])
    # A code link is signed when it is made (it expires): the same link but for that.
    assert r["inside"]["codeLocation"].split("?")[0] == h["codeLocation"].split("?")[0], r["inside"]["codeLocation"]
    for which in ("usedOutside", "usedInside"):
        used = r[which]
        check_target_answer(used["functionUrl"], f"/from-{tag}-inside", h["functionUrl"])
        assert used["codeLocation"].get("sha256") == h["codeSha256"], used["codeLocation"]
        if "apiEndpoint" in used:
            check_target_answer(used["apiEndpoint"], f"/from-{tag}-inside", h["apiEndpoint"])
        assert "ok" in used["queueUrl"], used["queueUrl"]
    sent = sorted(drain(server.sqs_client(), h["queueUrl"]))
    expected = [f"from {tag} inside (inside url)", f"from {tag} inside (outside url)"]
    if not sdk_sends:
        expected += [f"from {tag} inside (inside url, raw)", f"from {tag} inside (outside url, raw)"]
    assert sent == sorted(expected)


def test_inside_a_node_function_with_the_js_sdk_and_fetch(server, handed_out):
    """The JS SDK's SQS client sends to the queue URL's host: a URL made on the host
    (127.0.0.1) leads to the server inside too."""
    layer = node_layer_zip(["@aws-sdk/client-sqs", "@aws-sdk/client-lambda"])
    r = run_inside(server, "nodejs22.x", {"index.js": (JS / "urls_in_function.cjs").read_text()}, layer, handed_out)
    check_inside(server, handed_out, r, "node", sdk_sends=True)


PY_INSIDE = '''
"""boto3 from the layer (no keys, endpoint or region in the code), and urllib."""
import base64, hashlib, os, urllib.error, urllib.parse, urllib.request

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.exceptions import ClientError

CONFIG = Config(retries={"max_attempts": 0})
session = boto3.session.Session()
sqs, lam, apigw = (session.client(s, config=CONFIG) for s in ("sqs", "lambda", "apigatewayv2"))


def attempt(call):
    try:
        return {"ok": call()}
    except ClientError as e:
        return {"error": e.response["Error"]}
    except OSError as e:
        return {"error": repr(e)}


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            status, body = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    except OSError as e:
        return {"failed": repr(e)}
    return {"status": status, "body": body.decode(errors="replace"), "sha256": base64.b64encode(hashlib.sha256(body).digest()).decode()}


def raw_send(queue_url, body):
    """SendMessage signed by botocore, sent by urllib to the queue URL itself (boto3 sends
    to its endpoint whatever host the URL names)."""
    data = urllib.parse.urlencode({"Action": "SendMessage", "Version": "2012-11-05", "MessageBody": body}).encode()
    req = AWSRequest("POST", queue_url, data=data, headers={"content-type": "application/x-www-form-urlencoded"})
    SigV4Auth(session.get_credentials().get_frozen_credentials(), "sqs", os.environ["AWS_REGION"]).add_auth(req)
    r = urllib.request.Request(queue_url, data=data, headers=dict(req.headers.items()), method="POST")
    with urllib.request.urlopen(r, timeout=10) as resp:
        return resp.status


def handler(event, context):
    inside = {
        "queueUrl": attempt(lambda: sqs.get_queue_url(QueueName=event["queueName"])["QueueUrl"]).get("ok"),
        "functionUrl": attempt(lambda: lam.get_function_url_config(FunctionName=event["functionName"])["FunctionUrl"]).get("ok"),
        "codeLocation": attempt(lambda: lam.get_function(FunctionName=event["functionName"])["Code"]["Location"]).get("ok"),
        "apiEndpoint": attempt(lambda: apigw.get_api(ApiId=event["apiId"])["ApiEndpoint"]).get("ok"),
    }

    def use(urls, tag):
        return {
            "queueUrl": attempt(lambda: [sqs.send_message(QueueUrl=urls["queueUrl"], MessageBody=f"from python inside ({tag} url)")["MessageId"],
                                         raw_send(urls["queueUrl"], f"from python inside ({tag} url, raw)")]),
            "functionUrl": get(urls["functionUrl"] + "from-python-inside"),
            "apiEndpoint": get(urls["apiEndpoint"] + "/from-python-inside"),
            "codeLocation": get(urls["codeLocation"]),
        }

    return {"endpoint": os.environ.get("AWS_ENDPOINT_URL"), "inside": inside,
            "usedOutside": use(event, "outside"), "usedInside": use(inside, "inside")}
'''


def test_inside_a_python_function_with_boto3_and_urllib(server, handed_out):
    layer = python_layer_zip(["sqs", "lambda", "apigatewayv2"])
    r = run_inside(server, "python3.11", {"index.py": PY_INSIDE}, layer, handed_out)
    check_inside(server, handed_out, r, "python", sdk_sends=False)


def test_host_names_on_request(server_factory):
    """--url-domain and --api-domain give the host-name forms (the operator resolves the
    names); requests by those names and by path are both served."""
    s = server_factory(args=["--url-domain", "lambda-url.us-east-1.nimbus.test", "--api-domain", "execute-api.us-east-1.nimbus.test"])
    lam = s.lambda_client()
    name = unique("urls-named")
    create_function(lam, name, "python3.11", "index.handler", make_zip({"index.py": TARGET}))
    url = public_url(lam, FunctionName=name)["FunctionUrl"]
    fid = url_id(url)
    assert url == f"http://{fid}.lambda-url.us-east-1.nimbus.test:{s.port}/"
    api = boto_client("apigatewayv2", s.endpoint).create_api(Name="named", ProtocolType="HTTP", Target=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}")
    assert api["ApiEndpoint"] == f"http://{api['ApiId']}.execute-api.us-east-1.nimbus.test:{s.port}"
    lam.add_permission(FunctionName=name, StatementId="apigw", Action="lambda:InvokeFunction", Principal="apigateway.amazonaws.com")
    for host, path in ((f"{fid}.lambda-url.us-east-1.nimbus.test", "/by-name"), (f"{api['ApiId']}.execute-api.us-east-1.nimbus.test", "/by-name")):
        req = urllib.request.Request(s.endpoint + path, headers={"host": f"{host}:{s.port}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert json.loads(r.read())["rawPath"] == "/by-name"
    status, _, body = http_get(f"{s.endpoint}/_aws/lambda-url/{fid}/by-path")
    assert status == 200 and json.loads(body)["rawPath"] == "/by-path"


URL_PROBE = '''
import hashlib, base64, os, urllib.request
def handler(event, context):
    out = {"runtime_api": os.environ["AWS_LAMBDA_RUNTIME_API"], "endpoint": os.environ.get("AWS_ENDPOINT_URL")}
    for kind in ("functionUrl", "codeLocation", "health"):
        with urllib.request.urlopen(event[kind], timeout=10) as r:
            body = r.read()
            out[kind] = [r.status, base64.b64encode(hashlib.sha256(body).digest()).decode(), body.decode(errors="replace")[:200]]
    return out
'''


def test_the_server_on_the_runtime_apis_port(server_factory):
    """Both default to 9001: inside, 127.0.0.1:9001 is the Runtime API for the runtime and
    the server for everything else (the first request on a connection tells which)."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", 9001))
        except OSError:
            pytest.skip("port 9001 is taken on this host: the server cannot listen on the default port")
    s = server_factory(port=9001)
    lam = s.lambda_client()
    target, name = unique("urls-9001-target"), unique("urls-9001")
    create_function(lam, target, "python3.11", "index.handler", make_zip({"index.py": TARGET}))
    url = public_url(lam, FunctionName=target)["FunctionUrl"]
    assert url.startswith("http://127.0.0.1:9001/_aws/lambda-url/")
    create_function(lam, name, "python3.11", "index.handler", make_zip({"index.py": URL_PROBE}))
    got = lam.get_function(FunctionName=name)
    event = {"functionUrl": url + "from-9001", "codeLocation": got["Code"]["Location"], "health": "http://127.0.0.1:9001/health"}
    for _ in range(2):  # cold, then warm (the runtime's own connection still reaches its Runtime API)
        resp = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode())
        out = json.loads(resp["Payload"].read())
        assert "FunctionError" not in resp, out
        assert out["runtime_api"] == "127.0.0.1:9001" and out["endpoint"].endswith(":9001"), out
        assert out["functionUrl"][0] == 200 and json.loads(out["functionUrl"][2])["rawPath"] == "/from-9001", out
        assert out["codeLocation"][:2] == [200, got["Configuration"]["CodeSha256"]], out
        assert out["health"][0] == 200, out


GET_PROBE = '''
import urllib.request
def handler(event, context):
    out = {}
    for url in event["urls"]:
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                out[url] = r.status
        except OSError as e:
            out[url] = repr(e)
    return out
'''


def test_urls_on_localhost_work_inside_too(server, handed_out):
    """A client on the host that calls the server `localhost` gets URLs on `localhost`;
    inside, `localhost` is the environment's loopback (127.0.0.1 and ::1), where the server's
    port leads to the server."""
    local = server.endpoint.replace("127.0.0.1", "localhost")
    lam = boto_client("lambda", local)
    url = lam.get_function_url_config(FunctionName=handed_out["functionName"])["FunctionUrl"]
    assert url == f"{local}/_aws/lambda-url/{url_id(handed_out['functionUrl'])}/"
    name = unique("urls-localhost")
    create_function(lam, name, "python3.11", "index.handler", make_zip({"index.py": GET_PROBE}))
    urls = [url + "from-localhost", f"http://[::1]:{server.port}/health", f"http://127.0.0.1:{server.port}/health"]
    got = json.loads(lam.invoke(FunctionName=name, Payload=json.dumps({"urls": urls}).encode())["Payload"].read())
    assert got == {u: 200 for u in urls}, got
    lam.delete_function(FunctionName=name)


SNS_SUBSCRIBER = '''
import base64, json, urllib.request
def handler(event, context):
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    doc = json.loads(body)
    link = doc.get("SubscribeURL") if doc["Type"] == "SubscriptionConfirmation" else doc.get("UnsubscribeURL")
    with urllib.request.urlopen(link, timeout=10) as r:
        print("followed", doc["Type"], r.status)
    return {"statusCode": 200, "body": "ok"}
'''


def test_sns_links_followed_from_inside_a_function(server, lam):
    """An HTTP subscriber that is a function URL: SNS posts the confirmation to the URL, the
    function follows its SubscribeURL from inside; a notification's UnsubscribeURL too."""
    sns = server.sns_client()
    name = unique("urls-sns")
    create_function(lam, name, "python3.11", "index.handler", make_zip({"index.py": SNS_SUBSCRIBER}))
    url = public_url(lam, FunctionName=name)["FunctionUrl"]
    topic = sns.create_topic(Name=unique("urls-topic"))["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=url)

    def subscriptions():
        return [s["SubscriptionArn"] for s in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]]

    confirmed = wait_for(lambda: [a for a in subscriptions() if a.startswith(topic + ":")], timeout=20, what="the function to confirm")
    assert sns.get_subscription_attributes(SubscriptionArn=confirmed[0])["Attributes"]["Endpoint"] == url
    sns.publish(TopicArn=topic, Message="unsubscribe me")
    wait_for(lambda: subscriptions() == [], timeout=20, what="the function to unsubscribe")
    sns.delete_topic(TopicArn=topic)
    lam.delete_function(FunctionName=name)

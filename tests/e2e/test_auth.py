"""Authentication: every AWS API request must be SigV4-signed with a key the server knows;
unsigned, unknown-key, wrongly signed, tampered and stale requests get each service's AWS
error; presigned URLs work; the administrator's key is generated owner-only on the first
start and found by the nimbus CLI; functions get their role's temporary credentials;
`--auth off` says so."""

import datetime
import html
import json
import os
import stat
import urllib.parse
from pathlib import Path

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
import http.client
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from helpers import ADMIN_KEY_ID, ADMIN_SECRET, REGION, Server, http_get, invoke, server_env, unique

SQS_TARGET = {"X-Amz-Target": "AmazonSQS.ListQueues", "Content-Type": "application/x-amz-json-1.0"}
LOGS_TARGET = {"X-Amz-Target": "Logs_20140328.DescribeLogGroups", "Content-Type": "application/x-amz-json-1.1"}
EVENTS_TARGET = {"X-Amz-Target": "AWSEvents.ListRules", "Content-Type": "application/x-amz-json-1.1"}
FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}

# (service label, method, path, headers, body, signing name)
REQUESTS = {
    "lambda": ("GET", "/2015-03-31/functions/", {}, b"", "lambda"),
    "apigateway": ("GET", "/v2/apis", {}, b"", "apigateway"),
    "sqs-json": ("POST", "/", SQS_TARGET, b"{}", "sqs"),
    "sqs-query": ("POST", "/", FORM, b"Action=ListQueues&Version=2012-11-05", "sqs"),
    "sns": ("POST", "/", FORM, b"Action=ListTopics&Version=2010-03-31", "sns"),
    "events": ("POST", "/", EVENTS_TARGET, b"{}", "events"),
    "logs": ("POST", "/", LOGS_TARGET, b"{}", "logs"),
}


def raw(endpoint, method, path, headers, body):
    u = urllib.parse.urlsplit(endpoint)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def signed_headers(endpoint, service, method, path, headers, body, key=ADMIN_KEY_ID, secret=ADMIN_SECRET, when=None):
    req = botocore.awsrequest.AWSRequest(method=method, url=endpoint + path, data=body, headers=dict(headers))
    auth = botocore.auth.SigV4Auth(botocore.credentials.Credentials(key, secret), service, REGION)
    if when is None:
        auth.add_auth(req)
    else:
        from unittest import mock
        with mock.patch("botocore.auth.get_current_datetime", return_value=when):
            auth.add_auth(req)
    return dict(req.headers.items())


def error_of(status, headers, body):
    """(status, code, message) however the protocol carries them."""
    text = body.decode("utf-8", "replace")
    if text.lstrip().startswith("<"):
        pick = lambda t: html.unescape(text.split(f"<{t}>")[1].split(f"</{t}>")[0]) if f"<{t}>" in text else None
        return status, pick("Code"), pick("Message")
    doc = json.loads(text or "{}")
    code = headers.get("x-amzn-errortype") or doc.get("__type", "")
    return status, code.split(":")[0].split("#")[-1], doc.get("message") or doc.get("Message")


# (service, unsigned, unknown key, wrong signature): (status, code) each, as AWS answers
# (sources in /work/shared/AWS-NOTES.md, "Authentication errors").
EXPECTED = {
    "lambda": ((403, "MissingAuthenticationTokenException"), (403, "UnrecognizedClientException"), (403, "InvalidSignatureException")),
    "apigateway": ((403, "MissingAuthenticationTokenException"), (403, "UnrecognizedClientException"), (403, "InvalidSignatureException")),
    "sqs-json": ((400, "MissingAuthenticationTokenException"), (400, "UnrecognizedClientException"), (400, "InvalidSignatureException")),
    "sqs-query": ((403, "MissingAuthenticationToken"), (403, "InvalidClientTokenId"), (403, "SignatureDoesNotMatch")),
    "sns": ((403, "MissingAuthenticationToken"), (403, "InvalidClientTokenId"), (403, "SignatureDoesNotMatch")),
    "events": ((400, "MissingAuthenticationTokenException"), (400, "UnrecognizedClientException"), (400, "InvalidSignatureException")),
    "logs": ((400, "MissingAuthenticationTokenException"), (400, "UnrecognizedClientException"), (400, "InvalidSignatureException")),
}


@pytest.mark.parametrize("label", sorted(REQUESTS))
def test_each_service_refuses_what_is_not_signed_by_a_known_key(server, label):
    method, path, headers, body, service = REQUESTS[label]
    unsigned, unknown, wrong = EXPECTED[label]
    ep = server.endpoint
    # Signed by the administrator: accepted.
    status, _, out = raw(ep, method, path, signed_headers(ep, service, method, path, headers, body), body)
    assert status == 200, out
    # Unsigned.
    got = error_of(*raw(ep, method, path, dict(headers), body))
    assert got[:2] == unsigned, got
    # An unknown key.
    got = error_of(*raw(ep, method, path, signed_headers(ep, service, method, path, headers, body, key="AKIAUNKNOWN"), body))
    assert got[:2] == unknown and got[2] == "The security token included in the request is invalid.", got
    # The right key, the wrong secret.
    got = error_of(*raw(ep, method, path, signed_headers(ep, service, method, path, headers, body, secret="wrong"), body))
    assert got[:2] == wrong and got[2].startswith("The request signature we calculated does not match"), got
    # Signed over another body, or with a tampered signed header.
    if body:
        got = error_of(*raw(ep, method, path, signed_headers(ep, service, method, path, headers, body), body + b" "))
        assert got[:2] == wrong, got
    h = signed_headers(ep, service, method, path, headers, body)
    # Another second than the one signed (59, or 58 when it was signed at :59).
    seconds = "58Z" if h["X-Amz-Date"].endswith("59Z") else "59Z"
    h["X-Amz-Date"] = h["X-Amz-Date"][:-3] + seconds
    got = error_of(*raw(ep, method, path, h, body))
    assert got[:2] == wrong, got
    # A good signature made for another service: AWS names the one it wants.
    got = error_of(*raw(ep, method, path, signed_headers(ep, "s3", method, path, headers, body), body))
    assert got == (*wrong, f"Credential should be scoped to correct service: '{service}'."), got


def test_stale_and_future_requests(server):
    ep = server.endpoint
    old = datetime.datetime.utcnow() - datetime.timedelta(minutes=20)
    method, path, headers, body, service = REQUESTS["lambda"]
    got = error_of(*raw(ep, method, path, signed_headers(ep, service, method, path, headers, body, when=old), body))
    assert got[:2] == (403, "InvalidSignatureException"), got
    assert got[2].startswith("Signature expired: ") and got[2].endswith(" - 5 min.)"), got
    method, path, headers, body, service = REQUESTS["sns"]
    future = datetime.datetime.utcnow() + datetime.timedelta(minutes=20)
    got = error_of(*raw(ep, method, path, signed_headers(ep, service, method, path, headers, body, when=future), body))
    assert got[:2] == (403, "SignatureDoesNotMatch") and got[2].startswith("Signature not yet current: ") and got[2].endswith(" + 15 min.)"), got
    # Lambda allows 5 minutes; SQS 15: a 10-minute-old SQS request is still good.
    method, path, headers, body, service = REQUESTS["sqs-json"]
    ten = datetime.datetime.utcnow() - datetime.timedelta(minutes=10)
    status, _, out = raw(ep, method, path, signed_headers(ep, service, method, path, headers, body, when=ten), body)
    assert status == 200, out


def test_malformed_authorization_headers(server):
    ep = server.endpoint
    cases = [
        ("AWS4-HMAC-SHA256 SignedHeaders=host, Signature=00", 403, "IncompleteSignatureException",
         "Authorization header requires 'Credential' parameter. Authorization=AWS4-HMAC-SHA256 SignedHeaders=host, Signature=00"),
        ("AWS4-HMAC-SHA256 Credential=test/20261203/us-east-1/lambda, SignedHeaders=host, Signature=00", 403,
         "IncompleteSignatureException",
         "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'test/20261203/us-east-1/lambda'"),
        ("Bearer abc", 403, "MissingAuthenticationTokenException", "Missing Authentication Token"),
    ]
    for auth, status, code, message in cases:
        got = error_of(*raw(ep, "GET", "/2015-03-31/functions/", {"Authorization": auth, "X-Amz-Date": "20261203T110000Z"}, b""))
        assert got == (status, code, message), got


def boto(service, endpoint, key=ADMIN_KEY_ID, secret=ADMIN_SECRET, token=None):
    return boto3.session.Session().client(
        service, endpoint_url=endpoint, region_name=REGION, aws_access_key_id=key, aws_secret_access_key=secret,
        aws_session_token=token, config=Config(retries={"max_attempts": 0}))


def test_boto3_and_the_aws_cli_with_other_keys(server, tmp_path):
    with pytest.raises(ClientError) as e:
        boto("lambda", server.endpoint, key="AKIAOTHER").list_functions()
    assert e.value.response["Error"]["Code"] == "UnrecognizedClientException"
    with pytest.raises(ClientError) as e:
        boto("sqs", server.endpoint, secret="not-it").list_queues()
    assert e.value.response["Error"]["Code"] == "SignatureDoesNotMatch"  # the query code, as boto3 reads it
    # A presigned URL (query-string signature) works; tampered, it does not.
    url = boto("lambda", server.endpoint).generate_presigned_url("list_functions", ExpiresIn=60)
    status, _, body = http_get(url)
    assert status == 200 and "Functions" in json.loads(body)
    status, headers, body = http_get(url.replace("X-Amz-Expires=60", "X-Amz-Expires=61"))
    assert (status, {k.lower(): v for k, v in dict(headers).items()}.get("x-amzn-errortype")) == (403, "InvalidSignatureException"), body
    # The aws CLI with an unknown key says so.
    from helpers import run
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "AWS_ACCESS_KEY_ID": "AKIAOTHER", "AWS_SECRET_ACCESS_KEY": "x",
           "AWS_DEFAULT_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true", "AWS_MAX_ATTEMPTS": "1",
           "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    aws = str(Path(os.environ.get("VIRTUAL_ENV", Path(__file__).parents[2] / ".venv")) / "bin" / "aws")
    cp = run([aws, "--endpoint-url", server.endpoint, "lambda", "list-functions"], env=env)
    assert cp.returncode != 0 and b"UnrecognizedClientException" in cp.stderr, cp.stderr


def test_the_first_start_makes_an_owner_only_key_that_clients_find(nimbus_bin, tmp_path):
    data = tmp_path / "data"
    unset = {k: None for k in ("NIMBUS_ADMIN_ACCESS_KEY_ID", "NIMBUS_ADMIN_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    env = server_env(unset)
    srv = Server(nimbus_bin, data, tmp_path / "server.log", env=unset)
    srv.start()
    try:
        creds = data / "credentials"
        assert stat.S_IMODE(creds.stat().st_mode) == 0o600
        log = (tmp_path / "server.log").read_text()
        assert str(creds) in log and "AWS_PROFILE=nimbus" in log
        import configparser
        cp = configparser.ConfigParser()
        cp.read(creds)
        key, secret = cp["nimbus"]["aws_access_key_id"], cp["nimbus"]["aws_secret_access_key"]
        assert key.startswith("AKIA") and len(key) == 20 and len(secret) == 40
        assert secret not in log, "the secret is never logged"
        assert "Functions" in boto("lambda", srv.endpoint, key, secret).list_functions()
        # The nimbus CLI finds the key through NIMBUS_DATA on the same machine.
        from helpers import run
        cli_env = dict(env, NIMBUS_DATA=str(data), NIMBUS_ENDPOINT=srv.endpoint)
        cp2 = run([nimbus_bin, "ls"], env=cli_env)
        assert cp2.returncode == 0, cp2.stderr
        cli_env["NIMBUS_DATA"] = str(tmp_path / "elsewhere")
        cp3 = run([nimbus_bin, "ls"], env=cli_env)
        assert cp3.returncode != 0 and b"MissingAuthenticationToken" in cp3.stderr, cp3.stderr
        # A restart keeps the key.
        srv.stop()
        srv.start()
        assert "Functions" in boto("lambda", srv.endpoint, key, secret).list_functions()
    finally:
        srv.stop()


def test_auth_off_says_so(nimbus_bin, tmp_path):
    srv = Server(nimbus_bin, tmp_path / "data", tmp_path / "server.log", args=["--auth", "off"])
    srv.start()
    try:
        status, _, body = http_get(srv.endpoint + "/health")
        doc = json.loads(body)
        assert doc["auth"] == "off" and "anyone" in doc["warning"]
        status, _, body = raw(srv.endpoint, "GET", "/2015-03-31/functions/", {}, b"")
        assert status == 200, body
        assert "AUTHENTICATION IS OFF" in (tmp_path / "server.log").read_text()
    finally:
        srv.stop()


ROLE_PROBE = r'''
import os
def handler(event, context):
    return {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")}
'''


def test_functions_get_their_roles_temporary_credentials(server, lam, make_fn):
    fn = make_fn("python3.11", {"p.py": ROLE_PROBE}, "p.handler")
    creds = invoke(lam, fn.name).ok()
    assert creds["AWS_ACCESS_KEY_ID"].startswith("ASIA") and creds["AWS_SESSION_TOKEN"]
    # They work from outside too, with their token (as the function's role session, which may
    # do what the role's policies allow: GetCallerIdentity needs nothing); without it they do not.
    ep = server.endpoint
    sts = boto("sts", ep, creds["AWS_ACCESS_KEY_ID"], creds["AWS_SECRET_ACCESS_KEY"], creds["AWS_SESSION_TOKEN"])
    assert sts.get_caller_identity()["Arn"] == f"arn:aws:sts::000000000000:assumed-role/nimbus-e2e/{fn.name}"
    with pytest.raises(ClientError) as e:
        boto("lambda", ep, creds["AWS_ACCESS_KEY_ID"], creds["AWS_SECRET_ACCESS_KEY"]).list_functions()
    assert e.value.response["Error"]["Code"] == "UnrecognizedClientException"
    # The secret never shows in the function's configuration.
    cfg = json.dumps(lam.get_function(FunctionName=fn.name), default=str)
    assert creds["AWS_SECRET_ACCESS_KEY"] not in cfg and creds["AWS_SESSION_TOKEN"] not in cfg


# (what, headers added to a signed request): malformed or oversized authentication headers.
MALFORMED = [
    ("garbage Authorization", {"Authorization": "AWS4-HMAC-SHA256 garbage"}),
    ("no Signature", {"Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/lambda/aws4_request, SignedHeaders=host"}),
    ("unknown algorithm", {"Authorization": "AWS5-HMAC-SHA512 Credential=x, SignedHeaders=host, Signature=00"}),
    ("64 KB Authorization", {"Authorization": "AWS4-HMAC-SHA256 Credential=" + "A" * 65536 + ", SignedHeaders=host, Signature=00"}),
    ("bad X-Amz-Date", {"X-Amz-Date": "yesterday"}),
    ("non-UTF-8 Authorization", {"Authorization": b"AWS4-HMAC-SHA256 Credential=\xff\xfe/x, SignedHeaders=host, Signature=00"}),
]


@pytest.mark.parametrize("label", sorted(REQUESTS))
def test_malformed_and_oversized_auth_headers_get_the_services_error(server, label):
    """Every endpoint answers a malformed or oversized signature with its own AWS error (a
    4xx with a code, never a 5xx, a hang or a dropped server), and keeps serving."""
    method, path, headers, body, service = REQUESTS[label]
    ep = server.endpoint
    for what, extra in MALFORMED:
        h = signed_headers(ep, service, method, path, headers, body)
        h.update(extra)
        status, code, _ = error_of(*raw(ep, method, path, h, body))
        assert 400 <= status < 500 and code, (what, status, code)
        assert code in ("IncompleteSignatureException", "IncompleteSignature", "InvalidSignatureException",
                        "SignatureDoesNotMatch", "UnrecognizedClientException", "InvalidClientTokenId",
                        "MissingAuthenticationTokenException", "MissingAuthenticationToken"), (what, code)
    # A header block far over any limit is refused at the door; the server goes on.
    h = signed_headers(ep, service, method, path, headers, body)
    h["X-Padding"] = "x" * (1 << 20)
    try:
        status = raw(ep, method, path, h, body)[0]
        assert status in (400, 431), status
    except (ConnectionError, http.client.HTTPException):
        pass
    status, _, _ = raw(ep, method, path, signed_headers(ep, service, method, path, headers, body), body)
    assert status == 200

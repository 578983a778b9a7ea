"""The web console as the binary serves it: its files at `/` (for a browser only: signed AWS
requests to `/` still reach their services) and under `/_console/`, with their security,
cache and gzip headers; and its login: the one-time link the server prints at start and
`nimbus console` makes, whose token `POST /_nimbus/console/session` trades, once, for session
credentials of the account's root that every service takes, for 15 minutes after it was made.
Functions' path-style front doors share the console's origin, so their answers are sandboxed
to an opaque origin; host-style ones are origins of their own and are left alone."""

from __future__ import annotations

import gzip
import http.client
import json
import re
import urllib.parse

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from helpers import (ADMIN_KEY_ID, ADMIN_SECRET, ACCOUNT, REGION, Server, admin_signed, arn, boto_client, http_request, public_url, run, server_env,
                     unique, url_id)

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; "
       "form-action 'self'")
LINK_RE = re.compile(r"console: (\S+/#/login/([A-Za-z0-9_-]+))")
REFUSED = ("This login link was already used or is not valid (a link works once, for 15 minutes). "
           "Run `nimbus console` for a new one.")
LINK_LINE_RE = re.compile(r"console: https?://\S+/#/login/[A-Za-z0-9_-]+ \(one use, 15 minutes; `nimbus console` prints a new one\)")
SANDBOX = "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads"
CONTENT_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml",
                 ".png": "image/png", ".woff2": "font/woff2"}


@pytest.fixture(scope="module")
def console_server(nimbus_bin, tmp_path_factory):
    base = tmp_path_factory.mktemp("console-server")
    s = Server(nimbus_bin, base / "data", base / "server.log", name="console-server")
    s.start()
    yield s
    s.stop()


def raw(server: Server, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""):
    """One request with the path sent exactly as given: (status, headers, body)."""
    u = urllib.parse.urlsplit(server.endpoint)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def startup_link(server: Server) -> str:
    links = LINK_RE.findall(server.log_path.read_text(errors="replace"))
    assert len(links) == 1, f"one login link in the log, not {len(links)}"
    return links[0][0]


def token_of(link: str) -> str:
    m = re.fullmatch(r"(\S+)/#/login/([A-Za-z0-9_-]{43})", link)
    assert m, link
    return m.group(2)


def session(server: Server, token: str):
    status, headers, body = http_request(server.endpoint + "/_nimbus/console/session", "POST",
                                         json.dumps({"token": token}).encode(), {"Content-Type": "application/json"})
    return status, headers, json.loads(body)


def check_security_headers(headers: dict[str, str]):
    assert headers["content-security-policy"] == CSP
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"


def test_index_at_root_and_under_console(console_server):
    status, headers, index = raw(console_server, "GET", "/", {"Accept": "text/html"})
    assert status == 200, index[:300]
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["cache-control"] == "no-cache"
    check_security_headers(headers)
    assert b"<html" in index.lower()
    for path in ("/_console/", "/_console", "/_console/index.html"):
        status, headers, body = raw(console_server, "GET", path)
        assert (status, body) == (200, index), path
        check_security_headers(headers)
    status, headers, body = raw(console_server, "HEAD", "/")
    assert (status, body) == (200, b"")
    assert int(headers["content-length"]) == len(index)


def test_assets_are_served_with_their_type_cache_and_gzip(console_server):
    _, _, index = raw(console_server, "GET", "/")
    paths = sorted(set(re.findall(r"""(?:src|href)="(/_console/assets/[^"]+)\"""", index.decode())))
    assert paths, f"index.html refers to no file under /_console/assets/ (a console-less build?):\n{index.decode()[:500]}"
    for path in paths:
        ext = "." + path.rsplit(".", 1)[-1]
        status, headers, plain = raw(console_server, "GET", path, {"Accept-Encoding": "identity"})
        assert status == 200, path
        if ext in CONTENT_TYPES:
            assert headers["content-type"] == CONTENT_TYPES[ext], path
        assert headers["cache-control"] == "public, max-age=31536000, immutable", path
        assert "content-encoding" not in headers, path
        check_security_headers(headers)
        status, headers, body = raw(console_server, "GET", path, {"Accept-Encoding": "gzip, deflate, br"})
        assert status == 200, path
        if ext in (".js", ".css"):
            assert headers["content-encoding"] == "gzip", path
            assert headers["vary"] == "Accept-Encoding", path
            assert len(body) < len(plain) and gzip.decompress(body) == plain, path
        elif headers.get("content-encoding") == "gzip":
            assert gzip.decompress(body) == plain, path


def test_unknown_files_are_404(console_server):
    for path in ("/_console/assets/nope-00000000.js", "/_console/nope.html", "/_console/../../Cargo.toml",
                 "/_console/%2e%2e/%2e%2e/Cargo.toml", "/_console/assets/../../../../etc/passwd"):
        status, headers, body = raw(console_server, "GET", path)
        assert status == 404, (path, body[:200])
        assert headers["x-content-type-options"] == "nosniff", path
        assert b"root:" not in body and b"[workspace]" not in body


def test_signed_requests_to_root_reach_their_services(console_server):
    # SQS's query protocol: a signed POST / with a form.
    sqs = console_server.sqs_client(protocol="query")
    url = sqs.create_queue(QueueName=unique("console-q"))["QueueUrl"]
    assert url in sqs.list_queues().get("QueueUrls", [])
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    json_sqs = console_server.sqs_client()
    assert json_sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"][0]["Body"] == "hello"
    # A signed GET / (S3's ListBuckets) is an AWS call, never the console's page.
    headers = admin_signed(console_server.endpoint, "s3", "GET", "/", {"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
    status, headers, body = raw(console_server, "GET", "/", headers)
    assert status == 200 and b"<ListAllMyBucketsResult" in body and "text/html" not in headers.get("content-type", ""), (status, body[:200])
    # An AWS query without a signature is not the console's either: it hears it is unsigned.
    status, headers, body = raw(console_server, "GET", "/?Action=ListQueues&Version=2012-11-05")
    assert status == 403 and b"<html" not in body.lower(), (status, body[:300])


def test_the_startup_link_signs_in_once(server_factory):
    s = server_factory()
    link = startup_link(s)
    # The line says how long it works; the link comes first on it.
    assert len(LINK_LINE_RE.findall(s.log_path.read_text(errors="replace"))) == 1
    assert link.startswith(s.endpoint + "/#/login/"), link
    token = token_of(link)
    status, headers, creds = session(s, token)
    assert status == 200, creds
    assert headers["Cache-Control"] == "no-store"
    assert set(creds) == {"AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration", "AccountId"}
    assert creds["AccessKeyId"].startswith("ASIA") and creds["AccountId"] == ACCOUNT
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", creds["Expiration"]), creds["Expiration"]
    keys = dict(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"])

    def client(service: str):
        return boto3.session.Session().client(service, endpoint_url=s.endpoint, region_name=REGION,
                                              aws_session_token=creds["SessionToken"], **keys)

    assert client("sts").get_caller_identity()["Arn"] == f"arn:aws:iam::{ACCOUNT}:root"
    assert isinstance(client("lambda").list_functions()["Functions"], list)
    client("sqs").list_queues()
    # Once only; and a token that never was is refused alike.
    for t in (token, "A" * 43, "", "not a token"):
        status, _, answer = session(s, t)
        assert (status, answer) == (403, {"message": REFUSED}), t
    status, _, body = http_request(s.endpoint + "/_nimbus/console/session", "POST", b"{not json")
    assert status == 400, body
    # No secret in the server's log; the token only on its one line.
    log = s.log_path.read_text(errors="replace")
    assert log.count(token) == 1
    for secret in (creds["SecretAccessKey"], creds["SessionToken"]):
        assert secret not in log


ONLY_ROOT = "Only the account's root (the administrator's key) can make console login links."


def signed_link(s: Server, key_id: str, secret: str, token: str | None = None):
    """`POST /_nimbus/console/link` signed with this key (and session token): (status, headers, body)."""
    req = AWSRequest(method="POST", url=s.endpoint + "/_nimbus/console/link", data=b"{}",
                     headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(key_id, secret, token), "lambda", REGION).add_auth(req)
    return http_request(req.url, "POST", b"{}", dict(req.headers.items()))


def nimbus_console(nimbus_bin: str, s: Server, *args: str, env: dict | None = None):
    cp = run([nimbus_bin, "console", "--endpoint", s.endpoint, *args], env=server_env(env))
    return cp.returncode, cp.stdout.decode(errors="replace"), cp.stderr.decode(errors="replace")


def test_nimbus_console_makes_a_new_link(nimbus_bin, server_factory):
    s = server_factory()
    first_startup = token_of(startup_link(s))
    rc, out, err = nimbus_console(nimbus_bin, s)
    assert rc == 0, err
    link = out.strip()
    assert link.startswith(s.endpoint + "/#/login/"), out
    rc, out, err = nimbus_console(nimbus_bin, s, "--output", "json")
    assert rc == 0, err
    newest = json.loads(out)["url"]
    # Only the newest link works: each new one replaces the unused one before it.
    for old in (first_startup, token_of(link)):
        assert session(s, old)[0] == 403
    status, _, creds = session(s, token_of(newest))
    assert status == 200, creds
    assert session(s, token_of(newest))[0] == 403
    # The console's own session (root's session credentials from a link) may not make a link:
    # a session that could would renew itself for ever. It is refused as an IAM user is.
    rc, out, err = nimbus_console(nimbus_bin, s, env={"AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
                                                      "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
                                                      "AWS_SESSION_TOKEN": creds["SessionToken"]})
    assert rc != 0 and "/#/login/" not in out, (out, err)
    assert "root" in err, err
    status, _, body = signed_link(s, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    assert (status, json.loads(body)) == (403, {"message": ONLY_ROOT}), body
    # The session still works for AWS calls; the administrator's key still makes links.
    sts = boto3.session.Session().client("sts", endpoint_url=s.endpoint, region_name=REGION,
                                         aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                                         aws_session_token=creds["SessionToken"])
    assert sts.get_caller_identity()["Arn"] == f"arn:aws:iam::{ACCOUNT}:root"
    status, _, body = signed_link(s, ADMIN_KEY_ID, ADMIN_SECRET)
    assert status == 200, body
    assert session(s, token_of(json.loads(body)["url"]))[0] == 200


def test_making_a_link_takes_the_account_root(nimbus_bin, console_server):
    endpoint = console_server.endpoint
    status, headers, body = http_request(endpoint + "/_nimbus/console/link", "POST", b"{}", {"Content-Type": "application/json"})
    assert status == 403, body
    assert headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert b"login" not in body
    # A bad signature is refused as any call's is.
    rc, out, err = nimbus_console(nimbus_bin, console_server, env={"AWS_SECRET_ACCESS_KEY": "wrong"})
    assert rc != 0 and "/#/login/" not in out, (out, err)
    # An IAM user, even one allowed everything, is not the account's root.
    iam = boto_client("iam", endpoint)
    user = unique("console-user")
    iam.create_user(UserName=user)
    iam.attach_user_policy(UserName=user, PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    key = iam.create_access_key(UserName=user)["AccessKey"]
    rc, out, err = nimbus_console(nimbus_bin, console_server, env={"AWS_ACCESS_KEY_ID": key["AccessKeyId"],
                                                                   "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]})
    assert rc != 0 and "/#/login/" not in out, (out, err)
    assert "root" in err, err
    status, _, body = signed_link(console_server, key["AccessKeyId"], key["SecretAccessKey"])
    assert (status, json.loads(body)) == (403, {"message": ONLY_ROOT}), body


# ---- functions' front doors on the console's origin ------------------------------------

PAGE = {"index.js": """
exports.handler = async (event) => ({
  statusCode: 200,
  headers: { 'content-type': 'text/html', 'content-security-policy': "img-src 'self'", 'service-worker-allowed': '/',
             'x-own': 'kept' },
  body: '<script>navigator.serviceWorker.register("/sw.js", {scope: "/"})</script>',
});
"""}

STREAMED_PAGE = {"index.js": """
exports.handler = awslambda.streamifyResponse(async (event, responseStream) => {
  const stream = awslambda.HttpResponseStream.from(responseStream, {
    statusCode: 200,
    headers: { 'content-type': 'text/html', 'service-worker-allowed': '/', 'x-own': 'kept' },
  });
  stream.write('<p>streamed</p>');
  stream.end();
});
"""}


def csp_of(headers) -> list[str]:
    return headers.get_all("content-security-policy") or []


def check_sandboxed(status, headers, body, own_csp: list[str]):
    assert status == 200, body
    assert headers["x-own"] == "kept"
    assert csp_of(headers) == own_csp + [SANDBOX], headers.items()
    assert "service-worker-allowed" not in headers, headers.items()


def check_untouched(status, headers, body, own_csp: list[str]):
    assert status == 200, body
    assert headers["x-own"] == "kept"
    assert csp_of(headers) == own_csp, headers.items()
    assert headers.get_all("service-worker-allowed") == ["/"], headers.items()


def test_path_style_front_doors_are_sandboxed_and_host_style_ones_are_not(server, lam, make_fn):
    """A function URL or HTTP API by path is on the console's origin: its answers run in an
    opaque origin (no service worker over the console, no reading its storage); by host name
    it is another origin, and its answers are the function's as it gave them."""
    page = make_fn("nodejs20.x", PAGE, "index.handler")
    page_url = url_id(public_url(lam, FunctionName=page.name)["FunctionUrl"])
    own = ["img-src 'self'"]
    check_sandboxed(*http_request(f"{server.endpoint}/_aws/lambda-url/{page_url}/"), own)
    check_sandboxed(*http_request(f"{server.endpoint}/_aws/elb/{page_url}/x"), own)
    check_untouched(*http_request(f"{server.endpoint}/", headers={"host": f"{page_url}.lambda-url.{REGION}.localhost"}), own)
    # The front's own answers by path too (here: no such URL).
    status, headers, _ = http_request(f"{server.endpoint}/_aws/lambda-url/{'x' * 32}/")
    assert status == 404 and csp_of(headers) == [SANDBOX]

    # A RESPONSE_STREAM URL: the head goes out before the body, sandboxed the same way.
    streamed = make_fn("nodejs20.x", STREAMED_PAGE, "index.handler")
    streamed_url = url_id(public_url(lam, FunctionName=streamed.name, InvokeMode="RESPONSE_STREAM")["FunctionUrl"])
    status, headers, body = http_request(f"{server.endpoint}/_aws/lambda-url/{streamed_url}/")
    check_sandboxed(status, headers, body, [])
    assert body == b"<p>streamed</p>" and headers["content-type"] == "text/html"
    status, headers, body = http_request(f"{server.endpoint}/", headers={"host": f"{streamed_url}.lambda-url.{REGION}.localhost"})
    check_untouched(status, headers, body, [])

    # An HTTP API, by path and by host name.
    lam.add_permission(FunctionName=page.name, StatementId=unique("apigw"), Action="lambda:InvokeFunction",
                       Principal="apigateway.amazonaws.com")
    apigw = boto_client("apigatewayv2", server.endpoint)
    api_id = apigw.create_api(Name=unique("page"), ProtocolType="HTTP", Target=arn(page.name))["ApiId"]
    try:
        check_sandboxed(*http_request(f"{server.endpoint}/_aws/execute-api/{api_id}/a"), own)
        check_untouched(*http_request(f"{server.endpoint}/a", headers={"host": f"{api_id}.execute-api.{REGION}.localhost"}), own)
    finally:
        apigw.delete_api(ApiId=api_id)

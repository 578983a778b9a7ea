"""HTTPS: `nimbus server --tls-cert/--tls-key` serves every listener over TLS. The aws CLI,
boto3 and the nimbus CLI verify it against a CA made here; plain HTTP to the port fails
cleanly; functions call the endpoint over HTTPS with the CA their environment is given; and
`aws:SecureTransport` tells a TLS request from a plain one."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, SSLError

from helpers import (
    ACCOUNT,
    aws_cli_runner,
    client_error,
    create_function,
    http_get,
    invoke,
    make_zip,
    run,
    server_env,
    unique,
)

# The bridge gateway of the default --sandbox-subnet: where linked environments reach the
# server (AWS_ENDPOINT_URL), so the certificate names it too.
SANDBOX_GATEWAY = "10.213.0.1"


def openssl(*args: str, cwd: Path) -> None:
    cp = subprocess.run(["openssl", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert cp.returncode == 0, cp.stderr.decode(errors="replace")


def make_certificates(d: Path, names: str) -> dict[str, Path]:
    """A CA and a server certificate it signs for `names` (subjectAltName syntax), with P-256
    keys. Returns the files: ca (the CA's certificate), chain (server certificate then CA),
    key (the server's key), leaf (the server certificate alone)."""
    d.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Nimbus e2e test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost", cwd=d)
    (d / "ext.cnf").write_text(
        f"subjectAltName={names}\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
    )
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf", cwd=d)
    # The chain file: the server's certificate first, then its issuer (which is how
    # environments get the root they verify against).
    (d / "chain.pem").write_text((d / "server.pem").read_text() + (d / "ca.pem").read_text())
    return {"ca": d / "ca.pem", "chain": d / "chain.pem", "key": d / "server.key", "leaf": d / "server.pem"}


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> dict[str, Path]:
    if shutil.which("openssl") is None:
        pytest.fail("the openssl command is missing (scripts/test installs Debian's openssl package)", pytrace=False)
    return make_certificates(tmp_path_factory.mktemp("tls"), f"DNS:localhost,IP:127.0.0.1,IP:{SANDBOX_GATEWAY}")


@pytest.fixture
def tls_server(server_factory, certs):
    return server_factory(args=["--tls-cert", str(certs["chain"]), "--tls-key", str(certs["key"])], ca_bundle=str(certs["ca"]))


def raw_exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Sends `data` on a fresh TCP connection and reads until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


def test_aws_cli_and_boto3_over_https(tls_server, certs, aws_cli, tmp_path):
    s = tls_server
    assert s.endpoint.startswith("https://")
    lam, sqs = s.lambda_client(), s.sqs_client()
    name = unique("tls")
    create_function(lam, name, "python3.11", "index.handler",
                         make_zip({"index.py": "def handler(event, context):\n    return {'echo': event}\n"}))
    assert invoke(lam, name, {"a": 1}).ok() == {"echo": {"a": 1}}
    # Links handed out say https.
    code = lam.get_function(FunctionName=name)["Code"]["Location"]
    assert code.startswith(f"https://127.0.0.1:{s.port}/_nimbus/code/"), code
    status, _, body = http_get(code, context=s.ssl_context())
    assert status == 200 and body[:2] == b"PK"
    url = lam.create_function_url_config(FunctionName=name, AuthType="NONE")["FunctionUrl"]
    assert url.startswith(f"https://127.0.0.1:{s.port}/_aws/lambda-url/"), url
    api = s.client("apigatewayv2").create_api(Name=unique("tlsapi"), ProtocolType="HTTP")["ApiEndpoint"]
    assert api.startswith(f"https://127.0.0.1:{s.port}/_aws/execute-api/"), api
    _, _, status_body = http_get(s.endpoint + "/_nimbus/status", context=s.ssl_context())
    endpoint_url = json.loads(status_body)["endpointUrl"]
    assert endpoint_url.startswith("https://"), endpoint_url

    q = sqs.create_queue(QueueName=unique("tlsq"))["QueueUrl"]
    assert q.startswith(f"https://127.0.0.1:{s.port}/{ACCOUNT}/"), q
    sqs.send_message(QueueUrl=q, MessageBody="over tls")
    got = sqs.receive_message(QueueUrl=q, WaitTimeSeconds=2)["Messages"]
    assert [m["Body"] for m in got] == ["over tls"]

    # boto3 without the CA refuses the server's certificate.
    from helpers import boto_client
    with pytest.raises(SSLError):
        boto_client("lambda", s.endpoint).list_functions()

    # The aws CLI with --ca-bundle (and with AWS_CA_BUNDLE).
    aws = aws_cli_runner(aws_cli, s.endpoint, tmp_path / "home")
    cp = aws("--ca-bundle", str(certs["ca"]), "lambda", "invoke", "--function-name", name, "--payload", '{"b":2}',
             str(tmp_path / "out.json"))
    assert cp.returncode == 0, cp.err
    assert json.loads((tmp_path / "out.json").read_text()) == {"echo": {"b": 2}}
    cp = aws("--ca-bundle", str(certs["ca"]), "sqs", "get-queue-url", "--queue-name", q.rsplit("/", 1)[1])
    assert cp.returncode == 0 and json.loads(cp.out)["QueueUrl"] == q, cp.err
    cp = aws("lambda", "list-functions")
    assert cp.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in cp.err, cp.err


def test_the_nimbus_cli_over_https(tls_server, certs, nimbus_bin):
    s = tls_server
    env = server_env()
    cp = run([nimbus_bin, "queue", "create", "cliq", "--endpoint", s.endpoint, "--ca-bundle", str(certs["ca"])], env=env)
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.decode().strip() == f"{s.endpoint}/{ACCOUNT}/cliq"
    cp = run([nimbus_bin, "queue", "ls", "--endpoint", s.endpoint], env=server_env({"AWS_CA_BUNDLE": str(certs["ca"])}))
    assert cp.returncode == 0 and b"/cliq" in cp.stdout, cp.stderr
    # Without the CA the system's roots do not know it.
    cp = run([nimbus_bin, "queue", "ls", "--endpoint", s.endpoint], env=env)
    assert cp.returncode != 0 and b"certificate" in cp.stderr, cp.stderr
    # Plain HTTP to the HTTPS port is told so.
    cp = run([nimbus_bin, "queue", "ls", "--endpoint", f"http://127.0.0.1:{s.port}"], env=env)
    assert cp.returncode != 0 and b"This port speaks HTTPS" in cp.stderr, cp.stderr


def test_plain_http_and_failed_handshakes_do_not_disturb_the_server(tls_server, certs):
    s = tls_server
    lam = s.lambda_client()
    # A keep-alive TLS connection opened before and used after the bad ones.
    ctx = s.ssl_context()
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    kept = ctx.wrap_socket(socket.create_connection(("127.0.0.1", s.port), timeout=10), server_hostname="127.0.0.1")
    assert kept.selected_alpn_protocol() == "http/1.1"

    # Plain HTTP: one readable 400, then the connection closes.
    answer = raw_exchange(s.port, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer
    assert b"This port speaks HTTPS" in answer
    # boto3 at an http:// URL gets that 400 as an error, not a hang.
    from helpers import boto_client
    with pytest.raises(ClientError) as e:
        boto_client("lambda", f"http://127.0.0.1:{s.port}").list_functions()
    assert client_error(e)[1] == 400
    # Garbage that starts like a TLS record, a client hello cut short, a client that
    # connects and says nothing, and a client that does not trust the certificate.
    raw_exchange(s.port, b"\x16\x03\x01\x00\x05hello")
    socket.create_connection(("127.0.0.1", s.port), timeout=5).close()
    with pytest.raises(ssl.SSLCertVerificationError):
        ssl.create_default_context().wrap_socket(socket.create_connection(("127.0.0.1", s.port), timeout=5),
                                                 server_hostname="127.0.0.1")
    # A client offering only HTTP/2 is refused at the handshake (HTTP/1.1 is what is served).
    h2 = s.ssl_context()
    h2.set_alpn_protocols(["h2"])
    with pytest.raises(ssl.SSLError):
        h2.wrap_socket(socket.create_connection(("127.0.0.1", s.port), timeout=5), server_hostname="127.0.0.1")

    # Everything still works, on new connections and on the one kept open.
    assert lam.list_functions()["Functions"] == []
    kept.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert kept.recv(4096).startswith(b"HTTP/1.1 200 OK")
    kept.close()
    assert s.proc.poll() is None
    log = s.log_path.read_text(errors="replace")
    assert "PRIVATE KEY" not in log and certs["key"].read_text().splitlines()[1] not in log


def test_functions_call_the_endpoint_over_https_with_the_environment_ca(tls_server, certs):
    s = tls_server
    lam = s.lambda_client()
    py = """
import json, os, ssl, urllib.request

def handler(event, context):
    url = os.environ["AWS_ENDPOINT_URL"]
    names = ("AWS_CA_BUNDLE", "SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS")
    out = {"endpoint": url, "vars": {k: os.environ.get(k) for k in names}}
    # The default context: SSL_CERT_FILE, as any library using the system's trust sees it.
    with urllib.request.urlopen(url + "/health", timeout=10) as r:
        out["default"] = json.loads(r.read())
    # The CA bundle botocore would use.
    ctx = ssl.create_default_context(cafile=os.environ["AWS_CA_BUNDLE"])
    with urllib.request.urlopen(url + "/health", timeout=10, context=ctx) as r:
        out["bundle"] = json.loads(r.read())
    # An unsigned API call reaches the API too (and is refused as unsigned).
    try:
        urllib.request.urlopen(url + "/2015-03-31/functions/", timeout=10)
    except urllib.error.HTTPError as e:
        out["unsigned"] = e.code
    d = os.path.dirname(os.environ["AWS_CA_BUNDLE"])
    out["trusted"] = sorted(os.listdir(d))
    out["key_in_trust"] = any("PRIVATE KEY" in open(os.path.join(d, f)).read() for f in os.listdir(d))
    out["server_key_visible"] = os.path.exists(event["key"])
    return out
"""
    name = unique("tlsfn")
    create_function(lam, name, "python3.11", "index.handler", make_zip({"index.py": py}))
    got = invoke(lam, name, {"key": str(certs["key"])}).ok()
    assert got["endpoint"].startswith("https://"), got
    assert got["default"] == got["bundle"] == {"status": "ok"}, got
    assert got["unsigned"] == 403, got
    assert got["trusted"] == ["bundle.pem", "nimbus.pem"], got
    assert got["key_in_trust"] is False and got["server_key_visible"] is False, got
    assert got["vars"]["AWS_CA_BUNDLE"] == got["vars"]["SSL_CERT_FILE"], got
    assert got["vars"]["NODE_EXTRA_CA_CERTS"].endswith("/nimbus.pem"), got

    # Node reads NODE_EXTRA_CA_CERTS when it starts (a prestarted runtime too).
    js = """
const https = require("https");
exports.handler = async () => new Promise((resolve) => {
  https.get(process.env.AWS_ENDPOINT_URL + "/health", (res) => {
    let b = ""; res.on("data", (d) => (b += d)); res.on("end", () => resolve({ status: res.statusCode, body: JSON.parse(b) }));
  }).on("error", (e) => resolve({ error: String(e) }));
});
"""
    name = unique("tlsnode")
    create_function(lam, name, "nodejs20.x", "index.handler", make_zip({"index.js": js}))
    assert invoke(lam, name).ok() == {"status": 200, "body": {"status": "ok"}}


ALLOW_ONLY_OVER_TLS = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    ],
}


def user_with_tls_only_policy(server) -> tuple[str, str]:
    iam = server.client("iam")
    name = unique("tlsuser")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="tls-only", PolicyDocument=json.dumps(ALLOW_ONLY_OVER_TLS))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def test_secure_transport_is_true_over_tls_only(server_factory, tls_server):
    plain = server_factory()
    for s, secure in [(tls_server, True), (plain, False)]:
        key, secret = user_with_tls_only_policy(s)
        lam = s.client("lambda", aws_access_key_id=key, aws_secret_access_key=secret)
        sqs = s.client("sqs", aws_access_key_id=key, aws_secret_access_key=secret)
        if secure:
            assert lam.list_functions()["Functions"] == []
            assert "QueueUrls" not in sqs.list_queues() or sqs.list_queues()["QueueUrls"] == []
        else:
            with pytest.raises(ClientError) as e:
                lam.list_functions()
            code, status, message = client_error(e)
            assert (code, status) == ("AccessDeniedException", 403), message
            assert "with an explicit deny" in message, message
            with pytest.raises(ClientError) as e:
                sqs.list_queues()
            assert client_error(e)[1] == 403


def test_tls_options_are_checked_at_start(nimbus_bin, certs, tmp_path):
    def start(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        cmd = [nimbus_bin, "server", "--listen", "127.0.0.1:0", "--data", str(tmp_path / "data"), *args]
        return run(cmd, env=server_env(env), timeout=30)

    cp = start("--tls-cert", str(certs["chain"]))
    assert cp.returncode != 0 and b"needs --tls-key" in cp.stderr, cp.stderr
    cp = start(env={"NIMBUS_TLS_KEY": str(certs["key"])})
    assert cp.returncode != 0 and b"needs --tls-cert" in cp.stderr, cp.stderr
    # The key given as the certificate: refused, and the key is not repeated.
    cp = start("--tls-cert", str(certs["key"]), "--tls-key", str(certs["key"]))
    assert cp.returncode != 0 and b"holds no PEM certificate" in cp.stderr, cp.stderr
    assert b"PRIVATE KEY" not in cp.stderr and certs["key"].read_bytes().splitlines()[1] not in cp.stderr
    cp = start("--tls-cert", str(certs["chain"]), "--tls-key", str(certs["chain"]))
    assert cp.returncode != 0 and b"holds no PEM private key" in cp.stderr, cp.stderr
    # A key that is not the certificate's.
    other = make_certificates(tmp_path / "other", "DNS:localhost")
    cp = start("--tls-cert", str(certs["chain"]), "--tls-key", str(other["key"]))
    assert cp.returncode != 0 and b"cannot be used together" in cp.stderr, cp.stderr
    cp = start("--tls-cert", str(tmp_path / "missing.pem"), "--tls-key", str(certs["key"]))
    assert cp.returncode != 0 and b"cannot read" in cp.stderr and b"missing.pem" in cp.stderr, cp.stderr


def test_a_certificate_that_does_not_name_the_functions_address_is_warned_about(server_factory, tmp_path):
    # The leaf alone (no chain), for loopback only.
    c = make_certificates(tmp_path / "loopback-only", "DNS:localhost,IP:127.0.0.1")
    s = server_factory(args=["--tls-cert", str(c["leaf"]), "--tls-key", str(c["key"])], ca_bundle=str(c["ca"]))
    status, _, body = http_get(f"https://localhost:{s.port}/_nimbus/status", context=s.ssl_context())
    assert status == 200
    host = json.loads(body)["endpointUrl"].split("//", 1)[1].rsplit(":", 1)[0]
    warning = f"does not name {host}, where functions reach this server"
    if host == "127.0.0.1":  # process isolation or host network: the certificate names it
        assert warning not in s.log_tail(20000)
    else:  # the bridge's gateway
        assert warning in s.log_tail(20000)


def test_tls_connections_are_capped_and_timed(server_factory, certs):
    """Over HTTPS too: an idle connection is closed after the header timeout, and one over
    the cap is answered 503 once its handshake is done."""
    s = server_factory(args=["--tls-cert", str(certs["chain"]), "--tls-key", str(certs["key"]),
                             "--max-connections", "2", "--http-header-timeout", "2"], ca_bundle=str(certs["ca"]))
    ctx = s.ssl_context()
    time.sleep(2.5)  # the start's own client connections time out first

    def tls_connect():
        return ctx.wrap_socket(socket.create_connection(("127.0.0.1", s.port), timeout=10), server_hostname="127.0.0.1")

    held = [tls_connect() for _ in range(2)]
    over = tls_connect()
    over.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    answer = over.recv(4096)
    assert answer.startswith(b"HTTP/1.1 503"), answer
    over.close()
    # The held connections send nothing: closed by the header timeout, freeing their slots.
    t0 = time.monotonic()
    for h in held:
        h.settimeout(6)
        try:
            assert h.recv(10) == b""
        except (ConnectionResetError, ssl.SSLError):
            pass
    assert time.monotonic() - t0 < 5
    status, _, _ = http_get(s.endpoint + "/health", context=s.ssl_context())
    assert status == 200

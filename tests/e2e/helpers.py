"""Shared helpers for the Nimbus end-to-end tests: zips, servers, clients, invokes."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
from botocore.config import Config
from botocore.exceptions import ClientError

REGION = "us-east-1"
ACCOUNT = "000000000000"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/nimbus-e2e"
# The trust policy of an execution role: Lambda may assume it.
TRUST_LAMBDA = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
API = "/2015-03-31"

LAST_MODIFIED_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$")
LOG_STREAM_RE = re.compile(r"^\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ISO_TS = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z"
REPORT_RE = re.compile(
    r"^REPORT RequestId: (?P<id>\S+)\tDuration: (?P<duration>\d+(?:\.\d+)?) ms"
    r"\tBilled Duration: (?P<billed>\d+) ms\tMemory Size: (?P<mem>\d+) MB"
    r"\tMax Memory Used: (?P<used>\d+) MB"
    r"(?:\tInit Duration: (?P<init>\d+(?:\.\d+)?) ms)?\t?$"
)

# Server processes still running; conftest attaches their logs to failure reports and
# kills them at exit.
LIVE_SERVERS: list["Server"] = []


def arn(name: str, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:aws:lambda:{region}:{account}:function:{name}"


def unique(prefix: str) -> str:
    """A function name unique to this run (pattern [a-zA-Z0-9-_], ≤ 64 chars)."""
    return f"{prefix[:40]}-{uuid.uuid4().hex[:12]}"


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


# ---------------------------------------------------------------------------------
# Zips
# ---------------------------------------------------------------------------------


@dataclass
class Entry:
    """A zip entry with an explicit Unix mode (e.g. Entry(data, 0o755) for bootstrap)."""

    data: bytes | str
    mode: int = 0o644


def make_zip(files: dict[str, bytes | str | Entry], *, exec_names: tuple[str, ...] = ("bootstrap",)) -> bytes:
    """Build a zip in memory. Entries named in exec_names default to mode 0755."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            if isinstance(content, Entry):
                data, mode = content.data, content.mode
            else:
                data = content
                mode = 0o755 if name.rsplit("/", 1)[-1] in exec_names else 0o644
            if isinstance(data, str):
                data = data.encode()
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so external_attr carries the mode
            info.external_attr = (0o100000 | mode) << 16
            zf.writestr(info, data)
    return buf.getvalue()


def zip_dir(path: Path) -> bytes:
    files: dict[str, bytes | str | Entry] = {}
    for p in sorted(path.rglob("*")):
        if p.is_file():
            files[p.relative_to(path).as_posix()] = Entry(p.read_bytes(), p.stat().st_mode & 0o777)
    return make_zip(files)


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.encode()
        p.write_bytes(content)
    return root


def big_sparse_zip(unzipped_bytes: int) -> bytes:
    """A small zip (zeros compress ~1000:1) whose content unzips to unzipped_bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("index.js", "exports.handler = async () => 'big';\n")
        chunk = b"\0" * (1 << 20)
        with zf.open("zeros.bin", "w", force_zip64=True) as f:
            left = unzipped_bytes
            while left > 0:
                n = min(left, len(chunk))
                f.write(chunk[:n])
                left -= n
    return buf.getvalue()


# ---------------------------------------------------------------------------------
# Processes and servers
# ---------------------------------------------------------------------------------


def data_dir_holds(data_dir: Path, needle: str) -> list[str]:
    """The files under `data_dir` whose bytes contain `needle`."""
    hits = []
    for root, _dirs, files in os.walk(data_dir):
        for name in files:
            path = Path(root) / name
            try:
                if needle.encode() in path.read_bytes():
                    hits.append(str(path))
            except OSError:
                pass
    return hits


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond: Callable[[], Any], timeout: float = 10.0, interval: float = 0.2, what: str = "condition") -> Any:
    """Poll cond() until it returns something truthy; return it. Raise on timeout."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            v = cond()
            if v:
                return v
        except (AssertionError, ClientError, OSError) as e:  # keep polling, report the last one
            last_exc = e
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last error: {last_exc!r}")
        time.sleep(interval)


def http_get(url: str, timeout: float = 10.0, context=None) -> tuple[int, dict[str, str], bytes]:
    """A GET; `context` is the ssl.SSLContext for an https URL."""
    req = urllib.request.Request(url, method="GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def http_request(url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None):
    """(status, headers as an email.message.Message, body) of one HTTP request; errors too."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


# The key every test server accepts as its administrator's, and that every client in the
# suite signs with (boto3, the aws CLI, the nimbus CLI, raw signed requests).
ADMIN_KEY_ID, ADMIN_SECRET = "test", "test"


def server_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a Nimbus server (or CLI) is started with: ours minus NIMBUS_*, plus
    the administrator's key (the server takes it; the CLI signs with it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NIMBUS_") and not k.startswith("AWS_")}
    env.setdefault("RUST_BACKTRACE", "1")
    env["NIMBUS_ADMIN_ACCESS_KEY_ID"] = ADMIN_KEY_ID
    env["NIMBUS_ADMIN_SECRET_ACCESS_KEY"] = ADMIN_SECRET
    env["AWS_ACCESS_KEY_ID"] = ADMIN_KEY_ID
    env["AWS_SECRET_ACCESS_KEY"] = ADMIN_SECRET
    for k, v in (extra or {}).items():
        # None removes a variable (a server without the administrator's key, say).
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def postgres_database() -> str:
    """The URL of a new, empty database on the PostgreSQL server NIMBUS_TEST_POSTGRES names
    (a URL without a database; scripts/test starts one); fails the test without it."""
    import pytest

    base = os.environ.get("NIMBUS_TEST_POSTGRES", "").rstrip("/")
    if not base:
        pytest.fail("NIMBUS_TEST_POSTGRES is not set: it must name a PostgreSQL server (scripts/test starts one)",
                    pytrace=False)
    name = f"nimbus_e2e_{uuid.uuid4().hex[:12]}"
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", f"{base}/postgres", "-c", f"CREATE DATABASE {name}"],
                   check=True, capture_output=True, timeout=30)
    return f"{base}/{name}"


def _thread_stacks(pid: int) -> str:
    """Each thread's state, wait channel and kernel stack (root only), for a report."""
    out = []
    for task in sorted(Path(f"/proc/{pid}/task").glob("*")):
        parts = []
        for name in ("comm", "wchan", "stack"):
            try:
                parts.append((task / name).read_text().strip())
            except OSError as e:
                parts.append(f"({name}: {e.strerror})")
        try:
            parts.insert(1, (task / "stat").read_text().rsplit(")", 1)[1].split()[0])
        except (OSError, IndexError):
            pass
        out.append(f"{task.name}: " + " | ".join(parts))
    return "\n".join(out) or "(no threads)"


class Server:
    """One `nimbus server` process on a free loopback port."""

    def __init__(
        self,
        bin: str,
        data_dir: Path,
        log_path: Path,
        *,
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
        use_env_config: bool = False,
        name: str = "server",
        ca_bundle: str | None = None,
        port: int | None = None,
    ):
        self.bin = bin
        # Set for a server started with --tls-cert/--tls-key: clients trust these certificates.
        self.ca_bundle = ca_bundle
        self.data_dir = Path(data_dir)
        self.log_path = Path(log_path)
        self.args = list(args or [])
        self.extra_env = dict(env or {})
        self.use_env_config = use_env_config
        self.name = name
        # A port of the test's choosing (else a free one at each start).
        self.fixed_port = port
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        # Run in the child before the server starts (e.g. to give it a controlling terminal).
        self.preexec_fn = None

    @property
    def endpoint(self) -> str:
        assert self.port is not None, "server not started"
        return f"{'https' if self.ca_bundle else 'http'}://127.0.0.1:{self.port}"

    def ssl_context(self):
        """What a client verifying this server uses (None for a plain-HTTP server)."""
        if not self.ca_bundle:
            return None
        import ssl

        return ssl.create_default_context(cafile=self.ca_bundle)

    def command(self) -> tuple[list[str], dict[str, str]]:
        env = server_env(self.extra_env)
        cmd = [self.bin, "server"]
        listen = f"127.0.0.1:{self.port}"
        if self.use_env_config:
            env["NIMBUS_LISTEN"] = listen
            env["NIMBUS_DATA"] = str(self.data_dir)
        else:
            cmd += ["--listen", listen, "--data", str(self.data_dir)]
        return cmd + self.args, env

    def start(self, timeout: float = 15.0) -> "Server":
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.fixed_port or free_port()
        cmd, env = self.command()
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start {cmd} =====\n".encode())
            log.flush()
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                         preexec_fn=self.preexec_fn)
        LIVE_SERVERS.append(self)
        deadline = time.monotonic() + timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                raise RuntimeError(f"nimbus server exited with {rc} before becoming healthy:\n{self.log_tail()}")
            try:
                status, _, body = http_get(self.endpoint + "/health", timeout=1.0, context=self.ssl_context())
                if status == 200:
                    if b'"auth":"off"' not in body.replace(b" ", b""):
                        ensure_execution_role(self.endpoint, self.ca_bundle)
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"nimbus server not healthy after {timeout}s:\n{self.log_tail()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 40.0) -> int | None:
        """SIGTERM and wait; returns the exit code (SIGKILLs and returns None on timeout).
        The default outlasts the server's own drain (`--drain-timeout`, 30 s)."""
        if self.proc is None:
            return None
        rc = self.proc.poll()
        if rc is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                rc = None
        if self in LIVE_SERVERS:
            LIVE_SERVERS.remove(self)
        return rc

    def kill(self) -> None:
        """SIGKILL, then wait until the process is gone (its files closed, `nimbus.lock`
        released): a thread in an uninterruptible kernel call holds up a killed process's
        exit. One still there after a minute is reported on stderr (shown with a failing
        test) with where its threads are; whoever starts a server on its data next fails."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                print(f"server pid {self.proc.pid} still there a minute after SIGKILL:\n{_thread_stacks(self.proc.pid)}", file=sys.stderr)
        if self in LIVE_SERVERS:
            LIVE_SERVERS.remove(self)

    def restart(self) -> "Server":
        rc = self.stop()
        assert rc is not None, "server did not stop on SIGTERM"
        return self.start()

    def log_tail(self, n: int = 6000) -> str:
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return "<no log>"
        return data[-n:].decode("utf-8", "replace")

    # clients ---------------------------------------------------------------------
    def lambda_client(self, *, validate: bool = True, region: str = REGION):
        return boto_client("lambda", self.endpoint, validate=validate, region=region, verify=self.ca_bundle)

    def logs_client(self, *, region: str = REGION):
        return boto_client("logs", self.endpoint, region=region, verify=self.ca_bundle)

    def sqs_client(self, *, validate: bool = True, protocol: str = "json"):
        if protocol == "json":
            return boto_client("sqs", self.endpoint, validate=validate, verify=self.ca_bundle)
        return sqs_client(self.endpoint, validate=validate, protocol=protocol)

    def events_client(self, *, validate: bool = True):
        return boto_client("events", self.endpoint, validate=validate, verify=self.ca_bundle)

    def sns_client(self, *, validate: bool = True):
        return boto_client("sns", self.endpoint, validate=validate, verify=self.ca_bundle)

    def client(self, service: str, **kwargs):
        """A boto3 client of any service for this server (signed with the test keys unless
        aws_access_key_id/... are given)."""
        return boto_client(service, self.endpoint, verify=self.ca_bundle, **kwargs)


def ensure_execution_role(endpoint: str, verify: str | None = None) -> None:
    """The suite's execution role (ROLE): trusts Lambda and may do anything, as the functions
    of most tests call Nimbus with it. CreateFunction refuses a role that does not exist."""
    iam = boto_client("iam", endpoint, verify=verify)
    name = ROLE.rsplit("/", 1)[1]
    try:
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST_LAMBDA))
    except iam.exceptions.EntityAlreadyExistsException:
        return
    except ClientError:
        return  # a server that does not take the suite's administrator key
    iam.attach_role_policy(RoleName=name, PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")


def sns_may_send(queue_arn: str, topic_arn: str | None = None) -> str:
    """A queue `Policy` that lets SNS send to the queue for `topic_arn` (or for any topic of
    the account), as AWS requires of a queue a topic delivers to."""
    source = topic_arn or f"arn:aws:sns:{REGION}:{queue_arn.split(':')[4]}:*"
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage",
        "Resource": queue_arn, "Condition": {"ArnLike": {"aws:SourceArn": source}}}]})


def url_id(url: str) -> str:
    """The id in a function URL or an API endpoint, by path (`http://127.0.0.1:<port>/_aws/
    lambda-url/<id>/`, Nimbus's default) or by host name (`http://<id>.lambda-url.…`)."""
    rest = url.split("//", 1)[1]
    for kind in ("/_aws/lambda-url/", "/_aws/execute-api/"):
        if kind in rest:
            return rest.split(kind, 1)[1].split("/", 1)[0]
    return rest.split(".", 1)[0]


def public_url(lam, **kwargs) -> dict:
    """CreateFunctionUrlConfig with AuthType NONE plus the resource-policy statement that lets
    anyone call it, which AWS requires of URLs made through the API (the console adds it)."""
    cfg = lam.create_function_url_config(AuthType="NONE", **kwargs)
    extra = {"Qualifier": kwargs["Qualifier"]} if "Qualifier" in kwargs else {}
    lam.add_permission(FunctionName=kwargs["FunctionName"], StatementId="FunctionURLAllowPublicAccess",
                       Action="lambda:InvokeFunctionUrl", Principal="*", FunctionUrlAuthType="NONE", **extra)
    return cfg


def boto_client(service: str, endpoint: str, *, validate: bool = True, region: str = REGION, verify: str | None = None,
                aws_access_key_id: str = "test", aws_secret_access_key: str = "test"):
    """A boto3 client; `verify` is the CA bundle for an https endpoint."""
    cfg = Config(
        retries={"max_attempts": 0},
        read_timeout=60,
        connect_timeout=5,
        parameter_validation=validate,
        max_pool_connections=20,
    )
    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=aws_access_key_id,
        aws_secret_access_key=aws_secret_access_key,
        config=cfg,
        verify=verify,
    )


def lambda_client(endpoint: str, *, validate: bool = True, region: str = REGION):
    return boto_client("lambda", endpoint, validate=validate, region=region)


def events_client(endpoint: str, *, validate: bool = True, region: str = REGION):
    """An EventBridge (CloudWatch Events) client."""
    return boto_client("events", endpoint, validate=validate, region=region)


# botocore's last SQS model in the query protocol (botocore 1.29.165); current botocore
# speaks JSON 1.0 to SQS, so this is how boto3 drives Nimbus over the query protocol.
SQS_QUERY_MODEL_DIR = Path(__file__).parent / "data" / "sqs-query-model"


def sqs_client(endpoint: str, *, validate: bool = True, protocol: str = "json", region: str = REGION):
    """An SQS client; protocol="query" loads the query-protocol model instead of the JSON one."""
    if protocol == "json":
        return boto_client("sqs", endpoint, validate=validate, region=region)
    import botocore.session

    session = botocore.session.get_session()
    session.get_component("data_loader").search_paths.insert(0, str(SQS_QUERY_MODEL_DIR))
    assert session.get_service_model("sqs").protocol == "query"
    cfg = Config(retries={"max_attempts": 0}, read_timeout=60, connect_timeout=5, parameter_validation=validate)
    return boto3.session.Session(botocore_session=session).client(
        "sqs", endpoint_url=endpoint, region_name=region, aws_access_key_id="test", aws_secret_access_key="test", config=cfg
    )


def sns_client(endpoint: str, *, validate: bool = True, region: str = REGION):
    """An SNS client (botocore speaks SNS in the query protocol only)."""
    return boto_client("sns", endpoint, validate=validate, region=region)


def sqs_attributes_md5(attrs: dict) -> str | None:
    """MD5OfMessageAttributes computed independently, as AWS documents it: names in order,
    each of name, type and value length-prefixed (4-byte big-endian), with a transport byte
    (1 string, 2 binary) before the value."""
    if not attrs:
        return None
    h = hashlib.md5()

    def put(b: bytes):
        h.update(len(b).to_bytes(4, "big"))
        h.update(b)

    for name in sorted(attrs, key=lambda n: n.encode()):
        v = attrs[name]
        put(name.encode())
        put(v["DataType"].encode())
        if "StringValue" in v:
            h.update(b"\x01")
            put(v["StringValue"].encode())
        else:
            binary = v["BinaryValue"]
            h.update(b"\x02")
            put(binary if isinstance(binary, bytes) else binary.encode())
    return h.hexdigest()


def signed_request(
    endpoint: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    service: str = "lambda",
    timeout: float = 60.0,
) -> tuple[int, dict[str, str], bytes]:
    """A raw SigV4-signed HTTP request (dummy credentials); returns (status, headers, body)."""
    url = endpoint + path
    hdrs = {"Content-Type": "application/json"}
    hdrs.update(headers or {})
    req = botocore.awsrequest.AWSRequest(method=method, url=url, data=body or b"", headers=hdrs)
    botocore.auth.SigV4Auth(botocore.credentials.Credentials("test", "test"), service, REGION).add_auth(req)
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        target = u.path + (f"?{u.query}" if u.query else "")
        conn.request(method, target, body=body or b"", headers=dict(req.headers.items()))
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def admin_signed(endpoint: str, service: str, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> dict[str, str]:
    """`headers` plus a SigV4 signature with the test servers' administrator key, for raw
    requests built by hand (`path` may carry a query string; `Host` is the endpoint's)."""
    req = botocore.awsrequest.AWSRequest(method=method, url=endpoint + path, data=body, headers=dict(headers))
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(ADMIN_KEY_ID, ADMIN_SECRET), service, REGION).add_auth(req)
    out = dict(req.headers.items())
    out["Host"] = urllib.parse.urlsplit(endpoint).netloc
    return out


def error_code_of(headers: dict[str, str], body: bytes) -> str | None:
    """The AWS error code the way botocore's rest-json parser finds it."""
    code = headers.get("x-amzn-errortype")
    if not code:
        try:
            doc = json.loads(body or b"{}")
        except ValueError:
            return None
        code = doc.get("__type") or doc.get("code") or doc.get("Type")
    if code:
        code = code.split(":")[0].split("#")[-1]
    return code


# ---------------------------------------------------------------------------------
# Functions and invocations
# ---------------------------------------------------------------------------------


@dataclass
class Fn:
    name: str
    config: dict
    zip_bytes: bytes
    client: Any = field(repr=False, default=None)

    @property
    def arn(self) -> str:
        return self.config["FunctionArn"]


def create_function(
    client,
    name: str,
    runtime: str,
    handler: str,
    zip_bytes: bytes,
    *,
    wait: bool = True,
    **kwargs,
) -> Fn:
    resp = client.create_function(
        FunctionName=name,
        Runtime=runtime,
        Handler=handler,
        Role=kwargs.pop("Role", ROLE),
        Code={"ZipFile": zip_bytes},
        **kwargs,
    )
    if wait:
        client.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return Fn(name=name, config=resp, zip_bytes=zip_bytes, client=client)


@dataclass
class Invocation:
    status: int
    error: str | None
    raw: bytes
    log: str | None
    request_id: str | None
    version: str | None
    elapsed: float
    response: dict = field(repr=False, default_factory=dict)

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.raw)
        except ValueError as e:
            raise AssertionError(f"payload is not JSON: {self.raw[:500]!r}") from e

    @property
    def log_lines(self) -> list[str]:
        return (self.log or "").splitlines()

    def ok(self) -> Any:
        """Assert a successful invocation and return the decoded payload."""
        assert self.status == 200, self.describe()
        assert self.error is None, self.describe()
        return self.json

    def failed(self, error: str = "Unhandled") -> dict:
        """Assert a function error (HTTP 200 + X-Amz-Function-Error) and return the payload."""
        assert self.status == 200, self.describe()
        assert self.error == error, self.describe()
        doc = self.json
        assert isinstance(doc, dict), self.describe()
        return doc

    def describe(self) -> str:
        return (
            f"status={self.status} FunctionError={self.error!r} requestId={self.request_id}\n"
            f"payload={self.raw[:2000]!r}\nlog tail:\n{self.log}"
        )


def invoke(
    client,
    name: str,
    payload: Any = None,
    *,
    tail: bool = True,
    raw: bytes | None = None,
    client_context: dict | None = None,
) -> Invocation:
    kw: dict[str, Any] = {"FunctionName": name, "InvocationType": "RequestResponse"}
    if tail:
        kw["LogType"] = "Tail"
    kw["Payload"] = raw if raw is not None else json.dumps({} if payload is None else payload).encode()
    if client_context is not None:
        kw["ClientContext"] = base64.b64encode(json.dumps(client_context).encode()).decode()
    t0 = time.monotonic()
    resp = client.invoke(**kw)
    body = resp["Payload"].read()
    elapsed = time.monotonic() - t0
    log = resp.get("LogResult")
    return Invocation(
        status=resp["StatusCode"],
        error=resp.get("FunctionError"),
        raw=body,
        log=base64.b64decode(log).decode("utf-8", "replace") if log is not None else None,
        request_id=resp["ResponseMetadata"].get("RequestId"),
        version=resp.get("ExecutedVersion"),
        elapsed=elapsed,
        response=resp,
    )


def concurrently(n: int, fn: Callable[[int], Any]) -> list[Any]:
    """Runs fn(0) … fn(n-1) on n threads at once; their results, in order."""
    import threading

    out: list[Any] = [None] * n

    def run(i: int) -> None:
        out[i] = fn(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def client_error(excinfo) -> tuple[str, int, str]:
    """(code, http status, message) of a pytest.raises(ClientError) result."""
    e = excinfo.value
    err = e.response.get("Error", {})
    return err.get("Code", ""), e.response["ResponseMetadata"]["HTTPStatusCode"], err.get("Message", "")


def run(cmd: list[str], *, env: dict[str, str] | None = None, timeout: float = 60, input: bytes | None = None,
        cwd: str | Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd,
        env=env,
        timeout=timeout,
        input=input,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=None if input is not None else subprocess.DEVNULL,
    )


def aws_cli_runner(aws_cli: str, endpoint: str, home: Path, *, timeout: float = 120) -> Callable[..., subprocess.CompletedProcess]:
    """`aws(*args, cwd=None)` runs the aws CLI v1 against `endpoint` in a hermetic
    environment (its own HOME, no config or credential files, test keys, one attempt, no
    instance metadata). The result also has `.out` and `.err` as text."""
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8",
        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(home / "no-config"), "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true", "AWS_MAX_ATTEMPTS": "1", "AWS_RETRY_MODE": "standard",
    }

    def aws(*args: str, cwd=None) -> subprocess.CompletedProcess:
        cp = run([aws_cli, "--endpoint-url", endpoint, "--output", "json", *args], env=env, timeout=timeout, cwd=cwd)
        cp.out = cp.stdout.decode("utf-8", "replace")
        cp.err = cp.stderr.decode("utf-8", "replace")
        return cp

    return aws


def log_events(logs, group: str, stream: str) -> list[str]:
    resp = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)
    return [e["message"].rstrip("\n") for e in resp["events"]]


def all_group_messages(logs, group: str) -> list[str]:
    out: list[str] = []
    kwargs: dict[str, Any] = {"logGroupName": group}
    for _ in range(50):
        resp = logs.filter_log_events(**kwargs)
        out += [e["message"].rstrip("\n") for e in resp["events"]]
        tok = resp.get("nextToken")
        if not tok:
            break
        kwargs["nextToken"] = tok
    return out


PY = sys.executable


def expect_error(fn: Callable[[], Any], code: str, status: int) -> str:
    """Calls fn, which must raise botocore's ClientError with this code and HTTP status;
    returns the error message."""
    import pytest
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as e:
        fn()
    got = client_error(e)
    assert got[:2] == (code, status), got
    return got[2]


def run_here(request, **_):
    """A boto3 `before-sign` hook pinning a request to the node it reaches: a request
    carrying `x-nimbus-forwarded-by` is never sent on to another node (`nimbus_api::forward`)."""
    request.headers["x-nimbus-forwarded-by"] = "test"

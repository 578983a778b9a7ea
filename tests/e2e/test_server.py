"""Server process behaviour: health, data-dir lock, configuration, restarts, runtimes."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from helpers import (
    ACCOUNT,
    REGION,
    create_function,
    free_port,
    http_get,
    invoke,
    make_zip,
    run,
    server_env,
    unique,
)

COUNTER_JS = """
let n = 0;
const ENV_TOKEN = require('crypto').randomUUID(); // pids repeat across PID namespaces
exports.handler = async (event) => ({ n: ++n, pid: ENV_TOKEN });
"""

ALL_RUNTIMES = ["provided.al2023", "provided.al2", "nodejs20.x", "nodejs22.x", "nodejs24.x", "python3.11", "python3.12", "python3.13"]


def test_health(server):
    status, _, _ = http_get(server.endpoint + "/health")
    assert status == 200


def test_second_server_on_same_data_dir_is_refused(server_factory):
    first = server_factory()
    port = free_port()
    cmd = [first.bin, "server", "--listen", f"127.0.0.1:{port}", "--data", str(first.data_dir)]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         env=server_env())
    try:
        out, _ = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        pytest.fail("second server on the same --data kept running instead of exiting")
    assert p.returncode != 0
    assert time.monotonic() - t0 < 10
    text = out.decode(errors="replace").lower()
    assert "lock" in text or "another" in text, text
    # the first one is unharmed
    status, _, _ = http_get(first.endpoint + "/health")
    assert status == 200


def test_env_vars_configure_listen_and_data(server_factory):
    s = server_factory(use_env_config=True)
    status, _, _ = http_get(s.endpoint + "/health")
    assert status == 200
    lam = s.lambda_client()
    name = unique("envcfg")
    create_function(lam, name, "nodejs20.x", "index.handler", make_zip({"index.js": COUNTER_JS}))
    assert any(s.data_dir.iterdir()), "NIMBUS_DATA directory was not used"
    assert lam.get_function(FunctionName=name)["Configuration"]["FunctionName"] == name


def test_default_region_and_account(lam, make_fn):
    fn = make_fn("nodejs20.x", {"index.js": COUNTER_JS}, "index.handler")
    assert fn.config["FunctionArn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{fn.name}"


def test_region_and_account_flags(server_factory):
    s = server_factory(args=["--region", "eu-west-1", "--account-id", "123456789012"])
    lam = s.lambda_client(region="eu-west-1")
    name = unique("regacct")
    # The suite's role exists in this server's account.
    role = "arn:aws:iam::123456789012:role/nimbus-e2e"
    fn = create_function(lam, name, "nodejs20.x", "index.handler", make_zip({"index.js": COUNTER_JS}), Role=role)
    full = f"arn:aws:lambda:eu-west-1:123456789012:function:{name}"
    assert fn.config["FunctionArn"] == full
    assert lam.get_function_configuration(FunctionName=full)["FunctionArn"] == full
    assert lam.get_function_configuration(FunctionName=f"123456789012:function:{name}")["FunctionName"] == name
    inv = invoke(lam, name, {})
    assert inv.ok()["n"] == 1


def test_sigterm_exits_cleanly(server_factory):
    s = server_factory()
    t0 = time.monotonic()
    rc = s.stop(timeout=10)
    assert rc == 0, f"exit code after SIGTERM: {rc}"
    assert time.monotonic() - t0 < 10


def test_sigterm_with_warm_environments_and_restart(server_factory):
    s = server_factory()
    lam = s.lambda_client()
    name = unique("persist")
    zip_bytes = make_zip({"index.js": COUNTER_JS})
    created = create_function(lam, name, "nodejs20.x", "index.handler", zip_bytes,
                              Environment={"Variables": {"KEEP": "v"}}, MemorySize=256, Timeout=7)
    assert invoke(lam, name, {}).ok()["n"] == 1  # leaves a warm environment behind

    before = lam.get_function(FunctionName=name)
    assert s.stop(timeout=10) == 0
    s.start()
    lam = s.lambda_client()
    after = lam.get_function(FunctionName=name)

    for key in ("FunctionArn", "CodeSha256", "CodeSize", "Runtime", "Handler", "MemorySize", "Timeout",
                "Environment", "RevisionId", "LastModified"):
        assert after["Configuration"][key] == before["Configuration"][key], key
    assert after["Configuration"]["CodeSha256"] == created.config["CodeSha256"]
    status, _, body = http_get(after["Code"]["Location"])
    assert status == 200 and body == zip_bytes
    inv = invoke(lam, name, {})
    assert inv.ok()["n"] == 1  # cold again after the restart
    names = [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    assert names == [name]


def test_idle_timeout_reaps_environments(server_factory, lam, make_fn):
    s = server_factory(args=["--idle-timeout", "1"])
    lam1 = s.lambda_client()
    name = unique("idle")
    create_function(lam1, name, "nodejs20.x", "index.handler", make_zip({"index.js": COUNTER_JS}))
    # control: the shared server runs with the default idle timeout
    control = make_fn("nodejs20.x", {"index.js": COUNTER_JS}, "index.handler")
    first = invoke(lam1, name, {}).ok()
    second = invoke(lam1, name, {}).ok()
    assert (first["n"], second["n"]) == (1, 2)  # warm within the idle timeout
    assert second["pid"] == first["pid"]
    assert invoke(lam, control.name, {}).ok()["n"] == 1
    time.sleep(3.5)
    third = invoke(lam1, name, {}).ok()
    assert third["n"] == 1, "environment should have been shut down after --idle-timeout 1"
    assert third["pid"] != first["pid"]
    assert invoke(lam, control.name, {}).ok()["n"] == 2, "default idle timeout should keep it for 3.5 s"


def test_runtimes_json(runtimes_info):
    for rt in ALL_RUNTIMES:
        assert rt in runtimes_info, f"{rt} missing from `nimbus runtimes --output json`"
        entry = runtimes_info[rt]
        assert isinstance(entry["available"], bool), entry
        assert "path" in entry, entry
    for rt in ("nodejs20.x", "python3.11", "provided.al2023", "provided.al2"):
        assert runtimes_info[rt]["available"] is True, runtimes_info[rt]
    assert runtimes_info["nodejs20.x"]["path"], runtimes_info["nodejs20.x"]


def test_runtimes_table(nimbus_bin):
    cp = run([nimbus_bin, "runtimes"], env=server_env())
    assert cp.returncode == 0, cp.stderr
    out = cp.stdout.decode()
    for rt in ALL_RUNTIMES:
        assert rt in out


def test_memory_pressure_reaps_idle_environments(server_factory):
    # "Less than 100 % available" always holds, so every idle environment counts as
    # surplus and is reaped at the next tick; 0 turns the policy off.
    pressured = server_factory(args=["--min-available-memory-percent", "100"]).lambda_client()
    relaxed = server_factory(args=["--min-available-memory-percent", "0"]).lambda_client()
    for lam in (pressured, relaxed):
        create_function(lam, "mem", "nodejs20.x", "index.handler", make_zip({"index.js": COUNTER_JS}))
        assert invoke(lam, "mem", {}).ok()["n"] == 1
    time.sleep(2.5)
    assert invoke(pressured, "mem", {}).ok()["n"] == 1, "idle environment should have been reaped"
    assert invoke(relaxed, "mem", {}).ok()["n"] == 2, "without pressure the environment stays warm"


def test_relative_data_dir_works_from_the_working_directory(nimbus_bin, tmp_path):
    """`--data ./data` (the README's default is `./.nimbus`) is resolved against the server's
    working directory, also for paths that sandboxes bind."""
    from helpers import ensure_execution_role, lambda_client

    port = free_port()
    proc = subprocess.Popen([nimbus_bin, "server", "--listen", f"127.0.0.1:{port}", "--data", "./data"], cwd=tmp_path,
                            env=server_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                if http_get(endpoint + "/health", timeout=1)[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "server did not come up"
            time.sleep(0.05)
        ensure_execution_role(endpoint)
        lam = lambda_client(endpoint)
        create_function(lam, "rel", "nodejs20.x", "index.handler", make_zip({"index.js": COUNTER_JS}))
        assert invoke(lam, "rel", {}).ok()["n"] == 1
        assert (tmp_path / "data" / "nimbus.db").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_json_log_format(server_factory):
    """`--log-format json`: every line the server logs is one JSON object with a level and a
    message; levels from NIMBUS_LOG."""
    s = server_factory(args=["--log-format", "json"], env={"NIMBUS_LOG": "debug"})
    s.lambda_client().list_functions()
    s.stop()
    lines = [l for l in s.log_path.read_text().splitlines() if l.strip() and not l.startswith("=====")]
    records = [json.loads(l) for l in lines]
    assert records and all(r["level"] in ("TRACE", "DEBUG", "INFO", "WARN", "ERROR") for r in records)
    messages = [r["fields"].get("message", "") for r in records]
    assert any("Nimbus listening on" in m for m in messages), messages[:20]
    assert any(r["level"] == "DEBUG" for r in records)

"""Runtime failures: crashes, init errors, timeouts, huge output, oversized responses."""

from __future__ import annotations

import base64
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from helpers import Entry, invoke, make_zip

NODE_COUNTER = """
let n = 0;
const ENV_TOKEN = require('crypto').randomUUID(); // pids repeat across PID namespaces
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
exports.handler = async (event) => {
  n += 1;
  if (event.exit) process.exit(1);
  if (event.sleep) await sleep(event.sleep);
  if (event.exitLater) setTimeout(() => process.exit(3), 50);
  return { n, pid: ENV_TOKEN };
};
"""

PY_COUNTER = """
import os, threading, time
n = 0
import uuid
ENV_TOKEN = uuid.uuid4().hex  # pids repeat across PID namespaces

def lambda_handler(event, context):
    global n
    n += 1
    if event.get("exit"):
        os._exit(1)
    if event.get("sleep"):
        time.sleep(event["sleep"] / 1000)
    if event.get("exitLater"):
        threading.Timer(0.05, lambda: os._exit(3)).start()
    return {"n": n, "pid": ENV_TOKEN}
"""

RUNTIMES = {
    "node": ("nodejs20.x", {"index.js": NODE_COUNTER}, "index.handler"),
    "python": ("python3.11", {"lambda_function.py": PY_COUNTER}, "lambda_function.lambda_handler"),
}


@pytest.mark.parametrize("lang", list(RUNTIMES))
def test_runtime_exit_mid_invoke(lam, make_fn, lang):
    runtime, files, handler = RUNTIMES[lang]
    fn = make_fn(runtime, files, handler)
    first = invoke(lam, fn.name, {}).ok()
    assert first["n"] == 1
    t0 = time.monotonic()
    inv = invoke(lam, fn.name, {"exit": True})
    assert time.monotonic() - t0 < 10
    doc = inv.failed()
    assert doc["errorType"] == "Runtime.ExitError", doc
    assert doc["errorMessage"] == f"RequestId: {inv.request_id} Error: Runtime exited with error: exit status 1", doc
    assert inv.log_lines[0].startswith(f"START RequestId: {inv.request_id}")
    assert any(ln.startswith(f"REPORT RequestId: {inv.request_id}") for ln in inv.log_lines), inv.log
    after = invoke(lam, fn.name, {}).ok()
    assert after["n"] == 1, "expected a fresh environment after the crash"
    assert after["pid"] != first["pid"]


@pytest.mark.parametrize("lang", list(RUNTIMES))
def test_runtime_exit_between_invocations(lam, make_fn, lang):
    runtime, files, handler = RUNTIMES[lang]
    fn = make_fn(runtime, files, handler)
    first = invoke(lam, fn.name, {"exitLater": True}).ok()  # returns, then the process exits
    assert first["n"] == 1
    time.sleep(0.5)
    # The environment is frozen between invocations (as in Lambda), so the timer that exits
    # may fire only once the next invocation thaws it: that one either fails with
    # Runtime.ExitError or runs in a fresh environment; after it, a fresh one runs.
    # The environment is frozen between invocations (as in Lambda): the timer that exits
    # fires only after a later invocation thaws it. Until then invocations run in the old
    # environment or fail with Runtime.ExitError; then a fresh environment takes over.
    for _ in range(5):
        inv = invoke(lam, fn.name, {})
        if inv.error:
            assert inv.json["errorType"] == "Runtime.ExitError", inv.describe()
            continue
        if inv.json["pid"] != first["pid"]:
            assert inv.json["n"] == 1, inv.describe()
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the exited environment was never replaced")


# Init fails until FAIL_UNTIL (epoch ms): the environment that failed is gone, so the next
# invocation after that runs init again in a fresh one. (No host files: functions run in
# their own mount namespace.)
INIT_FAIL_JS = """
if (Date.now() < Number(process.env.FAIL_UNTIL)) {
  throw new Error('init boom');
}
const INIT_TOKEN = require('crypto').randomUUID();
exports.handler = async () => ({ state: 'initialised', init: INIT_TOKEN });
"""

INIT_FAIL_PY = """
import os, time, uuid
if time.time() * 1000 < float(os.environ["FAIL_UNTIL"]):
    raise RuntimeError("init boom")
INIT_TOKEN = uuid.uuid4().hex

def lambda_handler(event, context):
    return {"state": "initialised", "init": INIT_TOKEN}
"""


@pytest.mark.parametrize("lang,etype", [("node", "Error"), ("python", "RuntimeError")])
def test_init_error_then_retry(lam, make_fn, lang, etype):
    fail_until = str(int(time.time() * 1000) + 1500)
    env = {"Variables": {"FAIL_UNTIL": fail_until}}
    if lang == "node":
        fn = make_fn("nodejs20.x", {"index.js": INIT_FAIL_JS}, "index.handler", Environment=env)
    else:
        fn = make_fn("python3.11", {"lambda_function.py": INIT_FAIL_PY}, "lambda_function.lambda_handler", Environment=env)
    inv = invoke(lam, fn.name, {})
    doc = inv.failed()
    assert doc["errorType"] == etype, doc
    assert doc["errorMessage"] == "init boom", doc
    assert "init boom" in inv.log
    time.sleep(max(0.0, int(fail_until) / 1000 - time.time()) + 0.2)
    again = invoke(lam, fn.name, {}).ok()
    assert again["state"] == "initialised"
    third = invoke(lam, fn.name, {}).ok()
    assert third["init"] == again["init"], "init ran again although the environment was healthy"


@pytest.mark.parametrize("lang", list(RUNTIMES))
def test_timeout(lam, make_fn, lang):
    runtime, files, handler = RUNTIMES[lang]
    fn = make_fn(runtime, files, handler, Timeout=1)
    assert invoke(lam, fn.name, {}).ok()["n"] == 1
    t0 = time.monotonic()
    inv = invoke(lam, fn.name, {"sleep": 3000})
    elapsed = time.monotonic() - t0
    doc = inv.failed()
    assert doc["errorType"] == "Sandbox.Timedout", doc
    assert doc["errorMessage"] == f"RequestId: {inv.request_id} Error: Task timed out after 1.00 seconds", doc
    assert 0.9 < elapsed < 2.9, f"timed-out invocation took {elapsed:.2f}s"
    assert "Task timed out after 1.00 seconds" in inv.log, inv.log
    assert any(ln.startswith(f"REPORT RequestId: {inv.request_id}") for ln in inv.log_lines), inv.log
    after = invoke(lam, fn.name, {})
    assert after.ok()["n"] == 1, "expected a fresh environment after the timeout"


def test_timeout_respects_configured_value(lam, make_fn):
    runtime, files, handler = RUNTIMES["node"]
    fn = make_fn(runtime, files, handler, Timeout=2)
    inv = invoke(lam, fn.name, {"sleep": 1500})  # within the limit
    assert inv.ok()["n"] == 1
    inv = invoke(lam, fn.name, {"sleep": 5000})
    assert inv.failed()["errorMessage"].endswith("Task timed out after 2.00 seconds")


def test_huge_output_tail_is_last_4kb(lam, make_fn):
    code = """
exports.handler = async () => {
  const line = 'x'.repeat(1000);
  for (let i = 0; i < 5000; i++) console.log(i + ' ' + line);
  console.log('the very last line');
  return 'done';
};
"""
    fn = make_fn("nodejs20.x", {"index.js": code}, "index.handler", Timeout=60)
    t0 = time.monotonic()
    inv = invoke(lam, fn.name, {})
    assert inv.ok() == "done"
    assert time.monotonic() - t0 < 45
    assert inv.log is not None
    raw = len(base64.b64decode(inv.response["LogResult"]))
    assert 0 < raw <= 4096
    assert "the very last line" in inv.log
    assert inv.log_lines[-1].startswith(f"REPORT RequestId: {inv.request_id}")
    # and the environment is still usable
    assert invoke(lam, fn.name, {}).ok() == "done"


def test_python_huge_output(lam, make_fn):
    code = "import sys\ndef lambda_handler(e, c):\n" \
           "    for i in range(5000):\n        print(i, 'y' * 1000)\n    return 'done'\n"
    fn = make_fn("python3.11", {"lambda_function.py": code}, "lambda_function.lambda_handler", Timeout=60)
    inv = invoke(lam, fn.name, {})
    assert inv.ok() == "done"
    assert len(base64.b64decode(inv.response["LogResult"])) <= 4096


def test_response_too_large(lam, make_fn):
    code = "exports.handler = async (e) => e.big ? 'z'.repeat(7 * 1024 * 1024) : 'small';\n"
    fn = make_fn("nodejs20.x", {"index.js": code}, "index.handler", Timeout=30)
    t0 = time.monotonic()
    try:
        inv = invoke(lam, fn.name, {"big": True})
    except ClientError as e:
        status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        assert status in (413, 502), e.response
    else:
        doc = inv.failed()
        assert doc["errorType"] == "Function.ResponseSizeTooLarge", doc
        assert re.search(r"Response payload size exceeded maximum allowed payload size \(6291556 bytes\)",
                         doc["errorMessage"]), doc
        assert len(inv.raw) < 100_000
    assert time.monotonic() - t0 < 30
    assert invoke(lam, fn.name, {}).ok() == "small"


def test_response_just_under_limit(lam, make_fn):
    code = "exports.handler = async () => 'a'.repeat(6 * 1024 * 1024 - 100);\n"
    fn = make_fn("nodejs20.x", {"index.js": code}, "index.handler", Timeout=30)
    inv = invoke(lam, fn.name, {}, tail=False)
    assert len(inv.ok()) == 6 * 1024 * 1024 - 100


def test_non_json_response_passes_through_verbatim(lam, make_fn):
    """A hand-written provided runtime can post any bytes; Invoke returns them verbatim."""
    script = """#!/usr/bin/python3
import os, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"
while True:
    with urllib.request.urlopen(api + "/invocation/next") as r:
        rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
        event = r.read()
    body = b"not json: " + event
    urllib.request.urlopen(urllib.request.Request(api + "/invocation/" + rid + "/response", data=body,
                                                  method="POST")).read()
"""
    fn = make_fn("provided.al2023", make_zip({"bootstrap": Entry(script, 0o755)}), "x")
    inv = invoke(lam, fn.name, raw=b'{"k":1}')
    assert inv.status == 200 and inv.error is None, inv.describe()
    assert inv.raw == b'not json: {"k":1}'
    inv = invoke(lam, fn.name, raw=b'{"k":2}')
    assert inv.raw == b'not json: {"k":2}'

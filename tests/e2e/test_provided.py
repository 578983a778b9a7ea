"""provided.al2023 / provided.al2 custom runtimes driven by real Runtime API clients:
the crates.io `lambda_runtime` (Rust) and PyPI's `awslambdaric` (Python).

Note: awslambdaric 4.x (its C++ client) segfaults in runtime_client.next() when the
/runtime/invocation/next response has no Content-Type header; AWS always sends
`Content-Type: application/json`. It reports errors with the JSON body and the
Lambda-Runtime-Function-XRay-Error-Cause header (no Lambda-Runtime-Function-Error-Type)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from helpers import Entry, arn, invoke, make_zip


@pytest.fixture(scope="session")
def rust_echo_zip(rust_echo_bootstrap) -> bytes:
    return make_zip({"bootstrap": Entry(Path(rust_echo_bootstrap).read_bytes(), 0o755)})


@pytest.mark.parametrize("runtime", ["provided.al2023", "provided.al2"])
def test_rust_lambda_runtime_echo(lam, make_fn, rust_echo_zip, runtime):
    fn = make_fn(runtime, rust_echo_zip, "bootstrap", Timeout=10)
    event = {"hello": "world", "n": [1, 2, 3]}
    before_ms = time.time() * 1000
    inv = invoke(lam, fn.name, event)
    out = inv.ok()
    assert out["echo"] == event
    assert out["requestId"] == inv.request_id
    assert out["arn"] == arn(fn.name)
    assert out["fn"] == fn.name
    # deadline: epoch milliseconds, about Timeout (10 s) after the invocation started
    deadline = int(out["deadline"])
    assert before_ms + 8_000 < deadline < before_ms + 12_000, (before_ms, deadline)
    # warm: another invoke gets a new request id
    inv2 = invoke(lam, fn.name, {"again": True})
    out2 = inv2.ok()
    assert out2["echo"] == {"again": True}
    assert out2["requestId"] == inv2.request_id != inv.request_id
    assert "Init Duration" in inv.log_lines[-1]
    assert "Init Duration" not in inv2.log_lines[-1]


def test_rust_lambda_runtime_error(lam, make_fn, rust_echo_zip):
    fn = make_fn("provided.al2023", rust_echo_zip, "bootstrap")
    inv = invoke(lam, fn.name, {"fail": True})
    doc = inv.failed()
    assert doc["errorMessage"] == "asked to fail", doc
    assert doc.get("errorType"), doc
    # the runtime keeps serving after a reported error
    assert invoke(lam, fn.name, {"ok": 1}).ok()["echo"] == {"ok": 1}


def test_rust_lambda_runtime_arn_invocation(lam, make_fn, rust_echo_zip):
    fn = make_fn("provided.al2023", rust_echo_zip, "bootstrap")
    assert invoke(lam, arn(fn.name), {}).ok()["arn"] == arn(fn.name)


def test_bootstrap_mode_from_zip_is_honoured(lam, make_fn):
    script = "#!/bin/sh\nexit 0\n"
    # not executable: the zip says 0644. AWS fails with Runtime.InvalidEntrypoint (permission denied)
    fn = make_fn("provided.al2023", make_zip({"bootstrap": Entry(script, 0o644)}), "x")
    doc = invoke(lam, fn.name, {}).failed()
    assert doc["errorType"] == "Runtime.InvalidEntrypoint", doc


def test_missing_bootstrap(lam, make_fn):
    fn = make_fn("provided.al2023", make_zip({"not-bootstrap": "x"}), "x")
    doc = invoke(lam, fn.name, {}).failed()
    assert doc["errorType"] == "Runtime.InvalidEntrypoint", doc


HANDLER_PY = """
import os, sys

COUNT = 0

def fn(event, context):
    global COUNT
    COUNT += 1
    if event.get("fail"):
        raise RuntimeError("ric boom")
    print("ric says hi")
    return {
        "event": event,
        "rid": context.aws_request_id,
        "name": context.function_name,
        "arn": context.invoked_function_arn,
        "remaining": context.get_remaining_time_in_millis(),
        "count": COUNT,
        "cwd": os.getcwd(),
        "task_root": os.environ.get("LAMBDA_TASK_ROOT"),
    }
"""


def _bundled_packages(*names: str) -> dict[str, Entry]:
    """The installed files of PyPI distributions and their dependencies, as zip entries
    under lib/ — the way users ship dependencies inside a function's zip."""
    import importlib.metadata as md
    import re as _re

    files: dict[str, Entry] = {}
    todo, seen = list(names), set()
    while todo:
        dist = md.distribution(todo.pop())
        if dist.metadata["Name"].lower() in seen:
            continue
        seen.add(dist.metadata["Name"].lower())
        for req in dist.requires or []:
            if "extra ==" not in req:
                todo.append(_re.split(r"[ ;<>=!~\[(]", req, maxsplit=1)[0])
        for f in dist.files or []:
            rel = str(f)
            if rel.startswith("..") or "__pycache__" in rel:
                continue
            path = f.locate()
            files["lib/" + rel] = Entry(path.read_bytes(), 0o755 if rel.endswith(".so") else 0o644)
    return files


def _ric_zip(python: str, handler: str = "handler.fn") -> bytes:
    # awslambdaric travels in the zip and runs on the system's Python 3.11 (the same
    # CPython ABI as the venv it was installed into): sandboxed functions see only their
    # own code, the system's /usr, and their layers.
    del python
    bootstrap = (
        "#!/bin/sh\n"
        'export PYTHONPATH="${LAMBDA_TASK_ROOT}/lib:${LAMBDA_TASK_ROOT}"\n'
        f"exec /usr/bin/python3.11 -m awslambdaric {handler}\n"
    )
    return make_zip({"bootstrap": Entry(bootstrap, 0o755), "handler.py": HANDLER_PY, **_bundled_packages("awslambdaric")})


def test_awslambdaric(lam, make_fn, awslambdaric_python):
    fn = make_fn("provided.al2023", _ric_zip(awslambdaric_python), "handler.fn", Timeout=10)
    inv = invoke(lam, fn.name, {"x": 1})
    out = inv.ok()
    assert out["event"] == {"x": 1}
    assert out["rid"] == inv.request_id
    assert out["name"] == fn.name
    assert out["arn"] == arn(fn.name)
    assert 0 < out["remaining"] <= 10_000
    assert out["count"] == 1
    assert os.path.realpath(out["cwd"]) == os.path.realpath(out["task_root"])
    assert "ric says hi" in inv.log_lines
    assert invoke(lam, fn.name, {}).ok()["count"] == 2


def test_awslambdaric_error(lam, make_fn, awslambdaric_python):
    fn = make_fn("provided.al2023", _ric_zip(awslambdaric_python), "handler.fn")
    inv = invoke(lam, fn.name, {"fail": True})
    doc = inv.failed()
    assert doc["errorType"] == "RuntimeError", doc
    assert doc["errorMessage"] == "ric boom", doc
    assert isinstance(doc["stackTrace"], list), doc
    assert invoke(lam, fn.name, {}).ok()["count"] == 2  # same process carried on


def test_awslambdaric_init_error(lam, make_fn, awslambdaric_python):
    # handler missing from the module: awslambdaric reports it on /runtime/init/error
    fn = make_fn("provided.al2023", _ric_zip(awslambdaric_python, "handler.nope"), "handler.nope")
    doc = invoke(lam, fn.name, {}).failed()
    assert doc["errorType"] == "Runtime.HandlerNotFound", doc
    assert "nope" in doc["errorMessage"]
    # and again on the next invoke (init is retried, the error is not cached forever)
    assert invoke(lam, fn.name, {}).failed()["errorType"] == "Runtime.HandlerNotFound"

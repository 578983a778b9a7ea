"""Python functions: handlers, errors, context, logging, warm reuse, unavailable versions."""

from __future__ import annotations

import json
import re
import time

import pytest
from botocore.exceptions import ClientError

from helpers import ISO_TS, LOG_STREAM_RE, ROLE, arn, invoke, make_zip, unique

EVENT = {"a": 1, "nested": {"list": [1, "two", None, True]}, "s": "héllo ✓ 🚀"}

OK_CASES = {
    "lambda_function": (
        {"lambda_function.py": "def lambda_handler(event, context):\n    return {'kind': 'basic', 'got': event}\n"},
        "lambda_function.lambda_handler", {"kind": "basic", "got": EVENT},
    ),
    "slash-path": (
        {"pkg/__init__.py": "", "pkg/mod.py": "from pkg.helper import V\n"
                                              "def fn(event, context):\n    return {'kind': 'slash', 'v': V}\n",
         "pkg/helper.py": "V = 7\n"},
        "pkg/mod.fn", {"kind": "slash", "v": 7},
    ),
    "dotted-path": (
        {"pkg/__init__.py": "", "pkg/mod.py": "def fn(event, context):\n    return {'kind': 'dotted'}\n"},
        "pkg.mod.fn", {"kind": "dotted"},
    ),
    "returns-none": (
        {"lambda_function.py": "def lambda_handler(event, context):\n    pass\n"},
        "lambda_function.lambda_handler", None,
    ),
    "returns-string": (
        {"lambda_function.py": "def lambda_handler(event, context):\n    return 'plain string'\n"},
        "lambda_function.lambda_handler", "plain string",
    ),
    "vendored-module": (
        {"app.py": "import vendored_dep\ndef handler(event, context):\n    return vendored_dep.VALUE\n",
         "vendored_dep/__init__.py": "VALUE = {'dep': 'from the zip root'}\n"},
        "app.handler", {"dep": "from the zip root"},
    ),
}


@pytest.mark.parametrize("case", list(OK_CASES))
def test_handlers(lam, make_fn, case):
    files, handler, expected = OK_CASES[case]
    fn = make_fn("python3.11", files, handler)
    inv = invoke(lam, fn.name, EVENT)
    assert inv.ok() == expected
    assert inv.version == "$LATEST"


def test_python_version(lam, make_fn):
    fn = make_fn("python3.11", {"lambda_function.py": "import sys, os\n"
                                "def lambda_handler(e, c):\n    return {'v': '%d.%d' % sys.version_info[:2], "
                                "'env': os.environ.get('AWS_EXECUTION_ENV')}\n"},
                 "lambda_function.lambda_handler")
    assert invoke(lam, fn.name, {}).ok() == {"v": "3.11", "env": "AWS_Lambda_python3.11"}


ERROR_PY = """
class MyError(Exception):
    pass

def lambda_handler(event, context):
    if event.get("kind") == "custom":
        raise MyError("custom boom")
    raise ValueError("boom")
"""


@pytest.mark.parametrize("kind,etype,emsg", [("value", "ValueError", "boom"), ("custom", "MyError", "custom boom")])
def test_handler_error(lam, make_fn, kind, etype, emsg):
    fn = make_fn("python3.11", {"lambda_function.py": ERROR_PY}, "lambda_function.lambda_handler")
    inv = invoke(lam, fn.name, {"kind": kind})
    doc = inv.failed()
    assert doc["errorMessage"] == emsg, doc
    assert doc["errorType"] == etype, doc
    assert isinstance(doc["stackTrace"], list) and doc["stackTrace"], doc
    assert any("lambda_handler" in frame for frame in doc["stackTrace"]), doc
    if "requestId" in doc:
        assert doc["requestId"] == inv.request_id
    assert emsg in inv.log
    # the environment survives a handler exception
    assert invoke(lam, fn.name, {"kind": kind}).failed()["errorMessage"] == emsg


def test_import_module_error(lam, make_fn):
    fn = make_fn("python3.11", {"other.py": "x = 1\n"}, "lambda_function.lambda_handler")
    doc = invoke(lam, fn.name, {}).failed()
    assert doc["errorType"] == "Runtime.ImportModuleError", doc
    assert "lambda_function" in doc["errorMessage"], doc


def test_import_module_error_from_missing_dependency(lam, make_fn):
    fn = make_fn("python3.11", {"lambda_function.py": "import not_installed_anywhere\n"
                                                      "def lambda_handler(e, c):\n    return 1\n"},
                 "lambda_function.lambda_handler")
    doc = invoke(lam, fn.name, {}).failed()
    assert doc["errorType"] == "Runtime.ImportModuleError", doc
    assert "not_installed_anywhere" in doc["errorMessage"], doc


def test_handler_not_found(lam, make_fn):
    fn = make_fn("python3.11", {"lambda_function.py": "def other(e, c):\n    return 1\n"},
                 "lambda_function.lambda_handler")
    doc = invoke(lam, fn.name, {}).failed()
    assert doc["errorType"] == "Runtime.HandlerNotFound", doc
    assert "lambda_handler" in doc["errorMessage"], doc


def test_syntax_error(lam, make_fn):
    fn = make_fn("python3.11", {"lambda_function.py": "def lambda_handler(e, c)\n    return 1\n"},
                 "lambda_function.lambda_handler")
    doc = invoke(lam, fn.name, {}).failed()
    assert doc["errorType"] == "Runtime.UserCodeSyntaxError", doc


CONTEXT_PY = """
def lambda_handler(event, context):
    cc = context.client_context
    return {
        "aws_request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": str(context.memory_limit_in_mb),
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining": context.get_remaining_time_in_millis(),
        "custom": cc.custom if cc is not None else None,
    }
"""


def test_context_fields(lam, make_fn):
    fn = make_fn("python3.11", {"lambda_function.py": CONTEXT_PY}, "lambda_function.lambda_handler")
    inv = invoke(lam, fn.name, {})
    ctx = inv.ok()
    start = [ln for ln in inv.log_lines if ln.startswith("START RequestId: ")]
    assert len(start) == 1, inv.log
    assert ctx["aws_request_id"] == start[0].split()[2] == inv.request_id
    assert ctx["function_name"] == fn.name
    assert ctx["function_version"] == "$LATEST"
    assert ctx["invoked_function_arn"] == arn(fn.name)
    assert ctx["memory_limit_in_mb"] == "128"
    assert ctx["log_group_name"] == f"/aws/lambda/{fn.name}"
    assert LOG_STREAM_RE.match(ctx["log_stream_name"]), ctx
    assert 0 < ctx["remaining"] <= 3000
    assert ctx["custom"] is None


def test_client_context(lam, make_fn):
    fn = make_fn("python3.11", {"lambda_function.py": CONTEXT_PY}, "lambda_function.lambda_handler")
    ctx = invoke(lam, fn.name, {}, client_context={"custom": {"k": "v"}, "env": {}, "client": {}}).ok()
    assert ctx["custom"] == {"k": "v"}


LOG_PY = """
import logging, sys
logger = logging.getLogger()
logger.setLevel(logging.INFO)

def lambda_handler(event, context):
    print("hello from print", 42)
    logger.info("hello from logging")
    sys.stderr.write("to stderr\\n")
    return "logged"
"""


def test_print_and_logging_in_tail(lam, make_fn):
    fn = make_fn("python3.11", {"lambda_function.py": LOG_PY}, "lambda_function.lambda_handler")
    inv = invoke(lam, fn.name, {})
    assert inv.ok() == "logged"
    lines = inv.log_lines
    assert "hello from print 42" in lines, inv.log
    assert "to stderr" in lines, inv.log
    rid = re.escape(inv.request_id)
    assert any(re.fullmatch(rf"\[INFO\]\t{ISO_TS}\t{rid}\thello from logging", ln) for ln in lines), inv.log
    assert lines[0].startswith(f"START RequestId: {inv.request_id}")
    assert lines[-1].startswith(f"REPORT RequestId: {inv.request_id}")


COUNTER_PY = """
import os, time
n = 0
import uuid
ENV_TOKEN = uuid.uuid4().hex  # pids repeat across PID namespaces

def lambda_handler(event, context):
    global n
    n += 1
    if event.get("sleep"):
        time.sleep(event["sleep"])
    return {"n": n, "pid": ENV_TOKEN}
"""


def test_warm_reuse(lam, make_fn):
    fn = make_fn("python3.11", {"lambda_function.py": COUNTER_PY}, "lambda_function.lambda_handler")
    a, b = invoke(lam, fn.name, {}).ok(), invoke(lam, fn.name, {}).ok()
    assert (a["n"], b["n"]) == (1, 2)
    assert a["pid"] == b["pid"]


@pytest.mark.parametrize("runtime", ["python3.12", "python3.13"])
def test_other_python_versions(lam, runtimes_info, runtime):
    """Works when the interpreter is installed; otherwise fails clearly (no crash, no hang)."""
    available = runtimes_info[runtime]["available"]
    version = runtime.removeprefix("python")
    name = unique(runtime.replace(".", "-"))
    code = make_zip({"lambda_function.py": "import sys\ndef lambda_handler(e, c):\n"
                                           "    return {'v': '%d.%d' % sys.version_info[:2]}\n"})
    t0 = time.monotonic()
    created = False
    try:
        try:
            lam.create_function(FunctionName=name, Runtime=runtime, Handler="lambda_function.lambda_handler",
                                Role=ROLE, Code={"ZipFile": code})
            created = True
            inv = invoke(lam, name, {})
        except ClientError as e:
            assert not available, f"{runtime} is reported available but the API refused it: {e}"
            assert version in str(e), f"error does not name the runtime: {e}"
            return
        if available:
            assert inv.ok() == {"v": version}
        else:
            doc = inv.failed()
            assert version in json.dumps(doc), doc
            assert doc.get("errorType"), doc
    finally:
        if created:
            lam.delete_function(FunctionName=name)
        assert time.monotonic() - t0 < 30

"""Node.js functions: handler styles, errors, context, logging, warm reuse, concurrency."""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers import ISO_TS, LOG_STREAM_RE, arn, invoke

EVENT = {"a": 1, "nested": {"list": [1, "two", None, True]}, "s": "héllo ✓ 🚀"}

# name -> (files, handler, expected payload given EVENT)
OK_CASES = {
    "async-return": (
        {"index.js": "exports.handler = async (event) => ({ kind: 'async', got: event });\n"},
        "index.handler", {"kind": "async", "got": EVENT},
    ),
    "callback": (
        {"index.js": "exports.handler = (event, context, callback) => {\n"
                     "  setTimeout(() => callback(null, { kind: 'callback', got: event }), 10);\n};\n"},
        "index.handler", {"kind": "callback", "got": EVENT},
    ),
    "promise-no-async": (
        {"index.js": "exports.handler = (event) => Promise.resolve({ kind: 'promise', a: event.a });\n"},
        "index.handler", {"kind": "promise", "a": 1},
    ),
    "returns-undefined": (
        {"index.js": "exports.handler = async () => {};\n"},
        "index.handler", None,
    ),
    "returns-string": (
        {"index.js": "exports.handler = async () => 'plain string';\n"},
        "index.handler", "plain string",
    ),
    "esm-mjs": (
        {"index.mjs": "export const handler = async (event) => ({ kind: 'mjs', a: event.a, "
                      "esm: typeof require === 'undefined' });\n"},
        "index.handler", {"kind": "mjs", "a": 1, "esm": True},
    ),
    "esm-type-module": (
        {"package.json": json.dumps({"name": "fn", "type": "module"}),
         "app.js": "import { helper } from './lib.js';\n"
                   "export const handler = async (event) => ({ kind: helper(), a: event.a });\n",
         "lib.js": "export const helper = () => 'type-module';\n"},
        "app.handler", {"kind": "type-module", "a": 1},
    ),
    "nested-dir": (
        {"src/app.js": "const { v } = require('./util');\n"
                       "exports.handler = async (event) => ({ kind: 'nested', v, a: event.a });\n",
         "src/util.js": "exports.v = 42;\n"},
        "src/app.handler", {"kind": "nested", "v": 42, "a": 1},
    ),
    "node-modules-dependency": (
        {"index.js": "const dep = require('tiny-dep');\nexports.handler = async () => ({ dep: dep() });\n",
         "node_modules/tiny-dep/package.json": json.dumps({"name": "tiny-dep", "main": "main.js"}),
         "node_modules/tiny-dep/main.js": "module.exports = () => 'from node_modules';\n"},
        "index.handler", {"dep": "from node_modules"},
    ),
}


@pytest.mark.parametrize("case", list(OK_CASES))
def test_handler_styles(lam, make_fn, case):
    files, handler, expected = OK_CASES[case]
    fn = make_fn("nodejs20.x", files, handler)
    inv = invoke(lam, fn.name, EVENT)
    assert inv.ok() == expected
    assert inv.version == "$LATEST"


# name -> (files, handler, errorType, errorMessage)
ERROR_CASES = {
    "callback-error": (
        {"index.js": "exports.handler = (event, context, callback) => callback(new Error('cb boom'));\n"},
        "index.handler", "Error", "cb boom",
    ),
    "thrown-sync": (
        {"index.js": "class MyError extends Error { constructor(m) { super(m); this.name = 'MyError'; } }\n"
                     "exports.handler = () => { throw new MyError('thrown boom'); };\n"},
        "index.handler", "MyError", "thrown boom",
    ),
    "thrown-async": (
        {"index.js": "exports.handler = async () => { throw new TypeError('async boom'); };\n"},
        "index.handler", "TypeError", "async boom",
    ),
    "rejected-promise": (
        {"index.js": "exports.handler = () => Promise.reject(new Error('rejected boom'));\n"},
        "index.handler", "Error", "rejected boom",
    ),
    "esm-thrown": (
        {"index.mjs": "export const handler = async () => { throw new RangeError('esm boom'); };\n"},
        "index.handler", "RangeError", "esm boom",
    ),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_handler_errors(lam, make_fn, case):
    files, handler, etype, emsg = ERROR_CASES[case]
    fn = make_fn("nodejs20.x", files, handler)
    inv = invoke(lam, fn.name, {})
    doc = inv.failed()
    assert doc["errorType"] == etype, doc
    assert doc["errorMessage"] == emsg, doc
    assert isinstance(doc["trace"], list) and doc["trace"], doc
    assert all(isinstance(t, str) for t in doc["trace"])
    assert emsg in doc["trace"][0]
    assert inv.version == "$LATEST"
    # the error is logged, and the environment survives a handled-by-runtime error
    assert emsg in inv.log
    again = invoke(lam, fn.name, {})
    assert again.failed()["errorMessage"] == emsg


def test_import_module_error(lam, make_fn):
    fn = make_fn("nodejs20.x", {"other.js": "exports.handler = async () => 1;\n"}, "index.handler")
    doc = invoke(lam, fn.name, {}).failed()
    assert doc["errorType"] == "Runtime.ImportModuleError", doc
    assert "index" in doc["errorMessage"]


def test_import_module_error_from_missing_dependency(lam, make_fn):
    fn = make_fn("nodejs20.x", {"index.js": "require('not-installed-anywhere');\nexports.handler = async () => 1;\n"},
                 "index.handler")
    doc = invoke(lam, fn.name, {}).failed()
    assert doc["errorType"] == "Runtime.ImportModuleError", doc
    assert "not-installed-anywhere" in doc["errorMessage"]


def test_handler_not_found(lam, make_fn):
    fn = make_fn("nodejs20.x", {"index.js": "exports.other = async () => 1;\n"}, "index.handler")
    doc = invoke(lam, fn.name, {}).failed()
    assert doc["errorType"] == "Runtime.HandlerNotFound", doc
    assert "index.handler" in doc["errorMessage"]


def test_syntax_error(lam, make_fn):
    fn = make_fn("nodejs20.x", {"index.js": "exports.handler = async () => { return (; };\n"}, "index.handler")
    doc = invoke(lam, fn.name, {}).failed()
    assert doc["errorType"] in ("Runtime.UserCodeSyntaxError", "SyntaxError"), doc


CONTEXT_JS = """
exports.handler = async (event, context) => ({
  awsRequestId: context.awsRequestId,
  functionName: context.functionName,
  functionVersion: context.functionVersion,
  invokedFunctionArn: context.invokedFunctionArn,
  memoryLimitInMB: context.memoryLimitInMB,
  logGroupName: context.logGroupName,
  logStreamName: context.logStreamName,
  remaining: context.getRemainingTimeInMillis(),
  callbackWaitsForEmptyEventLoop: context.callbackWaitsForEmptyEventLoop,
  clientContext: context.clientContext || null,
});
"""


def test_context_fields(lam, make_fn):
    fn = make_fn("nodejs20.x", {"index.js": CONTEXT_JS}, "index.handler")
    inv = invoke(lam, fn.name, {})
    ctx = inv.ok()
    start = [ln for ln in inv.log_lines if ln.startswith("START RequestId: ")]
    assert len(start) == 1, inv.log
    log_id = start[0].split()[2]
    assert ctx["awsRequestId"] == log_id == inv.request_id
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", ctx["awsRequestId"])
    assert ctx["functionName"] == fn.name
    assert ctx["functionVersion"] == "$LATEST"
    assert ctx["invokedFunctionArn"] == arn(fn.name)
    assert ctx["memoryLimitInMB"] == "128"
    assert ctx["logGroupName"] == f"/aws/lambda/{fn.name}"
    assert LOG_STREAM_RE.match(ctx["logStreamName"]), ctx["logStreamName"]
    assert 0 < ctx["remaining"] <= 3000
    assert ctx["callbackWaitsForEmptyEventLoop"] is True
    assert ctx["clientContext"] is None
    # a second invocation has its own request id, same stream (same environment)
    ctx2 = invoke(lam, fn.name, {}).ok()
    assert ctx2["awsRequestId"] != ctx["awsRequestId"]
    assert ctx2["logStreamName"] == ctx["logStreamName"]


def test_context_invoked_by_arn_and_timeout(lam, make_fn):
    fn = make_fn("nodejs20.x", {"index.js": CONTEXT_JS}, "index.handler", Timeout=20, MemorySize=1024)
    ctx = invoke(lam, arn(fn.name), {}).ok()
    assert ctx["invokedFunctionArn"] == arn(fn.name)
    assert ctx["memoryLimitInMB"] == "1024"
    assert 3000 < ctx["remaining"] <= 20000


def test_client_context(lam, make_fn):
    fn = make_fn("nodejs20.x", {"index.js": CONTEXT_JS}, "index.handler")
    cc = {"custom": {"k": "v", "n": 1}, "env": {"platform": "test"}, "client": {"app_title": "e2e"}}
    ctx = invoke(lam, fn.name, {}, client_context=cc).ok()
    assert ctx["clientContext"]["custom"] == {"k": "v", "n": 1}
    assert ctx["clientContext"]["env"] == {"platform": "test"}


LOG_JS = """
exports.handler = async (event) => {
  console.log('hello from node', 42);
  console.info('info line');
  console.warn('warn line');
  console.error('error line');
  process.stdout.write('raw stdout line\\n');
  return 'logged';
};
"""


def test_console_log_in_tail(lam, make_fn):
    fn = make_fn("nodejs20.x", {"index.js": LOG_JS}, "index.handler")
    inv = invoke(lam, fn.name, {})
    assert inv.ok() == "logged"
    rid = re.escape(inv.request_id)
    lines = inv.log_lines
    assert any(re.fullmatch(rf"{ISO_TS}\t{rid}\tINFO\thello from node 42", ln) for ln in lines), inv.log
    assert any(re.fullmatch(rf"{ISO_TS}\t{rid}\tINFO\tinfo line", ln) for ln in lines), inv.log
    assert "raw stdout line" in lines
    assert lines[0].startswith(f"START RequestId: {inv.request_id}")
    assert any(ln.startswith(f"END RequestId: {inv.request_id}") for ln in lines)
    assert lines[-1].startswith(f"REPORT RequestId: {inv.request_id}")


def test_console_levels_in_tail(lam, make_fn):
    fn = make_fn("nodejs20.x", {"index.js": LOG_JS}, "index.handler")
    inv = invoke(lam, fn.name, {})
    rid = re.escape(inv.request_id)
    assert any(re.fullmatch(rf"{ISO_TS}\t{rid}\tWARN\twarn line", ln) for ln in inv.log_lines), inv.log
    assert any(re.fullmatch(rf"{ISO_TS}\t{rid}\tERROR\terror line", ln) for ln in inv.log_lines), inv.log


def test_no_tail_without_log_type(lam, make_fn):
    fn = make_fn("nodejs20.x", {"index.js": LOG_JS}, "index.handler")
    inv = invoke(lam, fn.name, {}, tail=False)
    assert inv.ok() == "logged"
    assert inv.log is None


COUNTER_JS = """
let n = 0;
const ENV_TOKEN = require('crypto').randomUUID(); // pids repeat across PID namespaces
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
exports.handler = async (event) => {
  n += 1;
  const mine = n;
  if (event.sleep) await sleep(event.sleep);
  return { n: mine, pid: ENV_TOKEN };
};
"""


def test_warm_reuse(lam, make_fn):
    fn = make_fn("nodejs20.x", {"index.js": COUNTER_JS}, "index.handler")
    a = invoke(lam, fn.name, {})
    b = invoke(lam, fn.name, {})
    c = invoke(lam, fn.name, {})
    assert [x.ok()["n"] for x in (a, b, c)] == [1, 2, 3]
    assert a.json["pid"] == b.json["pid"] == c.json["pid"]
    assert "Init Duration" in a.log_lines[-1]
    assert "Init Duration" not in b.log_lines[-1]


def test_concurrent_invocations_use_separate_environments(lam, make_fn):
    fn = make_fn("nodejs20.x", {"index.js": COUNTER_JS}, "index.handler")
    invoke(lam, fn.name, {}).ok()  # one warm environment
    with ThreadPoolExecutor(max_workers=2) as ex:
        t0 = time.monotonic()
        futs = [ex.submit(invoke, lam, fn.name, {"sleep": 1000}) for _ in range(2)]
        results = [f.result() for f in futs]
        elapsed = time.monotonic() - t0
    payloads = [r.ok() for r in results]
    assert len({p["pid"] for p in payloads}) == 2, payloads
    # normally the warm environment serves one (n=2) and a fresh one the other (n=1)
    assert sorted(p["n"] for p in payloads) in ([1, 2], [1, 1]), payloads
    assert elapsed < 1.9, f"two concurrent 1 s invocations took {elapsed:.2f}s (serialized?)"
    assert all(r.elapsed >= 0.95 for r in results)


VERSION_JS = "exports.handler = async () => ({ version: process.version, env: process.env.AWS_EXECUTION_ENV });\n"


@pytest.mark.parametrize("runtime,major", [("nodejs20.x", "v20."), ("nodejs22.x", "v22.")])
def test_node_runtime_versions(lam, make_fn, runtime, major):
    fn = make_fn(runtime, {"index.js": VERSION_JS}, "index.handler")
    out = invoke(lam, fn.name, {}).ok()
    assert out["version"].startswith(major), out
    assert out["env"] == f"AWS_Lambda_{runtime}"


def test_change_runtime_node20_to_node22(lam, make_fn):
    fn = make_fn("nodejs20.x", {"index.mjs": VERSION_JS.replace("exports.handler =", "export const handler =")},
                 "index.handler")
    assert invoke(lam, fn.name, {}).ok()["version"].startswith("v20.")
    lam.update_function_configuration(FunctionName=fn.name, Runtime="nodejs22.x")
    lam.get_waiter("function_updated_v2").wait(FunctionName=fn.name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert invoke(lam, fn.name, {}).ok()["version"].startswith("v22.")


def test_non_json_payload_passes_through(lam, make_fn):
    fn = make_fn("nodejs20.x", {"index.js": "exports.handler = async (e) => ({ got: e });\n"}, "index.handler")
    assert invoke(lam, fn.name, raw=b"[1,2,3]").ok() == {"got": [1, 2, 3]}
    assert invoke(lam, fn.name, raw=b'"str"').ok() == {"got": "str"}

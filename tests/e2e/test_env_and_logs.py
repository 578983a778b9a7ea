"""Function environment variables, and the CloudWatch Logs view of invocations."""

from __future__ import annotations

import math
import os
import re

import pytest
from botocore.exceptions import ClientError

from helpers import (
    LOG_STREAM_RE,
    REPORT_RE,
    all_group_messages,
    client_error,
    create_function,
    invoke,
    log_events,
    make_zip,
    unique,
    wait_for,
)

LEAK_VAR = "NIMBUS_TEST_LEAK"

ENV_JS = """
const fs = require('fs'), path = require('path');
exports.handler = async () => ({
  env: process.env,
  cwd: process.cwd(),
  timeZone: Intl.DateTimeFormat().resolvedOptions().timeZone,
  offsetMinutes: new Date(Date.UTC(2026, 6, 1)).getTimezoneOffset(),
  taskRootHasCode: fs.existsSync(path.join(process.env.LAMBDA_TASK_ROOT || '/nonexistent', 'index.js')),
});
"""

ENV_PY = """
import os
def lambda_handler(event, context):
    root = os.environ.get("LAMBDA_TASK_ROOT", "/nonexistent")
    return {"env": dict(os.environ), "cwd": os.getcwd(),
            "taskRootHasCode": os.path.exists(os.path.join(root, "lambda_function.py"))}
"""


def _check_common_env(env: dict, fn_name: str, handler: str, runtime: str, memory: str = "128"):
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == fn_name
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == memory
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == f"/aws/lambda/{fn_name}"
    assert LOG_STREAM_RE.match(env["AWS_LAMBDA_LOG_STREAM_NAME"]), env["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert env["AWS_REGION"] == "us-east-1"
    assert env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_EXECUTION_ENV"] == f"AWS_Lambda_{runtime}"
    assert env["_HANDLER"] == handler
    assert env["_X_AMZN_TRACE_ID"].startswith("Root=1-"), env["_X_AMZN_TRACE_ID"]
    assert os.path.isabs(env["LAMBDA_TASK_ROOT"])
    assert env["LAMBDA_RUNTIME_DIR"]
    assert re.fullmatch(r"[\w.\-]+:\d+", env["AWS_LAMBDA_RUNTIME_API"]), env["AWS_LAMBDA_RUNTIME_API"]
    assert env["TZ"] == ":UTC"
    assert env["LANG"] == "en_US.UTF-8"
    assert env["PATH"]
    assert "LD_LIBRARY_PATH" in env
    assert LEAK_VAR not in env, "the server's own environment leaked into the function"


def test_node_environment(lam, make_fn):
    fn = make_fn("nodejs20.x", {"index.js": ENV_JS}, "index.handler",
                 Environment={"Variables": {"USER_VAR": "user value", "OTHER": "x=y;z"}})
    out = invoke(lam, fn.name, {}).ok()
    env = out["env"]
    _check_common_env(env, fn.name, "index.handler", "nodejs20.x")
    assert "NODE_PATH" in env and env["NODE_PATH"]
    assert env["USER_VAR"] == "user value"
    assert env["OTHER"] == "x=y;z"
    assert out["taskRootHasCode"] is True
    assert os.path.realpath(out["cwd"]) == os.path.realpath(env["LAMBDA_TASK_ROOT"])
    assert (out["timeZone"], out["offsetMinutes"]) == ("UTC", 0)


def test_node_time_zone_is_the_functions(lam, make_fn):
    """TZ is not reserved: a prestarted Node runtime takes the function's zone on."""
    fn = make_fn("nodejs20.x", {"index.js": ENV_JS}, "index.handler",
                 Environment={"Variables": {"TZ": "America/New_York"}})
    out = invoke(lam, fn.name, {}).ok()
    assert out["env"]["TZ"] == "America/New_York"
    assert (out["timeZone"], out["offsetMinutes"]) == ("America/New_York", 240)


def test_python_environment(lam, make_fn):
    fn = make_fn("python3.11", {"lambda_function.py": ENV_PY}, "lambda_function.lambda_handler", MemorySize=256,
                 Environment={"Variables": {"USER_VAR": "py"}})
    out = invoke(lam, fn.name, {}).ok()
    env = out["env"]
    _check_common_env(env, fn.name, "lambda_function.lambda_handler", "python3.11", memory="256")
    assert env["USER_VAR"] == "py"
    assert out["taskRootHasCode"] is True
    assert os.path.realpath(out["cwd"]) == os.path.realpath(env["LAMBDA_TASK_ROOT"])


def test_trace_id_changes_per_invocation(lam, make_fn):
    fn = make_fn("nodejs20.x", {"index.js": "exports.handler = async () => process.env._X_AMZN_TRACE_ID;\n"},
                 "index.handler")
    a, b = invoke(lam, fn.name, {}).ok(), invoke(lam, fn.name, {}).ok()
    assert a and b and a != b


def test_tracing_mode_samples_invocations(lam, lam_raw, make_fn):
    """TracingConfig as AWS keeps it: PassThrough unless set; Active samples every invocation
    (Sampled=1 in the header the function gets); the X-Ray SDKs' variables are there either way."""
    code = {"index.js": "exports.handler = async () => ({ t: process.env._X_AMZN_TRACE_ID, "
                        "m: process.env.AWS_XRAY_CONTEXT_MISSING, d: process.env.AWS_XRAY_DAEMON_ADDRESS });\n"}
    fn = make_fn("nodejs20.x", code, "index.handler")
    assert fn.config["TracingConfig"] == {"Mode": "PassThrough"}
    out = invoke(lam, fn.name, {}).ok()
    assert ";Sampled=0" in out["t"] and out["m"] == "LOG_ERROR" and out["d"].endswith(":2000"), out
    updated = lam.update_function_configuration(FunctionName=fn.name, TracingConfig={"Mode": "Active"})
    assert updated["TracingConfig"] == {"Mode": "Active"}
    lam.get_waiter("function_updated_v2").wait(FunctionName=fn.name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert ";Sampled=1" in invoke(lam, fn.name, {}).ok()["t"]
    # A version keeps its mode; a change of mode alone is something new to publish.
    v1 = lam.publish_version(FunctionName=fn.name)
    assert v1["TracingConfig"] == {"Mode": "Active"}
    lam.update_function_configuration(FunctionName=fn.name, TracingConfig={"Mode": "PassThrough"})
    lam.get_waiter("function_updated_v2").wait(FunctionName=fn.name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert lam.publish_version(FunctionName=fn.name)["Version"] != v1["Version"]
    assert lam.get_function_configuration(FunctionName=fn.name, Qualifier=v1["Version"])["TracingConfig"]["Mode"] == "Active"
    with pytest.raises(ClientError) as e:
        lam_raw.update_function_configuration(FunctionName=fn.name, TracingConfig={"Mode": "Sometimes"})
    assert client_error(e) == ("ValidationException", 400, "1 validation error detected: Value 'Sometimes' at "
                               "'tracingConfig.mode' failed to satisfy constraint: Member must satisfy enum value set: "
                               "[Active, PassThrough]")


def test_user_env_update_reaches_function(lam, make_fn):
    fn = make_fn("nodejs20.x", {"index.js": "exports.handler = async () => process.env.COLOR || null;\n"},
                 "index.handler", Environment={"Variables": {"COLOR": "red"}})
    assert invoke(lam, fn.name, {}).ok() == "red"
    lam.update_function_configuration(FunctionName=fn.name, Environment={"Variables": {"COLOR": "blue"}})
    lam.get_waiter("function_updated_v2").wait(FunctionName=fn.name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert invoke(lam, fn.name, {}).ok() == "blue"
    lam.update_function_configuration(FunctionName=fn.name, Environment={"Variables": {}})
    lam.get_waiter("function_updated_v2").wait(FunctionName=fn.name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert invoke(lam, fn.name, {}).ok() is None


# ---- logs ----------------------------------------------------------------------------------

LOGGING_JS = """
let n = 0;
exports.handler = async (event) => {
  n += 1;
  console.log('line from invocation ' + n);
  return { n, stream: process.env.AWS_LAMBDA_LOG_STREAM_NAME };
};
"""


def _parse_report(line: str) -> re.Match:
    m = REPORT_RE.match(line)
    assert m, f"REPORT line does not match the AWS format: {line!r}"
    return m


def test_tail_holds_start_to_report(lam, make_fn):
    fn = make_fn("nodejs20.x", {"index.js": LOGGING_JS}, "index.handler")
    cold = invoke(lam, fn.name, {})
    warm = invoke(lam, fn.name, {})
    for inv, is_cold in ((cold, True), (warm, False)):
        inv.ok()
        lines = inv.log_lines
        rid = inv.request_id
        assert lines[0] == f"START RequestId: {rid} Version: $LATEST", lines
        assert f"END RequestId: {rid}" in lines, lines
        assert lines.index(f"END RequestId: {rid}") == len(lines) - 2, lines
        m = _parse_report(lines[-1])
        assert m["id"] == rid
        assert m["mem"] == "128"
        assert int(m["billed"]) >= max(1, math.floor(float(m["duration"])))
        assert int(m["used"]) > 0
        assert (m["init"] is not None) == is_cold, lines[-1]
        assert any(ln.endswith(f"line from invocation {1 if is_cold else 2}") for ln in lines), lines
        assert len(inv.log.encode()) <= 4096


def test_log_streams_and_events(lam, logs, make_fn):
    fn = make_fn("nodejs20.x", {"index.js": LOGGING_JS}, "index.handler")
    inv1, inv2 = invoke(lam, fn.name, {}), invoke(lam, fn.name, {})
    stream = inv1.ok()["stream"]
    assert inv2.ok()["stream"] == stream
    group = f"/aws/lambda/{fn.name}"

    def streams():
        s = logs.describe_log_streams(logGroupName=group)["logStreams"]
        return s if s else None

    got = wait_for(streams, timeout=10, what="log stream")
    assert [s["logStreamName"] for s in got] == [stream]
    assert LOG_STREAM_RE.match(stream)

    def events():
        msgs = log_events(logs, group, stream)
        return msgs if sum(m.startswith("REPORT ") for m in msgs) >= 2 else None

    msgs = wait_for(events, timeout=10, what="both REPORT lines in GetLogEvents")
    for inv, n in ((inv1, 1), (inv2, 2)):
        rid = inv.request_id
        i_start = msgs.index(f"START RequestId: {rid} Version: $LATEST")
        i_end = msgs.index(f"END RequestId: {rid}")
        i_line = next(i for i, m in enumerate(msgs) if m.endswith(f"line from invocation {n}"))
        i_report = next(i for i, m in enumerate(msgs) if m.startswith(f"REPORT RequestId: {rid}"))
        assert i_start < i_line < i_end < i_report
        assert (_parse_report(msgs[i_report])["init"] is not None) == (n == 1)

    raw = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)
    ts = [e["timestamp"] for e in raw["events"]]
    assert ts == sorted(ts) and all(isinstance(t, int) and t > 1_600_000_000_000 for t in ts)
    assert raw["nextForwardToken"] and raw["nextBackwardToken"]


def test_filter_log_events(lam, logs, make_fn):
    fn = make_fn("nodejs20.x", {"index.js": LOGGING_JS}, "index.handler")
    rids = [invoke(lam, fn.name, {}).request_id for _ in range(2)]
    group = f"/aws/lambda/{fn.name}"

    def all_msgs():
        msgs = all_group_messages(logs, group)
        return msgs if all(f"END RequestId: {r}" in msgs for r in rids) else None

    msgs = wait_for(all_msgs, timeout=10, what="FilterLogEvents to return both invocations")
    for r in rids:
        assert f"START RequestId: {r} Version: $LATEST" in msgs
    resp = logs.filter_log_events(logGroupName=group)
    assert all(LOG_STREAM_RE.match(e["logStreamName"]) for e in resp["events"])


def test_filter_log_events_with_term(lam, logs, make_fn):
    fn = make_fn("nodejs20.x", {"index.js": LOGGING_JS}, "index.handler")
    invoke(lam, fn.name, {}).ok()
    group = f"/aws/lambda/{fn.name}"
    wait_for(lambda: any(m.startswith("REPORT") for m in all_group_messages(logs, group)), timeout=10,
             what="REPORT line")
    resp = logs.filter_log_events(logGroupName=group, filterPattern="REPORT")
    msgs = [e["message"] for e in resp["events"]]
    assert len(msgs) == 1 and msgs[0].startswith("REPORT RequestId: "), msgs


def test_concurrent_environments_get_separate_streams(lam, logs, make_fn):
    from concurrent.futures import ThreadPoolExecutor

    code = "exports.handler = async () => { await new Promise(r => setTimeout(r, 500)); " \
           "return process.env.AWS_LAMBDA_LOG_STREAM_NAME; };\n"
    fn = make_fn("nodejs20.x", {"index.js": code}, "index.handler")
    with ThreadPoolExecutor(2) as ex:
        streams = {r.ok() for r in ex.map(lambda _: invoke(lam, fn.name, {}), range(2))}
    assert len(streams) == 2
    group = f"/aws/lambda/{fn.name}"
    listed = wait_for(lambda: {s["logStreamName"] for s in logs.describe_log_streams(logGroupName=group)[
        "logStreams"]} == streams, timeout=10, what="two log streams")
    assert listed


def test_unknown_log_group(logs):
    with pytest.raises(ClientError) as ei:
        logs.describe_log_streams(logGroupName=f"/aws/lambda/{unique('nolog')}")
    assert ei.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_logs_survive_restart(server_factory):
    s = server_factory()
    lam = s.lambda_client()
    name = unique("logpersist")
    create_function(lam, name, "nodejs20.x", "index.handler", make_zip({"index.js": LOGGING_JS}))
    inv = invoke(lam, name, {})
    inv.ok()
    group = f"/aws/lambda/{name}"
    logs = s.logs_client()
    stream = wait_for(lambda: logs.describe_log_streams(logGroupName=group)["logStreams"], timeout=10,
                      what="log stream")[0]["logStreamName"]
    wait_for(lambda: f"END RequestId: {inv.request_id}" in log_events(logs, group, stream), timeout=10,
             what="END line")
    s.restart()
    logs = s.logs_client()
    msgs = log_events(logs, group, stream)
    assert f"START RequestId: {inv.request_id} Version: $LATEST" in msgs
    assert any(m.startswith(f"REPORT RequestId: {inv.request_id}") for m in msgs)
    assert any(m.endswith("line from invocation 1") for m in msgs)


def test_logs_flushed_shortly_before_sigterm(server_factory):
    """Lines written just before SIGTERM are on disk after the restart."""
    s = server_factory()
    lam = s.lambda_client()
    name = unique("logflush")
    create_function(lam, name, "nodejs20.x", "index.handler", make_zip({"index.js": LOGGING_JS}))
    inv = invoke(lam, name, {})
    stream = inv.ok()["stream"]
    s.restart()  # immediately: the flush must happen on shutdown
    msgs = log_events(s.logs_client(), f"/aws/lambda/{name}", stream)
    assert any(m.startswith(f"REPORT RequestId: {inv.request_id}") for m in msgs), msgs


BIG_LINES_PY = """
def handler(event, context):
    for i in range(event["lines"]):
        print(f"big {event['n']:03d} {i:03d} " + "x" * event["size"])
    return "ok"
"""


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_log_queries_answer_at_most_a_megabyte_and_page_on(server_factory):
    """FilterLogEvents and GetLogEvents answer at most 1 MB of events (AWS's cap), page on with
    their tokens to every event exactly once, and read from disk within that budget: six
    queries at once over a 24 MB group do not grow the server by the group's size."""
    from concurrent.futures import ThreadPoolExecutor

    s = server_factory()
    lam, logs = s.lambda_client(), s.logs_client()
    name = unique("biglogs")
    create_function(lam, name, "python3.11", "index.handler", make_zip({"index.py": BIG_LINES_PY}), MemorySize=512)
    lines, size, invocations = 40, 100_000, 6
    for n in range(invocations):
        invoke(lam, name, {"n": n, "lines": lines, "size": size}).ok()
    group = f"/aws/lambda/{name}"
    wanted = invocations * lines

    def cap(events):
        return sum(len(e["message"].encode()) + 26 for e in events)

    def big(events):
        return [e["message"][:11] for e in events if e["message"].startswith("big ")]

    def filter_all():
        got, kwargs, pages = [], {"logGroupName": group, "filterPattern": "big"}, 0
        while True:
            page = logs.filter_log_events(**kwargs)
            pages += 1
            assert cap(page["events"]) <= 1_048_576, cap(page["events"])
            got += big(page["events"])
            if "nextToken" not in page:
                return got, pages
            kwargs["nextToken"] = page["nextToken"]

    got, pages = wait_for(lambda: (r := filter_all()) and len(r[0]) >= wanted and r, timeout=30, what="every big line")
    assert got == sorted(got) and len(got) == len(set(got)) == wanted, (len(got), len(set(got)))
    assert pages >= wanted * size // 1_048_576
    # GetLogEvents: forward from the head, then backward from the tail, a megabyte at most.
    streams = [st["logStreamName"] for st in logs.describe_log_streams(logGroupName=group)["logStreams"]]
    forward = []
    for stream in streams:
        page = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)
        while page["events"]:
            assert cap(page["events"]) <= 1_048_576
            forward += big(page["events"])
            page = logs.get_log_events(logGroupName=group, logStreamName=stream, nextToken=page["nextForwardToken"])
    assert sorted(forward) == got
    tail = logs.get_log_events(logGroupName=group, logStreamName=streams[0])
    assert 0 < cap(tail["events"]) <= 1_048_576
    before = logs.get_log_events(logGroupName=group, logStreamName=streams[0], nextToken=tail["nextBackwardToken"])
    assert before["events"] and before["events"][-1]["timestamp"] <= tail["events"][0]["timestamp"]

    rss_before = _rss_kb(s.proc.pid)
    with ThreadPoolExecutor(6) as ex:
        answers = list(ex.map(lambda _: logs.filter_log_events(logGroupName=group, filterPattern="big"), range(6)))
    grown_mb = (_rss_kb(s.proc.pid) - rss_before) / 1024
    assert all(a["events"] and "nextToken" in a for a in answers)
    assert grown_mb < 40, f"the server grew by {grown_mb:.0f} MB answering six pages of a {wanted * size // 1_000_000} MB group"

"""LoggingConfig: JSON or text logs, application and system log levels, and a log group of
the function's choosing, as AWS Lambda applies them (LocalStack's AWS-validated
TestLoggingConfig snapshots for the API; AWS's log-level filtering rules for the lines)."""

from __future__ import annotations

import json

from helpers import all_group_messages, expect_error, invoke, run, server_env, unique, wait_for

PY_LOGGER = """
import json, logging, os
logger = logging.getLogger()

def handler(event, context):
    logger.debug("py debug")
    logger.info("py info")
    logger.warning("py warning")
    logger.error("py error", extra={"orderId": 42})
    print("plain print")
    print(json.dumps({"level": "debug", "msg": "json debug print"}))
    print(json.dumps({"level": "ERROR", "msg": "json error print"}))
    return {k: os.environ.get(k) for k in ("AWS_LAMBDA_LOG_FORMAT", "AWS_LAMBDA_LOG_LEVEL", "AWS_LAMBDA_LOG_GROUP_NAME")}
"""

NODE_LOGGER = """
exports.handler = async () => {
  console.trace('node trace');
  console.debug('node debug');
  console.log('node log', {a: 1});
  console.warn('node warn');
  console.error(new TypeError('node boom'));
  return process.env.AWS_LAMBDA_LOG_LEVEL || null;
};
"""


def _records(tail: str) -> list[dict]:
    out = []
    for line in tail.splitlines():
        line = line.strip()
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def _config(lam, name: str) -> dict:
    return lam.get_function_configuration(FunctionName=name)["LoggingConfig"]


def test_logging_config_as_aws_answers_it(lam, make_fn):
    fn = make_fn("python3.11", {"h.py": PY_LOGGER}, "h.handler", LoggingConfig={"LogFormat": "JSON"})
    default_group = f"/aws/lambda/{fn.name}"
    want = {"ApplicationLogLevel": "INFO", "LogFormat": "JSON", "LogGroup": default_group, "SystemLogLevel": "INFO"}
    assert fn.config["LoggingConfig"] == want
    assert _config(lam, fn.name) == want
    assert lam.get_function(FunctionName=fn.name)["Configuration"]["LoggingConfig"] == want

    # The cases of AWS's recorded answers: partial updates keep what they do not name.
    steps = [
        ({"LogFormat": "JSON", "ApplicationLogLevel": "DEBUG"}, {**want, "ApplicationLogLevel": "DEBUG"}),
        ({"SystemLogLevel": "WARN"}, {**want, "ApplicationLogLevel": "DEBUG", "SystemLogLevel": "WARN"}),
        ({"LogGroup": "cool_lambda"}, {**want, "ApplicationLogLevel": "DEBUG", "SystemLogLevel": "WARN", "LogGroup": "cool_lambda"}),
        ({"LogFormat": "Text"}, {"LogFormat": "Text", "LogGroup": "cool_lambda"}),
        ({"LogFormat": "JSON"}, {**want, "LogGroup": "cool_lambda"}),
        ({"LogFormat": "Text", "LogGroup": default_group}, {"LogFormat": "Text", "LogGroup": default_group}),
    ]
    for change, expected in steps:
        resp = lam.update_function_configuration(FunctionName=fn.name, LoggingConfig=change)
        assert resp["LoggingConfig"] == expected, change
        lam.get_waiter("function_updated_v2").wait(FunctionName=fn.name)
        assert _config(lam, fn.name) == expected, change

    plain = make_fn("python3.11", {"h.py": PY_LOGGER}, "h.handler")
    assert plain.config["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{plain.name}"}


def test_bad_logging_config_gets_aws_errors(lam, lam_raw, make_fn):
    fn = make_fn("python3.11", {"h.py": PY_LOGGER}, "h.handler")
    msg = expect_error(
        lambda: lam.update_function_configuration(FunctionName=fn.name, LoggingConfig={"ApplicationLogLevel": "DEBUG"}),
        "InvalidParameterValueException",
        400,
    )
    assert msg == ('LogLevel is not supported when LogFormat is set to "Text". Remove LogLevel from your request '
                   'or change the LogFormat to "Json" and try again.')
    expect_error(
        lambda: lam.update_function_configuration(
            FunctionName=fn.name, LoggingConfig={"LogFormat": "Text", "SystemLogLevel": "WARN"}),
        "InvalidParameterValueException",
        400,
    )
    msg = expect_error(
        lambda: lam_raw.update_function_configuration(FunctionName=fn.name, LoggingConfig={"LogFormat": "XML"}),
        "ValidationException",
        400,
    )
    assert "Value 'XML' at 'loggingConfig.logFormat' failed to satisfy constraint" in msg
    msg = expect_error(
        lambda: lam_raw.update_function_configuration(
            FunctionName=fn.name, LoggingConfig={"LogFormat": "JSON", "SystemLogLevel": "ERROR"}),
        "ValidationException",
        400,
    )
    assert "Member must satisfy enum value set: [DEBUG, INFO, WARN]" in msg
    expect_error(
        lambda: lam.update_function_configuration(FunctionName=fn.name, LoggingConfig={"LogGroup": "no spaces"}),
        "ValidationException",
        400,
    )
    name = unique("badlog")
    expect_error(
        lambda: lam.create_function(FunctionName=name, Runtime="python3.11", Handler="h.handler",
                                    Role=fn.config["Role"], Code={"ZipFile": fn.zip_bytes},
                                    LoggingConfig={"LogFormat": "Text", "ApplicationLogLevel": "WARN"}),
        "InvalidParameterValueException",
        400,
    )
    # Nothing was half-made.
    expect_error(lambda: lam.get_function(FunctionName=name), "ResourceNotFoundException", 404)
    assert _config(lam, fn.name) == {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{fn.name}"}


def test_python_json_logs_filtered_by_level(lam, make_fn):
    fn = make_fn("python3.11", {"h.py": PY_LOGGER}, "h.handler",
                 LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "WARN"})
    inv = invoke(lam, fn.name)
    env = inv.ok()
    assert env == {"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "WARN",
                   "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn.name}"}
    lines = inv.log_lines
    # Every line is a JSON record: no text START/END/REPORT, no plain print (INFO < WARN).
    records = _records(inv.log)
    assert len(records) == len([line for line in lines if line.strip()]), inv.describe()
    kinds = [r.get("type") for r in records if "type" in r]
    assert kinds == ["platform.start", "platform.report"], inv.describe()
    start, report = records[0], records[-1]
    assert start["record"] == {"requestId": inv.request_id, "version": "$LATEST"}
    assert start["time"].endswith("Z")
    assert report["record"]["requestId"] == inv.request_id
    assert report["record"]["status"] == "success"
    metrics = report["record"]["metrics"]
    assert metrics["memorySizeMB"] == 128 and metrics["billedDurationMs"] >= 1 and metrics["durationMs"] > 0
    assert metrics["initDurationMs"] > 0  # a cold start

    app = [r for r in records if "type" not in r]
    messages = [r.get("message") or r.get("msg") for r in app]
    assert messages == ["py warning", "py error", "json error print"], inv.describe()
    warning = app[0]
    assert warning["level"] == "WARNING" and warning["logger"] == "root" and warning["requestId"] == inv.request_id
    assert app[1]["orderId"] == 42

    # Warm: no init duration; the system level hides what it is above.
    inv2 = invoke(lam, fn.name)
    inv2.ok()
    assert "initDurationMs" not in _records(inv2.log)[-1]["record"]["metrics"]
    lam.update_function_configuration(FunctionName=fn.name,
                                      LoggingConfig={"ApplicationLogLevel": "DEBUG", "SystemLogLevel": "WARN"})
    lam.get_waiter("function_updated_v2").wait(FunctionName=fn.name)
    inv3 = invoke(lam, fn.name)
    inv3.ok()
    records = _records(inv3.log)
    assert [r for r in records if "type" in r] == [], inv3.describe()
    messages = [r.get("message") or r.get("msg") for r in records]
    assert messages == ["py debug", "py info", "py warning", "py error", "json debug print", "json error print"], inv3.describe()
    assert "plain print" in inv3.log  # a plain line is INFO, above DEBUG

    # DEBUG system logs add the runtime's own record.
    lam.update_function_configuration(FunctionName=fn.name, LoggingConfig={"SystemLogLevel": "DEBUG"})
    lam.get_waiter("function_updated_v2").wait(FunctionName=fn.name)
    inv4 = invoke(lam, fn.name)
    inv4.ok()
    kinds = [r["type"] for r in _records(inv4.log) if "type" in r]
    assert kinds == ["platform.start", "platform.runtimeDone", "platform.report"], inv4.describe()


def test_node_json_logs_and_errors(lam, make_fn):
    fn = make_fn("nodejs22.x", {"index.js": NODE_LOGGER}, "index.handler",
                 LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "DEBUG"})
    inv = invoke(lam, fn.name)
    assert inv.ok() == "DEBUG"
    app = [r for r in _records(inv.log) if "type" not in r]
    assert [(r["level"], r["message"] if isinstance(r["message"], str) else None) for r in app] == [
        ("DEBUG", "node debug"), ("INFO", "node log { a: 1 }"), ("WARN", "node warn"), ("ERROR", None)], inv.describe()
    assert all(r["requestId"] == inv.request_id for r in app)
    err = app[-1]["message"]
    assert err["errorType"] == "TypeError" and err["errorMessage"] == "node boom" and isinstance(err["stackTrace"], list)

    failing = make_fn("nodejs22.x", {"index.js": "exports.handler = async () => { throw new RangeError('nope'); };"},
                      "index.handler", LoggingConfig={"LogFormat": "JSON"})
    inv = invoke(lam, failing.name)
    inv.failed()
    report = [r for r in _records(inv.log) if r.get("type") == "platform.report"]
    assert report and report[0]["record"]["status"] == "error", inv.describe()
    assert report[0]["record"]["errorType"] == "RangeError"


def test_custom_log_group_gets_the_logs(lam, logs, make_fn, nimbus_bin, server):
    group = unique("/custom/app-logs")
    fn = make_fn("python3.11", {"h.py": PY_LOGGER}, "h.handler", LoggingConfig={"LogGroup": group})
    assert fn.config["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": group}
    inv = invoke(lam, fn.name)
    assert inv.ok()["AWS_LAMBDA_LOG_GROUP_NAME"] == group

    def found():
        msgs = all_group_messages(logs, group)
        return msgs if any(m.startswith(f"REPORT RequestId: {inv.request_id}") for m in msgs) else None

    msgs = wait_for(found, timeout=10, what=f"the REPORT line in {group}")
    assert "plain print" in msgs
    streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert streams and streams[0]["logStreamName"].endswith("]" + streams[0]["logStreamName"].split("]")[-1])
    # `nimbus logs` reads the function's own group.
    env = server_env({"NIMBUS_ENDPOINT": server.endpoint})
    cp = run([nimbus_bin, "logs", fn.name], env=env)
    assert cp.returncode == 0 and f"REPORT RequestId: {inv.request_id}" in cp.stdout.decode(), cp
    default = logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{fn.name}")["logGroups"]
    assert all(g["logGroupName"] != f"/aws/lambda/{fn.name}" for g in default)

"""CloudWatch Logs' filter pattern syntax and metric filters: FilterLogEvents with term, JSON
and space-delimited patterns (AWS's documented examples, FilterAndPatternSyntax), bad patterns
refused as AWS refuses them; Put/Describe/Delete/TestMetricFilter with AWS's shapes and errors
(LocalStack's AWS-validated snapshots, tests/aws/services/logs/
test_logs_metric_filters.snapshot.json, and the aws CLI's examples); and metric filters at
work: PutLogEvents lines and a Lambda function's printed JSON become CloudWatch datapoints,
read back with GetMetricStatistics and ListMetrics."""

from __future__ import annotations

import json
import re
import time

import pytest
from botocore.exceptions import ClientError

from helpers import aws_cli_runner, client_error, invoke, unique, wait_for

APACHE = [
    '127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534',
    '127.0.0.1 - frank [10/Oct/2000:13:35:22 -0700] "GET /index.html HTTP/1.0" 404 2048',
    '10.0.0.7 - jane [10/Oct/2000:13:40:01 -0700] "POST /api/orders HTTP/1.1" 500 512',
]
JSON_LINES = [
    json.dumps({"level": "ERROR", "latency": 250, "user": {"id": 1}, "tags": ["a", "b"], "ok": False}),
    json.dumps({"level": "INFO", "latency": 40, "user": {"id": 2}, "tags": ["c"], "ok": True, "extra": None}),
    json.dumps({"level": "ERROR", "latency": 90, "user": {"id": 3}, "tags": [], "ok": True}),
]
TEXT = ["[ERROR 400] BAD REQUEST", "[ERROR 401] UNAUTHORIZED REQUEST", "[INFO 200] OK", "[WARN] slow ARGUMENTS"]


def now_ms() -> int:
    return int(time.time() * 1000)


def refused(call, **kwargs):
    with pytest.raises(ClientError) as e:
        call(**kwargs)
    return client_error(e)


def invalid(message):
    return ("InvalidParameterException", 400, message)


@pytest.fixture
def group(logs):
    name = f"/app/{unique('flt')}"
    logs.create_log_group(logGroupName=name)
    logs.create_log_stream(logGroupName=name, logStreamName="s")
    t = now_ms() - 1000
    lines = TEXT + APACHE + JSON_LINES
    logs.put_log_events(logGroupName=name, logStreamName="s",
                        logEvents=[{"timestamp": t + i, "message": m} for i, m in enumerate(lines)])
    yield name
    try:
        logs.delete_log_group(logGroupName=name)
    except ClientError:
        pass


def found(logs, group, pattern):
    return [e["message"] for e in logs.filter_log_events(logGroupName=group, filterPattern=pattern)["events"]]


def test_filter_log_events_with_each_pattern_kind(logs, group):
    cases = [
        # Terms.
        ("ERROR", TEXT[:2] + [JSON_LINES[0], JSON_LINES[2]]),
        ("ERROR UNAUTHORIZED", [TEXT[1]]),
        ("?INFO ?WARN", TEXT[2:4] + [JSON_LINES[1]]),
        ('"BAD REQUEST"', [TEXT[0]]),
        ("ERROR -UNAUTHORIZED", [TEXT[0], JSON_LINES[0], JSON_LINES[2]]),
        ("nothing-matches-this", []),
        # JSON.
        ('{ $.level = "ERROR" }', [JSON_LINES[0], JSON_LINES[2]]),
        ('{ $.level = "ERROR" && $.latency > 100 }', [JSON_LINES[0]]),
        ('{ $.level = "INF*" || $.latency >= 250 }', JSON_LINES[:2]),
        ("{ $.user.id != 2 }", [JSON_LINES[0], JSON_LINES[2]]),
        ('{ $.tags[0] = "c" }', [JSON_LINES[1]]),
        ("{ $.extra IS NULL }", [JSON_LINES[1]]),
        ("{ $.extra NOT EXISTS }", [JSON_LINES[0], JSON_LINES[2]]),
        ("{ $.ok IS TRUE }", JSON_LINES[1:]),
        ("{ ($.ok IS FALSE || $.latency < 50) && $.user.id <= 2 }", JSON_LINES[:2]),
        # Space-delimited.
        ("[ip, user, username, timestamp, request, status_code, bytes]", APACHE),
        ('[ip, user, username, timestamp, request = "*html*", status_code = 4*, bytes]', [APACHE[1]]),
        ("[ip, user, username, timestamp, request, status_code = 4* || status_code = 5*, bytes > 1000]", [APACHE[1]]),
        ("[ip = 10.*, ...]", [APACHE[2]]),
        ("[..., status_code != 200, bytes]", APACHE[1:]),
    ]
    for pattern, want in cases:
        assert found(logs, group, pattern) == want, pattern


def test_bad_patterns_are_refused(logs, group):
    for pattern in ['{ $.level = "ERROR"', "{ $.level == 1 }", "{ level = 1 }", "[a, b", "[a = ]", '"unterminated',
                    "email!domain", "{ $.a IS MAYBE }"]:
        assert refused(logs.filter_log_events, logGroupName=group, filterPattern=pattern) == invalid(
            "Invalid filter pattern"), pattern
    assert refused(logs.put_subscription_filter, logGroupName=group, filterName="f", filterPattern="{ $.x = }",
                   destinationArn="arn:aws:lambda:us-east-1:000000000000:function:f") == invalid("Invalid filter pattern")


def test_aws_cli_filter_log_events(server, aws_cli, tmp_path, group):
    aws = aws_cli_runner(aws_cli, server.endpoint, tmp_path / "home")
    cp = aws("logs", "filter-log-events", "--log-group-name", group, "--filter-pattern", '{ $.latency > 50 }')
    assert cp.returncode == 0, cp.err
    assert [e["message"] for e in json.loads(cp.out)["events"]] == [JSON_LINES[0], JSON_LINES[2]]
    cp = aws("logs", "filter-log-events", "--log-group-name", group, "--filter-pattern", "{ $.latency > }")
    assert cp.returncode == 255
    assert re.search(r"\(InvalidParameterException\) when calling the FilterLogEvents operation( \(reached max retries: 0\))?: "
                     r"Invalid filter pattern$", cp.err.strip()), cp.err


# ---- metric filters ----------------------------------------------------------------------------


def transformation(name="metric", namespace="namespace", value="1", **extra):
    return {"metricName": name, "metricNamespace": namespace, "metricValue": value, **extra}


def test_metric_filters_put_describe_delete(logs, group):
    ns = unique("ns")
    logs.put_metric_filter(logGroupName=group, filterName="errors", filterPattern=" ",
                           metricTransformations=[transformation("Errors", ns, defaultValue=0)])
    logs.put_metric_filter(logGroupName=group, filterName="latency", filterPattern="{ $.latency = * }",
                           metricTransformations=[transformation("Latency", ns, "$.latency", unit="Milliseconds",
                                                                 dimensions={"Level": "$.level"})])
    got = logs.describe_metric_filters(logGroupName=group)["metricFilters"]
    for f in got:
        assert abs(f.pop("creationTime") - now_ms()) < 60_000
    assert got == [
        {"filterName": "errors", "filterPattern": " ", "logGroupName": group, "applyOnTransformedLogs": False,
         "metricTransformations": [{"metricName": "Errors", "metricNamespace": ns, "metricValue": "1", "defaultValue": 0.0}]},
        {"filterName": "latency", "filterPattern": "{ $.latency = * }", "logGroupName": group, "applyOnTransformedLogs": False,
         "metricTransformations": [{"metricName": "Latency", "metricNamespace": ns, "metricValue": "$.latency",
                                    "dimensions": {"Level": "$.level"}, "unit": "Milliseconds"}]},
    ]
    # Replacing keeps one filter of the name.
    logs.put_metric_filter(logGroupName=group, filterName="errors", filterPattern="ERROR",
                           metricTransformations=[transformation("Errors", ns)])
    assert [f["filterPattern"] for f in logs.describe_metric_filters(logGroupName=group)["metricFilters"]] == [
        "ERROR", "{ $.latency = * }"]
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["metricFilterCount"] == 2
    # By prefix (across groups), by metric, and in pages.
    other = f"/app/{unique('flt')}"
    logs.create_log_group(logGroupName=other)
    prefix = unique("pfx")
    for g in (group, other):
        logs.put_metric_filter(logGroupName=g, filterName=f"{prefix}-{g[-6:]}", filterPattern="x",
                               metricTransformations=[transformation("Other", ns)])
    assert sorted(f["logGroupName"] for f in logs.describe_metric_filters(filterNamePrefix=prefix)["metricFilters"]) == sorted(
        [group, other])
    by_metric = logs.describe_metric_filters(metricName="Latency", metricNamespace=ns)["metricFilters"]
    assert [(f["logGroupName"], f["filterName"]) for f in by_metric] == [(group, "latency")]
    names, kwargs = [], {"logGroupName": group, "limit": 1}
    for _ in range(5):
        page = logs.describe_metric_filters(**kwargs)
        names += [f["filterName"] for f in page["metricFilters"]]
        if "nextToken" not in page:
            break
        kwargs["nextToken"] = page["nextToken"]
    assert names == ["errors", "latency", f"{prefix}-{group[-6:]}"]
    logs.delete_metric_filter(logGroupName=group, filterName="latency")
    assert [f["filterName"] for f in logs.describe_metric_filters(logGroupName=group)["metricFilters"]] == [
        "errors", f"{prefix}-{group[-6:]}"]
    # A group's filters go with it.
    logs.delete_log_group(logGroupName=other)
    assert [f["logGroupName"] for f in logs.describe_metric_filters(filterNamePrefix=prefix)["metricFilters"]] == [group]


def test_metric_filter_errors(logs, group):
    put = logs.put_metric_filter
    missing = f"/app/{unique('none')}"
    assert refused(put, logGroupName=missing, filterName="f", filterPattern="x", metricTransformations=[transformation()]) == (
        "ResourceNotFoundException", 400, "The specified log group does not exist.")
    assert refused(logs.delete_metric_filter, logGroupName=group, filterName="nope") == (
        "ResourceNotFoundException", 400, "The specified metric filter does not exist.")
    assert refused(logs.describe_metric_filters, logGroupName=missing) == (
        "ResourceNotFoundException", 400, "The specified log group does not exist.")
    # LocalStack's AWS-validated snapshots.
    assert refused(put, logGroupName=group, filterName="X" * 513, filterPattern="x", metricTransformations=[transformation()]) == invalid(
        f"1 validation error detected: Value '{'X' * 513}' at 'filterName' failed to satisfy constraint: Member must have length less than or equal to 512")
    assert refused(put, logGroupName=group, filterName="f", filterPattern="X" * 1025, metricTransformations=[transformation()]) == invalid(
        f"1 validation error detected: Value '{'X' * 1025}' at 'filterPattern' failed to satisfy constraint: Member must have length less than or equal to 1024")
    assert refused(put, logGroupName=group, filterName="valid-filter", filterPattern="pattern",
                   metricTransformations=[transformation("metric1", "namespace1"), transformation("metric2", "namespace2")]) == invalid(
        "1 validation error detected: Value '[MetricTransformation(metricName=metric1, metricNamespace=namespace1, metricValue=1, "
        "defaultValue=null, unit=null, dimensions=null), MetricTransformation(metricName=metric2, metricNamespace=namespace2, "
        "metricValue=1, defaultValue=null, unit=null, dimensions=null)]' at 'metricTransformations' failed to satisfy constraint: "
        "Member must have length less than or equal to 1")
    assert refused(logs.delete_metric_filter, logGroupName="X" * 513, filterName="valid-filter") == invalid(
        "Invalid LogGroup or LogStream, both must have length less than or equal to 512.")
    assert refused(logs.describe_metric_filters, metricName="X" * 256, metricNamespace="valid") == invalid(
        f"1 validation error detected: Value '{'X' * 256}' at 'metricName' failed to satisfy constraint: Member must have length less than or equal to 255")
    # Patterns and values checked as AWS checks them.
    assert refused(put, logGroupName=group, filterName="f", filterPattern="{ $.a = ", metricTransformations=[transformation()]) == invalid(
        "Invalid filter pattern")
    assert refused(put, logGroupName=group, filterName="f", filterPattern="ERROR",
                   metricTransformations=[transformation(value="$.latency")]) == invalid("Invalid metric value")
    assert refused(put, logGroupName=group, filterName="f", filterPattern="ERROR",
                   metricTransformations=[transformation(dimensions={"a": "$.a"})]) == invalid(
        "The specified filter pattern does not support dimensions")
    # At most 100 filters a group.
    for i in range(100):
        put(logGroupName=group, filterName=f"f{i:03}", filterPattern="x", metricTransformations=[transformation()])
    assert refused(put, logGroupName=group, filterName="f100", filterPattern="x", metricTransformations=[transformation()]) == (
        "LimitExceededException", 400, "Resource limit exceeded.")
    put(logGroupName=group, filterName="f000", filterPattern="y", metricTransformations=[transformation()])


def test_test_metric_filter(logs):
    # The aws CLI's documented example.
    got = logs.test_metric_filter(filterPattern="ERROR",
                                  logEventMessages=["[ERROR] 400 BAD REQUEST", "[ERROR] 400 BAD REQUEST", "[INFO] 200 OK"])
    assert got["matches"] == [{"eventNumber": 1, "eventMessage": "[ERROR] 400 BAD REQUEST", "extractedValues": {}},
                              {"eventNumber": 2, "eventMessage": "[ERROR] 400 BAD REQUEST", "extractedValues": {}}]
    got = logs.test_metric_filter(filterPattern="[ip, user, username, timestamp, request, status_code = 4*, bytes]",
                                  logEventMessages=APACHE)["matches"]
    assert got == [{"eventNumber": 2, "eventMessage": APACHE[1], "extractedValues": {
        "$ip": "127.0.0.1", "$user": "-", "$username": "frank", "$timestamp": "10/Oct/2000:13:35:22 -0700",
        "$request": "GET /index.html HTTP/1.0", "$status_code": "404", "$bytes": "2048"}}]
    got = logs.test_metric_filter(filterPattern='{ $.level = "ERROR" }', logEventMessages=JSON_LINES)["matches"]
    assert [(m["eventNumber"], m["extractedValues"]) for m in got] == [(1, {}), (3, {})]
    assert refused(logs.test_metric_filter, filterPattern="[a,", logEventMessages=["x"]) == invalid("Invalid filter pattern")


def statistics(cw, ns, name, dimensions=()):
    end = time.time() + 60
    points = cw.get_metric_statistics(Namespace=ns, MetricName=name, Dimensions=[{"Name": k, "Value": v} for k, v in dimensions],
                                      StartTime=end - 900, EndTime=end, Period=60,
                                      Statistics=["Sum", "SampleCount", "Maximum"])["Datapoints"]
    if not points:
        return None
    return (sum(p["Sum"] for p in points), sum(p["SampleCount"] for p in points), max(p["Maximum"] for p in points),
            {p["Unit"] for p in points})


def test_put_log_events_become_metrics(server, logs):
    cw = server.client("cloudwatch")
    ns = unique("App")
    group = f"/app/{unique('mf')}"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    logs.put_metric_filter(logGroupName=group, filterName="errors", filterPattern="ERROR",
                           metricTransformations=[transformation("Errors", ns, defaultValue=0)])
    logs.put_metric_filter(logGroupName=group, filterName="latency", filterPattern='{ $.latency > 0 }',
                           metricTransformations=[transformation("Latency", ns, "$.latency", unit="Milliseconds",
                                                                 dimensions={"Level": "$.level"})])
    logs.put_metric_filter(logGroupName=group, filterName="bytes", filterPattern="[ip, user, username, timestamp, request, status, bytes]",
                           metricTransformations=[transformation("Bytes", ns, "$bytes", unit="Bytes")])
    t = now_ms()
    lines = TEXT + APACHE + JSON_LINES
    logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=[{"timestamp": t, "message": m} for m in lines])
    # Every event counts for Errors (1 if it matches, else the default 0).
    assert wait_for(lambda: statistics(cw, ns, "Errors"), timeout=20, what="Errors") == (4.0, 10.0, 1.0, {"None"})
    assert statistics(cw, ns, "Latency", [("Level", "ERROR")]) == (340.0, 2.0, 250.0, {"Milliseconds"})
    assert statistics(cw, ns, "Latency", [("Level", "INFO")]) == (40.0, 1.0, 40.0, {"Milliseconds"})
    assert statistics(cw, ns, "Bytes") == (1534.0 + 2048 + 512, 3.0, 2048.0, {"Bytes"})
    listed = cw.list_metrics(Namespace=ns)["Metrics"]
    assert sorted((m["MetricName"], tuple((d["Name"], d["Value"]) for d in m["Dimensions"])) for m in listed) == [
        ("Bytes", ()), ("Errors", ()), ("Latency", (("Level", "ERROR"),)), ("Latency", (("Level", "INFO"),))]
    logs.delete_log_group(logGroupName=group)


PRINTER = r'''
import json

def handler(event, context):
    for latency in event["latencies"]:
        print(json.dumps({"event": "request", "latency": latency}))
    print("not json")
    return "done"
'''


def test_lambda_json_lines_counted_by_a_metric_filter(server, make_fn, lam, logs):
    cw = server.client("cloudwatch")
    ns = unique("Fn")
    fn = make_fn("python3.11", {"index.py": PRINTER}, "index.handler", prefix="printer")
    group = f"/aws/lambda/{fn.name}"
    logs.create_log_group(logGroupName=group)
    logs.put_metric_filter(logGroupName=group, filterName="requests", filterPattern='{ $.event = "request" }',
                           metricTransformations=[transformation("Requests", ns)])
    logs.put_metric_filter(logGroupName=group, filterName="latency", filterPattern='{ $.event = "request" }',
                           metricTransformations=[transformation("Latency", ns, "$.latency", unit="Milliseconds")])
    assert invoke(lam, fn.name, {"latencies": [12, 30, 18]}).ok() == "done"
    assert wait_for(lambda: statistics(cw, ns, "Requests"), timeout=30, what="Requests") == (3.0, 3.0, 1.0, {"None"})
    assert statistics(cw, ns, "Latency") == (60.0, 3.0, 30.0, {"Milliseconds"})


def test_aws_cli_metric_filters(server, aws_cli, tmp_path, group):
    aws = aws_cli_runner(aws_cli, server.endpoint, tmp_path / "home")
    cp = aws("logs", "put-metric-filter", "--log-group-name", group, "--filter-name", "DemoFilter", "--filter-pattern", "ERROR",
             "--metric-transformations", "metricName=Demo_Error,metricNamespace=DemoNamespace,metricValue=1")
    assert cp.returncode == 0, cp.err
    cp = aws("logs", "describe-metric-filters", "--log-group-name", group)
    assert cp.returncode == 0, cp.err
    [f] = json.loads(cp.out)["metricFilters"]
    assert (f["filterName"], f["metricTransformations"]) == (
        "DemoFilter", [{"metricName": "Demo_Error", "metricNamespace": "DemoNamespace", "metricValue": "1"}])
    cp = aws("logs", "test-metric-filter", "--filter-pattern", "ERROR", "--log-event-messages",
             "[ERROR] 400 BAD REQUEST", "[ERROR] 400 BAD REQUEST", "[INFO] 200 OK")
    assert cp.returncode == 0, cp.err
    assert [m["eventNumber"] for m in json.loads(cp.out)["matches"]] == [1, 2]
    cp = aws("logs", "delete-metric-filter", "--log-group-name", group, "--filter-name", "DemoFilter")
    assert cp.returncode == 0, cp.err
    cp = aws("logs", "delete-metric-filter", "--log-group-name", group, "--filter-name", "DemoFilter")
    assert cp.returncode == 255
    assert "(ResourceNotFoundException)" in cp.err and "The specified metric filter does not exist." in cp.err, cp.err

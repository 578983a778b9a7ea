"""CloudWatch metrics in the three protocols the SDKs speak (RPC v2 CBOR, botocore's default;
JSON 1.0; query): PutMetricData, GetMetricStatistics (statistics and percentiles),
GetMetricData (MetricStat queries), ListMetrics, AWS's validation errors with their query
codes; AWS/Lambda's own metrics from invocations; datapoints that survive a restart; the
aws CLI."""

from __future__ import annotations

import copy
import datetime as dt
import json

import boto3
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from helpers import REGION, aws_cli_runner, invoke, unique


def cloudwatch(endpoint: str, protocol: str | None, tmp_path) -> object:
    """A boto3 CloudWatch client speaking `protocol` (None: botocore's choice, RPC v2 CBOR),
    by a copy of botocore's own model that lists only that protocol."""
    session = botocore.session.Session()
    if protocol:
        loader = session.get_component("data_loader")
        model = copy.deepcopy(loader.load_service_model("cloudwatch", "service-2"))
        model["metadata"]["protocol"] = protocol
        model["metadata"]["protocols"] = [protocol]
        where = tmp_path / f"models-{protocol}"
        d = where / "cloudwatch" / model["metadata"]["apiVersion"]
        d.mkdir(parents=True, exist_ok=True)
        (d / "service-2.json").write_text(json.dumps(model))
        loader.search_paths.insert(0, str(where))
    return boto3.Session(botocore_session=session).client(
        "cloudwatch", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1}))


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@pytest.mark.parametrize("protocol", [None, "json", "query"])
def test_put_get_list_in_every_protocol(server, tmp_path, protocol):
    cw = cloudwatch(server.endpoint, protocol, tmp_path)
    ns = unique("App")
    t = now().replace(second=0, microsecond=0) - dt.timedelta(minutes=5)
    dims = [{"Name": "Service", "Value": "api"}]
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "Latency", "Dimensions": dims, "Timestamp": t, "Values": [10.0, 20.0, 30.0], "Counts": [1, 1, 2], "Unit": "Milliseconds"},
        {"MetricName": "Latency", "Dimensions": dims, "Timestamp": t + dt.timedelta(minutes=1), "Value": 100.0, "Unit": "Milliseconds"},
        {"MetricName": "Latency", "Dimensions": [{"Name": "Service", "Value": "web"}], "Timestamp": t, "Value": 1.0, "Unit": "Milliseconds"},
        {"MetricName": "Hits", "Timestamp": t, "StatisticValues": {"SampleCount": 4, "Sum": 8, "Minimum": 1, "Maximum": 3}, "Unit": "Count"},
    ])
    stats = cw.get_metric_statistics(Namespace=ns, MetricName="Latency", Dimensions=dims, StartTime=t - dt.timedelta(minutes=1),
                                     EndTime=t + dt.timedelta(minutes=3), Period=60,
                                     Statistics=["Sum", "SampleCount", "Average", "Minimum", "Maximum"])
    assert stats["Label"] == "Latency"
    points = sorted(stats["Datapoints"], key=lambda p: p["Timestamp"])
    assert [(p["Sum"], p["SampleCount"], p["Minimum"], p["Maximum"], p["Unit"]) for p in points] == [
        (90.0, 4.0, 10.0, 30.0, "Milliseconds"), (100.0, 1.0, 100.0, 100.0, "Milliseconds")]
    assert points[0]["Average"] == 22.5 and points[0]["Timestamp"] == t
    pct = cw.get_metric_statistics(Namespace=ns, MetricName="Latency", Dimensions=dims, StartTime=t, EndTime=t + dt.timedelta(minutes=2),
                                   Period=120, ExtendedStatistics=["p50", "p99"])
    ext = pct["Datapoints"][0]["ExtendedStatistics"]
    assert abs(ext["p50"] - 30.0) < 0.5 and abs(ext["p99"] - 100.0) < 1.0, ext

    data = cw.get_metric_data(StartTime=t - dt.timedelta(minutes=1), EndTime=t + dt.timedelta(minutes=3), MetricDataQueries=[
        {"Id": "lat", "MetricStat": {"Metric": {"Namespace": ns, "MetricName": "Latency", "Dimensions": dims}, "Period": 60, "Stat": "Maximum"}},
        {"Id": "hits", "Label": "hits per minute", "MetricStat": {"Metric": {"Namespace": ns, "MetricName": "Hits"}, "Period": 60, "Stat": "Sum"}},
        {"Id": "hidden", "ReturnData": False, "MetricStat": {"Metric": {"Namespace": ns, "MetricName": "Hits"}, "Period": 60, "Stat": "Sum"}},
    ])
    results = {r["Id"]: r for r in data["MetricDataResults"]}
    assert set(results) == {"lat", "hits"}
    assert results["lat"]["Label"] == "Latency" and results["lat"]["StatusCode"] == "Complete"
    assert results["lat"]["Values"] == [100.0, 30.0], "newest first (TimestampDescending)"
    assert results["lat"]["Timestamps"] == [t + dt.timedelta(minutes=1), t]
    assert (results["hits"]["Label"], results["hits"]["Values"]) == ("hits per minute", [8.0])

    listed = cw.list_metrics(Namespace=ns)["Metrics"]
    assert sorted((m["MetricName"], json.dumps(m["Dimensions"])) for m in listed) == sorted([
        ("Hits", "[]"), ("Latency", json.dumps([{"Name": "Service", "Value": "api"}])),
        ("Latency", json.dumps([{"Name": "Service", "Value": "web"}]))])
    web = cw.list_metrics(Namespace=ns, Dimensions=[{"Name": "Service", "Value": "web"}])["Metrics"]
    assert [m["Dimensions"] for m in web] == [[{"Name": "Service", "Value": "web"}]]
    assert len(cw.list_metrics(Namespace=ns, Dimensions=[{"Name": "Service"}])["Metrics"]) == 2


@pytest.mark.parametrize("protocol", [None, "json", "query"])
def test_metric_math(server, tmp_path, protocol):
    cw = cloudwatch(server.endpoint, protocol, tmp_path)
    ns = unique("Math")
    t = now().replace(second=0, microsecond=0) - dt.timedelta(minutes=10)
    minute = dt.timedelta(minutes=1)
    cw.put_metric_data(Namespace=ns, MetricData=[
        *[{"MetricName": "Requests", "Timestamp": t + k * minute, "Value": v} for k, v in enumerate([10.0, 20.0, 40.0])],
        *[{"MetricName": "Errors", "Timestamp": t + k * minute, "Value": v} for k, v in [(0, 1.0), (2, 10.0)]],
    ])

    def stat(id_, name, **kw):
        return {"Id": id_, "MetricStat": {"Metric": {"Namespace": ns, "MetricName": name}, "Period": 60, "Stat": "Sum"}, **kw}

    data = cw.get_metric_data(StartTime=t, EndTime=t + 3 * minute, ScanBy="TimestampAscending", MetricDataQueries=[
        {"Id": "rate", "Expression": "100 * errors / requests", "Label": "Error rate"},
        stat("requests", "Requests", ReturnData=False),
        stat("errors", "Errors", ReturnData=False),
        {"Id": "filled", "Expression": "FILL(errors, 0)"},
        {"Id": "total", "Expression": "SUM(METRICS())"},
        {"Id": "twice", "Expression": "rate * 2"},
        {"Id": "mean", "Expression": "AVG(requests)"},
    ])
    got = {r["Id"]: (r["Label"], r["Values"], [int((ts - t).total_seconds() // 60) for ts in r["Timestamps"]])
           for r in data["MetricDataResults"]}
    assert got == {
        "rate": ("Error rate", [10.0, 25.0], [0, 2]),
        "filled": ("filled", [1.0, 0.0, 10.0], [0, 1, 2]),
        "total": ("total", [11.0, 20.0, 50.0], [0, 1, 2]),
        "twice": ("twice", [20.0, 50.0], [0, 2]),
        "mean": ("mean", [70.0 / 3] * 3, [0, 1, 2]),
    }, got

    bad = [
        ([{"Id": "e1", "Expression": "m9 * 2"}], "ValidationError", "Error in expression e1: Unrecognized metric id: m9"),
        ([{"Id": "e1", "Expression": "e2 + 1"}, {"Id": "e2", "Expression": "e1 + 1"}], "ValidationError",
         "Error in expression e1: Circular dependency between expressions"),
        ([{"Id": "e1", "Expression": "SUM(("}], "ValidationError", "Error in expression e1: Unexpected end of expression"),
        ([stat("m1", "Requests"), stat("m1", "Errors")], "ValidationError",
         "The values for parameter id in MetricDataQueries are not unique."),
        ([{**stat("m1", "Requests"), "Expression": "1"}], "InvalidParameterCombination",
         "The parameters MetricDataQueries.member.1.MetricStat and MetricDataQueries.member.1.Expression are mutually "
         "exclusive and you have specified both."),
    ]
    for queries, code, message in bad:
        with pytest.raises(ClientError) as e:
            cw.get_metric_data(StartTime=t, EndTime=t + 3 * minute, MetricDataQueries=queries)
        err = e.value.response["Error"]
        assert (err["Code"], err["Message"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (code, message, 400)


def test_high_resolution_metrics(server, tmp_path):
    cw = cloudwatch(server.endpoint, None, tmp_path)
    ns = unique("HighRes")
    t = now().replace(second=0, microsecond=0) - dt.timedelta(minutes=2)
    second = dt.timedelta(seconds=1)
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "Fast", "Timestamp": t + 1 * second, "Value": 1.0, "StorageResolution": 1},
        {"MetricName": "Fast", "Timestamp": t + 2 * second, "Value": 2.0, "StorageResolution": 1},
        {"MetricName": "Fast", "Timestamp": t + 12 * second, "Value": 4.0, "StorageResolution": 1},
        {"MetricName": "Slow", "Timestamp": t + 1 * second, "Value": 1.0},
    ])

    def sums(name, period):
        pts = cw.get_metric_statistics(Namespace=ns, MetricName=name, StartTime=t, EndTime=t + dt.timedelta(minutes=1),
                                       Period=period, Statistics=["Sum"])["Datapoints"]
        return sorted((int((p["Timestamp"] - t).total_seconds()), p["Sum"]) for p in pts)

    assert sums("Fast", 1) == [(1, 1.0), (2, 2.0), (12, 4.0)]
    assert sums("Fast", 10) == [(0, 3.0), (10, 4.0)]
    assert sums("Fast", 60) == [(0, 7.0)]
    assert sums("Slow", 1) == []  # stored at one minute only, as AWS stores it
    assert sums("Slow", 60) == [(0, 1.0)]
    with pytest.raises(ClientError) as e:
        cw.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "Fast", "Value": 1.0, "StorageResolution": 5}])
    assert e.value.response["Error"]["Code"] == "InvalidParameterValue"


@pytest.mark.parametrize("protocol", [None, "json", "query"])
def test_errors_as_aws_answers_them(server, tmp_path, protocol):
    cw = cloudwatch(server.endpoint, protocol, tmp_path)
    m = "MetricData.member.1"
    cases = [
        ([{"MetricName": "M", "Value": 1.0, "Values": [1.0]}], "InvalidParameterCombination",
         f"The parameters {m}.Value and {m}.Values are mutually exclusive and you have specified both."),
        ([{"MetricName": "M", "Values": [1.0, 2.0], "Counts": [1.0]}], "InvalidParameterValue",
         f"The parameters {m}.Values and {m}.Counts must be of the same size."),
        ([{"MetricName": "M", "Value": 1e200}], "InvalidParameterValue", f"The value 1e200 for parameter {m}.Value is invalid."),
        ([{"MetricName": "M", "Value": 1.0, "Dimensions": [{"Name": f"d{n}", "Value": "v"} for n in range(31)]}],
         "InvalidParameterValue", f"The collection {m}.Dimensions must not have a size greater than 30."),
    ]
    for data, code, message in cases:
        with pytest.raises(ClientError) as e:
            cw.put_metric_data(Namespace="App", MetricData=data)
        err = e.value.response["Error"]
        assert (err["Code"], err["Message"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (code, message, 400)
    with pytest.raises(ClientError) as e:
        cw.put_metric_data(Namespace="AWS/Lambda", MetricData=[{"MetricName": "M", "Value": 1.0}])
    assert e.value.response["Error"]["Code"] == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        cw.get_metric_statistics(Namespace="App", MetricName="M", StartTime=now() - dt.timedelta(hours=1), EndTime=now(), Period=60)
    assert e.value.response["Error"]["Code"] == "InvalidParameterCombination"


def test_lambda_publishes_its_metrics(server, lam, make_fn, tmp_path):
    fn = make_fn("nodejs20.x", {"index.js": "exports.handler = async (e) => { if (e.fail) throw new Error('no'); return 1; };\n"},
                 "index.handler")
    start = now() - dt.timedelta(minutes=1)
    for payload in ({}, {}, {"fail": True}):
        invoke(lam, fn.name, payload)
    cw = cloudwatch(server.endpoint, None, tmp_path)
    by_fn = [{"Name": "FunctionName", "Value": fn.name}]

    def total(metric: str, stat: str = "Sum") -> float:
        pts = cw.get_metric_statistics(Namespace="AWS/Lambda", MetricName=metric, Dimensions=by_fn, StartTime=start,
                                       EndTime=now() + dt.timedelta(minutes=1), Period=300, Statistics=[stat])["Datapoints"]
        return sum(p[stat] for p in pts)

    assert total("Invocations") == 3
    assert total("Errors") == 1
    assert total("Duration", "SampleCount") == 3
    assert total("ConcurrentExecutions", "Maximum") >= 1
    names = {m["MetricName"] for m in cw.list_metrics(Namespace="AWS/Lambda", Dimensions=by_fn)["Metrics"]}
    assert {"Invocations", "Errors", "Duration", "ConcurrentExecutions", "ColdStarts", "InitDuration"} <= names
    assert total("ColdStarts") >= 1 and total("InitDuration", "SampleCount") == total("ColdStarts")


def test_lambda_metrics_by_resource_version_and_async(server, lam, make_fn, tmp_path):
    fn = make_fn("nodejs20.x", {"index.js": "exports.handler = async (e) => { if (e.fail) throw new Error('no'); return 1; };\n"},
                 "index.handler")
    v1 = lam.publish_version(FunctionName=fn.name)["Version"]
    lam.create_alias(FunctionName=fn.name, Name="live", FunctionVersion=v1)
    start = now() - dt.timedelta(minutes=1)
    invoke(lam, f"{fn.name}:live")
    invoke(lam, f"{fn.name}:live", {"fail": True})
    invoke(lam, f"{fn.name}:{v1}")
    lam.put_function_event_invoke_config(FunctionName=fn.name, MaximumRetryAttempts=0)
    lam.invoke(FunctionName=fn.name, InvocationType="Event", Payload=b"{}")
    lam.invoke(FunctionName=fn.name, InvocationType="Event", Payload=b'{"fail": true}')
    cw = cloudwatch(server.endpoint, None, tmp_path)

    def total(metric: str, dims: list[dict], stat: str = "Sum") -> float:
        pts = cw.get_metric_statistics(Namespace="AWS/Lambda", MetricName=metric, Dimensions=dims, StartTime=start,
                                       EndTime=now() + dt.timedelta(minutes=1), Period=300, Statistics=[stat])["Datapoints"]
        return sum(p[stat] for p in pts)

    by_fn = [{"Name": "FunctionName", "Value": fn.name}]
    alias = by_fn + [{"Name": "Resource", "Value": f"{fn.name}:live"}]
    version = by_fn + [{"Name": "Resource", "Value": f"{fn.name}:{v1}"}]
    executed = alias + [{"Name": "ExecutedVersion", "Value": v1}]
    assert (total("Invocations", alias), total("Errors", alias)) == (2, 1)
    assert (total("Invocations", executed), total("Errors", executed)) == (2, 1)
    assert total("Invocations", version) == 1
    assert wait_until(lambda: total("Invocations", by_fn) == 5), total("Invocations", by_fn)
    assert total("AsyncEventsReceived", by_fn) == 2
    assert total("AsyncEventAge", by_fn, "SampleCount") == 2
    # The failing event had no retry, destination or dead-letter queue: dropped.
    assert wait_until(lambda: total("AsyncEventsDropped", by_fn) == 1)
    def key(d):
        return json.dumps(sorted(d, key=lambda x: x["Name"]))

    dims = {key(m["Dimensions"]) for m in cw.list_metrics(Namespace="AWS/Lambda", MetricName="Invocations", Dimensions=by_fn)["Metrics"]}
    assert {key(d) for d in (by_fn, alias, version, executed)} <= dims, dims


def wait_until(cond, timeout: float = 15.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.3)
    return cond()


EMF_PY = r'''
import json, time
def handler(event, context):
    # As AWS Lambda Powertools' Metrics writes its line.
    print(json.dumps({"_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [{
        "Namespace": event["ns"], "Dimensions": [["service"]],
        "Metrics": [{"Name": "Bookings", "Unit": "Count"}, {"Name": "Latency", "Unit": "Milliseconds"}]}]},
        "service": "booking", "Bookings": 1, "Latency": [12.0, 18.0]}))
    return "ok"
'''


def test_embedded_metric_format_lines_become_metrics(server, make_fn, lam, tmp_path):
    fn = make_fn("python3.11", {"app.py": EMF_PY}, "app.handler")
    ns = unique("Airline")
    start = now() - dt.timedelta(minutes=1)
    for _ in range(2):
        assert invoke(lam, fn.name, {"ns": ns}).ok() == "ok"
    cw = cloudwatch(server.endpoint, None, tmp_path)
    dims = [{"Name": "service", "Value": "booking"}]
    window = {"StartTime": start, "EndTime": now() + dt.timedelta(minutes=1), "Period": 300}

    def bookings():
        pts = cw.get_metric_statistics(Namespace=ns, MetricName="Bookings", Dimensions=dims, Statistics=["Sum"], **window)
        return [(p["Sum"], p["Unit"]) for p in pts["Datapoints"]]

    def latency():
        pts = cw.get_metric_statistics(Namespace=ns, MetricName="Latency", Dimensions=dims, Statistics=["SampleCount", "Maximum"],
                                       **window)
        return [(p["SampleCount"], p["Maximum"]) for p in pts["Datapoints"]]

    # The log writer turns the lines into metrics after the invocation has answered (as in
    # CloudWatch, where they arrive later still): wait for them, then compare.
    wait_until(lambda: bookings() == [(2.0, "Count")] and latency() == [(4.0, 18.0)])
    assert bookings() == [(2.0, "Count")]
    assert latency() == [(4.0, 18.0)]


def test_datapoints_survive_a_restart_and_the_cli_reads_them(server_factory, aws_cli, tmp_path):
    s = server_factory()
    aws = aws_cli_runner(aws_cli, s.endpoint, tmp_path / "home")
    cp = aws("cloudwatch", "put-metric-data", "--namespace", "Cli", "--metric-name", "Jobs", "--value", "7", "--unit", "Count")
    assert cp.returncode == 0, cp.err
    s.restart()
    aws = aws_cli_runner(aws_cli, s.endpoint, tmp_path / "home")
    start = (now() - dt.timedelta(minutes=5)).isoformat()
    end = (now() + dt.timedelta(minutes=5)).isoformat()
    cp = aws("cloudwatch", "get-metric-statistics", "--namespace", "Cli", "--metric-name", "Jobs", "--start-time", start,
             "--end-time", end, "--period", "600", "--statistics", "Sum")
    assert cp.returncode == 0, cp.err
    out = json.loads(cp.out)
    assert [(p["Sum"], p["Unit"]) for p in out["Datapoints"]] == [(7.0, "Count")]


def test_calls_are_authorized(server, tmp_path):
    """CloudWatch's metric calls act on `*`, with `cloudwatch:namespace` to condition on."""
    iam = server.client("iam")
    user = unique("metrics-writer")
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="put-app", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*",
        "Condition": {"StringEquals": {"cloudwatch:namespace": "App"}}}]}))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    session = boto3.Session(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"], region_name=REGION)
    cw = session.client("cloudwatch", endpoint_url=server.endpoint, config=Config(retries={"max_attempts": 1}))
    cw.put_metric_data(Namespace="App", MetricData=[{"MetricName": "M", "Value": 1.0}])
    for call in (lambda: cw.put_metric_data(Namespace="Other", MetricData=[{"MetricName": "M", "Value": 1.0}]),
                 lambda: cw.list_metrics()):
        with pytest.raises(ClientError) as e:
            call()
        assert e.value.response["Error"]["Code"] == "AccessDenied", e.value.response
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_alarms_evaluate_and_notify_their_topics(server_factory, tmp_path):
    """An alarm goes from INSUFFICIENT_DATA to ALARM when its metric crosses the threshold
    and tells its SNS action in AWS's notification format; SetAlarmState moves it and tells
    the OK action; alarms survive a restart; errors as AWS answers them."""
    from helpers import sns_may_send

    s = server_factory(args=["--alarm-interval-ms", "300"])
    sns, sqs = s.sns_client(), s.sqs_client()
    topic = sns.create_topic(Name=unique("alarms"))["TopicArn"]
    queue = sqs.create_queue(QueueName=unique("alarm-inbox"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"Policy": sns_may_send(queue_arn, topic)})
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})

    cw = cloudwatch(s.endpoint, None, tmp_path)
    ns, name = unique("Shop"), unique("errors-high")
    dims = [{"Name": "Service", "Value": "cart"}]
    cw.put_metric_alarm(AlarmName=name, AlarmDescription="too many errors", Namespace=ns, MetricName="Errors", Dimensions=dims,
                        Statistic="Sum", Period=60, EvaluationPeriods=3, DatapointsToAlarm=1, Threshold=5.0,
                        ComparisonOperator="GreaterThanThreshold", AlarmActions=[topic], OKActions=[topic])
    a = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
    assert (a["StateValue"], a["StateReason"], a["Threshold"], a["AlarmActions"]) == (
        "INSUFFICIENT_DATA", "Unchecked: Initial alarm creation", 5.0, [topic])
    assert a["AlarmArn"] == f"arn:aws:cloudwatch:{REGION}:000000000000:alarm:{name}"

    last_minute = now().replace(second=0, microsecond=0) - dt.timedelta(minutes=1)
    cw.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "Errors", "Dimensions": dims, "Value": 10.0,
                                                  "Timestamp": last_minute + dt.timedelta(seconds=1), "Unit": "Count"}])

    def next_notification(timeout: float = 10.0) -> dict:
        deadline = dt.datetime.now() + dt.timedelta(seconds=timeout)
        while dt.datetime.now() < deadline:
            got = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages", [])
            if got:
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=got[0]["ReceiptHandle"])
                return json.loads(got[0]["Body"])
        raise AssertionError("no alarm notification")

    alarm = next_notification()
    assert (alarm["AlarmName"], alarm["OldStateValue"], alarm["NewStateValue"]) == (name, "INSUFFICIENT_DATA", "ALARM")
    assert alarm["NewStateReason"].startswith("Threshold Crossed: 1 datapoint [10.0 (")
    assert alarm["NewStateReason"].endswith(")] was greater than the threshold (5.0).")
    assert alarm["Trigger"]["Statistic"] == "SUM" and alarm["Trigger"]["Dimensions"] == [{"value": "cart", "name": "Service"}]
    assert alarm["AlarmDescription"] == "too many errors" and alarm["Region"] == "US East (N. Virginia)"
    assert cw.describe_alarms(StateValue="ALARM")["MetricAlarms"][0]["AlarmName"] == name

    cw.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="fixed by hand")
    ok = next_notification()
    assert (ok["OldStateValue"], ok["NewStateValue"], ok["NewStateReason"]) == ("ALARM", "OK", "fixed by hand")

    with pytest.raises(ClientError) as e:
        cw.set_alarm_state(AlarmName="nope", StateValue="OK", StateReason="x")
    assert (e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]) == ("ResourceNotFound", 404)
    with pytest.raises(ClientError) as e:
        cw.set_alarm_state(AlarmName=name, StateValue="INVALID", StateReason="x")
    assert e.value.response["Error"]["Code"] == "ValidationError"
    assert e.value.response["Error"]["Message"] == ("1 validation error detected: Value 'INVALID' at 'stateValue' failed to satisfy "
                                                    "constraint: Member must satisfy enum value set: [INSUFFICIENT_DATA, ALARM, OK]")

    s.restart()
    cw = cloudwatch(s.endpoint, None, tmp_path)
    assert [a["AlarmName"] for a in cw.describe_alarms(AlarmNamePrefix=name[:8])["MetricAlarms"]] == [name]

    # The alarm's history, newest first, kept across the restart (the evaluator may have put
    # it back in ALARM since: its data still breaches).
    items = cw.describe_alarm_history(AlarmName=name)["AlarmHistoryItems"]
    oldest = list(reversed(items))[:5]
    assert [(i["HistoryItemType"], i["HistorySummary"]) for i in oldest] == [
        ("ConfigurationUpdate", f'Alarm "{name}" created'),
        ("StateUpdate", "Alarm updated from INSUFFICIENT_DATA to ALARM"),
        ("Action", f"Successfully executed action {topic}"),
        ("StateUpdate", "Alarm updated from ALARM to OK"),
        ("Action", f"Successfully executed action {topic}"),
    ], [i["HistorySummary"] for i in items]
    assert all(i["AlarmName"] == name and i["AlarmType"] == "MetricAlarm" for i in items)
    assert [i["Timestamp"] for i in items] == sorted((i["Timestamp"] for i in items), reverse=True)
    state = json.loads(oldest[3]["HistoryData"])
    assert state["oldState"]["stateValue"] == "ALARM" and state["newState"] == {"stateValue": "OK", "stateReason": "fixed by hand"}
    assert json.loads(oldest[0]["HistoryData"])["type"] == "Create"
    only_states = cw.describe_alarm_history(AlarmName=name, HistoryItemType="StateUpdate", ScanBy="TimestampAscending")
    assert [i["HistorySummary"] for i in only_states["AlarmHistoryItems"]][:2] == [
        "Alarm updated from INSUFFICIENT_DATA to ALARM", "Alarm updated from ALARM to OK"]
    page = cw.describe_alarm_history(AlarmName=name, MaxRecords=2, ScanBy="TimestampAscending")
    assert len(page["AlarmHistoryItems"]) == 2 and page["NextToken"]
    rest = cw.describe_alarm_history(AlarmName=name, MaxRecords=2, NextToken=page["NextToken"], ScanBy="TimestampAscending")
    assert [i["HistorySummary"] for i in rest["AlarmHistoryItems"]] == [i["HistorySummary"] for i in oldest[2:4]]
    assert cw.describe_alarm_history(AlarmName=name, AlarmTypes=["CompositeAlarm"])["AlarmHistoryItems"] == []

    cw.delete_alarms(AlarmNames=[name])
    assert cw.describe_alarms(AlarmNames=[name])["MetricAlarms"] == []
    assert cw.describe_alarm_history(AlarmName=name)["AlarmHistoryItems"][0]["HistorySummary"] == f'Alarm "{name}" deleted'


def test_composite_alarms(server_factory, tmp_path):
    from helpers import sns_may_send

    s = server_factory(args=["--alarm-interval-ms", "300"])
    sns, sqs = s.sns_client(), s.sqs_client()
    topic = sns.create_topic(Name=unique("composite"))["TopicArn"]
    queue = sqs.create_queue(QueueName=unique("composite-inbox"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"Policy": sns_may_send(queue_arn, topic)})
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    cw = cloudwatch(s.endpoint, None, tmp_path)
    ns = unique("Svc")
    for name in ("cpu", "mem"):
        cw.put_metric_alarm(AlarmName=name, Namespace=ns, MetricName=name, Statistic="Average", Period=60, EvaluationPeriods=1,
                            Threshold=90.0, ComparisonOperator="GreaterThanThreshold", TreatMissingData="ignore")
    rule = 'ALARM(cpu) AND (ALARM("mem") OR NOT OK(mem))'
    cw.put_composite_alarm(AlarmName="service-down", AlarmRule=rule, AlarmActions=[topic], AlarmDescription="both")

    def composite():
        got = cw.describe_alarms(AlarmNames=["service-down"], AlarmTypes=["CompositeAlarm"])["CompositeAlarms"]
        return got[0] if got else None

    # Children start INSUFFICIENT_DATA: NOT OK(mem) holds, ALARM(cpu) does not.
    c = composite()
    assert (c["AlarmRule"], c["StateValue"], c["AlarmDescription"]) == (rule, "OK", "both")
    assert c["AlarmArn"] == f"arn:aws:cloudwatch:{REGION}:000000000000:alarm:service-down"
    # Without AlarmTypes, DescribeAlarms lists metric alarms only, as AWS does.
    assert cw.describe_alarms(AlarmNames=["service-down"]) ["MetricAlarms"] == []
    assert cw.describe_alarms(AlarmNames=["service-down"])["CompositeAlarms"] == []

    cw.set_alarm_state(AlarmName="cpu", StateValue="ALARM", StateReason="hot")
    c = composite()
    assert c["StateValue"] == "ALARM", c
    assert c["StateReason"].startswith(f"arn:aws:cloudwatch:{REGION}:000000000000:alarm:cpu transitioned to ALARM at "), c
    deadline = dt.datetime.now() + dt.timedelta(seconds=10)
    body = None
    while body is None and dt.datetime.now() < deadline:
        got = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages", [])
        body = json.loads(got[0]["Body"]) if got else None
    assert body and (body["AlarmName"], body["OldStateValue"], body["NewStateValue"], body["AlarmRule"]) == (
        "service-down", "OK", "ALARM", rule), body

    cw.set_alarm_state(AlarmName="mem", StateValue="OK", StateReason="fine")
    assert composite()["StateValue"] == "OK"
    history = cw.describe_alarm_history(AlarmName="service-down", HistoryItemType="StateUpdate")["AlarmHistoryItems"]
    assert [h["HistorySummary"] for h in history][:2] == ["Alarm updated from ALARM to OK", "Alarm updated from OK to ALARM"]
    assert history[0]["AlarmType"] == "CompositeAlarm"

    both = cw.describe_alarms(AlarmTypes=["MetricAlarm", "CompositeAlarm"])
    assert {a["AlarmName"] for a in both["MetricAlarms"]} == {"cpu", "mem"}
    assert [a["AlarmName"] for a in both["CompositeAlarms"]] == ["service-down"]

    for bad_rule, part in [("ALARM(nope)", "alarms [nope] in the alarm rule do not exist"),
                           ("ALARM(cpu) AND", "Error in alarm rule"),
                           ("ALARM(self)", "alarms [self] in the alarm rule do not exist")]:
        with pytest.raises(ClientError) as e:
            cw.put_composite_alarm(AlarmName="self", AlarmRule=bad_rule)
        assert e.value.response["Error"]["Code"] == "ValidationError" and part in e.value.response["Error"]["Message"], bad_rule

    s.restart()
    cw = cloudwatch(s.endpoint, None, tmp_path)
    assert composite()["AlarmRule"] == rule
    cw.delete_alarms(AlarmNames=["service-down"])
    assert composite() is None


def test_emf_events_put_to_cloudwatch_logs_become_metrics(server, tmp_path):
    """PutLogEvents of EMF lines (as the CloudWatch agent and EMF libraries send them)."""
    logs = server.logs_client()
    group, ns = unique("/app/emf"), unique("Agent")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    t = int(now().timestamp() * 1000)
    line = json.dumps({"_aws": {"Timestamp": t, "CloudWatchMetrics": [{"Namespace": ns, "Dimensions": [[]],
                                                                      "Metrics": [{"Name": "Queued", "Unit": "Count"}]}]}, "Queued": 4})
    logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=[{"timestamp": t, "message": line}])
    cw = cloudwatch(server.endpoint, None, tmp_path)
    pts = cw.get_metric_statistics(Namespace=ns, MetricName="Queued", StartTime=now() - dt.timedelta(minutes=2),
                                   EndTime=now() + dt.timedelta(minutes=1), Period=300, Statistics=["Sum"])["Datapoints"]
    assert [(p["Sum"], p["Unit"]) for p in pts] == [(4.0, "Count")]
    logs.delete_log_group(logGroupName=group)

"""EventBridge (CloudWatch Events): rules, targets and events through boto3's `events` client
and the aws CLI; events and schedules reaching Lambda functions, checked in the functions'
CloudWatch logs."""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.parse

import pytest
from botocore.exceptions import ClientError

from helpers import admin_signed, aws_cli_runner, ACCOUNT, REGION, client_error, create_function, make_zip, unique, wait_for

RECORDER = {"index.js": "exports.handler = async (e) => { console.log('RECORD ' + JSON.stringify(e)); return 'ok'; };"}
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def rule_arn(name: str, bus: str = "default") -> str:
    path = name if bus == "default" else f"{bus}/{name}"
    return f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{path}"


def records(logs, name: str) -> list:
    """Every event the RECORDER function `name` logged, oldest first."""
    try:
        resp = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}", filterPattern='"RECORD "')
    except ClientError:
        return []
    return [json.loads(e["message"].split("RECORD ", 1)[1]) for e in resp["events"] if "RECORD " in e["message"]]


def expect(fn, code: str, status: int = 400) -> str:
    with pytest.raises(ClientError) as e:
        fn()
    got = client_error(e)
    assert got[:2] == (code, status), got
    return got[2]


@pytest.fixture(scope="module")
def events(server):
    return server.events_client()


@pytest.fixture(scope="module")
def events_raw(server):
    """No client-side parameter validation: lets invalid requests reach the server."""
    return server.events_client(validate=False)


@pytest.fixture
def rules(events):
    """rules(name=None, **PutRule kwargs) -> name; targets removed and rules deleted after."""
    made: list[tuple[str, str]] = []

    def make(name: str | None = None, **kwargs) -> str:
        name = name or unique("rule")
        events.put_rule(Name=name, **kwargs)
        made.append((name, kwargs.get("EventBusName", "default")))
        return name

    yield make
    for name, bus in reversed(made):
        try:
            ids = [t["Id"] for t in events.list_targets_by_rule(Rule=name, EventBusName=bus)["Targets"]]
            if ids:
                events.remove_targets(Rule=name, EventBusName=bus, Ids=ids)
            events.delete_rule(Name=name, EventBusName=bus)
        except ClientError:
            pass


@pytest.fixture
def recorder(make_fn):
    """recorder() -> a new function that logs every event it gets, and that EventBridge may
    invoke (its policy allows `events.amazonaws.com`, which AWS requires of rule targets)."""

    def make():
        fn = make_fn("nodejs20.x", RECORDER, "index.handler", prefix="evt")
        fn.client.add_permission(FunctionName=fn.name, StatementId="events", Action="lambda:InvokeFunction",
                                 Principal="events.amazonaws.com")
        return fn

    return make


def test_rules_crud_and_errors(events, events_raw, rules):
    pattern = json.dumps({"source": ["app.orders"], "detail-type": ["Order Placed"]})
    name = rules(EventPattern=pattern, Description="orders", State="ENABLED")
    arn = events.put_rule(Name=name, EventPattern=pattern, Description="orders")["RuleArn"]
    assert arn == rule_arn(name)
    d = events.describe_rule(Name=name)
    assert d["Name"] == name and d["Arn"] == arn and d["EventPattern"] == pattern
    assert d["State"] == "ENABLED" and d["Description"] == "orders" and d["EventBusName"] == "default"
    assert d["CreatedBy"] == ACCOUNT and "ScheduleExpression" not in d

    prefix = unique("p")
    made = [rules(f"{prefix}-{i}", ScheduleExpression=expr)
            for i, expr in enumerate(["rate(1 minute)", "rate(5 minutes)", "rate(1 hour)", "rate(2 days)", "cron(0 12 * * ? *)",
                                      "cron(15 10 ? * 6L 2002-2005)", "cron(0/15 * * * ? *)", "cron(0 8 1 * ? *)"])]
    page = events.list_rules(NamePrefix=prefix, Limit=3)
    assert [r["Name"] for r in page["Rules"]] == made[:3]
    assert page["Rules"][0]["ScheduleExpression"] == "rate(1 minute)" and page["Rules"][0]["State"] == "ENABLED"
    seen = [r["Name"] for r in page["Rules"]]
    while "NextToken" in page:
        page = events.list_rules(NamePrefix=prefix, Limit=3, NextToken=page["NextToken"])
        seen += [r["Name"] for r in page["Rules"]]
    assert seen == made
    assert [r["Name"] for r in events.get_paginator("list_rules").paginate(NamePrefix=prefix).build_full_result()["Rules"]] == made

    events.disable_rule(Name=name)
    assert events.describe_rule(Name=name)["State"] == "DISABLED"
    events.enable_rule(Name=name)
    assert events.describe_rule(Name=name)["State"] == "ENABLED"
    # PutRule replaces the rule: the description is gone when not given.
    events.put_rule(Name=name, EventPattern=pattern)
    assert "Description" not in events.describe_rule(Name=name)

    missing = unique("missing")
    msg = expect(lambda: events.describe_rule(Name=missing), "ResourceNotFoundException")
    assert msg == f"Rule {missing} does not exist on EventBus default."
    expect(lambda: events.enable_rule(Name=missing), "ResourceNotFoundException")
    expect(lambda: events.list_targets_by_rule(Rule=missing), "ResourceNotFoundException")
    events.delete_rule(Name=missing)  # deleting what is not there succeeds, as in AWS
    for bad in ["rate(1 minutes)", "rate(5 minute)", "rate(0 minutes)", "cron(0 12 * * * *)", "cron(0 12 * * ?)", "every minute"]:
        msg = expect(lambda: events.put_rule(Name=unique("bad"), ScheduleExpression=bad), "ValidationException")
        assert msg == "Parameter ScheduleExpression is not valid.", bad
    msg = expect(lambda: events.put_rule(Name=unique("bad"), EventPattern='{"source": "app"}'), "InvalidEventPatternException")
    assert msg.startswith("Event pattern is not valid. Reason: ")
    expect(lambda: events.put_rule(Name=unique("bad"), EventPattern="not json"), "InvalidEventPatternException")
    msg = expect(lambda: events.put_rule(Name=unique("bad")), "ValidationException")
    assert msg == "Parameter(s) EventPattern or ScheduleExpression must be specified."
    expect(lambda: events_raw.put_rule(Name="bad name", ScheduleExpression="rate(1 hour)"), "ValidationException")
    expect(lambda: events_raw.put_rule(Name=unique("bad"), ScheduleExpression="rate(1 hour)", State="ON"), "ValidationException")
    expect(lambda: events_raw.list_rules(Limit=101), "ValidationException")
    expect(lambda: events.put_rule(Name=unique("bad"), EventPattern='{"source": ["a"]}', EventBusName=unique("nobus")),
           "ResourceNotFoundException")


def test_targets(events, rules):
    name = rules(EventPattern=json.dumps({"source": ["app"]}))
    fn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{unique('t')}"
    queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{unique('q')}"
    r = events.put_targets(Rule=name, Targets=[
        {"Id": "fn", "Arn": fn},
        {"Id": "queue", "Arn": queue, "SqsParameters": {"MessageGroupId": "g"}},
        {"Id": "tr", "Arn": fn, "InputTransformer": {"InputPathsMap": {"s": "$.source"}, "InputTemplate": '{"s": <s>}'}},
    ])
    assert r["FailedEntryCount"] == 0 and r["FailedEntries"] == []
    events.put_targets(Rule=name, Targets=[{"Id": "fn", "Arn": fn, "Input": '{"fixed": 1}'}])
    targets = events.list_targets_by_rule(Rule=name)["Targets"]
    assert targets == [
        {"Id": "fn", "Arn": fn, "Input": '{"fixed": 1}'},
        {"Id": "queue", "Arn": queue, "SqsParameters": {"MessageGroupId": "g"}},
        {"Id": "tr", "Arn": fn, "InputTransformer": {"InputPathsMap": {"s": "$.source"}, "InputTemplate": '{"s": <s>}'}},
    ]
    page = events.list_targets_by_rule(Rule=name, Limit=2)
    assert [t["Id"] for t in page["Targets"]] == ["fn", "queue"]
    assert [t["Id"] for t in events.list_targets_by_rule(Rule=name, NextToken=page["NextToken"])["Targets"]] == ["tr"]
    assert events.list_rule_names_by_target(TargetArn=fn)["RuleNames"] == [name]
    assert events.list_rule_names_by_target(TargetArn=queue)["RuleNames"] == [name]

    msg = expect(lambda: events.delete_rule(Name=name), "ValidationException")
    assert msg == "Rule can't be deleted since it has targets."
    more = [{"Id": f"x{i}", "Arn": fn} for i in range(3)]
    expect(lambda: events.put_targets(Rule=name, Targets=more), "LimitExceededException")
    expect(lambda: events.put_targets(Rule=name, Targets=[{"Id": "bad", "Arn": fn, "Input": "not json"}]), "ValidationException")
    expect(lambda: events.put_targets(Rule=name, Targets=[{"Id": "bad", "Arn": fn, "Input": "{}", "InputPath": "$.detail"}]),
           "ValidationException")
    expect(lambda: events.put_targets(Rule=name, Targets=[{"Id": "bad", "Arn": fn, "InputPath": "detail"}]), "ValidationException")
    expect(lambda: events.put_targets(Rule=unique("missing"), Targets=[{"Id": "a", "Arn": fn}]), "ResourceNotFoundException")

    r = events.remove_targets(Rule=name, Ids=["queue", "tr"])
    assert r["FailedEntryCount"] == 0
    assert [t["Id"] for t in events.list_targets_by_rule(Rule=name)["Targets"]] == ["fn"]
    assert events.list_rule_names_by_target(TargetArn=queue)["RuleNames"] == []
    events.remove_targets(Rule=name, Ids=["fn"])
    events.delete_rule(Name=name)
    expect(lambda: events.describe_rule(Name=name), "ResourceNotFoundException")


def test_put_events_reaches_a_function_in_aws_envelope(events, logs, rules, recorder):
    fn = recorder()
    name = rules(EventPattern=json.dumps({"source": ["app.orders"], "detail": {"total": [{"numeric": [">", 100]}]}}))
    events.put_targets(Rule=name, Targets=[{"Id": "fn", "Arn": fn.arn}])
    before = time.time()
    r = events.put_events(Entries=[
        {"Source": "app.orders", "DetailType": "Order Placed", "Detail": json.dumps({"total": 150, "id": "o-1"}),
         "Resources": ["arn:aws:shop:::order/o-1"]},
        {"Source": "app.orders", "DetailType": "Order Placed", "Detail": json.dumps({"total": 5, "id": "o-2"})},
        {"Source": "app.orders", "DetailType": "Order Placed", "Detail": "not json"},
        {"Source": "aws.ec2", "DetailType": "Order Placed", "Detail": "{}"},
    ])
    assert r["FailedEntryCount"] == 2
    ok, small, bad, reserved = r["Entries"]
    assert UUID_RE.match(ok["EventId"]) and UUID_RE.match(small["EventId"])
    assert bad == {"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."}
    assert reserved["ErrorCode"] == "NotAuthorizedForSourceException"
    got = wait_for(lambda: records(logs, fn.name), timeout=20, what="the event to reach the function")
    time.sleep(1.0)
    got = records(logs, fn.name)
    assert len(got) == 1, got
    e = got[0]
    assert list(e) == ["version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"]
    assert e["version"] == "0" and e["id"] == ok["EventId"]
    assert e["detail-type"] == "Order Placed" and e["source"] == "app.orders"
    assert e["account"] == ACCOUNT and e["region"] == REGION
    assert e["resources"] == ["arn:aws:shop:::order/o-1"]
    assert e["detail"] == {"total": 150, "id": "o-1"}
    assert TIME_RE.match(e["time"]), e["time"]
    sent = time.mktime(time.strptime(e["time"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert before - 2 <= sent <= time.time() + 2

    msg = expect(lambda: events.put_events(Entries=[{"Source": "a", "DetailType": "b", "Detail": "{}"}] * 11), "ValidationException")
    assert "10" in msg


def test_input_and_input_path(events, logs, rules, recorder):
    constant, path, whole = recorder(), recorder(), recorder()
    name = rules(EventPattern=json.dumps({"source": ["app.shapes"]}))
    events.put_targets(Rule=name, Targets=[
        {"Id": "constant", "Arn": constant.arn, "Input": json.dumps({"fixed": True})},
        {"Id": "path", "Arn": path.arn, "InputPath": "$.detail.shape"},
        {"Id": "whole", "Arn": whole.arn},
    ])
    detail = {"shape": {"kind": "square", "sides": 4}}
    r = events.put_events(Entries=[{"Source": "app.shapes", "DetailType": "Shape", "Detail": json.dumps(detail)}])
    assert r["FailedEntryCount"] == 0
    assert wait_for(lambda: records(logs, constant.name), timeout=20, what="Input") == [{"fixed": True}]
    assert wait_for(lambda: records(logs, path.name), timeout=20, what="InputPath") == [{"kind": "square", "sides": 4}]
    assert wait_for(lambda: records(logs, whole.name), timeout=20, what="the whole event")[0]["detail"] == detail


def test_input_transformer_output(events, logs, rules, recorder):
    fn = recorder()
    name = rules(EventPattern=json.dumps({"source": ["app.transform"]}))
    events.put_targets(Rule=name, Targets=[{"Id": "t", "Arn": fn.arn, "InputTransformer": {
        "InputPathsMap": {"kind": "$.detail.shape.kind", "sides": "$.detail.shape.sides", "src": "$.source", "gone": "$.detail.none"},
        "InputTemplate": '{"kind": <kind>, "sides": <sides>, "text": "a <kind> from <src>", "rule": <aws.events.rule-name>, '
                         '"arn": <aws.events.rule-arn>, "gone": <gone>}',
    }}])
    events.put_events(Entries=[{"Source": "app.transform", "DetailType": "Shape", "Detail": json.dumps({"shape": {"kind": "square", "sides": 4}})}])
    got = wait_for(lambda: records(logs, fn.name), timeout=20, what="the transformed input")
    assert got == [{"kind": "square", "sides": 4, "text": "a square from app.transform", "rule": name, "arn": rule_arn(name), "gone": None}]


def test_pattern_matching_and_disabled_rules(events, logs, rules, recorder):
    matched, disabled = recorder(), recorder()
    tag = unique("m")
    on = rules(EventPattern=json.dumps({
        "source": [{"prefix": "app."}],
        "detail": {
            "tag": [tag],
            "state": [{"anything-but": ["deleted", "archived"]}],
            "size": [{"numeric": [">=", 10, "<", 20]}],
            "owner": [{"exists": True}],
            "region": [{"equals-ignore-case": "EU-West-1"}],
            "file": [{"wildcard": "*.png"}],
            "$or": [{"tier": ["gold"]}, {"vip": [True]}],
        },
    }))
    events.put_targets(Rule=on, Targets=[{"Id": "fn", "Arn": matched.arn}])
    off = rules(EventPattern=json.dumps({"detail": {"tag": [tag]}}), State="DISABLED")
    events.put_targets(Rule=off, Targets=[{"Id": "fn", "Arn": disabled.arn}])

    good = {"tag": tag, "state": "active", "size": 12, "owner": "ann", "region": "eu-west-1", "file": "a/b.png", "tier": "gold"}
    variants = {
        "good": good,
        "vip": {**good, "tier": "silver", "vip": True},
        "deleted": {**good, "state": "deleted"},
        "too-big": {**good, "size": 20},
        "size-as-string": {**good, "size": "12"},
        "no-owner": {k: v for k, v in good.items() if k != "owner"},
        "other-region": {**good, "region": "us-east-1"},
        "jpg": {**good, "file": "a/b.jpg"},
        "no-tier": {**good, "tier": "silver"},
    }
    entries = [{"Source": "app.test", "DetailType": n, "Detail": json.dumps(d)} for n, d in variants.items()]
    entries.append({"Source": "other.test", "DetailType": "wrong-source", "Detail": json.dumps(good)})
    for i in range(0, len(entries), 10):
        assert events.put_events(Entries=entries[i:i + 10])["FailedEntryCount"] == 0
    wait_for(lambda: len(records(logs, matched.name)) >= 2, timeout=20, what="the matching events")
    time.sleep(1.5)
    assert sorted(e["detail-type"] for e in records(logs, matched.name)) == ["good", "vip"]
    assert records(logs, disabled.name) == []

    # TestEventPattern agrees with delivery.
    pattern = events.describe_rule(Name=on)["EventPattern"]
    envelope = {"id": "1", "account": ACCOUNT, "source": "app.test", "time": "2024-01-01T00:00:00Z", "region": REGION,
                "resources": [], "detail-type": "x"}
    for n, d in variants.items():
        result = events.test_event_pattern(EventPattern=pattern, Event=json.dumps({**envelope, "detail": d}))["Result"]
        assert result is (n in ("good", "vip")), n
    expect(lambda: events.test_event_pattern(EventPattern='{"source": "x"}', Event=json.dumps({**envelope, "detail": {}})),
           "InvalidEventPatternException")
    expect(lambda: events.test_event_pattern(EventPattern='{"source": ["x"]}', Event='{"detail": {}}'), "ValidationException")

    # Enabling the disabled rule makes it deliver.
    events.enable_rule(Name=off)
    events.put_events(Entries=[{"Source": "any", "DetailType": "now-on", "Detail": json.dumps({"tag": tag})}])
    got = wait_for(lambda: records(logs, disabled.name), timeout=20, what="the enabled rule to deliver")
    assert [e["detail-type"] for e in got] == ["now-on"]


def test_custom_event_bus(events, logs, rules, recorder):
    fn = recorder()
    bus = unique("bus")
    arn = events.create_event_bus(Name=bus)["EventBusArn"]
    assert arn == f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{bus}"
    try:
        expect(lambda: events.create_event_bus(Name=bus), "ResourceAlreadyExistsException")
        assert bus in [b["Name"] for b in events.list_event_buses(NamePrefix=bus)["EventBuses"]]
        assert events.describe_event_bus(Name=bus)["Arn"] == arn
        msg = expect(lambda: events.put_rule(Name=unique("s"), ScheduleExpression="rate(1 hour)", EventBusName=bus), "ValidationException")
        assert msg == "ScheduleExpression is supported only on the default event bus."
        name = rules(EventPattern=json.dumps({"source": ["app.bus"]}), EventBusName=bus)
        assert events.describe_rule(Name=name, EventBusName=arn)["Arn"] == rule_arn(name, bus)
        events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "fn", "Arn": fn.arn}])
        events.put_events(Entries=[
            {"Source": "app.bus", "DetailType": "default-bus", "Detail": "{}"},
            {"Source": "app.bus", "DetailType": "custom-bus", "Detail": "{}", "EventBusName": bus},
        ])
        wait_for(lambda: records(logs, fn.name), timeout=20, what="the custom bus's event")
        time.sleep(1.0)
        assert [e["detail-type"] for e in records(logs, fn.name)] == ["custom-bus"]
        expect(lambda: events.delete_event_bus(Name="default"), "ValidationException")
    finally:
        for r in events.list_rules(EventBusName=bus)["Rules"]:
            ids = [t["Id"] for t in events.list_targets_by_rule(Rule=r["Name"], EventBusName=bus)["Targets"]]
            if ids:
                events.remove_targets(Rule=r["Name"], EventBusName=bus, Ids=ids)
            events.delete_rule(Name=r["Name"], EventBusName=bus)
        events.delete_event_bus(Name=bus)
    assert bus not in [b["Name"] for b in events.list_event_buses()["EventBuses"]]


def test_wire_format(server):
    """JSON 1.1 errors as EventBridge sends them: `__type` and `message`, HTTP 400."""
    u = urllib.parse.urlsplit(server.endpoint)

    def post(target: str, body: dict) -> tuple[int, dict, dict]:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        try:
            data = json.dumps(body).encode()
            conn.request("POST", "/", body=data, headers=admin_signed(server.endpoint, "events", "POST", "/", {
                "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"AWSEvents.{target}"}, data))
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, json.loads(r.read() or b"{}")
        finally:
            conn.close()

    status, headers, body = post("DescribeRule", {"Name": "no-such-rule"})
    assert status == 400
    assert headers["content-type"] == "application/x-amz-json-1.1"
    assert headers.get("x-amzn-requestid")
    assert body == {"__type": "ResourceNotFoundException", "message": "Rule no-such-rule does not exist on EventBus default."}
    status, _, body = post("DescribeRule", {})
    assert status == 400 and body["__type"] == "ValidationException"
    status, _, body = post("NoSuchOperation", {})
    assert status == 400 and body["__type"] == "UnknownOperationException"
    status, _, body = post("ListEventBuses", {})
    assert status == 200 and body["EventBuses"][0]["Name"] == "default"


def test_aws_cli(aws_cli, server, tmp_path):
    cli = aws_cli_runner(aws_cli, server.endpoint, tmp_path / "home")

    def aws(*args):
        cp = cli("events", *args)
        return cp.returncode, cp.out, cp.err

    name = unique("cli")
    fn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{unique('f')}"
    rc, out, err = aws("put-rule", "--name", name, "--schedule-expression", "rate(5 minutes)", "--state", "DISABLED")
    assert rc == 0, err
    assert json.loads(out)["RuleArn"] == rule_arn(name)
    try:
        rc, out, err = aws("list-rules", "--name-prefix", name)
        assert rc == 0, err
        assert [(r["Name"], r["State"], r["ScheduleExpression"]) for r in json.loads(out)["Rules"]] == [(name, "DISABLED", "rate(5 minutes)")]
        rc, out, err = aws("put-targets", "--rule", name, "--targets", f"Id=1,Arn={fn}")
        assert rc == 0 and json.loads(out)["FailedEntryCount"] == 0, err
        rc, out, err = aws("list-targets-by-rule", "--rule", name)
        assert rc == 0 and json.loads(out)["Targets"] == [{"Id": "1", "Arn": fn}], err
        rc, out, err = aws("delete-rule", "--name", name)
        assert rc != 0 and "Rule can't be deleted since it has targets." in err, err
        rc, out, err = aws("put-rule", "--name", name, "--schedule-expression", "rate(5 minute)")
        assert rc != 0 and "Parameter ScheduleExpression is not valid." in err, err
        rc, out, err = aws("test-event-pattern", "--event-pattern", '{"source": ["a"]}', "--event", json.dumps(
            {"id": "1", "account": ACCOUNT, "source": "a", "time": "2024-01-01T00:00:00Z", "region": REGION, "resources": [],
             "detail-type": "x", "detail": {}}))
        assert rc == 0 and json.loads(out) == {"Result": True}, err
    finally:
        aws("remove-targets", "--rule", name, "--ids", "1")
        rc, _, err = aws("delete-rule", "--name", name)
        assert rc == 0, err


def test_schedule_fires_every_minute_once(server_factory):
    """A `cron(* * * * ? *)` rule really fires (within about a minute) with AWS's scheduled
    event, and a restart in the same minute does not fire that minute again."""
    s = server_factory()
    lam, logs, events = s.lambda_client(), s.logs_client(), s.events_client()
    create_function(lam, "ticker", "nodejs20.x", "index.handler", make_zip(RECORDER))
    arn = events.put_rule(Name="every-minute", ScheduleExpression="cron(* * * * ? *)")["RuleArn"]
    lam.add_permission(FunctionName="ticker", StatementId="events", Action="lambda:InvokeFunction",
                       Principal="events.amazonaws.com", SourceArn=arn)
    events.put_targets(Rule="every-minute", Targets=[{"Id": "fn", "Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ticker"}])
    got = wait_for(lambda: records(logs, "ticker"), timeout=75, interval=0.5, what="the scheduled event")
    e = got[0]
    assert e["detail-type"] == "Scheduled Event" and e["source"] == "aws.events"
    assert e["resources"] == [arn] and e["detail"] == {}
    assert e["account"] == ACCOUNT and e["region"] == REGION and UUID_RE.match(e["id"])
    assert re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:00Z$", e["time"]), e["time"]

    # A restart (SIGTERM) right after the fire: the rule, its target and its place in the
    # schedule are kept, so that minute is not fired again.
    s.restart()
    events, logs = s.events_client(), s.logs_client()
    assert events.describe_rule(Name="every-minute")["ScheduleExpression"] == "cron(* * * * ? *)"
    assert [t["Id"] for t in events.list_targets_by_rule(Rule="every-minute")["Targets"]] == ["fn"]
    time.sleep(4)
    times = [r["time"] for r in records(logs, "ticker")]
    assert len(times) == len(set(times)), times
    assert times[0] == e["time"]


def test_a_rule_invokes_only_functions_whose_policy_allows_it(events, logs, rules, make_fn):
    fn = make_fn("nodejs20.x", RECORDER, "index.handler", prefix="evt")
    source = unique("app.guarded")
    name = rules(EventPattern=json.dumps({"source": [source]}))
    other = rules(EventPattern=json.dumps({"source": ["nothing"]}))
    events.put_targets(Rule=name, Targets=[{"Id": "fn", "Arn": fn.arn}])

    def send(kind):
        assert events.put_events(Entries=[{"Source": source, "DetailType": kind, "Detail": "{}"}])["FailedEntryCount"] == 0

    send("no-policy")
    # A statement for another rule does not let this one in.
    fn.client.add_permission(FunctionName=fn.name, StatementId="other", Action="lambda:InvokeFunction",
                             Principal="events.amazonaws.com", SourceArn=rule_arn(other))
    send("other-rule")
    time.sleep(2.5)
    assert records(logs, fn.name) == []
    fn.client.add_permission(FunctionName=fn.name, StatementId="this", Action="lambda:InvokeFunction",
                             Principal="events.amazonaws.com", SourceArn=rule_arn(name))
    send("allowed")
    got = wait_for(lambda: records(logs, fn.name), timeout=20, what="the allowed event")
    time.sleep(1.0)
    assert [e["detail-type"] for e in records(logs, fn.name)] == ["allowed"], got

"""The CloudWatch Logs API beyond Lambda's read-only view: groups and streams made and deleted,
PutLogEvents with AWS's batch rules, Describe* paging and order, retention policies (and the
sweep that applies them), tags, authorization, and a restart. Errors are checked exactly
against AWS's (LocalStack's AWS-validated snapshots, the Logs model and API reference)."""

from __future__ import annotations

import json
import re
import time

import pytest
from botocore.exceptions import ClientError

from helpers import ACCOUNT, REGION, aws_cli_runner, boto_client, client_error, unique

DAY = 86_400_000
HOUR = 3_600_000
RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653]


def now_ms() -> int:
    return int(time.time() * 1000)


def refused(call, **kwargs):
    """(code, status, message) of a refused call."""
    with pytest.raises(ClientError) as e:
        call(**kwargs)
    return client_error(e)


def invalid(message):
    return ("InvalidParameterException", 400, message)


def group_arn(name):
    return f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}"


@pytest.fixture(scope="module")
def logs(server):
    return server.logs_client()


@pytest.fixture
def group(logs):
    name = f"/app/{unique('g')}"
    logs.create_log_group(logGroupName=name)
    yield name
    try:
        logs.delete_log_group(logGroupName=name)
    except ClientError:
        pass


def messages(logs, group, stream):
    return [e["message"] for e in logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]]


def test_groups_and_streams_lifecycle(logs, group):
    desc = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert len(desc) == 1
    g = desc[0]
    assert abs(g.pop("creationTime") - now_ms()) < 60_000
    assert g == {
        "logGroupName": group,
        "metricFilterCount": 0,
        "arn": f"{group_arn(group)}:*",
        "logGroupArn": group_arn(group),
        "storedBytes": 0,
        "logGroupClass": "STANDARD",
        "deletionProtectionEnabled": False,
    }
    assert refused(logs.create_log_group, logGroupName=group) == (
        "ResourceAlreadyExistsException", 400, "The specified log group already exists")

    logs.create_log_stream(logGroupName=group, logStreamName="s1")
    assert refused(logs.create_log_stream, logGroupName=group, logStreamName="s1") == (
        "ResourceAlreadyExistsException", 400, "The specified log stream already exists")
    missing = f"{group}-missing"
    assert refused(logs.create_log_stream, logGroupName=missing, logStreamName="s1") == (
        "ResourceNotFoundException", 400, "The specified log group does not exist.")
    # A stream without events: AWS leaves the event fields out.
    streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert [sorted(s) for s in streams] == [["arn", "creationTime", "logStreamName", "storedBytes"]]
    assert streams[0]["arn"] == f"{group_arn(group)}:log-stream:s1"
    assert streams[0]["storedBytes"] == 0
    assert logs.get_log_events(logGroupName=group, logStreamName="s1")["events"] == []

    assert refused(logs.delete_log_stream, logGroupName=group, logStreamName="nope") == (
        "ResourceNotFoundException", 400, "The specified log stream does not exist.")
    assert refused(logs.delete_log_stream, logGroupName=missing, logStreamName="s1") == (
        "ResourceNotFoundException", 400, "The specified log group does not exist.")
    logs.delete_log_stream(logGroupName=group, logStreamName="s1")
    assert logs.describe_log_streams(logGroupName=group)["logStreams"] == []
    # The group stays without streams.
    assert [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]] == [group]

    logs.delete_log_group(logGroupName=group)
    assert refused(logs.delete_log_group, logGroupName=group) == (
        "ResourceNotFoundException", 400, "The specified log group does not exist.")
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"] == []
    assert refused(logs.describe_log_streams, logGroupName=group) == (
        "ResourceNotFoundException", 400, "The specified log group does not exist.")


def test_name_validation(server):
    # Without botocore's own checks, so the server's answers are seen.
    logs = boto_client("logs", server.endpoint, validate=False)
    cases = [
        ("a" * 513, invalid("Invalid LogGroup or LogStream, both must have length less than or equal to 512.")),
        ("has space", invalid("1 validation error detected: Value 'has space' at 'logGroupName' failed to satisfy "
                              "constraint: Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+")),
        ("", invalid("1 validation error detected: Value '' at 'logGroupName' failed to satisfy constraint: "
                     "Member must have length greater than or equal to 1")),
    ]
    for name, want in cases:
        assert refused(logs.create_log_group, logGroupName=name) == want, name
    group = f"/app/{unique('names')}"
    logs.create_log_group(logGroupName=group)
    assert refused(logs.create_log_stream, logGroupName=group, logStreamName="a:b") == invalid(
        "1 validation error detected: Value 'a:b' at 'logStreamName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [^:*]*")
    assert refused(logs.create_log_stream, logGroupName=group, logStreamName="s" * 513) == invalid(
        "Invalid LogGroup or LogStream, both must have length less than or equal to 512.")
    logs.create_log_group(logGroupName="a" * 512)
    logs.delete_log_group(logGroupName="a" * 512)
    logs.delete_log_group(logGroupName=group)


def test_put_log_events(logs, group):
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    t = now_ms()
    out = logs.put_log_events(logGroupName=group, logStreamName="s",
                              logEvents=[{"timestamp": t, "message": "hello"}, {"timestamp": t, "message": "world"}])
    assert set(out) - {"ResponseMetadata"} == {"nextSequenceToken"}
    assert out["nextSequenceToken"].isdigit() and len(out["nextSequenceToken"]) == 56
    # The sequence token is accepted and ignored (any value), as AWS does now.
    logs.put_log_events(logGroupName=group, logStreamName="s", sequenceToken="12345",
                        logEvents=[{"timestamp": t + 1, "message": "again"}])
    assert messages(logs, group, "s") == ["hello", "world", "again"]
    s = logs.describe_log_streams(logGroupName=group)["logStreams"][0]
    assert (s["firstEventTimestamp"], s["lastEventTimestamp"]) == (t, t + 1)
    assert abs(s["lastIngestionTime"] - now_ms()) < 60_000
    assert s["storedBytes"] == len("helloworldagain")
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["storedBytes"] == 15

    put = logs.put_log_events
    assert refused(put, logGroupName=group, logStreamName="s",
                   logEvents=[{"timestamp": t, "message": "b"}, {"timestamp": t - 1, "message": "a"}]) == invalid(
        "Log events in a single PutLogEvents request must be in chronological order.")
    assert refused(put, logGroupName=group, logStreamName="s",
                   logEvents=[{"timestamp": t - 25 * HOUR, "message": "a"}, {"timestamp": t, "message": "b"}]) == invalid(
        "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.")
    # 1,048,576 bytes counting 26 per event: the limit itself is accepted, a byte more is not.
    big = 1_048_576 - 26
    logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=[{"timestamp": t + 2, "message": "x" * big}])
    assert refused(put, logGroupName=group, logStreamName="s",
                   logEvents=[{"timestamp": t + 2, "message": "x" * (big - 26)}, {"timestamp": t + 2, "message": "y"}]) == invalid(
        "Upload too large: 1048577 bytes exceeds limit of 1048576")
    assert refused(put, logGroupName=group, logStreamName="nope", logEvents=[{"timestamp": t, "message": "a"}]) == (
        "ResourceNotFoundException", 400, "The specified log stream does not exist.")
    assert refused(put, logGroupName=f"{group}-x", logStreamName="s", logEvents=[{"timestamp": t, "message": "a"}]) == (
        "ResourceNotFoundException", 400, "The specified log group does not exist.")
    # Refused batches stored nothing: the stream holds the first three events and the big one.
    assert logs.describe_log_streams(logGroupName=group)["logStreams"][0]["storedBytes"] == 15 + big
    # A page holds at most 1 MB (counted as PutLogEvents counts): the big event has one of its own.
    first = logs.get_log_events(logGroupName=group, logStreamName="s", startFromHead=True)
    assert [e["message"] for e in first["events"]] == ["hello", "world", "again"]
    second = logs.get_log_events(logGroupName=group, logStreamName="s", nextToken=first["nextForwardToken"])
    assert [len(e["message"]) for e in second["events"]] == [big]


def test_put_log_events_rejects_events_by_time(logs, group):
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    t = now_ms()
    # (events as offsets from now, rejectedLogEventsInfo, messages stored)
    cases = [
        ([-30 * DAY], {"tooOldLogEventEndIndex": 1}, []),
        ([DAY], {"tooNewLogEventStartIndex": 0}, []),
        ([-14 * DAY - HOUR, -14 * DAY + 2 * HOUR, -14 * DAY + 3 * HOUR], {"tooOldLogEventEndIndex": 1}, ["1", "2"]),
        ([-HOUR, 0, 3 * HOUR], {"tooNewLogEventStartIndex": 2}, ["0", "1"]),
    ]
    for offsets, rejected, stored in cases:
        stream = unique("s")
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        out = logs.put_log_events(logGroupName=group, logStreamName=stream,
                                  logEvents=[{"timestamp": t + o, "message": str(i)} for i, o in enumerate(offsets)])
        assert out.get("rejectedLogEventsInfo") == rejected, offsets
        assert "nextSequenceToken" in out
        assert messages(logs, group, stream) == stored, offsets
    # With a retention, older events are expired.
    logs.put_retention_policy(logGroupName=group, retentionInDays=1)
    out = logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=[
        {"timestamp": t - DAY - HOUR, "message": "expired"}, {"timestamp": t - HOUR, "message": "kept"}])
    assert out["rejectedLogEventsInfo"] == {"expiredLogEventEndIndex": 1}
    assert messages(logs, group, "s") == ["kept"]


def test_describe_log_groups_paging_and_filters(logs):
    base = f"/page/{unique('p')}"
    names = [f"{base}/{c}" for c in "edcba"]
    for n in names:
        logs.create_log_group(logGroupName=n)
    try:
        seen, token, pages = [], None, 0
        while True:
            kw = {"logGroupNamePrefix": base, "limit": 2, **({"nextToken": token} if token else {})}
            out = logs.describe_log_groups(**kw)
            seen += [g["logGroupName"] for g in out["logGroups"]]
            pages += 1
            token = out.get("nextToken")
            if not token:
                break
        assert seen == sorted(names) and pages == 3
        # A group made while paging lands in order, past the page already handed out.
        out = logs.describe_log_groups(logGroupNamePrefix=base, limit=2)
        logs.create_log_group(logGroupName=f"{base}/0")
        names.append(f"{base}/0")
        rest = logs.describe_log_groups(logGroupNamePrefix=base, nextToken=out["nextToken"])
        assert [g["logGroupName"] for g in rest["logGroups"]] == [f"{base}/{c}" for c in "cde"]

        assert [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePattern=base.split("/")[-1] + "/b")["logGroups"]] == [f"{base}/b"]
        assert refused(logs.describe_log_groups, logGroupNamePrefix=base, logGroupNamePattern="x") == invalid(
            "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.")
        assert refused(logs.describe_log_groups, limit=51) == invalid(
            "1 validation error detected: Value '51' at 'limit' failed to satisfy constraint: "
            "Member must have value less than or equal to 50")
        assert refused(logs.describe_log_groups, nextToken="bogus") == invalid("The specified nextToken is invalid.")
    finally:
        for n in names:
            logs.delete_log_group(logGroupName=n)


def test_describe_log_streams_order_and_paging(logs, group):
    t = now_ms()
    # Names in one order, last events in another.
    for name, offset in [("a", 30), ("b", 10), ("c", 20)]:
        logs.create_log_stream(logGroupName=group, logStreamName=name)
        logs.put_log_events(logGroupName=group, logStreamName=name, logEvents=[{"timestamp": t + offset, "message": name}])
    logs.create_log_stream(logGroupName=group, logStreamName="d-empty")

    def names(**kw):
        return [s["logStreamName"] for s in logs.describe_log_streams(logGroupName=group, **kw)["logStreams"]]

    assert names() == ["a", "b", "c", "d-empty"]
    assert names(descending=True) == ["d-empty", "c", "b", "a"]
    assert names(orderBy="LastEventTime") == ["d-empty", "b", "c", "a"]
    assert names(orderBy="LastEventTime", descending=True) == ["a", "c", "b", "d-empty"]
    assert names(logStreamNamePrefix="d") == ["d-empty"]
    first = logs.describe_log_streams(logGroupName=group, limit=3)
    assert [s["logStreamName"] for s in first["logStreams"]] == ["a", "b", "c"]
    assert names(nextToken=first["nextToken"]) == ["d-empty"]
    assert refused(logs.describe_log_streams, logGroupName=group, orderBy="LastEventTime", logStreamNamePrefix="a") == invalid(
        "Cannot order by LastEventTime with a logStreamNamePrefix.")
    assert refused(logs.describe_log_streams, logGroupName=group, logGroupIdentifier=group_arn(group)) == (
        "ValidationException", 400, "LogGroup name and LogGroup ARN are mutually exclusive parameters.")
    assert names_by_arn(logs, group) == ["a", "b", "c", "d-empty"]


def names_by_arn(logs, group):
    out = logs.describe_log_streams(logGroupIdentifier=group_arn(group))
    return [s["logStreamName"] for s in out["logStreams"]]


def test_filter_log_events_polling_with_start_time(logs, group):
    """What tail-like tools do: FilterLogEvents from a startTime, again and again, moving
    startTime past what they have seen."""
    for s in ("x", "y"):
        logs.create_log_stream(logGroupName=group, logStreamName=s)
    t = now_ms()
    logs.put_log_events(logGroupName=group, logStreamName="x", logEvents=[{"timestamp": t, "message": "one"}])
    logs.put_log_events(logGroupName=group, logStreamName="y", logEvents=[{"timestamp": t + 1, "message": "two"}])
    out = logs.filter_log_events(logGroupName=group, startTime=t)
    assert [(e["logStreamName"], e["message"]) for e in out["events"]] == [("x", "one"), ("y", "two")]
    last = out["events"][-1]["timestamp"]
    assert logs.filter_log_events(logGroupName=group, startTime=last + 1)["events"] == []
    logs.put_log_events(logGroupName=group, logStreamName="x", logEvents=[{"timestamp": t + 5, "message": "three"}])
    out = logs.filter_log_events(logGroupName=group, startTime=last + 1)
    assert [e["message"] for e in out["events"]] == ["three"]
    assert [e["message"] for e in logs.filter_log_events(logGroupName=group, filterPattern="two")["events"]] == ["two"]


def test_retention_policies(logs, group):
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    t = now_ms()
    logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=[
        {"timestamp": t - 3 * DAY, "message": "old"}, {"timestamp": t - 3 * DAY + 1, "message": "old too"}])
    logs.create_log_stream(logGroupName=group, logStreamName="mixed")
    logs.put_log_events(logGroupName=group, logStreamName="mixed", logEvents=[
        {"timestamp": t - DAY - HOUR // 2, "message": "gone"}, {"timestamp": t - HOUR // 2, "message": "stays"}])
    assert "retentionInDays" not in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]

    allowed = ", ".join(map(str, RETENTION_DAYS))
    for bad in (0, 2, 4000, -1):
        assert refused(logs.put_retention_policy, logGroupName=group, retentionInDays=bad) == invalid(
            f"1 validation error detected: Value '{bad}' at 'retentionInDays' failed to satisfy constraint: "
            f"Member must satisfy enum value set: [{allowed}]"), bad
    assert refused(logs.put_retention_policy, logGroupName=f"{group}-x", retentionInDays=1) == (
        "ResourceNotFoundException", 400, "The specified log group does not exist.")
    for days in RETENTION_DAYS:
        logs.put_retention_policy(logGroupName=group, retentionInDays=days)
        assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["retentionInDays"] == days
    # One day: expired events are deleted (the sweep runs when a policy is set); the stream
    # whose events all expired goes away.
    logs.put_retention_policy(logGroupName=group, retentionInDays=1)
    assert [s["logStreamName"] for s in logs.describe_log_streams(logGroupName=group)["logStreams"]] == ["mixed"]
    assert messages(logs, group, "mixed") == ["stays"]
    assert [e["message"] for e in logs.filter_log_events(logGroupName=group)["events"]] == ["stays"]

    logs.delete_retention_policy(logGroupName=group)
    assert "retentionInDays" not in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]
    assert refused(logs.delete_retention_policy, logGroupName=f"{group}-x") == (
        "ResourceNotFoundException", 400, "The specified log group does not exist.")


def test_tags(logs):
    name = f"/app/{unique('tags')}"
    logs.create_log_group(logGroupName=name, tags={"env": "testing"})
    arn = group_arn(name)
    try:
        assert logs.list_tags_log_group(logGroupName=name)["tags"] == {"env": "testing"}
        assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {"env": "testing"}
        logs.tag_resource(resourceArn=arn, tags={"test1": "val1", "test2": "val2"})
        logs.tag_log_group(logGroupName=name, tags={"test3": "val3", "env": "testing1"})
        want = {"env": "testing1", "test1": "val1", "test2": "val2", "test3": "val3"}
        assert logs.list_tags_log_group(logGroupName=name)["tags"] == want
        assert logs.list_tags_for_resource(resourceArn=f"{arn}:*")["tags"] == want
        logs.untag_resource(resourceArn=arn, tagKeys=["env", "test1"])
        logs.untag_log_group(logGroupName=name, tags=["test3", "absent"])
        assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {"test2": "val2"}
        missing = f"{name}-x"
        for call, kw in [
            (logs.list_tags_log_group, {"logGroupName": missing}),
            (logs.tag_log_group, {"logGroupName": missing, "tags": {"a": "b"}}),
            (logs.list_tags_for_resource, {"resourceArn": group_arn(missing)}),
            (logs.tag_resource, {"resourceArn": group_arn(missing), "tags": {"a": "b"}}),
        ]:
            assert refused(call, **kw) == ("ResourceNotFoundException", 400, "The specified log group does not exist.")
    finally:
        logs.delete_log_group(logGroupName=name)


def test_lambda_groups_live_beside_made_ones(lam, logs, make_fn):
    """A group made ahead of a function's first invocation is the one Lambda writes to, and
    keeps its retention and tags."""
    from helpers import invoke

    name = unique("fnlogs")
    group = f"/aws/lambda/{name}"
    logs.create_log_group(logGroupName=group, tags={"app": "x"})
    logs.put_retention_policy(logGroupName=group, retentionInDays=7)
    make_fn("nodejs22.x", {"index.js": "exports.handler = async () => { console.log('hi from fn'); return 1; };"},
            "index.handler", name=name)
    invoke(lam, name, {}).ok()
    deadline = time.time() + 20
    while time.time() < deadline:
        found = [e["message"] for e in logs.filter_log_events(logGroupName=group)["events"]]
        if any("hi from fn" in m for m in found):
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"no function output in {group}: {found}")
    g = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]
    assert g["retentionInDays"] == 7
    assert logs.list_tags_log_group(logGroupName=group)["tags"] == {"app": "x"}
    logs.delete_log_group(logGroupName=group)


def test_authorization(server):
    iam = boto_client("iam", server.endpoint)
    base = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group"
    mine = f"/team/{unique('mine')}"
    other = f"/team/{unique('other')}"
    user_name = unique("logsuser")
    iam.create_user(UserName=user_name)
    user_arn = f"arn:aws:iam::{ACCOUNT}:user/{user_name}"
    iam.put_user_policy(UserName=user_name, PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                                                    "logs:PutRetentionPolicy", "logs:TagResource", "logs:DeleteLogGroup"],
                       "Resource": [f"{base}:{mine}", f"{base}:{mine}:*"]}]}))
    key = iam.create_access_key(UserName=user_name)["AccessKey"]
    logs = boto_client("logs", server.endpoint, aws_access_key_id=key["AccessKeyId"],
                       aws_secret_access_key=key["SecretAccessKey"])

    def denied(action, resource):
        return ("AccessDeniedException", 400, f"User: {user_arn} is not authorized to perform: {action} on resource: "
                f"{resource} because no identity-based policy allows the {action} action")

    t = now_ms()
    logs.create_log_group(logGroupName=mine)
    logs.create_log_stream(logGroupName=mine, logStreamName="s")
    logs.put_log_events(logGroupName=mine, logStreamName="s", logEvents=[{"timestamp": t, "message": "m"}])
    logs.put_retention_policy(logGroupName=mine, retentionInDays=1)
    logs.tag_resource(resourceArn=f"{base}:{mine}", tags={"a": "b"})
    cases = [
        (logs.create_log_group, {"logGroupName": other}, denied("logs:CreateLogGroup", f"{base}:{other}:log-stream:")),
        (logs.create_log_stream, {"logGroupName": other, "logStreamName": "s"},
         denied("logs:CreateLogStream", f"{base}:{other}:log-stream:s")),
        (logs.put_log_events, {"logGroupName": other, "logStreamName": "s", "logEvents": [{"timestamp": t, "message": "m"}]},
         denied("logs:PutLogEvents", f"{base}:{other}:log-stream:s")),
        (logs.delete_log_stream, {"logGroupName": mine, "logStreamName": "s"},
         denied("logs:DeleteLogStream", f"{base}:{mine}:log-stream:s")),
        (logs.put_retention_policy, {"logGroupName": other, "retentionInDays": 1},
         denied("logs:PutRetentionPolicy", f"{base}:{other}:log-stream:")),
        (logs.list_tags_for_resource, {"resourceArn": f"{base}:{mine}"}, denied("logs:ListTagsForResource", f"{base}:{mine}")),
        (logs.tag_log_group, {"logGroupName": mine, "tags": {"a": "b"}}, denied("logs:TagLogGroup", f"{base}:{mine}:log-stream:")),
    ]
    for call, kw, want in cases:
        assert refused(call, **kw) == want, call
    logs.delete_log_group(logGroupName=mine)


def test_aws_cli(server, aws_cli, tmp_path):
    aws = aws_cli_runner(aws_cli, server.endpoint, tmp_path / "home")
    group = f"/cli/{unique('g')}"
    cp = aws("logs", "create-log-group", "--log-group-name", group)
    assert cp.returncode == 0, cp.err
    cp = aws("logs", "create-log-group", "--log-group-name", group)
    assert cp.returncode == 255
    assert re.search(r"An error occurred \(ResourceAlreadyExistsException\) when calling the CreateLogGroup "
                     r"operation( \(reached max retries: 0\))?: The specified log group already exists$", cp.err.strip()), cp.err
    assert aws("logs", "create-log-stream", "--log-group-name", group, "--log-stream-name", "s").returncode == 0
    t = now_ms()
    events = json.dumps([{"timestamp": t, "message": "from the cli"}, {"timestamp": t + 1, "message": "second"}])
    cp = aws("logs", "put-log-events", "--log-group-name", group, "--log-stream-name", "s", "--log-events", events)
    assert cp.returncode == 0, cp.err
    assert len(json.loads(cp.out)["nextSequenceToken"]) == 56
    cp = aws("logs", "get-log-events", "--log-group-name", group, "--log-stream-name", "s", "--start-from-head")
    assert cp.returncode == 0, cp.err
    assert [e["message"] for e in json.loads(cp.out)["events"]] == ["from the cli", "second"]
    cp = aws("logs", "put-retention-policy", "--log-group-name", group, "--retention-in-days", "30")
    assert cp.returncode == 0, cp.err
    cp = aws("logs", "describe-log-groups", "--log-group-name-prefix", group)
    assert cp.returncode == 0, cp.err
    [g] = json.loads(cp.out)["logGroups"]
    assert (g["logGroupName"], g["retentionInDays"], g["storedBytes"]) == (group, 30, len("from the clisecond"))
    cp = aws("logs", "put-log-events", "--log-group-name", group, "--log-stream-name", "s", "--log-events",
             json.dumps([{"timestamp": t, "message": "b"}, {"timestamp": t - 1, "message": "a"}]))
    assert cp.returncode == 255
    assert re.search(r"\(InvalidParameterException\) when calling the PutLogEvents operation( \(reached max retries: 0\))?: "
                     r"Log events in a single PutLogEvents request must be in chronological order\.$", cp.err.strip()), cp.err
    assert aws("logs", "delete-log-group", "--log-group-name", group).returncode == 0


def test_restart_keeps_groups_retention_tags_and_events(server_factory):
    s = server_factory()
    logs = s.logs_client()
    t = now_ms()
    logs.create_log_group(logGroupName="/kept/a", tags={"team": "x"})
    logs.put_retention_policy(logGroupName="/kept/a", retentionInDays=14)
    logs.create_log_stream(logGroupName="/kept/a", logStreamName="with-events")
    logs.create_log_stream(logGroupName="/kept/a", logStreamName="empty")
    logs.put_log_events(logGroupName="/kept/a", logStreamName="with-events",
                        logEvents=[{"timestamp": t, "message": "durable"}, {"timestamp": t + 1, "message": "too"}])
    logs.create_log_group(logGroupName="/kept/b")
    logs.create_log_group(logGroupName="/kept/deleted")
    logs.delete_log_group(logGroupName="/kept/deleted")
    before = logs.describe_log_groups(logGroupNamePrefix="/kept/")["logGroups"]
    streams_before = logs.describe_log_streams(logGroupName="/kept/a")["logStreams"]

    s.restart()
    logs = s.logs_client()
    assert logs.describe_log_groups(logGroupNamePrefix="/kept/")["logGroups"] == before
    assert [g["logGroupName"] for g in before] == ["/kept/a", "/kept/b"]
    assert before[0]["retentionInDays"] == 14
    assert logs.list_tags_log_group(logGroupName="/kept/a")["tags"] == {"team": "x"}
    after = logs.describe_log_streams(logGroupName="/kept/a")["logStreams"]
    strip = lambda ss: [{k: v for k, v in x.items() if k != "uploadSequenceToken"} for x in ss]  # noqa: E731
    assert strip(after) == strip(streams_before)
    assert messages(logs, "/kept/a", "with-events") == ["durable", "too"]

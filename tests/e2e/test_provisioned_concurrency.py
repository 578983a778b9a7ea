"""Provisioned concurrency: Put/Get/Delete/ListProvisionedConcurrencyConfigs with AWS's
shapes and errors, and the environments behind them: initialized ahead of invocations with
AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency, used first, spilling over to
on-demand ones, replaced when they die, moved with their alias, released on delete, and
provisioned again after a restart. Each test runs on a private server, so what it claims
from the account's concurrency does not leak into other tests."""

from __future__ import annotations

import json
import re
import time

import pytest

from helpers import all_group_messages, concurrently, create_function, expect_error, http_get, invoke, make_zip, unique, wait_for

PC_LAST_MODIFIED_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+0000$")

# Init records when it ran and a token unique to the environment; the handler returns
# them with the initialization type it saw.
HANDLER = """
import os, time, uuid
INIT_AT = time.time()
TOKEN = uuid.uuid4().hex
INIT_TYPE = os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE")
time.sleep(0.2)
calls = 0

def handler(event, context):
    global calls
    calls += 1
    if event.get("exit"):
        os._exit(3)
    if event.get("sleep"):
        time.sleep(event["sleep"])
    return {"token": TOKEN, "init_at": INIT_AT, "init_type": INIT_TYPE, "calls": calls,
            "version": os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")}
"""

FAILING_INIT = "raise RuntimeError('init is broken')\ndef handler(event, context):\n    return 1\n"


@pytest.fixture
def pc(server_factory):
    """A private server and its lambda clients (validating, and raw for bad requests)."""
    s = server_factory()
    return s, s.lambda_client(), s.lambda_client(validate=False)


def _function(lam, code: str = HANDLER, versions: int = 1) -> str:
    name = unique("pc")
    create_function(lam, name, "python3.11", "index.handler", make_zip({"index.py": code}), Timeout=10)
    for i in range(versions):
        lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"VERSION_MARK": str(i + 1)}})
        lam.publish_version(FunctionName=name)
    return name


def _ready(lam, name: str, qualifier: str, timeout: float = 20.0) -> dict:
    def check():
        c = lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier)
        assert c["Status"] != "FAILED", c
        return c if c["Status"] == "READY" else None

    return wait_for(check, timeout=timeout, what=f"{name}:{qualifier} READY")


def _status(server) -> dict:
    status, _, body = http_get(server.endpoint + "/_nimbus/status")
    assert status == 200
    return json.loads(body)["environments"]


def test_put_get_list_delete_shapes(pc):
    _, lam, _ = pc
    name = _function(lam, versions=2)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")

    put = lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="2", ProvisionedConcurrentExecutions=1)
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert put["RequestedProvisionedConcurrentExecutions"] == 1
    assert put["Status"] in ("IN_PROGRESS", "READY")
    assert PC_LAST_MODIFIED_RE.match(put["LastModified"]), put["LastModified"]
    for key in ("AvailableProvisionedConcurrentExecutions", "AllocatedProvisionedConcurrentExecutions"):
        assert isinstance(put[key], int)

    ready = _ready(lam, name, "2")
    assert ready["RequestedProvisionedConcurrentExecutions"] == 1
    assert ready["AllocatedProvisionedConcurrentExecutions"] == 1
    assert ready["AvailableProvisionedConcurrentExecutions"] == 1
    assert ready["LastModified"] == put["LastModified"]
    assert "StatusReason" not in ready

    lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="live", ProvisionedConcurrentExecutions=1)
    listed = lam.list_provisioned_concurrency_configs(FunctionName=name)["ProvisionedConcurrencyConfigs"]
    assert [c["FunctionArn"].rsplit(":", 1)[1] for c in listed] == ["2", "live"]
    assert listed[0]["FunctionArn"] == f"arn:aws:lambda:us-east-1:000000000000:function:{name}:2"
    assert all(c["RequestedProvisionedConcurrentExecutions"] == 1 for c in listed)
    first = lam.list_provisioned_concurrency_configs(FunctionName=name, MaxItems=1)
    assert len(first["ProvisionedConcurrencyConfigs"]) == 1 and first["NextMarker"]
    second = lam.list_provisioned_concurrency_configs(FunctionName=name, MaxItems=1, Marker=first["NextMarker"])
    assert second["ProvisionedConcurrencyConfigs"][0]["FunctionArn"].endswith(":live")
    assert "NextMarker" not in second

    # Qualified function ARNs name the qualifier too.
    got = lam.get_provisioned_concurrency_config(FunctionName=f"{name}:live", Qualifier="live")
    assert got["RequestedProvisionedConcurrentExecutions"] == 1

    resp = lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="2")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    msg = expect_error(lambda: lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier="2"),
                       "ProvisionedConcurrencyConfigNotFoundException", 404)
    assert msg == "No Provisioned Concurrency Config found for this function"
    # Deleting what is not there is fine, as in AWS.
    lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="2")
    assert len(lam.list_provisioned_concurrency_configs(FunctionName=name)["ProvisionedConcurrencyConfigs"]) == 1


def test_errors(pc):
    _, lam, raw = pc
    name = _function(lam)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    lam.create_alias(FunctionName=name, Name="dev", FunctionVersion="$LATEST")

    msg = expect_error(lambda: lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="$LATEST", ProvisionedConcurrentExecutions=1),
                       "InvalidParameterValueException", 400)
    assert msg == "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
    msg = expect_error(lambda: lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="dev", ProvisionedConcurrentExecutions=1),
                       "InvalidParameterValueException", 400)
    assert msg == "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
    for op in (lam.get_provisioned_concurrency_config, lam.delete_provisioned_concurrency_config):
        msg = expect_error(lambda: op(FunctionName=name, Qualifier="$LATEST"), "InvalidParameterValueException", 400)
        assert msg == "The function resource provided must be an alias or a published version."
    msg = expect_error(lambda: raw.get_provisioned_concurrency_config(FunctionName=name), "ValidationException", 400)
    assert "'qualifier'" in msg and "Member must not be null" in msg
    expect_error(lambda: raw.put_provisioned_concurrency_config(FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=0),
                 "ValidationException", 400)
    expect_error(lambda: raw.list_provisioned_concurrency_configs(FunctionName=name, MaxItems=51), "ValidationException", 400)

    missing = unique("nope")
    msg = expect_error(lambda: lam.put_provisioned_concurrency_config(FunctionName=missing, Qualifier="1", ProvisionedConcurrentExecutions=1),
                       "ResourceNotFoundException", 404)
    # AWS names the qualified ARN even when the function itself is missing.
    assert msg == f"Function not found: arn:aws:lambda:us-east-1:000000000000:function:{missing}:1"
    msg = expect_error(lambda: lam.get_provisioned_concurrency_config(FunctionName=missing, Qualifier="live"), "ResourceNotFoundException", 404)
    assert msg == f"Cannot find alias arn: arn:aws:lambda:us-east-1:000000000000:function:{missing}:live"
    msg = expect_error(lambda: lam.list_provisioned_concurrency_configs(FunctionName=missing), "ResourceNotFoundException", 404)
    assert msg == f"Function not found: arn:aws:lambda:us-east-1:000000000000:function:{missing}"
    msg = expect_error(lambda: lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="9", ProvisionedConcurrentExecutions=1),
                       "ResourceNotFoundException", 404)
    assert msg == f"Function not found: arn:aws:lambda:us-east-1:000000000000:function:{name}:9"
    msg = expect_error(lambda: lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier="gone"), "ResourceNotFoundException", 404)
    assert msg == f"Cannot find alias arn: arn:aws:lambda:us-east-1:000000000000:function:{name}:gone"

    # A version and an alias that points at it are not provisioned both.
    lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=1)
    msg = expect_error(lambda: lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="live", ProvisionedConcurrentExecutions=1),
                       "ResourceConflictException", 409)
    assert msg == "Alias can't be used for Provisioned Concurrency configuration on an already Provisioned version"
    lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="1")
    lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="live", ProvisionedConcurrentExecutions=1)
    msg = expect_error(lambda: lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=1),
                       "ResourceConflictException", 409)
    assert msg == "Version is pointed by a Provisioned Concurrency alias"
    # An alias with provisioned concurrency keeps pointing at a published version.
    msg = expect_error(lambda: lam.update_alias(FunctionName=name, Name="live", FunctionVersion="$LATEST"),
                       "InvalidParameterValueException", 400)
    assert msg == "Provisioned Concurrency Configs cannot be applied to unpublished function versions."


def test_limits_and_account_settings(pc):
    _, lam, _ = pc
    reserved = _function(lam)
    lam.put_function_concurrency(FunctionName=reserved, ReservedConcurrentExecutions=2)
    msg = expect_error(lambda: lam.put_provisioned_concurrency_config(FunctionName=reserved, Qualifier="1", ProvisionedConcurrentExecutions=3),
                       "InvalidParameterValueException", 400)
    assert msg == "Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function"
    lam.put_provisioned_concurrency_config(FunctionName=reserved, Qualifier="1", ProvisionedConcurrentExecutions=2)
    # The reservation may not drop below what is provisioned.
    expect_error(lambda: lam.put_function_concurrency(FunctionName=reserved, ReservedConcurrentExecutions=1),
                 "InvalidParameterValueException", 400)

    free = _function(lam)
    settings = lam.get_account_settings()["AccountLimit"]
    assert settings["UnreservedConcurrentExecutions"] == 1000 - 2
    msg = expect_error(lambda: lam.put_provisioned_concurrency_config(FunctionName=free, Qualifier="1", ProvisionedConcurrentExecutions=899),
                       "InvalidParameterValueException", 400)
    assert msg == "Specified ConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [100]."
    lam.put_provisioned_concurrency_config(FunctionName=free, Qualifier="1", ProvisionedConcurrentExecutions=3)
    # Provisioned concurrency of a function without a reservation leaves the unreserved pool.
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 1000 - 2 - 3
    # Reserving for it moves its provisioned concurrency inside the reservation.
    expect_error(lambda: lam.put_function_concurrency(FunctionName=free, ReservedConcurrentExecutions=899),
                 "InvalidParameterValueException", 400)
    lam.put_function_concurrency(FunctionName=free, ReservedConcurrentExecutions=10)
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 1000 - 2 - 10
    lam.delete_function_concurrency(FunctionName=free)
    lam.delete_provisioned_concurrency_config(FunctionName=free, Qualifier="1")
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 1000 - 2


def test_initialized_ahead_and_spill_over(pc):
    server, lam, _ = pc
    name = _function(lam)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="live", ProvisionedConcurrentExecutions=2)
    ready = _ready(lam, name, "live")
    assert ready["AllocatedProvisionedConcurrentExecutions"] == 2
    assert _status(server)["provisioned"] == 2
    sent = time.time()

    # Two concurrent invocations land on the two provisioned environments: different
    # environments, both initialized before the invocations were sent, no cold init on
    # the invoke path (no Init Duration), and the initialization type AWS sets.
    results = concurrently(2, lambda i: invoke(lam, f"{name}:live", {"sleep": 1.0}))
    bodies = [r.ok() for r in results]
    assert {b["init_type"] for b in bodies} == {"provisioned-concurrency"}, bodies
    assert len({b["token"] for b in bodies}) == 2, bodies
    assert all(b["init_at"] < sent for b in bodies), (sent, bodies)
    assert all(b["calls"] == 1 for b in bodies), bodies
    for r in results:
        report = [line for line in r.log_lines if line.startswith("REPORT")]
        assert report and "Init Duration" not in report[0], r.log
        assert r.version == "1"

    # Three at once: two provisioned, the third spills over to an on-demand environment.
    results = concurrently(3, lambda i: invoke(lam, f"{name}:live", {"sleep": 1.0}))
    types = sorted(r.ok()["init_type"] for r in results)
    assert types == ["on-demand", "provisioned-concurrency", "provisioned-concurrency"], types

    # $LATEST and the version itself are not the alias: they run on demand.
    assert invoke(lam, name, {}).ok()["init_type"] == "on-demand"

    # CloudWatch's provisioned-concurrency metrics for the alias: 4 invocations on its
    # environments, 1 spilled over, at most 2 of 2 in use.
    import datetime as dt

    from helpers import boto_client

    cw = boto_client("cloudwatch", server.endpoint)
    dims = [{"Name": "FunctionName", "Value": name}, {"Name": "Resource", "Value": f"{name}:live"}]
    now = dt.datetime.now(dt.timezone.utc)

    def stat(metric: str, statistic: str) -> float:
        pts = cw.get_metric_statistics(Namespace="AWS/Lambda", MetricName=metric, Dimensions=dims, Period=300,
                                       StartTime=now - dt.timedelta(minutes=10), EndTime=now + dt.timedelta(minutes=5),
                                       Statistics=[statistic])["Datapoints"]
        return sum(p[statistic] for p in pts) if statistic == "Sum" else max((p[statistic] for p in pts), default=0.0)

    assert stat("ProvisionedConcurrencyInvocations", "Sum") == 4
    assert stat("ProvisionedConcurrencySpilloverInvocations", "Sum") == 1
    assert stat("ProvisionedConcurrentExecutions", "Maximum") == 2
    assert stat("ProvisionedConcurrencyUtilization", "Maximum") == 1.0
    assert stat("UnreservedConcurrentExecutions", "SampleCount") == 0  # account-level only


def test_failed_init_reports_failed(pc):
    server, lam, _ = pc
    name = _function(lam, code=FAILING_INIT)
    lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=1)

    def failed():
        c = lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier="1")
        return c if c["Status"] == "FAILED" else None

    c = wait_for(failed, timeout=20, what="FAILED")
    assert c["StatusReason"] == "FUNCTION_ERROR_INIT_FAILURE", c
    assert (c["AllocatedProvisionedConcurrentExecutions"], c["AvailableProvisionedConcurrentExecutions"]) == (0, 0)
    # The init error is in the function's log, as on AWS.
    logs = server.logs_client()
    assert wait_for(lambda: any("init is broken" in m for m in all_group_messages(logs, f"/aws/lambda/{name}")),
                    what="the init error in the log")


def test_dead_environment_is_replaced(pc):
    server, lam, _ = pc
    name = _function(lam)
    lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=1)
    _ready(lam, name, "1")
    first = invoke(lam, f"{name}:1", {}).ok()
    assert first["init_type"] == "provisioned-concurrency"
    crashed = invoke(lam, f"{name}:1", {"exit": True})
    assert crashed.error == "Unhandled"
    _ready(lam, name, "1")
    again = invoke(lam, f"{name}:1", {}).ok()
    assert again["init_type"] == "provisioned-concurrency"
    assert again["token"] != first["token"] and again["calls"] == 1
    assert _status(server)["provisioned"] == 1


def test_alias_move_reprovisions_and_delete_releases(pc):
    server, lam, _ = pc
    name = _function(lam, versions=2)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="live", ProvisionedConcurrentExecutions=1)
    _ready(lam, name, "live")
    assert invoke(lam, f"{name}:live", {}).ok()["version"] == "1"

    lam.update_alias(FunctionName=name, Name="live", FunctionVersion="2")
    wait_for(lambda: invoke(lam, f"{name}:live", {}).ok()["init_type"] == "provisioned-concurrency" or None,
             timeout=20, what="provisioned environment of version 2")
    body = invoke(lam, f"{name}:live", {}).ok()
    assert (body["version"], body["init_type"]) == ("2", "provisioned-concurrency")
    wait_for(lambda: _status(server)["provisioned"] == 1 or None, timeout=10, what="version 1's environment released")

    lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="live")
    wait_for(lambda: _status(server)["provisioned"] == 0 or None, timeout=10, what="environments released")
    assert invoke(lam, f"{name}:live", {}).ok()["init_type"] == "on-demand"

    # Deleting a version or an alias deletes its config.
    lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=1)
    lam.delete_function(FunctionName=name, Qualifier="1")
    lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="live", ProvisionedConcurrentExecutions=1)
    lam.delete_alias(FunctionName=name, Name="live")
    assert lam.list_provisioned_concurrency_configs(FunctionName=name)["ProvisionedConcurrencyConfigs"] == []
    wait_for(lambda: _status(server)["provisioned"] == 0 and _status(server)["provisioning"] == 0 or None,
             timeout=10, what="environments released")


def test_restart_provisions_again(pc):
    server, lam, _ = pc
    name = _function(lam)
    lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=2)
    before = _ready(lam, name, "1")
    assert server.stop(timeout=10) == 0
    server.start()
    lam = server.lambda_client()
    after = _ready(lam, name, "1")
    assert after["LastModified"] == before["LastModified"]
    sent = time.time()
    body = invoke(lam, f"{name}:1", {}).ok()
    assert body["init_type"] == "provisioned-concurrency" and body["init_at"] < sent


NODE_HANDLER = """
const INIT_AT = Date.now() / 1000;
const TOKEN = require('crypto').randomUUID();
const INIT_TYPE = process.env.AWS_LAMBDA_INITIALIZATION_TYPE;
exports.handler = async () => ({ token: TOKEN, init_at: INIT_AT, init_type: INIT_TYPE });
"""


def test_node_environment_is_initialized_ahead(pc):
    _, lam, _ = pc
    name = unique("pc-node")
    create_function(lam, name, "nodejs20.x", "index.handler", make_zip({"index.js": NODE_HANDLER}))
    lam.publish_version(FunctionName=name)
    lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=1)
    _ready(lam, name, "1")
    sent = time.time()
    r = invoke(lam, f"{name}:1", {})
    body = r.ok()
    assert body["init_type"] == "provisioned-concurrency" and body["init_at"] < sent, body
    assert "Init Duration" not in r.log
    assert invoke(lam, name, {}).ok()["init_type"] == "on-demand"


def test_weighted_alias_spreads_environments(pc):
    server, lam, _ = pc
    name = _function(lam, versions=2)
    lam.create_alias(FunctionName=name, Name="canary", FunctionVersion="1", RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})
    lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="canary", ProvisionedConcurrentExecutions=2)
    assert _ready(lam, name, "canary")["AllocatedProvisionedConcurrentExecutions"] == 2
    seen = set()
    for _ in range(40):
        body = invoke(lam, f"{name}:canary", {}).ok()
        assert body["init_type"] == "provisioned-concurrency", body
        seen.add(body["version"])
        if seen == {"1", "2"}:
            break
    assert seen == {"1", "2"}
    assert _status(server)["provisioned"] == 2


def test_reservation_covers_versions_and_provisioned_carves_it(pc):
    _, lam, _ = pc
    name = _function(lam)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=1)
    _ready(lam, name, "1")
    # All of the reservation is provisioned: the version runs on it, $LATEST is throttled.
    assert invoke(lam, f"{name}:1", {}).ok()["init_type"] == "provisioned-concurrency"
    expect_error(lambda: lam.invoke(FunctionName=name, Payload=b"{}"), "TooManyRequestsException", 429)
    lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="1")
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    # A reservation applies to every version, not only to $LATEST.
    expect_error(lambda: lam.invoke(FunctionName=f"{name}:1", Payload=b"{}"), "TooManyRequestsException", 429)


def test_not_reaped_when_idle_or_under_memory_pressure(server_factory):
    # --idle-timeout 1 reaps idle on-demand environments within a second or two, and
    # "less than 100 % available" puts the host under permanent memory pressure.
    s = server_factory(args=["--idle-timeout", "1", "--min-available-memory-percent", "100"])
    lam = s.lambda_client()
    name = _function(lam)
    lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=1)
    _ready(lam, name, "1")
    first = invoke(lam, f"{name}:1", {}).ok()
    on_demand = invoke(lam, name, {}).ok()
    time.sleep(3)
    again = invoke(lam, f"{name}:1", {}).ok()
    assert (again["token"], again["calls"]) == (first["token"], 2), (first, again)
    assert invoke(lam, name, {}).ok()["token"] != on_demand["token"], "on-demand environments are still reaped"


def test_timed_out_environment_is_replaced(pc):
    _, lam, _ = pc
    name = unique("pc-timeout")
    create_function(lam, name, "python3.11", "index.handler", make_zip({"index.py": HANDLER}), Timeout=1)
    lam.publish_version(FunctionName=name)
    lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=1)
    _ready(lam, name, "1")
    first = invoke(lam, f"{name}:1", {}).ok()
    timed_out = invoke(lam, f"{name}:1", {"sleep": 2})
    assert timed_out.failed()["errorType"] == "Sandbox.Timedout"
    _ready(lam, name, "1")
    again = invoke(lam, f"{name}:1", {}).ok()
    assert again["init_type"] == "provisioned-concurrency" and again["token"] != first["token"]

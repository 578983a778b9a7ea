"""Nodes of a cluster know each other (issue 17): `/_nimbus/status`, `nimbus cluster ls`,
and a node stopped with SIGTERM hands its async events to the others at once."""

from __future__ import annotations

import json
import os
import subprocess
import time

from helpers import create_function, http_get, make_zip, postgres_database, run_here, server_env, wait_for

CODE = """
import time
def handler(event, context):
    time.sleep(event.get("sleep", 0))
    print("DELIVERED", event["id"])
    return event
"""


def _nodes(server_factory, tmp_path, n: int, lease: int, extra: list[str] | None = None) -> list:
    key = tmp_path / "master.key"
    key.write_bytes(os.urandom(32))
    s3 = server_factory()
    s3.client("s3").create_bucket(Bucket="code")
    args = ["--store", postgres_database(), "--blobs", f"s3://code?endpoint={s3.endpoint}&region=us-east-1",
            "--master-key-file", str(key), "--async-lease", str(lease)] + (extra or [])
    return [server_factory(args=args) for _ in range(n)]


def _cluster_ls(node) -> list[dict]:
    cp = subprocess.run([os.environ["NIMBUS_BIN"], "cluster", "ls", "--output", "json", "--endpoint", node.endpoint],
                        capture_output=True, env=server_env(), timeout=30)
    assert cp.returncode == 0, cp.stderr.decode()
    return json.loads(cp.stdout)["peers"]


def test_nodes_list_each_other(server_factory, tmp_path):
    a, b = _nodes(server_factory, tmp_path, 2, 30)
    peers = _cluster_ls(a)
    assert [p["endpoint"] for p in peers] == [a.endpoint, b.endpoint]
    assert [p["thisNode"] for p in peers] == [True, False]
    assert all(p["heartbeatAgeMs"] < 15_000 for p in peers), peers
    code, _, body = http_get(b.endpoint + "/_nimbus/status")
    assert code == 200
    assert json.loads(body)["cluster"]["node"] == peers[1]["node"]
    # The text form marks the node answering.
    cp = subprocess.run([os.environ["NIMBUS_BIN"], "cluster", "ls", "--endpoint", b.endpoint],
                        capture_output=True, env=server_env(), timeout=30)
    lines = cp.stdout.decode().splitlines()
    assert lines[0].split() == ["NODE", "ENDPOINT", "UP", "HEARTBEAT", "EVENTS"]
    assert f"{peers[1]['node']} *" in lines[2] and b.endpoint in lines[2], lines
    # A stopped node leaves.
    assert b.stop() == 0
    assert [p["endpoint"] for p in _cluster_ls(a)] == [a.endpoint]


def test_a_stopped_node_hands_its_events_over_at_once(server_factory, tmp_path):
    """With 30 s leases, the events a node still held when its drain ended (SIGTERM, a 1 s
    `--drain-timeout` against events of 20 s) run on the other node within seconds, not
    after the leases."""
    a, b = _nodes(server_factory, tmp_path, 2, 30, ["--drain-timeout", "1"])
    lam = a.lambda_client()
    create_function(lam, "handover", "python3.11", "index.handler", make_zip({"index.py": CODE}), Timeout=30)
    ids = [f"h{i:02d}" for i in range(20)]
    for event_id in ids:
        r = lam.invoke(FunctionName="handover", InvocationType="Event", Payload=json.dumps({"id": event_id, "sleep": 20}).encode())
        assert r["StatusCode"] == 202
    time.sleep(1.5)  # a is running them (each sleeps 20 s)
    held = {p["node"]: p["asyncEventsHeld"] for p in _cluster_ls(b)}
    assert sum(held.values()) == len(ids), held
    stopped = time.monotonic()
    assert a.stop() == 0
    # b now runs them all (each still sleeps 20 s): within 10 s b holds every one.
    deadline = stopped + 10
    while time.monotonic() < deadline:
        mine = [p for p in _cluster_ls(b) if p["thisNode"]][0]["asyncEventsHeld"]
        if mine == len(ids):
            break
        time.sleep(0.5)
    assert mine == len(ids), f"b holds {mine} of {len(ids)} {time.monotonic() - stopped:.1f} s after a stopped"


SLEEPER = """
import time
def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return {"ok": True}
"""



def test_a_reservation_holds_across_nodes(server_factory, tmp_path):
    """A function with reserved concurrency 2 runs at most 2 at once in the whole cluster:
    each node runs only within the share it leased, and gives back what it does not use."""
    from concurrent.futures import ThreadPoolExecutor

    a, b = _nodes(server_factory, tmp_path, 2, 30)
    create_function(a.lambda_client(), "limited", "python3.11", "index.handler", make_zip({"index.py": SLEEPER}), Timeout=30)
    a.lambda_client().put_function_concurrency(FunctionName="limited", ReservedConcurrentExecutions=2)
    time.sleep(0.5)  # b hears of the reservation

    def call(node, sleep: float) -> str:
        lam = node.lambda_client()
        # Each runs on the node it reaches (what is measured is each node's share of the
        # reservation, not the routing of invokes to a warm node).
        lam.meta.events.register("before-sign.lambda.Invoke", run_here)
        try:
            r = lam.invoke(FunctionName="limited", Payload=json.dumps({"sleep": sleep}).encode())
            return "ok" if "FunctionError" not in r else "error"
        except lam.exceptions.TooManyRequestsException as e:
            return e.response.get("Reason", "throttled")

    # Warm both nodes one at a time (cold starts are not what is measured).
    assert [call(a, 0), call(b, 0)] == ["ok", "ok"]
    time.sleep(1.5)  # both give their shares back
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda n: call(n, 3), [a, b, a, b, a, b]))
    assert sorted(results).count("ok") == 2, results
    assert results.count("ReservedFunctionConcurrentInvocationLimitExceeded") == 4, results
    # Done and given back (each node returns unused shares every second): either node may
    # now use the whole reservation.
    time.sleep(2.5)
    with ThreadPoolExecutor(2) as pool:
        assert list(pool.map(lambda n: call(n, 1), [b, b])) == ["ok", "ok"]


def _provisioned_here(node) -> int:
    code, _, body = http_get(node.endpoint + "/_nimbus/status")
    assert code == 200
    return json.loads(body)["environments"]["provisioned"]


def test_provisioned_concurrency_is_split_over_the_nodes(server_factory, tmp_path):
    """Provisioned concurrency 4 on two nodes: each keeps 2 environments, both report the
    config READY with 4 allocated; when one stops, the other keeps all 4."""
    a, b = _nodes(server_factory, tmp_path, 2, 30)
    lam_a, lam_b = a.lambda_client(), b.lambda_client()
    create_function(lam_a, "warm", "python3.11", "index.handler", make_zip({"index.py": SLEEPER}))
    version = lam_a.publish_version(FunctionName="warm")["Version"]
    lam_a.put_provisioned_concurrency_config(FunctionName="warm", Qualifier=version, ProvisionedConcurrentExecutions=4)

    def ready(lam) -> bool:
        c = lam.get_provisioned_concurrency_config(FunctionName="warm", Qualifier=version)
        return c["Status"] == "READY" and c["AllocatedProvisionedConcurrentExecutions"] == 4

    wait_for(lambda: ready(lam_a) and ready(lam_b), timeout=60, what="the config READY with 4 on both nodes")
    assert (_provisioned_here(a), _provisioned_here(b)) == (2, 2)
    # An invocation of the version on either node runs on a provisioned environment.
    assert "FunctionError" not in lam_b.invoke(FunctionName="warm", Qualifier=version, Payload=b"{}")
    # b stops: a keeps all four.
    assert b.stop() == 0
    wait_for(lambda: _provisioned_here(a) == 4, timeout=30, what="a keeping all four environments")
    wait_for(lambda: ready(lam_a), timeout=10, what="the config READY on a alone")

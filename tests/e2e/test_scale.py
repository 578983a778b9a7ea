"""Bursts and limits (issue 13), not timed: a burst of 300 concurrent invocations leaves
nothing behind once the server stops (no sandbox processes, network namespaces, veth pairs,
cgroups or mount points), and a burst past the server's own limits (a low descriptor limit)
is answered with AWS's throttling or a clean error, never a crash or a hang; the server
serves normally after it, and every asynchronous event it acknowledged with 202 still runs;
and `--max-initializing` bounds how many environments initialize at once."""

from __future__ import annotations

import base64
import io
import json
import os
import threading
import time
import zipfile
from pathlib import Path

import pytest

from helpers import REPORT_RE, Entry, concurrently, create_function, make_zip, signed_request, wait_for
from test_cleanup import cgroup_parents, groups_under, host_interface, ifindex, mounts_under, status

BURST = 300


@pytest.fixture(scope="module")
def echo_zip() -> bytes:
    return make_zip({"bootstrap": Path(os.environ["RUST_ECHO_BOOTSTRAP"]).read_bytes()})


def invoke_raw(server, name: str, payload: dict, *, event: bool = False, timeout: float = 120,
               tail: bool = False) -> tuple[int, dict, bytes]:
    """One invocation on a connection of its own: (status, headers, body); status 0 with the
    client's error as body when the server did not answer."""
    headers = {"X-Amz-Invocation-Type": "Event"} if event else {}
    if tail:
        headers["X-Amz-Log-Type"] = "Tail"
    try:
        return signed_request(server.endpoint, "POST", f"/2015-03-31/functions/{name}/invocations",
                              json.dumps(payload).encode(), headers=headers, timeout=timeout)
    except OSError as e:
        return 0, {}, repr(e).encode()


def error_of(st: int, headers: dict, body: bytes) -> str:
    """`429 TooManyRequestsException (ConcurrentInvocationLimitExceeded)`, the way an SDK reads it."""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    doc = doc if isinstance(doc, dict) else {}
    ty = (headers.get("x-amzn-errortype") or "").split(":")[0] or doc.get("__type") or doc.get("Type") or ""
    if "x-amz-function-error" in headers:
        ty = f"function error {doc.get('errorType')}: {str(doc.get('errorMessage'))[:200]}"
    reason = doc.get("Reason")
    return f"{st} {ty}" + (f" ({reason})" if reason else "")


# ---------------------------------------------------------------------------------------
# What a burst leaves behind
# ---------------------------------------------------------------------------------------


def procs_in(groups: list[Path]) -> set[tuple[int, str]]:
    """(pid, start time) of every process in these groups: a pid taken again later by
    another process is not mistaken for one of these."""
    out = set()
    for g in groups:
        for f in ("cgroup.procs", "tasks"):
            try:
                pids = (g / f).read_text().split()
            except OSError:
                continue
            for pid in pids:
                if (start := start_time(int(pid))) is not None:
                    out.add((int(pid), start))
    return out


def start_time(pid: int) -> str | None:
    """When `pid` started, if it is alive (a zombie is not: it is dead, and holds nothing
    but its pid until its new parent, the host's init, reaps it)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def netns_of(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def linked_address(pid: int) -> str | None:
    """The address of eth0 in the network namespace of `pid`, if it is linked (a local
    address of the sandbox subnet in its routing table)."""
    try:
        lines = Path(f"/proc/{pid}/net/fib_trie").read_text().splitlines()
    except OSError:
        return None
    for prev, line in zip(lines, lines[1:]):
        if "/32 host LOCAL" in line and "10.213." in prev:
            return prev.split()[-1]
    return None


def cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()[:80]
    except OSError:
        return "?"


def holders_of(namespaces: set[str]) -> list[str]:
    """Every process (or open descriptor, or bind mount) on the host that still holds one of
    these network namespaces."""
    held = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        if (ns := netns_of(int(p.name))) in namespaces:
            held.append(f"pid {p.name} ({cmdline(p)}) in {ns}")
        try:
            for fd in (p / "fd").iterdir():
                try:
                    if os.readlink(fd) in namespaces:
                        held.append(f"pid {p.name} ({cmdline(p)}) holds {os.readlink(fd)} open")
                except OSError:
                    pass
        except OSError:
            pass
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[-3] == "nsfs" and fields[3] in namespaces:
                held.append(f"mount {fields[4]}")
    return held


def test_a_burst_of_300_leaves_nothing_behind(server_factory, echo_zip):
    if os.geteuid() != 0:
        pytest.skip("sandboxes need root (namespaces and cgroups)")
    s = server_factory()
    st = status(s)
    if not st["isolation"].startswith("namespaces"):
        pytest.skip(f"this server runs without namespaces: {st['isolation']}")
    parents = cgroup_parents(s)
    lam = s.lambda_client()
    create_function(lam, "burst", "provided.al2023", "bootstrap", echo_zip, Timeout=60)

    # Snapshot what the sandboxes are while the burst runs: their processes, their network
    # namespaces and their host-side veth ends.
    seen_procs: set[tuple[int, str]] = set()
    seen_netns: set[str] = set()
    seen_veths: dict[Path, str] = {}
    done = threading.Event()

    def watch():
        while not done.is_set():
            procs = procs_in(groups_under(parents))
            seen_procs.update(procs)
            for pid, _ in procs:
                if (ns := netns_of(pid)) and ns != own_netns:
                    seen_netns.add(ns)
                    if (veth := host_interface(linked_address(pid))) and veth[1]:
                        seen_veths.setdefault(*veth)
            time.sleep(0.3)

    own_netns = netns_of(os.getpid())
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    results = concurrently(BURST, lambda i: invoke_raw(s, "burst", {"sleep_ms": 2000, "i": i}))
    done.set()
    watcher.join()
    errors = [error_of(*r) for r in results if r[0] != 200 or "x-amz-function-error" in r[1]]
    assert errors == [], f"{len(errors)} of {BURST} failed: {sorted(set(errors))}"
    assert len({json.loads(r[2])["requestId"] for r in results}) == BURST
    assert len(seen_netns) >= 100, f"only {len(seen_netns)} sandbox network namespaces seen during the burst"
    if "linked" in st["isolation"]:
        assert len(seen_veths) >= 100, f"only {len(seen_veths)} veth pairs seen during the burst"

    assert s.stop(timeout=30) == 0
    # Processes, cgroups and mount points go with the stop itself ...
    alive = [pid for pid, start in seen_procs if start_time(pid) == start]
    assert alive == [], f"{len(alive)} sandbox processes outlived the server: {alive[:10]}"
    left = groups_under(parents)
    assert left == [], f"cgroups left after the stop: {left[:5]}"
    assert mounts_under(s.data_dir) == [], "mount points left under the data directory"
    # ... network namespaces and their veth pairs as the kernel lets them go.
    # (A process of the server's that holds one is given a few seconds to finish exiting.)
    deadline = time.monotonic() + 15
    while (held := holders_of(seen_netns)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert held == [], f"network namespaces held after the stop: {held[:10]}"
    wait_for(lambda: all(ifindex(path) != index for path, index in seen_veths.items()), timeout=30,
             what=f"{len(seen_veths)} veth pairs gone")


# ---------------------------------------------------------------------------------------
# Past the server's limits
# ---------------------------------------------------------------------------------------

# AWS's reasons for a 429 on Invoke (botocore's lambda ThrottleReason).
THROTTLE_REASONS = {
    "ConcurrentInvocationLimitExceeded", "FunctionInvocationRateLimitExceeded",
    "ReservedFunctionConcurrentInvocationLimitExceeded", "ReservedFunctionInvocationRateLimitExceeded",
    "CallerRateLimitExceeded", "ConcurrentSnapshotCreateLimitExceeded",
}
NOFILE = 1024
SYNC, ASYNC = 150, 150


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_a_burst_past_the_descriptor_limit_is_throttled_and_every_accepted_event_runs(server_factory, echo_zip, nimbus_bin, tmp_path):
    # The server under a low descriptor limit (soft and hard: it cannot raise it).
    wrapper = tmp_path / "nimbus-low-nofile"
    wrapper.write_text(f'#!/bin/sh\nulimit -n {NOFILE} || exit 99\nexec "{nimbus_bin}" "$@"\n')
    wrapper.chmod(0o755)
    # --descriptor-limit 0: a root server would otherwise raise its hard limit itself.
    s = server_factory(args=["--async-retry-delay-ms", "200", "--descriptor-limit", "0"], start=False)
    s.bin = str(wrapper)
    s.start()
    pid = s.proc.pid
    lam, sqs = s.lambda_client(), s.sqs_client()
    create_function(lam, "burst", "provided.al2023", "bootstrap", echo_zip, Timeout=60)
    queue = sqs.create_queue(QueueName="ran")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    lam.put_function_event_invoke_config(FunctionName="burst", MaximumEventAgeInSeconds=3600,
                                         DestinationConfig={"OnSuccess": {"Destination": queue_arn}})
    assert invoke_raw(s, "burst", {})[0] == 200
    idle_fds = open_fds(pid)
    assert idle_fds < NOFILE / 2, f"the server needs {idle_fds} descriptors idle: raise NOFILE"

    # A burst of synchronous invocations (each holding an environment for 1.5 s) and
    # asynchronous events at once: far more environments than the descriptors allow.
    def one(i: int):
        if i % 2:
            return "event", i, invoke_raw(s, "burst", {"n": i, "sleep_ms": 200}, event=True, timeout=90)
        return "sync", i, invoke_raw(s, "burst", {"n": i, "sleep_ms": 1500}, timeout=90)

    results = concurrently(SYNC + ASYNC, one)
    assert s.proc.poll() is None, f"the server exited with {s.proc.returncode} during the burst"

    outcomes: dict[str, int] = {}
    accepted = set()
    answered = set()  # request ids of the synchronous invocations that ran
    for kind, i, (st, headers, body) in results:
        if kind == "event" and st == 202:
            accepted.add(i)
            continue
        if kind == "sync" and st == 200 and "x-amz-function-error" not in headers:
            outcomes["200"] = outcomes.get("200", 0) + 1
            answered.add(headers["x-amzn-requestid"])
            continue
        what = f"{kind} " + error_of(st, headers, body)
        outcomes[what] = outcomes.get(what, 0) + 1
        if st == 429:
            assert json.loads(body).get("Reason") in THROTTLE_REASONS, body
            assert headers.get("x-amzn-errortype", "").startswith("TooManyRequestsException"), headers
        else:
            # No other answer but a clean AWS error: never a dropped connection or a hang.
            assert st >= 400 and (headers.get("x-amzn-errortype") or json.loads(body).get("Type")), (kind, st, headers, body[:300])
    print(f"outcomes: {outcomes}; {len(accepted)} events accepted")
    throttled = sum(n for k, n in outcomes.items() if " 429 " in f" {k} ")
    assert throttled > 0, f"the burst never reached the limit: {outcomes}"
    assert outcomes.get("200", 0) > 0, f"nothing succeeded: {outcomes}"
    assert len(accepted) > ASYNC / 2, f"only {len(accepted)} of {ASYNC} events accepted: {outcomes}"

    # The server serves normally again once the burst is over ...
    wait_for(lambda: invoke_raw(s, "burst", {"after": 1}, timeout=30)[0] == 200, timeout=60, what="a normal invocation after the burst")
    assert lam.get_function(FunctionName="burst")["Configuration"]["State"] == "Active"
    # ... and every event it acknowledged has run (its OnSuccess record is in the queue).
    ran: set[int] = set()

    def all_ran():
        for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            ran.add(json.loads(m["Body"])["requestPayload"]["n"])
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
        return accepted <= ran

    wait_for(all_ran, timeout=180, interval=0.1, what=f"all {len(accepted)} accepted events to run ({len(accepted - ran)} left)")
    assert ran <= accepted
    # Every invocation that ran is in the function's log, even those whose stream was
    # written while the server had no descriptor to spare.
    logs = s.logs_client()
    reported: set[str] = set()
    started = time.monotonic()

    def all_reported():
        for page in logs.get_paginator("filter_log_events").paginate(logGroupName="/aws/lambda/burst", filterPattern='"REPORT RequestId"'):
            reported.update(e["message"].split()[2] for e in page["events"])
        return answered <= reported

    try:
        wait_for(all_reported, timeout=60, interval=0.5, what="a REPORT line for each answered invocation")
    except AssertionError as e:
        raise AssertionError(f"{len(answered - reported)} of {len(answered)} answered invocations have no REPORT line") from e
    print(f"every REPORT line was there after {time.monotonic() - started:.1f} s")
    assert s.proc.poll() is None


def max_open_files(pid: int) -> tuple[int, int]:
    for line in open(f"/proc/{pid}/limits"):
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no Max open files line")


def has_sys_resource() -> bool:
    for line in open("/proc/self/status"):
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) & (1 << 24))  # CAP_SYS_RESOURCE
    return False


def test_a_server_allowed_to_raises_its_own_descriptor_limit(server_factory, nimbus_bin, tmp_path):
    """Started under a hard limit of 2,048: a server with CAP_SYS_RESOURCE raises it itself
    (to fs.nr_open, at most 2^20, or to --descriptor-limit); --descriptor-limit 0, or a
    server without the capability (as on the development VM, whose sandbox drops it), keeps
    what it was given."""
    wrapper = tmp_path / "nimbus-2048"
    wrapper.write_text(f'#!/bin/sh\nulimit -n 2048 || exit 99\nexec "{nimbus_bin}" "$@"\n')
    wrapper.chmod(0o755)
    nr_open = int(open("/proc/sys/fs/nr_open").read())
    can = has_sys_resource()
    cases = [([], (min(nr_open, 1 << 20),) * 2 if can else (2048, 2048)),
             (["--descriptor-limit", "0"], (2048, 2048)),
             (["--descriptor-limit", "4096"], (4096, 4096) if can else (2048, 2048))]
    for args, expected in cases:
        s = server_factory(args=args, start=False)
        s.bin = str(wrapper)
        s.start()
        try:
            assert max_open_files(s.proc.pid) == expected, (args, can)
        finally:
            s.stop()


def test_process_isolation_starts_runtimes_while_the_server_holds_over_1024_descriptors(server_factory, echo_zip):
    """In process isolation a runtime is forked from the server and given AWS's 1,024
    descriptors before it execs; it joined its cgroups after that, opening each cgroup's
    file in a copy of the server's descriptor table, so once the server held more than
    1,024 every start failed with EMFILE (throttled as 429). Idle connections hold the
    server's descriptors here."""
    import resource
    import socket

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 1400
    if hard != resource.RLIM_INFINITY and hard < want:
        pytest.skip(f"this process may open only {hard} descriptors")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    s = server_factory(args=["--isolation", "process"])
    lam = s.lambda_client()
    create_function(lam, "many-fds", "provided.al2023", "bootstrap", echo_zip)
    host, port = s.endpoint.removeprefix("http://").split(":")
    held = []
    try:
        for _ in range(1200):
            held.append(socket.create_connection((host, int(port)), timeout=10))
        wait_for(lambda: open_fds(s.proc.pid) > 1100, timeout=30, what="the server to hold the connections")
        st, headers, body = invoke_raw(s, "many-fds", {"n": 1})
        assert st == 200 and "x-amz-function-error" not in headers, error_of(st, headers, body)
    finally:
        for c in held:
            c.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# ---------------------------------------------------------------------------------------
# The init bound
# ---------------------------------------------------------------------------------------


INIT_SECONDS = 2.0


def inits_at_once(server, name: str, n: int) -> tuple[float, list[float]]:
    """Wall time of n concurrent first invocations of `name` (each starts an environment of
    its own, whose init takes INIT_SECONDS), and each one's Init Duration in seconds."""
    began = time.monotonic()
    answers = concurrently(n, lambda i: invoke_raw(server, name, {"i": i}, tail=True))
    took = time.monotonic() - began
    assert [st for st, _, _ in answers] == [200] * n, [error_of(*a) for a in answers]
    inits = []
    for _, headers, _ in answers:
        tail = base64.b64decode(headers["x-amz-log-result"]).decode()
        reports = [m for m in map(REPORT_RE.match, tail.splitlines()) if m]
        assert reports and reports[-1]["init"], tail
        inits.append(float(reports[-1]["init"]) / 1000)
    return took, inits


def test_the_init_bound_holds_starts_of_every_runtime(server_factory, echo_zip):
    """`--max-initializing 1`: one environment started for invocations initializes at a time,
    whatever its runtime; the next one's start waits for the first one's init to end."""
    if os.geteuid() != 0:
        pytest.skip("sandboxes need root (namespaces and cgroups)")
    # No prestarted runtimes: every environment is a fresh start, which the bound covers.
    s = server_factory(args=["--max-initializing", "1", "--prestart", "0", "--prestart-max", "0"])
    if not status(s)["isolation"].startswith("namespaces"):
        pytest.skip("this server runs without namespaces")
    lam = s.lambda_client()
    echo = zipfile.ZipFile(io.BytesIO(echo_zip)).read("bootstrap")
    slow_native = make_zip({
        "bootstrap": f"#!/bin/sh\nsleep {INIT_SECONDS}\nexec /var/task/echo\n",
        "echo": Entry(echo, 0o755),
    })
    create_function(lam, "slow-native", "provided.al2023", "bootstrap", slow_native, Timeout=60)
    create_function(lam, "slow-python", "python3.11", "app.handler",
                    make_zip({"app.py": f"import time\ntime.sleep({INIT_SECONDS})\n\ndef handler(e, c):\n    return e\n"}),
                    Timeout=60)

    for name in ("slow-native", "slow-python"):
        took, inits = inits_at_once(s, name, 2)
        assert took >= 2 * INIT_SECONDS - 0.1, f"2 inits of {name} took {took:.1f} s: they ran at once past the bound"
        # The second one's wait for its turn is not its init: its clock starts at the gate.
        assert all(INIT_SECONDS - 0.1 <= d < 2 * INIT_SECONDS - 0.5 for d in inits), (name, inits)


# ---------------------------------------------------------------------------------------
# The burst bench's isolation floor
# ---------------------------------------------------------------------------------------

def test_the_burst_bench_measures_its_isolation_floor_and_leaves_nothing_behind(nimbus_bin, rust_echo_bootstrap):
    """`nimbus-bench --burst N` makes N environments' namespaces, veth pairs and cgroups with
    no server, starts a runtime in each and waits for each one's first request; its bridge,
    groups and roots are gone when it ends."""
    if os.geteuid() != 0:
        pytest.skip("the floor needs root (namespaces, veth pairs and cgroups)")
    import subprocess

    bench = Path(nimbus_bin).with_name("nimbus-bench")
    if not bench.exists():
        pytest.skip(f"{bench} is not built")
    n = 16
    out = subprocess.run(
        [str(bench), "--nimbus", nimbus_bin, "--echo", rust_echo_bootstrap, "--burst", str(n)],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    rows = [line for line in out.stdout.splitlines() if line.startswith("| provided.al2023 |")]
    assert len(rows) == 2, out.stdout
    burst, floor = ([c.strip() for c in row.strip("|").split("|")] for row in rows)
    assert burst[1:3] == [str(n), "0"], rows[0]
    # made, time to make them, 1 s + that
    assert floor[1] == str(n), out.stdout
    assert "stopped early" not in out.stdout, out.stdout
    made_ms = float(floor[2].removesuffix(" ms"))
    assert 0 < made_ms < 60_000 and float(floor[3].removesuffix(" ms")) == pytest.approx(1000 + made_ms, abs=0.2)
    assert not [link for link in os.listdir("/sys/class/net") if link.startswith("nbfloor0")]
    assert not list(Path("/sys/fs/cgroup").glob("*/nimbus-bench-floor")) + list(Path("/sys/fs/cgroup").glob("nimbus-bench-floor"))
    import tempfile

    assert not list(Path(tempfile.gettempdir()).glob("nimbus-bench-floor-*"))

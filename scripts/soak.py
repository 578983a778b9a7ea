"""The Nimbus soak (run through scripts/soak): a real release server under a constant mix of
load for a set time, with environment churn, sampled every 30 s, to show that nothing the
server holds grows without bound under steady load (issue 19 item 9).

The mix, spread over --workers threads at --rate operations per second: synchronous invokes
over the functions (Python and Node), asynchronous (Event) invokes, SQS sends consumed by an
event source mapping, SNS publishes to a Lambda subscription, PutEvents matched by a rule,
function URL and HTTP API requests, failing invocations (errors, crashes, failing async
events without retries), log queries (FilterLogEvents, GetLogEvents), and a redeploy
(UpdateFunctionCode, which retires the function's environments) every --redeploy-every
seconds. A rate(1 minute) schedule fires throughout.

Every function logs `SOAKID <kind> <id>` for each id it was given; at the end the soak waits
for the queues to drain and checks, by FilterLogEvents, that each id acknowledged by the
server (a 202 Event invoke, a SendMessage, a Publish, a PutEvents entry) ran exactly once.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from botocore.exceptions import ClientError  # noqa: E402

import helpers  # noqa: E402
from helpers import ACCOUNT, REGION, Server, boto_client, create_function, http_request, make_zip, public_url  # noqa: E402

SAMPLE_EVERY = 30.0

PY_HANDLER = """
import json, os

def ids_of(event):
    if not isinstance(event, dict):
        return []
    out = []
    for r in event.get("Records") or []:
        if r.get("eventSource") == "aws:sqs":
            out.append(("sqs", json.loads(r["body"])["id"]))
        elif r.get("EventSource") == "aws:sns":
            out.append(("sns", json.loads(r["Sns"]["Message"])["id"]))
    if event.get("source") == "soak.app":
        out.append(("events", event["detail"]["id"]))
    elif event.get("source") == "aws.events":
        out.append(("schedule", event["id"]))
    if "soak_id" in event:
        out.append((event.get("kind", "async"), event["soak_id"]))
    return out

def handler(event, context):
    for kind, i in ids_of(event):
        print("SOAKID", kind, i)
    if isinstance(event, dict):
        if event.get("crash"):
            os._exit(3)
        if event.get("fail"):
            raise RuntimeError("soak: asked to fail")
        if "requestContext" in event:
            return {"statusCode": 200, "body": json.dumps({"path": event.get("rawPath"), "rev": REV})}
    return {"ok": True, "rev": REV, "fn": context.function_name}
"""

NODE_HANDLER = """
function idsOf(event) {
  const out = [];
  if (!event || typeof event !== "object") return out;
  for (const r of event.Records || []) {
    if (r.eventSource === "aws:sqs") out.push(["sqs", JSON.parse(r.body).id]);
    else if (r.EventSource === "aws:sns") out.push(["sns", JSON.parse(r.Sns.Message).id]);
  }
  if (event.source === "soak.app") out.push(["events", event.detail.id]);
  else if (event.source === "aws.events") out.push(["schedule", event.id]);
  if (event.soak_id !== undefined) out.push([event.kind || "async", event.soak_id]);
  return out;
}
exports.handler = async (event, context) => {
  for (const [kind, id] of idsOf(event)) console.log("SOAKID", kind, id);
  if (event && event.crash) process.exit(3);
  if (event && event.fail) throw new Error("soak: asked to fail");
  if (event && event.requestContext) return { statusCode: 200, body: JSON.stringify({ path: event.rawPath, rev: REV }) };
  return { ok: true, rev: REV, fn: context.functionName };
};
"""


def code(runtime: str, rev: int) -> tuple[bytes, str]:
    """The zip of a function's code at revision `rev` (each revision is a new digest)."""
    if runtime.startswith("python"):
        return make_zip({"app.py": f"REV = {rev}\n" + PY_HANDLER}), "app.handler"
    return make_zip({"index.js": f"const REV = {rev};\n" + NODE_HANDLER}), "index.handler"


# ---------------------------------------------------------------------------------------
# Sampling the server from the outside
# ---------------------------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, str]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children[ppid].append(int(d))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def interfaces_in(dev_file_text: str) -> int:
    """Interfaces other than loopback in a /proc/net/dev listing."""
    return sum(1 for line in dev_file_text.splitlines()[2:] if line.split(":", 1)[0].strip() not in ("", "lo"))


def netns_and_veths(pids: list[int], server: int) -> tuple[int, int]:
    """Network namespaces other than the server's own, held by its descendants or by its fds
    (the linker's ready namespaces), and the veths in them (a linked namespace has one end
    of its pair inside; counting them there leaves out other servers' on the same host)."""
    try:
        host = os.readlink(f"/proc/{server}/ns/net")
    except OSError:
        return 0, 0
    where: dict[str, str] = {}  # netns -> a way to read its /proc/net/dev
    for p in pids:
        try:
            where.setdefault(os.readlink(f"/proc/{p}/ns/net"), f"pid:{p}")
        except OSError:
            pass
    try:
        for fd in os.listdir(f"/proc/{server}/fd"):
            try:
                target = os.readlink(f"/proc/{server}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("net:["):
                where.setdefault(target, f"fd:{fd}")
    except OSError:
        pass
    where.pop(host, None)
    veths = 0
    for how in where.values():
        kind, n = how.split(":")
        try:
            if kind == "pid":
                with open(f"/proc/{n}/net/dev") as f:
                    text = f.read()
            else:
                text = subprocess.run(["nsenter", f"--net=/proc/{server}/fd/{n}", "cat", "/proc/net/dev"],
                                      capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        veths += interfaces_in(text)
    return len(where), veths


def cgroup_instance(data_dir: Path) -> str | None:
    """Our server's cgroup set: the claim file in /run/nimbus/cgroups that names our data dir."""
    claims = Path("/run/nimbus/cgroups")
    if not claims.is_dir():
        return None
    for f in claims.glob("*.lock"):
        try:
            if str(data_dir.resolve()) in f.read_text():
                return f.stem
        except OSError:
            pass
    return None


def cgroup_count(instance: str | None) -> int:
    """Groups under our set, in the hierarchy that holds the memory controller (each
    environment has one group per hierarchy)."""
    if instance is None:
        return -1
    for base in (Path("/sys/fs/cgroup/memory"), Path("/sys/fs/cgroup")):
        top = base / f"nimbus-{instance}"
        if top.is_dir():
            return sum(1 for _root, dirs, _files in os.walk(top) for _ in dirs)
    return -1


def dir_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total


class Sample:
    FIELDS = ["t", "rss_mb", "anon_mb", "fds", "threads", "procs", "cgroups", "veths", "netns", "data_mb", "logs_mb", "ops", "errors"]

    def __init__(self, **kw):
        self.__dict__.update(kw)

    @staticmethod
    def header() -> str:
        return (f"{'elapsed':>8} {'RSS MB':>7} {'anon':>5} {'fds':>5} {'thr':>4} {'procs':>5} {'cgrp':>5} {'veths':>5} {'netns':>5} "
                f"{'data MB':>8} {'logs MB':>8} {'ops/30s':>8} {'err/30s':>7}  mix (ok/err since last line)")

    def line(self, mix: str) -> str:
        m, s = divmod(int(self.t), 60)
        return (f"{m:>5}:{s:02d} {self.rss_mb:>7.1f} {self.anon_mb:>5.1f} {self.fds:>5} {self.threads:>4} {self.procs:>5} {self.cgroups:>5} "
                f"{self.veths:>5} {self.netns:>5} {self.data_mb:>8.1f} {self.logs_mb:>8.1f} {self.ops:>8} {self.errors:>7}  {mix}")


def sample(server: Server, instance: str | None, t: float, ops: int, errors: int) -> Sample:
    pid = server.proc.pid
    st = proc_status(pid)
    kids = descendants(pid)
    netns, veths = netns_and_veths(kids, pid)
    logs = server.data_dir / "logs"
    total = dir_size(server.data_dir)
    logs_size = dir_size(logs) if logs.is_dir() else 0
    return Sample(
        t=t,
        rss_mb=int(st["VmRSS"].split()[0]) / 1024,
        anon_mb=int(st["RssAnon"].split()[0]) / 1024,
        fds=len(os.listdir(f"/proc/{pid}/fd")),
        threads=int(st["Threads"]),
        procs=len(kids),
        cgroups=cgroup_count(instance),
        veths=veths,
        netns=netns,
        data_mb=(total - logs_size) / 2**20,
        logs_mb=logs_size / 2**20,
        ops=ops,
        errors=errors,
    )


# ---------------------------------------------------------------------------------------
# The load
# ---------------------------------------------------------------------------------------


class Ledger:
    """What the load did: counts per action, and the ids the server acknowledged."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ok: Counter = Counter()
        self.err: Counter = Counter()
        self.last_err: dict[str, str] = {}
        self.acked: dict[str, set[str]] = defaultdict(set)  # kind -> ids
        self.acked_fail_async: set[str] = set()

    def done(self, action: str, ok: bool, error: str | None = None):
        with self.lock:
            (self.ok if ok else self.err)[action] += 1
            if error:
                self.last_err[action] = error[:300]

    def ack(self, kind: str, ident: str):
        with self.lock:
            self.acked[kind].add(ident)

    def window(self, prev: tuple[Counter, Counter]) -> tuple[int, int, str, tuple[Counter, Counter]]:
        with self.lock:
            ok, err = Counter(self.ok), Counter(self.err)
        d_ok, d_err = ok - prev[0], err - prev[1]
        mix = " ".join(f"{k}={d_ok[k]}" + (f"/{d_err[k]}" if d_err[k] else "") for k in sorted(set(d_ok) | set(d_err)))
        return sum(d_ok.values()), sum(d_err.values()), mix, (ok, err)


class Setup:
    """The functions and the triggers the load drives."""

    def __init__(self, server: Server, runtimes: list[str], n_functions: int):
        self.server = server
        lam = server.lambda_client()
        self.functions: list[tuple[str, str]] = []  # (name, runtime)
        self.revs: dict[str, int] = {}
        for i in range(n_functions):
            runtime = runtimes[i % len(runtimes)]
            name = f"soak-{i:02d}-{'py' if runtime.startswith('python') else 'node'}"
            zip_bytes, handler = code(runtime, 0)
            create_function(lam, name, runtime, handler, zip_bytes, MemorySize=128, Timeout=10)
            self.functions.append((name, runtime))
            self.revs[name] = 0
        for name, _ in self.functions:  # each has its log group before the load queries it
            lam.invoke(FunctionName=name, Payload=b"{}")["Payload"].read()
        names = [n for n, _ in self.functions]
        # Roles: the first few functions front the triggers; all take sync and async invokes.
        self.sqs_fn, self.sns_fn, self.events_fn, self.schedule_fn, self.url_fn, self.http_fn, self.fail_async_fn = (
            names[0], names[1 % len(names)], names[2 % len(names)], names[3 % len(names)], names[4 % len(names)],
            names[5 % len(names)], names[6 % len(names)])
        # A failing async event is not retried, so it must run exactly once too.
        lam.put_function_event_invoke_config(FunctionName=self.fail_async_fn, MaximumRetryAttempts=0)

        sqs = server.sqs_client()
        self.queue_url = sqs.create_queue(QueueName="soak-jobs", Attributes={"VisibilityTimeout": "120"})["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=self.sqs_fn, BatchSize=10)

        sns = server.sns_client()
        self.topic_arn = sns.create_topic(Name="soak-topic")["TopicArn"]
        lam.add_permission(FunctionName=self.sns_fn, StatementId="sns", Action="lambda:InvokeFunction",
                           Principal="sns.amazonaws.com", SourceArn=self.topic_arn)
        sns.subscribe(TopicArn=self.topic_arn, Protocol="lambda", Endpoint=helpers.arn(self.sns_fn))

        events = server.events_client()
        for rule, kw, fn in (("soak-app", {"EventPattern": json.dumps({"source": ["soak.app"]})}, self.events_fn),
                             ("soak-minute", {"ScheduleExpression": "rate(1 minute)"}, self.schedule_fn)):
            rule_arn = events.put_rule(Name=rule, **kw)["RuleArn"]
            lam.add_permission(FunctionName=fn, StatementId=f"events-{rule}", Action="lambda:InvokeFunction",
                               Principal="events.amazonaws.com", SourceArn=rule_arn)
            events.put_targets(Rule=rule, Targets=[{"Id": "fn", "Arn": helpers.arn(fn)}])

        self.url = public_url(lam, FunctionName=self.url_fn)["FunctionUrl"]
        apigw = boto_client("apigatewayv2", server.endpoint)
        api_id = apigw.create_api(Name="soak", ProtocolType="HTTP", Target=helpers.arn(self.http_fn))["ApiId"]
        lam.add_permission(FunctionName=self.http_fn, StatementId="apigw", Action="lambda:InvokeFunction",
                           Principal="apigateway.amazonaws.com")
        self.api_url = f"{server.endpoint}/_aws/execute-api/{api_id}"
        self.deploy_lock = threading.Lock()


class Load:
    """One worker's clients and actions."""

    def __init__(self, setup: Setup, ledger: Ledger, rng: random.Random):
        s = setup.server
        self.setup, self.ledger, self.rng = setup, ledger, rng
        self.lam, self.logs = s.lambda_client(), s.logs_client()
        self.sqs, self.sns, self.events = s.sqs_client(), s.sns_client(), s.events_client()
        self.names = [n for n, _ in setup.functions]

    def fn(self) -> str:
        return self.rng.choice(self.names)

    def invoke(self):
        r = self.lam.invoke(FunctionName=self.fn(), Payload=json.dumps({"n": self.rng.random()}).encode())
        r["Payload"].read()
        if r.get("FunctionError"):
            raise RuntimeError(f"unexpected function error {r['FunctionError']}")

    def invoke_fail(self):
        crash = self.rng.random() < 0.3
        r = self.lam.invoke(FunctionName=self.fn(), Payload=json.dumps({"crash": True} if crash else {"fail": True}).encode())
        r["Payload"].read()
        if r.get("FunctionError") is None:
            raise RuntimeError("a failing invocation succeeded")

    def invoke_async(self):
        ident = uuid.uuid4().hex
        r = self.lam.invoke(FunctionName=self.fn(), InvocationType="Event", Payload=json.dumps({"soak_id": ident}).encode())
        if r["StatusCode"] == 202:
            self.ledger.ack("async", ident)

    def invoke_async_fail(self):
        ident = uuid.uuid4().hex
        r = self.lam.invoke(FunctionName=self.setup.fail_async_fn, InvocationType="Event",
                            Payload=json.dumps({"soak_id": ident, "kind": "async-fail", "fail": True}).encode())
        if r["StatusCode"] == 202:
            self.ledger.ack("async-fail", ident)

    def sqs_send(self):
        ident = uuid.uuid4().hex
        self.sqs.send_message(QueueUrl=self.setup.queue_url, MessageBody=json.dumps({"id": ident}))
        self.ledger.ack("sqs", ident)

    def sns_publish(self):
        ident = uuid.uuid4().hex
        self.sns.publish(TopicArn=self.setup.topic_arn, Message=json.dumps({"id": ident}))
        self.ledger.ack("sns", ident)

    def put_events(self):
        idents = [uuid.uuid4().hex for _ in range(self.rng.randint(1, 3))]
        r = self.events.put_events(Entries=[{"Source": "soak.app", "DetailType": "soak", "Detail": json.dumps({"id": i})}
                                            for i in idents])
        for i, e in zip(idents, r["Entries"]):
            if "EventId" in e:
                self.ledger.ack("events", i)
        if r.get("FailedEntryCount"):
            raise RuntimeError(f"PutEvents: {r['FailedEntryCount']} failed")

    def url_request(self):
        status, _, body = http_request(f"{self.setup.url}p/{self.rng.randint(0, 9)}", "POST", b'{"k": 1}',
                                       {"content-type": "application/json"})
        if status != 200:
            raise RuntimeError(f"function URL answered {status}: {body[:200]!r}")

    def http_api_request(self):
        status, _, body = http_request(f"{self.setup.api_url}/items/{self.rng.randint(0, 99)}")
        if status != 200:
            raise RuntimeError(f"HTTP API answered {status}: {body[:200]!r}")

    def filter_logs(self):
        self.logs.filter_log_events(logGroupName=f"/aws/lambda/{self.fn()}", filterPattern='"SOAKID"', limit=50,
                                    startTime=int((time.time() - 120) * 1000))

    def get_logs(self):
        group = f"/aws/lambda/{self.fn()}"
        streams = self.logs.describe_log_streams(logGroupName=group, orderBy="LastEventTime", descending=True, limit=1)
        for st in streams["logStreams"]:
            self.logs.get_log_events(logGroupName=group, logStreamName=st["logStreamName"], limit=50, startFromHead=False)

    ACTIONS = {
        # name: weight
        "invoke": 40, "invoke_fail": 4, "invoke_async": 10, "invoke_async_fail": 2, "sqs_send": 10, "sns_publish": 6,
        "put_events": 6, "url_request": 8, "http_api_request": 8, "filter_logs": 3, "get_logs": 3,
    }


def redeploy(setup: Setup, lam, name: str) -> None:
    runtime = dict(setup.functions)[name]
    with setup.deploy_lock:
        setup.revs[name] += 1
        rev = setup.revs[name]
    zip_bytes, _ = code(runtime, rev)
    lam.update_function_code(FunctionName=name, ZipFile=zip_bytes)
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})


def worker(setup: Setup, ledger: Ledger, actions: list[str], weights: list[int], rate: float, stop: threading.Event,
           seed: int):
    rng = random.Random(seed)
    load = Load(setup, ledger, rng)
    next_at = time.monotonic()
    while not stop.is_set():
        action = rng.choices(actions, weights)[0]
        try:
            getattr(load, action)()
            ledger.done(action, True)
        except Exception as e:  # noqa: BLE001 - every failure is counted and shown, none stops the soak
            ledger.done(action, False, f"{type(e).__name__}: {e}")
        next_at += rng.expovariate(rate)
        delay = next_at - time.monotonic()
        if delay > 0:
            stop.wait(delay)
        elif delay < -5:
            next_at = time.monotonic()  # behind: do not burst to catch up


def redeployer(setup: Setup, ledger: Ledger, every: float, stop: threading.Event):
    lam = setup.server.lambda_client()
    names = [n for n, _ in setup.functions]
    i = 0
    while not stop.wait(every):
        name = names[i % len(names)]
        i += 1
        try:
            redeploy(setup, lam, name)
            ledger.done("redeploy", True)
        except Exception as e:  # noqa: BLE001
            ledger.done("redeploy", False, f"{type(e).__name__}: {e}")


# ---------------------------------------------------------------------------------------
# Exactly once
# ---------------------------------------------------------------------------------------


def seen_ids(server: Server, names: list[str]) -> dict[str, Counter]:
    """kind -> Counter(id -> times a function logged it), from every function's log group."""
    logs = server.logs_client()
    out: dict[str, Counter] = defaultdict(Counter)
    for name in names:
        kw = {"logGroupName": f"/aws/lambda/{name}", "filterPattern": '"SOAKID"'}
        while True:
            try:
                page = logs.filter_log_events(**kw)
            except ClientError as e:
                if e.response["Error"]["Code"] == "ResourceNotFoundException":
                    break
                raise
            for ev in page["events"]:
                # Node's console.log puts its time, request id and level first.
                parts = ev["message"].split()
                if "SOAKID" in parts[:-2]:
                    at = parts.index("SOAKID")
                    out[parts[at + 1]][parts[at + 2]] += 1
            if "nextToken" not in page:
                break
            kw["nextToken"] = page["nextToken"]
    return out


def check_once(server: Server, setup: Setup, ledger: Ledger, drain_timeout: float) -> bool:
    names = [n for n, _ in setup.functions]
    kinds = ["async", "async-fail", "sqs", "sns", "events"]
    deadline = time.monotonic() + drain_timeout
    while True:
        seen = seen_ids(server, names)
        missing = {k: len(ledger.acked[k] - set(seen[k])) for k in kinds}
        if not any(missing.values()) or time.monotonic() > deadline:
            break
        print(f"  draining: still to run {missing}", flush=True)
        time.sleep(10)
    time.sleep(5)  # a late duplicate would show now
    seen = seen_ids(server, names)
    ok = True
    print("\nexactly once (acknowledged ids vs SOAKID lines in the functions' logs):")
    for k in kinds:
        acked = ledger.acked[k]
        counts = seen[k]
        missing = len(acked - set(counts))
        dups = sum(1 for i in acked if counts.get(i, 0) > 1)
        unknown = len(set(counts) - acked)
        good = missing == 0 and dups == 0 and unknown == 0
        ok &= good
        print(f"  {k:<11} acknowledged {len(acked):>7}  ran once {sum(1 for i in acked if counts.get(i) == 1):>7}  "
              f"missing {missing}  duplicated {dups}  unacknowledged {unknown}  {'ok' if good else 'FAIL'}")
    print(f"  schedule    fired {len(seen['schedule'])} times (rate(1 minute))")
    return ok


# ---------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------


def slope_per_min(samples: list[Sample], field: str) -> float:
    """Least-squares slope of a field against elapsed minutes."""
    if len(samples) < 2:
        return 0.0
    xs = [s.t / 60 for s in samples]
    ys = [float(getattr(s, field)) for s in samples]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


def runtimes_available(bin_path: str, env: dict[str, str]) -> set[str]:
    out = subprocess.run([bin_path, "runtimes", "--output", "json"], capture_output=True, text=True, env=env, timeout=30)
    try:
        return {e["runtime"] for e in json.loads(out.stdout) if e.get("available", e.get("interpreter"))}
    except (ValueError, KeyError, TypeError):
        return set()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=20.0, help="how long the load runs (default 20)")
    p.add_argument("--warmup", type=float, default=3.0, help="minutes before the summary's first figures (default 3)")
    p.add_argument("--rate", type=float, default=24.0, help="operations per second over all workers (default 24)")
    p.add_argument("--workers", type=int, default=6, help="threads issuing the load (default 6)")
    p.add_argument("--functions", type=int, default=20, help="functions deployed (default 20, half Python, half Node)")
    p.add_argument("--redeploy-every", type=float, default=50.0, help="seconds between redeploys (default 50; 0 = none)")
    p.add_argument("--idle-timeout", type=int, default=120,
                   help="the server's --idle-timeout: seconds a warm environment is kept (default 120, so that "
                        "environments are reaped and started again many times within the run)")
    p.add_argument("--only", default="", help="comma-separated actions to run (default: the whole mix)")
    p.add_argument("--without", default="", help="comma-separated actions to leave out of the mix")
    p.add_argument("--bin", default=os.environ.get("NIMBUS_BIN", str(ROOT / "target" / "release" / "nimbus")))
    p.add_argument("--server-arg", action="append", default=[], help="an extra argument for `nimbus server` (repeatable)")
    p.add_argument("--keep", action="store_true", help="keep the data directory and the server log")
    p.add_argument("--csv", help="also write every sample to this CSV file")
    args = p.parse_args()

    if not os.access(args.bin, os.X_OK):
        print(f"no nimbus binary at {args.bin}: cargo build --release -p nimbus (or --bin / NIMBUS_BIN)", file=sys.stderr)
        return 2
    actions = dict(Load.ACTIONS)
    if args.only:
        actions = {k: v for k, v in actions.items() if k in args.only.split(",")}
    for k in filter(None, args.without.split(",")):
        actions.pop(k, None)
    unknown = set(filter(None, (args.only + "," + args.without).split(","))) - set(Load.ACTIONS)
    if unknown or not actions:
        print(f"unknown actions {sorted(unknown)}; the mix: {', '.join(Load.ACTIONS)}", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="nimbus-soak-"))
    data_dir, log_path = work / "data", work / "server.log"
    env = helpers.server_env()
    server_args = ["--async-retry-delay-ms", "1000", "--idle-timeout", str(args.idle_timeout)]
    have = runtimes_available(args.bin, env)
    runtimes = [r for r in ("python3.12", "python3.11", "python3.13") if r in have][:1]
    if os.environ.get("NODE22"):  # as scripts/test passes it
        server_args += ["--runtime-path", f"nodejs22.x={os.environ['NODE22']}"]
        runtimes.append("nodejs22.x")
    else:
        runtimes += [r for r in ("nodejs22.x", "nodejs20.x") if r in have][:1]
    if not runtimes:
        print("no Python or Node runtime found (`nimbus runtimes`)", file=sys.stderr)
        return 2
    server = Server(args.bin, data_dir, log_path, args=server_args + args.server_arg, name="soak")
    server.start(timeout=30)
    pid = server.proc.pid
    print(f"nimbus soak: server pid {pid} on {server.endpoint}, data {data_dir}, log {log_path}")
    print(f"  {args.minutes:g} min at {args.rate:g} ops/s over {args.workers} workers, {args.functions} functions "
          f"({', '.join(runtimes)}), redeploy every {args.redeploy_every:g} s; mix: "
          + ", ".join(f"{k} {v}" for k, v in actions.items()), flush=True)
    instance = cgroup_instance(data_dir)
    ledger = Ledger()
    samples: list[Sample] = []
    ok = True
    try:
        t_setup = time.monotonic()
        setup = Setup(server, runtimes, args.functions)
        print(f"  set up in {time.monotonic() - t_setup:.1f} s: {args.functions} functions, SQS mapping, SNS subscription, "
              "event rule, schedule, function URL, HTTP API\n", flush=True)
        print(Sample.header(), flush=True)
        stop = threading.Event()
        names, weights = list(actions), list(actions.values())
        threads = [threading.Thread(target=worker, args=(setup, ledger, names, weights, args.rate / args.workers, stop, i),
                                    daemon=True) for i in range(args.workers)]
        if args.redeploy_every > 0:
            threads.append(threading.Thread(target=redeployer, args=(setup, ledger, args.redeploy_every, stop), daemon=True))
        t0 = time.monotonic()
        for t in threads:
            t.start()
        prev = (Counter(), Counter())
        s = sample(server, instance, 0.0, 0, 0)
        samples.append(s)
        print(s.line(""), flush=True)
        end = t0 + args.minutes * 60
        next_sample = t0 + SAMPLE_EVERY
        while time.monotonic() < end:
            time.sleep(max(0.0, min(next_sample, end) - time.monotonic()))
            if server.proc.poll() is not None:
                print(f"server exited with {server.proc.returncode}:\n{server.log_tail()}")
                return 1
            if time.monotonic() >= next_sample - 0.01:
                n_ok, n_err, mix, prev = ledger.window(prev)
                s = sample(server, instance, time.monotonic() - t0, n_ok, n_err)
                samples.append(s)
                print(s.line(mix), flush=True)
                next_sample += SAMPLE_EVERY
        if time.monotonic() >= next_sample - 0.5:  # the sample due at the end
            n_ok, n_err, mix, prev = ledger.window(prev)
            s = sample(server, instance, time.monotonic() - t0, n_ok, n_err)
            samples.append(s)
            print(s.line(mix), flush=True)
        stop.set()
        for t in threads:
            t.join(timeout=90)
        t_stop = time.monotonic()
        n_ok, n_err, mix, prev = ledger.window(prev)
        print(f"  load stopped at {(t_stop - t0) / 60:.1f} min ({n_ok} ok, {n_err} errors since the last line)", flush=True)

        ok = check_once(server, setup, ledger, drain_timeout=180)
        time.sleep(max(0.0, t_stop + 60 - time.monotonic()))
        idle = sample(server, instance, time.monotonic() - t0, 0, 0)
        print(f"\n60 s after the load stopped:\n{Sample.header()}\n{idle.line('(idle)')}")

        with ledger.lock:
            total_ok, total_err = sum(ledger.ok.values()), sum(ledger.err.values())
            errs = dict(ledger.err)
            last_err = dict(ledger.last_err)
        print(f"\nrequests: {total_ok} ok, {total_err} errors" + (f" {errs}" if errs else ""))
        for k, v in last_err.items():
            print(f"  last error of {k}: {v}")
        warm = [s for s in samples if s.t >= args.warmup * 60]
        if len(warm) >= 2:
            first, last = warm[0], warm[-1]
            print(f"\nafter warm-up ({args.warmup:g} min): first vs last sample, least-squares slope per minute")
            for f, unit in (("rss_mb", "MB"), ("anon_mb", "MB"), ("fds", ""), ("threads", ""), ("procs", ""), ("cgroups", ""), ("veths", ""),
                            ("netns", ""), ("data_mb", "MB"), ("logs_mb", "MB")):
                a, b = getattr(first, f), getattr(last, f)
                print(f"  {f:<8} {a:>8.1f} -> {b:>8.1f}   slope {slope_per_min(warm, f):+.3f}{unit}/min   "
                      f"(min {min(getattr(s, f) for s in warm):.1f}, max {max(getattr(s, f) for s in warm):.1f})")
        if args.csv:
            with open(args.csv, "w") as f:
                f.write(",".join(Sample.FIELDS) + "\n")
                for s in samples + [idle]:
                    f.write(",".join(str(getattr(s, k)) for k in Sample.FIELDS) + "\n")
        if total_err:
            unexpected = {k: v for k, v in errs.items()}
            print(f"errors during the load: {unexpected}")
    finally:
        rc = server.stop()
        if rc not in (0, None):
            print(f"server stopped with exit code {rc}")
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("\nsoak: " + ("OK" if ok else "FAILED (exactly-once check)"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Execution environments as sealed boxes (issue 4): what a function can see and do inside
its sandbox, its memory/CPU/process/disk limits, freezing between invocations, and hostile
functions that must not harm the host or other functions. Skipped only where the machine
lacks the kernel features (not root / no cgroups)."""

import json
import os
import socket
import time

import pytest

from helpers import invoke, unique, wait_for
from test_cleanup import status

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="isolation needs root (namespaces and cgroups)")

PROBE = r'''
import json, os, socket, errno
def handler(event, context):
    def status(key):
        for line in open("/proc/self/status"):
            if line.startswith(key + ":"):
                return line.split()[1]
    def can_write(path):
        try:
            with open(path, "w") as f:
                f.write("x")
            return True
        except OSError as e:
            return errno.errorcode.get(e.errno, str(e.errno))
    def can_open_tty():
        try:
            open("/dev/tty").close()
            return True
        except OSError as e:
            return errno.errorcode.get(e.errno, str(e.errno))
    def connects(port):
        s = socket.socket()
        s.settimeout(1)
        try:
            s.connect(("127.0.0.1", port))
            return True
        except OSError:
            return False
        finally:
            s.close()
    return {
        "uid": os.getuid(), "gid": os.getgid(),
        "cap_eff": status("CapEff"), "no_new_privs": status("NoNewPrivs"), "seccomp": status("Seccomp"),
        "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
        "root": sorted(os.listdir("/")),
        "task": sorted(os.listdir("/var/task")),
        "shadow": os.path.exists("/etc/shadow"),
        "paths": {p: os.path.exists(p) for p in event["paths"]},
        "write_task": can_write("/var/task/x"), "write_root": can_write("/x"), "write_tmp": can_write("/tmp/x"),
        "hostname": socket.gethostname(),
        "runtime_api": os.environ["AWS_LAMBDA_RUNTIME_API"],
        "server_reachable": connects(event["port"]),
        "host_service_reachable": connects(event["host_port"]),
        "tty": can_open_tty(),
    }
'''


def test_sandbox_view(server, lam, make_fn):
    other = make_fn("python3.11", {"secret_code.py": "TOKEN = 'other function'"}, "secret_code.handler")
    fn = make_fn("python3.11", {"probe.py": PROBE}, "probe.handler")
    data_dir = str(server.data_dir)
    port = int(server.endpoint.rsplit(":", 1)[1])
    host_service = socket.create_server(("127.0.0.1", 0))  # another service on the host's loopback
    try:
        out = invoke(lam, fn.name, {"paths": [data_dir, data_dir + "/code", "/work", "/root", "/etc/passwd"], "port": port,
                                    "host_port": host_service.getsockname()[1]}).ok()
    finally:
        host_service.close()
    assert (out["uid"], out["gid"]) == (993, 990)
    assert out["cap_eff"] == "0000000000000000" and out["no_new_privs"] == "1" and out["seccomp"] == "2"
    assert out["pids"][:2] == [1, 2] and max(out["pids"]) < 50, out["pids"]
    assert out["task"] == ["probe.py"], "sees only its own code"
    assert out["shadow"] is False
    assert out["paths"] == {data_dir: False, data_dir + "/code": False, "/work": False, "/root": False, "/etc/passwd": True}
    assert out["write_task"] in ("EROFS", "EACCES") and out["write_root"] in ("EROFS", "EACCES")
    assert out["write_tmp"] is True
    assert out["runtime_api"] == "127.0.0.1:9001"
    # 127.0.0.1 is the environment's own loopback, not the host's: only the server's own
    # port there leads to the server (so its URLs work inside), nothing else on the host.
    assert out["host_service_reachable"] is False, "a service on the host's loopback was reached"
    assert out["server_reachable"] is True, "the server's address does not lead to the server"
    assert other.name not in json.dumps(out)
    assert out["tty"] == "ENXIO", out["tty"]


NET_PROBE = r'''
import json, os, socket, urllib.request
LISTENER = None
def my_address(gateway):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((gateway, 9))
    try:
        return s.getsockname()[0]
    finally:
        s.close()
def connects(host, port):
    s = socket.socket()
    s.settimeout(1)
    try:
        s.connect((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()
def signed_get(url, path, service="lambda", query=""):
    """A SigV4-signed GET with the environment's role credentials (no SDK needed)."""
    import datetime, hashlib, hmac
    env = os.environ
    key, secret, token, region = env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"], env["AWS_REGION"]
    host = url.split("//")[1]
    amz = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    scope = f"{amz[:8]}/{region}/{service}/aws4_request"
    signed = "host;x-amz-date;x-amz-security-token"
    canonical = "\n".join(["GET", path, query, f"host:{host}", f"x-amz-date:{amz}", f"x-amz-security-token:{token}", "", signed,
                           hashlib.sha256(b"").hexdigest()])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    k = ("AWS4" + secret).encode()
    for part in (amz[:8], region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    headers = {"x-amz-date": amz, "x-amz-security-token": token,
               "Authorization": f"AWS4-HMAC-SHA256 Credential={key}/{scope}, SignedHeaders={signed}, Signature={signature}"}
    return urllib.request.urlopen(urllib.request.Request(url + path + ("?" + query if query else ""), headers=headers), timeout=5)
def handler(event, context):
    global LISTENER
    url = os.environ["AWS_ENDPOINT_URL"]
    gateway = url.split("//")[1].split(":")[0]
    if event.get("listen"):
        # Stays open (frozen) after the invocation: the kernel still accepts connections.
        LISTENER = socket.socket()
        LISTENER.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        LISTENER.bind(("0.0.0.0", 8080))
        LISTENER.listen(8)
    # GetCallerIdentity needs no permission: the role's policies do not matter here.
    with signed_get(url, "/", "sts", "Action=GetCallerIdentity&Version=2011-06-15") as r:
        identity = r.read().decode()
    return {
        "endpoint": url,
        "address": my_address(gateway),
        "knows_itself": f"/{context.function_name}</Arn>" in identity,
        "peer_reachable": connects(event["peer"], 8080) if event.get("peer") else None,
        "runtime_api": os.environ["AWS_LAMBDA_RUNTIME_API"],
    }
'''


def test_environments_reach_the_api_through_their_link_but_not_each_other(server, lam, make_fn):
    """Point 6: a linked environment reaches the Nimbus API at AWS_ENDPOINT_URL (the bridge's
    gateway address), never another environment, and keeps its Runtime API to itself."""
    status = json.loads(__import__("urllib.request").request.urlopen(server.endpoint + "/_nimbus/status").read())
    if "linked" not in status["isolation"]:
        pytest.skip(f"environments are not linked here: {status['isolation']}")
    port = int(server.endpoint.rsplit(":", 1)[1])
    b = make_fn("python3.11", {"net.py": NET_PROBE}, "net.handler")
    a = make_fn("python3.11", {"net.py": NET_PROBE}, "net.handler")
    out_b = invoke(lam, b.name, {"listen": True}).ok()
    assert out_b["endpoint"] == status["endpointUrl"] and out_b["endpoint"].endswith(f":{port}")
    assert out_b["knows_itself"] is True, "the function called GetCallerIdentity through AWS_ENDPOINT_URL as its role session"
    assert out_b["address"] != out_b["endpoint"].split("//")[1].split(":")[0]
    out_a = invoke(lam, a.name, {"peer": out_b["address"]}).ok()
    assert out_a["address"] != out_b["address"]
    assert out_a["peer_reachable"] is False, "one environment reached another's listening socket"
    assert out_a["runtime_api"] == out_b["runtime_api"] == "127.0.0.1:9001"


def test_links_vanish_with_a_killed_server(server_factory):
    """A server killed with SIGKILL leaves no veth pairs behind: they die with the
    environments' namespaces."""
    s = server_factory()
    status = json.loads(__import__("urllib.request").request.urlopen(s.endpoint + "/_nimbus/status").read())
    if "linked" not in status["isolation"]:
        pytest.skip(f"environments are not linked here: {status['isolation']}")
    lam = s.lambda_client()
    from helpers import create_function, make_zip
    create_function(lam, "net", "python3.11", "net.handler", make_zip({"net.py": NET_PROBE}))
    out = invoke(lam, "net", {}).ok()
    a, b, c, d = (int(x) for x in out["address"].split("."))
    gw = [int(x) for x in out["endpoint"].split("//")[1].split(":")[0].split(".")]
    # The host end is named after the host number within the subnet (a /16 by default).
    n = (c - gw[2]) * 256 + d
    host_if = f"/sys/class/net/nb{n:x}"
    assert os.path.exists(host_if), host_if
    s.kill()
    # The kernel tears a dead namespace down later, on a work queue: alone it took 1–10 s
    # here, and under the whole suite's load once more than 10 s.
    deadline = time.monotonic() + 30
    while os.path.exists(host_if) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(host_if), "the environment's veth pair outlived its server"
    # Its prestarted sandboxes' mount points lived in the sandboxes' mount namespace, which
    # died with it; their directories are left for the next start to remove.
    data = str(s.data_dir)
    mounts = lambda: [l for l in open("/proc/self/mountinfo") if data in l]
    s.start()
    s.stop()
    assert mounts() == [], "the next start removed what the killed server left mounted"


def spawner_of(server) -> int:
    """The pid of `server`'s sandbox spawner process (sandboxes the server forked are its
    children too, with its command line)."""
    children = []
    for thread in os.listdir(f"/proc/{server.proc.pid}/task"):
        children += [int(p) for p in open(f"/proc/{server.proc.pid}/task/{thread}/children").read().split()]
    spawners = {p for p in children if b"sandbox-spawner" in open(f"/proc/{p}/cmdline", "rb").read()
                and open(f"/proc/{p}/comm").read().strip() != "sandbox-init"}
    assert len(spawners) == 1, children
    return spawners.pop()


def test_sandboxes_start_after_the_spawner_dies(server_factory):
    """With its spawner process gone, the server starts sandbox-init itself, in the
    sandboxes' mount namespace all the same: prestarted runtimes are assigned their code
    (whose mount points live there) and fresh ones see only their own root."""
    s = server_factory()
    os.kill(spawner_of(s), 9)
    lam = s.lambda_client()
    from helpers import ROLE, make_zip
    event = {"paths": ["/work", "/root", str(s.data_dir)], "port": 1, "host_port": 1}
    outs = []
    # One after another, each a cold start of its own function: all but the first take a
    # prestarted runtime the server started after the spawner died.
    for i in range(4):
        name = unique(f"after-spawner-{i}")
        lam.create_function(FunctionName=name, Runtime="python3.11", Handler="probe.handler", Role=ROLE, Timeout=30,
                            Code={"ZipFile": make_zip({"probe.py": PROBE})})
        outs.append(invoke(lam, name, event).ok())
        time.sleep(1.5)
    for out in outs:
        assert out["task"] == ["probe.py"], out
        assert not {"root", "home", "work", "sys", "host"} & set(out["root"]), out["root"]
        assert not any(out["paths"].values()), out["paths"]
        assert out["pids"][:2] == [1, 2], out["pids"]


MEM_HOG = r'''
import os
keep = []
def handler(event, context):
    for _ in range(event["mb"]):
        keep.append(bytearray(1024 * 1024))
    return len(keep)
'''


def test_memory_limit_and_peak(lam, make_fn):
    fn = make_fn("python3.11", {"hog.py": MEM_HOG}, "hog.handler", MemorySize=128, Timeout=20)
    ok = invoke(lam, fn.name, {"mb": 40})
    assert ok.ok() == 40
    used = int(ok.log.split("Max Memory Used: ")[1].split(" MB")[0])
    assert 40 <= used <= 128, ok.log
    inv = invoke(lam, fn.name, {"mb": 300})
    doc = inv.failed()
    assert doc["errorType"] == "Runtime.OutOfMemory", inv.describe()
    assert "signal: killed" in doc["errorMessage"]
    # The environment was reset: a fresh one starts from an empty list.
    assert invoke(lam, fn.name, {"mb": 1}).ok() == 1


CPU_BURN = r'''
exports.handler = async (event) => {
  const start = process.cpuUsage();
  const end = Date.now() + event.ms;
  let x = 0;
  while (Date.now() < end) { x += Math.sqrt(x + 1); }
  const used = process.cpuUsage(start);
  return { cpuMs: (used.user + used.system) / 1000, wallMs: event.ms };
};
'''


def test_cpu_share_follows_memory(lam, make_fn):
    small = make_fn("nodejs20.x", {"index.js": CPU_BURN}, "index.handler", MemorySize=128, Timeout=10)
    big = make_fn("nodejs20.x", {"index.js": CPU_BURN}, "index.handler", MemorySize=1769, Timeout=10)
    invoke(lam, small.name, {"ms": 10}).ok()
    invoke(lam, big.name, {"ms": 10}).ok()
    s = invoke(lam, small.name, {"ms": 600}).ok()
    b = invoke(lam, big.name, {"ms": 600}).ok()
    # 128 MB gets 128/1769 of a core (about 7 %); 1,769 MB a whole one: a cap the small one
    # never passes, and a share the big one gets as far as a busy machine leaves it (on an
    # idle one, > 90 %; under a parallel build, 45 % was seen).
    assert s["cpuMs"] < 0.25 * s["wallMs"], s
    assert b["cpuMs"] > max(0.3 * b["wallMs"], 3 * s["cpuMs"]), (s, b)


INIT_BURN = r'''
const fs = require('fs');
// The share of one CPU used while spinning for `ms` of wall time.
const burn = (ms) => {
  const start = process.cpuUsage(), began = Date.now();
  let x = 0;
  while (Date.now() - began < ms) { x += Math.sqrt(x + 1); }
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000 / (Date.now() - began);
};
// A runtime started for this function was exec'd with its variables; one prestarted before
// the function was known shows its own start-up variables there.
const adopted = !fs.readFileSync('/proc/self/environ', 'latin1').includes('AWS_LAMBDA_FUNCTION_NAME=');
const init = burn(400);
exports.handler = async () => ({ adopted, init, invoke: burn(400) });
'''


def test_init_is_not_held_to_the_cpu_share(lam, make_fn):
    """As on AWS, init runs at full CPU whatever the memory size, in a prestarted runtime
    adopted by the function as in a fresh one; the memory-sized share applies after."""
    def adopted_run():
        for _ in range(8):
            fn = make_fn("nodejs20.x", {"index.js": INIT_BURN}, "index.handler", MemorySize=256, Timeout=10)
            out = invoke(lam, fn.name, {}).ok()
            if out["adopted"]:
                return out
            time.sleep(1)  # the next prestarted runtime is started once the server is idle
        pytest.fail("no invocation adopted a prestarted runtime")

    # 256 MB is 14 % of a core: the invocation is held to it, its init is not. A busy host
    # (other tests on both cores) can starve one init below twice the share: measured again.
    for _ in range(3):
        out = adopted_run()
        assert out["invoke"] < 0.25, out
        if out["init"] > 2 * out["invoke"]:
            break
    assert out["init"] > 2 * out["invoke"], out


TMP_FILL = r'''
import errno
def handler(event, context):
    written = 0
    chunk = b"\0" * (1024 * 1024)
    try:
        with open("/tmp/fill", "wb") as f:
            while written < event["mb"] * 1024 * 1024:
                f.write(chunk)
                f.flush()
                written += len(chunk)
    except OSError as e:
        return {"written_mb": written // (1024 * 1024), "error": errno.errorcode.get(e.errno)}
    return {"written_mb": written // (1024 * 1024), "error": None}
'''


def test_tmp_is_limited_to_ephemeral_storage(lam, make_fn):
    # /tmp is memory-backed here, so the function gets room for it.
    fn = make_fn("python3.11", {"fill.py": TMP_FILL}, "fill.handler", MemorySize=1024, Timeout=30, EphemeralStorage={"Size": 512})
    out = invoke(lam, fn.name, {"mb": 700}).ok()
    assert out["error"] == "ENOSPC" and 500 <= out["written_mb"] <= 512, out


FREEZE = r'''
let firedAt = null, scheduledAt = null;
exports.handler = async (event) => {
  if (event.schedule) {
    scheduledAt = Date.now();
    setTimeout(() => { firedAt = Date.now(); }, 100);
    return 'scheduled';
  }
  return { lateByMs: firedAt - scheduledAt - 100 };
};
'''


def test_frozen_between_invocations(lam, make_fn):
    fn = make_fn("nodejs20.x", {"index.js": FREEZE}, "index.handler")
    assert invoke(lam, fn.name, {"schedule": True}).ok() == "scheduled"
    time.sleep(1.0)
    out = invoke(lam, fn.name, {}).ok()
    # The timer could only fire once the next invocation thawed the environment.
    assert out["lateByMs"] > 700, out


BACKGROUND = r'''
let ticks = [], timer = null;
exports.handler = async (event) => {
  if (event.start) {
    ticks = [];
    timer = setInterval(() => { ticks.push(Date.now()); }, 2);
    return { returnedAt: Date.now(), pid: process.pid };
  }
  clearInterval(timer);
  return { ticks, pid: process.pid };
};
'''


def test_background_work_stops_soon_after_the_response(lam, make_fn):
    """An idle environment is frozen within a short bound of its last response (20 ms of
    grace + a 5 ms tick on the server: an environment used again within the grace is never
    frozen and thawed). Work a function leaves running, a 2 ms interval here, runs only that
    long; the assertion leaves room for a loaded machine."""
    fn = make_fn("nodejs20.x", {"index.js": BACKGROUND}, "index.handler")
    first = invoke(lam, fn.name, {"start": True}).ok()
    time.sleep(1.0)
    after = invoke(lam, fn.name, {}).ok()
    assert after["pid"] == first["pid"], "the same environment"
    # Ticks from before the freeze; the thaw may let one more fire about a second later.
    before_freeze = [t for t in after["ticks"] if t < first["returnedAt"] + 500]
    ran_for = max(before_freeze, default=first["returnedAt"]) - first["returnedAt"]
    assert ran_for < 250, f"background work ran {ran_for} ms after the response"
    assert not [t for t in after["ticks"] if first["returnedAt"] + 500 <= t < first["returnedAt"] + 900], "ticks while frozen"


FORK_BOMB = r'''
import os, time
def handler(event, context):
    children = 0
    try:
        while True:
            pid = os.fork()
            if pid == 0:
                os.execv("/bin/sleep", ["sleep", "30"])
            children += 1
    except OSError as e:
        return {"children": children, "error": str(e)}
'''

DAEMON = r'''
import subprocess
def handler(event, context):
    subprocess.Popen(["/bin/sh", "-c", "trap '' TERM; exec sleep " + event["marker"]], start_new_session=True)
    return "spawned"
'''

HELLO = {"index.js": "exports.handler = async () => 'still fine';"}


def host_processes_with(marker: str) -> list[int]:
    found = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        found.append(int(p))
            except OSError:
                pass
    return found


def test_hostile_functions_leave_host_and_others_unharmed(lam, make_fn):
    bystander = make_fn("nodejs20.x", HELLO, "index.handler")
    bomb = make_fn("python3.11", {"bomb.py": FORK_BOMB}, "bomb.handler", MemorySize=2048, Timeout=20)
    out = invoke(lam, bomb.name, {}).ok()
    assert 900 <= out["children"] < 1024, out  # the pids limit (1,024 per environment) stopped it
    assert invoke(lam, bystander.name, {}).ok() == "still fine"
    lam.delete_function(FunctionName=bomb.name)

    marker = f"{1000 + time.time() % 1000:.3f}"
    daemon = make_fn("python3.11", {"daemon.py": DAEMON}, "daemon.handler")
    assert invoke(lam, daemon.name, {"marker": marker}).ok() == "spawned"
    # Seen by /proc once its exec has settled (a read in the middle of an exec can come back
    # empty); give it a moment rather than one look.
    wait_for(lambda: host_processes_with(marker), timeout=3, what="the daemon running while its environment lives")
    lam.delete_function(FunctionName=daemon.name)  # retires the environment
    deadline = time.time() + 10
    while host_processes_with(marker) and time.time() < deadline:
        time.sleep(0.2)
    assert not host_processes_with(marker), "a daemon (ignoring SIGTERM) outlived its environment"
    assert invoke(lam, bystander.name, {}).ok() == "still fine"


def test_process_isolation_fallback(server_factory):
    s = server_factory(args=["--isolation", "process"])
    lam = s.lambda_client()
    from helpers import create_function, make_zip
    create_function(lam, "plain", "python3.11", "probe.handler", make_zip({"probe.py": "import os\ndef handler(e, c):\n    return os.getuid()\n"}))
    assert invoke(lam, "plain", {}).ok() == 0  # runs as the server's user: no sandbox
    assert "isolation: process" in s.log_tail()
    from helpers import http_get
    status, _, body = http_get(s.endpoint + "/_nimbus/status")
    doc = json.loads(body)
    assert status == 200 and doc["isolation"] == "process"
    assert "namespaces" in doc["missingGuarantees"] and "seccomp" in doc["missingGuarantees"]
    # Without namespaces a function's VpcConfig cannot be enforced, and the status says so.
    assert any(m.startswith("VPC networks: VpcConfig is stored, not enforced") for m in doc["missingGuarantees"]), doc


@pytest.mark.parametrize("setup", ["process isolation", "sandboxes without their spawner"])
def test_environments_forked_by_the_server_stay_warm(server_factory, setup):
    """Runtimes (or sandbox-inits) the server forks itself die with the thread that forked
    them (their parent-death signal), so they are forked from a thread that lasts: an
    environment idle for longer than the async runtime keeps an idle thread (10 s) is still
    warm."""
    if setup == "process isolation":
        s = server_factory(args=["--isolation", "process", "--prestart", "0"])
    else:
        s = server_factory(args=["--prestart", "0"])
        if not status(s)["isolation"].startswith("namespaces"):
            pytest.skip("this server runs without namespaces")
        os.kill(spawner_of(s), 9)
    lam = s.lambda_client()
    from helpers import create_function, make_zip
    create_function(lam, "kept", "python3.11", "app.handler",
                    make_zip({"app.py": "import uuid\nMINE = uuid.uuid4().hex\ndef handler(e, c):\n    return MINE\n"}))
    first = invoke(lam, "kept", {}).ok()
    time.sleep(13)
    assert invoke(lam, "kept", {}).ok() == first, "the environment was started again: the first one died while idle"


def test_status_reports_full_isolation(server):
    from helpers import http_get
    status, _, body = http_get(server.endpoint + "/_nimbus/status")
    doc = json.loads(body)
    assert status == 200 and doc["isolation"].startswith("namespaces")
    assert doc["limits"].startswith("cgroups") and doc["missingGuarantees"] == []
    assert {"idle", "busy", "inFlight"} <= set(doc["environments"])


def test_functions_cannot_reach_the_terminal_the_server_runs_in(server_factory):
    """A server started from a terminal (here a pseudo-terminal that is its controlling
    terminal): its sandboxes run in sessions of their own, so a function cannot open /dev/tty
    to read it or push keystrokes into it (TIOCSTI)."""
    import fcntl
    import pty
    import termios

    master, slave = pty.openpty()
    slave_path = os.ttyname(slave)
    os.close(slave)

    def controlling_terminal():
        os.setsid()
        fd = os.open(slave_path, os.O_RDWR)
        fcntl.ioctl(fd, termios.TIOCSCTTY, 0)

    server = server_factory(start=False)
    server.preexec_fn = controlling_terminal
    try:
        server.start()
        lam = server.lambda_client()
        name = unique("tty")
        from helpers import ROLE, make_zip
        lam.create_function(FunctionName=name, Runtime="python3.11", Handler="probe.handler", Role=ROLE,
                            Code={"ZipFile": make_zip({"probe.py": PROBE})})
        out = invoke(lam, name, {"paths": [], "port": 1, "host_port": 1}).ok()
        assert out["tty"] == "ENXIO", f"a function opened the server's terminal: {out['tty']}"
    finally:
        server.stop()
        os.close(master)

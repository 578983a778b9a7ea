"""Python zygotes: a bursting Python function's new environments are forked from an
interpreter started once for that function. Each forked runtime must be as independent as a
freshly started one (its own random state, namespaces, cgroups, descriptors, user, seccomp
filter and environment) and behave the same when it fails; they outlive a zygote that
dies, and the next burst gets a new one.

The servers here start every Python environment from a zygote (`--zygote-after 1`, no
prestarted runtimes), so each assertion is about forked runtimes."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from helpers import concurrently, create_function, invoke, make_zip, unique, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="sandboxes need root")

INTROSPECT = r'''
import ctypes, os, random, sys, time
def _native():
    # A shared library shipped in the package's lib/, found through AWS's LD_LIBRARY_PATH.
    try:
        return ctypes.CDLL("libnimbusz.so").zlibVersion is not None
    except OSError as e:
        return str(e)
def handler(event, context):
    time.sleep(event.get("s", 0))
    status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
    fds = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            fds[fd] = os.readlink("/proc/self/fd/" + fd)
        except OSError:
            pass
    mode = event.get("mode")
    if mode == "exit":
        os._exit(3)
    if mode == "oom":
        hog = []
        while True:
            hog.append(bytearray(16 << 20))
    return {
        "ppid": os.getppid(),
        "pid": os.getpid(),
        "random": random.random(),
        "urandom": os.urandom(8).hex(),
        "hash": hash("nimbus"),
        "net": os.readlink("/proc/self/ns/net"),
        "mnt": os.readlink("/proc/self/ns/mnt"),
        "fds": fds,
        "uid": status["Uid"].split(),
        "gid": status["Gid"].split(),
        "capeff": status["CapEff"].strip(),
        "capbnd": status["CapBnd"].strip(),
        "nnp": status["NoNewPrivs"].strip(),
        "seccomp": status["Seccomp"].strip(),
        "env": {k: v for k, v in os.environ.items() if k.startswith(("SECRET", "NIMBUS"))},
        "argv": sys.argv,
        "cmdline": open("/proc/self/cmdline", "rb").read().split(b"\0")[:-1][-1].decode(),
        "main": sys.modules["__main__"].__file__,
        "cwd": os.getcwd(),
        "zygote_module": "zygote" in sys.modules,
        "tmp": os.listdir("/tmp"),
        "root": sorted(os.listdir("/")),
        "mountpoints": [line.split()[4] for line in open("/proc/self/mountinfo")],
        "umask": oct(os.umask(0o022)),
        "session_leader": os.getsid(0) == os.getpid(),
        "proc_io_readable": os.access("/proc/self/io", os.R_OK),
        "native": _native(),
        "mark": open("/tmp/mark", "w").write(context.aws_request_id),
    }
'''


def _processes() -> dict[int, tuple[int, bytes, str]]:
    """pid → (ppid, initial environment, cgroups) of every process on the host."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                out[int(entry.name)] = (ppid, (entry / "environ").read_bytes(), (entry / "cgroup").read_text())
            except (OSError, IndexError, ValueError):
                pass
    return out


def zygote_pids(server) -> set[int]:
    """This server's zygotes and the runtimes forked from them: processes whose initial
    environment says NIMBUS_ZYGOTE=1 that are the server's descendants or in one of its
    environments' cgroups."""
    procs = _processes()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    tree, todo = set(), [server.proc.pid]
    while todo:
        for c in children.get(todo.pop(), []):
            tree.add(c)
            todo.append(c)
    parents = {part for pid in tree for line in procs[pid][2].splitlines() for part in line.split("/") if part.startswith("nimbus-")}
    mine = lambda pid: pid in tree or any(f"/{p}/" in procs[pid][2] for p in parents)  # noqa: E731
    return {pid for pid, (_, env, _) in procs.items() if b"NIMBUS_ZYGOTE=1" in env and mine(pid)}


def package() -> bytes:
    """The introspecting handler, and a system library shipped as lib/libnimbusz.so."""
    zlib = next(p for p in ("/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1") if Path(p).exists())
    return make_zip({"index.py": INTROSPECT, "lib/libnimbusz.so": Path(zlib).read_bytes()})


def forked_runtimes(s, name: str, n: int, payload: dict) -> list[dict]:
    out = concurrently(n, lambda _: invoke(s.lambda_client(), name, payload).ok())
    return out


def test_forked_runtimes_are_as_independent_as_fresh_ones(server_factory):
    s = server_factory(args=["--zygote-after", "1", "--prestart", "0"])
    lam = s.lambda_client()
    code = package()
    a = create_function(lam, unique("zyg-a"), "python3.11", "index.handler", code,
                        Environment={"Variables": {"SECRET_A": "alpha"}}, Timeout=30)
    b = create_function(lam, unique("zyg-b"), "python3.11", "index.handler", code,
                        Environment={"Variables": {"SECRET_B": "beta"}}, Timeout=30)

    runs_a = forked_runtimes(s, a.name, 6, {"s": 1.5})
    runs_b = forked_runtimes(s, b.name, 3, {"s": 1.5})
    for r in runs_a + runs_b:
        # Forked: the runtime's parent (the zygote) is outside its PID namespace.
        assert r["ppid"] == 0 and r["pid"] == 2, r
        assert r["uid"] == ["993"] * 4 and r["gid"] == ["990"] * 4, r
        assert r["capeff"] == "0000000000000000" and r["capbnd"] == "0000000000000000", r
        assert r["nnp"] == "1" and r["seccomp"] == "2", r
        # Nothing of the zygote's descriptors: stdin, the log pipe, its own Runtime API socket.
        assert r["fds"]["0"] == "/dev/null", r["fds"]
        assert r["fds"]["1"].startswith("pipe:") and r["fds"]["1"] == r["fds"]["2"], r["fds"]
        others = {k: v for k, v in r["fds"].items() if k not in ("0", "1", "2")}
        assert all(v.startswith("socket:") for v in others.values()), r["fds"]
        assert len(others) <= 2, r["fds"]
        # As a runtime started with `python -u /var/runtime/bootstrap.py` looks.
        assert r["argv"] == ["/var/runtime/bootstrap.py"] and r["cmdline"] == "/var/runtime/bootstrap.py", r
        assert r["main"] == "/var/runtime/bootstrap.py" and r["cwd"] == "/var/task", r
        assert r["zygote_module"] is False, r
        # Its own /tmp: only what this invocation wrote.
        assert r["tmp"] == [], r
        # In the sandbox's root, as a runtime sandbox-init starts (joining the namespace
        # lands on the sandbox's root, over the host's mounts it keeps out of reach).
        assert not {"root", "home", "work", "sys", "run", "mnt", "boot"} & set(r["root"]), r["root"]
        assert "/" in r["mountpoints"] and not any(m.startswith(("/sys", "/run", "/work", "/home")) for m in r["mountpoints"]), r
        # A session of its own, umask 022, dumpable (its /proc files its own), as exec'd.
        assert r["session_leader"] is True and r["umask"] == "0o22" and r["proc_io_readable"] is True, r
        # LD_LIBRARY_PATH (/var/task/lib) is searched, though the loader read it in the zygote.
        assert r["native"] is True, r
    assert [r["env"] for r in runs_a] == [{"SECRET_A": "alpha"}] * 6
    assert [r["env"] for r in runs_b] == [{"SECRET_B": "beta"}] * 3
    everyone = runs_a + runs_b
    for key in ("random", "urandom", "net", "mnt"):
        values = [r[key] for r in everyone]
        assert len(set(values)) == len(values), (key, values)
    # What a fork cannot renew: the string-hash secret, shared by one function's runtimes
    # only (a zygote serves one function).
    assert len({r["hash"] for r in runs_a}) == 1 and len({r["hash"] for r in runs_b}) == 1
    assert runs_a[0]["hash"] != runs_b[0]["hash"]

    # Every runtime is in a cgroup of its own (seen from the host).
    groups = set()
    for pid in zygote_pids(s):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            nspid = [line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:")][0]
            cgroups = Path(f"/proc/{pid}/cgroup").read_text()
        except (OSError, IndexError):
            continue
        if nspid[-1:] == ["2"] and len(nspid) == 2:
            groups.add(cgroups)
    assert len(groups) == 9, groups


def test_forked_runtimes_fail_and_are_limited_like_fresh_ones(server_factory):
    s = server_factory(args=["--zygote-after", "1", "--prestart", "0"])
    lam = s.lambda_client()
    fn = create_function(lam, unique("zyg-fail"), "python3.11", "index.handler", package(),
                         MemorySize=128, Timeout=30)
    results = concurrently(3, lambda i: invoke(lam, fn.name, {"s": 0.5, "mode": ["exit", "oom", None][i]}))
    exit_doc = results[0].failed()
    assert exit_doc["errorType"] == "Runtime.ExitError", exit_doc
    assert exit_doc["errorMessage"].endswith("Runtime exited with error: exit status 3"), exit_doc
    oom_doc = results[1].failed()
    assert oom_doc["errorType"] == "Runtime.OutOfMemory", oom_doc
    assert results[2].ok()["ppid"] == 0
    assert "REPORT RequestId" in results[2].log


def test_runtimes_outlive_a_dead_zygote_and_the_next_burst_gets_a_new_one(server_factory):
    s = server_factory(args=["--zygote-after", "1", "--prestart", "0"])
    lam = s.lambda_client()
    fn = create_function(lam, unique("zyg-life"), "python3.11", "index.handler", package(),
                         Timeout=30)
    first = forked_runtimes(s, fn.name, 3, {"s": 1})
    assert all(r["ppid"] == 0 for r in first)
    # The zygote is the one of them whose parent is the server; the runtimes are its children.
    pids = zygote_pids(s)
    parent = {p: int(Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[1]) for p in pids}
    zygotes = [p for p in pids if parent[p] == s.proc.pid]
    assert len(zygotes) == 1, (zygotes, parent)
    runtimes = [p for p in pids if parent[p] == zygotes[0]]
    assert len(runtimes) == 3, (runtimes, parent)
    os.kill(zygotes[0], signal.SIGKILL)
    # Its runtimes run on (they are frozen while idle: each runs again when it is thawed),
    # and the burst's fourth environment is forked from a new zygote.
    more = forked_runtimes(s, fn.name, 4, {"s": 1})
    assert all(r["ppid"] == 0 for r in more)
    assert len({r["net"] for r in more} & {r["net"] for r in first}) == 3, (more, first)
    assert all(Path(f"/proc/{p}").exists() for p in runtimes)
    now = zygote_pids(s)
    assert [p for p in now if p not in pids and int(Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[1]) == s.proc.pid]

    # The stop leaves nothing of the zygotes behind.
    before = zygote_pids(s)
    assert before
    s.stop()
    deadline = time.time() + 10
    while time.time() < deadline and any(Path(f"/proc/{p}").exists() for p in before):
        time.sleep(0.2)
    assert not [p for p in before if Path(f"/proc/{p}").exists()], "zygote processes outlived the server"


NATIVE = r'''
import ctypes
def handler(event, context):
    try:
        return ctypes.CDLL("libnimbusz.so").zlibVersion is not None
    except OSError as e:
        return str(e)
'''


def test_a_prestarted_runtime_finds_the_functions_libraries(server_factory):
    """A runtime started ahead of time (its loader read LD_LIBRARY_PATH before the code was
    bound) still finds a library the package ships in lib/."""
    s = server_factory(args=["--prestart", "1", "--zygote-after", "0"])
    lam = s.lambda_client()

    def prestarted() -> bool:
        procs = _processes()
        tree, todo = set(), [s.proc.pid]
        while todo:
            parent = todo.pop()
            for pid, (ppid, _, _) in procs.items():
                if ppid == parent and pid not in tree:
                    tree.add(pid)
                    todo.append(pid)
        return any(b"NIMBUS_PRESTARTED=1" in procs[p][1] for p in tree)

    wait_for(prestarted, timeout=15, what="a prestarted Python runtime")
    zlib = next(p for p in ("/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1") if Path(p).exists())
    fn = create_function(lam, unique("prestart-lib"), "python3.11", "index.handler",
                         make_zip({"index.py": NATIVE, "lib/libnimbusz.so": Path(zlib).read_bytes()}))
    assert invoke(lam, fn.name, {}).ok() is True

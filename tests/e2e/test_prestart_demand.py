"""Prestarted runtimes follow demand: a burst of cold starts leaves more runtimes ready
(up to `--prestart-max`), and the next burst, even of another function, adopts them instead
of starting interpreters."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import concurrently, create_function, invoke, make_zip, unique, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="sandboxes need root")

# Returns when its process started, in clock ticks since boot (/proc/self/stat field 22).
PY = r"""
import time
def handler(event, context):
    time.sleep(event.get("s", 0))
    with open("/proc/self/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])
"""


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def python_runtimes(server) -> int:
    n = 0
    for pid in descendants(server.proc.pid):
        try:
            if b"bootstrap.py" in Path(f"/proc/{pid}/cmdline").read_bytes():
                n += 1
        except OSError:
            pass
    return n


def ticks_now() -> int:
    return int(float(Path("/proc/uptime").read_text().split()[0]) * os.sysconf("SC_CLK_TCK"))


def test_a_burst_of_cold_starts_leaves_more_runtimes_ready(server_factory):
    # Without zygotes: these bursts are to start (and then adopt) runtimes of their own.
    s = server_factory(args=["--prestart", "1", "--prestart-max", "5", "--zygote-after", "0"])
    lam = s.lambda_client()
    code = make_zip({"index.py": PY})
    a = create_function(lam, unique("demand-a"), "python3.11", "index.handler", code, Timeout=30)
    wait_for(lambda: python_runtimes(s) >= 1, timeout=15, what="the one prestarted runtime")
    assert python_runtimes(s) == 1

    # Five cold starts at once: one takes the prestarted runtime, four start their own.
    concurrently(5, lambda _: invoke(lam, a.name, {"s": 1}).ok())
    # Five warm environments of `a`, and now five ready runtimes (1 + 5 asked, at most 5).
    wait_for(lambda: python_runtimes(s) >= 10, timeout=20, what="more prestarted runtimes after the burst")
    assert python_runtimes(s) == 10

    # Another function's burst adopts them: every one of its runtimes started before it.
    b = create_function(lam, unique("demand-b"), "python3.11", "index.handler", code, Timeout=30)
    before = ticks_now()
    started = concurrently(5, lambda _: invoke(lam, b.name, {"s": 0}).ok())
    assert all(t < before for t in started), (started, before)

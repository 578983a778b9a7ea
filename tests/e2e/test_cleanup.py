"""Nothing a server made outlives it: after a stop (SIGTERM) its cgroups are gone, busy
environments included, and its environments' veth pairs with them; after a crash (kill -9)
its leftovers are removed by its next start, or by the start of any other server on the
host, whatever its data directory."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from helpers import concurrently, create_function, invoke, make_zip, unique, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="cgroups need root")

SLEEPER_JS = r"""
const os = require('os');
exports.handler = async (e) => {
  await new Promise(r => setTimeout(r, e.ms || 0));
  const eth0 = (os.networkInterfaces().eth0 || []).find(a => a.family === 'IPv4');
  return { address: eth0 ? eth0.address : null };
};
"""


def status(server) -> dict:
    return json.loads(urllib.request.urlopen(server.endpoint + "/_nimbus/status").read())


def cgroup_parents(server) -> list[Path]:
    st = status(server)
    if not (st.get("limits") or "").startswith("cgroups"):
        pytest.skip("this server runs without cgroups")
    if "cgroups" in st:
        return [Path(p) for p in st["cgroups"]]
    # A server that does not list them (an earlier release): its log names the set.
    names = set(re.findall(r"nimbus-[0-9a-f]{16}", server.log_tail(200000)))
    assert len(names) == 1, names
    return sorted(Path("/sys/fs/cgroup").glob(f"*/{names.pop()}"))


def groups_under(parents: list[Path]) -> list[Path]:
    return [Path(root) for p in parents if p.exists() for root, _, _ in os.walk(p)]


def host_interface(address: str | None) -> tuple[Path, str] | None:
    """The host end of a linked environment's veth pair (`nb<hex of its host number>`), and
    its interface index (the name may be taken again by another server's environment)."""
    if not address:
        return None
    n = int(ipaddress.ip_address(address)) - int(ipaddress.ip_address("10.213.0.0"))
    path = Path(f"/sys/class/net/nb{n:x}")
    return path, ifindex(path)


def ifindex(path: Path) -> str:
    try:
        return (path / "ifindex").read_text().strip()
    except OSError:
        return ""


def mounts_under(root: Path) -> list[str]:
    root = str(root.resolve())
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(root + "/")]


def deploy(server) -> tuple[object, str]:
    lam = server.lambda_client()
    name = unique("cleanup")
    create_function(lam, name, "nodejs20.x", "index.handler", make_zip({"index.js": SLEEPER_JS}), Timeout=60)
    return lam, name


def test_stop_removes_every_cgroup_the_server_made(server_factory):
    # A short drain: the busy environment is still busy when the stop ends it.
    s = server_factory(args=["--drain-timeout", "1"])
    parents = cgroup_parents(s)
    lam, name = deploy(s)
    # Idle environments, and one busy at the stop.
    idle = concurrently(3, lambda _: invoke(lam, name, {"ms": 300}).ok())
    busy_started = threading.Event()

    def long_invoke():
        busy_started.set()
        try:
            invoke(lam, name, {"ms": 30000})
        except Exception:
            pass  # the server stops under it

    t = threading.Thread(target=long_invoke, daemon=True)
    t.start()
    busy_started.wait()
    time.sleep(1.0)
    assert len(groups_under(parents)) > len(parents), "environments have groups while the server runs"
    veths = [v for v in (host_interface(o["address"]) for o in idle) if v]

    assert s.stop(timeout=15) == 0
    left = groups_under(parents)
    assert left == [], f"cgroups left after SIGTERM: {left[:5]}"
    # The pairs die with their namespaces (the kernel removes them asynchronously).
    wait_for(lambda: all(ifindex(path) != index for path, index in veths), timeout=10, what="veth pairs gone")


def test_a_crashed_servers_cgroups_are_removed_by_the_next_start_of_any_server(server_factory):
    crashed = server_factory()
    parents = cgroup_parents(crashed)
    sandboxed = status(crashed)["isolation"].startswith("namespaces")
    lam, name = deploy(crashed)
    concurrently(4, lambda _: invoke(lam, name, {"ms": 500}).ok())
    crashed.kill()  # SIGKILL: nothing is cleaned up
    envs = [g for g in groups_under(parents) if g not in parents]
    assert envs, "the crashed server's environments left groups behind"
    if sandboxed:
        # Prestarted sandboxes' mount points lived in the sandboxes' mount namespace, which
        # died with the server: none is the host's. Their directories are left.
        assert mounts_under(crashed.data_dir) == [], "prestarted sandboxes' mount points on the host"
        assert list((crashed.data_dir / "envs").iterdir()), "prestarted sandboxes' directories are left behind"

    # Another server, on another data directory, removes them as it starts.
    other = server_factory()
    left = groups_under(parents)
    assert left == [], f"a dead server's cgroups stay after another server started: {left[:5]}"
    assert groups_under(cgroup_parents(other)), "the other server's own groups are there"
    # ... and what it left in its data directory (its sandboxes' directories).
    assert mounts_under(crashed.data_dir) == []
    if sandboxed:
        assert list((crashed.data_dir / "envs").iterdir()) == [], "the next start removed what the killed server left"

    # The crashed server's next start on its own data directory also starts clean, and a
    # live server's groups are never taken by another's start.
    crashed.start()
    lam, name2 = deploy(crashed)
    assert invoke(lam, name2, {}).ok()
    third = server_factory()
    assert all(p.exists() for p in cgroup_parents(crashed)), "a live server's groups were removed by another's start"
    assert all(p.exists() for p in cgroup_parents(other))
    for srv in (crashed, other, third):
        srv_parents = cgroup_parents(srv)
        assert srv.stop(timeout=15) == 0
        assert groups_under(srv_parents) == []

"""Connection limits (slowloris): header, idle keep-alive and body timeouts and the connection
cap on the API listener, and the same on environments' Runtime API listeners, without
cutting what legitimately takes long (SQS long polls, long synchronous invokes)."""

from __future__ import annotations

import gc
import json
import os
import re
import socket
import time

import pytest

from helpers import create_function, http_get, invoke, make_zip, unique

# Small limits so the tests are quick.
FAST = ["--http-header-timeout", "1", "--http-body-timeout", "1"]


def connect(server) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    s.settimeout(10)
    return s


def closed_within(s: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Reads until the server closes (True) or `seconds` pass (False); returns what it sent."""
    got = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        s.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            return False, got
        except ConnectionResetError:
            return True, got
        if not chunk:
            return True, got
        got += chunk
    return False, got


HEALTH = b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n"


@pytest.fixture(scope="module")
def fast_server(nimbus_bin, tmp_path_factory):
    from helpers import Server

    base = tmp_path_factory.mktemp("conn-limits")
    s = Server(nimbus_bin, base / "data", base / "server.log", args=FAST, name="conn-limits")
    s.start()
    yield s
    s.stop()


@pytest.mark.parametrize(
    "sends",
    [
        pytest.param([], id="nothing"),
        pytest.param([b"GET /health HTTP/1.1\r\nHost: loc"], id="part-of-a-head"),
        pytest.param([b"GET /health HTTP/1.1\r\n", b"Host: localhost\r\n"], id="a-head-line-by-line"),
    ],
)
def test_a_client_that_sends_no_complete_head_is_closed(fast_server, sends):
    s = connect(fast_server)
    for part in sends:
        s.sendall(part)
        time.sleep(0.3)
    t0 = time.monotonic()
    closed, got = closed_within(s, 5)
    assert closed, "the connection is still open 5 s after its last byte (header timeout 1 s)"
    assert time.monotonic() - t0 < 3
    assert b" 200 " not in got
    s.close()


def test_an_idle_keep_alive_connection_is_closed_and_a_busy_one_is_not(fast_server):
    s = connect(fast_server)
    # Requests closer together than the timeout keep the connection for longer than it.
    for _ in range(4):
        s.sendall(HEALTH)
        head = s.recv(65536)
        assert head.startswith(b"HTTP/1.1 200"), head
        time.sleep(0.5)
    closed, _ = closed_within(s, 4)
    assert closed, "an idle keep-alive connection stays open (header timeout 1 s)"
    s.close()


def test_a_stalled_body_is_answered_408_and_closed(fast_server):
    s = connect(fast_server)
    s.sendall(b"POST /2015-03-31/functions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
              b"Content-Length: 100\r\n\r\n{\"FunctionName\":")
    t0 = time.monotonic()
    closed, got = closed_within(s, 5)
    assert closed, "a connection with a stalled body stays open (body timeout 1 s)"
    assert time.monotonic() - t0 < 3
    assert got.startswith(b"HTTP/1.1 408"), got[:200]
    assert b"RequestTimeoutException" in got
    s.close()


def test_a_slow_steady_body_is_read_whole(fast_server):
    """Pauses shorter than the body timeout add up to more than it: the request is served."""
    body = json.dumps({"not": "valid"}).encode()
    s = connect(fast_server)
    s.sendall(b"POST /2015-03-31/functions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
              + f"Content-Length: {len(body)}\r\n\r\n".encode())
    for i in range(0, len(body), 4):
        s.sendall(body[i:i + 4])
        time.sleep(0.4)
    s.settimeout(10)
    got = s.recv(65536)
    # Answered by the API (unsigned: refused by authentication), not by a timeout.
    assert got.startswith(b"HTTP/1.1 4"), got[:200]
    assert b" 408 " not in got.split(b"\r\n", 1)[0]
    s.close()


def test_long_requests_are_not_cut(fast_server):
    """An SQS long poll and a synchronous invoke both outlast the 1 s timeouts."""
    sqs = fast_server.sqs_client()
    url = sqs.create_queue(QueueName=unique("longpoll"))["QueueUrl"]
    t0 = time.monotonic()
    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=3)
    assert got.get("Messages") is None and time.monotonic() - t0 >= 2.9

    lam = fast_server.lambda_client()
    name = unique("slow")
    code = "exports.handler = async () => { await new Promise(r => setTimeout(r, 3000)); return 'late'; };"
    create_function(lam, name, "nodejs20.x", "index.handler", make_zip({"index.js": code}), Timeout=10)
    assert invoke(lam, name, {}).ok() == "late"


def test_connections_over_the_cap_are_answered_503(server_factory):
    s = server_factory(args=["--max-connections", "4"])
    # The harness's own clients (it made the execution role at start) may still hold a
    # kept-alive connection, counted against the cap until the client is collected.
    gc.collect()
    time.sleep(0.3)
    # Four held connections, each one the server took (a refused one is answered at once).
    held = []
    deadline = time.monotonic() + 10
    while len(held) < 4:
        c = connect(s)
        closed, got = closed_within(c, 0.3)
        if closed or got:
            c.close()
            assert time.monotonic() < deadline, "the server keeps refusing connections under its cap"
            gc.collect()
            continue
        held.append(c)
    over = connect(s)
    over.sendall(HEALTH)
    closed, got = closed_within(over, 5)
    assert got.startswith(b"HTTP/1.1 503"), got[:300]
    assert re.search(rb"(?i)\r\nretry-after: 1\r\n", got), got[:300]
    assert closed, "the refused connection is closed"
    assert "connection(s) refused" in s.log_tail(20000) and "--max-connections" in s.log_tail(20000)
    # A slot freed is served again.
    held.pop().close()
    time.sleep(0.3)
    status, _, _ = http_get(s.endpoint + "/health")
    assert status == 200
    for h in held:
        h.close()


# --- Runtime API ---------------------------------------------------------------------

RUNTIME_API_CAP_JS = r"""
const net = require('net');
const [host, port] = process.env.AWS_LAMBDA_RUNTIME_API.split(':');
exports.handler = async (event) => {
  const socks = [];
  for (let i = 0; i < event.open; i++) {
    const s = net.connect(Number(port), host);
    const rec = { closed: false };
    s.on('connect', () => s.write('GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n'));
    s.on('close', () => { rec.closed = true; });
    s.on('error', () => {});
    socks.push(rec);
  }
  await new Promise(r => setTimeout(r, 1500));
  return { closed: socks.filter(s => s.closed).length };
};
"""

# Opens a connection while the module initializes and sends part of a request head; the
# init phase counts as idle time.
RUNTIME_API_IDLE_MJS = r"""
import net from 'net';
const [host, port] = process.env.AWS_LAMBDA_RUNTIME_API.split(':');
const closed = await new Promise((resolve) => {
  const s = net.connect(Number(port), host);
  s.on('connect', () => s.write('GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHo'));
  s.on('error', () => {});
  s.on('close', () => resolve(true));
  setTimeout(() => resolve(false), 2500);
});
export const handler = async () => ({ closedDuringInit: closed });
"""


def test_runtime_api_connections_are_capped_and_timed(server_factory):
    s = server_factory(args=["--runtime-api-max-connections", "4", "--runtime-api-idle-timeout", "1"])
    lam = s.lambda_client()
    name = unique("rtcap")
    create_function(lam, name, "nodejs20.x", "index.handler", make_zip({"index.js": RUNTIME_API_CAP_JS}), Timeout=10)
    out = invoke(lam, name, {"open": 12}).ok()
    # The runtime holds one connection; of the 12 more, at most 3 fit under the cap. Those
    # are not idle-timed while the invocation runs (the clock stops while busy).
    assert out["closed"] >= 9, out
    assert out["closed"] <= 11, out
    assert "more Runtime API connections than allowed" in s.log_tail(20000)
    # The function still works afterwards: its own runtime kept its connection.
    assert invoke(lam, name, {"open": 0}).ok() == {"closed": 0}

    name = unique("rtidle")
    create_function(lam, name, "nodejs20.x", "index.handler", make_zip({"index.mjs": RUNTIME_API_IDLE_MJS}), Timeout=10)
    assert invoke(lam, name, {}).ok() == {"closedDuringInit": True}


def test_runtime_api_keep_alive_survives_long_invocations_and_freezes(server_factory):
    """A runtime's connection idles through an invocation longer than the Runtime API's idle
    timeout, and through a frozen spell between invocations: it is not cut."""
    s = server_factory(args=["--runtime-api-idle-timeout", "1"])
    lam = s.lambda_client()
    name = unique("rtlong")
    code = "exports.handler = async (e) => { await new Promise(r => setTimeout(r, e.ms)); return process.pid; };"
    create_function(lam, name, "nodejs20.x", "index.handler", make_zip({"index.js": code}), Timeout=10)
    first = invoke(lam, name, {"ms": 2500}).ok()
    time.sleep(2.5)  # idle (frozen where cgroups are available)
    assert invoke(lam, name, {"ms": 10}).ok() == first, "the same environment answers: its runtime survived"

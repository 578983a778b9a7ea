"""Concurrency limits: reserved concurrency (Put/Get/DeleteFunctionConcurrency), AWS's rule
that 100 stay unreserved, and throttling with TooManyRequestsException and AWS's Reason."""

import pytest
from botocore.exceptions import ClientError

from helpers import admin_signed, ROLE, client_error, concurrently, create_function, invoke, make_zip, unique

SLEEPY = {"index.js": "exports.handler = async (e) => { await new Promise(r => setTimeout(r, e.ms || 0)); return 'done'; };"}


def _concurrently(n, fn):
    def run(i):
        try:
            return ("ok", fn())
        except ClientError as e:
            return ("err", client_error(type("X", (), {"value": e})()))

    return concurrently(n, run)


def test_reserved_concurrency_api(lam, make_fn):
    fn = make_fn("nodejs20.x", SLEEPY, "index.handler")
    before = lam.get_account_settings()["AccountLimit"]
    assert lam.get_function_concurrency(FunctionName=fn.name).get("ReservedConcurrentExecutions") is None
    assert lam.put_function_concurrency(FunctionName=fn.name, ReservedConcurrentExecutions=5)["ReservedConcurrentExecutions"] == 5
    assert lam.get_function_concurrency(FunctionName=fn.name)["ReservedConcurrentExecutions"] == 5
    assert lam.get_function(FunctionName=fn.name)["Concurrency"] == {"ReservedConcurrentExecutions": 5}
    after = lam.get_account_settings()["AccountLimit"]
    assert after["ConcurrentExecutions"] == 1000
    assert after["UnreservedConcurrentExecutions"] == before["UnreservedConcurrentExecutions"] - 5
    # Changing the reservation keeps the function's revision.
    rev = lam.get_function_configuration(FunctionName=fn.name)["RevisionId"]
    lam.put_function_concurrency(FunctionName=fn.name, ReservedConcurrentExecutions=3)
    assert lam.get_function_configuration(FunctionName=fn.name)["RevisionId"] == rev
    lam.delete_function_concurrency(FunctionName=fn.name)
    assert "Concurrency" not in lam.get_function(FunctionName=fn.name)
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == before["UnreservedConcurrentExecutions"]


def test_reservation_must_leave_100_unreserved(lam, make_fn):
    fn = make_fn("nodejs20.x", SLEEPY, "index.handler")
    with pytest.raises(ClientError) as e:
        lam.put_function_concurrency(FunctionName=fn.name, ReservedConcurrentExecutions=901)
    code, status, msg = client_error(e)
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert "[100]" in msg
    assert lam.put_function_concurrency(FunctionName=fn.name, ReservedConcurrentExecutions=900)["ReservedConcurrentExecutions"] == 900
    lam.delete_function_concurrency(FunctionName=fn.name)


def test_concurrency_api_errors(lam, lam_raw):
    with pytest.raises(ClientError) as e:
        lam.put_function_concurrency(FunctionName=unique("nope"), ReservedConcurrentExecutions=1)
    assert client_error(e)[:2] == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as e:
        lam_raw.put_function_concurrency(FunctionName=unique("nope"), ReservedConcurrentExecutions=-1)
    assert client_error(e)[:2] == ("ValidationException", 400)


def test_reserved_zero_throttles(lam, make_fn):
    fn = make_fn("nodejs20.x", SLEEPY, "index.handler")
    lam.put_function_concurrency(FunctionName=fn.name, ReservedConcurrentExecutions=0)
    with pytest.raises(ClientError) as e:
        lam.invoke(FunctionName=fn.name, Payload=b"{}")
    code, status, _ = client_error(e)
    assert (code, status) == ("TooManyRequestsException", 429)
    assert e.value.response.get("Reason") == "ReservedFunctionConcurrentInvocationLimitExceeded"
    lam.delete_function_concurrency(FunctionName=fn.name)
    assert invoke(lam, fn.name, {}).ok() == "done"


def test_reserved_one_admits_one_at_a_time(lam, make_fn):
    fn = make_fn("nodejs20.x", SLEEPY, "index.handler")
    lam.put_function_concurrency(FunctionName=fn.name, ReservedConcurrentExecutions=1)
    results = _concurrently(3, lambda: invoke(lam, fn.name, {"ms": 1500}).ok())
    oks = [r for r in results if r[0] == "ok"]
    throttled = [r for r in results if r[0] == "err"]
    assert len(oks) == 1, results
    assert all(r[1][:2] == ("TooManyRequestsException", 429) for r in throttled), results
    # The slot is free again afterwards.
    assert invoke(lam, fn.name, {}).ok() == "done"


def test_account_limit_throttles_unreserved(server_factory):
    s = server_factory(args=["--concurrency-limit", "2"])
    lam = s.lambda_client()
    name = unique("acct")
    create_function(lam, name, "nodejs20.x", "index.handler", make_zip(SLEEPY))
    assert lam.get_account_settings()["AccountLimit"]["ConcurrentExecutions"] == 2
    results = _concurrently(3, lambda: invoke(lam, name, {"ms": 1500}).ok())
    assert sorted(r[0] for r in results) == ["err", "ok", "ok"], results
    err = [r for r in results if r[0] == "err"][0]
    assert err[1][:2] == ("TooManyRequestsException", 429)
    # With a limit of 2 no reservation is possible (it must leave min(100, limit)).
    with pytest.raises(ClientError) as e:
        lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    assert client_error(e)[0] == "InvalidParameterValueException"


SLOW_PY = '''
import time
def handler(event, context):
    time.sleep(event["sleep"])
    print("finished", event["token"])
    return {"ok": True}
'''


def test_an_invocation_outlives_a_client_that_disconnects(server_factory):
    """As in Lambda, a synchronous invocation runs to its end when its client goes away, and
    its environment and concurrency come back (nothing stays counted as busy)."""
    import json
    import socket
    import time
    import urllib.request

    from helpers import all_group_messages, wait_for

    s = server_factory()
    lam, logs = s.lambda_client(), s.logs_client()
    create_function(lam, "slow", "python3.11", "index.handler", make_zip({"index.py": SLOW_PY}), Timeout=10)
    invoke(lam, "slow", {"sleep": 0, "token": "warm"}).ok()
    body = json.dumps({"sleep": 1, "token": "gone"}).encode()
    conn = socket.create_connection(("127.0.0.1", s.port))
    path = "/2015-03-31/functions/slow/invocations"
    signed = admin_signed(s.endpoint, "lambda", "POST", path, {"Content-Type": "application/json"}, body)
    head = "".join(f"{k}: {v}\r\n" for k, v in signed.items())
    conn.sendall(f"POST {path} HTTP/1.1\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
    time.sleep(0.3)
    conn.close()

    def status():
        return json.loads(urllib.request.urlopen(s.endpoint + "/_nimbus/status").read())["environments"]

    wait_for(lambda: any("finished gone" in m for m in all_group_messages(logs, "/aws/lambda/slow")), timeout=10,
             what="the abandoned invocation to finish")
    wait_for(lambda: status()["busy"] == 0 and status()["inFlight"] == 0, timeout=5, what="the environment to come back")
    assert invoke(lam, "slow", {"sleep": 0, "token": "again"}).ok() == {"ok": True}


def test_scaling_rate_throttles_new_environments_only(server_factory):
    # Three new environments per 10 s: the fourth at once is throttled, warm ones are not.
    s = server_factory(args=["--scale-up-rate", "3"])
    lam = s.lambda_client()
    name = unique("scale")
    create_function(lam, name, "nodejs20.x", "index.handler", make_zip(SLEEPY))
    results = _concurrently(4, lambda: invoke(lam, name, {"ms": 1500}).ok())
    assert sorted(r[0] for r in results) == ["err", "ok", "ok", "ok"], results
    err = [r for r in results if r[0] == "err"][0]
    assert err[1][:2] == ("TooManyRequestsException", 429), err
    # Three warm environments serve three at once again, throttled by nothing.
    results = _concurrently(3, lambda: invoke(lam, name, {"ms": 100}).ok())
    assert [r[0] for r in results] == ["ok"] * 3, results

"""Warm work is routed (issue 17): a synchronous invoke that reaches a node with no idle
environment of its function goes to the function's home node (rendezvous hashing over the
live members), so a function invoked through every node of a cluster starts once, not once
per node; a node whose home is gone runs the invoke itself. Function URL and HTTP API
requests are routed the same way."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

from helpers import create_function, http_get, make_zip, url_id, wait_for
from test_cluster_events import _nodes

# Each environment makes up its id once, at init: the answers say which one ran.
WHO = {"index.js": "const id = require('crypto').randomUUID();\n"
                   "exports.handler = async (e) => { await new Promise(r => setTimeout(r, e.sleep || 0));"
                   " return { env: id, n: e.n }; };"}


def _status(node) -> dict:
    code, _, body = http_get(node.endpoint + "/_nimbus/status")
    assert code == 200
    return json.loads(body)


def _knows_everyone(nodes) -> bool:
    return all(len(_status(n).get("cluster", {}).get("peers", [])) == len(nodes) for n in nodes)


def _invoke(node, n: int, sleep_ms: int = 0) -> str:
    out = node.lambda_client().invoke(FunctionName="who", Payload=json.dumps({"n": n, "sleep": sleep_ms}).encode())
    body = json.loads(out["Payload"].read())
    assert body["n"] == n and "FunctionError" not in out, body
    return body["env"]


def test_invokes_through_every_node_start_one_environment(server_factory, tmp_path):
    nodes = _nodes(server_factory, tmp_path, 3)
    wait_for(lambda: _knows_everyone(nodes), timeout=10, what="every node sees the three")
    time.sleep(1.5)  # each node's router reads the members every second
    create_function(nodes[0].lambda_client(), "who", "nodejs20.x", "index.handler", make_zip(WHO))
    envs = [_invoke(nodes[i % 3], i) for i in range(12)]
    assert len(set(envs)) == 1, f"one environment for invokes through three nodes: {envs}"
    statuses = [_status(n) for n in nodes]
    home = [i for i, s in enumerate(statuses) if s["environments"]["idle"] + s["environments"]["busy"] > 0]
    assert len(home) == 1, statuses
    forwarded = [s["cluster"]["invokes"]["forwarded"] for s in statuses]
    assert forwarded[home[0]] == 0 and sum(forwarded) == 8, forwarded

    # Invokes at once through another node: the home runs one in its idle environment and
    # answers "busy" for the others, which the sending node runs itself (the home counts the
    # forwards it took on against its idle environments, so ones that arrive together do
    # not all find the same one idle). A local invoke could still take the home's idle
    # environment first; none runs here.
    sender_i = (home[0] + 1) % 3
    sender = nodes[sender_i]
    with ThreadPoolExecutor(3) as pool:
        at_once = list(pool.map(lambda n: _invoke(sender, 50 + n, 1500), range(3)))
    assert envs[0] in at_once and len(set(at_once)) == 3, at_once
    counts = [s["environments"]["idle"] + s["environments"]["busy"] for s in (_status(n) for n in nodes)]
    assert counts[home[0]] == 1 and counts[sender_i] == 2, counts
    # The sender has environments of its own now: it answers itself while one is idle.
    assert _invoke(sender, 60) != envs[0]

    # The home node stops: the others answer themselves (each starts its own environment).
    others = [n for i, n in enumerate(nodes) if i != home[0]]
    nodes[home[0]].stop()
    after = [_invoke(others[i % 2], 100 + i) for i in range(4)]
    assert envs[0] not in after


# Counts its runs: a request run twice (at the home and again by the sender) would show. Its
# answer is a 404 carrying Nimbus's "not run" header, neither of which may read as the home's.
PAGE = {"index.js": "const id = require('crypto').randomUUID(); let n = 0;\n"
                    "exports.handler = async () => { n += 1;"
                    " return { statusCode: 404, headers: { 'x-nimbus-not-run': 'busy' },"
                    " body: JSON.stringify({ env: id, n }) }; };"}


API_PAGE = {"index.js": "const id = require('crypto').randomUUID(); let n = 0;\n"
                        "exports.handler = async (e) => { n += 1;"
                        " return { statusCode: 409, headers: { 'x-nimbus-not-run': 'refused' },"
                        " body: JSON.stringify({ env: id, n, ip: e.requestContext.http.sourceIp }) }; };"}


def _run_once_at_home(nodes, path: str, status: int, requests: int) -> list[dict]:
    """Calls `path` round the nodes `requests` times: every answer is the function's own
    (`status`, no "not run" header), all from one environment, each request run once (its
    count goes up by one), and two thirds of them forwarded, none by the home node."""
    def call(node) -> dict:
        code, headers, body = http_get(node.endpoint + path)
        assert code == status and "x-nimbus-not-run" not in headers, (code, headers, body)
        return json.loads(body)

    answers = [call(nodes[i % 3]) for i in range(requests)]
    assert len({a["env"] for a in answers}) == 1, answers
    assert [a["n"] for a in answers] == list(range(1, requests + 1)), answers
    forwarded = [_status(n)["cluster"]["invokes"]["forwarded"] for n in nodes]
    assert sum(forwarded) == requests * 2 // 3 and sorted(forwarded)[0] == 0, forwarded
    return answers


def test_function_url_requests_through_every_node_run_once_in_one_environment(server_factory, tmp_path):
    """A function URL called through every node runs in one environment at its home, each
    request once, even when the function's own answer is a 4xx (which must not read as the
    home's refusal)."""
    nodes = _nodes(server_factory, tmp_path, 3)
    wait_for(lambda: _knows_everyone(nodes), timeout=10, what="every node sees the three")
    lam = nodes[0].lambda_client()
    create_function(lam, "page", "nodejs20.x", "index.handler", make_zip(PAGE))
    lam.add_permission(FunctionName="page", StatementId="public", Action="lambda:InvokeFunctionUrl", Principal="*",
                       FunctionUrlAuthType="NONE")
    uid = url_id(lam.create_function_url_config(FunctionName="page", AuthType="NONE")["FunctionUrl"])
    time.sleep(1.5)  # every node hears of the URL, and each router has read the members

    _run_once_at_home(nodes, f"/_aws/lambda-url/{uid}/", 404, 12)


def test_http_api_requests_through_every_node_run_once_in_one_environment(server_factory, tmp_path):
    """An HTTP API's route called through every node runs its function in one environment
    at the function's home, each request once, whatever status the function answers, and
    the event names the client's address as the first node saw it."""
    nodes = _nodes(server_factory, tmp_path, 3)
    wait_for(lambda: _knows_everyone(nodes), timeout=10, what="every node sees the three")
    lam = nodes[0].lambda_client()
    arn = create_function(lam, "api-page", "nodejs20.x", "index.handler", make_zip(API_PAGE)).config["FunctionArn"]
    lam.add_permission(FunctionName="api-page", StatementId="apigw", Action="lambda:InvokeFunction",
                       Principal="apigateway.amazonaws.com")
    api_id = nodes[0].client("apigatewayv2").create_api(Name="routed", ProtocolType="HTTP", Target=arn)["ApiId"]
    time.sleep(1.5)  # every node hears of the API, and each router has read the members

    answers = _run_once_at_home(nodes, f"/_aws/execute-api/{api_id}/page", 409, 9)
    assert {a["ip"] for a in answers} == {"127.0.0.1"}, answers

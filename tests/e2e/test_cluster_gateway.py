"""HTTP APIs shared by the nodes of a cluster (issue 17): an API made on one node is served
by every node, a route added or changed on one node is served by the others within a
second, and an API deleted on one node answers API Gateway's 404 on the others."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from helpers import arn, create_function, http_request, make_zip
from test_cluster import Cluster, _within_a_second, pg_url  # noqa: F401 (pg_url: a fixture)

# Answers API Gateway's events with what it was routed by; answers direct invocations too
# (they warm the nodes' environments before anything is timed).
FRONT = """
import json
def handler(event, context):
    body = {"routeKey": event.get("routeKey"), "path": event.get("rawPath"),
            "stage": event.get("requestContext", {}).get("stage")}
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}
"""


@pytest.fixture
def cluster(server_factory, tmp_path, pg_url):  # noqa: F811
    return Cluster(server_factory, tmp_path, pg_url, 3)


def _get(node, api_id: str, path: str) -> tuple[int, dict | None]:
    """(status, decoded body) of a GET to an API through `node`'s execute-api endpoint."""
    status, _, body = http_request(f"{node.endpoint}/_aws/execute-api/{api_id}{path}")
    try:
        return status, json.loads(body)
    except ValueError:
        return status, None


def _route_key(node, api_id: str, path: str) -> str | None:
    """The route key the function says `node` routed a GET of `path` by (None: not served)."""
    status, body = _get(node, api_id, path)
    return body["routeKey"] if status == 200 and body else None


def test_an_http_api_is_every_nodes(cluster):
    nodes = cluster.nodes
    apigw = [n.client("apigatewayv2") for n in nodes]
    name = "front"
    create_function(cluster.lam(0), name, "python3.11", "index.handler", make_zip({"index.py": FRONT}))
    cluster.lam(0).add_permission(FunctionName=name, StatementId="apigw", Action="lambda:InvokeFunction",
                                  Principal="apigateway.amazonaws.com")
    for i in range(3):
        assert json.loads(cluster.invoke(i, name, {})["body"])["routeKey"] is None

    # Quick create (a Lambda proxy integration, a $default route and stage) on node 0: nodes
    # 1 and 2 serve it.
    api_id = apigw[0].create_api(Name="shared", ProtocolType="HTTP", Target=arn(name))["ApiId"]
    for i in (1, 2):
        took = _within_a_second(f"node {i} serving the API",
                                lambda: _route_key(nodes[i], api_id, "/hello") == "$default")
        assert took < 1.0, f"node {i} served the API {took:.2f} s after it was made"
        want = {"routeKey": "$default", "path": "/hello", "stage": "$default"}
        assert _get(nodes[i], api_id, "/hello") == (200, want)
        assert apigw[i].get_api(ApiId=api_id)["Name"] == "shared"

    # A route added on node 2 is served by node 0 within a second; so is its change.
    target = apigw[2].get_routes(ApiId=api_id)["Items"][0]["Target"]
    route = apigw[2].create_route(ApiId=api_id, RouteKey="GET /items/{id}", Target=target)
    took = _within_a_second("node 0 serving node 2's route",
                            lambda: _route_key(nodes[0], api_id, "/items/7") == "GET /items/{id}")
    assert took < 1.0, f"node 0 served the new route {took:.2f} s after it was made"
    apigw[2].update_route(ApiId=api_id, RouteId=route["RouteId"], RouteKey="GET /things/{id}")
    took = _within_a_second("node 0 serving the changed route",
                            lambda: _route_key(nodes[0], api_id, "/things/7") == "GET /things/{id}")
    assert took < 1.0, f"node 0 served the changed route {took:.2f} s after the change"
    assert _route_key(nodes[0], api_id, "/items/7") == "$default"
    assert _route_key(nodes[1], api_id, "/things/7") == "GET /things/{id}"

    # Deleted on node 1: API Gateway's 404 on nodes 0 and 2, and no such API to manage.
    apigw[1].delete_api(ApiId=api_id)
    for i in (0, 2):
        took = _within_a_second(f"node {i} forgetting the API",
                                lambda: _get(nodes[i], api_id, "/hello") == (404, {"message": "Not Found"}))
        assert took < 1.0, f"node {i} still served the deleted API {took:.2f} s after"
        with pytest.raises(ClientError) as e:
            apigw[i].get_api(ApiId=api_id)
        assert e.value.response["Error"]["Code"] == "NotFoundException"

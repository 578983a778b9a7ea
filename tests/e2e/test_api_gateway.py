"""API Gateway HTTP APIs (apigatewayv2): management with the aws CLI and boto3, requests by
path and by host name routed with AWS's rules into payload format 1.0 and 2.0 events, result
mapping, API Gateway's answers for failing integrations, persistence, and Nimbus's ALB mode
(on routes and on function URLs)."""

import base64
import json

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

import helpers
from helpers import aws_cli_runner, ACCOUNT, arn, boto_client, client_error, create_function, http_request as request, make_zip, public_url, unique

# Handlers as in AWS's API Gateway and ALB examples.
NODE_ECHO = {"index.mjs": """
export const handler = async (event) => ({
  statusCode: 200,
  headers: { 'content-type': 'application/json', 'x-handler': 'node' },
  body: JSON.stringify(event),
});
"""}
PY_ECHO = {"lambda_function.py": """
import json

def lambda_handler(event, context):
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": {"X-Multi": ["a", "b"]},
        "body": json.dumps(event),
    }
"""}
NODE_SHAPES = {"index.js": """
exports.handler = async (event) => {
  const kind = (event.rawPath || event.path).split('/').pop();
  if (kind === 'full') return { statusCode: 201, headers: { 'x-custom': 'yes', 'content-type': 'text/plain' }, cookies: ['a=1; Path=/', 'b=2'], body: 'created' };
  if (kind === 'plain') return { hello: 'world' };
  if (kind === 'binary') return { statusCode: 200, headers: { 'content-type': 'application/octet-stream' }, isBase64Encoded: true, body: Buffer.from([0, 1, 2, 255]).toString('base64') };
  if (kind === 'badstatus') return { statusCode: 'nope' };
  if (kind === 'throw') throw new Error('broken');
  if (kind === 'slow') { await new Promise((r) => setTimeout(r, 3000)); return { statusCode: 200, body: 'late' }; }
  return { statusCode: 404, body: 'no such kind' };
};
"""}
PY_ALB = {"lambda_function.py": """
import json

def lambda_handler(event, context):
    response = {
        "statusCode": 200,
        "statusDescription": "200 OK",
        "isBase64Encoded": False,
        "body": json.dumps(event),
    }
    if "multiValueHeaders" in event:
        response["multiValueHeaders"] = {"Content-Type": ["application/json"], "Set-Cookie": ["a=1", "b=2"]}
    else:
        response["headers"] = {"Content-Type": "application/json", "X-Alb": "yes"}
    return response
"""}


@pytest.fixture(scope="module")
def apigw(server):
    return boto_client("apigatewayv2", server.endpoint)


def allow_api_gateway(lam, name, source_arn=None, qualifier=None):
    """The statement AWS requires before API Gateway may invoke a function (a version or an
    alias has its own policy)."""
    extra = {"SourceArn": source_arn} if source_arn else {}
    if qualifier:
        extra["Qualifier"] = qualifier
    lam.add_permission(FunctionName=name, StatementId=unique("apigw"), Action="lambda:InvokeFunction",
                       Principal="apigateway.amazonaws.com", **extra)


@pytest.fixture
def make_fn(make_fn):
    """The shared make_fn, for functions API Gateway may invoke."""

    def make(*args, **kwargs):
        fn = make_fn(*args, **kwargs)
        allow_api_gateway(fn.client, fn.name)
        return fn

    return make


@pytest.fixture
def cli(aws_cli, server, tmp_path):
    """`cli(*args)` runs `aws apigatewayv2 ...` (CLI v1) against the shared server."""
    aws = aws_cli_runner(aws_cli, server.endpoint, tmp_path / "home", timeout=60)

    def _cli(*args, ok=True):
        cp = aws("apigatewayv2", *args)
        out, err = cp.out, cp.err
        if ok:
            assert cp.returncode == 0, err
            return json.loads(out) if out.strip() else None
        assert cp.returncode != 0, out
        return err

    return _cli


def by_path(server, api_id, path=""):
    return f"{server.endpoint}/_aws/execute-api/{api_id}{path}"


def host_of(api_id):
    return f"{api_id}.execute-api.us-east-1.localhost"


def integration(apigw, api_id, fn, version, **kw):
    return apigw.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=arn(fn.name),
                                    PayloadFormatVersion=version, **kw)["IntegrationId"]


def route(apigw, api_id, key, integration_id):
    return apigw.create_route(ApiId=api_id, RouteKey=key, Target=f"integrations/{integration_id}")["RouteId"]


def test_management_with_aws_cli(cli, server, make_fn):
    fn = make_fn("nodejs20.x", NODE_ECHO, "index.handler")
    api = cli("create-api", "--name", "cli-api", "--protocol-type", "HTTP")
    api_id = api["ApiId"]
    assert len(api_id) == 10 and api["ProtocolType"] == "HTTP"
    assert api["RouteSelectionExpression"] == "$request.method $request.path"
    assert api["ApiEndpoint"] == by_path(server, api_id)
    integ = cli("create-integration", "--api-id", api_id, "--integration-type", "AWS_PROXY",
                "--integration-uri", arn(fn.name), "--payload-format-version", "2.0")
    assert integ["IntegrationType"] == "AWS_PROXY" and integ["PayloadFormatVersion"] == "2.0" and integ["TimeoutInMillis"] == 30000
    r = cli("create-route", "--api-id", api_id, "--route-key", "GET /items/{id}", "--target", f"integrations/{integ['IntegrationId']}")
    assert r["RouteKey"] == "GET /items/{id}" and r["AuthorizationType"] == "NONE"
    assert "ConflictException" in cli("create-route", "--api-id", api_id, "--route-key", "GET /items/{id}", ok=False)
    assert "BadRequestException" in cli("create-route", "--api-id", api_id, "--route-key", "FETCH /x", ok=False)
    stage = cli("create-stage", "--api-id", api_id, "--stage-name", "prod", "--auto-deploy", "--stage-variables", "env=production")
    assert stage["StageName"] == "prod" and stage["AutoDeploy"] is True and stage["StageVariables"] == {"env": "production"}
    assert [x["RouteId"] for x in cli("get-routes", "--api-id", api_id)["Items"]] == [r["RouteId"]]
    assert cli("get-stage", "--api-id", api_id, "--stage-name", "prod")["StageVariables"] == {"env": "production"}
    assert any(a["ApiId"] == api_id for a in cli("get-apis")["Items"])

    status, headers, body = request(by_path(server, api_id, "/prod/items/42"))
    assert status == 200, body
    ev = json.loads(body)
    assert ev["routeKey"] == "GET /items/{id}" and ev["pathParameters"] == {"id": "42"}
    assert ev["stageVariables"] == {"env": "production"} and ev["requestContext"]["stage"] == "prod"
    assert ev["rawPath"] == "/prod/items/42"
    assert headers["apigw-requestid"] == ev["requestContext"]["requestId"]
    # No route, no stage, no API: API Gateway's 404.
    for url in (by_path(server, api_id, "/prod/other"), by_path(server, api_id, "/items/42"), by_path(server, "zzzzzzzzzz", "/")):
        status, _, body = request(url)
        assert (status, json.loads(body)) == (404, {"message": "Not Found"}), url

    cli("delete-route", "--api-id", api_id, "--route-id", r["RouteId"])
    cli("delete-stage", "--api-id", api_id, "--stage-name", "prod")
    cli("delete-api", "--api-id", api_id)
    assert "NotFoundException" in cli("get-api", "--api-id", api_id, ok=False)


def test_management_errors_and_shapes(apigw, make_fn):
    fn = make_fn("nodejs20.x", NODE_ECHO, "index.handler")
    with pytest.raises(ClientError) as e:
        apigw.get_api(ApiId="nosuchapi0")
    code, status, msg = client_error(e)
    assert (code, status) == ("NotFoundException", 404) and msg == f"Invalid API identifier specified {ACCOUNT}:nosuchapi0"
    api_id = apigw.create_api(Name="errors", ProtocolType="HTTP")["ApiId"]
    try:
        with pytest.raises(ClientError) as e:
            apigw.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=arn(fn.name), PayloadFormatVersion="3.0")
        assert client_error(e)[:2] == ("BadRequestException", 400)
        with pytest.raises(ClientError) as e:
            apigw.create_route(ApiId=api_id, RouteKey="GET /x", Target="integrations/nope123")
        assert client_error(e)[:2] == ("NotFoundException", 404)
        iid = integration(apigw, api_id, fn, "1.0")
        rid = route(apigw, api_id, "GET /x", iid)
        with pytest.raises(ClientError) as e:
            apigw.delete_integration(ApiId=api_id, IntegrationId=iid)
        assert client_error(e)[:2] == ("ConflictException", 409)
        assert apigw.get_route(ApiId=api_id, RouteId=rid)["Target"] == f"integrations/{iid}"
        assert apigw.get_integration(ApiId=api_id, IntegrationId=iid)["PayloadFormatVersion"] == "1.0"
        assert [i["IntegrationId"] for i in apigw.get_integrations(ApiId=api_id)["Items"]] == [iid]
        second = integration(apigw, api_id, fn, "2.0")
        first_page = apigw.get_integrations(ApiId=api_id, MaxResults="1")
        assert len(first_page["Items"]) == 1 and first_page["NextToken"]
        rest = apigw.get_integrations(ApiId=api_id, MaxResults="1", NextToken=first_page["NextToken"])
        assert len(rest["Items"]) == 1 and "NextToken" not in rest
        assert {first_page["Items"][0]["IntegrationId"], rest["Items"][0]["IntegrationId"]} == {iid, second}
        apigw.delete_integration(ApiId=api_id, IntegrationId=second)
        updated = apigw.update_integration(ApiId=api_id, IntegrationId=iid, PayloadFormatVersion="2.0", TimeoutInMillis=5000)
        assert (updated["PayloadFormatVersion"], updated["TimeoutInMillis"]) == ("2.0", 5000)
        assert apigw.update_api(ApiId=api_id, Name="renamed")["Name"] == "renamed"
        with pytest.raises(ClientError) as e:
            apigw.create_stage(ApiId=api_id, StageName="bad name")
        assert client_error(e)[:2] == ("BadRequestException", 400)
        apigw.create_stage(ApiId=api_id, StageName="v1")
        with pytest.raises(ClientError) as e:
            apigw.create_stage(ApiId=api_id, StageName="v1")
        assert client_error(e)[:2] == ("ConflictException", 409)
        d = apigw.create_deployment(ApiId=api_id, StageName="v1", Description="first")
        assert d["DeploymentStatus"] == "DEPLOYED"
        assert apigw.get_stage(ApiId=api_id, StageName="v1")["DeploymentId"] == d["DeploymentId"]
        assert apigw.get_deployment(ApiId=api_id, DeploymentId=d["DeploymentId"])["Description"] == "first"
        apigw.delete_route(ApiId=api_id, RouteId=rid)
        apigw.delete_integration(ApiId=api_id, IntegrationId=iid)
        with pytest.raises(ClientError) as e:
            apigw.get_route(ApiId=api_id, RouteId=rid)
        assert client_error(e)[:2] == ("NotFoundException", 404)
    finally:
        apigw.delete_api(ApiId=api_id)


def test_quick_create_v2_event(apigw, server, make_fn):
    fn = make_fn("nodejs20.x", NODE_ECHO, "index.handler")
    api = apigw.create_api(Name="quick", ProtocolType="HTTP", Target=arn(fn.name))
    api_id = api["ApiId"]
    try:
        assert apigw.get_stages(ApiId=api_id)["Items"][0]["StageName"] == "$default"
        assert apigw.get_stages(ApiId=api_id)["Items"][0]["AutoDeploy"] is True
        assert apigw.get_routes(ApiId=api_id)["Items"][0]["RouteKey"] == "$default"
        assert apigw.get_integrations(ApiId=api_id)["Items"][0]["PayloadFormatVersion"] == "2.0"
        status, headers, body = request(by_path(server, api_id, "/shop/items/7?a=1&a=2&b=x%20y"), "POST", b'{"k":"v"}',
                                        {"content-type": "application/json", "cookie": "c1=v1; c2=v2", "x-trace": "t",
                                         "user-agent": "e2e"})
        assert status == 200, body
        assert headers["x-handler"] == "node"
        ev = json.loads(body)
        assert ev["version"] == "2.0" and ev["routeKey"] == "$default"
        assert ev["rawPath"] == "/shop/items/7" and ev["rawQueryString"] == "a=1&a=2&b=x%20y"
        assert ev["queryStringParameters"] == {"a": "1,2", "b": "x y"}
        assert ev["cookies"] == ["c1=v1", "c2=v2"] and "cookie" not in ev["headers"]
        assert ev["headers"]["x-trace"] == "t"
        assert ev["headers"]["x-forwarded-for"] == "127.0.0.1" and ev["headers"]["x-forwarded-proto"] == "http"
        assert ev["headers"]["x-forwarded-port"] == str(server.port) and ev["headers"]["x-amzn-trace-id"].startswith("Root=1-")
        assert ev["body"] == '{"k":"v"}' and ev["isBase64Encoded"] is False
        assert "pathParameters" not in ev and "stageVariables" not in ev
        ctx = ev["requestContext"]
        assert ctx["accountId"] == ACCOUNT and ctx["apiId"] == api_id
        assert ctx["domainName"] == host_of(api_id) and ctx["domainPrefix"] == api_id
        assert ctx["http"] == {"method": "POST", "path": "/shop/items/7", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "e2e"}
        assert ctx["stage"] == "$default" and ctx["routeKey"] == "$default"
        assert ctx["requestId"] == headers["apigw-requestid"] and isinstance(ctx["timeEpoch"], int) and "+0000" in ctx["time"]
        # Binary bodies arrive base64-encoded; the Host header alone selects the API.
        status, _, body = request(f"{server.endpoint}/bin", "PUT", bytes([0, 159, 255]),
                                  {"content-type": "application/octet-stream", "host": host_of(api_id)})
        ev = json.loads(body)
        assert status == 200 and ev["rawPath"] == "/bin" and ev["isBase64Encoded"] is True
        assert base64.b64decode(ev["body"]) == bytes([0, 159, 255])
    finally:
        apigw.delete_api(ApiId=api_id)


def test_qualified_and_apigateway_style_uris(apigw, lam, server, make_fn):
    fn = make_fn("nodejs20.x", NODE_ECHO, "index.handler", Publish=True)
    lam.create_alias(FunctionName=fn.name, Name="live", FunctionVersion="1")
    for qualifier in ("live", "1"):
        allow_api_gateway(lam, fn.name, qualifier=qualifier)
    api_id = apigw.create_api(Name="uris", ProtocolType="HTTP")["ApiId"]
    try:
        alias = apigw.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=arn(fn.name) + ":live",
                                         PayloadFormatVersion="2.0")["IntegrationId"]
        style = ("arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/"
                 f"{arn(fn.name)}:1/invocations")
        version = apigw.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=style,
                                           PayloadFormatVersion="2.0")["IntegrationId"]
        route(apigw, api_id, "GET /alias", alias)
        route(apigw, api_id, "GET /version", version)
        apigw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
        for path in ("/alias", "/version"):
            status, _, body = request(by_path(server, api_id, path))
            assert status == 200 and json.loads(body)["rawPath"] == path, body
        with pytest.raises(ClientError) as e:
            apigw.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri="http://example.com",
                                     PayloadFormatVersion="2.0")
        assert client_error(e)[:2] == ("BadRequestException", 400)
    finally:
        apigw.delete_api(ApiId=api_id)


def test_cors_and_disabled_endpoint(apigw, server, make_fn):
    fn = make_fn("nodejs20.x", NODE_ECHO, "index.handler")
    cors = {"AllowOrigins": ["https://app.example"], "AllowMethods": ["GET", "POST"], "AllowHeaders": ["x-token"],
            "ExposeHeaders": ["x-handler"], "MaxAge": 300}
    api_id = apigw.create_api(Name="cors", ProtocolType="HTTP", Target=arn(fn.name), CorsConfiguration=cors)["ApiId"]
    try:
        assert apigw.get_api(ApiId=api_id)["CorsConfiguration"]["AllowOrigins"] == ["https://app.example"]
        status, headers, _ = request(by_path(server, api_id, "/x"), "OPTIONS",
                                     headers={"origin": "https://app.example", "access-control-request-method": "POST"})
        assert status == 204 and headers["access-control-allow-origin"] == "https://app.example"
        assert headers["access-control-allow-methods"] == "GET,POST" and headers["access-control-max-age"] == "300"
        status, headers, _ = request(by_path(server, api_id, "/x"), headers={"origin": "https://app.example"})
        assert status == 200 and headers["access-control-expose-headers"] == "x-handler"
        _, headers, _ = request(by_path(server, api_id, "/x"), headers={"origin": "https://evil.example"})
        assert "access-control-allow-origin" not in headers
        apigw.update_api(ApiId=api_id, DisableExecuteApiEndpoint=True)
        status, _, body = request(by_path(server, api_id, "/x"))
        assert (status, json.loads(body)) == (403, {"message": "Forbidden"})
    finally:
        apigw.delete_api(ApiId=api_id)


def test_route_selection_v1_and_stages(apigw, server, make_fn):
    node = make_fn("nodejs20.x", NODE_ECHO, "index.handler")
    py = make_fn("python3.11", PY_ECHO, "lambda_function.lambda_handler")
    api_id = apigw.create_api(Name="routes", ProtocolType="HTTP")["ApiId"]
    try:
        v1 = integration(apigw, api_id, py, "1.0")
        v2 = integration(apigw, api_id, node, "2.0")
        route(apigw, api_id, "GET /items/{id}", v1)
        route(apigw, api_id, "GET /items/special", v2)
        route(apigw, api_id, "ANY /{proxy+}", v2)
        route(apigw, api_id, "$default", v2)
        apigw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
        apigw.create_stage(ApiId=api_id, StageName="prod", AutoDeploy=True, StageVariables={"color": "blue", "table": "items"})

        def get(path, **kw):
            status, headers, body = request(by_path(server, api_id, path), **kw)
            assert status == 200, (path, body)
            return headers, json.loads(body)

        headers, ev = get("/prod/items/9?tag=a&tag=b&one=1", headers={"x-h": "v"})
        assert sorted(headers.get_all("x-multi")) == ["a", "b"]
        assert ev["version"] == "1.0" and ev["resource"] == "/items/{id}" and ev["path"] == "/prod/items/9"
        assert ev["httpMethod"] == "GET" and ev["pathParameters"] == {"id": "9"}
        assert ev["stageVariables"] == {"color": "blue", "table": "items"}
        assert ev["queryStringParameters"] == {"tag": "b", "one": "1"}
        assert ev["multiValueQueryStringParameters"] == {"tag": ["a", "b"], "one": ["1"]}
        assert ev["headers"]["x-h"] == "v" and ev["multiValueHeaders"]["x-h"] == ["v"]
        assert ev["body"] is None and ev["isBase64Encoded"] is False
        ctx = ev["requestContext"]
        assert ctx["stage"] == "prod" and ctx["resourcePath"] == "/items/{id}" and ctx["httpMethod"] == "GET"
        assert ctx["identity"]["sourceIp"] == "127.0.0.1" and ctx["apiId"] == api_id
        # Exact beats variables beats greedy beats $default; the method matters.
        assert get("/prod/items/special")[1]["routeKey"] == "GET /items/special"
        _, ev = get("/prod/items/9", method="DELETE")
        assert ev["routeKey"] == "ANY /{proxy+}" and ev["pathParameters"] == {"proxy": "items/9"}
        _, ev = get("/a/b/c")
        assert ev["routeKey"] == "ANY /{proxy+}" and ev["requestContext"]["stage"] == "$default" and "stageVariables" not in ev
        _, ev = get("/")
        assert ev["routeKey"] == "$default" and ev["rawPath"] == "/"
    finally:
        apigw.delete_api(ApiId=api_id)


def test_responses_and_failures(apigw, lam, server, make_fn):
    shapes = make_fn("nodejs20.x", NODE_SHAPES, "index.handler", Timeout=1)
    py = make_fn("python3.11", PY_ECHO, "lambda_function.lambda_handler")
    api_id = apigw.create_api(Name="failures", ProtocolType="HTTP", Target=arn(shapes.name))["ApiId"]
    try:
        url = lambda p: by_path(server, api_id, p)  # noqa: E731
        status, headers, body = request(url("/full"))
        assert (status, body) == (201, b"created") and headers["x-custom"] == "yes"
        assert sorted(headers.get_all("set-cookie")) == ["a=1; Path=/", "b=2"]
        status, headers, body = request(url("/plain"))
        assert (status, json.loads(body), headers["content-type"]) == (200, {"hello": "world"}, "application/json")
        assert request(url("/binary"))[::2] == (200, bytes([0, 1, 2, 255]))
        for kind in ("badstatus", "throw"):
            status, headers, body = request(url(f"/{kind}"))
            assert (status, json.loads(body)) == (502, {"message": "Internal server error"}), kind
            assert headers["apigw-requestid"]
        status, _, body = request(url("/slow"))  # the function's own 1 s timeout
        assert (status, json.loads(body)) == (504, {"message": "Endpoint request timed out"})
        status, _, body = request(url("/x"), "POST", b"x" * (6 * 1024 * 1024 + 1), {"content-type": "text/plain"})
        assert (status, json.loads(body)) == (413, {"message": "Request Entity Too Large"})

        # The integration's own timeout.
        iid = apigw.get_integrations(ApiId=api_id)["Items"][0]["IntegrationId"]
        apigw.update_integration(ApiId=api_id, IntegrationId=iid, TimeoutInMillis=100)
        status, _, body = request(url("/slow"))
        assert (status, json.loads(body)) == (504, {"message": "Endpoint request timed out"})
        # A 1.0 result with multi-value headers; a 1.0 result without statusCode is malformed.
        v1 = integration(apigw, api_id, py, "1.0")
        route(apigw, api_id, "GET /v1", v1)
        status, headers, _ = request(url("/v1"))
        assert status == 200 and sorted(headers.get_all("x-multi")) == ["a", "b"]
        v1_shapes = integration(apigw, api_id, shapes, "1.0")
        route(apigw, api_id, "GET /v1/plain", v1_shapes)
        status, _, body = request(url("/v1/plain"))
        assert (status, json.loads(body)) == (502, {"message": "Internal server error"})
        # Throttled: 429. A missing function: 500.
        lam.put_function_concurrency(FunctionName=py.name, ReservedConcurrentExecutions=0)
        status, _, body = request(url("/v1"))
        assert (status, json.loads(body)) == (429, {"message": "Too Many Requests"})
        ghost = apigw.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=arn("no-such-function"),
                                         PayloadFormatVersion="2.0")["IntegrationId"]
        route(apigw, api_id, "GET /ghost", ghost)
        status, _, body = request(url("/ghost"))
        assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})
    finally:
        apigw.delete_api(ApiId=api_id)


def test_alb_mode_on_routes_and_urls(apigw, lam, server, make_fn):
    fn = make_fn("python3.11", PY_ALB, "lambda_function.lambda_handler")
    api_id = apigw.create_api(Name="alb", ProtocolType="HTTP")["ApiId"]
    try:
        single = integration(apigw, api_id, fn, "alb")
        multi = integration(apigw, api_id, fn, "alb-multi-value")
        route(apigw, api_id, "ANY /single/{proxy+}", single)
        route(apigw, api_id, "ANY /multi/{proxy+}", multi)
        apigw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
        status, headers, body = request(by_path(server, api_id, "/single/x?q=a%20b&q=2"), "POST", b"hello",
                                        {"content-type": "text/plain", "x-h": "1"})
        assert status == 200, body
        assert headers["x-alb"] == "yes"
        ev = json.loads(body)
        assert ev["requestContext"]["elb"]["targetGroupArn"].startswith(f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:targetgroup/")
        assert ev["httpMethod"] == "POST" and ev["path"] == "/single/x"
        assert ev["queryStringParameters"] == {"q": "2"} and ev["headers"]["x-h"] == "1"
        assert ev["body"] == "hello" and ev["isBase64Encoded"] is False
        assert "multiValueHeaders" not in ev
        status, headers, body = request(by_path(server, api_id, "/multi/y?q=a%20b&q=2"), headers={"x-h": "1"})
        ev = json.loads(body)
        assert status == 200 and sorted(headers.get_all("set-cookie")) == ["a=1", "b=2"]
        assert ev["multiValueQueryStringParameters"] == {"q": ["a%20b", "2"]} and ev["multiValueHeaders"]["x-h"] == ["1"]
        assert ev["body"] == "" and "headers" not in ev and "queryStringParameters" not in ev
        # The same handler behind a function URL, through /_aws/elb/<url-id>/.
        url = public_url(lam, FunctionName=fn.name)["FunctionUrl"]
        url_id = helpers.url_id(url)
        status, headers, body = request(f"{server.endpoint}/_aws/elb/{url_id}/from-url?k=v")
        ev = json.loads(body)
        assert status == 200 and ev["path"] == "/from-url" and ev["queryStringParameters"] == {"k": "v"}
        assert ev["requestContext"]["elb"]["targetGroupArn"].endswith(f"/{url_id[:16]}")
        status, headers, body = request(f"{server.endpoint}/_aws/elb-multi-value/{url_id}/m")
        assert status == 200 and "multiValueHeaders" in json.loads(body)
    finally:
        apigw.delete_api(ApiId=api_id)


def test_apis_survive_restart(server_factory, tmp_path):
    s = server_factory()
    lam = s.lambda_client()
    fn = create_function(lam, unique("gw"), "nodejs20.x", "index.handler", make_zip(NODE_ECHO))
    allow_api_gateway(lam, fn.name)
    apigw = boto_client("apigatewayv2", s.endpoint)
    api_id = apigw.create_api(Name="durable", ProtocolType="HTTP", Target=arn(fn.name), RouteKey="GET /hello/{who}")["ApiId"]
    apigw.create_stage(ApiId=api_id, StageName="live", StageVariables={"v": "1"})
    apigw.create_deployment(ApiId=api_id, StageName="live")
    s.restart()
    apigw = boto_client("apigatewayv2", s.endpoint)
    api = apigw.get_api(ApiId=api_id)
    assert api["Name"] == "durable" and api["ApiEndpoint"] == by_path(s, api_id)
    assert [r["RouteKey"] for r in apigw.get_routes(ApiId=api_id)["Items"]] == ["GET /hello/{who}"]
    for path, stage in (("/hello/world", "$default"), ("/live/hello/world", "live")):
        status, _, body = request(by_path(s, api_id, path))
        assert status == 200, body
        ev = json.loads(body)
        assert ev["pathParameters"] == {"who": "world"} and ev["requestContext"]["stage"] == stage
    assert ev["stageVariables"] == {"v": "1"}


def test_api_gateway_needs_the_functions_permission_and_iam_routes_a_signature(server, apigw, lam):
    """As on AWS: without a statement for `apigateway.amazonaws.com` naming the route's ARN the
    integration answers 500; an `AWS_IAM` route wants a SigV4 signature by a principal allowed
    `execute-api:Invoke`."""

    name = unique("gw-guard")
    create_function(lam, name, "nodejs20.x", "index.handler", make_zip(NODE_ECHO))
    api_id = apigw.create_api(Name="guarded", ProtocolType="HTTP", Target=arn(name), RouteKey="GET /open")["ApiId"]
    url = f"{server.endpoint}/_aws/execute-api/{api_id}/open"
    status, _, body = request(url)
    assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})
    # A statement for another API does not do; one for this API's route does.
    allow_api_gateway(lam, name, f"arn:aws:execute-api:us-east-1:{ACCOUNT}:otherapi/*/*/open")
    assert request(url)[0] == 500
    allow_api_gateway(lam, name, f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{api_id}/*/GET/open")
    assert request(url)[0] == 200

    # An AWS_IAM route.
    integration = apigw.get_routes(ApiId=api_id)["Items"][0]["Target"]
    route = apigw.create_route(ApiId=api_id, RouteKey="GET /private", Target=integration, AuthorizationType="AWS_IAM")
    assert route["AuthorizationType"] == "AWS_IAM"
    allow_api_gateway(lam, name, f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{api_id}/*/GET/private")
    private = f"{server.endpoint}/_aws/execute-api/{api_id}/private"
    status, _, body = request(private)
    assert (status, json.loads(body)) == (403, {"message": "Forbidden"})

    def signed(key, secret):
        r = AWSRequest(method="GET", url=private)
        SigV4Auth(Credentials(key, secret), "execute-api", "us-east-1").add_auth(r)
        return request(private, headers=dict(r.headers))

    assert signed("test", "test")[0] == 200
    assert signed("test", "wrong")[0] == 403
    iam = boto_client("iam", server.endpoint)
    user = unique("gw-user")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    assert signed(key["AccessKeyId"], key["SecretAccessKey"])[0] == 403
    iam.put_user_policy(UserName=user, PolicyName="invoke", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": f"arn:aws:execute-api:*:*:{api_id}/*/GET/private"}]}))
    assert signed(key["AccessKeyId"], key["SecretAccessKey"])[0] == 200

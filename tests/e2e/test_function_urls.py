"""Function URLs: config API, requests by path and by host name as AWS's payload format 2.0
events, responses mapped back as AWS does, CORS, and AWS_IAM auth."""

import base64
import json

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from helpers import ACCOUNT, arn, boto_client, client_error, http_request as request, public_url, unique, url_id

ECHO = {"index.js": "exports.handler = async (event) => ({ statusCode: 200, headers: {'content-type': 'application/json'}, body: JSON.stringify(event) });"}
SHAPES = {"index.js": """
exports.handler = async (event) => {
  const kind = event.rawPath.slice(1);
  if (kind === 'full') return { statusCode: 201, headers: { 'x-custom': 'yes', 'content-type': 'text/plain' }, cookies: ['a=1; Path=/', 'b=2'], body: 'created' };
  if (kind === 'plain') return { hello: 'world' };
  if (kind === 'string') return 'just text';
  if (kind === 'binary') return { statusCode: 200, headers: { 'content-type': 'application/octet-stream' }, isBase64Encoded: true, body: Buffer.from([0, 1, 2, 255]).toString('base64') };
  if (kind === 'badstatus') return { statusCode: 'nope' };
  if (kind === 'throw') throw new Error('broken');
  return { statusCode: 404, body: 'no such kind' };
};
"""}


def path_url(server, url_id, path=""):
    return f"{server.endpoint}/_aws/lambda-url/{url_id}{path}"


def url_id_of(cfg):
    return url_id(cfg["FunctionUrl"])


def test_url_config_api(server, lam, lam_raw, make_fn):
    fn = make_fn("nodejs20.x", ECHO, "index.handler", Publish=True)
    cfg = lam.create_function_url_config(FunctionName=fn.name, AuthType="NONE")
    assert cfg["FunctionArn"] == arn(fn.name)
    assert cfg["AuthType"] == "NONE" and cfg["InvokeMode"] == "BUFFERED"
    url_id = url_id_of(cfg)
    # By path on the server's own address (no name to resolve: see test_urls.py).
    assert len(url_id) == 32 and cfg["FunctionUrl"] == path_url(server, url_id, "/")
    with pytest.raises(ClientError) as e:
        lam.create_function_url_config(FunctionName=fn.name, AuthType="NONE")
    assert client_error(e)[:2] == ("ResourceConflictException", 409)
    got = lam.get_function_url_config(FunctionName=fn.name)
    assert got["FunctionUrl"] == cfg["FunctionUrl"] and "LastModifiedTime" in got
    upd = lam.update_function_url_config(FunctionName=fn.name, AuthType="AWS_IAM", Cors={"AllowOrigins": ["https://app.example"], "MaxAge": 60})
    assert upd["AuthType"] == "AWS_IAM" and upd["Cors"]["AllowOrigins"] == ["https://app.example"] and upd["Cors"]["MaxAge"] == 60
    lam.create_alias(FunctionName=fn.name, Name="live", FunctionVersion="1")
    live = lam.create_function_url_config(FunctionName=fn.name, Qualifier="live", AuthType="NONE")
    assert live["FunctionArn"] == arn(fn.name) + ":live"
    assert len(lam.list_function_url_configs(FunctionName=fn.name)["FunctionUrlConfigs"]) == 2
    with pytest.raises(ClientError) as e:
        lam_raw.create_function_url_config(FunctionName=fn.name, Qualifier="1", AuthType="NONE")
    assert client_error(e)[:2] == ("ValidationException", 400)
    with pytest.raises(ClientError) as e:
        lam_raw.create_function_url_config(FunctionName=fn.name, Qualifier="ghost", AuthType="NONE")
    assert client_error(e)[:2] == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as e:
        lam_raw.create_function_url_config(FunctionName=fn.name, Qualifier="live", AuthType="MAYBE")
    assert client_error(e)[0] == "ValidationException"
    lam.delete_function_url_config(FunctionName=fn.name)
    with pytest.raises(ClientError) as e:
        lam.get_function_url_config(FunctionName=fn.name)
    assert client_error(e)[:2] == ("ResourceNotFoundException", 404)


def test_request_becomes_v2_event(server, lam, make_fn):
    fn = make_fn("nodejs20.x", ECHO, "index.handler")
    url_id = url_id_of(public_url(lam, FunctionName=fn.name))
    status, _, body = request(path_url(server, url_id, "/items/42?a=1&a=2&b=x%20y"), "POST", b'{"k":"v"}',
                              {"content-type": "application/json", "cookie": "c1=v1; c2=v2", "x-trace": "t"})
    assert status == 200, body
    ev = json.loads(body)
    assert ev["version"] == "2.0" and ev["routeKey"] == "$default"
    assert ev["rawPath"] == "/items/42"
    assert ev["rawQueryString"] == "a=1&a=2&b=x%20y"
    assert ev["queryStringParameters"] == {"a": "1,2", "b": "x y"}
    assert ev["cookies"] == ["c1=v1", "c2=v2"]
    assert ev["headers"]["x-trace"] == "t" and "cookie" not in ev["headers"]
    assert ev["body"] == '{"k":"v"}' and ev["isBase64Encoded"] is False
    ctx = ev["requestContext"]
    assert ctx["http"]["method"] == "POST" and ctx["http"]["path"] == "/items/42"
    assert ctx["domainPrefix"] == url_id and ctx["stage"] == "$default" and ctx["http"]["sourceIp"] == "127.0.0.1"
    # Binary bodies arrive base64-encoded.
    status, _, body = request(path_url(server, url_id, "/bin"), "PUT", bytes([0, 159, 255]), {"content-type": "application/octet-stream"})
    ev = json.loads(body)
    assert ev["isBase64Encoded"] is True and base64.b64decode(ev["body"]) == bytes([0, 159, 255])
    # By host name alone.
    status, _, body = request(f"{server.endpoint}/by-host", headers={"host": f"{url_id}.lambda-url.us-east-1.localhost"})
    assert status == 200 and json.loads(body)["rawPath"] == "/by-host"
    # Its path is the function's even where it names a bucket that exists (an unsigned
    # path-style request elsewhere would be S3's).
    bucket = unique("shadow").lower()
    boto_client("s3", server.endpoint).create_bucket(Bucket=bucket)
    status, _, body = request(f"{server.endpoint}/{bucket}/k", headers={"host": f"{url_id}.lambda-url.us-east-1.localhost"})
    assert status == 200 and json.loads(body)["rawPath"] == f"/{bucket}/k", body
    # Unknown URL ids are 404.
    status, _, _ = request(path_url(server, "x" * 32, "/"))
    assert status == 404


def test_responses_map_like_aws(server, lam, make_fn):
    fn = make_fn("nodejs20.x", SHAPES, "index.handler")
    url_id = url_id_of(public_url(lam, FunctionName=fn.name))
    status, headers, body = request(path_url(server, url_id, "/full"))
    assert (status, body) == (201, b"created")
    assert headers["x-custom"] == "yes" and headers["content-type"] == "text/plain"
    assert sorted(headers.get_all("set-cookie")) == ["a=1; Path=/", "b=2"]
    status, headers, body = request(path_url(server, url_id, "/plain"))
    assert (status, json.loads(body)) == (200, {"hello": "world"}) and headers["content-type"] == "application/json"
    status, _, body = request(path_url(server, url_id, "/string"))
    assert (status, json.loads(body)) == (200, "just text")
    status, _, body = request(path_url(server, url_id, "/binary"))
    assert (status, body) == (200, bytes([0, 1, 2, 255]))
    assert request(path_url(server, url_id, "/badstatus"))[0] == 502
    assert request(path_url(server, url_id, "/throw"))[0] == 502


def test_cors(server, lam, make_fn):
    fn = make_fn("nodejs20.x", SHAPES, "index.handler")
    url_id = url_id_of(public_url(
        lam, FunctionName=fn.name,
        Cors={"AllowOrigins": ["https://app.example"], "AllowMethods": ["GET", "POST"], "AllowHeaders": ["x-token"],
              "ExposeHeaders": ["x-custom"], "MaxAge": 300}))
    status, headers, _ = request(path_url(server, url_id, "/plain"), "OPTIONS",
                                 headers={"origin": "https://app.example", "access-control-request-method": "POST"})
    assert status == 200
    assert headers["access-control-allow-origin"] == "https://app.example"
    assert headers["access-control-allow-methods"] == "GET,POST"
    assert headers["access-control-allow-headers"] == "x-token" and headers["access-control-max-age"] == "300"
    _, headers, _ = request(path_url(server, url_id, "/plain"), "OPTIONS",
                            headers={"origin": "https://evil.example", "access-control-request-method": "POST"})
    assert "access-control-allow-origin" not in headers
    _, headers, _ = request(path_url(server, url_id, "/full"), headers={"origin": "https://app.example"})
    assert headers["access-control-allow-origin"] == "https://app.example" and headers["access-control-expose-headers"] == "x-custom"


FORBIDDEN_IAM = ("Forbidden. For troubleshooting Function URL authorization issues, see: "
                 "https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html")


def signed_headers(url, key, secret):
    signed = AWSRequest(method="GET", url=url)
    SigV4Auth(Credentials(key, secret), "lambda", "us-east-1").add_auth(signed)
    return dict(signed.headers)


def test_none_url_needs_the_public_statement(server, lam, make_fn):
    fn = make_fn("nodejs20.x", SHAPES, "index.handler")
    url_id = url_id_of(lam.create_function_url_config(FunctionName=fn.name, AuthType="NONE"))
    url = path_url(server, url_id, "/plain")
    # As on AWS: a URL made through the API answers 403 until the function's policy lets
    # everyone call it.
    status, headers, body = request(url)
    assert (status, headers["x-amzn-ErrorType"], json.loads(body)) == (403, "AccessDeniedException", {"Message": "Forbidden"})
    # A statement for another auth type does not do.
    lam.add_permission(FunctionName=fn.name, StatementId="iam-only", Action="lambda:InvokeFunctionUrl", Principal="*",
                       FunctionUrlAuthType="AWS_IAM")
    assert request(url)[0] == 403
    lam.add_permission(FunctionName=fn.name, StatementId="public", Action="lambda:InvokeFunctionUrl", Principal="*",
                       FunctionUrlAuthType="NONE")
    status, _, body = request(url)
    assert (status, json.loads(body)) == (200, {"hello": "world"})
    lam.remove_permission(FunctionName=fn.name, StatementId="public")
    assert request(url)[0] == 403


def test_aws_iam_auth(server, lam, make_fn):
    fn = make_fn("nodejs20.x", SHAPES, "index.handler")
    url_id = url_id_of(lam.create_function_url_config(FunctionName=fn.name, AuthType="AWS_IAM"))
    url = path_url(server, url_id, "/plain")
    status, headers, body = request(url)
    assert (status, headers["x-amzn-ErrorType"], json.loads(body)) == (403, "AccessDeniedException", {"Message": "Forbidden"})
    # The account's root (the administrator) may call it.
    status, _, body = request(url, headers=signed_headers(url, "test", "test"))
    assert (status, json.loads(body)) == (200, {"hello": "world"})
    # A wrong secret, or a signature over another path, is refused.
    for headers in (signed_headers(url, "test", "wrong"), signed_headers(path_url(server, url_id, "/full"), "test", "test")):
        status, _, body = request(url, headers=headers)
        assert (status, json.loads(body)) == (403, {"Message": FORBIDDEN_IAM})
    # An IAM user needs lambda:InvokeFunctionUrl, from its own policy or the function's.
    iam = boto_client("iam", server.endpoint)
    user = unique("url-user")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]

    def as_user():
        return request(url, headers=signed_headers(url, key["AccessKeyId"], key["SecretAccessKey"]))

    status, _, body = as_user()
    assert (status, json.loads(body)) == (403, {"Message": FORBIDDEN_IAM})
    lam.add_permission(FunctionName=fn.name, StatementId="user", Action="lambda:InvokeFunctionUrl",
                       Principal=f"arn:aws:iam::{ACCOUNT}:user/{user}", FunctionUrlAuthType="AWS_IAM")
    assert as_user()[0] == 200
    lam.remove_permission(FunctionName=fn.name, StatementId="user")
    assert as_user()[0] == 403
    iam.put_user_policy(UserName=user, PolicyName="url", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "lambda:InvokeFunctionUrl", "Resource": arn(fn.name),
         "Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "AWS_IAM"}}}]}))
    assert as_user()[0] == 200

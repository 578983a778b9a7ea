"""Secrets are sealed at rest (AES-256-GCM, data keys wrapped by the master key kept apart
from the database): no file of the data directory holds an environment variable's value or
an IAM user's secret access key, a restart with the same key serves them, and a wrong or
missing key stops the start with a clear message."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from helpers import boto_client, create_function, data_dir_holds, make_zip, unique

HANDLER_PY = """
import os
def handler(event, context):
    return {"secret": os.environ.get("SECRET")}
"""


def invoked(lam, name: str, qualifier: str = "$LATEST") -> dict:
    resp = lam.invoke(FunctionName=name, Qualifier=qualifier, Payload=b"{}")
    assert "FunctionError" not in resp, resp
    return json.loads(resp["Payload"].read())


def secret_of(lam, name: str, qualifier: str | None = None) -> str | None:
    kwargs = {"Qualifier": qualifier} if qualifier else {}
    return lam.get_function_configuration(FunctionName=name, **kwargs)["Environment"]["Variables"]["SECRET"]


def test_variables_are_sealed_in_every_file_and_survive_a_restart(server_factory):
    s = server_factory()
    lam = s.lambda_client()
    name = unique("sealed")
    first, second = f"first-needle-{unique('v')}", f"second-needle-{unique('v')}"
    create_function(lam, name, "python3.11", "index.handler", make_zip({"index.py": HANDLER_PY}),
                    Environment={"Variables": {"SECRET": first}})
    assert invoked(lam, name) == {"secret": first}
    assert secret_of(lam, name) == first
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"SECRET": second, "OTHER": "x"}})
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    version = lam.publish_version(FunctionName=name)["Version"]
    assert secret_of(lam, name, version) == second
    assert invoked(lam, name, version) == {"secret": second}
    for needle in (first, second):
        assert data_dir_holds(s.data_dir, needle) == [], needle

    key_file = s.data_dir / "master.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert len(key_file.read_bytes()) == 32

    # Restarted with the same key: served in plain text, as AWS answers them.
    s.restart()
    lam = s.lambda_client()
    assert secret_of(lam, name) == second
    assert secret_of(lam, name, version) == second
    assert invoked(lam, name, version) == {"secret": second}
    for needle in (first, second):
        assert data_dir_holds(s.data_dir, needle) == [], needle
    s.stop()

    # Another key: refused at start, nothing served.
    wrong = s.data_dir.parent / "wrong.key"
    wrong.write_bytes(os.urandom(32))
    s.args = ["--master-key-file", str(wrong)]
    with pytest.raises(RuntimeError, match="is not the one .* was sealed under"):
        s.start()

    # The key file lost: refused, and no new key is left behind.
    s.args = []
    saved = key_file.read_bytes()
    key_file.unlink()
    with pytest.raises(RuntimeError, match="the master key is missing"):
        s.start()
    assert not key_file.exists()

    # The same key given from outside the data directory opens everything.
    outside = s.data_dir.parent / "outside.key"
    outside.write_text(saved.hex() + "\n")
    s.extra_env["NIMBUS_MASTER_KEY_FILE"] = str(outside)
    s.start()
    assert secret_of(s.lambda_client(), name, version) == second
    assert not key_file.exists()


def test_no_secret_access_key_is_in_any_file(server_factory):
    s = server_factory()
    iam = boto_client("iam", s.endpoint)
    user = unique("sealed-user")
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="who", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}]}))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    secret = key["SecretAccessKey"]
    assert data_dir_holds(s.data_dir, secret) == []
    s.restart()
    assert data_dir_holds(s.data_dir, secret) == []
    # Opened again at start: the key still signs.
    import boto3

    as_user = boto3.session.Session(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=secret, region_name="us-east-1")
    assert as_user.client("sts", endpoint_url=s.endpoint).get_caller_identity()["Arn"].endswith(f":user/{user}")


def test_an_external_key_file_keeps_the_key_out_of_the_data_dir(server_factory, tmp_path):
    key = tmp_path / "external.key"
    key.write_bytes(os.urandom(32))
    s = server_factory(args=["--master-key-file", str(key)])
    lam = s.lambda_client()
    name = unique("sealed-ext")
    needle = f"external-needle-{unique('v')}"
    create_function(lam, name, "python3.11", "index.handler", make_zip({"index.py": HANDLER_PY}),
                    Environment={"Variables": {"SECRET": needle}})
    assert not (s.data_dir / "master.key").exists()
    assert data_dir_holds(s.data_dir, needle) == []
    assert json.loads(json.dumps(secret_of(lam, name))) == needle


def test_variables_under_a_kms_key_are_sealed_and_survive_a_restart(server_factory):
    s = server_factory()
    lam, kms = s.lambda_client(), boto_client("kms", s.endpoint)
    key = kms.create_key()["KeyMetadata"]
    name = unique("sealed-kms")
    needle = f"kms-needle-{unique('v')}"
    create_function(lam, name, "python3.11", "index.handler", make_zip({"index.py": HANDLER_PY}),
                    Environment={"Variables": {"SECRET": needle}}, KMSKeyArn=key["Arn"])
    assert data_dir_holds(s.data_dir, needle) == []
    s.restart()
    lam, kms = s.lambda_client(), boto_client("kms", s.endpoint)
    assert secret_of(lam, name) == needle
    assert invoked(lam, name) == {"secret": needle}
    # The key's state is kept across the restart, and still decides whether the function runs.
    kms.disable_key(KeyId=key["KeyId"])
    s.restart()
    with pytest.raises(Exception) as e:
        s.lambda_client().invoke(FunctionName=name, Payload=b"{}")
    assert e.value.response["Error"]["Code"] == "KMSDisabledException"
    assert data_dir_holds(s.data_dir, needle) == []

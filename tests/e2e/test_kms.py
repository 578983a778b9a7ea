"""KMS (awsJson 1.1, `TrentService.*`): symmetric keys, their states and aliases, and the
cryptographic calls, with AWS's answers (LocalStack's AWS-validated snapshots where they
exist: tests/aws/services/kms/test_kms.snapshot.json)."""

from __future__ import annotations

import base64
import json
import re

import pytest
from botocore.exceptions import ClientError

from helpers import ACCOUNT, REGION, aws_cli_runner, boto_client, unique

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture(scope="module")
def kms(server):
    return boto_client("kms", server.endpoint)


def error(excinfo) -> tuple[str, str, int]:
    e = excinfo.value.response
    return e["Error"]["Code"], e["Error"]["Message"], e["ResponseMetadata"]["HTTPStatusCode"]


def test_create_describe_list(kms):
    meta = kms.create_key(Description="test key 123")["KeyMetadata"]
    assert UUID.fullmatch(meta["KeyId"])
    arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{meta['KeyId']}"
    # The recorded answer's members and values (TestKMS::test_create_key).
    want = {
        "AWSAccountId": ACCOUNT, "Arn": arn, "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT", "Description": "test key 123",
        "Enabled": True, "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"], "KeyId": meta["KeyId"], "KeyManager": "CUSTOMER",
        "KeySpec": "SYMMETRIC_DEFAULT", "KeyState": "Enabled", "KeyUsage": "ENCRYPT_DECRYPT", "MultiRegion": False,
        "Origin": "AWS_KMS",
    }
    described = kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]
    for m in (meta, described):
        assert {k: v for k, v in m.items() if k not in ("CreationDate", "CurrentKeyMaterialId")} == want
        assert re.fullmatch(r"[0-9a-f]{64}", m["CurrentKeyMaterialId"])
    assert kms.describe_key(KeyId=arn)["KeyMetadata"]["KeyId"] == meta["KeyId"]
    listed = kms.list_keys()["Keys"]
    assert {"KeyId": meta["KeyId"], "KeyArn": arn} in listed

    cases = [
        ("fake-key-id", "Invalid keyId 'fake-key-id'"),
        ("6f8d2a3c-0000-4000-8000-000000000000",
         f"Key 'arn:aws:kms:{REGION}:{ACCOUNT}:key/6f8d2a3c-0000-4000-8000-000000000000' does not exist"),
        ("alias/none", f"Alias arn:aws:kms:{REGION}:{ACCOUNT}:alias/none is not found."),
    ]
    for key_id, message in cases:
        with pytest.raises(ClientError) as e:
            kms.describe_key(KeyId=key_id)
        assert error(e) == ("NotFoundException", message, 400), key_id


def test_encrypt_decrypt_with_context(kms):
    key = kms.create_key()["KeyMetadata"]
    arn = key["Arn"]
    ctx = {"purpose": "e2e"}
    enc = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"hello kms", EncryptionContext=ctx)
    assert (enc["KeyId"], enc["EncryptionAlgorithm"]) == (arn, "SYMMETRIC_DEFAULT")
    blob = enc["CiphertextBlob"]
    assert b"hello kms" not in blob
    dec = kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)
    assert (dec["Plaintext"], dec["KeyId"], dec["EncryptionAlgorithm"]) == (b"hello kms", arn, "SYMMETRIC_DEFAULT")
    assert dec["KeyMaterialId"] == key["CurrentKeyMaterialId"]
    # Recorded: the wrong context or a damaged blob is InvalidCiphertextException, no message.
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    for kwargs in ({"CiphertextBlob": blob}, {"CiphertextBlob": blob, "EncryptionContext": {"purpose": "other"}},
                   {"CiphertextBlob": tampered, "EncryptionContext": ctx}):
        with pytest.raises(ClientError) as e:
            kms.decrypt(**kwargs)
        assert error(e) == ("InvalidCiphertextException", "", 400)
    other = kms.create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx, KeyId=other)
    assert error(e) == ("IncorrectKeyException",
                        "The key ID in the request does not identify a CMK that can perform this operation.", 400)
    with pytest.raises(ClientError) as e:
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x" * 4097)
    assert error(e) == ("ValidationException", "1 validation error detected: Value at 'plaintext' failed to satisfy "
                        "constraint: Member must have length less than or equal to 4096", 400)


def test_data_keys_and_re_encrypt(kms):
    a, b = kms.create_key()["KeyMetadata"], kms.create_key()["KeyMetadata"]
    dk = kms.generate_data_key(KeyId=a["KeyId"], KeySpec="AES_256")
    assert len(dk["Plaintext"]) == 32 and dk["KeyId"] == a["Arn"]
    assert kms.decrypt(CiphertextBlob=dk["CiphertextBlob"])["Plaintext"] == dk["Plaintext"]
    assert len(kms.generate_data_key(KeyId=a["KeyId"], NumberOfBytes=64)["Plaintext"]) == 64
    without = kms.generate_data_key_without_plaintext(KeyId=a["KeyId"], KeySpec="AES_128")
    assert set(without) - {"ResponseMetadata"} == {"CiphertextBlob", "KeyId"}
    assert len(kms.decrypt(CiphertextBlob=without["CiphertextBlob"])["Plaintext"]) == 16

    re_enc = kms.re_encrypt(CiphertextBlob=dk["CiphertextBlob"], DestinationKeyId=b["KeyId"],
                            DestinationEncryptionContext={"to": "b"})
    assert (re_enc["SourceKeyId"], re_enc["KeyId"]) == (a["Arn"], b["Arn"])
    assert (re_enc["SourceEncryptionAlgorithm"], re_enc["DestinationEncryptionAlgorithm"]) == ("SYMMETRIC_DEFAULT",) * 2
    back = kms.decrypt(CiphertextBlob=re_enc["CiphertextBlob"], EncryptionContext={"to": "b"})
    assert (back["Plaintext"], back["KeyId"]) == (dk["Plaintext"], b["Arn"])


def test_states_disable_and_deletion(kms):
    key = kms.create_key()["KeyMetadata"]
    key_id, arn = key["KeyId"], key["Arn"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"]
    kms.disable_key(KeyId=key_id)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"
    for call in (lambda: kms.encrypt(KeyId=key_id, Plaintext=b"x"), lambda: kms.decrypt(CiphertextBlob=blob)):
        with pytest.raises(ClientError) as e:
            call()
        assert error(e) == ("DisabledException", f"{arn} is disabled.", 400)
    kms.enable_key(KeyId=key_id)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"

    scheduled = kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert (scheduled["KeyId"], scheduled["KeyState"], scheduled["PendingWindowInDays"]) == (arn, "PendingDeletion", 7)
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (meta["KeyState"], meta["Enabled"]) == ("PendingDeletion", False) and "DeletionDate" in meta
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=blob)
    assert error(e) == ("KMSInvalidStateException", f"{arn} is pending deletion.", 400)
    assert kms.cancel_key_deletion(KeyId=key_id)["KeyId"] == arn
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"


def test_aliases(kms):
    key = kms.create_key()["KeyMetadata"]
    name = f"alias/{unique('app')}"
    kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == key["KeyId"]
    blob = kms.encrypt(KeyId=name, Plaintext=b"via alias")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob, KeyId=name)["Plaintext"] == b"via alias"
    aliases = kms.list_aliases(KeyId=key["KeyId"])["Aliases"]
    assert [(a["AliasName"], a["AliasArn"], a["TargetKeyId"]) for a in aliases] == [
        (name, f"arn:aws:kms:{REGION}:{ACCOUNT}:{name}", key["KeyId"])]
    with pytest.raises(ClientError) as e:
        kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    assert error(e)[0] == "AlreadyExistsException"
    with pytest.raises(ClientError) as e:
        kms.create_alias(AliasName="no-prefix", TargetKeyId=key["KeyId"])
    assert error(e) == ("ValidationException", 'Alias must start with the prefix "alias/". Please see '
                        "https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html", 400)
    kms.delete_alias(AliasName=name)
    assert kms.list_aliases(KeyId=key["KeyId"])["Aliases"] == []


def test_aws_cli_encrypt(aws_cli, server, kms, tmp_path):
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    cli = aws_cli_runner(aws_cli, server.endpoint, tmp_path / "home")
    # CLI v1 base64-encodes a blob argument itself: the plaintext is given as text.
    cp = cli("kms", "encrypt", "--key-id", key_id, "--plaintext", "from the cli")
    assert cp.returncode == 0, cp.err
    blob = base64.b64decode(json.loads(cp.out)["CiphertextBlob"])
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"from the cli"


HANDLER_PY = """
import os
def handler(event, context):
    return {"secret": os.environ.get("SECRET")}
"""


def test_function_variables_under_a_kms_key(kms, lam, server):
    from helpers import create_function, make_zip

    key = kms.create_key(Description="function env")["KeyMetadata"]
    name = unique("kmsfn")
    fn = create_function(lam, name, "python3.11", "index.handler", make_zip({"index.py": HANDLER_PY}),
                         Environment={"Variables": {"SECRET": "under-a-cmk"}}, KMSKeyArn=key["Arn"])
    try:
        assert fn.config["KMSKeyArn"] == key["Arn"]
        conf = lam.get_function_configuration(FunctionName=name)
        assert (conf["KMSKeyArn"], conf["Environment"]["Variables"]) == (key["Arn"], {"SECRET": "under-a-cmk"})
        out = lam.invoke(FunctionName=name, Payload=b"{}")
        assert json.loads(out["Payload"].read()) == {"secret": "under-a-cmk"}

        # Disabled: invoking fails as AWS's does, with a 502 KMSDisabledException.
        kms.disable_key(KeyId=key["KeyId"])
        with pytest.raises(ClientError) as e:
            lam.invoke(FunctionName=name, Payload=b"{}")
        code, message, status = error(e)
        assert (code, status) == ("KMSDisabledException", 502)
        assert message.startswith("Lambda was unable to decrypt the environment variables because the KMS key used is disabled."), message
        # The configuration is still readable; an update cannot seal under a disabled key.
        assert lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"] == {"SECRET": "under-a-cmk"}
        with pytest.raises(ClientError) as e:
            lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"SECRET": "new"}})
        assert error(e)[0] == "InvalidParameterValueException"

        kms.enable_key(KeyId=key["KeyId"])
        out = lam.invoke(FunctionName=name, Payload=b"{}")
        assert json.loads(out["Payload"].read()) == {"secret": "under-a-cmk"}

        kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
        with pytest.raises(ClientError) as e:
            lam.invoke(FunctionName=name, Payload=b"{}")
        assert error(e)[:1] == ("KMSInvalidStateException",) and error(e)[2] == 502
    finally:
        lam.delete_function(FunctionName=name)

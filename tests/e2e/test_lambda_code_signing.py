"""Code signing configs, runtime management, resource policies by ARN, and the operations of
features Nimbus has not built yet (capacity providers, function scaling, durable
executions), against a real server with boto3 and the aws CLI v1. Answers marked
"recorded" are AWS's own from LocalStack's validated snapshots
(tests/aws/services/lambda_/test_lambda_api.snapshot.json, keys named beside each case; see
tests/e2e/data/aws-answers/lambda.md section 6); the others are Nimbus's reading of AWS's
API reference, marked "not recorded" there."""

from __future__ import annotations

import json
import re

import pytest
from botocore.exceptions import ClientError

from helpers import ACCOUNT, REGION, ROLE, arn, aws_cli_runner, client_error, create_function, make_zip, signed_request, unique

PY = {"h.py": "def handler(event, context):\n    return event\n"}
PROFILE = f"arn:aws:signer:{REGION}:{ACCOUNT}:/signing-profiles/test"
CSC_ARN_RE = re.compile(rf"^arn:aws:lambda:{REGION}:{ACCOUNT}:code-signing-config:csc-[a-z0-9]{{17}}$")


@pytest.fixture
def fn(lam):
    name = unique("csc")
    create_function(lam, name, "python3.11", "h.handler", make_zip(PY))
    yield name
    lam.delete_function(FunctionName=name)


def _error(call) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as ei:
        call()
    return client_error(ei)


def _new_config(lam, policy="Enforce"):
    return lam.create_code_signing_config(
        Description="Testing CodeSigning Config",
        AllowedPublishers={"SigningProfileVersionArns": [PROFILE]},
        CodeSigningPolicies={"UntrustedArtifactOnDeployment": policy},
    )


def test_code_signing_config_lifecycle(lam, fn):
    """Recorded: TestCodeSigningConfig::test_function_code_signing_config."""
    r = _new_config(lam)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 201
    c = r["CodeSigningConfig"]
    csc = c["CodeSigningConfigArn"]
    assert CSC_ARN_RE.match(csc) and csc.endswith(":" + c["CodeSigningConfigId"])
    assert c["AllowedPublishers"] == {"SigningProfileVersionArns": [PROFILE]}
    assert c["CodeSigningPolicies"] == {"UntrustedArtifactOnDeployment": "Enforce"}
    assert c["Description"] == "Testing CodeSigning Config"
    assert re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$", c["LastModified"])

    u = lam.update_code_signing_config(CodeSigningConfigArn=csc, CodeSigningPolicies={"UntrustedArtifactOnDeployment": "Warn"})
    assert u["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert u["CodeSigningConfig"]["CodeSigningPolicies"] == {"UntrustedArtifactOnDeployment": "Warn"}
    assert u["CodeSigningConfig"]["Description"] == "Testing CodeSigning Config"
    assert lam.get_code_signing_config(CodeSigningConfigArn=csc)["CodeSigningConfig"] == u["CodeSigningConfig"]

    put = lam.put_function_code_signing_config(CodeSigningConfigArn=csc, FunctionName=fn)
    assert (put["CodeSigningConfigArn"], put["FunctionName"]) == (csc, fn)
    got = lam.get_function_code_signing_config(FunctionName=fn)
    assert (got["CodeSigningConfigArn"], got["FunctionName"]) == (csc, fn)
    assert u["CodeSigningConfig"] in lam.list_code_signing_configs()["CodeSigningConfigs"]
    assert lam.list_functions_by_code_signing_config(CodeSigningConfigArn=csc)["FunctionArns"] == [arn(fn)]

    # Deleting a config in use is refused (not recorded: AWS documents only the exception).
    code, status, _ = _error(lambda: lam.delete_code_signing_config(CodeSigningConfigArn=csc))
    assert (code, status) == ("ResourceConflictException", 409)

    # Code is still accepted under the config: Nimbus does not verify signatures.
    lam.update_function_code(FunctionName=fn, ZipFile=make_zip(PY))

    assert lam.delete_function_code_signing_config(FunctionName=fn)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert lam.delete_code_signing_config(CodeSigningConfigArn=csc)["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_code_signing_not_found_answers(lam, lam_raw, fn, server):
    """Recorded: TestCodeSigningConfig::test_code_signing_not_found_excs."""
    csc = _new_config(lam)["CodeSigningConfig"]["CodeSigningConfigArn"]
    invalid = csc[:-1] + ("x" if csc[-1] != "x" else "y")
    missing_fn = "csc-test-doesnotexist"
    not_found = ("ResourceNotFoundException", 404, f"The Lambda code signing configuration {invalid} can not be found.")
    csc_missing = ("CodeSigningConfigNotFoundException", 404,
                   f"The code signing configuration cannot be found. Check that the provided configuration is not deleted: {invalid}.")
    fn_missing = ("ResourceNotFoundException", 404, f"Function not found: {arn(missing_fn)}")
    cases = [
        (lambda: lam_raw.delete_code_signing_config(CodeSigningConfigArn=invalid), not_found),
        (lambda: lam_raw.delete_function_code_signing_config(FunctionName=missing_fn), fn_missing),
        (lambda: lam_raw.put_function_code_signing_config(FunctionName=missing_fn, CodeSigningConfigArn=csc), fn_missing),
        (lambda: lam_raw.put_function_code_signing_config(FunctionName=fn, CodeSigningConfigArn=invalid), csc_missing),
        (lambda: lam_raw.put_function_code_signing_config(FunctionName=missing_fn, CodeSigningConfigArn=invalid), csc_missing),
        (lambda: lam_raw.update_code_signing_config(CodeSigningConfigArn=invalid, Description="new-description"), not_found),
        (lambda: lam_raw.update_code_signing_config(CodeSigningConfigArn=invalid), not_found),
        (lambda: lam_raw.get_code_signing_config(CodeSigningConfigArn=invalid), not_found),
        (lambda: lam_raw.get_function_code_signing_config(FunctionName=missing_fn), fn_missing),
        (lambda: lam_raw.list_functions_by_code_signing_config(CodeSigningConfigArn=invalid), not_found),
    ]
    wrong = [(got, want) for call, want in cases if (got := _error(call)) != want]
    assert wrong == [], "\n".join(f"got  {g}\nwant {w}" for g, w in wrong)

    # nothing_to_delete_response, get_function_csc_fnwithoutcsc, list_functions_by_csc_fnwithoutcsc
    assert lam.delete_function_code_signing_config(FunctionName=fn)["ResponseMetadata"]["HTTPStatusCode"] == 204
    status, _, body = signed_request(server.endpoint, "GET", f"/2020-06-30/functions/{fn}/code-signing-config")
    assert (status, json.loads(body)) == (200, {})
    assert lam.list_functions_by_code_signing_config(CodeSigningConfigArn=csc)["FunctionArns"] == []
    # update_csc_noupdate_response: the config as it was
    same = lam.update_code_signing_config(CodeSigningConfigArn=csc)["CodeSigningConfig"]
    assert same["CodeSigningPolicies"] == {"UntrustedArtifactOnDeployment": "Enforce"}

    # The not-found body has `Message` and no `Type`; CodeSigningConfigNotFound has both.
    status, headers, body = signed_request(server.endpoint, "GET", f"/2020-04-22/code-signing-configs/{invalid}")
    assert (status, headers["x-amzn-errortype"], json.loads(body)) == (404, "ResourceNotFoundException", {"Message": not_found[2]})
    status, headers, body = signed_request(server.endpoint, "PUT", f"/2020-06-30/functions/{fn}/code-signing-config",
                                           json.dumps({"CodeSigningConfigArn": invalid}).encode())
    assert (status, json.loads(body)) == (404, {"Type": "User", "Message": csc_missing[2]})

    code, status, msg = _error(lambda: lam_raw.get_code_signing_config(CodeSigningConfigArn="arn:aws:lambda:x"))
    assert (code, status) == ("ValidationException", 400) and "at 'codeSigningConfigArn'" in msg
    lam.delete_code_signing_config(CodeSigningConfigArn=csc)


def test_create_function_with_a_code_signing_config(lam, lam_raw):
    csc = _new_config(lam, "Warn")["CodeSigningConfig"]["CodeSigningConfigArn"]
    name = unique("signed")
    try:
        create_function(lam, name, "python3.11", "h.handler", make_zip(PY), CodeSigningConfigArn=csc)
        assert lam.get_function_code_signing_config(FunctionName=name)["CodeSigningConfigArn"] == csc
        assert lam.list_functions_by_code_signing_config(CodeSigningConfigArn=csc)["FunctionArns"] == [arn(name)]
    finally:
        lam.delete_function(FunctionName=name)
    # Deleting the function frees the config.
    lam.delete_code_signing_config(CodeSigningConfigArn=csc)
    code, status, _ = _error(lambda: lam_raw.create_function(
        FunctionName=unique("signed"), Runtime="python3.11", Role=ROLE, Handler="h.handler",
        Code={"ZipFile": make_zip(PY)}, CodeSigningConfigArn=csc))
    assert (code, status) == ("CodeSigningConfigNotFoundException", 404)


def test_list_code_signing_configs_pages(lam):
    made = [_new_config(lam)["CodeSigningConfig"]["CodeSigningConfigArn"] for _ in range(3)]
    seen, marker = [], None
    while True:
        page = lam.list_code_signing_configs(MaxItems=2, **({"Marker": marker} if marker else {}))
        assert len(page["CodeSigningConfigs"]) <= 2
        seen += [c["CodeSigningConfigArn"] for c in page["CodeSigningConfigs"]]
        marker = page.get("NextMarker")
        if not marker:
            break
    assert set(made) <= set(seen) and len(seen) == len(set(seen))
    for c in made:
        lam.delete_code_signing_config(CodeSigningConfigArn=c)


def test_code_signing_with_the_aws_cli(aws_cli, server, tmp_path, fn):
    aws = aws_cli_runner(aws_cli, server.endpoint, tmp_path / "home", timeout=60)
    cp = aws("lambda", "create-code-signing-config", "--allowed-publishers", f"SigningProfileVersionArns={PROFILE}",
             "--code-signing-policies", "UntrustedArtifactOnDeployment=Warn")
    assert cp.returncode == 0, cp.err
    csc = json.loads(cp.out)["CodeSigningConfig"]["CodeSigningConfigArn"]
    cp = aws("lambda", "put-function-code-signing-config", "--function-name", fn, "--code-signing-config-arn", csc)
    assert cp.returncode == 0, cp.err
    cp = aws("lambda", "get-function-code-signing-config", "--function-name", fn)
    assert cp.returncode == 0 and json.loads(cp.out) == {"CodeSigningConfigArn": csc, "FunctionName": fn}, cp.err
    cp = aws("lambda", "list-code-signing-configs")
    assert cp.returncode == 0 and csc in [c["CodeSigningConfigArn"] for c in json.loads(cp.out)["CodeSigningConfigs"]]
    cp = aws("lambda", "delete-code-signing-config", "--code-signing-config-arn", csc)
    assert cp.returncode != 0 and "ResourceConflictException" in cp.err
    assert aws("lambda", "delete-function-code-signing-config", "--function-name", fn).returncode == 0
    assert aws("lambda", "delete-code-signing-config", "--code-signing-config-arn", csc).returncode == 0


def test_runtime_management(lam, lam_raw, fn):
    """Auto by default; per version; Manual needs a runtime version ARN (not recorded)."""
    assert lam.get_runtime_management_config(FunctionName=fn)["UpdateRuntimeOn"] == "Auto"
    r = lam.get_runtime_management_config(FunctionName=fn)
    assert r["FunctionArn"] == arn(fn) and "RuntimeVersionArn" not in r
    version = lam.publish_version(FunctionName=fn)["Version"]
    runtime_arn = f"arn:aws:lambda:{REGION}::runtime:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    r = lam.put_runtime_management_config(FunctionName=fn, Qualifier=version, UpdateRuntimeOn="Manual", RuntimeVersionArn=runtime_arn)
    assert (r["UpdateRuntimeOn"], r["RuntimeVersionArn"], r["FunctionArn"]) == ("Manual", runtime_arn, f"{arn(fn)}:{version}")
    assert lam.get_runtime_management_config(FunctionName=fn, Qualifier=version)["RuntimeVersionArn"] == runtime_arn
    assert lam.get_runtime_management_config(FunctionName=fn)["UpdateRuntimeOn"] == "Auto", "other versions keep theirs"
    r = lam.put_runtime_management_config(FunctionName=fn, UpdateRuntimeOn="FunctionUpdate")
    assert r["UpdateRuntimeOn"] == "FunctionUpdate" and "RuntimeVersionArn" not in r
    assert lam.get_runtime_management_config(FunctionName=fn, Qualifier="$LATEST")["UpdateRuntimeOn"] == "FunctionUpdate"
    assert _error(lambda: lam_raw.put_runtime_management_config(FunctionName=fn, UpdateRuntimeOn="Manual"))[:2] == (
        "InvalidParameterValueException", 400)
    assert _error(lambda: lam_raw.put_runtime_management_config(FunctionName=fn, UpdateRuntimeOn="Sometimes"))[:2] == (
        "ValidationException", 400)
    missing = unique("nope")
    assert _error(lambda: lam_raw.get_runtime_management_config(FunctionName=missing)) == (
        "ResourceNotFoundException", 404, f"Function not found: {arn(missing)}")
    assert _error(lambda: lam_raw.get_runtime_management_config(FunctionName=fn, Qualifier="99"))[:2] == (
        "ResourceNotFoundException", 404)


def test_resource_policy_by_arn(lam, lam_raw, fn):
    """Get/Put/DeleteResourcePolicy act on the same policy as AddPermission and GetPolicy."""
    fn_arn = arn(fn)
    assert _error(lambda: lam_raw.get_resource_policy(ResourceArn=fn_arn))[:2] == ("ResourceNotFoundException", 404)
    lam.add_permission(FunctionName=fn, StatementId="s3", Action="lambda:InvokeFunction", Principal="s3.amazonaws.com",
                       SourceArn="arn:aws:s3:::bucket")
    got = lam.get_resource_policy(ResourceArn=fn_arn)
    assert got["Policy"] == lam.get_policy(FunctionName=fn)["Policy"]
    doc = {"Version": "2012-10-17", "Statement": [{
        "Sid": "acct", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
        "Action": "lambda:InvokeFunction", "Resource": fn_arn}]}
    assert _error(lambda: lam_raw.put_resource_policy(ResourceArn=fn_arn, Policy=json.dumps(doc),
                                                      RevisionId="00000000-0000-0000-0000-000000000000"))[:2] == (
        "PreconditionFailedException", 412)
    put = lam.put_resource_policy(ResourceArn=fn_arn, Policy=json.dumps(doc), RevisionId=got["RevisionId"])
    stored = json.loads(lam.get_policy(FunctionName=fn)["Policy"])["Statement"]
    assert [(s["Sid"], s["Principal"]) for s in stored] == [("acct", {"AWS": "arn:aws:iam::111122223333:root"})]
    assert json.loads(put["Policy"])["Statement"] == stored
    deny = {"Statement": [{"Sid": "d", "Effect": "Deny", "Principal": "*", "Action": "lambda:InvokeFunction"}]}
    assert _error(lambda: lam_raw.put_resource_policy(ResourceArn=fn_arn, Policy=json.dumps(deny)))[:2] == (
        "InvalidParameterValueException", 400)
    assert lam.delete_resource_policy(ResourceArn=fn_arn)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert _error(lambda: lam_raw.get_policy(FunctionName=fn))[0] == "ResourceNotFoundException"
    assert _error(lambda: lam_raw.get_resource_policy(ResourceArn="arn:aws:lambda:x"))[:2] == ("ValidationException", 400)


def test_unbuilt_features_answer_as_an_account_without_them(lam_raw, fn):
    """Capacity providers (recorded: the not-found text, TestLambdaTag::test_tag_exceptions
    [capacity_provider]), function scaling and durable executions (not recorded)."""
    cp_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:capacity-provider:cp1"
    cp_missing = ("ResourceNotFoundException", 404, f"Capacity provider not found: {cp_arn}")
    execution = f"{arn(fn)}:$LATEST/durable-execution/run1/0123"
    cases = [
        (lambda: lam_raw.get_capacity_provider(CapacityProviderName="cp1"), cp_missing),
        (lambda: lam_raw.delete_capacity_provider(CapacityProviderName="cp1"), cp_missing),
        (lambda: lam_raw.list_function_versions_by_capacity_provider(CapacityProviderName=cp_arn), cp_missing),
        (lambda: lam_raw.get_durable_execution(DurableExecutionArn=execution),
         ("ResourceNotFoundException", 404, f"Durable execution not found: {execution}")),
        (lambda: lam_raw.stop_durable_execution(DurableExecutionArn=execution),
         ("ResourceNotFoundException", 404, f"Durable execution not found: {execution}")),
        (lambda: lam_raw.send_durable_execution_callback_heartbeat(CallbackId="abc="),
         ("ResourceNotFoundException", 404, "Callback not found: abc=")),
        (lambda: lam_raw.list_durable_executions_by_function(FunctionName=unique("nope") + "x"), None),
    ]
    for call, want in cases:
        got = _error(call)
        if want is None:
            assert got[:2] == ("ResourceNotFoundException", 404)
        else:
            assert got == want
    assert lam_raw.list_capacity_providers()["CapacityProviders"] == []
    assert lam_raw.list_durable_executions_by_function(FunctionName=fn)["DurableExecutions"] == []
    code, status, msg = _error(lambda: lam_raw.create_capacity_provider(
        CapacityProviderName="cp1", VpcConfig={"SubnetIds": ["subnet-1"], "SecurityGroupIds": ["sg-1"]},
        PermissionsConfig={"CapacityProviderOperatorRoleArn": f"arn:aws:iam::{ACCOUNT}:role/r"}))
    assert (code, status) == ("InvalidParameterValueException", 400) and "Nimbus does not support capacity providers" in msg
    code, status, msg = _error(lambda: lam_raw.get_function_scaling_config(FunctionName=fn, Qualifier="1"))
    assert (code, status) == ("InvalidParameterValueException", 400) and "capacity provider" in msg

"""Lambda's error answers exactly as AWS gives them: code, HTTP status and message text, and
the JSON body's member casing. The expected answers are AWS's own, as recorded against AWS in
LocalStack's validated snapshot files (tests/aws/services/lambda_/test_lambda_api.snapshot.json;
the snapshot keys are named beside each case), with the account, region and names of this
run put in. Tags (TagResource, UntagResource, ListTags) are covered here too."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from helpers import ACCOUNT, REGION, ROLE, arn, client_error, create_function, make_zip, signed_request, unique

PY = {"h.py": "def handler(event, context):\n    return event\n"}


@pytest.fixture(scope="module")
def fn(lam):
    """A function with version 1 and an alias `live` → 1."""
    name = unique("exact")
    create_function(lam, name, "python3.11", "h.handler", make_zip(PY))
    lam.publish_version(FunctionName=name)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    yield name
    lam.delete_function(FunctionName=name)


def _error(call) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as ei:
        call()
    return client_error(ei)


def test_not_found_and_conflict_texts(lam_raw, fn):
    missing = unique("nope")
    a = arn(missing)
    cases = [
        # api::TestLambdaFunction::test_ops_on_nonexisting_fn[get_function]
        (lambda: lam_raw.get_function(FunctionName=missing), ("ResourceNotFoundException", 404, f"Function not found: {a}")),
        # lambda::TestLambdaFeatures::test_invoke_exceptions: Invoke names $LATEST
        (lambda: lam_raw.invoke(FunctionName=missing), ("ResourceNotFoundException", 404, f"Function not found: {a}:$LATEST")),
        # test_ops_on_nonexisting_version[get_function]
        (lambda: lam_raw.get_function(FunctionName=fn, Qualifier="1221"),
         ("ResourceNotFoundException", 404, f"Function not found: {arn(fn)}:1221")),
        # test_delete_on_nonexisting_version: the qualifier is dropped
        (lambda: lam_raw.delete_function(FunctionName=missing, Qualifier="1233"),
         ("ResourceNotFoundException", 404, f"Function not found: {a}")),
        # TestLambdaAlias::test_notfound_and_invalid_routingconfigs › alias_does_not_exist_esc
        (lambda: lam_raw.get_alias(FunctionName=fn, Name="non-existent"),
         ("ResourceNotFoundException", 404, f"Cannot find alias arn: {arn(fn)}:non-existent")),
        # test_non_existent_alias_update
        (lambda: lam_raw.update_alias(FunctionName=fn, Name="non-existent", Description="x"),
         ("ResourceNotFoundException", 404, f"Alias not found: {arn(fn)}:non-existent")),
        # routing_config_exc_already_exist
        (lambda: lam_raw.create_alias(FunctionName=fn, Name="live", FunctionVersion="1"),
         ("ResourceConflictException", 409, f"Alias already exists: {arn(fn)}:live")),
        # target_version_doesnotexist
        (lambda: lam_raw.create_alias(FunctionName=fn, Name="other", FunctionVersion="10"),
         ("ResourceNotFoundException", 404, f"Function not found: {arn(fn)}:10")),
        # TestLambdaUrl::test_url_config_exceptions
        (lambda: lam_raw.get_function_url_config(FunctionName=fn),
         ("ResourceNotFoundException", 404, "The resource you requested does not exist.")),
        (lambda: lam_raw.create_function_url_config(FunctionName=missing, AuthType="NONE"),
         ("ResourceNotFoundException", 404, "Function does not exist")),
        # TestLambdaEventSourceMappings::test_event_source_mapping_exceptions
        (lambda: lam_raw.get_event_source_mapping(UUID="00000000-0000-0000-0000-000000000000"),
         ("ResourceNotFoundException", 404, "The resource you requested does not exist.")),
        (lambda: lam_raw.create_event_source_mapping(
            FunctionName=missing, EventSourceArn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:q"),
         ("InvalidParameterValueException", 400, "Function does not exist")),
        # TestLambdaLayer::test_layer_exceptions
        (lambda: lam_raw.get_layer_version(LayerName=missing, VersionNumber=1),
         ("ResourceNotFoundException", 404, "The resource you requested does not exist.")),
        (lambda: lam_raw.get_layer_version(LayerName=missing, VersionNumber=0),
         ("InvalidParameterValueException", 400, "Layer Version Cannot be less than 1")),
        # TestLambdaEventInvokeConfig::test_lambda_eventinvokeconfig_exceptions
        (lambda: lam_raw.get_function_event_invoke_config(FunctionName=fn),
         ("ResourceNotFoundException", 404, f"The function {arn(fn)}:$LATEST doesn't have an EventInvokeConfig")),
        (lambda: lam_raw.put_function_event_invoke_config(FunctionName=missing, MaximumRetryAttempts=1),
         ("ResourceNotFoundException", 404, "The function doesn't exist.")),
        # test_ops_with_arn_qualifier_mismatch
        (lambda: lam_raw.get_function(FunctionName=f"{arn(fn)}:1", Qualifier="$LATEST"),
         ("InvalidParameterValueException", 400,
          "The derived qualifier from the function name does not match the specified qualifier.")),
        # test_function_concurrency_exceptions › put_function_concurrency_with_qualified_arn
        (lambda: lam_raw.put_function_concurrency(FunctionName=f"{arn(fn)}:1", ReservedConcurrentExecutions=1),
         ("InvalidParameterValueException", 400,
          "This operation is permitted on Lambda functions only. Aliases and versions do not support this "
          "operation. Please specify either a function name or an unqualified function ARN.")),
    ]
    wrong = [(got, want) for call, want in cases if (got := _error(call)) != want]
    assert wrong == [], "\n".join(f"got  {g}\nwant {w}" for g, w in wrong)


def test_idempotent_deletes(lam, fn):
    """test_non_existent_alias_deletion, test_layer_exceptions › delete_nonexistent_response."""
    assert lam.delete_alias(FunctionName=fn, Name="never-made")["ResponseMetadata"]["HTTPStatusCode"] == 204
    r = lam.delete_layer_version(LayerName=unique("nolayer"), VersionNumber=3)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_create_function_parameter_errors(lam_raw, fn):
    """test_create_lambda_exceptions, test_function_arns."""
    base = dict(Role=ROLE, Handler="h.handler", Code={"ZipFile": make_zip(PY)})
    code, status, msg = _error(lambda: lam_raw.create_function(FunctionName=unique("rt"), Runtime="non-existent-runtime", **base))
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert msg.startswith("Value non-existent-runtime at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: [")
    assert msg.endswith("] or be a valid ARN") and "python3.12" in msg
    long_name = "a" * 65
    assert _error(lambda: lam_raw.create_function(FunctionName=long_name, Runtime="python3.11", **base)) == (
        "InvalidParameterValueException", 400,
        f"1 validation error detected: Value '{long_name}' at 'functionName' failed to satisfy constraint: "
        "Member must have length less than or equal to 64")
    assert _error(lambda: lam_raw.create_function(FunctionName=fn, Runtime="python3.11", **base)) == (
        "ResourceConflictException", 409, f"Function already exist: {fn}")


def test_error_bodies_use_the_models_member_casing(server, fn):
    """ResourceNotFoundException carries `Message`, InvalidParameterValueException `message`
    (the members botocore's model gives each)."""
    status, headers, body = signed_request(server.endpoint, "GET", f"/2015-03-31/functions/{unique('nope')}")
    assert status == 404 and headers["x-amzn-errortype"] == "ResourceNotFoundException"
    doc = json.loads(body)
    assert doc["Type"] == "User" and "Message" in doc and "message" not in doc
    status, headers, body = signed_request(server.endpoint, "GET", f"/2015-03-31/functions/{fn}?Qualifier=%24LATEST")
    assert status == 200
    status, headers, body = signed_request(server.endpoint, "GET", "/2018-10-31/layers/x/versions/0")
    doc = json.loads(body)
    assert status == 400 and "message" in doc and "Message" not in doc


def test_tags(lam, lam_raw, fn):
    """TestLambdaTags::test_tag_lifecycle and test_tag_exceptions."""
    fn_arn = arn(fn)
    assert "Tags" not in lam.get_function(FunctionName=fn), "no Tags member while there are none"
    assert lam.list_tags(Resource=fn_arn)["Tags"] == {}
    r = lam.tag_resource(Resource=fn_arn, Tags={"team": "a", "env": "dev"})
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert lam.list_tags(Resource=fn_arn)["Tags"] == {"team": "a", "env": "dev"}
    assert lam.get_function(FunctionName=fn)["Tags"] == {"team": "a", "env": "dev"}
    lam.tag_resource(Resource=fn_arn, Tags={"team": "b"})
    r = lam.untag_resource(Resource=fn_arn, TagKeys=["env", "not-there"])
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert lam.list_tags(Resource=fn_arn)["Tags"] == {"team": "b"}

    tagged = unique("tagged")
    try:
        create_function(lam, tagged, "python3.11", "h.handler", make_zip(PY), Tags={"from": "create"})
        assert lam.list_tags(Resource=arn(tagged))["Tags"] == {"from": "create"}
        assert lam.get_function(FunctionName=tagged)["Tags"] == {"from": "create"}
    finally:
        lam.delete_function(FunctionName=tagged)
    missing = arn(unique("nope"))
    for call in (lambda: lam_raw.list_tags(Resource=missing), lambda: lam_raw.tag_resource(Resource=missing, Tags={"a": "b"}),
                 lambda: lam_raw.untag_resource(Resource=missing, TagKeys=["a"])):
        assert _error(call) == ("ResourceNotFoundException", 404, f"Function not found: {missing}")
    assert _error(lambda: lam_raw.tag_resource(Resource=f"{fn_arn}:1", Tags={"a": "b"})) == (
        "InvalidParameterValueException", 400, "Tags on function aliases and versions are not supported. Please specify a function ARN.")
    assert _error(lambda: lam_raw.tag_resource(Resource=fn_arn, Tags={})) == (
        "InvalidParameterValueException", 400, "An error occurred and the request cannot be processed.")
    code, status, msg = _error(lambda: lam_raw.tag_resource(Resource="arn:aws:something", Tags={"a": "b"}))
    assert (code, status) == ("ValidationException", 400)
    assert msg.startswith("1 validation error detected: Value 'arn:aws:something' at 'resource' failed to satisfy constraint: ")
    assert _error(lambda: lam_raw.tag_resource(Resource=fn_arn, Tags={f"k{i}": "v" for i in range(50)})) == (
        "InvalidParameterValueException", 400, "Number of tags exceeds resource tag limit.")


def test_resource_policies(lam, lam_raw, fn):
    """AddPermission, GetPolicy, RemovePermission (TestLambdaPermissions::test_permission_exceptions
    for the errors)."""
    missing = unique("nope")
    assert _error(lambda: lam_raw.get_policy(FunctionName=fn)) == (
        "ResourceNotFoundException", 404, "The resource you requested does not exist.")
    r = lam.add_permission(FunctionName=fn, StatementId="s3", Action="lambda:InvokeFunction", Principal="s3.amazonaws.com",
                           SourceArn="arn:aws:s3:::bucket", SourceAccount=ACCOUNT)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert json.loads(r["Statement"]) == {
        "Sid": "s3", "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "lambda:InvokeFunction",
        "Resource": arn(fn), "Condition": {"ArnLike": {"AWS:SourceArn": "arn:aws:s3:::bucket"},
                                           "StringEquals": {"AWS:SourceAccount": ACCOUNT}}}
    lam.add_permission(FunctionName=fn, StatementId="acct", Action="lambda:GetFunction", Principal="111122223333")
    lam.add_permission(FunctionName=fn, StatementId="live", Action="lambda:InvokeFunction", Principal="*", Qualifier="live")
    policy = lam.get_policy(FunctionName=fn)
    doc = json.loads(policy["Policy"])
    assert (doc["Version"], doc["Id"]) == ("2012-10-17", "default")
    assert [(s["Sid"], s["Principal"]) for s in doc["Statement"]] == [
        ("s3", {"Service": "s3.amazonaws.com"}), ("acct", {"AWS": "arn:aws:iam::111122223333:root"})]
    live = json.loads(lam.get_policy(FunctionName=fn, Qualifier="live")["Policy"])["Statement"]
    assert [(s["Sid"], s["Principal"], s["Resource"]) for s in live] == [("live", "*", f"{arn(fn)}:live")]
    cases = [
        (lambda: lam_raw.add_permission(FunctionName=fn, StatementId="s3", Action="lambda:InvokeFunction", Principal="*"),
         ("ResourceConflictException", 409,
          "The statement id (s3) provided already exists. Please provide a new statement id, or remove the existing statement.")),
        (lambda: lam_raw.add_permission(FunctionName=missing, StatementId="x", Action="lambda:InvokeFunction", Principal="*"),
         ("ResourceNotFoundException", 404, f"Function not found: {arn(missing)}")),
        (lambda: lam_raw.remove_permission(FunctionName=missing, StatementId="x"),
         ("ResourceNotFoundException", 404, f"No policy found for: {arn(missing)}")),
        (lambda: lam_raw.remove_permission(FunctionName=fn, StatementId="nope"),
         ("ResourceNotFoundException", 404, "Statement nope is not found in resource policy.")),
        (lambda: lam_raw.add_permission(FunctionName=fn, StatementId="x", Action="lambda:InvokeFunction", Principal="*",
                                        RevisionId="stale"),
         ("PreconditionFailedException", 412,
          "The Revision Id provided does not match the latest Revision Id. Call the GetPolicy API to retrieve the latest Revision Id")),
    ]
    _check_all(cases)
    r = lam.remove_permission(FunctionName=fn, StatementId="s3", RevisionId=policy["RevisionId"])
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert [s["Sid"] for s in json.loads(lam.get_policy(FunctionName=fn)["Policy"])["Statement"]] == ["acct"]
    lam.remove_permission(FunctionName=fn, StatementId="acct")
    assert _error(lambda: lam_raw.get_policy(FunctionName=fn))[0] == "ResourceNotFoundException"


def _check_all(cases):
    wrong = [(got, want) for call, want in cases if (got := _error(call)) != want]
    assert wrong == [], "\n".join(f"got  {g}\nwant {w}" for g, w in wrong)


def test_recursion_config(lam, lam_raw, fn):
    """Get/PutFunctionRecursionConfig: Terminate by default, kept once set."""
    assert lam.get_function_recursion_config(FunctionName=fn)["RecursiveLoop"] == "Terminate"
    assert lam.put_function_recursion_config(FunctionName=fn, RecursiveLoop="Allow")["RecursiveLoop"] == "Allow"
    assert lam.get_function_recursion_config(FunctionName=fn)["RecursiveLoop"] == "Allow"
    code, status, msg = _error(lambda: lam_raw.put_function_recursion_config(FunctionName=fn, RecursiveLoop="Sometimes"))
    assert (code, status) == ("ValidationException", 400) and "[Allow, Terminate]" in msg
    lam.put_function_recursion_config(FunctionName=fn, RecursiveLoop="Terminate")

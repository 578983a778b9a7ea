"""Versions, $LATEST and aliases (weighted, and alias → alias chains): the article's
release flow, with AWS's errors for every rule."""

import pytest
from botocore.exceptions import ClientError

from helpers import expect_error as expect, arn, client_error, invoke, make_zip, sha256_b64

ROLE_FREE = {}


def code(tag: str) -> dict:
    """A Node function whose answer says which code ran."""
    return {"index.js": f"exports.handler = async () => ({{ code: '{tag}', version: process.env.AWS_LAMBDA_FUNCTION_VERSION }});"}



def run(lam, name, qualifier=None):
    kw = {"Qualifier": qualifier} if qualifier else {}
    r = lam.invoke(FunctionName=name, Payload=b"{}", **kw)
    import json
    body = json.loads(r["Payload"].read())
    assert "FunctionError" not in r, body
    return body["code"], r["ExecutedVersion"], body["version"]


def update_code(lam, name, tag, **kw):
    return lam.update_function_code(FunctionName=name, ZipFile=make_zip(code(tag)), **kw)


def test_publish_list_get_invoke_versions(lam, make_fn):
    fn = make_fn("nodejs20.x", code("A"), "index.handler")
    v1 = lam.publish_version(FunctionName=fn.name, Description="first")
    assert v1["Version"] == "1"
    assert v1["FunctionArn"] == arn(fn.name) + ":1"
    assert v1["Description"] == "first"
    # Nothing changed: the newest version comes back instead of a new one.
    assert lam.publish_version(FunctionName=fn.name)["Version"] == "1"
    update_code(lam, fn.name, "B")
    v2 = lam.publish_version(FunctionName=fn.name)
    assert v2["Version"] == "2"
    assert v2["CodeSha256"] != v1["CodeSha256"]
    versions = lam.list_versions_by_function(FunctionName=fn.name)["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "1", "2"]
    assert versions[0]["FunctionArn"] == arn(fn.name) + ":$LATEST"
    page = lam.list_versions_by_function(FunctionName=fn.name, MaxItems=2)
    assert [v["Version"] for v in page["Versions"]] == ["$LATEST", "1"]
    rest = lam.list_versions_by_function(FunctionName=fn.name, Marker=page["NextMarker"])
    assert [v["Version"] for v in rest["Versions"]] == ["2"]
    assert lam.get_function_configuration(FunctionName=fn.name, Qualifier="1")["CodeSha256"] == v1["CodeSha256"]
    assert lam.get_function(FunctionName=f"{fn.name}:1")["Configuration"]["Version"] == "1"
    assert run(lam, fn.name, "1") == ("A", "1", "1")
    assert run(lam, fn.name, "2") == ("B", "2", "2")
    assert run(lam, fn.name) == ("B", "$LATEST", "$LATEST")
    assert run(lam, arn(fn.name) + ":1") == ("A", "1", "1")
    # Published versions never change: configuration updates touch $LATEST only.
    lam.update_function_configuration(FunctionName=fn.name, MemorySize=256)
    assert lam.get_function_configuration(FunctionName=fn.name, Qualifier="1")["MemorySize"] == 128
    assert lam.get_function_configuration(FunctionName=fn.name)["MemorySize"] == 256
    # ListFunctions with FunctionVersion=ALL lists every version.
    every = [f["FunctionArn"] for f in lam.list_functions(FunctionVersion="ALL")["Functions"] if f["FunctionName"] == fn.name]
    assert every == [arn(fn.name) + ":$LATEST", arn(fn.name) + ":1", arn(fn.name) + ":2"]


def test_publish_preconditions(lam, make_fn):
    fn = make_fn("nodejs20.x", code("A"), "index.handler")
    expect(lambda: lam.publish_version(FunctionName=fn.name, RevisionId="not-the-revision"), "PreconditionFailedException", 412)
    expect(lambda: lam.publish_version(FunctionName=fn.name, CodeSha256=sha256_b64(b"other")), "InvalidParameterValueException", 400)
    rev = lam.get_function_configuration(FunctionName=fn.name)["RevisionId"]
    sha = lam.get_function_configuration(FunctionName=fn.name)["CodeSha256"]
    assert lam.publish_version(FunctionName=fn.name, RevisionId=rev, CodeSha256=sha)["Version"] == "1"


def test_publish_on_create_and_update(lam, make_fn):
    fn = make_fn("nodejs20.x", code("A"), "index.handler", Publish=True)
    assert fn.config["Version"] == "1"
    assert update_code(lam, fn.name, "B", Publish=True)["Version"] == "2"
    assert run(lam, fn.name, "1")[0] == "A"


def test_delete_version(lam, make_fn):
    fn = make_fn("nodejs20.x", code("A"), "index.handler", Publish=True)
    update_code(lam, fn.name, "B", Publish=True)
    lam.create_alias(FunctionName=fn.name, Name="live", FunctionVersion="1")
    msg = expect(lambda: lam.delete_function(FunctionName=fn.name, Qualifier="1"), "ResourceConflictException", 409)
    assert "live" in msg
    lam.delete_function(FunctionName=fn.name, Qualifier="2")
    expect(lambda: lam.get_function(FunctionName=fn.name, Qualifier="2"), "ResourceNotFoundException", 404)
    expect(lambda: lam.delete_function(FunctionName=fn.name, Qualifier="$LATEST"), "InvalidParameterValueException", 400)
    # Version numbers are never reused.
    update_code(lam, fn.name, "C")
    assert lam.publish_version(FunctionName=fn.name)["Version"] == "3"


def test_alias_crud(lam, lam_raw, make_fn):
    fn = make_fn("nodejs20.x", code("A"), "index.handler", Publish=True)
    a = lam.create_alias(FunctionName=fn.name, Name="prod", FunctionVersion="1", Description="live traffic")
    assert a["AliasArn"] == arn(fn.name) + ":prod"
    assert (a["Name"], a["FunctionVersion"], a["Description"]) == ("prod", "1", "live traffic")
    expect(lambda: lam.create_alias(FunctionName=fn.name, Name="prod", FunctionVersion="1"), "ResourceConflictException", 409)
    got = lam.get_alias(FunctionName=fn.name, Name="prod")
    assert got["RevisionId"] == a["RevisionId"]
    lam.create_alias(FunctionName=fn.name, Name="dev", FunctionVersion="$LATEST")
    assert [x["Name"] for x in lam.list_aliases(FunctionName=fn.name)["Aliases"]] == ["dev", "prod"]
    assert [x["Name"] for x in lam.list_aliases(FunctionName=fn.name, FunctionVersion="1")["Aliases"]] == ["prod"]
    expect(lambda: lam.update_alias(FunctionName=fn.name, Name="prod", RevisionId="stale"), "PreconditionFailedException", 412)
    upd = lam.update_alias(FunctionName=fn.name, Name="prod", Description="moved", RevisionId=got["RevisionId"])
    assert upd["Description"] == "moved" and upd["RevisionId"] != got["RevisionId"]
    assert run(lam, fn.name, "prod") == ("A", "1", "1")
    assert run(lam, fn.name, "dev") == ("A", "$LATEST", "$LATEST")
    lam.delete_alias(FunctionName=fn.name, Name="prod")
    expect(lambda: lam.get_alias(FunctionName=fn.name, Name="prod"), "ResourceNotFoundException", 404)
    expect(lambda: lam.invoke(FunctionName=fn.name, Qualifier="prod", Payload=b"{}"), "ResourceNotFoundException", 404)
    # AWS's rules.
    expect(lambda: lam_raw.create_alias(FunctionName=fn.name, Name="123", FunctionVersion="1"), "ValidationException", 400)
    expect(lambda: lam.create_alias(FunctionName=fn.name, Name="x", FunctionVersion="9"), "ResourceNotFoundException", 404)
    expect(lambda: lam.create_alias(FunctionName="nope-" + fn.name, Name="x", FunctionVersion="1"), "ResourceNotFoundException", 404)


def test_alias_chains(lam, make_fn):
    fn = make_fn("nodejs20.x", code("A"), "index.handler", Publish=True)
    lam.create_alias(FunctionName=fn.name, Name="dev", FunctionVersion="$LATEST")
    lam.create_alias(FunctionName=fn.name, Name="qa", FunctionVersion="dev")
    assert run(lam, fn.name, "qa") == ("A", "$LATEST", "$LATEST")
    update_code(lam, fn.name, "B")
    assert run(lam, fn.name, "qa")[0] == "B"
    # A cycle is refused when it would be made.
    msg = expect(lambda: lam.update_alias(FunctionName=fn.name, Name="dev", FunctionVersion="qa"), "InvalidParameterValueException", 400)
    assert "cycle" in msg
    expect(lambda: lam.create_alias(FunctionName=fn.name, Name="self", FunctionVersion="self"), "InvalidParameterValueException", 400)
    # So is a chain that is too long.
    prev = "qa"
    for i in range(3):
        lam.create_alias(FunctionName=fn.name, Name=f"l{i}", FunctionVersion=prev)
        prev = f"l{i}"
    expect(lambda: lam.create_alias(FunctionName=fn.name, Name="toofar", FunctionVersion=prev), "InvalidParameterValueException", 400)
    # An alias another alias points at cannot be deleted until that link is gone.
    msg = expect(lambda: lam.delete_alias(FunctionName=fn.name, Name="dev"), "ResourceConflictException", 409)
    assert "qa" in msg
    lam.update_alias(FunctionName=fn.name, Name="qa", FunctionVersion="1")
    assert run(lam, fn.name, "l2") == ("A", "1", "1")
    for name in ("l2", "l1", "l0"):
        lam.delete_alias(FunctionName=fn.name, Name=name)
    lam.delete_alias(FunctionName=fn.name, Name="dev")


def test_weighted_routing(lam, lam_raw, make_fn):
    fn = make_fn("nodejs20.x", code("one"), "index.handler", Publish=True)
    update_code(lam, fn.name, "two", Publish=True)
    lam.create_alias(FunctionName=fn.name, Name="canary", FunctionVersion="1",
                     RoutingConfig={"AdditionalVersionWeights": {"2": 0.3}})
    got = lam.get_alias(FunctionName=fn.name, Name="canary")
    assert got["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.3}}
    n = 400
    counts = {"1": 0, "2": 0}
    for _ in range(n):
        tag, executed, env_version = run(lam, fn.name, "canary")
        assert env_version == executed and tag == {"1": "one", "2": "two"}[executed]
        counts[executed] += 1
    # Binomial(400, 0.3): mean 120, sd 9.2; six sd either side.
    assert 65 <= counts["2"] <= 175, counts
    # Weights: within 0–1, not on $LATEST, one extra version, not the primary.
    expect(lambda: lam_raw.update_alias(FunctionName=fn.name, Name="canary", RoutingConfig={"AdditionalVersionWeights": {"2": 1.5}}),
           "ValidationException", 400)
    expect(lambda: lam.create_alias(FunctionName=fn.name, Name="bad", FunctionVersion="$LATEST",
                                    RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}}), "InvalidParameterValueException", 400)
    expect(lambda: lam.update_alias(FunctionName=fn.name, Name="canary", RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}}),
           "InvalidParameterValueException", 400)
    # Clearing the routing sends everything to the primary version.
    lam.update_alias(FunctionName=fn.name, Name="canary", RoutingConfig={"AdditionalVersionWeights": {}})
    assert {run(lam, fn.name, "canary")[1] for _ in range(20)} == {"1"}


def test_qualifier_errors(lam, make_fn):
    fn = make_fn("nodejs20.x", code("A"), "index.handler", Publish=True)
    expect(lambda: lam.get_function(FunctionName=f"{fn.name}:1", Qualifier="2"), "InvalidParameterValueException", 400)
    expect(lambda: lam.invoke(FunctionName=fn.name, Qualifier="7", Payload=b"{}"), "ResourceNotFoundException", 404)
    expect(lambda: lam.invoke(FunctionName=fn.name, Qualifier="nosuchalias", Payload=b"{}"), "ResourceNotFoundException", 404)


def test_article_three_states(lam, make_fn):
    """The release flow: dev follows $LATEST, stage and prod move by hand."""
    fn = make_fn("nodejs20.x", code("v1"), "index.handler")
    assert lam.publish_version(FunctionName=fn.name)["Version"] == "1"
    lam.create_alias(FunctionName=fn.name, Name="dev", FunctionVersion="$LATEST")
    lam.create_alias(FunctionName=fn.name, Name="stage", FunctionVersion="1")
    lam.create_alias(FunctionName=fn.name, Name="prod", FunctionVersion="1")
    assert [run(lam, fn.name, a)[0] for a in ("dev", "stage", "prod")] == ["v1", "v1", "v1"]

    update_code(lam, fn.name, "v2")
    assert lam.publish_version(FunctionName=fn.name)["Version"] == "2"
    lam.update_alias(FunctionName=fn.name, Name="stage", FunctionVersion="2")
    assert run(lam, fn.name, "dev")[0] == "v2"
    assert run(lam, fn.name, "stage") == ("v2", "2", "2")
    assert run(lam, fn.name, "prod") == ("v1", "1", "1")

    update_code(lam, fn.name, "v3")
    assert lam.publish_version(FunctionName=fn.name)["Version"] == "3"
    assert run(lam, fn.name, "dev")[0] == "v3"
    assert run(lam, fn.name, "stage")[0] == "v2"
    assert run(lam, fn.name, "prod")[0] == "v1"

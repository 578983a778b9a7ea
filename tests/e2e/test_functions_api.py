"""Control-plane API: create/get/list/update/delete, account settings, waiters."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from helpers import (
    ACCOUNT,
    LAST_MODIFIED_RE,
    ROLE,
    arn,
    client_error,
    http_get,
    invoke,
    make_zip,
    sha256_b64,
    unique,
)

V1 = {"index.js": "exports.handler = async (e) => ({ v: 1, env: process.env.GREETING || null, "
                  "mem: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE, h: process.env._HANDLER });\n"
                  "exports.other = async () => ({ other: true });\n"}
V2 = {"index.js": "exports.handler = async () => ({ v: 2 });\n"}


def _cfg(resp: dict) -> dict:
    return {k: v for k, v in resp.items() if k != "ResponseMetadata"}


def test_create_function_response(lam):
    name = unique("create")
    zip_bytes = make_zip(V1)
    try:
        resp = lam.create_function(FunctionName=name, Runtime="nodejs20.x", Handler="index.handler",
                                   Role=ROLE, Code={"ZipFile": zip_bytes})
        assert resp["ResponseMetadata"]["HTTPStatusCode"] == 201
        assert resp["FunctionName"] == name
        assert resp["FunctionArn"] == f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}"
        assert resp["Runtime"] == "nodejs20.x"
        assert resp["Handler"] == "index.handler"
        assert resp["Role"] == ROLE
        assert resp["CodeSha256"] == sha256_b64(zip_bytes)
        assert resp["CodeSize"] == len(zip_bytes)
        assert LAST_MODIFIED_RE.match(resp["LastModified"]), resp["LastModified"]
        assert resp["RevisionId"]
        assert resp["State"] == "Active"
        assert resp["LastUpdateStatus"] == "Successful"
        assert resp["Version"] == "$LATEST"
        assert resp["PackageType"] == "Zip"
        assert resp["Architectures"] == ["x86_64"]
        assert resp["EphemeralStorage"] == {"Size": 512}
        assert resp["MemorySize"] == 128
        assert resp["Timeout"] == 3
        assert resp["TracingConfig"] == {"Mode": "PassThrough"}
    finally:
        lam.delete_function(FunctionName=name)


def test_create_function_with_settings(make_fn):
    fn = make_fn("nodejs20.x", V1, "index.handler", MemorySize=512, Timeout=30, Description="hello",
                 Environment={"Variables": {"GREETING": "hi", "EMPTY": ""}}, EphemeralStorage={"Size": 1024})
    c = fn.config
    assert c["MemorySize"] == 512
    assert c["Timeout"] == 30
    assert c["Description"] == "hello"
    assert c["Environment"]["Variables"] == {"GREETING": "hi", "EMPTY": ""}
    assert c["EphemeralStorage"] == {"Size": 1024}


def test_get_function_and_code_location(lam, make_fn):
    fn = make_fn("nodejs20.x", V1, "index.handler")
    resp = lam.get_function(FunctionName=fn.name)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert resp["Code"]["RepositoryType"] == "S3"
    loc = resp["Code"]["Location"]
    assert loc.startswith("http://127.0.0.1:") or loc.startswith("http://localhost:"), loc
    status, _, body = http_get(loc)
    assert status == 200
    assert body == fn.zip_bytes
    # A presigned link, as AWS's: the digest alone (CodeSha256 gives it away) does not
    # download the code, nor does a link with its signature or expiry changed.
    base, query = loc.split("?", 1)
    assert "X-Nimbus-Expires=" in query and "X-Nimbus-Signature=" in query
    expires = int(query.split("X-Nimbus-Expires=")[1].split("&")[0])
    assert 590 <= expires - time.time() <= 610
    for bad in (base, f"{base}?{query[:-2]}00", loc.replace(f"X-Nimbus-Expires={expires}", f"X-Nimbus-Expires={expires + 60}")):
        status, _, body = http_get(bad)
        assert status == 403 and b"<Code>AccessDenied</Code>" in body, (bad, status, body)
    conf = _cfg(lam.get_function_configuration(FunctionName=fn.name))
    assert resp["Configuration"] == conf
    assert conf["CodeSha256"] == fn.config["CodeSha256"]
    assert conf["RevisionId"] == fn.config["RevisionId"]


@pytest.mark.parametrize("form", ["name", "partial-arn", "full-arn"])
def test_function_name_forms(lam, make_fn, form):
    fn = make_fn("nodejs20.x", V1, "index.handler")
    ref = {"name": fn.name, "partial-arn": f"{ACCOUNT}:function:{fn.name}", "full-arn": arn(fn.name)}[form]
    assert lam.get_function(FunctionName=ref)["Configuration"]["FunctionName"] == fn.name
    assert lam.get_function_configuration(FunctionName=ref)["FunctionArn"] == arn(fn.name)
    assert invoke(lam, ref, {}).ok()["v"] == 1
    upd = lam.update_function_configuration(FunctionName=ref, Description=form)
    assert upd["Description"] == form


def test_list_functions_pagination(lam, make_fn):
    prefix = unique("page")
    names = {make_fn("nodejs20.x", V1, "index.handler", name=f"{prefix}-{i}").name for i in range(3)}
    seen: list[str] = []
    marker = None
    pages = 0
    while True:
        kw = {"MaxItems": 2}
        if marker:
            kw["Marker"] = marker
        page = lam.list_functions(**kw)
        pages += 1
        assert len(page["Functions"]) <= 2
        seen += [f["FunctionName"] for f in page["Functions"]]
        marker = page.get("NextMarker")
        if not marker:
            break
        assert pages < 1000
    assert len(seen) == len(set(seen)), "a function was listed twice across pages"
    assert names <= set(seen)
    assert pages >= 2

    via_paginator = [f["FunctionName"] for p in lam.get_paginator("list_functions").paginate(
        PaginationConfig={"PageSize": 1}) for f in p["Functions"]]
    assert sorted(via_paginator) == sorted(seen)

    listed = {f["FunctionName"]: f for f in lam.list_functions()["Functions"]}
    one = listed[sorted(names)[0]]
    assert one["FunctionArn"] == arn(sorted(names)[0])
    assert one["Runtime"] == "nodejs20.x"
    assert one["CodeSha256"] == sha256_b64(make_zip(V1))


def test_update_function_code(lam, make_fn):
    fn = make_fn("nodejs20.x", V1, "index.handler")
    assert invoke(lam, fn.name, {}).ok()["v"] == 1  # leaves a warm v1 environment
    new_zip = make_zip(V2)
    resp = lam.update_function_code(FunctionName=fn.name, ZipFile=new_zip)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert resp["CodeSha256"] == sha256_b64(new_zip) != fn.config["CodeSha256"]
    assert resp["CodeSize"] == len(new_zip)
    assert resp["RevisionId"] != fn.config["RevisionId"]
    assert resp["LastModified"] >= fn.config["LastModified"]
    assert LAST_MODIFIED_RE.match(resp["LastModified"])
    lam.get_waiter("function_updated_v2").wait(FunctionName=fn.name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    got = lam.get_function(FunctionName=fn.name)
    assert got["Configuration"]["LastUpdateStatus"] == "Successful"
    assert got["Configuration"]["CodeSha256"] == sha256_b64(new_zip)
    assert http_get(got["Code"]["Location"])[2] == new_zip
    assert invoke(lam, fn.name, {}).ok() == {"v": 2}, "warm environment kept running the old code"


def test_update_function_configuration(lam, make_fn):
    fn = make_fn("nodejs20.x", V1, "index.handler")
    before = invoke(lam, fn.name, {}).ok()
    assert before["env"] is None and before["mem"] == "128" and before["h"] == "index.handler"
    resp = lam.update_function_configuration(
        FunctionName=fn.name, MemorySize=256, Timeout=10, Description="updated",
        Environment={"Variables": {"GREETING": "bonjour"}}, EphemeralStorage={"Size": 2048},
    )
    assert resp["MemorySize"] == 256
    assert resp["Timeout"] == 10
    assert resp["Description"] == "updated"
    assert resp["Environment"]["Variables"] == {"GREETING": "bonjour"}
    assert resp["EphemeralStorage"] == {"Size": 2048}
    assert resp["RevisionId"] != fn.config["RevisionId"]
    assert resp["CodeSha256"] == fn.config["CodeSha256"]
    lam.get_waiter("function_updated_v2").wait(FunctionName=fn.name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    after = invoke(lam, fn.name, {}).ok()
    assert after == {"v": 1, "env": "bonjour", "mem": "256", "h": "index.handler"}

    resp2 = lam.update_function_configuration(FunctionName=fn.name, Handler="index.other")
    assert resp2["Handler"] == "index.other"
    assert resp2["MemorySize"] == 256, "fields not in the request must be kept"
    assert resp2["Environment"]["Variables"] == {"GREETING": "bonjour"}
    assert invoke(lam, fn.name, {}).ok() == {"other": True}

    conf = lam.get_function_configuration(FunctionName=fn.name)
    assert conf["Handler"] == "index.other" and conf["Timeout"] == 10 and conf["RevisionId"] == resp2["RevisionId"]


def test_update_limits_accepted(lam, make_fn):
    fn = make_fn("nodejs20.x", V1, "index.handler")
    for mem, timeout in ((128, 1), (10240, 900)):
        resp = lam.update_function_configuration(FunctionName=fn.name, MemorySize=mem, Timeout=timeout)
        assert (resp["MemorySize"], resp["Timeout"]) == (mem, timeout)


def test_revision_id_precondition(lam, make_fn):
    fn = make_fn("nodejs20.x", V1, "index.handler")
    rev0 = fn.config["RevisionId"]
    r1 = lam.update_function_configuration(FunctionName=fn.name, Description="one", RevisionId=rev0)
    rev1 = r1["RevisionId"]
    assert rev1 != rev0
    with pytest.raises(ClientError) as ei:
        lam.update_function_configuration(FunctionName=fn.name, Description="two", RevisionId=rev0)
    code, status, _ = client_error(ei)
    assert (code, status) == ("PreconditionFailedException", 412)
    assert lam.get_function_configuration(FunctionName=fn.name)["Description"] == "one"
    r2 = lam.update_function_configuration(FunctionName=fn.name, Description="two", RevisionId=rev1)
    assert r2["Description"] == "two"
    r3 = lam.update_function_code(FunctionName=fn.name, ZipFile=make_zip(V2))
    assert len({rev0, rev1, r2["RevisionId"], r3["RevisionId"]}) == 4


def test_waiters(lam, make_fn):
    fn = make_fn("nodejs20.x", V1, "index.handler", wait=False)
    lam.get_waiter("function_active_v2").wait(FunctionName=fn.name, WaiterConfig={"Delay": 1, "MaxAttempts": 15})
    lam.get_waiter("function_active").wait(FunctionName=fn.name, WaiterConfig={"Delay": 1, "MaxAttempts": 15})
    lam.get_waiter("function_exists").wait(FunctionName=fn.name, WaiterConfig={"Delay": 1, "MaxAttempts": 15})
    lam.update_function_configuration(FunctionName=fn.name, Timeout=5)
    lam.get_waiter("function_updated_v2").wait(FunctionName=fn.name, WaiterConfig={"Delay": 1, "MaxAttempts": 15})
    lam.get_waiter("function_updated").wait(FunctionName=fn.name, WaiterConfig={"Delay": 1, "MaxAttempts": 15})


def test_delete_function(lam):
    name = unique("delete")
    lam.create_function(FunctionName=name, Runtime="nodejs20.x", Handler="index.handler", Role=ROLE,
                        Code={"ZipFile": make_zip(V1)})
    assert invoke(lam, name, {}).ok()["v"] == 1  # warm environment that must go away too
    resp = lam.delete_function(FunctionName=name)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    for call in (lambda: lam.get_function(FunctionName=name),
                 lambda: lam.get_function_configuration(FunctionName=name),
                 lambda: invoke(lam, name, {}),
                 lambda: lam.delete_function(FunctionName=name)):
        with pytest.raises(ClientError) as ei:
            call()
        code, status, _ = client_error(ei)
        assert (code, status) == ("ResourceNotFoundException", 404)
    assert name not in [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    # the name is free again
    lam.create_function(FunctionName=name, Runtime="nodejs20.x", Handler="index.handler", Role=ROLE,
                        Code={"ZipFile": make_zip(V2)})
    try:
        assert invoke(lam, name, {}).ok() == {"v": 2}
    finally:
        lam.delete_function(FunctionName=name)


def test_create_conflict(lam, make_fn):
    fn = make_fn("nodejs20.x", V1, "index.handler")
    with pytest.raises(ClientError) as ei:
        lam.create_function(FunctionName=fn.name, Runtime="nodejs20.x", Handler="index.handler", Role=ROLE,
                            Code={"ZipFile": make_zip(V2)})
    code, status, msg = client_error(ei)
    assert (code, status) == ("ResourceConflictException", 409)
    assert fn.name in msg
    assert lam.get_function_configuration(FunctionName=fn.name)["CodeSha256"] == fn.config["CodeSha256"]


def test_get_account_settings(lam):
    before = lam.get_account_settings()
    assert before["ResponseMetadata"]["HTTPStatusCode"] == 200
    limits = before["AccountLimit"]
    assert limits["CodeSizeUnzipped"] == 262144000
    assert limits["CodeSizeZipped"] == 52428800
    assert limits["TotalCodeSize"] > 0
    assert limits["ConcurrentExecutions"] > 0
    usage = before["AccountUsage"]
    name = unique("acct")
    zip_bytes = make_zip(V1)
    lam.create_function(FunctionName=name, Runtime="nodejs20.x", Handler="index.handler", Role=ROLE,
                        Code={"ZipFile": zip_bytes})
    try:
        after = lam.get_account_settings()["AccountUsage"]
        assert after["FunctionCount"] == usage["FunctionCount"] + 1
        assert after["TotalCodeSize"] == usage["TotalCodeSize"] + len(zip_bytes)
    finally:
        lam.delete_function(FunctionName=name)
    assert lam.get_account_settings()["AccountUsage"]["FunctionCount"] == usage["FunctionCount"]

"""API errors: codes, statuses and what a rejected request must not change."""

from __future__ import annotations

import json
import os
import uuid

import pytest
from botocore.exceptions import ClientError

from helpers import (
    API,
    ROLE,
    arn,
    big_sparse_zip,
    client_error,
    create_function,
    error_code_of,
    invoke,
    make_zip,
    signed_request,
    unique,
)

JS = {"index.js": "exports.handler = async (e) => ({ ok: true, size: JSON.stringify(e).length, "
                  "k: process.env.K || null });\n"}


def _create(lam, name, **over):
    kw = dict(FunctionName=name, Runtime="nodejs20.x", Handler="index.handler", Role=ROLE,
              Code={"ZipFile": make_zip(JS)})
    kw.update(over)
    return lam.create_function(**kw)


def _expect(call, code: str | tuple[str, ...], status: int) -> str:
    with pytest.raises(ClientError) as ei:
        call()
    got_code, got_status, msg = client_error(ei)
    codes = (code,) if isinstance(code, str) else code
    assert got_code in codes, (got_code, got_status, msg)
    assert got_status == status, (got_code, got_status, msg)
    return msg


def _absent(lam, name):
    _expect(lambda: lam.get_function(FunctionName=name), "ResourceNotFoundException", 404)


# ---- not found ----------------------------------------------------------------------


@pytest.mark.parametrize("op", ["get_function", "get_function_configuration", "update_function_code",
                                "update_function_configuration", "invoke", "delete_function"])
def test_not_found(lam, op):
    name = unique("missing")
    extra = {"update_function_code": {"ZipFile": make_zip(JS)},
             "update_function_configuration": {"Timeout": 5},
             "invoke": {"Payload": b"{}"}}.get(op, {})
    msg = _expect(lambda: getattr(lam, op)(FunctionName=name, **extra), "ResourceNotFoundException", 404)
    # AWS's Invoke names the version it looked for (LocalStack's AWS-validated snapshot of
    # test_invoke_exceptions).
    assert msg == f"Function not found: {arn(name)}" + (":$LATEST" if op == "invoke" else "")


# ---- modelled constraints (server-side validation) -----------------------------------


@pytest.mark.parametrize("over", [{"MemorySize": 1}, {"MemorySize": 127}, {"MemorySize": 10241},
                                  {"Timeout": 0}], ids=["mem1", "mem127", "mem10241", "timeout0"])
def test_create_out_of_range_is_validation_exception(lam_raw, over):
    name = unique("range")
    _expect(lambda: _create(lam_raw, name, **over), "ValidationException", 400)
    _absent(lam_raw, name)


@pytest.mark.parametrize("over", [{"MemorySize": 1}, {"MemorySize": 10241}, {"Timeout": 0}],
                         ids=["mem1", "mem10241", "timeout0"])
def test_update_out_of_range_is_validation_exception(lam_raw, make_fn, over):
    fn = make_fn("nodejs20.x", JS, "index.handler")
    _expect(lambda: lam_raw.update_function_configuration(FunctionName=fn.name, **over),
            "ValidationException", 400)
    conf = lam_raw.get_function_configuration(FunctionName=fn.name)
    assert (conf["MemorySize"], conf["Timeout"]) == (128, 3)
    assert conf["RevisionId"] == fn.config["RevisionId"]


def test_timeout_above_900_rejected(lam_raw, make_fn):
    fn = make_fn("nodejs20.x", JS, "index.handler")
    _expect(lambda: lam_raw.update_function_configuration(FunctionName=fn.name, Timeout=901),
            ("InvalidParameterValueException", "ValidationException"), 400)
    name = unique("t901")
    _expect(lambda: _create(lam_raw, name, Timeout=901), ("InvalidParameterValueException", "ValidationException"), 400)
    _absent(lam_raw, name)


@pytest.mark.parametrize("bad", ["bad name!", "with/slash", "semi;colon", "ünïcode"])
def test_bad_function_name_pattern(lam_raw, bad):
    _expect(lambda: _create(lam_raw, bad), "ValidationException", 400)


def test_function_name_too_long(lam_raw):
    name = "a" * 65
    _expect(lambda: _create(lam_raw, name), ("ValidationException", "InvalidParameterValueException"), 400)
    ok = "b" * 64
    try:
        assert _create(lam_raw, ok)["FunctionName"] == ok
    finally:
        try:
            lam_raw.delete_function(FunctionName=ok)
        except ClientError:
            pass


def test_unsupported_runtime(lam_raw):
    name = unique("cobol")
    _expect(lambda: _create(lam_raw, name, Runtime="cobol85.x"),
            ("InvalidParameterValueException", "ValidationException"), 400)
    _absent(lam_raw, name)


def test_ephemeral_storage_out_of_range(lam_raw):
    name = unique("eph")
    _expect(lambda: _create(lam_raw, name, EphemeralStorage={"Size": 100}), "ValidationException", 400)
    _absent(lam_raw, name)


# ---- code packages ----------------------------------------------------------------------


def test_not_a_zip(lam):
    name = unique("notzip")
    _expect(lambda: _create(lam, name, Code={"ZipFile": b"this is not a zip file at all"}),
            "InvalidParameterValueException", 400)
    _absent(lam, name)


def test_update_with_not_a_zip_keeps_old_code(lam, make_fn):
    fn = make_fn("nodejs20.x", JS, "index.handler")
    _expect(lambda: lam.update_function_code(FunctionName=fn.name, ZipFile=b"PK\x03\x04garbage"),
            "InvalidParameterValueException", 400)
    assert lam.get_function_configuration(FunctionName=fn.name)["CodeSha256"] == fn.config["CodeSha256"]
    assert invoke(lam, fn.name, {}).ok()["ok"] is True


def _escape_zip(marker: str) -> bytes:
    return make_zip({
        "index.js": JS["index.js"],
        f"../{marker}": "escaped one level",
        f"../../../../../../../../../../../../tmp/{marker}": "escaped to /tmp",
    })


def test_zip_path_traversal_rejected(server_factory):
    s = server_factory()
    lam = s.lambda_client()
    marker = f"nimbus-escape-{uuid.uuid4().hex}"
    name = unique("slip")
    _expect(lambda: _create(lam, name, Code={"ZipFile": _escape_zip(marker)}), "InvalidParameterValueException", 400)
    _absent(lam, name)

    # and through UpdateFunctionCode, which must leave the working code in place
    ok = unique("slip-upd")
    good = create_function(lam, ok, "nodejs20.x", "index.handler", make_zip(JS))
    _expect(lambda: lam.update_function_code(FunctionName=ok, ZipFile=_escape_zip(marker)),
            "InvalidParameterValueException", 400)
    assert lam.get_function_configuration(FunctionName=ok)["CodeSha256"] == good.config["CodeSha256"]
    assert invoke(lam, ok, {}).ok()["ok"] is True

    assert not os.path.exists(f"/tmp/{marker}")
    hits = [p for p in s.data_dir.parent.rglob(f"*{marker}*")]
    assert hits == [], f"files written from a ../ zip entry: {hits}"


def test_absolute_path_entry_rejected_or_contained(lam, make_fn):
    fn = make_fn("nodejs20.x", JS, "index.handler")
    marker = f"nimbus-abs-{uuid.uuid4().hex}"
    z = make_zip({"index.js": JS["index.js"], f"/tmp/{marker}": "absolute"})
    try:
        lam.update_function_code(FunctionName=fn.name, ZipFile=z)
        assert invoke(lam, fn.name, {}).ok()["ok"] is True  # extraction happens by now at the latest
    except ClientError as e:
        assert e.response["Error"]["Code"] == "InvalidParameterValueException", e.response
    assert not os.path.exists(f"/tmp/{marker}"), "an absolute zip entry was written outside the function dir"


@pytest.fixture(scope="module")
def huge_zip() -> bytes:
    z = big_sparse_zip(251 * 1024 * 1024)
    assert len(z) < 2 * 1024 * 1024
    return z


def test_unzipped_size_limit(lam, huge_zip):
    name = unique("huge")
    msg = _expect(lambda: _create(lam, name, Code={"ZipFile": huge_zip}), "InvalidParameterValueException", 400)
    assert "262144000" in msg or "250" in msg, msg
    _absent(lam, name)


def test_unzipped_size_limit_on_update(lam, make_fn, huge_zip):
    fn = make_fn("nodejs20.x", JS, "index.handler")
    _expect(lambda: lam.update_function_code(FunctionName=fn.name, ZipFile=huge_zip),
            "InvalidParameterValueException", 400)
    assert invoke(lam, fn.name, {}).ok()["ok"] is True


# ---- environment variables -----------------------------------------------------------------


@pytest.mark.parametrize("key", ["AWS_REGION", "AWS_LAMBDA_FUNCTION_NAME", "_HANDLER", "AWS_ACCESS_KEY_ID",
                                 "LAMBDA_TASK_ROOT", "AWS_LAMBDA_RUNTIME_API"])
def test_reserved_env_var_rejected(lam, make_fn, key):
    name = unique("reserved")
    msg = _expect(lambda: _create(lam, name, Environment={"Variables": {key: "x"}}),
                  "InvalidParameterValueException", 400)
    assert key in msg, msg
    _absent(lam, name)
    fn = make_fn("nodejs20.x", JS, "index.handler", Environment={"Variables": {"KEEP": "kept"}})
    _expect(lambda: lam.update_function_configuration(FunctionName=fn.name,
                                                      Environment={"Variables": {"KEEP": "new", key: "x"}}),
            "InvalidParameterValueException", 400)
    assert lam.get_function_configuration(FunctionName=fn.name)["Environment"]["Variables"] == {"KEEP": "kept"}


def test_env_vars_over_4kb_rejected(lam, make_fn):
    big = {f"VAR_{i}": "x" * 100 for i in range(45)}  # ~4.9 KB
    name = unique("bigenv")
    msg = _expect(lambda: _create(lam, name, Environment={"Variables": big}), "InvalidParameterValueException", 400)
    assert "4" in msg and "KB" in msg.upper(), msg
    _absent(lam, name)
    fn = make_fn("nodejs20.x", JS, "index.handler")
    _expect(lambda: lam.update_function_configuration(FunctionName=fn.name, Environment={"Variables": big}),
            "InvalidParameterValueException", 400)
    # just under the limit is fine
    small = {f"VAR_{i}": "x" * 100 for i in range(30)}
    assert lam.update_function_configuration(FunctionName=fn.name, Environment={"Variables": small})[
        "Environment"]["Variables"] == small


# ---- invoke limits and malformed requests ------------------------------------------------------


def test_invoke_request_too_large(lam, make_fn):
    fn = make_fn("nodejs20.x", JS, "index.handler")
    payload = json.dumps({"s": "x" * (6 * 1024 * 1024)}, separators=(",", ":")).encode()
    assert len(payload) > 6291456
    _expect(lambda: invoke(lam, fn.name, raw=payload), "RequestTooLargeException", 413)
    # the function is still fine, and a large-but-allowed payload goes through
    ok = json.dumps({"s": "y" * (5 * 1024 * 1024)}, separators=(",", ":")).encode()
    assert invoke(lam, fn.name, raw=ok).ok()["size"] == len(ok)


def test_malformed_json_body(server):
    status, headers, body = signed_request(server.endpoint, "POST", f"{API}/functions", b'{"FunctionName": "x",')
    assert status == 400, (status, body)
    assert error_code_of(headers, body), (headers, body)
    status, headers, body = signed_request(server.endpoint, "PUT", f"{API}/functions/x/configuration", b"[1, 2")
    assert status in (400, 404), (status, body)


def test_create_without_code_rejected(lam_raw):
    name = unique("nocode")
    _expect(lambda: lam_raw.create_function(FunctionName=name, Runtime="nodejs20.x", Handler="index.handler",
                                            Role=ROLE, Code={}),
            ("InvalidParameterValueException", "ValidationException"), 400)
    _absent(lam_raw, name)

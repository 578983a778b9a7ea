"""Hostile input (issue 19): zips that cannot be laid out or read, broken HTTP framing, and
query-protocol requests a service cannot place. Each answer is the one AWS gives: the user's
400, never a 500 or another service's error, and nothing is left behind."""

from __future__ import annotations

import http.client
import io
import json
import re
import socket
import struct
import time
import zipfile
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from helpers import (
    ROLE,
    Entry,
    admin_signed,
    all_group_messages,
    client_error,
    create_function,
    invoke,
    make_zip,
    unique,
)

PY = {"h.py": "def handler(event, context):\n    return {'ok': True}\n"}
UNREADABLE = "Could not unzip uploaded file. Please check your file, then try to upload again."


# ---- zips ---------------------------------------------------------------------------


def _zip(entries: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip of (name, data) entries in this order; names ending in / are directories."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = method
            info.create_system = 3
            info.external_attr = ((0o040755 if name.endswith("/") else 0o100644) << 16) | (0x10 if name.endswith("/") else 0)
            zf.writestr(info, data)
    return buf.getvalue()


def _records(z: bytes, sig: bytes) -> list[int]:
    out, at = [], z.find(sig)
    while at >= 0:
        out.append(at)
        at = z.find(sig, at + 1)
    return out


def _bad_crc() -> bytes:
    """h.py stored with one byte changed after its CRC-32 was written."""
    z = bytearray(_zip([("h.py", PY["h.py"].encode())], zipfile.ZIP_STORED))
    at = z.find(b"'ok'")
    z[at + 1] = ord("k")
    return bytes(z)


def _inflates_past_declared() -> bytes:
    """h.py declares 40 bytes and inflates to 100,000."""
    z = bytearray(_zip([("h.py", PY["h.py"].encode() + b"#" * 100_000)]))
    for at in _records(z, b"PK\x03\x04"):
        z[at + 22:at + 26] = struct.pack("<I", 40)
    for at in _records(z, b"PK\x01\x02"):
        z[at + 24:at + 28] = struct.pack("<I", 40)
    return bytes(z)


LONG_NAME = "n" * 256
LONG_PATH = "/".join(["d" * 200] * 25) + "/f.py"

# (case, entries after h.py, the entry the message must name)
UNLAYABLE = [
    ("name of 256 bytes", [(LONG_NAME, b"x")], LONG_NAME),
    ("path of 5,000 bytes", [(LONG_PATH, b"x")], LONG_PATH[:200]),
    ("entry '.'", [(".", b"x")], "'.'"),
    ("file then directory of its name", [("p/r", b"x"), ("p", b"x")], "'p'"),
    ("directory entry then file of its name", [("p/", b""), ("p", b"x")], "'p'"),
    ("file then entry inside it", [("h2.py", b"x"), ("h2.py/x", b"x")], "'h2.py/x'"),
    ("file then directory entry of its name", [("h2.py", b"x"), ("h2.py/", b"")], "'h2.py/'"),
]
UNREADABLE_ZIPS = [("bad CRC-32", _bad_crc), ("inflates past its declared size", _inflates_past_declared)]


def _leftovers(data: Path) -> set[str]:
    """Everything code uploads write: blobs, unpacked code and layers, staging."""
    out = set()
    for sub in ("blobs", "code", "layers", "opt", "tmp"):
        root = data / sub
        if root.exists():
            out |= {str(p.relative_to(data)) for p in root.rglob("*")}
    return out


def _expect_400(call) -> str:
    with pytest.raises(ClientError) as ei:
        call()
    code, status, msg = client_error(ei)
    assert (code, status) == ("InvalidParameterValueException", 400), (code, status, msg[:400])
    return msg


def _uploads(lam, existing: str):
    """The three ways code arrives, each as a function of the zip."""
    return {
        "CreateFunction": lambda z: lam.create_function(
            FunctionName=unique("bad-zip"), Runtime="python3.11", Handler="h.handler", Role=ROLE, Code={"ZipFile": z}),
        "UpdateFunctionCode": lambda z: lam.update_function_code(FunctionName=existing, ZipFile=z),
        "PublishLayerVersion": lambda z: lam.publish_layer_version(LayerName=unique("bad-layer"), Content={"ZipFile": z}),
    }


def test_zips_that_cannot_be_laid_out_or_read_are_the_users_400(server_factory):
    s = server_factory()
    lam = s.lambda_client()
    good = create_function(lam, unique("zip-ok"), "python3.11", "h.handler", make_zip(PY))
    before = _leftovers(s.data_dir)
    for op, upload in _uploads(lam, good.name).items():
        for case, entries, named in UNLAYABLE:
            z = _zip([("h.py", PY["h.py"].encode())] + entries)
            msg = _expect_400(lambda: upload(z))
            assert msg.startswith("Failed to unzip archive: Zip file contains invalid files/folders; "), (op, case, msg[:300])
            assert named in msg, (op, case, msg[:400])
        for case, build in UNREADABLE_ZIPS:
            assert _expect_400(lambda: upload(build())) == UNREADABLE, (op, case)
    assert _leftovers(s.data_dir) == before, "a rejected upload left files behind"
    assert lam.get_function_configuration(FunctionName=good.name)["CodeSha256"] == good.config["CodeSha256"]
    assert invoke(lam, good.name, {}).ok() == {"ok": True}
    assert "ServiceException" not in s.log_path.read_text()


def test_zip_with_long_but_legal_paths_runs(make_fn, lam):
    """Names of 255 bytes and paths near Linux's limit are fine: only what cannot exist is refused."""
    deep = "/".join(["d" * 254] * 15) + "/" + "f" * 200
    # Opened relative to the task root, as only the entry's own path counts.
    code = (b"import os\ndef handler(e, c):\n    root = os.open(os.environ['LAMBDA_TASK_ROOT'], os.O_RDONLY)\n"
            b"    return os.stat(e['p'], dir_fd=root).st_size\n")
    z = _zip([("h.py", code),
              ("n" * 255, b"12345"), (deep, b"123")])
    # ... and in a layer, merged into /opt wherever the data directory is.
    layer = lam.publish_layer_version(LayerName=unique("deep"), Content={"ZipFile": _zip([(deep, b"1234")])})
    name = unique("zip-long")
    create_function(lam, name, "python3.11", "h.handler", z, Layers=[layer["LayerVersionArn"]])
    assert invoke(lam, name, {"p": "n" * 255}).ok() == 5
    assert invoke(lam, name, {"p": deep}).ok() == 3
    update = (b"import os\ndef handler(e, c):\n    return os.stat(e['p'], dir_fd=os.open('/opt', os.O_RDONLY)).st_size\n")
    lam.update_function_code(FunctionName=name, ZipFile=_zip([("h.py", update)]))
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    assert invoke(lam, name, {"p": deep}).ok() == 4


# ---- HTTP framing -------------------------------------------------------------------


def _raw_exchange(port: int, request: bytes) -> tuple[int, bytes]:
    """Sends `request` as is, closes the sending side, and returns the answer's status and
    its headers and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1]), data


@pytest.mark.parametrize("framing", ["bad chunk", "body shorter than Content-Length"])
def test_invoke_with_broken_framing_is_400_not_413(server, framing):
    head = f"POST /2015-03-31/functions/{unique('framing')}/invocations HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if framing == "bad chunk":
        req = (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + b"zz\r\n{}\r\n0\r\n\r\n"
    else:
        req = (head + "Content-Length: 1000\r\n\r\n").encode() + b'{"a": 1}'
    status, answer = _raw_exchange(server.port, req)
    assert status == 400, answer
    assert b"InvalidRequestContentException" in answer, answer


# A hand-written runtime that takes each event and then breaks its response's framing.
BROKEN_RESPONSE = """#!/usr/bin/python3
import os, socket, urllib.request
where = os.environ["AWS_LAMBDA_RUNTIME_API"]
host, port = where.rsplit(":", 1)
while True:
    with urllib.request.urlopen("http://" + where + "/2018-06-01/runtime/invocation/next") as r:
        rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
        r.read()
    s = socket.create_connection((host, int(port)))
    head = "POST /2018-06-01/runtime/invocation/" + rid + "/response HTTP/1.1\\r\\nHost: " + where + "\\r\\n"
    if os.environ["BREAK"] == "chunk":
        s.sendall((head + "Transfer-Encoding: chunked\\r\\n\\r\\n").encode() + b"zz\\r\\nnot a chunk\\r\\n")
    else:
        s.sendall((head + "Content-Length: 100\\r\\n\\r\\n").encode() + b'{"partial":')
    s.shutdown(socket.SHUT_WR)
    try:
        s.recv(4096)
    except OSError:
        pass
    s.close()
"""


@pytest.mark.parametrize("how", ["chunk", "short"])
def test_runtime_response_with_broken_framing_is_truncated_not_too_large(lam, make_fn, how):
    fn = make_fn("provided.al2023", make_zip({"bootstrap": Entry(BROKEN_RESPONSE, 0o755)}), "x",
                 Environment={"Variables": {"BREAK": how}}, Timeout=10)
    for _ in range(2):
        t0 = time.monotonic()
        inv = invoke(lam, fn.name, {})
        doc = inv.failed()
        assert doc["errorType"] == "Runtime.TruncatedResponse", doc
        assert "ResponseSizeTooLarge" not in json.dumps(doc)
        assert time.monotonic() - t0 < 8, "the broken response waited for the timeout"


def test_init_that_never_reaches_next_is_retried_within_the_timeout(lam, logs, make_fn):
    """AWS: an on-demand init has 10 s; then the environment is reset and init runs again as
    part of the invocation, within the function's timeout."""
    fn = make_fn("provided.al2023", make_zip({"bootstrap": Entry("#!/bin/sh\nsleep 600\n", 0o755)}), "x", Timeout=3)
    t0 = time.monotonic()
    inv = invoke(lam, fn.name, {})
    elapsed = time.monotonic() - t0
    doc = inv.failed()
    assert doc == {"errorType": "Sandbox.Timedout",
                   "errorMessage": f"RequestId: {inv.request_id} Error: Task timed out after 3.00 seconds"}, doc
    assert 12.5 < elapsed < 16, f"took {elapsed:.1f} s; AWS takes the 10 s init limit plus the 3 s timeout"
    assert "Phase: invoke\tStatus: timeout" in inv.log, inv.log
    messages = []
    for _ in range(20):
        messages = all_group_messages(logs, f"/aws/lambda/{fn.name}")
        if any("Phase: init" in m for m in messages):
            break
        time.sleep(0.25)
    first = [m for m in messages if m.startswith("INIT_REPORT Init Duration: ") and m.endswith("\tPhase: init\tStatus: timeout")]
    assert len(first) == 1, messages
    took = float(first[0].split("Init Duration: ")[1].split(" ms")[0])
    assert 9_900 < took < 11_000, first


# ---- query-protocol requests a service cannot place -----------------------------------

FORM = "application/x-www-form-urlencoded; charset=utf-8"
SQS_VERSION, SNS_VERSION = "2012-11-05", "2010-03-31"
NAMESPACE = {"sqs": 'xmlns="http://queue.amazonaws.com/doc/2012-11-05/"', "sns": 'xmlns="http://sns.amazonaws.com/doc/2010-03-31/"'}

# (service, content type, body, the service's error code)
UNPLACEABLE = [
    ("sqs", FORM, b"Action=ListQueues", "MissingParameter"),
    ("sqs", FORM, b"Action=ListQueues&Version=2099-01-01", "InvalidAction"),
    ("sqs", FORM, b"Action=ListQueues&Version=" + SNS_VERSION.encode(), "InvalidAction"),
    ("sqs", FORM, b"Action=ListQueues&Version=2012-11-05&QueueNamePrefix=%ff%fe", "MalformedQueryString"),
    ("sqs", FORM, b"Action=ListQueues&Version=2012-11-05&QueueNamePrefix=\xff", "MalformedQueryString"),
    ("sqs", FORM, b"Version=2012-11-05", "MissingAction"),
    ("sqs", "text/plain", b"Action=ListQueues&Version=2012-11-05", "MissingAction"),
    ("sns", FORM, b"Action=ListTopics", "MissingParameter"),
    ("sns", FORM, b"Action=ListTopics&Version=2099-01-01", "InvalidAction"),
    ("sns", FORM, b"Action=ListTopics&Version=" + SQS_VERSION.encode(), "InvalidAction"),
    ("sns", FORM, b"Action=ListTopics&Version=2010-03-31&NextToken=%c3%28", "MalformedQueryString"),
    ("sns", FORM, b"Version=2010-03-31", "MissingAction"),
    ("sns", "text/plain", b"Action=ListTopics&Version=2010-03-31", "MissingAction"),
]


@pytest.mark.parametrize("service,content_type,body,code", UNPLACEABLE,
                         ids=[f"{s}-{c}-{b[:40]!r}" for s, _, b, c in UNPLACEABLE])
def test_query_requests_a_service_cannot_place_get_its_xml_error(server, service, content_type, body, code):
    headers = admin_signed(server.endpoint, service, "POST", "/", {"Content-Type": content_type}, body)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("POST", "/", body=body, headers=headers)
        r = conn.getresponse()
        status, text = r.status, r.read().decode()
    finally:
        conn.close()
    assert status == 400, (status, text)
    assert re.search(r"^(<\?xml[^>]*>\s*)?<ErrorResponse", text), text
    assert f"<Code>{code}</Code>" in text, text
    # The service signed for answers, not the one whose version the request carries.
    assert NAMESPACE[service] in text, text
    assert "<Type>Sender</Type>" in text, text
    assert re.search(r"<RequestId>[0-9a-f-]{36}</RequestId>", text), text

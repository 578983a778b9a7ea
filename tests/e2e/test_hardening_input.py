"""Hostile input (issue 19): zips that cannot be laid out or read, broken HTTP framing, and
query-protocol requests a service cannot place. Each answer is the one AWS gives: the user's
400, never a 500 or another service's error, and nothing is left behind."""

from __future__ import annotations

import io
import os
import struct
import zipfile
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from helpers import ROLE, client_error, create_function, invoke, make_zip, unique

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
    name = unique("zip-long")
    create_function(lam, name, "python3.11", "h.handler", z)
    assert invoke(lam, name, {"p": "n" * 255}).ok() == 5
    assert invoke(lam, name, {"p": deep}).ok() == 3

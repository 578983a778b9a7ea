"""The lifetime of a function's code on disk: an invocation racing DeleteFunction either runs
the code as it was or is told the function is gone (404), never that its module vanished
(the unpacked tree stays until no environment runs from it); and nothing of a deleted
function or layer stays on disk (unpacked code and layers, merged /opt trees, blobs), also
after a restart that finds what a crash left."""

from __future__ import annotations

import hashlib
import json
import threading
import time

from botocore.exceptions import ClientError

from helpers import create_function, http_request, make_zip, public_url, unique, url_id

SLOW_PY = """
import time
time.sleep(0.4)  # a slow init: the delete lands while environments start
from helper import value
def handler(event, context):
    time.sleep(0.05)
    return value()
"""
HELPER_PY = "def value():\n    return 'ok'\n"


def entries(path) -> list[str]:
    """What `path` holds; for the blob store, its files (its two-letter prefix directories
    may stay, empty)."""
    if not path.exists():
        return []
    if path.name == "blobs":
        return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())
    return sorted(p.name for p in path.iterdir())


def test_invocations_racing_a_delete_run_the_code_or_get_404(server_factory):
    s = server_factory()
    lam = s.lambda_client()
    odd: list[str] = []
    for round_ in range(3):
        name = unique(f"racing{round_}")
        create_function(lam, name, "python3.11", "h.handler", make_zip({"h.py": SLOW_PY, "helper.py": HELPER_PY}))
        path_url = f"{s.endpoint}/_aws/lambda-url/{url_id(public_url(lam, FunctionName=name)['FunctionUrl'])}/"
        stop = threading.Event()
        seen: dict[str, int] = {}
        lock = threading.Lock()

        def note(what: str):
            with lock:
                seen[what] = seen.get(what, 0) + 1

        def invoker():
            client = s.lambda_client()
            while not stop.is_set():
                try:
                    r = client.invoke(FunctionName=name, Payload=b"{}")
                    body = r["Payload"].read()
                    if "FunctionError" in r or json.loads(body) != "ok":
                        odd.append(f"invoke: {r.get('FunctionError')} {body[:300]!r}")
                    note("invoke 200")
                except ClientError as e:
                    code = e.response["Error"]["Code"]
                    if code != "ResourceNotFoundException":
                        odd.append(f"invoke: {code} {e}")
                    note(f"invoke {code}")

        def caller():
            while not stop.is_set():
                status, _, body = http_request(path_url, "POST", b"{}")
                if (status, body) != (200, b'"ok"') and status != 404:
                    odd.append(f"url: {status} {body[:300]!r}")
                note(f"url {status}")

        threads = [threading.Thread(target=invoker) for _ in range(4)] + [threading.Thread(target=caller) for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(0.2)
        lam.delete_function(FunctionName=name)
        # Until the callers have been told it is gone a few times (a loaded machine may still
        # be running their first invocations a second later).
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with lock:
                if seen.get("invoke ResourceNotFoundException", 0) >= 8 and seen.get("url 404", 0) >= 4:
                    break
            time.sleep(0.1)
        stop.set()
        for t in threads:
            t.join(timeout=60)
        assert seen.get("invoke ResourceNotFoundException"), seen
    assert odd == [], odd[:10]
    # Everything of the deleted functions is gone from disk once their environments ended.
    for sub in ("code", "opt", "blobs"):
        deadline = time.monotonic() + 10
        while entries(s.data_dir / sub) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert entries(s.data_dir / sub) == [], sub


def test_deleted_functions_and_layers_leave_nothing_on_disk_also_after_a_crash(server_factory):
    s = server_factory()
    lam = s.lambda_client()
    layer = lam.publish_layer_version(LayerName=unique("libs"), Content={"ZipFile": make_zip({"python/helper.py": HELPER_PY})},
                                      CompatibleRuntimes=["python3.11"])
    name = unique("layered")
    create_function(lam, name, "python3.11", "h.handler", make_zip({"h.py": SLOW_PY}), Layers=[layer["LayerVersionArn"]])
    r = lam.invoke(FunctionName=name, Payload=b"{}")
    assert json.loads(r["Payload"].read()) == "ok"
    for sub in ("code", "layers", "opt"):
        assert entries(s.data_dir / sub), f"{sub} holds the function's trees while it exists"
    # The layer version goes first, while the function still uses it; then the function.
    lam.delete_layer_version(LayerName=layer["LayerArn"], VersionNumber=layer["Version"])
    lam.delete_function(FunctionName=name)
    for sub in ("code", "layers", "opt", "blobs"):
        deadline = time.monotonic() + 10
        while entries(s.data_dir / sub) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert entries(s.data_dir / sub) == [], sub

    # What a crash leaves (trees and blobs nothing refers to) is removed at the next start;
    # what a function still uses is kept.
    keep = unique("kept")
    create_function(lam, keep, "python3.11", "h.handler", make_zip({"h.py": SLOW_PY, "helper.py": HELPER_PY}))
    s.stop()
    stray = "ab" * 32
    for sub in ("code", "layers", "opt"):
        (s.data_dir / sub / stray / "x").mkdir(parents=True)
    (s.data_dir / "blobs" / "ab").mkdir(parents=True, exist_ok=True)
    (s.data_dir / "blobs" / "ab" / f"{stray}.zip").write_bytes(b"PK")
    s.start()
    for sub in ("code", "layers", "opt"):
        assert stray not in entries(s.data_dir / sub), sub
    assert f"ab/{stray}.zip" not in entries(s.data_dir / "blobs")
    r = s.lambda_client().invoke(FunctionName=keep, Payload=b"{}")
    assert json.loads(r["Payload"].read()) == "ok"


def test_a_deleted_versions_code_goes_while_the_function_stays(server_factory):
    """Version 1 runs code the function no longer has in $LATEST; deleting the version
    removes that code from disk (its warm environment ends), the function's own stays."""
    s = server_factory()
    lam = s.lambda_client()
    name = unique("versioned")
    fast = "def handler(event, context):\n    return 'one'\n"
    create_function(lam, name, "python3.11", "h.handler", make_zip({"h.py": fast}))
    v1 = lam.publish_version(FunctionName=name)["Version"]
    lam.update_function_code(FunctionName=name, ZipFile=make_zip({"h.py": fast.replace("one", "two")}))
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    for qualifier, answer in ((v1, "one"), ("$LATEST", "two")):
        r = lam.invoke(FunctionName=name, Qualifier=qualifier, Payload=b"{}")
        assert json.loads(r["Payload"].read()) == answer, qualifier
    assert len(entries(s.data_dir / "code")) == 2
    lam.delete_function(FunctionName=name, Qualifier=v1)
    deadline = time.monotonic() + 10
    while len(entries(s.data_dir / "code")) > 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(entries(s.data_dir / "code")) == 1, "version 1's code outlived its deletion"
    r = lam.invoke(FunctionName=name, Payload=b"{}")
    assert json.loads(r["Payload"].read()) == "two"


def test_a_delete_racing_a_create_of_the_same_zip_keeps_the_new_functions_blob(server_factory):
    """Two functions with the same zip share one blob. Deleting one while the other is being
    created must not remove the blob the new one was just stored with (its put a no-op,
    the blob being there): the new function's record would point at nothing. Each round
    starts the delete and the create together, the create up to a millisecond later, so
    some rounds land the delete's "is the blob still used?" between the create's put and
    its record."""
    s = server_factory()
    lam = s.lambda_client()
    missing = []
    for round_ in range(40):
        # One file per round that differs, so every round has a blob of its own; big enough
        # that the create spends a moment unpacking and storing it.
        zip_ = make_zip({"h.py": f"def handler(event, context):\n    return {round_}\n", "pad.bin": "x" * 200_000 + str(round_)})
        digest = hashlib.sha256(zip_).hexdigest()
        old, new = unique(f"old{round_}"), unique(f"new{round_}")
        create_function(lam, old, "python3.11", "h.handler", zip_)
        start = threading.Barrier(2)
        errors = []

        def delete():
            try:
                client = s.lambda_client()
                start.wait()
                client.delete_function(FunctionName=old)
            except Exception as e:  # noqa: BLE001 (reported below)
                errors.append(e)

        def create():
            try:
                client = s.lambda_client()
                start.wait()
                time.sleep((round_ % 3) / 2000)
                create_function(client, new, "python3.11", "h.handler", zip_)
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        threads = [threading.Thread(target=delete), threading.Thread(target=create)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # On the losing side of the race the create itself failed ("blob … is missing"),
        # its record already written: either way the function is left without code.
        if errors or not (s.data_dir / "blobs" / digest[:2] / f"{digest}.zip").exists():
            missing.append((round_, [str(e) for e in errors]))
        try:
            lam.delete_function(FunctionName=new)
        except lam.exceptions.ResourceNotFoundException:
            pass  # its create failed before its record was written
    assert missing == [], f"rounds whose new function lost its blob: {missing}"

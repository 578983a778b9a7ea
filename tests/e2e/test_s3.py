"""S3: buckets, objects, listings, checksums, multipart uploads, copies, versions, tags,
presigned URLs and notifications, driven by boto3 (current botocore: CRC32 checksums by
default), the aws CLI's `s3` and `s3api` commands, raw signed requests and the AWS SDK for
JavaScript v3 (aws-chunked uploads with trailing checksums), and an object written, then
the server killed with SIGKILL."""

from __future__ import annotations

import base64
import re
import hashlib
import http.client
import json
import os
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from helpers import (
    ACCOUNT,
    REGION,
    Server,
    aws_cli_runner,
    boto_client,
    client_error,
    create_function,
    make_zip,
    unique,
    wait_for,
)

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def s3(server):
    return server.client("s3")


@pytest.fixture
def bucket(s3):
    """A fresh bucket, emptied and removed after the test."""
    name = unique("bkt").lower().replace("_", "-")[:60]
    s3.create_bucket(Bucket=name)
    yield name
    try:
        versions = s3.list_object_versions(Bucket=name)
        for v in versions.get("Versions", []) + versions.get("DeleteMarkers", []):
            s3.delete_object(Bucket=name, Key=v["Key"], VersionId=v["VersionId"])
        for u in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
            s3.abort_multipart_upload(Bucket=name, Key=u["Key"], UploadId=u["UploadId"])
        s3.delete_bucket(Bucket=name)
    except ClientError:
        pass


def error_of(excinfo) -> tuple[str, int]:
    e = excinfo.value.response
    return e["Error"]["Code"], e["ResponseMetadata"]["HTTPStatusCode"]


def test_buckets_are_made_listed_located_and_removed_only_when_empty(s3):
    name = unique("life").lower()
    made = s3.create_bucket(Bucket=name)
    assert made["Location"] == f"/{name}"
    assert s3.head_bucket(Bucket=name)["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == REGION
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] is None
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket=name)
    assert error_of(e) == ("BucketAlreadyOwnedByYou", 409)
    s3.put_object(Bucket=name, Key="k", Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket=name)
    assert error_of(e) == ("BucketNotEmpty", 409)
    s3.delete_object(Bucket=name, Key="k")
    s3.delete_bucket(Bucket=name)
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket=name)
    assert error_of(e) == ("404", 404)
    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket=name)
    assert error_of(e) == ("NoSuchBucket", 404)
    assert e.value.response["Error"]["BucketName"] == name


@pytest.mark.parametrize("name", ["ab", "Upper-case", "under_score", "-start", "a..b", "192.168.1.1", "x" * 64])
def test_invalid_bucket_names_are_refused(s3, name):
    raw = boto_client("s3", s3.meta.endpoint_url, validate=False)
    with pytest.raises(ClientError) as e:
        raw.create_bucket(Bucket=name)
    assert error_of(e) == ("InvalidBucketName", 400)


def test_a_location_constraint_must_match_the_region(s3):
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket=unique("loc").lower(), CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert error_of(e) == ("IllegalLocationConstraintException", 400)


KEYS = ["plain.txt", "dir/sub/file", "a//b", "trailing/", "../../etc/passwd", "ünïcødé/ключ/鍵", "sp ace+plus%percent", "ctl\x01\x7fchar", "x" * 1024]


def test_object_keys_are_stored_and_returned_exactly(s3, bucket, server):
    for i, key in enumerate(KEYS):
        s3.put_object(Bucket=bucket, Key=key, Body=f"body {i}".encode())
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert sorted(listed, key=lambda k: k.encode()) == listed
    assert set(listed) == set(KEYS)
    for i, key in enumerate(KEYS):
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == f"body {i}".encode()
    # Nothing of a key reaches the host's file system.
    data = Path(server.data_dir)
    assert not any("passwd" in p.name or "鍵" in p.name for p in data.rglob("*"))
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="y" * 1025, Body=b"")
    assert error_of(e) == ("KeyTooLongError", 400)


def test_bodies_metadata_and_content_headers_round_trip(s3, bucket):
    body = os.urandom(300_000)
    put = s3.put_object(
        Bucket=bucket, Key="m", Body=body, ContentType="image/png", CacheControl="max-age=60",
        ContentDisposition='attachment; filename="a.png"', ContentEncoding="identity", ContentLanguage="en",
        Metadata={"Owner": "ada", "purpose": "test"},
    )
    assert put["ETag"] == '"%s"' % hashlib.md5(body).hexdigest()
    got = s3.get_object(Bucket=bucket, Key="m")
    assert got["Body"].read() == body
    assert got["ContentLength"] == len(body)
    assert got["ContentType"] == "image/png"
    assert got["CacheControl"] == "max-age=60"
    assert got["ContentDisposition"] == 'attachment; filename="a.png"'
    assert got["ContentLanguage"] == "en"
    assert got["Metadata"] == {"owner": "ada", "purpose": "test"}
    assert got["ETag"] == put["ETag"]
    head = s3.head_object(Bucket=bucket, Key="m")
    assert head["ContentLength"] == len(body) and head["ETag"] == put["ETag"]
    s3.put_object(Bucket=bucket, Key="plain", Body=b"")
    assert s3.head_object(Bucket=bucket, Key="plain")["ContentType"] == "binary/octet-stream"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="nope")
    assert error_of(e) == ("NoSuchKey", 404)
    assert e.value.response["Error"]["Key"] == "nope"
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="nope")
    assert error_of(e) == ("404", 404)


def test_ranges_conditions_and_response_overrides(s3, bucket):
    body = bytes(range(256)) * 40
    etag = s3.put_object(Bucket=bucket, Key="r", Body=body)["ETag"]
    cases = [("bytes=0-9", body[0:10], "bytes 0-9/10240"), ("bytes=10000-", body[10000:], "bytes 10000-10239/10240"),
             ("bytes=-5", body[-5:], "bytes 10235-10239/10240"), ("bytes=10200-99999", body[10200:], "bytes 10200-10239/10240")]
    for spec, want, content_range in cases:
        got = s3.get_object(Bucket=bucket, Key="r", Range=spec)
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206, spec
        assert got["Body"].read() == want, spec
        assert got["ContentRange"] == content_range
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="r", Range="bytes=20000-")
    assert error_of(e) == ("InvalidRange", 416)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="r", IfNoneMatch=etag)
    assert error_of(e) == ("304", 304)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="r", IfMatch='"0000"')
    assert error_of(e) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="r", IfMatch=etag)["Body"].read() == body
    got = s3.get_object(Bucket=bucket, Key="r", ResponseContentType="text/csv", ResponseContentDisposition="inline")
    assert (got["ContentType"], got["ContentDisposition"]) == ("text/csv", "inline")
    # Path-style answers share the web console's origin: a page uploaded there runs sandboxed.
    s3.put_object(Bucket=bucket, Key="page.html", Body=b"<script>sessionStorage</script>", ContentType="text/html")
    page = s3.get_object(Bucket=bucket, Key="page.html")
    assert page["ResponseMetadata"]["HTTPHeaders"]["content-security-policy"].startswith("sandbox")
    # Writes with conditions.
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="r", Body=b"x", IfNoneMatch="*")
    assert error_of(e) == ("PreconditionFailed", 412)
    s3.put_object(Bucket=bucket, Key="fresh", Body=b"x", IfNoneMatch="*")


def _crc_reflected(data: bytes, poly: int, bits: int) -> int:
    """A reflected CRC with all-ones init and final xor (CRC32C, CRC64NVME), bit by bit."""
    mask = (1 << bits) - 1
    crc = mask
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
    return crc ^ mask


def crc32c_b64(data: bytes) -> str:
    return base64.b64encode(_crc_reflected(data, 0x82F63B78, 32).to_bytes(4, "big")).decode()


def crc64nvme_b64(data: bytes) -> str:
    return base64.b64encode(_crc_reflected(data, 0x9A6C9329AC4BC9B5, 64).to_bytes(8, "big")).decode()


def test_checksums_are_computed_checked_and_answered(s3, bucket):
    body = b"hello world" * 1000
    assert crc32c_b64(b"hello world") == "yZRlqg==" and crc64nvme_b64(b"hello world") == "jSnVw/bqjr4="
    # boto3 computes CRC32, SHA1 and SHA256 itself (CRC32C and CRC64NVME need awscrt).
    for algorithm in ["CRC32", "SHA1", "SHA256"]:
        put = s3.put_object(Bucket=bucket, Key=f"c-{algorithm}", Body=body, ChecksumAlgorithm=algorithm)
        got = s3.get_object(Bucket=bucket, Key=f"c-{algorithm}", ChecksumMode="ENABLED")
        assert got["Body"].read() == body
        assert got[f"Checksum{algorithm}"] == put[f"Checksum{algorithm}"], algorithm
    s3.put_object(Bucket=bucket, Key="c-CRC32C", Body=body, ChecksumCRC32C=crc32c_b64(body))
    assert s3.head_object(Bucket=bucket, Key="c-CRC32C", ChecksumMode="ENABLED")["ChecksumCRC32C"] == crc32c_b64(body)
    # Without a checksum named, S3 records CRC64NVME.
    import boto3
    plain = boto3.session.Session().client(
        "s3", endpoint_url=s3.meta.endpoint_url, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test",
        config=Config(request_checksum_calculation="when_required", response_checksum_validation="when_required"))
    put = plain.put_object(Bucket=bucket, Key="c-none", Body=body, ContentMD5=base64.b64encode(hashlib.md5(body).digest()).decode())
    assert put["ETag"] == '"%s"' % hashlib.md5(body).hexdigest()
    assert plain.head_object(Bucket=bucket, Key="c-none", ChecksumMode="ENABLED")["ChecksumCRC64NVME"] == crc64nvme_b64(body)
    crc = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
    assert s3.head_object(Bucket=bucket, Key="c-CRC32", ChecksumMode="ENABLED")["ChecksumCRC32"] == crc
    sha = base64.b64encode(hashlib.sha256(body).digest()).decode()
    assert s3.head_object(Bucket=bucket, Key="c-SHA256", ChecksumMode="ENABLED")["ChecksumSHA256"] == sha
    raw = boto_client("s3", s3.meta.endpoint_url, validate=False)
    with pytest.raises(ClientError) as e:
        raw.put_object(Bucket=bucket, Key="bad", Body=body, ChecksumSHA256=base64.b64encode(b"\0" * 32).decode())
    assert error_of(e) == ("BadDigest", 400)
    with pytest.raises(ClientError) as e:
        raw.put_object(Bucket=bucket, Key="bad", Body=body, ContentMD5=base64.b64encode(b"\0" * 16).decode())
    assert error_of(e) == ("BadDigest", 400)
    with pytest.raises(ClientError) as e:
        raw.put_object(Bucket=bucket, Key="bad", Body=body, ContentMD5="not-base64!")
    assert error_of(e) == ("InvalidDigest", 400)
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="bad")


def test_listings_page_by_prefix_delimiter_and_token(s3, bucket):
    keys = [f"photos/{y}/{i:03}.jpg" for y in (2023, 2024) for i in range(30)] + ["photos/readme", "top.txt", "videos/a.mp4"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"")
    top = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["photos/", "videos/"]
    assert [o["Key"] for o in top["Contents"]] == ["top.txt"]
    assert top["KeyCount"] == 3
    years = s3.list_objects_v2(Bucket=bucket, Prefix="photos/", Delimiter="/")
    assert [p["Prefix"] for p in years["CommonPrefixes"]] == ["photos/2023/", "photos/2024/"]
    assert [o["Key"] for o in years["Contents"]] == ["photos/readme"]
    seen = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, PaginationConfig={"PageSize": 7}):
        assert page["KeyCount"] <= 7
        seen += [o["Key"] for o in page.get("Contents", [])]
    assert seen == sorted(keys)
    v1 = []
    for page in s3.get_paginator("list_objects").paginate(Bucket=bucket, Prefix="photos/2024/", PaginationConfig={"PageSize": 11}):
        v1 += [o["Key"] for o in page.get("Contents", [])]
    assert v1 == [k for k in sorted(keys) if k.startswith("photos/2024/")]
    after = s3.list_objects_v2(Bucket=bucket, StartAfter="photos/2024/028.jpg")
    assert [o["Key"] for o in after["Contents"]] == ["photos/2024/029.jpg", "photos/readme", "top.txt", "videos/a.mp4"]
    assert s3.list_objects_v2(Bucket=bucket, MaxKeys=0)["IsTruncated"] is False


def test_multipart_uploads_follow_aws_rules(s3, bucket):
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB + 17), b"tail"]
    up = s3.create_multipart_upload(Bucket=bucket, Key="big", ContentType="application/x-big", Metadata={"k": "v"})
    uid = up["UploadId"]
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [uid]
    etags = []
    for i, p in enumerate(parts, start=1):
        etags.append(s3.upload_part(Bucket=bucket, Key="big", UploadId=uid, PartNumber=i, Body=p)["ETag"])
    listed = s3.list_parts(Bucket=bucket, Key="big", UploadId=uid)
    assert [(p["PartNumber"], p["Size"]) for p in listed["Parts"]] == [(1, 5 * MiB), (2, 5 * MiB + 17), (3, 4)]
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=uid, MultipartUpload={"Parts": [
            {"PartNumber": 2, "ETag": etags[1]}, {"PartNumber": 1, "ETag": etags[0]}]})
    assert error_of(e) == ("InvalidPartOrder", 400)
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=uid, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": '"0123456789abcdef0123456789abcdef"'}]})
    assert error_of(e) == ("InvalidPart", 400)
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=uid, MultipartUpload={"Parts": [
            {"PartNumber": 3, "ETag": etags[2]}, {"PartNumber": 4, "ETag": etags[2]}]})
    assert error_of(e) == ("InvalidPart", 400)
    done = s3.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=uid, MultipartUpload={"Parts": [
        {"PartNumber": i, "ETag": t} for i, t in enumerate(etags, start=1)]})
    md5s = b"".join(hashlib.md5(p).digest() for p in parts)
    assert done["ETag"] == '"%s-3"' % hashlib.md5(md5s).hexdigest()
    got = s3.get_object(Bucket=bucket, Key="big")
    assert got["Body"].read() == b"".join(parts)
    assert got["ContentType"] == "application/x-big" and got["Metadata"] == {"k": "v"}
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="big", UploadId=uid, PartNumber=1, Body=b"x")
    assert error_of(e) == ("NoSuchUpload", 404)
    # A part below 5 MiB that is not the last.
    small = s3.create_multipart_upload(Bucket=bucket, Key="small")["UploadId"]
    t1 = s3.upload_part(Bucket=bucket, Key="small", UploadId=small, PartNumber=1, Body=b"a" * 1000)["ETag"]
    t2 = s3.upload_part(Bucket=bucket, Key="small", UploadId=small, PartNumber=2, Body=b"b")["ETag"]
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="small", UploadId=small, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": t1}, {"PartNumber": 2, "ETag": t2}]})
    assert error_of(e) == ("EntityTooSmall", 400)
    s3.abort_multipart_upload(Bucket=bucket, Key="small", UploadId=small)
    with pytest.raises(ClientError) as e:
        s3.list_parts(Bucket=bucket, Key="small", UploadId=small)
    assert error_of(e) == ("NoSuchUpload", 404)


def test_copies_keep_or_replace_metadata_and_copy_parts(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"0123456789" * 1000, ContentType="text/plain", Metadata={"a": "1"},
                  Tagging="t=1")
    s3.copy_object(Bucket=bucket, Key="kept", CopySource={"Bucket": bucket, "Key": "src"})
    kept = s3.get_object(Bucket=bucket, Key="kept")
    assert (kept["ContentType"], kept["Metadata"], kept["Body"].read()[:10]) == ("text/plain", {"a": "1"}, b"0123456789")
    assert s3.get_object_tagging(Bucket=bucket, Key="kept")["TagSet"] == [{"Key": "t", "Value": "1"}]
    s3.copy_object(Bucket=bucket, Key="replaced", CopySource=f"{bucket}/src", MetadataDirective="REPLACE",
                   ContentType="text/csv", Metadata={"b": "2"})
    rep = s3.head_object(Bucket=bucket, Key="replaced")
    assert (rep["ContentType"], rep["Metadata"]) == ("text/csv", {"b": "2"})
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="src", CopySource=f"{bucket}/src")
    assert error_of(e) == ("InvalidRequest", 400)
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="x", CopySource=f"{bucket}/missing")
    assert error_of(e) == ("NoSuchKey", 404)
    # Overwriting the source leaves the copy whole.
    s3.put_object(Bucket=bucket, Key="src", Body=b"new")
    assert len(s3.get_object(Bucket=bucket, Key="kept")["Body"].read()) == 10000
    # UploadPartCopy with a range.
    uid = s3.create_multipart_upload(Bucket=bucket, Key="assembled")["UploadId"]
    p = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=uid, PartNumber=1,
                            CopySource={"Bucket": bucket, "Key": "kept"}, CopySourceRange="bytes=5-14")
    s3.complete_multipart_upload(Bucket=bucket, Key="assembled", UploadId=uid,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": p["CopyPartResult"]["ETag"]}]})
    assert s3.get_object(Bucket=bucket, Key="assembled")["Body"].read() == b"5678901234"


def test_batch_deletes_report_each_key(s3, bucket):
    for k in ["a", "b", "c"]:
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    out = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a"}, {"Key": "b"}, {"Key": "never"}]})
    assert sorted(d["Key"] for d in out["Deleted"]) == ["a", "b", "never"]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["c"]
    quiet = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "c"}], "Quiet": True})
    assert "Deleted" not in quiet
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_versioning_keeps_every_version_and_delete_markers(s3, bucket):
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="v", Body=b"before")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    v1 = s3.put_object(Bucket=bucket, Key="v", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="v", Body=b"two")["VersionId"]
    assert v1 != v2 and v1 and v2
    assert s3.get_object(Bucket=bucket, Key="v")["Body"].read() == b"two"
    assert s3.get_object(Bucket=bucket, Key="v", VersionId=v1)["Body"].read() == b"one"
    assert s3.get_object(Bucket=bucket, Key="v", VersionId="null")["Body"].read() == b"before"
    deleted = s3.delete_object(Bucket=bucket, Key="v")
    assert deleted["DeleteMarker"] is True
    marker = deleted["VersionId"]
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="v")
    assert error_of(e) == ("NoSuchKey", 404)
    assert e.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-delete-marker"] == "true"
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="v", VersionId=marker)
    assert error_of(e) == ("405", 405)
    listed = s3.list_object_versions(Bucket=bucket, Prefix="v")
    assert [(v["VersionId"], v["IsLatest"]) for v in listed["Versions"]] == [(v2, False), (v1, False), ("null", False)]
    assert [(m["VersionId"], m["IsLatest"]) for m in listed["DeleteMarkers"]] == [(marker, True)]
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    s3.delete_object(Bucket=bucket, Key="v", VersionId=marker)
    assert s3.get_object(Bucket=bucket, Key="v")["Body"].read() == b"two"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="v", VersionId="no-such-version")
    assert error_of(e)[1] in (400, 404)


def test_object_and_bucket_tags(s3, bucket):
    s3.put_object(Bucket=bucket, Key="t", Body=b"x", Tagging="a=1&b=two%20words")
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "two words"}]
    assert s3.get_object(Bucket=bucket, Key="t")["TagCount"] == 2
    s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [{"Key": "c", "Value": "3"}]})
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == [{"Key": "c", "Value": "3"}]
    s3.delete_object_tagging(Bucket=bucket, Key="t")
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == []
    with pytest.raises(ClientError) as e:
        s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [{"Key": f"k{i}", "Value": "v"} for i in range(11)]})
    assert error_of(e)[1] == 400
    with pytest.raises(ClientError) as e:
        s3.get_bucket_tagging(Bucket=bucket)
    assert error_of(e) == ("NoSuchTagSet", 404)
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "team", "Value": "a"}]})
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "team", "Value": "a"}]


def test_presigned_urls_read_and_write_until_they_expire(s3, bucket):
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=60)
    # As curl --upload-file sends it: no Content-Type (a presigned PUT signs the one it was made with).
    u = urllib.parse.urlsplit(put_url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    conn.request("PUT", f"{u.path}?{u.query}", body=b"presigned body")
    r = conn.getresponse()
    assert r.status == 200, r.read()
    import boto3
    v4 = boto3.session.Session().client("s3", endpoint_url=s3.meta.endpoint_url, region_name=REGION, aws_access_key_id="test",
                                        aws_secret_access_key="test", config=Config(signature_version="s3v4"))
    v4_url = v4.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=60)
    assert "X-Amz-Signature=" in v4_url
    with urllib.request.urlopen(v4_url, timeout=10) as r:
        assert r.read() == b"presigned body"
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p", "ResponseContentType": "text/x-test"},
                                        ExpiresIn=60)
    with urllib.request.urlopen(get_url, timeout=10) as r:
        assert r.read() == b"presigned body"
        assert r.headers["Content-Type"] == "text/x-test"
    expired = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=1)
    time.sleep(2)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(expired, timeout=10)
    assert e.value.code == 403
    assert b"<Code>AccessDenied</Code>" in e.value.read()
    # A tampered URL is not the signed one.
    tampered = get_url.replace("Key=p", "Key=q") if "Key=p" in get_url else get_url.replace(f"/{bucket}/p", f"/{bucket}/q")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(tampered, timeout=10)
    assert e.value.code == 403


def test_unsigned_and_badly_signed_requests_are_refused(server, bucket, s3):
    s3.put_object(Bucket=bucket, Key="secret", Body=b"s")
    host = server.endpoint.split("//")[1]
    conn = http.client.HTTPConnection(*host.split(":"), timeout=10)
    conn.request("GET", f"/secret", headers={"Host": f"{bucket}.s3.localhost"})
    r = conn.getresponse()
    body = r.read()
    assert r.status == 403 and b"<Code>AccessDenied</Code>" in body, body
    wrong = boto_client("s3", server.endpoint, aws_secret_access_key="wrong")
    with pytest.raises(ClientError) as e:
        wrong.get_object(Bucket=bucket, Key="secret")
    assert error_of(e) == ("SignatureDoesNotMatch", 403)
    unknown = boto_client("s3", server.endpoint, aws_access_key_id="AKIANOTKNOWN0000", aws_secret_access_key="x")
    with pytest.raises(ClientError) as e:
        unknown.list_buckets()
    assert error_of(e) == ("InvalidAccessKeyId", 403)


def test_virtual_hosted_requests_name_their_bucket_in_the_host(server, bucket, s3):
    s3.put_object(Bucket=bucket, Key="vh/key", Body=b"hosted")
    assert _signed_virtual(server.endpoint, bucket, "vh/key") == (200, b"hosted")


def _signed_virtual(endpoint: str, bucket: str, key: str) -> tuple[int, bytes]:
    """GET `key` addressed as `<bucket>.s3.localhost`, signed for that host, sent to the
    server's loopback address."""
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials
    port = endpoint.rsplit(":", 1)[1]
    url = f"http://{bucket}.s3.localhost:{port}/{key}"
    req = botocore.awsrequest.AWSRequest(method="GET", url=url, headers={"x-amz-content-sha256": hashlib.sha256(b"").hexdigest()})
    botocore.auth.S3SigV4Auth(botocore.credentials.Credentials("test", "test"), "s3", REGION).add_auth(req)
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
    conn.request("GET", f"/{key}", headers={**dict(req.headers.items()), "Host": f"{bucket}.s3.localhost:{port}"})
    r = conn.getresponse()
    return r.status, r.read()


def test_the_aws_cli_copies_syncs_and_lists(server, aws_cli, tmp_path, s3, bucket):
    aws = aws_cli_runner(aws_cli, server.endpoint, tmp_path / "home")
    src = tmp_path / "src"
    (src / "nested" / "deeper").mkdir(parents=True)
    big = os.urandom(20 * MiB + 123)
    (src / "big.bin").write_bytes(big)
    for i in range(5):
        (src / "nested" / f"f{i}.txt").write_text(f"file {i}\n")
    (src / "nested" / "deeper" / "ü n i.txt").write_text("unicode\n")
    cp = aws("s3", "cp", str(src / "big.bin"), f"s3://{bucket}/big.bin")
    assert cp.returncode == 0, cp.err
    head = s3.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == len(big)
    assert head["ETag"].endswith('-3"'), head["ETag"]  # multipart at the CLI's 8 MB chunks
    sync = aws("s3", "sync", str(src / "nested"), f"s3://{bucket}/nested/")
    assert sync.returncode == 0, sync.err
    ls = aws("s3", "ls", f"s3://{bucket}/nested/", "--recursive")
    assert ls.returncode == 0 and "ü n i.txt" in ls.out and ls.out.count("\n") == 6, ls.out
    again = aws("s3", "sync", str(src / "nested"), f"s3://{bucket}/nested/")
    assert again.returncode == 0 and again.out.strip() == "", again.out
    dst = tmp_path / "dst"
    down = aws("s3", "cp", f"s3://{bucket}/", str(dst), "--recursive")
    assert down.returncode == 0, down.err
    assert (dst / "big.bin").read_bytes() == big
    assert (dst / "nested" / "deeper" / "ü n i.txt").read_text() == "unicode\n"
    api = aws("s3api", "head-object", "--bucket", bucket, "--key", "nested/f0.txt")
    assert api.returncode == 0 and json.loads(api.out)["ContentLength"] == 7
    rm = aws("s3", "rm", f"s3://{bucket}/", "--recursive")
    assert rm.returncode == 0, rm.err
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_the_js_sdk_streams_uploads_with_trailing_checksums(server, bucket, s3, tmp_path):
    script = Path(__file__).parent / "js" / "s3.mjs"
    env = dict(os.environ, NIMBUS_ENDPOINT=server.endpoint, BUCKET=bucket, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
               AWS_REGION=REGION)
    cp = subprocess.run(["node", str(script)], env=env, capture_output=True, timeout=120)
    assert cp.returncode == 0, cp.stderr.decode() + cp.stdout.decode()
    out = json.loads(cp.stdout)
    body = s3.get_object(Bucket=bucket, Key="js/stream.bin", ChecksumMode="ENABLED")
    data = body["Body"].read()
    assert len(data) == out["size"]
    assert hashlib.sha256(data).hexdigest() == out["sha256"]
    assert out["checksum"] and body.get("ChecksumCRC32") == out["checksum"]
    assert out["listed"] == ["js/small.txt", "js/stream.bin"]


def test_notifications_reach_queues_and_functions(server, s3, bucket, tmp_path):
    sqs = server.sqs_client()
    lam = server.lambda_client()
    queue_url = sqs.create_queue(QueueName=unique("s3q"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    # The queue must let S3 send.
    with pytest.raises(ClientError) as e:
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}]})
    assert error_of(e) == ("InvalidArgument", 400)
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
                                                      "Action": "sqs:SendMessage", "Resource": queue_arn}]}
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})
    handler = "import json\ndef handler(event, context):\n    print('S3EVENT ' + json.dumps(event))\n    return 'ok'\n"
    fn = create_function(lam, unique("s3fn"), "python3.11", "index.handler", make_zip({"index.py": handler}))
    lam.add_permission(FunctionName=fn.name, StatementId="s3", Action="lambda:InvokeFunction", Principal="s3.amazonaws.com",
                       SourceArn=f"arn:aws:s3:::{bucket}")
    config = {
        "QueueConfigurations": [{"Id": "to-queue", "QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
                                 "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "in/"}]}}}],
        "LambdaFunctionConfigurations": [{"Id": "to-fn", "LambdaFunctionArn": fn.arn, "Events": ["s3:ObjectCreated:Put"],
                                          "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "photos/"},
                                                                             {"Name": "suffix", "Value": ".jpg"}]}}}],
    }
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)
    got = s3.get_bucket_notification_configuration(Bucket=bucket)
    assert got["QueueConfigurations"][0]["Id"] == "to-queue"
    assert got["LambdaFunctionConfigurations"][0]["LambdaFunctionArn"] == fn.arn

    def messages(n: int) -> list[dict]:
        seen: list[dict] = []

        def more():
            for m in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
                seen.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
            return len(seen) >= n
        wait_for(more, timeout=20, what=f"{n} queue messages")
        return seen

    test_event = messages(1)[0]
    assert test_event["Event"] == "s3:TestEvent" and test_event["Bucket"] == bucket
    body = b"a" * 1234
    s3.put_object(Bucket=bucket, Key="in/a b.txt", Body=body)
    s3.put_object(Bucket=bucket, Key="out/skipped.txt", Body=b"x")
    s3.delete_object(Bucket=bucket, Key="in/a b.txt")
    created, removed = messages(2)
    record = created["Records"][0]
    assert record["eventSource"] == "aws:s3" and record["eventVersion"] == "2.1"
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["configurationId"] == "to-queue"
    assert record["s3"]["bucket"]["name"] == bucket and record["s3"]["bucket"]["arn"] == f"arn:aws:s3:::{bucket}"
    assert record["s3"]["object"]["key"] == "in/a+b.txt"
    assert record["s3"]["object"]["size"] == 1234
    assert record["s3"]["object"]["eTag"] == hashlib.md5(body).hexdigest()
    assert removed["Records"][0]["eventName"] == "ObjectRemoved:Delete"
    assert int(removed["Records"][0]["s3"]["object"]["sequencer"], 16) > int(record["s3"]["object"]["sequencer"], 16)
    # The function gets its .jpg.
    s3.put_object(Bucket=bucket, Key="photos/photo.jpg", Body=b"jpeg")
    logs = server.logs_client()

    def invoked():
        events = logs.filter_log_events(logGroupName=f"/aws/lambda/{fn.name}", filterPattern="S3EVENT").get("events", [])
        return events
    try:
        events = wait_for(invoked, timeout=30, what="the function's S3 event")
    except Exception:
        events = []
    assert events, server.log_tail()
    event = json.loads(events[0]["message"].split("S3EVENT ", 1)[1])
    assert event["Records"][0]["s3"]["object"]["key"] == "photos/photo.jpg"
    assert event["Records"][0]["s3"]["configurationId"] == "to-fn"


def test_acknowledged_objects_and_notifications_survive_sigkill(nimbus_bin, tmp_path):
    srv = Server(nimbus_bin, tmp_path / "data", tmp_path / "server.log", name="s3-kill").start()
    try:
        s3 = srv.client("s3")
        sqs = srv.sqs_client()
        s3.create_bucket(Bucket="durable-bucket")
        url = sqs.create_queue(QueueName="s3-durable")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
                                                          "Action": "sqs:SendMessage", "Resource": arn}]}
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
        s3.put_bucket_notification_configuration(Bucket="durable-bucket", NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
        bodies = {f"k{i}": os.urandom(1000 + i) for i in range(20)}
        for k, b in bodies.items():
            s3.put_object(Bucket="durable-bucket", Key=k, Body=b)
        srv.kill()
        srv.start()
        s3 = srv.client("s3")
        for k, b in bodies.items():
            assert s3.get_object(Bucket="durable-bucket", Key=k)["Body"].read() == b
        sqs = srv.sqs_client()
        keys: set[str] = set()

        def all_delivered():
            for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
                doc = json.loads(m["Body"])
                for r in doc.get("Records", []):
                    keys.add(r["s3"]["object"]["key"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            return keys >= set(bodies)
        wait_for(all_delivered, timeout=30, what="every acknowledged object's notification")
        # No staging file is left behind.
        staging = tmp_path / "data"
        assert not [p for p in staging.rglob("staging/*")]
    finally:
        srv.stop()


def test_an_upload_cut_by_sigkill_leaves_nothing_half_visible(nimbus_bin, tmp_path):
    srv = Server(nimbus_bin, tmp_path / "data", tmp_path / "server.log", name="s3-cut").start()
    try:
        srv.client("s3").create_bucket(Bucket="cut-bucket")
        # A PUT whose body stops halfway, then the server is killed with SIGKILL.
        import botocore.auth
        import botocore.awsrequest
        import botocore.credentials
        size = 64 * MiB
        url = f"{srv.endpoint}/cut-bucket/half"
        req = botocore.awsrequest.AWSRequest(method="PUT", url=url, headers={
            "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "Content-Length": str(size)})
        botocore.auth.S3SigV4Auth(botocore.credentials.Credentials("test", "test"), "s3", REGION).add_auth(req)
        u = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        conn.putrequest("PUT", u.path, skip_accept_encoding=True)
        for k, v in req.headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        for _ in range(20):
            conn.send(os.urandom(MiB))
        staging = tmp_path / "data" / "objects" / "staging"
        wait_for(lambda: any(p.stat().st_size > 0 for p in staging.iterdir()), timeout=10, what="the upload's staging file")
        srv.kill()
        conn.close()
        srv.start()
        s3 = srv.client("s3")
        with pytest.raises(ClientError) as e:
            s3.head_object(Bucket="cut-bucket", Key="half")
        assert error_of(e) == ("404", 404)
        assert list(staging.iterdir()) == []
        assert s3.list_objects_v2(Bucket="cut-bucket")["KeyCount"] == 0
    finally:
        srv.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a small file system for the data directory")
def test_a_full_disk_fails_the_upload_cleanly_and_gives_the_space_back(nimbus_bin, tmp_path):
    data = tmp_path / "small"
    data.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(data)], check=True)
    srv = Server(nimbus_bin, data / "data", tmp_path / "server.log", name="s3-full")
    try:
        srv.start()
        s3 = srv.client("s3")
        s3.create_bucket(Bucket="full-bucket")
        s3.put_object(Bucket="full-bucket", Key="before", Body=b"kept")
        free_before = os.statvfs(data).f_bavail
        with pytest.raises(Exception) as e:
            s3.put_object(Bucket="full-bucket", Key="too-big", Body=os.urandom(64 * MiB))
        if isinstance(e.value, ClientError):
            assert error_of(e)[1] == 500, e.value.response
        with pytest.raises(ClientError) as e:
            s3.head_object(Bucket="full-bucket", Key="too-big")
        assert error_of(e) == ("404", 404)
        assert not list((data / "data" / "objects" / "staging").iterdir())
        assert os.statvfs(data).f_bavail >= free_before - 64, "the failed upload's space was not given back"
        assert s3.get_object(Bucket="full-bucket", Key="before")["Body"].read() == b"kept"
        s3.put_object(Bucket="full-bucket", Key="after", Body=b"fits")
        assert s3.get_object(Bucket="full-bucket", Key="after")["Body"].read() == b"fits"
    finally:
        srv.stop()
        subprocess.run(["umount", "-l", str(data)], check=False)


def test_the_thumbnail_walkthrough(sdk_server, tmp_path):
    """The README's walkthrough: a Python function receives the S3 event of an upload, reads
    the object with boto3 under its role, writes its result to another prefix, and is
    refused where its role does not reach."""
    s3, lam, iam = sdk_server.client("s3"), sdk_server.lambda_client(), sdk_server.client("iam")
    bucket = unique("photos").lower()
    s3.create_bucket(Bucket=bucket)
    role = unique("thumbs")
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
    iam.put_role_policy(RoleName=role, PolicyName="photos", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/uploads/*"},
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/thumbnails/*"},
        {"Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], "Resource": "*"}]}))
    code = '''import urllib.parse
import boto3
from botocore.exceptions import ClientError

s3 = boto3.client("s3")


def handler(event, context):
    for record in event["Records"]:
        bucket = record["s3"]["bucket"]["name"]
        key = urllib.parse.unquote_plus(record["s3"]["object"]["key"])
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        name = key.split("/", 1)[1]
        s3.put_object(Bucket=bucket, Key=f"thumbnails/{name}.txt", Body=body.upper(), ContentType="text/plain")
        try:
            s3.put_object(Bucket=bucket, Key="elsewhere/x", Body=b"no")
        except ClientError as e:
            print("DENIED", e.response["Error"]["Code"])
'''
    fn = create_function(lam, unique("thumbnail"), "python3.11", "index.handler", make_zip({"index.py": code}),
                         Role=f"arn:aws:iam::{ACCOUNT}:role/{role}", Timeout=30)
    lam.add_permission(FunctionName=fn.name, StatementId="s3", Action="lambda:InvokeFunction", Principal="s3.amazonaws.com",
                       SourceArn=f"arn:aws:s3:::{bucket}", SourceAccount=ACCOUNT)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"LambdaFunctionConfigurations": [
        {"LambdaFunctionArn": fn.arn, "Events": ["s3:ObjectCreated:*"],
         "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "uploads/"}]}}}]})
    s3.put_object(Bucket=bucket, Key="uploads/my photo.jpg", Body=b"pixels")

    def thumbnail():
        try:
            return s3.get_object(Bucket=bucket, Key="thumbnails/my photo.jpg.txt")["Body"].read()
        except ClientError:
            return None
    assert wait_for(thumbnail, timeout=60, what="the thumbnail") == b"PIXELS"
    logs = sdk_server.logs_client()
    denied = wait_for(lambda: logs.filter_log_events(logGroupName=f"/aws/lambda/{fn.name}", filterPattern="DENIED").get("events"),
                      timeout=30, what="the denial in the log")
    assert "DENIED AccessDenied" in denied[0]["message"]
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="elsewhere/x")


def s3_raw(endpoint: str, method: str, path: str, body: bytes = b"", headers: dict | None = None) -> tuple[int, dict, bytes]:
    """A request signed as boto3 signs S3's (S3SigV4Auth), sent as is."""
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials
    req = botocore.awsrequest.AWSRequest(method=method, url=endpoint + path, data=body, headers=dict(headers or {}))
    botocore.auth.S3SigV4Auth(botocore.credentials.Credentials("test", "test"), "s3", REGION).add_auth(req)
    u = urllib.parse.urlsplit(endpoint + path)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.request(method, u.path + (f"?{u.query}" if u.query else ""), body=body, headers=dict(req.headers.items()))
    r = conn.getresponse()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()


def test_settings_nimbus_does_not_serve_never_become_other_calls(s3, bucket):
    """PutBucketEncryption or DeleteBucketLifecycle must not create or delete the bucket."""
    raw = boto_client("s3", s3.meta.endpoint_url, validate=False)
    calls = [
        lambda: raw.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}),
        lambda: raw.delete_bucket_lifecycle(Bucket=bucket),
        lambda: raw.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={"BlockPublicAcls": True}),
        lambda: raw.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}),
    ]
    for call in calls:
        with pytest.raises(ClientError) as e:
            call()
        assert error_of(e) == ("NotImplemented", 501)
    assert s3.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200
    with pytest.raises(ClientError) as e:
        raw.put_bucket_ownership_controls(Bucket=unique("never").lower(), OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    assert error_of(e) == ("NotImplemented", 501)


def test_parts_of_an_object_are_read_by_number(s3, bucket):
    parts = [os.urandom(5 * MiB), b"second part"]
    uid = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    etags = [s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=i, Body=p)["ETag"] for i, p in enumerate(parts, 1)]
    done = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid,
                                        MultipartUpload={"Parts": [{"PartNumber": i, "ETag": t} for i, t in enumerate(etags, 1)]})
    assert done["ChecksumType"] == "FULL_OBJECT" and done["ChecksumCRC64NVME"]
    second = s3.get_object(Bucket=bucket, Key="mp", PartNumber=2)
    assert second["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert second["Body"].read() == b"second part"
    assert second["ContentRange"] == f"bytes {5 * MiB}-{5 * MiB + 10}/{5 * MiB + 11}"
    assert second["PartsCount"] == 2
    assert s3.head_object(Bucket=bucket, Key="mp", PartNumber=1)["ContentLength"] == 5 * MiB
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="mp", PartNumber=3)
    assert error_of(e) == ("InvalidPartNumber", 416)
    assert e.value.response["Error"]["ActualPartCount"] == "2"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="mp", PartNumber=1, Range="bytes=0-1")
    assert error_of(e) == ("InvalidRequest", 400)
    s3.put_object(Bucket=bucket, Key="plain", Body=b"12345678")
    one = s3.get_object(Bucket=bucket, Key="plain", PartNumber=1)
    assert (one["ResponseMetadata"]["HTTPStatusCode"], one["ContentRange"], one["Body"].read()) == (206, "bytes 0-7/8", b"12345678")


def test_bad_input_gets_s3s_errors(server, s3, bucket):
    md5 = lambda b: base64.b64encode(hashlib.md5(b).digest()).decode()  # noqa: E731
    uid = s3.create_multipart_upload(Bucket=bucket, Key="m")["UploadId"]
    cases = [
        ("POST", f"/{bucket}?delete", b"<Delete><Object><Key>a</Key>", {"Content-MD5": md5(b"<Delete><Object><Key>a</Key>")}, 400, "MalformedXML"),
        ("POST", f"/{bucket}?delete", b"<Delete><Object><Key>a</Key></Object></Delete>", {}, 400, "InvalidRequest"),
        ("POST", f"/{bucket}/m?uploadId={uid}", b"not xml at all", {}, 400, "MalformedXML"),
        ("POST", f"/{bucket}/m?uploadId={uid}", b"<CompleteMultipartUpload></CompleteMultipartUpload>", {}, 400, "InvalidRequest"),
        ("PUT", f"/{bucket}/s", b"x", {"x-amz-checksum-sha256": "not base64!"}, 400, "InvalidRequest"),
        ("GET", f"/{bucket}/m?versionId=bad-id", b"", {}, 400, "InvalidArgument"),
        ("PUT", f"/{bucket}?versioning", b"<VersioningConfiguration></VersioningConfiguration>", {}, 400, "IllegalVersioningConfigurationException"),
        ("POST", f"/{bucket}/m?uploadId=nope", b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>", {}, 404, "NoSuchUpload"),
        ("PUT", f"/{bucket}/m?partNumber=0&uploadId={uid}", b"x", {}, 400, "InvalidArgument"),
        ("PUT", f"/{bucket}/m?partNumber=10001&uploadId={uid}", b"x", {}, 400, "InvalidArgument"),
        ("PUT", f"/{bucket}?versioning", b"<VersioningConfiguration><Status>Sometimes</Status></VersioningConfiguration>", {}, 400, "MalformedXML"),
        ("GET", f"/{bucket}?lifecycle", b"", {}, 501, "NotImplemented"),
        ("GET", f"/{bucket}?list-type=2&max-keys=-1", b"", {}, 400, "InvalidArgument"),
        ("GET", f"/{bucket}?list-type=2&continuation-token=%21%21", b"", {}, 400, "InvalidArgument"),
        ("GET", f"/{bucket}?list-type=2&encoding-type=base64", b"", {}, 400, "InvalidArgument"),
        ("PUT", f"/{bucket}/c", b"x", {"x-amz-copy-source": f"{bucket}"}, 400, "InvalidArgument"),
        ("PUT", f"/{bucket}/t", b"x", {"x-amz-tagging": "&".join(f"k{i}=v" for i in range(11))}, 400, "InvalidTag"),
        ("PUT", f"/{bucket}/s", b"x", {"x-amz-sdk-checksum-algorithm": "MD4"}, 400, "InvalidRequest"),
        ("GET", "/no-such-bucket-here/k", b"", {}, 404, "NoSuchBucket"),
        ("PUT", "/no-such-bucket-here/k", b"x", {}, 404, "NoSuchBucket"),
    ]
    for method, path, body, headers, status, code in cases:
        got, hdrs, text = s3_raw(server.endpoint, method, path, body, headers)
        assert (got, f"<Code>{code}</Code>" in text.decode()) == (status, True), (method, path, got, text)
        assert re.fullmatch(r"[0-9A-F]{16}", hdrs["x-amz-request-id"]), hdrs
        assert f"<RequestId>{hdrs['x-amz-request-id']}</RequestId>".encode() in text
    # A body whose hash is not the signed one.
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials
    req = botocore.awsrequest.AWSRequest(method="PUT", url=f"{server.endpoint}/{bucket}/h", data=b"signed body")
    botocore.auth.S3SigV4Auth(botocore.credentials.Credentials("test", "test"), "s3", REGION).add_auth(req)
    req.headers["x-amz-content-sha256"] = hashlib.sha256(b"signed body").hexdigest()
    headers = dict(req.headers.items())
    u = urllib.parse.urlsplit(server.endpoint)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    conn.request("PUT", f"/{bucket}/h", body=b"other body!", headers=headers)
    r = conn.getresponse()
    text = r.read()
    assert r.status in (400, 403) and (b"XAmzContentSHA256Mismatch" in text or b"SignatureDoesNotMatch" in text), text
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="h")


def _s3_user(server, statements: list[dict] | None) -> tuple[str, object]:
    """A new IAM user with `statements` as its inline policy, and an S3 client signing as it."""
    iam = server.client("iam")
    name = unique("s3-user")
    iam.create_user(UserName=name)
    if statements:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return f"arn:aws:iam::{ACCOUNT}:user/{name}", boto_client("s3", server.endpoint, aws_access_key_id=key["AccessKeyId"],
                                                              aws_secret_access_key=key["SecretAccessKey"])


def test_iam_policies_and_bucket_policies_decide_who_may_do_what(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="public/index.html", Body=b"<h1>hi</h1>", ContentType="text/html")
    s3.put_object(Bucket=bucket, Key="private/secret", Body=b"s")
    reader_arn, reader = _s3_user(server, [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
                                            "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/public/*"]}])
    assert wait_for(lambda: _allowed(lambda: reader.get_object(Bucket=bucket, Key="public/index.html")), timeout=10, what="the new key")
    assert reader.list_objects_v2(Bucket=bucket, Prefix="public/")["KeyCount"] == 1
    for call in (lambda: reader.get_object(Bucket=bucket, Key="private/secret"),
                 lambda: reader.put_object(Bucket=bucket, Key="public/new", Body=b"x"),
                 lambda: reader.delete_object(Bucket=bucket, Key="public/index.html"),
                 lambda: reader.list_buckets()):
        with pytest.raises(ClientError) as e:
            call()
        assert error_of(e) == ("AccessDenied", 403)
    # A user with no policy at all, let in by the bucket's policy (same account).
    nobody_arn, nobody = _s3_user(server, None)
    wait_for(lambda: _denied(lambda: nobody.get_object(Bucket=bucket, Key="private/secret")), timeout=10, what="the new key")
    with pytest.raises(ClientError) as e:
        s3.get_bucket_policy(Bucket=bucket)
    assert error_of(e) == ("NoSuchBucketPolicy", 404)
    policy = {"Version": "2012-10-17", "Statement": [
        {"Sid": "user", "Effect": "Allow", "Principal": {"AWS": nobody_arn}, "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{bucket}/private/*"},
        {"Sid": "public", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/public/*"},
        {"Sid": "deny-reader", "Effect": "Deny", "Principal": {"AWS": reader_arn}, "Action": "s3:ListBucket",
         "Resource": f"arn:aws:s3:::{bucket}"},
    ]}
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == policy
    assert nobody.get_object(Bucket=bucket, Key="private/secret")["Body"].read() == b"s"
    with pytest.raises(ClientError) as e:
        reader.list_objects_v2(Bucket=bucket)
    assert error_of(e) == ("AccessDenied", 403)
    # Anyone, unsigned, path-style (what a browser or curl sends): only what the policy grants everyone.
    with urllib.request.urlopen(f"{server.endpoint}/{bucket}/public/index.html", timeout=10) as r:
        assert r.read() == b"<h1>hi</h1>"
    for path in (f"/{bucket}/private/secret", f"/{bucket}?list-type=2"):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"{server.endpoint}{path}", timeout=10)
        assert e.value.code == 403 and b"<Code>AccessDenied</Code>" in e.value.read()
    with pytest.raises(ClientError) as e:
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                                                              "Resource": "arn:aws:s3:::some-other-bucket/*"}]}))
    assert error_of(e) == ("MalformedPolicy", 400)
    with pytest.raises(ClientError) as e:
        s3.put_bucket_policy(Bucket=bucket, Policy="not json")
    assert error_of(e) == ("MalformedPolicy", 400)
    s3.delete_bucket_policy(Bucket=bucket)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{server.endpoint}/{bucket}/public/index.html", timeout=10)
    assert e.value.code == 403


def _allowed(call) -> bool:
    try:
        call()
        return True
    except ClientError:
        return False


def _denied(call) -> bool:
    try:
        call()
        return False
    except ClientError as e:
        return e.response["Error"]["Code"] == "AccessDenied"


def test_notifications_reach_topics(server, s3, bucket):
    from helpers import sns_may_send
    sns, sqs = server.sns_client(), server.sqs_client()
    topic = sns.create_topic(Name=unique("s3t"))["TopicArn"]
    url = sqs.create_queue(QueueName=unique("s3t-q"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": sns_may_send(queue_arn, topic)})
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    config = {"TopicConfigurations": [{"Id": "to-topic", "TopicArn": topic, "Events": ["s3:ObjectRemoved:*", "s3:ObjectTagging:*"]}]}
    # A topic's default policy lets only its account publish: S3 is refused until it is let in.
    with pytest.raises(ClientError) as e:
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)
    assert error_of(e) == ("InvalidArgument", 400)
    sns.set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sns:Publish", "Resource": topic,
         "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"}}}]}))
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)
    s3.put_object(Bucket=bucket, Key="t.txt", Body=b"x")
    s3.put_object_tagging(Bucket=bucket, Key="t.txt", Tagging={"TagSet": [{"Key": "a", "Value": "b"}]})
    s3.delete_object(Bucket=bucket, Key="t.txt")
    seen: list[dict] = []

    def three():
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            seen.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return len(seen) >= 3
    wait_for(three, timeout=20, what="the test event and two notifications through the topic")
    assert seen[0]["Event"] == "s3:TestEvent"
    # A standard queue keeps no order (and tagging records carry no sequencer to sort by).
    assert sorted(d["Records"][0]["eventName"] for d in seen[1:]) == ["ObjectRemoved:Delete", "ObjectTagging:Put"]
    assert all(d["Records"][0]["s3"]["configurationId"] == "to-topic" for d in seen[1:])


def test_notifications_reach_eventbridge_rules(server, s3, bucket):
    events, lam = server.events_client(), server.lambda_client()
    handler = "import json\ndef handler(event, context):\n    print('EBEVENT ' + json.dumps(event))\n"
    fn = create_function(lam, unique("s3eb"), "python3.11", "index.handler", make_zip({"index.py": handler}))
    rule = unique("s3-created")
    rule_arn = events.put_rule(Name=rule, EventPattern=json.dumps({
        "source": ["aws.s3"], "detail-type": ["Object Created", "Object Deleted"], "detail": {"bucket": {"name": [bucket]}}}))["RuleArn"]
    lam.add_permission(FunctionName=fn.name, StatementId="eb", Action="lambda:InvokeFunction", Principal="events.amazonaws.com",
                       SourceArn=rule_arn)
    events.put_targets(Rule=rule, Targets=[{"Id": "fn", "Arn": fn.arn}])
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}})
    assert "EventBridgeConfiguration" in s3.get_bucket_notification_configuration(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="dir/a b.txt", Body=b"12345")
    s3.delete_object(Bucket=bucket, Key="dir/a b.txt")
    logs = server.logs_client()

    def two():
        found = logs.filter_log_events(logGroupName=f"/aws/lambda/{fn.name}", filterPattern="EBEVENT").get("events", [])
        return found if len(found) >= 2 else None
    try:
        found = wait_for(two, timeout=30, what="two EventBridge events")
    except Exception:
        pytest.fail(server.log_tail())
    got = sorted((json.loads(e["message"].split("EBEVENT ", 1)[1]) for e in found), key=lambda e: e["detail"]["object"]["sequencer"])
    created, deleted = got
    assert (created["source"], created["detail-type"], created["account"]) == ("aws.s3", "Object Created", ACCOUNT)
    assert created["resources"] == [f"arn:aws:s3:::{bucket}"]
    assert created["detail"]["object"]["key"] == "dir/a b.txt"
    assert created["detail"]["object"]["size"] == 5
    assert created["detail"]["object"]["etag"] == hashlib.md5(b"12345").hexdigest()
    assert created["detail"]["reason"] == "PutObject"
    assert (deleted["detail-type"], deleted["detail"]["deletion-type"]) == ("Object Deleted", "Permanently Deleted")


def _post_form(url: str, fields: dict, filename: str, content: bytes) -> tuple[int, dict, bytes]:
    """A browser's multipart/form-data POST: the fields, then the file."""
    boundary = "----nimbus" + os.urandom(8).hex()
    out = bytearray()
    for k, v in fields.items():
        out += f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n".encode()
    out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.request("POST", u.path or "/", body=bytes(out), headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    r = conn.getresponse()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()


def test_browser_form_uploads_follow_their_signed_policy(server, s3, bucket):
    import boto3
    sqs = server.sqs_client()
    queue_url = sqs.create_queue(QueueName=unique("s3post"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sqs:SendMessage", "Resource": queue_arn}]})})
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:Post"]}]})
    v4 = boto3.session.Session().client("s3", endpoint_url=server.endpoint, region_name=REGION, aws_access_key_id="test",
                                        aws_secret_access_key="test", config=Config(signature_version="s3v4"))
    for client, name in ((s3, "v2"), (v4, "v4")):
        post = client.generate_presigned_post(bucket, "uploads/" + name + "/${filename}", ExpiresIn=60,
                                              Fields={"Content-Type": "text/plain", "success_action_status": "201"},
                                              Conditions=[{"Content-Type": "text/plain"}, {"success_action_status": "201"},
                                                          ["content-length-range", 1, 1000]])
        status, headers, body = _post_form(post["url"], post["fields"], "hello.txt", b"hello form")
        assert status == 201, body
        assert f"<Key>uploads/{name}/hello.txt</Key>".encode() in body and b"<ETag>" in body
        got = s3.get_object(Bucket=bucket, Key=f"uploads/{name}/hello.txt")
        assert (got["Body"].read(), got["ContentType"]) == (b"hello form", "text/plain")
        # Outside its policy: too big, another content type, an extra field.
        assert _post_form(post["url"], post["fields"], "big.txt", b"x" * 1001)[0] == 400
        tampered = dict(post["fields"], **{"Content-Type": "text/html"})
        status, _, body = _post_form(post["url"], tampered, "a.html", b"<b>")
        assert status == 403 and b"Invalid according to Policy" in body, body
        status, _, body = _post_form(post["url"], dict(post["fields"], extra="1"), "a.txt", b"a")
        assert status == 403 and b"Extra input fields: extra" in body, body
    # A forged signature, and an unsigned form to a bucket whose policy does not let everyone put.
    post = s3.generate_presigned_post(bucket, "k", ExpiresIn=60)
    forged = dict(post["fields"], signature=base64.b64encode(b"\0" * 20).decode())
    assert _post_form(post["url"], forged, "f", b"x")[0] == 403
    assert _post_form(f"{server.endpoint}/{bucket}", {"key": "anon"}, "f", b"x")[0] == 403
    message = json.loads(sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=5)["Messages"][0]["Body"])
    if message.get("Event") == "s3:TestEvent":
        message = json.loads(sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=5)["Messages"][0]["Body"])
    assert message["Records"][0]["eventName"] == "ObjectCreated:Post"

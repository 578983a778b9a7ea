"""S3 across the nodes of a cluster (issue 17): buckets, versions, uploads and the
notifications each change owes live in the shared PostgreSQL database, and object bodies in
the shared S3-compatible storage (`--blobs`), so an object put on one node is read on every
node, a multipart upload's parts may arrive at different nodes, racing conditional writes
from several nodes let one win, a function is created from an object put elsewhere, and each
notification is delivered once, not once per node."""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from helpers import ROLE, make_zip, wait_for
from test_cluster_events import _nodes


def test_objects_are_every_nodes(server_factory, tmp_path):
    """Put on B (a small body kept in its row, a large one in the shared storage), read on C,
    listed and copied on A; versions made on two nodes are one history."""
    a, b, c = _nodes(server_factory, tmp_path, 3)
    a.client("s3").create_bucket(Bucket="shared")
    with pytest.raises(ClientError) as e:
        c.client("s3").create_bucket(Bucket="shared")
    assert e.value.response["Error"]["Code"] == "BucketAlreadyOwnedByYou"
    small, large = b"tiny", os.urandom(300_000)
    b.client("s3").put_object(Bucket="shared", Key="dir/small.txt", Body=small)
    b.client("s3").put_object(Bucket="shared", Key="dir/large.bin", Body=large)
    assert c.client("s3").get_object(Bucket="shared", Key="dir/small.txt")["Body"].read() == small
    got = c.client("s3").get_object(Bucket="shared", Key="dir/large.bin", Range="bytes=1000-1999")
    assert got["Body"].read() == large[1000:2000]
    assert c.client("s3").get_object(Bucket="shared", Key="dir/large.bin")["Body"].read() == large
    listed = a.client("s3").list_objects_v2(Bucket="shared", Prefix="dir/")
    assert [o["Key"] for o in listed["Contents"]] == ["dir/large.bin", "dir/small.txt"]
    a.client("s3").copy_object(Bucket="shared", Key="copy.bin", CopySource={"Bucket": "shared", "Key": "dir/large.bin"})
    assert b.client("s3").get_object(Bucket="shared", Key="copy.bin")["Body"].read() == large

    a.client("s3").put_bucket_versioning(Bucket="shared", VersioningConfiguration={"Status": "Enabled"})
    first = b.client("s3").put_object(Bucket="shared", Key="v", Body=b"one")["VersionId"]
    second = c.client("s3").put_object(Bucket="shared", Key="v", Body=b"two")["VersionId"]
    versions = a.client("s3").list_object_versions(Bucket="shared", Prefix="v")["Versions"]
    assert [(v["VersionId"], v["IsLatest"]) for v in versions] == [(second, True), (first, False)]
    assert b.client("s3").get_object(Bucket="shared", Key="v", VersionId=first)["Body"].read() == b"one"


def test_a_multipart_upload_and_racing_writes_span_nodes(server_factory, tmp_path):
    """An upload started on A gets its parts on B and C and is completed on A; conditional
    creates of one key raced from three nodes: one wins, the others get 412."""
    a, b, c = _nodes(server_factory, tmp_path, 3)
    a.client("s3").create_bucket(Bucket="mpu-bucket")
    upload = a.client("s3").create_multipart_upload(Bucket="mpu-bucket", Key="big")["UploadId"]
    parts = [os.urandom(5 * 1024 * 1024), os.urandom(1234)]
    etags = []
    for i, (node, data) in enumerate(zip([b, c], parts), start=1):
        etags.append(node.client("s3").upload_part(Bucket="mpu-bucket", Key="big", UploadId=upload, PartNumber=i, Body=data)["ETag"])
    assert len(c.client("s3").list_parts(Bucket="mpu-bucket", Key="big", UploadId=upload)["Parts"]) == 2
    a.client("s3").complete_multipart_upload(Bucket="mpu-bucket", Key="big", UploadId=upload, MultipartUpload={
        "Parts": [{"PartNumber": i, "ETag": e} for i, e in enumerate(etags, start=1)]})
    body = b.client("s3").get_object(Bucket="mpu-bucket", Key="big")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(b"".join(parts)).hexdigest()

    nodes = [a, b, c]

    def create(i: int) -> str:
        try:
            nodes[i % 3].client("s3").put_object(Bucket="mpu-bucket", Key="once", Body=str(i).encode(), IfNoneMatch="*")
            return "won"
        except ClientError as e:
            return e.response["Error"]["Code"]

    with ThreadPoolExecutor(12) as pool:
        outcomes = Counter(pool.map(create, range(24)))
    assert outcomes == {"won": 1, "PreconditionFailed": 23}, outcomes


def test_a_function_is_made_from_an_object_put_on_another_node(server_factory, tmp_path):
    a, b, c = _nodes(server_factory, tmp_path, 3)
    b.client("s3").create_bucket(Bucket="builds")
    code = make_zip({"index.js": "exports.handler = async (e) => ({echo: e, from: 's3'});"})
    b.client("s3").put_object(Bucket="builds", Key="app.zip", Body=code)
    a.lambda_client().create_function(FunctionName="from-s3", Runtime="nodejs20.x", Handler="index.handler",
                                      Role=ROLE, Code={"S3Bucket": "builds", "S3Key": "app.zip"})
    wait_for(lambda: c.lambda_client().get_function(FunctionName="from-s3")["Configuration"]["State"] == "Active", timeout=30,
             what="the function active")
    out = c.lambda_client().invoke(FunctionName="from-s3", Payload=b'{"n": 1}')
    assert json.loads(out["Payload"].read()) == {"echo": {"n": 1}, "from": "s3"}


def test_each_notification_is_delivered_once(server_factory, tmp_path):
    """Three nodes' delivery loops share the notifications: 30 objects put round the nodes
    reach the queue once each."""
    a, b, c = _nodes(server_factory, tmp_path, 3)
    sqs = c.sqs_client()
    queue_url = sqs.create_queue(QueueName="uploads")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
                                                      "Action": "sqs:SendMessage", "Resource": queue_arn}]}
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})
    a.client("s3").create_bucket(Bucket="watched")
    b.client("s3").put_bucket_notification_configuration(Bucket="watched", NotificationConfiguration={
        "QueueConfigurations": [{"Id": "q", "QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}]})
    nodes = [a, b, c]
    for i in range(30):
        nodes[i % 3].client("s3").put_object(Bucket="watched", Key=f"k{i:02d}", Body=b"x")
    seen: Counter = Counter()

    def receive() -> bool:
        for m in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            body = json.loads(m["Body"])
            for record in body.get("Records", []):
                seen[record["s3"]["object"]["key"]] += 1
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
        return len(seen) == 30

    wait_for(receive, timeout=30, what="every object's notification")
    # Nothing more arrives (a second delivery would be another node's copy).
    for _ in range(3):
        receive()
    assert set(seen.values()) == {1}, seen

"""Wire fixtures for the protocols no other test drives through botocore's own serializer and
parser (RPC v2 CBOR, rest-xml, and EC2's query dialect), made and checked by botocore itself.

`crates/nimbus-protocol/fixtures/botocore.json` holds cases of two kinds:
- requests: botocore serializes `value` (the operation's input, in the JSON form Nimbus's
  typed inputs read: blobs as base64, timestamps as epoch seconds) into HTTP; the Rust test
  decodes that HTTP and must get `value` back;
- responses: the Rust test encodes `value` (a typed output) and must produce exactly the
  stored HTTP; `test_protocol_fixtures.py` has botocore parse that HTTP and must get `value`.
The Rust side writes the responses' HTTP (`NIMBUS_BLESS=1 cargo test -p nimbus-protocol
botocore_fixtures`); this script writes the requests':

    .venv/bin/python tests/e2e/protocol_fixtures.py make
"""

from __future__ import annotations

import base64
import datetime
import io
import json
import sys
from pathlib import Path

import botocore.session
from botocore.awsrequest import HeadersDict
from botocore.parsers import create_parser
from botocore.serialize import create_serializer
from botocore.utils import percent_encode_sequence

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "crates" / "nimbus-protocol" / "fixtures" / "botocore.json"

SERVICES = {"cloudwatch": "smithy-rpc-v2-cbor", "s3": "rest-xml", "ec2": "ec2"}

T0 = 1_700_000_000  # 2023-11-14T22:13:20Z

# (service, operation, value) for each request case.
REQUESTS = [
    ("cloudwatch", "ListMetrics", {}),
    (
        "cloudwatch",
        "PutMetricData",
        {
            "Namespace": "Nimbus/Test",
            "MetricData": [
                {
                    "MetricName": "Latency",
                    "Dimensions": [{"Name": "FunctionName", "Value": "f"}],
                    "Timestamp": T0,
                    "Value": 1.5,
                    "Unit": "Milliseconds",
                    "StorageResolution": 1,
                },
                {"MetricName": "Count", "Values": [1.0, 2.25], "Counts": [3.0, 1.0]},
            ],
        },
    ),
    (
        "cloudwatch",
        "GetMetricData",
        {
            "MetricDataQueries": [
                {
                    "Id": "m1",
                    "MetricStat": {
                        "Metric": {"Namespace": "AWS/Lambda", "MetricName": "Invocations", "Dimensions": [{"Name": "FunctionName", "Value": "f"}]},
                        "Period": 60,
                        "Stat": "Sum",
                    },
                    "ReturnData": True,
                }
            ],
            "StartTime": T0,
            "EndTime": T0 + 3600,
            "MaxDatapoints": 100,
        },
    ),
    ("s3", "ListBuckets", {}),
    ("s3", "CreateBucket", {"Bucket": "b1", "CreateBucketConfiguration": {"LocationConstraint": "eu-west-1"}}),
    (
        "s3",
        "PutObject",
        {
            "Bucket": "b1",
            "Key": "dir/a b+c.txt",
            "Body": base64.b64encode(b"hello\r\nworld").decode(),
            "ContentType": "text/plain",
            "Metadata": {"owner": "me"},
            "ContentLength": 12,
        },
    ),
    ("s3", "ListObjectsV2", {"Bucket": "b1", "Prefix": "dir/", "Delimiter": "/", "MaxKeys": 10, "ContinuationToken": "t&k"}),
    (
        "s3",
        "DeleteObjects",
        {"Bucket": "b1", "Delete": {"Objects": [{"Key": "a"}, {"Key": "b<&>", "VersionId": "v1"}], "Quiet": True}},
    ),
    ("s3", "PutBucketTagging", {"Bucket": "b1", "Tagging": {"TagSet": [{"Key": "team", "Value": "x"}, {"Key": "env", "Value": "dev"}]}}),
    (
        "s3",
        "PutObjectAcl",
        {
            "Bucket": "b1",
            "Key": "k",
            "AccessControlPolicy": {
                "Grants": [{"Grantee": {"ID": "abc", "Type": "CanonicalUser"}, "Permission": "READ"}],
                "Owner": {"ID": "abc"},
            },
        },
    ),
]

REQUESTS += [
    (
        "ec2",
        "CreateVpc",
        {
            "CidrBlock": "10.0.0.0/16",
            "TagSpecifications": [{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "a&b"}, {"Key": "team", "Value": "x y"}]}],
        },
    ),
    (
        "ec2",
        "DescribeVpcs",
        {"VpcIds": ["vpc-0123456789abcdef0", "vpc-1"], "Filters": [{"Name": "tag:Name", "Values": ["a", "b"]}], "MaxResults": 5},
    ),
    ("ec2", "CreateSubnet", {"VpcId": "vpc-1", "CidrBlock": "10.0.1.0/24", "AvailabilityZone": "us-east-1a"}),
    ("ec2", "CreateSecurityGroup", {"GroupName": "web", "Description": "web tier", "VpcId": "vpc-1"}),
    (
        "ec2",
        "AuthorizeSecurityGroupIngress",
        {
            "GroupId": "sg-1",
            "IpPermissions": [
                {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "inside"}]},
                {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": "sg-2"}]},
            ],
        },
    ),
    ("ec2", "RevokeSecurityGroupEgress", {"GroupId": "sg-1", "IpPermissions": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]}),
    ("ec2", "DeleteSecurityGroup", {"GroupId": "sg-1"}),
]

# (service, operation, status, value, raw payload member or None) for each response case;
# the HTTP is written by the Rust side.
RESPONSES = [
    ("cloudwatch", "PutMetricData", 200, {}),
    (
        "cloudwatch",
        "ListMetrics",
        200,
        {
            "Metrics": [{"Namespace": "AWS/Lambda", "MetricName": "Errors", "Dimensions": [{"Name": "FunctionName", "Value": "f"}]}],
            "NextToken": "n1",
        },
    ),
    (
        "cloudwatch",
        "GetMetricData",
        200,
        {
            "MetricDataResults": [
                {"Id": "m1", "Label": "Invocations", "Timestamps": [T0, T0 + 60], "Values": [3.0, 0.5], "StatusCode": "Complete"}
            ],
            "Messages": [],
        },
    ),
    (
        "s3",
        "ListBuckets",
        200,
        {"Buckets": [{"Name": "b1", "CreationDate": T0}, {"Name": "b2", "CreationDate": T0 + 1}], "Owner": {"DisplayName": "me", "ID": "abc"}},
    ),
    (
        "s3",
        "ListObjectsV2",
        200,
        {
            "IsTruncated": False,
            "Contents": [{"Key": "dir/a&b", "LastModified": T0, "ETag": '"5d41"', "Size": 5, "StorageClass": "STANDARD"}],
            "Name": "b1",
            "Prefix": "dir/",
            "Delimiter": "/",
            "MaxKeys": 1000,
            "CommonPrefixes": [{"Prefix": "dir/sub/"}],
            "KeyCount": 2,
        },
    ),
    (
        "s3",
        "GetObject",
        200,
        {
            "Body": base64.b64encode(b"hello").decode(),
            "ContentLength": 5,
            "ETag": '"5d41"',
            "LastModified": T0,
            "ContentType": "text/plain",
            "Metadata": {"owner": "me"},
        },
    ),
    ("s3", "CopyObject", 200, {"CopyObjectResult": {"ETag": '"5d41"', "LastModified": T0}, "VersionId": "v2"}),
    (
        "s3",
        "GetObjectAcl",
        200,
        {
            "Owner": {"ID": "abc"},
            "Grants": [{"Grantee": {"ID": "abc", "Type": "CanonicalUser"}, "Permission": "FULL_CONTROL"}],
        },
    ),
]

RESPONSES += [
    (
        "ec2",
        "CreateVpc",
        200,
        {
            "Vpc": {
                "OwnerId": "000000000000",
                "InstanceTenancy": "default",
                "Ipv6CidrBlockAssociationSet": [],
                "CidrBlockAssociationSet": [
                    {"AssociationId": "vpc-cidr-assoc-1", "CidrBlock": "10.0.0.0/16", "CidrBlockState": {"State": "associated"}}
                ],
                "IsDefault": False,
                "Tags": [{"Key": "Name", "Value": "a&b"}],
                "VpcId": "vpc-0123456789abcdef0",
                "State": "available",
                "CidrBlock": "10.0.0.0/16",
                "DhcpOptionsId": "default",
            }
        },
    ),
    (
        "ec2",
        "DescribeSecurityGroups",
        200,
        {
            "SecurityGroups": [
                {
                    "GroupId": "sg-1",
                    "IpPermissionsEgress": [
                        {"IpProtocol": "-1", "UserIdGroupPairs": [], "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [], "PrefixListIds": []}
                    ],
                    "Tags": [],
                    "VpcId": "vpc-1",
                    "SecurityGroupArn": "arn:aws:ec2:us-east-1:000000000000:security-group/sg-1",
                    "OwnerId": "000000000000",
                    "GroupName": "web",
                    "Description": "web <tier>",
                    "IpPermissions": [
                        {
                            "IpProtocol": "tcp",
                            "FromPort": 443,
                            "ToPort": 443,
                            "UserIdGroupPairs": [{"UserId": "000000000000", "GroupId": "sg-2"}],
                            "IpRanges": [],
                            "Ipv6Ranges": [],
                            "PrefixListIds": [],
                        }
                    ],
                }
            ]
        },
    ),
    ("ec2", "DeleteVpc", 200, {}),
    ("ec2", "DeleteSecurityGroup", 200, {"Return": True, "GroupId": "sg-1"}),
]

# (service, code, query code, status, message, extra fields, the code botocore reports) for
# each error case; the HTTP is written by the Rust side.
ERRORS = [
    ("cloudwatch", "ResourceNotFoundException", "ResourceNotFoundException", 404, "no such dashboard", {}, "ResourceNotFoundException"),
    ("cloudwatch", "InvalidParameterValueException", "InvalidParameterValue", 400, "bad <value> & more", {}, "InvalidParameterValue"),
    ("s3", "NoSuchKey", "NoSuchKey", 404, "The specified key does not exist.", {"Key": "a&b"}, "NoSuchKey"),
    ("ec2", "InvalidVpcID.NotFound", "InvalidVpcID.NotFound", 400, "The vpc ID 'vpc-1' does not exist", {}, "InvalidVpcID.NotFound"),
    ("ec2", "AuthFailure", "AuthFailure", 401, "AWS was not able to validate the provided access credentials", {}, "AuthFailure"),
]


def model(service: str):
    session = botocore.session.get_session()
    m = session.get_service_model(service)
    return m


def to_botocore(shape, value):
    """Nimbus's JSON form of a value → what botocore's serializer takes."""
    if value is None:
        return None
    t = shape.type_name
    if t == "structure":
        return {k: to_botocore(shape.members[k], v) for k, v in value.items()}
    if t == "list":
        return [to_botocore(shape.member, v) for v in value]
    if t == "map":
        return {k: to_botocore(shape.value, v) for k, v in value.items()}
    if t == "blob":
        return base64.b64decode(value)
    if t == "timestamp":
        return datetime.datetime.fromtimestamp(value, tz=datetime.timezone.utc)
    return value


def from_botocore(shape, value):
    """What botocore's parser returns → Nimbus's JSON form."""
    t = shape.type_name
    if t == "structure":
        return {k: from_botocore(shape.members[k], v) for k, v in value.items() if k in shape.members}
    if t == "list":
        return [from_botocore(shape.member, v) for v in value]
    if t == "map":
        return {k: from_botocore(shape.value, v) for k, v in value.items()}
    if t == "blob":
        if hasattr(value, "read"):
            value = value.read()
        return base64.b64encode(value).decode()
    if t == "timestamp":
        return value.timestamp()
    return value


def serialize_request(service: str, operation: str, value: dict) -> dict:
    m = model(service)
    op = m.operation_model(operation)
    ser = create_serializer(SERVICES[service], include_validation=True)
    req = ser.serialize_to_request(to_botocore(op.input_shape, value) if op.input_shape else {}, op)
    body = req["body"]
    if isinstance(body, dict):  # query-style protocols: form parameters, as botocore sends them
        body = percent_encode_sequence(body)
    if isinstance(body, str):
        body = body.encode()
    elif hasattr(body, "read"):
        body = body.read()
    return {
        "method": req["method"],
        "path": req["url_path"],
        "query": {k: v for k, v in req["query_string"].items()} if isinstance(req["query_string"], dict) else {},
        "headers": {k: v for k, v in req["headers"].items()},
        "body": base64.b64encode(body or b"").decode(),
    }


def parse_response(service: str, operation: str, http: dict) -> dict:
    m = model(service)
    op = m.operation_model(operation)
    parser = create_parser(SERVICES[service])
    body = base64.b64decode(http["body"])
    response = {
        "status_code": http["status"],
        "headers": HeadersDict(http["headers"]),
        "body": io.BytesIO(body) if op.has_streaming_output else body,
    }
    parsed = parser.parse(response, op.output_shape)
    parsed.pop("ResponseMetadata", None)
    return from_botocore(op.output_shape, parsed) if op.output_shape else parsed


def parse_error(service: str, http: dict) -> dict:
    parser = create_parser(SERVICES[service])
    response = {"status_code": http["status"], "headers": HeadersDict(http["headers"]), "body": base64.b64decode(http["body"])}
    return parser.parse(response, None)["Error"]


def sort(v):
    """`v` with every object's keys in order (the Rust side writes them so; botocore writes
    a map's entries in its dict's order)."""
    return json.loads(json.dumps(v, sort_keys=True))


def make() -> None:
    old = json.loads(FIXTURES.read_text()) if FIXTURES.exists() else {"requests": [], "responses": []}
    old_responses = {(r["service"], r["operation"]): r for r in old.get("responses", [])}
    requests = [
        {"service": s, "protocol": SERVICES[s], "operation": op, "value": sort(v), "http": serialize_request(s, op, sort(v))}
        for s, op, v in REQUESTS
    ]
    responses = []
    for s, op, status, v in RESPONSES:
        entry = {"service": s, "protocol": SERVICES[s], "operation": op, "status": status, "value": v}
        prev = old_responses.get((s, op))
        if prev and prev.get("value") == v and "http" in prev:
            entry["http"] = prev["http"]
        responses.append(entry)
    old_errors = {(e["service"], e["code"]): e for e in old.get("errors", [])}
    errors = []
    for s, code, query_code, status, message, fields, parsed_code in ERRORS:
        entry = {
            "service": s,
            "protocol": SERVICES[s],
            "code": code,
            "query_code": query_code,
            "status": status,
            "message": message,
            "fields": fields,
            "parsed_code": parsed_code,
        }
        prev = old_errors.get((s, code))
        if prev and all(prev.get(k) == v for k, v in entry.items()) and "http" in prev:
            entry["http"] = prev["http"]
        errors.append(entry)
    FIXTURES.parent.mkdir(parents=True, exist_ok=True)
    FIXTURES.write_text(json.dumps({"requests": requests, "responses": responses, "errors": errors}, indent=1, sort_keys=True) + "\n")
    print(f"{FIXTURES}: {len(requests)} requests, {len(responses)} responses")


if __name__ == "__main__":
    if sys.argv[1:] != ["make"]:
        sys.exit(__doc__)
    make()

"""Requests signed by botocore (the signer the aws CLI and boto3 use), for the Rust SigV4
verifier's tests: `crates/nimbus-identity/fixtures/botocore-signed.json`. Each case is the
request exactly as it goes on the wire (raw path and query, headers, body), the secret, and
the instant it was signed at.

    .venv/bin/python tests/e2e/sigv4_fixtures.py make
"""

from __future__ import annotations

import base64
import datetime
import json
import sys
import urllib.parse
from pathlib import Path
from unittest import mock

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "crates" / "nimbus-identity" / "fixtures" / "botocore-signed.json"
NOW = datetime.datetime(2026, 12, 3, 11, 0, 0, tzinfo=datetime.timezone.utc)
KEY, SECRET = "AKIDNIMBUSEXAMPLE", "nimbus/secret+key=example"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLETOKEN//+="

# (name, signer, service, method, url, headers, body, credentials token)
CASES = [
    ("lambda list", "v4", "lambda", "GET", "http://127.0.0.1:9001/2015-03-31/functions/?MaxItems=10&Marker=a%2Fb", {}, b"", None),
    ("lambda invoke, odd path", "v4", "lambda", "POST",
     "http://127.0.0.1:9001/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Af/invocations?Qualifier=%24LATEST",
     {"X-Amz-Invocation-Type": "RequestResponse", "X-Amz-Client-Context": "eyJhIjogMX0="}, b'{"k": "v"}', None),
    ("dot segments and double slashes", "v4", "lambda", "GET", "http://127.0.0.1:9001/2015-03-31//functions/./x/../f", {}, b"", None),
    ("query protocol form", "v4", "sqs", "POST", "http://127.0.0.1:9001/",
     {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
     b"Action=SendMessage&QueueUrl=http%3A%2F%2F127.0.0.1%3A9001%2F000000000000%2Fq&MessageBody=hello+world%21", None),
    ("json 1.0 with a session token", "v4", "sqs", "POST", "http://127.0.0.1:9001/",
     {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.ListQueues"}, b"{}", TOKEN),
    ("repeated and unicode query keys, spaces in headers", "v4", "lambda", "GET",
     "http://127.0.0.1:9001/2015-03-31/functions/f/aliases?b=2&a=%E2%82%AC&a=1&empty=&c=x%20y",
     {"X-Custom": "  lots   of   space  ", "X-Multi": "one"}, b"", None),
    ("presigned", "query", "lambda", "GET", "http://127.0.0.1:9001/2015-03-31/functions/f?Qualifier=1", {}, b"", TOKEN),
    ("s3 path as sent, unsigned payload", "s3", "s3", "PUT", "http://127.0.0.1:9001/bucket/a%20b/c%2Bd/../e.txt",
     {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD", "Content-Type": "text/plain"}, b"object bytes", None),
    ("s3 signed payload", "s3", "s3", "PUT", "http://127.0.0.1:9001/bucket/key", {}, b"signed object bytes", None),
    ("s3 presigned", "s3query", "s3", "GET", "http://127.0.0.1:9001/bucket/some%20key.txt?versionId=3", {}, b"", None),
]


def sign(signer: str, service: str, method: str, url: str, headers: dict, body: bytes, token: str | None) -> AWSRequest:
    creds = Credentials(KEY, SECRET, token)
    req = AWSRequest(method=method, url=url, data=body, headers=headers)
    auth = {
        "v4": lambda: botocore.auth.SigV4Auth(creds, service, "us-east-1"),
        "query": lambda: botocore.auth.SigV4QueryAuth(creds, service, "us-east-1", expires=900),
        "s3": lambda: botocore.auth.S3SigV4Auth(creds, service, "us-east-1"),
        "s3query": lambda: botocore.auth.S3SigV4QueryAuth(creds, service, "us-east-1", expires=900),
    }[signer]()
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        auth.add_auth(req)
    return req


def make() -> None:
    cases = []
    for name, signer, service, method, url, headers, body, token in CASES:
        req = sign(signer, service, method, url, dict(headers), body, token)
        u = urllib.parse.urlsplit(req.url)
        wire_headers = [[k, v] for k, v in req.headers.items()]
        wire_headers.append(["Host", u.netloc])
        cases.append({
            "name": name,
            "style": "s3" if signer.startswith("s3") else "normalized",
            "method": method,
            "path": u.path,
            "query": u.query or None,
            "headers": wire_headers,
            "body": base64.b64encode(body).decode(),
            "secret": SECRET,
            "now": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"),
        })
    FIXTURES.parent.mkdir(parents=True, exist_ok=True)
    FIXTURES.write_text(json.dumps(cases, indent=1) + "\n")
    print(f"{FIXTURES}: {len(cases)} signed requests")


if __name__ == "__main__":
    if sys.argv[1:] != ["make"]:
        sys.exit(__doc__)
    make()

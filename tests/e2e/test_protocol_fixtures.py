"""botocore parses what Nimbus's encoders write for the protocols no other test drives
through botocore's own parser (RPC v2 CBOR, rest-xml, ec2): the responses and errors in
crates/nimbus-protocol/fixtures/botocore.json, which the Rust test proves the encoders write
byte for byte (see protocol_fixtures.py)."""

import json

import pytest

from protocol_fixtures import FIXTURES, parse_error, parse_response, serialize_request

CASES = json.loads(FIXTURES.read_text())


@pytest.mark.parametrize("case", CASES["responses"], ids=lambda c: f"{c['service']}-{c['operation']}")
def test_botocore_parses_our_outputs(case):
    assert "http" in case, "run NIMBUS_BLESS=1 cargo test -p nimbus-protocol botocore_fixtures"
    parsed = parse_response(case["service"], case["operation"], case["http"])
    assert parsed == case["value"]


@pytest.mark.parametrize("case", CASES["errors"], ids=lambda c: f"{c['service']}-{c['code']}")
def test_botocore_parses_our_errors(case):
    error = parse_error(case["service"], case["http"])
    assert error["Code"] == case["parsed_code"]
    assert error["Message"] == case["message"]
    for k, v in case["fields"].items():
        assert error.get(k) == v


@pytest.mark.parametrize("case", CASES["requests"], ids=lambda c: f"{c['service']}-{c['operation']}")
def test_request_fixtures_are_what_botocore_sends_today(case):
    """The Rust test decodes these; they must still be what this botocore writes."""
    assert serialize_request(case["service"], case["operation"], case["value"]) == case["http"]

//! The botocore fixtures (`fixtures/botocore.json`, see `tests/e2e/protocol_fixtures.py`):
//! requests botocore serialized must decode to their values; outputs and errors must encode
//! to exactly the HTTP that botocore was checked to parse back. `NIMBUS_BLESS=1` rewrites the
//! stored HTTP of the outputs and errors from what the encoders write now.

use std::collections::BTreeMap;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::rest::{query_pairs, HttpRequest, Router};
use crate::{cbor, decode, encode, AwsError, Protocol, Service, CLOUDWATCH, EC2, S3};

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/botocore.json");

#[derive(Deserialize)]
struct Http {
    method: String,
    path: String,
    query: BTreeMap<String, Value>,
    headers: BTreeMap<String, String>,
    body: String,
}

#[derive(Deserialize)]
struct RequestCase {
    service: String,
    operation: String,
    value: Value,
    http: Http,
}

fn service(name: &str) -> (&'static Service, Protocol) {
    match name {
        "cloudwatch" => (&CLOUDWATCH, Protocol::RpcV2Cbor),
        "s3" => (&S3, Protocol::RestXml),
        "ec2" => (&EC2, Protocol::Ec2),
        other => panic!("no fixtures service {other}"),
    }
}

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(s).expect("fixture base64")
}

/// JSON equality with numbers compared by value (botocore writes `1.0` where we hold `1`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b)),
        (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w))),
        _ => a == b,
    }
}

#[test]
fn botocore_requests_decode_to_their_values() {
    let file: Value = serde_json::from_str(include_str!("../fixtures/botocore.json")).expect("fixtures parse");
    let cases: Vec<RequestCase> = serde_json::from_value(file["requests"].clone()).expect("request cases");
    assert!(cases.len() >= 10);
    for case in cases {
        let (svc, protocol) = service(&case.service);
        let model = svc.model();
        let body = Bytes::from(b64(&case.http.body));
        let label = format!("{} {}", case.service, case.operation);
        let (decoded, payload) = match protocol {
            Protocol::RpcV2Cbor => {
                assert_eq!(case.http.headers.get(cbor::PROTOCOL_HEADER.0).map(String::as_str), Some(cbor::PROTOCOL_HEADER.1));
                let (_, op) = cbor::route(&case.http.path).expect("an RPC v2 path");
                assert_eq!(op, case.operation);
                let input = decode::cbor(model, op, &body).unwrap_or_else(|e| panic!("{label}: {e}"));
                input.parse_with_payload::<Value>().expect("parses")
            }
            Protocol::Ec2 => {
                assert_eq!((case.http.method.as_str(), case.http.path.as_str()), ("POST", "/"), "{label}");
                let params = query_pairs(Some(std::str::from_utf8(&body).expect("a form body")));
                let action = params.iter().find(|(k, _)| k == "Action").map(|(_, v)| v.as_str());
                assert_eq!(action, Some(case.operation.as_str()), "{label}");
                let input = decode::ec2(model, &case.operation, &params).unwrap_or_else(|e| panic!("{label}: {e}"));
                input.parse_with_payload::<Value>().expect("parses")
            }
            _ => {
                let (path, literal) = case.http.path.split_once('?').unwrap_or((&case.http.path, ""));
                let mut query = query_pairs(Some(literal));
                let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
                for (k, v) in &case.http.query {
                    match v {
                        Value::Array(items) => query.extend(items.iter().map(|i| (k.clone(), text(i)))),
                        v => query.push((k.clone(), text(v))),
                    }
                }
                let mut headers = HeaderMap::new();
                for (k, v) in &case.http.headers {
                    headers.insert(HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
                }
                let router = Router::new(model);
                let method = Method::from_bytes(case.http.method.as_bytes()).unwrap();
                let matched = router.find_with_headers(&method, path, &query, &headers).unwrap_or_else(|| panic!("{label}: no route"));
                assert_eq!(matched.operation, case.operation);
                let input = crate::rest::rest_xml(model, &matched, &HttpRequest { headers: &headers, query: &query, body: &body })
                    .unwrap_or_else(|e| panic!("{label}: {e}"));
                input.parse_with_payload::<Value>().expect("parses")
            }
        };
        // A raw blob payload travels beside the value.
        let mut want = case.value.clone();
        let input_shape = model.operation(&case.operation).and_then(|o| o.input.as_ref()).map(|r| model.shape(r));
        if let Some(p) = input_shape
            .and_then(|s| s.payload.as_deref())
            .filter(|p| input_shape.and_then(|s| s.member(p)).is_some_and(|m| model.shape(m).kind == crate::model::ShapeType::Blob))
        {
            let expected = want.as_object_mut().and_then(|o| o.remove(p)).map(|v| b64(v.as_str().unwrap())).unwrap_or_default();
            assert_eq!(payload.as_ref(), expected.as_slice(), "{label}: payload");
        }
        assert!(same(&decoded, &want), "{label}:\n got  {decoded}\n want {want}");
    }
}

/// A response as the fixtures store it.
fn http_json(r: &Response<Bytes>) -> Value {
    let headers: BTreeMap<String, String> =
        r.headers().iter().map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or_default().to_string())).collect();
    json!({
        "status": r.status().as_u16(),
        "headers": headers,
        "body": base64::engine::general_purpose::STANDARD.encode(r.body()),
    })
}

/// Encodes a typed output (in its JSON form) as the service's protocol does.
fn encode_output(svc: &Service, protocol: Protocol, operation: &str, value: &Value) -> Response<Bytes> {
    let model = svc.model();
    let out_shape = model.operation(operation).and_then(|o| o.output.as_ref()).map(|r| model.shape(r));
    let blob_payload = out_shape.and_then(|s| {
        let p = s.payload.as_deref()?;
        (model.shape(s.member(p)?).kind == crate::model::ShapeType::Blob).then_some(p)
    });
    match (protocol, blob_payload) {
        (Protocol::RestXml, Some(p)) => {
            let mut rest = value.clone();
            let bytes = rest.as_object_mut().and_then(|o| o.remove(p)).map(|v| b64(v.as_str().unwrap())).unwrap_or_default();
            encode::rest_xml(svc, operation, &rest, Some((Bytes::from(bytes), "application/octet-stream")), "req-1")
        }
        _ => encode::output(svc, protocol, operation, value, "req-1"),
    }
}

struct FixtureError {
    code: String,
    query_code: String,
    status: u16,
    message: String,
    fields: Vec<(&'static str, String)>,
}

impl std::fmt::Display for FixtureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl AwsError for FixtureError {
    fn code(&self) -> &str {
        &self.code
    }
    fn query_code(&self) -> &str {
        &self.query_code
    }
    fn status(&self) -> u16 {
        self.status
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        self.fields.clone()
    }
}

#[test]
fn botocore_fixtures_outputs_and_errors_encode_to_the_checked_http() {
    let mut file: Value = serde_json::from_str(include_str!("../fixtures/botocore.json")).expect("fixtures parse");
    let bless = std::env::var_os("NIMBUS_BLESS").is_some();
    let mut mismatches = Vec::new();
    for case in file["responses"].as_array_mut().expect("responses") {
        let (svc, protocol) = service(case["service"].as_str().unwrap());
        let op = case["operation"].as_str().unwrap().to_string();
        let got = http_json(&encode_output(svc, protocol, &op, &case["value"]));
        if case.get("http") != Some(&got) {
            mismatches.push(format!("{} {op}: wrote {got}", case["service"]));
            case["http"] = got;
        }
    }
    for case in file["errors"].as_array_mut().expect("errors") {
        let (svc, protocol) = service(case["service"].as_str().unwrap());
        let fields = case["fields"]
            .as_object()
            .map(|o| o.iter().map(|(k, v)| (&*k.clone().leak(), v.as_str().unwrap().to_string())).collect())
            .unwrap_or_default();
        let e = FixtureError {
            code: case["code"].as_str().unwrap().into(),
            query_code: case["query_code"].as_str().unwrap().into(),
            status: case["status"].as_u64().unwrap() as u16,
            message: case["message"].as_str().unwrap().into(),
            fields,
        };
        let got = http_json(&encode::error(svc, protocol, &e, "req-1"));
        if case.get("http") != Some(&got) {
            mismatches.push(format!("{} {}: wrote {got}", case["service"], e.code));
            case["http"] = got;
        }
    }
    if bless {
        let mut out = Vec::new();
        let mut ser = serde_json::Serializer::with_formatter(&mut out, serde_json::ser::PrettyFormatter::with_indent(b" "));
        serde::Serialize::serialize(&file, &mut ser).unwrap();
        out.push(b'\n');
        std::fs::write(PATH, out).unwrap();
    } else {
        assert!(
            mismatches.is_empty(),
            "encoders differ from the botocore-checked fixtures (NIMBUS_BLESS=1 rewrites them; then run tests/e2e/test_protocol_fixtures.py):\n{}",
            mismatches.join("\n")
        );
    }
}

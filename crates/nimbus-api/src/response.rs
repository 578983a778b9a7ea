//! Plain HTTP answers: what function URLs, HTTP APIs and Nimbus's own endpoints send (AWS
//! services answer through `nimbus-protocol`).

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;

pub type Body = Full<Bytes>;

pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    raw(status, "application/json", Bytes::from(serde_json::to_vec(value).expect("JSON values serialize")))
}

pub fn raw(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r.headers_mut().insert("content-type", HeaderValue::from_static(content_type));
    r
}

pub fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}

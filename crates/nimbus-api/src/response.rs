//! Building responses, and the one mapping from [`ApiError`] to AWS's error shapes.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
use nimbus_model::ApiError;

pub type Body = Full<Bytes>;

/// Which error shape the caller's protocol expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Lambda: `x-amzn-ErrorType` header and `{"Type","message"}`.
    RestJson,
    /// CloudWatch Logs: `{"__type","message"}`, status 400.
    AwsJson,
}

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

pub fn error(e: &ApiError, protocol: Protocol) -> Response<Body> {
    let name = e.code.name();
    match protocol {
        Protocol::RestJson => {
            let status = StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::BAD_REQUEST);
            let mut body = serde_json::json!({ "Type": e.code.fault(), "message": e.message });
            if let Some(reason) = e.reason {
                body["Reason"] = serde_json::Value::String(reason.to_string());
            }
            let mut r = json(status, &body);
            r.headers_mut().insert("x-amzn-errortype", HeaderValue::from_static(name));
            r
        }
        Protocol::AwsJson => {
            let status = if e.code.status() >= 500 { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::BAD_REQUEST };
            let mut r = json(status, &serde_json::json!({ "__type": name, "message": e.message }));
            r.headers_mut().insert("content-type", HeaderValue::from_static("application/x-amz-json-1.1"));
            r
        }
    }
}

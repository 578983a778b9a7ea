//! Function URLs on the wire: recognising a URL request (by host name
//! `<url-id>.<url domain>` or by path `/_aws/lambda-url/<url-id>/…`), turning it into AWS's
//! payload format 2.0 event, and mapping the function's result back to HTTP exactly as AWS
//! does, with the URL's CORS rules.

use std::collections::BTreeMap;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use nimbus_model::url::{AuthType, Cors, FunctionUrlConfig};
use nimbus_model::{ErrorCode, FunctionRef, InvokeRequest, Qualifier};
use serde_json::{json, Map, Value};

use crate::response::{self, Body};
use crate::server::AppState;

/// Largest request body a URL accepts (the synchronous payload limit).
const MAX_URL_BODY: usize = 6 * 1024 * 1024;

/// A request addressed to a function URL.
#[derive(Debug)]
pub struct UrlRequest {
    pub url_id: String,
    pub method: Method,
    /// The path as the function sees it (without any `/_aws/lambda-url/<id>` prefix).
    pub raw_path: String,
    pub raw_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub source_ip: String,
}

/// Recognises a function URL request; returns (url id, path for the function).
pub fn match_url<'a>(host: Option<&str>, path: &'a str, url_domain: &str) -> Option<(String, String)> {
    if let Some(rest) = path.strip_prefix("/_aws/lambda-url/") {
        let (id, tail) = rest.split_once('/').map(|(i, t)| (i, format!("/{t}"))).unwrap_or((rest, "/".to_string()));
        return nimbus_model::url::is_url_id(id).then(|| (id.to_string(), tail));
    }
    let host = host?.split(':').next()?;
    let id = host.strip_suffix(url_domain)?.strip_suffix('.')?;
    nimbus_model::url::is_url_id(id).then(|| (id.to_string(), path.to_string()))
}

fn message(status: StatusCode, text: &str) -> Response<Body> {
    response::json(status, &json!({ "Message": text }))
}

fn is_text(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else { return true };
    let ct = ct.to_ascii_lowercase();
    ct.starts_with("text/")
        || ct.contains("json")
        || ct.contains("xml")
        || ct.contains("javascript")
        || ct.starts_with("application/x-www-form-urlencoded")
}

/// AWS's payload format 2.0 event for a URL request.
pub fn event(state: &AppState, req: &UrlRequest, request_id: &str) -> Value {
    let mut headers = Map::new();
    let mut cookies = Vec::new();
    for (name, value) in &req.headers {
        let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == "cookie" {
            cookies.extend(v.split(';').map(|c| c.trim().to_string()).filter(|c| !c.is_empty()));
            continue;
        }
        match headers.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&v);
            }
            _ => {
                headers.insert(name.as_str().to_string(), Value::String(v));
            }
        }
    }
    let mut query: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in crate::action::form_pairs(&req.raw_query) {
        query.entry(k).and_modify(|e| {
            e.push(',');
            e.push_str(&v);
        }).or_insert(v);
    }
    let now = chrono::Utc::now();
    let user_agent = req.headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or("");
    let mut ev = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": req.raw_path,
        "rawQueryString": req.raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": req.url_id,
            "domainName": format!("{}.{}", req.url_id, state.url_domain),
            "domainPrefix": req.url_id,
            "http": {
                "method": req.method.as_str(),
                "path": req.raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": req.source_ip,
                "userAgent": user_agent,
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "isBase64Encoded": false,
    });
    if !cookies.is_empty() {
        ev["cookies"] = json!(cookies);
    }
    if !query.is_empty() {
        ev["queryStringParameters"] = json!(query);
    }
    if !req.body.is_empty() {
        let ct = req.headers.get("content-type").and_then(|v| v.to_str().ok());
        match std::str::from_utf8(&req.body) {
            Ok(text) if is_text(ct) => ev["body"] = json!(text),
            _ => {
                ev["body"] = json!(base64::engine::general_purpose::STANDARD.encode(&req.body));
                ev["isBase64Encoded"] = json!(true);
            }
        }
    }
    ev
}

/// Maps a function's result to HTTP as AWS's function URLs do. None: malformed (502).
pub fn map_result(payload: &[u8]) -> Option<Response<Body>> {
    let value: Value = serde_json::from_slice(payload).ok()?;
    let Some(obj) = value.as_object().filter(|o| o.contains_key("statusCode")) else {
        // Valid JSON without a status code: 200, the JSON as the body.
        return Some(response::raw(StatusCode::OK, "application/json", Bytes::copy_from_slice(payload)));
    };
    let status = obj.get("statusCode").and_then(Value::as_u64).and_then(|s| StatusCode::from_u16(s as u16).ok())?;
    let body = match obj.get("body") {
        None | Some(Value::Null) => Bytes::new(),
        Some(Value::String(s)) if obj.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) => {
            Bytes::from(base64::engine::general_purpose::STANDARD.decode(s).ok()?)
        }
        Some(Value::String(s)) => Bytes::from(s.clone()),
        Some(other) => Bytes::from(other.to_string()),
    };
    let mut r = response::raw(status, "application/json", body);
    if let Some(Value::Object(headers)) = obj.get("headers") {
        for (k, v) in headers {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let (Ok(name), Ok(val)) = (http::HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(&text)) else {
                return None;
            };
            r.headers_mut().insert(name, val);
        }
    }
    if let Some(Value::Array(cookies)) = obj.get("cookies") {
        for c in cookies.iter().filter_map(Value::as_str) {
            r.headers_mut().append("set-cookie", HeaderValue::from_str(c).ok()?);
        }
    }
    Some(r)
}

fn cors_headers(cors: &Cors, origin: &str, r: &mut Response<Body>, preflight: bool) {
    let h = r.headers_mut();
    let allow_origin = if cors.allow_origins.iter().any(|o| o == "*") && !cors.allow_credentials { "*" } else { origin };
    if let Ok(v) = HeaderValue::from_str(allow_origin) {
        h.insert("access-control-allow-origin", v);
    }
    if cors.allow_credentials {
        h.insert("access-control-allow-credentials", HeaderValue::from_static("true"));
    }
    if preflight {
        if let Ok(v) = HeaderValue::from_str(&cors.allow_methods.join(",")) {
            h.insert("access-control-allow-methods", v);
        }
        if !cors.allow_headers.is_empty() {
            if let Ok(v) = HeaderValue::from_str(&cors.allow_headers.join(",")) {
                h.insert("access-control-allow-headers", v);
            }
        }
        if let Some(age) = cors.max_age {
            h.insert("access-control-max-age", HeaderValue::from(age));
        }
    } else if !cors.expose_headers.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&cors.expose_headers.join(",")) {
            h.insert("access-control-expose-headers", v);
        }
    }
}

/// A well-formed SigV4 Authorization header (checking the signature itself comes with the
/// IAM issue).
fn has_sigv4(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()).is_some_and(|a| {
        a.starts_with("AWS4-HMAC-SHA256 ") && a.contains("Credential=") && a.contains("SignedHeaders=") && a.contains("Signature=")
    })
}

/// Serves one URL request end to end.
pub async fn serve(state: &AppState, req: UrlRequest) -> Response<Body> {
    let config: std::sync::Arc<FunctionUrlConfig> = match state.control.url_by_id(&req.url_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return message(StatusCode::NOT_FOUND, "Not Found"),
        Err(e) => return message(StatusCode::INTERNAL_SERVER_ERROR, &e.message),
    };
    if req.body.len() > MAX_URL_BODY {
        return message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
    }
    let origin = req.headers.get("origin").and_then(|v| v.to_str().ok()).map(str::to_string);
    let cors = config.cors.as_ref();
    // CORS preflight is answered here, without invoking the function.
    if req.method == Method::OPTIONS && origin.is_some() && req.headers.contains_key("access-control-request-method") {
        if let (Some(cors), Some(origin)) = (cors, origin.as_deref()) {
            let method = req.headers.get("access-control-request-method").and_then(|v| v.to_str().ok()).unwrap_or("");
            let mut r = response::empty(StatusCode::OK);
            if cors.allows_origin(origin) && cors.allows_method(method) {
                cors_headers(cors, origin, &mut r, true);
            }
            return r;
        }
    }
    if config.auth_type == AuthType::AwsIam && !has_sigv4(&req.headers) {
        return message(StatusCode::FORBIDDEN, "Forbidden");
    }
    let request_id = uuid::Uuid::new_v4().to_string();
    let ev = event(state, &req, &request_id);
    let qualifier = config.qualifier.as_deref().and_then(|q| Qualifier::parse(q).ok());
    let invoke = InvokeRequest {
        function: FunctionRef { name: config.function.clone(), qualifier },
        payload: Bytes::from(ev.to_string()),
        tail_log: false,
        client_context: None,
        request_id: Some(request_id.clone()),
    };
    let mut r = match state.invoker.invoke(invoke).await {
        Ok(o) if o.function_error.is_none() => {
            map_result(&o.payload).unwrap_or_else(|| message(StatusCode::BAD_GATEWAY, "Internal Server Error"))
        }
        Ok(_) => message(StatusCode::BAD_GATEWAY, "Internal Server Error"),
        Err(e) if e.code == ErrorCode::TooManyRequests => message(StatusCode::TOO_MANY_REQUESTS, "Rate Exceeded."),
        Err(e) if e.code == ErrorCode::ResourceNotFound => message(StatusCode::NOT_FOUND, "Not Found"),
        Err(_) => message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
    };
    if let (Some(cors), Some(origin)) = (cors, origin.as_deref()) {
        if cors.allows_origin(origin) {
            cors_headers(cors, origin, &mut r, false);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        r.headers_mut().insert("x-amzn-requestid", v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching() {
        let id = "abcdefghijklmnopqrstuvwxyz012345";
        let d = "lambda-url.us-east-1.localhost";
        assert_eq!(match_url(Some(&format!("{id}.{d}:9001")), "/x", d), Some((id.to_string(), "/x".into())));
        assert_eq!(match_url(None, &format!("/_aws/lambda-url/{id}/a/b"), d), Some((id.to_string(), "/a/b".into())));
        assert_eq!(match_url(None, &format!("/_aws/lambda-url/{id}"), d), Some((id.to_string(), "/".into())));
        assert_eq!(match_url(Some("127.0.0.1:9001"), "/2015-03-31/functions", d), None);
        assert_eq!(match_url(Some(&format!("short.{d}")), "/", d), None);
    }

    #[test]
    fn results() {
        let r = map_result(br#"{"statusCode":201,"headers":{"x-a":"1"},"body":"hi","cookies":["a=1","b=2"]}"#).unwrap();
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers().get_all("set-cookie").iter().count(), 2);
        let r = map_result(br#"{"hello":"world"}"#).unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/json");
        assert!(map_result(br#"{"statusCode":"x"}"#).is_none());
        assert!(map_result(b"not json").is_none());
        let r = map_result(br#"{"statusCode":200,"body":"aGk=","isBase64Encoded":true}"#).unwrap();
        assert_eq!(r.status(), 200);
    }
}

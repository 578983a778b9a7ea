//! HTTP requests as Lambda events, and Lambda results as HTTP responses, for every HTTP front
//! of a function: API Gateway's payload format 1.0 and 2.0 (2.0 is also what function URLs
//! send), and Application Load Balancer target events (a Nimbus extension on routes and URLs).
//! Function URLs and API routes share this one module, so a header, query string, cookie or
//! body is turned into an event, and a result into a response, the same way everywhere.
//!
//! Shapes: AWS's developer guides ("Create AWS Lambda proxy integrations for HTTP APIs",
//! "Lambda functions as targets" for ALB, "Lambda function URLs: invoking") and the
//! `aws_lambda_events` crate's `ApiGatewayProxyRequest`, `ApiGatewayV2httpRequest` and
//! `AlbTargetGroupRequest`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

/// One HTTP request as the function's event describes it.
pub struct HttpRequest<'a> {
    pub method: &'a str,
    /// The path as the function sees it (for a named stage, with the stage in front).
    pub path: &'a str,
    /// The query string as sent, without `?`.
    pub raw_query: &'a str,
    /// The query string's pairs, decoded, in order.
    pub query: &'a [(String, String)],
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub source_ip: &'a str,
}

/// What API Gateway (or a function URL) adds to the request: who serves it, and which route.
pub struct Context<'a> {
    pub account_id: &'a str,
    pub api_id: &'a str,
    pub domain_name: &'a str,
    pub domain_prefix: &'a str,
    pub stage: &'a str,
    pub route_key: &'a str,
    /// The route's path (`/items/{id}`) or `$default`.
    pub resource: &'a str,
    /// None for function URLs, which have no such fields.
    pub path_parameters: Option<&'a BTreeMap<String, String>>,
    pub stage_variables: Option<&'a BTreeMap<String, String>>,
    pub request_id: &'a str,
    pub now: chrono::DateTime<chrono::Utc>,
}

/// Whether a body of this content type is passed as text (else base64), as API Gateway and
/// function URLs decide it.
fn is_text(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else { return true };
    let ct = ct.to_ascii_lowercase();
    ct.starts_with("text/")
        || ct.contains("json")
        || ct.contains("xml")
        || ct.contains("javascript")
        || ct.starts_with("application/x-www-form-urlencoded")
}

/// The event's `body` and `isBase64Encoded`: None for an empty body.
fn body_field<'a>(req: &HttpRequest<'a>) -> (Option<Cow<'a, str>>, bool) {
    if req.body.is_empty() {
        return (None, false);
    }
    let ct = req.headers.get("content-type").and_then(|v| v.to_str().ok());
    match std::str::from_utf8(req.body) {
        Ok(text) if is_text(ct) => (Some(Cow::Borrowed(text)), false),
        _ => (Some(Cow::Owned(base64::engine::general_purpose::STANDARD.encode(req.body))), true),
    }
}

fn header_text(v: &HeaderValue) -> String {
    String::from_utf8_lossy(v.as_bytes()).into_owned()
}

/// Each header name (lower case) with all its values, in order.
fn multi_headers(headers: &HeaderMap) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        out.entry(name.as_str().to_string()).or_default().push(header_text(value));
    }
    out
}

fn multi_pairs<'p>(pairs: impl Iterator<Item = (&'p str, &'p str)>) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in pairs {
        out.entry(k.to_string()).or_default().push(v.to_string());
    }
    out
}

fn last_values(m: &BTreeMap<String, Vec<String>>) -> BTreeMap<String, String> {
    m.iter().filter_map(|(k, vs)| Some((k.clone(), vs.last()?.clone()))).collect()
}

/// `null` for an empty map, as payload 1.0 and ALB events have it.
fn user_agent<'a>(req: &'a HttpRequest<'_>) -> &'a str {
    req.headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// API Gateway's `requestTime` / v2 `time` format (`27/Nov/2026:17:05:09 +0000`), written
/// without a format-string parse on every request.
fn request_time(now: chrono::DateTime<chrono::Utc>) -> String {
    use chrono::{Datelike, Timelike};
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!(
        "{:02}/{}/{}:{:02}:{:02}:{:02} +0000",
        now.day(),
        MONTHS[now.month0() as usize],
        now.year(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

/// Payload format 2.0's event, written straight to JSON from borrowed parts: it is built
/// for every request to a function URL or an HTTP API route, so it allocates only where a
/// value must be joined or encoded.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct V2Event<'a> {
    version: &'static str,
    route_key: &'a str,
    raw_path: &'a str,
    raw_query_string: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cookies: Vec<&'a str>,
    headers: BTreeMap<&'a str, Cow<'a, str>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    query_string_parameters: BTreeMap<&'a str, Cow<'a, str>>,
    request_context: V2Context<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path_parameters: Option<&'a BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stage_variables: Option<&'a BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<Cow<'a, str>>,
    is_base64_encoded: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct V2Context<'a> {
    account_id: &'a str,
    api_id: &'a str,
    domain_name: &'a str,
    domain_prefix: &'a str,
    http: V2Http<'a>,
    request_id: &'a str,
    route_key: &'a str,
    stage: &'a str,
    time: String,
    time_epoch: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct V2Http<'a> {
    method: &'a str,
    path: &'a str,
    protocol: &'static str,
    source_ip: &'a str,
    user_agent: &'a str,
}

/// Adds `value` under `key`, joining repeated keys with commas (2.0's rule for headers and
/// query strings).
fn join_into<'a>(map: &mut BTreeMap<&'a str, Cow<'a, str>>, key: &'a str, value: Cow<'a, str>) {
    match map.entry(key) {
        std::collections::btree_map::Entry::Vacant(e) => {
            e.insert(value);
        }
        std::collections::btree_map::Entry::Occupied(mut e) => {
            let joined = e.get_mut().to_mut();
            joined.push(',');
            joined.push_str(&value);
        }
    }
}

/// Payload format 2.0: headers joined with commas (cookies apart), query values joined with
/// commas, `pathParameters`/`stageVariables` only when there are some. Returns the JSON.
pub fn v2_event(req: &HttpRequest<'_>, ctx: &Context<'_>) -> Bytes {
    let mut headers: BTreeMap<&str, Cow<'_, str>> = BTreeMap::new();
    let mut cookies = Vec::new();
    for (name, value) in req.headers {
        if name == "cookie" {
            if let Ok(text) = value.to_str() {
                cookies.extend(text.split(';').map(str::trim).filter(|c| !c.is_empty()));
            }
            continue;
        }
        join_into(&mut headers, name.as_str(), String::from_utf8_lossy(value.as_bytes()));
    }
    let mut query = BTreeMap::new();
    for (k, v) in req.query {
        join_into(&mut query, k.as_str(), Cow::Borrowed(v.as_str()));
    }
    let (body, is_base64_encoded) = match body_field(req) {
        (Some(b), b64) => (Some(b), b64),
        (None, _) => (None, false),
    };
    let ev = V2Event {
        version: "2.0",
        route_key: ctx.route_key,
        raw_path: req.path,
        raw_query_string: req.raw_query,
        cookies,
        headers,
        query_string_parameters: query,
        request_context: V2Context {
            account_id: ctx.account_id,
            api_id: ctx.api_id,
            domain_name: ctx.domain_name,
            domain_prefix: ctx.domain_prefix,
            http: V2Http {
                method: req.method,
                path: req.path,
                protocol: "HTTP/1.1",
                source_ip: req.source_ip,
                user_agent: user_agent(req),
            },
            request_id: ctx.request_id,
            route_key: ctx.route_key,
            stage: ctx.stage,
            time: request_time(ctx.now),
            time_epoch: ctx.now.timestamp_millis(),
        },
        path_parameters: ctx.path_parameters.filter(|p| !p.is_empty()),
        stage_variables: ctx.stage_variables.filter(|s| !s.is_empty()),
        body,
        is_base64_encoded,
    };
    Bytes::from(serde_json::to_vec(&ev).expect("an event of strings serializes"))
}

/// Payload format 1.0 (the REST API proxy event), members in AWS's order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct V1Event<'a> {
    version: &'static str,
    resource: &'a str,
    path: &'a str,
    http_method: &'a str,
    /// Empty maps are `null`, as AWS sends them.
    headers: Option<BTreeMap<String, String>>,
    multi_value_headers: Option<&'a BTreeMap<String, Vec<String>>>,
    query_string_parameters: Option<BTreeMap<String, String>>,
    multi_value_query_string_parameters: Option<&'a BTreeMap<String, Vec<String>>>,
    request_context: V1Context<'a>,
    path_parameters: Option<&'a BTreeMap<String, String>>,
    stage_variables: Option<&'a BTreeMap<String, String>>,
    body: Option<Cow<'a, str>>,
    is_base64_encoded: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct V1Context<'a> {
    account_id: &'a str,
    api_id: &'a str,
    domain_name: &'a str,
    domain_prefix: &'a str,
    extended_request_id: &'a str,
    http_method: &'a str,
    identity: V1Identity<'a>,
    path: &'a str,
    protocol: &'static str,
    request_id: &'a str,
    request_time: String,
    request_time_epoch: i64,
    resource_id: &'a str,
    resource_path: &'a str,
    stage: &'a str,
}

/// The caller's identity; only the source address and user agent are known without IAM.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct V1Identity<'a> {
    access_key: Option<&'a str>,
    account_id: Option<&'a str>,
    caller: Option<&'a str>,
    cognito_amr: Option<&'a str>,
    cognito_authentication_provider: Option<&'a str>,
    cognito_authentication_type: Option<&'a str>,
    cognito_identity_id: Option<&'a str>,
    cognito_identity_pool_id: Option<&'a str>,
    principal_org_id: Option<&'a str>,
    source_ip: &'a str,
    user: Option<&'a str>,
    user_agent: &'a str,
    user_arn: Option<&'a str>,
}

fn non_empty<K, V>(m: &BTreeMap<K, V>) -> Option<&BTreeMap<K, V>> {
    (!m.is_empty()).then_some(m)
}

/// Payload format 1.0 (the REST API proxy event): single values are the last ones given,
/// empty maps are `null`.
pub fn v1_event(req: &HttpRequest<'_>, ctx: &Context<'_>) -> Bytes {
    let headers = multi_headers(req.headers);
    let query = multi_pairs(req.query.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let (body, is_base64_encoded) = body_field(req);
    let ev = V1Event {
        version: "1.0",
        resource: ctx.resource,
        path: req.path,
        http_method: req.method,
        headers: non_empty(&headers).map(last_values),
        multi_value_headers: non_empty(&headers),
        query_string_parameters: non_empty(&query).map(last_values),
        multi_value_query_string_parameters: non_empty(&query),
        request_context: V1Context {
            account_id: ctx.account_id,
            api_id: ctx.api_id,
            domain_name: ctx.domain_name,
            domain_prefix: ctx.domain_prefix,
            extended_request_id: ctx.request_id,
            http_method: req.method,
            identity: V1Identity {
                access_key: None,
                account_id: None,
                caller: None,
                cognito_amr: None,
                cognito_authentication_provider: None,
                cognito_authentication_type: None,
                cognito_identity_id: None,
                cognito_identity_pool_id: None,
                principal_org_id: None,
                source_ip: req.source_ip,
                user: None,
                user_agent: user_agent(req),
                user_arn: None,
            },
            path: req.path,
            protocol: "HTTP/1.1",
            request_id: ctx.request_id,
            request_time: request_time(ctx.now),
            request_time_epoch: ctx.now.timestamp_millis(),
            resource_id: ctx.route_key,
            resource_path: ctx.resource,
            stage: ctx.stage,
        },
        path_parameters: ctx.path_parameters.and_then(non_empty),
        stage_variables: ctx.stage_variables.and_then(non_empty),
        body,
        is_base64_encoded,
    };
    Bytes::from(serde_json::to_vec(&ev).expect("events serialize"))
}

/// An Application Load Balancer target event.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AlbEvent<'a> {
    request_context: AlbContext<'a>,
    http_method: &'a str,
    path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    query_string_parameters: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    multi_value_query_string_parameters: Option<&'a BTreeMap<String, Vec<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    headers: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    multi_value_headers: Option<&'a BTreeMap<String, Vec<String>>>,
    body: Cow<'a, str>,
    is_base64_encoded: bool,
}

#[derive(Serialize)]
struct AlbContext<'a> {
    elb: AlbTargetGroup<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AlbTargetGroup<'a> {
    target_group_arn: &'a str,
}

/// An Application Load Balancer target event. As AWS's ALB does: query values are passed as
/// sent (not decoded), single-value maps carry the last value, `body` is `""` when empty, and
/// with multi-value headers enabled only the `multiValue…` maps are sent.
pub fn alb_event(req: &HttpRequest<'_>, target_group_arn: &str, multi_value: bool) -> Bytes {
    let headers = multi_headers(req.headers);
    let query = multi_pairs(req.raw_query.split('&').filter(|kv| !kv.is_empty()).map(|kv| kv.split_once('=').unwrap_or((kv, ""))));
    let (body, is_base64_encoded) = body_field(req);
    let ev = AlbEvent {
        request_context: AlbContext { elb: AlbTargetGroup { target_group_arn } },
        http_method: req.method,
        path: req.path,
        query_string_parameters: (!multi_value).then(|| last_values(&query)),
        multi_value_query_string_parameters: multi_value.then_some(&query),
        headers: (!multi_value).then(|| last_values(&headers)),
        multi_value_headers: multi_value.then_some(&headers),
        body: body.unwrap_or_default(),
        is_base64_encoded,
    };
    Bytes::from(serde_json::to_vec(&ev).expect("events serialize"))
}

fn header_value(v: &Value) -> Option<HeaderValue> {
    match v {
        Value::String(s) => HeaderValue::from_str(s).ok(),
        Value::Null => None,
        other => HeaderValue::from_str(&other.to_string()).ok(),
    }
}

/// The fields of a proxy result that any format reads. Parsed without building the whole
/// document: the top-level members are kept as raw JSON text (a repeated member keeps its
/// last value, as a full parse would), and only the small ones a format reads are parsed.
struct ProxyResult<'a> {
    /// Present (even as `null`) or not.
    status_code: Option<&'a RawValue>,
    headers: Option<Value>,
    multi_value_headers: Option<Value>,
    body: Option<&'a RawValue>,
    is_base64_encoded: Option<Value>,
    cookies: Option<Value>,
}

impl<'a> ProxyResult<'a> {
    /// The result if `payload` is a JSON object; Err(true) if it is other valid JSON,
    /// Err(false) if it is not JSON.
    fn parse(payload: &'a [u8]) -> Result<ProxyResult<'a>, bool> {
        let first = payload.iter().find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'{') {
            return Err(serde_json::from_slice::<serde::de::IgnoredAny>(payload).is_ok());
        }
        let members: BTreeMap<Cow<'a, str>, &'a RawValue> = serde_json::from_slice(payload).map_err(|_| false)?;
        let small = |name: &str| members.get(name).and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok());
        Ok(ProxyResult {
            status_code: members.get("statusCode").copied(),
            headers: small("headers"),
            multi_value_headers: small("multiValueHeaders"),
            body: members.get("body").copied(),
            is_base64_encoded: small("isBase64Encoded"),
            cookies: small("cookies"),
        })
    }

    fn status(&self) -> Option<StatusCode> {
        let s: u64 = self.status_code?.get().parse().ok()?;
        StatusCode::from_u16(u16::try_from(s).ok()?).ok()
    }

    /// The body: a string (base64 when `isBase64Encoded`), absent, or (as API Gateway
    /// tolerates) other JSON, sent as its text. None: bad base64.
    fn body(&self) -> Option<Bytes> {
        let Some(raw) = self.body else { return Some(Bytes::new()) };
        let text = raw.get();
        if text == "null" {
            return Some(Bytes::new());
        }
        if !text.starts_with('"') {
            return Some(Bytes::copy_from_slice(text.as_bytes()));
        }
        let s: String = serde_json::from_str(text).ok()?;
        if self.is_base64_encoded.as_ref().and_then(Value::as_bool) == Some(true) {
            return base64::engine::general_purpose::STANDARD.decode(s).ok().map(Bytes::from);
        }
        Some(Bytes::from(s))
    }

    /// Sets `headers` (name → value) and appends `multiValueHeaders` (name → [values]).
    /// None: a name or value that is not valid HTTP (a malformed result).
    fn apply_headers(&self, r: &mut Response<Bytes>, single: bool, multi: bool) -> Option<()> {
        if let (true, Some(Value::Object(h))) = (single, &self.headers) {
            for (k, v) in h {
                let name = HeaderName::from_bytes(k.as_bytes()).ok()?;
                if let Some(v) = header_value(v) {
                    r.headers_mut().insert(name, v);
                }
            }
        }
        if let (true, Some(Value::Object(h))) = (multi, &self.multi_value_headers) {
            for (k, vs) in h {
                let name = HeaderName::from_bytes(k.as_bytes()).ok()?;
                r.headers_mut().remove(&name);
                for v in vs.as_array()?.iter().filter_map(header_value) {
                    r.headers_mut().append(name.clone(), v);
                }
            }
        }
        Some(())
    }
}

fn response(status: StatusCode, content_type: Option<&'static str>, body: Bytes) -> Response<Bytes> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    if let Some(ct) = content_type {
        r.headers_mut().insert("content-type", HeaderValue::from_static(ct));
    }
    r
}

/// Payload format 2.0's result (function URLs and HTTP APIs): an object with `statusCode`
/// is a response; any other valid JSON is a 200 `application/json` body. None: malformed.
pub fn v2_response(payload: &[u8]) -> Option<Response<Bytes>> {
    let passthrough = || Some(response(StatusCode::OK, Some("application/json"), Bytes::copy_from_slice(payload)));
    let result = match ProxyResult::parse(payload) {
        Ok(r) if r.status_code.is_some() => r,
        Ok(_) | Err(true) => return passthrough(),
        Err(false) => return None,
    };
    let mut r = response(result.status()?, Some("application/json"), result.body()?);
    result.apply_headers(&mut r, true, false)?;
    if let Some(Value::Array(cookies)) = &result.cookies {
        for c in cookies.iter().filter_map(Value::as_str) {
            r.headers_mut().append("set-cookie", HeaderValue::from_str(c).ok()?);
        }
    }
    Some(r)
}

/// Payload format 1.0's result: `statusCode` is required; `headers` and `multiValueHeaders`
/// are merged. None: malformed.
pub fn v1_response(payload: &[u8]) -> Option<Response<Bytes>> {
    let result = ProxyResult::parse(payload).ok()?;
    let mut r = response(result.status()?, Some("application/json"), result.body()?);
    result.apply_headers(&mut r, true, true)?;
    Some(r)
}

/// An ALB target's result: `statusCode` required; `headers`, or `multiValueHeaders` when
/// multi-value headers are enabled (ALB ignores the other map). None: malformed (ALB's 502).
pub fn alb_response(payload: &[u8], multi_value: bool) -> Option<Response<Bytes>> {
    let result = ProxyResult::parse(payload).ok()?;
    let mut r = response(result.status()?, None, result.body()?);
    result.apply_headers(&mut r, !multi_value, multi_value)?;
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req<'a>(headers: &'a HeaderMap, query: &'a [(String, String)], raw_query: &'a str, body: &'a [u8]) -> HttpRequest<'a> {
        HttpRequest { method: "POST", path: "/prod/items/7", raw_query, query, headers, body, source_ip: "127.0.0.1" }
    }

    fn ctx<'a>(params: &'a BTreeMap<String, String>, vars: &'a BTreeMap<String, String>) -> Context<'a> {
        Context {
            account_id: "000000000000",
            api_id: "abc123defg",
            domain_name: "abc123defg.execute-api.localhost",
            domain_prefix: "abc123defg",
            stage: "prod",
            route_key: "POST /items/{id}",
            resource: "/items/{id}",
            path_parameters: Some(params),
            stage_variables: Some(vars),
            request_id: "req",
            now: chrono::Utc::now(),
        }
    }

    fn headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.append("x-a", HeaderValue::from_static("1"));
        h.append("x-a", HeaderValue::from_static("2"));
        h.append("cookie", HeaderValue::from_static("c1=v1; c2=v2"));
        h.append("content-type", HeaderValue::from_static("application/octet-stream"));
        h
    }

    #[test]
    fn events_of_each_format() {
        let h = headers();
        let q = vec![("a".to_string(), "1".to_string()), ("a".to_string(), "x y".to_string())];
        let params = BTreeMap::from([("id".to_string(), "7".to_string())]);
        let vars = BTreeMap::from([("env".to_string(), "prod".to_string())]);
        let r = req(&h, &q, "a=1&a=x%20y", &[0, 255]);
        let c = ctx(&params, &vars);
        let parse = |b: Bytes| serde_json::from_slice::<Value>(&b).unwrap();
        let v2 = parse(v2_event(&r, &c));
        assert_eq!(v2["headers"]["x-a"], "1,2");
        assert_eq!(v2["cookies"], json!(["c1=v1", "c2=v2"]));
        assert_eq!(v2["queryStringParameters"], json!({"a": "1,x y"}));
        assert_eq!(v2["pathParameters"], json!({"id": "7"}));
        assert_eq!(v2["stageVariables"], json!({"env": "prod"}));
        assert_eq!((v2["body"].as_str(), v2["isBase64Encoded"].as_bool()), (Some("AP8="), Some(true)));
        assert_eq!(v2["requestContext"]["time"].as_str().map(str::len), Some("27/Nov/2026:17:05:09 +0000".len()));
        assert_eq!(v2["version"], "2.0");
        let v1 = parse(v1_event(&r, &c));
        assert_eq!(v1["headers"]["x-a"], "2");
        assert_eq!(v1["multiValueHeaders"]["x-a"], json!(["1", "2"]));
        assert_eq!(v1["multiValueQueryStringParameters"]["a"], json!(["1", "x y"]));
        assert_eq!(v1["resource"], "/items/{id}");
        assert_eq!(v1["requestContext"]["identity"]["sourceIp"], "127.0.0.1");
        let alb = parse(alb_event(&r, "arn:tg", false));
        assert_eq!(alb["queryStringParameters"], json!({"a": "x%20y"}));
        assert!(alb.get("multiValueHeaders").is_none());
        let alb = parse(alb_event(&r, "arn:tg", true));
        assert_eq!(alb["multiValueQueryStringParameters"], json!({"a": ["1", "x%20y"]}));
        assert!(alb.get("headers").is_none());
        let none = BTreeMap::new();
        let empty = HeaderMap::new();
        let v1 = parse(v1_event(&req(&empty, &[], "", b""), &ctx(&none, &none)));
        assert!(v1["headers"].is_null() && v1["pathParameters"].is_null() && v1["body"].is_null());
        assert_eq!(parse(alb_event(&req(&empty, &[], "", b""), "arn:tg", false))["body"], "");
    }

    /// What Rust functions read these events with (`aws_lambda_events`) takes each format.
    #[test]
    fn rust_functions_read_every_format() {
        use aws_lambda_events::event::{alb, apigw};
        let h = headers();
        let q = vec![("a".to_string(), "1".to_string())];
        let params = BTreeMap::from([("id".to_string(), "7".to_string())]);
        let vars = BTreeMap::new();
        let r = req(&h, &q, "a=1", b"{}");
        let c = ctx(&params, &vars);
        let v2: apigw::ApiGatewayV2httpRequest = serde_json::from_slice(&v2_event(&r, &c)).expect("2.0 reads");
        assert_eq!((v2.raw_path.as_deref(), v2.path_parameters.get("id").map(String::as_str)), (Some("/prod/items/7"), Some("7")));
        let v1: apigw::ApiGatewayProxyRequest = serde_json::from_slice(&v1_event(&r, &c)).expect("1.0 reads");
        // The request is application/octet-stream, so its body travels base64-encoded.
        assert_eq!((v1.resource.as_deref(), v1.body.as_deref(), v1.is_base64_encoded), (Some("/items/{id}"), Some("e30="), true));
        for multi in [false, true] {
            let alb: alb::AlbTargetGroupRequest = serde_json::from_slice(&alb_event(&r, "arn:tg", multi)).expect("ALB reads");
            assert_eq!(alb.request_context.elb.target_group_arn.as_deref(), Some("arn:tg"));
        }
    }

    #[test]
    fn request_time_is_api_gateways_format() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-03-05T07:08:09Z").unwrap().with_timezone(&chrono::Utc);
        assert_eq!(request_time(t), "05/Mar/2026:07:08:09 +0000");
        assert_eq!(request_time(t), t.format("%d/%b/%Y:%H:%M:%S +0000").to_string());
    }

    #[test]
    fn results() {
        let r = v2_response(br#"{"statusCode":201,"headers":{"x-a":"1"},"body":"hi","cookies":["a=1","b=2"]}"#).unwrap();
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers().get_all("set-cookie").iter().count(), 2);
        let r = v2_response(br#"{"hello":"world"}"#).unwrap();
        assert_eq!((r.status().as_u16(), r.headers()["content-type"].to_str().unwrap()), (200, "application/json"));
        assert!(v2_response(br#"{"statusCode":"x"}"#).is_none());
        assert!(v2_response(br#"{"statusCode":200.5}"#).is_none());
        assert!(v2_response(br#"{"statusCode":200"#).is_none(), "truncated JSON is malformed");
        for other in [&br#""hello""#[..], b"[1,2]", b"42", b" null "] {
            let r = v2_response(other).unwrap();
            assert_eq!((r.status().as_u16(), r.body().as_ref()), (200, other), "valid JSON passes through");
        }
        let r = v2_response(br#"{"statusCode":200,"body":{"a":[1]},"headers":"ignored","other":{"x":1}}"#).unwrap();
        assert_eq!(r.body(), r#"{"a":[1]}"#, "a non-string body is sent as its JSON text");
        assert_eq!(v2_response(br#"{"statusCode":204,"body":null}"#).unwrap().body(), "");
        assert!(v2_response(br#"{"statusCode":null,"body":"x"}"#).is_none(), "a null statusCode is malformed, not a passthrough");
        let r = v2_response(br#"{"statusCode":200,"statusCode":201,"body":"a","body":"b"}"#).unwrap();
        assert_eq!((r.status().as_u16(), r.body().as_ref()), (201, &b"b"[..]), "a repeated member keeps its last value");
        assert_eq!(v2_response(br#"{"statusCode":200,"body":"a\"b\u00e9"}"#).unwrap().body(), "a\"b\u{e9}");
        assert!(v2_response(b"not json").is_none());
        assert_eq!(v2_response(br#"{"statusCode":200,"body":"aGk=","isBase64Encoded":true}"#).unwrap().body(), "hi");
        let r = v1_response(br#"{"statusCode":200,"headers":{"x-a":"1"},"multiValueHeaders":{"x-b":["1","2"]},"body":"ok"}"#).unwrap();
        assert_eq!(r.headers().get_all("x-b").iter().count(), 2);
        assert!(v1_response(br#"{"hello":"world"}"#).is_none());
        let r = alb_response(
            br#"{"statusCode":200,"statusDescription":"200 OK","headers":{"x-a":"1"},"multiValueHeaders":{"x-b":["1"]}}"#,
            false,
        )
        .unwrap();
        assert!(r.headers().contains_key("x-a") && !r.headers().contains_key("x-b"));
        let r = alb_response(br#"{"statusCode":200,"headers":{"x-a":"1"},"multiValueHeaders":{"x-b":["1","2"]}}"#, true).unwrap();
        assert!(!r.headers().contains_key("x-a") && r.headers().get_all("x-b").iter().count() == 2);
    }
}

//! API Gateway V2 (HTTP APIs) on the wire. Management: rest-json under `/v2/apis…`, parsed
//! into typed [`GatewayCall`]s for `nimbus-gateway`, answered with its records (camelCase
//! members) and AWS's errors (`x-amzn-ErrorType` and `{"message": ...}`). Serving: requests
//! to `<api-id>.<api domain>` (the Host header alone is enough) or
//! `/_aws/execute-api/<api-id>/…`, routed by the service, sent to the integration's function
//! as a payload format 1.0 or 2.0 event (or, Nimbus's extension, an ALB target event), and the
//! result mapped back with API Gateway's answers for every way an integration fails.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode};
use nimbus_gateway::model::{ApiInput, DeploymentInput, IntegrationInput, RouteInput, StageInput, ALB_FORMAT, ALB_MULTI_VALUE_FORMAT};
use nimbus_gateway::proxy::{self as events, Context};
use nimbus_gateway::{GatewayError, GatewayService};
use nimbus_model::url::Cors;
use nimbus_model::FunctionRef;
use serde::Serialize;
use serde_json::{json, Value};

use crate::action::decode_component;
use crate::proxy::{self, HttpCall, Outcome};
use crate::response::{self, Body};
use crate::server::AppState;

/// One management request: its IAM action and the parsed call (or the error AWS answers
/// while parsing).
#[derive(Debug)]
pub struct GatewayRequest {
    method: Method,
    pub call: Result<GatewayCall, GatewayError>,
    /// `maxResults` and `nextToken` of the Get* lists.
    page: Page,
}

/// One page of a Get* list: `nextToken` is the offset of the next item.
#[derive(Debug, Default, Clone, Copy)]
struct Page {
    max: Option<usize>,
    offset: usize,
}

impl Page {
    fn parse(query: Option<&str>) -> Result<Page, GatewayError> {
        let max = match crate::action::query_param(query, "maxResults") {
            None => None,
            Some(m) => Some(
                m.parse::<usize>().ok().filter(|m| *m > 0).ok_or_else(|| GatewayError::BadRequest(format!("Invalid maxResults {m}")))?,
            ),
        };
        let offset = match crate::action::query_param(query, "nextToken") {
            None => 0,
            Some(t) => t.parse().map_err(|_| GatewayError::BadRequest(format!("Invalid nextToken {t}")))?,
        };
        Ok(Page { max, offset })
    }
}

/// Every API Gateway V2 operation Nimbus serves, with typed inputs.
#[derive(Debug)]
pub enum GatewayCall {
    CreateApi(ApiInput),
    GetApis,
    GetApi(String),
    UpdateApi(String, ApiInput),
    DeleteApi(String),
    CreateRoute(String, RouteInput),
    GetRoutes(String),
    GetRoute(String, String),
    UpdateRoute(String, String, RouteInput),
    DeleteRoute(String, String),
    CreateIntegration(String, IntegrationInput),
    GetIntegrations(String),
    GetIntegration(String, String),
    UpdateIntegration(String, String, IntegrationInput),
    DeleteIntegration(String, String),
    CreateStage(String, StageInput),
    GetStages(String),
    GetStage(String, String),
    UpdateStage(String, String, StageInput),
    DeleteStage(String, String),
    CreateDeployment(String, DeploymentInput),
    GetDeployments(String),
    GetDeployment(String, String),
}

impl GatewayRequest {
    /// The IAM action: API Gateway's management permissions are named by HTTP method.
    pub fn name(&self) -> &'static str {
        match self.method {
            Method::GET => "apigateway:GET",
            Method::POST => "apigateway:POST",
            Method::PATCH => "apigateway:PATCH",
            Method::DELETE => "apigateway:DELETE",
            _ => "apigateway:PUT",
        }
    }
}

fn input<T: for<'de> serde::Deserialize<'de>>(body: &[u8]) -> Result<T, GatewayError> {
    let body = if body.is_empty() { b"{}".as_slice() } else { body };
    serde_json::from_slice(body).map_err(|e| GatewayError::BadRequest(format!("Could not parse the request body: {e}")))
}

/// Recognises a management request (`/v2/apis…`).
pub fn recognize(method: &Method, path: &str, query: Option<&str>, body: &[u8]) -> Option<GatewayRequest> {
    let rest = path.strip_prefix("/v2/apis")?;
    if !rest.is_empty() && !rest.starts_with('/') {
        return None;
    }
    let segs: Vec<String> = rest.split('/').filter(|s| !s.is_empty()).map(decode_component).collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let s = |v: &str| v.to_string();
    use GatewayCall as C;
    let call = (|| {
        Ok(match (method, segs.as_slice()) {
            (&Method::POST, []) => C::CreateApi(input(body)?),
            (&Method::GET, []) => C::GetApis,
            (&Method::GET, [api]) => C::GetApi(s(api)),
            (&Method::PATCH, [api]) => C::UpdateApi(s(api), input(body)?),
            (&Method::DELETE, [api]) => C::DeleteApi(s(api)),
            (&Method::POST, [api, "routes"]) => C::CreateRoute(s(api), input(body)?),
            (&Method::GET, [api, "routes"]) => C::GetRoutes(s(api)),
            (&Method::GET, [api, "routes", id]) => C::GetRoute(s(api), s(id)),
            (&Method::PATCH, [api, "routes", id]) => C::UpdateRoute(s(api), s(id), input(body)?),
            (&Method::DELETE, [api, "routes", id]) => C::DeleteRoute(s(api), s(id)),
            (&Method::POST, [api, "integrations"]) => C::CreateIntegration(s(api), input(body)?),
            (&Method::GET, [api, "integrations"]) => C::GetIntegrations(s(api)),
            (&Method::GET, [api, "integrations", id]) => C::GetIntegration(s(api), s(id)),
            (&Method::PATCH, [api, "integrations", id]) => C::UpdateIntegration(s(api), s(id), input(body)?),
            (&Method::DELETE, [api, "integrations", id]) => C::DeleteIntegration(s(api), s(id)),
            (&Method::POST, [api, "stages"]) => C::CreateStage(s(api), input(body)?),
            (&Method::GET, [api, "stages"]) => C::GetStages(s(api)),
            (&Method::GET, [api, "stages", name]) => C::GetStage(s(api), s(name)),
            (&Method::PATCH, [api, "stages", name]) => C::UpdateStage(s(api), s(name), input(body)?),
            (&Method::DELETE, [api, "stages", name]) => C::DeleteStage(s(api), s(name)),
            (&Method::POST, [api, "deployments"]) => C::CreateDeployment(s(api), input(body)?),
            (&Method::GET, [api, "deployments"]) => C::GetDeployments(s(api)),
            (&Method::GET, [api, "deployments", id]) => C::GetDeployment(s(api), s(id)),
            _ => return Err(GatewayError::NotFound(format!("No operation matches {method} {path}"))),
        })
    })();
    let (call, page) = match Page::parse(query) {
        Ok(page) => (call, page),
        Err(e) => (Err(e), Page::default()),
    };
    Some(GatewayRequest { method: method.clone(), call, page })
}

fn error(e: &GatewayError) -> Response<Body> {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut r = response::json(status, &json!({ "message": e.to_string() }));
    r.headers_mut().insert("x-amzn-errortype", HeaderValue::from_static(e.type_name()));
    r
}

fn one<T: Serialize>(status: StatusCode, v: Result<T, GatewayError>) -> Result<Response<Body>, GatewayError> {
    let v = serde_json::to_value(v?).map_err(|e| GatewayError::Internal(e.to_string()))?;
    Ok(response::json(status, &v))
}

fn items<T: Serialize>(page: Page, v: Result<Vec<T>, GatewayError>) -> Result<Response<Body>, GatewayError> {
    let all = v?;
    let end = page.max.map_or(all.len(), |m| page.offset.saturating_add(m).min(all.len()));
    let shown = all.get(page.offset.min(all.len())..end).unwrap_or_default();
    let mut body = json!({ "items": serde_json::to_value(shown).map_err(|e| GatewayError::Internal(e.to_string()))? });
    if end < all.len() {
        body["nextToken"] = json!(end.to_string());
    }
    Ok(response::json(StatusCode::OK, &body))
}

fn deleted(v: Result<(), GatewayError>) -> Result<Response<Body>, GatewayError> {
    v.map(|()| response::empty(StatusCode::NO_CONTENT))
}

/// Runs a management request.
pub fn execute(svc: &GatewayService, req: GatewayRequest) -> Response<Body> {
    use GatewayCall as C;
    const CREATED: StatusCode = StatusCode::CREATED;
    const OK: StatusCode = StatusCode::OK;
    let page = req.page;
    let result = req.call.and_then(|call| match call {
        C::CreateApi(i) => one(CREATED, svc.create_api(i)),
        C::GetApis => items(page, Ok(svc.get_apis())),
        C::GetApi(a) => one(OK, svc.get_api(&a)),
        C::UpdateApi(a, i) => one(OK, svc.update_api(&a, i)),
        C::DeleteApi(a) => deleted(svc.delete_api(&a)),
        C::CreateRoute(a, i) => one(CREATED, svc.create_route(&a, i)),
        C::GetRoutes(a) => items(page, svc.get_routes(&a)),
        C::GetRoute(a, id) => one(OK, svc.get_route(&a, &id)),
        C::UpdateRoute(a, id, i) => one(OK, svc.update_route(&a, &id, i)),
        C::DeleteRoute(a, id) => deleted(svc.delete_route(&a, &id)),
        C::CreateIntegration(a, i) => one(CREATED, svc.create_integration(&a, i)),
        C::GetIntegrations(a) => items(page, svc.get_integrations(&a)),
        C::GetIntegration(a, id) => one(OK, svc.get_integration(&a, &id)),
        C::UpdateIntegration(a, id, i) => one(OK, svc.update_integration(&a, &id, i)),
        C::DeleteIntegration(a, id) => deleted(svc.delete_integration(&a, &id)),
        C::CreateStage(a, i) => one(CREATED, svc.create_stage(&a, i)),
        C::GetStages(a) => items(page, svc.get_stages(&a)),
        C::GetStage(a, n) => one(OK, svc.get_stage(&a, &n)),
        C::UpdateStage(a, n, i) => one(OK, svc.update_stage(&a, &n, i)),
        C::DeleteStage(a, n) => deleted(svc.delete_stage(&a, &n)),
        C::CreateDeployment(a, i) => one(CREATED, svc.create_deployment(&a, i)),
        C::GetDeployments(a) => items(page, svc.get_deployments(&a)),
        C::GetDeployment(a, id) => one(OK, svc.get_deployment(&a, &id)),
    });
    match result {
        Ok(r) => r,
        Err(e) => {
            if matches!(e, GatewayError::Internal(_)) {
                tracing::error!("{e}");
            }
            error(&e)
        }
    }
}

// ---- serving ---------------------------------------------------------------------------

/// A request to an API's `execute-api` endpoint.
#[derive(Debug)]
pub struct ApiRequest {
    pub api_id: String,
    /// `call.path` is the path below the API's root (a named stage's name first).
    pub call: HttpCall,
}

/// API ids are 10 lower-case letters and digits.
fn is_api_id(s: &str) -> bool {
    s.len() == 10 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Recognises an `execute-api` request; returns (api id, path below the API's root).
pub fn match_api(host: Option<&str>, path: &str, api_domain: &str) -> Option<(String, String)> {
    if let Some(rest) = path.strip_prefix("/_aws/execute-api/") {
        let (id, tail) = rest.split_once('/').map(|(i, t)| (i, format!("/{t}"))).unwrap_or((rest, "/".to_string()));
        return is_api_id(id).then(|| (id.to_string(), tail));
    }
    let host = host?.split(':').next()?;
    let id = host.strip_suffix(api_domain)?.strip_suffix('.')?;
    is_api_id(id).then(|| (id.to_string(), path.to_string()))
}

/// API Gateway's error answers: `{"message": ...}`. Where each comes from:
/// - 404 "Not Found": no stage or route (developer guide, "Routing API requests": "the API
///   returns {"message":"Not Found"}").
/// - 502 "Internal server error": the function failed or returned a malformed result (Lambda
///   developer guide, "Handling Lambda errors with an API Gateway API": "If the function runs
///   but returns an error, or returns a response in the wrong format, API Gateway returns a
///   502"). HTTP APIs answer some of these with 500 "Internal Server Error"; the issue fixes 502.
/// - 500 "Internal Server Error": the invoke itself was refused (function missing and the
///   like; HTTP API troubleshooting guide, "My API with a Lambda integration returns
///   {"message":"Internal Server Error"}").
/// - 504 "Endpoint request timed out": the integration timed out (API Gateway's
///   INTEGRATION_TIMEOUT gateway response); Nimbus answers a function's own timeout the same
///   way, as the issue asks (AWS would see a function error there).
/// - 429 "Too Many Requests": throttled (the issue's choice; API Gateway's own throttling
///   text). 413 "Request Entity Too Large": over Lambda's 6 MB synchronous payload.
fn message(status: StatusCode, text: &str) -> Response<Body> {
    response::json(status, &json!({ "message": text }))
}

/// HTTP APIs' request ids look like `JKJaXmPLvHcESHA=`: 16 base64 characters.
fn apigw_request_id() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(&uuid::Uuid::new_v4().as_bytes()[..11]).chars().take(15).collect::<String>() + "="
}

/// An HTTP API's `corsConfiguration` as the CORS rules function URLs also use.
fn cors_of(v: &Value) -> Cors {
    let list = |k: &str| v[k].as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect()).unwrap_or_default();
    Cors {
        allow_credentials: v["allowCredentials"].as_bool().unwrap_or(false),
        allow_headers: list("allowHeaders"),
        allow_methods: list("allowMethods"),
        allow_origins: list("allowOrigins"),
        expose_headers: list("exposeHeaders"),
        max_age: v["maxAge"].as_u64().and_then(|m| u32::try_from(m).ok()),
    }
}

/// The headers API Gateway adds before the integration sees a request: `x-forwarded-for`
/// (the client appended), `-proto`, `-port`, and an `x-amzn-trace-id` (the HTTP API event
/// examples in the developer guide carry all four).
fn add_forwarding_headers(call: &mut HttpCall, port: u16) {
    let h = &mut call.headers;
    let forwarded = match h.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {}", call.source_ip),
        None => call.source_ip.clone(),
    };
    if let Ok(v) = HeaderValue::from_str(&forwarded) {
        h.insert("x-forwarded-for", v);
    }
    h.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    h.insert("x-forwarded-port", HeaderValue::from(port));
    if !h.contains_key("x-amzn-trace-id") {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let trace = format!("Root=1-{:08x}-{}", chrono::Utc::now().timestamp(), &id[..24]);
        if let Ok(v) = HeaderValue::from_str(&trace) {
            h.insert("x-amzn-trace-id", v);
        }
    }
}

/// Serves one `execute-api` request end to end.
pub async fn serve(state: &AppState, mut req: ApiRequest) -> Response<Body> {
    let request_id = apigw_request_id();
    add_forwarding_headers(&mut req.call, state.port);
    let mut r = match state.gateway.front(&req.api_id) {
        None => message(StatusCode::NOT_FOUND, "Not Found"),
        // AWS answers 403 on the default endpoint of an API that disabled it.
        Some(front) if front.disable_execute_api_endpoint => message(StatusCode::FORBIDDEN, "Forbidden"),
        Some(front) => {
            // With a CORS configuration, API Gateway answers preflights itself (204) and
            // adds the CORS headers to every answer ("Configuring CORS for an HTTP API").
            let cors = front.cors.as_ref().map(cors_of);
            match proxy::preflight(cors.as_ref(), &req.call, StatusCode::NO_CONTENT) {
                Some(r) => r,
                None => {
                    let mut r = serve_inner(state, &req, &request_id).await;
                    proxy::apply_cors(cors.as_ref(), &req.call, &mut r);
                    r
                }
            }
        }
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        r.headers_mut().insert("apigw-requestid", v);
    }
    r
}

async fn serve_inner(state: &AppState, req: &ApiRequest, request_id: &str) -> Response<Body> {
    let Some(target) = state.gateway.resolve(&req.api_id, req.call.method.as_str(), &req.call.path) else {
        return message(StatusCode::NOT_FOUND, "Not Found");
    };
    if req.call.too_large() {
        return message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
    }
    let integration = &target.integration;
    let partition = state.control.partition();
    let function = match nimbus_gateway::function_arn(&integration.integration_uri).map(|arn| FunctionRef::parse(arn, partition)) {
        Some(Ok(f)) => f,
        // A function in another region or account, or a URI that names none: the
        // integration cannot be invoked.
        _ => return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
    };
    let domain_name = format!("{}.{}", req.api_id, state.api_domain);
    let format = integration.payload_format_version.as_str();
    let ev: Bytes = req.call.with_view(|view| {
        let ctx = Context {
            account_id: &partition.account_id,
            api_id: &req.api_id,
            domain_name: &domain_name,
            domain_prefix: &req.api_id,
            stage: &target.stage,
            route_key: &target.route_key,
            resource: &target.resource,
            path_parameters: Some(&target.path_parameters),
            stage_variables: Some(&target.stage_variables),
            request_id,
            now: chrono::Utc::now(),
        };
        match format {
            "1.0" => events::v1_event(view, &ctx),
            ALB_FORMAT | ALB_MULTI_VALUE_FORMAT => {
                let arn = format!(
                    "arn:aws:elasticloadbalancing:{}:{}:targetgroup/{}-{}/{}",
                    partition.region, partition.account_id, req.api_id, integration.integration_id, target.route_id
                );
                events::alb_event(view, &arn, format == ALB_MULTI_VALUE_FORMAT)
            }
            _ => events::v2_event(view, &ctx),
        }
    });
    let timeout = Duration::from_millis(integration.timeout_in_millis.into());
    let invoke_id = uuid::Uuid::new_v4().to_string();
    match proxy::invoke(state, function, ev, &invoke_id, Some(timeout)).await {
        Outcome::Result(payload) => {
            let mapped = match format {
                "1.0" => events::v1_response(&payload),
                ALB_FORMAT => events::alb_response(&payload, false),
                ALB_MULTI_VALUE_FORMAT => events::alb_response(&payload, true),
                _ => events::v2_response(&payload),
            };
            mapped.map(proxy::body).unwrap_or_else(|| message(StatusCode::BAD_GATEWAY, "Internal server error"))
        }
        Outcome::FunctionError { timed_out: true } | Outcome::TimedOut => {
            message(StatusCode::GATEWAY_TIMEOUT, "Endpoint request timed out")
        }
        Outcome::FunctionError { timed_out: false } => message(StatusCode::BAD_GATEWAY, "Internal server error"),
        Outcome::Throttled => message(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests"),
        Outcome::TooLarge => message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"),
        Outcome::FunctionMissing | Outcome::Failed => message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching() {
        let d = "execute-api.us-east-1.localhost";
        assert_eq!(match_api(Some(&format!("abcde12345.{d}:9001")), "/prod/x", d), Some(("abcde12345".into(), "/prod/x".into())));
        assert_eq!(match_api(None, "/_aws/execute-api/abcde12345/a/b", d), Some(("abcde12345".into(), "/a/b".into())));
        assert_eq!(match_api(None, "/_aws/execute-api/abcde12345", d), Some(("abcde12345".into(), "/".into())));
        assert_eq!(match_api(Some("127.0.0.1:9001"), "/v2/apis", d), None);
        assert_eq!(match_api(None, "/_aws/execute-api/UPPER12345/", d), None);
    }

    #[test]
    fn management_paths() {
        let r = recognize(&Method::POST, "/v2/apis/abc/routes", None, br#"{"routeKey":"GET /x"}"#).unwrap();
        assert!(matches!(r.call, Ok(GatewayCall::CreateRoute(a, RouteInput { route_key: Some(k), .. })) if a == "abc" && k == "GET /x"));
        let r = recognize(&Method::GET, "/v2/apis/abc/stages/%24default", None, b"").unwrap();
        assert!(matches!(r.call, Ok(GatewayCall::GetStage(_, n)) if n == "$default"));
        assert!(recognize(&Method::GET, "/v2/apisx", None, b"").is_none());
        assert!(matches!(recognize(&Method::POST, "/v2/apis", None, b"{").unwrap().call, Err(GatewayError::BadRequest(_))));
    }
}

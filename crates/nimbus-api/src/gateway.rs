//! API Gateway V2 (HTTP APIs) on the wire. Management: rest-json under `/v2/apis…`, routed
//! and decoded through `nimbus-protocol` against API Gateway V2's model into typed
//! [`GatewayCall`]s for `nimbus-gateway`, answered with its records (kept in the wire form)
//! and AWS's errors (`x-amzn-ErrorType` and `{"message": ...}`). Serving: requests
//! to `<api-id>.<api domain>` (the Host header alone is enough) or
//! `/_aws/execute-api/<api-id>/…`, routed by the service, sent to the integration's function
//! as a payload format 1.0 or 2.0 event (or, Nimbus's extension, an ALB target event), and the
//! result mapped back with API Gateway's answers for every way an integration fails.

use std::sync::LazyLock;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode};
use nimbus_gateway::model::{
    ApiInput, CorsConfiguration, DeploymentInput, IntegrationInput, RouteInput, StageInput, ALB_FORMAT, ALB_MULTI_VALUE_FORMAT,
};
use nimbus_gateway::proxy::{self as events, Context};
use nimbus_gateway::{GatewayError, GatewayService};
use nimbus_model::url::Cors;
use nimbus_model::FunctionRef;
use nimbus_protocol::encode::Empty;
use nimbus_protocol::rest::{query_pairs, rest_json, HttpRequest, Router};
use nimbus_protocol::{calls, encode, DecodeError, Protocol, APIGATEWAYV2};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::action::RawRequest;
use crate::auth::Signer;
use crate::authz::{self, Connection, Who};
use crate::forward::not_run;
use crate::proxy::{self, Door, HttpCall, Outcome};
use crate::response::{self, Body};
use crate::server::AppState;

mod target;

/// One management request: its operation and the decoded call (or the error AWS answers
/// while decoding).
#[derive(Debug)]
pub struct GatewayRequest {
    method: Method,
    pub operation: &'static str,
    pub call: Result<GatewayCall, GatewayError>,
}

calls! {
    /// Every API Gateway V2 operation Nimbus serves, with its typed input.
    pub enum GatewayCall {
        CreateApi(ApiInput),
        GetApis(ListInput),
        GetApi(ApiRef),
        UpdateApi(ApiCall),
        DeleteApi(ApiRef),
        CreateRoute(RouteCall),
        GetRoutes(ListInput),
        GetRoute(RouteRef),
        UpdateRoute(RouteCall),
        DeleteRoute(RouteRef),
        CreateIntegration(IntegrationCall),
        GetIntegrations(ListInput),
        GetIntegration(IntegrationRef),
        UpdateIntegration(IntegrationCall),
        DeleteIntegration(IntegrationRef),
        CreateStage(StageCall),
        GetStages(ListInput),
        GetStage(StageRef),
        UpdateStage(StageCall),
        DeleteStage(StageRef),
        CreateDeployment(DeploymentCall),
        GetDeployments(ListInput),
        GetDeployment(DeploymentRef),
    }
}

/// The Get* lists: `maxResults` and `nextToken` (the offset of the next item).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListInput {
    api_id: Option<String>,
    max_results: Option<String>,
    next_token: Option<String>,
}

impl ListInput {
    fn page(&self) -> Result<Page, GatewayError> {
        let max = match &self.max_results {
            None => None,
            Some(m) => Some(
                m.parse::<usize>().ok().filter(|m| *m > 0).ok_or_else(|| GatewayError::BadRequest(format!("Invalid maxResults {m}")))?,
            ),
        };
        let offset = match &self.next_token {
            None => 0,
            Some(t) => t.parse().map_err(|_| GatewayError::BadRequest(format!("Invalid nextToken {t}")))?,
        };
        Ok(Page { max, offset })
    }

    fn api(&self) -> &str {
        self.api_id.as_deref().unwrap_or_default()
    }
}

/// One page of a Get* list.
#[derive(Debug, Default, Clone, Copy)]
struct Page {
    max: Option<usize>,
    offset: usize,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ApiRef {
    api_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ApiCall {
    api_id: String,
    #[serde(flatten)]
    input: ApiInput,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RouteRef {
    api_id: String,
    route_id: String,
}

/// CreateRoute (no `RouteId`) and UpdateRoute.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RouteCall {
    api_id: String,
    route_id: Option<String>,
    #[serde(flatten)]
    input: RouteInput,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IntegrationRef {
    api_id: String,
    integration_id: String,
}

/// CreateIntegration (no `IntegrationId`) and UpdateIntegration.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IntegrationCall {
    api_id: String,
    integration_id: Option<String>,
    #[serde(flatten)]
    input: IntegrationInput,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StageRef {
    api_id: String,
    stage_name: String,
}

/// CreateStage (`StageName` in the body) and UpdateStage (`StageName` in the URI).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StageCall {
    api_id: String,
    #[serde(flatten)]
    input: StageInput,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeploymentRef {
    api_id: String,
    deployment_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeploymentCall {
    api_id: String,
    #[serde(flatten)]
    input: DeploymentInput,
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

static ROUTER: LazyLock<Router> = LazyLock::new(|| Router::new(APIGATEWAYV2.model()));

/// Recognises a management request (`/v2/apis…`).
pub fn recognize(req: &RawRequest<'_>) -> Option<GatewayRequest> {
    let rest = req.path.strip_prefix("/v2/apis")?;
    if !rest.is_empty() && !rest.starts_with('/') {
        return None;
    }
    let query = query_pairs(req.query);
    let method = req.method.clone();
    let Some(matched) = ROUTER.find(req.method, req.path, &query) else {
        let e = GatewayError::NotFound(format!("No operation matches {} {}", req.method, req.path));
        return Some(GatewayRequest { method, operation: "Unknown", call: Err(e) });
    };
    let operation = matched.operation;
    if !GatewayCall::OPERATIONS.contains(&operation) {
        let e = GatewayError::NotFound(format!("Nimbus does not implement the API Gateway operation {operation} yet"));
        return Some(GatewayRequest { method, operation, call: Err(e) });
    }
    let call = rest_json(APIGATEWAYV2.model(), &matched, &HttpRequest { headers: req.headers, query: &query, body: &req.body })
        .and_then(|input| GatewayCall::decode(operation, input).expect("served operations decode"))
        .map_err(decode_error);
    Some(GatewayRequest { method, operation, call })
}

/// API Gateway's answer to a request that does not fit its operation's input shape (members
/// by their wire names, as its messages name them).
fn decode_error(e: DecodeError) -> GatewayError {
    let wire = |member: &str| {
        let mut c = member.chars();
        c.next().map(|f| f.to_lowercase().chain(c).collect::<String>()).unwrap_or_default()
    };
    match e {
        DecodeError::Missing { member } => GatewayError::BadRequest(format!("Invalid input: {} is required", wire(&member))),
        DecodeError::Type { member, expected, value } | DecodeError::Binding { member, expected, value } => {
            GatewayError::BadRequest(format!("Invalid input: {} must be a {expected}, got {value}", wire(&member)))
        }
        DecodeError::Malformed(m) | DecodeError::Shape(m) => GatewayError::BadRequest(format!("Could not parse the request body: {m}")),
    }
}

/// A Get* list's answer: `{"Items": [...], "NextToken"}` in wire form.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Items<'a, T> {
    items: &'a [T],
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

fn items<T: Serialize>(op: &str, rid: &str, page: Page, all: Vec<T>) -> Response<Bytes> {
    let end = page.max.map_or(all.len(), |m| page.offset.saturating_add(m).min(all.len()));
    let shown = all.get(page.offset.min(all.len())..end).unwrap_or_default();
    let next_token = (end < all.len()).then(|| end.to_string());
    encode::rest_from_wire(&APIGATEWAYV2, op, &Items { items: shown, next_token }, rid)
}

/// One record as the answer.
fn one<T: Serialize>(op: &str, rid: &str, v: Result<T, GatewayError>) -> Result<Response<Bytes>, GatewayError> {
    v.map(|v| encode::rest_from_wire(&APIGATEWAYV2, op, &v, rid))
}

/// Runs a management request. The service's records are kept in API Gateway's wire form, so
/// each is the answer as it is, with its `ApiEndpoint` under `origin` (see `crate::urls`).
pub async fn execute(state: &AppState, req: GatewayRequest, origin: &str) -> Response<Body> {
    let svc = &state.gateway;
    let endpoint = |mut api: nimbus_gateway::model::Api| {
        api.api_endpoint = state.urls.api_endpoint(origin, &api.api_id);
        api
    };
    let rid = uuid::Uuid::new_v4().to_string();
    let rid = rid.as_str();
    let op = req.operation;
    let result = match req.call {
        Ok(call) => run(svc, op, rid, call, &endpoint).await,
        Err(e) => Err(e),
    };
    let response = result.unwrap_or_else(|e| {
        if matches!(e, GatewayError::Internal(_)) {
            tracing::error!(operation = op, "apigateway: {e}");
        }
        encode::error(&APIGATEWAYV2, Protocol::RestJson, &e, rid)
    });
    response.map(crate::response::Body::from)
}

/// One management call.
async fn run(
    svc: &GatewayService,
    op: &str,
    rid: &str,
    call: GatewayCall,
    endpoint: &(dyn Fn(nimbus_gateway::model::Api) -> nimbus_gateway::model::Api + Sync),
) -> Result<Response<Bytes>, GatewayError> {
    use GatewayCall as C;
    let deleted = |v: Result<(), GatewayError>| v.map(|()| encode::rest(&APIGATEWAYV2, op, &Empty {}, None, rid));
    match call {
        C::CreateApi(i) => one(op, rid, svc.create_api(i).await.map(endpoint)),
        C::GetApis(l) => Ok(items(op, rid, l.page()?, svc.get_apis().into_iter().map(endpoint).collect())),
        C::GetApi(a) => one(op, rid, svc.get_api(&a.api_id).map(endpoint)),
        C::UpdateApi(c) => one(op, rid, svc.update_api(&c.api_id, c.input).await.map(endpoint)),
        C::DeleteApi(a) => deleted(svc.delete_api(&a.api_id).await),
        C::CreateRoute(c) => one(op, rid, svc.create_route(&c.api_id, c.input).await),
        C::GetRoutes(l) => Ok(items(op, rid, l.page()?, svc.get_routes(l.api())?)),
        C::GetRoute(r) => one(op, rid, svc.get_route(&r.api_id, &r.route_id)),
        C::UpdateRoute(c) => one(op, rid, svc.update_route(&c.api_id, c.route_id.as_deref().unwrap_or_default(), c.input).await),
        C::DeleteRoute(r) => deleted(svc.delete_route(&r.api_id, &r.route_id).await),
        C::CreateIntegration(c) => one(op, rid, svc.create_integration(&c.api_id, c.input).await),
        C::GetIntegrations(l) => Ok(items(op, rid, l.page()?, svc.get_integrations(l.api())?)),
        C::GetIntegration(r) => one(op, rid, svc.get_integration(&r.api_id, &r.integration_id)),
        C::UpdateIntegration(c) => {
            one(op, rid, svc.update_integration(&c.api_id, c.integration_id.as_deref().unwrap_or_default(), c.input).await)
        }
        C::DeleteIntegration(r) => deleted(svc.delete_integration(&r.api_id, &r.integration_id).await),
        C::CreateStage(c) => one(op, rid, svc.create_stage(&c.api_id, c.input).await),
        C::GetStages(l) => Ok(items(op, rid, l.page()?, svc.get_stages(l.api())?)),
        C::GetStage(r) => one(op, rid, svc.get_stage(&r.api_id, &r.stage_name)),
        C::UpdateStage(c) => {
            let name = c.input.stage_name.clone().unwrap_or_default();
            one(op, rid, svc.update_stage(&c.api_id, &name, c.input).await)
        }
        C::DeleteStage(r) => deleted(svc.delete_stage(&r.api_id, &r.stage_name).await),
        C::CreateDeployment(c) => one(op, rid, svc.create_deployment(&c.api_id, c.input).await),
        C::GetDeployments(l) => Ok(items(op, rid, l.page()?, svc.get_deployments(l.api())?)),
        C::GetDeployment(r) => one(op, rid, svc.get_deployment(&r.api_id, &r.deployment_id)),
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

/// Recognises an `execute-api` request; returns (api id, path below the API's root, how it
/// came: by path or by host name).
pub fn match_api(host: Option<&str>, path: &str, api_domain: &str) -> Option<(String, String, Door)> {
    if let Some(rest) = path.strip_prefix("/_aws/execute-api/") {
        let (id, tail) = rest.split_once('/').map(|(i, t)| (i, format!("/{t}"))).unwrap_or((rest, "/".to_string()));
        return is_api_id(id).then(|| (id.to_string(), tail, Door::Path));
    }
    let host = host?.split(':').next()?;
    let id = host.strip_suffix(api_domain)?.strip_suffix('.')?;
    is_api_id(id).then(|| (id.to_string(), path.to_string(), Door::Host))
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
fn cors_of(c: &CorsConfiguration) -> Cors {
    Cors {
        allow_credentials: c.allow_credentials.unwrap_or(false),
        allow_headers: c.allow_headers.clone().unwrap_or_default(),
        allow_methods: c.allow_methods.clone().unwrap_or_default(),
        allow_origins: c.allow_origins.clone().unwrap_or_default(),
        expose_headers: c.expose_headers.clone().unwrap_or_default(),
        max_age: c.max_age.and_then(|m| u32::try_from(m).ok()),
    }
}

/// The headers API Gateway adds before the integration sees a request: `x-forwarded-for`
/// (the client appended), `-proto`, `-port`, and an `x-amzn-trace-id` (the HTTP API event
/// examples in the developer guide carry all four).
fn add_forwarding_headers(call: &mut HttpCall, scheme: &'static str, port: u16) {
    let h = &mut call.headers;
    let forwarded = match h.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {}", call.source_ip),
        None => call.source_ip.clone(),
    };
    if let Ok(v) = HeaderValue::from_str(&forwarded) {
        h.insert("x-forwarded-for", v);
    }
    h.insert("x-forwarded-proto", HeaderValue::from_static(scheme));
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
pub async fn serve(state: &AppState, mut req: ApiRequest, signer: Signer, conn: &Connection<'_>) -> Response<Body> {
    let request_id = apigw_request_id();
    add_forwarding_headers(&mut req.call, state.scheme(), state.port);
    // Answers made before the function ran are marked `not_run` (a forwarded request's
    // sender runs it then; see `forward`).
    let mut r = match state.gateway.front(&req.api_id) {
        None => not_run(message(StatusCode::NOT_FOUND, "Not Found")),
        // AWS answers 403 on the default endpoint of an API that disabled it.
        Some(front) if front.disable_execute_api_endpoint => not_run(message(StatusCode::FORBIDDEN, "Forbidden")),
        Some(front) => {
            // With a CORS configuration, API Gateway answers preflights itself (204) and
            // adds the CORS headers to every answer ("Configuring CORS for an HTTP API").
            let cors = front.cors.as_ref().map(cors_of);
            match proxy::preflight(cors.as_ref(), &req.call, StatusCode::NO_CONTENT) {
                Some(r) => r,
                None => {
                    let mut r = serve_inner(state, &req, &request_id, &signer, conn).await;
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

/// Whether the route lets the request through (`AWS_IAM` routes: a good signature by a
/// principal allowed `execute-api:Invoke` on the request's ARN) and API Gateway may invoke
/// the integration's function (the function's policy must allow `apigateway.amazonaws.com`
/// for the route's ARN, as AWS requires). The answers are API Gateway's.
async fn authorize(
    state: &AppState,
    req: &ApiRequest,
    target: &nimbus_gateway::Resolved,
    function_arn: &str,
    signer: &Signer,
    conn: &Connection<'_>,
) -> Result<(), Response<Body>> {
    if matches!(signer, Signer::Off) {
        return Ok(());
    }
    let partition = state.control.partition();
    let prefix = format!("arn:aws:execute-api:{}:{}:{}/{}", partition.region, partition.account_id, req.api_id, target.stage);
    if target.authorization_type == "AWS_IAM" {
        let caller = match signer {
            Signer::Signed(caller) => caller,
            _ => return Err(message(StatusCode::FORBIDDEN, "Forbidden")),
        };
        let resource = format!("{prefix}/{}{}", req.call.method, req.call.path);
        if let Err(why) = authz::decide(state, Who::Caller(caller), "execute-api:Invoke", &resource, &[], conn).await {
            tracing::debug!(api = %req.api_id, "request denied: {why}");
            return Err(message(StatusCode::FORBIDDEN, "Forbidden"));
        }
    }
    // The source ARN API Gateway invokes with: the route's method and resource path.
    let source = match target.route_key.split_once(' ') {
        Some((method, _)) => format!("{prefix}/{}{}", if method == "ANY" { "*" } else { method }, target.resource),
        None => format!("{prefix}/{}", target.route_key),
    };
    authz::service_may_invoke(&state.control, "apigateway.amazonaws.com", function_arn, &source, &partition.account_id).await.map_err(
        |why| {
            tracing::warn!(api = %req.api_id, "integration not invoked: {why}");
            message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        },
    )
}

async fn serve_inner(state: &AppState, req: &ApiRequest, request_id: &str, signer: &Signer, conn: &Connection<'_>) -> Response<Body> {
    let Some(target) = state.gateway.resolve(&req.api_id, req.call.method.as_str(), &req.call.path) else {
        return not_run(message(StatusCode::NOT_FOUND, "Not Found"));
    };
    if req.call.too_large() {
        return not_run(message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"));
    }
    let integration = &target.integration;
    let partition = state.control.partition();
    let function = match nimbus_gateway::function_arn(&integration.integration_uri).map(|arn| FunctionRef::parse(arn, partition)) {
        Some(Ok(f)) => f,
        // A function in another region or account, or a URI that names none: the
        // integration cannot be invoked.
        _ => return not_run(message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")),
    };
    if let Some(arn) = nimbus_gateway::function_arn(&integration.integration_uri) {
        if let Err(refused) = authorize(state, req, &target, arn, signer, conn).await {
            return not_run(refused);
        }
    }
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
    match proxy::invoke(state, function, ev, &invoke_id, Some(timeout), proxy::trace_parent(&req.call.headers)).await {
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
        Outcome::Throttled => not_run(message(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests")),
        Outcome::TooLarge => message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"),
        Outcome::FunctionMissing => not_run(message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")),
        Outcome::Failed => message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching() {
        let d = "execute-api.us-east-1.localhost";
        assert_eq!(
            match_api(Some(&format!("abcde12345.{d}:9001")), "/prod/x", d),
            Some(("abcde12345".into(), "/prod/x".into(), Door::Host))
        );
        assert_eq!(match_api(None, "/_aws/execute-api/abcde12345/a/b", d), Some(("abcde12345".into(), "/a/b".into(), Door::Path)));
        assert_eq!(match_api(None, "/_aws/execute-api/abcde12345", d), Some(("abcde12345".into(), "/".into(), Door::Path)));
        assert_eq!(match_api(Some("127.0.0.1:9001"), "/v2/apis", d), None);
        assert_eq!(match_api(None, "/_aws/execute-api/UPPER12345/", d), None);
    }

    fn recognized(method: Method, path: &str, body: &'static [u8]) -> Option<GatewayRequest> {
        let headers = http::HeaderMap::new();
        recognize(&RawRequest::for_test(&method, path, None, &headers, Bytes::from_static(body)))
    }

    #[test]
    fn management_paths() {
        let r = recognized(Method::POST, "/v2/apis/abc/routes", br#"{"routeKey":"GET /x"}"#).unwrap();
        assert!(matches!(r.call, Ok(GatewayCall::CreateRoute(RouteCall { api_id, input: RouteInput { route_key: Some(k), .. }, .. }))
            if api_id == "abc" && k == "GET /x"));
        let r = recognized(Method::GET, "/v2/apis/abc/stages/%24default", b"").unwrap();
        assert!(matches!(r.call, Ok(GatewayCall::GetStage(StageRef { stage_name, .. })) if stage_name == "$default"));
        assert!(recognized(Method::GET, "/v2/apisx", b"").is_none());
        assert!(matches!(recognized(Method::POST, "/v2/apis", b"{").unwrap().call, Err(GatewayError::BadRequest(_))));
        assert!(matches!(recognized(Method::PUT, "/v2/apis/abc", b"").unwrap().call, Err(GatewayError::NotFound(_))));
    }
}

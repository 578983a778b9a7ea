//! Authorization at the edge: after [`crate::auth`] has said who signed a request, this is
//! the one place that decides whether that principal may make the call. Every typed call of
//! every service names its IAM action and resource ([`Target`], from each service module's
//! `target`); the principal's identity policies (from IAM), the resource's own policy (a
//! function's, a queue's, a topic's, a key's) and the request's context keys are evaluated by
//! `nimbus-policy` as AWS documents it. A denial is answered in the service's own shape.

use std::sync::Arc;

use nimbus_identity::Caller;
use nimbus_policy::{evaluate, Context, Kind, Policies, Policy, PrincipalType, Request};
use nimbus_protocol::{encode, AwsError, Protocol, Service};

use crate::action::Action;
use crate::response::Body;
use crate::server::AppState;

/// Where a call is made: the account and region its unnamed resources belong to.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub account: &'a str,
    pub region: &'a str,
    /// The caller's ARN (calls on "myself", such as IAM's GetUser without a name).
    pub principal: &'a str,
}

/// What IAM authorizes one call as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `service:Operation` (`lambda:InvokeFunction`), as policies name it.
    pub action: &'static str,
    /// The resource's ARN, or `*` for calls that act on no one resource (ListFunctions).
    pub resource: String,
    /// Context keys the call adds (`lambda:FunctionUrlAuthType`, `sqs:…`).
    pub context: Vec<(&'static str, String)>,
}

impl Target {
    /// `action` on no particular resource.
    pub fn any(action: &'static str) -> Self {
        Target { action, resource: "*".into(), context: Vec::new() }
    }

    /// `action` on `resource`.
    pub fn on(action: &'static str, resource: impl Into<String>) -> Self {
        Target { action, resource: resource.into(), context: Vec::new() }
    }

    /// With the context key `key` set to `value`.
    pub fn with(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.context.push((key, value.into()));
        self
    }
}

impl Action {
    /// What IAM authorizes this action as; None for Nimbus's own endpoints, the functions'
    /// front doors (checked on their own paths), and calls that did not decode.
    pub fn target(&self, scope: &Scope<'_>) -> Option<Target> {
        match self {
            Action::Lambda(r) => r.target(scope),
            Action::Logs(r) => r.target(scope),
            Action::Sqs(r) => r.target(scope),
            Action::Events(r) => r.target(scope),
            Action::Kms(r) => r.target(scope),
            Action::Sns(r) => r.target(scope),
            Action::Iam(r) => r.target(scope),
            Action::Sts(r) => r.target(scope),
            Action::Gateway(r) => r.target(scope),
            Action::Health | Action::Status | Action::GetCode { .. } | Action::InvokeFunctionUrl(_) | Action::InvokeApi(_) => None,
        }
    }
}

/// How a service words and ships its AccessDenied answer.
struct Denial {
    service: &'static Service,
    protocol: Protocol,
    code: &'static str,
    query_code: &'static str,
    status: u16,
}

fn denial(action: &Action) -> Option<Denial> {
    let d = |service, protocol, code, query_code, status| Some(Denial { service, protocol, code, query_code, status });
    match action {
        Action::Lambda(_) => d(&nimbus_protocol::LAMBDA, Protocol::RestJson, "AccessDeniedException", "AccessDenied", 403),
        Action::Gateway(_) => d(&nimbus_protocol::APIGATEWAYV2, Protocol::RestJson, "AccessDeniedException", "AccessDenied", 403),
        Action::Sqs(r) => d(&nimbus_protocol::SQS, r.protocol, "AccessDeniedException", "AccessDenied", 403),
        Action::Sns(_) => d(&nimbus_protocol::SNS, Protocol::AwsQuery, "AuthorizationError", "AuthorizationError", 403),
        Action::Events(_) => d(&nimbus_protocol::EVENTS, Protocol::AwsJson1_1, "AccessDeniedException", "AccessDenied", 400),
        Action::Logs(_) => d(&nimbus_protocol::LOGS, Protocol::AwsJson1_1, "AccessDeniedException", "AccessDenied", 400),
        Action::Kms(_) => d(&nimbus_protocol::KMS, Protocol::AwsJson1_1, "AccessDeniedException", "AccessDenied", 400),
        Action::Iam(_) => d(&nimbus_protocol::IAM, Protocol::AwsQuery, "AccessDenied", "AccessDenied", 403),
        Action::Sts(_) => d(&nimbus_protocol::STS, Protocol::AwsQuery, "AccessDenied", "AccessDenied", 403),
        _ => None,
    }
}

/// How the action is spelled in a denial: SQS lower-cases it (`sqs:sendmessage`), SNS writes
/// its prefix in capitals (`SNS:Publish`); the others as policies name it. Matching is
/// case-insensitive, so the spelling evaluated is the spelling shown.
fn spelled(action: &Action, iam_action: &'static str) -> std::borrow::Cow<'static, str> {
    match action {
        Action::Sqs(_) => iam_action.to_ascii_lowercase().into(),
        Action::Sns(_) => match iam_action.strip_prefix("sns:") {
            Some(op) => format!("SNS:{op}").into(),
            None => iam_action.into(),
        },
        _ => iam_action.into(),
    }
}

struct Denied<'a> {
    how: &'a Denial,
    message: String,
}

impl std::fmt::Debug for Denied<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.how.code, self.message)
    }
}

impl std::fmt::Display for Denied<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl AwsError for Denied<'_> {
    fn code(&self) -> &str {
        self.how.code
    }
    fn query_code(&self) -> &str {
        self.how.query_code
    }
    fn status(&self) -> u16 {
        self.how.status
    }
}

/// What the connection tells about a request, for its context keys.
#[derive(Debug, Clone, Copy)]
pub struct Connection<'a> {
    /// The client's address (`aws:SourceIp`).
    pub source_ip: &'a str,
    /// Whether it came over TLS (`aws:SecureTransport`).
    pub secure: bool,
}

/// The context keys every request carries.
pub fn base_context(caller: &Caller, conn: &Connection<'_>) -> Context {
    Context::new()
        .with_time(std::time::SystemTime::now())
        .with("aws:SourceIp", conn.source_ip)
        .with("aws:SecureTransport", if conn.secure { "true" } else { "false" })
        .with("aws:RequestedRegion", &caller.region)
}

/// Authorizes `action` for `caller`: Ok when allowed (always for the account's root user,
/// whom only an explicit deny stops and Nimbus writes none for), else the service's
/// AccessDenied answer.
pub async fn authorize(state: &AppState, caller: &Caller, action: &Action, conn: &Connection<'_>) -> Result<(), Box<http::Response<Body>>> {
    let principal = state.iam.policy_principal(&caller.principal);
    if principal.kind == PrincipalType::Root {
        return Ok(());
    }
    let scope = Scope { account: &caller.principal.account, region: &state.control.partition().region, principal: &caller.principal.arn };
    let Some(target) = action.target(&scope) else { return Ok(()) };
    let identity = state.iam.identity_policies(&caller.principal.arn);
    let identity: Vec<&Policy> = identity.iter().map(Arc::as_ref).collect();
    let resource = resource_policy(state, &target.resource).await;
    let mut context = base_context(caller, conn);
    for (k, v) in &target.context {
        context.set(k, vec![v.clone()]);
    }
    let shown = spelled(action, target.action);
    let request = Request { principal: &principal, action: &shown, resource: &target.resource, context: &context };
    let session = caller.session_policy.as_deref().map(|p| state.iam.session_policy(p));
    let policies = Policies { identity: &identity, resource: resource.as_ref(), session: session.as_deref(), boundary: None };
    let evaluation = evaluate(&request, &policies);
    if evaluation.allowed() {
        return Ok(());
    }
    let Some(how) = denial(action) else { return Ok(()) };
    let message = evaluation.message(&request).to_string();
    tracing::info!(principal = %principal.arn, action = %shown, resource = %target.resource, "access denied");
    let request_id = uuid::Uuid::new_v4().to_string();
    let denied = Denied { how: &how, message };
    Err(Box::new(encode::error(how.service, how.protocol, &denied, &request_id).map(Body::from)))
}

/// The resource-based policy of the resource `arn` names, if it has one: a function's
/// (per qualifier), a queue's, a topic's, a key's.
pub async fn resource_policy(state: &AppState, arn: &str) -> Option<Policy> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(_partition), Some(service)) = (parts.next(), parts.next(), parts.next()) else { return None };
    let text = match service {
        "lambda" => crate::lambda::function_policy(state, arn).await?,
        _ => return None,
    };
    Policy::parse(&text, Kind::Resource).map_err(|e| tracing::warn!("{arn}: stored resource policy does not parse: {e}")).ok()
}

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
            Action::Ec2(r) => r.target(scope),
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
    /// What the service says before IAM's sentence (EC2: "You are not authorized to
    /// perform this operation.").
    preface: &'static str,
}

fn denial(action: &Action) -> Option<Denial> {
    let d = |service, protocol, code, query_code, status| Some(Denial { service, protocol, code, query_code, status, preface: "" });
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
        Action::Ec2(_) => Some(Denial {
            preface: "You are not authorized to perform this operation. ",
            ..d(&nimbus_protocol::EC2, Protocol::Ec2, "UnauthorizedOperation", "UnauthorizedOperation", 403)?
        }),
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
    let policies = Policies { identity: &identity, resource: resource.as_ref(), session: None, boundary: None };
    let evaluation = evaluate(&request, &policies);
    if evaluation.allowed() {
        return Ok(());
    }
    let Some(how) = denial(action) else { return Ok(()) };
    let message = format!("{}{}", how.preface, evaluation.message(&request));
    tracing::info!(principal = %principal.arn, action = %shown, resource = %target.resource, "access denied");
    let request_id = uuid::Uuid::new_v4().to_string();
    let denied = Denied { how: &how, message };
    Err(Box::new(encode::error(how.service, how.protocol, &denied, &request_id).map(Body::from)))
}

/// Who asks, for a decision outside the API edge.
pub enum Who<'a> {
    /// A signed caller.
    Caller(&'a Caller),
    /// An unsigned request.
    Anonymous,
}

/// Whether `who` may do `action` on `resource`, with `extra` context keys, against its
/// identity policies (for callers) and the resource's policy; Err carries AWS's denial text.
pub async fn decide(
    state: &AppState,
    who: Who<'_>,
    action: &str,
    resource: &str,
    extra: &[(&str, &str)],
    conn: &Connection<'_>,
) -> Result<(), String> {
    let (principal, identity) = match who {
        Who::Caller(caller) => {
            let p = state.iam.policy_principal(&caller.principal);
            if p.kind == PrincipalType::Root {
                return Ok(());
            }
            (p, state.iam.identity_policies(&caller.principal.arn))
        }
        Who::Anonymous => (nimbus_policy::Principal::anonymous(), Vec::new()),
    };
    let identity: Vec<&Policy> = identity.iter().map(Arc::as_ref).collect();
    let resource_policy = resource_policy(state, resource).await;
    let mut context = Context::new()
        .with_time(std::time::SystemTime::now())
        .with("aws:SourceIp", conn.source_ip)
        .with("aws:SecureTransport", if conn.secure { "true" } else { "false" });
    for (k, v) in extra {
        context.set(k, vec![v.to_string()]);
    }
    let request = Request { principal: &principal, action, resource, context: &context };
    let evaluation = evaluate(&request, &Policies { identity: &identity, resource: resource_policy.as_ref(), ..Policies::default() });
    if evaluation.allowed() {
        Ok(())
    } else {
        Err(evaluation.message(&request).to_string())
    }
}

/// The resource-based policy of the resource `arn` names, if it has one: a function's
/// (per qualifier), a queue's, a topic's, a key's.
pub async fn resource_policy(state: &AppState, arn: &str) -> Option<Policy> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(_partition), Some(service)) = (parts.next(), parts.next(), parts.next()) else { return None };
    let text = match service {
        "lambda" => crate::lambda::function_policy(&state.control, arn).await?,
        _ => return None,
    };
    Policy::parse(&text, Kind::Resource).map_err(|e| tracing::warn!("{arn}: stored resource policy does not parse: {e}")).ok()
}

/// AWS's answer when a function's role does not exist or does not trust Lambda.
const ROLE_NOT_ASSUMABLE: &str = "The role defined for the function cannot be assumed by Lambda.";

/// A function's execution role, when authentication is on: it must exist and its trust policy
/// must let `lambda.amazonaws.com` assume it (else AWS's InvalidParameterValueException), and
/// a caller other than the account's root must be allowed `iam:PassRole` on it.
pub fn check_execution_role(state: &AppState, caller: Option<&Caller>, role_arn: &str) -> Result<(), nimbus_model::ApiError> {
    use nimbus_model::{ApiError, ErrorCode};
    if state.keys.is_none() {
        return Ok(());
    }
    let not_assumable = || ApiError::invalid(ROLE_NOT_ASSUMABLE);
    let name = role_arn.rsplit('/').next().unwrap_or_default();
    let role = state.iam.get_role(name).map_err(|_| not_assumable())?;
    if role.arn != role_arn {
        return Err(not_assumable());
    }
    let trust = state.iam.trust_policy(name).ok_or_else(not_assumable)?;
    let lambda = nimbus_policy::Principal::service("lambda.amazonaws.com");
    let context = Context::new().with_time(std::time::SystemTime::now());
    let assume = Request { principal: &lambda, action: "sts:AssumeRole", resource: role_arn, context: &context };
    if !evaluate(&assume, &Policies { resource: Some(&trust), ..Policies::default() }).allowed() {
        return Err(not_assumable());
    }
    let Some(caller) = caller else { return Ok(()) };
    let principal = state.iam.policy_principal(&caller.principal);
    if principal.kind == PrincipalType::Root {
        return Ok(());
    }
    let identity = state.iam.identity_policies(&caller.principal.arn);
    let identity: Vec<&Policy> = identity.iter().map(Arc::as_ref).collect();
    let context = Context::new().with_time(std::time::SystemTime::now()).with("iam:PassedToService", "lambda.amazonaws.com");
    let pass = Request { principal: &principal, action: "iam:PassRole", resource: role_arn, context: &context };
    let evaluation = evaluate(&pass, &Policies { identity: &identity, ..Policies::default() });
    if evaluation.allowed() {
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::AccessDenied, evaluation.message(&pass).to_string()))
    }
}

/// Whether the AWS service principal `service` (`events.amazonaws.com`, `sns.amazonaws.com`)
/// may invoke the function `function_arn` (qualified or not) for the source `source_arn`
/// (a rule, a topic) of `source_account`: the function's resource policy must allow it, as AWS
/// requires of every trigger that is not an event-source mapping. Err carries the denial.
pub async fn service_may_invoke(
    control: &nimbus_control::ControlPlane,
    service: &str,
    function_arn: &str,
    source_arn: &str,
    source_account: &str,
) -> Result<(), String> {
    // `$LATEST` is the unqualified function's: its policy and its ARN.
    let function_arn = function_arn.strip_suffix(":$LATEST").unwrap_or(function_arn);
    let principal = nimbus_policy::Principal::service(service);
    let text = crate::lambda::function_policy(control, function_arn).await;
    let policy = text.and_then(|t| Policy::parse(&t, Kind::Resource).ok());
    let context =
        Context::new().with_time(std::time::SystemTime::now()).with("aws:SourceArn", source_arn).with("aws:SourceAccount", source_account);
    let request = Request { principal: &principal, action: "lambda:InvokeFunction", resource: function_arn, context: &context };
    let evaluation = evaluate(&request, &Policies { resource: policy.as_ref(), ..Policies::default() });
    if evaluation.allowed() {
        Ok(())
    } else {
        Err(format!("{service} is not allowed to invoke {function_arn} for {source_arn}: no statement of the function's policy allows it"))
    }
}

/// Whether a session of the role `role_arn` (as a function named `function` holds it) may do
/// `action` on `resource`: the role's identity policies and the resource's policy.
pub async fn role_may(state: &AppState, role_arn: &str, function: &str, action: &str, resource: &str) -> bool {
    let session = nimbus_identity::Principal::assumed_role(role_arn, function);
    let principal = state.iam.policy_principal(&session);
    let identity = state.iam.identity_policies(&session.arn);
    let identity: Vec<&Policy> = identity.iter().map(Arc::as_ref).collect();
    let resource_policy = resource_policy(state, resource).await;
    let context = Context::new().with_time(std::time::SystemTime::now()).with("aws:SourceArn", resource);
    let request = Request { principal: &principal, action, resource, context: &context };
    evaluate(&request, &Policies { identity: &identity, resource: resource_policy.as_ref(), ..Policies::default() }).allowed()
}

/// What a function's role must be allowed to send to a target: (IAM action, the operation
/// AWS's messages name, the service they name).
fn send_action(target_arn: &str) -> Option<(&'static str, &'static str, &'static str)> {
    match target_arn.split(':').nth(2)? {
        "sqs" => Some(("sqs:SendMessage", "SendMessage", "SQS")),
        "sns" => Some(("sns:Publish", "Publish", "SNS")),
        "lambda" => Some(("lambda:InvokeFunction", "InvokeFunction", "Lambda")),
        "events" => Some(("events:PutEvents", "PutEvents", "EventBridge")),
        _ => None,
    }
}

/// A dead-letter target (DeadLetterConfig) the function's role must be able to send to, as
/// Lambda checks when it is set.
pub async fn check_dead_letter_target(
    state: &AppState,
    role_arn: &str,
    function: &str,
    target: &str,
) -> Result<(), nimbus_model::ApiError> {
    if state.keys.is_none() || target.is_empty() {
        return Ok(());
    }
    let Some((action, operation, service)) = send_action(target) else { return Ok(()) };
    if role_may(state, role_arn, function, action, target).await {
        return Ok(());
    }
    Err(nimbus_model::ApiError::invalid(format!("The provided execution role does not have permissions to call {operation} on {service}")))
}

/// An asynchronous invocation's destination the function's role must be able to send to.
pub async fn check_destination(state: &AppState, role_arn: &str, function: &str, target: &str) -> Result<(), nimbus_model::ApiError> {
    if state.keys.is_none() || target.is_empty() {
        return Ok(());
    }
    let Some((action, operation, _)) = send_action(target) else { return Ok(()) };
    if role_may(state, role_arn, function, action, target).await {
        return Ok(());
    }
    Err(nimbus_model::ApiError::invalid(format!("The function's execution role does not have permissions to call {operation} on {target}")))
}

/// An SQS event-source mapping: the function's role must be able to receive, delete and read
/// the queue's attributes (what `AWSLambdaSQSQueueExecutionRole` grants), as Lambda checks.
pub async fn check_queue_poller(state: &AppState, role_arn: &str, function: &str, queue_arn: &str) -> Result<(), nimbus_model::ApiError> {
    if state.keys.is_none() || !queue_arn.starts_with("arn:aws:sqs:") {
        return Ok(());
    }
    for (action, operation) in
        [("sqs:ReceiveMessage", "ReceiveMessage"), ("sqs:DeleteMessage", "DeleteMessage"), ("sqs:GetQueueAttributes", "GetQueueAttributes")]
    {
        if !role_may(state, role_arn, function, action, queue_arn).await {
            return Err(nimbus_model::ApiError::invalid(format!(
                "The provided execution role does not have permissions to call {operation} on SQS"
            )));
        }
    }
    Ok(())
}

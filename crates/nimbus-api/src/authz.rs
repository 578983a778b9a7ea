//! Authorization at the edge: after [`crate::auth`] has said who signed a request, this is
//! the one place that decides whether that principal may make the call. Every typed call of
//! every service names its IAM action and resource ([`Target`], from each service module's
//! `target`, its table of AWS's Service Authorization Reference); the principal's identity
//! policies (from IAM), the resource's own policy (a function's, a queue's, a topic's, a
//! key's, a role's trust policy) and the request's context keys are evaluated by
//! `nimbus-policy` as AWS documents it. A KMS key policy and a trust policy are required: they
//! must let the caller in themselves or name the account (delegating to IAM policies). A
//! denial is answered in the service's own shape and words.

use std::sync::Arc;

use nimbus_identity::Caller;
use nimbus_policy::{evaluate, Context, Kind, Policies, Policy, PrincipalType, Request};
use nimbus_protocol::{encode, AwsError, Protocol, Service};

use crate::action::Action;
use crate::response::Body;
use crate::server::AppState;

/// Where a call is made: the account and region its unnamed resources belong to, and the
/// names a target resolves as the services do.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    pub account: &'a str,
    pub region: &'a str,
    /// The caller's ARN (calls on "myself", such as IAM's GetUser without a name).
    pub principal: &'a str,
    pub names: &'a dyn Names,
}

impl std::fmt::Debug for Scope<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope").field("account", &self.account).field("region", &self.region).field("principal", &self.principal).finish()
    }
}

/// What a target needs resolved as the services resolve it: the resource a call acts on is
/// the key an alias names, or the user with its path, not the name the request spells.
pub trait Names: Sync {
    /// The ARN of the KMS key `key_id` names (key id, key ARN, alias name or alias ARN).
    fn kms_key_arn(&self, key_id: &str) -> Option<String>;
    /// The ARN of IAM user `name`, with its path.
    fn iam_user_arn(&self, name: &str) -> Option<String>;
    /// The ARN of IAM role `name`, with its path.
    fn iam_role_arn(&self, name: &str) -> Option<String>;
}

impl Names for AppState {
    fn kms_key_arn(&self, key_id: &str) -> Option<String> {
        self.kms.key_arn_of(key_id)
    }
    fn iam_user_arn(&self, name: &str) -> Option<String> {
        self.iam.user_arn(name)
    }
    fn iam_role_arn(&self, name: &str) -> Option<String> {
        self.iam.role_arn(name)
    }
}

/// What IAM authorizes one call as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `service:Operation` (`lambda:InvokeFunction`), as policies name it.
    pub action: &'static str,
    /// The resource's ARN, or `*` for calls that act on no one resource (ListFunctions).
    pub resource: String,
    /// Context keys the call adds (`lambda:FunctionUrlAuthType`, `kms:EncryptionContextKeys`),
    /// each with its values.
    pub context: Vec<(String, Vec<String>)>,
    /// Further actions on further resources the call needs as well, each evaluated like the
    /// first (KMS's ReEncrypt: `kms:ReEncryptFrom` on the source key and `kms:ReEncryptTo` on
    /// the destination; CreateAlias: the alias and its key; PutEvents: every bus it names).
    pub also: Vec<(&'static str, String)>,
}

impl Target {
    /// `action` on no particular resource.
    pub fn any(action: &'static str) -> Self {
        Target { action, resource: "*".into(), context: Vec::new(), also: Vec::new() }
    }

    /// `action` on `resource`.
    pub fn on(action: &'static str, resource: impl Into<String>) -> Self {
        Target { action, resource: resource.into(), context: Vec::new(), also: Vec::new() }
    }

    /// With the context key `key` set to `value`.
    pub fn with(self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.with_values(key, vec![value.into()])
    }

    /// With the context key `key` set to `values` (a multivalued key such as `aws:TagKeys`;
    /// none leaves the key absent).
    pub fn with_values(mut self, key: impl Into<String>, values: Vec<String>) -> Self {
        if !values.is_empty() {
            self.context.push((key.into(), values));
        }
        self
    }

    /// With `key` set when there is a value.
    pub fn with_some(self, key: impl Into<String>, value: Option<impl Into<String>>) -> Self {
        match value {
            Some(v) => self.with(key, v),
            None => self,
        }
    }

    /// Needing `action` on `resource` too.
    pub fn and(mut self, action: &'static str, resource: impl Into<String>) -> Self {
        self.also.push((action, resource.into()));
        self
    }

    /// With the tag keys (`aws:TagKeys`) and tags (`aws:RequestTag/<key>`) of a request.
    pub fn with_tags<'t>(mut self, tags: impl IntoIterator<Item = (&'t str, &'t str)>) -> Self {
        let mut keys = Vec::new();
        for (k, v) in tags {
            self.context.push((format!("aws:RequestTag/{k}"), vec![v.to_string()]));
            keys.push(k.to_string());
        }
        self.with_values("aws:TagKeys", keys)
    }

    /// Every (action, resource) the call needs, the first one first.
    pub fn checks(&self) -> impl Iterator<Item = (&'static str, &str)> {
        std::iter::once((self.action, self.resource.as_str())).chain(self.also.iter().map(|(a, r)| (*a, r.as_str())))
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
            Action::DynamoDb(r) => r.target(scope),
            Action::DynamoDbStreams(r) => r.target(scope),
            Action::Kinesis(r) => r.target(scope),
            Action::Events(r) => r.target(scope),
            Action::Kms(r) => r.target(scope),
            Action::Organizations(r) => r.target(scope),
            Action::CloudWatch(r) => r.target(scope),
            Action::Sns(r) => r.target(scope),
            Action::Iam(r) => r.target(scope),
            Action::Sts(r) => r.target(scope),
            Action::Ec2(r) => r.target(scope),
            Action::Gateway(r) => r.target(scope),
            Action::S3(r) => r.target(scope),
            Action::Health
            | Action::Status
            | Action::GetCode { .. }
            | Action::Console(_)
            | Action::InvokeFunctionUrl(_)
            | Action::InvokeApi(_) => None,
        }
    }
}

/// How a service words and ships its AccessDenied answer (tests/e2e/data/aws-answers/
/// auth-errors.md, the "9 IAM deny" rows).
struct Denial {
    service: &'static Service,
    protocol: Protocol,
    code: &'static str,
    query_code: &'static str,
    status: u16,
    /// KMS's body says `Message`.
    capital_message: bool,
    /// Whether the message says why (`because no identity-based policy allows …`, `with an
    /// explicit deny in …`); STS's AssumeRole denial does not.
    reason: bool,
    /// What the service says before IAM's sentence (EC2: "You are not authorized to
    /// perform this operation.").
    preface: &'static str,
}

fn denial(action: &Action) -> Option<Denial> {
    let d = |service, protocol, code, query_code, status| {
        Some(Denial { service, protocol, code, query_code, status, capital_message: false, reason: true, preface: "" })
    };
    match action {
        Action::Lambda(_) => d(&nimbus_protocol::LAMBDA, Protocol::RestJson, "AccessDeniedException", "AccessDenied", 403),
        Action::S3(_) => d(&nimbus_protocol::S3, Protocol::RestXml, "AccessDenied", "AccessDenied", 403),
        Action::Gateway(_) => d(&nimbus_protocol::APIGATEWAYV2, Protocol::RestJson, "AccessDeniedException", "AccessDenied", 403),
        Action::Sqs(r) => d(&nimbus_protocol::SQS, r.protocol, "AccessDeniedException", "AccessDenied", 403),
        Action::Sns(_) => d(&nimbus_protocol::SNS, Protocol::AwsQuery, "AuthorizationError", "AuthorizationError", 403),
        Action::Events(_) => d(&nimbus_protocol::EVENTS, Protocol::AwsJson1_1, "AccessDeniedException", "AccessDenied", 400),
        Action::DynamoDb(_) => d(&nimbus_protocol::DYNAMODB, Protocol::AwsJson1_0, "AccessDeniedException", "AccessDenied", 400),
        Action::DynamoDbStreams(_) => {
            d(&nimbus_protocol::DYNAMODBSTREAMS, Protocol::AwsJson1_0, "AccessDeniedException", "AccessDenied", 400)
        }
        Action::Kinesis(_) => d(&nimbus_protocol::KINESIS, Protocol::AwsJson1_1, "AccessDeniedException", "AccessDenied", 400),
        Action::Logs(_) => d(&nimbus_protocol::LOGS, Protocol::AwsJson1_1, "AccessDeniedException", "AccessDenied", 400),
        Action::Kms(_) => d(&nimbus_protocol::KMS, Protocol::AwsJson1_1, "AccessDeniedException", "AccessDenied", 400)
            .map(|d| Denial { capital_message: true, ..d }),
        Action::Iam(_) => d(&nimbus_protocol::IAM, Protocol::AwsQuery, "AccessDenied", "AccessDenied", 403),
        Action::Organizations(_) => d(&nimbus_protocol::ORGANIZATIONS, Protocol::AwsJson1_1, "AccessDeniedException", "AccessDenied", 400)
            .map(|d| Denial { capital_message: true, ..d }),
        Action::CloudWatch(r) => d(&nimbus_protocol::CLOUDWATCH, r.protocol, "AccessDenied", "AccessDenied", 403),
        Action::Sts(_) => {
            d(&nimbus_protocol::STS, Protocol::AwsQuery, "AccessDenied", "AccessDenied", 403).map(|d| Denial { reason: false, ..d })
        }
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
    fn capital_message(&self) -> bool {
        self.how.capital_message
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

/// What KMS's lockout safety check evaluates a new key policy of `owner` for: `caller` of
/// the account `home` and its identity policies.
pub fn lockout(home: &AppState, owner: &AppState, caller: &Caller) -> crate::kms::Lockout {
    let (principal, identity) =
        evaluated(home, &caller.principal).unwrap_or_else(|| (home.iam.policy_principal(&caller.principal), Vec::new()));
    let p = owner.control.partition();
    crate::kms::Lockout { principal, identity, key_arn_prefix: format!("arn:aws:kms:{}:{}:key/", p.region, p.account_id) }
}

/// `principal` as evaluation sees it, with its identity policies; None for the account's
/// root, whom Nimbus allows without evaluating (but for KMS key policies).
fn evaluated(state: &AppState, principal: &nimbus_identity::Principal) -> Option<(nimbus_policy::Principal, Vec<Arc<Policy>>)> {
    let p = state.iam.policy_principal(principal);
    (p.kind != PrincipalType::Root).then(|| (p, state.iam.identity_policies(&principal.arn)))
}

/// The account whose resource `action` acts on: the caller's own (`home`), or another
/// account this server holds when the resource's ARN names it (a cross-account call).
pub fn owner(home: &Arc<AppState>, caller: &Caller, action: &Action) -> Arc<AppState> {
    if !home.accounts.several() {
        return home.clone();
    }
    let scope =
        Scope { account: home.account(), region: &home.control.partition().region, principal: &caller.principal.arn, names: &**home };
    let Some(target) = action.target(&scope) else { return home.clone() };
    match target.resource.split(':').nth(4) {
        Some(account) if account.len() == 12 && account != home.account() => home.accounts.get(account).unwrap_or_else(|| home.clone()),
        _ => home.clone(),
    }
}

/// Authorizes `action` for `caller` of the account `home` on a resource of `owner` (the same
/// account, or another for a cross-account call): Ok when allowed (always for the account's
/// root user in its own account, whom only an explicit deny stops and Nimbus writes none
/// for), else the service's AccessDenied answer.
pub async fn authorize(
    home: &AppState,
    owner: &AppState,
    caller: &Caller,
    action: &Action,
    conn: &Connection<'_>,
) -> Result<(), Box<http::Response<Body>>> {
    let cross_account = home.account() != owner.account();
    let (principal, identity) = match evaluated(home, &caller.principal) {
        Some(evaluated) => evaluated,
        // Root is evaluated only where a resource policy binds it too: another account's
        // resource, or a KMS key (whose policy must name the account, as on AWS).
        None if cross_account || matches!(action, Action::Kms(_)) => (home.iam.policy_principal(&caller.principal), Vec::new()),
        None => return Ok(()),
    };
    let state = owner;
    let scope = Scope {
        account: &caller.principal.account,
        region: &state.control.partition().region,
        principal: &caller.principal.arn,
        names: home,
    };
    let Some(target) = action.target(&scope) else { return Ok(()) };
    let identity: Vec<&Policy> = identity.iter().map(Arc::as_ref).collect();
    let mut context = base_context(caller, conn);
    for (k, v) in &target.context {
        context.set(k, v.clone());
    }
    let session = caller.session_policy.as_deref().map(|p| home.iam.session_policy(p));
    for (iam_action, resource) in target.checks() {
        let on_resource = resource_policy(state, iam_action, resource).await;
        let shown = spelled(action, iam_action);
        let request = Request { principal: &principal, action: &shown, resource, context: &context };
        let policies = Policies {
            identity: &identity,
            resource: on_resource.policy.as_deref(),
            session: session.as_deref(),
            boundary: None,
            resource_required: on_resource.required,
            cross_account,
        };
        let evaluation = evaluate(&request, &policies);
        if evaluation.allowed() {
            continue;
        }
        let Some(how) = denial(action) else { return Ok(()) };
        let message = if how.reason {
            format!("{}{}", how.preface, evaluation.message(&request))
        } else {
            format!("User: {} is not authorized to perform: {shown} on resource: {resource}", principal.arn)
        };
        tracing::info!(principal = %principal.arn, action = %shown, resource = %resource, "access denied");
        let request_id = uuid::Uuid::new_v4().to_string();
        let denied = Denied { how: &how, message };
        return Err(Box::new(encode::error(how.service, how.protocol, &denied, &request_id).map(Body::from)));
    }
    Ok(())
}

/// A resource's own policy, as evaluation takes it.
#[derive(Debug, Default)]
pub struct ResourcePolicy {
    pub policy: Option<Arc<Policy>>,
    /// It must allow (or delegate to IAM) for anything to be allowed: a KMS key's policy, a
    /// role's trust policy.
    pub required: bool,
}

/// The resource-based policy that applies to `action` on the resource `arn` names: a
/// function's (per qualifier), a queue's, a topic's (its own or SNS's default), a KMS key's
/// (its own or KMS's default; required), a role's trust policy for `sts:AssumeRole`
/// (required, even when the role does not exist).
pub async fn resource_policy(state: &AppState, action: &str, arn: &str) -> ResourcePolicy {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ["arn", _partition, service, region, account, resource] = parts.as_slice() else { return ResourcePolicy::default() };
    let ours = state.control.partition();
    let here = *region == ours.region && *account == ours.account_id;
    let (text, required) = match *service {
        "lambda" => (crate::lambda::function_policy(&state.control, arn).await, false),
        "sqs" if here => (state.queues.queue_policy(resource).await, false),
        "sns" => (state.topics.topic_policy(arn), false),
        "kms" if resource.starts_with("key/") => match state.kms.key_policy(arn) {
            Ok(text) => (Some(text), true),
            // No such key: the service answers NotFoundException to whoever IAM lets ask.
            Err(_) => (None, false),
        },
        // A bucket's policy (S3's ARNs name neither region nor account: the bucket is this
        // account's when its store has it).
        "s3" => {
            let bucket = resource.split('/').next().unwrap_or_default();
            (state.objects.bucket_setting(bucket, "policy").await.ok().flatten(), false)
        }
        "iam" if action.eq_ignore_ascii_case("sts:AssumeRole") => {
            return ResourcePolicy { policy: state.iam.trust_policy_at(arn).map(Arc::new), required: true };
        }
        _ => (None, false),
    };
    let policy = text.and_then(|text| parsed(arn, text));
    ResourcePolicy { policy, required }
}

/// `text` parsed as a resource policy, from a cache of the documents parsed lately: a
/// resource's policy is read on every call that touches it, and parsing costs tens of µs.
fn parsed(arn: &str, text: String) -> Option<Arc<Policy>> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    /// Documents kept; past it the cache starts over.
    const KEPT: usize = 1024;
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Policy>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(p) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&text) {
        return Some(p.clone());
    }
    let policy = Arc::new(
        Policy::parse(&text, Kind::Resource).map_err(|e| tracing::warn!("{arn}: stored resource policy does not parse: {e}")).ok()?,
    );
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    if cache.len() >= KEPT {
        cache.clear();
    }
    cache.insert(text, policy.clone());
    Some(policy)
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
        Who::Caller(caller) => match evaluated(state, &caller.principal) {
            Some(evaluated) => evaluated,
            None => return Ok(()),
        },
        Who::Anonymous => (nimbus_policy::Principal::anonymous(), Vec::new()),
    };
    let identity: Vec<&Policy> = identity.iter().map(Arc::as_ref).collect();
    let on_resource = resource_policy(state, action, resource).await;
    let mut context = Context::new()
        .with_time(std::time::SystemTime::now())
        .with("aws:SourceIp", conn.source_ip)
        .with("aws:SecureTransport", if conn.secure { "true" } else { "false" });
    for (k, v) in extra {
        context.set(k, vec![v.to_string()]);
    }
    let request = Request { principal: &principal, action, resource, context: &context };
    let policies = Policies {
        identity: &identity,
        resource: on_resource.policy.as_deref(),
        resource_required: on_resource.required,
        ..Policies::default()
    };
    let evaluation = evaluate(&request, &policies);
    if evaluation.allowed() {
        Ok(())
    } else {
        Err(evaluation.message(&request).to_string())
    }
}

/// Whether `caller` of the account `home` may do `action` on `resource` of the account
/// `owner` (the same, or another this server holds) when a service does it for the caller
/// with the caller's own permissions, as AWS's forward access sessions do (Lambda reading a
/// deployment package from S3): the caller's identity and session policies and the
/// resource's own policy decide (both must allow across accounts), with `aws:ViaAWSService`
/// true and no `aws:SourceIp` (the service makes the request); the account's root always may
/// in its own account. Err carries the denial as IAM words it.
pub async fn caller_may(home: &AppState, owner: &AppState, caller: &Caller, action: &str, resource: &str) -> Result<(), String> {
    let cross_account = home.account() != owner.account();
    let (principal, identity) = match evaluated(home, &caller.principal) {
        Some(evaluated) => evaluated,
        None if cross_account => (home.iam.policy_principal(&caller.principal), Vec::new()),
        None => return Ok(()),
    };
    let identity: Vec<&Policy> = identity.iter().map(Arc::as_ref).collect();
    let session = caller.session_policy.as_deref().map(|p| home.iam.session_policy(p));
    let on_resource = resource_policy(owner, action, resource).await;
    let context = Context::new()
        .with_time(std::time::SystemTime::now())
        .with("aws:RequestedRegion", &caller.region)
        .with("aws:ViaAWSService", "true");
    let request = Request { principal: &principal, action, resource, context: &context };
    let policies = Policies {
        identity: &identity,
        resource: on_resource.policy.as_deref(),
        session: session.as_deref(),
        boundary: None,
        resource_required: on_resource.required,
        cross_account,
    };
    let evaluation = evaluate(&request, &policies);
    if evaluation.allowed() {
        Ok(())
    } else {
        Err(evaluation.message(&request).to_string())
    }
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
    let Some((principal, identity)) = caller.and_then(|c| evaluated(state, &c.principal)) else { return Ok(()) };
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
    let policy = text.and_then(|t| parsed(function_arn, t));
    let context =
        Context::new().with_time(std::time::SystemTime::now()).with("aws:SourceArn", source_arn).with("aws:SourceAccount", source_account);
    let request = Request { principal: &principal, action: "lambda:InvokeFunction", resource: function_arn, context: &context };
    let evaluation = evaluate(&request, &Policies { resource: policy.as_deref(), ..Policies::default() });
    if evaluation.allowed() {
        Ok(())
    } else {
        Err(format!("{service} is not allowed to invoke {function_arn} for {source_arn}: no statement of the function's policy allows it"))
    }
}

/// Whether the AWS service principal `service` (`s3.amazonaws.com`) may do `action` on the
/// resource `arn` (a function, a queue, a topic of this account) for the source `source_arn`
/// of `source_account`, by that resource's own policy (a topic's default one lets only its
/// account in, as on AWS). Err carries why not.
pub async fn service_may(
    state: &AppState,
    service: &str,
    action: &str,
    arn: &str,
    source_arn: &str,
    source_account: &str,
) -> Result<(), String> {
    let arn = arn.strip_suffix(":$LATEST").unwrap_or(arn);
    let policy = resource_policy(state, action, arn).await.policy;
    let principal = nimbus_policy::Principal::service(service);
    let context =
        Context::new().with_time(std::time::SystemTime::now()).with("aws:SourceArn", source_arn).with("aws:SourceAccount", source_account);
    let request = Request { principal: &principal, action, resource: arn, context: &context };
    if evaluate(&request, &Policies { resource: policy.as_deref(), ..Policies::default() }).allowed() {
        Ok(())
    } else {
        Err(format!("{service} may not {action} on {arn} for {source_arn}: no statement of its policy allows it"))
    }
}

/// Whether the AWS service principal `service` (`sns.amazonaws.com`) may send to the queue
/// `queue_arn`, whose `Policy` is `policy`, for the source `source_arn` (a topic) of
/// `source_account`: the policy must allow `sqs:SendMessage`, as AWS requires of topics that
/// deliver to queues. Err carries why not.
pub fn service_may_send(
    policy: Option<String>,
    service: &str,
    queue_arn: &str,
    source_arn: &str,
    source_account: &str,
) -> Result<(), String> {
    let principal = nimbus_policy::Principal::service(service);
    let policy = policy.and_then(|t| parsed(queue_arn, t));
    let context =
        Context::new().with_time(std::time::SystemTime::now()).with("aws:SourceArn", source_arn).with("aws:SourceAccount", source_account);
    let request = Request { principal: &principal, action: "sqs:SendMessage", resource: queue_arn, context: &context };
    if evaluate(&request, &Policies { resource: policy.as_deref(), ..Policies::default() }).allowed() {
        Ok(())
    } else {
        Err(format!("{service} is not allowed to send to {queue_arn} for {source_arn}: no statement of the queue's policy allows it"))
    }
}

/// Whether a session of the role `role_arn` (as a function named `function` holds it) may do
/// `action` on `resource`: the role's identity policies and the resource's policy.
pub async fn role_may(state: &AppState, role_arn: &str, function: &str, action: &str, resource: &str) -> bool {
    let session = nimbus_identity::Principal::assumed_role(role_arn, function);
    let Some((principal, identity)) = evaluated(state, &session) else { return true };
    let identity: Vec<&Policy> = identity.iter().map(Arc::as_ref).collect();
    let on_resource = resource_policy(state, action, resource).await;
    let context = Context::new().with_time(std::time::SystemTime::now()).with("aws:SourceArn", resource);
    let request = Request { principal: &principal, action, resource, context: &context };
    let policies = Policies {
        identity: &identity,
        resource: on_resource.policy.as_deref(),
        resource_required: on_resource.required,
        ..Policies::default()
    };
    evaluate(&request, &policies).allowed()
}

/// What a function's role must be allowed to send to a target: (IAM action, the operation
/// AWS's messages name, the service they name).
fn send_action(target_arn: &str) -> Option<(&'static str, &'static str, &'static str)> {
    match target_arn.split(':').nth(2)? {
        "sqs" => Some(("sqs:SendMessage", "SendMessage", "SQS")),
        "sns" => Some(("sns:Publish", "Publish", "SNS")),
        "lambda" => Some(("lambda:InvokeFunction", "InvokeFunction", "Lambda")),
        "events" => Some(("events:PutEvents", "PutEvents", "EventBridge")),
        "s3" => Some(("s3:PutObject", "PutObject", "S3")),
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
    check_send(state, role_arn, function, target, |operation, service| {
        format!("The provided execution role does not have permissions to call {operation} on {service}")
    })
    .await
}

/// A stream mapping's OnFailure destination (a queue, a topic or a bucket) the function's
/// role must be able to write to, as Lambda checks when the mapping is made or changed. A
/// bucket is checked for the objects Lambda writes there (`aws/lambda/…`).
pub async fn check_mapping_destination(
    state: &AppState,
    role_arn: &str,
    function: &str,
    target: &str,
) -> Result<(), nimbus_model::ApiError> {
    let resource = if target.starts_with("arn:aws:s3:::") { format!("{target}/aws/lambda/*") } else { target.to_string() };
    check_send(state, role_arn, function, &resource, |operation, service| {
        format!("The provided execution role does not have permissions to call {operation} on {service}")
    })
    .await
}

/// An asynchronous invocation's destination the function's role must be able to send to.
pub async fn check_destination(state: &AppState, role_arn: &str, function: &str, target: &str) -> Result<(), nimbus_model::ApiError> {
    check_send(state, role_arn, function, target, |operation, _| {
        format!("The function's execution role does not have permissions to call {operation} on {target}")
    })
    .await
}

/// Whether the role may send to `target` (when authentication is on); `refusal(operation,
/// service)` words the InvalidParameterValueException otherwise.
async fn check_send(
    state: &AppState,
    role_arn: &str,
    function: &str,
    target: &str,
    refusal: impl FnOnce(&str, &str) -> String,
) -> Result<(), nimbus_model::ApiError> {
    if state.keys.is_none() || target.is_empty() {
        return Ok(());
    }
    let Some((action, operation, service)) = send_action(target) else { return Ok(()) };
    if role_may(state, role_arn, function, action, target).await {
        return Ok(());
    }
    Err(nimbus_model::ApiError::invalid(refusal(operation, service)))
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

/// A Kinesis or DynamoDB stream event-source mapping: the function's role must be able to read
/// the stream (what `AWSLambdaKinesisExecutionRole` / `AWSLambdaDynamoDBExecutionRole` grant),
/// as Lambda checks at creation. AWS's answer names the stream (seen in users' reports of
/// CreateEventSourceMapping, e.g. aws-samples/lambda-refarch-webapp#7 for DynamoDB and
/// alertlogic/cwe-collector#2 for Kinesis).
pub async fn check_stream_poller(state: &AppState, role_arn: &str, function: &str, stream_arn: &str) -> Result<(), nimbus_model::ApiError> {
    if state.keys.is_none() {
        return Ok(());
    }
    let actions: &[&str] = match stream_arn.split(':').nth(2) {
        Some("kinesis") => &["kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:DescribeStream", "kinesis:ListShards"],
        Some("dynamodb") if stream_arn.contains("/stream/") => {
            &["dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:DescribeStream", "dynamodb:ListStreams"]
        }
        _ => return Ok(()),
    };
    for action in actions {
        if !role_may(state, role_arn, function, action, stream_arn).await {
            return Err(nimbus_model::ApiError::invalid(stream_refusal(stream_arn)));
        }
    }
    Ok(())
}

/// AWS's words when a stream mapping's role cannot read the stream.
pub fn stream_refusal(stream_arn: &str) -> String {
    format!(
        "Cannot access stream {stream_arn}. Please ensure the role can perform the GetRecords, GetShardIterator, DescribeStream, and ListStreams Actions on your stream in IAM."
    )
}

/// For the per-service tables: requests parsed as the server parses them, in a scope whose
/// names are known.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::action::RawRequest;
    use bytes::Bytes;
    use http::{HeaderMap, HeaderValue, Method};

    pub const ACCOUNT: &str = "123456789012";
    pub const CALLER: &str = "arn:aws:iam::123456789012:user/me";
    /// The key `alias/app` names.
    pub const KEY_ID: &str = "0b9d2d8e-6f1c-4c38-9a53-3c1b3f7a2e11";
    pub const KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/0b9d2d8e-6f1c-4c38-9a53-3c1b3f7a2e11";

    /// One alias (`alias/app` → [`KEY`]), user `ann` at path `/team/`, role `deployer` at
    /// path `/ci/`.
    pub struct Known;

    impl Names for Known {
        fn kms_key_arn(&self, key_id: &str) -> Option<String> {
            let alias_arn = format!("arn:aws:kms:us-east-1:{ACCOUNT}:alias/app");
            [KEY_ID, KEY, "alias/app", alias_arn.as_str()].contains(&key_id).then(|| KEY.to_string())
        }
        fn iam_user_arn(&self, name: &str) -> Option<String> {
            (name == "ann").then(|| format!("arn:aws:iam::{ACCOUNT}:user/team/ann"))
        }
        fn iam_role_arn(&self, name: &str) -> Option<String> {
            (name == "deployer").then(|| format!("arn:aws:iam::{ACCOUNT}:role/ci/deployer"))
        }
    }

    pub fn scope() -> Scope<'static> {
        Scope { account: ACCOUNT, region: "us-east-1", principal: CALLER, names: &Known }
    }

    fn parse(method: Method, path: &str, headers: &[(&'static str, &str)], body: &str) -> Action {
        let mut map = HeaderMap::new();
        map.insert("host", HeaderValue::from_static("localhost:9001"));
        for (k, v) in headers {
            map.insert(*k, HeaderValue::from_str(v).expect("header"));
        }
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        let req = RawRequest::for_test(&method, path, query, &map, Bytes::from(body.to_string()));
        crate::action::parse(req).expect("a request of a service")
    }

    /// An awsJson request (`X-Amz-Target: <target>`).
    pub fn json(target: &str, body: &str) -> Action {
        parse(Method::POST, "/", &[("x-amz-target", target), ("content-type", "application/x-amz-json-1.1")], body)
    }

    /// A query-protocol form post to `path`.
    pub fn form_at(path: &str, body: &str) -> Action {
        parse(Method::POST, path, &[("content-type", "application/x-www-form-urlencoded; charset=utf-8")], body)
    }

    /// A query-protocol form post to `/`.
    pub fn form(body: &str) -> Action {
        form_at("/", body)
    }

    /// A rest-json request.
    pub fn rest(method: Method, path: &str, body: &str) -> Action {
        parse(method, path, &[("content-type", "application/json")], body)
    }

    /// Checks each request's action and resource.
    pub fn check(cases: Vec<(Action, &str, &str)>) {
        for (action, want_action, want_resource) in cases {
            let t = action.target(&scope()).unwrap_or_else(|| panic!("{action:?} has a target"));
            assert_eq!((t.action, t.resource.as_str()), (want_action, want_resource), "{action:?}");
        }
    }

    /// The target of `action`.
    pub fn target(action: &Action) -> Target {
        action.target(&scope()).unwrap_or_else(|| panic!("{action:?} has a target"))
    }

    /// The values of context key `key` in `t`.
    pub fn context<'t>(t: &'t Target, key: &str) -> Option<&'t [String]> {
        t.context.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_slice())
    }
}

//! IAM and STS on the wire: recognises their query-protocol requests (form posts to `/` with
//! `Version=2010-05-08` for IAM, `Version=2011-06-15` for STS), decodes them into typed
//! [`IamCall`]s and [`StsCall`]s for `nimbus-iam`, and answers with their XML documents and
//! `<ErrorResponse>` errors. The authenticated caller (from `auth::check`) is what GetUser
//! without a name, the access-key calls without a user, and STS answer about.

use bytes::Bytes;
use http::Response;
use nimbus_iam::{AssumeRoleInput, IamError, IamService, Owner, Scope};
use nimbus_identity::{Caller, Principal};
use nimbus_protocol::{calls, decode, encode, AwsError, DecodeError, Protocol, Service, IAM, STS};
use serde::{Deserialize, Serialize};

use crate::action::RawRequest;
use crate::response::Body;

mod target;

const IAM_VERSION: &str = "2010-05-08";
const STS_VERSION: &str = "2011-06-15";

calls! {
    iam "iam";
    /// Every IAM operation Nimbus serves, with its typed input (as IAM's model names it).
    pub enum IamCall {
        CreateUser(CreateUserInput),
        GetUser(OptionalUserInput),
        ListUsers(PathPrefixInput),
        DeleteUser(UserInput),
        CreateAccessKey(OptionalUserInput),
        ListAccessKeys(OptionalUserInput),
        UpdateAccessKey(UpdateAccessKeyInput),
        DeleteAccessKey(AccessKeyInput),
        CreateRole(CreateRoleInput),
        GetRole(RoleInput),
        ListRoles(PathPrefixInput),
        DeleteRole(RoleInput),
        UpdateAssumeRolePolicy(RolePolicyDocumentInput),
        PutRolePolicy(PutRolePolicyInput),
        GetRolePolicy(RolePolicyInput),
        DeleteRolePolicy(RolePolicyInput),
        ListRolePolicies(RoleInput),
        PutUserPolicy(PutUserPolicyInput),
        GetUserPolicy(UserPolicyInput),
        DeleteUserPolicy(UserPolicyInput),
        ListUserPolicies(UserInput),
        CreatePolicy(CreatePolicyInput),
        GetPolicy(PolicyArnInput),
        GetPolicyVersion(PolicyVersionInput),
        DeletePolicy(PolicyArnInput),
        ListPolicies(ListPoliciesInput),
        AttachRolePolicy(RoleAttachInput),
        DetachRolePolicy(RoleAttachInput),
        ListAttachedRolePolicies(RoleInput),
        AttachUserPolicy(UserAttachInput),
        DetachUserPolicy(UserAttachInput),
        ListAttachedUserPolicies(UserInput),
    }
}

calls! {
    iam "sts";
    /// Every STS operation Nimbus serves.
    pub enum StsCall {
        GetCallerIdentity(EmptyInput),
        AssumeRole(AssumeRoleWire),
        GetSessionToken(GetSessionTokenInput),
    }
}

/// One IAM request: the operation and its decoded call (or the error IAM would answer).
#[derive(Debug)]
pub struct IamRequest {
    pub operation: &'static str,
    pub call: Result<IamCall, IamError>,
}

/// One STS request.
#[derive(Debug)]
pub struct StsRequest {
    pub operation: &'static str,
    pub call: Result<StsCall, IamError>,
}

impl IamRequest {
    /// The IAM action name (`iam:CreateUser`).
    pub fn name(&self) -> &'static str {
        IamCall::iam_action(self.operation).unwrap_or("iam:Unknown")
    }
}

impl StsRequest {
    /// The IAM action name (`sts:AssumeRole`).
    pub fn name(&self) -> &'static str {
        StsCall::iam_action(self.operation).unwrap_or("sts:Unknown")
    }
}

// ---- typed inputs ---------------------------------------------------------------------

#[derive(Debug, Deserialize)]
pub struct EmptyInput {}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateUserInput {
    user_name: String,
    path: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OptionalUserInput {
    user_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UserInput {
    user_name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PathPrefixInput {
    path_prefix: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateAccessKeyInput {
    user_name: Option<String>,
    access_key_id: String,
    status: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccessKeyInput {
    user_name: Option<String>,
    access_key_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateRoleInput {
    role_name: String,
    path: Option<String>,
    assume_role_policy_document: String,
    description: Option<String>,
    max_session_duration: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RoleInput {
    role_name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RolePolicyDocumentInput {
    role_name: String,
    policy_document: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRolePolicyInput {
    role_name: String,
    policy_name: String,
    policy_document: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RolePolicyInput {
    role_name: String,
    policy_name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutUserPolicyInput {
    user_name: String,
    policy_name: String,
    policy_document: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UserPolicyInput {
    user_name: String,
    policy_name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreatePolicyInput {
    policy_name: String,
    path: Option<String>,
    policy_document: String,
    description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyArnInput {
    policy_arn: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyVersionInput {
    policy_arn: String,
    version_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListPoliciesInput {
    scope: Option<String>,
    #[serde(default)]
    only_attached: bool,
    path_prefix: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RoleAttachInput {
    role_name: String,
    policy_arn: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UserAttachInput {
    user_name: String,
    policy_arn: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AssumeRoleWire {
    role_arn: String,
    role_session_name: String,
    duration_seconds: Option<i64>,
    external_id: Option<String>,
    policy: Option<String>,
    #[serde(default)]
    policy_arns: Vec<PolicyDescriptor>,
}

/// `PolicyDescriptorType`: a managed session policy, by ARN.
#[derive(Debug, Deserialize)]
pub struct PolicyDescriptor {
    arn: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetSessionTokenInput {
    duration_seconds: Option<i64>,
}

// ---- typed outputs --------------------------------------------------------------------

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct UserOutput {
    user: nimbus_iam::UserInfo,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListUsersOutput {
    users: Vec<nimbus_iam::UserInfo>,
    is_truncated: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct CreateAccessKeyOutput {
    access_key: nimbus_iam::NewAccessKey,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListAccessKeysOutput {
    access_key_metadata: Vec<nimbus_iam::AccessKeyInfo>,
    is_truncated: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RoleOutput {
    role: nimbus_iam::RoleInfo,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListRolesOutput {
    roles: Vec<nimbus_iam::RoleInfo>,
    is_truncated: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GetRolePolicyOutput {
    role_name: String,
    policy_name: String,
    policy_document: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GetUserPolicyOutput {
    user_name: String,
    policy_name: String,
    policy_document: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PolicyNamesOutput {
    policy_names: Vec<String>,
    is_truncated: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PolicyOutput {
    policy: nimbus_iam::PolicyInfo,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PolicyVersionOutput {
    policy_version: nimbus_iam::PolicyVersionInfo,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListPoliciesOutput {
    policies: Vec<nimbus_iam::PolicyInfo>,
    is_truncated: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct AttachedPoliciesOutput {
    attached_policies: Vec<nimbus_iam::AttachedPolicy>,
    is_truncated: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SessionTokenOutput {
    credentials: nimbus_iam::Credentials,
}

// ---- errors ---------------------------------------------------------------------------

/// An IAM/STS error as the wire sees it.
struct WireError(IamError);

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl AwsError for WireError {
    fn code(&self) -> &str {
        self.0.code()
    }
    fn status(&self) -> u16 {
        self.0.status()
    }
}

/// IAM's answer to a request that does not fit the operation's input shape (AWS's
/// validation message, the member in lowerCamelCase).
fn decode_error(e: DecodeError) -> IamError {
    let camel = |s: &str| {
        let mut c = s.chars();
        c.next().map(|f| f.to_ascii_lowercase().to_string() + c.as_str()).unwrap_or_default()
    };
    match e {
        DecodeError::Missing { member } => IamError::Validation(format!(
            "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
            camel(&member)
        )),
        DecodeError::Type { member, value, expected } | DecodeError::Binding { member, value, expected } => IamError::Validation(format!(
            "1 validation error detected: Value '{value}' at '{}' failed to satisfy constraint: Member must be {expected}",
            camel(&member)
        )),
        DecodeError::Malformed(m) | DecodeError::Shape(m) => IamError::Validation(m),
    }
}

// ---- recognising and decoding -------------------------------------------------------

/// An IAM or STS request.
#[derive(Debug)]
pub enum Recognized {
    Iam(IamRequest),
    Sts(StsRequest),
}

fn decode_call<C>(
    service: &Service,
    served: &'static [&'static str],
    version: &str,
    action: &str,
    params: &[(String, String)],
    decode_op: fn(&str, nimbus_protocol::Input) -> Option<Result<C, DecodeError>>,
) -> (&'static str, Result<C, IamError>) {
    let Some(operation) = served.iter().copied().find(|op| *op == action) else {
        let message = if service.model().operation(action).is_some() {
            format!("Nimbus does not serve {action} yet")
        } else {
            format!("Could not find operation {action} for version {version}")
        };
        return ("Unknown", Err(IamError::InvalidAction(message)));
    };
    let call = decode::query(service.model(), operation, params)
        .and_then(|input| decode_op(operation, input).expect("every listed operation is served"))
        .map_err(decode_error);
    (operation, call)
}

/// Returns the IAM or STS request `req` carries, or `None` when it is not one.
pub fn recognize(req: &RawRequest<'_>) -> Option<Recognized> {
    if req.headers.contains_key("x-amz-target") || !matches!(req.path, "" | "/") {
        return None;
    }
    let params = crate::action::query_protocol_params(req, crate::action::is_form(req));
    let version = params.iter().rev().find(|(k, _)| k == "Version").map(|(_, v)| v.clone())?;
    if version != IAM_VERSION && version != STS_VERSION {
        return None;
    }
    let action = params.iter().rev().find(|(k, _)| k == "Action").map(|(_, v)| v.clone())?;
    Some(if version == IAM_VERSION {
        let (operation, call) = decode_call(&IAM, IamCall::OPERATIONS, IAM_VERSION, &action, &params, IamCall::decode);
        Recognized::Iam(IamRequest { operation, call })
    } else {
        let (operation, call) = decode_call(&STS, StsCall::OPERATIONS, STS_VERSION, &action, &params, StsCall::decode);
        Recognized::Sts(StsRequest { operation, call })
    })
}

// ---- running ----------------------------------------------------------------------------

struct Out<'a> {
    service: &'static Service,
    operation: &'a str,
    request_id: &'a str,
}

impl Out<'_> {
    fn typed<T: Serialize>(&self, output: &T) -> Response<Bytes> {
        encode::output(self.service, Protocol::AwsQuery, self.operation, output, self.request_id)
    }
    fn empty(&self) -> Response<Bytes> {
        encode::empty(self.service, Protocol::AwsQuery, self.operation, self.request_id)
    }
}

fn scope(s: Option<&str>) -> Result<Scope, IamError> {
    match s {
        None | Some("All") => Ok(Scope::All),
        Some("AWS") => Ok(Scope::Aws),
        Some("Local") => Ok(Scope::Local),
        Some(v) => Err(IamError::Validation(format!(
            "1 validation error detected: Value '{v}' at 'scope' failed to satisfy constraint: Member must satisfy enum value set: [All, AWS, Local]"
        ))),
    }
}

async fn run_iam(svc: &std::sync::Arc<IamService>, call: IamCall, caller: &Principal, out: &Out<'_>) -> Result<Response<Bytes>, IamError> {
    use IamCall::*;
    Ok(match call {
        CreateUser(i) => out.typed(&UserOutput { user: svc.create_user(i.user_name, i.path).await? }),
        GetUser(i) => out.typed(&UserOutput { user: svc.get_user(i.user_name.as_deref(), caller)? }),
        ListUsers(i) => out.typed(&ListUsersOutput { users: svc.list_users(i.path_prefix.as_deref()), is_truncated: false }),
        DeleteUser(i) => {
            svc.delete_user(i.user_name).await?;
            out.empty()
        }
        CreateAccessKey(i) => out.typed(&CreateAccessKeyOutput { access_key: svc.create_access_key(i.user_name, caller).await? }),
        ListAccessKeys(i) => {
            out.typed(&ListAccessKeysOutput { access_key_metadata: svc.list_access_keys(i.user_name, caller)?, is_truncated: false })
        }
        UpdateAccessKey(i) => {
            svc.update_access_key(i.user_name, i.access_key_id, &i.status, caller).await?;
            out.empty()
        }
        DeleteAccessKey(i) => {
            svc.delete_access_key(i.user_name, i.access_key_id, caller).await?;
            out.empty()
        }
        CreateRole(i) => out.typed(&RoleOutput {
            role: svc.create_role(i.role_name, i.path, i.assume_role_policy_document, i.description, i.max_session_duration).await?,
        }),
        GetRole(i) => out.typed(&RoleOutput { role: svc.get_role(&i.role_name)? }),
        ListRoles(i) => out.typed(&ListRolesOutput { roles: svc.list_roles(i.path_prefix.as_deref()), is_truncated: false }),
        DeleteRole(i) => {
            svc.delete_role(i.role_name).await?;
            out.empty()
        }
        UpdateAssumeRolePolicy(i) => {
            svc.update_assume_role_policy(i.role_name, i.policy_document).await?;
            out.empty()
        }
        PutRolePolicy(i) => {
            svc.put_inline_policy(Owner::Role, i.role_name, i.policy_name, i.policy_document).await?;
            out.empty()
        }
        GetRolePolicy(i) => {
            let p = svc.get_inline_policy(Owner::Role, &i.role_name, &i.policy_name)?;
            out.typed(&GetRolePolicyOutput { role_name: p.owner, policy_name: p.policy_name, policy_document: p.policy_document })
        }
        DeleteRolePolicy(i) => {
            svc.delete_inline_policy(Owner::Role, i.role_name, i.policy_name).await?;
            out.empty()
        }
        ListRolePolicies(i) => {
            out.typed(&PolicyNamesOutput { policy_names: svc.list_inline_policies(Owner::Role, &i.role_name)?, is_truncated: false })
        }
        PutUserPolicy(i) => {
            svc.put_inline_policy(Owner::User, i.user_name, i.policy_name, i.policy_document).await?;
            out.empty()
        }
        GetUserPolicy(i) => {
            let p = svc.get_inline_policy(Owner::User, &i.user_name, &i.policy_name)?;
            out.typed(&GetUserPolicyOutput { user_name: p.owner, policy_name: p.policy_name, policy_document: p.policy_document })
        }
        DeleteUserPolicy(i) => {
            svc.delete_inline_policy(Owner::User, i.user_name, i.policy_name).await?;
            out.empty()
        }
        ListUserPolicies(i) => {
            out.typed(&PolicyNamesOutput { policy_names: svc.list_inline_policies(Owner::User, &i.user_name)?, is_truncated: false })
        }
        CreatePolicy(i) => {
            out.typed(&PolicyOutput { policy: svc.create_policy(i.policy_name, i.path, i.policy_document, i.description).await? })
        }
        GetPolicy(i) => out.typed(&PolicyOutput { policy: svc.get_policy(&i.policy_arn)? }),
        GetPolicyVersion(i) => out.typed(&PolicyVersionOutput { policy_version: svc.get_policy_version(&i.policy_arn, &i.version_id)? }),
        DeletePolicy(i) => {
            svc.delete_policy(i.policy_arn).await?;
            out.empty()
        }
        ListPolicies(i) => out.typed(&ListPoliciesOutput {
            policies: svc.list_policies(scope(i.scope.as_deref())?, i.only_attached, i.path_prefix.as_deref()),
            is_truncated: false,
        }),
        AttachRolePolicy(i) => {
            svc.attach_policy(Owner::Role, i.role_name, i.policy_arn).await?;
            out.empty()
        }
        DetachRolePolicy(i) => {
            svc.detach_policy(Owner::Role, i.role_name, i.policy_arn).await?;
            out.empty()
        }
        ListAttachedRolePolicies(i) => out.typed(&AttachedPoliciesOutput {
            attached_policies: svc.list_attached_policies(Owner::Role, &i.role_name)?,
            is_truncated: false,
        }),
        AttachUserPolicy(i) => {
            svc.attach_policy(Owner::User, i.user_name, i.policy_arn).await?;
            out.empty()
        }
        DetachUserPolicy(i) => {
            svc.detach_policy(Owner::User, i.user_name, i.policy_arn).await?;
            out.empty()
        }
        ListAttachedUserPolicies(i) => out.typed(&AttachedPoliciesOutput {
            attached_policies: svc.list_attached_policies(Owner::User, &i.user_name)?,
            is_truncated: false,
        }),
    })
}

async fn run_sts(
    svc: &std::sync::Arc<IamService>,
    home: &IamService,
    call: StsCall,
    caller: &Principal,
    out: &Out<'_>,
) -> Result<Response<Bytes>, IamError> {
    Ok(match call {
        StsCall::GetCallerIdentity(_) => out.typed(&home.caller_identity(caller)),
        StsCall::AssumeRole(i) => out.typed(
            &svc.assume_role(
                home,
                caller,
                AssumeRoleInput {
                    role_arn: i.role_arn,
                    role_session_name: i.role_session_name,
                    duration_seconds: i.duration_seconds,
                    external_id: i.external_id,
                    policy: i.policy,
                    // A descriptor without an ARN names nothing.
                    policy_arns: i.policy_arns.into_iter().filter_map(|d| d.arn).collect(),
                },
            )
            .await?,
        ),
        StsCall::GetSessionToken(i) => {
            out.typed(&SessionTokenOutput { credentials: svc.get_session_token(caller, i.duration_seconds).await? })
        }
    })
}

/// Who is calling: the authenticated caller, or (authentication off) the account's root.
fn principal(svc: &IamService, caller: Option<&Caller>) -> Principal {
    caller.map(|c| c.principal.clone()).unwrap_or_else(|| Principal::root(svc.account()))
}

fn finish(service: &'static Service, operation: &str, request_id: &str, result: Result<Response<Bytes>, IamError>) -> Response<Body> {
    result
        .unwrap_or_else(|e| {
            if let IamError::Internal(msg) = &e {
                tracing::error!(operation, "iam: {msg}");
            }
            encode::error(service, Protocol::AwsQuery, &WireError(e), request_id)
        })
        .map(Body::from)
}

/// Runs an IAM request and answers with IAM's XML.
pub async fn execute_iam(svc: &std::sync::Arc<IamService>, req: IamRequest, caller: Option<&Caller>) -> Response<Body> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let out = Out { service: &IAM, operation: req.operation, request_id: &request_id };
    let result = match req.call {
        Ok(call) => run_iam(svc, call, &principal(svc, caller), &out).await,
        Err(e) => Err(e),
    };
    finish(&IAM, req.operation, &request_id, result)
}

/// Runs an STS request and answers with STS's XML: `svc` is the IAM of the account the call
/// acts in (the role's, for AssumeRole), `home` the caller's own.
pub async fn execute_sts(svc: &std::sync::Arc<IamService>, home: &IamService, req: StsRequest, caller: Option<&Caller>) -> Response<Body> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let out = Out { service: &STS, operation: req.operation, request_id: &request_id };
    let result = match req.call {
        Ok(call) => run_sts(svc, home, call, &principal(home, caller), &out).await,
        Err(e) => Err(e),
    };
    finish(&STS, req.operation, &request_id, result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue, Method};

    fn post(body: &str) -> Option<Recognized> {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"));
        let req = RawRequest::for_test(&Method::POST, "/", None, &headers, Bytes::from(body.to_string()));
        recognize(&req)
    }

    #[test]
    fn query_requests_decode_to_typed_calls() {
        let Some(Recognized::Iam(r)) = post("Action=CreateUser&Version=2010-05-08&UserName=bob&Path=%2Fteam%2F") else { panic!() };
        assert_eq!(r.name(), "iam:CreateUser");
        let Ok(IamCall::CreateUser(c)) = r.call else { panic!("{:?}", r.call) };
        assert_eq!((c.user_name.as_str(), c.path.as_deref()), ("bob", Some("/team/")));
        let Some(Recognized::Iam(r)) =
            post("Action=CreateRole&Version=2010-05-08&RoleName=r&AssumeRolePolicyDocument=%7B%7D&MaxSessionDuration=7200")
        else {
            panic!()
        };
        let Ok(IamCall::CreateRole(c)) = r.call else { panic!("{:?}", r.call) };
        assert_eq!((c.assume_role_policy_document.as_str(), c.max_session_duration), ("{}", Some(7200)));
        let Some(Recognized::Iam(r)) = post("Action=CreateUser&Version=2010-05-08") else { panic!() };
        let Err(IamError::Validation(m)) = r.call else { panic!("{:?}", r.call) };
        assert_eq!(m, "1 validation error detected: Value null at 'userName' failed to satisfy constraint: Member must not be null");
        let Some(Recognized::Sts(r)) = post(
            "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A000000000000%3Arole%2Fr&RoleSessionName=s&ExternalId=x",
        ) else {
            panic!()
        };
        assert_eq!(r.name(), "sts:AssumeRole");
        let Ok(StsCall::AssumeRole(a)) = r.call else { panic!("{:?}", r.call) };
        assert_eq!(a.external_id.as_deref(), Some("x"));
        let Some(Recognized::Sts(r)) = post("Action=GetCallerIdentity&Version=2011-06-15") else { panic!() };
        assert!(matches!(r.call, Ok(StsCall::GetCallerIdentity(_))));
        let Some(Recognized::Iam(r)) = post("Action=Nope&Version=2010-05-08") else { panic!() };
        assert!(matches!(r.call, Err(IamError::InvalidAction(ref m)) if m == "Could not find operation Nope for version 2010-05-08"));
        let Some(Recognized::Iam(r)) = post("Action=CreateGroup&Version=2010-05-08&GroupName=g") else { panic!() };
        assert!(matches!(r.call, Err(IamError::InvalidAction(ref m)) if m.contains("does not serve CreateGroup")));
        assert!(post("Action=Publish&Version=2010-03-31").is_none(), "SNS");
        assert!(post("Action=SendMessage&Version=2012-11-05").is_none(), "SQS");
    }
}

//! STS: who the caller is (GetCallerIdentity), role sessions (AssumeRole, the role's trust
//! policy evaluated by `nimbus-policy` for the caller, `sts:ExternalId` in the context, and
//! session policies: `Policy` and `PolicyArns`), and GetSessionToken. Session keys are
//! issued by [`IamService::issue_session`]: recorded (sealed) in `iam.db`, then handed to
//! `nimbus_identity::Keys`, so they authenticate at once, survive a restart and expire on
//! their own.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use nimbus_identity::{Principal, SessionPolicy};
use nimbus_policy::{evaluate, Context, Kind, Policies, Policy, Request};
use serde::Serialize;

use crate::names::{self, Who};
use crate::{IamError, IamService};

/// GetCallerIdentity's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CallerIdentity {
    pub user_id: String,
    pub account: String,
    pub arn: String,
}

/// Temporary credentials (`Credentials`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    /// ISO 8601.
    pub expiration: String,
}

/// `AssumedRoleUser`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AssumedRoleUser {
    pub assumed_role_id: String,
    pub arn: String,
}

/// AssumeRole's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RoleSession {
    pub credentials: Credentials,
    pub assumed_role_user: AssumedRoleUser,
    /// How much of the space for session policies they take, in percent (only when the
    /// session has some).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packed_policy_size: Option<u32>,
}

/// What AssumeRole is asked.
#[derive(Debug, Clone, Default)]
pub struct AssumeRoleInput {
    pub role_arn: String,
    pub role_session_name: String,
    pub duration_seconds: Option<i64>,
    pub external_id: Option<String>,
    /// The inline session policy (`Policy`).
    pub policy: Option<String>,
    /// Managed session policies' ARNs (`PolicyArns`).
    pub policy_arns: Vec<String>,
}

/// The plain text session policies may take: the inline document and the managed policies'
/// ARNs together (AWS packs them into the session token; beyond it, PackedPolicyTooLarge).
const SESSION_POLICY_SPACE: usize = 2048;
/// Managed session policies one AssumeRole may name.
const MAX_POLICY_ARNS: usize = 10;

fn duration_error(value: i64, bound: &str) -> IamError {
    IamError::Validation(format!(
        "1 validation error detected: Value '{value}' at 'durationSeconds' failed to satisfy constraint: Member must have value {bound}"
    ))
}

impl IamService {
    /// `nimbus-policy`'s view of an authenticated principal.
    pub fn policy_principal(&self, caller: &Principal) -> nimbus_policy::Principal {
        let st = self.read();
        match names::who(&caller.arn) {
            Who::Root { account } => nimbus_policy::Principal::root(&account),
            Who::User { account, name } => {
                let id = st.users.get(&name).map(|u| u.id.clone()).unwrap_or_default();
                let mut p = nimbus_policy::Principal::user(&account, &name, &id);
                p.arn = caller.arn.clone();
                p
            }
            Who::AssumedRole { account, role, session } => {
                let known = st.roles.get(&role).filter(|_| account == self.account);
                let id =
                    known.map(|r| r.id.clone()).unwrap_or_else(|| names::stable_role_id(&format!("arn:aws:iam::{account}:role/{role}")));
                let mut p = nimbus_policy::Principal::assumed_role(&account, &role, &session, &id);
                // The role's ARN (`aws:PrincipalArn`, what resource policies naming the role
                // match) has the role's path; the session's ARN does not.
                if let Some(r) = known {
                    p.role_arn = Some(names::arn(&account, "role", &r.path, &r.name));
                }
                p
            }
            // An ARN Nimbus does not issue keys for: evaluated like a user without policies
            // (never as root, which would skip authorization).
            Who::Other => nimbus_policy::Principal {
                kind: nimbus_policy::PrincipalType::User,
                arn: caller.arn.clone(),
                id: caller.arn.clone(),
                ..nimbus_policy::Principal::root(&caller.account)
            },
        }
    }

    /// GetCallerIdentity.
    pub fn caller_identity(&self, caller: &Principal) -> CallerIdentity {
        let p = self.policy_principal(caller);
        CallerIdentity { user_id: p.id, account: caller.account.clone(), arn: caller.arn.clone() }
    }

    async fn credentials(
        self: &Arc<Self>,
        principal: Principal,
        expires: DateTime<Utc>,
        policy: Option<Arc<SessionPolicy>>,
    ) -> Result<Credentials, IamError> {
        let k = self.issue_session(principal, expires, policy).await?;
        Ok(Credentials {
            access_key_id: k.id,
            secret_access_key: k.secret,
            session_token: k.session_token.unwrap_or_default(),
            expiration: expires.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        })
    }

    /// AssumeRole's `Policy` and `PolicyArns` checked as STS checks them, and the share of
    /// the packed space they take (percent).
    fn check_session_policy(&self, inline: Option<String>, arns: Vec<String>) -> Result<Option<(Arc<SessionPolicy>, u32)>, IamError> {
        if inline.is_none() && arns.is_empty() {
            return Ok(None);
        }
        if let Some(text) = &inline {
            if text.is_empty() {
                return Err(IamError::Validation(
                    "1 validation error detected: Value '' at 'policy' failed to satisfy constraint: Member must have length greater than or equal to 1".into(),
                ));
            }
            if !text.chars().all(|c| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{ff}')) {
                return Err(IamError::pattern(text, "policy", r"[\u0009\u000A\u000D\u0020-\u00FF]+"));
            }
            Policy::parse(text, Kind::Identity).map_err(|e| IamError::MalformedPolicyDocument(e.to_string()))?;
        }
        if arns.len() > MAX_POLICY_ARNS {
            return Err(IamError::Validation(format!(
                "1 validation error detected: Value at 'policyArns' failed to satisfy constraint: Member must have length less than or equal to {MAX_POLICY_ARNS}"
            )));
        }
        for (i, arn) in arns.iter().enumerate() {
            if arn.chars().count() < 20 {
                return Err(IamError::Validation(format!(
                    "1 validation error detected: Value '{arn}' at 'policyArns.{}.member.arn' failed to satisfy constraint: Member must have length greater than or equal to 20",
                    i + 1
                )));
            }
            if !self.managed_policy_exists(arn) {
                return Err(IamError::MalformedPolicyDocument(format!("Policy {arn} does not exist or is not attachable.")));
            }
        }
        let used = inline.as_deref().map_or(0, |t| t.chars().count()) + arns.iter().map(|a| a.chars().count()).sum::<usize>();
        let percent = (used * 100).div_ceil(SESSION_POLICY_SPACE) as u32;
        if used > SESSION_POLICY_SPACE {
            return Err(IamError::PackedPolicyTooLarge(format!(
                "Packed policy consumes {percent}% of allotted space, please use smaller policy."
            )));
        }
        Ok(Some((Arc::new(SessionPolicy { inline, managed: arns }), percent)))
    }

    /// AssumeRole: the caller gets a session of the role if the role's trust policy (and,
    /// where the trust policy names only the account, the caller's own policies) allow it.
    /// `home` is the IAM of the caller's account: this one, or another for a cross-account
    /// call, whose policies must allow it as well as the trust policy.
    pub async fn assume_role(
        self: &Arc<Self>,
        home: &IamService,
        caller: &Principal,
        input: AssumeRoleInput,
    ) -> Result<RoleSession, IamError> {
        names::check_session_name(&input.role_session_name)?;
        if let Some(d) = input.duration_seconds {
            if d < 900 {
                return Err(duration_error(d, "greater than or equal to 900"));
            }
            if d > 43200 {
                return Err(duration_error(d, "less than or equal to 43200"));
            }
        }
        let (_, role_name) =
            names::role_arn(&input.role_arn).ok_or_else(|| IamError::Validation(format!("{} is invalid", input.role_arn)))?;
        let session_policy = self.check_session_policy(input.policy, input.policy_arns)?;
        let principal = home.policy_principal(caller);
        let denied = || {
            IamError::AccessDenied(format!(
                "User: {} is not authorized to perform: sts:AssumeRole on resource: {}",
                caller.arn, input.role_arn
            ))
        };
        if principal.kind == nimbus_policy::PrincipalType::Root {
            return Err(IamError::AccessDenied("Roles may not be assumed by root accounts.".into()));
        }
        let role = self.read().roles.get(&role_name).cloned();
        let role = role.ok_or_else(denied)?;
        let role_arn = names::arn(&self.account, "role", &role.path, &role.name);
        if role_arn != input.role_arn {
            return Err(denied());
        }
        let trust = Policy::parse(&role.trust, Kind::Trust).map_err(|_| denied())?;
        let mut context = Context::new().with_time(std::time::SystemTime::now());
        if let Some(ext) = &input.external_id {
            context = context.with("sts:ExternalId", ext);
        }
        let identity = home.identity_policies(&caller.arn);
        let identity: Vec<&Policy> = identity.iter().map(|p| p.as_ref()).collect();
        let request = Request { principal: &principal, action: "sts:AssumeRole", resource: &role_arn, context: &context };
        // The trust policy must let the caller in (or name the account, delegating to the
        // caller's identity policies): an identity policy alone never does.
        let policies = Policies {
            identity: &identity,
            resource: Some(&trust),
            resource_required: true,
            cross_account: caller.account != self.account,
            ..Policies::default()
        };
        if !evaluate(&request, &policies).allowed() {
            return Err(denied());
        }
        let duration = input.duration_seconds.unwrap_or(3600);
        if duration > role.max_session {
            return Err(IamError::Validation("The requested DurationSeconds exceeds the MaxSessionDuration set for this role.".into()));
        }
        let session = Principal::assumed_role(&role_arn, &input.role_session_name);
        let user = AssumedRoleUser { assumed_role_id: format!("{}:{}", role.id, input.role_session_name), arn: session.arn.clone() };
        let (policy, packed) = session_policy.unzip();
        let credentials = self.credentials(session, Utc::now() + chrono::Duration::seconds(duration), policy).await?;
        Ok(RoleSession { credentials, assumed_role_user: user, packed_policy_size: packed })
    }

    /// GetSessionToken: temporary credentials for the calling user (or root).
    pub async fn get_session_token(self: &Arc<Self>, caller: &Principal, duration_seconds: Option<i64>) -> Result<Credentials, IamError> {
        let root = match names::who(&caller.arn) {
            Who::Root { .. } => true,
            Who::User { .. } => false,
            _ => return Err(IamError::AccessDenied("Cannot call GetSessionToken with session credentials".into())),
        };
        let d = duration_seconds.unwrap_or(if root { 3600 } else { 43200 });
        if d < 900 {
            return Err(duration_error(d, "greater than or equal to 900"));
        }
        if d > 129600 {
            return Err(duration_error(d, "less than or equal to 129600"));
        }
        // Root sessions last at most an hour.
        let d = if root { d.min(3600) } else { d };
        self.credentials(caller.clone(), Utc::now() + chrono::Duration::seconds(d), None).await
    }
}

//! Policy evaluation for a request within one account, as the IAM User Guide's "Policy
//! evaluation logic" describes it: an explicit deny in any policy wins; a resource-based policy
//! that names the requester itself (user, role session, service) allows on its own; otherwise
//! an identity-based policy (or a resource-based policy naming the session's role) must allow,
//! and a permissions boundary and a session policy, where present, must allow too; everything
//! else is an implicit deny. The account's root user is allowed unless explicitly denied.
//!
//! Some resource policies are required ([`Policies::resource_required`]): a KMS key policy and
//! a role's trust policy must allow the request themselves, or name the account and so
//! delegate to the identity-based policies; identity-based policies alone do not allow.

use std::fmt;

use crate::document::{Effect, Policy, Principals, ResourcePattern, Statement};
use crate::request::{PrincipalType, Request};

/// The policies that apply to a request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policies<'p> {
    /// The principal's identity-based policies: inline and attached, its groups' too.
    pub identity: &'p [&'p Policy],
    /// The resource's policy (or the role's trust policy for `sts:AssumeRole`).
    pub resource: Option<&'p Policy>,
    /// The session policy passed when the role session was created.
    pub session: Option<&'p Policy>,
    /// The principal's permissions boundary.
    pub boundary: Option<&'p Policy>,
    /// Whether the resource policy must allow (a KMS key policy, a role's trust policy for
    /// `sts:AssumeRole`): by naming the requester or its role, or by naming the account, which
    /// delegates to the identity-based policies. Without it (or with none) nothing allows.
    pub resource_required: bool,
    /// Whether the resource belongs to another account than the principal's: then the
    /// resource's policy must allow the principal (or its account) and the principal's own
    /// account must allow it too, by its identity policies (root's are implicit), as in
    /// AWS's cross-account policy evaluation.
    pub cross_account: bool,
}

/// The outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Allowed.
    Allow,
    /// A `Deny` statement applies.
    ExplicitDeny,
    /// Nothing allows it (or a boundary or session policy does not).
    ImplicitDeny,
}

/// Which kind of policy decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyType {
    /// An identity-based policy.
    Identity,
    /// The resource-based policy.
    Resource,
    /// The session policy.
    Session,
    /// The permissions boundary.
    Boundary,
}

impl PolicyType {
    fn phrase(self) -> &'static str {
        match self {
            PolicyType::Identity => "identity-based policy",
            PolicyType::Resource => "resource-based policy",
            PolicyType::Session => "session policy",
            PolicyType::Boundary => "permissions boundary",
        }
    }

    fn article(self) -> &'static str {
        match self {
            PolicyType::Identity => "an",
            _ => "a",
        }
    }
}

/// A statement that decided: which policy it is in and its index there.
#[derive(Debug, Clone, Copy)]
pub struct Decider<'p> {
    /// The kind of policy.
    pub policy_type: PolicyType,
    /// The policy.
    pub policy: &'p Policy,
    /// The statement's index in the policy's `Statement` list.
    pub index: usize,
}

impl<'p> Decider<'p> {
    /// The statement's `Sid`, if it has one.
    pub fn sid(&self) -> Option<&'p str> {
        self.policy.sid(self.index)
    }
}

/// The result of [`evaluate`].
#[derive(Debug, Clone, Copy)]
pub struct Evaluation<'p> {
    /// Allowed or denied, and how.
    pub decision: Decision,
    /// For an allow or an explicit deny, the statement that decided (none when the root user is
    /// allowed by default).
    pub statement: Option<Decider<'p>>,
    /// For an implicit deny, the kind of policy that did not allow.
    pub missing: Option<PolicyType>,
}

impl Evaluation<'_> {
    /// Whether the request is allowed.
    pub fn allowed(&self) -> bool {
        self.decision == Decision::Allow
    }

    /// AWS's AccessDenied message for this request ("User: … is not authorized to perform: …").
    pub fn message<'a>(&'a self, request: &'a Request<'a>) -> impl fmt::Display + 'a {
        DeniedMessage { evaluation: self, request }
    }
}

struct DeniedMessage<'a> {
    evaluation: &'a Evaluation<'a>,
    request: &'a Request<'a>,
}

impl fmt::Display for DeniedMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.request;
        write!(f, "User: {} is not authorized to perform: {}", r.principal.arn, r.action)?;
        if r.resource != "*" {
            write!(f, " on resource: {}", r.resource)?;
        }
        let e = self.evaluation;
        match (e.decision, e.statement, e.missing) {
            (Decision::ExplicitDeny, Some(d), _) => {
                write!(f, " with an explicit deny in {} {}", d.policy_type.article(), d.policy_type.phrase())
            }
            (Decision::ImplicitDeny, _, Some(t)) => write!(f, " because no {} allows the {} action", t.phrase(), r.action),
            _ => Ok(()),
        }
    }
}

/// How a statement's `Principal` matched the requester; it decides which implicit denies a
/// resource-based allow overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Named {
    /// The account (root ARN or id): a delegation to the account's identity policies.
    Account,
    /// The role of a role session: limited by boundaries and session policies.
    Role,
    /// The requester itself (user, session, service, or everyone).
    Direct,
}

/// Evaluates `request` against `policies`.
pub fn evaluate<'p>(request: &Request<'_>, policies: &Policies<'p>) -> Evaluation<'p> {
    let identity = policies.identity.iter().map(|p| (PolicyType::Identity, *p));
    let others =
        [(PolicyType::Resource, policies.resource), (PolicyType::Boundary, policies.boundary), (PolicyType::Session, policies.session)];
    let all = identity.chain(others.iter().filter_map(|(t, p)| p.map(|p| (*t, p))));
    for (policy_type, policy) in all {
        if let Some(index) = find(policy, Effect::Deny, request).map(|(i, _)| i) {
            return Evaluation { decision: Decision::ExplicitDeny, statement: Some(Decider { policy_type, policy, index }), missing: None };
        }
    }
    let allow = |policy_type, policy, index| Evaluation {
        decision: Decision::Allow,
        statement: Some(Decider { policy_type, policy, index }),
        missing: None,
    };
    let implicit = |missing| Evaluation { decision: Decision::ImplicitDeny, statement: None, missing: Some(missing) };
    let resource_allow = policies.resource.and_then(|p| find(p, Effect::Allow, request).map(|(i, named)| (p, i, named)));
    if policies.cross_account {
        let Some((policy, index, _)) = resource_allow else { return implicit(PolicyType::Resource) };
        if request.principal.kind == PrincipalType::Root {
            return allow(PolicyType::Resource, policy, index);
        }
        let Some((policy, index)) = policies.identity.iter().find_map(|p| find(p, Effect::Allow, request).map(|(i, _)| (*p, i))) else {
            return implicit(PolicyType::Identity);
        };
        return match limited(policies, request) {
            Some(missing) => implicit(missing),
            None => allow(PolicyType::Identity, policy, index),
        };
    }
    if policies.resource_required && resource_allow.is_none() {
        return implicit(PolicyType::Resource);
    }
    if request.principal.kind == PrincipalType::Root {
        return Evaluation { decision: Decision::Allow, statement: None, missing: None };
    }
    if let Some((policy, index, Some(Named::Direct))) = resource_allow {
        return allow(PolicyType::Resource, policy, index);
    }
    let identity_allow =
        policies.identity.iter().find_map(|p| find(p, Effect::Allow, request).map(|(i, _)| (PolicyType::Identity, *p, i))).or(
            match resource_allow {
                Some((policy, index, Some(Named::Role))) => Some((PolicyType::Resource, policy, index)),
                _ => None,
            },
        );
    let Some((policy_type, policy, index)) = identity_allow else { return implicit(PolicyType::Identity) };
    match limited(policies, request) {
        Some(missing) => implicit(missing),
        None => allow(policy_type, policy, index),
    }
}

/// The permissions boundary or session policy that does not allow `request`, if one does not.
fn limited(policies: &Policies<'_>, request: &Request<'_>) -> Option<PolicyType> {
    if policies.boundary.is_some_and(|b| find(b, Effect::Allow, request).is_none()) {
        return Some(PolicyType::Boundary);
    }
    if policies.session.is_some_and(|s| find(s, Effect::Allow, request).is_none()) {
        return Some(PolicyType::Session);
    }
    None
}

/// The first statement of `effect` in `policy` that applies to `request`, with how its
/// principal matched (for statements that name principals).
fn find(policy: &Policy, effect: Effect, request: &Request<'_>) -> Option<(usize, Option<Named>)> {
    policy.statements.iter().enumerate().filter(|(_, s)| s.effect == effect).find_map(|(i, s)| applies(s, request).map(|named| (i, named)))
}

fn applies(s: &Statement, request: &Request<'_>) -> Option<Option<Named>> {
    let (actions, not_action) = &s.actions;
    if actions.iter().any(|a| a.matches(request.action, true, request)) == *not_action {
        return None;
    }
    if let Some((resources, not_resource)) = &s.resources {
        let hit = resources.iter().any(|r| match r {
            ResourcePattern::Arn(p) => p.matches(request.resource, request),
            ResourcePattern::Plain(p) => p.matches(request.resource, false, request),
        });
        if hit == *not_resource {
            return None;
        }
    }
    let named = match &s.principal {
        None => None,
        Some((principals, false)) => Some(named(principals, request)?),
        // NotPrincipal applies unless every identity of the requester is listed: its own ARN,
        // its role's, and its account's, as the Principal element reference explains.
        Some((principals, true)) => {
            let p = request.principal;
            let account = format!("arn:aws:iam::{}:root", p.account);
            let identities = [Some(p.arn.as_str()), p.role_arn.as_deref(), (!p.account.is_empty()).then_some(account.as_str())];
            let excluded = principals.everyone
                || identities.iter().flatten().all(|id| principals.aws.iter().chain(&principals.service).any(|a| a == id));
            if excluded {
                return None;
            }
            Some(Named::Direct)
        }
    };
    s.conditions.iter().all(|c| c.holds(request)).then_some(named)
}

fn named(principals: &Principals, request: &Request<'_>) -> Option<Named> {
    if principals.everyone {
        return Some(Named::Direct);
    }
    let p = request.principal;
    match p.kind {
        PrincipalType::Service => principals.service.contains(&p.arn).then_some(Named::Direct),
        PrincipalType::WebIdentity => principals.federated.contains(&p.arn).then_some(Named::Direct),
        PrincipalType::Anonymous => None,
        _ => principals
            .aws
            .iter()
            .filter_map(|a| {
                if *a == p.arn {
                    Some(Named::Direct)
                } else if p.role_arn.as_deref() == Some(a.as_str()) {
                    Some(Named::Role)
                } else if p.is_account(a) {
                    Some(Named::Account)
                } else {
                    None
                }
            })
            .max(),
    }
}

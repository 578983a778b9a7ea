//! What is being authorized: who asks ([`Principal`]), for which action on which resource, and
//! the request's context keys ([`Context`]). The principal's own keys (`aws:username`,
//! `aws:userid`, `aws:PrincipalArn`, `aws:PrincipalAccount`, `aws:PrincipalType`) are derived
//! from it, as AWS puts them in every request context; the caller adds the rest.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::pattern::Resolve;

/// The kind of identity that signed a request, as `aws:PrincipalType` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalType {
    /// The account's root user (`arn:aws:iam::<account>:root`).
    Root,
    /// An IAM user.
    User,
    /// A role session (`arn:aws:sts::<account>:assumed-role/<role>/<session>`).
    AssumedRole,
    /// A `GetFederationToken` session (`arn:aws:sts::<account>:federated-user/<name>`).
    FederatedUser,
    /// An AWS service acting on its own behalf (`lambda.amazonaws.com`).
    Service,
    /// A web-identity or SAML provider asking to assume a role (trust policies' `Federated`).
    WebIdentity,
    /// An unsigned request (a public function URL's caller): only `"Principal": "*"` names it.
    Anonymous,
}

/// The identity a request was authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// What kind of identity it is.
    pub kind: PrincipalType,
    /// Its ARN (the session's ARN for a role session; the service or provider name for
    /// services and web identities).
    pub arn: String,
    /// Its 12-digit account id (empty for services).
    pub account: String,
    /// The IAM user's name (`aws:username` exists only for IAM users).
    pub name: Option<String>,
    /// Its unique id (`aws:userid`): `AIDA…` for users, `AROA…:<session>` for role sessions,
    /// the account id for root, `<account>:<name>` for federated users.
    pub id: String,
    /// For a role session, the role's ARN: `aws:PrincipalArn`, and what resource policies
    /// naming the role match.
    pub role_arn: Option<String>,
}

impl Principal {
    /// The root user of `account`.
    pub fn root(account: &str) -> Self {
        Self {
            kind: PrincipalType::Root,
            arn: format!("arn:aws:iam::{account}:root"),
            account: account.to_string(),
            name: None,
            id: account.to_string(),
            role_arn: None,
        }
    }

    /// IAM user `name` (path `/`) with unique id `id`.
    pub fn user(account: &str, name: &str, id: &str) -> Self {
        Self {
            kind: PrincipalType::User,
            arn: format!("arn:aws:iam::{account}:user/{name}"),
            account: account.to_string(),
            name: Some(name.to_string()),
            id: id.to_string(),
            role_arn: None,
        }
    }

    /// Session `session` of role `role` (path `/`) whose unique id is `role_id`.
    pub fn assumed_role(account: &str, role: &str, session: &str, role_id: &str) -> Self {
        Self {
            kind: PrincipalType::AssumedRole,
            arn: format!("arn:aws:sts::{account}:assumed-role/{role}/{session}"),
            account: account.to_string(),
            name: None,
            id: format!("{role_id}:{session}"),
            role_arn: Some(format!("arn:aws:iam::{account}:role/{role}")),
        }
    }

    /// An AWS service principal such as `s3.amazonaws.com`.
    pub fn service(name: &str) -> Self {
        Self {
            kind: PrincipalType::Service,
            arn: name.to_string(),
            account: String::new(),
            name: None,
            id: name.to_string(),
            role_arn: None,
        }
    }

    /// Whoever sent an unsigned request.
    pub fn anonymous() -> Self {
        Self {
            kind: PrincipalType::Anonymous,
            arn: "anonymous".to_string(),
            account: String::new(),
            name: None,
            id: "anonymous".to_string(),
            role_arn: None,
        }
    }

    /// `arn:aws:iam::<account>:root`, what an account principal in a policy stands for.
    pub(crate) fn is_account(&self, account_arn: &str) -> bool {
        !self.account.is_empty()
            && account_arn.strip_prefix("arn:aws:iam::").and_then(|r| r.strip_suffix(":root")) == Some(self.account.as_str())
    }

    fn type_name(&self) -> &'static str {
        match self.kind {
            PrincipalType::Root => "Account",
            PrincipalType::User => "User",
            PrincipalType::AssumedRole => "AssumedRole",
            PrincipalType::FederatedUser => "FederatedUser",
            PrincipalType::Service => "Service",
            PrincipalType::WebIdentity => "WebIdentityUser",
            PrincipalType::Anonymous => "Anonymous",
        }
    }
}

/// The request's context keys: names compared case-insensitively, each with one or more
/// string values (a key present with no values counts as absent, as AWS treats an empty set).
#[derive(Debug, Clone, Default)]
pub struct Context {
    entries: Vec<(String, Vec<String>)>,
}

impl Context {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to one value.
    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.set(key, vec![value.to_string()]);
        self
    }

    /// Sets `key` to `values` (a multivalued key such as `aws:TagKeys`).
    pub fn with_values(mut self, key: &str, values: &[&str]) -> Self {
        self.set(key, values.iter().map(|v| v.to_string()).collect());
        self
    }

    /// Sets `aws:CurrentTime` (ISO 8601) and `aws:EpochTime` (seconds) to `now`.
    pub fn with_time(self, now: SystemTime) -> Self {
        let secs = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let iso = chrono::DateTime::<chrono::Utc>::from(now).format("%Y-%m-%dT%H:%M:%SZ").to_string();
        self.with("aws:CurrentTime", &iso).with("aws:EpochTime", &secs.to_string())
    }

    /// Sets `key` to `values`, replacing what it had.
    pub fn set(&mut self, key: &str, values: Vec<String>) {
        let key = key.to_ascii_lowercase();
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = values,
            None => self.entries.push((key, values)),
        }
    }

    /// The values of `key` (a lowercase name), if it is present.
    fn get(&self, key: &str) -> Option<&[String]> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_slice()).filter(|v| !v.is_empty())
    }
}

/// One request to authorize.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Who asks.
    pub principal: &'a Principal,
    /// `service:Operation`, e.g. `lambda:InvokeFunction` (compared case-insensitively).
    pub action: &'a str,
    /// The resource's ARN, or `*` for actions that have no resource.
    pub resource: &'a str,
    /// The request's context keys.
    pub context: &'a Context,
}

/// The values a condition sees for one key: the context's, or one derived from the principal.
#[derive(Clone, Copy)]
pub(crate) enum Values<'a> {
    Many(&'a [String]),
    One(&'a str),
}

impl<'a> Values<'a> {
    pub(crate) fn iter(self) -> impl Iterator<Item = &'a str> {
        let (many, one) = match self {
            Values::Many(values) => (values, None),
            Values::One(value) => (&[][..], Some(value)),
        };
        many.iter().map(String::as_str).chain(one)
    }

    fn single(self) -> Option<&'a str> {
        match self {
            Values::Many([value]) => Some(value),
            Values::Many(_) => None,
            Values::One(value) => Some(value),
        }
    }
}

impl<'a> Request<'a> {
    /// The values of context key `key` (a lowercase name): the context's own, else those AWS
    /// derives from the principal.
    pub(crate) fn values(&self, key: &str) -> Option<Values<'a>> {
        if let Some(values) = self.context.get(key) {
            return Some(Values::Many(values));
        }
        let p = self.principal;
        let derived = match key {
            "aws:username" => p.name.as_deref(),
            "aws:userid" => Some(p.id.as_str()),
            "aws:principalarn" if p.kind != PrincipalType::Service => Some(p.role_arn.as_deref().unwrap_or(&p.arn)),
            "aws:principalaccount" if !p.account.is_empty() => Some(p.account.as_str()),
            "aws:principaltype" => Some(p.type_name()),
            "aws:principalservicename" if p.kind == PrincipalType::Service => Some(p.arn.as_str()),
            _ => None,
        };
        derived.map(Values::One)
    }
}

impl Resolve for Request<'_> {
    /// A policy variable takes a key's single value; a multivalued key does not resolve.
    fn resolve(&self, key: &str) -> Option<&str> {
        self.values(key).and_then(Values::single)
    }
}

//! Policy documents: the JSON grammar of the IAM policy language checked the way IAM checks it
//! (the same order of checks, so the same message for a document with several faults), then
//! compiled into statements that evaluation matches without parsing again.
//!
//! The order and wording of the checks follow moto's IAM validator, which mirrors IAM's answers
//! (see `error.rs`); the per-kind rules (identity policies have no principal; trust policies no
//! resource; resource and trust policies need a principal) follow the IAM User Guide's "IAM JSON
//! policy elements reference".

use serde_json::{Map, Value};

use crate::condition::{parse_date, Condition, Operator};
use crate::error::PolicyError;
use crate::pattern::{self, ArnPattern, Pattern};

/// Which kind of document a policy is; each kind has its own required and forbidden elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Attached to a user, group or role (also permissions boundaries and session policies):
    /// no `Principal`, `Resource` required, version 2012-10-17 required.
    Identity,
    /// Attached to a resource (a function's, queue's or topic's policy): `Principal` required.
    Resource,
    /// A role's trust policy: `Principal` required, no `Resource`.
    Trust,
}

/// A statement's `Effect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Grants.
    Allow,
    /// Denies, overriding any grant.
    Deny,
}

/// A parsed, checked and compiled policy document.
#[derive(Debug, Clone)]
pub struct Policy {
    text: String,
    kind: Kind,
    id: Option<String>,
    pub(crate) statements: Vec<Statement>,
}

/// One compiled statement.
#[derive(Debug, Clone)]
pub(crate) struct Statement {
    pub(crate) sid: Option<String>,
    pub(crate) effect: Effect,
    /// `Principal` (`false`) or `NotPrincipal` (`true`); absent in identity policies.
    pub(crate) principal: Option<(Principals, bool)>,
    /// `Action` (`false`) or `NotAction` (`true`); patterns are lowercase.
    pub(crate) actions: (Vec<Pattern>, bool),
    /// `Resource` (`false`) or `NotResource` (`true`); absent in trust policies (any resource).
    pub(crate) resources: Option<(Vec<ResourcePattern>, bool)>,
    pub(crate) conditions: Vec<Condition>,
}

/// A `Resource` entry: an ARN pattern, or a plain pattern for anything else (`*`).
#[derive(Debug, Clone)]
pub(crate) enum ResourcePattern {
    Arn(ArnPattern),
    Plain(Pattern),
}

/// The principals a `Principal` element names.
#[derive(Debug, Clone, Default)]
pub(crate) struct Principals {
    /// `"*"` or `{"AWS": "*"}`: everyone.
    pub(crate) everyone: bool,
    /// AWS principals as ARNs (a bare account id becomes `arn:aws:iam::<id>:root`).
    pub(crate) aws: Vec<String>,
    pub(crate) service: Vec<String>,
    pub(crate) federated: Vec<String>,
    pub(crate) canonical_user: Vec<String>,
}

const TOP_ELEMENTS: &[&str] = &["Version", "Id", "Statement"];
const STATEMENT_ELEMENTS: &[&str] =
    &["Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"];
const VERSIONS: &[&str] = &["2008-10-17", "2012-10-17"];
const PARTITIONS: &[&str] = &["aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc"];
const IAM_RESOURCE_PREFIXES: &[&str] = &[
    "user/",
    "federated-user/",
    "role/",
    "group/",
    "instance-profile/",
    "mfa/",
    "server-certificate/",
    "policy/",
    "sms-mfa/",
    "saml-provider/",
    "oidc-provider/",
    "report/",
    "access-report/",
];

impl Policy {
    /// Parses and checks `text` as a policy of `kind`. The error's `Display` is IAM's
    /// `MalformedPolicyDocument` message.
    pub fn parse(text: &str, kind: Kind) -> Result<Self, PolicyError> {
        let doc: Value = serde_json::from_str(text).map_err(|_| match kind {
            Kind::Trust => PolicyError::InvalidJson,
            Kind::Identity | Kind::Resource => PolicyError::Syntax,
        })?;
        let (top, statements) = syntax(&doc).ok_or(PolicyError::Syntax)?;
        let version = top.get("Version").and_then(Value::as_str);
        if kind == Kind::Identity && version != Some("2012-10-17") {
            return Err(PolicyError::Version);
        }
        check(&statements, kind)?;
        // Policy variables exist only in version 2012-10-17; before it `${…}` is literal text.
        let variables = version == Some("2012-10-17");
        Ok(Self {
            text: text.to_string(),
            kind,
            id: top.get("Id").and_then(Value::as_str).map(str::to_string),
            statements: statements.iter().map(|s| compile(s, variables)).collect(),
        })
    }

    /// The document as it was submitted.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The document URL-encoded (RFC 3986), as IAM's Get* operations return it.
    pub fn url_encoded(&self) -> String {
        const RESERVED: &percent_encoding::AsciiSet =
            &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
        percent_encoding::utf8_percent_encode(&self.text, RESERVED).to_string()
    }

    /// The kind it was parsed as.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Its `Id` element.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// How many statements it has.
    pub fn len(&self) -> usize {
        self.statements.len()
    }

    /// Whether it has no statements (never true of a parsed policy).
    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    /// The `Sid` of statement `index`, if it has one.
    pub fn sid(&self, index: usize) -> Option<&str> {
        self.statements.get(index).and_then(|s| s.sid.as_deref())
    }
}

/// A string or a list of strings (`null` entries skipped, as IAM skips them); `None` if the
/// value is anything else.
fn strings(value: &Value) -> Option<Vec<&str>> {
    match value {
        Value::String(s) => Some(vec![s.as_str()]),
        Value::Array(items) => items.iter().filter(|v| !v.is_null()).map(|v| v.as_str()).collect::<Option<Vec<_>>>(),
        _ => None,
    }
}

/// A JSON object: the document or one statement.
type Object = Map<String, Value>;

/// The grammar: element names and types. `None` is "Syntax errors in policy.".
fn syntax(doc: &Value) -> Option<(&Object, Vec<&Object>)> {
    let top = doc.as_object()?;
    if !top.keys().all(|k| TOP_ELEMENTS.contains(&k.as_str())) {
        return None;
    }
    if let Some(version) = top.get("Version") {
        if !VERSIONS.contains(&version.as_str()?) {
            return None;
        }
    }
    if let Some(id) = top.get("Id") {
        id.as_str()?;
    }
    let statements: Vec<&Map<String, Value>> = match top.get("Statement")? {
        Value::Object(s) => vec![s],
        Value::Array(items) => items.iter().map(Value::as_object).collect::<Option<_>>()?,
        _ => return None,
    };
    if statements.is_empty() {
        return None;
    }
    for s in &statements {
        if !s.keys().all(|k| STATEMENT_ELEMENTS.contains(&k.as_str())) {
            return None;
        }
        let both = |a: &str, b: &str| s.contains_key(a) && s.contains_key(b);
        if both("Action", "NotAction") || both("Resource", "NotResource") || both("Principal", "NotPrincipal") {
            return None;
        }
        let effect = s.get("Effect")?.as_str()?;
        if !effect.eq_ignore_ascii_case("Allow") && !effect.eq_ignore_ascii_case("Deny") {
            return None;
        }
        for key in ["Action", "NotAction", "Resource", "NotResource"] {
            if let Some(v) = s.get(key) {
                strings(v)?;
            }
        }
        for key in ["Principal", "NotPrincipal"] {
            if let Some(v) = s.get(key) {
                principal_syntax(v)?;
            }
        }
        if let Some(condition) = s.get("Condition") {
            for (operator, block) in condition.as_object()? {
                let block = block.as_object()?;
                for values in block.values() {
                    condition_values(values)?;
                }
                if Operator::parse(operator).is_none() && !block.is_empty() {
                    return None;
                }
            }
        }
        if let Some(sid) = s.get("Sid") {
            sid.as_str()?;
        }
    }
    Some((top, statements))
}

fn principal_syntax(value: &Value) -> Option<()> {
    match value {
        Value::String(_) => Some(()),
        Value::Object(map) => map.values().try_for_each(|v| strings(v).map(drop)),
        _ => None,
    }
}

/// A condition key's values: a string, a boolean, or a list of them (numbers are refused, as
/// moto's validator refuses them; IAM's own answer is not recorded).
fn condition_values(value: &Value) -> Option<Vec<String>> {
    let one = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    match value {
        Value::Array(items) => items.iter().map(one).collect(),
        v => one(v).map(|s| vec![s]),
    }
}

/// The checks after the grammar, in IAM's order.
fn check(statements: &[&Map<String, Value>], kind: Kind) -> Result<(), PolicyError> {
    // Legacy parsing: case-sensitive effect, readable dates, resources with enough segments.
    for s in statements {
        let effect = s.get("Effect").and_then(Value::as_str).unwrap_or_default();
        if effect != "Allow" && effect != "Deny" {
            return Err(PolicyError::LegacyParsing);
        }
        for (operator, block) in s.get("Condition").and_then(Value::as_object).into_iter().flatten() {
            if Operator::parse(operator).is_some_and(|o| o.is_date()) {
                for values in block.as_object().into_iter().flat_map(|b| b.values()) {
                    for value in condition_values(values).unwrap_or_default() {
                        legacy_date(&value).ok_or(PolicyError::LegacyParsing)?;
                    }
                }
            }
        }
    }
    let mut resource_error = None;
    for key in ["Resource", "NotResource"] {
        for s in statements {
            let Some(resources) = s.get(key).and_then(strings) else { continue };
            let mut sorted = resources.clone();
            sorted.sort_unstable_by(|a, b| b.cmp(a));
            for r in sorted {
                if let Some(error) = resource_format(r) {
                    resource_error = Some(error);
                }
            }
            if resource_error.is_none() && !resources.iter().all(|r| legacy_resource(r)) {
                return Err(PolicyError::LegacyParsing);
            }
        }
    }
    let mut sids = Vec::new();
    for sid in statements.iter().filter_map(|s| s.get("Sid").and_then(Value::as_str)).filter(|s| !s.is_empty()) {
        if sids.contains(&sid) {
            return Err(PolicyError::DuplicateSid);
        }
        sids.push(sid);
    }
    for s in statements {
        let actions = s.get("Action").or_else(|| s.get("NotAction")).and_then(strings);
        if actions.is_none_or(|a| a.is_empty()) {
            return Err(PolicyError::MissingActions);
        }
    }
    if let Some(error) = resource_error {
        return Err(PolicyError::Resource(error));
    }
    for key in ["Action", "NotAction"] {
        for action in statements.iter().filter_map(|s| s.get(key).and_then(strings)).flatten() {
            action_prefix(action)?;
        }
    }
    for s in statements {
        let has_principal = s.contains_key("Principal") || s.contains_key("NotPrincipal");
        let has_resource = s.get("Resource").or_else(|| s.get("NotResource")).and_then(strings).is_some_and(|r| !r.is_empty());
        // Which of these IAM reports first when a statement breaks two rules is not recorded;
        // the principal rule is checked first.
        match kind {
            Kind::Identity if has_principal => return Err(PolicyError::PrincipalNotAllowed),
            Kind::Identity if !has_resource => return Err(PolicyError::MissingResources),
            Kind::Trust if s.contains_key("Resource") || s.contains_key("NotResource") => return Err(PolicyError::ResourceNotAllowed),
            Kind::Trust | Kind::Resource if !has_principal => return Err(PolicyError::MissingPrincipal),
            Kind::Resource if !has_resource => return Err(PolicyError::MissingResources),
            _ => {}
        }
        for key in ["Principal", "NotPrincipal"] {
            if let Some(p) = s.get(key) {
                principal_values(p)?;
            }
        }
    }
    Ok(())
}

/// A date condition value as IAM's legacy parser accepts it: epoch seconds within `i64`, or
/// ISO 8601.
fn legacy_date(value: &str) -> Option<()> {
    let lower = value.to_ascii_lowercase();
    if lower.contains('t') || lower.contains('-') {
        // IAM reads years from -292275054 to 292278993 (Java's range); the calendar used here
        // stops sooner, so such a year is checked alone and the rest read with year 2000.
        let unsigned = lower.strip_prefix('-').unwrap_or(&lower);
        let year_len = unsigned.find(|c: char| !c.is_ascii_digit()).unwrap_or(unsigned.len());
        let year: i64 = unsigned[..year_len].parse().ok()?;
        let year = if lower.starts_with('-') { -year } else { year };
        if !(-292_275_054..=292_278_993).contains(&year) {
            return None;
        }
        parse_date(&format!("2000{}", &unsigned[year_len..])).map(drop)
    } else {
        value.parse::<i64>().ok().filter(|v| *v >= 0).map(drop)
    }
}

/// Why IAM refuses a resource's format, if it does (moto's rendering of IAM's messages).
fn resource_format(resource: &str) -> Option<String> {
    if resource == "*" {
        return None;
    }
    let Some((_, rest)) = resource.split_once(':') else {
        return Some(format!("Resource {resource} must be in ARN format or \"*\"."));
    };
    let (partition, rest) = match rest.split_once(':') {
        Some((p, r)) => (p, Some(r)),
        None => (rest, None),
    };
    if partition != "*" && !PARTITIONS.contains(&partition) {
        let rem: Vec<&str> = rest.unwrap_or_default().split(':').collect();
        let a1 = if !rem[0].is_empty() || rem.len() > 1 { rem[0] } else { "*" };
        let a2 = rem.get(1).copied().unwrap_or("*");
        let a3 = rem.get(2).copied().unwrap_or("*");
        let a4 = if rem.len() > 3 { rem[3..].join(":") } else { "*".to_string() };
        return Some(format!("Partition \"{partition}\" is not valid for resource \"arn:{partition}:{a1}:{a2}:{a3}:{a4}\"."));
    }
    let Some(rest) = rest else {
        return Some("Resource vendor must be fully qualified and cannot contain regexes.".to_string());
    };
    let (service, region_on) = rest.split_once(':').unwrap_or((rest, ""));
    let after_region = region_on.split_once(':').map_or("", |(_, r)| r);
    let resource_id = after_region.split_once(':').map_or("", |(_, r)| r);
    let has_region = !region_on.starts_with(':');
    if service == "iam" && has_region {
        return Some(format!("IAM resource {resource} cannot contain region information."));
    }
    if service == "s3" && has_region && !resource_id.starts_with("accesspoint/") {
        return Some(format!("Resource {resource} can not contain region information."));
    }
    if service == "iam" && !resource_id.starts_with('*') && !IAM_RESOURCE_PREFIXES.iter().any(|p| resource_id.starts_with(p)) {
        return Some(format!("IAM resource path must either be \"*\" or start with {}.", IAM_RESOURCE_PREFIXES.join(", ")));
    }
    None
}

/// IAM's legacy resource parse: an ARN with a `::` must have all six segments, and a service.
fn legacy_resource(resource: &str) -> bool {
    if resource == "*" {
        return true;
    }
    (resource.matches(':').count() >= 5 || !resource.contains("::")) && resource.split(':').nth(2).is_some_and(|s| !s.is_empty())
}

fn action_prefix(action: &str) -> Result<(), PolicyError> {
    let parts: Vec<&str> = action.split(':').collect();
    if parts.len() == 1 && parts[0] != "*" {
        return Err(PolicyError::ActionVendor);
    }
    if parts.len() > 2 {
        return Err(PolicyError::ActionColons);
    }
    let vendor = parts[0];
    if vendor != "*" && !vendor.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') {
        return Err(PolicyError::Vendor(vendor.to_string()));
    }
    Ok(())
}

/// Checks a `Principal` element's values: known types, and AWS principals IAM can resolve
/// (`*`, an account id, or an account's root, user, role or session ARN; no partial wildcards).
fn principal_values(value: &Value) -> Result<(), PolicyError> {
    let map = match value {
        Value::String(s) if s == "*" => return Ok(()),
        // The wording for a bare string other than "*" is not recorded; chosen to match the rest.
        Value::String(s) => return Err(PolicyError::InvalidPrincipal(format!("\"{s}\""))),
        Value::Object(map) => map,
        _ => return Err(PolicyError::Syntax),
    };
    for (kind, values) in map {
        let values = strings(values).ok_or(PolicyError::Syntax)?;
        for v in values {
            let ok = match kind.as_str() {
                "AWS" => valid_aws_principal(v),
                "Service" | "Federated" | "CanonicalUser" => !v.is_empty(),
                _ => false,
            };
            if !ok {
                return Err(PolicyError::InvalidPrincipal(format!("\"{kind}\":\"{v}\"")));
            }
        }
    }
    Ok(())
}

fn valid_aws_principal(v: &str) -> bool {
    let account = |a: &str| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit());
    if v == "*" || account(v) {
        return true;
    }
    if v.contains('*') {
        return false;
    }
    let parts: Vec<&str> = v.splitn(6, ':').collect();
    let [arn, partition, service, region, acct, resource] = parts[..] else { return false };
    if arn != "arn" || !PARTITIONS.contains(&partition) || !region.is_empty() || !account(acct) {
        return false;
    }
    match service {
        "iam" => resource == "root" || ["user/", "role/"].iter().any(|p| resource.starts_with(p) && resource.len() > p.len()),
        "sts" => ["assumed-role/", "federated-user/"].iter().any(|p| resource.starts_with(p) && resource.len() > p.len()),
        _ => false,
    }
}

fn compile(s: &Map<String, Value>, variables: bool) -> Statement {
    let list = |key: &str| s.get(key).and_then(strings).unwrap_or_default();
    let (action_key, not_action) = if s.contains_key("NotAction") { ("NotAction", true) } else { ("Action", false) };
    let actions = list(action_key).into_iter().map(|a| Pattern::new(pattern::compile(a, true, false, true))).collect();
    let resources = ["Resource", "NotResource"].iter().enumerate().find(|(_, k)| s.contains_key(**k)).map(|(i, key)| {
        let patterns = list(key)
            .into_iter()
            .map(|r| {
                let tokens = pattern::compile(r, true, variables, false);
                if r.starts_with("arn:") {
                    ResourcePattern::Arn(ArnPattern::new(tokens))
                } else {
                    ResourcePattern::Plain(Pattern::new(tokens))
                }
            })
            .collect();
        (patterns, i == 1)
    });
    let principal = ["Principal", "NotPrincipal"].iter().enumerate().find_map(|(i, key)| s.get(*key).map(|v| (principals(v), i == 1)));
    let mut conditions = Vec::new();
    for (operator, block) in s.get("Condition").and_then(Value::as_object).into_iter().flatten() {
        let Some(op) = Operator::parse(operator) else { continue };
        for (key, values) in block.as_object().into_iter().flatten() {
            conditions.push(Condition::new(op, key, &condition_values(values).unwrap_or_default(), variables));
        }
    }
    Statement {
        sid: s.get("Sid").and_then(Value::as_str).map(str::to_string),
        effect: if s.get("Effect").and_then(Value::as_str) == Some("Deny") { Effect::Deny } else { Effect::Allow },
        principal,
        actions: (actions, not_action),
        resources,
        conditions,
    }
}

fn principals(value: &Value) -> Principals {
    let mut p = Principals::default();
    let Value::Object(map) = value else {
        p.everyone = value.as_str() == Some("*");
        return p;
    };
    for (kind, values) in map {
        for v in strings(values).unwrap_or_default() {
            match kind.as_str() {
                "AWS" if v == "*" => p.everyone = true,
                "AWS" if v.len() == 12 && v.bytes().all(|b| b.is_ascii_digit()) => p.aws.push(format!("arn:aws:iam::{v}:root")),
                "AWS" => p.aws.push(v.to_string()),
                "Service" => p.service.push(v.to_string()),
                "Federated" => p.federated.push(v.to_string()),
                "CanonicalUser" => p.canonical_user.push(v.to_string()),
                _ => {}
            }
        }
    }
    p
}

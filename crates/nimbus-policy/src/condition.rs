//! The `Condition` element: AWS's condition operators compiled once per policy and evaluated
//! against a request's context keys, with the documented rules for absent keys, `…IfExists`,
//! the `ForAnyValue:`/`ForAllValues:` set operators and negated operators (IAM User Guide,
//! "Condition operators" and "Set operators for multivalued context keys").
//!
//! Within a block every operator and every key must hold (AND); a key's policy values are
//! alternatives (OR), and a negated operator holds when none of them matches (NOR).

use std::net::IpAddr;

use crate::pattern::{self, ArnPattern, Pattern, Resolve};
use crate::request::Request;

/// What an operator compares, before negation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    NumericEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    ArnLike,
    Null,
}

/// `(name, base, negated)` for every operator AWS documents.
const OPERATORS: &[(&str, Base, bool)] = &[
    ("StringEquals", Base::StringEquals, false),
    ("StringNotEquals", Base::StringEquals, true),
    ("StringEqualsIgnoreCase", Base::StringEqualsIgnoreCase, false),
    ("StringNotEqualsIgnoreCase", Base::StringEqualsIgnoreCase, true),
    ("StringLike", Base::StringLike, false),
    ("StringNotLike", Base::StringLike, true),
    ("NumericEquals", Base::NumericEquals, false),
    ("NumericNotEquals", Base::NumericEquals, true),
    ("NumericLessThan", Base::NumericLessThan, false),
    ("NumericLessThanEquals", Base::NumericLessThanEquals, false),
    ("NumericGreaterThan", Base::NumericGreaterThan, false),
    ("NumericGreaterThanEquals", Base::NumericGreaterThanEquals, false),
    ("DateEquals", Base::DateEquals, false),
    ("DateNotEquals", Base::DateEquals, true),
    ("DateLessThan", Base::DateLessThan, false),
    ("DateLessThanEquals", Base::DateLessThanEquals, false),
    ("DateGreaterThan", Base::DateGreaterThan, false),
    ("DateGreaterThanEquals", Base::DateGreaterThanEquals, false),
    ("Bool", Base::Bool, false),
    ("BinaryEquals", Base::BinaryEquals, false),
    ("IpAddress", Base::IpAddress, false),
    ("NotIpAddress", Base::IpAddress, true),
    ("ArnEquals", Base::ArnLike, false),
    ("ArnLike", Base::ArnLike, false),
    ("ArnNotEquals", Base::ArnLike, true),
    ("ArnNotLike", Base::ArnLike, true),
    ("Null", Base::Null, false),
];

/// `ForAnyValue:` / `ForAllValues:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetOperator {
    None,
    AnyValue,
    AllValues,
}

/// An operator name taken apart: `[ForAnyValue:|ForAllValues:]<Operator>[IfExists]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Operator {
    base: Base,
    negated: bool,
    set: SetOperator,
    if_exists: bool,
}

impl Operator {
    /// Parses an operator name (case-sensitive, as IAM reads them); `None` if it is unknown.
    pub(crate) fn parse(name: &str) -> Option<Self> {
        let (set, rest) = if let Some(rest) = name.strip_prefix("ForAnyValue:") {
            (SetOperator::AnyValue, rest)
        } else if let Some(rest) = name.strip_prefix("ForAllValues:") {
            (SetOperator::AllValues, rest)
        } else {
            (SetOperator::None, name)
        };
        let (rest, if_exists) = match rest.strip_suffix("IfExists") {
            Some(rest) => (rest, true),
            None => (rest, false),
        };
        let &(_, base, negated) = OPERATORS.iter().find(|(n, _, _)| *n == rest)?;
        // `Null` takes neither a set operator nor `IfExists`.
        if base == Base::Null && (if_exists || set != SetOperator::None) {
            return None;
        }
        Some(Self { base, negated, set, if_exists })
    }

    /// Whether the operator compares dates (their values are checked when a policy is parsed).
    pub(crate) fn is_date(&self) -> bool {
        matches!(
            self.base,
            Base::DateEquals | Base::DateLessThan | Base::DateLessThanEquals | Base::DateGreaterThan | Base::DateGreaterThanEquals
        )
    }
}

/// One policy value, compiled for its operator.
#[derive(Debug, Clone)]
enum Value {
    /// String operators: a pattern (wildcards only for `StringLike`; variables allowed).
    Text(Pattern),
    /// Numeric operators; `None` for a value that is not a number (it matches nothing).
    Number(Option<f64>),
    /// Date operators, in milliseconds since the epoch.
    Date(Option<i64>),
    /// `Bool` and `Null`.
    Bool(Option<bool>),
    /// `BinaryEquals`: the base64 text, compared as is.
    Binary(String),
    /// `IpAddress`: a network.
    Ip(Option<Cidr>),
    /// ARN operators (wildcards in every operator, as AWS documents).
    Arn(ArnPattern),
}

/// One key of one operator: `"StringEquals": {"aws:SourceAccount": ["1", "2"]}` gives one.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    operator: Operator,
    /// The context key, lowercased (AWS compares key names case-insensitively).
    key: String,
    values: Vec<Value>,
}

impl Condition {
    /// Compiles `key`'s values for `operator`; `variables`: whether `${…}` is a policy variable.
    pub(crate) fn new(operator: Operator, key: &str, values: &[String], variables: bool) -> Self {
        let values = values.iter().map(|v| compile_value(operator.base, v, variables)).collect();
        Self { operator, key: key.to_ascii_lowercase(), values }
    }

    /// Whether the condition holds for `request`.
    pub(crate) fn holds(&self, request: &Request<'_>) -> bool {
        let op = &self.operator;
        let found = request.values(&self.key);
        if op.base == Base::Null {
            let absent = found.is_none();
            return self.values.iter().any(|v| matches!(v, Value::Bool(Some(b)) if *b == absent));
        }
        let any_matches = |given: &str| self.values.iter().any(|v| value_matches(op.base, v, given, request));
        match (op.set, found) {
            // Absent key: no match, so a negated operator holds; `IfExists` holds either way.
            (SetOperator::None, None) => op.if_exists || op.negated,
            (SetOperator::None, Some(given)) => {
                let any = given.iter().any(any_matches);
                any != op.negated
            }
            // ForAnyValue on an absent or empty key is false; ForAllValues is true.
            (SetOperator::AnyValue, None) => op.if_exists,
            (SetOperator::AnyValue, Some(given)) => given.iter().any(|g| any_matches(g) != op.negated),
            (SetOperator::AllValues, None) => true,
            (SetOperator::AllValues, Some(given)) => given.iter().all(|g| any_matches(g) != op.negated),
        }
    }
}

fn compile_value(base: Base, text: &str, variables: bool) -> Value {
    match base {
        Base::StringEquals => Value::Text(Pattern::new(pattern::compile(text, false, variables, false))),
        Base::StringEqualsIgnoreCase => Value::Text(Pattern::new(pattern::compile(text, false, variables, true))),
        Base::StringLike => Value::Text(Pattern::new(pattern::compile(text, true, variables, false))),
        Base::NumericEquals
        | Base::NumericLessThan
        | Base::NumericLessThanEquals
        | Base::NumericGreaterThan
        | Base::NumericGreaterThanEquals => Value::Number(text.trim().parse().ok()),
        Base::DateEquals | Base::DateLessThan | Base::DateLessThanEquals | Base::DateGreaterThan | Base::DateGreaterThanEquals => {
            Value::Date(parse_date(text))
        }
        Base::Bool | Base::Null => Value::Bool(parse_bool(text)),
        Base::BinaryEquals => Value::Binary(text.to_string()),
        Base::IpAddress => Value::Ip(Cidr::parse(text)),
        Base::ArnLike => Value::Arn(ArnPattern::new(pattern::compile(text, true, variables, false))),
    }
}

fn parse_bool(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

fn value_matches(base: Base, policy: &Value, given: &str, vars: &dyn Resolve) -> bool {
    match (base, policy) {
        (Base::StringEqualsIgnoreCase, Value::Text(p)) => p.matches(given, true, vars),
        (_, Value::Text(p)) => p.matches(given, false, vars),
        (_, Value::Number(Some(want))) => {
            let Ok(got) = given.trim().parse::<f64>() else { return false };
            compare(base, got.partial_cmp(want))
        }
        (_, Value::Date(Some(want))) => {
            let Some(got) = parse_date(given) else { return false };
            compare(base, Some(got.cmp(want)))
        }
        (_, Value::Bool(Some(want))) => parse_bool(given) == Some(*want),
        (_, Value::Binary(want)) => given == want,
        (_, Value::Ip(Some(net))) => given.trim().parse::<IpAddr>().is_ok_and(|ip| net.contains(ip)),
        (_, Value::Arn(p)) => p.matches(given, vars),
        _ => false,
    }
}

fn compare(base: Base, ordering: Option<std::cmp::Ordering>) -> bool {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let Some(o) = ordering else { return false };
    match base {
        Base::NumericEquals | Base::DateEquals => o == Equal,
        Base::NumericLessThan | Base::DateLessThan => o == Less,
        Base::NumericLessThanEquals | Base::DateLessThanEquals => o != Greater,
        Base::NumericGreaterThan | Base::DateGreaterThan => o == Greater,
        Base::NumericGreaterThanEquals | Base::DateGreaterThanEquals => o != Less,
        _ => false,
    }
}

/// A date as AWS's date operators read it: epoch seconds (digits only) or ISO 8601 (a date,
/// optionally `T` and a time with fraction and `Z` or an offset). Milliseconds since the epoch.
pub(crate) fn parse_date(text: &str) -> Option<i64> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<i64>().ok()?.checked_mul(1000);
    }
    let upper = text.to_ascii_uppercase();
    let (date, time) = match upper.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (upper.as_str(), None),
    };
    let mut parts = date.split('-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u32 = parts.next().map_or(Some(1), |m| m.parse().ok())?;
    let day: u32 = parts.next().map_or(Some(1), |d| d.parse().ok())?;
    if parts.next().is_some() {
        return None;
    }
    let date = chrono::NaiveDate::from_ymd_opt(year, month, day)?;
    let (mut millis, mut offset_secs) = (0i64, 0i64);
    if let Some(time) = time.filter(|t| !t.is_empty()) {
        let (clock, zone) = match time.find(['Z', '+', '-']) {
            Some(i) => (&time[..i], &time[i..]),
            None => (time, ""),
        };
        let mut hms = clock.split(':');
        let h: u32 = hms.next()?.parse().ok()?;
        let m: u32 = hms.next().map_or(Some(0), |m| m.parse().ok())?;
        let (s, frac) = match hms.next() {
            Some(s) => match s.split_once('.') {
                Some((s, f)) => (s.parse::<u32>().ok()?, f),
                None => (s.parse::<u32>().ok()?, ""),
            },
            None => (0, ""),
        };
        if h > 23 || m > 59 || s > 59 || hms.next().is_some() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let frac_ms = format!("{frac:0<3}")[..3].parse::<i64>().ok()?;
        millis = (i64::from(h) * 3600 + i64::from(m) * 60 + i64::from(s)) * 1000 + frac_ms;
        if zone != "Z" && !zone.is_empty() {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let (oh, om) = zone[1..].split_once(':').unwrap_or((&zone[1..], "00"));
            if oh.len() != 2 || om.len() != 2 {
                return None;
            }
            let (oh, om): (i64, i64) = (oh.parse().ok()?, om.parse().ok()?);
            if oh > 23 || om > 59 {
                return None;
            }
            offset_secs = sign * (oh * 3600 + om * 60);
        }
    }
    let days = date.signed_duration_since(chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?).num_days();
    Some(days * 86_400_000 + millis - offset_secs * 1000)
}

/// An IPv4 or IPv6 network in CIDR notation (a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (text.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { addr, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let (net, ip, bits) = match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => (u128::from(u32::from(n)) << 96, u128::from(u32::from(i)) << 96, self.prefix),
            (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), self.prefix),
            _ => return false,
        };
        let mask = if bits == 0 { 0 } else { u128::MAX << (128 - u32::from(bits)) };
        net & mask == ip & mask
    }
}

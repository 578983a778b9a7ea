//! The leaf conditions of a rule, what one value of an event is tested against: exact values,
//! `prefix`, `suffix`, `equals-ignore-case`, `wildcard`, `anything-but`, `numeric`, `exists`,
//! `cidr`. Every dialect shares them; where dialects disagree on a value's meaning the
//! difference is a flag set when compiling.

use std::net::IpAddr;

use serde_json::Value;

/// A value a field has in an event: a JSON leaf, or a value the caller converted (an SNS
/// message attribute).
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
}

impl Scalar {
    /// The scalar a JSON value is; `None` for arrays and objects.
    pub fn from_json(v: &Value) -> Option<Scalar> {
        Some(match v {
            Value::String(s) => Scalar::Str(s.clone()),
            Value::Number(n) => Scalar::Num(n.as_f64()?),
            Value::Bool(b) => Scalar::Bool(*b),
            Value::Null => Scalar::Null,
            _ => return None,
        })
    }

    pub(crate) fn leaf(&self) -> Leaf<'_> {
        match self {
            Scalar::Str(s) => Leaf::Str(s),
            Scalar::Num(n) => Leaf::Num(*n),
            Scalar::Bool(b) => Leaf::Bool(*b),
            Scalar::Null => Leaf::Null,
        }
    }

    fn is(&self, leaf: Leaf<'_>) -> bool {
        match (self, leaf) {
            (Scalar::Str(a), Leaf::Str(b)) => a == b,
            (Scalar::Num(a), Leaf::Num(b)) => *a == b,
            (Scalar::Bool(a), Leaf::Bool(b)) => *a == b,
            (Scalar::Null, Leaf::Null) => true,
            _ => false,
        }
    }
}

/// One value of an event, borrowed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Leaf<'a> {
    Str(&'a str),
    Num(f64),
    Bool(bool),
    Null,
}

impl<'a> Leaf<'a> {
    /// The leaf a JSON value is; `None` for arrays and objects.
    pub(crate) fn of(v: &'a Value) -> Option<Leaf<'a>> {
        Some(match v {
            Value::String(s) => Leaf::Str(s),
            Value::Number(n) => Leaf::Num(n.as_f64()?),
            Value::Bool(b) => Leaf::Bool(*b),
            Value::Null => Leaf::Null,
            _ => return None,
        })
    }

    fn text(self) -> Option<&'a str> {
        match self {
            Leaf::Str(s) => Some(s),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Op {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn holds(self, value: f64, bound: f64) -> bool {
        match self {
            Op::Eq => value == bound,
            Op::Lt => value < bound,
            Op::Le => value <= bound,
            Op::Gt => value > bound,
            Op::Ge => value >= bound,
        }
    }
}

/// The tests an `anything-but` over strings refuses.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TextTest {
    Prefix(Vec<String>),
    Suffix(Vec<String>),
    /// Lowercased.
    IgnoreCase(Vec<String>),
    Wildcard(Vec<Wildcard>),
}

impl TextTest {
    fn any(&self, t: &str) -> bool {
        match self {
            TextTest::Prefix(ps) => ps.iter().any(|p| t.starts_with(p.as_str())),
            TextTest::Suffix(ps) => ps.iter().any(|p| t.ends_with(p.as_str())),
            TextTest::IgnoreCase(vs) => vs.contains(&t.to_lowercase()),
            TextTest::Wildcard(ws) => ws.iter().any(|w| w.matches(t)),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Matcher {
    Exact(Scalar),
    /// `value` is lowercased when `ignore_case`.
    Prefix {
        value: String,
        ignore_case: bool,
    },
    Suffix {
        value: String,
        ignore_case: bool,
    },
    /// Lowercased.
    EqualsIgnoreCase(String),
    Wildcard(Wildcard),
    /// Matches any present value other than these.
    AnythingBut(Vec<Scalar>),
    /// Matches a string that passes none of `test`. A value that is not a string matches in
    /// EventBridge (it passes no string test) and never in SNS (`strings_only`).
    AnythingButText {
        test: TextTest,
        strings_only: bool,
    },
    /// Every (operator, bound) must hold.
    Numeric(Vec<(Op, f64)>),
    /// Decided by the field's presence, not by a value (see `eval`).
    Exists(bool),
    Cidr(Cidr),
}

impl Matcher {
    /// Whether one value of the event matches (`Exists` is the caller's).
    pub(crate) fn matches(&self, v: Leaf<'_>) -> bool {
        let text = v.text();
        match self {
            Matcher::Exact(s) => s.is(v),
            Matcher::Prefix { value, ignore_case: false } => text.is_some_and(|t| t.starts_with(value.as_str())),
            Matcher::Prefix { value, ignore_case: true } => text.is_some_and(|t| t.to_lowercase().starts_with(value.as_str())),
            Matcher::Suffix { value, ignore_case: false } => text.is_some_and(|t| t.ends_with(value.as_str())),
            Matcher::Suffix { value, ignore_case: true } => text.is_some_and(|t| t.to_lowercase().ends_with(value.as_str())),
            Matcher::EqualsIgnoreCase(value) => text.is_some_and(|t| t.to_lowercase() == *value),
            Matcher::Wildcard(w) => text.is_some_and(|t| w.matches(t)),
            Matcher::AnythingBut(values) => !values.iter().any(|s| s.is(v)),
            Matcher::AnythingButText { test, strings_only } => match text {
                Some(t) => !test.any(t),
                None => !strings_only,
            },
            Matcher::Numeric(conds) => match v {
                Leaf::Num(n) => conds.iter().all(|(op, b)| op.holds(n, *b)),
                _ => false,
            },
            Matcher::Exists(_) => false,
            Matcher::Cidr(c) => text.is_some_and(|t| c.contains(t)),
        }
    }
}

/// A `wildcard` value: literal pieces between `*`s.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Wildcard {
    pieces: Vec<String>,
}

impl Wildcard {
    pub(crate) fn parse(s: &str) -> Result<Wildcard, String> {
        let mut pieces = vec![String::new()];
        let mut chars = s.chars().peekable();
        let mut last_star = false;
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(e @ ('*' | '\\')) => {
                        pieces.last_mut().expect("never empty").push(e);
                        last_star = false;
                    }
                    _ => return Err(format!("Invalid escape character in wildcard value {s}")),
                },
                '*' => {
                    if last_star {
                        return Err(format!("Consecutive wildcard characters are not allowed in {s}"));
                    }
                    pieces.push(String::new());
                    last_star = true;
                }
                c => {
                    pieces.last_mut().expect("never empty").push(c);
                    last_star = false;
                }
            }
        }
        Ok(Wildcard { pieces })
    }

    pub(crate) fn matches(&self, text: &str) -> bool {
        let (first, rest) = self.pieces.split_first().expect("never empty");
        let Some(mut t) = text.strip_prefix(first.as_str()) else { return false };
        let Some((last, middle)) = rest.split_last() else { return t.is_empty() };
        for piece in middle {
            match t.find(piece.as_str()) {
                Some(i) => t = &t[i + piece.len()..],
                None => return false,
            }
        }
        t.len() >= last.len() && t.ends_with(last.as_str())
    }
}

/// An IPv4 or IPv6 network.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    /// `net` with a prefix of `bits`, if the family has that many.
    pub(crate) fn new(net: IpAddr, bits: u8) -> Option<Cidr> {
        let max = if net.is_ipv4() { 32 } else { 128 };
        (bits <= max).then_some(Cidr { net, bits })
    }

    /// `address/bits`.
    pub(crate) fn parse(s: &str) -> Option<Cidr> {
        let (addr, bits) = s.split_once('/')?;
        let net: IpAddr = addr.parse().ok()?;
        Cidr::new(net, bits.parse().ok()?)
    }

    pub(crate) fn contains(&self, s: &str) -> bool {
        let Ok(ip) = s.parse::<IpAddr>() else { return false };
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.bits)).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.bits)).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_and_cidr() {
        for (w, text, expected) in [
            ("Simple*Service", "SimpleQueueService", true),
            ("Simple*Service", "SimpleService", true),
            ("Simple*Service", "SimpleQueueServices", false),
            ("*.png", "a.png", true),
            ("*.png", "a.jpg", false),
            ("dir/*/file*", "dir/x/file", true),
            ("dir/*/file*", "dir/file", false),
            ("a*b*a", "aba", true),
            ("a*b*a", "ab", false),
            ("lit\\*eral", "lit*eral", true),
            ("lit\\*eral", "litXeral", false),
            ("back\\\\slash", "back\\slash", true),
            ("*", "", true),
            ("", "", true),
            ("", "x", false),
        ] {
            let p = Wildcard::parse(w).expect("valid wildcard");
            assert_eq!(p.matches(text), expected, "{w} on {text}");
        }
        let c = Cidr::parse("2001:db8::/32").expect("valid");
        assert!(c.contains("2001:db8::1"));
        assert!(!c.contains("2001:db9::1"));
        assert!(!c.contains("10.0.0.1"));
        let c = Cidr::parse("0.0.0.0/0").expect("valid");
        assert!(c.contains("192.168.1.1"));
        let c = Cidr::parse("10.0.0.255/32").expect("valid");
        assert!(c.contains("10.0.0.255"));
        assert!(!c.contains("10.0.0.254"));
        let c = Cidr::parse("::/0").expect("valid");
        assert!(c.contains("fe80::1"));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("::/129").is_none());
    }
}

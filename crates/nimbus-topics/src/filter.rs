//! Subscription filter policies with AWS's matching rules, so a subscription receives only
//! the messages it asked for: exact strings, numbers, booleans and null, `prefix`, `suffix`,
//! `equals-ignore-case`, `anything-but` (values, prefix, suffix), `numeric` ranges, `exists`,
//! `cidr`, `$or`, and nested keys when the policy's scope is the message body. A policy is
//! parsed and validated once (with AWS's error messages) and evaluated per message.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{Map, Value};

use crate::error::TopicError;
use crate::message::MessageAttribute;

/// What a filter policy looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    #[default]
    MessageAttributes,
    MessageBody,
}

impl Scope {
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "MessageAttributes" => Some(Scope::MessageAttributes),
            "MessageBody" => Some(Scope::MessageBody),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::MessageAttributes => "MessageAttributes",
            Scope::MessageBody => "MessageBody",
        }
    }
}

/// A parsed, validated filter policy.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterPolicy {
    scope: Scope,
    root: Obj,
}

/// A policy object: every key must match, and one alternative of every `$or`.
#[derive(Debug, Clone, PartialEq, Default)]
struct Obj {
    keys: Vec<(String, Cond)>,
    ors: Vec<Vec<Obj>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Cond {
    /// A nested object (message body scope only).
    Nested(Obj),
    /// Rules of which one must match one of the key's values.
    Rules(Vec<Rule>),
}

#[derive(Debug, Clone, PartialEq)]
enum Rule {
    Exact(Val),
    Prefix(String),
    Suffix(String),
    EqualsIgnoreCase(String),
    AnythingBut(Vec<Val>),
    AnythingButPrefix(String),
    AnythingButSuffix(String),
    AnythingButIgnoreCase(Vec<String>),
    /// Every (operator, operand) must hold.
    Numeric(Vec<(NumOp, f64)>),
    Exists(bool),
    Cidr(IpAddr, u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumOp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A value a key has in a message: attribute values and JSON leaves, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
}

impl Val {
    fn from_json(v: &Value) -> Option<Val> {
        match v {
            Value::String(s) => Some(Val::Str(s.clone())),
            Value::Number(n) => n.as_f64().map(Val::Num),
            Value::Bool(b) => Some(Val::Bool(*b)),
            Value::Null => Some(Val::Null),
            _ => None,
        }
    }
}

/// AWS allows this many keys at the top of a policy.
const MAX_KEYS: usize = 5;
/// …and this many combinations of values.
const MAX_COMBINATIONS: usize = 150;
/// Largest policy text (bytes).
const MAX_POLICY_BYTES: usize = 256 * 1024;

struct Parser {
    scope: Scope,
    prefix: &'static str,
}

impl Parser {
    fn err(&self, msg: impl std::fmt::Display) -> TopicError {
        TopicError::InvalidParameter(format!("{}{msg}", self.prefix))
    }

    /// Returns the object and the number of value combinations it allows.
    fn obj(&self, map: &Map<String, Value>, depth: usize) -> Result<(Obj, usize), TopicError> {
        let mut obj = Obj::default();
        let mut combinations = 1usize;
        for (key, value) in map {
            match value {
                Value::Array(alts) if key == "$or" && alts.len() >= 2 && alts.iter().all(Value::is_object) => {
                    let mut parsed = Vec::with_capacity(alts.len());
                    let mut total = 0usize;
                    for alt in alts {
                        let Value::Object(m) = alt else { continue };
                        let (o, c) = self.obj(m, depth)?;
                        total = total.saturating_add(c);
                        parsed.push(o);
                    }
                    combinations = combinations.saturating_mul(total);
                    obj.ors.push(parsed);
                }
                Value::Object(m) => {
                    if self.scope == Scope::MessageAttributes {
                        return Err(self.err("Filter policy scope MessageAttributes does not support nested filter policy"));
                    }
                    let (o, c) = self.obj(m, depth + 1)?;
                    combinations = combinations.saturating_mul(c);
                    obj.keys.push((key.clone(), Cond::Nested(o)));
                }
                Value::Array(items) => {
                    if items.is_empty() {
                        return Err(self.err("FilterPolicy: Empty arrays are not allowed"));
                    }
                    let rules = items.iter().map(|r| self.rule(r)).collect::<Result<Vec<_>, _>>()?;
                    combinations = combinations.saturating_mul(rules.len().saturating_mul(depth));
                    obj.keys.push((key.clone(), Cond::Rules(rules)));
                }
                _ => return Err(self.err(format!("FilterPolicy: \"{key}\" must be an object or an array"))),
            }
        }
        Ok((obj, combinations))
    }

    fn scalar(&self, v: &Value) -> Result<Val, TopicError> {
        match v {
            Value::Array(_) | Value::Object(_) => Err(self.err("FilterPolicy: Match value must be String, number, true, false, or null")),
            other => {
                Val::from_json(other).ok_or_else(|| self.err("FilterPolicy: Match value must be String, number, true, false, or null"))
            }
        }
    }

    fn string(&self, op: &str, v: &Value) -> Result<String, TopicError> {
        v.as_str().map(str::to_string).ok_or_else(|| self.err(format!("FilterPolicy: {op} match pattern must be a string")))
    }

    fn rule(&self, v: &Value) -> Result<Rule, TopicError> {
        let Value::Object(m) = v else { return Ok(Rule::Exact(self.scalar(v)?)) };
        let mut it = m.iter();
        let (Some((op, value)), None) = (it.next(), it.next()) else {
            return Err(self.err("FilterPolicy: Only one key allowed in match expression"));
        };
        Ok(match op.as_str() {
            "prefix" => Rule::Prefix(self.string(op, value)?),
            "suffix" => Rule::Suffix(self.string(op, value)?),
            "equals-ignore-case" => Rule::EqualsIgnoreCase(self.string(op, value)?),
            "exists" => match value {
                Value::Bool(b) => Rule::Exists(*b),
                _ => return Err(self.err("FilterPolicy: exists match pattern must be either true or false.")),
            },
            "numeric" => Rule::Numeric(self.numeric(value)?),
            "cidr" => self.cidr(value)?,
            "anything-but" => match value {
                Value::Array(items) => {
                    if items.is_empty() {
                        return Err(self.err("FilterPolicy: Empty arrays are not allowed"));
                    }
                    let vals = items
                        .iter()
                        .map(|i| match i {
                            Value::String(_) | Value::Number(_) => self.scalar(i),
                            _ => Err(self.err("FilterPolicy: Inside anything but list, start|null|boolean is not supported.")),
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    Rule::AnythingBut(vals)
                }
                Value::Object(inner) => {
                    let mut it = inner.iter();
                    let (Some((iop, ivalue)), None) = (it.next(), it.next()) else {
                        return Err(self.err("FilterPolicy: Only one key allowed in match expression"));
                    };
                    match iop.as_str() {
                        "prefix" => Rule::AnythingButPrefix(self.string(iop, ivalue)?),
                        "suffix" => Rule::AnythingButSuffix(self.string(iop, ivalue)?),
                        "equals-ignore-case" => match ivalue {
                            Value::String(s) => Rule::AnythingButIgnoreCase(vec![s.clone()]),
                            Value::Array(items) if !items.is_empty() => {
                                Rule::AnythingButIgnoreCase(items.iter().map(|i| self.string(iop, i)).collect::<Result<Vec<_>, _>>()?)
                            }
                            _ => return Err(self.err("FilterPolicy: equals-ignore-case match pattern must be a string")),
                        },
                        other => return Err(self.err(format!("FilterPolicy: Unsupported anything-but pattern: {other}"))),
                    }
                }
                Value::String(_) | Value::Number(_) => Rule::AnythingBut(vec![self.scalar(value)?]),
                _ => return Err(self.err("FilterPolicy: Inside anything but list, start|null|boolean is not supported.")),
            },
            other => return Err(self.err(format!("FilterPolicy: Unrecognized match type {other}"))),
        })
    }

    fn numeric(&self, v: &Value) -> Result<Vec<(NumOp, f64)>, TopicError> {
        let Value::Array(items) = v else { return Err(self.err("FilterPolicy: Value of numeric must be an array.")) };
        if items.is_empty() {
            return Err(self.err("FilterPolicy: Invalid member in numeric match: ]"));
        }
        let op_of = |x: &Value, first: bool| -> Result<NumOp, TopicError> {
            let Some(s) = x.as_str() else {
                return Err(if first {
                    self.err(format!("FilterPolicy: Invalid member in numeric match: {x}"))
                } else {
                    self.err(format!("FilterPolicy: Bad value in numeric range: {x}"))
                });
            };
            match (s, first) {
                ("=", true) => Ok(NumOp::Eq),
                (">", true) => Ok(NumOp::Gt),
                (">=", true) => Ok(NumOp::Ge),
                ("<", _) => Ok(NumOp::Lt),
                ("<=", _) => Ok(NumOp::Le),
                (other, true) => Err(self.err(format!("FilterPolicy: Unrecognized numeric range operator: {other}"))),
                (other, false) => Err(self.err(format!("FilterPolicy: Bad numeric range operator: {other}"))),
            }
        };
        let num_of = |x: Option<&Value>, op: &str| -> Result<f64, TopicError> {
            x.and_then(Value::as_f64).ok_or_else(|| {
                let name = if op == "=" { "equals" } else { op };
                self.err(format!("FilterPolicy: Value of {name} must be numeric"))
            })
        };
        let first = op_of(&items[0], true)?;
        let a = num_of(items.get(1), items[0].as_str().unwrap_or(""))?;
        let mut out = vec![(first, a)];
        if items.len() > 2 {
            if !matches!(first, NumOp::Gt | NumOp::Ge) {
                return Err(self.err("FilterPolicy: Too many elements in numeric expression"));
            }
            let second = op_of(&items[2], false)?;
            let b = num_of(items.get(3), items[2].as_str().unwrap_or(""))?;
            if b <= a {
                return Err(self.err("FilterPolicy: Bottom must be less than top"));
            }
            if items.len() > 4 {
                return Err(self.err("FilterPolicy: Too many terms in numeric range expression"));
            }
            out.push((second, b));
        }
        Ok(out)
    }

    fn cidr(&self, v: &Value) -> Result<Rule, TopicError> {
        let s = self.string("prefix", v)?;
        let Some((addr, bits)) = s.split_once('/') else { return Err(self.err("FilterPolicy: Malformed CIDR, one '/' required")) };
        let bits: u8 = bits.parse().map_err(|_| self.err("FilterPolicy: Malformed CIDR, mask bits must be an integer"))?;
        let ip: IpAddr = addr.parse().map_err(|_| self.err(format!("FilterPolicy: Nonstandard IP address: {addr}")))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        if bits > max {
            return Err(self.err(format!("FilterPolicy: Nonstandard IP address: {addr}")));
        }
        Ok(Rule::Cidr(ip, bits))
    }
}

impl FilterPolicy {
    /// Parses and validates `text`. `on_subscribe` selects AWS's message prefix (Subscribe
    /// reports attribute errors as `Attributes Reason: …`).
    pub fn parse(text: &str, scope: Scope, on_subscribe: bool) -> Result<FilterPolicy, TopicError> {
        let parser = Parser { scope, prefix: if on_subscribe { "Invalid parameter: Attributes Reason: " } else { "Invalid parameter: " } };
        if text.len() > MAX_POLICY_BYTES {
            return Err(parser.err("FilterPolicy: Filter policy is too large"));
        }
        let value: Value = serde_json::from_str(text).map_err(|_| parser.err("FilterPolicy: failed to parse JSON."))?;
        let Value::Object(map) = value else { return Err(parser.err("FilterPolicy: Filter policy must be a JSON object")) };
        if map.keys().filter(|k| *k != "$or").count() > MAX_KEYS {
            return Err(parser.err("FilterPolicy: Filter policy can not have more than 5 keys"));
        }
        let (root, combinations) = parser.obj(&map, 1)?;
        if combinations > MAX_COMBINATIONS {
            return Err(parser.err("FilterPolicy: Filter policy is too complex"));
        }
        Ok(FilterPolicy { scope, root })
    }

    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// Whether a message with these attributes and this body passes the policy.
    pub fn matches(&self, attributes: &BTreeMap<String, MessageAttribute>, body: &str) -> bool {
        match self.scope {
            Scope::MessageAttributes => self.root.eval(&|path: &[&str]| attribute_values(attributes, path), &mut Vec::new()),
            Scope::MessageBody => {
                if self.root.keys.is_empty() && self.root.ors.is_empty() {
                    return true;
                }
                match serde_json::from_str::<Value>(body) {
                    Ok(doc @ Value::Object(_)) => self.root.eval(&|path: &[&str]| body_values(&doc, path), &mut Vec::new()),
                    _ => false,
                }
            }
        }
    }
}

type Lookup<'a> = dyn Fn(&[&str]) -> (bool, Vec<Val>) + 'a;

impl Obj {
    fn eval<'k>(&'k self, lookup: &Lookup<'_>, path: &mut Vec<&'k str>) -> bool {
        let keys_ok = self.keys.iter().all(|(key, cond)| {
            path.push(key.as_str());
            let ok = match cond {
                Cond::Nested(o) => o.eval(lookup, path),
                Cond::Rules(rules) => {
                    let (present, values) = lookup(path);
                    rules.iter().any(|r| match r {
                        Rule::Exists(want) => *want == present,
                        _ => values.iter().any(|v| r.matches(v)),
                    })
                }
            };
            path.pop();
            ok
        });
        keys_ok && self.ors.iter().all(|alts| alts.iter().any(|o| o.eval(lookup, path)))
    }
}

fn eq_ignore_case(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

impl Rule {
    fn matches(&self, v: &Val) -> bool {
        match (self, v) {
            (Rule::Exact(want), v) => want == v,
            (Rule::Prefix(p), Val::Str(s)) => s.starts_with(p.as_str()),
            (Rule::Suffix(p), Val::Str(s)) => s.ends_with(p.as_str()),
            (Rule::EqualsIgnoreCase(p), Val::Str(s)) => eq_ignore_case(p, s),
            (Rule::AnythingBut(list), v) => !list.contains(v),
            (Rule::AnythingButPrefix(p), Val::Str(s)) => !s.starts_with(p.as_str()),
            (Rule::AnythingButSuffix(p), Val::Str(s)) => !s.ends_with(p.as_str()),
            (Rule::AnythingButIgnoreCase(list), Val::Str(s)) => !list.iter().any(|p| eq_ignore_case(p, s)),
            (Rule::Numeric(conds), Val::Num(n)) => conds.iter().all(|(op, x)| match op {
                NumOp::Eq => n == x,
                NumOp::Lt => n < x,
                NumOp::Le => n <= x,
                NumOp::Gt => n > x,
                NumOp::Ge => n >= x,
            }),
            (Rule::Cidr(net, bits), Val::Str(s)) => s.parse::<IpAddr>().is_ok_and(|ip| in_network(ip, *net, *bits)),
            _ => false,
        }
    }
}

fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let mask = |width: u32| -> u128 {
        if bits == 0 {
            0
        } else {
            (!0u128 << (width - u32::from(bits))) & if width == 128 { !0 } else { (1u128 << width) - 1 }
        }
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let m = mask(32);
            (u128::from(u32::from(a)) & m) == (u128::from(u32::from(b)) & m)
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let m = mask(128);
            (u128::from(a) & m) == (u128::from(b) & m)
        }
        _ => false,
    }
}

/// A message attribute's values as the policy sees them: `Number` types as numbers,
/// `String.Array` as its JSON array's elements, other `String` types as strings; `Binary`
/// attributes exist but have no value to match.
fn attribute_values(attributes: &BTreeMap<String, MessageAttribute>, path: &[&str]) -> (bool, Vec<Val>) {
    let [name] = path else { return (false, Vec::new()) };
    let Some(attr) = attributes.get(*name) else { return (false, Vec::new()) };
    let text = attr.string_value.as_deref();
    let values = if attr.data_type.starts_with("String.Array") {
        match text.and_then(|t| serde_json::from_str::<Value>(t).ok()) {
            Some(Value::Array(items)) => items.iter().filter_map(Val::from_json).collect(),
            _ => Vec::new(),
        }
    } else if attr.data_type.starts_with("Number") {
        text.and_then(|t| t.trim().parse::<f64>().ok()).map(Val::Num).into_iter().collect()
    } else if attr.data_type.starts_with("String") {
        text.map(|t| Val::Str(t.to_string())).into_iter().collect()
    } else {
        Vec::new()
    };
    (true, values)
}

/// The leaf values at `path` in a JSON document, looking through arrays at every level.
fn body_values(doc: &Value, path: &[&str]) -> (bool, Vec<Val>) {
    fn leaves(v: &Value, out: &mut Vec<Val>) {
        match v {
            Value::Array(items) => items.iter().for_each(|i| leaves(i, out)),
            Value::Object(_) => {}
            other => out.extend(Val::from_json(other)),
        }
    }
    fn walk(v: &Value, path: &[&str], out: &mut Vec<Val>) {
        match (path.split_first(), v) {
            (None, v) => leaves(v, out),
            (Some(_), Value::Array(items)) => items.iter().for_each(|i| walk(i, path, out)),
            (Some((key, rest)), Value::Object(m)) => {
                if let Some(child) = m.get(*key) {
                    walk(child, rest, out)
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(doc, path, &mut out);
    (!out.is_empty(), out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's documented example message (sns-subscription-filter-policies).
    fn attributes() -> BTreeMap<String, MessageAttribute> {
        let mut a = BTreeMap::new();
        a.insert("customer_interests".into(), MessageAttribute::string("String.Array", r#"["soccer", "rugby", "hockey"]"#));
        a.insert("store".into(), MessageAttribute::string("String", "example_corp"));
        a.insert("event".into(), MessageAttribute::string("String", "order_placed"));
        a.insert("price_usd".into(), MessageAttribute::string("Number", "210.75"));
        a.insert("source_ip".into(), MessageAttribute::string("String", "10.0.0.255"));
        a.insert("blob".into(), MessageAttribute::binary("Binary", b"\x01\x02"));
        a
    }

    const BODY: &str = r#"{"store":"example_corp","event":"order_placed","customer":{"interests":["soccer","rugby"],"age":35,"vip":true,"nick":null},
        "items":[{"sku":"a","qty":2},{"sku":"b","qty":5}]}"#;

    fn check(scope: Scope, policy: &str, expected: bool) {
        let p = FilterPolicy::parse(policy, scope, false).unwrap_or_else(|e| panic!("{policy}: {e}"));
        assert_eq!(p.matches(&attributes(), BODY), expected, "{scope:?} {policy}");
    }

    #[test]
    fn attribute_policies() {
        let table: &[(&str, bool)] = &[
            // AWS's example policy accepting the example message.
            (
                r#"{"store":["example_corp"],"event":[{"anything-but":"order_cancelled"}],"customer_interests":["rugby","football","baseball"],"price_usd":[{"numeric":[">=",100]}]}"#,
                true,
            ),
            (r#"{"store":["example_corp"],"price_usd":[{"numeric":["<",100]}]}"#, false),
            (r#"{"store":["other_corp","example_corp"]}"#, true),
            (r#"{"store":["Example_corp"]}"#, false),
            (r#"{"store":[{"equals-ignore-case":"EXAMPLE_CORP"}]}"#, true),
            (r#"{"customer_interests":["rugby"]}"#, true),
            (r#"{"customer_interests":["baseball"]}"#, false),
            (r#"{"customer_interests":[{"prefix":"hock"}]}"#, true),
            (r#"{"event":[{"prefix":"order_"}]}"#, true),
            (r#"{"event":[{"suffix":"_placed"}]}"#, true),
            (r#"{"event":[{"suffix":"_cancelled"}]}"#, false),
            (r#"{"event":[{"anything-but":["order_cancelled","order_failed"]}]}"#, true),
            (r#"{"event":[{"anything-but":["order_placed"]}]}"#, false),
            (r#"{"event":[{"anything-but":{"prefix":"order"}}]}"#, false),
            (r#"{"event":[{"anything-but":{"prefix":"refund"}}]}"#, true),
            (r#"{"event":[{"anything-but":{"suffix":"placed"}}]}"#, false),
            (r#"{"missing":[{"anything-but":"x"}]}"#, false),
            (r#"{"price_usd":[210.75]}"#, true),
            (r#"{"price_usd":[210.7]}"#, false),
            (r#"{"price_usd":["210.75"]}"#, false),
            (r#"{"price_usd":[{"numeric":["=",210.75]}]}"#, true),
            (r#"{"price_usd":[{"numeric":[">",0,"<=",210.75]}]}"#, true),
            (r#"{"price_usd":[{"numeric":[">",0,"<",210.75]}]}"#, false),
            (r#"{"price_usd":[{"anything-but":[100,200]}]}"#, true),
            (r#"{"price_usd":[{"anything-but":[210.75]}]}"#, false),
            (r#"{"store":[{"numeric":[">",0]}]}"#, false),
            (r#"{"store":[{"exists":true}]}"#, true),
            (r#"{"store":[{"exists":false}]}"#, false),
            (r#"{"missing":[{"exists":false}]}"#, true),
            (r#"{"missing":[{"exists":true}]}"#, false),
            (r#"{"missing":["x"]}"#, false),
            (r#"{"blob":[{"exists":true}]}"#, true),
            (r#"{"missing":["x",{"exists":false}]}"#, true),
            (r#"{"source_ip":[{"cidr":"10.0.0.0/24"}]}"#, true),
            (r#"{"source_ip":[{"cidr":"10.0.1.0/24"}]}"#, false),
            (r#"{"$or":[{"store":["nope"]},{"event":["order_placed"]}]}"#, true),
            (r#"{"$or":[{"store":["nope"]},{"event":["nope"]}]}"#, false),
            (r#"{"store":["nope"],"$or":[{"store":["example_corp"]},{"event":["order_placed"]}]}"#, false),
            (r#"{"store":["example_corp"],"$or":[{"price_usd":[{"numeric":[">",500]}]},{"customer_interests":["soccer"]}]}"#, true),
            ("{}", true),
        ];
        for (policy, expected) in table {
            check(Scope::MessageAttributes, policy, *expected);
        }
    }

    #[test]
    fn body_policies() {
        let table: &[(&str, bool)] = &[
            (r#"{"store":["example_corp"]}"#, true),
            (r#"{"customer":{"interests":["rugby"]}}"#, true),
            (r#"{"customer":{"interests":["golf"]}}"#, false),
            (r#"{"customer":{"age":[{"numeric":[">",30]}]}}"#, true),
            (r#"{"customer":{"age":[35]}}"#, true),
            (r#"{"customer":{"age":["35"]}}"#, false),
            (r#"{"customer":{"vip":[true]}}"#, true),
            (r#"{"customer":{"nick":[null]}}"#, true),
            (r#"{"customer":{"name":[{"exists":false}]}}"#, true),
            (r#"{"customer":{"age":[{"exists":true}]}}"#, true),
            (r#"{"customer":[{"exists":true}]}"#, false),
            (r#"{"items":{"sku":["b"]}}"#, true),
            (r#"{"items":{"qty":[{"numeric":[">",10]}]}}"#, false),
            (r#"{"items":{"sku":["a"],"qty":[5]}}"#, true),
            (r#"{"$or":[{"customer":{"age":[1]}},{"items":{"sku":["a"]}}]}"#, true),
            (r#"{"customer":{"$or":[{"age":[1]},{"interests":[{"prefix":"rug"}]}]}}"#, true),
            (r#"{"event":[{"anything-but":"order_placed"}]}"#, false),
        ];
        for (policy, expected) in table {
            check(Scope::MessageBody, policy, *expected);
        }
        let p = FilterPolicy::parse(r#"{"a":["b"]}"#, Scope::MessageBody, false).expect("policy");
        assert!(!p.matches(&BTreeMap::new(), "not json"));
        assert!(!p.matches(&BTreeMap::new(), "[1]"));
        assert!(p.matches(&BTreeMap::new(), r#"{"a":"b"}"#));
    }

    #[test]
    fn invalid_policies_have_aws_messages() {
        let table: &[(Scope, &str, &str)] = &[
            (Scope::MessageAttributes, "not json", "FilterPolicy: failed to parse JSON."),
            (Scope::MessageAttributes, r#"{"a":"x"}"#, "FilterPolicy: \"a\" must be an object or an array"),
            (Scope::MessageAttributes, r#"{"a":[]}"#, "FilterPolicy: Empty arrays are not allowed"),
            (
                Scope::MessageAttributes,
                r#"{"a":{"b":["x"]}}"#,
                "Filter policy scope MessageAttributes does not support nested filter policy",
            ),
            (Scope::MessageAttributes, r#"{"a":[{"numeric":["<",1,">",2]}]}"#, "FilterPolicy: Too many elements in numeric expression"),
            (Scope::MessageAttributes, r#"{"a":[{"numeric":[">",5,"<",1]}]}"#, "FilterPolicy: Bottom must be less than top"),
            (Scope::MessageAttributes, r#"{"a":[{"numeric":["~",1]}]}"#, "FilterPolicy: Unrecognized numeric range operator: ~"),
            (Scope::MessageAttributes, r#"{"a":[{"numeric":["=","x"]}]}"#, "FilterPolicy: Value of equals must be numeric"),
            (Scope::MessageAttributes, r#"{"a":[{"foo":1}]}"#, "FilterPolicy: Unrecognized match type foo"),
            (Scope::MessageAttributes, r#"{"a":[{"prefix":1}]}"#, "FilterPolicy: prefix match pattern must be a string"),
            (Scope::MessageAttributes, r#"{"a":[{"exists":"yes"}]}"#, "FilterPolicy: exists match pattern must be either true or false."),
            (Scope::MessageAttributes, r#"{"a":[{"prefix":"x","suffix":"y"}]}"#, "FilterPolicy: Only one key allowed in match expression"),
            (Scope::MessageAttributes, r#"{"a":[{"anything-but":{"foo":"x"}}]}"#, "FilterPolicy: Unsupported anything-but pattern: foo"),
            (Scope::MessageAttributes, r#"{"a":[["x"]]}"#, "FilterPolicy: Match value must be String, number, true, false, or null"),
            (
                Scope::MessageAttributes,
                r#"{"a":["1"],"b":["1"],"c":["1"],"d":["1"],"e":["1"],"f":["1"]}"#,
                "FilterPolicy: Filter policy can not have more than 5 keys",
            ),
            (Scope::MessageBody, r#"{"a":[{"cidr":"10.0.0.0"}]}"#, "FilterPolicy: Malformed CIDR, one '/' required"),
        ];
        for (scope, policy, message) in table {
            let e = FilterPolicy::parse(policy, *scope, false).expect_err(policy);
            assert_eq!(e, TopicError::InvalidParameter(format!("Invalid parameter: {message}")), "{policy}");
            let e = FilterPolicy::parse(policy, *scope, true).expect_err(policy);
            assert_eq!(e, TopicError::InvalidParameter(format!("Invalid parameter: Attributes Reason: {message}")), "{policy}");
        }
        let many: Vec<String> = (0..151).map(|i| format!("\"v{i}\"")).collect();
        let complex = format!(r#"{{"a":[{}]}}"#, many.join(","));
        FilterPolicy::parse(&complex, Scope::MessageAttributes, false).unwrap_err();
    }
}

//! Compiling a rule's JSON text into the tree `eval` matches, with each dialect's checks and
//! its own wording: EventBridge's reasons (which Lambda's FilterCriteria share), SNS's
//! `FilterPolicy: …` messages and limits (policy size, 5 keys, 150 combinations, nested keys
//! only on message bodies). The returned reason is wrapped by [`crate::Pattern::parse`].

use std::fmt::Display;
use std::net::IpAddr;

use serde_json::{Map, Value};

use crate::eval::{Field, Node};
use crate::matcher::{Cidr, Matcher, Op, TextTest, Wildcard};
use crate::{Dialect, Scalar, Scope};

/// SNS allows this many keys at the top of a policy…
const MAX_KEYS: usize = 5;
/// …and this many combinations of values.
const MAX_COMBINATIONS: usize = 150;
/// Largest SNS policy text (bytes).
const MAX_POLICY_BYTES: usize = 256 * 1024;

type Reason = String;

/// Compiles `text`, or gives the dialect's reason for refusing it.
pub(crate) fn compile(dialect: Dialect, text: &str) -> Result<Node, Reason> {
    match dialect {
        Dialect::EventPattern | Dialect::FilterCriteria => {
            let c = Compiler { sns: None };
            let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
            let Value::Object(obj) = &value else { return Err("Filter is not an object".into()) };
            if obj.is_empty() {
                return Err("Empty event pattern is not allowed".into());
            }
            Ok(c.node(obj, 1)?.0)
        }
        Dialect::FilterPolicy(scope) => {
            let c = Compiler { sns: Some(scope) };
            if text.len() > MAX_POLICY_BYTES {
                return Err(c.msg("Filter policy is too large"));
            }
            let value: Value = serde_json::from_str(text).map_err(|_| c.msg("failed to parse JSON."))?;
            let Value::Object(obj) = value else { return Err(c.msg("Filter policy must be a JSON object")) };
            if obj.keys().filter(|k| *k != "$or").count() > MAX_KEYS {
                return Err(c.msg(format!("Filter policy can not have more than {MAX_KEYS} keys")));
            }
            let (root, combinations) = c.node(&obj, 1)?;
            if combinations > MAX_COMBINATIONS {
                return Err(c.msg("Filter policy is too complex"));
            }
            Ok(root)
        }
    }
}

struct Compiler {
    /// The SNS policy's scope; `None` for EventBridge's language.
    sns: Option<Scope>,
}

/// `$or` means OR only in the form Event Ruler gives it: an array of two or more objects.
fn is_or(items: &[Value]) -> bool {
    items.len() >= 2 && items.iter().all(Value::is_object)
}

impl Compiler {
    fn is_sns(&self) -> bool {
        self.sns.is_some()
    }

    /// A reason as the dialect words it: SNS names the attribute first.
    fn msg(&self, text: impl Display) -> Reason {
        if self.is_sns() {
            format!("FilterPolicy: {text}")
        } else {
            text.to_string()
        }
    }

    /// One object level, and the number of value combinations it allows (SNS's complexity:
    /// a field's values count once per level of nesting).
    fn node(&self, obj: &Map<String, Value>, depth: usize) -> Result<(Node, usize), Reason> {
        let mut node = Node::default();
        let mut combinations = 1usize;
        for (key, v) in obj {
            match v {
                Value::Array(alts) if key == "$or" && is_or(alts) => {
                    let mut parsed = Vec::with_capacity(alts.len());
                    let mut total = 0usize;
                    for alt in alts.iter().filter_map(Value::as_object) {
                        if alt.is_empty() && !self.is_sns() {
                            return Err("Empty objects are not allowed in $or".into());
                        }
                        let (n, c) = self.node(alt, depth)?;
                        total = total.saturating_add(c);
                        parsed.push(n);
                    }
                    combinations = combinations.saturating_mul(total);
                    node.ors.push(parsed);
                }
                Value::Object(o) => {
                    if self.sns == Some(Scope::MessageAttributes) {
                        return Err("Filter policy scope MessageAttributes does not support nested filter policy".into());
                    }
                    let (n, c) = self.node(o, depth + 1)?;
                    combinations = combinations.saturating_mul(c);
                    node.fields.push((key.clone(), Field::Object(n)));
                }
                Value::Array(items) => {
                    if items.is_empty() {
                        return Err(if self.is_sns() {
                            self.msg("Empty arrays are not allowed")
                        } else {
                            format!("Empty arrays are not allowed (\"{key}\")")
                        });
                    }
                    let matchers = items.iter().map(|i| self.matcher(key, i)).collect::<Result<Vec<_>, _>>()?;
                    combinations = combinations.saturating_mul(matchers.len().saturating_mul(depth));
                    node.fields.push((key.clone(), Field::Leaf(matchers)));
                }
                _ => return Err(self.msg(format!("\"{key}\" must be an object or an array"))),
            }
        }
        Ok((node, combinations))
    }

    fn string(&self, op: &str, v: &Value) -> Result<String, Reason> {
        v.as_str().map(str::to_string).ok_or_else(|| self.msg(format!("{op} match pattern must be a string")))
    }

    fn matcher(&self, key: &str, item: &Value) -> Result<Matcher, Reason> {
        if let Some(s) = Scalar::from_json(item) {
            return Ok(Matcher::Exact(s));
        }
        let Value::Object(o) = item else {
            return Err(if self.is_sns() {
                self.msg("Match value must be String, number, true, false, or null")
            } else {
                format!("Match value must be String, number, true, false, or null (\"{key}\")")
            });
        };
        let mut entries = o.iter();
        let (Some((op, v)), None) = (entries.next(), entries.next()) else {
            return Err(if self.is_sns() {
                self.msg("Only one key allowed in match expression")
            } else {
                format!("Match expressions must have exactly one key (\"{key}\")")
            });
        };
        Ok(match op.as_str() {
            "prefix" => {
                let (value, ignore_case) = self.affix(op, v)?;
                Matcher::Prefix { value, ignore_case }
            }
            "suffix" => {
                let (value, ignore_case) = self.affix(op, v)?;
                Matcher::Suffix { value, ignore_case }
            }
            "equals-ignore-case" => Matcher::EqualsIgnoreCase(self.string(op, v)?.to_lowercase()),
            "wildcard" if !self.is_sns() => Matcher::Wildcard(Wildcard::parse(&self.string(op, v)?)?),
            "exists" => match v {
                Value::Bool(b) => Matcher::Exists(*b),
                _ => return Err(self.msg("exists match pattern must be either true or false.")),
            },
            "cidr" => Matcher::Cidr(if self.is_sns() { self.sns_cidr(v)? } else { self.cidr(v)? }),
            "numeric" => Matcher::Numeric(if self.is_sns() { self.sns_numeric(v)? } else { numeric(v)? }),
            "anything-but" => {
                if self.is_sns() {
                    self.sns_anything_but(v)?
                } else {
                    self.anything_but(v)?
                }
            }
            other => return Err(self.msg(format!("Unrecognized match type {other}"))),
        })
    }

    /// `{"prefix": "x"}`, and in EventBridge `{"prefix": {"equals-ignore-case": "x"}}`
    /// (likewise suffix): the value (lowercased when case is ignored) and whether it is.
    fn affix(&self, op: &str, v: &Value) -> Result<(String, bool), Reason> {
        match v {
            Value::String(s) => Ok((s.clone(), false)),
            Value::Object(o) if o.len() == 1 && !self.is_sns() => match o.get("equals-ignore-case") {
                Some(Value::String(s)) => Ok((s.to_lowercase(), true)),
                _ => Err(format!("Unsupported {op} pattern: only a string or equals-ignore-case is allowed")),
            },
            _ => Err(self.msg(format!("{op} match pattern must be a string"))),
        }
    }

    // ---- EventBridge ------------------------------------------------------------------------

    fn cidr(&self, v: &Value) -> Result<Cidr, Reason> {
        let s = self.string("cidr", v)?;
        Cidr::parse(&s).ok_or_else(|| format!("Nonstandard IP address: {s}"))
    }

    /// A string, or a non-empty array of strings.
    fn strings(&self, what: &str, v: &Value) -> Result<Vec<String>, Reason> {
        match v {
            Value::String(s) => Ok(vec![s.clone()]),
            Value::Array(items) if !items.is_empty() => items.iter().map(|i| self.string(what, i)).collect(),
            _ => Err(format!("{what} match pattern must be a string or a non-empty array of strings")),
        }
    }

    fn anything_but(&self, v: &Value) -> Result<Matcher, Reason> {
        Ok(match v {
            Value::String(_) | Value::Number(_) => Matcher::AnythingBut(vec![Scalar::from_json(v).ok_or("bad anything-but value")?]),
            Value::Array(items) => {
                let all_strings = items.iter().all(Value::is_string);
                let all_numbers = items.iter().all(Value::is_number);
                if items.is_empty() || !(all_strings || all_numbers) {
                    return Err("Inside anything but list, start|null|boolean is not supported, and the list must hold only strings or only numbers."
                        .into());
                }
                Matcher::AnythingBut(items.iter().filter_map(Scalar::from_json).collect())
            }
            Value::Object(o) if o.len() == 1 => {
                let (op, inner) = o.iter().next().expect("one entry");
                let test = match op.as_str() {
                    "prefix" => TextTest::Prefix(self.strings("prefix", inner)?),
                    "suffix" => TextTest::Suffix(self.strings("suffix", inner)?),
                    "equals-ignore-case" => {
                        TextTest::IgnoreCase(self.strings("equals-ignore-case", inner)?.iter().map(|s| s.to_lowercase()).collect())
                    }
                    "wildcard" => {
                        TextTest::Wildcard(self.strings("wildcard", inner)?.iter().map(|s| Wildcard::parse(s)).collect::<Result<_, _>>()?)
                    }
                    other => return Err(format!("Unsupported anything-but pattern: {other}")),
                };
                Matcher::AnythingButText { test, strings_only: false }
            }
            _ => return Err("Value of anything-but must be an array or single string/number value.".into()),
        })
    }

    // ---- SNS --------------------------------------------------------------------------------

    fn sns_cidr(&self, v: &Value) -> Result<Cidr, Reason> {
        let s = self.string("prefix", v)?;
        let Some((addr, bits)) = s.split_once('/') else { return Err(self.msg("Malformed CIDR, one '/' required")) };
        let bits: u8 = bits.parse().map_err(|_| self.msg("Malformed CIDR, mask bits must be an integer"))?;
        let ip: IpAddr = addr.parse().map_err(|_| self.msg(format!("Nonstandard IP address: {addr}")))?;
        Cidr::new(ip, bits).ok_or_else(|| self.msg(format!("Nonstandard IP address: {addr}")))
    }

    fn sns_anything_but(&self, v: &Value) -> Result<Matcher, Reason> {
        let unsupported = || self.msg("Inside anything but list, start|null|boolean is not supported.");
        Ok(match v {
            Value::Array(items) => {
                if items.is_empty() {
                    return Err(self.msg("Empty arrays are not allowed"));
                }
                let values = items
                    .iter()
                    .map(|i| match i {
                        Value::String(_) | Value::Number(_) => Scalar::from_json(i).ok_or_else(unsupported),
                        _ => Err(unsupported()),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Matcher::AnythingBut(values)
            }
            Value::Object(inner) => {
                let mut it = inner.iter();
                let (Some((op, value)), None) = (it.next(), it.next()) else {
                    return Err(self.msg("Only one key allowed in match expression"));
                };
                let test = match op.as_str() {
                    "prefix" => TextTest::Prefix(vec![self.string(op, value)?]),
                    "suffix" => TextTest::Suffix(vec![self.string(op, value)?]),
                    "equals-ignore-case" => TextTest::IgnoreCase(match value {
                        Value::String(s) => vec![s.to_lowercase()],
                        Value::Array(items) if !items.is_empty() => {
                            items.iter().map(|i| self.string(op, i).map(|s| s.to_lowercase())).collect::<Result<Vec<_>, _>>()?
                        }
                        _ => return Err(self.msg("equals-ignore-case match pattern must be a string")),
                    }),
                    other => return Err(self.msg(format!("Unsupported anything-but pattern: {other}"))),
                };
                Matcher::AnythingButText { test, strings_only: true }
            }
            Value::String(_) | Value::Number(_) => Matcher::AnythingBut(vec![Scalar::from_json(v).ok_or_else(unsupported)?]),
            _ => return Err(unsupported()),
        })
    }

    /// `["=", 5]`, `["<", 10]`, `[">", 0, "<=", 5]`, with SNS's messages.
    fn sns_numeric(&self, v: &Value) -> Result<Vec<(Op, f64)>, Reason> {
        let Value::Array(items) = v else { return Err(self.msg("Value of numeric must be an array.")) };
        if items.is_empty() {
            return Err(self.msg("Invalid member in numeric match: ]"));
        }
        let op_of = |x: &Value, first: bool| -> Result<Op, Reason> {
            let Some(s) = x.as_str() else {
                return Err(if first {
                    self.msg(format!("Invalid member in numeric match: {x}"))
                } else {
                    self.msg(format!("Bad value in numeric range: {x}"))
                });
            };
            match (s, first) {
                ("=", true) => Ok(Op::Eq),
                (">", true) => Ok(Op::Gt),
                (">=", true) => Ok(Op::Ge),
                ("<", _) => Ok(Op::Lt),
                ("<=", _) => Ok(Op::Le),
                (other, true) => Err(self.msg(format!("Unrecognized numeric range operator: {other}"))),
                (other, false) => Err(self.msg(format!("Bad numeric range operator: {other}"))),
            }
        };
        let num_of = |x: Option<&Value>, op: &str| -> Result<f64, Reason> {
            x.and_then(Value::as_f64).ok_or_else(|| {
                let name = if op == "=" { "equals" } else { op };
                self.msg(format!("Value of {name} must be numeric"))
            })
        };
        let first = op_of(&items[0], true)?;
        let a = num_of(items.get(1), items[0].as_str().unwrap_or(""))?;
        let mut out = vec![(first, a)];
        if items.len() > 2 {
            if !matches!(first, Op::Gt | Op::Ge) {
                return Err(self.msg("Too many elements in numeric expression"));
            }
            let second = op_of(&items[2], false)?;
            let b = num_of(items.get(3), items[2].as_str().unwrap_or(""))?;
            if b <= a {
                return Err(self.msg("Bottom must be less than top"));
            }
            if items.len() > 4 {
                return Err(self.msg("Too many terms in numeric range expression"));
            }
            out.push((second, b));
        }
        Ok(out)
    }
}

/// `["=", 5]`, `["<", 10]`, `[">", 0, "<=", 5]`: one comparison, or a lower then an upper
/// bound, with EventBridge's messages.
fn numeric(v: &Value) -> Result<Vec<(Op, f64)>, Reason> {
    let Value::Array(items) = v else { return Err("Value of numeric must be an array.".into()) };
    let mut conds = Vec::new();
    for pair in items.chunks(2) {
        let [op, bound] = pair else { return Err("Value of numeric must be an array of operator and number pairs.".into()) };
        let op = match op.as_str() {
            Some("=") => Op::Eq,
            Some("<") => Op::Lt,
            Some("<=") => Op::Le,
            Some(">") => Op::Gt,
            Some(">=") => Op::Ge,
            _ => return Err(format!("Unrecognized numeric range operator: {op}")),
        };
        let bound = bound.as_f64().ok_or_else(|| format!("Value of {} must be numeric", pair[0]))?;
        conds.push((op, bound));
    }
    match conds.as_slice() {
        [_] => {}
        [(lo, a), (hi, b)] if matches!(lo, Op::Gt | Op::Ge) && matches!(hi, Op::Lt | Op::Le) => {
            if a >= b {
                return Err("Bottom must be less than top".into());
            }
        }
        [] => return Err("Empty numeric expression".into()),
        _ => return Err("Bad numeric range: a lower bound (> or >=) then an upper bound (< or <=) is expected".into()),
    }
    Ok(conds)
}

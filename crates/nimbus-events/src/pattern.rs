//! Event patterns with EventBridge's matching: a pattern is compiled once (and refused with
//! AWS's `InvalidEventPatternException` when it is not valid) and then matched against events
//! as parsed JSON. Semantics follow AWS's Event Ruler: every field named must match (AND),
//! any value listed for a field may (OR); an event array matches when any element does, and
//! fields of objects inside an array must match within the same element; a field absent from
//! the event matches only `{"exists": false}`.

use std::net::IpAddr;

use serde_json::{Map, Value};

use crate::error::EventsError;

/// A compiled event pattern.
#[derive(Debug, Clone)]
pub struct EventPattern {
    root: Node,
}

/// The conditions at one object level: every field, and one alternative of every `$or`.
#[derive(Debug, Clone)]
struct Node {
    fields: Vec<(String, Field)>,
    ors: Vec<Vec<Node>>,
}

#[derive(Debug, Clone)]
enum Field {
    Object(Node),
    Leaf(Vec<Matcher>),
}

/// A JSON scalar a pattern names.
#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
}

impl Scalar {
    fn from_json(v: &Value) -> Option<Scalar> {
        Some(match v {
            Value::String(s) => Scalar::Str(s.clone()),
            Value::Number(n) => Scalar::Num(n.as_f64()?),
            Value::Bool(b) => Scalar::Bool(*b),
            Value::Null => Scalar::Null,
            _ => return None,
        })
    }

    fn matches(&self, v: &Value) -> bool {
        match (self, v) {
            (Scalar::Str(a), Value::String(b)) => a == b,
            (Scalar::Num(a), Value::Number(b)) => b.as_f64() == Some(*a),
            (Scalar::Bool(a), Value::Bool(b)) => a == b,
            (Scalar::Null, Value::Null) => true,
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
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

#[derive(Debug, Clone)]
enum Matcher {
    Exact(Scalar),
    Prefix {
        value: String,
        ignore_case: bool,
    },
    Suffix {
        value: String,
        ignore_case: bool,
    },
    EqualsIgnoreCase(String),
    Wildcard(Wildcard),
    /// Matches any present value other than these.
    AnythingBut(Vec<Scalar>),
    AnythingButPrefix(Vec<String>),
    AnythingButSuffix(Vec<String>),
    AnythingButIgnoreCase(Vec<String>),
    AnythingButWildcard(Vec<Wildcard>),
    Numeric(Vec<(Op, f64)>),
    Exists(bool),
    Cidr(Cidr),
}

impl Matcher {
    /// Whether one leaf value of the event matches.
    fn matches(&self, v: &Value) -> bool {
        let text = v.as_str();
        match self {
            Matcher::Exact(s) => s.matches(v),
            Matcher::Prefix { value, ignore_case: false } => text.is_some_and(|t| t.starts_with(value.as_str())),
            Matcher::Prefix { value, ignore_case: true } => text.is_some_and(|t| t.to_lowercase().starts_with(value.as_str())),
            Matcher::Suffix { value, ignore_case: false } => text.is_some_and(|t| t.ends_with(value.as_str())),
            Matcher::Suffix { value, ignore_case: true } => text.is_some_and(|t| t.to_lowercase().ends_with(value.as_str())),
            Matcher::EqualsIgnoreCase(value) => text.is_some_and(|t| t.to_lowercase() == *value),
            Matcher::Wildcard(w) => text.is_some_and(|t| w.matches(t)),
            Matcher::AnythingBut(values) => !values.iter().any(|s| s.matches(v)),
            Matcher::AnythingButPrefix(ps) => !text.is_some_and(|t| ps.iter().any(|p| t.starts_with(p.as_str()))),
            Matcher::AnythingButSuffix(ps) => !text.is_some_and(|t| ps.iter().any(|p| t.ends_with(p.as_str()))),
            Matcher::AnythingButIgnoreCase(vs) => !text.is_some_and(|t| vs.contains(&t.to_lowercase())),
            Matcher::AnythingButWildcard(ws) => !text.is_some_and(|t| ws.iter().any(|w| w.matches(t))),
            Matcher::Numeric(conds) => v.as_f64().is_some_and(|n| conds.iter().all(|(op, b)| op.holds(n, *b))),
            Matcher::Exists(_) => true,
            Matcher::Cidr(c) => text.is_some_and(|t| c.contains(t)),
        }
    }
}

/// A `wildcard` value: literal pieces between `*`s.
#[derive(Debug, Clone)]
struct Wildcard {
    pieces: Vec<String>,
}

impl Wildcard {
    fn parse(s: &str) -> Result<Wildcard, String> {
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

    fn matches(&self, text: &str) -> bool {
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
#[derive(Debug, Clone)]
struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    fn parse(s: &str) -> Option<Cidr> {
        let (addr, bits) = s.split_once('/')?;
        let net: IpAddr = addr.parse().ok()?;
        let bits: u8 = bits.parse().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        (bits <= max).then_some(Cidr { net, bits })
    }

    fn contains(&self, s: &str) -> bool {
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

fn invalid(reason: impl std::fmt::Display) -> EventsError {
    EventsError::InvalidEventPattern(format!("Event pattern is not valid. Reason: {reason}"))
}

impl EventPattern {
    /// Compiles a pattern; AWS's `InvalidEventPatternException` when it is not valid.
    pub fn parse(text: &str) -> Result<EventPattern, EventsError> {
        let value: Value = serde_json::from_str(text).map_err(invalid)?;
        let Value::Object(obj) = &value else { return Err(invalid("Filter is not an object")) };
        if obj.is_empty() {
            return Err(invalid("Empty event pattern is not allowed"));
        }
        Ok(EventPattern { root: compile_node(obj).map_err(invalid)? })
    }

    /// Whether `event` (a whole event, envelope and detail) matches.
    pub fn matches(&self, event: &Value) -> bool {
        match_node(&self.root, Some(event))
    }
}

/// `$or` means OR only in the form Event Ruler gives it: an array of two or more objects.
fn is_or(v: &Value) -> bool {
    matches!(v, Value::Array(items) if items.len() >= 2 && items.iter().all(Value::is_object))
}

fn compile_node(obj: &Map<String, Value>) -> Result<Node, String> {
    let mut node = Node { fields: Vec::new(), ors: Vec::new() };
    for (key, v) in obj {
        if key == "$or" && is_or(v) {
            let alternatives = v.as_array().into_iter().flatten().filter_map(Value::as_object);
            let mut alts = Vec::new();
            for alt in alternatives {
                if alt.is_empty() {
                    return Err("Empty objects are not allowed in $or".into());
                }
                alts.push(compile_node(alt)?);
            }
            node.ors.push(alts);
            continue;
        }
        let field = match v {
            Value::Object(o) => Field::Object(compile_node(o)?),
            Value::Array(items) => {
                if items.is_empty() {
                    return Err(format!("Empty arrays are not allowed (\"{key}\")"));
                }
                Field::Leaf(items.iter().map(|i| compile_matcher(key, i)).collect::<Result<_, _>>()?)
            }
            _ => return Err(format!("\"{key}\" must be an object or an array")),
        };
        node.fields.push((key.clone(), field));
    }
    Ok(node)
}

fn string_of(v: &Value, what: &str) -> Result<String, String> {
    v.as_str().map(str::to_string).ok_or_else(|| format!("{what} match pattern must be a string"))
}

/// A string, or a non-empty array of strings.
fn strings_of(v: &Value, what: &str) -> Result<Vec<String>, String> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => items.iter().map(|i| string_of(i, what)).collect(),
        _ => Err(format!("{what} match pattern must be a string or a non-empty array of strings")),
    }
}

/// `{"prefix": "x"}` or `{"prefix": {"equals-ignore-case": "x"}}` (likewise suffix).
fn affix(v: &Value, what: &str) -> Result<(String, bool), String> {
    match v {
        Value::String(s) => Ok((s.clone(), false)),
        Value::Object(o) if o.len() == 1 => match o.get("equals-ignore-case") {
            Some(Value::String(s)) => Ok((s.to_lowercase(), true)),
            _ => Err(format!("Unsupported {what} pattern: only a string or equals-ignore-case is allowed")),
        },
        _ => Err(format!("{what} match pattern must be a string")),
    }
}

fn compile_matcher(key: &str, item: &Value) -> Result<Matcher, String> {
    if let Some(s) = Scalar::from_json(item) {
        return Ok(Matcher::Exact(s));
    }
    let Value::Object(o) = item else { return Err(format!("Match value must be String, number, true, false, or null (\"{key}\")")) };
    let mut entries = o.iter();
    let (Some((op, v)), None) = (entries.next(), entries.next()) else {
        return Err(format!("Match expressions must have exactly one key (\"{key}\")"));
    };
    Ok(match op.as_str() {
        "prefix" => {
            let (value, ignore_case) = affix(v, "prefix")?;
            Matcher::Prefix { value, ignore_case }
        }
        "suffix" => {
            let (value, ignore_case) = affix(v, "suffix")?;
            Matcher::Suffix { value, ignore_case }
        }
        "equals-ignore-case" => Matcher::EqualsIgnoreCase(string_of(v, "equals-ignore-case")?.to_lowercase()),
        "wildcard" => Matcher::Wildcard(Wildcard::parse(&string_of(v, "wildcard")?)?),
        "exists" => match v {
            Value::Bool(b) => Matcher::Exists(*b),
            _ => return Err("exists match pattern must be either true or false.".into()),
        },
        "cidr" => {
            let s = string_of(v, "cidr")?;
            Matcher::Cidr(Cidr::parse(&s).ok_or_else(|| format!("Nonstandard IP address: {s}"))?)
        }
        "numeric" => Matcher::Numeric(numeric(v)?),
        "anything-but" => anything_but(v)?,
        other => return Err(format!("Unrecognized match type {other}")),
    })
}

fn anything_but(v: &Value) -> Result<Matcher, String> {
    Ok(match v {
        Value::String(_) | Value::Number(_) => Matcher::AnythingBut(vec![Scalar::from_json(v).ok_or("bad anything-but value")?]),
        Value::Array(items) => {
            let all_strings = items.iter().all(Value::is_string);
            let all_numbers = items.iter().all(Value::is_number);
            if items.is_empty() || !(all_strings || all_numbers) {
                return Err(
                    "Inside anything but list, start|null|boolean is not supported, and the list must hold only strings or only numbers."
                        .into(),
                );
            }
            Matcher::AnythingBut(items.iter().filter_map(Scalar::from_json).collect())
        }
        Value::Object(o) if o.len() == 1 => {
            let (op, inner) = o.iter().next().expect("one entry");
            match op.as_str() {
                "prefix" => Matcher::AnythingButPrefix(strings_of(inner, "prefix")?),
                "suffix" => Matcher::AnythingButSuffix(strings_of(inner, "suffix")?),
                "equals-ignore-case" => {
                    Matcher::AnythingButIgnoreCase(strings_of(inner, "equals-ignore-case")?.iter().map(|s| s.to_lowercase()).collect())
                }
                "wildcard" => Matcher::AnythingButWildcard(
                    strings_of(inner, "wildcard")?.iter().map(|s| Wildcard::parse(s)).collect::<Result<_, _>>()?,
                ),
                other => return Err(format!("Unsupported anything-but pattern: {other}")),
            }
        }
        _ => return Err("Value of anything-but must be an array or single string/number value.".into()),
    })
}

/// `["=", 5]`, `["<", 10]`, `[">", 0, "<=", 5]`: one comparison, or a lower then an upper bound.
fn numeric(v: &Value) -> Result<Vec<(Op, f64)>, String> {
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

// ---- matching ---------------------------------------------------------------------------

fn match_node(node: &Node, event: Option<&Value>) -> bool {
    let obj = event.and_then(Value::as_object);
    node.fields.iter().all(|(key, field)| match_field(field, obj.and_then(|o| o.get(key))))
        && node.ors.iter().all(|alts| alts.iter().any(|alt| match_node(alt, event)))
}

fn match_field(field: &Field, value: Option<&Value>) -> bool {
    match field {
        Field::Object(node) => match value {
            Some(Value::Array(items)) => {
                let mut objects = Vec::new();
                collect(items, &mut objects, Value::is_object);
                if objects.is_empty() {
                    match_node(node, None)
                } else {
                    objects.into_iter().any(|o| match_node(node, Some(o)))
                }
            }
            Some(o @ Value::Object(_)) => match_node(node, Some(o)),
            _ => match_node(node, None),
        },
        Field::Leaf(matchers) => {
            let mut leaves = Vec::new();
            match value {
                Some(Value::Array(items)) => collect(items, &mut leaves, |v| !v.is_object()),
                Some(Value::Object(_)) | None => {}
                Some(v) => leaves.push(v),
            }
            matchers.iter().any(|m| match m {
                Matcher::Exists(want) => leaves.is_empty() != *want,
                m => leaves.iter().any(|l| m.matches(l)),
            })
        }
    }
}

/// The elements of a (possibly nested) array that `keep` selects.
fn collect<'a>(items: &'a [Value], out: &mut Vec<&'a Value>, keep: fn(&Value) -> bool) {
    for v in items {
        match v {
            Value::Array(inner) => collect(inner, out, keep),
            v if keep(v) => out.push(v),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// AWS's sample event (Event Ruler's README and the EventBridge user guide).
    fn ec2_event() -> Value {
        json!({
            "version": "0",
            "id": "ddddd4-aaaa-7777-4444-345dd43cc333",
            "detail-type": "EC2 Instance State-change Notification",
            "source": "aws.ec2",
            "account": "012345679012",
            "time": "2017-10-02T16:24:49Z",
            "region": "us-east-1",
            "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"],
            "detail": {
                "c-count": 5,
                "d-count": 3,
                "x-limit": 301.8,
                "source-ip": "10.0.0.33",
                "instance-id": "i-000000aaaaaa00000",
                "state": "running"
            }
        })
    }

    fn check(pattern: Value, event: &Value, expected: bool) {
        let p = EventPattern::parse(&pattern.to_string()).unwrap_or_else(|e| panic!("{pattern}: {e}"));
        assert_eq!(p.matches(event), expected, "pattern {pattern} on {event}");
    }

    #[test]
    fn aws_examples() {
        let e = ec2_event();
        for (pattern, expected) in [
            (
                json!({"detail-type": ["EC2 Instance State-change Notification"],
                    "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"],
                    "detail": {"state": ["initializing", "running"]}}),
                true,
            ),
            (json!({"source": ["aws.ec2"], "detail": {"state": ["stopped"]}}), false),
            (json!({"source": ["aws.s3"]}), false),
            (json!({"time": [{"prefix": "2017-10-02"}]}), true),
            (json!({"time": [{"prefix": "2017-10-03"}]}), false),
            (json!({"source": [{"prefix": {"equals-ignore-case": "AWS.E"}}]}), true),
            (json!({"source": [{"suffix": "ec2"}]}), true),
            (json!({"source": [{"suffix": {"equals-ignore-case": "EC2"}}]}), true),
            (json!({"source": [{"suffix": "s3"}]}), false),
            (json!({"source": [{"equals-ignore-case": "AWS.EC2"}]}), true),
            (json!({"source": [{"wildcard": "aws.*2"}]}), true),
            (json!({"source": [{"wildcard": "aws.*3"}]}), false),
            (json!({"detail": {"state": [{"anything-but": "initializing"}]}}), true),
            (json!({"detail": {"state": [{"anything-but": "running"}]}}), false),
            (json!({"detail": {"state": [{"anything-but": ["stopped", "overloaded"]}]}}), true),
            (json!({"detail": {"state": [{"anything-but": ["stopped", "running"]}]}}), false),
            (json!({"detail": {"x-limit": [{"anything-but": 123}]}}), true),
            (json!({"detail": {"x-limit": [{"anything-but": [100, 200, 300]}]}}), true),
            (json!({"detail": {"x-limit": [{"anything-but": [301.8]}]}}), false),
            (json!({"detail": {"state": [{"anything-but": {"prefix": "init"}}]}}), true),
            (json!({"detail": {"state": [{"anything-but": {"prefix": "run"}}]}}), false),
            (json!({"detail": {"state": [{"anything-but": {"suffix": "ing"}}]}}), false),
            (json!({"detail": {"state": [{"anything-but": {"equals-ignore-case": ["RUNNING", "x"]}}]}}), false),
            (json!({"detail": {"state": [{"anything-but": {"wildcard": "r*g"}}]}}), false),
            (json!({"detail": {"state": [{"anything-but": {"wildcard": "s*p"}}]}}), true),
            (
                json!({"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}],
                               "d-count": [{"numeric": ["<", 10]}],
                               "x-limit": [{"numeric": ["=", 3.018e2]}]}}),
                true,
            ),
            (json!({"detail": {"c-count": [{"numeric": [">", 5]}]}}), false),
            (json!({"detail": {"c-count": [{"numeric": [">=", 5]}]}}), true),
            (json!({"detail": {"state": [{"numeric": [">", 0]}]}}), false),
            (json!({"detail": {"source-ip": [{"cidr": "10.0.0.0/24"}]}}), true),
            (json!({"detail": {"source-ip": [{"cidr": "10.0.1.0/24"}]}}), false),
            (json!({"detail": {"c-count": [{"exists": true}]}}), true),
            (json!({"detail": {"c-count": [{"exists": false}]}}), false),
            (json!({"detail": {"missing": [{"exists": false}]}}), true),
            (json!({"detail": {"missing": [{"exists": true}]}}), false),
            (json!({"nothing": {"deeper": [{"exists": false}]}}), true),
            (json!({"detail": {"c-count": [5]}}), true),
            (json!({"detail": {"c-count": [5.0]}}), true),
            (json!({"detail": {"c-count": ["5"]}}), false),
            (
                json!({"time": [{"prefix": "2017-10-02"}],
                    "detail": {"state": [{"anything-but": "initializing"}],
                               "c-count": [{"numeric": [">", 0, "<=", 5]}],
                               "d-count": [{"numeric": ["<", 10]}],
                               "x-limit": [{"anything-but": [100, 200, 300]}],
                               "source-ip": [{"cidr": "10.0.0.0/8"}]}}),
                true,
            ),
        ] {
            check(pattern, &e, expected);
        }
    }

    #[test]
    fn or() {
        let e = json!({"source": "aws.cloudwatch", "metricName": "CPUUtilization", "namespace": "AWS/Lambda",
                       "detail": {"source": "x", "detail-type": "CloudWatch Alarm State Change"}});
        check(
            json!({"source": ["aws.cloudwatch"], "$or": [{"metricName": ["CPUUtilization", "ReadLatency"]}, {"namespace": ["AWS/EC2"]}]}),
            &e,
            true,
        );
        check(json!({"source": ["aws.cloudwatch"], "$or": [{"metricName": ["ReadLatency"]}, {"namespace": ["AWS/EC2"]}]}), &e, false);
        // Parallel ORs, one nested in detail.
        check(
            json!({"$or": [{"metricName": ["X"]}, {"namespace": ["AWS/Lambda"]}],
                     "detail": {"$or": [{"source": ["aws.cloudwatch"]}, {"detail-type": ["CloudWatch Alarm State Change"]}]}}),
            &e,
            true,
        );
        // An AND inside an OR, and an OR inside that.
        check(
            json!({"source": ["aws.cloudwatch"], "$or": [
                {"metricName": ["ReadLatency"]},
                {"namespace": ["AWS/Lambda"], "$or": [{"metricId": [1234]}, {"metricName": ["CPUUtilization"]}]}
            ]}),
            &e,
            true,
        );
        // "$or" with fewer than two objects is an ordinary field name.
        check(json!({"$or": {"metricName": ["CPUUtilization"]}}), &e, false);
        check(json!({"$or": {"metricName": ["CPUUtilization"]}}), &json!({"$or": {"metricName": "CPUUtilization"}}), true);
    }

    #[test]
    fn arrays_and_values() {
        let e = json!({"employees": [
            {"firstName": "John", "lastName": "Doe"},
            {"firstName": "Anna", "lastName": "Smith"},
            [{"firstName": "Peter", "lastName": "Jones"}]
        ], "tags": ["a", ["b", "c"]], "nothing": null, "empty": "", "flag": false, "none": []});
        check(json!({"employees": {"firstName": ["Anna"]}}), &e, true);
        check(json!({"employees": {"firstName": ["Peter"], "lastName": ["Jones"]}}), &e, true);
        // Fields of one pattern object must match within one array element.
        check(json!({"employees": {"firstName": ["Anna"], "lastName": ["Jones"]}}), &e, false);
        check(json!({"tags": ["c"]}), &e, true);
        check(json!({"tags": ["d", "a"]}), &e, true);
        check(json!({"tags": ["d"]}), &e, false);
        check(json!({"tags": [{"anything-but": "a"}]}), &e, true);
        check(json!({"nothing": [null]}), &e, true);
        check(json!({"missing": [null]}), &e, false);
        check(json!({"empty": [""]}), &e, true);
        check(json!({"empty": [null]}), &e, false);
        check(json!({"flag": [false]}), &e, true);
        check(json!({"flag": ["false"]}), &e, false);
        check(json!({"none": [{"exists": false}]}), &e, true);
        // An object is not a leaf: exists does not see it.
        check(json!({"employees": [{"exists": true}]}), &e, false);
        check(json!({"employees": [{"exists": false}]}), &e, true);
    }

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
    }

    #[test]
    fn invalid_patterns() {
        for p in [
            "",
            "not json",
            "[]",
            "\"x\"",
            "{}",
            r#"{"source": "aws.ec2"}"#,
            r#"{"source": 5}"#,
            r#"{"source": []}"#,
            r#"{"source": [[1]]}"#,
            r#"{"source": [{"prefix": 5}]}"#,
            r#"{"source": [{"foo": "x"}]}"#,
            r#"{"source": [{"prefix": "a", "suffix": "b"}]}"#,
            r#"{"source": [{}]}"#,
            r#"{"n": [{"numeric": [">", "x"]}]}"#,
            r#"{"n": [{"numeric": ["!=", 1]}]}"#,
            r#"{"n": [{"numeric": ["<", 1, ">", 0]}]}"#,
            r#"{"n": [{"numeric": [">", 5, "<", 1]}]}"#,
            r#"{"n": [{"numeric": [">", 1, "<"]}]}"#,
            r#"{"n": [{"numeric": []}]}"#,
            r#"{"n": [{"exists": "yes"}]}"#,
            r#"{"s": [{"wildcard": "a**b"}]}"#,
            r#"{"s": [{"wildcard": "a\\b"}]}"#,
            r#"{"s": [{"anything-but": ["a", 1]}]}"#,
            r#"{"s": [{"anything-but": []}]}"#,
            r#"{"s": [{"anything-but": true}]}"#,
            r#"{"s": [{"anything-but": {"numeric": [">", 1]}}]}"#,
            r#"{"s": [{"cidr": "10.0.0.0/33"}]}"#,
            r#"{"s": [{"cidr": "banana"}]}"#,
            r#"{"s": [{"prefix": {"suffix": "x"}}]}"#,
            r#"{"$or": [{"a": ["x"]}, {}]}"#,
            r#"{"detail": {"s": "x"}}"#,
        ] {
            match EventPattern::parse(p) {
                Err(EventsError::InvalidEventPattern(m)) => assert!(m.starts_with("Event pattern is not valid. Reason: "), "{p}: {m}"),
                other => panic!("{p}: expected InvalidEventPattern, got {other:?}"),
            }
        }
    }
}

//! What a target receives: the whole event, a constant `Input`, the part of the event an
//! `InputPath` selects, or an `InputTransformer`'s template filled from the event. Holds the
//! small JSONPath subset EventBridge's paths use (`$`, `.name`, `['name']`, `[n]`, `[*]`).

use serde_json::Value;

/// A JSONPath such as `$.detail.items[0].id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
    /// Every element (or member value): the result becomes an array.
    All,
}

impl JsonPath {
    pub fn parse(s: &str) -> Option<JsonPath> {
        let mut rest = s.trim().strip_prefix('$')?;
        let mut steps = Vec::new();
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('.') {
                let end = r.find(['.', '[']).unwrap_or(r.len());
                let name = &r[..end];
                if name.is_empty() {
                    return None;
                }
                steps.push(if name == "*" { Step::All } else { Step::Key(name.to_string()) });
                rest = &r[end..];
            } else if let Some(r) = rest.strip_prefix('[') {
                let (inner, after) = if let Some(q) = r.strip_prefix('\'').or_else(|| r.strip_prefix('"')) {
                    let quote = if r.starts_with('\'') { '\'' } else { '"' };
                    let end = q.find(quote)?;
                    steps.push(Step::Key(q[..end].to_string()));
                    ("", q[end + 1..].strip_prefix(']')?)
                } else {
                    let end = r.find(']')?;
                    (&r[..end], &r[end + 1..])
                };
                match inner {
                    "" => {}
                    "*" => steps.push(Step::All),
                    n => steps.push(Step::Index(n.parse().ok()?)),
                }
                rest = after;
            } else {
                return None;
            }
        }
        Some(JsonPath { steps })
    }

    /// The value at the path, if there is one.
    pub fn select(&self, root: &Value) -> Option<Value> {
        select(&self.steps, root)
    }
}

fn select(steps: &[Step], v: &Value) -> Option<Value> {
    let Some((step, rest)) = steps.split_first() else { return Some(v.clone()) };
    match step {
        Step::Key(k) => select(rest, v.as_object()?.get(k)?),
        Step::Index(i) => select(rest, v.as_array()?.get(*i)?),
        Step::All => {
            let items: Vec<&Value> = match v {
                Value::Array(a) => a.iter().collect(),
                Value::Object(o) => o.values().collect(),
                _ => return None,
            };
            Some(Value::Array(items.into_iter().filter_map(|i| select(rest, i)).collect()))
        }
    }
}

/// An `InputTransformer`: values picked from the event by path, put into a template.
#[derive(Debug, Clone)]
pub struct InputTransformer {
    paths: Vec<(String, JsonPath)>,
    template: String,
}

/// What an event's delivery knows besides the event itself.
#[derive(Debug, Clone)]
pub struct DeliveryContext<'a> {
    pub rule_arn: &'a str,
    pub rule_name: &'a str,
    /// ISO-8601 time the event was accepted.
    pub ingestion_time: &'a str,
}

impl InputTransformer {
    /// Checks the paths map and template as AWS does; the error names what is wrong.
    pub fn new(paths: &[(String, String)], template: &str) -> Result<InputTransformer, String> {
        if template.is_empty() || template.chars().count() > 8192 {
            return Err("InputTemplate must be 1 to 8192 characters long".into());
        }
        if paths.len() > 100 {
            return Err("InputPathsMap can have at most 100 entries".into());
        }
        let mut compiled = Vec::new();
        for (key, path) in paths {
            if key.is_empty() || key.len() > 256 || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
                return Err(format!("InputPathsMap key {key} is not valid"));
            }
            if path.len() > 256 {
                return Err(format!("InputPathsMap value for {key} is too long"));
            }
            let p = JsonPath::parse(path).ok_or_else(|| format!("InputPathsMap value for {key} is not a valid JSONPath: {path}"))?;
            compiled.push((key.clone(), p));
        }
        Ok(InputTransformer { paths: compiled, template: template.to_string() })
    }

    /// Fills the template. Inside a JSON string a value goes in escaped (a string without its
    /// quotes); elsewhere in a JSON template as JSON (`null` when the path found nothing);
    /// in a plain-text template as text. `<name>`s not in the map stay as they are.
    pub fn render(&self, event: &Value, ctx: &DeliveryContext<'_>) -> String {
        let trimmed = self.template.trim_start();
        let json_template = trimmed.starts_with('{') || trimmed.starts_with('[') || trimmed.starts_with('"');
        let mut out = String::with_capacity(self.template.len());
        let mut in_string = false;
        let mut chars = self.template.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' if in_string => {
                    out.push(c);
                    if let Some((_, n)) = chars.next() {
                        out.push(n);
                    }
                }
                '"' if json_template => {
                    in_string = !in_string;
                    out.push(c);
                }
                '<' => {
                    let rest = &self.template[i + 1..];
                    let name_len = rest
                        .find('>')
                        .filter(|n| *n > 0 && rest[..*n].bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')));
                    match name_len.and_then(|n| self.lookup(&rest[..n], event, ctx).map(|v| (n, v))) {
                        Some((n, value)) => {
                            substitute(&mut out, value.as_ref(), in_string, json_template);
                            for _ in 0..=n {
                                chars.next();
                            }
                        }
                        None => out.push(c),
                    }
                }
                c => out.push(c),
            }
        }
        out
    }

    /// `Some(value-or-nothing)` for a known placeholder, `None` for an unknown one.
    fn lookup(&self, name: &str, event: &Value, ctx: &DeliveryContext<'_>) -> Option<Option<Value>> {
        Some(match name {
            "aws.events.rule-arn" => Some(Value::String(ctx.rule_arn.to_string())),
            "aws.events.rule-name" => Some(Value::String(ctx.rule_name.to_string())),
            "aws.events.event.ingestion-time" => Some(Value::String(ctx.ingestion_time.to_string())),
            "aws.events.event" => {
                let mut e = event.clone();
                if let Some(o) = e.as_object_mut() {
                    o.remove("detail");
                }
                Some(e)
            }
            "aws.events.event.json" => Some(event.clone()),
            _ => self.paths.iter().find(|(k, _)| k == name)?.1.select(event),
        })
    }
}

fn substitute(out: &mut String, value: Option<&Value>, in_string: bool, json_template: bool) {
    match (value, in_string, json_template) {
        (None, true, _) | (None, false, false) => {}
        (None, false, true) => out.push_str("null"),
        (Some(Value::String(s)), true, _) => push_escaped(out, s),
        (Some(v), true, _) => push_escaped(out, &v.to_string()),
        (Some(Value::String(s)), false, false) => out.push_str(s),
        (Some(v), false, _) => out.push_str(&v.to_string()),
    }
}

/// `s` as the inside of a JSON string.
fn push_escaped(out: &mut String, s: &str) {
    let quoted = Value::String(s.to_string()).to_string();
    out.push_str(&quoted[1..quoted.len() - 1]);
}

/// How a target's input is made from an event.
#[derive(Debug, Clone)]
pub enum Transform {
    /// The event itself (no Input, InputPath or InputTransformer).
    Event,
    /// `Input`: this JSON text, whatever the event.
    Constant(String),
    /// `InputPath`: the selected part (`null` when there is none).
    Path(JsonPath),
    Template(InputTransformer),
}

impl Transform {
    /// The payload for one delivery; `event_text` is `event` as sent (its keys in AWS's order).
    pub fn apply(&self, event: &Value, event_text: &str, ctx: &DeliveryContext<'_>) -> String {
        match self {
            Transform::Event => event_text.to_string(),
            Transform::Constant(text) => text.clone(),
            Transform::Path(p) => p.select(event).unwrap_or(Value::Null).to_string(),
            Transform::Template(t) => t.render(event, ctx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> Value {
        json!({
            "version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602", "detail-type": "EC2 Instance State-change Notification",
            "source": "aws.ec2", "account": "123456789012", "time": "2015-11-11T21:29:54Z", "region": "us-east-1",
            "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"],
            "detail": {"instance-id": "i-0123456789", "state": "RUNNING", "count": 3, "tags": {"a": "b"}, "say": "he said \"hi\""}
        })
    }

    const CTX: DeliveryContext<'static> = DeliveryContext {
        rule_arn: "arn:aws:events:us-east-1:123456789012:rule/r",
        rule_name: "r",
        ingestion_time: "2015-11-11T21:29:55Z",
    };

    fn render(paths: &[(&str, &str)], template: &str) -> String {
        let paths: Vec<(String, String)> = paths.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        InputTransformer::new(&paths, template).expect("valid").render(&event(), &CTX)
    }

    #[test]
    fn json_paths() {
        let e = event();
        for (path, expected) in [
            ("$", Some(e.clone())),
            ("$.detail", Some(e["detail"].clone())),
            ("$.detail.state", Some(json!("RUNNING"))),
            ("$.detail['instance-id']", Some(json!("i-0123456789"))),
            ("$['detail'][\"count\"]", Some(json!(3))),
            ("$.resources[0]", Some(json!("arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"))),
            ("$.resources[1]", None),
            ("$.detail.missing", None),
            ("$.detail.tags.*", Some(json!(["b"]))),
            ("$.resources[*]", Some(json!(["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"]))),
        ] {
            assert_eq!(JsonPath::parse(path).expect(path).select(&e), expected, "{path}");
        }
        for bad in ["", "detail", "$.", "$..x", "$[", "$[x]", "$['a'", "$x"] {
            assert!(JsonPath::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn aws_transformer_examples() {
        let paths = [("instance", "$.detail.instance-id"), ("state", "$.detail.state")];
        // A JSON object: strings keep their quotes.
        assert_eq!(
            render(&paths, r#"{"instance": <instance>, "state": [9, <state>, true]}"#),
            r#"{"instance": "i-0123456789", "state": [9, "RUNNING", true]}"#
        );
        // Inside a JSON string: the value without quotes.
        assert_eq!(render(&paths, r#""instance <instance> is in <state>""#), r#""instance i-0123456789 is in RUNNING""#);
        assert_eq!(render(&paths, r#"{"msg": "instance <instance> is in <state>"}"#), r#"{"msg": "instance i-0123456789 is in RUNNING"}"#);
        // Plain text.
        assert_eq!(render(&paths, "instance <instance> is in <state>"), "instance i-0123456789 is in RUNNING");
    }

    #[test]
    fn transformer_edges() {
        let paths = [("count", "$.detail.count"), ("tags", "$.detail.tags"), ("nope", "$.detail.missing"), ("say", "$.detail.say")];
        assert_eq!(render(&paths, r#"{"n": <count>, "t": <tags>, "x": <nope>}"#), r#"{"n": 3, "t": {"a":"b"}, "x": null}"#);
        assert_eq!(render(&paths, r#"{"s": "<count> <tags> [<nope>]"}"#), r#"{"s": "3 {\"a\":\"b\"} []"}"#);
        // Quotes in values are escaped inside strings; escaped quotes in the template do not end it.
        assert_eq!(render(&paths, r#"{"s": "\"<say>\""}"#), r#"{"s": "\"he said \"hi\"\""}"#);
        assert_eq!(render(&paths, r#"{"s": <say>}"#), r#"{"s": "he said \"hi\""}"#);
        // Unknown placeholders and stray angle brackets stay.
        assert_eq!(render(&paths, "<b>bold</b> <count> a < b > c"), "<b>bold</b> 3 a < b > c");
        // Predefined variables.
        assert_eq!(
            render(&[], r#"{"rule": <aws.events.rule-name>, "arn": "<aws.events.rule-arn>", "at": <aws.events.event.ingestion-time>}"#),
            r#"{"rule": "r", "arn": "arn:aws:events:us-east-1:123456789012:rule/r", "at": "2015-11-11T21:29:55Z"}"#
        );
        let whole: Value = serde_json::from_str(&render(&[], r#"{"e": <aws.events.event.json>, "h": <aws.events.event>}"#)).expect("JSON");
        assert_eq!(whole["e"], event());
        assert!(whole["h"].get("detail").is_none());
        assert_eq!(whole["h"]["source"], "aws.ec2");
    }

    #[test]
    fn invalid_transformers() {
        let p = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        InputTransformer::new(&[], "").unwrap_err();
        InputTransformer::new(&p("a.b", "$.x"), "<a.b>").unwrap_err();
        InputTransformer::new(&p("a", "detail"), "<a>").unwrap_err();
        InputTransformer::new(&p("a", "$.x"), &"x".repeat(8193)).unwrap_err();
    }

    #[test]
    fn transforms() {
        let e = event();
        let text = e.to_string();
        assert_eq!(Transform::Event.apply(&e, &text, &CTX), text);
        assert_eq!(Transform::Constant("{\"k\":1}".into()).apply(&e, &text, &CTX), "{\"k\":1}");
        assert_eq!(Transform::Path(JsonPath::parse("$.detail.state").expect("valid")).apply(&e, &text, &CTX), "\"RUNNING\"");
        assert_eq!(Transform::Path(JsonPath::parse("$.nothing").expect("valid")).apply(&e, &text, &CTX), "null");
    }
}

//! EventBridge (CloudWatch Events) on the wire: JSON 1.1 requests with
//! `X-Amz-Target: AWSEvents.<Action>`, parsed into typed [`EventsCall`]s for `nimbus-events`,
//! and answers and errors (`{"__type","message"}`, HTTP 400) in EventBridge's shapes.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use nimbus_events::{
    BusInfo, EventsError, EventsService, FailedEntry, InputTransformerSpec, Page, PutEventsEntry, PutEventsResult, PutRule, RuleInfo,
    TargetSpec,
};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::response::{self, Body};

/// One EventBridge request: the operation, parsed (or the error AWS would answer while parsing).
#[derive(Debug)]
pub struct EventsRequest {
    pub operation: &'static str,
    pub call: Result<EventsCall, EventsError>,
}

/// Every EventBridge operation Nimbus serves, with typed inputs.
#[derive(Debug)]
pub enum EventsCall {
    PutRule(PutRule),
    DescribeRule { name: String, bus: Option<String> },
    ListRules { prefix: Option<String>, bus: Option<String>, token: Option<String>, limit: Option<i64> },
    EnableRule { name: String, bus: Option<String> },
    DisableRule { name: String, bus: Option<String> },
    DeleteRule { name: String, bus: Option<String> },
    PutTargets { rule: String, bus: Option<String>, targets: Vec<TargetSpec> },
    RemoveTargets { rule: String, bus: Option<String>, ids: Vec<String> },
    ListTargetsByRule { rule: String, bus: Option<String>, token: Option<String>, limit: Option<i64> },
    ListRuleNamesByTarget { arn: String, bus: Option<String>, token: Option<String>, limit: Option<i64> },
    PutEvents(Vec<PutEventsEntry>),
    TestEventPattern { pattern: String, event: String },
    CreateEventBus { name: String, description: Option<String>, event_source: Option<String> },
    DeleteEventBus { name: String },
    DescribeEventBus { name: Option<String> },
    ListEventBuses { prefix: Option<String>, token: Option<String>, limit: Option<i64> },
}

const OPERATIONS: &crate::action::OperationTable = &[
    ("PutRule", "events:PutRule"),
    ("DescribeRule", "events:DescribeRule"),
    ("ListRules", "events:ListRules"),
    ("EnableRule", "events:EnableRule"),
    ("DisableRule", "events:DisableRule"),
    ("DeleteRule", "events:DeleteRule"),
    ("PutTargets", "events:PutTargets"),
    ("RemoveTargets", "events:RemoveTargets"),
    ("ListTargetsByRule", "events:ListTargetsByRule"),
    ("ListRuleNamesByTarget", "events:ListRuleNamesByTarget"),
    ("PutEvents", "events:PutEvents"),
    ("TestEventPattern", "events:TestEventPattern"),
    ("CreateEventBus", "events:CreateEventBus"),
    ("DeleteEventBus", "events:DeleteEventBus"),
    ("DescribeEventBus", "events:DescribeEventBus"),
    ("ListEventBuses", "events:ListEventBuses"),
];

impl EventsRequest {
    /// The IAM action name (`events:PutRule`).
    pub fn name(&self) -> &'static str {
        crate::action::iam_action(OPERATIONS, self.operation, "events:Unknown")
    }
}

/// Parses the body of an `AWSEvents.<operation>` request.
pub fn parse(operation: &str, body: &[u8]) -> EventsRequest {
    let Some(op) = crate::action::known_operation(OPERATIONS, operation) else {
        return EventsRequest {
            operation: "Unknown",
            call: Err(EventsError::UnknownOperation(format!("Operation {operation} is not supported by this endpoint."))),
        };
    };
    EventsRequest { operation: op, call: parse_call(op, body) }
}

fn input<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, EventsError> {
    let body = if body.is_empty() { b"{}".as_slice() } else { body };
    serde_json::from_slice(body).map_err(|e| EventsError::Serialization(format!("Could not parse the request body: {e}")))
}

fn required<T>(v: Option<T>, field: &str) -> Result<T, EventsError> {
    v.ok_or_else(|| {
        EventsError::Validation(format!(
            "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NamedRule {
    name: Option<String>,
    event_bus_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Listing {
    name_prefix: Option<String>,
    event_bus_name: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
    rule: Option<String>,
    target_arn: Option<String>,
}

#[derive(Deserialize)]
struct Tag {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "Value")]
    value: String,
}

fn parse_call(op: &str, body: &[u8]) -> Result<EventsCall, EventsError> {
    Ok(match op {
        "PutRule" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct In {
                name: Option<String>,
                schedule_expression: Option<String>,
                event_pattern: Option<String>,
                state: Option<String>,
                description: Option<String>,
                role_arn: Option<String>,
                #[serde(default)]
                tags: Vec<Tag>,
                event_bus_name: Option<String>,
            }
            let i: In = input(body)?;
            EventsCall::PutRule(PutRule {
                name: required(i.name, "name")?,
                event_bus: i.event_bus_name,
                schedule_expression: i.schedule_expression,
                event_pattern: i.event_pattern,
                state: i.state,
                description: i.description,
                role_arn: i.role_arn,
                tags: i.tags.into_iter().map(|t| (t.key, t.value)).collect(),
            })
        }
        "DescribeRule" | "EnableRule" | "DisableRule" | "DeleteRule" => {
            let i: NamedRule = input(body)?;
            let (name, bus) = (required(i.name, "name")?, i.event_bus_name);
            match op {
                "DescribeRule" => EventsCall::DescribeRule { name, bus },
                "EnableRule" => EventsCall::EnableRule { name, bus },
                "DisableRule" => EventsCall::DisableRule { name, bus },
                _ => EventsCall::DeleteRule { name, bus },
            }
        }
        "ListRules" => {
            let i: Listing = input(body)?;
            EventsCall::ListRules { prefix: i.name_prefix, bus: i.event_bus_name, token: i.next_token, limit: i.limit }
        }
        "ListTargetsByRule" => {
            let i: Listing = input(body)?;
            EventsCall::ListTargetsByRule { rule: required(i.rule, "rule")?, bus: i.event_bus_name, token: i.next_token, limit: i.limit }
        }
        "ListRuleNamesByTarget" => {
            let i: Listing = input(body)?;
            EventsCall::ListRuleNamesByTarget {
                arn: required(i.target_arn, "targetArn")?,
                bus: i.event_bus_name,
                token: i.next_token,
                limit: i.limit,
            }
        }
        "ListEventBuses" => {
            let i: Listing = input(body)?;
            EventsCall::ListEventBuses { prefix: i.name_prefix, token: i.next_token, limit: i.limit }
        }
        "PutTargets" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct In {
                rule: Option<String>,
                event_bus_name: Option<String>,
                targets: Option<Vec<Map<String, Value>>>,
            }
            let i: In = input(body)?;
            let targets = required(i.targets, "targets")?.into_iter().map(target_from_json).collect::<Result<_, _>>()?;
            EventsCall::PutTargets { rule: required(i.rule, "rule")?, bus: i.event_bus_name, targets }
        }
        "RemoveTargets" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct In {
                rule: Option<String>,
                event_bus_name: Option<String>,
                ids: Option<Vec<String>>,
            }
            let i: In = input(body)?;
            EventsCall::RemoveTargets { rule: required(i.rule, "rule")?, bus: i.event_bus_name, ids: required(i.ids, "ids")? }
        }
        "PutEvents" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct Entry {
                source: Option<String>,
                detail_type: Option<String>,
                detail: Option<String>,
                #[serde(default)]
                resources: Vec<String>,
                time: Option<Value>,
                event_bus_name: Option<String>,
            }
            #[derive(Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct In {
                entries: Option<Vec<Entry>>,
            }
            let i: In = input(body)?;
            let entries = required(i.entries, "entries")?
                .into_iter()
                .map(|e| {
                    Ok(PutEventsEntry {
                        source: e.source,
                        detail_type: e.detail_type,
                        detail: e.detail,
                        resources: e.resources,
                        time_ms: e.time.as_ref().map(time_ms).transpose()?,
                        event_bus: e.event_bus_name,
                    })
                })
                .collect::<Result<_, EventsError>>()?;
            EventsCall::PutEvents(entries)
        }
        "TestEventPattern" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct In {
                event_pattern: Option<String>,
                event: Option<String>,
            }
            let i: In = input(body)?;
            EventsCall::TestEventPattern { pattern: required(i.event_pattern, "eventPattern")?, event: required(i.event, "event")? }
        }
        "CreateEventBus" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct In {
                name: Option<String>,
                description: Option<String>,
                event_source_name: Option<String>,
            }
            let i: In = input(body)?;
            EventsCall::CreateEventBus { name: required(i.name, "name")?, description: i.description, event_source: i.event_source_name }
        }
        "DeleteEventBus" | "DescribeEventBus" => {
            let i: NamedRule = input(body)?;
            if op == "DeleteEventBus" {
                EventsCall::DeleteEventBus { name: required(i.name, "name")? }
            } else {
                EventsCall::DescribeEventBus { name: i.name }
            }
        }
        other => return Err(EventsError::UnknownOperation(format!("Operation {other} is not supported by this endpoint."))),
    })
}

/// A timestamp as the SDKs send it: epoch seconds (botocore sends a number), or ISO-8601.
fn time_ms(v: &Value) -> Result<i64, EventsError> {
    let bad = || EventsError::Serialization(format!("Time {v} is not a valid timestamp"));
    match v {
        Value::Number(n) => n.as_f64().filter(|f| f.is_finite()).map(|f| (f * 1000.0).round() as i64).ok_or_else(bad),
        Value::String(s) => {
            if let Ok(f) = s.parse::<f64>() {
                return Ok((f * 1000.0).round() as i64);
            }
            chrono::DateTime::parse_from_rfc3339(s).map(|d| d.timestamp_millis()).map_err(|_| bad())
        }
        _ => Err(bad()),
    }
}

fn opt_string(o: &mut Map<String, Value>, key: &str) -> Result<Option<String>, EventsError> {
    match o.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(EventsError::Serialization(format!("{key} must be a string"))),
    }
}

fn target_from_json(mut o: Map<String, Value>) -> Result<TargetSpec, EventsError> {
    let id = required(opt_string(&mut o, "Id")?, "targets.member.id")?;
    let arn = required(opt_string(&mut o, "Arn")?, "targets.member.arn")?;
    let mut t = TargetSpec::new(id, arn);
    t.role_arn = opt_string(&mut o, "RoleArn")?;
    t.input = opt_string(&mut o, "Input")?;
    t.input_path = opt_string(&mut o, "InputPath")?;
    if let Some(tr) = o.remove("InputTransformer").filter(|v| !v.is_null()) {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct In {
            #[serde(default)]
            input_paths_map: std::collections::BTreeMap<String, String>,
            input_template: Option<String>,
        }
        let i: In = serde_json::from_value(tr).map_err(|e| EventsError::Serialization(format!("InputTransformer: {e}")))?;
        t.input_transformer = Some(InputTransformerSpec {
            input_paths_map: i.input_paths_map,
            input_template: required(i.input_template, "targets.member.inputTransformer.inputTemplate")?,
        });
    }
    t.other = o;
    Ok(t)
}

fn target_json(t: &TargetSpec) -> Value {
    let mut o = t.other.clone();
    o.insert("Id".into(), json!(t.id));
    o.insert("Arn".into(), json!(t.arn));
    if let Some(v) = &t.role_arn {
        o.insert("RoleArn".into(), json!(v));
    }
    if let Some(v) = &t.input {
        o.insert("Input".into(), json!(v));
    }
    if let Some(v) = &t.input_path {
        o.insert("InputPath".into(), json!(v));
    }
    if let Some(tr) = &t.input_transformer {
        let mut m = Map::new();
        if !tr.input_paths_map.is_empty() {
            m.insert("InputPathsMap".into(), json!(tr.input_paths_map));
        }
        m.insert("InputTemplate".into(), json!(tr.input_template));
        o.insert("InputTransformer".into(), Value::Object(m));
    }
    Value::Object(o)
}

/// A rule as ListRules shows it (DescribeRule adds `CreatedBy`).
fn rule_json(r: &RuleInfo) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("Name".into(), json!(r.name));
    o.insert("Arn".into(), json!(r.arn));
    if let Some(p) = &r.event_pattern {
        o.insert("EventPattern".into(), json!(p));
    }
    if let Some(s) = &r.schedule_expression {
        o.insert("ScheduleExpression".into(), json!(s));
    }
    o.insert("State".into(), json!(r.state));
    if let Some(d) = &r.description {
        o.insert("Description".into(), json!(d));
    }
    if let Some(a) = &r.role_arn {
        o.insert("RoleArn".into(), json!(a));
    }
    o.insert("EventBusName".into(), json!(r.event_bus));
    o
}

fn bus_json(b: &BusInfo) -> Value {
    let mut o = Map::new();
    o.insert("Name".into(), json!(b.name));
    o.insert("Arn".into(), json!(b.arn));
    if let Some(d) = &b.description {
        o.insert("Description".into(), json!(d));
    }
    o.insert("CreationTime".into(), json!(b.created_ms as f64 / 1000.0));
    o.insert("LastModifiedTime".into(), json!(b.modified_ms as f64 / 1000.0));
    Value::Object(o)
}

fn failed_json(failed: &[FailedEntry]) -> Value {
    json!({
        "FailedEntryCount": failed.len(),
        "FailedEntries": failed.iter().map(|f| json!({"TargetId": f.target_id, "ErrorCode": f.error_code, "ErrorMessage": f.error_message})).collect::<Vec<_>>(),
    })
}

fn page_json<T>(page: Page<T>, key: &str, item: impl Fn(&T) -> Value) -> Value {
    let mut o = Map::new();
    o.insert(key.into(), Value::Array(page.items.iter().map(item).collect()));
    if let Some(t) = page.next_token {
        o.insert("NextToken".into(), json!(t));
    }
    Value::Object(o)
}

async fn run(svc: &EventsService, call: EventsCall) -> Result<Value, EventsError> {
    Ok(match call {
        EventsCall::PutRule(input) => json!({"RuleArn": svc.put_rule(input).await?}),
        EventsCall::DescribeRule { name, bus } => {
            let r = svc.describe_rule(&name, bus.as_deref()).await?;
            let mut o = rule_json(&r);
            o.insert("CreatedBy".into(), json!(r.created_by));
            Value::Object(o)
        }
        EventsCall::ListRules { prefix, bus, token, limit } => {
            let page = svc.list_rules(prefix.as_deref(), bus.as_deref(), token.as_deref(), limit).await?;
            page_json(page, "Rules", |r| Value::Object(rule_json(r)))
        }
        EventsCall::EnableRule { name, bus } => {
            svc.enable_rule(&name, bus.as_deref()).await?;
            json!({})
        }
        EventsCall::DisableRule { name, bus } => {
            svc.disable_rule(&name, bus.as_deref()).await?;
            json!({})
        }
        EventsCall::DeleteRule { name, bus } => {
            svc.delete_rule(&name, bus.as_deref()).await?;
            json!({})
        }
        EventsCall::PutTargets { rule, bus, targets } => failed_json(&svc.put_targets(&rule, bus.as_deref(), targets).await?),
        EventsCall::RemoveTargets { rule, bus, ids } => failed_json(&svc.remove_targets(&rule, bus.as_deref(), ids).await?),
        EventsCall::ListTargetsByRule { rule, bus, token, limit } => {
            page_json(svc.list_targets_by_rule(&rule, bus.as_deref(), token.as_deref(), limit).await?, "Targets", target_json)
        }
        EventsCall::ListRuleNamesByTarget { arn, bus, token, limit } => {
            page_json(svc.list_rule_names_by_target(&arn, bus.as_deref(), token.as_deref(), limit).await?, "RuleNames", |n| json!(n))
        }
        EventsCall::PutEvents(entries) => {
            let results = svc.put_events(entries).await?;
            let failed = results.iter().filter(|r| matches!(r, PutEventsResult::Failed { .. })).count();
            let entries: Vec<Value> = results
                .iter()
                .map(|r| match r {
                    PutEventsResult::Accepted { event_id } => json!({"EventId": event_id}),
                    PutEventsResult::Failed { error_code, error_message } => {
                        json!({"ErrorCode": error_code, "ErrorMessage": error_message})
                    }
                })
                .collect();
            json!({"FailedEntryCount": failed, "Entries": entries})
        }
        EventsCall::TestEventPattern { pattern, event } => json!({"Result": svc.test_event_pattern(&pattern, &event)?}),
        EventsCall::CreateEventBus { name, description, event_source } => {
            let arn = svc.create_event_bus(&name, description.clone(), event_source.as_deref()).await?;
            let mut o = json!({"EventBusArn": arn});
            if let Some(d) = description {
                o["Description"] = json!(d);
            }
            o
        }
        EventsCall::DeleteEventBus { name } => {
            svc.delete_event_bus(&name).await?;
            json!({})
        }
        EventsCall::DescribeEventBus { name } => bus_json(&svc.describe_event_bus(name.as_deref()).await?),
        EventsCall::ListEventBuses { prefix, token, limit } => {
            page_json(svc.list_event_buses(prefix.as_deref(), token.as_deref(), limit).await?, "EventBuses", bus_json)
        }
    })
}

/// Runs a request and answers in EventBridge's shapes.
pub async fn execute(svc: &EventsService, req: EventsRequest) -> Response<Body> {
    let result = match req.call {
        Ok(call) => run(svc, call).await,
        Err(e) => Err(e),
    };
    let (status, body) = match result {
        Ok(v) => (StatusCode::OK, v),
        Err(e) => {
            if let EventsError::Internal(why) = &e {
                tracing::error!(operation = req.operation, "events: {why}");
            }
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            (status, json!({"__type": e.type_name(), "message": e.to_string()}))
        }
    };
    let mut r = response::raw(status, "application/x-amz-json-1.1", Bytes::from(body.to_string()));
    if let Ok(h) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        r.headers_mut().insert("x-amzn-requestid", h);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests() {
        let r = parse("PutRule", br#"{"Name":"r","ScheduleExpression":"rate(1 minute)","Tags":[{"Key":"k","Value":"v"}]}"#);
        assert_eq!(r.name(), "events:PutRule");
        let Ok(EventsCall::PutRule(p)) = r.call else { panic!("{:?}", r.call) };
        assert_eq!((p.name.as_str(), p.tags), ("r", vec![("k".to_string(), "v".to_string())]));

        let r = parse(
            "PutTargets",
            br#"{"Rule":"r","Targets":[{"Id":"t","Arn":"arn:aws:sqs:us-east-1:0:q","SqsParameters":{"MessageGroupId":"g"},
            "InputTransformer":{"InputPathsMap":{"a":"$.detail"},"InputTemplate":"<a>"}}]}"#,
        );
        let Ok(EventsCall::PutTargets { targets, .. }) = r.call else { panic!("{:?}", r.call) };
        assert_eq!(targets[0].other.get("SqsParameters"), Some(&json!({"MessageGroupId": "g"})));
        let back = target_json(&targets[0]);
        assert_eq!(back["InputTransformer"], json!({"InputPathsMap": {"a": "$.detail"}, "InputTemplate": "<a>"}));
        assert_eq!(back["SqsParameters"], json!({"MessageGroupId": "g"}));

        let r = parse(
            "PutEvents",
            br#"{"Entries":[{"Source":"s","DetailType":"d","Detail":"{}","Time":1700000000.5},{"Time":"2024-01-01T00:00:00Z"}]}"#,
        );
        let Ok(EventsCall::PutEvents(entries)) = r.call else { panic!("{:?}", r.call) };
        assert_eq!(entries[0].time_ms, Some(1_700_000_000_500));
        assert_eq!(entries[1].time_ms, Some(1_704_067_200_000));

        assert!(matches!(parse("DescribeRule", b"{}").call, Err(EventsError::Validation(_))));
        assert!(matches!(parse("DescribeRule", b"{").call, Err(EventsError::Serialization(_))));
        assert!(matches!(parse("PutPermission", b"{}").call, Err(EventsError::UnknownOperation(_))));
    }
}

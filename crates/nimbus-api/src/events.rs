//! EventBridge (CloudWatch Events) on the wire: JSON 1.1 requests with
//! `X-Amz-Target: AWSEvents.<Action>`, decoded through `nimbus-protocol` against
//! EventBridge's model into typed [`EventsCall`]s for `nimbus-events`, answered with typed
//! outputs and [`EventsError`]s in EventBridge's shapes.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use http::Response;
use nimbus_events::{
    BusInfo, EventsError, EventsService, FailedEntry, InputTransformerSpec, Page, PutEventsEntry, PutEventsResult, PutRule, RuleInfo,
    TargetSpec,
};
use nimbus_protocol::encode::Empty;
use nimbus_protocol::{calls, encode, DecodeError, Protocol, EVENTS};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::response::Body;

mod target;

/// One EventBridge request: the operation, decoded (or the error AWS would answer while decoding).
#[derive(Debug)]
pub struct EventsRequest {
    pub operation: &'static str,
    pub call: Result<EventsCall, EventsError>,
}

calls! {
    iam "events";
    /// Every EventBridge operation Nimbus serves, with its typed input.
    pub enum EventsCall {
        PutRule(PutRuleInput),
        DescribeRule(NamedRule),
        ListRules(Listing),
        EnableRule(NamedRule),
        DisableRule(NamedRule),
        DeleteRule(NamedRule),
        PutTargets(PutTargetsInput),
        RemoveTargets(RemoveTargetsInput),
        ListTargetsByRule(Listing),
        ListRuleNamesByTarget(Listing),
        PutEvents(PutEventsInput),
        TestEventPattern(TestEventPatternInput),
        CreateEventBus(CreateEventBusInput),
        DeleteEventBus(NamedRule),
        DescribeEventBus(NamedRule),
        ListEventBuses(Listing),
    }
}

impl EventsRequest {
    /// The IAM action name (`events:PutRule`).
    pub fn name(&self) -> &'static str {
        EventsCall::iam_action(self.operation).unwrap_or("events:Unknown")
    }
}

/// Decodes the body of an `AWSEvents.<operation>` request.
pub fn parse(operation: &str, body: &[u8]) -> EventsRequest {
    match EventsCall::from_json(&EVENTS, operation, body) {
        Some((operation, call)) => EventsRequest { operation, call: call.map_err(decode_error) },
        None => EventsRequest {
            operation: "Unknown",
            call: Err(EventsError::UnknownOperation(format!("Operation {operation} is not supported by this endpoint."))),
        },
    }
}

/// EventBridge's answer to a request that does not fit the operation's input shape. Paths
/// name members as EventBridge's messages do: `targets.member.id`.
fn decode_error(e: DecodeError) -> EventsError {
    let path = |member: &str| {
        member
            .split('.')
            .map(|seg| match seg.parse::<u64>() {
                Ok(_) => "member".to_string(),
                Err(_) => {
                    let mut c = seg.chars();
                    c.next().map(|f| f.to_lowercase().chain(c).collect()).unwrap_or_default()
                }
            })
            .collect::<Vec<String>>()
            .join(".")
    };
    match e {
        DecodeError::Missing { member } => EventsError::Validation(format!(
            "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
            path(&member)
        )),
        DecodeError::Type { member, expected, .. } | DecodeError::Binding { member, expected, .. } => {
            EventsError::Serialization(format!("Could not parse the request body: {member} must be a {expected}"))
        }
        DecodeError::Malformed(m) | DecodeError::Shape(m) => EventsError::Serialization(format!("Could not parse the request body: {m}")),
    }
}

// ---- typed inputs ------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
pub struct Tag {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "Value")]
    value: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRuleInput {
    name: String,
    schedule_expression: Option<String>,
    event_pattern: Option<String>,
    state: Option<String>,
    description: Option<String>,
    role_arn: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
    event_bus_name: Option<String>,
}

/// A rule or bus named by `Name` (on a bus).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NamedRule {
    name: Option<String>,
    event_bus_name: Option<String>,
}

impl NamedRule {
    /// `Name`, which the model requires of every operation but DescribeEventBus.
    fn name(&self) -> String {
        self.name.clone().unwrap_or_default()
    }
}

/// The members of the listing operations.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Listing {
    name_prefix: Option<String>,
    event_bus_name: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
    rule: Option<String>,
    target_arn: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InputTransformerInput {
    #[serde(default)]
    input_paths_map: BTreeMap<String, String>,
    input_template: String,
}

/// A target: what delivery uses, typed; every other member the model defines for a target
/// (`SqsParameters`, `RetryPolicy`, …) kept as given, its types checked by the decoder.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TargetInput {
    id: String,
    arn: String,
    role_arn: Option<String>,
    input: Option<String>,
    input_path: Option<String>,
    input_transformer: Option<InputTransformerInput>,
    #[serde(flatten)]
    other: Map<String, Value>,
}

/// The members of EventBridge's `Target` shape.
static TARGET_MEMBERS: LazyLock<Vec<String>> =
    LazyLock::new(|| EVENTS.model().shape_named("Target").members.iter().map(|(n, _)| n.clone()).collect());

impl From<TargetInput> for TargetSpec {
    fn from(t: TargetInput) -> TargetSpec {
        let mut spec = TargetSpec::new(t.id, t.arn);
        spec.role_arn = t.role_arn;
        spec.input = t.input;
        spec.input_path = t.input_path;
        spec.input_transformer =
            t.input_transformer.map(|i| InputTransformerSpec { input_paths_map: i.input_paths_map, input_template: i.input_template });
        spec.other = t.other.into_iter().filter(|(k, v)| !v.is_null() && TARGET_MEMBERS.contains(k)).collect();
        spec
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutTargetsInput {
    rule: String,
    event_bus_name: Option<String>,
    targets: Vec<TargetInput>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RemoveTargetsInput {
    rule: String,
    event_bus_name: Option<String>,
    ids: Vec<String>,
}

/// A timestamp as the SDKs send it: epoch seconds (botocore sends a number), or text.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Timestamp {
    Seconds(f64),
    Text(String),
}

impl Timestamp {
    fn millis(&self) -> Result<i64, EventsError> {
        match self {
            Timestamp::Seconds(f) if f.is_finite() => Ok((f * 1000.0).round() as i64),
            Timestamp::Text(s) => match s.parse::<f64>() {
                Ok(f) if f.is_finite() => Ok((f * 1000.0).round() as i64),
                _ => chrono::DateTime::parse_from_rfc3339(s)
                    .map(|d| d.timestamp_millis())
                    .map_err(|_| EventsError::Serialization(format!("Time {s} is not a valid timestamp"))),
            },
            Timestamp::Seconds(f) => Err(EventsError::Serialization(format!("Time {f} is not a valid timestamp"))),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutEventsRequestEntry {
    source: Option<String>,
    detail_type: Option<String>,
    detail: Option<String>,
    #[serde(default)]
    resources: Vec<String>,
    time: Option<Timestamp>,
    event_bus_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutEventsInput {
    entries: Vec<PutEventsRequestEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TestEventPatternInput {
    event_pattern: String,
    event: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateEventBusInput {
    name: String,
    description: Option<String>,
    event_source_name: Option<String>,
}

// ---- typed outputs -----------------------------------------------------------------------

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PutRuleOutput {
    rule_arn: String,
}

/// A rule as ListRules shows it; DescribeRule adds `CreatedBy`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Rule<'a> {
    name: &'a str,
    arn: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_pattern: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    schedule_expression: Option<&'a str>,
    state: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    role_arn: Option<&'a str>,
    event_bus_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_by: Option<&'a str>,
}

impl<'a> Rule<'a> {
    fn new(r: &'a RuleInfo, described: bool) -> Rule<'a> {
        Rule {
            name: &r.name,
            arn: &r.arn,
            event_pattern: r.event_pattern.as_deref(),
            schedule_expression: r.schedule_expression.as_deref(),
            state: &r.state,
            description: r.description.as_deref(),
            role_arn: r.role_arn.as_deref(),
            event_bus_name: &r.event_bus,
            created_by: described.then_some(r.created_by.as_str()),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListRulesOutput<'a> {
    rules: Vec<Rule<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct FailedEntriesOutput<'a> {
    failed_entry_count: usize,
    failed_entries: Vec<FailedTarget<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct FailedTarget<'a> {
    target_id: &'a str,
    error_code: &'a str,
    error_message: &'a str,
}

impl<'a> FailedEntriesOutput<'a> {
    fn new(failed: &'a [FailedEntry]) -> FailedEntriesOutput<'a> {
        FailedEntriesOutput {
            failed_entry_count: failed.len(),
            failed_entries: failed
                .iter()
                .map(|f| FailedTarget { target_id: &f.target_id, error_code: &f.error_code, error_message: &f.error_message })
                .collect(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Target<'a> {
    id: &'a str,
    arn: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    role_arn: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input_path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input_transformer: Option<InputTransformer<'a>>,
    #[serde(flatten)]
    other: &'a Map<String, Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct InputTransformer<'a> {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    input_paths_map: &'a BTreeMap<String, String>,
    input_template: &'a str,
}

impl<'a> Target<'a> {
    fn new(t: &'a TargetSpec) -> Target<'a> {
        Target {
            id: &t.id,
            arn: &t.arn,
            role_arn: t.role_arn.as_deref(),
            input: t.input.as_deref(),
            input_path: t.input_path.as_deref(),
            input_transformer: t
                .input_transformer
                .as_ref()
                .map(|tr| InputTransformer { input_paths_map: &tr.input_paths_map, input_template: &tr.input_template }),
            other: &t.other,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListTargetsOutput<'a> {
    targets: Vec<Target<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListRuleNamesOutput {
    rule_names: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PutEventsOutput<'a> {
    failed_entry_count: usize,
    entries: Vec<PutEventsResultEntry<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PutEventsResultEntry<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    event_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct TestEventPatternOutput {
    result: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct CreateEventBusOutput {
    event_bus_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct EventBus<'a> {
    name: &'a str,
    arn: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    creation_time: f64,
    last_modified_time: f64,
}

impl<'a> EventBus<'a> {
    fn new(b: &'a BusInfo) -> EventBus<'a> {
        EventBus {
            name: &b.name,
            arn: &b.arn,
            description: b.description.as_deref(),
            creation_time: b.created_ms as f64 / 1000.0,
            last_modified_time: b.modified_ms as f64 / 1000.0,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListEventBusesOutput<'a> {
    event_buses: Vec<EventBus<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

// ---- running -----------------------------------------------------------------------------

fn reply<T: Serialize>(operation: &str, request_id: &str, output: &T) -> Response<bytes::Bytes> {
    encode::output(&EVENTS, Protocol::AwsJson1_1, operation, output, request_id)
}

async fn run(svc: &EventsService, call: EventsCall, rid: &str) -> Result<Response<bytes::Bytes>, EventsError> {
    let op = call.operation();
    Ok(match call {
        EventsCall::PutRule(i) => {
            let rule = PutRule {
                name: i.name,
                event_bus: i.event_bus_name,
                schedule_expression: i.schedule_expression,
                event_pattern: i.event_pattern,
                state: i.state,
                description: i.description,
                role_arn: i.role_arn,
                tags: i.tags.into_iter().map(|t| (t.key, t.value)).collect(),
            };
            reply(op, rid, &PutRuleOutput { rule_arn: svc.put_rule(rule).await? })
        }
        EventsCall::DescribeRule(i) => {
            let r = svc.describe_rule(&i.name(), i.event_bus_name.as_deref()).await?;
            reply(op, rid, &Rule::new(&r, true))
        }
        EventsCall::ListRules(i) => {
            let page = svc.list_rules(i.name_prefix.as_deref(), i.event_bus_name.as_deref(), i.next_token.as_deref(), i.limit).await?;
            reply(
                op,
                rid,
                &ListRulesOutput { rules: page.items.iter().map(|r| Rule::new(r, false)).collect(), next_token: page.next_token },
            )
        }
        EventsCall::EnableRule(i) => {
            svc.enable_rule(&i.name(), i.event_bus_name.as_deref()).await?;
            reply(op, rid, &Empty {})
        }
        EventsCall::DisableRule(i) => {
            svc.disable_rule(&i.name(), i.event_bus_name.as_deref()).await?;
            reply(op, rid, &Empty {})
        }
        EventsCall::DeleteRule(i) => {
            svc.delete_rule(&i.name(), i.event_bus_name.as_deref()).await?;
            reply(op, rid, &Empty {})
        }
        EventsCall::PutTargets(i) => {
            let targets = i.targets.into_iter().map(TargetSpec::from).collect();
            let failed = svc.put_targets(&i.rule, i.event_bus_name.as_deref(), targets).await?;
            reply(op, rid, &FailedEntriesOutput::new(&failed))
        }
        EventsCall::RemoveTargets(i) => {
            let failed = svc.remove_targets(&i.rule, i.event_bus_name.as_deref(), i.ids).await?;
            reply(op, rid, &FailedEntriesOutput::new(&failed))
        }
        EventsCall::ListTargetsByRule(i) => {
            let rule = i.rule.unwrap_or_default();
            let page: Page<TargetSpec> =
                svc.list_targets_by_rule(&rule, i.event_bus_name.as_deref(), i.next_token.as_deref(), i.limit).await?;
            reply(op, rid, &ListTargetsOutput { targets: page.items.iter().map(Target::new).collect(), next_token: page.next_token })
        }
        EventsCall::ListRuleNamesByTarget(i) => {
            let arn = i.target_arn.unwrap_or_default();
            let page = svc.list_rule_names_by_target(&arn, i.event_bus_name.as_deref(), i.next_token.as_deref(), i.limit).await?;
            reply(op, rid, &ListRuleNamesOutput { rule_names: page.items, next_token: page.next_token })
        }
        EventsCall::PutEvents(i) => {
            let entries = i
                .entries
                .into_iter()
                .map(|e| {
                    Ok(PutEventsEntry {
                        source: e.source,
                        detail_type: e.detail_type,
                        detail: e.detail,
                        resources: e.resources,
                        time_ms: e.time.as_ref().map(Timestamp::millis).transpose()?,
                        event_bus: e.event_bus_name,
                    })
                })
                .collect::<Result<_, EventsError>>()?;
            let results = svc.put_events(entries).await?;
            let entries: Vec<PutEventsResultEntry> = results
                .iter()
                .map(|r| match r {
                    PutEventsResult::Accepted { event_id } => {
                        PutEventsResultEntry { event_id: Some(event_id), error_code: None, error_message: None }
                    }
                    PutEventsResult::Failed { error_code, error_message } => {
                        PutEventsResultEntry { event_id: None, error_code: Some(error_code), error_message: Some(error_message) }
                    }
                })
                .collect();
            let failed_entry_count = entries.iter().filter(|e| e.error_code.is_some()).count();
            reply(op, rid, &PutEventsOutput { failed_entry_count, entries })
        }
        EventsCall::TestEventPattern(i) => {
            reply(op, rid, &TestEventPatternOutput { result: svc.test_event_pattern(&i.event_pattern, &i.event)? })
        }
        EventsCall::CreateEventBus(i) => {
            let arn = svc.create_event_bus(&i.name, i.description.clone(), i.event_source_name.as_deref()).await?;
            reply(op, rid, &CreateEventBusOutput { event_bus_arn: arn, description: i.description })
        }
        EventsCall::DeleteEventBus(i) => {
            svc.delete_event_bus(&i.name()).await?;
            reply(op, rid, &Empty {})
        }
        EventsCall::DescribeEventBus(i) => {
            let bus = svc.describe_event_bus(i.name.as_deref()).await?;
            reply(op, rid, &EventBus::new(&bus))
        }
        EventsCall::ListEventBuses(i) => {
            let page = svc.list_event_buses(i.name_prefix.as_deref(), i.next_token.as_deref(), i.limit).await?;
            reply(
                op,
                rid,
                &ListEventBusesOutput { event_buses: page.items.iter().map(EventBus::new).collect(), next_token: page.next_token },
            )
        }
    })
}

/// Runs a request and answers in EventBridge's shapes.
pub async fn execute(svc: &EventsService, req: EventsRequest) -> Response<Body> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let result = match req.call {
        Ok(call) => run(svc, call, &request_id).await,
        Err(e) => Err(e),
    };
    let response = result.unwrap_or_else(|e| {
        if let EventsError::Internal(why) = &e {
            tracing::error!(operation = req.operation, "events: {why}");
        }
        encode::error(&EVENTS, Protocol::AwsJson1_1, &e, &request_id)
    });
    response.map(crate::response::Body::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_requests() {
        let r = parse("PutRule", br#"{"Name":"r","ScheduleExpression":"rate(1 minute)","Tags":[{"Key":"k","Value":"v"}]}"#);
        assert_eq!(r.name(), "events:PutRule");
        let Ok(EventsCall::PutRule(p)) = r.call else { panic!("{:?}", r.call) };
        assert_eq!((p.name.as_str(), p.tags[0].key.as_str(), p.tags[0].value.as_str()), ("r", "k", "v"));

        let r = parse(
            "PutTargets",
            br#"{"Rule":"r","Targets":[{"Id":"t","Arn":"arn:aws:sqs:us-east-1:0:q","SqsParameters":{"MessageGroupId":"g"},"NotAMember":1,
            "InputTransformer":{"InputPathsMap":{"a":"$.detail"},"InputTemplate":"<a>"}}]}"#,
        );
        let Ok(EventsCall::PutTargets(i)) = r.call else { panic!("{:?}", r.call) };
        let spec = TargetSpec::from(i.targets.into_iter().next().expect("one"));
        let back = serde_json::to_value(Target::new(&spec)).expect("serializes");
        assert_eq!(back["InputTransformer"], json!({"InputPathsMap": {"a": "$.detail"}, "InputTemplate": "<a>"}));
        assert_eq!(back["SqsParameters"], json!({"MessageGroupId": "g"}));
        // Members the model does not define are not kept (nor echoed back).
        assert_eq!(back.get("NotAMember"), None);

        let r = parse(
            "PutEvents",
            br#"{"Entries":[{"Source":"s","DetailType":"d","Detail":"{}","Time":1700000000.5},{"Time":"2024-01-01T00:00:00Z"}]}"#,
        );
        let Ok(EventsCall::PutEvents(i)) = r.call else { panic!("{:?}", r.call) };
        let millis: Vec<i64> = i.entries.iter().map(|e| e.time.as_ref().expect("time").millis().expect("valid")).collect();
        assert_eq!(millis, [1_700_000_000_500, 1_704_067_200_000]);

        assert!(matches!(parse("DescribeRule", b"{}").call, Err(EventsError::Validation(_))));
        assert!(matches!(parse("DescribeRule", b"{").call, Err(EventsError::Serialization(_))));
        assert!(matches!(parse("PutPermission", b"{}").call, Err(EventsError::UnknownOperation(_))));
    }
}

//! A CloudWatch Logs subset on the wire (JSON 1.1, `X-Amz-Target: Logs_20140328.<Action>`):
//! requests decoded through `nimbus-protocol` against the Logs model into typed
//! [`LogsCall`]s, answered from the log store with typed outputs. Enough for `aws logs`,
//! boto3 and `nimbus logs` to read function logs, and for applications to keep logs of their
//! own: groups and streams made and deleted, PutLogEvents with AWS's batch rules,
//! retention policies and tags; subscription filters that send matching events to a Lambda
//! function (checked against the function's resource policy as AWS checks it); metric filters
//! (Put/Describe/Delete/TestMetricFilter) whose matches become CloudWatch datapoints. Filter
//! patterns are parsed once per request (a bad one is refused as AWS refuses it).

use std::collections::BTreeMap;
use std::fmt;

use http::Response;
use nimbus_logs::rules::{self, BatchError, NameError};
use nimbus_logs::{Cursor, FilterPattern, LogError, LogStore, MetricFilter, MetricTransformation, Position, SubscriptionFilter};
use nimbus_model::{ApiError, ErrorCode};
use nimbus_protocol::{calls, encode, AwsError, DecodeError, Protocol, LOGS};
use serde::{Deserialize, Serialize};

use crate::response::Body;
use crate::server::AppState;

mod target;

/// The `X-Amz-Target` prefix of every Logs operation.
pub const TARGET_PREFIX: &str = "Logs_20140328.";

/// One Logs request: the call, decoded (or the error AWS would answer while decoding).
#[derive(Debug)]
pub struct LogsRequest {
    pub operation: &'static str,
    pub call: Result<LogsCall, LogsError>,
}

impl LogsRequest {
    /// The IAM action name (`logs:GetLogEvents`).
    pub fn name(&self) -> &'static str {
        LogsCall::iam_action(self.operation).unwrap_or("logs:Unknown")
    }
}

calls! {
    iam "logs";
    /// Every Logs operation Nimbus serves, with its typed input.
    pub enum LogsCall {
        DescribeLogGroups(DescribeLogGroupsInput),
        DescribeLogStreams(DescribeLogStreamsInput),
        GetLogEvents(GetLogEventsInput),
        FilterLogEvents(FilterLogEventsInput),
        CreateLogGroup(CreateLogGroupInput),
        DeleteLogGroup(GroupNameInput),
        CreateLogStream(StreamNameInput),
        DeleteLogStream(StreamNameInput),
        PutLogEvents(PutLogEventsInput),
        PutRetentionPolicy(PutRetentionPolicyInput),
        DeleteRetentionPolicy(GroupNameInput),
        TagLogGroup(TagLogGroupInput),
        UntagLogGroup(UntagLogGroupInput),
        ListTagsLogGroup(GroupNameInput),
        TagResource(TagResourceInput),
        UntagResource(UntagResourceInput),
        ListTagsForResource(ResourceInput),
        PutSubscriptionFilter(PutSubscriptionFilterInput),
        DescribeSubscriptionFilters(DescribeSubscriptionFiltersInput),
        DeleteSubscriptionFilter(DeleteSubscriptionFilterInput),
        PutMetricFilter(PutMetricFilterInput),
        DescribeMetricFilters(DescribeMetricFiltersInput),
        DeleteMetricFilter(DeleteMetricFilterInput),
        TestMetricFilter(TestMetricFilterInput),
    }
}

/// An error as CloudWatch Logs answers it: every client error is a 400 (even
/// ResourceNotFoundException), ours a 500.
#[derive(Debug)]
pub struct LogsError {
    code: &'static str,
    message: String,
    ours: bool,
}

impl LogsError {
    fn new(code: &'static str, message: impl Into<String>) -> LogsError {
        LogsError { code, message: message.into(), ours: false }
    }
}

impl fmt::Display for LogsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl AwsError for LogsError {
    fn code(&self) -> &str {
        self.code
    }
    fn status(&self) -> u16 {
        if self.ours {
            500
        } else {
            400
        }
    }
    fn message(&self) -> String {
        self.message.clone()
    }
}

impl From<ApiError> for LogsError {
    fn from(e: ApiError) -> LogsError {
        LogsError { code: e.code.name(), ours: e.code == ErrorCode::Service, message: e.message }
    }
}

impl From<LogError> for LogsError {
    fn from(e: LogError) -> LogsError {
        match e {
            LogError::GroupExists | LogError::StreamExists => LogsError::new("ResourceAlreadyExistsException", e.to_string()),
            LogError::GroupMissing | LogError::StreamMissing | LogError::FilterMissing | LogError::MetricFilterMissing => {
                LogsError::new("ResourceNotFoundException", e.to_string())
            }
            LogError::LimitExceeded => LogsError::new("LimitExceededException", e.to_string()),
            LogError::Io(_) => LogsError { code: "ServiceUnavailableException", message: e.to_string(), ours: true },
        }
    }
}

/// A filter pattern, parsed once for the request (AWS refuses a bad one as invalid).
fn filter_pattern(pattern: &str) -> Result<FilterPattern, LogsError> {
    FilterPattern::parse(pattern).map_err(|e| invalid(e.to_string()))
}

fn invalid(message: impl Into<String>) -> LogsError {
    LogsError::new("InvalidParameterException", message)
}

/// AWS's wording for a value outside its member's constraint.
fn constraint(value: &str, member: &str, rule: &str) -> LogsError {
    invalid(format!("1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: Member must {rule}"))
}

fn check_name(name: &str, member: &str, check: fn(&str) -> Result<(), NameError>) -> Result<(), LogsError> {
    check(name).map_err(|e| match e {
        NameError::Empty => constraint(name, member, "have length greater than or equal to 1"),
        NameError::TooLong => invalid("Invalid LogGroup or LogStream, both must have length less than or equal to 512."),
        NameError::Pattern(p) => constraint(name, member, &format!("satisfy regular expression pattern: {p}")),
    })
}

fn check_group(name: &str) -> Result<(), LogsError> {
    check_name(name, "logGroupName", rules::check_group_name)
}

fn check_stream(name: &str) -> Result<(), LogsError> {
    check_name(name, "logStreamName", rules::check_stream_name)
}

/// Decodes `Logs_20140328.<operation>`'s body.
pub fn parse(operation: &str, body: &[u8]) -> LogsRequest {
    match LogsCall::from_json(&LOGS, operation, body) {
        Some((operation, call)) => LogsRequest { operation, call: call.map_err(decode_error) },
        None => LogsRequest {
            operation: "Unknown",
            call: Err(ApiError::new(ErrorCode::UnknownOperation, format!("Operation {operation} is not supported")).into()),
        },
    }
}

fn decode_error(e: DecodeError) -> LogsError {
    match e {
        DecodeError::Missing { member } => {
            invalid(format!("1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"))
        }
        DecodeError::Type { member, expected, .. } | DecodeError::Binding { member, expected, .. } => {
            invalid(format!("{member} must be a {expected}"))
        }
        DecodeError::Malformed(m) | DecodeError::Shape(m) => invalid(format!("The request body is not valid JSON: {m}")),
    }
}

// ---- typed inputs ------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeLogGroupsInput {
    log_group_name_prefix: Option<String>,
    /// A case-sensitive substring of the name.
    log_group_name_pattern: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
}

/// A log group by name or by ARN (`logGroupIdentifier`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupInput {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
}

impl GroupInput {
    fn name(&self) -> Result<String, LogsError> {
        match (&self.log_group_name, &self.log_group_identifier) {
            (Some(_), Some(_)) => {
                Err(LogsError::new("ValidationException", "LogGroup name and LogGroup ARN are mutually exclusive parameters."))
            }
            (Some(name), None) => Ok(name.clone()),
            // arn:aws:logs:<region>:<account>:log-group:<name>[:*]
            (None, Some(id)) => Ok(match id.split_once(":log-group:") {
                Some((_, rest)) => rest.trim_end_matches(":*").to_string(),
                None => id.clone(),
            }),
            (None, None) => Err(invalid("Should provide either name or ARN of the LogGroup.")),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeLogStreamsInput {
    #[serde(flatten)]
    group: GroupInput,
    log_stream_name_prefix: Option<String>,
    order_by: Option<String>,
    descending: Option<bool>,
    next_token: Option<String>,
    limit: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetLogEventsInput {
    #[serde(flatten)]
    group: GroupInput,
    log_stream_name: String,
    start_time: Option<i64>,
    end_time: Option<i64>,
    next_token: Option<String>,
    limit: Option<i64>,
    start_from_head: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterLogEventsInput {
    #[serde(flatten)]
    group: GroupInput,
    log_stream_names: Option<Vec<String>>,
    log_stream_name_prefix: Option<String>,
    start_time: Option<i64>,
    end_time: Option<i64>,
    filter_pattern: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateLogGroupInput {
    log_group_name: String,
    tags: Option<BTreeMap<String, String>>,
}

/// A call on one group, by name.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupNameInput {
    log_group_name: String,
}

/// A call on one stream, by group and stream name.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamNameInput {
    log_group_name: String,
    log_stream_name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InputLogEvent {
    timestamp: i64,
    message: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutLogEventsInput {
    log_group_name: String,
    log_stream_name: String,
    log_events: Vec<InputLogEvent>,
    /// Accepted and ignored, as AWS does now.
    #[allow(dead_code)]
    sequence_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutRetentionPolicyInput {
    log_group_name: String,
    retention_in_days: i64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagLogGroupInput {
    log_group_name: String,
    tags: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UntagLogGroupInput {
    log_group_name: String,
    tags: Vec<String>,
}

/// A call on a resource by ARN (Nimbus tags log groups only).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceInput {
    resource_arn: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagResourceInput {
    resource_arn: String,
    tags: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UntagResourceInput {
    resource_arn: String,
    tag_keys: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutSubscriptionFilterInput {
    log_group_name: String,
    filter_name: String,
    filter_pattern: String,
    destination_arn: String,
    role_arn: Option<String>,
    distribution: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeSubscriptionFiltersInput {
    log_group_name: String,
    filter_name_prefix: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteSubscriptionFilterInput {
    log_group_name: String,
    filter_name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricTransformationInput {
    metric_name: String,
    metric_namespace: String,
    metric_value: String,
    default_value: Option<f64>,
    dimensions: Option<BTreeMap<String, String>>,
    unit: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutMetricFilterInput {
    log_group_name: String,
    filter_name: String,
    filter_pattern: String,
    metric_transformations: Vec<MetricTransformationInput>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeMetricFiltersInput {
    log_group_name: Option<String>,
    filter_name_prefix: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
    metric_name: Option<String>,
    metric_namespace: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteMetricFilterInput {
    log_group_name: String,
    filter_name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestMetricFilterInput {
    filter_pattern: String,
    log_event_messages: Vec<String>,
}

/// The group a log-group ARN names (`arn:aws:logs:<region>:<account>:log-group:<name>`,
/// with or without AWS's `:*`).
fn group_of_arn(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(_), Some("logs"), Some(_), Some(_), Some(rest)) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let name = rest.strip_prefix("log-group:")?;
    let name = name.strip_suffix(":*").unwrap_or(name);
    (!name.is_empty() && !name.contains(':')).then_some(name)
}

fn resource_group(arn: &str) -> Result<&str, LogsError> {
    group_of_arn(arn).ok_or_else(|| invalid(format!("Invalid resource arn: {arn}")))
}

// ---- typed outputs -----------------------------------------------------------------------

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DescribeLogGroupsOutput {
    log_groups: Vec<LogGroup>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LogGroup {
    log_group_name: String,
    creation_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    retention_in_days: Option<u32>,
    metric_filter_count: u32,
    arn: String,
    stored_bytes: u64,
    log_group_class: &'static str,
    log_group_arn: String,
    deletion_protection_enabled: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DescribeLogStreamsOutput {
    log_streams: Vec<LogStream>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LogStream {
    log_stream_name: String,
    creation_time: i64,
    /// The event fields are left out while the stream holds none, as AWS does.
    #[serde(skip_serializing_if = "Option::is_none")]
    first_event_timestamp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_event_timestamp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_ingestion_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    upload_sequence_token: Option<String>,
    arn: String,
    stored_bytes: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GetLogEventsOutput {
    events: Vec<OutputLogEvent>,
    next_forward_token: String,
    next_backward_token: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OutputLogEvent {
    timestamp: i64,
    message: String,
    ingestion_time: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FilterLogEventsOutput {
    events: Vec<FilteredLogEvent>,
    searched_log_streams: Vec<SearchedLogStream>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FilteredLogEvent {
    log_stream_name: String,
    timestamp: i64,
    message: String,
    ingestion_time: i64,
    event_id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SearchedLogStream {
    log_stream_name: String,
    searched_completely: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PutLogEventsOutput {
    next_sequence_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    rejected_log_events_info: Option<RejectedLogEventsInfo>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RejectedLogEventsInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    too_new_log_event_start_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    too_old_log_event_end_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expired_log_event_end_index: Option<usize>,
}

#[derive(Serialize)]
struct TagsOutput {
    tags: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DescribeSubscriptionFiltersOutput {
    subscription_filters: Vec<SubscriptionFilterOutput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionFilterOutput {
    filter_name: String,
    log_group_name: String,
    filter_pattern: String,
    destination_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    role_arn: Option<String>,
    distribution: String,
    apply_on_transformed_logs: bool,
    creation_time: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DescribeMetricFiltersOutput {
    metric_filters: Vec<MetricFilterOutput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MetricFilterOutput {
    filter_name: String,
    filter_pattern: String,
    metric_transformations: Vec<MetricTransformation>,
    creation_time: i64,
    log_group_name: String,
    apply_on_transformed_logs: bool,
}

#[derive(Serialize)]
struct TestMetricFilterOutput {
    matches: Vec<MetricFilterMatchRecord>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MetricFilterMatchRecord {
    event_number: i64,
    event_message: String,
    extracted_values: BTreeMap<String, String>,
}

/// CloudWatch's units, as the Logs model lists them.
const UNITS: &[&str] = &nimbus_metrics::cloudwatch::STANDARD_UNITS;

/// A metric name or namespace as the model constrains them.
fn check_metric_name(value: &str, member: &str) -> Result<(), LogsError> {
    if value.len() > 255 {
        return Err(constraint(value, member, "have length less than or equal to 255"));
    }
    if value.contains([':', '*', '$']) {
        return Err(constraint(value, member, "satisfy regular expression pattern: [^:*$]*"));
    }
    Ok(())
}

/// How AWS's validation message prints a transformation (Java's `toString`).
fn transformation_text(t: &MetricTransformationInput) -> String {
    let dims = t
        .dimensions
        .as_ref()
        .map_or("null".to_string(), |d| format!("{{{}}}", d.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")));
    format!(
        "MetricTransformation(metricName={}, metricNamespace={}, metricValue={}, defaultValue={}, unit={}, dimensions={dims})",
        t.metric_name,
        t.metric_namespace,
        t.metric_value,
        t.default_value.map_or("null".to_string(), |v| format!("{v:?}")),
        t.unit.as_deref().unwrap_or("null"),
    )
}

/// A PutMetricFilter's transformation, checked as the model and AWS check it (exactly one;
/// its value and dimensions taken from what the pattern extracts).
fn metric_transformation(input: Vec<MetricTransformationInput>, pattern: &FilterPattern) -> Result<MetricTransformation, LogsError> {
    if input.len() != 1 {
        let rule = if input.is_empty() { "have length greater than or equal to 1" } else { "have length less than or equal to 1" };
        let listed = input.iter().map(transformation_text).collect::<Vec<_>>().join(", ");
        return Err(constraint(&format!("[{listed}]"), "metricTransformations", rule));
    }
    let t = input.into_iter().next().expect("exactly one");
    check_metric_name(&t.metric_name, "metricTransformations.1.member.metricName")?;
    check_metric_name(&t.metric_namespace, "metricTransformations.1.member.metricNamespace")?;
    if t.metric_value.len() > 100 {
        return Err(constraint(&t.metric_value, "metricTransformations.1.member.metricValue", "have length less than or equal to 100"));
    }
    if let Some(u) = t.unit.as_deref().filter(|u| !UNITS.contains(u)) {
        return Err(constraint(u, "metricTransformations.1.member.unit", &format!("satisfy enum value set: [{}]", UNITS.join(", "))));
    }
    let dimensions = t.dimensions.unwrap_or_default();
    if dimensions.len() > 3 {
        return Err(LogError::LimitExceeded.into());
    }
    let out = MetricTransformation {
        metric_name: t.metric_name,
        metric_namespace: t.metric_namespace,
        metric_value: t.metric_value,
        default_value: t.default_value,
        dimensions,
        unit: t.unit,
    };
    out.check(pattern).map_err(|e| invalid(e.to_string()))?;
    Ok(out)
}

/// A DescribeMetricFilters token: the (filter, group) last handed out.
fn metric_filter_token(filter: &str, group: &str) -> String {
    name_token(&format!("{filter}\u{0}{group}"))
}

/// AWS's answer when a Lambda destination does not exist or its policy does not let CloudWatch
/// Logs invoke it.
const LAMBDA_REFUSED: &str =
    "Could not execute the lambda function. Make sure you have given CloudWatch Logs permission to execute your function.";

/// AWS's answer for a Lambda destination in another account.
const CROSS_ACCOUNT: &str =
    "Cross-account lambda invocation passing is not allowed. You must use DestinationPolicies to create cross account lambda triggers.";

/// A subscription filter's name and pattern, as the model constrains them.
fn check_filter(name: &str, pattern: &str, distribution: Option<&str>) -> Result<(), LogsError> {
    if name.is_empty() {
        return Err(constraint(name, "filterName", "have length greater than or equal to 1"));
    }
    if name.len() > 512 {
        return Err(constraint(name, "filterName", "have length less than or equal to 512"));
    }
    if name.contains([':', '*']) {
        return Err(constraint(name, "filterName", "satisfy regular expression pattern: [^:*]*"));
    }
    if pattern.len() > 1024 {
        return Err(constraint(pattern, "filterPattern", "have length less than or equal to 1024"));
    }
    if let Some(d) = distribution.filter(|d| !["Random", "ByLogStream"].contains(d)) {
        return Err(constraint(d, "distribution", "satisfy enum value set: [Random, ByLogStream]"));
    }
    Ok(())
}

/// Whether events of `group` may go to `destination`: a Lambda function of this account whose
/// resource policy lets CloudWatch Logs (`logs.amazonaws.com` or the regional
/// `logs.<region>.amazonaws.com`) invoke it for the group, as AWS checks when the filter is
/// put. Other destinations (Kinesis, Firehose, Logs destinations) are not served.
fn check_destination(state: &AppState, group: Option<&str>, destination: &str, role: Option<&str>) -> Result<(), LogsError> {
    let p = state.control.partition();
    let parts: Vec<&str> = destination.splitn(7, ':').collect();
    let vendor = parts.get(2).copied().unwrap_or_default();
    if parts.len() < 6 || parts[0] != "arn" {
        return Err(invalid(format!("Invalid destinationArn: {destination}")));
    }
    if vendor != "lambda" {
        if role.is_none() {
            return Err(invalid(format!("destinationArn for vendor {vendor} cannot be used without roleArn")));
        }
        return Err(invalid("Could not deliver test message to specified destination. Check if the destination is valid."));
    }
    if parts[4] != p.account_id {
        return Err(LogsError::new("AccessDeniedException", CROSS_ACCOUNT));
    }
    let Some(group) = group else { return Ok(()) };
    let source = format!("{}:*", group_arn(state, group));
    let allowed = tokio::runtime::Handle::current().block_on(async {
        for service in ["logs.amazonaws.com".to_string(), format!("logs.{}.amazonaws.com", p.region)] {
            if crate::authz::service_may_invoke(&state.control, &service, destination, &source, &p.account_id).await.is_ok() {
                return true;
            }
        }
        false
    });
    if allowed {
        Ok(())
    } else {
        Err(invalid(LAMBDA_REFUSED))
    }
}

// ---- running -----------------------------------------------------------------------------

fn group_missing() -> LogsError {
    LogError::GroupMissing.into()
}

/// `arn:aws:logs:<region>:<account>:log-group:<name>` (AWS's `arn` adds `:*`).
fn group_arn(state: &AppState, group: &str) -> String {
    let p = state.control.partition();
    format!("arn:aws:logs:{}:{}:log-group:{}", p.region, p.account_id, group)
}

/// Offsets into a result list as pagination tokens (`f/<n>` forward, `b/<n>` backward); a
/// token Nimbus did not hand out is refused as AWS refuses it.
fn offset(token: Option<&str>) -> Result<Option<(char, usize)>, LogsError> {
    let Some(t) = token else { return Ok(None) };
    let parsed = t.split_once('/').and_then(|(dir, n)| Some((dir.chars().next().filter(|c| matches!(c, 'f' | 'b'))?, n.parse().ok()?)));
    parsed.map(Some).ok_or_else(|| invalid("The specified nextToken is invalid."))
}

/// A DescribeLogGroups token: the last name handed out (`g/<hex name>`).
fn name_token(name: &str) -> String {
    format!("g/{}", name.bytes().map(|b| format!("{b:02x}")).collect::<String>())
}

fn name_after(token: &str) -> Result<String, LogsError> {
    let hex = token.strip_prefix("g/").filter(|h| h.len() % 2 == 0).ok_or_else(|| invalid("The specified nextToken is invalid."))?;
    let bytes: Option<Vec<u8>> =
        (0..hex.len() / 2).map(|i| hex.get(2 * i..2 * i + 2).and_then(|b| u8::from_str_radix(b, 16).ok())).collect();
    bytes.and_then(|b| String::from_utf8(b).ok()).ok_or_else(|| invalid("The specified nextToken is invalid."))
}

/// A sequence token as AWS still hands them out (56 digits); nothing checks them any more.
fn sequence_token() -> String {
    let n = uuid::Uuid::new_v4().as_u128() % 10u128.pow(36);
    format!("4965{:016}{n:036}", nimbus_logs::now_ms().rem_euclid(10i64.pow(16)))
}

fn batch_error(e: BatchError) -> LogsError {
    match e {
        BatchError::Empty => constraint("[]", "logEvents", "have length greater than or equal to 1"),
        BatchError::TooManyEvents(_) => {
            invalid("1 validation error detected: Value at 'logEvents' failed to satisfy constraint: Member must have length less than or equal to 10000")
        }
        BatchError::TooLarge(n) => invalid(format!("Upload too large: {n} bytes exceeds limit of {}", rules::MAX_BATCH_BYTES)),
        BatchError::OutOfOrder => invalid("Log events in a single PutLogEvents request must be in chronological order."),
        BatchError::SpansTooLong => invalid("The batch of log events in a single PutLogEvents request cannot span more than 24 hours."),
    }
}

/// A FilterLogEvents token: the position of the last event handed out (`<time>/<line>/<hex
/// stream name>`).
fn position_token(p: &Position) -> String {
    let hex: String = p.stream.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{}/{}/{hex}", p.timestamp, p.line)
}

fn position(token: &str) -> Result<Position, LogsError> {
    let invalid_token = || invalid("The specified nextToken is invalid.");
    let mut parts = token.splitn(3, '/');
    let (Some(t), Some(line), Some(hex)) = (parts.next(), parts.next(), parts.next()) else { return Err(invalid_token()) };
    let bytes: Option<Vec<u8>> =
        (0..hex.len() / 2).map(|i| hex.get(2 * i..2 * i + 2).and_then(|b| u8::from_str_radix(b, 16).ok())).collect();
    let stream = bytes.filter(|_| hex.len() % 2 == 0).and_then(|b| String::from_utf8(b).ok()).ok_or_else(invalid_token)?;
    Ok(Position { timestamp: t.parse().map_err(|_| invalid_token())?, line: line.parse().map_err(|_| invalid_token())?, stream })
}

/// A number for a stream name, to make event ids unique across a group's streams.
fn stream_number(stream: &str) -> u64 {
    // FNV-1a: stable across releases and builds, unlike std's hasher.
    stream.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// `limit`, at most `max` (AWS's validation message otherwise); `max` when absent.
fn limit(limit: Option<i64>, max: i64) -> Result<usize, LogsError> {
    match limit {
        None => Ok(max as usize),
        Some(n) if n < 1 => Err(invalid(format!(
            "1 validation error detected: Value '{n}' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"
        ))),
        Some(n) if n > max => Err(invalid(format!(
            "1 validation error detected: Value '{n}' at 'limit' failed to satisfy constraint: Member must have value less than or equal to {max}"
        ))),
        Some(n) => Ok(n as usize),
    }
}

/// Runs a call against the store (blocking: call it off the async workers) and answers it.
pub fn execute(state: &AppState, store: &LogStore, req: LogsRequest) -> Response<Body> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let result = req.call.and_then(|call| run(state, store, call, &request_id));
    let response = result.unwrap_or_else(|e| {
        if e.ours {
            tracing::error!(operation = req.operation, "logs: {e}");
        }
        encode::error(&LOGS, Protocol::AwsJson1_1, &e, &request_id)
    });
    response.map(crate::response::Body::from)
}

fn reply<T: Serialize>(operation: &str, request_id: &str, output: &T) -> Response<bytes::Bytes> {
    encode::output(&LOGS, Protocol::AwsJson1_1, operation, output, request_id)
}

fn run(state: &AppState, store: &LogStore, call: LogsCall, rid: &str) -> Result<Response<bytes::Bytes>, LogsError> {
    let op = call.operation();
    Ok(match call {
        LogsCall::DescribeLogGroups(input) => {
            let limit = limit(input.limit, 50)?;
            if input.log_group_name_prefix.is_some() && input.log_group_name_pattern.is_some() {
                return Err(invalid("LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters."));
            }
            // By name; a page resumes after the last name handed out, so groups made or
            // deleted meanwhile shift nothing.
            let after = input.next_token.as_deref().map(name_after).transpose()?;
            let mut groups = store.groups(input.log_group_name_prefix.as_deref().unwrap_or(""))?;
            if let Some(pattern) = &input.log_group_name_pattern {
                groups.retain(|g| g.name.contains(pattern.as_str()));
            }
            groups.retain(|g| after.as_ref().is_none_or(|a| g.name > *a));
            let more = groups.len() > limit;
            groups.truncate(limit);
            let next_token = more.then(|| groups.last().map(|g| name_token(&g.name))).flatten();
            let log_groups = groups
                .into_iter()
                .map(|g| LogGroup {
                    arn: format!("{}:*", group_arn(state, &g.name)),
                    log_group_arn: group_arn(state, &g.name),
                    log_group_name: g.name,
                    creation_time: g.creation_time,
                    retention_in_days: g.retention_in_days,
                    metric_filter_count: g.metric_filter_count as u32,
                    stored_bytes: g.stored_bytes,
                    log_group_class: "STANDARD",
                    deletion_protection_enabled: false,
                })
                .collect();
            reply(op, rid, &DescribeLogGroupsOutput { log_groups, next_token })
        }
        LogsCall::DescribeLogStreams(input) => {
            let limit = limit(input.limit, 50)?;
            let group = input.group.name()?;
            let by_time = match input.order_by.as_deref() {
                None | Some("LogStreamName") => false,
                Some("LastEventTime") => true,
                Some(other) => return Err(constraint(other, "orderBy", "satisfy enum value set: [LogStreamName, LastEventTime]")),
            };
            if by_time && input.log_stream_name_prefix.is_some() {
                return Err(invalid("Cannot order by LastEventTime with a logStreamNamePrefix."));
            }
            let mut streams = store.streams(&group)?.ok_or_else(group_missing)?;
            if let Some(prefix) = &input.log_stream_name_prefix {
                streams.retain(|s| s.name.starts_with(prefix.as_str()));
            }
            if by_time {
                // Streams without events count as the oldest; ties by name (stable sort).
                streams.sort_by_key(|s| s.last_event.unwrap_or(0));
            }
            if input.descending == Some(true) {
                streams.reverse();
            }
            let start = offset(input.next_token.as_deref())?.map(|(_, n)| n).unwrap_or(0);
            let log_streams = streams
                .iter()
                .skip(start)
                .take(limit)
                .map(|s| LogStream {
                    log_stream_name: s.name.clone(),
                    creation_time: s.creation_time,
                    first_event_timestamp: s.first_event,
                    last_event_timestamp: s.last_event,
                    last_ingestion_time: s.last_ingestion,
                    upload_sequence_token: s.last_event.map(|_| sequence_token()),
                    arn: format!("{}:log-stream:{}", group_arn(state, &group), s.name),
                    stored_bytes: s.stored_bytes,
                })
                .collect();
            let next_token = (start + limit < streams.len()).then(|| format!("f/{}", start + limit));
            reply(op, rid, &DescribeLogStreamsOutput { log_streams, next_token })
        }
        LogsCall::GetLogEvents(input) => {
            let limit = limit(input.limit, 10_000)?;
            let group = input.group.name()?;
            if store.streams(&group)?.is_none() {
                return Err(group_missing());
            }
            let from = match offset(input.next_token.as_deref())? {
                Some(('f', n)) => Cursor::Forward(n),
                Some((_, n)) => Cursor::Backward(n),
                None if input.start_from_head == Some(true) => Cursor::Head,
                None => Cursor::Tail,
            };
            let page = store
                .stream_page(&group, &input.log_stream_name, input.start_time, input.end_time, from, limit)?
                .ok_or_else(|| LogsError::from(LogError::StreamMissing))?;
            let (lo, hi) = (page.lo, page.hi);
            let events = page
                .events
                .into_iter()
                .map(|e| OutputLogEvent { timestamp: e.timestamp, message: e.message, ingestion_time: e.ingestion_time })
                .collect();
            reply(op, rid, &GetLogEventsOutput { events, next_forward_token: format!("f/{hi}"), next_backward_token: format!("b/{lo}") })
        }
        LogsCall::FilterLogEvents(input) => {
            let limit = limit(input.limit, 10_000)?;
            let group = input.group.name()?;
            let pattern = input.filter_pattern.as_deref().unwrap_or("");
            if pattern.len() > 1024 {
                return Err(constraint(pattern, "filterPattern", "have length less than or equal to 1024"));
            }
            let pattern = filter_pattern(pattern)?;
            let after = input.next_token.as_deref().map(position).transpose()?;
            let page = store
                .filter_page(
                    &group,
                    input.log_stream_names.as_deref(),
                    input.log_stream_name_prefix.as_deref(),
                    input.start_time,
                    input.end_time,
                    &pattern,
                    after.as_ref(),
                    limit,
                )?
                .ok_or_else(group_missing)?;
            // The next page resumes after the last event of this one.
            let next_token = page.next.and(page.events.last()).map(|(p, _)| position_token(p));
            let events = page
                .events
                .into_iter()
                .map(|(at, e)| FilteredLogEvent {
                    event_id: format!("{:020}{:016}{:020}", e.timestamp, at.line, stream_number(&at.stream)),
                    log_stream_name: at.stream,
                    timestamp: e.timestamp,
                    message: e.message,
                    ingestion_time: e.ingestion_time,
                })
                .collect();
            reply(op, rid, &FilterLogEventsOutput { events, searched_log_streams: Vec::new(), next_token })
        }
        LogsCall::CreateLogGroup(input) => {
            check_group(&input.log_group_name)?;
            store.create_group(&input.log_group_name, input.tags.unwrap_or_default())?;
            reply(op, rid, &Empty {})
        }
        LogsCall::DeleteLogGroup(input) => {
            check_group(&input.log_group_name)?;
            store.delete_group(&input.log_group_name)?;
            reply(op, rid, &Empty {})
        }
        LogsCall::CreateLogStream(input) => {
            check_group(&input.log_group_name)?;
            check_stream(&input.log_stream_name)?;
            store.create_stream(&input.log_group_name, &input.log_stream_name)?;
            reply(op, rid, &Empty {})
        }
        LogsCall::DeleteLogStream(input) => {
            check_group(&input.log_group_name)?;
            check_stream(&input.log_stream_name)?;
            store.delete_stream(&input.log_group_name, &input.log_stream_name)?;
            reply(op, rid, &Empty {})
        }
        LogsCall::PutLogEvents(input) => {
            check_group(&input.log_group_name)?;
            check_stream(&input.log_stream_name)?;
            let group = store.group(&input.log_group_name)?.ok_or_else(group_missing)?;
            let sizes: Vec<(i64, usize)> = input.log_events.iter().map(|e| (e.timestamp, e.message.len())).collect();
            if let Some(i) = input.log_events.iter().position(|e| e.message.is_empty()) {
                return Err(constraint("", &format!("logEvents.{}.member.message", i + 1), "have length greater than or equal to 1"));
            }
            let rejected = rules::check_batch(&sizes, nimbus_logs::now_ms(), group.retention_in_days).map_err(batch_error)?;
            let accepted = rejected.accepted(input.log_events.len());
            let events = input.log_events.into_iter().skip(accepted.start).take(accepted.len()).map(|e| (e.timestamp, e.message)).collect();
            store.put(&input.log_group_name, &input.log_stream_name, events)?;
            let rejected_log_events_info = (!rejected.is_empty()).then_some(RejectedLogEventsInfo {
                too_new_log_event_start_index: rejected.too_new_start,
                too_old_log_event_end_index: rejected.too_old_end,
                expired_log_event_end_index: rejected.expired_end,
            });
            reply(op, rid, &PutLogEventsOutput { next_sequence_token: sequence_token(), rejected_log_events_info })
        }
        LogsCall::PutRetentionPolicy(input) => {
            check_group(&input.log_group_name)?;
            let days = u32::try_from(input.retention_in_days).ok().filter(|d| rules::RETENTION_DAYS.contains(d)).ok_or_else(|| {
                let allowed: Vec<String> = rules::RETENTION_DAYS.iter().map(u32::to_string).collect();
                constraint(
                    &input.retention_in_days.to_string(),
                    "retentionInDays",
                    &format!("satisfy enum value set: [{}]", allowed.join(", ")),
                )
            })?;
            store.set_retention(&input.log_group_name, Some(days))?;
            reply(op, rid, &Empty {})
        }
        LogsCall::DeleteRetentionPolicy(input) => {
            check_group(&input.log_group_name)?;
            store.set_retention(&input.log_group_name, None)?;
            reply(op, rid, &Empty {})
        }
        LogsCall::TagLogGroup(input) => {
            check_group(&input.log_group_name)?;
            store.tag(&input.log_group_name, input.tags)?;
            reply(op, rid, &Empty {})
        }
        LogsCall::UntagLogGroup(input) => {
            check_group(&input.log_group_name)?;
            store.untag(&input.log_group_name, input.tags)?;
            reply(op, rid, &Empty {})
        }
        LogsCall::ListTagsLogGroup(input) => {
            check_group(&input.log_group_name)?;
            let tags = store.tags(&input.log_group_name)?.ok_or_else(group_missing)?;
            reply(op, rid, &TagsOutput { tags })
        }
        LogsCall::TagResource(input) => {
            store.tag(resource_group(&input.resource_arn)?, input.tags)?;
            reply(op, rid, &Empty {})
        }
        LogsCall::UntagResource(input) => {
            store.untag(resource_group(&input.resource_arn)?, input.tag_keys)?;
            reply(op, rid, &Empty {})
        }
        LogsCall::ListTagsForResource(input) => {
            let tags = store.tags(resource_group(&input.resource_arn)?)?.ok_or_else(group_missing)?;
            reply(op, rid, &TagsOutput { tags })
        }
        LogsCall::PutSubscriptionFilter(input) => {
            check_group(&input.log_group_name)?;
            check_filter(&input.filter_name, &input.filter_pattern, input.distribution.as_deref())?;
            filter_pattern(&input.filter_pattern)?;
            // AWS refuses another account's function before it looks for the group.
            check_destination(state, None, &input.destination_arn, input.role_arn.as_deref())?;
            let filters = store.subscription_filters(&input.log_group_name)?.ok_or_else(group_missing)?;
            if filters.len() >= nimbus_logs::subscription::MAX_FILTERS && !filters.iter().any(|f| f.filter_name == input.filter_name) {
                return Err(LogError::LimitExceeded.into());
            }
            check_destination(state, Some(&input.log_group_name), &input.destination_arn, input.role_arn.as_deref())?;
            let filter = SubscriptionFilter {
                filter_name: input.filter_name,
                filter_pattern: input.filter_pattern,
                destination_arn: input.destination_arn,
                role_arn: input.role_arn,
                distribution: input.distribution.unwrap_or_else(|| "ByLogStream".into()),
                creation_time: nimbus_logs::now_ms(),
            };
            store.put_subscription_filter(&input.log_group_name, filter)?;
            reply(op, rid, &Empty {})
        }
        LogsCall::DescribeSubscriptionFilters(input) => {
            check_group(&input.log_group_name)?;
            let limit = limit(input.limit, 50)?;
            let after = input.next_token.as_deref().map(name_after).transpose()?;
            let mut filters = store.subscription_filters(&input.log_group_name)?.ok_or_else(group_missing)?;
            filters.retain(|f| {
                input.filter_name_prefix.as_deref().is_none_or(|p| f.filter_name.starts_with(p))
                    && after.as_ref().is_none_or(|a| f.filter_name > *a)
            });
            let more = filters.len() > limit;
            filters.truncate(limit);
            let next_token = more.then(|| filters.last().map(|f| name_token(&f.filter_name))).flatten();
            let subscription_filters = filters
                .into_iter()
                .map(|f| SubscriptionFilterOutput {
                    filter_name: f.filter_name,
                    log_group_name: input.log_group_name.clone(),
                    filter_pattern: f.filter_pattern,
                    destination_arn: f.destination_arn,
                    role_arn: f.role_arn,
                    distribution: f.distribution,
                    apply_on_transformed_logs: false,
                    creation_time: f.creation_time,
                })
                .collect();
            reply(op, rid, &DescribeSubscriptionFiltersOutput { subscription_filters, next_token })
        }
        LogsCall::DeleteSubscriptionFilter(input) => {
            check_group(&input.log_group_name)?;
            store.delete_subscription_filter(&input.log_group_name, &input.filter_name)?;
            reply(op, rid, &Empty {})
        }
        LogsCall::PutMetricFilter(input) => {
            check_group(&input.log_group_name)?;
            check_filter(&input.filter_name, &input.filter_pattern, None)?;
            let pattern = filter_pattern(&input.filter_pattern)?;
            let transformation = metric_transformation(input.metric_transformations, &pattern)?;
            let filter = MetricFilter {
                filter_name: input.filter_name,
                filter_pattern: input.filter_pattern,
                metric_transformations: vec![transformation],
                creation_time: nimbus_logs::now_ms(),
            };
            store.put_metric_filter(&input.log_group_name, filter)?;
            reply(op, rid, &Empty {})
        }
        LogsCall::DescribeMetricFilters(input) => {
            if let Some(g) = &input.log_group_name {
                check_group(g)?;
            }
            if let Some(p) = input.filter_name_prefix.as_deref().filter(|p| p.len() > 512) {
                return Err(constraint(p, "filterNamePrefix", "have length less than or equal to 512"));
            }
            if let Some(n) = &input.metric_name {
                check_metric_name(n, "metricName")?;
            }
            if let Some(n) = &input.metric_namespace {
                check_metric_name(n, "metricNamespace")?;
            }
            let limit = limit(input.limit, 50)?;
            let after = input.next_token.as_deref().map(name_after).transpose()?;
            let mut filters = store.metric_filters(input.log_group_name.as_deref())?.ok_or_else(group_missing)?;
            filters.retain(|(group, f)| {
                let t = &f.metric_transformations;
                input.filter_name_prefix.as_deref().is_none_or(|p| f.filter_name.starts_with(p))
                    && input.metric_name.as_deref().is_none_or(|n| t.iter().any(|t| t.metric_name == n))
                    && input.metric_namespace.as_deref().is_none_or(|n| t.iter().any(|t| t.metric_namespace == n))
                    && after.as_ref().is_none_or(|a| format!("{}\u{0}{group}", f.filter_name) > *a)
            });
            let more = filters.len() > limit;
            filters.truncate(limit);
            let next_token = more.then(|| filters.last().map(|(g, f)| metric_filter_token(&f.filter_name, g))).flatten();
            let metric_filters = filters
                .into_iter()
                .map(|(group, f)| MetricFilterOutput {
                    filter_name: f.filter_name,
                    filter_pattern: f.filter_pattern,
                    metric_transformations: f.metric_transformations,
                    creation_time: f.creation_time,
                    log_group_name: group,
                    apply_on_transformed_logs: false,
                })
                .collect();
            reply(op, rid, &DescribeMetricFiltersOutput { metric_filters, next_token })
        }
        LogsCall::DeleteMetricFilter(input) => {
            check_group(&input.log_group_name)?;
            check_filter(&input.filter_name, "", None)?;
            store.delete_metric_filter(&input.log_group_name, &input.filter_name)?;
            reply(op, rid, &Empty {})
        }
        LogsCall::TestMetricFilter(input) => {
            if input.filter_pattern.len() > 1024 {
                return Err(constraint(&input.filter_pattern, "filterPattern", "have length less than or equal to 1024"));
            }
            if input.log_event_messages.is_empty() {
                return Err(constraint("[]", "logEventMessages", "have length greater than or equal to 1"));
            }
            if input.log_event_messages.len() > 50 {
                return Err(invalid(
                    "1 validation error detected: Value at 'logEventMessages' failed to satisfy constraint: Member must have length less than or equal to 50",
                ));
            }
            let pattern = filter_pattern(&input.filter_pattern)?;
            let matches = input
                .log_event_messages
                .into_iter()
                .enumerate()
                .filter_map(|(i, message)| {
                    let extracted_values = pattern.evaluate(&message)?.extracted();
                    Some(MetricFilterMatchRecord { event_number: i as i64 + 1, event_message: message, extracted_values })
                })
                .collect();
            reply(op, rid, &TestMetricFilterOutput { matches })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_arns() {
        let cases = [
            ("arn:aws:logs:us-east-1:123456789012:log-group:/app/x", Some("/app/x")),
            ("arn:aws:logs:us-east-1:123456789012:log-group:/app/x:*", Some("/app/x")),
            ("arn:aws:logs:us-east-1:123456789012:log-group:/app/x:log-stream:s", None),
            ("arn:aws:logs:us-east-1:123456789012:log-group:", None),
            ("arn:aws:logs:us-east-1:123456789012:destination:d", None),
            ("arn:aws:lambda:us-east-1:123456789012:function:f", None),
            ("/app/x", None),
        ];
        for (arn, want) in cases {
            assert_eq!(group_of_arn(arn), want, "{arn}");
        }
    }

    #[test]
    fn group_tokens_round_trip() {
        for name in ["/aws/lambda/f", "a", "#x.y-z_1"] {
            assert_eq!(name_after(&name_token(name)).unwrap(), name);
        }
        for bad in ["", "g/", "g/0", "g/zz", "f/3", "bogus"] {
            assert!(bad == "g/" || name_after(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn error_wording() {
        let msg = |e: LogsError| (e.code, e.message);
        let inv = |m: &str| ("InvalidParameterException", m.to_string());
        let cases: Vec<(LogsError, (&str, String))> = vec![
            (check_group("").unwrap_err(), inv("1 validation error detected: Value '' at 'logGroupName' failed to satisfy constraint: Member must have length greater than or equal to 1")),
            (check_group(&"a".repeat(513)).unwrap_err(), inv("Invalid LogGroup or LogStream, both must have length less than or equal to 512.")),
            (check_stream(&"a".repeat(513)).unwrap_err(), inv("Invalid LogGroup or LogStream, both must have length less than or equal to 512.")),
            (check_group("a b").unwrap_err(), inv(r"1 validation error detected: Value 'a b' at 'logGroupName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\.\-_/#A-Za-z0-9]+")),
            (check_stream("a*").unwrap_err(), inv("1 validation error detected: Value 'a*' at 'logStreamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [^:*]*")),
            (check_filter("", "", None).unwrap_err(), inv("1 validation error detected: Value '' at 'filterName' failed to satisfy constraint: Member must have length greater than or equal to 1")),
            (check_filter("a:b", "", None).unwrap_err(), inv("1 validation error detected: Value 'a:b' at 'filterName' failed to satisfy constraint: Member must satisfy regular expression pattern: [^:*]*")),
            (check_filter("f", "", Some("Sideways")).unwrap_err(), inv("1 validation error detected: Value 'Sideways' at 'distribution' failed to satisfy constraint: Member must satisfy enum value set: [Random, ByLogStream]")),
            (batch_error(BatchError::OutOfOrder), inv("Log events in a single PutLogEvents request must be in chronological order.")),
            (batch_error(BatchError::SpansTooLong), inv("The batch of log events in a single PutLogEvents request cannot span more than 24 hours.")),
            (batch_error(BatchError::TooLarge(1_048_577)), inv("Upload too large: 1048577 bytes exceeds limit of 1048576")),
            (LogError::GroupExists.into(), ("ResourceAlreadyExistsException", "The specified log group already exists".into())),
            (LogError::StreamExists.into(), ("ResourceAlreadyExistsException", "The specified log stream already exists".into())),
            (LogError::GroupMissing.into(), ("ResourceNotFoundException", "The specified log group does not exist.".into())),
            (LogError::StreamMissing.into(), ("ResourceNotFoundException", "The specified log stream does not exist.".into())),
            (LogError::FilterMissing.into(), ("ResourceNotFoundException", "The specified subscription filter does not exist.".into())),
            (LogError::LimitExceeded.into(), ("LimitExceededException", "Resource limit exceeded.".into())),
        ];
        for (got, want) in cases {
            assert_eq!(got.status(), 400, "{got}");
            assert_eq!(msg(got), want);
        }
        let ours = LogsError::from(LogError::Io("disk full".into()));
        assert_eq!((ours.code(), ours.status()), ("ServiceUnavailableException", 500));
        assert_eq!(sequence_token().len(), 56);
        assert!(sequence_token().bytes().all(|b| b.is_ascii_digit()));
    }
}

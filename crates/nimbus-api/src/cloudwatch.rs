//! CloudWatch metrics on the wire, in the three protocols the SDKs speak: Smithy RPC v2
//! CBOR (`POST /service/GraniteServiceVersion20100801/operation/<Op>`, botocore's default),
//! JSON 1.0 (`X-Amz-Target: GraniteServiceVersion20100801.<Op>`) and the query protocol
//! (`Action=<Op>&Version=2010-08-01`, older CLIs), decoded against CloudWatch's model into
//! typed calls on the account's [`MetricStore`] and answered in the caller's protocol, with
//! query-compatible error codes.

use std::collections::BTreeMap;

use http::Response;
use nimbus_metrics::alarms::{self, Alarm};
use nimbus_metrics::cloudwatch::{Aggregate, Datum, HistoryItem, MetricStore, SeriesKey};
use nimbus_metrics::math;
use nimbus_protocol::{calls, decode, encode, AwsError, DecodeError, Protocol, CLOUDWATCH};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::action::RawRequest;
use crate::authz::{Scope, Target};
use crate::response::Body;

/// The JSON protocol's `X-Amz-Target` prefix, and the RPC v2 service name.
pub const TARGET_PREFIX: &str = "GraniteServiceVersion20100801.";
const RPC_SERVICE: &str = "GraniteServiceVersion20100801";
const VERSION: &str = "2010-08-01";
/// ListMetrics' page.
const LIST_PAGE: usize = 500;
/// GetMetricData's datapoints per call (AWS: 100,800).
const MAX_DATAPOINTS: usize = 100_800;

#[derive(Debug)]
pub struct CloudWatchRequest {
    pub operation: &'static str,
    pub protocol: Protocol,
    pub call: Result<CloudWatchCall, CwError>,
}

calls! {
    iam "cloudwatch";
    /// Every CloudWatch operation Nimbus serves, with its typed input.
    pub enum CloudWatchCall {
        PutMetricData(PutMetricDataInput),
        GetMetricStatistics(GetMetricStatisticsInput),
        GetMetricData(GetMetricDataInput),
        ListMetrics(ListMetricsInput),
        PutMetricAlarm(PutMetricAlarmInput),
        DescribeAlarms(DescribeAlarmsInput),
        DeleteAlarms(AlarmNamesInput),
        SetAlarmState(SetAlarmStateInput),
        EnableAlarmActions(AlarmNamesInput),
        DisableAlarmActions(AlarmNamesInput),
        DescribeAlarmHistory(DescribeAlarmHistoryInput),
        PutCompositeAlarm(PutCompositeAlarmInput),
    }
}

/// CloudWatch's errors: the JSON/CBOR name, the query code, the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CwError {
    InvalidParameterValue(String),
    InvalidParameterCombination(String),
    MissingParameter(String),
    InvalidNextToken(String),
    InvalidAction(String),
    Validation(String),
    ResourceNotFound(String),
    Internal(String),
}

impl std::fmt::Display for CwError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CwError::InvalidParameterValue(m)
            | CwError::InvalidParameterCombination(m)
            | CwError::MissingParameter(m)
            | CwError::InvalidNextToken(m)
            | CwError::InvalidAction(m)
            | CwError::Validation(m)
            | CwError::ResourceNotFound(m)
            | CwError::Internal(m) => f.write_str(m),
        }
    }
}

impl AwsError for CwError {
    fn code(&self) -> &str {
        match self {
            CwError::InvalidParameterValue(_) => "InvalidParameterValueException",
            CwError::InvalidParameterCombination(_) => "InvalidParameterCombinationException",
            CwError::MissingParameter(_) => "MissingRequiredParameterException",
            CwError::InvalidNextToken(_) => "InvalidNextToken",
            CwError::InvalidAction(_) => "InvalidAction",
            CwError::Validation(_) => "ValidationException",
            CwError::ResourceNotFound(_) => "ResourceNotFound",
            CwError::Internal(_) => "InternalServiceFault",
        }
    }

    fn query_code(&self) -> &str {
        match self {
            CwError::InvalidParameterValue(_) => "InvalidParameterValue",
            CwError::InvalidParameterCombination(_) => "InvalidParameterCombination",
            CwError::MissingParameter(_) => "MissingParameter",
            CwError::InvalidNextToken(_) => "InvalidNextToken",
            CwError::InvalidAction(_) => "InvalidAction",
            CwError::Validation(_) => "ValidationError",
            CwError::ResourceNotFound(_) => "ResourceNotFound",
            CwError::Internal(_) => "InternalServiceError",
        }
    }

    fn status(&self) -> u16 {
        match self {
            CwError::Internal(_) => 500,
            CwError::ResourceNotFound(_) => 404,
            _ => 400,
        }
    }
}

fn decode_error(e: DecodeError) -> CwError {
    match e {
        DecodeError::Missing { member } => CwError::MissingParameter(format!("The parameter {member} is required.")),
        DecodeError::Type { member, value, .. } | DecodeError::Binding { member, value, .. } => {
            CwError::InvalidParameterValue(format!("The value {value} for parameter {member} is invalid."))
        }
        DecodeError::Malformed(m) | DecodeError::Shape(m) => CwError::InvalidParameterValue(m),
    }
}

fn unknown(operation: &str) -> CloudWatchRequest {
    CloudWatchRequest {
        operation: "Unknown",
        protocol: Protocol::AwsQuery,
        call: Err(CwError::InvalidAction(format!("Could not find operation {operation} for version {VERSION}"))),
    }
}

/// A CloudWatch request in the RPC v2 CBOR or the query protocol (the JSON protocol is
/// placed by its target, in [`parse_json`]).
pub fn recognize(req: &RawRequest<'_>) -> Option<CloudWatchRequest> {
    if let Some((service, operation)) = nimbus_protocol::cbor::route(req.path) {
        if service != RPC_SERVICE {
            return None;
        }
        let Some((op, call)) = decoded(operation, |op| decode::cbor(CLOUDWATCH.model(), op, &req.body)) else {
            return Some(CloudWatchRequest { protocol: Protocol::RpcV2Cbor, ..unknown(operation) });
        };
        return Some(CloudWatchRequest { operation: op, protocol: Protocol::RpcV2Cbor, call });
    }
    let (params, action) = crate::action::query_request(req, VERSION)?;
    match decoded(&action, |op| decode::query(CLOUDWATCH.model(), op, &params)) {
        Some((operation, call)) => Some(CloudWatchRequest { operation, protocol: Protocol::AwsQuery, call }),
        None => Some(unknown(&action)),
    }
}

/// A JSON 1.0 request (`X-Amz-Target: GraniteServiceVersion20100801.<operation>`).
pub fn parse_json(operation: &str, body: &[u8]) -> CloudWatchRequest {
    match decoded(operation, |op| decode::json(CLOUDWATCH.model(), op, body)) {
        Some((op, call)) => CloudWatchRequest { operation: op, protocol: Protocol::AwsJson1_0, call },
        None => CloudWatchRequest { protocol: Protocol::AwsJson1_0, ..unknown(operation) },
    }
}

fn decoded(
    operation: &str,
    decode: impl FnOnce(&str) -> Result<nimbus_protocol::Input, DecodeError>,
) -> Option<(&'static str, Result<CloudWatchCall, CwError>)> {
    let op = CloudWatchCall::iam_action(operation).map(|a| a.trim_start_matches("cloudwatch:"))?;
    let call = decode(op).and_then(|input| CloudWatchCall::decode(op, input).expect("listed operations are served")).map_err(decode_error);
    Some((op, call))
}

impl CloudWatchRequest {
    /// The IAM action name (`cloudwatch:PutMetricData`).
    pub fn name(&self) -> &'static str {
        CloudWatchCall::iam_action(self.operation).unwrap_or("cloudwatch:Unknown")
    }

    /// What IAM authorizes this call as: CloudWatch's metric calls have no resource-level
    /// permissions (`*`); `cloudwatch:namespace` is their condition key.
    pub(crate) fn target(&self, _scope: &Scope<'_>) -> Option<Target> {
        let call = self.call.as_ref().ok()?;
        let target = Target::any(CloudWatchCall::iam_action(call.operation())?);
        Some(match call {
            CloudWatchCall::PutMetricData(i) => target.with_values("cloudwatch:namespace", vec![i.namespace.clone()]),
            _ => target,
        })
    }
}

// ---- typed inputs --------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DimensionInput {
    name: String,
    value: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StatisticSetInput {
    sample_count: f64,
    sum: f64,
    minimum: f64,
    maximum: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricDatumInput {
    metric_name: String,
    dimensions: Option<Vec<DimensionInput>>,
    timestamp: Option<Value>,
    value: Option<f64>,
    statistic_values: Option<StatisticSetInput>,
    values: Option<Vec<f64>>,
    counts: Option<Vec<f64>>,
    unit: Option<String>,
    storage_resolution: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutMetricDataInput {
    namespace: String,
    metric_data: Option<Vec<MetricDatumInput>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetMetricStatisticsInput {
    namespace: String,
    metric_name: String,
    dimensions: Option<Vec<DimensionInput>>,
    start_time: Value,
    end_time: Value,
    period: i64,
    statistics: Option<Vec<String>>,
    extended_statistics: Option<Vec<String>>,
    unit: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricInput {
    namespace: Option<String>,
    metric_name: Option<String>,
    dimensions: Option<Vec<DimensionInput>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricStatInput {
    metric: MetricInput,
    period: i64,
    stat: String,
    unit: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricDataQueryInput {
    id: String,
    metric_stat: Option<MetricStatInput>,
    expression: Option<String>,
    label: Option<String>,
    return_data: Option<bool>,
    period: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetMetricDataInput {
    metric_data_queries: Vec<MetricDataQueryInput>,
    start_time: Value,
    end_time: Value,
    scan_by: Option<String>,
    max_datapoints: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DimensionFilterInput {
    name: String,
    value: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListMetricsInput {
    namespace: Option<String>,
    metric_name: Option<String>,
    dimensions: Option<Vec<DimensionFilterInput>>,
    next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutMetricAlarmInput {
    alarm_name: String,
    alarm_description: Option<String>,
    actions_enabled: Option<bool>,
    #[serde(rename = "OKActions")]
    ok_actions: Option<Vec<String>>,
    alarm_actions: Option<Vec<String>>,
    insufficient_data_actions: Option<Vec<String>>,
    metric_name: Option<String>,
    namespace: Option<String>,
    statistic: Option<String>,
    extended_statistic: Option<String>,
    dimensions: Option<Vec<DimensionInput>>,
    period: Option<i64>,
    unit: Option<String>,
    evaluation_periods: i64,
    datapoints_to_alarm: Option<i64>,
    threshold: Option<f64>,
    comparison_operator: String,
    treat_missing_data: Option<String>,
    metrics: Option<Vec<Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeAlarmsInput {
    alarm_names: Option<Vec<String>>,
    alarm_types: Option<Vec<String>>,
    alarm_name_prefix: Option<String>,
    state_value: Option<String>,
    action_prefix: Option<String>,
    max_records: Option<i64>,
    next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutCompositeAlarmInput {
    alarm_name: String,
    alarm_rule: String,
    alarm_description: Option<String>,
    actions_enabled: Option<bool>,
    #[serde(rename = "OKActions")]
    ok_actions: Option<Vec<String>>,
    alarm_actions: Option<Vec<String>>,
    insufficient_data_actions: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct CompositeAlarmOut {
    actions_enabled: bool,
    alarm_actions: Vec<String>,
    alarm_arn: String,
    alarm_configuration_updated_timestamp: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    alarm_description: Option<String>,
    alarm_name: String,
    alarm_rule: String,
    insufficient_data_actions: Vec<String>,
    #[serde(rename = "OKActions")]
    ok_actions: Vec<String>,
    state_reason: String,
    state_updated_timestamp: f64,
    state_value: String,
    state_transitioned_timestamp: f64,
}

impl CompositeAlarmOut {
    fn from(a: &Alarm) -> CompositeAlarmOut {
        let secs = |ms: i64| ms as f64 / 1000.0;
        CompositeAlarmOut {
            actions_enabled: a.actions_enabled,
            alarm_actions: a.alarm_actions.clone(),
            alarm_arn: a.arn.clone(),
            alarm_configuration_updated_timestamp: secs(a.configuration_updated_ms),
            alarm_description: a.description.clone(),
            alarm_name: a.name.clone(),
            alarm_rule: a.rule.clone().unwrap_or_default(),
            insufficient_data_actions: a.insufficient_data_actions.clone(),
            ok_actions: a.ok_actions.clone(),
            state_reason: a.state_reason.clone(),
            state_updated_timestamp: secs(a.state_updated_ms),
            state_value: a.state.clone(),
            state_transitioned_timestamp: secs(a.state_transitioned_ms),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeAlarmHistoryInput {
    alarm_name: Option<String>,
    alarm_types: Option<Vec<String>>,
    history_item_type: Option<String>,
    start_date: Option<Value>,
    end_date: Option<Value>,
    max_records: Option<i64>,
    next_token: Option<String>,
    scan_by: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct AlarmHistoryItemOut {
    alarm_name: String,
    alarm_type: &'static str,
    timestamp: f64,
    history_item_type: String,
    history_summary: String,
    history_data: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeAlarmHistoryOutput {
    alarm_history_items: Vec<AlarmHistoryItemOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AlarmNamesInput {
    alarm_names: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SetAlarmStateInput {
    alarm_name: String,
    state_value: String,
    state_reason: String,
}

// ---- outputs -------------------------------------------------------------------------

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct MetricAlarmOut {
    alarm_name: String,
    alarm_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    alarm_description: Option<String>,
    alarm_configuration_updated_timestamp: f64,
    actions_enabled: bool,
    #[serde(rename = "OKActions")]
    ok_actions: Vec<String>,
    alarm_actions: Vec<String>,
    insufficient_data_actions: Vec<String>,
    state_value: String,
    state_reason: String,
    state_updated_timestamp: f64,
    state_transitioned_timestamp: f64,
    metric_name: String,
    namespace: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    statistic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    extended_statistic: Option<String>,
    dimensions: Vec<DimensionOut>,
    period: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    unit: Option<String>,
    evaluation_periods: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    datapoints_to_alarm: Option<i64>,
    threshold: f64,
    comparison_operator: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    treat_missing_data: Option<String>,
}

impl MetricAlarmOut {
    fn from(a: &Alarm) -> MetricAlarmOut {
        let secs = |ms: i64| ms as f64 / 1000.0;
        MetricAlarmOut {
            alarm_name: a.name.clone(),
            alarm_arn: a.arn.clone(),
            alarm_description: a.description.clone(),
            alarm_configuration_updated_timestamp: secs(a.configuration_updated_ms),
            actions_enabled: a.actions_enabled,
            ok_actions: a.ok_actions.clone(),
            alarm_actions: a.alarm_actions.clone(),
            insufficient_data_actions: a.insufficient_data_actions.clone(),
            state_value: a.state.clone(),
            state_reason: a.state_reason.clone(),
            state_updated_timestamp: secs(a.state_updated_ms),
            state_transitioned_timestamp: secs(a.state_transitioned_ms),
            metric_name: a.metric_name.clone(),
            namespace: a.namespace.clone(),
            statistic: a.statistic.clone(),
            extended_statistic: a.extended_statistic.clone(),
            dimensions: a.dimensions.iter().map(|(n, v)| DimensionOut { name: n.clone(), value: v.clone() }).collect(),
            period: a.period,
            unit: a.unit.clone(),
            evaluation_periods: a.evaluation_periods,
            datapoints_to_alarm: a.datapoints_to_alarm,
            threshold: a.threshold,
            comparison_operator: a.comparison.clone(),
            treat_missing_data: a.treat_missing_data.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeAlarmsOutput {
    metric_alarms: Vec<MetricAlarmOut>,
    composite_alarms: Vec<CompositeAlarmOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct DimensionOut {
    name: String,
    value: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct DatapointOut {
    timestamp: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    sample_count: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    average: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sum: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    minimum: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    maximum: Option<f64>,
    unit: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    extended_statistics: Option<BTreeMap<String, f64>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct GetMetricStatisticsOutput {
    label: String,
    datapoints: Vec<DatapointOut>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct MetricDataResultOut {
    id: String,
    label: String,
    timestamps: Vec<f64>,
    values: Vec<f64>,
    status_code: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct GetMetricDataOutput {
    metric_data_results: Vec<MetricDataResultOut>,
    messages: Vec<Value>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct MetricOut {
    namespace: String,
    metric_name: String,
    dimensions: Vec<DimensionOut>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListMetricsOutput {
    metrics: Vec<MetricOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

// ---- running calls -------------------------------------------------------------------

/// A timestamp as the protocols decode it: epoch seconds (JSON, CBOR) or ISO 8601 text
/// (query).
fn millis(v: &Value, member: &str) -> Result<i64, CwError> {
    match v {
        Value::Number(n) => n.as_f64().map(|s| (s * 1000.0) as i64),
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp_millis())
            .ok()
            .or_else(|| s.parse::<f64>().ok().map(|secs| (secs * 1000.0) as i64)),
        _ => None,
    }
    .ok_or_else(|| CwError::InvalidParameterValue(format!("The value {v} for parameter {member} is invalid.")))
}

fn dims(d: Option<Vec<DimensionInput>>) -> Vec<(String, String)> {
    d.unwrap_or_default().into_iter().map(|d| (d.name, d.value)).collect()
}

fn datum(namespace: &str, i: usize, d: MetricDatumInput, now_ms: i64) -> Result<Datum, CwError> {
    let at = format!("MetricData.member.{i}");
    let both = |a: &str, b: &str| {
        CwError::InvalidParameterCombination(format!(
            "The parameters {at}.{a} and {at}.{b} are mutually exclusive and you have specified both."
        ))
    };
    if d.value.is_some() && d.values.is_some() {
        return Err(both("Value", "Values"));
    }
    if d.value.is_some() && d.statistic_values.is_some() {
        return Err(both("Value", "StatisticValues"));
    }
    if d.values.is_some() && d.statistic_values.is_some() {
        return Err(both("Values", "StatisticValues"));
    }
    if d.dimensions.as_ref().is_some_and(|ds| ds.len() > MAX_DIMENSIONS) {
        return Err(CwError::InvalidParameterValue(format!(
            "The collection {at}.Dimensions must not have a size greater than {MAX_DIMENSIONS}."
        )));
    }
    for (member, n) in [("Values", d.values.as_ref().map(Vec::len)), ("Counts", d.counts.as_ref().map(Vec::len))] {
        if n.is_some_and(|n| n > MAX_VALUES) {
            return Err(CwError::InvalidParameterValue(format!(
                "The collection {at}.{member} must not have a size greater than {MAX_VALUES}."
            )));
        }
    }
    // CloudWatch takes numbers between 8.515920e-109 and 1.174271e+108 in magnitude (or 0).
    let in_range = |v: f64| v.is_finite() && (v == 0.0 || (8.515920e-109..=1.174271e+108).contains(&v.abs()));
    let numbers = d.value.iter().map(|v| ("Value", *v)).chain(d.values.iter().flatten().map(|v| ("Values", *v))).chain(
        d.statistic_values
            .iter()
            .flat_map(|s| [("StatisticValues.Sum", s.sum), ("StatisticValues.Minimum", s.minimum), ("StatisticValues.Maximum", s.maximum)]),
    );
    for (member, v) in numbers {
        if !in_range(v) {
            return Err(CwError::InvalidParameterValue(format!("The value {v:e} for parameter {at}.{member} is invalid.")));
        }
    }
    if let Some(unit) = &d.unit {
        enum_value(unit, &format!("metricData.{i}.member.unit"), &UNITS)?;
    }
    let timestamp_ms = match &d.timestamp {
        Some(t) => millis(t, &format!("{at}.Timestamp"))?,
        None => now_ms,
    };
    if timestamp_ms > now_ms + 2 * 3600 * 1000 {
        return Err(CwError::InvalidParameterValue(format!(
            "The parameter {at}.Timestamp must specify a time no more than two hours in the future."
        )));
    }
    if timestamp_ms < now_ms - nimbus_metrics::cloudwatch::RETENTION_DAYS * 24 * 3600 * 1000 {
        return Err(CwError::InvalidParameterValue(format!("The parameter {at}.Timestamp must specify a time within the past two weeks.")));
    }
    let values = match (d.value, d.statistic_values, d.values) {
        (Some(v), _, _) => Aggregate::of(v, 1.0),
        (_, Some(s), _) => Aggregate::of_set(s.sample_count, s.sum, s.minimum, s.maximum),
        (_, _, Some(values)) => {
            let counts = d.counts.unwrap_or_else(|| vec![1.0; values.len()]);
            if counts.len() != values.len() {
                return Err(CwError::InvalidParameterValue(format!(
                    "The parameters {at}.Values and {at}.Counts must be of the same size."
                )));
            }
            let mut a = Aggregate::default();
            for (v, c) in values.iter().zip(counts) {
                a.merge(&Aggregate::of(*v, c));
            }
            a
        }
        (None, None, None) => {
            return Err(CwError::InvalidParameterCombination(format!(
                "The parameters {at}.Value, {at}.StatisticValues and {at}.Values are mutually exclusive and you have specified none."
            )))
        }
    };
    let unit = d.unit.unwrap_or_else(|| "None".to_string());
    let high_resolution = match d.storage_resolution {
        None | Some(60) => false,
        Some(1) => true,
        Some(other) => {
            return Err(CwError::InvalidParameterValue(format!("The value {other} for parameter {at}.StorageResolution is invalid.")))
        }
    };
    Ok(Datum { key: SeriesKey::new(namespace, &d.metric_name, dims(d.dimensions)), unit, timestamp_ms, values, high_resolution })
}

/// Where a page starts: the `NextToken` a previous page returned (an index into the list).
fn page_start(token: Option<&str>, len: usize) -> Result<usize, CwError> {
    match token {
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= len)
            .ok_or_else(|| CwError::InvalidNextToken("The service cannot find the next token.".into())),
        None => Ok(0),
    }
}

fn check_period(period: i64, member: &str) -> Result<(), CwError> {
    if period <= 0 || (period >= 60 && period % 60 != 0) || (period < 60 && ![1, 5, 10, 20, 30].contains(&period)) {
        return Err(CwError::InvalidParameterValue(format!("The parameter {member} must be a multiple of 60.")));
    }
    Ok(())
}

/// Where a CloudWatch call runs: the account's metrics, and its topics for alarm actions.
pub struct Context<'a> {
    pub store: &'a MetricStore,
    pub topics: &'a nimbus_topics::TopicService,
    pub region: &'a str,
    pub account: &'a str,
}

fn enum_value(value: &str, member: &str, allowed: &[&str]) -> Result<(), CwError> {
    if allowed.contains(&value) {
        return Ok(());
    }
    Err(CwError::Validation(format!(
        "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
        allowed.join(", ")
    )))
}

const STATISTICS: [&str; 5] = ["SampleCount", "Average", "Sum", "Minimum", "Maximum"];
/// A datum's dimensions and values at most (AWS's limits).
const MAX_DIMENSIONS: usize = 30;
const MAX_VALUES: usize = 150;
use nimbus_metrics::cloudwatch::STANDARD_UNITS as UNITS;

fn alarm_of(i: PutMetricAlarmInput, region: &str, account: &str, now_ms: i64) -> Result<Alarm, CwError> {
    if i.metrics.is_some() {
        return Err(CwError::InvalidParameterValue(
            "Metric math alarms (Metrics) are not supported by Nimbus; use MetricName and Namespace.".into(),
        ));
    }
    let required = |v: Option<String>, name: &str| v.ok_or_else(|| CwError::MissingParameter(format!("The parameter {name} is required.")));
    let metric_name = required(i.metric_name, "MetricName")?;
    let namespace = required(i.namespace, "Namespace")?;
    let period = i.period.ok_or_else(|| CwError::MissingParameter("The parameter Period is required.".into()))?;
    let threshold = i.threshold.ok_or_else(|| CwError::MissingParameter("The parameter Threshold is required.".into()))?;
    match (&i.statistic, &i.extended_statistic) {
        (Some(s), None) => enum_value(s, "statistic", &STATISTICS)?,
        (None, Some(p)) if Aggregate::of(1.0, 1.0).statistic(p).is_some() => {}
        (None, Some(p)) => {
            return Err(CwError::InvalidParameterValue(format!("The value {p} for parameter ExtendedStatistic is not supported.")))
        }
        _ => {
            return Err(CwError::InvalidParameterCombination(
                "Exactly one element of the Statistic and ExtendedStatistic parameters must be specified.".into(),
            ))
        }
    }
    enum_value(&i.comparison_operator, "comparisonOperator", &alarms::COMPARISONS)?;
    if let Some(t) = &i.treat_missing_data {
        enum_value(t, "treatMissingData", &alarms::MISSING_DATA)?;
    }
    check_period(period, "Period")?;
    if i.evaluation_periods < 1 {
        return Err(CwError::Validation(format!(
            "1 validation error detected: Value '{}' at 'evaluationPeriods' failed to satisfy constraint: Member must have value greater than or equal to 1",
            i.evaluation_periods
        )));
    }
    if i.datapoints_to_alarm.is_some_and(|m| m < 1 || m > i.evaluation_periods) {
        return Err(CwError::Validation("DatapointsToAlarm must be between 1 and EvaluationPeriods.".into()));
    }
    Ok(Alarm {
        arn: format!("arn:aws:cloudwatch:{region}:{account}:alarm:{}", i.alarm_name),
        name: i.alarm_name,
        description: i.alarm_description,
        actions_enabled: i.actions_enabled.unwrap_or(true),
        ok_actions: i.ok_actions.unwrap_or_default(),
        alarm_actions: i.alarm_actions.unwrap_or_default(),
        insufficient_data_actions: i.insufficient_data_actions.unwrap_or_default(),
        namespace,
        metric_name,
        dimensions: dims(i.dimensions),
        statistic: i.statistic,
        extended_statistic: i.extended_statistic,
        period,
        unit: i.unit,
        evaluation_periods: i.evaluation_periods,
        datapoints_to_alarm: i.datapoints_to_alarm,
        threshold,
        comparison: i.comparison_operator,
        treat_missing_data: i.treat_missing_data,
        state: alarms::INSUFFICIENT_DATA.into(),
        state_reason: "Unchecked: Initial alarm creation".into(),
        state_updated_ms: now_ms,
        state_transitioned_ms: now_ms,
        configuration_updated_ms: now_ms,
        rule: None,
    })
}

/// Sends an alarm's state change to the SNS topics among its actions for the new state, as
/// AWS does (other action kinds are kept but not run).
pub async fn notify(
    store: &MetricStore,
    topics: &nimbus_topics::TopicService,
    alarm: &Alarm,
    old_state: &str,
    region: &str,
    account: &str,
) {
    let region_name = match region {
        "us-east-1" => "US East (N. Virginia)",
        "us-east-2" => "US East (Ohio)",
        "us-west-1" => "US West (N. California)",
        "us-west-2" => "US West (Oregon)",
        "eu-west-1" => "EU (Ireland)",
        "eu-central-1" => "EU (Frankfurt)",
        other => other,
    };
    let body = alarms::notification(alarm, old_state, region_name, account).to_string();
    let mut history = Vec::new();
    for arn in alarms::actions_for(alarm) {
        if arn.starts_with("arn:aws:sns:") {
            let outcome = topics.publish_to_arn(arn, &body, Vec::new()).await;
            if let Err(e) = &outcome {
                tracing::warn!(alarm = %alarm.name, "alarm action {arn} failed: {e}");
            }
            let error = outcome.as_ref().err().map(|e| e.to_string());
            history.push(HistoryItem::action(alarm, arn, error.as_deref(), chrono::Utc::now().timestamp_millis()));
        }
    }
    if let Err(e) = store.add_history(history).await {
        tracing::warn!(alarm = %alarm.name, "recording the alarm's actions: {e}");
    }
}

async fn run(
    cx: &Context<'_>,
    call: CloudWatchCall,
    protocol: Protocol,
    operation: &str,
    rid: &str,
) -> Result<Response<bytes::Bytes>, CwError> {
    let store = cx.store;
    let now_ms = chrono::Utc::now().timestamp_millis();
    let internal = CwError::Internal;
    match call {
        CloudWatchCall::PutMetricData(i) => {
            if i.namespace.starts_with("AWS/") {
                return Err(CwError::InvalidParameterValue(format!("The value {} for parameter Namespace is invalid.", i.namespace)));
            }
            let data = i.metric_data.unwrap_or_default();
            let data = data.into_iter().enumerate().map(|(n, d)| datum(&i.namespace, n + 1, d, now_ms)).collect::<Result<Vec<_>, _>>()?;
            store.put(data).await.map_err(internal)?;
            Ok(encode::empty(&CLOUDWATCH, protocol, operation, rid))
        }
        CloudWatchCall::GetMetricStatistics(i) => {
            let (start, end) = (millis(&i.start_time, "StartTime")?, millis(&i.end_time, "EndTime")?);
            check_period(i.period, "Period")?;
            let stats = i.statistics.unwrap_or_default();
            let extended = i.extended_statistics.unwrap_or_default();
            if stats.is_empty() == extended.is_empty() {
                return Err(CwError::InvalidParameterCombination(
                    "Must specify either Statistics or ExtendedStatistics, but not both.".into(),
                ));
            }
            if start >= end {
                return Err(CwError::InvalidParameterValue("The parameter StartTime must be less than the parameter EndTime.".into()));
            }
            let key = SeriesKey::new(&i.namespace, &i.metric_name, dims(i.dimensions));
            let periods = store.query(key, start, end, i.period, i.unit, !extended.is_empty()).await.map_err(internal)?;
            let pick = |name: &str, a: &Aggregate| stats.iter().any(|s| s == name).then(|| a.statistic(name)).flatten();
            let datapoints = periods
                .iter()
                .map(|p| DatapointOut {
                    timestamp: p.start_ms as f64 / 1000.0,
                    sample_count: pick("SampleCount", &p.values),
                    average: pick("Average", &p.values),
                    sum: pick("Sum", &p.values),
                    minimum: pick("Minimum", &p.values),
                    maximum: pick("Maximum", &p.values),
                    unit: p.unit.clone(),
                    extended_statistics: (!extended.is_empty())
                        .then(|| extended.iter().filter_map(|e| p.values.statistic(e).map(|v| (e.clone(), v))).collect()),
                })
                .collect();
            Ok(encode::output(&CLOUDWATCH, protocol, operation, &GetMetricStatisticsOutput { label: i.metric_name, datapoints }, rid))
        }
        CloudWatchCall::GetMetricData(i) => {
            let (start, end) = (millis(&i.start_time, "StartTime")?, millis(&i.end_time, "EndTime")?);
            let descending = match i.scan_by.as_deref() {
                None | Some("TimestampDescending") => true,
                Some("TimestampAscending") => false,
                Some(other) => return Err(CwError::InvalidParameterValue(format!("The value {other} for parameter ScanBy is invalid."))),
            };
            let evaluated = metric_data(store, i.metric_data_queries, start, end).await?;
            let mut results = Vec::new();
            let mut budget = i.max_datapoints.and_then(|m| usize::try_from(m).ok()).unwrap_or(MAX_DATAPOINTS);
            for (id, label, series) in evaluated {
                let mut points: Vec<(i64, f64)> = series.into_iter().collect();
                if descending {
                    points.reverse();
                }
                points.truncate(budget);
                budget -= points.len();
                let (timestamps, values) = points.into_iter().map(|(t, v)| (t as f64 / 1000.0, v)).unzip();
                results.push(MetricDataResultOut { id, label, timestamps, values, status_code: "Complete" });
            }
            Ok(encode::output(
                &CLOUDWATCH,
                protocol,
                operation,
                &GetMetricDataOutput { metric_data_results: results, messages: Vec::new() },
                rid,
            ))
        }
        CloudWatchCall::ListMetrics(i) => {
            let filters = i.dimensions.unwrap_or_default().into_iter().map(|f| (f.name, f.value)).collect();
            let all = store.list(i.namespace, i.metric_name, filters).await.map_err(internal)?;
            let from = page_start(i.next_token.as_deref(), all.len())?;
            let end = (from + LIST_PAGE).min(all.len());
            let metrics = all[from..end]
                .iter()
                .map(|k| MetricOut {
                    namespace: k.namespace.clone(),
                    metric_name: k.name.clone(),
                    dimensions: k.dimensions.iter().map(|(n, v)| DimensionOut { name: n.clone(), value: v.clone() }).collect(),
                })
                .collect();
            let next_token = (end < all.len()).then(|| end.to_string());
            Ok(encode::output(&CLOUDWATCH, protocol, operation, &ListMetricsOutput { metrics, next_token }, rid))
        }
        CloudWatchCall::PutMetricAlarm(i) => {
            let alarm = alarm_of(i, cx.region, cx.account, now_ms)?;
            store.put_alarm(alarm).await.map_err(internal)?;
            Ok(encode::empty(&CLOUDWATCH, protocol, operation, rid))
        }
        CloudWatchCall::DescribeAlarms(i) => {
            if let Some(s) = &i.state_value {
                enum_value(s, "stateValue", &[alarms::INSUFFICIENT_DATA, alarms::ALARM, alarms::OK])?;
            }
            let page = i.max_records.unwrap_or(50).clamp(1, 100) as usize;
            // Metric alarms only, unless AlarmTypes asks for composites too (as AWS answers).
            let types = i.alarm_types.clone().unwrap_or_else(|| vec!["MetricAlarm".to_string()]);
            for t in &types {
                enum_value(t, "alarmTypes", &["CompositeAlarm", "MetricAlarm"])?;
            }
            let all: Vec<Alarm> = store
                .alarms()
                .into_iter()
                .filter(|a| types.iter().any(|t| (t == "CompositeAlarm") == a.rule.is_some()))
                .filter(|a| i.alarm_names.as_ref().is_none_or(|n| n.contains(&a.name)))
                .filter(|a| i.alarm_name_prefix.as_ref().is_none_or(|p| a.name.starts_with(p.as_str())))
                .filter(|a| i.state_value.as_ref().is_none_or(|s| *s == a.state))
                .filter(|a| {
                    i.action_prefix.as_ref().is_none_or(|p| {
                        a.alarm_actions.iter().chain(&a.ok_actions).chain(&a.insufficient_data_actions).any(|x| x.starts_with(p.as_str()))
                    })
                })
                .collect();
            let from = page_start(i.next_token.as_deref(), all.len())?;
            let end = (from + page).min(all.len());
            let out = DescribeAlarmsOutput {
                metric_alarms: all[from..end].iter().filter(|a| a.rule.is_none()).map(MetricAlarmOut::from).collect(),
                composite_alarms: all[from..end].iter().filter(|a| a.rule.is_some()).map(CompositeAlarmOut::from).collect(),
                next_token: (end < all.len()).then(|| end.to_string()),
            };
            Ok(encode::output(&CLOUDWATCH, protocol, operation, &out, rid))
        }
        CloudWatchCall::DeleteAlarms(i) => {
            let unknown = store.delete_alarms(i.alarm_names).await.map_err(internal)?;
            if let Some(name) = unknown.first() {
                return Err(CwError::ResourceNotFound(format!("The alarm {name} does not exist.")));
            }
            Ok(encode::empty(&CLOUDWATCH, protocol, operation, rid))
        }
        CloudWatchCall::SetAlarmState(i) => {
            enum_value(&i.state_value, "stateValue", &[alarms::INSUFFICIENT_DATA, alarms::ALARM, alarms::OK])?;
            let Some((alarm, old)) =
                store.set_alarm_state(&i.alarm_name, &i.state_value, &i.state_reason, now_ms).await.map_err(internal)?
            else {
                return Err(CwError::ResourceNotFound(String::new()));
            };
            if let Some(old) = old {
                notify(store, cx.topics, &alarm, &old, cx.region, cx.account).await;
            }
            for (alarm, old) in store.evaluate_composites(now_ms).await.map_err(internal)? {
                notify(store, cx.topics, &alarm, &old, cx.region, cx.account).await;
            }
            Ok(encode::empty(&CLOUDWATCH, protocol, operation, rid))
        }
        CloudWatchCall::PutCompositeAlarm(i) => {
            if i.alarm_rule.is_empty() || i.alarm_rule.len() > 10240 {
                return Err(CwError::Validation(
                    "1 validation error detected: Value at 'alarmRule' failed to satisfy constraint: Member must have length between 1 and 10240".into(),
                ));
            }
            let rule = alarms::Rule::parse(&i.alarm_rule).map_err(|e| CwError::Validation(format!("Error in alarm rule: {e}")))?;
            let known = store.alarms();
            let missing: Vec<String> =
                rule.alarms().into_iter().filter(|n| *n == i.alarm_name || !known.iter().any(|a| a.name == *n)).collect();
            if !missing.is_empty() {
                return Err(CwError::Validation(format!(
                    "Could not save the composite alarm as alarms [{}] in the alarm rule do not exist",
                    missing.join(", ")
                )));
            }
            let alarm = Alarm {
                arn: format!("arn:aws:cloudwatch:{}:{}:alarm:{}", cx.region, cx.account, i.alarm_name),
                name: i.alarm_name,
                description: i.alarm_description,
                actions_enabled: i.actions_enabled.unwrap_or(true),
                ok_actions: i.ok_actions.unwrap_or_default(),
                alarm_actions: i.alarm_actions.unwrap_or_default(),
                insufficient_data_actions: i.insufficient_data_actions.unwrap_or_default(),
                state: alarms::INSUFFICIENT_DATA.into(),
                state_reason: "Unchecked: Initial alarm creation".into(),
                state_updated_ms: now_ms,
                state_transitioned_ms: now_ms,
                configuration_updated_ms: now_ms,
                rule: Some(i.alarm_rule),
                // A composite alarm has no metric.
                ..Alarm::default()
            };
            store.put_alarm(alarm).await.map_err(internal)?;
            for (alarm, old) in store.evaluate_composites(now_ms).await.map_err(internal)? {
                notify(store, cx.topics, &alarm, &old, cx.region, cx.account).await;
            }
            Ok(encode::empty(&CLOUDWATCH, protocol, operation, rid))
        }
        CloudWatchCall::DescribeAlarmHistory(i) => {
            if let Some(kind) = &i.history_item_type {
                enum_value(
                    kind,
                    "historyItemType",
                    &["ConfigurationUpdate", "StateUpdate", "Action", "AlarmContributorStateUpdate", "AlarmContributorAction"],
                )?;
            }
            let ascending = match i.scan_by.as_deref() {
                None | Some("TimestampDescending") => false,
                Some("TimestampAscending") => true,
                Some(other) => return Err(CwError::InvalidParameterValue(format!("The value {other} for parameter ScanBy is invalid."))),
            };
            let start = i.start_date.as_ref().map(|v| millis(v, "StartDate")).transpose()?.unwrap_or(0);
            let end = i.end_date.as_ref().map(|v| millis(v, "EndDate")).transpose()?.unwrap_or(i64::MAX);
            let composites: std::collections::HashSet<String> =
                store.alarms().into_iter().filter(|a| a.rule.is_some()).map(|a| a.name).collect();
            let types = i.alarm_types.clone().unwrap_or_else(|| vec!["MetricAlarm".to_string(), "CompositeAlarm".to_string()]);
            let mut items: Vec<_> = store
                .history(i.alarm_name, i.history_item_type, start, end)
                .await
                .map_err(internal)?
                .into_iter()
                .filter(|h| types.iter().any(|t| (t == "CompositeAlarm") == composites.contains(&h.alarm_name)))
                .collect();
            if ascending {
                items.reverse();
            }
            let page = i.max_records.unwrap_or(100).clamp(1, 100) as usize;
            let from = page_start(i.next_token.as_deref(), items.len())?;
            let to = (from + page).min(items.len());
            let out = DescribeAlarmHistoryOutput {
                alarm_history_items: items[from..to]
                    .iter()
                    .map(|h| AlarmHistoryItemOut {
                        alarm_name: h.alarm_name.clone(),
                        alarm_type: if composites.contains(&h.alarm_name) { "CompositeAlarm" } else { "MetricAlarm" },
                        timestamp: h.timestamp_ms as f64 / 1000.0,
                        history_item_type: h.kind.clone(),
                        history_summary: h.summary.clone(),
                        history_data: h.data.clone(),
                    })
                    .collect(),
                next_token: (to < items.len()).then(|| to.to_string()),
            };
            Ok(encode::output(&CLOUDWATCH, protocol, operation, &out, rid))
        }
        CloudWatchCall::EnableAlarmActions(i) | CloudWatchCall::DisableAlarmActions(i) => {
            let enable = operation == "EnableAlarmActions";
            store.set_actions_enabled(&i.alarm_names, enable).await.map_err(internal)?;
            Ok(encode::empty(&CLOUDWATCH, protocol, operation, rid))
        }
    }
}

/// GetMetricData's queries: every `MetricStat` read in one batch, then each `Expression`
/// evaluated once what it refers to is known (in any order; a cycle or an unknown id is an
/// error). The results to return (`ReturnData` not false), in query order: id, label, points.
async fn metric_data(
    store: &nimbus_metrics::cloudwatch::MetricStore,
    queries: Vec<MetricDataQueryInput>,
    start: i64,
    end: i64,
) -> Result<Vec<(String, String, math::Series)>, CwError> {
    use nimbus_metrics::cloudwatch::SeriesQuery;
    let mut seen = std::collections::HashSet::new();
    let mut reads = Vec::new();
    let mut stats = Vec::new();
    let mut expressions = Vec::new();
    for (n, q) in queries.iter().enumerate() {
        let member = format!("MetricDataQueries.member.{}", n + 1);
        if !seen.insert(q.id.as_str()) {
            return Err(CwError::Validation("The values for parameter id in MetricDataQueries are not unique.".into()));
        }
        let id_ok = q.id.starts_with(|c: char| c.is_ascii_lowercase()) && q.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !id_ok {
            return Err(CwError::Validation(format!(
                "The value {} for parameter {member}.Id is invalid: it must start with a lowercase letter and hold only letters, digits and underscores.",
                q.id
            )));
        }
        match (&q.metric_stat, &q.expression) {
            (Some(_), Some(_)) => {
                return Err(CwError::InvalidParameterCombination(format!(
                    "The parameters {member}.MetricStat and {member}.Expression are mutually exclusive and you have specified both."
                )))
            }
            (None, None) => return Err(CwError::MissingParameter(format!("The parameter {member}.MetricStat is required."))),
            (Some(stat), None) => {
                check_period(stat.period, &format!("{member}.MetricStat.Period"))?;
                let key = SeriesKey::new(
                    stat.metric.namespace.as_deref().unwrap_or_default(),
                    stat.metric.metric_name.as_deref().unwrap_or_default(),
                    dims(stat.metric.dimensions.clone()),
                );
                reads.push(SeriesQuery { key, period_s: stat.period, unit: stat.unit.clone(), percentiles: stat.stat.starts_with('p') });
                stats.push(n);
            }
            (None, Some(text)) => {
                let parsed =
                    math::Expression::parse(text).map_err(|e| CwError::Validation(format!("Error in expression {}: {e}", q.id)))?;
                expressions.push((n, parsed));
            }
        }
    }
    let periods = store.query_many(reads, start, end).await.map_err(CwError::Internal)?;
    let mut done: Vec<(String, math::Value)> = Vec::new();
    let mut labels = BTreeMap::new();
    let mut metric_ids = Vec::new();
    let mut longest = 60;
    for (&n, periods) in stats.iter().zip(periods) {
        let (q, stat) = (&queries[n], queries[n].metric_stat.as_ref().expect("a metric query"));
        let series = periods.iter().filter_map(|p| p.values.statistic(&stat.stat).map(|v| (p.start_ms, v))).collect();
        labels.insert(q.id.clone(), q.label.clone().or_else(|| stat.metric.metric_name.clone()).unwrap_or_default());
        metric_ids.push(q.id.clone());
        longest = longest.max(stat.period);
        done.push((q.id.clone(), math::Value::Series(series)));
    }
    // Expressions in dependency order: each round evaluates those whose references are done.
    let mut pending = expressions;
    while !pending.is_empty() {
        let ready = |e: &math::Expression| {
            e.ids().iter().all(|id| done.iter().any(|(d, _)| d == id) || !pending_has(&queries, id))
                && (!e.uses_all_metrics() || metric_ids.iter().all(|m| done.iter().any(|(d, _)| d == m)))
        };
        let Some(at) = pending.iter().position(|(_, e)| ready(e)) else {
            let (n, _) = &pending[0];
            return Err(CwError::Validation(format!("Error in expression {}: Circular dependency between expressions", queries[*n].id)));
        };
        let (n, e) = pending.remove(at);
        let q = &queries[n];
        let cx = math::Context {
            results: &done,
            metric_ids: &metric_ids,
            labels: &labels,
            start_ms: start,
            end_ms: end,
            period_s: q.period.unwrap_or(longest).max(1),
        };
        let series = e
            .evaluate(&cx)
            .and_then(|v| v.into_series(&cx))
            .map_err(|err| CwError::Validation(format!("Error in expression {}: {err}", q.id)))?;
        done.push((q.id.clone(), math::Value::Series(series)));
    }
    let mut out = Vec::new();
    for q in queries {
        if q.return_data == Some(false) {
            continue;
        }
        let Some(at) = done.iter().position(|(id, _)| *id == q.id) else { continue };
        let math::Value::Series(series) = std::mem::replace(&mut done[at].1, math::Value::Scalar(0.0)) else { continue };
        let label = q.label.or_else(|| q.metric_stat.and_then(|s| s.metric.metric_name)).unwrap_or_else(|| q.id.clone());
        out.push((q.id, label, series));
    }
    Ok(out)
}

/// Whether `id` names one of the queries (an expression whose result is not yet known).
fn pending_has(queries: &[MetricDataQueryInput], id: &str) -> bool {
    queries.iter().any(|q| q.id == id)
}

pub async fn execute(cx: &Context<'_>, req: CloudWatchRequest) -> Response<Body> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let result = match req.call {
        Ok(call) => run(cx, call, req.protocol, req.operation, &request_id).await,
        Err(e) => Err(e),
    };
    let response = result.unwrap_or_else(|e| {
        if let CwError::Internal(msg) = &e {
            tracing::error!(operation = req.operation, "cloudwatch: {msg}");
        }
        encode::error(&CLOUDWATCH, req.protocol, &e, &request_id)
    });
    response.map(Body::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(json: &str) -> Result<Vec<Datum>, CwError> {
        let i: PutMetricDataInput = serde_json::from_str(json).unwrap();
        let now = chrono::Utc::now().timestamp_millis();
        i.metric_data.unwrap_or_default().into_iter().enumerate().map(|(n, d)| datum(&i.namespace, n + 1, d, now)).collect()
    }

    #[test]
    fn put_metric_data_rules() {
        let m = "MetricData.member.1";
        let cases = [
            (
                r#""Value": 1, "Values": [1]"#,
                CwError::InvalidParameterCombination(format!(
                    "The parameters {m}.Value and {m}.Values are mutually exclusive and you have specified both."
                )),
            ),
            (
                r#""Value": 1, "StatisticValues": {"SampleCount": 1, "Sum": 1, "Minimum": 1, "Maximum": 1}"#,
                CwError::InvalidParameterCombination(format!(
                    "The parameters {m}.Value and {m}.StatisticValues are mutually exclusive and you have specified both."
                )),
            ),
            (
                r#""Values": [1, 2], "Counts": [1]"#,
                CwError::InvalidParameterValue(format!("The parameters {m}.Values and {m}.Counts must be of the same size.")),
            ),
            (
                r#""Value": 1, "Timestamp": 4102444800"#,
                CwError::InvalidParameterValue(format!(
                    "The parameter {m}.Timestamp must specify a time no more than two hours in the future."
                )),
            ),
            (r#""Value": 1e200"#, CwError::InvalidParameterValue(format!("The value 1e200 for parameter {m}.Value is invalid."))),
            (r#""Values": [1, 1e-200]"#, CwError::InvalidParameterValue(format!("The value 1e-200 for parameter {m}.Values is invalid."))),
            (
                r#""Value": 1, "Unit": "Furlongs""#,
                CwError::Validation(format!(
                    "1 validation error detected: Value 'Furlongs' at 'metricData.1.member.unit' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                    UNITS.join(", ")
                )),
            ),
            (
                &format!(r#""Value": 1, "Dimensions": [{}]"#, (0..31).map(|n| format!(r#"{{"Name": "d{n}", "Value": "v"}}"#)).collect::<Vec<_>>().join(",")),
                CwError::InvalidParameterValue(format!("The collection {m}.Dimensions must not have a size greater than 30.")),
            ),
            (
                &format!(r#""Values": [{}]"#, vec!["1"; 151].join(",")),
                CwError::InvalidParameterValue(format!("The collection {m}.Values must not have a size greater than 150.")),
            ),
        ];
        for (fields, want) in cases {
            let body = format!(r#"{{"Namespace": "App", "MetricData": [{{"MetricName": "M", {fields}}}]}}"#);
            assert_eq!(put(&body).unwrap_err(), want, "{fields}");
        }
        let ok = put(r#"{"Namespace": "App", "MetricData": [{"MetricName": "M", "Values": [1, 3], "Counts": [2, 1], "Unit": "Count", "Dimensions": [{"Name": "b", "Value": "2"}, {"Name": "a", "Value": "1"}]}]}"#).unwrap();
        assert_eq!((ok[0].values.count, ok[0].values.sum, ok[0].unit.as_str()), (3.0, 5.0, "Count"));
        assert_eq!(ok[0].key.dimensions[0].0, "a", "dimensions are kept sorted");
    }

    #[test]
    fn periods() {
        for (p, ok) in [(60, true), (300, true), (1, true), (30, true), (0, false), (90, false), (7, false)] {
            assert_eq!(check_period(p, "Period").is_ok(), ok, "{p}");
        }
    }
}

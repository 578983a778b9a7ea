//! A CloudWatch Logs subset on the wire (JSON 1.1, `X-Amz-Target: Logs_20140328.<Action>`):
//! requests decoded through `nimbus-protocol` against the Logs model into typed
//! [`LogsCall`]s, answered from the log store with typed outputs. Enough for `aws logs`,
//! boto3 and `nimbus logs` to read function logs.

use std::fmt;

use http::Response;
use nimbus_logs::{Cursor, FilterPattern, LogStore, Position};
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
    }
}

/// An error as CloudWatch Logs answers it: every client error is a 400.
#[derive(Debug)]
pub struct LogsError(ApiError);

impl fmt::Display for LogsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl AwsError for LogsError {
    fn code(&self) -> &str {
        self.0.code.name()
    }
    fn status(&self) -> u16 {
        if self.0.code == ErrorCode::Service {
            500
        } else {
            400
        }
    }
    fn message(&self) -> String {
        self.0.message.clone()
    }
}

impl From<ApiError> for LogsError {
    fn from(e: ApiError) -> LogsError {
        LogsError(e)
    }
}

fn invalid(message: impl Into<String>) -> LogsError {
    LogsError(ApiError::new(ErrorCode::InvalidParameter, message))
}

/// Decodes `Logs_20140328.<operation>`'s body.
pub fn parse(operation: &str, body: &[u8]) -> LogsRequest {
    match LogsCall::from_json(&LOGS, operation, body) {
        Some((operation, call)) => LogsRequest { operation, call: call.map_err(decode_error) },
        None => LogsRequest {
            operation: "Unknown",
            call: Err(LogsError(ApiError::new(ErrorCode::UnknownOperation, format!("Operation {operation} is not supported")))),
        },
    }
}

fn decode_error(e: DecodeError) -> LogsError {
    match e {
        DecodeError::Missing { member } => {
            invalid(format!("1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"))
        }
        DecodeError::Type { member, expected, .. } | DecodeError::Binding { member, expected, .. } => {
            LogsError(ApiError::new(ErrorCode::InvalidParameter, format!("{member} must be a {expected}")))
        }
        DecodeError::Malformed(m) | DecodeError::Shape(m) => {
            LogsError(ApiError::new(ErrorCode::InvalidParameter, format!("The request body is not valid JSON: {m}")))
        }
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
                Err(LogsError(ApiError::new(ErrorCode::Validation, "LogGroup name and LogGroup ARN are mutually exclusive parameters.")))
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
    metric_filter_count: u32,
    arn: String,
    stored_bytes: u64,
    log_group_class: &'static str,
    log_group_arn: String,
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
    first_event_timestamp: i64,
    last_event_timestamp: i64,
    last_ingestion_time: i64,
    upload_sequence_token: &'static str,
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

// ---- running -----------------------------------------------------------------------------

fn group_missing() -> LogsError {
    LogsError(ApiError::not_found("The specified log group does not exist."))
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
        if e.0.code == ErrorCode::Service {
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
            let start = offset(input.next_token.as_deref())?.map(|(_, n)| n).unwrap_or(0);
            if input.log_group_name_prefix.is_some() && input.log_group_name_pattern.is_some() {
                return Err(invalid("LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters."));
            }
            let mut groups = store.groups(input.log_group_name_prefix.as_deref().unwrap_or(""));
            if let Some(pattern) = &input.log_group_name_pattern {
                groups.retain(|g| g.name.contains(pattern.as_str()));
            }
            let log_groups = groups
                .iter()
                .skip(start)
                .take(limit)
                .map(|g| LogGroup {
                    log_group_name: g.name.clone(),
                    creation_time: g.creation_time,
                    metric_filter_count: 0,
                    arn: format!("{}:*", group_arn(state, &g.name)),
                    stored_bytes: g.stored_bytes,
                    log_group_class: "STANDARD",
                    log_group_arn: group_arn(state, &g.name),
                })
                .collect();
            let next_token = (start + limit < groups.len()).then(|| format!("f/{}", start + limit));
            reply(op, rid, &DescribeLogGroupsOutput { log_groups, next_token })
        }
        LogsCall::DescribeLogStreams(input) => {
            let limit = limit(input.limit, 50)?;
            let group = input.group.name()?;
            let mut streams = store.streams(&group).ok_or_else(group_missing)?;
            if let Some(prefix) = &input.log_stream_name_prefix {
                streams.retain(|s| s.name.starts_with(prefix.as_str()));
            }
            if input.order_by.as_deref() == Some("LastEventTime") {
                streams.sort_by_key(|s| s.last_event);
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
                    upload_sequence_token: "1",
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
            if store.streams(&group).is_none() {
                return Err(group_missing());
            }
            let from = match offset(input.next_token.as_deref())? {
                Some(('f', n)) => Cursor::Forward(n),
                Some((_, n)) => Cursor::Backward(n),
                None if input.start_from_head == Some(true) => Cursor::Head,
                None => Cursor::Tail,
            };
            let page = store
                .stream_page(&group, &input.log_stream_name, input.start_time, input.end_time, from, limit)
                .ok_or_else(|| LogsError(ApiError::not_found("The specified log stream does not exist.")))?;
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
            let pattern = FilterPattern::parse(input.filter_pattern.as_deref().unwrap_or(""));
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
                )
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
    })
}

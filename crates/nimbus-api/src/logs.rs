//! A CloudWatch Logs subset (JSON 1.1 protocol): enough for `aws logs`, boto3 and
//! `nimbus logs` to read function logs.

use nimbus_logs::{FilterPattern, LogStore};
use nimbus_model::{ApiError, ErrorCode};
use serde_json::{json, Value};

use crate::action::LogsAction;
use crate::server::AppState;

fn param<'a>(input: &'a Value, name: &str) -> Option<&'a Value> {
    input.get(name).filter(|v| !v.is_null())
}

fn str_param<'a>(input: &'a Value, name: &str) -> Result<Option<&'a str>, ApiError> {
    match param(input, name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::new(ErrorCode::InvalidParameter, format!("{name} must be a string"))),
    }
}

fn required_str<'a>(input: &'a Value, name: &str) -> Result<&'a str, ApiError> {
    str_param(input, name)?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidParameter,
            format!("1 validation error detected: Value null at '{name}' failed to satisfy constraint: Member must not be null"),
        )
    })
}

fn int_param(input: &Value, name: &str) -> Option<i64> {
    param(input, name).and_then(Value::as_i64)
}

fn group_missing() -> ApiError {
    ApiError::not_found("The specified log group does not exist.")
}

fn arn(state: &AppState, group: &str) -> String {
    let p = state.control.partition();
    format!("arn:aws:logs:{}:{}:log-group:{}:*", p.region, p.account_id, group)
}

/// Offsets into a result list as pagination tokens (`f/<n>` forward, `b/<n>` backward).
fn offset(token: Option<&str>) -> Option<(char, usize)> {
    let t = token?;
    let (dir, n) = t.split_once('/')?;
    Some((dir.chars().next()?, n.parse().ok()?))
}

pub fn execute(state: &AppState, store: &LogStore, action: LogsAction) -> Result<Value, ApiError> {
    match action {
        LogsAction::DescribeLogGroups(input) => {
            let prefix = str_param(&input, "logGroupNamePrefix")?.unwrap_or("");
            let limit = int_param(&input, "limit").unwrap_or(50).clamp(1, 50) as usize;
            let start = offset(str_param(&input, "nextToken")?).map(|(_, n)| n).unwrap_or(0);
            let groups = store.groups(prefix);
            let page: Vec<Value> = groups
                .iter()
                .skip(start)
                .take(limit)
                .map(|g| json!({"logGroupName": g.name, "creationTime": g.creation_time, "arn": arn(state, &g.name), "storedBytes": g.stored_bytes, "logGroupClass": "STANDARD"}))
                .collect();
            let mut out = json!({ "logGroups": page });
            if start + limit < groups.len() {
                out["nextToken"] = json!(format!("f/{}", start + limit));
            }
            Ok(out)
        }
        LogsAction::DescribeLogStreams(input) => {
            let group = required_str(&input, "logGroupName")?;
            let mut streams = store.streams(group).ok_or_else(group_missing)?;
            if let Some(prefix) = str_param(&input, "logStreamNamePrefix")? {
                streams.retain(|s| s.name.starts_with(prefix));
            }
            let by_time = str_param(&input, "orderBy")? == Some("LastEventTime");
            if by_time {
                streams.sort_by_key(|s| s.last_event);
            }
            if param(&input, "descending").and_then(Value::as_bool) == Some(true) {
                streams.reverse();
            }
            let limit = int_param(&input, "limit").unwrap_or(50).clamp(1, 50) as usize;
            let start = offset(str_param(&input, "nextToken")?).map(|(_, n)| n).unwrap_or(0);
            let page: Vec<Value> = streams
                .iter()
                .skip(start)
                .take(limit)
                .map(|s| {
                    json!({
                        "logStreamName": s.name,
                        "creationTime": s.creation_time,
                        "firstEventTimestamp": s.first_event,
                        "lastEventTimestamp": s.last_event,
                        "lastIngestionTime": s.last_ingestion,
                        "uploadSequenceToken": "1",
                        "arn": format!("{}:log-stream:{}", arn(state, group).trim_end_matches(":*"), s.name),
                        "storedBytes": s.stored_bytes,
                    })
                })
                .collect();
            let mut out = json!({ "logStreams": page });
            if start + limit < streams.len() {
                out["nextToken"] = json!(format!("f/{}", start + limit));
            }
            Ok(out)
        }
        LogsAction::GetLogEvents(input) => {
            let group = required_str(&input, "logGroupName")?;
            let stream = required_str(&input, "logStreamName")?;
            if store.streams(group).is_none() {
                return Err(group_missing());
            }
            let events = store.read_stream(group, stream).ok_or_else(|| ApiError::not_found("The specified log stream does not exist."))?;
            let start_time = int_param(&input, "startTime");
            let end_time = int_param(&input, "endTime");
            let events: Vec<_> = events
                .into_iter()
                .filter(|e| start_time.is_none_or(|t| e.timestamp >= t) && end_time.is_none_or(|t| e.timestamp < t))
                .collect();
            let limit = int_param(&input, "limit").unwrap_or(10_000).clamp(1, 10_000) as usize;
            let from_head = param(&input, "startFromHead").and_then(Value::as_bool).unwrap_or(false);
            let (lo, hi) = match offset(str_param(&input, "nextToken")?) {
                Some(('f', n)) => (n.min(events.len()), (n + limit).min(events.len())),
                Some(('b', n)) => (n.min(events.len()).saturating_sub(limit), n.min(events.len())),
                _ if from_head => (0, limit.min(events.len())),
                _ => (events.len().saturating_sub(limit), events.len()),
            };
            let page: Vec<Value> = events[lo..hi]
                .iter()
                .map(|e| json!({"timestamp": e.timestamp, "message": e.message, "ingestionTime": e.ingestion_time}))
                .collect();
            Ok(json!({ "events": page, "nextForwardToken": format!("f/{hi}"), "nextBackwardToken": format!("b/{lo}") }))
        }
        LogsAction::FilterLogEvents(input) => {
            let group = required_str(&input, "logGroupName")?;
            let names: Option<Vec<String>> = match param(&input, "logStreamNames") {
                Some(Value::Array(a)) => Some(a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()),
                _ => None,
            };
            let pattern = FilterPattern::parse(str_param(&input, "filterPattern")?.unwrap_or(""));
            let mut hits = store
                .filter(group, names.as_deref(), int_param(&input, "startTime"), int_param(&input, "endTime"), &pattern)
                .ok_or_else(group_missing)?;
            if let Some(prefix) = str_param(&input, "logStreamNamePrefix")? {
                hits.retain(|(s, _)| s.starts_with(prefix));
            }
            let limit = int_param(&input, "limit").unwrap_or(10_000).clamp(1, 10_000) as usize;
            let start = offset(str_param(&input, "nextToken")?).map(|(_, n)| n).unwrap_or(0);
            let page: Vec<Value> = hits
                .iter()
                .enumerate()
                .skip(start)
                .take(limit)
                .map(|(i, (s, e))| {
                    json!({"logStreamName": s, "timestamp": e.timestamp, "message": e.message, "ingestionTime": e.ingestion_time, "eventId": format!("{:020}{i:08}", e.timestamp)})
                })
                .collect();
            let mut out = json!({ "events": page, "searchedLogStreams": [] });
            if start + limit < hits.len() {
                out["nextToken"] = json!(format!("f/{}", start + limit));
            }
            Ok(out)
        }
    }
}

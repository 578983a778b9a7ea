//! The pure decisions of a stream mapping's shard poller, apart from IO so they can be
//! tested as tables: which records of a batch to hand over next (retries, bisection), where
//! the checkpoint moves (successes, ReportBatchItemFailures, records given up on), how many
//! records fit one invocation, and the on-failure record AWS sends for a batch given up on.

use std::collections::VecDeque;
use std::ops::Range;

use serde_json::{json, Value};

/// What a mapping does with a failing batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// MaximumRetryAttempts: -1 retries forever.
    pub max_retries: i32,
    /// BisectBatchOnFunctionError.
    pub bisect: bool,
}

/// How an invocation of a range of records went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// A function error, a malformed partial-failure answer, or no invocation at all.
    Failed,
    /// ReportBatchItemFailures: the records before this one (its offset in the range)
    /// succeeded, it and the ones after it failed.
    FailedFrom(usize),
}

/// What the poller does after an invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The batch's first `n` records are handled: the checkpoint moves past them.
    Commit(usize),
    /// These records are given up on (the on-failure record goes out), after `attempts`
    /// invocations; a [`Step::Commit`] past them follows.
    Discard { range: Range<usize>, attempts: u32 },
}

/// A batch in flight: the ranges still to deliver, in order, each with the invocations
/// it has failed so far. The front range is the one to invoke with next; nothing after it
/// is delivered before it succeeds or is given up on, so records stay in order.
#[derive(Debug, Clone)]
pub struct BatchRun {
    pending: VecDeque<(Range<usize>, u32)>,
    policy: RetryPolicy,
}

impl BatchRun {
    pub fn new(len: usize, policy: RetryPolicy) -> BatchRun {
        let pending = if len == 0 { VecDeque::new() } else { VecDeque::from([(0..len, 0)]) };
        BatchRun { pending, policy }
    }

    /// The records to invoke with next and how often they failed; None when done.
    pub fn current(&self) -> Option<(Range<usize>, u32)> {
        self.pending.front().cloned()
    }

    /// The current range's records are too old (MaximumRecordAgeInSeconds): given up on.
    pub fn expire(&mut self) -> Vec<Step> {
        match self.pending.pop_front() {
            Some((range, attempts)) => vec![Step::Discard { range: range.clone(), attempts }, Step::Commit(range.end)],
            None => Vec::new(),
        }
    }

    /// Takes in how the invocation of [`BatchRun::current`] went.
    pub fn report(&mut self, outcome: Outcome) -> Vec<Step> {
        let Some((range, attempts)) = self.pending.pop_front() else { return Vec::new() };
        match outcome {
            Outcome::Success => vec![Step::Commit(range.end)],
            Outcome::FailedFrom(k) if k > 0 && k < range.len() => {
                let done = range.start + k;
                let mut steps = vec![Step::Commit(done)];
                steps.extend(self.failed(done..range.end, attempts));
                steps
            }
            Outcome::FailedFrom(k) if k >= range.len() => vec![Step::Commit(range.end)],
            Outcome::Failed | Outcome::FailedFrom(_) => self.failed(range, attempts),
        }
    }

    /// A range failed: split it (bisection does not count as a retry), retry it, or give
    /// it up once the retries are spent.
    fn failed(&mut self, range: Range<usize>, attempts: u32) -> Vec<Step> {
        if self.policy.bisect && range.len() > 1 {
            let mid = range.start + range.len() / 2;
            self.pending.push_front((mid..range.end, attempts));
            self.pending.push_front((range.start..mid, attempts));
            return Vec::new();
        }
        let attempts = attempts + 1;
        if self.policy.max_retries >= 0 && i64::from(attempts) > i64::from(self.policy.max_retries) {
            return vec![Step::Discard { range: range.clone(), attempts }, Step::Commit(range.end)];
        }
        self.pending.push_front((range, attempts));
        Vec::new()
    }
}

/// A ReportBatchItemFailures answer that is malformed or names a record not in the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedAnswer;

/// ReportBatchItemFailures: the offset of the first failed record of `sequence_numbers`
/// (the lowest named; None: all succeeded), or Err when the answer is malformed or names a
/// record not in the batch (the whole batch failed, as AWS has it).
pub fn first_failure(payload: &[u8], sequence_numbers: &[&str]) -> Result<Option<usize>, MalformedAnswer> {
    let v: Value = serde_json::from_slice(payload).map_err(|_| MalformedAnswer)?;
    let list = match v.get("batchItemFailures") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(MalformedAnswer),
    };
    let mut first: Option<usize> = None;
    for f in list {
        let id = f.get("itemIdentifier").and_then(Value::as_str).filter(|s| !s.is_empty()).ok_or(MalformedAnswer)?;
        let at = sequence_numbers.iter().position(|s| *s == id).ok_or(MalformedAnswer)?;
        first = Some(first.map_or(at, |f| f.min(at)));
    }
    Ok(first)
}

/// Lambda's payload limit for a synchronous invocation, less room for the envelope.
pub const PAYLOAD_LIMIT: usize = 6 * 1024 * 1024 - 1024;

/// How many of the records (their serialized sizes) fit one event: at least one, then as
/// many as stay under `limit` bytes with their separators.
pub fn fitting(sizes: &[usize], limit: usize) -> usize {
    let mut total = "{\"Records\":[]}".len();
    for (i, s) in sizes.iter().enumerate() {
        total += s + usize::from(i > 0);
        if total > limit && i > 0 {
            return i;
        }
    }
    sizes.len()
}

/// The stream kind, for the on-failure record's batch info.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Kinesis,
    DynamoDb,
}

/// What the on-failure record says about the records given up on.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedBatch {
    pub kind: StreamKind,
    pub shard_id: String,
    pub start_sequence_number: String,
    pub end_sequence_number: String,
    pub first_arrival_ms: i64,
    pub last_arrival_ms: i64,
    pub batch_size: usize,
    pub stream_arn: String,
    /// `RetryAttemptsExhausted` or `RecordAgeExceeded`.
    pub condition: &'static str,
    pub attempts: u32,
    /// The last invocation's function error, when there was one.
    pub function_error: Option<String>,
    pub function_arn: String,
    pub request_id: String,
    pub now_ms: i64,
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()).unwrap_or_default()
}

/// DynamoDB's arrival times are whole seconds, and AWS writes them without a fraction
/// (`DDBStreamBatchInfo` in test_lambda_integration_dynamodbstreams.snapshot.json).
fn iso_secs(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_default()
}

/// Where an S3 on-failure destination gets a batch given up on:
/// `aws/lambda/<mapping UUID>/<shard id>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<random UUID>`.
pub fn failure_object_key(mapping: &str, shard_id: &str, now_ms: i64, random: &str) -> String {
    let at = chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
    format!("aws/lambda/{mapping}/{shard_id}/{}/{}-{random}", at.format("%Y/%m/%d"), at.format("%Y-%m-%dT%H.%M.%S"))
}

/// AWS's invocation record for a stream batch given up on (sent to OnFailure).
pub fn failure_record(b: &FailedBatch) -> Value {
    let arrival = match b.kind {
        StreamKind::Kinesis => iso,
        StreamKind::DynamoDb => iso_secs,
    };
    let info = json!({
        "shardId": b.shard_id,
        "startSequenceNumber": b.start_sequence_number,
        "endSequenceNumber": b.end_sequence_number,
        "approximateArrivalOfFirstRecord": arrival(b.first_arrival_ms),
        "approximateArrivalOfLastRecord": arrival(b.last_arrival_ms),
        "batchSize": b.batch_size,
        "streamArn": b.stream_arn,
    });
    let mut record = json!({
        "requestContext": {
            "requestId": b.request_id,
            "functionArn": b.function_arn,
            "condition": b.condition,
            // AWS counts 1 even for records that expired before any invocation, and leaves
            // responseContext out of RecordAgeExceeded records
            // (test_kinesis_maximum_record_age_exceeded in
            // test_lambda_integration_kinesis.snapshot.json).
            "approximateInvokeCount": b.attempts.max(1),
        },
        "version": "1.0",
        "timestamp": iso(b.now_ms),
    });
    if b.attempts > 0 && b.condition != "RecordAgeExceeded" {
        // `functionError` is null when the function answered but reported failed items
        // (test_kinesis_report_batch_item_failures in
        // test_lambda_integration_kinesis.snapshot.json).
        record["responseContext"] = json!({ "statusCode": 200, "executedVersion": "$LATEST", "functionError": b.function_error });
    }
    let key = match b.kind {
        StreamKind::Kinesis => "KinesisBatchInfo",
        StreamKind::DynamoDb => "DDBStreamBatchInfo",
    };
    record[key] = info;
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONCE: RetryPolicy = RetryPolicy { max_retries: 1, bisect: false };
    const BISECT0: RetryPolicy = RetryPolicy { max_retries: 0, bisect: true };
    const FOREVER: RetryPolicy = RetryPolicy { max_retries: -1, bisect: false };

    /// Runs a batch of `len` records where `bad` fails every invocation containing it, with
    /// ReportBatchItemFailures answers when `partial`; returns the invoked ranges and steps.
    fn run(len: usize, policy: RetryPolicy, bad: Option<usize>, partial: bool) -> (Vec<Range<usize>>, Vec<Step>) {
        let mut b = BatchRun::new(len, policy);
        let (mut invoked, mut steps) = (Vec::new(), Vec::new());
        while let Some((r, _)) = b.current() {
            invoked.push(r.clone());
            assert!(invoked.len() < 100, "runaway batch");
            let outcome = match bad.filter(|x| r.contains(x)) {
                Some(x) if partial => Outcome::FailedFrom(x - r.start),
                Some(_) => Outcome::Failed,
                None => Outcome::Success,
            };
            steps.extend(b.report(outcome));
        }
        (invoked, steps)
    }

    #[test]
    fn failure_object_keys() {
        let key = failure_object_key("d7b9c2a0-1111-2222-3333-444455556666", "shardId-000000000003", 1_733_360_645_123, "r");
        assert_eq!(key, "aws/lambda/d7b9c2a0-1111-2222-3333-444455556666/shardId-000000000003/2024/12/05/2024-12-05T01.04.05-r");
    }

    fn discard(range: Range<usize>, attempts: u32) -> Step {
        Step::Discard { range, attempts }
    }

    /// One batch: its length, policy, the bad record, whether the function reports
    /// partial failures; the ranges invoked (start, end) and the steps taken.
    struct Case {
        name: &'static str,
        len: usize,
        policy: RetryPolicy,
        bad: Option<usize>,
        partial: bool,
        invoked: &'static [(usize, usize)],
        steps: Vec<Step>,
    }

    #[test]
    fn batches_retry_bisect_and_checkpoint() {
        use Step::Commit;
        let none = RetryPolicy { max_retries: 0, bisect: false };
        let cases = vec![
            Case { name: "all succeed", len: 4, policy: ONCE, bad: None, partial: false, invoked: &[(0, 4)], steps: vec![Commit(4)] },
            Case {
                name: "one retry, then given up",
                len: 4,
                policy: ONCE,
                bad: Some(2),
                partial: false,
                invoked: &[(0, 4), (0, 4)],
                steps: vec![discard(0..4, 2), Commit(4)],
            },
            Case {
                name: "bisection isolates the bad record",
                len: 4,
                policy: BISECT0,
                bad: Some(2),
                partial: false,
                invoked: &[(0, 4), (0, 2), (2, 4), (2, 3), (3, 4)],
                steps: vec![Commit(2), discard(2..3, 1), Commit(3), Commit(4)],
            },
            Case {
                name: "partial failure checkpoints before the first failed record",
                len: 5,
                policy: ONCE,
                bad: Some(3),
                partial: true,
                invoked: &[(0, 5), (3, 5)],
                steps: vec![Commit(3), discard(3..5, 2), Commit(5)],
            },
            Case {
                name: "partial failure at the first record",
                len: 3,
                policy: none,
                bad: Some(0),
                partial: true,
                invoked: &[(0, 3)],
                steps: vec![discard(0..3, 1), Commit(3)],
            },
        ];
        for c in cases {
            let (invoked, steps) = run(c.len, c.policy, c.bad, c.partial);
            let invoked: Vec<(usize, usize)> = invoked.iter().map(|r| (r.start, r.end)).collect();
            assert_eq!(invoked, c.invoked, "{}: invocations", c.name);
            assert_eq!(steps, c.steps, "{}: steps", c.name);
        }
    }

    #[test]
    fn forever_keeps_retrying_and_expiry_gives_up() {
        let mut b = BatchRun::new(3, FOREVER);
        for attempt in 1..=50 {
            assert!(b.report(Outcome::Failed).is_empty());
            assert_eq!(b.current(), Some((0..3, attempt)));
        }
        assert_eq!(b.expire(), vec![discard(0..3, 50), Step::Commit(3)]);
        assert_eq!(b.current(), None);
    }

    #[test]
    fn partial_failure_answers() {
        let seqs = ["10", "11", "12"];
        let cases: Vec<(&str, Result<Option<usize>, MalformedAnswer>)> = vec![
            ("{}", Ok(None)),
            ("null", Ok(None)),
            (r#"{"batchItemFailures":[]}"#, Ok(None)),
            (r#"{"batchItemFailures":null}"#, Ok(None)),
            (r#"{"batchItemFailures":[{"itemIdentifier":"11"}]}"#, Ok(Some(1))),
            (r#"{"batchItemFailures":[{"itemIdentifier":"12"},{"itemIdentifier":"10"}]}"#, Ok(Some(0))),
            (r#"{"batchItemFailures":[{"itemIdentifier":"99"}]}"#, Err(MalformedAnswer)),
            (r#"{"batchItemFailures":[{"itemIdentifier":""}]}"#, Err(MalformedAnswer)),
            (r#"{"batchItemFailures":[{}]}"#, Err(MalformedAnswer)),
            (r#"{"batchItemFailures":"x"}"#, Err(MalformedAnswer)),
            ("not json", Err(MalformedAnswer)),
        ];
        for (payload, want) in cases {
            assert_eq!(first_failure(payload.as_bytes(), &seqs), want, "{payload}");
        }
    }

    #[test]
    fn records_fit_the_payload_limit() {
        let cases: Vec<(Vec<usize>, usize, usize)> =
            vec![(vec![], 100, 0), (vec![10, 10, 10], 100, 3), (vec![40, 40, 40], 100, 2), (vec![500], 100, 1), (vec![50, 500], 100, 1)];
        for (sizes, limit, want) in cases {
            assert_eq!(fitting(&sizes, limit), want, "{sizes:?} under {limit}");
        }
    }

    #[test]
    fn failure_record_has_aws_shape() {
        let b = FailedBatch {
            kind: StreamKind::Kinesis,
            shard_id: "shardId-000000000000".into(),
            start_sequence_number: "1".into(),
            end_sequence_number: "3".into(),
            first_arrival_ms: 1_700_000_000_000,
            last_arrival_ms: 1_700_000_000_500,
            batch_size: 3,
            stream_arn: "arn:aws:kinesis:us-east-1:123456789012:stream/s".into(),
            condition: "RetryAttemptsExhausted",
            attempts: 2,
            function_error: Some("Unhandled".into()),
            function_arn: "arn:aws:lambda:us-east-1:123456789012:function:f".into(),
            request_id: "r".into(),
            now_ms: 1_700_000_001_000,
        };
        let want = json!({
            "requestContext": {"requestId": "r", "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:f",
                "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 2},
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": "2023-11-14T22:13:21.000Z",
            "KinesisBatchInfo": {"shardId": "shardId-000000000000", "startSequenceNumber": "1", "endSequenceNumber": "3",
                "approximateArrivalOfFirstRecord": "2023-11-14T22:13:20.000Z",
                "approximateArrivalOfLastRecord": "2023-11-14T22:13:20.500Z",
                "batchSize": 3, "streamArn": "arn:aws:kinesis:us-east-1:123456789012:stream/s"},
        });
        assert_eq!(failure_record(&b), want);
        let partial = failure_record(&FailedBatch { function_error: None, ..b.clone() });
        assert_eq!(partial["responseContext"], json!({"statusCode": 200, "executedVersion": "$LATEST", "functionError": null}));
        let aged = failure_record(&FailedBatch { attempts: 8, condition: "RecordAgeExceeded", ..b.clone() });
        assert!(aged.get("responseContext").is_none());
        assert_eq!(aged["requestContext"]["approximateInvokeCount"], 8);
        let ddb = failure_record(&FailedBatch { kind: StreamKind::DynamoDb, attempts: 0, condition: "RecordAgeExceeded", ..b });
        assert!(ddb.get("DDBStreamBatchInfo").is_some() && ddb.get("responseContext").is_none());
        assert_eq!(ddb["requestContext"]["approximateInvokeCount"], 1);
        assert_eq!(ddb["DDBStreamBatchInfo"]["approximateArrivalOfFirstRecord"], "2023-11-14T22:13:20Z");
        assert_eq!(ddb["DDBStreamBatchInfo"]["approximateArrivalOfLastRecord"], "2023-11-14T22:13:20Z");
    }
}

//! Event source mappings: a queue or a stream polled on a function's behalf, in batches.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventSourceMapping {
    pub uuid: String,
    pub event_source_arn: String,
    /// The function as named at creation: plain name, or with a qualifier.
    pub function: String,
    pub qualifier: Option<String>,
    pub enabled: bool,
    pub batch_size: u32,
    pub maximum_batching_window_secs: u32,
    pub report_batch_item_failures: bool,
    pub maximum_concurrency: Option<u32>,
    pub last_modified_ms: i64,
    #[serde(default)]
    pub last_processing_result: String,
    /// FilterCriteria patterns (EventBridge syntax); a message matching none is dropped.
    #[serde(default)]
    pub filters: Vec<String>,
    /// Stream sources (Kinesis, DynamoDB Streams) only: where to start and what to do
    /// with a failing batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamSettings>,
    /// Tags (TagResource on the mapping's ARN, or CreateEventSourceMapping's `Tags`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tags: std::collections::BTreeMap<String, String>,
}

/// A stream mapping's settings (AWS's names in the comments).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamSettings {
    /// StartingPosition: TRIM_HORIZON, LATEST or AT_TIMESTAMP.
    pub starting_position: String,
    /// StartingPositionTimestamp (epoch seconds), with AT_TIMESTAMP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_position_timestamp: Option<f64>,
    /// MaximumRetryAttempts: -1 retries until the records expire.
    pub maximum_retry_attempts: i32,
    /// MaximumRecordAgeInSeconds: -1 keeps records until they expire in the stream.
    pub maximum_record_age_secs: i32,
    /// BisectBatchOnFunctionError.
    pub bisect_on_error: bool,
    /// DestinationConfig.OnFailure.Destination: an SQS queue or SNS topic ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<String>,
    /// ParallelizationFactor: batches of one shard in flight at once (1–10), in order per
    /// partition key.
    #[serde(default = "one")]
    pub parallelization_factor: u32,
    /// TumblingWindowInSeconds: 0 (no windows) to 900.
    #[serde(default)]
    pub tumbling_window_secs: u32,
}

fn one() -> u32 {
    1
}

/// AWS's limits for stream mappings.
pub mod stream_limits {
    pub const DEFAULT_BATCH: u32 = 100;
    pub const MAX_BATCH: u32 = 10_000;
    pub const MAX_WINDOW_SECS: u32 = 300;
    pub const MAX_RETRY_ATTEMPTS: i32 = 10_000;
    /// MaximumRecordAgeInSeconds other than -1 lies in 60..=604800.
    pub const MIN_RECORD_AGE_SECS: i32 = 60;
    pub const MAX_RECORD_AGE_SECS: i32 = 604_800;
    pub const MAX_PARALLELIZATION: u32 = 10;
    pub const MAX_TUMBLING_WINDOW_SECS: u32 = 900;
}

/// AWS's SQS limits for mappings.
pub mod sqs_limits {
    pub const DEFAULT_BATCH: u32 = 10;
    pub const MAX_BATCH_STANDARD: u32 = 10_000;
    pub const MAX_BATCH_FIFO: u32 = 10;
    pub const MAX_WINDOW_SECS: u32 = 300;
    pub const MIN_CONCURRENCY: u32 = 2;
    pub const MAX_CONCURRENCY: u32 = 1_000;
}

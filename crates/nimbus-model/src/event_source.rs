//! Event source mappings: a queue polled on a function's behalf, in batches.

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

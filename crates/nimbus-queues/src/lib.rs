//! Nimbus's SQS-compatible queues: the domain, no wire formats. [`QueueService`] holds
//! queues and messages durably in SQLite (`<data>/queues.db`) and implements the SQS actions
//! with AWS's semantics; the HTTP edge (`nimbus-api`) parses requests into its typed inputs
//! and renders its typed outputs. Other parts of Nimbus (event source mappings, async
//! invocation DLQs) use the ARN-addressed calls: [`QueueService::send`],
//! [`QueueService::receive`], [`QueueService::delete`], [`QueueService::change_visibility`],
//! [`QueueService::queue_by_arn`].

pub mod attributes;
mod error;
pub mod message;
pub mod metrics;
mod service;
mod store;

pub use error::QueueError;
pub use message::{AttributeValue, MessageAttributes};
pub use metrics::{QueueGauges, QueueMetric, QueueMetrics};
pub use service::queue_name_from_url;
pub use service::{
    BatchEntry, BatchFailure, BatchOutcome, Clock, CreateQueue, QueueInfo, QueueService, ReceiveRequest, ReceivedMessage, SendMessage,
    SendResult, SystemClock, VisibilityChange,
};

#[cfg(test)]
mod tests;

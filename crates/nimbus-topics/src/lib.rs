//! Nimbus's SNS-compatible topics: the domain, no wire formats. [`TopicService`] keeps
//! topics and subscriptions durably in SQLite (`<data>/topics.db`), evaluates filter
//! policies, and fans published messages out to Lambda functions, queues (through the
//! [`Deliver`] trait the server implements) and HTTP endpoints, after the message is on
//! disk. The HTTP edge (`nimbus-api`) parses SNS requests into its typed inputs.

pub mod attributes;
mod dispatch;
mod error;
pub mod filter;
pub mod message;
pub mod metrics;
mod service;
mod store;

pub use dispatch::{Deliver, QueueMessage, Undelivered};
pub use error::TopicError;
pub use filter::{FilterPolicy, Scope};
pub use message::{MessageAttribute, MessageAttributes};
pub use metrics::{TopicMetric, TopicMetrics};
pub use service::{
    BatchFailure, BatchOutcome, PublishInput, PublishResult, SubscribeInput, SubscriptionSummary, TopicConfig, TopicService,
};

#[cfg(test)]
mod tests;

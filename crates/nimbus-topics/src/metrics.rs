//! What the topic service counts for CloudWatch's `AWS/SNS` namespace, handed to a
//! [`TopicMetrics`] observer (the binary's writes into the account's metric store), so the
//! topics know nothing of the store: publishes with their sizes when they are on disk, each
//! subscription's delivery by its outcome after retries, and the subscriptions a filter
//! policy kept a message from.

/// The `AWS/SNS` metrics by topic, by AWS's names and units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicMetric {
    /// A message published (Publish, a batch's successful entries, Nimbus's own publishes);
    /// a FIFO duplicate is not.
    NumberOfMessagesPublished,
    /// One value per message published: its size (body and attributes).
    PublishSize,
    /// A subscription got its copy.
    NumberOfNotificationsDelivered,
    /// A subscription did not, after every retry (or at once, when retrying cannot help).
    NumberOfNotificationsFailed,
    /// A subscription's filter policy rejected the message.
    NumberOfNotificationsFilteredOut,
}

impl TopicMetric {
    /// The metric's name in `AWS/SNS`.
    pub fn name(self) -> &'static str {
        match self {
            TopicMetric::NumberOfMessagesPublished => "NumberOfMessagesPublished",
            TopicMetric::PublishSize => "PublishSize",
            TopicMetric::NumberOfNotificationsDelivered => "NumberOfNotificationsDelivered",
            TopicMetric::NumberOfNotificationsFailed => "NumberOfNotificationsFailed",
            TopicMetric::NumberOfNotificationsFilteredOut => "NumberOfNotificationsFilteredOut",
        }
    }

    /// The unit AWS publishes it in.
    pub fn unit(self) -> &'static str {
        match self {
            TopicMetric::PublishSize => "Bytes",
            _ => "Count",
        }
    }
}

/// Receives the topic service's datapoints; called on the publish and delivery paths, so it
/// must be cheap (no IO).
pub trait TopicMetrics: Send + Sync {
    /// One datapoint of `metric` for the topic named `topic`, at `timestamp_ms`.
    fn record(&self, topic: &str, metric: TopicMetric, value: f64, timestamp_ms: i64);
}

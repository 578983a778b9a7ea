//! What the queue service counts for CloudWatch's `AWS/SQS` namespace, handed to a
//! [`QueueMetrics`] observer (the binary's writes into the account's metric store), so the
//! queues know nothing of the store: the counts of what the API did (sends, receives,
//! deletes) as they happen, and the queue gauges AWS reports each minute
//! ([`QueueService::record_gauges`](crate::QueueService::record_gauges)).

/// The `AWS/SQS` metrics, by AWS's names and units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueMetric {
    /// Messages a send added to the queue (SendMessage, a batch's successful entries, and
    /// what SNS, EventBridge and Lambda sent into it).
    NumberOfMessagesSent,
    /// One value per message added: its size (body and attributes).
    SentMessageSize,
    /// Messages a receive returned.
    NumberOfMessagesReceived,
    /// A receive that returned nothing.
    NumberOfEmptyReceives,
    /// Successful deletions (with a valid receipt handle, repeated ones too, as AWS counts).
    NumberOfMessagesDeleted,
    ApproximateNumberOfMessagesVisible,
    ApproximateNumberOfMessagesNotVisible,
    ApproximateNumberOfMessagesDelayed,
    /// Seconds since the oldest message still in the queue was sent.
    ApproximateAgeOfOldestMessage,
}

impl QueueMetric {
    /// The metric's name in `AWS/SQS`.
    pub fn name(self) -> &'static str {
        match self {
            QueueMetric::NumberOfMessagesSent => "NumberOfMessagesSent",
            QueueMetric::SentMessageSize => "SentMessageSize",
            QueueMetric::NumberOfMessagesReceived => "NumberOfMessagesReceived",
            QueueMetric::NumberOfEmptyReceives => "NumberOfEmptyReceives",
            QueueMetric::NumberOfMessagesDeleted => "NumberOfMessagesDeleted",
            QueueMetric::ApproximateNumberOfMessagesVisible => "ApproximateNumberOfMessagesVisible",
            QueueMetric::ApproximateNumberOfMessagesNotVisible => "ApproximateNumberOfMessagesNotVisible",
            QueueMetric::ApproximateNumberOfMessagesDelayed => "ApproximateNumberOfMessagesDelayed",
            QueueMetric::ApproximateAgeOfOldestMessage => "ApproximateAgeOfOldestMessage",
        }
    }

    /// The unit AWS publishes it in.
    pub fn unit(self) -> &'static str {
        match self {
            QueueMetric::SentMessageSize => "Bytes",
            QueueMetric::ApproximateAgeOfOldestMessage => "Seconds",
            _ => "Count",
        }
    }
}

/// Receives the queue service's datapoints; called on the request path, so it must be
/// cheap (no IO).
pub trait QueueMetrics: Send + Sync {
    /// One datapoint of `metric` for the queue named `queue`, at `timestamp_ms`.
    fn record(&self, queue: &str, metric: QueueMetric, value: f64, timestamp_ms: i64);
}

/// One queue's gauges at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueGauges {
    pub queue: String,
    pub visible: u64,
    pub not_visible: u64,
    pub delayed: u64,
    /// Seconds; 0 for an empty queue.
    pub oldest_age_s: u64,
}

impl QueueGauges {
    /// A queue's gauges at `now` (ms) from its counts (visible, in flight, delayed) and the
    /// send time of its oldest message.
    pub(crate) fn at(now: i64, queue: String, (visible, not_visible, delayed): (i64, i64, i64), oldest_sent: Option<i64>) -> QueueGauges {
        QueueGauges {
            queue,
            visible: visible as u64,
            not_visible: not_visible as u64,
            delayed: delayed as u64,
            oldest_age_s: oldest_sent.map_or(0, |t| ((now - t).max(0) / 1000) as u64),
        }
    }

    /// The gauges as `AWS/SQS` datapoints.
    pub fn points(&self) -> [(QueueMetric, f64); 4] {
        [
            (QueueMetric::ApproximateNumberOfMessagesVisible, self.visible as f64),
            (QueueMetric::ApproximateNumberOfMessagesNotVisible, self.not_visible as f64),
            (QueueMetric::ApproximateNumberOfMessagesDelayed, self.delayed as f64),
            (QueueMetric::ApproximateAgeOfOldestMessage, self.oldest_age_s as f64),
        ]
    }
}

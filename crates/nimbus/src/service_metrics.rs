//! The built-in services' CloudWatch metrics (`AWS/SQS`, `AWS/SNS`, `AWS/Events`): each
//! service reports to a small observer of its own crate, and [`Recorder`] turns what it
//! hears into datapoints of the account's metric store (summed in memory, written with the
//! store's next flush), so no service depends on the store.

use std::sync::{Arc, Weak};
use std::time::Duration;

use nimbus_metrics::cloudwatch::{Aggregate, MetricStore, SeriesKey};

/// Writes the services' datapoints into one account's metric store.
pub struct Recorder(Weak<MetricStore>);

impl Recorder {
    fn point(&self, namespace: &str, metric: &str, unit: &str, dimensions: &[(&str, &str)], value: f64, timestamp_ms: i64) {
        let Some(store) = self.0.upgrade() else { return };
        let dimensions = dimensions.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        store.record(SeriesKey::new(namespace, metric, dimensions), unit, timestamp_ms, Aggregate::of(value, 1.0));
    }
}

impl nimbus_queues::QueueMetrics for Recorder {
    fn record(&self, queue: &str, metric: nimbus_queues::QueueMetric, value: f64, timestamp_ms: i64) {
        self.point("AWS/SQS", metric.name(), metric.unit(), &[("QueueName", queue)], value, timestamp_ms);
    }
}

impl nimbus_topics::TopicMetrics for Recorder {
    fn record(&self, topic: &str, metric: nimbus_topics::TopicMetric, value: f64, timestamp_ms: i64) {
        self.point("AWS/SNS", metric.name(), metric.unit(), &[("TopicName", topic)], value, timestamp_ms);
    }
}

impl nimbus_events::EventsMetrics for Recorder {
    fn record(&self, metric: nimbus_events::EventsMetric, dimensions: &[(&'static str, &str)], value: f64, timestamp_ms: i64) {
        self.point("AWS/Events", metric.name(), metric.unit(), dimensions, value, timestamp_ms);
    }
}

/// Hands every service of one account a recorder into `store`, and samples the queues'
/// gauges every `gauge_interval` (AWS: each minute).
pub fn wire(
    store: &Arc<MetricStore>,
    queues: &Arc<nimbus_queues::QueueService>,
    topics: &nimbus_topics::TopicService,
    events: &nimbus_events::EventsService,
    gauge_interval: Duration,
) {
    let recorder = Arc::new(Recorder(Arc::downgrade(store)));
    queues.record_into(recorder.clone());
    topics.record_into(recorder.clone());
    events.record_into(recorder);
    let queues = Arc::downgrade(queues);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(gauge_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(queues) = queues.upgrade() else { break };
            if let Err(e) = queues.record_gauges().await {
                tracing::warn!("sampling the queues' gauges: {e}");
            }
        }
    });
}

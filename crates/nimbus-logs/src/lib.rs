//! Function logs kept the way CloudWatch Logs shapes them: log groups (`/aws/lambda/<name>`)
//! holding log streams (one per execution environment) of timestamped events. Writes go
//! through one ordered channel to a writer thread, so the invoke path never waits on disk;
//! events are appended to one JSON-lines file per stream and survive restarts. Groups and
//! streams can also be made, tagged, given a retention (swept) and written to through the
//! CloudWatch Logs API; their metadata is kept beside their events (`meta`). Subscription
//! filters send the events that match them to a Lambda function (`subscription`); metric
//! filters turn them into CloudWatch datapoints (`metric_filter`). Filter patterns (terms,
//! JSON, space-delimited) are parsed once and matched per event (`filter`).

mod filter;
mod meta;
pub mod metric_filter;
pub mod rules;
mod shared;
mod store;
pub mod subscription;

pub use filter::{FilterPattern, Matched, PatternError};
pub use metric_filter::{MetricDatapoint, MetricFilter, MetricTransformation, MetricValues};
pub use store::{
    now_ms, Cursor, FilterPage, GroupInfo, LogError, LogStore, Position, StoredEvent, StreamInfo, StreamPage, PAGE_BYTES, SWEEP_EVERY,
};
pub use subscription::{Deliver, SubscriptionFilter};

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// What each group that has some keeps of a kind of filter (subscription or metric), looked
/// up for every line emitted or put: a read lock and an `Arc` clone.
pub(crate) struct ByGroup<T>(RwLock<HashMap<String, Arc<[T]>>>);

impl<T> Default for ByGroup<T> {
    fn default() -> Self {
        ByGroup(RwLock::default())
    }
}

impl<T> ByGroup<T> {
    /// Sets (or, with none, forgets) a group's items.
    pub(crate) fn set(&self, group: &str, items: Vec<T>) {
        let mut map = self.0.write().unwrap_or_else(|p| p.into_inner());
        if items.is_empty() {
            map.remove(group);
        } else {
            map.insert(group.to_string(), items.into());
        }
    }

    /// The groups that have some.
    pub(crate) fn groups(&self) -> Vec<String> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect()
    }

    pub(crate) fn get(&self, group: &str) -> Option<Arc<[T]>> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).get(group).cloned()
    }
}

/// One line of log output, as it is sent to the writer.
pub(crate) enum Command {
    Append {
        group: Arc<str>,
        stream: Arc<str>,
        timestamp: i64,
        message: String,
    },
    Flush(std::sync::mpsc::SyncSender<()>),
    /// Answered once the lines sent before it would survive this process being killed:
    /// in their files on disk, or in the shared store's spool.
    Kept(tokio::sync::oneshot::Sender<()>),
    /// A change run on the writer thread, in order with the lines (it answers for itself).
    Run(Box<dyn FnOnce(&mut store::Writer) + Send>),
}

/// Someone waiting for the lines sent before them to be written: a blocking caller or a task.
pub(crate) enum Waiter {
    Thread(std::sync::mpsc::SyncSender<()>),
    Task(tokio::sync::oneshot::Sender<()>),
}

impl Waiter {
    pub(crate) fn done(self) {
        match self {
            Waiter::Thread(tx) => {
                let _ = tx.send(());
            }
            Waiter::Task(tx) => {
                let _ = tx.send(());
            }
        }
    }
}

/// Sees the log events that carry CloudWatch's embedded metric format (a `"_aws"` member):
/// `(group, timestamp, message)`. Called as they are emitted, so it must be quick.
pub type MetricLines = Arc<dyn Fn(&str, i64, &str) + Send + Sync>;

/// A cheap handle that appends events to one log stream, in order.
#[derive(Clone)]
pub struct LogSink {
    tx: tokio::sync::mpsc::UnboundedSender<Command>,
    group: Arc<str>,
    stream: Arc<str>,
    metric_lines: Option<MetricLines>,
    subscriptions: Arc<subscription::Subscriptions>,
    metric_filters: Arc<metric_filter::MetricFilters>,
}

impl LogSink {
    pub fn emit(&self, timestamp: i64, message: String) {
        if let Some(observe) = &self.metric_lines {
            if message.contains("\"_aws\"") {
                observe(&self.group, timestamp, &message);
            }
        }
        self.subscriptions.offer(&self.group, &self.stream, timestamp, &message);
        self.metric_filters.offer(&self.group, [(timestamp, message.as_str())]);
        let _ = self.tx.send(Command::Append { group: self.group.clone(), stream: self.stream.clone(), timestamp, message });
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    pub fn stream(&self) -> &str {
        &self.stream
    }
}

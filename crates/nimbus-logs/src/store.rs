//! The on-disk log store: `<root>/<hex group>/<hex stream>.jsonl`, one event per line, and
//! an in-memory index of groups and streams rebuilt from the files at start.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::meta::{self, GroupMeta};
use crate::metric_filter::{MetricFilter, MetricFilters, MAX_METRIC_FILTERS};
use crate::subscription::{Subscriptions, MAX_FILTERS};
use crate::{Command, FilterPattern, LogSink, SubscriptionFilter};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredEvent {
    #[serde(rename = "t")]
    pub timestamp: i64,
    #[serde(rename = "i")]
    pub ingestion_time: i64,
    #[serde(rename = "m")]
    pub message: String,
}

/// A stored event read without copying its message (unless it has escapes).
#[derive(Deserialize)]
struct EventRef<'a> {
    t: i64,
    i: i64,
    #[serde(borrow)]
    m: std::borrow::Cow<'a, str>,
}

#[derive(Debug, Clone, Default)]
pub struct StreamInfo {
    pub name: String,
    pub creation_time: i64,
    /// None while the stream holds no events (one CreateLogStream made).
    pub first_event: Option<i64>,
    pub last_event: Option<i64>,
    pub last_ingestion: Option<i64>,
    pub stored_bytes: u64,
}

impl StreamInfo {
    fn empty(name: &str, creation_time: i64) -> StreamInfo {
        StreamInfo { name: name.to_string(), creation_time, ..Default::default() }
    }

    fn add(&mut self, e: &StoredEvent) {
        self.first_event = Some(self.first_event.map_or(e.timestamp, |t| t.min(e.timestamp)));
        self.last_event = Some(self.last_event.map_or(e.timestamp, |t| t.max(e.timestamp)));
        self.last_ingestion = Some(e.ingestion_time);
        self.stored_bytes += e.message.len() as u64;
    }
}

#[derive(Debug, Clone, Default)]
pub struct GroupInfo {
    pub name: String,
    pub creation_time: i64,
    pub stored_bytes: u64,
    pub retention_in_days: Option<u32>,
    pub metric_filter_count: usize,
}

#[derive(Default)]
struct GroupIndex {
    creation_time: i64,
    streams: BTreeMap<String, StreamInfo>,
    retention: Option<u32>,
    tags: BTreeMap<String, String>,
    /// Streams CreateLogStream made (kept in the group's metadata even while empty).
    created: BTreeMap<String, i64>,
    /// Whether the group has a metadata file (it then exists even with no streams).
    has_meta: bool,
    filters: Vec<SubscriptionFilter>,
    metric_filters: Vec<MetricFilter>,
}

impl GroupIndex {
    fn meta(&self, name: &str) -> GroupMeta {
        GroupMeta {
            name: Some(name.to_string()),
            creation_time: self.creation_time,
            retention_in_days: self.retention,
            tags: self.tags.clone(),
            streams: self.created.clone(),
            subscription_filters: self.filters.clone(),
            metric_filters: self.metric_filters.clone(),
        }
    }
}

type Index = RwLock<BTreeMap<String, GroupIndex>>;

/// Why a change to the store was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogError {
    GroupExists,
    GroupMissing,
    StreamExists,
    StreamMissing,
    FilterMissing,
    MetricFilterMissing,
    /// A group's subscription (or metric) filters are at AWS's limit.
    LimitExceeded,
    /// The disk failed us (the message says how).
    Io(String),
}

impl std::fmt::Display for LogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogError::GroupExists => f.write_str("The specified log group already exists"),
            LogError::GroupMissing => f.write_str("The specified log group does not exist."),
            LogError::StreamExists => f.write_str("The specified log stream already exists"),
            LogError::StreamMissing => f.write_str("The specified log stream does not exist."),
            LogError::FilterMissing => f.write_str("The specified subscription filter does not exist."),
            LogError::MetricFilterMissing => f.write_str("The specified metric filter does not exist."),
            LogError::LimitExceeded => f.write_str("Resource limit exceeded."),
            LogError::Io(e) => write!(f, "log store: {e}"),
        }
    }
}

impl From<std::io::Error> for LogError {
    fn from(e: std::io::Error) -> LogError {
        LogError::Io(e.to_string())
    }
}

pub struct LogStore {
    root: PathBuf,
    index: Arc<Index>,
    tx: tokio::sync::mpsc::UnboundedSender<Command>,
    /// Given the embedded-metric lines of every sink made after it is set.
    metric_lines: RwLock<Option<crate::MetricLines>>,
    /// The groups' subscription filters, shared with every sink.
    subscriptions: Arc<Subscriptions>,
    /// The groups' metric filters, shared with every sink.
    metric_filters: Arc<MetricFilters>,
    /// Where groups, streams and events are when nodes share a database (else on disk).
    shared: Option<Arc<crate::shared::Shared>>,
}

/// The clock the store stamps ingestion with (milliseconds since the epoch).
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Names longer than this are kept under a digest: hex doubles a name's length, and a file
/// name holds at most 255 bytes.
const MAX_HEX_NAME: usize = 100;

/// A group's directory or a stream's file name: the name in hex, or for a long one `x` and a
/// digest of it (the name itself then lives in the group's metadata, see [`meta`]).
fn encode(name: &str) -> String {
    if name.len() <= MAX_HEX_NAME {
        return name.bytes().map(|b| format!("{b:02x}")).collect();
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(name.as_bytes());
    format!("x{}", digest[..16].iter().map(|b| format!("{b:02x}")).collect::<String>())
}

fn decode(hex: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> = (0..hex.len() / 2).map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()).collect();
    String::from_utf8(bytes?).ok()
}

/// How often the retention sweep runs (besides at start and when a policy is set): events
/// past their group's retention are gone within this long.
pub const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

impl LogStore {
    /// Opens the store under `root`, indexes what is there, and starts the writer thread (and
    /// the retention sweep, run once now and then every [`SWEEP_EVERY`]).
    pub fn open(root: &Path) -> std::io::Result<Arc<LogStore>> {
        std::fs::create_dir_all(root)?;
        let index = scan(root)?;
        let subscriptions = Arc::new(Subscriptions::default());
        let metric_filters = Arc::new(MetricFilters::default());
        for (name, g) in &index {
            subscriptions.set(name, &g.filters);
            metric_filters.set(name, &g.metric_filters);
        }
        let index = Arc::new(RwLock::new(index));
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let writer = Writer {
            root: root.to_path_buf(),
            index: index.clone(),
            files: OpenStreams::new(MAX_OPEN_FILES, IDLE_CLOSE),
            reserve: File::open("/dev/null").ok(),
            open_deadline: None,
            subscriptions: subscriptions.clone(),
            metric_filters: metric_filters.clone(),
        };
        std::thread::Builder::new().name("nimbus-log-writer".into()).spawn(move || writer.run(rx))?;
        let _ = tx.send(Command::Run(Box::new(|w| w.sweep(now_ms(), None))));
        let weak = tx.downgrade();
        std::thread::Builder::new().name("nimbus-log-sweep".into()).spawn(move || loop {
            std::thread::sleep(SWEEP_EVERY);
            let Some(tx) = weak.upgrade() else { break };
            if tx.send(Command::Run(Box::new(|w| w.sweep(now_ms(), None)))).is_err() {
                break;
            }
        })?;
        Ok(Arc::new(LogStore {
            root: root.to_path_buf(),
            index,
            tx,
            metric_lines: RwLock::new(None),
            subscriptions,
            metric_filters,
            shared: None,
        }))
    }

    /// Opens the store of nodes that share the PostgreSQL database at `url` (`account`'s
    /// schema): groups, streams and events are there (`crate::shared`), nothing under
    /// `root` is read. Starts the writer and the retention sweep as [`LogStore::open`] does.
    pub async fn open_shared(root: &Path, url: &str, account: &str) -> Result<Arc<LogStore>, LogError> {
        let subscriptions = Arc::new(Subscriptions::default());
        let metric_filters = Arc::new(MetricFilters::default());
        // This node's connections' name, which the change feed's announcements quote.
        let node = format!("nimbus-logs-{}", uuid::Uuid::new_v4().simple());
        let shared = crate::shared::Shared::open(url, account, &node, subscriptions.clone(), metric_filters.clone()).await?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        // Lambda's lines on their way to the database are spooled under `root` first; what
        // a killed run left there goes first.
        let spool = root.join("spool");
        if let Err(e) = shared.recover_spool(&spool).await {
            // Left in the spool for the next start.
            tracing::warn!("log spool {}: {e}", spool.display());
        }
        let writer = shared.clone();
        std::thread::Builder::new().name("nimbus-log-writer".into()).spawn(move || writer.write_lines(spool, rx))?;
        let sweeper = Arc::downgrade(&shared);
        std::thread::Builder::new().name("nimbus-log-sweep".into()).spawn(move || loop {
            {
                let Some(shared) = sweeper.upgrade() else { break };
                if let Err(e) = shared.sweep(now_ms(), None) {
                    tracing::warn!("log retention sweep: {e}");
                }
            }
            std::thread::sleep(SWEEP_EVERY);
        })?;
        Ok(Arc::new(LogStore {
            root: root.to_path_buf(),
            index: Arc::default(),
            tx,
            metric_lines: RwLock::new(None),
            subscriptions,
            metric_filters,
            shared: Some(shared),
        }))
    }

    pub fn sink(&self, group: &str, stream: &str) -> LogSink {
        let metric_lines = self.metric_lines.read().unwrap_or_else(|p| p.into_inner()).clone();
        LogSink {
            tx: self.tx.clone(),
            group: group.into(),
            stream: stream.into(),
            metric_lines,
            subscriptions: self.subscriptions.clone(),
            metric_filters: self.metric_filters.clone(),
        }
    }

    /// Starts delivering the events that match subscription filters: batches go to `deliver`
    /// (which queues the destination's invocation), naming `owner` as their account.
    pub fn on_subscribed(&self, owner: &str, deliver: crate::Deliver) -> std::io::Result<()> {
        self.subscriptions.start(owner.to_string(), deliver)
    }

    /// PutSubscriptionFilter: adds a filter to a group, or replaces the one of its name; a
    /// group has at most [`MAX_FILTERS`].
    pub fn put_subscription_filter(&self, group: &str, filter: SubscriptionFilter) -> Result<(), LogError> {
        if let Some(shared) = &self.shared {
            return shared.put_subscription_filter(group, filter);
        }
        let group = group.to_string();
        self.on_writer(move |w| {
            {
                let index = w.index.read().unwrap_or_else(|p| p.into_inner());
                let g = index.get(&group).ok_or(LogError::GroupMissing)?;
                if !g.filters.iter().any(|f| f.filter_name == filter.filter_name) && g.filters.len() >= MAX_FILTERS {
                    return Err(LogError::LimitExceeded);
                }
            }
            w.change_meta(&group, |g| match g.filters.iter_mut().find(|f| f.filter_name == filter.filter_name) {
                Some(old) => *old = filter,
                None => g.filters.push(filter),
            })
        })
    }

    /// DeleteSubscriptionFilter.
    pub fn delete_subscription_filter(&self, group: &str, name: &str) -> Result<(), LogError> {
        if let Some(shared) = &self.shared {
            return shared.delete_subscription_filter(group, name);
        }
        let (group, name) = (group.to_string(), name.to_string());
        self.on_writer(move |w| {
            {
                let index = w.index.read().unwrap_or_else(|p| p.into_inner());
                let g = index.get(&group).ok_or(LogError::GroupMissing)?;
                if !g.filters.iter().any(|f| f.filter_name == name) {
                    return Err(LogError::FilterMissing);
                }
            }
            w.change_meta(&group, |g| g.filters.retain(|f| f.filter_name != name))
        })
    }

    /// Starts turning the events that match metric filters into datapoints for `observe`.
    pub fn on_metric_values(&self, observe: crate::MetricValues) {
        self.metric_filters.start(observe);
    }

    /// PutMetricFilter: adds a filter to a group, or replaces the one of its name; a group has
    /// at most [`MAX_METRIC_FILTERS`].
    pub fn put_metric_filter(&self, group: &str, filter: MetricFilter) -> Result<(), LogError> {
        if let Some(shared) = &self.shared {
            return shared.put_metric_filter(group, filter);
        }
        let group = group.to_string();
        self.on_writer(move |w| {
            {
                let index = w.index.read().unwrap_or_else(|p| p.into_inner());
                let g = index.get(&group).ok_or(LogError::GroupMissing)?;
                if !g.metric_filters.iter().any(|f| f.filter_name == filter.filter_name) && g.metric_filters.len() >= MAX_METRIC_FILTERS {
                    return Err(LogError::LimitExceeded);
                }
            }
            w.change_meta(&group, |g| match g.metric_filters.iter_mut().find(|f| f.filter_name == filter.filter_name) {
                Some(old) => *old = filter,
                None => g.metric_filters.push(filter),
            })
        })
    }

    /// DeleteMetricFilter.
    pub fn delete_metric_filter(&self, group: &str, name: &str) -> Result<(), LogError> {
        if let Some(shared) = &self.shared {
            return shared.delete_metric_filter(group, name);
        }
        let (group, name) = (group.to_string(), name.to_string());
        self.on_writer(move |w| {
            {
                let index = w.index.read().unwrap_or_else(|p| p.into_inner());
                let g = index.get(&group).ok_or(LogError::GroupMissing)?;
                if !g.metric_filters.iter().any(|f| f.filter_name == name) {
                    return Err(LogError::MetricFilterMissing);
                }
            }
            w.change_meta(&group, |g| g.metric_filters.retain(|f| f.filter_name != name))
        })
    }

    /// The metric filters of one group (None if it does not exist) or of all, with their
    /// groups, by filter name then group name.
    pub fn metric_filters(&self, group: Option<&str>) -> Result<Option<Vec<(String, MetricFilter)>>, LogError> {
        if let Some(shared) = &self.shared {
            return shared.metric_filters(group);
        }
        let index = self.index.read().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<(String, MetricFilter)> = match group {
            Some(name) => match index.get(name) {
                Some(g) => g,
                None => return Ok(None),
            }
            .metric_filters
            .iter()
            .map(|f| (name.to_string(), f.clone()))
            .collect(),
            None => index.iter().flat_map(|(name, g)| g.metric_filters.iter().map(move |f| (name.clone(), f.clone()))).collect(),
        };
        out.sort_by(|a, b| (&a.1.filter_name, &a.0).cmp(&(&b.1.filter_name, &b.0)));
        Ok(Some(out))
    }

    /// A group's subscription filters, by name, or None if the group does not exist.
    pub fn subscription_filters(&self, group: &str) -> Result<Option<Vec<SubscriptionFilter>>, LogError> {
        if let Some(shared) = &self.shared {
            return shared.subscription_filters(group);
        }
        let index = self.index.read().unwrap_or_else(|p| p.into_inner());
        let Some(g) = index.get(group) else { return Ok(None) };
        let mut filters = g.filters.clone();
        filters.sort_by(|a, b| a.filter_name.cmp(&b.filter_name));
        Ok(Some(filters))
    }

    /// Hands the lines in CloudWatch's embedded metric format to `observe` (the account's
    /// metrics), as CloudWatch Logs turns them into metrics.
    pub fn on_metric_lines(&self, observe: crate::MetricLines) {
        *self.metric_lines.write().unwrap_or_else(|p| p.into_inner()) = Some(observe);
    }

    /// Waits until everything sent before this call is written.
    pub fn flush(&self) {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        if self.tx.send(Command::Flush(tx)).is_ok() {
            let _ = rx.recv_timeout(std::time::Duration::from_secs(5));
        }
    }

    /// Waits (at most five seconds) until everything sent before this call would survive
    /// the server being killed: written to its file here, spooled by a shared store (which
    /// writes it to the database later). Whoever acknowledges work a function did (an async
    /// event completed, a queue message deleted) waits for this first, so the work's lines
    /// are not lost with a killed node.
    pub async fn kept(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.tx.send(Command::Kept(tx)).is_ok() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), rx).await;
        }
    }

    /// Runs `f` on the writer thread, after everything sent before, and waits for its answer:
    /// every change but Lambda's own lines goes this way, so changes never race the writer.
    fn on_writer<T: Send + 'static>(&self, f: impl FnOnce(&mut Writer) -> Result<T, LogError> + Send + 'static) -> Result<T, LogError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let stopped = || LogError::Io("the log writer has stopped".into());
        self.tx
            .send(Command::Run(Box::new(move |w| {
                let _ = tx.send(f(w));
            })))
            .map_err(|_| stopped())?;
        rx.recv().map_err(|_| stopped())?
    }

    /// CreateLogGroup.
    pub fn create_group(&self, group: &str, tags: BTreeMap<String, String>) -> Result<(), LogError> {
        if let Some(shared) = &self.shared {
            return shared.create_group(group, tags);
        }
        let group = group.to_string();
        self.on_writer(move |w| w.create_group(&group, tags))
    }

    /// DeleteLogGroup: the group, its streams and their events.
    pub fn delete_group(&self, group: &str) -> Result<(), LogError> {
        if let Some(shared) = &self.shared {
            return shared.delete_group(group);
        }
        let group = group.to_string();
        self.on_writer(move |w| w.delete_group(&group))
    }

    /// CreateLogStream.
    pub fn create_stream(&self, group: &str, stream: &str) -> Result<(), LogError> {
        if let Some(shared) = &self.shared {
            return shared.create_stream(group, stream);
        }
        let (group, stream) = (group.to_string(), stream.to_string());
        self.on_writer(move |w| w.create_stream(&group, &stream))
    }

    /// DeleteLogStream.
    pub fn delete_stream(&self, group: &str, stream: &str) -> Result<(), LogError> {
        if let Some(shared) = &self.shared {
            return shared.delete_stream(group, stream);
        }
        let (group, stream) = (group.to_string(), stream.to_string());
        self.on_writer(move |w| w.delete_stream(&group, &stream))
    }

    /// PutRetentionPolicy (Some) or DeleteRetentionPolicy (None); setting one sweeps the
    /// group at once.
    pub fn set_retention(&self, group: &str, days: Option<u32>) -> Result<(), LogError> {
        if let Some(shared) = &self.shared {
            shared.change_meta(group, |g| {
                g.retention_in_days = days;
                Ok(())
            })?;
            return match days {
                Some(_) => shared.sweep(now_ms(), Some(group)),
                None => Ok(()),
            };
        }
        let group = group.to_string();
        self.on_writer(move |w| {
            w.change_meta(&group, |g| g.retention = days)?;
            if days.is_some() {
                w.sweep(now_ms(), Some(&group));
            }
            Ok(())
        })
    }

    /// Adds or replaces tags on a group.
    pub fn tag(&self, group: &str, tags: BTreeMap<String, String>) -> Result<(), LogError> {
        if let Some(shared) = &self.shared {
            return shared.change_meta(group, |g| {
                g.tags.extend(tags);
                Ok(())
            });
        }
        let group = group.to_string();
        self.on_writer(move |w| w.change_meta(&group, |g| g.tags.extend(tags)))
    }

    /// Removes tags from a group (keys it does not have are ignored).
    pub fn untag(&self, group: &str, keys: Vec<String>) -> Result<(), LogError> {
        if let Some(shared) = &self.shared {
            return shared.change_meta(group, |g| {
                g.tags.retain(|k, _| !keys.contains(k));
                Ok(())
            });
        }
        let group = group.to_string();
        self.on_writer(move |w| {
            w.change_meta(&group, |g| {
                for k in &keys {
                    g.tags.remove(k);
                }
            })
        })
    }

    /// A group's tags, or None if the group does not exist.
    pub fn tags(&self, group: &str) -> Result<Option<BTreeMap<String, String>>, LogError> {
        if let Some(shared) = &self.shared {
            return shared.tags(group);
        }
        let index = self.index.read().unwrap_or_else(|p| p.into_inner());
        Ok(index.get(group).map(|g| g.tags.clone()))
    }

    /// PutLogEvents: appends `events` (in order) to an existing stream and returns once they
    /// are on disk (written and fsynced).
    pub fn put(&self, group: &str, stream: &str, events: Vec<(i64, String)>) -> Result<(), LogError> {
        let (group, stream): (Arc<str>, Arc<str>) = (group.into(), stream.into());
        let metric_lines = self.metric_lines.read().unwrap_or_else(|p| p.into_inner()).clone();
        let observed = metric_lines.map(|observe| {
            let metric: Vec<(i64, String)> = events.iter().filter(|(_, m)| m.contains("\"_aws\"")).cloned().collect();
            (observe, metric)
        });
        if let Some(shared) = &self.shared {
            shared.put(&group, &stream, &events)?;
            offer(&self.subscriptions, &self.metric_filters, &group, &stream, &events);
        } else {
            let (g, st) = (group.clone(), stream.clone());
            let subscriptions = self.subscriptions.clone();
            let metric_filters = self.metric_filters.clone();
            self.on_writer(move |w| {
                w.existing_stream(&g, &st)?;
                if events.is_empty() {
                    return Ok(());
                }
                offer(&subscriptions, &metric_filters, &g, &st, &events);
                w.append(&g, &st, events.into_iter(), true).map_err(LogError::from)
            })?;
        }
        // Stored: events in the embedded metric format become metrics too (as the
        // CloudWatch agent's EMF lines do in AWS).
        if let Some((observe, metric)) = observed {
            for (ts, m) in metric {
                observe(&group, ts, &m);
            }
        }
        Ok(())
    }

    /// Removes every event older than its group's retention at `now` (milliseconds); a stream
    /// left with no events goes away. Runs by itself every [`SWEEP_EVERY`]; waits for it.
    pub fn sweep(&self, now: i64) {
        if let Some(shared) = &self.shared {
            if let Err(e) = shared.sweep(now, None) {
                tracing::warn!("log retention sweep: {e}");
            }
            return;
        }
        let _ = self.on_writer(move |w| {
            w.sweep(now, None);
            Ok(())
        });
    }

    /// One group, if it exists.
    pub fn group(&self, group: &str) -> Result<Option<GroupInfo>, LogError> {
        if let Some(shared) = &self.shared {
            return shared.group(group);
        }
        let index = self.index.read().unwrap_or_else(|p| p.into_inner());
        Ok(index.get(group).map(|g| group_info(group, g)))
    }

    /// The groups whose names start with `prefix`, by name.
    pub fn groups(&self, prefix: &str) -> Result<Vec<GroupInfo>, LogError> {
        if let Some(shared) = &self.shared {
            // This node's lines sent before (and the groups they make) are in first.
            self.flush();
            return shared.groups(prefix);
        }
        let index = self.index.read().unwrap_or_else(|p| p.into_inner());
        Ok(index.iter().filter(|(name, _)| name.starts_with(prefix)).map(|(name, g)| group_info(name, g)).collect())
    }

    /// The streams of a group, by name, or None if the group does not exist.
    pub fn streams(&self, group: &str) -> Result<Option<Vec<StreamInfo>>, LogError> {
        if let Some(shared) = &self.shared {
            self.flush();
            return shared.streams(group);
        }
        let index = self.index.read().unwrap_or_else(|p| p.into_inner());
        Ok(index.get(group).map(|g| g.streams.values().cloned().collect()))
    }

    /// One page of a stream's events within `[start, end)` (as GetLogEvents numbers them:
    /// by position among those events), at most `limit` events and [`PAGE_BYTES`]: read from
    /// disk line by line, so a query holds no more than its page whatever the stream's size.
    /// None if the stream does not exist.
    pub fn stream_page(
        &self,
        group: &str,
        stream: &str,
        start: Option<i64>,
        end: Option<i64>,
        from: Cursor,
        limit: usize,
    ) -> Result<Option<StreamPage>, LogError> {
        self.flush();
        if let Some(shared) = &self.shared {
            return shared.stream_page(group, stream, start, end, from, limit, PAGE_BYTES);
        }
        {
            let index = self.index.read().unwrap_or_else(|p| p.into_inner());
            if index.get(group).and_then(|g| g.streams.get(stream)).is_none() {
                return Ok(None);
            }
        }
        let events = EventLines::open(&self.stream_path(group, stream))
            .map(|(_, e)| e)
            .filter(|e| start.is_none_or(|t| e.timestamp >= t) && end.is_none_or(|t| e.timestamp < t));
        Ok(Some(page_of(events, from, limit, PAGE_BYTES)))
    }

    /// One page of the events of a group's streams (all, those named, or those with a name
    /// prefix) that match `pattern` within `[start, end]`, in time order, after `after`: at
    /// most `limit` events and [`PAGE_BYTES`], and where the next page starts if there is
    /// more. Streams are read one at a time, line by line, keeping only the best page so far,
    /// so memory stays within a page whatever the group's size. None if the group does not
    /// exist.
    #[allow(clippy::too_many_arguments)]
    pub fn filter_page(
        &self,
        group: &str,
        streams: Option<&[String]>,
        prefix: Option<&str>,
        start: Option<i64>,
        end: Option<i64>,
        pattern: &FilterPattern,
        after: Option<&Position>,
        limit: usize,
    ) -> Result<Option<FilterPage>, LogError> {
        self.flush();
        if let Some(shared) = &self.shared {
            return shared.filter_page(group, streams, prefix, start, end, pattern, after, limit, PAGE_BYTES);
        }
        let names: Vec<String> = {
            let index = self.index.read().unwrap_or_else(|p| p.into_inner());
            let Some(g) = index.get(group) else { return Ok(None) };
            g.streams
                .values()
                .filter(|s| streams.is_none_or(|wanted| wanted.contains(&s.name)))
                .filter(|s| prefix.is_none_or(|p| s.name.starts_with(p)))
                .filter(|s| {
                    let (Some(first), Some(last)) = (s.first_event, s.last_event) else { return false };
                    start.is_none_or(|t| last >= t) && end.is_none_or(|t| first <= t)
                })
                .map(|s| s.name.clone())
                .collect()
        };
        // The streams split between (at most) two threads, each keeping its own best page;
        // the pages are merged at the end.
        let scan = |names: &[String]| {
            let mut best = BestPage::new(limit, PAGE_BYTES);
            let mut text = String::new();
            for name in names {
                let Ok(file) = File::open(self.stream_path(group, name)) else { continue };
                let mut reader = BufReader::with_capacity(256 * 1024, file);
                // Line by line into one buffer: a line the pattern's literals rule out is never
                // decoded, and only a matching event's message is copied.
                for line in 0u64.. {
                    text.clear();
                    match reader.read_line(&mut text) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    if !pattern.may_match_line(&text) {
                        continue;
                    }
                    let Ok(e) = serde_json::from_str::<EventRef>(&text) else { continue };
                    if !(start.is_none_or(|t| e.t >= t) && end.is_none_or(|t| e.t <= t)) {
                        continue;
                    }
                    let key = (e.t, name.as_str(), line);
                    if after.is_some_and(|a| key <= (a.timestamp, a.stream.as_str(), a.line)) || !best.may_take(key) {
                        continue;
                    }
                    if !pattern.matches(&e.m) {
                        continue;
                    }
                    let at = Position { timestamp: e.t, stream: name.clone(), line };
                    best.offer(at, StoredEvent { timestamp: e.t, ingestion_time: e.i, message: e.m.into_owned() });
                }
            }
            best
        };
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(SCAN_THREADS);
        let best = if threads < 2 || names.len() < 2 {
            scan(&names)
        } else {
            let (a, b) = names.split_at(names.len() / 2);
            std::thread::scope(|s| {
                let other = s.spawn(|| scan(b));
                let mine = scan(a);
                match other.join() {
                    Ok(other) => mine.merge(other),
                    Err(_) => scan(b).merge(mine),
                }
            })
        };
        Ok(Some(best.finish()))
    }

    /// Where a stream's events are kept.
    pub fn stream_path(&self, group: &str, stream: &str) -> PathBuf {
        self.root.join(encode(group)).join(format!("{}.jsonl", encode(stream)))
    }
}

/// PutLogEvents' events offered to the group's subscription and metric filters.
fn offer(subscriptions: &Subscriptions, metric_filters: &MetricFilters, group: &Arc<str>, stream: &Arc<str>, events: &[(i64, String)]) {
    for (timestamp, message) in events {
        subscriptions.offer(group, stream, *timestamp, message);
    }
    metric_filters.offer(group, events.iter().map(|(t, m)| (*t, m.as_str())));
}

/// How many threads one FilterLogEvents reads its streams with (the machine permitting).
const SCAN_THREADS: usize = 2;

/// AWS's cap on the events of one GetLogEvents or FilterLogEvents answer: 1 MB, counting
/// each event as its message's bytes plus 26 (as PutLogEvents counts a batch).
pub const PAGE_BYTES: usize = 1_048_576;

pub(crate) fn event_bytes(e: &StoredEvent) -> usize {
    e.message.len() + 26
}

/// A stream file's events with their line numbers, read one line at a time (lines that do not
/// parse, such as a torn last line after a crash, are skipped but counted).
struct EventLines {
    lines: Option<std::io::Lines<BufReader<File>>>,
    line: u64,
}

impl EventLines {
    fn open(path: &Path) -> EventLines {
        EventLines { lines: File::open(path).ok().map(|f| BufReader::with_capacity(64 * 1024, f).lines()), line: 0 }
    }
}

impl Iterator for EventLines {
    type Item = (u64, StoredEvent);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let text = self.lines.as_mut()?.next()?.ok()?;
            let line = self.line;
            self.line += 1;
            if let Ok(e) = serde_json::from_str(&text) {
                return Some((line, e));
            }
        }
    }
}

/// Where a GetLogEvents page starts or ends, by position among the stream's events in range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// The first page from the head.
    Head,
    /// The last page (AWS's default without `startFromHead`).
    Tail,
    /// The page starting at this position (a forward token).
    Forward(usize),
    /// The page ending before this position (a backward token).
    Backward(usize),
}

/// One GetLogEvents page: events `[lo, hi)` of the stream's events in range.
#[derive(Debug, Default)]
pub struct StreamPage {
    pub events: Vec<StoredEvent>,
    pub lo: usize,
    pub hi: usize,
}

/// The page of `events` that `from` names, at most `limit` events and `max_bytes` (but at
/// least one event, however large); holds no more than the page while it reads.
fn page_of(events: impl Iterator<Item = StoredEvent>, from: Cursor, limit: usize, max_bytes: usize) -> StreamPage {
    let limit = limit.max(1);
    match from {
        Cursor::Head | Cursor::Forward(_) => {
            let n = if let Cursor::Forward(n) = from { n } else { 0 };
            let (mut out, mut bytes, mut seen) = (Vec::new(), 0, 0);
            for e in events {
                seen += 1;
                if seen <= n {
                    continue;
                }
                if out.len() == limit || (!out.is_empty() && bytes + event_bytes(&e) > max_bytes) {
                    break;
                }
                bytes += event_bytes(&e);
                out.push(e);
            }
            let lo = n.min(seen);
            StreamPage { hi: lo + out.len(), lo, events: out }
        }
        Cursor::Tail | Cursor::Backward(_) => {
            let stop = if let Cursor::Backward(n) = from { n } else { usize::MAX };
            let (mut window, mut bytes, mut seen) = (std::collections::VecDeque::new(), 0, 0);
            for e in events {
                if seen == stop {
                    break;
                }
                seen += 1;
                bytes += event_bytes(&e);
                window.push_back(e);
                while window.len() > limit || (window.len() > 1 && bytes > max_bytes) {
                    if let Some(old) = window.pop_front() {
                        bytes -= event_bytes(&old);
                    }
                }
            }
            StreamPage { lo: seen - window.len(), hi: seen, events: window.into() }
        }
    }
}

/// Where an event sits in FilterLogEvents' order: time, then stream, then line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub timestamp: i64,
    pub stream: String,
    pub line: u64,
}

/// One FilterLogEvents page, and where the next starts (None: nothing more).
#[derive(Debug, Default)]
pub struct FilterPage {
    pub events: Vec<(Position, StoredEvent)>,
    pub next: Option<Position>,
}

/// The first events in [`Position`] order among those offered, as many as fit in `limit`
/// events and `max_bytes`: a max-heap that drops its last event whenever the page overflows,
/// remembering the earliest one dropped (where the next page starts).
struct BestPage {
    heap: std::collections::BinaryHeap<Ranked>,
    bytes: usize,
    limit: usize,
    max_bytes: usize,
    dropped: Option<Position>,
}

struct Ranked(Position, StoredEvent);

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

impl BestPage {
    fn new(limit: usize, max_bytes: usize) -> BestPage {
        BestPage { heap: Default::default(), bytes: 0, limit: limit.max(1), max_bytes, dropped: None }
    }

    /// Whether an event at `(time, stream, line)` could still be on the page.
    fn may_take(&self, (t, stream, line): (i64, &str, u64)) -> bool {
        self.dropped.as_ref().is_none_or(|d| (t, stream, line) <= (d.timestamp, d.stream.as_str(), d.line))
    }

    fn offer(&mut self, at: Position, e: StoredEvent) {
        if self.dropped.as_ref().is_some_and(|d| at > *d) {
            // Past an event already left for the next page: it cannot be on this one.
            return;
        }
        self.bytes += event_bytes(&e);
        self.heap.push(Ranked(at, e));
        while self.heap.len() > self.limit || (self.heap.len() > 1 && self.bytes > self.max_bytes) {
            let Some(Ranked(at, e)) = self.heap.pop() else { break };
            self.bytes -= event_bytes(&e);
            if self.dropped.as_ref().is_none_or(|d| at < *d) {
                self.dropped = Some(at);
            }
        }
    }

    /// This page and `other` (built from other streams) as one: `other`'s events offered to
    /// this one, and nothing after where either page stopped (the other streams' events past
    /// that point were never read).
    fn merge(mut self, other: BestPage) -> BestPage {
        let cut = other.dropped.clone();
        for Ranked(at, e) in other.heap.into_vec() {
            self.offer(at, e);
        }
        if let Some(cut) = cut {
            while self.heap.peek().is_some_and(|r| r.0 > cut) {
                if let Some(Ranked(_, e)) = self.heap.pop() {
                    self.bytes -= event_bytes(&e);
                }
            }
            if self.dropped.as_ref().is_none_or(|d| cut < *d) {
                self.dropped = Some(cut);
            }
        }
        self
    }

    fn finish(self) -> FilterPage {
        let events = self.heap.into_sorted_vec().into_iter().map(|Ranked(at, e)| (at, e)).collect();
        FilterPage { events, next: self.dropped }
    }
}

fn group_info(name: &str, g: &GroupIndex) -> GroupInfo {
    GroupInfo {
        name: name.to_string(),
        creation_time: g.creation_time,
        stored_bytes: g.streams.values().map(|s| s.stored_bytes).sum(),
        retention_in_days: g.retention,
        metric_filter_count: g.metric_filters.len(),
    }
}

fn scan(root: &Path) -> std::io::Result<BTreeMap<String, GroupIndex>> {
    let mut out = BTreeMap::new();
    for g in std::fs::read_dir(root)?.flatten() {
        let meta = meta::read(&g.path());
        let dir_name = g.file_name();
        let Some(group) = dir_name.to_str().and_then(decode).or_else(|| meta.as_ref()?.name.clone()) else { continue };
        let mut gi = GroupIndex { creation_time: i64::MAX, ..Default::default() };
        for s in std::fs::read_dir(g.path())?.flatten() {
            let fname = s.file_name();
            let Some(stem) = fname.to_str().and_then(|n| n.strip_suffix(".jsonl")) else { continue };
            // A long name is found among the streams the metadata names.
            let long = || meta.as_ref()?.streams.keys().find(|k| encode(k) == stem).cloned();
            let Some(stream) = decode(stem).or_else(long) else { continue };
            // Line by line: the index is a few numbers per stream, never the events.
            let mut info: Option<StreamInfo> = None;
            for (_, e) in EventLines::open(&s.path()) {
                info.get_or_insert_with(|| StreamInfo::empty(&stream, e.ingestion_time)).add(&e);
            }
            let Some(info) = info else { continue };
            gi.creation_time = gi.creation_time.min(info.creation_time);
            gi.streams.insert(stream, info);
        }
        if let Some(meta) = meta {
            gi.creation_time = meta.creation_time;
            gi.retention = meta.retention_in_days;
            gi.tags = meta.tags;
            for (name, created) in &meta.streams {
                gi.streams.entry(name.clone()).or_insert_with(|| StreamInfo::empty(name, *created)).creation_time = *created;
            }
            gi.created = meta.streams;
            gi.filters = meta.subscription_filters;
            gi.metric_filters = meta.metric_filters;
            gi.has_meta = true;
        }
        if gi.has_meta || !gi.streams.is_empty() {
            out.insert(group, gi);
        }
    }
    Ok(out)
}

/// The writer thread's state: the only code that changes files or the index.
pub(crate) struct Writer {
    root: PathBuf,
    index: Arc<Index>,
    files: OpenStreams<BufWriter<File>>,
    /// A descriptor held back for a stream file that cannot be opened because the server
    /// is out of them (a burst past its limit): closed then, opened again after the batch.
    reserve: Option<File>,
    /// Until when this batch's stream files may wait for a descriptor (set by the batch's
    /// first open that found none): one wait per batch, not one per stream.
    open_deadline: Option<std::time::Instant>,
    subscriptions: Arc<Subscriptions>,
    metric_filters: Arc<MetricFilters>,
}

/// How long a batch's stream files may wait for a descriptor when the server is out of
/// them: their lines wait, rather than being dropped at once, until environments refused
/// for want of descriptors have released theirs. Past it, the batch's lines that still have
/// no file are dropped (with a warning), so the writer never falls far behind.
const OPEN_WAIT: std::time::Duration = std::time::Duration::from_millis(1500);

/// A stream's directory and file paths.
fn stream_paths(root: &Path, group: &str, stream: &str) -> (PathBuf, PathBuf) {
    let dir = root.join(encode(group));
    let path = dir.join(format!("{}.jsonl", encode(stream)));
    (dir, path)
}

/// Opens (makes, with its group's directory, if missing) a stream's file for appending.
/// `durable` (for a durable put) says which of the directory and the file were missing
/// before the first attempt; their entries are synced, also on a later attempt after one
/// that made them and then failed.
fn open_stream(root: &Path, group: &str, stream: &str, durable: Option<(bool, bool)>) -> std::io::Result<BufWriter<File>> {
    let (dir, path) = stream_paths(root, group, stream);
    std::fs::create_dir_all(&dir)?;
    let f = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
    if let Some((new_dir, new_file)) = durable {
        // A durable put into a file just made: its directory entry must last too.
        if new_file {
            File::open(&dir)?.sync_all()?;
        }
        if new_dir {
            File::open(root)?.sync_all()?;
        }
    }
    Ok(BufWriter::with_capacity(16 * 1024, f))
}

fn out_of_descriptors(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// At most this many stream files are kept open between batches.
const MAX_OPEN_FILES: usize = 64;
/// A stream file not written for this long is closed: every environment writes a stream of
/// its own, so under churn the streams written recently are few and the ones ever written
/// are many (kept open, each was an fd and a 16 KiB buffer until 256 piled up).
const IDLE_CLOSE: std::time::Duration = std::time::Duration::from_secs(10);

/// The writer's open stream files, each with when it was last written; `sweep` closes the
/// idle ones and the least recently written beyond a cap.
struct OpenStreams<F> {
    files: HashMap<(Arc<str>, Arc<str>), (F, std::time::Instant)>,
    max_open: usize,
    idle_close: std::time::Duration,
}

impl<F> OpenStreams<F> {
    fn new(max_open: usize, idle_close: std::time::Duration) -> Self {
        OpenStreams { files: HashMap::new(), max_open, idle_close }
    }

    /// The open file of `key`, opened by `open` if it is not; marked written at `now`.
    fn get_or_open<E>(
        &mut self,
        key: (Arc<str>, Arc<str>),
        now: std::time::Instant,
        open: impl FnOnce() -> Result<F, E>,
    ) -> Result<&mut F, E> {
        let entry = match self.files.entry(key) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert((open()?, now)),
        };
        entry.1 = now;
        Ok(&mut entry.0)
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut F> {
        self.files.values_mut().map(|(f, _)| f)
    }

    fn contains(&self, key: &(Arc<str>, Arc<str>)) -> bool {
        self.files.contains_key(key)
    }

    /// Takes every open file out (to be flushed and closed).
    fn take_all(&mut self) -> Vec<F> {
        self.files.drain().map(|(_, (f, _))| f).collect()
    }

    fn remove(&mut self, key: &(Arc<str>, Arc<str>)) -> Option<F> {
        self.files.remove(key).map(|(f, _)| f)
    }

    fn retain(&mut self, mut keep: impl FnMut(&(Arc<str>, Arc<str>), &mut F) -> bool) {
        self.files.retain(|k, (f, _)| keep(k, f));
    }

    /// Closes (drops) the files idle since before `now - idle_close`, then the least
    /// recently written ones beyond `max_open`.
    fn sweep(&mut self, now: std::time::Instant) {
        self.files.retain(|_, (_, at)| now.saturating_duration_since(*at) < self.idle_close);
        if self.files.len() > self.max_open {
            let mut ages: Vec<std::time::Instant> = self.files.values().map(|(_, at)| *at).collect();
            ages.sort_unstable_by(|a, b| b.cmp(a));
            let keep_from = ages[self.max_open - 1];
            let mut room = self.max_open;
            // The newest `max_open`; among equal times, whichever come first.
            self.files.retain(|_, (_, at)| {
                let keep = *at >= keep_from && room > 0;
                room -= usize::from(keep);
                keep
            });
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.files.len()
    }
}
/// Consecutive lines for one stream: (group, stream, lines).
type StreamRun = (Arc<str>, Arc<str>, Vec<(i64, String)>);

/// How long the writer waits after a batch before taking the next one.
const BATCH_PAUSE: std::time::Duration = std::time::Duration::from_millis(2);

impl Writer {
    fn run(mut self, mut rx: tokio::sync::mpsc::UnboundedReceiver<Command>) {
        // Consecutive lines of one stream are appended together (one file lookup and one
        // index update for the run, not per line).
        let mut run: Option<StreamRun> = None;
        while let Some(cmd) = rx.blocking_recv() {
            self.open_deadline = None;
            let mut waiters = Vec::new();
            let mut next = Some(cmd);
            while let Some(cmd) = next.take().or_else(|| rx.try_recv().ok()) {
                match cmd {
                    Command::Append { group, stream, timestamp, message } => match &mut run {
                        Some((g, st, lines)) if Arc::ptr_eq(g, &group) && Arc::ptr_eq(st, &stream) => lines.push((timestamp, message)),
                        _ => {
                            self.append_run(run.take());
                            run = Some((group, stream, vec![(timestamp, message)]));
                        }
                    },
                    other => {
                        self.append_run(run.take());
                        self.handle(other, &mut waiters);
                    }
                }
            }
            self.append_run(run.take());
            for w in self.files.values_mut() {
                if let Err(e) = w.flush() {
                    tracing::warn!("log write failed: {e}");
                }
            }
            self.files.sweep(std::time::Instant::now());
            if self.reserve.is_none() {
                self.reserve = File::open("/dev/null").ok();
            }
            for w in waiters {
                w.done();
            }
            // Batch: a busy server would otherwise wake this thread for every line, a
            // context switch per invocation; a short nap lets lines pile up instead.
            std::thread::sleep(BATCH_PAUSE);
        }
    }

    fn append_run(&mut self, run: Option<StreamRun>) {
        let Some((group, stream, lines)) = run else { return };
        if let Err(e) = self.append(&group, &stream, lines.into_iter(), false) {
            tracing::warn!("cannot write log stream {stream}: {e}");
        }
    }

    fn handle(&mut self, cmd: Command, waiters: &mut Vec<crate::Waiter>) {
        match cmd {
            Command::Flush(tx) => waiters.push(crate::Waiter::Thread(tx)),
            Command::Kept(tx) => waiters.push(crate::Waiter::Task(tx)),
            Command::Run(f) => f(self),
            Command::Append { group, stream, timestamp, message } => {
                if let Err(e) = self.append(&group, &stream, std::iter::once((timestamp, message)), false) {
                    tracing::warn!("cannot write log stream {stream}: {e}");
                }
            }
        }
    }

    fn group_dir(&self, group: &str) -> PathBuf {
        self.root.join(encode(group))
    }

    fn stream_file(&self, group: &str, stream: &str) -> PathBuf {
        self.group_dir(group).join(format!("{}.jsonl", encode(stream)))
    }

    fn index(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, GroupIndex>> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends events to a stream (made, with its group, if missing: Lambda's lines), then
    /// indexes them; with `sync`, flushed and fsynced before it returns.
    fn append(
        &mut self,
        group: &Arc<str>,
        stream: &Arc<str>,
        events: impl Iterator<Item = (i64, String)>,
        sync: bool,
    ) -> std::io::Result<()> {
        let key = (group.clone(), stream.clone());
        let now = std::time::Instant::now();
        // Which entries a durable put makes, known before any attempt (a failed one may
        // have made them already).
        let durable = (sync && !self.files.contains(&key)).then(|| {
            let (dir, path) = stream_paths(&self.root, group, stream);
            (!dir.exists(), !path.exists())
        });
        let root = &self.root;
        let open = || open_stream(root, group, stream, durable);
        let mut pause = std::time::Duration::from_millis(1);
        while let Err(e) = self.files.get_or_open(key.clone(), now, open).map(|_| ()) {
            if !out_of_descriptors(&e) {
                return Err(e);
            }
            // Out of descriptors: give back the ones this thread holds (the other streams'
            // files, flushed, and the reserve), then try again until the batch's deadline.
            self.reserve = None;
            for mut w in self.files.take_all() {
                if let Err(e) = w.flush() {
                    tracing::warn!("log write failed: {e}");
                }
            }
            let deadline = *self.open_deadline.get_or_insert(now + OPEN_WAIT);
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(e);
            }
            std::thread::sleep(pause.min(left));
            pause = (pause * 2).min(std::time::Duration::from_millis(256));
        }
        let w = self.files.get_or_open(key, now, open)?;
        let ingestion_time = now_ms();
        let mut written = Vec::new();
        let mut line = Vec::with_capacity(256);
        for (timestamp, message) in events {
            let event = StoredEvent { timestamp, ingestion_time, message };
            line.clear();
            serde_json::to_writer(&mut line, &event).expect("log event serializes");
            line.push(b'\n');
            w.write_all(&line)?;
            written.push(event);
        }
        if sync {
            w.flush()?;
            w.get_ref().sync_data()?;
        }
        let mut index = self.index();
        if !index.contains_key(&**group) {
            index.insert(group.to_string(), GroupIndex { creation_time: ingestion_time, ..Default::default() });
        }
        let g = index.get_mut(&**group).expect("just made");
        if !g.streams.contains_key(&**stream) {
            g.streams.insert(stream.to_string(), StreamInfo::empty(stream, ingestion_time));
        }
        let s = g.streams.get_mut(&**stream).expect("just made");
        for e in &written {
            s.add(e);
        }
        Ok(())
    }

    fn existing_stream(&self, group: &str, stream: &str) -> Result<(), LogError> {
        let index = self.index.read().unwrap_or_else(|p| p.into_inner());
        let g = index.get(group).ok_or(LogError::GroupMissing)?;
        g.streams.get(stream).map(|_| ()).ok_or(LogError::StreamMissing)
    }

    fn create_group(&self, group: &str, tags: BTreeMap<String, String>) -> Result<(), LogError> {
        if self.index.read().unwrap_or_else(|p| p.into_inner()).contains_key(group) {
            return Err(LogError::GroupExists);
        }
        let gi = GroupIndex { creation_time: now_ms(), tags, has_meta: true, ..Default::default() };
        meta::write(&self.group_dir(group), &gi.meta(group))?;
        self.index().insert(group.to_string(), gi);
        Ok(())
    }

    fn delete_group(&mut self, group: &str) -> Result<(), LogError> {
        if !self.index.read().unwrap_or_else(|p| p.into_inner()).contains_key(group) {
            return Err(LogError::GroupMissing);
        }
        self.files.retain(|(g, _), _| &**g != group);
        match std::fs::remove_dir_all(self.group_dir(group)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        self.index().remove(group);
        self.subscriptions.set(group, &[]);
        self.metric_filters.set(group, &[]);
        Ok(())
    }

    /// Changes a group's metadata and writes it (the group then outlives its streams).
    fn change_meta(&self, group: &str, change: impl FnOnce(&mut GroupIndex)) -> Result<(), LogError> {
        let dir = self.group_dir(group);
        let mut index = self.index();
        let g = index.get_mut(group).ok_or(LogError::GroupMissing)?;
        let before = (g.retention, g.tags.clone(), g.created.clone(), g.has_meta, g.filters.clone(), g.metric_filters.clone());
        change(g);
        g.has_meta = true;
        if let Err(e) = meta::write(&dir, &g.meta(group)) {
            (g.retention, g.tags, g.created, g.has_meta, g.filters, g.metric_filters) = before;
            return Err(e.into());
        }
        self.subscriptions.set(group, &g.filters);
        self.metric_filters.set(group, &g.metric_filters);
        Ok(())
    }

    fn create_stream(&self, group: &str, stream: &str) -> Result<(), LogError> {
        {
            let index = self.index.read().unwrap_or_else(|p| p.into_inner());
            let g = index.get(group).ok_or(LogError::GroupMissing)?;
            if g.streams.contains_key(stream) {
                return Err(LogError::StreamExists);
            }
        }
        let now = now_ms();
        self.change_meta(group, |g| {
            g.created.insert(stream.to_string(), now);
            g.streams.insert(stream.to_string(), StreamInfo::empty(stream, now));
        })
    }

    fn delete_stream(&mut self, group: &str, stream: &str) -> Result<(), LogError> {
        self.existing_stream(group, stream)?;
        self.files.remove(&(Arc::from(group), Arc::from(stream)));
        match std::fs::remove_file(self.stream_file(group, stream)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        self.change_meta(group, |g| {
            g.created.remove(stream);
            g.streams.remove(stream);
        })
    }

    /// Removes the events older than their group's retention at `now` (all groups, or one):
    /// a stream whose events are all older goes away, one with some older is rewritten
    /// without them (a new file renamed over the old); streams without events stay.
    fn sweep(&mut self, now: i64, only: Option<&str>) {
        let work: Vec<(String, i64, Vec<StreamInfo>)> = {
            let index = self.index.read().unwrap_or_else(|p| p.into_inner());
            index
                .iter()
                .filter(|(name, _)| only.is_none_or(|o| o == name.as_str()))
                .filter_map(|(name, g)| {
                    let cutoff = now - i64::from(g.retention?) * crate::rules::DAY_MS;
                    let old: Vec<StreamInfo> = g.streams.values().filter(|s| s.first_event.is_some_and(|t| t < cutoff)).cloned().collect();
                    (!old.is_empty()).then(|| (name.clone(), cutoff, old))
                })
                .collect()
        };
        for (group, cutoff, streams) in work {
            for s in streams {
                if let Err(e) = self.expire(&group, &s, cutoff) {
                    tracing::warn!("retention sweep of {group} / {}: {e}", s.name);
                }
            }
        }
    }

    fn expire(&mut self, group: &str, s: &StreamInfo, cutoff: i64) -> Result<(), LogError> {
        let path = self.stream_file(group, &s.name);
        if let Some(mut w) = self.files.remove(&(Arc::from(group), Arc::from(s.name.as_str()))) {
            w.flush()?;
        }
        if s.last_event.is_some_and(|t| t < cutoff) {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
            let has_meta = self.index.read().unwrap_or_else(|p| p.into_inner()).get(group).is_some_and(|g| g.has_meta);
            let forget = |g: &mut GroupIndex| {
                g.created.remove(&s.name);
                g.streams.remove(&s.name);
            };
            if has_meta {
                return self.change_meta(group, forget);
            }
            if let Some(g) = self.index().get_mut(group) {
                forget(g);
            }
            return Ok(());
        }
        let tmp = path.with_extension("jsonl.tmp");
        let mut info = StreamInfo::empty(&s.name, s.creation_time);
        {
            let mut out = BufWriter::new(File::create(&tmp)?);
            for (_, e) in EventLines::open(&path).filter(|(_, e)| e.timestamp >= cutoff) {
                let mut line = serde_json::to_vec(&e).expect("log event serializes");
                line.push(b'\n');
                out.write_all(&line)?;
                info.add(&e);
            }
            out.flush()?;
            out.get_ref().sync_data()?;
        }
        std::fs::rename(&tmp, &path)?;
        if let Some(g) = self.index().get_mut(group) {
            g.streams.insert(s.name.clone(), info);
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn open_streams_close_idle_files_and_keep_the_newest_within_the_cap() {
        let t0 = std::time::Instant::now();
        let at = |s: u64| t0 + std::time::Duration::from_secs(s);
        let key = |i: u32| -> (Arc<str>, Arc<str>) { ("g".into(), format!("s{i}").into()) };
        let mut open = OpenStreams::new(3, std::time::Duration::from_secs(10));
        let mut opened = 0;
        for i in 0..5 {
            open.get_or_open(key(i), at(u64::from(i)), || -> Result<u32, ()> {
                opened += 1;
                Ok(i)
            })
            .unwrap();
        }
        // Written again: not reopened, and now the newest.
        assert_eq!(*open.get_or_open(key(0), at(5), || -> Result<u32, ()> { panic!("reopened") }).unwrap(), 0);
        assert_eq!((open.len(), opened), (5, 5));
        open.sweep(at(5));
        let mut kept: Vec<u32> = open.values_mut().map(|f| *f).collect();
        kept.sort_unstable();
        assert_eq!(kept, vec![0, 3, 4], "the three most recently written");
        // Ten seconds without a write closes a file.
        open.sweep(at(13));
        let mut kept: Vec<u32> = open.values_mut().map(|f| *f).collect();
        kept.sort_unstable();
        assert_eq!(kept, vec![0, 4]);
        open.sweep(at(16));
        assert_eq!(open.len(), 0);
        // A failed open leaves nothing behind.
        assert_eq!(open.get_or_open(key(9), at(16), || Err::<u32, _>("denied")).map(|f| *f), Err("denied"));
        assert_eq!(open.len(), 0);
    }

    /// `kept` answers once the lines sent before it are in their file (a killed server
    /// keeps them), not before.
    #[test]
    fn kept_lines_are_in_their_file() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path()).unwrap();
        let sink = store.sink("/aws/lambda/f", "s");
        for round in 0..20 {
            for i in 0..50 {
                sink.emit(i, format!("line {round} {i}"));
            }
            rt.block_on(store.kept());
            let file = dir.path().join(encode("/aws/lambda/f")).join(format!("{}.jsonl", encode("s")));
            let text = std::fs::read_to_string(file).unwrap();
            assert_eq!(text.lines().count(), 50 * (round + 1), "round {round}");
        }
    }

    #[test]
    fn a_stream_written_after_its_file_was_closed_appends() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path()).unwrap();
        let sink = store.sink("/aws/lambda/f", "s");
        sink.emit(1, "one".into());
        store.flush();
        // Many other streams push the first one's file out of the open set.
        for i in 0..(MAX_OPEN_FILES + 5) {
            store.sink("/aws/lambda/f", &format!("other-{i}")).emit(2, "x".into());
        }
        store.flush();
        sink.emit(3, "two".into());
        store.flush();
        let ev = store.stream_page("/aws/lambda/f", "s", None, None, Cursor::Head, 100).unwrap().unwrap().events;
        assert_eq!(ev.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(), ["one", "two"]);
    }

    #[test]
    fn write_read_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = LogStore::open(dir.path()).unwrap();
            let sink = store.sink("/aws/lambda/f", "2026/11/27/[$LATEST]abc");
            sink.emit(1, "START RequestId: 1".into());
            sink.emit(2, "hello\nworld".into());
            store.flush();
            let ev = store.stream_page("/aws/lambda/f", "2026/11/27/[$LATEST]abc", None, None, Cursor::Head, 100).unwrap().unwrap().events;
            assert_eq!(ev.len(), 2);
            assert_eq!(ev[1].message, "hello\nworld");
        }
        let store = LogStore::open(dir.path()).unwrap();
        assert_eq!(store.groups("/aws/lambda/").unwrap().len(), 1);
        let streams = store.streams("/aws/lambda/f").unwrap().unwrap();
        assert_eq!(streams[0].first_event, Some(1));
        assert_eq!(streams[0].last_event, Some(2));
        let hits = store
            .filter_page("/aws/lambda/f", None, None, None, None, &FilterPattern::parse("hello").unwrap(), None, 100)
            .unwrap()
            .unwrap();
        assert_eq!((hits.events.len(), hits.next), (1, None));
        assert!(store.streams("/aws/lambda/none").unwrap().is_none());
    }

    fn ev(timestamp: i64, size: usize) -> StoredEvent {
        StoredEvent { timestamp, ingestion_time: timestamp, message: "x".repeat(size) }
    }

    #[test]
    fn stream_pages_hold_at_most_a_page() {
        let events = || (0..10).map(|t| ev(t, 74)); // 100 bytes each, as counted
        let window = |p: StreamPage| (p.events.iter().map(|e| e.timestamp).collect::<Vec<_>>(), p.lo, p.hi);
        /// (cursor, limit, byte cap, (timestamps, lo, hi)).
        type Case = (Cursor, usize, usize, (Vec<i64>, usize, usize));
        let cases: Vec<Case> = vec![
            (Cursor::Head, 3, 10_000, (vec![0, 1, 2], 0, 3)),
            (Cursor::Forward(8), 3, 10_000, (vec![8, 9], 8, 10)),
            (Cursor::Forward(10), 3, 10_000, (vec![], 10, 10)),
            (Cursor::Forward(50), 3, 10_000, (vec![], 10, 10)),
            (Cursor::Tail, 3, 10_000, (vec![7, 8, 9], 7, 10)),
            (Cursor::Backward(7), 3, 10_000, (vec![4, 5, 6], 4, 7)),
            (Cursor::Backward(2), 3, 10_000, (vec![0, 1], 0, 2)),
            (Cursor::Backward(0), 3, 10_000, (vec![], 0, 0)),
            // The byte cap: 250 bytes hold two of these events.
            (Cursor::Head, 10, 250, (vec![0, 1], 0, 2)),
            (Cursor::Tail, 10, 250, (vec![8, 9], 8, 10)),
            // ... but never less than one event, however large.
            (Cursor::Head, 10, 50, (vec![0], 0, 1)),
            (Cursor::Tail, 10, 50, (vec![9], 9, 10)),
        ];
        for (from, limit, bytes, want) in cases {
            assert_eq!(window(page_of(events(), from, limit, bytes)), want, "{from:?} limit {limit} bytes {bytes}");
        }
    }

    #[test]
    fn filter_pages_take_the_earliest_events_that_fit() {
        let at = |t: i64, s: &str, line: u64| Position { timestamp: t, stream: s.into(), line };
        // Two streams offered one after the other, interleaved in time.
        let offers = [(1, "a", 0), (4, "a", 1), (6, "a", 2), (2, "b", 0), (3, "b", 1), (5, "b", 2)];
        let cases: Vec<(usize, usize, Vec<i64>, Option<Position>)> = vec![
            (10, 10_000, vec![1, 2, 3, 4, 5, 6], None),
            (3, 10_000, vec![1, 2, 3], Some(at(4, "a", 1))),
            (10, 250, vec![1, 2], Some(at(3, "b", 1))),
            (1, 10_000, vec![1], Some(at(2, "b", 0))),
        ];
        for (limit, bytes, want, next) in cases {
            let mut best = BestPage::new(limit, bytes);
            for (t, s, line) in offers {
                best.offer(at(t, s, line), ev(t, 74));
            }
            let page = best.finish();
            assert_eq!(page.events.iter().map(|(p, _)| p.timestamp).collect::<Vec<_>>(), want, "limit {limit} bytes {bytes}");
            assert_eq!(page.next, next, "limit {limit} bytes {bytes}");
            // The same page from each stream's own, merged (either way round).
            for first in ["a", "b"] {
                let (mut x, mut y) = (BestPage::new(limit, bytes), BestPage::new(limit, bytes));
                for (t, s, line) in offers {
                    let page = if s == first { &mut x } else { &mut y };
                    page.offer(at(t, s, line), ev(t, 74));
                }
                let page = x.merge(y).finish();
                assert_eq!(page.events.iter().map(|(p, _)| p.timestamp).collect::<Vec<_>>(), want, "merged, limit {limit}");
                assert_eq!(page.next, next, "merged, limit {limit} bytes {bytes}");
            }
        }
    }

    #[test]
    fn filter_pages_resume_where_the_last_one_ended() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path()).unwrap();
        for (stream, times) in [("a", [1, 4, 6, 7]), ("b", [2, 3, 5, 8])] {
            let sink = store.sink("g", stream);
            for t in times {
                sink.emit(t, format!("line {t}"));
            }
        }
        let mut seen = Vec::new();
        let mut after = None;
        for _ in 0..10 {
            let page =
                store.filter_page("g", None, None, None, None, &FilterPattern::parse("").unwrap(), after.as_ref(), 3).unwrap().unwrap();
            seen.extend(page.events.iter().map(|(p, _)| p.timestamp));
            let Some(next) = page.next else { break };
            // The next page starts at `next`: resume after the last event returned.
            after = page.events.last().map(|(p, _)| p.clone());
            assert!(after.as_ref().is_some_and(|a| *a < next));
        }
        assert_eq!(seen, vec![1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn subscription_filters_limit_replace_delete_and_persist() {
        let dir = tempfile::tempdir().unwrap();
        let filter = |name: &str, pattern: &str| SubscriptionFilter {
            filter_name: name.into(),
            filter_pattern: pattern.into(),
            destination_arn: "arn:aws:lambda:us-east-1:123456789012:function:c".into(),
            role_arn: None,
            distribution: "ByLogStream".into(),
            creation_time: 1,
        };
        let got: Arc<std::sync::Mutex<Vec<String>>> = Default::default();
        {
            let store = LogStore::open(dir.path()).unwrap();
            store.create_group("app", BTreeMap::new()).unwrap();
            type Step<'a> = (&'a str, Result<(), LogError>);
            let steps: Vec<Step> = vec![
                ("missing group", store.put_subscription_filter("none", filter("a", ""))),
                ("a", store.put_subscription_filter("app", filter("a", ""))),
                ("b", store.put_subscription_filter("app", filter("b", "x"))),
                ("c over the limit", store.put_subscription_filter("app", filter("c", ""))),
                ("b replaced", store.put_subscription_filter("app", filter("b", "ERROR"))),
                ("delete a missing filter", store.delete_subscription_filter("app", "c")),
                ("delete in a missing group", store.delete_subscription_filter("none", "a")),
                ("delete a", store.delete_subscription_filter("app", "a")),
            ];
            let outcomes: Vec<(&str, Result<(), LogError>)> = steps.into_iter().collect();
            assert_eq!(
                outcomes,
                vec![
                    ("missing group", Err(LogError::GroupMissing)),
                    ("a", Ok(())),
                    ("b", Ok(())),
                    ("c over the limit", Err(LogError::LimitExceeded)),
                    ("b replaced", Ok(())),
                    ("delete a missing filter", Err(LogError::FilterMissing)),
                    ("delete in a missing group", Err(LogError::GroupMissing)),
                    ("delete a", Ok(())),
                ]
            );
            assert_eq!(store.subscription_filters("app").unwrap(), Some(vec![filter("b", "ERROR")]));
            assert_eq!(store.subscription_filters("none").unwrap(), None);
        }
        // Reopened: the filter is still there, and still delivers (from sinks and puts).
        let store = LogStore::open(dir.path()).unwrap();
        assert_eq!(store.subscription_filters("app").unwrap(), Some(vec![filter("b", "ERROR")]));
        let sink = got.clone();
        store
            .on_subscribed(
                "123456789012",
                Arc::new(move |_, group, payload| {
                    let m = crate::subscription::decode_payload(&payload).unwrap();
                    let lines = m.log_events.into_iter().map(|e| format!("{group}/{}: {}", m.log_stream, e.message));
                    sink.lock().unwrap().extend(lines);
                }),
            )
            .unwrap();
        store.sink("app", "lambda").emit(1, "an ERROR".into());
        store.sink("app", "lambda").emit(2, "fine".into());
        store.create_stream("app", "s").unwrap();
        store.put("app", "s", vec![(now_ms(), "ERROR put".into()), (now_ms(), "ok".into())]).unwrap();
        for _ in 0..50 {
            if got.lock().unwrap().len() >= 2 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let mut lines = got.lock().unwrap().clone();
        lines.sort();
        assert_eq!(lines, vec!["app/lambda: an ERROR", "app/s: ERROR put"]);
        // Filters go with their group.
        store.delete_group("app").unwrap();
        store.create_group("app", BTreeMap::new()).unwrap();
        assert_eq!(store.subscription_filters("app").unwrap(), Some(vec![]));
    }

    #[test]
    fn groups_and_streams_made_through_the_api() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = LogStore::open(dir.path()).unwrap();
            let tags: BTreeMap<String, String> = [("env".to_string(), "test".to_string())].into();
            let t0 = now_ms();
            store.create_group("app", tags.clone()).unwrap();
            type Step<'a> = (&'a str, Result<(), LogError>);
            let steps: Vec<Step> = vec![
                ("create app again", store.create_group("app", BTreeMap::new())),
                ("stream in a missing group", store.create_stream("none", "s")),
                ("stream", store.create_stream("app", "s")),
                ("stream again", store.create_stream("app", "s")),
                ("second stream", store.create_stream("app", "t")),
                ("put to a missing stream", store.put("app", "none", vec![(1, "x".into())])),
                ("put to a missing group", store.put("none", "s", vec![(1, "x".into())])),
                ("put", store.put("app", "s", vec![(t0 + 10, "a".into()), (t0 + 20, "bb".into())])),
                ("delete a missing stream", store.delete_stream("app", "none")),
                ("delete t", store.delete_stream("app", "t")),
                ("retention of a missing group", store.set_retention("none", Some(1))),
                ("retention", store.set_retention("app", Some(3653))),
                ("tag a missing group", store.tag("none", BTreeMap::new())),
                ("tag", store.tag("app", [("k".to_string(), "v".to_string())].into())),
                ("untag", store.untag("app", vec!["env".into(), "nope".into()])),
                ("delete a missing group", store.delete_group("none")),
            ];
            let want = [
                Err(LogError::GroupExists),
                Err(LogError::GroupMissing),
                Ok(()),
                Err(LogError::StreamExists),
                Ok(()),
                Err(LogError::StreamMissing),
                Err(LogError::GroupMissing),
                Ok(()),
                Err(LogError::StreamMissing),
                Ok(()),
                Err(LogError::GroupMissing),
                Ok(()),
                Err(LogError::GroupMissing),
                Ok(()),
                Ok(()),
                Err(LogError::GroupMissing),
            ];
            for ((what, got), want) in steps.into_iter().zip(want) {
                assert_eq!(got, want, "{what}");
            }
            store.create_group("empty", BTreeMap::new()).unwrap();
            // The longest names AWS allows: kept under a digest, found again by their metadata.
            store.create_group(&"g".repeat(512), BTreeMap::new()).unwrap();
            store.create_stream(&"g".repeat(512), &"s".repeat(512)).unwrap();
            store.put(&"g".repeat(512), &"s".repeat(512), vec![(t0, "long".into())]).unwrap();
            store.create_group("gone", BTreeMap::new()).unwrap();
            store.sink("gone", "lambda").emit(1, "x".into());
            store.delete_group("gone").unwrap();
        }
        // Everything but the events' order is metadata: all of it survives a restart.
        let store = LogStore::open(dir.path()).unwrap();
        assert_eq!(
            store.groups("").unwrap().iter().map(|g| g.name.clone()).collect::<Vec<_>>(),
            ["app".to_string(), "empty".into(), "g".repeat(512)]
        );
        let long = store.stream_page(&"g".repeat(512), &"s".repeat(512), None, None, Cursor::Head, 10).unwrap().unwrap();
        assert_eq!(long.events[0].message, "long");
        assert_eq!(store.group("app").unwrap().unwrap().retention_in_days, Some(3653));
        assert_eq!(store.tags("app").unwrap().unwrap(), [("k".to_string(), "v".to_string())].into());
        let streams = store.streams("app").unwrap().unwrap();
        let times: Vec<_> = streams.iter().map(|s| (s.name.as_str(), s.last_event.zip(s.first_event).map(|(l, f)| l - f))).collect();
        assert_eq!(times, [("s", Some(10))]);
        assert_eq!(streams[0].stored_bytes, 3);
        assert!(store.streams("empty").unwrap().unwrap().is_empty());
        assert!(store.group("gone").unwrap().is_none());
    }

    /// Groups with and without retention, events of several ages (PutLogEvents' and
    /// Lambda's), swept at `now`: what remains is checked, as are the streams' figures. Run
    /// on the on-disk store here and on the shared one (`shared::tests`).
    pub(crate) fn retention_scenario(store: &LogStore, now: i64) {
        const DAY: i64 = crate::rules::DAY_MS;
        // (group, retention, stream, event times in days before now)
        let layout: &[(&str, Option<u32>, &str, &[i64])] = &[
            ("kept", Some(5), "recent", &[4, 3]),
            ("mixed", Some(3), "half", &[5, 4, 2, 1]),
            ("mixed", Some(3), "old", &[9, 8]),
            ("mixed", Some(3), "made-empty", &[]),
            ("forever", None, "old", &[90, 80]),
            ("lambda", None, "env", &[3, 2]),
        ];
        for (group, retention, stream, days) in layout {
            let _ = store.create_group(group, BTreeMap::new());
            let _ = store.set_retention(group, *retention);
            if days.is_empty() {
                store.create_stream(group, stream).unwrap();
            } else if *group == "lambda" {
                let sink = store.sink(group, stream);
                days.iter().for_each(|d| sink.emit(now - d * DAY, format!("{d}")));
                store.flush();
            } else {
                let _ = store.create_stream(group, stream);
                store.put(group, stream, days.iter().map(|d| (now - d * DAY, format!("{d}"))).collect()).unwrap();
            }
        }
        // Lambda's group gets its retention after its events: set, it sweeps the group at once.
        store.set_retention("lambda", Some(1)).unwrap();
        assert!(store.streams("lambda").unwrap().unwrap().is_empty());
        store.sweep(now);
        let remaining = |group: &str| -> Vec<(String, Vec<i64>)> {
            let mut out = Vec::new();
            for s in store.streams(group).unwrap().unwrap_or_default() {
                let page = store.stream_page(group, &s.name, None, None, Cursor::Head, 100).unwrap().unwrap();
                out.push((s.name.clone(), page.events.iter().map(|e| (now - e.timestamp) / DAY).collect()));
                if let Some(first) = s.first_event {
                    assert_eq!(first, page.events[0].timestamp, "{group}/{}: the figures follow the events", s.name);
                    assert_eq!(s.stored_bytes, page.events.iter().map(|e| e.message.len() as u64).sum::<u64>());
                }
            }
            out
        };
        /// (group, its streams with their events' ages in days)
        type Case<'a> = (&'a str, Vec<(&'a str, Vec<i64>)>);
        let cases: Vec<Case> = vec![
            ("kept", vec![("recent", vec![4, 3])]),
            ("mixed", vec![("half", vec![2, 1]), ("made-empty", vec![])]),
            ("forever", vec![("old", vec![90, 80])]),
            // Every event expired: the stream is gone, the group (it has a retention) stays.
            ("lambda", vec![]),
        ];
        for (group, want) in cases {
            let want: Vec<(String, Vec<i64>)> = want.into_iter().map(|(s, d)| (s.to_string(), d)).collect();
            assert_eq!(remaining(group), want, "{group}");
        }
        assert!(store.group("lambda").unwrap().is_some());
    }

    #[test]
    fn retention_sweep() {
        const DAY: i64 = crate::rules::DAY_MS;
        let now = now_ms();
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path()).unwrap();
        retention_scenario(&store, now);
        assert!(!store.stream_path("mixed", "old").exists());
        // And after a restart.
        drop(store);
        let store = LogStore::open(dir.path()).unwrap();
        assert_eq!(store.streams("mixed").unwrap().unwrap().iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["half", "made-empty"]);
        assert_eq!(store.streams("mixed").unwrap().unwrap()[0].first_event, Some(now - 2 * DAY));
    }
}

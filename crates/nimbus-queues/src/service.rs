//! [`QueueService`]: the SQS actions with AWS's semantics (visibility timeouts, delays,
//! retention, long polling, dead-letter redrive, FIFO ordering and deduplication) over the
//! durable [`Store`], plus the ARN-addressed calls the rest of Nimbus uses.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use base64::Engine;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use crate::attributes::{self, Mode, QueueSettings, KNOWN, MAX_DELAY, MAX_VISIBILITY_TIMEOUT, MAX_WAIT};
use crate::error::QueueError;
use crate::message::{self, MessageAttributes};
use crate::metrics::{QueueMetric, QueueMetrics};
use crate::store::{self, in_tx, Db, Mark, NewMessage, QueueRecord, QueueTx};

/// FIFO deduplication window.
const DEDUP_WINDOW_MS: i64 = 5 * 60 * 1000;
/// How often expired messages are swept away.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// Milliseconds since the Unix epoch; swappable so tests can move time.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
    }
}

/// CreateQueue's input.
#[derive(Debug, Clone, Default)]
pub struct CreateQueue {
    pub name: String,
    pub attributes: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
}

/// One message to send.
#[derive(Debug, Clone, Default)]
pub struct SendMessage {
    pub body: String,
    pub delay_seconds: Option<i64>,
    pub attributes: MessageAttributes,
    pub system_attributes: MessageAttributes,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
}

impl SendMessage {
    pub fn new(body: impl Into<String>) -> SendMessage {
        SendMessage { body: body.into(), ..Default::default() }
    }
}

/// What SendMessage answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendResult {
    pub message_id: String,
    pub md5_of_body: String,
    pub md5_of_attributes: Option<String>,
    pub md5_of_system_attributes: Option<String>,
    pub sequence_number: Option<String>,
}

/// ReceiveMessage's input.
#[derive(Debug, Clone)]
pub struct ReceiveRequest {
    pub max_messages: i64,
    pub visibility_timeout: Option<i64>,
    /// `None`: the queue's ReceiveMessageWaitTimeSeconds.
    pub wait_time_seconds: Option<i64>,
    /// System attributes wanted (`All` or names).
    pub system_attribute_names: Vec<String>,
    /// Message attributes wanted (`All`, `.*`, names, `prefix.*`).
    pub message_attribute_names: Vec<String>,
}

impl Default for ReceiveRequest {
    fn default() -> Self {
        ReceiveRequest {
            max_messages: 1,
            visibility_timeout: None,
            wait_time_seconds: None,
            system_attribute_names: Vec::new(),
            message_attribute_names: Vec::new(),
        }
    }
}

/// A received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub message_id: String,
    pub receipt_handle: String,
    pub md5_of_body: String,
    pub body: String,
    /// System attributes (SentTimestamp, ApproximateReceiveCount, …) as strings.
    pub attributes: BTreeMap<String, String>,
    pub md5_of_message_attributes: Option<String>,
    pub message_attributes: MessageAttributes,
}

/// One entry of a batch request.
#[derive(Debug, Clone)]
pub struct BatchEntry<T> {
    pub id: String,
    pub input: T,
}

/// A failed batch entry, as AWS reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchFailure {
    pub id: String,
    pub code: String,
    pub message: String,
    pub sender_fault: bool,
}

/// The result of a batch action: which entries succeeded, which failed and why.
#[derive(Debug, Clone)]
pub struct BatchOutcome<T> {
    pub successful: Vec<(String, T)>,
    pub failed: Vec<BatchFailure>,
}

/// ChangeMessageVisibilityBatch's entry.
#[derive(Debug, Clone)]
pub struct VisibilityChange {
    pub receipt_handle: String,
    pub visibility_timeout: i64,
}

/// What the rest of Nimbus needs to know about a queue found by ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueInfo {
    pub name: String,
    pub arn: String,
    pub fifo: bool,
    pub visibility_timeout: u32,
}

/// The queue service. Cheap to share (`Arc`); all state is in the store.
/// AWS allows one PurgeQueue per queue in this interval.
const PURGE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);
/// An empty queue's gauges are reported this long (AWS: a queue is active for up to six
/// hours after its last activity).
pub const GAUGES_WHILE_EMPTY: Duration = Duration::from_secs(6 * 3600);

pub struct QueueService {
    db: Db,
    region: String,
    account: String,
    clock: Arc<dyn Clock>,
    waiters: Mutex<HashMap<String, Arc<Notify>>>,
    /// When each queue was last purged (AWS allows one PurgeQueue per 60 seconds).
    purged: Mutex<HashMap<String, std::time::Instant>>,
    /// Where `AWS/SQS` datapoints go, once the binary says (`record_into`).
    metrics: std::sync::OnceLock<Arc<dyn QueueMetrics>>,
    /// Since when each queue has been seen empty by the gauges' sampler (ms).
    empty_since: Mutex<HashMap<String, i64>>,
    /// Set when the node drains: long polls stop waiting, so neither a client's nor an event
    /// source mapping's holds the node up for its 20 seconds.
    draining: std::sync::atomic::AtomicBool,
}

/// A validated message, digests computed, waiting for its queue's checks.
struct Prepared {
    input: SendMessage,
    md5_of_body: String,
    md5_of_attributes: Option<String>,
    md5_of_system_attributes: Option<String>,
    size: usize,
}

fn batch_failure(id: &str, e: &QueueError) -> BatchFailure {
    // Inside a batch AWS reports a missing member of an entry as InvalidParameterValue.
    let code = match e {
        QueueError::MissingParameter(_) => "InvalidParameterValue",
        other => other.query_code(),
    };
    BatchFailure { id: id.to_string(), code: code.to_string(), message: e.to_string(), sender_fault: e.sender_fault() }
}

fn invalid_receipt(rh: &str) -> QueueError {
    QueueError::ReceiptHandleIsInvalid(format!("The input receipt handle \"{rh}\" is not a valid receipt handle."))
}

fn encode_receipt(queue_id: i64, row: i64, nonce: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{queue_id}:{row}:{nonce}"))
}

fn decode_receipt(rh: &str) -> Result<(i64, i64, String), QueueError> {
    let raw = base64::engine::general_purpose::STANDARD.decode(rh.trim()).map_err(|_| invalid_receipt(rh))?;
    let text = String::from_utf8(raw).map_err(|_| invalid_receipt(rh))?;
    let mut parts = text.splitn(3, ':');
    let q = parts.next().and_then(|p| p.parse().ok());
    let m = parts.next().and_then(|p| p.parse().ok());
    let n = parts.next().filter(|n| !n.is_empty());
    match (q, m, n) {
        (Some(q), Some(m), Some(n)) => Ok((q, m, n.to_string())),
        _ => Err(invalid_receipt(rh)),
    }
}

/// Message group and deduplication ids: up to 128 characters, alphanumeric or punctuation.
fn validate_fifo_id(value: &str, param: &str) -> Result<(), QueueError> {
    if value.is_empty() || value.len() > 128 || !value.chars().all(|c| c.is_ascii_alphanumeric() || c.is_ascii_punctuation()) {
        return Err(QueueError::bad_value(
            value,
            param,
            &format!("{param} can only include alphanumeric and punctuation characters. 1 to 128 in length."),
        ));
    }
    Ok(())
}

fn check_batch<T>(entries: &[BatchEntry<T>], entry_name: &str) -> Result<(), QueueError> {
    if entries.is_empty() {
        return Err(QueueError::EmptyBatchRequest(format!("There should be at least one {entry_name} in the request.")));
    }
    if entries.len() > 10 {
        return Err(QueueError::TooManyEntriesInBatchRequest(format!(
            "Maximum number of entries per request are 10. You have sent {}.",
            entries.len()
        )));
    }
    let mut seen = HashSet::new();
    for e in entries {
        if e.id.is_empty() || e.id.len() > 80 || !e.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(QueueError::InvalidBatchEntryId(
                "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long."
                    .into(),
            ));
        }
        if !seen.insert(e.id.as_str()) {
            return Err(QueueError::BatchEntryIdsNotDistinct(format!("Id {} repeated.", e.id)));
        }
    }
    Ok(())
}

fn check_visibility(v: i64) -> Result<u32, QueueError> {
    if (0..=i64::from(MAX_VISIBILITY_TIMEOUT)).contains(&v) {
        Ok(v as u32)
    } else {
        Err(QueueError::bad_value(v, "VisibilityTimeout", "Must be between 0 and 43200, if provided."))
    }
}

impl QueueService {
    /// Opens the queue database at `path` (e.g. `<data>/queues.db`). Inside a Tokio runtime
    /// this also starts the task that sweeps expired messages.
    pub fn open(path: &Path, region: &str, account: &str) -> Result<Arc<QueueService>, QueueError> {
        QueueService::open_with_clock(path, region, account, Arc::new(SystemClock))
    }

    pub fn open_with_clock(path: &Path, region: &str, account: &str, clock: Arc<dyn Clock>) -> Result<Arc<QueueService>, QueueError> {
        Ok(QueueService::with_db(Db::Sqlite(store::sqlite::Store::open(path)?), region, account, clock))
    }

    /// Opens the account's queues in the PostgreSQL database at `url`, which other nodes
    /// share (`--store postgres://…`): a receive on any node may take a message sent on any
    /// other, and long polls hear other nodes' sends.
    pub async fn open_shared(url: &str, region: &str, account: &str) -> Result<Arc<QueueService>, QueueError> {
        QueueService::open_shared_with_clock(url, region, account, Arc::new(SystemClock)).await
    }

    pub async fn open_shared_with_clock(
        url: &str,
        region: &str,
        account: &str,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<QueueService>, QueueError> {
        // This node's connections' name, which announcements quote (a node ignores its own).
        let node = format!("nimbus-queues-{}", uuid::Uuid::new_v4().simple());
        let shared = store::postgres::SharedQueues::open(url, account, &node).await?;
        let svc = QueueService::with_db(Db::Postgres(shared), region, account, clock);
        if let Db::Postgres(shared) = &svc.db {
            let weak = Arc::downgrade(&svc);
            shared.listen(Arc::downgrade(&svc), move |queue| {
                let Some(svc) = weak.upgrade() else { return };
                match queue {
                    Some(name) => svc.wake(name),
                    None => svc.wake_all(),
                }
            });
        }
        Ok(svc)
    }

    fn with_db(db: Db, region: &str, account: &str, clock: Arc<dyn Clock>) -> Arc<QueueService> {
        let svc = Arc::new(QueueService {
            db,
            region: region.to_string(),
            account: account.to_string(),
            clock,
            waiters: Mutex::new(HashMap::new()),
            purged: Mutex::new(HashMap::new()),
            metrics: std::sync::OnceLock::new(),
            empty_since: Mutex::new(HashMap::new()),
            draining: std::sync::atomic::AtomicBool::new(false),
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let weak: Weak<QueueService> = Arc::downgrade(&svc);
            rt.spawn(async move {
                loop {
                    tokio::time::sleep(SWEEP_EVERY).await;
                    let Some(svc) = weak.upgrade() else { return };
                    if let Err(e) = svc.sweep().await {
                        tracing::warn!("sweeping expired messages: {e}");
                    }
                }
            });
        }
        svc
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The node is draining: receives waiting for messages (long polls) answer with what
    /// they have now, and later ones do not wait.
    pub fn drain(&self) {
        self.draining.store(true, std::sync::atomic::Ordering::Release);
        self.wake_all();
    }

    /// Sends this service's `AWS/SQS` datapoints to `metrics` from now on.
    pub fn record_into(&self, metrics: Arc<dyn QueueMetrics>) {
        let _ = self.metrics.set(metrics);
    }

    fn count(&self, queue: &str, metric: QueueMetric, value: f64, now: i64) {
        if let Some(m) = self.metrics.get() {
            m.record(queue, metric, value, now);
        }
    }

    /// A message added to `queue`: NumberOfMessagesSent and its SentMessageSize.
    fn sent(&self, queue: &str, size: usize, now: i64) {
        self.count(queue, QueueMetric::NumberOfMessagesSent, 1.0, now);
        self.count(queue, QueueMetric::SentMessageSize, size as f64, now);
    }

    /// Records the queues' gauges (ApproximateNumberOfMessagesVisible, …NotVisible,
    /// …Delayed, ApproximateAgeOfOldestMessage), as AWS does each minute for active queues:
    /// a queue found empty for longer than [`GAUGES_WHILE_EMPTY`] is left out until it holds
    /// a message again.
    pub async fn record_gauges(&self) -> Result<(), QueueError> {
        let Some(m) = self.metrics.get() else { return Ok(()) };
        let now = self.now();
        let gauges = in_tx!(&self.db, false, |tx| tx.gauges(now).await)?;
        let quiet = {
            let mut empty_since = self.empty_since.lock().unwrap_or_else(|p| p.into_inner());
            let before = std::mem::take(&mut *empty_since);
            let mut quiet = HashSet::new();
            for g in gauges.iter().filter(|g| g.visible + g.not_visible + g.delayed == 0) {
                let since = before.get(&g.queue).copied().unwrap_or(now);
                empty_since.insert(g.queue.clone(), since);
                if now - since > GAUGES_WHILE_EMPTY.as_millis() as i64 {
                    quiet.insert(g.queue.clone());
                }
            }
            quiet
        };
        for g in gauges.iter().filter(|g| !quiet.contains(&g.queue)) {
            for (metric, value) in g.points() {
                m.record(&g.queue, metric, value, now);
            }
        }
        Ok(())
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    /// `arn:aws:sqs:<region>:<account>:<name>`.
    pub fn arn(&self, name: &str) -> String {
        format!("arn:aws:sqs:{}:{}:{name}", self.region, self.account)
    }

    /// `<origin>/<account>/<name>`, the origin being `http(s)://<host>`.
    pub fn queue_url(&self, origin: &str, name: &str) -> String {
        format!("{origin}/{}/{name}", self.account)
    }

    /// The queue name in a queue URL, a path or a bare name (see [`queue_name_from_url`]).
    pub fn resolve(&self, url_or_name: &str) -> Result<String, QueueError> {
        queue_name_from_url(url_or_name, &self.account)
    }

    /// The queue name in an SQS ARN of this region and account.
    pub fn name_from_arn(&self, arn: &str) -> Option<String> {
        let prefix = format!("arn:aws:sqs:{}:{}:", self.region, self.account);
        arn.strip_prefix(&prefix).filter(|n| !n.is_empty() && !n.contains(':')).map(str::to_string)
    }

    fn notifier(&self, name: &str) -> Arc<Notify> {
        let mut w = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        w.entry(name.to_string()).or_insert_with(|| Arc::new(Notify::new())).clone()
    }

    fn wake(&self, name: &str) {
        let w = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = w.get(name) {
            n.notify_waiters();
        }
    }

    /// Wakes every waiting receive (another node's announcements may have been missed).
    fn wake_all(&self) {
        let w = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        for n in w.values() {
            n.notify_waiters();
        }
    }

    // ---- queues -------------------------------------------------------------------

    /// Creates a queue, or returns the existing one when every given attribute matches.
    pub async fn create_queue(&self, input: CreateQueue) -> Result<String, QueueError> {
        let fifo = match input.attributes.get("FifoQueue").map(|v| v.to_ascii_lowercase()) {
            Some(v) if v == "true" => true,
            Some(v) if v == "false" => false,
            Some(_) => return Err(QueueError::InvalidAttributeValue("Invalid value for the parameter FifoQueue.".into())),
            None => false,
        };
        attributes::validate_queue_name(&input.name, fifo)?;
        let mut settings = QueueSettings::new(fifo);
        settings.apply(&input.attributes, Mode::Create)?;
        validate_tags(&input.tags)?;
        let now_secs = self.now() / 1000;
        let svc_arn_prefix = self.arn("");
        in_tx!(&self.db, true, |tx| {
            if let Some(existing) = tx.find_queue(&input.name).await? {
                let have = existing.settings.to_map();
                let want = settings.to_map();
                for name in input.attributes.keys() {
                    if have.get(name) != want.get(name) {
                        return Err(QueueError::QueueNameExists(format!(
                            "A queue already exists with the same name and a different value for attribute {name}"
                        )));
                    }
                }
                return Ok(existing.name);
            }
            if let Some(p) = &settings.redrive_policy {
                check_dead_letter_target(tx, &svc_arn_prefix, &p.dead_letter_target_arn, fifo).await?;
            }
            Ok(tx.insert_queue(&input.name, &settings, &input.tags, now_secs).await?.name)
        })
    }

    /// Checks that a queue exists (GetQueueUrl).
    pub async fn get_queue(&self, name: &str) -> Result<(), QueueError> {
        let name = name.to_string();
        in_tx!(&self.db, false, |tx| store::get_queue(tx, &name).await.map(|_| ()))
    }

    /// The queue's `Policy` attribute (its resource-based policy), if it has one; None also
    /// when the queue does not exist.
    pub async fn queue_policy(&self, name: &str) -> Option<String> {
        self.stored_policy(name).await.ok().flatten()
    }

    /// The queue's `Policy`, if it has one; Err when there is no such queue.
    pub async fn stored_policy(&self, name: &str) -> Result<Option<String>, QueueError> {
        let name = name.to_string();
        in_tx!(&self.db, false, |tx| Ok(store::get_queue(tx, &name).await?.settings.passthrough.get("Policy").cloned()))
    }

    /// Queue names in order, optionally by prefix, paginated when `max_results` is given.
    pub async fn list_queues(
        &self,
        prefix: Option<String>,
        max_results: Option<i64>,
        next_token: Option<String>,
    ) -> Result<(Vec<String>, Option<String>), QueueError> {
        let limit = page_limit(max_results)?;
        let after = decode_token(next_token.as_deref())?;
        let names = in_tx!(&self.db, false, |tx| Ok(tx.all_queues().await?.into_iter().map(|q| q.name).collect::<Vec<_>>()))?;
        let filtered: Vec<String> = names.into_iter().filter(|n| prefix.as_deref().is_none_or(|p| n.starts_with(p))).collect();
        Ok(paginate(filtered, after, limit, max_results.is_some()))
    }

    pub async fn delete_queue(&self, name: &str) -> Result<(), QueueError> {
        let n = name.to_string();
        in_tx!(&self.db, true, |tx| {
            let q = store::get_queue(tx, &n).await?;
            tx.announce(&n);
            tx.delete_queue(q.id).await
        })?;
        self.wake(name);
        Ok(())
    }

    pub async fn purge_queue(&self, name: &str) -> Result<(), QueueError> {
        let n = name.to_string();
        let queue_id = in_tx!(&self.db, false, |tx| store::get_queue(tx, &n).await.map(|q| q.id))?;
        {
            let mut purged = self.purged.lock().unwrap_or_else(|p| p.into_inner());
            let now = std::time::Instant::now();
            purged.retain(|_, at| now.duration_since(*at) < PURGE_INTERVAL);
            if purged.contains_key(name) {
                return Err(QueueError::PurgeQueueInProgress(format!(
                    "Only one PurgeQueue operation on {name} is allowed every 60 seconds."
                )));
            }
            purged.insert(name.to_string(), now);
        }
        in_tx!(&self.db, true, |tx| tx.purge(queue_id).await)
    }

    /// GetQueueAttributes: `names` may hold `All`; an empty list returns nothing.
    pub async fn get_queue_attributes(&self, name: &str, names: &[String]) -> Result<BTreeMap<String, String>, QueueError> {
        for n in names {
            if n != "All" && !KNOWN.contains(&n.as_str()) {
                return Err(QueueError::InvalidAttributeName(format!("Unknown Attribute {n}.")));
            }
        }
        if names.is_empty() {
            self.get_queue(name).await?;
            return Ok(BTreeMap::new());
        }
        let all = names.iter().any(|n| n == "All");
        let wanted: HashSet<String> = names.iter().cloned().collect();
        let n = name.to_string();
        let now = self.now();
        let arn = self.arn(name);
        let (q, counts) = in_tx!(&self.db, false, |tx| {
            let q = store::get_queue(tx, &n).await?;
            let c = tx.counts(q.id, now).await?;
            Ok((q, c))
        })?;
        let mut m = q.settings.to_map();
        m.insert("QueueArn".into(), arn);
        m.insert("ApproximateNumberOfMessages".into(), counts.0.to_string());
        m.insert("ApproximateNumberOfMessagesNotVisible".into(), counts.1.to_string());
        m.insert("ApproximateNumberOfMessagesDelayed".into(), counts.2.to_string());
        m.insert("CreatedTimestamp".into(), q.created_at.to_string());
        m.insert("LastModifiedTimestamp".into(), q.modified_at.to_string());
        if !all {
            m.retain(|k, _| wanted.contains(k));
        }
        Ok(m)
    }

    pub async fn set_queue_attributes(&self, name: &str, attrs: BTreeMap<String, String>) -> Result<(), QueueError> {
        let n = name.to_string();
        let now_secs = self.now() / 1000;
        let arn_prefix = self.arn("");
        in_tx!(&self.db, true, |tx| {
            let mut q = store::get_queue(tx, &n).await?;
            q.settings.apply(&attrs, Mode::Set)?;
            if attrs.contains_key("RedrivePolicy") {
                if let Some(p) = &q.settings.redrive_policy {
                    check_dead_letter_target(tx, &arn_prefix, &p.dead_letter_target_arn, q.settings.fifo).await?;
                }
            }
            q.modified_at = now_secs;
            tx.announce(&n);
            tx.update_queue(&q).await
        })?;
        // A shorter wait or delay may matter to pollers.
        self.wake(name);
        Ok(())
    }

    pub async fn tag_queue(&self, name: &str, tags: BTreeMap<String, String>) -> Result<(), QueueError> {
        validate_tags(&tags)?;
        let n = name.to_string();
        in_tx!(&self.db, true, |tx| {
            let mut q = store::get_queue(tx, &n).await?;
            q.tags.extend(tags);
            if q.tags.len() > 50 {
                return Err(QueueError::invalid(format!("Too many tags added for queue {n}.")));
            }
            tx.update_queue(&q).await
        })
    }

    pub async fn untag_queue(&self, name: &str, keys: Vec<String>) -> Result<(), QueueError> {
        let n = name.to_string();
        in_tx!(&self.db, true, |tx| {
            let mut q = store::get_queue(tx, &n).await?;
            for k in &keys {
                q.tags.remove(k);
            }
            tx.update_queue(&q).await
        })
    }

    pub async fn list_queue_tags(&self, name: &str) -> Result<BTreeMap<String, String>, QueueError> {
        let n = name.to_string();
        in_tx!(&self.db, false, |tx| Ok(store::get_queue(tx, &n).await?.tags))
    }

    /// Queues whose redrive policy targets `name`.
    pub async fn list_dead_letter_source_queues(
        &self,
        name: &str,
        max_results: Option<i64>,
        next_token: Option<String>,
    ) -> Result<(Vec<String>, Option<String>), QueueError> {
        let limit = page_limit(max_results)?;
        let after = decode_token(next_token.as_deref())?;
        let n = name.to_string();
        let arn = self.arn(name);
        let sources = in_tx!(&self.db, false, |tx| {
            store::get_queue(tx, &n).await?;
            Ok(tx
                .all_queues()
                .await?
                .into_iter()
                .filter(|q| q.settings.redrive_policy.as_ref().is_some_and(|p| p.dead_letter_target_arn == arn))
                .map(|q| q.name)
                .collect::<Vec<_>>())
        })?;
        Ok(paginate(sources, after, limit, max_results.is_some()))
    }

    // ---- messages -----------------------------------------------------------------

    fn prepare(&self, input: SendMessage) -> Result<Prepared, QueueError> {
        message::validate_body(&input.body)?;
        let attr_size = message::validate_attributes(&input.attributes)?;
        message::validate_system_attributes(&input.system_attributes)?;
        if let Some(d) = input.delay_seconds {
            if !(0..=i64::from(MAX_DELAY)).contains(&d) {
                return Err(QueueError::bad_value(d, "DelaySeconds", "DelaySeconds must be >= 0 and <= 900."));
            }
        }
        if let Some(g) = &input.group_id {
            validate_fifo_id(g, "MessageGroupId")?;
        }
        if let Some(d) = &input.dedup_id {
            validate_fifo_id(d, "MessageDeduplicationId")?;
        }
        Ok(Prepared {
            md5_of_body: message::md5_of_body(&input.body),
            md5_of_attributes: message::md5_of_attributes(&input.attributes),
            md5_of_system_attributes: message::md5_of_attributes(&input.system_attributes),
            size: input.body.len() + attr_size,
            input,
        })
    }

    pub async fn send_message(&self, name: &str, input: SendMessage) -> Result<SendResult, QueueError> {
        let p = self.prepare(input)?;
        let size = p.size;
        let n = name.to_string();
        let now = self.now();
        let sender = self.account.clone();
        let r = in_tx!(&self.db, true, |tx| {
            let q = store::get_queue(tx, &n).await?;
            send_in(tx, &q, p, now, &sender).await
        })?;
        self.sent(name, size, now);
        self.wake(name);
        Ok(r)
    }

    pub async fn send_message_batch(
        &self,
        name: &str,
        entries: Vec<BatchEntry<SendMessage>>,
    ) -> Result<BatchOutcome<SendResult>, QueueError> {
        check_batch(&entries, "SendMessageBatchRequestEntry")?;
        let mut failed = Vec::new();
        let mut ready = Vec::new();
        let mut total = 0usize;
        for e in entries {
            total += e.input.body.len()
                + e.input
                    .attributes
                    .iter()
                    .map(|(k, v)| {
                        k.len()
                            + v.data_type.len()
                            + v.string_value.as_ref().map_or(0, String::len)
                            + v.binary_value.as_ref().map_or(0, Vec::len)
                    })
                    .sum::<usize>();
            match self.prepare(e.input) {
                Ok(p) => ready.push((e.id, p)),
                Err(err) => failed.push(batch_failure(&e.id, &err)),
            }
        }
        if total > attributes::MAX_MESSAGE_SIZE as usize {
            return Err(QueueError::BatchRequestTooLong(format!(
                "Batch requests cannot be longer than {} bytes. You have sent {total} bytes.",
                attributes::MAX_MESSAGE_SIZE
            )));
        }
        let n = name.to_string();
        let now = self.now();
        let sender = self.account.clone();
        let (ok, more_failed) = in_tx!(&self.db, true, |tx| {
            let q = store::get_queue(tx, &n).await?;
            let mut ok = Vec::new();
            let mut failed = Vec::new();
            for (id, p) in ready {
                let size = p.size;
                match send_in(tx, &q, p, now, &sender).await {
                    Ok(r) => ok.push((id, r, size)),
                    Err(QueueError::Internal(e)) => return Err(QueueError::Internal(e)),
                    Err(e) => failed.push(batch_failure(&id, &e)),
                }
            }
            Ok((ok, failed))
        })?;
        failed.extend(more_failed);
        if !ok.is_empty() {
            self.wake(name);
        }
        let successful = ok
            .into_iter()
            .map(|(id, r, size)| {
                self.sent(name, size, now);
                (id, r)
            })
            .collect();
        Ok(BatchOutcome { successful, failed })
    }

    /// ReceiveMessage, long-polling up to the wait time: returns as soon as a message is
    /// available (a send wakes waiters; a delay or visibility timeout ending is waited for).
    pub async fn receive_message(&self, name: &str, req: ReceiveRequest) -> Result<Vec<ReceivedMessage>, QueueError> {
        if !(1..=10).contains(&req.max_messages) {
            return Err(QueueError::bad_value(req.max_messages, "MaxNumberOfMessages", "Must be between 1 and 10, if provided."));
        }
        self.receive_up_to(name, req).await
    }

    /// ReceiveMessage without the API's 10-message cap (event source mappings take up to
    /// 10,000 per batch).
    async fn receive_up_to(&self, name: &str, req: ReceiveRequest) -> Result<Vec<ReceivedMessage>, QueueError> {
        let visibility = req.visibility_timeout.map(check_visibility).transpose()?;
        if let Some(w) = req.wait_time_seconds {
            if !(0..=i64::from(MAX_WAIT)).contains(&w) {
                return Err(QueueError::bad_value(w, "WaitTimeSeconds", "Must be >= 0 and <= 20, if provided."));
            }
        }
        let req = Arc::new(req);
        let notify = self.notifier(name);
        let started = tokio::time::Instant::now();
        let mut wait: Option<Duration> = req.wait_time_seconds.map(|w| Duration::from_secs(w as u64));
        loop {
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let n = name.to_string();
            let now = self.now();
            let r = req.clone();
            let region_account = (self.region.clone(), self.account.clone());
            let (msgs, next, queue_wait, redriven) = in_tx!(&self.db, false, |tx| {
                let q = store::get_queue(tx, &n).await?;
                let (msgs, next, redriven) = receive_in(tx, &q, &r, visibility, now, &region_account).await?;
                Ok((msgs, next, q.settings.receive_message_wait_time_seconds, redriven))
            })?;
            if let Some(dlq) = redriven {
                self.wake(&dlq);
            }
            let wait = *wait.get_or_insert(Duration::from_secs(u64::from(queue_wait)));
            let elapsed = started.elapsed();
            // Read after the wake-up was registered: a drain that begins later wakes it.
            let draining = self.draining.load(std::sync::atomic::Ordering::Acquire);
            if !msgs.is_empty() || elapsed >= wait || draining {
                match msgs.len() {
                    0 => self.count(name, QueueMetric::NumberOfEmptyReceives, 1.0, self.now()),
                    n => self.count(name, QueueMetric::NumberOfMessagesReceived, n as f64, self.now()),
                }
                return Ok(msgs);
            }
            let mut sleep_for = wait - elapsed;
            if let Some(at) = next {
                sleep_for = sleep_for.min(Duration::from_millis((at - now).max(1) as u64));
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(sleep_for) => {}
            }
        }
    }

    pub async fn delete_message(&self, name: &str, receipt_handle: &str) -> Result<(), QueueError> {
        let outcome =
            self.delete_message_batch_inner(name, vec![BatchEntry { id: String::new(), input: receipt_handle.to_string() }]).await?;
        match outcome.into_iter().next() {
            Some((_, r)) => r,
            None => Ok(()),
        }
    }

    pub async fn delete_message_batch(&self, name: &str, entries: Vec<BatchEntry<String>>) -> Result<BatchOutcome<()>, QueueError> {
        check_batch(&entries, "DeleteMessageBatchRequestEntry")?;
        let results = self.delete_message_batch_inner(name, entries).await?;
        Ok(split(results))
    }

    async fn delete_message_batch_inner(
        &self,
        name: &str,
        entries: Vec<BatchEntry<String>>,
    ) -> Result<Vec<(String, Result<(), QueueError>)>, QueueError> {
        let n = name.to_string();
        let now = self.now();
        let results = in_tx!(&self.db, true, |tx| {
            let q = store::get_queue(tx, &n).await?;
            let mut out = Vec::new();
            for e in entries {
                let r = delete_in(tx, &q, &e.input, now).await;
                if let Err(QueueError::Internal(x)) = r {
                    return Err(QueueError::Internal(x));
                }
                out.push((e.id, r));
            }
            if q.settings.fifo {
                // Deleting an in-flight FIFO message unblocks its group.
                tx.announce(&n);
            }
            Ok(out)
        })?;
        let deleted = results.iter().filter(|(_, r)| r.is_ok()).count();
        if deleted > 0 {
            self.count(name, QueueMetric::NumberOfMessagesDeleted, deleted as f64, now);
        }
        // Deleting an in-flight FIFO message unblocks its group.
        self.wake(name);
        Ok(results)
    }

    pub async fn change_message_visibility(&self, name: &str, receipt_handle: &str, visibility_timeout: i64) -> Result<(), QueueError> {
        let entries = vec![BatchEntry {
            id: String::new(),
            input: VisibilityChange { receipt_handle: receipt_handle.to_string(), visibility_timeout },
        }];
        let r = self.change_visibility_inner(name, entries).await?;
        match r.into_iter().next() {
            Some((_, r)) => r,
            None => Ok(()),
        }
    }

    pub async fn change_message_visibility_batch(
        &self,
        name: &str,
        entries: Vec<BatchEntry<VisibilityChange>>,
    ) -> Result<BatchOutcome<()>, QueueError> {
        check_batch(&entries, "ChangeMessageVisibilityBatchRequestEntry")?;
        Ok(split(self.change_visibility_inner(name, entries).await?))
    }

    async fn change_visibility_inner(
        &self,
        name: &str,
        entries: Vec<BatchEntry<VisibilityChange>>,
    ) -> Result<Vec<(String, Result<(), QueueError>)>, QueueError> {
        let n = name.to_string();
        let now = self.now();
        let results = in_tx!(&self.db, false, |tx| {
            let q = store::get_queue(tx, &n).await?;
            let mut out = Vec::new();
            for e in entries {
                let r = match check_visibility(e.input.visibility_timeout) {
                    Ok(t) => change_visibility_in(tx, &q, &e.input.receipt_handle, t, now).await,
                    Err(e) => Err(e),
                };
                if let Err(QueueError::Internal(x)) = r {
                    return Err(QueueError::Internal(x));
                }
                out.push((e.id, r));
            }
            tx.announce(&n);
            Ok(out)
        })?;
        self.wake(name);
        Ok(results)
    }

    /// Removes expired messages and deduplication entries.
    pub async fn sweep(&self) -> Result<usize, QueueError> {
        let now = self.now();
        in_tx!(&self.db, false, |tx| tx.sweep(now).await)
    }

    // ---- for the rest of Nimbus: queues by ARN ---------------------------------------

    /// The queue an ARN names, if it exists.
    pub async fn queue_by_arn(&self, arn: &str) -> Result<QueueInfo, QueueError> {
        let name = self.name_from_arn(arn).ok_or(QueueError::QueueDoesNotExist)?;
        let n = name.clone();
        let q = in_tx!(&self.db, false, |tx| store::get_queue(tx, &n).await)?;
        Ok(QueueInfo { arn: self.arn(&name), fifo: q.settings.fifo, visibility_timeout: q.settings.visibility_timeout, name })
    }

    /// Sends one message to the queue `queue_arn` (e.g. an async invocation's DLQ).
    pub async fn send(&self, queue_arn: &str, body: &str, attributes: MessageAttributes) -> Result<SendResult, QueueError> {
        let name = self.name_from_arn(queue_arn).ok_or(QueueError::QueueDoesNotExist)?;
        self.send_message(&name, SendMessage { body: body.to_string(), attributes, ..Default::default() }).await
    }

    /// Receives up to `max` messages (1–10,000) with all attributes, e.g. for an event
    /// source mapping.
    pub async fn receive(
        &self,
        queue_arn: &str,
        max: u32,
        visibility_timeout: Option<u32>,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let name = self.name_from_arn(queue_arn).ok_or(QueueError::QueueDoesNotExist)?;
        let req = ReceiveRequest {
            max_messages: i64::from(max.clamp(1, 10_000)),
            visibility_timeout: visibility_timeout.map(i64::from),
            wait_time_seconds: Some(wait.as_secs().min(u64::from(MAX_WAIT)) as i64),
            system_attribute_names: vec!["All".into()],
            message_attribute_names: vec!["All".into()],
        };
        self.receive_up_to(&name, req).await
    }

    pub async fn delete(&self, queue_arn: &str, receipt_handle: &str) -> Result<(), QueueError> {
        let name = self.name_from_arn(queue_arn).ok_or(QueueError::QueueDoesNotExist)?;
        self.delete_message(&name, receipt_handle).await
    }

    pub async fn change_visibility(&self, queue_arn: &str, receipt_handle: &str, visibility_timeout: u32) -> Result<(), QueueError> {
        let name = self.name_from_arn(queue_arn).ok_or(QueueError::QueueDoesNotExist)?;
        self.change_message_visibility(&name, receipt_handle, i64::from(visibility_timeout)).await
    }
}

/// The queue name in a queue URL (`http://host/<account>/<name>`, any host), a path
/// (`/<account>/<name>`) or a bare name; a URL of another account names no queue here.
pub fn queue_name_from_url(url_or_name: &str, account: &str) -> Result<String, QueueError> {
    let s = url_or_name.trim();
    if s.is_empty() {
        return Err(QueueError::MissingParameter("The request must contain the parameter QueueUrl.".into()));
    }
    let path = match s.find("://") {
        Some(i) => {
            let rest = &s[i + 3..];
            rest.find('/').map(|j| &rest[j..]).unwrap_or("")
        }
        None => s,
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        [name] => Ok(name.to_string()),
        [.., acct, name] if *acct == account => Ok(name.to_string()),
        [.., _, _] => Err(QueueError::QueueDoesNotExist),
        [] => Err(QueueError::invalid(format!("Value {s} for parameter QueueUrl is invalid. Reason: Invalid URL."))),
    }
}

fn split(results: Vec<(String, Result<(), QueueError>)>) -> BatchOutcome<()> {
    let mut out = BatchOutcome { successful: Vec::new(), failed: Vec::new() };
    for (id, r) in results {
        match r {
            Ok(()) => out.successful.push((id, ())),
            Err(e) => out.failed.push(batch_failure(&id, &e)),
        }
    }
    out
}

fn validate_tags(tags: &BTreeMap<String, String>) -> Result<(), QueueError> {
    if tags.len() > 50 {
        return Err(QueueError::invalid("Too many tags added for queue."));
    }
    for (k, v) in tags {
        if k.is_empty() || k.len() > 128 || v.len() > 256 {
            return Err(QueueError::invalid(format!("Tag {k} is invalid: keys are 1 to 128 characters, values up to 256.")));
        }
    }
    Ok(())
}

fn page_limit(max_results: Option<i64>) -> Result<usize, QueueError> {
    match max_results {
        None => Ok(1000),
        Some(n) if (1..=1000).contains(&n) => Ok(n as usize),
        Some(n) => Err(QueueError::bad_value(n, "MaxResults", "MaxResults must be an integer between 1 and 1000.")),
    }
}

fn decode_token(token: Option<&str>) -> Result<Option<String>, QueueError> {
    match token.filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .map(Some)
            .ok_or_else(|| QueueError::invalid("Invalid or expired next token.")),
    }
}

fn paginate(names: Vec<String>, after: Option<String>, limit: usize, paginated: bool) -> (Vec<String>, Option<String>) {
    let rest: Vec<String> = names.into_iter().filter(|n| after.as_ref().is_none_or(|a| n > a)).collect();
    let more = rest.len() > limit;
    let page: Vec<String> = rest.into_iter().take(limit).collect();
    let token = (paginated && more).then(|| page.last().map(|l| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(l))).flatten();
    (page, token)
}

/// The dead-letter target must be an existing queue of this account, of the same type.
async fn check_dead_letter_target(tx: &mut impl QueueTx, arn_prefix: &str, target: &str, fifo: bool) -> Result<(), QueueError> {
    let bad = |reason: &str| QueueError::bad_value(target, "RedrivePolicy", reason);
    let name = target.strip_prefix(arn_prefix).filter(|n| !n.is_empty()).ok_or_else(|| bad("Dead-letter target does not exist."))?;
    let dlq = tx.find_queue(name).await?.ok_or_else(|| bad("Dead-letter target does not exist."))?;
    if dlq.settings.fifo != fifo {
        return Err(bad("Dead-letter queue must be same type of queue as the source."));
    }
    Ok(())
}

async fn send_in(tx: &mut impl QueueTx, q: &QueueRecord, p: Prepared, now: i64, sender: &str) -> Result<SendResult, QueueError> {
    let s = &q.settings;
    if p.size > s.maximum_message_size as usize {
        return Err(QueueError::invalid(format!(
            "One or more parameters are invalid. Reason: Message must be shorter than {} bytes.",
            s.maximum_message_size
        )));
    }
    let m = p.input;
    let mut dedup_id = None;
    if s.fifo {
        if m.group_id.is_none() {
            return Err(QueueError::MissingParameter("The request must contain the parameter MessageGroupId.".into()));
        }
        if let Some(d) = m.delay_seconds {
            return Err(QueueError::bad_value(d, "DelaySeconds", "The request include parameter that is not valid for this queue type."));
        }
        dedup_id = match (&m.dedup_id, s.content_based_deduplication) {
            (Some(d), _) => Some(d.clone()),
            (None, true) => Some(hex::encode(Sha256::digest(m.body.as_bytes()))),
            (None, false) => {
                return Err(QueueError::invalid(
                    "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly",
                ))
            }
        };
    } else if let Some(d) = &m.dedup_id {
        return Err(QueueError::bad_value(
            d,
            "MessageDeduplicationId",
            "The request include parameter that is not valid for this queue type.",
        ));
    }
    if s.fifo {
        tx.lock_fifo(q.id).await?;
    }
    if let Some(d) = &dedup_id {
        if let Some((message_id, seq)) = tx.find_duplicate(q.id, d, now).await? {
            return Ok(SendResult {
                message_id,
                md5_of_body: p.md5_of_body,
                md5_of_attributes: p.md5_of_attributes,
                md5_of_system_attributes: p.md5_of_system_attributes,
                sequence_number: Some(format!("{seq:020}")),
            });
        }
    }
    let delay = m.delay_seconds.unwrap_or(i64::from(s.delay_seconds));
    let message_id = uuid::Uuid::new_v4().to_string();
    let row = tx
        .insert_message(
            q.id,
            &NewMessage {
                message_id: message_id.clone(),
                body: m.body,
                body_md5: p.md5_of_body.clone(),
                attributes: m.attributes,
                system_attributes: m.system_attributes,
                sent_at: now,
                available_at: now + delay * 1000,
                expires_at: now + i64::from(s.message_retention_period) * 1000,
                group_id: m.group_id,
                dedup_id: dedup_id.clone(),
                sender_id: sender.to_string(),
                dlq_source_arn: None,
            },
        )
        .await?;
    if let Some(d) = &dedup_id {
        tx.remember_dedup(q.id, d, &message_id, row, now + DEDUP_WINDOW_MS).await?;
    }
    tx.announce(&q.name);
    Ok(SendResult {
        message_id,
        md5_of_body: p.md5_of_body,
        md5_of_attributes: p.md5_of_attributes,
        md5_of_system_attributes: p.md5_of_system_attributes,
        sequence_number: s.fifo.then(|| format!("{row:020}")),
    })
}

type ReceiveOutcome = (Vec<ReceivedMessage>, Option<i64>, Option<String>);

async fn receive_in(
    tx: &mut impl QueueTx,
    q: &QueueRecord,
    req: &ReceiveRequest,
    visibility: Option<u32>,
    now: i64,
    (region, account): &(String, String),
) -> Result<ReceiveOutcome, QueueError> {
    let max = req.max_messages as usize;
    let visibility = i64::from(visibility.unwrap_or(q.settings.visibility_timeout));
    let source_arn = format!("arn:aws:sqs:{region}:{account}:{}", q.name);
    let dlq = match &q.settings.redrive_policy {
        Some(p) => match p.dead_letter_target_arn.strip_prefix(&format!("arn:aws:sqs:{region}:{account}:")) {
            Some(n) => tx.find_queue(n).await?.map(|d| (d, p.max_receive_count)),
            None => None,
        },
        None => None,
    };
    if q.settings.fifo {
        tx.lock_fifo(q.id).await?;
    }
    let mut out = Vec::new();
    let mut redriven = None;
    // Redriven messages do not count; look again until the batch is full or nothing is left.
    for _round in 0..5 {
        let candidates = if q.settings.fifo {
            store::fifo_candidates(tx, q.id, now, max).await?
        } else {
            tx.standard_candidates(q.id, now, max - out.len()).await?
        };
        if candidates.is_empty() {
            break;
        }
        let mut moved_any = false;
        let mut marks = Vec::new();
        // A FIFO group whose message moved to the DLQ continues on the next round, in order.
        let mut stop_groups: HashSet<String> = HashSet::new();
        for m in candidates {
            if out.len() >= max {
                break;
            }
            let group = q.settings.fifo.then(|| m.message.group_id.clone().unwrap_or_default());
            if group.as_ref().is_some_and(|g| stop_groups.contains(g)) {
                continue;
            }
            if let Some((dlq, max_receives)) = &dlq {
                if m.receive_count >= *max_receives {
                    let mut moved = m.message.clone();
                    moved.available_at = now;
                    moved.expires_at = m.message.sent_at + i64::from(dlq.settings.message_retention_period) * 1000;
                    moved.dlq_source_arn = Some(source_arn.clone());
                    tx.insert_message(dlq.id, &moved).await?;
                    tx.delete_message(m.id).await?;
                    tx.announce(&dlq.name);
                    redriven = Some(dlq.name.clone());
                    moved_any = true;
                    if let Some(g) = group {
                        stop_groups.insert(g);
                    }
                    continue;
                }
            }
            let nonce = uuid::Uuid::new_v4().simple().to_string();
            let count = m.receive_count + 1;
            let first = m.first_receive_at.unwrap_or(now);
            out.push(render_received(q, &m, encode_receipt(q.id, m.id, &nonce), count, first, req));
            marks.push(Mark { id: m.id, receipt: nonce, available_at: now + visibility * 1000, count, first });
        }
        tx.mark_received(&marks).await?;
        if !moved_any || out.len() >= max {
            break;
        }
    }
    let next = if out.is_empty() { tx.next_available(q.id, now).await? } else { None };
    Ok((out, next, redriven))
}

fn render_received(
    q: &QueueRecord,
    m: &store::StoredMessage,
    receipt_handle: String,
    count: u32,
    first: i64,
    req: &ReceiveRequest,
) -> ReceivedMessage {
    let msg = &m.message;
    let wanted = |n: &str| req.system_attribute_names.iter().any(|w| w == "All" || w == n);
    let mut attributes = BTreeMap::new();
    let mut put = |n: &str, v: Option<String>| {
        if let Some(v) = v {
            if wanted(n) {
                attributes.insert(n.to_string(), v);
            }
        }
    };
    put("SenderId", Some(msg.sender_id.clone()));
    put("SentTimestamp", Some(msg.sent_at.to_string()));
    put("ApproximateReceiveCount", Some(count.to_string()));
    put("ApproximateFirstReceiveTimestamp", Some(first.to_string()));
    if q.settings.fifo {
        put("SequenceNumber", Some(format!("{:020}", m.id)));
        put("MessageDeduplicationId", msg.dedup_id.clone());
    }
    put("MessageGroupId", msg.group_id.clone());
    put("AWSTraceHeader", msg.system_attributes.get("AWSTraceHeader").and_then(|v| v.string_value.clone()));
    put("DeadLetterQueueSourceArn", msg.dlq_source_arn.clone());
    let message_attributes = message::select_attributes(&msg.attributes, &req.message_attribute_names);
    ReceivedMessage {
        message_id: msg.message_id.clone(),
        receipt_handle,
        md5_of_body: msg.body_md5.clone(),
        body: msg.body.clone(),
        attributes,
        md5_of_message_attributes: message::md5_of_attributes(&message_attributes),
        message_attributes,
    }
}

async fn delete_in(tx: &mut impl QueueTx, q: &QueueRecord, rh: &str, now: i64) -> Result<(), QueueError> {
    let (queue_id, row, nonce) = decode_receipt(rh)?;
    if queue_id != q.id {
        return Err(invalid_receipt(rh));
    }
    let Some(m) = tx.load_message(q.id, row).await? else {
        return Ok(()); // already deleted: AWS answers success
    };
    // FIFO queues refuse a handle whose receive is over; standard queues delete anyway.
    if q.settings.fifo && (m.receipt.as_deref() != Some(nonce.as_str()) || m.message.available_at <= now) {
        return Err(QueueError::bad_value(rh, "ReceiptHandle", "The receipt handle has expired."));
    }
    tx.delete_message(row).await
}

async fn change_visibility_in(tx: &mut impl QueueTx, q: &QueueRecord, rh: &str, timeout: u32, now: i64) -> Result<(), QueueError> {
    let (queue_id, row, nonce) = decode_receipt(rh)?;
    if queue_id != q.id {
        return Err(invalid_receipt(rh));
    }
    let not_inflight =
        || QueueError::MessageNotInflight("Message does not exist or is not available for visibility timeout change.".into());
    let m = tx.load_message(q.id, row).await?.ok_or_else(not_inflight)?;
    if m.receipt.as_deref() != Some(nonce.as_str()) || m.message.available_at <= now {
        return Err(not_inflight());
    }
    tx.set_available_at(row, now + i64::from(timeout) * 1000).await
}

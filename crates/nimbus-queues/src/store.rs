//! Durable queue storage behind one interface, [`QueueTx`]: the operations a transaction of
//! the queue service composes (find a queue, pick receivable messages, mark them received,
//! delete, …), written once per engine. `queues.db` (SQLite, [`sqlite`]) serves one node;
//! PostgreSQL ([`postgres`], `--store postgres://…`) is shared by several, whose receives
//! lock the rows they pick (`FOR UPDATE SKIP LOCKED`) so two nodes never hand out one message
//! at once. The service's logic is written once, generic over the transaction, and runs in
//! whichever [`Db`] the service opened (`in_tx!`).

use std::collections::BTreeMap;

use crate::attributes::QueueSettings;
use crate::error::QueueError;
use crate::message::MessageAttributes;
use crate::metrics::QueueGauges;

pub(crate) mod postgres;
pub(crate) mod sqlite;

/// Where the queues are: `queues.db` (one writer thread committing in groups) or the
/// account's schema in a database several nodes share.
pub(crate) type Db = nimbus_store::tx::Engine<sqlite::Store, postgres::SharedQueues>;

/// [`nimbus_store::in_tx!`] for the queues.
macro_rules! in_tx {
    ($db:expr, $durable:expr, |$tx:ident| $body:expr) => {
        nimbus_store::in_tx!($db, $durable, $crate::store::sqlite::SqliteTx, |$tx| $body)
    };
}
pub(crate) use in_tx;

/// The operations of one transaction on the queues. Each engine answers them with its own
/// SQL; the service composes them (its checks and AWS's semantics are written once).
#[allow(async_fn_in_trait)]
pub(crate) trait QueueTx {
    async fn find_queue(&mut self, name: &str) -> Result<Option<QueueRecord>, QueueError>;
    /// Every queue, by name.
    async fn all_queues(&mut self) -> Result<Vec<QueueRecord>, QueueError>;
    async fn insert_queue(
        &mut self,
        name: &str,
        settings: &QueueSettings,
        tags: &BTreeMap<String, String>,
        now_secs: i64,
    ) -> Result<QueueRecord, QueueError>;
    /// Writes the queue's attributes, tags and modification time.
    async fn update_queue(&mut self, q: &QueueRecord) -> Result<(), QueueError>;
    /// Deletes the queue with its messages and deduplication entries.
    async fn delete_queue(&mut self, id: i64) -> Result<(), QueueError>;
    async fn purge(&mut self, id: i64) -> Result<(), QueueError>;
    /// Every queue's gauges at `now` (ms).
    async fn gauges(&mut self, now: i64) -> Result<Vec<QueueGauges>, QueueError>;
    /// (visible, in flight, delayed) at `now` (ms).
    async fn counts(&mut self, id: i64, now: i64) -> Result<(u64, u64, u64), QueueError>;
    /// Inserts a message and returns its row id (the FIFO sequence number).
    async fn insert_message(&mut self, queue_id: i64, m: &NewMessage) -> Result<i64, QueueError>;
    async fn load_message(&mut self, queue_id: i64, id: i64) -> Result<Option<StoredMessage>, QueueError>;
    async fn delete_message(&mut self, id: i64) -> Result<(), QueueError>;
    /// Records receives: each message's new receipt, visibility and counts.
    async fn mark_received(&mut self, marks: &[Mark]) -> Result<(), QueueError>;
    async fn set_available_at(&mut self, id: i64, available_at: i64) -> Result<(), QueueError>;
    /// Up to `limit` receivable messages of a standard queue, oldest-available first, none
    /// that another transaction is receiving.
    async fn standard_candidates(&mut self, queue_id: i64, now: i64, limit: usize) -> Result<Vec<StoredMessage>, QueueError>;
    /// The FIFO queue's messages not receivable now (delayed or in flight): (group, row id,
    /// receive count).
    async fn fifo_unavailable(&mut self, queue_id: i64, now: i64) -> Result<Vec<(String, i64, u32)>, QueueError>;
    /// Up to `limit` receivable messages of a FIFO queue outside `blocked` groups, in send order.
    async fn fifo_available(&mut self, queue_id: i64, now: i64, blocked: &[String], limit: usize)
        -> Result<Vec<StoredMessage>, QueueError>;
    /// When the next message of the queue becomes available (ms), if any is waiting.
    async fn next_available(&mut self, queue_id: i64, now: i64) -> Result<Option<i64>, QueueError>;
    /// The message a deduplication id stands for, if it was seen within the window.
    async fn find_duplicate(&mut self, queue_id: i64, dedup_id: &str, now: i64) -> Result<Option<(String, i64)>, QueueError>;
    async fn remember_dedup(
        &mut self,
        queue_id: i64,
        dedup_id: &str,
        message_id: &str,
        sequence: i64,
        expires_at: i64,
    ) -> Result<(), QueueError>;
    /// Drops expired messages and deduplication entries; returns how many messages went.
    async fn sweep(&mut self, now: i64) -> Result<usize, QueueError>;
    /// Holds the FIFO queue for the rest of the transaction: its sends and receives run one
    /// at a time (a group's order, deduplication). One writer needs nothing.
    async fn lock_fifo(&mut self, queue_id: i64) -> Result<(), QueueError>;
    /// Tells other nodes' waiting receives, at commit, that the queue changed.
    fn announce(&mut self, queue: &str);
}

/// A queue as stored.
#[derive(Debug, Clone)]
pub struct QueueRecord {
    pub id: i64,
    pub name: String,
    pub settings: QueueSettings,
    pub tags: BTreeMap<String, String>,
    /// Unix seconds.
    pub created_at: i64,
    pub modified_at: i64,
}

impl QueueRecord {
    /// A stored row's columns as read.
    fn from_columns(id: i64, name: String, fifo: bool, attributes: &str, tags: &str, created_at: i64, modified_at: i64) -> QueueRecord {
        let map: BTreeMap<String, String> = serde_json::from_str(attributes).unwrap_or_default();
        QueueRecord {
            id,
            name,
            settings: QueueSettings::from_map(fifo, &map),
            tags: serde_json::from_str(tags).unwrap_or_default(),
            created_at,
            modified_at,
        }
    }

    /// The attributes and tags as stored (JSON objects).
    fn documents(settings: &QueueSettings, tags: &BTreeMap<String, String>) -> Result<(String, String), QueueError> {
        let attrs = serde_json::to_string(&settings.to_map()).map_err(|e| QueueError::Internal(e.to_string()))?;
        let tags = serde_json::to_string(tags).map_err(|e| QueueError::Internal(e.to_string()))?;
        Ok((attrs, tags))
    }
}

/// A message ready to be written.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub message_id: String,
    pub body: String,
    pub body_md5: String,
    pub attributes: MessageAttributes,
    pub system_attributes: MessageAttributes,
    pub sent_at: i64,
    pub available_at: i64,
    pub expires_at: i64,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
    pub sender_id: String,
    pub dlq_source_arn: Option<String>,
}

/// Message attributes as stored: JSON, or NULL when there are none.
fn attributes_json(a: &MessageAttributes) -> Result<Option<String>, QueueError> {
    if a.is_empty() {
        return Ok(None);
    }
    serde_json::to_string(a).map(Some).map_err(|e| QueueError::Internal(e.to_string()))
}

fn parse_attributes(stored: Option<String>) -> MessageAttributes {
    stored.and_then(|s| serde_json::from_str::<MessageAttributes>(&s).ok()).unwrap_or_default()
}

/// A stored message.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub id: i64,
    pub message: NewMessage,
    pub receive_count: u32,
    pub first_receive_at: Option<i64>,
    pub receipt: Option<String>,
}

/// A receive to record: the message's new receipt nonce, when it becomes visible again,
/// its receive count and first receive time.
#[derive(Debug, Clone)]
pub struct Mark {
    pub id: i64,
    pub receipt: String,
    pub available_at: i64,
    pub count: u32,
    pub first: i64,
}

/// The columns every message read selects, in [`StoredMessage`]'s order.
const MESSAGE_COLUMNS: &str = "id, queue_id, message_id, body, body_md5, attributes, system_attributes, sent_at, available_at, expires_at,
    receive_count, first_receive_at, receipt, group_id, dedup_id, sender_id, dlq_source_arn";

const QUEUE_COLUMNS: &str = "id, name, fifo, attributes, tags, created_at, modified_at";

pub(crate) async fn get_queue(tx: &mut impl QueueTx, name: &str) -> Result<QueueRecord, QueueError> {
    tx.find_queue(name).await?.ok_or(QueueError::QueueDoesNotExist)
}

/// Receivable messages of a FIFO queue in send order, each group contributing only the
/// messages before its first unavailable one and nothing while any of its messages is in
/// flight; messages of one group are kept together, first group first.
pub(crate) async fn fifo_candidates(tx: &mut impl QueueTx, queue_id: i64, now: i64, max: usize) -> Result<Vec<StoredMessage>, QueueError> {
    // Groups with something unavailable: blocked entirely (in flight) or from a message on.
    let mut blocked_from: BTreeMap<String, i64> = BTreeMap::new();
    for (group, id, received) in tx.fifo_unavailable(queue_id, now).await? {
        let from = if received > 0 { i64::MIN } else { id };
        let e = blocked_from.entry(group).or_insert(from);
        *e = (*e).min(from);
    }
    let fully_blocked: Vec<String> = blocked_from.iter().filter(|(_, from)| **from == i64::MIN).map(|(g, _)| g.clone()).collect();
    let rows = tx.fifo_available(queue_id, now, &fully_blocked, (max * 10).max(100)).await?;
    let mut groups: Vec<(String, Vec<StoredMessage>)> = Vec::new();
    let mut taken = 0;
    for m in rows {
        let group = m.message.group_id.clone().unwrap_or_default();
        if blocked_from.get(&group).is_some_and(|from| m.id > *from) {
            continue;
        }
        match groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, ms)) => ms.push(m),
            None => groups.push((group, vec![m])),
        }
        taken += 1;
        if taken >= max * 4 {
            break;
        }
    }
    Ok(groups.into_iter().flat_map(|(_, ms)| ms).collect())
}

//! Durable topic storage behind one interface, [`TopicTx`]: the operations a transaction of
//! the topic service composes, written once per engine. `topics.db` (SQLite, [`sqlite`])
//! serves one node; PostgreSQL ([`postgres`], `--store postgres://…`) is shared by several:
//! every node mirrors the topics and subscriptions (reloaded when another node changes
//! them), and each pending delivery is held by one node under a lease, taken over by
//! another once it lapses (its holder died), so an acknowledged publish is delivered while
//! any node is up.

use std::collections::BTreeMap;

use crate::error::TopicError;
use crate::message::StoredMessage;

pub(crate) mod postgres;
pub(crate) mod sqlite;

/// Where the topics are: `topics.db` (one writer thread committing in groups) or the
/// account's schema in a database several nodes share.
pub(crate) type Db = nimbus_store::tx::Engine<sqlite::Store, std::sync::Arc<postgres::SharedTopics>>;

/// [`nimbus_store::in_tx!`] for the topics.
macro_rules! in_tx {
    ($db:expr, $durable:expr, |$tx:ident| $body:expr) => {
        nimbus_store::in_tx!($db, $durable, $crate::store::sqlite::SqliteTx, |$tx| $body)
    };
}
pub(crate) use in_tx;

/// The operations of one transaction on the topics. Each engine answers them with its own
/// SQL; the service composes them.
#[allow(async_fn_in_trait)]
pub(crate) trait TopicTx {
    async fn all_topics(&mut self) -> Result<Vec<TopicRow>, TopicError>;
    async fn all_subscriptions(&mut self) -> Result<Vec<SubscriptionRow>, TopicError>;
    async fn insert_topic(&mut self, t: &TopicRow) -> Result<(), TopicError>;
    /// Writes the topic's attributes, tags and deleted-subscription count.
    async fn update_topic(&mut self, t: &TopicRow) -> Result<(), TopicError>;
    /// Deletes a topic with its subscriptions, pending deliveries and dedup entries.
    async fn delete_topic(&mut self, name: &str, topic_arn: &str) -> Result<(), TopicError>;
    async fn upsert_subscription(&mut self, s: &SubscriptionRow, now: i64) -> Result<(), TopicError>;
    async fn delete_subscription(&mut self, arn: &str) -> Result<(), TopicError>;
    /// Holds the FIFO topic for the rest of the transaction (its deduplication and sequence
    /// across nodes). One writer needs nothing.
    async fn lock_topic(&mut self, name: &str) -> Result<(), TopicError>;
    /// Takes the topic's next sequence number.
    async fn next_sequence(&mut self, topic: &str) -> Result<i64, TopicError>;
    /// Stores a message with one delivery per subscription (held by this node); returns the
    /// message's row and the delivery ids in the subscriptions' order.
    async fn insert_message(&mut self, m: &StoredMessage, subscriptions: &[String], now: i64) -> Result<(i64, Vec<i64>), TopicError>;
    /// Removes a finished delivery (unless another node took it over), and its message once
    /// no delivery needs it.
    async fn finish_delivery(&mut self, id: i64, message_row: i64) -> Result<(), TopicError>;
    async fn reschedule_delivery(&mut self, id: i64, attempts: u32, next_at: i64) -> Result<(), TopicError>;
    /// Deliveries for this node to make, with their messages, in order: every pending one
    /// (one node), or those whose holder's lease lapsed, now held by this node (several).
    async fn pending_deliveries(&mut self) -> Result<Vec<(DeliveryRow, StoredMessage)>, TopicError>;
    /// The message a deduplication id stands for, if seen within the window.
    async fn find_duplicate(&mut self, topic_arn: &str, dedup_id: &str, now: i64) -> Result<Option<(String, Option<String>)>, TopicError>;
    async fn remember_dedup(
        &mut self,
        topic_arn: &str,
        dedup_id: &str,
        message_id: &str,
        sequence: Option<&str>,
        expires_at: i64,
    ) -> Result<(), TopicError>;
    async fn sweep_dedup(&mut self, now: i64) -> Result<(), TopicError>;
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, TopicError> {
    serde_json::to_string(v).map_err(|e| TopicError::Internal(e.to_string()))
}

/// A stored message document, read back; None (logged) when it cannot be read.
fn parse_message(row: i64, doc: &str) -> Option<StoredMessage> {
    match serde_json::from_str::<StoredMessage>(doc) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::warn!("dropping unreadable stored message {row}: {e}");
            None
        }
    }
}

/// A topic as stored.
#[derive(Debug, Clone)]
pub struct TopicRow {
    pub name: String,
    pub fifo: bool,
    pub attributes: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    pub deleted_subscriptions: u64,
    pub created_at: i64,
}

/// A subscription as stored.
#[derive(Debug, Clone)]
pub struct SubscriptionRow {
    pub arn: String,
    pub topic: String,
    pub protocol: String,
    pub endpoint: String,
    pub confirmed: bool,
    pub token: Option<String>,
    pub attributes: BTreeMap<String, String>,
}

/// A delivery still to be made.
#[derive(Debug, Clone)]
pub struct DeliveryRow {
    pub id: i64,
    pub message_row: i64,
    pub subscription: String,
    pub attempts: u32,
    pub next_at: i64,
}

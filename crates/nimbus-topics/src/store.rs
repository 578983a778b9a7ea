//! Durable topic storage: one SQLite file (`topics.db`, WAL) owned by one writer thread, as
//! in the queue service. Jobs queue up; the thread runs whatever is waiting in one
//! transaction (each job in its own savepoint) and answers only after the commit. A batch
//! holding a durable job (a publish, any change to topics or subscriptions) commits with
//! `synchronous=FULL`, so an acknowledged publish survives `kill -9` and power loss;
//! bookkeeping of deliveries alone commits without the fsync (losing it only repeats a
//! delivery: at least once).

use std::collections::BTreeMap;
use std::path::Path;

use nimbus_store::group_commit::GroupCommit;
use rusqlite::{params, Connection, OptionalExtension};

use crate::error::TopicError;
use crate::message::StoredMessage;

/// Handle to the writer thread.
pub struct Store {
    db: GroupCommit,
}

/// `topics.db`.
const SCHEMA: nimbus_store::db::Schema = nimbus_store::db::Schema {
    name: "topic",
    migrations: &[
        // 1: the schema of the first release.
        "
CREATE TABLE IF NOT EXISTS topics (
    name TEXT PRIMARY KEY,
    fifo INTEGER NOT NULL,
    attributes TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '{}',
    deleted_subscriptions INTEGER NOT NULL DEFAULT 0,
    sequence INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS subscriptions (
    arn TEXT PRIMARY KEY,
    topic TEXT NOT NULL,
    protocol TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    confirmed INTEGER NOT NULL,
    token TEXT,
    attributes TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS subscriptions_topic ON subscriptions(topic);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    message INTEGER NOT NULL,
    subscription TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_message ON deliveries(message);
CREATE TABLE IF NOT EXISTS dedup (
    topic TEXT NOT NULL,
    dedup_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    sequence TEXT,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (topic, dedup_id)
);
",
    ],
};
impl Store {
    /// Opens (creating if needed) the database at `path` and starts its writer thread.
    pub fn open(path: &Path) -> Result<Store, TopicError> {
        Ok(Store { db: GroupCommit::open(path, &SCHEMA).map_err(TopicError::Internal)? })
    }

    /// Runs `f` on the writer thread inside the next transaction and returns its result
    /// once that transaction is committed. `durable` asks for an fsync before the answer.
    pub async fn run<T: Send + 'static>(
        &self,
        durable: bool,
        f: impl FnOnce(&Connection) -> Result<T, TopicError> + Send + 'static,
    ) -> Result<T, TopicError> {
        self.db.run(durable, f, TopicError::Internal).await
    }

    /// Like [`Store::run`] without waiting for the answer (delivery bookkeeping).
    pub fn spawn(&self, f: impl FnOnce(&Connection) -> Result<(), TopicError> + Send + 'static) {
        self.db.spawn(f);
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, TopicError> {
    serde_json::to_string(v).map_err(|e| TopicError::Internal(e.to_string()))
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

pub fn all_topics(conn: &Connection) -> Result<Vec<TopicRow>, TopicError> {
    let mut st = conn.prepare("SELECT name, fifo, attributes, tags, deleted_subscriptions, created_at FROM topics ORDER BY name")?;
    let rows = st.query_map([], |r| {
        let attrs: String = r.get(2)?;
        let tags: String = r.get(3)?;
        Ok(TopicRow {
            name: r.get(0)?,
            fifo: r.get(1)?,
            attributes: serde_json::from_str(&attrs).unwrap_or_default(),
            tags: serde_json::from_str(&tags).unwrap_or_default(),
            deleted_subscriptions: r.get::<_, i64>(4)?.max(0) as u64,
            created_at: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn all_subscriptions(conn: &Connection) -> Result<Vec<SubscriptionRow>, TopicError> {
    let mut st =
        conn.prepare("SELECT arn, topic, protocol, endpoint, confirmed, token, attributes FROM subscriptions ORDER BY created_at, arn")?;
    let rows = st.query_map([], |r| {
        let attrs: String = r.get(6)?;
        Ok(SubscriptionRow {
            arn: r.get(0)?,
            topic: r.get(1)?,
            protocol: r.get(2)?,
            endpoint: r.get(3)?,
            confirmed: r.get(4)?,
            token: r.get(5)?,
            attributes: serde_json::from_str(&attrs).unwrap_or_default(),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn insert_topic(conn: &Connection, t: &TopicRow) -> Result<(), TopicError> {
    conn.execute(
        "INSERT INTO topics (name, fifo, attributes, tags, deleted_subscriptions, created_at) VALUES (?1, ?2, ?3, ?4, 0, ?5)",
        params![t.name, t.fifo, to_json(&t.attributes)?, to_json(&t.tags)?, t.created_at],
    )?;
    Ok(())
}

pub fn update_topic(conn: &Connection, t: &TopicRow) -> Result<(), TopicError> {
    conn.execute(
        "UPDATE topics SET attributes = ?2, tags = ?3, deleted_subscriptions = ?4 WHERE name = ?1",
        params![t.name, to_json(&t.attributes)?, to_json(&t.tags)?, t.deleted_subscriptions as i64],
    )?;
    Ok(())
}

/// Deletes a topic with its subscriptions, pending deliveries and dedup entries.
pub fn delete_topic(conn: &Connection, name: &str, topic_arn: &str) -> Result<(), TopicError> {
    conn.execute("DELETE FROM deliveries WHERE subscription IN (SELECT arn FROM subscriptions WHERE topic = ?1)", [name])?;
    conn.execute("DELETE FROM subscriptions WHERE topic = ?1", [name])?;
    conn.execute("DELETE FROM dedup WHERE topic = ?1", [topic_arn])?;
    conn.execute("DELETE FROM topics WHERE name = ?1", [name])?;
    conn.execute("DELETE FROM messages WHERE id NOT IN (SELECT message FROM deliveries)", [])?;
    Ok(())
}

pub fn upsert_subscription(conn: &Connection, s: &SubscriptionRow, now: i64) -> Result<(), TopicError> {
    conn.execute(
        "INSERT INTO subscriptions (arn, topic, protocol, endpoint, confirmed, token, attributes, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT(arn) DO UPDATE SET confirmed = excluded.confirmed, token = excluded.token, attributes = excluded.attributes",
        params![s.arn, s.topic, s.protocol, s.endpoint, s.confirmed, s.token, to_json(&s.attributes)?, now],
    )?;
    Ok(())
}

pub fn delete_subscription(conn: &Connection, arn: &str) -> Result<(), TopicError> {
    conn.execute("DELETE FROM subscriptions WHERE arn = ?1", [arn])?;
    conn.execute("DELETE FROM deliveries WHERE subscription = ?1", [arn])?;
    conn.execute("DELETE FROM messages WHERE id NOT IN (SELECT message FROM deliveries)", [])?;
    Ok(())
}

/// Takes the topic's next sequence number.
pub fn next_sequence(conn: &Connection, topic: &str) -> Result<i64, TopicError> {
    conn.prepare_cached("UPDATE topics SET sequence = sequence + 1 WHERE name = ?1")?.execute([topic])?;
    Ok(conn.prepare_cached("SELECT sequence FROM topics WHERE name = ?1")?.query_row([topic], |r| r.get(0))?)
}

/// Stores a message with one delivery per subscription; returns the delivery ids in order.
pub fn insert_message(conn: &Connection, m: &StoredMessage, subscriptions: &[String], now: i64) -> Result<(i64, Vec<i64>), TopicError> {
    if subscriptions.is_empty() {
        return Ok((0, Vec::new()));
    }
    conn.prepare_cached("INSERT INTO messages (doc) VALUES (?1)")?.execute([to_json(m)?])?;
    let row = conn.last_insert_rowid();
    let mut ids = Vec::with_capacity(subscriptions.len());
    let mut st = conn.prepare_cached("INSERT INTO deliveries (message, subscription, attempts, next_at) VALUES (?1, ?2, 0, ?3)")?;
    for s in subscriptions {
        st.execute(params![row, s, now])?;
        ids.push(conn.last_insert_rowid());
    }
    Ok((row, ids))
}

/// Removes a finished delivery, and its message once no delivery needs it.
pub fn finish_delivery(conn: &Connection, id: i64, message_row: i64) -> Result<(), TopicError> {
    conn.prepare_cached("DELETE FROM deliveries WHERE id = ?1")?.execute([id])?;
    let left: i64 = conn.prepare_cached("SELECT COUNT(*) FROM deliveries WHERE message = ?1")?.query_row([message_row], |r| r.get(0))?;
    if left == 0 {
        conn.prepare_cached("DELETE FROM messages WHERE id = ?1")?.execute([message_row])?;
    }
    Ok(())
}

pub fn reschedule_delivery(conn: &Connection, id: i64, attempts: u32, next_at: i64) -> Result<(), TopicError> {
    conn.prepare_cached("UPDATE deliveries SET attempts = ?2, next_at = ?3 WHERE id = ?1")?.execute(params![id, attempts, next_at])?;
    Ok(())
}

/// Every pending delivery with its message, in order.
pub fn pending_deliveries(conn: &Connection) -> Result<Vec<(DeliveryRow, StoredMessage)>, TopicError> {
    let mut st = conn.prepare(
        "SELECT d.id, d.message, d.subscription, d.attempts, d.next_at, m.doc FROM deliveries d JOIN messages m ON m.id = d.message ORDER BY d.id",
    )?;
    let rows = st.query_map([], |r| {
        Ok((
            DeliveryRow {
                id: r.get(0)?,
                message_row: r.get(1)?,
                subscription: r.get(2)?,
                attempts: r.get::<_, i64>(3)?.max(0) as u32,
                next_at: r.get(4)?,
            },
            r.get::<_, String>(5)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (d, doc) = row?;
        match serde_json::from_str::<StoredMessage>(&doc) {
            Ok(m) => out.push((d, m)),
            Err(e) => tracing::warn!("dropping unreadable stored message {}: {e}", d.message_row),
        }
    }
    Ok(out)
}

/// The message a deduplication id stands for, if seen within the window.
pub fn find_duplicate(
    conn: &Connection,
    topic_arn: &str,
    dedup_id: &str,
    now: i64,
) -> Result<Option<(String, Option<String>)>, TopicError> {
    let mut st = conn.prepare_cached("SELECT message_id, sequence FROM dedup WHERE topic = ?1 AND dedup_id = ?2 AND expires_at > ?3")?;
    Ok(st.query_row(params![topic_arn, dedup_id, now], |r| Ok((r.get(0)?, r.get(1)?))).optional()?)
}

pub fn remember_dedup(
    conn: &Connection,
    topic_arn: &str,
    dedup_id: &str,
    message_id: &str,
    sequence: Option<&str>,
    expires_at: i64,
) -> Result<(), TopicError> {
    conn.prepare_cached("INSERT OR REPLACE INTO dedup (topic, dedup_id, message_id, sequence, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![topic_arn, dedup_id, message_id, sequence, expires_at])?;
    Ok(())
}

pub fn sweep_dedup(conn: &Connection, now: i64) -> Result<(), TopicError> {
    conn.execute("DELETE FROM dedup WHERE expires_at <= ?1", [now])?;
    Ok(())
}

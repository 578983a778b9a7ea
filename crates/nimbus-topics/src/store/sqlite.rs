//! The topics in SQLite: one file (`topics.db`, WAL) owned by one writer thread, as in the
//! queue service. Jobs queue up; the thread runs whatever is waiting in one
//! transaction (each job in its own savepoint) and answers only after the commit. A batch
//! holding a durable job (a publish, any change to topics or subscriptions) commits with
//! `synchronous=FULL`, so an acknowledged publish survives `kill -9` and power loss;
//! bookkeeping of deliveries alone commits without the fsync (losing it only repeats a
//! delivery: at least once).

use std::path::Path;

use nimbus_store::group_commit::GroupCommit;
use rusqlite::{params, Connection, OptionalExtension};

use super::{to_json, DeliveryRow, SubscriptionRow, TopicRow, TopicTx};
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
}

/// A transaction of the writer thread.
pub(crate) struct SqliteTx<'c> {
    conn: &'c Connection,
}

impl<'c> SqliteTx<'c> {
    pub(crate) fn new(conn: &'c Connection) -> SqliteTx<'c> {
        SqliteTx { conn }
    }
}

impl TopicTx for SqliteTx<'_> {
    async fn all_topics(&mut self) -> Result<Vec<TopicRow>, TopicError> {
        let mut st =
            self.conn.prepare("SELECT name, fifo, attributes, tags, deleted_subscriptions, created_at FROM topics ORDER BY name")?;
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

    async fn all_subscriptions(&mut self) -> Result<Vec<SubscriptionRow>, TopicError> {
        let mut st = self
            .conn
            .prepare("SELECT arn, topic, protocol, endpoint, confirmed, token, attributes FROM subscriptions ORDER BY created_at, arn")?;
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

    async fn insert_topic(&mut self, t: &TopicRow) -> Result<(), TopicError> {
        self.conn.execute(
            "INSERT INTO topics (name, fifo, attributes, tags, deleted_subscriptions, created_at) VALUES (?1, ?2, ?3, ?4, 0, ?5)",
            params![t.name, t.fifo, to_json(&t.attributes)?, to_json(&t.tags)?, t.created_at],
        )?;
        Ok(())
    }

    async fn update_topic(&mut self, t: &TopicRow) -> Result<(), TopicError> {
        self.conn.execute(
            "UPDATE topics SET attributes = ?2, tags = ?3, deleted_subscriptions = ?4 WHERE name = ?1",
            params![t.name, to_json(&t.attributes)?, to_json(&t.tags)?, t.deleted_subscriptions as i64],
        )?;
        Ok(())
    }

    async fn delete_topic(&mut self, name: &str, topic_arn: &str) -> Result<(), TopicError> {
        let conn = self.conn;
        conn.execute("DELETE FROM deliveries WHERE subscription IN (SELECT arn FROM subscriptions WHERE topic = ?1)", [name])?;
        conn.execute("DELETE FROM subscriptions WHERE topic = ?1", [name])?;
        conn.execute("DELETE FROM dedup WHERE topic = ?1", [topic_arn])?;
        conn.execute("DELETE FROM topics WHERE name = ?1", [name])?;
        conn.execute("DELETE FROM messages WHERE id NOT IN (SELECT message FROM deliveries)", [])?;
        Ok(())
    }

    async fn upsert_subscription(&mut self, s: &SubscriptionRow, now: i64) -> Result<(), TopicError> {
        self.conn.execute(
            "INSERT INTO subscriptions (arn, topic, protocol, endpoint, confirmed, token, attributes, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT(arn) DO UPDATE SET confirmed = excluded.confirmed, token = excluded.token, attributes = excluded.attributes",
            params![s.arn, s.topic, s.protocol, s.endpoint, s.confirmed, s.token, to_json(&s.attributes)?, now],
        )?;
        Ok(())
    }

    async fn delete_subscription(&mut self, arn: &str) -> Result<(), TopicError> {
        self.conn.execute("DELETE FROM subscriptions WHERE arn = ?1", [arn])?;
        self.conn.execute("DELETE FROM deliveries WHERE subscription = ?1", [arn])?;
        self.conn.execute("DELETE FROM messages WHERE id NOT IN (SELECT message FROM deliveries)", [])?;
        Ok(())
    }

    async fn lock_topic(&mut self, _name: &str) -> Result<(), TopicError> {
        Ok(())
    }

    async fn next_sequence(&mut self, topic: &str) -> Result<i64, TopicError> {
        self.conn.prepare_cached("UPDATE topics SET sequence = sequence + 1 WHERE name = ?1")?.execute([topic])?;
        Ok(self.conn.prepare_cached("SELECT sequence FROM topics WHERE name = ?1")?.query_row([topic], |r| r.get(0))?)
    }

    async fn insert_message(&mut self, m: &StoredMessage, subscriptions: &[String], now: i64) -> Result<(i64, Vec<i64>), TopicError> {
        if subscriptions.is_empty() {
            return Ok((0, Vec::new()));
        }
        self.conn.prepare_cached("INSERT INTO messages (doc) VALUES (?1)")?.execute([to_json(m)?])?;
        let row = self.conn.last_insert_rowid();
        let mut ids = Vec::with_capacity(subscriptions.len());
        let mut st =
            self.conn.prepare_cached("INSERT INTO deliveries (message, subscription, attempts, next_at) VALUES (?1, ?2, 0, ?3)")?;
        for s in subscriptions {
            st.execute(params![row, s, now])?;
            ids.push(self.conn.last_insert_rowid());
        }
        Ok((row, ids))
    }

    async fn finish_delivery(&mut self, id: i64, message_row: i64) -> Result<(), TopicError> {
        let conn = self.conn;
        conn.prepare_cached("DELETE FROM deliveries WHERE id = ?1")?.execute([id])?;
        let left: i64 =
            conn.prepare_cached("SELECT COUNT(*) FROM deliveries WHERE message = ?1")?.query_row([message_row], |r| r.get(0))?;
        if left == 0 {
            conn.prepare_cached("DELETE FROM messages WHERE id = ?1")?.execute([message_row])?;
        }
        Ok(())
    }

    async fn reschedule_delivery(&mut self, id: i64, attempts: u32, next_at: i64) -> Result<(), TopicError> {
        self.conn
            .prepare_cached("UPDATE deliveries SET attempts = ?2, next_at = ?3 WHERE id = ?1")?
            .execute(params![id, attempts, next_at])?;
        Ok(())
    }

    async fn pending_deliveries(&mut self) -> Result<Vec<(DeliveryRow, StoredMessage)>, TopicError> {
        let mut st = self.conn.prepare(
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
            if let Some(m) = super::parse_message(d.message_row, &doc) {
                out.push((d, m));
            }
        }
        Ok(out)
    }

    async fn find_duplicate(&mut self, topic_arn: &str, dedup_id: &str, now: i64) -> Result<Option<(String, Option<String>)>, TopicError> {
        let mut st =
            self.conn.prepare_cached("SELECT message_id, sequence FROM dedup WHERE topic = ?1 AND dedup_id = ?2 AND expires_at > ?3")?;
        Ok(st.query_row(params![topic_arn, dedup_id, now], |r| Ok((r.get(0)?, r.get(1)?))).optional()?)
    }

    async fn remember_dedup(
        &mut self,
        topic_arn: &str,
        dedup_id: &str,
        message_id: &str,
        sequence: Option<&str>,
        expires_at: i64,
    ) -> Result<(), TopicError> {
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO dedup (topic, dedup_id, message_id, sequence, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)")?
            .execute(params![topic_arn, dedup_id, message_id, sequence, expires_at])?;
        Ok(())
    }

    async fn sweep_dedup(&mut self, now: i64) -> Result<(), TopicError> {
        self.conn.execute("DELETE FROM dedup WHERE expires_at <= ?1", [now])?;
        Ok(())
    }
}

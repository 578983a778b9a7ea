//! The queues in SQLite: one file (`queues.db`, WAL) owned by one writer thread.
//! Requests queue up as jobs; the thread runs whatever is waiting in one transaction (each
//! job in its own savepoint, so one failure does not undo its neighbours) and answers only
//! after the commit. A batch holding a send or delete commits with `synchronous=FULL`, so an
//! acknowledged message survives `kill -9` and power loss; batches of receives alone commit
//! without the fsync (losing one only makes a message visible again early).

use std::collections::BTreeMap;
use std::path::Path;

use nimbus_store::group_commit::GroupCommit;
use rusqlite::{params, Connection, OptionalExtension};

use super::{attributes_json, parse_attributes, Mark, NewMessage, QueueRecord, QueueTx, StoredMessage, MESSAGE_COLUMNS, QUEUE_COLUMNS};
use crate::attributes::QueueSettings;
use crate::error::QueueError;
use crate::metrics::QueueGauges;

/// Handle to the writer thread.
pub struct Store {
    db: GroupCommit,
}

/// `queues.db`.
const SCHEMA: nimbus_store::db::Schema = nimbus_store::db::Schema {
    name: "queue",
    migrations: &[
        // 1: the schema of the first release.
        "
CREATE TABLE IF NOT EXISTS queues (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    fifo INTEGER NOT NULL,
    attributes TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    modified_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue_id INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    body TEXT NOT NULL,
    body_md5 TEXT NOT NULL,
    attributes TEXT,
    system_attributes TEXT,
    sent_at INTEGER NOT NULL,
    available_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    first_receive_at INTEGER,
    receipt TEXT,
    group_id TEXT,
    dedup_id TEXT,
    sender_id TEXT NOT NULL,
    dlq_source_arn TEXT
);
CREATE INDEX IF NOT EXISTS messages_available ON messages(queue_id, available_at);
CREATE INDEX IF NOT EXISTS messages_expiry ON messages(expires_at);
CREATE TABLE IF NOT EXISTS dedup (
    queue_id INTEGER NOT NULL,
    dedup_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (queue_id, dedup_id)
);
",
    ],
};
impl Store {
    /// Opens (creating if needed) the database at `path` and starts its writer thread.
    pub fn open(path: &Path) -> Result<Store, QueueError> {
        Ok(Store { db: GroupCommit::open(path, &SCHEMA).map_err(QueueError::Internal)? })
    }

    /// Runs `f` on the writer thread inside the next transaction and returns its result
    /// once that transaction is committed. `durable` asks for an fsync before the answer.
    pub async fn run<T: Send + 'static>(
        &self,
        durable: bool,
        f: impl FnOnce(&Connection) -> Result<T, QueueError> + Send + 'static,
    ) -> Result<T, QueueError> {
        self.db.run(durable, f, QueueError::Internal).await
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

fn queue_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<QueueRecord> {
    let attributes: String = row.get(3)?;
    let tags: String = row.get(4)?;
    Ok(QueueRecord::from_columns(row.get(0)?, row.get(1)?, row.get(2)?, &attributes, &tags, row.get(5)?, row.get(6)?))
}

fn message_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredMessage> {
    Ok(StoredMessage {
        id: r.get(0)?,
        message: NewMessage {
            message_id: r.get(2)?,
            body: r.get(3)?,
            body_md5: r.get(4)?,
            attributes: parse_attributes(r.get(5)?),
            system_attributes: parse_attributes(r.get(6)?),
            sent_at: r.get(7)?,
            available_at: r.get(8)?,
            expires_at: r.get(9)?,
            group_id: r.get(13)?,
            dedup_id: r.get(14)?,
            sender_id: r.get(15)?,
            dlq_source_arn: r.get(16)?,
        },
        receive_count: r.get::<_, i64>(10)? as u32,
        first_receive_at: r.get(11)?,
        receipt: r.get(12)?,
    })
}

impl QueueTx for SqliteTx<'_> {
    async fn find_queue(&mut self, name: &str) -> Result<Option<QueueRecord>, QueueError> {
        let mut st = self.conn.prepare_cached(&format!("SELECT {QUEUE_COLUMNS} FROM queues WHERE name = ?1"))?;
        Ok(st.query_row([name], queue_from_row).optional()?)
    }

    async fn all_queues(&mut self) -> Result<Vec<QueueRecord>, QueueError> {
        let mut st = self.conn.prepare_cached(&format!("SELECT {QUEUE_COLUMNS} FROM queues ORDER BY name"))?;
        let rows = st.query_map([], queue_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    async fn insert_queue(
        &mut self,
        name: &str,
        settings: &QueueSettings,
        tags: &BTreeMap<String, String>,
        now_secs: i64,
    ) -> Result<QueueRecord, QueueError> {
        let (attrs, tags_json) = QueueRecord::documents(settings, tags)?;
        self.conn.execute(
            "INSERT INTO queues (name, fifo, attributes, tags, created_at, modified_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            params![name, settings.fifo, attrs, tags_json, now_secs],
        )?;
        super::get_queue(self, name).await
    }

    async fn update_queue(&mut self, q: &QueueRecord) -> Result<(), QueueError> {
        let (attrs, tags) = QueueRecord::documents(&q.settings, &q.tags)?;
        self.conn.execute(
            "UPDATE queues SET attributes = ?2, tags = ?3, modified_at = ?4 WHERE id = ?1",
            params![q.id, attrs, tags, q.modified_at],
        )?;
        Ok(())
    }

    async fn delete_queue(&mut self, id: i64) -> Result<(), QueueError> {
        self.conn.execute("DELETE FROM messages WHERE queue_id = ?1", [id])?;
        self.conn.execute("DELETE FROM dedup WHERE queue_id = ?1", [id])?;
        self.conn.execute("DELETE FROM queues WHERE id = ?1", [id])?;
        Ok(())
    }

    async fn purge(&mut self, id: i64) -> Result<(), QueueError> {
        self.conn.execute("DELETE FROM messages WHERE queue_id = ?1", [id])?;
        Ok(())
    }

    async fn gauges(&mut self, now: i64) -> Result<Vec<QueueGauges>, QueueError> {
        let mut st = self.conn.prepare_cached(
            "SELECT q.name,
                COALESCE(SUM(m.available_at <= ?1), 0),
                COALESCE(SUM(m.available_at > ?1 AND m.receive_count > 0), 0),
                COALESCE(SUM(m.available_at > ?1 AND m.receive_count = 0), 0),
                MIN(m.sent_at)
             FROM queues q LEFT JOIN messages m ON m.queue_id = q.id AND m.expires_at > ?1
             GROUP BY q.id ORDER BY q.name",
        )?;
        let rows = st.query_map([now], |r| Ok(QueueGauges::at(now, r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?), r.get(4)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    async fn counts(&mut self, id: i64, now: i64) -> Result<(u64, u64, u64), QueueError> {
        let mut st = self.conn.prepare_cached(
            "SELECT
                COALESCE(SUM(available_at <= ?2), 0),
                COALESCE(SUM(available_at > ?2 AND receive_count > 0), 0),
                COALESCE(SUM(available_at > ?2 AND receive_count = 0), 0)
             FROM messages WHERE queue_id = ?1 AND expires_at > ?2",
        )?;
        Ok(st.query_row(params![id, now], |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)? as u64)))?)
    }

    async fn insert_message(&mut self, queue_id: i64, m: &NewMessage) -> Result<i64, QueueError> {
        let mut st = self.conn.prepare_cached(
            "INSERT INTO messages (queue_id, message_id, body, body_md5, attributes, system_attributes, sent_at, available_at, expires_at,
                                   group_id, dedup_id, sender_id, dlq_source_arn)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?;
        st.execute(params![
            queue_id,
            m.message_id,
            m.body,
            m.body_md5,
            attributes_json(&m.attributes)?,
            attributes_json(&m.system_attributes)?,
            m.sent_at,
            m.available_at,
            m.expires_at,
            m.group_id,
            m.dedup_id,
            m.sender_id,
            m.dlq_source_arn
        ])?;
        Ok(self.conn.last_insert_rowid())
    }

    async fn load_message(&mut self, queue_id: i64, id: i64) -> Result<Option<StoredMessage>, QueueError> {
        let mut st = self.conn.prepare_cached(&format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?1 AND queue_id = ?2"))?;
        Ok(st.query_row(params![id, queue_id], message_from_row).optional()?)
    }

    async fn delete_message(&mut self, id: i64) -> Result<(), QueueError> {
        self.conn.prepare_cached("DELETE FROM messages WHERE id = ?1")?.execute([id])?;
        Ok(())
    }

    async fn mark_received(&mut self, marks: &[Mark]) -> Result<(), QueueError> {
        let mut st = self.conn.prepare_cached(
            "UPDATE messages SET receipt = ?2, available_at = ?3, receive_count = ?4, first_receive_at = ?5 WHERE id = ?1",
        )?;
        for m in marks {
            st.execute(params![m.id, m.receipt, m.available_at, m.count, m.first])?;
        }
        Ok(())
    }

    async fn set_available_at(&mut self, id: i64, available_at: i64) -> Result<(), QueueError> {
        self.conn.prepare_cached("UPDATE messages SET available_at = ?2 WHERE id = ?1")?.execute(params![id, available_at])?;
        Ok(())
    }

    async fn standard_candidates(&mut self, queue_id: i64, now: i64, limit: usize) -> Result<Vec<StoredMessage>, QueueError> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE queue_id = ?1 AND available_at <= ?2 AND expires_at > ?2
             ORDER BY available_at, id LIMIT ?3"
        ))?;
        let rows = st.query_map(params![queue_id, now, limit as i64], message_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    async fn fifo_unavailable(&mut self, queue_id: i64, now: i64) -> Result<Vec<(String, i64, u32)>, QueueError> {
        let mut st = self.conn.prepare_cached(
            "SELECT COALESCE(group_id, ''), id, receive_count FROM messages WHERE queue_id = ?1 AND available_at > ?2 AND expires_at > ?2",
        )?;
        let rows = st.query_map(params![queue_id, now], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u32)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    async fn fifo_available(
        &mut self,
        queue_id: i64,
        now: i64,
        blocked: &[String],
        limit: usize,
    ) -> Result<Vec<StoredMessage>, QueueError> {
        let blocked = serde_json::to_string(blocked).map_err(|e| QueueError::Internal(e.to_string()))?;
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages
             WHERE queue_id = ?1 AND available_at <= ?2 AND expires_at > ?2
               AND COALESCE(group_id, '') NOT IN (SELECT value FROM json_each(?3))
             ORDER BY id LIMIT ?4"
        ))?;
        let rows = st.query_map(params![queue_id, now, blocked, limit as i64], message_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    async fn next_available(&mut self, queue_id: i64, now: i64) -> Result<Option<i64>, QueueError> {
        let mut st = self.conn.prepare_cached("SELECT MIN(available_at) FROM messages WHERE queue_id = ?1 AND available_at > ?2")?;
        Ok(st.query_row(params![queue_id, now], |r| r.get(0))?)
    }

    async fn find_duplicate(&mut self, queue_id: i64, dedup_id: &str, now: i64) -> Result<Option<(String, i64)>, QueueError> {
        let mut st =
            self.conn.prepare_cached("SELECT message_id, sequence FROM dedup WHERE queue_id = ?1 AND dedup_id = ?2 AND expires_at > ?3")?;
        Ok(st.query_row(params![queue_id, dedup_id, now], |r| Ok((r.get(0)?, r.get(1)?))).optional()?)
    }

    async fn remember_dedup(
        &mut self,
        queue_id: i64,
        dedup_id: &str,
        message_id: &str,
        sequence: i64,
        expires_at: i64,
    ) -> Result<(), QueueError> {
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO dedup (queue_id, dedup_id, message_id, sequence, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![queue_id, dedup_id, message_id, sequence, expires_at])?;
        Ok(())
    }

    async fn sweep(&mut self, now: i64) -> Result<usize, QueueError> {
        let n = self.conn.execute("DELETE FROM messages WHERE expires_at <= ?1", [now])?;
        self.conn.execute("DELETE FROM dedup WHERE expires_at <= ?1", [now])?;
        Ok(n)
    }

    async fn lock_fifo(&mut self, _queue_id: i64) -> Result<(), QueueError> {
        Ok(())
    }

    fn announce(&mut self, _queue: &str) {}
}

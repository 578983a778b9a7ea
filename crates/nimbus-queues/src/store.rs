//! Durable queue storage: one SQLite file (`queues.db`, WAL) owned by one writer thread.
//! Requests queue up as jobs; the thread runs whatever is waiting in one transaction (each
//! job in its own savepoint, so one failure does not undo its neighbours) and answers only
//! after the commit. A batch holding a send or delete commits with `synchronous=FULL`, so an
//! acknowledged message survives `kill -9` and power loss; batches of receives alone commit
//! without the fsync (losing one only makes a message visible again early).

use std::collections::BTreeMap;
use std::path::Path;

use nimbus_store::group_commit::GroupCommit;
use rusqlite::{params, Connection, OptionalExtension};

use crate::attributes::QueueSettings;
use crate::error::QueueError;
use crate::message::MessageAttributes;

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

fn queue_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<QueueRecord> {
    let fifo: bool = row.get(2)?;
    let attrs: String = row.get(3)?;
    let tags: String = row.get(4)?;
    let map: BTreeMap<String, String> = serde_json::from_str(&attrs).unwrap_or_default();
    Ok(QueueRecord {
        id: row.get(0)?,
        name: row.get(1)?,
        settings: QueueSettings::from_map(fifo, &map),
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        created_at: row.get(5)?,
        modified_at: row.get(6)?,
    })
}

const QUEUE_COLUMNS: &str = "id, name, fifo, attributes, tags, created_at, modified_at";

pub fn find_queue(conn: &Connection, name: &str) -> Result<Option<QueueRecord>, QueueError> {
    let mut st = conn.prepare_cached(&format!("SELECT {QUEUE_COLUMNS} FROM queues WHERE name = ?1"))?;
    Ok(st.query_row([name], queue_from_row).optional()?)
}

pub fn get_queue(conn: &Connection, name: &str) -> Result<QueueRecord, QueueError> {
    find_queue(conn, name)?.ok_or(QueueError::QueueDoesNotExist)
}

pub fn all_queues(conn: &Connection) -> Result<Vec<QueueRecord>, QueueError> {
    let mut st = conn.prepare_cached(&format!("SELECT {QUEUE_COLUMNS} FROM queues ORDER BY name"))?;
    let rows = st.query_map([], queue_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn insert_queue(
    conn: &Connection,
    name: &str,
    settings: &QueueSettings,
    tags: &BTreeMap<String, String>,
    now_secs: i64,
) -> Result<QueueRecord, QueueError> {
    let attrs = serde_json::to_string(&settings.to_map()).map_err(|e| QueueError::Internal(e.to_string()))?;
    let tags_json = serde_json::to_string(tags).map_err(|e| QueueError::Internal(e.to_string()))?;
    conn.execute(
        "INSERT INTO queues (name, fifo, attributes, tags, created_at, modified_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![name, settings.fifo, attrs, tags_json, now_secs],
    )?;
    get_queue(conn, name)
}

pub fn update_queue(conn: &Connection, q: &QueueRecord) -> Result<(), QueueError> {
    let attrs = serde_json::to_string(&q.settings.to_map()).map_err(|e| QueueError::Internal(e.to_string()))?;
    let tags = serde_json::to_string(&q.tags).map_err(|e| QueueError::Internal(e.to_string()))?;
    conn.execute(
        "UPDATE queues SET attributes = ?2, tags = ?3, modified_at = ?4 WHERE id = ?1",
        params![q.id, attrs, tags, q.modified_at],
    )?;
    Ok(())
}

pub fn delete_queue(conn: &Connection, id: i64) -> Result<(), QueueError> {
    conn.execute("DELETE FROM messages WHERE queue_id = ?1", [id])?;
    conn.execute("DELETE FROM dedup WHERE queue_id = ?1", [id])?;
    conn.execute("DELETE FROM queues WHERE id = ?1", [id])?;
    Ok(())
}

pub fn purge(conn: &Connection, id: i64) -> Result<(), QueueError> {
    conn.execute("DELETE FROM messages WHERE queue_id = ?1", [id])?;
    Ok(())
}

/// Every queue's gauges at `now` (ms), in one read: visible, in flight and delayed
/// messages, and the age of the oldest message not yet expired.
pub fn gauges(conn: &Connection, now: i64) -> Result<Vec<crate::metrics::QueueGauges>, QueueError> {
    let mut st = conn.prepare_cached(
        "SELECT q.name,
            COALESCE(SUM(m.available_at <= ?1), 0),
            COALESCE(SUM(m.available_at > ?1 AND m.receive_count > 0), 0),
            COALESCE(SUM(m.available_at > ?1 AND m.receive_count = 0), 0),
            MIN(m.sent_at)
         FROM queues q LEFT JOIN messages m ON m.queue_id = q.id AND m.expires_at > ?1
         GROUP BY q.id ORDER BY q.name",
    )?;
    let rows = st.query_map([now], |r| {
        let oldest: Option<i64> = r.get(4)?;
        Ok(crate::metrics::QueueGauges {
            queue: r.get(0)?,
            visible: r.get::<_, i64>(1)? as u64,
            not_visible: r.get::<_, i64>(2)? as u64,
            delayed: r.get::<_, i64>(3)? as u64,
            oldest_age_s: oldest.map_or(0, |t| ((now - t).max(0) / 1000) as u64),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// (visible, in flight, delayed) at `now` (ms).
pub fn counts(conn: &Connection, id: i64, now: i64) -> Result<(u64, u64, u64), QueueError> {
    let mut st = conn.prepare_cached(
        "SELECT
            COALESCE(SUM(available_at <= ?2), 0),
            COALESCE(SUM(available_at > ?2 AND receive_count > 0), 0),
            COALESCE(SUM(available_at > ?2 AND receive_count = 0), 0)
         FROM messages WHERE queue_id = ?1 AND expires_at > ?2",
    )?;
    Ok(st.query_row(params![id, now], |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)? as u64)))?)
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

fn attrs_json(a: &MessageAttributes) -> Result<Option<String>, QueueError> {
    if a.is_empty() {
        return Ok(None);
    }
    serde_json::to_string(a).map(Some).map_err(|e| QueueError::Internal(e.to_string()))
}

/// Inserts a message and returns its row id (the FIFO sequence number).
pub fn insert_message(conn: &Connection, queue_id: i64, m: &NewMessage) -> Result<i64, QueueError> {
    let mut st = conn.prepare_cached(
        "INSERT INTO messages (queue_id, message_id, body, body_md5, attributes, system_attributes, sent_at, available_at, expires_at,
                               group_id, dedup_id, sender_id, dlq_source_arn)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?;
    st.execute(params![
        queue_id,
        m.message_id,
        m.body,
        m.body_md5,
        attrs_json(&m.attributes)?,
        attrs_json(&m.system_attributes)?,
        m.sent_at,
        m.available_at,
        m.expires_at,
        m.group_id,
        m.dedup_id,
        m.sender_id,
        m.dlq_source_arn
    ])?;
    Ok(conn.last_insert_rowid())
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

fn message_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredMessage> {
    let attrs: Option<String> = r.get(5)?;
    let sys: Option<String> = r.get(6)?;
    let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str::<MessageAttributes>(&s).ok()).unwrap_or_default();
    Ok(StoredMessage {
        id: r.get(0)?,
        message: NewMessage {
            message_id: r.get(2)?,
            body: r.get(3)?,
            body_md5: r.get(4)?,
            attributes: parse(attrs),
            system_attributes: parse(sys),
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

const MESSAGE_COLUMNS: &str = "id, queue_id, message_id, body, body_md5, attributes, system_attributes, sent_at, available_at, expires_at,
    receive_count, first_receive_at, receipt, group_id, dedup_id, sender_id, dlq_source_arn";

pub fn load_message(conn: &Connection, queue_id: i64, id: i64) -> Result<Option<StoredMessage>, QueueError> {
    let mut st = conn.prepare_cached(&format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?1 AND queue_id = ?2"))?;
    Ok(st.query_row(params![id, queue_id], message_from_row).optional()?)
}

pub fn delete_message(conn: &Connection, id: i64) -> Result<(), QueueError> {
    conn.prepare_cached("DELETE FROM messages WHERE id = ?1")?.execute([id])?;
    Ok(())
}

pub fn mark_received(conn: &Connection, id: i64, receipt: &str, available_at: i64, count: u32, first: i64) -> Result<(), QueueError> {
    conn.prepare_cached("UPDATE messages SET receipt = ?2, available_at = ?3, receive_count = ?4, first_receive_at = ?5 WHERE id = ?1")?
        .execute(params![id, receipt, available_at, count, first])?;
    Ok(())
}

pub fn set_available_at(conn: &Connection, id: i64, available_at: i64) -> Result<(), QueueError> {
    conn.prepare_cached("UPDATE messages SET available_at = ?2 WHERE id = ?1")?.execute(params![id, available_at])?;
    Ok(())
}

/// Ids of up to `limit` receivable messages of a standard queue, oldest-available first.
pub fn standard_candidates(conn: &Connection, queue_id: i64, now: i64, limit: usize) -> Result<Vec<i64>, QueueError> {
    let mut st = conn.prepare_cached(
        "SELECT id FROM messages WHERE queue_id = ?1 AND available_at <= ?2 AND expires_at > ?2 ORDER BY available_at, id LIMIT ?3",
    )?;
    let rows = st.query_map(params![queue_id, now, limit as i64], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Ids of receivable messages of a FIFO queue in send order, each group contributing only
/// the messages before its first unavailable one and nothing while any of its messages is in
/// flight; messages of one group are kept together, first group first.
pub fn fifo_candidates(conn: &Connection, queue_id: i64, now: i64, max: usize) -> Result<Vec<(i64, String)>, QueueError> {
    // Groups with something unavailable: blocked entirely (in flight) or from a message on.
    let mut blocked_from: BTreeMap<String, i64> = BTreeMap::new();
    {
        let mut st = conn.prepare_cached(
            "SELECT COALESCE(group_id, ''), id, receive_count FROM messages WHERE queue_id = ?1 AND available_at > ?2 AND expires_at > ?2",
        )?;
        let mut rows = st.query(params![queue_id, now])?;
        while let Some(r) = rows.next()? {
            let group: String = r.get(0)?;
            let id: i64 = r.get(1)?;
            let received: i64 = r.get(2)?;
            let from = if received > 0 { i64::MIN } else { id };
            let e = blocked_from.entry(group).or_insert(from);
            *e = (*e).min(from);
        }
    }
    let fully_blocked: Vec<&String> = blocked_from.iter().filter(|(_, from)| **from == i64::MIN).map(|(g, _)| g).collect();
    let blocked_json = serde_json::to_string(&fully_blocked).map_err(|e| QueueError::Internal(e.to_string()))?;
    let mut st = conn.prepare_cached(
        "SELECT id, COALESCE(group_id, '') FROM messages
         WHERE queue_id = ?1 AND available_at <= ?2 AND expires_at > ?2
           AND COALESCE(group_id, '') NOT IN (SELECT value FROM json_each(?3))
         ORDER BY id LIMIT ?4",
    )?;
    let rows = st.query_map(params![queue_id, now, blocked_json, (max * 10).max(100) as i64], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut groups: Vec<(String, Vec<i64>)> = Vec::new();
    let mut taken = 0;
    for row in rows {
        let (id, group) = row?;
        if blocked_from.get(&group).is_some_and(|from| id > *from) {
            continue;
        }
        match groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, ids)) => ids.push(id),
            None => groups.push((group, vec![id])),
        }
        taken += 1;
        if taken >= max * 4 {
            break;
        }
    }
    Ok(groups.into_iter().flat_map(|(g, ids)| ids.into_iter().map(move |id| (id, g.clone()))).collect())
}

/// When the next message of the queue becomes available (ms), if any is waiting.
pub fn next_available(conn: &Connection, queue_id: i64, now: i64) -> Result<Option<i64>, QueueError> {
    let mut st = conn.prepare_cached("SELECT MIN(available_at) FROM messages WHERE queue_id = ?1 AND available_at > ?2")?;
    Ok(st.query_row(params![queue_id, now], |r| r.get(0))?)
}

/// The message a deduplication id stands for, if it was seen within the window.
pub fn find_duplicate(conn: &Connection, queue_id: i64, dedup_id: &str, now: i64) -> Result<Option<(String, i64)>, QueueError> {
    let mut st = conn.prepare_cached("SELECT message_id, sequence FROM dedup WHERE queue_id = ?1 AND dedup_id = ?2 AND expires_at > ?3")?;
    Ok(st.query_row(params![queue_id, dedup_id, now], |r| Ok((r.get(0)?, r.get(1)?))).optional()?)
}

pub fn remember_dedup(
    conn: &Connection,
    queue_id: i64,
    dedup_id: &str,
    message_id: &str,
    sequence: i64,
    expires_at: i64,
) -> Result<(), QueueError> {
    conn.prepare_cached("INSERT OR REPLACE INTO dedup (queue_id, dedup_id, message_id, sequence, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![queue_id, dedup_id, message_id, sequence, expires_at])?;
    Ok(())
}

/// Drops expired messages and deduplication entries; returns how many messages went.
pub fn sweep(conn: &Connection, now: i64) -> Result<usize, QueueError> {
    let n = conn.execute("DELETE FROM messages WHERE expires_at <= ?1", [now])?;
    conn.execute("DELETE FROM dedup WHERE expires_at <= ?1", [now])?;
    Ok(n)
}

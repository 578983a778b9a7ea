//! Durable stream storage: one SQLite file (`streams.db`, WAL) owned by one writer thread
//! (`nimbus_store::group_commit`). Every read and write is a job on that thread; a job that
//! writes records commits with `synchronous=FULL` before its caller hears back, so an
//! acknowledged PutRecord survives `kill -9` and power loss. Records are keyed by (stream,
//! shard, index in the shard), so reading a shard from a position is one range scan. The
//! service composes [`StreamTx`]'s operations, answered here on SQLite and by
//! [`postgres`] for nodes that share a database.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use nimbus_store::group_commit::GroupCommit;
use rusqlite::{params, Connection, OptionalExtension};

use crate::error::StreamError;

pub mod postgres;

/// Handle to the writer thread.
pub struct Store {
    db: GroupCommit,
    /// Woken after every durable commit (stream pollers wait on it instead of sleeping out
    /// their idle interval).
    changed: std::sync::Arc<tokio::sync::Notify>,
}

/// `streams.db`.
const SCHEMA: nimbus_store::db::Schema = nimbus_store::db::Schema {
    name: "stream",
    migrations: &[
        // 1: the schema of the first release.
        "
CREATE TABLE IF NOT EXISTS streams (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    on_demand INTEGER NOT NULL,
    retention_hours INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    tags TEXT NOT NULL DEFAULT '{}',
    next_shard INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS shards (
    stream_id INTEGER NOT NULL,
    ix INTEGER NOT NULL,
    parent INTEGER,
    adjacent_parent INTEGER,
    start_hash TEXT NOT NULL,
    end_hash TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    closed_ms INTEGER,
    last_seq INTEGER NOT NULL DEFAULT 0,
    last_arrival_ms INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (stream_id, ix)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records (
    stream_id INTEGER NOT NULL,
    shard INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    arrival_ms INTEGER NOT NULL,
    partition_key TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (stream_id, shard, seq)
) WITHOUT ROWID;
",
    ],
};

impl Store {
    /// Opens (creating if needed) the database at `path` and starts its writer thread.
    pub fn open(path: &Path) -> Result<Store, StreamError> {
        let db = GroupCommit::open_prepared(
            Some(path),
            &SCHEMA,
            |conn| {
                conn.pragma_update(None, "cache_size", -65_536).map_err(|e| StreamError::Internal(e.to_string()))?;
                conn.pragma_update(None, "wal_autocheckpoint", 16_384).map_err(|e| StreamError::Internal(e.to_string()))
            },
            StreamError::Internal,
        )?;
        Ok(Store { db, changed: Default::default() })
    }

    /// An in-memory database (tests).
    pub fn in_memory() -> Result<Store, StreamError> {
        Ok(Store { db: GroupCommit::open_in_memory(&SCHEMA).map_err(StreamError::Internal)?, changed: Default::default() })
    }

    /// Runs `f` on the writer thread inside the next transaction and returns its result once
    /// that transaction is committed; `durable` asks for an fsync before the answer.
    pub async fn run<T: Send + 'static>(
        &self,
        durable: bool,
        f: impl FnOnce(&Connection) -> Result<T, StreamError> + Send + 'static,
    ) -> Result<T, StreamError> {
        let result = self.db.run(durable, f, StreamError::Internal).await;
        if durable && result.is_ok() {
            self.changed.notify_waiters();
        }
        result
    }

    /// Woken after every durable commit.
    pub fn changed(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.changed.clone()
    }
}

/// A stream as stored.
#[derive(Debug, Clone)]
pub struct StreamRow {
    pub id: i64,
    pub name: String,
    pub on_demand: bool,
    pub retention_hours: u32,
    pub created_ms: i64,
    pub tags: BTreeMap<String, String>,
    /// The index the next new shard gets.
    pub next_shard: u32,
}

/// A shard as stored.
#[derive(Debug, Clone)]
pub struct ShardRow {
    pub ix: u32,
    pub parent: Option<u32>,
    pub adjacent_parent: Option<u32>,
    pub start: u128,
    pub end: u128,
    pub created_ms: i64,
    pub closed_ms: Option<i64>,
    /// The index of its newest record (0: none yet).
    pub last_seq: u64,
    pub last_arrival_ms: i64,
}

impl ShardRow {
    pub fn is_open(&self) -> bool {
        self.closed_ms.is_none()
    }
}

/// A record as stored.
#[derive(Debug, Clone)]
pub struct RecordRow {
    pub seq: u64,
    pub arrival_ms: i64,
    pub partition_key: String,
    pub data: Vec<u8>,
}

fn internal(e: impl std::fmt::Display) -> StreamError {
    StreamError::Internal(e.to_string())
}

const STREAM_COLUMNS: &str = "id, name, on_demand, retention_hours, created_ms, tags, next_shard";

fn stream_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StreamRow> {
    let tags: String = r.get(5)?;
    Ok(StreamRow {
        id: r.get(0)?,
        name: r.get(1)?,
        on_demand: r.get(2)?,
        retention_hours: r.get(3)?,
        created_ms: r.get(4)?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        next_shard: r.get(6)?,
    })
}

pub fn find_stream(conn: &Connection, name: &str) -> Result<Option<StreamRow>, StreamError> {
    let mut st = conn.prepare_cached(&format!("SELECT {STREAM_COLUMNS} FROM streams WHERE name = ?1"))?;
    Ok(st.query_row([name], stream_from_row).optional()?)
}

pub fn stream_by_id(conn: &Connection, id: i64) -> Result<Option<StreamRow>, StreamError> {
    let mut st = conn.prepare_cached(&format!("SELECT {STREAM_COLUMNS} FROM streams WHERE id = ?1"))?;
    Ok(st.query_row([id], stream_from_row).optional()?)
}

pub fn all_streams(conn: &Connection) -> Result<Vec<StreamRow>, StreamError> {
    let mut st = conn.prepare_cached(&format!("SELECT {STREAM_COLUMNS} FROM streams ORDER BY name"))?;
    let rows = st.query_map([], stream_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn insert_stream(conn: &Connection, s: &StreamRow) -> Result<i64, StreamError> {
    conn.execute(
        "INSERT INTO streams (name, on_demand, retention_hours, created_ms, tags, next_shard) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![s.name, s.on_demand, s.retention_hours, s.created_ms, serde_json::to_string(&s.tags).map_err(internal)?, s.next_shard],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Writes a stream's retention, tags and next shard index.
pub fn update_stream(conn: &Connection, s: &StreamRow) -> Result<(), StreamError> {
    conn.prepare_cached("UPDATE streams SET retention_hours = ?2, tags = ?3, next_shard = ?4 WHERE id = ?1")?.execute(params![
        s.id,
        s.retention_hours,
        serde_json::to_string(&s.tags).map_err(internal)?,
        s.next_shard
    ])?;
    Ok(())
}

pub fn delete_stream(conn: &Connection, id: i64) -> Result<(), StreamError> {
    conn.execute("DELETE FROM records WHERE stream_id = ?1", [id])?;
    conn.execute("DELETE FROM shards WHERE stream_id = ?1", [id])?;
    conn.execute("DELETE FROM streams WHERE id = ?1", [id])?;
    Ok(())
}

const SHARD_COLUMNS: &str = "ix, parent, adjacent_parent, start_hash, end_hash, created_ms, closed_ms, last_seq, last_arrival_ms";

fn hash(text: &str) -> rusqlite::Result<u128> {
    u128::from_str_radix(text, 16).map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

fn shard_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ShardRow> {
    Ok(ShardRow {
        ix: r.get(0)?,
        parent: r.get(1)?,
        adjacent_parent: r.get(2)?,
        start: hash(&r.get::<_, String>(3)?)?,
        end: hash(&r.get::<_, String>(4)?)?,
        created_ms: r.get(5)?,
        closed_ms: r.get(6)?,
        last_seq: r.get::<_, i64>(7)? as u64,
        last_arrival_ms: r.get(8)?,
    })
}

/// Every shard of a stream, by index.
pub fn shards(conn: &Connection, stream_id: i64) -> Result<Vec<ShardRow>, StreamError> {
    let mut st = conn.prepare_cached(&format!("SELECT {SHARD_COLUMNS} FROM shards WHERE stream_id = ?1 ORDER BY ix"))?;
    let rows = st.query_map([stream_id], shard_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn shard(conn: &Connection, stream_id: i64, ix: u32) -> Result<Option<ShardRow>, StreamError> {
    let mut st = conn.prepare_cached(&format!("SELECT {SHARD_COLUMNS} FROM shards WHERE stream_id = ?1 AND ix = ?2"))?;
    Ok(st.query_row(params![stream_id, ix], shard_from_row).optional()?)
}

/// Open shards of every stream (the account's shard count).
pub fn open_shard_count(conn: &Connection) -> Result<u32, StreamError> {
    Ok(conn.prepare_cached("SELECT COUNT(*) FROM shards WHERE closed_ms IS NULL")?.query_row([], |r| r.get(0))?)
}

pub fn insert_shard(conn: &Connection, stream_id: i64, s: &ShardRow) -> Result<(), StreamError> {
    conn.prepare_cached(
        "INSERT INTO shards (stream_id, ix, parent, adjacent_parent, start_hash, end_hash, created_ms, closed_ms, last_seq, last_arrival_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        stream_id,
        s.ix,
        s.parent,
        s.adjacent_parent,
        format!("{:032x}", s.start),
        format!("{:032x}", s.end),
        s.created_ms,
        s.closed_ms,
        s.last_seq as i64,
        s.last_arrival_ms
    ])?;
    Ok(())
}

pub fn close_shard(conn: &Connection, stream_id: i64, ix: u32, closed_ms: i64) -> Result<(), StreamError> {
    conn.prepare_cached("UPDATE shards SET closed_ms = ?3 WHERE stream_id = ?1 AND ix = ?2")?.execute(params![stream_id, ix, closed_ms])?;
    Ok(())
}

/// A shard's newest record: its index (0: none yet) and arrival time.
pub fn shard_head(conn: &Connection, stream_id: i64, ix: u32) -> Result<(u64, i64), StreamError> {
    let mut st = conn.prepare_cached("SELECT last_seq, last_arrival_ms FROM shards WHERE stream_id = ?1 AND ix = ?2")?;
    Ok(st.query_row(params![stream_id, ix], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))?)
}

/// Records a shard's newest record.
pub fn advance_shard(conn: &Connection, stream_id: i64, ix: u32, last_seq: u64, last_arrival_ms: i64) -> Result<(), StreamError> {
    conn.prepare_cached("UPDATE shards SET last_seq = ?3, last_arrival_ms = ?4 WHERE stream_id = ?1 AND ix = ?2")?.execute(params![
        stream_id,
        ix,
        last_seq as i64,
        last_arrival_ms
    ])?;
    Ok(())
}

pub fn insert_record(conn: &Connection, stream_id: i64, shard: u32, r: &RecordRow) -> Result<(), StreamError> {
    conn.prepare_cached("INSERT INTO records (stream_id, shard, seq, arrival_ms, partition_key, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?
        .execute(params![stream_id, shard, r.seq as i64, r.arrival_ms, r.partition_key, r.data])?;
    Ok(())
}

/// Up to `limit` records of a shard from index `from` on that arrived at or after
/// `min_arrival_ms`, in order.
pub fn read_records(
    conn: &Connection,
    stream_id: i64,
    shard: u32,
    from: u64,
    min_arrival_ms: i64,
    limit: usize,
) -> Result<Vec<RecordRow>, StreamError> {
    let mut st = conn.prepare_cached(
        "SELECT seq, arrival_ms, partition_key, data FROM records
         WHERE stream_id = ?1 AND shard = ?2 AND seq >= ?3 AND arrival_ms >= ?4 ORDER BY seq LIMIT ?5",
    )?;
    let rows = st.query_map(params![stream_id, shard, from.min(i64::MAX as u64) as i64, min_arrival_ms, limit as i64], |r| {
        Ok(RecordRow { seq: r.get::<_, i64>(0)? as u64, arrival_ms: r.get(1)?, partition_key: r.get(2)?, data: r.get(3)? })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The first record at or after index `from` (its index and arrival time).
fn first_from(conn: &Connection, stream_id: i64, shard: u32, from: u64) -> Result<Option<(u64, i64)>, StreamError> {
    let mut st =
        conn.prepare_cached("SELECT seq, arrival_ms FROM records WHERE stream_id = ?1 AND shard = ?2 AND seq >= ?3 ORDER BY seq LIMIT 1")?;
    Ok(st.query_row(params![stream_id, shard, from as i64], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))).optional()?)
}

/// The index of the first record of a shard that arrived at or after `at_ms`, or
/// `last_seq + 1` when none did. Arrival times never decrease along a shard, so this is a
/// binary search of point reads.
pub async fn first_at_time(tx: &mut impl StreamTx, stream_id: i64, shard: &ShardRow, at_ms: i64) -> Result<u64, StreamError> {
    let (mut lo, mut hi) = (0u64, shard.last_seq + 1);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match tx.first_from(stream_id, shard.ix, mid).await? {
            // Nothing in [mid, hi).
            Some((seq, _)) if seq >= hi => hi = mid,
            Some((seq, arrival)) if arrival >= at_ms => hi = seq,
            Some((seq, _)) => lo = seq + 1,
            None => hi = mid,
        }
    }
    Ok(lo)
}

/// Removes records older than their stream's retention, and closed shards whose whole life
/// is older than it; returns how many records went.
pub async fn sweep(tx: &mut impl StreamTx, now_ms: i64, only: Option<i64>) -> Result<usize, StreamError> {
    let mut removed = 0;
    for stream in tx.all_streams().await? {
        if only.is_some_and(|id| id != stream.id) {
            continue;
        }
        let cutoff = now_ms - i64::from(stream.retention_hours) * 3_600_000;
        for shard in tx.shards(stream.id).await? {
            if shard.closed_ms.is_some_and(|c| c < cutoff) {
                removed += tx.delete_shard(stream.id, shard.ix).await?;
                continue;
            }
            // Arrival times never decrease along a shard: everything before the first record
            // still within retention has expired.
            let keep_from = first_at_time(tx, stream.id, &shard, cutoff).await?;
            removed += tx.delete_records_before(stream.id, shard.ix, keep_from).await?;
        }
    }
    Ok(removed)
}

/// Runs `$body` (using `$tx`, a `&mut` [`StreamTx`], `.await`s allowed) in one transaction
/// of the service's engine; see [`nimbus_store::in_tx!`].
macro_rules! in_tx {
    ($db:expr, $durable:expr, |$tx:ident| $body:expr) => {
        nimbus_store::in_tx!($db, $durable, $crate::store::SqliteTx, |$tx| $body)
    };
}
pub(crate) use in_tx;

/// Where the streams are: `streams.db`, or the account's schema in a shared PostgreSQL.
pub(crate) type Db = nimbus_store::tx::Engine<Store, postgres::SharedStreams>;

/// The operations of one transaction on the streams, answered by each engine with its own
/// SQL; the service composes them. A put finds its stream with
/// [`StreamTx::find_stream_for_write`] (held against reshards until the commit) and takes its
/// shards' heads with [`StreamTx::shard_heads`] (held until the commit, so a shard's records
/// commit in the order of their indexes); a change of the stream itself uses
/// [`StreamTx::find_stream_for_change`]. One writer thread needs none of it.
#[allow(async_fn_in_trait)]
pub trait StreamTx {
    async fn find_stream(&mut self, name: &str) -> Result<Option<StreamRow>, StreamError>;
    async fn find_stream_for_write(&mut self, name: &str) -> Result<Option<StreamRow>, StreamError>;
    async fn find_stream_for_change(&mut self, name: &str) -> Result<Option<StreamRow>, StreamError>;
    async fn stream_by_id(&mut self, id: i64) -> Result<Option<StreamRow>, StreamError>;
    async fn all_streams(&mut self) -> Result<Vec<StreamRow>, StreamError>;
    /// Inserts a new stream, returning its row id; None when the name is taken.
    async fn insert_stream(&mut self, s: &StreamRow) -> Result<Option<i64>, StreamError>;
    async fn update_stream(&mut self, s: &StreamRow) -> Result<(), StreamError>;
    async fn delete_stream(&mut self, id: i64) -> Result<(), StreamError>;
    async fn shards(&mut self, stream_id: i64) -> Result<Vec<ShardRow>, StreamError>;
    async fn shard(&mut self, stream_id: i64, ix: u32) -> Result<Option<ShardRow>, StreamError>;
    /// The account's open shards, for its quota: held until the commit (several nodes:
    /// requests that add shards count one after the other).
    async fn open_shard_count(&mut self) -> Result<u32, StreamError>;
    async fn insert_shard(&mut self, stream_id: i64, s: &ShardRow) -> Result<(), StreamError>;
    async fn close_shard(&mut self, stream_id: i64, ix: u32, closed_ms: i64) -> Result<(), StreamError>;
    /// The newest record's index and arrival time of each of these shards, held until the
    /// commit (taken in index order).
    async fn shard_heads(&mut self, stream_id: i64, shards: &[u32]) -> Result<HashMap<u32, (u64, i64)>, StreamError>;
    /// Records each shard's newest record: (index, last_seq, last_arrival_ms).
    async fn advance_shards(&mut self, stream_id: i64, heads: &[(u32, u64, i64)]) -> Result<(), StreamError>;
    /// Stores records, each with its shard.
    async fn insert_records(&mut self, stream_id: i64, records: &[(u32, RecordRow)]) -> Result<(), StreamError>;
    /// Up to `limit` records of a shard from index `from` on that arrived at or after
    /// `min_arrival_ms`, in order.
    async fn read_records(
        &mut self,
        stream_id: i64,
        shard: u32,
        from: u64,
        min_arrival_ms: i64,
        limit: usize,
    ) -> Result<Vec<RecordRow>, StreamError>;
    /// The first record at or after index `from` (its index and arrival time).
    async fn first_from(&mut self, stream_id: i64, shard: u32, from: u64) -> Result<Option<(u64, i64)>, StreamError>;
    /// Removes a shard's records before index `keep_from`; how many went.
    async fn delete_records_before(&mut self, stream_id: i64, shard: u32, keep_from: u64) -> Result<usize, StreamError>;
    /// Removes a shard with its records; how many records went.
    async fn delete_shard(&mut self, stream_id: i64, shard: u32) -> Result<usize, StreamError>;
}

/// A transaction on `streams.db`, on its writer thread: the plain functions of this module.
pub struct SqliteTx<'a>(&'a Connection);

impl<'a> SqliteTx<'a> {
    /// The writer thread's transaction.
    pub fn new(conn: &'a Connection) -> SqliteTx<'a> {
        SqliteTx(conn)
    }
}

impl StreamTx for SqliteTx<'_> {
    async fn find_stream(&mut self, name: &str) -> Result<Option<StreamRow>, StreamError> {
        find_stream(self.0, name)
    }
    async fn find_stream_for_write(&mut self, name: &str) -> Result<Option<StreamRow>, StreamError> {
        find_stream(self.0, name)
    }
    async fn find_stream_for_change(&mut self, name: &str) -> Result<Option<StreamRow>, StreamError> {
        find_stream(self.0, name)
    }
    async fn stream_by_id(&mut self, id: i64) -> Result<Option<StreamRow>, StreamError> {
        stream_by_id(self.0, id)
    }
    async fn all_streams(&mut self) -> Result<Vec<StreamRow>, StreamError> {
        all_streams(self.0)
    }
    async fn insert_stream(&mut self, s: &StreamRow) -> Result<Option<i64>, StreamError> {
        insert_stream(self.0, s).map(Some)
    }
    async fn update_stream(&mut self, s: &StreamRow) -> Result<(), StreamError> {
        update_stream(self.0, s)
    }
    async fn delete_stream(&mut self, id: i64) -> Result<(), StreamError> {
        delete_stream(self.0, id)
    }
    async fn shards(&mut self, stream_id: i64) -> Result<Vec<ShardRow>, StreamError> {
        shards(self.0, stream_id)
    }
    async fn shard(&mut self, stream_id: i64, ix: u32) -> Result<Option<ShardRow>, StreamError> {
        shard(self.0, stream_id, ix)
    }
    async fn open_shard_count(&mut self) -> Result<u32, StreamError> {
        open_shard_count(self.0)
    }
    async fn insert_shard(&mut self, stream_id: i64, s: &ShardRow) -> Result<(), StreamError> {
        insert_shard(self.0, stream_id, s)
    }
    async fn close_shard(&mut self, stream_id: i64, ix: u32, closed_ms: i64) -> Result<(), StreamError> {
        close_shard(self.0, stream_id, ix, closed_ms)
    }
    async fn shard_heads(&mut self, stream_id: i64, shards: &[u32]) -> Result<HashMap<u32, (u64, i64)>, StreamError> {
        shards.iter().map(|ix| Ok((*ix, shard_head(self.0, stream_id, *ix)?))).collect()
    }
    async fn advance_shards(&mut self, stream_id: i64, heads: &[(u32, u64, i64)]) -> Result<(), StreamError> {
        for (ix, last_seq, last_arrival_ms) in heads {
            advance_shard(self.0, stream_id, *ix, *last_seq, *last_arrival_ms)?;
        }
        Ok(())
    }
    async fn insert_records(&mut self, stream_id: i64, records: &[(u32, RecordRow)]) -> Result<(), StreamError> {
        for (shard, r) in records {
            insert_record(self.0, stream_id, *shard, r)?;
        }
        Ok(())
    }
    async fn read_records(
        &mut self,
        stream_id: i64,
        shard: u32,
        from: u64,
        min_arrival_ms: i64,
        limit: usize,
    ) -> Result<Vec<RecordRow>, StreamError> {
        read_records(self.0, stream_id, shard, from, min_arrival_ms, limit)
    }
    async fn first_from(&mut self, stream_id: i64, shard: u32, from: u64) -> Result<Option<(u64, i64)>, StreamError> {
        first_from(self.0, stream_id, shard, from)
    }
    async fn delete_records_before(&mut self, stream_id: i64, shard: u32, keep_from: u64) -> Result<usize, StreamError> {
        Ok(self.0.prepare_cached("DELETE FROM records WHERE stream_id = ?1 AND shard = ?2 AND seq < ?3")?.execute(params![
            stream_id,
            shard,
            keep_from as i64
        ])?)
    }
    async fn delete_shard(&mut self, stream_id: i64, shard: u32) -> Result<usize, StreamError> {
        let removed = self.0.execute("DELETE FROM records WHERE stream_id = ?1 AND shard = ?2", params![stream_id, shard])?;
        self.0.execute("DELETE FROM shards WHERE stream_id = ?1 AND ix = ?2", params![stream_id, shard])?;
        Ok(removed)
    }
}

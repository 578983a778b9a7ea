//! Durable table storage: `<data>/tables.db`, one SQLite file behind `nimbus_store`'s
//! group-commit writer. Items are rows keyed `(table, partition bytes, sort bytes)` in a
//! `WITHOUT ROWID` table, the key bytes encoded so that SQLite's `memcmp` order is DynamoDB's
//! order ([`crate::schema::key_bytes`]): a Query is one range scan. Secondary indexes are rows
//! `(table, index, index key, table key)` written with the item; a table's stream records are
//! rows in `stream_records`, written in the same transaction as the change they describe, their
//! row id the stream's sequence number, so a reader takes a stream's records after a sequence
//! number with one range scan of `(stream, seq)`. The service composes [`TableTx`]'s
//! operations, answered here on SQLite and by [`postgres`] for nodes that share a database.

use std::path::Path;

use nimbus_store::group_commit::GroupCommit;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::error::TableError;
use crate::schema::{EncodedKey, TableDef};
use crate::value::{item_size, AttributeValue, Item};

pub mod postgres;

/// `tables.db`.
const SCHEMA: nimbus_store::db::Schema = nimbus_store::db::Schema {
    name: "tables",
    migrations: &[
        // 1: the schema of the first release.
        "
CREATE TABLE IF NOT EXISTS tables (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    def TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    table_id INTEGER NOT NULL,
    pk BLOB NOT NULL,
    sk BLOB NOT NULL,
    item TEXT NOT NULL,
    size INTEGER NOT NULL,
    seg INTEGER NOT NULL,
    expires INTEGER,
    PRIMARY KEY (table_id, pk, sk)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS items_expiry ON items(expires) WHERE expires IS NOT NULL;
CREATE TABLE IF NOT EXISTS index_entries (
    table_id INTEGER NOT NULL,
    idx TEXT NOT NULL,
    ipk BLOB NOT NULL,
    isk BLOB NOT NULL,
    pk BLOB NOT NULL,
    sk BLOB NOT NULL,
    PRIMARY KEY (table_id, idx, ipk, isk, pk, sk)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS streams (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    table_name TEXT NOT NULL,
    arn TEXT NOT NULL,
    view_type TEXT NOT NULL,
    key_schema TEXT NOT NULL,
    created_at REAL NOT NULL,
    disabled_at REAL
);
CREATE TABLE IF NOT EXISTS stream_records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_id INTEGER NOT NULL,
    created_at REAL NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS stream_records_by_stream ON stream_records(stream_id, seq);
",
        // 2: DynamoDB Streams' trim horizon: the last sequence number of a stream the retention
        // sweep removed (reads at or before it are TrimmedDataAccessException).
        "ALTER TABLE streams ADD COLUMN trimmed_through INTEGER NOT NULL DEFAULT 0;",
    ],
};

/// Handle to the writer thread.
pub struct Store {
    db: GroupCommit,
    /// Woken after every durable commit (stream pollers wait on it instead of sleeping out
    /// their idle interval).
    changed: std::sync::Arc<tokio::sync::Notify>,
}

impl Store {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Store, TableError> {
        Ok(Store { db: GroupCommit::open(path, &SCHEMA).map_err(TableError::Internal)?, changed: Default::default() })
    }

    /// An in-memory database (tests).
    pub fn in_memory() -> Result<Store, TableError> {
        Ok(Store { db: GroupCommit::open_in_memory(&SCHEMA).map_err(TableError::Internal)?, changed: Default::default() })
    }

    /// Runs `f` on the writer thread in the next transaction; answers after the commit
    /// (fsynced when `durable`). An `Err` undoes everything `f` wrote.
    pub async fn run<T: Send + 'static>(
        &self,
        durable: bool,
        f: impl FnOnce(&Connection) -> Result<T, TableError> + Send + 'static,
    ) -> Result<T, TableError> {
        let result = self.db.run(durable, f, TableError::Internal).await;
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

/// Runs `$body` (using `$tx`, a `&mut` [`TableTx`], `.await`s allowed) in one transaction of
/// the service's engine; see [`nimbus_store::in_tx!`].
macro_rules! in_tx {
    ($db:expr, $durable:expr, |$tx:ident| $body:expr) => {
        nimbus_store::in_tx!($db, $durable, $crate::store::SqliteTx, |$tx| $body)
    };
}
pub(crate) use in_tx;

/// Runs `$body` as [`in_tx!`] does, for a read: on PostgreSQL with the table definitions
/// the node keeps for reads, and `$snapshot` false runs each statement on its own (no
/// BEGIN/COMMIT; a GetItem is one statement) where true keeps one transaction (a consistent
/// read of several statements, a scan's portal).
macro_rules! in_read {
    ($db:expr, $snapshot:expr, |$tx:ident| $body:expr) => {
        match $db {
            nimbus_store::tx::Engine::Postgres(shared) if !$snapshot => {
                async {
                    let client = shared.client(false).await?;
                    let $tx = &mut shared.plain(&client);
                    $body
                }
                .await
            }
            _ => nimbus_store::in_tx!($db, false, $crate::store::SqliteTx, begin = begin_read, |$tx| $body),
        }
    };
}
pub(crate) use in_read;

/// Where the tables are: `tables.db`, or the account's schema in a shared PostgreSQL.
pub(crate) type Db = nimbus_store::tx::Engine<Store, postgres::SharedTables>;

/// The operations of one transaction on the tables, answered by each engine with its own
/// SQL; the service composes them. A write finds its table with
/// [`TableTx::table_for_write`] (held against deletion and redefinition until the commit)
/// and calls [`TableTx::lock_items`] before it reads the items it writes (several nodes; one
/// writer thread needs neither).
#[allow(async_fn_in_trait)]
pub trait TableTx {
    /// The table named `name`, if it exists.
    async fn find_table(&mut self, name: &str) -> Result<Option<Loaded>, TableError>;
    /// [`TableTx::find_table`] for a write of its items (held against changes until the
    /// commit).
    async fn find_table_for_write(&mut self, name: &str) -> Result<Option<Loaded>, TableError>;
    /// [`TableTx::find_table`] for a change of the table itself (held exclusively).
    async fn find_table_for_change(&mut self, name: &str) -> Result<Option<Loaded>, TableError>;
    /// [`TableTx::find_table`], or the item operations' ResourceNotFoundException.
    async fn table(&mut self, name: &str) -> Result<Loaded, TableError> {
        self.find_table(name).await?.ok_or_else(TableError::no_table)
    }
    /// [`TableTx::find_table_for_write`], or the item operations' ResourceNotFoundException.
    async fn table_for_write(&mut self, name: &str) -> Result<Loaded, TableError> {
        self.find_table_for_write(name).await?.ok_or_else(TableError::no_table)
    }
    /// Every table name, sorted.
    async fn table_names(&mut self) -> Result<Vec<String>, TableError>;
    /// Inserts a new table, returning its row id.
    async fn insert_table(&mut self, def: &TableDef) -> Result<i64, TableError>;
    /// Replaces a table's definition.
    async fn save_table(&mut self, table: &Loaded) -> Result<(), TableError>;
    /// Removes a table with its items and index entries (its stream's records stay).
    async fn delete_table(&mut self, id: i64) -> Result<(), TableError>;
    /// Item count and total size of a table.
    async fn table_stats(&mut self, id: i64) -> Result<(i64, i64), TableError>;
    /// Item count of an index.
    async fn index_count(&mut self, id: i64, index: &str) -> Result<i64, TableError>;
    /// Holds the items at these keys (of these tables) until the commit, then the streams of
    /// `tables` (whose counters number the records the write adds): the write that reads
    /// the items next is alone on them. Everything is taken in one order (keys sorted, then
    /// streams by id), so two writes never wait on each other in a cycle.
    async fn lock_items(&mut self, tables: &[&Loaded], keys: &[(i64, &EncodedKey)]) -> Result<(), TableError>;
    /// The item at `key`, if any.
    async fn get_item(&mut self, table_id: i64, key: &EncodedKey) -> Result<Option<Item>, TableError>;
    /// Writes one item change with its index entries and stream record ([`apply_change`]).
    async fn apply_change(
        &mut self,
        table: &Loaded,
        key: &EncodedKey,
        old: Option<&Item>,
        new: Option<&Item>,
        now: f64,
        origin: Origin,
    ) -> Result<(), TableError>;
    /// Rewrites the TTL expiry of every item of a table.
    async fn refresh_expiry(&mut self, table: &Loaded) -> Result<(), TableError>;
    /// Builds a new index's entries from the table's items.
    async fn backfill_index(&mut self, table: &Loaded, index: &str) -> Result<(), TableError>;
    /// Removes an index's entries.
    async fn drop_index(&mut self, table_id: i64, index: &str) -> Result<(), TableError>;
    /// Items whose TTL has passed, at most `limit`: (table name, key, item).
    async fn expired(&mut self, now: i64, limit: usize) -> Result<Vec<(String, EncodedKey, Item)>, TableError>;
    /// Runs a range scan, handing each item to `each` until it returns false.
    async fn scan(&mut self, scan: &Scan<'_>, each: &mut (dyn FnMut(Item) -> Result<bool, TableError> + Send)) -> Result<(), TableError>;
    /// A stream's records after sequence number `after`, at most `limit`, in order.
    async fn stream_records(&mut self, stream_id: i64, after: i64, limit: usize) -> Result<Vec<StreamRecord>, TableError>;
    /// Starts a stream for a table, returning its row id.
    async fn insert_stream(
        &mut self,
        table: &str,
        arn: &str,
        view_type: &str,
        key: &crate::schema::KeySchema,
        now: f64,
    ) -> Result<i64, TableError>;
    /// Marks a stream disabled.
    async fn disable_stream(&mut self, id: i64, now: f64) -> Result<(), TableError>;
    /// Every stream (of `table` only, when given), oldest first.
    async fn streams(&mut self, table: Option<&str>) -> Result<Vec<StreamRow>, TableError>;
    /// The stream whose ARN is `arn`, if it exists.
    async fn stream_by_arn(&mut self, arn: &str) -> Result<Option<StreamRow>, TableError>;
    /// The first and last sequence numbers of a stream's retained records.
    async fn stream_bounds(&mut self, stream_id: i64) -> Result<(Option<i64>, Option<i64>), TableError>;
    /// The last sequence number the stream's records may have reached (0 before the first):
    /// its next record's is greater.
    async fn last_sequence(&mut self, stream_id: i64) -> Result<i64, TableError>;
    /// The retention sweep ([`trim_streams`]).
    async fn trim_streams(&mut self, before: f64) -> Result<usize, TableError>;
    /// The first record of a stream made at or after `at` (epoch seconds).
    async fn first_record_at(&mut self, stream_id: i64, at: f64) -> Result<Option<i64>, TableError>;
}

/// A transaction on `tables.db`, on its writer thread: the plain functions of this module.
pub struct SqliteTx<'a>(&'a Connection);

impl<'a> SqliteTx<'a> {
    /// The writer thread's transaction.
    pub fn new(conn: &'a Connection) -> SqliteTx<'a> {
        SqliteTx(conn)
    }
}

impl TableTx for SqliteTx<'_> {
    async fn find_table(&mut self, name: &str) -> Result<Option<Loaded>, TableError> {
        find_table(self.0, name)
    }
    async fn find_table_for_write(&mut self, name: &str) -> Result<Option<Loaded>, TableError> {
        find_table(self.0, name)
    }
    async fn find_table_for_change(&mut self, name: &str) -> Result<Option<Loaded>, TableError> {
        find_table(self.0, name)
    }
    async fn table_names(&mut self) -> Result<Vec<String>, TableError> {
        table_names(self.0)
    }
    async fn insert_table(&mut self, def: &TableDef) -> Result<i64, TableError> {
        insert_table(self.0, def)
    }
    async fn save_table(&mut self, table: &Loaded) -> Result<(), TableError> {
        save_table(self.0, table)
    }
    async fn delete_table(&mut self, id: i64) -> Result<(), TableError> {
        delete_table(self.0, id)
    }
    async fn table_stats(&mut self, id: i64) -> Result<(i64, i64), TableError> {
        table_stats(self.0, id)
    }
    async fn index_count(&mut self, id: i64, index: &str) -> Result<i64, TableError> {
        index_count(self.0, id, index)
    }
    async fn lock_items(&mut self, _tables: &[&Loaded], _keys: &[(i64, &EncodedKey)]) -> Result<(), TableError> {
        Ok(())
    }
    async fn get_item(&mut self, table_id: i64, key: &EncodedKey) -> Result<Option<Item>, TableError> {
        get_item(self.0, table_id, key)
    }
    async fn apply_change(
        &mut self,
        table: &Loaded,
        key: &EncodedKey,
        old: Option<&Item>,
        new: Option<&Item>,
        now: f64,
        origin: Origin,
    ) -> Result<(), TableError> {
        apply_change(self.0, table, key, old, new, now, origin)
    }
    async fn refresh_expiry(&mut self, table: &Loaded) -> Result<(), TableError> {
        refresh_expiry(self.0, table)
    }
    async fn backfill_index(&mut self, table: &Loaded, index: &str) -> Result<(), TableError> {
        backfill_index(self.0, table, index)
    }
    async fn drop_index(&mut self, table_id: i64, index: &str) -> Result<(), TableError> {
        drop_index(self.0, table_id, index)
    }
    async fn expired(&mut self, now: i64, limit: usize) -> Result<Vec<(String, EncodedKey, Item)>, TableError> {
        expired(self.0, now, limit)
    }
    async fn scan(&mut self, s: &Scan<'_>, each: &mut (dyn FnMut(Item) -> Result<bool, TableError> + Send)) -> Result<(), TableError> {
        scan(self.0, s, each)
    }
    async fn stream_records(&mut self, stream_id: i64, after: i64, limit: usize) -> Result<Vec<StreamRecord>, TableError> {
        stream_records(self.0, stream_id, after, limit)
    }
    async fn insert_stream(
        &mut self,
        table: &str,
        arn: &str,
        view_type: &str,
        key: &crate::schema::KeySchema,
        now: f64,
    ) -> Result<i64, TableError> {
        insert_stream(self.0, table, arn, view_type, key, now)
    }
    async fn disable_stream(&mut self, id: i64, now: f64) -> Result<(), TableError> {
        disable_stream(self.0, id, now)
    }
    async fn streams(&mut self, table: Option<&str>) -> Result<Vec<StreamRow>, TableError> {
        streams(self.0, table)
    }
    async fn stream_by_arn(&mut self, arn: &str) -> Result<Option<StreamRow>, TableError> {
        stream_by_arn(self.0, arn)
    }
    async fn stream_bounds(&mut self, stream_id: i64) -> Result<(Option<i64>, Option<i64>), TableError> {
        stream_bounds(self.0, stream_id)
    }
    async fn last_sequence(&mut self, _stream_id: i64) -> Result<i64, TableError> {
        last_sequence(self.0)
    }
    async fn trim_streams(&mut self, before: f64) -> Result<usize, TableError> {
        trim_streams(self.0, before)
    }
    async fn first_record_at(&mut self, stream_id: i64, at: f64) -> Result<Option<i64>, TableError> {
        first_record_at(self.0, stream_id, at)
    }
}

/// A table as a job sees it: its row id and definition.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// Row id.
    pub id: i64,
    /// Definition.
    pub def: TableDef,
}

/// The table named `name`, if it exists.
pub fn find_table(conn: &Connection, name: &str) -> Result<Option<Loaded>, TableError> {
    let mut st = conn.prepare_cached("SELECT id, def FROM tables WHERE name = ?1")?;
    let row: Option<(i64, String)> = st.query_row([name], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
    match row {
        None => Ok(None),
        Some((id, def)) => {
            let def = serde_json::from_str(&def).map_err(|e| TableError::Internal(format!("table {name}: {e}")))?;
            Ok(Some(Loaded { id, def }))
        }
    }
}

/// Every table name, sorted.
pub fn table_names(conn: &Connection) -> Result<Vec<String>, TableError> {
    let mut st = conn.prepare_cached("SELECT name FROM tables ORDER BY name")?;
    let names = st.query_map([], |r| r.get(0))?.collect::<Result<Vec<String>, _>>()?;
    Ok(names)
}

/// Inserts a new table, returning its row id.
pub fn insert_table(conn: &Connection, def: &TableDef) -> Result<i64, TableError> {
    conn.execute("INSERT INTO tables (name, def) VALUES (?1, ?2)", params![def.name, to_json(def)?])?;
    Ok(conn.last_insert_rowid())
}

/// Replaces a table's definition.
pub fn save_table(conn: &Connection, table: &Loaded) -> Result<(), TableError> {
    conn.execute("UPDATE tables SET def = ?2 WHERE id = ?1", params![table.id, to_json(&table.def)?])?;
    Ok(())
}

/// Removes a table with its items and index entries (its stream's records stay readable).
pub fn delete_table(conn: &Connection, id: i64) -> Result<(), TableError> {
    conn.execute("DELETE FROM items WHERE table_id = ?1", [id])?;
    conn.execute("DELETE FROM index_entries WHERE table_id = ?1", [id])?;
    conn.execute("DELETE FROM tables WHERE id = ?1", [id])?;
    Ok(())
}

/// Item count and total size of a table.
pub fn table_stats(conn: &Connection, id: i64) -> Result<(i64, i64), TableError> {
    let mut st = conn.prepare_cached("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM items WHERE table_id = ?1")?;
    Ok(st.query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?)
}

/// Item count of an index.
pub fn index_count(conn: &Connection, id: i64, index: &str) -> Result<i64, TableError> {
    let mut st = conn.prepare_cached("SELECT COUNT(*) FROM index_entries WHERE table_id = ?1 AND idx = ?2")?;
    Ok(st.query_row(params![id, index], |r| r.get(0))?)
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<String, TableError> {
    serde_json::to_string(value).map_err(|e| TableError::Internal(format!("encoding: {e}")))
}

/// Reads a stored item.
pub fn parse_item(text: &str) -> Result<Item, TableError> {
    serde_json::from_str(text).map_err(|e| TableError::Internal(format!("stored item: {e}")))
}

/// The item at `key`, if any.
pub fn get_item(conn: &Connection, table_id: i64, key: &EncodedKey) -> Result<Option<Item>, TableError> {
    let mut st = conn.prepare_cached("SELECT item FROM items WHERE table_id = ?1 AND pk = ?2 AND sk = ?3")?;
    let text: Option<String> = st.query_row(params![table_id, key.pk, key.sk], |r| r.get(0)).optional()?;
    text.map(|t| parse_item(&t)).transpose()
}

/// Which segment of a parallel Scan a partition key falls in: FNV-1a of its bytes.
pub(crate) fn segment_hash(pk: &[u8]) -> i64 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in pk {
        hash ^= u32::from(*byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    i64::from(hash)
}

/// When TTL deletes the item: its TTL attribute as epoch seconds, when it is a number.
pub(crate) fn expiry(def: &TableDef, item: &Item) -> Option<i64> {
    let name = def.ttl_attribute.as_ref()?;
    match item.get(name)? {
        AttributeValue::N(n) => n.to_string().parse::<f64>().ok().map(|f| f as i64),
        _ => None,
    }
}

/// Who made a change, as stream records say it (`userIdentity` of TTL deletions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A caller's request.
    Request,
    /// DynamoDB itself (TTL).
    Service,
}

/// What one item change writes, worked out once for either engine: the item row (None:
/// removed), the index entries that go and come, and the stream record (stream id, JSON).
pub(crate) struct Change {
    pub(crate) item: Option<StoredItem>,
    pub(crate) index_removed: Vec<(String, Vec<u8>, Vec<u8>)>,
    pub(crate) index_added: Vec<(String, Vec<u8>, Vec<u8>)>,
    pub(crate) record: Option<(i64, String)>,
}

/// An item row's columns besides its key.
pub(crate) struct StoredItem {
    pub(crate) json: String,
    pub(crate) size: i64,
    pub(crate) seg: i64,
    pub(crate) expires: Option<i64>,
}

/// The rows one item change writes (see [`apply_change`]).
pub(crate) fn plan_change(
    table: &Loaded,
    key: &EncodedKey,
    old: Option<&Item>,
    new: Option<&Item>,
    origin: Origin,
) -> Result<Change, TableError> {
    let def = &table.def;
    let item = new
        .map(|item| {
            Ok::<_, TableError>(StoredItem {
                json: to_json(item)?,
                size: item_size(item) as i64,
                seg: segment_hash(&key.pk),
                expires: expiry(def, item),
            })
        })
        .transpose()?;
    let (mut index_removed, mut index_added) = (Vec::new(), Vec::new());
    for index in def.indexes() {
        let old_key = old.map(|o| index.key.index_key(&index.name, o)).transpose()?.flatten();
        let new_key = new.map(|n| index.key.index_key(&index.name, n)).transpose()?.flatten();
        if old_key == new_key {
            continue;
        }
        if let Some(k) = old_key {
            index_removed.push((index.name.clone(), k.pk, k.sk));
        }
        if let Some(k) = new_key {
            index_added.push((index.name.clone(), k.pk, k.sk));
        }
    }
    let mut record = None;
    if let Some(stream) = def.live_stream() {
        let event = match (old, new) {
            (None, Some(_)) => Some("INSERT"),
            (Some(_), Some(_)) => Some("MODIFY"),
            (Some(_), None) => Some("REMOVE"),
            (None, None) => None,
        };
        if let Some(event_name) = event {
            let keys = def.key.project_key(new.or(old).expect("an image exists"));
            let new_image = new.filter(|_| stream.new_image());
            let old_image = old.filter(|_| stream.old_image());
            let size = item_size(&keys) + new_image.map_or(0, item_size) + old_image.map_or(0, item_size);
            let stored = StoredRecord {
                event_name,
                keys,
                new_image: new_image.cloned(),
                old_image: old_image.cloned(),
                size_bytes: size,
                stream_view_type: stream.view_type.clone(),
                service: origin == Origin::Service,
            };
            record = Some((stream.id, to_json(&stored)?));
        }
    }
    Ok(Change { item, index_removed, index_added, record })
}

/// Writes one item change: the item row, its index entries, and (when the table has a stream)
/// the stream record, all in the caller's transaction. `old` is the item as it was, `new` as it
/// becomes (None: deleted). `now` is epoch seconds.
pub fn apply_change(
    conn: &Connection,
    table: &Loaded,
    key: &EncodedKey,
    old: Option<&Item>,
    new: Option<&Item>,
    now: f64,
    origin: Origin,
) -> Result<(), TableError> {
    let change = plan_change(table, key, old, new, origin)?;
    match &change.item {
        Some(item) => {
            let mut st = conn.prepare_cached(
                "INSERT INTO items (table_id, pk, sk, item, size, seg, expires) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (table_id, pk, sk) DO UPDATE SET item = excluded.item, size = excluded.size, expires = excluded.expires",
            )?;
            st.execute(params![table.id, key.pk, key.sk, item.json, item.size, item.seg, item.expires])?;
        }
        None => {
            conn.prepare_cached("DELETE FROM items WHERE table_id = ?1 AND pk = ?2 AND sk = ?3")?
                .execute(params![table.id, key.pk, key.sk])?;
        }
    }
    for (index, ipk, isk) in &change.index_removed {
        conn.prepare_cached(
            "DELETE FROM index_entries WHERE table_id = ?1 AND idx = ?2 AND ipk = ?3 AND isk = ?4 AND pk = ?5 AND sk = ?6",
        )?
        .execute(params![table.id, index, ipk, isk, key.pk, key.sk])?;
    }
    for (index, ipk, isk) in &change.index_added {
        conn.prepare_cached("INSERT OR REPLACE INTO index_entries (table_id, idx, ipk, isk, pk, sk) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?
            .execute(params![table.id, index, ipk, isk, key.pk, key.sk])?;
    }
    if let Some((stream_id, record)) = &change.record {
        conn.prepare_cached("INSERT INTO stream_records (stream_id, created_at, record) VALUES (?1, ?2, ?3)")?
            .execute(params![stream_id, now, record])?;
    }
    Ok(())
}

/// A stream record as stored; its sequence number is its row id, its time the row's.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct StoredRecord {
    /// INSERT, MODIFY, REMOVE.
    pub event_name: &'static str,
    /// The item's key attributes.
    pub keys: Item,
    /// NewImage (per the view type).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_image: Option<Item>,
    /// OldImage (per the view type).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_image: Option<Item>,
    /// SizeBytes.
    pub size_bytes: usize,
    /// StreamViewType.
    pub stream_view_type: String,
    /// A deletion by TTL (`userIdentity` Service / dynamodb.amazonaws.com).
    #[serde(default)]
    pub service: bool,
}

/// A stream record read back, for a stream reader: sequence number, time, record.
#[derive(Debug)]
pub struct StreamRecord {
    /// SequenceNumber (row id).
    pub seq: i64,
    /// ApproximateCreationDateTime, epoch seconds.
    pub created_at: f64,
    /// The record.
    pub record: serde_json::Value,
}

/// A stream's records after sequence number `after`, at most `limit`, in order.
pub fn stream_records(conn: &Connection, stream_id: i64, after: i64, limit: usize) -> Result<Vec<StreamRecord>, TableError> {
    let mut st =
        conn.prepare_cached("SELECT seq, created_at, record FROM stream_records WHERE stream_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3")?;
    let rows = st.query_map(params![stream_id, after, limit as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, String>(2)?)))?;
    let mut records = Vec::new();
    for row in rows {
        let (seq, created_at, text) = row?;
        let record = serde_json::from_str(&text).map_err(|e| TableError::Internal(format!("stream record {seq}: {e}")))?;
        records.push(StreamRecord { seq, created_at, record });
    }
    Ok(records)
}

/// Starts a stream for a table: its row, whose id its records are stored under.
pub fn insert_stream(
    conn: &Connection,
    table: &str,
    arn: &str,
    view_type: &str,
    key: &impl Serialize,
    now: f64,
) -> Result<i64, TableError> {
    conn.execute(
        "INSERT INTO streams (table_name, arn, view_type, key_schema, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![table, arn, view_type, to_json(key)?, now],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Marks a stream disabled (no more records; the existing stay readable).
pub fn disable_stream(conn: &Connection, id: i64, now: f64) -> Result<(), TableError> {
    conn.execute("UPDATE streams SET disabled_at = ?2 WHERE id = ?1 AND disabled_at IS NULL", params![id, now])?;
    Ok(())
}

/// Every item of a table, in key order (index backfill, TTL changes).
pub fn all_items(conn: &Connection, table_id: i64) -> Result<Vec<(EncodedKey, Item)>, TableError> {
    let mut st = conn.prepare_cached("SELECT pk, sk, item FROM items WHERE table_id = ?1 ORDER BY pk, sk")?;
    let rows = st.query_map([table_id], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, String>(2)?)))?;
    let mut items = Vec::new();
    for row in rows {
        let (pk, sk, text) = row?;
        items.push((EncodedKey { pk, sk }, parse_item(&text)?));
    }
    Ok(items)
}

/// Rewrites the TTL expiry column of every item of a table (after UpdateTimeToLive).
pub fn refresh_expiry(conn: &Connection, table: &Loaded) -> Result<(), TableError> {
    for (key, item) in all_items(conn, table.id)? {
        conn.prepare_cached("UPDATE items SET expires = ?4 WHERE table_id = ?1 AND pk = ?2 AND sk = ?3")?.execute(params![
            table.id,
            key.pk,
            key.sk,
            expiry(&table.def, &item)
        ])?;
    }
    Ok(())
}

/// Builds a new index's entries from the table's items (UpdateTable's GSI Create).
pub fn backfill_index(conn: &Connection, table: &Loaded, index: &str) -> Result<(), TableError> {
    let Some(def) = table.def.index(index) else { return Ok(()) };
    for (key, item) in all_items(conn, table.id)? {
        if let Some(k) = def.key.index_key(index, &item).ok().flatten() {
            conn.prepare_cached("INSERT OR REPLACE INTO index_entries (table_id, idx, ipk, isk, pk, sk) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?
                .execute(params![table.id, index, k.pk, k.sk, key.pk, key.sk])?;
        }
    }
    Ok(())
}

/// Removes an index's entries.
pub fn drop_index(conn: &Connection, table_id: i64, index: &str) -> Result<(), TableError> {
    conn.execute("DELETE FROM index_entries WHERE table_id = ?1 AND idx = ?2", params![table_id, index])?;
    Ok(())
}

/// Items whose TTL has passed, at most `limit`: (table name, key, item).
pub fn expired(conn: &Connection, now: i64, limit: usize) -> Result<Vec<(String, EncodedKey, Item)>, TableError> {
    let mut st = conn.prepare_cached(
        "SELECT t.name, i.pk, i.sk, i.item FROM items i JOIN tables t ON t.id = i.table_id
         WHERE i.expires IS NOT NULL AND i.expires <= ?1 LIMIT ?2",
    )?;
    let rows = st.query_map(params![now, limit as i64], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, Vec<u8>>(2)?, r.get::<_, String>(3)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (name, pk, sk, text) = row?;
        out.push((name, EncodedKey { pk, sk }, parse_item(&text)?));
    }
    Ok(out)
}

/// Bounds of a range scan over one key column.
#[derive(Clone, Debug, Default)]
pub struct Range {
    /// Lower bound and whether it is included.
    pub lower: Option<(Vec<u8>, bool)>,
    /// Upper bound and whether it is included.
    pub upper: Option<(Vec<u8>, bool)>,
}

/// Where a page of a Query or Scan reads.
pub struct Scan<'a> {
    /// The table.
    pub table_id: i64,
    /// An index, or None for the table itself.
    pub index: Option<&'a str>,
    /// Query: the partition (table or index partition key bytes).
    pub partition: Option<Vec<u8>>,
    /// Query: the sort key range.
    pub range: Range,
    /// Ascending order.
    pub forward: bool,
    /// Resume after this position: the sort columns' values (`[sk]`/`[pk, sk]` for the table,
    /// `[isk, pk, sk]`/`[ipk, isk, pk, sk]` for an index).
    pub after: Option<Vec<Vec<u8>>>,
    /// Scan: `(segment, total)`.
    pub segment: Option<(i64, i64)>,
}

/// A value bound to a scan's statement.
pub(crate) enum ScanArg {
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
}

/// A scan's statement (`i.item` of the items in order) and its arguments, numbered `?N`
/// (SQLite) or `$N` (PostgreSQL) by `mark`; the same SQL otherwise.
pub(crate) fn scan_sql(scan: &Scan<'_>, tables: (&str, &str), mark: &str) -> (String, Vec<ScanArg>) {
    let mut args: Vec<ScanArg> = vec![ScanArg::Int(scan.table_id)];
    let arg = |v: ScanArg, args: &mut Vec<ScanArg>| {
        args.push(v);
        format!("{mark}{}", args.len())
    };
    let (items, entries) = tables;
    let (from, sort_cols, part_col, range_col) = match scan.index {
        None => (format!("{items} i WHERE i.table_id = {mark}1"), vec!["i.pk", "i.sk"], "i.pk", "i.sk"),
        Some(index) => {
            let p = arg(ScanArg::Text(index.to_string()), &mut args);
            (
                format!("{entries} x JOIN {items} i ON i.table_id = x.table_id AND i.pk = x.pk AND i.sk = x.sk WHERE x.table_id = {mark}1 AND x.idx = {p}"),
                vec!["x.ipk", "x.isk", "x.pk", "x.sk"],
                "x.ipk",
                "x.isk",
            )
        }
    };
    let mut sql = format!("SELECT i.item FROM {from}");
    let mut order: Vec<&str> = sort_cols.clone();
    if let Some(partition) = &scan.partition {
        let p = arg(ScanArg::Blob(partition.clone()), &mut args);
        sql.push_str(&format!(" AND {part_col} = {p}"));
        order.remove(0);
    }
    if let Some((bound, inclusive)) = &scan.range.lower {
        let p = arg(ScanArg::Blob(bound.clone()), &mut args);
        sql.push_str(&format!(" AND {range_col} {} {p}", if *inclusive { ">=" } else { ">" }));
    }
    if let Some((bound, inclusive)) = &scan.range.upper {
        let p = arg(ScanArg::Blob(bound.clone()), &mut args);
        sql.push_str(&format!(" AND {range_col} {} {p}", if *inclusive { "<=" } else { "<" }));
    }
    if let Some((segment, total)) = scan.segment {
        let (s, t) = (arg(ScanArg::Int(segment), &mut args), arg(ScanArg::Int(total), &mut args));
        sql.push_str(&format!(" AND i.seg % {t} = {s}"));
    }
    if let Some(after) = &scan.after {
        let cols = &order[order.len() - after.len().min(order.len())..];
        let marks: Vec<String> = after.iter().map(|v| arg(ScanArg::Blob(v.clone()), &mut args)).collect();
        sql.push_str(&format!(" AND ({}) {} ({})", cols.join(", "), if scan.forward { ">" } else { "<" }, marks.join(", ")));
    }
    let direction = if scan.forward { "ASC" } else { "DESC" };
    sql.push_str(&format!(" ORDER BY {}", order.iter().map(|c| format!("{c} {direction}")).collect::<Vec<_>>().join(", ")));
    (sql, args)
}

/// Runs a range scan, handing each item to `each` until it returns false.
pub fn scan(conn: &Connection, scan: &Scan<'_>, mut each: impl FnMut(Item) -> Result<bool, TableError>) -> Result<(), TableError> {
    use rusqlite::types::Value;
    let (sql, args) = scan_sql(scan, ("items", "index_entries"), "?");
    let args = args.into_iter().map(|a| match a {
        ScanArg::Int(i) => Value::Integer(i),
        ScanArg::Text(t) => Value::Text(t),
        ScanArg::Blob(b) => Value::Blob(b),
    });
    let mut st = conn.prepare_cached(&sql)?;
    let mut rows = st.query(rusqlite::params_from_iter(args))?;
    while let Some(row) = rows.next()? {
        let text: String = row.get(0)?;
        if !each(parse_item(&text)?)? {
            break;
        }
    }
    Ok(())
}

/// A stream's row, as DynamoDB Streams' reader sees it.
#[derive(Clone, Debug)]
pub struct StreamRow {
    /// Row id (records are stored under it).
    pub id: i64,
    /// The table's name (the table may be gone).
    pub table_name: String,
    /// StreamArn.
    pub arn: String,
    /// StreamViewType.
    pub view_type: String,
    /// The table's key schema when the stream was made.
    pub key: crate::schema::KeySchema,
    /// CreationRequestDateTime, epoch seconds.
    pub created_at: f64,
    /// When it was disabled (its shard closed), epoch seconds.
    pub disabled_at: Option<f64>,
    /// The last sequence number the retention sweep removed (0: none).
    pub trimmed_through: i64,
}

const STREAM_COLUMNS: &str = "id, table_name, arn, view_type, key_schema, created_at, disabled_at, trimmed_through";

/// A `streams` row read with [`STREAM_COLUMNS`]; the inner error is a key schema that does not read.
fn stream_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<StreamRow, TableError>> {
    let arn: String = r.get(2)?;
    let key: String = r.get(4)?;
    let key = match serde_json::from_str(&key) {
        Ok(key) => key,
        Err(e) => return Ok(Err(TableError::Internal(format!("stream {arn}: key schema: {e}")))),
    };
    Ok(Ok(StreamRow {
        id: r.get(0)?,
        table_name: r.get(1)?,
        arn,
        view_type: r.get(3)?,
        key,
        created_at: r.get(5)?,
        disabled_at: r.get(6)?,
        trimmed_through: r.get(7)?,
    }))
}

/// Every stream (of `table` only, when given), oldest first.
pub fn streams(conn: &Connection, table: Option<&str>) -> Result<Vec<StreamRow>, TableError> {
    let mut st = conn.prepare_cached(&format!("SELECT {STREAM_COLUMNS} FROM streams WHERE ?1 IS NULL OR table_name = ?1 ORDER BY id"))?;
    let rows = st.query_map([table], stream_row)?.collect::<Result<Vec<_>, _>>()?;
    rows.into_iter().collect()
}

/// The stream whose ARN is `arn`, if it exists.
pub fn stream_by_arn(conn: &Connection, arn: &str) -> Result<Option<StreamRow>, TableError> {
    let mut st = conn.prepare_cached(&format!("SELECT {STREAM_COLUMNS} FROM streams WHERE arn = ?1 ORDER BY id DESC LIMIT 1"))?;
    st.query_row([arn], stream_row).optional()?.transpose()
}

/// The first and last sequence numbers of a stream's retained records.
pub fn stream_bounds(conn: &Connection, stream_id: i64) -> Result<(Option<i64>, Option<i64>), TableError> {
    let mut st = conn.prepare_cached("SELECT MIN(seq), MAX(seq) FROM stream_records WHERE stream_id = ?1")?;
    Ok(st.query_row([stream_id], |r| Ok((r.get(0)?, r.get(1)?)))?)
}

/// The last sequence number given to any stream record (0 before the first).
pub fn last_sequence(conn: &Connection) -> Result<i64, TableError> {
    let mut st = conn.prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = 'stream_records'")?;
    Ok(st.query_row([], |r| r.get(0)).optional()?.unwrap_or(0))
}

/// The retention sweep: removes stream records made before `before` (epoch seconds), moving
/// each stream's trim horizon past them, and the rows of streams disabled before `before`
/// that have no records left. Records are appended in time order, so the expired ones are a
/// prefix of the sequence. Returns how many records went.
pub fn trim_streams(conn: &Connection, before: f64) -> Result<usize, TableError> {
    let first_kept: Option<i64> = conn
        .prepare_cached("SELECT seq FROM stream_records WHERE created_at >= ?1 ORDER BY seq LIMIT 1")?
        .query_row([before], |r| r.get(0))
        .optional()?;
    let boundary = first_kept.unwrap_or(i64::MAX);
    conn.prepare_cached(
        "UPDATE streams SET trimmed_through = MAX(trimmed_through,
             (SELECT MAX(seq) FROM stream_records r WHERE r.stream_id = streams.id AND r.seq < ?1))
         WHERE id IN (SELECT DISTINCT stream_id FROM stream_records WHERE seq < ?1)",
    )?
    .execute([boundary])?;
    let removed = conn.prepare_cached("DELETE FROM stream_records WHERE seq < ?1")?.execute([boundary])?;
    conn.prepare_cached(
        "DELETE FROM streams WHERE disabled_at IS NOT NULL AND disabled_at < ?1
         AND NOT EXISTS (SELECT 1 FROM stream_records r WHERE r.stream_id = streams.id)",
    )?
    .execute([before])?;
    Ok(removed)
}

/// The first record of a stream made at or after `at` (epoch seconds).
pub fn first_record_at(conn: &Connection, stream_id: i64, at: f64) -> Result<Option<i64>, TableError> {
    let mut st = conn.prepare_cached("SELECT seq FROM stream_records WHERE stream_id = ?1 AND created_at >= ?2 ORDER BY seq LIMIT 1")?;
    Ok(st.query_row(params![stream_id, at], |r| r.get(0)).optional()?)
}

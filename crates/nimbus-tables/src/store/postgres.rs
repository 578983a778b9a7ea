//! The tables in PostgreSQL, for nodes that share one database (`--store postgres://…`):
//! `tables.db`'s rows in the account's schema (named `ddb_…` there), so a table made on one
//! node is read and written on every node. Key columns are `bytea`, whose order is
//! `memcmp`'s, as SQLite's blobs: a Query is one range scan of the primary key.
//!
//! Several nodes write at once, where SQLite has one writer thread, so a write holds what it
//! reads until its commit: the items it names (transaction-scoped advisory locks on a hash
//! of table and key, taken in order), then its tables' stream rows (by id; every writer takes
//! tables, then keys, then streams, each in order, so two writes never wait on each other in
//! a cycle), and
//! its table (an advisory lock on its name, shared; a change of the table itself takes it
//! exclusively, so no write uses a definition that is being replaced or a table being
//! deleted). A stream's records are numbered from its own
//! row (`last_seq`, incremented under that row's lock), so they commit in the order of their
//! numbers and a reader that saw number N never later finds a smaller one appear.

use std::sync::Arc;

use nimbus_store::pg::{self, PgDatabase, PgSchema};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::{
    parse_item, plan_change, scan_sql, to_json, EncodedKey, Item, Loaded, Origin, Scan, ScanArg, StreamRecord, StreamRow, TableTx,
};
use crate::error::TableError;
use crate::schema::{KeySchema, TableDef};

/// The tables' rows in an account's schema: append migrations, never edit them.
const SCHEMA: PgSchema = PgSchema {
    name: "tables",
    migrations: &[
        // 1: the first release on PostgreSQL (2026-12): `tables.db`'s tables; stream records
        // numbered per stream.
        "
CREATE TABLE ddb_tables (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    def TEXT NOT NULL
);
CREATE TABLE ddb_items (
    table_id BIGINT NOT NULL,
    pk BYTEA NOT NULL,
    sk BYTEA NOT NULL,
    item TEXT NOT NULL,
    size BIGINT NOT NULL,
    seg BIGINT NOT NULL,
    expires BIGINT,
    PRIMARY KEY (table_id, pk, sk)
);
CREATE INDEX ddb_items_expiry ON ddb_items (expires) WHERE expires IS NOT NULL;
CREATE TABLE ddb_index_entries (
    table_id BIGINT NOT NULL,
    idx TEXT NOT NULL,
    ipk BYTEA NOT NULL,
    isk BYTEA NOT NULL,
    pk BYTEA NOT NULL,
    sk BYTEA NOT NULL,
    PRIMARY KEY (table_id, idx, ipk, isk, pk, sk)
);
CREATE TABLE ddb_streams (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    table_name TEXT NOT NULL,
    arn TEXT NOT NULL,
    view_type TEXT NOT NULL,
    key_schema TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    disabled_at DOUBLE PRECISION,
    trimmed_through BIGINT NOT NULL DEFAULT 0,
    last_seq BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX ddb_streams_arn ON ddb_streams (arn);
CREATE TABLE ddb_stream_records (
    stream_id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (stream_id, seq)
);
CREATE INDEX ddb_stream_records_created ON ddb_stream_records (stream_id, created_at);
-- Takes the advisory locks of a write's items in the order given (one round trip).
CREATE FUNCTION ddb_lock(keys BIGINT[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE k BIGINT;
BEGIN
    FOREACH k IN ARRAY keys LOOP
        PERFORM pg_advisory_xact_lock(k);
    END LOOP;
END $$;
",
        // 2: a table's definition changed or removed is announced, so other nodes forget the
        // definitions they keep for reads.
        "
CREATE TRIGGER ddb_tables_changed AFTER INSERT OR UPDATE OR DELETE ON ddb_tables FOR EACH ROW EXECUTE FUNCTION notify_change('name');
",
    ],
};

/// Rows a scan reads from its portal at a time.
const SCAN_ROWS: i32 = 256;

fn backend(e: tokio_postgres::Error) -> TableError {
    store(pg::backend(e))
}

fn store(e: nimbus_store::StoreError) -> TableError {
    TableError::Internal(format!("the tables' database: {e}"))
}

/// An account's tables in a shared database.
pub struct SharedTables {
    db: PgDatabase,
    /// Woken after this node's commits that wrote items (a stream's poller here waits on it;
    /// other nodes' writes reach it at its next poll).
    changed: Arc<tokio::sync::Notify>,
    /// Table definitions as reads last found them.
    defs: Arc<Defs>,
}

/// How long a kept table definition is used at most.
const DEF_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// The definitions reads use, so a GetItem is one statement: forgotten after this node's
/// commits that change a table and when another node's change is announced (within about a
/// second). Writes read their table's row under its lock, never from here.
#[derive(Default)]
struct Defs {
    /// Each with when it was read: kept at most [`DEF_TTL`] (should an announcement be missed
    /// on a feed that broke without saying so).
    tables: std::sync::Mutex<std::collections::HashMap<String, (Loaded, std::time::Instant)>>,
    /// Counts forgettings: a read that found a definition before one is not kept after it.
    generation: std::sync::atomic::AtomicU64,
}

impl Defs {
    fn get(&self, name: &str) -> Option<Loaded> {
        let tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        tables.get(name).filter(|(_, read)| read.elapsed() < DEF_TTL).map(|(table, _)| table.clone())
    }

    fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Keeps `table`, read when the generation was `generation`, unless forgotten since.
    fn keep(&self, generation: u64, table: &Loaded) {
        let mut tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        if self.generation() == generation {
            tables.insert(table.def.name.clone(), (table.clone(), std::time::Instant::now()));
        }
    }

    fn forget(&self) {
        let mut tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        self.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        tables.clear();
    }
}

impl SharedTables {
    /// Opens and migrates the tables, and follows other nodes' table changes.
    pub(crate) async fn open(url: &str, account: &str) -> Result<SharedTables, TableError> {
        let node = format!("nimbus-tables-{}", uuid::Uuid::new_v4().simple());
        let db = PgDatabase::open(url, account, &node).await.map_err(store)?;
        db.migrate(&SCHEMA).await.map_err(store)?;
        let defs = Arc::new(Defs::default());
        let weak = Arc::downgrade(&defs);
        pg::watch_tables(Arc::downgrade(&defs), url.to_string(), db.clone(), &["ddb_tables"], move || {
            if let Some(defs) = weak.upgrade() {
                defs.forget();
            }
        });
        Ok(SharedTables { db, changed: Default::default(), defs })
    }

    /// A read of single statements outside a transaction, with the definitions kept for
    /// reads (see [`Defs`]): each statement sees what was committed when it began.
    pub(crate) fn plain<'a>(&'a self, client: &'a deadpool_postgres::Object) -> PgTx<'a> {
        PgTx { tx: Conn::Plain(client), shared: self, wrote: false, cached: true, defs_changed: false, snapshot_generation: None }
    }

    /// A read-only transaction of one snapshot (REPEATABLE READ: every statement sees the
    /// same commits; a scan reads its portal in it) using the definitions kept for reads.
    pub(crate) async fn begin_read<'a>(&'a self, client: &'a mut deadpool_postgres::Object) -> Result<PgTx<'a>, TableError> {
        let generation = self.defs.generation();
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(backend)?;
        Ok(PgTx { tx: Conn::Tx(tx), shared: self, wrote: false, cached: true, defs_changed: false, snapshot_generation: Some(generation) })
    }

    /// A pooled connection; `durable`: one whose commits wait for the WAL's flush.
    pub(crate) async fn client(&self, durable: bool) -> Result<deadpool_postgres::Object, TableError> {
        if durable { self.db.client().await } else { self.db.relaxed_client().await }.map_err(store)
    }

    /// Starts a transaction on `client`.
    pub(crate) async fn begin<'a>(&'a self, client: &'a mut deadpool_postgres::Object) -> Result<PgTx<'a>, TableError> {
        let tx = client.transaction().await.map_err(backend)?;
        Ok(PgTx { tx: Conn::Tx(tx), shared: self, wrote: false, cached: false, defs_changed: false, snapshot_generation: None })
    }

    pub(crate) fn changed(&self) -> Arc<tokio::sync::Notify> {
        self.changed.clone()
    }
}

/// Where a [`PgTx`]'s statements run.
enum Conn<'a> {
    Tx(deadpool_postgres::Transaction<'a>),
    /// Each statement on its own (reads: [`SharedTables::plain`]).
    Plain(&'a deadpool_postgres::Object),
    /// Committed.
    Done,
}

fn done() -> TableError {
    TableError::Internal("the tables' database: a statement after the commit".into())
}

/// One transaction on the shared tables (or a plain read's statements).
pub(crate) struct PgTx<'a> {
    tx: Conn<'a>,
    shared: &'a SharedTables,
    /// It changed items (its commit wakes this node's stream pollers).
    wrote: bool,
    /// Its unlocked table lookups use the definitions kept for reads.
    cached: bool,
    /// It changed a table's definition (the kept ones are forgotten at its commit).
    defs_changed: bool,
    /// A read-only snapshot's: the kept definitions' generation before its first statement.
    snapshot_generation: Option<u64>,
}

/// A transaction that changed a table's definition makes this node forget those it keeps
/// once it ends, committed, failed or abandoned: whatever became of it, nothing kept is
/// older than it (this node never hears its own announcements).
impl Drop for PgTx<'_> {
    fn drop(&mut self) {
        if self.defs_changed {
            self.shared.defs.forget();
        }
    }
}

impl PgTx<'_> {
    pub(crate) async fn commit(mut self) -> Result<(), TableError> {
        if let Conn::Tx(tx) = std::mem::replace(&mut self.tx, Conn::Done) {
            tx.commit().await.map_err(backend)?;
        }
        if self.wrote {
            self.shared.changed.notify_waiters();
        }
        Ok(())
    }

    async fn statement(&self, sql: &str) -> Result<tokio_postgres::Statement, TableError> {
        match &self.tx {
            Conn::Tx(tx) => tx.prepare_cached(sql).await,
            Conn::Plain(client) => client.prepare_cached(sql).await,
            Conn::Done => return Err(done()),
        }
        .map_err(backend)
    }

    async fn rows(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, TableError> {
        let statement = self.statement(sql).await?;
        match &self.tx {
            Conn::Tx(tx) => tx.query(&statement, params).await,
            Conn::Plain(client) => client.query(&statement, params).await,
            Conn::Done => return Err(done()),
        }
        .map_err(backend)
    }

    async fn row(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>, TableError> {
        let statement = self.statement(sql).await?;
        match &self.tx {
            Conn::Tx(tx) => tx.query_opt(&statement, params).await,
            Conn::Plain(client) => client.query_opt(&statement, params).await,
            Conn::Done => return Err(done()),
        }
        .map_err(backend)
    }

    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, TableError> {
        let statement = self.statement(sql).await?;
        match &self.tx {
            Conn::Tx(tx) => tx.execute(&statement, params).await,
            Conn::Plain(client) => client.execute(&statement, params).await,
            Conn::Done => return Err(done()),
        }
        .map_err(backend)
    }

    /// The transaction (a lock or a portal needs one).
    fn transaction(&self) -> Result<&deadpool_postgres::Transaction<'_>, TableError> {
        match &self.tx {
            Conn::Tx(tx) => Ok(tx),
            Conn::Plain(_) | Conn::Done => Err(TableError::Internal("the tables' database: a plain read cannot lock or scan".into())),
        }
    }

    /// The table named `name`, after taking its advisory lock as `hold` says.
    async fn table_row(&self, name: &str, hold: Option<pg::Hold>) -> Result<Option<Loaded>, TableError> {
        if let Some(how) = hold {
            pg::hold(self.transaction()?, table_lock(self.shared.db.schema(), name), how).await.map_err(store)?;
        }
        let row = self.row("SELECT id, def FROM ddb_tables WHERE name = $1", &[&name]).await?;
        row.map(|r| {
            let def: String = get(&r, 1)?;
            let def = serde_json::from_str(&def).map_err(|e| TableError::Internal(format!("table {name}: {e}")))?;
            Ok(Loaded { id: get(&r, 0)?, def })
        })
        .transpose()
    }
}

/// A table's advisory lock (by schema and name).
fn table_lock(schema: &str, name: &str) -> i64 {
    pg::advisory_key(&[b"table", schema.as_bytes(), name.as_bytes()])
}

fn get<'r, T: tokio_postgres::types::FromSql<'r>>(r: &'r Row, i: usize) -> Result<T, TableError> {
    r.try_get(i).map_err(backend)
}

/// The advisory lock of one item (by table and key).
fn key_lock(table_id: i64, key: &EncodedKey) -> i64 {
    pg::advisory_key(&[b"item", &table_id.to_le_bytes(), &key.pk, &key.sk])
}

fn stream_row(r: &Row) -> Result<StreamRow, TableError> {
    let arn: String = get(r, 2)?;
    let key: String = get(r, 4)?;
    let key = serde_json::from_str(&key).map_err(|e| TableError::Internal(format!("stream {arn}: key schema: {e}")))?;
    Ok(StreamRow {
        id: get(r, 0)?,
        table_name: get(r, 1)?,
        arn,
        view_type: get(r, 3)?,
        key,
        created_at: get(r, 5)?,
        disabled_at: get(r, 6)?,
        trimmed_through: get(r, 7)?,
    })
}

const STREAM_COLUMNS: &str = "id, table_name, arn, view_type, key_schema, created_at, disabled_at, trimmed_through";

impl TableTx for PgTx<'_> {
    async fn find_table(&mut self, name: &str) -> Result<Option<Loaded>, TableError> {
        if !self.cached {
            return self.table_row(name, None).await;
        }
        if let Some(table) = self.shared.defs.get(name) {
            return Ok(Some(table));
        }
        // A plain read sees what was committed when it runs; a snapshot's, what was when its
        // first statement ran, after its start: the generation of either moment is kept with it.
        let generation = self.snapshot_generation.unwrap_or_else(|| self.shared.defs.generation());
        let found = self.table_row(name, None).await?;
        if let Some(table) = &found {
            self.shared.defs.keep(generation, table);
        }
        Ok(found)
    }

    async fn find_table_for_write(&mut self, name: &str) -> Result<Option<Loaded>, TableError> {
        self.table_row(name, Some(pg::Hold::Shared)).await
    }

    async fn find_table_for_change(&mut self, name: &str) -> Result<Option<Loaded>, TableError> {
        self.table_row(name, Some(pg::Hold::Exclusive)).await
    }

    async fn table_names(&mut self) -> Result<Vec<String>, TableError> {
        self.rows("SELECT name FROM ddb_tables ORDER BY name COLLATE \"C\"", &[]).await?.iter().map(|r| get(r, 0)).collect()
    }

    async fn insert_table(&mut self, def: &TableDef) -> Result<i64, TableError> {
        self.defs_changed = true;
        // Two nodes making one name: the second waits for the first's commit, then finds it.
        let row = self
            .row(
                "INSERT INTO ddb_tables (name, def) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING RETURNING id",
                &[&def.name, &to_json(def)?],
            )
            .await?;
        match row {
            Some(r) => get(&r, 0),
            None => Err(TableError::InUse(format!("Table already exists: {}", def.name))),
        }
    }

    async fn save_table(&mut self, table: &Loaded) -> Result<(), TableError> {
        self.defs_changed = true;
        self.execute("UPDATE ddb_tables SET def = $2 WHERE id = $1", &[&table.id, &to_json(&table.def)?]).await?;
        Ok(())
    }

    async fn delete_table(&mut self, id: i64) -> Result<(), TableError> {
        self.defs_changed = true;
        self.execute("DELETE FROM ddb_items WHERE table_id = $1", &[&id]).await?;
        self.execute("DELETE FROM ddb_index_entries WHERE table_id = $1", &[&id]).await?;
        self.execute("DELETE FROM ddb_tables WHERE id = $1", &[&id]).await?;
        Ok(())
    }

    async fn table_stats(&mut self, id: i64) -> Result<(i64, i64), TableError> {
        let rows = self.rows("SELECT COUNT(*)::bigint, COALESCE(SUM(size), 0)::bigint FROM ddb_items WHERE table_id = $1", &[&id]).await?;
        Ok((get(&rows[0], 0)?, get(&rows[0], 1)?))
    }

    async fn index_count(&mut self, id: i64, index: &str) -> Result<i64, TableError> {
        let rows = self.rows("SELECT COUNT(*)::bigint FROM ddb_index_entries WHERE table_id = $1 AND idx = $2", &[&id, &index]).await?;
        get(&rows[0], 0)
    }

    async fn lock_items(&mut self, tables: &[&Loaded], keys: &[(i64, &EncodedKey)]) -> Result<(), TableError> {
        let mut locks: Vec<i64> = keys.iter().map(|(table, key)| key_lock(*table, key)).collect();
        locks.sort_unstable();
        locks.dedup();
        if !locks.is_empty() {
            self.execute("SELECT ddb_lock($1)", &[&locks]).await?;
        }
        let mut streams: Vec<i64> = tables.iter().filter_map(|t| t.def.live_stream().map(|s| s.id)).collect();
        streams.sort_unstable();
        streams.dedup();
        if !streams.is_empty() {
            self.rows("SELECT id FROM ddb_streams WHERE id = ANY($1) ORDER BY id FOR UPDATE", &[&streams]).await?;
        }
        Ok(())
    }

    async fn get_item(&mut self, table_id: i64, key: &EncodedKey) -> Result<Option<Item>, TableError> {
        let row =
            self.row("SELECT item FROM ddb_items WHERE table_id = $1 AND pk = $2 AND sk = $3", &[&table_id, &key.pk, &key.sk]).await?;
        row.map(|r| parse_item(get(&r, 0)?)).transpose()
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
        let change = plan_change(table, key, old, new, origin)?;
        self.wrote = true;
        match &change.item {
            Some(item) => {
                self.execute(
                    "INSERT INTO ddb_items (table_id, pk, sk, item, size, seg, expires) VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (table_id, pk, sk) DO UPDATE SET item = excluded.item, size = excluded.size, expires = excluded.expires",
                    &[&table.id, &key.pk, &key.sk, &item.json, &item.size, &item.seg, &item.expires],
                )
                .await?;
            }
            None => {
                self.execute("DELETE FROM ddb_items WHERE table_id = $1 AND pk = $2 AND sk = $3", &[&table.id, &key.pk, &key.sk]).await?;
            }
        }
        for (index, ipk, isk) in &change.index_removed {
            self.execute(
                "DELETE FROM ddb_index_entries WHERE table_id = $1 AND idx = $2 AND ipk = $3 AND isk = $4 AND pk = $5 AND sk = $6",
                &[&table.id, index, ipk, isk, &key.pk, &key.sk],
            )
            .await?;
        }
        for (index, ipk, isk) in &change.index_added {
            self.execute(
                "INSERT INTO ddb_index_entries (table_id, idx, ipk, isk, pk, sk) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                &[&table.id, index, ipk, isk, &key.pk, &key.sk],
            )
            .await?;
        }
        if let Some((stream_id, record)) = &change.record {
            self.execute(
                "WITH n AS (UPDATE ddb_streams SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq)
                 INSERT INTO ddb_stream_records (stream_id, seq, created_at, record) SELECT $1, last_seq, $2, $3 FROM n",
                &[stream_id, &now, record],
            )
            .await?;
        }
        Ok(())
    }

    async fn refresh_expiry(&mut self, table: &Loaded) -> Result<(), TableError> {
        let rows = self.rows("SELECT pk, sk, item FROM ddb_items WHERE table_id = $1", &[&table.id]).await?;
        for r in &rows {
            let (pk, sk): (Vec<u8>, Vec<u8>) = (get(r, 0)?, get(r, 1)?);
            let expires = super::expiry(&table.def, &parse_item(get(r, 2)?)?);
            self.execute("UPDATE ddb_items SET expires = $4 WHERE table_id = $1 AND pk = $2 AND sk = $3", &[&table.id, &pk, &sk, &expires])
                .await?;
        }
        Ok(())
    }

    async fn backfill_index(&mut self, table: &Loaded, index: &str) -> Result<(), TableError> {
        let Some(def) = table.def.index(index) else { return Ok(()) };
        let rows = self.rows("SELECT pk, sk, item FROM ddb_items WHERE table_id = $1", &[&table.id]).await?;
        for r in &rows {
            let (pk, sk): (Vec<u8>, Vec<u8>) = (get(r, 0)?, get(r, 1)?);
            if let Some(k) = def.key.index_key(index, &parse_item(get(r, 2)?)?).ok().flatten() {
                self.execute(
                    "INSERT INTO ddb_index_entries (table_id, idx, ipk, isk, pk, sk) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                    &[&table.id, &index, &k.pk, &k.sk, &pk, &sk],
                )
                .await?;
            }
        }
        Ok(())
    }

    async fn drop_index(&mut self, table_id: i64, index: &str) -> Result<(), TableError> {
        self.execute("DELETE FROM ddb_index_entries WHERE table_id = $1 AND idx = $2", &[&table_id, &index]).await?;
        Ok(())
    }

    async fn expired(&mut self, now: i64, limit: usize) -> Result<Vec<(String, EncodedKey, Item)>, TableError> {
        let rows = self
            .rows(
                "SELECT t.name, i.pk, i.sk, i.item FROM ddb_items i JOIN ddb_tables t ON t.id = i.table_id
                 WHERE i.expires IS NOT NULL AND i.expires <= $1 LIMIT $2",
                &[&now, &(limit as i64)],
            )
            .await?;
        rows.iter().map(|r| Ok((get(r, 0)?, EncodedKey { pk: get(r, 1)?, sk: get(r, 2)? }, parse_item(get(r, 3)?)?))).collect()
    }

    async fn scan(&mut self, scan: &Scan<'_>, each: &mut (dyn FnMut(Item) -> Result<bool, TableError> + Send)) -> Result<(), TableError> {
        let (sql, args) = scan_sql(scan, ("ddb_items", "ddb_index_entries"), "$");
        let args: Vec<Box<dyn ToSql + Sync + Send>> = args
            .into_iter()
            .map(|a| -> Box<dyn ToSql + Sync + Send> {
                match a {
                    ScanArg::Int(i) => Box::new(i),
                    ScanArg::Text(t) => Box::new(t),
                    ScanArg::Blob(b) => Box::new(b),
                }
            })
            .collect();
        let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.as_ref() as &(dyn ToSql + Sync)).collect();
        let tx = self.transaction()?;
        let statement = tx.prepare_cached(&sql).await.map_err(backend)?;
        // A page ends at its limit or 1 MB: read the rows a few at a time, not all at once.
        let portal = tx.bind(&statement, &params).await.map_err(backend)?;
        loop {
            let rows = tx.query_portal(&portal, SCAN_ROWS).await.map_err(backend)?;
            let last = rows.len() < SCAN_ROWS as usize;
            for r in &rows {
                if !each(parse_item(get(r, 0)?)?)? {
                    return Ok(());
                }
            }
            if last {
                return Ok(());
            }
        }
    }

    async fn stream_records(&mut self, stream_id: i64, after: i64, limit: usize) -> Result<Vec<StreamRecord>, TableError> {
        let rows = self
            .rows(
                "SELECT seq, created_at, record FROM ddb_stream_records WHERE stream_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                &[&stream_id, &after, &(limit as i64)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let seq: i64 = get(r, 0)?;
                let record = serde_json::from_str(get(r, 2)?).map_err(|e| TableError::Internal(format!("stream record {seq}: {e}")))?;
                Ok(StreamRecord { seq, created_at: get(r, 1)?, record })
            })
            .collect()
    }

    async fn insert_stream(&mut self, table: &str, arn: &str, view_type: &str, key: &KeySchema, now: f64) -> Result<i64, TableError> {
        self.defs_changed = true;
        let row = self
            .row(
                "INSERT INTO ddb_streams (table_name, arn, view_type, key_schema, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[&table, &arn, &view_type, &to_json(key)?, &now],
            )
            .await?
            .ok_or_else(|| TableError::Internal("a stream's row was not made".into()))?;
        get(&row, 0)
    }

    async fn disable_stream(&mut self, id: i64, now: f64) -> Result<(), TableError> {
        self.defs_changed = true;
        self.execute("UPDATE ddb_streams SET disabled_at = $2 WHERE id = $1 AND disabled_at IS NULL", &[&id, &now]).await?;
        Ok(())
    }

    async fn streams(&mut self, table: Option<&str>) -> Result<Vec<StreamRow>, TableError> {
        let rows = self
            .rows(&format!("SELECT {STREAM_COLUMNS} FROM ddb_streams WHERE $1::text IS NULL OR table_name = $1 ORDER BY id"), &[&table])
            .await?;
        rows.iter().map(stream_row).collect()
    }

    async fn stream_by_arn(&mut self, arn: &str) -> Result<Option<StreamRow>, TableError> {
        let row = self.row(&format!("SELECT {STREAM_COLUMNS} FROM ddb_streams WHERE arn = $1 ORDER BY id DESC LIMIT 1"), &[&arn]).await?;
        row.as_ref().map(stream_row).transpose()
    }

    async fn stream_bounds(&mut self, stream_id: i64) -> Result<(Option<i64>, Option<i64>), TableError> {
        let rows = self.rows("SELECT MIN(seq), MAX(seq) FROM ddb_stream_records WHERE stream_id = $1", &[&stream_id]).await?;
        Ok((get(&rows[0], 0)?, get(&rows[0], 1)?))
    }

    async fn last_sequence(&mut self, stream_id: i64) -> Result<i64, TableError> {
        let row = self.row("SELECT last_seq FROM ddb_streams WHERE id = $1", &[&stream_id]).await?;
        Ok(row.map(|r| get(&r, 0)).transpose()?.unwrap_or(0))
    }

    async fn trim_streams(&mut self, before: f64) -> Result<usize, TableError> {
        // Per stream, the records before the first one made at or after `before` (its
        // numbers follow its commits, so the expired ones are a prefix).
        let streams =
            self.rows("SELECT DISTINCT stream_id FROM ddb_stream_records WHERE created_at < $1 ORDER BY stream_id", &[&before]).await?;
        let mut removed = 0usize;
        for r in &streams {
            let stream: i64 = get(r, 0)?;
            let keep =
                self.rows("SELECT MIN(seq) FROM ddb_stream_records WHERE stream_id = $1 AND created_at >= $2", &[&stream, &before]).await?;
            let boundary: i64 = get::<Option<i64>>(&keep[0], 0)?.unwrap_or(i64::MAX);
            let gone = self
                .rows(
                    "WITH d AS (DELETE FROM ddb_stream_records WHERE stream_id = $1 AND seq < $2 RETURNING seq)
                     SELECT COUNT(*)::bigint, MAX(seq) FROM d",
                    &[&stream, &boundary],
                )
                .await?;
            let (count, last): (i64, Option<i64>) = (get(&gone[0], 0)?, get(&gone[0], 1)?);
            if let Some(last) = last {
                self.execute("UPDATE ddb_streams SET trimmed_through = GREATEST(trimmed_through, $2) WHERE id = $1", &[&stream, &last])
                    .await?;
            }
            removed += count as usize;
        }
        self.execute(
            "DELETE FROM ddb_streams s WHERE disabled_at IS NOT NULL AND disabled_at < $1
             AND NOT EXISTS (SELECT 1 FROM ddb_stream_records r WHERE r.stream_id = s.id)",
            &[&before],
        )
        .await?;
        Ok(removed)
    }

    async fn first_record_at(&mut self, stream_id: i64, at: f64) -> Result<Option<i64>, TableError> {
        let row = self
            .row("SELECT seq FROM ddb_stream_records WHERE stream_id = $1 AND created_at >= $2 ORDER BY seq LIMIT 1", &[&stream_id, &at])
            .await?;
        row.map(|r| get(&r, 0)).transpose()
    }
}

#[cfg(test)]
mod tests {
    //! Two services on one database stand for two nodes (each its own pool).

    use std::sync::Arc;

    use crate::request::*;
    use crate::service_tests::{input, query, table, wire};
    use crate::{ReadFrom, TableError, TableService};

    async fn nodes() -> Option<(Arc<TableService>, Arc<TableService>)> {
        let url = nimbus_store::pg::testing::fresh_database().await?;
        let a = TableService::open_shared(&url, "us-east-1", "123456789012").await.expect("a opens");
        let b = TableService::open_shared(&url, "us-east-1", "123456789012").await.expect("b opens");
        Some((a, b))
    }

    /// The table `things` (a string hash key `pk`) with a stream of `view_type`.
    async fn streamed_table(node: &Arc<TableService>, view_type: &str) {
        node.create_table(input(serde_json::json!({
            "TableName": "things",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
            "StreamSpecification": {"StreamEnabled": true, "StreamViewType": view_type}
        })))
        .await
        .unwrap();
    }

    fn put(json: &str, condition: Option<&str>) -> PutItemInput {
        PutItemInput {
            table_name: "things".into(),
            item: wire(json),
            condition_expression: condition.map(str::to_string),
            params: ExpressionParams::default(),
            return_values: None,
            return_values_on_condition_check_failure: None,
            legacy: LegacyParams::default(),
            return_consumed_capacity: None,
        }
    }

    #[tokio::test]
    async fn a_table_made_on_one_node_answers_on_another_as_on_sqlite() {
        let Some((a, b)) = nodes().await else { return };
        let sqlite = TableService::in_memory("us-east-1", "123456789012").unwrap();
        table(&a).await;
        table(&sqlite).await;
        let q = |cond: &str, values: serde_json::Value, forward: bool| {
            serde_json::json!({"TableName": "things", "KeyConditionExpression": cond, "ExpressionAttributeValues": values,
                               "ScanIndexForward": forward})
        };
        let p = serde_json::json!({":p": {"S": "p"}, ":a": {"N": "-0.5"}, ":b": {"N": "0.5"}});
        let cases = [
            q("pk = :p AND sk BETWEEN :a AND :b", p.clone(), true),
            q("pk = :p AND sk > :a", serde_json::json!({":p": {"S": "p"}, ":a": {"N": "5.5"}}), false),
            q("pk = :p", serde_json::json!({":p": {"S": "p"}}), true),
            serde_json::json!({"TableName": "things", "IndexName": "by-g", "KeyConditionExpression": "g = :g",
                               "ExpressionAttributeValues": {":g": {"S": "odd"}}}),
        ];
        for body in cases {
            let want = query(&sqlite, body.clone()).await;
            assert!(!want.is_empty(), "{body}");
            assert_eq!(query(&b, body.clone()).await, want, "{body}");
        }
        // Pages of a Scan resume where the last ended, on either node.
        let mut seen = Vec::new();
        let mut start: Option<serde_json::Value> = None;
        for turn in 0.. {
            let node = if turn % 2 == 0 { &a } else { &b };
            let mut body = serde_json::json!({"TableName": "things", "Limit": 7});
            if let Some(s) = start.take() {
                body["ExclusiveStartKey"] = s;
            }
            let out = node.read(input(body), false).await.unwrap();
            seen.extend(out.items.unwrap_or_default().iter().map(|i| i["sk"].brief()));
            match out.last_evaluated_key {
                Some(k) => start = Some(serde_json::to_value(k).unwrap()),
                None => break,
            }
        }
        let all = sqlite.read(input(serde_json::json!({"TableName": "things"})), false).await.unwrap();
        assert_eq!(seen, all.items.unwrap_or_default().iter().map(|i| i["sk"].brief()).collect::<Vec<_>>());
        let described = b.describe_table("things".into()).await.unwrap().table;
        assert_eq!(described.item_count, 20);
    }

    /// `things` with the string hash key `key`.
    async fn keyed_table(node: &Arc<TableService>, key: &str) {
        node.create_table(input(serde_json::json!({
            "TableName": "things",
            "AttributeDefinitions": [{"AttributeName": key, "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": key, "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST"
        })))
        .await
        .unwrap();
    }

    async fn get(node: &Arc<TableService>, key: &str) -> Result<Option<String>, TableError> {
        let out = node
            .get_item(input(serde_json::json!({"TableName": "things", "Key": serde_json::from_str::<serde_json::Value>(key).unwrap()})))
            .await?;
        Ok(out.item.map(|i| i["v"].brief()))
    }

    /// Reads use the definitions a node keeps: a table deleted and made again with another
    /// key is followed at once on the node that changed it and within a second elsewhere.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kept_definitions_follow_table_changes() {
        let Some((a, b)) = nodes().await else { return };
        keyed_table(&a, "pk").await;
        a.put_item(PutItemInput { item: wire(r#"{"pk": {"S": "x"}, "v": {"S": "first"}}"#), ..put("{}", None) }).await.unwrap();
        for node in [&a, &b] {
            assert_eq!(get(node, r#"{"pk": {"S": "x"}}"#).await.unwrap().as_deref(), Some("{S:first}"));
        }
        a.delete_table("things".into()).await.unwrap();
        keyed_table(&a, "id").await;
        a.put_item(PutItemInput { item: wire(r#"{"id": {"S": "x"}, "v": {"S": "second"}}"#), ..put("{}", None) }).await.unwrap();
        assert_eq!(get(&a, r#"{"id": {"S": "x"}}"#).await.unwrap().as_deref(), Some("{S:second}"), "the changing node at once");
        let started = std::time::Instant::now();
        loop {
            match get(&b, r#"{"id": {"S": "x"}}"#).await {
                Ok(v) if v.as_deref() == Some("{S:second}") => break,
                other => assert!(started.elapsed() < std::time::Duration::from_secs(2), "b still reads the old table: {other:?}"),
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn a_condition_and_an_update_hold_across_nodes() {
        let Some((a, b)) = nodes().await else { return };
        streamed_table(&a, "NEW_IMAGE").await;
        // Sixteen nodes' worth of "create if absent" for one key: one wins.
        let tries = (0..16)
            .map(|i| {
                let node = if i % 2 == 0 { a.clone() } else { b.clone() };
                tokio::spawn(async move {
                    node.put_item(put(&format!(r#"{{"pk":{{"S":"k"}},"who":{{"N":"{i}"}}}}"#), Some("attribute_not_exists(pk)"))).await
                })
            })
            .collect::<Vec<_>>();
        let mut won = 0;
        for t in tries {
            match t.await.unwrap() {
                Ok(_) => won += 1,
                Err(TableError::ConditionalCheckFailed { .. }) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(won, 1);
        // Forty increments from both nodes at once: none lost.
        let adds = (0..40)
            .map(|i| {
                let node = if i % 2 == 0 { a.clone() } else { b.clone() };
                tokio::spawn(async move {
                    node.update_item(input(serde_json::json!({
                        "TableName": "things", "Key": {"pk": {"S": "k"}},
                        "UpdateExpression": "ADD n :one", "ExpressionAttributeValues": {":one": {"N": "1"}}
                    })))
                    .await
                })
            })
            .collect::<Vec<_>>();
        for t in adds {
            t.await.unwrap().expect("update");
        }
        let got =
            b.get_item(input(serde_json::json!({"TableName": "things", "Key": {"pk": {"S": "k"}}, "ConsistentRead": true}))).await.unwrap();
        assert_eq!(got.item.unwrap()["n"].brief(), "{N:40}");
        // The stream has every change once, numbered without a gap in the order they committed.
        let arn = a.describe_table("things".into()).await.unwrap().table.latest_stream_arn.unwrap();
        let page = b.read_stream(&arn, ReadFrom::TrimHorizon, 1000).await.unwrap();
        assert_eq!(page.records.len(), 41);
        let numbers: Vec<u128> = page.records.iter().map(|r| r.dynamodb.sequence_number.parse().unwrap()).collect();
        assert!(numbers.windows(2).all(|w| w[1] > w[0]), "{numbers:?}");
        let counted: Vec<String> = page.records[1..]
            .iter()
            .map(|r| r.dynamodb.new_image.as_ref().unwrap()["n"]["N"].as_str().map(|n| format!("{{N:{n}}}")).unwrap_or_default())
            .collect();
        assert_eq!(counted, (1..=40).map(|n| format!("{{N:{n}}}")).collect::<Vec<_>>(), "records in commit order");
    }

    #[tokio::test]
    async fn expired_items_go_once_whichever_nodes_sweep() {
        let Some((a, b)) = nodes().await else { return };
        streamed_table(&a, "KEYS_ONLY").await;
        a.update_time_to_live(input(serde_json::json!({
            "TableName": "things", "TimeToLiveSpecification": {"Enabled": true, "AttributeName": "ttl"}
        })))
        .await
        .unwrap();
        for i in 0..30 {
            b.put_item(put(&format!(r#"{{"pk":{{"S":"k{i}"}},"ttl":{{"N":"1000"}}}}"#), None)).await.unwrap();
        }
        let (x, y) = tokio::join!(a.sweep_expired(1000), b.sweep_expired(1000));
        assert_eq!(x.unwrap() + y.unwrap(), 30);
        let arn = a.describe_table("things".into()).await.unwrap().table.latest_stream_arn.unwrap();
        let page = a.read_stream(&arn, ReadFrom::TrimHorizon, 1000).await.unwrap();
        assert_eq!(page.records.iter().filter(|r| r.event_name == "REMOVE").count(), 30);
    }
}

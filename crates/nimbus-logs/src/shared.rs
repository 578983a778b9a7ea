//! The log store of nodes that share one PostgreSQL database (`--store postgres://…`): a
//! group, its streams and their events are every node's, so DescribeLogStreams,
//! GetLogEvents and FilterLogEvents on one node see the lines an environment on another
//! wrote. Events go to a table partitioned by the day of their timestamp; retention deletes
//! a group's old events and drops a day's partition once nothing is left in it. Lambda's
//! lines are batched by the writer thread into one transaction per batch (a relaxed commit:
//! they were never acknowledged); PutLogEvents commits durably before it answers. Each node
//! keeps the groups' subscription and metric filters in memory (its own lines are matched
//! there) and reloads them when another node changes a group.
//!
//! The store's calls are blocking (as on disk): the API runs them off the async workers and
//! they wait on the runtime the store was opened in.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use nimbus_store::partitions::{self, TimePartitions};
use nimbus_store::pg::{self, PgDatabase, PgSchema};
use tokio_postgres::types::ToSql;

use crate::meta::GroupMeta;
use crate::metric_filter::{MetricFilter, MetricFilters, MAX_METRIC_FILTERS};
use crate::store::{now_ms, Cursor, FilterPage, GroupInfo, LogError, Position, StoredEvent, StreamInfo, StreamPage};
use crate::subscription::{Subscriptions, MAX_FILTERS};
use crate::{Command, FilterPattern, SubscriptionFilter};

/// The log tables in an account's schema: append migrations, never edit them.
const SCHEMA: PgSchema = PgSchema {
    name: "logs",
    migrations: &[
        // 1: the first release on PostgreSQL (2026-12).
        "
-- A group and what is set on it (retention, tags, filters: the on-disk store's
-- .group.json document); made by CreateLogGroup or by the first line of a function.
CREATE TABLE log_groups (name TEXT PRIMARY KEY, meta JSONB NOT NULL);
CREATE TRIGGER log_groups_changed AFTER INSERT OR UPDATE OR DELETE ON log_groups FOR EACH ROW EXECUTE FUNCTION notify_change('name');
-- A stream and what DescribeLogStreams tells of its events (kept as they are written).
CREATE TABLE log_streams (
    group_name TEXT NOT NULL,
    name TEXT NOT NULL,
    creation_time BIGINT NOT NULL,
    first_event BIGINT,
    last_event BIGINT,
    last_ingestion BIGINT,
    stored_bytes BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (group_name, name)
);
CREATE SEQUENCE log_event_seq;
-- Every event, in partitions of one UTC day of its timestamp (log_events_d<day number>).
CREATE TABLE log_events (
    group_name TEXT NOT NULL,
    stream TEXT NOT NULL,
    ts BIGINT NOT NULL,
    ingestion BIGINT NOT NULL,
    -- The order events were written in (GetLogEvents' order; FilterLogEvents' last key).
    seq BIGINT NOT NULL DEFAULT nextval('log_event_seq'),
    message TEXT NOT NULL
) PARTITION BY RANGE (ts);
CREATE INDEX log_events_by_stream ON log_events (group_name, stream, seq);
CREATE INDEX log_events_by_time ON log_events (group_name, ts, stream COLLATE \"C\", seq);
-- How far each node's spool segment (a local file of Lambda's lines) is in the events:
-- advanced in the transaction that writes them, read by a node restarting with leftovers.
CREATE TABLE log_spool (segment TEXT PRIMARY KEY, shipped BIGINT NOT NULL);
",
    ],
};

/// The table whose announcements say a group changed.
const TABLES: &[&str] = &["log_groups"];

const DAY_MS: i64 = crate::rules::DAY_MS;

/// How many rows FilterLogEvents reads from the database at a time.
const FILTER_FETCH: i32 = 512;

/// Lines (and bytes of them) the writer keeps in memory while the database is unreachable;
/// beyond either, the spool's segment is sealed with them in it (shipped once the database
/// is back, or at the next start) and memory lets go of them.
const MAX_PENDING_LINES: usize = 200_000;
const MAX_PENDING_BYTES: usize = 64 << 20;

/// A spool segment this long, all of it in the database, is deleted and a new one begun.
const SEGMENT_BYTES: u64 = 4 << 20;

/// How often the writer takes the lines sent: they are spooled at once (a line in the spool
/// survives a kill, as the on-disk store's lines do), so the pause is as short as on disk.
const SPOOL_PAUSE: std::time::Duration = std::time::Duration::from_millis(2);

/// How often spooled lines go to the database: a batch is a few round trips whatever its
/// size, so under load they are gathered for longer (lines reach the database this much
/// later; a read, which flushes first, does not wait for it).
const BATCH_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// How many lines of a leftover segment go in one transaction.
const RECOVER_CHUNK: usize = 5_000;

/// One of Lambda's lines as the spool keeps it (`m`, like the on-disk store's events).
#[derive(serde::Serialize, serde::Deserialize)]
struct SpoolLine<'a> {
    g: std::borrow::Cow<'a, str>,
    s: std::borrow::Cow<'a, str>,
    t: i64,
    m: std::borrow::Cow<'a, str>,
}

type Line = (Arc<str>, Arc<str>, i64, String);

/// The writer's spool: the lines of the current segment file (`<spool dir>/<uuid>.jsonl`),
/// written (to the OS, not synced: a killed server's lines survive, as on disk) before they
/// go to the database, so a node killed with lines in flight ships them at its next start.
/// `len` is always where the file's last whole line ends: a batch records it as shipped.
struct Spool {
    dir: std::path::PathBuf,
    segment: String,
    file: Option<std::io::BufWriter<std::fs::File>>,
    len: u64,
    /// The file could not be mended after a failed write: lines are no longer spooled.
    broken: bool,
}

impl Spool {
    fn new(dir: &std::path::Path) -> Spool {
        Spool { dir: dir.to_path_buf(), segment: uuid::Uuid::new_v4().simple().to_string(), file: None, len: 0, broken: false }
    }

    fn path(&self) -> std::path::PathBuf {
        self.dir.join(format!("{}.jsonl", self.segment))
    }

    /// Appends lines; whether they are in the file. A failed write is cut off the file
    /// again (the lines then live in memory only), so `len` stays where whole lines end.
    fn append(&mut self, lines: &[Line]) -> bool {
        use std::io::Write;
        if self.broken {
            return false;
        }
        let written = (|| -> std::io::Result<u64> {
            if self.file.is_none() {
                std::fs::create_dir_all(&self.dir)?;
                let f = std::fs::OpenOptions::new().create(true).append(true).open(self.path())?;
                self.file = Some(std::io::BufWriter::with_capacity(64 * 1024, f));
            }
            let f = self.file.as_mut().expect("just opened");
            let mut n = 0u64;
            let mut buf = Vec::with_capacity(256);
            for (g, s, t, m) in lines {
                buf.clear();
                let line = SpoolLine { g: (&**g).into(), s: (&**s).into(), t: *t, m: m.as_str().into() };
                serde_json::to_writer(&mut buf, &line).expect("a spool line serializes");
                buf.push(b'\n');
                f.write_all(&buf)?;
                n += buf.len() as u64;
            }
            f.flush()?;
            Ok(n)
        })();
        match written {
            Ok(n) => {
                self.len += n;
                true
            }
            Err(e) => {
                tracing::warn!("log spool {}: {e} (these lines are kept in memory only)", self.path().display());
                // What the buffer still holds is dropped, not written; the file is cut back.
                let mended = match self.file.take().map(std::io::BufWriter::into_parts) {
                    Some((file, _unwritten)) => file.set_len(self.len),
                    None => Ok(()),
                };
                if let Err(e) = mended {
                    tracing::warn!("log spool {}: {e}: no more lines are spooled", self.path().display());
                    self.broken = true;
                }
                false
            }
        }
    }

    /// Ends the segment and begins the next; returns the ended one's name and path (the
    /// shipper deletes it once what it holds is written).
    fn end(&mut self) -> (String, std::path::PathBuf) {
        self.file = None;
        let path = self.path();
        self.len = 0;
        let segment = std::mem::replace(&mut self.segment, uuid::Uuid::new_v4().simple().to_string());
        (segment, path)
    }
}

/// What the spooling thread hands the shipping thread, in order.
enum Ship {
    /// Lines to write, with where they end in their segment (`spooled`: all of them are in it).
    Batch { lines: Vec<Line>, bytes: usize, segment: String, end: u64, spooled: bool },
    /// Answered once what came before is written (or given up for now).
    Flush(std::sync::mpsc::SyncSender<()>),
    /// A segment ended: deleted once what came before is written.
    Ended(String, std::path::PathBuf),
    /// A segment sealed past the memory caps: its batches still queued are skipped, and what
    /// its file holds past its recorded offset is written from the file.
    Sealed(String, std::path::PathBuf),
}

pub(crate) struct Shared {
    db: PgDatabase,
    rt: tokio::runtime::Handle,
    subscriptions: Arc<Subscriptions>,
    metric_filters: Arc<MetricFilters>,
    /// Keeps reloads of the filters from undoing this node's own changes; `filters` is the
    /// lock both take to set them.
    mirror: pg::Mirror,
    filters: std::sync::Mutex<()>,
    /// The day partitions of `log_events`.
    days: TimePartitions,
}

fn db_error(e: impl std::fmt::Display) -> LogError {
    LogError::Io(e.to_string())
}

fn pg_error(e: tokio_postgres::Error) -> LogError {
    db_error(pg::backend(e))
}

fn meta_of(value: serde_json::Value) -> GroupMeta {
    serde_json::from_value(value).unwrap_or_default()
}

fn meta_json(meta: &GroupMeta) -> serde_json::Value {
    serde_json::to_value(meta).expect("group metadata serializes")
}

impl Shared {
    /// Opens (and migrates) the log tables of `account` on `url`, loads the groups' filters,
    /// and follows the other nodes' changes to them while the returned store lives.
    pub(crate) async fn open(
        url: &str,
        account: &str,
        application_name: &str,
        subscriptions: Arc<Subscriptions>,
        metric_filters: Arc<MetricFilters>,
    ) -> Result<Arc<Shared>, LogError> {
        let db = PgDatabase::open(url, account, application_name).await.map_err(db_error)?;
        db.migrate(&SCHEMA).await.map_err(db_error)?;
        let shared = Arc::new(Shared {
            db: db.clone(),
            rt: tokio::runtime::Handle::current(),
            subscriptions,
            metric_filters,
            mirror: Default::default(),
            filters: Default::default(),
            days: TimePartitions::new("log_events", 'd', DAY_MS),
        });
        shared.reload().await?;
        let now = now_ms();
        shared.ensure_partitions([now, now + DAY_MS]).await?;
        let what = format!("the log groups of {}", db.schema());
        let on = pg::reloader(Arc::downgrade(&shared), what, |s: Arc<Shared>| async move { s.reload().await });
        pg::watch_tables(Arc::downgrade(&shared), url.to_string(), db, TABLES, on);
        Ok(shared)
    }

    fn block_on<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        self.rt.block_on(f)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, LogError> {
        self.db.client().await.map_err(db_error)
    }

    /// Reads every group's filters again (another node changed a group).
    async fn reload(&self) -> Result<(), LogError> {
        let read = || async { self.client().await?.query("SELECT name, meta FROM log_groups", &[]).await.map_err(pg_error) };
        let apply = |rows: Vec<tokio_postgres::Row>, valid: &dyn Fn() -> bool| {
            let _filters = self.filters.lock().unwrap_or_else(|p| p.into_inner());
            if !valid() {
                return false;
            }
            let mut seen = HashSet::new();
            for row in rows {
                let name: String = row.get(0);
                let meta = meta_of(row.get(1));
                self.subscriptions.set(&name, &meta.subscription_filters);
                self.metric_filters.set(&name, &meta.metric_filters);
                seen.insert(name);
            }
            for gone in self.subscriptions.groups().into_iter().chain(self.metric_filters.groups()) {
                if !seen.contains(&gone) {
                    self.subscriptions.set(&gone, &[]);
                    self.metric_filters.set(&gone, &[]);
                }
            }
            true
        };
        self.mirror.reload(read, apply).await
    }

    /// Sets a group's filters here (after a change of this node's committed).
    fn set_filters(&self, group: &str, subscriptions: &[SubscriptionFilter], metric_filters: &[MetricFilter]) {
        let _filters = self.filters.lock().unwrap_or_else(|p| p.into_inner());
        self.subscriptions.set(group, subscriptions);
        self.metric_filters.set(group, metric_filters);
    }

    /// Makes the day partitions of `times` that are not known to exist.
    async fn ensure_partitions(&self, times: impl IntoIterator<Item = i64>) -> Result<(), LogError> {
        let missing = self.days.missing(times);
        if missing.is_empty() {
            return Ok(());
        }
        let client = self.client().await?;
        self.days.make(&client, missing).await.map_err(db_error)
    }

    /// After a failed write: a day's partition may have been dropped by another node's
    /// sweep, so each is made again (if missing) before the next write into it.
    fn forget_partitions(&self) {
        self.days.forget();
    }

    // ---- the writer thread ---------------------------------------------------------

    /// The writer of a shared store: this thread takes the lines sent every few
    /// milliseconds and spools them at once (so a killed node loses no more than the
    /// on-disk store would), and every [`BATCH_PAUSE`] hands what it spooled to a shipping
    /// thread that writes each batch in one transaction, retrying a refused one (past
    /// [`MAX_PENDING_LINES`] or [`MAX_PENDING_BYTES`] waiting, the segment is sealed with the
    /// lines and memory lets go of them: they are written from the file later).
    pub(crate) fn write_lines(self: Arc<Self>, spool_dir: std::path::PathBuf, mut rx: tokio::sync::mpsc::UnboundedReceiver<Command>) {
        let (ship, shipped) = std::sync::mpsc::channel::<Ship>();
        let waiting = Arc::new((std::sync::atomic::AtomicUsize::new(0), std::sync::atomic::AtomicUsize::new(0)));
        let sealed: Arc<std::sync::Mutex<HashSet<String>>> = Arc::default();
        let shipper = {
            let (me, waiting, sealed) = (self.clone(), waiting.clone(), sealed.clone());
            std::thread::Builder::new().name("nimbus-log-shipper".into()).spawn(move || me.ship_lines(shipped, &waiting, &sealed))
        };
        let shipper = match shipper {
            Ok(t) => t,
            Err(e) => {
                tracing::error!("the log writer cannot start its shipping thread: {e}");
                return;
            }
        };
        let mut spool = Spool::new(&spool_dir);
        let (mut batch, mut batch_bytes, mut spooled) = (Vec::new(), 0usize, true);
        let mut fresh: Vec<Line> = Vec::new();
        let mut waiters = Vec::new();
        let mut kept = Vec::new();
        let mut open = true;
        let mut handed_at = std::time::Instant::now();
        while open {
            if batch.is_empty() {
                match rx.blocking_recv() {
                    Some(cmd) => take(cmd, &mut fresh, &mut waiters, &mut kept),
                    None => break,
                }
            }
            loop {
                match rx.try_recv() {
                    Ok(cmd) => take(cmd, &mut fresh, &mut waiters, &mut kept),
                    Err(tokio::sync::mpsc::error::TryRecvError::Empty) => break,
                    Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
            }
            if !fresh.is_empty() {
                spooled &= spool.append(&fresh);
                batch_bytes += fresh.iter().map(|l| l.3.len()).sum::<usize>();
                batch.append(&mut fresh);
            }
            // Spooled (or the spool is broken: the lines are as kept as they can be).
            for w in kept.drain(..) {
                let _ = w.send(());
            }
            if !batch.is_empty() && (handed_at.elapsed() >= BATCH_PAUSE || !waiters.is_empty() || !open) {
                handed_at = std::time::Instant::now();
                waiting.0.fetch_add(batch.len(), std::sync::atomic::Ordering::SeqCst);
                waiting.1.fetch_add(batch_bytes, std::sync::atomic::Ordering::SeqCst);
                let lines = std::mem::take(&mut batch);
                let _ = ship.send(Ship::Batch { lines, bytes: batch_bytes, segment: spool.segment.clone(), end: spool.len, spooled });
                (batch_bytes, spooled) = (0, true);
                let over = waiting.0.load(std::sync::atomic::Ordering::SeqCst) > MAX_PENDING_LINES
                    || waiting.1.load(std::sync::atomic::Ordering::SeqCst) > MAX_PENDING_BYTES;
                if over && !spool.broken {
                    let (segment, path) = spool.end();
                    tracing::warn!("the log database is unreachable: lines wait in the spool ({})", path.display());
                    sealed.lock().unwrap_or_else(|p| p.into_inner()).insert(segment.clone());
                    let _ = ship.send(Ship::Sealed(segment, path));
                } else if spool.len >= SEGMENT_BYTES {
                    let (segment, path) = spool.end();
                    let _ = ship.send(Ship::Ended(segment, path));
                }
            }
            for w in waiters.drain(..) {
                let _ = ship.send(Ship::Flush(w));
            }
            std::thread::sleep(SPOOL_PAUSE);
        }
        // Stopping: the last segment goes once everything in it is written.
        if !spool.broken {
            let (segment, path) = spool.end();
            let _ = ship.send(Ship::Ended(segment, path));
        }
        drop(ship);
        let _ = shipper.join();
    }

    /// The shipping thread: writes the batches in order, each until it is written (or its
    /// segment was sealed), and deletes ended segments once they are written.
    fn ship_lines(
        &self,
        batches: std::sync::mpsc::Receiver<Ship>,
        waiting: &(std::sync::atomic::AtomicUsize, std::sync::atomic::AtomicUsize),
        sealed: &std::sync::Mutex<HashSet<String>>,
    ) {
        // Where the last batch written ends, in its segment.
        let mut last: (String, u64) = (String::new(), 0);
        let is_sealed = |segment: &str| sealed.lock().unwrap_or_else(|p| p.into_inner()).contains(segment);
        for ship in batches {
            match ship {
                Ship::Batch { lines, bytes, segment, end, spooled } => {
                    while !is_sealed(&segment) {
                        match self.block_on(self.append_batch(&lines, &segment, end)) {
                            Ok(()) => break,
                            // A commit whose answer was lost may have landed: not repeated.
                            Err(_) if spooled && (last.0 != segment || end > last.1) && self.block_on(self.landed(&segment, end)) => break,
                            Err(e) => {
                                tracing::warn!("writing {} log lines: {e} (trying again)", lines.len());
                                std::thread::sleep(std::time::Duration::from_secs(1));
                            }
                        }
                    }
                    last = (segment, end);
                    waiting.0.fetch_sub(lines.len(), std::sync::atomic::Ordering::SeqCst);
                    waiting.1.fetch_sub(bytes, std::sync::atomic::Ordering::SeqCst);
                }
                Ship::Flush(w) => {
                    let _ = w.send(());
                }
                Ship::Ended(segment, path) => {
                    if let Err(e) = std::fs::remove_file(&path) {
                        if e.kind() != std::io::ErrorKind::NotFound {
                            tracing::warn!("log spool {}: {e}", path.display());
                        }
                    }
                    self.block_on(self.forget_segment(&segment));
                }
                Ship::Sealed(segment, path) => {
                    while let Err(e) = self.block_on(self.recover_segment(&path)) {
                        tracing::warn!("log spool {}: {e} (trying again)", path.display());
                        std::thread::sleep(std::time::Duration::from_secs(1));
                    }
                    sealed.lock().unwrap_or_else(|p| p.into_inner()).remove(&segment);
                }
            }
        }
    }

    /// Whether the segment's row says everything spooled so far is written (asked after a
    /// failed commit whose lines are all in the spool, past what was written before).
    async fn landed(&self, segment: &str, end: u64) -> bool {
        let shipped = async {
            let row =
                self.client().await?.query_opt("SELECT shipped FROM log_spool WHERE segment = $1", &[&segment]).await.map_err(pg_error)?;
            Ok::<_, LogError>(row.map(|r| r.get::<_, i64>(0)))
        };
        matches!(shipped.await, Ok(Some(n)) if u64::try_from(n).is_ok_and(|n| n >= end))
    }

    async fn forget_segment(&self, segment: &str) {
        let forgot =
            async { self.client().await?.execute("DELETE FROM log_spool WHERE segment = $1", &[&segment]).await.map_err(pg_error) };
        if let Err(e) = forgot.await {
            tracing::debug!("forgetting log spool segment {segment}: {e}");
        }
    }

    /// Ships what the segments left in `dir` by an earlier run (killed, or cut off from the
    /// database) hold beyond what their rows say was written, then deletes them.
    pub(crate) async fn recover_spool(&self, dir: &std::path::Path) -> Result<(), LogError> {
        let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "jsonl") {
                self.recover_segment(&path).await?;
            }
        }
        Ok(())
    }

    /// Ships one segment's lines past its recorded offset (read a chunk at a time; a torn
    /// last line is left out), advancing the offset with each chunk, then deletes it.
    async fn recover_segment(&self, path: &std::path::Path) -> Result<(), LogError> {
        use std::io::{BufRead, Seek};
        let Some(segment) = path.file_stem().and_then(|n| n.to_str()).map(str::to_string) else { return Ok(()) };
        let shipped: i64 = self
            .client()
            .await?
            .query_opt("SELECT shipped FROM log_spool WHERE segment = $1", &[&segment])
            .await
            .map_err(pg_error)?
            .map_or(0, |r| r.get(0));
        let mut reader = std::io::BufReader::with_capacity(256 * 1024, std::fs::File::open(path)?);
        let mut at = reader.seek(std::io::SeekFrom::Start(u64::try_from(shipped).unwrap_or(0)))?;
        let (mut shipped_now, mut raw) = (0, Vec::new());
        loop {
            let mut lines = Vec::new();
            let mut end = at;
            while lines.len() < RECOVER_CHUNK {
                raw.clear();
                let n = reader.read_until(b'\n', &mut raw)?;
                if n == 0 || !raw.ends_with(b"\n") {
                    break; // the end, or a torn last line: the rest of it never came
                }
                end += n as u64;
                if let Ok(l) = serde_json::from_slice::<SpoolLine>(&raw) {
                    lines.push((Arc::from(&*l.g), Arc::from(&*l.s), l.t, l.m.into_owned()));
                }
            }
            if end == at {
                break;
            }
            self.append_batch(&lines, &segment, end).await?;
            shipped_now += lines.len();
            at = end;
        }
        if shipped_now > 0 {
            tracing::info!("log spool {}: {shipped_now} lines written from it", path.display());
        }
        std::fs::remove_file(path)?;
        self.forget_segment(&segment).await;
        Ok(())
    }

    /// Lambda's lines of one batch, in one relaxed transaction: groups and streams made as
    /// needed, the events, and the streams' figures.
    async fn append_batch(&self, lines: &[Line], segment: &str, shipped: u64) -> Result<(), LogError> {
        self.ensure_partitions(lines.iter().map(|l| l.2)).await?;
        self.insert_batch(lines, segment, shipped).await.inspect_err(|_| self.forget_partitions())
    }

    /// (`shipped`: where the lines end in the spool's `segment`, recorded with them.)
    async fn insert_batch(&self, lines: &[Line], segment: &str, shipped: u64) -> Result<(), LogError> {
        // The lines by stream, in order within each; streams in a fixed order (no two
        // batches lock them in opposite orders).
        let mut by_stream: BTreeMap<(&str, &str), StreamLines> = BTreeMap::new();
        for (g, s, t, m) in lines {
            let e = by_stream.entry((g, s)).or_default();
            e.0.push(*t);
            e.1.push(m);
        }
        let mut client = self.db.relaxed_client().await.map_err(db_error)?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let now = now_ms();
        let mut groups_done = HashSet::new();
        for ((group, stream), (times, messages)) in &by_stream {
            if groups_done.insert(*group) {
                lock_or_make_group(&tx, group, now).await?;
            }
            insert_events(&tx, group, stream, times, messages, now, true).await.map_err(pg_error)?;
        }
        let shipped = i64::try_from(shipped).unwrap_or(i64::MAX);
        tx.execute(
            "INSERT INTO log_spool (segment, shipped) VALUES ($1, $2) ON CONFLICT (segment) DO UPDATE SET shipped = $2",
            &[&segment, &shipped],
        )
        .await
        .map_err(pg_error)?;
        tx.commit().await.map_err(pg_error)
    }

    // ---- the API's calls ------------------------------------------------------------

    /// PutLogEvents: the events, committed durably, into an existing stream.
    pub(crate) fn put(&self, group: &str, stream: &str, events: &[(i64, String)]) -> Result<(), LogError> {
        self.block_on(async {
            let mut tries = 0;
            loop {
                self.ensure_partitions(events.iter().map(|e| e.0)).await?;
                match self.put_once(group, stream, events).await {
                    // A day made for these events was dropped, empty, by a sweep before they
                    // landed in it (the sweep's days are old; PutLogEvents takes events up to
                    // 14 days old): made again and retried.
                    Err(Put::Lost(_)) if tries < PUT_TRIES => tries += 1,
                    Err(Put::Lost(e)) => return Err(pg_error(e)),
                    Err(Put::Other(e)) => return Err(e),
                    Ok(()) => return Ok(()),
                }
            }
        })
    }

    async fn put_once(&self, group: &str, stream: &str, events: &[(i64, String)]) -> Result<(), Put> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let found = tx
            .query_opt("SELECT 1 FROM log_streams WHERE group_name = $1 AND name = $2 FOR UPDATE", &[&group, &stream])
            .await
            .map_err(pg_error)?;
        if found.is_none() {
            return Err(Put::Other(if group_exists(&tx, group).await? { LogError::StreamMissing } else { LogError::GroupMissing }));
        }
        if events.is_empty() {
            return Ok(());
        }
        let times: Vec<i64> = events.iter().map(|e| e.0).collect();
        let messages: Vec<&str> = events.iter().map(|e| e.1.as_str()).collect();
        insert_events(&tx, group, stream, &times, &messages, now_ms(), false).await.map_err(|e| {
            self.forget_partitions();
            if partitions::lost(&e) {
                Put::Lost(e)
            } else {
                Put::Other(pg_error(e))
            }
        })?;
        Ok(tx.commit().await.map_err(pg_error)?)
    }

    pub(crate) fn create_group(&self, group: &str, tags: BTreeMap<String, String>) -> Result<(), LogError> {
        let meta = GroupMeta { creation_time: now_ms(), tags, ..Default::default() };
        let made = self.block_on(async {
            self.client()
                .await?
                .execute("INSERT INTO log_groups (name, meta) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", &[&group, &meta_json(&meta)])
                .await
                .map_err(pg_error)
        })?;
        if made == 0 {
            return Err(LogError::GroupExists);
        }
        Ok(())
    }

    pub(crate) fn delete_group(&self, group: &str) -> Result<(), LogError> {
        let _change = self.mirror.change();
        self.block_on(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(pg_error)?;
            if tx.execute("DELETE FROM log_groups WHERE name = $1", &[&group]).await.map_err(pg_error)? == 0 {
                return Err(LogError::GroupMissing);
            }
            tx.execute("DELETE FROM log_streams WHERE group_name = $1", &[&group]).await.map_err(pg_error)?;
            tx.execute("DELETE FROM log_events WHERE group_name = $1", &[&group]).await.map_err(pg_error)?;
            tx.commit().await.map_err(pg_error)
        })?;
        self.set_filters(group, &[], &[]);
        Ok(())
    }

    pub(crate) fn create_stream(&self, group: &str, stream: &str) -> Result<(), LogError> {
        self.block_on(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(pg_error)?;
            let found = tx.query_opt("SELECT 1 FROM log_groups WHERE name = $1 FOR KEY SHARE", &[&group]).await.map_err(pg_error)?;
            if found.is_none() {
                return Err(LogError::GroupMissing);
            }
            let made = tx
                .execute(
                    "INSERT INTO log_streams (group_name, name, creation_time) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    &[&group, &stream, &now_ms()],
                )
                .await
                .map_err(pg_error)?;
            if made == 0 {
                return Err(LogError::StreamExists);
            }
            tx.commit().await.map_err(pg_error)
        })
    }

    pub(crate) fn delete_stream(&self, group: &str, stream: &str) -> Result<(), LogError> {
        self.block_on(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(pg_error)?;
            let gone =
                tx.execute("DELETE FROM log_streams WHERE group_name = $1 AND name = $2", &[&group, &stream]).await.map_err(pg_error)?;
            if gone == 0 {
                return Err(if group_exists(&tx, group).await? { LogError::StreamMissing } else { LogError::GroupMissing });
            }
            tx.execute("DELETE FROM log_events WHERE group_name = $1 AND stream = $2", &[&group, &stream]).await.map_err(pg_error)?;
            tx.commit().await.map_err(pg_error)
        })
    }

    /// Changes what is set on a group (`change` may refuse), then this node's filters.
    pub(crate) fn change_meta(&self, group: &str, change: impl FnOnce(&mut GroupMeta) -> Result<(), LogError>) -> Result<(), LogError> {
        let _change = self.mirror.change();
        let meta = self.block_on(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(pg_error)?;
            let row = tx
                .query_opt("SELECT meta FROM log_groups WHERE name = $1 FOR UPDATE", &[&group])
                .await
                .map_err(pg_error)?
                .ok_or(LogError::GroupMissing)?;
            let mut meta = meta_of(row.get(0));
            change(&mut meta)?;
            tx.execute("UPDATE log_groups SET meta = $2 WHERE name = $1", &[&group, &meta_json(&meta)]).await.map_err(pg_error)?;
            tx.commit().await.map_err(pg_error)?;
            Ok::<_, LogError>(meta)
        })?;
        self.set_filters(group, &meta.subscription_filters, &meta.metric_filters);
        Ok(())
    }

    pub(crate) fn put_subscription_filter(&self, group: &str, filter: SubscriptionFilter) -> Result<(), LogError> {
        self.change_meta(group, |g| put_named(&mut g.subscription_filters, filter, MAX_FILTERS, |f| &f.filter_name))
    }

    pub(crate) fn delete_subscription_filter(&self, group: &str, name: &str) -> Result<(), LogError> {
        self.change_meta(group, |g| delete_named(&mut g.subscription_filters, name, LogError::FilterMissing, |f| &f.filter_name))
    }

    pub(crate) fn put_metric_filter(&self, group: &str, filter: MetricFilter) -> Result<(), LogError> {
        self.change_meta(group, |g| put_named(&mut g.metric_filters, filter, MAX_METRIC_FILTERS, |f| &f.filter_name))
    }

    pub(crate) fn delete_metric_filter(&self, group: &str, name: &str) -> Result<(), LogError> {
        self.change_meta(group, |g| delete_named(&mut g.metric_filters, name, LogError::MetricFilterMissing, |f| &f.filter_name))
    }

    /// One group's metadata, or None if it does not exist.
    fn meta(&self, group: &str) -> Result<Option<GroupMeta>, LogError> {
        let row = self.block_on(async {
            self.client().await?.query_opt("SELECT meta FROM log_groups WHERE name = $1", &[&group]).await.map_err(pg_error)
        })?;
        Ok(row.map(|r| meta_of(r.get(0))))
    }

    pub(crate) fn tags(&self, group: &str) -> Result<Option<BTreeMap<String, String>>, LogError> {
        Ok(self.meta(group)?.map(|m| m.tags))
    }

    pub(crate) fn subscription_filters(&self, group: &str) -> Result<Option<Vec<SubscriptionFilter>>, LogError> {
        let Some(meta) = self.meta(group)? else { return Ok(None) };
        let mut filters = meta.subscription_filters;
        filters.sort_by(|a, b| a.filter_name.cmp(&b.filter_name));
        Ok(Some(filters))
    }

    pub(crate) fn metric_filters(&self, group: Option<&str>) -> Result<Option<Vec<(String, MetricFilter)>>, LogError> {
        let mut out: Vec<(String, MetricFilter)> = match group {
            Some(name) => {
                let Some(meta) = self.meta(name)? else { return Ok(None) };
                meta.metric_filters.into_iter().map(|f| (name.to_string(), f)).collect()
            }
            None => self
                .groups_where(Which::WithMetricFilters)?
                .into_iter()
                .flat_map(|(name, meta, _)| meta.metric_filters.into_iter().map(move |f| (name.clone(), f)))
                .collect(),
        };
        out.sort_by(|a, b| (&a.1.filter_name, &a.0).cmp(&(&b.1.filter_name, &b.0)));
        Ok(Some(out))
    }

    /// The groups `which` names, by name, with their metadata and stored bytes.
    fn groups_where(&self, which: Which<'_>) -> Result<Vec<(String, GroupMeta, i64)>, LogError> {
        let (condition, value) = match which {
            Which::Prefix(p) => ("starts_with(g.name, $1)", p),
            Which::Named(n) => ("g.name = $1", n),
            Which::WithMetricFilters => ("g.meta ? 'metricFilters' AND starts_with(g.name, $1)", ""),
        };
        let rows = self.block_on(async {
            self.client()
                .await?
                .query(
                    &format!(
                        "SELECT g.name, g.meta, (SELECT coalesce(sum(s.stored_bytes), 0)::BIGINT FROM log_streams s WHERE s.group_name = g.name)
                         FROM log_groups g WHERE {condition} ORDER BY g.name COLLATE \"C\""
                    ),
                    &[&value],
                )
                .await
                .map_err(pg_error)
        })?;
        Ok(rows.into_iter().map(|r| (r.get(0), meta_of(r.get(1)), r.get(2))).collect())
    }

    pub(crate) fn groups(&self, prefix: &str) -> Result<Vec<GroupInfo>, LogError> {
        Ok(self.groups_where(Which::Prefix(prefix))?.into_iter().map(|(name, meta, bytes)| group_info(name, &meta, bytes)).collect())
    }

    pub(crate) fn group(&self, group: &str) -> Result<Option<GroupInfo>, LogError> {
        Ok(self.groups_where(Which::Named(group))?.into_iter().next().map(|(name, meta, bytes)| group_info(name, &meta, bytes)))
    }

    pub(crate) fn streams(&self, group: &str) -> Result<Option<Vec<StreamInfo>>, LogError> {
        self.block_on(async {
            let client = self.client().await?;
            if client.query_opt("SELECT 1 FROM log_groups WHERE name = $1", &[&group]).await.map_err(pg_error)?.is_none() {
                return Ok(None);
            }
            let rows = client
                .query(
                    "SELECT name, creation_time, first_event, last_event, last_ingestion, stored_bytes FROM log_streams
                     WHERE group_name = $1 ORDER BY name COLLATE \"C\"",
                    &[&group],
                )
                .await
                .map_err(pg_error)?;
            Ok(Some(rows.iter().map(stream_info).collect()))
        })
    }

    /// GetLogEvents' page (see `LogStore::stream_page`), by offsets in the stream's order.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn stream_page(
        &self,
        group: &str,
        stream: &str,
        start: Option<i64>,
        end: Option<i64>,
        from: Cursor,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Option<StreamPage>, LogError> {
        let limit = limit.max(1);
        self.block_on(async {
            let client = self.client().await?;
            let exists = client
                .query_opt("SELECT 1 FROM log_streams WHERE group_name = $1 AND name = $2", &[&group, &stream])
                .await
                .map_err(pg_error)?;
            if exists.is_none() {
                return Ok(None);
            }
            let range = Range { group, stream, start, end };
            Ok(Some(match from {
                Cursor::Head | Cursor::Forward(_) => {
                    let n = if let Cursor::Forward(n) = from { n } else { 0 };
                    let mut events = range.read(&client, "ASC", n, limit).await?;
                    events.truncate(fitting(&events, max_bytes));
                    let lo = if events.is_empty() && n > 0 { n.min(range.count(&client).await?) } else { n };
                    StreamPage { hi: lo + events.len(), lo, events }
                }
                Cursor::Tail | Cursor::Backward(_) => {
                    let total = range.count(&client).await?;
                    let stop = if let Cursor::Backward(n) = from { n.min(total) } else { total };
                    // The page ending at `stop`, newest first, then cut to the bytes.
                    let newest_first = range.read(&client, "DESC", total - stop, limit).await?;
                    let keep = fitting(&newest_first, max_bytes);
                    let mut events: Vec<StoredEvent> = newest_first.into_iter().take(keep).collect();
                    events.reverse();
                    StreamPage { lo: stop - events.len(), hi: stop, events }
                }
            }))
        })
    }

    /// FilterLogEvents' page (see `LogStore::filter_page`): the group's events in range in
    /// [`Position`] order, read a few hundred at a time, until the page is full and the
    /// next matching event (where the next page starts) is found.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn filter_page(
        &self,
        group: &str,
        streams: Option<&[String]>,
        prefix: Option<&str>,
        start: Option<i64>,
        end: Option<i64>,
        pattern: &FilterPattern,
        after: Option<&Position>,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Option<FilterPage>, LogError> {
        let limit = limit.max(1);
        let streams: Option<Vec<String>> = streams.map(<[String]>::to_vec);
        let (after_t, after_s, after_l) = match after {
            Some(a) => (Some(a.timestamp), Some(a.stream.clone()), Some(i64::try_from(a.line).unwrap_or(i64::MAX))),
            None => (None, None, None),
        };
        self.block_on(async {
            let mut client = self.client().await?;
            let tx = client.build_transaction().read_only(true).start().await.map_err(pg_error)?;
            if !group_exists(&tx, group).await? {
                return Ok(None);
            }
            let query = tx
                .prepare(
                    "SELECT stream, ts, ingestion, seq, message FROM log_events
                     WHERE group_name = $1 AND ($2::TEXT[] IS NULL OR stream = ANY($2)) AND ($3::TEXT IS NULL OR starts_with(stream, $3))
                       AND ($4::BIGINT IS NULL OR ts >= $4) AND ($5::BIGINT IS NULL OR ts <= $5)
                       AND ($6::BIGINT IS NULL OR (ts, stream COLLATE \"C\", seq) > ($6, $7::TEXT COLLATE \"C\", $8))
                     ORDER BY ts, stream COLLATE \"C\", seq",
                )
                .await
                .map_err(pg_error)?;
            let params: [&(dyn ToSql + Sync); 8] = [&group, &streams, &prefix, &start, &end, &after_t, &after_s, &after_l];
            let portal = tx.bind(&query, &params).await.map_err(pg_error)?;
            let mut page = FilterPage::default();
            let mut bytes = 0;
            loop {
                let rows = tx.query_portal(&portal, FILTER_FETCH).await.map_err(pg_error)?;
                let done = rows.len() < FILTER_FETCH as usize;
                for r in rows {
                    let message: &str = r.get(4);
                    if !pattern.may_match_line(message) || !pattern.matches(message) {
                        continue;
                    }
                    let at = Position { timestamp: r.get(1), stream: r.get(0), line: u64::try_from(r.get::<_, i64>(3)).unwrap_or(0) };
                    let e = StoredEvent { timestamp: at.timestamp, ingestion_time: r.get(2), message: message.to_string() };
                    let size = crate::store::event_bytes(&e);
                    if page.events.len() == limit || (!page.events.is_empty() && bytes + size > max_bytes) {
                        page.next = Some(at);
                        return Ok(Some(page));
                    }
                    bytes += size;
                    page.events.push((at, e));
                }
                if done {
                    return Ok(Some(page));
                }
            }
        })
    }

    /// Removes the events older than their group's retention at `now`: a stream whose
    /// events were all older goes away, the others' figures are counted again; then the
    /// day partitions before the retained ones that hold nothing are dropped.
    pub(crate) fn sweep(&self, now: i64, only: Option<&str>) -> Result<(), LogError> {
        self.block_on(async {
            let groups = self.client().await?.query("SELECT name, meta FROM log_groups", &[]).await.map_err(pg_error)?;
            for row in groups {
                let name: String = row.get(0);
                if only.is_some_and(|o| o != name) {
                    continue;
                }
                let Some(days) = meta_of(row.get(1)).retention_in_days else { continue };
                let cutoff = now - i64::from(days) * DAY_MS;
                self.expire(&name, cutoff).await?;
            }
            if only.is_none() {
                self.drop_empty_partitions(now).await?;
            }
            self.ensure_partitions([now, now + DAY_MS]).await
        })
    }

    async fn expire(&self, group: &str, cutoff: i64) -> Result<(), LogError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let old = tx
            .query(
                "SELECT name, last_event FROM log_streams WHERE group_name = $1 AND first_event < $2
                 ORDER BY name COLLATE \"C\" FOR UPDATE",
                &[&group, &cutoff],
            )
            .await
            .map_err(pg_error)?;
        if old.is_empty() {
            return Ok(());
        }
        for row in old {
            let stream: String = row.get(0);
            let last: Option<i64> = row.get(1);
            tx.execute("DELETE FROM log_events WHERE group_name = $1 AND stream = $2 AND ts < $3", &[&group, &stream, &cutoff])
                .await
                .map_err(pg_error)?;
            if last.is_some_and(|t| t < cutoff) {
                tx.execute("DELETE FROM log_streams WHERE group_name = $1 AND name = $2", &[&group, &stream]).await.map_err(pg_error)?;
            } else {
                tx.execute(
                    "UPDATE log_streams s SET first_event = e.first, stored_bytes = e.bytes
                     FROM (SELECT min(ts) AS first, coalesce(sum(octet_length(message)), 0)::BIGINT AS bytes
                           FROM log_events WHERE group_name = $1 AND stream = $2) e
                     WHERE s.group_name = $1 AND s.name = $2",
                    &[&group, &stream],
                )
                .await
                .map_err(pg_error)?;
            }
        }
        tx.commit().await.map_err(pg_error)
    }

    /// Drops the day partitions that ended more than a day before `now` and hold nothing
    /// (no write lands in a partition being dropped: see [`TimePartitions::drop_ended`]).
    async fn drop_empty_partitions(&self, now: i64) -> Result<(), LogError> {
        let mut client = self.client().await?;
        for name in self.days.drop_ended(&mut client, now - DAY_MS, true).await.map_err(db_error)? {
            tracing::info!("log partition {name} dropped: nothing in it is retained");
        }
        Ok(())
    }
}

/// Which groups [`Shared::groups_where`] reads.
enum Which<'a> {
    Prefix(&'a str),
    Named(&'a str),
    WithMetricFilters,
}

/// One stream's lines of a batch: their times and messages, in order.
type StreamLines<'a> = (Vec<i64>, Vec<&'a str>);

/// Replaces the filter of `item`'s name in `list`, or adds it if there are fewer than `max`.
fn put_named<T>(list: &mut Vec<T>, item: T, max: usize, name: impl Fn(&T) -> &String) -> Result<(), LogError> {
    match list.iter().position(|f| name(f) == name(&item)) {
        Some(i) => list[i] = item,
        None if list.len() >= max => return Err(LogError::LimitExceeded),
        None => list.push(item),
    }
    Ok(())
}

/// Removes the filter named `wanted` from `list` (`missing` if there is none).
fn delete_named<T>(list: &mut Vec<T>, wanted: &str, missing: LogError, name: impl Fn(&T) -> &String) -> Result<(), LogError> {
    let before = list.len();
    list.retain(|f| name(f) != wanted);
    if list.len() == before {
        return Err(missing);
    }
    Ok(())
}

/// A stream's events within `[start, end)`, as GetLogEvents reads them.
struct Range<'a> {
    group: &'a str,
    stream: &'a str,
    start: Option<i64>,
    end: Option<i64>,
}

impl Range<'_> {
    const WHERE: &'static str =
        "FROM log_events WHERE group_name = $1 AND stream = $2 AND ($3::BIGINT IS NULL OR ts >= $3) AND ($4::BIGINT IS NULL OR ts < $4)";

    async fn count(&self, client: &tokio_postgres::Client) -> Result<usize, LogError> {
        let n: i64 = client
            .query_one(&format!("SELECT count(*) {}", Self::WHERE), &[&self.group, &self.stream, &self.start, &self.end])
            .await
            .map_err(pg_error)?
            .get(0);
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// At most `take` events after skipping `skip`, in written order (`ASC`) or newest first.
    async fn read(&self, client: &tokio_postgres::Client, order: &str, skip: usize, take: usize) -> Result<Vec<StoredEvent>, LogError> {
        let (skip, take) = (i64::try_from(skip).unwrap_or(i64::MAX), i64::try_from(take).unwrap_or(i64::MAX));
        let rows = client
            .query(
                &format!("SELECT ts, ingestion, message {} ORDER BY seq {order} OFFSET $5 LIMIT $6", Self::WHERE),
                &[&self.group, &self.stream, &self.start, &self.end, &skip, &take],
            )
            .await
            .map_err(pg_error)?;
        Ok(rows.iter().map(|r| StoredEvent { timestamp: r.get(0), ingestion_time: r.get(1), message: r.get(2) }).collect())
    }
}

/// How many of `events` (at least one) fit in `max_bytes`.
fn fitting(events: &[StoredEvent], max_bytes: usize) -> usize {
    let mut bytes = 0;
    events
        .iter()
        .position(|e| {
            bytes += crate::store::event_bytes(e);
            bytes > max_bytes
        })
        .map_or(events.len(), |i| i.max(1))
}

/// Takes one command for the writer: lines are kept, flushes wait for the batch; changes
/// (the on-disk writer's) never come to a shared store.
fn take(
    cmd: Command,
    pending: &mut Vec<Line>,
    waiters: &mut Vec<std::sync::mpsc::SyncSender<()>>,
    kept: &mut Vec<tokio::sync::oneshot::Sender<()>>,
) {
    match cmd {
        Command::Append { group, stream, timestamp, message } => pending.push((group, stream, timestamp, message)),
        Command::Flush(w) => waiters.push(w),
        Command::Kept(w) => kept.push(w),
        Command::Run(_) => tracing::error!("a change was sent to the shared log store's writer"),
    }
}

async fn group_exists(tx: &tokio_postgres::Transaction<'_>, group: &str) -> Result<bool, LogError> {
    Ok(tx.query_opt("SELECT 1 FROM log_groups WHERE name = $1", &[&group]).await.map_err(pg_error)?.is_some())
}

/// Makes a function's group if it is missing and holds it (a group deleted meanwhile, by
/// this or another node, is made again: its lines are never left without one).
async fn lock_or_make_group(tx: &tokio_postgres::Transaction<'_>, group: &str, now: i64) -> Result<(), LogError> {
    let meta = meta_json(&GroupMeta { creation_time: now, ..Default::default() });
    for _ in 0..3 {
        tx.execute("INSERT INTO log_groups (name, meta) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", &[&group, &meta])
            .await
            .map_err(pg_error)?;
        if tx.query_opt("SELECT 1 FROM log_groups WHERE name = $1 FOR KEY SHARE", &[&group]).await.map_err(pg_error)?.is_some() {
            return Ok(());
        }
    }
    Err(LogError::Io(format!("log group {group} was deleted while lines were written to it")))
}

/// A stream's events (times and messages, in order), made with the stream (when `make`)
/// and counted in its figures.
async fn insert_events(
    tx: &tokio_postgres::Transaction<'_>,
    group: &str,
    stream: &str,
    times: &[i64],
    messages: &[&str],
    ingestion: i64,
    make: bool,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "INSERT INTO log_events (group_name, stream, ts, ingestion, message)
         SELECT $1, $2, t, $3, m FROM unnest($4::BIGINT[], $5::TEXT[]) WITH ORDINALITY AS u(t, m, i) ORDER BY i",
        &[&group, &stream, &ingestion, &times, &messages],
    )
    .await?;
    let first = times.iter().min().copied();
    let last = times.iter().max().copied();
    let bytes: i64 = messages.iter().map(|m| m.len() as i64).sum();
    let sql = if make {
        "INSERT INTO log_streams (group_name, name, creation_time, first_event, last_event, last_ingestion, stored_bytes)
         VALUES ($1, $2, $3, $4, $5, $3, $6)
         ON CONFLICT (group_name, name) DO UPDATE SET first_event = LEAST(log_streams.first_event, EXCLUDED.first_event),
           last_event = GREATEST(log_streams.last_event, EXCLUDED.last_event), last_ingestion = EXCLUDED.last_ingestion,
           stored_bytes = log_streams.stored_bytes + EXCLUDED.stored_bytes"
    } else {
        "UPDATE log_streams SET first_event = LEAST(first_event, $4), last_event = GREATEST(last_event, $5),
           last_ingestion = $3, stored_bytes = stored_bytes + $6
         WHERE group_name = $1 AND name = $2"
    };
    tx.execute(sql, &[&group, &stream, &ingestion, &first, &last, &bytes]).await?;
    Ok(())
}

/// How often PutLogEvents is retried after its events' day partition was dropped under it.
const PUT_TRIES: u32 = 3;

/// Why one try of PutLogEvents failed.
enum Put {
    /// An event's day partition was not there.
    Lost(tokio_postgres::Error),
    Other(LogError),
}

impl From<LogError> for Put {
    fn from(e: LogError) -> Put {
        Put::Other(e)
    }
}

fn group_info(name: String, meta: &GroupMeta, stored_bytes: i64) -> GroupInfo {
    GroupInfo {
        name,
        creation_time: meta.creation_time,
        stored_bytes: u64::try_from(stored_bytes).unwrap_or(0),
        retention_in_days: meta.retention_in_days,
        metric_filter_count: meta.metric_filters.len(),
    }
}

fn stream_info(r: &tokio_postgres::Row) -> StreamInfo {
    StreamInfo {
        name: r.get(0),
        creation_time: r.get(1),
        first_event: r.get(2),
        last_event: r.get(3),
        last_ingestion: r.get(4),
        stored_bytes: u64::try_from(r.get::<_, i64>(5)).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests;

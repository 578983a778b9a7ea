//! A SQLite database owned by one writer thread that commits in groups: requests queue up as
//! jobs; the thread runs whatever is waiting in one transaction (each job in its own
//! savepoint, so one failure does not undo its neighbours) and answers each only after the
//! commit. A group holding a durable job commits with `synchronous=FULL` (an acknowledged
//! write survives `kill -9` and power loss); groups of non-durable jobs skip the fsync.
//! Every SQLite store of Nimbus writes this way (nimbus.db's `SqliteStore`, and the queue,
//! topic, event and API Gateway stores), and reads too: a read is a job like any other, so no
//! SQLite call ever runs on an async worker thread.

use std::panic::AssertUnwindSafe;
use std::path::Path;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

type Done = Box<dyn FnOnce(Result<(), String>) + Send>;
type Work = Box<dyn FnOnce(&Connection) -> (bool, Done) + Send>;

struct Job {
    durable: bool,
    work: Work,
}

/// Largest number of jobs committed together.
const MAX_BATCH: usize = 512;

/// Handle to the writer thread of one database.
pub struct GroupCommit {
    jobs: mpsc::UnboundedSender<Job>,
    name: &'static str,
}

impl GroupCommit {
    /// Opens (creating if needed) the database at `path` through [`crate::db::open`]
    /// (migrated to `schema`, commits durable) and starts the writer thread.
    pub fn open(path: &Path, schema: &'static crate::db::Schema) -> Result<GroupCommit, String> {
        GroupCommit::start(crate::db::open(path, schema, crate::db::Durability::Full)?, schema.name)
    }

    /// An in-memory database with `schema` behind a writer thread (tests).
    pub fn open_in_memory(schema: &'static crate::db::Schema) -> Result<GroupCommit, String> {
        GroupCommit::start(crate::db::open_in_memory(schema)?, schema.name)
    }

    /// Like [`GroupCommit::open`] (or an in-memory database when `path` is None), with a
    /// start-up step run on the migrated connection before the writer thread takes it (work
    /// that needs more than SQL, such as sealing records a migration left in plain text).
    pub fn open_prepared<E>(
        path: Option<&Path>,
        schema: &'static crate::db::Schema,
        prepare: impl FnOnce(&mut Connection) -> Result<(), E>,
        internal: fn(String) -> E,
    ) -> Result<GroupCommit, E> {
        let mut conn = match path {
            Some(path) => crate::db::open(path, schema, crate::db::Durability::Full),
            None => crate::db::open_in_memory(schema),
        }
        .map_err(internal)?;
        prepare(&mut conn)?;
        GroupCommit::start(conn, schema.name).map_err(internal)
    }

    fn start(conn: Connection, name: &'static str) -> Result<GroupCommit, String> {
        // Room for the writer's own statements next to a store's hot ones (the default
        // keeps 16).
        conn.set_prepared_statement_cache_capacity(64);
        let (tx, rx) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name(format!("nimbus-{name}-db"))
            .spawn(move || writer(conn, rx, name))
            .map_err(|e| format!("cannot start the {name} database thread: {e}"))?;
        Ok(GroupCommit { jobs: tx, name })
    }

    /// Runs `f` inside the next group's transaction and returns its result once that
    /// transaction is committed; `internal` turns a storage failure into the caller's error.
    pub async fn run<T: Send + 'static, E: Send + 'static>(
        &self,
        durable: bool,
        f: impl FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        internal: fn(String) -> E,
    ) -> Result<T, E> {
        let (tx, rx) = oneshot::channel();
        let work: Work = Box::new(move |conn| {
            let result = f(conn);
            let ok = result.is_ok();
            let done: Done = Box::new(move |commit| {
                let _ = tx.send(match commit {
                    Ok(()) => result,
                    Err(e) => Err(internal(e)),
                });
            });
            (ok, done)
        });
        self.jobs.send(Job { durable, work }).map_err(|_| internal(format!("the {} database thread has stopped", self.name)))?;
        rx.await.map_err(|_| internal(format!("the {} database job failed", self.name)))?
    }

    /// Like [`GroupCommit::run`] without waiting for the answer (bookkeeping whose failure
    /// is only logged).
    pub fn spawn<E: std::fmt::Display>(&self, f: impl FnOnce(&Connection) -> Result<(), E> + Send + 'static) {
        let name = self.name;
        let work: Work = Box::new(move |conn| {
            let result = f(conn);
            if let Err(e) = &result {
                tracing::warn!("{name} database: {e}");
            }
            (result.is_ok(), Box::new(|_| {}))
        });
        let _ = self.jobs.send(Job { durable: false, work });
    }
}

fn writer(conn: Connection, mut rx: mpsc::UnboundedReceiver<Job>, name: &str) {
    let mut full = true;
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let durable = batch.iter().any(|j| j.durable);
        if durable != full {
            let mode = if durable { "FULL" } else { "NORMAL" };
            if let Err(e) = conn.pragma_update(None, "synchronous", mode) {
                tracing::error!("{name} database: cannot set synchronous={mode}: {e}");
            } else {
                full = durable;
            }
        }
        if let Err(e) = control(&conn, "BEGIN IMMEDIATE") {
            tracing::error!("{name} database: cannot begin: {e}");
            drop(batch); // every waiter gets an internal error
            continue;
        }
        let mut dones = Vec::with_capacity(batch.len());
        for job in batch {
            if let Err(e) = control(&conn, "SAVEPOINT job") {
                tracing::error!("{name} database: savepoint: {e}");
                continue;
            }
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| (job.work)(&conn)));
            let keep = match outcome {
                Ok((ok, done)) => {
                    dones.push(done);
                    ok
                }
                Err(_) => {
                    tracing::error!("{name} database job panicked");
                    false
                }
            };
            let end: &[&str] = if keep { &["RELEASE job"] } else { &["ROLLBACK TO job", "RELEASE job"] };
            for sql in end {
                if let Err(e) = control(&conn, sql) {
                    tracing::error!("{name} database: {sql}: {e}");
                }
            }
        }
        let commit = control(&conn, "COMMIT").map_err(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            tracing::error!("{name} database: commit failed: {e}");
            format!("commit failed: {e}")
        });
        for done in dones {
            done(commit.clone());
        }
    }
}

/// Runs one of the writer's own statements (BEGIN, SAVEPOINT, RELEASE, COMMIT) from the
/// connection's statement cache: they run several times per group, and parsing them anew
/// each time was a tenth of the writer's time under a stream of small jobs.
fn control(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.raw_execute().map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    static SCHEMA: crate::db::Schema = crate::db::Schema { name: "t", migrations: &["CREATE TABLE t (k TEXT PRIMARY KEY);"] };

    fn insert(k: &'static str) -> impl FnOnce(&Connection) -> Result<usize, String> + Send + 'static {
        move |c| c.execute("INSERT INTO t (k) VALUES (?1)", [k]).map_err(|e| e.to_string())
    }

    async fn keys(db: &GroupCommit) -> Vec<String> {
        db.run(
            false,
            |c| {
                let mut st = c.prepare("SELECT k FROM t ORDER BY k").map_err(|e| e.to_string())?;
                let rows = st.query_map([], |r| r.get(0)).map_err(|e| e.to_string())?;
                rows.collect::<Result<Vec<String>, _>>().map_err(|e| e.to_string())
            },
            |e| e,
        )
        .await
        .expect("read")
    }

    #[tokio::test]
    async fn a_failed_job_is_undone_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = GroupCommit::open(&dir.path().join("t.db"), &SCHEMA).expect("open");
        // Queued together, so they most likely share a group; either way each stands alone.
        let fail = |c: &Connection| -> Result<(), String> {
            c.execute("INSERT INTO t (k) VALUES ('undone')", []).map_err(|e| e.to_string())?;
            Err("refused".into())
        };
        let (a, b, c, d) = tokio::join!(
            db.run(true, insert("a"), |e| e),
            db.run(true, fail, |e| e),
            db.run(false, insert("a"), |e| e),
            db.run(false, insert("b"), |e| e)
        );
        assert_eq!(a, Ok(1));
        assert_eq!(b, Err("refused".to_string()));
        assert!(c.expect_err("duplicate key").contains("UNIQUE"), "a job's SQL error is its own");
        assert_eq!(d, Ok(1));
        assert_eq!(keys(&db).await, ["a", "b"]);
    }

    #[tokio::test]
    async fn durable_groups_commit_with_full_sync() {
        let db = GroupCommit::open_in_memory(&SCHEMA).expect("open");
        let sync = |c: &Connection| c.pragma_query_value(None, "synchronous", |r| r.get::<_, i64>(0)).map_err(|e| e.to_string());
        // One job at a time: each is its own group. 2 is FULL, 1 is NORMAL.
        for (durable, want) in [(false, 1), (true, 2), (true, 2), (false, 1)] {
            assert_eq!(db.run(durable, sync, |e| e).await, Ok(want), "durable {durable}");
        }
    }

    #[tokio::test]
    async fn spawned_jobs_run_before_later_ones() {
        let db = GroupCommit::open_in_memory(&SCHEMA).expect("open");
        db.spawn(|c| c.execute("INSERT INTO t (k) VALUES ('spawned')", []).map(|_| ()));
        assert_eq!(keys(&db).await, ["spawned"]);
    }
}

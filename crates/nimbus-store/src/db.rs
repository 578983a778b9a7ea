//! The one way Nimbus opens an SQLite database: the pragmas every store wants, set in one
//! place, and the store's schema brought up to date by its ordered migrations
//! (`rusqlite_migration`, which records how far a database got in `PRAGMA user_version`).
//!
//! Only [`crate::group_commit`] opens databases, so every store has one connection, owned by
//! its writer thread. A store declares its [`Schema`] once; adding a column or a table is
//! appending one migration. Migration 1 of every store is the schema its first release created (with
//! `IF NOT EXISTS`, so databases written before migrations existed, at `user_version` 0,
//! pass through it unchanged). A database from a newer Nimbus (more migrations than this
//! build knows) is refused rather than guessed at.

use std::path::Path;

use rusqlite::Connection;
use rusqlite_migration::{Migrations, M};

/// How long a commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous=NORMAL`: in WAL mode, a commit survives a crash of the process but may
    /// be lost with the machine. For records that can be rebuilt or re-sent.
    Normal,
    /// `synchronous=FULL`: every commit is on disk before it is acknowledged.
    Full,
}

/// A store's database: its name (for messages) and its migrations, in order.
#[derive(Debug)]
pub struct Schema {
    pub name: &'static str,
    pub migrations: &'static [&'static str],
}

impl Schema {
    fn migrations(&self) -> Migrations<'static> {
        Migrations::new(self.migrations.iter().map(|sql| M::up(sql)).collect())
    }
}

/// Opens (creating if needed) the database at `path` in WAL mode with `durability`, and
/// migrates it to `schema`'s latest version.
pub(crate) fn open(path: &Path, schema: &Schema, durability: Durability) -> Result<Connection, String> {
    let setup = || -> Result<Connection, String> {
        let mut conn = Connection::open(path).map_err(|e| e.to_string())?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(|e| e.to_string())?;
        let sync = match durability {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        };
        conn.pragma_update(None, "synchronous", sync).map_err(|e| e.to_string())?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(|e| e.to_string())?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(|e| e.to_string())?;
        migrate(&mut conn, schema)?;
        Ok(conn)
    };
    setup().map_err(|e| format!("opening the {} database ({}): {e}", schema.name, path.display()))
}

/// An in-memory database with `schema` (tests).
pub(crate) fn open_in_memory(schema: &Schema) -> Result<Connection, String> {
    let mut conn = Connection::open_in_memory().map_err(|e| e.to_string())?;
    migrate(&mut conn, schema)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection, schema: &Schema) -> Result<(), String> {
    schema.migrations().to_latest(conn).map_err(|e| format!("migrating the {} database: {e}", schema.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &[&str] = &["CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v TEXT NOT NULL);"];
    const V2: &[&str] =
        &["CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v TEXT NOT NULL);", "ALTER TABLE t ADD COLUMN n INTEGER NOT NULL DEFAULT 0;"];

    fn version(conn: &Connection) -> i64 {
        conn.pragma_query_value(None, "user_version", |r| r.get(0)).expect("user_version")
    }

    #[test]
    fn migrations_run_once_in_order_and_keep_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.db");
        let cases: &[(&[&str], Result<i64, &str>)] = &[
            // A database written before migrations existed: the first migration is a no-op.
            (V1, Ok(1)),
            (V1, Ok(1)),
            (V2, Ok(2)),
            (V2, Ok(2)),
            // Written by a newer build than this one: refused.
            (V1, Err("migrating the x database")),
        ];
        {
            let conn = Connection::open(&path).expect("open");
            conn.execute_batch(V1[0]).expect("pre-migration schema");
            conn.execute("INSERT INTO t (k, v) VALUES ('a', 'kept')", []).expect("insert");
        }
        for (i, (migrations, want)) in cases.iter().enumerate() {
            let schema = Schema { name: "x", migrations };
            match (open(&path, &schema, Durability::Full), want) {
                (Ok(conn), Ok(v)) => {
                    assert_eq!(version(&conn), *v, "case {i}");
                    let kept: String = conn.query_row("SELECT v FROM t WHERE k = 'a'", [], |r| r.get(0)).expect("row");
                    assert_eq!(kept, "kept", "case {i}");
                }
                (Err(e), Err(prefix)) => assert!(e.contains(prefix), "case {i}: {e}"),
                (got, want) => panic!("case {i}: got {:?}, want {want:?}", got.map(|c| version(&c))),
            }
        }
    }

    #[test]
    fn pragmas_are_set() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = open(&dir.path().join("p.db"), &Schema { name: "p", migrations: V1 }, Durability::Normal).expect("open");
        let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).expect("journal_mode");
        let sync: i64 = conn.pragma_query_value(None, "synchronous", |r| r.get(0)).expect("synchronous");
        assert_eq!((mode.as_str(), sync), ("wal", 1));
    }
}

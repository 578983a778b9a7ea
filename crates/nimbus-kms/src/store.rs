//! KMS's records, apart from the domain: keys (their material sealed under the server's
//! master key) and aliases, each a JSON document, in `<data>/kms.db` behind
//! `nimbus_store::group_commit`, or, for nodes that share a PostgreSQL database, in the
//! account's schema there (`store/postgres.rs`), so a key made on one node encrypts and
//! decrypts on every node. The surface is typed: everything at open, [`KmsStore::commit`] a
//! list of [`Change`]s in one transaction, and [`KmsStore::watch`] for other nodes' changes;
//! no `rusqlite` or `tokio_postgres` type leaves this module.

use std::path::Path;
use std::sync::Weak;

use nimbus_store::group_commit::GroupCommit;
use rusqlite::{params, Connection};

use crate::{AliasInfo, KeyInfo, KmsError};

mod postgres;

/// `<data>/kms.db`: append migrations, never edit them.
const SCHEMA: nimbus_store::db::Schema = nimbus_store::db::Schema {
    name: "kms",
    migrations: &[
        // 1: the first release (2026-12). Each record is a JSON document.
        "
CREATE TABLE IF NOT EXISTS keys (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS aliases (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
",
    ],
};

/// One change; a list of them commits in one transaction.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    /// A key, new or changed: its `revision` is the one it gets (one more than the stored
    /// one, which a shared store requires to be unchanged; 1 for a new key).
    PutKey(KeyInfo),
    /// A new alias (a shared store refuses it if another node made that name meanwhile).
    PutAlias(AliasInfo),
    /// An alias that exists (a shared store refuses it if another node deleted it meanwhile).
    DeleteAlias(String),
}

/// Everything stored.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub(crate) keys: Vec<KeyInfo>,
    pub(crate) aliases: Vec<AliasInfo>,
}

/// What a commit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Committed {
    Done,
    /// Nothing: another node changed what the changes were decided on (a key's revision, an
    /// alias's existence). The caller reloads and decides again.
    Stale,
}

/// KMS's records: one node's `kms.db`, or the tables nodes share in PostgreSQL.
pub(crate) enum KmsStore {
    /// `kms.db`'s writer thread.
    Embedded(GroupCommit),
    /// The account's schema in PostgreSQL.
    Shared(postgres::SharedTables),
}

fn sql(e: rusqlite::Error) -> KmsError {
    KmsError::Internal(format!("kms.db: {e}"))
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("a KMS record serializes")
}

fn parse<T: serde::de::DeserializeOwned>(doc: &str, what: &str) -> Result<T, KmsError> {
    serde_json::from_str(doc).map_err(|e| KmsError::Internal(format!("{what}: {e}")))
}

/// Every document of `table`.
fn documents(conn: &Connection, table: &str) -> Result<Vec<String>, KmsError> {
    let mut stmt = conn.prepare(&format!("SELECT doc FROM {table}")).map_err(sql)?;
    let docs = stmt.query_map([], |r| r.get(0)).map_err(sql)?;
    docs.collect::<rusqlite::Result<_>>().map_err(sql)
}

impl KmsStore {
    /// Opens (creating) `kms.db` at `path`, or an in-memory one when None (tests), and reads
    /// everything in it.
    pub(crate) fn open(path: Option<&Path>) -> Result<(KmsStore, Snapshot), KmsError> {
        let mut snapshot = Snapshot::default();
        let load = |conn: &mut Connection| -> Result<(), KmsError> {
            for doc in documents(conn, "keys")? {
                snapshot.keys.push(parse(&doc, "kms.db keys")?);
            }
            for doc in documents(conn, "aliases")? {
                snapshot.aliases.push(parse(&doc, "kms.db aliases")?);
            }
            Ok(())
        };
        let db = GroupCommit::open_prepared(path, &SCHEMA, load, KmsError::Internal)?;
        Ok((KmsStore::Embedded(db), snapshot))
    }

    /// Opens (creating and migrating) `account`'s KMS tables in the PostgreSQL database at
    /// `url`, which several nodes share: checks that `master` is the key their material is
    /// sealed under (every node must have the same). `node` names this node's connections
    /// (`application_name`), which the change feed's announcements quote.
    pub(crate) async fn open_shared(url: &str, account: &str, node: &str, master: &nimbus_store::MasterKey) -> Result<KmsStore, KmsError> {
        Ok(KmsStore::Shared(postgres::SharedTables::open(url, account, node, master).await?))
    }

    /// Whether other nodes write these records too.
    pub(crate) fn is_shared(&self) -> bool {
        matches!(self, KmsStore::Shared(_))
    }

    /// Everything stored (`kms.db` has it all in memory already: only a shared store is read
    /// again).
    pub(crate) async fn load(&self) -> Result<Snapshot, KmsError> {
        match self {
            KmsStore::Embedded(db) => {
                db.run(
                    false,
                    |conn| {
                        let keys = documents(conn, "keys")?.iter().map(|d| parse(d, "kms.db keys")).collect::<Result<_, _>>()?;
                        let aliases = documents(conn, "aliases")?.iter().map(|d| parse(d, "kms.db aliases")).collect::<Result<_, _>>()?;
                        Ok(Snapshot { keys, aliases })
                    },
                    KmsError::Internal,
                )
                .await
            }
            KmsStore::Shared(tables) => tables.load().await,
        }
    }

    /// Commits `changes` in one transaction (durably), unless they are stale (only a shared
    /// store, which other nodes write, can find them so).
    pub(crate) async fn commit(&self, changes: Vec<Change>) -> Result<Committed, KmsError> {
        match self {
            KmsStore::Embedded(db) => {
                db.run(
                    true,
                    move |conn| {
                        for change in &changes {
                            match change {
                                Change::PutKey(k) => {
                                    conn.execute("INSERT OR REPLACE INTO keys (id, doc) VALUES (?1, ?2)", params![k.id, json(k)])
                                }
                                Change::PutAlias(a) => {
                                    conn.execute("INSERT OR REPLACE INTO aliases (name, doc) VALUES (?1, ?2)", params![a.name, json(a)])
                                }
                                Change::DeleteAlias(n) => conn.execute("DELETE FROM aliases WHERE name = ?1", params![n]),
                            }
                            .map_err(sql)?;
                        }
                        Ok(Committed::Done)
                    },
                    KmsError::Internal,
                )
                .await
            }
            KmsStore::Shared(tables) => tables.commit(&changes).await,
        }
    }

    /// Calls `on` whenever another node may have changed the records, while `owner` lives
    /// (see `nimbus_store::pg::watch_tables`). Never for `kms.db`, which has no other writer.
    pub(crate) fn watch<T: Send + Sync + 'static>(&self, owner: Weak<T>, on: impl Fn() + Send + Sync + 'static) {
        if let KmsStore::Shared(tables) = self {
            tables.watch(owner, on);
        }
    }

    /// Every stored document's text, as the database holds it (tests look for material).
    #[cfg(test)]
    pub(crate) async fn raw_documents(&self) -> Vec<String> {
        match self {
            KmsStore::Embedded(db) => db
                .run(
                    false,
                    |conn| {
                        let mut out = documents(conn, "keys")?;
                        out.extend(documents(conn, "aliases")?);
                        Ok(out)
                    },
                    KmsError::Internal,
                )
                .await
                .expect("kms.db reads"),
            KmsStore::Shared(tables) => tables.raw_documents().await,
        }
    }
}

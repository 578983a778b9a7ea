//! KMS's tables in PostgreSQL, for nodes that share one database (`--store postgres://…`):
//! `kms.db`'s tables in the account's schema (named `kms_…` there, since every shared store
//! of the account has its tables in that schema), holding the same documents with the same
//! sealed material, and the master key's check value (`kms_sealing`), so a node started
//! with another master key is refused at open instead of failing every key. Every change is
//! announced at commit (`nimbus_store::pg::NOTIFY_CHANGE`), so the other nodes reload what
//! they mirror. Nodes decide changes on their mirror, which may be a moment behind: a key's
//! row carries a revision its change must find unchanged, and an alias must not (yet, or
//! still) exist, or the commit is [`Committed::Stale`] and the node decides again on what
//! is stored (a key disabled on one node is never enabled again by another's stale write).

use std::sync::Weak;

use nimbus_store::pg::{self, PgDatabase, PgSchema};
use nimbus_store::MasterKey;
use tokio_postgres::IsolationLevel;

use super::{json, parse, Change, Committed, Snapshot};
use crate::{KeyInfo, KmsError};

/// KMS's tables in an account's schema: append migrations, never edit them.
pub(super) const SCHEMA: PgSchema = PgSchema {
    name: "kms",
    migrations: &[
        // 1: the first release on PostgreSQL (2026-12): `kms.db`'s tables at its migration 1,
        // a key's revision, the master key's check value, and every change announced at
        // commit.
        "
CREATE TABLE kms_keys (
    id TEXT PRIMARY KEY,
    -- One more with every change: a change decided on an older one is refused.
    revision BIGINT NOT NULL,
    doc TEXT NOT NULL
);
CREATE TABLE kms_aliases (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
-- The check value of the master key the key material is sealed under.
CREATE TABLE kms_sealing (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    key_check BYTEA NOT NULL
);
CREATE TRIGGER kms_keys_changed AFTER INSERT OR UPDATE OR DELETE ON kms_keys FOR EACH ROW EXECUTE FUNCTION notify_change('id');
CREATE TRIGGER kms_aliases_changed AFTER INSERT OR UPDATE OR DELETE ON kms_aliases FOR EACH ROW EXECUTE FUNCTION notify_change('name');
",
    ],
};

/// The tables whose announcements say the records changed.
const TABLES: [&str; 2] = ["kms_keys", "kms_aliases"];

/// An account's KMS tables and the pool that reaches them.
pub(crate) struct SharedTables {
    db: PgDatabase,
    /// For the change feed's own connection (holds the password: never shown).
    url: String,
}

fn backend(e: tokio_postgres::Error) -> KmsError {
    store(pg::backend(e))
}

fn store(e: nimbus_store::StoreError) -> KmsError {
    KmsError::Internal(format!("KMS's tables: {e}"))
}

impl SharedTables {
    /// Opens and migrates the tables, and checks (or, the first time, records) the master
    /// key's check value.
    pub(super) async fn open(url: &str, account: &str, node: &str, master: &MasterKey) -> Result<SharedTables, KmsError> {
        let db = PgDatabase::open(url, account, node).await.map_err(store)?;
        db.migrate(&SCHEMA).await.map_err(store)?;
        db.check_master_key("kms_sealing", master).await.map_err(|e| match e {
            nimbus_store::StoreError::Sealing(e) => KmsError::Internal(format!("the KMS keys in {}: {e}", db.shown())),
            other => store(other),
        })?;
        Ok(SharedTables { db, url: url.to_string() })
    }

    /// Everything, read in one snapshot of the database (an alias never without its key).
    pub(super) async fn load(&self) -> Result<Snapshot, KmsError> {
        let mut client = self.db.client().await.map_err(store)?;
        let tx =
            client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start().await.map_err(backend)?;
        let mut keys = Vec::new();
        for row in tx.query("SELECT revision, doc FROM kms_keys ORDER BY id", &[]).await.map_err(backend)? {
            let mut key: KeyInfo = parse(row.get(1), "KMS's tables: kms_keys")?;
            key.revision = row.get(0);
            keys.push(key);
        }
        let mut aliases = Vec::new();
        for row in tx.query("SELECT doc FROM kms_aliases ORDER BY name", &[]).await.map_err(backend)? {
            aliases.push(parse(row.get(0), "KMS's tables: kms_aliases")?);
        }
        tx.commit().await.map_err(backend)?;
        Ok(Snapshot { keys, aliases })
    }

    /// Commits `changes` in one transaction, or nothing if one of them is stale.
    pub(super) async fn commit(&self, changes: &[Change]) -> Result<Committed, KmsError> {
        let mut client = self.db.client().await.map_err(store)?;
        let tx = client.transaction().await.map_err(backend)?;
        for change in changes {
            let written = match change {
                Change::PutKey(k) if k.revision <= 1 => {
                    tx.execute(
                        "INSERT INTO kms_keys (id, revision, doc) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
                        &[&k.id, &k.revision, &json(k)],
                    )
                    .await
                }
                Change::PutKey(k) => {
                    tx.execute(
                        "UPDATE kms_keys SET revision = $2, doc = $3 WHERE id = $1 AND revision = $4",
                        &[&k.id, &k.revision, &json(k), &(k.revision - 1)],
                    )
                    .await
                }
                Change::PutAlias(a) => {
                    tx.execute("INSERT INTO kms_aliases (name, doc) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", &[&a.name, &json(a)])
                        .await
                }
                Change::DeleteAlias(name) => tx.execute("DELETE FROM kms_aliases WHERE name = $1", &[name]).await,
            }
            .map_err(backend)?;
            if written != 1 {
                // Dropped uncommitted: rolled back.
                return Ok(Committed::Stale);
            }
        }
        tx.commit().await.map_err(backend)?;
        Ok(Committed::Done)
    }

    /// Follows the other nodes' changes (see [`super::KmsStore::watch`]).
    pub(super) fn watch<T: Send + Sync + 'static>(&self, owner: Weak<T>, on: impl Fn() + Send + Sync + 'static) {
        pg::watch_tables(owner, self.url.clone(), self.db.clone(), &TABLES, on);
    }

    #[cfg(test)]
    pub(super) async fn raw_documents(&self) -> Vec<String> {
        let client = self.db.client().await.expect("a connection");
        let mut out = Vec::new();
        for table in TABLES {
            let rows = client.query(&format!("SELECT doc FROM {table}"), &[]).await.expect("KMS's tables read");
            out.extend(rows.iter().map(|r| r.get::<_, String>(0)));
        }
        out
    }
}

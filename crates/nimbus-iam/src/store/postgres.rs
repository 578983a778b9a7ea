//! IAM's tables in PostgreSQL, for nodes that share one database (`--store postgres://…`):
//! `iam.db`'s tables in the account's schema (named `iam_…` there, since every shared store
//! of the account has its tables in that schema), holding the same documents with the same
//! sealed secrets; `INSERT … ON CONFLICT … DO UPDATE` where `iam.db` replaces a row. Every
//! change to them is announced at commit (`nimbus_store::pg::NOTIFY_CHANGE`), so the other
//! nodes reload what they mirror.

use std::sync::Weak;

use nimbus_store::pg::{self, PgDatabase, PgSchema};
use tokio_postgres::IsolationLevel;

use super::{forgotten_before, json, parse, Change, Sealer, Snapshot};
use crate::IamError;

/// IAM's tables in an account's schema: append migrations, never edit them.
pub(super) const SCHEMA: PgSchema = PgSchema {
    name: "iam",
    migrations: &[
        // 1: the first release on PostgreSQL (2026-12): `iam.db`'s tables at its migration 3,
        // and every change announced at commit (the keys say whose record changed).
        "
CREATE TABLE iam_users (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE iam_roles (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE iam_policies (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE iam_access_keys (id TEXT PRIMARY KEY, user_name TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE iam_sessions (
    id TEXT PRIMARY KEY,
    principal TEXT NOT NULL,
    -- Epoch milliseconds.
    expires BIGINT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX iam_sessions_by_expiry ON iam_sessions (expires);
CREATE INDEX iam_sessions_by_principal ON iam_sessions (principal);
-- The check value of the master key the secrets are sealed under.
CREATE TABLE iam_sealing (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    key_check BYTEA NOT NULL
);
CREATE TRIGGER iam_users_changed AFTER INSERT OR UPDATE OR DELETE ON iam_users FOR EACH ROW EXECUTE FUNCTION notify_change('name');
CREATE TRIGGER iam_roles_changed AFTER INSERT OR UPDATE OR DELETE ON iam_roles FOR EACH ROW EXECUTE FUNCTION notify_change('name');
CREATE TRIGGER iam_policies_changed AFTER INSERT OR UPDATE OR DELETE ON iam_policies FOR EACH ROW EXECUTE FUNCTION notify_change('name');
CREATE TRIGGER iam_access_keys_changed AFTER INSERT OR UPDATE OR DELETE ON iam_access_keys FOR EACH ROW EXECUTE FUNCTION notify_change('user_name');
CREATE TRIGGER iam_sessions_changed AFTER INSERT OR UPDATE OR DELETE ON iam_sessions FOR EACH ROW EXECUTE FUNCTION notify_change('principal');
",
    ],
};

/// The tables whose announcements say the records changed.
const TABLES: [&str; 5] = ["iam_users", "iam_roles", "iam_policies", "iam_access_keys", "iam_sessions"];

/// Forgets sessions expired long enough ago. Rows another node is deleting meanwhile are
/// skipped, not waited for: nodes pruning at once never wait for, nor deadlock on, each other.
const PRUNE_SESSIONS: &str =
    "DELETE FROM iam_sessions WHERE id IN (SELECT id FROM iam_sessions WHERE expires <= $1 FOR UPDATE SKIP LOCKED)";

/// An account's IAM tables and the pool that reaches them.
pub(super) struct SharedTables {
    db: PgDatabase,
    /// For the change feed's own connection (holds the password: never shown).
    url: String,
}

fn backend(e: tokio_postgres::Error) -> IamError {
    store(pg::backend(e))
}

fn store(e: nimbus_store::StoreError) -> IamError {
    IamError::Internal(format!("IAM's tables: {e}"))
}

impl SharedTables {
    /// Opens and migrates the tables, checks (or, the first time, records) the master key's
    /// check value, and forgets expired sessions.
    pub(super) async fn open(url: &str, account: &str, node: &str, sealer: &Sealer) -> Result<SharedTables, IamError> {
        let db = PgDatabase::open(url, account, node).await.map_err(store)?;
        db.migrate(&SCHEMA).await.map_err(store)?;
        db.check_master_key("iam_sealing", &sealer.master).await.map_err(|e| match e {
            nimbus_store::StoreError::Sealing(e) => IamError::Internal(format!("the IAM records in {}: {e}", db.shown())),
            other => store(other),
        })?;
        let client = db.client().await.map_err(store)?;
        client.execute(PRUNE_SESSIONS, &[&forgotten_before()]).await.map_err(backend)?;
        drop(client);
        Ok(SharedTables { db, url: url.to_string() })
    }

    /// Everything, read in one snapshot of the database (a key never without its user).
    pub(super) async fn load(&self, sealer: &Sealer) -> Result<Snapshot, IamError> {
        let mut client = self.db.client().await.map_err(store)?;
        let tx =
            client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start().await.map_err(backend)?;
        let snapshot = Snapshot {
            users: records(&tx, "iam_users", "SELECT doc FROM iam_users ORDER BY name").await?,
            roles: records(&tx, "iam_roles", "SELECT doc FROM iam_roles ORDER BY name").await?,
            policies: records(&tx, "iam_policies", "SELECT doc FROM iam_policies ORDER BY name").await?,
            keys: documents(&tx, "SELECT doc FROM iam_access_keys ORDER BY id", &[])
                .await?
                .iter()
                .map(|d| sealer.key(d))
                .collect::<Result<_, _>>()?,
            sessions: documents(&tx, "SELECT doc FROM iam_sessions WHERE expires > $1 ORDER BY expires", &[&forgotten_before()])
                .await?
                .iter()
                .map(|d| sealer.session(d))
                .collect::<Result<_, _>>()?,
        };
        tx.commit().await.map_err(backend)?;
        Ok(snapshot)
    }

    /// Commits `changes` in one transaction.
    pub(super) async fn commit(&self, sealer: &Sealer, changes: &[Change]) -> Result<(), IamError> {
        let mut client = self.db.client().await.map_err(store)?;
        let tx = client.transaction().await.map_err(backend)?;
        for change in changes {
            match change {
                Change::PutUser(u) => {
                    tx.execute(
                        "INSERT INTO iam_users (name, doc) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET doc = EXCLUDED.doc",
                        &[&u.name, &json(u)?],
                    )
                    .await
                }
                Change::DeleteUser(n) => tx.execute("DELETE FROM iam_users WHERE name = $1", &[n]).await,
                Change::PutRole(r) => {
                    tx.execute(
                        "INSERT INTO iam_roles (name, doc) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET doc = EXCLUDED.doc",
                        &[&r.name, &json(r)?],
                    )
                    .await
                }
                Change::DeleteRole(n) => tx.execute("DELETE FROM iam_roles WHERE name = $1", &[n]).await,
                Change::PutPolicy(p) => {
                    tx.execute(
                        "INSERT INTO iam_policies (name, doc) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET doc = EXCLUDED.doc",
                        &[&p.name, &json(p)?],
                    )
                    .await
                }
                Change::DeletePolicy(n) => tx.execute("DELETE FROM iam_policies WHERE name = $1", &[n]).await,
                Change::PutKey(k) => {
                    tx.execute(
                        "INSERT INTO iam_access_keys (id, user_name, doc) VALUES ($1, $2, $3)
                         ON CONFLICT (id) DO UPDATE SET user_name = EXCLUDED.user_name, doc = EXCLUDED.doc",
                        &[&k.id, &k.user, &sealer.key_doc(k)?],
                    )
                    .await
                }
                Change::DeleteKey(id) => tx.execute("DELETE FROM iam_access_keys WHERE id = $1", &[id]).await,
                Change::PutSession(k) => {
                    let (doc, expires) = sealer.session_doc(k)?;
                    tx.execute(PRUNE_SESSIONS, &[&forgotten_before()]).await.map_err(backend)?;
                    tx.execute(
                        "INSERT INTO iam_sessions (id, principal, expires, doc) VALUES ($1, $2, $3, $4)
                         ON CONFLICT (id) DO UPDATE SET principal = EXCLUDED.principal, expires = EXCLUDED.expires, doc = EXCLUDED.doc",
                        &[&k.id, &k.principal.arn, &expires, &doc],
                    )
                    .await
                }
                Change::DeleteSessionsOf(arn) => tx.execute("DELETE FROM iam_sessions WHERE principal = $1", &[arn]).await,
            }
            .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }

    /// Follows the other nodes' changes (see [`super::IamStore::watch`]).
    pub(super) fn watch<T: Send + Sync + 'static>(&self, owner: Weak<T>, on: impl Fn() + Send + Sync + 'static) {
        pg::watch_tables(owner, self.url.clone(), self.db.clone(), &TABLES, on);
    }

    #[cfg(test)]
    pub(super) async fn raw_documents(&self) -> Vec<String> {
        let client = self.db.client().await.expect("a connection");
        let mut out = Vec::new();
        for table in TABLES {
            let rows = client.query(&format!("SELECT doc FROM {table}"), &[]).await.expect("IAM's tables read");
            out.extend(rows.iter().map(|r| r.get::<_, String>(0)));
        }
        out
    }
}

/// The text in the first column of a query's rows.
async fn documents(
    tx: &tokio_postgres::Transaction<'_>,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<String>, IamError> {
    Ok(tx.query(sql, params).await.map_err(backend)?.iter().map(|r| r.get(0)).collect())
}

/// The records of `table`, as `sql` lists their documents.
async fn records<T: serde::de::DeserializeOwned>(tx: &tokio_postgres::Transaction<'_>, table: &str, sql: &str) -> Result<Vec<T>, IamError> {
    documents(tx, sql, &[])
        .await?
        .into_iter()
        .map(|d| parse(d).map_err(|e| IamError::Internal(format!("IAM's tables: {table}: {e}"))))
        .collect()
}

//! The API Gateway table in PostgreSQL, for nodes that share one database (`--store
//! postgres://…`): `gateway.db`'s one table in the account's schema (named `gateway_records`
//! there, since every shared store of the account has its tables in that schema), holding
//! the same documents; `INSERT … ON CONFLICT … DO UPDATE` where `gateway.db` replaces a row.
//! Every change to it is announced at commit (`nimbus_store::pg::NOTIFY_CHANGE`, keyed by
//! the API), so the other nodes reload what they serve.

use std::sync::Weak;

use nimbus_store::pg::{self, PgDatabase, PgSchema};

use super::{Change, Records};
use crate::error::GatewayError;

/// The API Gateway table in an account's schema: append migrations, never edit them.
pub(super) const SCHEMA: PgSchema = PgSchema {
    name: "gateway",
    migrations: &[
        // 1: the first release on PostgreSQL (2026-12): `gateway.db`'s table at its migration
        // 1, every change to it announced at commit (the key says whose API changed).
        "
CREATE TABLE gateway_records (
    api TEXT NOT NULL,
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (api, kind, id)
);
CREATE TRIGGER gateway_records_changed AFTER INSERT OR UPDATE OR DELETE ON gateway_records FOR EACH ROW EXECUTE FUNCTION notify_change('api');
",
    ],
};

/// The tables whose announcements say the records changed.
const TABLES: [&str; 1] = ["gateway_records"];

/// An account's API Gateway table and the pool that reaches it.
pub(super) struct SharedTables {
    db: PgDatabase,
    /// For the change feed's own connection (holds the password: never shown).
    url: String,
}

fn backend(e: tokio_postgres::Error) -> GatewayError {
    store(pg::backend(e))
}

fn store(e: nimbus_store::StoreError) -> GatewayError {
    GatewayError::Internal(format!("the API Gateway table: {e}"))
}

impl SharedTables {
    /// Opens and migrates the table.
    pub(super) async fn open(url: &str, account: &str, node: &str) -> Result<SharedTables, GatewayError> {
        let db = PgDatabase::open(url, account, node).await.map_err(store)?;
        db.migrate(&SCHEMA).await.map_err(store)?;
        Ok(SharedTables { db, url: url.to_string() })
    }

    /// Every record, read by one statement (one snapshot of the database).
    pub(super) async fn load(&self) -> Result<Records, GatewayError> {
        let client = self.db.client().await.map_err(store)?;
        let rows = client.query("SELECT api, kind, doc FROM gateway_records ORDER BY api, kind, id", &[]).await.map_err(backend)?;
        Ok(Records::from_rows(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2)))))
    }

    /// Commits `changes` in one transaction.
    pub(super) async fn commit(&self, changes: &[Change]) -> Result<(), GatewayError> {
        let mut client = self.db.client().await.map_err(store)?;
        let tx = client.transaction().await.map_err(backend)?;
        for change in changes {
            match change {
                Change::Put { api, kind, id, doc } => {
                    tx.execute(
                        "INSERT INTO gateway_records (api, kind, id, doc) VALUES ($1, $2, $3, $4)
                         ON CONFLICT (api, kind, id) DO UPDATE SET doc = EXCLUDED.doc",
                        &[api, &kind.as_str(), id, doc],
                    )
                    .await
                }
                Change::Delete { api, kind, id } => {
                    tx.execute("DELETE FROM gateway_records WHERE api = $1 AND kind = $2 AND id = $3", &[api, &kind.as_str(), id]).await
                }
                Change::DeleteApi(api) => tx.execute("DELETE FROM gateway_records WHERE api = $1", &[api]).await,
            }
            .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }

    /// Follows the other nodes' changes (see [`super::GatewayStore::watch`]).
    pub(super) fn watch<T: Send + Sync + 'static>(&self, owner: Weak<T>, on: impl Fn() + Send + Sync + 'static) {
        pg::watch_tables(owner, self.url.clone(), self.db.clone(), &TABLES, on);
    }
}

//! Durable HTTP APIs: [`GatewayStore`], the service's whole view of its storage: every record
//! at once ([`GatewayStore::load`], read at one point in time) and a list of [`Changes`]
//! committed in one transaction ([`GatewayStore::commit`]), and, over a store several nodes
//! share, [`GatewayStore::watch`] for the other nodes' changes. Records are JSON documents
//! keyed by (API, kind, id): API, route, integration, stage, deployment. Deleting an API
//! deletes every record under it. Two backends, and no `rusqlite` or `tokio_postgres` type
//! leaves this module: `gateway.db` (one file, WAL, behind its group-commit writer thread;
//! every commit is fsync'd before it is acknowledged), or the account's schema in PostgreSQL
//! for nodes started with `--store postgres://…` (`store/postgres.rs`).

use std::path::Path;
use std::sync::Weak;

use nimbus_store::group_commit::GroupCommit;
use rusqlite::{params, Connection};
use serde::{de::DeserializeOwned, Serialize};

use crate::error::GatewayError;

/// `gateway.db`.
const SCHEMA: nimbus_store::db::Schema = nimbus_store::db::Schema {
    name: "gateway",
    migrations: &[
        // 1: the schema of the first release.
        "
CREATE TABLE IF NOT EXISTS records (
    api TEXT NOT NULL,
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (api, kind, id)
);
",
    ],
};
/// The kinds of record, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Api,
    Route,
    Integration,
    Stage,
    Deployment,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Api => "api",
            Kind::Route => "route",
            Kind::Integration => "integration",
            Kind::Stage => "stage",
            Kind::Deployment => "deployment",
        }
    }

    /// A stored kind; None for one this release does not know (skipped when loading).
    fn parse(s: &str) -> Option<Kind> {
        [Kind::Api, Kind::Route, Kind::Integration, Kind::Stage, Kind::Deployment].into_iter().find(|k| k.as_str() == s)
    }
}

/// A change to what is stored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Change {
    /// Creates or replaces a record (its JSON document).
    Put {
        api: String,
        kind: Kind,
        id: String,
        doc: String,
    },
    Delete {
        api: String,
        kind: Kind,
        id: String,
    },
    /// An API and every record under it.
    DeleteApi(String),
}

/// The changes of one write, in order; committed together or not at all.
#[derive(Debug, Default)]
pub(crate) struct Changes(pub(crate) Vec<Change>);

impl Changes {
    pub fn put<T: Serialize>(&mut self, api: &str, kind: Kind, id: &str, record: &T) -> Result<(), GatewayError> {
        let doc = serde_json::to_string(record).map_err(|e| GatewayError::Internal(format!("encoding a record: {e}")))?;
        self.0.push(Change::Put { api: api.to_string(), kind, id: id.to_string(), doc });
        Ok(())
    }

    pub fn delete(&mut self, api: &str, kind: Kind, id: &str) {
        self.0.push(Change::Delete { api: api.to_string(), kind, id: id.to_string() });
    }

    pub fn delete_api(&mut self, api: &str) {
        self.0.push(Change::DeleteApi(api.to_string()));
    }
}

/// Every record stored, read at one point in time: (api, kind, document) in key order.
pub(crate) struct Records(Vec<(String, Kind, String)>);

impl Records {
    /// Rows as read, of kinds this release knows.
    fn from_rows(rows: impl IntoIterator<Item = (String, String, String)>) -> Records {
        Records(rows.into_iter().filter_map(|(api, kind, doc)| Some((api, Kind::parse(&kind)?, doc))).collect())
    }

    /// The records of one kind, as (api id, record), in key order.
    pub fn of<T: DeserializeOwned>(&self, kind: Kind) -> Result<Vec<(String, T)>, GatewayError> {
        self.0
            .iter()
            .filter(|(_, k, _)| *k == kind)
            .map(|(api, _, doc)| {
                let value =
                    serde_json::from_str(doc).map_err(|e| GatewayError::Internal(format!("decoding a stored {}: {e}", kind.as_str())))?;
                Ok((api.clone(), value))
            })
            .collect()
    }
}

/// The API Gateway service's storage: one node's `gateway.db`, or the table nodes share in
/// PostgreSQL.
pub(crate) struct GatewayStore {
    backend: Backend,
}

enum Backend {
    /// `gateway.db`'s writer thread.
    Embedded(GroupCommit),
    /// The account's schema in PostgreSQL.
    Shared(postgres::SharedTables),
}

mod postgres;

impl GatewayStore {
    /// Opens (creating if needed) `gateway.db` and starts its writer thread.
    pub fn open(path: &Path) -> Result<GatewayStore, GatewayError> {
        Ok(GatewayStore { backend: Backend::Embedded(GroupCommit::open(path, &SCHEMA).map_err(GatewayError::Internal)?) })
    }

    /// Opens (creating and migrating) `account`'s API Gateway table in the PostgreSQL
    /// database at `url`, which several nodes share. `node` names this node's connections
    /// (`application_name`), which the change feed's announcements quote: unique to this
    /// node and store.
    pub async fn open_shared(url: &str, account: &str, node: &str) -> Result<GatewayStore, GatewayError> {
        Ok(GatewayStore { backend: Backend::Shared(postgres::SharedTables::open(url, account, node).await?) })
    }

    /// Whether other nodes write these records too.
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Shared(_))
    }

    /// Calls `on` whenever another node may have changed the records, while `owner` lives:
    /// after each change another node commits, after the change feed was cut and is back,
    /// and once when the feed first listens (for what changed between the caller's
    /// [`GatewayStore::load`] and then). Never for `gateway.db`, which has no other writer.
    pub fn watch<T: Send + Sync + 'static>(&self, owner: Weak<T>, on: impl Fn() + Send + Sync + 'static) {
        if let Backend::Shared(tables) = &self.backend {
            tables.watch(owner, on);
        }
    }

    /// Every record, read at one point in time (a route never without its API).
    pub async fn load(&self) -> Result<Records, GatewayError> {
        match &self.backend {
            Backend::Embedded(db) => db.run(false, load, GatewayError::Internal).await,
            Backend::Shared(tables) => tables.load().await,
        }
    }

    /// Commits `changes` in one transaction, durably before this returns.
    pub async fn commit(&self, changes: Changes) -> Result<(), GatewayError> {
        if changes.0.is_empty() {
            return Ok(());
        }
        match &self.backend {
            Backend::Embedded(db) => {
                db.run(true, move |conn| changes.0.iter().try_for_each(|c| apply(conn, c)), GatewayError::Internal).await
            }
            Backend::Shared(tables) => tables.commit(&changes.0).await,
        }
    }
}

fn load(conn: &Connection) -> Result<Records, GatewayError> {
    let mut st = conn.prepare("SELECT api, kind, doc FROM records ORDER BY api, kind, id")?;
    let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))?;
    Ok(Records::from_rows(rows.collect::<rusqlite::Result<Vec<_>>>()?))
}
fn apply(conn: &Connection, change: &Change) -> Result<(), GatewayError> {
    match change {
        Change::Put { api, kind, id, doc } => {
            conn.execute(
                "INSERT OR REPLACE INTO records (api, kind, id, doc) VALUES (?1, ?2, ?3, ?4)",
                params![api, kind.as_str(), id, doc],
            )?;
        }
        Change::Delete { api, kind, id } => {
            conn.execute("DELETE FROM records WHERE api = ?1 AND kind = ?2 AND id = ?3", params![api, kind.as_str(), id])?;
        }
        Change::DeleteApi(api) => {
            conn.execute("DELETE FROM records WHERE api = ?1", [api])?;
        }
    }
    Ok(())
}

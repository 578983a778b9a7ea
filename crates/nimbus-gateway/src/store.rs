//! Durable HTTP APIs: [`GatewayStore`], the service's whole view of its storage: every record
//! of a kind at start ([`GatewayStore::load`]) and a list of [`Changes`] committed in one
//! transaction ([`GatewayStore::commit`]); another backend (PostgreSQL) implements these two
//! calls. Records are JSON documents keyed by (API, kind, id): API, route, integration, stage,
//! deployment. Deleting an API deletes every record under it. The SQLite backend is one file
//! (`gateway.db`, WAL) behind its group-commit writer thread; every commit is fsync'd before
//! it is acknowledged.

use std::path::Path;

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

/// The API Gateway service's storage.
pub(crate) struct GatewayStore {
    db: GroupCommit,
}

impl GatewayStore {
    /// Opens (creating if needed) `gateway.db` and starts its writer thread.
    pub fn open(path: &Path) -> Result<GatewayStore, GatewayError> {
        Ok(GatewayStore { db: GroupCommit::open(path, &SCHEMA).map_err(GatewayError::Internal)? })
    }

    /// Every record of one kind, as (api id, record), in key order.
    pub async fn load<T: DeserializeOwned + Send + 'static>(&self, kind: Kind) -> Result<Vec<(String, T)>, GatewayError> {
        self.db.run(false, move |conn| load(conn, kind), GatewayError::Internal).await
    }

    /// Commits `changes` in one transaction, fsync'd before this returns.
    pub async fn commit(&self, changes: Changes) -> Result<(), GatewayError> {
        if changes.0.is_empty() {
            return Ok(());
        }
        self.db.run(true, move |conn| changes.0.iter().try_for_each(|c| apply(conn, c)), GatewayError::Internal).await
    }
}

fn load<T: DeserializeOwned>(conn: &Connection, kind: Kind) -> Result<Vec<(String, T)>, GatewayError> {
    let mut st = conn.prepare("SELECT api, doc FROM records WHERE kind = ?1 ORDER BY api, id")?;
    let rows = st.query_map([kind.as_str()], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (api, doc) = row?;
        let value = serde_json::from_str(&doc).map_err(|e| GatewayError::Internal(format!("decoding a stored {}: {e}", kind.as_str())))?;
        out.push((api, value));
    }
    Ok(out)
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

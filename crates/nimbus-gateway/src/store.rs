//! Durable HTTP APIs: one SQLite file (`gateway.db`, WAL, `synchronous=FULL`), one row per
//! record (API, route, integration, stage, deployment) holding its JSON next to the keys it is
//! found by. Deleting an API deletes every row under it.

use std::path::Path;

use rusqlite::{params, Connection, Transaction};
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

pub fn open(path: &Path) -> Result<Connection, GatewayError> {
    nimbus_store::db::open(path, &SCHEMA, nimbus_store::db::Durability::Full).map_err(GatewayError::Internal)
}

/// Every record of one kind, as (api id, record), in key order.
pub fn load<T: DeserializeOwned>(conn: &Connection, kind: Kind) -> Result<Vec<(String, T)>, GatewayError> {
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

pub fn put<T: Serialize>(tx: &Transaction<'_>, api: &str, kind: Kind, id: &str, record: &T) -> Result<(), GatewayError> {
    let doc = serde_json::to_string(record).map_err(|e| GatewayError::Internal(format!("encoding a record: {e}")))?;
    tx.execute("INSERT OR REPLACE INTO records (api, kind, id, doc) VALUES (?1, ?2, ?3, ?4)", params![api, kind.as_str(), id, doc])?;
    Ok(())
}

pub fn delete(tx: &Transaction<'_>, api: &str, kind: Kind, id: &str) -> Result<(), GatewayError> {
    tx.execute("DELETE FROM records WHERE api = ?1 AND kind = ?2 AND id = ?3", params![api, kind.as_str(), id])?;
    Ok(())
}

pub fn delete_api(tx: &Transaction<'_>, api: &str) -> Result<(), GatewayError> {
    tx.execute("DELETE FROM records WHERE api = ?1", [api])?;
    Ok(())
}

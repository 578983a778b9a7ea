//! `iam.db`: users, roles, customer managed policies and access keys, each a typed record
//! stored as a JSON document in its own table, behind `nimbus_store::group_commit` (one
//! writer thread, every job committed with `synchronous=FULL`). The surface is typed:
//! [`IamStore::load`] everything at start, [`IamStore::commit`] a list of [`Change`]s in one
//! transaction; no `rusqlite` type leaves this module.

use std::collections::BTreeMap;
use std::path::Path;

use nimbus_store::group_commit::GroupCommit;
use rusqlite::{params, Connection};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::IamError;

/// An IAM user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub name: String,
    /// `AIDA…`.
    pub id: String,
    pub path: String,
    /// Epoch seconds.
    pub created: i64,
    /// Inline policies: name → document as submitted.
    #[serde(default)]
    pub inline: BTreeMap<String, String>,
    /// Attached managed policies' ARNs, in attachment order.
    #[serde(default)]
    pub attached: Vec<String>,
}

/// An IAM role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleRecord {
    pub name: String,
    /// `AROA…`.
    pub id: String,
    pub path: String,
    pub created: i64,
    /// The trust policy (AssumeRolePolicyDocument) as submitted.
    pub trust: String,
    pub description: Option<String>,
    /// Seconds, 3600..=43200.
    pub max_session: i64,
    #[serde(default)]
    pub inline: BTreeMap<String, String>,
    #[serde(default)]
    pub attached: Vec<String>,
}

/// A customer managed policy (one version, `v1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRecord {
    pub name: String,
    /// `ANPA…`.
    pub id: String,
    pub path: String,
    pub created: i64,
    pub description: Option<String>,
    pub document: String,
}

/// An IAM user's access key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub id: String,
    pub secret: String,
    pub user: String,
    pub active: bool,
    pub created: i64,
}

/// One change to the store; a list of them commits in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    PutUser(UserRecord),
    DeleteUser(String),
    PutRole(RoleRecord),
    DeleteRole(String),
    PutPolicy(PolicyRecord),
    DeletePolicy(String),
    PutKey(KeyRecord),
    DeleteKey(String),
}

/// Everything in the store.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub users: Vec<UserRecord>,
    pub roles: Vec<RoleRecord>,
    pub policies: Vec<PolicyRecord>,
    pub keys: Vec<KeyRecord>,
}

/// `iam.db`'s schema: append migrations, never edit them.
const SCHEMA: nimbus_store::db::Schema = nimbus_store::db::Schema {
    name: "iam",
    migrations: &[
        // 1: the schema of the first release.
        "
CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS roles (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS policies (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS access_keys (id TEXT PRIMARY KEY, user TEXT NOT NULL, doc TEXT NOT NULL);
",
    ],
};

/// Handle to `iam.db`'s writer thread.
pub struct IamStore {
    db: GroupCommit,
}

fn sql(e: rusqlite::Error) -> IamError {
    IamError::Internal(format!("iam.db: {e}"))
}

fn json<T: Serialize>(v: &T) -> Result<String, IamError> {
    serde_json::to_string(v).map_err(|e| IamError::Internal(format!("iam.db: {e}")))
}

fn rows<T: DeserializeOwned>(conn: &Connection, table: &str) -> Result<Vec<T>, IamError> {
    let mut stmt = conn.prepare(&format!("SELECT doc FROM {table} ORDER BY rowid")).map_err(sql)?;
    let docs = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(sql)?;
    docs.map(|d| {
        let d = d.map_err(sql)?;
        serde_json::from_str(&d).map_err(|e| IamError::Internal(format!("iam.db {table}: {e}")))
    })
    .collect()
}

fn apply(conn: &Connection, change: &Change) -> Result<(), IamError> {
    match change {
        Change::PutUser(u) => {
            conn.execute("INSERT OR REPLACE INTO users (name, doc) VALUES (?1, ?2)", params![u.name, json(u)?]).map_err(sql)?
        }
        Change::DeleteUser(n) => conn.execute("DELETE FROM users WHERE name = ?1", params![n]).map_err(sql)?,
        Change::PutRole(r) => {
            conn.execute("INSERT OR REPLACE INTO roles (name, doc) VALUES (?1, ?2)", params![r.name, json(r)?]).map_err(sql)?
        }
        Change::DeleteRole(n) => conn.execute("DELETE FROM roles WHERE name = ?1", params![n]).map_err(sql)?,
        Change::PutPolicy(p) => {
            conn.execute("INSERT OR REPLACE INTO policies (name, doc) VALUES (?1, ?2)", params![p.name, json(p)?]).map_err(sql)?
        }
        Change::DeletePolicy(n) => conn.execute("DELETE FROM policies WHERE name = ?1", params![n]).map_err(sql)?,
        Change::PutKey(k) => conn
            .execute("INSERT OR REPLACE INTO access_keys (id, user, doc) VALUES (?1, ?2, ?3)", params![k.id, k.user, json(k)?])
            .map_err(sql)?,
        Change::DeleteKey(id) => conn.execute("DELETE FROM access_keys WHERE id = ?1", params![id]).map_err(sql)?,
    };
    Ok(())
}

impl IamStore {
    /// Opens (creating and migrating) `path`.
    pub fn open(path: &Path) -> Result<IamStore, IamError> {
        Ok(IamStore { db: GroupCommit::open(path, &SCHEMA).map_err(IamError::Internal)? })
    }

    /// An in-memory store (tests).
    pub fn open_in_memory() -> Result<IamStore, IamError> {
        Ok(IamStore { db: GroupCommit::open_in_memory(&SCHEMA).map_err(IamError::Internal)? })
    }

    /// Everything stored, in creation order.
    pub async fn load(&self) -> Result<Snapshot, IamError> {
        self.db
            .run(
                false,
                |conn| {
                    Ok(Snapshot {
                        users: rows(conn, "users")?,
                        roles: rows(conn, "roles")?,
                        policies: rows(conn, "policies")?,
                        keys: rows(conn, "access_keys")?,
                    })
                },
                IamError::internal,
            )
            .await
    }

    /// Commits `changes` in one transaction (durably).
    pub async fn commit(&self, changes: Vec<Change>) -> Result<(), IamError> {
        self.db.run(true, move |conn| changes.iter().try_for_each(|c| apply(conn, c)), IamError::internal).await
    }
}

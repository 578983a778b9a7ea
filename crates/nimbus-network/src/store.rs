//! `network.db`: VPCs, subnets and security groups, each a typed record stored as a JSON
//! document in its own table, behind `nimbus_store::group_commit` (one writer thread, every
//! job committed with `synchronous=FULL`). The surface is typed: [`NetworkStore::load`]
//! everything at start, [`NetworkStore::commit`] a list of [`Change`]s in one transaction; no
//! `rusqlite` type leaves this module.

use std::path::Path;

use nimbus_store::group_commit::GroupCommit;
use rusqlite::{params, Connection};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::NetworkError;

/// A tag on a network object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// A VPC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpcRecord {
    /// `vpc-` and 17 hex digits.
    pub id: String,
    pub cidr: String,
    /// Its CIDR block's association (`vpc-cidr-assoc-…`).
    pub association_id: String,
    /// Its default security group, made with it and deleted with it.
    pub default_group: String,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Epoch seconds.
    pub created: i64,
}

/// A subnet of a VPC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetRecord {
    /// `subnet-` and 17 hex digits.
    pub id: String,
    pub vpc: String,
    pub cidr: String,
    pub availability_zone: String,
    #[serde(default)]
    pub tags: Vec<Tag>,
    pub created: i64,
}

/// Whom a security group rule allows: an IPv4 block, or the members of a security group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Peer {
    Cidr(String),
    Group(String),
}

/// One rule of a security group (EC2's `SecurityGroupRule`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleRecord {
    /// `sgr-` and 17 hex digits.
    pub id: String,
    /// `-1` (all), `tcp`, `udp`, `icmp`, `icmpv6`, or another protocol's number.
    pub protocol: String,
    /// The port range (for ICMP: type and code); None for protocols without ports.
    pub from_port: Option<i64>,
    pub to_port: Option<i64>,
    pub peer: Peer,
    pub description: Option<String>,
}

/// A security group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    /// `sg-` and 17 hex digits.
    pub id: String,
    pub vpc: String,
    pub name: String,
    pub description: String,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub ingress: Vec<RuleRecord>,
    #[serde(default)]
    pub egress: Vec<RuleRecord>,
    pub created: i64,
}

/// One change to the store; a list of them commits in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    PutVpc(VpcRecord),
    DeleteVpc(String),
    PutSubnet(SubnetRecord),
    DeleteSubnet(String),
    PutGroup(GroupRecord),
    DeleteGroup(String),
}

/// Everything in the store, in creation order.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub vpcs: Vec<VpcRecord>,
    pub subnets: Vec<SubnetRecord>,
    pub groups: Vec<GroupRecord>,
}

/// `network.db`'s schema: append migrations, never edit them.
const SCHEMA: nimbus_store::db::Schema = nimbus_store::db::Schema {
    name: "network",
    migrations: &[
        // 1: the schema of the first release with VPCs (2026-12).
        "
CREATE TABLE IF NOT EXISTS vpcs (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS subnets (id TEXT PRIMARY KEY, vpc TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS security_groups (id TEXT PRIMARY KEY, vpc TEXT NOT NULL, doc TEXT NOT NULL);
",
    ],
};

/// Handle to `network.db`'s writer thread.
pub struct NetworkStore {
    db: GroupCommit,
}

fn sql(e: rusqlite::Error) -> NetworkError {
    NetworkError::Internal(format!("network.db: {e}"))
}

fn json<T: Serialize>(v: &T) -> Result<String, NetworkError> {
    serde_json::to_string(v).map_err(|e| NetworkError::Internal(format!("network.db: {e}")))
}

fn rows<T: DeserializeOwned>(conn: &Connection, table: &str) -> Result<Vec<T>, NetworkError> {
    let mut stmt = conn.prepare(&format!("SELECT doc FROM {table} ORDER BY rowid")).map_err(sql)?;
    let docs = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(sql)?;
    docs.map(|d| {
        let d = d.map_err(sql)?;
        serde_json::from_str(&d).map_err(|e| NetworkError::Internal(format!("network.db {table}: {e}")))
    })
    .collect()
}

fn apply(conn: &Connection, change: &Change) -> Result<(), NetworkError> {
    match change {
        Change::PutVpc(v) => conn.execute("INSERT OR REPLACE INTO vpcs (id, doc) VALUES (?1, ?2)", params![v.id, json(v)?]),
        Change::DeleteVpc(id) => conn.execute("DELETE FROM vpcs WHERE id = ?1", params![id]),
        Change::PutSubnet(s) => {
            conn.execute("INSERT OR REPLACE INTO subnets (id, vpc, doc) VALUES (?1, ?2, ?3)", params![s.id, s.vpc, json(s)?])
        }
        Change::DeleteSubnet(id) => conn.execute("DELETE FROM subnets WHERE id = ?1", params![id]),
        Change::PutGroup(g) => {
            conn.execute("INSERT OR REPLACE INTO security_groups (id, vpc, doc) VALUES (?1, ?2, ?3)", params![g.id, g.vpc, json(g)?])
        }
        Change::DeleteGroup(id) => conn.execute("DELETE FROM security_groups WHERE id = ?1", params![id]),
    }
    .map_err(sql)?;
    Ok(())
}

impl NetworkStore {
    /// Opens (creating and migrating) `path`.
    pub fn open(path: &Path) -> Result<NetworkStore, NetworkError> {
        Ok(NetworkStore { db: GroupCommit::open(path, &SCHEMA).map_err(NetworkError::Internal)? })
    }

    /// An in-memory store (tests).
    pub fn open_in_memory() -> Result<NetworkStore, NetworkError> {
        Ok(NetworkStore { db: GroupCommit::open_in_memory(&SCHEMA).map_err(NetworkError::Internal)? })
    }

    /// Everything stored, in creation order.
    pub async fn load(&self) -> Result<Snapshot, NetworkError> {
        self.db
            .run(
                false,
                |conn| Ok(Snapshot { vpcs: rows(conn, "vpcs")?, subnets: rows(conn, "subnets")?, groups: rows(conn, "security_groups")? }),
                NetworkError::internal,
            )
            .await
    }

    /// Commits `changes` in one transaction (durably).
    pub async fn commit(&self, changes: Vec<Change>) -> Result<(), NetworkError> {
        self.db.run(true, move |conn| changes.iter().try_for_each(|c| apply(conn, c)), NetworkError::internal).await
    }
}

//! VPCs, subnets and security groups, each a typed record stored as a JSON document in its
//! own table: `network.db` behind `nimbus_store::group_commit` (one writer thread, every job
//! committed with `synchronous=FULL`), or, for nodes that share a PostgreSQL database, the
//! account's schema there (`store/postgres.rs`), so the networks a function's `VpcConfig`
//! names are known to every node. The surface is typed: [`NetworkStore::load`] everything,
//! [`NetworkStore::commit`] a list of [`Change`]s in one transaction, and
//! [`NetworkStore::watch`] for other nodes' changes; no `rusqlite` or `tokio_postgres` type
//! leaves this module.

use std::path::Path;
use std::sync::Weak;

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

/// Everything in the store (`network.db`: in creation order; PostgreSQL: by id).
#[derive(Debug, Default)]
pub struct Snapshot {
    pub vpcs: Vec<VpcRecord>,
    pub subnets: Vec<SubnetRecord>,
    pub groups: Vec<GroupRecord>,
    /// How many commits the store had taken when it was read (a shared store's; `network.db`
    /// does not count): what [`NetworkStore::commit`] is given back.
    pub generation: i64,
}

/// What a commit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    /// Committed: the store's generation is now the one after the given one.
    Done,
    /// Nothing: another node committed since the generation the changes were decided on
    /// (their checks, such as overlapping subnets or a group's name, may no longer hold).
    /// The caller reloads and decides again.
    Stale,
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

/// The network records: one node's `network.db`, or the tables nodes share in PostgreSQL.
pub struct NetworkStore {
    backend: Backend,
}

enum Backend {
    /// `network.db`'s writer thread.
    Embedded(GroupCommit),
    /// The account's schema in PostgreSQL.
    Shared(postgres::SharedTables),
}

mod postgres;

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
        Ok(NetworkStore { backend: Backend::Embedded(GroupCommit::open(path, &SCHEMA).map_err(NetworkError::Internal)?) })
    }

    /// An in-memory store (tests).
    pub fn open_in_memory() -> Result<NetworkStore, NetworkError> {
        Ok(NetworkStore { backend: Backend::Embedded(GroupCommit::open_in_memory(&SCHEMA).map_err(NetworkError::Internal)?) })
    }

    /// Opens (creating and migrating) `account`'s network tables in the PostgreSQL database
    /// at `url`, which several nodes share. `node` names this node's connections
    /// (`application_name`), which the change feed's announcements quote: unique to this
    /// node and store.
    pub async fn open_shared(url: &str, account: &str, node: &str) -> Result<NetworkStore, NetworkError> {
        Ok(NetworkStore { backend: Backend::Shared(postgres::SharedTables::open(url, account, node).await?) })
    }

    /// Whether other nodes write these records too.
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Shared(_))
    }

    /// Calls `on` whenever another node may have changed the records, while `owner` lives:
    /// after each change another node commits, after the change feed was cut and is back,
    /// and once when the feed first listens (for what changed between the caller's
    /// [`NetworkStore::load`] and then). Never for `network.db`, which has no other writer.
    pub fn watch<T: Send + Sync + 'static>(&self, owner: Weak<T>, on: impl Fn() + Send + Sync + 'static) {
        if let Backend::Shared(tables) = &self.backend {
            tables.watch(owner, on);
        }
    }

    /// Everything stored.
    pub async fn load(&self) -> Result<Snapshot, NetworkError> {
        match &self.backend {
            Backend::Embedded(db) => {
                db.run(
                    false,
                    |conn| {
                        Ok(Snapshot {
                            vpcs: rows(conn, "vpcs")?,
                            subnets: rows(conn, "subnets")?,
                            groups: rows(conn, "security_groups")?,
                            generation: 0,
                        })
                    },
                    NetworkError::internal,
                )
                .await
            }
            Backend::Shared(tables) => tables.load().await,
        }
    }

    /// Commits `changes` in one transaction (durably), decided on the records as they were
    /// at `generation` (a shared store's, from [`NetworkStore::load`] and one more after
    /// each of this node's commits): [`Committed::Stale`], committing nothing, if another
    /// node committed since. `network.db` has no other writer: never stale.
    pub async fn commit(&self, changes: Vec<Change>, generation: i64) -> Result<Committed, NetworkError> {
        match &self.backend {
            Backend::Embedded(db) => {
                db.run(true, move |conn| changes.iter().try_for_each(|c| apply(conn, c)), NetworkError::internal).await?;
                Ok(Committed::Done)
            }
            Backend::Shared(tables) => tables.commit(&changes, generation).await,
        }
    }
}

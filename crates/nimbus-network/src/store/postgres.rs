//! The network tables in PostgreSQL, for nodes that share one database (`--store
//! postgres://…`): `network.db`'s tables in the account's schema (named `network_…` there,
//! since every shared store of the account has its tables in that schema), holding the same
//! documents. Every change to them is announced at commit (`nimbus_store::pg::NOTIFY_CHANGE`),
//! so the other nodes reload what they mirror. A node decides a change on its mirror, whose
//! checks span records (a subnet overlapping none of its VPC's, a group name unique in its
//! VPC, a group no other group's rules name): `network_generation` counts the commits, and
//! a commit decided on an older count than the stored one is [`Committed::Stale`], so two
//! nodes never both pass a check that only one of them may (network changes are rare: they
//! take turns on that row).

use std::sync::Weak;

use nimbus_store::pg::{self, PgDatabase, PgSchema};
use tokio_postgres::IsolationLevel;

use super::{json, Change, Committed, Snapshot};
use crate::NetworkError;

/// The network tables in an account's schema: append migrations, never edit them.
pub(super) const SCHEMA: PgSchema = PgSchema {
    name: "network",
    migrations: &[
        // 1: the first release on PostgreSQL (2026-12): `network.db`'s tables at its
        // migration 1, the commits' count, and every change announced at commit.
        "
CREATE TABLE network_vpcs (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE network_subnets (id TEXT PRIMARY KEY, vpc TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE network_security_groups (id TEXT PRIMARY KEY, vpc TEXT NOT NULL, doc TEXT NOT NULL);
-- One more with every commit: a change decided on an older count is refused.
CREATE TABLE network_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    generation BIGINT NOT NULL
);
INSERT INTO network_generation (id, generation) VALUES (1, 0);
CREATE TRIGGER network_vpcs_changed AFTER INSERT OR UPDATE OR DELETE ON network_vpcs FOR EACH ROW EXECUTE FUNCTION notify_change('id');
CREATE TRIGGER network_subnets_changed AFTER INSERT OR UPDATE OR DELETE ON network_subnets FOR EACH ROW EXECUTE FUNCTION notify_change('id');
CREATE TRIGGER network_security_groups_changed AFTER INSERT OR UPDATE OR DELETE ON network_security_groups FOR EACH ROW EXECUTE FUNCTION notify_change('id');
",
    ],
};

/// The tables whose announcements say the records changed.
const TABLES: [&str; 3] = ["network_vpcs", "network_subnets", "network_security_groups"];

/// An account's network tables and the pool that reaches them.
pub(super) struct SharedTables {
    db: PgDatabase,
    /// For the change feed's own connection (holds the password: never shown).
    url: String,
}

fn backend(e: tokio_postgres::Error) -> NetworkError {
    store(pg::backend(e))
}

fn store(e: nimbus_store::StoreError) -> NetworkError {
    NetworkError::Internal(format!("the network tables: {e}"))
}

fn parse<T: serde::de::DeserializeOwned>(doc: &str, table: &str) -> Result<T, NetworkError> {
    serde_json::from_str(doc).map_err(|e| NetworkError::Internal(format!("the network tables: {table}: {e}")))
}

impl SharedTables {
    /// Opens and migrates the tables.
    pub(super) async fn open(url: &str, account: &str, node: &str) -> Result<SharedTables, NetworkError> {
        let db = PgDatabase::open(url, account, node).await.map_err(store)?;
        db.migrate(&SCHEMA).await.map_err(store)?;
        Ok(SharedTables { db, url: url.to_string() })
    }

    /// Everything, read in one snapshot of the database (a subnet never without its VPC),
    /// with the commits' count it holds.
    pub(super) async fn load(&self) -> Result<Snapshot, NetworkError> {
        let mut client = self.db.client().await.map_err(store)?;
        let tx =
            client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start().await.map_err(backend)?;
        let generation = tx.query_one("SELECT generation FROM network_generation WHERE id = 1", &[]).await.map_err(backend)?.get(0);
        let mut snapshot = Snapshot { generation, ..Snapshot::default() };
        for row in tx.query("SELECT doc FROM network_vpcs ORDER BY id", &[]).await.map_err(backend)? {
            snapshot.vpcs.push(parse(row.get(0), "network_vpcs")?);
        }
        for row in tx.query("SELECT doc FROM network_subnets ORDER BY id", &[]).await.map_err(backend)? {
            snapshot.subnets.push(parse(row.get(0), "network_subnets")?);
        }
        for row in tx.query("SELECT doc FROM network_security_groups ORDER BY id", &[]).await.map_err(backend)? {
            snapshot.groups.push(parse(row.get(0), "network_security_groups")?);
        }
        tx.commit().await.map_err(backend)?;
        Ok(snapshot)
    }

    /// Commits `changes` in one transaction if the commits' count is still `generation`
    /// (counting this one), or nothing. A node committing at the same moment waits for the
    /// row, then finds the count moved on.
    pub(super) async fn commit(&self, changes: &[Change], generation: i64) -> Result<Committed, NetworkError> {
        let mut client = self.db.client().await.map_err(store)?;
        let tx = client.transaction().await.map_err(backend)?;
        let counted = tx
            .execute("UPDATE network_generation SET generation = generation + 1 WHERE id = 1 AND generation = $1", &[&generation])
            .await
            .map_err(backend)?;
        if counted != 1 {
            // Dropped uncommitted: rolled back.
            return Ok(Committed::Stale);
        }
        for change in changes {
            match change {
                Change::PutVpc(v) => {
                    tx.execute(
                        "INSERT INTO network_vpcs (id, doc) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc",
                        &[&v.id, &json(v)?],
                    )
                    .await
                }
                Change::DeleteVpc(id) => tx.execute("DELETE FROM network_vpcs WHERE id = $1", &[id]).await,
                Change::PutSubnet(s) => {
                    tx.execute(
                        "INSERT INTO network_subnets (id, vpc, doc) VALUES ($1, $2, $3)
                         ON CONFLICT (id) DO UPDATE SET vpc = EXCLUDED.vpc, doc = EXCLUDED.doc",
                        &[&s.id, &s.vpc, &json(s)?],
                    )
                    .await
                }
                Change::DeleteSubnet(id) => tx.execute("DELETE FROM network_subnets WHERE id = $1", &[id]).await,
                Change::PutGroup(g) => {
                    tx.execute(
                        "INSERT INTO network_security_groups (id, vpc, doc) VALUES ($1, $2, $3)
                         ON CONFLICT (id) DO UPDATE SET vpc = EXCLUDED.vpc, doc = EXCLUDED.doc",
                        &[&g.id, &g.vpc, &json(g)?],
                    )
                    .await
                }
                Change::DeleteGroup(id) => tx.execute("DELETE FROM network_security_groups WHERE id = $1", &[id]).await,
            }
            .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(Committed::Done)
    }

    /// Follows the other nodes' changes (see [`super::NetworkStore::watch`]).
    pub(super) fn watch<T: Send + Sync + 'static>(&self, owner: Weak<T>, on: impl Fn() + Send + Sync + 'static) {
        pg::watch_tables(owner, self.url.clone(), self.db.clone(), &TABLES, on);
    }
}

//! Durable event buses, rules and targets: [`EventsStore`], the service's whole view of its
//! storage: everything at start ([`EventsStore::load`]) and a list of typed [`Change`]s
//! committed in one transaction ([`EventsStore::commit`]), and, over a store several nodes
//! share, [`EventsStore::watch`] for the other nodes' changes. Two backends, and no
//! `rusqlite` or `tokio_postgres` type leaves this module: `events.db` (one file, WAL, behind
//! its group-commit writer thread; every commit is fsync'd before it is acknowledged), or the
//! account's schema in PostgreSQL for nodes started with `--store postgres://…`
//! (`store/postgres.rs`). Rows hold each record as JSON next to the columns it is found by; a
//! scheduled rule's next fire time has its own column, written (and fsync'd) before that fire
//! is delivered, so a restart never fires the same period twice. A fire is claimed in the
//! same commit ([`Changes::claim_fire`]): in `events.db` every claim is won (one node), in
//! PostgreSQL only by the first node to claim that rule's scheduled time, so the nodes that
//! all run the scheduler deliver each period once.

use std::path::Path;
use std::sync::Weak;

use nimbus_store::group_commit::GroupCommit;
use rusqlite::{params, Connection};
use serde::{de::DeserializeOwned, Serialize};

use crate::error::EventsError;
use crate::model::{BusInfo, RuleInfo, TargetSpec};

/// `events.db`.
const SCHEMA: nimbus_store::db::Schema = nimbus_store::db::Schema {
    name: "events",
    migrations: &[
        // 1: the schema of the first release.
        "
CREATE TABLE IF NOT EXISTS buses (
    name TEXT PRIMARY KEY,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rules (
    bus TEXT NOT NULL,
    name TEXT NOT NULL,
    doc TEXT NOT NULL,
    next_fire_ms INTEGER,
    PRIMARY KEY (bus, name)
);
CREATE TABLE IF NOT EXISTS targets (
    bus TEXT NOT NULL,
    rule TEXT NOT NULL,
    id TEXT NOT NULL,
    position INTEGER NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (bus, rule, id)
);
",
    ],
};
/// A change to what is stored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Change {
    PutBus(BusInfo),
    /// A bus with its rules and their targets.
    DeleteBus(String),
    PutRule(RuleInfo, Option<i64>),
    /// A scheduled rule's next fire time moves on from `from` (where the scheduler found
    /// it) to `to`. In PostgreSQL only if it is still `from`: a node behind never moves it
    /// back, nor over a schedule another node has just put.
    AdvanceFire {
        bus: String,
        rule: String,
        from: i64,
        to: Option<i64>,
    },
    /// This node would deliver `Fire`: won unless another node claimed it (or a later fire of
    /// the rule) first; see [`EventsStore::commit`].
    ClaimFire(Fire),
    /// A rule with its targets.
    DeleteRule {
        bus: String,
        rule: String,
    },
    /// A rule's targets, in order, in place of those it had.
    ReplaceTargets {
        bus: String,
        rule: String,
        targets: Vec<TargetSpec>,
    },
    DeleteTarget {
        bus: String,
        rule: String,
        id: String,
    },
}

/// The changes of one write, in order; committed together or not at all.
#[derive(Debug, Default)]
pub(crate) struct Changes(pub(crate) Vec<Change>);

impl Changes {
    pub fn put_bus(&mut self, bus: &BusInfo) {
        self.0.push(Change::PutBus(bus.clone()));
    }

    pub fn delete_bus(&mut self, name: &str) {
        self.0.push(Change::DeleteBus(name.to_string()));
    }

    pub fn put_rule(&mut self, rule: &RuleInfo, next_fire_ms: Option<i64>) {
        self.0.push(Change::PutRule(rule.clone(), next_fire_ms));
    }

    pub fn advance_fire(&mut self, bus: &str, rule: &str, from: i64, to: Option<i64>) {
        self.0.push(Change::AdvanceFire { bus: bus.to_string(), rule: rule.to_string(), from, to });
    }

    pub fn claim_fire(&mut self, bus: &str, rule: &str, fire_ms: i64) {
        self.0.push(Change::ClaimFire(Fire { bus: bus.to_string(), rule: rule.to_string(), fire_ms }));
    }

    pub fn delete_rule(&mut self, bus: &str, rule: &str) {
        self.0.push(Change::DeleteRule { bus: bus.to_string(), rule: rule.to_string() });
    }

    pub fn replace_targets(&mut self, bus: &str, rule: &str, targets: &[&TargetSpec]) {
        let targets = targets.iter().map(|t| (*t).clone()).collect();
        self.0.push(Change::ReplaceTargets { bus: bus.to_string(), rule: rule.to_string(), targets });
    }

    pub fn delete_target(&mut self, bus: &str, rule: &str, id: &str) {
        self.0.push(Change::DeleteTarget { bus: bus.to_string(), rule: rule.to_string(), id: id.to_string() });
    }
}

/// One scheduled time of a scheduled rule: what nodes claim before they deliver it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fire {
    pub bus: String,
    pub rule: String,
    /// The scheduled time (epoch milliseconds).
    pub fire_ms: i64,
}

/// The event service's storage: one node's `events.db`, or the tables nodes share in
/// PostgreSQL.
pub(crate) struct EventsStore {
    backend: Backend,
}

enum Backend {
    /// `events.db`'s writer thread.
    Embedded(GroupCommit),
    /// The account's schema in PostgreSQL.
    Shared(postgres::SharedTables),
}

mod postgres;

impl EventsStore {
    /// Opens (creating if needed) `events.db` and starts its writer thread.
    pub fn open(path: &Path) -> Result<EventsStore, EventsError> {
        Ok(EventsStore { backend: Backend::Embedded(GroupCommit::open(path, &SCHEMA).map_err(EventsError::Internal)?) })
    }

    /// Opens (creating and migrating) `account`'s event tables in the PostgreSQL database at
    /// `url`, which several nodes share. `node` names this node's connections
    /// (`application_name`), which the change feed's announcements quote: unique to this
    /// node and store.
    pub async fn open_shared(url: &str, account: &str, node: &str) -> Result<EventsStore, EventsError> {
        Ok(EventsStore { backend: Backend::Shared(postgres::SharedTables::open(url, account, node).await?) })
    }

    /// Whether other nodes write these records too.
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Shared(_))
    }

    /// Calls `on` whenever another node may have changed the buses, rules or targets, while
    /// `owner` lives: after each change another node commits, after the change feed was cut
    /// and is back, and once when the feed first listens (for what changed between the
    /// caller's [`EventsStore::load`] and then). Never for `events.db`, which has no other
    /// writer. (Moving a rule's next fire time is not announced: every node moves its own.)
    pub fn watch<T: Send + Sync + 'static>(&self, owner: Weak<T>, on: impl Fn() + Send + Sync + 'static) {
        if let Backend::Shared(tables) = &self.backend {
            tables.watch(owner, on);
        }
    }

    /// Everything stored.
    pub async fn load(&self) -> Result<Loaded, EventsError> {
        match &self.backend {
            Backend::Embedded(db) => db.run(false, load, EventsError::Internal).await,
            Backend::Shared(tables) => tables.load().await,
        }
    }

    /// Commits `changes` in one transaction, durably before this returns; the fires among
    /// them ([`Changes::claim_fire`]) this node won, in order. In `events.db` every claim is
    /// won; in PostgreSQL a claim is won by the one node whose claim of that rule's scheduled
    /// time commits first, and only while the rule exists and no later time of it was
    /// claimed.
    pub async fn commit(&self, changes: Changes) -> Result<Vec<Fire>, EventsError> {
        if changes.0.is_empty() {
            return Ok(Vec::new());
        }
        match &self.backend {
            Backend::Embedded(db) => {
                db.run(
                    true,
                    move |conn| {
                        let mut won = Vec::new();
                        for c in &changes.0 {
                            match c {
                                Change::ClaimFire(fire) => won.push(fire.clone()),
                                c => apply(conn, c)?,
                            }
                        }
                        Ok(won)
                    },
                    EventsError::Internal,
                )
                .await
            }
            Backend::Shared(tables) => tables.commit(&changes.0).await,
        }
    }
}

fn to_json<T: Serialize>(v: &T) -> Result<String, EventsError> {
    serde_json::to_string(v).map_err(|e| EventsError::Internal(format!("encoding a record: {e}")))
}

fn from_json<T: DeserializeOwned>(s: &str, what: &str) -> Result<T, EventsError> {
    serde_json::from_str(s).map_err(|e| EventsError::Internal(format!("decoding {what}: {e}")))
}

/// Everything stored, in key order (targets in the order they were first put).
pub struct Loaded {
    pub buses: Vec<BusInfo>,
    pub rules: Vec<(RuleInfo, Option<i64>)>,
    pub targets: Vec<(String, String, TargetSpec)>,
}

fn load(conn: &Connection) -> Result<Loaded, EventsError> {
    let mut buses = Vec::new();
    let mut st = conn.prepare("SELECT doc FROM buses ORDER BY name")?;
    for doc in st.query_map([], |r| r.get::<_, String>(0))? {
        buses.push(from_json(&doc?, "an event bus")?);
    }
    let mut rules = Vec::new();
    let mut st = conn.prepare("SELECT doc, next_fire_ms FROM rules ORDER BY bus, name")?;
    for row in st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?)))? {
        let (doc, next) = row?;
        rules.push((from_json(&doc, "a rule")?, next));
    }
    let mut targets = Vec::new();
    let mut st = conn.prepare("SELECT bus, rule, doc FROM targets ORDER BY bus, rule, position")?;
    for row in st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))? {
        let (bus, rule, doc) = row?;
        targets.push((bus, rule, from_json(&doc, "a target")?));
    }
    Ok(Loaded { buses, rules, targets })
}

fn apply(conn: &Connection, change: &Change) -> Result<(), EventsError> {
    match change {
        Change::PutBus(bus) => {
            conn.execute("INSERT OR REPLACE INTO buses (name, doc) VALUES (?1, ?2)", params![bus.name, to_json(bus)?])?;
        }
        Change::DeleteBus(name) => {
            conn.execute("DELETE FROM targets WHERE bus = ?1", [name])?;
            conn.execute("DELETE FROM rules WHERE bus = ?1", [name])?;
            conn.execute("DELETE FROM buses WHERE name = ?1", [name])?;
        }
        Change::PutRule(rule, next_fire_ms) => {
            conn.execute(
                "INSERT OR REPLACE INTO rules (bus, name, doc, next_fire_ms) VALUES (?1, ?2, ?3, ?4)",
                params![rule.event_bus, rule.name, to_json(rule)?, next_fire_ms],
            )?;
        }
        // (The only writer: the time is still `from`.)
        Change::AdvanceFire { bus, rule, to, .. } => {
            conn.execute("UPDATE rules SET next_fire_ms = ?3 WHERE bus = ?1 AND name = ?2", params![bus, rule, to])?;
        }
        // (One node: every claim is won.)
        Change::ClaimFire(_) => {}
        Change::DeleteRule { bus, rule } => {
            conn.execute("DELETE FROM targets WHERE bus = ?1 AND rule = ?2", [bus, rule])?;
            conn.execute("DELETE FROM rules WHERE bus = ?1 AND name = ?2", [bus, rule])?;
        }
        Change::ReplaceTargets { bus, rule, targets } => {
            conn.execute("DELETE FROM targets WHERE bus = ?1 AND rule = ?2", [bus, rule])?;
            for (position, target) in targets.iter().enumerate() {
                conn.execute(
                    "INSERT INTO targets (bus, rule, id, position, doc) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![bus, rule, target.id, position as i64, to_json(target)?],
                )?;
            }
        }
        Change::DeleteTarget { bus, rule, id } => {
            conn.execute("DELETE FROM targets WHERE bus = ?1 AND rule = ?2 AND id = ?3", [bus, rule, id])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(bus: &str, name: &str) -> RuleInfo {
        RuleInfo {
            name: name.into(),
            arn: format!("arn:{bus}:{name}"),
            event_bus: bus.into(),
            schedule_expression: Some("rate(1 minute)".into()),
            event_pattern: None,
            state: "ENABLED".into(),
            description: None,
            role_arn: None,
            created_by: "000000000000".into(),
            tags: vec![],
        }
    }

    fn bus(name: &str) -> BusInfo {
        BusInfo { name: name.into(), arn: format!("arn:{name}"), description: None, created_ms: 1, modified_ms: 1 }
    }

    /// Changes commit in order, and what is loaded back is what they describe.
    #[tokio::test]
    async fn changes_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.db");
        let store = EventsStore::open(&path).expect("open");
        let (a, b, c) = (TargetSpec::new("a", "arn:a"), TargetSpec::new("b", "arn:b"), TargetSpec::new("c", "arn:c"));
        let mut changes = Changes::default();
        changes.put_bus(&bus("default"));
        changes.put_bus(&bus("custom"));
        changes.put_rule(&rule("default", "r1"), Some(10));
        changes.put_rule(&rule("custom", "r2"), None);
        changes.replace_targets("default", "r1", &[&b, &a]);
        changes.replace_targets("custom", "r2", &[&c]);
        store.commit(changes).await.expect("commit");
        let mut changes = Changes::default();
        changes.advance_fire("default", "r1", 10, Some(20));
        changes.replace_targets("default", "r1", &[&c, &b, &a]);
        changes.delete_target("default", "r1", "b");
        changes.delete_bus("custom");
        store.commit(changes).await.expect("commit");
        drop(store);

        let loaded = EventsStore::open(&path).expect("reopen").load().await.expect("load");
        assert_eq!(loaded.buses, [bus("default")]);
        assert_eq!(loaded.rules, [(rule("default", "r1"), Some(20))]);
        let targets: Vec<_> = loaded.targets.iter().map(|(bus, rule, t)| (bus.as_str(), rule.as_str(), t.id.as_str())).collect();
        assert_eq!(targets, [("default", "r1", "c"), ("default", "r1", "a")]);
    }
}

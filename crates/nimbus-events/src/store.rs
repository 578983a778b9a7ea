//! Durable event buses, rules and targets: one SQLite file (`events.db`, WAL,
//! `synchronous=FULL`). Rows hold each record as JSON next to the columns it is found by; a
//! scheduled rule's next fire time has its own column, written (and fsync'd) before that fire
//! is delivered, so a restart never fires the same period twice.

use std::path::Path;

use rusqlite::{params, Connection, Transaction};
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
pub fn open(path: &Path) -> Result<Connection, EventsError> {
    nimbus_store::db::open(path, &SCHEMA, nimbus_store::db::Durability::Full).map_err(EventsError::Internal)
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

pub fn load(conn: &Connection) -> Result<Loaded, EventsError> {
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

pub fn put_bus(tx: &Transaction<'_>, bus: &BusInfo) -> Result<(), EventsError> {
    tx.execute("INSERT OR REPLACE INTO buses (name, doc) VALUES (?1, ?2)", params![bus.name, to_json(bus)?])?;
    Ok(())
}

/// Deletes a bus with its rules and their targets.
pub fn delete_bus(tx: &Transaction<'_>, name: &str) -> Result<(), EventsError> {
    tx.execute("DELETE FROM targets WHERE bus = ?1", [name])?;
    tx.execute("DELETE FROM rules WHERE bus = ?1", [name])?;
    tx.execute("DELETE FROM buses WHERE name = ?1", [name])?;
    Ok(())
}

pub fn put_rule(tx: &Transaction<'_>, rule: &RuleInfo, next_fire_ms: Option<i64>) -> Result<(), EventsError> {
    tx.execute(
        "INSERT OR REPLACE INTO rules (bus, name, doc, next_fire_ms) VALUES (?1, ?2, ?3, ?4)",
        params![rule.event_bus, rule.name, to_json(rule)?, next_fire_ms],
    )?;
    Ok(())
}

pub fn set_next_fire(tx: &Transaction<'_>, bus: &str, name: &str, next_fire_ms: Option<i64>) -> Result<(), EventsError> {
    tx.execute("UPDATE rules SET next_fire_ms = ?3 WHERE bus = ?1 AND name = ?2", params![bus, name, next_fire_ms])?;
    Ok(())
}

pub fn delete_rule(tx: &Transaction<'_>, bus: &str, name: &str) -> Result<(), EventsError> {
    tx.execute("DELETE FROM targets WHERE bus = ?1 AND rule = ?2", [bus, name])?;
    tx.execute("DELETE FROM rules WHERE bus = ?1 AND name = ?2", [bus, name])?;
    Ok(())
}

/// Stores a rule's targets, in order, in place of those it had.
pub fn replace_targets(tx: &Transaction<'_>, bus: &str, rule: &str, targets: &[&TargetSpec]) -> Result<(), EventsError> {
    tx.execute("DELETE FROM targets WHERE bus = ?1 AND rule = ?2", [bus, rule])?;
    for (position, target) in targets.iter().enumerate() {
        tx.execute(
            "INSERT INTO targets (bus, rule, id, position, doc) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![bus, rule, target.id, position as i64, to_json(target)?],
        )?;
    }
    Ok(())
}

pub fn delete_target(tx: &Transaction<'_>, bus: &str, rule: &str, id: &str) -> Result<(), EventsError> {
    tx.execute("DELETE FROM targets WHERE bus = ?1 AND rule = ?2 AND id = ?3", [bus, rule, id])?;
    Ok(())
}

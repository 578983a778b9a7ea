//! The event tables in PostgreSQL, for nodes that share one database (`--store postgres://…`):
//! `events.db`'s tables in the account's schema (named `events_…` there, since every shared
//! store of the account has its tables in that schema), holding the same documents, and
//! `events_schedule_fires`, where the nodes claim each scheduled rule's fires. Changes to
//! buses, rules and targets are announced at commit (`nimbus_store::pg::NOTIFY_CHANGE`), so
//! the other nodes reload what they mirror; a rule's next fire time moving on is not (each
//! node moves its own, and the claims decide who delivers).

use std::sync::Weak;

use nimbus_store::pg::{self, PgDatabase, PgSchema};
use tokio_postgres::IsolationLevel;

use super::{from_json, to_json, Change, Fire, Loaded};
use crate::error::EventsError;

/// The event tables in an account's schema: append migrations, never edit them.
pub(super) const SCHEMA: PgSchema = PgSchema {
    name: "events",
    migrations: &[
        // 1: the first release on PostgreSQL (2026-12): `events.db`'s tables at its migration
        // 1, every change to them but a next fire time announced at commit, and the claims.
        "
CREATE TABLE events_buses (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE events_rules (
    bus TEXT NOT NULL,
    name TEXT NOT NULL,
    doc TEXT NOT NULL,
    -- Epoch milliseconds.
    next_fire_ms BIGINT,
    PRIMARY KEY (bus, name)
);
CREATE TABLE events_targets (
    bus TEXT NOT NULL,
    rule TEXT NOT NULL,
    id TEXT NOT NULL,
    position INTEGER NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (bus, rule, id)
);
-- A scheduled rule's fires, each claimed by the node that delivers it (the rows of a rule
-- before its latest claim are pruned as it is made).
CREATE TABLE events_schedule_fires (
    bus TEXT NOT NULL,
    rule TEXT NOT NULL,
    -- The scheduled time, epoch milliseconds.
    fire_ms BIGINT NOT NULL,
    node TEXT NOT NULL DEFAULT current_setting('application_name'),
    PRIMARY KEY (bus, rule, fire_ms)
);
CREATE TRIGGER events_buses_changed AFTER INSERT OR UPDATE OR DELETE ON events_buses FOR EACH ROW EXECUTE FUNCTION notify_change('name');
CREATE TRIGGER events_rules_changed AFTER INSERT OR UPDATE OF doc OR DELETE ON events_rules FOR EACH ROW EXECUTE FUNCTION notify_change('name');
CREATE TRIGGER events_targets_changed AFTER INSERT OR UPDATE OR DELETE ON events_targets FOR EACH ROW EXECUTE FUNCTION notify_change('rule');
",
    ],
};

/// The tables whose announcements say the records changed.
const TABLES: [&str; 3] = ["events_buses", "events_rules", "events_targets"];

/// Claims a fire: inserted (and returned) unless the rule is gone, or this time or a later
/// one of the rule was claimed. Two nodes claiming the same time: the second waits for the
/// first's transaction and, once it commits, conflicts and inserts nothing.
const CLAIM_FIRE: &str = "
INSERT INTO events_schedule_fires (bus, rule, fire_ms)
SELECT $1::TEXT, $2::TEXT, $3::BIGINT
WHERE EXISTS (SELECT 1 FROM events_rules WHERE bus = $1 AND name = $2)
  AND NOT EXISTS (SELECT 1 FROM events_schedule_fires WHERE bus = $1 AND rule = $2 AND fire_ms >= $3)
ON CONFLICT DO NOTHING
RETURNING fire_ms";

/// An account's event tables and the pool that reaches them.
pub(super) struct SharedTables {
    db: PgDatabase,
    /// For the change feed's own connection (holds the password: never shown).
    url: String,
}

fn backend(e: tokio_postgres::Error) -> EventsError {
    store(pg::backend(e))
}

fn store(e: nimbus_store::StoreError) -> EventsError {
    EventsError::Internal(format!("the event tables: {e}"))
}

impl SharedTables {
    /// Opens and migrates the tables.
    pub(super) async fn open(url: &str, account: &str, node: &str) -> Result<SharedTables, EventsError> {
        let db = PgDatabase::open(url, account, node).await.map_err(store)?;
        db.migrate(&SCHEMA).await.map_err(store)?;
        Ok(SharedTables { db, url: url.to_string() })
    }

    /// Everything, read in one snapshot of the database (a target never without its rule).
    pub(super) async fn load(&self) -> Result<Loaded, EventsError> {
        let mut client = self.db.client().await.map_err(store)?;
        let tx =
            client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start().await.map_err(backend)?;
        let mut buses = Vec::new();
        for row in tx.query("SELECT doc FROM events_buses ORDER BY name", &[]).await.map_err(backend)? {
            buses.push(from_json(row.get(0), "an event bus")?);
        }
        let mut rules = Vec::new();
        for row in tx.query("SELECT doc, next_fire_ms FROM events_rules ORDER BY bus, name", &[]).await.map_err(backend)? {
            rules.push((from_json(row.get(0), "a rule")?, row.get(1)));
        }
        let mut targets = Vec::new();
        for row in tx.query("SELECT bus, rule, doc FROM events_targets ORDER BY bus, rule, position", &[]).await.map_err(backend)? {
            targets.push((row.get(0), row.get(1), from_json(row.get(2), "a target")?));
        }
        tx.commit().await.map_err(backend)?;
        Ok(Loaded { buses, rules, targets })
    }

    /// Commits `changes` in one transaction; the fires claimed among them that this node won.
    pub(super) async fn commit(&self, changes: &[Change]) -> Result<Vec<Fire>, EventsError> {
        let mut client = self.db.client().await.map_err(store)?;
        let tx = client.transaction().await.map_err(backend)?;
        let mut won = Vec::new();
        for change in changes {
            match change {
                Change::PutBus(bus) => {
                    tx.execute(
                        "INSERT INTO events_buses (name, doc) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET doc = EXCLUDED.doc",
                        &[&bus.name, &to_json(bus)?],
                    )
                    .await
                    .map_err(backend)?;
                }
                Change::DeleteBus(name) => {
                    for sql in [
                        "DELETE FROM events_targets WHERE bus = $1",
                        "DELETE FROM events_schedule_fires WHERE bus = $1",
                        "DELETE FROM events_rules WHERE bus = $1",
                        "DELETE FROM events_buses WHERE name = $1",
                    ] {
                        tx.execute(sql, &[name]).await.map_err(backend)?;
                    }
                }
                Change::PutRule(rule, next_fire_ms) => {
                    tx.execute(
                        "INSERT INTO events_rules (bus, name, doc, next_fire_ms) VALUES ($1, $2, $3, $4)
                         ON CONFLICT (bus, name) DO UPDATE SET doc = EXCLUDED.doc, next_fire_ms = EXCLUDED.next_fire_ms",
                        &[&rule.event_bus, &rule.name, &to_json(rule)?, next_fire_ms],
                    )
                    .await
                    .map_err(backend)?;
                }
                Change::AdvanceFire { bus, rule, from, to } => {
                    tx.execute(
                        "UPDATE events_rules SET next_fire_ms = $4 WHERE bus = $1 AND name = $2 AND next_fire_ms = $3",
                        &[bus, rule, from, to],
                    )
                    .await
                    .map_err(backend)?;
                }
                Change::ClaimFire(fire) => {
                    let claimed = tx.query_opt(CLAIM_FIRE, &[&fire.bus, &fire.rule, &fire.fire_ms]).await.map_err(backend)?.is_some();
                    if claimed {
                        // The rule's earlier claims are not needed any more: a time before
                        // this one can no longer be claimed.
                        tx.execute(
                            "DELETE FROM events_schedule_fires WHERE bus = $1 AND rule = $2 AND fire_ms < $3",
                            &[&fire.bus, &fire.rule, &fire.fire_ms],
                        )
                        .await
                        .map_err(backend)?;
                        won.push(fire.clone());
                    }
                }
                Change::DeleteRule { bus, rule } => {
                    for sql in [
                        "DELETE FROM events_targets WHERE bus = $1 AND rule = $2",
                        "DELETE FROM events_schedule_fires WHERE bus = $1 AND rule = $2",
                        "DELETE FROM events_rules WHERE bus = $1 AND name = $2",
                    ] {
                        tx.execute(sql, &[bus, rule]).await.map_err(backend)?;
                    }
                }
                Change::ReplaceTargets { bus, rule, targets } => {
                    tx.execute("DELETE FROM events_targets WHERE bus = $1 AND rule = $2", &[bus, rule]).await.map_err(backend)?;
                    for (position, target) in targets.iter().enumerate() {
                        let position = i32::try_from(position).expect("a rule has few targets");
                        tx.execute(
                            "INSERT INTO events_targets (bus, rule, id, position, doc) VALUES ($1, $2, $3, $4, $5)",
                            &[bus, rule, &target.id, &position, &to_json(target)?],
                        )
                        .await
                        .map_err(backend)?;
                    }
                }
                Change::DeleteTarget { bus, rule, id } => {
                    tx.execute("DELETE FROM events_targets WHERE bus = $1 AND rule = $2 AND id = $3", &[bus, rule, id])
                        .await
                        .map_err(backend)?;
                }
            }
        }
        tx.commit().await.map_err(backend)?;
        Ok(won)
    }

    /// Follows the other nodes' changes (see [`super::EventsStore::watch`]).
    pub(super) fn watch<T: Send + Sync + 'static>(&self, owner: Weak<T>, on: impl Fn() + Send + Sync + 'static) {
        pg::watch_tables(owner, self.url.clone(), self.db.clone(), &TABLES, on);
    }
}

#[cfg(test)]
mod tests {
    use crate::model::RuleInfo;
    use crate::store::{Backend, Changes, EventsStore};

    fn rule(name: &str) -> RuleInfo {
        RuleInfo {
            name: name.into(),
            arn: format!("arn:aws:events:us-east-1:000000000000:rule/{name}"),
            event_bus: "default".into(),
            schedule_expression: Some("rate(1 minute)".into()),
            event_pattern: None,
            state: "ENABLED".into(),
            description: None,
            role_arn: None,
            created_by: "000000000000".into(),
            tags: vec![],
        }
    }

    /// Claims (node, rule, time) one after another: whether each is won, and the claims kept.
    #[tokio::test]
    async fn a_fire_is_claimed_once() {
        let Some(url) = nimbus_store::pg::testing::fresh_database().await else { return };
        let nodes = [
            EventsStore::open_shared(&url, "000000000000", "node-a").await.expect("open a"),
            EventsStore::open_shared(&url, "000000000000", "node-b").await.expect("open b"),
        ];
        let mut changes = Changes::default();
        changes.put_rule(&rule("r"), Some(60_000));
        nodes[0].commit(changes).await.expect("put");
        let cases: &[(usize, &str, i64, bool)] = &[
            (0, "gone", 60_000, false), // no such rule
            (0, "r", 60_000, true),
            (1, "r", 60_000, false), // claimed by a
            (0, "r", 60_000, false), // by anyone
            (1, "r", 180_000, true),
            (0, "r", 120_000, false), // a later time was claimed
            (0, "r", 240_000, true),
        ];
        for &(node, name, fire_ms, want) in cases {
            let mut changes = Changes::default();
            changes.claim_fire("default", name, fire_ms);
            let won = nodes[node].commit(changes).await.expect("claim");
            assert_eq!(won.len() == 1, want, "node {node} claiming {name} at {fire_ms}");
        }
        let Backend::Shared(tables) = &nodes[0].backend else { unreachable!("a shared store") };
        let rows =
            tables.db.client().await.expect("client").query("SELECT fire_ms, node FROM events_schedule_fires", &[]).await.expect("read");
        let kept: Vec<(i64, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        assert_eq!(kept, [(240_000, "node-a".to_string())], "earlier claims are pruned");
        // Moving the next fire time is a compare-and-swap; a deleted rule takes its claims.
        let mut changes = Changes::default();
        changes.advance_fire("default", "r", 1, Some(5));
        changes.delete_rule("default", "r");
        changes.put_rule(&rule("r"), Some(7));
        changes.advance_fire("default", "r", 60_000, Some(8));
        nodes[1].commit(changes).await.expect("commit");
        let loaded = nodes[0].load().await.expect("load");
        assert_eq!(loaded.rules.iter().map(|(r, next)| (r.name.as_str(), *next)).collect::<Vec<_>>(), [("r", Some(7))]);
        let client = tables.db.client().await.expect("client");
        assert!(client.query("SELECT 1 FROM events_schedule_fires", &[]).await.expect("read").is_empty());
    }
}

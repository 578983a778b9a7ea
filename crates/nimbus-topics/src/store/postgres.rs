//! The topics in PostgreSQL, for nodes that share one database (`--store postgres://…`):
//! `topics.db`'s tables in the account's schema (named `sns_…` there). Changes to topics and
//! subscriptions are announced at commit (`nimbus_store::pg::NOTIFY_CHANGE`; a FIFO
//! publish's sequence number is not a change) and every node reloads its mirror. Each
//! pending delivery is held by the node that published it (`owner`, this process's
//! connection name, and `lease_until`, renewed for all of them at once every third of the
//! lease); a node whose leases lapsed died, and any other takes its deliveries over. A node
//! that lost a lease cannot finish or reschedule the delivery (the row names another owner).

use std::collections::HashMap;
use std::sync::Weak;
use std::time::Duration;

use nimbus_store::pg::{self, PgDatabase, PgSchema};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::{parse_message, to_json, DeliveryRow, SubscriptionRow, TopicRow, TopicTx};
use crate::error::TopicError;
use crate::message::StoredMessage;

/// The topics' tables in an account's schema: append migrations, never edit them.
const SCHEMA: PgSchema = PgSchema {
    name: "topics",
    migrations: &[
        // 1: the first release on PostgreSQL (2026-12): `topics.db`'s tables, deliveries held
        // under leases, topics and subscriptions announced.
        "
CREATE TABLE sns_topics (
    name TEXT PRIMARY KEY,
    fifo BOOLEAN NOT NULL,
    attributes TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '{}',
    deleted_subscriptions BIGINT NOT NULL DEFAULT 0,
    sequence BIGINT NOT NULL DEFAULT 0,
    -- Unix seconds.
    created_at BIGINT NOT NULL
);
CREATE TABLE sns_subscriptions (
    arn TEXT PRIMARY KEY,
    topic TEXT NOT NULL,
    protocol TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    confirmed BOOLEAN NOT NULL,
    token TEXT,
    attributes TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX sns_subscriptions_topic ON sns_subscriptions (topic);
CREATE TABLE sns_messages (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    doc TEXT NOT NULL
);
CREATE TABLE sns_deliveries (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message BIGINT NOT NULL,
    subscription TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    -- Epoch milliseconds (the publishing node's clock).
    next_at BIGINT NOT NULL,
    -- The node holding the delivery, until when (the database's clock).
    owner TEXT NOT NULL,
    lease_until TIMESTAMPTZ NOT NULL
);
CREATE INDEX sns_deliveries_message ON sns_deliveries (message);
CREATE INDEX sns_deliveries_owner ON sns_deliveries (owner);
CREATE INDEX sns_deliveries_lease ON sns_deliveries (lease_until);
CREATE TABLE sns_dedup (
    topic TEXT NOT NULL,
    dedup_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    sequence TEXT,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (topic, dedup_id)
);
CREATE TRIGGER sns_topics_changed AFTER INSERT OR DELETE OR UPDATE OF attributes, tags, deleted_subscriptions ON sns_topics
    FOR EACH ROW EXECUTE FUNCTION notify_change('name');
CREATE TRIGGER sns_subscriptions_changed AFTER INSERT OR UPDATE OR DELETE ON sns_subscriptions
    FOR EACH ROW EXECUTE FUNCTION notify_change('arn');
",
    ],
};

/// The tables whose announcements mean the mirror is stale.
pub(crate) const TABLES: &[&str] = &["sns_topics", "sns_subscriptions"];

/// Deliveries taken over at once, at most.
const TAKE_OVER: i64 = 1000;

fn backend(e: tokio_postgres::Error) -> TopicError {
    store(pg::backend(e))
}

fn store(e: nimbus_store::StoreError) -> TopicError {
    TopicError::Internal(format!("the topics' tables: {e}"))
}

/// An account's topic tables, the pools that reach them, and this node's leases.
pub(crate) struct SharedTopics {
    db: PgDatabase,
    /// For the change feed's own connection (holds the password: never shown).
    url: String,
    /// How long a delivery stays this node's without a renewal.
    lease: Duration,
}

impl SharedTopics {
    /// Opens and migrates the tables.
    pub(crate) async fn open(url: &str, account: &str, node: &str, lease: Duration) -> Result<SharedTopics, TopicError> {
        let db = PgDatabase::open(url, account, node).await.map_err(store)?;
        db.migrate(&SCHEMA).await.map_err(store)?;
        Ok(SharedTopics { db, url: url.to_string(), lease })
    }

    /// A pooled connection; `durable`: one whose commits wait for the WAL's flush
    /// (publishes, changes), else one whose commits do not (delivery bookkeeping: lost, a
    /// delivery is made again).
    pub(crate) async fn client(&self, durable: bool) -> Result<deadpool_postgres::Object, TopicError> {
        if durable { self.db.client().await } else { self.db.relaxed_client().await }.map_err(store)
    }

    /// Starts a transaction on `client`.
    pub(crate) async fn begin<'a>(&'a self, client: &'a mut deadpool_postgres::Object) -> Result<PgTx<'a>, TopicError> {
        Ok(PgTx { tx: client.transaction().await.map_err(backend)?, shared: self })
    }

    /// Calls `on` after every other node's change to topics or subscriptions (and once the
    /// feed listens, and after a cut), while `owner` lives.
    pub(crate) fn watch<T: Send + Sync + 'static>(&self, owner: Weak<T>, on: impl Fn() + Send + Sync + 'static) {
        pg::watch_tables(owner, self.url.clone(), self.db.clone(), TABLES, on);
    }

    /// The lease's length.
    pub(crate) fn lease(&self) -> Duration {
        self.lease
    }

    /// Renews every delivery this node holds.
    pub(crate) async fn renew(&self) -> Result<u64, TopicError> {
        let client = self.client(false).await?;
        client
            .execute(
                "UPDATE sns_deliveries SET lease_until = clock_timestamp() + make_interval(secs => $2) WHERE owner = $1",
                &[&self.db.node(), &self.lease.as_secs_f64()],
            )
            .await
            .map_err(backend)
    }

    /// Gives every delivery this node holds back at once (the node stops): other nodes take
    /// them over at their next look.
    pub(crate) async fn leave(&self) -> Result<u64, TopicError> {
        let client = self.client(true).await?;
        client.execute("UPDATE sns_deliveries SET lease_until = '-infinity' WHERE owner = $1", &[&self.db.node()]).await.map_err(backend)
    }
}

/// One transaction on the shared tables.
pub(crate) struct PgTx<'a> {
    tx: deadpool_postgres::Transaction<'a>,
    shared: &'a SharedTopics,
}

impl PgTx<'_> {
    pub(crate) async fn commit(self) -> Result<(), TopicError> {
        self.tx.commit().await.map_err(backend)
    }

    async fn rows(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, TopicError> {
        let statement = self.tx.prepare_cached(sql).await.map_err(backend)?;
        self.tx.query(&statement, params).await.map_err(backend)
    }

    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, TopicError> {
        let statement = self.tx.prepare_cached(sql).await.map_err(backend)?;
        self.tx.execute(&statement, params).await.map_err(backend)
    }

    fn me(&self) -> &str {
        self.shared.db.node()
    }

    fn lease_secs(&self) -> f64 {
        self.shared.lease.as_secs_f64()
    }
}

fn get<'r, T: tokio_postgres::types::FromSql<'r>>(r: &'r Row, i: usize) -> Result<T, TopicError> {
    r.try_get(i).map_err(backend)
}

impl TopicTx for PgTx<'_> {
    async fn all_topics(&mut self) -> Result<Vec<TopicRow>, TopicError> {
        let rows =
            self.rows("SELECT name, fifo, attributes, tags, deleted_subscriptions, created_at FROM sns_topics ORDER BY name", &[]).await?;
        rows.iter()
            .map(|r| {
                Ok(TopicRow {
                    name: get(r, 0)?,
                    fifo: get(r, 1)?,
                    attributes: serde_json::from_str(get(r, 2)?).unwrap_or_default(),
                    tags: serde_json::from_str(get(r, 3)?).unwrap_or_default(),
                    deleted_subscriptions: get::<i64>(r, 4)?.max(0) as u64,
                    created_at: get(r, 5)?,
                })
            })
            .collect()
    }

    async fn all_subscriptions(&mut self) -> Result<Vec<SubscriptionRow>, TopicError> {
        let rows = self
            .rows(
                "SELECT arn, topic, protocol, endpoint, confirmed, token, attributes FROM sns_subscriptions ORDER BY created_at, arn",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(SubscriptionRow {
                    arn: get(r, 0)?,
                    topic: get(r, 1)?,
                    protocol: get(r, 2)?,
                    endpoint: get(r, 3)?,
                    confirmed: get(r, 4)?,
                    token: get(r, 5)?,
                    attributes: serde_json::from_str(get(r, 6)?).unwrap_or_default(),
                })
            })
            .collect()
    }

    async fn insert_topic(&mut self, t: &TopicRow) -> Result<(), TopicError> {
        // Made by another node meanwhile: that topic stands.
        self.execute(
            "INSERT INTO sns_topics (name, fifo, attributes, tags, deleted_subscriptions, created_at) VALUES ($1, $2, $3, $4, 0, $5)
             ON CONFLICT (name) DO NOTHING",
            &[&t.name, &t.fifo, &to_json(&t.attributes)?, &to_json(&t.tags)?, &t.created_at],
        )
        .await?;
        Ok(())
    }

    async fn update_topic(&mut self, t: &TopicRow) -> Result<(), TopicError> {
        self.execute(
            "UPDATE sns_topics SET attributes = $2, tags = $3, deleted_subscriptions = $4 WHERE name = $1",
            &[&t.name, &to_json(&t.attributes)?, &to_json(&t.tags)?, &(t.deleted_subscriptions as i64)],
        )
        .await?;
        Ok(())
    }

    async fn delete_topic(&mut self, name: &str, topic_arn: &str) -> Result<(), TopicError> {
        self.execute("DELETE FROM sns_deliveries WHERE subscription IN (SELECT arn FROM sns_subscriptions WHERE topic = $1)", &[&name])
            .await?;
        self.execute("DELETE FROM sns_subscriptions WHERE topic = $1", &[&name]).await?;
        self.execute("DELETE FROM sns_dedup WHERE topic = $1", &[&topic_arn]).await?;
        self.execute("DELETE FROM sns_topics WHERE name = $1", &[&name]).await?;
        Ok(())
    }

    async fn upsert_subscription(&mut self, s: &SubscriptionRow, now: i64) -> Result<(), TopicError> {
        self.execute(
            "INSERT INTO sns_subscriptions (arn, topic, protocol, endpoint, confirmed, token, attributes, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (arn) DO UPDATE SET confirmed = EXCLUDED.confirmed, token = EXCLUDED.token, attributes = EXCLUDED.attributes",
            &[&s.arn, &s.topic, &s.protocol, &s.endpoint, &s.confirmed, &s.token, &to_json(&s.attributes)?, &now],
        )
        .await?;
        Ok(())
    }

    async fn delete_subscription(&mut self, arn: &str) -> Result<(), TopicError> {
        self.execute("DELETE FROM sns_subscriptions WHERE arn = $1", &[&arn]).await?;
        self.execute("DELETE FROM sns_deliveries WHERE subscription = $1", &[&arn]).await?;
        Ok(())
    }

    async fn lock_topic(&mut self, name: &str) -> Result<(), TopicError> {
        self.execute("SELECT name FROM sns_topics WHERE name = $1 FOR NO KEY UPDATE", &[&name]).await?;
        Ok(())
    }

    async fn next_sequence(&mut self, topic: &str) -> Result<i64, TopicError> {
        let rows = self.rows("UPDATE sns_topics SET sequence = sequence + 1 WHERE name = $1 RETURNING sequence", &[&topic]).await?;
        get(rows.first().ok_or_else(TopicError::topic_not_found)?, 0)
    }

    async fn insert_message(&mut self, m: &StoredMessage, subscriptions: &[String], now: i64) -> Result<(i64, Vec<i64>), TopicError> {
        if subscriptions.is_empty() {
            return Ok((0, Vec::new()));
        }
        let rows = self.rows("INSERT INTO sns_messages (doc) VALUES ($1) RETURNING id", &[&to_json(m)?]).await?;
        let row: i64 = get(rows.first().ok_or_else(|| TopicError::Internal("no id for a new message".into()))?, 0)?;
        let made = self
            .rows(
                "INSERT INTO sns_deliveries (message, subscription, attempts, next_at, owner, lease_until)
                 SELECT $1, s, 0, $3, $4, clock_timestamp() + make_interval(secs => $5) FROM unnest($2::text[]) AS s
                 RETURNING id, subscription",
                &[&row, &subscriptions, &now, &self.me(), &self.lease_secs()],
            )
            .await?;
        let ids: HashMap<String, i64> = made.iter().map(|r| Ok((get(r, 1)?, get(r, 0)?))).collect::<Result<_, TopicError>>()?;
        let ids = subscriptions
            .iter()
            .map(|s| ids.get(s).copied().ok_or_else(|| TopicError::Internal(format!("no delivery made for {s}"))))
            .collect::<Result<_, _>>()?;
        Ok((row, ids))
    }

    async fn finish_delivery(&mut self, id: i64, message_row: i64) -> Result<(), TopicError> {
        self.execute("DELETE FROM sns_deliveries WHERE id = $1 AND owner = $2", &[&id, &self.me()]).await?;
        // (Two nodes finishing a message's last deliveries at once may both leave it: the
        // sweep takes what no delivery needs.)
        self.execute(
            "DELETE FROM sns_messages WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM sns_deliveries WHERE message = $1)",
            &[&message_row],
        )
        .await?;
        Ok(())
    }

    async fn reschedule_delivery(&mut self, id: i64, attempts: u32, next_at: i64) -> Result<(), TopicError> {
        self.execute(
            "UPDATE sns_deliveries SET attempts = $2, next_at = $3 WHERE id = $1 AND owner = $4",
            &[&id, &i64::from(attempts), &next_at, &self.me()],
        )
        .await?;
        Ok(())
    }

    async fn pending_deliveries(&mut self) -> Result<Vec<(DeliveryRow, StoredMessage)>, TopicError> {
        let rows = self
            .rows(
                "WITH taken AS (
                    UPDATE sns_deliveries SET owner = $1, lease_until = clock_timestamp() + make_interval(secs => $2)
                    WHERE id IN (SELECT id FROM sns_deliveries WHERE lease_until < clock_timestamp() ORDER BY id LIMIT $3
                                 FOR UPDATE SKIP LOCKED)
                    RETURNING id, message, subscription, attempts, next_at)
                 SELECT t.id, t.message, t.subscription, t.attempts, t.next_at, m.doc
                 FROM taken t JOIN sns_messages m ON m.id = t.message ORDER BY t.id",
                &[&self.me(), &self.lease_secs(), &TAKE_OVER],
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let d = DeliveryRow {
                id: get(r, 0)?,
                message_row: get(r, 1)?,
                subscription: get(r, 2)?,
                attempts: get::<i64>(r, 3)?.max(0) as u32,
                next_at: get(r, 4)?,
            };
            if let Some(m) = parse_message(d.message_row, get(r, 5)?) {
                out.push((d, m));
            }
        }
        Ok(out)
    }

    async fn find_duplicate(&mut self, topic_arn: &str, dedup_id: &str, now: i64) -> Result<Option<(String, Option<String>)>, TopicError> {
        let rows = self
            .rows(
                "SELECT message_id, sequence FROM sns_dedup WHERE topic = $1 AND dedup_id = $2 AND expires_at > $3",
                &[&topic_arn, &dedup_id, &now],
            )
            .await?;
        rows.first().map(|r| Ok((get(r, 0)?, get(r, 1)?))).transpose()
    }

    async fn remember_dedup(
        &mut self,
        topic_arn: &str,
        dedup_id: &str,
        message_id: &str,
        sequence: Option<&str>,
        expires_at: i64,
    ) -> Result<(), TopicError> {
        self.execute(
            "INSERT INTO sns_dedup (topic, dedup_id, message_id, sequence, expires_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (topic, dedup_id) DO UPDATE
             SET message_id = EXCLUDED.message_id, sequence = EXCLUDED.sequence, expires_at = EXCLUDED.expires_at",
            &[&topic_arn, &dedup_id, &message_id, &sequence, &expires_at],
        )
        .await?;
        Ok(())
    }

    async fn sweep_dedup(&mut self, now: i64) -> Result<(), TopicError> {
        self.execute("DELETE FROM sns_dedup WHERE expires_at <= $1", &[&now]).await?;
        // Messages no delivery needs (their last two finished on two nodes at once).
        self.execute("DELETE FROM sns_messages m WHERE NOT EXISTS (SELECT 1 FROM sns_deliveries d WHERE d.message = m.id)", &[]).await?;
        Ok(())
    }
}

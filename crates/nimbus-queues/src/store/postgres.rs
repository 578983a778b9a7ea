//! The queues in PostgreSQL, for nodes that share one database (`--store postgres://…`):
//! `queues.db`'s tables in the account's schema (named `sqs_…` there). A standard queue's
//! receive locks the messages it picks (`FOR UPDATE SKIP LOCKED`): receives on several nodes
//! take different messages and never wait for each other; a FIFO queue's sends and receives
//! hold its row, one at a time, so a group's order and deduplication hold across nodes. A
//! commit that made messages receivable announces the queue on the schema's queue channel,
//! where other nodes' long polls hear it.

use std::collections::BTreeMap;
use std::sync::Weak;

use nimbus_store::pg::{self, Announcement, PgDatabase, PgSchema};
use tokio_postgres::Row;

use super::{attributes_json, parse_attributes, Mark, NewMessage, QueueRecord, QueueTx, StoredMessage, MESSAGE_COLUMNS, QUEUE_COLUMNS};
use crate::attributes::QueueSettings;
use crate::error::QueueError;
use crate::metrics::QueueGauges;

/// The queues' tables in an account's schema: append migrations, never edit them.
const SCHEMA: PgSchema = PgSchema {
    name: "queues",
    migrations: &[
        // 1: the first release on PostgreSQL (2026-12): `queues.db`'s tables.
        "
CREATE TABLE sqs_queues (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    fifo BOOLEAN NOT NULL,
    attributes TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '{}',
    -- Unix seconds.
    created_at BIGINT NOT NULL,
    modified_at BIGINT NOT NULL
);
-- Times in epoch milliseconds.
CREATE TABLE sqs_messages (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue_id BIGINT NOT NULL,
    message_id TEXT NOT NULL,
    body TEXT NOT NULL,
    body_md5 TEXT NOT NULL,
    attributes TEXT,
    system_attributes TEXT,
    sent_at BIGINT NOT NULL,
    available_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    receive_count BIGINT NOT NULL DEFAULT 0,
    first_receive_at BIGINT,
    receipt TEXT,
    group_id TEXT,
    dedup_id TEXT,
    sender_id TEXT NOT NULL,
    dlq_source_arn TEXT
);
CREATE INDEX sqs_messages_available ON sqs_messages (queue_id, available_at);
CREATE INDEX sqs_messages_expiry ON sqs_messages (expires_at);
CREATE TABLE sqs_dedup (
    queue_id BIGINT NOT NULL,
    dedup_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (queue_id, dedup_id)
);
",
    ],
};

/// The announcements' table field: what [`pg::listen`] hands on with the queue's name.
const ANNOUNCED: &str = "sqs";

fn backend(e: tokio_postgres::Error) -> QueueError {
    store(pg::backend(e))
}

fn store(e: nimbus_store::StoreError) -> QueueError {
    QueueError::Internal(format!("the queues' tables: {e}"))
}

/// An account's queue tables and the pools that reach them.
pub(crate) struct SharedQueues {
    db: PgDatabase,
    /// For the announcements' own connection (holds the password: never shown).
    url: String,
    /// The channel queues are announced on: the schema's name with `_queues`.
    channel: String,
}

impl SharedQueues {
    /// Opens and migrates the tables.
    pub(crate) async fn open(url: &str, account: &str, node: &str) -> Result<SharedQueues, QueueError> {
        let db = PgDatabase::open(url, account, node).await.map_err(store)?;
        db.migrate(&SCHEMA).await.map_err(store)?;
        let channel = format!("{}_queues", db.schema());
        Ok(SharedQueues { db, url: url.to_string(), channel })
    }

    /// A pooled connection; `durable`: one whose commits wait for the WAL's flush (sends,
    /// deletes), else one whose commits do not (receives, visibility: lost, a message is
    /// visible again early, as after a timeout).
    pub(crate) async fn client(&self, durable: bool) -> Result<deadpool_postgres::Object, QueueError> {
        if durable { self.db.client().await } else { self.db.relaxed_client().await }.map_err(store)
    }

    /// Starts a transaction on `client`.
    pub(crate) async fn begin<'a>(&'a self, client: &'a mut deadpool_postgres::Object) -> Result<PgTx<'a>, QueueError> {
        Ok(PgTx { tx: client.transaction().await.map_err(backend)?, shared: self, announced: Vec::new() })
    }

    /// Calls `on` with the name of each queue another node announces, and with None after
    /// the announcements were cut (any queue may have changed), while `owner` lives.
    pub(crate) fn listen<T: Send + Sync + 'static>(&self, owner: Weak<T>, on: impl Fn(Option<&str>) + Send + Sync + 'static) {
        tokio::spawn(pg::listen(owner, self.url.clone(), self.channel.clone(), self.db.node().to_string(), move |a| match a {
            Announcement::Change { table, key } if table == ANNOUNCED => on(Some(&key)),
            Announcement::Change { .. } => {}
            Announcement::Resync => on(None),
        }));
    }
}

/// One transaction on the shared tables.
pub(crate) struct PgTx<'a> {
    tx: deadpool_postgres::Transaction<'a>,
    shared: &'a SharedQueues,
    /// Queues to announce at commit.
    announced: Vec<String>,
}

impl PgTx<'_> {
    /// Announces what the transaction changed and commits it.
    pub(crate) async fn commit(self) -> Result<(), QueueError> {
        for queue in &self.announced {
            let payload = format!("{}\t{ANNOUNCED}\t{queue}", self.shared.db.node());
            self.tx.execute("SELECT pg_notify($1, $2)", &[&self.shared.channel, &payload]).await.map_err(backend)?;
        }
        self.tx.commit().await.map_err(backend)
    }

    async fn rows(&self, sql: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]) -> Result<Vec<Row>, QueueError> {
        let statement = self.tx.prepare_cached(sql).await.map_err(backend)?;
        self.tx.query(&statement, params).await.map_err(backend)
    }

    async fn execute(&self, sql: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]) -> Result<u64, QueueError> {
        let statement = self.tx.prepare_cached(sql).await.map_err(backend)?;
        self.tx.execute(&statement, params).await.map_err(backend)
    }

    async fn messages(&self, sql: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]) -> Result<Vec<StoredMessage>, QueueError> {
        self.rows(sql, params).await?.iter().map(message_from_row).collect()
    }
}

fn queue_from_row(r: &Row) -> Result<QueueRecord, QueueError> {
    let attributes: String = r.try_get(3).map_err(backend)?;
    let tags: String = r.try_get(4).map_err(backend)?;
    Ok(QueueRecord::from_columns(
        r.try_get(0).map_err(backend)?,
        r.try_get(1).map_err(backend)?,
        r.try_get(2).map_err(backend)?,
        &attributes,
        &tags,
        r.try_get(5).map_err(backend)?,
        r.try_get(6).map_err(backend)?,
    ))
}

fn message_from_row(r: &Row) -> Result<StoredMessage, QueueError> {
    let get_i64 = |i: usize| r.try_get::<_, i64>(i).map_err(backend);
    let get_text = |i: usize| r.try_get::<_, String>(i).map_err(backend);
    let get_opt = |i: usize| r.try_get::<_, Option<String>>(i).map_err(backend);
    Ok(StoredMessage {
        id: get_i64(0)?,
        message: NewMessage {
            message_id: get_text(2)?,
            body: get_text(3)?,
            body_md5: get_text(4)?,
            attributes: parse_attributes(get_opt(5)?),
            system_attributes: parse_attributes(get_opt(6)?),
            sent_at: get_i64(7)?,
            available_at: get_i64(8)?,
            expires_at: get_i64(9)?,
            group_id: get_opt(13)?,
            dedup_id: get_opt(14)?,
            sender_id: get_text(15)?,
            dlq_source_arn: get_opt(16)?,
        },
        receive_count: get_i64(10)? as u32,
        first_receive_at: r.try_get(11).map_err(backend)?,
        receipt: get_opt(12)?,
    })
}

impl QueueTx for PgTx<'_> {
    async fn find_queue(&mut self, name: &str) -> Result<Option<QueueRecord>, QueueError> {
        let rows = self.rows(&format!("SELECT {QUEUE_COLUMNS} FROM sqs_queues WHERE name = $1"), &[&name]).await?;
        rows.first().map(queue_from_row).transpose()
    }

    async fn all_queues(&mut self) -> Result<Vec<QueueRecord>, QueueError> {
        self.rows(&format!("SELECT {QUEUE_COLUMNS} FROM sqs_queues ORDER BY name"), &[]).await?.iter().map(queue_from_row).collect()
    }

    async fn insert_queue(
        &mut self,
        name: &str,
        settings: &QueueSettings,
        tags: &BTreeMap<String, String>,
        now_secs: i64,
    ) -> Result<QueueRecord, QueueError> {
        let (attrs, tags_json) = QueueRecord::documents(settings, tags)?;
        // Made by another node meanwhile: that queue stands (as if it had been first).
        self.execute(
            "INSERT INTO sqs_queues (name, fifo, attributes, tags, created_at, modified_at) VALUES ($1, $2, $3, $4, $5, $5)
             ON CONFLICT (name) DO NOTHING",
            &[&name, &settings.fifo, &attrs, &tags_json, &now_secs],
        )
        .await?;
        super::get_queue(self, name).await
    }

    async fn update_queue(&mut self, q: &QueueRecord) -> Result<(), QueueError> {
        let (attrs, tags) = QueueRecord::documents(&q.settings, &q.tags)?;
        self.execute(
            "UPDATE sqs_queues SET attributes = $2, tags = $3, modified_at = $4 WHERE id = $1",
            &[&q.id, &attrs, &tags, &q.modified_at],
        )
        .await?;
        Ok(())
    }

    async fn delete_queue(&mut self, id: i64) -> Result<(), QueueError> {
        self.execute("DELETE FROM sqs_messages WHERE queue_id = $1", &[&id]).await?;
        self.execute("DELETE FROM sqs_dedup WHERE queue_id = $1", &[&id]).await?;
        self.execute("DELETE FROM sqs_queues WHERE id = $1", &[&id]).await?;
        Ok(())
    }

    async fn purge(&mut self, id: i64) -> Result<(), QueueError> {
        self.execute("DELETE FROM sqs_messages WHERE queue_id = $1", &[&id]).await?;
        Ok(())
    }

    async fn gauges(&mut self, now: i64) -> Result<Vec<QueueGauges>, QueueError> {
        let rows = self
            .rows(
                "SELECT q.name,
                    COUNT(m.id) FILTER (WHERE m.available_at <= $1),
                    COUNT(m.id) FILTER (WHERE m.available_at > $1 AND m.receive_count > 0),
                    COUNT(m.id) FILTER (WHERE m.available_at > $1 AND m.receive_count = 0),
                    MIN(m.sent_at)
                 FROM sqs_queues q LEFT JOIN sqs_messages m ON m.queue_id = q.id AND m.expires_at > $1
                 GROUP BY q.id, q.name ORDER BY q.name",
                &[&now],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let count = |i: usize| r.try_get::<_, i64>(i).map_err(backend);
                Ok(QueueGauges::at(now, r.try_get(0).map_err(backend)?, (count(1)?, count(2)?, count(3)?), r.try_get(4).map_err(backend)?))
            })
            .collect()
    }

    async fn counts(&mut self, id: i64, now: i64) -> Result<(u64, u64, u64), QueueError> {
        let rows = self
            .rows(
                "SELECT
                    COUNT(*) FILTER (WHERE available_at <= $2),
                    COUNT(*) FILTER (WHERE available_at > $2 AND receive_count > 0),
                    COUNT(*) FILTER (WHERE available_at > $2 AND receive_count = 0)
                 FROM sqs_messages WHERE queue_id = $1 AND expires_at > $2",
                &[&id, &now],
            )
            .await?;
        let r = rows.first().ok_or_else(|| QueueError::Internal("no counts".into()))?;
        let count = |i: usize| r.try_get::<_, i64>(i).map(|n| n as u64).map_err(backend);
        Ok((count(0)?, count(1)?, count(2)?))
    }

    async fn insert_message(&mut self, queue_id: i64, m: &NewMessage) -> Result<i64, QueueError> {
        let rows = self
            .rows(
                "INSERT INTO sqs_messages (queue_id, message_id, body, body_md5, attributes, system_attributes, sent_at, available_at,
                                           expires_at, group_id, dedup_id, sender_id, dlq_source_arn)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
                &[
                    &queue_id,
                    &m.message_id,
                    &m.body,
                    &m.body_md5,
                    &attributes_json(&m.attributes)?,
                    &attributes_json(&m.system_attributes)?,
                    &m.sent_at,
                    &m.available_at,
                    &m.expires_at,
                    &m.group_id,
                    &m.dedup_id,
                    &m.sender_id,
                    &m.dlq_source_arn,
                ],
            )
            .await?;
        rows.first().ok_or_else(|| QueueError::Internal("no id for a new message".into()))?.try_get(0).map_err(backend)
    }

    async fn load_message(&mut self, queue_id: i64, id: i64) -> Result<Option<StoredMessage>, QueueError> {
        let found = self
            .messages(&format!("SELECT {MESSAGE_COLUMNS} FROM sqs_messages WHERE id = $1 AND queue_id = $2"), &[&id, &queue_id])
            .await?;
        Ok(found.into_iter().next())
    }

    async fn delete_message(&mut self, id: i64) -> Result<(), QueueError> {
        self.execute("DELETE FROM sqs_messages WHERE id = $1", &[&id]).await?;
        Ok(())
    }

    async fn mark_received(&mut self, marks: &[Mark]) -> Result<(), QueueError> {
        if marks.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = marks.iter().map(|m| m.id).collect();
        let receipts: Vec<&str> = marks.iter().map(|m| m.receipt.as_str()).collect();
        let available: Vec<i64> = marks.iter().map(|m| m.available_at).collect();
        let counts: Vec<i64> = marks.iter().map(|m| i64::from(m.count)).collect();
        let firsts: Vec<i64> = marks.iter().map(|m| m.first).collect();
        self.execute(
            "UPDATE sqs_messages m SET receipt = u.receipt, available_at = u.available_at, receive_count = u.count, first_receive_at = u.first
             FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[]) AS u(id, receipt, available_at, count, first)
             WHERE m.id = u.id",
            &[&ids, &receipts, &available, &counts, &firsts],
        )
        .await?;
        Ok(())
    }

    async fn set_available_at(&mut self, id: i64, available_at: i64) -> Result<(), QueueError> {
        self.execute("UPDATE sqs_messages SET available_at = $2 WHERE id = $1", &[&id, &available_at]).await?;
        Ok(())
    }

    async fn standard_candidates(&mut self, queue_id: i64, now: i64, limit: usize) -> Result<Vec<StoredMessage>, QueueError> {
        self.messages(
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM sqs_messages WHERE queue_id = $1 AND available_at <= $2 AND expires_at > $2
                 ORDER BY available_at, id LIMIT $3 FOR UPDATE SKIP LOCKED"
            ),
            &[&queue_id, &now, &(limit as i64)],
        )
        .await
    }

    async fn fifo_unavailable(&mut self, queue_id: i64, now: i64) -> Result<Vec<(String, i64, u32)>, QueueError> {
        let rows = self
            .rows(
                "SELECT COALESCE(group_id, ''), id, receive_count FROM sqs_messages
                 WHERE queue_id = $1 AND available_at > $2 AND expires_at > $2",
                &[&queue_id, &now],
            )
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0).map_err(backend)?, r.try_get(1).map_err(backend)?, r.try_get::<_, i64>(2).map_err(backend)? as u32)))
            .collect()
    }

    async fn fifo_available(
        &mut self,
        queue_id: i64,
        now: i64,
        blocked: &[String],
        limit: usize,
    ) -> Result<Vec<StoredMessage>, QueueError> {
        self.messages(
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM sqs_messages
                 WHERE queue_id = $1 AND available_at <= $2 AND expires_at > $2 AND COALESCE(group_id, '') <> ALL($3::text[])
                 ORDER BY id LIMIT $4"
            ),
            &[&queue_id, &now, &blocked, &(limit as i64)],
        )
        .await
    }

    async fn next_available(&mut self, queue_id: i64, now: i64) -> Result<Option<i64>, QueueError> {
        let rows =
            self.rows("SELECT MIN(available_at) FROM sqs_messages WHERE queue_id = $1 AND available_at > $2", &[&queue_id, &now]).await?;
        rows.first().map_or(Ok(None), |r| r.try_get(0).map_err(backend))
    }

    async fn find_duplicate(&mut self, queue_id: i64, dedup_id: &str, now: i64) -> Result<Option<(String, i64)>, QueueError> {
        let rows = self
            .rows(
                "SELECT message_id, sequence FROM sqs_dedup WHERE queue_id = $1 AND dedup_id = $2 AND expires_at > $3",
                &[&queue_id, &dedup_id, &now],
            )
            .await?;
        rows.first().map(|r| Ok((r.try_get(0).map_err(backend)?, r.try_get(1).map_err(backend)?))).transpose()
    }

    async fn remember_dedup(
        &mut self,
        queue_id: i64,
        dedup_id: &str,
        message_id: &str,
        sequence: i64,
        expires_at: i64,
    ) -> Result<(), QueueError> {
        self.execute(
            "INSERT INTO sqs_dedup (queue_id, dedup_id, message_id, sequence, expires_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (queue_id, dedup_id) DO UPDATE
             SET message_id = EXCLUDED.message_id, sequence = EXCLUDED.sequence, expires_at = EXCLUDED.expires_at",
            &[&queue_id, &dedup_id, &message_id, &sequence, &expires_at],
        )
        .await?;
        Ok(())
    }

    async fn sweep(&mut self, now: i64) -> Result<usize, QueueError> {
        // Rows another node is receiving or sweeping are left for the next sweep.
        let n = self
            .execute(
                "DELETE FROM sqs_messages WHERE id IN (SELECT id FROM sqs_messages WHERE expires_at <= $1 FOR UPDATE SKIP LOCKED)",
                &[&now],
            )
            .await?;
        self.execute("DELETE FROM sqs_dedup WHERE expires_at <= $1", &[&now]).await?;
        Ok(n as usize)
    }

    async fn lock_fifo(&mut self, queue_id: i64) -> Result<(), QueueError> {
        self.execute("SELECT id FROM sqs_queues WHERE id = $1 FOR NO KEY UPDATE", &[&queue_id]).await?;
        Ok(())
    }

    fn announce(&mut self, queue: &str) {
        if !self.announced.iter().any(|q| q == queue) {
            self.announced.push(queue.to_string());
        }
    }
}

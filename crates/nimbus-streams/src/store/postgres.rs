//! The Kinesis streams in PostgreSQL, for nodes that share one database (`--store
//! postgres://…`): `streams.db`'s rows in the account's schema (named `kin_…` there), so a
//! record put on one node is read on every node and a stream's shards are one set.
//!
//! Several nodes write at once, where SQLite has one writer thread: a put holds its stream
//! (an advisory lock on the name, shared; a reshard, a retention or tag change and a
//! deletion take it exclusively, so no put routes by shards that are being closed) and the
//! rows of the shards it writes (`FOR UPDATE`, in index order, until its commit), so a
//! shard's indexes are given out one writer at a time and commit in their order: a reader
//! that saw index N never later finds a smaller one appear.

use std::collections::HashMap;
use std::sync::Arc;

use nimbus_store::pg::{self, PgDatabase, PgSchema};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::{RecordRow, ShardRow, StreamRow, StreamTx};
use crate::error::StreamError;

/// The streams' rows in an account's schema: append migrations, never edit them.
const SCHEMA: PgSchema = PgSchema {
    name: "kinesis",
    migrations: &[
        // 1: the first release on PostgreSQL (2026-12): `streams.db`'s tables.
        "
CREATE TABLE kin_streams (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    on_demand BOOLEAN NOT NULL,
    retention_hours BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    tags TEXT NOT NULL DEFAULT '{}',
    next_shard BIGINT NOT NULL
);
CREATE TABLE kin_shards (
    stream_id BIGINT NOT NULL,
    ix BIGINT NOT NULL,
    parent BIGINT,
    adjacent_parent BIGINT,
    start_hash TEXT NOT NULL,
    end_hash TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    closed_ms BIGINT,
    last_seq BIGINT NOT NULL DEFAULT 0,
    last_arrival_ms BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (stream_id, ix)
);
CREATE TABLE kin_records (
    stream_id BIGINT NOT NULL,
    shard BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    arrival_ms BIGINT NOT NULL,
    partition_key TEXT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (stream_id, shard, seq)
);
",
    ],
};

fn backend(e: tokio_postgres::Error) -> StreamError {
    store(pg::backend(e))
}

fn store(e: nimbus_store::StoreError) -> StreamError {
    StreamError::Internal(format!("the streams' database: {e}"))
}

fn internal(e: impl std::fmt::Display) -> StreamError {
    StreamError::Internal(e.to_string())
}

/// An account's streams in a shared database.
pub struct SharedStreams {
    db: PgDatabase,
    /// Woken after this node's commits that stored records (a shard's poller here waits on
    /// it; other nodes' puts reach it at its next poll).
    changed: Arc<tokio::sync::Notify>,
}

impl SharedStreams {
    /// Opens and migrates the tables.
    pub(crate) async fn open(url: &str, account: &str) -> Result<SharedStreams, StreamError> {
        let node = format!("nimbus-kinesis-{}", uuid::Uuid::new_v4().simple());
        let db = PgDatabase::open(url, account, &node).await.map_err(store)?;
        db.migrate(&SCHEMA).await.map_err(store)?;
        Ok(SharedStreams { db, changed: Default::default() })
    }

    /// A pooled connection; `durable`: one whose commits wait for the WAL's flush.
    pub(crate) async fn client(&self, durable: bool) -> Result<deadpool_postgres::Object, StreamError> {
        if durable { self.db.client().await } else { self.db.relaxed_client().await }.map_err(store)
    }

    /// Starts a transaction on `client`.
    pub(crate) async fn begin<'a>(&'a self, client: &'a mut deadpool_postgres::Object) -> Result<PgTx<'a>, StreamError> {
        Ok(PgTx { tx: client.transaction().await.map_err(backend)?, shared: self, wrote: false })
    }

    pub(crate) fn changed(&self) -> Arc<tokio::sync::Notify> {
        self.changed.clone()
    }
}

/// One transaction on the shared streams.
pub(crate) struct PgTx<'a> {
    tx: deadpool_postgres::Transaction<'a>,
    shared: &'a SharedStreams,
    /// It stored records (its commit wakes this node's pollers).
    wrote: bool,
}

impl PgTx<'_> {
    pub(crate) async fn commit(self) -> Result<(), StreamError> {
        self.tx.commit().await.map_err(backend)?;
        if self.wrote {
            self.shared.changed.notify_waiters();
        }
        Ok(())
    }

    async fn rows(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, StreamError> {
        let statement = self.tx.prepare_cached(sql).await.map_err(backend)?;
        self.tx.query(&statement, params).await.map_err(backend)
    }

    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, StreamError> {
        let statement = self.tx.prepare_cached(sql).await.map_err(backend)?;
        self.tx.execute(&statement, params).await.map_err(backend)
    }

    /// The stream named `name`, after taking its advisory lock as `hold` says.
    async fn stream_named(&self, name: &str, hold: Option<pg::Hold>) -> Result<Option<StreamRow>, StreamError> {
        if let Some(how) = hold {
            pg::hold(&self.tx, stream_lock(self.shared.db.schema(), name), how).await.map_err(store)?;
        }
        let rows = self.rows(&format!("SELECT {STREAM_COLUMNS} FROM kin_streams WHERE name = $1"), &[&name]).await?;
        rows.first().map(stream_row).transpose()
    }
}

/// A stream's advisory lock (by schema and name; the account's quota lock is the name
/// `"\0quota"`, which no stream has).
fn stream_lock(schema: &str, name: &str) -> i64 {
    pg::advisory_key(&[b"kinesis", schema.as_bytes(), name.as_bytes()])
}

fn get<'r, T: tokio_postgres::types::FromSql<'r>>(r: &'r Row, i: usize) -> Result<T, StreamError> {
    r.try_get(i).map_err(backend)
}

const STREAM_COLUMNS: &str = "id, name, on_demand, retention_hours, created_ms, tags, next_shard";

fn stream_row(r: &Row) -> Result<StreamRow, StreamError> {
    let tags: String = get(r, 5)?;
    Ok(StreamRow {
        id: get(r, 0)?,
        name: get(r, 1)?,
        on_demand: get(r, 2)?,
        retention_hours: get::<i64>(r, 3)? as u32,
        created_ms: get(r, 4)?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        next_shard: get::<i64>(r, 6)? as u32,
    })
}

const SHARD_COLUMNS: &str = "ix, parent, adjacent_parent, start_hash, end_hash, created_ms, closed_ms, last_seq, last_arrival_ms";

fn hash(text: &str) -> Result<u128, StreamError> {
    u128::from_str_radix(text, 16).map_err(|e| StreamError::Internal(format!("a stored hash key: {e}")))
}

fn shard_row(r: &Row) -> Result<ShardRow, StreamError> {
    Ok(ShardRow {
        ix: get::<i64>(r, 0)? as u32,
        parent: get::<Option<i64>>(r, 1)?.map(|p| p as u32),
        adjacent_parent: get::<Option<i64>>(r, 2)?.map(|p| p as u32),
        start: hash(get(r, 3)?)?,
        end: hash(get(r, 4)?)?,
        created_ms: get(r, 5)?,
        closed_ms: get(r, 6)?,
        last_seq: get::<i64>(r, 7)? as u64,
        last_arrival_ms: get(r, 8)?,
    })
}

impl StreamTx for PgTx<'_> {
    async fn find_stream(&mut self, name: &str) -> Result<Option<StreamRow>, StreamError> {
        self.stream_named(name, None).await
    }

    async fn find_stream_for_write(&mut self, name: &str) -> Result<Option<StreamRow>, StreamError> {
        self.stream_named(name, Some(pg::Hold::Shared)).await
    }

    async fn find_stream_for_change(&mut self, name: &str) -> Result<Option<StreamRow>, StreamError> {
        self.stream_named(name, Some(pg::Hold::Exclusive)).await
    }

    async fn stream_by_id(&mut self, id: i64) -> Result<Option<StreamRow>, StreamError> {
        let rows = self.rows(&format!("SELECT {STREAM_COLUMNS} FROM kin_streams WHERE id = $1"), &[&id]).await?;
        rows.first().map(stream_row).transpose()
    }

    async fn all_streams(&mut self) -> Result<Vec<StreamRow>, StreamError> {
        let rows = self.rows(&format!("SELECT {STREAM_COLUMNS} FROM kin_streams ORDER BY name COLLATE \"C\""), &[]).await?;
        rows.iter().map(stream_row).collect()
    }

    async fn insert_stream(&mut self, s: &StreamRow) -> Result<Option<i64>, StreamError> {
        // Two nodes making one name: the second waits for the first's commit, then is told.
        let rows = self
            .rows(
                "INSERT INTO kin_streams (name, on_demand, retention_hours, created_ms, tags, next_shard) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (name) DO NOTHING RETURNING id",
                &[
                    &s.name,
                    &s.on_demand,
                    &i64::from(s.retention_hours),
                    &s.created_ms,
                    &serde_json::to_string(&s.tags).map_err(internal)?,
                    &i64::from(s.next_shard),
                ],
            )
            .await?;
        rows.first().map(|r| get(r, 0)).transpose()
    }

    async fn update_stream(&mut self, s: &StreamRow) -> Result<(), StreamError> {
        self.execute(
            "UPDATE kin_streams SET retention_hours = $2, tags = $3, next_shard = $4 WHERE id = $1",
            &[&s.id, &i64::from(s.retention_hours), &serde_json::to_string(&s.tags).map_err(internal)?, &i64::from(s.next_shard)],
        )
        .await?;
        Ok(())
    }

    async fn delete_stream(&mut self, id: i64) -> Result<(), StreamError> {
        self.execute("DELETE FROM kin_records WHERE stream_id = $1", &[&id]).await?;
        self.execute("DELETE FROM kin_shards WHERE stream_id = $1", &[&id]).await?;
        self.execute("DELETE FROM kin_streams WHERE id = $1", &[&id]).await?;
        Ok(())
    }

    async fn shards(&mut self, stream_id: i64) -> Result<Vec<ShardRow>, StreamError> {
        let rows = self.rows(&format!("SELECT {SHARD_COLUMNS} FROM kin_shards WHERE stream_id = $1 ORDER BY ix"), &[&stream_id]).await?;
        rows.iter().map(shard_row).collect()
    }

    async fn shard(&mut self, stream_id: i64, ix: u32) -> Result<Option<ShardRow>, StreamError> {
        let rows = self
            .rows(&format!("SELECT {SHARD_COLUMNS} FROM kin_shards WHERE stream_id = $1 AND ix = $2"), &[&stream_id, &i64::from(ix)])
            .await?;
        rows.first().map(shard_row).transpose()
    }

    async fn open_shard_count(&mut self) -> Result<u32, StreamError> {
        // The account's quota lock: requests that add shards count one after the other.
        pg::hold(&self.tx, stream_lock(self.shared.db.schema(), "\0quota"), pg::Hold::Exclusive).await.map_err(store)?;
        let rows = self.rows("SELECT COUNT(*)::bigint FROM kin_shards WHERE closed_ms IS NULL", &[]).await?;
        Ok(get::<i64>(&rows[0], 0)? as u32)
    }

    async fn insert_shard(&mut self, stream_id: i64, s: &ShardRow) -> Result<(), StreamError> {
        self.execute(
            "INSERT INTO kin_shards (stream_id, ix, parent, adjacent_parent, start_hash, end_hash, created_ms, closed_ms, last_seq, last_arrival_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[
                &stream_id,
                &i64::from(s.ix),
                &s.parent.map(i64::from),
                &s.adjacent_parent.map(i64::from),
                &format!("{:032x}", s.start),
                &format!("{:032x}", s.end),
                &s.created_ms,
                &s.closed_ms,
                &(s.last_seq as i64),
                &s.last_arrival_ms,
            ],
        )
        .await?;
        Ok(())
    }

    async fn close_shard(&mut self, stream_id: i64, ix: u32, closed_ms: i64) -> Result<(), StreamError> {
        self.execute("UPDATE kin_shards SET closed_ms = $3 WHERE stream_id = $1 AND ix = $2", &[&stream_id, &i64::from(ix), &closed_ms])
            .await?;
        Ok(())
    }

    async fn shard_heads(&mut self, stream_id: i64, shards: &[u32]) -> Result<HashMap<u32, (u64, i64)>, StreamError> {
        let ixs: Vec<i64> = shards.iter().map(|ix| i64::from(*ix)).collect();
        let rows = self
            .rows(
                "SELECT ix, last_seq, last_arrival_ms FROM kin_shards WHERE stream_id = $1 AND ix = ANY($2) ORDER BY ix FOR UPDATE",
                &[&stream_id, &ixs],
            )
            .await?;
        rows.iter().map(|r| Ok((get::<i64>(r, 0)? as u32, (get::<i64>(r, 1)? as u64, get(r, 2)?)))).collect()
    }

    async fn advance_shards(&mut self, stream_id: i64, heads: &[(u32, u64, i64)]) -> Result<(), StreamError> {
        if heads.is_empty() {
            return Ok(());
        }
        let ixs: Vec<i64> = heads.iter().map(|h| i64::from(h.0)).collect();
        let seqs: Vec<i64> = heads.iter().map(|h| h.1 as i64).collect();
        let arrivals: Vec<i64> = heads.iter().map(|h| h.2).collect();
        self.execute(
            "UPDATE kin_shards AS s SET last_seq = h.seq, last_arrival_ms = h.arrival
             FROM unnest($2::bigint[], $3::bigint[], $4::bigint[]) AS h(ix, seq, arrival)
             WHERE s.stream_id = $1 AND s.ix = h.ix",
            &[&stream_id, &ixs, &seqs, &arrivals],
        )
        .await?;
        Ok(())
    }

    async fn insert_records(&mut self, stream_id: i64, records: &[(u32, RecordRow)]) -> Result<(), StreamError> {
        if records.is_empty() {
            return Ok(());
        }
        self.wrote = true;
        let shards: Vec<i64> = records.iter().map(|(s, _)| i64::from(*s)).collect();
        let seqs: Vec<i64> = records.iter().map(|(_, r)| r.seq as i64).collect();
        let arrivals: Vec<i64> = records.iter().map(|(_, r)| r.arrival_ms).collect();
        let keys: Vec<&str> = records.iter().map(|(_, r)| r.partition_key.as_str()).collect();
        let data: Vec<&[u8]> = records.iter().map(|(_, r)| r.data.as_slice()).collect();
        self.execute(
            "INSERT INTO kin_records (stream_id, shard, seq, arrival_ms, partition_key, data)
             SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::bytea[])",
            &[&stream_id, &shards, &seqs, &arrivals, &keys, &data],
        )
        .await?;
        Ok(())
    }

    async fn read_records(
        &mut self,
        stream_id: i64,
        shard: u32,
        from: u64,
        min_arrival_ms: i64,
        limit: usize,
    ) -> Result<Vec<RecordRow>, StreamError> {
        let rows = self
            .rows(
                "SELECT seq, arrival_ms, partition_key, data FROM kin_records
                 WHERE stream_id = $1 AND shard = $2 AND seq >= $3 AND arrival_ms >= $4 ORDER BY seq LIMIT $5",
                &[&stream_id, &i64::from(shard), &(from.min(i64::MAX as u64) as i64), &min_arrival_ms, &(limit as i64)],
            )
            .await?;
        rows.iter()
            .map(|r| Ok(RecordRow { seq: get::<i64>(r, 0)? as u64, arrival_ms: get(r, 1)?, partition_key: get(r, 2)?, data: get(r, 3)? }))
            .collect()
    }

    async fn first_from(&mut self, stream_id: i64, shard: u32, from: u64) -> Result<Option<(u64, i64)>, StreamError> {
        let rows = self
            .rows(
                "SELECT seq, arrival_ms FROM kin_records WHERE stream_id = $1 AND shard = $2 AND seq >= $3 ORDER BY seq LIMIT 1",
                &[&stream_id, &i64::from(shard), &(from.min(i64::MAX as u64) as i64)],
            )
            .await?;
        rows.first().map(|r| Ok((get::<i64>(r, 0)? as u64, get(r, 1)?))).transpose()
    }

    async fn delete_records_before(&mut self, stream_id: i64, shard: u32, keep_from: u64) -> Result<usize, StreamError> {
        let n = self
            .execute(
                "DELETE FROM kin_records WHERE stream_id = $1 AND shard = $2 AND seq < $3",
                &[&stream_id, &i64::from(shard), &(keep_from.min(i64::MAX as u64) as i64)],
            )
            .await?;
        Ok(n as usize)
    }

    async fn delete_shard(&mut self, stream_id: i64, shard: u32) -> Result<usize, StreamError> {
        let n = self.execute("DELETE FROM kin_records WHERE stream_id = $1 AND shard = $2", &[&stream_id, &i64::from(shard)]).await?;
        self.execute("DELETE FROM kin_shards WHERE stream_id = $1 AND ix = $2", &[&stream_id, &i64::from(shard)]).await?;
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    //! Two services on one database stand for two nodes (each its own pool).

    use std::sync::Arc;

    use crate::{CreateStream, NewRecord, PutOutcome, ReadFrom, StreamConfig, StreamError, StreamMode, StreamService};

    async fn nodes() -> Option<(Arc<StreamService>, Arc<StreamService>)> {
        let url = nimbus_store::pg::testing::fresh_database().await?;
        let config = StreamConfig {
            shard_limits: crate::throttle::Limits { bytes_per_second: u64::MAX / 4, records_per_second: u64::MAX / 4 },
            ..StreamConfig::default()
        };
        let a = StreamService::open_shared(&url, "us-east-1", "000000000000", config).await.expect("a opens");
        let b = StreamService::open_shared(&url, "us-east-1", "000000000000", config).await.expect("b opens");
        Some((a, b))
    }

    fn create(name: &str, shards: u32) -> CreateStream {
        CreateStream { name: name.into(), shard_count: Some(shards), mode: StreamMode::Provisioned, tags: Default::default() }
    }

    fn record(key: &str, data: String) -> NewRecord {
        NewRecord { data: data.into_bytes(), partition_key: key.into(), explicit_hash_key: None }
    }

    #[tokio::test]
    async fn the_shard_quota_holds_across_nodes() {
        let Some(url) = nimbus_store::pg::testing::fresh_database().await else { return };
        let config = StreamConfig { shard_quota: 10, ..StreamConfig::default() };
        let a = StreamService::open_shared(&url, "us-east-1", "000000000000", config).await.unwrap();
        let b = StreamService::open_shared(&url, "us-east-1", "000000000000", config).await.unwrap();
        // Eight streams of 3 shards asked for at once on two nodes: 3 fit in 10.
        let asks = (0..8)
            .map(|i| {
                let node = if i % 2 == 0 { a.clone() } else { b.clone() };
                tokio::spawn(async move { node.create_stream(create(&format!("s{i}"), 3)).await })
            })
            .collect::<Vec<_>>();
        let mut made = 0;
        for ask in asks {
            match ask.await.unwrap() {
                Ok(()) => made += 1,
                Err(StreamError::LimitExceeded(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(made, 3);
    }

    #[tokio::test]
    async fn records_put_on_both_nodes_read_in_one_order_on_either() {
        let Some((a, b)) = nodes().await else { return };
        let (x, y) = tokio::join!(a.create_stream(create("clicks", 1)), b.create_stream(create("clicks", 1)));
        assert!(
            matches!((&x, &y), (Ok(()), Err(StreamError::ResourceInUse(_))) | (Err(StreamError::ResourceInUse(_)), Ok(()))),
            "{x:?} {y:?}"
        );
        // 60 puts racing from both nodes into the one shard: indexes 1..=60, none shared,
        // read back in index order from either node.
        let puts = (0..60)
            .map(|i| {
                let node = if i % 2 == 0 { a.clone() } else { b.clone() };
                tokio::spawn(async move { node.put_records("clicks", vec![record("k", format!("r{i}"))]).await })
            })
            .collect::<Vec<_>>();
        for p in puts {
            assert!(matches!(p.await.unwrap().unwrap()[0], PutOutcome::Stored { .. }));
        }
        let (page, next) = b.read_shard("clicks", 0, ReadFrom::TrimHorizon, 1000).await.unwrap();
        let indexes: Vec<u64> = page.records.iter().map(|r| r.index).collect();
        assert_eq!(indexes, (1..=60).collect::<Vec<_>>());
        assert_eq!(next, Some(61));
        assert!(page.records.windows(2).all(|w| w[0].arrival_ms <= w[1].arrival_ms));
        let mut seen: Vec<String> = page.records.iter().map(|r| String::from_utf8(r.data.clone()).unwrap()).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 60);
        // A reshard on one node routes the other's next puts by the new shards.
        a.update_shard_count("clicks", 2).await.unwrap();
        let shards = b.shards("clicks").await.unwrap();
        assert_eq!(shards.iter().filter(|s| s.closed_ms.is_none()).count(), 2);
        let out = b.put_records("clicks", (0..20).map(|i| record(&format!("key{i}"), format!("s{i}"))).collect()).await.unwrap();
        for o in &out {
            let PutOutcome::Stored { shard_id, .. } = o else { panic!("{o:?}") };
            assert_ne!(shard_id, "shardId-000000000000", "the closed parent takes nothing");
        }
        // The parent is read to its end, then it is over.
        let (_, next) = a.read_shard("clicks", 0, ReadFrom::Index(61), 1000).await.unwrap();
        assert_eq!(next, None);
    }
}

//! CloudWatch's metric store of nodes that share one PostgreSQL database (`--store
//! postgres://…`): the series, their one-minute and one-second datapoints, the alarms and
//! their history are every node's. Each node still sums the server's own datapoints in
//! memory and writes them every few seconds; a write merges into the stored datapoint under
//! its row lock (rows taken in one order, so two nodes' flushes never deadlock), so a
//! datapoint is the sum of every node's values. The alarms are mirrored in memory on every
//! node (reloaded when another node changes one) and evaluated by one node at a time, the
//! one holding the evaluator's lease ([`EVALUATOR_LEASE`]); a change of configuration never
//! overwrites the stored state, and a change of state only the state.

use std::collections::BTreeMap;

use nimbus_store::partitions::TimePartitions;
use nimbus_store::pg::{self, PgDatabase, PgSchema};

use crate::alarms::Alarm;
use crate::cloudwatch::{
    chrono_now_ms as now_ms, oldest_retained, Aggregate, Grain, HistoryItem, Period, SeriesKey, SeriesQuery, HISTORY_RETENTION_MS,
};

/// The metric tables in an account's schema: append migrations, never edit them.
const SCHEMA: PgSchema = PgSchema {
    name: "metrics",
    migrations: &[
        // 1: the first release on PostgreSQL (2026-12): metrics.db's tables at its migration 4,
        // the alarms announced at commit, and the evaluator's lease.
        "
CREATE TABLE metric_series (
    id BIGSERIAL PRIMARY KEY,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    dimensions TEXT NOT NULL,
    UNIQUE (namespace, name, dimensions)
);
-- One-minute datapoints (`at`: the minute's start, ms) and one-second ones (the second's).
CREATE TABLE metric_points (
    series BIGINT NOT NULL,
    unit TEXT NOT NULL,
    at BIGINT NOT NULL,
    count DOUBLE PRECISION NOT NULL,
    sum DOUBLE PRECISION NOT NULL,
    min DOUBLE PRECISION NOT NULL,
    max DOUBLE PRECISION NOT NULL,
    histogram TEXT NOT NULL,
    PRIMARY KEY (series, unit, at)
);
CREATE INDEX metric_points_by_time ON metric_points (at);
CREATE TABLE metric_fine_points (LIKE metric_points INCLUDING ALL);
CREATE TABLE metric_alarms (name TEXT PRIMARY KEY, doc JSONB NOT NULL);
CREATE TRIGGER metric_alarms_changed AFTER INSERT OR UPDATE OR DELETE ON metric_alarms FOR EACH ROW EXECUTE FUNCTION notify_change('name');
CREATE TABLE metric_alarm_history (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    summary TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX metric_alarm_history_by_time ON metric_alarm_history (at);
-- The node evaluating the alarms, until its lease lapses unrenewed.
CREATE TABLE metric_evaluator (id INTEGER PRIMARY KEY CHECK (id = 1), node TEXT NOT NULL, until TIMESTAMPTZ NOT NULL);
",
        // 2: datapoints partitioned by time (one-minute ones by UTC day, one-second ones by
        // hour: metric_minute_points_d<day>, metric_second_points_h<hour>), so retention drops
        // partitions; what was stored moves over.
        "
CREATE TABLE metric_minute_points (LIKE metric_points, PRIMARY KEY (series, unit, at)) PARTITION BY RANGE (at);
CREATE TABLE metric_second_points (LIKE metric_points, PRIMARY KEY (series, unit, at)) PARTITION BY RANGE (at);
DO $$
DECLARE
    part RECORD;
BEGIN
    FOR part IN
        SELECT 'metric_minute_points' AS parent, 'd' AS letter, 86400000::BIGINT AS width, n
        FROM (SELECT DISTINCT floor(at / 86400000.0)::BIGINT AS n FROM metric_points) d
        UNION ALL
        SELECT 'metric_second_points', 'h', 3600000::BIGINT, n
        FROM (SELECT DISTINCT floor(at / 3600000.0)::BIGINT AS n FROM metric_fine_points) h
    LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%s) TO (%s)',
            part.parent || '_' || part.letter || CASE WHEN part.n < 0 THEN 'm' || (-part.n)::TEXT ELSE part.n::TEXT END,
            part.parent, part.n * part.width, (part.n + 1) * part.width);
    END LOOP;
END $$;
INSERT INTO metric_minute_points SELECT * FROM metric_points;
INSERT INTO metric_second_points SELECT * FROM metric_fine_points;
DROP TABLE metric_points;
DROP TABLE metric_fine_points;
",
    ],
};

/// The table whose announcements say an alarm changed.
const TABLES: &[&str] = &["metric_alarms"];

/// How long a node evaluates the alarms after it last took the lease, at least: another node
/// takes over this long after the evaluator stops renewing (it renews at every evaluation;
/// the lease is three evaluation intervals when that is longer, `MetricStore::evaluate_every`).
pub const EVALUATOR_LEASE: std::time::Duration = std::time::Duration::from_secs(15);

/// The table of a grain's datapoints.
fn table(grain: Grain) -> &'static str {
    match grain {
        Grain::Minute => "metric_minute_points",
        Grain::Second => "metric_second_points",
    }
}

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// The alarm fields that are its state (the rest is its configuration).
const STATE_FIELDS: [&str; 4] = ["state", "state_reason", "state_updated_ms", "state_transitioned_ms"];

pub(crate) struct PgMetrics {
    db: PgDatabase,
    url: String,
    /// The partitions of the one-minute datapoints (a day each) and of the one-second ones (an
    /// hour each).
    minutes: TimePartitions,
    seconds: TimePartitions,
    /// The evaluator's lease, in milliseconds.
    lease_ms: std::sync::atomic::AtomicU64,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn pg_err(e: tokio_postgres::Error) -> String {
    pg::backend(e).to_string()
}

fn histogram_text(a: &Aggregate) -> String {
    serde_json::to_string(&a.histogram.iter().map(|(b, n)| (*b, *n)).collect::<Vec<_>>()).unwrap_or_default()
}

fn aggregate_of(r: &tokio_postgres::Row, histogram: bool) -> Aggregate {
    let pairs: Vec<(i32, f64)> = if histogram { serde_json::from_str(r.get::<_, &str>(4)).unwrap_or_default() } else { Vec::new() };
    Aggregate { count: r.get(0), sum: r.get(1), min: r.get(2), max: r.get(3), histogram: pairs.into_iter().collect() }
}

fn alarm_doc(alarm: &Alarm) -> serde_json::Value {
    serde_json::to_value(alarm).expect("an alarm serializes")
}

impl PgMetrics {
    /// Opens (and migrates) the metric tables of `account` on `url`.
    pub(crate) async fn open(url: &str, account: &str) -> Result<PgMetrics, String> {
        // This node's connections' name, which the change feed's announcements quote.
        let node = format!("nimbus-metrics-{}", uuid::Uuid::new_v4().simple());
        let db = PgDatabase::open(url, account, &node).await.map_err(err)?;
        db.migrate(&SCHEMA).await.map_err(err)?;
        let lease_ms = std::sync::atomic::AtomicU64::new(EVALUATOR_LEASE.as_millis() as u64);
        let metrics = PgMetrics {
            db,
            url: url.to_string(),
            lease_ms,
            minutes: TimePartitions::new(table(Grain::Minute), 'd', DAY_MS),
            seconds: TimePartitions::new(table(Grain::Second), 'h', HOUR_MS),
        };
        metrics.ensure_ahead(now_ms()).await?;
        Ok(metrics)
    }

    fn partitions(&self, grain: Grain) -> &TimePartitions {
        match grain {
            Grain::Minute => &self.minutes,
            Grain::Second => &self.seconds,
        }
    }

    /// Makes the partitions of `now` and of the width after it, so writes seldom wait for one.
    async fn ensure_ahead(&self, now: i64) -> Result<(), String> {
        let client = self.client().await?;
        self.minutes.ensure(&client, [now, now + DAY_MS]).await.map_err(err)?;
        self.seconds.ensure(&client, [now, now + HOUR_MS]).await.map_err(err)
    }

    /// Calls `on` after another node changed an alarm (and when the feed first listens or
    /// was cut), while `owner` lives.
    pub(crate) fn watch<T: Send + Sync + 'static>(&self, owner: std::sync::Weak<T>, on: impl Fn() + Send + Sync + 'static) {
        pg::watch_tables(owner, self.url.clone(), self.db.clone(), TABLES, on);
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, String> {
        self.db.client().await.map_err(err)
    }

    pub(crate) async fn alarms(&self) -> Result<BTreeMap<String, Alarm>, String> {
        let rows = self.client().await?.query("SELECT doc FROM metric_alarms", &[]).await.map_err(pg_err)?;
        let mut out = BTreeMap::new();
        for row in rows {
            let alarm: Alarm = serde_json::from_value(row.get(0)).map_err(err)?;
            out.insert(alarm.name.clone(), alarm);
        }
        Ok(out)
    }

    /// PutMetricAlarm: the configuration, keeping the state stored (another node's
    /// evaluation may have moved it since this node's mirror was read).
    pub(crate) async fn put_alarm(&self, alarm: &Alarm) -> Result<(), String> {
        let keep = STATE_FIELDS.iter().map(|f| format!("'{f}', metric_alarms.doc -> '{f}'")).collect::<Vec<_>>().join(", ");
        self.client()
            .await?
            .execute(
                &format!(
                    "INSERT INTO metric_alarms (name, doc) VALUES ($1, $2)
                     ON CONFLICT (name) DO UPDATE SET doc = EXCLUDED.doc || jsonb_build_object({keep})"
                ),
                &[&alarm.name, &alarm_doc(alarm)],
            )
            .await
            .map_err(pg_err)?;
        Ok(())
    }

    /// Changes some fields of alarms' stored documents (and nothing else of them).
    pub(crate) async fn patch_alarms(&self, patches: Vec<(String, serde_json::Value)>) -> Result<(), String> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        for (name, patch) in patches {
            tx.execute("UPDATE metric_alarms SET doc = doc || $2 WHERE name = $1", &[&name, &patch]).await.map_err(pg_err)?;
        }
        tx.commit().await.map_err(pg_err)
    }

    /// A state change's fields, as [`PgMetrics::patch_alarms`] takes them.
    pub(crate) fn state_patch(alarm: &Alarm) -> serde_json::Value {
        let doc = alarm_doc(alarm);
        serde_json::Value::Object(STATE_FIELDS.iter().map(|f| (f.to_string(), doc[*f].clone())).collect())
    }

    pub(crate) async fn delete_alarms(&self, names: &[String]) -> Result<(), String> {
        self.client().await?.execute("DELETE FROM metric_alarms WHERE name = ANY($1)", &[&names]).await.map_err(pg_err)?;
        Ok(())
    }

    pub(crate) async fn add_history(&self, items: &[HistoryItem]) -> Result<(), String> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        for i in items {
            tx.execute(
                "INSERT INTO metric_alarm_history (name, at, kind, summary, data) VALUES ($1, $2, $3, $4, $5)",
                &[&i.alarm_name, &i.timestamp_ms, &i.kind, &i.summary, &i.data],
            )
            .await
            .map_err(pg_err)?;
        }
        tx.commit().await.map_err(pg_err)
    }

    pub(crate) async fn history(
        &self,
        name: Option<String>,
        kind: Option<String>,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<HistoryItem>, String> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT name, at, kind, summary, data FROM metric_alarm_history WHERE at >= $1 AND at < $2
                 AND ($3::TEXT IS NULL OR name = $3) AND ($4::TEXT IS NULL OR kind = $4) ORDER BY at DESC, id DESC",
                &[&start_ms, &end_ms, &name, &kind],
            )
            .await
            .map_err(pg_err)?;
        Ok(rows
            .iter()
            .map(|r| HistoryItem { alarm_name: r.get(0), timestamp_ms: r.get(1), kind: r.get(2), summary: r.get(3), data: r.get(4) })
            .collect())
    }

    /// Merges datapoints into the stored ones, in one transaction (durable or relaxed); those
    /// already past their retention at `now` are left out (their partitions may be gone).
    pub(crate) async fn write(
        &self,
        now: i64,
        durable: bool,
        points: Vec<(Grain, (SeriesKey, String, i64), Aggregate)>,
    ) -> Result<(), String> {
        let (oldest_minute, oldest_second) = oldest_retained(now);
        let mut points: Vec<_> = points
            .into_iter()
            .filter(|(grain, (.., at), a)| {
                let oldest = if *grain == Grain::Minute { oldest_minute } else { oldest_second };
                *at >= oldest && (a.count > 0.0 || !a.histogram.is_empty())
            })
            .collect();
        if points.is_empty() {
            return Ok(());
        }
        let written = self.write_retained(durable, &mut points).await;
        if written.is_err() {
            // Another node's sweep may have dropped a partition this node knew of.
            self.minutes.forget();
            self.seconds.forget();
        }
        written
    }

    async fn write_retained(&self, durable: bool, points: &mut [(Grain, (SeriesKey, String, i64), Aggregate)]) -> Result<(), String> {
        // One order for every node's writes: series, then table, unit and time.
        points.sort_by(|a, b| (&a.1, a.0).cmp(&(&b.1, b.0)));
        let mut client = if durable { self.client().await? } else { self.db.relaxed_client().await.map_err(err)? };
        for grain in [Grain::Minute, Grain::Second] {
            let times = points.iter().filter(|p| p.0 == grain).map(|(_, (.., at), _)| *at);
            let missing = self.partitions(grain).missing(times);
            if !missing.is_empty() {
                self.partitions(grain).make(&client, missing).await.map_err(err)?;
            }
        }
        let tx = client.transaction().await.map_err(pg_err)?;
        let mut ids: BTreeMap<&SeriesKey, i64> = BTreeMap::new();
        for (grain, (key, unit, at), values) in points.iter() {
            let id = match ids.get(key) {
                Some(id) => *id,
                None => {
                    let id: i64 = tx
                        .query_one(
                            "INSERT INTO metric_series (namespace, name, dimensions) VALUES ($1, $2, $3)
                             ON CONFLICT (namespace, name, dimensions) DO UPDATE SET namespace = EXCLUDED.namespace RETURNING id",
                            &[&key.namespace, &key.name, &key.dimensions_text()],
                        )
                        .await
                        .map_err(pg_err)?
                        .get(0);
                    ids.insert(key, id);
                    id
                }
            };
            let table = table(*grain);
            let stored = tx
                .query_opt(
                    &format!("SELECT count, sum, min, max, histogram FROM {table} WHERE series = $1 AND unit = $2 AND at = $3 FOR UPDATE"),
                    &[&id, unit, at],
                )
                .await
                .map_err(pg_err)?;
            let mut agg = stored.map(|r| aggregate_of(&r, true)).unwrap_or_default();
            agg.merge(values);
            tx.execute(
                &format!(
                    "INSERT INTO {table} (series, unit, at, count, sum, min, max, histogram) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     ON CONFLICT (series, unit, at) DO UPDATE SET count = $4, sum = $5, min = $6, max = $7, histogram = $8"
                ),
                &[&id, unit, at, &agg.count, &agg.sum, &agg.min, &agg.max, &histogram_text(&agg)],
            )
            .await
            .map_err(pg_err)?;
        }
        tx.commit().await.map_err(pg_err)
    }

    /// Drops what is past retention at `now`: the partitions of datapoints that ended before
    /// their grain's retention (a datapoint stays until its whole day, or hour, has passed
    /// it), history before its retention, series left without datapoints; and makes the
    /// partitions writes will need next.
    pub(crate) async fn sweep(&self, now: i64) -> Result<(), String> {
        let (oldest_minute, oldest_second) = oldest_retained(now);
        let mut client = self.client().await?;
        for (parts, oldest) in [(&self.minutes, oldest_minute), (&self.seconds, oldest_second)] {
            for name in parts.drop_ended(&mut client, oldest, false).await.map_err(err)? {
                tracing::info!("metric partition {name} dropped: it is past the retention");
            }
        }
        client.execute("DELETE FROM metric_alarm_history WHERE at < $1", &[&(now - HISTORY_RETENTION_MS)]).await.map_err(pg_err)?;
        client
            .execute(
                "DELETE FROM metric_series s WHERE NOT EXISTS (SELECT 1 FROM metric_minute_points p WHERE p.series = s.id)
                 AND NOT EXISTS (SELECT 1 FROM metric_second_points p WHERE p.series = s.id)",
                &[],
            )
            .await
            .map_err(pg_err)?;
        drop(client);
        self.ensure_ahead(now).await
    }

    /// The stored datapoints of each query's series within `[start_ms, end_ms)`, as
    /// (values, unit, time) in time order.
    pub(crate) async fn rows(
        &self,
        queries: &[SeriesQuery],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Vec<(Aggregate, String, i64)>>, String> {
        let client = self.client().await?;
        let mut out = Vec::with_capacity(queries.len());
        for q in queries {
            let id = client
                .query_opt(
                    "SELECT id FROM metric_series WHERE namespace = $1 AND name = $2 AND dimensions = $3",
                    &[&q.key.namespace, &q.key.name, &q.key.dimensions_text()],
                )
                .await
                .map_err(pg_err)?;
            let Some(id) = id.map(|r| r.get::<_, i64>(0)) else {
                out.push(Vec::new());
                continue;
            };
            // Periods under a minute read the one-second datapoints (high-resolution only);
            // never before the retention (a partition keeps rows until all of it is past).
            let grain = if q.period_s < 60 { Grain::Second } else { Grain::Minute };
            let (oldest_minute, oldest_second) = oldest_retained(now_ms());
            let start_ms = start_ms.max(if grain == Grain::Minute { oldest_minute } else { oldest_second });
            let rows = client
                .query(
                    &format!(
                        "SELECT count, sum, min, max, {}, unit, at FROM {} WHERE series = $1 AND at >= $2 AND at < $3 ORDER BY at",
                        if q.percentiles { "histogram" } else { "''" },
                        table(grain)
                    ),
                    &[&id, &start_ms, &end_ms],
                )
                .await
                .map_err(pg_err)?;
            out.push(rows.iter().map(|r| (aggregate_of(r, q.percentiles), r.get(5), r.get(6))).collect());
        }
        Ok(out)
    }

    /// Every series, by namespace, name and dimensions.
    pub(crate) async fn series(&self) -> Result<Vec<(String, String, String)>, String> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT namespace, name, dimensions FROM metric_series
                 ORDER BY namespace COLLATE \"C\", name COLLATE \"C\", dimensions COLLATE \"C\"",
                &[],
            )
            .await
            .map_err(pg_err)?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
    }

    /// The alarms are evaluated every `every`: the lease outlasts three evaluations.
    pub(crate) fn evaluate_every(&self, every: std::time::Duration) {
        let ms = (every.as_millis() as u64).saturating_mul(3).max(EVALUATOR_LEASE.as_millis() as u64);
        self.lease_ms.store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether this node evaluates the alarms now: it takes the evaluator's lease if it is
    /// free or lapsed, or renews its own.
    pub(crate) async fn lead(&self) -> Result<bool, String> {
        let lease = format!("{} milliseconds", self.lease_ms.load(std::sync::atomic::Ordering::Relaxed));
        let row = self
            .client()
            .await?
            .query_opt(
                "INSERT INTO metric_evaluator (id, node, until) VALUES (1, $1, now() + $2::TEXT::INTERVAL)
                 ON CONFLICT (id) DO UPDATE SET node = $1, until = EXCLUDED.until
                 WHERE metric_evaluator.node = $1 OR metric_evaluator.until < now()
                 RETURNING node",
                &[&self.db.node(), &lease],
            )
            .await
            .map_err(pg_err)?;
        Ok(row.is_some())
    }

    /// Hands the evaluator's lease back (this node stops), so another takes it at once.
    pub(crate) async fn resign(&self) -> Result<(), String> {
        self.client().await?.execute("DELETE FROM metric_evaluator WHERE node = $1", &[&self.db.node()]).await.map_err(pg_err)?;
        Ok(())
    }
}

/// The periods of one query from its stored datapoints (see [`PgMetrics::rows`]).
pub(crate) fn periods_of(q: &SeriesQuery, start_ms: i64, rows: impl IntoIterator<Item = (Aggregate, String, i64)>) -> Vec<Period> {
    let period_ms = q.period_s.max(1) * 1000;
    let mut periods: BTreeMap<i64, Period> = BTreeMap::new();
    for (agg, row_unit, at) in rows {
        if q.unit.as_ref().is_some_and(|u| *u != row_unit) {
            continue;
        }
        let start = start_ms + (at - start_ms).div_euclid(period_ms) * period_ms;
        let p = periods.entry(start).or_insert_with(|| Period { start_ms: start, unit: row_unit.clone(), values: Aggregate::default() });
        p.values.merge(&agg);
    }
    periods.into_values().collect()
}

#[cfg(test)]
mod tests;

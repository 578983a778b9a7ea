//! CloudWatch's metric store, one per account: series (namespace, metric name, dimensions)
//! holding one-minute datapoints (sample count, sum, minimum, maximum, and a log-scale
//! histogram for percentiles), kept [`RETENTION_DAYS`] days in SQLite. PutMetricData's
//! values are on disk before it answers; the server's own metrics (AWS/Lambda) are summed
//! in memory and written every few seconds, and before every read.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use crate::alarms::Alarm;
use nimbus_store::db::Schema;
use nimbus_store::group_commit::GroupCommit;
use rusqlite::{params, Connection, OptionalExtension};

/// How long datapoints are kept (AWS keeps one-minute data 15 days).
pub const RETENTION_DAYS: i64 = 15;
/// CloudWatch's `StandardUnit` values (PutMetricData's units, metric filters' units).
pub const STANDARD_UNITS: [&str; 27] = [
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// How long alarm history is kept (AWS: two weeks).
pub const HISTORY_RETENTION_MS: i64 = 14 * 24 * 3600 * 1000;
/// How long high-resolution (one-second) datapoints are kept, as AWS keeps them: 3 hours.
pub const FINE_RETENTION_MS: i64 = 3 * 3600 * 1000;
const MINUTE_MS: i64 = 60_000;
/// Histogram buckets grow by 1 % (a percentile is within 0.5 % of the true value).
const GROWTH: f64 = 1.01;

static SCHEMA: Schema = Schema {
    name: "metrics",
    migrations: &[
        "
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    dimensions TEXT NOT NULL,
    UNIQUE (namespace, name, dimensions)
);
CREATE TABLE IF NOT EXISTS points (
    series INTEGER NOT NULL,
    unit TEXT NOT NULL,
    minute INTEGER NOT NULL,
    count REAL NOT NULL,
    sum REAL NOT NULL,
    min REAL NOT NULL,
    max REAL NOT NULL,
    histogram TEXT NOT NULL,
    PRIMARY KEY (series, unit, minute)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS points_by_minute ON points (minute);
",
        "
CREATE TABLE IF NOT EXISTS alarms (
    name TEXT PRIMARY KEY,
    doc TEXT NOT NULL
);
",
        "
CREATE TABLE IF NOT EXISTS fine_points (
    series INTEGER NOT NULL,
    unit TEXT NOT NULL,
    second INTEGER NOT NULL,
    count REAL NOT NULL,
    sum REAL NOT NULL,
    min REAL NOT NULL,
    max REAL NOT NULL,
    histogram TEXT NOT NULL,
    PRIMARY KEY (series, unit, second)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS fine_points_by_second ON fine_points (second);
",
        "
CREATE TABLE IF NOT EXISTS alarm_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    summary TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alarm_history_by_time ON alarm_history (at);
",
    ],
};

/// A metric: its namespace, name and dimensions (sorted by name, as AWS compares them).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    pub namespace: String,
    pub name: String,
    pub dimensions: Vec<(String, String)>,
}

impl SeriesKey {
    pub fn new(namespace: &str, name: &str, mut dimensions: Vec<(String, String)>) -> SeriesKey {
        dimensions.sort();
        SeriesKey { namespace: namespace.to_string(), name: name.to_string(), dimensions }
    }

    pub(crate) fn dimensions_text(&self) -> String {
        serde_json::to_string(&self.dimensions).unwrap_or_default()
    }
}

/// What is known of a metric over some time: the statistics AWS reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Aggregate {
    pub count: f64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    /// Log-scale bucket → how many values fell in it (`i32::MIN`: zero and below).
    pub histogram: BTreeMap<i32, f64>,
}

impl Aggregate {
    /// `count` values equal to `value`.
    pub fn of(value: f64, count: f64) -> Aggregate {
        let mut a = Aggregate { count, sum: value * count, min: value, max: value, histogram: BTreeMap::new() };
        a.histogram.insert(bucket(value), count);
        a
    }

    /// A statistic set (no distribution: percentiles see its values at its average).
    pub fn of_set(count: f64, sum: f64, min: f64, max: f64) -> Aggregate {
        let mut histogram = BTreeMap::new();
        if count > 0.0 {
            histogram.insert(bucket(sum / count), count);
        }
        Aggregate { count, sum, min, max, histogram }
    }

    pub fn merge(&mut self, other: &Aggregate) {
        if other.count <= 0.0 && other.histogram.is_empty() {
            return;
        }
        if self.count <= 0.0 && self.histogram.is_empty() {
            *self = other.clone();
            return;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        for (b, n) in &other.histogram {
            *self.histogram.entry(*b).or_insert(0.0) += n;
        }
    }

    pub fn average(&self) -> f64 {
        if self.count > 0.0 {
            self.sum / self.count
        } else {
            0.0
        }
    }

    /// The `p`th percentile (0–100), from the histogram, clamped to the minimum and maximum.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        let total: f64 = self.histogram.values().sum();
        if total <= 0.0 {
            return None;
        }
        let rank = (p / 100.0 * total).max(f64::MIN_POSITIVE);
        let mut seen = 0.0;
        for (b, n) in &self.histogram {
            seen += n;
            if seen >= rank {
                return Some(value_of(*b).clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }

    /// One statistic by AWS's name: `Sum`, `Average`, `Minimum`, `Maximum`, `SampleCount`,
    /// or a percentile `p90`, `p99.9`.
    pub fn statistic(&self, name: &str) -> Option<f64> {
        match name {
            "Sum" => Some(self.sum),
            "Average" => Some(self.average()),
            "Minimum" => Some(self.min),
            "Maximum" => Some(self.max),
            "SampleCount" => Some(self.count),
            p => p
                .strip_prefix('p')
                .and_then(|n| n.parse::<f64>().ok())
                .filter(|n| (0.0..=100.0).contains(n))
                .and_then(|n| self.percentile(n)),
        }
    }
}

fn bucket(v: f64) -> i32 {
    if v <= 0.0 || !v.is_finite() {
        return i32::MIN;
    }
    (v.ln() / GROWTH.ln()).round() as i32
}

fn value_of(b: i32) -> f64 {
    if b == i32::MIN {
        0.0
    } else {
        GROWTH.powi(b)
    }
}

/// Values for one series, as PutMetricData or the server gives them.
#[derive(Debug, Clone)]
pub struct Datum {
    pub key: SeriesKey,
    pub unit: String,
    /// Milliseconds since the epoch.
    pub timestamp_ms: i64,
    pub values: Aggregate,
    /// `StorageResolution: 1`: also kept per second (for [`FINE_RETENTION_MS`]), so periods
    /// of 1 to 30 seconds can be read.
    pub high_resolution: bool,
}

/// One entry of an alarm's history, as DescribeAlarmHistory shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryItem {
    pub alarm_name: String,
    pub timestamp_ms: i64,
    /// `ConfigurationUpdate`, `StateUpdate` or `Action`.
    pub kind: String,
    pub summary: String,
    /// AWS's `HistoryData`: a JSON document.
    pub data: String,
}

impl HistoryItem {
    fn configuration(alarm: &Alarm, change: &str, now_ms: i64) -> HistoryItem {
        let (verb, member) = match change {
            "Create" => ("created", "createdAlarm"),
            "Delete" => ("deleted", "deletedAlarm"),
            _ => ("updated", "updatedAlarm"),
        };
        let config = serde_json::json!({
            "alarmName": alarm.name, "alarmArn": alarm.arn, "namespace": alarm.namespace, "metricName": alarm.metric_name,
            "dimensions": alarm.dimensions.iter().map(|(n, v)| serde_json::json!({"name": n, "value": v})).collect::<Vec<_>>(),
            "statistic": alarm.statistic, "extendedStatistic": alarm.extended_statistic, "period": alarm.period,
            "evaluationPeriods": alarm.evaluation_periods, "threshold": alarm.threshold, "comparisonOperator": alarm.comparison,
            "actionsEnabled": alarm.actions_enabled, "alarmActions": alarm.alarm_actions, "okActions": alarm.ok_actions,
            "insufficientDataActions": alarm.insufficient_data_actions,
        });
        HistoryItem {
            alarm_name: alarm.name.clone(),
            timestamp_ms: now_ms,
            kind: "ConfigurationUpdate".into(),
            summary: format!("Alarm \"{}\" {verb}", alarm.name),
            data: serde_json::json!({"version": "1.0", "type": change, member: config}).to_string(),
        }
    }

    fn state(alarm: &Alarm, old_state: &str, old_reason: &str, now_ms: i64) -> HistoryItem {
        HistoryItem {
            alarm_name: alarm.name.clone(),
            timestamp_ms: now_ms,
            kind: "StateUpdate".into(),
            summary: format!("Alarm updated from {old_state} to {}", alarm.state),
            data: serde_json::json!({
                "version": "1.0",
                "oldState": {"stateValue": old_state, "stateReason": old_reason},
                "newState": {"stateValue": alarm.state, "stateReason": alarm.state_reason},
            })
            .to_string(),
        }
    }

    /// An alarm action's outcome (`error` None: it ran).
    pub fn action(alarm: &Alarm, arn: &str, error: Option<&str>, now_ms: i64) -> HistoryItem {
        let (summary, data) = match error {
            None => (
                format!("Successfully executed action {arn}"),
                serde_json::json!({"actionState": "Succeeded", "notificationResource": arn}),
            ),
            Some(e) => (
                format!("Failed to execute action {arn}"),
                serde_json::json!({"actionState": "Failed", "notificationResource": arn, "error": e}),
            ),
        };
        HistoryItem { alarm_name: alarm.name.clone(), timestamp_ms: now_ms, kind: "Action".into(), summary, data: data.to_string() }
    }
}

/// A series' datapoints summed into periods.
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    /// The period's start, milliseconds since the epoch.
    pub start_ms: i64,
    pub unit: String,
    pub values: Aggregate,
}

/// The datapoints recorded since the last flush, by series, unit and minute (or second).
type Pending = hashbrown::HashMap<(SeriesKey, String, i64), Aggregate>;

/// A series named by borrowed strings, for [`MetricStore::record_borrowed`]: its dimensions
/// sorted by name, as [`SeriesKey::new`] sorts them.
#[derive(Debug, Clone, Copy)]
pub struct SeriesRef<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub dimensions: &'a [(&'a str, &'a str)],
}

/// A pending slot's key, borrowed. It hashes exactly as the owned key does (a slice of
/// string pairs as the `Vec` of `String` pairs, `str` as `String`), so a series seen since
/// the last flush is found without making its strings.
struct SlotRef<'a> {
    series: SeriesRef<'a>,
    unit: &'a str,
    at: i64,
}

impl std::hash::Hash for SlotRef<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.series.namespace.hash(state);
        self.series.name.hash(state);
        self.series.dimensions.hash(state);
        self.unit.hash(state);
        self.at.hash(state);
    }
}

impl hashbrown::Equivalent<(SeriesKey, String, i64)> for SlotRef<'_> {
    fn equivalent(&self, (key, unit, at): &(SeriesKey, String, i64)) -> bool {
        *at == self.at
            && unit == self.unit
            && key.namespace == self.series.namespace
            && key.name == self.series.name
            && key.dimensions.len() == self.series.dimensions.len()
            && key.dimensions.iter().zip(self.series.dimensions).all(|((n, v), (n2, v2))| n == n2 && v == v2)
    }
}

/// Where the datapoints and alarms are: this node's SQLite file, or the nodes' PostgreSQL.
enum Db {
    Local(GroupCommit),
    Shared(Box<crate::shared::PgMetrics>),
}

pub struct MetricStore {
    db: Db,
    /// Metric alarms by name (kept in `alarms` too).
    alarms: Mutex<BTreeMap<String, Alarm>>,
    /// The server's own datapoints not yet written.
    pending: Mutex<Pending>,
    /// Their one-second copies, for high-resolution ones (EMF's `StorageResolution: 1`).
    pending_fine: Mutex<Pending>,
    /// Whether datapoints are being dropped because [`MAX_PENDING`] was reached.
    dropping: std::sync::atomic::AtomicBool,
    /// When expired datapoints were last dropped (ms; a sweep reads every series).
    swept_ms: std::sync::atomic::AtomicI64,
    /// Keeps reloads of the alarms (a shared store) from undoing this node's own changes.
    mirror: nimbus_store::pg::Mirror,
}

/// The most series × minutes (or seconds) held in memory between two flushes (of the server's
/// own and EMF datapoints); beyond it, datapoints of new series are dropped until the next flush.
const MAX_PENDING: usize = 100_000;

/// Expired datapoints are dropped at most this often.
const SWEEP_EVERY_MS: i64 = 60_000;

fn internal(e: String) -> String {
    e
}

fn write(conn: &Connection, data: impl IntoIterator<Item = ((SeriesKey, String, i64), Aggregate)>) -> Result<(), String> {
    write_into(conn, Grain::Minute, data)
}

/// Which table a datapoint goes to: one-minute `points` or one-second `fine_points`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Grain {
    Minute,
    Second,
}

impl Grain {
    fn select(self) -> &'static str {
        match self {
            Grain::Minute => "SELECT count, sum, min, max, histogram FROM points WHERE series = ?1 AND unit = ?2 AND minute = ?3",
            Grain::Second => "SELECT count, sum, min, max, histogram FROM fine_points WHERE series = ?1 AND unit = ?2 AND second = ?3",
        }
    }

    fn upsert(self) -> &'static str {
        match self {
            Grain::Minute => "INSERT OR REPLACE INTO points (series, unit, minute, count, sum, min, max, histogram) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            Grain::Second => "INSERT OR REPLACE INTO fine_points (series, unit, second, count, sum, min, max, histogram) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        }
    }

    fn range(self) -> &'static str {
        match self {
            Grain::Minute => "SELECT count, sum, min, max, histogram, unit, minute FROM points WHERE series = ?1 AND minute >= ?2 AND minute < ?3 ORDER BY minute",
            Grain::Second => "SELECT count, sum, min, max, histogram, unit, second FROM fine_points WHERE series = ?1 AND second >= ?2 AND second < ?3 ORDER BY second",
        }
    }
}

fn write_into(
    conn: &Connection,
    grain: Grain,
    data: impl IntoIterator<Item = ((SeriesKey, String, i64), Aggregate)>,
) -> Result<(), String> {
    let err = |e: rusqlite::Error| e.to_string();
    for ((key, unit, minute), values) in data {
        let dims = key.dimensions_text();
        conn.execute(
            "INSERT OR IGNORE INTO series (namespace, name, dimensions) VALUES (?1, ?2, ?3)",
            params![key.namespace, key.name, dims],
        )
        .map_err(err)?;
        let id: i64 = conn
            .query_row(
                "SELECT id FROM series WHERE namespace = ?1 AND name = ?2 AND dimensions = ?3",
                params![key.namespace, key.name, dims],
                |r| r.get(0),
            )
            .map_err(err)?;
        let mut agg = conn
            .prepare_cached(grain.select())
            .and_then(|mut st| st.query_row(params![id, unit, minute], row_aggregate).optional())
            .map_err(err)?
            .unwrap_or_default();
        agg.merge(&values);
        let histogram = serde_json::to_string(&agg.histogram.iter().map(|(b, n)| (*b, *n)).collect::<Vec<_>>()).unwrap_or_default();
        conn.prepare_cached(grain.upsert())
            .and_then(|mut st| st.execute(params![id, unit, minute, agg.count, agg.sum, agg.min, agg.max, histogram]))
            .map_err(err)?;
    }
    Ok(())
}

fn row_aggregate(r: &rusqlite::Row<'_>) -> rusqlite::Result<Aggregate> {
    row_values(r, true)
}

/// A stored datapoint; its histogram only when `histogram` (percentiles) is asked for.
/// One series to read, and how (see [`MetricStore::query`]).
#[derive(Debug, Clone)]
pub struct SeriesQuery {
    pub key: SeriesKey,
    pub period_s: i64,
    pub unit: Option<String>,
    pub percentiles: bool,
}

fn read_periods(conn: &rusqlite::Connection, q: &SeriesQuery, start_ms: i64, end_ms: i64) -> Result<Vec<Period>, String> {
    let id: Option<i64> = conn
        .prepare_cached("SELECT id FROM series WHERE namespace = ?1 AND name = ?2 AND dimensions = ?3")
        .and_then(|mut st| st.query_row(params![q.key.namespace, q.key.name, q.key.dimensions_text()], |r| r.get(0)).optional())
        .map_err(|e| e.to_string())?;
    let Some(id) = id else { return Ok(Vec::new()) };
    // Periods under a minute read the one-second datapoints (high-resolution metrics only).
    let grain = if q.period_s < 60 { Grain::Second } else { Grain::Minute };
    let mut stmt = conn.prepare_cached(grain.range()).map_err(|e| e.to_string())?;
    let rows = stmt
        .query_map(params![id, start_ms, end_ms], |r| Ok((row_values(r, q.percentiles)?, r.get::<_, String>(5)?, r.get::<_, i64>(6)?)))
        .map_err(|e| e.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    Ok(crate::shared::periods_of(q, start_ms, rows))
}

fn row_values(r: &rusqlite::Row<'_>, histogram: bool) -> rusqlite::Result<Aggregate> {
    let pairs: Vec<(i32, f64)> = if histogram { serde_json::from_str(&r.get::<_, String>(4)?).unwrap_or_default() } else { Vec::new() };
    Ok(Aggregate { count: r.get(0)?, sum: r.get(1)?, min: r.get(2)?, max: r.get(3)?, histogram: pairs.into_iter().collect() })
}

impl MetricStore {
    pub fn open(path: &Path) -> Result<MetricStore, String> {
        Self::opened(Some(path))
    }

    pub fn open_in_memory() -> Result<MetricStore, String> {
        Self::opened(None)
    }

    fn opened(path: Option<&Path>) -> Result<MetricStore, String> {
        let mut alarms = BTreeMap::new();
        let db = GroupCommit::open_prepared(
            path,
            &SCHEMA,
            |conn| {
                let mut stmt = conn.prepare("SELECT doc FROM alarms").map_err(|e| e.to_string())?;
                let docs = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(|e| e.to_string())?;
                for doc in docs {
                    let alarm: Alarm = serde_json::from_str(&doc.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
                    alarms.insert(alarm.name.clone(), alarm);
                }
                Ok(())
            },
            internal,
        )?;
        Ok(MetricStore::with(Db::Local(db), alarms))
    }

    fn with(db: Db, alarms: BTreeMap<String, Alarm>) -> MetricStore {
        MetricStore {
            db,
            alarms: Mutex::new(alarms),
            pending: Mutex::new(Pending::default()),
            pending_fine: Mutex::new(Pending::default()),
            dropping: Default::default(),
            swept_ms: Default::default(),
            mirror: Default::default(),
        }
    }

    /// The store of nodes that share the PostgreSQL database at `url` (`account`'s schema):
    /// datapoints, alarms and history are every node's (`crate::shared`), the alarms
    /// mirrored here and read again when another node changes one.
    pub async fn open_shared(url: &str, account: &str) -> Result<std::sync::Arc<MetricStore>, String> {
        let pg = crate::shared::PgMetrics::open(url, account).await?;
        let alarms = pg.alarms().await?;
        let store = std::sync::Arc::new(MetricStore::with(Db::Shared(Box::new(pg)), alarms));
        if let Db::Shared(pg) = &store.db {
            let what = "the metric alarms".to_string();
            let reload = nimbus_store::pg::reloader(std::sync::Arc::downgrade(&store), what, |s: std::sync::Arc<MetricStore>| async move {
                s.reload_alarms().await
            });
            pg.watch(std::sync::Arc::downgrade(&store), reload);
        }
        Ok(store)
    }

    /// Reads the alarms again (another node changed one).
    async fn reload_alarms(&self) -> Result<(), String> {
        if let Db::Shared(pg) = &self.db {
            let apply = |alarms, valid: &dyn Fn() -> bool| {
                let mut mine = self.alarms_lock();
                valid() && {
                    *mine = alarms;
                    true
                }
            };
            self.mirror.reload(|| pg.alarms(), apply).await?;
        }
        Ok(())
    }

    /// The server evaluates the alarms every `every`: with a shared store the evaluator's
    /// lease outlasts three evaluations, so one node keeps evaluating.
    pub fn evaluate_every(&self, every: std::time::Duration) {
        if let Db::Shared(pg) = &self.db {
            pg.evaluate_every(every);
        }
    }

    /// Hands the alarms' evaluation to another node (this one stops).
    pub async fn resign(&self) {
        if let Db::Shared(pg) = &self.db {
            if let Err(e) = pg.resign().await {
                tracing::debug!("handing the alarms' evaluation back: {e}");
            }
        }
    }

    fn alarms_lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Alarm>> {
        self.alarms.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every alarm, by name.
    pub fn alarms(&self) -> Vec<Alarm> {
        self.alarms_lock().values().cloned().collect()
    }

    async fn save_alarms(&self, alarms: Vec<Alarm>, deleted: Vec<String>) -> Result<(), String> {
        let docs: Vec<(String, String)> = alarms.iter().map(|a| (a.name.clone(), serde_json::to_string(a).unwrap_or_default())).collect();
        let db = match &self.db {
            Db::Local(db) => db,
            Db::Shared(_) => unreachable!("a shared store saves alarms by what changed"),
        };
        db.run(
            true,
            move |conn| {
                for (name, doc) in docs {
                    conn.execute("INSERT OR REPLACE INTO alarms (name, doc) VALUES (?1, ?2)", params![name, doc])
                        .map_err(|e| e.to_string())?;
                }
                for name in deleted {
                    conn.execute("DELETE FROM alarms WHERE name = ?1", params![name]).map_err(|e| e.to_string())?;
                }
                Ok(())
            },
            internal,
        )
        .await
    }

    /// PutMetricAlarm: creates or replaces `alarm`; a replaced one keeps its state.
    pub async fn put_alarm(&self, mut alarm: Alarm) -> Result<(), String> {
        let _change = self.mirror.change();
        let existed = if let Some(old) = self.alarms_lock().get(&alarm.name) {
            alarm.state = old.state.clone();
            alarm.state_reason = old.state_reason.clone();
            alarm.state_updated_ms = old.state_updated_ms;
            alarm.state_transitioned_ms = old.state_transitioned_ms;
            true
        } else {
            false
        };
        match &self.db {
            Db::Local(_) => self.save_alarms(vec![alarm.clone()], Vec::new()).await?,
            Db::Shared(pg) => pg.put_alarm(&alarm).await?,
        }
        let item = HistoryItem::configuration(&alarm, if existed { "Update" } else { "Create" }, alarm.configuration_updated_ms);
        self.alarms_lock().insert(alarm.name.clone(), alarm);
        self.add_history(vec![item]).await
    }

    /// Adds entries to the alarms' history.
    pub async fn add_history(&self, items: Vec<HistoryItem>) -> Result<(), String> {
        let db = match &self.db {
            Db::Local(db) => db,
            Db::Shared(pg) => return pg.add_history(&items).await,
        };
        db.run(
            false,
            move |conn| {
                for i in items {
                    conn.prepare_cached("INSERT INTO alarm_history (name, at, kind, summary, data) VALUES (?1, ?2, ?3, ?4, ?5)")
                        .and_then(|mut st| st.execute(params![i.alarm_name, i.timestamp_ms, i.kind, i.summary, i.data]))
                        .map_err(|e| e.to_string())?;
                }
                Ok(())
            },
            internal,
        )
        .await
    }

    /// DescribeAlarmHistory's items in [start, end), of one alarm and one kind when given,
    /// newest first.
    pub async fn history(
        &self,
        name: Option<String>,
        kind: Option<String>,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<HistoryItem>, String> {
        let db = match &self.db {
            Db::Local(db) => db,
            Db::Shared(pg) => return pg.history(name, kind, start_ms, end_ms).await,
        };
        db.run(
            false,
            move |conn| {
                let mut st = conn
                    .prepare_cached(
                        "SELECT name, at, kind, summary, data FROM alarm_history WHERE at >= ?1 AND at < ?2 \
                             AND (?3 IS NULL OR name = ?3) AND (?4 IS NULL OR kind = ?4) ORDER BY at DESC, id DESC",
                    )
                    .map_err(|e| e.to_string())?;
                let rows = st
                    .query_map(params![start_ms, end_ms, name, kind], |r| {
                        Ok(HistoryItem {
                            alarm_name: r.get(0)?,
                            timestamp_ms: r.get(1)?,
                            kind: r.get(2)?,
                            summary: r.get(3)?,
                            data: r.get(4)?,
                        })
                    })
                    .map_err(|e| e.to_string())?;
                rows.collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())
            },
            internal,
        )
        .await
    }

    /// DeleteAlarms: the names that do not exist, if any (nothing is deleted then).
    pub async fn delete_alarms(&self, names: Vec<String>) -> Result<Vec<String>, String> {
        let _change = self.mirror.change();
        let unknown: Vec<String> = {
            let alarms = self.alarms_lock();
            names.iter().filter(|n| !alarms.contains_key(*n)).cloned().collect()
        };
        if !unknown.is_empty() {
            return Ok(unknown);
        }
        match &self.db {
            Db::Local(_) => self.save_alarms(Vec::new(), names.clone()).await?,
            Db::Shared(pg) => pg.delete_alarms(&names).await?,
        }
        let now = chrono_now_ms();
        let items: Vec<HistoryItem> = {
            let mut alarms = self.alarms_lock();
            names.iter().filter_map(|n| alarms.remove(n)).map(|a| HistoryItem::configuration(&a, "Delete", now)).collect()
        };
        self.add_history(items).await?;
        Ok(Vec::new())
    }

    /// Enables or disables the actions of the named alarms (unknown names are skipped).
    pub async fn set_actions_enabled(&self, names: &[String], enabled: bool) -> Result<(), String> {
        let _change = self.mirror.change();
        let changed: Vec<Alarm> = {
            let mut alarms = self.alarms_lock();
            let mut changed = Vec::new();
            for n in names {
                if let Some(a) = alarms.get_mut(n) {
                    a.actions_enabled = enabled;
                    changed.push(a.clone());
                }
            }
            changed
        };
        match &self.db {
            Db::Local(_) => self.save_alarms(changed, Vec::new()).await,
            Db::Shared(pg) => {
                let patches = changed.into_iter().map(|a| (a.name, serde_json::json!({"actions_enabled": enabled}))).collect();
                pg.patch_alarms(patches).await
            }
        }
    }

    /// Moves an alarm to `state` with `reason` (SetAlarmState, or an evaluation); returns the
    /// alarm and its old state when the state changed. None: no such alarm.
    pub async fn set_alarm_state(
        &self,
        name: &str,
        state: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<Option<(Alarm, Option<String>)>, String> {
        let _change = self.mirror.change();
        let (alarm, old, old_reason) = {
            let mut alarms = self.alarms_lock();
            let Some(a) = alarms.get_mut(name) else { return Ok(None) };
            let old = a.state.clone();
            let old_reason = std::mem::replace(&mut a.state_reason, reason.to_string());
            a.state_updated_ms = now_ms;
            if old != state {
                a.state = state.to_string();
                a.state_transitioned_ms = now_ms;
            }
            (a.clone(), (old != state).then_some(old), old_reason)
        };
        match &self.db {
            Db::Local(_) => self.save_alarms(vec![alarm.clone()], Vec::new()).await?,
            Db::Shared(pg) => pg.patch_alarms(vec![(alarm.name.clone(), crate::shared::PgMetrics::state_patch(&alarm))]).await?,
        }
        if let Some(old) = &old {
            self.add_history(vec![HistoryItem::state(&alarm, old, &old_reason, now_ms)]).await?;
        }
        Ok(Some((alarm, old)))
    }

    /// Evaluates every alarm on its latest periods before `now_ms`; returns those whose
    /// state changed, with their old state.
    pub async fn evaluate_alarms(&self, now_ms: i64) -> Result<Vec<(Alarm, String)>, String> {
        // Nodes sharing a store: one of them evaluates (and notifies), the lease's holder.
        if let Db::Shared(pg) = &self.db {
            if !pg.lead().await? {
                return Ok(Vec::new());
            }
        }
        let mut changed = Vec::new();
        for alarm in self.alarms() {
            if alarm.rule.is_some() {
                continue;
            }
            let period_ms = alarm.period.max(1) * 1000;
            let end = now_ms.div_euclid(period_ms) * period_ms;
            let start = end - alarm.evaluation_periods.max(1) * period_ms;
            let key = SeriesKey::new(&alarm.namespace, &alarm.metric_name, alarm.dimensions.clone());
            let percentile = alarm.extended_statistic.is_some();
            let periods = self.query(key, start, end, alarm.period, alarm.unit.clone(), percentile).await?;
            let periods: Vec<(i64, Aggregate)> = periods.into_iter().map(|p| (p.start_ms, p.values)).collect();
            let Some((state, reason)) = alarm.evaluate(&periods) else { continue };
            if state == alarm.state {
                continue;
            }
            if let Some((a, Some(old))) = self.set_alarm_state(&alarm.name, state, &reason, now_ms).await? {
                changed.push((a, old));
            }
        }
        changed.extend(self.evaluate_composites(now_ms).await?);
        Ok(changed)
    }

    /// Evaluates every composite alarm's rule on the current states of the alarms it names
    /// (ALARM when it holds, else OK); returns those whose state changed, with their old
    /// state. Run after metric alarms are evaluated and after SetAlarmState.
    pub async fn evaluate_composites(&self, now_ms: i64) -> Result<Vec<(Alarm, String)>, String> {
        let mut changed = Vec::new();
        // A composite may name another: a few rounds let a change travel up.
        for _ in 0..4 {
            let mut moved = false;
            for c in self.alarms().into_iter().filter(|a| a.rule.is_some()) {
                let Some((state, reason)) = self.composite_state(&c) else { continue };
                if state == c.state {
                    continue;
                }
                if let Some((a, Some(old))) = self.set_alarm_state(&c.name, state, &reason, now_ms).await? {
                    changed.push((a, old));
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
        Ok(changed)
    }

    /// A composite alarm's state by its rule, and AWS's kind of reason (the child that moved
    /// last: "<ARN> transitioned to ALARM at <time>").
    fn composite_state(&self, c: &Alarm) -> Option<(&'static str, String)> {
        let rule = crate::alarms::Rule::parse(c.rule.as_deref()?).ok()?;
        let alarms = self.alarms_lock();
        let holds = rule.holds(&|name: &str| alarms.get(name).map(|a| a.state.clone()));
        let state = if holds { crate::alarms::ALARM } else { crate::alarms::OK };
        let last = rule.alarms().iter().filter_map(|n| alarms.get(n)).max_by_key(|a| a.state_transitioned_ms).cloned();
        let reason = match last {
            Some(child) => format!(
                "{} transitioned to {} at {}",
                child.arn,
                child.state,
                chrono::DateTime::from_timestamp_millis(child.state_transitioned_ms)
                    .unwrap_or_default()
                    .format("%A %d %B, %Y %H:%M:%S UTC")
            ),
            None => format!("The alarm rule evaluated to {}", if holds { "TRUE" } else { "FALSE" }),
        };
        Some((state, reason))
    }

    fn minute(ts_ms: i64) -> i64 {
        ts_ms.div_euclid(MINUTE_MS) * MINUTE_MS
    }

    /// Stores `data` (PutMetricData) before it returns.
    pub async fn put(&self, data: Vec<Datum>) -> Result<(), String> {
        let fine: Vec<_> = data
            .iter()
            .filter(|d| d.high_resolution)
            .map(|d| ((d.key.clone(), d.unit.clone(), d.timestamp_ms.div_euclid(1000) * 1000), d.values.clone()))
            .collect();
        let rows: Vec<_> = data.into_iter().map(|d| ((d.key, d.unit, Self::minute(d.timestamp_ms)), d.values)).collect();
        let db = match &self.db {
            Db::Local(db) => db,
            Db::Shared(pg) => return pg.write(chrono_now_ms(), true, by_grain(rows, fine)).await,
        };
        db.run(
            true,
            move |conn| {
                write(conn, rows)?;
                write_into(conn, Grain::Second, fine)
            },
            internal,
        )
        .await
    }

    /// [`MetricStore::record`] for a datapoint that may be high-resolution.
    pub fn record_datum(&self, d: Datum) {
        if d.high_resolution {
            let mut fine = self.pending_fine.lock().unwrap_or_else(|p| p.into_inner());
            self.add(&mut fine, (d.key.clone(), d.unit.clone(), d.timestamp_ms.div_euclid(1000) * 1000), &d.values);
        }
        self.record(d.key, &d.unit, d.timestamp_ms, d.values);
    }

    /// Adds one of the server's own datapoints (written with the next [`MetricStore::flush`]).
    pub fn record(&self, key: SeriesKey, unit: &str, timestamp_ms: i64, values: Aggregate) {
        self.record_many([(key, unit, timestamp_ms, values)]);
    }

    /// [`MetricStore::record`] for several datapoints under one lock (an invocation's).
    pub fn record_many<'u>(&self, points: impl IntoIterator<Item = (SeriesKey, &'u str, i64, Aggregate)>) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        for (key, unit, timestamp_ms, values) in points {
            self.add(&mut pending, (key, unit.to_string(), Self::minute(timestamp_ms)), &values);
        }
    }

    /// [`MetricStore::record_many`] for series named by borrowed strings: an invocation's
    /// datapoints, most of whose series already have a slot since the last flush (found
    /// without allocating); only a new series' key is made.
    pub fn record_borrowed<'a>(&self, points: impl IntoIterator<Item = (SeriesRef<'a>, &'a str, i64, Aggregate)>) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        for (series, unit, timestamp_ms, values) in points {
            // Sorted as `SeriesKey::new` sorts (by name, then value), or looked up by the key.
            let sorted = series.dimensions.windows(2).all(|w| w[0] <= w[1]);
            let at = Self::minute(timestamp_ms);
            if sorted {
                if let Some(slot) = pending.get_mut(&SlotRef { series, unit, at }) {
                    slot.merge(&values);
                    continue;
                }
            }
            let dimensions = series.dimensions.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
            self.add(&mut pending, (SeriesKey::new(series.namespace, series.name, dimensions), unit.to_string(), at), &values);
        }
    }

    /// Merges `values` into `slot` of `pending`, unless `slot` is a new series beyond
    /// [`MAX_PENDING`]: a flood of distinct series between two flushes keeps memory bounded
    /// by dropping their datapoints (said once per flush).
    fn add(&self, pending: &mut Pending, slot: (SeriesKey, String, i64), values: &Aggregate) {
        if pending.len() >= MAX_PENDING && !pending.contains_key(&slot) {
            if !self.dropping.swap(true, std::sync::atomic::Ordering::Relaxed) {
                tracing::warn!("more than {MAX_PENDING} metric series written within one flush: dropping datapoints of new series");
            }
            return;
        }
        pending.entry(slot).or_default().merge(values);
    }

    /// Writes the server's pending datapoints, and (at most once a minute, or when `now_ms`
    /// jumps ahead) drops those past the retention.
    pub async fn flush(&self, now_ms: i64) -> Result<(), String> {
        let pending: Pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        let fine: Pending = std::mem::take(&mut *self.pending_fine.lock().unwrap_or_else(|p| p.into_inner()));
        self.dropping.store(false, std::sync::atomic::Ordering::Relaxed);
        let swept = self.swept_ms.load(std::sync::atomic::Ordering::Relaxed);
        let sweep = now_ms - swept >= SWEEP_EVERY_MS || now_ms < swept;
        if pending.is_empty() && fine.is_empty() && !sweep {
            return Ok(());
        }
        if sweep {
            self.swept_ms.store(now_ms, std::sync::atomic::Ordering::Relaxed);
        }
        let (oldest, oldest_second) = oldest_retained(now_ms);
        let db = match &self.db {
            Db::Local(db) => db,
            Db::Shared(pg) => {
                let points = by_grain(pending, fine);
                if let Err(e) = pg.write(now_ms, false, points.clone()).await {
                    // Kept for the next flush (the database may be back by then).
                    for (grain, slot, values) in points {
                        let pending = if grain == Grain::Minute { &self.pending } else { &self.pending_fine };
                        pending.lock().unwrap_or_else(|p| p.into_inner()).entry(slot).or_default().merge(&values);
                    }
                    return Err(e);
                }
                if sweep {
                    pg.sweep(now_ms).await?;
                }
                return Ok(());
            }
        };
        db.run(
            false,
            move |conn| {
                write(conn, pending)?;
                write_into(conn, Grain::Second, fine)?;
                if sweep {
                    conn.execute("DELETE FROM points WHERE minute < ?1", params![oldest]).map_err(|e| e.to_string())?;
                    conn.execute("DELETE FROM fine_points WHERE second < ?1", params![oldest_second]).map_err(|e| e.to_string())?;
                    conn.execute("DELETE FROM alarm_history WHERE at < ?1", params![now_ms - HISTORY_RETENTION_MS])
                        .map_err(|e| e.to_string())?;
                    conn.execute("DELETE FROM series WHERE id NOT IN (SELECT DISTINCT series FROM points)", [])
                        .map_err(|e| e.to_string())?;
                }
                Ok(())
            },
            internal,
        )
        .await
    }

    /// `key`'s datapoints in [start, end), summed into periods of `period_s` seconds aligned
    /// on the start, of one unit (or of all, when `unit` is None), oldest first; with their
    /// histograms (for percentiles) only when `percentiles`.
    pub async fn query(
        &self,
        key: SeriesKey,
        start_ms: i64,
        end_ms: i64,
        period_s: i64,
        unit: Option<String>,
        percentiles: bool,
    ) -> Result<Vec<Period>, String> {
        let mut all = self.query_many(vec![SeriesQuery { key, period_s, unit, percentiles }], start_ms, end_ms).await?;
        Ok(all.pop().unwrap_or_default())
    }

    /// [`MetricStore::query`] for several series at once (GetMetricData's queries): one
    /// flush and one job on the database thread for all of them.
    pub async fn query_many(&self, queries: Vec<SeriesQuery>, start_ms: i64, end_ms: i64) -> Result<Vec<Vec<Period>>, String> {
        self.flush(chrono_now_ms()).await?;
        let db = match &self.db {
            Db::Local(db) => db,
            Db::Shared(pg) => {
                let rows = pg.rows(&queries, start_ms, end_ms).await?;
                return Ok(queries.iter().zip(rows).map(|(q, rows)| crate::shared::periods_of(q, start_ms, rows)).collect());
            }
        };
        db.run(false, move |conn| queries.iter().map(|q| read_periods(conn, q, start_ms, end_ms)).collect(), internal).await
    }

    /// Every series with datapoints, in `namespace` and of `name` when given, having every
    /// dimension of `filters` (a filter without a value matches any value).
    pub async fn list(
        &self,
        namespace: Option<String>,
        name: Option<String>,
        filters: Vec<(String, Option<String>)>,
    ) -> Result<Vec<SeriesKey>, String> {
        self.flush(chrono_now_ms()).await?;
        let series = match &self.db {
            Db::Shared(pg) => pg.series().await?,
            Db::Local(db) => {
                db.run(
                    false,
                    move |conn| {
                        let mut stmt = conn
                            .prepare("SELECT namespace, name, dimensions FROM series ORDER BY namespace, name, dimensions")
                            .map_err(|e| e.to_string())?;
                        let rows = stmt
                            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
                            .map_err(|e| e.to_string())?;
                        rows.collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())
                    },
                    internal,
                )
                .await?
            }
        };
        let mut out = Vec::new();
        for (ns, n, dims) in series {
            if namespace.as_ref().is_some_and(|x| *x != ns) || name.as_ref().is_some_and(|x| *x != n) {
                continue;
            }
            let dimensions: Vec<(String, String)> = serde_json::from_str(&dims).unwrap_or_default();
            let matches = filters
                .iter()
                .all(|(fname, fvalue)| dimensions.iter().any(|(dn, dv)| dn == fname && fvalue.as_ref().is_none_or(|v| v == dv)));
            if matches {
                out.push(SeriesKey { namespace: ns, name: n, dimensions });
            }
        }
        Ok(out)
    }
}

/// One-minute and one-second datapoints as one list, for the shared store's writes.
fn by_grain(
    minutes: impl IntoIterator<Item = ((SeriesKey, String, i64), Aggregate)>,
    seconds: impl IntoIterator<Item = ((SeriesKey, String, i64), Aggregate)>,
) -> Vec<(Grain, (SeriesKey, String, i64), Aggregate)> {
    let minutes = minutes.into_iter().map(|(k, v)| (Grain::Minute, k, v));
    minutes.chain(seconds.into_iter().map(|(k, v)| (Grain::Second, k, v))).collect()
}

/// The first one-minute and one-second datapoints retained at `now`.
pub(crate) fn oldest_retained(now: i64) -> (i64, i64) {
    (MetricStore::minute(now) - RETENTION_DAYS * 24 * 60 * MINUTE_MS, now - FINE_RETENTION_MS)
}

pub(crate) fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(dims: &[(&str, &str)]) -> SeriesKey {
        SeriesKey::new("App", "Latency", dims.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect())
    }

    #[test]
    fn borrowed_keys_find_the_slots_owned_keys_made() {
        let store = MetricStore::open_in_memory().unwrap();
        let at = 1_700_000_000_123;
        let one = |v: f64| Aggregate::of(v, 1.0);
        // (dimensions as borrowed, the slot's owned dimensions, the unit): each borrowed
        // datapoint must land in the slot its owned twin made, whatever the dimensions.
        type Dims<'a> = &'a [(&'a str, &'a str)];
        let cases: [(Dims, Dims, &str); 5] = [
            (&[], &[], "Count"),
            (&[("FunctionName", "f")], &[("FunctionName", "f")], "Count"),
            (&[("FunctionName", "f"), ("Resource", "f:live")], &[("Resource", "f:live"), ("FunctionName", "f")], "Count"),
            // Not sorted: found all the same (through the owned key it makes).
            (&[("Resource", "f:1"), ("FunctionName", "f")], &[("FunctionName", "f"), ("Resource", "f:1")], "Milliseconds"),
            (&[("A", ""), ("B", "")], &[("A", ""), ("B", "")], "None"),
        ];
        for (borrowed, owned, unit) in cases {
            store.record_many([(key(owned), unit, at, one(1.0))]);
            let series = SeriesRef { namespace: "App", name: "Latency", dimensions: borrowed };
            store.record_borrowed([(series, unit, at + 1000, one(3.0))]);
            let pending = store.pending.lock().unwrap();
            let owned_slot = (key(owned), unit.to_string(), MetricStore::minute(at));
            let slot = &pending[&owned_slot];
            assert_eq!((slot.count, slot.sum), (2.0, 4.0), "{borrowed:?} in {unit}");
            // Found without making the key: the borrowed key hashes as the owned one.
            let mut sorted = borrowed.to_vec();
            sorted.sort();
            let slot_ref = SlotRef { series: SeriesRef { dimensions: &sorted, ..series }, unit, at: owned_slot.2 };
            use std::hash::BuildHasher;
            assert_eq!(pending.hasher().hash_one(&slot_ref), pending.hasher().hash_one(&owned_slot), "{borrowed:?}");
            assert!(hashbrown::Equivalent::equivalent(&slot_ref, &owned_slot));
        }
        assert_eq!(store.pending.lock().unwrap().len(), cases.len(), "no slot made twice");
        // Another unit, minute, name or value is another series.
        let f: &[(&str, &str)] = &[("FunctionName", "f")];
        let series = |name| SeriesRef { namespace: "App", name, dimensions: f };
        store.record_borrowed([
            (series("Latency"), "Seconds", at, one(1.0)),
            (series("Latency"), "Count", at + 60_000, one(1.0)),
            (series("Errors"), "Count", at, one(1.0)),
            (SeriesRef { namespace: "App", name: "Latency", dimensions: &[("FunctionName", "g")] }, "Count", at, one(1.0)),
        ]);
        assert_eq!(store.pending.lock().unwrap().len(), cases.len() + 4);
    }

    #[test]
    fn statistics_of_values() {
        let mut a = Aggregate::default();
        for v in 1..=100 {
            a.merge(&Aggregate::of(f64::from(v), 1.0));
        }
        let cases = [
            ("Sum", 5050.0),
            ("Average", 50.5),
            ("Minimum", 1.0),
            ("Maximum", 100.0),
            ("SampleCount", 100.0),
            ("p50", 50.0),
            ("p90", 90.0),
            ("p99", 99.0),
            ("p100", 100.0),
        ];
        for (stat, want) in cases {
            let got = a.statistic(stat).unwrap();
            assert!((got - want).abs() <= want * 0.01, "{stat}: {got} vs {want}");
        }
        assert_eq!(a.statistic("p101"), None);
        assert_eq!(a.statistic("Median"), None);
        // Zeros and a statistic set.
        let mut z = Aggregate::of(0.0, 3.0);
        z.merge(&Aggregate::of_set(2.0, 10.0, 4.0, 6.0));
        assert_eq!((z.count, z.sum, z.min, z.max), (5.0, 10.0, 0.0, 6.0));
        assert_eq!(z.statistic("p50"), Some(0.0));
    }

    #[tokio::test]
    async fn a_flood_of_series_is_bounded_in_memory() {
        let store = MetricStore::open_in_memory().unwrap();
        let now = chrono_now_ms();
        for n in 0..MAX_PENDING + 10 {
            store.record(key(&[("Id", &n.to_string())]), "Count", now, Aggregate::of(1.0, 1.0));
        }
        // Known series still add up; new ones past the cap are dropped.
        store.record(key(&[("Id", "0")]), "Count", now, Aggregate::of(1.0, 1.0));
        assert_eq!(store.pending.lock().unwrap().len(), MAX_PENDING);
        store.flush(now).await.unwrap();
        assert!(store.pending.lock().unwrap().is_empty());
        let p = store.query(key(&[("Id", "0")]), now - 60_000, now + 60_000, 60, None, false).await.unwrap();
        assert_eq!(p[0].values.sum, 2.0);
        assert!(store
            .query(key(&[("Id", &MAX_PENDING.to_string())]), now - 60_000, now + 60_000, 60, None, false)
            .await
            .unwrap()
            .is_empty());
        // After a flush, new series are taken again.
        store.record(key(&[("Id", "late")]), "Count", now, Aggregate::of(1.0, 1.0));
        assert_eq!(store.pending.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn high_resolution_datapoints_read_by_the_second() {
        let store = MetricStore::open_in_memory().unwrap();
        let t0 = (chrono_now_ms() / MINUTE_MS - 10) * MINUTE_MS;
        let d = |at: i64, v: f64, high_resolution: bool| Datum {
            key: key(&[]),
            unit: "Count".into(),
            timestamp_ms: t0 + at,
            values: Aggregate::of(v, 1.0),
            high_resolution,
        };
        store.put(vec![d(1_200, 1.0, true), d(1_900, 2.0, true), d(7_000, 4.0, true), d(31_000, 8.0, true)]).await.unwrap();
        // An EMF-style one, recorded in memory and written with the next flush.
        store.record_datum(d(12_000, 16.0, true));
        let sums = |p: Vec<Period>| p.iter().map(|p| ((p.start_ms - t0) / 1000, p.values.sum)).collect::<Vec<_>>();
        let cases: Vec<(i64, Vec<(i64, f64)>)> = vec![
            (1, vec![(1, 3.0), (7, 4.0), (12, 16.0), (31, 8.0)]),
            (10, vec![(0, 7.0), (10, 16.0), (30, 8.0)]),
            (30, vec![(0, 23.0), (30, 8.0)]),
            (60, vec![(0, 31.0)]),
        ];
        for (period, want) in cases {
            let got = sums(store.query(key(&[]), t0, t0 + 60_000, period, None, false).await.unwrap());
            assert_eq!(got, want, "period {period}");
        }
        // Standard-resolution data has no one-second copy.
        store.put(vec![Datum { key: key(&[("K", "v")]), ..d(5_000, 1.0, false) }]).await.unwrap();
        assert!(store.query(key(&[("K", "v")]), t0, t0 + 60_000, 1, None, false).await.unwrap().is_empty());
        assert_eq!(store.query(key(&[("K", "v")]), t0, t0 + 60_000, 60, None, false).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn stores_sums_into_periods_and_lists() {
        let store = MetricStore::open_in_memory().unwrap();
        let t0 = (chrono_now_ms() / MINUTE_MS - 10) * MINUTE_MS;
        let d = |k: SeriesKey, unit: &str, at: i64, v: f64| Datum {
            key: k,
            unit: unit.into(),
            timestamp_ms: at,
            values: Aggregate::of(v, 1.0),
            high_resolution: false,
        };
        store
            .put(vec![
                d(key(&[("Service", "api")]), "Milliseconds", t0 + 1_000, 10.0),
                d(key(&[("Service", "api")]), "Milliseconds", t0 + 61_000, 30.0),
                d(key(&[("Service", "api")]), "Milliseconds", t0 + 125_000, 50.0),
                d(key(&[("Service", "web")]), "Milliseconds", t0, 7.0),
            ])
            .await
            .unwrap();
        store.record(key(&[("Service", "api")]), "Milliseconds", t0 + 62_000, Aggregate::of(20.0, 1.0));
        let p = store.query(key(&[("Service", "api")]), t0, t0 + 180_000, 120, None, true).await.unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].start_ms, p[0].values.count, p[0].values.sum), (t0, 3.0, 60.0));
        assert_eq!((p[1].start_ms, p[1].values.sum), (t0 + 120_000, 50.0));
        assert!(store.query(key(&[("Service", "api")]), t0, t0 + 180_000, 60, Some("Seconds".into()), false).await.unwrap().is_empty());
        assert!(store.query(key(&[]), t0, t0 + 180_000, 60, None, false).await.unwrap().is_empty());
        let all = store.list(Some("App".into()), None, vec![]).await.unwrap();
        assert_eq!(all.len(), 2);
        let web = store.list(None, Some("Latency".into()), vec![("Service".into(), Some("web".into()))]).await.unwrap();
        assert_eq!(web, vec![key(&[("Service", "web")])]);
        assert_eq!(store.list(None, None, vec![("Service".into(), None)]).await.unwrap().len(), 2);
        // Past the retention, data and series go.
        store.flush(t0 + (RETENTION_DAYS * 24 * 60 + 5) * MINUTE_MS).await.unwrap();
        assert!(store.list(None, None, vec![]).await.unwrap().is_empty());
    }
}

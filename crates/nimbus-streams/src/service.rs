//! The Kinesis actions with AWS's semantics, one method each, typed in and out. Every call is
//! one transaction of the store (`in_tx!`: a job on `streams.db`'s writer thread, or a
//! PostgreSQL transaction holding its stream and shards, see `store::postgres`), so a
//! stream's shards, counters and records change one call at a time; writes of records are
//! durable before the answer.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use base64::Engine;

use crate::error::StreamError;
use crate::hashkey;
use crate::iterator::{expired_message, IteratorKey, Position, Refusal};
use crate::routes::RouteCache;
use crate::sequence::{SequenceNumber, END};
use crate::shards::{self, Change, OpenShard};
use crate::store::{self, in_tx, Db, RecordRow, ShardRow, Store, StreamRow, StreamTx};
use crate::throttle::{Limits, Throttle};

/// How often expired records are removed (also after every DecreaseStreamRetentionPeriod).
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// AWS's retention bounds, in hours.
pub const MIN_RETENTION_HOURS: i64 = 24;
pub const MAX_RETENTION_HOURS: i64 = 8760;
/// GetRecords' byte cap per call (10 MiB) and its record cap.
pub const MAX_GET_BYTES: usize = 10 * 1024 * 1024;
pub const MAX_GET_RECORDS: usize = 10_000;
/// A stream's tag cap.
pub const MAX_TAGS: usize = 50;

/// The clock the service reads (tests move it by hand).
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The system's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
    }
}

/// What a server may change about the service.
#[derive(Debug, Clone, Copy)]
pub struct StreamConfig {
    /// Each shard's write limits (AWS's 1 MiB and 1,000 records per second by default).
    pub shard_limits: Limits,
    /// The account's open-shard quota (AWS's default in the largest regions: 500).
    pub shard_quota: u32,
    /// Shards an ON_DEMAND stream starts with.
    pub on_demand_shards: u32,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig { shard_limits: Limits::default(), shard_quota: 500, on_demand_shards: 4 }
    }
}

/// PROVISIONED (a shard count) or ON_DEMAND.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamMode {
    Provisioned,
    OnDemand,
}

impl StreamMode {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamMode::Provisioned => "PROVISIONED",
            StreamMode::OnDemand => "ON_DEMAND",
        }
    }
}

/// CreateStream's input, checked against the model by the edge.
#[derive(Debug, Clone)]
pub struct CreateStream {
    pub name: String,
    /// None for ON_DEMAND.
    pub shard_count: Option<u32>,
    pub mode: StreamMode,
    pub tags: BTreeMap<String, String>,
}

/// A shard as DescribeStream and ListShards show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    pub shard_id: String,
    pub parent_shard_id: Option<String>,
    pub adjacent_parent_shard_id: Option<String>,
    pub starting_hash_key: String,
    pub ending_hash_key: String,
    pub starting_sequence_number: String,
    /// Set once the shard is closed (split or merged).
    pub ending_sequence_number: Option<String>,
    /// Its index, for callers that follow shards without parsing ids.
    pub index: u32,
    pub created_ms: i64,
    pub closed_ms: Option<i64>,
}

/// A stream as DescribeStream and DescribeStreamSummary show it.
#[derive(Debug, Clone)]
pub struct StreamInfo {
    pub name: String,
    pub arn: String,
    pub status: &'static str,
    pub mode: StreamMode,
    pub retention_hours: u32,
    pub created_ms: i64,
    pub open_shard_count: u32,
    /// DescribeStream's page of shards (empty for the summary).
    pub shards: Vec<ShardInfo>,
    pub has_more_shards: bool,
}

/// ListStreams' entry.
#[derive(Debug, Clone)]
pub struct StreamSummary {
    pub name: String,
    pub arn: String,
    pub status: &'static str,
    pub mode: StreamMode,
    pub created_ms: i64,
}

/// A record to put.
#[derive(Debug, Clone)]
pub struct NewRecord {
    pub data: Vec<u8>,
    pub partition_key: String,
    /// A decimal hash key that overrides the partition key's.
    pub explicit_hash_key: Option<String>,
}

/// What became of one record of PutRecords.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    Stored { shard_id: String, sequence_number: String },
    Failed { code: &'static str, message: String },
}

/// Where GetShardIterator starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IteratorStart {
    TrimHorizon,
    Latest,
    AtSequence(String),
    AfterSequence(String),
    /// Milliseconds since the epoch.
    AtTimestamp(i64),
}

/// A record read.
#[derive(Debug, Clone)]
pub struct RecordOut {
    pub sequence_number: String,
    pub arrival_ms: i64,
    pub data: Vec<u8>,
    pub partition_key: String,
    /// Its index in its shard (the next read after it starts at `index + 1`).
    pub index: u64,
}

/// A shard a closed shard's records continue in.
#[derive(Debug, Clone)]
pub struct ChildShard {
    pub shard_id: String,
    pub parent_shards: Vec<String>,
    pub starting_hash_key: String,
    pub ending_hash_key: String,
}

/// GetRecords' answer.
#[derive(Debug, Clone)]
pub struct RecordsPage {
    pub records: Vec<RecordOut>,
    /// None once a closed shard has been read to its end.
    pub next_iterator: Option<String>,
    pub millis_behind_latest: i64,
    /// The children, once a closed shard has been read to its end.
    pub child_shards: Vec<ChildShard>,
}

/// Where a poller reads a shard from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    /// The oldest record kept.
    TrimHorizon,
    /// Records put from now on.
    Latest,
    /// The record with this index and later ones.
    Index(u64),
    /// Records that arrived at or after this time (ms).
    Timestamp(i64),
}

/// ListShards' filter (`ShardFilter`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardFilter {
    AfterShardId(String),
    AtTrimHorizon,
    FromTrimHorizon,
    AtLatest,
    AtTimestamp(i64),
    FromTimestamp(i64),
}

/// ListShards' input, checked by the edge (NextToken excludes the others).
#[derive(Debug, Clone, Default)]
pub struct ListShards {
    pub stream: Option<String>,
    pub next_token: Option<String>,
    pub exclusive_start_shard_id: Option<String>,
    pub max_results: Option<usize>,
    pub filter: Option<ShardFilter>,
}

/// The Kinesis service of one account.
pub struct StreamService {
    db: Db,
    region: String,
    account: String,
    config: StreamConfig,
    clock: Arc<dyn Clock>,
    key: IteratorKey,
    throttle: Arc<Mutex<Throttle>>,
    /// Each stream's open shards for routing puts (used on the writer thread only).
    routes: Arc<RouteCache>,
}

impl StreamService {
    /// Woken after every committed write (a shard's poller waits on it while idle).
    pub fn changed(&self) -> std::sync::Arc<tokio::sync::Notify> {
        match &self.db {
            Db::Sqlite(store) => store.changed(),
            Db::Postgres(shared) => shared.changed(),
        }
    }
}

/// `shardId-000000000007`.
pub fn shard_id(ix: u32) -> String {
    format!("shardId-{ix:012}")
}

/// The index a shard id names, read as AWS reads it (`shardId-000000000007`, `shardId-7`, `7`).
pub fn parse_shard_id(id: &str) -> Option<u32> {
    let digits = id.split_once('-').map_or(id, |(_, d)| d);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u32>().ok().filter(|ix| *ix <= i32::MAX as u32)
}

fn shard_info(s: &ShardRow) -> ShardInfo {
    let created_s = (s.created_ms / 1000) as u64;
    ShardInfo {
        shard_id: shard_id(s.ix),
        parent_shard_id: s.parent.map(shard_id),
        adjacent_parent_shard_id: s.adjacent_parent.map(shard_id),
        starting_hash_key: s.start.to_string(),
        ending_hash_key: s.end.to_string(),
        starting_sequence_number: SequenceNumber { shard_created_s: created_s, shard: s.ix, index: 0, time_s: created_s }.format(),
        ending_sequence_number: s
            .closed_ms
            .map(|c| SequenceNumber { shard_created_s: created_s, shard: s.ix, index: END, time_s: (c / 1000) as u64 }.format()),
        index: s.ix,
        created_ms: s.created_ms,
        closed_ms: s.closed_ms,
    }
}

fn record_out(shard: &ShardRow, r: RecordRow) -> RecordOut {
    RecordOut {
        sequence_number: SequenceNumber {
            shard_created_s: (shard.created_ms / 1000) as u64,
            shard: shard.ix,
            index: r.seq,
            time_s: (r.arrival_ms / 1000) as u64,
        }
        .format(),
        arrival_ms: r.arrival_ms,
        data: r.data,
        partition_key: r.partition_key,
        index: r.seq,
    }
}

/// Everything a job on the writer thread needs to word its errors.
#[derive(Clone)]
struct Names {
    region: String,
    account: String,
}

impl Names {
    fn arn(&self, name: &str) -> String {
        format!("arn:aws:kinesis:{}:{}:stream/{name}", self.region, self.account)
    }

    fn not_found(&self, name: &str) -> StreamError {
        StreamError::ResourceNotFound(format!("Stream {name} under account {} not found.", self.account))
    }

    /// A stream a put writes to (held against reshards until the commit).
    async fn stream_for_write(&self, tx: &mut impl StreamTx, name: &str) -> Result<StreamRow, StreamError> {
        tx.find_stream_for_write(name).await?.ok_or_else(|| self.not_found(name))
    }

    /// A stream whose row or shards change (held exclusively until the commit).
    async fn stream_for_change(&self, tx: &mut impl StreamTx, name: &str) -> Result<StreamRow, StreamError> {
        tx.find_stream_for_change(name).await?.ok_or_else(|| self.not_found(name))
    }

    async fn stream(&self, tx: &mut impl StreamTx, name: &str) -> Result<StreamRow, StreamError> {
        tx.find_stream(name).await?.ok_or_else(|| self.not_found(name))
    }

    /// A shard named by a request: "Could not find shard" when the id is not one, "does not
    /// exist" when the stream has no such shard (kinesalite's AWS-checked wording).
    async fn shard(&self, tx: &mut impl StreamTx, stream: &StreamRow, id: &str) -> Result<ShardRow, StreamError> {
        let missing = || {
            StreamError::ResourceNotFound(format!("Could not find shard {id} in stream {} under account {}.", stream.name, self.account))
        };
        let ix = parse_shard_id(id).ok_or_else(missing)?;
        tx.shard(stream.id, ix).await?.ok_or_else(|| {
            StreamError::ResourceNotFound(format!(
                "Shard {} in stream {} under account {} does not exist",
                shard_id(ix),
                stream.name,
                self.account
            ))
        })
    }

    async fn quota(&self, tx: &mut impl StreamTx, quota: u32, adding: u32) -> Result<(), StreamError> {
        let current = tx.open_shard_count().await?;
        if current + adding > quota {
            return Err(StreamError::LimitExceeded(format!(
                "This request would exceed the shard limit for the account {} in {}. Current shard count for the account: {current}. Limit: {quota}. Number of additional shards that would have resulted from this request: {adding}. Refer to the AWS Service Limits page (http://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html) for current limits and how to request higher limits.",
                self.account, self.region
            )));
        }
        Ok(())
    }
}

/// Applies resharding steps at `now_ms`: parents close, children open.
async fn apply(tx: &mut impl StreamTx, stream: &mut StreamRow, changes: &[Change], now_ms: i64) -> Result<(), StreamError> {
    let child = |s: &OpenShard, parent: u32, adjacent: Option<u32>| ShardRow {
        ix: s.ix,
        parent: Some(parent),
        adjacent_parent: adjacent,
        start: s.start,
        end: s.end,
        created_ms: now_ms,
        closed_ms: None,
        last_seq: 0,
        last_arrival_ms: 0,
    };
    for change in changes {
        match change {
            Change::Split { parent, children } => {
                tx.close_shard(stream.id, *parent, now_ms).await?;
                for c in children {
                    tx.insert_shard(stream.id, &child(c, *parent, None)).await?;
                    stream.next_shard = stream.next_shard.max(c.ix + 1);
                }
            }
            Change::Merge { parent, adjacent, child: c } => {
                tx.close_shard(stream.id, *parent, now_ms).await?;
                tx.close_shard(stream.id, *adjacent, now_ms).await?;
                tx.insert_shard(stream.id, &child(c, *parent, Some(*adjacent))).await?;
                stream.next_shard = stream.next_shard.max(c.ix + 1);
            }
        }
    }
    tx.update_stream(stream).await
}

fn open_shard(s: &ShardRow) -> OpenShard {
    OpenShard { ix: s.ix, start: s.start, end: s.end }
}

fn token(text: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

fn untoken(text: &str) -> Option<String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).ok().and_then(|b| String::from_utf8(b).ok())
}

impl StreamService {
    /// Opens (creating if needed) the stream database at `path` and starts its retention
    /// sweep (every [`SWEEP_EVERY`]).
    pub fn open(path: &Path, region: &str, account: &str, config: StreamConfig) -> Result<Arc<StreamService>, StreamError> {
        let svc = Self::with_store(Db::Sqlite(Store::open(path)?), region, account, config, Arc::new(SystemClock));
        let weak = Arc::downgrade(&svc);
        tokio::spawn(sweep_forever(weak));
        Ok(svc)
    }

    /// The service on the account's streams in a PostgreSQL database several nodes share,
    /// with its retention sweep (every node sweeps; a sweep removes what is expired, once).
    pub async fn open_shared(url: &str, region: &str, account: &str, config: StreamConfig) -> Result<Arc<StreamService>, StreamError> {
        let shared = store::postgres::SharedStreams::open(url, account).await?;
        let svc = Self::with_store(Db::Postgres(shared), region, account, config, Arc::new(SystemClock));
        tokio::spawn(sweep_forever(Arc::downgrade(&svc)));
        Ok(svc)
    }

    /// A service on an in-memory database with `clock` and no background sweep (tests).
    pub fn in_memory(region: &str, account: &str, config: StreamConfig, clock: Arc<dyn Clock>) -> Result<Arc<StreamService>, StreamError> {
        Ok(Self::with_store(Db::Sqlite(Store::in_memory()?), region, account, config, clock))
    }

    fn with_store(db: Db, region: &str, account: &str, config: StreamConfig, clock: Arc<dyn Clock>) -> Arc<StreamService> {
        Arc::new(StreamService {
            db,
            region: region.to_string(),
            account: account.to_string(),
            config,
            clock,
            key: IteratorKey::generate(),
            throttle: Arc::new(Mutex::new(Throttle::new(config.shard_limits))),
            routes: Arc::default(),
        })
    }

    fn names(&self) -> Names {
        Names { region: self.region.clone(), account: self.account.clone() }
    }

    /// `arn:aws:kinesis:<region>:<account>:stream/<name>`.
    pub fn stream_arn(&self, name: &str) -> String {
        self.names().arn(name)
    }

    /// The account these streams belong to.
    pub fn account(&self) -> &str {
        &self.account
    }

    pub async fn create_stream(&self, input: CreateStream) -> Result<(), StreamError> {
        let (names, now, quota) = (self.names(), self.clock.now_ms(), self.config.shard_quota);
        let count = input.shard_count.unwrap_or(self.config.on_demand_shards);
        in_tx!(&self.db, true, |tx| {
            if tx.find_stream(&input.name).await?.is_some() {
                return Err(StreamError::ResourceInUse(format!("Stream {} under account {} already exists.", input.name, names.account)));
            }
            if input.tags.len() > MAX_TAGS {
                return Err(too_many_tags(&input.name, &names.account));
            }
            names.quota(tx, quota, count).await?;
            let mut row = StreamRow {
                id: 0,
                name: input.name,
                on_demand: input.mode == StreamMode::OnDemand,
                retention_hours: MIN_RETENTION_HOURS as u32,
                created_ms: now,
                tags: input.tags,
                next_shard: count,
            };
            row.id = tx.insert_stream(&row).await?.ok_or_else(|| {
                StreamError::ResourceInUse(format!("Stream {} under account {} already exists.", row.name, names.account))
            })?;
            for (ix, (start, end)) in hashkey::uniform_ranges(count).into_iter().enumerate() {
                let shard = ShardRow {
                    ix: ix as u32,
                    parent: None,
                    adjacent_parent: None,
                    start,
                    end,
                    created_ms: now,
                    closed_ms: None,
                    last_seq: 0,
                    last_arrival_ms: 0,
                };
                tx.insert_shard(row.id, &shard).await?;
            }
            Ok(())
        })
    }

    pub async fn delete_stream(&self, name: &str) -> Result<(), StreamError> {
        let (names, name, routes) = (self.names(), name.to_string(), self.routes.clone());
        let id = in_tx!(&self.db, true, |tx| {
            let stream = names.stream_for_change(tx, &name).await?;
            tx.delete_stream(stream.id).await?;
            routes.forget(&name);
            Ok(stream.id)
        })?;
        self.throttle.lock().expect("throttle lock").forget(id);
        Ok(())
    }

    /// DescribeStream: the stream and a page of its shards (`limit`, default 100, after
    /// `exclusive_start_shard_id`).
    pub async fn describe_stream(
        &self,
        name: &str,
        limit: Option<usize>,
        exclusive_start_shard_id: Option<String>,
    ) -> Result<StreamInfo, StreamError> {
        let (names, name) = (self.names(), name.to_string());
        in_tx!(&self.db, false, |tx| {
            let stream = names.stream(tx, &name).await?;
            let all = tx.shards(stream.id).await?;
            let after = exclusive_start_shard_id.as_deref().and_then(parse_shard_id);
            let limit = limit.unwrap_or(100);
            let rest: Vec<&ShardRow> = all.iter().filter(|s| after.is_none_or(|a| s.ix > a)).collect();
            let mut info = stream_info(&names, &stream, &all);
            info.has_more_shards = rest.len() > limit;
            info.shards = rest.into_iter().take(limit).map(shard_info).collect();
            Ok(info)
        })
    }

    pub async fn describe_stream_summary(&self, name: &str) -> Result<StreamInfo, StreamError> {
        let (names, name) = (self.names(), name.to_string());
        in_tx!(&self.db, false, |tx| {
            let stream = names.stream(tx, &name).await?;
            Ok(stream_info(&names, &stream, &tx.shards(stream.id).await?))
        })
    }

    /// ListStreams: names in order after `exclusive_start` (or the token's), `limit` of them
    /// (default 100); the token for the next page when there is one.
    pub async fn list_streams(
        &self,
        limit: Option<usize>,
        exclusive_start: Option<String>,
        next_token: Option<String>,
    ) -> Result<(Vec<StreamSummary>, bool, Option<String>), StreamError> {
        let after = match next_token {
            Some(t) => Some(untoken(&t).ok_or_else(|| StreamError::invalid(format!("Invalid NextToken: {t}")))?),
            None => exclusive_start,
        };
        let limit = limit.unwrap_or(100);
        let names = self.names();
        in_tx!(&self.db, false, |tx| {
            let streams: Vec<StreamRow> =
                tx.all_streams().await?.into_iter().filter(|s| after.as_ref().is_none_or(|a| s.name > *a)).collect();
            let more = streams.len() > limit;
            let page: Vec<StreamSummary> = streams
                .into_iter()
                .take(limit)
                .map(|s| StreamSummary {
                    arn: names.arn(&s.name),
                    status: "ACTIVE",
                    mode: if s.on_demand { StreamMode::OnDemand } else { StreamMode::Provisioned },
                    created_ms: s.created_ms,
                    name: s.name,
                })
                .collect();
            let next = if more { page.last().map(|s| token(&s.name)) } else { None };
            Ok((page, more, next))
        })
    }

    /// ListShards: shards in index order, filtered, a page at a time.
    pub async fn list_shards(&self, input: ListShards) -> Result<(Vec<ShardInfo>, Option<String>), StreamError> {
        // The token carries what the first call asked for: stream, filter, last shard.
        let (stream, after, filter) = match &input.next_token {
            Some(t) => {
                let bad = || StreamError::invalid(format!("Invalid NextToken: {t}"));
                let text = untoken(t).ok_or_else(bad)?;
                let v: serde_json::Value = serde_json::from_str(&text).map_err(|_| bad())?;
                let stream = v["s"].as_str().ok_or_else(bad)?.to_string();
                let after = v["a"].as_u64().map(|a| a as u32);
                let filter = match (v["f"].as_str(), v["t"].as_i64(), v["i"].as_str()) {
                    (Some("AFTER_SHARD_ID"), _, Some(id)) => Some(ShardFilter::AfterShardId(id.to_string())),
                    (Some("AT_TRIM_HORIZON"), _, _) => Some(ShardFilter::AtTrimHorizon),
                    (Some("FROM_TRIM_HORIZON"), _, _) => Some(ShardFilter::FromTrimHorizon),
                    (Some("AT_LATEST"), _, _) => Some(ShardFilter::AtLatest),
                    (Some("AT_TIMESTAMP"), Some(t), _) => Some(ShardFilter::AtTimestamp(t)),
                    (Some("FROM_TIMESTAMP"), Some(t), _) => Some(ShardFilter::FromTimestamp(t)),
                    _ => None,
                };
                (stream, after, filter)
            }
            None => (
                input.stream.clone().unwrap_or_default(),
                input.exclusive_start_shard_id.as_deref().and_then(parse_shard_id),
                input.filter.clone(),
            ),
        };
        let limit = input.max_results.unwrap_or(1000);
        let (names, now) = (self.names(), self.clock.now_ms());
        in_tx!(&self.db, false, |tx| {
            let row = names.stream(tx, &stream).await?;
            let horizon = now - i64::from(row.retention_hours) * 3_600_000;
            let open_at = |s: &ShardRow, t: i64| s.created_ms <= t && s.closed_ms.is_none_or(|c| c > t);
            let kept: Vec<ShardRow> = tx
                .shards(row.id)
                .await?
                .into_iter()
                .filter(|s| after.is_none_or(|a| s.ix > a))
                .filter(|s| match &filter {
                    None => true,
                    Some(ShardFilter::AfterShardId(id)) => parse_shard_id(id).is_none_or(|a| s.ix > a),
                    Some(ShardFilter::AtTrimHorizon) => open_at(s, horizon.max(row.created_ms)),
                    Some(ShardFilter::FromTrimHorizon) => s.closed_ms.is_none_or(|c| c >= horizon),
                    Some(ShardFilter::AtLatest) => s.is_open(),
                    Some(ShardFilter::AtTimestamp(t)) => open_at(s, (*t).max(row.created_ms)),
                    Some(ShardFilter::FromTimestamp(t)) => s.closed_ms.is_none_or(|c| c > *t),
                })
                .collect();
            let more = kept.len() > limit;
            let page: Vec<ShardInfo> = kept.iter().take(limit).map(shard_info).collect();
            let next = match (more, page.last()) {
                (true, Some(last)) => {
                    let (f, t, i) = match &filter {
                        None => (None, None, None),
                        Some(ShardFilter::AfterShardId(id)) => (Some("AFTER_SHARD_ID"), None, Some(id.clone())),
                        Some(ShardFilter::AtTrimHorizon) => (Some("AT_TRIM_HORIZON"), None, None),
                        Some(ShardFilter::FromTrimHorizon) => (Some("FROM_TRIM_HORIZON"), None, None),
                        Some(ShardFilter::AtLatest) => (Some("AT_LATEST"), None, None),
                        Some(ShardFilter::AtTimestamp(t)) => (Some("AT_TIMESTAMP"), Some(*t), None),
                        Some(ShardFilter::FromTimestamp(t)) => (Some("FROM_TIMESTAMP"), Some(*t), None),
                    };
                    let v = serde_json::json!({"s": row.name, "a": last.index, "f": f, "t": t, "i": i});
                    Some(token(&v.to_string()))
                }
                _ => None,
            };
            Ok((page, next))
        })
    }

    /// PutRecord: the record's shard and sequence number, or the shard's throttling error.
    pub async fn put_record(
        &self,
        name: &str,
        record: NewRecord,
        sequence_number_for_ordering: Option<String>,
    ) -> Result<(String, String), StreamError> {
        if let Some(seq) = &sequence_number_for_ordering {
            let valid = SequenceNumber::parse(seq).is_some_and(|s| s.time_s as i64 <= self.clock.now_ms() / 1000);
            if !valid {
                return Err(StreamError::invalid(format!(
                    "ExclusiveMinimumSequenceNumber {seq} used in PutRecord on stream {name} under account {} is invalid.",
                    self.account
                )));
            }
        }
        match self.put(name, vec![record]).await?.pop() {
            Some(PutOutcome::Stored { shard_id, sequence_number }) => Ok((shard_id, sequence_number)),
            Some(PutOutcome::Failed { message, .. }) => Err(StreamError::ProvisionedThroughputExceeded(message)),
            None => Err(StreamError::Internal("no outcome for the record".into())),
        }
    }

    /// PutRecords: one outcome per record, in order; a record a shard cannot take now fails
    /// alone (`ProvisionedThroughputExceededException`), the others are stored.
    pub async fn put_records(&self, name: &str, records: Vec<NewRecord>) -> Result<Vec<PutOutcome>, StreamError> {
        self.put(name, records).await
    }

    async fn put(&self, name: &str, records: Vec<NewRecord>) -> Result<Vec<PutOutcome>, StreamError> {
        // Hash keys are checked before anything is stored.
        let mut keys = Vec::with_capacity(records.len());
        for r in &records {
            keys.push(match &r.explicit_hash_key {
                Some(k) => hashkey::parse(k).ok_or_else(|| {
                    StreamError::invalid(format!(
                        "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was {k}"
                    ))
                })?,
                None => hashkey::of_partition_key(&r.partition_key),
            });
        }
        let (names, name, now, throttle) = (self.names(), name.to_string(), self.clock.now_ms(), self.throttle.clone());
        let routes = self.routes.clone();
        in_tx!(&self.db, true, |tx| {
            let stream = names.stream_for_write(tx, &name).await?;
            let routes = routes.get(tx, &stream).await?;
            let mut routed = Vec::with_capacity(records.len());
            for key in &keys {
                let Some(shard) = routes.find(*key) else {
                    return Err(StreamError::Internal(format!("no open shard of {name} holds hash key {key}")));
                };
                routed.push(*shard);
            }
            // The newest record's index and arrival time of each shard written to, held
            // until the commit.
            let mut written: Vec<u32> = routed.iter().map(|r| r.ix).collect();
            written.sort_unstable();
            written.dedup();
            let mut heads = tx.shard_heads(stream.id, &written).await?;
            let mut rows = Vec::with_capacity(records.len());
            let mut outcomes = Vec::with_capacity(records.len());
            {
                let mut throttle = throttle.lock().expect("throttle lock");
                for (record, shard) in records.into_iter().zip(routed) {
                    let size = (record.data.len() + record.partition_key.len()) as u64;
                    if !throttle.admit(stream.id, shard.ix, size, now) {
                        outcomes.push(PutOutcome::Failed {
                            code: "ProvisionedThroughputExceededException",
                            message: format!(
                                "Rate exceeded for shard {} in stream {name} under account {}.",
                                shard_id(shard.ix),
                                names.account
                            ),
                        });
                        continue;
                    }
                    let head = heads.get_mut(&shard.ix).ok_or_else(|| StreamError::Internal(format!("shard {} has no row", shard.ix)))?;
                    // Strictly increasing indexes, and arrival times that never go back.
                    head.0 += 1;
                    head.1 = head.1.max(now);
                    let row = RecordRow { seq: head.0, arrival_ms: head.1, partition_key: record.partition_key, data: record.data };
                    let sequence_number = SequenceNumber {
                        shard_created_s: (shard.created_ms / 1000) as u64,
                        shard: shard.ix,
                        index: row.seq,
                        time_s: (row.arrival_ms / 1000) as u64,
                    }
                    .format();
                    rows.push((shard.ix, row));
                    outcomes.push(PutOutcome::Stored { shard_id: shard_id(shard.ix), sequence_number });
                }
            }
            tx.insert_records(stream.id, &rows).await?;
            let mut touched: Vec<u32> = rows.iter().map(|(ix, _)| *ix).collect();
            touched.sort_unstable();
            touched.dedup();
            let advanced: Vec<(u32, u64, i64)> = touched.iter().map(|ix| (*ix, heads[ix].0, heads[ix].1)).collect();
            tx.advance_shards(stream.id, &advanced).await?;
            Ok(outcomes)
        })
    }

    /// GetShardIterator.
    pub async fn get_shard_iterator(&self, name: &str, shard: &str, start: IteratorStart) -> Result<String, StreamError> {
        let now = self.clock.now_ms();
        if let IteratorStart::AtTimestamp(t) = start {
            if t > now {
                return Err(StreamError::invalid(format!(
                    "The timestampInMillis parameter cannot be greater than the currentTimestampInMillis. timestampInMillis: {t}, currentTimestampInMillis: {now}"
                )));
            }
        }
        let (names, name, shard) = (self.names(), name.to_string(), shard.to_string());
        let position = in_tx!(&self.db, false, |tx| {
            let stream = names.stream(tx, &name).await?;
            let row = names.shard(tx, &stream, &shard).await?;
            let from = match &start {
                IteratorStart::TrimHorizon => ReadFrom::TrimHorizon,
                IteratorStart::Latest => ReadFrom::Latest,
                IteratorStart::AtTimestamp(t) => ReadFrom::Timestamp(*t),
                IteratorStart::AtSequence(seq) | IteratorStart::AfterSequence(seq) => {
                    let invalid = |why: &str| {
                        StreamError::invalid(format!(
                                "StartingSequenceNumber {seq} used in GetShardIterator on shard {} in stream {} under account {} is invalid{why}.",
                                shard_id(row.ix),
                                stream.name,
                                names.account
                            ))
                    };
                    let parsed = SequenceNumber::parse(seq).ok_or_else(|| invalid(""))?;
                    if parsed.shard != row.ix {
                        return Err(StreamError::invalid(format!(
                            "Invalid StartingSequenceNumber. It encodes {}, while it was used in a call to a shard with {}",
                            shard_id(parsed.shard),
                            shard_id(row.ix)
                        )));
                    }
                    if parsed.shard_created_s != (row.created_ms / 1000) as u64 {
                        return Err(invalid(" because it did not come from this stream"));
                    }
                    let after = matches!(start, IteratorStart::AfterSequence(_));
                    ReadFrom::Index(if after { parsed.index.saturating_add(1) } else { parsed.index })
                }
            };
            Ok(Position {
                stream_id: stream.id,
                stream: stream.name,
                shard: row.ix,
                next: resolve(tx, stream.id, &row, from).await?,
                issued_ms: now,
            })
        })?;
        Ok(self.key.encode(&position))
    }

    /// GetRecords: up to `limit` records (default and at most 10,000; at most 10 MiB) from
    /// the iterator's position.
    pub async fn get_records(&self, iterator: &str, limit: Option<usize>) -> Result<RecordsPage, StreamError> {
        let now = self.clock.now_ms();
        let position = self.key.decode(iterator, now).map_err(|r| match r {
            Refusal::Invalid => StreamError::invalid("Invalid ShardIterator."),
            Refusal::OtherRun => StreamError::ExpiredIterator(
                "Iterator expired. The iterator was issued before this server restarted; get a new one with GetShardIterator.".into(),
            ),
            Refusal::Expired(issued) => expired_message(issued, now),
        })?;
        let limit = limit.unwrap_or(MAX_GET_RECORDS).clamp(1, MAX_GET_RECORDS);
        let (names, at) = (self.names(), position.clone());
        let (page, next) = in_tx!(&self.db, false, |tx| {
            let gone = || {
                StreamError::ResourceNotFound(format!(
                    "Shard {} in stream {} under account {} does not exist",
                    shard_id(position.shard),
                    position.stream,
                    names.account
                ))
            };
            let stream = tx.stream_by_id(position.stream_id).await?.filter(|s| s.name == position.stream).ok_or_else(gone)?;
            let shard = tx.shard(stream.id, position.shard).await?.ok_or_else(gone)?;
            read(tx, &stream, &shard, position.next, limit, now).await
        })?;
        let next_iterator = next.map(|n| self.key.encode(&Position { next: n, issued_ms: now, ..at }));
        Ok(RecordsPage { next_iterator, ..page })
    }

    /// Reads a shard for a poller (no iterator): up to `limit` records from `from`, and the
    /// index to read from next (None once a closed shard is read to its end).
    pub async fn read_shard(
        &self,
        name: &str,
        shard: u32,
        from: ReadFrom,
        limit: usize,
    ) -> Result<(RecordsPage, Option<u64>), StreamError> {
        let (names, name, now) = (self.names(), name.to_string(), self.clock.now_ms());
        let limit = limit.clamp(1, MAX_GET_RECORDS);
        in_tx!(&self.db, false, |tx| {
            let stream = names.stream(tx, &name).await?;
            let row = names.shard(tx, &stream, &shard_id(shard)).await?;
            let start = resolve(tx, stream.id, &row, from).await?;
            read(tx, &stream, &row, start, limit, now).await
        })
    }

    /// Every shard of a stream, parents before children (index order), for pollers.
    pub async fn shards(&self, name: &str) -> Result<Vec<ShardInfo>, StreamError> {
        let (names, name) = (self.names(), name.to_string());
        in_tx!(&self.db, false, |tx| {
            let stream = names.stream(tx, &name).await?;
            Ok(tx.shards(stream.id).await?.iter().map(shard_info).collect())
        })
    }

    pub async fn increase_retention(&self, name: &str, hours: i64) -> Result<(), StreamError> {
        self.retention(name, hours, true).await
    }

    pub async fn decrease_retention(&self, name: &str, hours: i64) -> Result<(), StreamError> {
        self.retention(name, hours, false).await?;
        let id = {
            let (names, name) = (self.names(), name.to_string());
            in_tx!(&self.db, false, |tx| Ok(names.stream(tx, &name).await?.id))?
        };
        let now = self.clock.now_ms();
        in_tx!(&self.db, false, |tx| store::sweep(tx, now, Some(id)).await)?;
        Ok(())
    }

    async fn retention(&self, name: &str, hours: i64, increase: bool) -> Result<(), StreamError> {
        if hours < MIN_RETENTION_HOURS {
            return Err(StreamError::invalid(format!(
                "Minimum allowed retention period is {MIN_RETENTION_HOURS} hours. Requested retention period ({hours} hours) is too short."
            )));
        }
        if hours > MAX_RETENTION_HOURS {
            return Err(StreamError::invalid(format!(
                "Maximum allowed retention period is {MAX_RETENTION_HOURS} hours. Requested retention period ({hours} hours) is too long."
            )));
        }
        let (names, name) = (self.names(), name.to_string());
        in_tx!(&self.db, true, |tx| {
            let mut stream = names.stream_for_change(tx, &name).await?;
            let current = i64::from(stream.retention_hours);
            if increase && hours < current {
                return Err(StreamError::invalid(format!(
                        "Requested retention period ({hours} hours) for stream {name} can not be shorter than existing retention period ({current} hours). Use DecreaseRetentionPeriod API."
                    )));
            }
            if !increase && hours > current {
                return Err(StreamError::invalid(format!(
                        "Requested retention period ({hours} hours) for stream {name} can not be longer than existing retention period ({current} hours). Use IncreaseRetentionPeriod API."
                    )));
            }
            stream.retention_hours = hours as u32;
            tx.update_stream(&stream).await
        })
    }

    /// SplitShard: `new_starting_hash_key` (decimal) starts the upper child.
    pub async fn split_shard(&self, name: &str, shard: &str, new_starting_hash_key: &str) -> Result<(), StreamError> {
        let (names, name, shard, key) = (self.names(), name.to_string(), shard.to_string(), new_starting_hash_key.to_string());
        let (now, quota) = (self.clock.now_ms(), self.config.shard_quota);
        in_tx!(&self.db, true, |tx| {
            let mut stream = names.stream_for_change(tx, &name).await?;
            let row = names.shard(tx, &stream, &shard).await?;
            not_closed(&names, &stream, &row, "splitting")?;
            names.quota(tx, quota, 1).await?;
            let bad = || {
                StreamError::invalid(format!(
                        "NewStartingHashKey {key} used in SplitShard() on shard {} in stream {name} under account {} is not both greater than one plus the shard's StartingHashKey {} and less than the shard's EndingHashKey {}.",
                        shard_id(row.ix),
                        names.account,
                        row.start,
                        row.end
                    ))
            };
            let at = hashkey::parse(&key).ok_or_else(bad)?;
            let mut next = stream.next_shard;
            let change = shards::split(&open_shard(&row), at, &mut next).map_err(|_| bad())?;
            apply(tx, &mut stream, &[change], now).await
        })
    }

    /// MergeShards: the child's ParentShardId is `shard`, its AdjacentParentShardId `adjacent`.
    pub async fn merge_shards(&self, name: &str, shard: &str, adjacent: &str) -> Result<(), StreamError> {
        let (names, name, shard, adjacent) = (self.names(), name.to_string(), shard.to_string(), adjacent.to_string());
        let now = self.clock.now_ms();
        in_tx!(&self.db, true, |tx| {
            let mut stream = names.stream_for_change(tx, &name).await?;
            let a = names.shard(tx, &stream, &shard).await?;
            let b = names.shard(tx, &stream, &adjacent).await?;
            not_closed(&names, &stream, &a, "merging")?;
            not_closed(&names, &stream, &b, "merging")?;
            let mut next = stream.next_shard;
            let change = shards::merge(&open_shard(&a), &open_shard(&b), &mut next).ok_or_else(|| {
                StreamError::invalid(format!(
                    "Shards {} and {} in stream {name} under account {} are not an adjacent pair of shards eligible for merging",
                    shard_id(a.ix),
                    shard_id(b.ix),
                    names.account
                ))
            })?;
            apply(tx, &mut stream, &[change], now).await
        })
    }

    /// UpdateShardCount (UNIFORM_SCALING): (current, target) open shard counts.
    pub async fn update_shard_count(&self, name: &str, target: u32) -> Result<(u32, u32), StreamError> {
        let (names, name) = (self.names(), name.to_string());
        let (now, quota) = (self.clock.now_ms(), self.config.shard_quota);
        in_tx!(&self.db, true, |tx| {
            let mut stream = names.stream_for_change(tx, &name).await?;
            let open: Vec<OpenShard> = tx.shards(stream.id).await?.iter().filter(|s| s.is_open()).map(open_shard).collect();
            let current = open.len() as u32;
            if target > current * 2 {
                return Err(StreamError::invalid(format!(
                        "UpdateShardCount cannot scale up over double your current open shard count. Current open shard count: {current} Target shard count: {target}"
                    )));
            }
            if target * 2 < current {
                return Err(StreamError::invalid(format!(
                        "UpdateShardCount cannot scale down below half your current open shard count. Current open shard count: {current} Target shard count: {target}"
                    )));
            }
            if target > current {
                names.quota(tx, quota, target - current).await?;
            }
            let mut next = stream.next_shard;
            let changes = shards::uniform(&open, target, &mut next);
            apply(tx, &mut stream, &changes, now).await?;
            Ok((current, target))
        })
    }

    pub async fn add_tags(&self, name: &str, tags: BTreeMap<String, String>) -> Result<(), StreamError> {
        let (names, name) = (self.names(), name.to_string());
        in_tx!(&self.db, true, |tx| {
            let mut stream = names.stream_for_change(tx, &name).await?;
            stream.tags.extend(tags);
            if stream.tags.len() > MAX_TAGS {
                return Err(too_many_tags(&name, &names.account));
            }
            tx.update_stream(&stream).await
        })
    }

    pub async fn remove_tags(&self, name: &str, keys: Vec<String>) -> Result<(), StreamError> {
        let (names, name) = (self.names(), name.to_string());
        in_tx!(&self.db, true, |tx| {
            let mut stream = names.stream_for_change(tx, &name).await?;
            for k in keys {
                stream.tags.remove(&k);
            }
            tx.update_stream(&stream).await
        })
    }

    /// ListTagsForStream: tags by key after `exclusive_start`, `limit` (default 50) of them,
    /// and whether more follow.
    pub async fn list_tags(
        &self,
        name: &str,
        exclusive_start: Option<String>,
        limit: Option<usize>,
    ) -> Result<(Vec<(String, String)>, bool), StreamError> {
        let (names, name) = (self.names(), name.to_string());
        let limit = limit.unwrap_or(MAX_TAGS);
        in_tx!(&self.db, false, |tx| {
            let stream = names.stream(tx, &name).await?;
            let rest: Vec<(String, String)> =
                stream.tags.into_iter().filter(|(k, _)| exclusive_start.as_ref().is_none_or(|s| k > s)).collect();
            let more = rest.len() > limit;
            Ok((rest.into_iter().take(limit).collect(), more))
        })
    }

    /// The tags of a stream, for authorization's `aws:ResourceTag` keys; None if it does not exist.
    pub async fn tags_of(&self, name: &str) -> Option<BTreeMap<String, String>> {
        let name = name.to_string();
        let tags: Result<_, StreamError> = in_tx!(&self.db, false, |tx| Ok(tx.find_stream(&name).await?.map(|s| s.tags)));
        tags.ok().flatten()
    }

    /// Removes every record older than its stream's retention (and closed shards past it);
    /// returns how many records went.
    pub async fn sweep(&self) -> Result<usize, StreamError> {
        let now = self.clock.now_ms();
        in_tx!(&self.db, false, |tx| store::sweep(tx, now, None).await)
    }
}

async fn sweep_forever(svc: Weak<StreamService>) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(svc) = svc.upgrade() else { break };
        if let Err(e) = svc.sweep().await {
            tracing::warn!("stream retention sweep: {e}");
        }
    }
}

fn too_many_tags(name: &str, account: &str) -> StreamError {
    StreamError::invalid(format!(
        "Failed to add tags to stream {name} under account {account} because a given stream cannot have more than {MAX_TAGS} tags associated with it."
    ))
}

fn not_closed(names: &Names, stream: &StreamRow, shard: &ShardRow, what: &str) -> Result<(), StreamError> {
    if shard.is_open() {
        return Ok(());
    }
    Err(StreamError::ResourceInUse(format!(
        "Shard {} in stream {} under account {} has already been merged or split, and thus is not eligible for {what}.",
        shard_id(shard.ix),
        stream.name,
        names.account
    )))
}

fn stream_info(names: &Names, stream: &StreamRow, shards: &[ShardRow]) -> StreamInfo {
    StreamInfo {
        name: stream.name.clone(),
        arn: names.arn(&stream.name),
        status: "ACTIVE",
        mode: if stream.on_demand { StreamMode::OnDemand } else { StreamMode::Provisioned },
        retention_hours: stream.retention_hours,
        created_ms: stream.created_ms,
        open_shard_count: shards.iter().filter(|s| s.is_open()).count() as u32,
        shards: Vec::new(),
        has_more_shards: false,
    }
}

/// The index a read from `from` starts at.
async fn resolve(tx: &mut impl StreamTx, stream_id: i64, shard: &ShardRow, from: ReadFrom) -> Result<u64, StreamError> {
    Ok(match from {
        ReadFrom::TrimHorizon => 0,
        ReadFrom::Latest => shard.last_seq + 1,
        ReadFrom::Index(i) => i,
        ReadFrom::Timestamp(t) => store::first_at_time(tx, stream_id, shard, t).await?,
    })
}

/// Reads up to `limit` records (and at most [`MAX_GET_BYTES`]) of `shard` from index `from`
/// at `now`: the page (without its iterator) and the index to read from next, None once a
/// closed shard is read to its end.
async fn read(
    tx: &mut impl StreamTx,
    stream: &StreamRow,
    shard: &ShardRow,
    from: u64,
    limit: usize,
    now: i64,
) -> Result<(RecordsPage, Option<u64>), StreamError> {
    let cutoff = now - i64::from(stream.retention_hours) * 3_600_000;
    // One more than asked for: the first record left says how far behind the reader is.
    let mut rows = tx.read_records(stream.id, shard.ix, from, cutoff, limit + 1).await?.into_iter();
    let (mut records, mut bytes, mut behind) = (Vec::new(), 0usize, 0i64);
    let mut next = from;
    for row in rows.by_ref() {
        let size = row.data.len() + row.partition_key.len();
        if records.len() == limit || (!records.is_empty() && bytes + size > MAX_GET_BYTES) {
            behind = (now - row.arrival_ms).max(0);
            break;
        }
        bytes += size;
        next = row.seq + 1;
        records.push(record_out(shard, row));
    }
    let finished = shard.closed_ms.is_some() && next > shard.last_seq;
    let child_shards = if finished { children(tx, stream.id, shard.ix).await? } else { Vec::new() };
    let page = RecordsPage { records, next_iterator: None, millis_behind_latest: behind, child_shards };
    Ok((page, if finished { None } else { Some(next) }))
}

async fn children(tx: &mut impl StreamTx, stream_id: i64, parent: u32) -> Result<Vec<ChildShard>, StreamError> {
    Ok(tx
        .shards(stream_id)
        .await?
        .into_iter()
        .filter(|s| s.parent == Some(parent) || s.adjacent_parent == Some(parent))
        .map(|s| ChildShard {
            shard_id: shard_id(s.ix),
            parent_shards: s.parent.into_iter().chain(s.adjacent_parent).map(shard_id).collect(),
            starting_hash_key: s.start.to_string(),
            ending_hash_key: s.end.to_string(),
        })
        .collect())
}

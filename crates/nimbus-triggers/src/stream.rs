//! Stream event source mappings (Kinesis streams and DynamoDB Streams): validation at
//! creation, and the pollers. Each mapping runs one supervisor task that starts one poller
//! per shard (children once their parents are read to their end); a poller reads a batch
//! from its checkpoint, invokes the function with AWS's Kinesis or DynamoDB event, and moves
//! the durable checkpoint (the `Store`'s, per mapping and shard) past what succeeded or was
//! given up on. A failing batch blocks its shard: retried, bisected, or sent to OnFailure as
//! [`crate::stream_batch`] decides.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use nimbus_invoke::MessageSink;
use nimbus_model::event_source::{stream_limits, EventSourceMapping, StreamSettings};
use nimbus_model::{now_millis, ApiError, FunctionRef, InvokeRequest};
use nimbus_rules::{Dialect, Pattern};
use nimbus_streams::{ReadFrom as KinesisFrom, StreamService};
use nimbus_tables::ReadFrom as TableFrom;
use nimbus_tables::{StreamPage, TableError, TableService};
use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::sqs::{EventSources, NewMapping, StreamOptions};
use crate::stream_batch::{
    failure_object_key, failure_record, first_failure, fitting, BatchRun, FailedBatch, Outcome, RetryPolicy, Step, StreamKind,
    PAYLOAD_LIMIT,
};
use crate::stream_window::{
    add_window_members, answered_state, lane_of, state_size, window_start, Checkpoint, OpenWindow, WindowCall, STATE_LIMIT,
};

/// A shard's checkpoint once it is closed and read to its end.
const END: &str = "END";
/// The checkpoint key of a DynamoDB stream's one shard.
const TABLE_SHARD: &str = "stream";
/// How often an idle shard is read again when no write wakes its poller.
const IDLE_POLL: Duration = Duration::from_millis(200);
/// How often a shard's poller makes sure its lease is still this node's (several nodes).
const LEASE_CHECK: Duration = Duration::from_secs(2);
/// How long after a tumbling window's end its final invocation waits, so a record stamped
/// just before the end but committed just after it still joins the window.
const WINDOW_GRACE_MS: i64 = 1_000;

/// The services stream mappings read and send failure records through (set once the
/// server has built them).
pub struct StreamSources {
    pub kinesis: Arc<StreamService>,
    pub tables: Arc<TableService>,
    /// OnFailure destinations: SQS queues and SNS topics.
    pub sink: Arc<dyn MessageSink>,
}

/// What a stream mapping reads.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Kinesis { name: String },
    Table { arn: String },
}

impl Source {
    fn kind(&self) -> StreamKind {
        match self {
            Source::Kinesis { .. } => StreamKind::Kinesis,
            Source::Table { .. } => StreamKind::DynamoDb,
        }
    }
}

/// `arn:aws:kinesis:<region>:<account>:stream/<name>` or
/// `arn:aws:dynamodb:<region>:<account>:table/<table>/stream/<label>`.
fn source_of(arn: &str) -> Option<Source> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" {
        return None;
    }
    match (parts[2], parts[5]) {
        ("kinesis", res) => {
            res.strip_prefix("stream/").filter(|n| !n.is_empty() && !n.contains('/')).map(|n| Source::Kinesis { name: n.into() })
        }
        ("dynamodb", res) if res.starts_with("table/") && res.contains("/stream/") => Some(Source::Table { arn: arn.into() }),
        _ => None,
    }
}

/// Whether an ARN names a Kinesis stream or a DynamoDB stream.
pub fn is_stream_arn(arn: &str) -> bool {
    source_of(arn).is_some()
}

/// A shard to poll.
#[derive(Debug, Clone)]
struct ShardRef {
    key: String,
    index: u32,
    parents: Vec<String>,
    open: bool,
}

/// A record read, with its event record and where the checkpoint goes once it is handled.
#[derive(Debug, Clone)]
struct Rec {
    seq: String,
    arrival_ms: i64,
    event: Value,
    after: String,
    /// The partition key (a Kinesis record's, a DynamoDB item's keys): its lane.
    key: String,
}

/// Where a poller reads from.
#[derive(Debug, Clone)]
enum From {
    Start { position: String, timestamp: Option<f64> },
    After(String),
}

/// AWS's words for a required member left out: an InvalidParameterValueException ending in a
/// full stop (test_lambda_api.snapshot.json, test_create_event_source_validation[_kinesis]).
fn validation_null(member: &str) -> ApiError {
    ApiError::invalid(format!(
        "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null."
    ))
}

/// Checks the stream settings of a new mapping or of a change, filling AWS's defaults.
pub(crate) fn settings(old: Option<&StreamSettings>, o: &StreamOptions, creating: bool) -> Result<StreamSettings, ApiError> {
    let starting_position = match (&o.starting_position, old, creating) {
        (Some(p), _, true) => p.clone(),
        (None, _, true) => return Err(validation_null("startingPosition")),
        (_, Some(old), false) => old.starting_position.clone(),
        (_, None, false) => return Err(ApiError::invalid("not a stream mapping")),
    };
    if !["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"].contains(&starting_position.as_str()) {
        return Err(ApiError::validation(
            &starting_position,
            "startingPosition",
            "Member must satisfy enum value set: [LATEST, AT_TIMESTAMP, TRIM_HORIZON]",
        ));
    }
    let starting_position_timestamp =
        if creating { o.starting_position_timestamp } else { old.and_then(|s| s.starting_position_timestamp) };
    if starting_position == "AT_TIMESTAMP" && starting_position_timestamp.is_none() {
        return Err(ApiError::invalid("StartingPositionTimestamp must be set when StartingPosition is AT_TIMESTAMP"));
    }
    let retries = o.maximum_retry_attempts.or(old.map(|s| s.maximum_retry_attempts)).unwrap_or(-1);
    if !(-1..=stream_limits::MAX_RETRY_ATTEMPTS).contains(&retries) {
        return Err(ApiError::validation(
            &retries.to_string(),
            "maximumRetryAttempts",
            "Member must have value less than or equal to 10000",
        ));
    }
    let age = o.maximum_record_age_secs.or(old.map(|s| s.maximum_record_age_secs)).unwrap_or(-1);
    if !(-1..=stream_limits::MAX_RECORD_AGE_SECS).contains(&age) {
        let constraint = if age < -1 {
            "Member must have value greater than or equal to -1"
        } else {
            "Member must have value less than or equal to 604800"
        };
        return Err(ApiError::validation(&age.to_string(), "maximumRecordAgeInSeconds", constraint));
    }
    if age != -1 && age < stream_limits::MIN_RECORD_AGE_SECS {
        return Err(ApiError::invalid("MaximumRecordAgeInSeconds must be -1 or between 60 and 604800"));
    }
    let on_failure = match &o.on_failure {
        Some(d) => d.clone().filter(|d| !d.is_empty()),
        None => old.and_then(|s| s.on_failure.clone()),
    };
    if let Some(d) = &on_failure {
        if !(d.starts_with("arn:aws:sqs:") || d.starts_with("arn:aws:sns:") || d.starts_with("arn:aws:s3:::")) {
            return Err(ApiError::invalid(format!(
                "The provided destination config DestinationConfig(onSuccess=null, onFailure=OnFailure(destination={d})) is invalid."
            )));
        }
    }
    // The wire layer holds both to AWS's ranges (1..=10, 0..=900).
    let parallelization_factor = o.parallelization_factor.or(old.map(|s| s.parallelization_factor)).unwrap_or(1);
    let tumbling_window_secs = o.tumbling_window_secs.or(old.map(|s| s.tumbling_window_secs)).unwrap_or(0);
    if parallelization_factor > 1 && tumbling_window_secs > 0 {
        // A window's state is one per shard (AWS: "a maximum of 1 MB per shard"), which
        // batches of one shard running at once could not share.
        return Err(ApiError::invalid("TumblingWindowInSeconds cannot be used with a ParallelizationFactor greater than 1"));
    }
    Ok(StreamSettings {
        starting_position,
        starting_position_timestamp,
        maximum_retry_attempts: retries,
        maximum_record_age_secs: age,
        bisect_on_error: o.bisect_on_error.or(old.map(|s| s.bisect_on_error)).unwrap_or(false),
        on_failure,
        parallelization_factor,
        tumbling_window_secs,
    })
}

/// A Kinesis record as Lambda delivers it.
#[allow(clippy::too_many_arguments)]
fn kinesis_record(shard: &str, seq: &str, partition_key: &str, data: &[u8], arrival_ms: i64, role: &str, region: &str, arn: &str) -> Value {
    use base64::Engine as _;
    json!({
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": partition_key,
            "sequenceNumber": seq,
            "data": base64::engine::general_purpose::STANDARD.encode(data),
            "approximateArrivalTimestamp": arrival_ms as f64 / 1000.0,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": format!("{shard}:{seq}"),
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": role,
        "awsRegion": region,
        "eventSourceARN": arn,
    })
}

/// Reads a DynamoDB stream for a poller. A checkpoint the retention sweep has passed (the
/// records after it are gone: `TrimmedDataAccessException`) resumes at the trim horizon, the
/// oldest record kept, as Lambda does, instead of failing on every poll. (A Kinesis checkpoint
/// is a record index, and reading from it already starts at the oldest record kept.)
async fn read_table(tables: &TableService, arn: &str, at: TableFrom, limit: usize) -> Result<StreamPage, TableError> {
    match tables.read_stream(arn, at, limit).await {
        Err(TableError::TrimmedDataAccess(_)) => {
            tracing::warn!(stream = arn, "the checkpoint is behind the stream's trim horizon; resuming at the oldest record kept");
            tables.read_stream(arn, TableFrom::TrimHorizon, limit).await
        }
        r => r,
    }
}

/// What FilterCriteria patterns see: a Kinesis record with its data decoded as JSON
/// (`data`), a DynamoDB record as delivered.
fn filter_view(kind: StreamKind, event: &Value) -> Value {
    use base64::Engine as _;
    let mut view = event.clone();
    if kind == StreamKind::Kinesis {
        let decoded = event["kinesis"]["data"]
            .as_str()
            .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
        if let Some(data) = decoded {
            view["data"] = data;
        }
    }
    view
}

impl EventSources {
    fn sources(&self) -> Result<&StreamSources, ApiError> {
        self.streams.get().ok_or_else(|| ApiError::service("stream sources are not available"))
    }

    /// Gives the mappings their stream services and starts every enabled stream mapping.
    pub async fn attach_streams(self: &Arc<Self>, sources: StreamSources) -> Result<(), ApiError> {
        if self.streams.set(sources).is_err() {
            return Ok(());
        }
        for m in self.store.list_event_source_mappings().await.map_err(crate::sqs::store_err)? {
            if m.enabled && m.stream.is_some() {
                self.spawn_stream_poller(&m);
            }
        }
        Ok(())
    }

    /// CreateEventSourceMapping for a stream: checked, stored, the starting position pinned
    /// for LATEST (so records put after the answer are delivered), the pollers started.
    pub(crate) async fn create_stream_mapping(self: &Arc<Self>, n: NewMapping) -> Result<EventSourceMapping, ApiError> {
        let source = source_of(&n.event_source_arn).ok_or_else(|| ApiError::invalid("Unsupported event source ARN"))?;
        crate::sqs::check_filters(&n.filters)?;
        let settings = settings(None, &n.stream, true)?;
        if source.kind() == StreamKind::DynamoDb && settings.starting_position == "AT_TIMESTAMP" {
            return Err(ApiError::invalid(format!("Unsupported starting position for arn type: {}", n.event_source_arn)));
        }
        let batch = n.batch_size.unwrap_or(stream_limits::DEFAULT_BATCH);
        let window = n.window_secs.unwrap_or(0);
        if window > stream_limits::MAX_WINDOW_SECS {
            return Err(ApiError::validation(
                &window.to_string(),
                "maximumBatchingWindowInSeconds",
                "Member must have value less than or equal to 300",
            ));
        }
        if source.kind() == StreamKind::DynamoDb && batch > 10_000 {
            return Err(ApiError::invalid("BatchSize must be between 1 and 10000"));
        }
        let missing = |e: ApiError| {
            if e.code == nimbus_model::ErrorCode::ResourceNotFound {
                ApiError::invalid("Function does not exist")
            } else {
                e
            }
        };
        self.control.get(&n.function.name).await.map_err(missing)?;
        self.control.route(&n.function.name, n.function.qualifier.as_ref()).await.map_err(missing)?;
        let shards = self.shards_of(&source).await.map_err(|_| ApiError::invalid(format!("Stream not found: {}", n.event_source_arn)))?;
        let existing = self.store.list_event_source_mappings().await.map_err(crate::sqs::store_err)?;
        if let Some(e) = existing.iter().find(|m| {
            m.event_source_arn == n.event_source_arn
                && m.function == n.function.name
                && m.qualifier.as_deref() == n.function.qualifier.as_ref().map(|q| q.as_str())
        }) {
            return Err(ApiError::conflict(format!(
                "The event source arn (\" {} \") and function (\" {} \") provided mapping already exists. Please update or delete the existing mapping with UUID {}",
                n.event_source_arn, n.function.name, e.uuid
            )));
        }
        let m = EventSourceMapping {
            uuid: uuid::Uuid::new_v4().to_string(),
            event_source_arn: n.event_source_arn,
            function: n.function.name,
            qualifier: n.function.qualifier.map(|q| q.as_str().to_string()),
            enabled: n.enabled,
            batch_size: batch,
            maximum_batching_window_secs: window,
            report_batch_item_failures: n.report_batch_item_failures,
            maximum_concurrency: None,
            last_modified_ms: now_millis(),
            last_processing_result: "No records processed".into(),
            filters: n.filters,
            stream: Some(settings.clone()),
            tags: n.tags,
        };
        if settings.starting_position == "LATEST" {
            for s in &shards {
                let at = if s.open {
                    self.read(&source, s, &From::Start { position: "LATEST".into(), timestamp: None }, 1).await
                } else {
                    Ok((Vec::new(), None, String::new()))
                };
                let position = match at {
                    Ok((_, Some(next), _)) => next,
                    Ok((_, None, _)) => END.to_string(),
                    Err(e) => return Err(ApiError::service(format!("reading the stream: {e}"))),
                };
                self.store.put_stream_checkpoint(&m.uuid, &s.key, &position).await.map_err(crate::sqs::store_err)?;
            }
        }
        self.store.put_event_source_mapping(&m).await.map_err(crate::sqs::store_err)?;
        if m.enabled {
            self.spawn_stream_poller(&m);
        }
        Ok(m)
    }

    pub(crate) fn spawn_stream_poller(self: &Arc<Self>, m: &EventSourceMapping) {
        let (me, mc) = (self.clone(), m.clone());
        let handle = tokio::spawn(async move { me.run_stream_mapping(mc).await });
        self.run_pollers(m, vec![handle]);
    }

    async fn shards_of(&self, source: &Source) -> Result<Vec<ShardRef>, String> {
        match source {
            Source::Kinesis { name } => {
                let shards = self.sources().map_err(|e| e.message)?.kinesis.shards(name).await.map_err(|e| e.to_string())?;
                Ok(shards
                    .into_iter()
                    .map(|s| ShardRef {
                        key: s.shard_id,
                        index: s.index,
                        parents: s.parent_shard_id.into_iter().chain(s.adjacent_parent_shard_id).collect(),
                        open: s.ending_sequence_number.is_none(),
                    })
                    .collect())
            }
            Source::Table { arn } => {
                self.sources().map_err(|e| e.message)?.tables.read_stream(arn, TableFrom::Latest, 1).await.map_err(|e| e.to_string())?;
                Ok(vec![ShardRef { key: TABLE_SHARD.into(), index: 0, parents: Vec::new(), open: true }])
            }
        }
    }

    /// Reads up to `limit` records: the records, where to read next (None: the shard is
    /// closed and read to its end), and the shard's id as events name it.
    async fn read(
        &self,
        source: &Source,
        shard: &ShardRef,
        from: &From,
        limit: usize,
    ) -> Result<(Vec<Rec>, Option<String>, String), String> {
        let sources = self.sources().map_err(|e| e.message)?;
        match source {
            Source::Kinesis { name } => {
                let at = match from {
                    From::After(i) => KinesisFrom::Index(i.parse().map_err(|_| format!("bad checkpoint {i}"))?),
                    From::Start { position, .. } if position == "LATEST" => KinesisFrom::Latest,
                    From::Start { position, timestamp: Some(t) } if position == "AT_TIMESTAMP" => {
                        KinesisFrom::Timestamp((t * 1000.0) as i64)
                    }
                    From::Start { .. } => KinesisFrom::TrimHorizon,
                };
                let (page, next) = sources.kinesis.read_shard(name, shard.index, at, limit).await.map_err(|e| e.to_string())?;
                let arn = sources.kinesis.stream_arn(name);
                let recs = page
                    .records
                    .iter()
                    .map(|r| Rec {
                        seq: r.sequence_number.clone(),
                        arrival_ms: r.arrival_ms,
                        event: kinesis_record(&shard.key, &r.sequence_number, &r.partition_key, &r.data, r.arrival_ms, "", "", &arn),
                        after: (r.index + 1).to_string(),
                        key: r.partition_key.clone(),
                    })
                    .collect();
                Ok((recs, next.map(|n| n.to_string()), shard.key.clone()))
            }
            Source::Table { arn } => {
                let at = match from {
                    From::After(s) => TableFrom::AfterSequence(s.clone()),
                    From::Start { position, .. } if position == "LATEST" => TableFrom::Latest,
                    From::Start { .. } => TableFrom::TrimHorizon,
                };
                let page = read_table(&sources.tables, arn, at, limit).await.map_err(|e| e.to_string())?;
                let recs = page
                    .records
                    .into_iter()
                    .map(|r| {
                        let (seq, arrival_ms) =
                            (r.dynamodb.sequence_number.clone(), (r.dynamodb.approximate_creation_date_time * 1000.0) as i64);
                        let mut event = serde_json::to_value(&r).expect("stream records serialize");
                        event["eventSourceARN"] = json!(arn);
                        let key = event["dynamodb"]["Keys"].to_string();
                        Rec { after: seq.clone(), seq, arrival_ms, event, key }
                    })
                    .collect();
                Ok((recs, page.next, page.shard_id))
            }
        }
    }

    /// A mapping's supervisor: starts a poller per shard, parents first, and keeps looking
    /// for new shards (splits and merges).
    async fn run_stream_mapping(self: Arc<Self>, m: EventSourceMapping) {
        let Some(source) = source_of(&m.event_source_arn) else { return };
        let role = self.control.get(&m.function).await.map(|f| f.role).unwrap_or_default();
        let mut tasks: JoinSet<()> = JoinSet::new();
        // Each poller's shard, by task (a poller that panicked names none).
        let mut keys: HashMap<tokio::task::Id, String> = HashMap::new();
        let mut running: HashSet<String> = HashSet::new();
        loop {
            if self.draining() {
                // Its shards' pollers finish their rounds first (dropping the set would
                // abort them).
                while tasks.join_next().await.is_some() {}
                return;
            }
            while let Some(done) = tasks.try_join_next_with_id() {
                let id = match &done {
                    Ok((id, _)) => *id,
                    Err(e) => e.id(),
                };
                if let Some(key) = keys.remove(&id) {
                    if let Err(e) = done {
                        // A poller that panicked: its shard is started again (here or,
                        // its lease handed back, elsewhere).
                        tracing::error!(mapping = %m.uuid, shard = %key, "a shard's poller failed: {e}");
                        let _ = self.store.release_shard(&m.uuid, &key).await;
                    }
                    running.remove(&key);
                }
            }
            // Kept as stored: only a poller about to start parses its windows' state.
            let checkpoints: HashMap<String, String> = match self.store.stream_checkpoints(&m.uuid).await {
                Ok(c) => c.into_iter().collect(),
                Err(e) => {
                    self.set_result(&m.uuid, &format!("PROBLEM: {e}"));
                    self.pause(Duration::from_secs(1)).await;
                    continue;
                }
            };
            match self.shards_of(&source).await {
                Ok(shards) => {
                    let ended = |key: &String| checkpoints.get(key).is_some_and(|c| Checkpoint::position_of(c) == END);
                    let parents_done = |s: &ShardRef| s.parents.iter().all(|p| ended(p) || !shards.iter().any(|x| &x.key == p));
                    // With other nodes, this one polls its share of the shards: a node over
                    // it hands one back per round (its poller stops after its batch), and
                    // one at it takes no more.
                    let pollable = shards.iter().filter(|s| !ended(&s.key) && parents_done(s)).count();
                    let share = fair_share(pollable, self.live_nodes().await);
                    let shedding: Vec<String> = {
                        let lost = self.lost_leases.lock().unwrap_or_else(|p| p.into_inner());
                        running.iter().filter(|k| lost.contains(&(m.uuid.clone(), (*k).clone()))).cloned().collect()
                    };
                    if running.len() - shedding.len() > share {
                        if let Some(key) = running.iter().filter(|k| !shedding.contains(k)).max().cloned() {
                            tracing::info!(mapping = %m.uuid, shard = %key, "handing a shard to another node ({share} of {pollable} are this node's share)");
                            self.lost_leases.lock().unwrap_or_else(|p| p.into_inner()).insert((m.uuid.clone(), key));
                        }
                    }
                    for s in &shards {
                        if running.contains(&s.key) || ended(&s.key) || !parents_done(s) {
                            continue;
                        }
                        if running.len() >= share {
                            break;
                        }
                        // One node polls a shard (several share the store): the one whose
                        // lease this is. Its checkpoint is read again once the lease is this
                        // node's (the last holder may have moved it meanwhile).
                        match self.store.claim_shard(&m.uuid, &s.key).await {
                            Ok(true) => {}
                            Ok(false) => continue,
                            Err(e) => {
                                tracing::warn!(mapping = %m.uuid, shard = %s.key, "taking the shard's lease: {e}");
                                continue;
                            }
                        }
                        let checkpoints: HashMap<String, String> = match self.store.stream_checkpoints(&m.uuid).await {
                            Ok(c) => c.into_iter().collect(),
                            Err(e) => {
                                tracing::warn!(mapping = %m.uuid, shard = %s.key, "reading the checkpoints: {e}");
                                let _ = self.store.release_shard(&m.uuid, &s.key).await;
                                continue;
                            }
                        };
                        running.insert(s.key.clone());
                        let stored = checkpoints.get(&s.key).map(|c| Checkpoint::parse(c));
                        let windows = stored.as_ref().map(|c| c.windows.clone()).unwrap_or_default();
                        let from = match stored {
                            Some(c) => From::After(c.position),
                            // Children start at their beginning, whatever the mapping's position.
                            None if !s.parents.is_empty() => From::Start { position: "TRIM_HORIZON".into(), timestamp: None },
                            None => {
                                let st = m.stream.as_ref();
                                From::Start {
                                    position: st.map(|s| s.starting_position.clone()).unwrap_or_default(),
                                    timestamp: st.and_then(|s| s.starting_position_timestamp),
                                }
                            }
                        };
                        let (me, mc, src, shard, role) = (self.clone(), m.clone(), source.clone(), s.clone(), role.clone());
                        let key = shard.key.clone();
                        let handle = tasks.spawn(async move {
                            me.shard_pollers.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let counted = Counted(&me.shard_pollers);
                            me.poll_shard(&mc, &src, &shard, from, windows, &role).await;
                            drop(counted);
                            if let Err(e) = me.store.release_shard(&mc.uuid, &shard.key).await {
                                tracing::warn!(mapping = %mc.uuid, shard = %shard.key, "handing the shard's lease back: {e}");
                            }
                        });
                        keys.insert(handle.id(), key);
                    }
                }
                Err(e) => self.set_result(&m.uuid, &format!("PROBLEM: {e}")),
            }
            self.pause(Duration::from_secs(1)).await;
        }
    }

    /// The cluster's live nodes (1 alone), counted at most every 2 s.
    async fn live_nodes(&self) -> usize {
        if let Some((at, n)) = *self.nodes.lock().unwrap_or_else(|p| p.into_inner()) {
            if at.elapsed() < Duration::from_secs(2) {
                return n;
            }
        }
        let n = match self.store.peers().await {
            Ok(peers) => peers.len().max(1),
            Err(_) => return self.nodes.lock().unwrap_or_else(|p| p.into_inner()).map_or(1, |(_, n)| n),
        };
        *self.nodes.lock().unwrap_or_else(|p| p.into_inner()) = Some((std::time::Instant::now(), n));
        n
    }

    /// Whether this node still holds `shard`'s lease (renewing it); a lost one is recorded
    /// for the shard's poller.
    async fn still_holds(&self, m: &EventSourceMapping, shard: &str) -> bool {
        if self.lost_leases.lock().unwrap_or_else(|p| p.into_inner()).contains(&(m.uuid.clone(), shard.to_string())) {
            return false;
        }
        match self.store.claim_shard(&m.uuid, shard).await {
            Ok(true) => true,
            Ok(false) => {
                self.lost_leases.lock().unwrap_or_else(|p| p.into_inner()).insert((m.uuid.clone(), shard.to_string()));
                false
            }
            // Unknown: the fenced checkpoint decides.
            Err(_) => true,
        }
    }

    async fn checkpoint(&self, m: &EventSourceMapping, shard: &str, position: &str) {
        for attempt in 0..5u64 {
            match self.store.put_stream_checkpoint(&m.uuid, shard, position).await {
                Ok(()) => return,
                Err(nimbus_store::StoreError::Conflict) => {
                    // Another node took the shard over (this one's lease lapsed): its
                    // checkpoint is the shard's now; this poller stops at its next step.
                    tracing::warn!(mapping = %m.uuid, shard, "the shard's lease is another node's: the checkpoint stays theirs");
                    self.lost_leases.lock().unwrap_or_else(|p| p.into_inner()).insert((m.uuid.clone(), shard.to_string()));
                    return;
                }
                Err(e) => {
                    tracing::warn!(mapping = %m.uuid, shard, "storing a checkpoint failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100 * (attempt + 1))).await;
                }
            }
        }
    }

    /// One shard's poller: returns once a closed shard is read to its end. Each read is a
    /// [`Round`]: its records go to their ParallelizationFactor lanes by partition key, the
    /// lanes deliver at once (each in order), and the checkpoint follows the records handled
    /// without a gap. With tumbling windows, each lane keeps its open window's state, stored
    /// with the checkpoint.
    async fn poll_shard(
        self: &Arc<Self>,
        m: &EventSourceMapping,
        source: &Source,
        shard: &ShardRef,
        mut from: From,
        mut windows: Vec<Option<OpenWindow>>,
        role: &str,
    ) {
        let settings = m.stream.clone().expect("stream mappings have stream settings");
        let region = self.partition().region.clone();
        let patterns: Vec<Pattern> = m.filters.iter().filter_map(|f| Pattern::parse(Dialect::FilterCriteria, f).ok()).collect();
        let lanes = settings.parallelization_factor.clamp(1, stream_limits::MAX_PARALLELIZATION) as usize;
        let secs = settings.tumbling_window_secs;
        if windows.len() > lanes {
            // The factor went down: the windows of lanes gone close with their next record's
            // lane (their state is dropped, as when AWS reshards a mapping).
            tracing::warn!(mapping = %m.uuid, shard = %shard.key, "ParallelizationFactor changed; windows of removed lanes are dropped");
        }
        windows.resize(lanes, None);
        let limit = m.batch_size as usize;
        let read_limit = (limit * lanes).min(stream_limits::MAX_BATCH as usize);
        let changed = match (source, self.sources()) {
            (Source::Kinesis { .. }, Ok(s)) => s.kinesis.changed(),
            (Source::Table { .. }, Ok(s)) => s.tables.changed(),
            (_, Err(_)) => std::sync::Arc::new(tokio::sync::Notify::new()),
        };
        // Draining: the round in progress ends (its checkpoint stored), no other starts.
        let mut lease_checked = std::time::Instant::now();
        while !self.draining() {
            if self.lost_leases.lock().unwrap_or_else(|p| p.into_inner()).remove(&(m.uuid.clone(), shard.key.clone())) {
                return;
            }
            if lease_checked.elapsed() >= LEASE_CHECK {
                lease_checked = std::time::Instant::now();
                if !self.still_holds(m, &shard.key).await {
                    self.lost_leases.lock().unwrap_or_else(|p| p.into_inner()).remove(&(m.uuid.clone(), shard.key.clone()));
                    tracing::info!(mapping = %m.uuid, shard = %shard.key, "another node polls this shard now");
                    return;
                }
            }
            // Registered before the read, so a write committed after it wakes the wait below.
            let woken = changed.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let (mut recs, next, shard_id) = match self.read(source, shard, &from, read_limit).await {
                Ok(r) => r,
                Err(e) => {
                    self.set_result(&m.uuid, &format!("PROBLEM: {e}"));
                    self.pause(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let base = match &from {
                From::After(p) => Some(p.clone()),
                From::Start { .. } => None,
            };
            // Windows stored under another TumblingWindowInSeconds (changed by an update, or
            // turned off) end now, with their own width.
            for w in windows.iter_mut().flatten().filter(|w| w.secs == 0) {
                w.secs = secs;
            }
            if windows.iter().flatten().any(|w| w.secs != secs) {
                let round = Round::new(m, &settings, source, &shard.key, &shard_id, Vec::new(), base.clone(), windows);
                for lane in 0..lanes {
                    if round.window(lane).await.is_some_and(|w| w.secs != secs) {
                        self.close_window(&round, lane, false).await;
                    }
                }
                windows = std::mem::take(&mut round.progress.lock().await.windows);
            }
            if recs.is_empty() {
                let position = match next {
                    None => {
                        // A closed shard read to its end: its windows end with it.
                        let round = Round::new(m, &settings, source, &shard.key, &shard_id, Vec::new(), base, windows);
                        for lane in 0..lanes {
                            self.close_window(&round, lane, false).await;
                        }
                        self.checkpoint(m, &shard.key, END).await;
                        return;
                    }
                    Some(n) => n,
                };
                if let From::Start { .. } = from {
                    // Pin where LATEST or a timestamp resolved to.
                    self.checkpoint(m, &shard.key, &Checkpoint { position: position.clone(), windows: windows.clone() }.encode()).await;
                }
                from = From::After(position.clone());
                let now = now_millis();
                if windows.iter().flatten().any(|w| w.end_ms() + WINDOW_GRACE_MS <= now) {
                    let round = Round::new(m, &settings, source, &shard.key, &shard_id, Vec::new(), Some(position), windows);
                    self.close_ended_windows(&round, now).await;
                    windows = round.progress.lock().await.windows.clone();
                }
                // Idle: until a write commits, the earliest open window ends, or the interval
                // passes (a fallback).
                let until_window = windows.iter().flatten().map(|w| w.end_ms() + WINDOW_GRACE_MS - now).min();
                let wait = until_window.map_or(IDLE_POLL, |ms| IDLE_POLL.min(Duration::from_millis(ms.max(1) as u64)));
                tokio::select! {
                    _ = tokio::time::timeout(wait, woken) => {}
                    _ = self.drained() => {}
                }
                continue;
            }
            // MaximumBatchingWindowInSeconds: wait for the batch to fill, once. (Draining, the
            // records stay past the checkpoint, for the next start.)
            if recs.len() < limit && m.maximum_batching_window_secs > 0 && next.is_some() {
                if !self.pause(Duration::from_secs(u64::from(m.maximum_batching_window_secs))).await {
                    continue;
                }
                if let Ok((more, _, _)) = self.read(source, shard, &from, read_limit).await {
                    if more.len() > recs.len() {
                        recs = more;
                    }
                }
            }
            for r in &mut recs {
                if let Some(obj) = r.event.as_object_mut() {
                    if source.kind() == StreamKind::Kinesis {
                        obj.insert("invokeIdentityArn".into(), json!(role));
                        obj.insert("awsRegion".into(), json!(region));
                    }
                }
            }
            let mut lane_records: Vec<Vec<usize>> = vec![Vec::new(); lanes];
            let mut filtered = Vec::new();
            for (i, r) in recs.iter().enumerate() {
                if patterns.is_empty() || patterns.iter().any(|p| p.matches(&filter_view(source.kind(), &r.event))) {
                    lane_records[lane_of(&r.key, lanes)].push(i);
                } else {
                    filtered.push(i);
                }
            }
            let round = Arc::new(Round::new(m, &settings, source, &shard.key, &shard_id, recs, base, windows));
            round.progress.lock().await.mark(&filtered);
            let busy: Vec<(usize, Vec<usize>)> = lane_records.into_iter().enumerate().filter(|(_, r)| !r.is_empty()).collect();
            if busy.len() == 1 {
                let (lane, ords) = busy.into_iter().next().expect("one lane");
                self.run_lane(&round, lane, &ords).await;
            } else {
                let mut running = JoinSet::new();
                for (lane, ords) in busy {
                    let (me, round) = (self.clone(), round.clone());
                    running.spawn(async move { me.run_lane(&round, lane, &ords).await });
                }
                while let Some(done) = running.join_next().await {
                    if let Err(e) = done {
                        tracing::error!(mapping = %m.uuid, shard = %shard.key, "a lane's delivery failed: {e}");
                    }
                }
            }
            // Windows that ended while the shard stayed busy (their lane got no later record,
            // or every record since was filtered out) end now (or at the next start, when
            // the node is draining).
            if secs > 0 && !self.draining() {
                self.close_ended_windows(&round, now_millis()).await;
            }
            let mut p = round.progress.lock().await;
            round.save_progress(self, &mut p).await;
            if let Some(position) = round.position(&p) {
                from = From::After(position);
            }
            windows = std::mem::take(&mut p.windows);
        }
    }

    /// Delivers one lane's records of a round in order: in batches of at most BatchSize
    /// records that fit one payload and, with tumbling windows, belong to one window (the
    /// window before it closes with a final invocation first).
    async fn run_lane(&self, round: &Round, lane: usize, ords: &[usize]) {
        let batch = (round.m.batch_size as usize).max(1);
        let secs = round.settings.tumbling_window_secs;
        let limit = if secs > 0 { PAYLOAD_LIMIT - STATE_LIMIT - 1024 } else { PAYLOAD_LIMIT };
        let mut i = 0;
        // Draining: the records not delivered yet wait past the checkpoint for the next start.
        while i < ords.len() && !self.draining() {
            let window = (secs > 0).then(|| window_start(round.recs[ords[i]].arrival_ms, secs));
            let mut end = i + 1;
            while end < ords.len() && end - i < batch && window.is_none_or(|w| window_start(round.recs[ords[end]].arrival_ms, secs) <= w) {
                end += 1;
            }
            let sizes: Vec<usize> = ords[i..end].iter().map(|&o| round.recs[o].event.to_string().len()).collect();
            let end = i + fitting(&sizes, limit);
            if let Some(start) = window {
                let open = round.window(lane).await;
                if open.as_ref().is_some_and(|w| start > w.start_ms) {
                    self.close_window(round, lane, false).await;
                }
                let mut p = round.progress.lock().await;
                if p.windows[lane].is_none() {
                    p.windows[lane] = Some(OpenWindow::new(start, secs));
                }
            }
            self.deliver(round, lane, &ords[i..end]).await;
            i = end;
        }
    }

    /// Ends every lane's window whose end (and grace) has passed by `now`.
    async fn close_ended_windows(&self, round: &Round, now: i64) {
        let lanes = round.progress.lock().await.windows.len();
        for lane in 0..lanes {
            if round.window(lane).await.is_some_and(|w| w.end_ms() + WINDOW_GRACE_MS <= now) {
                self.close_window(round, lane, false).await;
            }
        }
    }

    /// Ends a lane's open window (if any) with its final invocation (`isFinalInvokeForWindow`,
    /// no records, the window's state), retried as a batch is; then the state is dropped.
    /// `early`: the state grew past AWS's limit, and the window goes on with a fresh state.
    async fn close_window(&self, round: &Round, lane: usize, early: bool) {
        let Some(w) = round.window(lane).await else { return };
        let call = WindowCall { shard_id: &round.shard_id, stream_arn: &round.m.event_source_arn, last: true, early };
        let payload = round.event(&[], Some((&w, call)));
        // Retried until it succeeds: AWS suspends the shard's processing until the final
        // invocation goes through, rather than drop the window's aggregate.
        let mut attempts: u32 = 0;
        loop {
            match self.invoker.invoke(round.invoke_request(payload.clone())).await {
                Ok(o) if o.function_error.is_none() => break,
                Err(e) if e.code == nimbus_model::ErrorCode::TooManyRequests => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                _ => {
                    attempts += 1;
                    self.set_result(&round.m.uuid, "PROBLEM: Function call failed");
                    tokio::time::sleep(Duration::from_millis((100u64 << attempts.min(5)).min(2_000))).await;
                }
            }
        }
        let mut p = round.progress.lock().await;
        p.windows[lane] = early.then(|| OpenWindow::new(w.start_ms, w.secs));
        round.write(self, &p).await;
    }

    /// Delivers some of a lane's records until every one succeeded or was given up on,
    /// moving the checkpoint as it goes.
    async fn deliver(&self, round: &Round, lane: usize, ords: &[usize]) {
        let (m, st) = (&round.m, &round.settings);
        let policy = RetryPolicy { max_retries: st.maximum_retry_attempts, bisect: st.bisect_on_error };
        let mut run = BatchRun::new(ords.len(), policy);
        let mut last_error: Option<String> = None;
        let mut last_request = String::new();
        while let Some((range, attempts)) = run.current() {
            // Draining: the call in progress was the last; a retry is the next start's.
            if self.draining() {
                return;
            }
            // A retry goes on only while the shard is still this node's (a node that lost it
            // leaves the batch to the new holder).
            if attempts > 0 && !self.still_holds(m, &round.key).await {
                return;
            }
            let batch = &ords[range.clone()];
            let first = &round.recs[batch[0]];
            let too_old = st.maximum_record_age_secs >= 0 && now_millis() - first.arrival_ms > i64::from(st.maximum_record_age_secs) * 1000;
            let (steps, condition) = if too_old {
                (run.expire(), "RecordAgeExceeded")
            } else {
                if attempts > 0 && !self.pause(Duration::from_millis((100u64 << attempts.min(5)).min(2_000))).await {
                    return;
                }
                let window = if st.tumbling_window_secs > 0 { round.window(lane).await } else { None };
                let call = WindowCall { shard_id: &round.shard_id, stream_arn: &m.event_source_arn, last: false, early: false };
                // IteratorAge (AWS: the age of the last record in the event), at every
                // invocation, so a shard stuck retrying shows its growing age.
                let last = &round.recs[batch[batch.len() - 1]];
                self.invoker.record_iterator_age(&m.function, m.qualifier.as_deref(), (now_millis() - last.arrival_ms).max(0) as f64);
                let payload = round.event(batch, window.as_ref().map(|w| (w, call)));
                let outcome = match self.invoker.invoke(round.invoke_request(payload)).await {
                    Ok(o) => {
                        last_request = o.request_id.clone();
                        last_error = o.function_error.clone();
                        let state = match &window {
                            Some(_) if o.function_error.is_none() => Some(answered_state(&o.payload)),
                            _ => None,
                        };
                        let outcome = if o.function_error.is_some() || matches!(state, Some(Err(_))) {
                            Outcome::Failed
                        } else if m.report_batch_item_failures {
                            let seqs: Vec<&str> = batch.iter().map(|&o| round.recs[o].seq.as_str()).collect();
                            match first_failure(&o.payload, &seqs) {
                                Ok(None) => Outcome::Success,
                                Ok(Some(k)) => Outcome::FailedFrom(k),
                                Err(_) => Outcome::Failed,
                            }
                        } else {
                            Outcome::Success
                        };
                        // The answered state counts only when some records succeeded: a call
                        // that failed as a whole is retried on the state it started from.
                        if let (Some(Ok(state)), Outcome::Success | Outcome::FailedFrom(1..)) = (state, outcome) {
                            self.keep_state(round, lane, state).await;
                        }
                        outcome
                    }
                    Err(e) if e.code == nimbus_model::ErrorCode::TooManyRequests => {
                        // A throttle is no failure of the batch: wait and try again.
                        self.set_result(&m.uuid, "PROBLEM: Function call throttled");
                        self.pause(Duration::from_millis(500)).await;
                        continue;
                    }
                    Err(e) => {
                        last_error = None;
                        self.set_result(&m.uuid, &format!("PROBLEM: {}", e.message));
                        Outcome::Failed
                    }
                };
                if outcome == Outcome::Failed && self.stopping() {
                    // Most likely ended by the stop itself: no retry counted, nothing given up.
                    return;
                }
                self.set_result(&m.uuid, if outcome == Outcome::Success { "OK" } else { "PROBLEM: Function call failed" });
                (run.report(outcome), "RetryAttemptsExhausted")
            };
            for step in steps {
                match step {
                    Step::Commit(0) => {}
                    Step::Commit(n) => round.handled(self, &ords[..n]).await,
                    Step::Discard { range, attempts } => {
                        let given_up: Vec<&Rec> = ords[range.clone()].iter().map(|&o| &round.recs[o]).collect();
                        let (first, last) = (given_up[0], given_up[given_up.len() - 1]);
                        let record = failure_record(&FailedBatch {
                            kind: round.source.kind(),
                            shard_id: round.shard_id.clone(),
                            start_sequence_number: first.seq.clone(),
                            end_sequence_number: last.seq.clone(),
                            first_arrival_ms: first.arrival_ms,
                            last_arrival_ms: last.arrival_ms,
                            batch_size: given_up.len(),
                            stream_arn: m.event_source_arn.clone(),
                            condition,
                            attempts,
                            function_error: last_error.clone(),
                            function_arn: match &m.qualifier {
                                Some(q) => self.partition().qualified_arn(&m.function, q),
                                None => self.partition().function_arn(&m.function),
                            },
                            request_id: last_request.clone(),
                            now_ms: now_millis(),
                        });
                        tracing::info!(mapping = %m.uuid, shard = %round.key, records = given_up.len(), condition, "stream records given up on");
                        if let (Some(dest), Ok(sources)) = (&st.on_failure, self.sources()) {
                            let sent = if dest.starts_with("arn:aws:s3:::") {
                                // A bucket gets the records themselves too, as `payload`.
                                let mut object = record;
                                object["payload"] = json!(round.event(&ords[range.clone()], None));
                                let key = failure_object_key(&m.uuid, &round.shard_id, now_millis(), &uuid::Uuid::new_v4().to_string());
                                sources.sink.put_object(dest, &key, object.to_string().into_bytes()).await
                            } else {
                                sources.sink.send(dest, record.to_string(), Vec::new()).await
                            };
                            if let Err(e) = sent {
                                tracing::warn!(mapping = %m.uuid, "sending the on-failure record to {dest} failed: {e}");
                            }
                        }
                    }
                }
            }
        }
    }

    /// Keeps the state a windowed invocation answered with; a state past AWS's limit ends
    /// the window early (a final invocation with `isWindowTerminatedEarly`), and the window
    /// goes on with a fresh state.
    async fn keep_state(&self, round: &Round, lane: usize, state: serde_json::Map<String, Value>) {
        let over = state_size(&state) > STATE_LIMIT;
        {
            let mut p = round.progress.lock().await;
            if let Some(w) = p.windows[lane].as_mut() {
                w.state = state;
            }
        }
        if over {
            self.close_window(round, lane, true).await;
        }
    }
}

/// One read's records on their way through a shard's lanes, and the checkpoint that
/// follows them.
struct Round {
    m: EventSourceMapping,
    settings: StreamSettings,
    source: Source,
    /// The checkpoint's key for the shard.
    key: String,
    /// The shard's id as events name it.
    shard_id: String,
    recs: Vec<Rec>,
    progress: tokio::sync::Mutex<Progress>,
}

/// Which of a round's records are handled, and the lanes' open windows.
struct Progress {
    /// Where the checkpoint stood before the round (None: at the mapping's starting
    /// position, not yet pinned).
    base: Option<String>,
    done: Vec<bool>,
    /// The records handled without a gap from the round's start.
    prefix: usize,
    /// `prefix` when the checkpoint was last written.
    saved: usize,
    windows: Vec<Option<OpenWindow>>,
}

impl Progress {
    fn mark(&mut self, ords: &[usize]) {
        for &o in ords {
            self.done[o] = true;
        }
        while self.prefix < self.done.len() && self.done[self.prefix] {
            self.prefix += 1;
        }
    }
}

impl Round {
    #[allow(clippy::too_many_arguments)]
    fn new(
        m: &EventSourceMapping,
        settings: &StreamSettings,
        source: &Source,
        key: &str,
        shard_id: &str,
        recs: Vec<Rec>,
        base: Option<String>,
        windows: Vec<Option<OpenWindow>>,
    ) -> Round {
        let done = vec![false; recs.len()];
        Round {
            m: m.clone(),
            settings: settings.clone(),
            source: source.clone(),
            key: key.to_string(),
            shard_id: shard_id.to_string(),
            recs,
            progress: tokio::sync::Mutex::new(Progress { base, done, prefix: 0, saved: 0, windows }),
        }
    }

    /// The event for some of a round's records (none: a window's final invocation).
    fn event(&self, ords: &[usize], window: Option<(&OpenWindow, WindowCall<'_>)>) -> String {
        let mut event = serde_json::Map::new();
        event.insert("Records".into(), Value::Array(ords.iter().map(|&o| self.recs[o].event.clone()).collect()));
        if let Some((w, call)) = window {
            add_window_members(&mut event, w, call);
        }
        Value::Object(event).to_string()
    }

    fn invoke_request(&self, payload: String) -> InvokeRequest {
        InvokeRequest {
            function: FunctionRef {
                name: self.m.function.clone(),
                qualifier: self.m.qualifier.as_deref().and_then(|q| nimbus_model::Qualifier::parse(q).ok()),
            },
            payload: Bytes::from(payload),
            tail_log: false,
            client_context: None,
            request_id: None,
            trace: nimbus_model::trace::TraceContext { parent: None, trigger: nimbus_model::trace::Trigger::PubSub },
        }
    }

    async fn window(&self, lane: usize) -> Option<OpenWindow> {
        self.progress.lock().await.windows[lane].clone()
    }

    /// Where the checkpoint goes: after the last record handled without a gap.
    fn position(&self, p: &Progress) -> Option<String> {
        match p.prefix {
            0 => p.base.clone(),
            n => Some(self.recs[n - 1].after.clone()),
        }
    }

    /// Writes the checkpoint (the position with the windows' state) while the progress is
    /// locked, so writes from lanes land in order.
    async fn write(&self, me: &EventSources, p: &Progress) {
        if let Some(position) = self.position(p) {
            me.checkpoint(&self.m, &self.key, &Checkpoint { position, windows: p.windows.clone() }.encode()).await;
        }
    }

    /// Writes the checkpoint if the handled prefix grew since it was last written.
    async fn save_progress(&self, me: &EventSources, p: &mut Progress) {
        if p.prefix > p.saved {
            self.write(me, p).await;
            p.saved = p.prefix;
        }
    }

    /// Some records are handled (delivered, or given up on after their on-failure record).
    async fn handled(&self, me: &EventSources, ords: &[usize]) {
        let mut p = self.progress.lock().await;
        p.mark(ords);
        self.save_progress(me, &mut p).await;
    }
}

/// Counts one running poller while it lives (a panic too).
struct Counted<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// How many of `pollable` shards one of `nodes` nodes polls.
fn fair_share(pollable: usize, nodes: usize) -> usize {
    pollable.div_ceil(nodes.max(1))
}

#[cfg(test)]
mod tests {
    #[test]
    fn shards_are_shared_out() {
        let cases = [(4, 1, 4), (4, 2, 2), (4, 3, 2), (1, 3, 1), (0, 3, 0), (5, 2, 3), (4, 0, 4)];
        for (pollable, nodes, want) in cases {
            assert_eq!(super::fair_share(pollable, nodes), want, "{pollable} shards, {nodes} nodes");
        }
    }

    use super::*;

    #[test]
    fn stream_arns() {
        let cases = [
            ("arn:aws:kinesis:us-east-1:123456789012:stream/s1", Some(Source::Kinesis { name: "s1".into() })),
            (
                "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-01-01T00:00:00.000",
                Some(Source::Table { arn: "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-01-01T00:00:00.000".into() }),
            ),
            ("arn:aws:dynamodb:us-east-1:123456789012:table/t", None),
            ("arn:aws:sqs:us-east-1:123456789012:q", None),
            ("arn:aws:kinesis:us-east-1:123456789012:stream/", None),
        ];
        for (arn, want) in cases {
            assert_eq!(source_of(arn), want, "{arn}");
        }
    }

    #[test]
    fn kinesis_records_and_their_filter_view() {
        let r = kinesis_record("shardId-000000000000", "49", "pk", br#"{"n":1}"#, 1_500, "role", "us-east-1", "arn:s");
        assert_eq!(r["kinesis"]["data"], "eyJuIjoxfQ==");
        assert_eq!(r["eventID"], "shardId-000000000000:49");
        assert_eq!(r["kinesis"]["approximateArrivalTimestamp"], 1.5);
        assert_eq!(filter_view(StreamKind::Kinesis, &r)["data"], json!({"n": 1}));
    }

    #[test]
    fn settings_defaults_and_refusals() {
        let base = StreamOptions { starting_position: Some("TRIM_HORIZON".into()), ..Default::default() };
        let s = settings(None, &base, true).expect("valid");
        assert_eq!((s.maximum_retry_attempts, s.maximum_record_age_secs, s.bisect_on_error), (-1, -1, false));
        assert_eq!((s.parallelization_factor, s.tumbling_window_secs), (1, 0));
        let kept = settings(Some(&StreamSettings { parallelization_factor: 4, ..s.clone() }), &StreamOptions::default(), false)
            .expect("an update keeps what it does not name");
        assert_eq!((kept.parallelization_factor, kept.tumbling_window_secs), (4, 0));
        let windowed = StreamOptions { tumbling_window_secs: Some(60), ..Default::default() };
        let e = settings(Some(&kept), &windowed, false).expect_err("windows with lanes");
        assert!(e.message.contains("ParallelizationFactor"), "{}", e.message);
        let refused: Vec<(StreamOptions, &str)> = vec![
            (StreamOptions::default(), "Value null at 'startingPosition'"),
            (StreamOptions { starting_position: Some("AT_TIMESTAMP".into()), ..Default::default() }, "StartingPositionTimestamp"),
            (StreamOptions { maximum_retry_attempts: Some(10_001), ..base.clone() }, "maximumRetryAttempts"),
            (StreamOptions { maximum_record_age_secs: Some(30), ..base.clone() }, "between 60 and 604800"),
            (StreamOptions { on_failure: Some(Some("arn:aws:lambda:x".into())), ..base.clone() }, "destination config"),
        ];
        for (o, want) in refused {
            let e = settings(None, &o, true).expect_err(want);
            assert!(e.message.contains(want), "{want}: {}", e.message);
        }
    }
}

#[cfg(test)]
mod trim_tests {
    use super::*;

    /// A DynamoDB checkpoint the retention sweep has passed resumes at the oldest record kept
    /// (Lambda's behaviour), where reading after it answers TrimmedDataAccessException.
    #[tokio::test]
    async fn a_checkpoint_behind_the_trim_horizon_resumes_at_the_oldest_record() {
        let svc = TableService::in_memory("us-east-1", "123456789012").expect("open");
        let arn = svc
            .create_table(
                serde_json::from_value(json!({
                    "TableName": "trimmed",
                    "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
                    "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                    "BillingMode": "PAY_PER_REQUEST",
                    "StreamSpecification": {"StreamEnabled": true, "StreamViewType": "KEYS_ONLY"},
                }))
                .expect("input"),
            )
            .await
            .expect("created")
            .table_description
            .latest_stream_arn
            .expect("stream");
        let put = |id: &'static str| {
            let svc = svc.clone();
            async move {
                svc.put_item(serde_json::from_value(json!({"TableName": "trimmed", "Item": {"id": {"S": id}}})).expect("input"))
                    .await
                    .expect("put");
            }
        };
        put("old1").await;
        put("old2").await;
        let checkpoint = read_table(&svc, &arn, TableFrom::TrimHorizon, 1).await.expect("read").next.expect("next");
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(svc.sweep_stream_records(0.0).await.expect("trimmed"), 2);
        put("new1").await;
        put("new2").await;
        let e = svc.read_stream(&arn, TableFrom::AfterSequence(checkpoint.clone()), 10).await.expect_err("trimmed");
        assert_eq!(e.code(), "TrimmedDataAccessException");
        let page = read_table(&svc, &arn, TableFrom::AfterSequence(checkpoint), 10).await.expect("resumed at the horizon");
        let ids: Vec<String> = page
            .records
            .iter()
            .map(|r| serde_json::to_value(&r.dynamodb.keys).expect("json")["id"]["S"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(ids, ["new1", "new2"]);
    }
}

//! SQS event source mappings (Create/Get/Update/Delete/ListEventSourceMappings) and their
//! pollers: receive a batch (up to BatchSize, waiting up to MaximumBatchingWindowInSeconds
//! to fill it), invoke the function with AWS's SQS event, delete what succeeded. A failed
//! batch is left alone: its messages come back after the visibility timeout and reach the
//! queue's dead-letter queue through its redrive policy.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use nimbus_control::ControlPlane;
use nimbus_invoke::Invoker;
use nimbus_model::event_source::{sqs_limits, EventSourceMapping};
use nimbus_model::events::{SqsEvent, SqsMessageAttribute, SqsRecord};
use nimbus_model::{now_millis, ApiError, ErrorCode, FunctionRef, InvokeRequest, Partition};
use nimbus_queues::{QueueService, ReceivedMessage};
use nimbus_rules::{Dialect, Pattern};
use nimbus_store::Store;
use serde_json::Value;

/// A validated CreateEventSourceMapping request.
#[derive(Debug, Clone)]
pub struct NewMapping {
    pub event_source_arn: String,
    pub function: FunctionRef,
    pub enabled: bool,
    pub batch_size: Option<u32>,
    pub window_secs: Option<u32>,
    pub report_batch_item_failures: bool,
    pub maximum_concurrency: Option<u32>,
    pub filters: Vec<String>,
    /// Stream sources only.
    pub stream: StreamOptions,
    pub tags: std::collections::BTreeMap<String, String>,
}

/// The stream-only members of CreateEventSourceMapping and UpdateEventSourceMapping, as
/// given (checked and defaulted by the stream mappings).
#[derive(Debug, Clone, Default)]
pub struct StreamOptions {
    pub starting_position: Option<String>,
    pub starting_position_timestamp: Option<f64>,
    pub maximum_retry_attempts: Option<i32>,
    pub maximum_record_age_secs: Option<i32>,
    pub bisect_on_error: Option<bool>,
    /// Some(None) (or an empty destination) clears it.
    pub on_failure: Option<Option<String>>,
    pub parallelization_factor: Option<u32>,
    pub tumbling_window_secs: Option<u32>,
}

/// A validated UpdateEventSourceMapping request: only the given fields change.
#[derive(Debug, Clone, Default)]
pub struct MappingChange {
    pub function: Option<FunctionRef>,
    pub enabled: Option<bool>,
    pub batch_size: Option<u32>,
    pub window_secs: Option<u32>,
    pub report_batch_item_failures: Option<bool>,
    pub maximum_concurrency: Option<Option<u32>>,
    pub filters: Option<Vec<String>>,
    /// Stream sources only.
    pub stream: StreamOptions,
}

/// AWS allows at most this many filters per mapping.
const MAX_FILTERS: usize = 5;

/// Checks FilterCriteria patterns (the rule language's Lambda dialect).
pub(crate) fn check_filters(filters: &[String]) -> Result<(), ApiError> {
    if filters.len() > MAX_FILTERS {
        return Err(ApiError::invalid(format!("FilterCriteria can hold at most {MAX_FILTERS} filters.")));
    }
    for f in filters {
        // AWS names no reason here (test_sqs_invalid_event_filter and
        // test_dynamodb_invalid_event_filter in LocalStack's AWS-validated snapshots).
        Pattern::parse(Dialect::FilterCriteria, f).map_err(|_| ApiError::invalid("Invalid filter pattern definition."))?;
    }
    Ok(())
}

/// Pollers run per mapping when it sets no ScalingConfig.
const DEFAULT_POLLERS: u32 = 2;
/// Pollers never exceed this many per mapping on one node.
const MAX_POLLERS: u32 = 16;

pub struct EventSources {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) control: Arc<ControlPlane>,
    pub(crate) invoker: Arc<Invoker>,
    queues: Arc<QueueService>,
    pub(crate) pollers: Mutex<HashMap<String, Running>>,
    /// The stream services, once the server has built them ([`EventSources::attach_streams`]).
    pub(crate) streams: std::sync::OnceLock<crate::stream::StreamSources>,
    /// LastProcessingResult per mapping, kept in memory (written on every batch).
    results: Mutex<HashMap<String, String>>,
    /// Held by every read-modify-write of a stored mapping (update, tags, delete), so one
    /// cannot write back a mapping another changed or deleted meanwhile.
    edits: tokio::sync::Mutex<()>,
    /// True once the node drains: pollers take no new batch and no poller starts.
    draining: tokio::sync::watch::Sender<bool>,
    /// Set once the drain is over ([`EventSources::stop`]).
    stopping: std::sync::atomic::AtomicBool,
    /// Stream shards (mapping, shard key) whose lease another node took: their pollers stop
    /// at their next step.
    pub(crate) lost_leases: Mutex<std::collections::HashSet<(String, String)>>,
    /// The cluster's live nodes as last counted, and when (stream shards are shared out
    /// among them).
    pub(crate) nodes: Mutex<Option<(std::time::Instant, usize)>>,
    /// Stream shards this node polls now.
    pub(crate) shard_pollers: std::sync::atomic::AtomicUsize,
}

/// A mapping's pollers on this node.
pub(crate) struct Running {
    /// The LastModified of the mapping they were started for: another node's change to it
    /// starts them again, its tags alone do not.
    modified_ms: i64,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

pub(crate) fn store_err(e: impl std::fmt::Display) -> ApiError {
    ApiError::service(format!("storage error: {e}"))
}

impl EventSources {
    pub fn new(store: Arc<dyn Store>, control: Arc<ControlPlane>, invoker: Arc<Invoker>, queues: Arc<QueueService>) -> Arc<EventSources> {
        Arc::new(EventSources {
            store,
            control,
            invoker,
            queues,
            pollers: Mutex::new(HashMap::new()),
            results: Mutex::new(HashMap::new()),
            edits: tokio::sync::Mutex::new(()),
            streams: std::sync::OnceLock::new(),
            draining: tokio::sync::watch::Sender::new(false),
            stopping: std::sync::atomic::AtomicBool::new(false),
            lost_leases: Mutex::default(),
            nodes: Mutex::default(),
            shard_pollers: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// Stream shards (of every mapping) this node polls now.
    pub fn shard_pollers(&self) -> usize {
        self.shard_pollers.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The node is draining: pollers take no new batch (waits for one end now) and the
    /// batch each is handling runs to its end (its function called, its messages deleted or
    /// its checkpoint stored). Returns once every poller has stopped; the mappings stay as
    /// stored, for the next start or the other nodes. The queue service's long polls end
    /// with its own drain ([`QueueService::drain`]).
    pub async fn drain(&self) {
        self.draining.send_replace(true);
        let pollers: Vec<Running> = self.pollers.lock().unwrap_or_else(|p| p.into_inner()).drain().map(|(_, r)| r).collect();
        for task in pollers.into_iter().flat_map(|r| r.tasks) {
            let _ = task.await;
        }
    }

    /// The drain is over (done, or cut off at its deadline): invocations still running are
    /// being ended with the server, so a batch failing from now on is not the batch's
    /// failure (no retry counted, nothing given up on): its records are read again at the
    /// next start. (An SQS batch's messages are left as they are either way.)
    pub fn stop(&self) {
        self.draining.send_replace(true);
        self.stopping.store(true, std::sync::atomic::Ordering::Release);
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::Acquire)
    }

    pub(crate) fn draining(&self) -> bool {
        *self.draining.borrow()
    }

    /// Sleeps `d`, or less when the node starts draining; whether the poller goes on.
    pub(crate) async fn pause(&self, d: Duration) -> bool {
        tokio::select! {
            _ = self.drained() => false,
            _ = tokio::time::sleep(d) => true,
        }
    }

    /// Returns when the node starts draining (at once if it has).
    pub(crate) async fn drained(&self) {
        let mut rx = self.draining.subscribe();
        let _ = rx.wait_for(|d| *d).await;
    }

    pub(crate) fn partition(&self) -> &Partition {
        self.control.partition()
    }

    /// Starts the pollers of every enabled SQS mapping (server start; stream mappings start
    /// with [`EventSources::attach_streams`]).
    pub async fn start(self: &Arc<Self>) -> Result<(), ApiError> {
        for m in self.store.list_event_source_mappings().await.map_err(store_err)? {
            if m.enabled && m.stream.is_none() {
                self.spawn_pollers(&m);
            }
        }
        Ok(())
    }

    fn not_found(&self, _uuid: &str) -> ApiError {
        ApiError::not_found("The resource you requested does not exist.")
    }

    async fn check(
        &self,
        function: &FunctionRef,
        queue_arn: &str,
        batch: u32,
        window: u32,
        concurrency: Option<u32>,
    ) -> Result<(), ApiError> {
        // AWS: 400 "Function does not exist" for a missing function or qualifier.
        let missing = |e: ApiError| if e.code == ErrorCode::ResourceNotFound { ApiError::invalid("Function does not exist") } else { e };
        self.control.get(&function.name).await.map_err(missing)?;
        self.control.route(&function.name, function.qualifier.as_ref()).await.map_err(missing)?;
        let queue = self.queues.queue_by_arn(queue_arn).await.map_err(|_| {
            ApiError::invalid(format!(
                "Error occurred while ReceiveMessage. SQS Error Code: AWS.SimpleQueueService.NonExistentQueue. SQS Error Message: The specified queue does not exist. ({queue_arn})"
            ))
        })?;
        let max = if queue.fifo { sqs_limits::MAX_BATCH_FIFO } else { sqs_limits::MAX_BATCH_STANDARD };
        if batch == 0 || batch > max {
            return Err(ApiError::invalid(format!("BatchSize must be between 1 and {max} for this queue.")));
        }
        if window > sqs_limits::MAX_WINDOW_SECS {
            return Err(ApiError::validation(
                &window.to_string(),
                "maximumBatchingWindowInSeconds",
                "Member must have value less than or equal to 300",
            ));
        }
        if batch > 10 && window == 0 {
            return Err(ApiError::invalid(
                "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10",
            ));
        }
        if let Some(c) = concurrency {
            if !(sqs_limits::MIN_CONCURRENCY..=sqs_limits::MAX_CONCURRENCY).contains(&c) {
                return Err(ApiError::validation(
                    &c.to_string(),
                    "scalingConfig.maximumConcurrency",
                    "Member must have value between 2 and 1000",
                ));
            }
        }
        Ok(())
    }

    pub async fn create(self: &Arc<Self>, n: NewMapping) -> Result<EventSourceMapping, ApiError> {
        if crate::stream::is_stream_arn(&n.event_source_arn) {
            return self.create_stream_mapping(n).await;
        }
        if !n.event_source_arn.starts_with("arn:aws:sqs:") {
            return Err(ApiError::invalid(
                "Nimbus maps SQS queues, Kinesis streams and DynamoDB streams only: EventSourceArn must name one",
            ));
        }
        check_filters(&n.filters)?;
        let batch = n.batch_size.unwrap_or(sqs_limits::DEFAULT_BATCH);
        let window = n.window_secs.unwrap_or(0);
        self.check(&n.function, &n.event_source_arn, batch, window, n.maximum_concurrency).await?;
        let existing = self.store.list_event_source_mappings().await.map_err(store_err)?;
        if existing.iter().any(|m| {
            m.event_source_arn == n.event_source_arn
                && m.function == n.function.name
                && m.qualifier.as_deref() == n.function.qualifier.as_ref().map(|q| q.as_str())
        }) {
            return Err(ApiError::conflict(format!(
                "An event source mapping with SQS arn (\" {} \") and function (\" {} \") already exists. Please update or delete the existing mapping with UUID {}",
                n.event_source_arn,
                n.function.name,
                existing.iter().find(|m| m.event_source_arn == n.event_source_arn && m.function == n.function.name).map(|m| m.uuid.as_str()).unwrap_or("")
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
            maximum_concurrency: n.maximum_concurrency,
            last_modified_ms: now_millis(),
            last_processing_result: "No records processed".into(),
            filters: n.filters,
            stream: None,
            tags: n.tags,
        };
        self.store.put_event_source_mapping(&m).await.map_err(store_err)?;
        if m.enabled {
            self.spawn_pollers(&m);
        }
        Ok(m)
    }

    pub async fn get(&self, uuid: &str) -> Result<EventSourceMapping, ApiError> {
        let mut m = self.store.get_event_source_mapping(uuid).await.map_err(store_err)?.ok_or_else(|| self.not_found(uuid))?;
        if let Some(r) = self.results.lock().unwrap_or_else(|p| p.into_inner()).get(uuid) {
            m.last_processing_result = r.clone();
        }
        Ok(m)
    }

    pub async fn update(self: &Arc<Self>, uuid: &str, c: MappingChange) -> Result<EventSourceMapping, ApiError> {
        let _edit = self.edits.lock().await;
        let mut m = self.get(uuid).await?;
        if let Some(f) = c.function {
            m.function = f.name;
            m.qualifier = f.qualifier.map(|q| q.as_str().to_string());
        }
        if let Some(v) = c.enabled {
            m.enabled = v;
        }
        if let Some(v) = c.batch_size {
            m.batch_size = v;
        }
        if let Some(v) = c.window_secs {
            m.maximum_batching_window_secs = v;
        }
        if let Some(v) = c.report_batch_item_failures {
            m.report_batch_item_failures = v;
        }
        if let Some(v) = c.maximum_concurrency {
            m.maximum_concurrency = v;
        }
        if let Some(f) = c.filters {
            check_filters(&f)?;
            m.filters = f;
        }
        let function =
            FunctionRef { name: m.function.clone(), qualifier: m.qualifier.as_deref().map(nimbus_model::Qualifier::parse).transpose()? };
        if let Some(old) = &m.stream {
            m.stream = Some(crate::stream::settings(Some(old), &c.stream, false)?);
        } else {
            self.check(&function, &m.event_source_arn, m.batch_size, m.maximum_batching_window_secs, m.maximum_concurrency).await?;
        }
        m.last_modified_ms = now_millis();
        self.store.put_event_source_mapping(&m).await.map_err(store_err)?;
        self.stop_pollers(uuid);
        if m.enabled {
            if m.stream.is_some() {
                self.spawn_stream_poller(&m);
            } else {
                self.spawn_pollers(&m);
            }
        }
        Ok(m)
    }

    /// TagResource/UntagResource on a mapping's ARN: changes its tags, nothing else (its
    /// pollers go on).
    pub async fn set_tags(&self, uuid: &str, change: impl FnOnce(&mut std::collections::BTreeMap<String, String>)) -> Result<(), ApiError> {
        let _edit = self.edits.lock().await;
        let mut m = self.get(uuid).await?;
        change(&mut m.tags);
        if m.tags.len() > nimbus_control::MAX_TAGS {
            return Err(ApiError::invalid("Number of tags exceeds resource tag limit."));
        }
        self.store.put_event_source_mapping(&m).await.map_err(store_err)
    }

    pub async fn delete(&self, uuid: &str) -> Result<EventSourceMapping, ApiError> {
        let _edit = self.edits.lock().await;
        let m = self.get(uuid).await?;
        self.stop_pollers(uuid);
        self.store.delete_event_source_mapping(uuid).await.map_err(store_err)?;
        if m.stream.is_some() {
            self.store.delete_stream_checkpoints(uuid).await.map_err(store_err)?;
        }
        Ok(m)
    }

    /// ListEventSourceMappings, filtered by queue and function.
    pub async fn list(
        &self,
        source: Option<&str>,
        function: Option<&str>,
        marker: Option<&str>,
        max: usize,
    ) -> Result<(Vec<EventSourceMapping>, Option<String>), ApiError> {
        let all: Vec<EventSourceMapping> = self
            .store
            .list_event_source_mappings()
            .await
            .map_err(store_err)?
            .into_iter()
            .filter(|m| source.is_none_or(|s| m.event_source_arn == s))
            .filter(|m| function.is_none_or(|f| m.function == f))
            .collect();
        let start = marker.map(|mk| all.iter().position(|m| m.uuid == mk).map(|i| i + 1).unwrap_or(all.len())).unwrap_or(0);
        let page: Vec<EventSourceMapping> = all[start..].iter().take(max).cloned().collect();
        let next = (start + page.len() < all.len()).then(|| page.last().map(|m| m.uuid.clone())).flatten();
        Ok((page, next))
    }

    fn spawn_pollers(self: &Arc<Self>, m: &EventSourceMapping) {
        let n = m.maximum_concurrency.unwrap_or(DEFAULT_POLLERS).clamp(1, MAX_POLLERS);
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let me = self.clone();
                let m = m.clone();
                tokio::spawn(async move { me.poll(m).await })
            })
            .collect();
        self.run_pollers(m, handles);
    }

    /// Keeps `tasks` as `m`'s pollers, ending those it had. While the node drains, pollers
    /// (started by a change that raced the drain) end at once instead.
    pub(crate) fn run_pollers(&self, m: &EventSourceMapping, tasks: Vec<tokio::task::JoinHandle<()>>) {
        if self.draining() {
            tasks.iter().for_each(|h| h.abort());
            return;
        }
        let running = Running { modified_ms: m.last_modified_ms, tasks };
        if let Some(old) = self.pollers.lock().unwrap_or_else(|p| p.into_inner()).insert(m.uuid.clone(), running) {
            old.tasks.iter().for_each(|h| h.abort());
        }
    }

    fn stop_pollers(&self, uuid: &str) {
        if let Some(old) = self.pollers.lock().unwrap_or_else(|p| p.into_inner()).remove(uuid) {
            old.tasks.iter().for_each(|h| h.abort());
            // Its stream shards' leases go with them (an aborted poller hands back nothing).
            let (store, uuid) = (self.store.clone(), uuid.to_string());
            tokio::spawn(async move {
                if let Err(e) = store.release_shards(&uuid).await {
                    tracing::warn!(mapping = %uuid, "handing the shards' leases back: {e}");
                }
            });
        }
    }

    /// Another node created, changed or deleted the mapping `uuid` (a shared store): this
    /// node's pollers for it start, start again or stop as they would after that change here,
    /// so every node polls every enabled mapping (receives on a shared queue never hand one
    /// message to two of them). `None`: any mapping may have changed (the change feed was cut).
    pub async fn changed_elsewhere(self: &Arc<Self>, uuid: Option<&str>) {
        let _edit = self.edits.lock().await;
        let found = match uuid {
            Some(uuid) => self.store.get_event_source_mapping(uuid).await.map(|m| (vec![uuid.to_string()], m.into_iter().collect())),
            None => self.store.list_event_source_mappings().await.map(|all| {
                let mut uuids: Vec<String> = self.pollers.lock().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect();
                uuids.extend(all.iter().map(|m| m.uuid.clone()));
                uuids.sort();
                uuids.dedup();
                (uuids, all)
            }),
        };
        let (uuids, mappings): (Vec<String>, Vec<EventSourceMapping>) = match found {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!("reading event source mappings another node changed: {e}");
                return;
            }
        };
        for uuid in uuids {
            match mappings.iter().find(|m| m.uuid == uuid).filter(|m| m.enabled) {
                Some(m) => {
                    let current = self
                        .pollers
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get(&uuid)
                        .is_some_and(|r| r.modified_ms == m.last_modified_ms);
                    if current {
                        continue;
                    }
                    if m.stream.is_none() {
                        self.spawn_pollers(m);
                    } else if self.streams.get().is_some() {
                        self.spawn_stream_poller(m);
                    }
                }
                None => self.stop_pollers(&uuid),
            }
        }
    }

    pub(crate) fn set_result(&self, uuid: &str, result: &str) {
        self.results.lock().unwrap_or_else(|p| p.into_inner()).insert(uuid.to_string(), result.to_string());
    }

    /// Collects up to BatchSize messages, waiting up to the batching window to fill the batch.
    async fn collect_batch(&self, m: &EventSourceMapping) -> Result<Vec<ReceivedMessage>, String> {
        let mut batch =
            self.queues.receive(&m.event_source_arn, m.batch_size, None, Duration::from_secs(20)).await.map_err(|e| e.to_string())?;
        if batch.is_empty() || m.maximum_batching_window_secs == 0 {
            return Ok(batch);
        }
        let deadline = Instant::now() + Duration::from_secs(u64::from(m.maximum_batching_window_secs));
        // Draining: what was received so far is the batch.
        while (batch.len() as u32) < m.batch_size && !self.draining() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let want = m.batch_size - batch.len() as u32;
            let more =
                self.queues.receive(&m.event_source_arn, want, None, left.min(Duration::from_secs(1))).await.map_err(|e| e.to_string())?;
            batch.extend(more);
        }
        Ok(batch)
    }

    /// AWS's SQS event for a batch.
    fn event(&self, m: &EventSourceMapping, batch: &[ReceivedMessage]) -> SqsEvent {
        SqsEvent { records: batch.iter().map(|msg| self.record(m, msg)).collect() }
    }

    /// AWS's SQS record for one message.
    fn record(&self, m: &EventSourceMapping, msg: &ReceivedMessage) -> SqsRecord {
        use base64::Engine as _;
        let message_attributes = msg
            .message_attributes
            .iter()
            .map(|(k, v)| {
                let attr = SqsMessageAttribute {
                    string_value: v.string_value.clone(),
                    binary_value: v.binary_value.as_ref().map(|b| base64::engine::general_purpose::STANDARD.encode(b)),
                    string_list_values: v.string_list_values.clone(),
                    binary_list_values: Vec::new(),
                    data_type: v.data_type.clone(),
                };
                (k.clone(), attr)
            })
            .collect();
        SqsRecord {
            message_id: msg.message_id.clone(),
            receipt_handle: msg.receipt_handle.clone(),
            body: msg.body.clone(),
            attributes: msg.attributes.clone(),
            message_attributes,
            md5_of_body: msg.md5_of_body.clone(),
            md5_of_message_attributes: msg.md5_of_message_attributes.clone(),
            event_source: "aws:sqs".into(),
            event_source_arn: m.event_source_arn.clone(),
            aws_region: self.partition().region.clone(),
        }
    }

    /// Drops (deletes) the messages no filter matches, as Lambda does for SQS; a body that
    /// is a JSON object is matched field by field, any other body as a string.
    async fn apply_filters(&self, m: &EventSourceMapping, batch: Vec<ReceivedMessage>) -> Vec<ReceivedMessage> {
        if m.filters.is_empty() {
            return batch;
        }
        let patterns: Vec<Pattern> = m.filters.iter().filter_map(|f| Pattern::parse(Dialect::FilterCriteria, f).ok()).collect();
        let mut kept = Vec::with_capacity(batch.len());
        for msg in batch {
            let mut record = serde_json::to_value(self.record(m, &msg)).expect("records serialize");
            if let Ok(body @ Value::Object(_)) = serde_json::from_str::<Value>(&msg.body) {
                record["body"] = body;
            }
            if patterns.iter().any(|p| p.matches(&record)) {
                kept.push(msg);
            } else if let Err(e) = self.queues.delete(&m.event_source_arn, &msg.receipt_handle).await {
                tracing::warn!(mapping = %m.uuid, "dropping a filtered-out message failed: {e}");
            }
        }
        kept
    }

    async fn poll(self: Arc<Self>, m: EventSourceMapping) {
        let qualifier = m.qualifier.as_deref().and_then(|q| nimbus_model::Qualifier::parse(q).ok());
        // The last batch's deletes, waiting for its lines to be kept while the next batch runs.
        let mut settling: Option<tokio::task::JoinHandle<()>> = None;
        while !self.draining() {
            let batch = match self.collect_batch(&m).await {
                Ok(b) if b.is_empty() => continue,
                Ok(b) => match self.apply_filters(&m, b).await {
                    b if b.is_empty() => continue,
                    b => b,
                },
                Err(e) => {
                    self.set_result(&m.uuid, &format!("PROBLEM: {e}"));
                    self.pause(Duration::from_secs(2)).await;
                    continue;
                }
            };
            let payload = serde_json::to_string(&self.event(&m, &batch)).expect("events serialize");
            let req = InvokeRequest {
                function: FunctionRef { name: m.function.clone(), qualifier: qualifier.clone() },
                payload: Bytes::from(payload),
                tail_log: false,
                client_context: None,
                request_id: None,
                trace: nimbus_model::trace::TraceContext { parent: None, trigger: nimbus_model::trace::Trigger::PubSub },
            };
            let failed: HashSet<String> = match self.invoker.invoke(req).await {
                Ok(o) if o.function_error.is_none() => {
                    self.set_result(&m.uuid, "OK");
                    if m.report_batch_item_failures {
                        match parse_failures(&o.payload, &batch) {
                            Some(ids) => ids,
                            // A malformed answer fails the whole batch, as AWS does.
                            None => batch.iter().map(|b| b.message_id.clone()).collect(),
                        }
                    } else {
                        HashSet::new()
                    }
                }
                Ok(_) => {
                    self.set_result(&m.uuid, "PROBLEM: Function call failed");
                    continue;
                }
                Err(e) if e.code == ErrorCode::TooManyRequests => {
                    self.set_result(&m.uuid, "PROBLEM: Function call throttled");
                    self.pause(Duration::from_millis(500)).await;
                    continue;
                }
                Err(e) => {
                    self.set_result(&m.uuid, &format!("PROBLEM: {}", e.message));
                    self.pause(Duration::from_secs(1)).await;
                    continue;
                }
            };
            // The function's lines are kept before its messages go (a node killed between
            // loses neither); meanwhile the next batch is taken. One batch settles at a time.
            let done: Vec<String> = batch.into_iter().filter(|b| !failed.contains(&b.message_id)).map(|b| b.receipt_handle).collect();
            if let Some(last) = settling.take() {
                let _ = last.await;
            }
            let (me, arn, uuid) = (self.clone(), m.event_source_arn.clone(), m.uuid.clone());
            settling = Some(tokio::spawn(async move {
                me.invoker.logs_kept().await;
                for handle in done {
                    if let Err(e) = me.queues.delete(&arn, &handle).await {
                        tracing::warn!(mapping = %uuid, "deleting a processed message failed: {e}");
                    }
                }
            }));
        }
        // A drain ends with this poller's deletes done.
        if let Some(last) = settling {
            let _ = last.await;
        }
    }
}

/// `{"batchItemFailures":[{"itemIdentifier":"<messageId>"}]}` → the failed ids; None when
/// malformed or naming a message not in the batch. An empty or null answer means success.
fn parse_failures(payload: &[u8], batch: &[ReceivedMessage]) -> Option<HashSet<String>> {
    let v: Value = serde_json::from_slice(payload).ok()?;
    if v.is_null() {
        return Some(HashSet::new());
    }
    let Some(list) = v.get("batchItemFailures") else { return Some(HashSet::new()) };
    if list.is_null() {
        return Some(HashSet::new());
    }
    let ids: HashSet<String> = list
        .as_array()?
        .iter()
        .map(|f| f.get("itemIdentifier").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string))
        .collect::<Option<_>>()?;
    ids.iter().all(|id| batch.iter().any(|b| &b.message_id == id)).then_some(ids)
}

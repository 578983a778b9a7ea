//! Asynchronous invocation: events are stored durably before the caller gets its 202, then
//! a dispatcher runs them through the [`Invoker`], retrying function errors with backoff
//! (per the function's event-invoke config), waiting out throttles without counting them,
//! and sending what finally fails (or, if configured, succeeds) to a destination or the
//! function's dead-letter queue. An accepted event is never dropped silently: after a
//! crash, every event not yet completed runs again (at least once).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use nimbus_control::ControlPlane;
use nimbus_model::events::{DestinationRequestContext, DestinationResponseContext, InvocationRecord};
use nimbus_model::invoke::{async_limits, AsyncEvent};
use nimbus_model::{now_millis, ApiError, ErrorCode, FunctionRef, InvokeOutcome, InvokeRequest, Qualifier, LATEST};
use nimbus_store::Store;
use serde_json::Value;
use tokio::sync::{Notify, Semaphore};

use crate::Invoker;

/// Where invocation records and dead letters go when the target is not a function: the
/// queue and topic services implement this (wired by the server).
#[async_trait]
pub trait MessageSink: Send + Sync {
    /// Sends `body` with string message attributes to the queue or topic named by `arn`.
    async fn send(&self, arn: &str, body: String, attributes: Vec<(String, String)>) -> Result<(), String>;

    /// Writes `body` as the object `key` of the bucket named by `arn` (`arn:aws:s3:::<bucket>`;
    /// stream mappings' S3 on-failure destinations).
    async fn put_object(&self, arn: &str, key: &str, body: Vec<u8>) -> Result<(), String> {
        let _ = (key, body);
        Err(format!("{arn}: no object store to write to"))
    }
}

/// How long the dispatcher lets new events gather after being woken.
const DISPATCH_COALESCE: Duration = Duration::from_millis(2);

#[derive(Debug, Clone)]
pub struct AsyncConfig {
    /// Delay before the first retry of a failed event; each further retry doubles it
    /// (AWS: about 1 minute, then 2).
    pub retry_delay: Duration,
    /// Events run at once by the dispatcher (each still within its function's
    /// concurrency).
    pub parallelism: usize,
}

pub struct AsyncInvoker {
    store: Arc<dyn Store>,
    control: Arc<ControlPlane>,
    invoker: Arc<Invoker>,
    sinks: Mutex<Option<Arc<dyn MessageSink>>>,
    config: AsyncConfig,
    wake: Notify,
    dispatch: Mutex<Dispatch>,
    slots: Arc<Semaphore>,
    /// Woken when an event finishes processing (a drain waits for the last).
    finished: Notify,
}

/// Which events are being processed, and which finished since a read of the queue began:
/// a read that started before an event was completed (and deleted) may still return it,
/// and must not run it again once it has left `running`.
#[derive(Default)]
struct Dispatch {
    running: HashSet<String>,
    /// Bumped when an event finishes processing.
    epoch: u64,
    /// Events that finished, with the epoch they finished at (only those a read still in
    /// progress may have seen).
    finished: HashMap<String, u64>,
    /// The node is draining: no event is started any more. Kept under the same lock as
    /// `running`, so a drain that sees nothing running sees nothing start after.
    draining: bool,
    /// The drain is over and the server is ending what still runs ([`AsyncInvoker::stop`]).
    stopping: bool,
}

/// How one attempt ended.
enum Attempt {
    Succeeded(InvokeOutcome),
    FunctionFailed(InvokeOutcome),
    Throttled,
    Gone(ApiError),
    SystemError(ApiError),
}

fn iso_now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

impl AsyncInvoker {
    pub fn new(store: Arc<dyn Store>, control: Arc<ControlPlane>, invoker: Arc<Invoker>, config: AsyncConfig) -> Arc<AsyncInvoker> {
        let slots = Arc::new(Semaphore::new(config.parallelism.max(1)));
        Arc::new(AsyncInvoker {
            store,
            control,
            invoker,
            sinks: Mutex::new(None),
            config,
            wake: Notify::new(),
            dispatch: Mutex::new(Dispatch::default()),
            slots,
            finished: Notify::new(),
        })
    }

    /// The node is draining: the dispatcher claims and starts no more events, and this
    /// returns once those it is running have finished. Events it had read but not started
    /// stay in the store (with a shared store, still this node's until it leaves the
    /// cluster, which hands them back).
    pub async fn drain(&self) {
        self.dispatch.lock().unwrap_or_else(|p| p.into_inner()).draining = true;
        self.wake.notify_one();
        loop {
            let finished = self.finished.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            if self.running() == 0 {
                return;
            }
            finished.await;
        }
    }

    /// The drain is over (done, or cut off at its deadline): the events still running are
    /// being ended with the server, so an attempt failing from now on is not recorded as the
    /// event's. The event stays as it was, and runs again at the next start (or, with a
    /// shared store, on another node), its retries and destinations untouched.
    pub fn stop(&self) {
        let mut d = self.dispatch.lock().unwrap_or_else(|p| p.into_inner());
        d.draining = true;
        d.stopping = true;
    }

    /// Events being processed now.
    pub fn running(&self) -> usize {
        self.dispatch.lock().unwrap_or_else(|p| p.into_inner()).running.len()
    }

    fn draining(&self) -> bool {
        self.dispatch.lock().unwrap_or_else(|p| p.into_inner()).draining
    }

    /// Connects the queue/topic services that receive dead letters and records.
    pub fn set_message_sink(&self, sink: Arc<dyn MessageSink>) {
        *self.sinks.lock().unwrap_or_else(|p| p.into_inner()) = Some(sink);
    }

    /// Accepts an event: checks the function and qualifier exist, stores the event, and
    /// returns its request id. The 202 is sent only after this returns.
    pub async fn submit(&self, function: &FunctionRef, payload: Bytes) -> Result<String, ApiError> {
        self.submit_traced(function, payload, nimbus_model::trace::TraceContext::default()).await
    }

    /// [`AsyncInvoker::submit`] in the caller's trace: the event keeps the context (the
    /// accepting span's, when traces are exported) and its processing continues it.
    pub async fn submit_traced(
        &self,
        function: &FunctionRef,
        payload: Bytes,
        trace: nimbus_model::trace::TraceContext,
    ) -> Result<String, ApiError> {
        let (started_at, started) = (std::time::Instant::now(), std::time::SystemTime::now());
        if payload.len() > async_limits::MAX_PAYLOAD {
            return Err(ApiError::new(
                ErrorCode::RequestTooLarge,
                format!("Request must be smaller than {} bytes for the InvokeFunction operation", async_limits::MAX_PAYLOAD),
            ));
        }
        // From the in-memory view: the function and its qualifier must exist.
        self.control.resolve(&function.name, function.qualifier.as_ref()).await?;
        let now = now_millis();
        let mut event = AsyncEvent {
            request_id: uuid::Uuid::new_v4().to_string(),
            function: function.name.clone(),
            qualifier: function.qualifier.as_ref().map(|q| q.as_str().to_string()),
            payload: payload.to_vec(),
            attempts: 0,
            enqueued_ms: now,
            not_before_ms: now,
            trace: None,
            trigger: trace.trigger,
        };
        let sink = self.invoker.traces.get().filter(|_| trace.parent.and_then(|p| p.sampled) != Some(false));
        let accepted = match sink {
            None => {
                event.trace = trace.parent.map(|p| p.to_xray());
                None
            }
            Some(sink) => {
                let ids = crate::trace::TraceIds::for_request(&trace);
                event.trace = Some(
                    nimbus_model::trace::Parent { trace_id: ids.trace_id, span_id: Some(ids.span_id), sampled: ids.sampled }.to_xray(),
                );
                Some((sink, ids))
            }
        };
        self.store.enqueue_event(&event).await.map_err(|e| ApiError::service(format!("queueing the event: {e}")))?;
        self.metric(&event, &[("AsyncEventsReceived", "Count", 1.0)]);
        self.wake.notify_one();
        if let Some((sink, ids)) = accepted {
            let partition = self.control.partition();
            sink.accepted(nimbus_model::trace::AcceptedEvent {
                trace_id: ids.trace_id,
                span_id: ids.span_id,
                parent: ids.parent,
                function: event.function.clone(),
                qualifier: event.qualifier.clone(),
                region: partition.region.clone(),
                account: partition.account_id.clone(),
                request_id: event.request_id.clone(),
                started,
                ended: started + started_at.elapsed(),
            });
        }
        Ok(event.request_id)
    }

    /// Runs the dispatcher until the server stops or drains ([`AsyncInvoker::drain`]).
    pub async fn run(self: Arc<Self>) {
        loop {
            if self.draining() {
                return;
            }
            let free = self.slots.available_permits();
            if free > 0 {
                let (busy, read_epoch) = {
                    let d = self.dispatch.lock().unwrap_or_else(|p| p.into_inner());
                    (d.running.len(), d.epoch)
                };
                match self.store.due_events(now_millis(), free + busy).await {
                    Ok(due) => {
                        // What finished before this read began is in it as it is now.
                        self.dispatch.lock().unwrap_or_else(|p| p.into_inner()).finished.retain(|_, at| *at > read_epoch);
                        for event in due {
                            {
                                let mut d = self.dispatch.lock().unwrap_or_else(|p| p.into_inner());
                                if d.draining {
                                    break;
                                }
                                let stale = d.finished.contains_key(&event.request_id);
                                if stale || !d.running.insert(event.request_id.clone()) {
                                    continue;
                                }
                            }
                            let Ok(permit) = self.slots.clone().try_acquire_owned() else {
                                self.dispatch.lock().unwrap_or_else(|p| p.into_inner()).running.remove(&event.request_id);
                                break;
                            };
                            let me = self.clone();
                            tokio::spawn(async move {
                                let id = event.request_id.clone();
                                me.process(event, permit).await;
                                {
                                    let mut d = me.dispatch.lock().unwrap_or_else(|p| p.into_inner());
                                    d.epoch += 1;
                                    let at = d.epoch;
                                    d.finished.insert(id.clone(), at);
                                    d.running.remove(&id);
                                }
                                me.finished.notify_waiters();
                                me.wake.notify_one();
                            });
                        }
                    }
                    Err(e) => tracing::warn!("reading the async queue: {e}"),
                }
            }
            let wait = match self.store.next_event_due().await {
                Ok(Some(t)) => Duration::from_millis((t - now_millis()).clamp(10, 1000) as u64),
                _ => Duration::from_secs(1),
            };
            if tokio::time::timeout(wait, self.wake.notified()).await.is_ok() {
                // Let a burst of submissions land before the next look at the queue: one
                // query per burst instead of one per event.
                tokio::time::sleep(DISPATCH_COALESCE).await;
            }
        }
    }

    async fn attempt(&self, event: &AsyncEvent) -> Attempt {
        let qualifier = match event.qualifier.as_deref() {
            None => None,
            Some(q) => match Qualifier::parse(q) {
                Ok(q) => Some(q),
                Err(e) => return Attempt::Gone(e),
            },
        };
        let req = InvokeRequest {
            function: FunctionRef { name: event.function.clone(), qualifier },
            payload: Bytes::from(event.payload.clone()),
            tail_log: false,
            client_context: None,
            request_id: Some(event.request_id.clone()),
            // Its processing continues the trace it was accepted in.
            trace: nimbus_model::trace::TraceContext {
                parent: event.trace.as_deref().and_then(nimbus_model::trace::Parent::from_xray),
                trigger: event.trigger,
            },
        };
        match self.invoker.invoke(req).await {
            Ok(o) if o.function_error.is_none() => Attempt::Succeeded(o),
            Ok(o) => Attempt::FunctionFailed(o),
            Err(e) if e.code == ErrorCode::TooManyRequests => Attempt::Throttled,
            Err(e) if e.code == ErrorCode::ResourceNotFound => Attempt::Gone(e),
            Err(e) => Attempt::SystemError(e),
        }
    }

    /// Runs one event; `slot` (one of the dispatcher's concurrent invocations) is given back
    /// once the function has run, before the event is settled.
    async fn process(&self, event: AsyncEvent, slot: tokio::sync::OwnedSemaphorePermit) {
        let qualifier = event.qualifier.clone().unwrap_or_else(|| LATEST.to_string());
        let config = self.control.event_invoke_config(&event.function, &qualifier).await.ok().flatten();
        let max_retries = config.as_ref().and_then(|c| c.maximum_retry_attempts).unwrap_or(async_limits::DEFAULT_RETRIES);
        let max_age_ms =
            i64::from(config.as_ref().and_then(|c| c.maximum_event_age_secs).unwrap_or(async_limits::DEFAULT_EVENT_AGE_SECS)) * 1000;
        let age_ms = now_millis() - event.enqueued_ms;
        if age_ms > max_age_ms {
            self.fail(&event, "EventAgeExceeded", None, config.as_ref().and_then(|c| c.on_failure.clone())).await;
            return;
        }
        self.metric(&event, &[("AsyncEventAge", "Milliseconds", age_ms as f64)]);
        let attempt = self.attempt(&event).await;
        // The next event may start (this one stays `running` until it is settled: no read
        // of the queue hands it out again meanwhile).
        drop(slot);
        self.wake.notify_one();
        if matches!(attempt, Attempt::FunctionFailed(_) | Attempt::SystemError(_))
            && self.dispatch.lock().unwrap_or_else(|p| p.into_inner()).stopping
        {
            tracing::info!(request_id = %event.request_id, "async event cut off by the server's stop: it runs again");
            return;
        }
        if matches!(attempt, Attempt::Succeeded(_) | Attempt::FunctionFailed(_)) {
            // The function ran: its lines are kept before the event is settled, so a node
            // killed just after loses neither.
            self.invoker.logs_kept().await;
        }
        match attempt {
            Attempt::Succeeded(outcome) => {
                if let Some(dest) = config.as_ref().and_then(|c| c.on_success.as_ref()) {
                    let record = self.record(&event, "Success", event.attempts + 1, Some(&outcome));
                    self.deliver(dest, Some(&record), &event, None).await;
                }
                self.complete(&event).await;
            }
            Attempt::FunctionFailed(outcome) => {
                let attempts = event.attempts + 1;
                if attempts > max_retries {
                    let on_failure = config.as_ref().and_then(|c| c.on_failure.clone());
                    let event = AsyncEvent { attempts, ..event };
                    self.fail(&event, "RetriesExhausted", Some(&outcome), on_failure).await;
                } else {
                    let delay = self.config.retry_delay.saturating_mul(1 << (attempts - 1).min(6));
                    tracing::debug!(request_id = %event.request_id, attempts, "async event failed; retrying");
                    self.reschedule(event, attempts, delay).await;
                }
            }
            Attempt::Throttled => {
                // Throttles do not count as attempts; back off (longer the older the event,
                // up to a minute) and try again.
                let delay = Duration::from_millis((age_ms as u64 / 10).clamp(250, 60_000));
                let attempts = event.attempts;
                self.reschedule(event, attempts, delay).await;
            }
            Attempt::Gone(e) => {
                tracing::warn!(request_id = %event.request_id, "dropping async event: {e}");
                self.metric(&event, &[("AsyncEventsDropped", "Count", 1.0)]);
                self.complete(&event).await;
            }
            Attempt::SystemError(e) => {
                tracing::warn!(request_id = %event.request_id, "async invocation failed in the service: {e}");
                let attempts = event.attempts;
                self.reschedule(event, attempts, Duration::from_secs(1)).await;
            }
        }
    }

    async fn reschedule(&self, event: AsyncEvent, attempts: u32, delay: Duration) {
        let event = AsyncEvent { attempts, not_before_ms: now_millis() + delay.as_millis() as i64, ..event };
        if let Err(e) = self.store.reschedule_event(&event).await {
            tracing::warn!("rescheduling an async event: {e}");
        }
    }

    async fn complete(&self, event: &AsyncEvent) {
        if let Err(e) = self.store.complete_event(&event.request_id).await {
            tracing::warn!("completing an async event: {e}");
        }
    }

    /// Final failure: the OnFailure destination gets the invocation record; otherwise the
    /// function's dead-letter queue gets the event with AWS's attributes.
    async fn fail(&self, event: &AsyncEvent, condition: &str, outcome: Option<&InvokeOutcome>, on_failure: Option<String>) {
        let mut kept = false;
        if let Some(dest) = on_failure {
            let record = self.record(event, condition, event.attempts.max(1), outcome);
            kept = self.deliver(&dest, Some(&record), event, None).await;
        } else if let Ok(f) = self.control.get(&event.function).await {
            if let Some(dlq) = f.dead_letter_target {
                let message = outcome
                    .and_then(|o| serde_json::from_slice::<Value>(&o.payload).ok())
                    .and_then(|v| v["errorMessage"].as_str().map(str::to_string))
                    .unwrap_or_else(|| condition.to_string());
                let attributes = vec![
                    ("RequestID".to_string(), event.request_id.clone()),
                    ("ErrorCode".to_string(), "200".to_string()),
                    ("ErrorMessage".to_string(), message),
                ];
                let body = String::from_utf8_lossy(&event.payload).into_owned();
                kept = self.deliver(&dlq, None, event, Some((body, attributes))).await;
            }
        }
        if !kept {
            // Neither a destination nor a dead-letter queue took it: AWS counts it dropped.
            self.metric(event, &[("AsyncEventsDropped", "Count", 1.0)]);
        }
        tracing::info!(request_id = %event.request_id, function = %event.function, condition, "async event failed for good");
        self.complete(event).await;
    }

    /// AWS's invocation record for destinations.
    fn record(&self, event: &AsyncEvent, condition: &str, count: u32, outcome: Option<&InvokeOutcome>) -> InvocationRecord {
        let p = self.control.partition();
        let qualifier = event.qualifier.clone().unwrap_or_else(|| LATEST.to_string());
        InvocationRecord {
            version: "1.0".into(),
            timestamp: iso_now(),
            request_context: DestinationRequestContext {
                request_id: event.request_id.clone(),
                function_arn: p.qualified_arn(&event.function, &qualifier),
                condition: condition.to_string(),
                approximate_invoke_count: count,
            },
            request_payload: serde_json::from_slice(&event.payload).unwrap_or(Value::Null),
            response_context: outcome.map(|o| DestinationResponseContext {
                status_code: 200,
                executed_version: o.executed_version.clone(),
                function_error: o.function_error.clone(),
            }),
            response_payload: outcome.map(|o| {
                serde_json::from_slice(&o.payload).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&o.payload).into_owned()))
            }),
        }
    }

    /// AWS/Lambda datapoints about `event`, by its function and qualifier.
    fn metric(&self, event: &AsyncEvent, points: &[(&str, &str, f64)]) {
        let at = crate::MetricDims { function: &event.function, qualifier: event.qualifier.as_deref(), executed_version: None };
        self.invoker.lambda_metrics(&at, points);
    }

    /// Sends a record (or a dead letter) to a function, queue or topic ARN; whether it was
    /// taken. A failure counts as AWS's `DeadLetterErrors` or `DestinationDeliveryFailures`.
    async fn deliver(
        &self,
        arn: &str,
        record: Option<&InvocationRecord>,
        event: &AsyncEvent,
        dead_letter: Option<(String, Vec<(String, String)>)>,
    ) -> bool {
        let failure_metric = if dead_letter.is_some() { "DeadLetterErrors" } else { "DestinationDeliveryFailures" };
        let (body, attributes) =
            dead_letter.unwrap_or_else(|| (serde_json::to_string(&record).expect("invocation records serialize"), Vec::new()));
        let result = if let Some(function) = function_from_arn(arn) {
            self.submit(&function, Bytes::from(body)).await.map(|_| ()).map_err(|e| e.to_string())
        } else {
            let sink = self.sinks.lock().unwrap_or_else(|p| p.into_inner()).clone();
            match sink {
                Some(s) => s.send(arn, body, attributes).await,
                None => Err("no queue or topic service is running".to_string()),
            }
        };
        match result {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(request_id = %event.request_id, destination = arn, "delivering to the destination failed: {e}");
                self.metric(event, &[(failure_metric, "Count", 1.0)]);
                false
            }
        }
    }
}

/// `arn:aws:lambda:<region>:<account>:function:<name>[:qualifier]` as a function reference.
fn function_from_arn(arn: &str) -> Option<FunctionRef> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "lambda", _, _, "function", name] => Some(FunctionRef { name: name.to_string(), qualifier: None }),
        ["arn", _, "lambda", _, _, "function", name, q] => {
            Some(FunctionRef { name: name.to_string(), qualifier: Qualifier::parse(q).ok() })
        }
        _ => None,
    }
}

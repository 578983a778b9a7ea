//! Deliveries: after a publish is on disk, each matched subscription gets its copy here —
//! a Lambda function its SNS event, a queue the envelope (or the raw message), an HTTP(S)
//! endpoint a POST with AWS's headers. Failed deliveries are retried with backoff, then go
//! to the subscription's dead-letter queue (RedrivePolicy) or are dropped. Deliveries to one
//! subscription of a FIFO topic run one at a time per message group, in publish order.
//! Targets outside this crate (functions, queues) are reached through [`Deliver`]; they
//! are retried far longer than HTTP endpoints (AWS retries them for days), since they fail
//! only while the target is missing.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Notify;

use crate::message::{Kind, MessageAttributes, StoredMessage};
use crate::metrics::TopicMetric;
use crate::service::{now_ms, Subscription, TopicService};
use crate::store::DeliveryRow;

/// A message for a queue subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    pub body: String,
    /// Carried over with raw message delivery.
    pub attributes: MessageAttributes,
    /// FIFO topics to FIFO queues.
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
}

/// Where deliveries to functions and queues go; the server implements it with the
/// asynchronous invoker and the queue service.
#[async_trait]
pub trait Deliver: Send + Sync {
    /// Queues an asynchronous invocation of the function (ARN, maybe qualified) for a message
    /// of the topic `topic_arn` (which the function's resource policy must allow).
    async fn invoke_function(&self, function_arn: &str, topic_arn: &str, payload: String) -> Result<(), Undelivered>;
    /// Sends a message of the topic `topic_arn` to the queue (whose policy must let SNS send
    /// for that topic).
    async fn send_to_queue(&self, queue_arn: &str, topic_arn: &str, message: QueueMessage) -> Result<(), Undelivered>;
}

/// Why a delivery did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undelivered {
    /// Worth retrying (the target is busy or failed).
    Transient(String),
    /// The target refuses the topic (its policy does not allow it): retrying cannot help, so
    /// the message goes to the dead-letter queue at once, as SNS does with client-side errors.
    Refused(String),
}

impl std::fmt::Display for Undelivered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Undelivered::Transient(why) | Undelivered::Refused(why) => f.write_str(why),
        }
    }
}

impl From<String> for Undelivered {
    fn from(why: String) -> Self {
        Undelivered::Transient(why)
    }
}

impl From<Undelivered> for Failure {
    fn from(u: Undelivered) -> Self {
        match u {
            Undelivered::Transient(why) => Failure::Retry(why),
            Undelivered::Refused(why) => Failure::Permanent(why),
        }
    }
}

/// Deliveries running at once.
const PARALLELISM: usize = 64;

#[derive(Debug, Clone)]
struct Job {
    id: i64,
    message_row: i64,
    message: Arc<StoredMessage>,
    subscription: String,
    attempts: u32,
    next_at: i64,
    /// FIFO: deliveries sharing a lane run one at a time, in id order.
    lane: Option<String>,
    running: bool,
}

#[derive(Default)]
struct Pending {
    jobs: BTreeMap<i64, Job>,
    busy: HashSet<String>,
    running: usize,
}

/// The queue of deliveries still to make.
#[derive(Default)]
pub(crate) struct Dispatcher {
    pending: Mutex<Pending>,
    wake: Arc<Notify>,
}

enum Failure {
    Retry(String),
    Permanent(String),
}

fn lane(m: &StoredMessage, subscription: &str) -> Option<String> {
    m.group_id.as_ref().map(|g| format!("{subscription}\n{g}"))
}

impl Dispatcher {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes over the deliveries a previous run left; they are due at once.
    pub(crate) fn load(&self, _svc: &TopicService, rows: Vec<(DeliveryRow, StoredMessage)>) {
        let now = now_ms();
        let mut p = self.lock();
        let mut messages: BTreeMap<i64, Arc<StoredMessage>> = BTreeMap::new();
        for (d, m) in rows {
            let m = messages.entry(d.message_row).or_insert_with(|| Arc::new(m)).clone();
            let lane = lane(&m, &d.subscription);
            p.jobs.insert(
                d.id,
                Job {
                    id: d.id,
                    message_row: d.message_row,
                    message: m,
                    subscription: d.subscription,
                    attempts: d.attempts,
                    next_at: d.next_at.min(now),
                    lane,
                    running: false,
                },
            );
        }
        drop(p);
        self.wake.notify_one();
    }

    /// Queues deliveries of a message just committed.
    pub(crate) fn enqueue(&self, _svc: &TopicService, m: Arc<StoredMessage>, message_row: i64, deliveries: &[(String, i64)]) {
        let now = now_ms();
        let mut p = self.lock();
        for (sub, id) in deliveries {
            let lane = lane(&m, sub);
            p.jobs.insert(
                *id,
                Job {
                    id: *id,
                    message_row,
                    message: m.clone(),
                    subscription: sub.clone(),
                    attempts: 0,
                    next_at: now,
                    lane,
                    running: false,
                },
            );
        }
        drop(p);
        self.wake.notify_one();
    }

    /// Drops queued deliveries of removed subscriptions (their rows are gone already).
    pub(crate) fn forget_subscriptions(&self, subs: &HashSet<String>) {
        self.lock().jobs.retain(|_, j| j.running || !subs.contains(&j.subscription));
    }

    /// Starts whatever is due; returns when the next job will be.
    fn take_due(&self) -> (Vec<Job>, Option<i64>) {
        let now = now_ms();
        let mut p = self.lock();
        let mut blocked: HashSet<String> = p.busy.clone();
        let mut due = Vec::new();
        let mut next: Option<i64> = None;
        let mut running = p.running;
        let mut start = Vec::new();
        for job in p.jobs.values() {
            if job.running {
                continue;
            }
            if let Some(l) = &job.lane {
                if !blocked.insert(l.clone()) {
                    continue;
                }
            }
            if job.next_at > now {
                next = Some(next.map_or(job.next_at, |n: i64| n.min(job.next_at)));
                continue;
            }
            if running >= PARALLELISM {
                break;
            }
            running += 1;
            start.push(job.id);
        }
        for id in start {
            if let Some(job) = p.jobs.get_mut(&id) {
                job.running = true;
                let job = job.clone();
                if let Some(l) = &job.lane {
                    p.busy.insert(l.clone());
                }
                due.push(job);
            }
        }
        p.running = running;
        (due, next)
    }

    fn finished(&self, job: &Job, retry_at: Option<(u32, i64)>) {
        let mut p = self.lock();
        p.running = p.running.saturating_sub(1);
        if let Some(l) = &job.lane {
            p.busy.remove(l);
        }
        match retry_at {
            Some((attempts, at)) => {
                if let Some(j) = p.jobs.get_mut(&job.id) {
                    j.running = false;
                    j.attempts = attempts;
                    j.next_at = at;
                }
            }
            None => {
                p.jobs.remove(&job.id);
            }
        }
        drop(p);
        self.wake.notify_one();
    }

    /// The delivery loop; ends when the service is dropped.
    pub(crate) async fn run(svc: Weak<TopicService>) {
        loop {
            let Some(s) = svc.upgrade() else { return };
            let (due, next) = s.dispatcher.take_due();
            for job in due {
                let s = s.clone();
                tokio::spawn(async move { s.deliver_job(job).await });
            }
            let wait = next.map(|at| Duration::from_millis((at - now_ms()).clamp(1, 60_000) as u64)).unwrap_or(Duration::from_secs(5));
            let wake = s.dispatcher.wake.clone();
            drop(s);
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

impl TopicService {
    async fn deliver_job(self: Arc<Self>, job: Job) {
        let sub = self.read_state().subs.get(&job.subscription).cloned();
        let result = match &sub {
            None => Ok(()), // unsubscribed meanwhile
            Some(sub) => self.attempt(sub, &job.message).await,
        };
        let attempts = job.attempts + 1;
        let max_attempts = match sub.as_ref().map(|s| s.row.protocol.as_str()) {
            Some("http" | "https") => self.config.max_attempts,
            _ => self.config.managed_max_attempts,
        };
        let notification = matches!(job.message.kind, Kind::Notification);
        if notification && sub.is_some() {
            match &result {
                Ok(()) => self.count(&job.message.topic_arn, TopicMetric::NumberOfNotificationsDelivered, 1.0),
                Err(Failure::Retry(_)) if attempts < max_attempts => {}
                Err(_) => self.count(&job.message.topic_arn, TopicMetric::NumberOfNotificationsFailed, 1.0),
            }
        }
        let retry_at = match (&result, &sub) {
            (Ok(()), _) | (_, None) => None,
            (Err(Failure::Retry(_)), _) if attempts < max_attempts => {
                let delay = (self.config.retry_delay.as_millis() as i64)
                    .saturating_mul(1i64 << (attempts - 1).min(20))
                    .min(self.config.max_retry_delay.as_millis() as i64);
                Some((attempts, now_ms() + delay))
            }
            (Err(Failure::Retry(why) | Failure::Permanent(why)), Some(sub)) => {
                tracing::warn!(subscription = sub.row.arn, message_id = job.message.message_id, attempts, "delivery failed: {why}");
                self.dead_letter(sub, &job.message, why).await;
                None
            }
        };
        self.bookkeep(job.id, job.message_row, retry_at);
        self.dispatcher.finished(&job, retry_at);
    }

    /// Sends an undeliverable message to the subscription's dead-letter queue, if it has one.
    async fn dead_letter(&self, sub: &Subscription, m: &StoredMessage, why: &str) {
        if !matches!(m.kind, Kind::Notification) {
            return;
        }
        let Some(dlq) = sub.dead_letter_target() else { return };
        let mut attributes = MessageAttributes::new();
        attributes.insert("ErrorMessage".into(), crate::message::MessageAttribute::string("String", why));
        let fifo_q = dlq.ends_with(".fifo");
        let qm = QueueMessage {
            body: m.envelope("sqs", &sub.row.arn, &self.urls),
            attributes,
            group_id: if fifo_q { m.group_id.clone().or_else(|| Some("nimbus".into())) } else { None },
            dedup_id: if fifo_q { Some(m.message_id.clone()) } else { None },
        };
        let topic = sub.row.arn.rsplit_once(':').map_or(sub.row.arn.as_str(), |(topic, _)| topic);
        if let Err(e) = self.deliver.send_to_queue(&dlq, topic, qm).await {
            tracing::warn!(subscription = sub.row.arn, "dead-letter queue {dlq}: {e}");
        }
    }

    async fn attempt(&self, sub: &Subscription, m: &StoredMessage) -> Result<(), Failure> {
        let arn = sub.row.arn.as_str();
        match sub.row.protocol.as_str() {
            "lambda" => {
                let topic = arn.rsplit_once(':').map_or(arn, |(topic, _)| topic);
                self.deliver.invoke_function(&sub.row.endpoint, topic, m.lambda_event(arn, &self.urls)).await.map_err(Failure::from)
            }
            "sqs" => {
                let fifo_q = sub.row.endpoint.ends_with(".fifo");
                let (body, attributes) = if sub.raw() {
                    (m.body.for_protocol("sqs").to_string(), m.attributes.clone())
                } else {
                    (m.envelope("sqs", arn, &self.urls), MessageAttributes::new())
                };
                let qm = QueueMessage {
                    body,
                    attributes,
                    group_id: if fifo_q { m.group_id.clone() } else { None },
                    dedup_id: if fifo_q { m.dedup_id.clone() } else { None },
                };
                let topic = arn.rsplit_once(':').map_or(arn, |(topic, _)| topic);
                self.deliver.send_to_queue(&sub.row.endpoint, topic, qm).await.map_err(Failure::from)
            }
            "http" | "https" => self.post(sub, m).await,
            other => Err(Failure::Permanent(format!("protocol {other} is not delivered"))),
        }
    }

    async fn post(&self, sub: &Subscription, m: &StoredMessage) -> Result<(), Failure> {
        if sub.row.protocol == "https" {
            return Err(Failure::Permanent("https endpoints need TLS, which Nimbus does not speak yet".into()));
        }
        let protocol = sub.row.protocol.as_str();
        let (kind, raw) = match &m.kind {
            Kind::Notification => ("Notification", sub.raw()),
            Kind::SubscriptionConfirmation { .. } => ("SubscriptionConfirmation", false),
        };
        let body = if raw { m.body.for_protocol(protocol).to_string() } else { m.envelope(protocol, &sub.row.arn, &self.urls) };
        let mut req = http::Request::post(sub.row.endpoint.as_str())
            .header("content-type", "text/plain; charset=UTF-8")
            .header("user-agent", "Amazon Simple Notification Service Agent")
            .header("x-amz-sns-message-type", kind)
            .header("x-amz-sns-message-id", m.message_id.as_str())
            .header("x-amz-sns-topic-arn", m.topic_arn.as_str());
        if kind == "Notification" {
            req = req.header("x-amz-sns-subscription-arn", sub.row.arn.as_str());
        }
        if raw {
            req = req.header("x-amz-sns-rawdelivery", "true");
        }
        let req =
            req.body(Full::new(Bytes::from(body))).map_err(|e| Failure::Permanent(format!("bad endpoint {}: {e}", sub.row.endpoint)))?;
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let answer = tokio::time::timeout(self.config.http_timeout, async {
            let resp = client.request(req).await.map_err(|e| format!("{e}"))?;
            let status = resp.status();
            let _ = resp.into_body().collect().await;
            Ok::<_, String>(status)
        })
        .await;
        match answer {
            Ok(Ok(status)) if status.is_success() => Ok(()),
            Ok(Ok(status)) => Err(Failure::Retry(format!("endpoint answered {status}"))),
            Ok(Err(e)) => Err(Failure::Retry(e)),
            Err(_) => Err(Failure::Retry("endpoint did not answer in time".into())),
        }
    }
}

//! [`TopicService`]: the SNS actions with AWS's semantics over the durable [`Store`], with an
//! in-memory view of topics and subscriptions that publishing reads (changes go to the
//! database first, then to the view, one at a time).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use tokio::sync::Mutex;

use crate::attributes::{self, DEFAULT_EFFECTIVE_DELIVERY_POLICY, PROTOCOLS, UNSUPPORTED_PROTOCOLS};
use crate::dispatch::{Deliver, Dispatcher};
use crate::error::TopicError;
use crate::filter::{FilterPolicy, Scope};
use crate::message::{self, Body, Kind, MessageAttributes, StoredMessage, Urls, MAX_MESSAGE_BYTES};
use crate::metrics::{TopicMetric, TopicMetrics};
use crate::store::{in_tx, Db, SubscriptionRow, TopicRow, TopicTx};

/// FIFO deduplication window.
const DEDUP_WINDOW_MS: i64 = 5 * 60 * 1000;
/// Topics and subscriptions per page of ListTopics / ListSubscriptions.
const PAGE: usize = 100;
/// Tags per topic.
const MAX_TAGS: usize = 50;

/// How the service is set up.
#[derive(Debug, Clone)]
pub struct TopicConfig {
    pub region: String,
    pub account: String,
    /// This server's URL as subscribers reach it (`http://127.0.0.1:9001`): confirmation and
    /// unsubscribe links point there.
    pub endpoint: String,
    /// Attempts per delivery to an HTTP(S) endpoint before it goes to the subscription's
    /// dead-letter queue (or is dropped); AWS's default policy retries 3 times.
    pub max_attempts: u32,
    /// Attempts per delivery to a queue or function (AWS retries those for days; they fail
    /// only while the target is missing).
    pub managed_max_attempts: u32,
    /// Delay before the first retry; doubling after, up to `max_retry_delay`.
    pub retry_delay: Duration,
    pub max_retry_delay: Duration,
    /// With a shared store: how long a pending delivery stays this node's without renewal
    /// (after that, another node takes it over).
    pub lease: Duration,
    /// How long an HTTP endpoint has to answer.
    pub http_timeout: Duration,
}

impl TopicConfig {
    pub fn new(region: &str, account: &str, endpoint: &str) -> TopicConfig {
        TopicConfig {
            region: region.into(),
            account: account.into(),
            endpoint: endpoint.trim_end_matches('/').into(),
            max_attempts: 4,
            managed_max_attempts: 100,
            retry_delay: Duration::from_secs(1),
            max_retry_delay: Duration::from_secs(60),
            http_timeout: Duration::from_secs(15),
            lease: Duration::from_secs(30),
        }
    }
}

/// Publish's input (also one PublishBatch entry, without its id).
#[derive(Debug, Clone, Default)]
pub struct PublishInput {
    pub message: String,
    pub subject: Option<String>,
    /// `MessageStructure`: only `json` is defined.
    pub message_structure: Option<String>,
    pub attributes: MessageAttributes,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
}

/// What Publish answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishResult {
    pub message_id: String,
    pub sequence_number: Option<String>,
}

/// A failed PublishBatch entry, as AWS reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchFailure {
    pub id: String,
    pub code: String,
    pub message: String,
    pub sender_fault: bool,
}

/// PublishBatch's answer.
#[derive(Debug, Clone, Default)]
pub struct BatchOutcome {
    pub successful: Vec<(String, PublishResult)>,
    pub failed: Vec<BatchFailure>,
}

/// Subscribe's input.
#[derive(Debug, Clone, Default)]
pub struct SubscribeInput {
    pub topic_arn: String,
    pub protocol: String,
    pub endpoint: Option<String>,
    pub attributes: BTreeMap<String, String>,
    pub return_subscription_arn: bool,
}

/// One row of ListSubscriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionSummary {
    /// `PendingConfirmation` until confirmed, as AWS lists it.
    pub subscription_arn: String,
    pub owner: String,
    pub protocol: String,
    pub endpoint: String,
    pub topic_arn: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Topic {
    pub row: TopicRow,
    pub arn: String,
    /// Subscription ARNs, oldest first.
    pub subs: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Subscription {
    pub row: SubscriptionRow,
    pub topic_arn: String,
    pub filter: Option<Arc<FilterPolicy>>,
}

impl Subscription {
    fn new(row: SubscriptionRow, topic_arn: String) -> Subscription {
        let filter = row.attributes.get("FilterPolicy").and_then(|text| {
            let scope = row.attributes.get("FilterPolicyScope").and_then(|s| Scope::parse(s)).unwrap_or_default();
            match FilterPolicy::parse(text, scope, false) {
                Ok(p) => Some(Arc::new(p)),
                Err(e) => {
                    tracing::warn!(subscription = row.arn, "ignoring a stored filter policy: {e}");
                    None
                }
            }
        });
        Subscription { row, topic_arn, filter }
    }

    pub fn raw(&self) -> bool {
        self.row.attributes.get("RawMessageDelivery").is_some_and(|v| v == "true")
    }

    pub fn dead_letter_target(&self) -> Option<String> {
        let p: serde_json::Value = serde_json::from_str(self.row.attributes.get("RedrivePolicy")?).ok()?;
        p.get("deadLetterTargetArn")?.as_str().map(str::to_string)
    }

    fn passes(&self, m: &StoredMessage) -> bool {
        self.filter.as_ref().is_none_or(|f| f.matches(&m.attributes, m.body.for_protocol(&self.row.protocol)))
    }
}

#[derive(Default)]
pub(crate) struct State {
    pub topics: BTreeMap<String, Topic>,
    pub subs: BTreeMap<String, Subscription>,
}

/// The topic service. Share it as an `Arc`.
pub struct TopicService {
    pub(crate) db: Db,
    pub(crate) config: TopicConfig,
    pub(crate) urls: Urls,
    pub(crate) state: RwLock<State>,
    /// Changes to topics and subscriptions run one at a time.
    control: Mutex<()>,
    pub(crate) dispatcher: Dispatcher,
    pub(crate) deliver: Arc<dyn Deliver>,
    /// Where `AWS/SNS` datapoints go, once the binary says (`record_into`).
    metrics: std::sync::OnceLock<Arc<dyn TopicMetrics>>,
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn timestamp() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn bool_attr(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

fn page<T: Clone>(items: &[T], key: impl Fn(&T) -> &str, token: Option<&str>) -> Result<(Vec<T>, Option<String>), TopicError> {
    let start = match token.filter(|t| !t.is_empty()) {
        None => 0,
        Some(t) => items.iter().position(|i| key(i) == t).ok_or_else(|| TopicError::invalid("NextToken"))?,
    };
    let end = (start + PAGE).min(items.len());
    let next = items.get(end).map(|i| key(i).to_string());
    Ok((items[start..end].to_vec(), next))
}

fn validate_tags(tags: &BTreeMap<String, String>) -> Result<(), TopicError> {
    for (k, v) in tags {
        if k.is_empty() || k.len() > 128 {
            return Err(TopicError::invalid("TagKey Reason: Tag keys must be between 1 and 128 characters long"));
        }
        if v.len() > 256 {
            return Err(TopicError::invalid("TagValue Reason: Tag values must be at most 256 characters long"));
        }
    }
    Ok(())
}

impl TopicService {
    /// Opens the topic database at `path` (e.g. `<data>/topics.db`), loads topics and
    /// subscriptions, and (inside a Tokio runtime) starts delivering what was left pending.
    pub async fn open(path: &Path, config: TopicConfig, deliver: Arc<dyn Deliver>) -> Result<Arc<TopicService>, TopicError> {
        TopicService::with_db(Db::Sqlite(crate::store::sqlite::Store::open(path)?), config, deliver).await
    }

    /// Opens the account's topics in the PostgreSQL database at `url`, which other nodes
    /// share (`--store postgres://…`): topics and subscriptions are every node's, and a
    /// publish acknowledged by any node is delivered while any node is up (its pending
    /// deliveries are taken over when its leases lapse).
    pub async fn open_shared(url: &str, config: TopicConfig, deliver: Arc<dyn Deliver>) -> Result<Arc<TopicService>, TopicError> {
        // This node's connections' name: the holder its deliveries name, and the writer its
        // announcements quote (a node ignores its own).
        let node = format!("nimbus-topics-{}", uuid::Uuid::new_v4().simple());
        let shared = crate::store::postgres::SharedTopics::open(url, &config.account, &node, config.lease).await?;
        let svc = TopicService::with_db(Db::Postgres(Arc::new(shared)), config, deliver).await?;
        if let Db::Postgres(shared) = &svc.db {
            let what = format!("SNS of account {}", svc.config.account);
            shared.watch(
                Arc::downgrade(&svc),
                nimbus_store::pg::reloader(Arc::downgrade(&svc), what, |svc: Arc<Self>| async move { svc.reload().await }),
            );
            tokio::spawn(Self::hold_leases(Arc::downgrade(&svc), shared.lease()));
        }
        Ok(svc)
    }

    async fn with_db(db: Db, config: TopicConfig, deliver: Arc<dyn Deliver>) -> Result<Arc<TopicService>, TopicError> {
        let (topics, subs, pending) =
            in_tx!(&db, false, |tx| Ok((tx.all_topics().await?, tx.all_subscriptions().await?, tx.pending_deliveries().await?)))?;
        let svc = Arc::new(TopicService {
            db,
            urls: Urls { endpoint: config.endpoint.clone() },
            config,
            state: RwLock::new(State::default()),
            control: Mutex::new(()),
            dispatcher: Dispatcher::default(),
            deliver,
            metrics: std::sync::OnceLock::new(),
        });
        *svc.write_state() = svc.mirror(topics, subs);
        let weak: Weak<TopicService> = Arc::downgrade(&svc);
        svc.dispatcher.load(&svc, pending);
        tokio::spawn(Dispatcher::run(weak.clone()));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                let Some(svc) = weak.upgrade() else { return };
                let now = now_ms();
                if let Err(e) = in_tx!(&svc.db, false, |tx| tx.sweep_dedup(now).await) {
                    tracing::warn!("sweeping topic deduplication entries: {e}");
                }
            }
        });
        Ok(svc)
    }

    /// The in-memory view of stored topics and subscriptions.
    fn mirror(&self, topics: Vec<TopicRow>, subs: Vec<SubscriptionRow>) -> State {
        let mut st = State::default();
        for row in topics {
            let arn = self.topic_arn(&row.name);
            st.topics.insert(row.name.clone(), Topic { row, arn, subs: Vec::new() });
        }
        for row in subs {
            let Some(topic) = st.topics.get_mut(&row.topic) else { continue };
            topic.subs.push(row.arn.clone());
            let topic_arn = topic.arn.clone();
            st.subs.insert(row.arn.clone(), Subscription::new(row, topic_arn));
        }
        st
    }

    /// Reads topics and subscriptions again (another node changed them), as the writer: a
    /// change of this node's is either committed before the read or made after it. Pending
    /// deliveries of subscriptions gone are dropped.
    async fn reload(&self) -> Result<(), TopicError> {
        let _guard = self.control.lock().await;
        let (topics, subs) = in_tx!(&self.db, false, |tx| Ok((tx.all_topics().await?, tx.all_subscriptions().await?)))?;
        let fresh = self.mirror(topics, subs);
        let gone: HashSet<String> = {
            let mut st = self.write_state();
            let gone = st.subs.keys().filter(|a| !fresh.subs.contains_key(*a)).cloned().collect();
            *st = fresh;
            gone
        };
        if !gone.is_empty() {
            self.dispatcher.forget_subscriptions(&gone);
        }
        Ok(())
    }

    /// With a shared store, every third of `lease`: renews this node's deliveries and takes
    /// over those whose holder's lease lapsed. Ends with the service.
    async fn hold_leases(svc: Weak<TopicService>, lease: Duration) {
        let mut tick = tokio::time::interval(lease / 3);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(svc) = svc.upgrade() else { return };
            let Db::Postgres(shared) = &svc.db else { return };
            if let Err(e) = shared.renew().await {
                tracing::warn!("renewing topic deliveries' leases: {e}");
            }
            match in_tx!(&svc.db, false, |tx| tx.pending_deliveries().await) {
                Ok(taken) if !taken.is_empty() => {
                    tracing::info!("took over {} topic deliveries another node held", taken.len());
                    svc.dispatcher.load(&svc, taken);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("taking over topic deliveries: {e}"),
            }
        }
    }

    /// Gives this node's pending deliveries back (it stops), so other nodes take them over
    /// at once instead of after their leases lapse. Nothing to do on one node.
    pub async fn leave(&self) {
        if let Db::Postgres(shared) = &self.db {
            if let Err(e) = shared.leave().await {
                tracing::warn!("handing topic deliveries back: {e}");
            }
        }
    }

    /// Records the outcome of a delivery attempt, without waiting (lost, it is made again).
    pub(crate) fn bookkeep(self: &Arc<Self>, id: i64, message_row: i64, retry_at: Option<(u32, i64)>) {
        let svc = self.clone();
        tokio::spawn(async move {
            let done = match retry_at {
                Some((attempts, at)) => in_tx!(&svc.db, false, |tx| tx.reschedule_delivery(id, attempts, at).await),
                None => in_tx!(&svc.db, false, |tx| tx.finish_delivery(id, message_row).await),
            };
            if let Err(e) = done {
                tracing::warn!("recording a topic delivery: {e}");
            }
        });
    }

    pub(crate) fn read_state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_state(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn account(&self) -> &str {
        &self.config.account
    }

    /// `arn:aws:sns:<region>:<account>:<name>`.
    pub fn topic_arn(&self, name: &str) -> String {
        format!("arn:aws:sns:{}:{}:{name}", self.config.region, self.config.account)
    }

    /// The topic name in a topic ARN; a well-formed ARN of another region or account names
    /// no topic here.
    fn topic_name(&self, arn: &str, param: &str) -> Result<String, TopicError> {
        let parts: Vec<&str> = arn.split(':').collect();
        match parts.as_slice() {
            ["arn", p, "sns", region, account, name] if p.starts_with("aws") && !name.is_empty() => {
                if *region != self.config.region || *account != self.config.account {
                    return Err(TopicError::topic_not_found());
                }
                Ok(name.to_string())
            }
            _ => Err(TopicError::invalid(param)),
        }
    }

    fn check_subscription_arn(arn: &str) -> Result<(), TopicError> {
        let parts: Vec<&str> = arn.split(':').collect();
        match parts.as_slice() {
            ["arn", p, "sns", _, _, topic, id] if p.starts_with("aws") && !topic.is_empty() && !id.is_empty() => Ok(()),
            _ if parts.len() < 6 => {
                Err(TopicError::invalid(format!("SubscriptionArn Reason: An ARN must have at least 6 elements, not {}", parts.len())))
            }
            _ => Err(TopicError::invalid("SubscriptionId")),
        }
    }

    fn topic(&self, name: &str) -> Result<Topic, TopicError> {
        self.read_state().topics.get(name).cloned().ok_or_else(TopicError::topic_not_found)
    }

    // ---- topics --------------------------------------------------------------------

    /// Creates a topic, or returns the existing one when attributes and tags agree.
    pub async fn create_topic(
        &self,
        name: &str,
        attrs: BTreeMap<String, String>,
        tags: BTreeMap<String, String>,
    ) -> Result<String, TopicError> {
        let fifo = match attrs.get("FifoTopic") {
            Some(v) => {
                bool_attr(v).ok_or_else(|| TopicError::invalid("Attributes Reason: FifoTopic: Invalid value. Must be true or false."))?
            }
            None => false,
        };
        attributes::validate_topic_name(name, fifo)?;
        let mut stored = BTreeMap::new();
        for (k, v) in &attrs {
            if k == "FifoTopic" {
                continue;
            }
            stored.insert(k.clone(), attributes::check_topic_attribute(k, v, fifo, true)?);
        }
        if fifo {
            stored.entry("ContentBasedDeduplication".into()).or_insert_with(|| "false".into());
        }
        validate_tags(&tags)?;
        if tags.len() > MAX_TAGS {
            return Err(TopicError::TagLimitExceeded("Could not complete request: tag quota of per resource exceeded".into()));
        }
        let _guard = self.control.lock().await;
        if let Some(existing) = self.read_state().topics.get(name) {
            if existing.row.fifo != fifo || stored.iter().any(|(k, v)| existing.row.attributes.get(k) != Some(v)) {
                return Err(TopicError::invalid("Attributes Reason: Topic already exists with different attributes"));
            }
            if tags.iter().any(|(k, v)| existing.row.tags.get(k) != Some(v)) {
                return Err(TopicError::invalid("Tags Reason: Topic already exists with different tags"));
            }
            return Ok(existing.arn.clone());
        }
        let row =
            TopicRow { name: name.to_string(), fifo, attributes: stored, tags, deleted_subscriptions: 0, created_at: now_ms() / 1000 };
        let r = row.clone();
        in_tx!(&self.db, true, |tx| tx.insert_topic(&r).await)?;
        let arn = self.topic_arn(name);
        self.write_state().topics.insert(name.to_string(), Topic { row, arn: arn.clone(), subs: Vec::new() });
        Ok(arn)
    }

    /// Deletes a topic and its subscriptions; deleting a missing topic succeeds, as in AWS.
    pub async fn delete_topic(&self, arn: &str) -> Result<(), TopicError> {
        let name = match self.topic_name(arn, "TopicArn") {
            Err(TopicError::NotFound(_)) => return Ok(()),
            other => other?,
        };
        let _guard = self.control.lock().await;
        if !self.read_state().topics.contains_key(&name) {
            return Ok(());
        }
        let (n, a) = (name.clone(), arn.to_string());
        in_tx!(&self.db, true, |tx| tx.delete_topic(&n, &a).await)?;
        let removed: Vec<String> = {
            let mut st = self.write_state();
            let subs = st.topics.remove(&name).map(|t| t.subs).unwrap_or_default();
            for s in &subs {
                st.subs.remove(s);
            }
            subs
        };
        self.dispatcher.forget_subscriptions(&removed.into_iter().collect());
        Ok(())
    }

    /// Topic ARNs, 100 a page.
    pub fn list_topics(&self, next_token: Option<&str>) -> Result<(Vec<String>, Option<String>), TopicError> {
        let arns: Vec<String> = self.read_state().topics.values().map(|t| t.arn.clone()).collect();
        page(&arns, |a| a.as_str(), next_token)
    }

    pub fn get_topic_attributes(&self, arn: &str) -> Result<BTreeMap<String, String>, TopicError> {
        let name = self.topic_name(arn, "TopicArn")?;
        let st = self.read_state();
        let t = st.topics.get(&name).ok_or_else(TopicError::topic_not_found)?;
        let (mut confirmed, mut pending) = (0, 0);
        for s in &t.subs {
            match st.subs.get(s) {
                Some(s) if s.row.confirmed => confirmed += 1,
                Some(_) => pending += 1,
                None => {}
            }
        }
        let mut out: BTreeMap<String, String> =
            t.row.attributes.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| (k.clone(), v.clone())).collect();
        out.entry("Policy".into()).or_insert_with(|| attributes::default_policy(&t.arn, &self.config.account));
        out.entry("DisplayName".into()).or_default();
        out.insert("Owner".into(), self.config.account.clone());
        out.insert("TopicArn".into(), t.arn.clone());
        out.insert("SubscriptionsConfirmed".into(), confirmed.to_string());
        out.insert("SubscriptionsPending".into(), pending.to_string());
        out.insert("SubscriptionsDeleted".into(), t.row.deleted_subscriptions.to_string());
        out.insert("EffectiveDeliveryPolicy".into(), DEFAULT_EFFECTIVE_DELIVERY_POLICY.into());
        if t.row.fifo {
            out.insert("FifoTopic".into(), "true".into());
            out.entry("ContentBasedDeduplication".into()).or_insert_with(|| "false".into());
        }
        Ok(out)
    }

    /// The topic's access policy (its `Policy` attribute, or the default one GetTopicAttributes
    /// shows); None when the topic does not exist.
    pub fn topic_policy(&self, arn: &str) -> Option<String> {
        let name = self.topic_name(arn, "TopicArn").ok()?;
        let st = self.read_state();
        let t = st.topics.get(&name)?;
        Some(match t.row.attributes.get("Policy").filter(|p| !p.is_empty()) {
            Some(p) => p.clone(),
            None => attributes::default_policy(&t.arn, &self.config.account),
        })
    }

    pub async fn set_topic_attributes(&self, arn: &str, name: &str, value: &str) -> Result<(), TopicError> {
        let topic = self.topic_name(arn, "TopicArn")?;
        let _guard = self.control.lock().await;
        let mut t = self.topic(&topic)?;
        if name == "FifoTopic" {
            return Err(TopicError::invalid("AttributeName"));
        }
        let v = attributes::check_topic_attribute(name, value, t.row.fifo, false)?;
        t.row.attributes.insert(name.to_string(), v);
        self.save_topic(t).await
    }

    async fn save_topic(&self, t: Topic) -> Result<(), TopicError> {
        let row = t.row.clone();
        in_tx!(&self.db, true, |tx| tx.update_topic(&row).await)?;
        if let Some(cur) = self.write_state().topics.get_mut(&t.row.name) {
            cur.row = t.row;
        }
        Ok(())
    }

    // ---- tags ----------------------------------------------------------------------

    fn tagged_topic(&self, arn: &str) -> Result<Topic, TopicError> {
        let not_found = || TopicError::ResourceNotFound("Resource does not exist".into());
        let name = self.topic_name(arn, "ResourceArn").map_err(|e| if matches!(e, TopicError::NotFound(_)) { not_found() } else { e })?;
        self.topic(&name).map_err(|_| not_found())
    }

    pub async fn tag_resource(&self, arn: &str, tags: BTreeMap<String, String>) -> Result<(), TopicError> {
        validate_tags(&tags)?;
        let _guard = self.control.lock().await;
        let mut t = self.tagged_topic(arn)?;
        t.row.tags.extend(tags);
        if t.row.tags.len() > MAX_TAGS {
            return Err(TopicError::TagLimitExceeded("Could not complete request: tag quota of per resource exceeded".into()));
        }
        self.save_topic(t).await
    }

    pub async fn untag_resource(&self, arn: &str, keys: &[String]) -> Result<(), TopicError> {
        let _guard = self.control.lock().await;
        let mut t = self.tagged_topic(arn)?;
        for k in keys {
            t.row.tags.remove(k);
        }
        self.save_topic(t).await
    }

    pub fn list_tags_for_resource(&self, arn: &str) -> Result<BTreeMap<String, String>, TopicError> {
        Ok(self.tagged_topic(arn)?.row.tags)
    }

    // ---- subscriptions -------------------------------------------------------------

    /// Subscribes an endpoint. Lambda and SQS subscriptions are confirmed at once; HTTP(S)
    /// endpoints are sent a SubscriptionConfirmation and stay pending until confirmed.
    /// Subscribing the same endpoint again returns the existing subscription.
    pub async fn subscribe(&self, input: SubscribeInput) -> Result<String, TopicError> {
        let name = self.topic_name(&input.topic_arn, "TopicArn")?;
        let protocol = input.protocol.as_str();
        if !PROTOCOLS.contains(&protocol) {
            if UNSUPPORTED_PROTOCOLS.contains(&protocol) {
                return Err(TopicError::invalid(format!("Protocol Reason: Nimbus does not deliver to {protocol} endpoints")));
            }
            return Err(TopicError::invalid(format!("Amazon SNS does not support this protocol string: {protocol}")));
        }
        let endpoint = input.endpoint.clone().filter(|e| !e.is_empty()).ok_or_else(|| TopicError::invalid("Endpoint"))?;
        let topic = self.topic(&name)?;
        match protocol {
            "sqs" => {
                let parts: Vec<&str> = endpoint.split(':').collect();
                if !matches!(parts.as_slice(), ["arn", _, "sqs", _, _, q] if !q.is_empty()) {
                    return Err(TopicError::invalid("SQS endpoint ARN"));
                }
                if endpoint.ends_with(".fifo") && !topic.row.fifo {
                    return Err(TopicError::invalid(
                        "Invalid parameter: Endpoint Reason: FIFO SQS Queues can not be subscribed to standard SNS topics",
                    ));
                }
            }
            "lambda" => {
                let parts: Vec<&str> = endpoint.split(':').collect();
                if !matches!(parts.as_slice(), ["arn", _, "lambda", _, _, "function", f, ..] if !f.is_empty() && parts.len() <= 8) {
                    return Err(TopicError::invalid("Lambda endpoint ARN"));
                }
            }
            _ => {
                if !endpoint.starts_with(&format!("{protocol}://")) {
                    return Err(TopicError::invalid("Endpoint must match the specified protocol"));
                }
            }
        }
        if topic.row.fifo && protocol != "sqs" {
            return Err(TopicError::invalid(format!(
                "Invalid parameter: Endpoint Reason: FIFO topics deliver only to SQS queues, not {protocol}"
            )));
        }
        let attrs = attributes::apply_subscription_attributes(&BTreeMap::new(), &input.attributes, protocol, true)?;

        let _guard = self.control.lock().await;
        let topic = self.topic(&name)?;
        {
            let st = self.read_state();
            let existing =
                topic.subs.iter().filter_map(|a| st.subs.get(a)).find(|s| s.row.protocol == protocol && s.row.endpoint == endpoint);
            if let Some(s) = existing {
                if input.attributes.iter().any(|(k, _)| s.row.attributes.get(k) != attrs.get(k)) {
                    return Err(TopicError::invalid("Attributes Reason: Subscription already exists with different attributes"));
                }
                let pending = !s.row.confirmed && !input.return_subscription_arn;
                return Ok(if pending { "pending confirmation".into() } else { s.row.arn.clone() });
            }
        }
        let arn = format!("{}:{}", topic.arn, uuid::Uuid::new_v4());
        let confirm = matches!(protocol, "http" | "https");
        let token = confirm.then(|| {
            let mut t = String::with_capacity(256);
            while t.len() < 256 {
                t.push_str(&uuid::Uuid::new_v4().simple().to_string());
            }
            t
        });
        let row = SubscriptionRow {
            arn: arn.clone(),
            topic: name.clone(),
            protocol: protocol.to_string(),
            endpoint,
            confirmed: !confirm,
            token: token.clone(),
            attributes: attrs,
        };
        // The confirmation request is stored with the subscription, so it is sent even after
        // a crash.
        let confirmation = token.map(|token| StoredMessage {
            kind: Kind::SubscriptionConfirmation { token },
            message_id: uuid::Uuid::new_v4().to_string(),
            topic_arn: topic.arn.clone(),
            subject: None,
            body: Body::Text(format!(
                "You have chosen to subscribe to the topic {}.\nTo confirm the subscription, visit the SubscribeURL included in this message.",
                topic.arn
            )),
            attributes: MessageAttributes::new(),
            timestamp: timestamp(),
            group_id: None,
            dedup_id: None,
            sequence_number: None,
        });
        let (r, c, sub_arn) = (row.clone(), confirmation.clone(), arn.clone());
        let now = now_ms();
        let queued = in_tx!(&self.db, true, |tx| {
            tx.upsert_subscription(&r, now).await?;
            match &c {
                Some(m) => tx.insert_message(m, &[sub_arn], now).await,
                None => Ok((0, Vec::new())),
            }
        })?;
        {
            let mut st = self.write_state();
            if let Some(t) = st.topics.get_mut(&name) {
                t.subs.push(arn.clone());
            }
            st.subs.insert(arn.clone(), Subscription::new(row, topic.arn.clone()));
        }
        if let Some(m) = confirmation {
            self.dispatcher.enqueue(self, Arc::new(m), queued.0, &[(arn.clone(), queued.1.first().copied().unwrap_or(0))]);
            if !input.return_subscription_arn {
                return Ok("pending confirmation".into());
            }
        }
        Ok(arn)
    }

    /// Confirms a pending HTTP(S) subscription with the token it was sent.
    pub async fn confirm_subscription(&self, topic_arn: &str, token: &str) -> Result<String, TopicError> {
        let name = self.topic_name(topic_arn, "Topic").map_err(|_| TopicError::invalid("Topic"))?;
        let _guard = self.control.lock().await;
        let found = {
            let st = self.read_state();
            let topic = st.topics.get(&name).ok_or_else(|| TopicError::invalid("Topic"))?;
            topic.subs.iter().filter_map(|a| st.subs.get(a)).find(|s| s.row.token.as_deref() == Some(token)).map(|s| s.row.clone())
        };
        let mut row = found.ok_or_else(|| TopicError::invalid("Token"))?;
        if row.confirmed {
            return Ok(row.arn);
        }
        row.confirmed = true;
        let r = row.clone();
        let now = now_ms();
        in_tx!(&self.db, true, |tx| tx.upsert_subscription(&r, now).await)?;
        if let Some(s) = self.write_state().subs.get_mut(&row.arn) {
            s.row.confirmed = true;
        }
        Ok(row.arn)
    }

    /// Removes a subscription; a missing one is not an error (as in AWS).
    pub async fn unsubscribe(&self, arn: &str) -> Result<(), TopicError> {
        Self::check_subscription_arn(arn)?;
        let _guard = self.control.lock().await;
        let Some(sub) = self.read_state().subs.get(arn).cloned() else { return Ok(()) };
        let topic = self.topic(&sub.row.topic)?;
        let mut row = topic.row.clone();
        row.deleted_subscriptions += 1;
        let (a, r) = (arn.to_string(), row.clone());
        in_tx!(&self.db, true, |tx| {
            tx.delete_subscription(&a).await?;
            tx.update_topic(&r).await
        })?;
        {
            let mut st = self.write_state();
            st.subs.remove(arn);
            if let Some(t) = st.topics.get_mut(&sub.row.topic) {
                t.subs.retain(|s| s != arn);
                t.row = row;
            }
        }
        self.dispatcher.forget_subscriptions(&HashSet::from([arn.to_string()]));
        Ok(())
    }

    fn summary(&self, s: &Subscription) -> SubscriptionSummary {
        SubscriptionSummary {
            subscription_arn: if s.row.confirmed { s.row.arn.clone() } else { "PendingConfirmation".into() },
            owner: self.config.account.clone(),
            protocol: s.row.protocol.clone(),
            endpoint: s.row.endpoint.clone(),
            topic_arn: s.topic_arn.clone(),
        }
    }

    pub fn list_subscriptions(&self, next_token: Option<&str>) -> Result<(Vec<SubscriptionSummary>, Option<String>), TopicError> {
        let st = self.read_state();
        let all: Vec<(String, SubscriptionSummary)> = st
            .topics
            .values()
            .flat_map(|t| t.subs.iter())
            .filter_map(|a| st.subs.get(a))
            .map(|s| (s.row.arn.clone(), self.summary(s)))
            .collect();
        let (p, next) = page(&all, |(a, _)| a.as_str(), next_token)?;
        Ok((p.into_iter().map(|(_, s)| s).collect(), next))
    }

    pub fn list_subscriptions_by_topic(
        &self,
        topic_arn: &str,
        next_token: Option<&str>,
    ) -> Result<(Vec<SubscriptionSummary>, Option<String>), TopicError> {
        let name = self.topic_name(topic_arn, "TopicArn")?;
        let st = self.read_state();
        let t = st.topics.get(&name).ok_or_else(TopicError::topic_not_found)?;
        let all: Vec<(String, SubscriptionSummary)> =
            t.subs.iter().filter_map(|a| st.subs.get(a)).map(|s| (s.row.arn.clone(), self.summary(s))).collect();
        let (p, next) = page(&all, |(a, _)| a.as_str(), next_token)?;
        Ok((p.into_iter().map(|(_, s)| s).collect(), next))
    }

    pub fn get_subscription_attributes(&self, arn: &str) -> Result<BTreeMap<String, String>, TopicError> {
        Self::check_subscription_arn(arn)?;
        let st = self.read_state();
        let s = st.subs.get(arn).ok_or_else(TopicError::subscription_not_found)?;
        let mut out: BTreeMap<String, String> = s.row.attributes.clone();
        out.insert("SubscriptionArn".into(), s.row.arn.clone());
        out.insert("TopicArn".into(), s.topic_arn.clone());
        out.insert("Protocol".into(), s.row.protocol.clone());
        out.insert("Endpoint".into(), s.row.endpoint.clone());
        out.insert("Owner".into(), self.config.account.clone());
        out.insert("PendingConfirmation".into(), (!s.row.confirmed).to_string());
        out.insert("ConfirmationWasAuthenticated".into(), s.row.confirmed.to_string());
        out.entry("RawMessageDelivery".into()).or_insert_with(|| "false".into());
        out.insert("SubscriptionPrincipal".into(), format!("arn:aws:iam::{}:root", self.config.account));
        if out.contains_key("FilterPolicy") {
            out.entry("FilterPolicyScope".into()).or_insert_with(|| "MessageAttributes".into());
        } else {
            out.remove("FilterPolicyScope");
        }
        if matches!(s.row.protocol.as_str(), "http" | "https") {
            out.insert("EffectiveDeliveryPolicy".into(), DEFAULT_EFFECTIVE_DELIVERY_POLICY.into());
        }
        Ok(out)
    }

    pub async fn set_subscription_attributes(&self, arn: &str, name: &str, value: &str) -> Result<(), TopicError> {
        Self::check_subscription_arn(arn)?;
        let _guard = self.control.lock().await;
        let Some(sub) = self.read_state().subs.get(arn).cloned() else { return Err(TopicError::subscription_not_found()) };
        let changes = BTreeMap::from([(name.to_string(), value.to_string())]);
        let attrs = attributes::apply_subscription_attributes(&sub.row.attributes, &changes, &sub.row.protocol, false)?;
        let mut row = sub.row.clone();
        row.attributes = attrs;
        let r = row.clone();
        let now = now_ms();
        in_tx!(&self.db, true, |tx| tx.upsert_subscription(&r, now).await)?;
        let topic_arn = sub.topic_arn.clone();
        self.write_state().subs.insert(arn.to_string(), Subscription::new(row, topic_arn));
        Ok(())
    }

    // ---- publishing ----------------------------------------------------------------

    /// Validates one message for `topic` and builds it (ids, timestamp, body).
    fn prepare(&self, topic: &Topic, input: PublishInput) -> Result<StoredMessage, TopicError> {
        if input.message.is_empty() {
            return Err(TopicError::invalid("Empty message"));
        }
        if let Some(s) = &input.subject {
            message::validate_subject(s)?;
        }
        message::validate_attributes(&input.attributes)?;
        if message::message_size(&input.message, &input.attributes) > MAX_MESSAGE_BYTES {
            return Err(TopicError::invalid("Message too long"));
        }
        let body = match input.message_structure.as_deref() {
            None | Some("") => Body::Text(input.message.clone()),
            Some("json") => Body::structured(&input.message)?,
            Some(_) => return Err(TopicError::invalid("MessageStructure")),
        };
        let (group_id, dedup_id) = if topic.row.fifo {
            let group = input.group_id.ok_or_else(|| TopicError::invalid("The MessageGroupId parameter is required for FIFO topics"))?;
            message::validate_fifo_id(&group, "MessageGroupId")?;
            let dedup = match input.dedup_id {
                Some(d) => {
                    message::validate_fifo_id(&d, "MessageDeduplicationId")?;
                    d
                }
                None if topic.row.attributes.get("ContentBasedDeduplication").is_some_and(|v| v == "true") => {
                    message::content_dedup_id(&input.message)
                }
                None => {
                    return Err(TopicError::invalid(
                        "The topic should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly",
                    ))
                }
            };
            (Some(group), Some(dedup))
        } else {
            if input.dedup_id.is_some() {
                return Err(TopicError::invalid(
                    "MessageDeduplicationId Reason: The request includes MessageDeduplicationId parameter that is not valid for this topic type",
                ));
            }
            if input.group_id.is_some() {
                return Err(TopicError::invalid(
                    "MessageGroupId Reason: The request includes MessageGroupId parameter that is not valid for this topic type",
                ));
            }
            (None, None)
        };
        Ok(StoredMessage {
            kind: Kind::Notification,
            message_id: uuid::Uuid::new_v4().to_string(),
            topic_arn: topic.arn.clone(),
            subject: input.subject,
            body,
            attributes: input.attributes,
            timestamp: timestamp(),
            group_id,
            dedup_id,
            sequence_number: None,
        })
    }

    /// The confirmed subscriptions of `topic` whose filter policies pass `m`, and how many
    /// policies filtered it out.
    fn recipients(&self, topic_name: &str, m: &StoredMessage) -> (Vec<String>, usize) {
        let st = self.read_state();
        let Some(t) = st.topics.get(topic_name) else { return (Vec::new(), 0) };
        let (mut to, mut filtered_out) = (Vec::new(), 0);
        for s in t.subs.iter().filter_map(|a| st.subs.get(a)).filter(|s| s.row.confirmed) {
            if s.passes(m) {
                to.push(s.row.arn.clone());
            } else {
                filtered_out += 1;
            }
        }
        (to, filtered_out)
    }

    /// Sends this service's `AWS/SNS` datapoints to `metrics` from now on.
    pub fn record_into(&self, metrics: Arc<dyn TopicMetrics>) {
        let _ = self.metrics.set(metrics);
    }

    /// One `AWS/SNS` datapoint for the topic `topic_arn` names.
    pub(crate) fn count(&self, topic_arn: &str, metric: TopicMetric, value: f64) {
        if let Some(m) = self.metrics.get() {
            let topic = topic_arn.rsplit_once(':').map_or(topic_arn, |(_, name)| name);
            m.record(topic, metric, value, now_ms());
        }
    }

    /// Records messages durably with their deliveries (FIFO: deduplicated, numbered) and
    /// hands the deliveries to the dispatcher. Returns one result per message.
    /// `messages` come with their sizes (PublishSize).
    async fn commit(&self, topic: &Topic, messages: Vec<(StoredMessage, usize)>) -> Result<Vec<PublishResult>, TopicError> {
        let mut counts = Vec::with_capacity(messages.len());
        let prepared: Vec<(StoredMessage, Vec<String>)> = messages
            .into_iter()
            .map(|(m, size)| {
                let (to, filtered_out) = self.recipients(&topic.row.name, &m);
                counts.push((size, filtered_out));
                (m, to)
            })
            .collect();
        let (name, arn, fifo) = (topic.row.name.clone(), topic.arn.clone(), topic.row.fifo);
        let now = now_ms();
        let committed = in_tx!(&self.db, true, |tx| {
            let mut out = Vec::with_capacity(prepared.len());
            if fifo {
                tx.lock_topic(&name).await?;
            }
            for (mut m, to) in prepared {
                if fifo {
                    let dedup = m.dedup_id.clone().unwrap_or_default();
                    if let Some((id, seq)) = tx.find_duplicate(&arn, &dedup, now).await? {
                        out.push((PublishResult { message_id: id, sequence_number: seq }, None));
                        continue;
                    }
                    let seq = format!("{:020}", tx.next_sequence(&name).await?);
                    m.sequence_number = Some(seq.clone());
                    tx.remember_dedup(&arn, &dedup, &m.message_id, Some(&seq), now + DEDUP_WINDOW_MS).await?;
                }
                let (row, ids) = tx.insert_message(&m, &to, now).await?;
                let result = PublishResult { message_id: m.message_id.clone(), sequence_number: m.sequence_number.clone() };
                out.push((result, Some((m, row, to.into_iter().zip(ids).collect::<Vec<_>>()))));
            }
            Ok(out)
        })?;
        let mut results = Vec::with_capacity(committed.len());
        for ((result, queued), (size, filtered_out)) in committed.into_iter().zip(counts) {
            if let Some((m, row, deliveries)) = queued {
                self.count(&topic.arn, TopicMetric::NumberOfMessagesPublished, 1.0);
                self.count(&topic.arn, TopicMetric::PublishSize, size as f64);
                if filtered_out > 0 {
                    self.count(&topic.arn, TopicMetric::NumberOfNotificationsFilteredOut, filtered_out as f64);
                }
                if !deliveries.is_empty() {
                    self.dispatcher.enqueue(self, Arc::new(m), row, &deliveries);
                }
            }
            results.push(result);
        }
        Ok(results)
    }

    /// Publish: answers once the message and its deliveries are on disk.
    pub async fn publish(&self, topic_arn: &str, input: PublishInput) -> Result<PublishResult, TopicError> {
        let name = self.topic_name(topic_arn, "TopicArn")?;
        let topic = self.topic(&name)?;
        let size = message::message_size(&input.message, &input.attributes);
        let m = self.prepare(&topic, input)?;
        let mut out = self.commit(&topic, vec![(m, size)]).await?;
        out.pop().ok_or_else(|| TopicError::Internal("publish recorded nothing".into()))
    }

    /// PublishBatch: up to 10 entries with distinct ids; entries that fail validation are
    /// reported, the rest recorded together.
    pub async fn publish_batch(&self, topic_arn: &str, entries: Vec<(String, PublishInput)>) -> Result<BatchOutcome, TopicError> {
        if entries.is_empty() {
            return Err(TopicError::EmptyBatchRequest("The batch request doesn't contain any entries.".into()));
        }
        if entries.len() > 10 {
            return Err(TopicError::TooManyEntriesInBatchRequest("The batch request contains more entries than permissible.".into()));
        }
        let mut seen = HashSet::new();
        for (id, _) in &entries {
            if id.len() > 80 {
                return Err(TopicError::InvalidBatchEntryId(format!("The Id of a batch entry in the batch request is too long: {id}")));
            }
            if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err(TopicError::InvalidBatchEntryId(format!(
                    "The Id of a batch entry in the batch request contains an impermissible character: {id}"
                )));
            }
            if !seen.insert(id.clone()) {
                return Err(TopicError::BatchEntryIdsNotDistinct("Two or more batch entries in the request have the same Id.".into()));
            }
        }
        let name = self.topic_name(topic_arn, "TopicArn")?;
        let topic = self.topic(&name)?;
        let total: usize = entries.iter().map(|(_, e)| message::message_size(&e.message, &e.attributes)).sum();
        if total > MAX_MESSAGE_BYTES {
            return Err(TopicError::BatchRequestTooLong("The length of all the messages put together is more than the limit.".into()));
        }
        let mut outcome = BatchOutcome::default();
        let mut ok = Vec::new();
        for (id, input) in entries {
            let size = message::message_size(&input.message, &input.attributes);
            match self.prepare(&topic, input) {
                Ok(m) => ok.push((id, (m, size))),
                Err(e) => {
                    outcome.failed.push(BatchFailure { id, code: e.code().into(), message: e.to_string(), sender_fault: e.sender_fault() })
                }
            }
        }
        let (ids, messages): (Vec<String>, Vec<(StoredMessage, usize)>) = ok.into_iter().unzip();
        if !messages.is_empty() {
            let results = self.commit(&topic, messages).await?;
            outcome.successful = ids.into_iter().zip(results).collect();
        }
        Ok(outcome)
    }

    /// Publishes `body` with string attributes to the topic `arn` (dead letters and
    /// destination records of asynchronous invocations). FIFO topics get a fresh group and
    /// deduplication id per message.
    pub async fn publish_to_arn(&self, arn: &str, body: &str, attributes: Vec<(String, String)>) -> Result<PublishResult, TopicError> {
        let name = self.topic_name(arn, "TopicArn")?;
        let fifo = self.topic(&name)?.row.fifo;
        let id = uuid::Uuid::new_v4().to_string();
        let input = PublishInput {
            message: body.to_string(),
            attributes: attributes.into_iter().map(|(k, v)| (k, message::MessageAttribute::string("String", &v))).collect(),
            group_id: fifo.then(|| "nimbus".to_string()),
            dedup_id: fifo.then_some(id),
            ..Default::default()
        };
        self.publish(arn, input).await
    }
}

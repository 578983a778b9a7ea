//! [`EventsService`]: EventBridge's actions over durable buses, rules and targets. Rules live
//! in memory (compiled patterns, schedules and input transforms) behind the store: every
//! change is committed first (as typed [`Changes`]) and applied to memory after, by one writer
//! at a time, so PutEvents matches against memory and never touches the database. Over a
//! store several nodes share, another node's change (or a cut in the change feed) makes the
//! service read everything again and replace its memory, as the writer: a reload never races
//! a change of this node's, so it cannot undo one. Matching events go to Lambda targets
//! through an [`EventSink`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, RwLock};

use base64::Engine;
use bytes::Bytes;
use nimbus_rules::{Dialect, Pattern};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Notify;

use crate::error::EventsError;
use crate::metrics::{rule_dimensions, EventsMetric, EventsMetrics};
use crate::model::{BusInfo, FailedEntry, Page, PutEventsEntry, PutEventsResult, PutRule, RuleInfo, TargetSpec, DEFAULT_BUS};
use crate::schedule::Schedule;
use crate::store::{Changes, EventsStore, Fire, Loaded};
use crate::transform::{DeliveryContext, InputTransformer, JsonPath, Transform};

/// Milliseconds since the Unix epoch; swappable so tests can move time.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
}

/// The real clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
    }
}

/// Where matched events go. The binary implements it with Lambda's asynchronous invocation,
/// so this crate does not depend on the invoker.
#[async_trait::async_trait]
pub trait EventSink: Send + Sync {
    /// Durably queues `payload` for an asynchronous invocation of the function `function_arn`
    /// (a Lambda ARN, possibly qualified) on behalf of the rule `rule_arn` (which the
    /// function's resource policy must allow).
    async fn invoke_function(&self, function_arn: &str, rule_arn: &str, payload: Bytes) -> Result<(), String>;
}

/// Targets a rule may have (AWS's quota).
pub const MAX_TARGETS_PER_RULE: usize = 5;
/// PutEvents' limit on the entries' total size.
const MAX_PUT_EVENTS_BYTES: usize = 256 * 1024;

/// A rule in memory: its record, compiled.
pub(crate) struct Rule {
    pub(crate) info: RuleInfo,
    pub(crate) schedule: Option<Schedule>,
    pub(crate) pattern: Option<Pattern>,
    pub(crate) targets: Vec<Target>,
    pub(crate) next_fire_ms: Option<i64>,
}

pub(crate) struct Target {
    pub(crate) spec: TargetSpec,
    pub(crate) transform: Transform,
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) buses: BTreeMap<String, BusInfo>,
    /// By (bus, name).
    pub(crate) rules: BTreeMap<(String, String), Rule>,
}

/// A change to memory, made once its transaction has committed.
pub(crate) type Apply = Box<dyn FnOnce(&mut State) + Send>;

pub(crate) struct Shared {
    store: EventsStore,
    /// Held from reading the state a change is made from until that change is in memory:
    /// one writer at a time, so each change sees those before it.
    writer: tokio::sync::Mutex<()>,
    pub(crate) state: RwLock<State>,
}

impl Shared {
    pub(crate) fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// The event service. Share it with `Arc`.
pub struct EventsService {
    pub(crate) region: String,
    pub(crate) account: String,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) sink: Arc<dyn EventSink>,
    pub(crate) shared: Arc<Shared>,
    /// Wakes the scheduler when rules change.
    pub(crate) schedule_changed: Notify,
    /// Where `AWS/Events` datapoints go, once the binary says (`record_into`).
    metrics: std::sync::OnceLock<Arc<dyn EventsMetrics>>,
}

/// An event ready to be matched and delivered.
pub(crate) struct Event {
    pub(crate) value: Value,
    /// `value` serialized with AWS's key order: what targets receive.
    pub(crate) text: String,
}

#[derive(Serialize)]
struct Envelope<'a> {
    version: &'a str,
    id: &'a str,
    #[serde(rename = "detail-type")]
    detail_type: &'a str,
    source: &'a str,
    account: &'a str,
    time: &'a str,
    region: &'a str,
    resources: &'a [String],
    detail: &'a Value,
}

/// AWS's event time format (UTC, whole seconds).
pub fn format_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn validation(msg: impl Into<String>) -> EventsError {
    EventsError::Validation(msg.into())
}

const NAME_PATTERN: &str = "Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+";

/// Rule and target ids: `[\.\-_A-Za-z0-9]+`, 1–64 characters.
fn check_name(value: &str, field: &str) -> Result<(), EventsError> {
    if value.is_empty() {
        return Err(EventsError::constraint(value, field, "Member must have length greater than or equal to 1"));
    }
    if value.len() > 64 {
        return Err(EventsError::constraint(value, field, "Member must have length less than or equal to 64"));
    }
    if !value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')) {
        return Err(EventsError::constraint(value, field, NAME_PATTERN));
    }
    Ok(())
}

fn check_len(value: Option<&str>, field: &str, min: usize, max: usize) -> Result<(), EventsError> {
    match value {
        Some(v) if v.chars().count() > max => {
            Err(EventsError::constraint(v, field, &format!("Member must have length less than or equal to {max}")))
        }
        Some(v) if v.chars().count() < min => {
            Err(EventsError::constraint(v, field, &format!("Member must have length greater than or equal to {min}")))
        }
        _ => Ok(()),
    }
}

fn check_limit(limit: Option<i64>) -> Result<usize, EventsError> {
    match limit {
        None => Ok(100),
        Some(n) if (1..=100).contains(&n) => Ok(n as usize),
        Some(n) if n < 1 => Err(EventsError::constraint(&n.to_string(), "limit", "Member must have value greater than or equal to 1")),
        Some(n) => Err(EventsError::constraint(&n.to_string(), "limit", "Member must have value less than or equal to 100")),
    }
}

fn encode_token(key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}

fn decode_token(token: Option<&str>) -> Result<Option<String>, EventsError> {
    let Some(t) = token else { return Ok(None) };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .map(Some)
        .ok_or_else(|| validation("The nextToken provided is invalid."))
}

/// Items after the token's key, `limit` of them, and the token for the rest.
fn paginate<T>(items: Vec<(String, T)>, token: Option<&str>, limit: usize) -> Result<Page<T>, EventsError> {
    let after = decode_token(token)?;
    let mut rest = items.into_iter().filter(|(k, _)| after.as_ref().is_none_or(|a| k.as_str() > a.as_str())).peekable();
    let mut page = Vec::new();
    let mut last = None;
    while page.len() < limit {
        match rest.next() {
            Some((k, v)) => {
                last = Some(k);
                page.push(v);
            }
            None => break,
        }
    }
    let next_token = if rest.peek().is_some() { last.map(|k| encode_token(&k)) } else { None };
    Ok(Page { items: page, next_token })
}

/// How a target's input is made, checked as PutTargets does.
fn compile_target(t: &TargetSpec) -> Result<Transform, EventsError> {
    check_name(&t.id, "targets.member.id")?;
    check_len(Some(&t.arn), "targets.member.arn", 1, 1600)?;
    if !t.arn.starts_with("arn:") || t.arn.split(':').count() < 6 {
        return Err(validation(format!("Parameter {} is not valid. Reason: Provided Arn is not in correct format.", t.arn)));
    }
    let given = [t.input.is_some(), t.input_path.is_some(), t.input_transformer.is_some()].iter().filter(|b| **b).count();
    if given > 1 {
        return Err(validation(format!(
            "Target {} has more than one of Input, InputPath and InputTransformer: they are mutually exclusive.",
            t.id
        )));
    }
    if let Some(input) = &t.input {
        check_len(Some(input), "targets.member.input", 0, 8192)?;
        if serde_json::from_str::<Value>(input).is_err() {
            return Err(validation(format!("Target {} Input is not valid JSON text.", t.id)));
        }
        return Ok(Transform::Constant(input.clone()));
    }
    if let Some(path) = &t.input_path {
        check_len(Some(path), "targets.member.inputPath", 0, 256)?;
        let p = JsonPath::parse(path).ok_or_else(|| validation(format!("Target {} InputPath is not a valid JSONPath: {path}", t.id)))?;
        return Ok(Transform::Path(p));
    }
    if let Some(tr) = &t.input_transformer {
        let paths: Vec<(String, String)> = tr.input_paths_map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let it = InputTransformer::new(&paths, &tr.input_template)
            .map_err(|why| validation(format!("Target {} InputTransformer is not valid: {why}", t.id)))?;
        return Ok(Transform::Template(it));
    }
    Ok(Transform::Event)
}

impl Rule {
    fn compile(info: RuleInfo, targets: Vec<TargetSpec>, next_fire_ms: Option<i64>) -> Rule {
        let schedule = info.schedule_expression.as_deref().and_then(|s| match Schedule::parse(s) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(rule = info.name, "stored schedule no longer parses: {}", e.reason);
                None
            }
        });
        let pattern = info.event_pattern.as_deref().and_then(|p| match Pattern::parse(Dialect::EventPattern, p) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::warn!(rule = info.name, "stored event pattern no longer parses: {e}");
                None
            }
        });
        let targets = targets
            .into_iter()
            .filter_map(|spec| match compile_target(&spec) {
                Ok(transform) => Some(Target { spec, transform }),
                Err(e) => {
                    tracing::warn!(rule = info.name, target = spec.id, "stored target no longer valid: {e}");
                    None
                }
            })
            .collect();
        Rule { info, schedule, pattern, targets, next_fire_ms }
    }
}

impl State {
    /// The state `loaded` describes, compiled.
    fn from_loaded(loaded: Loaded) -> State {
        let mut state = State::default();
        for bus in loaded.buses {
            state.buses.insert(bus.name.clone(), bus);
        }
        let mut targets: BTreeMap<(String, String), Vec<TargetSpec>> = BTreeMap::new();
        for (bus, rule, spec) in loaded.targets {
            targets.entry((bus, rule)).or_default().push(spec);
        }
        for (info, next) in loaded.rules {
            let key = (info.event_bus.clone(), info.name.clone());
            let t = targets.remove(&key).unwrap_or_default();
            state.rules.insert(key, Rule::compile(info, t, next));
        }
        state
    }
}

impl EventsService {
    /// Opens (creating if needed) the database at `path` (`<data>/events.db`). The scheduler
    /// is not started: run [`EventsService::run_scheduler`].
    pub async fn open(path: &Path, region: &str, account: &str, sink: Arc<dyn EventSink>) -> Result<Arc<EventsService>, EventsError> {
        EventsService::open_with_clock(path, region, account, sink, Arc::new(SystemClock)).await
    }

    pub async fn open_with_clock(
        path: &Path,
        region: &str,
        account: &str,
        sink: Arc<dyn EventSink>,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<EventsService>, EventsError> {
        EventsService::with_store(EventsStore::open(path)?, region, account, sink, clock).await
    }

    /// Opens `account`'s buses, rules and targets in the PostgreSQL database at `url`, which
    /// every node shares, loads them, and follows the other nodes' changes from then on:
    /// each one (or a cut in the change feed) reloads the whole state. Every node runs the
    /// scheduler ([`EventsService::run_scheduler`]); each scheduled time of a rule is
    /// delivered by the one node that claims it first.
    pub async fn open_shared(url: &str, region: &str, account: &str, sink: Arc<dyn EventSink>) -> Result<Arc<EventsService>, EventsError> {
        EventsService::open_shared_with_clock(url, region, account, sink, Arc::new(SystemClock)).await
    }

    pub async fn open_shared_with_clock(
        url: &str,
        region: &str,
        account: &str,
        sink: Arc<dyn EventSink>,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<EventsService>, EventsError> {
        // This node's connections' name, which the change feed's announcements quote.
        let node = format!("nimbus-events-{}", uuid::Uuid::new_v4().simple());
        let store = EventsStore::open_shared(url, account, &node).await?;
        EventsService::with_store(store, region, account, sink, clock).await
    }

    async fn with_store(
        store: EventsStore,
        region: &str,
        account: &str,
        sink: Arc<dyn EventSink>,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<EventsService>, EventsError> {
        let mut state = State::from_loaded(store.load().await?);
        if !state.buses.contains_key(DEFAULT_BUS) {
            let now = clock.now_ms();
            let bus = BusInfo {
                name: DEFAULT_BUS.into(),
                arn: format!("arn:aws:events:{region}:{account}:event-bus/{DEFAULT_BUS}"),
                description: None,
                created_ms: now,
                modified_ms: now,
            };
            let mut changes = Changes::default();
            changes.put_bus(&bus);
            store.commit(changes).await?;
            state.buses.insert(bus.name.clone(), bus);
        }
        let svc = Arc::new(EventsService {
            region: region.to_string(),
            account: account.to_string(),
            clock,
            sink,
            shared: Arc::new(Shared { store, writer: tokio::sync::Mutex::new(()), state: RwLock::new(state) }),
            metrics: std::sync::OnceLock::new(),
            schedule_changed: Notify::new(),
        });
        svc.follow();
        Ok(svc)
    }

    /// Over a shared store: reloads after every announcement of another node's change, one
    /// reload at a time; announcements heard during a reload make one more.
    fn follow(self: &Arc<Self>) {
        if !self.shared.store.is_shared() {
            return;
        }
        let what = format!("EventBridge of account {}", self.account);
        self.shared.store.watch(
            Arc::downgrade(self),
            nimbus_store::pg::reloader(Arc::downgrade(self), what, |svc: Arc<Self>| async move { svc.reload().await }),
        );
    }

    /// Reads everything from the store and replaces the state with it. As the writer: a
    /// change of this node's is either committed before the read (and in it) or made after
    /// the replacement, never lost in between. (A rule's next fire time may go back to
    /// where the database has it: a time already fired is then claimed in vain, not
    /// delivered again.)
    pub(crate) async fn reload(&self) -> Result<(), EventsError> {
        let writer = self.shared.writer.lock().await;
        let state = State::from_loaded(self.shared.store.load().await?);
        *self.shared.state.write().unwrap_or_else(|e| e.into_inner()) = state;
        drop(writer);
        self.schedule_changed.notify_one();
        Ok(())
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    /// Makes one change, one writer at a time: `f` reads the state and lists the stored
    /// changes; once they are committed (fsync'd), the change `f` returned is applied to
    /// memory. It runs as a task of its own, so a caller that goes away cannot leave a
    /// committed change out of memory.
    pub(crate) async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Changes, &State) -> Result<(T, Apply), EventsError> + Send + 'static,
    ) -> Result<T, EventsError> {
        Ok(self.write_claiming(f).await?.0)
    }

    /// [`EventsService::write`], whose changes may claim scheduled fires
    /// ([`Changes::claim_fire`]): also the fires this node won.
    pub(crate) async fn write_claiming<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Changes, &State) -> Result<(T, Apply), EventsError> + Send + 'static,
    ) -> Result<(T, Vec<Fire>), EventsError> {
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let _writer = shared.writer.lock().await;
            let mut changes = Changes::default();
            let (out, apply) = f(&mut changes, &shared.read())?;
            let won = shared.store.commit(changes).await?;
            apply(&mut shared.state.write().unwrap_or_else(|e| e.into_inner()));
            Ok((out, won))
        })
        .await
        .map_err(|e| EventsError::Internal(format!("the events write failed: {e}")))?
    }

    /// The bus a request names (a name or an ARN; the default bus when none).
    fn bus_name(&self, bus: Option<&str>) -> Result<String, EventsError> {
        let Some(b) = bus.filter(|b| !b.is_empty()) else { return Ok(DEFAULT_BUS.to_string()) };
        check_len(Some(b), "eventBusName", 1, 1600)?;
        let name = match b.strip_prefix("arn:") {
            Some(rest) => {
                let parts: Vec<&str> = rest.splitn(5, ':').collect();
                match parts.as_slice() {
                    [p, "events", region, account, res] if p.starts_with("aws") => {
                        let name = res.strip_prefix("event-bus/").ok_or_else(|| validation(format!("Parameter {b} is not valid.")))?;
                        if *region != self.region || *account != self.account {
                            return Err(EventsError::ResourceNotFound(format!("Event bus {name} does not exist.")));
                        }
                        name
                    }
                    _ => return Err(validation(format!("Parameter {b} is not valid."))),
                }
            }
            None => b,
        };
        if name.is_empty() || !name.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'/' | b'.' | b'-' | b'_')) {
            return Err(EventsError::constraint(b, "eventBusName", "Member must satisfy regular expression pattern: (arn:aws[\\w-]*:events:[a-z]+-[a-z]+-[\\w-]+:[0-9]{12}:event-bus\\/)?[/\\.\\-_A-Za-z0-9]+"));
        }
        Ok(name.to_string())
    }

    fn rule_arn(&self, bus: &str, name: &str) -> String {
        if bus == DEFAULT_BUS {
            format!("arn:aws:events:{}:{}:rule/{name}", self.region, self.account)
        } else {
            format!("arn:aws:events:{}:{}:rule/{bus}/{name}", self.region, self.account)
        }
    }

    fn bus_arn(&self, bus: &str) -> String {
        format!("arn:aws:events:{}:{}:event-bus/{bus}", self.region, self.account)
    }

    fn no_bus(bus: &str) -> EventsError {
        EventsError::ResourceNotFound(format!("Event bus {bus} does not exist."))
    }

    fn no_rule(bus: &str, name: &str) -> EventsError {
        EventsError::ResourceNotFound(format!("Rule {name} does not exist on EventBus {bus}."))
    }

    // ---- rules ------------------------------------------------------------------------

    /// Creates or replaces a rule; returns its ARN.
    pub async fn put_rule(&self, input: PutRule) -> Result<String, EventsError> {
        check_name(&input.name, "name")?;
        check_len(input.description.as_deref(), "description", 0, 512)?;
        check_len(input.schedule_expression.as_deref(), "scheduleExpression", 0, 256)?;
        check_len(input.event_pattern.as_deref(), "eventPattern", 0, 4096)?;
        check_len(input.role_arn.as_deref(), "roleArn", 1, 1600)?;
        let state = input.state.clone().unwrap_or_else(|| "ENABLED".into());
        if !matches!(state.as_str(), "ENABLED" | "DISABLED" | "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS") {
            return Err(EventsError::constraint(
                &state,
                "state",
                "Member must satisfy enum value set: [ENABLED, DISABLED, ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS]",
            ));
        }
        let bus = self.bus_name(input.event_bus.as_deref())?;
        let schedule_expression = input.schedule_expression.filter(|s| !s.is_empty());
        let event_pattern = input.event_pattern.filter(|s| !s.is_empty());
        if schedule_expression.is_none() && event_pattern.is_none() {
            return Err(validation("Parameter(s) EventPattern or ScheduleExpression must be specified."));
        }
        let schedule = match &schedule_expression {
            Some(s) => Some(Schedule::parse(s).map_err(|e| validation(e.to_string()))?),
            None => None,
        };
        if schedule.is_some() && bus != DEFAULT_BUS {
            return Err(validation("ScheduleExpression is supported only on the default event bus."));
        }
        let pattern = match &event_pattern {
            Some(p) => Some(Pattern::parse(Dialect::EventPattern, p)?),
            None => None,
        };
        let info = RuleInfo {
            arn: self.rule_arn(&bus, &input.name),
            name: input.name,
            event_bus: bus,
            schedule_expression,
            event_pattern,
            state,
            description: input.description,
            role_arn: input.role_arn,
            created_by: self.account.clone(),
            tags: input.tags,
        };
        let now = self.clock.now_ms();
        let arn = info.arn.clone();
        self.write(move |changes, state| {
            if !state.buses.contains_key(&info.event_bus) {
                return Err(Self::no_bus(&info.event_bus));
            }
            let key = (info.event_bus.clone(), info.name.clone());
            let existing = state.rules.get(&key);
            // An unchanged schedule keeps its place: editing a description does not restart a rate.
            let next_fire_ms = match (&schedule, existing) {
                (Some(_), Some(old))
                    if info.enabled()
                        && old.info.enabled()
                        && old.info.schedule_expression == info.schedule_expression
                        && old.next_fire_ms.is_some() =>
                {
                    old.next_fire_ms
                }
                (Some(s), _) if info.enabled() => s.first_fire(now),
                _ => None,
            };
            let mut info = info;
            if let Some(old) = existing {
                info.created_by = old.info.created_by.clone();
                if info.tags.is_empty() {
                    info.tags = old.info.tags.clone();
                }
            }
            changes.put_rule(&info, next_fire_ms);
            let apply: Apply = Box::new(move |st: &mut State| match st.rules.get_mut(&key) {
                Some(rule) => {
                    rule.info = info;
                    rule.schedule = schedule;
                    rule.pattern = pattern;
                    rule.next_fire_ms = next_fire_ms;
                }
                None => {
                    st.rules.insert(key, Rule { info, schedule, pattern, targets: Vec::new(), next_fire_ms });
                }
            });
            Ok(((), apply))
        })
        .await?;
        self.schedule_changed.notify_one();
        Ok(arn)
    }

    pub async fn describe_rule(&self, name: &str, bus: Option<&str>) -> Result<RuleInfo, EventsError> {
        check_name(name, "name")?;
        let bus = self.bus_name(bus)?;
        let state = self.shared.read();
        if !state.buses.contains_key(&bus) {
            return Err(Self::no_bus(&bus));
        }
        state.rules.get(&(bus.clone(), name.to_string())).map(|r| r.info.clone()).ok_or_else(|| Self::no_rule(&bus, name))
    }

    pub async fn list_rules(
        &self,
        prefix: Option<&str>,
        bus: Option<&str>,
        token: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Page<RuleInfo>, EventsError> {
        let limit = check_limit(limit)?;
        let bus = self.bus_name(bus)?;
        let state = self.shared.read();
        if !state.buses.contains_key(&bus) {
            return Err(Self::no_bus(&bus));
        }
        let rules: Vec<(String, RuleInfo)> = state
            .rules
            .range((bus.clone(), String::new())..)
            .take_while(|((b, _), _)| *b == bus)
            .filter(|((_, n), _)| prefix.is_none_or(|p| n.starts_with(p)))
            .map(|((_, n), r)| (n.clone(), r.info.clone()))
            .collect();
        paginate(rules, token, limit)
    }

    pub async fn enable_rule(&self, name: &str, bus: Option<&str>) -> Result<(), EventsError> {
        self.set_state(name, bus, "ENABLED").await
    }

    pub async fn disable_rule(&self, name: &str, bus: Option<&str>) -> Result<(), EventsError> {
        self.set_state(name, bus, "DISABLED").await
    }

    async fn set_state(&self, name: &str, bus: Option<&str>, new_state: &'static str) -> Result<(), EventsError> {
        check_name(name, "name")?;
        let bus = self.bus_name(bus)?;
        let key = (bus, name.to_string());
        let now = self.clock.now_ms();
        self.write(move |changes, state| {
            let rule = state.rules.get(&key).ok_or_else(|| Self::no_rule(&key.0, &key.1))?;
            let mut info = rule.info.clone();
            let was_enabled = info.enabled();
            info.state = new_state.to_string();
            // Enabling starts the schedule afresh; disabling stops it.
            let next_fire_ms = match &rule.schedule {
                Some(_) if was_enabled && info.enabled() => rule.next_fire_ms,
                Some(s) if info.enabled() => s.first_fire(now),
                _ => None,
            };
            changes.put_rule(&info, next_fire_ms);
            let apply: Apply = Box::new(move |st: &mut State| {
                if let Some(r) = st.rules.get_mut(&key) {
                    r.info = info;
                    r.next_fire_ms = next_fire_ms;
                }
            });
            Ok(((), apply))
        })
        .await?;
        self.schedule_changed.notify_one();
        Ok(())
    }

    /// Deletes a rule without targets (deleting one that does not exist succeeds, as in AWS).
    pub async fn delete_rule(&self, name: &str, bus: Option<&str>) -> Result<(), EventsError> {
        check_name(name, "name")?;
        let bus = self.bus_name(bus)?;
        let key = (bus, name.to_string());
        self.write(move |changes, state| {
            if !state.buses.contains_key(&key.0) {
                return Err(Self::no_bus(&key.0));
            }
            let Some(rule) = state.rules.get(&key) else { return Ok(((), Box::new(|_: &mut State| {}) as Apply)) };
            if !rule.targets.is_empty() {
                return Err(validation("Rule can't be deleted since it has targets."));
            }
            changes.delete_rule(&key.0, &key.1);
            let apply: Apply = Box::new(move |st: &mut State| {
                st.rules.remove(&key);
            });
            Ok(((), apply))
        })
        .await?;
        self.schedule_changed.notify_one();
        Ok(())
    }

    // ---- targets ----------------------------------------------------------------------

    /// Adds or replaces targets (by id). A rule has at most five.
    pub async fn put_targets(&self, rule: &str, bus: Option<&str>, targets: Vec<TargetSpec>) -> Result<Vec<FailedEntry>, EventsError> {
        check_name(rule, "rule")?;
        let bus = self.bus_name(bus)?;
        if targets.is_empty() {
            return Err(EventsError::constraint("[]", "targets", "Member must have length greater than or equal to 1"));
        }
        if targets.len() > 100 {
            return Err(EventsError::constraint("[...]", "targets", "Member must have length less than or equal to 100"));
        }
        let mut compiled = Vec::with_capacity(targets.len());
        for t in targets {
            let transform = compile_target(&t)?;
            compiled.push(Target { spec: t, transform });
        }
        let key = (bus, rule.to_string());
        self.write(move |changes, state| {
            let r = state.rules.get(&key).ok_or_else(|| Self::no_rule(&key.0, &key.1))?;
            let ids: BTreeSet<&str> =
                r.targets.iter().map(|t| t.spec.id.as_str()).chain(compiled.iter().map(|t| t.spec.id.as_str())).collect();
            if ids.len() > MAX_TARGETS_PER_RULE {
                return Err(EventsError::LimitExceeded("The requested resource exceeds the maximum number allowed.".into()));
            }
            // The rule's targets in order: replaced ones keep their place, new ones go last.
            let mut order: Vec<&TargetSpec> = r.targets.iter().map(|t| &t.spec).collect();
            for t in &compiled {
                match order.iter().position(|old| old.id == t.spec.id) {
                    Some(i) => order[i] = &t.spec,
                    None => order.push(&t.spec),
                }
            }
            changes.replace_targets(&key.0, &key.1, &order);
            let apply: Apply = Box::new(move |st: &mut State| {
                if let Some(r) = st.rules.get_mut(&key) {
                    for t in compiled {
                        match r.targets.iter_mut().find(|old| old.spec.id == t.spec.id) {
                            Some(old) => *old = t,
                            None => r.targets.push(t),
                        }
                    }
                }
            });
            Ok((Vec::new(), apply))
        })
        .await
    }

    /// Removes targets by id; ids the rule does not have are ignored.
    pub async fn remove_targets(&self, rule: &str, bus: Option<&str>, ids: Vec<String>) -> Result<Vec<FailedEntry>, EventsError> {
        check_name(rule, "rule")?;
        let bus = self.bus_name(bus)?;
        if ids.is_empty() {
            return Err(EventsError::constraint("[]", "ids", "Member must have length greater than or equal to 1"));
        }
        for id in &ids {
            check_name(id, "ids.member")?;
        }
        let key = (bus, rule.to_string());
        self.write(move |changes, state| {
            if !state.rules.contains_key(&key) {
                return Err(Self::no_rule(&key.0, &key.1));
            }
            for id in &ids {
                changes.delete_target(&key.0, &key.1, id);
            }
            let apply: Apply = Box::new(move |st: &mut State| {
                if let Some(r) = st.rules.get_mut(&key) {
                    r.targets.retain(|t| !ids.contains(&t.spec.id));
                }
            });
            Ok((Vec::new(), apply))
        })
        .await
    }

    pub async fn list_targets_by_rule(
        &self,
        rule: &str,
        bus: Option<&str>,
        token: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Page<TargetSpec>, EventsError> {
        check_name(rule, "rule")?;
        let limit = check_limit(limit)?;
        let bus = self.bus_name(bus)?;
        let state = self.shared.read();
        let r = state.rules.get(&(bus.clone(), rule.to_string())).ok_or_else(|| Self::no_rule(&bus, rule))?;
        // Keys keep the rule's order of targets.
        let items = r.targets.iter().enumerate().map(|(i, t)| (format!("{i:08}"), t.spec.clone())).collect();
        paginate(items, token, limit)
    }

    pub async fn list_rule_names_by_target(
        &self,
        target_arn: &str,
        bus: Option<&str>,
        token: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Page<String>, EventsError> {
        check_len(Some(target_arn), "targetArn", 1, 1600)?;
        let limit = check_limit(limit)?;
        let bus = self.bus_name(bus)?;
        let state = self.shared.read();
        if !state.buses.contains_key(&bus) {
            return Err(Self::no_bus(&bus));
        }
        let names: Vec<(String, String)> = state
            .rules
            .range((bus.clone(), String::new())..)
            .take_while(|((b, _), _)| *b == bus)
            .filter(|(_, r)| r.targets.iter().any(|t| t.spec.arn == target_arn))
            .map(|((_, n), _)| (n.clone(), n.clone()))
            .collect();
        paginate(names, token, limit)
    }

    // ---- events -----------------------------------------------------------------------

    /// Accepts up to 10 events; each matching enabled rule's Lambda targets get it
    /// (queued for asynchronous invocation before this returns).
    pub async fn put_events(&self, entries: Vec<PutEventsEntry>) -> Result<Vec<PutEventsResult>, EventsError> {
        if entries.is_empty() {
            return Err(EventsError::constraint("[]", "entries", "Member must have length greater than or equal to 1"));
        }
        if entries.len() > 10 {
            return Err(EventsError::constraint("[...]", "entries", "Member must have length less than or equal to 10"));
        }
        let size: usize = entries
            .iter()
            .map(|e| {
                e.time_ms.map_or(0, |_| 14)
                    + e.source.as_ref().map_or(0, String::len)
                    + e.detail_type.as_ref().map_or(0, String::len)
                    + e.detail.as_ref().map_or(0, String::len)
                    + e.resources.iter().map(String::len).sum::<usize>()
            })
            .sum();
        if size > MAX_PUT_EVENTS_BYTES {
            return Err(validation("Total size of the entries in the request is over the limit."));
        }
        let now = self.clock.now_ms();
        let ingestion = format_time(now);
        let mut results = Vec::with_capacity(entries.len());
        let mut deliveries = Vec::new();
        for entry in entries {
            match self.accept(entry, now) {
                Ok((bus, event_id, event)) => {
                    let (matched, to) = self.matching_deliveries(&bus, &event, &ingestion);
                    self.matched(&bus, &matched);
                    deliveries.extend(to);
                    results.push(PutEventsResult::Accepted { event_id });
                }
                Err((code, message)) => results.push(PutEventsResult::Failed { error_code: code.into(), error_message: message }),
            }
        }
        self.deliver(deliveries).await;
        Ok(results)
    }

    /// An event an AWS service of this account sends to its default bus (S3's `aws.s3`
    /// "Object Created", …): sources under `aws.` are the services' own, so no PutEvents
    /// caller may use them. Matching rules' targets get it before this returns; the event's id.
    pub async fn put_service_event(
        &self,
        source: &str,
        detail_type: &str,
        resources: &[String],
        detail: &Value,
        time_ms: i64,
    ) -> Result<String, EventsError> {
        let bus = self.bus_name(None)?;
        let id = uuid::Uuid::new_v4().to_string();
        let event = self.make_event(&id, detail_type, source, &format_time(time_ms), resources, detail);
        let ingestion = format_time(self.clock.now_ms());
        let (matched, deliveries) = self.matching_deliveries(&bus, &event, &ingestion);
        self.matched(&bus, &matched);
        self.deliver(deliveries).await;
        Ok(id)
    }

    /// One PutEvents entry checked and made into an event (or AWS's entry error).
    fn accept(&self, e: PutEventsEntry, now: i64) -> Result<(String, String, Event), (&'static str, String)> {
        let required = |v: &Option<String>, name: &str| match v.as_deref() {
            Some(s) if !s.is_empty() => Ok(s.to_string()),
            _ => Err(("InvalidArgument", format!("Parameter {name} is not valid. Reason: {name} is a required argument."))),
        };
        let source = required(&e.source, "Source")?;
        let detail_type = required(&e.detail_type, "DetailType")?;
        let detail_text = required(&e.detail, "Detail")?;
        let detail: Value = match serde_json::from_str(&detail_text) {
            Ok(v @ Value::Object(_)) => v,
            _ => return Err(("MalformedDetail", "Detail is malformed.".into())),
        };
        if source.starts_with("aws.") {
            return Err(("NotAuthorizedForSourceException", "Not authorized for the source.".into()));
        }
        let bus = self.bus_name(e.event_bus.as_deref()).map_err(|err| ("InvalidArgument", err.to_string()))?;
        if !self.shared.read().buses.contains_key(&bus) {
            return Err(("ResourceNotFoundException", format!("Event bus {bus} does not exist.")));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let time = format_time(e.time_ms.unwrap_or(now));
        let event = self.make_event(&id, &detail_type, &source, &time, &e.resources, &detail);
        Ok((bus, id, event))
    }

    pub(crate) fn make_event(&self, id: &str, detail_type: &str, source: &str, time: &str, resources: &[String], detail: &Value) -> Event {
        let envelope =
            Envelope { version: "0", id, detail_type, source, account: &self.account, time, region: &self.region, resources, detail };
        let text = serde_json::to_string(&envelope).expect("events serialize");
        let value = serde_json::to_value(&envelope).expect("events serialize");
        Event { value, text }
    }

    /// The enabled rules on `bus` whose patterns match, and (function ARN, payload, rule
    /// name) for each of their Lambda targets.
    fn matching_deliveries(&self, bus: &str, event: &Event, ingestion: &str) -> (Vec<String>, Vec<Delivery>) {
        let state = self.shared.read();
        let (mut matched, mut out) = (Vec::new(), Vec::new());
        for ((_, name), rule) in state.rules.range((bus.to_string(), String::new())..).take_while(|((b, _), _)| b == bus) {
            let Some(p) = &rule.pattern else { continue };
            if rule.info.enabled() && p.matches(&event.value) {
                matched.push(name.clone());
                out.extend(deliveries_for(rule, event, ingestion));
            }
        }
        (matched, out)
    }

    /// Sends this service's `AWS/Events` datapoints to `metrics` from now on.
    pub fn record_into(&self, metrics: Arc<dyn EventsMetrics>) {
        let _ = self.metrics.set(metrics);
    }

    /// One event matched `rules` of `bus` (maybe none): MatchedEvents for the account and
    /// each rule, TriggeredRules for each rule.
    pub(crate) fn matched(&self, bus: &str, rules: &[String]) {
        let Some(m) = self.metrics.get() else { return };
        if rules.is_empty() {
            return;
        }
        let now = self.clock.now_ms();
        m.record(EventsMetric::MatchedEvents, &[], 1.0, now);
        for rule in rules {
            let dims = rule_dimensions(bus, rule);
            m.record(EventsMetric::MatchedEvents, &dims, 1.0, now);
            m.record(EventsMetric::TriggeredRules, &dims, 1.0, now);
        }
    }

    pub(crate) async fn deliver(&self, deliveries: Vec<Delivery>) {
        for d in deliveries {
            let result = self.sink.invoke_function(&d.function_arn, &d.rule_arn, Bytes::from(d.payload)).await;
            if let Some(m) = self.metrics.get() {
                let (now, dims) = (self.clock.now_ms(), rule_dimensions(&d.bus, &d.rule));
                m.record(EventsMetric::Invocations, &[], 1.0, now);
                m.record(EventsMetric::Invocations, &dims, 1.0, now);
                if result.is_err() {
                    m.record(EventsMetric::FailedInvocations, &dims, 1.0, now);
                }
            }
            if let Err(e) = result {
                tracing::warn!(rule = d.rule, target = d.target_id, "event not delivered to {}: {e}", d.function_arn);
            }
        }
    }

    /// TestEventPattern: whether `event` (a whole event) matches `pattern`.
    pub fn test_event_pattern(&self, pattern: &str, event: &str) -> Result<bool, EventsError> {
        check_len(Some(pattern), "eventPattern", 0, 4096)?;
        let p = Pattern::parse(Dialect::EventPattern, pattern)?;
        let e: Value = serde_json::from_str(event).map_err(|_| validation("Parameter Event is not valid."))?;
        // AWS requires these six; `resources` and `detail` may be absent (and must be an
        // array where given).
        let complete = e.as_object().is_some_and(|o| {
            ["id", "account", "source", "time", "region", "detail-type"].iter().all(|k| o.get(*k).is_some_and(Value::is_string))
                && o.get("resources").is_none_or(Value::is_array)
        });
        if !complete {
            return Err(validation("Parameter Event is not valid."));
        }
        Ok(p.matches(&e))
    }

    // ---- buses ------------------------------------------------------------------------

    pub async fn create_event_bus(
        &self,
        name: &str,
        description: Option<String>,
        event_source: Option<&str>,
    ) -> Result<String, EventsError> {
        check_len(Some(name), "name", 1, 256)?;
        if !name.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'/' | b'.' | b'-' | b'_')) {
            return Err(EventsError::constraint(name, "name", "Member must satisfy regular expression pattern: [/\\.\\-_A-Za-z0-9]+"));
        }
        check_len(description.as_deref(), "description", 0, 512)?;
        if event_source.is_some() || name.starts_with("aws.") {
            return Err(validation("Partner event buses are not supported."));
        }
        if name.contains('/') {
            return Err(validation(format!("Event bus name {name} is not valid: '/' is only allowed in partner event bus names.")));
        }
        let now = self.clock.now_ms();
        let bus = BusInfo { name: name.to_string(), arn: self.bus_arn(name), description, created_ms: now, modified_ms: now };
        let arn = bus.arn.clone();
        self.write(move |changes, state| {
            if state.buses.contains_key(&bus.name) {
                return Err(EventsError::ResourceAlreadyExists(format!("Event bus {} already exists.", bus.name)));
            }
            changes.put_bus(&bus);
            let apply: Apply = Box::new(move |st: &mut State| {
                st.buses.insert(bus.name.clone(), bus);
            });
            Ok(((), apply))
        })
        .await?;
        Ok(arn)
    }

    /// Deletes a custom bus with its rules and their targets (a bus that does not exist is
    /// already deleted).
    pub async fn delete_event_bus(&self, name: &str) -> Result<(), EventsError> {
        check_len(Some(name), "name", 1, 256)?;
        if name == DEFAULT_BUS {
            return Err(validation("Cannot delete event bus default."));
        }
        let name = name.to_string();
        self.write(move |changes, state| {
            if !state.buses.contains_key(&name) {
                return Ok(((), Box::new(|_: &mut State| {}) as Apply));
            }
            changes.delete_bus(&name);
            let apply: Apply = Box::new(move |st: &mut State| {
                st.buses.remove(&name);
                st.rules.retain(|(b, _), _| *b != name);
            });
            Ok(((), apply))
        })
        .await?;
        self.schedule_changed.notify_one();
        Ok(())
    }

    pub async fn describe_event_bus(&self, name: Option<&str>) -> Result<BusInfo, EventsError> {
        let bus = self.bus_name(name)?;
        self.shared.read().buses.get(&bus).cloned().ok_or_else(|| Self::no_bus(&bus))
    }

    pub async fn list_event_buses(
        &self,
        prefix: Option<&str>,
        token: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Page<BusInfo>, EventsError> {
        let limit = check_limit(limit)?;
        let buses: Vec<(String, BusInfo)> = self
            .shared
            .read()
            .buses
            .iter()
            .filter(|(n, _)| prefix.is_none_or(|p| n.starts_with(p)))
            .map(|(n, b)| (n.clone(), b.clone()))
            .collect();
        paginate(buses, token, limit)
    }
}

/// One payload for one function.
pub(crate) struct Delivery {
    pub(crate) function_arn: String,
    pub(crate) rule_arn: String,
    pub(crate) payload: String,
    pub(crate) rule: String,
    /// The rule's bus.
    pub(crate) bus: String,
    pub(crate) target_id: String,
}

pub(crate) fn deliveries_for(rule: &Rule, event: &Event, ingestion: &str) -> Vec<Delivery> {
    let ctx = DeliveryContext { rule_arn: &rule.info.arn, rule_name: &rule.info.name, ingestion_time: ingestion };
    rule.targets
        .iter()
        .filter(|t| {
            if !t.spec.is_lambda() {
                tracing::debug!(rule = rule.info.name, target = t.spec.id, "only Lambda targets are delivered to; {} is not", t.spec.arn);
            }
            t.spec.is_lambda()
        })
        .map(|t| Delivery {
            function_arn: t.spec.arn.clone(),
            rule_arn: rule.info.arn.clone(),
            payload: t.transform.apply(&event.value, &event.text, &ctx),
            rule: rule.info.name.clone(),
            bus: rule.info.event_bus.clone(),
            target_id: t.spec.id.clone(),
        })
        .collect()
}

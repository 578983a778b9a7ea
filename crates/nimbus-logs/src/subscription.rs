//! CloudWatch Logs subscription filters with a Lambda destination: which groups have filters
//! (looked up under a read lock for every line, so a group without one costs a map lookup),
//! and a batcher thread per store that gathers the matching events per (group, stream, filter)
//! for up to a second, 10,000 events or 1 MB, and hands each batch, gzipped and base64-encoded
//! in AWS's `{"awslogs": {"data": …}}` envelope, to the destination's deliverer.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::FilterPattern;

/// AWS's limit on the subscription filters of one log group.
pub const MAX_FILTERS: usize = 2;
/// How long events wait for others before their batch goes.
pub const BATCH_WAIT: Duration = Duration::from_secs(1);
/// The most events of one batch.
pub const BATCH_EVENTS: usize = 10_000;
/// The most bytes of one batch (messages plus 26 each, as PutLogEvents counts them).
pub const BATCH_BYTES: usize = 1_048_576;

/// One subscription filter, as kept in its group's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionFilter {
    pub filter_name: String,
    pub filter_pattern: String,
    pub destination_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    pub distribution: String,
    pub creation_time: i64,
}

/// Hands one batch to its destination: `(destination ARN, log group, payload)`. Called on the
/// batcher thread; it should only queue the invocation.
pub type Deliver = Arc<dyn Fn(&str, &str, Vec<u8>) + Send + Sync>;

struct Active {
    name: Arc<str>,
    destination: Arc<str>,
    pattern: FilterPattern,
}

/// One event that matched a filter, on its way to the batcher.
struct Matched {
    group: Arc<str>,
    stream: Arc<str>,
    filter: Arc<str>,
    destination: Arc<str>,
    timestamp: i64,
    message: String,
}

/// The filters of every group that has some, and where matching events go.
#[derive(Default)]
pub(crate) struct Subscriptions {
    by_group: crate::ByGroup<Active>,
    out: RwLock<Option<std::sync::mpsc::Sender<Matched>>>,
}

impl Subscriptions {
    /// The groups that have filters.
    pub(crate) fn groups(&self) -> Vec<String> {
        self.by_group.groups()
    }

    /// Sets (or, with none, forgets) a group's filters.
    pub(crate) fn set(&self, group: &str, filters: &[SubscriptionFilter]) {
        let active: Vec<Active> = filters
            .iter()
            .map(|f| Active {
                name: f.filter_name.as_str().into(),
                destination: f.destination_arn.as_str().into(),
                pattern: FilterPattern::parse(&f.filter_pattern).unwrap_or_else(|e| {
                    // Kept from before the pattern was checked: it sends nothing.
                    tracing::warn!("subscription filter {} of {group}: {e}", f.filter_name);
                    FilterPattern::nothing()
                }),
            })
            .collect();
        self.by_group.set(group, active);
    }

    /// Offers an event that reached `group`/`stream` to the group's filters.
    pub(crate) fn offer(&self, group: &Arc<str>, stream: &Arc<str>, timestamp: i64, message: &str) {
        let Some(filters) = self.by_group.get(group) else { return };
        let out = self.out.read().unwrap_or_else(|p| p.into_inner());
        let Some(out) = out.as_ref() else { return };
        for f in filters.iter().filter(|f| f.pattern.matches(message)) {
            let _ = out.send(Matched {
                group: group.clone(),
                stream: stream.clone(),
                filter: f.name.clone(),
                destination: f.destination.clone(),
                timestamp,
                message: message.to_string(),
            });
        }
    }

    /// Starts the batcher: from now on matching events reach `deliver`, `owner` naming the
    /// account in each batch.
    pub(crate) fn start(&self, owner: String, deliver: Deliver) -> std::io::Result<()> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new().name("nimbus-log-subscriptions".into()).spawn(move || batch_loop(rx, &owner, &deliver))?;
        *self.out.write().unwrap_or_else(|p| p.into_inner()) = Some(tx);
        Ok(())
    }
}

/// One event of a batch, as AWS delivers it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LogEvent {
    pub id: String,
    pub timestamp: i64,
    pub message: String,
}

/// The JSON a batch carries (before gzip and base64), in AWS's member order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DataMessage {
    pub message_type: String,
    pub owner: String,
    pub log_group: String,
    pub log_stream: String,
    pub subscription_filters: Vec<String>,
    pub log_events: Vec<LogEvent>,
}

struct Batch {
    destination: Arc<str>,
    events: Vec<LogEvent>,
    bytes: usize,
    started: Instant,
}

type Key = (Arc<str>, Arc<str>, Arc<str>);

fn batch_loop(rx: std::sync::mpsc::Receiver<Matched>, owner: &str, deliver: &Deliver) {
    let mut batches: HashMap<Key, Batch> = HashMap::new();
    loop {
        let wait = batches.values().map(|b| BATCH_WAIT.saturating_sub(b.started.elapsed())).min().unwrap_or(Duration::from_secs(3600));
        match rx.recv_timeout(wait) {
            Ok(m) => {
                let key = (m.group, m.stream, m.filter);
                let size = m.message.len() + 26;
                // An event that would overflow its batch sends the batch first.
                if batches.get(&key).is_some_and(|b| b.events.len() >= BATCH_EVENTS || b.bytes + size > BATCH_BYTES) {
                    let b = batches.remove(&key).expect("checked above");
                    send(owner, &key, b, deliver);
                }
                let b = batches.entry(key).or_insert_with(|| Batch {
                    destination: m.destination,
                    events: Vec::new(),
                    bytes: 0,
                    started: Instant::now(),
                });
                b.bytes += size;
                b.events.push(LogEvent { id: event_id(m.timestamp), timestamp: m.timestamp, message: m.message });
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                for (key, b) in batches.drain() {
                    send(owner, &key, b, deliver);
                }
                return;
            }
        }
        let due: Vec<Key> = batches
            .iter()
            .filter(|(_, b)| b.started.elapsed() >= BATCH_WAIT || b.events.len() >= BATCH_EVENTS)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            let b = batches.remove(&key).expect("listed above");
            send(owner, &key, b, deliver);
        }
    }
}

fn send(owner: &str, (group, stream, filter): &Key, b: Batch, deliver: &Deliver) {
    let message = DataMessage {
        message_type: "DATA_MESSAGE".into(),
        owner: owner.to_string(),
        log_group: group.to_string(),
        log_stream: stream.to_string(),
        subscription_filters: vec![filter.to_string()],
        log_events: b.events,
    };
    deliver(&b.destination, group, payload(&message));
}

/// `{"awslogs": {"data": "<base64 of gzip of the JSON>"}}`, as a Lambda destination gets it.
pub fn payload(message: &DataMessage) -> Vec<u8> {
    use base64::Engine;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&serde_json::to_vec(message).expect("a data message serializes")).expect("writing to memory");
    let data = base64::engine::general_purpose::STANDARD.encode(gz.finish().expect("writing to memory"));
    serde_json::to_vec(&serde_json::json!({ "awslogs": { "data": data } })).expect("serializes")
}

/// The JSON inside a payload (what a consumer decodes), if it is one.
pub fn decode_payload(payload: &[u8]) -> Option<DataMessage> {
    use base64::Engine;
    use std::io::Read;
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let gz = base64::engine::general_purpose::STANDARD.decode(v["awslogs"]["data"].as_str()?).ok()?;
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut json).ok()?;
    serde_json::from_slice(&json).ok()
}

/// An event's ID as AWS shapes it: a string of 56 digits, unique per event (its timestamp,
/// this process's start, and a counter).
fn event_id(timestamp: i64) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let start =
        *START.get_or_init(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0));
    let seq = SEQ.fetch_add(1, Ordering::Relaxed) % 10u64.pow(16);
    format!("{:020}{:020}{:016}", timestamp.max(0), start, seq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn filter(name: &str, pattern: &str) -> SubscriptionFilter {
        SubscriptionFilter {
            filter_name: name.into(),
            filter_pattern: pattern.into(),
            destination_arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{name}"),
            role_arn: None,
            distribution: "ByLogStream".into(),
            creation_time: 1,
        }
    }

    type Got = Arc<Mutex<Vec<(String, DataMessage)>>>;

    fn started(filters: &[SubscriptionFilter]) -> (Subscriptions, Got) {
        let subs = Subscriptions::default();
        subs.set("g", filters);
        let got: Got = Default::default();
        let sink = got.clone();
        subs.start(
            "123456789012".into(),
            Arc::new(move |dest, _group, payload| sink.lock().unwrap().push((dest.to_string(), decode_payload(&payload).unwrap()))),
        )
        .unwrap();
        (subs, got)
    }

    fn wait_for(got: &Got, n: usize) -> Vec<(String, DataMessage)> {
        for _ in 0..50 {
            if got.lock().unwrap().len() >= n {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut v = got.lock().unwrap().clone();
        v.sort_by(|a, b| (&a.1.log_stream, &a.1.subscription_filters).cmp(&(&b.1.log_stream, &b.1.subscription_filters)));
        v
    }

    #[test]
    fn batches_per_stream_and_filter_in_aws_shape() {
        let (subs, got) = started(&[filter("all", ""), filter("errors", "ERROR")]);
        let (g, s1, s2): (Arc<str>, Arc<str>, Arc<str>) = ("g".into(), "s1".into(), "s2".into());
        let other: Arc<str> = "other".into();
        subs.offer(&g, &s1, 1, "hello");
        subs.offer(&g, &s1, 2, "an ERROR");
        subs.offer(&g, &s2, 3, "ERROR two");
        subs.offer(&other, &s1, 4, "ERROR in a group with no filter");
        let got = wait_for(&got, 4);
        let summary: Vec<(&str, &str, &str, Vec<&str>)> = got
            .iter()
            .map(|(d, m)| {
                (
                    d.rsplit(':').next().unwrap(),
                    m.log_stream.as_str(),
                    m.subscription_filters[0].as_str(),
                    m.log_events.iter().map(|e| e.message.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("all", "s1", "all", vec!["hello", "an ERROR"]),
                ("errors", "s1", "errors", vec!["an ERROR"]),
                ("all", "s2", "all", vec!["ERROR two"]),
                ("errors", "s2", "errors", vec!["ERROR two"]),
            ]
        );
        let m = &got[0].1;
        assert_eq!((m.message_type.as_str(), m.owner.as_str(), m.log_group.as_str()), ("DATA_MESSAGE", "123456789012", "g"));
        for e in got.iter().flat_map(|(_, m)| &m.log_events) {
            assert_eq!(e.id.len(), 56);
            assert!(e.id.bytes().all(|b| b.is_ascii_digit()));
        }
        assert_eq!(got[0].1.log_events[0].timestamp, 1);
        assert_ne!(got[0].1.log_events[0].id, got[0].1.log_events[1].id);
    }

    #[test]
    fn batch_limits_split() {
        let (subs, got) = started(&[filter("all", "")]);
        let (g, s): (Arc<str>, Arc<str>) = ("g".into(), "s".into());
        for i in 0..BATCH_EVENTS + 5 {
            subs.offer(&g, &s, i as i64, "x");
        }
        let big = "y".repeat(600_000);
        let s2: Arc<str> = "t".into();
        subs.offer(&g, &s2, 1, &big);
        subs.offer(&g, &s2, 2, &big);
        let got = wait_for(&got, 4);
        let sizes: Vec<(&str, usize)> = got.iter().map(|(_, m)| (m.log_stream.as_str(), m.log_events.len())).collect();
        assert_eq!(sizes, vec![("s", BATCH_EVENTS), ("s", 5), ("t", 1), ("t", 1)]);
    }

    #[test]
    fn forgetting_filters_stops_delivery() {
        let (subs, got) = started(&[filter("all", "")]);
        subs.set("g", &[]);
        let (g, s): (Arc<str>, Arc<str>) = ("g".into(), "s".into());
        subs.offer(&g, &s, 1, "x");
        std::thread::sleep(BATCH_WAIT + Duration::from_millis(300));
        assert!(got.lock().unwrap().is_empty());
    }

    #[test]
    fn payload_is_aws_envelope() {
        let m = DataMessage {
            message_type: "DATA_MESSAGE".into(),
            owner: "1".into(),
            log_group: "g".into(),
            log_stream: "s".into(),
            subscription_filters: vec!["f".into()],
            log_events: vec![LogEvent { id: "0".repeat(56), timestamp: 5, message: "m".into() }],
        };
        let p = payload(&m);
        let v: serde_json::Value = serde_json::from_slice(&p).unwrap();
        assert_eq!(v.as_object().unwrap().keys().collect::<Vec<_>>(), vec!["awslogs"]);
        assert_eq!(decode_payload(&p), Some(m));
        // The inner JSON's member names, in AWS's order.
        use base64::Engine;
        use std::io::Read;
        let gz = base64::engine::general_purpose::STANDARD.decode(v["awslogs"]["data"].as_str().unwrap()).unwrap();
        let mut json = String::new();
        flate2::read::GzDecoder::new(&gz[..]).read_to_string(&mut json).unwrap();
        assert!(json.starts_with(
            r#"{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s","subscriptionFilters":["f"],"logEvents":[{"id":""#
        ));
    }
}

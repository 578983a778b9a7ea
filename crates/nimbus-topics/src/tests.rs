//! Fan-out end to end inside the crate: a recording [`Deliver`], a real HTTP endpoint, and
//! reopening the database to check that acknowledged publishes are delivered after a crash.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::*;

#[derive(Debug, Clone, PartialEq)]
enum Sent {
    Function(String, Value),
    Queue(String, QueueMessage),
}

/// Records deliveries; queues named in `failing` refuse them; `hang` never answers.
#[derive(Default)]
struct Recorder {
    sent: Mutex<Vec<Sent>>,
    failing: Vec<String>,
    hang: bool,
    tx: Mutex<Option<mpsc::UnboundedSender<()>>>,
}

impl Recorder {
    fn new() -> (Arc<Recorder>, mpsc::UnboundedReceiver<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Arc::new(Recorder { tx: Mutex::new(Some(tx)), ..Default::default() }), rx)
    }

    fn push(&self, s: Sent) {
        self.sent.lock().expect("lock").push(s);
        if let Some(tx) = &*self.tx.lock().expect("lock") {
            let _ = tx.send(());
        }
    }

    fn sent(&self) -> Vec<Sent> {
        self.sent.lock().expect("lock").clone()
    }
}

#[async_trait]
impl Deliver for Recorder {
    async fn invoke_function(&self, arn: &str, _topic_arn: &str, payload: String) -> Result<(), crate::Undelivered> {
        if self.hang {
            std::future::pending::<()>().await;
        }
        self.push(Sent::Function(arn.into(), serde_json::from_str(&payload).map_err(|e| e.to_string())?));
        Ok(())
    }
    async fn send_to_queue(&self, arn: &str, _topic: &str, m: QueueMessage) -> Result<(), crate::Undelivered> {
        if self.hang {
            std::future::pending::<()>().await;
        }
        if self.failing.iter().any(|f| f == arn) {
            return Err(crate::Undelivered::Transient("queue refused".into()));
        }
        self.push(Sent::Queue(arn.into(), m));
        Ok(())
    }
}

async fn wait_for(rx: &mut mpsc::UnboundedReceiver<()>, n: usize, rec: &Recorder) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while rec.sent().len() < n {
        if tokio::time::timeout_at(deadline, rx.recv()).await.is_err() {
            panic!("timed out waiting for {n} deliveries; have {:?}", rec.sent());
        }
    }
}

/// Where a test's service keeps its topics.
enum At {
    Dir(tempfile::TempDir),
    Postgres(String),
}

impl At {
    fn sqlite() -> At {
        At::Dir(tempfile::tempdir().expect("tempdir"))
    }

    async fn open(&self, config: TopicConfig, deliver: Arc<dyn Deliver>) -> Result<Arc<TopicService>, TopicError> {
        match self {
            At::Dir(dir) => TopicService::open(&dir.path().join("topics.db"), config, deliver).await,
            At::Postgres(url) => TopicService::open_shared(url, config, deliver).await,
        }
    }
}

/// Each behaviour test runs on both engines: `sqlite::name` and `postgres::name` (the
/// latter where a PostgreSQL server is named; under CI there always is).
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::At::sqlite()).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(url) = nimbus_store::pg::testing::fresh_database().await else { return };
                    super::$name(super::At::Postgres(url)).await
                }
            )*
        }
    };
}

on_both_engines!(
    fan_out_to_queues_and_functions_with_filters,
    structured_messages_pick_the_protocol_text,
    fifo_topics_number_deduplicate_and_keep_group_order,
    failed_deliveries_are_retried_then_dead_lettered,
    batches_report_each_entry,
    http_subscriptions_confirm_then_receive,
    publishes_deliveries_failures_and_filtered_out_are_counted,
);

fn config() -> TopicConfig {
    let mut c = TopicConfig::new("us-east-1", "000000000000", "http://127.0.0.1:9001");
    c.retry_delay = Duration::from_millis(20);
    c.max_attempts = 3;
    c.managed_max_attempts = 3;
    c
}

const Q: &str = "arn:aws:sqs:us-east-1:000000000000:q";
const RAW_Q: &str = "arn:aws:sqs:us-east-1:000000000000:raw";
const FN: &str = "arn:aws:lambda:us-east-1:000000000000:function:f";

fn sub(topic: &str, protocol: &str, endpoint: &str, attrs: &[(&str, &str)]) -> SubscribeInput {
    SubscribeInput {
        topic_arn: topic.into(),
        protocol: protocol.into(),
        endpoint: Some(endpoint.into()),
        attributes: attrs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        return_subscription_arn: false,
    }
}

fn attrs(items: &[(&str, &str, &str)]) -> MessageAttributes {
    items.iter().map(|(n, t, v)| (n.to_string(), MessageAttribute::string(t, v))).collect()
}

async fn fan_out_to_queues_and_functions_with_filters(at: At) {
    let (rec, mut rx) = Recorder::new();
    let svc = at.open(config(), rec.clone()).await.expect("open");
    let topic = svc.create_topic("orders", BTreeMap::new(), BTreeMap::new()).await.expect("create");
    assert_eq!(topic, "arn:aws:sns:us-east-1:000000000000:orders");
    let q_sub = svc.subscribe(sub(&topic, "sqs", Q, &[])).await.expect("sqs");
    svc.subscribe(sub(&topic, "sqs", RAW_Q, &[("RawMessageDelivery", "true"), ("FilterPolicy", r#"{"kind":["big"]}"#)]))
        .await
        .expect("raw");
    let fn_sub = svc
        .subscribe(sub(&topic, "lambda", FN, &[("FilterPolicyScope", "MessageBody"), ("FilterPolicy", r#"{"n":[{"numeric":[">",1]}]}"#)]))
        .await
        .expect("fn");
    assert_eq!(svc.subscribe(sub(&topic, "sqs", Q, &[])).await.expect("again"), q_sub, "subscribing twice is idempotent");

    let small = svc
        .publish(
            &topic,
            PublishInput {
                message: r#"{"n":1}"#.into(),
                subject: Some("hi".into()),
                attributes: attrs(&[("kind", "String", "small")]),
                ..Default::default()
            },
        )
        .await
        .expect("publish");
    wait_for(&mut rx, 1, &rec).await;
    let big = svc
        .publish(
            &topic,
            PublishInput {
                message: r#"{"n":2}"#.into(),
                attributes: attrs(&[("kind", "String", "big"), ("size", "Number", "7")]),
                ..Default::default()
            },
        )
        .await
        .expect("publish");
    wait_for(&mut rx, 4, &rec).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sent = rec.sent();
    assert_eq!(sent.len(), 4, "{sent:?}");

    let envelopes: Vec<Value> = sent
        .iter()
        .filter_map(|s| match s {
            Sent::Queue(q, m) if q == Q => Some(serde_json::from_str(&m.body).expect("envelope")),
            _ => None,
        })
        .collect();
    assert_eq!(envelopes.len(), 2);
    let e = &envelopes[0];
    assert_eq!(e["Type"], "Notification");
    assert_eq!(e["MessageId"], small.message_id.as_str());
    assert_eq!(e["TopicArn"], topic.as_str());
    assert_eq!(e["Subject"], "hi");
    assert_eq!(e["Message"], r#"{"n":1}"#);
    assert_eq!(e["SignatureVersion"], "1");
    assert_eq!(e["MessageAttributes"]["kind"], serde_json::json!({"Type": "String", "Value": "small"}));
    assert!(e["UnsubscribeURL"].as_str().is_some_and(|u| u.starts_with("http://127.0.0.1:9001/?Action=Unsubscribe&SubscriptionArn=")));
    assert!(envelopes[1].get("Subject").is_none(), "no Subject key without a subject");

    let raw: Vec<&QueueMessage> =
        sent.iter().filter_map(|s| if let Sent::Queue(q, m) = s { (q == RAW_Q).then_some(m) } else { None }).collect();
    assert_eq!(raw.len(), 1, "only the big message passes the raw queue's filter");
    assert_eq!(raw[0].body, r#"{"n":2}"#);
    assert_eq!(raw[0].attributes["size"], MessageAttribute::string("Number", "7"));

    let events: Vec<&Value> =
        sent.iter().filter_map(|s| if let Sent::Function(f, v) = s { (f == FN).then_some(v) } else { None }).collect();
    assert_eq!(events.len(), 1, "only n > 1 passes the body filter");
    let r = &events[0]["Records"][0];
    assert_eq!(r["EventSource"], "aws:sns");
    assert_eq!(r["EventVersion"], "1.0");
    assert_eq!(r["EventSubscriptionArn"], fn_sub.as_str());
    assert_eq!(r["Sns"]["Type"], "Notification");
    assert_eq!(r["Sns"]["MessageId"], big.message_id.as_str());
    assert_eq!(r["Sns"]["Subject"], Value::Null);
    assert_eq!(r["Sns"]["MessageAttributes"]["size"], serde_json::json!({"Type": "Number", "Value": "7"}));
    for k in ["Timestamp", "Signature", "SigningCertUrl", "UnsubscribeUrl"] {
        assert!(r["Sns"][k].is_string(), "{k}");
    }

    let attrs = svc.get_topic_attributes(&topic).expect("attrs");
    assert_eq!(attrs["SubscriptionsConfirmed"], "3");
    assert_eq!(attrs["SubscriptionsPending"], "0");
    svc.unsubscribe(&q_sub).await.expect("unsubscribe");
    assert_eq!(svc.get_topic_attributes(&topic).expect("attrs")["SubscriptionsDeleted"], "1");
    assert_eq!(svc.list_subscriptions_by_topic(&topic, None).expect("list").0.len(), 2);
}

async fn structured_messages_pick_the_protocol_text(at: At) {
    let (rec, mut rx) = Recorder::new();
    let svc = at.open(config(), rec.clone()).await.expect("open");
    let topic = svc.create_topic("t", BTreeMap::new(), BTreeMap::new()).await.expect("create");
    svc.subscribe(sub(&topic, "sqs", RAW_Q, &[("RawMessageDelivery", "true")])).await.expect("sqs");
    svc.subscribe(sub(&topic, "lambda", FN, &[])).await.expect("fn");
    let input = |m: &str| PublishInput { message: m.into(), message_structure: Some("json".into()), ..Default::default() };
    assert_eq!(
        svc.publish(&topic, input(r#"{"sqs":"x"}"#)).await.expect_err("no default"),
        TopicError::invalid("Message Structure - No default entry in JSON message body")
    );
    assert_eq!(
        svc.publish(&topic, input("nope")).await.expect_err("bad"),
        TopicError::invalid("Message Structure - JSON message body failed to parse")
    );
    svc.publish(&topic, input(r#"{"default":"d","sqs":"for queues"}"#)).await.expect("publish");
    wait_for(&mut rx, 2, &rec).await;
    for s in rec.sent() {
        match s {
            Sent::Queue(_, m) => assert_eq!(m.body, "for queues"),
            Sent::Function(_, v) => assert_eq!(v["Records"][0]["Sns"]["Message"], "d"),
        }
    }
}

async fn fifo_topics_number_deduplicate_and_keep_group_order(at: At) {
    let (rec, mut rx) = Recorder::new();
    let svc = at.open(config(), rec.clone()).await.expect("open");
    assert!(svc.create_topic("plain.fifo", BTreeMap::new(), BTreeMap::new()).await.is_err(), ".fifo names need FifoTopic");
    let fifo_attrs = BTreeMap::from([("FifoTopic".to_string(), "true".to_string())]);
    svc.create_topic("nofifo", fifo_attrs.clone(), BTreeMap::new()).await.unwrap_err();
    let topic = svc.create_topic("t.fifo", fifo_attrs, BTreeMap::new()).await.expect("create");
    let std_topic = svc.create_topic("std", BTreeMap::new(), BTreeMap::new()).await.expect("create");
    let fq = "arn:aws:sqs:us-east-1:000000000000:q.fifo";
    assert!(svc.subscribe(sub(&std_topic, "sqs", fq, &[])).await.is_err(), "FIFO queue on a standard topic");
    assert!(svc.subscribe(sub(&topic, "lambda", FN, &[])).await.is_err(), "FIFO topics deliver to queues only");
    svc.subscribe(sub(&topic, "sqs", fq, &[("RawMessageDelivery", "true")])).await.expect("subscribe");

    let p = |body: &str, group: Option<&str>, dedup: Option<&str>| PublishInput {
        message: body.into(),
        group_id: group.map(str::to_string),
        dedup_id: dedup.map(str::to_string),
        ..Default::default()
    };
    assert_eq!(
        svc.publish(&topic, p("a", None, Some("1"))).await.expect_err("group"),
        TopicError::invalid("The MessageGroupId parameter is required for FIFO topics")
    );
    assert!(svc.publish(&topic, p("a", Some("g"), None)).await.is_err(), "no dedup id and no content-based dedup");
    let first = svc.publish(&topic, p("m0", Some("g"), Some("d0"))).await.expect("publish");
    let again = svc.publish(&topic, p("other", Some("g"), Some("d0"))).await.expect("duplicate");
    assert_eq!(first, again, "a duplicate answers with the first message's id and number");
    let mut last = first.sequence_number.clone().expect("sequence");
    for i in 1..20 {
        let r = svc.publish(&topic, p(&format!("m{i}"), Some("g"), Some(&format!("d{i}")))).await.expect("publish");
        let seq = r.sequence_number.expect("sequence");
        assert!(seq > last, "{seq} after {last}");
        last = seq;
    }
    wait_for(&mut rx, 20, &rec).await;
    let bodies: Vec<String> = rec
        .sent()
        .into_iter()
        .map(|s| {
            if let Sent::Queue(_, m) = s {
                assert_eq!(m.group_id.as_deref(), Some("g"));
                m.body
            } else {
                panic!()
            }
        })
        .collect();
    assert_eq!(bodies, (0..20).map(|i| format!("m{i}")).collect::<Vec<_>>(), "one group, publish order");

    svc.set_topic_attributes(&topic, "ContentBasedDeduplication", "true").await.expect("set");
    svc.publish(&topic, p("same", Some("g"), None)).await.expect("content dedup");
    assert!(svc.set_topic_attributes(&std_topic, "ContentBasedDeduplication", "true").await.is_err());
    assert!(svc.publish(&std_topic, p("x", None, Some("d"))).await.is_err(), "dedup id on a standard topic");
}

#[tokio::test]
async fn acknowledged_publishes_survive_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("topics.db");
    let hang = Arc::new(Recorder { hang: true, ..Default::default() });
    let first = TopicService::open(&path, config(), hang).await.expect("open");
    let topic = first.create_topic("t", BTreeMap::new(), BTreeMap::new()).await.expect("create");
    first.subscribe(sub(&topic, "sqs", Q, &[])).await.expect("subscribe");
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(first.publish(&topic, PublishInput { message: format!("m{i}"), ..Default::default() }).await.expect("publish").message_id);
    }
    // The first server is stuck (as if killed); a second one opens the same database.
    let (rec, mut rx) = Recorder::new();
    let second = TopicService::open(&path, config(), rec.clone()).await.expect("reopen");
    wait_for(&mut rx, 5, &rec).await;
    let got: Vec<String> = rec
        .sent()
        .into_iter()
        .map(|s| {
            if let Sent::Queue(_, m) = s {
                serde_json::from_str::<Value>(&m.body).expect("json")["MessageId"].as_str().expect("id").to_string()
            } else {
                panic!()
            }
        })
        .collect();
    assert_eq!(got, ids);
    assert_eq!(second.list_subscriptions(None).expect("list").0.len(), 1, "subscriptions are durable");
}

async fn failed_deliveries_are_retried_then_dead_lettered(at: At) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let rec = Arc::new(Recorder { failing: vec![Q.to_string()], tx: Mutex::new(Some(tx)), ..Default::default() });
    let svc = at.open(config(), rec.clone()).await.expect("open");
    let topic = svc.create_topic("t", BTreeMap::new(), BTreeMap::new()).await.expect("create");
    let dlq = "arn:aws:sqs:us-east-1:000000000000:dlq";
    svc.subscribe(sub(&topic, "sqs", Q, &[("RedrivePolicy", &format!(r#"{{"deadLetterTargetArn":"{dlq}"}}"#))])).await.expect("subscribe");
    let r = svc.publish(&topic, PublishInput { message: "lost".into(), ..Default::default() }).await.expect("publish");
    wait_for(&mut rx, 1, &rec).await;
    let Sent::Queue(q, m) = &rec.sent()[0] else { panic!() };
    assert_eq!(q, dlq);
    let doc: Value = serde_json::from_str(&m.body).expect("json");
    assert_eq!(doc["MessageId"], r.message_id.as_str());
    assert_eq!(m.attributes["ErrorMessage"].string_value.as_deref(), Some("queue refused"));
}

async fn batches_report_each_entry(at: At) {
    let (rec, mut rx) = Recorder::new();
    let svc = at.open(config(), rec.clone()).await.expect("open");
    let topic = svc.create_topic("t", BTreeMap::new(), BTreeMap::new()).await.expect("create");
    svc.subscribe(sub(&topic, "sqs", Q, &[])).await.expect("subscribe");
    let e = |id: &str, m: &str| (id.to_string(), PublishInput { message: m.into(), ..Default::default() });
    let out = svc.publish_batch(&topic, vec![e("a", "one"), e("b", ""), e("c", "three")]).await.expect("batch");
    assert_eq!(out.successful.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(), ["a", "c"]);
    assert_eq!(
        out.failed,
        vec![BatchFailure {
            id: "b".into(),
            code: "InvalidParameter".into(),
            message: "Invalid parameter: Empty message".into(),
            sender_fault: true
        }]
    );
    wait_for(&mut rx, 2, &rec).await;
    assert!(matches!(svc.publish_batch(&topic, vec![e("a", "1"), e("a", "2")]).await, Err(TopicError::BatchEntryIdsNotDistinct(_))));
    assert!(matches!(svc.publish_batch(&topic, vec![]).await, Err(TopicError::EmptyBatchRequest(_))));
    let eleven = (0..11).map(|i| e(&format!("i{i}"), "x")).collect();
    assert!(matches!(svc.publish_batch(&topic, eleven).await, Err(TopicError::TooManyEntriesInBatchRequest(_))));
    assert!(matches!(svc.publish_batch(&topic, vec![e("bad id", "x")]).await, Err(TopicError::InvalidBatchEntryId(_))));
    let missing = "arn:aws:sns:us-east-1:000000000000:missing";
    assert_eq!(
        svc.publish(missing, PublishInput { message: "x".into(), ..Default::default() }).await,
        Err(TopicError::NotFound("Topic does not exist".into()))
    );
}

async fn recv(posts: &mut mpsc::UnboundedReceiver<(http::HeaderMap, String)>) -> (http::HeaderMap, String) {
    tokio::time::timeout(Duration::from_secs(10), posts.recv()).await.expect("a POST").expect("open")
}

/// A local HTTP endpoint recording (headers, body) of each POST; answers 500 to the first
/// `fail_first` requests.
async fn endpoint(fail_first: usize) -> (String, mpsc::UnboundedReceiver<(http::HeaderMap, String)>) {
    use http_body_util::BodyExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let (tx, rx) = mpsc::unbounded_channel();
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (tx, count) = (tx.clone(), count.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let (tx, count) = (tx.clone(), count.clone());
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let status = if n < fail_first { 500 } else { 200 };
                        let _ = tx.send((parts.headers, String::from_utf8_lossy(&body).into_owned()));
                        http::Response::builder().status(status).body(http_body_util::Full::new(bytes::Bytes::new()))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(stream), svc).await;
            });
        }
    });
    (url, rx)
}

async fn http_subscriptions_confirm_then_receive(at: At) {
    let (rec, _rx) = Recorder::new();
    let svc = at.open(config(), rec).await.expect("open");
    let topic = svc.create_topic("t", BTreeMap::new(), BTreeMap::new()).await.expect("create");
    let (url, mut posts) = endpoint(1).await;
    assert_eq!(svc.subscribe(sub(&topic, "http", &url, &[])).await.expect("subscribe"), "pending confirmation");
    assert!(svc.subscribe(sub(&topic, "http", "https://x", &[])).await.is_err(), "protocol and URL disagree");
    // The first POST fails (500) and is retried.
    let (_, first) = recv(&mut posts).await;
    let (headers, body) = recv(&mut posts).await;
    assert_eq!(first, body);
    assert_eq!(headers["x-amz-sns-message-type"], "SubscriptionConfirmation");
    assert_eq!(headers["x-amz-sns-topic-arn"], topic.as_str());
    let doc: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(doc["Type"], "SubscriptionConfirmation");
    let token = doc["Token"].as_str().expect("token").to_string();
    assert!(doc["SubscribeURL"].as_str().is_some_and(|u| u.contains("Action=ConfirmSubscription") && u.contains(&token)));

    let (subs, _) = svc.list_subscriptions_by_topic(&topic, None).expect("list");
    assert_eq!(subs[0].subscription_arn, "PendingConfirmation");
    svc.publish(&topic, PublishInput { message: "before".into(), ..Default::default() }).await.expect("publish");
    assert_eq!(svc.confirm_subscription(&topic, "wrong").await, Err(TopicError::invalid("Token")));
    let arn = svc.confirm_subscription(&topic, &token).await.expect("confirm");
    assert_eq!(svc.confirm_subscription(&topic, &token).await.expect("again"), arn);
    assert_eq!(svc.get_subscription_attributes(&arn).expect("attrs")["PendingConfirmation"], "false");
    let r = svc.publish(&topic, PublishInput { message: "after".into(), ..Default::default() }).await.expect("publish");
    let (headers, body) = recv(&mut posts).await;
    assert_eq!(headers["x-amz-sns-message-type"], "Notification");
    assert_eq!(headers["x-amz-sns-message-id"], r.message_id.as_str());
    assert_eq!(headers["x-amz-sns-subscription-arn"], arn.as_str());
    assert_eq!(headers["content-type"], "text/plain; charset=UTF-8");
    let doc: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(doc["Message"], "after", "nothing was sent while pending");
}

/// Records every `AWS/SNS` datapoint the service reports.
#[derive(Default)]
struct Counted(Mutex<Vec<(String, TopicMetric, f64)>>);

impl TopicMetrics for Counted {
    fn record(&self, topic: &str, metric: TopicMetric, value: f64, _timestamp_ms: i64) {
        self.0.lock().expect("lock").push((topic.to_string(), metric, value));
    }
}

impl Counted {
    fn values(&self, metric: TopicMetric) -> Vec<f64> {
        self.0.lock().expect("lock").iter().filter(|(t, m, _)| t == "counted" && *m == metric).map(|(_, _, v)| *v).collect()
    }
}

async fn publishes_deliveries_failures_and_filtered_out_are_counted(at: At) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let rec = Arc::new(Recorder { failing: vec![Q.to_string()], tx: Mutex::new(Some(tx)), ..Default::default() });
    let svc = at.open(config(), rec.clone()).await.expect("open");
    let counted = Arc::new(Counted::default());
    svc.record_into(counted.clone());
    let topic = svc.create_topic("counted", BTreeMap::new(), BTreeMap::new()).await.expect("create");
    svc.subscribe(sub(&topic, "sqs", Q, &[])).await.expect("failing queue");
    svc.subscribe(sub(&topic, "sqs", RAW_Q, &[("FilterPolicy", r#"{"kind":["big"]}"#)])).await.expect("filtered queue");
    svc.subscribe(sub(&topic, "lambda", FN, &[])).await.expect("function");
    let big = PublishInput { message: "big one".into(), attributes: attrs(&[("kind", "String", "big")]), ..Default::default() };
    svc.publish(&topic, big).await.expect("publish");
    svc.publish(&topic, PublishInput { message: "small".into(), ..Default::default() }).await.expect("publish");
    wait_for(&mut rx, 3, &rec).await;
    // The failing queue's deliveries end after three attempts each.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while counted.values(TopicMetric::NumberOfNotificationsFailed).len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "failures not counted: {:?}", counted.0.lock().expect("lock"));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(counted.values(TopicMetric::NumberOfMessagesPublished), vec![1.0, 1.0]);
    let kind_size = 4 + "String".len() + 3;
    assert_eq!(counted.values(TopicMetric::PublishSize), vec![(7 + kind_size) as f64, 5.0]);
    assert_eq!(counted.values(TopicMetric::NumberOfNotificationsFilteredOut), vec![1.0], "the small one, by one policy");
    assert_eq!(counted.values(TopicMetric::NumberOfNotificationsDelivered).iter().sum::<f64>(), 3.0);
    assert_eq!(counted.values(TopicMetric::NumberOfNotificationsFailed), vec![1.0, 1.0], "once each, after the retries");
    assert_eq!(TopicMetric::PublishSize.unit(), "Bytes");
}

/// The queue bodies' MessageIds, in delivery order.
fn delivered_ids(rec: &Recorder) -> Vec<String> {
    rec.sent()
        .into_iter()
        .map(|s| match s {
            Sent::Queue(_, m) => serde_json::from_str::<Value>(&m.body).expect("json")["MessageId"].as_str().expect("id").to_string(),
            other => panic!("not a queue delivery: {other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn topics_made_on_one_node_are_every_nodes() {
    let Some(url) = nimbus_store::pg::testing::fresh_database().await else { return };
    let (rec_a, _rx_a) = Recorder::new();
    let (rec_b, mut rx_b) = Recorder::new();
    let a = TopicService::open_shared(&url, config(), rec_a.clone()).await.expect("node a");
    let b = TopicService::open_shared(&url, config(), rec_b.clone()).await.expect("node b");
    let topic = a.create_topic("shared", BTreeMap::new(), BTreeMap::new()).await.expect("create on a");
    a.subscribe(sub(&topic, "sqs", Q, &[])).await.expect("subscribe on a");
    // b's mirror follows a's changes (the change feed).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while b.list_subscriptions(None).expect("list").0.len() != 1 {
        assert!(std::time::Instant::now() < deadline, "node b never saw node a's subscription");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Published on b: b delivers.
    let id = b.publish(&topic, PublishInput { message: "hello".into(), ..Default::default() }).await.expect("publish on b").message_id;
    wait_for(&mut rx_b, 1, &rec_b).await;
    assert_eq!(delivered_ids(&rec_b), vec![id]);
    assert!(rec_a.sent().is_empty(), "a publish is delivered once, by the node holding it");
    // Unsubscribed on b: a's mirror forgets it.
    let arn = b.list_subscriptions(None).expect("list").0[0].subscription_arn.clone();
    b.unsubscribe(&arn).await.expect("unsubscribe on b");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !a.list_subscriptions(None).expect("list").0.is_empty() {
        assert!(std::time::Instant::now() < deadline, "node a kept the subscription node b removed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_dead_nodes_deliveries_are_taken_over() {
    let Some(url) = nimbus_store::pg::testing::fresh_database().await else { return };
    // Node a accepts publishes but never finishes a delivery (as if it died after the answer).
    let hang = Arc::new(Recorder { hang: true, ..Default::default() });
    let a = TopicService::open_shared(&url, config(), hang).await.expect("node a");
    let topic = a.create_topic("t", BTreeMap::new(), BTreeMap::new()).await.expect("create");
    a.subscribe(sub(&topic, "sqs", Q, &[])).await.expect("subscribe");
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(a.publish(&topic, PublishInput { message: format!("m{i}"), ..Default::default() }).await.expect("publish").message_id);
    }
    // Its leases lapse (here: set back by hand, as if a's renewals had stopped).
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(connection);
    let expired = client
        .execute("UPDATE nimbus_000000000000.sns_deliveries SET lease_until = now() - interval '1 second'", &[])
        .await
        .expect("expire");
    assert_eq!(expired, 5);
    // Node b takes them over at its start and delivers each, in order.
    let (rec, mut rx) = Recorder::new();
    let b = TopicService::open_shared(&url, config(), rec.clone()).await.expect("node b");
    wait_for(&mut rx, 5, &rec).await;
    assert_eq!(delivered_ids(&rec), ids);
    // a can no longer finish them (they are b's), and b's finishes empty the table.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let left: i64 = client.query_one("SELECT COUNT(*) FROM nimbus_000000000000.sns_deliveries", &[]).await.expect("count").get(0);
        if left == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{left} deliveries still pending");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(b);
}

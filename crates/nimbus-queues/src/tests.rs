//! Behaviour tests for the queue service on a real database and a hand-moved clock.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::*;

struct ManualClock(AtomicI64);

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl ManualClock {
    fn advance(&self, secs: i64) {
        self.0.fetch_add(secs * 1000, Ordering::SeqCst);
    }
}

struct Fixture {
    svc: Arc<QueueService>,
    clock: Arc<ManualClock>,
    _dir: Option<tempfile::TempDir>,
}

fn start_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock(AtomicI64::new(1_700_000_000_000)))
}

/// The service on `queues.db` in a fresh directory.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = start_clock();
    let svc = QueueService::open_with_clock(&dir.path().join("queues.db"), "us-east-1", "000000000000", clock.clone()).expect("open");
    Fixture { svc, clock, _dir: Some(dir) }
}

/// The service on a fresh PostgreSQL database (None where there is none to test with;
/// under CI there always is).
async fn shared_fixture() -> Option<Fixture> {
    let url = nimbus_store::pg::testing::fresh_database().await?;
    let clock = start_clock();
    let svc = QueueService::open_shared_with_clock(&url, "us-east-1", "000000000000", clock.clone()).await.expect("open shared");
    Some(Fixture { svc, clock, _dir: None })
}

/// Each behaviour test runs on both engines: `sqlite::name` and `postgres::name`.
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::fixture()).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(f) = super::shared_fixture().await else { return };
                    super::$name(f).await
                }
            )*
        }
    };
}

on_both_engines!(
    queue_lifecycle,
    visibility_timeout_and_delete,
    delays_and_retention,
    redrive_to_dead_letter_queue,
    fifo_group_ordering,
    fifo_visibility_expiry_redelivers_in_order,
    fifo_deduplication_window,
    batches_and_validation,
    message_attributes_round_trip,
    long_poll_wakes_on_send,
    long_polls_end_when_the_node_drains,
    arn_api,
    counts_what_the_api_did_for_cloudwatch,
    gauges_say_where_each_message_is,
);

fn attrs(items: &[(&str, &str)]) -> BTreeMap<String, String> {
    items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

async fn create(svc: &QueueService, name: &str, a: &[(&str, &str)]) {
    svc.create_queue(CreateQueue { name: name.into(), attributes: attrs(a), tags: BTreeMap::new() }).await.expect("create");
}

fn now_req(max: i64) -> ReceiveRequest {
    ReceiveRequest {
        max_messages: max,
        wait_time_seconds: Some(0),
        system_attribute_names: vec!["All".into()],
        message_attribute_names: vec!["All".into()],
        ..Default::default()
    }
}

async fn bodies(svc: &QueueService, q: &str, max: i64) -> Vec<String> {
    svc.receive_message(q, now_req(max)).await.expect("receive").into_iter().map(|m| m.body).collect()
}

async fn queue_lifecycle(f: Fixture) {
    create(&f.svc, "q1", &[("VisibilityTimeout", "10")]).await;
    create(&f.svc, "q1", &[("VisibilityTimeout", "10")]).await;
    let e = f
        .svc
        .create_queue(CreateQueue { name: "q1".into(), attributes: attrs(&[("VisibilityTimeout", "11")]), ..Default::default() })
        .await;
    assert!(matches!(e, Err(QueueError::QueueNameExists(_))), "{e:?}");
    create(&f.svc, "q2", &[]).await;
    create(&f.svc, "other", &[]).await;
    assert_eq!(f.svc.list_queues(Some("q".into()), None, None).await.unwrap().0, vec!["q1", "q2"]);
    let (page, token) = f.svc.list_queues(None, Some(2), None).await.unwrap();
    assert_eq!(page, vec!["other", "q1"]);
    let (page2, token2) = f.svc.list_queues(None, Some(2), token).await.unwrap();
    assert_eq!((page2, token2), (vec!["q2".to_string()], None));
    let a = f.svc.get_queue_attributes("q1", &["All".into()]).await.unwrap();
    assert_eq!(a["VisibilityTimeout"], "10");
    assert_eq!(a["QueueArn"], "arn:aws:sqs:us-east-1:000000000000:q1");
    assert_eq!(a["MaximumMessageSize"], "1048576");
    assert!(matches!(f.svc.get_queue_attributes("q1", &["Bogus".into()]).await, Err(QueueError::InvalidAttributeName(_))));
    f.svc.delete_queue("q1").await.unwrap();
    assert_eq!(f.svc.get_queue("q1").await, Err(QueueError::QueueDoesNotExist));
    assert_eq!(f.svc.resolve("http://localhost:9/000000000000/q2").unwrap(), "q2");
    assert_eq!(f.svc.resolve("q2").unwrap(), "q2");
    assert_eq!(f.svc.resolve("http://h/123456789012/q2"), Err(QueueError::QueueDoesNotExist));
}

async fn visibility_timeout_and_delete(f: Fixture) {
    create(&f.svc, "q", &[("VisibilityTimeout", "30")]).await;
    let sent = f.svc.send_message("q", SendMessage::new("hello")).await.unwrap();
    assert_eq!(sent.md5_of_body, message::md5_of_body("hello"));
    let got = f.svc.receive_message("q", now_req(10)).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message_id, sent.message_id);
    assert_eq!(got[0].attributes["ApproximateReceiveCount"], "1");
    assert!(bodies(&f.svc, "q", 10).await.is_empty(), "in flight");
    let a = f.svc.get_queue_attributes("q", &["ApproximateNumberOfMessagesNotVisible".into()]).await.unwrap();
    assert_eq!(a["ApproximateNumberOfMessagesNotVisible"], "1");
    f.clock.advance(29);
    assert!(bodies(&f.svc, "q", 10).await.is_empty());
    f.clock.advance(1);
    let again = f.svc.receive_message("q", now_req(10)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attributes["ApproximateReceiveCount"], "2");
    assert_eq!(again[0].attributes["ApproximateFirstReceiveTimestamp"], got[0].attributes["ApproximateFirstReceiveTimestamp"]);
    // The old handle cannot change visibility; the new one can.
    assert!(matches!(f.svc.change_message_visibility("q", &got[0].receipt_handle, 5).await, Err(QueueError::MessageNotInflight(_))));
    f.svc.change_message_visibility("q", &again[0].receipt_handle, 0).await.unwrap();
    let third = f.svc.receive_message("q", now_req(1)).await.unwrap();
    f.svc.delete_message("q", &third[0].receipt_handle).await.unwrap();
    f.svc.delete_message("q", &third[0].receipt_handle).await.unwrap(); // twice is fine
    f.clock.advance(60);
    assert!(bodies(&f.svc, "q", 10).await.is_empty());
    assert!(matches!(f.svc.delete_message("q", "garbage").await, Err(QueueError::ReceiptHandleIsInvalid(_))));
    assert!(matches!(
        f.svc.change_message_visibility("q", &third[0].receipt_handle, 43_201).await,
        Err(QueueError::InvalidParameterValue(_))
    ));
}

async fn delays_and_retention(f: Fixture) {
    create(&f.svc, "q", &[("DelaySeconds", "5"), ("MessageRetentionPeriod", "60")]).await;
    f.svc.send_message("q", SendMessage::new("queue-delay")).await.unwrap();
    f.svc.send_message("q", SendMessage { delay_seconds: Some(0), ..SendMessage::new("now") }).await.unwrap();
    let a = f.svc.get_queue_attributes("q", &["All".into()]).await.unwrap();
    assert_eq!((a["ApproximateNumberOfMessages"].as_str(), a["ApproximateNumberOfMessagesDelayed"].as_str()), ("1", "1"));
    assert_eq!(bodies(&f.svc, "q", 10).await, vec!["now"]);
    f.clock.advance(5);
    assert_eq!(bodies(&f.svc, "q", 10).await, vec!["queue-delay"]);
    f.svc.send_message("q", SendMessage { delay_seconds: Some(0), ..SendMessage::new("old") }).await.unwrap();
    f.clock.advance(61);
    assert!(bodies(&f.svc, "q", 10).await.is_empty(), "expired");
    assert!(f.svc.sweep().await.unwrap() >= 1);
    let e = f.svc.send_message("q", SendMessage { delay_seconds: Some(901), ..SendMessage::new("x") }).await;
    assert!(matches!(e, Err(QueueError::InvalidParameterValue(_))));
}

async fn redrive_to_dead_letter_queue(f: Fixture) {
    create(&f.svc, "dlq", &[]).await;
    let policy = r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":"2"}"#;
    create(&f.svc, "src", &[("VisibilityTimeout", "1"), ("RedrivePolicy", policy)]).await;
    f.svc.send_message("src", SendMessage::new("poison")).await.unwrap();
    for i in 1..=2 {
        let m = f.svc.receive_message("src", now_req(1)).await.unwrap();
        assert_eq!(m[0].attributes["ApproximateReceiveCount"], i.to_string());
        f.clock.advance(1);
    }
    assert!(bodies(&f.svc, "src", 1).await.is_empty(), "moved instead of a third delivery");
    let dead = f.svc.receive_message("dlq", now_req(1)).await.unwrap();
    assert_eq!(dead[0].body, "poison");
    assert_eq!(dead[0].attributes["DeadLetterQueueSourceArn"], "arn:aws:sqs:us-east-1:000000000000:src");
    assert_eq!(f.svc.list_dead_letter_source_queues("dlq", None, None).await.unwrap().0, vec!["src"]);
    let bad = r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:nope","maxReceiveCount":2}"#;
    assert!(f.svc.set_queue_attributes("src", attrs(&[("RedrivePolicy", bad)])).await.is_err());
}

async fn fifo_group_ordering(f: Fixture) {
    create(&f.svc, "f.fifo", &[("FifoQueue", "true"), ("ContentBasedDeduplication", "true")]).await;
    for (g, b) in [("A", "a1"), ("A", "a2"), ("B", "b1"), ("A", "a3"), ("B", "b2")] {
        let r = f.svc.send_message("f.fifo", SendMessage { group_id: Some(g.into()), ..SendMessage::new(b) }).await.unwrap();
        assert!(r.sequence_number.is_some());
    }
    let first = f.svc.receive_message("f.fifo", now_req(1)).await.unwrap();
    assert_eq!(first[0].body, "a1");
    assert_eq!(first[0].attributes["MessageGroupId"], "A");
    // Group A is blocked while a1 is in flight; B is served.
    assert_eq!(bodies(&f.svc, "f.fifo", 10).await, vec!["b1", "b2"]);
    assert!(bodies(&f.svc, "f.fifo", 10).await.is_empty());
    f.svc.delete_message("f.fifo", &first[0].receipt_handle).await.unwrap();
    assert_eq!(bodies(&f.svc, "f.fifo", 10).await, vec!["a2", "a3"]);
    // Requirements of FIFO sends.
    let e = f.svc.send_message("f.fifo", SendMessage::new("no group")).await;
    assert!(matches!(e, Err(QueueError::MissingParameter(_))), "{e:?}");
    let e = f.svc.send_message("f.fifo", SendMessage { group_id: Some("A".into()), delay_seconds: Some(1), ..SendMessage::new("x") }).await;
    assert!(matches!(e, Err(QueueError::InvalidParameterValue(_))));
}

async fn fifo_visibility_expiry_redelivers_in_order(f: Fixture) {
    create(&f.svc, "o.fifo", &[("FifoQueue", "true"), ("VisibilityTimeout", "5")]).await;
    for (i, b) in ["1", "2", "3"].iter().enumerate() {
        f.svc
            .send_message("o.fifo", SendMessage { group_id: Some("g".into()), dedup_id: Some(format!("d{i}")), ..SendMessage::new(*b) })
            .await
            .unwrap();
    }
    assert_eq!(bodies(&f.svc, "o.fifo", 2).await, vec!["1", "2"]);
    f.clock.advance(5);
    let again = f.svc.receive_message("o.fifo", now_req(10)).await.unwrap();
    assert_eq!(again.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(), vec!["1", "2", "3"]);
    // An expired FIFO receipt cannot delete.
    f.clock.advance(5);
    let e = f.svc.delete_message("o.fifo", &again[0].receipt_handle).await;
    assert!(matches!(e, Err(QueueError::InvalidParameterValue(_))), "{e:?}");
}

async fn fifo_deduplication_window(f: Fixture) {
    create(&f.svc, "d.fifo", &[("FifoQueue", "true")]).await;
    let send = |dedup: Option<&str>, body: &str| SendMessage {
        group_id: Some("g".into()),
        dedup_id: dedup.map(str::to_string),
        ..SendMessage::new(body)
    };
    let e = f.svc.send_message("d.fifo", send(None, "x")).await;
    assert!(matches!(e, Err(QueueError::InvalidParameterValue(_))), "needs a dedup id: {e:?}");
    let a = f.svc.send_message("d.fifo", send(Some("k"), "first")).await.unwrap();
    f.clock.advance(299);
    let b = f.svc.send_message("d.fifo", send(Some("k"), "second")).await.unwrap();
    assert_eq!(a.message_id, b.message_id);
    assert_eq!(a.sequence_number, b.sequence_number);
    f.clock.advance(2);
    let c = f.svc.send_message("d.fifo", send(Some("k"), "third")).await.unwrap();
    assert_ne!(a.message_id, c.message_id);
    let got = bodies(&f.svc, "d.fifo", 10).await;
    assert_eq!(got, vec!["first", "third"]);

    create(&f.svc, "c.fifo", &[("FifoQueue", "true"), ("ContentBasedDeduplication", "true")]).await;
    let cb = |body: &str| SendMessage { group_id: Some("g".into()), ..SendMessage::new(body) };
    let x = f.svc.send_message("c.fifo", cb("same")).await.unwrap();
    let y = f.svc.send_message("c.fifo", cb("same")).await.unwrap();
    let z = f.svc.send_message("c.fifo", cb("different")).await.unwrap();
    assert_eq!(x.message_id, y.message_id);
    assert_ne!(x.message_id, z.message_id);
    let m = f.svc.receive_message("c.fifo", now_req(10)).await.unwrap();
    assert_eq!(m.len(), 2);
    // Content-based ids are the SHA-256 of the body.
    assert_eq!(m[0].attributes["MessageDeduplicationId"], "0967115f2813a3541eaef77de9d9d5773f1c0c04314b0bbfe4ff3b3b1c55b5d5");
}

async fn batches_and_validation(f: Fixture) {
    create(&f.svc, "q", &[("MaximumMessageSize", "1024")]).await;
    let entry = |id: &str, body: &str| BatchEntry { id: id.into(), input: SendMessage::new(body) };
    let out = f.svc.send_message_batch("q", vec![entry("a", "1"), entry("b", &"x".repeat(1025)), entry("c", "\u{1}")]).await.unwrap();
    assert_eq!(out.successful.len(), 1);
    assert_eq!(out.failed.len(), 2);
    assert_eq!(out.failed.iter().find(|f| f.id == "c").map(|f| f.code.as_str()), Some("InvalidMessageContents"));
    assert!(matches!(f.svc.send_message_batch("q", vec![]).await, Err(QueueError::EmptyBatchRequest(_))));
    assert!(matches!(
        f.svc.send_message_batch("q", (0..11).map(|i| entry(&i.to_string(), "x")).collect()).await,
        Err(QueueError::TooManyEntriesInBatchRequest(_))
    ));
    assert!(matches!(
        f.svc.send_message_batch("q", vec![entry("a", "1"), entry("a", "2")]).await,
        Err(QueueError::BatchEntryIdsNotDistinct(_))
    ));
    assert!(matches!(f.svc.send_message_batch("q", vec![entry("a b", "1")]).await, Err(QueueError::InvalidBatchEntryId(_))));
    let got = f.svc.receive_message("q", now_req(10)).await.unwrap();
    let del = f
        .svc
        .delete_message_batch(
            "q",
            vec![
                BatchEntry { id: "ok".into(), input: got[0].receipt_handle.clone() },
                BatchEntry { id: "bad".into(), input: "zzz".into() },
            ],
        )
        .await
        .unwrap();
    assert_eq!(del.successful.len(), 1);
    assert_eq!(del.failed[0].code, "ReceiptHandleIsInvalid");
    // Attributes count towards the size limit.
    let mut big = SendMessage::new("x".repeat(1000));
    big.attributes.insert("a".into(), AttributeValue::string("String", &"y".repeat(30)));
    assert!(matches!(f.svc.send_message("q", big).await, Err(QueueError::InvalidParameterValue(_))));
}

async fn message_attributes_round_trip(f: Fixture) {
    create(&f.svc, "q", &[]).await;
    let mut m = SendMessage::new("body");
    m.attributes.insert("City".into(), AttributeValue::string("String", "Any City"));
    m.attributes.insert("Bin".into(), AttributeValue::binary("Binary", &[0, 1, 2, 255]));
    m.attributes.insert("geo.lat".into(), AttributeValue::string("Number", "47.6"));
    let sent = f.svc.send_message("q", m.clone()).await.unwrap();
    assert_eq!(sent.md5_of_attributes, message::md5_of_attributes(&m.attributes));
    let mut req = now_req(1);
    req.message_attribute_names = vec!["geo.*".into(), "City".into()];
    let got = f.svc.receive_message("q", req).await.unwrap();
    assert_eq!(got[0].message_attributes.keys().collect::<Vec<_>>(), vec!["City", "geo.lat"]);
    assert_eq!(got[0].md5_of_message_attributes, message::md5_of_attributes(&got[0].message_attributes));
    assert_ne!(got[0].md5_of_message_attributes, sent.md5_of_attributes);
}

#[tokio::test]
async fn messages_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queues.db");
    {
        let svc = QueueService::open(&path, "us-east-1", "000000000000").unwrap();
        create(&svc, "q", &[]).await;
        for i in 0..20 {
            svc.send_message("q", SendMessage::new(format!("m{i}"))).await.unwrap();
        }
    }
    let svc = QueueService::open(&path, "us-east-1", "000000000000").unwrap();
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.extend(bodies(&svc, "q", 10).await);
    }
    seen.sort();
    assert_eq!(seen.len(), 20);
}

async fn long_poll_wakes_on_send(f: Fixture) {
    let svc = f.svc;
    create(&svc, "q", &[]).await;
    let sender = svc.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = sender.send_message("q", SendMessage::new("wake")).await;
    });
    let t = Instant::now();
    let got = svc.receive_message("q", ReceiveRequest { wait_time_seconds: Some(10), ..Default::default() }).await.unwrap();
    assert_eq!(got.len(), 1);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    // Nothing arrives: the wait runs to its end.
    let t = Instant::now();
    let got = svc.receive_message("q", ReceiveRequest { wait_time_seconds: Some(1), ..Default::default() }).await.unwrap();
    assert!(got.is_empty());
    assert!(t.elapsed() >= Duration::from_millis(990), "{:?}", t.elapsed());
}

async fn long_polls_end_when_the_node_drains(f: Fixture) {
    let svc = f.svc;
    create(&svc, "q", &[]).await;
    let drainer = svc.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        drainer.drain();
    });
    // A long poll in progress answers when the drain begins ...
    let t = Instant::now();
    let got = svc.receive_message("q", ReceiveRequest { wait_time_seconds: Some(10), ..Default::default() }).await.unwrap();
    assert!(got.is_empty());
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    // ... later ones do not wait, and messages are still handed out.
    let t = Instant::now();
    assert!(svc.receive_message("q", ReceiveRequest { wait_time_seconds: Some(10), ..Default::default() }).await.unwrap().is_empty());
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    svc.send_message("q", SendMessage::new("late")).await.unwrap();
    assert_eq!(bodies(&svc, "q", 10).await, ["late"]);
}

async fn arn_api(f: Fixture) {
    create(&f.svc, "q", &[]).await;
    let arn = "arn:aws:sqs:us-east-1:000000000000:q";
    let info = f.svc.queue_by_arn(arn).await.unwrap();
    assert_eq!((info.name.as_str(), info.fifo, info.visibility_timeout), ("q", false, 30));
    f.svc.queue_by_arn("arn:aws:sqs:us-east-1:111111111111:q").await.unwrap_err();
    f.svc.send(arn, "via arn", MessageAttributes::new()).await.unwrap();
    let got = f.svc.receive(arn, 10, Some(60), Duration::ZERO).await.unwrap();
    assert_eq!(got[0].body, "via arn");
    assert!(got[0].attributes.contains_key("SentTimestamp"));
    f.svc.change_visibility(arn, &got[0].receipt_handle, 0).await.unwrap();
    let again = f.svc.receive(arn, 10, None, Duration::ZERO).await.unwrap();
    f.svc.delete(arn, &again[0].receipt_handle).await.unwrap();
    assert!(f.svc.receive(arn, 10, None, Duration::ZERO).await.unwrap().is_empty());
    // Event source mappings take batches larger than the API's 10.
    for i in 0..25 {
        f.svc.send(arn, &format!("m{i}"), MessageAttributes::new()).await.unwrap();
    }
    assert_eq!(f.svc.receive(arn, 100, None, Duration::ZERO).await.unwrap().len(), 25);
}

/// Records every datapoint the service reports, for the metric tests.
#[derive(Default)]
struct Recorded(std::sync::Mutex<Vec<(String, QueueMetric, f64)>>);

impl QueueMetrics for Recorded {
    fn record(&self, queue: &str, metric: QueueMetric, value: f64, _timestamp_ms: i64) {
        self.0.lock().expect("lock").push((queue.to_string(), metric, value));
    }
}

impl Recorded {
    fn sum(&self, queue: &str, metric: QueueMetric) -> f64 {
        self.0.lock().expect("lock").iter().filter(|(q, m, _)| q == queue && *m == metric).map(|(_, _, v)| v).sum()
    }

    fn values(&self, queue: &str, metric: QueueMetric) -> Vec<f64> {
        self.0.lock().expect("lock").iter().filter(|(q, m, _)| q == queue && *m == metric).map(|(_, _, v)| *v).collect()
    }
}

async fn counts_what_the_api_did_for_cloudwatch(f: Fixture) {
    let rec = Arc::new(Recorded::default());
    f.svc.record_into(rec.clone());
    create(&f.svc, "m", &[]).await;
    f.svc.send_message("m", SendMessage::new("hello")).await.expect("send");
    let batch = vec![
        BatchEntry { id: "a".into(), input: SendMessage::new("ab") },
        BatchEntry { id: "b".into(), input: SendMessage { delay_seconds: Some(-1), ..SendMessage::new("bad") } },
    ];
    let out = f.svc.send_message_batch("m", batch).await.expect("batch");
    assert_eq!((out.successful.len(), out.failed.len()), (1, 1));
    assert_eq!(rec.sum("m", QueueMetric::NumberOfMessagesSent), 2.0, "only what was added counts");
    assert_eq!(rec.values("m", QueueMetric::SentMessageSize), vec![5.0, 2.0]);

    let got = f.svc.receive_message("m", now_req(10)).await.expect("receive");
    assert_eq!(got.len(), 2);
    assert!(f.svc.receive_message("m", now_req(10)).await.expect("receive").is_empty());
    assert_eq!(rec.sum("m", QueueMetric::NumberOfMessagesReceived), 2.0);
    assert_eq!(rec.sum("m", QueueMetric::NumberOfEmptyReceives), 1.0);

    f.svc.delete_message("m", &got[0].receipt_handle).await.expect("delete");
    let entries = vec![
        BatchEntry { id: "x".into(), input: got[1].receipt_handle.clone() },
        BatchEntry { id: "y".into(), input: "not a handle".into() },
    ];
    f.svc.delete_message_batch("m", entries).await.expect("delete batch");
    assert_eq!(rec.sum("m", QueueMetric::NumberOfMessagesDeleted), 2.0, "the bad handle is not counted");
}

async fn gauges_say_where_each_message_is(f: Fixture) {
    let rec = Arc::new(Recorded::default());
    create(&f.svc, "g", &[]).await;
    create(&f.svc, "empty", &[]).await;
    f.svc.send_message("g", SendMessage::new("old")).await.expect("send");
    f.clock.advance(30);
    f.svc.send_message("g", SendMessage::new("visible")).await.expect("send");
    f.svc.send_message("g", SendMessage { delay_seconds: Some(60), ..SendMessage::new("later") }).await.expect("send");
    let got = f.svc.receive_message("g", now_req(1)).await.expect("receive");
    assert_eq!(got[0].body, "old");
    f.clock.advance(12);
    f.svc.record_gauges().await.expect("no observer, nothing to do");
    f.svc.record_into(rec.clone());
    f.svc.record_gauges().await.expect("gauges");
    let one = |q: &str, m| rec.values(q, m);
    assert_eq!(one("g", QueueMetric::ApproximateNumberOfMessagesVisible), vec![1.0]);
    assert_eq!(one("g", QueueMetric::ApproximateNumberOfMessagesNotVisible), vec![1.0]);
    assert_eq!(one("g", QueueMetric::ApproximateNumberOfMessagesDelayed), vec![1.0]);
    assert_eq!(one("g", QueueMetric::ApproximateAgeOfOldestMessage), vec![42.0]);
    assert_eq!(one("empty", QueueMetric::ApproximateNumberOfMessagesVisible), vec![0.0]);
    assert_eq!(one("empty", QueueMetric::ApproximateAgeOfOldestMessage), vec![0.0]);
    // An empty queue is reported for six hours, then not until it holds a message again.
    f.clock.advance(6 * 3600);
    f.svc.record_gauges().await.expect("gauges");
    assert_eq!(one("empty", QueueMetric::ApproximateNumberOfMessagesVisible).len(), 2);
    f.clock.advance(60);
    f.svc.record_gauges().await.expect("gauges");
    assert_eq!(one("empty", QueueMetric::ApproximateNumberOfMessagesVisible).len(), 2, "quiet for over six hours");
    assert_eq!(one("g", QueueMetric::ApproximateNumberOfMessagesVisible).len(), 3, "a queue with messages always");
    f.svc.send_message("empty", SendMessage::new("wake up")).await.expect("send");
    f.svc.record_gauges().await.expect("gauges");
    assert_eq!(one("empty", QueueMetric::ApproximateNumberOfMessagesVisible).last(), Some(&1.0));
    assert_eq!(QueueMetric::ApproximateAgeOfOldestMessage.unit(), "Seconds");
    assert_eq!(QueueMetric::SentMessageSize.unit(), "Bytes");
}

/// Two nodes (two services) on one fresh PostgreSQL database, with one clock.
async fn two_nodes() -> Option<(Arc<QueueService>, Arc<QueueService>, Arc<ManualClock>)> {
    let url = nimbus_store::pg::testing::fresh_database().await?;
    let clock = start_clock();
    let a = QueueService::open_shared_with_clock(&url, "us-east-1", "000000000000", clock.clone()).await.expect("node a");
    let b = QueueService::open_shared_with_clock(&url, "us-east-1", "000000000000", clock.clone()).await.expect("node b");
    Some((a, b, clock))
}

#[tokio::test]
async fn nodes_receiving_at_once_never_take_one_message_twice() {
    let Some((a, b, _clock)) = two_nodes().await else { return };
    create(&a, "shared", &[("VisibilityTimeout", "300")]).await;
    for chunk in 0..30 {
        let entries =
            (0..10).map(|i| BatchEntry { id: format!("e{i}"), input: SendMessage::new(format!("m{}", chunk * 10 + i)) }).collect();
        let sent = a.send_message_batch("shared", entries).await.expect("send");
        assert_eq!(sent.successful.len(), 10, "{:?}", sent.failed);
    }
    // Four receivers on each node, taking batches of 10 until the queue is empty.
    let mut receivers = Vec::new();
    for node in [a.clone(), b.clone()] {
        for _ in 0..4 {
            let node = node.clone();
            receivers.push(tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let batch = bodies(&node, "shared", 10).await;
                    if batch.is_empty() {
                        return got;
                    }
                    got.extend(batch);
                }
            }));
        }
    }
    let mut all = Vec::new();
    let mut per_node = [0usize; 2];
    for (i, r) in receivers.into_iter().enumerate() {
        let got = r.await.expect("receiver");
        per_node[i / 4] += got.len();
        all.extend(got);
    }
    let distinct: std::collections::HashSet<&String> = all.iter().collect();
    assert_eq!(all.len(), 300, "every message received once, none twice ({} distinct)", distinct.len());
    assert_eq!(distinct.len(), 300);
    assert!(per_node[0] > 0 && per_node[1] > 0, "both nodes received: {per_node:?}");
    // What one node deletes, the other no longer counts.
    let counts = b.get_queue_attributes("shared", &["ApproximateNumberOfMessagesNotVisible".into()]).await.unwrap();
    assert_eq!(counts["ApproximateNumberOfMessagesNotVisible"], "300");
}

#[tokio::test]
async fn a_long_poll_hears_another_nodes_send() {
    let Some((a, b, _clock)) = two_nodes().await else { return };
    create(&a, "q", &[]).await;
    // Give b's announcement listener a moment to listen.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sender = a.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        sender.send_message("q", SendMessage::new("from a")).await.expect("send");
    });
    let t = Instant::now();
    let got = b.receive_message("q", ReceiveRequest { wait_time_seconds: Some(10), ..Default::default() }).await.unwrap();
    assert_eq!(got.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(), vec!["from a"]);
    assert!(t.elapsed() < Duration::from_secs(2), "woken by the other node's send: {:?}", t.elapsed());
    // And the message b received, a can delete.
    a.delete_message("q", &got[0].receipt_handle).await.expect("delete on the other node");
    let counts = b.get_queue_attributes("q", &["All".into()]).await.unwrap();
    assert_eq!((counts["ApproximateNumberOfMessages"].as_str(), counts["ApproximateNumberOfMessagesNotVisible"].as_str()), ("0", "0"));
}

#[tokio::test]
async fn a_fifo_group_is_held_by_one_node_at_a_time() {
    let Some((a, b, clock)) = two_nodes().await else { return };
    create(&a, "orders.fifo", &[("FifoQueue", "true"), ("ContentBasedDeduplication", "true"), ("VisibilityTimeout", "30")]).await;
    for i in 0..20 {
        let m = SendMessage { group_id: Some("g".into()), ..SendMessage::new(format!("{i:02}")) };
        // Sent from either node: one sequence.
        let node = if i % 2 == 0 { &a } else { &b };
        node.send_message("orders.fifo", m).await.expect("send");
    }
    // Both nodes receive at once: one gets the group's first ten, in order; the other nothing.
    let (ra, rb) = tokio::join!(bodies(&a, "orders.fifo", 10), bodies(&b, "orders.fifo", 10));
    let first: Vec<String> = (0..10).map(|i| format!("{i:02}")).collect();
    match (ra.is_empty(), rb.is_empty()) {
        (false, true) => assert_eq!(ra, first),
        (true, false) => assert_eq!(rb, first),
        other => panic!("the group was handed to both nodes or neither: {other:?} {ra:?} {rb:?}"),
    }
    // Nothing more while those are in flight, on either node.
    assert!(bodies(&a, "orders.fifo", 10).await.is_empty());
    assert!(bodies(&b, "orders.fifo", 10).await.is_empty());
    // After the visibility timeout the same ten come back first, in order.
    clock.advance(31);
    assert_eq!(bodies(&b, "orders.fifo", 10).await, first);
    // A duplicate sent on the other node within the window is the same message.
    let dup = a.send_message("orders.fifo", SendMessage { group_id: Some("g".into()), ..SendMessage::new("00") }).await.unwrap();
    let again = b.send_message("orders.fifo", SendMessage { group_id: Some("g".into()), ..SendMessage::new("00") }).await.unwrap();
    assert_eq!(dup.message_id, again.message_id);
}

//! Service-level tests: rules, targets and events through [`EventsService`] on a real
//! database, with a recording sink and a clock the tests move.

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde_json::{json, Value};

use crate::*;

const T0: i64 = 1_709_287_200_000; // 2024-03-01T10:00:00Z
const FN: &str = "arn:aws:lambda:us-east-1:000000000000:function:target";

struct ManualClock(AtomicI64);

impl ManualClock {
    fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Default)]
struct RecordingSink {
    calls: Mutex<Vec<(String, String)>>,
}

impl RecordingSink {
    fn take(&self) -> Vec<(String, Value)> {
        let calls = std::mem::take(&mut *self.calls.lock().expect("lock"));
        calls.into_iter().map(|(arn, p)| (arn, serde_json::from_str(&p).unwrap_or(Value::String(p)))).collect()
    }
}

#[async_trait::async_trait]
impl EventSink for RecordingSink {
    async fn invoke_function(&self, function_arn: &str, _rule_arn: &str, payload: Bytes) -> Result<(), String> {
        let text = String::from_utf8(payload.to_vec()).map_err(|e| e.to_string())?;
        self.calls.lock().expect("lock").push((function_arn.to_string(), text));
        Ok(())
    }
}

struct Fixture {
    svc: Arc<EventsService>,
    sink: Arc<RecordingSink>,
    clock: Arc<ManualClock>,
}

async fn open(dir: &Path, now: i64) -> Fixture {
    let sink = Arc::new(RecordingSink::default());
    let clock = Arc::new(ManualClock(AtomicI64::new(now)));
    let svc = EventsService::open_with_clock(&dir.join("events.db"), "us-east-1", "000000000000", sink.clone(), clock.clone())
        .await
        .expect("open events.db");
    Fixture { svc, sink, clock }
}

fn rule(name: &str) -> PutRule {
    PutRule { name: name.into(), ..Default::default() }
}

fn pattern_rule(name: &str, pattern: Value) -> PutRule {
    PutRule { event_pattern: Some(pattern.to_string()), ..rule(name) }
}

fn schedule_rule(name: &str, expr: &str) -> PutRule {
    PutRule { schedule_expression: Some(expr.into()), ..rule(name) }
}

fn entry(source: &str, detail_type: &str, detail: Value) -> PutEventsEntry {
    PutEventsEntry {
        source: Some(source.into()),
        detail_type: Some(detail_type.into()),
        detail: Some(detail.to_string()),
        ..Default::default()
    }
}

fn code(e: EventsError) -> &'static str {
    e.type_name()
}

#[tokio::test]
async fn rules_crud() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = open(dir.path(), T0).await;
    let arn =
        f.svc.put_rule(PutRule { description: Some("d".into()), ..pattern_rule("r1", json!({"source": ["app"]})) }).await.expect("put");
    assert_eq!(arn, "arn:aws:events:us-east-1:000000000000:rule/r1");
    let r = f.svc.describe_rule("r1", None).await.expect("describe");
    assert_eq!((r.state.as_str(), r.event_bus.as_str(), r.description.as_deref()), ("ENABLED", "default", Some("d")));
    assert_eq!(r.event_pattern.as_deref(), Some(json!({"source": ["app"]}).to_string().as_str()));
    // PutRule replaces: the description goes when not given again.
    f.svc.put_rule(pattern_rule("r1", json!({"source": ["app2"]}))).await.expect("update");
    assert_eq!(f.svc.describe_rule("r1", None).await.expect("describe").description, None);
    for n in ["a-rule", "r2", "r3", "other"] {
        f.svc.put_rule(schedule_rule(n, "rate(5 minutes)")).await.expect("put");
    }
    let page = f.svc.list_rules(Some("r"), None, None, Some(2)).await.expect("list");
    assert_eq!(page.items.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["r1", "r2"]);
    let page = f.svc.list_rules(Some("r"), None, page.next_token.as_deref(), Some(2)).await.expect("list");
    assert_eq!(page.items.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["r3"]);
    assert_eq!(page.next_token, None);
    assert_eq!(f.svc.list_rules(None, None, None, None).await.expect("list").items.len(), 5);

    f.svc.disable_rule("r2", None).await.expect("disable");
    assert_eq!(f.svc.describe_rule("r2", None).await.expect("describe").state, "DISABLED");
    f.svc.enable_rule("r2", None).await.expect("enable");
    assert_eq!(f.svc.describe_rule("r2", None).await.expect("describe").state, "ENABLED");

    f.svc.put_targets("r2", None, vec![TargetSpec::new("t1", FN)]).await.expect("targets");
    let e = f.svc.delete_rule("r2", None).await.expect_err("has targets");
    assert_eq!((code(e.clone()), e.to_string().as_str()), ("ValidationException", "Rule can't be deleted since it has targets."));
    f.svc.remove_targets("r2", None, vec!["t1".into()]).await.expect("remove");
    f.svc.delete_rule("r2", None).await.expect("delete");
    f.svc.delete_rule("r2", None).await.expect("deleting again succeeds");
    assert_eq!(code(f.svc.describe_rule("r2", None).await.expect_err("gone")), "ResourceNotFoundException");
    assert_eq!(code(f.svc.enable_rule("nope", None).await.expect_err("gone")), "ResourceNotFoundException");
    assert_eq!(code(f.svc.list_targets_by_rule("nope", None, None, None).await.expect_err("gone")), "ResourceNotFoundException");

    // Everything survives a restart.
    drop(f);
    let f = open(dir.path(), T0).await;
    assert_eq!(f.svc.list_rules(None, None, None, None).await.expect("list").items.len(), 4);
    assert_eq!(f.svc.describe_rule("r1", None).await.expect("describe").arn, arn);
}

#[tokio::test]
async fn rule_validation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = open(dir.path(), T0).await;
    let check = |r: Result<String, EventsError>, want: &str, msg: &str| {
        let e = r.expect_err(msg);
        assert_eq!(code(e.clone()), want, "{msg}: {e}");
        e.to_string()
    };
    let m = check(f.svc.put_rule(rule("none")).await, "ValidationException", "neither");
    assert_eq!(m, "Parameter(s) EventPattern or ScheduleExpression must be specified.");
    let m = check(f.svc.put_rule(schedule_rule("bad", "rate(1 minutes)")).await, "ValidationException", "bad schedule");
    assert_eq!(m, "Parameter ScheduleExpression is not valid.");
    check(f.svc.put_rule(schedule_rule("bad", "cron(0 12 * * * *)")).await, "ValidationException", "bad cron");
    let m = check(
        f.svc.put_rule(PutRule { event_pattern: Some("{\"source\": \"x\"}".into()), ..rule("bad") }).await,
        "InvalidEventPatternException",
        "bad pattern",
    );
    assert!(m.starts_with("Event pattern is not valid. Reason: "), "{m}");
    check(f.svc.put_rule(pattern_rule("bad name", json!({"a": [1]}))).await, "ValidationException", "name");
    check(f.svc.put_rule(pattern_rule(&"x".repeat(65), json!({"a": [1]}))).await, "ValidationException", "long name");
    check(
        f.svc.put_rule(PutRule { state: Some("ON".into()), ..pattern_rule("s", json!({"a": [1]})) }).await,
        "ValidationException",
        "state",
    );
    check(
        f.svc.put_rule(PutRule { event_bus: Some("nobus".into()), ..pattern_rule("s", json!({"a": [1]})) }).await,
        "ResourceNotFoundException",
        "bus",
    );
    f.svc.create_event_bus("custom", None, None).await.expect("bus");
    let m = check(
        f.svc.put_rule(PutRule { event_bus: Some("custom".into()), ..schedule_rule("s", "rate(1 hour)") }).await,
        "ValidationException",
        "schedule on custom bus",
    );
    assert_eq!(m, "ScheduleExpression is supported only on the default event bus.");
    // Both a schedule and a pattern: AWS accepts it (fires on both).
    f.svc
        .put_rule(PutRule { event_pattern: Some(json!({"source": ["x"]}).to_string()), ..schedule_rule("both", "rate(1 hour)") })
        .await
        .expect("both");
    assert_eq!(code(f.svc.list_rules(None, None, None, Some(0)).await.expect_err("limit")), "ValidationException");
    assert_eq!(code(f.svc.list_rules(None, None, Some("!!"), None).await.expect_err("token")), "ValidationException");
}

#[tokio::test]
async fn targets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = open(dir.path(), T0).await;
    f.svc.put_rule(pattern_rule("r", json!({"source": ["app"]}))).await.expect("put");
    let ids = |page: Page<TargetSpec>| page.items.into_iter().map(|t| t.id).collect::<Vec<_>>();
    let mut sqs = TargetSpec::new("q", "arn:aws:sqs:us-east-1:000000000000:queue");
    sqs.other.insert("SqsParameters".into(), json!({"MessageGroupId": "g"}));
    f.svc.put_targets("r", None, vec![TargetSpec::new("a", FN), TargetSpec::new("b", FN), sqs.clone()]).await.expect("put");
    let mut b2 = TargetSpec::new("b", FN);
    b2.input = Some("{\"x\":1}".into());
    f.svc.put_targets("r", None, vec![b2.clone(), TargetSpec::new("c", FN)]).await.expect("replace");
    let page = f.svc.list_targets_by_rule("r", None, None, None).await.expect("list");
    assert_eq!(page.items[1], b2);
    assert_eq!(page.items[2], sqs);
    assert_eq!(ids(page), ["a", "b", "q", "c"]);
    let e = f.svc.put_targets("r", None, vec![TargetSpec::new("d", FN), TargetSpec::new("e", FN)]).await.expect_err("six");
    assert_eq!(code(e), "LimitExceededException");
    f.svc.put_targets("r", None, vec![TargetSpec::new("d", FN)]).await.expect("five");
    let page = f.svc.list_targets_by_rule("r", None, None, Some(2)).await.expect("list");
    assert_eq!(ids(page.clone()), ["a", "b"]);
    let page = f.svc.list_targets_by_rule("r", None, page.next_token.as_deref(), Some(10)).await.expect("list");
    assert_eq!(ids(page), ["q", "c", "d"]);
    f.svc.remove_targets("r", None, vec!["b".into(), "nope".into()]).await.expect("remove");
    assert_eq!(ids(f.svc.list_targets_by_rule("r", None, None, None).await.expect("list")), ["a", "q", "c", "d"]);

    f.svc.put_rule(pattern_rule("r2", json!({"source": ["app"]}))).await.expect("put");
    f.svc.put_targets("r2", None, vec![TargetSpec::new("x", FN)]).await.expect("put");
    assert_eq!(f.svc.list_rule_names_by_target(FN, None, None, None).await.expect("by target").items, ["r", "r2"]);
    assert!(f
        .svc
        .list_rule_names_by_target("arn:aws:lambda:us-east-1:000000000000:function:other", None, None, None)
        .await
        .expect("by target")
        .items
        .is_empty());

    // Bad targets are refused whole.
    let bad = |t: TargetSpec| {
        let svc = f.svc.clone();
        async move { code(svc.put_targets("r2", None, vec![t]).await.expect_err("bad target")) }
    };
    let mut t = TargetSpec::new("t", FN);
    t.input = Some("not json".into());
    assert_eq!(bad(t).await, "ValidationException");
    let mut t = TargetSpec::new("t", FN);
    t.input_path = Some("detail".into());
    assert_eq!(bad(t).await, "ValidationException");
    let mut t = TargetSpec::new("t", FN);
    t.input = Some("{}".into());
    t.input_path = Some("$.detail".into());
    assert_eq!(bad(t).await, "ValidationException");
    assert_eq!(bad(TargetSpec::new("bad id", FN)).await, "ValidationException");
    assert_eq!(bad(TargetSpec::new("t", "function:x")).await, "ValidationException");
    assert_eq!(
        code(f.svc.put_targets("nope", None, vec![TargetSpec::new("t", FN)]).await.expect_err("no rule")),
        "ResourceNotFoundException"
    );

    // Targets survive a restart, in order.
    drop(f);
    let f = open(dir.path(), T0).await;
    assert_eq!(ids(f.svc.list_targets_by_rule("r", None, None, None).await.expect("list")), ["a", "q", "c", "d"]);
}

#[tokio::test]
async fn put_events_delivers_to_matching_enabled_lambda_targets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = open(dir.path(), T0).await;
    f.svc.put_rule(pattern_rule("orders", json!({"source": ["shop"], "detail": {"total": [{"numeric": [">", 100]}]}}))).await.expect("put");
    f.svc.put_rule(pattern_rule("all-shop", json!({"source": [{"prefix": "sho"}]}))).await.expect("put");
    f.svc.put_rule(PutRule { state: Some("DISABLED".into()), ..pattern_rule("off", json!({"source": ["shop"]})) }).await.expect("put");
    f.svc
        .put_targets("orders", None, vec![TargetSpec::new("fn", FN), TargetSpec::new("q", "arn:aws:sqs:us-east-1:000000000000:q")])
        .await
        .expect("t");
    let mut path = TargetSpec::new("path", "arn:aws:lambda:us-east-1:000000000000:function:p");
    path.input_path = Some("$.detail".into());
    let mut constant = TargetSpec::new("const", "arn:aws:lambda:us-east-1:000000000000:function:c");
    constant.input = Some("{\"fixed\":true}".into());
    let mut tr = TargetSpec::new("tr", "arn:aws:lambda:us-east-1:000000000000:function:t:live");
    tr.input_transformer = Some(InputTransformerSpec {
        input_paths_map: [("total".to_string(), "$.detail.total".to_string())].into(),
        input_template: "{\"t\": <total>, \"rule\": <aws.events.rule-name>}".into(),
    });
    f.svc.put_targets("all-shop", None, vec![path, constant, tr]).await.expect("t");
    f.svc.put_targets("off", None, vec![TargetSpec::new("fn", FN)]).await.expect("t");

    let results = f.svc.put_events(vec![entry("shop", "Order", json!({"total": 150}))]).await.expect("put events");
    let [PutEventsResult::Accepted { event_id }] = results.as_slice() else { panic!("{results:?}") };
    let calls = f.sink.take();
    let arns: Vec<&str> = calls.iter().map(|(a, _)| a.as_str()).collect();
    // Rules in name order, targets in their order; the SQS target and the disabled rule get nothing.
    assert_eq!(
        arns,
        [
            "arn:aws:lambda:us-east-1:000000000000:function:p",
            "arn:aws:lambda:us-east-1:000000000000:function:c",
            "arn:aws:lambda:us-east-1:000000000000:function:t:live",
            FN,
        ]
    );
    assert_eq!(calls[0].1, json!({"total": 150}));
    assert_eq!(calls[1].1, json!({"fixed": true}));
    assert_eq!(calls[2].1, json!({"t": 150, "rule": "all-shop"}));
    let event = &calls[3].1;
    assert_eq!(event["id"], event_id.as_str());
    assert_eq!(event["version"], "0");
    assert_eq!(event["detail-type"], "Order");
    assert_eq!(event["source"], "shop");
    assert_eq!(event["account"], "000000000000");
    assert_eq!(event["region"], "us-east-1");
    assert_eq!(event["time"], "2024-03-01T10:00:00Z");
    assert_eq!(event["resources"], json!([]));
    assert_eq!(event["detail"], json!({"total": 150}));
    let keys: Vec<&String> = event.as_object().expect("object").keys().collect();
    assert_eq!(keys.len(), 9);

    // Below the threshold only the prefix rule matches; another source matches nothing.
    f.svc
        .put_events(vec![entry("shop", "Order", json!({"total": 5})), entry("elsewhere", "Order", json!({"total": 500}))])
        .await
        .expect("put");
    assert_eq!(f.sink.take().len(), 3);

    // Disabling stops delivery; enabling resumes it.
    f.svc.disable_rule("all-shop", None).await.expect("disable");
    f.svc.put_events(vec![entry("shop", "Order", json!({"total": 5}))]).await.expect("put");
    assert!(f.sink.take().is_empty());

    // Entry errors.
    let results = f
        .svc
        .put_events(vec![
            PutEventsEntry { source: Some("shop".into()), detail: Some("{}".into()), ..Default::default() },
            entry("shop", "x", json!(["not an object"])),
            PutEventsEntry { detail: Some("{".into()), ..entry("shop", "x", json!({})) },
            entry("aws.ec2", "x", json!({})),
            PutEventsEntry { event_bus: Some("nobus".into()), ..entry("shop", "x", json!({})) },
            PutEventsEntry { time_ms: Some(T0 - 3_600_000), ..entry("shop", "x", json!({})) },
        ])
        .await
        .expect("put");
    let codes: Vec<&str> = results
        .iter()
        .map(|r| match r {
            PutEventsResult::Failed { error_code, .. } => error_code.as_str(),
            PutEventsResult::Accepted { .. } => "ok",
        })
        .collect();
    assert_eq!(
        codes,
        ["InvalidArgument", "MalformedDetail", "MalformedDetail", "NotAuthorizedForSourceException", "ResourceNotFoundException", "ok"]
    );
    let PutEventsResult::Failed { error_message, .. } = &results[0] else { panic!() };
    assert_eq!(error_message, "Parameter DetailType is not valid. Reason: DetailType is a required argument.");
    let too_many: Vec<PutEventsEntry> = (0..11).map(|_| entry("shop", "x", json!({}))).collect();
    assert_eq!(code(f.svc.put_events(too_many).await.expect_err("11")), "ValidationException");
    let big = entry("shop", "x", json!({"big": "x".repeat(300 * 1024)}));
    assert_eq!(code(f.svc.put_events(vec![big]).await.expect_err("big")), "ValidationException");
}

#[tokio::test]
async fn custom_buses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = open(dir.path(), T0).await;
    let arn = f.svc.create_event_bus("orders", Some("d".into()), None).await.expect("create");
    assert_eq!(arn, "arn:aws:events:us-east-1:000000000000:event-bus/orders");
    assert_eq!(code(f.svc.create_event_bus("orders", None, None).await.expect_err("dup")), "ResourceAlreadyExistsException");
    assert_eq!(code(f.svc.create_event_bus("default", None, None).await.expect_err("dup")), "ResourceAlreadyExistsException");
    let names = |p: Page<BusInfo>| p.items.into_iter().map(|b| b.name).collect::<Vec<_>>();
    assert_eq!(names(f.svc.list_event_buses(None, None, None).await.expect("list")), ["default", "orders"]);
    let rule_arn =
        f.svc.put_rule(PutRule { event_bus: Some(arn.clone()), ..pattern_rule("r", json!({"source": ["s"]})) }).await.expect("put");
    assert_eq!(rule_arn, "arn:aws:events:us-east-1:000000000000:rule/orders/r");
    f.svc.put_targets("r", Some("orders"), vec![TargetSpec::new("t", FN)]).await.expect("t");
    // Events go to the bus they name.
    f.svc.put_events(vec![entry("s", "x", json!({}))]).await.expect("put");
    assert!(f.sink.take().is_empty());
    f.svc.put_events(vec![PutEventsEntry { event_bus: Some("orders".into()), ..entry("s", "x", json!({})) }]).await.expect("put");
    assert_eq!(f.sink.take().len(), 1);
    assert_eq!(code(f.svc.describe_rule("r", None).await.expect_err("other bus")), "ResourceNotFoundException");
    assert_eq!(f.svc.describe_event_bus(Some("orders")).await.expect("describe").description.as_deref(), Some("d"));
    assert_eq!(code(f.svc.delete_event_bus("default").await.expect_err("default")), "ValidationException");
    f.svc.delete_event_bus("orders").await.expect("delete");
    assert_eq!(names(f.svc.list_event_buses(None, None, None).await.expect("list")), ["default"]);
    assert_eq!(code(f.svc.describe_rule("r", Some("orders")).await.expect_err("gone")), "ResourceNotFoundException");
}

#[tokio::test]
async fn test_event_pattern() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = open(dir.path(), T0).await;
    let event = json!({"id": "1", "account": "000000000000", "source": "s", "time": "2024-01-01T00:00:00Z", "region": "us-east-1",
                       "resources": [], "detail-type": "x", "detail": {"a": 1}})
    .to_string();
    assert_eq!(f.svc.test_event_pattern(&json!({"detail": {"a": [1]}}).to_string(), &event), Ok(true));
    assert_eq!(f.svc.test_event_pattern(&json!({"detail": {"a": [2]}}).to_string(), &event), Ok(false));
    assert_eq!(code(f.svc.test_event_pattern("{\"a\": 1}", &event).expect_err("bad pattern")), "InvalidEventPatternException");
    assert_eq!(
        code(f.svc.test_event_pattern(&json!({"a": [1]}).to_string(), "{\"detail\": {}}").expect_err("bad event")),
        "ValidationException"
    );
}

const MINUTE: i64 = 60_000;

#[tokio::test]
async fn schedules_fire_once_per_period() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = open(dir.path(), T0 + 15_000).await;
    let arn = f.svc.put_rule(schedule_rule("every-minute", "cron(* * * * ? *)")).await.expect("put");
    f.svc.put_targets("every-minute", None, vec![TargetSpec::new("fn", FN)]).await.expect("t");
    let five = f.svc.put_rule(schedule_rule("five", "rate(5 minutes)")).await.expect("put");
    f.svc.put_targets("five", None, vec![TargetSpec::new("fn", FN)]).await.expect("t");
    assert_eq!(f.svc.next_fire_ms(), Some(T0 + MINUTE));

    assert!(f.svc.tick(T0 + MINUTE - 1).await.expect("tick").is_empty());
    let fired = f.svc.tick(T0 + MINUTE + 300).await.expect("tick");
    assert_eq!(fired, vec![Fired { rule_arn: arn.clone(), time_ms: T0 + MINUTE, skipped_missed: false }]);
    let calls = f.sink.take();
    assert_eq!(calls.len(), 1);
    let e = &calls[0].1;
    assert_eq!(e["detail-type"], "Scheduled Event");
    assert_eq!(e["source"], "aws.events");
    assert_eq!(e["time"], "2024-03-01T10:01:00Z");
    assert_eq!(e["resources"], json!([arn]));
    assert_eq!(e["detail"], json!({}));
    assert_eq!(e["account"], "000000000000");
    assert_eq!(e["region"], "us-east-1");
    assert_eq!(serde_json::to_string(e).expect("json").len(), calls[0].1.to_string().len());
    // The same minute never fires twice.
    assert!(f.svc.tick(T0 + MINUTE + 900).await.expect("tick").is_empty());
    assert!(f.sink.take().is_empty());
    // The rate rule fires five minutes after it was made.
    let fired = f.svc.tick(T0 + 5 * MINUTE + 15_000).await.expect("tick");
    let rules: Vec<(&str, i64)> = fired.iter().map(|f| (f.rule_arn.as_str(), f.time_ms)).collect();
    assert_eq!(rules, [(arn.as_str(), T0 + 5 * MINUTE), (five.as_str(), T0 + 5 * MINUTE + 15_000)]);
    assert!(fired[0].skipped_missed, "minutes 2-4 were missed and collapse into minute 5");

    // Disabled rules do not fire; enabling starts afresh from now.
    f.svc.disable_rule("five", None).await.expect("disable");
    let fired = f.svc.tick(T0 + 10 * MINUTE + 15_000).await.expect("tick");
    assert_eq!(fired.iter().map(|f| f.rule_arn.as_str()).collect::<Vec<_>>(), [arn.as_str()]);
    f.clock.set(T0 + 11 * MINUTE);
    f.svc.enable_rule("five", None).await.expect("enable");
    assert_eq!(f.svc.describe_rule("five", None).await.expect("describe").state, "ENABLED");
    let fired = f.svc.tick(T0 + 16 * MINUTE).await.expect("tick");
    assert_eq!(
        fired.iter().map(|f| (f.rule_arn.as_str(), f.time_ms)).collect::<Vec<_>>(),
        [(arn.as_str(), T0 + 16 * MINUTE), (five.as_str(), T0 + 16 * MINUTE)]
    );
}

#[tokio::test]
async fn restart_never_fires_a_period_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = open(dir.path(), T0 + 15_000).await;
    let arn = f.svc.put_rule(schedule_rule("every-minute", "cron(* * * * ? *)")).await.expect("put");
    f.svc.put_targets("every-minute", None, vec![TargetSpec::new("fn", FN)]).await.expect("t");
    assert_eq!(f.svc.tick(T0 + MINUTE + 100).await.expect("tick").len(), 1);
    drop(f);

    // Restarted within the same minute: nothing is due.
    let f = open(dir.path(), T0 + MINUTE + 200).await;
    assert_eq!(f.svc.next_fire_ms(), Some(T0 + 2 * MINUTE));
    assert!(f.svc.tick(T0 + MINUTE + 200).await.expect("tick").is_empty());
    assert_eq!(f.svc.tick(T0 + 2 * MINUTE).await.expect("tick").len(), 1);
    assert_eq!(f.sink.take().len(), 1);
    drop(f);

    // Down for ten minutes: one fire on start, for the most recent missed minute, not a burst.
    let f = open(dir.path(), T0 + 12 * MINUTE + 30_000).await;
    let fired = f.svc.tick(T0 + 12 * MINUTE + 30_000).await.expect("tick");
    assert_eq!(fired, vec![Fired { rule_arn: arn, time_ms: T0 + 12 * MINUTE, skipped_missed: true }]);
    let calls = f.sink.take();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].1["time"], "2024-03-01T10:12:00Z");
    assert_eq!(f.svc.next_fire_ms(), Some(T0 + 13 * MINUTE));
    assert!(f.svc.tick(T0 + 12 * MINUTE + 59_000).await.expect("tick").is_empty());
}

#[tokio::test]
async fn updating_a_rule_keeps_or_restarts_its_schedule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = open(dir.path(), T0).await;
    f.svc.put_rule(schedule_rule("r", "rate(10 minutes)")).await.expect("put");
    assert_eq!(f.svc.next_fire_ms(), Some(T0 + 10 * MINUTE));
    f.clock.set(T0 + 3 * MINUTE);
    // Same schedule, new description: the rate keeps its place.
    f.svc.put_rule(PutRule { description: Some("x".into()), ..schedule_rule("r", "rate(10 minutes)") }).await.expect("put");
    assert_eq!(f.svc.next_fire_ms(), Some(T0 + 10 * MINUTE));
    // A new schedule starts from now.
    f.svc.put_rule(schedule_rule("r", "rate(2 minutes)")).await.expect("put");
    assert_eq!(f.svc.next_fire_ms(), Some(T0 + 5 * MINUTE));
    // A rule turned into a pattern-only rule stops firing.
    f.svc.put_rule(pattern_rule("r", json!({"source": ["x"]}))).await.expect("put");
    assert_eq!(f.svc.next_fire_ms(), None);
}

#[tokio::test]
async fn scheduler_task_fires_with_the_real_clock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = Arc::new(RecordingSink::default());
    let svc = EventsService::open(&dir.path().join("events.db"), "us-east-1", "000000000000", sink.clone()).await.expect("open");
    let task = tokio::spawn(svc.clone().run_scheduler());
    svc.put_rule(schedule_rule("soon", "rate(1 minute)")).await.expect("put");
    svc.put_targets("soon", None, vec![TargetSpec::new("fn", FN)]).await.expect("t");
    // Pull the first fire close instead of waiting a minute.
    let soon = SystemClock.now_ms() + 200;
    {
        let mut st = svc.shared.state.write().expect("lock");
        st.rules.values_mut().for_each(|r| r.next_fire_ms = Some(soon));
    }
    svc.schedule_changed.notify_one();
    for _ in 0..50 {
        if !sink.calls.lock().expect("lock").is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(sink.take().len(), 1);
    assert!(svc.next_fire_ms().expect("next") >= soon + MINUTE);
    task.abort();
}

/// AWS's sample event (EventBridge user guide, "Amazon EventBridge events"): the envelope
/// Nimbus writes for the same values is the sample, key order included, and Rust functions
/// read it with `aws_lambda_events`.
#[tokio::test]
async fn envelopes_are_aws_sample_events() {
    const SAMPLE: &str = r#"{"version":"0","id":"6a7e8feb-b491-4cf7-a9f1-bf3703467718","detail-type":"EC2 Instance State-change Notification","source":"aws.ec2","account":"111122223333","time":"2017-12-22T18:43:48Z","region":"us-west-1","resources":["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"],"detail":{"instance-id":"i-1234567890abcdef0","state":"terminated"}}"#;
    let dir = tempfile::tempdir().expect("tempdir");
    let svc = EventsService::open(&dir.path().join("events.db"), "us-west-1", "111122223333", Arc::new(RecordingSink::default()))
        .await
        .expect("open");
    let sample: Value = serde_json::from_str(SAMPLE).expect("json");
    let resources = vec!["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0".to_string()];
    let event = svc.make_event(
        "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "EC2 Instance State-change Notification",
        "aws.ec2",
        "2017-12-22T18:43:48Z",
        &resources,
        &sample["detail"],
    );
    assert_eq!(event.text, SAMPLE);
    let read: aws_lambda_events::event::cloudwatch_events::CloudWatchEvent =
        serde_json::from_str(&event.text).expect("aws_lambda_events reads it");
    assert_eq!((read.source.as_deref(), read.detail_type.as_deref()), (Some("aws.ec2"), Some("EC2 Instance State-change Notification")));
}

/// Records every `AWS/Events` datapoint, with its dimensions as text.
#[derive(Default)]
struct Counted(Mutex<Vec<(EventsMetric, String, f64)>>);

impl EventsMetrics for Counted {
    fn record(&self, metric: EventsMetric, dimensions: &[(&'static str, &str)], value: f64, _timestamp_ms: i64) {
        let dims = dimensions.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
        self.0.lock().expect("lock").push((metric, dims, value));
    }
}

impl Counted {
    fn sum(&self, metric: EventsMetric, dims: &str) -> f64 {
        self.0.lock().expect("lock").iter().filter(|(m, d, _)| *m == metric && d == dims).map(|(_, _, v)| v).sum()
    }
}

#[tokio::test]
async fn matches_triggers_and_invocations_are_counted_by_rule_and_account() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = open(dir.path(), T0).await;
    let counted = Arc::new(Counted::default());
    f.svc.record_into(counted.clone());
    f.svc.create_event_bus("orders", None, None).await.expect("bus");
    f.svc.put_rule(pattern_rule("shop", json!({"source": ["shop"]}))).await.expect("rule");
    f.svc.put_rule(pattern_rule("also", json!({"source": ["shop"]}))).await.expect("rule");
    f.svc
        .put_rule(PutRule { event_bus: Some("orders".into()), ..pattern_rule("custom", json!({"source": ["shop"]})) })
        .await
        .expect("rule");
    f.svc.put_targets("shop", None, vec![TargetSpec::new("a", FN), TargetSpec::new("b", FN)]).await.expect("targets");
    f.svc.put_targets("custom", Some("orders"), vec![TargetSpec::new("a", FN)]).await.expect("targets");
    let shop = entry("shop", "Order", json!({}));
    let on_orders = PutEventsEntry { event_bus: Some("orders".into()), ..entry("shop", "Order", json!({})) };
    f.svc.put_events(vec![shop.clone(), shop, entry("other", "Order", json!({})), on_orders]).await.expect("put events");

    assert_eq!(counted.sum(EventsMetric::MatchedEvents, ""), 3.0, "each matching event once, whatever matched it");
    assert_eq!(counted.sum(EventsMetric::MatchedEvents, "RuleName=shop"), 2.0);
    assert_eq!(counted.sum(EventsMetric::TriggeredRules, "RuleName=shop"), 2.0);
    assert_eq!(counted.sum(EventsMetric::TriggeredRules, "RuleName=also"), 2.0, "a rule without targets is triggered too");
    assert_eq!(counted.sum(EventsMetric::TriggeredRules, "EventBusName=orders,RuleName=custom"), 1.0);
    assert_eq!(counted.sum(EventsMetric::Invocations, "RuleName=shop"), 4.0, "two targets, two events");
    assert_eq!(counted.sum(EventsMetric::Invocations, "RuleName=also"), 0.0);
    assert_eq!(counted.sum(EventsMetric::Invocations, "EventBusName=orders,RuleName=custom"), 1.0);
    assert_eq!(counted.sum(EventsMetric::Invocations, ""), 5.0);
    assert_eq!(counted.sum(EventsMetric::FailedInvocations, "RuleName=shop"), 0.0);

    f.svc.put_rule(schedule_rule("tick", "rate(1 minute)")).await.expect("schedule");
    f.svc.put_targets("tick", None, vec![TargetSpec::new("a", FN)]).await.expect("targets");
    f.clock.0.fetch_add(61_000, std::sync::atomic::Ordering::SeqCst);
    f.svc.tick(f.clock.now_ms()).await.expect("tick");
    assert_eq!(counted.sum(EventsMetric::TriggeredRules, "RuleName=tick"), 1.0);
    assert_eq!(counted.sum(EventsMetric::Invocations, "RuleName=tick"), 1.0);
}

/// A sink that refuses every event.
struct Refusing;

#[async_trait::async_trait]
impl EventSink for Refusing {
    async fn invoke_function(&self, _function_arn: &str, _rule_arn: &str, _payload: Bytes) -> Result<(), String> {
        Err("not allowed".into())
    }
}

#[tokio::test]
async fn a_refused_target_is_a_failed_invocation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let svc = EventsService::open(&dir.path().join("events.db"), "us-east-1", "000000000000", Arc::new(Refusing)).await.expect("open");
    let counted = Arc::new(Counted::default());
    svc.record_into(counted.clone());
    svc.put_rule(pattern_rule("shop", json!({"source": ["shop"]}))).await.expect("rule");
    svc.put_targets("shop", None, vec![TargetSpec::new("a", FN)]).await.expect("targets");
    svc.put_events(vec![entry("shop", "Order", json!({}))]).await.expect("put events");
    assert_eq!(counted.sum(EventsMetric::Invocations, "RuleName=shop"), 1.0);
    assert_eq!(counted.sum(EventsMetric::FailedInvocations, "RuleName=shop"), 1.0);
}

/// Several nodes on one PostgreSQL database.
mod shared;

//! Nodes sharing one PostgreSQL database (`--store postgres://…`): each node's service sees
//! the others' buses, rules and targets within a second, and scheduled rules fire once per
//! period across the nodes, whichever of them tick. Skipped without `NIMBUS_TEST_POSTGRES`
//! (outside CI), as `nimbus_store::pg::testing` says.

use std::time::Duration;

use super::*;

const ACCOUNT: &str = "000000000000";

/// One node's service on the database at `url`, with a clock of its own.
async fn node(url: &str, now: i64) -> Fixture {
    let sink = Arc::new(RecordingSink::default());
    let clock = Arc::new(ManualClock(AtomicI64::new(now)));
    let svc = EventsService::open_shared_with_clock(url, "us-east-1", ACCOUNT, sink.clone(), clock.clone()).await.expect("open_shared");
    Fixture { svc, sink, clock }
}

/// Waits up to a second for `check` to hold on `svc`.
async fn within_a_second(what: &str, svc: &EventsService, check: impl AsyncFn(&EventsService) -> bool) {
    let started = tokio::time::Instant::now();
    while !check(svc).await {
        assert!(started.elapsed() < Duration::from_secs(1), "not within a second: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn rules_and_targets_are_the_nodes() {
    let Some(url) = nimbus_store::pg::testing::fresh_database().await else { return };
    let (a, b) = (node(&url, T0).await, node(&url, T0).await);
    assert_eq!(b.svc.describe_event_bus(None).await.expect("the default bus").name, DEFAULT_BUS);

    a.svc.put_rule(pattern_rule("r1", json!({"source": ["app"]}))).await.expect("put");
    a.svc.put_targets("r1", None, vec![TargetSpec::new("fn", FN)]).await.expect("targets");
    within_a_second("b sees a's rule and target", &b.svc, async |svc| {
        svc.list_targets_by_rule("r1", None, None, None).await.is_ok_and(|p| p.items.len() == 1)
    })
    .await;
    assert_eq!(b.svc.describe_rule("r1", None).await.expect("describe").event_pattern, Some(json!({"source": ["app"]}).to_string()));
    // An event put on b reaches the target a put.
    let r = b.svc.put_events(vec![entry("app", "t", json!({"n": 1}))]).await.expect("put_events");
    assert!(matches!(r[..], [PutEventsResult::Accepted { .. }]), "{r:?}");
    let calls = b.sink.take();
    assert_eq!(calls.iter().map(|(arn, e)| (arn.as_str(), e["detail"]["n"].as_i64())).collect::<Vec<_>>(), [(FN, Some(1))]);
    assert!(a.sink.take().is_empty());

    // Changes go both ways: b's bus and rule reach a.
    b.svc.create_event_bus("orders", None, None).await.expect("bus");
    b.svc.put_rule(PutRule { event_bus: Some("orders".into()), ..pattern_rule("r2", json!({"source": ["o"]})) }).await.expect("put");
    within_a_second("a sees b's bus and rule", &a.svc, async |svc| svc.describe_rule("r2", Some("orders")).await.is_ok()).await;

    // Deletions too.
    a.svc.remove_targets("r1", None, vec!["fn".into()]).await.expect("remove");
    a.svc.delete_rule("r1", None).await.expect("delete");
    b.svc.delete_event_bus("orders").await.expect("delete bus");
    within_a_second("b forgets r1", &b.svc, async |svc| svc.describe_rule("r1", None).await.is_err()).await;
    within_a_second("a forgets orders", &a.svc, async |svc| svc.describe_event_bus(Some("orders")).await.is_err()).await;
    b.svc.put_events(vec![entry("app", "t", json!({}))]).await.expect("put_events");
    assert!(b.sink.take().is_empty());
}

/// Fires delivered by both nodes, as (node, scheduled time).
fn fires(nodes: &[&Fixture]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        out.extend(n.sink.take().into_iter().map(|(_, e)| (i, e["time"].as_str().unwrap_or_default().to_string())));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_period_fires_once_across_nodes() {
    let Some(url) = nimbus_store::pg::testing::fresh_database().await else { return };
    let (a, b) = (node(&url, T0).await, node(&url, T0).await);
    a.svc.put_rule(schedule_rule("tick", "rate(1 minute)")).await.expect("put");
    a.svc.put_targets("tick", None, vec![TargetSpec::new("fn", FN)]).await.expect("targets");
    within_a_second("b has the schedule", &b.svc, async |svc| {
        svc.list_targets_by_rule("tick", None, None, None).await.is_ok_and(|p| p.items.len() == 1)
    })
    .await;
    assert_eq!(b.svc.next_fire_ms(), Some(T0 + MINUTE));

    // Both nodes tick at the same instants: one of them fires each minute.
    let minute = |k: i64| format_time(T0 + k * MINUTE);
    for k in 1..=5 {
        let now = T0 + k * MINUTE + 100;
        let (x, y) = tokio::join!(a.svc.tick(now), b.svc.tick(now));
        let fired: Vec<_> = x.expect("tick").into_iter().chain(y.expect("tick")).map(|f| f.time_ms).collect();
        assert_eq!(fired, [T0 + k * MINUTE], "minute {k}");
        assert_eq!(fires(&[&a, &b]).into_iter().map(|(_, t)| t).collect::<Vec<_>>(), [minute(k)]);
        // Ticking again in the same minute fires nothing anywhere.
        assert!(a.svc.tick(now + 500).await.expect("tick").is_empty() && b.svc.tick(now + 500).await.expect("tick").is_empty());
        assert_eq!(a.svc.next_fire_ms(), Some(T0 + (k + 1) * MINUTE));
    }

    // a is down for two minutes: b fires them alone.
    for k in 6..=7 {
        assert_eq!(b.svc.tick(T0 + k * MINUTE + 100).await.expect("tick").len(), 1);
    }
    assert_eq!(fires(&[&a, &b]), [(1, minute(6)), (1, minute(7))]);
    // a is back, its next fire still minute 6: minute 8 fires once, and the missed minutes
    // are not fired again by a.
    let now = T0 + 8 * MINUTE + 100;
    let (x, y) = tokio::join!(a.svc.tick(now), b.svc.tick(now));
    assert_eq!(x.expect("tick").len() + y.expect("tick").len(), 1);
    assert_eq!(fires(&[&a, &b]).into_iter().map(|(_, t)| t).collect::<Vec<_>>(), [minute(8)]);

    // A node that reloads (its next fire times back to where the database has them) and a
    // node just started never fire a minute again.
    b.svc.reload().await.expect("reload");
    let c = node(&url, T0 + 8 * MINUTE + 200).await;
    for svc in [&a.svc, &b.svc, &c.svc] {
        assert!(svc.tick(T0 + 8 * MINUTE + 300).await.expect("tick").is_empty());
    }
    let now = T0 + 9 * MINUTE + 100;
    let (x, y, z) = tokio::join!(a.svc.tick(now), b.svc.tick(now), c.svc.tick(now));
    assert_eq!(x.expect("tick").len() + y.expect("tick").len() + z.expect("tick").len(), 1);
    assert_eq!(fires(&[&a, &b, &c]).into_iter().map(|(_, t)| t).collect::<Vec<_>>(), [minute(9)]);

    // Deleted on a, gone from b.
    a.svc.remove_targets("tick", None, vec!["fn".into()]).await.expect("remove");
    a.svc.delete_rule("tick", None).await.expect("delete");
    within_a_second("b forgets the rule", &b.svc, async |svc| svc.describe_rule("tick", None).await.is_err()).await;
}

//! The shared metric store against a real PostgreSQL (`NIMBUS_TEST_POSTGRES`): two stores on
//! one database stand for two nodes.

use std::sync::Arc;

use crate::alarms::{Alarm, ALARM, INSUFFICIENT_DATA};
use crate::cloudwatch::{Aggregate, Datum, MetricStore, SeriesKey};

const ACCOUNT: &str = "000000000042";

async fn nodes() -> Option<(Arc<MetricStore>, Arc<MetricStore>)> {
    let url = nimbus_store::pg::testing::fresh_database().await?;
    Some((MetricStore::open_shared(&url, ACCOUNT).await.unwrap(), MetricStore::open_shared(&url, ACCOUNT).await.unwrap()))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn key() -> SeriesKey {
    SeriesKey::new("App", "Latency", vec![("Server".into(), "a".into())])
}

async fn within_a_second(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "not within a second: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datapoints_of_every_node_are_summed() {
    let Some((a, b)) = nodes().await else { return };
    let now = now_ms();
    // The server's own datapoints, in memory on each node until flushed, and a durable put.
    for v in [5.0, 9.0] {
        a.record(key(), "Milliseconds", now, Aggregate::of(v, 1.0));
    }
    b.record(key(), "Milliseconds", now, Aggregate::of(7.0, 1.0));
    a.flush(now).await.unwrap();
    b.flush(now).await.unwrap();
    let datum = |v: f64, high_resolution: bool| Datum {
        key: key(),
        unit: "Milliseconds".into(),
        timestamp_ms: now,
        values: Aggregate::of(v, 1.0),
        high_resolution,
    };
    b.put(vec![datum(3.0, true)]).await.unwrap();
    for node in [&a, &b] {
        let periods = node.query(key(), now - 120_000, now + 60_000, 60, None, true).await.unwrap();
        assert_eq!(periods.len(), 1, "{periods:?}");
        let v = &periods[0].values;
        assert_eq!((v.count, v.sum, v.min, v.max), (4.0, 24.0, 3.0, 9.0));
        let p50 = v.statistic("p50").unwrap();
        assert!((p50 - 5.0).abs() < 0.1, "p50 {p50}");
        // One-second datapoints: only the high-resolution put.
        let fine = node.query(key(), now - 10_000, now + 10_000, 1, None, false).await.unwrap();
        assert_eq!(fine.iter().map(|p| p.values.sum).sum::<f64>(), 3.0);
        assert_eq!(node.list(Some("App".into()), None, vec![("Server".into(), None)]).await.unwrap(), [key()]);
    }
}

fn alarm(name: &str) -> Alarm {
    Alarm {
        name: name.into(),
        arn: format!("arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:{name}"),
        namespace: "App".into(),
        metric_name: "Latency".into(),
        dimensions: vec![("Server".into(), "a".into())],
        statistic: Some("Maximum".into()),
        period: 60,
        evaluation_periods: 1,
        threshold: 10.0,
        comparison: "GreaterThanThreshold".into(),
        state: INSUFFICIENT_DATA.into(),
        configuration_updated_ms: now_ms(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_are_every_nodes_and_one_node_evaluates_them() {
    let Some((a, b)) = nodes().await else { return };
    a.put_alarm(alarm("slow")).await.unwrap();
    within_a_second("b knows the alarm", || b.alarms().len() == 1).await;
    let minute = (now_ms() / 60_000 - 1) * 60_000;
    let evaluated_at = minute + 60_000 + 5_000;
    // a evaluates first (nothing to say yet): it holds the evaluator's lease.
    assert!(a.evaluate_alarms(evaluated_at).await.unwrap().is_empty());
    // A breaching minute, recorded on b: b, not the evaluator, leaves the alarm alone.
    b.record(key(), "Milliseconds", minute + 1_000, Aggregate::of(50.0, 1.0));
    b.flush(now_ms()).await.unwrap();
    assert!(b.evaluate_alarms(evaluated_at).await.unwrap().is_empty(), "b is not the evaluator");
    assert_eq!(b.alarms()[0].state, INSUFFICIENT_DATA);
    let on_a = a.evaluate_alarms(evaluated_at).await.unwrap();
    assert_eq!(on_a.iter().map(|(al, old)| (al.state.as_str(), old.as_str())).collect::<Vec<_>>(), [(ALARM, INSUFFICIENT_DATA)]);
    within_a_second("both see ALARM", || a.alarms()[0].state == ALARM && b.alarms()[0].state == ALARM).await;
    // A configuration change made on the other node keeps the state stored, even from a
    // node whose mirror was behind.
    let mut changed = alarm("slow");
    changed.threshold = 100.0;
    b.put_alarm(changed).await.unwrap();
    within_a_second("a sees the new threshold", || a.alarms()[0].threshold == 100.0).await;
    assert_eq!(a.alarms()[0].state, ALARM);
    // Disabling actions on a changes only that.
    a.set_actions_enabled(&["slow".to_string()], false).await.unwrap();
    within_a_second("b sees actions disabled", || !b.alarms()[0].actions_enabled && b.alarms()[0].threshold == 100.0).await;
    // The history is every node's.
    let history = b.history(Some("slow".into()), None, 0, i64::MAX).await.unwrap();
    let kinds: Vec<&str> = history.iter().map(|h| h.kind.as_str()).collect();
    assert!(kinds.contains(&"StateUpdate") && kinds.iter().filter(|k| **k == "ConfigurationUpdate").count() == 2, "{kinds:?}");
    // The evaluator resigns: the other takes the next evaluation at once.
    let (leader, other) = (&a, &b);
    leader.resign().await;
    let mut back = alarm("slow");
    back.threshold = 1_000.0;
    leader.put_alarm(back).await.unwrap();
    within_a_second("the other sees the threshold", || other.alarms()[0].threshold == 1_000.0).await;
    let moved = other.evaluate_alarms(evaluated_at).await.unwrap();
    assert_eq!(moved.iter().map(|(al, _)| al.state.as_str()).collect::<Vec<_>>(), ["OK"]);
    assert!(leader.evaluate_alarms(evaluated_at).await.unwrap().is_empty(), "the lease is the other's now");
    // Deleted on one node, gone on the other.
    assert!(other.delete_alarms(vec!["slow".into()]).await.unwrap().is_empty());
    within_a_second("gone everywhere", || leader.alarms().is_empty()).await;
}

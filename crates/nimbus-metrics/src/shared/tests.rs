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

/// The partitions of a datapoints table in the account's schema, by name.
async fn partitions(url: &str, parent: &str) -> Vec<String> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let schema = nimbus_store::pg::schema_of(ACCOUNT).unwrap();
    let rows = client
        .query(
            "SELECT c.relname::TEXT FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
             WHERE p.relname = $1 AND p.relnamespace = $2::TEXT::regnamespace ORDER BY 1",
            &[&parent, &schema],
        )
        .await
        .unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

/// Retention drops whole partitions: a day's one-minute datapoints once the day is past 15
/// days, an hour's one-second ones once the hour is past 3 hours; the series goes with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_drops_partitions() {
    let Some(url) = nimbus_store::pg::testing::fresh_database().await else { return };
    let store = MetricStore::open_shared(&url, ACCOUNT).await.unwrap();
    let now = now_ms();
    let day = now.div_euclid(86_400_000);
    let hour = now.div_euclid(3_600_000);
    store.record(key(), "Count", now, Aggregate::of(1.0, 1.0));
    store.flush(now).await.unwrap();
    store
        .put(vec![Datum { key: key(), unit: "Count".into(), timestamp_ms: now, values: Aggregate::of(2.0, 1.0), high_resolution: true }])
        .await
        .unwrap();
    assert!(partitions(&url, "metric_minute_points").await.contains(&format!("metric_minute_points_d{day}")));
    assert!(partitions(&url, "metric_second_points").await.contains(&format!("metric_second_points_h{hour}")));
    // A datapoint already past its retention is not written (its partition may be gone).
    let old = now - 16 * 86_400_000;
    store
        .put(vec![Datum { key: key(), unit: "Count".into(), timestamp_ms: old, values: Aggregate::of(5.0, 1.0), high_resolution: true }])
        .await
        .unwrap();
    assert!(!partitions(&url, "metric_minute_points").await.contains(&format!("metric_minute_points_d{}", old.div_euclid(86_400_000))));

    // Four hours on: the one-second datapoints' hour is dropped, the day kept.
    store.flush(now + 4 * 3_600_000).await.unwrap();
    assert!(!partitions(&url, "metric_second_points").await.contains(&format!("metric_second_points_h{hour}")));
    let minutes = store.query(key(), now - 120_000, now + 60_000, 60, None, false).await.unwrap();
    assert_eq!(minutes.iter().map(|p| p.values.sum).sum::<f64>(), 3.0);
    // Sixteen days on: the day is dropped, and the series without datapoints with it.
    store.flush(now + 16 * 86_400_000).await.unwrap();
    let left = partitions(&url, "metric_minute_points").await;
    assert!(!left.contains(&format!("metric_minute_points_d{day}")), "{left:?}");
    assert!(left.contains(&format!("metric_minute_points_d{}", day + 16)), "the day after the sweep is ready: {left:?}");
    assert!(store.query(key(), now - 120_000, now + 60_000, 60, None, false).await.unwrap().is_empty());
    assert!(store.list(Some("App".into()), None, vec![]).await.unwrap().is_empty());
}

/// A database of the release before partitions: its datapoints move into the partitioned
/// tables when a node of this release opens it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datapoints_stored_unpartitioned_move_into_partitions() {
    let Some(url) = nimbus_store::pg::testing::fresh_database().await else { return };
    let db = nimbus_store::pg::PgDatabase::open(&url, ACCOUNT, "old-release").await.unwrap();
    db.migrate(&nimbus_store::pg::PgSchema { name: "metrics", migrations: &super::SCHEMA.migrations[..1] }).await.unwrap();
    let now = now_ms();
    let (minute, second) = (now.div_euclid(60_000) * 60_000, now.div_euclid(1000) * 1000);
    let client = db.client().await.unwrap();
    client
        .execute(
            "INSERT INTO metric_series (namespace, name, dimensions) VALUES ($1, $2, $3)",
            &[&"App", &"Latency", &key().dimensions_text()],
        )
        .await
        .unwrap();
    for (table, at, sum) in
        [("metric_points", minute - 86_400_000, 4.0), ("metric_points", minute, 6.0), ("metric_fine_points", second, 7.0)]
    {
        client
            .execute(&format!("INSERT INTO {table} SELECT id, 'Count', $1, 1, $2, $2, $2, '[]' FROM metric_series"), &[&at, &sum])
            .await
            .unwrap();
    }
    drop(client);
    let store = MetricStore::open_shared(&url, ACCOUNT).await.unwrap();
    let sums = |periods: Vec<crate::cloudwatch::Period>| periods.iter().map(|p| p.values.sum).collect::<Vec<_>>();
    assert_eq!(sums(store.query(key(), minute - 86_400_000, minute + 60_000, 60, None, false).await.unwrap()), [4.0, 6.0]);
    assert_eq!(sums(store.query(key(), second, second + 1000, 1, None, false).await.unwrap()), [7.0]);
    let days = partitions(&url, "metric_minute_points").await;
    for at in [minute - 86_400_000, minute] {
        assert!(days.contains(&format!("metric_minute_points_d{}", at.div_euclid(86_400_000))), "{days:?}");
    }
}

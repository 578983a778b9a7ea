//! The shared log store against a real PostgreSQL (`NIMBUS_TEST_POSTGRES`): two stores on
//! one database stand for two nodes; the on-disk store is the reference for pages.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::store::{Cursor, LogError, LogStore, Position};
use crate::{FilterPattern, MetricFilter, MetricTransformation, SubscriptionFilter};

const ACCOUNT: &str = "000000000042";

/// A runtime for the stores (their calls block on it, so the test's own thread makes them)
/// and a fresh database; None (skipped) without `NIMBUS_TEST_POSTGRES`.
fn setup() -> Option<(tokio::runtime::Runtime, String)> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let url = rt.block_on(nimbus_store::pg::testing::fresh_database())?;
    Some((rt, url))
}

fn node(rt: &tokio::runtime::Runtime, url: &str, _name: &str) -> Arc<LogStore> {
    let dir = tempfile::tempdir().unwrap().keep();
    rt.block_on(LogStore::open_shared(&dir, url, ACCOUNT)).unwrap()
}

fn within_a_second(what: &str, cond: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "not within a second: {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn lines_written_on_one_node_are_read_on_another() {
    let Some((rt, url)) = setup() else { return };
    let (a, b) = (node(&rt, &url, "node-a"), node(&rt, &url, "node-b"));
    let group = "/aws/lambda/f";
    let sink = a.sink(group, "2026/12/05/[$LATEST]env1");
    let t0 = crate::now_ms();
    for i in 0..25 {
        sink.emit(t0 + i, format!("line {i} {}", if i % 5 == 0 { "ERROR" } else { "ok" }));
    }
    a.flush();
    let groups = b.groups("/aws/lambda/").unwrap();
    assert_eq!(groups.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(), [group]);
    let bytes: u64 = (0..25).map(|i| format!("line {i} {}", if i % 5 == 0 { "ERROR" } else { "ok" }).len() as u64).sum();
    assert_eq!(groups[0].stored_bytes, bytes);
    let streams = b.streams(group).unwrap().unwrap();
    assert_eq!(streams.len(), 1);
    assert_eq!((streams[0].first_event, streams[0].last_event), (Some(t0), Some(t0 + 24)));
    let head = b.stream_page(group, &streams[0].name, None, None, Cursor::Head, 10).unwrap().unwrap();
    assert_eq!((head.lo, head.hi, head.events[0].message.as_str()), (0, 10, "line 0 ERROR"));
    let errors = FilterPattern::parse("ERROR").unwrap();
    let page = b.filter_page(group, None, None, None, None, &errors, None, 100).unwrap().unwrap();
    assert_eq!(page.events.iter().map(|(_, e)| e.timestamp - t0).collect::<Vec<_>>(), [0, 5, 10, 15, 20]);
    assert!(page.next.is_none());
    // And what the other node asks of a group it never wrote is "missing", not an error.
    assert!(b.streams("/aws/lambda/nope").unwrap().is_none());
    assert!(b.stream_page(group, "nope", None, None, Cursor::Head, 10).unwrap().is_none());
}

#[test]
fn groups_and_streams_made_through_the_api() {
    let Some((rt, url)) = setup() else { return };
    let (a, b) = (node(&rt, &url, "node-a"), node(&rt, &url, "node-b"));
    let tags: BTreeMap<String, String> = [("team".to_string(), "core".to_string())].into();
    a.create_group("app", tags.clone()).unwrap();
    assert_eq!(b.create_group("app", BTreeMap::new()), Err(LogError::GroupExists));
    assert_eq!(b.tags("app").unwrap(), Some(tags));
    b.tag("app", [("env".to_string(), "prod".to_string())].into()).unwrap();
    a.untag("app", vec!["team".to_string(), "absent".to_string()]).unwrap();
    assert_eq!(b.tags("app").unwrap().unwrap().into_iter().collect::<Vec<_>>(), [("env".to_string(), "prod".to_string())]);
    assert_eq!(a.create_stream("none", "s"), Err(LogError::GroupMissing));
    a.create_stream("app", "s").unwrap();
    assert_eq!(b.create_stream("app", "s"), Err(LogError::StreamExists));
    assert_eq!(b.put("app", "t", vec![(1, "x".into())]), Err(LogError::StreamMissing));
    assert_eq!(b.put("none", "t", vec![(1, "x".into())]), Err(LogError::GroupMissing));
    let now = crate::now_ms();
    b.put("app", "s", vec![(now, "one".into()), (now - 5, "two".into())]).unwrap();
    let s = a.streams("app").unwrap().unwrap();
    assert_eq!((s[0].first_event, s[0].last_event, s[0].stored_bytes), (Some(now - 5), Some(now), 6));
    // In written order (as on disk), not by time.
    let page = a.stream_page("app", "s", None, None, Cursor::Head, 10).unwrap().unwrap();
    assert_eq!(page.events.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(), ["one", "two"]);
    assert_eq!(a.delete_stream("app", "nope"), Err(LogError::StreamMissing));
    a.delete_stream("app", "s").unwrap();
    assert!(b.streams("app").unwrap().unwrap().is_empty());
    assert_eq!(a.group("app").unwrap().unwrap().stored_bytes, 0);
    b.delete_group("app").unwrap();
    assert_eq!(a.delete_group("app"), Err(LogError::GroupMissing));
    assert!(a.group("app").unwrap().is_none());
    // A function's lines after its group was deleted make it again.
    let sink = a.sink("app", "env");
    sink.emit(now, "back".into());
    a.flush();
    assert_eq!(b.streams("app").unwrap().unwrap().len(), 1);
}

/// Pages of the shared store equal the on-disk store's for the same events, whatever the
/// cursor, range, limit, and size of events (the byte cap).
#[test]
fn pages_are_the_on_disk_stores_pages() {
    let Some((rt, url)) = setup() else { return };
    let shared = node(&rt, &url, "node-a");
    let dir = tempfile::tempdir().unwrap();
    let disk = LogStore::open(dir.path()).unwrap();
    let t0 = crate::now_ms() - 100_000;
    for store in [&shared, &disk] {
        for s in ["a", "b", "c"] {
            store.create_group("g", BTreeMap::new()).ok();
            store.create_stream("g", s).unwrap();
        }
        // Interleaved times across streams, some equal, one stream out of order, and a few
        // events large enough that a page's 1 MB cuts before its limit.
        let mut events = BTreeMap::<&str, Vec<(i64, String)>>::new();
        for i in 0..60i64 {
            let s = ["a", "b", "c"][(i % 3) as usize];
            let t = if s == "c" { t0 + 1000 - i * 7 } else { t0 + i * 10 + (i % 2) };
            let big = if i % 13 == 0 { "x".repeat(400_000) } else { String::new() };
            events.entry(s).or_default().push((t, format!("event {i} {} {big}", if i % 4 == 0 { "ERROR" } else { "info" })));
        }
        for (s, ev) in events {
            store.put("g", s, ev).unwrap();
        }
    }
    let summary = |p: &crate::StreamPage| (p.lo, p.hi, p.events.iter().map(|e| (e.timestamp, e.message.len())).collect::<Vec<_>>());
    for stream in ["a", "c"] {
        for (start, end) in [(None, None), (Some(t0 + 100), Some(t0 + 400)), (Some(t0 + 10_000), None)] {
            for from in [Cursor::Head, Cursor::Tail, Cursor::Forward(3), Cursor::Forward(50), Cursor::Backward(7), Cursor::Backward(0)] {
                for limit in [1, 4, 100] {
                    let want = disk.stream_page("g", stream, start, end, from, limit).unwrap().unwrap();
                    let got = shared.stream_page("g", stream, start, end, from, limit).unwrap().unwrap();
                    assert_eq!(summary(&got), summary(&want), "{stream} {start:?}..{end:?} {from:?} limit {limit}");
                }
            }
        }
    }
    // FilterLogEvents: every page in turn, until the last.
    let walk = |store: &LogStore, pattern: &FilterPattern, streams: Option<&[String]>, prefix: Option<&str>, limit: usize| {
        let mut pages: Vec<Vec<(i64, String, usize)>> = Vec::new();
        let mut after: Option<Position> = None;
        loop {
            let page = store.filter_page("g", streams, prefix, Some(t0 + 20), None, pattern, after.as_ref(), limit).unwrap().unwrap();
            pages.push(page.events.iter().map(|(at, e)| (at.timestamp, at.stream.clone(), e.message.len())).collect());
            assert!(pages.len() <= 100, "paging does not end");
            match (page.next, page.events.last()) {
                (Some(_), Some((last, _))) => after = Some(last.clone()),
                _ => return pages,
            }
        }
    };
    let only_b = ["b".to_string()];
    for pattern in ["", "ERROR", "?ERROR ?info", "nothing-matches"] {
        let pattern = FilterPattern::parse(pattern).unwrap();
        for (streams, prefix) in [(None, None), (Some(&only_b[..]), None), (None, Some("c"))] {
            for limit in [1, 7, 10_000] {
                assert_eq!(walk(&shared, &pattern, streams, prefix, limit), walk(&disk, &pattern, streams, prefix, limit), "limit {limit}");
            }
        }
    }
}

#[test]
fn filters_set_on_one_node_match_the_lines_of_another() {
    let Some((rt, url)) = setup() else { return };
    let (a, b) = (node(&rt, &url, "node-a"), node(&rt, &url, "node-b"));
    let seen: Arc<Mutex<Vec<f64>>> = Arc::default();
    let into = seen.clone();
    a.on_metric_values(Arc::new(move |points| into.lock().unwrap().extend(points.iter().map(|p| p.value))));
    b.create_group("app", BTreeMap::new()).unwrap();
    let filter = MetricFilter {
        filter_name: "latency".into(),
        filter_pattern: "{ $.ms > 0 }".into(),
        metric_transformations: vec![MetricTransformation {
            metric_name: "Latency".into(),
            metric_namespace: "App".into(),
            metric_value: "$.ms".into(),
            default_value: None,
            dimensions: BTreeMap::new(),
            unit: None,
        }],
        creation_time: 1,
    };
    b.put_metric_filter("app", filter).unwrap();
    assert_eq!(a.metric_filters(Some("app")).unwrap().unwrap().len(), 1);
    assert_eq!(a.group("app").unwrap().unwrap().metric_filter_count, 1);
    let sink = a.sink("app", "env");
    within_a_second("node a matches b's filter", || {
        sink.emit(crate::now_ms(), r#"{"ms": 42}"#.into());
        std::thread::sleep(std::time::Duration::from_millis(50));
        seen.lock().unwrap().contains(&42.0)
    });
    b.delete_metric_filter("app", "latency").unwrap();
    assert_eq!(a.delete_metric_filter("app", "latency"), Err(LogError::MetricFilterMissing));
    within_a_second("node a forgets it", || {
        seen.lock().unwrap().clear();
        sink.emit(crate::now_ms(), r#"{"ms": 43}"#.into());
        std::thread::sleep(std::time::Duration::from_millis(50));
        seen.lock().unwrap().is_empty()
    });
    // Subscription filters: at most two per group, counted across nodes.
    let sub = |name: &str| SubscriptionFilter {
        filter_name: name.into(),
        filter_pattern: "ERROR".into(),
        destination_arn: "arn:aws:lambda:us-east-1:000000000042:function:c".into(),
        role_arn: None,
        distribution: "ByLogStream".into(),
        creation_time: 1,
    };
    a.put_subscription_filter("app", sub("one")).unwrap();
    b.put_subscription_filter("app", sub("two")).unwrap();
    assert_eq!(a.put_subscription_filter("app", sub("three")), Err(LogError::LimitExceeded));
    b.put_subscription_filter("app", sub("two")).unwrap();
    assert_eq!(a.subscription_filters("app").unwrap().unwrap().iter().map(|f| f.filter_name.as_str()).collect::<Vec<_>>(), ["one", "two"]);
    assert_eq!(b.delete_subscription_filter("app", "nope"), Err(LogError::FilterMissing));
}

#[test]
fn retention_removes_old_events_and_drops_empty_days() {
    let Some((rt, url)) = setup() else { return };
    let store = node(&rt, &url, "node-a");
    const DAY: i64 = crate::rules::DAY_MS;
    let now = crate::now_ms();
    crate::store::tests::retention_scenario(&store, now);
    // The days whose events all expired are dropped; the others (and today's) stay.
    let days: Vec<i64> = rt.block_on(async {
        let db = nimbus_store::pg::PgDatabase::open(&url, ACCOUNT, "check").await.unwrap();
        let client = db.client().await.unwrap();
        let parts = nimbus_store::partitions::TimePartitions::new("log_events", 'd', DAY).existing(&client).await.unwrap();
        let today = now.div_euclid(DAY);
        let mut days: Vec<i64> = parts.iter().map(|(d, _)| today - d).collect();
        days.sort();
        days
    });
    assert_eq!(days, [-1, 0, 1, 2, 3, 4, 80, 90]);
}

/// A day partition this node made, dropped (empty) by another node's sweep before the events
/// land in it: PutLogEvents makes it again and the events are there.
#[test]
fn put_into_a_day_dropped_under_it() {
    let Some((rt, url)) = setup() else { return };
    let store = node(&rt, &url, "node-a");
    const DAY: i64 = crate::rules::DAY_MS;
    let at = crate::now_ms() - 9 * DAY;
    store.create_group("app", BTreeMap::new()).unwrap();
    store.create_stream("app", "s").unwrap();
    store.put("app", "s", vec![(at, "first".into())]).unwrap();
    rt.block_on(async {
        let db = nimbus_store::pg::PgDatabase::open(&url, ACCOUNT, "other").await.unwrap();
        let client = db.client().await.unwrap();
        let day = nimbus_store::partitions::TimePartitions::new("log_events", 'd', DAY);
        client.batch_execute(&format!("DELETE FROM log_events; DROP TABLE {}", day.name(day.of(at)))).await.unwrap();
    });
    store.put("app", "s", vec![(at + 1, "second".into())]).unwrap();
    let page = store.stream_page("app", "s", None, None, Cursor::Head, 10).unwrap().unwrap();
    assert_eq!(page.events.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(), ["second"]);
}

/// `kept` answers once the lines sent before it are in the spool (a killed node ships them
/// at its next start), not before.
#[test]
fn kept_lines_are_in_the_spool() {
    let Some((rt, url)) = setup() else { return };
    let root = tempfile::tempdir().unwrap();
    let store = rt.block_on(LogStore::open_shared(root.path(), &url, ACCOUNT)).unwrap();
    let sink = store.sink("/aws/lambda/k", "env");
    let spooled = || -> usize {
        let mut n = 0;
        for entry in std::fs::read_dir(root.path().join("spool")).unwrap() {
            n += std::fs::read_to_string(entry.unwrap().path()).unwrap().lines().filter(|l| l.contains("kept ")).count();
        }
        n
    };
    for round in 0..20 {
        for i in 0..50 {
            sink.emit(crate::now_ms(), format!("kept {round} {i}"));
        }
        rt.block_on(store.kept());
        assert_eq!(spooled(), 50 * (round + 1), "round {round}");
    }
}

/// A node killed with lines in its spool ships them at its next start, after the part its
/// row says was written, without a torn last line; the segment is gone after.
#[test]
fn a_restarted_node_ships_what_its_spool_kept() {
    let Some((rt, url)) = setup() else { return };
    let first = node(&rt, &url, "node-a");
    drop(first);
    let root = tempfile::tempdir().unwrap();
    let spool = root.path().join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    let t = crate::now_ms();
    let line = |i: i64| format!("{{\"g\":\"/aws/lambda/k\",\"s\":\"env\",\"t\":{},\"m\":\"line {i}\"}}\n", t + i);
    let written = line(0);
    let text = format!("{written}{}{}{{\"g\":\"/aws/lambda/k\",\"s\":\"en", line(1), line(2));
    std::fs::write(spool.join("seg1.jsonl"), text).unwrap();
    rt.block_on(async {
        let db = nimbus_store::pg::PgDatabase::open(&url, ACCOUNT, "check").await.unwrap();
        db.client().await.unwrap().execute("INSERT INTO log_spool VALUES ('seg1', $1)", &[&(written.len() as i64)]).await.unwrap();
    });
    let store = rt.block_on(LogStore::open_shared(root.path(), &url, ACCOUNT)).unwrap();
    let page = store.stream_page("/aws/lambda/k", "env", None, None, Cursor::Head, 10).unwrap().unwrap();
    assert_eq!(page.events.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(), ["line 1", "line 2"]);
    assert!(!spool.join("seg1.jsonl").exists());
    // Its own lines are spooled, and the segment goes when the store stops with all written.
    store.sink("/aws/lambda/k", "env").emit(t + 3, "line 3".into());
    store.flush();
    let segments = || std::fs::read_dir(&spool).unwrap().count();
    assert_eq!(segments(), 1);
    drop(store);
    within_a_second("the segment is deleted", || segments() == 0);
}

//! Measures what one warm invocation's CloudWatch datapoints cost the invoke path: the
//! thirteen `AWS/Lambda` datapoints the invoker records (four metrics for the account, the
//! function and the function's qualifier, and the account's unreserved concurrency), into
//! a store whose pending map already holds 1,000 functions' series, recorded with owned keys
//! (`record_many`, each series' strings made per datapoint) and with borrowed ones
//! (`record_borrowed`, strings made only for a series new since the last flush). Next to
//! them, the floor: building the datapoints' values alone. Run with
//! `cargo bench -p nimbus-metrics --bench datapoints`.

mod support;

use std::hint::black_box;

use support::best_of;

use nimbus_metrics::cloudwatch::{Aggregate, MetricStore, SeriesKey, SeriesRef};

const METRICS: [(&str, &str); 4] =
    [("Invocations", "Count"), ("Errors", "Count"), ("Duration", "Milliseconds"), ("ConcurrentExecutions", "Count")];

/// One invocation's datapoints with owned keys, built as the invoker built them before
/// `record_borrowed`.
fn owned(store: &MetricStore, function: &str, qualifier: &str, now: i64) {
    let mut sets: Vec<Vec<(String, String)>> = vec![Vec::new()];
    let f = ("FunctionName".to_string(), function.to_string());
    sets.push(vec![f.clone()]);
    sets.push(vec![f, ("Resource".to_string(), format!("{function}:{qualifier}"))]);
    store.record_many(METRICS.iter().flat_map(|(metric, unit)| {
        sets.iter().map(move |dims| (SeriesKey::new("AWS/Lambda", metric, dims.clone()), *unit, now, Aggregate::of(1.0, 1.0)))
    }));
    store.record_many([(
        SeriesKey::new("AWS/Lambda", "UnreservedConcurrentExecutions", Vec::new()),
        "Count",
        now,
        Aggregate::of(1.0, 1.0),
    )]);
}

/// The same datapoints with borrowed keys, as the invoker records them now.
fn borrowed(store: &MetricStore, function: &str, qualifier: &str, now: i64) {
    let resource = format!("{function}:{qualifier}");
    let sets: [&[(&str, &str)]; 3] = [&[], &[("FunctionName", function)], &[("FunctionName", function), ("Resource", &resource)]];
    store.record_borrowed(METRICS.iter().flat_map(|(metric, unit)| {
        sets.iter()
            .map(move |dims| (SeriesRef { namespace: "AWS/Lambda", name: metric, dimensions: dims }, *unit, now, Aggregate::of(1.0, 1.0)))
    }));
    let account = SeriesRef { namespace: "AWS/Lambda", name: "UnreservedConcurrentExecutions", dimensions: &[] };
    store.record_borrowed([(account, "Count", now, Aggregate::of(1.0, 1.0))]);
}

fn main() {
    let store = MetricStore::open_in_memory().expect("an in-memory metric store");
    let now = chrono::Utc::now().timestamp_millis();
    let names: Vec<String> = (0..1000).map(|i| format!("orders-api-{i}")).collect();
    for n in &names {
        owned(&store, n, "live", now);
    }
    let rounds = 100_000;
    let floor = best_of(rounds, || {
        for _ in 0..13 {
            black_box(Aggregate::of(black_box(1.0), 1.0));
        }
    });
    let before = best_of(rounds, || owned(&store, black_box(&names[500]), "live", now));
    let after = best_of(rounds, || borrowed(&store, black_box(&names[500]), "live", now));
    println!("one invocation's 13 datapoints, 1,000 functions' series pending:");
    println!("  the datapoints' values alone (floor): {floor:.0} ns");
    println!("  owned keys (record_many): {before:.0} ns");
    println!("  borrowed keys (record_borrowed): {after:.0} ns");
}

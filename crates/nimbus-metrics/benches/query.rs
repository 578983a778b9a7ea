//! Measures CloudWatch reads on a day of one-minute data for 100 functions (100 series ×
//! 1,440 datapoints, on disk): a GetMetricData-sized read of one function's day in
//! 5-minute periods, and the same for all 100 functions in turn and in one GetMetricData-style
//! batch (`query_many`); plus writing the day.
//! Run with `cargo bench -p nimbus-metrics --bench query`.

use std::time::Instant;

use nimbus_metrics::cloudwatch::{Aggregate, Datum, MetricStore, SeriesKey, SeriesQuery};

fn key(n: usize) -> SeriesKey {
    SeriesKey::new("AWS/Lambda", "Duration", vec![("FunctionName".into(), format!("fn-{n}"))])
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = MetricStore::open(&dir.path().join("metrics.db")).expect("opens");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64;
    let day_start = (now / 60_000 - 1440) * 60_000;
    let start = Instant::now();
    for n in 0..100 {
        let data = (0..1440)
            .map(|m| Datum {
                key: key(n),
                unit: "Milliseconds".into(),
                timestamp_ms: day_start + m * 60_000,
                values: Aggregate::of(1.0 + (m % 37) as f64, 3.0),
                high_resolution: false,
            })
            .collect();
        store.put(data).await.expect("put");
    }
    println!("write a day for 100 functions (144,000 datapoints, 100 durable batches): {:.2} s", start.elapsed().as_secs_f64());
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        let p = store.query(key(42), day_start, now, 300, None, false).await.expect("query");
        assert_eq!(p.len(), 288);
        best = best.min(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!("one function's day in 5-minute periods (1,440 datapoints -> 288): {best:.2} ms");
    let t = Instant::now();
    for n in 0..100 {
        let p = store.query(key(n), day_start, now, 300, None, false).await.expect("query");
        assert_eq!(p.len(), 288);
    }
    println!("all 100 functions' days, one after another: {:.1} ms", t.elapsed().as_secs_f64() * 1000.0);
    let mut best = f64::MAX;
    for _ in 0..5 {
        let queries = (0..100).map(|n| SeriesQuery { key: key(n), period_s: 300, unit: None, percentiles: false }).collect();
        let t = Instant::now();
        let all = store.query_many(queries, day_start, now).await.expect("query");
        assert!(all.iter().all(|p| p.len() == 288));
        best = best.min(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!("all 100 functions' days in one batch (one GetMetricData of 100 queries): {best:.1} ms");
}

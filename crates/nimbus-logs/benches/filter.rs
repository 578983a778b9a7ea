//! Measures FilterLogEvents on one million stored events (a group of 8 streams, a third plain
//! text, two thirds JSON, about 1 % of them errors): one page (AWS's 10,000 events at most) with
//! a term pattern, a selective JSON pattern, a JSON pattern whose condition has no literal to
//! look for (every JSON line decoded), a space-delimited pattern and a pattern that matches
//! nothing; next to a floor measured in the same run: reading the same files, and `grep -c`
//! over them. Run with `cargo bench -p nimbus-logs --bench filter`.

use std::time::Instant;

use nimbus_logs::{FilterPattern, LogStore};

const EVENTS: usize = 1_000_000;
const STREAMS: usize = 8;
const BATCH: usize = 10_000;

fn message(i: usize) -> String {
    let level = if i.is_multiple_of(97) { "ERROR" } else { "INFO" };
    let latency = (i * 7919) % 1000;
    match i % 3 {
        0 => format!("{level} 2024-05-01T12:00:00Z req-{i:08} GET /api/orders/{} 200 {latency}", i % 5000),
        _ => {
            format!(r#"{{"level":"{level}","requestId":"req-{i:08}","path":"/api/orders/{}","status":200,"latency":{latency}}}"#, i % 5000)
        }
    }
}

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::MAX;
    let mut out = None;
    for _ in 0..runs {
        let t = Instant::now();
        let v = f();
        best = best.min(t.elapsed().as_secs_f64() * 1000.0);
        out = Some(v);
    }
    (best, out.expect("ran at least once"))
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LogStore::open(dir.path()).expect("opens");
    let group = "/bench/app";
    store.create_group(group, Default::default()).expect("group");
    for s in 0..STREAMS {
        store.create_stream(group, &format!("stream-{s}")).expect("stream");
    }
    let t0 = nimbus_logs::now_ms() - 3_600_000;
    let start = Instant::now();
    for (b, first) in (0..EVENTS).step_by(BATCH).enumerate() {
        let events = (first..first + BATCH).map(|i| (t0 + i as i64 / STREAMS as i64, message(i))).collect();
        store.put(group, &format!("stream-{}", b % STREAMS), events).expect("put");
    }
    let bytes: u64 = store.streams(group).unwrap().expect("group").iter().map(|s| s.stored_bytes).sum();
    let files: Vec<_> = (0..STREAMS).map(|s| store.stream_path(group, &format!("stream-{s}"))).collect();
    let on_disk: u64 = files.iter().map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0)).sum();
    println!(
        "stored {EVENTS} events in {STREAMS} streams ({:.0} MB of messages, {:.0} MB on disk): {:.1} s",
        bytes as f64 / 1e6,
        on_disk as f64 / 1e6,
        start.elapsed().as_secs_f64()
    );

    let (read_ms, lines) =
        best_of(3, || files.iter().map(|f| std::fs::read(f).expect("reads").iter().filter(|&&b| b == b'\n').count()).sum::<usize>());
    assert_eq!(lines, EVENTS);
    println!("floor: read the files and count lines: {read_ms:.0} ms");
    let (grep_ms, grep) = best_of(3, || std::process::Command::new("grep").arg("-c").arg("ERROR").args(&files).output());
    if let Ok(out) = grep {
        let hits: usize = String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.rsplit(':').next()?.parse::<usize>().ok()).sum();
        println!("floor: grep -c ERROR over the files ({hits} lines): {grep_ms:.0} ms");
    }

    let cases = [
        ("term", "ERROR"),
        ("JSON, selective", r#"{ $.level = "ERROR" && $.latency > 500 }"#),
        ("JSON, no literal (every JSON line decoded)", "{ $.latency > 998 }"),
        ("space-delimited", "[level = ERROR, ts, id, method, path, status, latency > 900]"),
        ("matches nothing", "NOSUCHTERM"),
    ];
    // Matching decodes only what the selectors reach; the whole document (as metric filters
    // decode it, for their values) for comparison.
    let p = FilterPattern::parse("{ $.latency > 998 }").expect("parses");
    let sample: Vec<String> = (0..100_000).map(|i| message(3 * i + 1)).collect();
    let (pruned, n) = best_of(3, || sample.iter().filter(|m| p.matches(m)).count());
    let (whole, m) = best_of(3, || sample.iter().filter(|m| p.evaluate(m).is_some()).count());
    assert_eq!(n, m);
    println!("100,000 JSON messages: matched decoding what the selectors reach {pruned:.0} ms, the whole document {whole:.0} ms");
    for (what, pattern) in cases {
        let p = FilterPattern::parse(pattern).expect("parses");
        let (ms, page) = best_of(3, || store.filter_page(group, None, None, None, None, &p, None, 10_000).unwrap().expect("group"));
        println!("filter_page, {what} `{pattern}`: {} events, {ms:.0} ms", page.events.len());
    }
}

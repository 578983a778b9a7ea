//! Measures what counting costs the invoke path: one warm invocation's `invoked` (four
//! families: invocations, duration, and the label lookups) on a registry that already holds
//! 1,000 function series, next to the floor of making the label strings alone, from one
//! thread and from two at once (the series' locks are shared). Also one scrape of those
//! 1,000 series. Run with `cargo bench -p nimbus-metrics`.

mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use support::best_of;

use nimbus_metrics::{Invocation, Metrics};

fn main() {
    let m = Metrics::new();
    let names: Vec<String> = (0..1000).map(|i| format!("orders-api-{i}")).collect();
    for n in &names {
        m.invoked(&Invocation {
            account: "111122223333",
            function: n,
            version: "$LATEST",
            error: false,
            duration: Duration::from_millis(2),
            init: Some(Duration::from_millis(30)),
        });
    }
    let warm = Invocation {
        account: "111122223333",
        function: &names[500],
        version: "$LATEST",
        error: false,
        duration: Duration::from_micros(180),
        init: None,
    };
    let rounds = 200_000;
    let floor = best_of(rounds, || {
        black_box((warm.account.to_string(), warm.function.to_string(), warm.version.to_string()));
    });
    let one = best_of(rounds, || m.invoked(black_box(&warm)));
    let two = {
        let m2 = m.clone();
        let other = names[7].clone();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let t = std::thread::spawn(move || {
            let inv = Invocation {
                account: "111122223333",
                function: &other,
                version: "$LATEST",
                error: false,
                duration: Duration::from_micros(180),
                init: None,
            };
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                m2.invoked(&inv);
            }
        });
        let ns = best_of(rounds, || m.invoked(black_box(&warm)));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = t.join();
        ns
    };
    println!("label strings alone (floor): {floor:.0} ns");
    println!("invoked, warm, 1 thread: {one:.0} ns per invocation");
    println!("invoked, warm, 2 threads at once: {two:.0} ns per invocation");
    let start = Instant::now();
    let scrapes = 20;
    let mut bytes = 0;
    for _ in 0..scrapes {
        bytes = black_box(m.encode()).len();
    }
    println!("scrape of 1,000 function series: {:.1} ms, {} KB", start.elapsed().as_secs_f64() * 1000.0 / f64::from(scrapes), bytes / 1024);
}

//! What recording one invocation's trace costs the invoke path: building its spans and
//! queuing them on the batch processor (the export itself runs on the processor's thread).
//! `cargo bench -p nimbus-trace`.

use std::time::{Duration, Instant, SystemTime};

use nimbus_model::trace::{InvocationTrace, SpanId, TraceId, TraceSink, Trigger};

fn trace(n: u64) -> InvocationTrace {
    let t0 = SystemTime::now();
    let ms = |m| t0 + Duration::from_millis(m);
    InvocationTrace {
        trace_id: TraceId::new(t0, [7; 12]),
        span_id: SpanId::from_random(n + 1),
        handler_span_id: SpanId::from_random(n + 2),
        parent: None,
        parent_is_remote: true,
        trigger: Trigger::Other,
        function: "echo".into(),
        version: "$LATEST".into(),
        qualifier: None,
        invoked_arn: "arn:aws:lambda:us-east-1:000000000000:function:echo".into(),
        region: "us-east-1".into(),
        account: "000000000000".into(),
        request_id: "8e7c8d2e-0f8b-4a43-9b8e-3a7f4b1c2d3e".into(),
        cold_start: false,
        started: t0,
        environment_ready: ms(1),
        init: None,
        handler: Some((ms(1), ms(2))),
        ended: ms(3),
        error: None,
    }
}

fn per_call(what: &str, n: u32, mut f: impl FnMut(u64)) {
    for i in 0..1000 {
        f(i);
    }
    let t = Instant::now();
    for i in 0..u64::from(n) {
        f(i);
    }
    println!("{what}: {:.0} ns per invocation", t.elapsed().as_nanos() as f64 / f64::from(n));
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("a runtime");
    let scope = opentelemetry::InstrumentationScope::builder("nimbus").build();
    per_call("build the 4 spans", 200_000, |i| {
        std::hint::black_box(nimbus_trace::invocation_spans(&trace(i), &scope));
    });
    // Nothing listens there: batches fail fast and are dropped, as with a collector down.
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a port").port();
    let service = nimbus_trace::Service { version: "bench".into(), host: "bench".into() };
    let sink = nimbus_trace::OtlpTraces::start(&format!("http://127.0.0.1:{port}"), &service, rt.handle().clone()).expect("exporter");
    per_call("record (build + queue on the batch processor)", 200_000, |i| sink.record(trace(i)));
    sink.shutdown();
}

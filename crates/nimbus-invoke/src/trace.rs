//! The trace of one invocation: the ids chosen before the event goes out (the function's
//! `Lambda-Runtime-Trace-Id` names them) and the moments the invoke path passes, handed to
//! the [`TraceSink`] when one is set. Without a sink this costs a few clock reads.

use std::time::{Duration, Instant, SystemTime};

use nimbus_model::trace::{function_header, InvocationTrace, SpanId, TraceContext, TraceId, TraceSink, Trigger};

/// Ids of one invocation's trace, from the caller's context or new.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TraceIds {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub handler_span_id: SpanId,
    pub parent: Option<SpanId>,
    /// The caller's sampling decision, if it made one.
    pub sampled: Option<bool>,
}

impl TraceIds {
    pub fn for_request(cx: &TraceContext) -> TraceIds {
        let trace_id = match cx.parent {
            Some(p) => p.trace_id,
            None => {
                let mut r = [0u8; 12];
                r[..8].copy_from_slice(&random_u64().to_be_bytes());
                r[8..].copy_from_slice(&random_u64().to_be_bytes()[..4]);
                TraceId::new(SystemTime::now(), r)
            }
        };
        TraceIds {
            trace_id,
            span_id: SpanId::from_random(random_u64()),
            handler_span_id: SpanId::from_random(random_u64()),
            parent: cx.parent.and_then(|p| p.span_id),
            sampled: cx.parent.and_then(|p| p.sampled),
        }
    }

    /// What the function gets on `/next`: sampled as the caller decided, else by the
    /// function's tracing mode (`Active`), as Lambda does.
    pub fn function_header(&self, tracing_active: bool) -> String {
        function_header(self.trace_id, self.handler_span_id, self.sampled.unwrap_or(tracing_active))
    }
}

/// Random bits for ids: splitmix64 over a per-thread state seeded once from the OS (ids must
/// be unique and unguessable enough for tracing, not secret; a system call per id would be
/// most of what tracing costs an invocation).
fn random_u64() -> u64 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(uuid::Uuid::new_v4().as_u64_pair().0);
    }
    STATE.with(|s| {
        let next = s.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        s.set(next);
        let mut z = next;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

/// The moments one invocation passed, filled in as it runs.
#[derive(Debug)]
pub(crate) struct Timeline {
    /// Whether anyone will read it (a sink is set and the caller did not decline sampling):
    /// the costlier parts (error types) are skipped otherwise.
    pub enabled: bool,
    pub started: Instant,
    pub wall: SystemTime,
    pub trigger: Trigger,
    pub ready: Option<Instant>,
    pub answered: Option<Instant>,
    pub cold: bool,
    pub handler: Option<Duration>,
    pub init: Option<Duration>,
    pub version: Option<String>,
    pub invoked_arn: Option<String>,
    pub error: Option<String>,
}

impl Timeline {
    pub fn start(enabled: bool, trigger: Trigger) -> Timeline {
        Timeline {
            enabled,
            started: Instant::now(),
            wall: SystemTime::now(),
            trigger,
            ready: None,
            answered: None,
            cold: false,
            handler: None,
            init: None,
            version: None,
            invoked_arn: None,
            error: None,
        }
    }

    fn at(&self, i: Instant) -> SystemTime {
        self.wall + i.saturating_duration_since(self.started)
    }

    /// The finished trace (`ended` now).
    pub fn finish(
        self,
        ids: &TraceIds,
        function: &str,
        qualifier: Option<String>,
        request_id: String,
        partition: &nimbus_model::Partition,
    ) -> InvocationTrace {
        let ended = Instant::now();
        let answered = self.answered.unwrap_or(ended);
        let handler_start = self.handler.map(|d| answered.checked_sub(d).unwrap_or(answered));
        let init = match (handler_start, self.init) {
            (Some(h), Some(d)) => Some((self.at(h.checked_sub(d).unwrap_or(h)), self.at(h))),
            _ => None,
        };
        let (environment_ready, handler, ended) =
            (self.at(self.ready.unwrap_or(ended)), handler_start.map(|h| (self.at(h), self.at(answered))), self.at(ended));
        InvocationTrace {
            trace_id: ids.trace_id,
            span_id: ids.span_id,
            handler_span_id: ids.handler_span_id,
            parent: ids.parent,
            parent_is_remote: true,
            trigger: self.trigger,
            function: function.to_string(),
            version: self.version.unwrap_or_default(),
            qualifier,
            invoked_arn: self.invoked_arn.unwrap_or_default(),
            region: partition.region.clone(),
            account: partition.account_id.clone(),
            request_id,
            cold_start: self.cold,
            started: self.wall,
            environment_ready,
            init,
            handler,
            ended,
            error: self.error,
        }
    }
}

/// The `errorType` of a function's error payload (`Unhandled` when it has none).
pub(crate) fn error_type(payload: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| v.get("errorType")?.as_str().map(str::to_string))
        .unwrap_or_else(|| "Unhandled".into())
}

/// Where finished traces go (set once).
pub(crate) type Sink = std::sync::OnceLock<std::sync::Arc<dyn TraceSink>>;

#[cfg(test)]
mod tests {
    use super::*;
    use nimbus_model::trace::Parent;

    #[test]
    fn ids_follow_the_caller() {
        let p = Parent::from_traceparent("00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01");
        let ids = TraceIds::for_request(&TraceContext { parent: p, trigger: Trigger::Http });
        assert_eq!(ids.trace_id.to_string(), "5759e988bd862e3fe1be46a994272793");
        assert_eq!(ids.parent.map(|s| s.to_string()).as_deref(), Some("53995c3f42cd8ad8"));
        let h = ids.function_header(false);
        assert!(h.starts_with("Root=1-5759e988-bd862e3fe1be46a994272793;Parent="), "{h}");
        assert!(h.contains(&format!("Parent={};Sampled=1;", ids.handler_span_id)), "{h}");
    }

    #[test]
    fn new_traces_are_sampled_by_tracing_mode() {
        let ids = TraceIds::for_request(&TraceContext::default());
        assert!(ids.parent.is_none());
        assert_ne!(ids.span_id, ids.handler_span_id);
        for (active, sampled) in [(true, "Sampled=1"), (false, "Sampled=0")] {
            let h = ids.function_header(active);
            assert!(h.contains(sampled), "{h}");
            assert_eq!(Parent::from_xray(&h).map(|p| p.trace_id), Some(ids.trace_id));
        }
    }

    #[test]
    fn error_types() {
        let cases: [(&[u8], &str); 3] = [
            (br#"{"errorType":"Runtime.ExitError","errorMessage":"x"}"#, "Runtime.ExitError"),
            (br#"{"errorMessage":"x"}"#, "Unhandled"),
            (b"not json", "Unhandled"),
        ];
        for (payload, want) in cases {
            assert_eq!(error_type(payload), want);
        }
    }

    /// What every invocation pays with no trace sink: ids, the function's header, a
    /// timeline. `cargo test --release -p nimbus-invoke -- --ignored --nocapture cost`.
    #[test]
    #[ignore]
    fn cost_without_a_sink() {
        let n = 200_000;
        let t = Instant::now();
        for _ in 0..n {
            let ids = TraceIds::for_request(&TraceContext::default());
            let timeline = Timeline::start(false, Trigger::Other);
            std::hint::black_box((ids.function_header(false), timeline));
        }
        println!("{:.0} ns per invocation", t.elapsed().as_nanos() as f64 / f64::from(n));
    }
}

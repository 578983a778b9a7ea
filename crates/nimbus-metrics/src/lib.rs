//! What the server counts for its operators, in Prometheus's text format: per function
//! (account, name, executed version) its invocations, errors, throttles, durations, cold
//! starts and init durations; environments by state and executions in flight per account;
//! and the server's own requests by service, status and latency.
//!
//! One [`Metrics`] serves the whole process (every account). Counting is a read lock and a
//! hash lookup per family on the invoke path. Label sets are bounded: at most
//! [`MAX_FUNCTION_SERIES`] function series are kept, and invocations of further functions
//! are counted under `function="_other"`, so a flood of function names or versions cannot
//! grow memory without bound; services and status codes are closed sets.

pub mod alarms;
pub mod cloudwatch;
pub mod emf;
pub mod math;
mod shared;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Function series kept (account × function × version); beyond, `function="_other"`.
pub const MAX_FUNCTION_SERIES: usize = 5_000;

/// The label a function's series are counted under once [`MAX_FUNCTION_SERIES`] is reached.
pub const OTHER: &str = "_other";

/// Seconds, from a millisecond to the 15-minute limit.
const DURATION_BUCKETS: [f64; 16] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0, 900.0];
/// Seconds, from 50 µs (a warm request) to a minute.
const REQUEST_BUCKETS: [f64; 14] = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5, 10.0, 60.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FunctionLabels {
    account: String,
    function: String,
    version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AccountLabels {
    account: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    account: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    service: &'static str,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    service: &'static str,
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

fn request_histogram() -> Histogram {
    Histogram::new(REQUEST_BUCKETS)
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// One invocation's outcome, as the invoker knows it when it ends.
#[derive(Debug, Clone, Copy)]
pub struct Invocation<'a> {
    pub account: &'a str,
    pub function: &'a str,
    /// The version that ran (`$LATEST`, `3`).
    pub version: &'a str,
    /// The function answered with an error (`X-Amz-Function-Error`), crashed or timed out.
    pub error: bool,
    pub duration: Duration,
    /// Set on a cold start: how long the environment's init took.
    pub init: Option<Duration>,
}

/// An account's figures read at scrape time rather than counted as they happen.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AccountGauges {
    pub idle: u64,
    pub busy: u64,
    pub provisioned: u64,
    /// Invocations in flight (Lambda's ConcurrentExecutions).
    pub in_flight: u64,
}

type AccountSource = (String, Box<dyn Fn() -> AccountGauges + Send + Sync>);

pub struct Metrics {
    registry: Registry,
    invocations: Family<FunctionLabels, Counter>,
    errors: Family<FunctionLabels, Counter>,
    throttles: Family<FunctionLabels, Counter>,
    cold_starts: Family<FunctionLabels, Counter>,
    duration: Histograms<FunctionLabels>,
    init_duration: Histograms<FunctionLabels>,
    environments: Family<StateLabels, Gauge>,
    in_flight: Family<AccountLabels, Gauge>,
    requests: Family<RequestLabels, Counter>,
    request_duration: Histograms<ServiceLabels>,
    accounts: Mutex<Vec<AccountSource>>,
    /// Encoding is serialized (gauges are set from their sources, then written).
    scrape: Mutex<()>,
    /// Function series made so far (bounded by [`MAX_FUNCTION_SERIES`], `_other` aside).
    series: AtomicUsize,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").field("function_series", &self.series.load(Ordering::Relaxed)).finish_non_exhaustive()
    }
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::default();
        let invocations = Family::<FunctionLabels, Counter>::default();
        let errors = Family::<FunctionLabels, Counter>::default();
        let throttles = Family::<FunctionLabels, Counter>::default();
        let cold_starts = Family::<FunctionLabels, Counter>::default();
        let duration: Histograms<FunctionLabels> = Family::new_with_constructor(duration_histogram);
        let init_duration: Histograms<FunctionLabels> = Family::new_with_constructor(duration_histogram);
        let environments = Family::<StateLabels, Gauge>::default();
        let in_flight = Family::<AccountLabels, Gauge>::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let request_duration: Histograms<ServiceLabels> = Family::new_with_constructor(request_histogram);
        let r = &mut registry;
        r.register("nimbus_lambda_invocations", "Invocations of a function version, as Lambda's Invocations metric", invocations.clone());
        r.register("nimbus_lambda_errors", "Invocations that ended in a function error, a crash or a timeout", errors.clone());
        r.register("nimbus_lambda_throttles", "Invocations refused for concurrency (TooManyRequestsException)", throttles.clone());
        r.register("nimbus_lambda_cold_starts", "Invocations that started a new execution environment", cold_starts.clone());
        r.register("nimbus_lambda_duration_seconds", "How long the function ran, per invocation", duration.clone());
        r.register("nimbus_lambda_init_duration_seconds", "How long a new environment's init took", init_duration.clone());
        r.register("nimbus_environments", "Execution environments by state (busy, idle, provisioned)", environments.clone());
        r.register("nimbus_lambda_concurrent_executions", "Invocations in flight, per account", in_flight.clone());
        r.register("nimbus_http_requests", "Requests answered, by service and status code", requests.clone());
        r.register("nimbus_http_request_duration_seconds", "Time to a response's head, by service", request_duration.clone());
        Arc::new(Metrics {
            registry,
            invocations,
            errors,
            throttles,
            cold_starts,
            duration,
            init_duration,
            environments,
            in_flight,
            requests,
            request_duration,
            accounts: Mutex::new(Vec::new()),
            scrape: Mutex::new(()),
            series: AtomicUsize::new(0),
        })
    }

    /// The series for one function version, or the shared `_other` one once the bound is
    /// reached.
    fn labels(&self, account: &str, function: &str, version: &str) -> FunctionLabels {
        let labels = FunctionLabels { account: account.to_string(), function: function.to_string(), version: version.to_string() };
        if self.invocations.get(&labels).is_some() {
            return labels;
        }
        // A new series (two threads making the same one both count it: the bound is kept,
        // a little early at worst).
        if self.series.fetch_add(1, Ordering::Relaxed) < MAX_FUNCTION_SERIES {
            return labels;
        }
        self.series.fetch_sub(1, Ordering::Relaxed);
        FunctionLabels { account: account.to_string(), function: OTHER.to_string(), version: OTHER.to_string() }
    }

    /// Counts one invocation that ran (its environment took it, or failed to start for it).
    pub fn invoked(&self, i: &Invocation<'_>) {
        let labels = self.labels(i.account, i.function, i.version);
        self.invocations.get_or_create(&labels).inc();
        if i.error {
            self.errors.get_or_create(&labels).inc();
        }
        self.duration.get_or_create(&labels).observe(i.duration.as_secs_f64());
        if let Some(init) = i.init {
            self.cold_starts.get_or_create(&labels).inc();
            self.init_duration.get_or_create(&labels).observe(init.as_secs_f64());
        }
    }

    /// Counts one invocation refused for concurrency (it has no executed version).
    pub fn throttled(&self, account: &str, function: &str) {
        let labels = self.labels(account, function, "");
        self.throttles.get_or_create(&labels).inc();
    }

    /// Counts one request the server answered.
    pub fn request(&self, service: &'static str, code: u16, took: Duration) {
        self.requests.get_or_create(&RequestLabels { service, code }).inc();
        self.request_duration.get_or_create(&ServiceLabels { service }).observe(took.as_secs_f64());
    }

    /// Reads `account`'s environments and invocations in flight from `source` at each
    /// scrape (its sandbox pool and invoker).
    pub fn watch_account(&self, account: &str, source: impl Fn() -> AccountGauges + Send + Sync + 'static) {
        self.accounts.lock().unwrap_or_else(|p| p.into_inner()).push((account.to_string(), Box::new(source)));
    }

    /// Everything, in Prometheus's text exposition format (with `# EOF`, as OpenMetrics).
    pub fn encode(&self) -> String {
        let _one = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        for (account, source) in self.accounts.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let g = source();
            for (state, n) in [("busy", g.busy), ("idle", g.idle), ("provisioned", g.provisioned)] {
                self.environments.get_or_create(&StateLabels { account: account.clone(), state }).set(gauge(n));
            }
            self.in_flight.get_or_create(&AccountLabels { account: account.clone() }).set(gauge(g.in_flight));
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines().find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')).map(|v| v.parse().unwrap()))
    }

    #[test]
    fn counts_invocations_as_they_end() {
        let m = Metrics::new();
        let ok =
            Invocation { account: "1", function: "f", version: "$LATEST", error: false, duration: Duration::from_millis(3), init: None };
        let cold = Invocation { init: Some(Duration::from_millis(40)), ..ok };
        let failed = Invocation { error: true, version: "2", ..ok };
        for i in [ok, cold, failed] {
            m.invoked(&i);
        }
        m.throttled("1", "f");
        let text = m.encode();
        let cases = [
            (r#"nimbus_lambda_invocations_total{account="1",function="f",version="$LATEST"}"#, Some(2.0)),
            (r#"nimbus_lambda_invocations_total{account="1",function="f",version="2"}"#, Some(1.0)),
            (r#"nimbus_lambda_errors_total{account="1",function="f",version="2"}"#, Some(1.0)),
            (r#"nimbus_lambda_errors_total{account="1",function="f",version="$LATEST"}"#, None),
            (r#"nimbus_lambda_cold_starts_total{account="1",function="f",version="$LATEST"}"#, Some(1.0)),
            (r#"nimbus_lambda_init_duration_seconds_sum{account="1",function="f",version="$LATEST"}"#, Some(0.04)),
            (r#"nimbus_lambda_duration_seconds_count{account="1",function="f",version="$LATEST"}"#, Some(2.0)),
            (r#"nimbus_lambda_duration_seconds_bucket{le="0.0025",account="1",function="f",version="$LATEST"}"#, Some(0.0)),
            (r#"nimbus_lambda_duration_seconds_bucket{le="0.005",account="1",function="f",version="$LATEST"}"#, Some(2.0)),
            (r#"nimbus_lambda_throttles_total{account="1",function="f",version=""}"#, Some(1.0)),
        ];
        for (series, want) in cases {
            assert_eq!(value(&text, series), want, "{series} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn function_series_are_bounded() {
        let m = Metrics::new();
        let name = |n: usize| format!("f{n}");
        for n in 0..MAX_FUNCTION_SERIES + 10 {
            let function = name(n);
            m.invoked(&Invocation {
                account: "1",
                function: &function,
                version: "$LATEST",
                error: false,
                duration: Duration::ZERO,
                init: None,
            });
        }
        // A series that exists keeps counting; new ones go to `_other`.
        m.invoked(&Invocation { account: "1", function: "f0", version: "$LATEST", error: false, duration: Duration::ZERO, init: None });
        let text = m.encode();
        assert_eq!(m.series.load(Ordering::Relaxed), MAX_FUNCTION_SERIES);
        assert_eq!(text.matches("nimbus_lambda_invocations_total{").count(), MAX_FUNCTION_SERIES + 1);
        assert_eq!(value(&text, r#"nimbus_lambda_invocations_total{account="1",function="f0",version="$LATEST"}"#), Some(2.0));
        assert_eq!(value(&text, r#"nimbus_lambda_invocations_total{account="1",function="_other",version="_other"}"#), Some(10.0));
    }

    #[test]
    fn gauges_come_from_their_sources_at_scrape_time() {
        let m = Metrics::new();
        let busy = Arc::new(std::sync::atomic::AtomicU64::new(3));
        let b = busy.clone();
        m.watch_account("1", move || AccountGauges { busy: b.load(Ordering::Relaxed), idle: 5, provisioned: 0, in_flight: 2 });
        m.watch_account("2", AccountGauges::default);
        m.request("lambda", 200, Duration::from_micros(80));
        let text = m.encode();
        assert_eq!(value(&text, r#"nimbus_environments{account="1",state="busy"}"#), Some(3.0));
        assert_eq!(value(&text, r#"nimbus_environments{account="1",state="idle"}"#), Some(5.0));
        assert_eq!(value(&text, r#"nimbus_environments{account="2",state="idle"}"#), Some(0.0));
        assert_eq!(value(&text, r#"nimbus_lambda_concurrent_executions{account="1"}"#), Some(2.0));
        assert_eq!(value(&text, r#"nimbus_http_requests_total{service="lambda",code="200"}"#), Some(1.0));
        busy.store(0, Ordering::Relaxed);
        assert_eq!(value(&m.encode(), r#"nimbus_environments{account="1",state="busy"}"#), Some(0.0));
    }
}

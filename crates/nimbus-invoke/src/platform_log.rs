//! The lines Lambda itself writes into a function's log stream, in the function's log
//! format: AWS's text lines (`START`, `END`, `REPORT`, `INIT_REPORT`…), or with the JSON
//! format its `platform.*` records (`{"time", "type", "record"}`), dropped below the
//! function's system log level.

use std::time::Duration;

use nimbus_model::logging::{LogLevel, LoggingConfig};
use nimbus_sandbox::InvokeTimings;
use serde::Serialize;

/// How an invocation ended, as the report gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Status {
    Success,
    /// The function or its runtime failed: the error type.
    Error(String),
    Timeout,
}

/// One function version's way of writing platform lines.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlatformLog {
    /// None: text lines. Some: JSON records at or above this level.
    json_from: Option<LogLevel>,
}

#[derive(Serialize)]
struct Envelope<'a, R: Serialize> {
    time: String,
    #[serde(rename = "type")]
    kind: &'a str,
    record: R,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StartRecord<'a> {
    request_id: &'a str,
    version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tracing: Option<Tracing<'a>>,
}

#[derive(Serialize)]
struct Tracing<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    value: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReportMetrics {
    duration_ms: f64,
    #[serde(rename = "billedDurationMs")]
    billed_duration_ms: u64,
    #[serde(rename = "memorySizeMB")]
    memory_size_mb: u32,
    #[serde(rename = "maxMemoryUsedMB")]
    max_memory_used_mb: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    init_duration_ms: Option<f64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReportRecord<'a> {
    request_id: &'a str,
    metrics: ReportMetrics,
    #[serde(skip_serializing_if = "Option::is_none")]
    tracing: Option<Tracing<'a>>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_type: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RuntimeDoneMetrics {
    duration_ms: f64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RuntimeDoneRecord<'a> {
    request_id: &'a str,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_type: Option<&'a str>,
    metrics: RuntimeDoneMetrics,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InitReportRecord<'a> {
    initialization_type: &'static str,
    phase: &'a str,
    status: &'a str,
    metrics: RuntimeDoneMetrics,
}

/// Milliseconds with AWS's three decimals in JSON records.
fn ms3(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

impl Status {
    fn name(&self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Error(_) => "error",
            Status::Timeout => "timeout",
        }
    }

    fn error_type(&self) -> Option<&str> {
        match self {
            Status::Error(t) => Some(t),
            _ => None,
        }
    }
}

impl PlatformLog {
    pub(crate) fn new(logging: &LoggingConfig) -> PlatformLog {
        PlatformLog { json_from: logging.system_filter() }
    }

    fn json<R: Serialize>(&self, level: LogLevel, kind: &str, record: R) -> Option<String> {
        let from = self.json_from?;
        if level < from {
            return None;
        }
        let time = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
        serde_json::to_string(&Envelope { time, kind, record }).ok()
    }

    /// `START RequestId: … Version: …` or `platform.start` (INFO), with the trace header
    /// when the function's tracing is active.
    pub(crate) fn start(&self, request_id: &str, version: &str, trace: Option<&str>) -> Option<String> {
        if self.json_from.is_none() {
            return Some(format!("START RequestId: {request_id} Version: {version}"));
        }
        let tracing = trace.map(|value| Tracing { kind: "X-Amzn-Trace-Id", value });
        self.json(LogLevel::Info, "platform.start", StartRecord { request_id, version, tracing })
    }

    /// `END RequestId: …`; JSON logs have no such record.
    pub(crate) fn end(&self, request_id: &str) -> Option<String> {
        self.json_from.is_none().then(|| format!("END RequestId: {request_id}"))
    }

    /// JSON only: `platform.runtimeDone` (DEBUG), how the runtime's work on the event ended.
    pub(crate) fn runtime_done(&self, request_id: &str, t: &InvokeTimings, status: &Status) -> Option<String> {
        let record = RuntimeDoneRecord {
            request_id,
            status: status.name(),
            error_type: status.error_type(),
            metrics: RuntimeDoneMetrics { duration_ms: ms3(t.duration) },
        };
        self.json(LogLevel::Debug, "platform.runtimeDone", record)
    }

    /// `REPORT RequestId: … Duration: …` or `platform.report` (INFO).
    pub(crate) fn report(
        &self,
        request_id: &str,
        t: &InvokeTimings,
        memory_mb: u32,
        status: &Status,
        trace: Option<&str>,
    ) -> Option<String> {
        let ms = t.duration.as_secs_f64() * 1000.0;
        let billed = ms.ceil().max(1.0) as u64;
        if self.json_from.is_none() {
            let mut line = format!(
                "REPORT RequestId: {request_id}\tDuration: {ms:.2} ms\tBilled Duration: {billed} ms\tMemory Size: {memory_mb} MB\tMax Memory Used: {} MB",
                t.max_memory_mb
            );
            if let Some(init) = t.init_duration {
                line.push_str(&format!("\tInit Duration: {:.2} ms", init.as_secs_f64() * 1000.0));
            }
            if *status == Status::Timeout {
                line.push_str("\tStatus: timeout");
            }
            return Some(line);
        }
        let record = ReportRecord {
            request_id,
            metrics: ReportMetrics {
                duration_ms: ms3(t.duration),
                billed_duration_ms: billed,
                memory_size_mb: memory_mb,
                max_memory_used_mb: t.max_memory_mb,
                init_duration_ms: t.init_duration.map(ms3),
            },
            tracing: trace.map(|value| Tracing { kind: "X-Amzn-Trace-Id", value }),
            status: status.name(),
            error_type: status.error_type(),
        };
        self.json(LogLevel::Info, "platform.report", record)
    }

    /// An init that did not end well: `INIT_REPORT Init Duration: 10000.38 ms Phase: init
    /// Status: timeout` (phase `invoke` for the init AWS runs again inside an invocation), or
    /// `platform.initReport` (INFO).
    pub(crate) fn init_report(&self, took: Duration, phase: &str, status: &str) -> Option<String> {
        if self.json_from.is_none() {
            return Some(format!("INIT_REPORT Init Duration: {:.2} ms\tPhase: {phase}\tStatus: {status}", took.as_secs_f64() * 1000.0));
        }
        let record =
            InitReportRecord { initialization_type: "on-demand", phase, status, metrics: RuntimeDoneMetrics { duration_ms: ms3(took) } };
        self.json(LogLevel::Info, "platform.initReport", record)
    }

    /// `<time> <request id> Task timed out after N.00 seconds`; JSON logs say it in the
    /// report's status.
    pub(crate) fn timed_out(&self, request_id: &str, timeout_secs: u32) -> Option<String> {
        self.json_from.is_none().then(|| {
            format!("{} {request_id} Task timed out after {timeout_secs}.00 seconds", chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ"))
        })
    }

    /// `RequestId: … Error: exit status 1` and `Runtime.ExitError`; JSON logs say it in the
    /// report's status and error type.
    pub(crate) fn exited(&self, request_id: &str, why: &str) -> Option<String> {
        self.json_from.is_none().then(|| format!("RequestId: {request_id} Error: {why}\nRuntime.ExitError"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nimbus_model::logging::LogFormat;

    fn timings(init: Option<u64>) -> InvokeTimings {
        InvokeTimings {
            init_duration: init.map(Duration::from_micros),
            duration: Duration::from_micros(2_301),
            max_memory_mb: 40,
            delivered: true,
        }
    }

    fn json(system: LogLevel) -> PlatformLog {
        PlatformLog::new(&LoggingConfig { format: LogFormat::Json, system_level: Some(system), ..Default::default() })
    }

    fn record(line: Option<String>) -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(&line.expect("a line")).unwrap();
        assert!(v["time"].as_str().is_some_and(|t| t.ends_with('Z') && t.len() == 24), "{v}");
        v
    }

    #[test]
    fn text_lines() {
        let text = PlatformLog::new(&LoggingConfig::default());
        let cases = [
            (text.start("id", "$LATEST", Some("Root=1")), Some("START RequestId: id Version: $LATEST")),
            (text.end("id"), Some("END RequestId: id")),
            (
                text.report("id", &timings(Some(1_500)), 128, &Status::Success, None),
                Some("REPORT RequestId: id\tDuration: 2.30 ms\tBilled Duration: 3 ms\tMemory Size: 128 MB\tMax Memory Used: 40 MB\tInit Duration: 1.50 ms"),
            ),
            (
                text.report("id", &timings(None), 128, &Status::Timeout, None),
                Some("REPORT RequestId: id\tDuration: 2.30 ms\tBilled Duration: 3 ms\tMemory Size: 128 MB\tMax Memory Used: 40 MB\tStatus: timeout"),
            ),
            (
                text.init_report(Duration::from_micros(10_000_380), "init", "timeout"),
                Some("INIT_REPORT Init Duration: 10000.38 ms\tPhase: init\tStatus: timeout"),
            ),
            (text.exited("id", "exit status 1"), Some("RequestId: id Error: exit status 1\nRuntime.ExitError")),
            (text.runtime_done("id", &timings(None), &Status::Success), None),
        ];
        for (got, want) in cases {
            assert_eq!(got.as_deref(), want);
        }
        assert!(text.timed_out("id", 3).unwrap().ends_with(" id Task timed out after 3.00 seconds"));
    }

    #[test]
    fn json_records() {
        let log = json(LogLevel::Info);
        let start = record(log.start("id", "$LATEST", None));
        assert_eq!(start["type"], "platform.start");
        assert_eq!(start["record"], serde_json::json!({"requestId": "id", "version": "$LATEST"}));
        let traced = record(log.start("id", "7", Some("Root=1-a-b;Sampled=1")));
        assert_eq!(traced["record"]["tracing"], serde_json::json!({"type": "X-Amzn-Trace-Id", "value": "Root=1-a-b;Sampled=1"}));

        let report = record(log.report("id", &timings(Some(1_500)), 128, &Status::Success, None));
        assert_eq!(report["type"], "platform.report");
        assert_eq!(
            report["record"],
            serde_json::json!({
                "requestId": "id",
                "metrics": {"durationMs": 2.301, "billedDurationMs": 3, "memorySizeMB": 128, "maxMemoryUsedMB": 40, "initDurationMs": 1.5},
                "status": "success"
            })
        );
        let failed = record(log.report("id", &timings(None), 128, &Status::Error("Runtime.ExitError".into()), None));
        assert_eq!(
            (failed["record"]["status"].as_str(), failed["record"]["errorType"].as_str()),
            (Some("error"), Some("Runtime.ExitError"))
        );
        assert!(failed["record"]["metrics"].get("initDurationMs").is_none());
        let timeout = record(log.report("id", &timings(None), 128, &Status::Timeout, None));
        assert_eq!(timeout["record"]["status"], "timeout");
        let init = record(log.init_report(Duration::from_millis(10_000), "init", "timeout"));
        assert_eq!(init["type"], "platform.initReport");
        assert_eq!(init["record"]["phase"], "init");

        // No END, no text-only lines.
        assert_eq!((log.end("id"), log.exited("id", "x"), log.timed_out("id", 3)), (None, None, None));
    }

    #[test]
    fn json_records_follow_the_system_level() {
        let t = timings(None);
        let cases = [
            // (system level, start and report logged, runtimeDone logged)
            (LogLevel::Debug, true, true),
            (LogLevel::Info, true, false),
            (LogLevel::Warn, false, false),
        ];
        for (level, info, debug) in cases {
            let log = json(level);
            assert_eq!(log.start("id", "1", None).is_some(), info, "{level:?}");
            assert_eq!(log.report("id", &t, 128, &Status::Success, None).is_some(), info, "{level:?}");
            assert_eq!(log.runtime_done("id", &t, &Status::Success).is_some(), debug, "{level:?}");
        }
    }
}

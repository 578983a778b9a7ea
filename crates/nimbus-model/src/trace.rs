//! Trace context: what callers send (W3C `traceparent`, X-Ray's `X-Amzn-Trace-Id`), what a
//! function receives (`Lambda-Runtime-Trace-Id`, i.e. `_X_AMZN_TRACE_ID`), and the timeline
//! of one invocation that the invoker hands to a [`TraceSink`] (the binary's OTLP exporter).
//! One id space for both formats, as the OpenTelemetry AWS X-Ray propagator maps it: X-Ray's
//! root `1-<8 hex>-<24 hex>` is the 32-hex trace id `<8 hex><24 hex>`, its `Parent` the span id.

use std::fmt;
use std::time::SystemTime;

/// A 16-byte trace id (never all zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceId(pub [u8; 16]);

/// An 8-byte span id (never all zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpanId(pub [u8; 8]);

fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let b = s.as_bytes();
    if b.len() != 2 * N {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = digit(b[2 * i])? << 4 | digit(b[2 * i + 1])?;
    }
    (out != [0u8; N]).then_some(out)
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 32];
    for (i, b) in bytes.iter().take(16).enumerate() {
        buf[2 * i] = DIGITS[usize::from(b >> 4)];
        buf[2 * i + 1] = DIGITS[usize::from(b & 15)];
    }
    f.write_str(std::str::from_utf8(&buf[..2 * bytes.len().min(16)]).expect("hex digits are ASCII"))
}

impl TraceId {
    /// 32 hex digits, not all zero.
    pub fn from_hex(s: &str) -> Option<TraceId> {
        parse_hex(s).map(TraceId)
    }

    /// X-Ray's form: `1-<first 8 hex>-<last 24 hex>`.
    pub fn xray_root(&self) -> String {
        let hex = self.to_string();
        format!("1-{}-{}", &hex[..8], &hex[8..])
    }

    /// A new trace id as X-Ray makes them: the epoch second, then 12 bytes of `random`.
    pub fn new(now: SystemTime, random: [u8; 12]) -> TraceId {
        let secs = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs()) as u32;
        let mut id = [0u8; 16];
        id[..4].copy_from_slice(&secs.to_be_bytes());
        id[4..].copy_from_slice(&random);
        if id == [0u8; 16] {
            id[15] = 1;
        }
        TraceId(id)
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl SpanId {
    /// 16 hex digits, not all zero.
    pub fn from_hex(s: &str) -> Option<SpanId> {
        parse_hex(s).map(SpanId)
    }

    /// From random bits (never all zero).
    pub fn from_random(bits: u64) -> SpanId {
        SpanId(bits.max(1).to_be_bytes())
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

/// A caller's trace context: the trace an invocation joins, the caller's span (X-Ray may
/// send none) and its sampling decision (None: not made, Nimbus decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parent {
    pub trace_id: TraceId,
    pub span_id: Option<SpanId>,
    pub sampled: Option<bool>,
}

impl Parent {
    /// A W3C `traceparent`: `<version>-<32 hex trace>-<16 hex span>-<2 hex flags>`. Version
    /// `ff` is invalid; version `00` has exactly four fields; later versions may append more.
    pub fn from_traceparent(value: &str) -> Option<Parent> {
        let value = value.trim();
        let mut parts = value.split('-');
        let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let version = parse_hex::<1>(version).map_or(Some(0), |v| (v[0] != 0xff).then_some(v[0]))?;
        if version == 0 && (parts.next().is_some() || value.len() != 55) {
            return None;
        }
        if flags.len() != 2 {
            return None;
        }
        let flags = u8::from_str_radix(flags, 16).ok()?;
        Some(Parent { trace_id: TraceId::from_hex(trace)?, span_id: Some(SpanId::from_hex(span)?), sampled: Some(flags & 1 == 1) })
    }

    /// X-Ray's `X-Amzn-Trace-Id`: `Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=<0|1|?>`,
    /// fields in any order, others (`Lineage`, `Self`) ignored.
    pub fn from_xray(value: &str) -> Option<Parent> {
        let (mut root, mut span_id, mut sampled) = (None, None, None);
        for field in value.split(';') {
            let Some((key, v)) = field.split_once('=') else { continue };
            match key.trim() {
                "Root" => {
                    let mut p = v.trim().split('-');
                    let (one, epoch, rest) = (p.next()?, p.next()?, p.next()?);
                    if one != "1" || epoch.len() != 8 || rest.len() != 24 || p.next().is_some() {
                        return None;
                    }
                    root = Some(TraceId::from_hex(&format!("{epoch}{rest}"))?);
                }
                "Parent" => span_id = SpanId::from_hex(v.trim()),
                "Sampled" => {
                    sampled = match v.trim() {
                        "1" => Some(true),
                        "0" => Some(false),
                        _ => None,
                    }
                }
                _ => {}
            }
        }
        Some(Parent { trace_id: root?, span_id, sampled })
    }

    /// The context of an HTTP request: `traceparent` first (the W3C standard), else
    /// `X-Amzn-Trace-Id`. A malformed header is ignored, as a propagator does.
    pub fn from_headers(traceparent: Option<&str>, xray: Option<&str>) -> Option<Parent> {
        traceparent.and_then(Parent::from_traceparent).or_else(|| xray.and_then(Parent::from_xray))
    }

    /// This context in X-Ray's header form (what an asynchronous event keeps).
    pub fn to_xray(&self) -> String {
        let mut s = format!("Root={}", self.trace_id.xray_root());
        if let Some(p) = self.span_id {
            s.push_str(&format!(";Parent={p}"));
        }
        if let Some(sampled) = self.sampled {
            s.push_str(if sampled { ";Sampled=1" } else { ";Sampled=0" });
        }
        s
    }
}

/// What kind of source started an invocation, as OpenTelemetry's `faas.trigger` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// Function URLs and API Gateway routes.
    Http,
    /// Queues, topics and event buses.
    PubSub,
    /// Object and stream changes.
    Datasource,
    /// Schedules.
    Timer,
    /// A direct Invoke call.
    #[default]
    Other,
}

impl Trigger {
    pub fn is_other(&self) -> bool {
        *self == Trigger::Other
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Http => "http",
            Trigger::PubSub => "pubsub",
            Trigger::Datasource => "datasource",
            Trigger::Timer => "timer",
            Trigger::Other => "other",
        }
    }
}

/// The trace context an invocation request carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TraceContext {
    /// The caller's context (its trace becomes the invocation's).
    pub parent: Option<Parent>,
    /// The kind of source that started the invocation.
    pub trigger: Trigger,
}

/// The header a function receives on `/next` (`Lambda-Runtime-Trace-Id`), which runtimes
/// put in `_X_AMZN_TRACE_ID`: the invocation's trace, the span the function's own spans
/// should hang from, the sampling decision, and AWS's `Lineage` (recursive-loop counter).
pub fn function_header(trace_id: TraceId, parent: SpanId, sampled: bool) -> String {
    let hex = trace_id.to_string();
    format!("Root=1-{}-{};Parent={parent};Sampled={};Lineage=1:{}:0", &hex[..8], &hex[8..], u8::from(sampled), &hex[24..])
}

/// When each phase of one invocation began and ended, and what it was: handed by the
/// invoker to the [`TraceSink`] after the invocation ended, which makes spans of it.
#[derive(Debug, Clone)]
pub struct InvocationTrace {
    pub trace_id: TraceId,
    /// The invocation's own (server) span, and the handler's span, chosen before the event
    /// went out (the function got `handler` as its `Parent`).
    pub span_id: SpanId,
    pub handler_span_id: SpanId,
    /// The caller's span, when it sent one.
    pub parent: Option<SpanId>,
    /// Whether the parent came from the caller's process (a remote parent).
    pub parent_is_remote: bool,
    pub trigger: Trigger,
    pub function: String,
    pub version: String,
    /// The qualifier the caller named (an alias or a version), if any.
    pub qualifier: Option<String>,
    pub invoked_arn: String,
    pub region: String,
    pub account: String,
    pub request_id: String,
    /// The environment was started for this invocation (it ran init).
    pub cold_start: bool,
    /// Invoke path entered; environment ready (the end of `queue wait`); init (cold starts);
    /// the handler (event sent on the Runtime API to the runtime's answer); the end.
    pub started: SystemTime,
    pub environment_ready: SystemTime,
    pub init: Option<(SystemTime, SystemTime)>,
    pub handler: Option<(SystemTime, SystemTime)>,
    pub ended: SystemTime,
    /// The function error type (`Unhandled`, `Runtime.ExitError`, …) or the service's.
    pub error: Option<String>,
}

/// An asynchronous event accepted into the queue (the 202): its processing, later, is a
/// child of this span.
#[derive(Debug, Clone)]
pub struct AcceptedEvent {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent: Option<SpanId>,
    pub function: String,
    pub qualifier: Option<String>,
    pub region: String,
    pub account: String,
    pub request_id: String,
    pub started: SystemTime,
    pub ended: SystemTime,
}

/// Where the invoker sends each invocation's timeline; must not block.
pub trait TraceSink: Send + Sync {
    fn record(&self, trace: InvocationTrace);
    fn accepted(&self, event: AcceptedEvent);
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "5759e988bd862e3fe1be46a994272793";
    const S: &str = "53995c3f42cd8ad8";

    fn parent(sampled: Option<bool>, span: bool) -> Option<Parent> {
        Some(Parent { trace_id: TraceId::from_hex(T).unwrap(), span_id: span.then(|| SpanId::from_hex(S).unwrap()), sampled })
    }

    #[test]
    fn traceparent() {
        let cases = [
            ("00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01", parent(Some(true), true)),
            ("00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-00", parent(Some(false), true)),
            (" 00-5759E988BD862E3FE1BE46A994272793-53995c3f42cd8ad8-03 ", parent(Some(true), true)),
            // a later version may append fields
            ("01-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01-extra", parent(Some(true), true)),
            ("00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01-extra", None),
            ("ff-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01", None),
            ("00-00000000000000000000000000000000-53995c3f42cd8ad8-01", None),
            ("00-5759e988bd862e3fe1be46a994272793-0000000000000000-01", None),
            ("00-5759e988bd862e3fe1be46a99427279-53995c3f42cd8ad8-01", None),
            ("00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-1", None),
            ("00-5759e988bd862e3fe1be46a99427279g-53995c3f42cd8ad8-01", None),
            ("", None),
        ];
        for (header, want) in cases {
            assert_eq!(Parent::from_traceparent(header), want, "{header:?}");
        }
    }

    #[test]
    fn xray() {
        let cases = [
            ("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1", parent(Some(true), true)),
            ("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0", parent(Some(false), true)),
            ("Sampled=?; Parent=53995c3f42cd8ad8; Root=1-5759e988-bd862e3fe1be46a994272793", parent(None, true)),
            ("Root=1-5759e988-bd862e3fe1be46a994272793", parent(None, false)),
            ("Root=1-5759e988-bd862e3fe1be46a994272793;Lineage=1:abcd:0;Self=1-x", parent(None, false)),
            ("Root=2-5759e988-bd862e3fe1be46a994272793", None),
            ("Root=1-5759e98-bd862e3fe1be46a9942727930", None),
            ("Parent=53995c3f42cd8ad8;Sampled=1", None),
            ("garbage", None),
        ];
        for (header, want) in cases {
            assert_eq!(Parent::from_xray(header), want, "{header:?}");
        }
    }

    #[test]
    fn headers_prefer_traceparent_and_skip_malformed() {
        let tp = "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01";
        let other = "Root=1-11111111-222222222222222222222222";
        assert_eq!(Parent::from_headers(Some(tp), Some(other)), parent(Some(true), true));
        assert_eq!(Parent::from_headers(Some("junk"), Some(other)).unwrap().trace_id.to_string(), "11111111222222222222222222222222");
        assert_eq!(Parent::from_headers(None, None), None);
    }

    #[test]
    fn ids_convert_both_ways() {
        let cases =
            [(T, "1-5759e988-bd862e3fe1be46a994272793"), ("0000000100000000000000000000000f", "1-00000001-00000000000000000000000f")];
        for (w3c, root) in cases {
            let id = TraceId::from_hex(w3c).unwrap();
            assert_eq!(id.xray_root(), root);
            let back = Parent::from_xray(&format!("Root={root}")).unwrap().trace_id;
            assert_eq!(back, id);
        }
        for p in [parent(Some(true), true), parent(None, false), parent(Some(false), true)] {
            let p = p.unwrap();
            assert_eq!(Parent::from_xray(&p.to_xray()), Some(p));
        }
    }

    #[test]
    fn new_ids() {
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(0x5759e988);
        let id = TraceId::new(now, [0xab; 12]);
        assert_eq!(id.to_string(), "5759e988abababababababababababab");
        assert_eq!(TraceId::new(SystemTime::UNIX_EPOCH, [0; 12]).to_string(), "00000000000000000000000000000001");
        assert_eq!(SpanId::from_random(0).to_string(), "0000000000000001");
    }

    #[test]
    fn function_header_shape() {
        let h = function_header(TraceId::from_hex(T).unwrap(), SpanId::from_hex(S).unwrap(), true);
        assert_eq!(h, "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=1:94272793:0");
        let p = Parent::from_xray(&h).unwrap();
        assert_eq!((p.trace_id.to_string().as_str(), p.span_id.unwrap().to_string().as_str()), (T, S));
    }
}

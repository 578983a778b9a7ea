//! Invocation traces exported over OTLP/HTTP (protobuf): each [`InvocationTrace`] the invoker
//! hands over becomes a server span with `queue wait`, `init`, `invoke` and `response`
//! children, queued on OpenTelemetry's batch span processor, whose own thread sends batches
//! to the collector. Recording never blocks the invoke path: the queue is bounded
//! (`OTEL_BSP_MAX_QUEUE_SIZE`, 2048 spans by default) and spans beyond it, or in batches the
//! collector does not take, are dropped.
//!
//! Spans are built from the invoker's timeline after the invocation ended, with the ids it
//! chose before the event went out (the function's `_X_AMZN_TRACE_ID` names its `invoke`
//! span as `Parent`), so they go to the processor as finished `SpanData`, not through a
//! tracer.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use nimbus_model::trace::{AcceptedEvent, InvocationTrace, SpanId, TraceId, TraceSink};
use opentelemetry::trace::{SpanContext, SpanKind, Status, TraceFlags, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_http::{HttpClient, HttpError};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SpanData, SpanEvents, SpanLinks, SpanProcessor};
use opentelemetry_sdk::Resource;

/// How long one export may take before it is given up (and its batch dropped).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of a collector's answer that is read.
const MAX_ANSWER: usize = 64 * 1024;

/// Why the exporter could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error("--otlp-endpoint {0:?}: {1}")]
    Endpoint(String, String),
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(String),
}

/// Who is exporting: the resource every span carries.
#[derive(Debug, Clone)]
pub struct Service {
    pub version: String,
    pub host: String,
}

/// The OTLP traces endpoint for a base URL as `OTEL_EXPORTER_OTLP_ENDPOINT` gives it
/// (`http://host:4318` → `http://host:4318/v1/traces`); a URL that already ends in
/// `/v1/traces` is kept.
pub fn traces_url(base: &str) -> Result<String, OtlpError> {
    let bad = |why: &str| OtlpError::Endpoint(base.to_string(), why.to_string());
    let uri: http::Uri = base.parse().map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(bad("the endpoint must be an http:// or https:// URL")),
    }
    if uri.host().is_none() {
        return Err(bad("the endpoint has no host"));
    }
    let trimmed = base.trim_end_matches('/');
    Ok(if trimmed.ends_with("/v1/traces") { trimmed.to_string() } else { format!("{trimmed}/v1/traces") })
}

/// The exporter: a [`TraceSink`] for the invoker.
pub struct OtlpTraces {
    processor: BatchSpanProcessor,
    scope: InstrumentationScope,
}

impl std::fmt::Debug for OtlpTraces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpTraces").finish_non_exhaustive()
    }
}

impl OtlpTraces {
    /// Starts exporting to `endpoint` (a base URL, see [`traces_url`]). HTTP requests run on
    /// `runtime`; batching runs on the processor's own thread.
    pub fn start(endpoint: &str, service: &Service, runtime: tokio::runtime::Handle) -> Result<Arc<OtlpTraces>, OtlpError> {
        let url = traces_url(endpoint)?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(Client::new(runtime)?)
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(url)
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| OtlpError::Exporter(e.to_string()))?;
        // OTEL_BSP_* variables tune the queue and the delay (defaults: 2048 spans, 5 s).
        let mut processor = BatchSpanProcessor::builder(exporter).with_batch_config(BatchConfigBuilder::default().build()).build();
        processor.set_resource(&resource(service));
        let scope = InstrumentationScope::builder("nimbus").with_version(service.version.clone()).build();
        Ok(Arc::new(OtlpTraces { processor, scope }))
    }

    /// Sends what is queued and stops (blocks for at most the export timeout).
    pub fn shutdown(&self) {
        if let Err(e) = self.processor.shutdown_with_timeout(EXPORT_TIMEOUT) {
            tracing::warn!("OTLP exporter: {e}");
        }
    }
}

impl TraceSink for OtlpTraces {
    fn record(&self, trace: InvocationTrace) {
        for span in invocation_spans(&trace, &self.scope) {
            self.processor.on_end(span);
        }
    }

    fn accepted(&self, event: AcceptedEvent) {
        self.processor.on_end(accepted_span(&event, &self.scope));
    }
}

fn resource(service: &Service) -> Resource {
    Resource::builder()
        .with_service_name("nimbus")
        .with_attributes([
            KeyValue::new("service.version", service.version.clone()),
            KeyValue::new("host.name", service.host.clone()),
            KeyValue::new("cloud.provider", "aws"),
        ])
        .build()
}

fn otel_trace_id(id: TraceId) -> opentelemetry::trace::TraceId {
    opentelemetry::trace::TraceId::from_bytes(id.0)
}

fn otel_span_id(id: SpanId) -> opentelemetry::trace::SpanId {
    opentelemetry::trace::SpanId::from_bytes(id.0)
}

/// One finished span of `trace_id`.
#[allow(clippy::too_many_arguments)]
fn span(
    scope: &InstrumentationScope,
    trace_id: TraceId,
    span_id: opentelemetry::trace::SpanId,
    parent: Option<(SpanId, bool)>,
    kind: SpanKind,
    name: impl Into<Cow<'static, str>>,
    (start_time, end_time): (SystemTime, SystemTime),
    attributes: Vec<KeyValue>,
    status: Status,
) -> SpanData {
    SpanData {
        span_context: SpanContext::new(otel_trace_id(trace_id), span_id, TraceFlags::SAMPLED, false, TraceState::NONE),
        parent_span_id: parent.map_or(opentelemetry::trace::SpanId::INVALID, |(p, _)| otel_span_id(p)),
        parent_span_is_remote: parent.is_some_and(|(_, remote)| remote),
        span_kind: kind,
        name: name.into(),
        start_time,
        end_time: end_time.max(start_time),
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status,
        instrumentation_scope: scope.clone(),
    }
}

/// A span id for a child that nobody outside needs to know: derived from the invocation's
/// own span id, so no random source is read per span.
fn child_id(of: SpanId, n: u8) -> opentelemetry::trace::SpanId {
    let mut b = of.0;
    b[7] ^= n.wrapping_mul(0x9d);
    b[0] ^= n;
    if b == of.0 || b == [0; 8] {
        b[3] ^= 0x5a;
    }
    opentelemetry::trace::SpanId::from_bytes(b)
}

/// The spans of one invocation: the server span and its phases.
pub fn invocation_spans(t: &InvocationTrace, scope: &InstrumentationScope) -> Vec<SpanData> {
    let mut attributes = vec![
        KeyValue::new("faas.invoked_name", t.function.clone()),
        KeyValue::new("faas.invoked_provider", "aws"),
        KeyValue::new("faas.invoked_region", t.region.clone()),
        KeyValue::new("faas.name", t.function.clone()),
        KeyValue::new("faas.version", t.version.clone()),
        KeyValue::new("faas.invocation_id", t.request_id.clone()),
        KeyValue::new("faas.coldstart", t.cold_start),
        KeyValue::new("faas.trigger", t.trigger.as_str()),
        KeyValue::new("cloud.provider", "aws"),
        KeyValue::new("cloud.region", t.region.clone()),
        KeyValue::new("cloud.account.id", t.account.clone()),
        KeyValue::new("cloud.resource_id", t.invoked_arn.clone()),
    ];
    if let Some(q) = &t.qualifier {
        attributes.push(KeyValue::new("aws.lambda.qualifier", q.clone()));
    }
    let status = match &t.error {
        Some(e) => {
            attributes.push(KeyValue::new("error.type", e.clone()));
            Status::error(e.clone())
        }
        None => Status::Unset,
    };
    let root = t.span_id;
    let child = |id, name: &'static str, at, attributes| {
        span(scope, t.trace_id, id, Some((root, false)), SpanKind::Internal, name, at, attributes, Status::Unset)
    };
    let mut spans = Vec::with_capacity(5);
    spans.push(child(child_id(root, 1), "queue wait", (t.started, t.environment_ready), Vec::new()));
    if let Some(init) = t.init {
        spans.push(child(child_id(root, 2), "init", init, vec![KeyValue::new("faas.coldstart", true)]));
    }
    if let Some((start, end)) = t.handler {
        let mut handler = child(otel_span_id(t.handler_span_id), "invoke", (start, end), Vec::new());
        if let Some(e) = &t.error {
            handler.status = Status::error(e.clone());
        }
        spans.push(handler);
        spans.push(child(child_id(root, 3), "response", (end, t.ended), Vec::new()));
    }
    spans.push(span(
        scope,
        t.trace_id,
        otel_span_id(root),
        t.parent.map(|p| (p, t.parent_is_remote)),
        SpanKind::Server,
        t.function.clone(),
        (t.started, t.ended),
        attributes,
        status,
    ));
    spans
}

/// The span of an asynchronous event's acceptance (the 202).
pub fn accepted_span(e: &AcceptedEvent, scope: &InstrumentationScope) -> SpanData {
    let mut attributes = vec![
        KeyValue::new("faas.invoked_name", e.function.clone()),
        KeyValue::new("faas.invoked_provider", "aws"),
        KeyValue::new("faas.invoked_region", e.region.clone()),
        KeyValue::new("faas.invocation_id", e.request_id.clone()),
        KeyValue::new("cloud.account.id", e.account.clone()),
        KeyValue::new("aws.lambda.invocation_type", "Event"),
    ];
    if let Some(q) = &e.qualifier {
        attributes.push(KeyValue::new("aws.lambda.qualifier", q.clone()));
    }
    span(
        scope,
        e.trace_id,
        otel_span_id(e.span_id),
        e.parent.map(|p| (p, true)),
        SpanKind::Server,
        format!("{} event accepted", e.function),
        (e.started, e.ended),
        attributes,
        Status::Unset,
    )
}

type Connector = hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;

/// The exporter's HTTP client: the workspace's hyper and rustls. The batch processor calls it
/// from its own thread (not a Tokio worker), so each request is spawned on the server's
/// runtime and awaited from there.
#[derive(Debug, Clone)]
struct Client {
    inner: hyper_util::client::legacy::Client<Connector, Full<Bytes>>,
    runtime: tokio::runtime::Handle,
}

impl Client {
    fn new(runtime: tokio::runtime::Handle) -> Result<Client, OtlpError> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| OtlpError::Exporter(format!("no system roots for https collectors: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        let inner = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Client { inner, runtime })
    }
}

#[async_trait::async_trait]
impl HttpClient for Client {
    async fn send_bytes(&self, request: http::Request<Bytes>) -> Result<http::Response<Bytes>, HttpError> {
        let (parts, body) = request.into_parts();
        let request = http::Request::from_parts(parts, Full::new(body));
        let client = self.inner.clone();
        let send = async move {
            let answer = client.request(request).await?;
            let (parts, body) = answer.into_parts();
            let body = Limited::new(body, MAX_ANSWER).collect().await?.to_bytes();
            Ok::<_, HttpError>(http::Response::from_parts(parts, body))
        };
        // The timer is made on the runtime too: this thread has none.
        match self.runtime.spawn(async move { tokio::time::timeout(EXPORT_TIMEOUT, send).await }).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err("the collector did not answer in time".into()),
            Err(e) => Err(Box::new(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nimbus_model::trace::Trigger;

    #[test]
    fn endpoints() {
        let cases = [
            ("http://127.0.0.1:4318", Some("http://127.0.0.1:4318/v1/traces")),
            ("http://collector:4318/", Some("http://collector:4318/v1/traces")),
            ("https://otel.example.com/v1/traces", Some("https://otel.example.com/v1/traces")),
            ("http://c:4318/prefix", Some("http://c:4318/prefix/v1/traces")),
            ("collector:4318", None),
            ("grpc://c:4317", None),
            ("", None),
        ];
        for (base, want) in cases {
            assert_eq!(traces_url(base).ok().as_deref(), want, "{base}");
        }
    }

    fn trace(cold: bool, error: Option<&str>) -> InvocationTrace {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let ms = |n| t0 + Duration::from_millis(n);
        InvocationTrace {
            trace_id: TraceId::from_hex("5759e988bd862e3fe1be46a994272793").unwrap(),
            span_id: SpanId::from_hex("1111111111111111").unwrap(),
            handler_span_id: SpanId::from_hex("2222222222222222").unwrap(),
            parent: SpanId::from_hex("53995c3f42cd8ad8"),
            parent_is_remote: true,
            trigger: Trigger::Http,
            function: "f".into(),
            version: "$LATEST".into(),
            qualifier: None,
            invoked_arn: "arn:aws:lambda:us-east-1:000000000000:function:f".into(),
            region: "us-east-1".into(),
            account: "000000000000".into(),
            request_id: "rid".into(),
            cold_start: cold,
            started: t0,
            environment_ready: ms(5),
            init: cold.then(|| (ms(6), ms(50))),
            handler: Some((ms(50), ms(60))),
            ended: ms(61),
            error: error.map(str::to_string),
        }
    }

    #[test]
    fn spans_of_an_invocation() {
        let scope = InstrumentationScope::builder("nimbus").build();
        let cases = [
            (true, None, vec!["queue wait", "init", "invoke", "response", "f"]),
            (false, Some("Unhandled"), vec!["queue wait", "invoke", "response", "f"]),
        ];
        for (cold, error, names) in cases {
            let spans = invocation_spans(&trace(cold, error), &scope);
            assert_eq!(spans.iter().map(|s| s.name.as_ref()).collect::<Vec<_>>(), names);
            let root = spans.last().unwrap();
            assert_eq!(root.span_context.span_id().to_string(), "1111111111111111");
            assert_eq!(root.parent_span_id.to_string(), "53995c3f42cd8ad8");
            assert_eq!(root.span_kind, SpanKind::Server);
            let ids: std::collections::HashSet<_> = spans.iter().map(|s| s.span_context.span_id()).collect();
            assert_eq!(ids.len(), spans.len(), "span ids are distinct");
            for s in &spans[..spans.len() - 1] {
                assert_eq!(s.parent_span_id, root.span_context.span_id(), "{}", s.name);
                assert_eq!(s.span_context.trace_id().to_string(), "5759e988bd862e3fe1be46a994272793");
                assert!(s.start_time >= root.start_time && s.end_time <= root.end_time, "{}", s.name);
            }
            let handler = spans.iter().find(|s| s.name == "invoke").unwrap();
            assert_eq!(handler.span_context.span_id().to_string(), "2222222222222222");
            let attr = |k: &str| root.attributes.iter().find(|kv| kv.key.as_str() == k).map(|kv| kv.value.to_string());
            assert_eq!(attr("faas.coldstart").as_deref(), Some(if cold { "true" } else { "false" }));
            assert_eq!(attr("faas.trigger").as_deref(), Some("http"));
            assert_eq!(attr("faas.invocation_id").as_deref(), Some("rid"));
            assert_eq!(attr("error.type"), error.map(str::to_string));
            assert_eq!(matches!(root.status, Status::Error { .. }), error.is_some());
        }
    }
}

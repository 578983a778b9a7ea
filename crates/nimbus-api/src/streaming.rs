//! Response streaming at the edge: InvokeWithResponseStream's event stream and function URLs
//! in `RESPONSE_STREAM` mode, both fed chunk by chunk from the invoker's stream sink while
//! the function writes. A function that does not stream answers whole, through the same
//! paths.

use base64::Engine;
use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Response, StatusCode};
use nimbus_invoke::StreamEvent;
use nimbus_model::{ApiError, InvokeOutcome, InvokeRequest};
use nimbus_protocol::eventstream;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::response::Body;
use crate::server::AppState;

/// Chunks in flight between the function and a slow client before the runtime waits.
const CHANNEL_DEPTH: usize = 16;

type Running = JoinHandle<Result<InvokeOutcome, ApiError>>;

/// How a streamed invocation began.
enum Begun {
    /// The runtime is streaming: chunks arrive on `rx`; `task` ends with the outcome.
    Streaming { version: Option<String>, content_type: Option<String>, rx: mpsc::Receiver<StreamEvent>, task: Running },
    /// It ended without streaming (refused, failed, or answered whole).
    Done(Result<InvokeOutcome, ApiError>),
}

/// Starts an invocation whose response may stream, and waits until it either streams or
/// is over.
async fn begin(state: &AppState, req: InvokeRequest) -> Begun {
    let (tx, mut rx) = mpsc::channel(CHANNEL_DEPTH);
    let invoker = state.invoker.clone();
    let task: Running = tokio::spawn(async move { invoker.invoke_streaming(req, tx).await });
    let mut version = None;
    loop {
        match rx.recv().await {
            Some(StreamEvent::Resolved { version: v }) => version = Some(v),
            Some(StreamEvent::Start { content_type }) => return Begun::Streaming { version, content_type, rx, task },
            // The Runtime API always announces the stream first.
            Some(StreamEvent::Chunk(_)) => {}
            None => return Begun::Done(finish(task).await),
        }
    }
}

async fn finish(task: Running) -> Result<InvokeOutcome, ApiError> {
    task.await.unwrap_or_else(|e| Err(ApiError::service(format!("invocation task failed: {e}"))))
}

// ---- InvokeWithResponseStream --------------------------------------------------------

/// InvokeComplete's members: empty on success.
#[derive(Serialize, Default)]
#[serde(rename_all = "PascalCase")]
struct InvokeComplete {
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_details: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log_result: Option<String>,
}

impl InvokeComplete {
    /// From the outcome: a function error's type and message, and the log tail.
    fn of(outcome: &InvokeOutcome) -> InvokeComplete {
        let mut c = InvokeComplete {
            log_result: outcome.log_tail.as_ref().map(|t| base64::engine::general_purpose::STANDARD.encode(t)),
            ..Default::default()
        };
        if outcome.function_error.is_some() {
            let v: serde_json::Value = serde_json::from_slice(&outcome.payload).unwrap_or_default();
            c.error_code = Some(v["errorType"].as_str().unwrap_or("Unhandled").to_string());
            c.error_details =
                Some(v["errorMessage"].as_str().map_or_else(|| String::from_utf8_lossy(&outcome.payload).into_owned(), str::to_string));
        }
        c
    }

    fn failed(e: &ApiError) -> InvokeComplete {
        InvokeComplete { error_code: Some(e.code.name().to_string()), error_details: Some(e.message.clone()), log_result: None }
    }

    fn event(&self) -> Bytes {
        eventstream::event("InvokeComplete", "application/json", &serde_json::to_vec(self).expect("serializes"))
    }
}

fn chunk_event(payload: &[u8]) -> Bytes {
    eventstream::event("PayloadChunk", "application/octet-stream", payload)
}

/// The 200 that opens an event stream.
fn event_stream(version: Option<&str>, request_id: &str, body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert("content-type", HeaderValue::from_static(eventstream::CONTENT_TYPE));
    if let Some(v) = version.and_then(|v| HeaderValue::from_str(v).ok()) {
        h.insert("x-amz-executed-version", v);
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", v);
    }
    r
}

/// Runs `req` and answers with AWS's event stream: a `PayloadChunk` per chunk the function
/// writes, then `InvokeComplete` (with the error, if the function failed after it began).
/// Errors before the function ran (not found, throttled) are ordinary error answers.
pub async fn invoke_with_response_stream(state: &AppState, mut req: InvokeRequest) -> Result<Response<Body>, ApiError> {
    let request_id = uuid::Uuid::new_v4().to_string();
    req.request_id = Some(request_id.clone());
    match begin(state, req).await {
        Begun::Done(result) => {
            let outcome = result?;
            let mut body = BytesMut::new();
            body.extend_from_slice(&chunk_event(&outcome.payload));
            body.extend_from_slice(&InvokeComplete::of(&outcome).event());
            Ok(event_stream(Some(&outcome.executed_version), &request_id, Body::from(body.freeze())))
        }
        Begun::Streaming { version, rx, task, .. } => {
            let (tx, body) = mpsc::channel(CHANNEL_DEPTH);
            tokio::spawn(async move {
                let mut open = forward(rx, &tx, chunk_event).await;
                let complete = match finish(task).await {
                    Ok(outcome) => InvokeComplete::of(&outcome),
                    Err(e) => InvokeComplete::failed(&e),
                };
                if open {
                    open = tx.send(complete.event()).await.is_ok();
                }
                let _ = open;
            });
            Ok(event_stream(version.as_deref(), &request_id, Body::Stream(body)))
        }
    }
}

/// Sends every chunk of `rx` to `tx` (shaped by `frame`) until the function's stream ends.
/// A client that went away stops receiving; the function's stream is still read to its end
/// so the runtime finishes as it would. Returns whether the client is still there.
async fn forward(mut rx: mpsc::Receiver<StreamEvent>, tx: &mpsc::Sender<Bytes>, frame: fn(&[u8]) -> Bytes) -> bool {
    let mut open = true;
    while let Some(ev) = rx.recv().await {
        if let StreamEvent::Chunk(b) = ev {
            if open {
                open = tx.send(frame(&b)).await.is_ok();
            }
        }
    }
    open
}

// ---- function URLs -------------------------------------------------------------------

/// The content type of a stream that starts with AWS's HTTP-integration prelude.
const PRELUDE_CONTENT_TYPE: &str = "application/vnd.awslambda.http-integration-response";
/// What ends the prelude.
const PRELUDE_END: [u8; 8] = [0; 8];
/// Largest prelude read before the body is taken to start without one.
const MAX_PRELUDE: usize = 64 * 1024;

/// How a RESPONSE_STREAM function URL request ended before its body streamed.
pub enum UrlStream {
    /// The response: status and headers from the prelude (or 200), the body streaming.
    Streaming(Response<Body>),
    /// The function did not stream: its result, to be mapped as a buffered URL's is.
    Whole(Result<InvokeOutcome, ApiError>),
}

/// Runs a function URL request in RESPONSE_STREAM mode.
pub async fn serve_url(state: &AppState, req: InvokeRequest) -> UrlStream {
    let (content_type, mut rx, task) = match begin(state, req).await {
        Begun::Done(result) => return UrlStream::Whole(result),
        Begun::Streaming { content_type, rx, task, .. } => (content_type, rx, task),
    };
    let mut head = Response::new(());
    let mut first = Bytes::new();
    if content_type.as_deref() == Some(PRELUDE_CONTENT_TYPE) {
        // The prelude (`{"statusCode":…,"headers":…,"cookies":…}`) runs up to eight NULs.
        let mut buf = BytesMut::new();
        let mut end = None;
        while end.is_none() && buf.len() <= MAX_PRELUDE {
            match rx.recv().await {
                Some(StreamEvent::Chunk(b)) => {
                    buf.extend_from_slice(&b);
                    end = buf.windows(PRELUDE_END.len()).position(|w| w == PRELUDE_END);
                }
                Some(_) => {}
                None => break,
            }
        }
        let buf = buf.freeze();
        match end {
            Some(at) => {
                head = prelude_head(&buf[..at]);
                first = buf.slice(at + PRELUDE_END.len()..);
            }
            None => first = buf,
        }
    } else {
        let ct = content_type.as_deref().and_then(|c| HeaderValue::from_str(c).ok());
        head.headers_mut().insert("content-type", ct.unwrap_or(HeaderValue::from_static("application/octet-stream")));
    }
    let (tx, body) = mpsc::channel(CHANNEL_DEPTH);
    tokio::spawn(async move {
        let open = first.is_empty() || tx.send(first).await.is_ok();
        if open {
            forward(rx, &tx, Bytes::copy_from_slice).await;
        } else {
            while rx.recv().await.is_some() {}
        }
        if let Err(e) = finish(task).await {
            tracing::warn!("streamed function URL invocation failed: {e}");
        }
    });
    let (parts, ()) = head.into_parts();
    UrlStream::Streaming(Response::from_parts(parts, Body::Stream(body)))
}

/// Status and headers from a prelude, as a buffered URL maps a result's (200 when it has no
/// valid status).
fn prelude_head(prelude: &[u8]) -> Response<()> {
    let mapped = nimbus_gateway::proxy::v2_response(prelude);
    let mut head = Response::new(());
    match mapped {
        Some(r) if serde_json::from_slice::<serde_json::Value>(prelude).is_ok_and(|v| v.get("statusCode").is_some()) => {
            let (mut parts, _) = r.into_parts();
            // The body streams: no length from the (bodiless) prelude.
            parts.headers.remove("content-length");
            head = Response::from_parts(parts, ());
        }
        _ => {
            *head.status_mut() = StatusCode::OK;
            head.headers_mut().insert("content-type", HeaderValue::from_static("application/octet-stream"));
        }
    }
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preludes_map_as_buffered_results_do() {
        let r = prelude_head(br#"{"statusCode":201,"headers":{"content-type":"text/plain","x-a":"b"},"cookies":["c=1"]}"#);
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["content-type"], "text/plain");
        assert_eq!(r.headers()["x-a"], "b");
        assert_eq!(r.headers()["set-cookie"], "c=1");
        assert!(!r.headers().contains_key("content-length"));
        for bad in [&b"not json"[..], b"{}", b"[1]"] {
            let r = prelude_head(bad);
            assert_eq!(r.status(), 200, "{}", String::from_utf8_lossy(bad));
            assert_eq!(r.headers()["content-type"], "application/octet-stream");
        }
    }
}

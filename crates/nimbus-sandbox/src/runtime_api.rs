//! The Runtime API one environment's runtime talks to (`/2018-06-01/runtime/…`), served on
//! the environment's own loopback port so every request is known to come from that
//! environment. It hands out at most one event at a time and routes the runtime's answer
//! back to the waiting invoker.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Notify};

use crate::capture::OutputCapture;
use crate::connections::{ConnectionLimits, IdleClock, IdleTimer};
use crate::{Invocation, Reply, StreamEvent, StreamSink};
use nimbus_model::validate::MAX_SYNC_PAYLOAD;

/// What the invoker hears back: first when the runtime picked the event up, then the end.
#[derive(Debug)]
pub enum Progress {
    Delivered { at: Instant, init_duration: Option<Duration> },
    Done(Reply),
}

/// The init phase seen from outside, for environments initialized ahead of invocations
/// (provisioned concurrency): running, over (the runtime asked for its first event), or
/// failed with AWS's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitPhase {
    Running,
    Done,
    Failed(String),
}

/// A one-line account of an init that never finished (for the server's log).
pub(crate) fn init_failure(reply: &Reply) -> String {
    match reply {
        Reply::InitError { error_type, body } => {
            let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
            let kind =
                v["errorType"].as_str().map(str::to_string).or_else(|| error_type.clone()).unwrap_or_else(|| "Runtime.Unknown".into());
            match v["errorMessage"].as_str() {
                Some(m) if !m.is_empty() => format!("{kind}: {m}"),
                _ => kind,
            }
        }
        Reply::Exited(why) => format!("Runtime.ExitError: {why}"),
        Reply::StartFailed { error_type, message } => format!("{error_type}: {message}"),
        Reply::TimedOut => "Sandbox.Timedout".into(),
        other => format!("{other:?}"),
    }
}

pub struct Delivery {
    pub invocation: Invocation,
    pub start_line: Option<String>,
    pub progress: mpsc::Sender<Progress>,
}

/// The event a runtime is working on: its request id, the invoker waiting for the answer,
/// and where a streamed answer goes.
struct InFlight {
    id: String,
    progress: mpsc::Sender<Progress>,
    stream: Option<StreamSink>,
}

#[derive(Default)]
struct Slot {
    queued: Option<Delivery>,
    /// The request id being worked on and where its answer goes.
    in_flight: Option<InFlight>,
    /// The invoker of an event that was queued but not yet picked up (init failures go here).
    waiting: Option<mpsc::Sender<Progress>>,
    started_at: Option<Instant>,
    /// Why the runtime ended, when it ended with no event submitted (the next one is
    /// answered with it at once).
    ended: Option<Reply>,
    initialized: bool,
    /// For a prestarted runtime: its function's environment, once assigned.
    assignment: Option<Bytes>,
}

pub struct RuntimeApi {
    slot: Mutex<Slot>,
    event_ready: Notify,
    assigned: Notify,
    /// A prestarted runtime asked for its assignment: it (and its sandbox) is fully up.
    waiting_for_assignment: std::sync::atomic::AtomicBool,
    shutdown: watch::Sender<bool>,
    capture: Arc<OutputCapture>,
    init: watch::Sender<InitPhase>,
    limits: ConnectionLimits,
    /// Connections' idle time: stopped while the environment is frozen or busy.
    clock: Arc<IdleClock>,
}

type Body = Full<Bytes>;

fn respond(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r
}

const ACCEPTED: &str = "{\"status\":\"OK\"}";

impl RuntimeApi {
    pub fn new(capture: Arc<OutputCapture>, limits: ConnectionLimits) -> Arc<RuntimeApi> {
        let (shutdown, _) = watch::channel(false);
        let (init, _) = watch::channel(InitPhase::Running);
        Arc::new(RuntimeApi {
            slot: Mutex::new(Slot::default()),
            event_ready: Notify::new(),
            assigned: Notify::new(),
            waiting_for_assignment: std::sync::atomic::AtomicBool::new(false),
            shutdown,
            capture,
            init,
            limits,
            clock: IdleClock::new(),
        })
    }

    /// The environment's clock for idle connections.
    pub fn clock(&self) -> &IdleClock {
        &self.clock
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn mark_started(&self, at: Instant) {
        self.lock().started_at = Some(at);
    }

    /// Whether a prestarted runtime is up and waiting for its function (its sandbox is
    /// complete, so code mounted now shows up inside).
    pub fn ready_for_assignment(&self) -> bool {
        self.waiting_for_assignment.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Hands a prestarted runtime its function: the JSON its `assignment` call returns.
    pub fn assign(&self, assignment: Bytes, at: Instant) {
        {
            let mut slot = self.lock();
            slot.assignment = Some(assignment);
            slot.started_at = Some(at);
        }
        self.assigned.notify_one();
    }

    /// Queues an event for the runtime's next `/next`.
    pub fn submit(&self, delivery: Delivery) {
        {
            let mut slot = self.lock();
            if let Some(reply) = slot.ended.take() {
                let _ = delivery.progress.try_send(Progress::Done(reply));
                return;
            }
            slot.waiting = Some(delivery.progress.clone());
            slot.queued = Some(delivery);
        }
        self.event_ready.notify_one();
    }

    /// Ends an init phase that is still running with `reply`'s reason.
    fn init_failed(&self, reply: &Reply) {
        self.init.send_if_modified(|p| {
            let running = *p == InitPhase::Running;
            if running {
                *p = InitPhase::Failed(init_failure(reply));
            }
            running
        });
    }

    /// Waits until the runtime finished its init (it asked for its first event), or says
    /// why it never will.
    pub async fn initialized(&self) -> Result<(), String> {
        let mut rx = self.init.subscribe();
        let phase = rx.wait_for(|p| *p != InitPhase::Running).await.map(|p| p.clone());
        match phase {
            Ok(InitPhase::Failed(why)) => Err(why),
            Ok(_) => Ok(()),
            Err(_) => Err("the environment stopped".into()),
        }
    }

    /// Init ran before any invocation (provisioned): the first event reports no Init
    /// Duration.
    pub fn mark_initialized(&self) {
        self.lock().initialized = true;
    }

    /// Ends whatever is pending with `reply` (process exit, kill) and stops serving.
    pub fn fail_pending(&self, reply_for: impl Fn() -> Reply) {
        self.init_failed(&reply_for());
        let mut slot = self.lock();
        slot.queued = None;
        if let Some(f) = slot.in_flight.take() {
            let _ = f.progress.try_send(Progress::Done(reply_for()));
        } else if let Some(tx) = slot.waiting.take() {
            let _ = tx.try_send(Progress::Done(reply_for()));
        } else {
            // (a sandbox that ended at its gate, before its environment was handed out)
            slot.ended = Some(reply_for());
        }
    }

    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Serves the Runtime API on `listener` (a loopback port, possibly inside the
    /// environment's network namespace) until shutdown, within the environment's
    /// [`ConnectionLimits`] (see [`crate::connections`]). With a `door` (the server's port is
    /// this listener's, see [`crate::server_door`]), connections that are not for the
    /// Runtime API go through it to the server.
    pub fn serve_on(self: &Arc<Self>, listener: std::net::TcpListener, door: Option<crate::ServerDoor>) -> std::io::Result<()> {
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        let api = self.clone();
        let mut stop = self.shutdown.subscribe();
        let slots = Arc::new(tokio::sync::Semaphore::new(self.limits.max_connections));
        let mut warned = false;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    accepted = listener.accept() => {
                        let Ok((stream, peer)) = accepted else {
                            // Out of descriptors (EMFILE): the connection waits in the backlog,
                            // so an immediate retry would fail again and spin; retry shortly.
                            tokio::time::sleep(crate::connections::ACCEPT_RETRY).await;
                            continue;
                        };
                        let Ok(slot) = slots.clone().try_acquire_owned() else {
                            // Only the environment's own processes reach this port: closing is
                            // the whole answer, and it is logged once per environment.
                            if !std::mem::replace(&mut warned, true) {
                                tracing::warn!(
                                    max = api.limits.max_connections,
                                    "an environment opened more Runtime API connections than allowed at once: closing the extra ones"
                                );
                            }
                            drop(stream);
                            continue;
                        };
                        let _ = stream.set_nodelay(true);
                        let api = api.clone();
                        let door = door.clone();
                        tokio::spawn(async move {
                            if let Some(door) = door {
                                if !crate::server_door::is_runtime_side(&stream).await {
                                    // The server's connection: not one of the Runtime API's.
                                    drop(slot);
                                    return door.enter(stream, peer);
                                }
                            }
                            let _slot = slot;
                            let io = hyper_util::rt::TokioIo::new(stream);
                            let timer = IdleTimer(api.clock.clone());
                            let idle = api.limits.idle_timeout;
                            let svc = hyper::service::service_fn(move |req| {
                                let api = api.clone();
                                async move { Ok::<_, Infallible>(api.handle(req).await) }
                            });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .timer(timer)
                                .header_read_timeout(idle)
                                .serve_connection(io, svc)
                                .await;
                        });
                    }
                }
            }
        });
        Ok(())
    }

    /// Turns true when the environment stops serving.
    pub(crate) fn stopped(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Body> {
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let Some(rest) = path.strip_prefix("/2018-06-01/runtime/") else {
            return respond(StatusCode::NOT_FOUND, "{\"errorMessage\":\"unknown path\",\"errorType\":\"NotFound\"}");
        };
        match (&method, rest) {
            (&Method::GET, "invocation/next") => self.next().await,
            (&Method::GET, "nimbus/assignment") => self.assignment().await,
            (&Method::POST, "init/error") => {
                let error_type = header(&req, "lambda-runtime-function-error-type");
                let body = read_body(req.into_body()).await.ok().unwrap_or_default();
                self.capture.drain(true);
                self.fail_pending(|| Reply::InitError { error_type: error_type.clone(), body: body.clone() });
                respond(StatusCode::ACCEPTED, ACCEPTED)
            }
            (&Method::POST, rest) => {
                let Some((id, kind)) = rest.strip_prefix("invocation/").and_then(|r| r.rsplit_once('/')) else {
                    return respond(StatusCode::NOT_FOUND, "{\"errorMessage\":\"unknown path\",\"errorType\":\"NotFound\"}");
                };
                if kind != "response" && kind != "error" {
                    return respond(StatusCode::NOT_FOUND, "{\"errorMessage\":\"unknown path\",\"errorType\":\"NotFound\"}");
                }
                let id = id.to_string();
                let error_type = header(&req, "lambda-runtime-function-error-type");
                let in_flight = {
                    let mut slot = self.lock();
                    match &slot.in_flight {
                        Some(f) if f.id == id => slot.in_flight.take(),
                        _ => None,
                    }
                };
                let Some(InFlight { progress: tx, stream, .. }) = in_flight else {
                    return respond(
                        StatusCode::BAD_REQUEST,
                        "{\"errorMessage\":\"Invalid request ID\",\"errorType\":\"InvalidRequestID\"}",
                    );
                };
                let streaming = kind == "response"
                    && header(&req, "lambda-runtime-function-response-mode").is_some_and(|m| m.eq_ignore_ascii_case("streaming"));
                let reply = if streaming {
                    let content_type = header(&req, "content-type");
                    match stream {
                        Some(sink) => forward_stream(req.into_body(), sink, content_type).await,
                        None => collect_stream(req.into_body()).await,
                    }
                } else {
                    match read_body(req.into_body()).await {
                        Ok(body) if kind == "response" => Reply::Response(body),
                        Ok(body) => Reply::FunctionError { error_type, body },
                        Err(BodyError::TooLarge) => Reply::ResponseTooLarge,
                        Err(BodyError::Broken) if kind == "response" => Reply::TruncatedResponse,
                        // An error whose body cannot be read is reported by its type alone,
                        // as AWS does.
                        Err(BodyError::Broken) => Reply::FunctionError { error_type, body: Bytes::new() },
                    }
                };
                let too_large = matches!(reply, Reply::ResponseTooLarge);
                let _ = tx.try_send(Progress::Done(reply));
                self.clock.set_busy(false);
                if too_large {
                    return respond(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "{\"errorMessage\":\"Exceeded maximum allowed payload size (6291556 bytes).\",\"errorType\":\"RequestEntityTooLarge\"}",
                    );
                }
                // The invocation woken by the answer writes it to its caller before this
                // writes the 202: the caller is waiting, the runtime only for its next event.
                tokio::task::yield_now().await;
                respond(StatusCode::ACCEPTED, ACCEPTED)
            }
            _ => respond(StatusCode::METHOD_NOT_ALLOWED, "{\"errorMessage\":\"method not allowed\",\"errorType\":\"MethodNotAllowed\"}"),
        }
    }

    /// Nimbus's extension for prestarted runtimes: waits until the environment is assigned
    /// to a function, then returns `{"env": {...}, "cwd": "..."}`.
    async fn assignment(&self) -> Response<Body> {
        self.waiting_for_assignment.store(true, std::sync::atomic::Ordering::SeqCst);
        let mut stop = self.shutdown.subscribe();
        loop {
            if let Some(body) = self.lock().assignment.clone() {
                let mut r = Response::new(Full::new(body));
                r.headers_mut().insert("content-type", http::HeaderValue::from_static("application/json"));
                return r;
            }
            if *stop.borrow() {
                return respond(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "{\"errorMessage\":\"environment is shutting down\",\"errorType\":\"Runtime.Shutdown\"}",
                );
            }
            tokio::select! {
                _ = self.assigned.notified() => {}
                _ = stop.changed() => {}
            }
        }
    }

    async fn next(&self) -> Response<Body> {
        // Asking for an event means init is over.
        self.init.send_if_modified(|p| {
            let running = *p == InitPhase::Running;
            if running {
                *p = InitPhase::Done;
            }
            running
        });
        let mut stop = self.shutdown.subscribe();
        loop {
            let taken = {
                let mut slot = self.lock();
                match slot.queued.take() {
                    Some(d) => {
                        let init = if slot.initialized {
                            None
                        } else {
                            slot.initialized = true;
                            slot.started_at.map(|s| s.elapsed())
                        };
                        slot.waiting = None;
                        slot.in_flight = Some(InFlight {
                            id: d.invocation.request_id.clone(),
                            progress: d.progress.clone(),
                            stream: d.invocation.stream.clone(),
                        });
                        Some((d, init))
                    }
                    None => None,
                }
            };
            if let Some((d, init_duration)) = taken {
                // Connections are not idle while the runtime works on an event.
                self.clock.set_busy(true);
                // Whatever the runtime printed while initializing goes before START.
                self.capture.drain(true);
                self.capture.reset_tail();
                self.capture.service_line_opt(d.start_line);
                let at = Instant::now();
                let deadline_ms = chrono::Utc::now().timestamp_millis() + d.invocation.timeout.as_millis() as i64;
                let _ = d.progress.try_send(Progress::Delivered { at, init_duration });
                return event_response(&d.invocation, deadline_ms);
            }
            if *stop.borrow() {
                return respond(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "{\"errorMessage\":\"environment is shutting down\",\"errorType\":\"Runtime.Shutdown\"}",
                );
            }
            tokio::select! {
                _ = self.event_ready.notified() => {}
                _ = stop.changed() => {}
            }
        }
    }
}

fn header(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// Why a posted body could not be read whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyError {
    /// More than the limit: the function's response is too large.
    TooLarge,
    /// The framing broke (a bad chunk, a connection closed before `Content-Length` bytes):
    /// the runtime's fault, not the response's size.
    Broken,
}

/// Sorts a body read's failure: only the limit's own error means "too large".
fn body_error(e: &(dyn std::error::Error + 'static)) -> BodyError {
    if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
        BodyError::TooLarge
    } else {
        BodyError::Broken
    }
}

/// Reads a body up to the 6 MB payload limit.
async fn read_body(body: Incoming) -> Result<Bytes, BodyError> {
    Limited::new(body, MAX_SYNC_PAYLOAD).collect().await.map(|c| c.to_bytes()).map_err(|e| body_error(e.as_ref()))
}

/// Largest streamed response: AWS's 200 MB.
const MAX_STREAMED: usize = 200 * 1024 * 1024;

/// The error a runtime reports in a streamed response's trailers, if any:
/// `Lambda-Runtime-Function-Error-Type` and the base64 `Lambda-Runtime-Function-Error-Body`.
fn trailer_error(trailers: &http::HeaderMap) -> Option<Reply> {
    let error_type = trailers.get("lambda-runtime-function-error-type").and_then(|v| v.to_str().ok()).map(str::to_string)?;
    let body = trailers
        .get("lambda-runtime-function-error-body")
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v.as_bytes()).ok())
        .map(Bytes::from)
        .unwrap_or_default();
    Some(Reply::FunctionError { error_type: Some(error_type), body })
}

/// A streamed response for a caller that reads it as it comes: every chunk goes to `sink`
/// as soon as the runtime sends it (a caller that went away stops receiving, the runtime
/// still finishes). Ends with the trailers' error, if the runtime reported one.
async fn forward_stream(mut body: Incoming, sink: StreamSink, content_type: Option<String>) -> Reply {
    let mut open = sink.send(StreamEvent::Start { content_type }).await.is_ok();
    let mut sent = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Reply::TruncatedResponse;
        };
        match frame.into_data() {
            Ok(data) => {
                sent += data.len();
                if sent > MAX_STREAMED {
                    return Reply::FunctionError {
                        error_type: Some("Function.ResponseSizeTooLarge".into()),
                        body: Bytes::from_static(
                            b"{\"errorMessage\":\"Response payload size exceeded maximum allowed payload size (209715200 bytes).\",\"errorType\":\"Function.ResponseSizeTooLarge\"}",
                        ),
                    };
                }
                if open && !data.is_empty() {
                    open = sink.send(StreamEvent::Chunk(data)).await.is_ok();
                }
            }
            Err(frame) => {
                if let Some(error) = frame.trailers_ref().and_then(trailer_error) {
                    return error;
                }
            }
        }
    }
    Reply::Streamed
}

/// A streamed response for a caller that wants it whole (a plain Invoke): collected up to
/// the 6 MB limit.
async fn collect_stream(body: Incoming) -> Reply {
    match Limited::new(body, MAX_SYNC_PAYLOAD).collect().await {
        Ok(collected) => match collected.trailers().and_then(trailer_error) {
            Some(error) => error,
            None => Reply::Response(collected.to_bytes()),
        },
        Err(e) => match body_error(e.as_ref()) {
            BodyError::TooLarge => Reply::ResponseTooLarge,
            BodyError::Broken => Reply::TruncatedResponse,
        },
    }
}

fn event_response(inv: &Invocation, deadline_ms: i64) -> Response<Body> {
    use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
    // Names made once (not parsed per event); values checked as any header's.
    let value = |v: &str| HeaderValue::from_str(v);
    let headers = (|| {
        let mut h = http::HeaderMap::with_capacity(6);
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(HeaderName::from_static("lambda-runtime-aws-request-id"), value(&inv.request_id)?);
        h.insert(HeaderName::from_static("lambda-runtime-deadline-ms"), HeaderValue::from(deadline_ms));
        h.insert(HeaderName::from_static("lambda-runtime-invoked-function-arn"), value(&inv.invoked_arn)?);
        h.insert(HeaderName::from_static("lambda-runtime-trace-id"), value(&inv.trace_id)?);
        if let Some(cc) = &inv.client_context {
            h.insert(HeaderName::from_static("lambda-runtime-client-context"), value(cc)?);
        }
        Ok::<_, http::header::InvalidHeaderValue>(h)
    })();
    match headers {
        Ok(headers) => {
            let mut r = Response::new(Full::new(inv.payload.clone()));
            *r.headers_mut() = headers;
            r
        }
        Err(_) => respond(StatusCode::INTERNAL_SERVER_ERROR, "{\"errorMessage\":\"bad header\",\"errorType\":\"Internal\"}"),
    }
}

#[cfg(test)]
mod body_tests {
    use super::*;
    use http_body_util::Full;

    /// Only the limit's own error is a response too large; any other failure to read a
    /// body is a broken response.
    #[tokio::test]
    async fn body_errors_are_sorted_by_cause() {
        let over = Limited::new(Full::new(Bytes::from_static(b"0123456789")), 4).collect().await.expect_err("over the limit");
        let broken = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed before message completed");
        let cases: [(&(dyn std::error::Error + 'static), BodyError); 2] =
            [(over.as_ref(), BodyError::TooLarge), (&broken, BodyError::Broken)];
        for (error, want) in cases {
            assert_eq!(body_error(error), want, "{error}");
        }
    }
}

#[cfg(test)]
mod ending_tests {
    use super::*;

    fn invocation() -> Invocation {
        Invocation {
            request_id: "r".into(),
            payload: Bytes::new(),
            invoked_arn: String::new(),
            trace_id: String::new(),
            client_context: None,
            timeout: std::time::Duration::from_secs(3),
            init_within_timeout: false,
            stream: None,
        }
    }

    /// A runtime that ended answers its event with why, whether it ended before the event
    /// was submitted (a sandbox that died at its gate) or after.
    #[tokio::test]
    async fn an_ended_runtime_answers_its_event() {
        for ended_first in [true, false] {
            let (read, _write) = rustix::pipe::pipe().expect("pipe");
            let capture = OutputCapture::new(read, None, None).expect("capture");
            let api = RuntimeApi::new(capture, crate::connections::ConnectionLimits::default());
            let (tx, mut rx) = mpsc::channel(2);
            let end = || api.fail_pending(|| Reply::Exited("Runtime exited with error: exit status 126".into()));
            if ended_first {
                end();
            }
            api.submit(Delivery { invocation: invocation(), start_line: None, progress: tx });
            if !ended_first {
                end();
            }
            match tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv()).await {
                Ok(Some(Progress::Done(Reply::Exited(why)))) => assert!(why.contains("126"), "{why}"),
                other => panic!("ended_first={ended_first}: {other:?}"),
            }
        }
    }

    /// The invocation waiting for an answer gets to write it to its caller before the
    /// runtime's `POST …/response` is answered `202`: the invoker's task runs (and finds
    /// nothing from the server on the runtime's socket yet) before the 202 is written. One
    /// worker, as the server runs on one or two cores; 20 rounds, since without the yield
    /// the order is not the same every time.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn the_caller_is_answered_before_the_runtime() {
        use std::io::{Read, Write};
        const ROUNDS: usize = 20;
        let (read, _write) = rustix::pipe::pipe().expect("pipe");
        let capture = OutputCapture::new(read, None, None).expect("capture");
        let api = RuntimeApi::new(capture, crate::connections::ConnectionLimits::default());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        api.serve_on(listener, None).expect("serve");

        // The runtime, on a thread of its own: takes each event, answers it, reads the 202.
        let (sent_tx, sent_rx) = std::sync::mpsc::channel();
        // The invoker has looked at the socket: only then may the runtime read its 202 (else
        // a 202 written first could be read away before the look, and the round pass).
        let (looked_tx, looked_rx) = std::sync::mpsc::channel::<()>();
        let runtime = std::thread::spawn(move || {
            let mut conn = std::net::TcpStream::connect(addr).expect("connect");
            sent_tx.send(conn.try_clone().expect("clone")).expect("send");
            let mut buf = [0u8; 4096];
            for _ in 0..ROUNDS {
                conn.write_all(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nhost: x\r\n\r\n").expect("next");
                let n = conn.read(&mut buf).expect("event");
                assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf[..n]));
                conn.write_all(b"POST /2018-06-01/runtime/invocation/r/response HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\nok")
                    .expect("post");
                looked_rx.recv().expect("the invoker looked");
                let n = conn.read(&mut buf).expect("202");
                assert!(buf[..n].starts_with(b"HTTP/1.1 202"), "{}", String::from_utf8_lossy(&buf[..n]));
            }
        });
        let conn = tokio::task::spawn_blocking(move || sent_rx.recv().expect("runtime's socket")).await.expect("socket");
        // The invoker, as a task on the runtime's one worker (the connection's thread).
        let invoker = tokio::spawn(async move {
            let mut early = Vec::new();
            for round in 0..ROUNDS {
                let (tx, mut rx) = mpsc::channel(2);
                api.submit(Delivery { invocation: invocation(), start_line: None, progress: tx });
                let answered = loop {
                    match tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv()).await {
                        Ok(Some(Progress::Delivered { .. })) => continue,
                        Ok(Some(Progress::Done(reply))) => break reply,
                        other => panic!("{other:?}"),
                    }
                };
                assert!(matches!(&answered, Reply::Response(b) if b.as_ref() == b"ok"), "{answered:?}");
                // What the server has sent the runtime since this round's event: nothing yet.
                let mut peek = [0u8; 64];
                if rustix::net::recv(&conn, &mut peek, rustix::net::RecvFlags::PEEK | rustix::net::RecvFlags::DONTWAIT).err()
                    != Some(rustix::io::Errno::AGAIN)
                {
                    early.push(round);
                }
                looked_tx.send(()).expect("runtime thread");
            }
            early
        });
        let early = invoker.await.expect("invoker");
        assert!(early.is_empty(), "rounds whose 202 was written before the caller's answer: {early:?}");
        tokio::task::spawn_blocking(move || runtime.join().expect("runtime thread")).await.expect("join");
    }
}

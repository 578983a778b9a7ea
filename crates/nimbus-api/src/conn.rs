//! Limits on the connections of a listener, so slow or idle clients cannot hold the server's
//! sockets without end (slowloris): a client has [`ConnectionLimits::header_timeout`] to send
//! a complete request head, whether the connection is new, half-way through a head, or idle
//! between two requests (hyper's header-read timer also runs while a keep-alive connection
//! waits, so the two are one setting, as in many servers); a request body may pause at most
//! [`ConnectionLimits::body_timeout`] between two reads (answered `408`, as nginx does);
//! and at most [`ConnectionLimits::max_connections`] connections are served at once. Past the
//! cap a connection is answered `503 Service Unavailable` with `Retry-After` and closed (AWS's
//! SDKs retry a 503), and a warning says so at most every [`REFUSAL_LOG_EVERY`]; past a
//! further [`REFUSING_AT_ONCE`] refusals in progress, new connections are closed at once.
//! Requests being served are not timed: a synchronous invoke may run 15 minutes, a response
//! stream as long, an SQS long poll 20 seconds.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Response, StatusCode};
use hyper::server::conn::http1;

use nimbus_model::log_every::LogEvery;

use crate::response::Body;

/// Limits on one listener's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Time to send a complete request head: on a new connection, and between requests on a
    /// kept-alive one.
    pub header_timeout: Duration,
    /// Longest pause while a request body is read.
    pub body_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    /// nginx's defaults for the timeouts (`client_header_timeout`, `client_body_timeout`: 60 s).
    fn default() -> ConnectionLimits {
        ConnectionLimits { header_timeout: Duration::from_secs(60), body_timeout: Duration::from_secs(60), max_connections: 4096 }
    }
}

/// Refusals answered at once; past them, connections over the cap are closed unanswered.
pub const REFUSING_AT_ONCE: usize = 64;
/// How long a refused client has to send its request head (and TLS handshake).
const REFUSAL_TIME: Duration = Duration::from_secs(2);
/// The refusal warning is logged at most this often per listener.
pub const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// HTTP/1.1 with the limits' header timeout (and keep-alive).
pub fn http1(limits: &ConnectionLimits) -> http1::Builder {
    let mut b = http1::Builder::new();
    b.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
    b
}

/// The connection slots of one listener, and its refusals.
#[derive(Debug)]
pub struct Slots {
    listener: SocketAddr,
    max: usize,
    open: Arc<tokio::sync::Semaphore>,
    refusing: Arc<tokio::sync::Semaphore>,
    refused: LogEvery,
}

/// What to do with an accepted connection.
pub enum Admission {
    /// Serve it; the slot is held as long as the permit.
    Serve(tokio::sync::OwnedSemaphorePermit),
    /// Answer it 503 (holding a refusal permit while doing so).
    Refuse(tokio::sync::OwnedSemaphorePermit),
    /// Close it at once.
    Close,
}

impl Slots {
    pub fn new(listener: SocketAddr, limits: &ConnectionLimits) -> Slots {
        let max = limits.max_connections.max(1);
        Slots {
            listener,
            max,
            open: Arc::new(tokio::sync::Semaphore::new(max)),
            refusing: Arc::new(tokio::sync::Semaphore::new(REFUSING_AT_ONCE)),
            refused: LogEvery::new(REFUSAL_LOG_EVERY),
        }
    }

    pub fn admit(&self) -> Admission {
        if let Ok(p) = self.open.clone().try_acquire_owned() {
            return Admission::Serve(p);
        }
        if let Some(n) = self.refused.note(Instant::now()) {
            tracing::warn!(
                listener = %self.listener,
                "{n} connection(s) refused in the last {}s: {} connections are open, the most this listener serves at once (--max-connections)",
                REFUSAL_LOG_EVERY.as_secs(),
                self.max
            );
        }
        match self.refusing.clone().try_acquire_owned() {
            Ok(p) => Admission::Refuse(p),
            Err(_) => Admission::Close,
        }
    }
}

/// The answer to a connection over the cap: 503, `Retry-After`, and the connection closed.
fn refusal() -> Response<Body> {
    let body = Bytes::from_static(
        b"{\"__type\":\"ServiceUnavailableException\",\"message\":\"The server is serving as many connections as it allows; retry shortly.\"}",
    );
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let h = r.headers_mut();
    h.insert("content-type", http::HeaderValue::from_static("application/json"));
    h.insert("x-amzn-errortype", http::HeaderValue::from_static("ServiceUnavailableException"));
    h.insert("retry-after", http::HeaderValue::from_static("1"));
    h.insert("connection", http::HeaderValue::from_static("close"));
    r
}

/// Answers one request on `io` with the refusal, then closes; gives up after a short while.
pub async fn refuse<S>(io: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let io = hyper_util::rt::TokioIo::new(io);
    let svc = hyper::service::service_fn(|_req| async { Ok::<_, std::convert::Infallible>(refusal()) });
    let conn = http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(REFUSAL_TIME)
        .keep_alive(false)
        .serve_connection(io, svc);
    let _ = tokio::time::timeout(REFUSAL_TIME * 2, conn).await;
}

/// How long a refused TLS client has for its handshake.
pub fn refusal_time() -> Duration {
    REFUSAL_TIME
}

/// The answer to a request whose body paused longer than the body timeout.
pub fn body_timed_out(limits: &ConnectionLimits) -> Response<Body> {
    let text = format!(
        "{{\"__type\":\"RequestTimeoutException\",\"message\":\"The request body was not received within {} seconds of the last part.\"}}",
        limits.body_timeout.as_secs_f64()
    );
    let mut r = Response::new(Body::from(Bytes::from(text)));
    *r.status_mut() = StatusCode::REQUEST_TIMEOUT;
    let h = r.headers_mut();
    h.insert("content-type", http::HeaderValue::from_static("application/json"));
    h.insert("x-amzn-errortype", http::HeaderValue::from_static("RequestTimeoutException"));
    h.insert("connection", http::HeaderValue::from_static("close"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slots_serve_up_to_the_cap_then_refuse_then_close() {
        let slots = Slots::new("127.0.0.1:1".parse().expect("addr"), &ConnectionLimits { max_connections: 2, ..Default::default() });
        let served: Vec<_> = (0..2).map(|_| slots.admit()).collect();
        assert!(served.iter().all(|a| matches!(a, Admission::Serve(_))));
        let refused: Vec<_> = (0..REFUSING_AT_ONCE).map(|_| slots.admit()).collect();
        assert!(refused.iter().all(|a| matches!(a, Admission::Refuse(_))));
        assert!(matches!(slots.admit(), Admission::Close), "past the refusals in progress");
        drop(refused);
        assert!(matches!(slots.admit(), Admission::Refuse(_)));
        drop(served);
        assert!(matches!(slots.admit(), Admission::Serve(_)), "a slot freed by a closed connection");
    }
}

//! The operators' metrics listener (`--metrics-listen`): `GET /metrics` answers the
//! server's counters in Prometheus's text format. It is a separate listener, off by
//! default, because scrapers do not sign requests: bind it to loopback or a private
//! network. It names functions of every account and nothing else (no payloads, no keys).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;

use crate::conn::{ConnectionLimits, Slots};
use crate::response::{self, Body};

/// What Prometheus asks for and the encoder writes (OpenMetrics 1.0 text, `# EOF` last).
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves `/metrics` on `listener` until the task is dropped.
pub async fn serve_metrics(listener: TcpListener, metrics: Arc<nimbus_metrics::Metrics>, limits: ConnectionLimits) {
    let local = listener.local_addr().unwrap_or_else(|_| std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
    let slots = Slots::new(local, &limits);
    loop {
        let Ok((stream, _peer)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let crate::conn::Admission::Serve(slot) = slots.admit() else { continue };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let io = hyper_util::rt::TokioIo::new(stream);
            let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let metrics = metrics.clone();
                async move { Ok::<_, Infallible>(answer(&req, &metrics).await) }
            });
            let _ = crate::conn::http1(&limits).serve_connection(io, svc).await;
        });
    }
}

async fn answer<B>(req: &Request<B>, metrics: &Arc<nimbus_metrics::Metrics>) -> Response<Body> {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => {
            let m = metrics.clone();
            // Encoding walks every series: off the async workers.
            match tokio::task::spawn_blocking(move || m.encode()).await {
                Ok(text) => response::raw(StatusCode::OK, CONTENT_TYPE, Bytes::from(text)),
                Err(_) => response::raw(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", Bytes::from_static(b"encoding failed\n")),
            }
        }
        (_, "/metrics") => response::raw(StatusCode::METHOD_NOT_ALLOWED, "text/plain", Bytes::from_static(b"GET only\n")),
        _ => response::raw(StatusCode::NOT_FOUND, "text/plain", Bytes::from_static(b"only /metrics here\n")),
    }
}

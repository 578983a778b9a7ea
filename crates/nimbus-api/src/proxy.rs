//! What every HTTP front of a function (function URLs, API Gateway routes) shares at the
//! edge: the request as the event builders in `nimbus_gateway::proxy` see it, the synchronous
//! invoke with its outcome sorted into the cases each front answers differently, and turning
//! a mapped result into a response.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Response};
use http_body_util::Full;
use nimbus_gateway::proxy::HttpRequest;
use nimbus_model::validate::MAX_SYNC_PAYLOAD;
use nimbus_model::{ErrorCode, FunctionRef, InvokeRequest};

use crate::response::Body;
use crate::server::AppState;

/// An HTTP request to a function's front, as received.
#[derive(Debug)]
pub struct HttpCall {
    pub method: Method,
    /// The path as the function sees it (without Nimbus's `/_aws/...` prefixes).
    pub path: String,
    pub raw_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub source_ip: String,
}

impl HttpCall {
    /// Runs `f` with the request as the event builders take it.
    pub fn with_view<R>(&self, f: impl FnOnce(&HttpRequest<'_>) -> R) -> R {
        let query: Vec<(String, String)> = crate::action::form_pairs(&self.raw_query).collect();
        f(&HttpRequest {
            method: self.method.as_str(),
            path: &self.path,
            raw_query: &self.raw_query,
            query: &query,
            headers: &self.headers,
            body: &self.body,
            source_ip: &self.source_ip,
        })
    }

    /// Whether the body is over Lambda's synchronous payload limit (6 MB).
    pub fn too_large(&self) -> bool {
        self.body.len() > MAX_SYNC_PAYLOAD
    }
}

/// How a synchronous invoke through an HTTP front ended.
#[derive(Debug)]
pub enum Outcome {
    /// The function returned this payload.
    Result(Bytes),
    /// The function failed (`X-Amz-Function-Error`); `timed_out` when it ran out of time.
    FunctionError { timed_out: bool },
    /// Lambda throttled the invoke (429).
    Throttled,
    /// The function (or its qualifier) does not exist.
    FunctionMissing,
    /// The event is over the synchronous payload limit.
    TooLarge,
    /// No answer within the front's own timeout (API Gateway's integration timeout).
    TimedOut,
    /// Anything else.
    Failed,
}

/// Invokes `function` with `event` and sorts the result. With `timeout`, the caller stops
/// waiting after it; the invocation itself runs to its end in the background (as Lambda's
/// does when API Gateway gives up).
pub async fn invoke(state: &AppState, function: FunctionRef, event: Bytes, request_id: &str, timeout: Option<Duration>) -> Outcome {
    if event.len() > MAX_SYNC_PAYLOAD {
        return Outcome::TooLarge;
    }
    let request = InvokeRequest { function, payload: event, tail_log: false, client_context: None, request_id: Some(request_id.to_string()) };
    let invoker = state.invoker.clone();
    let result = match timeout {
        None => invoker.invoke(request).await,
        Some(t) => {
            let task = tokio::spawn(async move { invoker.invoke(request).await });
            match tokio::time::timeout(t, task).await {
                Ok(Ok(r)) => r,
                Ok(Err(_)) => return Outcome::Failed,
                Err(_) => return Outcome::TimedOut,
            }
        }
    };
    match result {
        Ok(o) if o.function_error.is_none() => Outcome::Result(o.payload),
        Ok(o) => {
            let error_type = serde_json::from_slice::<serde_json::Value>(&o.payload).ok().and_then(|v| v["errorType"].as_str().map(str::to_string));
            Outcome::FunctionError { timed_out: error_type.as_deref() == Some("Sandbox.Timedout") }
        }
        Err(e) if e.code == ErrorCode::TooManyRequests => Outcome::Throttled,
        Err(e) if e.code == ErrorCode::ResourceNotFound => Outcome::FunctionMissing,
        Err(e) if e.code == ErrorCode::RequestEntityTooLarge || e.code == ErrorCode::RequestTooLarge => Outcome::TooLarge,
        Err(e) => {
            tracing::warn!("invoke through an HTTP front failed: {e}");
            Outcome::Failed
        }
    }
}

/// A mapped result as a response.
pub fn body(r: Response<Bytes>) -> Response<Body> {
    r.map(Full::new)
}

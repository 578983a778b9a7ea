//! What every HTTP front of a function (function URLs, API Gateway routes) shares at the
//! edge: the request as the event builders in `nimbus_gateway::proxy` see it, the synchronous
//! invoke with its outcome sorted into the cases each front answers differently, turning a
//! mapped result into a response, and the last step of every answer a front door gives
//! ([`through`]): the sandbox of path-style front doors, which share the console's origin.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use nimbus_gateway::proxy::HttpRequest;
use nimbus_model::trace::{Parent, TraceContext, Trigger};
use nimbus_model::url::Cors;
use nimbus_model::validate::MAX_SYNC_PAYLOAD;
use nimbus_model::{ErrorCode, FunctionRef, InvokeRequest};

use crate::response::{self as responses, Body};
use crate::server::AppState;

/// The trace context an HTTP request carries: W3C `traceparent`, else X-Ray's
/// `X-Amzn-Trace-Id` (malformed ones are ignored).
pub fn trace_parent(headers: &HeaderMap) -> Option<Parent> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    Parent::from_headers(get("traceparent"), get("x-amzn-trace-id"))
}

/// How a request reached a function's front door.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    /// By path on the server's own origin (`/_aws/lambda-url/<id>/…`, `/_aws/elb/<id>/…`,
    /// `/_aws/execute-api/<id>/…`): the origin the web console is served on.
    Path,
    /// By a host name of its own (`<id>.lambda-url.<domain>`, `<id>.execute-api.<domain>`):
    /// an origin of its own, which the browser keeps apart from the console's.
    Host,
}

/// The policy every answer through a path-style front door carries: a browser runs what it
/// gets there in a sandbox with an opaque origin (scripts, forms, popups, dialogs and
/// downloads still work), so a function's page cannot use the console's origin: not its
/// storage (`localStorage`, `sessionStorage`: the console's key), not its cookies, not a
/// service worker over its pages, not a script reaching into a console window.
pub const PATH_SANDBOX: &str = "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads";

/// Every answer of a function's front door (the function's own, streamed or whole, and the
/// front's: errors, refusals, CORS preflights) leaves through here. Through a path-style door
/// it gets [`PATH_SANDBOX`] as a Content-Security-Policy of its own, besides any the function
/// set (a browser enforces each), and loses a `Service-Worker-Allowed` the function set (no
/// service worker of a function may claim the console's pages). Host-style doors are other
/// origins: their answers are the function's as it gave them.
pub fn through(door: Door, mut r: Response<Body>) -> Response<Body> {
    if door == Door::Path {
        let h = r.headers_mut();
        h.remove("service-worker-allowed");
        h.append(http::header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PATH_SANDBOX));
    }
    r
}

/// An HTTP request to a function's front, as received.
#[derive(Debug)]
pub struct HttpCall {
    /// Whether it came by path (on the console's origin) or by a host name of its own.
    pub door: Door,
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
pub async fn invoke(
    state: &AppState,
    function: FunctionRef,
    event: Bytes,
    request_id: &str,
    timeout: Option<Duration>,
    trace: Option<Parent>,
) -> Outcome {
    if event.len() > MAX_SYNC_PAYLOAD {
        return Outcome::TooLarge;
    }
    let request = InvokeRequest {
        function,
        payload: event,
        tail_log: false,
        client_context: None,
        request_id: Some(request_id.to_string()),
        trace: TraceContext { parent: trace, trigger: Trigger::Http },
    };
    let invoker = state.invoker.clone();
    let result = match timeout {
        None => invoker.invoke_detached(request).await,
        Some(t) => {
            let task = tokio::spawn(async move { invoker.invoke(request).await });
            match tokio::time::timeout(t, task).await {
                Ok(Ok(r)) => r,
                Ok(Err(_)) => return Outcome::Failed,
                Err(_) => return Outcome::TimedOut,
            }
        }
    };
    outcome(result)
}

/// What an HTTP front makes of an invocation's result.
pub fn outcome(result: Result<nimbus_model::InvokeOutcome, nimbus_model::ApiError>) -> Outcome {
    match result {
        Ok(o) if o.function_error.is_none() => Outcome::Result(o.payload),
        Ok(o) => {
            let error_type =
                serde_json::from_slice::<serde_json::Value>(&o.payload).ok().and_then(|v| v["errorType"].as_str().map(str::to_string));
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

fn header<'a>(call: &'a HttpCall, name: &str) -> Option<&'a str> {
    call.headers.get(name).and_then(|v| v.to_str().ok())
}

fn cors_headers(cors: &Cors, origin: &str, r: &mut Response<Body>, preflight: bool) {
    let h = r.headers_mut();
    let allow_origin = if cors.allow_origins.iter().any(|o| o == "*") && !cors.allow_credentials { "*" } else { origin };
    if let Ok(v) = HeaderValue::from_str(allow_origin) {
        h.insert("access-control-allow-origin", v);
    }
    if cors.allow_credentials {
        h.insert("access-control-allow-credentials", HeaderValue::from_static("true"));
    }
    if preflight {
        if let Ok(v) = HeaderValue::from_str(&cors.allow_methods.join(",")) {
            h.insert("access-control-allow-methods", v);
        }
        if !cors.allow_headers.is_empty() {
            if let Ok(v) = HeaderValue::from_str(&cors.allow_headers.join(",")) {
                h.insert("access-control-allow-headers", v);
            }
        }
        if let Some(age) = cors.max_age {
            h.insert("access-control-max-age", HeaderValue::from(age));
        }
    } else if !cors.expose_headers.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&cors.expose_headers.join(",")) {
            h.insert("access-control-expose-headers", v);
        }
    }
}

/// A CORS preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) of a front
/// with a CORS configuration, answered without invoking the function with `status` (function
/// URLs 200, HTTP APIs 204). None: not a preflight, or no configuration.
pub fn preflight(cors: Option<&Cors>, call: &HttpCall, status: StatusCode) -> Option<Response<Body>> {
    let cors = cors?;
    let origin = header(call, "origin")?;
    let method = header(call, "access-control-request-method")?;
    if call.method != Method::OPTIONS {
        return None;
    }
    let mut r = responses::empty(status);
    if cors.allows_origin(origin) && cors.allows_method(method) {
        cors_headers(cors, origin, &mut r, true);
    }
    Some(r)
}

/// Adds the CORS headers an allowed origin gets on an actual response.
pub fn apply_cors(cors: Option<&Cors>, call: &HttpCall, r: &mut Response<Body>) {
    if let (Some(cors), Some(origin)) = (cors, header(call, "origin")) {
        if cors.allows_origin(origin) {
            cors_headers(cors, origin, r, false);
        }
    }
}

/// A mapped result as a response.
pub fn body(r: Response<Bytes>) -> Response<Body> {
    r.map(Body::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(headers: &[(&'static str, &'static str)]) -> Response<Body> {
        let mut r = responses::raw(StatusCode::OK, "text/html", Bytes::from_static(b"<p>hi</p>"));
        for (k, v) in headers {
            r.headers_mut().append(*k, HeaderValue::from_static(v));
        }
        r
    }

    fn all<'a>(r: &'a Response<Body>, name: &str) -> Vec<&'a str> {
        r.headers().get_all(name).iter().map(|v| v.to_str().unwrap_or("?")).collect()
    }

    #[test]
    fn path_style_answers_are_sandboxed_and_host_style_ones_kept() {
        let own = [
            ("content-security-policy", "default-src 'self'"),
            ("Service-Worker-Allowed", "/"),
            ("service-worker-allowed", "/_console/"),
            ("x-custom", "1"),
        ];
        let r = through(Door::Path, answer(&own));
        assert_eq!(all(&r, "content-security-policy"), ["default-src 'self'", PATH_SANDBOX], "the function's policy is kept");
        assert!(all(&r, "service-worker-allowed").is_empty());
        assert_eq!(all(&r, "x-custom"), ["1"]);
        assert_eq!(all(&r, "content-type"), ["text/html"]);
        let r = through(Door::Path, answer(&[]));
        assert_eq!(all(&r, "content-security-policy"), [PATH_SANDBOX]);

        let r = through(Door::Host, answer(&own));
        assert_eq!(all(&r, "content-security-policy"), ["default-src 'self'"]);
        assert_eq!(all(&r, "service-worker-allowed"), ["/", "/_console/"]);
    }
}

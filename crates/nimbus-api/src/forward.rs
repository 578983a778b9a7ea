//! Routing warm work across a cluster (issue 17): a synchronous Invoke that reaches a node
//! with no idle environment of its function is sent on, as received, to the function's home
//! node, the live member that rendezvous hashing picks for the account and function, where
//! its environments are kept warm. The home node runs it when it has an idle environment of
//! the function or none at all (the first one starts there: a function invoked through
//! every node then starts once, not once per node); when all of its environments are busy,
//! or it refuses the request before running it (a throttle, a function or key it has not
//! heard of yet, a 4xx), it answers "not run" (`x-nimbus-not-run`) and the sending node runs
//! the invoke itself, as it does when the home cannot be reached. A forward that reached the
//! home and got no answer is not run again (it may have run there): ServiceException.
//!
//! The home node authenticates and authorizes the request again, with the client's address
//! and transport as the sending node saw them (`x-nimbus-forwarded-for`, kept only when its
//! MAC under a key derived from the shared master key holds), and never sends it further.
//! Members come from the store's membership table, read every second. Only plain-HTTP
//! endpoints are forwarded to, and a node serving HTTPS answers its own invokes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;

use crate::response::Body;

/// The header a forwarded request carries (the sending node's id): its receiver runs it.
pub const FORWARDED_BY: &str = "x-nimbus-forwarded-by";

/// The client's address and transport as the sending node saw them: `<ip>,<0|1>,<MAC>`.
pub const FORWARDED_FOR: &str = "x-nimbus-forwarded-for";

/// The home node's answer to a forward it did not run (the sender runs the invoke).
pub const NOT_RUN: &str = "x-nimbus-not-run";

/// How long a forwarded invoke may take: Lambda's longest timeout and a margin.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(15 * 60 + 30);

/// How often the members are read again.
const REFRESH: Duration = Duration::from_secs(1);

/// How long a forward waits to connect before the invoke runs here instead.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// How long a member that could not be connected to is not forwarded to (its invokes run
/// where they arrive): a dead host would otherwise cost every forward [`CONNECT_TIMEOUT`]
/// until the member's heartbeats lapse and it leaves the members.
const UNREACHABLE_FOR: Duration = Duration::from_secs(5);

/// How far from the receiving node's clock a forward's sending time may be (the nodes'
/// clocks are assumed to agree to within a few seconds): an older [`FORWARDED_FOR`] is
/// ignored, so one seen once cannot lend a client address to requests made later.
const FORWARD_FRESH: Duration = Duration::from_secs(30);

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A member forwarded to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Member {
    node: String,
    endpoint: String,
}

/// The members as last read, and this node among them.
#[derive(Default)]
struct Members {
    me: Option<String>,
    others: Vec<Member>,
}

/// Where this node sends the synchronous invokes it would start cold.
pub struct Router {
    members: RwLock<Members>,
    client: Client<HttpConnector, Full<Bytes>>,
    /// Signs and checks [`FORWARDED_FOR`].
    key: [u8; 32],
    forwarded: AtomicU64,
    /// Forwards that never reached the home node, or that it did not run (the invoke ran
    /// here).
    fell_back: AtomicU64,
    /// Members not connected to lately, until when they are left alone.
    unreachable: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
    /// Requests relayed here that this node took on and has not answered yet, by function
    /// (see [`admit`]).
    admitted: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

/// A relayed request this home node took on, counted until it is answered (dropped).
pub(crate) struct Admitted {
    router: Arc<Router>,
    function: String,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut admitted = self.router.admitted.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = admitted.get_mut(&self.function) {
            *n -= 1;
            if *n == 0 {
                admitted.remove(&self.function);
            }
        }
    }
}

/// Where a request goes: answered already, or run here (holding its place, when relayed).
pub(crate) enum Route {
    Answered(Response<Body>),
    Here(Option<Admitted>),
}

/// [`routed`], and on the home node the "not run" answer when the function has
/// environments here and none is left for this request: the idle ones, less those that
/// relayed requests taken on before it will take. Looking and counting happen under one
/// lock, so relayed requests that arrive together do not all find the same idle
/// environment (the home would start more while their senders could have run them).
pub(crate) async fn route(
    state: &crate::server::AppState,
    req: Routed<'_>,
    relayed: bool,
    parts: &Parts,
    body: &Bytes,
    client: (&str, bool),
) -> Route {
    // Preflights are answered where they arrive (a sender never relays one).
    if parts.method == http::Method::OPTIONS {
        return Route::Here(None);
    }
    if !relayed {
        return match routed(state, req, parts, body, client).await {
            Some(answer) => Route::Answered(answer),
            None => Route::Here(None),
        };
    }
    match admit(state, req).await {
        Ok(admitted) => Route::Here(admitted),
        Err(answer) => Route::Answered(answer),
    }
}

async fn admit(state: &crate::server::AppState, req: Routed<'_>) -> Result<Option<Admitted>, Response<Body>> {
    let Some(router) = state.router.as_ref() else { return Ok(None) };
    let Some(function) = req.function(state).await else { return Ok(None) };
    let mut admitted = router.admitted.lock().unwrap_or_else(|p| p.into_inner());
    let taken = admitted.get(&function).copied().unwrap_or(0);
    let idle = state.invoker.pool().idle_for(&function);
    // (idle ≤ taken with idle > 0 means taken > 0: the function has environments here)
    if idle <= taken && (taken > 0 || state.invoker.in_flight_of(&function) > 0) {
        return Err(not_run_answer("busy"));
    }
    *admitted.entry(function.clone()).or_default() += 1;
    Ok(Some(Admitted { router: router.clone(), function }))
}

impl Router {
    /// A router following `control`'s members (nothing is forwarded until they are read).
    /// `key`: the same on every node (derived from the master key they share).
    pub fn start(control: Arc<nimbus_control::ControlPlane>, key: [u8; 32]) -> Arc<Router> {
        let router = Arc::new(Router::new(key));
        let weak = Arc::downgrade(&router);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REFRESH);
            loop {
                tick.tick().await;
                let peers = control.peers().await;
                let Some(router) = weak.upgrade() else { return };
                router.set_members(&peers);
            }
        });
        router
    }

    fn new(key: [u8; 32]) -> Router {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        // A home that goes away mid-invoke is noticed.
        connector.set_keepalive(Some(Duration::from_secs(10)));
        // Well inside any node's idle keep-alive timeout, so a request is not written to a
        // connection the home is closing.
        let client = Client::builder(hyper_util::rt::TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(5)).build(connector);
        Router {
            members: RwLock::default(),
            client,
            key,
            forwarded: AtomicU64::new(0),
            fell_back: AtomicU64::new(0),
            unreachable: Default::default(),
            admitted: Default::default(),
        }
    }

    /// The MAC of a forwarded request's client address and transport, bound to the time it
    /// was sent (seconds) and to the request itself: its method, host, path and query,
    /// signature (if any) and body, so the value cannot lend an address to another request.
    fn mac(&self, ip: &str, secure: bool, sent: u64, parts: &Parts, body: &[u8]) -> String {
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.key).expect("any key length");
        let header = |name: http::header::HeaderName| parts.headers.get(name).map_or(&b""[..], |v| v.as_bytes());
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        // Each field length-prefixed: no two requests feed the same bytes.
        for field in [
            ip.as_bytes(),
            if secure { b"1" } else { b"0" },
            sent.to_string().as_bytes(),
            parts.method.as_str().as_bytes(),
            header(http::header::HOST),
            path.as_bytes(),
            header(http::header::AUTHORIZATION),
            body,
        ] {
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field);
        }
        hex::encode(mac.finalize().into_bytes())
    }

    /// The [`FORWARDED_FOR`] value for a request, sent at `sent`.
    fn forwarded_for_value(&self, ip: &str, secure: bool, sent: u64, parts: &Parts, body: &[u8]) -> String {
        format!("{ip},{},{sent},{}", if secure { 1 } else { 0 }, self.mac(ip, secure, sent, parts, body))
    }

    /// The client's address and transport a forwarded request carries, when its MAC holds
    /// and it was sent within [`FORWARD_FRESH`] of now.
    pub(crate) fn forwarded_for(&self, parts: &Parts, body: &[u8]) -> Option<(String, bool)> {
        self.forwarded_for_at(parts, body, unix_now())
    }

    fn forwarded_for_at(&self, parts: &Parts, body: &[u8], now: u64) -> Option<(String, bool)> {
        let value = parts.headers.get(FORWARDED_FOR)?.to_str().ok()?;
        let mut fields = value.split(',');
        let (ip, secure, sent, mac) = (fields.next()?, fields.next()? == "1", fields.next()?.parse::<u64>().ok()?, fields.next()?);
        if fields.next().is_some() || now.abs_diff(sent) > FORWARD_FRESH.as_secs() {
            return None;
        }
        let want = self.mac(ip, secure, sent, parts, body);
        // Compared in constant time.
        let same = want.len() == mac.len() && want.bytes().zip(mac.bytes()).fold(0u8, |d, (a, b)| d | (a ^ b)) == 0;
        same.then(|| (ip.to_string(), secure))
    }

    fn set_members(&self, peers: &[nimbus_store::Peer]) {
        let me = peers.iter().find(|p| p.this_node).map(|p| p.node.clone());
        let others = peers
            .iter()
            .filter(|p| !p.this_node && p.endpoint.starts_with("http://"))
            .map(|p| Member { node: p.node.clone(), endpoint: p.endpoint.trim_end_matches('/').to_string() })
            .collect();
        *self.members.write().unwrap_or_else(|p| p.into_inner()) = Members { me, others };
    }

    /// The home of `key` when it is another node (its endpoint): the member whose hash of
    /// (node, key) is highest, this node included.
    fn home(&self, key: &str) -> Option<String> {
        let members = self.members.read().unwrap_or_else(|p| p.into_inner());
        let me = members.me.as_deref()?;
        let score = |node: &str| score(node, key);
        let best = members.others.iter().max_by_key(|m| score(&m.node))?;
        if score(&best.node) <= score(me) {
            return None;
        }
        let mut unreachable = self.unreachable.lock().unwrap_or_else(|p| p.into_inner());
        match unreachable.get(&best.endpoint) {
            Some(until) if *until > std::time::Instant::now() => None,
            Some(_) => {
                unreachable.remove(&best.endpoint);
                Some(best.endpoint.clone())
            }
            None => Some(best.endpoint.clone()),
        }
    }

    /// `endpoint` could not be connected to: its functions run where they arrive for a while.
    fn mark_unreachable(&self, endpoint: &str) {
        let until = std::time::Instant::now() + UNREACHABLE_FOR;
        self.unreachable.lock().unwrap_or_else(|p| p.into_inner()).insert(endpoint.to_string(), until);
    }

    /// `{"forwarded": n, "fellBack": n}` for the status page.
    pub fn counts(&self) -> serde_json::Value {
        serde_json::json!({
            "forwarded": self.forwarded.load(Ordering::Relaxed),
            "fellBack": self.fell_back.load(Ordering::Relaxed),
        })
    }

    /// Sends the request to `endpoint` as received (with the client's address), and its
    /// answer back.
    async fn send(&self, endpoint: &str, parts: &Parts, body: Bytes, me: &str, client: (&str, bool)) -> Result<Response<Body>, Failed> {
        let before = |e: String| Failed { sent: false, why: e };
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut req = Request::builder().method(parts.method.clone()).uri(format!("{endpoint}{path}"));
        for (name, value) in &parts.headers {
            if !is_hop_by_hop(name.as_str()) {
                req = req.header(name, value);
            }
        }
        let (ip, secure) = client;
        let forwarded_for = self.forwarded_for_value(ip, secure, unix_now(), parts, &body);
        let mut req = req.body(Full::new(body)).map_err(|e| before(e.to_string()))?;
        req.headers_mut().insert(FORWARDED_BY, HeaderValue::from_str(me).map_err(|e| before(e.to_string()))?);
        req.headers_mut().insert(FORWARDED_FOR, HeaderValue::from_str(&forwarded_for).map_err(|e| before(e.to_string()))?);
        // Only a forward that never connected is known not to have run.
        let answer = match tokio::time::timeout(ANSWER_TIMEOUT, self.client.request(req)).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) if e.is_connect() => {
                self.mark_unreachable(endpoint);
                return Err(before(e.to_string()));
            }
            Ok(Err(e)) => return Err(Failed { sent: true, why: e.to_string() }),
            Err(_) => return Err(Failed { sent: true, why: "no answer in time".into() }),
        };
        if answer.headers().contains_key(NOT_RUN) {
            return Err(Failed { sent: false, why: format!("the home node did not run it ({})", answer.status()) });
        }
        let (head, incoming) = answer.into_parts();
        let body = incoming.collect().await.map_err(|e| Failed { sent: true, why: e.to_string() })?.to_bytes();
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = head.status;
        for (name, value) in &head.headers {
            if !is_hop_by_hop(name.as_str()) && name != http::header::CONTENT_LENGTH {
                response.headers_mut().append(name, value.clone());
            }
        }
        Ok(response)
    }
}

/// A member's weight for `key` (rendezvous hashing: the highest is home), the same on
/// every node.
fn score(node: &str, key: &str) -> u64 {
    use sha2::Digest;
    let digest = sha2::Sha256::new().chain_update(node.as_bytes()).chain_update([0]).chain_update(key.as_bytes()).finalize();
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// A forward that failed; `sent`: the home node may have run the invoke.
struct Failed {
    sent: bool,
    why: String,
}

fn is_hop_by_hop(name: &str) -> bool {
    matches!(name, "connection" | "keep-alive" | "transfer-encoding" | "te" | "trailer" | "upgrade" | "proxy-connection" | "expect")
        || name == FORWARDED_FOR
}

/// Whether a status is a refusal made before any function ran (the sender of a forward runs
/// the invoke itself then: its own answer is the one to give).
fn refused_before_running(status: http::StatusCode) -> bool {
    matches!(status.as_u16(), 400 | 401 | 403 | 404 | 409 | 413 | 415 | 429)
}

/// Marks an answer given without running the function (busy; or a function URL's refusal:
/// its URL or function unknown here, its authorization, a throttle): a forwarded request's
/// sender runs it itself. (A URL's answers carry the function's own status codes and
/// headers, so neither can say; an Invoke's 4xx always means its function did not run.)
#[derive(Debug, Clone, Copy)]
pub(crate) struct NotRunHere(pub(crate) &'static str);

/// The request is one another node forwarded: its answer says "not run" when it was not
/// run here, and never otherwise (a header of that name in a function's answer is dropped).
pub(crate) fn mark_forwarded_answer(service: &str, response: &mut Response<Body>) {
    response.headers_mut().remove(NOT_RUN);
    let why = match response.extensions().get::<NotRunHere>() {
        Some(NotRunHere(why)) => why,
        None if service == "lambda" && refused_before_running(response.status()) => "refused",
        None => return,
    };
    response.headers_mut().insert(NOT_RUN, HeaderValue::from_static(why));
}

/// Marks an answer a front door (a function URL, an HTTP API) gave before its function ran.
pub(crate) fn not_run(mut r: Response<Body>) -> Response<Body> {
    r.extensions_mut().insert(NotRunHere("refused"));
    r
}

/// An empty "not run here" answer (the sender runs the request itself).
fn not_run_answer(why: &'static str) -> Response<Body> {
    let mut answer = Response::new(Body::from(Bytes::new()));
    *answer.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
    answer.extensions_mut().insert(NotRunHere(why));
    answer
}

/// The answer to a forward whose client address does not check out: not run here.
pub(crate) fn unchecked() -> Response<Body> {
    not_run_answer("unchecked")
}

/// A synchronous request that may run on its function's home node: an Invoke, a function
/// URL's request or an HTTP API's.
pub(crate) enum Routed<'a> {
    Invoke(&'a crate::lambda::LambdaRequest),
    Url(&'a crate::function_url::UrlRequest),
    Api(&'a crate::gateway::ApiRequest),
}

impl Routed<'_> {
    /// The function the request runs, when it may be routed: a synchronous Invoke; a known
    /// URL that answers whole (a streamed answer is served where it arrives); a known route
    /// of an API whose default endpoint is enabled.
    async fn function(&self, state: &crate::server::AppState) -> Option<String> {
        match self {
            Routed::Invoke(req) => {
                let Ok(crate::lambda::LambdaCall::Invoke(input)) = &req.call else { return None };
                input.sync_function(state.control.partition())
            }
            Routed::Url(req) => {
                let config = state.control.url_by_id(&req.url_id).await.ok()??;
                (config.invoke_mode != "RESPONSE_STREAM").then(|| config.function.clone())
            }
            Routed::Api(req) => {
                let front = state.gateway.front(&req.api_id)?;
                if front.disable_execute_api_endpoint {
                    return None;
                }
                let target = state.gateway.resolve(&req.api_id, req.call.method.as_str(), &req.call.path)?;
                let arn = nimbus_gateway::function_arn(&target.integration.integration_uri)?;
                nimbus_model::FunctionRef::parse(arn, state.control.partition()).ok().map(|f| f.name)
            }
        }
    }

    /// The answer to a forward that reached the home and got none, as each front answers a
    /// failure of the service.
    fn lost(&self, e: nimbus_model::ApiError) -> Response<Body> {
        let member = match self {
            Routed::Invoke(_) => return crate::server::lambda_error(e),
            Routed::Url(_) => "Message",
            Routed::Api(_) => "message",
        };
        let mut answer = serde_json::Map::new();
        answer.insert(member.to_string(), "Internal Server Error".into());
        crate::response::json(http::StatusCode::INTERNAL_SERVER_ERROR, &serde_json::Value::Object(answer))
    }
}

/// Where a synchronous request (not a preflight) that no other node relayed runs in a
/// cluster (see the module's docs): None: here; else the home node's answer when it is
/// sent there.
async fn routed(
    state: &crate::server::AppState,
    req: Routed<'_>,
    parts: &Parts,
    body: &Bytes,
    client: (&str, bool),
) -> Option<Response<Body>> {
    let router = state.router.as_ref()?;
    if parts.headers.contains_key(FORWARDED_BY) || state.tls.is_some() {
        return None;
    }
    let function = req.function(state).await?;
    if state.invoker.pool().idle_for(&function) > 0 {
        return None;
    }
    let endpoint = router.home(&format!("{}/{function}", state.account()))?;
    let me = router.members.read().unwrap_or_else(|p| p.into_inner()).me.clone()?;
    match router.send(&endpoint, parts, body.clone(), &me, client).await {
        Ok(response) => {
            router.forwarded.fetch_add(1, Ordering::Relaxed);
            Some(response)
        }
        // Not connected: it runs here.
        Err(Failed { sent: false, why }) => {
            router.fell_back.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%function, %endpoint, "forwarding an invoke failed, it runs here: {why}");
            None
        }
        // It may have run there: running it again here could run it twice.
        Err(Failed { sent: true, why }) => {
            tracing::warn!(%function, %endpoint, "a forwarded invoke got no answer: {why}");
            Some(req.lost(nimbus_model::ApiError::service(format!("the node running {function} did not answer"))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(node: &str, this_node: bool) -> nimbus_store::Peer {
        nimbus_store::Peer {
            node: node.into(),
            endpoint: format!("http://{node}:9001"),
            started_ms: 0,
            heartbeat_age_ms: 0,
            async_events_held: 0,
            this_node,
        }
    }

    fn router() -> Router {
        Router::new([7; 32])
    }

    /// Every node agrees on each function's home, each function has one, and homes spread
    /// over the members; a member leaving moves only its own functions.
    #[test]
    fn homes_agree_and_spread() {
        let nodes = ["a", "b", "c"];
        let views: Vec<Router> = nodes
            .iter()
            .map(|me| {
                let r = router();
                r.set_members(&nodes.iter().map(|n| peer(n, n == me)).collect::<Vec<_>>());
                r
            })
            .collect();
        let mut per_node = std::collections::HashMap::new();
        let mut homes = Vec::new();
        for f in 0..300 {
            let key = format!("123456789012/fn-{f}");
            // Each view names another node's endpoint, or None when the home is itself.
            let answers: Vec<Option<String>> = views.iter().map(|v| v.home(&key)).collect();
            let local: Vec<usize> = answers.iter().enumerate().filter(|(_, a)| a.is_none()).map(|(i, _)| i).collect();
            assert_eq!(local.len(), 1, "{key}: exactly one node is home ({answers:?})");
            let home = nodes[local[0]];
            for a in answers.iter().flatten() {
                assert_eq!(a, &format!("http://{home}:9001"), "{key}");
            }
            *per_node.entry(home).or_insert(0) += 1;
            homes.push(home);
        }
        for n in nodes {
            assert!(per_node[n] > 60, "{per_node:?}");
        }
        // c leaves: the functions of a and b stay where they were.
        let a = router();
        a.set_members(&[peer("a", true), peer("b", false)]);
        for (f, home) in homes.iter().enumerate() {
            let key = format!("123456789012/fn-{f}");
            match *home {
                "a" => assert_eq!(a.home(&key), None),
                "b" => assert_eq!(a.home(&key).as_deref(), Some("http://b:9001")),
                _ => {}
            }
        }
    }

    /// The client's address travels with a MAC bound to the request (method, host, path
    /// and query, signature, body) and the time it was sent: kept when it holds, ignored when
    /// forged, altered, moved to another request, made under another key, or too old or too
    /// far ahead.
    #[test]
    fn the_client_address_is_believed_only_from_a_node() {
        let r = router();
        let now = 1_800_000_000;
        let request = |method: &str, host: &str, path: &str, authorization: Option<&str>, forwarded_for: Option<&str>| {
            let mut b = Request::builder().method(method).uri(path).header("host", host);
            if let Some(a) = authorization {
                b = b.header("authorization", a);
            }
            if let Some(v) = forwarded_for {
                b = b.header(FORWARDED_FOR, v);
            }
            b.body(()).unwrap().into_parts().0
        };
        let signed = request("POST", "node-a:9001", "/2015-03-31/functions/f/invocations", Some("AWS4 sig"), None);
        let good = r.forwarded_for_value("203.0.113.9", true, now, &signed, b"{}");
        let with = |p: &Parts, v: &str| {
            let mut p = p.clone();
            p.headers.insert(FORWARDED_FOR, HeaderValue::from_str(v).unwrap());
            p
        };
        assert_eq!(r.forwarded_for_at(&with(&signed, &good), b"{}", now), Some(("203.0.113.9".into(), true)));
        // An unsigned function URL request is bound to its method, host, path and body.
        let url = request("GET", "abc.lambda-url.us-east-1.on.aws", "/page?x=1", None, None);
        let unsigned = r.forwarded_for_value("198.51.100.7", false, now, &url, b"");
        assert_eq!(r.forwarded_for_at(&with(&url, &unsigned), b"", now + 29), Some(("198.51.100.7".into(), false)));
        let cases: Vec<(Parts, &[u8], u64)> = vec![
            (with(&signed, &format!("203.0.113.9,1,{now},{}", "0".repeat(64))), b"{}", now),
            (with(&signed, &good.replace("203.0.113.9", "10.0.0.1")), b"{}", now),
            (with(&signed, &good.replace(",1,", ",0,")), b"{}", now),
            (with(&signed, &good.replace(&now.to_string(), &(now + 1).to_string())), b"{}", now),
            (with(&request("POST", "node-a:9001", "/2015-03-31/functions/f/invocations", Some("AWS4 another"), None), &good), b"{}", now),
            (with(&signed, &good), b"{\"other\":1}", now),
            (with(&signed, &good), b"{}", now + 31),
            (with(&signed, &good), b"{}", now - 31),
            (with(&signed, &format!("{good},x")), b"{}", now),
            (with(&signed, &Router::new([8; 32]).forwarded_for_value("203.0.113.9", true, now, &signed, b"{}")), b"{}", now),
            (with(&signed, "203.0.113.9"), b"{}", now),
            (with(&request("GET", "abc.lambda-url.us-east-1.on.aws", "/admin?x=1", None, None), &unsigned), b"", now),
            (with(&request("GET", "other.lambda-url.us-east-1.on.aws", "/page?x=1", None, None), &unsigned), b"", now),
            (with(&request("POST", "abc.lambda-url.us-east-1.on.aws", "/page?x=1", None, None), &unsigned), b"", now),
        ];
        for (i, (parts, body, at)) in cases.iter().enumerate() {
            assert_eq!(r.forwarded_for_at(parts, body, *at), None, "case {i}");
        }
        assert_eq!(r.forwarded_for_at(&signed, b"{}", now), None);
    }

    /// A home that cannot be connected to is left alone for a while: its functions' invokes
    /// run where they arrive instead of each waiting to connect; then it is tried again.
    #[tokio::test]
    async fn an_unreachable_home_is_left_alone_for_a_while() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let r = router();
        let mut gone = peer("b", false);
        gone.endpoint = format!("http://127.0.0.1:{port}");
        r.set_members(&[peer("a", true), gone.clone()]);
        let key = (0..).map(|f| format!("123456789012/fn-{f}")).find(|k| r.home(k).is_some()).unwrap();
        let parts = Request::builder().method("POST").uri("/2015-03-31/functions/f/invocations").body(()).unwrap().into_parts().0;
        let Err(failed) = r.send(&gone.endpoint, &parts, Bytes::new(), "a", ("127.0.0.1", false)).await else { panic!("nothing listens") };
        assert!(!failed.sent, "{}", failed.why);
        assert_eq!(r.home(&key), None, "left alone");
        // Once the while is over, it is tried again.
        r.unreachable.lock().unwrap().insert(gone.endpoint.clone(), std::time::Instant::now());
        assert_eq!(r.home(&key), Some(gone.endpoint));
    }

    #[test]
    fn nothing_is_forwarded_before_the_members_are_known_or_alone() {
        let r = router();
        assert_eq!(r.home("k"), None);
        r.set_members(&[peer("a", true)]);
        assert_eq!(r.home("k"), None);
        // Members over HTTPS are not forwarded to.
        let mut tls = peer("b", false);
        tls.endpoint = "https://b:9001".into();
        r.set_members(&[peer("a", true), tls]);
        assert_eq!(r.home("k"), None);
    }
}

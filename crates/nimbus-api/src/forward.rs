//! Routing warm work across a cluster (issue 17): a synchronous Invoke that reaches a node
//! with no idle environment of its function is sent on, as received, to the function's home
//! node, the live member that rendezvous hashing picks for the account and function, where
//! its environments are kept warm; the home node answers it as its own request
//! (authenticated and authorized again) and never sends it further. A node that has an idle
//! environment of the function answers itself (its own warm environment is the shortest
//! way), and so does one whose home node cannot be reached: forwarding only ever saves a
//! cold start, it never fails an invoke that could run here.
//!
//! Members come from the store's membership table, read every second. Only plain-HTTP
//! endpoints are forwarded to (a node with `--tls-cert` answers its own invokes).

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

/// How often the members are read again.
const REFRESH: Duration = Duration::from_secs(1);

/// How long a forward waits to connect before the invoke runs here instead.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

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
    forwarded: AtomicU64,
    /// Forwards that failed before an answer (the invoke ran here).
    fell_back: AtomicU64,
}

impl Router {
    /// A router following `control`'s members (nothing is forwarded until they are read).
    pub fn start(control: Arc<nimbus_control::ControlPlane>) -> Arc<Router> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let client = Client::builder(hyper_util::rt::TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector);
        let router = Arc::new(Router { members: RwLock::default(), client, forwarded: AtomicU64::new(0), fell_back: AtomicU64::new(0) });
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
        (score(&best.node) > score(me)).then(|| best.endpoint.clone())
    }

    /// `{"forwarded": n, "fellBack": n}` for the status page.
    pub fn counts(&self) -> serde_json::Value {
        serde_json::json!({
            "forwarded": self.forwarded.load(Ordering::Relaxed),
            "fellBack": self.fell_back.load(Ordering::Relaxed),
        })
    }

    /// Sends the request to `endpoint` as received, and its answer back.
    async fn send(&self, endpoint: &str, parts: &Parts, body: Bytes, me: &str) -> Result<Response<Body>, Failed> {
        let before = |e: String| Failed { sent: false, why: e };
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut req = Request::builder().method(parts.method.clone()).uri(format!("{endpoint}{path}"));
        for (name, value) in &parts.headers {
            if !is_hop_by_hop(name.as_str()) {
                req = req.header(name, value);
            }
        }
        let mut req = req.body(Full::new(body)).map_err(|e| before(e.to_string()))?;
        req.headers_mut().insert(FORWARDED_BY, HeaderValue::from_str(me).map_err(|e| before(e.to_string()))?);
        // Only a forward that never connected is known not to have run.
        let answer = self.client.request(req).await.map_err(|e| Failed { sent: !e.is_connect(), why: e.to_string() })?;
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
    matches!(name, "connection" | "keep-alive" | "transfer-encoding" | "te" | "trailer" | "upgrade" | "proxy-connection")
}

/// The answer of the home node of the function a synchronous Invoke names, when this node
/// should send it there (see the module's docs); None: run it here.
pub(crate) async fn forwarded(
    state: &crate::server::AppState,
    req: &crate::lambda::LambdaRequest,
    parts: &Parts,
    body: &Bytes,
) -> Option<Response<Body>> {
    let router = state.router.as_ref()?;
    if parts.headers.contains_key(FORWARDED_BY) {
        return None;
    }
    let Ok(crate::lambda::LambdaCall::Invoke(input)) = &req.call else { return None };
    let function = input.sync_function(state.control.partition())?;
    if state.invoker.pool().idle_for(&function) > 0 {
        return None;
    }
    let endpoint = router.home(&format!("{}/{function}", state.account()))?;
    let me = router.members.read().unwrap_or_else(|p| p.into_inner()).me.clone()?;
    match router.send(&endpoint, parts, body.clone(), &me).await {
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
            let e = nimbus_model::ApiError::service(format!("the node running {function} did not answer"));
            Some(crate::server::lambda_error(e))
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
        let client = Client::builder(hyper_util::rt::TokioExecutor::new()).build(HttpConnector::new());
        Router { members: RwLock::default(), client, forwarded: AtomicU64::new(0), fell_back: AtomicU64::new(0) }
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

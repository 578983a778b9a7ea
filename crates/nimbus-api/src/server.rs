//! The HTTP listener: reads each request, parses it into an [`Action`], runs it, and
//! answers in the caller's protocol.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use nimbus_control::ControlPlane;
use nimbus_invoke::{AsyncInvoker, Invoker};
use nimbus_logs::LogStore;
use nimbus_model::{ApiError, ErrorCode};
use tokio::net::TcpListener;

use crate::action::{self, Action, RawRequest};
use nimbus_protocol::{encode, Protocol, LAMBDA, LOGS};

use crate::response::{self, Body};
use crate::{lambda, logs};

/// Largest request body read: a 50 MB zip, base64-encoded inside JSON.
const MAX_BODY: usize = 72 * 1024 * 1024;
/// Past this size a request's parsing and signature check leave the async workers.
const LARGE_BODY: usize = 256 * 1024;

pub struct AppState {
    /// The keys every AWS API request must be signed with; None with `--auth off`.
    pub keys: Option<Arc<nimbus_identity::Keys>>,
    pub control: Arc<ControlPlane>,
    pub invoker: Arc<Invoker>,
    pub async_invoker: Arc<AsyncInvoker>,
    pub logs: Arc<LogStore>,
    /// What `GET /_nimbus/status` reports (isolation, limits, missing guarantees).
    pub status: serde_json::Value,
    /// Function URLs are recognised by host name under this domain.
    pub url_domain: String,
    /// The port the server listens on (API Gateway's `X-Forwarded-Port`).
    pub port: u16,
    /// How the URLs handed out are made.
    pub urls: crate::urls::Urls,
    pub queues: Arc<nimbus_queues::QueueService>,
    /// DynamoDB's tables.
    pub tables: Arc<nimbus_tables::TableService>,
    /// Kinesis Data Streams' streams.
    pub streams: Arc<nimbus_streams::StreamService>,
    pub event_sources: Arc<nimbus_triggers::EventSources>,
    pub events: Arc<nimbus_events::EventsService>,
    pub kms: Arc<nimbus_kms::KmsService>,
    pub topics: Arc<nimbus_topics::TopicService>,
    pub gateway: Arc<nimbus_gateway::GatewayService>,
    /// IAM and STS (users' Active keys also live in `keys`).
    pub iam: Arc<nimbus_iam::IamService>,
    /// EC2's VPCs, subnets and security groups.
    pub network: Arc<nimbus_network::NetworkService>,
    /// HTTP APIs are recognised by host name under this domain (`<api-id>.<api domain>`).
    pub api_domain: String,
    /// Set when every listener speaks HTTPS (`--tls-cert`): the URLs handed out say so.
    pub tls: Option<crate::tls::Tls>,
    /// Every account this server holds (this one among them).
    pub accounts: Arc<crate::accounts::Accounts>,
    /// Timeouts and the connection cap of each listener.
    pub limits: crate::conn::ConnectionLimits,
    /// What the server counts for its operators (one for every account).
    pub metrics: Arc<nimbus_metrics::Metrics>,
    /// CloudWatch's metrics of this account.
    pub metric_store: Arc<nimbus_metrics::cloudwatch::MetricStore>,
    /// S3's buckets and objects of this account.
    pub objects: Arc<nimbus_objects::ObjectStore>,
    /// Woken after every S3 change that may owe notifications (their deliverer waits on it).
    pub object_events: Arc<tokio::sync::Notify>,
    /// With a shared store: where synchronous invokes that would start cold here go.
    pub router: Option<Arc<crate::forward::Router>>,
}

impl AppState {
    /// The account these services are.
    pub fn account(&self) -> &str {
        &self.control.partition().account_id
    }

    /// The scheme of the URLs this server hands out.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }
}

/// Serves the API on `listener` until the task is dropped: over HTTPS when the state has
/// TLS, else plain HTTP; within the state's connection limits ([`crate::conn`]).
pub async fn serve(listener: TcpListener, state: Arc<AppState>) {
    serve_until(listener, state, std::future::pending()).await
}

/// [`serve`] until `drain` completes, then drains: the listener is closed at once (a new
/// connection is refused, so a load balancer sends it to another node), idle connections
/// are closed, and a connection with a request in progress is answered (its response says
/// `Connection: close`) and then closed. Returns once every connection it accepted is closed.
/// Dropped before that (the drain's deadline), it drops those connections with it: their
/// clients see the connection cut, not an answer made of the server's own stop.
pub async fn serve_until(listener: TcpListener, state: Arc<AppState>, drain: impl std::future::Future<Output = ()>) {
    let local = listener.local_addr().unwrap_or_else(|_| std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
    let slots = crate::conn::Slots::new(local, &state.limits);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut connections = tokio::task::JoinSet::new();
    let mut drain = std::pin::pin!(drain);
    loop {
        let accepted = tokio::select! {
            // A connection waiting in the backlog when the drain begins is refused with the
            // rest: it had sent nothing the server took.
            biased;
            _ = &mut drain => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let slot = match slots.admit() {
            crate::conn::Admission::Serve(slot) => slot,
            crate::conn::Admission::Refuse(refusing) => {
                let tls = state.tls.clone();
                tokio::spawn(async move {
                    let _refusing = refusing;
                    match tls {
                        None => crate::conn::refuse(stream).await,
                        Some(tls) => {
                            if let Ok(crate::tls::Accepted::Tls(stream)) =
                                tokio::time::timeout(crate::conn::refusal_time(), tls.accept(stream, peer)).await
                            {
                                crate::conn::refuse(*stream).await;
                            }
                        }
                    }
                });
                continue;
            }
            crate::conn::Admission::Close => continue,
        };
        while connections.try_join_next().is_some() {}
        connections.spawn(admitted(stream, peer, state.clone(), Some(slot), Some(graceful.watcher())));
    }
    drop(listener);
    graceful.shutdown().await;
    while connections.join_next().await.is_some() {}
}

/// Serves the API on one accepted connection, in a task of its own: over HTTPS when the
/// state has TLS, else plain HTTP. (Connections made inside environments to the server's
/// own address arrive here too, from `nimbus_sandbox::server_door`.)
pub fn serve_stream(stream: tokio::net::TcpStream, peer: std::net::SocketAddr, state: Arc<AppState>) {
    tokio::spawn(admitted(stream, peer, state, None, None));
}

/// The service of one connection (for a task of its own), holding `slot` (the listener's
/// connection slot) while it serves, and closing gracefully when `drain` says so.
fn admitted(
    stream: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    state: Arc<AppState>,
    slot: Option<tokio::sync::OwnedSemaphorePermit>,
    drain: Option<Watcher>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let _ = stream.set_nodelay(true);
    async move {
        let _slot = slot;
        match state.tls.clone() {
            None => serve_connection(stream, state, peer, false, drain).await,
            // The handshake runs in the connection's own task: a slow or failed one
            // holds up nobody else.
            Some(tls) => match tls.accept(stream, peer).await {
                crate::tls::Accepted::Tls(stream) => serve_connection(*stream, state, peer, true, drain).await,
                crate::tls::Accepted::Refused => {}
            },
        }
    }
}

type Watcher = hyper_util::server::graceful::Watcher;

/// HTTP/1.1 on one connection, plain or inside TLS (`secure`).
async fn serve_connection<S>(stream: S, state: Arc<AppState>, peer: std::net::SocketAddr, secure: bool, drain: Option<Watcher>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let io = hyper_util::rt::TokioIo::new(stream);
    let limits = state.limits;
    let svc = hyper::service::service_fn(move |req| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(handle(state, req, peer, secure).await) }
    });
    let connection = crate::conn::http1(&limits).serve_connection(io, svc);
    let _ = match drain {
        Some(drain) => drain.watch(connection).await,
        None => connection.await,
    };
}

/// [`route`], counted (by service, status code and time to the response's head).
async fn handle(state: Arc<AppState>, req: Request<Incoming>, peer: std::net::SocketAddr, secure: bool) -> Response<Body> {
    let started = std::time::Instant::now();
    let metrics = state.metrics.clone();
    let mut service = "unknown";
    let forwarded = req.headers().contains_key(crate::forward::FORWARDED_BY);
    let mut response = route(state, req, peer, secure, &mut service).await;
    // A forwarded invoke not run here (busy, or refused before anything ran) is run by the
    // node that sent it.
    if forwarded {
        crate::forward::mark_forwarded_answer(service, &mut response);
    } else {
        // Nimbus's own header, whatever a function's answer says.
        response.headers_mut().remove(crate::forward::NOT_RUN);
    }
    metrics.request(service, response.status().as_u16(), started.elapsed());
    response
}

async fn route(
    state: Arc<AppState>,
    req: Request<Incoming>,
    peer: std::net::SocketAddr,
    secure: bool,
    service: &mut &'static str,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let json_target = parts.headers.contains_key("x-amz-target");
    let body = tower_http::timeout::TimeoutBody::new(state.limits.body_timeout, body);
    // S3 is placed, authenticated and authorized from the head: its bodies stream.
    let s3 = match crate::s3::recognize(&parts) {
        Some(s3) => Some(s3),
        None => crate::s3::recognize_public(&state, &parts).await,
    };
    if let Some(s3) = s3 {
        *service = "s3";
        return route_s3(state, s3, parts, body, peer, secure).await;
    }
    let body: Bytes = match Limited::new(body, MAX_BODY).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<tower_http::timeout::TimeoutError>() => {
            tracing::debug!(%peer, "a request body paused longer than the body timeout: answered 408");
            return crate::conn::body_timed_out(&state.limits);
        }
        Err(e) => return edge_error(json_target, body_error(e.as_ref())),
    };
    let raw = RawRequest {
        url_domain: &state.url_domain,
        api_domain: &state.api_domain,
        source_ip: peer.ip().to_string(),
        method: &parts.method,
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
        body: body.clone(),
    };
    // A large body (a deploy's zip, a 6 MB payload) is parsed, decoded and hashed for its
    // signature off the async workers.
    let large = body.len() > LARGE_BODY;
    let action = match nimbus_store::blocking::in_place_if(large, || action::parse(raw)) {
        Ok(mut a) => {
            *service = a.service();
            // The caller's trace context, which the invocation joins.
            if let Action::Lambda(crate::lambda::LambdaRequest {
                call: Ok(crate::lambda::LambdaCall::Invoke(input) | crate::lambda::LambdaCall::InvokeWithResponseStream(input)),
                ..
            }) = &mut a
            {
                input.trace = crate::proxy::trace_parent(&parts.headers);
            }
            a
        }
        Err(e) => {
            if let Err(refused) = crate::auth::check_unparsed(state.keys.as_deref(), &parts, &body) {
                return *refused;
            }
            return edge_error(json_target, e);
        }
    };
    // The one place every AWS API request is authenticated.
    let caller = match nimbus_store::blocking::in_place_if(large, || crate::auth::check(state.keys.as_deref(), &action, &parts, &body)) {
        Ok(caller) => caller,
        Err(refused) => return *refused,
    };
    // Served by the caller's account, or by the account whose resource it names ...
    let home = caller.as_ref().and_then(|c| state.accounts.get(&c.principal.account)).unwrap_or(state);
    let state = match (&caller, &action) {
        (Some(caller), _) => crate::authz::owner(&home, caller, &action),
        (None, Action::InvokeFunctionUrl(req)) => home.accounts.owner_of_url(&req.url_id).await.unwrap_or_else(|| home.clone()),
        (None, Action::InvokeApi(req)) => home.accounts.owner_of_api(&req.api_id).unwrap_or_else(|| home.clone()),
        (None, _) => home.clone(),
    };
    // ... and authorized, against the caller's policies and the resource's, from where the
    // caller is (a request another node forwarded says where that node saw it).
    let relayed = state.router.as_ref().and_then(|r| r.forwarded_for(&parts, &body));
    if relayed.is_none()
        && parts.headers.contains_key(crate::forward::FORWARDED_FOR)
        && parts.headers.contains_key(crate::forward::FORWARDED_BY)
    {
        // Sent by a node whose word cannot be checked (clocks apart, another key): not run
        // here with the sending node's address standing for the client's; the sender runs it.
        return crate::forward::unchecked();
    }
    let (source_ip, secure) = relayed.clone().unwrap_or_else(|| (peer.ip().to_string(), secure));
    let conn = crate::authz::Connection { source_ip: &source_ip, secure };
    if let Some(caller) = &caller {
        if let Err(denied) = crate::authz::authorize(&home, &state, caller, &action, &conn).await {
            return *denied;
        }
    }
    tracing::debug!(action = action.name(), "request");
    let host = parts.headers.get("host").and_then(|h| h.to_str().ok());
    // Where links in answers point: this server, as the caller reached it (see `urls`).
    let origin = state.urls.origin(host);
    match action {
        // The functions' front doors: every answer leaves through `proxy::through`.
        Action::InvokeFunctionUrl(mut req) => {
            // The function's event names the client as the node that forwarded it saw it.
            req.call.source_ip.clone_from(&source_ip);
            let routed = crate::forward::Routed::Url(&req);
            let _admitted = match crate::forward::route(&state, routed, relayed.is_some(), &parts, &body, (&source_ip, secure)).await {
                crate::forward::Route::Answered(answer) => return answer,
                crate::forward::Route::Here(admitted) => admitted,
            };
            let (door, signer) = (req.call.door, crate::auth::signer(state.keys.as_deref(), &parts, &body));
            crate::proxy::through(door, with_request_id(crate::function_url::serve(&state, *req, signer, &conn).await))
        }
        Action::InvokeApi(mut req) => {
            req.call.source_ip.clone_from(&source_ip);
            let routed = crate::forward::Routed::Api(&req);
            let _admitted = match crate::forward::route(&state, routed, relayed.is_some(), &parts, &body, (&source_ip, secure)).await {
                crate::forward::Route::Answered(answer) => return answer,
                crate::forward::Route::Here(admitted) => admitted,
            };
            let (door, signer) = (req.call.door, crate::auth::signer(state.keys.as_deref(), &parts, &body));
            crate::proxy::through(door, crate::gateway::serve(&state, *req, signer, &conn).await)
        }
        Action::Gateway(req) => crate::gateway::execute(&state, req, &origin).await,
        Action::Sqs(req) => crate::sqs::execute(&state.queues, req, &origin).await,
        Action::DynamoDb(req) => crate::dynamodb::execute(&state.tables, req, host).await,
        Action::DynamoDbStreams(req) => crate::dynamodbstreams::execute(&state.tables, req).await,
        Action::Kinesis(req) => crate::kinesis::execute(&state.streams, req).await,
        Action::Events(req) => crate::events::execute(&state.events, req).await,
        Action::Kms(req) => {
            let lockout = caller.as_ref().map(|c| crate::authz::lockout(&home, &state, c));
            crate::kms::execute(&state.kms, req, lockout.as_ref()).await
        }
        Action::Sns(req) => crate::sns::execute(&state.topics, req).await,
        Action::Iam(req) => crate::iam::execute_iam(&state.iam, req, caller.as_ref()).await,
        Action::Sts(req) => crate::iam::execute_sts(&state.iam, &home.iam, req, caller.as_ref()).await,
        Action::Organizations(req) => crate::organizations::execute(&state, req, home.account()).await,
        Action::CloudWatch(req) => {
            let cx = crate::cloudwatch::Context {
                store: &state.metric_store,
                topics: &state.topics,
                region: &state.control.partition().region,
                account: state.account(),
            };
            crate::cloudwatch::execute(&cx, req).await
        }
        Action::Ec2(req) => crate::ec2::execute(&state.network, req).await,
        Action::Logs(req) => {
            // The log store reads files: off the async workers.
            let st = state.clone();
            match tokio::task::spawn_blocking(move || logs::execute(&st, &st.logs, req)).await {
                Ok(r) => r,
                Err(e) => edge_error(true, ApiError::service(format!("log query failed: {e}"))),
            }
        }
        Action::Lambda(req) => {
            let routed = crate::forward::Routed::Invoke(&req);
            match crate::forward::route(&state, routed, relayed.is_some(), &parts, &body, (&source_ip, secure)).await {
                crate::forward::Route::Answered(answer) => answer,
                crate::forward::Route::Here(_admitted) => lambda::execute(&state, req, &origin, caller.as_ref()).await,
            }
        }
        // Placed before the body is read (`route_s3`); never parsed from a whole request.
        Action::S3(_) => edge_error(false, ApiError::service("an S3 request reached the whole-body path")),
        Action::Console(call) => crate::console::serve(&state, call, &parts.headers, caller.as_ref(), &origin).await,
        Action::Status => {
            let mut v = state.status.clone();
            let (idle, busy) = state.invoker.pool().counts();
            let (provisioned, provisioning) = state.invoker.pool().provisioned_totals();
            v["environments"] = serde_json::json!({
                "idle": idle,
                "busy": busy,
                "inFlight": state.invoker.in_flight(),
                "provisioned": provisioned,
                "provisioning": provisioning,
            });
            v["eventSources"] = serde_json::json!({ "shardPollers": state.event_sources.shard_pollers() });
            let peers = state.control.peers().await;
            if let Some(me) = peers.iter().find(|p| p.this_node) {
                v["cluster"] = serde_json::json!({ "node": me.node, "peers": peers });
                if let Some(router) = &state.router {
                    v["cluster"]["invokes"] = router.counts();
                }
            }
            with_request_id(response::json(StatusCode::OK, &v))
        }
        Action::Health if state.keys.is_none() => with_request_id(response::json(
            StatusCode::OK,
            &serde_json::json!({"status": "ok", "auth": "off", "warning": "authentication is off: anyone who can reach this server can do anything"}),
        )),
        Action::Health => with_request_id(response::raw(StatusCode::OK, "application/json", Bytes::from_static(b"{\"status\":\"ok\"}"))),
        Action::GetCode { account, digest, path, query } => {
            // Served to whoever holds a link this server signed, until it expires, as AWS's
            // presigned S3 URLs; refused as S3 refuses them.
            if !state.accounts.links.verify(&path, query.as_deref(), chrono::Utc::now().timestamp()) {
                return with_request_id(response::raw(
                    StatusCode::FORBIDDEN,
                    "application/xml",
                    Bytes::from_static(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>Request has expired or its signature does not match</Message></Error>"),
                ));
            }
            let Some(owner) = state.accounts.get(&account) else {
                return edge_error(false, ApiError::not_found("No code with that digest"));
            };
            match owner.control.code_zip(&digest).await {
                Ok(Some(zip)) => with_request_id(response::raw(StatusCode::OK, "application/zip", zip.into())),
                Ok(None) => edge_error(false, ApiError::not_found("No code with that digest")),
                Err(e) => edge_error(false, e),
            }
        }
    }
}

/// An S3 request: authenticated here (the signature's promise about the body travels with
/// it, to be kept as the body streams), authorized as every other call, then served.
async fn route_s3<B>(
    state: Arc<AppState>,
    req: crate::s3::S3Request,
    parts: http::request::Parts,
    body: B,
    peer: std::net::SocketAddr,
    secure: bool,
) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // A refusal before the body is read drains a small one, so the client's connection
    // stays usable for its next request.
    let body = crate::s3::body::RequestBody::new(body, nimbus_identity::sigv4::BodyCheck::None);
    let (caller, check, anonymous) = match crate::auth::check_s3(state.keys.as_deref(), &parts, &req.resource) {
        Ok(crate::auth::S3Auth::Signed(caller, check)) => (Some(caller), check, false),
        Ok(crate::auth::S3Auth::Off(check)) => (None, check, false),
        Ok(crate::auth::S3Auth::Anonymous(check)) => (None, check, true),
        Err(refused) => {
            body.leftover().drain().await;
            return *refused;
        }
    };
    let body = body.checked(check);
    let home = caller.as_ref().and_then(|c| state.accounts.get(&c.principal.account)).unwrap_or(state);
    // A bucket is its owner's, whoever asks (CreateBucket makes one in the caller's account).
    let owner = match req.bucket.as_deref() {
        Some(bucket) if req.operation != "CreateBucket" => crate::s3::owner_of(&home, bucket).await,
        _ => home.clone(),
    };
    let action = Action::S3(Box::new(req));
    let source_ip = peer.ip().to_string();
    let conn = crate::authz::Connection { source_ip: &source_ip, secure };
    if let Some(caller) = &caller {
        if let Err(denied) = crate::authz::authorize(&home, &owner, caller, &action, &conn).await {
            body.leftover().drain().await;
            return *denied;
        }
    } else if anonymous && req_is_post(&action) {
        // A POST form's signature is in its body: `s3::post` authenticates and authorizes it.
    } else if anonymous {
        // Unsigned: only what the bucket's policy grants everyone.
        let scope =
            crate::authz::Scope { account: owner.account(), region: &owner.control.partition().region, principal: "", names: &*owner };
        let allowed = match action.target(&scope) {
            Some(target) => {
                crate::authz::decide(&owner, crate::authz::Who::Anonymous, target.action, &target.resource, &[], &conn).await.is_ok()
            }
            None => false,
        };
        if !allowed {
            body.leftover().drain().await;
            return crate::s3::error_response(&parts.method, &crate::s3::S3Error::new("AccessDenied", 403, "Access Denied"));
        }
    }
    let Action::S3(req) = action else { unreachable!("made above") };
    tracing::debug!(action = req.operation, "request");
    crate::s3::serve(&owner, *req, &parts, body, &conn).await
}

fn req_is_post(action: &Action) -> bool {
    matches!(action, Action::S3(r) if r.operation == "PostObject")
}

/// Why a request's body could not be read: too large (413), or a body whose framing is
/// broken (a bad chunk, a connection closed before `Content-Length` bytes came), which is
/// the client's malformed request (400), not its size.
fn body_error(e: &(dyn std::error::Error + 'static)) -> ApiError {
    if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
        return ApiError::new(ErrorCode::RequestEntityTooLarge, format!("Request must be smaller than {MAX_BODY} bytes"));
    }
    ApiError::new(ErrorCode::InvalidRequestContent, format!("Could not read the request body: {e}"))
}

/// A Lambda API error answer.
pub(crate) fn lambda_error(e: ApiError) -> Response<Body> {
    edge_error(false, e)
}

/// An error found before a request reached its service (too large, no such route, a store
/// failure on Nimbus's own endpoints), in the shape of the protocol it came in: awsJson 1.1
/// for `X-Amz-Target` requests, else Lambda's rest-json.
fn edge_error(json_target: bool, e: ApiError) -> Response<Body> {
    if e.code == ErrorCode::Service {
        tracing::error!("{e}");
    }
    let request_id = uuid::Uuid::new_v4().to_string();
    let r = if json_target {
        encode::error(&LOGS, Protocol::AwsJson1_1, &logs::LogsError::from(e), &request_id)
    } else {
        encode::error(&LAMBDA, Protocol::RestJson, &e, &request_id)
    };
    r.map(crate::response::Body::from)
}

fn with_request_id(mut r: Response<Body>) -> Response<Body> {
    if !r.headers().contains_key("x-amzn-requestid") {
        if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
            r.headers_mut().insert("x-amzn-requestid", v);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;

    #[tokio::test]
    async fn body_errors_are_sorted_by_cause() {
        let over = Limited::new(Full::new(Bytes::from_static(b"0123456789")), 4).collect().await.expect_err("over the limit");
        let broken: Box<dyn std::error::Error + Send + Sync> =
            Box::new(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed before message completed"));
        let cases: [(&(dyn std::error::Error + 'static), ErrorCode, u16); 2] =
            [(over.as_ref(), ErrorCode::RequestEntityTooLarge, 413), (broken.as_ref(), ErrorCode::InvalidRequestContent, 400)];
        for (error, code, status) in cases {
            let e = body_error(error);
            assert_eq!((e.code, e.code.status()), (code, status), "{error}");
        }
    }
}

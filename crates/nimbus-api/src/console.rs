//! The web console at the edge: its files (`nimbus-console`, embedded at build time) under
//! `/_console/`, its index also at `/` for a browser (a request no AWS service claims: no
//! signature, query or `x-amz-*` header), and the login that gives it credentials: a
//! one-time link (`/#/login/<token>`, printed at start and made by `nimbus console`) whose
//! token `POST /_nimbus/console/session` trades, once, for session credentials of the
//! management account's root, minted by STS's GetSessionToken, so every service takes them
//! as it takes any SigV4 session key. The files and the session endpoint are unauthenticated,
//! like `/health`; `POST /_nimbus/console/link` is signed with the administrator's key (the
//! account root's long-term key; not a session's, so the console's own credentials cannot
//! renew themselves).

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use nimbus_identity::{Caller, Principal};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::accounts::Accounts;
use crate::action::RawRequest;
use crate::response::{self, Body};
use crate::server::AppState;

/// A request for the console.
#[derive(Debug)]
pub enum ConsoleCall {
    /// One of its files, by its path under `/_console/` (`""`: the index).
    Asset { path: String },
    /// `POST /_nimbus/console/session`: a login link's token for credentials.
    Session { body: Bytes },
    /// `POST /_nimbus/console/link`: a new login link (the administrator's key only).
    Link,
}

impl ConsoleCall {
    /// The name the server's request metrics give it.
    pub fn name(&self) -> &'static str {
        match self {
            ConsoleCall::Asset { .. } => "nimbus:Console",
            ConsoleCall::Session { .. } => "nimbus:ConsoleSession",
            ConsoleCall::Link => "nimbus:ConsoleLink",
        }
    }
}

/// Where the console's files are served.
const PREFIX: &str = "/_console";

/// The console's request `req` is, if it is one. It runs after every service's recognizer:
/// the console takes only what nothing else claims, and `/` only from a browser, never a
/// signed AWS request (SQS's query protocol `POST /`, an S3 `GET /`).
pub(crate) fn recognize(req: &RawRequest<'_>) -> Option<ConsoleCall> {
    let read = matches!(*req.method, Method::GET | Method::HEAD);
    match req.path {
        "/" if read && from_a_browser(req) => Some(ConsoleCall::Asset { path: String::new() }),
        "/_nimbus/console/session" if req.method == Method::POST => Some(ConsoleCall::Session { body: req.body.clone() }),
        "/_nimbus/console/link" if req.method == Method::POST => Some(ConsoleCall::Link),
        path if read => {
            let rest = path.strip_prefix(PREFIX)?;
            if rest.is_empty() {
                return Some(ConsoleCall::Asset { path: String::new() });
            }
            Some(ConsoleCall::Asset { path: rest.strip_prefix('/')?.to_string() })
        }
        _ => None,
    }
}

/// Whether a request to `/` is a browser's: no signature, no query, no AWS header.
fn from_a_browser(req: &RawRequest<'_>) -> bool {
    req.query.is_none_or(str::is_empty)
        && !req.headers.contains_key(http::header::AUTHORIZATION)
        && !req.headers.keys().any(|k| k.as_str().starts_with("x-amz-"))
}

/// Answers a console call. `caller` is who signed it (None when unsigned or with
/// authentication off); `origin` is this server as the caller reached it.
pub(crate) async fn serve(
    state: &AppState,
    call: ConsoleCall,
    headers: &HeaderMap,
    caller: Option<&Caller>,
    origin: &str,
) -> Response<Body> {
    match call {
        ConsoleCall::Asset { path } => asset(&path, headers),
        ConsoleCall::Session { body } => session(state, &body).await,
        ConsoleCall::Link => link(state, caller, origin),
    }
}

/// What the console's pages may do: only this server's scripts, styles (inline ones too, which
/// the editor and charts set), images and connections; never framed.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; \
font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The headers every console file is sent with.
fn harden(r: &mut Response<Body>) {
    let h = r.headers_mut();
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
}

/// A file of the console, gzipped for a client that takes it; 404 when there is none.
fn asset(path: &str, headers: &HeaderMap) -> Response<Body> {
    let found = match path {
        "" => Some(nimbus_console::index()),
        path => nimbus_console::asset(path),
    };
    let Some(asset) = found else {
        let mut r = response::raw(StatusCode::NOT_FOUND, "text/plain; charset=utf-8", Bytes::from_static(b"Not Found\n"));
        harden(&mut r);
        return r;
    };
    let gzip = asset.gzip.filter(|_| accepts_gzip(headers));
    let mut r = response::raw(StatusCode::OK, asset.content_type, Bytes::from_static(gzip.unwrap_or(asset.body)));
    harden(&mut r);
    let h = r.headers_mut();
    let cache = if asset.immutable { "public, max-age=31536000, immutable" } else { "no-cache" };
    h.insert(http::header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if asset.gzip.is_some() {
        // Both forms vary with the header, for any cache between.
        h.insert(http::header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    if gzip.is_some() {
        h.insert(http::header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    r
}

/// Whether `Accept-Encoding` takes gzip: `gzip` (or `x-gzip`, or `*` unless gzip is refused)
/// with a quality above zero.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    let (mut gzip, mut any) = (None, None);
    for value in headers.get_all(http::header::ACCEPT_ENCODING) {
        for item in value.to_str().unwrap_or("").split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let quality = parts
                .filter_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            match coding.as_str() {
                "gzip" | "x-gzip" => gzip = Some(quality > 0.0),
                "*" => any = Some(quality > 0.0),
                _ => {}
            }
        }
    }
    gzip.or(any).unwrap_or(false)
}

/// What the console posts to `/_nimbus/console/session`.
#[derive(Deserialize)]
struct SessionRequest {
    token: String,
}

/// Session credentials of the management account's root.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ConsoleSession {
    access_key_id: String,
    secret_access_key: String,
    session_token: String,
    /// ISO 8601.
    expiration: String,
    account_id: String,
}

const LINK_REFUSED: &str =
    "This login link was already used or is not valid (a link works once, for 15 minutes). Run `nimbus console` for a new one.";

/// The longest session STS gives the account's root (GetSessionToken caps root at an hour).
const ROOT_SESSION_SECS: i64 = 3600;

/// Trades a login link's token for the management account root's session credentials; the
/// token is used up.
async fn session(state: &AppState, body: &[u8]) -> Response<Body> {
    let Ok(request) = serde_json::from_slice::<SessionRequest>(body) else {
        return message(StatusCode::BAD_REQUEST, "The body must be JSON with the login link's token: {\"token\": \"...\"}");
    };
    if !state.accounts.logins.redeem(&request.token) {
        return message(StatusCode::FORBIDDEN, LINK_REFUSED);
    }
    let account = state.accounts.organizations.management_account().to_string();
    let management = state.accounts.get(&account);
    let iam = management.as_ref().map_or(&state.iam, |m| &m.iam);
    match iam.get_session_token(&Principal::root(&account), Some(ROOT_SESSION_SECS)).await {
        Ok(c) => {
            tracing::info!("a console login link was used");
            let session = ConsoleSession {
                access_key_id: c.access_key_id,
                secret_access_key: c.secret_access_key,
                session_token: c.session_token,
                expiration: c.expiration,
                account_id: account,
            };
            let body = serde_json::to_vec(&session).expect("serializes");
            private(response::raw(StatusCode::OK, "application/json", body.into()))
        }
        Err(e) => {
            tracing::error!("minting the console's session failed: {e}");
            message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The server could not make the session's credentials; run `nimbus console` for a new link.",
            )
        }
    }
}

/// A new login link, for the administrator's key only: the management account root's
/// long-term key (any caller with authentication off). Not for root's session credentials
/// (what a login link is traded for): a session that could make links could renew itself
/// for ever, so one stolen from a browser would never stop working.
fn link(state: &AppState, caller: Option<&Caller>, origin: &str) -> Response<Body> {
    if let Some(caller) = caller {
        if !may_make_links(state, caller) {
            return message(StatusCode::FORBIDDEN, "Only the account's root (the administrator's key) can make console login links.");
        }
    }
    private(response::json(StatusCode::OK, &json!({ "url": login_link(&state.accounts, origin) })))
}

/// Whether `caller` signed with the administrator's key (the management account root's
/// long-term key), not a session's or an IAM user's.
fn may_make_links(state: &AppState, caller: &Caller) -> bool {
    let root = Principal::root(state.accounts.organizations.management_account());
    let admin_key = state.keys.as_deref().map(|k| k.admin_key_id());
    caller.principal.arn == root.arn && admin_key == Some(caller.access_key.as_str())
}

/// A new one-time login link to the console of the server at `origin`
/// (`http://127.0.0.1:9001`); it replaces the unused one, if any.
pub fn login_link(accounts: &Accounts, origin: &str) -> String {
    format!("{origin}/#/login/{}", accounts.logins.issue())
}

/// Why this binary's console is a page saying it was not built, if it is.
pub fn missing() -> Option<&'static str> {
    nimbus_console::missing()
}

fn message(status: StatusCode, text: &str) -> Response<Body> {
    private(response::json(status, &json!({ "message": text })))
}

/// An answer no cache keeps (it holds credentials or a login link).
fn private(mut r: Response<Body>) -> Response<Body> {
    r.headers_mut().insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_sent_to_whoever_takes_it() {
        let cases = [
            (None, false),
            (Some(""), false),
            (Some("gzip"), true),
            (Some("gzip, deflate, br, zstd"), true),
            (Some("br;q=1.0, GZIP;q=0.5"), true),
            (Some("x-gzip"), true),
            (Some("gzip;q=0"), false),
            (Some("gzip; q=0.0, deflate"), false),
            (Some("identity"), false),
            (Some("*"), true),
            (Some("*;q=0"), false),
            (Some("*, gzip;q=0"), false),
            (Some("deflate, br"), false),
        ];
        for (header, want) in cases {
            let mut headers = HeaderMap::new();
            if let Some(h) = header {
                headers.insert(http::header::ACCEPT_ENCODING, HeaderValue::from_static(h));
            }
            assert_eq!(accepts_gzip(&headers), want, "{header:?}");
        }
    }

    #[test]
    fn files_carry_their_headers() {
        let headers = |accept: Option<&'static str>| {
            let mut h = HeaderMap::new();
            if let Some(a) = accept {
                h.insert(http::header::ACCEPT_ENCODING, HeaderValue::from_static(a));
            }
            h
        };
        let index = nimbus_console::index();
        for accept in [None, Some("gzip")] {
            let r = asset("", &headers(accept));
            assert_eq!(r.status(), StatusCode::OK);
            let h = r.headers();
            assert_eq!(h["content-type"], index.content_type);
            assert_eq!(h["cache-control"], "no-cache");
            assert_eq!(h["content-security-policy"], CSP);
            assert_eq!(h["x-content-type-options"], "nosniff");
            assert_eq!(h["referrer-policy"], "no-referrer");
            let gzipped = accept.is_some() && index.gzip.is_some();
            assert_eq!(h.get("content-encoding").is_some(), gzipped, "{accept:?}");
            assert_eq!(h.get("vary").map(|v| v.to_str().unwrap_or("")), index.gzip.map(|_| "Accept-Encoding"));
        }
        let missing = asset("assets/none-1234.js", &headers(None));
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        assert_eq!(missing.headers()["x-content-type-options"], "nosniff");
        for path in ["../Cargo.toml", "assets/../index.html", "/index.html"] {
            assert_eq!(asset(path, &headers(None)).status(), StatusCode::NOT_FOUND, "{path}");
        }
    }
}

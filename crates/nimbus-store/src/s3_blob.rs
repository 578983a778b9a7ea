//! Code blobs on S3-compatible storage, so that every node of a scaled-out Nimbus reads the
//! same zips: [`S3BlobStore`] is the [`BlobStore`] over `object_store`'s S3 client, whose HTTP
//! goes through hyper (`HyperConnector`, below) as the rest of Nimbus's does.
//!
//! Objects are `<prefix>/code/<first two hex>/<sha256>.zip`. An S3 PUT is atomic (no reader
//! ever sees part of an object), so a blob is whole under its name or absent.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector as TcpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use object_store::aws::{AmazonS3, AmazonS3Builder, AwsCredential};
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpRequestBody, HttpResponse, HttpResponseBody, HttpService,
};
use object_store::path::Path;
use object_store::{
    BackoffConfig, ClientConfigKey, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig, StaticCredentialProvider,
};

use crate::blob::{sha256_hex, BlobStore};
use crate::StoreError;

// Timeouts and retries: a blob is read when a node starts an environment whose code it has
// not unpacked yet, and written by CreateFunction and kin, so an unreachable store must
// fail those calls in seconds rather than hold them for object_store's default three minutes.
// Retries follow the AWS SDKs' "standard" mode (three attempts in all); object_store retries
// only what is safe to (connection failures, 5xx, 429, and timeouts of idempotent requests).
// A refused connection fails in well under a second (three attempts, 0.1 to 0.4 s apart); a
// host that drops packets in about 3 * CONNECT_TIMEOUT = 6 s; a server that takes the
// connection and never answers in TIMEOUT (no retry starts after RETRY_TIMEOUT).

/// Longest wait for a TCP connection (a TLS handshake counts against `TIMEOUT`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait for an answer's head, from the start of the request (connecting included),
/// plus one second per MiB of request body (an upload of a 250 MB layer takes a while).
const TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for the next piece of an answer's body: a stalled download fails, a long
/// one does not.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_RETRIES: usize = 2;
/// No retry starts after this long.
const RETRY_TIMEOUT: Duration = Duration::from_secs(8);

/// The query parameters an S3 blob URL may have. Credentials are not among them: a URL is
/// printed and logged, a secret must not be.
const PARAMETERS: &[&str] = &["endpoint", "region"];

/// The credentials requests are signed with (AWS Signature Version 4).
#[derive(Clone)]
pub struct S3Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"******")
            .field("session_token", &self.session_token.as_ref().map(|_| "******"))
            .finish()
    }
}

impl S3Credentials {
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, as every AWS
    /// tool reads them; None unless the first two are set.
    pub fn from_env() -> Option<S3Credentials> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Some(S3Credentials {
            access_key_id: var("AWS_ACCESS_KEY_ID")?,
            secret_access_key: var("AWS_SECRET_ACCESS_KEY")?,
            session_token: var("AWS_SESSION_TOKEN"),
        })
    }
}

/// Where the blobs are, as parsed from `s3://bucket[/prefix][?endpoint=URL&region=REGION]`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Location {
    bucket: String,
    /// Without leading or trailing slashes; None for the bucket's root.
    prefix: Option<String>,
    /// `http(s)://host[:port]`, without a trailing slash; None for AWS itself.
    endpoint: Option<String>,
    region: String,
}

impl Location {
    fn parse(url: &str) -> Result<Location, String> {
        let Some(rest) = url.strip_prefix("s3://") else {
            return Err("an S3 blob store URL is s3://BUCKET[/PREFIX][?endpoint=URL&region=REGION]".into());
        };
        if rest.contains('#') {
            return Err("an S3 blob store URL has no #fragment".into());
        }
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
        check_bucket(bucket)?;
        let prefix = prefix.trim_matches('/');
        let named = if prefix.is_empty() { format!("s3://{bucket}") } else { format!("s3://{bucket}/{prefix}") };
        let at = |e: String| format!("S3 blob store {named}: {e}");
        let prefix = match prefix {
            "" => None,
            p => Some(check_prefix(p).map_err(at)?.to_string()),
        };

        let mut endpoint = None;
        let mut region = None;
        let mut unknown = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode(name).map_err(at)?;
            if !PARAMETERS.contains(&name.as_str()) {
                // Named, never echoed with its value (which may be a secret).
                unknown.push(name);
                continue;
            }
            let value = decode(value).map_err(at)?;
            if value.is_empty() {
                return Err(at(format!("the parameter {name} has no value")));
            }
            let slot = if name == "endpoint" { &mut endpoint } else { &mut region };
            if slot.replace(value).is_some() {
                return Err(at(format!("the parameter {name} is given twice")));
            }
        }
        if !unknown.is_empty() {
            let known = PARAMETERS.join(", ");
            return Err(at(format!("unknown parameter {} (known: {known})", unknown.join(", "))));
        }
        let endpoint = endpoint.map(|e| check_endpoint(&e).map_err(at)).transpose()?;
        let region = region.unwrap_or_else(|| "us-east-1".into());
        if !region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return Err(at(format!("region {region:?} is not a region name (such as us-east-1)")));
        }
        Ok(Location { bucket: bucket.to_string(), prefix, endpoint, region })
    }

    /// The URL without its parameters: how errors and logs name the store.
    fn name(&self) -> String {
        match &self.prefix {
            Some(p) => format!("s3://{}/{p}", self.bucket),
            None => format!("s3://{}", self.bucket),
        }
    }
}

/// S3's bucket naming rules (which S3-compatible stores share).
fn check_bucket(bucket: &str) -> Result<(), String> {
    if bucket.is_empty() {
        return Err("an S3 blob store URL names a bucket: s3://BUCKET[/PREFIX]".into());
    }
    let ok_char = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-';
    let ok_end = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let b = bucket.as_bytes();
    if !(3..=63).contains(&b.len()) || !b.iter().all(|&c| ok_char(c)) || !ok_end(b.first()) || !ok_end(b.last()) || bucket.contains("..") {
        return Err(format!(
            "{bucket:?} is not a bucket name: 3 to 63 lowercase letters, digits, dots and hyphens, \
             starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// Segments of URL-unreserved characters, so that the key S3 stores is the key written here.
fn check_prefix(prefix: &str) -> Result<&str, String> {
    for segment in prefix.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(format!("the prefix {prefix:?} has an empty, . or .. segment"));
        }
        if !segment.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b)) {
            return Err(format!("the prefix {prefix:?} has a character other than letters, digits, -, _, . and ~"));
        }
    }
    Ok(prefix)
}

/// `http(s)://host[:port][/path]`, without credentials, query or fragment.
fn check_endpoint(endpoint: &str) -> Result<String, String> {
    let bad = |why: &str| format!("the endpoint {why}");
    let uri: http::Uri = endpoint.parse().map_err(|_| bad("is not a URL"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(bad("must start with http:// or https://"));
    }
    let Some(authority) = uri.authority() else { return Err(bad("has no host")) };
    if authority.as_str().contains('@') {
        // Not echoed: it would print the credentials.
        return Err(bad("must not carry credentials (they come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"));
    }
    if authority.host().is_empty() {
        return Err(bad("has no host"));
    }
    if uri.query().is_some() || endpoint.contains('#') {
        return Err(bad("must not have a query or fragment"));
    }
    Ok(endpoint.trim_end_matches('/').to_string())
}

fn decode(s: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| "a parameter is not UTF-8 once percent-decoded".to_string())
}

fn valid_digest(digest: &str) -> bool {
    digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Code and layer zips in an S3 bucket (AWS S3, MinIO, Nimbus's own S3 API, …), named by
/// their SHA-256.
pub struct S3BlobStore {
    store: AmazonS3,
    /// `<prefix>/code`: every blob is below it.
    code_root: String,
    /// `<prefix>/objects`: S3 object bodies (Nimbus's S3 service on shared storage).
    objects_root: String,
    /// The URL without its parameters, for messages.
    name: String,
    /// Blobs younger than this are kept by `delete` ([`DELETE_GRACE`]).
    delete_grace: Duration,
}

/// How old a blob must be before `delete` removes it. Nodes share the bucket: a node may
/// find a zip unreferenced (collecting at its start, or after a delete) while another node
/// has just stored the same zip for a function whose record it is about to commit. `put`
/// writes the object again when it is older than half of this, so a blob in use by a
/// recent upload is always younger than this; what is kept is collected at a later start.
pub const DELETE_GRACE: Duration = Duration::from_secs(3600);

impl fmt::Debug for S3BlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3BlobStore").field("name", &self.name).finish_non_exhaustive()
    }
}

impl fmt::Display for S3BlobStore {
    /// `s3://bucket[/prefix]`: never the credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl S3BlobStore {
    /// The store at `s3://BUCKET[/PREFIX][?endpoint=URL&region=REGION]` (the command line's
    /// form), signing with the credentials of [`S3Credentials::from_env`]. With `endpoint`
    /// (an S3-compatible service) requests are path-style (`<endpoint>/<bucket>/<key>`),
    /// and an `http://` endpoint allows plain HTTP; without it, AWS S3 in `region`
    /// (default us-east-1). No request is made.
    pub fn from_url(url: &str) -> Result<S3BlobStore, StoreError> {
        let location = Location::parse(url).map_err(StoreError::Backend)?;
        let Some(credentials) = S3Credentials::from_env() else {
            return Err(StoreError::Backend(format!(
                "S3 blob store {}: no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones)",
                location.name()
            )));
        };
        S3BlobStore::new(location, credentials)
    }

    /// [`S3BlobStore::from_url`] with the given credentials.
    pub fn with_credentials(url: &str, credentials: S3Credentials) -> Result<S3BlobStore, StoreError> {
        S3BlobStore::new(Location::parse(url).map_err(StoreError::Backend)?, credentials)
    }

    fn new(location: Location, credentials: S3Credentials) -> Result<S3BlobStore, StoreError> {
        let name = location.name();
        let (code_root, objects_root) = match &location.prefix {
            Some(p) => (format!("{p}/code"), format!("{p}/objects")),
            None => ("code".to_string(), "objects".to_string()),
        };
        let options = ClientOptions::new()
            .with_allow_http(location.endpoint.as_deref().is_some_and(|e| e.starts_with("http://")))
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_timeout(TIMEOUT)
            .with_read_timeout(READ_TIMEOUT)
            .with_content_type_for_suffix("zip", "application/zip");
        let retry = RetryConfig {
            backoff: BackoffConfig { init_backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(2), base: 2.0 },
            max_retries: MAX_RETRIES,
            retry_timeout: RETRY_TIMEOUT,
        };
        let credential = AwsCredential {
            key_id: credentials.access_key_id,
            secret_key: credentials.secret_access_key,
            token: credentials.session_token,
        };
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&location.bucket)
            .with_region(&location.region)
            .with_credentials(Arc::new(StaticCredentialProvider::new(credential)))
            .with_client_options(options)
            .with_retry(retry)
            .with_http_connector(HyperConnector);
        builder = match &location.endpoint {
            // An IP address or a single host cannot have buckets as subdomains.
            Some(endpoint) => builder.with_endpoint(endpoint).with_virtual_hosted_style_request(false),
            // AWS: virtual-hosted, its recommended style, but for dotted names, whose
            // subdomains its wildcard certificate does not cover.
            None => builder.with_virtual_hosted_style_request(!location.bucket.contains('.')),
        };
        // Fails only where the connector does: no system root certificates for HTTPS.
        let store = builder.build().map_err(|e| StoreError::Backend(format!("S3 blob store {name}: {}", cause(&e))))?;
        Ok(S3BlobStore { store, code_root, objects_root, name, delete_grace: DELETE_GRACE })
    }

    /// The bucket's client and the root below which the S3 service keeps its object bodies
    /// (beside the code, under the same prefix).
    pub fn object_bodies(&self) -> (Arc<dyn ObjectStore>, String) {
        (Arc::new(self.store.clone()), self.objects_root.clone())
    }

    /// Checks that the bucket answers to these credentials (lists at most one blob): for a
    /// server to refuse to start rather than fail its first CreateFunction.
    /// Another [`DELETE_GRACE`] (tests; zero deletes whatever `delete` is asked to).
    pub fn with_delete_grace(mut self, grace: Duration) -> S3BlobStore {
        self.delete_grace = grace;
        self
    }

    /// How long ago the object at `path` was written; `None` if there is none.
    async fn age(&self, path: &Path, key: &str) -> Result<Option<Duration>, StoreError> {
        match self.store.head(path).await {
            Ok(meta) => {
                let age = chrono::Utc::now().signed_duration_since(meta.last_modified);
                Ok(Some(age.to_std().unwrap_or(Duration::ZERO)))
            }
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(self.error("HEAD", key, &e)),
        }
    }

    pub async fn probe(&self) -> Result<(), StoreError> {
        let prefix = Path::from(self.code_root.as_str());
        let mut blobs = self.store.list(Some(&prefix));
        blobs.try_next().await.map_err(|e| self.error("LIST", &format!("{}/", self.code_root), &e))?;
        Ok(())
    }

    fn key(&self, digest: &str) -> String {
        format!("{}/{}/{digest}.zip", self.code_root, &digest[..2])
    }

    /// `S3 blob store s3://bucket/prefix: GET code/ab/….zip: connection refused`: what
    /// failed, where, and the innermost cause (the object_store wrapping says no more).
    fn error(&self, operation: &str, key: &str, e: &object_store::Error) -> StoreError {
        StoreError::Backend(format!("S3 blob store {}: {operation} {key}: {}", self.name, cause(e)))
    }
}

/// The innermost error of `e`'s chain, with an S3 error document shortened to its code and
/// message: `HTTP 403 Forbidden: SignatureDoesNotMatch: The request signature …`.
fn cause(e: &(dyn StdError + 'static)) -> String {
    let mut innermost = e;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    let text = innermost.to_string();
    let text = match text.strip_prefix("Server returned non-2xx status code: ") {
        Some(rest) => format!("HTTP {}", rest.trim_end().trim_end_matches(':')),
        None => text,
    };
    let Some(start) = text.find("<?xml").or_else(|| text.find("<Error>")) else { return text };
    let element = |name: &str| {
        let open = format!("<{name}>");
        let from = text.find(&open)? + open.len();
        let len = text[from..].find(&format!("</{name}>"))?;
        Some(text[from..from + len].to_string())
    };
    let head = text[..start].trim_end().trim_end_matches(':');
    match (element("Code"), element("Message")) {
        (Some(code), Some(message)) => format!("{head}: {code}: {message}"),
        (Some(code), None) => format!("{head}: {code}"),
        _ => head.to_string(),
    }
}

fn is_not_found(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotFound { .. })
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, data: &[u8]) -> Result<String, StoreError> {
        let digest = sha256_hex(data);
        let key = self.key(&digest);
        let path = Path::from(key.as_str());
        // Stored already, and recently enough that no node deletes it before its record is
        // committed (see DELETE_GRACE): nothing to send.
        if self.age(&path, &key).await?.is_some_and(|age| age < self.delete_grace / 2) {
            return Ok(digest);
        }
        let payload = PutPayload::from(Bytes::copy_from_slice(data));
        self.store.put(&path, payload).await.map_err(|e| self.error("PUT", &key, &e))?;
        Ok(digest)
    }

    async fn get(&self, digest: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if !valid_digest(digest) {
            return Ok(None);
        }
        let key = self.key(digest);
        let path = Path::from(key.as_str());
        let got = match self.store.get(&path).await {
            Ok(got) => got,
            // A missing bucket is a broken store, not a missing blob.
            Err(e) if is_not_found(&e) && !e.to_string().contains("<Code>NoSuchBucket</Code>") => return Ok(None),
            Err(e) => return Err(self.error("GET", &key, &e)),
        };
        let bytes = got.bytes().await.map_err(|e| self.error("GET", &key, &e))?;
        // Content addressing makes corruption (or tampering) on the way or at rest
        // detectable for free; hashed off the async threads, as a layer may be 250 MB.
        let expected = digest.to_string();
        let (bytes, matches) = tokio::task::spawn_blocking(move || {
            let matches = sha256_hex(&bytes) == expected;
            (bytes, matches)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("S3 blob store {}: GET {key}: {e}", self.name)))?;
        if !matches {
            return Err(StoreError::Backend(format!(
                "S3 blob store {}: GET {key}: the object's content does not hash to its name",
                self.name
            )));
        }
        Ok(Some(Vec::from(bytes)))
    }

    async fn delete(&self, digest: &str) -> Result<(), StoreError> {
        if !valid_digest(digest) {
            return Ok(());
        }
        let key = self.key(digest);
        let path = Path::from(key.as_str());
        if !self.delete_grace.is_zero() && self.age(&path, &key).await?.is_none_or(|age| age < self.delete_grace) {
            // Gone already, or young enough that another node may be about to use it.
            return Ok(());
        }
        match self.store.delete(&path).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(self.error("DELETE", &key, &e)),
        }
    }

    async fn list(&self) -> Result<Vec<String>, StoreError> {
        let prefix = Path::from(self.code_root.as_str());
        let root = format!("{}/", self.code_root);
        let objects: Vec<_> = self.store.list(Some(&prefix)).try_collect().await.map_err(|e| self.error("LIST", &root, &e))?;
        let mut out = Vec::with_capacity(objects.len());
        for object in objects {
            let Some(rest) = object.location.as_ref().strip_prefix(root.as_str()) else { continue };
            let Some((fan, file)) = rest.split_once('/') else { continue };
            match file.strip_suffix(".zip") {
                Some(digest) if valid_digest(digest) && &digest[..2] == fan => out.push(digest.to_string()),
                // Not a blob of ours: left alone.
                _ => {}
            }
        }
        Ok(out)
    }
}

/// object_store's HTTP transport on hyper-util's pooled client (this build has no reqwest),
/// honouring the [`ClientOptions`] it is given: `allow_http`, `connect_timeout`, `timeout`
/// (to the answer's head, plus a second per MiB sent), `read_timeout` (between pieces of the
/// answer's body) and `pool_idle_timeout`. HTTPS trusts the system's root certificates.
#[derive(Debug, Clone, Copy, Default)]
struct HyperConnector;

impl HttpConnector for HyperConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let setting_error = |key: &str, e: String| object_store::Error::Generic {
            store: "HTTP client",
            source: format!("the client option {key}: {e}").into(),
        };
        let duration = |key: ClientConfigKey, name: &str| -> object_store::Result<Option<Duration>> {
            options
                .get_config_value(&key)
                .map(|v| humantime::parse_duration(&v).map_err(|e| setting_error(name, e.to_string())))
                .transpose()
        };
        let allow_http = options.get_config_value(&ClientConfigKey::AllowHttp).is_some_and(|v| v == "true");
        let timeout = duration(ClientConfigKey::Timeout, "timeout")?;
        let read_timeout = duration(ClientConfigKey::ReadTimeout, "read_timeout")?;

        let mut tcp = TcpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(duration(ClientConfigKey::ConnectTimeout, "connect_timeout")?);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = match hyper_rustls::HttpsConnectorBuilder::new().with_provider_and_native_roots(provider.clone()) {
            Ok(tls) => tls,
            // Plain HTTP needs no roots; an HTTPS connection will then fail to verify.
            Err(_) if allow_http => hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(
                rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| setting_error("tls", e.to_string()))?
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth(),
            ),
            Err(e) => return Err(setting_error("tls", format!("cannot read the system's root certificates: {e}"))),
        };
        let tls = if allow_http { tls.https_or_http() } else { tls.https_only() };
        let connector = tls.enable_http1().wrap_connector(tcp);

        let mut client = Client::builder(TokioExecutor::new());
        if let Some(idle) = duration(ClientConfigKey::PoolIdleTimeout, "pool_idle_timeout")? {
            client.pool_idle_timeout(idle);
        }
        if let Some(max) = options.get_config_value(&ClientConfigKey::PoolMaxIdlePerHost) {
            client.pool_max_idle_per_host(max.parse().map_err(|_| setting_error("pool_max_idle_per_host", max))?);
        }
        let client = client.pool_timer(hyper_util::rt::TokioTimer::new()).build(connector);
        Ok(HttpClient::new(HyperService { client, timeout, read_timeout }))
    }
}

#[derive(Debug)]
struct HyperService {
    client: Client<HttpsConnector<TcpConnector>, HttpRequestBody>,
    timeout: Option<Duration>,
    read_timeout: Option<Duration>,
}

/// A timeout of ours, as an error of the transport.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct TimedOut(String);

#[async_trait]
impl HttpService for HyperService {
    async fn call(&self, mut req: HttpRequest) -> Result<HttpResponse, HttpError> {
        if !req.headers().contains_key(http::header::USER_AGENT) {
            req.headers_mut()
                .insert(http::header::USER_AGENT, http::HeaderValue::from_static(concat!("nimbus/", env!("CARGO_PKG_VERSION"))));
        }
        let sent_mib = req.body().content_length() as u64 / (1 << 20);
        let answer = self.client.request(req);
        let answer = match self.timeout {
            Some(limit) => {
                let limit = limit + Duration::from_secs(sent_mib);
                tokio::time::timeout(limit, answer)
                    .await
                    .map_err(|_| HttpError::new(HttpErrorKind::Timeout, TimedOut(format!("no answer within {limit:?}"))))?
            }
            None => answer.await,
        };
        let answer = answer.map_err(|e| {
            let kind = if e.is_connect() { HttpErrorKind::Connect } else { transport_error_kind(&e) };
            HttpError::new(kind, e)
        })?;
        Ok(answer.map(|body| match self.read_timeout {
            Some(idle) => HttpResponseBody::new(IdleTimeout::new(body, idle)),
            None => HttpResponseBody::new(body.map_err(body_error)),
        }))
    }
}

/// What object_store should make of a transport failure (it retries `Request` always,
/// `Timeout` and `Interrupted` only for idempotent requests): the same reading of hyper's
/// and the OS's errors as its own reqwest transport.
fn transport_error_kind(e: &(dyn StdError + 'static)) -> HttpErrorKind {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(e) = e.downcast_ref::<hyper::Error>() {
            if e.is_closed() || e.is_incomplete_message() || e.is_body_write_aborted() {
                return HttpErrorKind::Request;
            }
            if e.is_timeout() {
                return HttpErrorKind::Timeout;
            }
        }
        if let Some(e) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            match e.kind() {
                TimedOut => return HttpErrorKind::Timeout,
                ConnectionAborted | ConnectionReset | BrokenPipe | UnexpectedEof => return HttpErrorKind::Interrupted,
                _ => {}
            }
        }
        next = e.source();
    }
    HttpErrorKind::Unknown
}

fn body_error(e: hyper::Error) -> HttpError {
    HttpError::new(transport_error_kind(&e), e)
}

/// An answer's body, streamed as it arrives, failing when nothing arrives for `idle`.
struct IdleTimeout {
    body: Incoming,
    idle: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl IdleTimeout {
    fn new(body: Incoming, idle: Duration) -> IdleTimeout {
        IdleTimeout { body, idle, deadline: Box::pin(tokio::time::sleep(idle)) }
    }
}

impl Body for IdleTimeout {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let next = tokio::time::Instant::now() + this.idle;
                this.deadline.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(body_error(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    let e = TimedOut(format!("the answer's body stalled for {:?}", this.idle));
                    Poll::Ready(Some(Err(HttpError::new(HttpErrorKind::Timeout, e))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location(bucket: &str, prefix: Option<&str>, endpoint: Option<&str>, region: &str) -> Location {
        Location { bucket: bucket.into(), prefix: prefix.map(Into::into), endpoint: endpoint.map(Into::into), region: region.into() }
    }

    #[test]
    fn urls() {
        let good = [
            ("s3://code-blobs", location("code-blobs", None, None, "us-east-1")),
            ("s3://code-blobs/", location("code-blobs", None, None, "us-east-1")),
            ("s3://code-blobs/nimbus/prod/", location("code-blobs", Some("nimbus/prod"), None, "us-east-1")),
            ("s3://my.blobs/a?region=eu-west-3", location("my.blobs", Some("a"), None, "eu-west-3")),
            (
                "s3://blobs?endpoint=http://127.0.0.1:9001&region=us-east-1",
                location("blobs", None, Some("http://127.0.0.1:9001"), "us-east-1"),
            ),
            (
                "s3://blobs/p?endpoint=https%3A%2F%2Fminio.internal%3A9000%2F",
                location("blobs", Some("p"), Some("https://minio.internal:9000"), "us-east-1"),
            ),
        ];
        for (url, expected) in good {
            assert_eq!(Location::parse(url), Ok(expected), "{url}");
        }

        let bad = [
            ("https://blobs", "an S3 blob store URL is s3://BUCKET[/PREFIX][?endpoint=URL&region=REGION]"),
            ("s3://", "an S3 blob store URL names a bucket: s3://BUCKET[/PREFIX]"),
            ("s3:///prefix", "an S3 blob store URL names a bucket: s3://BUCKET[/PREFIX]"),
            (
                "s3://Blobs",
                "\"Blobs\" is not a bucket name: 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit",
            ),
            (
                "s3://ab",
                "\"ab\" is not a bucket name: 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit",
            ),
            ("s3://blobs#x", "an S3 blob store URL has no #fragment"),
            ("s3://blobs/a//b", "S3 blob store s3://blobs/a//b: the prefix \"a//b\" has an empty, . or .. segment"),
            ("s3://blobs/a/../b", "S3 blob store s3://blobs/a/../b: the prefix \"a/../b\" has an empty, . or .. segment"),
            (
                "s3://blobs/a b",
                "S3 blob store s3://blobs/a b: the prefix \"a b\" has a character other than letters, digits, -, _, . and ~",
            ),
            ("s3://blobs?bucket=x&verbose", "S3 blob store s3://blobs: unknown parameter bucket, verbose (known: endpoint, region)"),
            // The secret is not in the message.
            (
                "s3://blobs?access_key_id=AKIDEXAMPLE&secret_access_key=wJalrXUtnFEMI",
                "S3 blob store s3://blobs: unknown parameter access_key_id, secret_access_key (known: endpoint, region)",
            ),
            ("s3://blobs?region=", "S3 blob store s3://blobs: the parameter region has no value"),
            ("s3://blobs?region=us-east-1&region=eu-west-1", "S3 blob store s3://blobs: the parameter region is given twice"),
            ("s3://blobs?region=US_EAST", "S3 blob store s3://blobs: region \"US_EAST\" is not a region name (such as us-east-1)"),
            ("s3://blobs?endpoint=127.0.0.1:9000", "S3 blob store s3://blobs: the endpoint must start with http:// or https://"),
            ("s3://blobs?endpoint=ftp://host", "S3 blob store s3://blobs: the endpoint must start with http:// or https://"),
            ("s3://blobs?endpoint=http://", "S3 blob store s3://blobs: the endpoint is not a URL"),
            (
                "s3://blobs?endpoint=http://AKID:wJalrXUtnFEMI@host:9000",
                "S3 blob store s3://blobs: the endpoint must not carry credentials (they come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
            ),
            ("s3://blobs?endpoint=http://host/%3Fx=1", "S3 blob store s3://blobs: the endpoint must not have a query or fragment"),
            ("s3://blobs?endpoint=%FF", "S3 blob store s3://blobs: a parameter is not UTF-8 once percent-decoded"),
        ];
        for (url, expected) in bad {
            assert_eq!(Location::parse(url), Err(expected.to_string()), "{url}");
        }
    }

    #[test]
    fn keys_and_digests() {
        let credentials = S3Credentials { access_key_id: "AKID".into(), secret_access_key: "secret".into(), session_token: None };
        let s = S3BlobStore::with_credentials("s3://blobs/nimbus?endpoint=http://127.0.0.1:1", credentials.clone()).unwrap();
        let digest = sha256_hex(b"hello");
        assert_eq!(s.key(&digest), format!("nimbus/code/2c/{digest}.zip"));
        assert_eq!(s.to_string(), "s3://blobs/nimbus");
        let root = S3BlobStore::with_credentials("s3://blobs?endpoint=http://127.0.0.1:1", credentials.clone()).unwrap();
        assert_eq!(root.key(&digest), format!("code/2c/{digest}.zip"));
        assert!(!valid_digest(&digest.to_uppercase()));
        assert!(!valid_digest("../../etc/passwd"));
        assert!(!format!("{credentials:?} {s:?}").contains("secret\""));
    }

    /// A one-connection HTTP server that reads the request head and then writes `answer`'s
    /// pieces, pausing `gap` before each; the connection stays open afterwards.
    async fn serve(answer: Vec<&'static [u8]>, gap: Duration) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/object", listener.local_addr().unwrap());
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                let mut byte = [0u8];
                if socket.read(&mut byte).await.unwrap() == 0 {
                    return;
                }
                head.push(byte[0]);
            }
            for piece in answer {
                tokio::time::sleep(gap).await;
                socket.write_all(piece).await.unwrap();
            }
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        url
    }

    fn client(timeout: Duration, read_timeout: Duration) -> HttpClient {
        let options = ClientOptions::new().with_allow_http(true).with_timeout(timeout).with_read_timeout(read_timeout);
        HyperConnector.connect(&options).unwrap()
    }

    async fn fetch(client: &HttpClient, url: &str) -> Result<HttpResponse, HttpError> {
        client.execute(http::Request::get(url).body(HttpRequestBody::empty()).unwrap()).await
    }

    #[tokio::test]
    async fn a_body_streams_until_it_stalls() {
        let head: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\n";
        // Six pieces, 100 ms apart: longer in all than the read timeout, never idle as long.
        let url = serve(vec![head, b"a", b"b", b"c", b"d", b"e", b"f"], Duration::from_millis(100)).await;
        let answer = fetch(&client(Duration::from_secs(5), Duration::from_millis(400)), &url).await.unwrap();
        assert_eq!(answer.into_body().bytes().await.unwrap(), "abcdef");

        let url = serve(vec![head, b"abc"], Duration::ZERO).await;
        let answer = fetch(&client(Duration::from_secs(5), Duration::from_millis(200)), &url).await.unwrap();
        let e = answer.into_body().bytes().await.unwrap_err();
        assert_eq!(e.kind(), HttpErrorKind::Timeout);
        assert_eq!(cause(&e), "the answer's body stalled for 200ms");
    }

    #[tokio::test]
    async fn no_answer_times_out() {
        let url = serve(vec![], Duration::ZERO).await;
        let e = fetch(&client(Duration::from_millis(200), Duration::from_secs(5)), &url).await.unwrap_err();
        assert_eq!(e.kind(), HttpErrorKind::Timeout);
        assert_eq!(cause(&e), "no answer within 200ms");
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let e = fetch(&client(Duration::from_secs(5), Duration::from_secs(5)), &format!("http://127.0.0.1:{port}/")).await.unwrap_err();
        assert_eq!(e.kind(), HttpErrorKind::Connect);
    }

    #[test]
    fn causes() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] TimedOut);
        let xml = "Server returned non-2xx status code: 404 Not Found: <?xml version=\"1.0\" encoding=\"UTF-8\"?>\
                   <Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>";
        let check = |innermost: &str, expected: &str| assert_eq!(cause(&Outer(TimedOut(innermost.into()))), expected);
        check(xml, "HTTP 404 Not Found: NoSuchBucket: The specified bucket does not exist");
        check("Server returned non-2xx status code: 403 Forbidden: ", "HTTP 403 Forbidden");
        check("Connection refused (os error 111)", "Connection refused (os error 111)");
    }
}

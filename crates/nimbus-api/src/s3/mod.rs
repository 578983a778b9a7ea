//! Amazon S3 on the wire (rest-xml), served by `nimbus-objects`. A request is S3's when it
//! is signed for `s3` (its `Authorization` header's or presigned URL's credential scope) or
//! addressed to a virtual-hosted bucket (`<bucket>.s3.<anything>`, or `<bucket>.localhost`
//! when signed for S3); it is placed on an operation by S3's own table ([`place`]: method,
//! bucket, key, sub-resource, copy source), which keeps keys exactly as sent (`a//b/` is
//! not `a/b`), and decoded against S3's model by `nimbus-protocol`. Its head is
//! authenticated and authorized before the body is read: object bodies are streamed to disk
//! ([`body`]), checked against their signed hash, chunk signatures, `Content-MD5` and
//! checksums on the way, and read back from disk in pieces ([`object`]).

use std::sync::Arc;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Method, Response, StatusCode};
use nimbus_objects::{ObjectError, ObjectStore};
use nimbus_protocol::{encode, AwsError, Protocol, S3};

use crate::response::Body;
use crate::server::AppState;

pub mod body;
mod bucket;
mod multipart;
mod object;
mod post;
mod target;

/// A request placed on an S3 operation, before its body is read.
#[derive(Debug, Clone)]
pub struct S3Request {
    pub operation: &'static str,
    pub method: Method,
    /// The path with the bucket first, as sent (what Signature Version 2 signs).
    pub resource: String,
    /// Addressed by path (`/bucket/key`), on the web console's origin: answers go out
    /// sandboxed (see [`serve`]).
    pub path_style: bool,
    pub bucket: Option<String>,
    /// Exactly as sent, percent-decoded.
    pub key: Option<String>,
    /// The query's pairs, decoded.
    pub query: Vec<(String, String)>,
}

impl S3Request {
    pub fn name(&self) -> &'static str {
        self.operation
    }

    fn bucket(&self) -> &str {
        self.bucket.as_deref().unwrap_or_default()
    }

    fn key(&self) -> &str {
        self.key.as_deref().unwrap_or_default()
    }

    fn has(&self, name: &str) -> bool {
        self.query.iter().any(|(k, _)| k == name)
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Whether a request's head says it is S3's, and which operation it is.
pub fn recognize(parts: &Parts) -> Option<S3Request> {
    let host = parts.headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("");
    let signed_s3 = signed_for_s3(parts);
    let hosted = hosted_bucket(host, signed_s3);
    if !signed_s3 && hosted.is_none() {
        return None;
    }
    if hosted.is_none() && elsewhere(parts) {
        return None;
    }
    let path = parts.uri.path();
    let path_style = hosted.is_none();
    let resource = match &hosted {
        Some(bucket) => format!("/{bucket}{path}"),
        None => path.to_string(),
    };
    let (bucket, key) = match hosted {
        Some(bucket) => {
            let rest = path.strip_prefix('/').unwrap_or(path);
            (Some(bucket), (!rest.is_empty()).then(|| unescape(rest)))
        }
        None => {
            let rest = path.strip_prefix('/').unwrap_or(path);
            match rest.split_once('/') {
                Some((b, k)) => (Some(unescape(b)), (!k.is_empty()).then(|| unescape(k))),
                None if rest.is_empty() => (None, None),
                None => (Some(unescape(rest)), None),
            }
        }
    };
    let query = nimbus_protocol::rest::query_pairs(parts.uri.query());
    let operation = place(&parts.method, bucket.is_some(), key.is_some(), &query, &parts.headers);
    Some(S3Request { operation, method: parts.method.clone(), resource, path_style, bucket, key, query })
}

/// An unsigned path-style request to a bucket that exists (`GET /bucket/key` of a public
/// object: what a browser or curl sends), which is S3's although nothing in its head says so.
/// Only names that are valid buckets and not Nimbus's own paths are looked up.
pub async fn recognize_public(state: &Arc<AppState>, parts: &Parts) -> Option<S3Request> {
    let signed = parts.headers.contains_key(http::header::AUTHORIZATION)
        || parts.uri.query().is_some_and(|q| q.contains("X-Amz-Signature=") || q.contains("Signature="));
    if signed || parts.headers.contains_key("x-amz-target") {
        return None;
    }
    let path = parts.uri.path();
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    if !valid_bucket_name(first) || own_path(path) {
        return None;
    }
    // A function URL or HTTP API reached by its host name takes any path, and is answered
    // without looking for a bucket (a database read per account).
    let host = parts.headers.get(http::header::HOST).and_then(|h| h.to_str().ok());
    if crate::function_url::match_url(host, path, &state.url_domain).is_some()
        || crate::gateway::match_api(host, path, &state.api_domain).is_some()
    {
        return None;
    }
    let mut found = bucket_exists(&state.objects, first).await;
    if !found {
        for other in state.accounts.all() {
            if bucket_exists(&other.objects, first).await {
                found = true;
                break;
            }
        }
    }
    if !found {
        return None;
    }
    let rest = path.strip_prefix('/').unwrap_or(path);
    let (bucket, key) = match rest.split_once('/') {
        Some((b, k)) => (Some(unescape(b)), (!k.is_empty()).then(|| unescape(k))),
        None => (Some(unescape(rest)), None),
    };
    let query = nimbus_protocol::rest::query_pairs(parts.uri.query());
    let operation = place(&parts.method, bucket.is_some(), key.is_some(), &query, &parts.headers);
    Some(S3Request { operation, method: parts.method.clone(), resource: path.to_string(), path_style: true, bucket, key, query })
}

/// Whether `name` is a bucket of the store's account: one node's stores know their
/// bucket names (no database read, so unsigned requests cannot make one per account);
/// shared ones are asked.
async fn bucket_exists(objects: &nimbus_objects::ObjectStore, name: &str) -> bool {
    match objects.knows_bucket(name) {
        Some(answer) => answer,
        None => objects.bucket(name).await.is_ok(),
    }
}

/// Whether a path-style request signed for S3 is plainly another service's (one endpoint
/// serves them all; AWS would have sent it to that service's host, which names the scope it
/// wants): an `X-Amz-Target` call, a form post of the query protocols, or a path under one of
/// Lambda's or API Gateway's API versions or Nimbus's own prefixes. (So a bucket named like
/// `2015-03-31` is reached virtual-hosted only.)
fn elsewhere(parts: &Parts) -> bool {
    if parts.headers.contains_key("x-amz-target") {
        return true;
    }
    let form = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if form && parts.method == Method::POST {
        return true;
    }
    own_path(parts.uri.path())
}

/// Whether `path` is under one of Lambda's or API Gateway's API versions or Nimbus's own
/// prefixes.
fn own_path(path: &str) -> bool {
    static PREFIXES: std::sync::LazyLock<std::collections::HashSet<String>> = std::sync::LazyLock::new(|| {
        let mut set: std::collections::HashSet<String> =
            ["_nimbus", "_console", "_aws", "health"].into_iter().map(str::to_string).collect();
        for service in [&nimbus_protocol::LAMBDA, &nimbus_protocol::APIGATEWAYV2] {
            for op in service.model().operations.values() {
                if let Some(first) = op.http.request_uri.trim_start_matches('/').split(['/', '?']).next().filter(|f| !f.is_empty()) {
                    set.insert(first.to_string());
                }
            }
        }
        set
    });
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    PREFIXES.contains(first)
}

fn unescape(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Whether the request's signature is scoped to S3 (header or presigned query), read from
/// the credential alone (the signature itself is checked later, with everything else).
fn signed_for_s3(parts: &Parts) -> bool {
    // Signature Version 2 is S3's alone.
    if nimbus_identity::sigv2::read(&parts.headers, parts.uri.query()).is_some() {
        return true;
    }
    if let Some(auth) = parts.headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let service = auth.split_once("Credential=").and_then(|(_, c)| c.split([',', ' ']).next()).and_then(|c| c.split('/').nth(3));
        return service == Some("s3");
    }
    let Some(query) = parts.uri.query() else { return false };
    query.split('&').any(|kv| kv.strip_prefix("X-Amz-Credential=").map(unescape).is_some_and(|c| c.split('/').nth(3) == Some("s3")))
}

/// The bucket a virtual-hosted request names in its `Host`: `<bucket>.s3.<anything>` (AWS's
/// endpoints, `s3.localhost.localstack.cloud`, ...), or, for a request signed for S3,
/// `<bucket>.localhost` (what the SDKs make of an endpoint URL of `http://localhost:port`).
fn hosted_bucket(host: &str, signed_s3: bool) -> Option<String> {
    let host = host.rsplit_once(':').filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit())).map_or(host, |(h, _)| h);
    if host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') {
        return None;
    }
    let host = host.to_ascii_lowercase();
    if let Some(i) = host.find(".s3.").or_else(|| host.find(".s3-")) {
        return (i > 0).then(|| host[..i].to_string());
    }
    match host.strip_suffix(".localhost") {
        Some(bucket) if signed_s3 && !bucket.is_empty() && !bucket.starts_with("s3.") && bucket != "s3" => Some(bucket.to_string()),
        _ => None,
    }
}

/// S3's operation for a request: its method, whether it names a bucket and a key, its
/// sub-resource (`?versioning`, `?uploads`, ...) and the copy source. (The model's bindings
/// alone cannot tell PutObject from UploadPart or CopyObject.)
fn place(method: &Method, bucket: bool, key: bool, query: &[(String, String)], headers: &http::HeaderMap) -> &'static str {
    let has = |name: &str| query.iter().any(|(k, _)| k == name);
    let copy = headers.contains_key("x-amz-copy-source");
    if !bucket {
        return match *method {
            Method::GET => "ListBuckets",
            _ => "Unsupported",
        };
    }
    if !key {
        // Bucket sub-resources, each a setting read, written or removed.
        const SETTINGS: &[(&str, &str, &str, &str)] = &[
            ("versioning", "GetBucketVersioning", "PutBucketVersioning", ""),
            ("notification", "GetBucketNotificationConfiguration", "PutBucketNotificationConfiguration", ""),
            ("tagging", "GetBucketTagging", "PutBucketTagging", "DeleteBucketTagging"),
            ("policy", "GetBucketPolicy", "PutBucketPolicy", "DeleteBucketPolicy"),
            ("cors", "", "", ""),
            ("location", "GetBucketLocation", "", ""),
            ("acl", "", "", ""),
        ];
        // A sub-resource Nimbus does not serve is never another call: without this, a PUT or
        // DELETE of one (PutBucketEncryption, DeleteBucketLifecycle) would create or delete
        // the bucket itself.
        if query.iter().any(|(k, _)| UNSUPPORTED_BUCKET_SUBRESOURCES.contains(&k.as_str())) {
            return "Unsupported";
        }
        for (name, get, put, delete) in SETTINGS {
            if has(name) {
                let op = match *method {
                    Method::GET => get,
                    Method::PUT => put,
                    Method::DELETE => delete,
                    _ => "",
                };
                return if op.is_empty() { "Unsupported" } else { op };
            }
        }
        return match *method {
            Method::GET if has("versions") => "ListObjectVersions",
            Method::GET if has("uploads") => "ListMultipartUploads",
            Method::GET if query.iter().any(|(k, v)| k == "list-type" && v == "2") => "ListObjectsV2",
            Method::GET => "ListObjects",
            Method::HEAD => "HeadBucket",
            Method::PUT => "CreateBucket",
            Method::DELETE => "DeleteBucket",
            Method::POST if has("delete") => "DeleteObjects",
            // A browser form's upload (its policy and signature are in the form).
            Method::POST
                if headers
                    .get(http::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|t| t.to_ascii_lowercase().starts_with("multipart/form-data")) =>
            {
                "PostObject"
            }
            _ => "Unsupported",
        };
    }
    match *method {
        Method::GET if has("tagging") => "GetObjectTagging",
        Method::GET if has("uploadId") => "ListParts",
        Method::GET if has("acl") || has("attributes") || has("torrent") || has("retention") || has("legal-hold") => "Unsupported",
        Method::GET => "GetObject",
        Method::HEAD => "HeadObject",
        Method::PUT if has("tagging") => "PutObjectTagging",
        Method::PUT if has("acl") || has("retention") || has("legal-hold") => "Unsupported",
        Method::PUT if has("partNumber") && has("uploadId") && copy => "UploadPartCopy",
        Method::PUT if has("partNumber") && has("uploadId") => "UploadPart",
        Method::PUT if copy => "CopyObject",
        Method::PUT => "PutObject",
        Method::DELETE if has("tagging") => "DeleteObjectTagging",
        Method::DELETE if has("uploadId") => "AbortMultipartUpload",
        Method::DELETE => "DeleteObject",
        Method::POST if has("uploads") => "CreateMultipartUpload",
        Method::POST if has("uploadId") => "CompleteMultipartUpload",
        _ => "Unsupported",
    }
}

/// Bucket sub-resources S3 has and Nimbus does not serve (answered `NotImplemented`
/// rather than listed as objects).
const UNSUPPORTED_BUCKET_SUBRESOURCES: &[&str] = &[
    "lifecycle",
    "encryption",
    "website",
    "logging",
    "replication",
    "accelerate",
    "requestPayment",
    "object-lock",
    "ownershipControls",
    "publicAccessBlock",
    "analytics",
    "inventory",
    "metrics",
    "intelligent-tiering",
    "policyStatus",
    "session",
    "metadataTable",
    "metadataConfiguration",
    "abac",
];

/// S3's error: code, status, message, and the members S3 adds to `<Error>`.
#[derive(Debug, Clone)]
pub struct S3Error {
    code: &'static str,
    status: u16,
    message: String,
    fields: Vec<(&'static str, String)>,
    /// Headers the answer carries (a delete marker's).
    headers: Vec<(&'static str, String)>,
}

impl std::fmt::Display for S3Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl AwsError for S3Error {
    fn code(&self) -> &str {
        self.code
    }
    fn status(&self) -> u16 {
        self.status
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        self.fields.clone()
    }
}

impl S3Error {
    pub fn new(code: &'static str, status: u16, message: impl Into<String>) -> S3Error {
        S3Error { code, status, message: message.into(), fields: Vec::new(), headers: Vec::new() }
    }

    pub fn with(mut self, field: &'static str, value: impl Into<String>) -> S3Error {
        self.fields.push((field, value.into()));
        self
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> S3Error {
        self.headers.push((name, value.into()));
        self
    }

    pub fn invalid_argument(message: impl Into<String>, name: &str, value: &str) -> S3Error {
        S3Error::new("InvalidArgument", 400, message).with("ArgumentName", name).with("ArgumentValue", value)
    }

    pub fn invalid_request(message: impl Into<String>) -> S3Error {
        S3Error::new("InvalidRequest", 400, message)
    }

    pub fn malformed_xml() -> S3Error {
        S3Error::new("MalformedXML", 400, "The XML you provided was not well-formed or did not validate against our published schema")
    }

    pub fn internal(e: impl std::fmt::Display) -> S3Error {
        tracing::error!("S3: {e}");
        S3Error::new("InternalError", 500, "We encountered an internal error. Please try again.")
    }

    fn not_implemented() -> S3Error {
        S3Error::new("NotImplemented", 501, "A header you provided implies functionality that is not implemented")
    }

    /// A store's refusal, with the bucket and key it concerned.
    pub fn from_store(e: ObjectError, req: &S3Request) -> S3Error {
        let error = S3Error::new(e.code(), e.status(), e.to_string());
        match e {
            ObjectError::NoSuchBucket => error.with("BucketName", req.bucket()),
            ObjectError::BucketAlreadyOwnedByYou | ObjectError::BucketNotEmpty => error.with("BucketName", req.bucket()),
            ObjectError::NoSuchKey { delete_marker } => {
                let error = error.with("Key", req.key());
                match delete_marker {
                    Some(version) => {
                        error.header("x-amz-delete-marker", "true").header("x-amz-version-id", version.unwrap_or_else(|| "null".into()))
                    }
                    None => error,
                }
            }
            ObjectError::NoSuchVersion => error.with("Key", req.key()).with("VersionId", req.param("versionId").unwrap_or_default()),
            ObjectError::MethodNotAllowed { version_id } => error
                .with("Method", req.method.as_str())
                .with("ResourceType", "DeleteMarker")
                .header("x-amz-delete-marker", "true")
                .header("allow", "DELETE")
                .header("x-amz-version-id", version_id.unwrap_or_else(|| "null".into())),
            ObjectError::NoSuchUpload | ObjectError::InvalidPart | ObjectError::InvalidPartOrder => {
                error.with("UploadId", req.param("uploadId").unwrap_or_default())
            }
            ObjectError::EntityTooSmall => error
                .with("UploadId", req.param("uploadId").unwrap_or_default())
                .with("MinSizeAllowed", nimbus_objects::limits::MIN_PART_BYTES.to_string()),
            ObjectError::KeyTooLongError => error.with("Size", req.key().len().to_string()).with("MaxSizeAllowed", "1024"),
            ObjectError::Internal(_) | ObjectError::StorageFull => S3Error::internal(e),
            _ => error,
        }
    }
}

/// S3's refusal of a `versionId` that cannot be one of its version ids (`null`, or the 32
/// URL-safe characters of the ids this store makes).
pub fn check_version_id(req: &S3Request) -> Result<(), S3Error> {
    match req.param("versionId") {
        Some(v) if v != "null" && !(v.len() == 32 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')) => {
            Err(S3Error::invalid_argument("Invalid version id specified", "versionId", v))
        }
        _ => Ok(()),
    }
}

/// S3's canonical user id of an account (the 64 hex digits `Owner` elements carry).
pub fn canonical_id(account: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(format!("nimbus-canonical-user:{account}").as_bytes()))
}

/// A fresh request id, as S3 writes them (16 uppercase hex digits).
pub fn request_id() -> String {
    let id = uuid::Uuid::new_v4();
    hex::encode_upper(&id.as_bytes()[..8])
}

/// S3's answer to `error` for a request made with `method` (HEAD answers have no body).
pub fn error_response(method: &Method, error: &S3Error) -> Response<Body> {
    let id = request_id();
    let mut r = encode::error(&S3, Protocol::RestXml, error, &id).map(Body::from);
    if *method == Method::HEAD {
        *r.body_mut() = Body::Full(None);
        r.headers_mut().remove(http::header::CONTENT_TYPE);
    }
    for (name, value) in &error.headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            r.headers_mut().insert(*name, v);
        }
    }
    stamp(&mut r, &id);
    r
}

/// S3's request-id headers on an answer.
pub fn stamp(r: &mut Response<Body>, id: &str) {
    if let Ok(v) = HeaderValue::from_str(id) {
        r.headers_mut().insert("x-amz-request-id", v);
    }
    r.headers_mut().remove("x-amzn-requestid");
    if let Ok(v) = HeaderValue::from_str(&encode::host_id(id)) {
        r.headers_mut().insert("x-amz-id-2", v);
    }
    r.headers_mut().insert("server", HeaderValue::from_static("AmazonS3"));
}

/// A typed output as S3's XML (or headers) answer.
pub fn answer<T: serde::Serialize>(operation: &str, output: &T) -> Response<Body> {
    let id = request_id();
    let mut r = encode::rest_xml(&S3, operation, output, None, &id).map(Body::from);
    stamp(&mut r, &id);
    r
}

/// An empty answer with `status`.
pub fn empty(status: StatusCode) -> Response<Body> {
    let id = request_id();
    let mut r = crate::response::empty(status);
    stamp(&mut r, &id);
    r
}

/// The account that owns `bucket`: `home` when it is there (or nowhere), else the account
/// of this server that has it (one namespace for all of them, as on AWS).
pub async fn owner_of(home: &Arc<AppState>, bucket: &str) -> Arc<AppState> {
    if !home.accounts.several() || home.objects.bucket(bucket).await.is_ok() {
        return home.clone();
    }
    for other in home.accounts.all() {
        if other.account() != home.account() && other.objects.bucket(bucket).await.is_ok() {
            return other;
        }
    }
    home.clone()
}

/// The account's object store.
pub fn store(state: &AppState) -> Result<Arc<ObjectStore>, S3Error> {
    Ok(state.objects.clone())
}

/// Serves an authenticated, authorized S3 request; `body` is read here, as each operation
/// needs it (streamed to disk for object bodies).
pub async fn serve(
    state: &Arc<AppState>,
    req: S3Request,
    parts: &Parts,
    body: body::RequestBody,
    conn: &crate::authz::Connection<'_>,
) -> Response<Body> {
    let method = parts.method.clone();
    let req_path_style = req.path_style;
    let leftover = body.leftover();
    let result = match check_version_id(&req) {
        Err(e) => Err(e),
        Ok(()) => match req.operation {
            "ListBuckets"
            | "CreateBucket"
            | "HeadBucket"
            | "DeleteBucket"
            | "GetBucketLocation"
            | "GetBucketVersioning"
            | "PutBucketVersioning"
            | "GetBucketTagging"
            | "PutBucketTagging"
            | "DeleteBucketTagging"
            | "GetBucketPolicy"
            | "PutBucketPolicy"
            | "DeleteBucketPolicy"
            | "GetBucketCors"
            | "PutBucketCors"
            | "DeleteBucketCors"
            | "GetBucketAcl"
            | "PutBucketAcl"
            | "GetBucketNotificationConfiguration"
            | "PutBucketNotificationConfiguration" => bucket::serve(state, &req, parts, body).await,
            "CreateMultipartUpload"
            | "UploadPart"
            | "UploadPartCopy"
            | "CompleteMultipartUpload"
            | "AbortMultipartUpload"
            | "ListParts"
            | "ListMultipartUploads" => multipart::serve(state, &req, parts, body).await,
            "PostObject" => post::serve(state, &req, parts, body, conn).await,
            "Unsupported" => Err(S3Error::not_implemented()),
            _ => object::serve(state, &req, parts, body).await,
        },
    };
    let r = match result {
        Ok(r) => {
            if method != Method::GET && method != Method::HEAD {
                // A change may owe notifications: their deliverer looks now.
                state.object_events.notify_one();
            }
            r
        }
        Err(e) => {
            leftover.drain().await;
            error_response(&method, &e)
        }
    };
    // A path-style answer shares the web console's origin (real S3 is another origin): an
    // object served there (an HTML page someone uploaded) runs sandboxed, as a function's
    // path-style answers do, and cannot reach the console's storage.
    if req_path_style {
        crate::proxy::through(crate::proxy::Door::Path, r)
    } else {
        r
    }
}

/// Bucket names as AWS checks them (general purpose buckets).
pub fn valid_bucket_name(name: &str) -> bool {
    let b = name.as_bytes();
    (3..=63).contains(&b.len())
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'.' || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && !name.contains("..")
        && !name.contains(".-")
        && !name.contains("-.")
        && name.parse::<std::net::Ipv4Addr>().is_err()
        && !name.starts_with("xn--")
        && !name.starts_with("sthree-")
        && !name.starts_with("amzn-s3-demo-")
        && !name.ends_with("-s3alias")
        && !name.ends_with("--ol-s3")
        && !name.ends_with(".mrap")
        && !name.ends_with("--x-s3")
}

/// Decodes the operation's input (bindings from the head, the XML body if any).
pub fn decode<T: serde::de::DeserializeOwned>(req: &S3Request, parts: &Parts, body: &Bytes) -> Result<T, S3Error> {
    let mut labels = Vec::new();
    if let Some(b) = &req.bucket {
        labels.push(("Bucket".to_string(), b.clone()));
    }
    if let Some(k) = &req.key {
        labels.push(("Key".to_string(), k.clone()));
    }
    let matched = nimbus_protocol::rest::Matched::new(req.operation, labels);
    let http = nimbus_protocol::rest::HttpRequest { headers: &parts.headers, query: &req.query, body };
    let input = nimbus_protocol::rest::rest_xml(S3.model(), &matched, &http).map_err(decode_error)?;
    input.parse::<T>().map_err(decode_error)
}

fn decode_error(e: nimbus_protocol::DecodeError) -> S3Error {
    use nimbus_protocol::DecodeError;
    match e {
        DecodeError::Malformed(_) => S3Error::malformed_xml(),
        DecodeError::Binding { member, value, .. } => S3Error::invalid_argument(format!("Invalid value for {member}"), &member, &value),
        other => S3Error::invalid_request(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(method: Method, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).expect("request").into_parts().0
    }

    const SIGNED: &str = "AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00";

    #[test]
    fn requests_are_placed_on_operations() {
        type Placed<'a> = Option<(&'a str, Option<&'a str>, Option<&'a str>)>;
        type Headers<'a> = &'a [(&'a str, &'a str)];
        let cases: &[(Method, &str, Headers, Placed)] = &[
            (Method::GET, "/", &[("authorization", SIGNED)], Some(("ListBuckets", None, None))),
            (Method::PUT, "/b1", &[("authorization", SIGNED)], Some(("CreateBucket", Some("b1"), None))),
            (Method::GET, "/b1?list-type=2&prefix=a", &[("authorization", SIGNED)], Some(("ListObjectsV2", Some("b1"), None))),
            (Method::GET, "/b1?versioning", &[("authorization", SIGNED)], Some(("GetBucketVersioning", Some("b1"), None))),
            (Method::PUT, "/b1/a//b/", &[("authorization", SIGNED)], Some(("PutObject", Some("b1"), Some("a//b/")))),
            (
                Method::PUT,
                "/b1/k%20%2B?partNumber=1&uploadId=u",
                &[("authorization", SIGNED)],
                Some(("UploadPart", Some("b1"), Some("k +"))),
            ),
            (
                Method::PUT,
                "/b1/k",
                &[("authorization", SIGNED), ("x-amz-copy-source", "/b0/x")],
                Some(("CopyObject", Some("b1"), Some("k"))),
            ),
            (Method::POST, "/b1/k?uploads", &[("authorization", SIGNED)], Some(("CreateMultipartUpload", Some("b1"), Some("k")))),
            (Method::POST, "/b1?delete", &[("authorization", SIGNED)], Some(("DeleteObjects", Some("b1"), None))),
            (Method::GET, "/b1?lifecycle", &[("authorization", SIGNED)], Some(("Unsupported", Some("b1"), None))),
            (Method::DELETE, "/b1?lifecycle", &[("authorization", SIGNED)], Some(("Unsupported", Some("b1"), None))),
            (Method::PUT, "/b1?encryption", &[("authorization", SIGNED)], Some(("Unsupported", Some("b1"), None))),
            (Method::PUT, "/b1?publicAccessBlock", &[("authorization", SIGNED)], Some(("Unsupported", Some("b1"), None))),
            (Method::PUT, "/b1?ownershipControls", &[("authorization", SIGNED)], Some(("Unsupported", Some("b1"), None))),
            (Method::DELETE, "/b1?cors", &[("authorization", SIGNED)], Some(("Unsupported", Some("b1"), None))),
            (Method::PUT, "/b1?acl", &[("authorization", SIGNED)], Some(("Unsupported", Some("b1"), None))),
            // Virtual-hosted.
            (Method::GET, "/dir/k", &[("host", "b2.s3.us-east-1.amazonaws.com")], Some(("GetObject", Some("b2"), Some("dir/k")))),
            (Method::GET, "/", &[("host", "b2.localhost:9001"), ("authorization", SIGNED)], Some(("ListObjects", Some("b2"), None))),
            (Method::GET, "/?list-type=2", &[("host", "127.0.0.1:9001"), ("authorization", SIGNED)], Some(("ListBuckets", None, None))),
            // Presigned.
            (
                Method::GET,
                "/b1/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20250101%2Fus-east-1%2Fs3%2Faws4_request",
                &[],
                Some(("GetObject", Some("b1"), Some("k"))),
            ),
            // Not S3's: another service's signature, or nothing at all; nor another service's
            // call signed for S3 by mistake (that service names the scope it wants).
            (Method::GET, "/2015-03-31/functions", &[("authorization", SIGNED)], None),
            (Method::GET, "/v2/apis", &[("authorization", SIGNED)], None),
            (Method::POST, "/", &[("authorization", SIGNED), ("x-amz-target", "AmazonSQS.ListQueues")], None),
            (Method::POST, "/", &[("authorization", SIGNED), ("content-type", "application/x-www-form-urlencoded")], None),
            (
                Method::GET,
                "/2015-03-31/functions",
                &[(
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=00",
                )],
                None,
            ),
            (Method::GET, "/b1/k", &[], None),
            (Method::GET, "/", &[("host", "fn.localhost")], None),
        ];
        for (method, uri, headers, want) in cases {
            let got = recognize(&head(method.clone(), uri, headers)).map(|r| (r.operation, r.bucket, r.key));
            let want = want.map(|(op, b, k)| (op, b.map(str::to_string), k.map(str::to_string)));
            assert_eq!(got, want, "{method} {uri} {headers:?}");
        }
    }

    #[test]
    fn bucket_names_follow_aws_rules() {
        let cases = [
            ("abc", true),
            ("my-bucket.data", true),
            ("ab", false),
            (&"a".repeat(64)[..], false),
            ("Upper", false),
            ("-dash", false),
            ("dash-", false),
            ("a..b", false),
            ("192.168.5.4", false),
            ("xn--abc", false),
            ("under_score", false),
            ("bucket-s3alias", false),
        ];
        for (name, ok) in cases {
            assert_eq!(valid_bucket_name(name), ok, "{name}");
        }
    }
}

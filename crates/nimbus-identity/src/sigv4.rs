//! AWS Signature Version 4, server side: read a request's signature (the `Authorization`
//! header or a presigned URL's `X-Amz-*` query), rebuild the canonical request the client
//! signed from the bytes as received, and check the signature in constant time. The
//! algorithm is AWS's published one; the tests hold AWS's test-suite vectors and requests
//! signed by botocore.

use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use http::HeaderMap;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

use crate::chunked::{ChunkMode, ChunkSigning, ChunkedSpec};

type HmacSha256 = Hmac<Sha256>;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The payload hash of a request whose body is not signed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// `x-amz-content-sha256` of an `aws-chunked` body whose chunks are signed.
pub const STREAMING_PAYLOAD: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
/// The same with a signed trailer section after the chunks.
pub const STREAMING_PAYLOAD_TRAILER: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
/// An `aws-chunked` body whose chunks are not signed, with a trailer section.
pub const STREAMING_UNSIGNED_PAYLOAD_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
/// [`verify_head`]'s refusal ([`AuthError::Invalid`]) of an `x-amz-content-sha256` that is
/// none of the values it knows nor a SHA-256 (S3 answers it `400 InvalidArgument`).
pub const INVALID_CONTENT_SHA256: &str = "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value.";
/// [`verify_head`]'s refusal ([`AuthError::Invalid`]) of a request signed in its header
/// without `x-amz-content-sha256`: its payload hash is the body's, unknown from the head
/// (S3 answers it `400 InvalidRequest`).
pub const MISSING_CONTENT_SHA256: &str = "Missing required header for this request: x-amz-content-sha256";
/// How far a signed request's date may be from the server's clock (AWS: 15 minutes).
pub const MAX_SKEW_SECS: i64 = 15 * 60;
/// The longest a presigned URL may live (7 days).
pub const MAX_EXPIRES_SECS: u64 = 7 * 24 * 3600;

/// A request as the verifier reads it: everything exactly as it arrived.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The path as sent, still percent-encoded.
    pub path: &'a str,
    /// The query string as sent.
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// How the client built the canonical URI: AWS services other than S3 normalize the path
/// and encode it once more; S3 signs it as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathStyle {
    Normalized,
    S3,
}

/// The scope a signature was made for: `AKID/20150830/us-east-1/service/aws4_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub access_key: String,
    /// `YYYYMMDD`.
    pub date: String,
    pub region: String,
    pub service: String,
}

/// Where the signature travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Header,
    /// A presigned URL valid for this many seconds from its date.
    Query {
        expires: u64,
    },
}

/// A request's signature, read but not yet checked.
#[derive(Debug, Clone)]
pub struct Signature {
    pub scope: Scope,
    pub signed_headers: Vec<String>,
    /// Lowercase hex.
    pub signature: String,
    /// `X-Amz-Date` (or `Date`), as sent.
    pub amz_date: String,
    pub at: DateTime<Utc>,
    pub security_token: Option<String>,
    pub form: Form,
}

/// Why a request is not authenticated. The caller turns each into its service's AWS error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No signature at all.
    #[error("missing authentication token")]
    Missing,
    /// A signature that does not have AWS's form; the text is AWS's.
    #[error("{0}")]
    Incomplete(String),
    /// A well-formed signature that cannot be right (Host not signed, scope date off, both
    /// header and query); the text is AWS's.
    #[error("{0}")]
    Invalid(String),
    /// The request's date is too far from now (or the presigned URL has expired).
    #[error("{0}")]
    Expired(String),
    /// The access key is not known (the caller decides; the verifier never says it).
    #[error("unknown access key")]
    UnknownKey,
    /// The signature does not match: what we signed, for the caller's diagnostics.
    #[error("signature mismatch")]
    Mismatch { canonical_request: String, string_to_sign: String },
    /// `x-amz-content-sha256` does not hash the body that came.
    #[error("the provided x-amz-content-sha256 header does not match what was computed")]
    ContentSha256Mismatch,
}

/// Reads the signature of `req`, if it carries one: the `Authorization` header, or a
/// presigned URL's query parameters.
pub fn read(req: &Request<'_>) -> Result<Signature, AuthError> {
    let params = query_params(req.query);
    let presigned = params.iter().any(|(k, _)| k == "X-Amz-Algorithm");
    let sig = match req.headers.get(http::header::AUTHORIZATION) {
        Some(_) if presigned => {
            return Err(AuthError::Invalid(
                "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.".into(),
            ))
        }
        Some(auth) => {
            let auth = auth.to_str().map_err(|_| AuthError::Incomplete("Authorization header is not valid text".into()))?;
            read_header(auth, req.headers)?
        }
        None if presigned => read_query(&params)?,
        None => return Err(AuthError::Missing),
    };
    if !sig.signed_headers.iter().any(|h| h == "host") {
        return Err(AuthError::Invalid("'Host' must be a 'SignedHeader' in the AWS Authorization.".into()));
    }
    let basic = basic_date(sig.at);
    let day = match &basic {
        BasicDate::Fixed(_) => std::borrow::Cow::Borrowed(&basic[..8]),
        BasicDate::Other(_) => std::borrow::Cow::Owned(sig.at.format("%Y%m%d").to_string()),
    };
    if sig.scope.date != day {
        return Err(AuthError::Invalid(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{day}', from '{basic}'.",
            sig.scope.date,
        )));
    }
    Ok(sig)
}

fn read_header(auth: &str, headers: &HeaderMap) -> Result<Signature, AuthError> {
    // Not an AWS4 header at all: as if unsigned.
    let Some(after) = auth.trim_start().strip_prefix("AWS4-") else { return Err(AuthError::Missing) };
    let algorithm = after.split_whitespace().next().unwrap_or("");
    if !algorithm.is_empty() && Some(algorithm) != ALGORITHM.strip_prefix("AWS4-") && !algorithm.contains('=') {
        return Err(AuthError::Incomplete(format!("Unsupported AWS 'algorithm': 'AWS4-{algorithm}' (only {ALGORITHM} for now). ")));
    }
    let rest = auth.trim_start().strip_prefix(ALGORITHM).unwrap_or(after);
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, v)) = part.split_once('=') else {
            return Err(AuthError::Incomplete(format!(
                "'{part}' not a valid key=value pair (missing equal-sign) in Authorization header: '{auth}'."
            )));
        };
        match k.trim() {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed_headers = Some(v),
            "Signature" => signature = Some(v),
            _ => {}
        }
    }
    let date_header = headers.get("x-amz-date").or_else(|| headers.get(http::header::DATE)).and_then(|v| v.to_str().ok());
    let mut problems: Vec<String> =
        [("Credential", credential.is_none()), ("Signature", signature.is_none()), ("SignedHeaders", signed_headers.is_none())]
            .iter()
            .filter(|(_, m)| *m)
            .map(|(name, _)| format!("Authorization header requires '{name}' parameter."))
            .collect();
    if date_header.is_none() {
        problems.push("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.".into());
    }
    if !problems.is_empty() {
        return Err(AuthError::Incomplete(format!("{} Authorization={auth}", problems.join(" "))));
    }
    let amz_date = date_header.unwrap_or_default().to_string();
    let security_token = headers.get("x-amz-security-token").and_then(|v| v.to_str().ok()).map(str::to_string);
    Ok(Signature {
        scope: scope(credential.unwrap_or_default())?,
        signed_headers: signed_header_list(signed_headers.unwrap_or_default()),
        signature: signature.unwrap_or_default().to_ascii_lowercase(),
        at: parse_date(&amz_date)?,
        amz_date,
        security_token,
        form: Form::Header,
    })
}

fn read_query(params: &[(String, String)]) -> Result<Signature, AuthError> {
    let get = |k: &str| params.iter().find(|(pk, _)| pk == k).map(|(_, v)| v.as_str());
    if let Some(other) = get("X-Amz-Algorithm").filter(|a| *a != ALGORITHM) {
        return Err(AuthError::Incomplete(format!("Unsupported AWS 'algorithm': '{other}' (only {ALGORITHM} for now). ")));
    }
    let required = ["X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders", "X-Amz-Date", "X-Amz-Expires"];
    let missing: Vec<String> =
        required.iter().filter(|k| get(k).is_none()).map(|k| format!("AWS query-string parameters must include '{k}'.")).collect();
    if !missing.is_empty() {
        return Err(AuthError::Incomplete(format!("{} Re-examine the query-string parameters.", missing.join(" "))));
    }
    let expires: u64 = get("X-Amz-Expires")
        .and_then(|e| e.parse().ok())
        .ok_or_else(|| AuthError::Incomplete("X-Amz-Expires should be a number".into()))?;
    if expires > MAX_EXPIRES_SECS {
        return Err(AuthError::Incomplete("X-Amz-Expires must be less than a week (in seconds) that is 604800".into()));
    }
    let amz_date = get("X-Amz-Date").unwrap_or_default().to_string();
    Ok(Signature {
        scope: scope(get("X-Amz-Credential").unwrap_or_default())?,
        signed_headers: signed_header_list(get("X-Amz-SignedHeaders").unwrap_or_default()),
        signature: get("X-Amz-Signature").unwrap_or_default().to_ascii_lowercase(),
        at: parse_date(&amz_date)?,
        amz_date,
        security_token: get("X-Amz-Security-Token").map(str::to_string),
        form: Form::Query { expires },
    })
}

fn scope(credential: &str) -> Result<Scope, AuthError> {
    let parts: Vec<&str> = credential.split('/').collect();
    match parts.as_slice() {
        [key, date, region, service, "aws4_request"] if !key.is_empty() && date.len() == 8 => {
            Ok(Scope { access_key: key.to_string(), date: date.to_string(), region: region.to_string(), service: service.to_string() })
        }
        [_, _, _, _, term] if parts.len() == 5 && *term != "aws4_request" => {
            Err(AuthError::Invalid(format!("Credential should be scoped with a valid terminator: 'aws4_request', not '{term}'.")))
        }
        _ => Err(AuthError::Incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
        ))),
    }
}

fn signed_header_list(s: &str) -> Vec<String> {
    s.split(';').filter(|h| !h.is_empty()).map(|h| h.trim().to_ascii_lowercase()).collect()
}

/// `20150830T123600Z` (or an HTTP date, which some clients put in `Date`).
fn parse_date(s: &str) -> Result<DateTime<Utc>, AuthError> {
    if let Some(at) = parse_basic(s) {
        return Ok(at);
    }
    NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%SZ")
        .map(|t| t.and_utc())
        .or_else(|_| DateTime::parse_from_rfc2822(s).map(|t| t.with_timezone(&Utc)))
        .map_err(|_| {
            AuthError::Incomplete(format!("Date must be in ISO-8601 'basic format'. Got '{s}'. See http://en.wikipedia.org/wiki/ISO_8601"))
        })
}

/// Checks `sig` over `req` with `secret` at `now`: the date window first (AWS answers an
/// expired request so whatever its signature), then the body hash, then the signature.
pub fn verify(sig: &Signature, secret: &str, req: &Request<'_>, now: DateTime<Utc>, style: PathStyle) -> Result<(), AuthError> {
    verify_within(sig, secret, req, now, style, MAX_SKEW_SECS)
}

/// [`verify`] with another clock window (Lambda allows 5 minutes where most services allow 15).
pub fn verify_within(
    sig: &Signature,
    secret: &str,
    req: &Request<'_>,
    now: DateTime<Utc>,
    style: PathStyle,
    max_skew_secs: i64,
) -> Result<(), AuthError> {
    check_window(sig, now, max_skew_secs)?;
    let payload_hash = payload_hash(sig, req)?;
    check_signature(sig, secret, req, style, &payload_hash)
}

/// What the body of a request authenticated from its head alone must satisfy, as its
/// `x-amz-content-sha256` declared it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyCheck {
    /// Nothing: `UNSIGNED-PAYLOAD`, or a presigned S3 URL without the header.
    None,
    /// The body must hash to this (S3 answers a difference `400 XAmzContentSHA256Mismatch`).
    Sha256([u8; 32]),
    /// An `aws-chunked` body, to decode with [`ChunkedDecoder`](crate::chunked::ChunkedDecoder).
    Chunked(ChunkedSpec),
}

/// [`verify_within`] for a request whose body has not come yet (`req.body` is not read):
/// the same checks in the same order, the body's own check returned rather than done. A
/// header-signed request must then carry `x-amz-content-sha256` (else
/// [`MISSING_CONTENT_SHA256`]); a value that is none of `UNSIGNED-PAYLOAD`, the three
/// `STREAMING-…` modes of [`ChunkMode`] and a hex SHA-256 is refused with
/// [`INVALID_CONTENT_SHA256`] (the ECDSA modes, SigV4a, are not supported).
pub fn verify_head(
    sig: &Signature,
    secret: &str,
    req: &Request<'_>,
    now: DateTime<Utc>,
    style: PathStyle,
    max_skew_secs: i64,
) -> Result<BodyCheck, AuthError> {
    check_window(sig, now, max_skew_secs)?;
    let declared = req.headers.get("x-amz-content-sha256").map(|v| v.to_str().unwrap_or_default());
    let check = match declared {
        None if matches!(sig.form, Form::Query { .. }) && sig.scope.service == "s3" => BodyCheck::None,
        None => return Err(AuthError::Invalid(MISSING_CONTENT_SHA256.into())),
        Some(UNSIGNED_PAYLOAD) => BodyCheck::None,
        Some(h) => match ChunkMode::from_content_sha256(h) {
            Some(mode) => BodyCheck::Chunked(chunked_spec(sig, secret, req, mode)?),
            None => {
                let mut hash = [0u8; 32];
                hex::decode_to_slice(h, &mut hash).map_err(|_| AuthError::Invalid(INVALID_CONTENT_SHA256.into()))?;
                BodyCheck::Sha256(hash)
            }
        },
    };
    let payload_hash = declared.unwrap_or(UNSIGNED_PAYLOAD);
    check_signature(sig, secret, req, style, payload_hash)?;
    Ok(check)
}

/// What a body must be for a server with authentication off: a hex `x-amz-content-sha256`
/// is still its hash, and an aws-chunked body is still decoded (its signatures unchecked:
/// there is no key to check them with).
pub fn body_check_unauthenticated(headers: &HeaderMap) -> Result<BodyCheck, AuthError> {
    let declared = headers.get("x-amz-content-sha256").and_then(|v| v.to_str().ok()).map(str::trim);
    Ok(match declared {
        None | Some(UNSIGNED_PAYLOAD) => BodyCheck::None,
        Some(h) => match ChunkMode::from_content_sha256(h) {
            Some(mode) => {
                let req = Request { method: "", path: "", query: None, headers, body: &[] };
                let sig = Signature {
                    scope: Scope { access_key: String::new(), date: String::new(), region: String::new(), service: String::new() },
                    signed_headers: Vec::new(),
                    signature: String::new(),
                    amz_date: String::new(),
                    at: DateTime::<Utc>::default(),
                    security_token: None,
                    form: Form::Header,
                };
                let mut spec = chunked_spec(&sig, "", &req, mode)?;
                spec.verify = false;
                BodyCheck::Chunked(spec)
            }
            None => {
                let mut hash = [0u8; 32];
                hex::decode_to_slice(h, &mut hash).map_err(|_| AuthError::Invalid(INVALID_CONTENT_SHA256.into()))?;
                BodyCheck::Sha256(hash)
            }
        },
    })
}

/// What the chunks of `req`'s body are checked with.
fn chunked_spec(sig: &Signature, secret: &str, req: &Request<'_>, mode: ChunkMode) -> Result<ChunkedSpec, AuthError> {
    let header = |name: &str| req.headers.get(name).map(|v| v.to_str().unwrap_or_default().trim());
    let decoded_content_length = match header("x-amz-decoded-content-length") {
        None => None,
        Some(v) => Some(
            v.parse::<u64>()
                .map_err(|_| AuthError::Invalid(format!("x-amz-decoded-content-length must be a number of bytes, not '{v}'.")))?,
        ),
    };
    let announced_trailers = req
        .headers
        .get_all("x-amz-trailer")
        .iter()
        .flat_map(|v| v.to_str().unwrap_or_default().split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect();
    let key = signing_key(secret, &sig.scope).try_into().expect("an HMAC-SHA256 is 32 bytes");
    let s = &sig.scope;
    Ok(ChunkedSpec {
        mode,
        signing: ChunkSigning {
            key,
            scope: format!("{}/{}/{}/aws4_request", s.date, s.region, s.service),
            amz_date: sig.amz_date_basic(),
            seed: sig.signature.clone(),
        },
        decoded_content_length,
        announced_trailers,
        verify: true,
    })
}

/// The date window: AWS answers an expired request so, whatever its signature.
fn check_window(sig: &Signature, now: DateTime<Utc>, max_skew_secs: i64) -> Result<(), AuthError> {
    let fmt = |t: DateTime<Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
    match sig.form {
        Form::Header => {
            let skew = sig.at.signed_duration_since(now).num_seconds();
            let window = chrono::Duration::seconds(max_skew_secs);
            let minutes = max_skew_secs / 60;
            if skew < -max_skew_secs {
                return Err(AuthError::Expired(format!(
                    "Signature expired: {} is now earlier than {} ({} - {minutes} min.)",
                    fmt(sig.at),
                    fmt(now - window),
                    fmt(now)
                )));
            }
            if skew > max_skew_secs {
                return Err(AuthError::Expired(format!(
                    "Signature not yet current: {} is still later than {} ({} + {minutes} min.)",
                    fmt(sig.at),
                    fmt(now + window),
                    fmt(now)
                )));
            }
        }
        Form::Query { expires } => {
            let until = sig.at + chrono::Duration::seconds(i64::try_from(expires).unwrap_or(i64::MAX / 2));
            if now > until {
                return Err(AuthError::Expired(format!("Request has expired. Expired at {}, now {}", fmt(until), fmt(now))));
            }
            if sig.at.signed_duration_since(now).num_seconds() > MAX_SKEW_SECS {
                return Err(AuthError::Expired(format!("Request is not valid yet. Valid from {}, now {}", fmt(sig.at), fmt(now))));
            }
        }
    }
    Ok(())
}

/// The signature itself, over the canonical request with `payload_hash`.
fn check_signature(sig: &Signature, secret: &str, req: &Request<'_>, style: PathStyle, payload_hash: &str) -> Result<(), AuthError> {
    let canonical_request = canonical_request(sig, req, style, payload_hash);
    let string_to_sign = string_to_sign(sig, &canonical_request);
    let mut mac = HmacSha256::new_from_slice(&cached_signing_key(secret, &sig.scope)).expect("HMAC takes any key");
    mac.update(string_to_sign.as_bytes());
    let provided = hex::decode(&sig.signature).unwrap_or_default();
    mac.verify_slice(&provided).map_err(|_| AuthError::Mismatch { canonical_request, string_to_sign })
}

/// The payload hash the client signed: `x-amz-content-sha256` when sent (checked against the
/// body unless it says the body is unsigned or streamed), `UNSIGNED-PAYLOAD` for presigned
/// URLs without it, else the body's hash.
fn payload_hash(sig: &Signature, req: &Request<'_>) -> Result<String, AuthError> {
    let declared = req.headers.get("x-amz-content-sha256").and_then(|v| v.to_str().ok());
    match declared {
        Some(h) if h == UNSIGNED_PAYLOAD || h.starts_with("STREAMING-") => Ok(h.to_string()),
        Some(h) => {
            if !h.eq_ignore_ascii_case(&sha256_hex(req.body)) {
                return Err(AuthError::ContentSha256Mismatch);
            }
            Ok(h.to_string())
        }
        None if matches!(sig.form, Form::Query { .. }) && sig.scope.service == "s3" => Ok(UNSIGNED_PAYLOAD.to_string()),
        None => Ok(sha256_hex(req.body)),
    }
}

/// RFC 3986 unreserved characters stay; everything else is `%XX` (uppercase).
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
/// The same, keeping `/` (paths).
const ENCODE_PATH: &AsciiSet = &ENCODE.remove(b'/');

/// The canonical request: method, URI, query, headers, signed header names, payload hash.
pub fn canonical_request(sig: &Signature, req: &Request<'_>, style: PathStyle, payload_hash: &str) -> String {
    let uri = match style {
        PathStyle::S3 => {
            if req.path.is_empty() {
                "/".to_string()
            } else {
                req.path.to_string()
            }
        }
        PathStyle::Normalized => utf8_percent_encode(&remove_dot_segments(req.path), ENCODE_PATH).to_string(),
    };
    let query = canonical_query(req.query, matches!(sig.form, Form::Query { .. }));
    let mut out = String::with_capacity(256 + uri.len() + query.len());
    out.push_str(req.method);
    out.push('\n');
    out.push_str(&uri);
    out.push('\n');
    out.push_str(&query);
    out.push('\n');
    for name in &sig.signed_headers {
        out.push_str(name);
        out.push(':');
        for (i, v) in req.headers.get_all(name.as_str()).iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_collapsed(&mut out, &String::from_utf8_lossy(v.as_bytes()));
        }
        out.push('\n');
    }
    out.push('\n');
    for (i, name) in sig.signed_headers.iter().enumerate() {
        if i > 0 {
            out.push(';');
        }
        out.push_str(name);
    }
    out.push('\n');
    out.push_str(payload_hash);
    out
}

/// Appends `value` with its leading and trailing whitespace removed and each run of
/// whitespace inside it made one space (SigV4's canonical header value).
fn push_collapsed(out: &mut String, value: &str) {
    for (i, word) in value.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word);
    }
}

/// The path with `.` and `..` segments and empty segments removed, as AWS's SDKs normalize it
/// before signing (a trailing slash is kept).
fn remove_dot_segments(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let first = if path.starts_with('/') { "/" } else { "" };
    let last = if path.ends_with('/') && !out.is_empty() { "/" } else { "" };
    format!("{first}{}{last}", out.join("/"))
}

/// Query parameters decoded (percent-decoding only: `+` is a plus).
fn query_params(query: Option<&str>) -> Vec<(String, String)> {
    let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
    query
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Every parameter (but a presigned URL's `X-Amz-Signature`) re-encoded and sorted by name,
/// then value.
fn canonical_query(query: Option<&str>, presigned: bool) -> String {
    let mut pairs: Vec<(String, String)> = query_params(query)
        .into_iter()
        .filter(|(k, _)| !(presigned && k == "X-Amz-Signature"))
        .map(|(k, v)| (utf8_percent_encode(&k, ENCODE).to_string(), utf8_percent_encode(&v, ENCODE).to_string()))
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

fn string_to_sign(sig: &Signature, canonical_request: &str) -> String {
    let s = &sig.scope;
    format!(
        "{ALGORITHM}\n{}\n{}/{}/{}/aws4_request\n{}",
        basic_date(sig.at),
        s.date,
        s.region,
        s.service,
        sha256_hex(canonical_request.as_bytes())
    )
}

impl Signature {
    /// The request date in the basic ISO 8601 form the string to sign uses.
    fn amz_date_basic(&self) -> String {
        basic_date(self.at).to_string()
    }
}

/// `YYYYMMDDTHHMMSSZ` exactly (what every SDK sends), without a format string; None for
/// anything else, which [`parse_date`] reads the slow way.
fn parse_basic(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |from: usize, to: usize| b[from..to].iter().try_fold(0u32, |n, &c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')));
    let date = chrono::NaiveDate::from_ymd_opt(i32::try_from(num(0, 4)?).ok()?, num(4, 6)?, num(6, 8)?)?;
    Some(date.and_hms_opt(num(9, 11)?, num(11, 13)?, num(13, 15)?)?.and_utc())
}

/// `at` in ISO 8601's basic form, `YYYYMMDDTHHMMSSZ`, as the string to sign has it, written
/// without chrono's format strings for the years 0–9999 (chrono's way for the others, which
/// an HTTP date can name).
fn basic_date(at: DateTime<Utc>) -> BasicDate {
    use chrono::{Datelike, Timelike};
    let Ok(year @ 0..=9999) = u32::try_from(at.year()) else {
        return BasicDate::Other(at.format("%Y%m%dT%H%M%SZ").to_string());
    };
    let mut b = *b"00000000T000000Z";
    let mut put = |at: usize, width: usize, mut n: u32| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(0, 4, year);
    put(4, 2, at.month());
    put(6, 2, at.day());
    put(9, 2, at.hour());
    put(11, 2, at.minute());
    // chrono keeps a leap second as second 59 with a second's worth more of nanoseconds.
    put(13, 2, at.second() + u32::from(at.nanosecond() >= 1_000_000_000));
    BasicDate::Fixed(b)
}

/// What [`basic_date`] writes.
enum BasicDate {
    /// 16 ASCII bytes.
    Fixed([u8; 16]),
    Other(String),
}

impl std::ops::Deref for BasicDate {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            BasicDate::Fixed(b) => std::str::from_utf8(b).expect("ASCII digits"),
            BasicDate::Other(s) => s,
        }
    }
}

impl std::fmt::Display for BasicDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self)
    }
}

/// The lowercase hex SHA-256 of `data`.
fn sha256_hex(data: &[u8]) -> String {
    let mut out = [0u8; 64];
    hex::encode_to_slice(Sha256::digest(data), &mut out).expect("64 hex digits for 32 bytes");
    String::from_utf8(out.to_vec()).expect("hex is ASCII")
}

/// [`signing_key`], remembered per thread for the last few scopes: a client signs every
/// request of a day with the same derived key, and deriving it is four HMACs. The secret
/// itself is not kept, only its SHA-256, to tell keys apart.
fn cached_signing_key(secret: &str, scope: &Scope) -> Vec<u8> {
    use std::cell::RefCell;
    /// Derived keys kept per thread (most recent first).
    const KEPT: usize = 8;
    struct Entry {
        secret: [u8; 32],
        date: String,
        region: String,
        service: String,
        key: Vec<u8>,
    }
    thread_local! {
        static KEYS: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
    }
    let fingerprint: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
    KEYS.with(|keys| {
        let mut keys = keys.borrow_mut();
        let hit = keys
            .iter()
            .position(|e| e.secret == fingerprint && e.date == scope.date && e.region == scope.region && e.service == scope.service);
        if let Some(i) = hit {
            let entry = keys.remove(i);
            let key = entry.key.clone();
            keys.insert(0, entry);
            return key;
        }
        let key = signing_key(secret, scope);
        let entry = Entry {
            secret: fingerprint,
            date: scope.date.clone(),
            region: scope.region.clone(),
            service: scope.service.clone(),
            key: key.clone(),
        };
        keys.insert(0, entry);
        keys.truncate(KEPT);
        key
    })
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// `kSigning` = HMAC chain over the date, region, service and `aws4_request`.
pub fn signing_key(secret: &str, scope: &Scope) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), &scope.date);
    let k_region = hmac(&k_date, &scope.region);
    let k_service = hmac(&k_region, &scope.service);
    hmac(&k_service, "aws4_request")
}

/// Signs a request as a client would (for tests and for links Nimbus hands out itself).
pub fn sign(secret: &str, sig: &Signature, req: &Request<'_>, style: PathStyle) -> String {
    let payload_hash = payload_hash(sig, req).unwrap_or_else(|_| hex::encode(Sha256::digest(req.body)));
    let cr = canonical_request(sig, req, style, &payload_hash);
    hex::encode(hmac(&signing_key(secret, &sig.scope), &string_to_sign(sig, &cr)))
}

/// The headers a client adds to sign `req` (which must carry `host`): `x-amz-date`, the
/// session token if any, and `authorization`, signing every header `req` has.
pub fn sign_request(
    key_id: &str,
    secret: &str,
    token: Option<&str>,
    region: &str,
    service: &str,
    req: &Request<'_>,
    now: DateTime<Utc>,
) -> Vec<(&'static str, String)> {
    let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
    let mut headers = req.headers.clone();
    let mut added: Vec<(&'static str, String)> = vec![("x-amz-date", amz_date.clone())];
    if let Some(t) = token {
        added.push(("x-amz-security-token", t.to_string()));
    }
    for (k, v) in &added {
        if let Ok(v) = http::HeaderValue::from_str(v) {
            headers.insert(*k, v);
        }
    }
    let mut signed_headers: Vec<String> = headers.keys().map(|k| k.as_str().to_string()).collect();
    signed_headers.sort();
    signed_headers.dedup();
    let sig = Signature {
        scope: Scope {
            access_key: key_id.to_string(),
            date: now.format("%Y%m%d").to_string(),
            region: region.to_string(),
            service: service.to_string(),
        },
        signed_headers,
        signature: String::new(),
        amz_date,
        at: now,
        security_token: token.map(str::to_string),
        form: Form::Header,
    };
    let style = if service == "s3" { PathStyle::S3 } else { PathStyle::Normalized };
    let signature = sign(secret, &sig, &Request { headers: &headers, ..*req }, style);
    added.push((
        "authorization",
        format!(
            "{ALGORITHM} Credential={key_id}/{}/{region}/{service}/aws4_request, SignedHeaders={}, Signature={signature}",
            sig.scope.date,
            sig.signed_headers.join(";")
        ),
    ));
    added
}

#[cfg(test)]
mod tests;

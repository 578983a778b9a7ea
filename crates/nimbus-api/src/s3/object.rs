//! S3's object calls: put (streamed to disk), get and head (ranges, conditions, `response-*`
//! overrides, bodies streamed from disk), copy, delete one or many, listings (V1, V2,
//! versions) and object tags.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::request::Parts;
use http::{HeaderValue, Method, Response, StatusCode};
use nimbus_objects::{ListQuery, Object, ObjectError, ObjectMeta, PutConditions, PutResult, VersionQuery};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::body::RequestBody;
use super::{answer, decode, empty, S3Error, S3Request};
use crate::response::Body;
use crate::server::AppState;

/// Bytes read from disk per piece of a GET's body.
const READ_PIECE: usize = 256 * 1024;

pub async fn serve(state: &Arc<AppState>, req: &S3Request, parts: &Parts, body: RequestBody) -> Result<Response<Body>, S3Error> {
    let store = super::store(state)?;
    let bucket = req.bucket();
    let of = |e: ObjectError| S3Error::from_store(e, req);
    match req.operation {
        "PutObject" => {
            store.bucket(bucket).await.map_err(of)?;
            check_key(req)?;
            let meta = meta_from_headers(parts);
            let tags = tags_header(parts)?;
            let conditions = put_conditions(parts);
            let (staged, algorithm) = body.stage(&store, parts, None).await?;
            let put = store
                .put_object(bucket, req.key(), staged, meta, tags, Some(algorithm), conditions, "Put")
                .await
                .map_err(|e| with_condition(of(e), parts))?;
            Ok(answer("PutObject", &put_output(&put)))
        }
        "GetObject" | "HeadObject" => get(&store, req, parts).await,
        "DeleteObject" => {
            let outcome = store.delete_object(bucket, req.key(), req.param("versionId")).await.map_err(of)?;
            let mut out = Map::new();
            if outcome.delete_marker {
                out.insert("DeleteMarker".into(), json!(true));
            }
            match outcome.version_id {
                Some(v) => {
                    out.insert("VersionId".into(), json!(v));
                }
                // A null delete marker (suspended versioning), or the null version removed.
                None if outcome.delete_marker || req.param("versionId") == Some("null") => {
                    out.insert("VersionId".into(), json!("null"));
                }
                None => {}
            }
            Ok(answer("DeleteObject", &Value::Object(out)))
        }
        "DeleteObjects" => delete_many(&store, req, parts, body).await,
        "CopyObject" => copy(state, &store, req, parts).await,
        "ListObjects" | "ListObjectsV2" => list(&store, req, state.account()).await,
        "ListObjectVersions" => list_versions(&store, req, state.account()).await,
        "GetObjectTagging" => {
            let (tags, version) = store.tags(bucket, req.key(), req.param("versionId")).await.map_err(of)?;
            let mut out = json!({"TagSet": tag_set(&tags)});
            if let Some(v) = version {
                out["VersionId"] = json!(v);
            }
            Ok(answer("GetObjectTagging", &out))
        }
        "PutObjectTagging" => {
            let doc = body.read(parts).await?;
            let input: PutTaggingInput = decode(req, parts, &doc)?;
            let tags = checked_tags(input.tagging.tag_set.into_iter().map(|t| (t.key, t.value)).collect(), 10)?;
            let version = store.put_tags(bucket, req.key(), req.param("versionId"), tags).await.map_err(of)?;
            Ok(answer("PutObjectTagging", &json!({"VersionId": version})))
        }
        "DeleteObjectTagging" => {
            let version = store.put_tags(bucket, req.key(), req.param("versionId"), Vec::new()).await.map_err(of)?;
            let mut r = empty(StatusCode::NO_CONTENT);
            if let Some(v) = version.and_then(|v| HeaderValue::from_str(&v).ok()) {
                r.headers_mut().insert("x-amz-version-id", v);
            }
            Ok(r)
        }
        _ => Err(S3Error::not_implemented()),
    }
}

fn check_key(req: &S3Request) -> Result<(), S3Error> {
    if req.key().len() > nimbus_objects::limits::MAX_KEY_BYTES {
        return Err(S3Error::from_store(ObjectError::KeyTooLongError, req));
    }
    Ok(())
}

/// PutObject's (and CompleteMultipartUpload's) answer members.
pub fn put_output(put: &PutResult) -> Value {
    let mut out = json!({"ETag": quoted(&put.etag)});
    if let Some(v) = &put.version_id {
        out["VersionId"] = json!(v);
    }
    if let Some((algorithm, value)) = &put.checksum {
        out[format!("Checksum{}", algorithm.name())] = json!(value);
        out["ChecksumType"] = json!(if value.contains('-') { "COMPOSITE" } else { "FULL_OBJECT" });
    }
    out
}

/// A key as it goes into a URL path (`/` kept).
pub fn url_path(key: &str) -> String {
    url_encode(key)
}

pub fn quoted(etag: &str) -> String {
    format!("\"{etag}\"")
}

fn header<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok())
}

/// What a write stores beside the body, from its headers.
pub fn meta_from_headers(parts: &Parts) -> ObjectMeta {
    let h = |n: &str| header(parts, n).map(str::to_string);
    let mut user: Vec<(String, String)> = Vec::new();
    for (name, value) in &parts.headers {
        if let Some(rest) = name.as_str().strip_prefix("x-amz-meta-") {
            user.push((rest.to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()));
        }
    }
    ObjectMeta {
        content_type: h("content-type"),
        // aws-chunked is how the body travelled, not how it is stored.
        content_encoding: h("content-encoding").and_then(|v| {
            let kept: Vec<&str> = v.split(',').map(str::trim).filter(|e| !e.is_empty() && *e != "aws-chunked").collect();
            (!kept.is_empty()).then(|| kept.join(","))
        }),
        content_disposition: h("content-disposition"),
        content_language: h("content-language"),
        cache_control: h("cache-control"),
        expires: h("expires"),
        website_redirect_location: h("x-amz-website-redirect-location"),
        storage_class: h("x-amz-storage-class").filter(|c| c != "STANDARD"),
        user,
    }
}

/// `x-amz-tagging: k1=v1&k2=v2`.
pub fn tags_header(parts: &Parts) -> Result<Vec<(String, String)>, S3Error> {
    let Some(v) = header(parts, "x-amz-tagging") else { return Ok(Vec::new()) };
    let tags = nimbus_protocol::rest::query_pairs(Some(v));
    if tags.iter().enumerate().any(|(i, (k, _))| tags[..i].iter().any(|(other, _)| other == k)) {
        return Err(S3Error::new(
            "InvalidArgument",
            400,
            "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.",
        )
        .with("ArgumentName", "x-amz-tagging")
        .with("ArgumentValue", v));
    }
    checked_tags(tags, 10)
}

/// Tags as S3 checks them: at most `max`, keys 1–128 and values 0–256 characters, no key twice.
pub fn checked_tags(tags: Vec<(String, String)>, max: usize) -> Result<Vec<(String, String)>, S3Error> {
    let bad = |m: &str| S3Error::new("InvalidTag", 400, m.to_string());
    if tags.len() > max {
        return Err(bad("Object tags cannot be greater than 10"));
    }
    for (i, (k, v)) in tags.iter().enumerate() {
        if k.is_empty() || k.chars().count() > 128 {
            return Err(bad("The TagKey you have provided is invalid").with("TagKey", k.as_str()));
        }
        if k.starts_with("aws:") {
            return Err(bad("Your TagKey cannot be prefixed with aws:").with("TagKey", k.as_str()));
        }
        if v.chars().count() > 256 {
            return Err(bad("The TagValue you have provided is invalid").with("TagKey", k.as_str()).with("TagValue", v.as_str()));
        }
        if tags[..i].iter().any(|(other, _)| other == k) {
            return Err(bad("Cannot provide multiple Tags with the same key").with("TagKey", k.as_str()));
        }
    }
    Ok(tags)
}

fn tag_set(tags: &[(String, String)]) -> Vec<Value> {
    tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutTaggingInput {
    tagging: TaggingDoc,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaggingDoc {
    #[serde(default)]
    pub tag_set: Vec<TagDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagDoc {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

/// A write's PreconditionFailed names the condition that failed, as S3's does.
pub fn with_condition(e: S3Error, parts: &Parts) -> S3Error {
    if e.code != "PreconditionFailed" {
        return e;
    }
    let condition = if parts.headers.contains_key("if-none-match") { "If-None-Match" } else { "If-Match" };
    e.with("Condition", condition)
}

/// `If-None-Match: *` and `If-Match` on a write.
pub fn put_conditions(parts: &Parts) -> PutConditions {
    PutConditions {
        if_none_match_any: header(parts, "if-none-match").is_some_and(|v| v.trim() == "*"),
        if_match: header(parts, "if-match").map(|v| v.trim().trim_matches('"').to_string()),
    }
}

fn http_date(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default().format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn parse_http_date(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc2822(s.trim()).ok().map(|t| t.timestamp())
}

/// Whether an entity tag list (`"a", "b"`, or `*`) names `etag`.
fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',').map(|t| t.trim().trim_start_matches("W/").trim_matches('"')).any(|t| t == "*" || t == etag)
}

/// A GET's range of `size` bytes: `bytes=a-b`, `bytes=a-`, `bytes=-n`. None: the whole
/// object (S3 ignores ranges it cannot read); Err: unsatisfiable (416).
fn range(spec: &str, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(r) = spec.trim().strip_prefix("bytes=") else { return Ok(None) };
    if r.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = r.split_once('-') else { return Ok(None) };
    let (a, b) = (a.trim(), b.trim());
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(start), Ok(end)) if start <= end => {
            if start >= size {
                return Err(());
            }
            Ok(Some((start, end.min(size - 1))))
        }
        (Ok(_), Ok(_)) => Ok(None),
        (Ok(start), Err(_)) if b.is_empty() => {
            if start >= size {
                return Err(());
            }
            Ok(Some((start, size - 1)))
        }
        (Err(_), Ok(n)) if a.is_empty() => {
            if n == 0 {
                return Err(());
            }
            if size == 0 {
                return Ok(None);
            }
            Ok(Some((size.saturating_sub(n), size - 1)))
        }
        _ => Ok(None),
    }
}

/// GetObject and HeadObject.
async fn get(store: &nimbus_objects::ObjectStore, req: &S3Request, parts: &Parts) -> Result<Response<Body>, S3Error> {
    let head = parts.method == Method::HEAD;
    let version = req.param("versionId");
    let object = store.head(req.bucket(), req.key(), version).await.map_err(|e| S3Error::from_store(e, req))?;
    if object.delete_marker {
        return Err(S3Error::from_store(ObjectError::MethodNotAllowed { version_id: object.version_id.clone() }, req));
    }
    // Conditions, as S3 (RFC 7232) weighs them.
    let modified_secs = object.last_modified_ms / 1000;
    let if_match = header(parts, "if-match");
    let if_none_match = header(parts, "if-none-match");
    let if_modified_since = header(parts, "if-modified-since").and_then(parse_http_date);
    let if_unmodified_since = header(parts, "if-unmodified-since").and_then(parse_http_date);
    let precondition_failed = |condition: &str| {
        S3Error::new("PreconditionFailed", 412, "At least one of the pre-conditions you specified did not hold")
            .with("Condition", condition)
    };
    match if_match {
        Some(list) if !etag_matches(list, &object.etag) => return Err(precondition_failed("If-Match")),
        None if if_unmodified_since.is_some_and(|t| modified_secs > t) => return Err(precondition_failed("If-Unmodified-Since")),
        _ => {}
    }
    let not_modified = match if_none_match {
        Some(list) => etag_matches(list, &object.etag),
        None => if_modified_since.is_some_and(|t| modified_secs <= t),
    };
    if not_modified {
        let mut r = empty(StatusCode::NOT_MODIFIED);
        set(&mut r, "etag", &quoted(&object.etag));
        set(&mut r, "last-modified", &http_date(object.last_modified_ms));
        return Ok(r);
    }
    let range = match (header(parts, "range"), req.param("partNumber")) {
        (Some(_), Some(_)) => return Err(S3Error::invalid_request("Cannot specify both Range header and partNumber query parameter")),
        (Some(spec), None) => range(spec, object.size).map_err(|()| {
            S3Error::new("InvalidRange", 416, "The requested range is not satisfiable")
                .with("RangeRequested", spec)
                .with("ActualObjectSize", object.size.to_string())
        })?,
        (None, Some(n)) => part_range(&object, n)?,
        (None, None) => None,
    };
    let (start, len, status) = match range {
        Some((a, b)) => (a, b - a + 1, StatusCode::PARTIAL_CONTENT),
        None => (0, object.size, StatusCode::OK),
    };
    let mut r = if head || len == 0 {
        empty(status)
    } else {
        let mut file = store.open_range(&object, start, len).map_err(S3Error::internal)?;
        // A body in shared storage is requested before the answer's head goes.
        file.ready().await.map_err(S3Error::internal)?;
        let mut r = empty(status);
        *r.body_mut() = stream_file(file, start, len);
        r
    };
    object_headers(&mut r, &object, req, parts);
    set(&mut r, "content-length", &len.to_string());
    if let Some((a, b)) = range {
        set(&mut r, "content-range", &format!("bytes {a}-{b}/{}", object.size));
    }
    Ok(r)
}

/// The bytes of part `n` (`?partNumber=`): a multipart object's part as it was uploaded, or
/// the whole of any other object as its one part.
fn part_range(object: &Object, n: &str) -> Result<Option<(u64, u64)>, S3Error> {
    let number = n
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=nimbus_objects::limits::MAX_PART_NUMBER).contains(n))
        .ok_or_else(|| S3Error::invalid_argument("Part number must be an integer between 1 and 10000, inclusive", "partNumber", n))?;
    let sizes: Vec<u64> = if object.part_sizes.is_empty() { vec![object.size] } else { object.part_sizes.clone() };
    let index = number as usize - 1;
    if index >= sizes.len() {
        return Err(S3Error::new("InvalidPartNumber", 416, "The requested partnumber is not satisfiable")
            .with("PartNumberRequested", number.to_string())
            .with("ActualPartCount", sizes.len().to_string()));
    }
    let start: u64 = sizes[..index].iter().sum();
    Ok((sizes[index] > 0).then(|| (start, start + sizes[index] - 1)))
}

/// The headers GET and HEAD describe an object with.
fn object_headers(r: &mut Response<Body>, object: &Object, req: &S3Request, parts: &Parts) {
    let m = &object.meta;
    set(r, "etag", &quoted(&object.etag));
    set(r, "last-modified", &http_date(object.last_modified_ms));
    set(r, "accept-ranges", "bytes");
    set(r, "content-type", m.content_type.as_deref().unwrap_or("binary/octet-stream"));
    for (name, value) in [
        ("content-encoding", &m.content_encoding),
        ("content-disposition", &m.content_disposition),
        ("content-language", &m.content_language),
        ("cache-control", &m.cache_control),
        ("expires", &m.expires),
        ("x-amz-website-redirect-location", &m.website_redirect_location),
        ("x-amz-storage-class", &m.storage_class),
    ] {
        if let Some(v) = value {
            set(r, name, v);
        }
    }
    for (k, v) in &m.user {
        if let (Ok(name), Ok(value)) = (http::HeaderName::from_bytes(format!("x-amz-meta-{k}").as_bytes()), HeaderValue::from_str(v)) {
            r.headers_mut().append(name, value);
        }
    }
    if let Some(v) = &object.version_id {
        set(r, "x-amz-version-id", v);
    }
    if object.tag_count > 0 {
        set(r, "x-amz-tagging-count", &object.tag_count.to_string());
    }
    if let Some(n) = object.parts_count.filter(|_| req.param("partNumber").is_some()) {
        set(r, "x-amz-mp-parts-count", &n.to_string());
    }
    let checksum_mode = header(parts, "x-amz-checksum-mode").is_some_and(|v| v.eq_ignore_ascii_case("ENABLED"));
    if checksum_mode && !parts.headers.contains_key("range") {
        if let Some((algorithm, value)) = &object.checksum {
            set(r, algorithm.header(), value);
            set(r, "x-amz-checksum-type", if value.contains('-') { "COMPOSITE" } else { "FULL_OBJECT" });
        }
    }
    // `response-*` overrides (a GET's query, presigned links' favourite).
    for (param, name) in [
        ("response-content-type", "content-type"),
        ("response-content-language", "content-language"),
        ("response-expires", "expires"),
        ("response-cache-control", "cache-control"),
        ("response-content-disposition", "content-disposition"),
        ("response-content-encoding", "content-encoding"),
    ] {
        if let Some(v) = req.param(param) {
            set(r, name, v);
        }
    }
}

fn set(r: &mut Response<Body>, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}

/// `len` bytes of `file` from `start`, read in pieces on a blocking thread as the client
/// takes them.
fn stream_file(mut file: nimbus_objects::ObjectBody, start: u64, len: u64) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    tokio::task::spawn_blocking(move || {
        if file.seek(SeekFrom::Start(start)).is_err() {
            return;
        }
        let mut left = len;
        while left > 0 {
            let mut buf = vec![0u8; READ_PIECE.min(usize::try_from(left).unwrap_or(READ_PIECE))];
            match file.read(&mut buf) {
                Ok(0) | Err(_) => {
                    tracing::error!("S3: an object's body ended early on disk ({left} bytes short)");
                    return;
                }
                Ok(n) => {
                    buf.truncate(n);
                    left -= n as u64;
                    if tx.blocking_send(Bytes::from(buf)).is_err() {
                        return;
                    }
                }
            }
        }
    });
    Body::Stream(rx)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteObjectsInput {
    delete: DeleteDoc,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteDoc {
    #[serde(default)]
    objects: Vec<ObjectIdentifier>,
    #[serde(default)]
    quiet: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ObjectIdentifier {
    key: String,
    version_id: Option<String>,
}

async fn delete_many(
    store: &nimbus_objects::ObjectStore,
    req: &S3Request,
    parts: &Parts,
    body: RequestBody,
) -> Result<Response<Body>, S3Error> {
    let has_digest = parts.headers.contains_key("content-md5")
        || nimbus_objects::ChecksumAlgorithm::ALL.iter().any(|a| parts.headers.contains_key(a.header()))
        || parts.headers.contains_key("x-amz-trailer");
    let doc = body.read(parts).await?;
    if !has_digest {
        return Err(S3Error::invalid_request("Missing required header for this request: Content-MD5 OR x-amz-checksum-*"));
    }
    let input: DeleteObjectsInput = decode(req, parts, &doc)?;
    if input.delete.objects.is_empty() || input.delete.objects.len() > 1000 {
        return Err(S3Error::malformed_xml());
    }
    let keys: Vec<(String, Option<String>)> = input.delete.objects.into_iter().map(|o| (o.key, o.version_id)).collect();
    let results = store.delete_objects(req.bucket(), keys.clone()).await.map_err(|e| S3Error::from_store(e, req))?;
    let mut deleted = Vec::new();
    let mut errors = Vec::new();
    for ((key, asked_version), result) in keys.into_iter().zip(results) {
        match result {
            Ok(outcome) => {
                if input.delete.quiet {
                    continue;
                }
                let mut d = json!({"Key": key});
                match (&asked_version, outcome.delete_marker) {
                    (Some(v), marker) => {
                        d["VersionId"] = json!(v);
                        if marker {
                            d["DeleteMarker"] = json!(true);
                            d["DeleteMarkerVersionId"] = json!(v);
                        }
                    }
                    (None, true) => {
                        d["DeleteMarker"] = json!(true);
                        d["DeleteMarkerVersionId"] = json!(outcome.version_id.unwrap_or_else(|| "null".into()));
                    }
                    (None, false) => {}
                }
                deleted.push(d);
            }
            Err(e) => {
                let mut err = json!({"Key": key, "Code": e.code(), "Message": e.to_string()});
                if let Some(v) = asked_version {
                    err["VersionId"] = json!(v);
                }
                errors.push(err);
            }
        }
    }
    let mut out = Map::new();
    if !deleted.is_empty() {
        out.insert("Deleted".into(), Value::Array(deleted));
    }
    if !errors.is_empty() {
        out.insert("Errors".into(), Value::Array(errors));
    }
    Ok(answer("DeleteObjects", &Value::Object(out)))
}

/// `x-amz-copy-source`: `bucket/key` or `/bucket/key`, URL-encoded, with `?versionId=`.
pub fn copy_source(parts: &Parts) -> Result<(String, String, Option<String>), S3Error> {
    let raw = header(parts, "x-amz-copy-source").unwrap_or("");
    let invalid = || S3Error::invalid_argument("Invalid copy source object key", "x-amz-copy-source", raw);
    let (path, version) = match raw.split_once('?') {
        Some((p, q)) => {
            let version = nimbus_protocol::rest::query_pairs(Some(q)).into_iter().find(|(k, _)| k == "versionId").map(|(_, v)| v);
            (p, version)
        }
        None => (raw, None),
    };
    let path = percent_encoding::percent_decode_str(path.strip_prefix('/').unwrap_or(path)).decode_utf8().map_err(|_| invalid())?;
    let (bucket, key) = path.split_once('/').ok_or_else(invalid)?;
    if bucket.is_empty() || key.is_empty() {
        return Err(invalid());
    }
    Ok((bucket.to_string(), key.to_string(), version))
}

/// The object `x-amz-copy-source` names (a version, not a delete marker), held to the
/// copy's conditions, and where it was named.
pub async fn copied_object(
    store: &nimbus_objects::ObjectStore,
    req: &S3Request,
    parts: &Parts,
) -> Result<(Object, (String, String, Option<String>)), S3Error> {
    let (src_bucket, src_key, src_version) = copy_source(parts)?;
    let source_req = S3Request {
        operation: req.operation,
        method: req.method.clone(),
        resource: String::new(),
        path_style: true,
        bucket: Some(src_bucket.clone()),
        key: Some(src_key.clone()),
        query: src_version.iter().map(|v| ("versionId".to_string(), v.clone())).collect(),
    };
    let source = store.head(&src_bucket, &src_key, src_version.as_deref()).await.map_err(|e| S3Error::from_store(e, &source_req))?;
    if source.delete_marker {
        return Err(S3Error::invalid_request("The source of a copy request may not specifically refer to a delete marker by version id."));
    }
    check_copy_conditions(parts, &source)?;
    Ok((source, (src_bucket, src_key, src_version)))
}

/// The conditions a copy puts on its source (`x-amz-copy-source-if-*`).
fn check_copy_conditions(parts: &Parts, source: &Object) -> Result<(), S3Error> {
    let failed = |condition: &str| {
        S3Error::new("PreconditionFailed", 412, "At least one of the pre-conditions you specified did not hold")
            .with("Condition", condition)
    };
    let modified = source.last_modified_ms / 1000;
    let if_match = header(parts, "x-amz-copy-source-if-match");
    if let Some(list) = if_match {
        if !etag_matches(list, &source.etag) {
            return Err(failed("x-amz-copy-source-If-Match"));
        }
    } else if header(parts, "x-amz-copy-source-if-unmodified-since").and_then(parse_http_date).is_some_and(|t| modified > t) {
        return Err(failed("x-amz-copy-source-If-Unmodified-Since"));
    }
    if let Some(list) = header(parts, "x-amz-copy-source-if-none-match") {
        if etag_matches(list, &source.etag) {
            return Err(failed("x-amz-copy-source-If-None-Match"));
        }
    } else if header(parts, "x-amz-copy-source-if-modified-since").and_then(parse_http_date).is_some_and(|t| modified <= t) {
        return Err(failed("x-amz-copy-source-If-Modified-Since"));
    }
    Ok(())
}

async fn copy(
    _state: &Arc<AppState>,
    store: &nimbus_objects::ObjectStore,
    req: &S3Request,
    parts: &Parts,
) -> Result<Response<Body>, S3Error> {
    check_key(req)?;
    store.bucket(req.bucket()).await.map_err(|e| S3Error::from_store(e, req))?;
    let (source, (src_bucket, src_key, src_version)) = copied_object(store, req, parts).await?;
    let replace = header(parts, "x-amz-metadata-directive").is_some_and(|d| d.eq_ignore_ascii_case("REPLACE"));
    let replace_tags = header(parts, "x-amz-tagging-directive").is_some_and(|d| d.eq_ignore_ascii_case("REPLACE"));
    let same = src_bucket == req.bucket() && src_key == req.key() && src_version.is_none();
    if same
        && !replace
        && !parts.headers.contains_key("x-amz-storage-class")
        && !parts.headers.contains_key("x-amz-website-redirect-location")
    {
        return Err(S3Error::invalid_request("This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."));
    }
    let meta = if replace { meta_from_headers(parts) } else { source.meta.clone() };
    let tags = if replace_tags {
        tags_header(parts)?
    } else {
        store.tags(&src_bucket, &src_key, source.version_id.as_deref().or(Some("null"))).await.map(|(t, _)| t).unwrap_or_default()
    };
    let put = store
        .copy_object(&source, req.bucket(), req.key(), meta, tags, put_conditions(parts))
        .await
        .map_err(|e| S3Error::from_store(e, req))?;
    let mut result = json!({"ETag": quoted(&put.etag), "LastModified": put.last_modified_ms as f64 / 1000.0});
    if let Some((algorithm, value)) = &put.checksum {
        result[format!("Checksum{}", algorithm.name())] = json!(value);
        result["ChecksumType"] = json!(if value.contains('-') { "COMPOSITE" } else { "FULL_OBJECT" });
    }
    let mut out = json!({"CopyObjectResult": result});
    if let Some(v) = &put.version_id {
        out["VersionId"] = json!(v);
    }
    if let Some(v) = &source.version_id {
        out["CopySourceVersionId"] = json!(v);
    }
    Ok(answer("CopyObject", &out))
}

/// An `Owner` element: S3's canonical id of the account, without a display name.
pub fn owner(account: &str) -> Value {
    json!({"ID": super::canonical_id(account)})
}

/// `encoding-type=url`: keys and prefixes in answers percent-encoded as S3 does.
/// How keys and prefixes are written in a listing (`encoding-type=url`).
type KeyEncoder = fn(&str) -> String;

fn encoder(req: &S3Request) -> Result<Option<KeyEncoder>, S3Error> {
    match req.param("encoding-type") {
        None => Ok(None),
        Some("url") => Ok(Some(url_encode)),
        Some(other) => Err(S3Error::invalid_argument("Invalid Encoding Method specified in Request", "encoding-type", other)),
    }
}

fn url_encode(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

/// A listing's common prefixes, delimiter and encoding type, as its answer carries them.
fn grouping(out: &mut Value, prefixes: &[String], delimiter: Option<&str>, encode: Option<KeyEncoder>) {
    let enc = |s: &str| encode.map_or_else(|| s.to_string(), |f| f(s));
    if !prefixes.is_empty() {
        out["CommonPrefixes"] = Value::Array(prefixes.iter().map(|p| json!({"Prefix": enc(p)})).collect());
    }
    if let Some(d) = delimiter {
        out["Delimiter"] = json!(enc(d));
    }
    if encode.is_some() {
        out["EncodingType"] = json!("url");
    }
}

fn max_keys(req: &S3Request) -> Result<usize, S3Error> {
    match req.param("max-keys") {
        None => Ok(1000),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(|n| usize::try_from(n.min(1000)).unwrap_or(1000))
            .ok_or_else(|| S3Error::invalid_argument("Provided max-keys not an integer or within integer range", "max-keys", v)),
    }
}

fn list_entry(o: &Object, encode: Option<KeyEncoder>, fetch_owner: bool, account: &str) -> Value {
    let mut e = json!({
        "Key": encode.map_or_else(|| o.key.clone(), |f| f(&o.key)),
        "LastModified": o.last_modified_ms as f64 / 1000.0,
        "ETag": quoted(&o.etag),
        "Size": o.size,
        "StorageClass": o.meta.storage_class.as_deref().unwrap_or("STANDARD"),
    });
    if let Some((algorithm, value)) = &o.checksum {
        e["ChecksumAlgorithm"] = json!([algorithm.name()]);
        e["ChecksumType"] = json!(if value.contains('-') { "COMPOSITE" } else { "FULL_OBJECT" });
    }
    if fetch_owner {
        e["Owner"] = owner(account);
    }
    e
}

async fn list(store: &nimbus_objects::ObjectStore, req: &S3Request, account: &str) -> Result<Response<Body>, S3Error> {
    let v2 = req.operation == "ListObjectsV2";
    let encode = encoder(req)?;
    let max = max_keys(req)?;
    let prefix = req.param("prefix").unwrap_or("").to_string();
    let delimiter = req.param("delimiter").filter(|d| !d.is_empty()).map(str::to_string);
    let token = req.param("continuation-token");
    let after = if v2 {
        match token {
            Some(t) => Some(read_token(t)?),
            None => req.param("start-after").map(str::to_string),
        }
    } else {
        req.param("marker").map(str::to_string)
    };
    let query = ListQuery { prefix: prefix.clone(), delimiter: delimiter.clone(), after, max_keys: max };
    let page = store.list_objects(req.bucket(), &query).await.map_err(|e| S3Error::from_store(e, req))?;
    let fetch_owner = !v2 || req.param("fetch-owner") == Some("true");
    let enc = |s: &str| encode.map_or_else(|| s.to_string(), |f| f(s));
    let mut out = json!({
        "Name": req.bucket(),
        "Prefix": enc(&prefix),
        "MaxKeys": max,
        "IsTruncated": page.truncated,
    });
    let contents: Vec<Value> = page.objects.iter().map(|o| list_entry(o, encode, fetch_owner, account)).collect();
    if !contents.is_empty() {
        out["Contents"] = Value::Array(contents);
    }
    grouping(&mut out, &page.common_prefixes, delimiter.as_deref(), encode);
    if v2 {
        out["KeyCount"] = json!(page.objects.len() + page.common_prefixes.len());
        if let Some(t) = token {
            out["ContinuationToken"] = json!(t);
        }
        if let Some(s) = req.param("start-after") {
            out["StartAfter"] = json!(enc(s));
        }
        if let (true, Some(next)) = (page.truncated, &page.next_after) {
            out["NextContinuationToken"] = json!(make_token(next));
        }
    } else {
        out["Marker"] = json!(enc(req.param("marker").unwrap_or("")));
        if let (true, Some(next), Some(_)) = (page.truncated, &page.next_after, &delimiter) {
            out["NextMarker"] = json!(enc(next));
        }
    }
    Ok(answer(req.operation, &out))
}

fn make_token(after: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(after.as_bytes())
}

fn read_token(token: &str) -> Result<String, S3Error> {
    base64::engine::general_purpose::STANDARD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| S3Error::invalid_argument("The continuation token provided is incorrect", "continuation-token", token))
}

async fn list_versions(store: &nimbus_objects::ObjectStore, req: &S3Request, account: &str) -> Result<Response<Body>, S3Error> {
    let encode = encoder(req)?;
    let max = max_keys(req)?;
    let prefix = req.param("prefix").unwrap_or("").to_string();
    let delimiter = req.param("delimiter").filter(|d| !d.is_empty()).map(str::to_string);
    let key_marker = req.param("key-marker").filter(|m| !m.is_empty()).map(str::to_string);
    let version_id_marker = req.param("version-id-marker").filter(|m| !m.is_empty()).map(str::to_string);
    if version_id_marker.is_some() && key_marker.is_none() {
        return Err(S3Error::invalid_argument(
            "A version-id marker cannot be specified without a key marker.",
            "version-id-marker",
            version_id_marker.as_deref().unwrap_or(""),
        ));
    }
    let query = VersionQuery {
        prefix: prefix.clone(),
        delimiter: delimiter.clone(),
        key_marker: key_marker.clone(),
        version_id_marker: version_id_marker.clone(),
        max_keys: max,
    };
    let page = store.list_versions(req.bucket(), &query).await.map_err(|e| S3Error::from_store(e, req))?;
    let enc = |s: &str| encode.map_or_else(|| s.to_string(), |f| f(s));
    let mut versions = Vec::new();
    let mut markers = Vec::new();
    for o in &page.versions {
        let version_id = o.version_id.clone().unwrap_or_else(|| "null".into());
        if o.delete_marker {
            markers.push(json!({
                "Key": enc(&o.key), "VersionId": version_id, "IsLatest": o.is_latest,
                "LastModified": o.last_modified_ms as f64 / 1000.0, "Owner": owner(account),
            }));
        } else {
            let mut e = list_entry(o, encode, true, account);
            e["VersionId"] = json!(version_id);
            e["IsLatest"] = json!(o.is_latest);
            versions.push(e);
        }
    }
    let mut out = json!({
        "Name": req.bucket(),
        "Prefix": enc(&prefix),
        "KeyMarker": enc(key_marker.as_deref().unwrap_or("")),
        "VersionIdMarker": version_id_marker.unwrap_or_default(),
        "MaxKeys": max,
        "IsTruncated": page.truncated,
    });
    if !versions.is_empty() {
        out["Versions"] = Value::Array(versions);
    }
    if !markers.is_empty() {
        out["DeleteMarkers"] = Value::Array(markers);
    }
    grouping(&mut out, &page.common_prefixes, delimiter.as_deref(), encode);
    if page.truncated {
        if let Some(k) = &page.next_key_marker {
            out["NextKeyMarker"] = json!(enc(k));
        }
        if let Some(v) = &page.next_version_id_marker {
            out["NextVersionIdMarker"] = json!(v);
        }
    }
    Ok(answer("ListObjectVersions", &out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_read_as_s3_reads_them() {
        type Read = Result<Option<(u64, u64)>, ()>;
        let cases: &[(&str, u64, Read)] = &[
            ("bytes=0-9", 100, Ok(Some((0, 9)))),
            ("bytes=90-200", 100, Ok(Some((90, 99)))),
            ("bytes=10-", 100, Ok(Some((10, 99)))),
            ("bytes=-10", 100, Ok(Some((90, 99)))),
            ("bytes=-200", 100, Ok(Some((0, 99)))),
            ("bytes=100-", 100, Err(())),
            ("bytes=100-200", 100, Err(())),
            ("bytes=-0", 100, Err(())),
            ("bytes=5-1", 100, Ok(None)),
            ("bytes=0-1,3-4", 100, Ok(None)),
            ("items=0-1", 100, Ok(None)),
            ("bytes=abc", 100, Ok(None)),
        ];
        for (spec, size, want) in cases {
            assert_eq!(range(spec, *size), *want, "{spec} of {size}");
        }
    }

    #[test]
    fn copy_sources_are_read_and_decoded() {
        type Source<'a> = Option<(&'a str, &'a str, Option<&'a str>)>;
        let cases: &[(&str, Source)] = &[
            ("b1/k", Some(("b1", "k", None))),
            ("/b1/dir/a%20b", Some(("b1", "dir/a b", None))),
            ("b1/k?versionId=v1", Some(("b1", "k", Some("v1")))),
            ("b1/", None),
            ("b1", None),
        ];
        for (raw, want) in cases {
            let parts = http::Request::builder().header("x-amz-copy-source", *raw).body(()).expect("request").into_parts().0;
            let got = copy_source(&parts).ok();
            let want = want.map(|(b, k, v)| (b.to_string(), k.to_string(), v.map(str::to_string)));
            assert_eq!(got, want, "{raw}");
        }
    }

    #[test]
    fn entity_tags_match_lists_and_stars() {
        let cases = [
            ("\"abc\"", "abc", true),
            ("\"x\", \"abc\"", "abc", true),
            ("*", "abc", true),
            ("W/\"abc\"", "abc", true),
            ("\"x\"", "abc", false),
        ];
        for (list, etag, want) in cases {
            assert_eq!(etag_matches(list, etag), want, "{list}");
        }
    }
}

//! S3's POST uploads: an HTML form (`multipart/form-data`) posted to a bucket, as
//! `generate_presigned_post` makes them. Nothing in the request's head is signed: the form
//! carries a base64 policy (an expiry and conditions on the other fields), signed with
//! Signature Version 4 (`x-amz-credential`, `x-amz-signature`) or 2 (`AWSAccessKeyId`,
//! `signature`); the signer is then authorized for `s3:PutObject` on the key like any other
//! caller, the fields held to the policy, and the file streamed to disk as a PUT's body is.
//! A form without a signature is an anonymous upload, allowed only by the bucket's policy.

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Response, StatusCode};
use nimbus_objects::{ChecksumAlgorithm, ObjectMeta, PutConditions};
use serde_json::Value;

use super::body::RequestBody;
use super::object::quoted;
use super::{S3Error, S3Request};
use crate::response::Body;
use crate::server::AppState;

/// The largest a form's fields other than the file may be together (AWS: 20 KB).
const MAX_FIELDS_BYTES: u64 = 20 * 1024;

/// Fields a policy need not name.
const UNCHECKED: &[&str] = &["file", "policy", "x-amz-signature", "signature", "awsaccesskeyid"];

fn malformed() -> S3Error {
    S3Error::new("MalformedPOSTRequest", 400, "The body of your POST request is not well-formed multipart/form-data.")
}

fn denied_by_policy(why: String) -> S3Error {
    S3Error::new("AccessDenied", 403, format!("Invalid according to Policy: {why}"))
}

/// The form's fields before the file, names lowercased, in order.
struct Form {
    fields: Vec<(String, String)>,
}

impl Form {
    fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

pub async fn serve(
    state: &Arc<AppState>,
    req: &S3Request,
    parts: &Parts,
    body: RequestBody,
    conn: &crate::authz::Connection<'_>,
) -> Result<Response<Body>, S3Error> {
    let bucket = req.bucket().to_string();
    let store = super::store(state)?;
    store.bucket(&bucket).await.map_err(|e| S3Error::from_store(e, req))?;
    let content_type = parts.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let boundary = multer::parse_boundary(content_type).map_err(|_| malformed())?;
    let constraints = multer::Constraints::new().size_limit(multer::SizeLimit::new().per_field(MAX_FIELDS_BYTES.max(64 * 1024)));
    let mut multipart = multer::Multipart::with_constraints(body.into_stream(), boundary, constraints);
    let mut form = Form { fields: Vec::new() };
    let mut fields_bytes = 0u64;
    let mut file = None;
    while let Some(field) = multipart.next_field().await.map_err(|_| malformed())? {
        let name = field.name().unwrap_or_default().to_ascii_lowercase();
        if name == "file" {
            file = Some(field);
            break;
        }
        let value = field.text().await.map_err(|_| malformed())?;
        fields_bytes += (name.len() + value.len()) as u64;
        if fields_bytes > MAX_FIELDS_BYTES {
            return Err(S3Error::new(
                "MaxPostPreDataLengthExceeded",
                400,
                "Your POST request fields preceding the upload file were too large.",
            ));
        }
        if !form.fields.iter().any(|(k, _)| *k == name) {
            form.fields.push((name, value));
        }
    }
    let Some(mut file) = file else {
        return Err(S3Error::invalid_argument("POST requires exactly one file upload per request.", "file", "0"));
    };
    let filename = file.file_name().unwrap_or_default().to_string();
    let key = form
        .get("key")
        .ok_or_else(|| {
            S3Error::invalid_argument(
                "Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields.",
                "key",
                "",
            )
        })?
        .replace("${filename}", &filename);
    if key.is_empty() || key.len() > nimbus_objects::limits::MAX_KEY_BYTES {
        return Err(S3Error::new("KeyTooLongError", 400, "Your key is too long"));
    }
    let object = S3Request {
        operation: "PutObject",
        method: http::Method::PUT,
        resource: String::new(),
        path_style: req.path_style,
        bucket: Some(bucket.clone()),
        key: Some(key.clone()),
        query: Vec::new(),
    };
    // Who signed the policy, and may they put this key?
    let policy = form.get("policy").map(str::to_string);
    let signed = form
        .get("x-amz-signature")
        .map(|s| (form.get("x-amz-credential").unwrap_or(""), s))
        .or_else(|| form.get("signature").map(|s| (form.get("awsaccesskeyid").unwrap_or(""), s)));
    match (&state.keys, signed) {
        (None, _) => {}
        (Some(keys), Some((credential, signature))) => {
            let Some(policy) = &policy else {
                return Err(S3Error::invalid_argument(
                    "Bucket POST must contain a field named 'policy'.  If it is specified, please check the order of the fields.",
                    "policy",
                    "",
                ));
            };
            let caller = keys
                .authenticate_post_policy(credential, policy, signature, form.get("x-amz-security-token"), chrono::Utc::now())
                .map_err(|e| match e {
                    nimbus_identity::KeyError::Signature(nimbus_identity::sigv4::AuthError::UnknownKey) => {
                        S3Error::new("InvalidAccessKeyId", 403, "The AWS Access Key Id you provided does not exist in our records.")
                    }
                    _ => S3Error::new(
                        "SignatureDoesNotMatch",
                        403,
                        "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
                    ),
                })?;
            let home = state.accounts.get(&caller.principal.account).unwrap_or_else(|| state.clone());
            let action = crate::action::Action::S3(Box::new(object.clone()));
            if let Err(denied) = crate::authz::authorize(&home, state, &caller, &action, conn).await {
                return Ok(*denied);
            }
        }
        (Some(_), None) => {
            let resource = format!("arn:aws:s3:::{bucket}/{key}");
            if crate::authz::decide(state, crate::authz::Who::Anonymous, "s3:PutObject", &resource, &[], conn).await.is_err() {
                return Err(S3Error::new("AccessDenied", 403, "Access Denied"));
            }
        }
    }
    let length_range = match &policy {
        Some(p) => check_policy(p, &form, &bucket, &key, chrono::Utc::now())?,
        None => None,
    };
    // The file, streamed to a staging file.
    let mut staging = Some(store.stage(&[ChecksumAlgorithm::Crc64Nvme]).map_err(S3Error::internal)?);
    let mut pending: Vec<u8> = Vec::new();
    let max = length_range.map_or(nimbus_objects::limits::MAX_PUT_BYTES, |(_, max)| max);
    let mut size = 0u64;
    while let Some(chunk) = file.chunk().await.map_err(|_| malformed())? {
        size += chunk.len() as u64;
        if size > max {
            return Err(S3Error::new("EntityTooLarge", 400, "Your proposed upload exceeds the maximum allowed size")
                .with("MaxSizeAllowed", max.to_string()));
        }
        pending.extend_from_slice(&chunk);
        if pending.len() >= 1024 * 1024 {
            let (mut s, data) = (staging.take().expect("staging is back after each write"), std::mem::take(&mut pending));
            s = tokio::task::spawn_blocking(move || s.write(&data).map(|()| s))
                .await
                .map_err(S3Error::internal)?
                .map_err(S3Error::internal)?;
            staging = Some(s);
        }
    }
    if let Some((min, _)) = length_range.filter(|(min, _)| size < *min) {
        return Err(S3Error::new("EntityTooSmall", 400, "Your proposed upload is smaller than the minimum allowed size")
            .with("MinSizeAllowed", min.to_string()));
    }
    let s = staging.take().expect("staging is back after each write");
    let staged = tokio::task::spawn_blocking(move || {
        let mut s = s;
        s.write(&pending)?;
        s.finish()
    })
    .await
    .map_err(S3Error::internal)?
    .map_err(S3Error::internal)?;
    let meta = meta_from_form(&form);
    let put = store
        .put_object(&bucket, &key, staged, meta, Vec::new(), Some(ChecksumAlgorithm::Crc64Nvme), PutConditions::default(), "Post")
        .await
        .map_err(|e| S3Error::from_store(e, &object))?;
    state.object_events.notify_one();
    let location = format!("/{bucket}/{}", super::object::url_path(&key));
    let etag = quoted(&put.etag);
    let mut r = if let Some(redirect) = form.get("success_action_redirect").or_else(|| form.get("redirect")).filter(|r| !r.is_empty()) {
        let query = form_urlencoded(&[("bucket", &bucket), ("key", &key), ("etag", &etag)]);
        let sep = if redirect.contains('?') { '&' } else { '?' };
        let mut r = super::empty(StatusCode::SEE_OTHER);
        if let Ok(v) = HeaderValue::from_str(&format!("{redirect}{sep}{query}")) {
            r.headers_mut().insert(http::header::LOCATION, v);
        }
        r
    } else {
        match form.get("success_action_status") {
            Some("200") => super::empty(StatusCode::OK),
            Some("201") => {
                let xml = format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<PostResponse><Location>{}</Location><Bucket>{}</Bucket><Key>{}</Key><ETag>{}</ETag></PostResponse>",
                    escape(&location),
                    escape(&bucket),
                    escape(&key),
                    escape(&etag)
                );
                let mut r = crate::response::raw(StatusCode::CREATED, "application/xml", Bytes::from(xml));
                super::stamp(&mut r, &super::request_id());
                r
            }
            _ => super::empty(StatusCode::NO_CONTENT),
        }
    };
    for (name, value) in [("etag", Some(etag.clone())), ("location", Some(location)), ("x-amz-version-id", put.version_id.clone())] {
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            if name != "location" || !r.headers().contains_key(http::header::LOCATION) {
                r.headers_mut().insert(name, v);
            }
        }
    }
    Ok(r)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn form_urlencoded(pairs: &[(&str, &str)]) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    pairs.iter().map(|(k, v)| format!("{k}={}", percent_encoding::utf8_percent_encode(v, SET))).collect::<Vec<_>>().join("&")
}

/// What the form sets on the object: its content headers and `x-amz-meta-*` fields.
fn meta_from_form(form: &Form) -> ObjectMeta {
    let get = |n: &str| form.get(n).map(str::to_string);
    ObjectMeta {
        content_type: get("content-type"),
        content_encoding: get("content-encoding"),
        content_disposition: get("content-disposition"),
        content_language: get("content-language"),
        cache_control: get("cache-control"),
        expires: get("expires"),
        website_redirect_location: get("x-amz-website-redirect-location"),
        storage_class: get("x-amz-storage-class").filter(|c| c != "STANDARD"),
        user: form.fields.iter().filter_map(|(k, v)| k.strip_prefix("x-amz-meta-").map(|m| (m.to_string(), v.clone()))).collect(),
    }
}

/// Holds the form to its policy: not expired, every condition met, every field named by a
/// condition. The `content-length-range` the file must fit, if any.
fn check_policy(
    policy_b64: &str,
    form: &Form,
    bucket: &str,
    key: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<(u64, u64)>, S3Error> {
    let invalid = || S3Error::invalid_argument("Invalid Policy: Invalid JSON.", "policy", policy_b64);
    let text = base64::engine::general_purpose::STANDARD.decode(policy_b64.trim()).map_err(|_| invalid())?;
    let doc: Value = serde_json::from_slice(&text).map_err(|_| invalid())?;
    let expiration = doc["expiration"]
        .as_str()
        .ok_or_else(|| S3Error::invalid_argument("Invalid Policy: Policy missing expiration.", "policy", policy_b64))?;
    let expires = chrono::DateTime::parse_from_rfc3339(expiration).map_err(|_| {
        S3Error::invalid_argument(format!("Invalid Policy: Invalid 'expiration' value: '{expiration}'"), "policy", policy_b64)
    })?;
    if expires < now {
        return Err(denied_by_policy("Policy expired.".into()));
    }
    let conditions = doc["conditions"].as_array().cloned().unwrap_or_default();
    let value_of = |name: &str| -> String {
        match name {
            "bucket" => bucket.to_string(),
            "key" => key.to_string(),
            other => form.get(other).unwrap_or("").to_string(),
        }
    };
    let mut named: Vec<String> = Vec::new();
    let mut range = None;
    for c in &conditions {
        match c {
            Value::Object(map) => {
                for (name, want) in map {
                    let name = name.to_ascii_lowercase();
                    if value_of(&name) != want.as_str().unwrap_or_default() {
                        return Err(denied_by_policy(format!(
                            "Policy Condition failed: [\"eq\", \"${name}\", \"{}\"]",
                            want.as_str().unwrap_or_default()
                        )));
                    }
                    named.push(name);
                }
            }
            Value::Array(items) => {
                let op = items.first().and_then(Value::as_str).unwrap_or("").to_ascii_lowercase();
                if op == "content-length-range" {
                    let n = |i: usize| items.get(i).and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())));
                    range = Some((n(1).unwrap_or(0), n(2).unwrap_or(u64::MAX)));
                    continue;
                }
                let field = items.get(1).and_then(Value::as_str).unwrap_or("");
                let want = items.get(2).and_then(Value::as_str).unwrap_or("");
                let name = field.trim_start_matches('$').to_ascii_lowercase();
                let got = value_of(&name);
                let ok = match op.as_str() {
                    "eq" => got == want,
                    "starts-with" => got.starts_with(want),
                    _ => return Err(S3Error::invalid_argument(format!("Invalid Policy: Invalid Condition: {c}"), "policy", policy_b64)),
                };
                if !ok {
                    return Err(denied_by_policy(format!("Policy Condition failed: [\"{op}\", \"{field}\", \"{want}\"]")));
                }
                named.push(name);
            }
            _ => return Err(S3Error::invalid_argument("Invalid Policy: Invalid Condition.", "policy", policy_b64)),
        }
    }
    for (name, _) in &form.fields {
        let exempt = UNCHECKED.contains(&name.as_str()) || name.starts_with("x-ignore-") || name == "bucket";
        if !exempt && !named.contains(name) {
            return Err(denied_by_policy(format!("Extra input fields: {name}")));
        }
    }
    Ok(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(conditions: Value, expiration: &str) -> String {
        base64::engine::general_purpose::STANDARD
            .encode(serde_json::json!({"expiration": expiration, "conditions": conditions}).to_string())
    }

    #[test]
    fn forms_are_held_to_their_policies() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").expect("a time").with_timezone(&chrono::Utc);
        let later = "2026-01-01T01:00:00Z";
        let form = |fields: &[(&str, &str)]| Form { fields: fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() };
        type Want = Result<Option<(u64, u64)>, &'static str>;
        let cases: Vec<(Value, &str, Form, Want)> = vec![
            (serde_json::json!([{"bucket": "b"}, ["starts-with", "$key", "up/"]]), later, form(&[("key", "up/a")]), Ok(None)),
            (serde_json::json!([{"bucket": "b"}, ["starts-with", "$key", "up/"]]), later, form(&[("key", "x/a")]), Err("AccessDenied")),
            (serde_json::json!([{"bucket": "other"}, ["starts-with", "$key", ""]]), later, form(&[("key", "a")]), Err("AccessDenied")),
            (serde_json::json!([["starts-with", "$key", ""]]), "2025-12-31T00:00:00Z", form(&[("key", "a")]), Err("AccessDenied")),
            (
                serde_json::json!([["starts-with", "$key", ""]]),
                later,
                form(&[("key", "a"), ("content-type", "text/plain")]),
                Err("AccessDenied"),
            ),
            (
                serde_json::json!([["starts-with", "$key", ""], ["eq", "$Content-Type", "text/plain"], ["content-length-range", 1, 10]]),
                later,
                form(&[("key", "a"), ("content-type", "text/plain"), ("x-ignore-me", "1"), ("policy", "p")]),
                Ok(Some((1, 10))),
            ),
            (serde_json::json!([["between", "$key", ""]]), later, form(&[("key", "a")]), Err("InvalidArgument")),
        ];
        for (conditions, expiration, form, want) in cases {
            let got =
                check_policy(&policy(conditions.clone(), expiration), &form, "b", form.get("key").unwrap_or(""), now).map_err(|e| e.code);
            assert_eq!(got, want, "{conditions} {expiration}");
        }
    }
}

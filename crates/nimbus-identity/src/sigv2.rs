//! AWS Signature Version 2 for S3, server side: the form boto3 and the aws CLI still use to
//! presign S3 URLs in us-east-1 (`?AWSAccessKeyId=…&Signature=…&Expires=…`), and the older
//! `Authorization: AWS <key>:<signature>` header. The string to sign is S3's: the method,
//! `Content-MD5`, `Content-Type`, the date (or `Expires`), the `x-amz-*` headers, and the
//! resource with its sub-resources; the signature is a base64 HMAC-SHA1 of it.

use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use http::HeaderMap;
use percent_encoding::percent_decode_str;
use sha1::Sha1;

use crate::sigv4::AuthError;

type HmacSha1 = Hmac<Sha1>;

/// The query parameters S3 signs as part of the resource (botocore's list).
const SUB_RESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "defaultObjectAcl",
    "delete",
    "inventory",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "select",
    "select-type",
    "storageClass",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// A Signature Version 2 signature, read but not checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub access_key: String,
    /// Base64, as sent.
    pub signature: String,
    /// Presigned: the `Expires` epoch second; header form: None (the `Date` is signed).
    pub expires: Option<i64>,
    pub security_token: Option<String>,
}

fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let d = |s: &str| percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
            (d(k), d(v))
        })
        .collect()
}

/// Reads a V2 signature: the `Authorization: AWS key:sig` header or the presigned query.
/// None when the request carries neither.
pub fn read(headers: &HeaderMap, query: Option<&str>) -> Option<Signature> {
    let token = headers.get("x-amz-security-token").and_then(|v| v.to_str().ok()).map(str::to_string);
    if let Some(auth) = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (key, sig) = auth.strip_prefix("AWS ")?.trim().rsplit_once(':')?;
        return Some(Signature { access_key: key.to_string(), signature: sig.to_string(), expires: None, security_token: token });
    }
    let pairs = query_pairs(query);
    let get = |n: &str| pairs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let (key, sig, expires) = (get("AWSAccessKeyId")?, get("Signature")?, get("Expires")?);
    Some(Signature {
        access_key: key,
        signature: sig,
        expires: Some(expires.trim().parse().unwrap_or(0)),
        security_token: get("x-amz-security-token").or(token),
    })
}

/// S3's string to sign for a request: `resource` is the path with the bucket first (for a
/// virtual-hosted request, `/<bucket>` before its path), still percent-encoded as sent.
pub fn string_to_sign(method: &str, headers: &HeaderMap, query: Option<&str>, resource: &str, expires: Option<i64>) -> String {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::trim).unwrap_or("").to_string();
    let pairs = query_pairs(query);
    let date = match expires {
        Some(e) => e.to_string(),
        None if headers.contains_key("x-amz-date") => String::new(),
        None => header("date"),
    };
    let mut amz: Vec<(String, String)> = Vec::new();
    for (name, value) in headers {
        let n = name.as_str().to_ascii_lowercase();
        if n.starts_with("x-amz-") {
            let v = value.to_str().unwrap_or("").trim().to_string();
            match amz.iter_mut().find(|(k, _)| *k == n) {
                Some((_, existing)) => {
                    existing.push(',');
                    existing.push_str(&v);
                }
                None => amz.push((n, v)),
            }
        }
    }
    if expires.is_some() {
        for (k, v) in &pairs {
            let k = k.to_ascii_lowercase();
            if k.starts_with("x-amz-") && !amz.iter().any(|(n, _)| *n == k) {
                amz.push((k, v.clone()));
            }
        }
    }
    amz.sort();
    let (content_md5, content_type) = if expires.is_some() {
        let q = |n: &str| pairs.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone());
        (q("content-md5").unwrap_or_else(|| header("content-md5")), q("content-type").unwrap_or_else(|| header("content-type")))
    } else {
        (header("content-md5"), header("content-type"))
    };
    let mut s = format!("{}\n{content_md5}\n{content_type}\n{date}\n", method.to_ascii_uppercase());
    for (k, v) in amz {
        s.push_str(&format!("{k}:{v}\n"));
    }
    s.push_str(resource);
    let mut sub: Vec<(String, Option<String>)> = query
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| {
            let (k, v) = match kv.split_once('=') {
                Some((k, v)) => (k, Some(percent_decode_str(v).decode_utf8_lossy().into_owned())),
                None => (kv, None),
            };
            SUB_RESOURCES.contains(&k).then(|| (k.to_string(), v))
        })
        .collect();
    sub.sort_by(|a, b| a.0.cmp(&b.0));
    if !sub.is_empty() {
        s.push('?');
        let joined: Vec<String> = sub.into_iter().map(|(k, v)| v.map_or_else(|| k.clone(), |v| format!("{k}={v}"))).collect();
        s.push_str(&joined.join("&"));
    }
    s
}

/// Checks `sig` with `secret`: presigned URLs until `Expires`, header-signed requests within
/// 15 minutes of their date.
pub fn verify(
    sig: &Signature,
    secret: &str,
    method: &str,
    headers: &HeaderMap,
    query: Option<&str>,
    resource: &str,
    now: DateTime<Utc>,
) -> Result<(), AuthError> {
    match sig.expires {
        Some(expires) if now.timestamp() > expires => {
            return Err(AuthError::Expired(format!("Request has expired. Expired at {expires}, now {}", now.timestamp())))
        }
        Some(_) => {}
        None => {
            let date = headers
                .get("x-amz-date")
                .or_else(|| headers.get("date"))
                .and_then(|v| v.to_str().ok())
                .and_then(|d| DateTime::parse_from_rfc2822(d.trim()).ok())
                .ok_or_else(|| AuthError::Incomplete("AWS authentication requires a valid Date or x-amz-date header".into()))?;
            if (date.timestamp() - now.timestamp()).abs() > crate::sigv4::MAX_SKEW_SECS {
                return Err(AuthError::Expired("The difference between the request time and the current time is too large.".into()));
            }
        }
    }
    let string_to_sign = string_to_sign(method, headers, query, resource, sig.expires);
    let mut mac = HmacSha1::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(string_to_sign.as_bytes());
    let provided = base64::engine::general_purpose::STANDARD.decode(sig.signature.trim()).unwrap_or_default();
    mac.verify_slice(&provided).map_err(|_| AuthError::Mismatch { canonical_request: String::new(), string_to_sign })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).expect("a time")
    }

    /// URLs presigned by botocore 1.44's `HmacV1QueryAuth` with key `test`/`test`, expiring
    /// at 1800000000: each verifies as signed, and not for the other method.
    #[test]
    fn botocore_presigned_urls_verify() {
        let cases: &[(&str, &str, &str)] = &[
            ("GET", "/bkt/dir/a%20b.txt", "AWSAccessKeyId=test&Signature=iEOZGBGR%2BGtGJN%2FN1v5u0r2K60Q%3D&Expires=1800000000"),
            ("PUT", "/bkt/dir/a%20b.txt", "AWSAccessKeyId=test&Signature=VsohElewiua9zgbQrLB%2F0ouge9A%3D&Expires=1800000000"),
            (
                "GET",
                "/bkt/k",
                "versionId=v1&response-content-type=text%2Fplain&AWSAccessKeyId=test&Signature=A0XxYNEmmBy%2BoWq2tMfjkkdiZxw%3D&Expires=1800000000",
            ),
            (
                "PUT",
                "/bkt/k",
                "versionId=v1&response-content-type=text%2Fplain&AWSAccessKeyId=test&Signature=szZwdX5BM8UB6UMcwcw0EahhZi8%3D&Expires=1800000000",
            ),
            ("GET", "/bkt/up", "partNumber=2&uploadId=abc&AWSAccessKeyId=test&Signature=a9%2FETRmY3Wo2SbSuPeM6ZhGAIqA%3D&Expires=1800000000"),
            ("PUT", "/bkt/up", "partNumber=2&uploadId=abc&AWSAccessKeyId=test&Signature=SJneb4ThuBRIFevNjq5%2B%2BfjNjiU%3D&Expires=1800000000"),
        ];
        let headers = HeaderMap::new();
        for (method, path, query) in cases {
            let sig = read(&headers, Some(query)).expect("a V2 signature");
            assert_eq!((sig.access_key.as_str(), sig.expires), ("test", Some(1_800_000_000)));
            assert_eq!(verify(&sig, "test", method, &headers, Some(query), path, at(1_799_999_999)), Ok(()), "{method} {path}?{query}");
            let other = if *method == "GET" { "PUT" } else { "GET" };
            assert!(verify(&sig, "test", other, &headers, Some(query), path, at(1_799_999_999)).is_err(), "{other} {path}");
        }
    }

    #[test]
    fn signatures_are_checked_and_expire() {
        let headers = HeaderMap::new();
        let resource = "/bkt/k";
        let query = "versionId=v1&response-content-type=text%2Fplain&AWSAccessKeyId=test&Expires=2000";
        let sts = string_to_sign("GET", &headers, Some(query), resource, Some(2000));
        assert_eq!(sts, "GET\n\n\n2000\n/bkt/k?response-content-type=text/plain&versionId=v1");
        let mut mac = HmacSha1::new_from_slice(b"secret").expect("key");
        mac.update(sts.as_bytes());
        let good = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        let sig = Signature { access_key: "test".into(), signature: good, expires: Some(2000), security_token: None };
        assert_eq!(verify(&sig, "secret", "GET", &headers, Some(query), resource, at(1000)), Ok(()));
        assert!(matches!(verify(&sig, "other", "GET", &headers, Some(query), resource, at(1000)), Err(AuthError::Mismatch { .. })));
        assert!(matches!(verify(&sig, "secret", "GET", &headers, Some(query), "/bkt/x", at(1000)), Err(AuthError::Mismatch { .. })));
        assert!(matches!(verify(&sig, "secret", "GET", &headers, Some(query), resource, at(2001)), Err(AuthError::Expired(_))));
    }
}

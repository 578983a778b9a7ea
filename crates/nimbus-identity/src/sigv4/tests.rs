//! SigV4 verification: AWS's test-suite vectors, requests botocore signed (every form
//! Nimbus's clients use), and the ways a request is refused.

use super::*;
use base64::Engine;
use http::{HeaderName, HeaderValue};
use serde::Deserialize;

const SUITE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
    }
    h
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// AWS's SigV4 test suite: get-vanilla and post-vanilla (`host` and `x-amz-date` signed).
#[test]
fn aws_test_suite_vectors() {
    let cases = [
        ("GET", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        ("POST", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
    ];
    for (method, signature) in cases {
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature={signature}"
        );
        let h = headers(&[("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z"), ("Authorization", &auth)]);
        let req = Request { method, path: "/", query: None, headers: &h, body: b"" };
        let sig = read(&req).expect("reads");
        assert_eq!(
            sig.scope,
            Scope { access_key: "AKIDEXAMPLE".into(), date: "20150830".into(), region: "us-east-1".into(), service: "service".into() }
        );
        verify(&sig, SUITE_SECRET, &req, at("2015-08-30T12:40:00Z"), PathStyle::Normalized).unwrap_or_else(|e| panic!("{method}: {e:?}"));
        assert_eq!(sign(SUITE_SECRET, &sig, &req, PathStyle::Normalized), signature);
    }
}

#[derive(Deserialize)]
struct Case {
    name: String,
    style: String,
    method: String,
    path: String,
    query: Option<String>,
    headers: Vec<(String, String)>,
    body: String,
    secret: String,
    now: String,
}

fn botocore_cases() -> Vec<(Case, HeaderMap, Vec<u8>)> {
    let cases: Vec<Case> = serde_json::from_str(include_str!("../../fixtures/botocore-signed.json")).expect("fixtures");
    cases
        .into_iter()
        .map(|c| {
            let pairs: Vec<(&str, &str)> = c.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let h = headers(&pairs);
            let body = base64::engine::general_purpose::STANDARD.decode(&c.body).unwrap();
            (c, h, body)
        })
        .collect()
}

fn style(c: &Case) -> PathStyle {
    if c.style == "s3" {
        PathStyle::S3
    } else {
        PathStyle::Normalized
    }
}

#[test]
fn botocore_signed_requests_verify() {
    let cases = botocore_cases();
    assert!(cases.len() >= 10);
    for (c, h, body) in &cases {
        let req = Request { method: &c.method, path: &c.path, query: c.query.as_deref(), headers: h, body };
        let sig = read(&req).unwrap_or_else(|e| panic!("{}: {e:?}", c.name));
        assert_eq!(sig.scope.access_key, "AKIDNIMBUSEXAMPLE", "{}", c.name);
        if let Err(e) = verify(&sig, &c.secret, &req, at(&c.now), style(c)) {
            panic!("{}: {e:?}", c.name);
        }
    }
}

/// From the head alone: S3's requests say what their body must be; the others, whose payload
/// hash is their body's, cannot be checked without it.
#[test]
fn botocore_signed_heads_verify_without_their_bodies() {
    for (c, h, body) in &botocore_cases() {
        let req = Request { method: &c.method, path: &c.path, query: c.query.as_deref(), headers: h, body: b"" };
        let sig = read(&req).unwrap();
        let got = verify_head(&sig, &c.secret, &req, at(&c.now), style(c), MAX_SKEW_SECS);
        match h.get("x-amz-content-sha256") {
            Some(_) => assert_eq!(got, Ok(BodyCheck::Sha256(Sha256::digest(body).into())), "{}", c.name),
            None if c.style == "s3" => assert_eq!(got, Ok(BodyCheck::None), "{}", c.name),
            None => assert_eq!(got, Err(AuthError::Invalid(MISSING_CONTENT_SHA256.into())), "{}", c.name),
        }
        let other_secret = verify_head(&sig, "another secret", &req, at(&c.now), style(c), MAX_SKEW_SECS);
        assert!(other_secret.is_err(), "{}", c.name);
    }
}

#[test]
fn tampering_breaks_every_botocore_signature() {
    for (c, h, body) in &botocore_cases() {
        let now = at(&c.now);
        let check = |req: &Request<'_>, secret: &str| read(req).and_then(|sig| verify(&sig, secret, req, now, style(c)));
        let req = Request { method: &c.method, path: &c.path, query: c.query.as_deref(), headers: h, body };
        assert!(matches!(check(&req, "another secret"), Err(AuthError::Mismatch { .. })), "{}: wrong secret", c.name);
        // Another method, another path, another query.
        let other = Request { method: if c.method == "GET" { "DELETE" } else { "GET" }, ..req };
        assert!(matches!(check(&other, &c.secret), Err(AuthError::Mismatch { .. })), "{}: method", c.name);
        let path = format!("{}x", c.path);
        let other = Request { path: &path, ..req };
        assert!(matches!(check(&other, &c.secret), Err(AuthError::Mismatch { .. })), "{}: path", c.name);
        let query = format!("{}&extra=1", c.query.clone().unwrap_or_default());
        let other = Request { query: Some(&query), ..req };
        assert!(matches!(check(&other, &c.secret), Err(AuthError::Mismatch { .. })), "{}: query", c.name);
        // A signed header changed (Host is signed everywhere).
        let mut h2 = h.clone();
        h2.insert("host", HeaderValue::from_static("evil.example:9001"));
        let other = Request { headers: &h2, ..req };
        assert!(matches!(check(&other, &c.secret), Err(AuthError::Mismatch { .. })), "{}: host", c.name);
        // Another body: refused unless the client said the payload is unsigned.
        if !body.is_empty() {
            let unsigned = h.get("x-amz-content-sha256").is_some_and(|v| v == UNSIGNED_PAYLOAD);
            let other = Request { body: b"another body", ..req };
            let r = check(&other, &c.secret);
            if unsigned {
                assert!(r.is_ok(), "{}: an unsigned payload may change", c.name);
            } else {
                assert!(matches!(r, Err(AuthError::Mismatch { .. }) | Err(AuthError::ContentSha256Mismatch)), "{}: body: {r:?}", c.name);
            }
        }
        // Outside the clock window.
        let late = now + chrono::Duration::minutes(16);
        let r = read(&req).and_then(|sig| verify(&sig, &c.secret, &req, late, style(c)));
        assert!(matches!(r, Err(AuthError::Expired(_))), "{}: late: {r:?}", c.name);
    }
}

#[test]
fn refusals_name_what_is_wrong() {
    let now = at("2026-12-03T11:00:00Z");
    type Case<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>, AuthError);
    let cases: &[Case] = &[
        (&[("Host", "h")], None, AuthError::Missing),
        (&[("Host", "h")], Some("a=1"), AuthError::Missing),
        (
            &[("Host", "h"), ("X-Amz-Date", "20261203T110000Z"), ("Authorization", "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=ab")],
            None,
            AuthError::Incomplete(
                "Authorization header requires 'Credential' parameter. Authorization=AWS4-HMAC-SHA256 SignedHeaders=host, Signature=ab".into(),
            ),
        ),
        (
            &[("Host", "h"), ("Authorization", "AWS4-HMAC-SHA256 Credential=K/20261203/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=ab")],
            None,
            AuthError::Incomplete(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=AWS4-HMAC-SHA256 Credential=K/20261203/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=ab".into(),
            ),
        ),
        (
            &[("Host", "h"), ("X-Amz-Date", "20261203T110000Z"), ("Authorization", "AWS K:signature")],
            None,
            AuthError::Missing,
        ),
        (
            &[("Host", "h"), ("X-Amz-Date", "20261203T110000Z"), ("Authorization", "AWS4-HMAC-SHA1 Credential=a")],
            None,
            AuthError::Incomplete("Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA1' (only AWS4-HMAC-SHA256 for now). ".into()),
        ),
        (
            &[("Host", "h"), ("X-Amz-Date", "20261203T110000Z"), ("Authorization", "AWS4-HMAC-SHA256 Credential=a/b/c/d, SignedHeaders=host, Signature=ab")],
            None,
            AuthError::Incomplete("Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'a/b/c/d'".into()),
        ),
        (
            &[("Host", "h"), ("X-Amz-Date", "20261203T110000Z"), ("Authorization", "AWS4-HMAC-SHA256 Credential=K/20261203/us-east-1/lambda/aws4_request, SignedHeaders=x-amz-date, Signature=ab")],
            None,
            AuthError::Invalid("'Host' must be a 'SignedHeader' in the AWS Authorization.".into()),
        ),
        (
            &[("Host", "h"), ("X-Amz-Date", "20261203T110000Z"), ("Authorization", "AWS4-HMAC-SHA256 Credential=K/20261202/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=ab")],
            None,
            AuthError::Invalid("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20261202' != '20261203', from '20261203T110000Z'.".into()),
        ),
        (
            &[("Host", "h"), ("X-Amz-Date", "20261203T110000Z"), ("Authorization", "AWS4-HMAC-SHA256 Credential=K/20261203/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=ab")],
            Some("X-Amz-Algorithm=AWS4-HMAC-SHA256"),
            AuthError::Invalid("Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.".into()),
        ),
        (
            &[("Host", "h")],
            Some("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=K%2F20261203%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261203T110000Z&X-Amz-SignedHeaders=host&X-Amz-Signature=ab"),
            AuthError::Incomplete("AWS query-string parameters must include 'X-Amz-Expires'. Re-examine the query-string parameters.".into()),
        ),
    ];
    for (h, query, want) in cases {
        let h = headers(h);
        let req = Request { method: "GET", path: "/", query: *query, headers: &h, body: b"" };
        let got = read(&req).and_then(|sig| verify(&sig, "s", &req, now, PathStyle::Normalized));
        assert_eq!(&got.unwrap_err(), want, "{h:?} {query:?}");
    }
}

#[test]
fn expiry_texts_are_aws_words() {
    let h = headers(&[
        ("Host", "h"),
        ("X-Amz-Date", "20261203T110000Z"),
        (
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=K/20261203/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
        ),
    ]);
    let req = Request { method: "GET", path: "/", query: None, headers: &h, body: b"" };
    let sig = read(&req).unwrap();
    assert_eq!(
        verify(&sig, "s", &req, at("2026-12-03T11:30:00Z"), PathStyle::Normalized),
        Err(AuthError::Expired(
            "Signature expired: 20261203T110000Z is now earlier than 20261203T111500Z (20261203T113000Z - 15 min.)".into()
        ))
    );
    assert_eq!(
        verify(&sig, "s", &req, at("2026-12-03T10:30:00Z"), PathStyle::Normalized),
        Err(AuthError::Expired(
            "Signature not yet current: 20261203T110000Z is still later than 20261203T104500Z (20261203T103000Z + 15 min.)".into()
        ))
    );
}

/// The basic-form date is read and written without chrono's format strings, exactly as
/// chrono reads and writes it; anything else goes the slow way, as before.
#[test]
fn basic_dates_read_and_write_as_chrono_does() {
    let slow = |s: &str| NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%SZ").ok().map(|t| t.and_utc());
    // (text, whether the fast path takes it)
    let cases = [
        ("20150830T123600Z", true),
        ("20241231T235959Z", true),
        ("00010101T000000Z", true),
        ("99991231T235959Z", true),
        ("20240229T120000Z", true),
        ("20230229T120000Z", false), // no such day
        ("20150830T246000Z", false),
        ("20150830T123660Z", false), // a leap second: chrono's own reading
        ("20150830 123600Z", false),
        ("20150830T123600", false),
        ("2015083T123600Z0", false),
        ("2015-08-30T12:36:00Z", false),
        ("+2015830T123600Z", false),
        ("Sun, 30 Aug 2015 12:36:00 GMT", false),
        // HTTP dates whose UTC year has five digits, or is before year 0.
        ("Fri, 31 Dec 9999 23:30:00 -0100", false),
        ("Sat, 01 Jan 0000 00:30:00 +0100", false),
        ("", false),
    ];
    for (text, fast) in cases {
        assert_eq!(parse_basic(text).is_some(), fast, "{text}");
        if fast {
            assert_eq!(parse_basic(text), slow(text), "{text}");
        }
        match parse_date(text) {
            Ok(at) => assert_eq!(&*basic_date(at), at.format("%Y%m%dT%H%M%SZ").to_string(), "{text}"),
            Err(_) => assert!(slow(text).is_none() && DateTime::parse_from_rfc2822(text).is_err(), "{text}"),
        }
    }
}

/// A derived signing key remembered for a scope is the one the chain derives, and another
/// secret, day, region or service gets its own.
#[test]
fn remembered_signing_keys_are_the_derived_ones() {
    let scope = |d: &str, r: &str, s: &str| Scope { access_key: "AKID".into(), date: d.into(), region: r.into(), service: s.into() };
    let cases = [
        ("secret", scope("20150830", "us-east-1", "lambda")),
        ("secret", scope("20150830", "us-east-1", "lambda")),
        ("other", scope("20150830", "us-east-1", "lambda")),
        ("secret", scope("20150831", "us-east-1", "lambda")),
        ("secret", scope("20150830", "eu-west-1", "lambda")),
        ("secret", scope("20150830", "us-east-1", "sqs")),
    ];
    for _ in 0..2 {
        for (secret, scope) in &cases {
            assert_eq!(cached_signing_key(secret, scope), signing_key(secret, scope), "{secret} {scope:?}");
        }
    }
    // More scopes than are kept: the oldest are derived again, still right.
    for day in 10..30 {
        let s = scope(&format!("201508{day}"), "us-east-1", "lambda");
        assert_eq!(cached_signing_key("secret", &s), signing_key("secret", &s));
    }
    assert_eq!(cached_signing_key("secret", &cases[0].1), signing_key("secret", &cases[0].1));
}

//! Measures authenticating one request as the edge does it: reading the signature, finding
//! the key, rebuilding the canonical request and checking the HMAC chain, for a Lambda
//! Invoke as boto3 signs it (8 headers, 40-byte body). Run with `cargo bench -p nimbus-identity`.

use std::hint::black_box;
use std::time::Instant;

use http::{HeaderMap, HeaderValue};
use nimbus_identity::sigv4::{self, PathStyle, Request};
use nimbus_identity::Keys;

fn main() {
    let dir = std::env::temp_dir().join(format!("nimbus-identity-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (keys, _) = Keys::open(&dir, Some(("AKIABENCH".into(), "bench-secret".into())), "000000000000").unwrap();
    let now = chrono::Utc::now();
    let body = br#"{"orderId": "1234567890", "amount": 42}"#;
    let path = "/2015-03-31/functions/orders-api/invocations";
    let mut h = HeaderMap::new();
    for (k, v) in [
        ("host", "127.0.0.1:9001"),
        ("content-type", "application/json"),
        ("user-agent", "Boto3/1.40.0 md/Botocore#1.44.8 ua/2.1 os/linux#6.18 md/arch#x86_64 lang/python#3.11.2"),
        ("x-amz-invocation-type", "RequestResponse"),
        ("x-amz-log-type", "None"),
        ("amz-sdk-invocation-id", "0b5c6a0e-6d8c-4f2e-9a55-6f1e0f3c2d11"),
        ("amz-sdk-request", "attempt=1"),
        ("content-length", "41"),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    let added = {
        let unsigned = Request { method: "POST", path, query: Some("Qualifier=live"), headers: &h, body };
        sigv4::sign_request("AKIABENCH", "bench-secret", None, "us-east-1", "lambda", &unsigned, now)
    };
    for (k, v) in added {
        h.insert(k, HeaderValue::from_str(&v).unwrap());
    }
    let req = Request { method: "POST", path, query: Some("Qualifier=live"), headers: &h, body };
    keys.authenticate(&req, now, PathStyle::Normalized).expect("verifies");
    let mut best = f64::MAX;
    for _ in 0..5 {
        let n: u32 = 50_000;
        let t = Instant::now();
        for _ in 0..n {
            black_box(keys.authenticate(black_box(&req), now, PathStyle::Normalized).is_ok());
        }
        best = best.min(t.elapsed().as_nanos() as f64 / f64::from(n));
    }
    println!(
        "SigV4 verification of a signed Invoke (read, key lookup, canonical request, HMAC chain): {best:.0} ns (best of 5 runs of 50,000)"
    );
    // The floor: the hashing no verifier can skip (the body's SHA-256, the canonical
    // request's, one HMAC with a derived key), over strings of the same lengths.
    use hmac::Mac;
    use sha2::Digest;
    let canonical = "x".repeat(520);
    let to_sign = "y".repeat(130);
    let mut floor = f64::MAX;
    for _ in 0..5 {
        let n: u32 = 50_000;
        let t = Instant::now();
        for _ in 0..n {
            black_box(sha2::Sha256::digest(black_box(body)));
            black_box(sha2::Sha256::digest(black_box(canonical.as_bytes())));
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(black_box(&[7u8; 32])).unwrap();
            mac.update(black_box(to_sign.as_bytes()));
            black_box(mac.finalize());
        }
        floor = floor.min(t.elapsed().as_nanos() as f64 / f64::from(n));
    }
    println!("floor: the hashing alone (body and canonical request SHA-256, one HMAC): {floor:.0} ns");
    let _ = std::fs::remove_dir_all(&dir);
}

//! Bounded fuzzing of every decoder, on every vendored model: random bytes, and valid
//! requests (from the model's own examples) mutated byte by byte, go through the awsJson,
//! awsQuery and rest-json decoders. A decoder may refuse anything; it must never panic.
//! `NIMBUS_FUZZ_SECONDS` sets the budget (default 3 s), `NIMBUS_FUZZ_SEED` the seed.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::decode;
use crate::model::Model;
use crate::rest::{query_pairs, rest_json, rest_xml, HttpRequest, Router};

/// xorshift64*: small, fast, reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = self.below(max + 1);
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Tokens that make mutations likely to reach deep into a decoder.
const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"null",
    b"true",
    b"-1",
    b"1e999",
    b"\"\\u0000\"",
    b"%",
    b"%zz",
    b".",
    b"&",
    b"=",
    b"{}",
    b"[]",
];

fn mutate(rng: &mut Rng, valid: &[u8]) -> Vec<u8> {
    let mut v = valid.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(5) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            1 => v.splice(at..at, TOKENS[rng.below(TOKENS.len())].iter().copied()).for_each(drop),
            2 => v.truncate(at),
            3 if at < v.len() => {
                let end = (at + rng.below(16)).min(v.len());
                v.drain(at..end);
            }
            _ => {
                let extra = rng.bytes(8);
                v.splice(at..at, extra).for_each(drop);
            }
        }
    }
    v
}

/// `a.b=1&c.member.1=x` pairs for an example input (the query protocol's spelling).
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    let key = |k: &str| if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") };
    match v {
        Value::Object(o) => o.iter().for_each(|(k, v)| flatten(&key(k), v, out)),
        Value::Array(a) => a.iter().enumerate().for_each(|(i, v)| flatten(&key(&format!("member.{}", i + 1)), v, out)),
        Value::String(s) => out.push((prefix.to_string(), s.clone())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `f`, failing the test with the case that made it panic.
fn no_panic(case: impl FnOnce() -> String, f: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(f)).is_err() {
        panic!("a decoder panicked on: {}", case());
    }
}

fn fuzz_model(rng: &mut Rng, model: &Model, router: Option<&Router>) {
    let methods = [http::Method::GET, http::Method::POST, http::Method::PUT, http::Method::DELETE, http::Method::PATCH];
    for (name, op) in &model.operations {
        let Some(input) = &op.input else { continue };
        let example = serde_json::to_vec(&model.example(input, 4)).expect("serializes");
        let body = if rng.below(3) == 0 { rng.bytes(64) } else { mutate(rng, &example) };
        no_panic(|| format!("json {name} {}", lossy(&body)), || drop(decode::json(model, name, &body)));

        let cbor_example = crate::cbor::to_bytes(&crate::cbor::write(model, input, &model.example(input, 4)));
        let body = if rng.below(3) == 0 { rng.bytes(64) } else { mutate(rng, &cbor_example) };
        no_panic(|| format!("cbor {name} {body:?}"), || drop(decode::cbor(model, name, &body)));

        let mut pairs = Vec::new();
        flatten("", &model.example(input, 4), &mut pairs);
        for p in pairs.iter_mut() {
            if rng.below(3) == 0 {
                p.1 = lossy(&mutate(rng, p.1.as_bytes()));
            }
            if rng.below(6) == 0 {
                p.0 = lossy(&mutate(rng, p.0.as_bytes()));
            }
        }
        no_panic(|| format!("query {name} {pairs:?}"), || drop(decode::query(model, name, &pairs)));
        no_panic(|| format!("ec2 {name} {pairs:?}"), || drop(decode::ec2(model, name, &pairs)));

        let Some(router) = router else { continue };
        // The operation's own URI with random labels, or a mutation of it.
        let uri = op.http.request_uri.replace(['{', '}'], "");
        let uri = if rng.below(2) == 0 { lossy(&mutate(rng, uri.as_bytes())) } else { uri };
        let (path, query) = uri.split_once('?').map(|(p, q)| (p.to_string(), Some(q.to_string()))).unwrap_or((uri.clone(), None));
        let query = query_pairs(query.as_deref());
        let method = methods[rng.below(methods.len())].clone();
        let mut headers = http::HeaderMap::new();
        for _ in 0..rng.below(3) {
            let value = lossy(&rng.bytes(12));
            if let Ok(v) = http::HeaderValue::from_str(&value) {
                let names =
                    ["x-amz-invocation-type", "x-amz-log-type", "x-amz-client-context", "content-type", "x-amz-copy-source", "content-md5"];
                headers.insert(names[rng.below(names.len())], v);
            }
        }
        let xml = model.metadata.protocol == "rest-xml";
        let example = if xml {
            let mut w = crate::xml::Xml::new();
            crate::xml::write_root(&mut w, model, "Root", None, input, &model.example(input, 4));
            w.finish()
        } else {
            example
        };
        let body = bytes::Bytes::from(if rng.below(3) == 0 { rng.bytes(64) } else { mutate(rng, &example) });
        no_panic(
            || format!("rest {method} {path} {query:?} {}", lossy(&body)),
            || {
                if let Some(m) = router.find_with_headers(&method, &path, &query, &headers) {
                    let req = HttpRequest { headers: &headers, query: &query, body: &body };
                    drop(if xml { rest_xml(model, &m, &req) } else { rest_json(model, &m, &req) });
                }
            },
        );
    }
}

#[test]
fn decoders_never_panic_on_hostile_input() {
    let seconds = std::env::var("NIMBUS_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let seed = std::env::var("NIMBUS_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x9e37_79b9_7f4a_7c15u64);
    let mut rng = Rng(seed | 1);
    let models = crate::all_models();
    let routers: Vec<Option<Router>> =
        models.iter().map(|(_, m)| matches!(m.metadata.protocol.as_str(), "rest-json" | "rest-xml").then(|| Router::new(m))).collect();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut rounds = 0;
    while Instant::now() < deadline {
        for ((_, model), router) in models.iter().zip(&routers) {
            fuzz_model(&mut rng, model, router.as_ref());
        }
        rounds += 1;
    }
    assert!(rounds > 0, "no round ran");
    println!("fuzzed {rounds} rounds over {} models (seed {seed})", models.len());
}

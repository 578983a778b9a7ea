//! `--protocol`: the protocol layer's per-request cost in-process, next to the cost of merely
//! parsing the same body as JSON (the floor any decoder pays): route + decode of an Invoke
//! (rest-json: URI label, query, headers, raw payload) and of a SendMessage (awsJson 1.0,
//! checked against SQS's model), and the rest-json encoding of an Invoke answer.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use nimbus_protocol::rest::{query_pairs, rest_json, HttpRequest, Router};
use nimbus_protocol::{decode, encode, LAMBDA, SQS};

/// Runs `f` for about `seconds` and returns the mean time per call.
fn time(seconds: u64, mut f: impl FnMut()) -> Duration {
    for _ in 0..1_000 {
        f();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(seconds) {
        for _ in 0..1_000 {
            f();
        }
        n += 1_000;
    }
    start.elapsed() / u32::try_from(n).unwrap_or(u32::MAX)
}

pub fn bench(seconds: u64) {
    let router = Router::new(LAMBDA.model());
    let payload = Bytes::from_static(br#"{"key1":"value1","key2":"value2","key3":{"nested":[1,2,3]}}"#);
    let mut headers = HeaderMap::new();
    headers.insert("x-amz-invocation-type", HeaderValue::from_static("RequestResponse"));
    headers.insert("x-amz-log-type", HeaderValue::from_static("None"));
    let invoke = time(seconds, || {
        let query = query_pairs(Some("Qualifier=live"));
        let m = router.find(&Method::POST, "/2015-03-31/functions/echo/invocations", &query).expect("routes");
        let input = rest_json(LAMBDA.model(), &m, &HttpRequest { headers: &headers, query: &query, body: &payload }).expect("decodes");
        std::hint::black_box(input.parse_with_payload::<serde_json::Value>().expect("parses"));
    });
    let route = time(seconds, || {
        let query = query_pairs(Some("Qualifier=live"));
        std::hint::black_box(router.find(&Method::POST, "/2015-03-31/functions/echo/invocations", &query).expect("routes"));
    });
    let invoke_floor = time(seconds, || {
        std::hint::black_box(serde_json::from_slice::<serde::de::IgnoredAny>(&payload).expect("json"));
    });
    let send = br#"{"QueueUrl":"http://127.0.0.1:9001/000000000000/q","MessageBody":"hello world","MessageAttributes":{"a":{"DataType":"String","StringValue":"b"}}}"#;
    let sqs = time(seconds, || {
        let input = decode::json(SQS.model(), "SendMessage", send).expect("decodes");
        std::hint::black_box(input.parse::<serde_json::Value>().expect("parses"));
    });
    let sqs_floor = time(seconds, || {
        std::hint::black_box(serde_json::from_slice::<serde_json::Value>(send).expect("json"));
    });
    let out = serde_json::json!({"StatusCode": 200, "ExecutedVersion": "1"});
    let answer = time(seconds, || {
        std::hint::black_box(encode::rest(&LAMBDA, "Invoke", &out, Some((payload.clone(), "application/json")), "rid"));
    });
    println!("| protocol layer, in-process | per request | plain JSON parse of the same body |");
    println!("|---|---|---|");
    println!("| Invoke: route + rest-json decode | {:.2} µs | {:.2} µs |", micros(invoke), micros(invoke_floor));
    println!("| of which routing (Lambda's 91 bindings) | {:.2} µs | |", micros(route));
    println!("| SendMessage: awsJson decode + model check | {:.2} µs | {:.2} µs |", micros(sqs), micros(sqs_floor));
    println!("| Invoke answer: rest-json encode | {:.2} µs | |", micros(answer));
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

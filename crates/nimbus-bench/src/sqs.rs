//! The SQS benchmark: SendMessage, and ReceiveMessage + DeleteMessage, through the real HTTP
//! API (JSON 1.0 protocol, as current SDKs speak it) at concurrency 1 and 16.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use serde_json::{json, Value};

use crate::{connect, pct, us};

pub(crate) async fn sqs(s: &mut SendRequest<Full<Bytes>>, action: &str, body: Value) -> anyhow::Result<Value> {
    let body = Bytes::from(body.to_string());
    let mut req = http::Request::builder()
        .method("POST")
        .uri("/")
        .header("host", "bench")
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", format!("AmazonSQS.{action}"))
        .body(Full::new(body.clone()))?;
    crate::sign(&mut req, &body, "sqs");
    s.ready().await?;
    let resp = s.send_request(req).await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    if status != 200 {
        bail!("{action}: {status} {}", String::from_utf8_lossy(&body));
    }
    Ok(serde_json::from_slice(&body)?)
}

/// One unit of work: a send, or a receive of one message and its delete. Returns the
/// messages handled (0 when the queue was empty).
async fn step(s: &mut SendRequest<Full<Bytes>>, url: &str, receive: bool, body: &str) -> anyhow::Result<usize> {
    if !receive {
        sqs(s, "SendMessage", json!({"QueueUrl": url, "MessageBody": body})).await?;
        return Ok(1);
    }
    let got = sqs(s, "ReceiveMessage", json!({"QueueUrl": url, "MaxNumberOfMessages": 1})).await?;
    let Some(m) = got["Messages"].as_array().and_then(|a| a.first()) else { return Ok(0) };
    let receipt = m["ReceiptHandle"].as_str().unwrap_or_default();
    sqs(s, "DeleteMessage", json!({"QueueUrl": url, "ReceiptHandle": receipt})).await?;
    Ok(1)
}

struct Run {
    per_sec: f64,
    p50: Duration,
    p99: Duration,
}

async fn load(addr: &str, url: &str, receive: bool, concurrency: usize, seconds: u64, body: &str) -> anyhow::Result<Run> {
    let barrier = Arc::new(tokio::sync::Barrier::new(concurrency + 1));
    let drained = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (addr, url, body, barrier, drained) = (addr.to_string(), url.to_string(), body.to_string(), barrier.clone(), drained.clone());
        tasks.push(tokio::spawn(async move {
            let mut s = connect(&addr).await?;
            barrier.wait().await;
            let end = Instant::now() + Duration::from_secs(seconds);
            let mut lat = Vec::new();
            while Instant::now() < end && !drained.load(Ordering::Relaxed) {
                let t = Instant::now();
                if step(&mut s, &url, receive, &body).await? == 0 {
                    drained.store(true, Ordering::Relaxed);
                    break;
                }
                lat.push(t.elapsed());
            }
            anyhow::Ok(lat)
        }));
    }
    barrier.wait().await;
    let started = Instant::now();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    if all.is_empty() {
        bail!("no requests completed");
    }
    all.sort();
    Ok(Run { per_sec: all.len() as f64 / elapsed, p50: pct(&all, 0.5), p99: pct(&all, 0.99) })
}

/// Runs the SQS benchmark against the server at `addr` and prints a Markdown table.
pub async fn bench(addr: &str, seconds: u64) -> anyhow::Result<()> {
    let mut s = connect(addr).await?;
    let created = sqs(&mut s, "CreateQueue", json!({"QueueName": "bench"})).await?;
    let url = created["QueueUrl"].as_str().unwrap_or_default().to_string();
    let body = "x".repeat(256);
    println!("\n| SQS, 256-byte messages, JSON protocol | p50 | p99 | messages/s |");
    println!("|---|---|---|---|");
    for c in [1, 16] {
        let r = load(addr, &url, false, c, seconds, &body).await?;
        println!("| SendMessage, concurrency {c} | {} | {} | {:.0} |", us(r.p50), us(r.p99), r.per_sec);
    }
    for c in [1, 16] {
        let r = load(addr, &url, true, c, seconds, &body).await?;
        println!("| ReceiveMessage + DeleteMessage, concurrency {c} | {} | {} | {:.0} |", us(r.p50), us(r.p99), r.per_sec);
    }
    Ok(())
}

//! `nimbus-bench --streams` (issue 16): Kinesis and DynamoDB through the real HTTP API,
//! signed as an SDK signs, each number next to a floor measured in the same run.
//!
//! 1. Kinesis PutRecords (500 records of 100 bytes a request, concurrency 8) and PutRecord
//!    (concurrency 32) on a stream of 4 shards (AWS's per-shard limit of 1,000 records/s
//!    applies: throttled records are counted apart) and on one of 256 shards (where the limit
//!    is out of reach); GetRecords reading everything back from TRIM_HORIZON, Limit 10,000.
//! 2. DynamoDB PutItem, GetItem and Query (a partition of 100 items, Limit 25), concurrency 32.
//!
//!    Floors of 1 and 2: a raw loopback hyper server on two threads of its own sent the very
//!    same signed requests (answering each with as many bytes as the server's answers had on
//!    average), and the data directory's serial `fdatasync` rate.
//! 3. Records/s through a Kinesis trigger (BatchSize 100) to a warm `provided` function
//!    (`nimbus-bench-beacon` with `BEACON_COUNT`: one log line per batch with the batch's
//!    record count and the wall clock at which `/next` handed it over). The stream (4 shards)
//!    is filled first (puts are capped by the shard limit at 4,000 records/s, so a live run
//!    would measure the limit), then the mapping is created at TRIM_HORIZON; the bench sums
//!    the counts from the function's log group and reports records / (time of the line that
//!    completes the count − the mapping's creation answer), and the same from the first
//!    batch (without the mapping's start-up).
//! 4. From an acknowledged write to the function's invocation: a Kinesis PutRecord and a
//!    DynamoDB PutItem (table stream + mapping, both LATEST, BatchSize 100), interleaved
//!    with `InvocationType: Event` invokes of the same function (the floor), one at a time,
//!    `--streams-spacing-ms` apart; the beacon's wall clock minus the client's at the ack.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;

use crate::{call, connect, cpu_ns, pct, sign, us, zip_files};

pub(crate) struct StreamsArgs {
    pub seconds: u64,
    pub records: usize,
    pub writes: usize,
    pub spacing_ms: u64,
    pub beacon: std::path::PathBuf,
}

const FLOOR_THREADS: &str = "streams-floor";
const KINESIS: (&str, &str, &str) = ("application/x-amz-json-1.1", "kinesis", "Kinesis_20131202");
const DYNAMO: (&str, &str, &str) = ("application/x-amz-json-1.0", "dynamodb", "DynamoDB_20120810");

fn stream_arn(name: &str) -> String {
    format!("arn:aws:kinesis:us-east-1:000000000000:stream/{name}")
}

fn json_request(api: (&str, &str, &str), action: &str, body: Bytes) -> anyhow::Result<http::Request<Full<Bytes>>> {
    let mut req = http::Request::builder()
        .method("POST")
        .uri("/")
        .header("host", "bench")
        .header("content-type", api.0)
        .header("x-amz-target", format!("{}.{action}", api.2))
        .body(Full::new(body.clone()))?;
    sign(&mut req, &body, api.1);
    Ok(req)
}

async fn json_call(
    s: &mut SendRequest<Full<Bytes>>,
    api: (&str, &str, &str),
    action: &str,
    body: serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let req = json_request(api, action, Bytes::from(body.to_string()))?;
    s.ready().await?;
    let resp = s.send_request(req).await?;
    let status = resp.status().as_u16();
    let b = resp.into_body().collect().await?.to_bytes();
    if status != 200 {
        bail!("{action}: {status} {}", String::from_utf8_lossy(&b));
    }
    Ok(if b.is_empty() { serde_json::Value::Null } else { serde_json::from_slice(&b)? })
}

/// A raw loopback HTTP server on two threads of its own: reads each request's body and
/// answers 200 with `size` bytes (set before each run).
fn floor_server(size: Arc<AtomicUsize>) -> anyhow::Result<String> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name(FLOOR_THREADS).enable_all().build()?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?.to_string();
    listener.set_nonblocking(true)?;
    std::thread::spawn(move || {
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let size = size.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let n = size.load(Ordering::Relaxed);
                        async move {
                            let _ = req.into_body().collect().await;
                            Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(vec![b'x'; n]))))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(stream), svc).await;
                });
            }
        })
    });
    Ok(addr)
}

type Make = Arc<dyn Fn(usize, usize) -> anyhow::Result<http::Request<Full<Bytes>>> + Send + Sync>;
/// Checks an answer: (units accepted, units throttled), or an error.
type Check = fn(u16, &[u8]) -> anyhow::Result<(u64, u64)>;

struct Run {
    ops: f64,
    accepted: f64,
    throttled: f64,
    p50: Duration,
    p99: Duration,
    cpu_per_op: Duration,
    mean_resp: usize,
}

/// `concurrency` clients, a keep-alive connection each, sending `make(client, n)` for
/// `seconds`. `check` None (the floor): each answer counts `units` accepted.
async fn run(
    addr: &str,
    concurrency: usize,
    seconds: u64,
    cpu: (u32, Option<&'static str>),
    make: Make,
    check: Option<Check>,
    units: u64,
) -> anyhow::Result<Run> {
    let barrier = Arc::new(tokio::sync::Barrier::new(concurrency + 1));
    let (acc, thr, bytes) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut tasks = Vec::new();
    for client in 0..concurrency {
        let (addr, barrier, make, acc, thr, bytes) =
            (addr.to_string(), barrier.clone(), make.clone(), acc.clone(), thr.clone(), bytes.clone());
        tasks.push(tokio::spawn(async move {
            let mut s = connect(&addr).await?;
            send_one(&mut s, make(client, 0)?, check, units).await?;
            barrier.wait().await;
            let end = Instant::now() + Duration::from_secs(seconds);
            let mut lat = Vec::new();
            let mut n = 1;
            while Instant::now() < end {
                let t = Instant::now();
                let (a, th, b) = send_one(&mut s, make(client, n)?, check, units).await?;
                lat.push(t.elapsed());
                acc.fetch_add(a, Ordering::Relaxed);
                thr.fetch_add(th, Ordering::Relaxed);
                bytes.fetch_add(b, Ordering::Relaxed);
                n += 1;
            }
            anyhow::Ok(lat)
        }));
    }
    barrier.wait().await;
    let cpu_before = cpu_ns(cpu.0, cpu.1);
    let started = Instant::now();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu_used = cpu_ns(cpu.0, cpu.1) - cpu_before;
    all.sort();
    let ops = all.len().max(1);
    Ok(Run {
        ops: all.len() as f64 / secs,
        accepted: acc.load(Ordering::Relaxed) as f64 / secs,
        throttled: thr.load(Ordering::Relaxed) as f64 / secs,
        p50: pct(&all, 0.5),
        p99: pct(&all, 0.99),
        cpu_per_op: Duration::from_nanos(cpu_used / ops as u64),
        mean_resp: (bytes.load(Ordering::Relaxed) / ops as u64) as usize,
    })
}

/// One request: (units accepted, throttled, answer bytes).
async fn send_one(
    s: &mut SendRequest<Full<Bytes>>,
    req: http::Request<Full<Bytes>>,
    check: Option<Check>,
    units: u64,
) -> anyhow::Result<(u64, u64, u64)> {
    s.ready().await?;
    let resp = s.send_request(req).await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    let (a, t) = match check {
        Some(c) => c(status, &body)?,
        None if status == 200 => (units, 0),
        None => bail!("floor: {status}"),
    };
    Ok((a, t, body.len() as u64))
}

fn check_put_records(status: u16, body: &[u8]) -> anyhow::Result<(u64, u64)> {
    if status != 200 {
        bail!("PutRecords: {status} {}", String::from_utf8_lossy(body));
    }
    let v: serde_json::Value = serde_json::from_slice(body)?;
    let n = v["Records"].as_array().map_or(0, |r| r.len()) as u64;
    let failed = v["FailedRecordCount"].as_u64().unwrap_or(0);
    Ok((n - failed, failed))
}

fn check_put_record(status: u16, body: &[u8]) -> anyhow::Result<(u64, u64)> {
    match status {
        200 => Ok((1, 0)),
        400 if String::from_utf8_lossy(body).contains("ProvisionedThroughputExceeded") => Ok((0, 1)),
        _ => bail!("PutRecord: {status} {}", String::from_utf8_lossy(body)),
    }
}

fn check_ok(status: u16, body: &[u8]) -> anyhow::Result<(u64, u64)> {
    if status != 200 {
        bail!("{status} {}", String::from_utf8_lossy(body));
    }
    Ok((1, 0))
}

fn data_100() -> String {
    base64::engine::general_purpose::STANDARD.encode([b'd'; 100])
}

fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_micros() as i64
}

fn load_avg() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

fn put_records_body(stream: &str, client: usize, n: usize, data: &str) -> Bytes {
    let recs: Vec<_> = (0..500).map(|i| serde_json::json!({"Data": data, "PartitionKey": format!("k{client}-{n}-{i}")})).collect();
    Bytes::from(serde_json::json!({"StreamName": stream, "Records": recs}).to_string())
}

fn row(label: &str, unit: &str, r: &Run, f: &Run) {
    println!(
        "| {label} | {:.0} {unit}/s ({:.0} req/s) | {:.0} | {} | {} | {} | {:.0} {unit}/s ({:.0} req/s) | {} | {} | {} | {:.2}× |",
        r.accepted,
        r.ops,
        r.throttled,
        us(r.p50),
        us(r.p99),
        us(r.cpu_per_op),
        f.accepted,
        f.ops,
        us(f.p50),
        us(f.p99),
        us(f.cpu_per_op),
        r.accepted / f.accepted.max(1e-9)
    );
}

/// Every `BEACON <µs> <json>` line of `group` so far.
pub(crate) async fn beacon_lines(s: &mut SendRequest<Full<Bytes>>, group: &str) -> anyhow::Result<Vec<(i64, serde_json::Value)>> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut input = serde_json::json!({"logGroupName": group, "filterPattern": "BEACON"});
        if let Some(t) = &token {
            input["nextToken"] = serde_json::json!(t);
        }
        let body = Bytes::from(input.to_string());
        let mut req = http::Request::builder()
            .method("POST")
            .uri("/")
            .header("host", "bench")
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", "Logs_20140328.FilterLogEvents")
            .body(Full::new(body.clone()))?;
        sign(&mut req, &body, "logs");
        s.ready().await?;
        let resp = s.send_request(req).await?;
        let status = resp.status().as_u16();
        let b = resp.into_body().collect().await?.to_bytes();
        if status == 400 && String::from_utf8_lossy(&b).contains("ResourceNotFound") {
            return Ok(out);
        }
        if status != 200 {
            bail!("FilterLogEvents: {status} {}", String::from_utf8_lossy(&b));
        }
        let page: serde_json::Value = serde_json::from_slice(&b)?;
        for e in page["events"].as_array().into_iter().flatten() {
            let Some(line) = e["message"].as_str().and_then(|m| m.split_once("BEACON ")).map(|(_, l)| l) else { continue };
            let Some((at, event)) = line.trim().split_once(' ') else { continue };
            if let (Ok(at), Ok(event)) = (at.parse::<i64>(), serde_json::from_str::<serde_json::Value>(event)) {
                out.push((at, event));
            }
        }
        token = page["nextToken"].as_str().map(str::to_string);
        if token.is_none() {
            return Ok(out);
        }
    }
}

/// The markers an event carries: each Kinesis record's data, each DynamoDB record's `pk`,
/// or an invoke's `marker`.
fn markers(event: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    for r in event["Records"].as_array().into_iter().flatten() {
        if let Some(d) = r["kinesis"]["data"].as_str() {
            if let Ok(b) = base64::engine::general_purpose::STANDARD.decode(d) {
                out.push(String::from_utf8_lossy(&b).into_owned());
            }
        } else if let Some(k) = r["dynamodb"]["Keys"]["pk"]["S"].as_str() {
            out.push(k.to_string());
        }
    }
    if let Some(m) = event["marker"].as_str() {
        out.push(m.to_string());
    }
    out
}

async fn create_function(s: &mut SendRequest<Full<Bytes>>, name: &str, beacon: Vec<u8>, env: serde_json::Value) -> anyhow::Result<()> {
    let body = serde_json::json!({
        "FunctionName": name, "Runtime": "provided.al2023", "Handler": "bootstrap",
        "Role": "arn:aws:iam::000000000000:role/bench", "Code": {"ZipFile": zip_files(&[("bootstrap", beacon, 0o755)])?},
        "MemorySize": 1769, "Environment": {"Variables": env},
    });
    let (st, b) = call(s, "POST", "/2015-03-31/functions", Bytes::from(body.to_string())).await?;
    if st != 201 {
        bail!("create {name}: {st} {}", String::from_utf8_lossy(&b));
    }
    Ok(())
}

async fn create_mapping(s: &mut SendRequest<Full<Bytes>>, function: &str, arn: &str, position: &str) -> anyhow::Result<()> {
    let body = serde_json::json!({"FunctionName": function, "EventSourceArn": arn, "StartingPosition": position, "BatchSize": 100});
    let (st, b) = call(s, "POST", "/2015-03-31/event-source-mappings", Bytes::from(body.to_string())).await?;
    if !(200..300).contains(&st) {
        bail!("create mapping {arn}: {st} {}", String::from_utf8_lossy(&b));
    }
    Ok(())
}

fn ms_of(us: i64) -> String {
    format!("{:.1} ms", us as f64 / 1e3)
}

pub(crate) async fn bench(
    addr: &str,
    pid: u32,
    data: &std::path::Path,
    s: &mut SendRequest<Full<Bytes>>,
    a: &StreamsArgs,
) -> anyhow::Result<()> {
    println!("load average at start: {}", load_avg());
    let me = std::process::id();
    let size = Arc::new(AtomicUsize::new(0));
    let floor_addr = floor_server(size.clone())?;
    let dir = data.to_path_buf();
    let (sync_p50, sync_p99) = tokio::task::spawn_blocking(move || crate::sync_floor(&dir, 300)).await??;
    let beacon =
        std::fs::read(&a.beacon).with_context(|| format!("reading {} (cargo build --release -p nimbus-bench)", a.beacon.display()))?;
    let secs = a.seconds;
    let data64: Arc<str> = Arc::from(data_100());

    // 1. Kinesis.
    println!(
        "\n| signed, keep-alive | accepted | throttled/s | p50 | p99 | server CPU per request | floor: raw loopback hyper server, same requests | p50 | p99 | its CPU per request | / floor |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut shards_of = Vec::new();
    for (stream, shards) in [("s4", 4u32), ("s256", 256)] {
        json_call(s, KINESIS, "CreateStream", serde_json::json!({"StreamName": stream, "ShardCount": shards})).await?;
        shards_of.push((stream, shards));
        // Bodies are made once per client and sent again and again (their keys spread over the shards).
        let bodies: Arc<Vec<Bytes>> = Arc::new((0..8).map(|c| put_records_body(stream, c, 0, &data64)).collect());
        let make: Make = Arc::new(move |c, _n| json_request(KINESIS, "PutRecords", bodies[c].clone()));
        let r = run(addr, 8, secs, (pid, None), make.clone(), Some(check_put_records), 500).await?;
        size.store(r.mean_resp, Ordering::Relaxed);
        let f = run(&floor_addr, 8, secs, (me, Some(FLOOR_THREADS)), make, None, 500).await?;
        row(&format!("PutRecords, 500 × 100 B, c=8, {shards} shards"), "records", &r, &f);
        let d = data64.clone();
        let make: Make = Arc::new(move |c, n| {
            json_request(
                KINESIS,
                "PutRecord",
                Bytes::from(serde_json::json!({"StreamName": stream, "Data": &*d, "PartitionKey": format!("p{c}-{n}")}).to_string()),
            )
        });
        let r = run(addr, 32, secs, (pid, None), make.clone(), Some(check_put_record), 1).await?;
        size.store(r.mean_resp, Ordering::Relaxed);
        let f = run(&floor_addr, 32, secs, (me, Some(FLOOR_THREADS)), make, None, 1).await?;
        row(&format!("PutRecord, 100 B, c=32, {shards} shards"), "records", &r, &f);
    }
    // GetRecords: each shard of each stream read from TRIM_HORIZON to its end, one client.
    for (stream, shards) in shards_of {
        let (mut bytes, mut records, mut requests) = (0u64, 0u64, 0u64);
        let mut took = Duration::ZERO;
        for shard in 0..shards {
            let it = json_call(
                s,
                KINESIS,
                "GetShardIterator",
                serde_json::json!({"StreamName": stream, "ShardId": format!("shardId-{shard:012}"), "ShardIteratorType": "TRIM_HORIZON"}),
            )
            .await?;
            let mut iter = it["ShardIterator"].as_str().map(str::to_string);
            while let Some(i) = iter.take() {
                let req =
                    json_request(KINESIS, "GetRecords", Bytes::from(serde_json::json!({"ShardIterator": i, "Limit": 10000}).to_string()))?;
                let t = Instant::now();
                s.ready().await?;
                let resp = s.send_request(req).await?;
                let status = resp.status().as_u16();
                let b = resp.into_body().collect().await?.to_bytes();
                took += t.elapsed();
                requests += 1;
                if status != 200 {
                    bail!("GetRecords: {status} {}", String::from_utf8_lossy(&b));
                }
                bytes += b.len() as u64;
                let v: serde_json::Value = serde_json::from_slice(&b)?;
                let n = v["Records"].as_array().map_or(0, |r| r.len()) as u64;
                records += n;
                if n > 0 {
                    iter = v["NextShardIterator"].as_str().map(str::to_string);
                }
            }
        }
        // Floor: as many requests, answered with as many bytes each.
        let per = (bytes / requests.max(1)) as usize;
        size.store(per, Ordering::Relaxed);
        let mut f = connect(&floor_addr).await?;
        let t = Instant::now();
        for _ in 0..requests {
            let req = json_request(KINESIS, "GetRecords", Bytes::from_static(b"{\"ShardIterator\":\"x\",\"Limit\":10000}"))?;
            f.ready().await?;
            let resp = f.send_request(req).await?;
            resp.into_body().collect().await?;
        }
        let ft = t.elapsed();
        println!(
            "| GetRecords from TRIM_HORIZON, Limit 10,000, one client, {shards} shards: {records} records in {requests} requests | {:.0} MB/s of answers ({:.0} MB/s of record data, {:.0} records/s) | | | | | {:.0} MB/s | | | | {:.2}× |",
            bytes as f64 / 1e6 / took.as_secs_f64(),
            records as f64 * 100.0 / 1e6 / took.as_secs_f64(),
            records as f64 / took.as_secs_f64(),
            bytes as f64 / 1e6 / ft.as_secs_f64(),
            ft.as_secs_f64() / took.as_secs_f64()
        );
    }

    // 2. DynamoDB.
    let table = |name: &str, stream: bool| {
        let mut t = serde_json::json!({
            "TableName": name, "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        });
        if stream {
            t["StreamSpecification"] = serde_json::json!({"StreamEnabled": true, "StreamViewType": "NEW_IMAGE"});
        }
        t
    };
    json_call(s, DYNAMO, "CreateTable", table("bench", false)).await?;
    for i in 0..100 {
        json_call(s, DYNAMO, "PutItem", serde_json::json!({"TableName": "bench", "Item": {"pk": {"S": "q"}, "sk": {"S": format!("{i:03}")}, "v": {"S": "d".repeat(100)}}}))
            .await?;
    }
    let v: Arc<str> = Arc::from("d".repeat(100));
    let put: Make = Arc::new(move |c, n| {
        json_request(
            DYNAMO,
            "PutItem",
            Bytes::from(serde_json::json!({"TableName": "bench", "Item": {"pk": {"S": format!("c{c}")}, "sk": {"S": format!("{n}")}, "v": {"S": &*v}}}).to_string()),
        )
    });
    let get: Make = Arc::new(|c, n| {
        json_request(
            DYNAMO,
            "GetItem",
            Bytes::from(
                serde_json::json!({"TableName": "bench", "Key": {"pk": {"S": "q"}, "sk": {"S": format!("{:03}", (c * 7 + n) % 100)}}})
                    .to_string(),
            ),
        )
    });
    let query: Make = Arc::new(|_c, _n| {
        json_request(
            DYNAMO,
            "Query",
            Bytes::from_static(b"{\"TableName\":\"bench\",\"KeyConditionExpression\":\"pk = :p\",\"ExpressionAttributeValues\":{\":p\":{\"S\":\"q\"}},\"Limit\":25}"),
        )
    });
    for (label, make) in [
        ("DynamoDB PutItem (100 B attribute), c=32", put),
        ("DynamoDB GetItem, c=32", get),
        ("DynamoDB Query, a partition of 100, Limit 25, c=32", query),
    ] {
        let r = run(addr, 32, secs, (pid, None), make.clone(), Some(check_ok), 1).await?;
        size.store(r.mean_resp, Ordering::Relaxed);
        let f = run(&floor_addr, 32, secs, (me, Some(FLOOR_THREADS)), make, None, 1).await?;
        row(label, "ops", &r, &f);
    }
    println!(
        "\n| the data directory's disk: `fdatasync` of a rewritten 4 KiB page, serial | {:.0}/s | p50 {} | p99 {} |",
        1.0 / sync_p50.as_secs_f64(),
        us(sync_p50),
        us(sync_p99)
    );
    println!("|---|---|---|---|");
    println!("\nload average after the API runs: {}", load_avg());

    // 3. Through a Kinesis trigger. The functions' role may read the streams (checked when
    // a mapping is created).
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kinesis:*","dynamodb:*"],"Resource":"*"}]}"#;
    let (st, b) = crate::iam(s, "PutRolePolicy", &[("RoleName", "bench"), ("PolicyName", "streams"), ("PolicyDocument", policy)]).await?;
    if st != 200 {
        bail!("PutRolePolicy: {st} {b}");
    }
    json_call(s, KINESIS, "CreateStream", serde_json::json!({"StreamName": "trig", "ShardCount": 4})).await?;
    let target = a.records as u64;
    let accepted = Arc::new(AtomicU64::new(0));
    let fill = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..8 {
        let (addr, accepted, d) = (addr.to_string(), accepted.clone(), data64.clone());
        tasks.push(tokio::spawn(async move {
            let mut s = connect(&addr).await?;
            let mut n = 0;
            while accepted.load(Ordering::Relaxed) < target {
                let req = json_request(KINESIS, "PutRecords", put_records_body("trig", c, n, &d))?;
                n += 1;
                s.ready().await?;
                let resp = s.send_request(req).await?;
                let status = resp.status().as_u16();
                let b = resp.into_body().collect().await?.to_bytes();
                let (ok, failed) = check_put_records(status, &b)?;
                accepted.fetch_add(ok, Ordering::Relaxed);
                if failed > 0 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let total = accepted.load(Ordering::Relaxed);
    println!("\nfilled the 4-shard stream with {total} records of 100 B in {:.1} s", fill.elapsed().as_secs_f64());
    create_function(s, "counter", beacon.clone(), serde_json::json!({"BEACON_COUNT": "1"})).await?;
    // Four environments (one per shard's poller) started first.
    let mut warm = Vec::new();
    for _ in 0..4 {
        let addr = addr.to_string();
        warm.push(tokio::spawn(async move {
            let mut c = connect(&addr).await?;
            let (st, b) =
                call(&mut c, "POST", "/2015-03-31/functions/counter/invocations", Bytes::from_static(b"{\"marker\":\"warm\"}")).await?;
            if st != 200 {
                bail!("invoke counter: {st} {}", String::from_utf8_lossy(&b));
            }
            anyhow::Ok(())
        }));
    }
    for w in warm {
        w.await??;
    }
    let cpu0 = cpu_ns(pid, None);
    create_mapping(s, "counter", &stream_arn("trig"), "TRIM_HORIZON").await?;
    let t0 = now_us();
    let deadline = Instant::now() + Duration::from_secs(180);
    let lines = loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let lines = beacon_lines(s, "/aws/lambda/counter").await?;
        let seen: u64 = lines.iter().map(|(_, e)| e["count"].as_u64().unwrap_or(0)).sum();
        if seen >= total || Instant::now() > deadline {
            break lines;
        }
    };
    let cpu_used = cpu_ns(pid, None) - cpu0;
    let mut batches: Vec<(i64, u64)> =
        lines.iter().map(|(at, e)| (*at, e["count"].as_u64().unwrap_or(0))).filter(|(_, n)| *n > 0).collect();
    batches.sort();
    let mut sum = 0;
    let mut done_at = None;
    for (at, n) in &batches {
        sum += n;
        if sum >= total && done_at.is_none() {
            done_at = Some(*at);
        }
    }
    let first = batches.first().map_or(t0, |b| b.0);
    match done_at {
        Some(end) => {
            let sizes: Vec<u64> = batches.iter().map(|b| b.1).collect();
            println!(
                "\n| Kinesis trigger → warm function, BatchSize 100, 4 shards, {total} records | records/s from CreateEventSourceMapping's answer | from the first batch | first batch after the answer | batches (mean size) | records seen (duplicates) | server CPU per record |"
            );
            println!("|---|---|---|---|---|---|---|");
            println!(
                "| | {:.0} | {:.0} | {} | {} ({:.1}) | {sum} ({}) | {} |",
                total as f64 / ((end - t0) as f64 / 1e6),
                total as f64 / ((end - first).max(1) as f64 / 1e6),
                ms_of(first - t0),
                sizes.len(),
                sum as f64 / sizes.len().max(1) as f64,
                sum - total,
                us(Duration::from_nanos(cpu_used / total.max(1)))
            );
        }
        None => println!("\nthe trigger delivered {sum} of {total} records within 180 s"),
    }

    // 4. Acknowledged write → function.
    create_function(s, "beacon", beacon, serde_json::json!({})).await?;
    json_call(s, KINESIS, "CreateStream", serde_json::json!({"StreamName": "lat", "ShardCount": 1})).await?;
    let t = json_call(s, DYNAMO, "CreateTable", table("lat", true)).await?;
    let table_stream = t["TableDescription"]["LatestStreamArn"].as_str().context("CreateTable's LatestStreamArn")?.to_string();
    create_mapping(s, "beacon", &stream_arn("lat"), "LATEST").await?;
    create_mapping(s, "beacon", &table_stream, "LATEST").await?;
    let (st, b) = call(s, "POST", "/2015-03-31/functions/beacon/invocations", Bytes::from_static(b"{\"marker\":\"warm\"}")).await?;
    if st != 200 {
        bail!("invoke beacon: {st} {}", String::from_utf8_lossy(&b));
    }
    // The pollers start within a second of the mapping; a warm-up write of each is waited for.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let spacing = Duration::from_millis(a.spacing_ms);
    let mut acked: Vec<(String, usize, i64)> = Vec::new();
    for i in 0..=a.writes {
        let marker = format!("k-{i}");
        let req = json_request(KINESIS, "PutRecord", Bytes::from(serde_json::json!({"StreamName": "lat", "Data": base64::engine::general_purpose::STANDARD.encode(&marker), "PartitionKey": "p"}).to_string()))?;
        s.ready().await?;
        let resp = s.send_request(req).await?;
        let at = now_us();
        let st = resp.status().as_u16();
        resp.into_body().collect().await?;
        if st != 200 {
            bail!("PutRecord: {st}");
        }
        acked.push((marker, 0, at));
        tokio::time::sleep(spacing).await;

        let marker = format!("d-{i}");
        let req = json_request(
            DYNAMO,
            "PutItem",
            Bytes::from(serde_json::json!({"TableName": "lat", "Item": {"pk": {"S": &marker}, "sk": {"S": "x"}}}).to_string()),
        )?;
        s.ready().await?;
        let resp = s.send_request(req).await?;
        let at = now_us();
        let st = resp.status().as_u16();
        resp.into_body().collect().await?;
        if st != 200 {
            bail!("PutItem: {st}");
        }
        acked.push((marker, 1, at));
        tokio::time::sleep(spacing).await;

        let marker = format!("e-{i}");
        let body = Bytes::from(serde_json::json!({"marker": marker}).to_string());
        let mut req = http::Request::builder()
            .method("POST")
            .uri("/2015-03-31/functions/beacon/invocations")
            .header("host", "bench")
            .header("x-amz-invocation-type", "Event")
            .body(Full::new(body.clone()))?;
        sign(&mut req, &body, "lambda");
        s.ready().await?;
        let resp = s.send_request(req).await?;
        let at = now_us();
        let st = resp.status().as_u16();
        resp.into_body().collect().await?;
        if st != 202 {
            bail!("Event invoke: {st}");
        }
        acked.push((marker, 2, at));
        tokio::time::sleep(spacing).await;
    }
    // The first of each (i = 0) is a warm-up.
    acked.retain(|(m, _, _)| !m.ends_with("-0"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let seen = loop {
        let mut seen = std::collections::HashMap::new();
        for (at, e) in beacon_lines(s, "/aws/lambda/beacon").await? {
            for m in markers(&e) {
                seen.entry(m).or_insert(at);
            }
        }
        if acked.iter().all(|(m, _, _)| seen.contains_key(m)) || Instant::now() > deadline {
            break seen;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let mut lat: [Vec<i64>; 3] = Default::default();
    let mut missing = [0; 3];
    for (m, kind, at) in &acked {
        match seen.get(m) {
            Some(ran) => lat[*kind].push(ran - at),
            None => missing[*kind] += 1,
        }
    }
    println!(
        "\n| acknowledged → function runs ({} each, one at a time, {} ms apart, interleaved) | p50 | p99 | min | max | seen |",
        a.writes, a.spacing_ms
    );
    println!("|---|---|---|---|---|---|");
    for (i, label) in [
        "Kinesis PutRecord 200 → function (mapping, LATEST, BatchSize 100)",
        "DynamoDB PutItem 200 → function (table stream + mapping)",
        "floor: Event invoke 202 → function",
    ]
    .iter()
    .enumerate()
    {
        let v = &mut lat[i];
        v.sort();
        let p = |q: f64| if v.is_empty() { 0 } else { v[((v.len() as f64 - 1.0) * q).round() as usize] };
        println!(
            "| {label} | {} | {} | {} | {} | {} (missing {}) |",
            ms_of(p(0.5)),
            ms_of(p(0.99)),
            ms_of(v.first().copied().unwrap_or(0)),
            ms_of(v.last().copied().unwrap_or(0)),
            v.len(),
            missing[i]
        );
    }
    println!("\nload average at the end: {}", load_avg());
    Ok(())
}

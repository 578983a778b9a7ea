//! `nimbus-bench --s3` (issue 15): S3's object path through the real HTTP API, signed as an
//! SDK signs, each number next to a floor measured in the same run on the same disk.
//!
//! 1. One large object (`--s3-size`, 1 GiB by default) PUT and GET on one connection: the
//!    client generates the body as it sends it (1 MiB of pseudo-random bytes, sent over and
//!    over; `x-amz-content-sha256: UNSIGNED-PAYLOAD`) and counts the GET's bytes as they
//!    come. The GET is run twice: after the bench drops the blob's pages from the page cache
//!    (`posix_fadvise(DONTNEED)`, so it is read from disk) and again at once (from the page
//!    cache). Floor: the same number of bytes written to a file in the server's data
//!    directory in 1 MiB `write`s plus one `fdatasync`, then read back in 256 KiB pieces (the
//!    server's) after `DONTNEED` and again from the cache. The server's peak RSS is sampled
//!    every 50 ms during each transfer.
//! 2. 4 KiB objects, PUT then GET, at concurrency 32 over keep-alive connections (each PUT is
//!    fsync'd before its 200). Floors: a raw loopback hyper server sent the very same signed
//!    requests (it reads the body and answers 200, GET with 4 KiB), and the disk's own
//!    `fdatasync`s: serially (one rewritten page, as `--async-and-triggers` measures) and 32
//!    threads each creating a 4 KiB file and `fdatasync`ing it.
//! 3. From an acknowledged PUT to the function's invocation, through a bucket notification
//!    (`s3:ObjectCreated:*` → a `provided` function), next to the same measure for a plain
//!    `InvocationType: Event` invoke of the same function (the floor of this path). The
//!    function is `nimbus-bench-beacon` (this crate's second binary), which prints the wall
//!    clock the moment `/next` gives it an event; the bench reads those lines back from
//!    CloudWatch Logs afterwards and subtracts the wall clock at which the client received
//!    the PUT's 200 (the Invoke's 202). One at a time, interleaved, `--s3-spacing-ms` apart.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use sha2::Digest;

use crate::scale::{Usage, Watch};
use crate::{call, connect, connect_body, cpu_ns, ms, pct, sign, us, zip_files, TLS};

/// What `--s3` runs with.
pub(crate) struct S3Args {
    pub size: u64,
    pub concurrency: usize,
    pub seconds: u64,
    pub notifications: usize,
    pub spacing_ms: u64,
    pub beacon: PathBuf,
}

const SMALL: usize = 4096;
const BUCKET: &str = "bench";
const EVENTS_BUCKET: &str = "bench-events";
/// The client's write size and the server's (`body.rs`'s `WRITE_BATCH`).
const WRITE_PIECE: usize = 1024 * 1024;
/// The server's read size (`object.rs`'s `READ_PIECE`).
const READ_PIECE: usize = 256 * 1024;

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(body: &[u8]) -> String {
    hex(&sha2::Sha256::digest(body))
}

/// An S3 request signed as an SDK signs it over plain HTTP: `x-amz-content-sha256` is the
/// body's SHA-256 (`payload_hash`, when the caller already knows it, else computed here).
fn s3_request(method: &str, path: &str, body: Bytes, payload_hash: Option<&str>) -> anyhow::Result<http::Request<Full<Bytes>>> {
    let hash = payload_hash.map_or_else(|| sha256_hex(&body), str::to_string);
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "bench")
        .header("x-amz-content-sha256", hash)
        .body(Full::new(body.clone()))?;
    sign(&mut req, &body, "s3");
    Ok(req)
}

pub(crate) async fn s3_call(s: &mut SendRequest<Full<Bytes>>, method: &str, path: &str, body: Bytes) -> anyhow::Result<(u16, Bytes)> {
    let req = s3_request(method, path, body, None)?;
    s.ready().await?;
    let resp = s.send_request(req).await?;
    let status = resp.status().as_u16();
    Ok((status, resp.into_body().collect().await?.to_bytes()))
}

async fn s3_ok(s: &mut SendRequest<Full<Bytes>>, method: &str, path: &str, body: Bytes) -> anyhow::Result<Bytes> {
    let (st, b) = s3_call(s, method, path, body).await?;
    if st != 200 {
        bail!("{method} {path}: {st} {}", String::from_utf8_lossy(&b));
    }
    Ok(b)
}

/// `size` bytes of a generated body, 1 MiB of pseudo-random bytes handed out again and again
/// (the client holds 1 MiB whatever the size).
struct Generated {
    piece: Bytes,
    left: u64,
}

impl Generated {
    fn new(size: u64) -> Generated {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let piece: Vec<u8> = (0..WRITE_PIECE)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()[0]
            })
            .collect();
        Generated { piece: Bytes::from(piece), left: size }
    }
}

impl hyper::body::Body for Generated {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(self.piece.len() as u64) as usize;
        self.left -= n as u64;
        Poll::Ready(Some(Ok(hyper::body::Frame::data(self.piece.slice(..n)))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.left)
    }
}

fn mb_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

fn mb(kb: u64) -> String {
    format!("{:.0} MB", kb as f64 / 1024.0)
}

/// Drops `path`'s pages from the page cache (they must be clean: synced first).
fn drop_cache(path: &Path) -> anyhow::Result<()> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(path)?;
    // SAFETY: `f` is an open descriptor for the whole call; posix_fadvise only reads its
    // arguments.
    let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if rc != 0 {
        bail!("posix_fadvise({}): error {rc}", path.display());
    }
    Ok(())
}

/// Bytes of `path` in the page cache now, by `fincore` (util-linux), if it is installed.
fn resident(path: &Path) -> Option<u64> {
    let out = std::process::Command::new("fincore").args(["--bytes", "--noheadings", "--output", "RES"]).arg(path).output().ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn resident_note(r: Option<u64>, size: u64) -> String {
    match r {
        Some(r) => format!("{:.1} % cached before the read", r as f64 * 100.0 / size.max(1) as f64),
        None => "residency unknown (no fincore)".into(),
    }
}

/// The raw disk under the data directory: `size` bytes written in 1 MiB `write`s and one
/// `fdatasync` (the time includes it), then read back in 256 KiB pieces after the file's
/// pages were dropped, then again from the page cache.
struct DiskFloor {
    write: Duration,
    cold_read: Duration,
    cold_resident: Option<u64>,
    warm_read: Duration,
}

fn disk_floor(dir: &Path, size: u64) -> anyhow::Result<DiskFloor> {
    use std::io::{Read, Write};
    let path = dir.join("bench-disk-floor");
    let body = Generated::new(0).piece;
    let t = Instant::now();
    let mut f = std::fs::File::create(&path)?;
    let mut left = size;
    while left > 0 {
        let n = left.min(body.len() as u64) as usize;
        f.write_all(&body[..n])?;
        left -= n as u64;
    }
    f.sync_data()?;
    let write = t.elapsed();
    drop(f);
    drop_cache(&path)?;
    let cold_resident = resident(&path);
    let read_all = || -> anyhow::Result<Duration> {
        let t = Instant::now();
        let mut f = std::fs::File::open(&path)?;
        let mut buf = vec![0u8; READ_PIECE];
        let mut total = 0u64;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        if total != size {
            bail!("read back {total} of {size} bytes");
        }
        Ok(t.elapsed())
    };
    let cold_read = read_all()?;
    let warm_read = read_all()?;
    std::fs::remove_file(&path)?;
    Ok(DiskFloor { write, cold_read, cold_resident, warm_read })
}

/// `size` bytes over one loopback TCP connection, written from memory in 256 KiB pieces by
/// one thread and read by another: what a GET's bytes cost to move with no disk and no HTTP.
fn tcp_floor(size: u64) -> anyhow::Result<Duration> {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let writer = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut s, _) = listener.accept()?;
        let piece = vec![b'x'; READ_PIECE];
        let mut left = size;
        while left > 0 {
            let n = left.min(READ_PIECE as u64) as usize;
            s.write_all(&piece[..n])?;
            left -= n as u64;
        }
        Ok(())
    });
    let t = Instant::now();
    let mut s = std::net::TcpStream::connect(addr)?;
    let mut buf = vec![0u8; READ_PIECE];
    let mut total = 0u64;
    while total < size {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    let took = t.elapsed();
    writer.join().map_err(|_| anyhow::anyhow!("the writer panicked"))??;
    if total != size {
        bail!("loopback: {total} of {size} bytes");
    }
    Ok(took)
}

/// The largest file under the store's blobs: the big object's body.
fn largest_blob(data: &Path) -> Option<PathBuf> {
    let mut best: Option<(u64, PathBuf)> = None;
    for fan in std::fs::read_dir(data.join("objects").join("blobs")).ok()?.flatten() {
        for blob in std::fs::read_dir(fan.path()).ok()?.flatten() {
            let len = blob.metadata().map(|m| m.len()).unwrap_or(0);
            if best.as_ref().is_none_or(|(l, _)| len > *l) {
                best = Some((len, blob.path()));
            }
        }
    }
    best.map(|(_, p)| p)
}

struct Transfer {
    took: Duration,
    first_byte: Duration,
    peak: Usage,
}

async fn put_large(addr: &str, pid: u32, size: u64) -> anyhow::Result<Transfer> {
    let mut conn = connect_body::<Generated>(addr, TLS.get()).await?;
    let path = format!("/{BUCKET}/large");
    let mut req = http::Request::builder()
        .method("PUT")
        .uri(&path)
        .header("host", "bench")
        .header("content-length", size.to_string())
        .header("x-amz-content-sha256", nimbus_identity::sigv4::UNSIGNED_PAYLOAD)
        .body(Full::new(Bytes::new()))?;
    sign(&mut req, b"", "s3");
    let req = req.map(|_| Generated::new(size));
    let watch = Watch::start(pid);
    let t = Instant::now();
    conn.ready().await?;
    let resp = conn.send_request(req).await?;
    let first_byte = t.elapsed();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    let took = t.elapsed();
    let peak = watch.peak();
    if status != 200 {
        bail!("PUT {path}: {status} {}", String::from_utf8_lossy(&body));
    }
    Ok(Transfer { took, first_byte, peak })
}

async fn get_large(addr: &str, pid: u32, size: u64) -> anyhow::Result<Transfer> {
    let mut s = connect(addr).await?;
    let path = format!("/{BUCKET}/large");
    let req = s3_request("GET", &path, Bytes::new(), None)?;
    let watch = Watch::start(pid);
    let t = Instant::now();
    s.ready().await?;
    let resp = s.send_request(req).await?;
    let first_byte = t.elapsed();
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut total = 0u64;
    while let Some(frame) = body.frame().await {
        if let Ok(d) = frame?.into_data() {
            total += d.len() as u64;
        }
    }
    let took = t.elapsed();
    let peak = watch.peak();
    if status != 200 || total != size {
        bail!("GET {path}: {status}, {total} of {size} bytes");
    }
    Ok(Transfer { took, first_byte, peak })
}

/// A raw loopback HTTP server on two threads of its own (as the server's API has its
/// runtime): reads each request's body and answers 200, a GET with 4 KiB. The floor of the
/// small-object runs, sent the same signed requests.
fn floor_server() -> anyhow::Result<String> {
    const NAME: &str = "s3-floor";
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name(NAME).enable_all().build()?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?.to_string();
    listener.set_nonblocking(true)?;
    std::thread::spawn(move || {
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(|req: http::Request<hyper::body::Incoming>| async move {
                        let get = req.method() == http::Method::GET;
                        let _ = req.into_body().collect().await;
                        let body = if get { Bytes::from_static(&[b'x'; SMALL]) } else { Bytes::new() };
                        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(body)))
                    });
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(stream), svc).await;
                });
            }
        })
    });
    Ok(addr)
}

struct Run {
    rate: f64,
    p50: Duration,
    p99: Duration,
    /// Requests each client made (the PUT run's: which keys exist for the GET run).
    per_client: Vec<usize>,
    cpu_per_op: Duration,
}

/// `concurrency` clients, one keep-alive connection each, sending 4 KiB PUTs (`written`
/// None: key `small/<client>/<n>`) or GETs of the keys a PUT run wrote, for `seconds`.
/// `cpu`: whose CPU time to count per operation (pid, thread name).
async fn small_run(
    addr: &str,
    concurrency: usize,
    seconds: u64,
    written: Option<Arc<[usize]>>,
    cpu: (u32, Option<&'static str>),
) -> anyhow::Result<Run> {
    static BODY: [u8; SMALL] = [b'x'; SMALL];
    let body_hash: Arc<str> = Arc::from(sha256_hex(&BODY));
    let barrier = Arc::new(tokio::sync::Barrier::new(concurrency + 1));
    let mut tasks = Vec::new();
    for client in 0..concurrency {
        let (addr, barrier, written, body_hash) = (addr.to_string(), barrier.clone(), written.clone(), body_hash.clone());
        tasks.push(tokio::spawn(async move {
            let mut s = connect(&addr).await?;
            let one = |n: usize| -> anyhow::Result<http::Request<Full<Bytes>>> {
                match &written {
                    None => s3_request("PUT", &format!("/{BUCKET}/small/{client}/{n}"), Bytes::from_static(&BODY), Some(&body_hash)),
                    Some(w) => s3_request("GET", &format!("/{BUCKET}/small/{client}/{}", n % w[client].max(1)), Bytes::new(), None),
                }
            };
            let send = |s: &mut SendRequest<Full<Bytes>>, req: http::Request<Full<Bytes>>| {
                let get = written.is_some();
                let fut = s.send_request(req);
                async move {
                    let resp = fut.await?;
                    let status = resp.status().as_u16();
                    let body = resp.into_body().collect().await?.to_bytes();
                    if status != 200 || (get && body.len() != SMALL) {
                        bail!("{status}, {} bytes: {}", body.len(), String::from_utf8_lossy(&body));
                    }
                    anyhow::Ok(())
                }
            };
            // The first request of each connection is not measured (for a PUT run it
            // writes key 0, which the GET run may read).
            s.ready().await?;
            send(&mut s, one(0)?).await?;
            barrier.wait().await;
            let end = Instant::now() + Duration::from_secs(seconds);
            let mut lat = Vec::new();
            let mut n = 1;
            while Instant::now() < end {
                let req = one(n)?;
                let t = Instant::now();
                s.ready().await?;
                send(&mut s, req).await?;
                lat.push(t.elapsed());
                n += 1;
            }
            anyhow::Ok((lat, n))
        }));
    }
    barrier.wait().await;
    let cpu_before = cpu_ns(cpu.0, cpu.1);
    let started = Instant::now();
    let mut all = Vec::new();
    let mut per_client = Vec::new();
    for t in tasks {
        let (lat, n) = t.await??;
        all.extend(lat);
        per_client.push(n);
    }
    let elapsed = started.elapsed();
    let cpu_used = cpu_ns(cpu.0, cpu.1) - cpu_before;
    all.sort();
    let ops = all.len().max(1);
    Ok(Run {
        rate: all.len() as f64 / elapsed.as_secs_f64(),
        p50: pct(&all, 0.5),
        p99: pct(&all, 0.99),
        per_client,
        cpu_per_op: Duration::from_nanos(cpu_used / ops as u64),
    })
}

/// `threads` threads each creating 4 KiB files in `dir` and `fdatasync`ing each, for
/// `seconds`: durable small files per second on this disk; (rate, p50, p99). With `rename`,
/// each file is then renamed into one of 256 directories and that directory `fsync`ed (the
/// store's own layout: staged, synced, renamed into `blobs/<fan>/`, the fan synced).
fn file_sync_floor(dir: &Path, threads: usize, seconds: u64, rename: bool) -> anyhow::Result<(f64, Duration, Duration)> {
    use std::io::Write;
    let root = dir.join("bench-file-floor");
    std::fs::create_dir_all(&root)?;
    if rename {
        for fan in 0..256 {
            std::fs::create_dir_all(root.join(format!("{fan:02x}")))?;
        }
    }
    let end = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let root = root.clone();
            std::thread::spawn(move || -> std::io::Result<Vec<Duration>> {
                let mut lat = Vec::new();
                let mut n = 0;
                while Instant::now() < end {
                    let t0 = Instant::now();
                    let staged = root.join(format!("{t}-{n}"));
                    let mut f = std::fs::File::create(&staged)?;
                    f.write_all(&[b'x'; SMALL])?;
                    f.sync_data()?;
                    if rename {
                        let fan = root.join(format!("{:02x}", (t * 7919 + n * 104_729) % 256));
                        std::fs::rename(&staged, fan.join(format!("{t}-{n}")))?;
                        std::fs::File::open(&fan)?.sync_all()?;
                    }
                    lat.push(t0.elapsed());
                    n += 1;
                }
                Ok(lat)
            })
        })
        .collect();
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.join().map_err(|_| anyhow::anyhow!("a floor thread panicked"))??);
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    std::fs::remove_dir_all(&root)?;
    all.sort();
    Ok((rate, pct(&all, 0.5), pct(&all, 0.99)))
}

fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_micros() as i64
}

/// Every `BEACON <µs> <event>` line of the function's log group so far: (what the event
/// names, µs) — an S3 record's object key, or an invoke's `marker`.
async fn beacons(s: &mut SendRequest<Full<Bytes>>, group: &str) -> anyhow::Result<HashMap<String, i64>> {
    let mut out = HashMap::new();
    for (at, event) in crate::streams::beacon_lines(s, group).await? {
        if let Some(name) = event["Records"][0]["s3"]["object"]["key"].as_str().or(event["marker"].as_str()) {
            out.insert(name.to_string(), at);
        }
    }
    Ok(out)
}

fn signed_ms(us: i64) -> String {
    format!("{:.1} ms", us as f64 / 1e3)
}

/// From acknowledgement to invocation: a PUT through the bucket's notification, and an
/// Event invoke, interleaved, `n` of each.
async fn notification_latency(s: &mut SendRequest<Full<Bytes>>, a: &S3Args) -> anyhow::Result<()> {
    let beacon =
        std::fs::read(&a.beacon).with_context(|| format!("reading {} (cargo build --release -p nimbus-bench)", a.beacon.display()))?;
    crate::create(s, "beacon", "provided.al2023", "bootstrap", zip_files(&[("bootstrap", beacon, 0o755)])?).await?;
    let grant = serde_json::json!({
        "StatementId": "s3", "Action": "lambda:InvokeFunction", "Principal": "s3.amazonaws.com",
        "SourceArn": format!("arn:aws:s3:::{EVENTS_BUCKET}"),
    });
    let (st, b) = call(s, "POST", "/2015-03-31/functions/beacon/policy", Bytes::from(grant.to_string())).await?;
    if st != 201 {
        bail!("add permission: {st} {}", String::from_utf8_lossy(&b));
    }
    s3_ok(s, "PUT", &format!("/{EVENTS_BUCKET}"), Bytes::new()).await?;
    const CONFIG: &str = "<NotificationConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><CloudFunctionConfiguration>\
<Id>beacon</Id><CloudFunction>arn:aws:lambda:us-east-1:000000000000:function:beacon</CloudFunction>\
<Event>s3:ObjectCreated:*</Event></CloudFunctionConfiguration></NotificationConfiguration>";
    s3_ok(s, "PUT", &format!("/{EVENTS_BUCKET}?notification"), Bytes::from_static(CONFIG.as_bytes())).await?;
    let got = s3_ok(s, "GET", &format!("/{EVENTS_BUCKET}?notification"), Bytes::new()).await?;
    if !String::from_utf8_lossy(&got).contains("function:beacon") {
        bail!("the notification configuration did not take: {}", String::from_utf8_lossy(&got));
    }
    // The function's environment is started first (a cold start is not this path's cost).
    let (st, b) = call(s, "POST", "/2015-03-31/functions/beacon/invocations", Bytes::from_static(b"{\"marker\":\"warm\"}")).await?;
    if st != 200 {
        bail!("invoke beacon: {st} {}", String::from_utf8_lossy(&b));
    }
    let spacing = Duration::from_millis(a.spacing_ms);
    let mut acked: Vec<(String, bool, i64)> = Vec::new();
    for i in 0..a.notifications + 1 {
        let key = format!("lat/{i}");
        let req = s3_request("PUT", &format!("/{EVENTS_BUCKET}/{key}"), Bytes::from_static(b"{\"hello\":1}"), None)?;
        s.ready().await?;
        let resp = s.send_request(req).await?;
        let at = now_us();
        let status = resp.status().as_u16();
        resp.into_body().collect().await?;
        if status != 200 {
            bail!("PUT {key}: {status}");
        }
        // The first of each is a warm-up.
        if i > 0 {
            acked.push((key, true, at));
        }
        tokio::time::sleep(spacing).await;

        let marker = format!("ev-{i}");
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
        let status = resp.status().as_u16();
        resp.into_body().collect().await?;
        if status != 202 {
            bail!("Event invoke: {status}");
        }
        if i > 0 {
            acked.push((marker, false, at));
        }
        tokio::time::sleep(spacing).await;
    }
    // The log lines arrive through the log writer: wait until every one is in.
    let deadline = Instant::now() + Duration::from_secs(60);
    let seen = loop {
        let seen = beacons(s, "/aws/lambda/beacon").await?;
        if acked.iter().all(|(k, _, _)| seen.contains_key(k)) || Instant::now() > deadline {
            break seen;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let (mut put, mut event, mut missing) = (Vec::new(), Vec::new(), 0);
    for (k, is_put, at) in &acked {
        match seen.get(k) {
            Some(ran) => {
                if *is_put {
                    put.push(ran - at)
                } else {
                    event.push(ran - at)
                }
            }
            None => missing += 1,
        }
    }
    put.sort();
    event.sort();
    let p = |v: &[i64], q: f64| if v.is_empty() { 0 } else { v[((v.len() as f64 - 1.0) * q).round() as usize] };
    println!(
        "\n| acknowledged → function runs ({} each, one at a time, {} ms apart, interleaved) | p50 | p99 | min | max | seen |",
        a.notifications, a.spacing_ms
    );
    println!("|---|---|---|---|---|---|");
    for (label, v) in [("PUT 200 → notified function (s3:ObjectCreated:*)", &put), ("floor: Event invoke 202 → function", &event)] {
        println!(
            "| {label} | {} | {} | {} | {} | {} |",
            signed_ms(p(v, 0.5)),
            signed_ms(p(v, 0.99)),
            signed_ms(v.first().copied().unwrap_or(0)),
            signed_ms(v.last().copied().unwrap_or(0)),
            v.len()
        );
    }
    if missing > 0 {
        println!("\n{missing} acknowledged calls never reached the function within 60 s");
    }
    Ok(())
}

pub(crate) async fn bench(addr: &str, pid: u32, data: &Path, s: &mut SendRequest<Full<Bytes>>, a: &S3Args) -> anyhow::Result<()> {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at start: {}", load.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
    s3_ok(s, "PUT", &format!("/{BUCKET}"), Bytes::new()).await?;

    // 1. One large object.
    let (dir, size) = (data.to_path_buf(), a.size);
    let floor = tokio::task::spawn_blocking(move || disk_floor(&dir, size)).await??;
    let tcp = tokio::task::spawn_blocking(move || tcp_floor(size)).await??;
    let idle = Usage::now(pid);
    let put = put_large(addr, pid, a.size).await?;
    // Bodies in shared storage (`--blobs`) are not in the data directory: nothing to drop.
    let blob = largest_blob(data);
    if let Some(blob) = &blob {
        drop_cache(blob)?;
    } else {
        println!("(the large object's body is not under <data>/objects/blobs: it is in --blobs storage)");
    }
    let cold_resident = blob.as_deref().and_then(resident);
    let cold = get_large(addr, pid, a.size).await?;
    let warm_resident = blob.as_deref().and_then(resident);
    let warm = get_large(addr, pid, a.size).await?;
    let size_label = if a.size.is_multiple_of(1 << 30) { format!("{} GiB", a.size >> 30) } else { format!("{} MiB", a.size >> 20) };
    println!("\n| {size_label} object, one stream, signed | MB/s | time | first byte | server peak RSS (idle {}) | floor: the data directory's disk | floor MB/s | / floor |", mb(idle.rss_kb));
    println!("|---|---|---|---|---|---|---|---|");
    let row = |label: &str, t: &Transfer, floor_label: &str, floor: Duration| {
        println!(
            "| {label} | {:.0} | {} | {} | {} | {floor_label} | {:.0} | {:.2}× |",
            mb_s(a.size, t.took),
            ms(t.took),
            ms(t.first_byte),
            mb(t.peak.rss_kb),
            mb_s(a.size, floor),
            floor.as_secs_f64() / t.took.as_secs_f64()
        )
    };
    row("PUT (UNSIGNED-PAYLOAD, body generated as sent)", &put, "1 MiB `write`s + `fdatasync`", floor.write);
    row(
        &format!("GET, blob's pages dropped first ({})", resident_note(cold_resident, a.size)),
        &cold,
        &format!("256 KiB `read`s after `posix_fadvise(DONTNEED)` ({})", resident_note(floor.cold_resident, a.size)),
        floor.cold_read,
    );
    row(&format!("GET again ({})", resident_note(warm_resident, a.size)), &warm, "256 KiB `read`s from the page cache", floor.warm_read);
    println!(
        "| | | | | | floor of a GET's transport: 256 KiB `write`s from memory over loopback TCP | {:.0} | {:.2}× |",
        mb_s(a.size, tcp),
        tcp.as_secs_f64() / warm.took.as_secs_f64()
    );

    // 2. Small objects.
    let me = std::process::id();
    let floor_addr = floor_server()?;
    let dir = data.to_path_buf();
    let (sync_p50, sync_p99) = tokio::task::spawn_blocking(move || crate::sync_floor(&dir, 300)).await??;
    let (dir, c, secs) = (data.to_path_buf(), a.concurrency, a.seconds.min(3));
    let files = tokio::task::spawn_blocking(move || file_sync_floor(&dir, c, secs, false)).await??;
    let dir = data.to_path_buf();
    let renamed = tokio::task::spawn_blocking(move || file_sync_floor(&dir, c, secs, true)).await??;
    let floor_put = small_run(&floor_addr, a.concurrency, a.seconds, None, (me, Some("s3-floor"))).await?;
    let put = small_run(addr, a.concurrency, a.seconds, None, (pid, None)).await?;
    let floor_get =
        small_run(&floor_addr, a.concurrency, a.seconds, Some(Arc::from(floor_put.per_client.as_slice())), (me, Some("s3-floor"))).await?;
    let get = small_run(addr, a.concurrency, a.seconds, Some(Arc::from(put.per_client.as_slice())), (pid, None)).await?;
    println!(
        "\n| 4 KiB objects, concurrency {}, keep-alive, signed | ops/s | p50 | p99 | server CPU per op | floor: raw loopback hyper server, same requests: ops/s | p50 | p99 | its CPU per op | ops/s / floor |",
        a.concurrency
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (label, r, f) in [("PUT (durable: fsync'd before its 200)", &put, &floor_put), ("GET", &get, &floor_get)] {
        println!(
            "| {label} | {:.0} | {} | {} | {} | {:.0} | {} | {} | {} | {:.2}× |",
            r.rate,
            us(r.p50),
            us(r.p99),
            us(r.cpu_per_op),
            f.rate,
            us(f.p50),
            us(f.p99),
            us(f.cpu_per_op),
            r.rate / f.rate
        );
    }
    println!("\n| the data directory's disk | per second | p50 | p99 |");
    println!("|---|---|---|---|");
    println!(
        "| `fdatasync` of a rewritten 4 KiB page, serial | {:.0} | {} | {} |",
        1.0 / sync_p50.as_secs_f64(),
        us(sync_p50),
        us(sync_p99)
    );
    println!("| new 4 KiB file + `fdatasync`, {} threads | {:.0} | {} | {} |", a.concurrency, files.0, us(files.1), us(files.2));
    println!(
        "| new 4 KiB file + `fdatasync` + rename into one of 256 directories + `fsync` of it, {} threads | {:.0} | {} | {} |",
        a.concurrency,
        renamed.0,
        us(renamed.1),
        us(renamed.2)
    );

    // 3. Acknowledged PUT → function.
    notification_latency(s, a).await?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("\nload average at the end: {}", load.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
    Ok(())
}

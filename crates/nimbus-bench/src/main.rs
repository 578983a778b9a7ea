//! `nimbus-bench`: measures the invoke hot path of a real `nimbus server` (started here on a
//! free port with a fresh data directory): warm invoke latency and throughput for a
//! `provided` echo function, and cold-start cost per runtime next to each runtime's own bare
//! start time. Prints a Markdown table for the README. `--sqs-only` measures the SQS API instead;
//! `--burst` and `--density` measure scale (`scale`); `--s3` measures S3's object path (`s3`);
//! `--streams` Kinesis, DynamoDB and stream triggers (`streams`).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use base64::Engine;
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;

mod cluster;
mod floor;
mod protocol;
mod s3;
mod scale;
mod sqs;
mod streams;

#[derive(Parser)]
struct Args {
    /// The nimbus binary to benchmark.
    #[arg(long, default_value = "target/release/nimbus")]
    nimbus: PathBuf,
    /// A `provided` echo bootstrap (the lambda_runtime fixture).
    #[arg(long, default_value = "target/release/bootstrap")]
    echo: PathBuf,
    /// Warm invocations measured at concurrency 1.
    #[arg(long, default_value_t = 5000)]
    requests: usize,
    /// Seconds of load at each higher concurrency.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Cold starts measured per runtime (0 skips them).
    #[arg(long, default_value_t = 20)]
    cold: usize,
    /// Pause between cold starts, so the server can start its next prestarted runtime
    /// (back-to-back cold starts measure the refill instead).
    #[arg(long, default_value_t = 250)]
    cold_spacing_ms: u64,
    /// Prestarted runtimes per managed runtime, passed to the server (0: every cold start
    /// starts an interpreter).
    #[arg(long, default_value_t = 1)]
    prestart: usize,
    /// Start the server with `--auth off` and send unsigned requests (the cost of
    /// authentication is the difference to a default run).
    #[arg(long)]
    no_auth: bool,
    /// Instead of the usual runs: durable asynchronous accepts (InvocationType Event) per
    /// second, and messages per second through an SQS queue trigger (batch size 10).
    #[arg(long)]
    async_and_triggers: bool,
    /// Clients sending the asynchronous invocations of --async-and-triggers (each waits for
    /// its 202 before the next: at most this many events share one fsync).
    #[arg(long, default_value_t = 16)]
    async_concurrency: usize,
    /// Instead of the usual runs: requests through a function URL against the raw Invoke API
    /// and a plain hyper "hello" server, at concurrency 1 and 64.
    #[arg(long)]
    urls: bool,
    /// Instead of the usual runs: requests through an API Gateway HTTP API route
    /// (`GET /items/{id}`, payload 2.0) next to a function URL and the raw Invoke API, at
    /// concurrency 1 and 64.
    #[arg(long)]
    gateway: bool,
    /// Instead of the usual runs: N concurrent invocations of a function that sleeps 1 s
    /// (one environment each) in --runtime, reporting wall time, failures by error type, the
    /// server's peak RSS and descriptors, next to N × the runtime's bare start ÷ cores and (for
    /// `provided`, after the server's stop) the isolation floor: N environments' namespaces,
    /// links and cgroups made and their runtimes started with no server. Over
    /// 1,000 the server's account concurrency limit is raised to N.
    #[arg(long)]
    burst: Option<usize>,
    /// Instead of the usual runs: start N environments of a --runtime function at once, let
    /// them go idle (frozen), and report the host memory each costs, the server's RSS and
    /// descriptors, and its warm-invoke and ListFunctions latency while it holds them.
    #[arg(long)]
    density: Option<usize>,
    /// With --density: each invocation sleeps this long instead of waiting at the barrier
    /// on the host (no traffic to the host: past its neighbour table's size, linked
    /// environments cannot reach it).
    #[arg(long, requires = "density")]
    density_sleep_ms: Option<u64>,
    /// The runtime of --burst and --density: provided (the echo bootstrap), python3.11 or
    /// nodejs20.x.
    #[arg(long, default_value = "provided", value_parser = ["provided", "python3.11", "nodejs20.x"])]
    runtime: String,
    /// Instead of the usual runs: the first invocation of a new Python version whose init
    /// takes 100 ms, on demand (cold) against provisioned concurrency (initialized ahead).
    #[arg(long)]
    provisioned: bool,
    /// Instead of the usual runs: warm invokes signed by the administrator, by an IAM user
    /// allowed by its identity policy, and by one allowed by the function's resource policy.
    #[arg(long)]
    authz: bool,
    /// Instead of the usual runs: cold starts of functions that import the runtime's AWS SDK
    /// (installed into the bench server's data directory by `nimbus runtimes install sdk`)
    /// and create clients during init, next to the same functions without the SDK.
    #[arg(long)]
    sdk: bool,
    /// Instead of the usual runs: warm invokes of the echo function next to the same function
    /// printing N log lines per invocation (c=1 and c=8): the invocation slowdown and the log
    /// lines per second the server stores.
    #[arg(long)]
    chatty: Option<u64>,
    /// Extra runtime interpreters to pass to the server (RUNTIME=PATH).
    #[arg(long = "runtime-path")]
    runtime_paths: Vec<String>,
    /// One more argument for the server (repeatable), e.g. `--server-arg=--store
    /// --server-arg=postgres://…` to measure it on PostgreSQL.
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    server_args: Vec<String>,
    /// Instead of the usual runs: S3 (issue 15): one large object's PUT and GET (MB/s, the
    /// server's peak RSS) next to the data directory's disk, 4 KiB PUTs and GETs at
    /// --s3-concurrency next to a raw loopback HTTP server and the disk's fdatasyncs, and
    /// the time from an acknowledged PUT to the function its bucket notifies next to an
    /// Event invoke's.
    #[arg(long)]
    s3: bool,
    /// The large object of --s3, in bytes, or with a suffix: 1GiB, 256MiB.
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    s3_size: u64,
    /// Clients of --s3's small-object runs (one keep-alive connection each).
    #[arg(long, default_value_t = 32)]
    s3_concurrency: usize,
    /// PUTs (and as many Event invokes) whose notification latency --s3 measures.
    #[arg(long, default_value_t = 100)]
    s3_notifications: usize,
    /// Pause after each of those calls, so each invocation runs alone.
    #[arg(long, default_value_t = 100)]
    s3_spacing_ms: u64,
    /// The bootstrap of --s3's notified function (this crate's `nimbus-bench-beacon`).
    #[arg(long, default_value = "target/release/nimbus-bench-beacon")]
    beacon: PathBuf,
    /// Instead of the usual runs: Kinesis and DynamoDB (issue 16): PutRecords/PutRecord/
    /// GetRecords and PutItem/GetItem/Query next to a raw loopback HTTP server, records/s
    /// through a Kinesis trigger, and the time from an acknowledged write to the function.
    #[arg(long)]
    streams: bool,
    /// Two nodes on the PostgreSQL of `--server-arg=--store --server-arg=postgres://…` and a
    /// third Nimbus as their shared S3 (`--blobs`): warm invokes sent to a function's home
    /// node against those sent to the other node, which forwards them.
    #[arg(long)]
    cluster: bool,
    /// Records put before --streams' trigger throughput run.
    #[arg(long, default_value_t = 40_000)]
    streams_records: usize,
    /// Writes of each kind whose latency to the function --streams measures.
    #[arg(long, default_value_t = 100)]
    streams_writes: usize,
    /// Pause after each of those writes.
    #[arg(long, default_value_t = 100)]
    streams_spacing_ms: u64,
    /// Measure only the SQS API (SendMessage, ReceiveMessage + DeleteMessage).
    #[arg(long)]
    sqs_only: bool,
    /// Measure only the protocol layer's decoding and encoding, in-process (no server).
    #[arg(long)]
    protocol: bool,
    /// Start the server with HTTPS (`--tls-cert`, `--tls-key`) and connect over TLS,
    /// trusting --tls-ca (PEM files, e.g. made with openssl for 127.0.0.1).
    #[arg(long, requires_all = ["tls_key", "tls_ca"])]
    tls_cert: Option<PathBuf>,
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    #[arg(long, requires = "tls_cert")]
    tls_ca: Option<PathBuf>,
}

struct Server {
    child: Child,
    addr: String,
    /// The server's data directory (removed when the bench ends).
    data: PathBuf,
}

impl Server {
    /// Stops the server as an operator would (SIGTERM: it drains, then takes its
    /// environments and their mounts down), killing it only if it is still there after
    /// 20 s. A bare kill left each run's late mount points on the host, and every later
    /// sandbox copied them into its new mount namespace. Returns how long it took to exit,
    /// or None if it had to be killed.
    fn stop(&mut self) -> Option<Duration> {
        let started = Instant::now();
        match self.child.try_wait() {
            Ok(Some(_)) => return Some(Duration::ZERO),
            Ok(None) => {
                // SAFETY: plain syscall on our own child's pid.
                unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
            }
            Err(_) => {}
        }
        let deadline = started + Duration::from_secs(20);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => return Some(started.elapsed()),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                _ => break,
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

fn start_server(args: &Args) -> anyhow::Result<Server> {
    start_server_as(args, "", &[], true, &[])
}

/// A server in a data directory of its own (`tag`), with `extra` arguments (and the
/// `--server-arg`s when `shared`).
fn start_server_as(args: &Args, tag: &str, extra: &[String], shared: bool, envs: &[(&str, &str)]) -> anyhow::Result<Server> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let data = std::env::temp_dir().join(format!("nimbus-bench-{}{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let mut cmd = Command::new(&args.nimbus);
    cmd.args(["server", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(&data)
        .args(if args.no_auth {
            vec!["--auth".to_string(), "off".to_string()]
        } else {
            vec!["--admin-access-key-id".into(), BENCH_KEY.0.into(), "--admin-secret-access-key".into(), BENCH_KEY.1.into()]
        })
        .arg("--prestart")
        .arg(args.prestart.to_string())
        // NIMBUS_BENCH_SERVER_LOG (e.g. `nimbus_sandbox::network=debug`) shows the server's own timings.
        .env("NIMBUS_LOG", std::env::var("NIMBUS_BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for p in &args.runtime_paths {
        cmd.arg("--runtime-path").arg(p);
    }
    if shared {
        cmd.args(&args.server_args);
    }
    cmd.args(extra).envs(envs.iter().copied());
    // AWS's default account limit is 1,000 concurrent executions; a larger scale run asks
    // for more, as one would ask AWS.
    if let Some(n) = args.burst.max(args.density).filter(|n| *n > 1000) {
        cmd.arg("--concurrency-limit").arg(n.to_string());
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        cmd.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
    }
    if args.sdk {
        let st = Command::new(&args.nimbus).args(["runtimes", "install", "sdk", "--data"]).arg(&data).stdout(Stdio::null()).status()?;
        if !st.success() {
            bail!("nimbus runtimes install sdk failed");
        }
    }
    let child = cmd.spawn().with_context(|| format!("starting {}", args.nimbus.display()))?;
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(&addr).is_err() {
        if Instant::now() > deadline {
            bail!("server did not start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(Server { child, addr, data })
}

fn zip_files(files: &[(&str, Vec<u8>, u32)]) -> anyhow::Result<String> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data, mode) in files {
        w.start_file(*name, zip::write::SimpleFileOptions::default().unix_permissions(*mode))?;
        w.write_all(data)?;
    }
    Ok(base64::engine::general_purpose::STANDARD.encode(w.finish()?.into_inner()))
}

/// Set with --tls-cert: connections to the server speak TLS, trusting --tls-ca.
static TLS: std::sync::OnceLock<tokio_rustls::TlsConnector> = std::sync::OnceLock::new();

fn tls_connector(ca: &std::path::Path) -> anyhow::Result<tokio_rustls::TlsConnector> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).with_context(|| format!("reading {}", ca.display()))? {
        roots.add(cert?)?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// One keep-alive HTTP/1.1 connection to `addr`: over TLS to the Nimbus server when
/// --tls-cert is given (the in-process hello server stays plain).
async fn connect(addr: &str) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    connect_with(addr, TLS.get()).await
}

async fn connect_with(addr: &str, tls: Option<&tokio_rustls::TlsConnector>) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    connect_body(addr, tls).await
}

/// [`connect_with`] for requests whose body is a `B` (a streamed upload).
async fn connect_body<B>(addr: &str, tls: Option<&tokio_rustls::TlsConnector>) -> anyhow::Result<SendRequest<B>>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    match tls {
        Some(tls) => {
            let name = rustls::pki_types::ServerName::IpAddress(stream.peer_addr()?.ip().into());
            let stream = tls.connect(name, stream).await?;
            let (send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            Ok(send)
        }
        None => {
            let (send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            Ok(send)
        }
    }
}

/// The key the bench server is started with and every request is signed with, as an AWS
/// SDK signs (`--no-auth`: the server runs with `--auth off` and requests go unsigned).
pub(crate) const BENCH_KEY: (&str, &str) = ("AKIANIMBUSBENCH00000", "bench-secret-key-bench-secret-key-0000000");
static SIGN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Signs `req` (whose body is `body`) with [`BENCH_KEY`], unless authentication is off.
pub(crate) fn sign(req: &mut http::Request<Full<Bytes>>, body: &[u8], service: &str) {
    sign_with(req, body, service, BENCH_KEY);
}

/// Signs `req` with `key`, unless authentication is off.
fn sign_with(req: &mut http::Request<Full<Bytes>>, body: &[u8], service: &str, key: (&str, &str)) {
    if !SIGN.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let method = req.method().as_str().to_string();
    let r = nimbus_identity::sigv4::Request { method: &method, path: &path, query: query.as_deref(), headers: req.headers(), body };
    let added = nimbus_identity::sigv4::sign_request(key.0, key.1, None, "us-east-1", service, &r, chrono::Utc::now());
    for (k, v) in added {
        req.headers_mut().insert(k, http::HeaderValue::from_str(&v).expect("signature headers are text"));
    }
}

async fn call(s: &mut SendRequest<Full<Bytes>>, method: &str, path: &str, body: Bytes) -> anyhow::Result<(u16, Bytes)> {
    let mut req = http::Request::builder().method(method).uri(path).header("host", "bench").body(Full::new(body.clone()))?;
    // Lambda API calls are signed, as an SDK signs them; function URLs (AuthType NONE) and
    // the plain-hyper floor are not.
    if path.starts_with("/20") {
        sign(&mut req, &body, "lambda");
    }
    s.ready().await?;
    let resp = s.send_request(req).await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// One IAM call (query protocol) signed by the administrator: (status, XML answer).
async fn iam(s: &mut SendRequest<Full<Bytes>>, action: &str, params: &[(&str, &str)]) -> anyhow::Result<(u16, String)> {
    let mut form = format!("Action={action}&Version=2010-05-08");
    for (k, v) in params {
        form.push_str(&format!("&{k}={}", percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)));
    }
    let body = Bytes::from(form);
    let mut req = http::Request::builder()
        .method("POST")
        .uri("/")
        .header("host", "bench")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(body.clone()))?;
    sign(&mut req, &body, "iam");
    s.ready().await?;
    let resp = s.send_request(req).await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// The execution role the bench's functions use (CreateFunction wants one that exists and
/// trusts Lambda).
async fn create_role(s: &mut SendRequest<Full<Bytes>>) -> anyhow::Result<()> {
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let (status, body) = iam(s, "CreateRole", &[("RoleName", "bench"), ("AssumeRolePolicyDocument", trust)]).await?;
    if status != 200 && !body.contains("EntityAlreadyExists") {
        bail!("create role: {status} {body}");
    }
    Ok(())
}

/// A new IAM user with an access key (and `policy` inline, if given): (user ARN, key id, secret).
async fn bench_user(s: &mut SendRequest<Full<Bytes>>, name: &str, policy: Option<&str>) -> anyhow::Result<(String, String, String)> {
    let pick = |xml: &str, tag: &str| {
        xml.split(&format!("<{tag}>")).nth(1).and_then(|r| r.split(&format!("</{tag}>")).next()).unwrap_or_default().to_string()
    };
    let (st, xml) = iam(s, "CreateUser", &[("UserName", name)]).await?;
    if st != 200 {
        bail!("create user: {st} {xml}");
    }
    let arn = pick(&xml, "Arn");
    if let Some(p) = policy {
        let (st, xml) = iam(s, "PutUserPolicy", &[("UserName", name), ("PolicyName", "bench"), ("PolicyDocument", p)]).await?;
        if st != 200 {
            bail!("put user policy: {st} {xml}");
        }
    }
    let (st, xml) = iam(s, "CreateAccessKey", &[("UserName", name)]).await?;
    if st != 200 {
        bail!("create access key: {st} {xml}");
    }
    Ok((arn, pick(&xml, "AccessKeyId"), pick(&xml, "SecretAccessKey")))
}

/// Warm invokes (c=1) signed by the administrator (the account's root: allowed without
/// evaluation), by an IAM user whose inline policy allows the invoke, and by a user whom only
/// the function's resource policy allows: what authorization costs on the hot path.
async fn authz_runs(s: &mut SendRequest<Full<Bytes>>, requests: usize) -> anyhow::Result<()> {
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["lambda:InvokeFunction","lambda:GetFunction"],"Resource":"arn:aws:lambda:*:*:function:echo*"}]}"#;
    let (_, id1, secret1) = bench_user(s, "bench-invoker", Some(policy)).await?;
    let (arn2, id2, secret2) = bench_user(s, "bench-grantee", None).await?;
    let grant = serde_json::json!({"StatementId": "grantee", "Action": "lambda:InvokeFunction", "Principal": arn2});
    let (st, b) = call(s, "POST", "/2015-03-31/functions/echo/policy", Bytes::from(grant.to_string())).await?;
    if st != 201 {
        bail!("add permission: {st} {}", String::from_utf8_lossy(&b));
    }
    println!("\n| warm invoke (c=1) signed by | p50 | p99 |");
    println!("|---|---|---|");
    let runs = [
        ("the administrator (root)", (BENCH_KEY.0, BENCH_KEY.1)),
        ("an IAM user (identity policy)", (id1.as_str(), secret1.as_str())),
        ("an IAM user (function's resource policy)", (id2.as_str(), secret2.as_str())),
    ];
    for (label, key) in runs {
        let mut lat = Vec::with_capacity(requests);
        for i in 0..=requests {
            let t = Instant::now();
            let body = Bytes::from_static(b"{\"ping\":1}");
            let path = "/2015-03-31/functions/echo/invocations";
            let mut req = http::Request::builder().method("POST").uri(path).header("host", "bench").body(Full::new(body.clone()))?;
            sign_with(&mut req, &body, "lambda", key);
            s.ready().await?;
            let resp = s.send_request(req).await?;
            let status = resp.status().as_u16();
            let out = resp.into_body().collect().await?.to_bytes();
            if status != 200 {
                bail!("{label}: invoke answered {status} {}", String::from_utf8_lossy(&out));
            }
            if i > 0 {
                lat.push(t.elapsed());
            }
        }
        lat.sort();
        println!("| {label} | {} | {} |", us(pct(&lat, 0.5)), us(pct(&lat, 0.99)));
    }
    Ok(())
}

/// Functions get 1,769 MB (one full core, as in Lambda) so that the CPU share does not
/// cap what is measured: the platform's overhead.
async fn create(s: &mut SendRequest<Full<Bytes>>, name: &str, runtime: &str, handler: &str, zip: String) -> anyhow::Result<()> {
    let memory_mb = 1769;
    let body = serde_json::json!({
        "FunctionName": name, "Runtime": runtime, "Handler": handler,
        "Role": "arn:aws:iam::000000000000:role/bench", "Code": {"ZipFile": zip}, "MemorySize": memory_mb,
    });
    let (status, body) = call(s, "POST", "/2015-03-31/functions", Bytes::from(body.to_string())).await?;
    if status != 201 {
        bail!("create {name}: {status} {}", String::from_utf8_lossy(&body));
    }
    Ok(())
}

async fn invoke(s: &mut SendRequest<Full<Bytes>>, name: &str) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let (status, body) = call(s, "POST", &format!("/2015-03-31/functions/{name}/invocations"), Bytes::from_static(b"{\"ping\":1}")).await?;
    let took = t.elapsed();
    if status != 200 {
        bail!("invoke {name}: {status} {}", String::from_utf8_lossy(&body));
    }
    Ok(took)
}

/// Log ingestion: the echo function and a copy printing `lines` lines per invocation, warm,
/// one after the other at concurrency 1 and under load at concurrency 8.
async fn chatty(
    addr: &str,
    s: &mut SendRequest<Full<Bytes>>,
    echo: Vec<u8>,
    lines: u64,
    requests: usize,
    seconds: u64,
) -> anyhow::Result<()> {
    let body = serde_json::json!({
        "FunctionName": "chatty", "Runtime": "provided.al2023", "Handler": "bootstrap",
        "Role": "arn:aws:iam::000000000000:role/bench", "MemorySize": 1769,
        "Environment": {"Variables": {"LOG_LINES": lines.to_string()}},
        "Code": {"ZipFile": zip_files(&[("bootstrap", echo, 0o755)])?},
    });
    let (st, b) = call(s, "POST", "/2015-03-31/functions", Bytes::from(body.to_string())).await?;
    if st != 201 {
        bail!("create chatty: {}", String::from_utf8_lossy(&b));
    }
    println!("\n| warm invoke, provided echo | c=1 p50 | c=1 invocations/s | c=8 invocations/s | log lines/s stored (c=8) |");
    println!("|---|---|---|---|---|");
    let mut base = (0.0, 0.0);
    for (label, name, n) in [("quiet (4 lines: START, END, REPORT…)", "echo", 0), ("chatty", "chatty", lines)] {
        invoke(s, name).await?;
        let mut lat = Vec::with_capacity(requests);
        let t = Instant::now();
        for _ in 0..requests {
            lat.push(invoke(s, name).await?);
        }
        let serial = requests as f64 / t.elapsed().as_secs_f64();
        lat.sort();
        let (rps, _, _) = load(addr, name, 8, seconds).await?;
        let stored = rps * (n + 3) as f64;
        let slower = if n == 0 {
            base = (serial, rps);
            String::new()
        } else {
            format!(" ({:+.1} %, {:+.1} %)", (serial / base.0 - 1.0) * 100.0, (rps / base.1 - 1.0) * 100.0)
        };
        let label = if n == 0 { label.to_string() } else { format!("{n} lines per invocation{slower}") };
        println!("| {label} | {} | {serial:.0} | {rps:.0} | {stored:.0} |", us(pct(&lat, 0.5)));
    }
    Ok(())
}

/// The warm table: invokes of the echo function next to the two-hop floor
/// ([`two_hop_floor`]) measured in the same run, each floor run right before the invokes it
/// is compared with. Floor requests are the same signed Invoke requests (the proxy ignores
/// the signature), so the client's own work is the same on both sides.
async fn warm_table(server_pid: u32, addr: &str, s: &mut SendRequest<Full<Bytes>>, requests: usize, seconds: u64) -> anyhow::Result<()> {
    const PATH: &str = "/2015-03-31/functions/echo/invocations";
    let floor = two_hop_floor()?;
    let me = std::process::id();
    // CPU time per request, of the Nimbus server and of the floor's proxy: steadier than
    // latency on a busy machine. Next to them, the function's (its runtime processes, all
    // the server's descendants) and the floor's echo server's: the other end of each.
    let mut f = connect_with(&floor, None).await?;
    let serial = |lat: &mut Vec<Duration>, total: Duration| (requests as f64 / total.as_secs_f64(), std::mem::take(lat));
    let mut floor_lat = Vec::with_capacity(requests);
    call(&mut f, "POST", PATH, Bytes::from_static(b"{\"ping\":1}")).await?;
    let cpu = floor_cpu_ns(me);
    let t = Instant::now();
    for _ in 0..requests {
        let t = Instant::now();
        call(&mut f, "POST", PATH, Bytes::from_static(b"{\"ping\":1}")).await?;
        floor_lat.push(t.elapsed());
    }
    let (floor_rps, mut floor_lat) = serial(&mut floor_lat, t.elapsed());
    let floor_cpu = floor_cpu_ns(me).per(cpu, requests);
    invoke(s, "echo").await?;
    let mut lat = Vec::with_capacity(requests);
    let cpu = invoke_cpu_ns(server_pid);
    let t = Instant::now();
    for _ in 0..requests {
        lat.push(invoke(s, "echo").await?);
    }
    let (rps, mut lat) = serial(&mut lat, t.elapsed());
    let server_cpu = invoke_cpu_ns(server_pid).per(cpu, requests);
    lat.sort();
    floor_lat.sort();
    println!(
        "\n| warm invoke, provided echo | p50 | p99 | invocations/s | server CPU per invoke | function CPU per invoke | floor p50 | floor p99 | floor requests/s | proxy CPU per request | floor echo CPU per request | p50 / floor | rate / floor |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let row = |c: usize,
               (rps, p50, p99): (f64, Duration, Duration),
               cpu: (Duration, Duration),
               (frps, fp50, fp99): (f64, Duration, Duration),
               fcpu: (Duration, Duration)| {
        println!(
            "| concurrency {c} | {} | {} | {rps:.0} | {} | {} | {} | {} | {frps:.0} | {} | {} | {:.2}× | {:.2}× |",
            us(p50),
            us(p99),
            us(cpu.0),
            us(cpu.1),
            us(fp50),
            us(fp99),
            us(fcpu.0),
            us(fcpu.1),
            p50.as_secs_f64() / fp50.as_secs_f64(),
            rps / frps
        )
    };
    row(1, (rps, pct(&lat, 0.5), pct(&lat, 0.99)), server_cpu, (floor_rps, pct(&floor_lat, 0.5), pct(&floor_lat, 0.99)), floor_cpu);
    for c in [32] {
        let cpu = floor_cpu_ns(me);
        let floor_run = load_path_with(&floor, None, "POST", PATH, b"{\"ping\":1}", c, seconds).await?;
        let floor_cpu = floor_cpu_ns(me).per(cpu, (floor_run.0 * seconds as f64) as usize);
        // Its environments started first (their starts are not warm invokes' cost).
        load(addr, "echo", c, 1).await?;
        let cpu = invoke_cpu_ns(server_pid);
        let run = load(addr, "echo", c, seconds).await?;
        let server_cpu = invoke_cpu_ns(server_pid).per(cpu, (run.0 * seconds as f64) as usize);
        row(c, run, server_cpu, floor_run, floor_cpu);
    }
    Ok(())
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

async fn load(addr: &str, name: &str, concurrency: usize, seconds: u64) -> anyhow::Result<(f64, Duration, Duration)> {
    let end = Instant::now() + Duration::from_secs(seconds);
    // Warm one environment per connection first.
    let mut tasks = Vec::new();
    let barrier = Arc::new(tokio::sync::Barrier::new(concurrency));
    for _ in 0..concurrency {
        let addr = addr.to_string();
        let name = name.to_string();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = connect(&addr).await?;
            invoke(&mut s, &name).await?;
            barrier.wait().await;
            let mut lat = Vec::new();
            while Instant::now() < end {
                lat.push(invoke(&mut s, &name).await?);
            }
            anyhow::Ok(lat)
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    Ok((all.len() as f64 / elapsed, pct(&all, 0.5), pct(&all, 0.99)))
}

/// Requests/s and latency of one request shape at `concurrency`, one connection each.
async fn load_path(
    addr: &str,
    method: &'static str,
    path: &str,
    body: &'static [u8],
    concurrency: usize,
    seconds: u64,
) -> anyhow::Result<(f64, Duration, Duration)> {
    load_path_with(addr, TLS.get(), method, path, body, concurrency, seconds).await
}

async fn load_path_with(
    addr: &str,
    tls: Option<&'static tokio_rustls::TlsConnector>,
    method: &'static str,
    path: &str,
    body: &'static [u8],
    concurrency: usize,
    seconds: u64,
) -> anyhow::Result<(f64, Duration, Duration)> {
    let end = Instant::now() + Duration::from_secs(seconds);
    let barrier = Arc::new(tokio::sync::Barrier::new(concurrency));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let addr = addr.to_string();
        let path = path.to_string();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = connect_with(&addr, tls).await?;
            call(&mut s, method, &path, Bytes::from_static(body)).await?; // warm
            barrier.wait().await;
            let mut lat = Vec::new();
            while Instant::now() < end {
                let t = Instant::now();
                let (status, _) = call(&mut s, method, &path, Bytes::from_static(body)).await?;
                if status != 200 {
                    bail!("{path}: {status}");
                }
                lat.push(t.elapsed());
            }
            anyhow::Ok(lat)
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    all.sort();
    Ok((rate, pct(&all, 0.5), pct(&all, 0.99)))
}

/// A plain hyper server that answers every request with "hello": the floor for HTTP on
/// this machine.
async fn hello_server() -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(b"hello"))))
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(stream), svc).await;
            });
        }
    });
    Ok(addr)
}

/// The floor proxy's threads, whose CPU time the warm table reports.
const FLOOR_PROXY: &str = "floor-proxy";
/// The floor echo server's threads (the floor's other end, as the function is the invoke's).
const FLOOR_ECHO: &str = "floor-echo";

/// CPU time in ns of the two ends of a request: (the server or proxy, what answers behind it).
#[derive(Clone, Copy)]
struct Ends(u64, u64);

impl Ends {
    /// Per request, since `before`.
    fn per(self, before: Ends, n: usize) -> (Duration, Duration) {
        let n = n.max(1) as u64;
        (Duration::from_nanos(self.0.saturating_sub(before.0) / n), Duration::from_nanos(self.1.saturating_sub(before.1) / n))
    }
}

/// The floor's CPU time: its proxy's threads and its echo server's (threads of this bench).
fn floor_cpu_ns(me: u32) -> Ends {
    Ends(cpu_ns(me, Some(FLOOR_PROXY)), cpu_ns(me, Some(FLOOR_ECHO)))
}

/// An invoke's CPU time: the server's and its descendants' (the environments' runtimes,
/// their sandboxes and the spawners that started them; those that ended in between are
/// not counted, so warm runs are).
fn invoke_cpu_ns(server: u32) -> Ends {
    let mut children: std::collections::HashMap<u32, Vec<u32>> = std::collections::HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // The parent is the second field after the command's closing parenthesis.
        let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut descendants = 0;
    let mut stack = children.get(&server).cloned().unwrap_or_default();
    while let Some(pid) = stack.pop() {
        descendants += cpu_ns(pid, None);
        stack.extend(children.get(&pid).into_iter().flatten());
    }
    Ends(cpu_ns(server, None), descendants)
}

/// CPU time in ns the threads of process `pid` (those named `name`, if given) have run,
/// from each thread's schedstat.
fn cpu_ns(pid: u32, name: Option<&str>) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return 0 };
    tasks
        .flatten()
        .filter(|t| name.is_none_or(|n| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == n)))
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok()?.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// The floor for a warm invoke: the same two HTTP hops an invoke makes (client → Nimbus
/// API; Nimbus → the runtime's Runtime API and back), as a hyper proxy in front of a hyper
/// server that echoes the body. Each runs on threads and a runtime of its own, as the
/// server and the runtime do (two workers each, on this machine's cores); each client
/// connection gets one keep-alive upstream connection, as each environment has one
/// Runtime API connection. Returns the proxy's address.
fn two_hop_floor() -> anyhow::Result<String> {
    fn runtime(name: &str) -> std::io::Result<tokio::runtime::Runtime> {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name(name).enable_all().build()
    }
    let echo_rt = runtime(FLOOR_ECHO)?;
    let echo = std::net::TcpListener::bind("127.0.0.1:0")?;
    let echo_addr = echo.local_addr()?;
    echo.set_nonblocking(true)?;
    std::thread::spawn(move || {
        echo_rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(echo).expect("a tokio listener");
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(|req: http::Request<hyper::body::Incoming>| async move {
                        let body = req.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
                        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(body)))
                    });
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(stream), svc).await;
                });
            }
        })
    });
    let proxy_rt = runtime(FLOOR_PROXY)?;
    let proxy = std::net::TcpListener::bind("127.0.0.1:0")?;
    let proxy_addr = proxy.local_addr()?.to_string();
    proxy.set_nonblocking(true)?;
    std::thread::spawn(move || {
        proxy_rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(proxy).expect("a tokio listener");
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let Ok(upstream) = connect_with(&echo_addr.to_string(), None).await else { return };
                    let upstream = Arc::new(tokio::sync::Mutex::new(upstream));
                    let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let upstream = upstream.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await?.to_bytes();
                            let forwarded = http::Request::from_parts(parts, Full::new(body));
                            let mut up = upstream.lock().await;
                            up.ready().await?;
                            let resp = up.send_request(forwarded).await?;
                            drop(up);
                            let (parts, body) = resp.into_parts();
                            let body = body.collect().await?.to_bytes();
                            Ok::<_, hyper::Error>(http::Response::from_parts(parts, Full::new(body)))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(stream), svc).await;
                });
            }
        })
    });
    Ok(proxy_addr)
}

/// Creates the echo function's URL, open to anyone; returns its id.
async fn echo_url_id(s: &mut SendRequest<Full<Bytes>>) -> anyhow::Result<String> {
    let (st, body) = call(s, "POST", "/2021-10-31/functions/echo/url", Bytes::from_static(b"{\"AuthType\":\"NONE\"}")).await?;
    if st != 201 {
        bail!("create url: {}", String::from_utf8_lossy(&body));
    }
    let public = serde_json::json!({
        "StatementId": "FunctionURLAllowPublicAccess", "Action": "lambda:InvokeFunctionUrl", "Principal": "*",
        "FunctionUrlAuthType": "NONE",
    });
    let (st, b) = call(s, "POST", "/2015-03-31/functions/echo/policy", Bytes::from(public.to_string())).await?;
    if st != 201 && st != 409 {
        bail!("url permission: {}", String::from_utf8_lossy(&b));
    }
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    let url = v["FunctionUrl"].as_str().unwrap_or_default();
    // By path (`http://host/_aws/lambda-url/<id>/`) or by host name (`http://<id>.<domain>/`).
    let id = match url.split_once("/_aws/lambda-url/") {
        Some((_, rest)) => rest.split('/').next().unwrap_or_default(),
        None => url.split("://").nth(1).unwrap_or_default().split('.').next().unwrap_or_default(),
    };
    Ok(id.to_string())
}

/// Function URL throughput next to the raw Invoke API and a plain hyper server.
async fn urls(addr: &str, s: &mut SendRequest<Full<Bytes>>, seconds: u64) -> anyhow::Result<()> {
    let id = echo_url_id(s).await?;
    let url_path = format!("/_aws/lambda-url/{id}/hello?x=1");
    let hello = hello_server().await?;
    println!("\n| HTTP to a warm provided echo | concurrency | p50 | p99 | requests/s |");
    println!("|---|---|---|---|---|");
    for c in [1, 64] {
        let (r, p50, p99) = load_path(addr, "GET", &url_path, b"", c, seconds).await?;
        println!("| function URL | {c} | {} | {} | {r:.0} |", us(p50), us(p99));
        let (r, p50, p99) = load_path(addr, "POST", "/2015-03-31/functions/echo/invocations", b"{\"ping\":1}", c, seconds).await?;
        println!("| Invoke API | {c} | {} | {} | {r:.0} |", us(p50), us(p99));
        let (r, p50, p99) = load_path_with(&hello, None, "GET", "/", b"", c, seconds).await?;
        println!("| plain hyper hello server | {c} | {} | {} | {r:.0} |", us(p50), us(p99));
    }
    Ok(())
}

/// Throughput through an HTTP API route next to a function URL and the raw Invoke API.
async fn gateway(addr: &str, s: &mut SendRequest<Full<Bytes>>, seconds: u64) -> anyhow::Result<()> {
    let quick = serde_json::json!({
        "name": "bench", "protocolType": "HTTP", "routeKey": "GET /items/{id}",
        "target": "arn:aws:lambda:us-east-1:000000000000:function:echo",
    });
    let (st, body) = call(s, "POST", "/v2/apis", Bytes::from(quick.to_string())).await?;
    if st != 201 {
        bail!("create api: {}", String::from_utf8_lossy(&body));
    }
    let api: serde_json::Value = serde_json::from_slice(&body)?;
    let api_path = format!("/_aws/execute-api/{}/items/42?x=1", api["apiId"].as_str().unwrap_or_default());
    let id = echo_url_id(s).await?;
    let url_path = format!("/_aws/lambda-url/{id}/items/42?x=1");
    println!("\n| HTTP to a warm provided echo | concurrency | p50 | p99 | requests/s |");
    println!("|---|---|---|---|---|");
    for c in [1, 64] {
        let (r, p50, p99) = load_path(addr, "GET", &api_path, b"", c, seconds).await?;
        println!("| HTTP API route `GET /items/{{id}}` | {c} | {} | {} | {r:.0} |", us(p50), us(p99));
        let (r, p50, p99) = load_path(addr, "GET", &url_path, b"", c, seconds).await?;
        println!("| function URL | {c} | {} | {} | {r:.0} |", us(p50), us(p99));
        let (r, p50, p99) = load_path(addr, "POST", "/2015-03-31/functions/echo/invocations", b"{\"ping\":1}", c, seconds).await?;
        println!("| Invoke API | {c} | {} | {} | {r:.0} |", us(p50), us(p99));
    }
    Ok(())
}

/// The floor of a durable commit on this disk, measured in the server's data directory now:
/// `fdatasync` of one rewritten 4 KiB page (what SQLite's WAL does per `synchronous=FULL`
/// commit once the log is reused), `rounds` times; (p50, p99).
fn sync_floor(dir: &std::path::Path, rounds: usize) -> anyhow::Result<(Duration, Duration)> {
    use std::os::unix::fs::FileExt;
    let path = dir.join("bench-sync-floor");
    let file = std::fs::OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&path)?;
    file.write_all_at(&[0u8; 64 * 4096], 0)?;
    file.sync_all()?;
    let mut lat = Vec::with_capacity(rounds);
    for i in 0..rounds {
        file.write_all_at(&[i as u8; 4096], (i % 64) as u64 * 4096)?;
        let t = Instant::now();
        file.sync_data()?;
        lat.push(t.elapsed());
    }
    drop(file);
    std::fs::remove_file(&path)?;
    lat.sort();
    Ok((pct(&lat, 0.5), pct(&lat, 0.99)))
}

/// Durable async accepts/s at `concurrency` (16 by default), then messages/s through a queue
/// trigger.
async fn async_and_triggers(
    addr: &str,
    data: &std::path::Path,
    s: &mut SendRequest<Full<Bytes>>,
    seconds: u64,
    concurrency: usize,
    echo: &std::path::Path,
) -> anyhow::Result<()> {
    // Accepts: every 202 means the event is fsync'd in the durable queue. The function is
    // held at reserved concurrency 0, so the dispatcher's attempts are throttled (and
    // retried) rather than run.
    let (st, body) =
        call(s, "PUT", "/2017-10-31/functions/echo/concurrency", Bytes::from_static(b"{\"ReservedConcurrentExecutions\":0}")).await?;
    if st != 200 {
        bail!("put concurrency: {}", String::from_utf8_lossy(&body));
    }
    let floor_dir = data.to_path_buf();
    let floor_before = tokio::task::spawn_blocking(move || sync_floor(&floor_dir, 300)).await??;
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let addr = addr.to_string();
        tasks.push(tokio::spawn(async move {
            let mut c = connect(&addr).await?;
            let mut lat = Vec::new();
            while Instant::now() < end {
                let t = Instant::now();
                let mut req = http::Request::builder()
                    .method("POST")
                    .uri("/2015-03-31/functions/echo/invocations")
                    .header("host", "bench")
                    .header("x-amz-invocation-type", "Event")
                    .body(Full::new(Bytes::from_static(b"{\"n\":1}")))?;
                sign(&mut req, b"{\"n\":1}", "lambda");
                c.ready().await?;
                let resp = c.send_request(req).await?;
                let status = resp.status().as_u16();
                resp.into_body().collect().await?;
                if status != 202 {
                    bail!("async invoke answered {status}");
                }
                lat.push(t.elapsed());
            }
            anyhow::Ok(lat)
        }));
    }
    let started = Instant::now();
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    let rate = lat.len() as f64 / started.elapsed().as_secs_f64();
    lat.sort();
    let floor_dir = data.to_path_buf();
    let floor_after = tokio::task::spawn_blocking(move || sync_floor(&floor_dir, 300)).await??;
    println!("\n| durable async accepts (concurrency {concurrency}) | p50 | p99 | accepts/s |");
    println!("|---|---|---|---|");
    println!("| InvocationType Event → 202 | {} | {} | {rate:.0} |", us(pct(&lat, 0.5)), us(pct(&lat, 0.99)));
    for (when, (p50, p99)) in [("before", floor_before), ("after", floor_after)] {
        // Each client waits for an fsync per event: the disk caps the rate near
        // concurrency / fsync time, whatever the server does.
        let cap = concurrency as f64 / p50.as_secs_f64();
        println!("| floor, just {when}: fdatasync of a rewritten 4 KiB page in the data directory (cap ≈ {concurrency} / p50 = {cap:.0}/s) | {} | {} | |", us(p50), us(p99));
    }

    // Queue trigger: a fresh function, batch size 10, messages sent in batches of 10.
    let echo = std::fs::read(echo).with_context(|| format!("reading the echo bootstrap {}", echo.display()))?;
    create(s, "drain", "provided.al2023", "bootstrap", zip_files(&[("bootstrap", echo, 0o755)])?).await?;
    let q = sqs::sqs(s, "CreateQueue", serde_json::json!({"QueueName": "bench-trigger"})).await?;
    let url = q["QueueUrl"].as_str().unwrap_or_default().to_string();
    let attrs = sqs::sqs(s, "GetQueueAttributes", serde_json::json!({"QueueUrl": url, "AttributeNames": ["QueueArn"]})).await?;
    let arn = attrs["Attributes"]["QueueArn"].as_str().unwrap_or_default().to_string();
    // A mapping's function must be allowed to read its queue (its execution role's policies).
    let policy = "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole";
    let (st, body) = iam(s, "AttachRolePolicy", &[("RoleName", "bench"), ("PolicyArn", policy)]).await?;
    if st != 200 {
        bail!("attach role policy: {st} {body}");
    }
    let total = 20_000usize;
    // Fill the queue first, then start the mapping: what is measured is the trigger alone.
    let mut senders = Vec::new();
    for k in 0..8 {
        let addr = addr.to_string();
        let url = url.clone();
        senders.push(tokio::spawn(async move {
            let mut c = connect(&addr).await?;
            for b in 0..total / 10 / 8 {
                let entries: Vec<_> = (0..10)
                    .map(|i| serde_json::json!({"Id": format!("m{i}"), "MessageBody": format!("{{\"k\":{k},\"b\":{b}}}")}))
                    .collect();
                sqs::sqs(&mut c, "SendMessageBatch", serde_json::json!({"QueueUrl": url, "Entries": entries})).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in senders {
        t.await??;
    }
    let mapping =
        serde_json::json!({"EventSourceArn": arn, "FunctionName": "drain", "BatchSize": 10, "ScalingConfig": {"MaximumConcurrency": 16}});
    let started = Instant::now();
    let (st, body) = call(s, "POST", "/2015-03-31/event-source-mappings/", Bytes::from(mapping.to_string())).await?;
    if st != 202 {
        bail!("create mapping: {}", String::from_utf8_lossy(&body));
    }
    loop {
        let a = sqs::sqs(s, "GetQueueAttributes", serde_json::json!({"QueueUrl": url, "AttributeNames": ["All"]})).await?;
        let left: usize = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
            .iter()
            .filter_map(|k| a["Attributes"][*k].as_str().and_then(|v| v.parse::<usize>().ok()))
            .sum();
        if left == 0 {
            break;
        }
        if started.elapsed() > Duration::from_secs(300) {
            bail!("queue not drained: {left} left");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = started.elapsed();
    println!("\n| SQS queue trigger, batch size 10, 16 pollers | messages | time | messages/s |");
    println!("|---|---|---|---|");
    println!("| provided echo | {total} | {} | {:.0} |", ms(took), total as f64 / took.as_secs_f64());
    Ok(())
}

/// Publishes a new version of `name` (a configuration change makes it new).
async fn publish(s: &mut SendRequest<Full<Bytes>>, name: &str, round: usize) -> anyhow::Result<String> {
    let change = serde_json::json!({"Environment": {"Variables": {"ROUND": round.to_string()}}});
    let (st, body) = call(s, "PUT", &format!("/2015-03-31/functions/{name}/configuration"), Bytes::from(change.to_string())).await?;
    if st != 200 {
        bail!("update: {}", String::from_utf8_lossy(&body));
    }
    let (st, body) = call(s, "POST", &format!("/2015-03-31/functions/{name}/versions"), Bytes::from_static(b"{}")).await?;
    if st != 201 {
        bail!("publish: {}", String::from_utf8_lossy(&body));
    }
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    Ok(v["Version"].as_str().unwrap_or_default().to_string())
}

/// First-invoke latency of a new version: on demand (the init runs on the invoke path)
/// and with provisioned concurrency 1 (READY before the invocation is sent).
async fn provisioned(s: &mut SendRequest<Full<Bytes>>, rounds: usize, spacing_ms: u64) -> anyhow::Result<()> {
    let code = b"import time\ntime.sleep(0.1)  # init: SDK clients, config, connections\ndef handler(e, c):\n    return e\n".to_vec();
    create(s, "pc", "python3.11", "index.handler", zip_files(&[("index.py", code, 0o644)])?).await?;
    let (mut on_demand, mut provisioned) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let v = publish(s, "pc", round * 2).await?;
        tokio::time::sleep(Duration::from_millis(spacing_ms)).await;
        on_demand.push(invoke(s, &format!("pc:{v}")).await?);

        let v = publish(s, "pc", round * 2 + 1).await?;
        let path = format!("/2019-09-30/functions/pc/provisioned-concurrency?Qualifier={v}");
        let (st, body) = call(s, "PUT", &path, Bytes::from_static(b"{\"ProvisionedConcurrentExecutions\":1}")).await?;
        if st != 202 {
            bail!("put provisioned: {}", String::from_utf8_lossy(&body));
        }
        loop {
            let (_, body) = call(s, "GET", &path, Bytes::new()).await?;
            let c: serde_json::Value = serde_json::from_slice(&body)?;
            match c["Status"].as_str() {
                Some("READY") => break,
                Some("FAILED") => bail!("provisioning failed: {c}"),
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        tokio::time::sleep(Duration::from_millis(spacing_ms)).await;
        provisioned.push(invoke(s, &format!("pc:{v}")).await?);
        call(s, "DELETE", &path, Bytes::new()).await?;
    }
    on_demand.sort();
    provisioned.sort();
    println!("\n| first invoke of a new python3.11 version (init 100 ms) | p50 | p99 |");
    println!("|---|---|---|");
    println!("| on demand (cold start, prestarted runtime) | {} | {} |", ms(pct(&on_demand, 0.5)), ms(pct(&on_demand, 0.99)));
    println!("| provisioned concurrency 1, READY | {} | {} |", ms(pct(&provisioned, 0.5)), ms(pct(&provisioned, 0.99)));
    Ok(())
}

/// Cold starts of functions that load the runtime's AWS SDK during init (as AWS counts the
/// SDK's import in the init phase), next to the same runtimes without it.
async fn sdk_cold_starts(s: &mut SendRequest<Full<Bytes>>, n: usize, spacing_ms: u64) -> anyhow::Result<()> {
    let node_sdk = b"import { SQSClient } from '@aws-sdk/client-sqs';\nimport { LambdaClient } from '@aws-sdk/client-lambda';\n\
const sqs = new SQSClient({});\nconst lambda = new LambdaClient({});\nexport const handler = async (e) => e;\n"
        .to_vec();
    let node_cjs_sdk = b"const { SQSClient } = require('@aws-sdk/client-sqs');\nconst sqs = new SQSClient({});\n\
exports.handler = async (e) => e;\n"
        .to_vec();
    let node_bare = b"export const handler = async (e) => e;\n".to_vec();
    let py_sdk = b"import boto3\nsqs = boto3.client('sqs')\n\ndef handler(e, c):\n    return e\n".to_vec();
    let py_bare = b"def handler(e, c):\n    return e\n".to_vec();
    let node_cjs_bare = b"exports.handler = async (e) => e;\n".to_vec();
    let cases: Vec<(&str, &str, &str, &str, String)> = vec![
        ("sdk-none-cjs", "nodejs20.x", "no SDK (CommonJS)", "index.handler", zip_files(&[("index.js", node_cjs_bare, 0o644)])?),
        ("sdk-none-node", "nodejs20.x", "no SDK (ES module)", "index.handler", zip_files(&[("index.mjs", node_bare, 0o644)])?),
        (
            "sdk-esm-node",
            "nodejs20.x",
            "client-sqs + client-lambda (ES module)",
            "index.handler",
            zip_files(&[("index.mjs", node_sdk, 0o644)])?,
        ),
        ("sdk-cjs-node", "nodejs20.x", "client-sqs (CommonJS)", "index.handler", zip_files(&[("index.js", node_cjs_sdk, 0o644)])?),
        ("sdk-none-py", "python3.11", "no SDK", "index.handler", zip_files(&[("index.py", py_bare, 0o644)])?),
        ("sdk-boto3-py", "python3.11", "boto3 + an SQS client", "index.handler", zip_files(&[("index.py", py_sdk, 0o644)])?),
    ];
    println!("\n| cold start (prestarted runtime) | init loads | first invoke p50 | p90 |");
    println!("|---|---|---|---|");
    for (name, runtime, what, handler, zip) in cases {
        create(s, name, runtime, handler, zip).await?;
        // The function must work (an import error would also answer 200, and fast).
        let (st, body) = call(s, "POST", &format!("/2015-03-31/functions/{name}/invocations"), Bytes::from_static(b"{\"ping\":1}")).await?;
        if st != 200 || serde_json::from_slice::<serde_json::Value>(&body).ok() != Some(serde_json::json!({"ping": 1})) {
            bail!("{name}: {st} {}", String::from_utf8_lossy(&body));
        }
        let mut cold = Vec::new();
        for i in 0..n {
            let change = serde_json::json!({"Environment": {"Variables": {"NN": i.to_string()}}});
            let (st, body) =
                call(s, "PUT", &format!("/2015-03-31/functions/{name}/configuration"), Bytes::from(change.to_string())).await?;
            if st != 200 {
                bail!("update: {}", String::from_utf8_lossy(&body));
            }
            tokio::time::sleep(Duration::from_millis(spacing_ms)).await;
            cold.push(invoke(s, name).await?);
        }
        cold.sort();
        println!("| {runtime} | {what} | {} | {} |", ms(pct(&cold, 0.5)), ms(pct(&cold, 0.9)));
    }
    Ok(())
}

/// Wall time of starting a process and waiting for it to exit, median of `n`.
fn bare_start(program: &str, args: &[&str], n: usize) -> Duration {
    let mut v: Vec<Duration> = (0..n)
        .filter_map(|_| {
            let t = Instant::now();
            Command::new(program).args(args).env_clear().stdout(Stdio::null()).stderr(Stdio::null()).status().ok()?;
            Some(t.elapsed())
        })
        .collect();
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// A size in bytes: a number, optionally followed by KiB, MiB or GiB (or K, M, G).
fn parse_size(v: &str) -> Result<u64, String> {
    let v = v.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (n, unit) = v.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("not a size: {v}"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        other => return Err(format!("unknown unit {other} (KiB, MiB, GiB)")),
    };
    n.checked_shl(shift).filter(|s| *s >> shift == n).ok_or_else(|| format!("too large: {v}"))
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    format!("{cores} cores, {cpu}")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    SIGN.store(!args.no_auth, std::sync::atomic::Ordering::Relaxed);
    if args.protocol {
        println!("machine: {}", machine());
        protocol::bench(args.seconds);
        return Ok(());
    }
    if let Some(ca) = &args.tls_ca {
        let _ = TLS.set(tls_connector(ca)?);
    }
    if args.cluster {
        println!("machine: {}", machine());
        return cluster::bench(&args).await;
    }
    let mut server = start_server(&args)?;
    let mut s = connect(&server.addr).await?;
    println!("machine: {}", machine());
    if args.sqs_only {
        sqs::bench(&server.addr, args.seconds).await?;
        drop(server);
        return Ok(());
    }
    if args.streams {
        create_role(&mut s).await.context("creating the execution role")?;
        let a = streams::StreamsArgs {
            seconds: args.seconds,
            records: args.streams_records,
            writes: args.streams_writes,
            spacing_ms: args.streams_spacing_ms,
            beacon: args.beacon.clone(),
        };
        streams::bench(&server.addr, server.child.id(), &server.data, &mut s, &a).await?;
        drop(server);
        return Ok(());
    }
    if args.s3 {
        create_role(&mut s).await.context("creating the execution role")?;
        let a = s3::S3Args {
            size: args.s3_size,
            concurrency: args.s3_concurrency,
            seconds: args.seconds,
            notifications: args.s3_notifications,
            spacing_ms: args.s3_spacing_ms,
            beacon: args.beacon.clone(),
        };
        s3::bench(&server.addr, server.child.id(), &server.data, &mut s, &a).await?;
        drop(server);
        return Ok(());
    }

    let echo = std::fs::read(&args.echo).with_context(|| format!("reading {}", args.echo.display()))?;
    create_role(&mut s).await.context("creating the execution role")?;
    create(&mut s, "echo", "provided.al2023", "bootstrap", zip_files(&[("bootstrap", echo, 0o755)])?).await.context("creating echo")?;
    if let Some(n) = args.burst {
        scale::burst(&server.addr, server.child.id(), &mut s, &args.echo, &args.runtime, n).await?;
        // Its environments' end: killed, their cgroups, namespaces and links removed.
        let before = scale::MachineTime::now();
        let took = server.stop().map_or_else(|| "did not exit within 20 s (killed)".to_string(), |d| format!("{:.2} s", d.as_secs_f64()));
        println!(
            "\nserver stop after the burst (SIGTERM to exit): {took}, the machine's CPU meanwhile {}",
            scale::MachineTime::now().since(before).seconds()
        );
        // The kernel finishes removing the server's namespaces in the background: the floor
        // starts once that is done, so that it does not pay for it.
        if args.runtime == "provided" {
            scale::wait_until_quiet(Duration::from_secs(20));
            scale::isolation_floor(&args.echo, n);
        }
        return Ok(());
    }
    if let Some(n) = args.density {
        return scale::density(&server.addr, server.child.id(), &mut s, &args.echo, &args.runtime, n, args.density_sleep_ms).await;
    }
    if args.urls {
        return urls(&server.addr, &mut s, args.seconds).await;
    }
    if args.gateway {
        return gateway(&server.addr, &mut s, args.seconds).await;
    }
    if args.async_and_triggers {
        return async_and_triggers(&server.addr, &server.data, &mut s, args.seconds, args.async_concurrency, &args.echo).await;
    }
    if args.provisioned {
        return provisioned(&mut s, args.cold.max(1), args.cold_spacing_ms).await;
    }
    if args.authz {
        return authz_runs(&mut s, args.requests).await;
    }
    if args.sdk {
        return sdk_cold_starts(&mut s, args.cold.max(1), args.cold_spacing_ms).await;
    }
    if let Some(lines) = args.chatty {
        let echo = std::fs::read(&args.echo)?;
        return chatty(&server.addr, &mut s, echo, lines, args.requests, args.seconds).await;
    }
    warm_table(server.child.id(), &server.addr, &mut s, args.requests, args.seconds).await?;

    // Alias resolution on the invoke path: the same echo function called directly, through
    // a version, an alias, and an alias chain.
    for (path, body) in [
        ("/2015-03-31/functions/echo/versions", "{}"),
        ("/2015-03-31/functions/echo/aliases", r#"{"Name":"live","FunctionVersion":"1"}"#),
        ("/2015-03-31/functions/echo/aliases", r#"{"Name":"chained","FunctionVersion":"live"}"#),
    ] {
        let (st, b) = call(&mut s, "POST", path, Bytes::from(body)).await?;
        if st != 201 {
            bail!("{path}: {st} {}", String::from_utf8_lossy(&b));
        }
    }
    println!("\n| warm invoke by qualifier (c=1) | p50 | p99 |");
    println!("|---|---|---|");
    for (label, name) in [("$LATEST", "echo"), ("version 1", "echo:1"), ("alias → 1", "echo:live"), ("alias → alias → 1", "echo:chained")]
    {
        invoke(&mut s, name).await?;
        let mut lat = Vec::with_capacity(args.requests / 2);
        for _ in 0..args.requests / 2 {
            lat.push(invoke(&mut s, name).await?);
        }
        lat.sort();
        println!("| {label} | {} | {} |", us(pct(&lat, 0.5)), us(pct(&lat, 0.99)));
    }

    if args.cold == 0 {
        return Ok(());
    }
    // Cold starts: each configuration change retires the warm environment.
    let node_fn = b"exports.handler = async (e) => e;\n".to_vec();
    let py_fn = b"def handler(e, c):\n    return e\n".to_vec();
    let echo = std::fs::read(&args.echo)?;
    let cases: Vec<(&str, &str, &str, String)> = vec![
        ("cold-provided", "provided.al2023", "bootstrap", zip_files(&[("bootstrap", echo, 0o755)])?),
        ("cold-node", "nodejs20.x", "index.handler", zip_files(&[("index.js", node_fn, 0o644)])?),
        ("cold-python", "python3.11", "index.handler", zip_files(&[("index.py", py_fn, 0o644)])?),
    ];
    let bare = [
        bare_start(&args.echo.to_string_lossy(), &[], args.cold),
        bare_start("/usr/bin/node", &["-e", "0"], args.cold),
        bare_start("/usr/bin/python3.11", &["-c", "pass"], args.cold),
    ];
    println!("\n| cold start | first invoke p50 | warm invoke p50 | runtime's bare start | added by Nimbus |");
    println!("|---|---|---|---|---|");
    for ((name, runtime, handler, zip), bare) in cases.into_iter().zip(bare) {
        create(&mut s, name, runtime, handler, zip).await?;
        let mut cold = Vec::new();
        for i in 0..args.cold {
            let change = serde_json::json!({"Environment": {"Variables": {"NN": i.to_string()}}});
            let (st, body) =
                call(&mut s, "PUT", &format!("/2015-03-31/functions/{name}/configuration"), Bytes::from(change.to_string())).await?;
            if st != 200 {
                bail!("update: {}", String::from_utf8_lossy(&body));
            }
            tokio::time::sleep(Duration::from_millis(args.cold_spacing_ms)).await;
            cold.push(invoke(&mut s, name).await?);
        }
        let mut warm = Vec::new();
        for _ in 0..200 {
            warm.push(invoke(&mut s, name).await?);
        }
        cold.sort();
        warm.sort();
        let (c, w) = (pct(&cold, 0.5), pct(&warm, 0.5));
        let added = c.saturating_sub(w).saturating_sub(bare);
        println!("| {runtime} | {} | {} | {} | {} |", ms(c), us(w), ms(bare), ms(added));
    }
    // Layers: a Node cold start with 0 and with 5 layers (each a few hundred files).
    let mut layer_arns = Vec::new();
    for i in 0..5 {
        let files: Vec<(String, Vec<u8>, u32)> = (0..200)
            .map(|j| (format!("nodejs/node_modules/lib{i}/f{j}.js"), format!("module.exports = {j};").into_bytes(), 0o644))
            .collect();
        let refs: Vec<(&str, Vec<u8>, u32)> = files.iter().map(|(n, d, m)| (n.as_str(), d.clone(), *m)).collect();
        let body = serde_json::json!({ "Content": { "ZipFile": zip_files(&refs)? } });
        let (st, b) = call(&mut s, "POST", &format!("/2018-10-31/layers/lib{i}/versions"), Bytes::from(body.to_string())).await?;
        if st != 201 {
            bail!("publish layer: {}", String::from_utf8_lossy(&b));
        }
        let v: serde_json::Value = serde_json::from_slice(&b)?;
        layer_arns.push(v["LayerVersionArn"].as_str().unwrap_or_default().to_string());
    }
    println!("\n| Node cold start | first invoke p50 |");
    println!("|---|---|");
    for (label, layers) in [("0 layers", vec![]), ("5 layers", layer_arns.clone())] {
        let name = format!("layered{}", layers.len());
        let body = serde_json::json!({
            "FunctionName": name, "Runtime": "nodejs20.x", "Handler": "index.handler",
            "Role": "arn:aws:iam::000000000000:role/bench", "Layers": layers,
            "Code": {"ZipFile": zip_files(&[("index.js", b"exports.handler = async (e) => require('lib0/f1') + 0;".to_vec(), 0o644)])?},
        });
        let body = if layers.is_empty() {
            let mut b = body;
            b["Code"]["ZipFile"] = serde_json::json!(zip_files(&[("index.js", b"exports.handler = async (e) => 1;".to_vec(), 0o644)])?);
            b
        } else {
            body
        };
        let (st, b) = call(&mut s, "POST", "/2015-03-31/functions", Bytes::from(body.to_string())).await?;
        if st != 201 {
            bail!("create: {}", String::from_utf8_lossy(&b));
        }
        let mut cold = Vec::new();
        for i in 0..args.cold {
            let change = serde_json::json!({"Environment": {"Variables": {"NN": i.to_string()}}});
            call(&mut s, "PUT", &format!("/2015-03-31/functions/{name}/configuration"), Bytes::from(change.to_string())).await?;
            tokio::time::sleep(Duration::from_millis(args.cold_spacing_ms)).await;
            cold.push(invoke(&mut s, &name).await?);
        }
        cold.sort();
        println!("| {label} | {} |", ms(pct(&cold, 0.5)));
    }
    drop(server);
    Ok(())
}

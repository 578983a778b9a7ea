//! `nimbus server`: wires storage, control plane, environments, invoker and the API
//! together from the command line's configuration, and shuts them down cleanly.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use nimbus_api::AppState;
use nimbus_control::{CodeDirs, ControlPlane};
use nimbus_invoke::{AsyncConfig, AsyncInvoker, Invoker};
use nimbus_logs::LogStore;
use nimbus_model::{Partition, Runtime};
use nimbus_sandbox::{EnvironmentPool, Isolation, NamespaceConfig, Network, PoolConfig, RuntimeRegistry};
use nimbus_store::{BlobStore, CodeCache, DataDir, LocalBlobStore, MasterKeySource, OptCache, PgStore, SqliteStore, Store};

use crate::Output;

#[derive(clap::Args)]
pub struct ServerOpts {
    /// Address to listen on.
    #[arg(long, env = "NIMBUS_LISTEN", default_value = "127.0.0.1:9001")]
    listen: String,
    /// Address of the operators' metrics listener (`GET /metrics`, Prometheus text; not
    /// authenticated: keep it on loopback or a private network). Off unless given.
    #[arg(long, env = "NIMBUS_METRICS_LISTEN", value_name = "ADDR")]
    metrics_listen: Option<String>,
    /// Export a trace of every invocation (queue wait, init, invoke, response) to this
    /// OpenTelemetry collector over OTLP/HTTP protobuf, e.g. `http://127.0.0.1:4318`
    /// (`/v1/traces` is appended). `OTEL_EXPORTER_OTLP_ENDPOINT` is not read; the batch
    /// processor's `OTEL_BSP_*` settings are. Off unless given.
    #[arg(long, env = "NIMBUS_OTLP_ENDPOINT", value_name = "URL")]
    otlp_endpoint: Option<String>,
    /// The server's own log lines: `text` for people, `json` (one object per line) for log
    /// collectors. Levels come from `NIMBUS_LOG` (else `RUST_LOG`, else `info`).
    #[arg(long, env = "NIMBUS_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Directory holding all state.
    #[arg(long, env = "NIMBUS_DATA", default_value = "./.nimbus")]
    data: PathBuf,
    /// Keep function records (functions, versions, aliases, layers, URLs, mappings,
    /// async events and the rest of `nimbus.db`) in PostgreSQL, shared by every node
    /// started with the same URL: `postgres://user:password@host:port/database` (each
    /// account in a schema `nimbus_<account>`, made and migrated at start). Every node must
    /// use the same master key (--master-key-file). Default: `<data>/nimbus.db`.
    #[arg(long, env = "NIMBUS_STORE", value_name = "URL", hide_env_values = true)]
    store: Option<String>,
    /// Seconds an accepted async event stays claimed by the node running it without that
    /// node renewing the claim (with --store): a dead node's events go to the others after
    /// at most this long. For tests.
    #[arg(long, env = "NIMBUS_ASYNC_LEASE", default_value_t = 30, hide = true)]
    async_lease: u64,
    /// Keep code and layer zips in S3-compatible storage, shared by every node:
    /// `s3://bucket[/prefix]?endpoint=http://host:port&region=us-east-1` (credentials from
    /// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY). Default: `<data>/blobs`.
    #[arg(long, env = "NIMBUS_BLOBS", value_name = "URL")]
    blobs: Option<String>,
    /// Region used in ARNs.
    #[arg(long, env = "NIMBUS_REGION", default_value = "us-east-1")]
    region: String,
    /// Account id used in ARNs.
    #[arg(long, env = "NIMBUS_ACCOUNT_ID", default_value = "000000000000")]
    account_id: String,
    /// Seconds an idle execution environment is kept warm.
    #[arg(long, env = "NIMBUS_IDLE_TIMEOUT", default_value_t = 600)]
    idle_timeout: u64,
    /// Seconds a node stopped by SIGTERM (or Ctrl-C) keeps finishing its work in progress
    /// (requests on open connections, invocations, async events, event source batches)
    /// after it stops taking new work; what is left then is ended. 0 ends it at once.
    #[arg(long, env = "NIMBUS_DRAIN_TIMEOUT", default_value_t = 30, value_name = "SECONDS")]
    drain_timeout: u64,
    /// Interpreter for a runtime, e.g. nodejs22.x=/opt/node22/bin/node (repeatable).
    #[arg(long = "runtime-path", value_name = "RUNTIME=PATH", env = "NIMBUS_RUNTIME_PATHS", value_delimiter = ',')]
    runtime_paths: Vec<String>,
    /// Invocations the account may run at once (AWS's default is 1,000).
    #[arg(long, env = "NIMBUS_CONCURRENCY_LIMIT", default_value_t = 1000)]
    concurrency_limit: u32,
    /// Node.js and Python runtime processes kept started ahead of time, per runtime, so a
    /// cold start skips the interpreter's own start-up (0 turns this off).
    #[arg(long, env = "NIMBUS_PRESTART", default_value_t = 1)]
    prestart: usize,
    /// New execution environments each function may add every 10 seconds (AWS's
    /// concurrency scaling rate is 1,000); beyond it, invocations that find no idle
    /// environment are throttled (429 TooManyRequestsException).
    #[arg(long, env = "NIMBUS_SCALE_UP_RATE", default_value_t = nimbus_invoke::DEFAULT_SCALE_UP_PER_10S)]
    scale_up_rate: u32,
    /// Environments started for invocations that may be initializing at once (the rest
    /// wait their turn, built, before their init and its clock begin); default 64 per core.
    #[arg(long, env = "NIMBUS_MAX_INITIALIZING")]
    max_initializing: Option<usize>,
    /// Sandboxes for invocations that may be being built, or built and waiting for their
    /// init's turn, at once; default `--max-initializing`.
    #[arg(long, env = "NIMBUS_MAX_BUILDING")]
    max_building: Option<usize>,
    /// Most runtimes of one kind kept prestarted when recent cold starts ask for more than
    /// `--prestart` (each cold start in the last 10 s asks for one more; back to
    /// `--prestart` a minute after the last).
    #[arg(long, env = "NIMBUS_PRESTART_MAX", default_value_t = 32)]
    prestart_max: usize,
    /// Once this many environments of one Python function are starting at once, its
    /// further new environments are forked from an interpreter started once for that
    /// function (a zygote) instead of each starting its own (0 turns this off).
    #[arg(long, env = "NIMBUS_ZYGOTE_AFTER", default_value_t = 2)]
    zygote_after: usize,
    /// Reap idle environments, least recently used first, while less than this percentage
    /// of the host's memory is available (0 turns it off).
    #[arg(long, env = "NIMBUS_MIN_AVAILABLE_MEMORY_PERCENT", default_value_t = 10.0)]
    min_available_memory_percent: f64,
    /// Milliseconds before the first retry of a failed asynchronous event (doubling after;
    /// AWS waits about a minute).
    #[arg(long, env = "NIMBUS_ASYNC_RETRY_DELAY_MS", default_value_t = 60_000)]
    async_retry_delay_ms: u64,
    /// Log where each environment's start went: the server's steps (cgroup, network,
    /// Runtime API, spawn) and sandbox-init's own, one line each (target
    /// `nimbus_sandbox::starts`).
    #[arg(long, env = "NIMBUS_TRACE_STARTS")]
    trace_starts: bool,
    /// How often metric alarms are evaluated, in milliseconds (AWS: every minute). For tests.
    #[arg(long, default_value_t = 60_000, hide = true, value_parser = clap::value_parser!(u64).range(100..))]
    alarm_interval_ms: u64,
    /// How often the queues' gauges (ApproximateNumberOfMessagesVisible, …) are sampled
    /// into AWS/SQS, in milliseconds (AWS: every minute). For tests.
    #[arg(long, default_value_t = 60_000, hide = true, value_parser = clap::value_parser!(u64).range(100..))]
    queue_gauge_interval_ms: u64,
    /// Domain under which function URLs are handed out and served by host name
    /// (`<url-id>.<domain>`; its names are yours to resolve). Without it, `FunctionUrl` is
    /// by path on this server's address (`/_aws/lambda-url/<url-id>/`), which needs no name
    /// resolved, and `lambda-url.<region>.localhost` is still served.
    #[arg(long, env = "NIMBUS_URL_DOMAIN")]
    url_domain: Option<String>,
    /// Domain under which HTTP APIs (API Gateway V2) are handed out and served by host name
    /// (`<api-id>.<domain>`). Without it, `ApiEndpoint` is by path on this server's address
    /// (`/_aws/execute-api/<api-id>`), and `execute-api.<region>.localhost` is still served.
    #[arg(long, env = "NIMBUS_API_DOMAIN")]
    api_domain: Option<String>,
    /// How environments are isolated: `namespaces` (each in its own namespaces, read-only
    /// root, unprivileged user, seccomp; needs root on Linux), `process` (plain child
    /// processes), or `auto` (namespaces where possible).
    #[arg(long, env = "NIMBUS_ISOLATION", default_value = "auto", value_parser = ["auto", "namespaces", "process"])]
    isolation: String,
    /// Network of sandboxed environments: `linked` (own namespace with its Runtime API on
    /// its own loopback, linked to the host by a veth pair on the `nimbus0` bridge: the
    /// function reaches this server at `AWS_ENDPOINT_URL` and the host's other services),
    /// `isolated` (own namespace, loopback only) or `host` (the host's network; development).
    #[arg(long, env = "NIMBUS_NETWORK", default_value = "linked", value_parser = ["linked", "isolated", "host"])]
    network: String,
    /// Addresses of linked environments; the first is the host's (the gateway).
    #[arg(long, env = "NIMBUS_SANDBOX_SUBNET", default_value = "10.213.0.0/16")]
    sandbox_subnet: String,
    /// Threads serving the API and the Runtime APIs (default: one per core; one on a
    /// machine of one or two cores).
    #[arg(long, env = "NIMBUS_WORKER_THREADS")]
    worker_threads: Option<usize>,
    /// `on`: every AWS API request must be signed (SigV4) with a key Nimbus knows. `off`:
    /// anyone who can reach the port can do anything (throwaway local use only).
    #[arg(long, env = "NIMBUS_AUTH", default_value = "on", value_parser = ["on", "off"])]
    auth: String,
    /// The administrator's access key id (with --admin-secret-access-key). Without them,
    /// the key stored in the data directory is used, or one is generated there on the first
    /// start (`<data>/credentials`, profile `nimbus`).
    #[arg(long, env = "NIMBUS_ADMIN_ACCESS_KEY_ID", requires = "admin_secret_access_key")]
    admin_access_key_id: Option<String>,
    #[arg(long, env = "NIMBUS_ADMIN_SECRET_ACCESS_KEY", requires = "admin_access_key_id", hide_env_values = true)]
    admin_secret_access_key: Option<String>,
    /// The key that seals secrets at rest (environment variables, KMS key material): a file
    /// of 32 raw bytes or 64 hex digits, kept apart from the data directory. Without it,
    /// `<data>/master.key` is used, or generated there (owner-only) on the first start.
    #[arg(long, env = "NIMBUS_MASTER_KEY_FILE")]
    master_key_file: Option<PathBuf>,
    /// Seconds the role credentials handed to execution environments are valid (AWS's 12
    /// hours); environments are renewed before they expire. For tests (at least 5).
    #[arg(long, env = "NIMBUS_CREDENTIALS_LIFETIME", default_value_t = 43200, hide = true)]
    credentials_lifetime: u64,
    /// Serve every listener over HTTPS with this certificate chain (PEM: the server's
    /// certificate first, then any intermediates), with --tls-key.
    #[arg(long, env = "NIMBUS_TLS_CERT", value_name = "PATH")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 RSA or SEC1 EC).
    #[arg(long, env = "NIMBUS_TLS_KEY", value_name = "PATH")]
    tls_key: Option<PathBuf>,
    /// Seconds a client has to send a complete request head, on a new connection and
    /// between requests on a kept-alive one (the idle keep-alive timeout).
    #[arg(long, env = "NIMBUS_HTTP_HEADER_TIMEOUT", default_value_t = 60.0, value_name = "SECONDS", value_parser = positive_seconds)]
    http_header_timeout: f64,
    /// Longest pause, in seconds, while a request body is read (answered 408).
    #[arg(long, env = "NIMBUS_HTTP_BODY_TIMEOUT", default_value_t = 60.0, value_name = "SECONDS", value_parser = positive_seconds)]
    http_body_timeout: f64,
    /// Connections each listener serves at once; more are answered 503 and closed.
    #[arg(long, env = "NIMBUS_MAX_CONNECTIONS", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
    /// Seconds an environment's Runtime API connection may go without a complete request
    /// head, counted while the environment is not frozen. For tests.
    #[arg(long, default_value_t = 60.0, hide = true, value_parser = positive_seconds)]
    runtime_api_idle_timeout: f64,
    /// The descriptor limit (RLIMIT_NOFILE) the server raises its own hard limit to when it may
    /// (root): about six per environment plus one per connection. 0 keeps the limit it was
    /// started with (raising only the soft limit to it).
    #[arg(long, env = "NIMBUS_DESCRIPTOR_LIMIT", default_value_t = 1 << 20)]
    descriptor_limit: u64,
    /// Runtime API connections an environment may hold at once. For tests.
    #[arg(long, default_value_t = 8, hide = true, value_parser = clap::value_parser!(u32).range(1..))]
    runtime_api_max_connections: u32,
}

/// Raises the soft descriptor limit to the hard one and says what a low limit means: past
/// it, invocations are throttled (429) for want of descriptors, not run.
fn check_descriptor_limit(target: u64) {
    // What each sandboxed environment's init sets (`JailSpec::rlimit_nofile`, AWS's 1,024);
    // it cannot raise its hard limit past the server's.
    const PER_ENVIRONMENT: u64 = 1024;
    match nimbus_sandbox::raise_descriptor_limit((target > 0).then_some(target)) {
        Some(n) if n < PER_ENVIRONMENT => tracing::warn!(
            limit = n,
            "the descriptor limit (RLIMIT_NOFILE) is below the {} each sandboxed environment gets (AWS's): sandboxes cannot start; raise the hard limit",
            PER_ENVIRONMENT
        ),
        Some(n) if n < 16 * 1024 => tracing::warn!(
            limit = n,
            "the descriptor limit (RLIMIT_NOFILE) allows about {} running environments at once (each takes about seven in the server, its caller's connection included); past that, invocations are throttled; raise the hard limit (systemd's LimitNOFILE, `ulimit -Hn`) or give the server CAP_SYS_RESOURCE, with which it raises the limit itself (--descriptor-limit)",
            n / 7
        ),
        _ => {}
    }
}

/// The accept queue of the server's listeners. The standard library's 128 (also tokio's
/// `TcpListener::bind`) overflows when a thousand clients connect at once: the kernel drops
/// the SYNs it has no room for and each client waits out its 1 s (then 3 s) retransmission.
/// The kernel caps it at `net.core.somaxconn` (4,096 since Linux 5.4).
const LISTEN_BACKLOG: u32 = 4096;

/// Listens on `addr` (`host:port`, every address it names until one binds) with
/// [`LISTEN_BACKLOG`].
async fn listen(addr: &str) -> std::io::Result<tokio::net::TcpListener> {
    let mut last = None;
    for a in tokio::net::lookup_host(addr).await? {
        let socket = if a.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        // As `TcpListener::bind` does: a restarted server rebinds at once.
        socket.set_reuseaddr(true)?;
        match socket.bind(a).and_then(|()| socket.listen(LISTEN_BACKLOG)) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "the address names no host")))
}

/// A duration in seconds: positive and finite.
fn positive_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => Ok(s),
        _ => Err(format!("{text:?} is not a number of seconds between 0 and 86400")),
    }
}

/// The server's TLS from `--tls-cert` and `--tls-key`: both, or neither.
fn load_tls(cert: Option<&std::path::Path>, key: Option<&std::path::Path>) -> anyhow::Result<Option<nimbus_api::tls::Tls>> {
    match (cert, key) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => Ok(Some(nimbus_api::tls::Tls::load(cert, key)?)),
        (Some(_), None) => Err(anyhow!("--tls-cert (NIMBUS_TLS_CERT) needs --tls-key (NIMBUS_TLS_KEY): give both, or neither")),
        (None, Some(_)) => Err(anyhow!("--tls-key (NIMBUS_TLS_KEY) needs --tls-cert (NIMBUS_TLS_CERT): give both, or neither")),
    }
}

/// Writes what runtimes trust when the API speaks HTTPS into `<data>/trust` (world-readable:
/// certificates only, bound into sandboxes): the chain, and the host's roots plus the chain.
/// Without TLS the directory is removed.
fn write_trusted_certificates(
    data: &DataDir,
    tls: Option<&nimbus_api::tls::Tls>,
) -> anyhow::Result<Option<nimbus_sandbox::TrustedCertificates>> {
    use nimbus_sandbox::TrustedCertificates;
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let dir = data.root().join("trust");
    let _ = std::fs::remove_dir_all(&dir);
    let Some(tls) = tls else { return Ok(None) };
    std::fs::DirBuilder::new().mode(0o755).create(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let chain = tls.certificates_pem();
    // Debian/Ubuntu, Fedora/RHEL, Alpine/Arch: the first that exists.
    let system = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    let mut bundle = system;
    if !bundle.is_empty() && !bundle.ends_with('\n') {
        bundle.push('\n');
    }
    bundle.push_str(&chain);
    for (name, text) in [(TrustedCertificates::SERVER, &chain), (TrustedCertificates::BUNDLE, &bundle)] {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
    }
    let dir = std::fs::canonicalize(&dir).with_context(|| format!("locating {}", dir.display()))?;
    Ok(Some(TrustedCertificates { dir }))
}

/// A listener at `at` (the gateway address) bound to the bridge `device`: only connections
/// that arrive on that bridge, i.e. from its environments, reach it. A host accepts packets
/// for any of its addresses on any interface, so without the binding a neighbour routing the
/// subnet here would reach an API the operator kept on loopback.
fn listen_on_bridge(device: &str, at: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind_device(Some(device.as_bytes()))?;
    socket.bind(at)?;
    socket.listen(LISTEN_BACKLOG)
}

/// The gateway's listener on every bridge made after the first (one per block of 1,024
/// addresses, see `nimbus_sandbox::network`; addresses are given out round-robin, so a
/// server that has made about a thousand environments links new ones to the second): an
/// environment's connection to the gateway arrives on its own bridge, and a listener bound
/// to another bridge does not take it. Bound on the linker's thread before the bridge's
/// first environment is linked; a listener that cannot be made (out of descriptors) fails
/// that link, and the next link into the block tries again. The state is held weakly: it
/// owns the pool, which owns the linker, which owns this hook.
fn serve_later_bridges(linker: &nimbus_sandbox::network::Linker, at: std::net::SocketAddr, state: &Arc<AppState>) {
    let runtime = tokio::runtime::Handle::current();
    let state = Arc::downgrade(state);
    let made = linker.on_bridge(move |bridge| {
        let Some(state) = state.upgrade() else { return Err(std::io::Error::other("the server is stopping")) };
        let _in_runtime = runtime.enter();
        let listener = listen_on_bridge(bridge, at).inspect_err(|e| {
            tracing::warn!(%bridge, "cannot listen on {at} on this bridge, so no environment is linked to it for now: {e}");
        })?;
        runtime.spawn(nimbus_api::serve(listener, state));
        Ok(())
    });
    if let Err(e) = made {
        tracing::error!("cannot listen at {at} on every bridge: environments of a later block of addresses cannot reach the API: {e}");
    }
}

/// `10.213.0.0/16` into its address and prefix length.
fn parse_subnet(text: &str) -> anyhow::Result<(std::net::Ipv4Addr, u8)> {
    let (ip, prefix) = text.split_once('/').ok_or_else(|| anyhow!("--sandbox-subnet wants ADDRESS/PREFIX, got {text}"))?;
    let ip: std::net::Ipv4Addr = ip.parse().map_err(|_| anyhow!("--sandbox-subnet: {ip} is not an IPv4 address"))?;
    let prefix: u8 = prefix
        .parse()
        .ok()
        .filter(|p| (16..=28).contains(p))
        .ok_or_else(|| anyhow!("--sandbox-subnet: prefix must be 16 to 28, got {prefix}"))?;
    Ok((ip, prefix))
}

fn parse_runtime_paths(items: &[String]) -> anyhow::Result<BTreeMap<Runtime, PathBuf>> {
    let mut out = BTreeMap::new();
    for item in items.iter().filter(|i| !i.is_empty()) {
        let (id, path) = item.split_once('=').ok_or_else(|| anyhow!("--runtime-path wants RUNTIME=PATH, got {item}"))?;
        let runtime: Runtime = id.parse().map_err(|_| anyhow!("unknown runtime {id}"))?;
        out.insert(runtime, PathBuf::from(path));
    }
    Ok(out)
}

pub fn print_runtimes(data: &Path, paths: &[String], output: Output) -> anyhow::Result<ExitCode> {
    let registry = RuntimeRegistry::inspect(&data.join("runtimes"), &parse_runtime_paths(paths)?);
    let rows: Vec<serde_json::Value> = registry
        .list()
        .map(|i| {
            serde_json::json!({
                "runtime": i.runtime.id(),
                "available": i.interpreter.is_ok(),
                "path": i.interpreter.as_ref().ok().map(|p| p.display().to_string()),
                "version": i.version,
                "reason": i.interpreter.as_ref().err(),
                "sdk": i.sdk,
            })
        })
        .collect();
    if output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        for i in registry.list() {
            let sdk = i.sdk.as_deref().map(|s| format!("; SDK: {s}")).unwrap_or_default();
            match &i.interpreter {
                Ok(p) if i.version.is_some() => {
                    println!("{:<16} available  {} ({}{sdk})", i.runtime.id(), p.display(), i.version.as_deref().unwrap_or(""))
                }
                Ok(_) => println!("{:<16} available  the function's own bootstrap", i.runtime.id()),
                Err(why) => println!("{:<16} missing    {why}", i.runtime.id()),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run(opts: ServerOpts) -> anyhow::Result<ExitCode> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("NIMBUS_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if opts.log_format == "json" {
        logs.json().with_current_span(false).init();
    } else {
        logs.init();
    }
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(worker_threads(opts.worker_threads, cores)).enable_all().build()?;
    rt.block_on(serve(opts))
}

/// The API's async workers: as asked, else one per core from three cores up, and one on one
/// or two cores. There, one worker leaves the other core to the runtimes and the stores'
/// threads, and an invocation's three wake-ups (the request, the runtime's answer, its next
/// `/next`) land on one thread instead of handing off between two: a warm invoke costs a
/// fifth less CPU (README, "Issue 13"). Long synchronous work runs off the workers
/// (`nimbus_store::blocking`), so one worker is never held by it.
fn worker_threads(asked: Option<usize>, cores: usize) -> usize {
    match asked {
        Some(n) => n.max(1),
        None if cores <= 2 => 1,
        None => cores,
    }
}

async fn serve(opts: ServerOpts) -> anyhow::Result<ExitCode> {
    check_descriptor_limit(opts.descriptor_limit);
    let tls = load_tls(opts.tls_cert.as_deref(), opts.tls_key.as_deref())?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let data = DataDir::open(&opts.data).map_err(|e| anyhow!(e))?;
    let keys = if opts.auth == "on" {
        let given = opts.admin_access_key_id.clone().zip(opts.admin_secret_access_key.clone());
        let (keys, source) = nimbus_identity::Keys::open(data.root(), given, &opts.account_id)
            .map_err(|e| anyhow!("the administrator's key in {}: {e}", data.root().display()))?;
        match source {
            nimbus_identity::AdminKeySource::Given => tracing::info!("requests must be signed; administrator key {}", keys.admin_key_id()),
            nimbus_identity::AdminKeySource::Stored(p) | nimbus_identity::AdminKeySource::Generated(p) => tracing::info!(
                "requests must be signed; the administrator's key is in {} (use it with: export AWS_SHARED_CREDENTIALS_FILE={} AWS_PROFILE={})",
                p.display(),
                p.display(),
                nimbus_identity::keys::PROFILE
            ),
        }
        Some(Arc::new(keys))
    } else {
        tracing::warn!("AUTHENTICATION IS OFF (--auth off): anyone who can reach this server can deploy and run code, read every log and empty every queue");
        None
    };
    let (master, master_source) =
        nimbus_store::MasterKey::open(data.root(), opts.master_key_file.as_deref()).map_err(|e| anyhow!("the master key: {e}"))?;
    // The management account's sealed stores first: they tell whether the master key is the
    // right one.
    let store_at = StoreAt::parse(opts.store.as_deref(), opts.async_lease)?;
    if matches!(store_at, StoreAt::Postgres(..)) {
        // Every shared store of an account uses one pool (and one relaxed pool) on this node,
        // its connections named for this node's incarnation.
        nimbus_store::pg::share_pools(&format!("nimbus-{}", &uuid::Uuid::new_v4().simple().to_string()[..16]));
    }
    // A wrong --blobs is an error at start, before anything is opened.
    open_blobs(&data, opts.blobs.as_deref(), &opts.account_id).await?;
    let sealed = open_sealed(&data, &store_at, &master, &opts.region, &opts.account_id).await.map_err(|e| match e {
        Sealed::WrongMasterKey => match &master_source {
            MasterKeySource::Generated(path) => {
                // Not the key the records were sealed under: do not leave it behind.
                let _ = std::fs::remove_file(path);
                anyhow!(
                    "the master key is missing: {} holds records sealed under a master key, but {} does not exist; restore that file or pass --master-key-file (a new key cannot open them)",
                    store_at.shown(&data),
                    path.display()
                )
            }
            MasterKeySource::Given(path) | MasterKeySource::Stored(path) => anyhow!(
                "the master key in {} is not the one {} was sealed under; start with the right key (--master-key-file or <data>/{})",
                path.display(),
                store_at.shown(&data),
                nimbus_store::sealing::MASTER_KEY_FILE
            ),
        },
        Sealed::Kms(why) => {
            if let MasterKeySource::Generated(path) = &master_source {
                // A KMS database this new key cannot open: the key file was lost.
                let _ = std::fs::remove_file(path);
            }
            anyhow!("opening the KMS database: {why}")
        }
        Sealed::Store(why) => anyhow!("opening the database: {why}"),
    })?;
    if let StoreAt::Postgres(url, _) = &store_at {
        tracing::info!(
            "function records are in PostgreSQL at {} (schema {})",
            nimbus_store::pg::redacted(url),
            nimbus_store::pg::schema_of(&opts.account_id).unwrap_or_default()
        );
    }
    match opts.blobs.as_deref().filter(|u| !u.is_empty()) {
        Some(url) => tracing::info!("code zips and S3 object bodies are in {}", url.split('?').next().unwrap_or(url)),
        None if matches!(store_at, StoreAt::Postgres(..)) => tracing::warn!(
            "--store without --blobs: code zips stay in {} and S3 object bodies under {}, so other nodes cannot run the functions \
             made here nor read the objects put here",
            data.blobs().display(),
            data.root().join("objects").display()
        ),
        None => {}
    }
    match &master_source {
        MasterKeySource::Generated(p) => {
            tracing::info!("generated the master key {} (keep it: without it no environment variable opens)", p.display())
        }
        MasterKeySource::Given(p) | MasterKeySource::Stored(p) => {
            tracing::info!("secrets at rest are sealed under the master key {}", p.display())
        }
    }
    if opts.concurrency_limit == 0 {
        return Err(anyhow!("--concurrency-limit must be at least 1"));
    }
    let registry = Arc::new(
        RuntimeRegistry::discover(&data.runtimes(), &parse_runtime_paths(&opts.runtime_paths)?)
            .with_context(|| format!("the runtime store {} is not usable", data.runtimes().display()))?,
    );
    if let Err(e) = crate::install::check_writable(&data.runtimes()) {
        tracing::warn!("{e:#}: `nimbus runtimes install` cannot add runtimes or SDKs to it");
    }
    for info in registry.list() {
        let sdk = info.sdk.as_deref().map(|s| format!(" with {s}")).unwrap_or_default();
        match &info.interpreter {
            Ok(p) if info.version.is_some() => tracing::info!("runtime {} on {}{sdk}", info.runtime, p.display()),
            Ok(_) => {}
            Err(why) => tracing::warn!("runtime {} unavailable: {why}", info.runtime),
        }
    }
    let listener = listen(&opts.listen).await.with_context(|| format!("cannot listen on {}", opts.listen))?;
    let local = listener.local_addr()?;
    // An empty endpoint (an unset variable in a unit file) is off.
    let traces = match opts.otlp_endpoint.as_deref().filter(|e| !e.is_empty()) {
        Some(endpoint) => {
            let service = nimbus_trace::Service { version: env!("CARGO_PKG_VERSION").to_string(), host: host_name() };
            let traces = nimbus_trace::OtlpTraces::start(endpoint, &service, tokio::runtime::Handle::current())?;
            tracing::info!("invocation traces go to {endpoint} (OTLP/HTTP)");
            Some(traces)
        }
        None => None,
    };
    let metrics_listener = match &opts.metrics_listen {
        Some(addr) => Some(listen(addr).await.with_context(|| format!("cannot listen on {addr} for metrics"))?),
        None => None,
    };
    let mut missing: Vec<&str> = Vec::new();
    let isolation = match (opts.isolation.as_str(), nimbus_sandbox::jail::available()) {
        ("process", _) => Isolation::Process,
        (_, Ok(())) => {
            nimbus_sandbox::sweep_envs_dir(&data.envs());
            let network = match opts.network.as_str() {
                "host" => Network::Host,
                "isolated" => Network::Isolated,
                _ => {
                    let subnet = parse_subnet(&opts.sandbox_subnet)?;
                    // The server's loopback address leads to the server inside environments
                    // too (`nimbus_sandbox::server_door`), so the URLs it hands out work there.
                    let door = (local.ip().is_loopback() || local.ip().is_unspecified()).then_some(local.port());
                    match nimbus_sandbox::network::Linker::setup(nimbus_sandbox::network::BRIDGE, subnet, 2, door) {
                        Ok(linker) => Network::Linked(linker),
                        Err(e) => {
                            tracing::warn!(
                                "NO NETWORK LINK for environments: cannot set up bridge {}: {e}. Environments get loopback only.",
                                nimbus_sandbox::network::BRIDGE
                            );
                            missing.push("network link to the host");
                            Network::Isolated
                        }
                    }
                }
            };
            let exe = std::env::current_exe().context("locating the nimbus binary")?;
            // Sandboxes are forked by a small process of their own, not by this server.
            let spawner = match nimbus_sandbox::jail::Spawner::start(&exe) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!("cannot start the sandbox spawner ({e}); the server spawns sandboxes itself");
                    None
                }
            };
            Isolation::Namespaces(NamespaceConfig { exe, spawner, network, envs_dir: data.envs() })
        }
        ("namespaces", Err(why)) => return Err(anyhow!("--isolation namespaces is not possible here: {why}")),
        (_, Err(why)) => {
            tracing::warn!("ISOLATION IS OFF: {why}. Functions run as plain processes of this server's user: they can read each other's code and the host's files, and have no memory, CPU or process limits.");
            Isolation::Process
        }
    };
    tracing::info!("isolation: {}", isolation.describe());
    nimbus_sandbox::trace_starts(opts.trace_starts);
    // Control groups: memory, CPU and process limits, freezing, peak memory.
    let instance = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        std::fs::canonicalize(data.root()).unwrap_or_else(|_| data.root().to_path_buf()).hash(&mut h);
        format!("{:016x}", h.finish())
    };
    let cgroups = match nimbus_sandbox::cgroup::CgroupManager::open(&instance, &data.root().display().to_string()) {
        Ok(m) => {
            tracing::info!("limits: cgroups ({})", m.mode());
            // Servers that crashed (their sets were just removed) may have left mount
            // points in their data directories, which may never be used again.
            for root in m.gone() {
                let root = std::path::Path::new(root);
                if DataDir::if_unused(root, |root| nimbus_sandbox::sweep_envs_dir(&root.join("envs"))) {
                    tracing::info!(data = %root.display(), "removed what a server that is gone left in its data directory");
                }
            }
            Some(Arc::new(m))
        }
        Err(why) => {
            tracing::warn!("LIMITS ARE OFF: {why}. Functions get no memory, CPU or process limits and are not frozen between invocations.");
            None
        }
    };
    // Where functions reach this server: the bridge's gateway address for linked
    // environments (served by a second listener unless the first listens everywhere), else
    // the listen address; isolated environments have no way out.
    let mut gateway_listener = None;
    let endpoint = match &isolation {
        Isolation::Namespaces(NamespaceConfig { network: Network::Linked(linker), .. }) => {
            let at = std::net::SocketAddr::new(linker.gateway().into(), local.port());
            if !local.ip().is_unspecified() {
                // Bound to the bridge: only environments' connections arrive here (and on
                // the later blocks' bridges, see `serve_later_bridges`).
                gateway_listener =
                    Some(listen_on_bridge(nimbus_sandbox::network::BRIDGE, at).with_context(|| format!("cannot listen on {at}"))?);
            }
            Some(at)
        }
        Isolation::Namespaces(NamespaceConfig { network: Network::Isolated, .. }) => None,
        _ => {
            let ip = if local.ip().is_unspecified() { std::net::Ipv4Addr::LOCALHOST.into() } else { local.ip() };
            Some(std::net::SocketAddr::new(ip, local.port()))
        }
    };
    if let (Some(tls), Some(addr)) = (&tls, endpoint) {
        // Functions' SDKs verify the certificate against the address they call.
        if !tls.names_ip(addr.ip()) {
            tracing::warn!(
                "the TLS certificate does not name {}, where functions reach this server (AWS_ENDPOINT_URL): their SDK calls will fail to verify it; add it to the certificate's subject alternative names (IP:{})",
                addr.ip(),
                addr.ip()
            );
        }
    }
    let endpoint_url = endpoint.map(|addr| format!("{scheme}://{addr}"));
    let trust = write_trusted_certificates(&data, tls.as_ref())?;
    if matches!(isolation, Isolation::Process) {
        missing.extend(["namespaces", "read-only root", "unprivileged user", "seccomp", "per-environment network"]);
    }
    if cgroups.is_none() {
        missing.extend(["memory limit", "CPU share", "process limit", "freezing between invocations"]);
    }
    // Functions in a VPC: linked into their VPC with their security groups as packet
    // filter, which takes linked namespaces and nftables.
    let linker = match &isolation {
        Isolation::Namespaces(NamespaceConfig { network: Network::Linked(linker), .. }) => Some(linker.clone()),
        _ => None,
    };
    let vpc_linker = match &linker {
        Some(linker) => {
            linker.set_endpoint_port(local.port());
            if !linker.vpc_capable() {
                tracing::warn!("nftables (nft) is not installed: functions with a VpcConfig will not start until it is");
                missing.push("VPC networks: nftables (nft) is not installed, functions in a VPC do not start");
            }
            true
        }
        _ => {
            missing.push("VPC networks: VpcConfig is stored, not enforced (needs namespaces and --network linked)");
            false
        }
    };
    let status = serde_json::json!({
        "isolation": isolation.describe(),
        "region": opts.region,
        "endpointUrl": endpoint_url,
        "limits": cgroups.as_ref().map(|c| format!("cgroups ({})", c.mode())),
        "cgroups": cgroups.as_ref().map(|c| c.parents()).unwrap_or_default(),
        "missingGuarantees": missing,
    });
    // Removed at the stop, busy environments and all.
    let cgroups_at_stop = cgroups.clone();
    let max_initializing =
        opts.max_initializing.unwrap_or_else(|| 64 * std::thread::available_parallelism().map(std::num::NonZeroUsize::get).unwrap_or(2));
    let pool_config = PoolConfig {
        idle_timeout: Duration::from_secs(opts.idle_timeout.max(1)),
        prestart: opts.prestart,
        prestart_max: opts.prestart_max,
        zygote_after: opts.zygote_after,
        max_initializing,
        max_building: opts.max_building.unwrap_or(max_initializing),
        min_available_fraction: (opts.min_available_memory_percent > 0.0).then_some(opts.min_available_memory_percent / 100.0),
        isolation,
        cgroups,
        endpoint_url,
        trust,
        runtime_api: nimbus_sandbox::connections::ConnectionLimits {
            idle_timeout: Duration::from_secs_f64(opts.runtime_api_idle_timeout),
            max_connections: opts.runtime_api_max_connections as usize,
        },
    };
    // Subscribers are handed links to this server (confirmation, unsubscribe).
    let public_addr = {
        let mut a = listener.local_addr()?;
        if a.ip().is_unspecified() {
            a.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        a
    };
    let port = listener.local_addr()?.port();
    // URLs handed out: on the address the caller used, environments' way in answered with
    // the server's own; function URLs and APIs by path unless a domain was chosen.
    let urls = nimbus_api::urls::Urls {
        scheme,
        public: public_addr.to_string(),
        environments: linker.as_ref().map(|l| std::net::SocketAddr::new(l.gateway().into(), local.port()).to_string()),
        url_domain: opts.url_domain.clone(),
        api_domain: opts.api_domain.clone(),
        port: local.port(),
    };
    // With a shared store the organization and its accounts are the nodes'.
    let organizations = match &store_at {
        StoreAt::Embedded => nimbus_iam::organizations::Organizations::open(&data.root().join("organizations.db"), &opts.account_id).await,
        StoreAt::Postgres(url, _) => nimbus_iam::organizations::Organizations::open_shared(url, &opts.account_id).await,
    }
    .map_err(|e| anyhow!("opening the organizations database: {e}"))?;
    let accounts = nimbus_api::Accounts::new(organizations.clone());
    let shared = Arc::new(Shared {
        root: data.root().to_path_buf(),
        store_at: store_at.clone(),
        blobs_at: opts.blobs.clone(),
        management: opts.account_id.clone(),
        region: opts.region.clone(),
        concurrency_limit: opts.concurrency_limit,
        scale_up_rate: opts.scale_up_rate,
        async_retry_delay: Duration::from_millis(opts.async_retry_delay_ms),
        alarm_interval: Duration::from_millis(opts.alarm_interval_ms),
        queue_gauge_interval: Duration::from_millis(opts.queue_gauge_interval_ms),
        credentials_lifetime: Duration::from_secs(opts.credentials_lifetime.max(5)),
        master,
        keys,
        pool_config,
        registry,
        vpc_linker,
        status,
        public: format!("{scheme}://{public_addr}"),
        url_domain: opts.url_domain.clone().unwrap_or_else(|| format!("lambda-url.{}.localhost", opts.region)),
        api_domain: opts.api_domain.clone().unwrap_or_else(|| format!("execute-api.{}.localhost", opts.region)),
        port,
        urls,
        tls,
        accounts: accounts.clone(),
        router: std::sync::OnceLock::new(),
        metrics: nimbus_metrics::Metrics::new(),
        traces: traces.clone(),
        opened: std::sync::Mutex::new(Vec::new()),
        limits: nimbus_api::conn::ConnectionLimits {
            header_timeout: Duration::from_secs_f64(opts.http_header_timeout),
            body_timeout: Duration::from_secs_f64(opts.http_body_timeout),
            max_connections: opts.max_connections as usize,
        },
    });
    // A shared store's members list this node where its peers can reach it.
    let member_at =
        if local.ip().is_unspecified() { format!("{scheme}://{}:{}", host_name(), local.port()) } else { format!("{scheme}://{local}") };
    sealed.1.join_cluster(&member_at);
    let state = shared.open_account(&opts.account_id, data, Some(sealed)).await?;
    accounts.insert(state.clone());
    for id in organizations.member_accounts() {
        let member = shared.open_member(id.clone()).await.with_context(|| format!("opening account {id}"))?;
        accounts.insert(member);
    }
    accounts.set_opener(Arc::new(Opener(shared.clone())));
    {
        // Accounts another node creates are opened here too, once this node hears of them.
        let held = Arc::downgrade(&accounts);
        organizations.on_accounts_added(move |ids| {
            let Some(accounts) = held.upgrade() else { return };
            tokio::spawn(async move {
                for id in ids {
                    if let Err(e) = accounts.open_existing(id.clone()).await {
                        tracing::warn!("opening account {id}, which another node created: {e}");
                    }
                }
            });
        });
    }
    if let Some(linker) = &linker {
        // Environments of every account come in through the management account's state
        // (requests go on to their caller's account from there). Held weakly: the state
        // holds the pool, which holds the linker.
        let state = Arc::downgrade(&state);
        linker.open_door(nimbus_sandbox::ServerDoor::new(move |stream, peer| {
            if let Some(state) = state.upgrade() {
                nimbus_api::serve_stream(stream, peer, state);
            }
        }));
    }
    tracing::info!("Nimbus listening on {scheme}://{} (data in {})", listener.local_addr()?, shared.root.display());
    if let Some(why) = nimbus_api::console::missing() {
        tracing::warn!("this binary has no web console (built with NIMBUS_CONSOLE_SKIP=1): {why}");
    }
    // The only line that shows a login token: a one-time link to the console, signed in as
    // the management account's root, working for 15 minutes (`nimbus console` makes another).
    // The link comes first, alone up to a space, for whoever looks for it in the log.
    tracing::info!(
        "console: {} (one use, {} minutes; `nimbus console` prints a new one)",
        nimbus_api::console::login_link(&accounts, &shared.public),
        accounts.logins.lifetime().as_secs() / 60
    );

    if let Some(l) = gateway_listener {
        // Only this node's environments reach it (it is bound to the bridge), so it stays
        // open through a drain: functions still running call the API through it.
        let at = l.local_addr()?;
        tokio::spawn(nimbus_api::serve(l, state.clone()));
        if let Some(linker) = &linker {
            serve_later_bridges(linker, at, &state);
        }
    }
    if let Some(l) = metrics_listener {
        tracing::info!("metrics on http://{}/metrics", l.local_addr()?);
        tokio::spawn(nimbus_api::serve_metrics(l, shared.metrics.clone(), shared.limits));
    }
    let drain = crate::drain::Drain::new();
    let api = tokio::spawn(nimbus_api::serve_until(listener, state, drain.begun()));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    if opts.drain_timeout == 0 {
        api.abort();
    } else {
        let accounts: Vec<crate::drain::Account> = shared
            .opened
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|a| crate::drain::Account {
                invoker: a.invoker.clone(),
                async_invoker: a.async_invoker.clone(),
                event_sources: a.event_sources.clone(),
                queues: a.queues.clone(),
            })
            .collect();
        let again = async {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        drain.run(api, &accounts, Duration::from_secs(opts.drain_timeout), again).await;
    }
    tracing::info!("shutting down");
    let opened = std::mem::take(&mut *shared.opened.lock().unwrap_or_else(|p| p.into_inner()));
    for account in &opened {
        // What still runs is ended below: its failures are the stop's, not the work's.
        account.async_invoker.stop();
        account.event_sources.stop();
    }
    let stopping = std::time::Instant::now();
    let mut cgroups_at_stop = cgroups_at_stop;
    if opened.iter().any(|a| a.store.shares_concurrency()) {
        // What the drain's deadline cut off ends before it is handed back: another node must
        // not start an event while this one still runs it. (Without cgroups the
        // environments die with this process, moments later.)
        if let Some(cgroups) = cgroups_at_stop.take() {
            let _ = tokio::task::spawn_blocking(move || cgroups.remove_all()).await;
        }
    }
    for account in &opened {
        // A shared store's other nodes take this one's async events, topic deliveries and
        // stream shards at once: those it had claimed but not started, and those the drain's
        // deadline cut off. Before the pool ends and logs and metrics are written: nothing
        // here waits for that.
        account.store.leave_cluster().await;
        account.topics.leave().await;
    }
    let handed_back = stopping.elapsed();
    for account in &opened {
        account.pool.shutdown(std::time::Duration::from_secs(5)).await;
        let logs = account.logs.clone();
        let _ = tokio::task::spawn_blocking(move || logs.flush()).await;
        // The alarms' next evaluation is another node's at once (not after the lease).
        if let Err(e) = account.metric_store.flush(chrono::Utc::now().timestamp_millis()).await {
            tracing::warn!("writing metrics: {e}");
        }
        account.metric_store.resign().await;
    }
    if stopping.elapsed() > Duration::from_secs(2) {
        tracing::warn!(
            "stopping took {:.1} s ({:.1} s until the work was handed back, then the pool ended, logs and metrics written)",
            stopping.elapsed().as_secs_f64(),
            handed_back.as_secs_f64()
        );
    }
    drop(opened);
    if let Some(traces) = traces {
        // The last spans go out (or are given up on) before the runtime stops.
        let _ = tokio::task::spawn_blocking(move || traces.shutdown()).await;
    }
    if let Some(cgroups) = cgroups_at_stop {
        // Everything the server made goes: environments still busy are killed with their
        // groups. (Their network namespaces, veth pairs and VPC routers' nftables tables
        // die with their processes and with this one; the shared bridge stays.)
        let _ = tokio::task::spawn_blocking(move || cgroups.remove_all()).await;
    }
    Ok(ExitCode::SUCCESS)
}

/// Warns that an embedded database an earlier run left is not read: with `--store
/// postgres://` the account's `what` are in PostgreSQL.
fn warn_unread(path: &std::path::Path, what: &str, account: &str) {
    if path.exists() {
        tracing::warn!("{} is not read: with --store postgres:// the {what} of account {account} are in PostgreSQL", path.display());
    }
}

/// What every account of one server shares, and how an account's services are opened.
struct Shared {
    /// The data directory: the management account's, with the other accounts' under
    /// `accounts/<id>/`.
    root: PathBuf,
    /// Where function records live (`--store`).
    store_at: StoreAt,
    /// Where code zips live (`--blobs`), when not in the data directory.
    blobs_at: Option<String>,
    management: String,
    region: String,
    concurrency_limit: u32,
    async_retry_delay: Duration,
    alarm_interval: Duration,
    queue_gauge_interval: Duration,
    /// New environments per function every 10 seconds (`--scale-up-rate`).
    scale_up_rate: u32,
    credentials_lifetime: Duration,
    master: nimbus_store::MasterKey,
    keys: Option<Arc<nimbus_identity::Keys>>,
    pool_config: PoolConfig,
    registry: Arc<RuntimeRegistry>,
    vpc_linker: bool,
    status: serde_json::Value,
    public: String,
    url_domain: String,
    api_domain: String,
    port: u16,
    urls: nimbus_api::urls::Urls,
    limits: nimbus_api::conn::ConnectionLimits,
    tls: Option<nimbus_api::tls::Tls>,
    accounts: Arc<nimbus_api::Accounts>,
    /// With a shared store: the router of synchronous invokes, every account's, following
    /// the members of the management account's store (which joins the cluster).
    router: std::sync::OnceLock<Arc<nimbus_api::Router>>,
    metrics: Arc<nimbus_metrics::Metrics>,
    /// Where invocation traces are exported (`--otlp-endpoint`).
    traces: Option<Arc<nimbus_trace::OtlpTraces>>,
    /// Every account opened, for shutdown.
    opened: std::sync::Mutex<Vec<Opened>>,
}

/// An opened account's parts that the drain and shutdown stop, and its data directory's
/// lock.
struct Opened {
    pool: Arc<EnvironmentPool>,
    logs: Arc<LogStore>,
    store: Arc<dyn Store>,
    topics: Arc<nimbus_topics::TopicService>,
    metric_store: Arc<nimbus_metrics::cloudwatch::MetricStore>,
    invoker: Arc<Invoker>,
    async_invoker: Arc<AsyncInvoker>,
    event_sources: Arc<nimbus_triggers::EventSources>,
    queues: Arc<nimbus_queues::QueueService>,
    _data: DataDir,
}

/// Why an account's sealed stores did not open.
enum Sealed {
    /// The records are sealed under another master key.
    WrongMasterKey,
    Kms(String),
    Store(String),
}

/// Where function records live: `nimbus.db` in each account's data directory, or each
/// account's schema in a PostgreSQL database (`--store`).
#[derive(Clone, Debug)]
enum StoreAt {
    Embedded,
    /// The URL, and how long a claim on an async event lasts unrenewed.
    Postgres(String, Duration),
}

impl StoreAt {
    fn parse(url: Option<&str>, lease_secs: u64) -> anyhow::Result<StoreAt> {
        match url.filter(|u| !u.is_empty()) {
            None => Ok(StoreAt::Embedded),
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                Ok(StoreAt::Postgres(u.to_string(), Duration::from_secs(lease_secs.max(1))))
            }
            Some(u) if u.starts_with("sqlite:") => Err(anyhow!("--store {u}: the embedded store is the default; leave --store out")),
            Some(_) => Err(anyhow!("--store must be a postgres:// URL")),
        }
    }

    /// What the records' location is called in messages (never with a password).
    fn shown(&self, data: &DataDir) -> String {
        match self {
            StoreAt::Embedded => data.db_path().display().to_string(),
            StoreAt::Postgres(url, _) => nimbus_store::pg::redacted(url),
        }
    }
}

/// An account's KMS keys and its main database, both sealed under the master key.
async fn open_sealed(
    data: &DataDir,
    store_at: &StoreAt,
    master: &nimbus_store::MasterKey,
    region: &str,
    account: &str,
) -> Result<(Arc<nimbus_kms::KmsService>, Arc<dyn Store>), Sealed> {
    if let StoreAt::Postgres(url, _) = store_at {
        // The database first: unreachable or refusing, the error is the database's, not that
        // of whichever store happens to open first.
        nimbus_store::pg::PgDatabase::open(url, account, "nimbus").await.map_err(|e| Sealed::Store(e.to_string()))?;
    }
    // With a shared store, the keys are the nodes' (the account's schema): a key made on one
    // node opens environment variables on every node.
    let kms = match store_at {
        StoreAt::Embedded => nimbus_kms::KmsService::open(Some(&data.root().join("kms.db")), master.clone(), region, account),
        StoreAt::Postgres(url, _) => {
            if data.root().join("kms.db").exists() {
                tracing::warn!(
                    "{} is not read: with --store postgres:// the KMS keys are in PostgreSQL",
                    data.root().join("kms.db").display()
                );
            }
            nimbus_kms::KmsService::open_shared(url, master.clone(), region, account).await
        }
    }
    .map_err(|e| Sealed::Kms(e.to_string()))?;
    let store: Result<Arc<dyn Store>, nimbus_store::StoreError> = match store_at {
        StoreAt::Embedded => {
            SqliteStore::open_with_kms(&data.db_path(), master.clone(), kms.clone()).map(|s| Arc::new(s) as Arc<dyn Store>)
        }
        StoreAt::Postgres(url, lease) => {
            PgStore::open_with_lease(url, account, master.clone(), Some(kms.clone()), *lease).await.map(|s| s as Arc<dyn Store>)
        }
    };
    match store {
        Ok(store) => Ok((kms, store)),
        Err(nimbus_store::StoreError::Sealing(nimbus_store::sealing::SealError::WrongMasterKey)) => Err(Sealed::WrongMasterKey),
        Err(e) => Err(Sealed::Store(e.to_string())),
    }
}

/// Where code and layer zips live: `<data>/blobs`, or S3-compatible storage (`--blobs`),
/// each account under a prefix of its own; with the latter, also where the S3 service keeps
/// its object bodies (`<prefix>/objects`).
/// An S3 bucket is tried once (a listing) before it is used: a wrong endpoint, bucket or key
/// is an error at start, not at the first upload.
async fn open_blobs(
    data: &DataDir,
    blobs_at: Option<&str>,
    account: &str,
) -> anyhow::Result<(Arc<dyn BlobStore>, Option<nimbus_objects::SharedBodies>)> {
    let Some(url) = blobs_at.filter(|u| !u.is_empty()) else { return Ok((Arc::new(LocalBlobStore::new(data.blobs())), None)) };
    if !url.starts_with("s3://") {
        return Err(anyhow!("--blobs must be an s3:// URL"));
    }
    let (location, query) = url.split_once('?').map_or((url, None), |(l, q)| (l, Some(q)));
    let mut account_url = format!("{}/{account}", location.trim_end_matches('/'));
    if let Some(q) = query {
        account_url.push('?');
        account_url.push_str(q);
    }
    let store = nimbus_store::S3BlobStore::from_url(&account_url).map_err(|e| anyhow!("--blobs: {e}"))?;
    store.probe().await.map_err(|e| anyhow!("--blobs: {e}"))?;
    let (client, root) = store.object_bodies();
    Ok((Arc::new(store), Some(nimbus_objects::SharedBodies::new(client, root))))
}

impl Shared {
    /// A member account's services, in `<data>/accounts/<id>/`.
    /// Opening one is mostly synchronous (its databases, directories, log files): it runs on
    /// a blocking thread, so an account made at run time stalls no API worker.
    async fn open_member(self: &Arc<Self>, account: String) -> anyhow::Result<Arc<AppState>> {
        let me = self.clone();
        let rt = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let data = DataDir::open(&me.root.join("accounts").join(&account)).map_err(|e| anyhow!(e))?;
            rt.block_on(me.open_account(&account, data, None))
        })
        .await?
    }

    /// The services of `account`, whose state is in `data` (`sealed`: its KMS and database
    /// when already open).
    async fn open_account(
        self: &Arc<Self>,
        account: &str,
        data: DataDir,
        sealed: Option<(Arc<nimbus_kms::KmsService>, Arc<dyn Store>)>,
    ) -> anyhow::Result<Arc<AppState>> {
        // Leftovers of a crash: half-unpacked code.
        let _ = nimbus_store::code::remove_tree(&data.tmp());
        std::fs::create_dir_all(data.tmp())?;
        let (kms, store) = match sealed {
            Some(sealed) => sealed,
            None => open_sealed(&data, &self.store_at, &self.master, &self.region, account).await.map_err(|e| match e {
                Sealed::WrongMasterKey => anyhow!("{} is sealed under another master key", self.store_at.shown(&data)),
                Sealed::Kms(why) => anyhow!("opening the KMS database: {why}"),
                Sealed::Store(why) => anyhow!("opening the database: {why}"),
            })?,
        };
        let partition = Partition { region: self.region.clone(), account_id: account.to_string() };
        let (blobs, object_bodies) = open_blobs(&data, self.blobs_at.as_deref(), account).await?;
        let control = Arc::new(
            ControlPlane::open(
                store.clone(),
                blobs,
                CodeDirs {
                    code: CodeCache::new(data.code(), data.tmp()),
                    layers: CodeCache::new(data.layers(), data.tmp()),
                    opt: OptCache::new(data.opt(), data.tmp()),
                },
                partition,
                self.concurrency_limit,
            )
            .await
            .map_err(|e| anyhow!("opening the control plane: {e}"))?,
        );
        // The event source mappings, once made below: they follow other nodes' changes too.
        let mapping_follower: Arc<std::sync::OnceLock<std::sync::Weak<nimbus_triggers::EventSources>>> = Arc::default();
        {
            // Another node's changes (a shared store): this node forgets what it kept of them.
            let control = Arc::downgrade(&control);
            let mappings = mapping_follower.clone();
            store.watch(Arc::new(move |change| {
                let mapping = match &change {
                    nimbus_store::StoreChange::Mapping(uuid) => Some(Some(uuid.clone())),
                    nimbus_store::StoreChange::Resync => Some(None),
                    _ => None,
                };
                if let Some((sources, uuid)) = mapping.and_then(|uuid| Some((mappings.get()?.upgrade()?, uuid))) {
                    tokio::spawn(async move { sources.changed_elsewhere(uuid.as_deref()).await });
                }
                if let Some(control) = control.upgrade() {
                    tokio::spawn(async move { control.changed_elsewhere(change).await });
                }
            }));
        }
        let logs = match &self.store_at {
            StoreAt::Embedded => LogStore::open(&data.logs()).context("opening the log store")?,
            // With a shared store every node's lines are in PostgreSQL, read by any node.
            StoreAt::Postgres(url, _) => {
                // (the spool is the shared store's own; any other entry is an earlier run's files)
                let files = std::fs::read_dir(data.logs()).map(|d| d.flatten().any(|e| e.file_name() != "spool")).unwrap_or(false);
                if files {
                    tracing::warn!(
                        "{} is not read: with --store postgres:// the logs of account {account} are in PostgreSQL",
                        data.logs().display()
                    );
                }
                LogStore::open_shared(&data.logs(), url, account).await.map_err(|e| anyhow!("opening the log store: {e}"))?
            }
        };
        let mut pool_config = self.pool_config.clone();
        if account != self.management {
            // Runtimes started ahead of time serve the management account's cold starts.
            pool_config.prestart = 0;
        }
        let pool = EnvironmentPool::new(pool_config, self.registry.clone(), logs.clone());
        // IAM first: environments' role sessions are issued (and kept) by it. With a shared
        // store its records are the nodes' (the account's schema), not this data directory's.
        let iam = match &self.store_at {
            StoreAt::Embedded => {
                nimbus_iam::IamService::open(&data.root().join("iam.db"), account, self.keys.clone(), self.master.clone()).await
            }
            StoreAt::Postgres(url, _) => {
                if data.root().join("iam.db").exists() {
                    tracing::warn!(
                        "{} is not read: with --store postgres:// IAM's records of account {account} are in PostgreSQL",
                        data.root().join("iam.db").display()
                    );
                }
                nimbus_iam::IamService::open_shared(url, account, self.keys.clone(), self.master.clone()).await
            }
        }
        .map_err(|e| anyhow!("opening the IAM database: {e}"))?;
        let invoker = Invoker::new(control.clone(), pool.clone());
        invoker.set_scale_up_rate(self.scale_up_rate);
        if store.shares_concurrency() {
            // Several nodes: the account's and functions' limits hold across them.
            invoker.share_concurrency(store.clone());
            // And so does provisioned concurrency: each node keeps its share.
            invoker.share_provisioning().await;
        }
        invoker.count_into(self.metrics.clone());
        if let Some(traces) = &self.traces {
            invoker.trace_into(traces.clone());
        }
        // With a shared store the datapoints and alarms are every node's.
        let metric_store = match &self.store_at {
            StoreAt::Embedded => {
                Arc::new(nimbus_metrics::cloudwatch::MetricStore::open(&data.root().join("metrics.db")).map_err(|e| anyhow!(e))?)
            }
            StoreAt::Postgres(url, _) => {
                warn_unread(&data.root().join("metrics.db"), "metrics and alarms", account);
                nimbus_metrics::cloudwatch::MetricStore::open_shared(url, account)
                    .await
                    .map_err(|e| anyhow!("opening the metric store: {e}"))?
            }
        };
        invoker.record_into(metric_store.clone());
        {
            // Log lines in the embedded metric format become metrics, as in CloudWatch Logs.
            let store = Arc::downgrade(&metric_store);
            logs.on_metric_lines(Arc::new(move |_group, timestamp, message| {
                if let Some(store) = store.upgrade() {
                    for d in nimbus_metrics::emf::extract(message, timestamp) {
                        store.record_datum(d);
                    }
                }
            }));
            // And so do the matches of the groups' metric filters.
            let store = Arc::downgrade(&metric_store);
            logs.on_metric_values(Arc::new(move |points| {
                if let Some(store) = store.upgrade() {
                    for p in points {
                        let key = nimbus_metrics::cloudwatch::SeriesKey::new(&p.namespace, &p.name, p.dimensions);
                        store.record(key, &p.unit, p.timestamp, nimbus_metrics::cloudwatch::Aggregate::of(p.value, 1.0));
                    }
                }
            }));
        }
        {
            // AWS/Lambda's datapoints are summed in memory and written every ten seconds.
            let store = Arc::downgrade(&metric_store);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(10));
                loop {
                    tick.tick().await;
                    let Some(store) = store.upgrade() else { break };
                    if let Err(e) = store.flush(chrono::Utc::now().timestamp_millis()).await {
                        tracing::warn!("writing metrics: {e}");
                    }
                }
            });
        }
        // With a shared store, the networks are the nodes' (the account's schema), so every
        // node knows the subnets and groups a function's VpcConfig names.
        let network = match &self.store_at {
            StoreAt::Embedded => nimbus_network::NetworkService::open(&data.root().join("network.db"), &self.region, account).await,
            StoreAt::Postgres(url, _) => {
                if data.root().join("network.db").exists() {
                    tracing::warn!(
                        "{} is not read: with --store postgres:// the VPC networks are in PostgreSQL",
                        data.root().join("network.db").display()
                    );
                }
                nimbus_network::NetworkService::open_shared(url, &self.region, account).await
            }
        }
        .map_err(|e| anyhow!("opening the network database: {e}"))?;
        network.set_attachments(Arc::new(FunctionInterfaces(control.clone())));
        if self.vpc_linker {
            invoker.plan_networks(Arc::new(VpcNetworks(network.clone())));
        }
        {
            let invoker = Arc::downgrade(&invoker);
            network.on_group_change(move |group| {
                if let Some(invoker) = invoker.upgrade() {
                    invoker.network_changed(group);
                }
            });
        }
        if self.keys.is_some() {
            invoker.hand_out_credentials(Arc::new(RoleSessions(iam.clone())), self.credentials_lifetime);
        }
        // Provisioned concurrency configs survive restarts: start their environments again.
        invoker.provision_all();
        let async_invoker = AsyncInvoker::new(
            store.clone(),
            control.clone(),
            invoker.clone(),
            AsyncConfig { retry_delay: self.async_retry_delay, parallelism: 64 },
        );
        tokio::spawn(async_invoker.clone().run());
        {
            // Events that match a log group's subscription filters are invoked on their
            // function asynchronously, as CloudWatch Logs does (retries and DLQ apply); with
            // authentication on, only while the function's policy still lets CloudWatch Logs.
            let invoker = Arc::downgrade(&async_invoker);
            let partition = control.partition().clone();
            let guard = self.keys.as_ref().map(|_| control.clone());
            let runtime = tokio::runtime::Handle::current();
            logs.on_subscribed(
                &partition.account_id.clone(),
                Arc::new(move |destination: &str, group: &str, payload: Vec<u8>| {
                    let Some(invoker) = invoker.upgrade() else { return };
                    let (destination, partition, guard) = (destination.to_string(), partition.clone(), guard.clone());
                    let source = format!("arn:aws:logs:{}:{}:log-group:{group}:*", partition.region, partition.account_id);
                    runtime.spawn(async move {
                        if let Err(e) = deliver_log_batch(&invoker, &partition, guard.as_deref(), &destination, &source, payload).await {
                            tracing::warn!("log subscription to {destination}: {e}");
                        }
                    });
                }),
            )
            .context("starting log subscriptions")?;
        }
        invoker.check_environment_keys(Arc::new(FunctionKeys(kms.clone())));
        // With a shared store the queues and their messages are the nodes' (a message sent to
        // one node may be received from any).
        let queues = match &self.store_at {
            StoreAt::Embedded => nimbus_queues::QueueService::open(&data.root().join("queues.db"), &self.region, account),
            StoreAt::Postgres(url, _) => nimbus_queues::QueueService::open_shared(url, &self.region, account).await,
        }
        .map_err(|e| anyhow!("opening the queue database: {e}"))?;
        let event_sources = nimbus_triggers::EventSources::new(store.clone(), control.clone(), invoker.clone(), queues.clone());
        // With a shared store the tables, their items and their streams are the nodes'.
        let tables = match &self.store_at {
            StoreAt::Embedded => nimbus_tables::TableService::open(&data.root().join("tables.db"), &self.region, account),
            StoreAt::Postgres(url, _) => {
                warn_unread(&data.root().join("tables.db"), "DynamoDB tables", account);
                nimbus_tables::TableService::open_shared(url, &self.region, account).await
            }
        }
        .map_err(|e| anyhow!("opening the tables database: {e}"))?;
        tokio::spawn(sweep_expired_items(Arc::downgrade(&tables)));
        // With a shared store the Kinesis streams and their records are the nodes'.
        let streams = match &self.store_at {
            StoreAt::Embedded => nimbus_streams::StreamService::open(
                &data.root().join("streams.db"),
                &self.region,
                account,
                nimbus_streams::StreamConfig::default(),
            ),
            StoreAt::Postgres(url, _) => {
                warn_unread(&data.root().join("streams.db"), "Kinesis streams", account);
                nimbus_streams::StreamService::open_shared(url, &self.region, account, nimbus_streams::StreamConfig::default()).await
            }
        }
        .map_err(|e| anyhow!("opening the streams database: {e}"))?;
        let _ = mapping_follower.set(Arc::downgrade(&event_sources));
        event_sources.start().await.map_err(|e| anyhow!("starting event source mappings: {e}"))?;
        let guard = self.keys.as_ref().map(|_| control.clone());
        let event_sink =
            Arc::new(LambdaSink { invoker: async_invoker.clone(), partition: control.partition().clone(), guard: guard.clone() });
        // With a shared store the buses, rules and targets are the nodes' (every node runs the
        // scheduler; each scheduled time is delivered by the node that claims it).
        let events = match &self.store_at {
            StoreAt::Embedded => {
                nimbus_events::EventsService::open(&data.root().join("events.db"), &self.region, account, event_sink).await
            }
            StoreAt::Postgres(url, _) => nimbus_events::EventsService::open_shared(url, &self.region, account, event_sink).await,
        }
        .map_err(|e| anyhow!("opening the events database: {e}"))?;
        tokio::spawn(events.clone().run_scheduler());
        let topic_targets = Arc::new(TopicTargets {
            async_invoker: async_invoker.clone(),
            queues: queues.clone(),
            partition: control.partition().clone(),
            guard,
        });
        let mut topic_config = nimbus_topics::TopicConfig::new(&self.region, account, &self.public);
        // With a shared store topics and subscriptions are the nodes', and each publish's
        // pending deliveries are held by its node under a lease as long as an async event's.
        let topics = match &self.store_at {
            StoreAt::Embedded => nimbus_topics::TopicService::open(&data.root().join("topics.db"), topic_config, topic_targets).await,
            StoreAt::Postgres(url, lease) => {
                topic_config.lease = *lease;
                nimbus_topics::TopicService::open_shared(url, topic_config, topic_targets).await
            }
        }
        .map_err(|e| anyhow!("opening the topic database: {e}"))?;
        // With a shared store buckets and objects are the nodes', their bodies in `--blobs`
        // (without it, in this node's directory: other nodes cannot read them).
        let objects_dir = data.root().join("objects");
        let objects = Arc::new(
            match &self.store_at {
                StoreAt::Embedded => nimbus_objects::ObjectStore::open(&objects_dir),
                StoreAt::Postgres(url, _) => {
                    warn_unread(&objects_dir.join("objects.db"), "S3 buckets and objects", account);
                    nimbus_objects::ObjectStore::open_shared(url, account, &objects_dir, object_bodies).await
                }
            }
            .map_err(|e| anyhow!("opening the object store: {e}"))?,
        );
        if objects.collects_orphans() {
            let collector = Arc::downgrade(&objects);
            tokio::spawn(async move {
                // Soon after the start, then daily (a node dies rarely between a body's
                // upload and its commit).
                let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + Duration::from_secs(60), Duration::from_secs(86_400));
                loop {
                    tick.tick().await;
                    let Some(objects) = collector.upgrade() else { return };
                    match objects.collect_orphans(nimbus_objects::ORPHAN_GRACE).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!("objects: removed {n} bodies no object names"),
                        Err(e) => tracing::warn!("objects: collecting bodies no object names: {e}"),
                    }
                }
            });
        }
        let object_events = Arc::new(tokio::sync::Notify::new());
        let sinks = Arc::new(MessageSinks {
            queues: queues.clone(),
            topics: topics.clone(),
            objects: objects.clone(),
            object_events: object_events.clone(),
        });
        async_invoker.set_message_sink(sinks.clone());
        event_sources
            .attach_streams(nimbus_triggers::StreamSources { kinesis: streams.clone(), tables: tables.clone(), sink: sinks })
            .await
            .map_err(|e| anyhow!("starting stream event source mappings: {e}"))?;
        crate::service_metrics::wire(&metric_store, &queues, &topics, &events, self.queue_gauge_interval);
        {
            // Metric alarms are evaluated on the stored metrics; state changes notify their
            // SNS actions.
            metric_store.evaluate_every(self.alarm_interval);
            let (store, topics) = (Arc::downgrade(&metric_store), Arc::downgrade(&topics));
            let (region, account, every) = (self.region.clone(), account.to_string(), self.alarm_interval);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let (Some(store), Some(topics)) = (store.upgrade(), topics.upgrade()) else { break };
                    match store.evaluate_alarms(chrono::Utc::now().timestamp_millis()).await {
                        Ok(changed) => {
                            for (alarm, old) in changed {
                                nimbus_api::notify_alarm(&store, &topics, &alarm, &old, &region, &account).await;
                            }
                        }
                        Err(e) => tracing::warn!("evaluating alarms: {e}"),
                    }
                }
            });
        }
        // With a shared store the HTTP APIs are the nodes' (every node serves every API).
        let gateway = match &self.store_at {
            StoreAt::Embedded => nimbus_gateway::GatewayService::open(&data.root().join("gateway.db"), account).await,
            StoreAt::Postgres(url, _) => nimbus_gateway::GatewayService::open_shared(url, account).await,
        }
        .map_err(|e| anyhow!("opening the API Gateway database: {e}"))?;
        crate::bucket_events::spawn(
            crate::bucket_events::Targets {
                objects: objects.clone(),
                async_invoker: async_invoker.clone(),
                queues: queues.clone(),
                topics: topics.clone(),
                events: events.clone(),
                partition: control.partition().clone(),
                guard: self.keys.as_ref().map(|_| control.clone()),
            },
            object_events.clone(),
        );
        let state = Arc::new(AppState {
            objects,
            object_events,
            iam,
            network,
            keys: self.keys.clone(),
            control: control.clone(),
            invoker,
            async_invoker,
            logs: logs.clone(),
            queues,
            tables,
            streams,
            event_sources,
            events,
            kms,
            topics: topics.clone(),
            status: self.status.clone(),
            url_domain: self.url_domain.clone(),
            gateway,
            api_domain: self.api_domain.clone(),
            port: self.port,
            urls: self.urls.clone(),
            limits: self.limits,
            metrics: self.metrics.clone(),
            metric_store: metric_store.clone(),
            tls: self.tls.clone(),
            accounts: self.accounts.clone(),
            // With a shared store a synchronous invoke that would start cold here goes to the
            // function's home node (`nimbus_api::forward`).
            router: match self.store_at {
                StoreAt::Postgres(..) => Some(
                    self.router
                        .get_or_init(|| {
                            // The management account is opened first: its store is the members'.
                            debug_assert_eq!(account, self.management);
                            nimbus_api::Router::start(control.clone(), self.master.derive(b"nimbus-forward"))
                        })
                        .clone(),
                ),
                StoreAt::Embedded => None,
            },
        });
        self.opened.lock().unwrap_or_else(|p| p.into_inner()).push(Opened {
            pool,
            logs,
            store: store.clone(),
            topics: topics.clone(),
            metric_store,
            invoker: state.invoker.clone(),
            async_invoker: state.async_invoker.clone(),
            event_sources: state.event_sources.clone(),
            queues: state.queues.clone(),
            _data: data,
        });
        Ok(state)
    }
}

/// Opens the accounts Organizations' CreateAccount makes.
struct Opener(Arc<Shared>);

#[async_trait::async_trait]
impl nimbus_api::OpenAccount for Opener {
    async fn open(&self, account: String) -> Result<Arc<AppState>, String> {
        self.0.open_member(account).await.map_err(|e| format!("{e:#}"))
    }
}

/// What uses a subnet or security group: functions whose VpcConfig names it (their network
/// interfaces, in EC2's terms), so neither is deleted under them.
struct FunctionInterfaces(Arc<ControlPlane>);

#[async_trait::async_trait]
impl nimbus_network::Attachments for FunctionInterfaces {
    async fn users(&self, id: &str) -> Vec<String> {
        match self.0.functions_using_network(id).await {
            Ok(users) => users,
            Err(e) => {
                // Unknown is in use: a subnet is never deleted from under a function.
                tracing::warn!("cannot list the functions using {id}: {}", e.message);
                vec![String::from("unknown")]
            }
        }
    }
}

/// A function's VpcConfig as its environments' network: its subnets' and VPC's blocks from
/// the network objects, and its security groups' rules as packet filter rules. Rules that
/// name a security group (rather than a block) are not enforced: they match nothing.
struct VpcNetworks(Arc<nimbus_network::NetworkService>);

impl VpcNetworks {
    fn rule(r: &nimbus_network::store::RuleRecord) -> Option<nimbus_sandbox::network::FilterRule> {
        use nimbus_sandbox::network::{FilterRule, Traffic};
        let nimbus_network::store::Peer::Cidr(block) = &r.peer else { return None };
        let block = nimbus_network::Cidr::parse(block, false)?;
        let port = |p: Option<i64>| p.and_then(|p| u16::try_from(p).ok());
        let byte = |p: Option<i64>| p.and_then(|p| u8::try_from(p).ok());
        let traffic = match r.protocol.as_str() {
            "-1" => Traffic::All,
            "tcp" => Traffic::Tcp(port(r.from_port)?, port(r.to_port)?),
            "udp" => Traffic::Udp(port(r.from_port)?, port(r.to_port)?),
            "icmp" => Traffic::Icmp { kind: byte(r.from_port), code: byte(r.to_port) },
            // Environments have no IPv6.
            "icmpv6" => return None,
            n => Traffic::Protocol(n.parse().ok()?),
        };
        Some(FilterRule { traffic, peer: (block.network, block.prefix) })
    }
}

impl nimbus_invoke::NetworkPlans for VpcNetworks {
    fn plan(&self, vpc: &nimbus_model::VpcConfig) -> Result<Option<nimbus_sandbox::network::VpcPlan>, nimbus_model::ApiError> {
        use nimbus_model::{ApiError, ErrorCode};
        let gone =
            |what: &str, id: &str| ApiError::new(ErrorCode::Ec2Unexpected, format!("The function's {what} {id} does not exist any more"));
        let block = self.0.vpc(&vpc.vpc_id).ok_or_else(|| gone("VPC", &vpc.vpc_id))?.cidr;
        let mut subnets = Vec::new();
        for id in &vpc.subnet_ids {
            let s = self.0.subnet(id).ok_or_else(|| gone("subnet", id))?;
            subnets.push((s.cidr.network, s.cidr.prefix));
        }
        let (mut egress, mut ingress) = (Vec::new(), Vec::new());
        for id in &vpc.security_group_ids {
            let g = self.0.group(id).ok_or_else(|| gone("security group", id))?;
            egress.extend(g.egress.iter().filter_map(Self::rule));
            ingress.extend(g.ingress.iter().filter_map(Self::rule));
        }
        Ok(Some(nimbus_sandbox::network::VpcPlan {
            vpc_id: vpc.vpc_id.clone(),
            vpc_cidr: (block.network, block.prefix),
            subnets,
            security_groups: vpc.security_group_ids.clone(),
            egress,
            ingress,
        }))
    }
}

/// Events for Lambda targets of rules go to the asynchronous invocation queue, if the
/// function's resource policy lets EventBridge invoke it for that rule (checked when
/// authentication is on).
struct LambdaSink {
    invoker: Arc<AsyncInvoker>,
    partition: Partition,
    guard: Option<Arc<ControlPlane>>,
}

/// Execution environments' role sessions, issued by IAM: recorded (sealed) in `iam.db`
/// before they authenticate, so they outlive a restart until they expire.
struct RoleSessions(Arc<nimbus_iam::IamService>);

#[async_trait::async_trait]
impl nimbus_invoke::CredentialIssuer for RoleSessions {
    async fn issue(
        &self,
        principal: nimbus_identity::Principal,
        expires: chrono::DateTime<chrono::Utc>,
    ) -> Result<nimbus_identity::AccessKey, String> {
        self.0.issue_session(principal, expires, None).await.map_err(|e| e.to_string())
    }
}

/// Lambda's view of Nimbus's KMS: whether a function's `KMSKeyArn` can decrypt its
/// variables, with Lambda's exceptions and messages.
struct FunctionKeys(Arc<nimbus_kms::KmsService>);

impl nimbus_invoke::EnvironmentKeys for FunctionKeys {
    fn check(&self, key_arn: &str) -> Result<(), nimbus_model::ApiError> {
        use nimbus_model::{ApiError, ErrorCode};
        let reason = "Please check the function's AWS KMS key settings.";
        self.0.check_usable(key_arn).map_err(|e| match e {
            nimbus_kms::KmsError::Disabled(m) => ApiError::new(
                ErrorCode::KmsDisabled,
                format!("Lambda was unable to decrypt the environment variables because the KMS key used is disabled. {reason} KMS Exception: DisabledExceptionKMS Message: {m}"),
            ),
            nimbus_kms::KmsError::InvalidState(m) => ApiError::new(
                ErrorCode::KmsInvalidState,
                format!("Lambda was unable to decrypt the environment variables because the KMS key used is in an invalid state for KMS Decrypt. {reason} KMS Exception: KMSInvalidStateExceptionKMS Message: {m}"),
            ),
            other => ApiError::new(
                ErrorCode::KmsNotFound,
                format!("Lambda was unable to decrypt the environment variables because the KMS key was not found. {reason} KMS Exception: {}KMS Message: {other}", other.type_name()),
            ),
        })
    }
}

#[async_trait::async_trait]
impl nimbus_events::EventSink for LambdaSink {
    async fn invoke_function(&self, function_arn: &str, rule_arn: &str, payload: bytes::Bytes) -> Result<(), String> {
        if let Some(control) = &self.guard {
            nimbus_api::service_may_invoke(control, "events.amazonaws.com", function_arn, rule_arn, &self.partition.account_id).await?;
        }
        let function = nimbus_model::FunctionRef::parse(function_arn, &self.partition).map_err(|e| e.message)?;
        self.invoker.submit_traced(&function, payload, pubsub()).await.map(|_| ()).map_err(|e| e.message)
    }
}

/// One batch of a log group's subscription filter (`source`, the group's ARN), queued for
/// its function.
async fn deliver_log_batch(
    invoker: &AsyncInvoker,
    partition: &Partition,
    guard: Option<&ControlPlane>,
    function_arn: &str,
    source: &str,
    payload: Vec<u8>,
) -> Result<(), String> {
    if let Some(control) = guard {
        let regional = format!("logs.{}.amazonaws.com", partition.region);
        if nimbus_api::service_may_invoke(control, "logs.amazonaws.com", function_arn, source, &partition.account_id).await.is_err() {
            nimbus_api::service_may_invoke(control, &regional, function_arn, source, &partition.account_id).await?;
        }
    }
    let function = nimbus_model::FunctionRef::parse(function_arn, partition).map_err(|e| e.message)?;
    invoker.submit_traced(&function, bytes::Bytes::from(payload), pubsub()).await.map(|_| ()).map_err(|e| e.message)
}

/// Dead letters and destination records of asynchronous invocations go to the built-in
/// queue and topic services; stream mappings' failure records to those or to a bucket.
struct MessageSinks {
    queues: Arc<nimbus_queues::QueueService>,
    topics: Arc<nimbus_topics::TopicService>,
    objects: Arc<nimbus_objects::ObjectStore>,
    /// Wakes the bucket notification deliverer after an object is written.
    object_events: Arc<tokio::sync::Notify>,
}

#[async_trait::async_trait]
impl nimbus_invoke::MessageSink for MessageSinks {
    async fn send(&self, arn: &str, body: String, attributes: Vec<(String, String)>) -> Result<(), String> {
        match arn.split(':').nth(2) {
            Some("sqs") => {
                let attributes = attributes.into_iter().map(|(k, v)| (k, nimbus_queues::AttributeValue::string("String", &v))).collect();
                self.queues.send(arn, &body, attributes).await.map(|_| ()).map_err(|e| e.to_string())
            }
            Some("sns") => self.topics.publish_to_arn(arn, &body, attributes).await.map(|_| ()).map_err(|e| e.to_string()),
            _ => Err(format!("{arn}: only SQS queues and SNS topics can receive messages here")),
        }
    }

    async fn put_object(&self, arn: &str, key: &str, body: Vec<u8>) -> Result<(), String> {
        let bucket = arn
            .strip_prefix("arn:aws:s3:::")
            .filter(|b| !b.is_empty() && !b.contains('/'))
            .ok_or_else(|| format!("{arn}: not a bucket"))?;
        let mut staging = self.objects.stage(&[]).map_err(|e| e.to_string())?;
        staging.write(&body).map_err(|e| e.to_string())?;
        let staged = staging.finish().map_err(|e| e.to_string())?;
        let meta = nimbus_objects::ObjectMeta { content_type: Some("application/json".into()), ..Default::default() };
        self.objects.put_object(bucket, key, staged, meta, Vec::new(), None, Default::default(), "Put").await.map_err(|e| e.to_string())?;
        self.object_events.notify_one();
        Ok(())
    }
}

/// Where topic subscriptions deliver: functions through the asynchronous invoker (its
/// durable queue and retries), queues through the queue service.
struct TopicTargets {
    async_invoker: Arc<AsyncInvoker>,
    queues: Arc<nimbus_queues::QueueService>,
    partition: Partition,
    /// With authentication on: functions are invoked, and queues sent to, only where their
    /// policy lets SNS.
    guard: Option<Arc<ControlPlane>>,
}

#[async_trait::async_trait]
impl nimbus_topics::Deliver for TopicTargets {
    async fn invoke_function(&self, function_arn: &str, topic_arn: &str, payload: String) -> Result<(), nimbus_topics::Undelivered> {
        if let Some(control) = &self.guard {
            nimbus_api::service_may_invoke(control, "sns.amazonaws.com", function_arn, topic_arn, &self.partition.account_id)
                .await
                .map_err(nimbus_topics::Undelivered::Refused)?;
        }
        let function = nimbus_model::FunctionRef::parse(function_arn, &self.partition).map_err(|e| e.to_string())?;
        self.async_invoker
            .submit_traced(&function, bytes::Bytes::from(payload), pubsub())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string().into())
    }

    async fn send_to_queue(
        &self,
        queue_arn: &str,
        topic_arn: &str,
        m: nimbus_topics::QueueMessage,
    ) -> Result<(), nimbus_topics::Undelivered> {
        let name = self
            .queues
            .name_from_arn(queue_arn)
            .ok_or_else(|| nimbus_topics::Undelivered::Transient(format!("{queue_arn}: no such queue")))?;
        if self.guard.is_some() {
            // A queue that does not exist (yet) is retried; one that refuses the topic is not.
            let policy =
                self.queues.stored_policy(&name).await.map_err(|e| nimbus_topics::Undelivered::Transient(format!("{queue_arn}: {e}")))?;
            nimbus_api::service_may_send(policy, "sns.amazonaws.com", queue_arn, topic_arn, &self.partition.account_id)
                .map_err(nimbus_topics::Undelivered::Refused)?;
        }
        let attributes = m
            .attributes
            .into_iter()
            .map(|(k, a)| {
                let v = match (a.string_value, a.binary_value) {
                    (_, Some(b)) => nimbus_queues::AttributeValue::binary(&a.data_type, &b),
                    (s, None) => nimbus_queues::AttributeValue::string(&a.data_type, s.as_deref().unwrap_or("")),
                };
                (k, v)
            })
            .collect();
        let message =
            nimbus_queues::SendMessage { body: m.body, attributes, group_id: m.group_id, dedup_id: m.dedup_id, ..Default::default() };
        self.queues.send_message(&name, message).await.map(|_| ()).map_err(|e| e.to_string().into())
    }
}

/// This host's name, for the traces' resource (`host.name`).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_else(|_| "localhost".into())
}

/// The trace context of an event a topic, a rule or a log subscription hands to a function.
fn pubsub() -> nimbus_model::trace::TraceContext {
    nimbus_model::trace::TraceContext { parent: None, trigger: nimbus_model::trace::Trigger::PubSub }
}

/// Deletes items whose TTL has passed, every few seconds, while the account's tables are open
/// (AWS deletes them within days; sooner is allowed), and stream records past their 24 hours.
async fn sweep_expired_items(tables: std::sync::Weak<nimbus_tables::TableService>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(tables) = tables.upgrade() else { break };
        if let Err(e) = tables.sweep_expired(1000).await {
            tracing::warn!("deleting expired items: {e}");
        }
        if let Err(e) = tables.sweep_stream_records(nimbus_tables::streams::RETENTION_SECS).await {
            tracing::warn!("trimming stream records: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_threads_follow_the_cores_unless_asked() {
        // (asked, cores) → workers
        let cases = [(None, 1, 1), (None, 2, 1), (None, 3, 3), (None, 16, 16), (Some(4), 2, 4), (Some(0), 8, 1), (Some(2), 2, 2)];
        for (asked, cores, want) in cases {
            assert_eq!(worker_threads(asked, cores), want, "{asked:?} asked, {cores} cores");
        }
    }

    /// Hundreds of clients connecting at once all get through the handshake before the
    /// server accepts any (with the default 128 the kernel drops the rest's SYNs and they
    /// wait a second or more to retry). Needs `net.core.somaxconn` ≥ 600 (4,096 since
    /// Linux 5.4).
    #[tokio::test]
    async fn hundreds_of_connections_queue_before_any_is_accepted() {
        let listener = listen("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let clients = tokio::task::spawn_blocking(move || {
            (0..600)
                .map(|i| {
                    std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500))
                        .unwrap_or_else(|e| panic!("connection {i} waited for the queue: {e}"))
                })
                .collect::<Vec<_>>()
        });
        let clients = clients.await.unwrap();
        assert_eq!(clients.len(), 600);
        drop(listener);
    }

    #[tokio::test]
    async fn listen_names_what_it_cannot_bind() {
        let no_port = listen("127.0.0.1").await;
        assert!(no_port.is_err(), "{no_port:?}");
        let taken = listen("127.0.0.1:0").await.unwrap();
        let again = listen(&taken.local_addr().unwrap().to_string()).await;
        assert_eq!(again.unwrap_err().kind(), std::io::ErrorKind::AddrInUse);
    }
}

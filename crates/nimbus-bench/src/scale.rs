//! Scale runs of `nimbus-bench` (issue 13's proof): `--burst N --runtime R` (N concurrent
//! 1 s invocations, each needing an environment of its own, next to the floor of starting N
//! bare runtimes on this machine's cores and, for `provided`, the isolation floor of
//! [`crate::floor`]) and `--density N --runtime R` (N environments
//! started at once, then idle and frozen: the host memory each costs, the server's RSS and
//! descriptors, and how the server answers while it holds them). Both watch the server's
//! peak RSS, descriptors and threads, and count failures by their error type.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;

use crate::{bare_start, call, connect, ms, pct, sign, us, zip_files};

/// The runtimes the scale runs know: (runtime id, handler, file name, code, the bare start
/// command used as its floor).
struct Kind {
    runtime: &'static str,
    handler: &'static str,
    file: &'static str,
    code: &'static [u8],
    bare: (&'static str, &'static [&'static str]),
}

/// Sleeps `sleep_ms`; with `barrier` (a URL on the host), first waits until the bench
/// answers it, which it does once every environment of the run has reached it.
const NODE_CODE: &[u8] = br#"const http = require('http');
exports.handler = async (e) => {
  if (e.barrier) {
    const failed = await new Promise((done) => {
      const req = http.get(e.barrier, (res) => { res.resume(); res.on('end', () => done(null)); });
      req.on('error', (err) => done(String(err)));
      req.setTimeout(e.hold_ms || 600000, () => { req.destroy(); done('barrier timeout'); });
    });
    if (failed) return { ok: false, barrier: failed };
  }
  if (e.sleep_ms) await new Promise((r) => setTimeout(r, e.sleep_ms));
  return { ok: true };
};
"#;

/// `urllib.request` costs more to import than the interpreter takes to start (it pulls in
/// `http.client`, `email` and `ssl`), so only the density run, which waits at the barrier,
/// imports it; Node's `http` is built in.
const PYTHON_CODE: &[u8] = br#"import time

def handler(e, context):
    if e.get("barrier"):
        import urllib.request
        try:
            urllib.request.urlopen(e["barrier"], timeout=e.get("hold_ms", 600000) / 1000).read()
        except Exception as x:
            return {"ok": False, "barrier": str(x)}
    if e.get("sleep_ms"):
        time.sleep(e["sleep_ms"] / 1000)
    return {"ok": True}
"#;

fn kind(runtime: &str) -> anyhow::Result<Kind> {
    Ok(match runtime {
        "provided" | "provided.al2023" => {
            Kind { runtime: "provided.al2023", handler: "bootstrap", file: "bootstrap", code: b"", bare: ("", &[]) }
        }
        "nodejs20.x" | "node" => Kind {
            runtime: "nodejs20.x",
            handler: "index.handler",
            file: "index.js",
            code: NODE_CODE,
            bare: ("/usr/bin/node", &["-e", "0"]),
        },
        "python3.11" | "python" => Kind {
            runtime: "python3.11",
            handler: "index.handler",
            file: "index.py",
            code: PYTHON_CODE,
            bare: ("/usr/bin/python3.11", &["-c", "pass"]),
        },
        other => bail!("--runtime {other}: one of provided, python3.11, nodejs20.x"),
    })
}

/// Creates the run's function (the echo bootstrap for `provided`) with `memory_mb` and a
/// timeout of `timeout_s` (AWS's default of 3 for a burst, as the echo function has; long
/// enough to hold at a barrier for density).
async fn create_function(
    s: &mut SendRequest<Full<Bytes>>,
    name: &str,
    k: &Kind,
    echo: &Path,
    memory_mb: u32,
    timeout_s: u32,
) -> anyhow::Result<()> {
    let (code, mode) = if k.code.is_empty() {
        (std::fs::read(echo).with_context(|| format!("reading {}", echo.display()))?, 0o755)
    } else {
        (k.code.to_vec(), 0o644)
    };
    let body = serde_json::json!({
        "FunctionName": name, "Runtime": k.runtime, "Handler": k.handler, "MemorySize": memory_mb, "Timeout": timeout_s,
        "Role": "arn:aws:iam::000000000000:role/bench", "Code": {"ZipFile": zip_files(&[(k.file, code, mode)])?},
    });
    let (st, b) = call(s, "POST", "/2015-03-31/functions", Bytes::from(body.to_string())).await?;
    if st != 201 {
        bail!("create {name}: {st} {}", String::from_utf8_lossy(&b));
    }
    Ok(())
}

/// The bare start of the runtime (median of `n`), the same measure as `--cold` uses.
fn bare(k: &Kind, echo: &Path, n: usize) -> Duration {
    if k.bare.0.is_empty() {
        bare_start(&echo.to_string_lossy(), &[], n)
    } else {
        bare_start(k.bare.0, k.bare.1, n)
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// What one invocation ended with: `None` for a success, else its error type, as AWS
/// reports it (`429 TooManyRequestsException (ConcurrentInvocationLimitExceeded)`, a
/// function error's `errorType`, or what the client saw: a refused or reset connection).
async fn invoke_once(addr: &str, name: &str, payload: Bytes) -> (Option<String>, Duration) {
    let t = Instant::now();
    let outcome = async {
        let mut s = connect(addr).await.map_err(|e| format!("client: connect: {}", root_cause(&e)))?;
        let path = format!("/2015-03-31/functions/{name}/invocations");
        let mut req = http::Request::builder()
            .method("POST")
            .uri(&path)
            .header("host", "bench")
            .body(Full::new(payload.clone()))
            .map_err(|e| format!("client: {e}"))?;
        sign(&mut req, &payload, "lambda");
        s.ready().await.map_err(|e| format!("client: {e}"))?;
        let resp = s.send_request(req).await.map_err(|e| format!("client: request: {e}"))?;
        let status = resp.status().as_u16();
        let header = |h: &str| resp.headers().get(h).and_then(|v| v.to_str().ok()).map(str::to_string);
        let (error_type, function_error) = (header("x-amzn-errortype"), header("x-amz-function-error"));
        let body = resp.into_body().collect().await.map_err(|e| format!("client: body: {e}"))?.to_bytes();
        let doc: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        if status == 200 && function_error.is_none() && doc.get("ok") != Some(&serde_json::Value::Bool(false)) {
            return Ok(());
        }
        if status == 200 {
            let what = doc["errorType"].as_str().or(doc["barrier"].as_str()).unwrap_or("?");
            return Err(format!("200 function error: {what}"));
        }
        let ty = error_type
            .map(|t| t.split(':').next().unwrap_or_default().to_string())
            .or_else(|| doc["__type"].as_str().or(doc["Type"].as_str()).map(str::to_string))
            .unwrap_or_default();
        let reason = doc["Reason"].as_str().map(|r| format!(" ({r})")).unwrap_or_default();
        Err(format!("{status} {ty}{reason}"))
    }
    .await;
    (outcome.err(), t.elapsed())
}

fn root_cause(e: &anyhow::Error) -> String {
    e.root_cause().to_string()
}

/// How many descriptors `pid` has open. Since Linux 6.2 the size `stat` gives
/// `/proc/<pid>/fd` is that count, read from the descriptor table's bitmap; listing the
/// directory instead looks up every descriptor's entry, which at 7,000 of them every 50 ms
/// was about 1 % of the CPU a 1,000 burst uses, taken from what it measures. Older kernels
/// answer 0 there, and are counted by listing.
fn open_descriptors(pid: u32) -> usize {
    let dir = format!("/proc/{pid}/fd");
    match std::fs::metadata(&dir) {
        Ok(m) if m.len() > 0 => m.len() as usize,
        _ => std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0),
    }
}

/// The server's peak RSS, descriptors and threads, sampled every 50 ms while a run lasts.
#[derive(Default, Clone, Copy)]
pub(crate) struct Usage {
    pub(crate) rss_kb: u64,
    fds: usize,
    threads: u64,
}

impl Usage {
    pub(crate) fn now(pid: u32) -> Usage {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| {
            status.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok()).unwrap_or(0)
        };
        let fds = open_descriptors(pid);
        Usage { rss_kb: field("VmRSS:"), fds, threads: field("Threads:") }
    }

    fn max(self, o: Usage) -> Usage {
        Usage { rss_kb: self.rss_kb.max(o.rss_kb), fds: self.fds.max(o.fds), threads: self.threads.max(o.threads) }
    }

    fn describe(&self) -> String {
        format!("{:.0} MB RSS, {} fds, {} threads", self.rss_kb as f64 / 1024.0, self.fds, self.threads)
    }
}

/// The whole machine's CPU time from `/proc/stat` (in clock ticks): everything that ran
/// during a burst, the server, its environments and the kernel's threads alike (and this
/// bench's client), which varies much less from run to run than the wall time does.
#[derive(Clone, Copy)]
pub(crate) struct MachineTime {
    busy: u64,
    idle: u64,
}

impl MachineTime {
    pub(crate) fn now() -> MachineTime {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let ticks: Vec<u64> = stat
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("cpu "))
            .map(|rest| rest.split_whitespace().filter_map(|t| t.parse().ok()).collect())
            .unwrap_or_default();
        let at = |i: usize| ticks.get(i).copied().unwrap_or(0);
        // user nice system idle iowait irq softirq steal (guest time is inside user's; steal,
        // the hypervisor running something else, is not this machine's work)
        MachineTime { busy: at(0) + at(1) + at(2) + at(5) + at(6), idle: at(3) + at(4) }
    }

    pub(crate) fn since(self, before: MachineTime) -> MachineTime {
        MachineTime { busy: self.busy.saturating_sub(before.busy), idle: self.idle.saturating_sub(before.idle) }
    }

    /// `3.41 ms (idle 12 %)`: busy time per invocation, and the share the cores sat idle.
    pub(crate) fn per(self, n: usize) -> String {
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let busy_ms = self.busy as f64 * 1000.0 / hz;
        let idle = 100.0 * self.idle as f64 / (self.busy + self.idle).max(1) as f64;
        format!("{:.2} ms (idle {idle:.0} %)", busy_ms / n.max(1) as f64)
    }

    /// The share of the time the cores were busy.
    fn busy_fraction(&self) -> f64 {
        self.busy as f64 / (self.busy + self.idle).max(1) as f64
    }

    /// `1.73 s busy (idle 12 %)`.
    pub(crate) fn seconds(self) -> String {
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let idle = 100.0 * self.idle as f64 / (self.busy + self.idle).max(1) as f64;
        format!("{:.2} s busy (idle {idle:.0} %)", self.busy as f64 / hz)
    }
}

pub(crate) struct Watch {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Usage>,
}

impl Watch {
    pub(crate) fn start(pid: u32) -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = Usage::default();
            while !flag.load(Ordering::Relaxed) {
                peak = peak.max(Usage::now(pid));
                std::thread::sleep(Duration::from_millis(50));
            }
            peak.max(Usage::now(pid))
        });
        Watch { stop, thread }
    }

    pub(crate) fn peak(self) -> Usage {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

fn tally(failures: &[String]) -> String {
    let mut by: BTreeMap<&str, usize> = BTreeMap::new();
    for f in failures {
        *by.entry(f.as_str()).or_default() += 1;
    }
    by.iter().map(|(k, n)| format!("{n} × {k}")).collect::<Vec<_>>().join("; ")
}

/// `n` concurrent invocations of a function sleeping 1 s in `runtime`: each needs its own
/// environment, so this measures creating `n` environments at once, next to the floor of
/// starting `n` bare runtimes on this machine's cores (one after another per core).
pub(crate) async fn burst(
    addr: &str,
    pid: u32,
    s: &mut SendRequest<Full<Bytes>>,
    echo: &Path,
    runtime: &str,
    n: usize,
) -> anyhow::Result<()> {
    let k = kind(runtime)?;
    let name = if k.code.is_empty() { "echo".to_string() } else { "burst".to_string() };
    if !k.code.is_empty() {
        create_function(s, &name, &k, echo, 1769, 3).await?;
    }
    let bare = bare(&k, echo, 20);
    let floor = Duration::from_secs(1) + bare.mul_f64(n as f64 / cores() as f64);
    let before = Usage::now(pid);
    let neighbours = neighbour_table();
    let watch = Watch::start(pid);
    let busy_before = MachineTime::now();
    let started = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (addr, name) = (addr.to_string(), name.clone());
            tokio::spawn(async move { invoke_once(&addr, &name, Bytes::from_static(b"{\"sleep_ms\":1000}")).await })
        })
        .collect();
    let (mut lat, mut failed) = (Vec::new(), Vec::new());
    for t in tasks {
        match t.await? {
            (None, d) => lat.push(d),
            (Some(e), _) => failed.push(e),
        }
    }
    let wall = started.elapsed();
    let spent = MachineTime::now().since(busy_before);
    let peak = watch.peak();
    lat.sort();
    println!("\n| burst of {n} concurrent 1 s invocations | succeeded | failed | wall time | p50 | p99 | floor: 1 s + {n} × bare start ÷ {} cores | the machine's CPU ÷ invocations (idle) | server before → peak |", cores());
    println!("|---|---|---|---|---|---|---|---|---|");
    let (p50, p99) = if lat.is_empty() { ("-".into(), "-".into()) } else { (ms(pct(&lat, 0.5)), ms(pct(&lat, 0.99))) };
    println!(
        "| {} | {} | {} | {} | {p50} | {p99} | {} (bare start {}) | {} | {} → {} |",
        k.runtime,
        lat.len(),
        failed.len(),
        ms(wall),
        ms(floor),
        ms(bare),
        spent.per(n),
        before.describe(),
        peak.describe()
    );
    if !failed.is_empty() {
        println!("failures by type: {}", tally(&failed));
    }
    if let Some(note) = neighbour_note(neighbours) {
        println!("{note}");
    }
    Ok(())
}

/// The burst's second floor, measured after it (see [`crate::floor`]): `n` environments'
/// kernel objects and their `provided` runtimes started, with none of the server's work.
pub(crate) fn isolation_floor(echo: &Path, n: usize) {
    // Four threads a core: each waits for the linker's thread and for each clone's exec.
    let threads = 4 * cores();
    let floor = match crate::floor::isolation_floor(n, echo, threads) {
        Ok(floor) => floor,
        Err(e) => {
            println!("\nisolation floor skipped: {e:#}");
            return;
        }
    };
    println!(
        "\n| isolation floor: {n} environments' kernel objects, runtimes started and waiting, no server ({threads} threads) | made | time to make them | 1 s + that | the machine's CPU ÷ environments (idle) |"
    );
    println!("|---|---|---|---|---|");
    match floor.error {
        None => println!(
            "| provided.al2023 | {} | {} | {} | {} |",
            floor.made,
            ms(floor.elapsed),
            ms(Duration::from_secs(1) + floor.elapsed),
            floor.spent.per(floor.made.max(1)),
        ),
        Some(e) => {
            println!("| provided.al2023 | {} of {n} | - | - | - |", floor.made);
            println!("the floor stopped early: {e}");
        }
    }
}

/// Waits until the server's veth pairs are gone (the kernel removes a stopped server's
/// namespaces in the background, holding the network's lock) and the machine has been
/// nearly idle (under 10 % busy) for a second; at most `limit`, then says so.
pub(crate) fn wait_until_quiet(limit: Duration) {
    let until = Instant::now() + limit;
    // Ports of a Nimbus bridge (`nimbus0`, `nimbus0b<k>`): environments' host ends.
    let links_left = || {
        std::fs::read_dir("/sys/class/net").into_iter().flatten().flatten().any(|l| {
            std::fs::read_link(l.path().join("master"))
                .ok()
                .and_then(|m| m.file_name().map(|n| n.to_string_lossy().into_owned()))
                .is_some_and(|m| m == "nimbus0" || m.starts_with("nimbus0b"))
        })
    };
    while Instant::now() < until {
        let before = MachineTime::now();
        std::thread::sleep(Duration::from_secs(1));
        if !links_left() && MachineTime::now().since(before).busy_fraction() < 0.10 {
            return;
        }
    }
    println!("\n(the machine was not quiet {} s after the server's stop: the floor below shares it)", limit.as_secs());
}

/// The barrier the density run's functions wait at: each GET is held until `target` have
/// arrived (or `give_up` says the rest will not come), then all are answered at once.
struct Barrier {
    arrived: AtomicUsize,
    /// Invocations that ended without reaching it (failed): the barrier does not wait for them.
    lost: AtomicUsize,
    target: usize,
    open: tokio::sync::watch::Sender<bool>,
}

impl Barrier {
    fn check(&self) {
        if self.arrived.load(Ordering::SeqCst) + self.lost.load(Ordering::SeqCst) >= self.target {
            let _ = self.open.send(true);
        }
    }
}

async fn serve_barrier(listener: tokio::net::TcpListener, barrier: Arc<Barrier>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    while let Ok((mut stream, _)) = listener.accept().await {
        let barrier = barrier.clone();
        tokio::spawn(async move {
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let mut open = barrier.open.subscribe();
            barrier.arrived.fetch_add(1, Ordering::SeqCst);
            barrier.check();
            let _ = open.wait_for(|o| *o).await;
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok").await;
        });
    }
}

/// Every environment group of the server's set, with its memory charge (bytes) and whether
/// it is frozen: `<parent>/<environment>` in each hierarchy the server uses.
fn environments(parents: &[PathBuf]) -> (usize, u64, usize) {
    let (mut groups, mut bytes, mut frozen) = (std::collections::BTreeSet::new(), 0u64, 0usize);
    for p in parents {
        let Ok(dir) = std::fs::read_dir(p) else { continue };
        for e in dir.flatten().filter(|e| e.path().is_dir()) {
            let d = e.path();
            groups.insert(e.file_name());
            for f in ["memory.usage_in_bytes", "memory.current"] {
                if let Some(v) = std::fs::read_to_string(d.join(f)).ok().and_then(|t| t.trim().parse::<u64>().ok()) {
                    bytes += v;
                }
            }
            let events = std::fs::read_to_string(d.join("cgroup.events")).unwrap_or_default();
            let state = std::fs::read_to_string(d.join("freezer.state")).unwrap_or_default();
            if events.lines().any(|l| l == "frozen 1") || state.trim() == "FROZEN" {
                frozen += 1;
            }
        }
    }
    (groups.len(), bytes, frozen)
}

/// How often the host's IPv4 neighbour (ARP) table was full (`table_fulls` of
/// /proc/net/stat/arp_cache), and its hard size (`gc_thresh3`): every linked environment
/// that talks to the host (the Nimbus API at the gateway, the barrier) needs an entry.
pub(crate) fn neighbour_table() -> (u64, u64) {
    let fulls = std::fs::read_to_string("/proc/net/stat/arp_cache")
        .ok()
        .and_then(|t| {
            let mut lines = t.lines();
            let head: Vec<&str> = lines.next()?.split_whitespace().collect();
            let i = head.iter().position(|h| *h == "table_fulls")?;
            // One line per CPU, in hex.
            Some(lines.filter_map(|l| u64::from_str_radix(l.split_whitespace().nth(i)?, 16).ok()).sum())
        })
        .unwrap_or(0);
    let size = std::fs::read_to_string("/proc/sys/net/ipv4/neigh/default/gc_thresh3").ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0);
    (fulls, size)
}

fn neighbour_note(before: (u64, u64)) -> Option<String> {
    let after = neighbour_table();
    (after.0 > before.0).then(|| {
        format!(
            "the host's neighbour (ARP) table was full {} times (net.ipv4.neigh.default.gc_thresh3 = {}): linked environments past it cannot reach the host",
            after.0 - before.0,
            after.1
        )
    })
}

fn mem_available_kb() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("MemAvailable:")).and_then(|v| v.split_whitespace().next()?.parse().ok()))
        .unwrap_or(0)
}

/// p50 and p99 of `n` calls of `path` at concurrency 1 (each must answer 200).
async fn latency(
    s: &mut SendRequest<Full<Bytes>>,
    method: &str,
    path: &str,
    body: &'static [u8],
    n: usize,
) -> anyhow::Result<(Duration, Duration)> {
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let (st, b) = call(s, method, path, Bytes::from_static(body)).await?;
        if st != 200 {
            bail!("{path}: {st} {}", String::from_utf8_lossy(&b));
        }
        lat.push(t.elapsed());
    }
    lat.sort();
    Ok((pct(&lat, 0.5), pct(&lat, 0.99)))
}

/// `n` environments of one function started at once (each invocation waits at a barrier
/// on the host until all have started, so none is reused), then left idle and frozen: what
/// each costs the host and how the server answers while it holds them.
pub(crate) async fn density(
    addr: &str,
    pid: u32,
    s: &mut SendRequest<Full<Bytes>>,
    echo: &Path,
    runtime: &str,
    n: usize,
    sleep_ms: Option<u64>,
) -> anyhow::Result<()> {
    let k = kind(runtime)?;
    let status: serde_json::Value = {
        let (st, b) = call(s, "GET", "/_nimbus/status", Bytes::new()).await?;
        if st != 200 {
            bail!("status: {st}");
        }
        serde_json::from_slice(&b)?
    };
    let parents: Vec<PathBuf> = status["cgroups"].as_array().into_iter().flatten().filter_map(|p| p.as_str()).map(PathBuf::from).collect();
    if parents.is_empty() {
        bail!("the server runs without cgroups ({}): nothing to measure", status["isolation"]);
    }
    create_function(s, "idle", &k, echo, 512, 900).await?;
    // The peer the server must keep serving: warm invokes of another function, ListFunctions.
    let invoke_path = "/2015-03-31/functions/echo/invocations";
    call(s, "POST", invoke_path, Bytes::from_static(b"{}")).await?;
    let quiet_invoke = latency(s, "POST", invoke_path, b"{}", 1000).await?;
    let quiet_list = latency(s, "GET", "/2015-03-31/functions/", b"", 300).await?;
    let (base_groups, base_bytes, _) = environments(&parents);
    let base_available = mem_available_kb();
    let before = Usage::now(pid);
    let neighbours = neighbour_table();

    // The barrier listens on every address: a linked environment reaches the host at its
    // gateway, the first address of the sandbox subnet (the server's default).
    // Its accept queue holds every environment arriving at once (the default 128 drops SYNs).
    let listener = {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind((std::net::Ipv4Addr::UNSPECIFIED, 0).into())?;
        socket.listen(4096)?
    };
    let port = listener.local_addr()?.port();
    let (open, _) = tokio::sync::watch::channel(false);
    let barrier = Arc::new(Barrier { arrived: AtomicUsize::new(0), lost: AtomicUsize::new(0), target: n, open });
    tokio::spawn(serve_barrier(listener, barrier.clone()));
    let payload = if let Some(ms) = sleep_ms {
        serde_json::json!({"sleep_ms": ms})
    } else if k.code.is_empty() {
        // The echo bootstrap cannot wait at a barrier: it holds long enough for all to start.
        serde_json::json!({"sleep_ms": (n as u64 * 20).max(5000)})
    } else {
        serde_json::json!({"barrier": format!("http://10.213.0.1:{port}/"), "hold_ms": 600_000})
    };
    let payload = Bytes::from(payload.to_string());
    let watch = Watch::start(pid);
    let started = Instant::now();
    let all_in = Arc::new(std::sync::Mutex::new(None::<Duration>));
    {
        let (barrier, all_in) = (barrier.clone(), all_in.clone());
        let mut open = barrier.open.subscribe();
        tokio::spawn(async move {
            let _ = open.wait_for(|o| *o).await;
            *all_in.lock().unwrap_or_else(|p| p.into_inner()) = Some(started.elapsed());
        });
    }
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (addr, payload, barrier) = (addr.to_string(), payload.clone(), barrier.clone());
            tokio::spawn(async move {
                let r = invoke_once(&addr, "idle", payload).await;
                if r.0.is_some() {
                    barrier.lost.fetch_add(1, Ordering::SeqCst);
                    barrier.check();
                }
                r
            })
        })
        .collect();
    let mut failed = Vec::new();
    for t in tasks {
        match t.await? {
            (None, _) => {}
            (Some(e), _) => failed.push(e),
        }
    }
    let wall = started.elapsed();
    let arrived = barrier.arrived.load(Ordering::SeqCst);
    let peak = watch.peak();

    // Let them freeze (each is frozen shortly after its invocation returns): until the
    // count of frozen groups stops changing.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = environments(&parents);
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = environments(&parents);
        let settled = now.2 == last.2;
        last = now;
        if settled || Instant::now() > deadline {
            break;
        }
    }
    let (groups, bytes, frozen) = last;
    let held = groups.saturating_sub(base_groups);
    let after = Usage::now(pid);
    let host_kb = base_available.saturating_sub(mem_available_kb());
    // A new connection: the first one sat idle past the server's keep-alive timeout.
    let mut s = connect(addr).await?;
    let held_invoke = latency(&mut s, "POST", invoke_path, b"{}", 1000).await?;
    let held_list = latency(&mut s, "GET", "/2015-03-31/functions/", b"", 300).await?;
    let per = |total: f64| if held == 0 { 0.0 } else { total / held as f64 };

    println!(
        "\n| idle {} environments | asked | started (reached the barrier) | failed | all started after | held idle | frozen |",
        k.runtime
    );
    println!("|---|---|---|---|---|---|---|");
    let all_in = all_in.lock().unwrap_or_else(|p| p.into_inner()).map(ms).unwrap_or_else(|| "-".into());
    let arrived = if k.code.is_empty() || sleep_ms.is_some() { "-".to_string() } else { arrived.to_string() };
    println!("| {} | {n} | {arrived} | {} | {all_in} (all answered after {}) | {held} | {frozen} |", k.runtime, failed.len(), ms(wall));
    if !failed.is_empty() {
        println!("failures by type: {}", tally(&failed));
    }
    if let Some(note) = neighbour_note(neighbours) {
        println!("{note}");
    }
    println!("\n| held idle | cgroup-charged memory per environment | host MemAvailable drop per environment | server before | server peak while starting | server while holding |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| {held} | {:.2} MB | {:.2} MB | {} | {} | {} |",
        per(bytes.saturating_sub(base_bytes) as f64 / 1048576.0),
        per(host_kb as f64 / 1024.0),
        before.describe(),
        peak.describe(),
        after.describe()
    );
    println!(
        "server per held environment: {:.1} fds, {:.0} kB RSS",
        per(after.fds.saturating_sub(before.fds) as f64),
        per(after.rss_kb.saturating_sub(before.rss_kb) as f64)
    );
    println!("\n| server responsiveness (c=1) | p50 quiet | p99 quiet | p50 holding {held} | p99 holding {held} |");
    println!("|---|---|---|---|---|");
    println!(
        "| warm invoke of another function | {} | {} | {} | {} |",
        us(quiet_invoke.0),
        us(quiet_invoke.1),
        us(held_invoke.0),
        us(held_invoke.1)
    );
    println!("| ListFunctions | {} | {} | {} | {} |", us(quiet_list.0), us(quiet_list.1), us(held_list.0), us(held_list.1));
    Ok(())
}

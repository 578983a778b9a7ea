//! One execution environment: a runtime process started from a clean environment, its
//! Runtime API endpoint and its log capture. Init happens once, when the process starts;
//! each invocation after that reuses the process until it dies, times out or is reaped.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nimbus_logs::LogStore;
use nimbus_model::{Runtime, RuntimeFamily};
use tokio::sync::mpsc;

use crate::capture::OutputCapture;
use crate::cgroup::{CgroupManager, Limits};
use crate::launch::{self, Code, Isolation, Process, Resources, TrustedCertificates};
use crate::pool::ProvisionKey;
use crate::runtime_api::{Delivery, Progress};
use crate::runtimes::RuntimeRegistry;
use crate::{Invocation, Reply, SandboxError};

/// Freezing between invocations (see [`crate::freezer`]).
#[derive(Default)]
struct FreezeState {
    /// When the environment is to be frozen: set when it goes idle, cleared when taken.
    freeze_at: Option<Instant>,
    /// It has an entry in the freezer's queue.
    queued: bool,
    frozen: bool,
}

/// AWS's default `/tmp` size; prestarted sandboxes are built with it.
pub const DEFAULT_TMP_MB: u32 = 512;
/// Memory limit of a prestarted runtime until it is assigned (AWS's default MemorySize).
const PRESTART_MEMORY_MB: u32 = 128;
/// AWS's limit on the init phase.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How stale a peak-memory reading may be when reused for a REPORT line.
const MEMORY_SAMPLE_PERIOD: Duration = Duration::from_millis(50);
/// An invocation this short reuses a recent peak-memory reading.
const QUICK_INVOCATION: Duration = Duration::from_millis(1);

/// Everything needed to start an environment for one function configuration.
#[derive(Debug, Clone)]
pub struct EnvSpec {
    pub function_name: String,
    pub version: String,
    pub runtime: Runtime,
    pub handler: String,
    pub memory_mb: u32,
    pub code_dir: PathBuf,
    /// The merged layers, mounted as `/opt` (None: no layers).
    pub opt_dir: Option<PathBuf>,
    /// Size of `/tmp` (EphemeralStorage).
    pub ephemeral_storage_mb: u32,
    pub environment: BTreeMap<String, String>,
    /// When the role credentials in `environment` expire (None: it holds none).
    pub credentials_expire: Option<chrono::DateTime<chrono::Utc>>,
    pub region: String,
    pub log_group: String,
    /// With the JSON log format, the application log level (lines below it are dropped;
    /// the runtime is told by `AWS_LAMBDA_LOG_FORMAT`/`AWS_LAMBDA_LOG_LEVEL`). None: text logs.
    pub json_log_level: Option<nimbus_model::logging::LogLevel>,
    /// Identifies the configuration; environments are reused only for the same one.
    pub revision: String,
    /// The function's VPC network (its subnets and security groups), when it has one: its
    /// environments are linked into the VPC's router with their groups as packet filter.
    pub network: Option<Arc<crate::network::VpcPlan>>,
    /// What `code_dir` and `opt_dir` belong to, held while any environment of this spec
    /// lives (the trees stay on disk until then, even if the function is deleted).
    pub holds: Vec<Arc<dyn Held>>,
}

impl EnvSpec {
    /// Whether anything it holds was let go: its environments are not kept.
    pub fn let_go(&self) -> bool {
        self.holds.iter().any(|h| h.let_go())
    }
}

/// Something an environment's spec holds on to (an unpacked code or layer tree).
pub trait Held: Send + Sync + std::fmt::Debug {
    /// Whether its owner has let go of it (the function or layer is gone): an environment
    /// holding it finishes what it runs and is never kept for another invocation.
    fn let_go(&self) -> bool;
}

/// What every environment of one server shares: how it is isolated and limited, where its
/// runtimes and logs are, and where its functions reach the Nimbus API.
#[derive(Clone, Copy)]
pub struct Host<'a> {
    pub iso: &'a Isolation,
    pub cgroups: Option<&'a CgroupManager>,
    pub registry: &'a RuntimeRegistry,
    pub logs: &'a LogStore,
    /// `AWS_ENDPOINT_URL` in every environment.
    pub endpoint_url: Option<&'a str>,
    /// What runtimes trust when that endpoint speaks HTTPS.
    pub trust: Option<&'a TrustedCertificates>,
    /// Limits on each environment's Runtime API connections.
    pub runtime_api: crate::connections::ConnectionLimits,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct InvokeTimings {
    /// Set on the invocation that ran the init phase (a cold start).
    pub init_duration: Option<Duration>,
    pub duration: Duration,
    pub max_memory_mb: u64,
    /// The runtime took the event (its START line is already logged).
    pub delivered: bool,
}

pub struct Environment {
    pub id: String,
    pub spec: Arc<EnvSpec>,
    pub log_stream: String,
    pub generation: u64,
    /// Set for an environment kept initialized by provisioned concurrency: whose it is.
    pub provisioned: Option<Arc<ProvisionKey>>,
    /// Made from a prestarted runtime or sandbox (built before it was assigned), or forked
    /// from a zygote: a start that can fail for reasons that are not the function's, so one
    /// that dies before it takes its first event is replaced once.
    pub adopted: bool,
    process: Process,
    peak_memory_mb: AtomicU64,
    /// Freezing between invocations: bumped on every use, so a late freeze knows it is stale.
    freeze: Mutex<FreezeState>,
    /// When peak memory was last read, in ms since `created`.
    memory_sampled_ms: AtomicU64,
    created: Instant,
    pub(crate) last_used: Mutex<Instant>,
}

/// AWS's wording for how a process ended.
pub(crate) fn describe_exit(status: std::io::Result<std::process::ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(0), _) => "Runtime exited without providing a reason".to_string(),
            (Some(code), _) => format!("Runtime exited with error: exit status {code}"),
            (None, Some(9)) => "Runtime exited with error: signal: killed".to_string(),
            (None, Some(11)) => "Runtime exited with error: signal: segmentation fault".to_string(),
            (None, Some(6)) => "Runtime exited with error: signal: aborted".to_string(),
            (None, Some(sig)) => format!("Runtime exited with error: signal: {sig}"),
            _ => "Runtime exited without providing a reason".to_string(),
        },
        Err(e) => format!("Runtime exited with error: {e}"),
    }
}

/// A runtime process with its Runtime API and output capture, not yet tied to a function.
/// A managed runtime (Node.js or Python) started ahead of time, with its bootstrap loaded,
/// waiting to be told which function it runs. Taking one instead of starting a process
/// removes the interpreter's own start-up from a cold start.
pub struct Prestarted {
    pub runtime: Runtime,
    /// Taken when the runtime is adopted; a prestarted runtime dropped unused is killed.
    process: Option<Process>,
}

impl Prestarted {
    pub fn is_alive(&self) -> bool {
        self.process.as_ref().is_some_and(Process::is_alive)
    }

    /// Alive, and its runtime is waiting for an assignment (fully started). A gated
    /// sandbox counts as ready at once: its launch message waits in the pipe until the
    /// runtime reaches the gate.
    pub fn is_ready(&self) -> bool {
        self.process.as_ref().is_some_and(|p| p.is_alive() && (p.gate.is_some() || p.api.ready_for_assignment()))
    }
}

impl Drop for Prestarted {
    fn drop(&mut self) {
        if let Some(p) = &self.process {
            p.kill();
        }
    }
}

/// Whether `spec` cannot use a runtime started ahead of time. A sandbox's `/tmp` size is
/// fixed when it is built; a `provided` runtime is prestarted only as a gated sandbox (its
/// program is the function's own); an interpreter already running cannot honour variables
/// that change how it starts.
pub fn needs_fresh_process(spec: &EnvSpec, iso: &Isolation) -> bool {
    let sandboxed = matches!(iso, Isolation::Namespaces(_));
    if sandboxed && spec.ephemeral_storage_mb != DEFAULT_TMP_MB {
        return true;
    }
    // A prestarted sandbox's network is the host's link, not the function's VPC.
    if sandboxed && spec.network.is_some() {
        return true;
    }
    if spec.runtime.family() == RuntimeFamily::Provided {
        // Without a bootstrap, a fresh start reports AWS's error for that.
        return !sandboxed || !spec.code_dir.join("bootstrap").is_file();
    }
    starts_differently(spec)
}

/// Whether the function sets variables an interpreter reads when it starts (which a runtime
/// started before them, prestarted or forked, would miss).
fn starts_differently(spec: &EnvSpec) -> bool {
    spec.environment
        .keys()
        .any(|k| k.starts_with("PYTHON") || k.starts_with("NODE_") || k.starts_with("LD_") || k.starts_with("AWS_LAMBDA_NODEJS"))
}

/// Whether `spec`'s fresh environments may be forked from a Python zygote: a sandboxed
/// Python runtime whose interpreter has the same paths inside and out (a system one), and
/// no variable that changes how an interpreter starts (the zygote started with fixed ones,
/// those of a prestarted runtime, [`zygote_variables`]).
pub fn zygote_eligible(spec: &EnvSpec, iso: &Isolation, registry: &RuntimeRegistry) -> bool {
    matches!(iso, Isolation::Namespaces(_))
        && spec.runtime.family() == RuntimeFamily::Python
        && registry.get(spec.runtime).interpreter.as_ref().is_ok_and(|p| launch::in_system_dirs(p))
        && !starts_differently(spec)
        && !spec.environment.keys().any(|k| k == "LANG" || k.starts_with("LC_") || k == "TZ")
}

/// AWS's `LD_LIBRARY_PATH` for a runtime whose bootstrap is in `runtime_dir`, code in `task`
/// and layers (if any) in `opt`.
fn ld_library_path(runtime_dir: &str, task: &str, opt: Option<&str>) -> String {
    let opt = opt.map(|o| format!(":{o}/lib")).unwrap_or_default();
    format!("/lib64:/usr/lib64:{runtime_dir}:{runtime_dir}/lib:{task}:{task}/lib{opt}")
}

/// What a managed runtime started before its function is known (prestarted, or a zygote)
/// reads at its start: AWS's values, nothing of any function's. `LD_LIBRARY_PATH` is read
/// by the dynamic loader only at start, so it names the sandbox's code and layer
/// directories already (`with_layers`).
fn start_variables(runtime: Runtime, with_layers: bool) -> Vec<(String, String)> {
    vec![
        ("AWS_EXECUTION_ENV".to_string(), format!("AWS_Lambda_{runtime}")),
        ("LD_LIBRARY_PATH".to_string(), ld_library_path("/var/runtime", "/var/task", with_layers.then_some("/opt"))),
        ("TZ".to_string(), ":UTC".to_string()),
        ("LANG".to_string(), "en_US.UTF-8".to_string()),
        ("PATH".to_string(), "/usr/local/bin:/usr/bin/:/bin".to_string()),
    ]
}

/// A zygote's whole environment: what a runtime of `spec` reads at its start and nothing
/// else (no variable of the function's, no credential: the zygote runs as root on the host).
pub fn zygote_variables(spec: &EnvSpec) -> Vec<(String, String)> {
    start_variables(spec.runtime, spec.opt_dir.is_some())
}

/// Prestarted runtimes are kept per key: one kind of gated sandbox serves every `provided`
/// runtime.
pub fn prestart_key(runtime: Runtime) -> Runtime {
    if runtime.family() == RuntimeFamily::Provided {
        Runtime::ProvidedAl2023
    } else {
        runtime
    }
}

impl Environment {
    /// Starts the runtime process. Returns `Ok(Err(Reply::StartFailed))` when the function
    /// cannot run at all here (no interpreter, no bootstrap), which is the caller's problem
    /// to report, not a server error.
    /// `zygote`: a connection to the function's Python zygote to fork the runtime from.
    /// `admit`: resolves when the runtime's init may begin; the sandbox is built (and its
    /// network linked) meanwhile, and waits at its gate. Where there is no sandbox (process
    /// isolation) it resolves before the runtime is spawned. Its output is returned with
    /// the environment, whose init began when it resolved.
    pub async fn start<T>(
        spec: Arc<EnvSpec>,
        host: &Host<'_>,
        generation: u64,
        provisioned: Option<Arc<ProvisionKey>>,
        zygote: Option<std::os::fd::OwnedFd>,
        admit: impl std::future::Future<Output = T>,
    ) -> Result<Result<(Arc<Environment>, T), Reply>, SandboxError> {
        let Host { iso, cgroups, registry, logs, endpoint_url, trust, runtime_api } = *host;
        // Admitted (Ok) or still to be, at the gate (Err).
        let admission = match iso {
            Isolation::Process => Ok(admit.await),
            Isolation::Namespaces(_) => Err(admit),
        };
        let id = uuid::Uuid::new_v4().simple().to_string();
        let log_stream = format!("{}/[{}]{}", chrono::Utc::now().format("%Y/%m/%d"), spec.version, id);
        let sink = logs.sink(&spec.log_group, &log_stream);
        let res = Resources {
            cgroups,
            memory_mb: spec.memory_mb,
            tmp_mb: spec.ephemeral_storage_mb,
            opt: spec.opt_dir.as_deref(),
            sink: Some(sink),
            log_filter: spec.json_log_level,
            vpc: spec.network.clone(),
            trust,
            runtime_api,
            zygote,
        };
        let mut process = match launch::launch(iso, registry, spec.runtime, Code::Dir(&spec.code_dir), res, |addr, paths| {
            environment_variables(&spec, paths, addr, &log_stream, endpoint_url, provisioned.is_some())
        })
        .await?
        {
            Ok(p) => p,
            Err(reply) => return Ok(Err(reply)),
        };
        let admitted = match admission {
            Ok(admitted) => admitted,
            Err(admit) => match process.pending.take() {
                Some(mut pending) => {
                    pending.linked(INIT_TIMEOUT).await;
                    let admitted = admit.await;
                    // The init clock (Init Duration, the init limit) starts at the gate.
                    process.api.mark_started(Instant::now());
                    // (a message of a few kB: the pipe takes it without blocking)
                    if let Err(e) = pending.open() {
                        // Its sandbox ended while being built: its invocation is answered
                        // with why (`RuntimeApi::fail_pending`).
                        tracing::debug!("cannot open a sandbox's gate: {e}");
                    }
                    admitted
                }
                None => admit.await,
            },
        };
        let forked = process.forked;
        Ok(Ok((Environment::from_process(id, spec, log_stream, generation, process, provisioned, forked), admitted)))
    }

    /// Starts a managed runtime ahead of time, not yet tied to a function.
    pub async fn prestart(runtime: Runtime, host: &Host<'_>) -> Result<Option<Prestarted>, SandboxError> {
        let Host { iso, cgroups, registry, trust, runtime_api, .. } = *host;
        let vars = |addr: &str, paths: &launch::Paths| {
            let mut v = vec![
                ("AWS_LAMBDA_RUNTIME_API".to_string(), addr.to_string()),
                ("LAMBDA_RUNTIME_DIR".to_string(), paths.runtime_dir.clone()),
                ("NIMBUS_PRESTARTED".to_string(), "1".to_string()),
            ];
            // Its function's layers, if any, are bound at /opt later.
            v.extend(start_variables(runtime, true));
            // Node reads NODE_EXTRA_CA_CERTS when it starts, before any assignment.
            v.extend(paths.trust.as_deref().into_iter().flat_map(TrustedCertificates::variables));
            v
        };
        let code = match iso {
            Isolation::Process => match registry.runtime_dir(runtime.family()) {
                Some(d) if runtime.family() != RuntimeFamily::Provided => Code::Dir(d),
                _ => return Ok(None),
            },
            Isolation::Namespaces(_) => Code::Later,
        };
        let res = Resources {
            cgroups,
            memory_mb: PRESTART_MEMORY_MB,
            tmp_mb: DEFAULT_TMP_MB,
            opt: None,
            sink: None,
            log_filter: None,
            vpc: None,
            trust,
            runtime_api,
            zygote: None,
        };
        match launch::launch(iso, registry, runtime, code, res, vars).await? {
            Ok(process) => Ok(Some(Prestarted { runtime, process: Some(process) })),
            Err(_) => Ok(None),
        }
    }

    /// Makes a prestarted runtime this function's environment: its output now goes to a
    /// new log stream and its bootstrap receives the function's variables and code dir.
    pub fn adopt(
        mut pre: Prestarted,
        spec: Arc<EnvSpec>,
        host: &Host<'_>,
        generation: u64,
        provisioned: Option<Arc<ProvisionKey>>,
    ) -> Result<Arc<Environment>, SandboxError> {
        let Host { iso, registry, logs, endpoint_url, trust, .. } = *host;
        let process = pre.process.take().expect("a prestarted runtime is adopted once");
        let mut timeline = launch::Timeline::new();
        if let Some(cg) = &process.cgroup {
            // Its init (loading the function) runs at full CPU, as a fresh start's does.
            if spec.memory_mb != PRESTART_MEMORY_MB {
                cg.set_limits(&Limits::for_init(spec.memory_mb))?;
            }
        }
        launch::Timeline::mark(&mut timeline, "limits");
        if let Some(late) = &process.late {
            // Mounts wait for the namespace lock that sandboxes being built hold, and for the
            // spawner thread, which makes them.
            nimbus_store::blocking::in_place(|| late.assign(&spec.code_dir, spec.opt_dir.as_deref()))?;
        }
        launch::Timeline::mark(&mut timeline, "code");
        let paths = launch::paths(iso, registry, spec.runtime, &spec.code_dir, spec.opt_dir.as_deref(), trust);
        let id = uuid::Uuid::new_v4().simple().to_string();
        let log_stream = format!("{}/[{}]{}", chrono::Utc::now().format("%Y/%m/%d"), spec.version, id);
        process.capture.set_sink(logs.sink(&spec.log_group, &log_stream), spec.json_log_level);
        launch::Timeline::mark(&mut timeline, "log-stream");
        let vars = environment_variables(&spec, &paths, &process.addr, &log_stream, endpoint_url, provisioned.is_some());
        let mut process = process;
        match process.gate.take() {
            // A `provided` sandbox waits at its gate: the environment opens it, then the
            // runtime execs the function's bootstrap (its init starts now).
            Some(gate) => {
                process.api.mark_started(Instant::now());
                let launch = crate::jail::Launch { env: vars, cwd: Some(paths.task.into()) };
                crate::jail::write_launch(gate, &launch)?;
            }
            None => {
                let vars: serde_json::Map<String, serde_json::Value> =
                    vars.into_iter().map(|(k, v)| (k, serde_json::Value::String(v))).collect();
                let assignment = serde_json::json!({ "env": vars, "cwd": paths.task });
                process.api.assign(bytes::Bytes::from(assignment.to_string()), Instant::now());
            }
        }
        launch::Timeline::mark(&mut timeline, "launch");
        if let Some(t) = timeline {
            t.log("adoption", spec.runtime, process.pid);
        }
        Ok(Environment::from_process(id, spec, log_stream, generation, process, provisioned, true))
    }

    fn from_process(
        id: String,
        spec: Arc<EnvSpec>,
        log_stream: String,
        generation: u64,
        process: Process,
        provisioned: Option<Arc<ProvisionKey>>,
        adopted: bool,
    ) -> Arc<Environment> {
        Arc::new(Environment {
            id,
            spec,
            log_stream,
            generation,
            provisioned,
            adopted,
            peak_memory_mb: AtomicU64::new(0),
            freeze: Mutex::new(FreezeState::default()),
            memory_sampled_ms: AtomicU64::new(0),
            created: process.started,
            last_used: Mutex::new(Instant::now()),
            process,
        })
    }

    pub fn is_alive(&self) -> bool {
        self.process.is_alive()
    }

    /// Runs the init phase ahead of any invocation (provisioned concurrency): waits until
    /// the runtime asks for its first event, at most [`INIT_TIMEOUT`]. Afterwards the CPU
    /// share follows the memory size and the first invocation reports no Init Duration.
    pub async fn initialize(&self) -> Result<Duration, String> {
        let started = Instant::now();
        match tokio::time::timeout(INIT_TIMEOUT, self.process.api.initialized()).await {
            Ok(Ok(())) => {}
            Ok(Err(why)) => {
                self.kill();
                return Err(why);
            }
            Err(_) => {
                self.kill();
                return Err(format!("Sandbox.Timedout: init did not finish within {} seconds", INIT_TIMEOUT.as_secs()));
            }
        }
        if let Some(cg) = &self.process.cgroup {
            let _ = cg.set_cpu_share(&Limits::for_memory_mb(self.spec.memory_mb));
        }
        self.process.api.mark_initialized();
        self.process.capture.drain(true);
        Ok(started.elapsed())
    }

    /// Its Runtime API (whose `initialized` says when init is over).
    pub(crate) fn runtime_api(&self) -> Arc<crate::runtime_api::RuntimeApi> {
        self.process.api.clone()
    }

    /// Kills the whole process group; the exit watcher then fails anything pending.
    pub fn kill(&self) {
        self.process.kill();
    }

    /// Called when the environment goes idle, to be frozen at `freeze_at` unless an
    /// invocation takes it again by then: the deadline to queue it at in the freezer, or
    /// None when it is queued already (its entry then finds the new deadline) or has no
    /// freezer to freeze.
    pub(crate) fn went_idle(&self, freeze_at: Instant) -> Option<Instant> {
        self.process.cgroup.as_ref()?;
        let mut st = self.freeze.lock().unwrap_or_else(|p| p.into_inner());
        st.freeze_at = Some(freeze_at);
        (!std::mem::replace(&mut st.queued, true)).then_some(freeze_at)
    }

    /// The freezer's call when this environment's entry is due at `now`: freezes it if it
    /// is still idle and its deadline passed; returns a later deadline to queue it at again
    /// when it was used (and went idle again) meanwhile.
    pub(crate) fn freeze_if_idle(&self, now: Instant) -> Option<Instant> {
        let mut st = self.freeze.lock().unwrap_or_else(|p| p.into_inner());
        st.queued = false;
        match st.freeze_at {
            None => None,
            Some(at) if at > now => {
                st.queued = true;
                Some(at)
            }
            Some(_) => {
                st.freeze_at = None;
                if !st.frozen {
                    if let Some(cg) = &self.process.cgroup {
                        st.frozen = cg.freeze().is_ok();
                        if st.frozen {
                            // Its connections' idle time stops with it.
                            self.process.api.clock().set_frozen(true);
                        }
                    }
                }
                None
            }
        }
    }

    /// Called when an invocation takes the environment: cancels a pending freeze and thaws
    /// it if it was frozen. False when it stays frozen (its freezer file could not be
    /// written: descriptors short): it is killed then, rather than left to time out.
    #[must_use]
    pub fn take_for_invocation(&self) -> bool {
        let mut st = self.freeze.lock().unwrap_or_else(|p| p.into_inner());
        st.freeze_at = None;
        if st.frozen {
            if let Some(Err(e)) = self.process.cgroup.as_ref().map(|cg| cg.thaw()) {
                drop(st);
                tracing::warn!(function = %self.spec.function_name, "cannot thaw an idle environment (it is stopped): {e}");
                self.kill();
                return false;
            }
            self.process.api.clock().set_frozen(false);
            st.frozen = false;
        }
        true
    }

    /// Whether the kernel killed something in this environment for exceeding its memory.
    pub fn out_of_memory(&self) -> bool {
        self.process.cgroup.as_ref().is_some_and(|c| c.oom_killed())
    }

    pub fn capture(&self) -> &OutputCapture {
        &self.process.capture
    }

    /// Runs one invocation: waits for the runtime to take it (through init on a cold
    /// start), then for its answer until the function's timeout. A timed-out environment is
    /// killed. The output is drained into the log before this returns.
    pub async fn invoke(&self, invocation: Invocation, start_line: Option<String>) -> (Reply, InvokeTimings) {
        let timeout = invocation.timeout;
        let init_within_timeout = invocation.init_within_timeout;
        let (tx, mut rx) = mpsc::channel(2);
        let submitted = Instant::now();
        self.process.api.submit(Delivery { invocation, start_line, progress: tx });
        let mut timings = InvokeTimings::default();

        // An on-demand init has 10 seconds to reach `/next`; the second one AWS runs after
        // that shares the function's timeout with the invocation.
        let first_limit = submitted + if init_within_timeout { timeout } else { INIT_TIMEOUT };
        let mut delivered_at = None;
        let reply = loop {
            let limit = match delivered_at {
                Some(at) => at + timeout,
                None => first_limit,
            };
            match tokio::time::timeout_at(limit.into(), rx.recv()).await {
                Ok(Some(Progress::Delivered { at, init_duration })) => {
                    if init_duration.is_some() {
                        // Init is over: from now on the CPU share follows the memory size.
                        if let Some(cg) = &self.process.cgroup {
                            let _ = cg.set_cpu_share(&Limits::for_memory_mb(self.spec.memory_mb));
                        }
                    }
                    delivered_at = Some(at);
                    timings.init_duration = init_duration;
                    timings.delivered = true;
                }
                Ok(Some(Progress::Done(reply))) => break reply,
                Ok(None) => break Reply::Exited("Runtime exited without providing a reason".into()),
                Err(_) => {
                    self.kill();
                    if delivered_at.is_none() && !init_within_timeout {
                        break Reply::InitTimedOut(submitted.elapsed());
                    }
                    break Reply::TimedOut;
                }
            }
        };
        timings.duration = delivered_at.map(|at| at.elapsed()).unwrap_or_else(|| submitted.elapsed());
        self.process.capture.drain(true);
        timings.max_memory_mb = self.sample_peak_memory(timings.duration);
        (reply, timings)
    }

    /// Peak memory of the environment in MB: its cgroup's peak, else the runtime process's
    /// VmHWM (kept across its death). Each read costs a system call (~7 µs on a cgroup, ~15 µs
    /// for /proc), so a reading up to [`MEMORY_SAMPLE_PERIOD`] old is reused: always for the
    /// /proc reading, and for the cgroup's after an invocation that ran under
    /// [`QUICK_INVOCATION`] (too short to grow much). A peak only grows, so a reading is
    /// never too high.
    fn sample_peak_memory(&self, ran: Duration) -> u64 {
        let now = self.created.elapsed().as_millis() as u64;
        let last = self.memory_sampled_ms.load(Ordering::Relaxed);
        let fresh = last != 0 && now.saturating_sub(last) < MEMORY_SAMPLE_PERIOD.as_millis() as u64;
        if let Some(cg) = self.process.cgroup.as_ref() {
            if !(fresh && ran < QUICK_INVOCATION) {
                if let Some(bytes) = cg.peak_memory_bytes() {
                    self.memory_sampled_ms.store(now.max(1), Ordering::Relaxed);
                    self.peak_memory_mb.fetch_max(bytes.div_ceil(1024 * 1024), Ordering::Relaxed);
                    return self.peak_memory_mb.load(Ordering::Relaxed);
                }
            } else {
                return self.peak_memory_mb.load(Ordering::Relaxed);
            }
        }
        if self.is_alive() && !fresh {
            self.memory_sampled_ms.store(now.max(1), Ordering::Relaxed);
            if let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", self.process.pid)) {
                if let Some(kb) = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                {
                    self.peak_memory_mb.fetch_max(kb.div_ceil(1024), Ordering::Relaxed);
                }
            }
        }
        self.peak_memory_mb.load(Ordering::Relaxed)
    }
}

impl Drop for Environment {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The variables a Lambda runtime sees, built from scratch: nothing of the server's own
/// environment leaks in (and slows runtimes down).
fn environment_variables(
    spec: &EnvSpec,
    paths: &launch::Paths,
    api_addr: &str,
    log_stream: &str,
    endpoint_url: Option<&str>,
    provisioned: bool,
) -> Vec<(String, String)> {
    let task = paths.task.clone();
    let family = spec.runtime.family();
    let runtime_dir = paths.runtime_dir.clone();
    // Layer paths as AWS sets them, pointing at the merged layer tree.
    let opt = paths.opt.clone();
    let opt_suffix = |sub: &str| opt.as_ref().map(|o| format!(":{o}/{sub}")).unwrap_or_default();
    let mut v: Vec<(String, String)> = vec![
        ("AWS_LAMBDA_FUNCTION_NAME".into(), spec.function_name.clone()),
        ("AWS_LAMBDA_FUNCTION_VERSION".into(), spec.version.clone()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), spec.memory_mb.to_string()),
        ("AWS_LAMBDA_LOG_GROUP_NAME".into(), spec.log_group.clone()),
        ("AWS_LAMBDA_LOG_STREAM_NAME".into(), log_stream.to_string()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE".into(), if provisioned { "provisioned-concurrency" } else { "on-demand" }.into()),
        ("AWS_LAMBDA_RUNTIME_API".into(), api_addr.to_string()),
        ("AWS_REGION".into(), spec.region.clone()),
        ("AWS_DEFAULT_REGION".into(), spec.region.clone()),
        ("_HANDLER".into(), spec.handler.clone()),
        ("_X_AMZN_TRACE_ID".into(), String::new()),
        // As on AWS, whether or not tracing is active: the X-Ray SDKs log instead of throwing
        // outside a segment, and send segments to a daemon address (nothing listens there in
        // Nimbus; UDP to it is dropped). A function's own values win.
        ("AWS_XRAY_CONTEXT_MISSING".into(), "LOG_ERROR".into()),
        ("AWS_XRAY_DAEMON_ADDRESS".into(), "127.0.0.1:2000".into()),
        ("_AWS_XRAY_DAEMON_ADDRESS".into(), "127.0.0.1".into()),
        ("_AWS_XRAY_DAEMON_PORT".into(), "2000".into()),
        ("LAMBDA_TASK_ROOT".into(), task.clone()),
        ("LAMBDA_RUNTIME_DIR".into(), runtime_dir.clone()),
        ("TZ".into(), ":UTC".into()),
        ("LANG".into(), "en_US.UTF-8".into()),
        ("PATH".into(), format!("/usr/local/bin:/usr/bin/:/bin{}", opt_suffix("bin"))),
        ("LD_LIBRARY_PATH".into(), ld_library_path(&runtime_dir, &task, opt.as_deref())),
    ];
    if let Some(level) = spec.json_log_level {
        v.push(("AWS_LAMBDA_LOG_FORMAT".into(), "JSON".into()));
        v.push(("AWS_LAMBDA_LOG_LEVEL".into(), level.as_str().into()));
    }
    if let Some(url) = endpoint_url {
        // The AWS SDKs (boto3, JS v3, Rust, Go, Java) send every service call here.
        v.push(("AWS_ENDPOINT_URL".into(), url.to_string()));
    }
    // ... and trust its certificate when it speaks HTTPS.
    v.extend(paths.trust.as_deref().into_iter().flat_map(TrustedCertificates::variables));
    if family != RuntimeFamily::Provided {
        v.push(("AWS_EXECUTION_ENV".into(), format!("AWS_Lambda_{}", spec.runtime)));
    }
    if family == RuntimeFamily::Node {
        let layers = match (&opt, spec.runtime.language_version()) {
            (Some(o), Some(major)) => format!("{o}/nodejs/node{major}/node_modules:{o}/nodejs/node_modules:"),
            _ => String::new(),
        };
        v.push(("NODE_PATH".into(), format!("{layers}{runtime_dir}/node_modules:{runtime_dir}:{task}/node_modules:{task}")));
    }
    if family == RuntimeFamily::Python {
        if let (Some(o), Some(minor)) = (&opt, spec.runtime.language_version()) {
            v.push(("PYTHONPATH".into(), format!("{o}/python/lib/python{minor}/site-packages:{o}/python")));
        }
    }
    for (k, val) in &spec.environment {
        if let Some(slot) = v.iter_mut().find(|(name, _)| name == k) {
            slot.1 = val.clone();
        } else {
            v.push((k.clone(), val.clone()));
        }
    }
    v
}

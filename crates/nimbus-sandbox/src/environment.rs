//! One execution environment: a runtime process started from a clean environment, its
//! Runtime API endpoint and its log capture. Init happens once, when the process starts;
//! each invocation after that reuses the process until it dies, times out or is reaped.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nimbus_logs::{LogSink, LogStore};
use nimbus_model::{Runtime, RuntimeFamily};
use tokio::sync::mpsc;

use crate::capture::OutputCapture;
use crate::runtime_api::{Delivery, Progress, RuntimeApi};
use crate::runtimes::RuntimeRegistry;
use crate::{Invocation, Reply, SandboxError};

/// AWS's limit on the init phase.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How stale a peak-memory reading may be when reused for a REPORT line.
const MEMORY_SAMPLE_PERIOD: Duration = Duration::from_millis(50);

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
    pub environment: BTreeMap<String, String>,
    pub region: String,
    pub log_group: String,
    /// Identifies the configuration; environments are reused only for the same one.
    pub revision: String,
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
    process: Process,
    peak_memory_mb: AtomicU64,
    /// When peak memory was last read, in ms since `created`.
    memory_sampled_ms: AtomicU64,
    created: Instant,
    pub(crate) last_used: Mutex<Instant>,
}

/// AWS's wording for how a process ended.
fn describe_exit(status: std::io::Result<std::process::ExitStatus>) -> String {
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
struct Process {
    api: Arc<RuntimeApi>,
    capture: Arc<OutputCapture>,
    addr: std::net::SocketAddr,
    pid: u32,
    dead: Arc<AtomicBool>,
    started: Instant,
}

/// Starts `program` with exactly `vars`, its output captured to `sink` (or dropped).
/// `Ok(Err(reply))` when the program cannot be started at all.
async fn spawn_process(
    program: &Path,
    args: &[PathBuf],
    cwd: &Path,
    vars: impl FnOnce(&str) -> Vec<(String, String)>,
    sink: Option<LogSink>,
) -> Result<Result<Process, Reply>, SandboxError> {
    let (read_end, write_end) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(std::io::Error::from)?;
    let capture = OutputCapture::new(read_end, sink)?;
    let api = RuntimeApi::new(capture.clone());
    let addr = api.serve().await?;

    let stderr: OwnedFd = write_end.try_clone()?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(vars(&addr.to_string()))
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::from(write_end))
        .stderr(Stdio::from(stderr))
        .process_group(0)
        .kill_on_drop(true);
    // SAFETY: the closure only makes a raw prctl syscall, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
            Ok(())
        });
    }
    let started = Instant::now();
    api.mark_started(started);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            api.shutdown();
            return Ok(Err(Reply::StartFailed {
                error_type: "Runtime.InvalidEntrypoint".into(),
                message: format!("fork/exec {}: {}", program.display(), e.kind().to_string().to_lowercase()),
            }));
        }
    };
    drop(cmd); // closes our copies of the pipe's write end, so EOF means the process is gone
    let pid = child.id().unwrap_or(0);
    tokio::spawn(capture.clone().run());

    let dead = Arc::new(AtomicBool::new(false));
    {
        let api = api.clone();
        let dead = dead.clone();
        let capture = capture.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            dead.store(true, Ordering::SeqCst);
            let why = describe_exit(status);
            capture.drain(true);
            api.fail_pending(|| Reply::Exited(why.clone()));
            api.shutdown();
        });
    }
    Ok(Ok(Process { api, capture, addr, pid, dead, started }))
}

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
        self.process.as_ref().is_some_and(|p| !p.dead.load(Ordering::SeqCst))
    }
}

impl Drop for Prestarted {
    fn drop(&mut self) {
        if let Some(p) = &self.process {
            p.kill();
        }
    }
}

impl Process {
    fn kill(&self) {
        if self.dead.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(pid) = rustix::process::Pid::from_raw(self.pid as i32) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        self.api.shutdown();
    }
}

/// The interpreter and arguments that run a managed runtime's shipped bootstrap, or the
/// function's own `bootstrap`.
fn command_for(spec_runtime: Runtime, code_dir: &Path, registry: &RuntimeRegistry) -> Result<(PathBuf, Vec<PathBuf>), Reply> {
    let family = spec_runtime.family();
    match family {
        RuntimeFamily::Provided => {
            let bootstrap = code_dir.join("bootstrap");
            if !bootstrap.is_file() {
                return Err(Reply::StartFailed {
                    error_type: "Runtime.InvalidEntrypoint".into(),
                    message: "Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]".into(),
                });
            }
            Ok((bootstrap, vec![]))
        }
        RuntimeFamily::Node | RuntimeFamily::Python => {
            let interpreter = registry.get(spec_runtime).interpreter.clone().map_err(|why| Reply::StartFailed {
                error_type: "Runtime.Unavailable".into(),
                message: format!("Runtime {spec_runtime} is not available on this Nimbus server: {why}"),
            })?;
            let dir = registry.runtime_dir(family).expect("managed runtimes have a bootstrap dir");
            Ok(match family {
                RuntimeFamily::Node => (interpreter, vec![dir.join("bootstrap.js")]),
                _ => (interpreter, vec![PathBuf::from("-u"), dir.join("bootstrap.py")]),
            })
        }
    }
}

/// Variables a function may set that change how an interpreter starts; a prestarted
/// runtime cannot honour them, so such functions always get a fresh process.
pub fn needs_fresh_process(spec: &EnvSpec) -> bool {
    spec.runtime.family() == RuntimeFamily::Provided
        || spec.environment.keys().any(|k| {
            k.starts_with("PYTHON") || k.starts_with("NODE_") || k.starts_with("LD_") || k.starts_with("AWS_LAMBDA_NODEJS")
        })
}

impl Environment {
    /// Starts the runtime process. Returns `Ok(Err(Reply::StartFailed))` when the function
    /// cannot run at all here (no interpreter, no bootstrap), which is the caller's problem
    /// to report, not a server error.
    pub async fn start(
        spec: Arc<EnvSpec>,
        registry: &RuntimeRegistry,
        logs: &LogStore,
        generation: u64,
    ) -> Result<Result<Arc<Environment>, Reply>, SandboxError> {
        let (program, args) = match command_for(spec.runtime, &spec.code_dir, registry) {
            Ok(c) => c,
            Err(reply) => return Ok(Err(reply)),
        };
        let id = uuid::Uuid::new_v4().simple().to_string();
        let log_stream = format!("{}/[{}]{}", chrono::Utc::now().format("%Y/%m/%d"), spec.version, id);
        let sink = logs.sink(&spec.log_group, &log_stream);
        let process = match spawn_process(
            &program,
            &args,
            &spec.code_dir,
            |addr| environment_variables(&spec, registry, addr, &log_stream),
            Some(sink),
        )
        .await?
        {
            Ok(p) => p,
            Err(reply) => return Ok(Err(reply)),
        };
        Ok(Ok(Environment::from_process(id, spec, log_stream, generation, process)))
    }

    /// Starts a managed runtime ahead of time, not yet tied to a function.
    pub async fn prestart(runtime: Runtime, registry: &RuntimeRegistry, scratch: &Path) -> Result<Option<Prestarted>, SandboxError> {
        let Ok((program, args)) = command_for(runtime, scratch, registry) else { return Ok(None) };
        let runtime_dir = registry.runtime_dir(runtime.family()).map(|d| d.to_string_lossy().into_owned()).unwrap_or_default();
        let vars = |addr: &str| {
            vec![
                ("AWS_LAMBDA_RUNTIME_API".to_string(), addr.to_string()),
                ("AWS_EXECUTION_ENV".to_string(), format!("AWS_Lambda_{runtime}")),
                ("LAMBDA_RUNTIME_DIR".to_string(), runtime_dir.clone()),
                ("NIMBUS_PRESTARTED".to_string(), "1".to_string()),
                ("TZ".to_string(), ":UTC".to_string()),
                ("LANG".to_string(), "en_US.UTF-8".to_string()),
                ("PATH".to_string(), "/usr/local/bin:/usr/bin/:/bin".to_string()),
            ]
        };
        match spawn_process(&program, &args, scratch, vars, None).await? {
            Ok(process) => Ok(Some(Prestarted { runtime, process: Some(process) })),
            Err(_) => Ok(None),
        }
    }

    /// Makes a prestarted runtime this function's environment: its output now goes to a
    /// new log stream and its bootstrap receives the function's variables and code dir.
    pub fn adopt(mut pre: Prestarted, spec: Arc<EnvSpec>, registry: &RuntimeRegistry, logs: &LogStore, generation: u64) -> Arc<Environment> {
        let process = pre.process.take().expect("a prestarted runtime is adopted once");
        let id = uuid::Uuid::new_v4().simple().to_string();
        let log_stream = format!("{}/[{}]{}", chrono::Utc::now().format("%Y/%m/%d"), spec.version, id);
        process.capture.set_sink(logs.sink(&spec.log_group, &log_stream));
        let vars: serde_json::Map<String, serde_json::Value> =
            environment_variables(&spec, registry, &process.addr.to_string(), &log_stream)
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect();
        let assignment = serde_json::json!({ "env": vars, "cwd": spec.code_dir.to_string_lossy() });
        process.api.assign(bytes::Bytes::from(assignment.to_string()), Instant::now());
        Environment::from_process(id, spec, log_stream, generation, process)
    }

    fn from_process(id: String, spec: Arc<EnvSpec>, log_stream: String, generation: u64, process: Process) -> Arc<Environment> {
        Arc::new(Environment {
            id,
            spec,
            log_stream,
            generation,
            peak_memory_mb: AtomicU64::new(0),
            memory_sampled_ms: AtomicU64::new(0),
            created: process.started,
            last_used: Mutex::new(Instant::now()),
            process,
        })
    }

    pub fn is_alive(&self) -> bool {
        !self.process.dead.load(Ordering::SeqCst)
    }

    /// Kills the whole process group; the exit watcher then fails anything pending.
    pub fn kill(&self) {
        self.process.kill();
    }

    pub fn capture(&self) -> &OutputCapture {
        &self.process.capture
    }

    /// Runs one invocation: waits for the runtime to take it (through init on a cold
    /// start), then for its answer until the function's timeout. A timed-out environment is
    /// killed. The output is drained into the log before this returns.
    pub async fn invoke(&self, invocation: Invocation, start_line: String) -> (Reply, InvokeTimings) {
        let timeout = invocation.timeout;
        let (tx, mut rx) = mpsc::channel(2);
        let submitted = Instant::now();
        self.process.api.submit(Delivery { invocation, start_line, progress: tx });
        let mut timings = InvokeTimings::default();

        let first_limit = submitted + INIT_TIMEOUT.max(timeout);
        let mut delivered_at = None;
        let reply = loop {
            let limit = match delivered_at {
                Some(at) => at + timeout,
                None => first_limit,
            };
            match tokio::time::timeout_at(limit.into(), rx.recv()).await {
                Ok(Some(Progress::Delivered { at, init_duration })) => {
                    delivered_at = Some(at);
                    timings.init_duration = init_duration;
                    timings.delivered = true;
                }
                Ok(Some(Progress::Done(reply))) => break reply,
                Ok(None) => break Reply::Exited("Runtime exited without providing a reason".into()),
                Err(_) => {
                    self.kill();
                    break Reply::TimedOut;
                }
            }
        };
        timings.duration = delivered_at.map(|at| at.elapsed()).unwrap_or_else(|| submitted.elapsed());
        self.process.capture.drain(true);
        timings.max_memory_mb = self.sample_peak_memory();
        (reply, timings)
    }

    /// Peak resident memory of the runtime process in MB (VmHWM), kept across its death.
    /// Reading /proc costs ~15 µs, so back-to-back invocations reuse a reading up to
    /// [`MEMORY_SAMPLE_PERIOD`] old; VmHWM only grows, so a reading is never too high.
    fn sample_peak_memory(&self) -> u64 {
        let now = self.created.elapsed().as_millis() as u64;
        let last = self.memory_sampled_ms.load(Ordering::Relaxed);
        let fresh = last != 0 && now.saturating_sub(last) < MEMORY_SAMPLE_PERIOD.as_millis() as u64;
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
fn environment_variables(spec: &EnvSpec, registry: &RuntimeRegistry, api_addr: &str, log_stream: &str) -> Vec<(String, String)> {
    let task = spec.code_dir.to_string_lossy().into_owned();
    let family = spec.runtime.family();
    let runtime_dir = registry
        .runtime_dir(family)
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_else(|| task.clone());
    // Layer paths as AWS sets them, pointing at the merged layer tree.
    let opt = spec.opt_dir.as_ref().map(|d| d.to_string_lossy().into_owned());
    let opt_suffix = |sub: &str| opt.as_ref().map(|o| format!(":{o}/{sub}")).unwrap_or_default();
    let mut v: Vec<(String, String)> = vec![
        ("AWS_LAMBDA_FUNCTION_NAME".into(), spec.function_name.clone()),
        ("AWS_LAMBDA_FUNCTION_VERSION".into(), spec.version.clone()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), spec.memory_mb.to_string()),
        ("AWS_LAMBDA_LOG_GROUP_NAME".into(), spec.log_group.clone()),
        ("AWS_LAMBDA_LOG_STREAM_NAME".into(), log_stream.to_string()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE".into(), "on-demand".into()),
        ("AWS_LAMBDA_RUNTIME_API".into(), api_addr.to_string()),
        ("AWS_REGION".into(), spec.region.clone()),
        ("AWS_DEFAULT_REGION".into(), spec.region.clone()),
        ("_HANDLER".into(), spec.handler.clone()),
        ("_X_AMZN_TRACE_ID".into(), String::new()),
        ("LAMBDA_TASK_ROOT".into(), task.clone()),
        ("LAMBDA_RUNTIME_DIR".into(), runtime_dir.clone()),
        ("TZ".into(), ":UTC".into()),
        ("LANG".into(), "en_US.UTF-8".into()),
        ("PATH".into(), format!("/usr/local/bin:/usr/bin/:/bin{}", opt_suffix("bin"))),
        (
            "LD_LIBRARY_PATH".into(),
            format!("/lib64:/usr/lib64:{runtime_dir}:{runtime_dir}/lib:{task}:{task}/lib{}", opt_suffix("lib")),
        ),
    ];
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

//! How a runtime process is started: directly as a child process (process isolation), or
//! inside a sandbox that `nimbus sandbox-init` builds (namespaces, read-only root,
//! unprivileged user, seccomp; see [`crate::jail`]). Also what paths the runtime sees in
//! each case: host paths, or AWS's fixed `/var/task`, `/var/runtime` and `/opt`.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use nimbus_logs::LogSink;
use nimbus_model::{Runtime, RuntimeFamily};

use crate::capture::OutputCapture;
use crate::cgroup::{CgroupManager, EnvCgroup, Limits};
use crate::jail::{self, Bind, JailSpec, Net};
use crate::network::{Linker, RUNTIME_API_PORT};
use crate::runtime_api::RuntimeApi;
use crate::runtimes::RuntimeRegistry;
use crate::{Reply, SandboxError};

/// A step of starting a runtime process failed: which, and the error.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// A call that works on no path (a pipe, a listener, a descriptor copy).
    #[error("{op}: {source}")]
    Io { op: &'static str, source: std::io::Error },
    #[error("{op} {}: {source}", path.display())]
    Path { op: &'static str, path: PathBuf, source: std::io::Error },
    /// Blocking work handed to a thread of its own never came back.
    #[error("{op}: {source}")]
    Blocking { op: &'static str, source: tokio::task::JoinError },
}

fn io(op: &'static str) -> impl FnOnce(std::io::Error) -> LaunchError {
    move |source| LaunchError::Io { op, source }
}

/// Whether each start is logged with where its time went (`--trace-starts`): the server's
/// steps, then sandbox-init's own (its timings line, kept out of the function's log).
static TRACE_STARTS: AtomicBool = AtomicBool::new(false);

/// Turns the start timeline on or off (a server setting; see [`TRACE_STARTS`]).
pub fn trace_starts(on: bool) {
    TRACE_STARTS.store(on, Ordering::Relaxed);
}

/// The server's side of one start (or adoption), for `--trace-starts`: when each step
/// ended.
pub(crate) struct Timeline {
    begun: Instant,
    marks: Vec<(&'static str, Instant)>,
}

impl Timeline {
    pub(crate) fn new() -> Option<Timeline> {
        TRACE_STARTS.load(Ordering::Relaxed).then(|| Timeline { begun: Instant::now(), marks: Vec::with_capacity(6) })
    }

    pub(crate) fn mark(this: &mut Option<Timeline>, step: &'static str) {
        if let Some(t) = this {
            t.marks.push((step, Instant::now()));
        }
    }

    /// `what`: "start" or "adoption".
    pub(crate) fn log(self, what: &str, runtime: Runtime, pid: u32) {
        let mut line = String::new();
        let mut last = self.begun;
        for (step, at) in &self.marks {
            line.push_str(&format!(" {step} {:.3}ms", (*at - last).as_secs_f64() * 1e3));
            last = *at;
        }
        tracing::info!(target: "nimbus_sandbox::starts", "{what} of {runtime} (pid {pid}), server:{line} total {:.3}ms", (last - self.begun).as_secs_f64() * 1e3);
    }
}

/// How environments are isolated (a server setting).
#[derive(Debug, Clone)]
pub enum Isolation {
    /// Plain child processes with a clean environment; no namespaces or cgroups.
    Process,
    /// Each environment in its own namespaces, built by `<exe> sandbox-init`.
    Namespaces(NamespaceConfig),
}

#[derive(Debug, Clone)]
pub struct NamespaceConfig {
    /// The nimbus binary (it runs `sandbox-init`).
    pub exe: PathBuf,
    /// Forks sandbox-init so the server does not ([`jail::Spawner`]); without one, or once
    /// it is gone, the server spawns `exe sandbox-init` itself.
    pub spawner: Option<jail::Spawner>,
    pub network: Network,
    /// Where per-environment mount points for late code assignment live.
    pub envs_dir: PathBuf,
}

/// The network a sandboxed environment gets.
#[derive(Debug, Clone)]
pub enum Network {
    /// Shares the host's network (development): the Runtime API is on a host loopback port.
    Host,
    /// Its own network namespace with only loopback: its Runtime API lives inside, out of
    /// every other environment's reach; no other network.
    Isolated,
    /// Its own network namespace, linked to the host bridge (see [`crate::network`]): the
    /// Runtime API on its own loopback, the host (and the Nimbus API) at the gateway.
    Linked(Arc<Linker>),
}

impl Isolation {
    pub fn describe(&self) -> &'static str {
        match self {
            Isolation::Process => "process",
            Isolation::Namespaces(NamespaceConfig { network: Network::Isolated, .. }) => "namespaces (isolated network)",
            Isolation::Namespaces(NamespaceConfig { network: Network::Linked(_), .. }) => "namespaces (linked network)",
            Isolation::Namespaces(_) => "namespaces (host network)",
        }
    }
}

/// Certificates the runtimes of one server trust beyond the system's roots, so that their
/// SDKs can call the Nimbus API over HTTPS: a host directory holding [`Self::SERVER`] (the
/// API's own certificate chain) and [`Self::BUNDLE`] (the host's roots plus that chain).
/// Certificates only: a sandbox sees the directory read-only at `/etc/nimbus`, a process
/// runtime at its host path.
#[derive(Debug, Clone)]
pub struct TrustedCertificates {
    /// An absolute host path (it is bound into sandboxes).
    pub dir: PathBuf,
}

impl TrustedCertificates {
    /// The Nimbus API's certificate chain (`NODE_EXTRA_CA_CERTS`: Node adds it to its roots).
    pub const SERVER: &'static str = "nimbus.pem";
    /// The host's roots plus the chain (`AWS_CA_BUNDLE`, `SSL_CERT_FILE`: these replace the
    /// default roots, so calls to anywhere else still verify).
    pub const BUNDLE: &'static str = "bundle.pem";

    /// The variables that point a runtime's SDKs at the certificates in `dir` (as it sees it).
    pub(crate) fn variables(dir: &str) -> [(String, String); 3] {
        let bundle = format!("{dir}/{}", Self::BUNDLE);
        [
            // botocore (boto3, the aws CLI) and the AWS SDKs that read the shared setting.
            ("AWS_CA_BUNDLE".into(), bundle.clone()),
            // Node.js reads it once, when the process starts.
            ("NODE_EXTRA_CA_CERTS".into(), format!("{dir}/{}", Self::SERVER)),
            // OpenSSL's default file: Python's ssl/urllib, Go, rustls-native-certs.
            ("SSL_CERT_FILE".into(), bundle),
        ]
    }
}

/// Where a sandbox sees [`TrustedCertificates::dir`].
const TRUST_DIR: &str = "/etc/nimbus";

/// Paths as the runtime sees them.
pub(crate) struct Paths {
    pub task: String,
    pub runtime_dir: String,
    pub opt: Option<String>,
    /// The directory of [`TrustedCertificates`], if the server has one.
    pub trust: Option<String>,
}

pub(crate) fn paths(
    iso: &Isolation,
    registry: &RuntimeRegistry,
    runtime: Runtime,
    code_dir: &Path,
    opt: Option<&Path>,
    trust: Option<&TrustedCertificates>,
) -> Paths {
    match iso {
        Isolation::Process => {
            let task = code_dir.to_string_lossy().into_owned();
            let runtime_dir =
                registry.runtime_dir(runtime.family()).map(|d| d.to_string_lossy().into_owned()).unwrap_or_else(|| task.clone());
            Paths {
                task,
                runtime_dir,
                opt: opt.map(|o| o.to_string_lossy().into_owned()),
                trust: trust.map(|t| t.dir.to_string_lossy().into_owned()),
            }
        }
        Isolation::Namespaces(_) => Paths {
            task: "/var/task".into(),
            runtime_dir: if runtime.family() == RuntimeFamily::Provided { "/var/task".into() } else { "/var/runtime".into() },
            opt: opt.map(|_| "/opt".into()),
            trust: trust.map(|_| TRUST_DIR.into()),
        },
    }
}

/// Where the function's code comes from.
pub(crate) enum Code<'a> {
    Dir(&'a Path),
    /// Not known yet (a prestarted runtime): it arrives by [`jail::bind_code_into`].
    Later,
}

/// A started runtime process with its Runtime API and output capture.
pub(crate) struct Process {
    pub api: Arc<RuntimeApi>,
    pub capture: Arc<OutputCapture>,
    pub addr: String,
    pub pid: u32,
    pub dead: Arc<AtomicBool>,
    pub started: Instant,
    /// Forked from a Python zygote rather than exec'd.
    pub forked: bool,
    /// The mount points its `/var/task` and `/opt` follow (prestarted sandboxes).
    pub late: Option<LateMounts>,
    /// The write end of its gate (a prestarted `provided` sandbox waits there for its
    /// environment before it execs the function's bootstrap).
    pub gate: Option<OwnedFd>,
    /// A sandbox started for its function: its gate, until the environment opens it.
    pub pending: Option<Pending>,
    /// Its control groups (memory, CPU, pids limits; freezer); None where cgroups are
    /// unavailable.
    pub cgroup: Option<Arc<EnvCgroup>>,
}

/// A sandbox started for its function waits at its gate, built, until its init may begin
/// (`Environment::start` opens it): the message to write there and, while the linker is
/// still linking the sandbox's network namespace, word of when that is done.
pub(crate) struct Pending {
    gate: OwnedFd,
    launch: jail::Launch,
    linked: Option<tokio::sync::oneshot::Receiver<()>>,
}

impl Pending {
    /// Returns once the namespace is linked (at once if it was linked ahead of time), or
    /// after `within`. A failed or late link leaves the function with loopback only, as it
    /// says in the log.
    pub async fn linked(&mut self, within: std::time::Duration) {
        if let Some(linked) = self.linked.take() {
            if tokio::time::timeout(within, linked).await.is_err() {
                tracing::warn!("an environment's network link took over {within:?}: it starts with loopback only");
            }
        }
    }

    /// Opens the gate: the runtime execs (or the zygote forks it) and its init begins.
    pub fn open(self) -> Result<(), jail::JailError> {
        jail::write_launch(self.gate, &self.launch)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // Its cgroups (the last reference: their Drop kills what is left and removes the
        // groups, waiting for both) and then its late mounts (unmounted, removed) go on a
        // blocking thread: a process may be dropped under the pool's lock.
        let (cg, late) = (self.cgroup.take(), self.late.take());
        if cg.is_some() || late.is_some() {
            nimbus_store::blocking::detached(move || {
                drop(cg);
                drop(late);
            });
        }
    }
}

impl Process {
    pub fn kill(&self) {
        if self.dead.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(pid) = rustix::process::Pid::from_raw(self.pid as i32) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        // Everything in its groups too: daemons it forked, processes that left the group.
        if let Some(cg) = self.cgroup.clone() {
            nimbus_store::blocking::detached(move || cg.kill_all());
        }
        self.api.shutdown();
    }

    pub fn is_alive(&self) -> bool {
        !self.dead.load(Ordering::SeqCst)
    }
}

/// The shared mount points that a prestarted sandbox's `/var/task` and `/opt` follow
/// (`<envs dir>/<id>/{task,opt}`); code and layers are bound onto them when the sandbox is
/// assigned. Made in the sandboxes' mount namespace (the spawner's) where there is one,
/// else on the host. Removed with the environment.
pub(crate) struct LateMounts {
    dir: PathBuf,
    ns: Option<jail::Spawner>,
}

const LATE_MOUNTS: [&str; 2] = ["task", "opt"];

impl LateMounts {
    /// Blocking (mounts).
    fn create(envs_dir: &Path, ns: Option<&jail::Spawner>) -> Result<LateMounts, SandboxError> {
        let late = LateMounts { dir: envs_dir.join(uuid::Uuid::new_v4().simple().to_string()), ns: ns.cloned() };
        let dir = late.dir.clone();
        let make = move || -> Result<(), SandboxError> {
            for name in LATE_MOUNTS {
                let dir = dir.join(name);
                std::fs::create_dir_all(&dir).map_err(|source| LaunchError::Path { op: "create", path: dir.clone(), source })?;
                jail::make_shared_mount_point(&dir)?;
                // Seen as /var/task/lib and /opt/lib until the code and layers are bound over
                // them: the runtime's dynamic loader, started before, never searches again a
                // directory of LD_LIBRARY_PATH it once found missing.
                let lib = dir.join("lib");
                std::fs::create_dir_all(&lib).map_err(|source| LaunchError::Path { op: "create", path: lib, source })?;
            }
            Ok(())
        };
        in_namespace(ns, "make late mount points", make)?;
        Ok(late)
    }

    pub fn task(&self) -> PathBuf {
        self.dir.join("task")
    }

    pub fn opt(&self) -> PathBuf {
        self.dir.join("opt")
    }

    /// Binds the function's code (and layers) onto the mount points, where the sandbox's
    /// `/var/task` (and `/opt`) follow them. Blocking (mounts).
    pub fn assign(&self, code_dir: &Path, opt_dir: Option<&Path>) -> Result<(), SandboxError> {
        let (task, opt) = (self.task(), self.opt());
        let (code_dir, opt_dir) = (code_dir.to_path_buf(), opt_dir.map(Path::to_path_buf));
        let bind = move || -> Result<(), SandboxError> {
            jail::bind_code_into(&task, &code_dir)?;
            if let Some(opt_dir) = &opt_dir {
                jail::bind_code_into(&opt, opt_dir)?;
            }
            Ok(())
        };
        in_namespace(self.ns.as_ref(), "bind code", bind)
    }
}

/// Runs mount work `f` in the sandboxes' mount namespace (`ns`, on the spawner thread), or
/// here where there is none. Blocking.
fn in_namespace(
    ns: Option<&jail::Spawner>,
    op: &'static str,
    f: impl FnOnce() -> Result<(), SandboxError> + Send + 'static,
) -> Result<(), SandboxError> {
    match ns {
        Some(ns) => ns.in_namespace(f).map_err(|source| LaunchError::Io { op, source })?,
        None => f(),
    }
}

impl Drop for LateMounts {
    fn drop(&mut self) {
        let dir = std::mem::take(&mut self.dir);
        match &self.ns {
            Some(ns) => ns.in_namespace_later(move || remove_late_mounts(&dir)),
            None => remove_late_mounts(&dir),
        }
    }
}

/// Unmounts first: removing a directory tree with code still bound inside would reach
/// into the code itself.
fn remove_late_mounts(dir: &Path) {
    for name in LATE_MOUNTS {
        if jail::remove_shared_mount_point(&dir.join(name)).is_err() {
            return; // still mounted: leave the directory rather than recurse into a mount
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Removes mount points and directories a crashed server left behind.
pub fn sweep_envs_dir(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        remove_late_mounts(&e.path());
    }
}

/// Where an interpreter from outside the system directories appears in a sandbox.
const LANG_BIN: &str = "/var/lang/bin";

/// System directories every sandbox has; an interpreter elsewhere is bound in.
const SYSTEM_DIRS: &[&str] = &["/usr/", "/bin/", "/lib/", "/lib64/", "/sbin/"];

/// Whether an interpreter is in the system directories (the same path inside a sandbox).
pub(crate) fn in_system_dirs(interpreter: &Path) -> bool {
    let text = interpreter.to_string_lossy();
    SYSTEM_DIRS.iter().any(|d| text.starts_with(d))
}

/// What to start, as (program, args) for the runtime's view.
fn command_for(
    iso: &Isolation,
    runtime: Runtime,
    code: &Code<'_>,
    registry: &RuntimeRegistry,
) -> Result<(PathBuf, Vec<String>, Option<Bind>), Reply> {
    let jailed = matches!(iso, Isolation::Namespaces(_));
    match runtime.family() {
        RuntimeFamily::Provided => {
            let dir = match code {
                Code::Dir(dir) => dir,
                // A sandbox built ahead of time: the code arrives before the gate opens.
                Code::Later if jailed => return Ok((PathBuf::from("/var/task/bootstrap"), vec![], None)),
                Code::Later => {
                    return Err(Reply::StartFailed { error_type: "Runtime.InvalidEntrypoint".into(), message: "no code".into() })
                }
            };
            if !dir.join("bootstrap").is_file() {
                return Err(Reply::StartFailed {
                    error_type: "Runtime.InvalidEntrypoint".into(),
                    message: "Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]".into(),
                });
            }
            let program = if jailed { PathBuf::from("/var/task/bootstrap") } else { dir.join("bootstrap") };
            Ok((program, vec![], None))
        }
        family => {
            let interpreter = registry.get(runtime).interpreter.clone().map_err(|why| Reply::StartFailed {
                error_type: "Runtime.Unavailable".into(),
                message: format!("Runtime {runtime} is not available on this Nimbus server: {why}"),
            })?;
            let host_dir = registry.runtime_dir(family).expect("managed runtimes have a bootstrap dir");
            let dir = if jailed { PathBuf::from("/var/runtime") } else { host_dir.to_path_buf() };
            let args = match family {
                RuntimeFamily::Node => vec![dir.join("bootstrap.js").to_string_lossy().into_owned()],
                _ => vec!["-u".to_string(), dir.join("bootstrap.py").to_string_lossy().into_owned()],
            };
            // An interpreter outside the system directories (e.g. a Node build from the
            // npm registry) is bound at /var/lang/bin, where AWS keeps its runtimes; its
            // host path may be anywhere, even under /tmp, which a sandbox has its own of.
            let elsewhere = jailed && !in_system_dirs(&interpreter);
            let (interpreter, bind) = match (elsewhere, interpreter.parent(), interpreter.file_name()) {
                (true, Some(dir), Some(file)) => {
                    (Path::new(LANG_BIN).join(file), Some(Bind { source: dir.to_path_buf(), target: PathBuf::from(LANG_BIN) }))
                }
                _ => (interpreter, None),
            };
            Ok((interpreter, args, bind))
        }
    }
}

/// Starts a runtime process. `vars` builds its environment from the Runtime API address
/// and the paths it sees. `Ok(Err(reply))` when it cannot be started at all here.
/// What one launch needs besides the code: its limits and where its output goes.
pub(crate) struct Resources<'a> {
    pub cgroups: Option<&'a CgroupManager>,
    pub memory_mb: u32,
    pub tmp_mb: u32,
    pub opt: Option<&'a Path>,
    pub sink: Option<LogSink>,
    /// The application log level the output is filtered by (JSON logs only).
    pub log_filter: Option<nimbus_model::logging::LogLevel>,
    /// The function's VPC network: a linked environment joins its VPC instead of the host's
    /// bridge, linked before the runtime starts.
    pub vpc: Option<Arc<crate::network::VpcPlan>>,
    pub trust: Option<&'a TrustedCertificates>,
    pub runtime_api: crate::connections::ConnectionLimits,
    /// A connection to the function's Python zygote: the runtime is forked from it instead
    /// of started (sandboxed Python runtimes only; ignored otherwise).
    pub zygote: Option<OwnedFd>,
}

pub(crate) async fn launch(
    iso: &Isolation,
    registry: &RuntimeRegistry,
    runtime: Runtime,
    code: Code<'_>,
    res: Resources<'_>,
    vars: impl FnOnce(&str, &Paths) -> Vec<(String, String)>,
) -> Result<Result<Process, Reply>, SandboxError> {
    let (program, args, bind) = match command_for(iso, runtime, &code, registry) {
        Ok(c) => c,
        Err(reply) => return Ok(Err(reply)),
    };
    let (opt, tmp_mb, sink, log_filter, trust) = (res.opt, res.tmp_mb, res.sink, res.log_filter, res.trust);
    let zygote = res.zygote.filter(|_| runtime.family() == RuntimeFamily::Python && matches!(iso, Isolation::Namespaces(_)));
    let forked = zygote.is_some();
    let mut timeline = Timeline::new();
    let cgroup = match res.cgroups {
        Some(m) => Some(Arc::new(m.create(&uuid::Uuid::new_v4().simple().to_string(), &Limits::for_init(res.memory_mb))?)),
        None => None,
    };
    Timeline::mark(&mut timeline, "cgroup");
    let procs: Vec<PathBuf> = cgroup.as_ref().map(|c| c.procs_files()).unwrap_or_default();
    let host_code: Option<&Path> = match code {
        Code::Dir(d) => Some(d),
        Code::Later => None,
    };
    let view = paths(iso, registry, runtime, host_code.unwrap_or(Path::new("/var/task")), opt, trust);

    let (read_end, write_end) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| io("create the output pipe")(e.into()))?;
    let capture = OutputCapture::new(read_end, sink, log_filter).map_err(io("watch the output pipe"))?;
    if timeline.is_some() && matches!(iso, Isolation::Namespaces(_)) {
        capture.divert_timings();
    }
    let api = RuntimeApi::new(capture.clone(), res.runtime_api);

    // The Runtime API listener: inside the environment's own network namespace, or a
    // host loopback port.
    // A linked namespace made ahead of time if one is ready. Else, for a runtime started
    // for its function now, a bare namespace at once, linked by the linker thread while the
    // sandbox is built; the runtime waits at its gate until the link is up (see below).
    // The linker and a handle on the namespace it is to link.
    let mut link_later: Option<(Arc<Linker>, OwnedFd)> = None;
    // A linked namespace also has listeners at the server's own port (`server_door`).
    let mut server_listeners: Vec<std::net::TcpListener> = Vec::new();
    let door = match iso {
        Isolation::Namespaces(NamespaceConfig { network: Network::Linked(linker), .. }) => linker.door(),
        _ => None,
    };
    let server_port = door.as_ref().map(|(port, _)| *port);
    let (listener, netns): (std::net::TcpListener, Option<OwnedFd>) = match iso {
        Isolation::Namespaces(NamespaceConfig { network: Network::Isolated, .. }) => {
            let (ns, l) = tokio::task::spawn_blocking(|| jail::new_netns_with_listener(RUNTIME_API_PORT))
                .await
                .map_err(|source| LaunchError::Blocking { op: "make a network namespace", source })??;
            (l, Some(ns))
        }
        Isolation::Namespaces(NamespaceConfig { network: Network::Linked(linker), .. }) if res.vpc.is_some() => {
            // A function in a VPC: a bare namespace, linked into its VPC (security groups
            // applied) before anything runs in it. Without that link it does not run.
            let plan = res.vpc.clone().expect("matched");
            let linker = linker.clone();
            let made = tokio::task::spawn_blocking(move || {
                let (ns, l, server) = jail::new_netns_with_listeners(RUNTIME_API_PORT, server_port).map_err(std::io::Error::other)?;
                linker.link_vpc(&ns, plan).map(|link| (ns, l, server, link))
            })
            .await
            .map_err(|source| LaunchError::Blocking { op: "link a VPC environment", source })?;
            match made {
                Ok((ns, l, server, _link)) => {
                    server_listeners = server;
                    (l, Some(ns))
                }
                Err(e) => {
                    tracing::warn!("cannot link an environment into its VPC: {e}");
                    return Ok(Err(Reply::StartFailed {
                        error_type: "EC2UnexpectedException".into(),
                        message: format!("Nimbus could not attach the function's environment to its VPC: {e}"),
                    }));
                }
            }
        }
        Isolation::Namespaces(NamespaceConfig { network: Network::Linked(linker), .. }) => match linker.take_ready() {
            Some(ns) => {
                server_listeners = ns.server;
                (ns.listener, Some(ns.fd))
            }
            None if matches!(code, Code::Dir(_)) => {
                let (ns, l, server) = tokio::task::spawn_blocking(move || jail::new_netns_with_listeners(RUNTIME_API_PORT, server_port))
                    .await
                    .map_err(|source| LaunchError::Blocking { op: "make a network namespace", source })??;
                link_later = Some((linker.clone(), ns.try_clone().map_err(io("duplicate the network namespace's fd"))?));
                server_listeners = server;
                (l, Some(ns))
            }
            None => {
                let linker = linker.clone();
                let ns = tokio::task::spawn_blocking(move || linker.take())
                    .await
                    .map_err(|source| LaunchError::Blocking { op: "take a linked network namespace", source })?
                    .map_err(io("take a linked network namespace"))?;
                server_listeners = ns.server;
                (ns.listener, Some(ns.fd))
            }
        },
        _ => (std::net::TcpListener::bind("127.0.0.1:0").map_err(io("listen on a host loopback port"))?, None),
    };
    Timeline::mark(&mut timeline, "network");
    let addr = listener.local_addr().map_err(io("read the Runtime API's address"))?.to_string();
    // The Runtime API's listener takes in the server's connections too when both have the
    // same port (9001); else the server's own listeners do.
    let shared = door.as_ref().filter(|(port, _)| *port == RUNTIME_API_PORT).map(|(_, d)| d.clone());
    api.serve_on(listener, shared).map_err(io("serve the Runtime API"))?;
    if let Some((_, door)) = &door {
        for l in server_listeners {
            crate::server_door::serve(l, door.clone(), api.stopped()).map_err(io("serve the server's port inside the environment"))?;
        }
    }
    let env = vars(&addr, &view);
    Timeline::mark(&mut timeline, "runtime-api");

    let mut late_mounts = None;
    let mut gate = None;
    // The launch message of a sandbox started for its function: its whole environment.
    let mut launch_later = None;
    // Made by the spawner (its reply), else a command the server spawns itself.
    let mut spawned = None;
    let mut output = Some(write_end);
    let started = Instant::now();
    let std_cmd = match iso {
        Isolation::Process => {
            let mut c = std::process::Command::new(&program);
            c.args(&args).env_clear().envs(env).current_dir(host_code.unwrap_or(Path::new("/")));
            Some(c)
        }
        Isolation::Namespaces(ns) => {
            let late = match code {
                // Mounts (the namespace lock, which sandboxes being built hold, and the spawner
                // thread, which makes them): off the workers.
                Code::Later => Some(nimbus_store::blocking::in_place(|| LateMounts::create(&ns.envs_dir, ns.spawner.as_ref()))?),
                Code::Dir(_) => None,
            };
            // A sandbox waits at its gate (before exec) until its environment opens it: one
            // started for its function once its init may begin (`Environment::start`); one
            // built ahead of time (a `provided` runtime is the function's own program) until
            // it is assigned.
            let fresh = matches!(code, Code::Dir(_));
            let gated = fresh || runtime.family() == RuntimeFamily::Provided;
            let gate_read = if gated {
                let (read, write) =
                    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| io("create the gate pipe")(e.into()))?;
                gate = Some(write);
                Some(read)
            } else {
                None
            };
            let env = if fresh {
                launch_later = Some(jail::Launch { env, cwd: None });
                Vec::new()
            } else {
                env
            };
            let spec = JailSpec {
                program: program.clone(),
                args: args.clone(),
                env,
                cwd: PathBuf::from("/var/task"),
                hostname: "nimbus".into(),
                code_dir: host_code.map(Path::to_path_buf),
                task_mount: late.as_ref().map(LateMounts::task),
                opt_mount: late.as_ref().map(LateMounts::opt),
                runtime_dir: registry.runtime_dir(runtime.family()).map(Path::to_path_buf),
                layers_dir: opt.map(Path::to_path_buf),
                ro_binds: bind.into_iter().chain(trust.map(|t| Bind { source: t.dir.clone(), target: PathBuf::from(TRUST_DIR) })).collect(),
                tmp_size_mb: tmp_mb,
                net: if netns.is_some() { Net::Join(jail::NETNS_FD) } else { Net::Host },
                cgroup_procs: procs.clone(),
                rlimit_nproc: None,
                timings: timeline.is_some(),
                ..JailSpec::new(program.clone())
            };
            late_mounts = late;
            let fds = jail::sandbox_fds_with(&spec, netns, gate_read, zygote)?;
            match ns.spawner.as_ref() {
                Some(spawner) if spawner.is_alive() => {
                    let output = output.take().expect("the output pipe is used once");
                    spawned = Some(spawn_with(spawner, output, fds, &api, &program, started).await);
                    None
                }
                Some(gone) => {
                    // Started in the sandboxes' mount namespace all the same, where the late
                    // mount points are.
                    let mut cmd = jail::command_with(&ns.exe, fds);
                    // Above the numbers the fds are placed at (3, 4, …) before this runs.
                    let namespace =
                        rustix::io::fcntl_dupfd_cloexec(gone.namespace(), 16).map_err(|e| io("keep the sandboxes' namespace")(e.into()))?;
                    // SAFETY: the closure makes raw syscalls only (setns, chroot).
                    unsafe {
                        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                            jail::join_sandbox_namespace(std::os::fd::AsFd::as_fd(&namespace))
                        });
                    }
                    Some(cmd)
                }
                None => Some(jail::command_with(&ns.exe, fds)),
            }
        }
    };
    let mut child = match (std_cmd, spawned) {
        (_, Some(Ok(child))) => Child::Spawned(child),
        (_, Some(Err(e))) => return spawn_failed(&program, e).map(Err),
        (Some(std_cmd), None) => {
            // (a fork of the server, waited for until the child execs: off the async workers)
            let output = output.take().expect("the output pipe is used once");
            match nimbus_store::blocking::in_place(|| spawn_command(std_cmd, output, iso, procs, &api, started)) {
                Ok(child) => Child::Forked(child),
                Err(e) => return spawn_failed(&program, e).map(Err),
            }
        }
        (None, None) => unreachable!("a launch either spawned or built a command"),
    };
    let pending = launch_later.map(|launch| {
        // The sandbox builds while the linker thread links its namespace. Without a link the
        // function still runs (loopback only), as it says.
        let linked = link_later.map(|(linker, ns)| {
            let (done, linked) = tokio::sync::oneshot::channel();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = linker.link(&ns) {
                    tracing::warn!("cannot link an environment's network namespace (it keeps loopback only): {e}");
                }
                let _ = done.send(());
            });
            linked
        });
        // (unwritten, the gate still closes when this drops: the runtime then ends quietly)
        Pending { gate: gate.take().expect("a sandbox started for its function has a gate"), launch, linked }
    });
    let pid = child.id();
    Timeline::mark(&mut timeline, "spawn");
    if let Some(t) = timeline {
        t.log("start", runtime, pid);
    }
    tokio::spawn(capture.clone().run());

    let dead = Arc::new(AtomicBool::new(false));
    let jailed = matches!(iso, Isolation::Namespaces(_));
    {
        let api = api.clone();
        let dead = dead.clone();
        let capture = capture.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            dead.store(true, Ordering::SeqCst);
            capture.drain(true);
            // sandbox-init says on its last line why the runtime could not be executed.
            let exec_failed = jailed && status.as_ref().is_ok_and(|s| s.code() == Some(jail::EXIT_EXEC_FAILED));
            let why = crate::environment::describe_exit(status);
            let last_line = capture.tail().lines().last().unwrap_or_default().to_string();
            api.fail_pending(|| {
                if exec_failed {
                    Reply::StartFailed { error_type: "Runtime.InvalidEntrypoint".into(), message: last_line.clone() }
                } else {
                    Reply::Exited(why.clone())
                }
            });
            api.shutdown();
        });
    }
    Ok(Ok(Process { api, capture, addr, pid, dead, started, forked, late: late_mounts, gate, pending, cgroup }))
}

/// A runtime process: spawned by the server itself (process isolation, or no spawner), or
/// made by the [`jail::Spawner`].
enum Child {
    Forked(tokio::process::Child),
    Spawned(jail::SandboxChild),
}

impl Child {
    fn id(&self) -> u32 {
        match self {
            Child::Forked(c) => c.id().unwrap_or(0),
            Child::Spawned(c) => c.id(),
        }
    }

    async fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        match self {
            Child::Forked(c) => c.wait().await,
            Child::Spawned(c) => c.wait().await,
        }
    }
}

/// The reply for a runtime process that could not be started.
fn not_started(program: &Path, e: &std::io::Error) -> Reply {
    Reply::StartFailed {
        error_type: "Runtime.InvalidEntrypoint".into(),
        message: format!("fork/exec {}: {}", program.display(), e.kind().to_string().to_lowercase()),
    }
}

/// What a failed spawn means: out of descriptors, processes or memory is the server's
/// capacity, not the function's fault (the invocation is throttled, see
/// `SandboxError::is_exhaustion`); anything else is an entrypoint that cannot start.
fn spawn_failed(program: &Path, e: std::io::Error) -> Result<Reply, SandboxError> {
    if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::EAGAIN | libc::ENOMEM)) {
        return Err(io("start the runtime")(e).into());
    }
    Ok(not_started(program, &e))
}

/// Has the spawner make sandbox-init with `output` as its stdout and stderr and `fds` at 3, …
/// Our copies of `output` and `fds` are closed when this returns, so end of file on the
/// output means the process is gone.
async fn spawn_with(
    spawner: &jail::Spawner,
    output: OwnedFd,
    fds: Vec<OwnedFd>,
    api: &RuntimeApi,
    program: &Path,
    started: Instant,
) -> std::io::Result<jail::SandboxChild> {
    use std::os::fd::AsFd;
    api.mark_started(started);
    let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
    spawner.spawn(output.as_fd(), output.as_fd(), &borrowed).await.map_err(|e| {
        tracing::warn!("the sandbox spawner could not start a sandbox for {}: {e}", program.display());
        api.shutdown();
        e
    })
}

/// Spawns `std_cmd` as the server's own child (from the forker thread): stdin `/dev/null`,
/// `output` as stdout and stderr, its own process group, killed if dropped; in process
/// isolation, AWS's rlimits and the cgroups (`procs`) are applied before exec.
fn spawn_command(
    std_cmd: std::process::Command,
    output: OwnedFd,
    iso: &Isolation,
    procs: Vec<PathBuf>,
    api: &RuntimeApi,
    started: Instant,
) -> std::io::Result<tokio::process::Child> {
    let stderr = match output.try_clone() {
        Ok(fd) => fd,
        Err(e) => {
            api.shutdown();
            return Err(e);
        }
    };
    let mut cmd = tokio::process::Command::from(std_cmd);
    cmd.stdin(Stdio::null()).stdout(Stdio::from(output)).stderr(Stdio::from(stderr)).kill_on_drop(true);
    // A session of its own, as the spawner's sandboxes get: its own process group (killed as
    // one) and no controlling terminal, so neither a runtime nor sandbox-init can open the
    // server's terminal through /dev/tty.
    // SAFETY: setsid is a raw, async-signal-safe syscall.
    unsafe {
        cmd.pre_exec(|| rustix::process::setsid().map(drop).map_err(std::io::Error::from));
    }
    if matches!(iso, Isolation::Process) {
        // SAFETY: the closure makes raw syscalls only (prctl, setrlimit, and writes of "0"
        // into cgroup files prepared before the fork), all async-signal-safe, no allocation.
        unsafe {
            cmd.pre_exec(move || {
                rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
                // The cgroups first: joining one opens its file, and this copy of the server
                // has all the server's descriptors, so once the server holds more than
                // 1,024 the lowest free one is above the limit set below (EMFILE).
                if !procs.is_empty() {
                    crate::cgroup::enter_current_process(&procs)?;
                }
                // AWS's limits, as rlimits where no sandbox enforces them.
                let nofile = rustix::process::Rlimit { current: Some(1024), maximum: Some(1024) };
                let _ = rustix::process::setrlimit(rustix::process::Resource::Nofile, nofile);
                let _ = rustix::process::setrlimit(
                    rustix::process::Resource::Core,
                    rustix::process::Rlimit { current: Some(0), maximum: Some(0) },
                );
                Ok(())
            });
        }
    }
    api.mark_started(started);
    // From the forker thread, which outlives the child (its parent-death signal follows
    // that thread); `cmd`, with our copies of the pipe's write end (and fds 3 and 4), is
    // dropped there, so EOF means the process is gone.
    crate::forker::spawn(cmd).inspect_err(|_| api.shutdown())
}

//! Isolation of one execution environment. The server starts `nimbus sandbox-init` with a
//! [`JailSpec`] on fd 3; sandbox-init builds namespaces, a minimal read-only root, an
//! unprivileged user and a seccomp filter, then execs the runtime as PID 2 under a minimal
//! init. The server-side helpers (starting it, network namespaces holding a Runtime API
//! listener, the late `/var/task` assignment) are in this module too, so both ends of the
//! fd-3 contract live in one place.
//!
//! Process tree, as seen from the host, of a sandbox made by the [`Spawner`] (made in a new
//! PID namespace, so sandbox-init is init itself):
//!
//! ```text
//! server ── sandbox-init = init (PID 1 inside: builds the root, reaps zombies, reports
//!              │                 the runtime's wait status on a pipe the server reads)
//!              └── runtime (PID 2 inside: uid 993, no capabilities, seccomp)
//! ```
//!
//! A sandbox-init the server starts itself (no spawner) begins in the host's PID namespace,
//! so it is one process more: an outer one that forks init and ends as the runtime did.
//!
//! Invariants: init (and the outer process) die with their parent (PDEATHSIG); when the
//! runtime exits, init exits and the kernel kills whatever else is left in the namespace;
//! the server sees the runtime's end exactly (same exit code, or same signal: from the
//! spawner's [`SandboxChild::wait`], or the outer process's own end); exit 126 means the
//! sandbox could not be built, 127 that the program could not be run (with one line on
//! stderr saying why).
//!
//! How the server starts one (the listener and namespace ahead of time, off the invoke
//! path):
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use nimbus_sandbox::jail::{self, JailSpec, Net};
//! let (netns, listener) = jail::new_netns_with_listener(9001)?; // serve `listener` as the Runtime API
//! let spec = JailSpec { net: Net::Join(jail::NETNS_FD), env: vec![("AWS_LAMBDA_RUNTIME_API".into(), "127.0.0.1:9001".into())],
//!                       ..JailSpec::new("/var/runtime/bootstrap") };
//! let mut cmd = jail::command(&std::env::current_exe()?, &spec, Some(netns))?; // fd 3 = spec, fd 4 = netns
//! cmd.stdin(std::process::Stdio::null());
//! let mut cmd = tokio::process::Command::from(cmd); // then stdout/stderr, process_group(0), kill_on_drop
//! let child = cmd.spawn()?;
//! drop(cmd); // closes the server's copies of fds 3 and 4
//! # drop(child); Ok(()) }
//! ```

mod error;
mod host;
mod init;
mod rootfs;
mod seccomp;
mod spawner;
mod sys;
mod zygote;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use error::{JailError, SeccompError, SpecError};
pub use host::{
    available, bind_code_into, command, command_gated, command_with, enter_new_netns_with_listener, make_shared_mount_point, new_netns,
    new_netns_with_listener, new_netns_with_listeners, place_child_fds, prepare, remove_shared_mount_point, sandbox_fds, sandbox_fds_with,
    server_listeners, write_launch, ReturnToNetns,
};
pub use init::init_main;
pub use rootfs::{enter_sandbox_namespace, join_sandbox_namespace, MountStep};
pub use spawner::{spawner_main, SandboxChild, Spawner};
pub use zygote::{Zygote, SCRIPT as ZYGOTE_SCRIPT};

/// The version of the fd-3 contract; sandbox-init refuses any other.
pub const JAIL_SPEC_VERSION: u32 = 1;
/// Where sandbox-init reads its [`JailSpec`] (JSON, until end of file).
pub const SPEC_FD: i32 = 3;
/// Where [`command`] places a network namespace to join ([`Net::Join`]).
pub const NETNS_FD: i32 = 4;
/// Exit code of sandbox-init when the sandbox could not be built (the runtime never ran).
pub const EXIT_SETUP_FAILED: i32 = 126;
/// Exit code when the runtime program could not be executed (missing, not executable).
pub const EXIT_EXEC_FAILED: i32 = 127;

/// Everything sandbox-init needs to build one sandbox and start the runtime in it. Paths of
/// the program, `cwd` and bind targets are as seen inside; sources are host paths.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JailSpec {
    /// Must equal [`JAIL_SPEC_VERSION`].
    pub version: u32,
    /// The runtime to exec, as a path inside the sandbox; it is also `argv[0]`.
    pub program: PathBuf,
    /// `argv[1..]`.
    pub args: Vec<String>,
    /// The runtime's whole environment (nothing is inherited).
    pub env: Vec<(String, String)>,
    /// Working directory inside the sandbox, entered as the unprivileged user.
    pub cwd: PathBuf,
    /// The UTS hostname inside (at most 64 bytes).
    pub hostname: String,
    pub uid: u32,
    pub gid: u32,
    /// `cgroup.procs` (or v1 `tasks`) files that get sandbox-init's pid before anything else,
    /// so every process of the sandbox is accounted from its first allocation.
    pub cgroup_procs: Vec<PathBuf>,
    /// Host directory bound read-only at `/var/task`.
    pub code_dir: Option<PathBuf>,
    /// Directory made a shared mount point by [`make_shared_mount_point`] (in the
    /// sandboxes' mount namespace where there is one, see [`Spawner::in_namespace`]), bound at
    /// `/var/task` as a slave: a later [`bind_code_into`] on it shows up inside. Takes
    /// precedence over `code_dir`.
    pub task_mount: Option<PathBuf>,
    /// Host directory bound read-only at `/var/runtime` (the shipped bootstrap).
    pub runtime_dir: Option<PathBuf>,
    /// Host directory bound read-only at `/opt` (the function's layers).
    pub layers_dir: Option<PathBuf>,
    /// Like `task_mount`, for `/opt`: a shared mount point the layers are bound onto later.
    /// Takes precedence over `layers_dir`.
    pub opt_mount: Option<PathBuf>,
    /// An inherited fd the runtime reads a [`Launch`] from (until end of file) after the
    /// root is built and before it execs: a sandbox built ahead of time waits here for the
    /// function it will run. Set by [`command_gated`].
    pub gate_fd: Option<i32>,
    /// An inherited unix socket to a Python zygote (`runtimes/python/zygote.py`): init builds
    /// the root, passes the gate, and has the zygote fork the runtime into the sandbox
    /// instead of exec'ing `program` (see [`Zygote`]). Set by
    /// [`sandbox_fds_with`].
    pub zygote_fd: Option<i32>,
    /// More read-only binds (an interpreter installed outside `/usr`).
    pub ro_binds: Vec<Bind>,
    /// Size of the sandbox's one tmpfs, which `/tmp` and `/dev/shm` share (AWS's
    /// EphemeralStorage, 512 MB by default; the root's few generated files live there too).
    pub tmp_size_mb: u32,
    pub net: Net,
    /// `RLIMIT_NPROC`. The kernel counts it per uid across the whole host, not per sandbox:
    /// with one uid shared by all sandboxes it caps their sum. `None` leaves the limit to
    /// the pids cgroup.
    pub rlimit_nproc: Option<u64>,
    /// `RLIMIT_NOFILE` (AWS: 1,024).
    pub rlimit_nofile: u64,
    /// Print where the time went (to stderr) just before exec.
    pub timings: bool,
}

/// What a gated sandbox's runtime learns at the gate: its whole environment (replacing the
/// spec's) and, if given, its working directory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Launch {
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
}

/// A read-only bind mount of a host path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bind {
    pub source: PathBuf,
    pub target: PathBuf,
}

impl Bind {
    /// A host path bound at the same path inside.
    pub fn same(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        Bind { source: path.clone(), target: path }
    }
}

/// Which network the sandbox sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Net {
    /// The host's network (loopback Runtime API works as without isolation).
    Host,
    /// A fresh namespace with only `lo`, up.
    New,
    /// Join the namespace open at this inherited fd (see [`new_netns_with_listener`],
    /// [`command`] places it at [`NETNS_FD`]).
    Join(i32),
}

impl Default for JailSpec {
    fn default() -> Self {
        JailSpec {
            version: JAIL_SPEC_VERSION,
            program: PathBuf::new(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: PathBuf::from("/var/task"),
            hostname: "nimbus".into(),
            // AWS runs functions as sbx_user1051 (993:990).
            uid: 993,
            gid: 990,
            cgroup_procs: Vec::new(),
            code_dir: None,
            task_mount: None,
            runtime_dir: None,
            layers_dir: None,
            opt_mount: None,
            gate_fd: None,
            zygote_fd: None,
            ro_binds: Vec::new(),
            tmp_size_mb: 512,
            net: Net::Host,
            rlimit_nproc: Some(1024),
            rlimit_nofile: 1024,
            timings: false,
        }
    }
}

impl JailSpec {
    /// A spec with AWS's defaults that runs `program` with no arguments.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        JailSpec { program: program.into(), ..Default::default() }
    }

    /// The checks sandbox-init makes before touching anything; the server can call it first
    /// to fail early with the same message.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.version != JAIL_SPEC_VERSION {
            return Err(SpecError::Version { got: self.version });
        }
        if self.program.as_os_str().is_empty() {
            return Err(SpecError::NoProgram);
        }
        if !self.cwd.is_absolute() {
            return Err(SpecError::RelativeCwd(self.cwd.clone()));
        }
        if self.hostname.is_empty() || self.hostname.len() > 64 {
            return Err(SpecError::Hostname(self.hostname.clone()));
        }
        if self.tmp_size_mb == 0 {
            return Err(SpecError::EmptyTmpfs);
        }
        // -1 would leave the id as it is: root's.
        if self.uid == 0 || self.gid == 0 || self.uid == u32::MAX || self.gid == u32::MAX {
            return Err(SpecError::Root);
        }
        for (k, v) in &self.env {
            if k.is_empty() || k.contains(['=', '\0']) || v.contains('\0') {
                return Err(SpecError::EnvVar(k.clone()));
            }
        }
        if self.args.iter().any(|a| a.contains('\0')) {
            return Err(SpecError::NulInArgument);
        }
        for b in &self.ro_binds {
            rootfs::check_target(&b.target)?;
            if !b.source.is_absolute() {
                return Err(SpecError::BindSourceRelative(b.source.clone()));
            }
        }
        if let Net::Join(fd) = self.net {
            // 0-2 are stdio and 3 is the spec itself.
            if fd <= SPEC_FD {
                return Err(SpecError::NetnsFd(fd));
            }
        }
        if let Some(fd) = self.gate_fd {
            if fd <= SPEC_FD || self.net == Net::Join(fd) {
                return Err(SpecError::GateFd(fd));
            }
        }
        if let Some(fd) = self.zygote_fd {
            if fd <= SPEC_FD || self.net == Net::Join(fd) || self.gate_fd == Some(fd) {
                return Err(SpecError::ZygoteFd(fd));
            }
        }
        Ok(())
    }

    /// What sandbox-init will mount for this spec on this host, in order (a dry run: it
    /// only looks at host paths).
    pub fn mount_plan(&self) -> Result<Vec<MountStep>, SpecError> {
        rootfs::plan(self)
    }
}

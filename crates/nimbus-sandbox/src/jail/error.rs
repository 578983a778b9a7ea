//! What can go wrong building a sandbox or preparing one on the server, and where: each
//! failed call carries the operation (with the path it was about) and the kernel's error, as
//! youki's `WrappedIoError` does. sandbox-init prints one as `sandbox-init: <error>`; the
//! server logs or returns it.

use std::io;
use std::path::{Path, PathBuf};

/// An error of the jail, on either side of the fd-3 contract.
#[derive(Debug, thiserror::Error)]
pub enum JailError {
    /// The spec breaks a rule of the contract ([`super::JailSpec::validate`]).
    #[error("check spec: {0}")]
    InvalidSpec(#[source] SpecError),
    /// The spec asks for something this host does not have ([`super::JailSpec::mount_plan`]).
    #[error("plan mounts: {0}")]
    Plan(#[source] SpecError),
    /// A sandbox built ahead of time passed its gate without the code bound into it.
    #[error("the function's code did not reach this sandbox ({} is missing)", .0.display())]
    CodeMissing(PathBuf),
    /// The Python zygote did not start the runtime (it printed why, or it is gone).
    #[error("the zygote did not start the runtime")]
    Zygote,
    /// A call that works on no path failed (`unshare`, `prctl`, `fork`, …).
    #[error("{op}: {source}")]
    Sys { op: &'static str, source: io::Error },
    /// A call on a path failed (`mount`, `mkdir`, `chdir`, `open_tree`, …).
    #[error("{op} {}: {source}", path.display())]
    Path { op: &'static str, path: PathBuf, source: io::Error },
    /// A JSON document of the contract (the spec, a launch message) could not be read or written.
    #[error("{op}: {source}")]
    Json { op: &'static str, source: serde_json::Error },
    /// A string bound for a C call holds a NUL byte.
    #[error("prepare {what}: contains a NUL byte")]
    Nul { what: &'static str },
    #[error("{op}: {source}")]
    Seccomp { op: &'static str, source: SeccompError },
    #[error("isolation needs Linux on x86_64")]
    UnsupportedPlatform,
    #[error("isolation needs root (CAP_SYS_ADMIN, CAP_SETUID, CAP_SETGID, CAP_SETPCAP, CAP_NET_ADMIN); missing {missing:?}")]
    MissingCapabilities { missing: rustix::thread::CapabilitySet },
    #[error("the kernel has no {0} namespaces")]
    NoNamespace(&'static str),
    #[error("the kernel has no seccomp")]
    NoSeccomp,
    #[error("namespace probe thread panicked")]
    ProbePanicked,
}

impl JailError {
    /// The kernel's error, for the errors that came from a call.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            JailError::Sys { source, .. } | JailError::Path { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// `map_err` helpers: `sys::unshare(flags).map_err(sys("unshare"))`.
pub(super) fn sys<E: Into<io::Error>>(op: &'static str) -> impl FnOnce(E) -> JailError {
    move |source| JailError::Sys { op, source: source.into() }
}

/// `map_err` helper for calls on a path: `mkdirs(p).map_err(path("mkdir", p))`.
pub(super) fn path<'a, E: Into<io::Error>>(op: &'static str, path: &'a Path) -> impl FnOnce(E) -> JailError + 'a {
    move |source| JailError::Path { op, path: path.to_owned(), source: source.into() }
}

/// What is wrong with a [`super::JailSpec`], in itself or on this host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("spec version {got} (this binary speaks {})", super::JAIL_SPEC_VERSION)]
    Version { got: u32 },
    #[error("no program")]
    NoProgram,
    #[error("cwd {} is not absolute", .0.display())]
    RelativeCwd(PathBuf),
    #[error("hostname {0:?} must be 1 to 64 bytes")]
    Hostname(String),
    #[error("tmp_size_mb must be positive")]
    EmptyTmpfs,
    #[error("the runtime must not run as root")]
    Root,
    #[error("invalid environment variable {0:?}")]
    EnvVar(String),
    #[error("an argument contains a NUL byte")]
    NulInArgument,
    #[error("bind target {} must be an absolute path without . or ..", .0.display())]
    BindTargetNotPlain(PathBuf),
    #[error("a bind target cannot be /")]
    BindTargetRoot,
    /// These are mounted after the binds and would hide them.
    #[error("bind target {} is under {under}", target.display())]
    BindTargetReserved { target: PathBuf, under: &'static str },
    #[error("bind source {} is not absolute", .0.display())]
    BindSourceRelative(PathBuf),
    #[error("bind source {}: no such file or directory", .0.display())]
    BindSourceMissing(PathBuf),
    #[error("bind source {}: not a file or directory", .0.display())]
    BindSourceKind(PathBuf),
    #[error("network namespace fd {0} (must be above {spec})", spec = super::SPEC_FD)]
    NetnsFd(i32),
    #[error("gate fd {0} (must be above {spec} and not the network namespace's)", spec = super::SPEC_FD)]
    GateFd(i32),
    #[error("zygote fd {0} (must be above {spec} and none of the other fds)", spec = super::SPEC_FD)]
    ZygoteFd(i32),
    #[error("Net::Join needs the namespace fd")]
    NetnsMissing,
    #[error("/usr: missing on this host")]
    NoUsr,
    /// A directory the spec names (`code_dir`, `task_mount`, …) is missing.
    #[error("{what} {}: no such directory", path.display())]
    DirMissing { what: &'static str, path: PathBuf },
    #[error("{what} {}: not a directory", path.display())]
    NotADir { what: &'static str, path: PathBuf },
}

/// The seccomp filter could not be built or installed.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("{0}")]
    Backend(#[from] seccompiler::BackendError),
    #[error("{0}")]
    Install(#[from] seccompiler::Error),
    /// The program is not what the hand-written prefix expects (or is too long).
    #[error("{0}")]
    Layout(&'static str),
}

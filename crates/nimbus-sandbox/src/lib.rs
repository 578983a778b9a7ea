//! Execution environments: a runtime process with its own Runtime API endpoint and log
//! capture, their lifecycle (starting, ready, busy, dead), and the pool that keeps warm ones
//! for reuse. Knows nothing of the Lambda API or of HTTP callers: the invoke path hands it
//! an [`EnvSpec`] and an [`Invocation`] and gets a [`Reply`] back.

mod capture;
pub mod cgroup;
pub mod connections;
mod environment;
mod forker;
mod freezer;
pub mod jail;
mod launch;
pub mod network;
mod pool;
mod runtime_api;
pub mod runtimes;
pub mod server_door;

pub use environment::{EnvSpec, Environment, Held, InvokeTimings};
pub use launch::{sweep_envs_dir, trace_starts, Isolation, LaunchError, NamespaceConfig, Network, TrustedCertificates};
pub use pool::{Acquired, EnvironmentPool, PoolConfig, ProvisionKey, ProvisionedCounts};
pub use runtimes::{RuntimeInfo, RuntimeRegistry};
pub use server_door::ServerDoor;

use bytes::Bytes;

/// One event handed to an environment.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    pub payload: Bytes,
    pub invoked_arn: String,
    pub trace_id: String,
    pub client_context: Option<String>,
    pub timeout: std::time::Duration,
    /// Whether the environment's init counts against `timeout` (AWS's second init, after an
    /// on-demand init ran past [`environment::INIT_TIMEOUT`]); otherwise init has its own
    /// 10 seconds and the timeout starts when the runtime takes the event.
    pub init_within_timeout: bool,
    /// Where a streamed response goes as the runtime writes it (InvokeWithResponseStream,
    /// function URLs in RESPONSE_STREAM mode). Without one, a streamed response is
    /// collected and answered whole, as a plain Invoke of a streaming function is on AWS.
    pub stream: Option<StreamSink>,
}

/// A streamed response as the runtime writes it.
#[derive(Debug)]
pub enum StreamEvent {
    /// Sent by the invoker before the event goes out: the version that runs it.
    Resolved {
        version: String,
    },
    /// The runtime began a streamed response with this content type.
    Start {
        content_type: Option<String>,
    },
    Chunk(Bytes),
}

/// The receiving end of [`Invocation::stream`].
pub type StreamSink = tokio::sync::mpsc::Sender<StreamEvent>;

/// How an invocation ended, as the environment saw it.
#[derive(Debug)]
pub enum Reply {
    Response(Bytes),
    /// The runtime streamed its response, and every byte went to [`Invocation::stream`].
    Streamed,
    /// The runtime reported an error (`/invocation/{id}/error`): its type header and body.
    FunctionError {
        error_type: Option<String>,
        body: Bytes,
    },
    /// The runtime reported an init failure (`/runtime/init/error`).
    InitError {
        error_type: Option<String>,
        body: Bytes,
    },
    /// The runtime answered with more than the 6 MB limit.
    ResponseTooLarge,
    /// The runtime's response broke off before its end (a bad chunk, a connection closed
    /// short of its `Content-Length`): AWS's `Runtime.TruncatedResponse`.
    TruncatedResponse,
    /// The process exited; the text is AWS's wording (`exit status 1`, `signal: killed`).
    Exited(String),
    /// The environment could not be started at all (missing bootstrap or interpreter).
    StartFailed {
        error_type: String,
        message: String,
    },
    TimedOut,
    /// An on-demand environment's init did not reach `/next` within [`environment::INIT_TIMEOUT`]; the
    /// time it took. AWS then runs init again within the function's timeout.
    InitTimedOut(std::time::Duration),
}

/// Why an environment could not be made (a server-side failure, not the function's).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(transparent)]
    Cgroup(#[from] cgroup::CgroupError),
    #[error(transparent)]
    Jail(#[from] jail::JailError),
    #[error(transparent)]
    Launch(#[from] LaunchError),
}

/// Raises this process's soft descriptor limit (RLIMIT_NOFILE) to its hard limit, as Go's
/// runtime does: the server holds about six descriptors per running environment and one
/// per connection, far more than a usual soft limit of 1,024. Environments get AWS's 1,024
/// of their own. With a `target`, a server allowed to (root, `CAP_SYS_RESOURCE`) first raises
/// the hard limit itself to it (at most the kernel's `fs.nr_open`), as container runtimes and
/// systemd services do: a VM's hard limit of 20,000 otherwise throttles a burst of 3,000
/// environments. Returns the limit now in force (None: unlimited or unknown).
pub fn raise_descriptor_limit(target: Option<u64>) -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open").ok().and_then(|s| s.trim().parse::<u64>().ok());
    let target = target.map(|t| nr_open.map_or(t, |n| n.min(t)));
    if let Some(target) = target.filter(|t| limit.maximum.is_some_and(|hard| hard < *t)) {
        // Refused without the capability: the hard limit stays as it is.
        if setrlimit(Resource::Nofile, Rlimit { current: Some(target), maximum: Some(target) }).is_ok() {
            tracing::info!(from = limit.maximum, to = target, "raised the descriptor limit (RLIMIT_NOFILE)");
        }
    }
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        if let Err(e) = setrlimit(Resource::Nofile, Rlimit { current: limit.maximum, maximum: limit.maximum }) {
            tracing::warn!("cannot raise the descriptor limit to its hard limit: {e}");
        }
    }
    getrlimit(Resource::Nofile).current
}

impl SandboxError {
    /// Whether the host (or this server) ran out of something an environment needs:
    /// descriptors (EMFILE, ENFILE), processes or threads (EAGAIN from fork/clone), memory
    /// (ENOMEM). Nothing is wrong with the function then, and the invocation is throttled, as
    /// AWS throttles what it has no capacity for; a later one may well start.
    pub fn is_exhaustion(&self) -> bool {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = cause {
            let errno = e.downcast_ref::<std::io::Error>().and_then(std::io::Error::raw_os_error);
            if matches!(errno, Some(libc::EMFILE | libc::ENFILE | libc::EAGAIN | libc::ENOMEM)) {
                return true;
            }
            cause = e.source();
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_out_of_descriptors_processes_or_memory_is_exhaustion_other_failures_are_not() {
        let os = std::io::Error::from_raw_os_error;
        let launch = |errno| SandboxError::Launch(LaunchError::Io { op: "make the spec pipe", source: os(errno) });
        for errno in [libc::EMFILE, libc::ENFILE, libc::EAGAIN, libc::ENOMEM] {
            assert!(launch(errno).is_exhaustion(), "{errno}");
        }
        assert!(!launch(libc::ENOENT).is_exhaustion());
        assert!(!launch(libc::EPERM).is_exhaustion());
        let cgroup = cgroup::CgroupError::Open { path: "/sys/fs/cgroup/x/cgroup.freeze".into(), source: os(libc::EMFILE) };
        assert!(SandboxError::Cgroup(cgroup).is_exhaustion());
        let jail = jail::JailError::Sys { op: "fork", source: os(libc::EAGAIN) };
        assert!(SandboxError::Jail(jail).is_exhaustion());
    }
}

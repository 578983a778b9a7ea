//! Python zygotes: a runtime forked from an interpreter that started once, instead of a new
//! interpreter per sandbox. Both ends of the contract live here: [`Zygote`] is the server's
//! handle on one zygote (`bootstrap.py` started with `NIMBUS_ZYGOTE=1`, serving from
//! `runtimes/python/zygote.py`); [`run`] is what a sandbox's init does instead of forking
//! and exec'ing the runtime when its spec has a `zygote_fd`.
//!
//! ```text
//! server ──(control: one new connection per sandbox, SCM_RIGHTS)──► zygote (root, host)
//! init (PID 1 inside) ──(its connection: request JSON + its pidfd and output fd)──► zygote
//! zygote: setns(init's pidfd), fork, setns back to its own namespaces
//!         └── runtime (PID 2 inside): put into the sandbox's cgroups by the zygote, gives up
//!             root as sandbox-init's runtime does (rlimits, bounding set, ids,
//!             no_new_privs, fds, seccomp), then bootstrap.main()
//! zygote: reaps the runtime, sends its wait status back on the connection.
//! ```
//!
//! Invariants: init reports the runtime's end as it reports an exec'd runtime's (the status
//! comes from the zygote; end of file without it is a setup failure, exit 126), so the
//! server sees a zygote's runtime exactly as it sees an exec'd one. A zygote the server lets go (its control socket closed) serves
//! what it was sent and exits when its last runtime has ended; if a zygote dies, its
//! runtimes run on (each init waits for its PID 2 through a pidfd, and reports it killed
//! when it ends: its real status was the zygote's to read). A zygote's children share its
//! string-hash secret and address layout, so one zygote serves one function.

use std::ffi::CString;
use std::io::{self, IoSlice, Read};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};

use super::error::sys as call;
use super::init::{read_launch, report, Prepared};
use super::{rootfs, sys, JailError, EXIT_SETUP_FAILED};

/// The zygote's module in the Python runtime directory (bootstrap.py imports it when it is
/// started as a zygote).
pub const SCRIPT: &str = "zygote.py";

/// A running zygote. Dropping it closes its control socket: the zygote takes no new
/// sandboxes and exits once the runtimes it forked have ended.
#[derive(Debug)]
pub struct Zygote {
    control: OwnedFd,
    child: std::sync::Mutex<tokio::process::Child>,
}

impl Zygote {
    /// Starts `interpreter -u /var/runtime/bootstrap.py` as a zygote (`NIMBUS_ZYGOTE=1`), in
    /// a mount namespace of its own where `runtime_dir` is at `/var/runtime` (on a tmpfs
    /// over `/var`), so that it, and every runtime forked from it, has the paths, argv and
    /// tracebacks of a runtime started in a sandbox. `env` is its whole environment besides
    /// (fixed variables, nothing of any function's: it runs as root on the host); its control
    /// socket is at fd 3. Call within a tokio runtime.
    pub fn start(interpreter: &Path, runtime_dir: &Path, env: &[(String, String)]) -> io::Result<Zygote> {
        use std::os::unix::process::CommandExt;
        let (ours, theirs) = super::sys::seqpacket_pair()?;
        // A zygote that falls behind must not stall the server: a full socket is an error,
        // and that start goes without the zygote.
        rustix::io::ioctl_fionbio(&ours, true)?;
        let theirs_raw = theirs.as_raw_fd();
        let dir = CString::new(runtime_dir.as_os_str().as_bytes()).map_err(io::Error::other)?;
        let mut cmd = std::process::Command::new(interpreter);
        cmd.arg("-u")
            .arg(Path::new(RUNTIME_DIR).join("bootstrap.py"))
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("NIMBUS_ZYGOTE", "1")
            .current_dir("/")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null());
        let in_child = move || {
            // SAFETY: in the forked child, about to exec; raw syscalls only.
            unsafe { super::place_child_fds(&[theirs_raw])? };
            // A session of its own, which its runtimes leave for theirs: no signal to the
            // server's process group (a terminal's Ctrl-C) reaches it.
            rustix::process::setsid()?;
            // SAFETY: raw syscalls on C strings made before the fork; nothing allocates.
            unsafe { private_runtime_dir(&dir) }
        };
        // SAFETY: the closure makes raw syscalls only (fcntl, dup2, setsid, unshare, mount,
        // mkdir).
        unsafe { cmd.pre_exec(in_child) };
        // Not killed when dropped: it reports its runtimes' ends until the last one.
        let child = tokio::process::Command::from(cmd).spawn();
        drop(theirs);
        Ok(Zygote { control: ours, child: std::sync::Mutex::new(child?) })
    }

    /// Whether the process still runs.
    pub fn is_alive(&self) -> bool {
        matches!(self.child.lock().unwrap_or_else(|p| p.into_inner()).try_wait(), Ok(None))
    }

    /// A new connection for one sandbox: give it to sandbox-init ([`super::sandbox_fds_with`]).
    pub fn connect(&self) -> io::Result<OwnedFd> {
        let (ours, theirs) = super::sys::seqpacket_pair()?;
        let fds = [theirs.as_fd()];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        control.push(SendAncillaryMessage::ScmRights(&fds));
        rustix::net::sendmsg(&self.control, &[IoSlice::new(b"c")], &mut control, SendFlags::NOSIGNAL | SendFlags::DONTWAIT)?;
        Ok(ours)
    }
}

/// Where the runtime directory is in a sandbox, and in a zygote's mount namespace.
const RUNTIME_DIR: &str = "/var/runtime";

/// In a zygote's forked child before exec: a mount namespace of its own, a tmpfs over `/var`
/// with the runtime directory `dir` bound read-only at `/var/runtime` (entered first, as the
/// bind's source: the tmpfs may hide its path) and an empty `/var/task/lib`, and a tmpfs over
/// `/opt` with an empty `lib`.
///
/// # Safety
/// Only in a forked child about to exec (it changes the process's mount namespace and cwd).
unsafe fn private_runtime_dir(dir: &CString) -> io::Result<()> {
    let check = |rc: libc::c_int| if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) };
    let none = std::ptr::null::<libc::c_char>();
    // SAFETY: plain syscalls on NUL-terminated literals and `dir`.
    unsafe {
        check(libc::unshare(libc::CLONE_NEWNS))?;
        check(libc::mount(none, c"/".as_ptr(), none, libc::MS_REC | libc::MS_PRIVATE, std::ptr::null()))?;
        check(libc::chdir(dir.as_ptr()))?;
        check(tmpfs(c"/var", c"size=64k,mode=755"))?;
        check(libc::mkdir(c"/var/runtime".as_ptr(), 0o755))?;
        // The directories of LD_LIBRARY_PATH, which the dynamic loader reads once, at the
        // zygote's start, and marks missing for good when a lookup finds one absent: its
        // runtimes, forked into sandboxes where they hold the function's code and layers,
        // must search them.
        check(libc::mkdir(c"/var/task".as_ptr(), 0o755))?;
        check(libc::mkdir(c"/var/task/lib".as_ptr(), 0o755))?;
        check(tmpfs(c"/opt", c"size=16k,mode=755"))?;
        check(libc::mkdir(c"/opt/lib".as_ptr(), 0o755))?;
        check(libc::mount(c".".as_ptr(), c"/var/runtime".as_ptr(), none, libc::MS_BIND, std::ptr::null()))?;
        check(libc::mount(
            none,
            c"/var/runtime".as_ptr(),
            none,
            libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV,
            std::ptr::null(),
        ))?;
        check(libc::chdir(c"/".as_ptr()))?;
    }
    Ok(())
}

/// Mounts a small tmpfs (no suid, devices or exec) at `target`; the raw return value.
///
/// # Safety
/// A plain syscall on NUL-terminated strings; changes the calling process's mounts.
unsafe fn tmpfs(target: &std::ffi::CStr, options: &std::ffi::CStr) -> libc::c_int {
    // SAFETY: NUL-terminated strings that outlive the call.
    unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            target.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            options.as_ptr().cast(),
        )
    }
}

/// init's side (PID 1 of a sandbox whose spec has a `zygote_fd`): builds the root, passes
/// the gate, has the zygote start the runtime, and ends as the runtime ended.
pub(super) fn run(p: Prepared, status_write: OwnedFd, fd: i32) -> ! {
    // SAFETY: the fd is ours by contract with the server (see `sandbox_fds_with`).
    let conn = unsafe { OwnedFd::from_raw_fd(fd) };
    let status = match start(p, &conn) {
        Ok(status) => status,
        Err(e) => {
            report(&e);
            sys::exit_now(EXIT_SETUP_FAILED);
        }
    };
    let _ = sys::write_all(&status_write, &status.to_le_bytes());
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 128 + libc::WTERMSIG(status) };
    sys::exit_now(code)
}

/// The runtime's wait status, once it has ended.
fn start(p: Prepared, conn: &OwnedFd) -> Result<i32, JailError> {
    // The runtime is not our child; the orphans of its own children are, and the kernel
    // reaps them.
    // SAFETY: plain syscall; nothing in this process waits for a child.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    let mut marks = Vec::new();
    rootfs::build(&p.steps, p.spec.tmp_size_mb, &mut marks)?;
    let (env, cwd) = match p.spec.gate_fd {
        Some(gate) => match read_launch(gate)? {
            // The server dropped the sandbox unused: end quietly.
            None => sys::exit_now(0),
            Some(launch) => (launch.env, launch.cwd.unwrap_or_else(|| p.spec.cwd.clone())),
        },
        None => (p.spec.env.clone(), p.spec.cwd.clone()),
    };
    let seccomp: Vec<String> = p
        .filters
        .iter()
        .map(|prog| {
            prog.iter()
                .flat_map(|f| {
                    let mut b = Vec::with_capacity(8);
                    b.extend_from_slice(&f.code.to_le_bytes());
                    b.push(f.jt);
                    b.push(f.jf);
                    b.extend_from_slice(&f.k.to_le_bytes());
                    b
                })
                .map(|byte| format!("{byte:02x}"))
                .collect()
        })
        .collect();
    let env: serde_json::Map<String, serde_json::Value> = env.into_iter().map(|(k, v)| (k, serde_json::Value::String(v))).collect();
    // Two messages: what the zygote itself needs to fork the runtime into this sandbox, and
    // what only the runtime reads (the function's variables never pass through the zygote).
    let placement = serde_json::json!({ "cgroups": p.spec.cgroup_procs });
    let request = serde_json::json!({
        "uid": p.spec.uid,
        "gid": p.spec.gid,
        "nproc": p.spec.rlimit_nproc,
        "nofile": p.spec.rlimit_nofile,
        "cwd": cwd,
        "env": env,
        "seccomp": seccomp,
    });
    let encode =
        |v: &serde_json::Value| serde_json::to_vec(v).map_err(|source| JailError::Json { op: "encode the zygote request", source });
    let (placement, body) = (encode(&placement)?, encode(&request)?);
    let me = sys::pidfd_self().map_err(call("pidfd_open"))?;
    // SAFETY: fd 1 is the output pipe sandbox-init was started with; it outlives this call.
    let output = unsafe { BorrowedFd::borrow_raw(1) };
    let fds = [me.as_fd(), output];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    control.push(SendAncillaryMessage::ScmRights(&fds));
    rustix::net::sendmsg(conn, &[IoSlice::new(&placement)], &mut control, SendFlags::NOSIGNAL)
        .map_err(|e| call("ask the zygote")(io::Error::from(e)))?;
    drop(me);
    rustix::net::send(conn, &body, SendFlags::NOSIGNAL).map_err(|e| call("send the runtime its request")(io::Error::from(e)))?;
    let mut status = [0u8; 4];
    let mut file = std::fs::File::from(conn.try_clone().map_err(call("dup the zygote connection"))?);
    match file.read_exact(&mut status) {
        Ok(()) => Ok(i32::from_le_bytes(status)),
        Err(_) => outlive_zygote(),
    }
}

/// The zygote is gone before it reported the runtime's end. If the runtime (PID 2 here, the
/// first process it forked into this sandbox) runs, the sandbox goes on until it ends:
/// its status is lost with the zygote (the runtime was its child), so it ends as killed.
/// If there is none, the zygote never started it: setup failed.
fn outlive_zygote() -> Result<i32, JailError> {
    use rustix::event::{PollFd, PollFlags};
    let Some(pid) = rustix::process::Pid::from_raw(2) else { return Err(JailError::Zygote) };
    let Ok(runtime) = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) else {
        return Err(JailError::Zygote);
    };
    loop {
        let mut fds = [PollFd::new(&runtime, PollFlags::IN)];
        match rustix::event::poll(&mut fds, None) {
            Ok(_) if fds[0].revents().contains(PollFlags::IN) => return Ok(libc::SIGKILL),
            Ok(_) | Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(call("wait for the runtime")(io::Error::from(e))),
        }
    }
}

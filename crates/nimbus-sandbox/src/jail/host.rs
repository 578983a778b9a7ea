//! The server's side of the jail: handing sandbox-init its spec and network namespace,
//! preparing network namespaces that already hold a Runtime API listener, and assigning
//! code to a pre-started sandbox by a bind mount that propagates into it.

use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;

use rustix::io::Errno;
use rustix::mount::{MountPropagationFlags, UnmountFlags};
use rustix::thread::UnshareFlags;

use super::error::{path, sys as call};
use super::{sys, JailError, JailSpec, Launch, Net, SpecError, NETNS_FD, SPEC_FD};

/// The calling thread's network namespace.
const THREAD_NETNS: &str = "/proc/thread-self/ns/net";

/// A pipe whose read end holds `spec` as JSON, write end already closed: give the read end
/// to sandbox-init as fd 3. The whole spec fits in the pipe, so nothing has to write
/// concurrently with the spawn.
pub fn prepare(spec: &JailSpec) -> Result<OwnedFd, JailError> {
    let json = serde_json::to_vec(spec).map_err(|source| JailError::Json { op: "encode the spec", source })?;
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(call("make the spec pipe"))?;
    let capacity = rustix::pipe::fcntl_getpipe_size(&write).map_err(call("read the spec pipe's size"))?;
    if json.len() > capacity {
        // Up to /proc/sys/fs/pipe-max-size (1 MiB by default); env vars are capped at 4 KB,
        // so only a pathological spec gets here.
        let grown = rustix::pipe::fcntl_setpipe_size(&write, json.len()).map_err(call("grow the spec pipe"))?;
        if json.len() > grown {
            return Err(call("grow the spec pipe")(io::Error::new(io::ErrorKind::InvalidInput, "jail spec larger than a pipe")));
        }
    }
    sys::write_all(&write, &json).map_err(call("write the spec"))?;
    drop(write);
    Ok(read)
}

/// Places `fds[i]` at fd `3 + i` without close-on-exec, for the child between fork and exec
/// (a `pre_exec` closure). Async-signal-safe: raw `fcntl`/`dup2` only, no allocation.
/// Handles sources that already sit at a target number (each is first copied above the
/// target range).
///
/// # Safety
/// Call only in a forked child about to exec: it overwrites fds 3.. that other code in this
/// process may own. (std's own exec-error pipe is among them only in a process with almost
/// no fds open; a server's runtime holds the low numbers long before it spawns anything.)
pub unsafe fn place_child_fds(fds: &[RawFd]) -> io::Result<()> {
    const MAX: usize = 8;
    if fds.len() > MAX {
        return Err(Errno::INVAL.into());
    }
    let floor = 3 + fds.len() as RawFd;
    let mut copies = [-1 as RawFd; MAX];
    for (copy, &fd) in copies.iter_mut().zip(fds) {
        // SAFETY: plain syscall; the copy is close-on-exec, so it vanishes at exec.
        *copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, floor) };
        if *copy < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    for (i, &copy) in copies[..fds.len()].iter().enumerate() {
        // SAFETY: plain syscall; dup2 leaves the new fd without close-on-exec.
        if unsafe { libc::dup2(copy, 3 + i as RawFd) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A `std::process::Command` that runs `exe sandbox-init` for `spec`: empty environment,
/// cwd `/`, the spec at fd 3, `netns` (if any) at fd 4 (the spec's `net` becomes
/// `Join(NETNS_FD)` whatever it said), and PDEATHSIG. The caller adds stdio, `process_group(0)`, and may convert it
/// with `tokio::process::Command::from`. The fds are held by the command until it is
/// dropped: drop it right after spawning.
pub fn command(exe: &Path, spec: &JailSpec, netns: Option<OwnedFd>) -> Result<std::process::Command, JailError> {
    command_gated(exe, spec, netns, None)
}

/// [`command`], and `gate` (the read end of a pipe) placed after the others for the runtime
/// to read its [`super::Launch`] from; the spec's `gate_fd` is set to match.
pub fn command_gated(
    exe: &Path,
    spec: &JailSpec,
    netns: Option<OwnedFd>,
    gate: Option<OwnedFd>,
) -> Result<std::process::Command, JailError> {
    Ok(command_with(exe, sandbox_fds(spec, netns, gate)?))
}

/// The fds sandbox-init gets at 3, 4, … for `spec`: the spec pipe ([`prepare`]), then
/// `netns` (the spec's `net` becomes `Join(NETNS_FD)` whatever it said), then `gate` (the
/// spec's `gate_fd` is set to match). Hand them to [`command_with`] or to the
/// [`super::Spawner`].
pub fn sandbox_fds(spec: &JailSpec, netns: Option<OwnedFd>, gate: Option<OwnedFd>) -> Result<Vec<OwnedFd>, JailError> {
    sandbox_fds_with(spec, netns, gate, None)
}

/// [`sandbox_fds`], and `zygote` (a connection to a Python zygote) after the others; the
/// spec's `zygote_fd` is set to match.
pub fn sandbox_fds_with(
    spec: &JailSpec,
    netns: Option<OwnedFd>,
    gate: Option<OwnedFd>,
    zygote: Option<OwnedFd>,
) -> Result<Vec<OwnedFd>, JailError> {
    let mut spec = spec.clone();
    match (&netns, spec.net) {
        (Some(_), _) => spec.net = Net::Join(NETNS_FD),
        (None, Net::Join(_)) => return Err(JailError::InvalidSpec(SpecError::NetnsMissing)),
        (None, _) => {}
    }
    let first_extra = SPEC_FD + 1 + i32::from(netns.is_some());
    spec.gate_fd = gate.as_ref().map(|_| first_extra);
    spec.zygote_fd = zygote.as_ref().map(|_| first_extra + i32::from(gate.is_some()));
    spec.validate().map_err(JailError::InvalidSpec)?;
    debug_assert_eq!(SPEC_FD, 3);
    Ok([Some(prepare(&spec)?), netns, gate, zygote].into_iter().flatten().collect())
}

/// A `std::process::Command` that runs `exe sandbox-init` with `fds` (from [`sandbox_fds`])
/// at 3, 4, …: empty environment, cwd `/`, PDEATHSIG. The fds are held by the command until
/// it is dropped: drop it right after spawning.
pub fn command_with(exe: &Path, fds: Vec<OwnedFd>) -> std::process::Command {
    let mut raw = [-1; 4];
    let count = fds.len().min(raw.len());
    for (slot, fd) in raw.iter_mut().zip(&fds) {
        *slot = fd.as_raw_fd();
    }
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("sandbox-init").env_clear().current_dir("/");
    let in_child = move || {
        let _ = &fds;
        // SAFETY: pre_exec runs in the forked child, about to exec.
        unsafe { place_child_fds(&raw[..count])? };
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
        Ok(())
    };
    // SAFETY: the closure makes raw syscalls only (fcntl, dup2, prctl) and allocates nothing.
    unsafe { cmd.pre_exec(in_child) };
    cmd
}

/// A new network namespace with `lo` up and a listener on `127.0.0.1:port` inside it (0
/// picks a port). The listener is served by the server like any other socket (sockets keep
/// the namespace they were made in); the fd keeps the namespace for sandbox-init to join.
/// Every namespace is separate, so every environment can use the same port (AWS: 9001).
/// The listener is blocking; call `set_nonblocking(true)` before handing it to tokio.
pub fn new_netns_with_listener(port: u16) -> Result<(OwnedFd, TcpListener), JailError> {
    new_netns_with_listeners(port, None).map(|(ns, listener, _)| (ns, listener))
}

/// [`new_netns_with_listener`], plus the [`server_listeners`] at `server_port` if given (an
/// environment linked to the host: the server's own address leads to the server there too).
pub fn new_netns_with_listeners(port: u16, server_port: Option<u16>) -> Result<(OwnedFd, TcpListener, Vec<TcpListener>), JailError> {
    // unshare(CLONE_NEWNET) moves only the calling thread, and it comes back before this
    // returns (no thread of its own: under a burst of cold starts every hand-off between
    // threads waits behind hundreds of runnable processes).
    let home = OwnedFd::from(std::fs::File::open(THREAD_NETNS).map_err(path("open", Path::new(THREAD_NETNS)))?);
    let _back = ReturnToNetns(&home);
    let (ns, listener) = enter_new_netns_with_listener(port)?;
    let server = match server_port {
        Some(p) => server_listeners(p, p != port)?,
        None => Vec::new(),
    };
    Ok((ns, listener, server))
}

/// Listeners at `port` on the loopback of the calling thread's network namespace, where
/// connections to the server's own address are taken in (`crate::server_door`): 127.0.0.1
/// if `v4` (not when the Runtime API listens there, which then takes them in itself), and
/// ::1 where the namespace has IPv6 (`localhost` may resolve to it first). Blocking
/// listeners, like [`new_netns_with_listener`]'s.
pub fn server_listeners(port: u16, v4: bool) -> Result<Vec<TcpListener>, JailError> {
    let mut out = Vec::with_capacity(2);
    if v4 {
        out.push(TcpListener::bind((Ipv4Addr::LOCALHOST, port)).map_err(call("listen at the server's port on the namespace's loopback"))?);
    }
    if let Ok(l) = TcpListener::bind((std::net::Ipv6Addr::LOCALHOST, port)) {
        out.push(l);
    }
    Ok(out)
}

/// A new network namespace with only `lo`, up (a VPC's router lives in one). Made on the
/// calling thread, which comes back before this returns.
pub fn new_netns() -> Result<OwnedFd, JailError> {
    let home = OwnedFd::from(std::fs::File::open(THREAD_NETNS).map_err(path("open", Path::new(THREAD_NETNS)))?);
    let _back = ReturnToNetns(&home);
    sys::unshare(UnshareFlags::NEWNET).map_err(call("unshare a network namespace"))?;
    sys::loopback_up().map_err(call("bring lo up"))?;
    let ns = std::fs::File::open(THREAD_NETNS).map_err(path("open", Path::new(THREAD_NETNS)))?;
    Ok(OwnedFd::from(ns))
}

/// Returns the calling thread to a network namespace when dropped. A thread that cannot go
/// back would go on serving the server from inside an environment's namespace, so that
/// aborts.
pub struct ReturnToNetns<'a>(pub &'a OwnedFd);

impl Drop for ReturnToNetns<'_> {
    fn drop(&mut self) {
        if let Err(e) = sys::join_netns(self.0.as_fd()) {
            eprintln!("nimbus: cannot return to the host network namespace: {e}");
            std::process::abort();
        }
    }
}

/// Moves the calling thread into a new network namespace with `lo` up and returns it with a
/// listener on its loopback at `port`. The thread stays there: call it on a thread of its own.
pub fn enter_new_netns_with_listener(port: u16) -> Result<(OwnedFd, TcpListener), JailError> {
    sys::unshare(UnshareFlags::NEWNET).map_err(call("unshare a network namespace"))?;
    sys::loopback_up().map_err(call("bring lo up"))?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).map_err(call("listen on the namespace's loopback"))?;
    let ns = std::fs::File::open(THREAD_NETNS).map_err(path("open", Path::new(THREAD_NETNS)))?;
    Ok((OwnedFd::from(ns), listener))
}

/// Opens a gated sandbox's gate: writes its launch message (`launch` as JSON) and closes
/// the pipe. The message is far below the pipe's buffer, so this never blocks for long,
/// even before the runtime reaches the gate.
pub fn write_launch(gate: OwnedFd, launch: &Launch) -> Result<(), JailError> {
    let message = serde_json::to_vec(launch).map_err(|source| JailError::Json { op: "encode the launch message", source })?;
    let mut file = std::fs::File::from(gate);
    std::io::Write::write_all(&mut file, &message).map_err(call("write the launch message"))
}

/// Makes `dir` a mount point in a peer group of its own, shared, so that binds made on it
/// later propagate to the slave copies inside sandboxes ([`JailSpec::task_mount`]). Call
/// once per directory, in the namespace the sandboxes are made from (the server's runs it
/// on the spawner thread, [`super::Spawner::in_namespace`]).
pub fn make_shared_mount_point(dir: &Path) -> Result<(), JailError> {
    rustix::mount::mount_bind(dir, dir).map_err(path("bind onto itself", dir))?;
    // Private first: if the parent was shared, the bind joined its peer group, and if it was
    // a slave (the sandboxes' namespace's copy of the host's mounts), the bind followed its
    // master; we want a group that only this directory's sandboxes follow.
    rustix::mount::mount_change(dir, MountPropagationFlags::PRIVATE).map_err(path("make private", dir))?;
    rustix::mount::mount_change(dir, MountPropagationFlags::SHARED).map_err(path("make shared", dir))?;
    Ok(())
}

/// Binds `code_dir` read-only onto the shared `task_mount`; it appears at `/var/task` in the
/// sandbox started with that `task_mount`. The bind is made read-only before it is attached
/// (`open_tree` + `mount_setattr` + `move_mount`) because a read-only remount afterwards
/// would not propagate: the copies inside would stay writable.
pub fn bind_code_into(task_mount: &Path, code_dir: &Path) -> Result<(), JailError> {
    let tree = sys::open_tree_clone(code_dir, true).map_err(path("open_tree", code_dir))?;
    sys::set_tree_attrs(&tree, libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV, true)
        .map_err(path("mount_setattr", code_dir))?;
    sys::move_mount_to(&tree, task_mount).map_err(path("move_mount onto", task_mount))
}

/// Undoes [`make_shared_mount_point`] and any [`bind_code_into`] on `dir` (lazily: a sandbox
/// still running keeps its own copies).
pub fn remove_shared_mount_point(dir: &Path) -> Result<(), JailError> {
    for _ in 0..64 {
        if let Err(e) = rustix::mount::unmount(dir, UnmountFlags::DETACH) {
            // EINVAL: no longer a mount point; ENOENT: never made. Done either way.
            return if matches!(e, Errno::INVAL | Errno::NOENT) { Ok(()) } else { Err(path("unmount", dir)(e)) };
        }
    }
    Ok(())
}

/// Whether this host can build sandboxes: Linux on x86_64, the capabilities sandbox-init
/// uses (root has them), and namespaces and mounts that actually work here (a container
/// may forbid them). Cheap enough for start-up (a thread that unshares and exits).
pub fn available() -> Result<(), JailError> {
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        return Err(JailError::UnsupportedPlatform);
    }
    use rustix::thread::CapabilitySet as C;
    let caps = rustix::thread::capabilities(None).map_err(call("cannot read capabilities"))?;
    let needed = C::SYS_ADMIN | C::SETUID | C::SETGID | C::SETPCAP | C::NET_ADMIN;
    if !caps.effective.contains(needed) {
        return Err(JailError::MissingCapabilities { missing: needed - caps.effective });
    }
    for ns in ["mnt", "pid", "ipc", "uts", "net", "cgroup"] {
        if !Path::new("/proc/self/ns").join(ns).exists() {
            return Err(JailError::NoNamespace(ns));
        }
    }
    let status = std::fs::read_to_string("/proc/self/status").map_err(path("read", Path::new("/proc/self/status")))?;
    if !status.lines().any(|l| l.starts_with("Seccomp:")) {
        return Err(JailError::NoSeccomp);
    }
    std::thread::spawn(|| -> Result<(), JailError> {
        let flags = UnshareFlags::NEWNS | UnshareFlags::NEWUTS | UnshareFlags::NEWIPC | UnshareFlags::NEWNET | UnshareFlags::NEWCGROUP;
        sys::unshare(flags).map_err(call("cannot create namespaces"))?;
        rustix::mount::mount_change("/", MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC)
            .map_err(call("cannot change mounts in a new mount namespace"))?;
        sys::loopback_up().map_err(call("cannot configure a new network namespace"))
    })
    .join()
    .map_err(|_| JailError::ProbePanicked)?
}

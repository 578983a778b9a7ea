//! The Linux calls of the jail that take more than one rustix call (waiting through EINTR,
//! emptying the capability sets, switching user in the right order), and the few that rustix
//! does not offer: `mount_setattr`, `close_range`, the interface-flags ioctl, and the calls
//! between `fork` and `exec` (`fork`, `execve`, `_exit`, dying by a signal), which rustix
//! keeps in its unstable runtime API. Each `unsafe` block is one raw call; none allocates
//! after its arguments are built. Everything else the jail calls through rustix directly.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::io::Errno;
use rustix::mount::{MoveMountFlags, OpenTreeFlags};
use rustix::thread::{CapabilitySet, CapabilitySets, LinkNameSpaceType, UnshareFlags};

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn cvt_long(rc: libc::c_long) -> io::Result<libc::c_long> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("{} contains a NUL byte", p.display())))
}

/// A detached copy of the mount tree at `path` (`open_tree(OPEN_TREE_CLONE)`): holding the
/// source by fd lets the new root be mounted anywhere without shadowing a source.
pub fn open_tree_clone(path: &Path, recursive: bool) -> io::Result<OwnedFd> {
    let mut flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= OpenTreeFlags::AT_RECURSIVE;
    }
    Ok(rustix::mount::open_tree(rustix::fs::CWD, path, flags)?)
}

/// `mount_setattr(2)`, which rustix does not offer.
fn mount_setattr(dfd: RawFd, path: &CStr, flags: libc::c_int, set: u64, clear: u64, recursive: bool) -> io::Result<()> {
    mount_setattr_with(dfd, path, flags, libc::mount_attr { attr_set: set, attr_clr: clear, propagation: 0, userns_fd: 0 }, recursive)
}

fn mount_setattr_with(dfd: RawFd, path: &CStr, flags: libc::c_int, attr: libc::mount_attr, recursive: bool) -> io::Result<()> {
    let flags = flags | if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: a NUL-terminated path and a mount_attr of the size passed, both alive for the
    // duration of the call; a bad fd is an error, not undefined behaviour.
    cvt_long(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dfd,
            path.as_ptr(),
            flags,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    })?;
    Ok(())
}

/// Sets per-mount flags (`MOUNT_ATTR_*`) on a detached tree (recursively: every submount
/// of a read-only bind must be read-only too, which classic remounts cannot do at once).
pub fn set_tree_attrs(tree: &OwnedFd, set: u64, recursive: bool) -> io::Result<()> {
    mount_setattr(tree.as_raw_fd(), c"", libc::AT_EMPTY_PATH, set, 0, recursive)
}

/// [`set_tree_attrs`], and makes the tree private: mounts made later at its source do not
/// reach it.
pub fn set_tree_attrs_private(tree: &OwnedFd, set: u64, recursive: bool) -> io::Result<()> {
    let attr = libc::mount_attr { attr_set: set, attr_clr: 0, propagation: libc::MS_PRIVATE, userns_fd: 0 };
    mount_setattr_with(tree.as_raw_fd(), c"", libc::AT_EMPTY_PATH, attr, recursive)
}

/// Sets per-mount flags on the mount at `path` (not its submounts).
pub fn set_mount_attrs(path: &Path, set: u64) -> io::Result<()> {
    let c = cpath(path)?;
    mount_setattr(libc::AT_FDCWD, &c, 0, set, 0, false)
}

/// Attaches a detached tree at `target`.
pub fn move_mount_to(tree: &OwnedFd, target: &Path) -> io::Result<()> {
    Ok(rustix::mount::move_mount(tree, c"", rustix::fs::CWD, target, MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH)?)
}

/// `unshare(2)` of namespaces. Never `CLONE_FILES`, which is why it is safe: the others
/// leave every descriptor where other code can still use it.
pub fn unshare(flags: UnshareFlags) -> io::Result<()> {
    debug_assert!(!flags.contains(UnshareFlags::FILES), "unsharing the fd table is not supported here");
    // SAFETY: without FILES, no thread loses descriptors it may hold (see rustix's contract).
    Ok(unsafe { rustix::thread::unshare_unsafe(flags - UnshareFlags::FILES) }?)
}

/// Moves the calling thread into the network namespace open at `ns`.
pub fn join_netns(ns: BorrowedFd<'_>) -> io::Result<()> {
    Ok(rustix::thread::move_into_link_name_space(ns, Some(LinkNameSpaceType::Network))?)
}

pub enum Forked {
    Child,
    Parent(libc::pid_t),
}

/// `fork`. Only called from sandbox-init, which is single-threaded, so the child may go on
/// allocating. (rustix has no stable fork.)
pub fn fork() -> io::Result<Forked> {
    // SAFETY: sandbox-init has one thread; nothing is left locked in the child.
    let pid = cvt(unsafe { libc::fork() })?;
    Ok(if pid == 0 { Forked::Child } else { Forked::Parent(pid) })
}

/// Waits for `pid` (or any child with -1) through interruptions; returns its pid and raw wait
/// status.
pub fn wait(pid: libc::pid_t) -> io::Result<(libc::pid_t, libc::c_int)> {
    let options = rustix::process::WaitOptions::empty();
    loop {
        // Pid::from_raw takes only real pids (it asserts), so -1 never reaches it.
        let waited = match (pid > 0).then(|| rustix::process::Pid::from_raw(pid)).flatten() {
            Some(pid) => rustix::process::waitpid(Some(pid), options),
            None => rustix::process::wait(options),
        };
        match waited {
            Ok(Some((pid, status))) => return Ok((pid.as_raw_nonzero().get(), status.as_raw())),
            // Only WNOHANG answers "nothing yet".
            Ok(None) => return Err(io::Error::from(Errno::CHILD)),
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Sets a resource limit, soft and hard.
pub fn set_rlimit(resource: rustix::process::Resource, value: u64) -> io::Result<()> {
    Ok(rustix::process::setrlimit(resource, rustix::process::Rlimit { current: Some(value), maximum: Some(value) })?)
}

/// Empties the bounding set, so no later exec (of a file with capabilities) can regain any.
/// Needs CAP_SETPCAP: call it before giving up root. Goes by number up to what this kernel
/// knows, which may be more than rustix's list.
pub fn drop_bounding_set() -> io::Result<()> {
    for cap in 0..64 {
        match rustix::thread::remove_capability_from_bounding_set(CapabilitySet::from_bits_retain(1 << cap)) {
            Ok(()) => {}
            // Past the last capability this kernel knows.
            Err(Errno::INVAL) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Empties the effective, permitted and inheritable sets (setuid already empties the first
/// two, but not the inheritable one) and the ambient set.
pub fn clear_capabilities() -> io::Result<()> {
    let none = CapabilitySet::empty();
    rustix::thread::set_capabilities(None, CapabilitySets { effective: none, permitted: none, inheritable: none })?;
    rustix::thread::clear_ambient_capability_set()?;
    Ok(())
}

/// No supplementary groups, then gid, then uid (in that order: after setuid we could no
/// longer change groups). These are per-thread syscalls; the process is single-threaded, so
/// that is the whole process.
pub fn switch_user(uid: u32, gid: u32) -> io::Result<()> {
    use rustix::process::{Gid, Uid};
    rustix::thread::set_thread_groups(&[])?;
    let (uid, gid) = (Uid::from_raw(uid), Gid::from_raw(gid));
    rustix::thread::set_thread_res_gid(gid, gid, gid)?;
    rustix::thread::set_thread_res_uid(uid, uid, uid)?;
    Ok(())
}

/// Marks every fd from `first` up close-on-exec, so the runtime starts with 0, 1 and 2 only
/// whatever the server leaked. (rustix has no `close_range`.)
pub fn cloexec_from(first: u32) -> io::Result<()> {
    // SAFETY: with CLOSE_RANGE_CLOEXEC nothing is closed, only flagged: no descriptor that
    // Rust code owns changes under it before exec.
    cvt_long(unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) })?;
    Ok(())
}

/// Sets `lo` up in the calling thread's network namespace (a new namespace starts with it
/// down). rustix has no interface-flags ioctl.
pub fn loopback_up() -> io::Result<()> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    let sock = rustix::net::socket_with(AddressFamily::INET, SocketType::DGRAM, SocketFlags::CLOEXEC, None)?;
    // SAFETY: ifreq is plain data; all zeroes is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: a valid socket and ifreq for SIOCGIFFLAGS, which fills in ifru_flags.
    cvt(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) })?;
    // SAFETY: ifru_flags is the member SIOCGIFFLAGS filled.
    unsafe { req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short };
    // SAFETY: as above, for SIOCSIFFLAGS.
    cvt(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) })?;
    Ok(())
}

/// A pidfd for this process, so a child can tell whether we are still alive (a process
/// in a new PID namespace sees its parent as pid 0).
pub fn pidfd_self() -> io::Result<OwnedFd> {
    Ok(rustix::process::pidfd_open(rustix::process::getpid(), rustix::process::PidfdFlags::empty())?)
}

/// True if the process behind the pidfd has exited (the pidfd polls readable).
pub fn pidfd_exited(fd: &OwnedFd) -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec};
    let mut fds = [PollFd::new(fd, PollFlags::IN)];
    let ready = rustix::event::poll(&mut fds, Some(&Timespec { tv_sec: 0, tv_nsec: 0 }));
    ready.is_ok_and(|n| n > 0) && fds[0].revents().contains(PollFlags::IN)
}

/// `execve`; returns only on failure.
pub fn execve(program: &CStr, argv: &[*const libc::c_char], envp: &[*const libc::c_char]) -> io::Error {
    // SAFETY: argv and envp are NULL-terminated arrays of pointers into live CStrings.
    unsafe { libc::execve(program.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    io::Error::last_os_error()
}

/// Ends this process by `sig` as the default action would (so a parent sees "killed by
/// signal"), falling back to exit 128+sig for signals whose default is not to terminate.
/// rustix has no stable way to reset a disposition.
pub fn die_by_signal(sig: libc::c_int) -> ! {
    // SAFETY: resetting a disposition and unblocking are plain syscalls; a core dump of
    // sandbox-init itself would be noise, hence RLIMIT_CORE 0 first.
    unsafe {
        let zero = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        libc::setrlimit(libc::RLIMIT_CORE, &zero);
        libc::signal(sig, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::kill(libc::getpid(), sig);
        libc::_exit(128 + sig)
    }
}

/// Exits without running destructors or atexit handlers (the state was forked).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is always safe to call.
    unsafe { libc::_exit(code) }
}

/// Writes all of `buf`, through interruptions.
pub fn write_all(fd: impl AsFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match rustix::io::write(&fd, buf) {
            Ok(n) => buf = &buf[n..],
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

pub fn monotonic_ns() -> u64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A connected pair of close-on-exec unix seqpacket sockets (the spawner's and the zygotes'
/// channels: messages keep their bounds, and carry fds).
pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::net::socketpair(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::SEQPACKET,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )?)
}

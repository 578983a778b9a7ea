//! Checked wrappers over the Linux calls the jail makes that rustix does not offer (the new
//! mount API's `mount_setattr`, `fork`, `execve`, capability sets) or offers with a
//! different shape, so the steps elsewhere read as steps rather than `unsafe` blocks.
//! Every wrapper is one or two raw syscalls; none allocates after its arguments are built.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

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

pub fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("{} contains a NUL byte", p.display())))
}

/// A detached copy of the mount tree at `path` (`open_tree(OPEN_TREE_CLONE)`): holding the
/// source by fd lets the new root be mounted anywhere without shadowing a source.
pub fn open_tree_clone(path: &Path, recursive: bool) -> io::Result<OwnedFd> {
    let c = cpath(path)?;
    let mut flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: valid NUL-terminated path; the returned fd is owned by nobody else.
    let fd = cvt_long(unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) })?;
    // SAFETY: the kernel just returned this fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn mount_setattr(dfd: RawFd, path: &CStr, flags: libc::c_int, set: u64, clear: u64, recursive: bool) -> io::Result<()> {
    let attr = libc::mount_attr { attr_set: set, attr_clr: clear, propagation: 0, userns_fd: 0 };
    let flags = flags | if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: valid pointers for the duration of the call.
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

/// Sets per-mount flags on the mount at `path` (not its submounts).
pub fn set_mount_attrs(path: &Path, set: u64) -> io::Result<()> {
    let c = cpath(path)?;
    mount_setattr(libc::AT_FDCWD, &c, 0, set, 0, false)
}

/// Attaches a detached tree at `target`.
pub fn move_mount_to(tree: &OwnedFd, target: &Path) -> io::Result<()> {
    let c = cpath(target)?;
    // SAFETY: valid fd and paths.
    cvt_long(unsafe {
        libc::syscall(libc::SYS_move_mount, tree.as_raw_fd(), c"".as_ptr(), libc::AT_FDCWD, c.as_ptr(), libc::MOVE_MOUNT_F_EMPTY_PATH)
    })?;
    Ok(())
}

pub fn mount(source: &CStr, target: &Path, fstype: &CStr, flags: libc::c_ulong, data: Option<&CStr>) -> io::Result<()> {
    let t = cpath(target)?;
    let data = data.map_or(std::ptr::null(), |d| d.as_ptr().cast());
    // SAFETY: valid NUL-terminated strings or null data.
    cvt(unsafe { libc::mount(source.as_ptr(), t.as_ptr(), fstype.as_ptr(), flags, data) })?;
    Ok(())
}

/// A `mount(2)` with neither file system type nor data: propagation changes (`MS_SHARED`,
/// `MS_SLAVE`, `MS_PRIVATE`, with `MS_REC`) and plain binds.
pub fn mount_change(source: Option<&Path>, target: &Path, flags: libc::c_ulong) -> io::Result<()> {
    let t = cpath(target)?;
    let s = source.map(cpath).transpose()?;
    let sp = s.as_ref().map_or(c"none".as_ptr(), |s| s.as_ptr());
    // SAFETY: valid NUL-terminated strings.
    cvt(unsafe { libc::mount(sp, t.as_ptr(), std::ptr::null(), flags, std::ptr::null()) })?;
    Ok(())
}

pub fn umount_detach(target: &Path) -> io::Result<()> {
    let t = cpath(target)?;
    // SAFETY: valid path.
    cvt(unsafe { libc::umount2(t.as_ptr(), libc::MNT_DETACH) })?;
    Ok(())
}

/// `pivot_root(".", ".")`: the documented way to pivot without a put_old directory; the
/// old root ends stacked on the new one at ".", ready to be detached.
pub fn pivot_root_dot() -> io::Result<()> {
    // SAFETY: static strings.
    cvt_long(unsafe { libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) })?;
    Ok(())
}

pub fn unshare(flags: libc::c_int) -> io::Result<()> {
    // SAFETY: plain syscall.
    cvt(unsafe { libc::unshare(flags) })?;
    Ok(())
}

pub fn setns(fd: RawFd, nstype: libc::c_int) -> io::Result<()> {
    // SAFETY: plain syscall; a bad fd is an error, not UB.
    cvt(unsafe { libc::setns(fd, nstype) })?;
    Ok(())
}

pub fn close(fd: RawFd) {
    // SAFETY: the caller owns fd (an inherited descriptor nothing in Rust wraps).
    unsafe { libc::close(fd) };
}

pub fn sethostname(name: &str) -> io::Result<()> {
    // SAFETY: pointer and length of a live str.
    cvt(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) })?;
    Ok(())
}

pub enum Forked {
    Child,
    Parent(libc::pid_t),
}

/// `fork`. Only called from sandbox-init, which is single-threaded, so the child may go on
/// allocating.
pub fn fork() -> io::Result<Forked> {
    // SAFETY: sandbox-init has one thread; nothing is left locked in the child.
    let pid = cvt(unsafe { libc::fork() })?;
    Ok(if pid == 0 { Forked::Child } else { Forked::Parent(pid) })
}

/// Waits for `pid` (or any child with -1); returns its pid and raw wait status.
pub fn wait(pid: libc::pid_t) -> io::Result<(libc::pid_t, libc::c_int)> {
    let mut status = 0;
    loop {
        // SAFETY: valid out-pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc >= 0 {
            return Ok((rc, status));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

pub fn set_pdeathsig_kill() -> io::Result<()> {
    // SAFETY: plain prctl.
    cvt(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) })?;
    Ok(())
}

pub fn set_rlimit(resource: libc::__rlimit_resource_t, value: u64) -> io::Result<()> {
    let lim = libc::rlimit { rlim_cur: value, rlim_max: value };
    // SAFETY: valid pointer.
    cvt(unsafe { libc::setrlimit(resource, &lim) })?;
    Ok(())
}

/// Empties the bounding set, so no later exec (of a file with capabilities) can regain any.
/// Needs CAP_SETPCAP: call it before giving up root.
pub fn drop_bounding_set() -> io::Result<()> {
    for cap in 0..64 {
        // SAFETY: plain prctl.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } < 0 {
            let e = io::Error::last_os_error();
            // EINVAL: past the last capability this kernel knows.
            if e.raw_os_error() == Some(libc::EINVAL) {
                return Ok(());
            }
            return Err(e);
        }
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Empties the effective, permitted and inheritable sets (setuid already empties the first
/// two, but not the inheritable one) and the ambient set.
pub fn clear_capabilities() -> io::Result<()> {
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let mut header = CapHeader { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
    let data = [CapData::default(); 2];
    // SAFETY: header and two data structs as the v3 ABI requires.
    cvt_long(unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut CapHeader, data.as_ptr()) })?;
    // SAFETY: plain prctl.
    cvt(unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong, 0, 0, 0) })?;
    Ok(())
}

pub fn set_no_new_privs() -> io::Result<()> {
    // SAFETY: plain prctl.
    cvt(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })?;
    Ok(())
}

/// No supplementary groups, then gid, then uid (in that order: after setuid we could no
/// longer change groups). The process is single-threaded, so the per-thread syscalls are
/// the whole process.
pub fn switch_user(uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: empty list.
    cvt(unsafe { libc::setgroups(0, std::ptr::null()) })?;
    // SAFETY: plain syscalls.
    cvt(unsafe { libc::setresgid(gid, gid, gid) })?;
    // SAFETY: plain syscall.
    cvt(unsafe { libc::setresuid(uid, uid, uid) })?;
    Ok(())
}

/// Marks every fd from `first` up close-on-exec, so the runtime starts with 0, 1 and 2 only
/// whatever the server leaked.
pub fn cloexec_from(first: u32) -> io::Result<()> {
    // SAFETY: plain syscall.
    cvt_long(unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) })?;
    Ok(())
}

/// Sets `lo` up in the calling thread's network namespace (a new namespace starts with it down).
pub fn loopback_up() -> io::Result<()> {
    // SAFETY: plain syscall; the fd is owned below.
    let sock = cvt(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: just created.
    let sock = unsafe { OwnedFd::from_raw_fd(sock) };
    // SAFETY: ifreq is plain data; all zeroes is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: valid ifreq for SIOCGIFFLAGS/SIOCSIFFLAGS.
    cvt(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) })?;
    // SAFETY: ifru_flags is the member SIOCGIFFLAGS filled.
    unsafe { req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short };
    // SAFETY: as above.
    cvt(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) })?;
    Ok(())
}

/// A pidfd for this process, so a child can tell whether we are still alive (a process
/// in a new PID namespace sees its parent as pid 0).
pub fn pidfd_self() -> io::Result<OwnedFd> {
    // SAFETY: plain syscalls.
    let fd = cvt_long(unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) })?;
    // SAFETY: just returned by the kernel.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// True if the process behind the pidfd has exited (the pidfd polls readable).
pub fn pidfd_exited(fd: &OwnedFd) -> bool {
    let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd.
    let rc = unsafe { libc::poll(&mut p, 1, 0) };
    rc > 0 && p.revents & libc::POLLIN != 0
}

/// `execve`; returns only on failure.
pub fn execve(program: &CStr, argv: &[*const libc::c_char], envp: &[*const libc::c_char]) -> io::Error {
    // SAFETY: argv and envp are NULL-terminated arrays of pointers into live CStrings.
    unsafe { libc::execve(program.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    io::Error::last_os_error()
}

/// Ends this process by `sig` as the default action would (so a parent sees "killed by
/// signal"), falling back to exit 128+sig for signals whose default is not to terminate.
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

pub fn write_all(fd: RawFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        // SAFETY: valid buffer.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

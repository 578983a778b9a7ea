//! The spawner: a small single-threaded process (`nimbus sandbox-spawner`) started once with
//! the server, which forks every `sandbox-init` so that the server itself never forks on a
//! cold start. Forking the server copies the page tables of a large multi-threaded process
//! and is followed by an exec of the whole binary; forking the spawner copies a few hundred
//! kilobytes of mappings and runs sandbox-init's code directly, no exec.
//!
//! ```text
//! server ──(unix seqpacket: id + fds)──► spawner ── clone3(CLONE_PARENT | CLONE_NEWPID)
//!    ▲                                      │            └── sandbox-init (the server's child; PID 1 inside)
//!    └──(id, pid, errno + status pipe)──────┘
//! ```
//!
//! The child is its PID namespace's init from the start, so a sandbox is two processes
//! (init and the runtime), not three. PID 1 cannot die by a signal it sends itself, so its
//! own exit status cannot say that the runtime was killed: it writes the runtime's wait
//! status into a pipe whose read end comes back in the reply, and [`SandboxChild::wait`]
//! answers that status. The same pipe's end of file says that init is ending, so the server
//! holds one descriptor per sandbox for both, not a pidfd besides.
//!
//! The child is made with `CLONE_PARENT`, so it is the server's child (reaped by the server,
//! see [`SandboxChild`]) exactly as if the server had spawned it, and its
//! parent-death signal follows the server's spawner thread, which never exits. The child
//! gets `/dev/null` as stdin, the two output fds as stdout and stderr, and the request's
//! other fds at 3, 4, … (sandbox-init's fd contract, [`super::command_gated`]), then the
//! status pipe's write end (close-on-exec, held by init alone); everything else is closed
//! before sandbox-init's code runs.
//!
//! Where the spawner cannot start, the server spawns sandbox-init itself from the host's
//! mount namespace (which then pivots into its root); where it died, the server spawns it
//! into the sandboxes' mount namespace ([`Spawner::namespace`],
//! [`super::join_sandbox_namespace`]).

use std::collections::HashMap;
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rustix::io::Errno;
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::oneshot;

use super::sys;

/// The spawner's end of its socket.
const SOCKET_FD: RawFd = 3;
/// Most fds one request carries: stdout, stderr and sandbox-init's 3 to 6.
const MAX_FDS: usize = 8;
/// A request: id (u64) and the number of fds (u32). A reply: id, pid (i32), errno (i32),
/// with the read end of the status pipe attached when the errno is 0.
const REQUEST_LEN: usize = 12;
const REPLY_LEN: usize = 16;

/// The server's handle on its spawner. Cheap to clone; requests may be made concurrently.
#[derive(Clone)]
pub struct Spawner {
    inner: Arc<Inner>,
}

struct Inner {
    pid: u32,
    sock: AsyncFd<OwnedFd>,
    pending: Mutex<HashMap<u64, oneshot::Sender<io::Result<SandboxChild>>>>,
    next: AtomicU64,
    /// Set once the spawner's socket broke: every later request fails at once.
    dead: AtomicBool,
    /// Work for the spawner thread, which stays in the sandboxes' mount namespace.
    jobs: std::sync::mpsc::Sender<Job>,
    /// Work that may wait (removals), for a second thread in the namespace, so that it
    /// never holds up a start.
    later: std::sync::mpsc::Sender<Job>,
    /// That namespace (`/proc/thread-self/ns/mnt` of the spawner thread).
    namespace: OwnedFd,
}

/// Something to run on the spawner thread, in the sandboxes' mount namespace.
type Job = Box<dyn FnOnce() + Send>;

/// Runs a job; a panic is logged, and the thread (which must not end) goes on.
fn run_job(job: Job) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
        tracing::error!("a job in the sandboxes' mount namespace panicked");
    }
}

impl std::fmt::Debug for Spawner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spawner").field("dead", &self.inner.dead.load(Ordering::Relaxed)).finish()
    }
}

impl Spawner {
    /// Starts `exe sandbox-spawner` from a thread of its own that lives as long as the
    /// server (a child's parent-death signal follows the thread that made it, and the
    /// sandboxes are made as the children of that thread). The thread first makes the
    /// mount namespace sandboxes are made from ([`super::enter_sandbox_namespace`]), then
    /// stays in it to run what must happen there ([`Spawner::in_namespace`]): the mounts
    /// that prestarted sandboxes follow live there, not on the host. Call within a tokio
    /// runtime.
    pub fn start(exe: &Path) -> io::Result<Spawner> {
        let (ours, theirs) = super::sys::seqpacket_pair()?;
        rustix::io::ioctl_fionbio(&ours, true)?;
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (jobs, job_rx) = std::sync::mpsc::channel::<Job>();
        let exe = exe.to_path_buf();
        std::thread::Builder::new().name("nimbus-spawner".into()).spawn(move || {
            let namespace = super::enter_sandbox_namespace()
                .map_err(|e| io::Error::other(e.to_string()))
                .and_then(|()| Ok(OwnedFd::from(std::fs::File::open("/proc/thread-self/ns/mnt")?)));
            let namespace = match namespace {
                Ok(fd) => fd,
                Err(e) => {
                    let _ = started_tx.send(Err(e));
                    return;
                }
            };
            let theirs_raw = theirs.as_raw_fd();
            let mut cmd = std::process::Command::new(&exe);
            // The working directory stays the namespace's small root, where sandbox-init
            // looks for it.
            cmd.arg("sandbox-spawner").env_clear().stdin(std::process::Stdio::null());
            let in_child = move || {
                // SAFETY: in the forked child, about to exec; raw syscalls only.
                unsafe { super::place_child_fds(&[theirs_raw])? };
                rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
                Ok(())
            };
            // SAFETY: the closure makes raw syscalls only (fcntl, dup2, prctl).
            unsafe { cmd.pre_exec(in_child) };
            let child = cmd.spawn();
            drop(theirs);
            let mut child = match child {
                Ok(c) => {
                    let _ = started_tx.send(Ok((c.id(), namespace)));
                    c
                }
                Err(e) => {
                    let _ = started_tx.send(Err(e));
                    return;
                }
            };
            // The sandboxes made by the spawner are this thread's children: their
            // parent-death signal fires when it ends, so it never does. It runs jobs in the
            // namespace until the server exits, and says once if the spawner ends.
            let mut reported = false;
            loop {
                match job_rx.recv_timeout(std::time::Duration::from_millis(500)) {
                    Ok(job) => run_job(job),
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    // Every handle is gone: nothing more will come, but the thread stays.
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(std::time::Duration::from_secs(3600)),
                }
                if !reported {
                    match child.try_wait() {
                        Ok(None) => {}
                        Ok(Some(status)) => {
                            tracing::error!("the sandbox spawner ended ({status}); sandboxes are now spawned by the server");
                            reported = true;
                        }
                        Err(e) => {
                            tracing::error!("cannot wait for the sandbox spawner: {e}");
                            reported = true;
                        }
                    }
                }
            }
        })?;
        let (pid, namespace) = started_rx.recv().map_err(|_| io::Error::other("the spawner thread died"))??;
        let (later, later_rx) = std::sync::mpsc::channel::<Job>();
        let joined = namespace.try_clone()?;
        std::thread::Builder::new().name("nimbus-ns-later".into()).spawn(move || {
            let entered = sys::unshare(rustix::thread::UnshareFlags::FS).and_then(|()| super::join_sandbox_namespace(joined.as_fd()));
            drop(joined);
            if let Err(e) = entered {
                tracing::error!("cannot join the sandboxes' mount namespace ({e}); late mount points are left until the server stops");
                return;
            }
            later_rx.into_iter().for_each(run_job);
        })?;
        let inner = Arc::new(Inner {
            pid,
            // SAFETY: the socket is owned by the AsyncFd and closed only when it drops.
            sock: unsafe { AsyncFd::register_with_interest(ours, Interest::READABLE | Interest::WRITABLE)? },
            pending: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
            dead: AtomicBool::new(false),
            jobs,
            later,
            namespace,
        });
        tokio::spawn(read_replies(inner.clone()));
        Ok(Spawner { inner })
    }

    /// The spawner process's pid.
    pub fn pid(&self) -> u32 {
        self.inner.pid
    }

    /// Runs `f` in the sandboxes' mount namespace (on the spawner thread, after what was
    /// asked before it) and waits for its result. Blocking: call off the async workers.
    pub fn in_namespace<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> io::Result<R> {
        let (tx, rx) = std::sync::mpsc::channel();
        // The spawner thread never exits, so the send cannot fail.
        let _ = self.inner.jobs.send(Box::new(move || {
            let _ = tx.send(f());
        }));
        rx.recv().map_err(|_| io::Error::other("the spawner thread did not run the job"))
    }

    /// Runs `f` in the sandboxes' mount namespace without waiting for it, on a thread of
    /// its own: what is asked with [`Spawner::in_namespace`] never waits behind it.
    pub fn in_namespace_later(&self, f: impl FnOnce() + Send + 'static) {
        // Fails only if that thread could not join the namespace (it said so).
        let _ = self.inner.later.send(Box::new(f));
    }

    /// The sandboxes' mount namespace, for a sandbox-init the server starts itself
    /// ([`super::join_sandbox_namespace`]).
    pub fn namespace(&self) -> BorrowedFd<'_> {
        self.inner.namespace.as_fd()
    }

    /// Whether requests can still succeed.
    pub fn is_alive(&self) -> bool {
        !self.inner.dead.load(Ordering::SeqCst)
    }

    /// Starts sandbox-init with `stdout` and `stderr` as its output and `fds` at 3, 4, …
    /// (the spec pipe first; see [`super::command_gated`] for the order), in a new process
    /// group, with the parent-death signal set. The caller's fds may be dropped once this
    /// returns (the spawner has its own copies).
    pub async fn spawn(&self, stdout: BorrowedFd<'_>, stderr: BorrowedFd<'_>, fds: &[BorrowedFd<'_>]) -> io::Result<SandboxChild> {
        if fds.len() + 2 > MAX_FDS {
            return Err(Errno::INVAL.into());
        }
        if !self.is_alive() {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "the sandbox spawner is gone"));
        }
        let id = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.inner.pending.lock().expect("pending").insert(id, tx);
        let mut all = Vec::with_capacity(fds.len() + 2);
        all.push(stdout);
        all.push(stderr);
        all.extend_from_slice(fds);
        let mut header = [0u8; REQUEST_LEN];
        header[..8].copy_from_slice(&id.to_le_bytes());
        header[8..].copy_from_slice(&(all.len() as u32).to_le_bytes());
        let sent = loop {
            let mut guard = match self.inner.sock.writable().await {
                Ok(g) => g,
                Err(e) => break Err(e),
            };
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
            let mut control = SendAncillaryBuffer::new(&mut space);
            control.push(SendAncillaryMessage::ScmRights(&all));
            match guard
                .try_io(|s| rustix::net::sendmsg(s, &[IoSlice::new(&header)], &mut control, SendFlags::NOSIGNAL).map_err(io::Error::from))
            {
                Ok(result) => break result,
                Err(_would_block) => continue,
            }
        };
        if let Err(e) = sent {
            self.inner.pending.lock().expect("pending").remove(&id);
            self.inner.dead.store(true, Ordering::SeqCst);
            return Err(e);
        }
        rx.await.unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::BrokenPipe, "the sandbox spawner is gone")))
    }
}

/// Reads the spawner's replies and hands each to its request; when the socket breaks, fails
/// every request still waiting.
async fn read_replies(inner: Arc<Inner>) {
    loop {
        let mut guard = match inner.sock.readable().await {
            Ok(g) => g,
            Err(_) => break,
        };
        let mut buf = [0u8; REPLY_LEN];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let got = guard.try_io(|s| {
            rustix::net::recvmsg(s, &mut [IoSliceMut::new(&mut buf)], &mut control, RecvFlags::CMSG_CLOEXEC).map_err(io::Error::from)
        });
        match got {
            Err(_would_block) => continue,
            Ok(Ok(m)) if m.bytes == REPLY_LEN => {}
            Ok(_) => break, // end of file, an error, or a short message
        }
        let status = control.drain().find_map(|m| match m {
            RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
            _ => None,
        });
        let id = u64::from_le_bytes(buf[..8].try_into().expect("8 bytes"));
        let pid = i32::from_le_bytes(buf[8..12].try_into().expect("4 bytes"));
        let errno = i32::from_le_bytes(buf[12..].try_into().expect("4 bytes"));
        let result = match (errno, status) {
            (0, Some(status)) => SandboxChild::new(pid as u32, status).inspect_err(|_| abandon(pid)),
            // The sandbox was made but its fd did not reach us: the kernel drops the
            // SCM_RIGHTS it cannot install when our descriptor table is full. Nobody could
            // ever wait for that child, so it is killed by pid here (and reaped later), and the
            // spawn fails as out of descriptors (the invocation is throttled).
            (0, _) => {
                abandon(pid);
                Err(io::Error::from_raw_os_error(libc::EMFILE))
            }
            (e, _) => Err(io::Error::from_raw_os_error(e)),
        };
        if let Some(tx) = inner.pending.lock().expect("pending").remove(&id) {
            let _ = tx.send(result);
        }
    }
    inner.dead.store(true, Ordering::SeqCst);
    let waiting: Vec<_> = inner.pending.lock().expect("pending").drain().collect();
    for (_, tx) in waiting {
        let _ = tx.send(Err(io::Error::new(io::ErrorKind::BrokenPipe, "the sandbox spawner is gone")));
    }
    tracing::error!("the sandbox spawner's socket closed; sandboxes are now spawned by the server");
}

/// Kills a child of ours nobody will wait for (by pid: it is not yet reaped, so the pid is
/// still its), to be reaped by [`reap_dropped`].
fn abandon(pid: i32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        DROPPED.lock().unwrap_or_else(|p| p.into_inner()).push(pid);
    }
}

/// `waitid(WEXITED | WNOHANG)` on one child: its status once it has ended (and is reaped).
fn try_reap(pid: rustix::process::Pid) -> Result<Option<rustix::process::WaitIdStatus>, Errno> {
    rustix::process::waitid(
        rustix::process::WaitId::Pid(pid),
        rustix::process::WaitIdOptions::EXITED | rustix::process::WaitIdOptions::NOHANG,
    )
}

/// A child of the server made by the spawner (a sandbox's init, PID 1 of its namespace),
/// known by its pid and the read end of its status pipe: waited for (and reaped) by
/// [`SandboxChild::wait`], killed if dropped before that.
///
/// Init alone holds the pipe's write end (close-on-exec: the runtime never has it; the
/// spawner closes its copy before its next fork), so end of file on it means init is
/// exiting. Only the server reaps its children, and only here, so until `wait` has reaped
/// it the pid is this process's and cannot name another: signalling and waiting by pid are
/// as safe as through a pidfd, and the sandbox costs the server one descriptor, not two.
#[derive(Debug)]
pub struct SandboxChild {
    pid: u32,
    /// Where init writes the runtime's wait status before it exits (its own status cannot
    /// carry a signal: PID 1 cannot die by one it sends itself).
    status: AsyncFd<OwnedFd>,
    reaped: bool,
}

impl SandboxChild {
    fn new(pid: u32, status: OwnedFd) -> io::Result<SandboxChild> {
        rustix::io::ioctl_fionbio(&status, true)?;
        // SAFETY: the fd is owned by the AsyncFd and closed only when it drops.
        let status = unsafe { AsyncFd::register_with_interest(status, Interest::READABLE)? };
        Ok(SandboxChild { pid, status, reaped: false })
    }

    pub fn id(&self) -> u32 {
        self.pid
    }

    /// Waits until the process ends and reaps it: the runtime's wait status as init reported
    /// it, or (when it did not: the sandbox failed before its runtime ran, or init was
    /// killed) init's own, as `waitpid` would give it.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        let reported = self.read_report().await?;
        let pid = rustix::process::Pid::from_raw(self.pid as i32).ok_or_else(|| io::Error::from(Errno::SRCH))?;
        // Init closes its files before it becomes a zombie, and in between the kernel kills
        // and waits for whatever was left in its PID namespace: usually microseconds (a few
        // turns of other tasks), longer when those processes had much memory to free.
        let mut yields = 3;
        let mut pause = std::time::Duration::from_millis(1);
        loop {
            match try_reap(pid) {
                Ok(Some(status)) => {
                    self.reaped = true;
                    reap_dropped();
                    let raw = match (status.exit_status(), status.terminating_signal()) {
                        (Some(code), _) => (code & 0xff) << 8,
                        (None, Some(sig)) => sig | if status.dumped() { 0x80 } else { 0 },
                        (None, None) => 0,
                    };
                    return Ok(ExitStatus::from_raw(reported.unwrap_or(raw)));
                }
                Ok(None) if yields > 0 => {
                    yields -= 1;
                    tokio::task::yield_now().await;
                }
                Ok(None) => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_millis(16));
                }
                Err(Errno::INTR) => {}
                Err(e) => {
                    // ECHILD: not (or no longer) our child, so the pid may name another
                    // process now; never signal it.
                    self.reaped = true;
                    return Err(e.into());
                }
            }
        }
    }

    /// Reads the status pipe to its end: the 4 bytes of the runtime's wait status, if init
    /// wrote them.
    async fn read_report(&self) -> io::Result<Option<i32>> {
        let mut report = [0u8; 4];
        let mut got = 0;
        loop {
            let mut guard = self.status.readable().await?;
            let mut buf = [0u8; 16];
            match guard.try_io(|fd| rustix::io::read(fd.get_ref(), &mut buf).map_err(io::Error::from)) {
                Ok(Ok(0)) => return Ok((got == report.len()).then(|| i32::from_le_bytes(report))),
                Ok(Ok(n)) => {
                    let take = n.min(report.len() - got);
                    report[got..got + take].copy_from_slice(&buf[..take]);
                    got += take;
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => {}
            }
        }
    }
}

impl Drop for SandboxChild {
    fn drop(&mut self) {
        if !self.reaped {
            // Not reaped, so the pid is still our child's (see above).
            abandon(self.pid as i32);
        }
    }
}

/// Children killed because nobody will wait for them ([`abandon`]: a [`SandboxChild`]
/// dropped before it was waited for, a spawn whose requester had gone or whose fd never
/// reached us): reaped, once they have ended, whenever another sandbox child is, so they do
/// not stay zombies. Until then each pid is still ours.
static DROPPED: Mutex<Vec<rustix::process::Pid>> = Mutex::new(Vec::new());

fn reap_dropped() {
    let mut dropped = DROPPED.lock().unwrap_or_else(|p| p.into_inner());
    // Kept only while still running; reaped (or, ECHILD, not ours) ones go.
    dropped.retain(|pid| matches!(try_reap(*pid), Ok(None) | Err(Errno::INTR)));
}

/// `clone_args` of `clone3(2)`.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Entry point of `nimbus sandbox-spawner`: serves requests on fd 3 until the server closes
/// it. Single-threaded: each child is a plain copy of this small process.
pub fn spawner_main() -> i32 {
    // SAFETY: fd 3 is the socket by contract with `Spawner::start`; checked before owning it.
    if unsafe { libc::fcntl(SOCKET_FD, libc::F_GETFD) } < 0 {
        eprintln!("sandbox-spawner: no socket at fd 3");
        return 1;
    }
    // SAFETY: as above.
    let sock = unsafe { OwnedFd::from_raw_fd(SOCKET_FD) };
    let devnull = match std::fs::File::open("/dev/null") {
        Ok(f) => OwnedFd::from(f),
        Err(e) => {
            eprintln!("sandbox-spawner: open /dev/null: {e}");
            return 1;
        }
    };
    let server = rustix::process::getppid().map(|p| p.as_raw_nonzero().get()).unwrap_or(0);
    // Built here once, every sandbox-init forked below inherits it (one that fails to build
    // it now tries again in the child, which reports the error).
    let _ = super::seccomp::programs();
    loop {
        let mut header = [0u8; REQUEST_LEN];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let got = match rustix::net::recvmsg(&sock, &mut [IoSliceMut::new(&mut header)], &mut control, RecvFlags::CMSG_CLOEXEC) {
            Ok(m) => m,
            Err(Errno::INTR) => continue,
            Err(e) => {
                eprintln!("sandbox-spawner: recvmsg: {e}");
                return 1;
            }
        };
        if got.bytes == 0 {
            return 0; // the server closed its end
        }
        let mut fds: Vec<OwnedFd> = Vec::with_capacity(MAX_FDS);
        for m in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = m {
                fds.extend(received);
            }
        }
        let id = u64::from_le_bytes(header[..8].try_into().expect("8 bytes"));
        let count = u32::from_le_bytes(header[8..].try_into().expect("4 bytes")) as usize;
        let (pid, errno, ends) = if got.bytes != REQUEST_LEN || count != fds.len() || count < 2 {
            (0, libc::EINVAL, None)
        } else {
            match clone_child(server, &devnull, &fds) {
                Ok((pid, status)) => (pid, 0, Some(status)),
                Err(e) => (0, e.raw_os_error().unwrap_or(libc::EIO), None),
            }
        };
        drop(fds);
        let mut reply = [0u8; REPLY_LEN];
        reply[..8].copy_from_slice(&id.to_le_bytes());
        reply[8..12].copy_from_slice(&pid.to_le_bytes());
        reply[12..].copy_from_slice(&errno.to_le_bytes());
        let borrowed: Vec<BorrowedFd<'_>> = ends.iter().map(|f| f.as_fd()).collect();
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !borrowed.is_empty() {
            control.push(SendAncillaryMessage::ScmRights(&borrowed));
        }
        loop {
            match rustix::net::sendmsg(&sock, &[IoSlice::new(&reply)], &mut control, SendFlags::NOSIGNAL) {
                Ok(_) => break,
                Err(Errno::INTR) => continue,
                Err(_) => return 0, // the server is gone
            }
        }
    }
}

/// Whether the calling process (made with `CLONE_PARENT` in a new PID namespace, where
/// `getppid()` reads 0) still has `server` as its parent: its parent pid as the host's procfs
/// shows it (the spawner's mount namespace has it at /proc, and its pids are the host's).
/// Once the server's last thread has ended, its children belong to a reaper.
fn parent_is(server: i32) -> bool {
    let Ok(stat) = std::fs::read("/proc/self/stat") else { return false };
    // pid (comm) state ppid …; comm may hold spaces and parentheses, so after the last ')'.
    let Some(close) = stat.iter().rposition(|&b| b == b')') else { return false };
    let ppid = std::str::from_utf8(&stat[close + 1..]).ok().and_then(|rest| rest.split_whitespace().nth(1)?.parse::<i32>().ok());
    ppid == Some(server)
}

/// Makes one sandbox-init process as the server's child, PID 1 of a new PID namespace, and
/// returns its pid and the read end of the pipe it reports the runtime's wait status on.
/// Our copy of the write end is closed when this returns, before the next fork.
fn clone_child(server: i32, devnull: &OwnedFd, fds: &[OwnedFd]) -> io::Result<(i32, OwnedFd)> {
    let (status_read, status_write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let args = CloneArgs {
        flags: (libc::CLONE_PARENT | libc::CLONE_NEWPID) as u64,
        // With CLONE_PARENT the child's exit signal is the spawner's own (SIGCHLD); clone3
        // wants 0 here.
        exit_signal: 0,
        ..CloneArgs::default()
    };
    // SAFETY: clone3 without CLONE_VM is a fork; this process is single-threaded, so the
    // child may go on allocating. `args` lives across the call.
    let pid = unsafe { libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, std::mem::size_of::<CloneArgs>()) };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        child(server, devnull, fds, status_write);
    }
    Ok((pid as i32, status_read))
}

/// The new process (PID 1 of its PID namespace): stdio and fds in place, then the status
/// pipe's write end, nothing else open, then sandbox-init's code as init.
fn child(server: i32, devnull: &OwnedFd, fds: &[OwnedFd], status: OwnedFd) -> ! {
    // Our parent is the server (CLONE_PARENT): die with it, and make sure it is still there.
    if rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL)).is_err() || !parent_is(server) {
        sys::exit_now(super::EXIT_SETUP_FAILED);
    }
    // What `ps` and /proc/<pid>/comm show (the command line stays the spawner's).
    let _ = rustix::thread::set_name(c"sandbox-init");
    // A session of its own (and so a process group whose id is its pid: a kill of the group
    // reaches all), without the server's controlling terminal: nothing inside can open
    // /dev/tty to read or inject (TIOCSTI) the terminal the server was started from.
    if rustix::process::setsid().is_err() {
        sys::exit_now(super::EXIT_SETUP_FAILED);
    }
    let mut sources: Vec<RawFd> = Vec::with_capacity(fds.len() + 2);
    sources.push(devnull.as_raw_fd());
    sources.extend(fds.iter().map(|f| f.as_raw_fd()));
    // Last, above sandbox-init's own fds, with close-on-exec: the runtime never has it.
    let status_fd = sources.len() as RawFd;
    // Its original number is closed below (or was replaced by a dup2 if it was lower).
    sources.push(status.into_raw_fd());
    if arrange_fds(&sources).is_err() {
        sys::exit_now(super::EXIT_SETUP_FAILED);
    }
    // SAFETY: arrange_fds placed the status pipe there; nothing else owns that number.
    let status = unsafe { OwnedFd::from_raw_fd(status_fd) };
    if rustix::io::fcntl_setfd(&status, rustix::io::FdFlags::CLOEXEC).is_err() {
        sys::exit_now(super::EXIT_SETUP_FAILED);
    }
    // SAFETY: plain syscall; everything from here up is a copy we no longer need (the
    // socket, /dev/null, the received fds' original numbers).
    unsafe { libc::syscall(libc::SYS_close_range, sources.len() as u32, u32::MAX, 0u32) };
    super::init::pid_one_main(status)
}

/// Places `sources[i]` at fd `i` (0, 1, 2, 3, …) without close-on-exec; handles sources
/// that already sit in the target range.
fn arrange_fds(sources: &[RawFd]) -> io::Result<()> {
    let floor = sources.len() as RawFd;
    let mut copies = Vec::with_capacity(sources.len());
    for &fd in sources {
        // SAFETY: plain syscall.
        let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, floor) };
        if copy < 0 {
            return Err(io::Error::last_os_error());
        }
        copies.push(copy);
    }
    for (i, &copy) in copies.iter().enumerate() {
        // SAFETY: plain syscall; dup2 leaves the new fd without close-on-exec.
        if unsafe { libc::dup2(copy, i as RawFd) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

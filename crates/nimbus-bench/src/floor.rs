//! The isolation floor of `--burst`: the kernel work of N isolated environments and their
//! runtimes' starts, with none of the server's own work, so that a burst's wall time can be
//! read against what this machine's kernel needs for the same isolation.
//!
//! Each environment gets what a Nimbus environment gets from the kernel, made the most
//! direct way: a network namespace with its loopback up and a listener on it, a veth pair on
//! a bridge with an address and a default route (Nimbus's own [`Linker`], whose steps are
//! single netlink requests, on its one thread as in the server), a cgroup per controller
//! with memory, CPU and pid limits, and a process cloned into new PID, mount, IPC and UTS
//! namespaces that joins the network namespace and those cgroups, takes a new cgroup
//! namespace, mounts a tmpfs and a `/proc`, and execs the `provided` runtime with a Lambda
//! environment whose Runtime API is the namespace's listener. What it leaves out is all
//! Nimbus adds: HTTP, the pool, the Runtime API's answers, `sandbox-init`'s second process,
//! its root and bind mounts, the privilege drop, the seccomp filter, the log stream.
//! The environments are made on four threads per core (each thread makes its share one
//! after another, and waits for the linker's thread and each clone's exec), their runtimes
//! left waiting for an event (as a burst's wait for theirs), and removed once every runtime
//! has asked for its first event. Only `provided` has this floor: a Python environment
//! starts from Nimbus's forked interpreter, not from an exec.

use std::ffi::CString;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use nimbus_sandbox::network::{Linker, Netns};

use crate::scale::MachineTime;

/// The floor's bridge and subnet: apart from a server's (`nimbus0`, 10.213.0.0/16).
const BRIDGE: &str = "nbfloor0";
const SUBNET: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 214, 0, 0), 16);
/// The cgroup directory the floor's groups are made in, under each hierarchy.
const GROUP: &str = "nimbus-bench-floor";

/// What the floor measured: the time to make the environments with their runtimes started
/// and waiting for an event, the machine's CPU meanwhile, how many got that far (`made`),
/// and why it stopped early, if it did (then the time and CPU measure nothing).
pub(crate) struct Floor {
    pub made: usize,
    pub elapsed: Duration,
    pub spent: MachineTime,
    pub error: Option<String>,
}

/// One environment, as far as it was made: its namespace, groups, runtime and the runtime's
/// connection (held open, so that the runtime waits for its event). Dropping it removes
/// what it holds (not timed): the runtime killed and reaped (its PID namespace and mounts go
/// with it), the namespace and its veth pair with the last descriptor, the groups once empty.
#[derive(Default)]
struct Env {
    netns: Option<Netns>,
    groups: Vec<PathBuf>,
    pid: Option<i32>,
    conn: Option<std::net::TcpStream>,
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            end(pid);
        }
        self.conn = None;
        self.netns = None;
        for g in self.groups.drain(..).rev() {
            let _ = std::fs::remove_dir(g);
        }
    }
}

/// Makes `n` environments as described above, each starting the `provided` runtime
/// `bootstrap` with a Lambda environment whose Runtime API is the namespace's listener, and
/// waits until every runtime has asked that listener for its first event (`GET …/next`).
pub(crate) fn isolation_floor(n: usize, bootstrap: &Path, threads: usize) -> anyhow::Result<Floor> {
    if !rustix::process::geteuid().is_root() {
        bail!("the isolation floor needs root (namespaces, veth pairs, cgroups)");
    }
    // About three descriptors an environment (its namespace, listener and connection).
    let needed = 3 * n as u64 + 256;
    if let Some(limit) = nimbus_sandbox::raise_descriptor_limit(None).filter(|l| *l < needed) {
        bail!("{n} environments need about {needed} descriptors; this process may have {limit}");
    }
    let exec = Exec::new(bootstrap)?;
    let roots = std::env::temp_dir().join(format!("nimbus-bench-floor-{}", std::process::id()));
    let hierarchies = Hierarchies::prepare()?;
    remove_links();
    let made = std::fs::create_dir_all(&roots)
        .context("the floor's roots")
        .and_then(|()| Linker::setup(BRIDGE, SUBNET, 0, None).context("making the floor's bridge"))
        .map(|linker| make(n, threads, &linker, &hierarchies, &roots, &exec));
    hierarchies.remove();
    let _ = std::fs::remove_dir_all(&roots);
    remove_links();
    made
}

/// The timed part: `n` environments on `threads` threads, then removed.
fn make(n: usize, threads: usize, linker: &Linker, hierarchies: &Hierarchies, roots: &Path, exec: &Exec) -> Floor {
    let next = AtomicUsize::new(0);
    let busy_before = MachineTime::now();
    let started = Instant::now();
    let results: Vec<(Vec<Env>, Option<String>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| {
                scope.spawn(|| {
                    let mut made = Vec::new();
                    let mut stack = vec![0u8; 256 * 1024];
                    let mut error = None;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            break;
                        }
                        let mut env = Env::default();
                        let result = one(i, &mut env, linker, hierarchies, roots, exec, &mut stack);
                        made.push(env);
                        if let Err(e) = result {
                            // The others stop at their next environment.
                            next.store(n, Ordering::Relaxed);
                            error = Some(format!("environment {i}: {e:#}"));
                            break;
                        }
                    }
                    // Then this thread's runtimes' first requests, most of them waiting already.
                    if error.is_none() {
                        for env in &mut made {
                            if let Err(e) = first_request(env) {
                                error = Some(format!("a runtime's first request: {e:#}"));
                                break;
                            }
                        }
                    }
                    (made, error)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or_else(|_| (Vec::new(), Some("a floor thread panicked".into())))).collect()
    });
    let elapsed = started.elapsed();
    let spent = MachineTime::now().since(busy_before);
    let error = results.iter().find_map(|(_, e)| e.clone());
    let made = results.iter().flat_map(|(m, _)| m).filter(|e| e.conn.is_some()).count();
    // Kill every runtime first, then reap and remove (`Env`'s drop).
    for (envs, _) in &results {
        for pid in envs.iter().filter_map(|e| e.pid) {
            // SAFETY: our own child, not yet reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    drop(results);
    Floor { made, elapsed, spent, error }
}

/// One environment: its network namespace, linked; its groups; its runtime started in its
/// namespaces. What was made is in `env` even when a later step fails.
fn one(
    i: usize,
    env: &mut Env,
    linker: &Linker,
    hierarchies: &Hierarchies,
    roots: &Path,
    exec: &Exec,
    stack: &mut [u8],
) -> anyhow::Result<()> {
    let netns = env.netns.insert(linker.take().context("network namespace and link")?);
    let netns_fd = netns.fd.as_raw_fd();
    hierarchies.create(i, &mut env.groups)?;
    let procs: Vec<CString> = env.groups.iter().map(|g| cpath(&g.join("cgroup.procs"))).collect::<anyhow::Result<_>>()?;
    let root = roots.join(i.to_string());
    std::fs::create_dir_all(&root)?;
    let proc_dir = cpath(&root.join("proc"))?;
    let root = cpath(&root)?;
    start(netns_fd, &procs, &root, &proc_dir, exec, stack, &mut env.pid)
}

/// Accepts the runtime's connection on its namespace's Runtime API listener and reads its
/// first request's head; keeps the connection (closing it would end the runtime).
fn first_request(env: &mut Env) -> anyhow::Result<()> {
    use std::io::Read;
    let netns = env.netns.as_ref().context("no namespace")?;
    netns.listener.set_nonblocking(false)?;
    // Linux's accept honours the receive timeout: a runtime that died never connects.
    rustix::net::sockopt::set_socket_timeout(&netns.listener, rustix::net::sockopt::Timeout::Recv, Some(Duration::from_secs(30)))?;
    let (mut conn, _) = netns.listener.accept().context("accepting the runtime's connection")?;
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let got = conn.read(&mut buf)?;
        if got == 0 {
            bail!("the runtime closed its connection (it exited?)");
        }
        head.extend_from_slice(&buf[..got]);
    }
    if !head.starts_with(b"GET /2018-06-01/runtime/invocation/next") {
        bail!("unexpected first request: {}", String::from_utf8_lossy(&head[..head.len().min(80)]));
    }
    env.conn = Some(conn);
    Ok(())
}

/// The program, its arguments and environment, ready for `execve` in a child that shares
/// this process's memory (nothing allocated after the clone).
struct Exec {
    program: CString,
    argv: [*const libc::c_char; 2],
    _env: Vec<CString>,
    envp: Vec<*const libc::c_char>,
}

// SAFETY: the pointers point into `program` and `_env`, which live as long as the Exec and
// are only read.
unsafe impl Sync for Exec {}

impl Exec {
    fn new(bootstrap: &Path) -> anyhow::Result<Exec> {
        let program = cpath(bootstrap)?;
        let env: Vec<CString> = [
            format!("AWS_LAMBDA_RUNTIME_API=127.0.0.1:{}", nimbus_sandbox::network::RUNTIME_API_PORT),
            "AWS_LAMBDA_FUNCTION_NAME=floor".into(),
            "AWS_LAMBDA_FUNCTION_VERSION=$LATEST".into(),
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=1769".into(),
            "AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/floor".into(),
            "AWS_LAMBDA_LOG_STREAM_NAME=floor".into(),
        ]
        .into_iter()
        .map(CString::new)
        .collect::<Result<_, _>>()?;
        let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
        envp.push(std::ptr::null());
        let argv = [program.as_ptr(), std::ptr::null()];
        Ok(Exec { program, argv, _env: env, envp })
    }
}

fn cpath(p: &Path) -> anyhow::Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    Ok(CString::new(p.as_os_str().as_bytes())?)
}

/// What the child of [`start`] needs, made before the clone: it shares the parent's memory
/// until it execs, and allocates nothing. `failed` is the step it could not take (set
/// before it exits; read by the parent once the clone returns).
struct ChildArgs<'a> {
    netns: i32,
    procs: &'a [*const libc::c_char],
    root: &'a CString,
    proc_dir: &'a CString,
    exec: &'a Exec,
    failed: AtomicUsize,
}

/// The child's steps, for `ChildArgs::failed` (0: none failed).
const CHILD_STEPS: [&str; 8] = [
    "",
    "join the network namespace",
    "close inherited descriptors",
    "stdout and stderr",
    "join the groups",
    "new cgroup namespace",
    "mounts",
    "exec",
];

/// Clones a process into new PID, mount, IPC and UTS namespaces, which joins the network
/// namespace `netns` and the groups, then a new cgroup namespace, mounts a tmpfs at `root`
/// and `/proc` at `proc_dir` (both private to its mount namespace), and execs the runtime.
/// The clone shares this process's memory and descriptor table until the exec
/// (`CLONE_VM | CLONE_VFORK | CLONE_FILES`, as `posix_spawn` does), so it copies no page
/// tables and no table of the floor's thousands of descriptors (its own table then holds
/// only 0–2), as Nimbus's small spawner copies none. Signals stay blocked in the child
/// (a handler must not run on the parent's memory) through the exec: the runtime starts
/// with them blocked, which the floor's runtimes, killed by SIGKILL, never notice. Sets
/// `pid` once the clone has returned, then fails if the child did.
fn start(
    netns: i32,
    procs: &[CString],
    root: &CString,
    proc_dir: &CString,
    exec: &Exec,
    stack: &mut [u8],
    pid: &mut Option<i32>,
) -> anyhow::Result<()> {
    let flags = libc::CLONE_VM
        | libc::CLONE_VFORK
        | libc::CLONE_FILES
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS;
    let procs: Vec<*const libc::c_char> = procs.iter().map(|p| p.as_ptr()).collect();
    let args = ChildArgs { netns, procs: &procs, root, proc_dir, exec, failed: AtomicUsize::new(0) };
    // The stack grows down from its 16-byte aligned top.
    let top = (stack.as_mut_ptr() as usize + stack.len()) & !15;
    // SAFETY: sigset_t is plain data; every signal blocked on this thread for the clone,
    // the old mask back after it.
    let cloned = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        // SAFETY: the child runs `child` on its own stack while this thread is suspended
        // (CLONE_VFORK) until it execs or exits; everything it reads lives in this frame.
        let cloned = libc::clone(child, top as *mut libc::c_void, flags | libc::SIGCHLD, (&raw const args).cast_mut().cast());
        let error = std::io::Error::last_os_error();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        if cloned < 0 {
            return Err(error).context("clone");
        }
        cloned
    };
    *pid = Some(cloned);
    match args.failed.load(Ordering::Relaxed) {
        0 => Ok(()),
        step => bail!("the runtime's process could not {}", CHILD_STEPS.get(step).unwrap_or(&"start")),
    }
}

/// The cloned child: raw system calls only (not libc's wrappers, which keep more state in
/// the parent thread's memory; `syscall` itself still sets the parent thread's `errno`,
/// which the parent does not read after a successful clone), then execve; on a failure it
/// records the step and exits. `/dev/null` opened at 0–2 (the bench's own closed) counts as a
/// failure, since it would not survive the exec.
extern "C" fn child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the ChildArgs of `start`, alive while the parent waits (CLONE_VFORK);
    // every call is a system call on pointers into it.
    unsafe {
        let a = &*(arg as *const ChildArgs);
        let fail = |step: usize| -> libc::c_int {
            a.failed.store(step, Ordering::Relaxed);
            libc::syscall(libc::SYS_exit, 127);
            127
        };
        let none = std::ptr::null::<libc::c_char>();
        if libc::syscall(libc::SYS_setns, a.netns, libc::CLONE_NEWNET) != 0 {
            return fail(1);
        }
        // Its own table, of descriptors 0–2 only (the parent's stays as it was).
        if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_UNSHARE) != 0 {
            return fail(2);
        }
        let null = libc::syscall(libc::SYS_openat, libc::AT_FDCWD, c"/dev/null".as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC, 0);
        if null < 3 || libc::syscall(libc::SYS_dup3, null, 1, 0) < 0 || libc::syscall(libc::SYS_dup3, null, 2, 0) < 0 {
            return fail(3);
        }
        for p in a.procs {
            let fd = libc::syscall(libc::SYS_openat, libc::AT_FDCWD, *p, libc::O_WRONLY | libc::O_CLOEXEC, 0);
            if fd < 0 || libc::syscall(libc::SYS_write, fd, b"0".as_ptr(), 1usize) != 1 {
                return fail(4);
            }
            libc::syscall(libc::SYS_close, fd);
        }
        // After the move, so that its root is the environment's own group.
        if libc::syscall(libc::SYS_unshare, libc::CLONE_NEWCGROUP) != 0 {
            return fail(5);
        }
        let mount =
            |source: &std::ffi::CStr,
             target: *const libc::c_char,
             kind: &std::ffi::CStr,
             flags: libc::c_ulong,
             data: *const libc::c_char| { libc::syscall(libc::SYS_mount, source.as_ptr(), target, kind.as_ptr(), flags, data) };
        if libc::syscall(libc::SYS_mount, none, c"/".as_ptr(), none, libc::MS_REC | libc::MS_PRIVATE, none) != 0
            || mount(c"tmpfs", a.root.as_ptr(), c"tmpfs", libc::MS_NOSUID | libc::MS_NODEV, c"size=64m".as_ptr()) != 0
            || libc::syscall(libc::SYS_mkdirat, libc::AT_FDCWD, a.proc_dir.as_ptr(), 0o555) != 0
            || mount(c"proc", a.proc_dir.as_ptr(), c"proc", libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC, none) != 0
        {
            return fail(6);
        }
        libc::syscall(libc::SYS_execve, a.exec.program.as_ptr(), a.exec.argv.as_ptr(), a.exec.envp.as_ptr());
        fail(7)
    }
}

/// Kills and reaps a started runtime (its sandbox's PID 1); a second kill of one already
/// killed is harmless, as it is not reaped until here.
fn end(pid: i32) {
    // SAFETY: our own child, not yet reaped.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        let mut status = 0;
        while libc::waitpid(pid, &mut status, 0) < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {}
    }
}

/// Where the floor's groups are made: cgroup v2's one hierarchy, or v1's memory, cpu, pids
/// and freezer hierarchies (the ones Nimbus makes an environment's groups in).
struct Hierarchies {
    /// (the floor's parent directory, the limit files written in each group, v2)
    parents: Vec<(PathBuf, &'static [(&'static str, &'static str)])>,
}

impl Hierarchies {
    /// The floor's parent group in each hierarchy, emptied of an interrupted run's groups.
    /// The limits are a burst environment's while its runtime starts (Nimbus's
    /// `Limits::for_init` at the bench function's 1,769 MB: no CPU quota, an eighth of a
    /// default group's weight).
    fn prepare() -> anyhow::Result<Hierarchies> {
        const MEMORY: &str = "1854930944";
        let base = Path::new("/sys/fs/cgroup");
        let mut parents = Vec::new();
        if base.join("cgroup.controllers").exists() {
            let parent = base.join(GROUP);
            let _ = std::fs::create_dir(&parent);
            // Controllers the root does not delegate yet are asked for; any refused leaves
            // its limit file missing, which `create` reports.
            let _ = std::fs::write(base.join("cgroup.subtree_control"), "+memory +cpu +pids");
            if let Err(e) = std::fs::write(parent.join("cgroup.subtree_control"), "+memory +cpu +pids") {
                let _ = std::fs::remove_dir(&parent);
                return Err(e).with_context(|| format!("enabling controllers in {}", parent.display()));
            }
            parents.push((parent, &[("memory.max", MEMORY), ("cpu.weight", "13"), ("pids.max", "1024")][..]));
        } else {
            for (controller, limits) in [
                ("memory", &[("memory.limit_in_bytes", MEMORY)][..]),
                ("cpu", &[("cpu.shares", "128")][..]),
                ("pids", &[("pids.max", "1024")][..]),
                ("freezer", &[][..]),
            ] {
                let dir = base.join(controller);
                if !dir.join("cgroup.procs").exists() {
                    continue;
                }
                let parent = dir.join(GROUP);
                let _ = std::fs::create_dir(&parent);
                parents.push((parent, limits));
            }
        }
        if parents.is_empty() {
            bail!("no cgroup hierarchy found under /sys/fs/cgroup");
        }
        let hierarchies = Hierarchies { parents };
        hierarchies.remove_children();
        Ok(hierarchies)
    }

    /// Makes environment `i`'s groups with their limits, each pushed onto `made` once made.
    fn create(&self, i: usize, made: &mut Vec<PathBuf>) -> anyhow::Result<()> {
        for (parent, limits) in &self.parents {
            let dir = parent.join(i.to_string());
            std::fs::create_dir(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
            made.push(dir.clone());
            for (file, value) in *limits {
                std::fs::write(dir.join(file), value).with_context(|| format!("writing {file} in {}", dir.display()))?;
            }
        }
        Ok(())
    }

    fn remove_children(&self) {
        for (parent, _) in &self.parents {
            for child in std::fs::read_dir(parent).into_iter().flatten().flatten() {
                if child.path().is_dir() {
                    let _ = std::fs::remove_dir(child.path());
                }
            }
        }
    }

    fn remove(&self) {
        self.remove_children();
        for (parent, _) in &self.parents {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

/// Deletes the floor's bridges (`nbfloor0` and the `nbfloor0b<k>` of later address
/// blocks), left from this run or an interrupted one.
fn remove_links() {
    let Ok(links) = std::fs::read_dir("/sys/class/net") else { return };
    for link in links.flatten() {
        let name = link.file_name().to_string_lossy().into_owned();
        if name == BRIDGE || name.starts_with(&format!("{BRIDGE}b")) {
            let _ = std::process::Command::new("ip").args(["link", "del", &name]).status();
        }
    }
}

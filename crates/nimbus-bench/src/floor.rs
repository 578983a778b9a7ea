//! The isolation floor of `--burst`: the kernel work of N isolated environments and their
//! runtimes' starts, with none of the server's own work, so that a burst's wall time can be
//! read against what this machine's kernel needs for the same isolation.
//!
//! Each environment gets what a Nimbus environment gets from the kernel, made the most
//! direct way: a network namespace with its loopback up and a listener on it, a veth pair on
//! a bridge with an address and a default route (Nimbus's own [`Linker`], whose steps are
//! single netlink requests, on its one thread as in the server), a cgroup per controller
//! with memory, CPU and pid limits, and a process cloned into new PID, mount, IPC, UTS and
//! cgroup namespaces that joins those cgroups and the network namespace, mounts a tmpfs
//! and a `/proc`, and execs the runtime's bare start (the same command as the other floor).
//! What it leaves out is all Nimbus adds: HTTP, the pool, the Runtime API's exchanges,
//! `sandbox-init`'s second process and `pivot_root`, the seccomp filter, the log stream.
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
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use nimbus_sandbox::network::{Linker, Netns};

/// The floor's bridge and subnet: apart from a server's (`nimbus0`, 10.213.0.0/16).
const BRIDGE: &str = "nbfloor0";
const SUBNET: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 214, 0, 0), 16);
/// The cgroup directory the floor's groups are made in, under each hierarchy.
const GROUP: &str = "nimbus-bench-floor";

/// What the floor measured: the time to make `made` environments with their runtimes
/// started and waiting for an event, and why it stopped early, if it did.
pub(crate) struct Floor {
    pub made: usize,
    pub elapsed: Duration,
    pub error: Option<String>,
}

/// One environment's kernel objects and its runtime, kept until the whole floor is made.
struct Made {
    netns: Netns,
    groups: Vec<PathBuf>,
    pid: i32,
}

/// Makes `n` environments as described above, each starting the `provided` runtime
/// `bootstrap` with a Lambda environment whose Runtime API is the namespace's listener, and
/// waits until every runtime has asked that listener for its first event (`GET …/next`).
pub(crate) fn isolation_floor(n: usize, bootstrap: &Path, threads: usize) -> anyhow::Result<Floor> {
    if !rustix::process::geteuid().is_root() {
        bail!("the isolation floor needs root (namespaces, veth pairs, cgroups)");
    }
    remove_links();
    let linker = Linker::setup(BRIDGE, SUBNET, 0, None).context("making the floor's bridge")?;
    let hierarchies = Hierarchies::prepare()?;
    let roots = std::env::temp_dir().join(format!("nimbus-bench-floor-{}", std::process::id()));
    std::fs::create_dir_all(&roots)?;
    let exec = Exec::new(bootstrap)?;
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let results: Vec<(Vec<Made>, Option<String>)> = std::thread::scope(|scope| {
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
                        match one(i, &linker, &hierarchies, &roots, &exec, &mut stack) {
                            Ok(m) => made.push(m),
                            Err(e) => {
                                // The others stop at their next environment.
                                next.store(n, Ordering::Relaxed);
                                error = Some(format!("environment {i}: {e:#}"));
                                break;
                            }
                        }
                    }
                    // Then this thread's runtimes' first requests, most of them waiting already.
                    for m in &made {
                        if error.is_some() {
                            break;
                        }
                        if let Err(e) = first_request(&m.netns) {
                            error = Some(format!("a runtime's first request: {e:#}"));
                        }
                    }
                    (made, error)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or_else(|_| (Vec::new(), Some("a floor thread panicked".into())))).collect()
    });
    let elapsed = started.elapsed();
    let made = results.iter().map(|(m, _)| m.len()).sum();
    let error = results.iter().find_map(|(_, e)| e.clone());
    // Removal, not timed: each runtime killed (its PID namespace and mounts go with it),
    // the namespaces (and with them the veth pairs) with their last descriptor, the groups
    // once empty.
    for (envs, _) in results {
        for Made { netns, groups, pid } in envs {
            end(pid);
            drop(netns);
            for g in groups {
                let _ = std::fs::remove_dir(g);
            }
        }
    }
    hierarchies.remove();
    let _ = std::fs::remove_dir_all(&roots);
    drop(linker);
    remove_links();
    Ok(Floor { made, elapsed, error })
}

/// One environment: its network namespace, linked; its groups; its runtime started in its
/// namespaces.
fn one(i: usize, linker: &Arc<Linker>, hierarchies: &Hierarchies, roots: &Path, exec: &Exec, stack: &mut [u8]) -> anyhow::Result<Made> {
    let netns = linker.take().context("network namespace and link")?;
    let groups = hierarchies.create(i)?;
    let procs: Vec<CString> = groups.iter().map(|g| cpath(&g.join("cgroup.procs"))).collect::<anyhow::Result<_>>()?;
    let root = roots.join(i.to_string());
    std::fs::create_dir(&root)?;
    let proc_dir = cpath(&root.join("proc"))?;
    let root = cpath(&root)?;
    let pid = start(netns.fd.as_raw_fd(), &procs, &root, &proc_dir, exec, stack)?;
    Ok(Made { netns, groups, pid })
}

/// Accepts the runtime's connection on its namespace's Runtime API listener and reads its
/// first request's head.
fn first_request(netns: &Netns) -> anyhow::Result<()> {
    use std::io::Read;
    netns.listener.set_nonblocking(false)?;
    let (mut conn, _) = netns.listener.accept()?;
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
    Ok(())
}

/// The program, its arguments and environment, ready for `execve` in a child that shares
/// this process's memory (nothing allocated after the clone).
struct Exec {
    program: CString,
    /// Its standard output and error.
    null: std::fs::File,
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
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128".into(),
            "AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/floor".into(),
            "AWS_LAMBDA_LOG_STREAM_NAME=floor".into(),
        ]
        .into_iter()
        .map(CString::new)
        .collect::<Result<_, _>>()?;
        let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
        envp.push(std::ptr::null());
        let null = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
        let argv = [program.as_ptr(), std::ptr::null()];
        Ok(Exec { program, null, argv, _env: env, envp })
    }
}

fn cpath(p: &Path) -> anyhow::Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    Ok(CString::new(p.as_os_str().as_bytes())?)
}

/// What the child of [`start`] needs, made before the clone: it shares the parent's memory
/// until it execs, and allocates nothing.
struct ChildArgs<'a> {
    netns: i32,
    null: i32,
    procs: &'a [*const libc::c_char],
    root: &'a CString,
    proc_dir: &'a CString,
    exec: &'a Exec,
}

/// Clones a process into new PID, mount, IPC, UTS and cgroup namespaces, which joins the
/// network namespace `netns` and the groups, mounts a tmpfs at `root` and `/proc` at
/// `proc_dir` (both private to its mount namespace), and execs the runtime. The clone shares
/// this process's memory until the exec (`CLONE_VM | CLONE_VFORK`, as `posix_spawn` does),
/// so it copies no page tables, as Nimbus's small spawner process does not. Returns the pid
/// once the runtime has been exec'd (or the child has failed).
fn start(netns: i32, procs: &[CString], root: &CString, proc_dir: &CString, exec: &Exec, stack: &mut [u8]) -> anyhow::Result<i32> {
    let flags = libc::CLONE_VM
        | libc::CLONE_VFORK
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWCGROUP;
    let procs: Vec<*const libc::c_char> = procs.iter().map(|p| p.as_ptr()).collect();
    let args = ChildArgs { netns, null: exec.null.as_raw_fd(), procs: &procs, root, proc_dir, exec };
    // The stack grows down from its 16-byte aligned top.
    let top = (stack.as_mut_ptr() as usize + stack.len()) & !15;
    // SAFETY: the child runs `child` on its own stack while this thread is suspended
    // (CLONE_VFORK) until it execs or exits; everything it reads lives in this frame.
    let pid =
        unsafe { libc::clone(child, top as *mut libc::c_void, flags | libc::SIGCHLD, &args as *const ChildArgs as *mut libc::c_void) };
    if pid < 0 {
        return Err(std::io::Error::last_os_error()).context("clone");
    }
    Ok(pid)
}

/// The cloned child: only system calls, then execve or _exit(127).
extern "C" fn child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the ChildArgs of `start`, alive while the parent waits (CLONE_VFORK).
    unsafe {
        let a = &*(arg as *const ChildArgs);
        if libc::dup2(a.null, 1) < 0 || libc::dup2(a.null, 2) < 0 || libc::setns(a.netns, libc::CLONE_NEWNET) != 0 {
            libc::_exit(127);
        }
        for p in a.procs {
            let fd = libc::open(*p, libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                libc::_exit(127);
            }
            libc::close(fd);
        }
        let none = std::ptr::null::<libc::c_char>();
        if libc::mount(none, c"/".as_ptr(), none, libc::MS_REC | libc::MS_PRIVATE, std::ptr::null()) != 0
            || libc::mount(
                c"tmpfs".as_ptr(),
                a.root.as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                c"size=64m".as_ptr().cast(),
            ) != 0
            || libc::mkdir(a.proc_dir.as_ptr(), 0o555) != 0
            || libc::mount(
                c"proc".as_ptr(),
                a.proc_dir.as_ptr(),
                c"proc".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                std::ptr::null(),
            ) != 0
        {
            libc::_exit(127);
        }
        libc::execve(a.exec.program.as_ptr(), a.exec.argv.as_ptr(), a.exec.envp.as_ptr());
        libc::_exit(127)
    }
}

/// Kills and reaps a started runtime (its sandbox's PID 1).
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
    fn prepare() -> anyhow::Result<Hierarchies> {
        let base = Path::new("/sys/fs/cgroup");
        let mut parents = Vec::new();
        if base.join("cgroup.controllers").exists() {
            let parent = base.join(GROUP);
            let _ = std::fs::create_dir(&parent);
            // Controllers the root does not delegate yet are asked for; any refused leaves
            // its limit file missing, which `create` reports.
            let _ = std::fs::write(base.join("cgroup.subtree_control"), "+memory +cpu +pids");
            std::fs::write(parent.join("cgroup.subtree_control"), "+memory +cpu +pids")
                .with_context(|| format!("enabling controllers in {}", parent.display()))?;
            parents.push((parent, &[("memory.max", "134217728"), ("cpu.max", "100000 100000"), ("pids.max", "1024")][..]));
        } else {
            for (controller, limits) in [
                ("memory", &[("memory.limit_in_bytes", "134217728")][..]),
                ("cpu", &[("cpu.cfs_quota_us", "100000")][..]),
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
        Ok(Hierarchies { parents })
    }

    fn create(&self, i: usize) -> anyhow::Result<Vec<PathBuf>> {
        let mut made = Vec::with_capacity(self.parents.len());
        for (parent, limits) in &self.parents {
            let dir = parent.join(i.to_string());
            std::fs::create_dir(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
            made.push(dir.clone());
            for (file, value) in *limits {
                std::fs::write(dir.join(file), value).with_context(|| format!("writing {file} in {}", dir.display()))?;
            }
        }
        Ok(made)
    }

    fn remove(&self) {
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

//! `nimbus sandbox-init`: reads the [`JailSpec`] from fd 3, builds the sandbox and runs the
//! runtime in it. init (PID 1 inside) builds the root (its `/proc` must belong to the new
//! namespace) and reaps; the runtime (PID 2) drops every privilege and execs. The spawner
//! makes sandbox-init in a new PID namespace already, so it is init ([`pid_one_main`]: two
//! processes, the runtime's wait status written to a pipe the server reads). Started by the
//! server itself it begins in the host's, and a new PID namespace only applies to children:
//! then an outer process forks init, waits, and mirrors the runtime's end ([`init_main`]).
//!
//! sandbox-init is a fresh single-threaded process, so it allocates freely after `fork`.

use std::ffi::CString;
use std::io::{self, Read};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::process::{Resource, Signal};
use rustix::thread::UnshareFlags;

use super::error::{path, sys as call};
use super::rootfs::{self, MountStep};
use super::{seccomp, sys, zygote, JailError, JailSpec, Net, EXIT_EXEC_FAILED, EXIT_SETUP_FAILED, SPEC_FD};

/// A step that failed before exec: printed as `sandbox-init: <error>`, exit 126.
pub(super) fn report(e: &JailError) {
    eprintln!("sandbox-init: {e}");
}

/// Entry point of `nimbus sandbox-init`. Returns an exit code, or never returns (the runtime
/// runs, or the process ends by the runtime's signal).
pub fn init_main() -> i32 {
    match outer() {
        Ok(code) => code,
        Err(e) => {
            report(&e);
            EXIT_SETUP_FAILED
        }
    }
}

/// Everything prepared before the first fork, so the children only make syscalls.
pub(super) struct Prepared {
    pub(super) spec: JailSpec,
    pub(super) steps: Vec<MountStep>,
    pub(super) filters: &'static [seccompiler::BpfProgram],
    program: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    cwd: CString,
    started_ns: u64,
    marks: Vec<(&'static str, u64)>,
}

/// Room for a whole spec or launch message (a few kilobytes: mounts, the function's
/// environment), so one of up to 8 KiB (the most the standard library asks a pipe for at
/// once) is read in one `read` and the end of file in another, where an empty buffer grows
/// through reads of 32, 32, 64, 128, … bytes.
const MESSAGE_CAPACITY: usize = 16 * 1024;

fn read_spec() -> Result<JailSpec, JailError> {
    // SAFETY: plain fcntl; checks fd 3 exists before anything takes ownership of it (raw,
    // because rustix's fcntl takes a BorrowedFd, which must be open to begin with).
    if unsafe { libc::fcntl(SPEC_FD, libc::F_GETFD) } < 0 {
        return Err(call("read spec from fd 3")(io::Error::last_os_error()));
    }
    // SAFETY: fd 3 is open and ours by contract with the server; owning it closes it.
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(SPEC_FD) });
    let mut buf = Vec::with_capacity(MESSAGE_CAPACITY);
    file.read_to_end(&mut buf).map_err(call("read spec from fd 3"))?;
    let spec: JailSpec = serde_json::from_slice(&buf).map_err(|source| JailError::Json { op: "parse spec", source })?;
    spec.validate().map_err(JailError::InvalidSpec)?;
    Ok(spec)
}

pub(super) fn cstring(what: &'static str, bytes: &[u8]) -> Result<CString, JailError> {
    CString::new(bytes).map_err(|_| JailError::Nul { what })
}

/// Everything before the sandbox's first process of its own: the spec read, the cgroups
/// joined, the mounts planned, the namespaces made: the sandbox's own and `more` (a new PID
/// namespace for the children, unless this process is already PID 1 of one).
fn prepare(more: UnshareFlags) -> Result<Prepared, JailError> {
    let started_ns = sys::monotonic_ns();
    // The server may die at any moment; we must not outlive it.
    rustix::process::set_parent_process_death_signal(Some(Signal::KILL)).map_err(call("prctl PDEATHSIG"))?;
    let spec = read_spec()?;
    for procs in &spec.cgroup_procs {
        // "0" is the writer itself, in whatever PID namespace it is.
        std::fs::write(procs, "0").map_err(path("join cgroup", procs))?;
    }
    let mut marks = vec![("spec+cgroup", sys::monotonic_ns())];
    // A fixed value makes the modes of what we create predictable.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));

    let steps = rootfs::plan(&spec).map_err(JailError::Plan)?;
    let filters = seccomp::programs().map_err(|source| JailError::Seccomp { op: "build seccomp filter", source })?;
    let program = cstring("program", spec.program.as_os_str().as_bytes())?;
    let mut argv = vec![program.clone()];
    for a in &spec.args {
        argv.push(cstring("argument", a.as_bytes())?);
    }
    let envp = spec.env.iter().map(|(k, v)| cstring("environment", format!("{k}={v}").as_bytes())).collect::<Result<_, _>>()?;
    let cwd = cstring("cwd", spec.cwd.as_os_str().as_bytes())?;
    marks.push(("prepare", sys::monotonic_ns()));

    let mut flags = UnshareFlags::NEWNS | UnshareFlags::NEWIPC | UnshareFlags::NEWUTS | UnshareFlags::NEWCGROUP | more;
    match spec.net {
        Net::Host => {}
        Net::New => flags |= UnshareFlags::NEWNET,
        Net::Join(fd) => {
            // SAFETY: the fd is open and ours by contract with the server (see `command`);
            // owning it closes it once joined.
            let ns = unsafe { OwnedFd::from_raw_fd(fd) };
            sys::join_netns(ns.as_fd()).map_err(call("join network namespace"))?;
        }
    }
    // The cgroup namespace comes after the cgroup move, so the sandbox's cgroup is its root.
    sys::unshare(flags).map_err(call("unshare"))?;
    rustix::system::sethostname(spec.hostname.as_bytes()).map_err(call("sethostname"))?;
    if spec.net == Net::New {
        sys::loopback_up().map_err(call("bring lo up"))?;
    }
    marks.push(("unshare", sys::monotonic_ns()));
    Ok(Prepared { spec, steps, filters, program, argv, envp, cwd, started_ns, marks })
}

/// The outer process (a sandbox-init started by the server itself, in the host's PID
/// namespace): forks init into the new PID namespace and ends as the runtime ended.
fn outer() -> Result<i32, JailError> {
    let prepared = prepare(UnshareFlags::NEWPID)?;
    // init tells us how the runtime ended through this pipe: init itself cannot die by a
    // signal it sends itself (PID 1 ignores those), so its own status cannot carry one.
    let (status_read, status_write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(call("pipe"))?;
    let me = sys::pidfd_self().map_err(call("pidfd_open"))?;
    match sys::fork().map_err(call("fork init"))? {
        sys::Forked::Child => {
            drop(status_read);
            init(prepared, status_write, Some(me))
        }
        sys::Forked::Parent(pid) => {
            drop(status_write);
            drop(me);
            let (_, status) = sys::wait(pid).map_err(call("wait for init"))?;
            let mut reported = [0u8; 4];
            let mut file = std::fs::File::from(status_read);
            let runtime_status = match file.read_exact(&mut reported) {
                Ok(()) => i32::from_le_bytes(reported),
                // init failed before the runtime ran (it printed why) or was killed.
                Err(_) => status,
            };
            Ok(mirror(runtime_status))
        }
    }
}

/// Entry point of a sandbox-init the spawner made as PID 1 of a new PID namespace (no
/// outer process): it is init itself, and the runtime's wait status goes to the server
/// through `status` (see [`super::SandboxChild::wait`]).
pub(super) fn pid_one_main(status: OwnedFd) -> ! {
    match prepare(UnshareFlags::empty()) {
        Ok(prepared) => init(prepared, status, None),
        Err(e) => {
            report(&e);
            sys::exit_now(EXIT_SETUP_FAILED)
        }
    }
}

/// Ends the outer process as the runtime ended: same exit code, or the same signal.
fn mirror(status: libc::c_int) -> i32 {
    if libc::WIFSIGNALED(status) {
        sys::die_by_signal(libc::WTERMSIG(status));
    }
    if libc::WIFEXITED(status) {
        return libc::WEXITSTATUS(status);
    }
    EXIT_SETUP_FAILED
}

/// PID 1 inside: builds the root, starts the runtime in it, reaps until the runtime exits.
///
/// The runtime is forked once the root is built: it inherits the root (a chroot moves only
/// the calling process). A sandbox built ahead of time gives up its privileges before its
/// gate, so only fresh starts wait for that step.
fn init(mut p: Prepared, status_write: OwnedFd, outer: Option<OwnedFd>) -> ! {
    if let Some(outer) = outer {
        // The outer process may have died before PDEATHSIG was set here; then nothing
        // would ever kill us, so look.
        if rustix::process::set_parent_process_death_signal(Some(Signal::KILL)).is_err() || sys::pidfd_exited(&outer) {
            sys::exit_now(EXIT_SETUP_FAILED);
        }
        p.marks.push(("fork init", sys::monotonic_ns()));
    }
    if let Some(fd) = p.spec.zygote_fd {
        zygote::run(p, status_write, fd);
    }
    if let Err(e) = rootfs::build(&p.steps, p.spec.tmp_size_mb, &mut p.marks) {
        report(&e);
        sys::exit_now(EXIT_SETUP_FAILED);
    }
    let runtime = match sys::fork() {
        Ok(sys::Forked::Child) => {
            drop(status_write);
            runtime(p)
        }
        Ok(sys::Forked::Parent(pid)) => pid,
        Err(e) => {
            report(&call("fork runtime")(e));
            sys::exit_now(EXIT_SETUP_FAILED);
        }
    };

    // Reap everything (orphans are re-parented to us) until the runtime itself ends; then
    // exiting makes the kernel kill whatever is left in the namespace.
    loop {
        match sys::wait(-1) {
            Ok((pid, status)) if pid == runtime => {
                let _ = sys::write_all(&status_write, &status.to_le_bytes());
                let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 128 + libc::WTERMSIG(status) };
                sys::exit_now(code);
            }
            Ok(_) => {}
            Err(_) => sys::exit_now(EXIT_SETUP_FAILED),
        }
    }
}

/// PID 2: gives up every privilege, waits at its gate if it has one, then execs the runtime.
fn runtime(mut p: Prepared) -> ! {
    p.marks.push(("fork runtime", sys::monotonic_ns()));
    if let Err(e) = drop_privileges(&mut p) {
        report(&e);
        sys::exit_now(EXIT_SETUP_FAILED);
    }
    if let Some(fd) = p.spec.gate_fd {
        if let Err(e) = pass_gate(&mut p, fd) {
            report(&e);
            sys::exit_now(EXIT_SETUP_FAILED);
        }
        // The server adopts a gated sandbox only for code that has its program, and binds
        // the code before it opens the gate; a program missing now means the bind did not
        // reach this sandbox (made while its root was being built). Setup failed, so the
        // server starts a fresh one, rather than the function's entrypoint being blamed.
        if p.spec.task_mount.is_some() && !Path::new(&p.spec.program).exists() {
            report(&JailError::CodeMissing(p.spec.program.clone()));
            sys::exit_now(EXIT_SETUP_FAILED);
        }
        p.marks.push(("gate", sys::monotonic_ns()));
    }
    // As the user, so a directory the runtime may not enter fails here, clearly.
    if let Err(e) = rustix::process::chdir(p.cwd.as_c_str()) {
        report(&path("chdir", &p.spec.cwd)(e));
        sys::exit_now(EXIT_SETUP_FAILED);
    }
    if p.spec.timings {
        print_timings(&mut p);
    }
    let argv: Vec<*const libc::c_char> = p.argv.iter().map(|a| a.as_ptr()).chain([std::ptr::null()]).collect();
    let envp: Vec<*const libc::c_char> = p.envp.iter().map(|a| a.as_ptr()).chain([std::ptr::null()]).collect();
    let e = sys::execve(&p.program, &argv, &envp);
    eprintln!("fork/exec {}: {}", p.spec.program.display(), go_style(&e));
    sys::exit_now(EXIT_EXEC_FAILED)
}

/// Waits at the gate for the function this sandbox was built ahead of time for: its
/// environment and working directory. End of file without a word means the server dropped
/// the sandbox unused; then the runtime ends quietly.
fn pass_gate(p: &mut Prepared, fd: i32) -> Result<(), JailError> {
    let Some(launch) = read_launch(fd)? else {
        sys::exit_now(0);
    };
    p.envp = launch.env.iter().map(|(k, v)| cstring("environment", format!("{k}={v}").as_bytes())).collect::<Result<_, _>>()?;
    if let Some(cwd) = launch.cwd {
        p.cwd = cstring("cwd", cwd.as_os_str().as_bytes())?;
        p.spec.cwd = cwd;
    }
    Ok(())
}

/// Reads the gate at `fd` (ours by contract with the server, see `command_gated`) to its
/// end: the launch message, or None when the server closed it without one.
pub(super) fn read_launch(fd: i32) -> Result<Option<super::Launch>, JailError> {
    // SAFETY: the fd is ours by contract with the server; owning it closes it.
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let mut buf = Vec::with_capacity(MESSAGE_CAPACITY);
    file.read_to_end(&mut buf).map_err(call("read the launch message"))?;
    if buf.is_empty() {
        return Ok(None);
    }
    serde_json::from_slice(&buf).map(Some).map_err(|source| JailError::Json { op: "parse the launch message", source })
}

fn drop_privileges(p: &mut Prepared) -> Result<(), JailError> {
    let spec = &p.spec;
    if let Some(n) = spec.rlimit_nproc {
        sys::set_rlimit(Resource::Nproc, n).map_err(call("setrlimit NPROC"))?;
    }
    sys::set_rlimit(Resource::Nofile, spec.rlimit_nofile).map_err(call("setrlimit NOFILE"))?;
    sys::set_rlimit(Resource::Core, 0).map_err(call("setrlimit CORE"))?;
    // Needs CAP_SETPCAP, so before the uid changes.
    sys::drop_bounding_set().map_err(call("drop bounding capabilities"))?;
    sys::switch_user(spec.uid, spec.gid).map_err(call("switch user"))?;
    sys::clear_capabilities().map_err(call("clear capabilities"))?;
    rustix::thread::set_no_new_privs(true).map_err(call("prctl NO_NEW_PRIVS"))?;
    p.marks.push(("user+caps", sys::monotonic_ns()));
    sys::cloexec_from(3).map_err(call("close inherited fds"))?;
    seccomp::apply(p.filters).map_err(|source| JailError::Seccomp { op: "install seccomp filter", source })?;
    p.marks.push(("seccomp", sys::monotonic_ns()));
    Ok(())
}

/// One line: each step's duration since the previous one, in time order (init's build
/// steps, then the runtime's own).
fn print_timings(p: &mut Prepared) {
    p.marks.sort_by_key(|(_, at)| *at);
    let mut line = String::from("sandbox-init: timings:");
    let mut last = p.started_ns;
    for (name, at) in &p.marks {
        line.push_str(&format!(" {name} {:.3}ms", (at - last) as f64 / 1e6));
        last = *at;
    }
    line.push_str(&format!(" total {:.3}ms", (last - p.started_ns) as f64 / 1e6));
    eprintln!("{line}");
}

/// `No such file or directory (os error 2)` → `no such file or directory`, as Go (and so
/// AWS's `fork/exec` messages) words it.
fn go_style(e: &io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => text.to_string(),
    }
}

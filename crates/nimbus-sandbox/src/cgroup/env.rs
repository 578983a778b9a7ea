//! One environment's groups ([`EnvCgroup`]): its limits, freeze and thaw, peak memory and
//! OOM kills on the invoke path, and the kill loop that empties its groups (also used to
//! remove what a crashed run left behind) before the directories go.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{
    check_name, limit_writes, v1, v2, CgroupError, CgroupFile, CgroupFs, Layout, Limits, Version, CPU_SHARE_FILES, KILL_WAIT,
    OPTIONAL_FILES, RMDIR_WAIT,
};

#[derive(Debug)]
pub(super) enum Freezer {
    /// `cgroup.freeze` written at each freeze and thaw; `cgroup.events` read on demand. Each
    /// opened when used, not held: idle environments are the many, and every descriptor one
    /// holds caps how many a server holds (a thaw comes after an idle spell, so the open is
    /// not on a busy function's path).
    V2 {
        freeze: PathBuf,
        events: PathBuf,
    },
    V1 {
        state: PathBuf,
    },
}

/// One environment's groups (one directory per hierarchy). Dropping it kills every process in
/// them and removes the directories.
#[derive(Debug)]
pub struct EnvCgroup {
    pub(super) layout: Arc<Layout>,
    /// Same order as `layout.hierarchies`.
    pub(super) dirs: Vec<PathBuf>,
    procs: Vec<PathBuf>,
    kill_file: Option<PathBuf>,
    pub(super) freezer: Option<Freezer>,
    /// The peak-memory file, opened on the first read and kept while the environment works
    /// (busy environments read it after most invocations), let go when it is frozen: idle
    /// environments are the many, and each descriptor they hold caps how many a server holds.
    peak: Option<PathBuf>,
    peak_file: std::sync::Mutex<Option<Box<dyn CgroupFile>>>,
    /// Read on demand: only after an invocation that failed.
    oom: Option<PathBuf>,
}

/// Finds `key value` in a flat-keyed cgroup file (`memory.events`, `cgroup.events`, …).
pub(super) fn keyed_value(text: &[u8], key: &str) -> Option<u64> {
    let text = std::str::from_utf8(text).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        if k == key {
            v.trim().parse().ok()
        } else {
            None
        }
    })
}

impl EnvCgroup {
    /// Creates one environment's groups with its limits: memory (and memory+swap equal, so it
    /// cannot swap), CPU quota per period, pids.max. Then opens the files the invoke path uses.
    pub(super) fn create(layout: &Arc<Layout>, env_id: &str, limits: &Limits) -> Result<EnvCgroup, CgroupError> {
        check_name("environment id", env_id)?;
        let fs = layout.fs.as_ref();
        let mut env = EnvCgroup {
            layout: layout.clone(),
            dirs: Vec::with_capacity(layout.hierarchies.len()),
            procs: Vec::with_capacity(layout.hierarchies.len()),
            kill_file: None,
            freezer: None,
            peak: None,
            peak_file: std::sync::Mutex::new(None),
            oom: None,
        };
        // On error `env` is dropped, which removes the directories made so far.
        for h in &layout.hierarchies {
            let dir = h.parent.join(env_id);
            fs.mkdir(&dir)?;
            env.dirs.push(dir.clone());
            env.procs.push(dir.join("cgroup.procs"));
            for (file, value) in limit_writes(h, limits) {
                match fs.write(&dir.join(file), &value) {
                    Ok(()) => {}
                    // Swap accounting off (v1 without memsw) or no swap controller: nothing to cap.
                    Err(e) if e.is_not_found() && OPTIONAL_FILES.contains(&file) => {
                        tracing::debug!(file, "optional cgroup file missing");
                    }
                    Err(e) => return Err(e),
                }
            }
            if h.memory {
                let (peak, oom) = match h.version {
                    Version::V2 => (v2::PEAK_FILE, v2::OOM_FILE),
                    Version::V1 => (v1::PEAK_FILE, v1::OOM_FILE),
                };
                // memory.peak needs Linux 5.19.
                let peak = dir.join(peak);
                if fs.exists(&peak) {
                    env.peak = Some(peak);
                } else {
                    tracing::debug!("no peak memory");
                }
                env.oom = Some(dir.join(oom));
            }
            if h.freezer {
                env.freezer = Some(match h.version {
                    Version::V2 => Freezer::V2 { freeze: dir.join("cgroup.freeze"), events: dir.join("cgroup.events") },
                    Version::V1 => Freezer::V1 { state: dir.join(v1::FREEZER_STATE) },
                });
            }
            if h.version == Version::V2 && layout.v2_kill {
                env.kill_file = Some(dir.join("cgroup.kill"));
            }
        }
        Ok(env)
    }

    /// The `cgroup.procs` files a process writes itself into (one per hierarchy) to enter this
    /// environment; see [`super::enter_current_process`]. The cgroup2 one comes first.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.procs.clone()
    }

    /// Applies new limits to a live environment (a prestarted one assigned to a function
    /// whose memory differs from the default it was started with).
    pub fn set_limits(&self, limits: &Limits) -> Result<(), CgroupError> {
        for (h, dir) in self.layout.hierarchies.iter().zip(&self.dirs) {
            let mut writes = limit_writes(h, limits);
            let v1_memory = h.version == Version::V1 && h.memory && limits.memory_bytes != 0;
            if v1_memory && v1::raises_memory_limit(self.layout.fs.as_ref(), dir, limits) {
                writes.swap(0, 1);
            }
            for (file, value) in writes {
                match self.layout.fs.write(&dir.join(file), &value) {
                    Ok(()) => {}
                    Err(e) if e.is_not_found() && OPTIONAL_FILES.contains(&file) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// Applies `limits`' CPU share alone: what changes when an environment's init is over.
    /// Every environment is made (or adopted) with [`Limits::for_init`] of its memory size,
    /// which differs from [`Limits::for_memory_mb`] only there, so one write replaces the
    /// five (and a read) of [`EnvCgroup::set_limits`] on the first invocation's path.
    pub fn set_cpu_share(&self, limits: &Limits) -> Result<(), CgroupError> {
        for (h, dir) in self.layout.hierarchies.iter().zip(&self.dirs) {
            for (file, value) in limit_writes(h, limits) {
                if CPU_SHARE_FILES.contains(&file) {
                    self.layout.fs.write(&dir.join(file), &value)?;
                }
            }
        }
        Ok(())
    }

    /// Moves a process in from outside (for the non-jailed path). Its children started later
    /// follow it; ones it already has do not.
    pub fn add_pid(&self, pid: u32) -> Result<(), CgroupError> {
        let pid = pid.to_string();
        for p in &self.procs {
            self.layout.fs.write(p, &pid)?;
        }
        Ok(())
    }

    /// Stops every process in the environment: one write. The kernel completes it
    /// asynchronously; a process blocked in a syscall (a runtime waiting for its next event) is
    /// frozen by the time this returns, a busy one within microseconds to a scheduler tick (see
    /// [`EnvCgroup::is_frozen`]). It does not wait: spinning here can keep a busy process that
    /// shares this CPU from reaching the point where it freezes.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        // A frozen environment reads nothing: its descriptor goes until it works again.
        drop(self.peak_file.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take());
        match &self.freezer {
            Some(Freezer::V2 { freeze, .. }) => self.layout.fs.write(freeze, "1"),
            Some(Freezer::V1 { state }) => self.layout.fs.write(state, "FROZEN"),
            None => Err(CgroupError::NoFreezer),
        }
    }

    /// Whether the kernel reports every process frozen (cgroup2 `cgroup.events`, v1
    /// `freezer.state`, whose read is also what moves v1 from FREEZING to FROZEN). One read.
    pub fn is_frozen(&self) -> bool {
        match &self.freezer {
            Some(Freezer::V2 { events, .. }) => self.layout.fs.read(events).is_ok_and(|t| keyed_value(t.as_bytes(), "frozen") == Some(1)),
            Some(Freezer::V1 { state }) => self.layout.fs.read(state).is_ok_and(|t| t.starts_with("FROZEN")),
            None => false,
        }
    }

    /// Polls [`EnvCgroup::is_frozen`] until true or `timeout`, yielding the CPU between reads
    /// (so a busy process sharing this CPU can reach its freezing point). Measured here: a
    /// sleeping process is frozen at the first read, a spinning one after about 12 µs.
    pub fn wait_frozen(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.is_frozen() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::yield_now();
        }
    }

    /// Lets the environment run again.
    pub fn thaw(&self) -> Result<(), CgroupError> {
        match &self.freezer {
            Some(Freezer::V2 { freeze, .. }) => self.layout.fs.write(freeze, "0"),
            Some(Freezer::V1 { state }) => self.layout.fs.write(state, "THAWED"),
            None => Err(CgroupError::NoFreezer),
        }
    }

    /// Peak memory use of the group since it was created, in bytes (v2 `memory.peak`, v1
    /// `memory.max_usage_in_bytes`). `None` when the kernel does not tell.
    pub fn peak_memory_bytes(&self) -> Option<u64> {
        let mut file = self.peak_file.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if file.is_none() {
            *file = Some(self.layout.fs.open(self.peak.as_ref()?, false).ok()?);
        }
        let mut buf = [0u8; 32];
        let n = file.as_ref()?.read(&mut buf).ok()?;
        std::str::from_utf8(&buf[..n]).ok()?.trim().parse().ok()
    }

    /// How many times the kernel's OOM killer killed a process in this group (v2
    /// `memory.events`, v1 `memory.oom_control`). Compare before and after an invocation to
    /// tell whether that invocation ran out of memory.
    pub fn oom_kill_count(&self) -> Option<u64> {
        keyed_value(self.layout.fs.read(self.oom.as_ref()?).ok()?.as_bytes(), "oom_kill")
    }

    /// True if the kernel OOM-killed something in this group.
    pub fn oom_killed(&self) -> bool {
        self.oom_kill_count().unwrap_or(0) > 0
    }

    /// Kills every process in the groups (also ones ignoring SIGTERM, frozen ones and forked
    /// daemons) and waits until they are gone: cgroup2 `cgroup.kill`, else freeze, SIGKILL each
    /// listed pid, thaw. The groups are left thawed and empty.
    pub fn kill_all(&self) {
        if self.layout.is_closed() {
            return; // the whole set is gone already (the server's stop)
        }
        let fs = self.layout.fs.as_ref();
        if let Some(kill) = &self.kill_file {
            if let Err(e) = fs.write(kill, "1") {
                tracing::warn!(error = %e, "cgroup.kill failed; killing by pid");
            }
        }
        // Without cgroup.kill a freezer keeps forks from racing the sweep. (A frozen cgroup2
        // group still lets SIGKILL through; a frozen v1 one does not, hence the thaw inside.)
        let v1_freezer = self.layout.hierarchies.iter().zip(&self.dirs).find(|(h, _)| h.freezer && h.version == Version::V1);
        let freezer = v1_freezer.map(|(_, d)| d.join(v1::FREEZER_STATE));
        let frozen_v2 = self.kill_file.is_none() && matches!(self.freezer, Some(Freezer::V2 { .. }));
        if frozen_v2 {
            let _ = self.freeze();
        }
        if !kill_listed(fs, &self.dirs, freezer.as_deref(), KILL_WAIT) {
            tracing::warn!(dir = %self.dirs.first().map(|d| d.display().to_string()).unwrap_or_default(), "processes still listed after kill");
        }
        // Leave the group thawed: a process entering a frozen group would freeze on arrival.
        if matches!(self.freezer, Some(Freezer::V2 { .. })) {
            let _ = self.thaw();
        }
    }
}

impl Drop for EnvCgroup {
    fn drop(&mut self) {
        if self.layout.is_closed() {
            return;
        }
        // Killing waits for the tasks to go and rmdir is retried: off the async workers
        // (a no-op where it already runs on a blocking thread, as a `Process`'s does).
        nimbus_store::blocking::in_place(|| {
            self.kill_all();
            let fs = self.layout.fs.as_ref();
            let mut dirs = Vec::new();
            for dir in &self.dirs {
                // A function with a delegated cgroup namespace may have made subgroups.
                tree_bottom_up(fs, dir, &mut dirs);
            }
            remove_dirs(fs, &dirs, RMDIR_WAIT);
        });
    }
}

/// Pids listed in `<dir>/cgroup.procs`; garbage lines are skipped (kernel input).
pub(super) fn procs_in(fs: &dyn CgroupFs, dir: &Path) -> Vec<u32> {
    fs.read(&dir.join("cgroup.procs")).map(|s| s.split_whitespace().filter_map(|p| p.parse().ok()).collect()).unwrap_or_default()
}

/// All group directories below `dir` (children before their parents), then `dir` itself.
pub(super) fn tree_bottom_up(fs: &dyn CgroupFs, dir: &Path, out: &mut Vec<PathBuf>) {
    for child in fs.subdirs(dir).unwrap_or_default() {
        tree_bottom_up(fs, &child, out);
    }
    out.push(dir.to_owned());
}

/// SIGKILLs every pid listed in `dirs` until they are empty or `wait` passes. Returns whether
/// they emptied. `freezer` (v1 `freezer.state` of a common ancestor) is frozen around each
/// sweep so nothing forks between listing and killing, then thawed so the killed can die.
/// Between sweeps it waits for the killed processes' pidfds (a process leaves its groups
/// before its pidfd turns readable), so a group whose processes all die at once is listed
/// twice: to kill, then to see it empty. Without pidfds it looks again after a pause.
pub(super) fn kill_listed(fs: &dyn CgroupFs, dirs: &[PathBuf], freezer: Option<&Path>, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    let mut pause = Duration::from_micros(50);
    loop {
        let mut any = false;
        let mut dying = Vec::new();
        if let Some(f) = freezer {
            let _ = fs.write(f, "FROZEN");
        }
        for dir in dirs {
            for pid in procs_in(fs, dir) {
                any = true;
                match fs.kill(pid) {
                    Ok(Some(pidfd)) => dying.push(pidfd),
                    Ok(None) => {}
                    Err(e) => tracing::warn!(pid, error = %e, "cannot kill process in cgroup"),
                }
            }
        }
        if let Some(f) = freezer {
            let _ = fs.write(f, "THAWED");
        }
        if !any {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        if dying.is_empty() || !wait_ended(dying, deadline) {
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }
}

/// Waits until every pidfd polls readable (its process ended) or `deadline` passes; false if
/// polling failed (the caller falls back to pausing).
fn wait_ended(mut pidfds: Vec<std::os::fd::OwnedFd>, deadline: Instant) -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec};
    while !pidfds.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true; // the caller sees the deadline
        }
        let timeout = Timespec { tv_sec: left.as_secs() as i64, tv_nsec: i64::from(left.subsec_nanos()) };
        let mut fds: Vec<PollFd<'_>> = pidfds.iter().map(|fd| PollFd::new(fd, PollFlags::IN)).collect();
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return false,
        }
        let ended: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
        drop(fds);
        let mut ended = ended.into_iter();
        pidfds.retain(|_| !ended.next().unwrap_or(false));
    }
    true
}

/// `rmdir` each directory in order, retrying while the kernel still lists (dying) tasks.
pub(super) fn remove_dirs(fs: &dyn CgroupFs, dirs: &[PathBuf], wait: Duration) {
    let deadline = Instant::now() + wait;
    for dir in dirs {
        let mut pause = Duration::from_micros(50);
        loop {
            match fs.rmdir(dir) {
                Ok(()) => break,
                Err(e) if e.is_not_found() => break,
                Err(e) if Instant::now() < deadline => {
                    tracing::trace!(error = %e, "rmdir retry");
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(10));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cgroup left behind; the next start of this instance removes it");
                    break;
                }
            }
        }
    }
}

//! Per-environment control groups: so one function's memory, CPU and process count are capped
//! as Lambda caps them, so an idle environment can be frozen between invocations, and so every
//! process an environment ever started (daemons included) dies with it.
//!
//! Layouts handled (detected from `/proc/self/mountinfo`):
//! - **cgroup2**: one hierarchy; `memory`, `cpu` and `pids` are enabled in `cgroup.subtree_control`
//!   of the mount root and of our parent group.
//! - **hybrid**: v1 hierarchies carry the controllers (`/sys/fs/cgroup/memory`, …) and the
//!   controller-less cgroup2 mount (`/sys/fs/cgroup/unified`) gives the cheap `cgroup.freeze`,
//!   `cgroup.kill` and `cgroup.events`. So an environment is a directory in each of up to four
//!   hierarchies, and a process must enter each of them ([`EnvCgroup::procs_files`]).
//! - **cgroup1** (no cgroup2 mount): as hybrid, with the v1 freezer and kill-by-pid.
//!
//! Groups live at `<mount>/nimbus-<instance>/<env_id>`. The parent sits at the root of each
//! hierarchy (as Docker's cgroupfs driver does), not below the server's own group: on cgroup2 a
//! group holding processes cannot hand controllers down ("no internal processes"), and the
//! server's own group belongs to whoever started it.
//!
//! Invoke-path operations ([`EnvCgroup::freeze`], [`EnvCgroup::thaw`],
//! [`EnvCgroup::peak_memory_bytes`], [`EnvCgroup::oom_killed`]) use descriptors opened at create
//! time: one `pwrite`/`pread` each, no allocation. That is 4 descriptors per environment.
//!
//! Everything touching the kernel goes through [`CgroupFs`], so the layout logic is unit-tested
//! with a recording double, without root.

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Lambda gives one full vCPU at 1,769 MB and scales CPU linearly with memory.
pub const MB_PER_CORE: u64 = 1769;
/// The CPU floor (about 1/16 of a core) so tiny test functions still make progress.
pub const MIN_MILLICORES: u32 = 63;
/// Lambda's limit on processes plus threads per environment.
pub const DEFAULT_PIDS_MAX: u32 = 1024;
/// CFS period used for the CPU quota.
pub const CPU_PERIOD_US: u64 = 100_000;

/// How long `kill_all` waits for killed processes to leave the groups.
const KILL_WAIT: Duration = Duration::from_secs(2);
/// How long `Drop` keeps retrying `rmdir` while the kernel still lists tasks.
const RMDIR_WAIT: Duration = Duration::from_millis(500);

/// Resource limits of one environment. A zero field means "no limit".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Memory limit; memory plus swap is set to the same value, so the group cannot swap.
    pub memory_bytes: u64,
    /// CPU bandwidth in thousandths of a core (1000 = one full core).
    pub cpu_millicores: u32,
    /// Maximum number of processes and threads.
    pub pids_max: u32,
}

impl Limits {
    /// Lambda's rules: CPU proportional to memory (1,769 MB = one core), at least
    /// [`MIN_MILLICORES`]; 1024 processes and threads.
    pub fn for_memory_mb(mb: u32) -> Limits {
        let millicores = u64::from(mb) * 1000 / MB_PER_CORE;
        Limits {
            memory_bytes: u64::from(mb) << 20,
            cpu_millicores: u32::try_from(millicores).unwrap_or(u32::MAX).max(MIN_MILLICORES),
            pids_max: DEFAULT_PIDS_MAX,
        }
    }

    /// CFS quota per [`CPU_PERIOD_US`], at least the kernel's minimum of 1 ms.
    fn cpu_quota_us(&self) -> u64 {
        (u64::from(self.cpu_millicores) * CPU_PERIOD_US / 1000).max(1000)
    }
}

// ---------------------------------------------------------------------------------------------
// Kernel access

/// The cgroupfs operations this module needs. [`KernelCgroupFs`] is the real one; tests use a
/// recording double.
pub trait CgroupFs: Send + Sync + fmt::Debug {
    fn read(&self, path: &Path) -> io::Result<String>;
    /// One `write(2)` of the whole value (cgroupfs takes each write as one command).
    fn write(&self, path: &Path, value: &str) -> io::Result<()>;
    fn mkdir(&self, path: &Path) -> io::Result<()>;
    fn rmdir(&self, path: &Path) -> io::Result<()>;
    fn exists(&self, path: &Path) -> bool;
    /// Immediate subdirectories (child groups).
    fn subdirs(&self, path: &Path) -> io::Result<Vec<PathBuf>>;
    /// Opens a file for repeated reads or writes on the invoke path.
    fn open(&self, path: &Path, writable: bool) -> io::Result<Box<dyn CgroupFile>>;
    /// Sends SIGKILL to a process (ours to send: it is in one of our groups).
    fn kill(&self, pid: u32) -> io::Result<()>;
}

/// An open cgroupfs file: each call is one positioned read or write at offset 0, which makes
/// the kernel regenerate (or re-parse) the whole value.
pub trait CgroupFile: Send + Sync + fmt::Debug {
    fn write(&self, value: &[u8]) -> io::Result<()>;
    fn read(&self, buf: &mut [u8]) -> io::Result<usize>;
}

/// [`CgroupFs`] on the real kernel.
#[derive(Debug, Default)]
pub struct KernelCgroupFs;

fn with_path(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

impl CgroupFs for KernelCgroupFs {
    fn read(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path).map_err(|e| with_path(e, "read", path))
    }

    fn write(&self, path: &Path, value: &str) -> io::Result<()> {
        let fd = rustix::fs::open(path, rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC, rustix::fs::Mode::empty())
            .map_err(|e| with_path(e.into(), "open", path))?;
        let n = rustix::io::write(&fd, value.as_bytes()).map_err(|e| with_path(e.into(), &format!("write {value:?} to"), path))?;
        if n != value.len() {
            return Err(io::Error::new(io::ErrorKind::WriteZero, format!("short write to {}", path.display())));
        }
        Ok(())
    }

    fn mkdir(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir(path).map_err(|e| with_path(e, "mkdir", path))
    }

    fn rmdir(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir(path).map_err(|e| with_path(e, "rmdir", path))
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn subdirs(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        let mut dirs = Vec::new();
        for entry in std::fs::read_dir(path).map_err(|e| with_path(e, "list", path))? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                dirs.push(entry.path());
            }
        }
        dirs.sort();
        Ok(dirs)
    }

    fn open(&self, path: &Path, writable: bool) -> io::Result<Box<dyn CgroupFile>> {
        use rustix::fs::OFlags;
        let access = if writable { OFlags::RDWR } else { OFlags::RDONLY };
        let fd =
            rustix::fs::open(path, access | OFlags::CLOEXEC, rustix::fs::Mode::empty()).map_err(|e| with_path(e.into(), "open", path))?;
        Ok(Box::new(KernelCgroupFile { fd, path: path.to_owned() }))
    }

    fn kill(&self, pid: u32) -> io::Result<()> {
        let pid = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("bad pid {pid}")))?;
        match rustix::process::kill_process(pid, rustix::process::Signal::KILL) {
            Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[derive(Debug)]
struct KernelCgroupFile {
    fd: OwnedFd,
    /// Kept for error messages only.
    path: PathBuf,
}

impl CgroupFile for KernelCgroupFile {
    fn write(&self, value: &[u8]) -> io::Result<()> {
        rustix::io::pwrite(&self.fd, value, 0).map_err(|e| with_path(e.into(), "write", &self.path))?;
        Ok(())
    }

    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        rustix::io::pread(&self.fd, buf, 0).map_err(|e| with_path(e.into(), "read", &self.path))
    }
}

/// Moves the calling process into an environment's groups by writing `0` ("myself") to each of
/// its `cgroup.procs` files. Meant for the sandboxed child, first thing after fork (it allocates
/// nothing for paths under 256 bytes, so it may run in `pre_exec`). Call it before
/// `unshare(CLONE_NEWCGROUP)` (the kernel refuses moves to groups outside the caller's cgroup
/// namespace) and before changing the root (the paths are the host's).
pub fn enter_current_process(procs_files: &[PathBuf]) -> io::Result<()> {
    use rustix::fs::OFlags;
    for path in procs_files {
        let fd = rustix::fs::open(path.as_path(), OFlags::WRONLY | OFlags::CLOEXEC, rustix::fs::Mode::empty())?;
        rustix::io::write(&fd, b"0")?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Layout detection

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// What `/proc/self/mountinfo` says about cgroup mounts.
#[derive(Debug, Default, PartialEq, Eq)]
struct Mounts {
    v2: Option<PathBuf>,
    /// v1 mount points with their controllers (e.g. `cpu`, `cpuacct` when co-mounted).
    v1: Vec<(PathBuf, Vec<String>)>,
}

fn unescape_mount_path(s: &str) -> PathBuf {
    // mountinfo escapes space, tab, newline and backslash as \ooo.
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() && bytes[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b)) {
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

fn parse_mountinfo(text: &str) -> Mounts {
    let mut mounts = Mounts::default();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == "-") else { continue };
        let (Some(mount_point), Some(fstype), Some(super_opts)) = (fields.get(4), fields.get(sep + 1), fields.get(sep + 3)) else {
            continue;
        };
        let mount_point = unescape_mount_path(mount_point);
        match *fstype {
            "cgroup2" if mounts.v2.is_none() => mounts.v2 = Some(mount_point),
            "cgroup" => {
                let controllers: Vec<String> =
                    super_opts.split(',').filter(|o| !matches!(*o, "rw" | "ro") && !o.contains('=')).map(str::to_owned).collect();
                // Bind mounts of the same hierarchy: keep the first.
                if !controllers.is_empty() && !mounts.v1.iter().any(|(_, c)| *c == controllers) {
                    mounts.v1.push((mount_point, controllers));
                }
            }
            _ => {}
        }
    }
    mounts
}

/// One hierarchy we use, and what for.
#[derive(Debug, Clone)]
struct Hierarchy {
    version: Version,
    mount: PathBuf,
    /// `<mount>/nimbus-<instance>`.
    parent: PathBuf,
    memory: bool,
    cpu: bool,
    pids: bool,
    freezer: bool,
}

impl Hierarchy {
    fn new(version: Version, mount: &Path, parent_name: &str) -> Hierarchy {
        Hierarchy {
            version,
            mount: mount.to_owned(),
            parent: mount.join(parent_name),
            memory: false,
            cpu: false,
            pids: false,
            freezer: false,
        }
    }

    fn set(&mut self, controller: &str) {
        match controller {
            "memory" => self.memory = true,
            "cpu" => self.cpu = true,
            "pids" => self.pids = true,
            "freezer" => self.freezer = true,
            _ => {}
        }
    }
}

/// The detected layout, shared by the manager and every environment (the parents are removed
/// when the last of them is gone).
#[derive(Debug)]
struct Layout {
    fs: Arc<dyn CgroupFs>,
    mode: &'static str,
    /// The cgroup2 hierarchy first, if used.
    hierarchies: Vec<Hierarchy>,
    /// cgroup2 `cgroup.kill` is available (Linux 5.14+).
    v2_kill: bool,
}

impl Drop for Layout {
    fn drop(&mut self) {
        for h in &self.hierarchies {
            if let Err(e) = self.fs.rmdir(&h.parent) {
                tracing::debug!(error = %e, "cgroup parent not removed");
            }
        }
    }
}

/// Names become directory names: keep them to one harmless path component.
fn check_name(what: &str, name: &str) -> io::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(io::Error::new(io::ErrorKind::InvalidInput, format!("invalid cgroup {what} {name:?}: use [A-Za-z0-9._-], no leading dot")))
    }
}

/// Detected cgroup layout; created once at server start.
#[derive(Debug)]
pub struct CgroupManager {
    layout: Arc<Layout>,
}

impl CgroupManager {
    /// Detects cgroup2 / hybrid / cgroup1, removes what a previous run of the same `instance`
    /// left behind (killing its processes), and creates the parent groups `nimbus-<instance>`.
    /// `instance` keeps two servers on one host apart (e.g. a hash of the data directory).
    /// `Err` says why cgroups cannot be used (not Linux, not root, read-only, no controllers).
    pub fn open(instance: &str) -> Result<CgroupManager, String> {
        if !cfg!(target_os = "linux") {
            return Err("cgroups need Linux".to_owned());
        }
        let fs: Arc<dyn CgroupFs> = Arc::new(KernelCgroupFs);
        let mountinfo = fs.read(Path::new("/proc/self/mountinfo")).map_err(|e| e.to_string())?;
        Self::open_with(instance, fs, &mountinfo)
    }

    /// [`CgroupManager::open`] on a given filesystem and mount table (for tests).
    pub fn open_with(instance: &str, fs: Arc<dyn CgroupFs>, mountinfo: &str) -> Result<CgroupManager, String> {
        check_name("instance", instance).map_err(|e| e.to_string())?;
        let parent_name = format!("nimbus-{instance}");
        let mounts = parse_mountinfo(mountinfo);

        // Each needed controller from a v1 hierarchy if it is mounted there, else from cgroup2.
        let v2_available: BTreeSet<String> = match &mounts.v2 {
            Some(m) => {
                fs.read(&m.join("cgroup.controllers")).map(|s| s.split_whitespace().map(str::to_owned).collect()).unwrap_or_default()
            }
            None => BTreeSet::new(),
        };
        let mut v2 = mounts.v2.as_ref().map(|m| Hierarchy::new(Version::V2, m, &parent_name));
        let mut v1: Vec<Hierarchy> = Vec::new();
        let mut missing = Vec::new();
        for controller in ["memory", "cpu", "pids"] {
            if let Some((mount, _)) = mounts.v1.iter().find(|(_, c)| c.iter().any(|c| c == controller)) {
                match v1.iter_mut().find(|h| h.mount == *mount) {
                    Some(h) => h.set(controller),
                    None => {
                        let mut h = Hierarchy::new(Version::V1, mount, &parent_name);
                        h.set(controller);
                        v1.push(h);
                    }
                }
            } else if let (Some(h), true) = (v2.as_mut(), v2_available.contains(controller)) {
                h.set(controller);
            } else {
                missing.push(controller);
            }
        }
        if !missing.is_empty() {
            return Err(match (&mounts.v2, mounts.v1.is_empty()) {
                (None, true) => "no cgroup filesystem is mounted".to_owned(),
                _ => format!(
                    "cgroup controller(s) {} not available (neither a v1 mount nor in cgroup2's cgroup.controllers)",
                    missing.join(", ")
                ),
            });
        }

        // cgroup2 at the mount root: hand our controllers down (a no-op where already enabled).
        if let (Some(h), Some(mount)) = (&v2, &mounts.v2) {
            let wanted = v2_controllers(h);
            if !wanted.is_empty() {
                let path = mount.join("cgroup.subtree_control");
                let enabled = fs.read(&path).unwrap_or_default();
                let todo: Vec<&str> = wanted.iter().copied().filter(|c| !enabled.split_whitespace().any(|e| e == *c)).collect();
                if !todo.is_empty() {
                    let value = todo.iter().map(|c| format!("+{c}")).collect::<Vec<_>>().join(" ");
                    fs.write(&path, &value).map_err(|e| format!("cannot enable cgroup2 controllers: {e}"))?;
                }
            }
        }

        // Parents are created one by one into `layout`; dropping it on an error removes them.
        let mut layout = Layout { fs: fs.clone(), mode: "cgroup2", hierarchies: Vec::new(), v2_kill: false };
        for h in v2.into_iter().chain(v1) {
            purge_tree(fs.as_ref(), &h.parent, h.version);
            fs.mkdir(&h.parent).map_err(|e| format!("cannot create cgroups ({e}); they need root and a writable cgroupfs"))?;
            layout.hierarchies.push(h);
        }

        if let Some(h) = layout.hierarchies.iter_mut().find(|h| h.version == Version::V2) {
            let wanted = v2_controllers(h);
            if !wanted.is_empty() {
                let value = wanted.iter().map(|c| format!("+{c}")).collect::<Vec<_>>().join(" ");
                fs.write(&h.parent.join("cgroup.subtree_control"), &value)
                    .map_err(|e| format!("cannot enable cgroup2 controllers: {e}"))?;
            }
            h.freezer = fs.exists(&h.parent.join("cgroup.freeze"));
            layout.v2_kill = fs.exists(&h.parent.join("cgroup.kill"));
        }
        let v2_freezer = layout.hierarchies.iter().any(|h| h.version == Version::V2 && h.freezer);
        if !v2_freezer {
            // Old kernels or no cgroup2: the v1 freezer, if mounted.
            if let Some((mount, _)) = mounts.v1.iter().find(|(_, c)| c.iter().any(|c| c == "freezer")) {
                match layout.hierarchies.iter_mut().find(|h| h.version == Version::V1 && h.mount == *mount) {
                    Some(h) => h.freezer = true,
                    None => {
                        let mut h = Hierarchy::new(Version::V1, mount, &parent_name);
                        h.freezer = true;
                        purge_tree(fs.as_ref(), &h.parent, h.version);
                        match fs.mkdir(&h.parent) {
                            Ok(()) => layout.hierarchies.push(h),
                            Err(e) => tracing::warn!(error = %e, "v1 freezer unusable; environments cannot be frozen"),
                        }
                    }
                }
            }
        }
        // A cgroup2 hierarchy that carries nothing we use is dropped again.
        let v2_kill = layout.v2_kill;
        let useless = |h: &Hierarchy| h.version == Version::V2 && !(h.memory || h.cpu || h.pids || h.freezer || v2_kill);
        for h in layout.hierarchies.iter().filter(|h| useless(h)) {
            let _ = fs.rmdir(&h.parent);
        }
        layout.hierarchies.retain(|h| !useless(h));
        let hierarchies = &layout.hierarchies;
        let uses_v1 = hierarchies.iter().any(|h| h.version == Version::V1);
        let uses_v2 = hierarchies.iter().any(|h| h.version == Version::V2);
        layout.mode = match (uses_v1, uses_v2) {
            (false, _) => "cgroup2",
            (true, true) => "hybrid",
            (true, false) => "cgroup1",
        };
        if uses_v1 && !mountinfo.contains("favordynmods") {
            tracing::debug!("cgroup v1 moves may wait for an RCU grace period (ms); mounting cgroup2 with favordynmods avoids it");
        }
        tracing::info!(mode = layout.mode, groups = ?layout.hierarchies.iter().map(|h| &h.parent).collect::<Vec<_>>(), "cgroups ready");
        Ok(CgroupManager { layout: Arc::new(layout) })
    }

    /// `"cgroup2"`, `"hybrid"` (v1 controllers plus cgroup2 for freeze/kill) or `"cgroup1"`.
    pub fn mode(&self) -> &'static str {
        self.layout.mode
    }

    /// Creates one environment's groups with its limits: memory (and memory+swap equal, so it
    /// cannot swap), CPU quota per period, pids.max. Then opens the files the invoke path uses.
    pub fn create(&self, env_id: &str, limits: &Limits) -> io::Result<EnvCgroup> {
        check_name("environment id", env_id)?;
        let layout = &self.layout;
        let fs = layout.fs.as_ref();
        let mut env = EnvCgroup {
            layout: layout.clone(),
            dirs: Vec::with_capacity(layout.hierarchies.len()),
            procs: Vec::with_capacity(layout.hierarchies.len()),
            kill_file: None,
            freezer: None,
            peak: None,
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
                    Err(e) if e.kind() == io::ErrorKind::NotFound && OPTIONAL_FILES.contains(&file) => {
                        tracing::debug!(file, "optional cgroup file missing");
                    }
                    Err(e) => return Err(e),
                }
            }
            if h.memory {
                let (peak, oom) = match h.version {
                    Version::V2 => ("memory.peak", "memory.events"),
                    Version::V1 => ("memory.max_usage_in_bytes", "memory.oom_control"),
                };
                // memory.peak needs Linux 5.19.
                env.peak = fs.open(&dir.join(peak), false).map_err(|e| tracing::debug!(error = %e, "no peak memory")).ok();
                env.oom = Some(fs.open(&dir.join(oom), false)?);
            }
            if h.freezer {
                env.freezer = Some(match h.version {
                    Version::V2 => Freezer::V2 {
                        freeze: fs.open(&dir.join("cgroup.freeze"), true)?,
                        events: fs.open(&dir.join("cgroup.events"), false)?,
                    },
                    Version::V1 => Freezer::V1 { state: fs.open(&dir.join("freezer.state"), true)? },
                });
            }
            if h.version == Version::V2 && layout.v2_kill {
                env.kill_file = Some(dir.join("cgroup.kill"));
            }
        }
        Ok(env)
    }
}

/// cgroup v1 `cpu.shares` of an environment (the default group has 1,024).
const ENV_CPU_SHARES: u32 = 128;
/// cgroup2 `cpu.weight` of an environment (the default is 100).
const ENV_CPU_WEIGHT: u32 = 13;

/// Files whose absence only means the kernel lacks a feature we can live without.
const OPTIONAL_FILES: &[&str] = &["memory.memsw.limit_in_bytes", "memory.swap.max", "memory.oom.group", "cpu.shares", "cpu.weight"];

fn v2_controllers(h: &Hierarchy) -> Vec<&'static str> {
    let mut c = Vec::new();
    if h.memory {
        c.push("memory");
    }
    if h.cpu {
        c.push("cpu");
    }
    if h.pids {
        c.push("pids");
    }
    c
}

/// The (file, value) writes that apply `limits` to a new group of hierarchy `h`, in order.
fn limit_writes(h: &Hierarchy, limits: &Limits) -> Vec<(&'static str, String)> {
    let mut w = Vec::new();
    match h.version {
        Version::V2 => {
            if h.memory {
                let max = if limits.memory_bytes == 0 { "max".to_owned() } else { limits.memory_bytes.to_string() };
                w.push(("memory.max", max));
                // memory.swap.max counts swap alone: 0 makes memory+swap equal the limit.
                w.push(("memory.swap.max", "0".to_owned()));
                // On OOM kill the whole environment, not a random process in it (Lambda resets it).
                w.push(("memory.oom.group", "1".to_owned()));
            }
            if h.cpu {
                w.push(("cpu.weight", ENV_CPU_WEIGHT.to_string()));
                let quota = if limits.cpu_millicores == 0 { "max".to_owned() } else { limits.cpu_quota_us().to_string() };
                w.push(("cpu.max", format!("{quota} {CPU_PERIOD_US}")));
            }
            if h.pids {
                w.push(("pids.max", if limits.pids_max == 0 { "max".to_owned() } else { limits.pids_max.to_string() }));
            }
        }
        Version::V1 => {
            if h.memory && limits.memory_bytes != 0 {
                // memsw must stay >= the memory limit, so the memory limit goes first.
                w.push(("memory.limit_in_bytes", limits.memory_bytes.to_string()));
                w.push(("memory.memsw.limit_in_bytes", limits.memory_bytes.to_string()));
            }
            if h.cpu {
                // The server's own work (it answers callers and routes every event) must not
                // lose to busy functions: environments weigh an eighth of a default group.
                w.push(("cpu.shares", ENV_CPU_SHARES.to_string()));
            }
            if h.cpu && limits.cpu_millicores != 0 {
                w.push(("cpu.cfs_period_us", CPU_PERIOD_US.to_string()));
                w.push(("cpu.cfs_quota_us", limits.cpu_quota_us().to_string()));
            }
            if h.pids {
                w.push(("pids.max", if limits.pids_max == 0 { "max".to_owned() } else { limits.pids_max.to_string() }));
            }
        }
    }
    w
}

// ---------------------------------------------------------------------------------------------
// Killing and removing

/// Pids listed in `<dir>/cgroup.procs`; garbage lines are skipped (kernel input).
fn procs_in(fs: &dyn CgroupFs, dir: &Path) -> Vec<u32> {
    fs.read(&dir.join("cgroup.procs")).map(|s| s.split_whitespace().filter_map(|p| p.parse().ok()).collect()).unwrap_or_default()
}

/// All group directories below `dir` (children before their parents), then `dir` itself.
fn tree_bottom_up(fs: &dyn CgroupFs, dir: &Path, out: &mut Vec<PathBuf>) {
    for child in fs.subdirs(dir).unwrap_or_default() {
        tree_bottom_up(fs, &child, out);
    }
    out.push(dir.to_owned());
}

/// SIGKILLs every pid listed in `dirs` until they are empty or `wait` passes. Returns whether
/// they emptied. `freezer` (v1 `freezer.state` of a common ancestor) is frozen around each
/// sweep so nothing forks between listing and killing, then thawed so the killed can die.
fn kill_listed(fs: &dyn CgroupFs, dirs: &[PathBuf], freezer: Option<&Path>, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    let mut pause = Duration::from_micros(50);
    loop {
        let mut any = false;
        if let Some(f) = freezer {
            let _ = fs.write(f, "FROZEN");
        }
        for dir in dirs {
            for pid in procs_in(fs, dir) {
                any = true;
                if let Err(e) = fs.kill(pid) {
                    tracing::warn!(pid, error = %e, "cannot kill process in cgroup");
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
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

/// `rmdir` each directory in order, retrying while the kernel still lists (dying) tasks.
fn remove_dirs(fs: &dyn CgroupFs, dirs: &[PathBuf], wait: Duration) {
    let deadline = Instant::now() + wait;
    for dir in dirs {
        let mut pause = Duration::from_micros(50);
        loop {
            match fs.rmdir(dir) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound => break,
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

/// Removes a previous run's `<mount>/nimbus-<instance>` tree, killing its processes.
fn purge_tree(fs: &dyn CgroupFs, parent: &Path, version: Version) {
    if !fs.exists(parent) {
        return;
    }
    tracing::info!(dir = %parent.display(), "removing cgroups left by a previous run");
    if version == Version::V2 {
        let _ = fs.write(&parent.join("cgroup.kill"), "1");
    }
    let mut dirs = Vec::new();
    tree_bottom_up(fs, parent, &mut dirs);
    let freezer = parent.join("freezer.state");
    let freezer = (version == Version::V1 && fs.exists(&freezer)).then_some(freezer.as_path());
    if version == Version::V2 {
        // A leftover frozen group: killed tasks die anyway in v2, but thaw for good measure.
        let _ = fs.write(&parent.join("cgroup.freeze"), "0");
    }
    kill_listed(fs, &dirs, freezer, KILL_WAIT);
    remove_dirs(fs, &dirs, RMDIR_WAIT);
}

// ---------------------------------------------------------------------------------------------
// One environment

#[derive(Debug)]
enum Freezer {
    V2 { freeze: Box<dyn CgroupFile>, events: Box<dyn CgroupFile> },
    V1 { state: Box<dyn CgroupFile> },
}

/// One environment's groups (one directory per hierarchy). Dropping it kills every process in
/// them and removes the directories.
#[derive(Debug)]
pub struct EnvCgroup {
    layout: Arc<Layout>,
    /// Same order as `layout.hierarchies`.
    dirs: Vec<PathBuf>,
    procs: Vec<PathBuf>,
    kill_file: Option<PathBuf>,
    freezer: Option<Freezer>,
    peak: Option<Box<dyn CgroupFile>>,
    oom: Option<Box<dyn CgroupFile>>,
}

/// Finds `key value` in a flat-keyed cgroup file (`memory.events`, `cgroup.events`, …).
fn keyed_value(text: &[u8], key: &str) -> Option<u64> {
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
    /// The `cgroup.procs` files a process writes itself into (one per hierarchy) to enter this
    /// environment; see [`enter_current_process`]. The cgroup2 one comes first.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.procs.clone()
    }

    /// Applies new limits to a live environment (a prestarted one assigned to a function
    /// whose memory differs from the default it was started with).
    pub fn set_limits(&self, limits: &Limits) -> io::Result<()> {
        for (h, dir) in self.layout.hierarchies.iter().zip(&self.dirs) {
            let mut writes = limit_writes(h, limits);
            if h.version == Version::V1 && h.memory && limits.memory_bytes != 0 {
                // Raising a v1 limit: memsw (>= memory) must grow first; lowering: memory first.
                let current = self.layout.fs.read(&dir.join("memory.limit_in_bytes")).ok().and_then(|s| s.trim().parse::<u64>().ok());
                if current.is_some_and(|c| limits.memory_bytes > c) {
                    writes.swap(0, 1);
                }
            }
            for (file, value) in writes {
                match self.layout.fs.write(&dir.join(file), &value) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound && OPTIONAL_FILES.contains(&file) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// Moves a process in from outside (for the non-jailed path). Its children started later
    /// follow it; ones it already has do not.
    pub fn add_pid(&self, pid: u32) -> io::Result<()> {
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
    pub fn freeze(&self) -> io::Result<()> {
        match &self.freezer {
            Some(Freezer::V2 { freeze, .. }) => freeze.write(b"1"),
            Some(Freezer::V1 { state }) => state.write(b"FROZEN"),
            None => Err(io::Error::new(io::ErrorKind::Unsupported, "no cgroup freezer on this host")),
        }
    }

    /// Whether the kernel reports every process frozen (cgroup2 `cgroup.events`, v1
    /// `freezer.state`, whose read is also what moves v1 from FREEZING to FROZEN). One read.
    pub fn is_frozen(&self) -> bool {
        let mut buf = [0u8; 64];
        match &self.freezer {
            Some(Freezer::V2 { events, .. }) => events.read(&mut buf).is_ok_and(|n| keyed_value(&buf[..n], "frozen") == Some(1)),
            Some(Freezer::V1 { state }) => state.read(&mut buf).is_ok_and(|n| buf[..n].starts_with(b"FROZEN")),
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
    pub fn thaw(&self) -> io::Result<()> {
        match &self.freezer {
            Some(Freezer::V2 { freeze, .. }) => freeze.write(b"0"),
            Some(Freezer::V1 { state }) => state.write(b"THAWED"),
            None => Err(io::Error::new(io::ErrorKind::Unsupported, "no cgroup freezer on this host")),
        }
    }

    /// Peak memory use of the group since it was created, in bytes (v2 `memory.peak`, v1
    /// `memory.max_usage_in_bytes`). `None` when the kernel does not tell.
    pub fn peak_memory_bytes(&self) -> Option<u64> {
        let mut buf = [0u8; 32];
        let n = self.peak.as_ref()?.read(&mut buf).ok()?;
        std::str::from_utf8(&buf[..n]).ok()?.trim().parse().ok()
    }

    /// How many times the kernel's OOM killer killed a process in this group (v2
    /// `memory.events`, v1 `memory.oom_control`). Compare before and after an invocation to
    /// tell whether that invocation ran out of memory.
    pub fn oom_kill_count(&self) -> Option<u64> {
        let mut buf = [0u8; 512];
        let n = self.oom.as_ref()?.read(&mut buf).ok()?;
        keyed_value(&buf[..n], "oom_kill")
    }

    /// True if the kernel OOM-killed something in this group.
    pub fn oom_killed(&self) -> bool {
        self.oom_kill_count().unwrap_or(0) > 0
    }

    /// Kills every process in the groups (also ones ignoring SIGTERM, frozen ones and forked
    /// daemons) and waits until they are gone: cgroup2 `cgroup.kill`, else freeze, SIGKILL each
    /// listed pid, thaw. The groups are left thawed and empty.
    pub fn kill_all(&self) {
        let fs = self.layout.fs.as_ref();
        if let Some(kill) = &self.kill_file {
            if let Err(e) = fs.write(kill, "1") {
                tracing::warn!(error = %e, "cgroup.kill failed; killing by pid");
            }
        }
        // Without cgroup.kill a freezer keeps forks from racing the sweep. (A frozen cgroup2
        // group still lets SIGKILL through; a frozen v1 one does not, hence the thaw inside.)
        let v1_freezer = self.layout.hierarchies.iter().zip(&self.dirs).find(|(h, _)| h.freezer && h.version == Version::V1);
        let freezer = v1_freezer.map(|(_, d)| d.join("freezer.state"));
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
        self.kill_all();
        let fs = self.layout.fs.as_ref();
        let mut dirs = Vec::new();
        for dir in &self.dirs {
            // A function with a delegated cgroup namespace may have made subgroups.
            tree_bottom_up(fs, dir, &mut dirs);
        }
        remove_dirs(fs, &dirs, RMDIR_WAIT);
    }
}

// ---------------------------------------------------------------------------------------------

/// A [`CgroupFs`] in memory that records every change, with just enough kernel behaviour
/// (`cgroup.kill`, `cgroup.freeze`, `cgroup.procs`, busy `rmdir`) for the logic above to run.
#[cfg(test)]
mod recording {
    use super::{CgroupFile, CgroupFs};
    use std::collections::{BTreeMap, BTreeSet};
    use std::io;
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, Mutex};

    #[derive(Debug, Default)]
    struct State {
        dirs: BTreeSet<PathBuf>,
        files: BTreeMap<PathBuf, String>,
        /// Files the "kernel" puts in each new group below a mount.
        templates: Vec<(PathBuf, Vec<(&'static str, &'static str)>)>,
        ops: Vec<String>,
        mkdir_error: Option<io::ErrorKind>,
    }

    #[derive(Debug, Default, Clone)]
    pub struct RecordingFs(Arc<Mutex<State>>);

    impl RecordingFs {
        fn state(&self) -> std::sync::MutexGuard<'_, State> {
            self.0.lock().expect("test double lock")
        }

        /// A mounted hierarchy: its root files, and the files each new group gets.
        pub fn hierarchy(&self, mount: &str, root: &[(&'static str, &'static str)], group: &[(&'static str, &'static str)]) -> &Self {
            let mut s = self.state();
            s.dirs.insert(PathBuf::from(mount));
            for (f, v) in root {
                s.files.insert(Path::new(mount).join(f), (*v).to_owned());
            }
            s.templates.push((PathBuf::from(mount), group.to_vec()));
            self
        }

        /// A group that already exists (a previous run's leftover), with its processes.
        pub fn group(&self, dir: &str, procs: &str) -> &Self {
            self.make_dir(Path::new(dir));
            self.state().files.insert(Path::new(dir).join("cgroup.procs"), procs.to_owned());
            self
        }

        pub fn set(&self, path: &str, content: &str) {
            self.state().files.insert(PathBuf::from(path), content.to_owned());
        }

        pub fn get(&self, path: &str) -> Option<String> {
            self.state().files.get(Path::new(path)).cloned()
        }

        pub fn fail_mkdir(&self, kind: io::ErrorKind) {
            self.state().mkdir_error = Some(kind);
        }

        pub fn take_ops(&self) -> Vec<String> {
            std::mem::take(&mut self.state().ops)
        }

        fn make_dir(&self, path: &Path) {
            let mut s = self.state();
            s.dirs.insert(path.to_owned());
            let template = s.templates.iter().find(|(m, _)| path.starts_with(m)).map(|(_, t)| t.clone()).unwrap_or_default();
            for (f, v) in template {
                s.files.insert(path.join(f), v.to_owned());
            }
        }
    }

    impl CgroupFs for RecordingFs {
        fn read(&self, path: &Path) -> io::Result<String> {
            self.state().files.get(path).cloned().ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
        }

        fn write(&self, path: &Path, value: &str) -> io::Result<()> {
            let mut s = self.state();
            if !s.files.contains_key(path) {
                return Err(io::Error::new(io::ErrorKind::NotFound, format!("no {}", path.display())));
            }
            s.ops.push(format!("write {} {value}", path.display()));
            let dir = path.parent().expect("file in a dir").to_owned();
            match path.file_name().and_then(|n| n.to_str()) {
                Some("cgroup.procs") => {
                    let f = s.files.get_mut(path).expect("checked");
                    f.push_str(value);
                    f.push('\n');
                }
                Some("cgroup.kill") => {
                    for (p, v) in s.files.iter_mut() {
                        if p.starts_with(&dir) && p.ends_with("cgroup.procs") {
                            v.clear();
                        }
                    }
                }
                Some("cgroup.freeze") => {
                    s.files.insert(dir.join("cgroup.events"), format!("populated 0\nfrozen {value}\n"));
                }
                _ => {
                    s.files.insert(path.to_owned(), value.to_owned());
                }
            }
            Ok(())
        }

        fn mkdir(&self, path: &Path) -> io::Result<()> {
            {
                let mut s = self.state();
                if let Some(kind) = s.mkdir_error {
                    return Err(io::Error::from(kind));
                }
                if s.dirs.contains(path) {
                    return Err(io::Error::from(io::ErrorKind::AlreadyExists));
                }
                if !path.parent().is_some_and(|p| s.dirs.contains(p)) {
                    return Err(io::Error::from(io::ErrorKind::NotFound));
                }
                s.ops.push(format!("mkdir {}", path.display()));
            }
            self.make_dir(path);
            Ok(())
        }

        fn rmdir(&self, path: &Path) -> io::Result<()> {
            let mut s = self.state();
            if !s.dirs.contains(path) {
                return Err(io::Error::from(io::ErrorKind::NotFound));
            }
            let busy = s.dirs.iter().any(|d| d.parent() == Some(path))
                || s.files.get(&path.join("cgroup.procs")).is_some_and(|p| !p.trim().is_empty());
            if busy {
                return Err(io::Error::from_raw_os_error(libc::EBUSY));
            }
            s.ops.push(format!("rmdir {}", path.display()));
            s.dirs.remove(path);
            s.files.retain(|p, _| p.parent() != Some(path));
            Ok(())
        }

        fn exists(&self, path: &Path) -> bool {
            let s = self.state();
            s.dirs.contains(path) || s.files.contains_key(path)
        }

        fn subdirs(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
            Ok(self.state().dirs.iter().filter(|d| d.parent() == Some(path)).cloned().collect())
        }

        fn open(&self, path: &Path, _writable: bool) -> io::Result<Box<dyn CgroupFile>> {
            if !self.state().files.contains_key(path) {
                return Err(io::Error::from(io::ErrorKind::NotFound));
            }
            Ok(Box::new(RecordingFile { fs: self.clone(), path: path.to_owned() }))
        }

        fn kill(&self, pid: u32) -> io::Result<()> {
            let mut s = self.state();
            s.ops.push(format!("kill {pid}"));
            let pid = pid.to_string();
            for (p, v) in s.files.iter_mut() {
                if p.ends_with("cgroup.procs") {
                    *v = v.split_whitespace().filter(|x| *x != pid).map(|x| format!("{x}\n")).collect();
                }
            }
            Ok(())
        }
    }

    #[derive(Debug)]
    struct RecordingFile {
        fs: RecordingFs,
        path: PathBuf,
    }

    impl CgroupFile for RecordingFile {
        fn write(&self, value: &[u8]) -> io::Result<()> {
            self.fs.write(&self.path, std::str::from_utf8(value).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?)
        }

        fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
            let content = self.fs.read(&self.path)?;
            let n = content.len().min(buf.len());
            buf[..n].copy_from_slice(&content.as_bytes()[..n]);
            Ok(n)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::recording::RecordingFs;
    use super::*;

    const HYBRID_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const V2_MOUNTINFO: &str = "\
25 1 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";
    const V1_MOUNTINFO: &str = "\
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:1 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
";

    const PROCS: (&str, &str) = ("cgroup.procs", "");

    /// This machine: v1 controllers, controller-less cgroup2 at /sys/fs/cgroup/unified.
    fn hybrid_fs() -> RecordingFs {
        let fs = RecordingFs::default();
        fs.hierarchy(
            "/sys/fs/cgroup/unified",
            &[("cgroup.controllers", "hugetlb\n"), ("cgroup.subtree_control", "")],
            &[
                PROCS,
                ("cgroup.freeze", "0\n"),
                ("cgroup.events", "populated 0\nfrozen 0\n"),
                ("cgroup.kill", ""),
                ("cgroup.subtree_control", ""),
            ],
        )
        .hierarchy(
            "/sys/fs/cgroup/memory",
            &[],
            &[
                PROCS,
                ("memory.limit_in_bytes", "9223372036854771712\n"),
                ("memory.memsw.limit_in_bytes", "9223372036854771712\n"),
                ("memory.max_usage_in_bytes", "0\n"),
                ("memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n"),
            ],
        )
        .hierarchy("/sys/fs/cgroup/cpu", &[], &[PROCS, ("cpu.cfs_period_us", "100000\n"), ("cpu.cfs_quota_us", "-1\n")])
        .hierarchy("/sys/fs/cgroup/pids", &[], &[PROCS, ("pids.max", "max\n")])
        .hierarchy("/sys/fs/cgroup/freezer", &[], &[PROCS, ("freezer.state", "THAWED\n")]);
        fs
    }

    fn v2_fs() -> RecordingFs {
        let fs = RecordingFs::default();
        fs.hierarchy(
            "/sys/fs/cgroup",
            &[("cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n"), ("cgroup.subtree_control", "cpu memory\n")],
            &[
                PROCS,
                ("cgroup.freeze", "0\n"),
                ("cgroup.events", "populated 0\nfrozen 0\n"),
                ("cgroup.kill", ""),
                ("cgroup.subtree_control", ""),
                ("memory.max", "max\n"),
                ("memory.swap.max", "max\n"),
                ("memory.oom.group", "0\n"),
                ("memory.peak", "0\n"),
                ("memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n"),
                ("cpu.max", "max 100000\n"),
                ("pids.max", "max\n"),
            ],
        );
        fs
    }

    /// Legacy v1: cpu co-mounted with cpuacct, no swap accounting, no cgroup2.
    fn v1_fs() -> RecordingFs {
        let fs = RecordingFs::default();
        fs.hierarchy("/sys/fs/cgroup/cpu,cpuacct", &[], &[PROCS, ("cpu.cfs_period_us", "100000\n"), ("cpu.cfs_quota_us", "-1\n")])
            .hierarchy(
                "/sys/fs/cgroup/memory",
                &[],
                &[
                    PROCS,
                    ("memory.limit_in_bytes", "9223372036854771712\n"),
                    ("memory.max_usage_in_bytes", "0\n"),
                    ("memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n"),
                ],
            )
            .hierarchy("/sys/fs/cgroup/pids", &[], &[PROCS, ("pids.max", "max\n")])
            .hierarchy("/sys/fs/cgroup/freezer", &[], &[PROCS, ("freezer.state", "THAWED\n")]);
        fs
    }

    fn open(fs: &RecordingFs, mountinfo: &str) -> CgroupManager {
        CgroupManager::open_with("t", Arc::new(fs.clone()), mountinfo).expect("open")
    }

    /// Environments are handed between tasks and threads.
    const _: () = {
        const fn send_sync<T: Send + Sync>() {}
        send_sync::<CgroupManager>();
        send_sync::<EnvCgroup>();
    };

    #[test]
    fn cgroup_limits_follow_lambda() {
        fn check(mb: u32, millicores: u32, quota_us: u64) {
            let l = Limits::for_memory_mb(mb);
            assert_eq!((l.memory_bytes, l.cpu_millicores, l.pids_max), (u64::from(mb) << 20, millicores, 1024), "{mb} MB");
            assert_eq!(l.cpu_quota_us(), quota_us, "{mb} MB");
        }
        check(1769, 1000, 100_000);
        check(128, 72, 7_200);
        check(512, 289, 28_900);
        check(3008, 1700, 170_000);
        check(10240, 5788, 578_800);
        check(64, MIN_MILLICORES, 6_300);
        check(0, MIN_MILLICORES, 6_300);
        assert_eq!(Limits { memory_bytes: 0, cpu_millicores: 1, pids_max: 0 }.cpu_quota_us(), 1000, "kernel minimum");
    }

    #[test]
    fn cgroup_mountinfo_parsing() {
        let m = parse_mountinfo(HYBRID_MOUNTINFO);
        assert_eq!(m.v2, Some(PathBuf::from("/sys/fs/cgroup/unified")));
        let names: Vec<String> = m.v1.iter().map(|(p, c)| format!("{}={}", p.display(), c.join("+"))).collect();
        assert_eq!(names.len(), 8, "name=systemd is not a controller: {names:?}");
        assert!(names.contains(&"/sys/fs/cgroup/memory=memory".to_owned()));

        let m = parse_mountinfo(V2_MOUNTINFO);
        assert_eq!((m.v2, m.v1.len()), (Some(PathBuf::from("/sys/fs/cgroup")), 0));

        let m = parse_mountinfo(V1_MOUNTINFO);
        assert_eq!(m.v2, None);
        assert_eq!(m.v1[0], (PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"), vec!["cpu".to_owned(), "cpuacct".to_owned()]));

        let m = parse_mountinfo("41 31 0:38 / /mnt/my\\040cg rw - cgroup2 none rw\nbroken line\n");
        assert_eq!(m.v2, Some(PathBuf::from("/mnt/my cg")));
    }

    #[test]
    fn cgroup_hybrid_layout() {
        let fs = hybrid_fs();
        let m = open(&fs, HYBRID_MOUNTINFO);
        assert_eq!(m.mode(), "hybrid");
        // cgroup2 carries no controllers here: no subtree_control writes, no v1 freezer group.
        assert_eq!(
            fs.take_ops(),
            [
                "mkdir /sys/fs/cgroup/unified/nimbus-t",
                "mkdir /sys/fs/cgroup/memory/nimbus-t",
                "mkdir /sys/fs/cgroup/cpu/nimbus-t",
                "mkdir /sys/fs/cgroup/pids/nimbus-t",
            ]
        );

        let env = m.create("e1", &Limits::for_memory_mb(128)).expect("create");
        assert_eq!(
            fs.take_ops(),
            [
                "mkdir /sys/fs/cgroup/unified/nimbus-t/e1",
                "mkdir /sys/fs/cgroup/memory/nimbus-t/e1",
                "write /sys/fs/cgroup/memory/nimbus-t/e1/memory.limit_in_bytes 134217728",
                "write /sys/fs/cgroup/memory/nimbus-t/e1/memory.memsw.limit_in_bytes 134217728",
                "mkdir /sys/fs/cgroup/cpu/nimbus-t/e1",
                "write /sys/fs/cgroup/cpu/nimbus-t/e1/cpu.cfs_period_us 100000",
                "write /sys/fs/cgroup/cpu/nimbus-t/e1/cpu.cfs_quota_us 7200",
                "mkdir /sys/fs/cgroup/pids/nimbus-t/e1",
                "write /sys/fs/cgroup/pids/nimbus-t/e1/pids.max 1024",
            ]
        );
        let procs: Vec<String> = env.procs_files().iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            procs,
            [
                "/sys/fs/cgroup/unified/nimbus-t/e1/cgroup.procs",
                "/sys/fs/cgroup/memory/nimbus-t/e1/cgroup.procs",
                "/sys/fs/cgroup/cpu/nimbus-t/e1/cgroup.procs",
                "/sys/fs/cgroup/pids/nimbus-t/e1/cgroup.procs",
            ]
        );

        env.add_pid(42).expect("add");
        env.freeze().expect("freeze");
        env.thaw().expect("thaw");
        assert_eq!(
            fs.take_ops(),
            [
                "write /sys/fs/cgroup/unified/nimbus-t/e1/cgroup.procs 42",
                "write /sys/fs/cgroup/memory/nimbus-t/e1/cgroup.procs 42",
                "write /sys/fs/cgroup/cpu/nimbus-t/e1/cgroup.procs 42",
                "write /sys/fs/cgroup/pids/nimbus-t/e1/cgroup.procs 42",
                "write /sys/fs/cgroup/unified/nimbus-t/e1/cgroup.freeze 1",
                "write /sys/fs/cgroup/unified/nimbus-t/e1/cgroup.freeze 0",
            ]
        );

        // cgroup.kill empties the cgroup2 group; the v1 lists still name 42 until it dies,
        // which the sweep covers.
        drop(env);
        assert_eq!(
            fs.take_ops(),
            [
                "write /sys/fs/cgroup/unified/nimbus-t/e1/cgroup.kill 1",
                "kill 42",
                "write /sys/fs/cgroup/unified/nimbus-t/e1/cgroup.freeze 0",
                "rmdir /sys/fs/cgroup/unified/nimbus-t/e1",
                "rmdir /sys/fs/cgroup/memory/nimbus-t/e1",
                "rmdir /sys/fs/cgroup/cpu/nimbus-t/e1",
                "rmdir /sys/fs/cgroup/pids/nimbus-t/e1",
            ]
        );
        drop(m);
        assert_eq!(fs.take_ops().len(), 4, "parents removed");
        assert!(!fs.exists(Path::new("/sys/fs/cgroup/memory/nimbus-t")));
    }

    #[test]
    fn cgroup_v2_layout() {
        let fs = v2_fs();
        let m = open(&fs, V2_MOUNTINFO);
        assert_eq!(m.mode(), "cgroup2");
        assert_eq!(
            fs.take_ops(),
            [
                "write /sys/fs/cgroup/cgroup.subtree_control +pids",
                "mkdir /sys/fs/cgroup/nimbus-t",
                "write /sys/fs/cgroup/nimbus-t/cgroup.subtree_control +memory +cpu +pids",
            ]
        );
        let env = m.create("e1", &Limits { memory_bytes: 64 << 20, cpu_millicores: 500, pids_max: 0 }).expect("create");
        assert_eq!(
            fs.take_ops(),
            [
                "mkdir /sys/fs/cgroup/nimbus-t/e1",
                "write /sys/fs/cgroup/nimbus-t/e1/memory.max 67108864",
                "write /sys/fs/cgroup/nimbus-t/e1/memory.swap.max 0",
                "write /sys/fs/cgroup/nimbus-t/e1/memory.oom.group 1",
                "write /sys/fs/cgroup/nimbus-t/e1/cpu.max 50000 100000",
                "write /sys/fs/cgroup/nimbus-t/e1/pids.max max",
            ]
        );
        assert_eq!(env.procs_files(), [PathBuf::from("/sys/fs/cgroup/nimbus-t/e1/cgroup.procs")]);

        // Invoke-path reads: exact keys only (oom_group_kill is not oom_kill).
        assert_eq!(env.peak_memory_bytes(), Some(0));
        fs.set("/sys/fs/cgroup/nimbus-t/e1/memory.peak", "5242880\n");
        fs.set("/sys/fs/cgroup/nimbus-t/e1/memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\noom_group_kill 1\n");
        assert_eq!((env.peak_memory_bytes(), env.oom_killed()), (Some(5_242_880), false));
        fs.set("/sys/fs/cgroup/nimbus-t/e1/memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\noom_group_kill 1\n");
        assert_eq!((env.oom_kill_count(), env.oom_killed()), (Some(2), true));

        env.freeze().expect("freeze");
        assert_eq!(fs.get("/sys/fs/cgroup/nimbus-t/e1/cgroup.events").as_deref(), Some("populated 0\nfrozen 1\n"));
        env.kill_all();
        assert_eq!(
            fs.take_ops(),
            [
                "write /sys/fs/cgroup/nimbus-t/e1/cgroup.freeze 1",
                "write /sys/fs/cgroup/nimbus-t/e1/cgroup.kill 1",
                "write /sys/fs/cgroup/nimbus-t/e1/cgroup.freeze 0",
            ]
        );
        assert!(!env.is_frozen(), "left thawed");
    }

    #[test]
    fn cgroup_v1_layout_freezer_and_kill_by_pid() {
        let fs = v1_fs();
        let m = open(&fs, V1_MOUNTINFO);
        assert_eq!(m.mode(), "cgroup1");
        fs.take_ops();
        // No memsw file (swap accounting off): skipped, not an error.
        let env = m.create("e1", &Limits::for_memory_mb(1769)).expect("create");
        assert_eq!(
            fs.take_ops(),
            [
                "mkdir /sys/fs/cgroup/memory/nimbus-t/e1",
                "write /sys/fs/cgroup/memory/nimbus-t/e1/memory.limit_in_bytes 1854930944",
                "mkdir /sys/fs/cgroup/cpu,cpuacct/nimbus-t/e1",
                "write /sys/fs/cgroup/cpu,cpuacct/nimbus-t/e1/cpu.cfs_period_us 100000",
                "write /sys/fs/cgroup/cpu,cpuacct/nimbus-t/e1/cpu.cfs_quota_us 100000",
                "mkdir /sys/fs/cgroup/pids/nimbus-t/e1",
                "write /sys/fs/cgroup/pids/nimbus-t/e1/pids.max 1024",
                "mkdir /sys/fs/cgroup/freezer/nimbus-t/e1",
            ]
        );
        env.freeze().expect("freeze");
        env.thaw().expect("thaw");
        assert_eq!(
            fs.take_ops(),
            [
                "write /sys/fs/cgroup/freezer/nimbus-t/e1/freezer.state FROZEN",
                "write /sys/fs/cgroup/freezer/nimbus-t/e1/freezer.state THAWED",
            ]
        );

        fs.set("/sys/fs/cgroup/memory/nimbus-t/e1/memory.max_usage_in_bytes", "104857600\n");
        fs.set("/sys/fs/cgroup/memory/nimbus-t/e1/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n");
        assert_eq!((env.peak_memory_bytes(), env.oom_killed()), (Some(104_857_600), true));

        fs.set("/sys/fs/cgroup/pids/nimbus-t/e1/cgroup.procs", "11\n12\n");
        fs.set("/sys/fs/cgroup/freezer/nimbus-t/e1/cgroup.procs", "11\n12\n");
        env.kill_all();
        assert_eq!(
            fs.take_ops(),
            [
                "write /sys/fs/cgroup/freezer/nimbus-t/e1/freezer.state FROZEN",
                "kill 11",
                "kill 12",
                "write /sys/fs/cgroup/freezer/nimbus-t/e1/freezer.state THAWED",
                "write /sys/fs/cgroup/freezer/nimbus-t/e1/freezer.state FROZEN",
                "write /sys/fs/cgroup/freezer/nimbus-t/e1/freezer.state THAWED",
            ]
        );
    }

    #[test]
    fn cgroup_leftovers_of_a_crashed_run_are_killed_and_removed() {
        let fs = hybrid_fs();
        fs.group("/sys/fs/cgroup/unified/nimbus-t", "").group("/sys/fs/cgroup/unified/nimbus-t/old", "77\n");
        fs.group("/sys/fs/cgroup/memory/nimbus-t", "").group("/sys/fs/cgroup/memory/nimbus-t/old", "77\n");
        let _m = open(&fs, HYBRID_MOUNTINFO);
        let ops = fs.take_ops();
        assert_eq!(
            ops[..6],
            [
                "write /sys/fs/cgroup/unified/nimbus-t/cgroup.kill 1",
                "write /sys/fs/cgroup/unified/nimbus-t/cgroup.freeze 0",
                "rmdir /sys/fs/cgroup/unified/nimbus-t/old",
                "rmdir /sys/fs/cgroup/unified/nimbus-t",
                "mkdir /sys/fs/cgroup/unified/nimbus-t",
                "kill 77",
            ]
        );
        assert_eq!(
            ops[6..9],
            ["rmdir /sys/fs/cgroup/memory/nimbus-t/old", "rmdir /sys/fs/cgroup/memory/nimbus-t", "mkdir /sys/fs/cgroup/memory/nimbus-t",]
        );
    }

    #[test]
    fn cgroup_unusable_hosts_say_why() {
        fn reason(fs: &RecordingFs, mountinfo: &str) -> String {
            CgroupManager::open_with("t", Arc::new(fs.clone()), mountinfo).expect_err("unusable")
        }
        assert_eq!(reason(&RecordingFs::default(), ""), "no cgroup filesystem is mounted");

        let fs = RecordingFs::default();
        fs.hierarchy("/sys/fs/cgroup", &[("cgroup.controllers", "cpu io\n")], &[]);
        assert!(reason(&fs, V2_MOUNTINFO).contains("memory, pids not available"), "{}", reason(&fs, V2_MOUNTINFO));

        let fs = hybrid_fs();
        fs.fail_mkdir(io::ErrorKind::PermissionDenied);
        assert!(reason(&fs, HYBRID_MOUNTINFO).contains("need root"));

        CgroupManager::open_with("../x", Arc::new(hybrid_fs()), HYBRID_MOUNTINFO).unwrap_err();
    }

    #[test]
    fn cgroup_create_rejects_bad_ids_and_cleans_up_on_failure() {
        let fs = hybrid_fs();
        let m = open(&fs, HYBRID_MOUNTINFO);
        for bad in ["", ".", "..", "../e", "a/b", ".hidden", "a b", "a\n"] {
            assert_eq!(m.create(bad, &Limits::for_memory_mb(128)).expect_err(bad).kind(), io::ErrorKind::InvalidInput, "{bad:?}");
        }
        m.create("fn-1.v2_3", &Limits::for_memory_mb(128)).unwrap();

        // The last group cannot be made (it exists already): the ones made so far go again.
        fs.take_ops();
        fs.group("/sys/fs/cgroup/pids/nimbus-t/e2", "");
        m.create("e2", &Limits::for_memory_mb(128)).unwrap_err();
        let ops = fs.take_ops();
        assert!(ops.contains(&"rmdir /sys/fs/cgroup/unified/nimbus-t/e2".to_owned()), "{ops:?}");
        assert!(ops.contains(&"rmdir /sys/fs/cgroup/memory/nimbus-t/e2".to_owned()), "{ops:?}");
    }

    /// Root-only tests on the real kernel. Each uses its own instance so they run in parallel.
    mod real {
        use super::super::*;
        use std::os::unix::process::{CommandExt, ExitStatusExt};
        use std::process::{Child, Command, Stdio};

        fn manager(test: &str) -> Option<CgroupManager> {
            if !rustix::process::geteuid().is_root() {
                println!("skipped {test}: not root");
                return None;
            }
            match CgroupManager::open(&format!("test-{}-{test}", std::process::id())) {
                Ok(m) => Some(m),
                Err(e) => {
                    println!("skipped {test}: no usable cgroups: {e}");
                    None
                }
            }
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
            let m2 = CgroupManager::open(&format!("test-{}-crash", std::process::id())).expect("reopen");
            let status = wait_with_timeout(&mut child, Duration::from_secs(2)).expect("leftover killed");
            assert_eq!(status.signal(), Some(9));
            assert!(dirs.iter().all(|d| !d.exists()), "leftover groups removed");
            drop(m2);
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
                        let t = Instant::now();
                        freeze.write(b"1").expect("freeze");
                        loop {
                            let n = events.read(&mut buf).expect("events");
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
    }
}

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
//! Freeze and thaw ([`EnvCgroup::freeze`], [`EnvCgroup::thaw`]), on every invocation's path,
//! write a descriptor opened at create time (one `pwrite`, no allocation);
//! [`EnvCgroup::peak_memory_bytes`] opens its file on the first read and keeps it until the
//! environment is frozen; the rare reads ([`EnvCgroup::oom_killed`], after failed invocations,
//! [`EnvCgroup::is_frozen`]) open their file each time. An idle (frozen) environment holds 1
//! descriptor here, a working one 2 (it was 4 either way: descriptors cap how many
//! environments a server holds).
//!
//! Nothing is left behind: [`CgroupManager::remove_all`] (the server's stop) kills what is
//! left and removes the whole set; a start removes what a crashed run of the same instance
//! left, and the sets of servers that are gone, whatever their data directory ([`owner`]: a
//! running server holds a lock on its instance's name).
//!
//! Everything touching the kernel goes through [`CgroupFs`], so the layout logic is unit-tested
//! with a recording double, without root.

mod env;
mod error;
mod fs;
mod mountinfo;
pub mod owner;
#[cfg(test)]
mod recording;
#[cfg(test)]
mod tests;
mod v1;
mod v2;

pub use env::EnvCgroup;
pub use error::CgroupError;
pub use fs::{enter_current_process, CgroupFile, CgroupFs, KernelCgroupFs};

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use env::{kill_listed, remove_dirs, tree_bottom_up};
use mountinfo::parse_mountinfo;
use owner::{Claim, Owners};

/// Lambda gives one full vCPU at 1,769 MB and scales CPU linearly with memory.
pub const MB_PER_CORE: u64 = 1769;
/// The CPU floor (about 1/16 of a core) so tiny test functions still make progress.
pub const MIN_MILLICORES: u32 = 63;
/// Lambda's limit on processes plus threads per environment.
pub const DEFAULT_PIDS_MAX: u32 = 1024;
/// CFS period used for the CPU quota.
pub const CPU_PERIOD_US: u64 = 100_000;

/// How long `kill_all` waits for killed processes to leave the groups.
pub(super) const KILL_WAIT: Duration = Duration::from_secs(2);
/// How long `Drop` keeps retrying `rmdir` while the kernel still lists tasks.
pub(super) const RMDIR_WAIT: Duration = Duration::from_millis(500);

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

    /// [`Limits::for_memory_mb`] during init: no CPU limit (Lambda's init phase is not held
    /// to the memory-sized CPU share either); the environment applies it once init is over.
    pub fn for_init(mb: u32) -> Limits {
        Limits { cpu_millicores: 0, ..Limits::for_memory_mb(mb) }
    }

    /// CFS quota per [`CPU_PERIOD_US`], at least the kernel's minimum of 1 ms.
    pub(super) fn cpu_quota_us(&self) -> u64 {
        (u64::from(self.cpu_millicores) * CPU_PERIOD_US / 1000).max(1000)
    }
}

// ---------------------------------------------------------------------------------------------
// Layout detection

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Version {
    V1,
    V2,
}

/// One hierarchy we use, and what for.
#[derive(Debug, Clone)]
pub(super) struct Hierarchy {
    pub(super) version: Version,
    mount: PathBuf,
    /// `<mount>/nimbus-<instance>`.
    pub(super) parent: PathBuf,
    pub(super) memory: bool,
    pub(super) cpu: bool,
    pub(super) pids: bool,
    pub(super) freezer: bool,
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
pub(super) struct Layout {
    pub(super) fs: Arc<dyn CgroupFs>,
    mode: &'static str,
    /// The cgroup2 hierarchy first, if used.
    pub(super) hierarchies: Vec<Hierarchy>,
    /// cgroup2 `cgroup.kill` is available (Linux 5.14+).
    pub(super) v2_kill: bool,
    /// This server's claim on the instance's name (None where claims cannot be kept).
    claim: Mutex<Option<Box<dyn Claim>>>,
    /// Everything was removed ([`CgroupManager::remove_all`]): environments dropped later
    /// have nothing left to kill or remove.
    pub(super) closed: AtomicBool,
}

impl Layout {
    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Gives up the claim; forgets it when nothing of the set is left.
    fn release(&self, set_removed: bool) {
        let claim = self.claim.lock().unwrap_or_else(|p| p.into_inner()).take();
        match claim {
            Some(c) if set_removed => c.forget(),
            _ => {}
        }
    }
}

impl Drop for Layout {
    fn drop(&mut self) {
        if self.is_closed() {
            return;
        }
        let mut removed = true;
        for h in &self.hierarchies {
            if let Err(e) = self.fs.rmdir(&h.parent) {
                removed &= e.is_not_found();
                tracing::debug!(error = %e, "cgroup parent not removed");
            }
        }
        self.release(removed);
    }
}

/// Names become directory names: keep them to one harmless path component.
pub(super) fn check_name(what: &'static str, name: &str) -> Result<(), CgroupError> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(CgroupError::InvalidName { what, name: name.to_owned() })
    }
}

/// Detected cgroup layout; created once at server start.
#[derive(Debug)]
pub struct CgroupManager {
    layout: Arc<Layout>,
    gone: Vec<String>,
}

impl CgroupManager {
    /// Detects cgroup2 / hybrid / cgroup1, claims `instance` (a lock in
    /// [`owner::DEFAULT_DIR`] held while this server runs), removes what a previous run of
    /// the same `instance` left behind (killing its processes) and the sets of servers that
    /// are gone, and creates the parent groups `nimbus-<instance>`. `instance` keeps two
    /// servers on one host apart (e.g. a hash of the data directory). `Err` says why cgroups
    /// cannot be used (not Linux, not root, read-only, no controllers).
    /// `note` is kept in the claim (the server's data directory): [`CgroupManager::gone`]
    /// hands it to the server that removes this set after a crash.
    pub fn open(instance: &str, note: &str) -> Result<CgroupManager, CgroupError> {
        if !cfg!(target_os = "linux") {
            return Err(CgroupError::NotLinux);
        }
        let fs: Arc<dyn CgroupFs> = Arc::new(KernelCgroupFs);
        let mountinfo = fs.read(Path::new("/proc/self/mountinfo"))?;
        Self::open_with(instance, fs, &mountinfo, &owner::LockFiles::new(owner::DEFAULT_DIR).with_note(note))
    }

    /// [`CgroupManager::open`] on a given filesystem, mount table and claims (for tests).
    pub fn open_with(instance: &str, fs: Arc<dyn CgroupFs>, mountinfo: &str, owners: &dyn Owners) -> Result<CgroupManager, CgroupError> {
        check_name("instance", instance)?;
        let parent_name = format!("nimbus-{instance}");
        // Claimed before anything is made: a sweeping server never takes a set being built.
        let claim = match owners.claim(instance) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim the cgroup set (servers started later cannot remove it if this one crashes)");
                None
            }
        };
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
                (None, true) => CgroupError::NotMounted,
                _ => CgroupError::ControllersMissing(missing),
            });
        }

        // cgroup2 at the mount root: hand our controllers down (a no-op where already enabled).
        if let (Some(h), Some(mount)) = (&v2, &mounts.v2) {
            let wanted = v2::controllers(h);
            if !wanted.is_empty() {
                let path = mount.join("cgroup.subtree_control");
                let enabled = fs.read(&path).unwrap_or_default();
                let todo: Vec<&str> = wanted.iter().copied().filter(|c| !enabled.split_whitespace().any(|e| e == *c)).collect();
                if !todo.is_empty() {
                    let value = v2::enable_value(&todo);
                    fs.write(&path, &value).map_err(|e| CgroupError::EnableControllers(Box::new(e)))?;
                }
            }
        }

        // Parents are created one by one into `layout`; dropping it on an error removes them.
        let mut layout = Layout {
            fs: fs.clone(),
            mode: "cgroup2",
            hierarchies: Vec::new(),
            v2_kill: false,
            claim: Mutex::new(claim),
            closed: AtomicBool::new(false),
        };
        for h in v2.into_iter().chain(v1) {
            if fs.exists(&h.parent) {
                tracing::info!(dir = %h.parent.display(), "removing cgroups left by a previous run");
            }
            purge_tree(fs.as_ref(), &h.parent, h.version);
            fs.mkdir(&h.parent).map_err(|e| CgroupError::CreateParent(Box::new(e)))?;
            layout.hierarchies.push(h);
        }

        if let Some(h) = layout.hierarchies.iter_mut().find(|h| h.version == Version::V2) {
            let wanted = v2::controllers(h);
            if !wanted.is_empty() {
                let value = v2::enable_value(&wanted);
                fs.write(&h.parent.join("cgroup.subtree_control"), &value).map_err(|e| CgroupError::EnableControllers(Box::new(e)))?;
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
                        if fs.exists(&h.parent) {
                            tracing::info!(dir = %h.parent.display(), "removing cgroups left by a previous run");
                        }
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
        let gone = sweep_orphans(fs.as_ref(), &layout.hierarchies, instance, owners);
        Ok(CgroupManager { layout: Arc::new(layout), gone })
    }

    /// The notes (data directories) of the servers that were gone and whose sets this
    /// start removed: they may have left other things there.
    pub fn gone(&self) -> &[String] {
        &self.gone
    }

    /// The set's parent directories, one per hierarchy used.
    pub fn parents(&self) -> Vec<PathBuf> {
        self.layout.hierarchies.iter().map(|h| h.parent.clone()).collect()
    }

    /// The server's stop: kills every process still in the set (busy environments too),
    /// removes every group and the parents, and gives up the claim. Environments dropped
    /// after this have nothing left to do. Blocks (up to the kill and rmdir waits).
    pub fn remove_all(&self) {
        if self.layout.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        let fs = self.layout.fs.as_ref();
        for h in &self.layout.hierarchies {
            purge_tree(fs, &h.parent, h.version);
        }
        let removed = self.layout.hierarchies.iter().all(|h| !fs.exists(&h.parent));
        if !removed {
            tracing::warn!("cgroups left behind at stop; the next server started on this host removes them");
        }
        self.layout.release(removed);
    }

    /// `"cgroup2"`, `"hybrid"` (v1 controllers plus cgroup2 for freeze/kill) or `"cgroup1"`.
    pub fn mode(&self) -> &'static str {
        self.layout.mode
    }

    /// Creates one environment's groups with its limits: memory (and memory+swap equal, so it
    /// cannot swap), CPU quota per period, pids.max. Then opens the files the invoke path uses.
    pub fn create(&self, env_id: &str, limits: &Limits) -> Result<EnvCgroup, CgroupError> {
        EnvCgroup::create(&self.layout, env_id, limits)
    }
}

/// The files that carry an environment's CPU share (its quota), v1's and cgroup2's.
pub(super) const CPU_SHARE_FILES: &[&str] = &["cpu.cfs_quota_us", "cpu.max"];

/// Files whose absence only means the kernel lacks a feature we can live without.
pub(super) const OPTIONAL_FILES: &[&str] =
    &["memory.memsw.limit_in_bytes", "memory.swap.max", "memory.oom.group", "cpu.shares", "cpu.weight"];

/// The (file, value) writes that apply `limits` to a new group of hierarchy `h`, in order.
pub(super) fn limit_writes(h: &Hierarchy, limits: &Limits) -> Vec<(&'static str, String)> {
    match h.version {
        Version::V2 => v2::limit_writes(h, limits),
        Version::V1 => v1::limit_writes(h, limits),
    }
}

/// Removes the sets of servers that are gone (their claim is free), in every hierarchy
/// in use: `<mount>/nimbus-<other>` for each `other` than `ours`. Sets whose owner cannot be
/// known (no claim) stay. Returns the notes of the servers whose sets were removed.
fn sweep_orphans(fs: &dyn CgroupFs, hierarchies: &[Hierarchy], ours: &str, owners: &dyn Owners) -> Vec<String> {
    let mut notes = Vec::new();
    let mut instances = BTreeSet::new();
    for h in hierarchies {
        for dir in fs.subdirs(&h.mount).unwrap_or_default() {
            let name = dir.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_prefix("nimbus-"));
            if let Some(name) = name.filter(|n| *n != ours && check_name("instance", n).is_ok()) {
                instances.insert(name.to_owned());
            }
        }
    }
    for instance in instances {
        let Some(claim) = owners.orphaned(&instance) else { continue };
        let parents: Vec<(PathBuf, Version)> =
            hierarchies.iter().map(|h| (h.mount.join(format!("nimbus-{instance}")), h.version)).collect();
        tracing::info!(instance, "removing the cgroups of a server that is gone");
        for (parent, version) in &parents {
            purge_tree(fs, parent, *version);
        }
        notes.extend(claim.note());
        if parents.iter().all(|(p, _)| !fs.exists(p)) {
            claim.forget();
        }
    }
    notes
}

/// Removes a `<mount>/nimbus-<instance>` tree, killing its processes.
fn purge_tree(fs: &dyn CgroupFs, parent: &Path, version: Version) {
    if !fs.exists(parent) {
        return;
    }
    if version == Version::V2 {
        let _ = fs.write(&parent.join("cgroup.kill"), "1");
    }
    let mut dirs = Vec::new();
    tree_bottom_up(fs, parent, &mut dirs);
    let freezer = parent.join(v1::FREEZER_STATE);
    let freezer = (version == Version::V1 && fs.exists(&freezer)).then_some(freezer.as_path());
    if version == Version::V2 {
        // A leftover frozen group: killed tasks die anyway in v2, but thaw for good measure.
        let _ = fs.write(&parent.join("cgroup.freeze"), "0");
    }
    kill_listed(fs, &dirs, freezer, KILL_WAIT);
    remove_dirs(fs, &dirs, RMDIR_WAIT);
}

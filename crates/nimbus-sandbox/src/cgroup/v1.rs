//! What is particular to cgroup v1: one hierarchy per controller (or co-mounted group of
//! them), its limit files (`memory.limit_in_bytes`, `cpu.cfs_quota_us`, …) and the order
//! they must be written in, its statistics files and the `freezer.state` freezer. v1 has no
//! `cgroup.kill`: its groups are emptied pid by pid (see `env::kill_listed`).

use std::path::Path;

use super::{CgroupFs, Hierarchy, Limits, CPU_PERIOD_US};

/// `cpu.shares` of an environment (the default group has 1,024).
const ENV_CPU_SHARES: u32 = 128;

/// Peak memory since the group was made.
pub(super) const PEAK_FILE: &str = "memory.max_usage_in_bytes";
/// Holds `oom_kill <n>` (Linux 4.13+).
pub(super) const OOM_FILE: &str = "memory.oom_control";
/// The v1 freezer's one file: `FROZEN`, `FREEZING` or `THAWED`.
pub(super) const FREEZER_STATE: &str = "freezer.state";

/// The (file, value) writes that apply `limits` to a new v1 group, in order.
pub(super) fn limit_writes(h: &Hierarchy, limits: &Limits) -> Vec<(&'static str, String)> {
    let mut w = Vec::new();
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
        // The quota is per period, and every v1 group is made with the kernel's default
        // period, which is ours (`CPU_PERIOD_US`), so only the quota is written: each write
        // of either file checks the whole tree of CPU groups on the host under one mutex,
        // which in a burst of thousands of environments cost a few percent of all the CPU.
        const _: () = assert!(CPU_PERIOD_US == 100_000, "the kernel's default cpu.cfs_period_us");
        w.push(("cpu.cfs_quota_us", limits.cpu_quota_us().to_string()));
    }
    if h.pids {
        w.push(("pids.max", if limits.pids_max == 0 { "max".to_owned() } else { limits.pids_max.to_string() }));
    }
    w
}

/// Whether a live group's new memory limit is above its current one. memsw (which must stay
/// at or above the memory limit) then has to grow before the memory limit; lowering goes
/// the other way, the order [`limit_writes`] gives.
pub(super) fn raises_memory_limit(fs: &dyn CgroupFs, dir: &Path, limits: &Limits) -> bool {
    let current = fs.read(&dir.join("memory.limit_in_bytes")).ok().and_then(|s| s.trim().parse::<u64>().ok());
    current.is_some_and(|c| limits.memory_bytes > c)
}

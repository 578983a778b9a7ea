//! What is particular to cgroup2: its limit files (`memory.max`, `cpu.max`, …), the
//! `cgroup.subtree_control` hand-down of controllers, and its statistics files. Freezing
//! (`cgroup.freeze`/`cgroup.events`) and killing (`cgroup.kill`) are one write each here.

use super::{Hierarchy, Limits, CPU_PERIOD_US};

/// `cpu.weight` of an environment (the default is 100).
const ENV_CPU_WEIGHT: u32 = 13;

/// Peak memory since the group was made (needs Linux 5.19).
pub(super) const PEAK_FILE: &str = "memory.peak";
/// Holds `oom_kill <n>`.
pub(super) const OOM_FILE: &str = "memory.events";

/// The controllers `h` needs enabled in `cgroup.subtree_control` of its parents, in order.
pub(super) fn controllers(h: &Hierarchy) -> Vec<&'static str> {
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

/// The `cgroup.subtree_control` value that enables `controllers` (`+memory +cpu`).
pub(super) fn enable_value(controllers: &[&str]) -> String {
    controllers.iter().map(|c| format!("+{c}")).collect::<Vec<_>>().join(" ")
}

/// The (file, value) writes that apply `limits` to a new cgroup2 group, in order.
pub(super) fn limit_writes(h: &Hierarchy, limits: &Limits) -> Vec<(&'static str, String)> {
    let mut w = Vec::new();
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
    w
}

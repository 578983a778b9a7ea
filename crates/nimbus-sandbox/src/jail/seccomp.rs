//! The runtime's seccomp filter: everything is allowed except calls that reshape the
//! sandbox (mounts, namespaces), reach into other processes or the kernel (ptrace, modules,
//! kexec, bpf, keyrings) or change host-wide state (clock, swap, reboot). A deny list, not
//! an allow list, because runtimes and native extensions use a long, changing tail of
//! syscalls; the namespaces, the unprivileged user and the empty capability sets are the
//! main walls, and this removes the kernel surface those walls do not cover.

use std::collections::BTreeMap;

use super::SeccompError;
use seccompiler::{BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule};

/// Denied unconditionally with EPERM.
#[cfg(target_arch = "x86_64")]
const DENIED: &[libc::c_long] = &[
    // Mounts, old and new API (the new one would otherwise bypass a `mount` rule).
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_open_tree,
    libc::SYS_move_mount,
    libc::SYS_mount_setattr,
    // Namespaces.
    libc::SYS_setns,
    libc::SYS_unshare,
    // Other processes.
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_kcmp,
    libc::SYS_pidfd_getfd,
    // The kernel itself.
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_keyctl,
    libc::SYS_syslog,
    libc::SYS_lookup_dcookie,
    libc::SYS_uselib,
    libc::SYS__sysctl,
    // Host-wide state.
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_acct,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    libc::SYS_iopl,
    libc::SYS_ioperm,
    libc::SYS_quotactl,
    libc::SYS_quotactl_fd,
    libc::SYS_vhangup,
    // File handles bypass path permissions (CVE-2014-3519 "shocker").
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
];

/// The x32 ABI's syscall numbers carry this bit, and the arch check cannot tell x32 from
/// x86_64: without a rule, `mount | X32_BIT` would bypass `mount` on kernels built with x32.
#[cfg(target_arch = "x86_64")]
const X32_BIT: u32 = 0x4000_0000;

/// `clone` flags that create namespaces (a user namespace first would give the process
/// capabilities over the new ones: netfilter and mount code become reachable).
const CLONE_NS_FLAGS: &[u64] = &[
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
];

/// The personalities programs legitimately set (Docker's list); others, e.g.
/// ADDR_NO_RANDOMIZE, would weaken the next exec.
const PERSONALITIES: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

fn cond(arg: u8, len: SeccompCmpArgLen, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, SeccompError> {
    Ok(SeccompCondition::new(arg, len, op, value)?)
}

fn rule(conditions: Vec<SeccompCondition>) -> Result<SeccompRule, SeccompError> {
    Ok(SeccompRule::new(conditions)?)
}

/// The filter to install. seccompiler builds the deny list (one on-match action, EPERM);
/// a hand-written prefix answers ENOSYS to every x32 call and to `clone3` (its flags live in
/// memory a filter cannot read; ENOSYS makes libc fall back to `clone`, whose flags are
/// checked). One filter, not two: installing one costs the kernel a pass over every
/// syscall number to build its allow cache, so size and count show in the start time.
#[cfg(target_arch = "x86_64")]
pub fn programs() -> Result<Vec<BpfProgram>, SeccompError> {
    use seccompiler::sock_filter;
    let arch = seccompiler::TargetArch::x86_64;
    let mut deny: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for &nr in DENIED {
        deny.insert(nr, vec![]);
    }
    let clone_rules = CLONE_NS_FLAGS
        .iter()
        .map(|&flag| rule(vec![cond(0, SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(flag), flag)?]))
        .collect::<Result<Vec<_>, _>>()?;
    deny.insert(libc::SYS_clone, clone_rules);
    let personality =
        PERSONALITIES.iter().map(|&p| cond(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, p)).collect::<Result<Vec<_>, _>>()?;
    deny.insert(libc::SYS_personality, vec![rule(personality)?]);

    let eperm = SeccompFilter::new(deny, SeccompAction::Allow, SeccompAction::Errno(libc::EPERM as u32), arch)?;
    let mut program = BpfProgram::try_from(eperm)?;

    // seccompiler starts with the arch check: load arch; jeq AUDIT_ARCH_X86_64, skip 1;
    // return KILL_PROCESS. Its jump lands right after it, where the prefix goes; jumps are
    // relative and forward, so nothing after moves its target.
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const JGE_K: u16 = 0x35;
    const RET_K: u16 = 0x06;
    let arch_check_ok = program.len() > 3
        && program[0].code == LD_W_ABS
        && program[1] == sock_filter { code: JEQ_K, jt: 1, jf: 0, k: program[1].k }
        && program[2].code == RET_K;
    if !arch_check_ok {
        return Err(SeccompError::Layout("unexpected seccompiler program layout"));
    }
    let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    let prefix = [
        sock_filter { code: LD_W_ABS, jt: 0, jf: 0, k: 0 }, // seccomp_data.nr
        sock_filter { code: JGE_K, jt: 1, jf: 0, k: X32_BIT },
        sock_filter { code: JEQ_K, jt: 0, jf: 1, k: libc::SYS_clone3 as u32 },
        sock_filter { code: RET_K, jt: 0, jf: 0, k: enosys },
    ];
    program.splice(3..3, prefix);
    if program.len() > 4096 {
        return Err(SeccompError::Layout("seccomp program too long"));
    }
    Ok(vec![program])
}

#[cfg(not(target_arch = "x86_64"))]
pub fn programs() -> Result<Vec<BpfProgram>, SeccompError> {
    Err(SeccompError::Layout("the seccomp filter is only written for x86_64"))
}

/// Installs the programs on the calling thread (sets no_new_privs first, as seccomp needs).
pub fn apply(programs: &[BpfProgram]) -> Result<(), SeccompError> {
    for p in programs {
        seccompiler::apply_filter(p)?;
    }
    Ok(())
}

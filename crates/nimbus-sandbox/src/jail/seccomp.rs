//! The runtime's seccomp filter: everything is allowed except calls that reshape the
//! sandbox (mounts, namespaces), reach into other processes or the kernel (ptrace, modules,
//! kexec, bpf, keyrings) or change host-wide state (clock, swap, reboot). A deny list, not
//! an allow list, because runtimes and native extensions use a long, changing tail of
//! syscalls; the namespaces, the unprivileged user and the empty capability sets are the
//! main walls, and this removes the kernel surface those walls do not cover.

use std::collections::BTreeMap;
use std::sync::OnceLock;

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

/// The filter to install, built once per process: the spawner builds it before it forks
/// any sandbox-init, so every sandbox inherits it instead of building its own.
pub fn programs() -> Result<&'static [BpfProgram], SeccompError> {
    static BUILT: OnceLock<Vec<BpfProgram>> = OnceLock::new();
    if let Some(built) = BUILT.get() {
        return Ok(built);
    }
    let built = build()?;
    Ok(BUILT.get_or_init(|| built))
}

#[cfg(target_arch = "x86_64")]
const LD_W_ABS: u16 = 0x20;
#[cfg(target_arch = "x86_64")]
const JEQ_K: u16 = 0x15;
#[cfg(target_arch = "x86_64")]
const JGE_K: u16 = 0x35;
#[cfg(target_arch = "x86_64")]
const RET_K: u16 = 0x06;

/// The filter. seccompiler builds the deny list (one on-match action, EPERM);
/// a hand-written prefix answers ENOSYS to every x32 call and to `clone3` (its flags live in
/// memory a filter cannot read; ENOSYS makes libc fall back to `clone`, whose flags are
/// checked), then a binary search ([`dispatch`]) allows every number seccompiler has no rule
/// for in a few comparisons, where seccompiler's chain tests them one by one. One filter,
/// not two, and short paths through it: installing one costs the kernel a walk through the
/// program for every syscall number, to build its allow cache, so the walks' length shows in
/// every sandbox's start.
#[cfg(target_arch = "x86_64")]
fn build() -> Result<Vec<BpfProgram>, SeccompError> {
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

    let special: Vec<u32> = deny.keys().map(|&nr| nr as u32).collect();
    let eperm = SeccompFilter::new(deny, SeccompAction::Allow, SeccompAction::Errno(libc::EPERM as u32), arch)?;
    let mut program = BpfProgram::try_from(eperm)?;

    // seccompiler starts with the arch check: load arch; jeq AUDIT_ARCH_X86_64, skip 1;
    // return KILL_PROCESS. Its jump lands right after it, where the prefix goes; jumps are
    // relative and forward, so nothing after moves its target.
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
    // The prefix leaves the number in the accumulator, and seccompiler's chain (after the
    // dispatch) loads it again first.
    if program.get(3) != Some(&sock_filter { code: LD_W_ABS, jt: 0, jf: 0, k: 0 }) {
        return Err(SeccompError::Layout("unexpected seccompiler program layout"));
    }
    let at = 3 + prefix.len();
    program.splice(3..3, prefix);
    program.splice(at..at, dispatch(&special)?);
    if program.len() > 4096 {
        return Err(SeccompError::Layout("seccomp program too long"));
    }
    Ok(vec![program])
}

/// Numbers a leaf of [`dispatch`] tests one by one.
#[cfg(target_arch = "x86_64")]
const LEAF: usize = 3;

/// A binary search over the sorted syscall numbers that have rules (`special`), with the
/// number in the accumulator: each of them jumps to the instruction right after this
/// code (seccompiler's chain, which decides), every other number returns ALLOW.
#[cfg(target_arch = "x86_64")]
fn dispatch(special: &[u32]) -> Result<Vec<seccompiler::sock_filter>, SeccompError> {
    use seccompiler::sock_filter;
    fn offset(from: usize, to: usize) -> Result<u8, SeccompError> {
        u8::try_from(to - from - 1).map_err(|_| SeccompError::Layout("seccomp dispatch too long"))
    }
    fn node(s: &[u32], out: &mut Vec<sock_filter>, to_chain: &mut Vec<usize>) -> Result<(), SeccompError> {
        if s.len() <= LEAF {
            for &nr in s {
                to_chain.push(out.len());
                out.push(sock_filter { code: JEQ_K, jt: 0, jf: 0, k: nr });
            }
            out.push(sock_filter { code: RET_K, jt: 0, jf: 0, k: libc::SECCOMP_RET_ALLOW });
            return Ok(());
        }
        // Below s[mid]: the left half's numbers; from it on, the right half's.
        let mid = s.len() / 2;
        let at = out.len();
        out.push(sock_filter { code: JGE_K, jt: 0, jf: 0, k: s[mid] });
        node(&s[..mid], out, to_chain)?;
        out[at].jt = offset(at, out.len())?;
        node(&s[mid..], out, to_chain)
    }
    let (mut out, mut to_chain) = (Vec::new(), Vec::new());
    node(special, &mut out, &mut to_chain)?;
    for i in to_chain {
        out[i].jt = offset(i, out.len())?;
    }
    Ok(out)
}

#[cfg(not(target_arch = "x86_64"))]
fn build() -> Result<Vec<BpfProgram>, SeccompError> {
    Err(SeccompError::Layout("the seccomp filter is only written for x86_64"))
}

/// Installs the programs on the calling thread (sets no_new_privs first, as seccomp needs).
pub fn apply(programs: &[BpfProgram]) -> Result<(), SeccompError> {
    for p in programs {
        seccompiler::apply_filter(p)?;
    }
    Ok(())
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use seccompiler::sock_filter;

    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const AUDIT_ARCH_I386: u32 = 0x4000_0003;

    /// Runs a classic BPF program over one `seccomp_data` as the kernel would; returns
    /// its verdict and how many instructions ran. Panics on an instruction it does not
    /// know, so a new shape of program fails here rather than passing untested.
    fn run(program: &[sock_filter], nr: u32, arch: u32, args: [u64; 6]) -> (u32, usize) {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_le_bytes());
        data[4..8].copy_from_slice(&arch.to_le_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        let (mut pc, mut acc, mut steps) = (0usize, 0u32, 0usize);
        loop {
            let f = &program[pc];
            steps += 1;
            pc += 1;
            match f.code {
                0x20 => acc = u32::from_le_bytes(data[f.k as usize..f.k as usize + 4].try_into().unwrap()),
                0x54 => acc &= f.k,
                0x05 => pc += f.k as usize,
                0x15 | 0x25 | 0x35 | 0x45 => {
                    let taken = match f.code {
                        0x15 => acc == f.k,
                        0x25 => acc > f.k,
                        0x35 => acc >= f.k,
                        _ => acc & f.k != 0,
                    };
                    pc += usize::from(if taken { f.jt } else { f.jf });
                }
                0x06 => return (f.k, steps),
                other => panic!("instruction {other:#x} at {} not emulated", pc - 1),
            }
        }
    }

    /// What the filter is meant to answer, written from its description, not its code.
    fn meant(nr: u32, arch: u32, arg0: u64) -> u32 {
        let (eperm, enosys) = (libc::SECCOMP_RET_ERRNO | libc::EPERM as u32, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32);
        if arch != AUDIT_ARCH_X86_64 {
            return libc::SECCOMP_RET_KILL_PROCESS;
        }
        if nr >= X32_BIT || nr == libc::SYS_clone3 as u32 {
            return enosys;
        }
        if DENIED.iter().any(|&d| d as u32 == nr) {
            return eperm;
        }
        if nr == libc::SYS_clone as u32 && CLONE_NS_FLAGS.iter().any(|&f| arg0 & f != 0) {
            return eperm;
        }
        if nr == libc::SYS_personality as u32 && !PERSONALITIES.contains(&(arg0 & 0xffff_ffff)) {
            return eperm;
        }
        libc::SECCOMP_RET_ALLOW
    }

    #[test]
    fn every_syscall_gets_what_the_filter_means_and_allowed_ones_are_found_fast() {
        let programs = programs().unwrap();
        assert_eq!(programs.len(), 1);
        let program = &programs[0];
        let mut firsts = vec![0u64, 0xffff_ffff, libc::SIGCHLD as u64, (libc::CLONE_VM | libc::CLONE_THREAD) as u64, 0x0040_0000];
        firsts.extend(CLONE_NS_FLAGS.iter().map(|&f| f | libc::SIGCHLD as u64));
        firsts.extend(PERSONALITIES);
        let mut checked = 0;
        for arch in [AUDIT_ARCH_X86_64, AUDIT_ARCH_I386] {
            for nr in (0..1024).chain((0..1024).map(|n| n | X32_BIT)).chain([u32::MAX]) {
                for &arg0 in &firsts {
                    let (verdict, steps) = run(program, nr, arch, [arg0, 1, 2, 3, 4, 5]);
                    assert_eq!(verdict, meant(nr, arch, arg0), "syscall {nr:#x}, arch {arch:#x}, arg0 {arg0:#x}");
                    if verdict == libc::SECCOMP_RET_ALLOW && nr != libc::SYS_clone as u32 && nr != libc::SYS_personality as u32 {
                        // The arch check, the prefix, at most 5 comparisons and a leaf.
                        assert!(steps <= 16, "syscall {nr} took {steps} instructions");
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked > 40_000);
    }

    #[test]
    fn the_dispatch_sends_each_special_number_on_and_allows_the_rest() {
        let special = [3, 9, 10, 40, 41, 42, 43, 100, 200, 300, 301];
        let code = dispatch(&special).unwrap();
        let chain = code.len() as u32;
        // Appended: what the chain would be (a return of the number itself).
        let mut program = vec![sock_filter { code: LD_W_ABS, jt: 0, jf: 0, k: 0 }];
        program.extend(code);
        program.push(sock_filter { code: RET_K, jt: 0, jf: 0, k: chain });
        for nr in 0..400 {
            let (verdict, _) = run(&program, nr, AUDIT_ARCH_X86_64, [0; 6]);
            let expected = if special.contains(&nr) { chain } else { libc::SECCOMP_RET_ALLOW };
            assert_eq!(verdict, expected, "number {nr}");
        }
    }
}

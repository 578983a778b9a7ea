//! The runtime's seccomp filter: everything is allowed except calls that reshape the
//! sandbox (mounts, namespaces), reach into other processes or the kernel (ptrace, modules,
//! kexec, bpf, keyrings) or change host-wide state (clock, swap, reboot). A deny list, not
//! an allow list, because runtimes and native extensions use a long, changing tail of
//! syscalls; the namespaces, the unprivileged user and the empty capability sets are the
//! main walls, and this removes the kernel surface those walls do not cover.

// The filter is written for x86_64 only; elsewhere `programs` refuses, leaving its parts unused.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

use std::sync::OnceLock;

use super::SeccompError;
use seccompiler::BpfProgram;

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

// Classic BPF, as seccomp runs it.
const LD_W_ABS: u16 = 0x20;
const JEQ_K: u16 = 0x15;
const JGE_K: u16 = 0x35;
const JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;
/// Offsets into `struct seccomp_data`: the number, the arch, the first argument's low word.
const NR: u32 = 0;
const ARCH: u32 = 4;
const ARG0_LOW: u32 = 16;
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

/// Where a syscall number with a rule goes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Rule {
    Deny,
    Clone,
    Personality,
}

/// The filter, one program written here rather than by seccompiler (which installs it):
/// seccompiler tests the numbers with rules one by one, so a syscall walked 108 instructions
/// on average, and installing a filter costs the kernel a walk through it for every syscall
/// number (to build its cache of numbers always allowed), in every sandbox's start. Here a
/// binary search finds a number's rule, or its absence (ALLOW): a number without one runs
/// 13 instructions on average and 14 at most, arch check included (`clone` and
/// `personality`, whose arguments are looked at, up to 20).
///
/// In order: anything but x86_64 kills the process; x32 numbers and `clone3` get ENOSYS
/// (`clone3`'s flags live in memory a filter cannot read; ENOSYS makes libc fall back to
/// `clone`, whose flags are checked); then the search.
#[cfg(target_arch = "x86_64")]
fn build() -> Result<Vec<BpfProgram>, SeccompError> {
    let mut rules: Vec<(u32, Rule)> = DENIED.iter().map(|&nr| (nr as u32, Rule::Deny)).collect();
    rules.push((libc::SYS_clone as u32, Rule::Clone));
    rules.push((libc::SYS_personality as u32, Rule::Personality));
    rules.sort_unstable_by_key(|(nr, _)| *nr);
    if rules.windows(2).any(|pair| pair[0].0 == pair[1].0) {
        return Err(SeccompError::Layout("a syscall number with two rules"));
    }

    let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    let mut program = vec![
        ins(LD_W_ABS, ARCH),
        jump(JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
        ins(RET_K, libc::SECCOMP_RET_KILL_PROCESS),
        ins(LD_W_ABS, NR),
        jump(JGE_K, X32_BIT, 1, 0),
        jump(JEQ_K, libc::SYS_clone3 as u32, 0, 1),
        ins(RET_K, enosys),
    ];
    let (search, exits) = dispatch(&rules)?;
    let base = program.len();
    program.extend(search);

    // The rules' blocks, after the search; each exit jumps forward to its rule's block.
    let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    let deny_at = program.len();
    program.push(ins(RET_K, eperm));
    // clone: any namespace flag (all in the low word, which is all the kernel reads) denies.
    let ns_flags = CLONE_NS_FLAGS.iter().fold(0u64, |all, f| all | f);
    let ns_flags = u32::try_from(ns_flags).map_err(|_| SeccompError::Layout("a namespace flag above the low word"))?;
    let clone_at = program.len();
    program.extend([ins(LD_W_ABS, ARG0_LOW), jump(JSET_K, ns_flags, 0, 1), ins(RET_K, eperm), ins(RET_K, libc::SECCOMP_RET_ALLOW)]);
    // personality (an int): only the listed ones are allowed.
    let personality_at = program.len();
    program.push(ins(LD_W_ABS, ARG0_LOW));
    for (i, &p) in PERSONALITIES.iter().enumerate() {
        // Jump over the remaining tests and the EPERM to the ALLOW at the end.
        let over = u8::try_from(PERSONALITIES.len() - i).map_err(|_| SeccompError::Layout("too many personalities"))?;
        program.push(jump(JEQ_K, p as u32, over, 0));
    }
    program.extend([ins(RET_K, eperm), ins(RET_K, libc::SECCOMP_RET_ALLOW)]);

    for (at, rule) in exits {
        let to = match rule {
            Rule::Deny => deny_at,
            Rule::Clone => clone_at,
            Rule::Personality => personality_at,
        };
        program[base + at].jt = offset(base + at, to)?;
    }
    if program.len() > 4096 {
        return Err(SeccompError::Layout("seccomp program too long"));
    }
    Ok(vec![program])
}

/// An instruction without jumps.
fn ins(code: u16, k: u32) -> seccompiler::sock_filter {
    seccompiler::sock_filter { code, jt: 0, jf: 0, k }
}

/// A conditional jump: `jt` instructions forward when it holds, `jf` when not.
fn jump(code: u16, k: u32, jt: u8, jf: u8) -> seccompiler::sock_filter {
    seccompiler::sock_filter { code, jt, jf, k }
}

/// The jump from the instruction at `from` that lands on `to` (forward, as BPF's are).
fn offset(from: usize, to: usize) -> Result<u8, SeccompError> {
    u8::try_from(to - from - 1).map_err(|_| SeccompError::Layout("seccomp filter jump too long"))
}

/// Numbers a leaf of [`dispatch`] tests one by one.
const LEAF: usize = 3;

/// Where [`dispatch`] leaves a number with a rule: the index of its `JEQ` (whose jump the
/// caller sets) and the rule.
type Exits = Vec<(usize, Rule)>;

/// A binary search over `rules` (sorted by number), with the number in the accumulator:
/// every number without a rule returns ALLOW; each with one reaches a `JEQ` listed in the
/// [`Exits`].
fn dispatch(rules: &[(u32, Rule)]) -> Result<(Vec<seccompiler::sock_filter>, Exits), SeccompError> {
    fn node(s: &[(u32, Rule)], out: &mut Vec<seccompiler::sock_filter>, exits: &mut Exits) -> Result<(), SeccompError> {
        if s.len() <= LEAF {
            for &(nr, rule) in s {
                exits.push((out.len(), rule));
                out.push(ins(JEQ_K, nr));
            }
            out.push(ins(RET_K, libc::SECCOMP_RET_ALLOW));
            return Ok(());
        }
        // Below s[mid]: the left half's numbers; from it on, the right half's.
        let mid = s.len() / 2;
        let at = out.len();
        out.push(ins(JGE_K, s[mid].0));
        node(&s[..mid], out, exits)?;
        out[at].jt = offset(at, out.len())?;
        node(&s[mid..], out, exits)
    }
    let (mut out, mut exits) = (Vec::new(), Vec::new());
    node(rules, &mut out, &mut exits)?;
    Ok((out, exits))
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
                0x15 | 0x35 | 0x45 => {
                    let taken = match f.code {
                        0x15 => acc == f.k,
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
        // The high word: the kernel reads only the low one, for both calls.
        firsts.extend(firsts.clone().iter().map(|f| f | 0xdead_0000_0000_0000));
        let mut checked = 0;
        // Also: x86_64's number without its 64-bit flag, and no arch at all.
        for arch in [AUDIT_ARCH_X86_64, AUDIT_ARCH_I386, 0x4000_003e, 0] {
            let edges = [X32_BIT - 1, 0x8000_0000 | libc::SYS_mount as u32, 0x8000_0000, u32::MAX];
            for nr in (0..1024).chain((0..1024).map(|n| n | X32_BIT)).chain(edges) {
                for &arg0 in &firsts {
                    let (verdict, steps) = run(program, nr, arch, [arg0, 1, 2, 3, 4, 5]);
                    assert_eq!(verdict, meant(nr, arch, arg0), "syscall {nr:#x}, arch {arch:#x}, arg0 {arg0:#x}");
                    // The arch check, the prefix, at most 5 comparisons, a leaf and a rule.
                    assert!(steps <= 20, "syscall {nr} took {steps} instructions");
                    checked += 1;
                }
            }
        }
        assert!(checked > 80_000);
        // A few answers pinned by number, so a list emptied by mistake cannot pass with it.
        let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
        for (nr, arg0, verdict) in [
            (0, 0, libc::SECCOMP_RET_ALLOW),             // read
            (165, 0, eperm),                             // mount
            (272, 0, eperm),                             // unshare
            (101, 0, eperm),                             // ptrace
            (56, 0x1000_0011, eperm),                    // clone(CLONE_NEWUSER | SIGCHLD)
            (56, 0x0001_0f00, libc::SECCOMP_RET_ALLOW),  // clone of a thread
            (135, 0x0040_0000, eperm),                   // personality(ADDR_NO_RANDOMIZE)
            (135, 0xffff_ffff, libc::SECCOMP_RET_ALLOW), // personality query
        ] {
            assert_eq!(run(program, nr, AUDIT_ARCH_X86_64, [arg0, 0, 0, 0, 0, 0]).0, verdict, "syscall {nr}, arg0 {arg0:#x}");
        }
    }

    #[test]
    fn the_search_sends_each_number_with_a_rule_to_it_and_allows_the_rest() {
        let rules = [
            (3, Rule::Deny),
            (9, Rule::Clone),
            (10, Rule::Deny),
            (40, Rule::Personality),
            (41, Rule::Deny),
            (42, Rule::Deny),
            (43, Rule::Clone),
            (100, Rule::Deny),
            (200, Rule::Deny),
            (300, Rule::Personality),
            (301, Rule::Deny),
        ];
        let (code, exits) = dispatch(&rules).unwrap();
        assert_eq!(exits.len(), rules.len());
        // Each rule's block returns a code of its own, right after the search.
        let mut program = vec![ins(LD_W_ABS, NR)];
        program.extend(code);
        let blocks = [(Rule::Deny, 1), (Rule::Clone, 2), (Rule::Personality, 3)];
        let start = program.len();
        for (_, verdict) in blocks {
            program.push(ins(RET_K, verdict));
        }
        for (at, rule) in exits {
            let block = blocks.iter().position(|(r, _)| *r == rule).unwrap();
            program[at + 1].jt = offset(at + 1, start + block).unwrap();
        }
        for nr in 0..400 {
            let (verdict, _) = run(&program, nr, AUDIT_ARCH_X86_64, [0; 6]);
            let expected = match rules.iter().find(|(n, _)| *n == nr) {
                Some((_, rule)) => blocks.iter().find(|(r, _)| r == rule).unwrap().1,
                None => libc::SECCOMP_RET_ALLOW,
            };
            assert_eq!(verdict, expected, "number {nr}");
        }
    }
}

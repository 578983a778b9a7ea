//! The cgroup layouts end to end on the recording double: what detection, creation,
//! limits, freezing, killing and removal write on cgroup2, hybrid and v1 hosts, and what an
//! unusable host says. `real` runs the same life cycle on this host's kernel (as root).

use super::mountinfo::samples::{HYBRID, V1, V2};
use super::recording::RecordingFs;
use super::*;
use std::collections::BTreeMap;

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

#[derive(Debug, Clone, Copy, PartialEq)]
enum Owner {
    Running,
    Gone,
    /// No lock file: a server of an earlier release.
    Unknown,
}

#[derive(Debug)]
struct FakeClaim(String, Arc<Mutex<Vec<String>>>);

impl owner::Claim for FakeClaim {
    fn note(&self) -> Option<String> {
        Some(format!("/data/{}", self.0))
    }
    fn forget(self: Box<Self>) {
        self.1.lock().unwrap().push(format!("forget {}", self.0));
    }
}

/// Claims in memory: each instance's owner, and a log of what happened to the claims.
#[derive(Debug, Default, Clone)]
struct LoggedOwners {
    states: Arc<Mutex<BTreeMap<String, Owner>>>,
    log: Arc<Mutex<Vec<String>>>,
}

impl LoggedOwners {
    fn with(states: &[(&str, Owner)]) -> LoggedOwners {
        let owners = LoggedOwners::default();
        owners.states.lock().unwrap().extend(states.iter().map(|(i, o)| (i.to_string(), *o)));
        owners
    }
    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Owners for LoggedOwners {
    fn claim(&self, instance: &str) -> std::io::Result<Box<dyn owner::Claim>> {
        self.log.lock().unwrap().push(format!("claim {instance}"));
        self.states.lock().unwrap().insert(instance.to_owned(), Owner::Running);
        Ok(Box::new(FakeClaim(instance.to_owned(), self.log.clone())))
    }
    fn orphaned(&self, instance: &str) -> Option<Box<dyn owner::Claim>> {
        let gone = self.states.lock().unwrap().get(instance) == Some(&Owner::Gone);
        if gone {
            self.log.lock().unwrap().push(format!("orphaned {instance}"));
        }
        gone.then(|| Box::new(FakeClaim(instance.to_owned(), self.log.clone())) as Box<dyn owner::Claim>)
    }
}

fn open(fs: &RecordingFs, mountinfo: &str) -> CgroupManager {
    CgroupManager::open_with("t", Arc::new(fs.clone()), mountinfo, &LoggedOwners::default()).expect("open")
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
fn cgroup_hybrid_layout() {
    let fs = hybrid_fs();
    let m = open(&fs, HYBRID);
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
    let m = open(&fs, V2);
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
    let m = open(&fs, V1);
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
        ["write /sys/fs/cgroup/freezer/nimbus-t/e1/freezer.state FROZEN", "write /sys/fs/cgroup/freezer/nimbus-t/e1/freezer.state THAWED",]
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
    let _m = open(&fs, HYBRID);
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
fn cgroup_sets_of_servers_that_are_gone_are_removed_at_start() {
    // (instance, its owner, what a start of "t" does with its set)
    let cases = [("gone", Owner::Gone, true), ("running", Owner::Running, false), ("old", Owner::Unknown, false)];
    let fs = hybrid_fs();
    for (instance, _, _) in cases {
        for mount in ["unified", "memory", "cpu", "pids"] {
            fs.group(&format!("/sys/fs/cgroup/{mount}/nimbus-{instance}"), "");
            fs.group(&format!("/sys/fs/cgroup/{mount}/nimbus-{instance}/env"), "31\n");
        }
    }
    fs.group("/sys/fs/cgroup/memory/docker", "");
    let owners = LoggedOwners::with(&cases.map(|(i, o, _)| (i, o)));
    let m = CgroupManager::open_with("t", Arc::new(fs.clone()), HYBRID, &owners).expect("open");
    assert_eq!(m.gone(), ["/data/gone"], "where the gone server kept its data, for the rest of its leftovers");
    for (instance, owner, removed) in cases {
        for mount in ["unified", "memory", "cpu", "pids"] {
            let dir = format!("/sys/fs/cgroup/{mount}/nimbus-{instance}");
            assert_eq!(!fs.exists(Path::new(&dir)), removed, "{dir} ({owner:?})");
        }
    }
    assert!(fs.exists(Path::new("/sys/fs/cgroup/memory/docker")), "not ours");
    assert!(fs.take_ops().contains(&"kill 31".to_owned()), "the dead server's environments are killed");
    assert_eq!(owners.log(), ["claim t", "orphaned gone", "forget gone"]);
}

#[test]
fn cgroup_stop_removes_the_whole_set() {
    for (fs, mountinfo) in [(hybrid_fs(), HYBRID), (v2_fs(), V2), (v1_fs(), V1)] {
        let owners = LoggedOwners::default();
        let m = CgroupManager::open_with("t", Arc::new(fs.clone()), mountinfo, &owners).expect("open");
        let parents = m.parents();
        let idle = m.create("idle", &Limits::for_memory_mb(128)).expect("create");
        let busy = m.create("busy", &Limits::for_memory_mb(128)).expect("create");
        busy.add_pid(51).expect("add");
        fs.take_ops();
        m.remove_all();
        assert!(parents.iter().all(|p| !fs.exists(p)), "{mountinfo}: {parents:?} left");
        assert!(fs.take_ops().iter().any(|op| op == "kill 51" || op.ends_with("nimbus-t/cgroup.kill 1")), "{mountinfo}: busy killed");
        drop((idle, busy, m));
        assert_eq!(fs.take_ops(), Vec::<String>::new(), "{mountinfo}: nothing left to do after the stop");
        assert_eq!(owners.log(), ["claim t", "forget t"], "{mountinfo}");
    }
}

#[test]
fn cgroup_unusable_hosts_say_why() {
    fn reason(fs: &RecordingFs, mountinfo: &str) -> String {
        CgroupManager::open_with("t", Arc::new(fs.clone()), mountinfo, &LoggedOwners::default()).expect_err("unusable").to_string()
    }
    assert_eq!(reason(&RecordingFs::default(), ""), "no cgroup filesystem is mounted");

    let fs = RecordingFs::default();
    fs.hierarchy("/sys/fs/cgroup", &[("cgroup.controllers", "cpu io\n")], &[]);
    assert!(reason(&fs, V2).contains("memory, pids not available"), "{}", reason(&fs, V2));

    let fs = hybrid_fs();
    fs.fail_mkdir(std::io::ErrorKind::PermissionDenied);
    assert!(reason(&fs, HYBRID).contains("need root"));

    CgroupManager::open_with("../x", Arc::new(hybrid_fs()), HYBRID, &LoggedOwners::default()).unwrap_err();
}

#[test]
fn cgroup_create_rejects_bad_ids_and_cleans_up_on_failure() {
    let fs = hybrid_fs();
    let m = open(&fs, HYBRID);
    for bad in ["", ".", "..", "../e", "a/b", ".hidden", "a b", "a\n"] {
        let e = m.create(bad, &Limits::for_memory_mb(128)).expect_err(bad);
        assert!(matches!(e, CgroupError::InvalidName { what: "environment id", .. }), "{bad:?}: {e}");
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
mod real;

#[test]
fn the_end_of_init_writes_the_cpu_share_alone() {
    // Made for init (no CPU limit), then held to its memory size's share: one write, the
    // only one a group made with the share from the start has that the init one lacks.
    type Case = (&'static str, fn() -> RecordingFs, &'static str, &'static str);
    let cases: [Case; 3] = [
        ("hybrid", hybrid_fs, HYBRID, "write /sys/fs/cgroup/cpu/nimbus-t/e1/cpu.cfs_quota_us 100000"),
        ("v1", v1_fs, V1, "write /sys/fs/cgroup/cpu,cpuacct/nimbus-t/e1/cpu.cfs_quota_us 100000"),
        ("v2", v2_fs, V2, "write /sys/fs/cgroup/nimbus-t/e1/cpu.max 100000 100000"),
    ];
    for (name, make, mountinfo, share) in cases {
        let made_with_share = {
            let fs = make();
            let m = open(&fs, mountinfo);
            fs.take_ops();
            let _env = m.create("e1", &Limits::for_memory_mb(1769)).expect("create");
            fs.take_ops()
        };
        let fs = make();
        let m = open(&fs, mountinfo);
        fs.take_ops();
        let env = m.create("e1", &Limits::for_init(1769)).expect("create");
        let made_for_init = fs.take_ops();
        let missing: Vec<&String> = made_with_share.iter().filter(|op| !made_for_init.contains(op)).collect();
        assert_eq!(missing, [share], "{name}");
        env.set_cpu_share(&Limits::for_memory_mb(1769)).expect("share");
        assert_eq!(fs.take_ops(), [share], "{name}");
    }
}

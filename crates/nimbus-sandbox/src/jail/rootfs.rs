//! The sandbox's file system: a plan (plain data, computed from the spec and what exists
//! on the host) and the code that carries it out inside init's new mount namespace,
//! enters it and leaves the root read-only; and the mount namespace sandboxes are made
//! from ([`enter_sandbox_namespace`]). Keeping the plan separate lets the server
//! and tests see exactly what will be visible without being root.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use super::error::{path, sys as call};
use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};
use rustix::thread::UnshareFlags;

use super::sys;
use super::{JailError, JailSpec, SpecError};

/// Where the new root's tmpfs is mounted while it is built. Sources are all held open
/// (`open_tree`) before this is mounted, so shadowing the host's `/tmp` in our private
/// mount namespace hides nothing we need, even a code dir that lives under `/tmp`.
const STAGING: &str = "/tmp";

/// System directories bound read-only (or recreated as the same symlink when the host
/// has merged them into `/usr`).
const SYSTEM_DIRS: &[&str] = &["/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin"];

/// Host `/etc` entries the runtime may need (name service, DNS, TLS roots, the dynamic
/// loader's cache, Debian's alternatives). Secrets (`shadow`, `gshadow`, `sudoers`,
/// `ssl/private`) are never listed; `passwd`, `group` and `hosts` are generated instead.
const ETC_ENTRIES: &[&str] = &[
    "resolv.conf",
    "nsswitch.conf",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "ssl/certs",
    "pki/tls/certs",
    "pki/ca-trust/extracted",
    "alternatives",
];

/// The sandbox's time zone file, as on AWS (UTC whatever the host's zone): a symlink, so a
/// zone lookup reads its name from the link. A plain file (a bind of the host's) makes ICU,
/// and with it Node, find the zone by comparing the file with every file under
/// `/usr/share/zoneinfo`: about 700 opens each time the zone is detected.
const LOCALTIME: &str = "/usr/share/zoneinfo/UTC";

/// Device nodes bound from the host's `/dev`.
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// One thing to create in the new root; targets are paths inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountStep {
    /// A read-only, nosuid, nodev bind of a host directory or file (with its submounts).
    Bind {
        source: PathBuf,
        target: PathBuf,
        dir: bool,
    },
    /// The server's shared mount point, bound read-only; the copy is a slave of the host's
    /// mount, so binds the server makes on it later appear inside.
    SlaveBind {
        source: PathBuf,
        target: PathBuf,
    },
    /// A host device node (nosuid, noexec; device access is its point).
    Device {
        source: PathBuf,
        target: PathBuf,
    },
    Symlink {
        target: PathBuf,
        points_to: PathBuf,
    },
    /// A file written into the root before it turns read-only.
    File {
        target: PathBuf,
        contents: String,
    },
    Dir {
        target: PathBuf,
    },
    /// A writable directory of the root's own tmpfs (bound onto itself, so it stays
    /// writable when the root turns read-only). Every such directory shares the root's
    /// size, AWS's ephemeral storage: one file system per sandbox, not one per directory
    /// (each file system the kernel makes costs a superblock and its shrinker, whose
    /// bookkeeping grows with every memory cgroup on the host).
    Scratch {
        target: PathBuf,
        mode: u32,
        noexec: bool,
    },
    /// A procfs of the sandbox's own PID namespace.
    Proc {
        target: PathBuf,
    },
}

impl MountStep {
    pub fn target(&self) -> &Path {
        match self {
            MountStep::Bind { target, .. }
            | MountStep::SlaveBind { target, .. }
            | MountStep::Device { target, .. }
            | MountStep::Symlink { target, .. }
            | MountStep::File { target, .. }
            | MountStep::Dir { target }
            | MountStep::Scratch { target, .. }
            | MountStep::Proc { target } => target,
        }
    }

    /// The host path to capture before the new root is mounted, and whether to take its
    /// submounts too.
    fn source(&self) -> Option<(&Path, bool)> {
        match self {
            MountStep::Bind { source, .. } | MountStep::SlaveBind { source, .. } => Some((source, true)),
            MountStep::Device { source, .. } => Some((source, false)),
            _ => None,
        }
    }
}

/// A bind target must be absolute, plain (no `..`), and not the root itself.
pub fn check_target(target: &Path) -> Result<(), SpecError> {
    if !target.is_absolute() || target.components().any(|c| !matches!(c, Component::RootDir | Component::Normal(_))) {
        return Err(SpecError::BindTargetNotPlain(target.to_owned()));
    }
    if target == Path::new("/") {
        return Err(SpecError::BindTargetRoot);
    }
    // These are made after the binds and would hide them.
    for reserved in ["/proc", "/dev", "/tmp"] {
        if target.starts_with(reserved) {
            return Err(SpecError::BindTargetReserved { target: target.to_owned(), under: reserved });
        }
    }
    Ok(())
}

enum Kind {
    Missing,
    Dir,
    File,
    CharDevice,
    Symlink(PathBuf),
}

/// What is at a host path; `follow` resolves symlinks (a dangling one is `Missing`).
fn kind(path: &Path, follow: bool) -> Kind {
    let meta = if follow { fs::metadata(path) } else { fs::symlink_metadata(path) };
    let Ok(meta) = meta else { return Kind::Missing };
    let t = meta.file_type();
    if t.is_symlink() {
        return match fs::read_link(path) {
            Ok(to) => Kind::Symlink(to),
            Err(_) => Kind::Missing,
        };
    }
    if t.is_dir() {
        Kind::Dir
    } else if t.is_char_device() {
        Kind::CharDevice
    } else {
        Kind::File
    }
}

fn required_dir(what: &'static str, path: &Path) -> Result<(), SpecError> {
    match kind(path, true) {
        Kind::Dir => Ok(()),
        Kind::Missing => Err(SpecError::DirMissing { what, path: path.to_owned() }),
        _ => Err(SpecError::NotADir { what, path: path.to_owned() }),
    }
}

/// The steps for `spec` on this host (it only looks at host paths), in an order where
/// every parent exists before its children.
pub fn plan(spec: &JailSpec) -> Result<Vec<MountStep>, SpecError> {
    let mut steps = Vec::new();
    for dir in SYSTEM_DIRS {
        let path = Path::new(dir);
        match kind(path, false) {
            Kind::Dir => steps.push(MountStep::Bind { source: path.into(), target: path.into(), dir: true }),
            Kind::Symlink(to) => steps.push(MountStep::Symlink { target: path.into(), points_to: to }),
            Kind::Missing if *dir == "/usr" => return Err(SpecError::NoUsr),
            _ => {}
        }
    }

    steps.push(MountStep::Dir { target: "/etc".into() });
    for entry in ETC_ENTRIES {
        let path = Path::new("/etc").join(entry);
        match kind(&path, true) {
            Kind::Dir => steps.push(MountStep::Bind { source: path.clone(), target: path, dir: true }),
            Kind::File => steps.push(MountStep::Bind { source: path.clone(), target: path, dir: false }),
            _ => {}
        }
    }
    if matches!(kind(Path::new(LOCALTIME), true), Kind::File) {
        steps.push(MountStep::Symlink { target: "/etc/localtime".into(), points_to: LOCALTIME.into() });
    }
    // Generated rather than bound: the host's lists of users would leak, and the sandbox's
    // user must have a name (Node's os.userInfo() and Python's getpass fail without one).
    steps.push(MountStep::File {
        target: "/etc/passwd".into(),
        contents: format!(
            "root:x:0:0:root:/root:/sbin/nologin\nsbx_user1051:x:{}:{}::/tmp:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n",
            spec.uid, spec.gid
        ),
    });
    steps.push(MountStep::File {
        target: "/etc/group".into(),
        contents: format!("root:x:0:\nsbx_user1051:x:{}:\nnogroup:x:65534:\n", spec.gid),
    });
    // The hostname must resolve without DNS (getaddrinfo(gethostname()) is common).
    steps.push(MountStep::File {
        target: "/etc/hosts".into(),
        contents: format!("127.0.0.1\tlocalhost {0}\n::1\tlocalhost ip6-localhost ip6-loopback {0}\n", spec.hostname),
    });

    let task = PathBuf::from("/var/task");
    if let Some(src) = &spec.task_mount {
        required_dir("task_mount", src)?;
        steps.push(MountStep::SlaveBind { source: src.clone(), target: task });
    } else if let Some(src) = &spec.code_dir {
        required_dir("code_dir", src)?;
        steps.push(MountStep::Bind { source: src.clone(), target: task, dir: true });
    } else {
        steps.push(MountStep::Dir { target: task });
    }
    if let Some(src) = &spec.runtime_dir {
        required_dir("runtime_dir", src)?;
        steps.push(MountStep::Bind { source: src.clone(), target: "/var/runtime".into(), dir: true });
    }
    if let Some(src) = &spec.opt_mount {
        required_dir("opt_mount", src)?;
        steps.push(MountStep::SlaveBind { source: src.clone(), target: "/opt".into() });
    } else if let Some(src) = &spec.layers_dir {
        required_dir("layers_dir", src)?;
        steps.push(MountStep::Bind { source: src.clone(), target: "/opt".into(), dir: true });
    }
    for b in &spec.ro_binds {
        check_target(&b.target)?;
        let dir = match kind(&b.source, true) {
            Kind::Dir => true,
            Kind::File => false,
            Kind::Missing => return Err(SpecError::BindSourceMissing(b.source.clone())),
            _ => return Err(SpecError::BindSourceKind(b.source.clone())),
        };
        steps.push(MountStep::Bind { source: b.source.clone(), target: b.target.clone(), dir });
    }

    steps.push(MountStep::Scratch { target: "/tmp".into(), mode: 0o1777, noexec: false });
    steps.push(MountStep::Proc { target: "/proc".into() });

    // /dev: a directory of the (read-only) root holding only harmless nodes.
    steps.push(MountStep::Dir { target: "/dev".into() });
    for dev in DEVICES {
        let path = Path::new("/dev").join(dev);
        if let Kind::CharDevice = kind(&path, true) {
            steps.push(MountStep::Device { source: path.clone(), target: path });
        }
    }
    steps.push(MountStep::Scratch { target: "/dev/shm".into(), mode: 0o1777, noexec: true });
    for (name, to) in [("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")]
    {
        steps.push(MountStep::Symlink { target: Path::new("/dev").join(name), points_to: to.into() });
    }
    Ok(steps)
}

fn staged(target: &Path) -> PathBuf {
    // Targets are absolute (checked); joining a relative form keeps them under STAGING.
    Path::new(STAGING).join(target.strip_prefix("/").unwrap_or(target))
}

fn mkdirs(path: &Path, mode: u32) -> io::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(mode).create(path)
}

/// In the sandboxes' mount namespace, the one directory of its small root: the host's
/// mounts (see [`enter_sandbox_namespace`]).
const HOST_DIR: &str = "host";

/// Makes the calling thread's mount namespace the one sandboxes are made from: a namespace
/// of its own whose root is a small read-only tmpfs holding only [`HOST_DIR`], a copy of
/// the host's mounts (slaves: what the host mounts later reaches them). The thread's root
/// is then that copy, so paths read as on the host, and its working directory the small
/// root, which processes started from it inherit. A sandbox-init started so finds the
/// small root there after its own unshare: it mounts the sandbox's root over it and
/// detaches the host's mounts in one call (see [`build`]), where it would otherwise
/// `pivot_root`, which looks at every task on the host for roots to move, so that each
/// new sandbox paid for every process already running.
///
/// Pivots itself once. Call on a thread of its own that stays in the namespace.
pub fn enter_sandbox_namespace() -> Result<(), JailError> {
    sys::unshare(UnshareFlags::FS | UnshareFlags::NEWNS).map_err(call("unshare"))?;
    rustix::mount::mount_change("/", MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC).map_err(call("make / a slave"))?;
    let host = sys::open_tree_clone(Path::new("/"), true).map_err(call("copy the host's mounts"))?;
    let staging = Path::new(STAGING);
    rustix::mount::mount(
        c"tmpfs",
        staging,
        c"tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        Some(c"size=16k,mode=755"),
    )
    .map_err(call("mount the small root"))?;
    let at = staging.join(HOST_DIR);
    fs::DirBuilder::new().mode(0o755).create(&at).map_err(path("mkdir", &at))?;
    sys::move_mount_to(&host, &at).map_err(path("move_mount onto", &at))?;
    std::env::set_current_dir(staging).map_err(call("chdir small root"))?;
    rustix::process::pivot_root(".", ".").map_err(call("pivot_root"))?;
    rustix::mount::unmount(".", UnmountFlags::DETACH).map_err(call("detach old root"))?;
    std::env::set_current_dir("/").map_err(call("chdir /"))?;
    sys::set_mount_attrs(Path::new("/"), libc::MOUNT_ATTR_RDONLY).map_err(call("make the small root read-only"))?;
    rustix::process::chroot(HOST_DIR).map_err(call("chroot"))?;
    Ok(())
}

/// Moves the calling process (a child about to exec sandbox-init) into the sandboxes'
/// mount namespace open at `ns`, as if started from the thread that made it: root the
/// host's mounts, working directory the small root. Raw syscalls only (for `pre_exec`).
pub fn join_sandbox_namespace(ns: std::os::fd::BorrowedFd<'_>) -> io::Result<()> {
    // setns makes the namespace's root (the small root) both root and working directory.
    rustix::thread::move_into_link_name_space(ns, Some(rustix::thread::LinkNameSpaceType::Mount))?;
    rustix::process::chroot(HOST_DIR)?;
    Ok(())
}

/// Whether this process was started in the sandboxes' mount namespace: its working
/// directory is the root of a mount (the small root) whose [`HOST_DIR`] is the root of the
/// mount its root is. Symlinks are not followed.
fn below_small_root() -> bool {
    use rustix::fs::{AtFlags, StatxAttributes, StatxFlags, CWD};
    let mount_root = |p: &str| -> Option<u64> {
        let s = rustix::fs::statx(CWD, p, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::MNT_ID).ok()?;
        let known = StatxFlags::from_bits_retain(s.stx_mask).contains(StatxFlags::MNT_ID)
            && s.stx_attributes_mask.contains(StatxAttributes::MOUNT_ROOT);
        (known && s.stx_attributes.contains(StatxAttributes::MOUNT_ROOT)).then_some(s.stx_mnt_id)
    };
    match (mount_root("."), mount_root(HOST_DIR), mount_root("/")) {
        (Some(cwd), Some(host), Some(root)) => host == root && cwd != root,
        _ => false,
    }
}

/// Carries out `steps` in the calling process's (new, unshared) mount namespace, enters
/// the result and leaves `/` (and so `/dev`) read-only; the root is one tmpfs of
/// `size_mb`, whose [`MountStep::Scratch`] directories stay writable. Must run inside the new PID
/// namespace (as its init) so that `/proc` shows the sandbox's processes.
pub fn build(steps: &[MountStep], size_mb: u32, marks: &mut Vec<(&'static str, u64)>) -> Result<(), JailError> {
    // Our copy of the mounts we started with (the host's, or the sandboxes' namespace's)
    // stops sending events back (nothing we mount leaks out) but keeps receiving them:
    // that is what carries a late /var/task bind in.
    rustix::mount::mount_change("/", MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC).map_err(call("make / a slave"))?;

    // Capture every source first (see STAGING).
    let mut trees: Vec<Option<OwnedFd>> = Vec::with_capacity(steps.len());
    for step in steps {
        let tree = match step.source() {
            Some((source, recursive)) => {
                let tree = sys::open_tree_clone(source, recursive).map_err(path("open_tree", source))?;
                let attrs = match step {
                    MountStep::Device { .. } => libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NOEXEC,
                    _ => libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV,
                };
                match step {
                    // The late /var/task and /opt follow the host's binds onto them.
                    MountStep::SlaveBind { .. } => sys::set_tree_attrs(&tree, attrs, recursive),
                    // Everything else is cut off from the host's mount events: a mount the
                    // host makes later under a bound directory (its own, writable, on a host
                    // whose `/` is shared) would otherwise appear in every sandbox.
                    _ => sys::set_tree_attrs_private(&tree, attrs, recursive),
                }
                .map_err(path("mount_setattr", source))?;
                Some(tree)
            }
            None => None,
        };
        trees.push(tree);
    }
    marks.push(("capture", sys::monotonic_ns()));

    let staging = Path::new(STAGING);
    // The generated files' pages on top, so that /tmp holds exactly `size_mb`.
    let generated_kb: u64 = steps
        .iter()
        .map(|s| match s {
            MountStep::File { contents, .. } => (contents.len() as u64).div_ceil(4096) * 4,
            _ => 0,
        })
        .sum();
    let data = CString::new(format!("size={}k,mode=755", u64::from(size_mb) * 1024 + generated_kb)).expect("no NUL in formatted numbers");
    rustix::mount::mount(c"tmpfs", staging, c"tmpfs", MountFlags::NOSUID | MountFlags::NODEV, Some(data.as_c_str()))
        .map_err(call("mount root tmpfs"))?;

    // Directories already made, so each parent costs one mkdir at most (syscalls are most
    // of this function's time).
    let mut made: std::collections::HashSet<PathBuf> = [staging.to_path_buf()].into();
    for (step, tree) in steps.iter().zip(trees) {
        let at = staged(step.target());
        let parent = at.parent().unwrap_or(staging);
        if !made.contains(parent) {
            mkdirs(parent, 0o755).map_err(path("mkdir", parent))?;
            made.extend(parent.ancestors().map(Path::to_path_buf));
        }
        match step {
            MountStep::Bind { dir, .. } => {
                if *dir {
                    fs::DirBuilder::new().mode(0o755).create(&at).map_err(path("mkdir", step.target()))?;
                    made.insert(at.clone());
                } else {
                    touch(&at).map_err(path("create", step.target()))?;
                }
            }
            MountStep::SlaveBind { .. } | MountStep::Dir { .. } | MountStep::Scratch { .. } | MountStep::Proc { .. } => {
                fs::DirBuilder::new().mode(0o755).create(&at).map_err(path("mkdir", step.target()))?;
                made.insert(at.clone());
            }
            MountStep::Device { .. } => touch(&at).map_err(path("create", step.target()))?,
            MountStep::Symlink { points_to, .. } => std::os::unix::fs::symlink(points_to, &at).map_err(path("symlink", step.target()))?,
            MountStep::File { contents, .. } => fs::write(&at, contents).map_err(path("write", step.target()))?,
        }
        if let Some(tree) = tree {
            sys::move_mount_to(&tree, &at).map_err(path("bind", step.target()))?;
        }
        match step {
            MountStep::Scratch { mode, noexec, .. } => {
                // mkdir's mode went through the umask.
                fs::set_permissions(&at, fs::Permissions::from_mode(*mode)).map_err(path("chmod", step.target()))?;
                // A mount of its own (the root's nosuid and nodev carried over), which the
                // root's read-only flag does not reach.
                rustix::mount::mount_bind(&at, &at).map_err(path("bind onto itself", step.target()))?;
                if *noexec {
                    sys::set_mount_attrs(&at, libc::MOUNT_ATTR_NOEXEC).map_err(path("mount_setattr", step.target()))?;
                }
            }
            MountStep::Proc { .. } => {
                rustix::mount::mount(c"proc", &at, c"proc", MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC, None)
                    .map_err(call("mount /proc"))?;
            }
            _ => {}
        }
    }

    marks.push(("populate", sys::monotonic_ns()));
    let moved = below_small_root();
    if moved {
        // Started in the sandboxes' namespace (see `enter_sandbox_namespace`): the new root
        // goes over the small root (the working directory), the host's mounts are detached
        // with everything under them, and this process (whose children inherit it) enters
        // the new root. Nothing of the host is left in the namespace: only the small root,
        // underneath, empty but for the directory the host's mounts were on. Joining the
        // namespace (`setns`, as a zygote does) lands on the top mount, the new root.
        let new_root = rustix::fs::open(
            staging,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(call("open new root"))?;
        rustix::mount::mount_move(staging, ".").map_err(call("move the new root over the small root"))?;
        rustix::mount::unmount(HOST_DIR, UnmountFlags::DETACH | UnmountFlags::NOFOLLOW).map_err(call("detach the host's mounts"))?;
        rustix::process::fchdir(&new_root).map_err(call("chdir new root"))?;
        rustix::process::chroot(".").map_err(call("chroot"))?;
    } else {
        std::env::set_current_dir(staging).map_err(call("chdir new root"))?;
        // pivot_root(".", "."): the documented way to pivot without a put_old directory.
        rustix::process::pivot_root(".", ".").map_err(call("pivot_root"))?;
        // The old root now sits on top of the new one at "."; detach it with everything under it.
        rustix::mount::unmount(".", UnmountFlags::DETACH).map_err(call("detach old root"))?;
    }
    std::env::set_current_dir("/").map_err(call("chdir /"))?;
    marks.push((if moved { "move" } else { "pivot" }, sys::monotonic_ns()));
    sys::set_mount_attrs(Path::new("/"), libc::MOUNT_ATTR_RDONLY).map_err(call("make / read-only"))?;
    marks.push(("read-only", sys::monotonic_ns()));
    Ok(())
}

fn touch(path: &Path) -> io::Result<()> {
    fs::OpenOptions::new().write(true).create(true).truncate(false).mode(0o444).open(path).map(drop)
}

//! Reads `/proc/self/mountinfo` for the cgroup mounts: where cgroup2 is, and which v1
//! hierarchy carries which controllers. Plain text in, plain data out, so the layout
//! detection can be tested on any host's table.

use std::path::PathBuf;

/// What `/proc/self/mountinfo` says about cgroup mounts.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Mounts {
    pub(super) v2: Option<PathBuf>,
    /// v1 mount points with their controllers (e.g. `cpu`, `cpuacct` when co-mounted).
    pub(super) v1: Vec<(PathBuf, Vec<String>)>,
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

pub(super) fn parse_mountinfo(text: &str) -> Mounts {
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

/// Mount tables of the three layouts, as real hosts print them; the layout tests use them too.
#[cfg(test)]
pub(super) mod samples {
    /// v1 controllers, a controller-less cgroup2 at `/sys/fs/cgroup/unified` (this machine).
    pub const HYBRID: &str = "\
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
    pub const V2: &str = "\
25 1 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";
    /// Legacy v1: cpu co-mounted with cpuacct, no cgroup2.
    pub const V1: &str = "\
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:1 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
";
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `text` parses to this cgroup2 mount and these v1 mounts (`path=controller+controller`).
    fn check(text: &str, v2: Option<&str>, v1: &[&str]) {
        let m = parse_mountinfo(text);
        assert_eq!(m.v2, v2.map(PathBuf::from), "{text}");
        let names: Vec<String> = m.v1.iter().map(|(p, c)| format!("{}={}", p.display(), c.join("+"))).collect();
        assert_eq!(names, v1, "{text}");
    }

    #[test]
    fn cgroup_mountinfo_parsing() {
        // name=systemd is not a controller; tmpfs is not a cgroup.
        check(
            samples::HYBRID,
            Some("/sys/fs/cgroup/unified"),
            &[
                "/sys/fs/cgroup/cpu=cpu",
                "/sys/fs/cgroup/cpuacct=cpuacct",
                "/sys/fs/cgroup/cpuset=cpuset",
                "/sys/fs/cgroup/memory=memory",
                "/sys/fs/cgroup/devices=devices",
                "/sys/fs/cgroup/freezer=freezer",
                "/sys/fs/cgroup/blkio=blkio",
                "/sys/fs/cgroup/pids=pids",
            ],
        );
        check(samples::V2, Some("/sys/fs/cgroup"), &[]);
        check(
            samples::V1,
            None,
            &[
                "/sys/fs/cgroup/cpu,cpuacct=cpu+cpuacct",
                "/sys/fs/cgroup/memory=memory",
                "/sys/fs/cgroup/freezer=freezer",
                "/sys/fs/cgroup/pids=pids",
            ],
        );
        // Escaped mount points; lines without the separator are skipped.
        check("41 31 0:38 / /mnt/my\\040cg rw - cgroup2 none rw\nbroken line\n", Some("/mnt/my cg"), &[]);
        // A bind mount of a hierarchy counts once; the first cgroup2 mount wins.
        check(
            "1 0 0:1 / /a rw - cgroup cgroup rw,memory\n2 0 0:1 / /b rw - cgroup cgroup rw,memory\n3 0 0:2 / /c rw - cgroup2 cgroup2 rw\n4 0 0:2 / /d rw - cgroup2 cgroup2 rw\n",
            Some("/c"),
            &["/a=memory"],
        );
        check("", None, &[]);
    }
}

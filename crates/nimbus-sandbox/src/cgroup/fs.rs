//! The kernel seam of the cgroup code: every cgroupfs read, write, mkdir and kill goes
//! through [`CgroupFs`], so the layout and lifecycle logic runs against a recording double
//! in tests, without root. [`KernelCgroupFs`] is the real one.

use std::fmt;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

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

//! The kernel seam of the cgroup code: every cgroupfs read, write, mkdir and kill goes
//! through [`CgroupFs`], so the layout and lifecycle logic runs against a recording double
//! in tests, without root. [`KernelCgroupFs`] is the real one.

use std::fmt;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

use super::error::{self, CgroupError};

pub trait CgroupFs: Send + Sync + fmt::Debug {
    fn read(&self, path: &Path) -> Result<String, CgroupError>;
    /// One `write(2)` of the whole value (cgroupfs takes each write as one command).
    fn write(&self, path: &Path, value: &str) -> Result<(), CgroupError>;
    fn mkdir(&self, path: &Path) -> Result<(), CgroupError>;
    fn rmdir(&self, path: &Path) -> Result<(), CgroupError>;
    fn exists(&self, path: &Path) -> bool;
    /// Immediate subdirectories (child groups).
    fn subdirs(&self, path: &Path) -> Result<Vec<PathBuf>, CgroupError>;
    /// Opens a file for repeated reads or writes on the invoke path.
    fn open(&self, path: &Path, writable: bool) -> Result<Box<dyn CgroupFile>, CgroupError>;
    /// Sends SIGKILL to a process (ours to send: it is in one of our groups). Returns a
    /// pidfd that polls readable once it has ended, when the kernel gives one (`None` for a
    /// process already gone, or where there are no pidfds: the caller then looks again later).
    fn kill(&self, pid: u32) -> Result<Option<OwnedFd>, CgroupError>;
}

/// An open cgroupfs file: each call is one positioned read or write at offset 0, which makes
/// the kernel regenerate (or re-parse) the whole value.
pub trait CgroupFile: Send + Sync + fmt::Debug {
    fn write(&self, value: &[u8]) -> Result<(), CgroupError>;
    fn read(&self, buf: &mut [u8]) -> Result<usize, CgroupError>;
}

/// [`CgroupFs`] on the real kernel.
#[derive(Debug, Default)]
pub struct KernelCgroupFs;

impl CgroupFs for KernelCgroupFs {
    fn read(&self, path: &Path) -> Result<String, CgroupError> {
        std::fs::read_to_string(path).map_err(error::read(path))
    }

    fn write(&self, path: &Path, value: &str) -> Result<(), CgroupError> {
        let fd = rustix::fs::open(path, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty()).map_err(|e| error::open(path)(e.into()))?;
        let n = rustix::io::write(&fd, value.as_bytes()).map_err(|e| error::write(path, value)(e.into()))?;
        if n != value.len() {
            return Err(error::write(path, value)(io::Error::new(io::ErrorKind::WriteZero, "short write")));
        }
        Ok(())
    }

    fn mkdir(&self, path: &Path) -> Result<(), CgroupError> {
        std::fs::create_dir(path).map_err(error::mkdir(path))
    }

    fn rmdir(&self, path: &Path) -> Result<(), CgroupError> {
        std::fs::remove_dir(path).map_err(error::rmdir(path))
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn subdirs(&self, path: &Path) -> Result<Vec<PathBuf>, CgroupError> {
        let mut dirs = Vec::new();
        for entry in std::fs::read_dir(path).map_err(error::list(path))? {
            let entry = entry.map_err(error::list(path))?;
            if entry.file_type().map_err(error::list(path))?.is_dir() {
                dirs.push(entry.path());
            }
        }
        dirs.sort();
        Ok(dirs)
    }

    fn open(&self, path: &Path, writable: bool) -> Result<Box<dyn CgroupFile>, CgroupError> {
        let access = if writable { OFlags::RDWR } else { OFlags::RDONLY };
        let fd = rustix::fs::open(path, access | OFlags::CLOEXEC, Mode::empty()).map_err(|e| error::open(path)(e.into()))?;
        Ok(Box::new(KernelCgroupFile { fd, path: path.to_owned() }))
    }

    fn kill(&self, pid: u32) -> Result<Option<OwnedFd>, CgroupError> {
        use rustix::io::Errno;
        use rustix::process::Signal;
        let bad_pid = || CgroupError::Kill { pid, source: io::Error::new(io::ErrorKind::InvalidInput, "not a pid") };
        let target = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw).ok_or_else(bad_pid)?;
        let killed = |e: Errno| CgroupError::Kill { pid, source: e.into() };
        match rustix::process::pidfd_open(target, rustix::process::PidfdFlags::empty()) {
            Ok(fd) => match rustix::process::pidfd_send_signal(&fd, Signal::KILL) {
                Ok(()) => Ok(Some(fd)),
                // Ended between the two calls.
                Err(Errno::SRCH) => Ok(None),
                Err(e) => Err(killed(e)),
            },
            Err(Errno::SRCH) => Ok(None),
            // No pidfd (out of descriptors, an old kernel): by pid, and looked at again later.
            Err(_) => match rustix::process::kill_process(target, Signal::KILL) {
                Ok(()) | Err(Errno::SRCH) => Ok(None),
                Err(e) => Err(killed(e)),
            },
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
    fn write(&self, value: &[u8]) -> Result<(), CgroupError> {
        rustix::io::pwrite(&self.fd, value, 0).map_err(|e| error::write(&self.path, &String::from_utf8_lossy(value))(e.into()))?;
        Ok(())
    }

    fn read(&self, buf: &mut [u8]) -> Result<usize, CgroupError> {
        rustix::io::pread(&self.fd, buf, 0).map_err(|e| error::read(&self.path)(e.into()))
    }
}

/// Moves the calling process into an environment's groups by writing `0` ("myself") to each of
/// its `cgroup.procs` files. Meant for the sandboxed child, first thing after fork (it allocates
/// nothing for paths under 256 bytes, so it may run in `pre_exec`). Call it before
/// `unshare(CLONE_NEWCGROUP)` (the kernel refuses moves to groups outside the caller's cgroup
/// namespace) and before changing the root (the paths are the host's). Its errors carry no
/// path: building one would allocate.
pub fn enter_current_process(procs_files: &[PathBuf]) -> io::Result<()> {
    for path in procs_files {
        let fd = rustix::fs::open(path.as_path(), OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())?;
        rustix::io::write(&fd, b"0")?;
    }
    Ok(())
}

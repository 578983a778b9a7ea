//! What can go wrong with cgroups, and where. Every kernel error carries the operation and
//! the path (or pid) it was about, as youki's `WrappedIoError` does, so a log line says
//! which file of which group refused what; the rest say why a host's cgroups are unusable.

use std::io;
use std::path::{Path, PathBuf};

/// An error of the cgroup code.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    /// A write of `value` (one cgroupfs command) was refused.
    #[error("write {value:?} to {}: {source}", path.display())]
    Write { path: PathBuf, value: String, source: io::Error },
    #[error("open {}: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("mkdir {}: {source}", path.display())]
    Mkdir { path: PathBuf, source: io::Error },
    #[error("rmdir {}: {source}", path.display())]
    Rmdir { path: PathBuf, source: io::Error },
    #[error("list {}: {source}", path.display())]
    List { path: PathBuf, source: io::Error },
    #[error("kill {pid}: {source}")]
    Kill { pid: u32, source: io::Error },
    /// Instance names and environment ids become directory names.
    #[error("invalid cgroup {what} {name:?}: use [A-Za-z0-9._-], no leading dot")]
    InvalidName { what: &'static str, name: String },
    #[error("cgroups need Linux")]
    NotLinux,
    #[error("no cgroup filesystem is mounted")]
    NotMounted,
    #[error("cgroup controller(s) {} not available (neither a v1 mount nor in cgroup2's cgroup.controllers)", .0.join(", "))]
    ControllersMissing(Vec<&'static str>),
    #[error("cannot enable cgroup2 controllers: {0}")]
    EnableControllers(#[source] Box<CgroupError>),
    #[error("cannot create cgroups ({0}); they need root and a writable cgroupfs")]
    CreateParent(#[source] Box<CgroupError>),
    #[error("no cgroup freezer on this host")]
    NoFreezer,
}

impl CgroupError {
    /// The kind of the kernel's error, for the errors that came from the kernel.
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            CgroupError::Read { source, .. }
            | CgroupError::Write { source, .. }
            | CgroupError::Open { source, .. }
            | CgroupError::Mkdir { source, .. }
            | CgroupError::Rmdir { source, .. }
            | CgroupError::List { source, .. }
            | CgroupError::Kill { source, .. } => Some(source.kind()),
            CgroupError::EnableControllers(e) | CgroupError::CreateParent(e) => e.io_kind(),
            _ => None,
        }
    }

    /// Whether the file or directory was not there (an optional file, a group already gone).
    pub fn is_not_found(&self) -> bool {
        self.io_kind() == Some(io::ErrorKind::NotFound)
    }
}

/// `Result::map_err` helpers that attach the path: `fs::read(p).map_err(read(p))`.
pub(super) fn read(path: &Path) -> impl FnOnce(io::Error) -> CgroupError + '_ {
    move |source| CgroupError::Read { path: path.to_owned(), source }
}

pub(super) fn write<'a>(path: &'a Path, value: &'a str) -> impl FnOnce(io::Error) -> CgroupError + 'a {
    move |source| CgroupError::Write { path: path.to_owned(), value: value.to_owned(), source }
}

pub(super) fn open(path: &Path) -> impl FnOnce(io::Error) -> CgroupError + '_ {
    move |source| CgroupError::Open { path: path.to_owned(), source }
}

pub(super) fn mkdir(path: &Path) -> impl FnOnce(io::Error) -> CgroupError + '_ {
    move |source| CgroupError::Mkdir { path: path.to_owned(), source }
}

pub(super) fn rmdir(path: &Path) -> impl FnOnce(io::Error) -> CgroupError + '_ {
    move |source| CgroupError::Rmdir { path: path.to_owned(), source }
}

pub(super) fn list(path: &Path) -> impl FnOnce(io::Error) -> CgroupError + '_ {
    move |source| CgroupError::List { path: path.to_owned(), source }
}

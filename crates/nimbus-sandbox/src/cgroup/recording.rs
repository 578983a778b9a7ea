//! The test double of [`CgroupFs`]: a file system in memory that records every change, with
//! just enough kernel behaviour (`cgroup.kill`, `cgroup.freeze`, `cgroup.procs`, busy
//! `rmdir`) for the layout and lifecycle logic to run as on a real host.

use super::error::{self, CgroupError};
use super::{CgroupFile, CgroupFs};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
struct State {
    dirs: BTreeSet<PathBuf>,
    files: BTreeMap<PathBuf, String>,
    /// Files the "kernel" puts in each new group below a mount.
    templates: Vec<(PathBuf, Vec<(&'static str, &'static str)>)>,
    ops: Vec<String>,
    mkdir_error: Option<io::ErrorKind>,
}

#[derive(Debug, Default, Clone)]
pub struct RecordingFs(Arc<Mutex<State>>);

impl RecordingFs {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().expect("test double lock")
    }

    /// A mounted hierarchy: its root files, and the files each new group gets.
    pub fn hierarchy(&self, mount: &str, root: &[(&'static str, &'static str)], group: &[(&'static str, &'static str)]) -> &Self {
        let mut s = self.state();
        s.dirs.insert(PathBuf::from(mount));
        for (f, v) in root {
            s.files.insert(Path::new(mount).join(f), (*v).to_owned());
        }
        s.templates.push((PathBuf::from(mount), group.to_vec()));
        self
    }

    /// A group that already exists (a previous run's leftover), with its processes.
    pub fn group(&self, dir: &str, procs: &str) -> &Self {
        self.make_dir(Path::new(dir));
        self.state().files.insert(Path::new(dir).join("cgroup.procs"), procs.to_owned());
        self
    }

    pub fn set(&self, path: &str, content: &str) {
        self.state().files.insert(PathBuf::from(path), content.to_owned());
    }

    pub fn get(&self, path: &str) -> Option<String> {
        self.state().files.get(Path::new(path)).cloned()
    }

    pub fn fail_mkdir(&self, kind: io::ErrorKind) {
        self.state().mkdir_error = Some(kind);
    }

    pub fn take_ops(&self) -> Vec<String> {
        std::mem::take(&mut self.state().ops)
    }

    fn make_dir(&self, path: &Path) {
        let mut s = self.state();
        s.dirs.insert(path.to_owned());
        let template = s.templates.iter().find(|(m, _)| path.starts_with(m)).map(|(_, t)| t.clone()).unwrap_or_default();
        for (f, v) in template {
            s.files.insert(path.join(f), v.to_owned());
        }
    }
}

impl CgroupFs for RecordingFs {
    fn read(&self, path: &Path) -> Result<String, CgroupError> {
        self.state().files.get(path).cloned().ok_or_else(|| error::read(path)(io::ErrorKind::NotFound.into()))
    }

    fn write(&self, path: &Path, value: &str) -> Result<(), CgroupError> {
        let mut s = self.state();
        if !s.files.contains_key(path) {
            return Err(error::write(path, value)(io::ErrorKind::NotFound.into()));
        }
        s.ops.push(format!("write {} {value}", path.display()));
        let dir = path.parent().expect("file in a dir").to_owned();
        match path.file_name().and_then(|n| n.to_str()) {
            Some("cgroup.procs") => {
                let f = s.files.get_mut(path).expect("checked");
                f.push_str(value);
                f.push('\n');
            }
            Some("cgroup.kill") => {
                for (p, v) in s.files.iter_mut() {
                    if p.starts_with(&dir) && p.ends_with("cgroup.procs") {
                        v.clear();
                    }
                }
            }
            Some("cgroup.freeze") => {
                s.files.insert(dir.join("cgroup.events"), format!("populated 0\nfrozen {value}\n"));
            }
            _ => {
                s.files.insert(path.to_owned(), value.to_owned());
            }
        }
        Ok(())
    }

    fn mkdir(&self, path: &Path) -> Result<(), CgroupError> {
        {
            let mut s = self.state();
            if let Some(kind) = s.mkdir_error {
                return Err(error::mkdir(path)(kind.into()));
            }
            if s.dirs.contains(path) {
                return Err(error::mkdir(path)(io::ErrorKind::AlreadyExists.into()));
            }
            if !path.parent().is_some_and(|p| s.dirs.contains(p)) {
                return Err(error::mkdir(path)(io::ErrorKind::NotFound.into()));
            }
            s.ops.push(format!("mkdir {}", path.display()));
        }
        self.make_dir(path);
        Ok(())
    }

    fn rmdir(&self, path: &Path) -> Result<(), CgroupError> {
        let mut s = self.state();
        if !s.dirs.contains(path) {
            return Err(error::rmdir(path)(io::ErrorKind::NotFound.into()));
        }
        let busy = s.dirs.iter().any(|d| d.parent() == Some(path))
            || s.files.get(&path.join("cgroup.procs")).is_some_and(|p| !p.trim().is_empty());
        if busy {
            return Err(error::rmdir(path)(rustix::io::Errno::BUSY.into()));
        }
        s.ops.push(format!("rmdir {}", path.display()));
        s.dirs.remove(path);
        s.files.retain(|p, _| p.parent() != Some(path));
        Ok(())
    }

    fn exists(&self, path: &Path) -> bool {
        let s = self.state();
        s.dirs.contains(path) || s.files.contains_key(path)
    }

    fn subdirs(&self, path: &Path) -> Result<Vec<PathBuf>, CgroupError> {
        Ok(self.state().dirs.iter().filter(|d| d.parent() == Some(path)).cloned().collect())
    }

    fn open(&self, path: &Path, _writable: bool) -> Result<Box<dyn CgroupFile>, CgroupError> {
        if !self.state().files.contains_key(path) {
            return Err(error::open(path)(io::ErrorKind::NotFound.into()));
        }
        Ok(Box::new(RecordingFile { fs: self.clone(), path: path.to_owned() }))
    }

    fn kill(&self, pid: u32) -> Result<Option<std::os::fd::OwnedFd>, CgroupError> {
        let mut s = self.state();
        s.ops.push(format!("kill {pid}"));
        let pid = pid.to_string();
        for (p, v) in s.files.iter_mut() {
            if p.ends_with("cgroup.procs") {
                *v = v.split_whitespace().filter(|x| *x != pid).map(|x| format!("{x}\n")).collect();
            }
        }
        Ok(None)
    }
}

#[derive(Debug)]
struct RecordingFile {
    fs: RecordingFs,
    path: PathBuf,
}

impl CgroupFile for RecordingFile {
    fn write(&self, value: &[u8]) -> Result<(), CgroupError> {
        let value = std::str::from_utf8(value).expect("the cgroup code writes text");
        self.fs.write(&self.path, value)
    }

    fn read(&self, buf: &mut [u8]) -> Result<usize, CgroupError> {
        let content = self.fs.read(&self.path)?;
        let n = content.len().min(buf.len());
        buf[..n].copy_from_slice(&content.as_bytes()[..n]);
        Ok(n)
    }
}

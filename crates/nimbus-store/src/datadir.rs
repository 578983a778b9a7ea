//! The data directory: its layout, and the lock that keeps a second server off it.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

/// An opened, locked data directory. The lock lives as long as this value.
pub struct DataDir {
    root: PathBuf,
    _lock: File,
}

impl DataDir {
    /// Creates the layout if needed and takes an exclusive lock; fails with a clear message
    /// when another server holds it.
    pub fn open(root: &Path) -> Result<DataDir, String> {
        std::fs::create_dir_all(root).map_err(|e| format!("cannot create data directory {}: {e}", root.display()))?;
        let lock_path = root.join("nimbus.lock");
        let mut lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&lock_path)
            .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
        if flock(&lock, FlockOperation::NonBlockingLockExclusive).is_err() {
            let holder = std::fs::read_to_string(&lock_path).unwrap_or_default();
            return Err(format!(
                "data directory {} is locked by another Nimbus server (pid {}); stop it or use another --data",
                root.display(),
                holder.trim()
            ));
        }
        lock.set_len(0).ok();
        write!(lock, "{}", std::process::id()).ok();
        for sub in ["blobs", "code", "layers", "opt", "logs", "runtimes", "tmp", "envs"] {
            std::fs::create_dir_all(root.join(sub)).map_err(|e| format!("cannot create {sub}: {e}"))?;
        }
        // Absolute from here on: sandboxes bind paths under it, and a relative path would
        // be resolved inside the sandbox's root instead of the server's working directory.
        let root = std::fs::canonicalize(root).map_err(|e| format!("cannot resolve data directory {}: {e}", root.display()))?;
        Ok(DataDir { root, _lock: lock })
    }

    /// Runs `f` on the data directory at `root` if it is one (it has a `nimbus.lock`) and no
    /// server holds it, with its lock held meanwhile (for removing what a crashed server
    /// left there). Whether `f` ran.
    pub fn if_unused(root: &Path, f: impl FnOnce(&Path)) -> bool {
        let Ok(lock) = std::fs::OpenOptions::new().read(true).write(true).open(root.join("nimbus.lock")) else { return false };
        if flock(&lock, FlockOperation::NonBlockingLockExclusive).is_err() {
            return false;
        }
        f(root);
        true
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn db_path(&self) -> PathBuf {
        self.root.join("nimbus.db")
    }
    pub fn blobs(&self) -> PathBuf {
        self.root.join("blobs")
    }
    pub fn code(&self) -> PathBuf {
        self.root.join("code")
    }
    /// Unpacked layer versions, one directory per digest.
    pub fn layers(&self) -> PathBuf {
        self.root.join("layers")
    }
    /// Merged `/opt` trees, one per distinct list of layers.
    pub fn opt(&self) -> PathBuf {
        self.root.join("opt")
    }
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }
    pub fn runtimes(&self) -> PathBuf {
        self.root.join("runtimes")
    }
    /// Per-environment mount points (sandboxes that get their code late).
    pub fn envs(&self) -> PathBuf {
        self.root.join("envs")
    }
    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_open_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDir::open(dir.path()).unwrap();
        let err = DataDir::open(dir.path()).err().unwrap();
        assert!(err.contains("locked by another Nimbus server"), "{err}");
        drop(first);
        DataDir::open(dir.path()).unwrap();
    }
}

//! Who owns a set of cgroups (`nimbus-<instance>`): a running server holds an exclusive
//! `flock` on `<dir>/<instance>.lock` for as long as it runs. The kernel releases the lock
//! when the process dies, even by SIGKILL, so a later server (on any data directory) can tell
//! the sets of servers that are gone (the file is there and nobody holds it) from those still
//! running, and remove them. A set without a lock file (a server of an earlier release, or
//! one whose `/run` is not this one) is never touched: its owner cannot be known.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;

/// Where servers keep their claims (host-wide, like `/run/lock`; emptied at boot).
pub const DEFAULT_DIR: &str = "/run/nimbus/cgroups";

/// How long a claim waits for a sweeping server to let go of it.
const CLAIM_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The claims of cgroup sets: one per server instance.
pub trait Owners: Send + Sync + fmt::Debug {
    /// Claims `instance` for this server, waiting (briefly) while a sweeping server holds it.
    fn claim(&self, instance: &str) -> io::Result<Box<dyn Claim>>;
    /// A claim on `instance` if its server is gone (its lock file exists and is free); None
    /// while a server holds it, or when it has no lock file.
    fn orphaned(&self, instance: &str) -> Option<Box<dyn Claim>>;
}

/// A held claim: released when dropped (its set may still be there: a later sweep removes
/// it), or [`Claim::forget`]-ed once its set is gone.
pub trait Claim: Send + Sync + fmt::Debug {
    /// What its server wrote in it (its data directory), if anything.
    fn note(&self) -> Option<String>;
    /// Removes the lock file, then releases it: the set it stood for is gone.
    fn forget(self: Box<Self>);
}

/// Claims as lock files in a directory (made owner-only), each holding its server's note.
#[derive(Debug, Clone)]
pub struct LockFiles {
    dir: PathBuf,
    note: String,
}

#[derive(Debug)]
struct LockFile {
    path: PathBuf,
    /// Holds the `flock`; closing it releases the lock.
    file: File,
}

impl Claim for LockFile {
    fn note(&self) -> Option<String> {
        use std::io::Read;
        let mut text = String::new();
        (&self.file).read_to_string(&mut text).ok()?;
        Some(text).filter(|t| !t.is_empty())
    }

    fn forget(self: Box<Self>) {
        // Unlinked while still held: a server claiming the same name at this moment finds,
        // once it gets the lock, that its file is no longer the path's, and opens a new one.
        let _ = std::fs::remove_file(&self.path);
    }
}

impl LockFiles {
    pub fn new(dir: impl Into<PathBuf>) -> LockFiles {
        LockFiles { dir: dir.into(), note: String::new() }
    }

    /// What this server writes in its claim (its data directory, so a later server can
    /// clean up there too after a crash).
    pub fn with_note(mut self, note: &str) -> LockFiles {
        self.note = note.to_owned();
        self
    }

    fn path(&self, instance: &str) -> PathBuf {
        self.dir.join(format!("{instance}.lock"))
    }
}

/// Whether `file` (locked) is still the one at `path`, and not one unlinked by a sweep.
fn still_at(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

impl Owners for LockFiles {
    fn claim(&self, instance: &str) -> io::Result<Box<dyn Claim>> {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&self.dir)?;
        let path = self.path(instance);
        // A sweep holds a claim for as long as it takes to kill and remove one set; a claim
        // held longer is a live server's (on the same data directory, which its own lock
        // refuses anyway).
        let deadline = std::time::Instant::now() + CLAIM_WAIT;
        loop {
            let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(&path)?;
            match rustix::fs::flock(file.as_fd(), FlockOperation::NonBlockingLockExclusive) {
                Ok(()) if still_at(&file, &path) => {
                    use std::io::Write;
                    file.set_len(0)?;
                    (&file).write_all(self.note.as_bytes())?;
                    return Ok(Box::new(LockFile { path, file }));
                }
                Ok(()) => continue,
                Err(e) if e == rustix::io::Errno::WOULDBLOCK && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn orphaned(&self, instance: &str) -> Option<Box<dyn Claim>> {
        let path = self.path(instance);
        let file = std::fs::OpenOptions::new().read(true).write(true).open(&path).ok()?;
        rustix::fs::flock(file.as_fd(), FlockOperation::NonBlockingLockExclusive).ok()?;
        still_at(&file, &path).then(|| Box::new(LockFile { path, file }) as Box<dyn Claim>)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_owner_lock_files_tell_live_servers_from_gone_ones() {
        let dir = std::env::temp_dir().join(format!("nimbus-owner-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let owners = LockFiles::new(&dir).with_note("/srv/data");
        assert!(owners.orphaned("a").is_none(), "no lock file: owner unknown, never swept");

        let held = owners.claim("a").expect("claim");
        assert!(dir.join("a.lock").exists());
        assert!(owners.orphaned("a").is_none(), "held by a live server");

        drop(held); // the server died: the kernel released its lock, the file stays
        let orphan = owners.orphaned("a").expect("a dead server's claim");
        assert_eq!(orphan.note().as_deref(), Some("/srv/data"), "where it kept its data");
        assert!(owners.orphaned("a").is_none(), "taken by the sweeping server");
        orphan.forget();
        assert!(!dir.join("a.lock").exists(), "forgotten once its set is gone");
        assert!(owners.orphaned("a").is_none());

        // A claim after a forget makes a new file.
        let again = owners.claim("a").expect("claim");
        assert!(owners.orphaned("a").is_none());
        again.forget();
        let _ = std::fs::remove_dir_all(&dir);
    }
}

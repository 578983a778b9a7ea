//! Bodies on disk, kept apart from the database logic: where a blob lives, how a staged file
//! becomes a blob durably (rename, then fsync of the directory that names it), hard links for
//! copies, removal of replaced blobs, and the clean-up at open of what a crash left behind.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use crate::error::ObjectError;

pub(crate) const BLOBS: &str = "blobs";
pub(crate) const STAGING: &str = "staging";

/// A fresh blob id (32 hex characters).
pub(crate) fn new_blob_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// `<dir>/blobs/<first two characters>/<id>`.
pub(crate) fn blob_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(BLOBS).join(fan_name(id)).join(id)
}

fn fan_name(id: &str) -> &str {
    id.get(..2).unwrap_or("__")
}

/// A new staging file's path.
pub(crate) fn staging_path(dir: &Path) -> PathBuf {
    dir.join(STAGING).join(uuid::Uuid::new_v4().simple().to_string())
}

/// The disk (or the quota) is full.
pub(crate) fn is_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull
        || e.kind() == io::ErrorKind::QuotaExceeded
        || matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// `e`, of kind `StorageFull` when the disk or the quota is full.
pub(crate) fn full_kind(e: io::Error) -> io::Error {
    if is_full(&e) && e.kind() != io::ErrorKind::StorageFull {
        io::Error::new(io::ErrorKind::StorageFull, e)
    } else {
        e
    }
}

/// An IO failure as the store reports it.
pub(crate) fn io_error(e: io::Error) -> ObjectError {
    if is_full(&e) {
        ObjectError::StorageFull
    } else {
        ObjectError::Internal(e.to_string())
    }
}

fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

/// The blob's fan-out directory, made (and its making synced) if missing.
fn fan_dir(dir: &Path, id: &str) -> io::Result<PathBuf> {
    let blobs = dir.join(BLOBS);
    let fan = blobs.join(fan_name(id));
    if !fan.is_dir() {
        match fs::create_dir(&fan) {
            Ok(()) => sync_dir(&blobs)?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(fan)
}

/// Moves a synced staging file to blob `id`, durably.
pub(crate) fn install(dir: &Path, staged: &Path, id: &str) -> io::Result<()> {
    let fan = fan_dir(dir, id)?;
    fs::rename(staged, fan.join(id))?;
    sync_dir(&fan)
}

/// Makes blob `id` another name of blob `source`, durably.
pub(crate) fn link(dir: &Path, source: &str, id: &str) -> io::Result<()> {
    let fan = fan_dir(dir, id)?;
    fs::hard_link(blob_path(dir, source), fan.join(id))?;
    sync_dir(&fan)
}

/// Removes blobs no row names any more (a failure only leaves a file the next open removes).
pub(crate) fn remove_blobs(dir: &Path, ids: &[String]) {
    for id in ids {
        if let Err(e) = fs::remove_file(blob_path(dir, id)) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!("objects: cannot remove blob {id}: {e}");
            }
        }
    }
}

fn remove_any(path: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    if meta.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    }
}

/// Empties the staging directory (bodies whose request never committed).
pub(crate) fn clean_staging(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir.join(STAGING))? {
        remove_any(&entry?.path())?;
        removed += 1;
    }
    Ok(removed)
}

/// Removes every file under `blobs/` that `referenced` does not claim.
pub(crate) fn clean_blobs<E>(dir: &Path, mut referenced: impl FnMut(&str) -> Result<bool, E>, io: fn(io::Error) -> E) -> Result<usize, E> {
    let mut removed = 0;
    for fan in fs::read_dir(dir.join(BLOBS)).map_err(io)? {
        let fan = fan.map_err(io)?;
        if !fan.file_type().map_err(io)?.is_dir() {
            remove_any(&fan.path()).map_err(io)?;
            removed += 1;
            continue;
        }
        for blob in fs::read_dir(fan.path()).map_err(io)? {
            let blob = blob.map_err(io)?;
            let keep = match blob.file_name().to_str() {
                Some(id) => fan_name(id) == fan.file_name().to_str().unwrap_or_default() && referenced(id)?,
                None => false,
            };
            if !keep {
                remove_any(&blob.path()).map_err(io)?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

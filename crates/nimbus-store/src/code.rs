//! Function code zips: checked before they are accepted (a real zip, no path leaving the
//! task root, within the unzipped limit) and unpacked once per digest into a read-only
//! cache that every environment running that code shares.

use std::io::{Cursor, Read};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use nimbus_model::validate::MAX_UNZIPPED_BYTES;

#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    #[error("Could not unzip uploaded file. Please check your file, then try to upload again.")]
    NotAZip,
    #[error("Unzipped size must be smaller than {MAX_UNZIPPED_BYTES} bytes")]
    TooLarge,
    #[error("Uploaded file contains an entry with an invalid path: {0}")]
    BadPath(String),
    #[error("unpacking code: {0}")]
    Io(#[from] std::io::Error),
}

/// What a checked zip contains.
#[derive(Debug, Clone, Copy)]
pub struct ZipSummary {
    pub unzipped_size: u64,
    pub entries: usize,
}

fn safe_relative(name: &str) -> Option<PathBuf> {
    let p = Path::new(name);
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

/// Checks a zip without writing anything.
pub fn inspect(zip: &[u8]) -> Result<ZipSummary, CodeError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(zip)).map_err(|_| CodeError::NotAZip)?;
    let mut total: u64 = 0;
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i).map_err(|_| CodeError::NotAZip)?;
        if safe_relative(entry.name()).is_none() {
            return Err(CodeError::BadPath(entry.name().to_string()));
        }
        total = total.saturating_add(entry.size());
        if total > MAX_UNZIPPED_BYTES {
            return Err(CodeError::TooLarge);
        }
    }
    Ok(ZipSummary { unzipped_size: total, entries: archive.len() })
}

/// Unpacks `zip` under `dest`, never outside it, writing at most the sizes the zip declared
/// (a lying header cannot inflate past the checked limit).
fn unpack_into(zip: &[u8], dest: &Path) -> Result<(), CodeError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(zip)).map_err(|_| CodeError::NotAZip)?;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|_| CodeError::NotAZip)?;
        let rel = safe_relative(entry.name()).ok_or_else(|| CodeError::BadPath(entry.name().to_string()))?;
        let out = dest.join(&rel);
        let mode = entry.unix_mode();
        const S_IFMT: u32 = 0o170000;
        const S_IFLNK: u32 = 0o120000;
        if entry.is_dir() {
            std::fs::create_dir_all(&out)?;
            continue;
        }
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if mode.is_some_and(|m| m & S_IFMT == S_IFLNK) {
            let mut target = String::new();
            entry.by_ref().take(4096).read_to_string(&mut target)?;
            // A link may only point inside the code tree.
            let resolved = rel.parent().unwrap_or(Path::new("")).join(&target);
            let mut depth: i32 = 0;
            for c in resolved.components() {
                match c {
                    Component::Normal(_) => depth += 1,
                    Component::ParentDir => depth -= 1,
                    Component::CurDir => {}
                    _ => depth = -1,
                }
                if depth < 0 {
                    return Err(CodeError::BadPath(format!("{} -> {target}", entry.name())));
                }
            }
            std::os::unix::fs::symlink(&target, &out)?;
            continue;
        }
        let mut f = std::fs::File::create(&out)?;
        let declared = entry.size();
        std::io::copy(&mut entry.by_ref().take(declared), &mut f)?;
        let perm = match mode {
            Some(m) if m & 0o111 != 0 => 0o555,
            _ => 0o444,
        };
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(perm))?;
    }
    Ok(())
}

/// Unpacked trees in use. A tree that its cache lets go of ([`CodeCache::remove`], when no
/// function refers to its code any more) while an environment still runs from it stays on
/// disk until the last [`Tree`] handle to it is dropped; a tree is taken off its path by a
/// rename first (under the lock that hands out handles), so nobody is ever handed a
/// half-deleted tree, and a new handle for the same path simply unpacks it again.
#[derive(Default)]
struct Leases {
    state: std::sync::Mutex<LeaseState>,
}

#[derive(Default)]
struct LeaseState {
    live: std::collections::HashMap<PathBuf, std::sync::Weak<Tree>>,
    /// Trees to remove when their last handle goes.
    doomed: std::collections::HashSet<PathBuf>,
}

/// A handle on an unpacked tree (a function's code, a layer, a merged `/opt`): the tree
/// stays on disk while any handle lives.
#[derive(Debug)]
pub struct Tree {
    path: PathBuf,
    leases: std::sync::Weak<Leases>,
    tmp: PathBuf,
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Leases")
    }
}

impl Tree {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let Some(leases) = self.leases.upgrade() else { return };
        let trash = {
            let mut st = leases.lock();
            // A newer handle for the same path may have replaced this one's entry.
            if st.live.get(&self.path).is_some_and(|w| w.strong_count() > 0) {
                return;
            }
            st.live.remove(&self.path);
            if !st.doomed.remove(&self.path) {
                return;
            }
            take_away(&self.path, &self.tmp)
        };
        if let Some(trash) = trash {
            let _ = remove_tree(&trash);
        }
    }
}

/// Moves `path` out of the way into `tmp` (to be removed there), if it exists.
fn take_away(path: &Path, tmp: &Path) -> Option<PathBuf> {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let trash = tmp.join(format!("trash-{}-{n}", std::process::id()));
    let _ = std::fs::create_dir_all(tmp);
    std::fs::rename(path, &trash).ok().map(|()| trash)
}

impl Leases {
    fn lock(&self) -> std::sync::MutexGuard<'_, LeaseState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A handle on `path` (the live one, or a new one); un-dooms it.
    fn lease(self: &Arc<Self>, path: PathBuf, tmp: &Path) -> Arc<Tree> {
        let mut st = self.lock();
        st.doomed.remove(&path);
        if let Some(t) = st.live.get(&path).and_then(std::sync::Weak::upgrade) {
            return t;
        }
        let t = Arc::new(Tree { path: path.clone(), leases: Arc::downgrade(self), tmp: tmp.to_path_buf() });
        st.live.insert(path, Arc::downgrade(&t));
        t
    }

    /// Removes `path` now if no handle holds it, else when the last one goes.
    fn dispose(&self, path: PathBuf, tmp: &Path) {
        let trash = {
            let mut st = self.lock();
            if st.live.get(&path).is_some_and(|w| w.strong_count() > 0) {
                st.doomed.insert(path);
                return;
            }
            st.live.remove(&path);
            take_away(&path, tmp)
        };
        if let Some(trash) = trash {
            let _ = remove_tree(&trash);
        }
    }

    /// Whether a handle holds `path`.
    fn held(&self, path: &Path) -> bool {
        self.lock().live.get(path).is_some_and(|w| w.strong_count() > 0)
    }
}

/// Unpacked code, one read-only directory per digest under `root`.
pub struct CodeCache {
    root: PathBuf,
    tmp: PathBuf,
    leases: Arc<Leases>,
}

impl CodeCache {
    pub fn new(root: PathBuf, tmp: PathBuf) -> CodeCache {
        CodeCache { root, tmp, leases: Arc::default() }
    }

    pub fn dir(&self, digest: &str) -> PathBuf {
        self.root.join(digest)
    }

    /// A handle on `digest`'s tree, which keeps it on disk while it lives; the tree may not
    /// be unpacked yet ([`CodeCache::ensure`] does that).
    pub fn lease(&self, digest: &str) -> Arc<Tree> {
        self.leases.lease(self.dir(digest), &self.tmp)
    }

    /// Returns the directory holding `digest`'s code, unpacking it first if needed. Unpacks
    /// into a temp dir and renames, so a crash mid-unpack leaves no half-filled directory.
    pub fn ensure(&self, digest: &str, zip: &[u8]) -> Result<PathBuf, CodeError> {
        let dir = self.dir(digest);
        if dir.is_dir() {
            return Ok(dir);
        }
        std::fs::create_dir_all(&self.tmp)?;
        std::fs::create_dir_all(&self.root)?;
        let staging = self.tmp.join(format!("code-{digest}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging)?;
        if let Err(e) = unpack_into(zip, &staging) {
            let _ = remove_tree(&staging);
            return Err(e);
        }
        match std::fs::rename(&staging, &dir) {
            Ok(()) => Ok(dir),
            Err(_) if dir.is_dir() => {
                let _ = remove_tree(&staging);
                Ok(dir)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Lets go of `digest`'s tree: removed now, or when the last environment running from it
    /// ends.
    pub fn remove(&self, digest: &str) {
        self.leases.dispose(self.dir(digest), &self.tmp);
    }

    /// The digests unpacked here.
    pub fn digests(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.root) else { return Vec::new() };
        entries.flatten().filter_map(|e| e.file_name().to_str().map(str::to_string)).collect()
    }
}

/// Removes a tree whose files were made read-only.
pub fn remove_tree(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if !path.exists() {
        return Ok(());
    }
    for entry in walk(path) {
        if !entry.is_symlink() && entry.is_dir() {
            let _ = std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o755));
        }
    }
    std::fs::remove_dir_all(path)
}

fn walk(path: &Path) -> Vec<PathBuf> {
    let mut out = vec![path.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        let p = out[i].clone();
        if p.is_dir() && !p.is_symlink() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                out.extend(rd.flatten().map(|e| e.path()));
            }
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    fn make_zip(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, data, mode) in files {
            w.start_file(*name, SimpleFileOptions::default().unix_permissions(*mode)).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn unpacks_with_modes() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CodeCache::new(dir.path().join("code"), dir.path().join("tmp"));
        let z = make_zip(&[("bootstrap", b"#!/bin/sh\n", 0o755), ("src/app.js", b"x", 0o644)]);
        assert_eq!(inspect(&z).unwrap().entries, 2);
        let d = cache.ensure("abc", &z).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let m = std::fs::metadata(d.join("bootstrap")).unwrap().permissions().mode();
        assert_eq!(m & 0o111, 0o111);
        assert_eq!(std::fs::read(d.join("src/app.js")).unwrap(), b"x");
        remove_tree(&d).unwrap();
    }

    #[test]
    fn rejects_escapes_and_garbage() {
        assert!(matches!(inspect(b"not a zip"), Err(CodeError::NotAZip)));
        let z = make_zip(&[("../evil", b"x", 0o644)]);
        assert!(matches!(inspect(&z), Err(CodeError::BadPath(_))));
        let z = make_zip(&[("/abs", b"x", 0o644)]);
        assert!(matches!(inspect(&z), Err(CodeError::BadPath(_))));
    }
}

/// The `/opt` a function sees: its layers' unpacked trees merged in order (a later layer's
/// file wins), built once per distinct list of layers from hard links into the unpacked
/// layers, so no cold start copies or unzips anything. Merged trees are derived data: one is
/// removed when the last handle on it goes, and built again when asked for.
pub struct OptCache {
    root: PathBuf,
    tmp: PathBuf,
    leases: Arc<Leases>,
}

impl OptCache {
    pub fn new(root: PathBuf, tmp: PathBuf) -> OptCache {
        OptCache { root, tmp, leases: Arc::default() }
    }

    /// Removes every merged tree (at start, before any is handed out).
    pub fn clear(&self) {
        if let Ok(entries) = std::fs::read_dir(&self.root) {
            for e in entries.flatten() {
                let path = e.path();
                if !self.leases.held(&path) {
                    if let Some(trash) = take_away(&path, &self.tmp) {
                        let _ = remove_tree(&trash);
                    }
                }
            }
        }
    }

    /// A handle on the merged tree for `layers` (unpacked layer dirs with their digests),
    /// built first if needed; it stays while a handle lives and goes with the last one.
    pub fn ensure(&self, layers: &[(String, PathBuf)]) -> Result<Arc<Tree>, CodeError> {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for (digest, _) in layers {
            h.update(digest.as_bytes());
            h.update(b"\n");
        }
        let key = hex::encode(h.finalize());
        let dir = self.root.join(&key);
        let tree = self.leases.lease(dir.clone(), &self.tmp);
        // Gone with its last handle.
        self.leases.lock().doomed.insert(dir.clone());
        self.build(&key, &dir, layers)?;
        Ok(tree)
    }

    fn build(&self, key: &str, dir: &Path, layers: &[(String, PathBuf)]) -> Result<(), CodeError> {
        if dir.is_dir() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.root)?;
        std::fs::create_dir_all(&self.tmp)?;
        let staging = self.tmp.join(format!("opt-{key}-{}", std::process::id()));
        let _ = remove_tree(&staging);
        std::fs::create_dir_all(&staging)?;
        for (_, layer) in layers {
            if let Err(e) = overlay(layer, &staging) {
                let _ = remove_tree(&staging);
                return Err(e.into());
            }
        }
        match std::fs::rename(&staging, dir) {
            Ok(()) => Ok(()),
            Err(_) if dir.is_dir() => {
                let _ = remove_tree(&staging);
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Lays `src`'s tree over `dest`: directories merge, files and links replace.
fn overlay(src: &Path, dest: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let from = entry.path();
        let to = dest.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            if to.symlink_metadata().is_ok_and(|m| !m.is_dir()) {
                std::fs::remove_file(&to)?;
            }
            std::fs::create_dir_all(&to)?;
            overlay(&from, &to)?;
            continue;
        }
        if let Ok(m) = to.symlink_metadata() {
            if m.is_dir() {
                remove_tree(&to)?;
            } else {
                std::fs::remove_file(&to)?;
            }
        }
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
        } else if std::fs::hard_link(&from, &to).is_err() {
            std::fs::copy(&from, &to)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod opt_tests {
    use super::*;

    #[test]
    fn later_layers_win() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::create_dir_all(a.join("python")).unwrap();
        std::fs::create_dir_all(b.join("python")).unwrap();
        std::fs::write(a.join("python/x.py"), "a").unwrap();
        std::fs::write(a.join("python/only_a.py"), "a").unwrap();
        std::fs::write(b.join("python/x.py"), "b").unwrap();
        let cache = OptCache::new(dir.path().join("opt"), dir.path().join("tmp"));
        let merged = cache.ensure(&[("da".into(), a.clone()), ("db".into(), b.clone())]).unwrap();
        let path = merged.path().to_path_buf();
        assert_eq!(std::fs::read_to_string(path.join("python/x.py")).unwrap(), "b");
        assert_eq!(std::fs::read_to_string(path.join("python/only_a.py")).unwrap(), "a");
        // The same list reuses the merged tree; another order is another tree.
        let again = cache.ensure(&[("da".into(), a.clone()), ("db".into(), b.clone())]).unwrap();
        assert!(Arc::ptr_eq(&again, &merged));
        let other = cache.ensure(&[("db".into(), b), ("da".into(), a)]).unwrap();
        assert_eq!(std::fs::read_to_string(other.path().join("python/x.py")).unwrap(), "a");
        // Derived data: gone with its last handle.
        drop((merged, again));
        assert!(!path.exists());
        assert!(other.path().exists());
    }

    #[test]
    fn a_tree_stays_while_a_handle_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CodeCache::new(dir.path().join("code"), dir.path().join("tmp"));
        let tree = |d: &str| {
            std::fs::create_dir_all(cache.dir(d).join("sub")).unwrap();
            std::fs::write(cache.dir(d).join("sub/h.py"), "x").unwrap();
        };
        // (held by an environment when removed, taken again before the last handle goes)
        for (held, retaken) in [(false, false), (true, false), (true, true)] {
            tree("d");
            let lease = held.then(|| cache.lease("d"));
            cache.remove("d");
            assert_eq!(cache.dir("d").join("sub/h.py").exists(), held, "held {held}");
            let again = retaken.then(|| cache.lease("d"));
            drop(lease);
            // Taken again (a new function with the same code): it is no longer doomed.
            assert_eq!(cache.dir("d").exists(), retaken, "held {held} retaken {retaken}");
            drop(again);
            assert_eq!(cache.dir("d").exists(), retaken, "a live tree is not removed by its last handle");
            cache.remove("d");
            assert!(!cache.dir("d").exists());
        }
        assert!(cache.digests().is_empty());
        // Nothing is left in the temporary directory either.
        assert_eq!(std::fs::read_dir(dir.path().join("tmp")).map(|d| d.count()).unwrap_or(0), 0);
    }
}

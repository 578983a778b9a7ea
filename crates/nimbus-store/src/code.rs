//! Function code zips: checked before they are accepted (a real zip, no path leaving the
//! task root, within the unzipped limit) and unpacked once per digest into a read-only
//! cache that every environment running that code shares.

use std::collections::HashMap;
use std::ffi::CStr;
use std::io::{Cursor, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use nimbus_model::validate::MAX_UNZIPPED_BYTES;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

/// Linux's limit on one file name (`NAME_MAX`).
pub const MAX_NAME_BYTES: usize = 255;
/// The longest entry path: `/var/task/` and the path fit Linux's `PATH_MAX` (4,096 bytes with
/// its terminating NUL), so the code can be opened where the function sees it.
pub const MAX_PATH_BYTES: usize = 4096 - 1 - "/var/task/".len();

/// AWS's answer to an archive it cannot read (not a zip, a bad checksum, an entry that
/// inflates to another size than it declares).
const UNREADABLE: &str = "Could not unzip uploaded file. Please check your file, then try to upload again.";

#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    #[error("{UNREADABLE}")]
    NotAZip,
    /// An entry's data does not match its header (checksum, size, compressed stream); the
    /// entry is for the server's log, AWS's answer does not name it.
    #[error("{UNREADABLE}")]
    Corrupt { entry: String },
    #[error("Unzipped size must be smaller than {MAX_UNZIPPED_BYTES} bytes")]
    TooLarge,
    #[error("Uploaded file contains an entry with an invalid path: {0}")]
    BadPath(String),
    /// A readable entry that cannot be laid out as a file tree (too long a name, a file and a
    /// directory of one name, ...).
    #[error("Failed to unzip archive: Zip file contains invalid files/folders; {why}: '{}'", shown(.entry))]
    InvalidEntry { entry: String, why: String },
    #[error("unpacking code: {0}")]
    Io(#[from] std::io::Error),
}

/// An entry name as an error message quotes it: at most 300 characters.
fn shown(name: &str) -> String {
    const MAX: usize = 300;
    match name.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}... ({} bytes)", &name[..cut], name.len()),
        None => name.to_string(),
    }
}

impl CodeError {
    fn invalid(entry: &str, why: impl Into<String>) -> CodeError {
        CodeError::InvalidEntry { entry: entry.to_string(), why: why.into() }
    }
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

/// What an entry becomes on disk. A symbolic link counts as a file: nothing may be laid out
/// under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
}

/// The tree an archive lays out, built entry by entry in archive order so that every entry
/// that cannot be written is found before anything is.
#[derive(Default)]
struct Layout {
    kinds: HashMap<PathBuf, Kind>,
}

impl Layout {
    /// Adds one entry; `Ok(None)` for a directory entry naming the root itself ("./").
    fn add(&mut self, name: &str, dir: bool) -> Result<Option<PathBuf>, CodeError> {
        if name.contains('\0') {
            return Err(CodeError::invalid(name, "entry name contains a NUL character"));
        }
        let rel = safe_relative(name).ok_or_else(|| CodeError::BadPath(shown(name)))?;
        if rel.as_os_str().is_empty() {
            return if dir { Ok(None) } else { Err(CodeError::invalid(name, "entry does not name a file")) };
        }
        if rel.as_os_str().len() > MAX_PATH_BYTES {
            return Err(CodeError::invalid(name, format!("entry path is longer than {MAX_PATH_BYTES} bytes")));
        }
        if rel.iter().any(|part| part.len() > MAX_NAME_BYTES) {
            return Err(CodeError::invalid(name, format!("entry has a name longer than {MAX_NAME_BYTES} bytes")));
        }
        let mut prefix = PathBuf::new();
        let parents = rel.iter().count() - 1;
        for part in rel.iter().take(parents) {
            prefix.push(part);
            match self.kinds.get(&prefix) {
                Some(Kind::File) => {
                    return Err(CodeError::invalid(
                        name,
                        format!("entry is inside '{}', which is a file", shown(&prefix.to_string_lossy())),
                    ))
                }
                Some(Kind::Dir) => {}
                None => {
                    self.kinds.insert(prefix.clone(), Kind::Dir);
                }
            }
        }
        let kind = if dir { Kind::Dir } else { Kind::File };
        match self.kinds.get(&rel) {
            // A repeated directory is harmless; a repeated file replaces the earlier one, as
            // unzip does.
            Some(seen) if *seen == kind => {}
            Some(Kind::Dir) => return Err(CodeError::invalid(name, "entry is a file with the name of a directory")),
            Some(Kind::File) => return Err(CodeError::invalid(name, "entry is a directory with the name of a file")),
            None => {
                self.kinds.insert(rel.clone(), kind);
            }
        }
        Ok(Some(rel))
    }
}

/// Checks a zip without writing anything: it opens, every entry has a path inside the task
/// root that Linux can hold, no entry conflicts with another (a file where a directory is
/// also laid out), and the declared unzipped size is within the limit. What only reading the
/// data shows (checksums, real sizes) is checked by unpacking.
pub fn inspect(zip: &[u8]) -> Result<ZipSummary, CodeError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(zip)).map_err(|_| CodeError::NotAZip)?;
    let mut total: u64 = 0;
    let mut layout = Layout::default();
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i).map_err(|_| CodeError::NotAZip)?;
        layout.add(entry.name(), entry.is_dir())?;
        total = total.saturating_add(entry.size());
        if total > MAX_UNZIPPED_BYTES {
            return Err(CodeError::TooLarge);
        }
    }
    Ok(ZipSummary { unzipped_size: total, entries: archive.len() })
}

/// An error from writing an entry: one the archive caused (a name Linux refuses, a conflict
/// the layout check could not see) is the user's; the rest (disk full, permissions) are the
/// server's.
fn write_err(entry: &str, e: Errno) -> CodeError {
    match e {
        Errno::NAMETOOLONG | Errno::EXIST | Errno::ISDIR | Errno::NOTDIR | Errno::INVAL | Errno::LOOP | Errno::ILSEQ => {
            CodeError::invalid(entry, format!("entry cannot be written ({})", std::io::Error::from(e)))
        }
        e => CodeError::Io(e.into()),
    }
}

fn std_write_err(entry: &str, e: std::io::Error) -> CodeError {
    match e.raw_os_error() {
        Some(code) => write_err(entry, Errno::from_raw_os_error(code)),
        None => CodeError::Io(e),
    }
}

/// Creates `dir` (relative to `root`) if it is not there yet.
fn make_dir(root: &OwnedFd, dir: &Path, entry: &str) -> Result<(), CodeError> {
    match rustix::fs::mkdirat(root, dir, Mode::from_raw_mode(0o755)) {
        Ok(()) | Err(Errno::EXIST) => Ok(()),
        Err(e) => Err(write_err(entry, e)),
    }
}

/// Removes a file an earlier entry of the same name wrote.
fn replace(root: &OwnedFd, rel: &Path, entry: &str) -> Result<(), CodeError> {
    match rustix::fs::unlinkat(root, rel, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(write_err(entry, e)),
    }
}

/// Unpacks `zip` under `dest`, never outside it: the whole layout is checked first
/// (`inspect`), then every entry is written relative to `dest`'s descriptor (so only the
/// entry's own path counts towards Linux's limits) and its data read to the end, which checks
/// its CRC-32 and that it inflates to exactly the size it declares.
fn unpack_into(zip: &[u8], dest: &Path) -> Result<(), CodeError> {
    inspect(zip)?;
    let root =
        rustix::fs::open(dest, OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).map_err(|e| CodeError::Io(e.into()))?;
    let mut archive = zip::ZipArchive::new(Cursor::new(zip)).map_err(|_| CodeError::NotAZip)?;
    let mut buf = vec![0u8; 64 * 1024];
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|_| CodeError::NotAZip)?;
        let name = entry.name().to_string();
        let rel = safe_relative(&name).ok_or_else(|| CodeError::BadPath(shown(&name)))?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let mut parent = PathBuf::new();
        let parents = rel.iter().count() - 1;
        for part in rel.iter().take(parents) {
            parent.push(part);
            make_dir(&root, &parent, &name)?;
        }
        if entry.is_dir() {
            make_dir(&root, &rel, &name)?;
            continue;
        }
        let corrupt = |_| CodeError::Corrupt { entry: name.clone() };
        let mode = entry.unix_mode();
        const S_IFMT: u32 = 0o170000;
        const S_IFLNK: u32 = 0o120000;
        if mode.is_some_and(|m| m & S_IFMT == S_IFLNK) {
            let mut target = Vec::new();
            entry.by_ref().take(4096).read_to_end(&mut target).map_err(corrupt)?;
            let mut rest = [0u8; 1];
            if entry.read(&mut rest).map_err(corrupt)? != 0 {
                return Err(CodeError::invalid(&name, "link target is longer than 4095 bytes"));
            }
            let Ok(target) = String::from_utf8(target) else {
                return Err(CodeError::invalid(&name, "link target is not UTF-8"));
            };
            if target.is_empty() {
                return Err(CodeError::invalid(&name, "link has no target"));
            }
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
                    return Err(CodeError::BadPath(format!("{} -> {target}", shown(&name))));
                }
            }
            replace(&root, &rel, &name)?;
            rustix::fs::symlinkat(target.as_str(), &root, &rel).map_err(|e| write_err(&name, e))?;
            continue;
        }
        replace(&root, &rel, &name)?;
        let fd = rustix::fs::openat(
            &root,
            &rel,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .map_err(|e| write_err(&name, e))?;
        let mut file = std::fs::File::from(fd);
        let declared = entry.size();
        let mut written: u64 = 0;
        loop {
            // Reading to the end (a read of 0 bytes) is what checks the CRC-32.
            let n = entry.read(&mut buf).map_err(corrupt)?;
            if n == 0 {
                break;
            }
            written += n as u64;
            if written > declared {
                return Err(CodeError::Corrupt { entry: name.clone() });
            }
            file.write_all(&buf[..n]).map_err(|e| std_write_err(&name, e))?;
        }
        if written != declared {
            return Err(CodeError::Corrupt { entry: name.clone() });
        }
        let perm = match mode {
            Some(m) if m & 0o111 != 0 => 0o555,
            _ => 0o444,
        };
        rustix::fs::fchmod(file.as_fd(), Mode::from_raw_mode(perm)).map_err(|e| CodeError::Io(e.into()))?;
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
    /// Derived data (a merged `/opt`): goes with its last handle, whatever refers to it.
    derived: bool,
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

    /// Keeps the tree on disk after its last handle goes, even if its cache let go of it
    /// before: a function (the one this handle was taken for) refers to it. For a record
    /// that is current, never for one read before a change (which may be its delete).
    pub fn keep(&self) {
        if !self.derived {
            if let Some(leases) = self.leases.upgrade() {
                leases.keep(&self.path);
            }
        }
    }

    /// Whether its cache has let go of the tree (no function refers to it any more): it
    /// lives only as long as the handles still on it.
    pub fn let_go(&self) -> bool {
        self.leases.upgrade().is_some_and(|l| l.lock().doomed.contains(&self.path))
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
        remove_later(trash);
    }
}

/// Removes a tree [`take_away`] moved aside, on a blocking thread: the handle or lease that
/// let go of it may be dropped under a caller's lock. A removal cut short by a stop is
/// finished by the next start's clean tmp.
fn remove_later(trash: Option<PathBuf>) {
    if let Some(trash) = trash {
        crate::blocking::detached(move || drop(remove_tree(&trash)));
    }
}

/// A name under the temp dir no other call of this process uses: `<what>-<pid>-<n>`.
fn unique(what: &str) -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!("{what}-{}-{}", std::process::id(), N.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

/// Moves `path` out of the way into `tmp` (to be removed there), if it exists.
fn take_away(path: &Path, tmp: &Path) -> Option<PathBuf> {
    let trash = tmp.join(unique("trash"));
    let _ = std::fs::create_dir_all(tmp);
    std::fs::rename(path, &trash).ok().map(|()| trash)
}

impl Leases {
    fn lock(&self) -> std::sync::MutexGuard<'_, LeaseState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A handle on `path` (the live one, or a new one). It does not un-doom the tree: a
    /// lease may come from a reader that looked the code up just before it was let go
    /// ([`Tree::keep`] is for what refers to it again).
    fn lease(self: &Arc<Self>, path: PathBuf, tmp: &Path, derived: bool) -> Arc<Tree> {
        let mut st = self.lock();
        if let Some(t) = st.live.get(&path).and_then(std::sync::Weak::upgrade) {
            return t;
        }
        let t = Arc::new(Tree { path: path.clone(), leases: Arc::downgrade(self), tmp: tmp.to_path_buf(), derived });
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
        remove_later(trash);
    }

    /// Un-dooms `path`: something refers to it again (new code with the same digest).
    fn keep(&self, path: &Path) {
        self.lock().doomed.remove(path);
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
        self.leases.lease(self.dir(digest), &self.tmp, false)
    }

    /// Returns the directory holding `digest`'s code, unpacking it first if needed. Unpacks
    /// into a temp dir and renames, so a crash mid-unpack leaves no half-filled directory.
    pub fn ensure(&self, digest: &str, zip: &[u8]) -> Result<PathBuf, CodeError> {
        let dir = self.dir(digest);
        if dir.is_dir() {
            return Ok(dir);
        }
        crate::blocking::in_place(|| self.unpack(digest, zip, dir))
    }

    fn unpack(&self, digest: &str, zip: &[u8], dir: PathBuf) -> Result<PathBuf, CodeError> {
        std::fs::create_dir_all(&self.tmp)?;
        std::fs::create_dir_all(&self.root)?;
        // Its own: two unpacks of one digest may run at once (the first rename wins).
        let staging = self.tmp.join(unique(&format!("code-{digest}")));
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

    fn cache() -> (tempfile::TempDir, CodeCache) {
        let dir = tempfile::tempdir().unwrap();
        let cache = CodeCache::new(dir.path().join("code"), dir.path().join("tmp"));
        (dir, cache)
    }

    /// A zip of `entries` (name, is a directory), each file holding "x".
    pub(super) fn tree(entries: &[(&str, bool)]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, dir) in entries {
            if *dir {
                w.add_directory(*name, SimpleFileOptions::default()).unwrap();
            } else {
                w.start_file(*name, SimpleFileOptions::default()).unwrap();
                w.write_all(b"x").unwrap();
            }
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn layouts() {
        let long_name = "n".repeat(256);
        let max_name = "n".repeat(255);
        let long_path = format!("{}/f", vec!["d".repeat(200); 25].join("/"));
        let max_path = format!("{}/{}", vec!["d".repeat(254); 16].join("/"), "f".repeat(MAX_PATH_BYTES - 16 * 255));
        assert_eq!(max_path.len(), MAX_PATH_BYTES);
        let too_long_path = format!("{max_path}g");
        /// (entries, None when it is accepted or a piece of the message naming why not)
        type Case<'a> = (Vec<(&'a str, bool)>, Option<&'a str>);
        let cases: Vec<Case> = vec![
            (vec![("h.py", false), ("lib/", true), ("lib/a.py", false)], None),
            (vec![("lib/a.py", false), ("lib/", true), ("lib/b/", true), ("lib/b/c", false)], None),
            (vec![("./", true), ("./h.py", false), ("a//b", false)], None),
            (vec![(&max_name, false)], None),
            (vec![(&max_path, false)], None),
            (vec![(".", false)], Some("entry does not name a file: '.'")),
            (vec![(&long_name, false)], Some("longer than 255 bytes")),
            (vec![(&long_path, false)], Some("longer than 4085 bytes")),
            (vec![(&too_long_path, false)], Some("longer than 4085 bytes")),
            (vec![("p/r", false), ("p", false)], Some("a file with the name of a directory: 'p'")),
            (vec![("p/", true), ("p", false)], Some("a file with the name of a directory: 'p'")),
            (vec![("h.py", false), ("h.py/x", false)], Some("inside 'h.py', which is a file: 'h.py/x'")),
            (vec![("h.py", false), ("h.py/", true)], Some("a directory with the name of a file: 'h.py/'")),
            (vec![("a/b", false), ("a/b/c/d", false)], Some("inside 'a/b', which is a file")),
            (vec![("a\0b", false)], Some("NUL")),
            (vec![("../x", false)], Some("invalid path: ../x")),
            (vec![("a/../../x", false)], Some("invalid path")),
        ];
        for (entries, expected) in cases {
            let z = tree(&entries);
            let got = inspect(&z);
            match (expected, got) {
                (None, Ok(summary)) => assert_eq!(summary.entries, entries.len()),
                (Some(want), Err(e)) => {
                    assert!(e.to_string().contains(want), "{entries:?}: {e} lacks {want}");
                    assert!(!matches!(e, CodeError::Io(_)), "{entries:?}: {e:?} is the server's");
                }
                (want, got) => panic!("{entries:?}: wanted {want:?}, got {got:?}"),
            }
        }
    }

    /// The accepted layouts unpack, and what they lay out is there.
    #[test]
    fn accepted_layouts_unpack() {
        let max_path = format!("{}/{}", vec!["d".repeat(254); 16].join("/"), "f".repeat(MAX_PATH_BYTES - 16 * 255));
        let (_dir, cache) = cache();
        let z = tree(&[("./", true), ("lib/a.py", false), ("lib/", true), ("h.py", false), (&max_path, false)]);
        let d = cache.ensure("ok", &z).unwrap();
        assert_eq!(std::fs::read(d.join("lib/a.py")).unwrap(), b"x");
        assert_eq!(std::fs::read(d.join("h.py")).unwrap(), b"x");
        remove_tree(&d).unwrap();
    }

    /// Offsets of every local header and central directory record of `zip`.
    fn records(zip: &[u8], signature: &[u8; 4]) -> Vec<usize> {
        zip.windows(4).enumerate().filter(|(_, w)| w == signature).map(|(i, _)| i).collect()
    }

    /// Rewrites the declared uncompressed size of the last entry.
    fn declare_size(zip: &mut [u8], size: u32) {
        let local = *records(zip, b"PK\x03\x04").last().unwrap();
        zip[local + 22..local + 26].copy_from_slice(&size.to_le_bytes());
        let central = *records(zip, b"PK\x01\x02").last().unwrap();
        zip[central + 24..central + 28].copy_from_slice(&size.to_le_bytes());
    }

    #[test]
    fn unreadable_data_is_rejected_and_leaves_nothing() {
        let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        let deflated = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        let one = |opts: SimpleFileOptions, data: &[u8]| {
            let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
            w.start_file("ok.py", opts).unwrap();
            w.write_all(b"fine").unwrap();
            w.start_file("h.py", opts).unwrap();
            w.write_all(data).unwrap();
            w.finish().unwrap().into_inner()
        };
        let mut bad_crc = one(stored, b"print('hello')");
        let at = bad_crc.windows(5).position(|w| w == b"hello").unwrap();
        bad_crc[at] = b'j';
        let mut inflates_past = one(deflated, &[b'a'; 10_000]);
        declare_size(&mut inflates_past, 4);
        let mut inflates_short = one(deflated, &[b'a'; 100]);
        declare_size(&mut inflates_short, 1_000);
        let mut bad_stream = one(deflated, &(0..5_000u32).map(|i| (i * 7919 % 251) as u8).collect::<Vec<_>>());
        let data_at = records(&bad_stream, b"PK\x03\x04")[1] + 30 + "h.py".len();
        for b in &mut bad_stream[data_at..data_at + 40] {
            *b = 0xff;
        }
        for (what, z) in
            [("bad crc", bad_crc), ("inflates past", inflates_past), ("inflates short", inflates_short), ("bad stream", bad_stream)]
        {
            let (dir, cache) = cache();
            let err = cache.ensure("bad", &z).expect_err(what);
            assert!(matches!(&err, CodeError::Corrupt { entry } if entry == "h.py"), "{what}: {err:?}");
            assert_eq!(err.to_string(), UNREADABLE, "{what}");
            assert!(!cache.dir("bad").exists(), "{what}");
            assert_eq!(std::fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0, "{what}: staging left");
        }
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
        let tree = self.leases.lease(dir.clone(), &self.tmp, true);
        // Gone with its last handle.
        self.leases.lock().doomed.insert(dir.clone());
        if !dir.is_dir() {
            crate::blocking::in_place(|| self.build(&key, &dir, layers))?;
        }
        Ok(tree)
    }

    fn build(&self, key: &str, dir: &Path, layers: &[(String, PathBuf)]) -> Result<(), CodeError> {
        if dir.is_dir() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.root)?;
        std::fs::create_dir_all(&self.tmp)?;
        let staging = self.tmp.join(unique(&format!("opt-{key}")));
        let _ = remove_tree(&staging);
        std::fs::create_dir_all(&staging)?;
        let merged = (|| -> std::io::Result<()> {
            let dest = open_dir(&staging)?;
            for (_, layer) in layers {
                overlay(&open_dir(layer)?, &dest)?;
            }
            Ok(())
        })();
        if let Err(e) = merged {
            let _ = remove_tree(&staging);
            return Err(e.into());
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

fn open_dir(path: &Path) -> std::io::Result<OwnedFd> {
    Ok(rustix::fs::open(path, OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?)
}

/// `name` in `dir`, opened as a directory (never through a link).
fn open_dir_at(dir: &OwnedFd, name: &CStr) -> std::io::Result<OwnedFd> {
    Ok(rustix::fs::openat(dir, name, OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())?)
}

/// What `name` in `dir` is, if it exists (a link is a link, not what it points to).
fn kind_at(dir: &OwnedFd, name: &CStr) -> std::io::Result<Option<FileType>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(FileType::from_raw_mode(st.st_mode))),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The entries of a directory, without `.` and `..`.
fn entries(dir: &OwnedFd) -> std::io::Result<Vec<std::ffi::CString>> {
    let mut out = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let name = entry?.file_name().to_owned();
        if name.as_bytes() != b"." && name.as_bytes() != b".." {
            out.push(name);
        }
    }
    Ok(out)
}

/// Removes `name` and everything under it from `dir`.
fn remove_at(dir: &OwnedFd, name: &CStr) -> std::io::Result<()> {
    if kind_at(dir, name)? != Some(FileType::Directory) {
        return Ok(rustix::fs::unlinkat(dir, name, AtFlags::empty())?);
    }
    let sub = open_dir_at(dir, name)?;
    for child in entries(&sub)? {
        remove_at(&sub, &child)?;
    }
    Ok(rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)?)
}

/// Lays `src`'s tree over `dest`: directories merge, files and links replace. Works on
/// directory descriptors, so only an entry's own path counts towards Linux's limits (a
/// layer's deepest paths fit under `/opt`, not necessarily under the data directory).
fn overlay(src: &OwnedFd, dest: &OwnedFd) -> std::io::Result<()> {
    for name in entries(src)? {
        let kind = kind_at(src, &name)?.ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))?;
        let existing = kind_at(dest, &name)?;
        if kind == FileType::Directory {
            if existing.is_some_and(|k| k != FileType::Directory) {
                rustix::fs::unlinkat(dest, &name, AtFlags::empty())?;
            }
            if existing != Some(FileType::Directory) {
                rustix::fs::mkdirat(dest, &name, Mode::from_raw_mode(0o755))?;
            }
            overlay(&open_dir_at(src, &name)?, &open_dir_at(dest, &name)?)?;
            continue;
        }
        if existing.is_some() {
            remove_at(dest, &name)?;
        }
        if kind == FileType::Symlink {
            let target = rustix::fs::readlinkat(src, &name, Vec::new())?;
            rustix::fs::symlinkat(target.as_c_str(), dest, &name)?;
        } else if rustix::fs::linkat(src, &name, dest, &name, AtFlags::empty()).is_err() {
            let from = rustix::fs::openat(src, &name, OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())?;
            let mode = Mode::from_raw_mode(rustix::fs::fstat(&from)?.st_mode & 0o777);
            let to = rustix::fs::openat(dest, &name, OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC, mode)?;
            std::io::copy(&mut std::fs::File::from(from), &mut std::fs::File::from(to))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod opt_tests {
    use super::tests::tree as tests_zip;
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
        // Derived data: gone with its last handle, even when a function holding it is
        // current.
        merged.keep();
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
            assert!(!lease.as_ref().is_some_and(|l| l.let_go()));
            cache.remove("d");
            assert_eq!(cache.dir("d").join("sub/h.py").exists(), held, "held {held}");
            assert_eq!(lease.as_ref().map(|l| l.let_go()), held.then_some(true), "held {held}");
            // A reader that looked the code up before it was let go does not keep it.
            let late = cache.lease("d");
            assert_eq!(late.let_go(), held, "held {held}");
            drop(late);
            let again = retaken.then(|| {
                let again = cache.lease("d");
                again.keep();
                again
            });
            assert!(!again.as_ref().is_some_and(|l| l.let_go()), "taken again: kept");
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

    /// Layers whose deepest paths fit under `/opt` merge wherever the data directory is,
    /// however long its own path; a later layer's file replaces a directory and the reverse.
    #[test]
    fn deep_layers_and_kind_changes_merge() {
        let dir = tempfile::tempdir().unwrap();
        let deep = format!("{}/{}", vec!["d".repeat(254); 16].join("/"), "f".repeat(MAX_PATH_BYTES - 16 * 255));
        let layer = |name: &str, entries: &[(&str, bool)]| {
            let codes = CodeCache::new(dir.path().join("layers"), dir.path().join("tmp"));
            codes.ensure(name, &tests_zip(entries)).unwrap()
        };
        let a = layer("a", &[(&deep, false), ("x/inner.py", false), ("y.py", false)]);
        let b = layer("b", &[("x", false), ("y.py/inner.py", false)]);
        let cache = OptCache::new(dir.path().join("opt"), dir.path().join("tmp"));
        let merged = cache.ensure(&[("a".into(), a), ("b".into(), b)]).unwrap();
        let root = std::fs::File::open(merged.path()).unwrap();
        let at = |rel: &str| rustix::fs::statat(&root, rel, AtFlags::SYMLINK_NOFOLLOW).map(|st| FileType::from_raw_mode(st.st_mode));
        assert_eq!(at(&deep), Ok(FileType::RegularFile));
        assert_eq!(at("x"), Ok(FileType::RegularFile));
        assert_eq!(at("y.py"), Ok(FileType::Directory));
        assert_eq!(at("y.py/inner.py"), Ok(FileType::RegularFile));
        // Merged trees go with their last handle, however deep.
        let path = merged.path().to_path_buf();
        drop((root, merged));
        assert!(!path.exists());
        let left: Vec<_> = std::fs::read_dir(dir.path().join("tmp")).unwrap().flatten().map(|e| e.file_name()).collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

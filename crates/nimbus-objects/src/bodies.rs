//! Where object bodies live: files under the store's directory (one node; `files.rs`), or
//! objects in S3-compatible storage that every node reads (`--blobs`, through the
//! `object_store` crate), each named by a random blob id under `<prefix>/objects/`. Either
//! way a blob is written once and never changed: a body is installed before the row that
//! names it is committed, copied (hard link / server-side copy) for CopyObject, and removed
//! after the commit that stopped naming it.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path as StorePath;
use object_store::{GetOptions, GetRange, ObjectStore as Remote, ObjectStoreExt, PutPayload};

use crate::files;
use crate::store::ObjectBody;

/// A body up to this size is sent in one PUT; a larger one in parts of this size (or larger:
/// an upload has at most 10,000 parts).
const PART_BYTES: usize = 16 * 1024 * 1024;

/// Most parts of a multipart upload (S3's limit).
const MAX_PARTS: u64 = 10_000;

/// How long a body no object names any more stays readable in shared storage: a GET on
/// another node may have resolved the object just before it was replaced and be reading it.
/// (A node that stops meanwhile leaves it to the collection of unnamed bodies.)
pub const REMOVAL_DELAY: Duration = Duration::from_secs(600);

/// How old an unnamed blob in shared storage must be before the clean-up removes it: a node
/// installs a body before it commits the row that names it.
pub const ORPHAN_GRACE: Duration = Duration::from_secs(3600);

/// Object bodies in S3-compatible storage shared by the nodes.
#[derive(Clone)]
pub struct SharedBodies {
    store: Arc<dyn Remote>,
    /// Every blob is `<root>/<first two characters>/<id>`.
    root: String,
    /// [`REMOVAL_DELAY`].
    removal_delay: Duration,
}

impl std::fmt::Debug for SharedBodies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBodies").field("root", &self.root).finish_non_exhaustive()
    }
}

impl SharedBodies {
    /// Bodies in `store` under `root` (no trailing slash).
    pub fn new(store: Arc<dyn Remote>, root: impl Into<String>) -> SharedBodies {
        SharedBodies { store, root: root.into(), removal_delay: REMOVAL_DELAY }
    }

    /// Another [`REMOVAL_DELAY`] (tests).
    pub fn with_removal_delay(mut self, delay: Duration) -> SharedBodies {
        self.removal_delay = delay;
        self
    }

    fn path(&self, id: &str) -> StorePath {
        StorePath::from(format!("{}/{}/{id}", self.root, id.get(..2).unwrap_or("__")))
    }

    /// Blob ids below the root, with their age.
    pub(crate) async fn list(&self) -> io::Result<Vec<(String, Duration)>> {
        let root = StorePath::from(self.root.as_str());
        let found: Vec<_> = self.store.list(Some(&root)).try_collect().await.map_err(remote_error)?;
        let now = chrono::Utc::now();
        Ok(found
            .into_iter()
            .filter_map(|meta| {
                let id = meta.location.filename()?.to_string();
                let age = now.signed_duration_since(meta.last_modified).to_std().unwrap_or(Duration::ZERO);
                (meta.location == self.path(&id)).then_some((id, age))
            })
            .collect())
    }
}

fn remote_error(e: object_store::Error) -> io::Error {
    match e {
        object_store::Error::NotFound { .. } => io::Error::new(io::ErrorKind::NotFound, e.to_string()),
        e => io::Error::other(e.to_string()),
    }
}

/// Where the store keeps bodies.
#[derive(Debug, Clone)]
pub(crate) enum Bodies {
    /// `<dir>/blobs`.
    Local(PathBuf),
    Shared(SharedBodies),
}

impl Bodies {
    /// Makes the synced staging file `staged` blob `id` (moved, or sent and then removed).
    /// On failure nothing of `id` is left.
    pub async fn install(&self, staged: PathBuf, id: &str) -> io::Result<()> {
        match self {
            Bodies::Local(dir) => {
                let (dir, id) = (dir.clone(), id.to_string());
                tokio::task::spawn_blocking(move || {
                    let r = files::install(&dir, &staged, &id);
                    if r.is_err() {
                        remove_file(&staged);
                        // The rename may have happened before the directory's sync failed.
                        files::remove_blobs(&dir, std::slice::from_ref(&id));
                    }
                    r
                })
                .await
                .map_err(io::Error::other)?
            }
            Bodies::Shared(shared) => {
                // In a task of its own: a request dropped meanwhile leaves no upload unfinished.
                let (shared, id) = (shared.clone(), id.to_string());
                tokio::spawn(async move {
                    let sent = send(&shared, &staged, &id).await;
                    let path = staged.clone();
                    let _ = tokio::task::spawn_blocking(move || remove_file(&path)).await;
                    sent
                })
                .await
                .map_err(io::Error::other)?
            }
        }
    }

    /// Makes blob `id` a copy of blob `source` ([`io::ErrorKind::NotFound`] when it is gone).
    pub async fn copy(&self, source: &str, id: &str) -> io::Result<()> {
        match self {
            Bodies::Local(dir) => {
                let (dir, source, id) = (dir.clone(), source.to_string(), id.to_string());
                tokio::task::spawn_blocking(move || files::link(&dir, &source, &id)).await.map_err(io::Error::other)?
            }
            Bodies::Shared(shared) => shared.store.copy(&shared.path(source), &shared.path(id)).await.map_err(remote_error),
        }
    }

    /// Removes blobs no row names any more; a failure leaves one for the clean-up.
    pub fn remove(&self, ids: Vec<String>) {
        if ids.is_empty() {
            return;
        }
        match self {
            // Up to 1,000 unlinks (DeleteObjects) off the async workers; a few (an overwriting
            // PUT's one) cost less than handing the worker's queue on.
            Bodies::Local(dir) if ids.len() > 16 => nimbus_store::blocking::in_place(|| files::remove_blobs(dir, &ids)),
            Bodies::Local(dir) => files::remove_blobs(dir, &ids),
            Bodies::Shared(shared) => {
                let shared = shared.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(shared.removal_delay).await;
                    for id in ids {
                        match shared.store.delete(&shared.path(&id)).await {
                            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                            Err(e) => tracing::warn!("objects: cannot remove blob {id}: {e}"),
                        }
                    }
                });
            }
        }
    }

    /// Opens blob `id` for reading. A shared one is read on first use from a blocking thread
    /// (it waits on the runtime it was opened in).
    pub fn open(&self, id: &str) -> io::Result<ObjectBody> {
        match self {
            Bodies::Local(dir) => std::fs::File::open(files::blob_path(dir, id)).map(ObjectBody::File),
            Bodies::Shared(_) => self.open_range(id, 0, u64::MAX),
        }
    }

    /// Opens `len` bytes of blob `id` from `start` (a shared one asks for those bytes only;
    /// a read past them gets none).
    pub fn open_range(&self, id: &str, start: u64, len: u64) -> io::Result<ObjectBody> {
        match self {
            Bodies::Local(_) => self.open(id),
            Bodies::Shared(shared) => Ok(ObjectBody::Remote(RemoteBody {
                store: shared.store.clone(),
                path: shared.path(id),
                runtime: tokio::runtime::Handle::try_current().map_err(io::Error::other)?,
                pos: start,
                end: start.saturating_add(len),
                stream: None,
                chunk: Bytes::new(),
            })),
        }
    }
}

fn remove_file(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != io::ErrorKind::NotFound {
            tracing::warn!("objects: cannot remove staged body {}: {e}", path.display());
        }
    }
}

/// Reads `len` bytes of `file` from its current position, off the async threads.
async fn read_chunk(mut file: std::fs::File, len: usize) -> io::Result<(std::fs::File, Bytes)> {
    tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; len];
        let mut filled = 0;
        while filled < len {
            match file.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(filled);
        Ok((file, Bytes::from(buf)))
    })
    .await
    .map_err(io::Error::other)?
}

/// Sends the file at `staged` as blob `id`: one PUT, or a multipart upload for a large one
/// (aborted if any part fails).
async fn send(shared: &SharedBodies, staged: &Path, id: &str) -> io::Result<()> {
    let file = std::fs::File::open(staged)?;
    let size = file.metadata()?.len();
    let path = shared.path(id);
    if size <= PART_BYTES as u64 {
        let (_, bytes) = read_chunk(file, size as usize).await?;
        return shared.store.put(&path, PutPayload::from(bytes)).await.map(drop).map_err(remote_error);
    }
    let part = (PART_BYTES as u64).max(size.div_ceil(MAX_PARTS));
    let mut upload = shared.store.put_multipart(&path).await.map_err(remote_error)?;
    let mut file = file;
    let result = async {
        let mut left = size;
        while left > 0 {
            let (f, bytes) = read_chunk(file, part.min(left) as usize).await?;
            file = f;
            if bytes.is_empty() {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the staged body ended early"));
            }
            left -= bytes.len() as u64;
            upload.put_part(PutPayload::from(bytes)).await.map_err(remote_error)?;
        }
        upload.complete().await.map(drop).map_err(remote_error)
    }
    .await;
    if result.is_err() {
        if let Err(e) = upload.abort().await {
            tracing::warn!("objects: cannot abort the upload of blob {id}: {e}");
        }
    }
    result
}

/// A body in shared storage, read as a stream from the position it was sought to.
pub struct RemoteBody {
    store: Arc<dyn Remote>,
    path: StorePath,
    runtime: tokio::runtime::Handle,
    pos: u64,
    /// Where reading stops (exclusive; `u64::MAX`: the body's end).
    end: u64,
    stream: Option<BoxStream<'static, object_store::Result<Bytes>>>,
    /// What the stream gave and was not read yet.
    chunk: Bytes,
}

impl RemoteBody {
    /// Sends the GET now (from async code), so an unreachable storage or a body that is gone
    /// is an error before anything of an answer is sent.
    pub async fn start(&mut self) -> io::Result<()> {
        if self.stream.is_some() || self.pos >= self.end {
            return Ok(());
        }
        let got = self.store.get_opts(&self.path, self.options()).await.map_err(remote_error)?;
        self.stream = Some(got.into_stream());
        Ok(())
    }

    fn options(&self) -> GetOptions {
        let range = match (self.pos, self.end) {
            (0, u64::MAX) => None,
            (pos, u64::MAX) => Some(GetRange::Offset(pos)),
            (pos, end) => Some(GetRange::Bounded(pos..end)),
        };
        GetOptions { range, ..Default::default() }
    }
}

impl Read for RemoteBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.pos >= self.end {
            return Ok(0);
        }
        while self.chunk.is_empty() {
            if self.stream.is_none() {
                let got = self.runtime.block_on(self.store.get_opts(&self.path, self.options())).map_err(remote_error)?;
                self.stream = Some(got.into_stream());
            }
            let stream = self.stream.as_mut().expect("opened above");
            match self.runtime.block_on(stream.next()) {
                Some(Ok(bytes)) => self.chunk = bytes,
                Some(Err(e)) => {
                    self.stream = None;
                    return Err(remote_error(e));
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len()).min(usize::try_from(self.end - self.pos).unwrap_or(usize::MAX));
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for RemoteBody {
    /// From the start or the current position (the size is the row's to know).
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => p,
            SeekFrom::Current(d) => self.pos.checked_add_signed(d).ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?,
            SeekFrom::End(_) => return Err(io::Error::new(io::ErrorKind::Unsupported, "seeking from the end of a shared body")),
        };
        if pos != self.pos {
            self.pos = pos;
            self.stream = None;
            self.chunk = Bytes::new();
        }
        Ok(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    fn shared() -> SharedBodies {
        SharedBodies::new(Arc::new(InMemory::new()), "acct/objects").with_removal_delay(Duration::ZERO)
    }

    fn staged(dir: &Path, data: &[u8]) -> PathBuf {
        let path = dir.join(uuid::Uuid::new_v4().simple().to_string());
        std::fs::write(&path, data).expect("write");
        path
    }

    fn read_from(body: ObjectBody, start: u64) -> Vec<u8> {
        let mut body = body;
        body.seek(SeekFrom::Start(start)).expect("seek");
        let mut out = Vec::new();
        body.read_to_end(&mut out).expect("read");
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shared_bodies_install_copy_read_and_remove() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bodies = Bodies::Shared(shared());
        // One PUT, and a multipart upload of three parts.
        let small: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let large: Vec<u8> = (0..(2 * PART_BYTES + 12345)).map(|i| (i % 253) as u8).collect();
        for (id, data) in [("aa01", &small), ("bb02", &large)] {
            let path = staged(dir.path(), data);
            bodies.install(path.clone(), id).await.expect("install");
            assert!(!path.exists(), "the staged file is removed once sent");
            let body = bodies.open(id).expect("open");
            let b2 = bodies.open(id).expect("open");
            // 2,000 bytes from 1,000: the read stops there.
            let b3 = bodies.open_range(id, 1000, 2000).expect("open");
            let data2 = data.clone();
            let (whole, tail, range) =
                tokio::task::spawn_blocking(move || (read_from(body, 0), read_from(b2, data2.len() as u64 - 1000), read_from(b3, 1000)))
                    .await
                    .expect("join");
            assert_eq!(whole, *data);
            assert_eq!(tail, data[data.len() - 1000..]);
            assert_eq!(range, data[1000..3000]);
        }
        bodies.copy("bb02", "cc03").await.expect("copy");
        let Bodies::Shared(s) = &bodies else { unreachable!() };
        let mut ids: Vec<String> = s.list().await.expect("list").into_iter().map(|(id, _)| id).collect();
        ids.sort();
        assert_eq!(ids, ["aa01", "bb02", "cc03"]);
        assert_eq!(bodies.copy("zz99", "dd04").await.map_err(|e| e.kind()), Err(io::ErrorKind::NotFound));
        bodies.remove(vec!["aa01".into(), "bb02".into()]);
        for _ in 0..100 {
            if s.list().await.expect("list").len() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let ids: Vec<String> = s.list().await.expect("list").into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, ["cc03"]);
        // A missing body fails its first read.
        let gone = bodies.open("aa01").expect("open");
        let read = tokio::task::spawn_blocking(move || {
            let mut gone = gone;
            gone.read(&mut [0u8; 10]).map_err(|e| e.kind())
        })
        .await
        .expect("join");
        assert_eq!(read, Err(io::ErrorKind::NotFound));
    }
}

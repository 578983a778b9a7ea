//! The store itself: one account's objects database (`objects.db`, or PostgreSQL shared by
//! several nodes) and its bodies (`bodies.rs`). This file is the interface the HTTP edge
//! programs against; the SQL lives in `sql.rs` and `list.rs`, multipart's joining in
//! `multipart.rs`.

use std::path::{Path, PathBuf};

use nimbus_store::group_commit::GroupCommit;

use crate::bodies::{Bodies, SharedBodies};
use crate::checksum::{ChecksumAlgorithm, Checksums, Hashers};
use crate::db::{Db, Lite, Lock};
use crate::error::ObjectError;
use crate::notify::{NotificationConfig, PendingNotification};
use crate::{files, limits, list, multipart, sql};

/// A bucket's versioning state (`GetBucketVersioning` answers no `Status` while `Unversioned`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versioning {
    Unversioned,
    Enabled,
    Suspended,
}

/// A bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    pub name: String,
    /// Its `LocationConstraint` (the server's region when none was given).
    pub region: String,
    /// Milliseconds since the epoch.
    pub created_ms: i64,
    pub versioning: Versioning,
}

/// What a write sets on an object beside its body: the headers S3 stores and answers back.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObjectMeta {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    /// The `Expires` header, as sent.
    pub expires: Option<String>,
    pub website_redirect_location: Option<String>,
    pub storage_class: Option<String>,
    /// `x-amz-meta-*`, names lowercased and without the prefix, in the order given.
    pub user: Vec<(String, String)>,
}

/// One version of an object (or a delete marker), as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub bucket: String,
    pub key: String,
    /// None is S3's `null` version (written while the bucket was never versioned or suspended).
    pub version_id: Option<String>,
    pub is_latest: bool,
    pub delete_marker: bool,
    pub size: u64,
    /// Without quotes: hex MD5 of the body, or `hex(md5(concat(part md5s)))-N` for a
    /// multipart upload of N parts.
    pub etag: String,
    pub last_modified_ms: i64,
    pub meta: ObjectMeta,
    /// The checksum recorded with the object: the algorithm asked for at upload and its
    /// base64 value (for multipart: the checksum of the parts' checksums, `-N` appended,
    /// as S3 answers it).
    pub checksum: Option<(ChecksumAlgorithm, String)>,
    /// Number of parts for a multipart object.
    pub parts_count: Option<u32>,
    /// Each part's size, in order, for a multipart object (GET `?partNumber=N` reads one).
    pub part_sizes: Vec<u64>,
    /// How many tags the version carries (`x-amz-tagging-count`).
    pub tag_count: usize,
    /// The blob holding the body (private to the store: read it with [`ObjectStore::open_body`]).
    pub(crate) blob: Option<String>,
    /// Its row.
    pub(crate) seq: i64,
    /// A small body kept in the row, loaded by [`ObjectStore::head`].
    pub(crate) inline: Option<std::sync::Arc<[u8]>>,
}

/// Conditions a write must meet, checked in the same transaction as the write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PutConditions {
    /// `If-None-Match: *`: fail with [`ObjectError::PreconditionFailed`] if the key exists
    /// (its latest version is not a delete marker).
    pub if_none_match_any: bool,
    /// `If-Match: "etag"`: fail unless the latest version has this ETag (without quotes);
    /// [`ObjectError::NoSuchKey`] if there is none.
    pub if_match: Option<String>,
}

/// What a committed write reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutResult {
    pub etag: String,
    /// Set when the bucket's versioning is `Enabled`.
    pub version_id: Option<String>,
    pub size: u64,
    pub checksum: Option<(ChecksumAlgorithm, String)>,
    pub last_modified_ms: i64,
}

/// What a deletion did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteOutcome {
    /// The version removed, or the delete marker made (versioned buckets).
    pub version_id: Option<String>,
    /// A delete marker was made, or the version removed was one.
    pub delete_marker: bool,
}

/// A page of ListObjects / ListObjectsV2. Keys sort by their UTF-8 bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    /// Only keys (and common prefixes) sorting after this one (`marker`, `start-after`, or
    /// the key a continuation token holds).
    pub after: Option<String>,
    /// 0 to 1000 (a larger request is capped by the caller).
    pub max_keys: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    /// Latest versions that are not delete markers, in key order.
    pub objects: Vec<Object>,
    /// Distinct `prefix + (text up to and including the delimiter)`, in order; each counts
    /// as one entry against `max_keys`.
    pub common_prefixes: Vec<String>,
    pub truncated: bool,
    /// When truncated: the last key or common prefix of the page (where the next page starts
    /// after).
    pub next_after: Option<String>,
}

/// A page of ListObjectVersions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub key_marker: Option<String>,
    /// Only with `key_marker`: versions of that key after this one (newest first order).
    pub version_id_marker: Option<String>,
    pub max_keys: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionPage {
    /// Versions and delete markers, by key, newest first within a key.
    pub versions: Vec<Object>,
    pub common_prefixes: Vec<String>,
    pub truncated: bool,
    pub next_key_marker: Option<String>,
    /// `"null"` for the null version.
    pub next_version_id_marker: Option<String>,
}

/// One part named in CompleteMultipartUpload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedPart {
    pub part_number: u32,
    /// Without quotes.
    pub etag: String,
}

/// A part as ListParts reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartInfo {
    pub part_number: u32,
    pub etag: String,
    pub size: u64,
    pub last_modified_ms: i64,
    pub checksum: Option<(ChecksumAlgorithm, String)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartsPage {
    pub parts: Vec<PartInfo>,
    pub truncated: bool,
    pub next_part_number_marker: Option<u32>,
}

/// A multipart upload in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadInfo {
    pub bucket: String,
    pub key: String,
    pub upload_id: String,
    pub initiated_ms: i64,
    pub meta: ObjectMeta,
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadsQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub key_marker: Option<String>,
    pub upload_id_marker: Option<String>,
    pub max_uploads: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadsPage {
    /// By key, then by initiation time.
    pub uploads: Vec<UploadInfo>,
    pub common_prefixes: Vec<String>,
    pub truncated: bool,
    pub next_key_marker: Option<String>,
    pub next_upload_id_marker: Option<String>,
}

/// A body being written: kept in memory while it is small (up to the store's inline limit:
/// such a body is stored in its version's row, committed with it), else in a staging file.
/// Blocking IO: call from a blocking thread (the edge gathers a request's frames and writes
/// them from `spawn_blocking`).
pub struct Staging {
    pub(crate) file: Option<std::fs::File>,
    pub(crate) path: PathBuf,
    /// The body while it is small.
    pub(crate) buf: Vec<u8>,
    pub(crate) inline_max: usize,
    pub(crate) dir: PathBuf,
    pub(crate) size: u64,
    pub(crate) hashers: crate::checksum::Hashers,
}

impl Staging {
    /// Appends `data`, hashing it.
    pub fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        if self.file.is_none() && self.buf.len() + data.len() > self.inline_max {
            let path = files::staging_path(&self.dir);
            let mut file = std::fs::File::options().write(true).create_new(true).open(&path).map_err(files::full_kind)?;
            self.path = path;
            file.write_all(&std::mem::take(&mut self.buf)).map_err(files::full_kind)?;
            self.file = Some(file);
        }
        match &mut self.file {
            Some(file) => file.write_all(data).map_err(files::full_kind)?,
            None => self.buf.extend_from_slice(data),
        }
        self.hashers.update(data);
        self.size += data.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Syncs the file (fdatasync; a small body has none) and returns the body with its
    /// digests.
    pub fn finish(mut self) -> std::io::Result<Staged> {
        if self.file.is_none() && self.inline_max == 0 {
            // Every body a file, the empty one too.
            let path = files::staging_path(&self.dir);
            self.file = Some(std::fs::File::options().write(true).create_new(true).open(&path).map_err(files::full_kind)?);
            self.path = path;
        }
        if let Some(file) = &self.file {
            file.sync_data().map_err(files::full_kind)?;
        }
        let hashers = std::mem::replace(&mut self.hashers, Hashers::new(&[]));
        let (md5, checksums) = hashers.finish();
        let inline = self.file.is_none().then(|| std::mem::take(&mut self.buf));
        Ok(Staged { path: std::mem::take(&mut self.path), inline, size: self.size, md5, checksums })
    }
}

/// A finished body, not yet part of any object. Removed from disk when dropped uncommitted.
pub struct Staged {
    pub(crate) path: PathBuf,
    /// A small body, kept in memory (no file).
    pub(crate) inline: Option<Vec<u8>>,
    pub size: u64,
    pub md5: [u8; 16],
    /// The checksums asked for in [`ObjectStore::stage`].
    pub checksums: Checksums,
}

impl Staged {
    /// Takes the file out: whoever commits it owns it now.
    pub(crate) fn take_path(&mut self) -> PathBuf {
        std::mem::take(&mut self.path)
    }
}

/// Removes a staging file not handed on (a failed or abandoned write).
fn remove_staged(path: &Path) {
    if !path.as_os_str().is_empty() {
        if let Err(e) = std::fs::remove_file(path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("objects: cannot remove staged body {}: {e}", path.display());
            }
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        remove_staged(&self.path);
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        remove_staged(&self.path);
    }
}

/// A body as it is read back: its blob file, the bytes its row keeps, or a blob in shared
/// storage (read from a blocking thread).
pub enum ObjectBody {
    File(std::fs::File),
    Inline(std::io::Cursor<std::sync::Arc<[u8]>>),
    Remote(crate::bodies::RemoteBody),
}

impl ObjectBody {
    /// Makes sure the body can be read (a shared one is requested now, from async code):
    /// call before answering with it.
    pub async fn ready(&mut self) -> std::io::Result<()> {
        match self {
            ObjectBody::Remote(r) => r.start().await,
            _ => Ok(()),
        }
    }
}

impl std::io::Read for ObjectBody {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            ObjectBody::File(f) => f.read(buf),
            ObjectBody::Inline(c) => c.read(buf),
            ObjectBody::Remote(r) => r.read(buf),
        }
    }
}

impl std::io::Seek for ObjectBody {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        match self {
            ObjectBody::File(f) => f.seek(pos),
            ObjectBody::Inline(c) => c.seek(pos),
            ObjectBody::Remote(r) => r.seek(pos),
        }
    }
}

/// Bodies up to this size are kept in their version's row: a small PUT is then one
/// group-committed write, with no file, rename or directory sync of its own.
pub const INLINE_MAX: usize = 64 * 1024;

/// How long a node holds the notifications it took before another node may take them
/// (PostgreSQL; it acknowledges them as soon as they are handed over).
const NOTIFICATION_LEASE_MS: i64 = 30_000;

/// Keys a DeleteObjects removes per transaction.
const DELETE_GROUP: usize = 50;

/// The start of the error of a PostgreSQL commit whose outcome is unknown (the connection
/// went while COMMIT was on its way): the change may be in, so what it names is kept.
pub(crate) const COMMIT_UNKNOWN: &str = "the commit's outcome is unknown: ";

/// Runs `$body` (using `$tx`, a `&mut impl Db`, evaluating to a `Result`, `.await`s allowed)
/// in one transaction of `$store`'s database; committed (durably when `$durable`) before it
/// evaluates to the result. The body is compiled for each engine and captures only owned
/// values (SQLite runs it on the writer thread).
macro_rules! in_tx {
    ($store:expr, $durable:expr, |$tx:ident| $body:expr) => {
        match &$store.db {
            nimbus_store::tx::Engine::Sqlite(group) => {
                group
                    .run(
                        $durable,
                        move |conn| {
                            nimbus_store::tx::at_once(async move {
                                let $tx = &mut $crate::db::Lite::new(conn);
                                $body
                            })
                        },
                        $crate::sql::db_failure,
                    )
                    .await
            }
            nimbus_store::tx::Engine::Postgres(shared) => {
                async {
                    let mut client = shared.client($durable).await?;
                    let mut transaction = client.transaction().await.map_err($crate::db::pg_error)?;
                    let result = async {
                        let $tx = &mut transaction;
                        $body
                    }
                    .await;
                    match result {
                        Ok(value) => transaction
                            .commit()
                            .await
                            .map_err(|e| {
                                $crate::ObjectError::Internal(format!("{}{}", $crate::store::COMMIT_UNKNOWN, $crate::db::pg_error(e)))
                            })
                            .map(|()| value),
                        Err(e) => Err(e),
                    }
                }
                .await
            }
        }
    };
}
pub(crate) use in_tx;

/// [`in_tx!`] for a read whose statements need no common snapshot: on PostgreSQL each runs
/// on its own (no BEGIN/COMMIT round trips).
macro_rules! in_read {
    ($store:expr, |$tx:ident| $body:expr) => {
        match &$store.db {
            nimbus_store::tx::Engine::Sqlite(_) => in_tx!($store, false, |$tx| $body),
            nimbus_store::tx::Engine::Postgres(shared) => {
                async {
                    let mut client = shared.client(false).await?;
                    let $tx = &mut client;
                    $body
                }
                .await
            }
        }
    };
}

/// The objects of one account.
pub struct ObjectStore {
    pub(crate) db: nimbus_store::tx::Engine<GroupCommit, crate::shared::SharedObjects>,
    /// The staging directory's parent (`<dir>/staging`).
    pub(crate) dir: PathBuf,
    pub(crate) bodies: Bodies,
    /// Bodies up to this many bytes are kept in their rows ([`INLINE_MAX`]).
    pub(crate) inline_max: usize,
    /// This store's name as the holder of notification leases.
    node: String,
    /// Every bucket's name, where this node is the only writer (SQLite): loaded at open,
    /// changed by each create and delete in its transaction (a commit that then fails, a
    /// disk's failure, can leave a name too many or too few until the next start). Lets an
    /// unsigned request be told it names no bucket without a database read
    /// ([`ObjectStore::knows_bucket`]).
    names: Option<BucketNames>,
}

type BucketNames = std::sync::Arc<std::sync::RwLock<std::collections::HashSet<String>>>;

impl ObjectStore {
    /// Opens (creating) the store in `dir`: `dir/objects.db`, `dir/blobs/`, `dir/staging/`.
    /// Empties the staging directory and removes blobs that no row names (a crash between a
    /// blob's rename and its commit, or between a commit and the old blob's removal).
    pub fn open(dir: &Path) -> Result<ObjectStore, ObjectError> {
        Self::open_with(dir, INLINE_MAX)
    }

    /// [`ObjectStore::open`] keeping bodies of up to `inline_max` bytes in their rows (0:
    /// every body a file).
    pub fn open_with(dir: &Path, inline_max: usize) -> Result<ObjectStore, ObjectError> {
        let create = |d: &Path| std::fs::create_dir_all(d).map_err(files::io_error);
        create(&dir.join(files::BLOBS))?;
        let staged = Self::clean_staging(dir)?;
        let mut unreferenced = 0;
        let mut names = std::collections::HashSet::new();
        let db = GroupCommit::open_prepared(
            Some(&dir.join("objects.db")),
            &sql::SCHEMA,
            |conn| {
                unreferenced = files::clean_blobs(
                    dir,
                    |id| nimbus_store::tx::at_once(sql::blob_referenced(&mut Lite::new(conn), id)),
                    files::io_error,
                )?;
                names = nimbus_store::tx::at_once(sql::all_buckets(&mut Lite::new(conn)))?.into_iter().map(|b| b.name).collect();
                Ok(())
            },
            sql::db_failure,
        )?;
        if staged + unreferenced > 0 {
            tracing::info!("objects: removed {staged} unfinished bodies and {unreferenced} unreferenced blobs in {}", dir.display());
        }
        Ok(ObjectStore {
            db: nimbus_store::tx::Engine::Sqlite(db),
            dir: dir.to_path_buf(),
            bodies: Bodies::Local(dir.to_path_buf()),
            inline_max,
            node: "local".into(),
            names: Some(BucketNames::new(std::sync::RwLock::new(names))),
        })
    }

    /// The account's objects in a PostgreSQL database several nodes share (`url`), their
    /// bodies in `bodies` (None: under `dir/blobs`, which no other node reads); `dir` holds
    /// this node's staging files. Blobs in shared storage that no row names are removed by
    /// [`ObjectStore::collect_orphans`].
    pub async fn open_shared(url: &str, account: &str, dir: &Path, bodies: Option<SharedBodies>) -> Result<ObjectStore, ObjectError> {
        Self::open_shared_with(url, account, dir, bodies, INLINE_MAX).await
    }

    /// [`ObjectStore::open_shared`] with another inline limit.
    pub async fn open_shared_with(
        url: &str,
        account: &str,
        dir: &Path,
        bodies: Option<SharedBodies>,
        inline_max: usize,
    ) -> Result<ObjectStore, ObjectError> {
        std::fs::create_dir_all(dir.join(files::BLOBS)).map_err(files::io_error)?;
        let staged = Self::clean_staging(dir)?;
        if staged > 0 {
            tracing::info!("objects: removed {staged} unfinished bodies in {}", dir.display());
        }
        let shared = crate::shared::SharedObjects::open(url, account).await?;
        let node = format!("objects-{}", uuid::Uuid::new_v4().simple());
        let store = ObjectStore {
            db: nimbus_store::tx::Engine::Postgres(shared),
            dir: dir.to_path_buf(),
            bodies: bodies.map_or_else(|| Bodies::Local(dir.to_path_buf()), Bodies::Shared),
            inline_max,
            node,
            names: None,
        };
        Ok(store)
    }

    fn clean_staging(dir: &Path) -> Result<usize, ObjectError> {
        std::fs::create_dir_all(dir.join(files::STAGING)).map_err(files::io_error)?;
        files::clean_staging(dir).map_err(files::io_error)
    }

    /// Whether [`ObjectStore::collect_orphans`] has anything to do (bodies in shared storage).
    pub fn collects_orphans(&self) -> bool {
        matches!(self.bodies, Bodies::Shared(_))
    }

    /// Removes blobs in shared storage that no row names and that are older than `grace`
    /// (a node installs a body before it commits its row); returns how many. One node's
    /// store has nothing to collect here (its clean-up runs at open).
    pub async fn collect_orphans(&self, grace: std::time::Duration) -> Result<usize, ObjectError> {
        let Bodies::Shared(shared) = &self.bodies else { return Ok(0) };
        let mut removed = Vec::new();
        for (id, age) in shared.list().await.map_err(files::io_error)? {
            if age < grace {
                continue;
            }
            let blob = id.clone();
            if !in_tx!(self, false, |tx| sql::blob_referenced(tx, &blob).await)? {
                removed.push(id);
            }
        }
        let n = removed.len();
        self.bodies.remove(removed);
        Ok(n)
    }

    // ---- buckets ---------------------------------------------------------------------

    /// Creates a bucket. [`ObjectError::BucketAlreadyOwnedByYou`] if it exists. (Names are
    /// checked by the edge; buckets of other accounts are the edge's to look for.)
    pub async fn create_bucket(&self, name: &str, region: &str) -> Result<Bucket, ObjectError> {
        let (name, region) = (name.to_string(), region.to_string());
        // The names change in the transaction (on the writer thread, in commit order), so a
        // caller that goes away before the commit is reported cannot leave them behind.
        let names = self.names.clone();
        in_tx!(self, true, |tx| {
            let made = sql::insert_bucket(tx, &name, &region, sql::now_ms()).await?;
            if let Some(names) = &names {
                names.write().unwrap_or_else(|p| p.into_inner()).insert(made.name.clone());
            }
            Ok(made)
        })
    }

    /// Whether a bucket of this name exists, where the store can tell without a database
    /// read (one node's store); None where other nodes may have changed it (shared), so
    /// [`ObjectStore::bucket`] must ask.
    pub fn knows_bucket(&self, name: &str) -> Option<bool> {
        self.names.as_ref().map(|names| names.read().unwrap_or_else(|p| p.into_inner()).contains(name))
    }

    /// [`ObjectError::NoSuchBucket`] if it does not exist.
    pub async fn bucket(&self, name: &str) -> Result<Bucket, ObjectError> {
        let name = name.to_string();
        in_read!(self, |tx| sql::bucket(tx, &name).await.map(|b| b.bucket))
    }

    /// By name.
    pub async fn list_buckets(&self) -> Result<Vec<Bucket>, ObjectError> {
        in_read!(self, |tx| sql::all_buckets(tx).await)
    }

    /// [`ObjectError::BucketNotEmpty`] while any version, delete marker or multipart upload
    /// is in it. Removes its settings and tags with it.
    pub async fn delete_bucket(&self, name: &str) -> Result<(), ObjectError> {
        let name = name.to_string();
        let names = self.names.clone();
        in_tx!(self, true, |tx| {
            sql::delete_bucket(tx, &name).await?;
            if let Some(names) = &names {
                names.write().unwrap_or_else(|p| p.into_inner()).remove(&name);
            }
            Ok(())
        })
    }

    /// `Enabled` or `Suspended` (a bucket never goes back to `Unversioned`).
    pub async fn set_versioning(&self, bucket: &str, state: Versioning) -> Result<(), ObjectError> {
        let bucket = bucket.to_string();
        in_tx!(self, true, |tx| sql::set_versioning(tx, &bucket, state).await)
    }

    /// A bucket setting stored as the edge hands it over (`kind`: "policy", "cors",
    /// "lifecycle", "encryption", "tagging", ...; the value is the edge's own document);
    /// `None` removes it.
    pub async fn put_bucket_setting(&self, bucket: &str, kind: &str, value: Option<String>) -> Result<(), ObjectError> {
        let (bucket, kind) = (bucket.to_string(), kind.to_string());
        in_tx!(self, true, |tx| sql::put_setting(tx, &bucket, &kind, value).await)
    }

    /// None when unset. [`ObjectError::NoSuchBucket`] if the bucket does not exist.
    pub async fn bucket_setting(&self, bucket: &str, kind: &str) -> Result<Option<String>, ObjectError> {
        let (bucket, kind) = (bucket.to_string(), kind.to_string());
        in_read!(self, |tx| sql::setting(tx, &bucket, &kind).await)
    }

    /// Replaces the bucket's notification configuration (an empty one removes it).
    /// Validation (overlaps, destinations) is the caller's; this stores and applies it.
    pub async fn set_notifications(&self, bucket: &str, config: NotificationConfig) -> Result<(), ObjectError> {
        let bucket = bucket.to_string();
        in_tx!(self, true, |tx| sql::set_notifications(tx, &bucket, &config).await)
    }

    pub async fn notifications(&self, bucket: &str) -> Result<NotificationConfig, ObjectError> {
        let bucket = bucket.to_string();
        in_read!(self, |tx| sql::bucket(tx, &bucket).await.map(|b| b.notifications))
    }

    // ---- bodies ----------------------------------------------------------------------

    /// A new staging file that also computes the checksums in `want` (MD5 always).
    pub fn stage(&self, want: &[ChecksumAlgorithm]) -> std::io::Result<Staging> {
        Ok(Staging {
            file: None,
            path: PathBuf::new(),
            buf: Vec::new(),
            inline_max: self.inline_max,
            dir: self.dir.clone(),
            size: 0,
            hashers: Hashers::new(want),
        })
    }

    /// Opens `len` bytes of a version's body from `start` (a ranged read asks the shared
    /// storage for those bytes only). Read no more than `len` bytes from it.
    pub fn open_range(&self, object: &Object, start: u64, len: u64) -> std::io::Result<ObjectBody> {
        use std::io::Seek;
        let mut body = match (&object.blob, &self.bodies) {
            (Some(id), Bodies::Shared(_)) => self.bodies.open_range(id, start, len)?,
            _ => self.open_body(object)?,
        };
        body.seek(std::io::SeekFrom::Start(start))?;
        Ok(body)
    }

    /// Opens a version's body for reading (a blob is never rewritten: a local file stays
    /// whole while open, even if the object is deleted meanwhile; a shared one is read when
    /// first read, from a blocking thread). Delete markers have none.
    pub fn open_body(&self, object: &Object) -> std::io::Result<ObjectBody> {
        match (&object.blob, &object.inline) {
            (Some(id), _) => self.bodies.open(id),
            (None, Some(bytes)) => Ok(ObjectBody::Inline(std::io::Cursor::new(bytes.clone()))),
            (None, None) if object.delete_marker => Err(std::io::Error::new(std::io::ErrorKind::NotFound, "a delete marker has no body")),
            // An empty body kept in its row.
            (None, None) => Ok(ObjectBody::Inline(std::io::Cursor::new(std::sync::Arc::from(&[][..])))),
        }
    }

    // ---- objects ---------------------------------------------------------------------

    /// Commits `body` as the new latest version of `key` (replacing the null version unless
    /// versioning is `Enabled`), with `tags`, checking `conditions` in the same transaction,
    /// and records the `s3:ObjectCreated:<event>` notification it owes (`event`: "Put",
    /// "Post", "Copy" or "CompleteMultipartUpload"). `checksum` names which of the staged
    /// checksums to record. Keys over 1,024 bytes: [`ObjectError::KeyTooLongError`].
    #[allow(clippy::too_many_arguments)]
    pub async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        mut body: Staged,
        meta: ObjectMeta,
        tags: Vec<(String, String)>,
        checksum: Option<ChecksumAlgorithm>,
        conditions: PutConditions,
        event: &str,
    ) -> Result<PutResult, ObjectError> {
        if body.size > limits::MAX_PUT_BYTES {
            return Err(ObjectError::EntityTooLarge);
        }
        let checksum = match checksum {
            Some(a) => match body.checksums.get(a) {
                Some(v) => Some((a, v.to_string())),
                None => return Err(ObjectError::InvalidRequest(format!("The {} checksum of the body was not computed", a.name()))),
            },
            None => None,
        };
        let (size, etag) = (body.size, hex::encode(body.md5));
        let (blob, inline) = match body.inline.take() {
            Some(bytes) => (None, Some(bytes)),
            None => (Some(self.install(body).await?), None),
        };
        let (bucket, key, event) = (bucket.to_string(), key.to_string(), event.to_string());
        let v = sql::NewVersion { size, etag, meta, checksum, parts_count: None, part_sizes: Vec::new(), tags, blob: blob.clone(), inline };
        let done = in_tx!(self, true, |tx| {
            let b = sql::bucket_for_write(tx, &bucket).await?;
            sql::write_version(tx, &b, &key, v, &conditions, &event, sql::now_ms()).await
        });
        self.settle(blob, done)
    }

    /// The latest version, or `version_id` (`"null"` names the null version).
    /// [`ObjectError::NoSuchKey`] when there is none or the latest is a delete marker (with
    /// `delete_marker` details for the edge's headers), [`ObjectError::NoSuchVersion`] for
    /// an unknown version id. A delete marker asked for by version id is returned as is.
    pub async fn head(&self, bucket: &str, key: &str, version_id: Option<&str>) -> Result<Object, ObjectError> {
        let (bucket, key, version_id) = (bucket.to_string(), key.to_string(), version_id.map(str::to_string));
        in_read!(self, |tx| {
            sql::bucket(tx, &bucket).await?;
            // A small body is read by a second statement: on PostgreSQL another node may
            // replace the version between the two, and the read starts again.
            for _ in 0..3 {
                let mut o = sql::resolve(tx, &bucket, &key, version_id.as_deref()).await?;
                if o.blob.is_none() && !o.delete_marker {
                    o.inline = sql::inline_body(tx, o.seq).await?.map(std::sync::Arc::from);
                    if o.inline.is_none() && o.size > 0 {
                        continue;
                    }
                }
                return Ok(o);
            }
            Err(ObjectError::internal("the object changed while it was read, three times"))
        })
    }

    /// DeleteObject: without a version id, removes the null version (unversioned) or adds a
    /// delete marker (enabled; suspended: a null delete marker replacing the null version);
    /// with one, removes exactly that version (the next newest becomes latest). Deleting a
    /// key that does not exist succeeds. Records `s3:ObjectRemoved:Delete` or
    /// `s3:ObjectRemoved:DeleteMarkerCreated`.
    pub async fn delete_object(&self, bucket: &str, key: &str, version_id: Option<&str>) -> Result<DeleteOutcome, ObjectError> {
        let (bucket, key, version_id) = (bucket.to_string(), key.to_string(), version_id.map(str::to_string));
        let (outcome, removed) = in_tx!(self, true, |tx| {
            let b = sql::bucket_for_write(tx, &bucket).await?;
            tx.lock_keys(&bucket, &[&key]).await?;
            sql::delete_version(tx, &b, &key, version_id.as_deref(), sql::now_ms()).await
        })?;
        self.bodies.remove(removed);
        Ok(outcome)
    }

    /// DeleteObjects: each as [`ObjectStore::delete_object`], in one transaction.
    pub async fn delete_objects(
        &self,
        bucket: &str,
        keys: Vec<(String, Option<String>)>,
    ) -> Result<Vec<Result<DeleteOutcome, ObjectError>>, ObjectError> {
        // In groups of keys, each its own transaction (S3 does not make the request atomic):
        // a transaction holds few key locks on PostgreSQL, whose lock table is shared.
        let mut results = Vec::with_capacity(keys.len());
        let mut keys = keys.into_iter().peekable();
        while keys.peek().is_some() {
            let group: Vec<_> = keys.by_ref().take(DELETE_GROUP).collect();
            results.extend(self.delete_group(bucket, group).await?);
        }
        Ok(results)
    }

    /// [`ObjectStore::delete_objects`] of one group of keys.
    async fn delete_group(
        &self,
        bucket: &str,
        keys: Vec<(String, Option<String>)>,
    ) -> Result<Vec<Result<DeleteOutcome, ObjectError>>, ObjectError> {
        let bucket = bucket.to_string();
        let (results, removed) = in_tx!(self, true, |tx| {
            let b = sql::bucket_for_write(tx, &bucket).await?;
            let names: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
            tx.lock_keys(&bucket, &names).await?;
            let now = sql::now_ms();
            let mut removed = Vec::new();
            let mut results = Vec::with_capacity(keys.len());
            for (key, version_id) in &keys {
                // Each key in its own savepoint: a refused one leaves no trace.
                tx.batch("SAVEPOINT one_key").await?;
                match sql::delete_version(tx, &b, key, version_id.as_deref(), now).await {
                    Ok((outcome, blobs)) => {
                        tx.batch("RELEASE one_key").await?;
                        removed.extend(blobs);
                        results.push(Ok(outcome));
                    }
                    Err(e) => {
                        tx.batch("ROLLBACK TO one_key; RELEASE one_key").await?;
                        results.push(Err(e));
                    }
                }
            }
            Ok((results, removed))
        })?;
        self.bodies.remove(removed);
        Ok(results)
    }

    /// CopyObject: a new version of `key` in `bucket` with `source`'s body (shared, never
    /// rewritten: the blob is hard-linked, or copied within the shared storage), `meta` (the
    /// edge chose COPY or REPLACE), `tags`, and `source`'s checksum. Records
    /// `s3:ObjectCreated:Copy`.
    pub async fn copy_object(
        &self,
        source: &Object,
        bucket: &str,
        key: &str,
        meta: ObjectMeta,
        tags: Vec<(String, String)>,
        conditions: PutConditions,
    ) -> Result<PutResult, ObjectError> {
        if source.delete_marker {
            return Err(ObjectError::NoSuchKey { delete_marker: Some(source.version_id.clone()) });
        }
        if source.size > limits::MAX_PUT_BYTES {
            return Err(ObjectError::InvalidRequest(format!(
                "The specified copy source is larger than the maximum allowable size for a copy source: {}",
                limits::MAX_PUT_BYTES
            )));
        }
        if source.blob.is_none() && source.inline.is_none() && source.size > 0 {
            return Err(ObjectError::internal("the copy source's body was not read"));
        }
        // A file body is shared (never rewritten); a small one is copied.
        let (blob, inline) = match &source.blob {
            Some(source_blob) => {
                let blob = files::new_blob_id();
                match self.bodies.copy(source_blob, &blob).await {
                    Ok(()) => {}
                    // The source was removed meanwhile.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ObjectError::NoSuchKey { delete_marker: None }),
                    Err(e) => return Err(files::io_error(e)),
                }
                (Some(blob), None)
            }
            None => (None, Some(source.inline.as_deref().unwrap_or_default().to_vec())),
        };
        let (bucket, key) = (bucket.to_string(), key.to_string());
        let v = sql::NewVersion {
            size: source.size,
            etag: source.etag.clone(),
            meta,
            checksum: source.checksum.clone(),
            parts_count: source.parts_count,
            part_sizes: source.part_sizes.clone(),
            tags,
            blob: blob.clone(),
            inline,
        };
        let done = in_tx!(self, true, |tx| {
            let b = sql::bucket_for_write(tx, &bucket).await?;
            sql::write_version(tx, &b, &key, v, &conditions, "Copy", sql::now_ms()).await
        });
        self.settle(blob, done)
    }

    pub async fn list_objects(&self, bucket: &str, query: &ListQuery) -> Result<ListPage, ObjectError> {
        let (bucket, query) = (bucket.to_string(), query.clone());
        in_read!(self, |tx| list::list_objects(tx, &bucket, &query).await)
    }

    pub async fn list_versions(&self, bucket: &str, query: &VersionQuery) -> Result<VersionPage, ObjectError> {
        let (bucket, query) = (bucket.to_string(), query.clone());
        in_read!(self, |tx| list::list_versions(tx, &bucket, &query).await)
    }

    /// Replaces a version's tags (the latest when `version_id` is None). Records
    /// `s3:ObjectTagging:Put` (or `:Delete` when `tags` is empty). Returns the version id.
    pub async fn put_tags(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        tags: Vec<(String, String)>,
    ) -> Result<Option<String>, ObjectError> {
        let (bucket, key, version_id) = (bucket.to_string(), key.to_string(), version_id.map(str::to_string));
        in_tx!(self, true, |tx| {
            let b = sql::bucket_for_write(tx, &bucket).await?;
            sql::put_tags(tx, &b, &key, version_id.as_deref(), &tags, sql::now_ms()).await
        })
    }

    /// A version's tags and its version id.
    pub async fn tags(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<(Vec<(String, String)>, Option<String>), ObjectError> {
        let (bucket, key, version_id) = (bucket.to_string(), key.to_string(), version_id.map(str::to_string));
        in_tx!(self, false, |tx| {
            sql::bucket(tx, &bucket).await?;
            let o = sql::resolve_object(tx, &bucket, &key, version_id.as_deref()).await?;
            Ok((sql::tags(tx, &bucket, &key, o.version_id.as_deref()).await?, o.version_id))
        })
    }

    // ---- multipart uploads -----------------------------------------------------------

    /// Starts an upload; returns its id.
    pub async fn create_upload(
        &self,
        bucket: &str,
        key: &str,
        meta: ObjectMeta,
        tags: Vec<(String, String)>,
        checksum_algorithm: Option<ChecksumAlgorithm>,
    ) -> Result<String, ObjectError> {
        let (bucket, key) = (bucket.to_string(), key.to_string());
        in_tx!(self, true, |tx| multipart::create(tx, &bucket, &key, &meta, &tags, checksum_algorithm).await)
    }

    /// The upload, or [`ObjectError::NoSuchUpload`] (also when it belongs to another key).
    pub async fn upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<UploadInfo, ObjectError> {
        let (bucket, key, upload_id) = (bucket.to_string(), key.to_string(), upload_id.to_string());
        in_tx!(self, false, |tx| {
            sql::bucket(tx, &bucket).await?;
            multipart::upload(tx, &bucket, &key, &upload_id, Lock::None).await.map(|(_, info)| info)
        })
    }

    /// Stores (or replaces) part `part_number` (1..=10,000, else
    /// [`ObjectError::InvalidArgument`]); returns the part's ETag (hex MD5, no quotes).
    pub async fn put_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Staged,
        checksum: Option<ChecksumAlgorithm>,
    ) -> Result<PartInfo, ObjectError> {
        if body.size > limits::MAX_PUT_BYTES {
            return Err(ObjectError::EntityTooLarge);
        }
        let checksum = match checksum {
            Some(a) => match body.checksums.get(a) {
                Some(v) => Some((a, v.to_string())),
                None => return Err(ObjectError::InvalidRequest(format!("The {} checksum of the body was not computed", a.name()))),
            },
            None => None,
        };
        let part = PartInfo { part_number, etag: hex::encode(body.md5), size: body.size, last_modified_ms: 0, checksum };
        let blob = self.install(body).await?;
        let (bucket, key, upload_id) = (bucket.to_string(), key.to_string(), upload_id.to_string());
        let id = blob.clone();
        let done = in_tx!(self, true, |tx| multipart::put_part(tx, &bucket, &key, &upload_id, part, &id).await);
        self.settle(Some(blob), done)
    }

    /// Joins the named parts into the object. AWS's rules: parts in ascending order
    /// ([`ObjectError::InvalidPartOrder`]), each named part uploaded with that ETag
    /// ([`ObjectError::InvalidPart`]), every part but the last at least 5 MiB
    /// ([`ObjectError::EntityTooSmall`]), at least one part. The body is concatenated into a
    /// new blob on a blocking thread (streamed, never held in memory), the object committed
    /// with ETag `hex(md5(part md5s))-N` and the upload's parts removed. Records
    /// `s3:ObjectCreated:CompleteMultipartUpload`.
    pub async fn complete_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: Vec<CompletedPart>,
        conditions: PutConditions,
    ) -> Result<PutResult, ObjectError> {
        multipart::complete(self, bucket, key, upload_id, parts, conditions).await
    }

    /// Removes the upload and its parts.
    pub async fn abort_upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<(), ObjectError> {
        let (bucket, key, upload_id) = (bucket.to_string(), key.to_string(), upload_id.to_string());
        let removed = in_tx!(self, true, |tx| {
            sql::bucket(tx, &bucket).await?;
            multipart::upload(tx, &bucket, &key, &upload_id, Lock::Update).await?;
            multipart::remove(tx, &upload_id).await
        })?;
        self.bodies.remove(removed);
        Ok(())
    }

    /// Parts after `marker`, at most `max` (1,000 at most).
    pub async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        marker: Option<u32>,
        max: usize,
    ) -> Result<PartsPage, ObjectError> {
        let (bucket, key, upload_id) = (bucket.to_string(), key.to_string(), upload_id.to_string());
        in_tx!(self, false, |tx| {
            sql::bucket(tx, &bucket).await?;
            multipart::upload(tx, &bucket, &key, &upload_id, Lock::None).await?;
            multipart::list_parts(tx, &upload_id, marker, max.min(limits::MAX_KEYS)).await
        })
    }

    pub async fn list_uploads(&self, bucket: &str, query: &UploadsQuery) -> Result<UploadsPage, ObjectError> {
        let (bucket, query) = (bucket.to_string(), query.clone());
        in_tx!(self, false, |tx| list::list_uploads(tx, &bucket, &query).await)
    }

    // ---- notifications ---------------------------------------------------------------

    /// Up to `max` notifications recorded by committed changes and not yet acknowledged,
    /// oldest first (they survive restarts until acknowledged). With several nodes each
    /// is this node's for a while (another node takes it only after its lease lapsed).
    pub async fn take_notifications(&self, max: usize) -> Result<Vec<PendingNotification>, ObjectError> {
        let holder = self.node.clone();
        in_tx!(self, false, |tx| sql::take_notifications(tx, max, &holder, NOTIFICATION_LEASE_MS).await)
    }

    /// Forgets delivered notifications.
    pub async fn ack_notifications(&self, ids: Vec<i64>) -> Result<(), ObjectError> {
        in_tx!(self, true, |tx| sql::ack_notifications(tx, &ids).await)
    }

    // ---- private helpers ---------------------------------------------------------------

    /// Makes a staged body a blob (moved or sent, durably); returns its blob id. The staged
    /// file is removed if this fails.
    pub(crate) async fn install(&self, mut body: Staged) -> Result<String, ObjectError> {
        if let Some(bytes) = body.inline.take() {
            // A small body that must be a file (a part): written out and synced first.
            let dir = self.dir.clone();
            let path = tokio::task::spawn_blocking(move || -> std::io::Result<PathBuf> {
                use std::io::Write;
                let path = files::staging_path(&dir);
                let mut file = std::fs::File::options().write(true).create_new(true).open(&path).map_err(files::full_kind)?;
                let written = file.write_all(&bytes).and_then(|()| file.sync_data()).map_err(files::full_kind);
                if let Err(e) = written {
                    remove_staged(&path);
                    return Err(e);
                }
                Ok(path)
            })
            .await
            .map_err(ObjectError::internal)?
            .map_err(files::io_error)?;
            body.path = path;
        }
        let id = files::new_blob_id();
        self.bodies.install(body.take_path(), &id).await.map_err(files::io_error)?;
        Ok(id)
    }

    /// The outcome of a change that recorded blob `blob`: the blob is removed if the change
    /// failed, and the blobs the change replaced once it is committed.
    pub(crate) fn settle<T>(&self, blob: Option<String>, done: Result<(T, Vec<String>), ObjectError>) -> Result<T, ObjectError> {
        match done {
            Ok((result, replaced)) => {
                self.bodies.remove(replaced);
                Ok(result)
            }
            Err(e) => {
                // A commit that may have happened keeps its body (the collection of bodies no
                // object names removes it if not).
                let unknown = matches!(&e, ObjectError::Internal(m) if m.starts_with(COMMIT_UNKNOWN));
                if !unknown {
                    self.bodies.remove(blob.into_iter().collect());
                }
                Err(e)
            }
        }
    }
}

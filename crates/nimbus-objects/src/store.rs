//! The store itself: `objects.db` and the blob directory of one account.
//!
//! THIS FILE IS THE INTERFACE THE HTTP EDGE PROGRAMS AGAINST: the types and signatures are
//! fixed; the bodies are to be written.

use std::path::{Path, PathBuf};

use crate::checksum::{ChecksumAlgorithm, Checksums};
use crate::error::ObjectError;
use crate::notify::{NotificationConfig, PendingNotification};

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
    /// How many tags the version carries (`x-amz-tagging-count`).
    pub tag_count: usize,
    /// The blob holding the body (private to the store: read it with [`ObjectStore::open_body`]).
    pub(crate) blob: Option<String>,
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

/// A body being written to the staging directory. Blocking IO: call from a blocking thread
/// (the edge gathers a request's frames and writes them from `spawn_blocking`).
pub struct Staging {
    pub(crate) file: std::fs::File,
    pub(crate) path: PathBuf,
    pub(crate) size: u64,
    pub(crate) hashers: crate::checksum::Hashers,
}

impl Staging {
    /// Appends `data`, hashing it.
    pub fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        let _ = data;
        todo!()
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Syncs the file (fdatasync) and returns the body with its digests.
    pub fn finish(self) -> std::io::Result<Staged> {
        todo!()
    }
}

/// A finished body, not yet part of any object. Removed from disk when dropped uncommitted.
pub struct Staged {
    pub(crate) path: PathBuf,
    pub size: u64,
    pub md5: [u8; 16],
    /// The checksums asked for in [`ObjectStore::stage`].
    pub checksums: Checksums,
}

/// The objects of one account.
pub struct ObjectStore {
    pub(crate) db: nimbus_store::group_commit::GroupCommit,
    pub(crate) dir: PathBuf,
}

impl ObjectStore {
    /// Opens (creating) the store in `dir`: `dir/objects.db`, `dir/blobs/`, `dir/staging/`.
    /// Empties the staging directory and removes blobs that no row names (a crash between a
    /// blob's rename and its commit, or between a commit and the old blob's removal).
    pub fn open(dir: &Path) -> Result<ObjectStore, ObjectError> {
        let _ = dir;
        todo!()
    }

    // ---- buckets ---------------------------------------------------------------------

    /// Creates a bucket. [`ObjectError::BucketAlreadyOwnedByYou`] if it exists. (Names are
    /// checked by the edge; buckets of other accounts are the edge's to look for.)
    pub async fn create_bucket(&self, name: &str, region: &str) -> Result<Bucket, ObjectError> {
        let _ = (name, region);
        todo!()
    }

    /// [`ObjectError::NoSuchBucket`] if it does not exist.
    pub async fn bucket(&self, name: &str) -> Result<Bucket, ObjectError> {
        let _ = name;
        todo!()
    }

    /// By name.
    pub async fn list_buckets(&self) -> Result<Vec<Bucket>, ObjectError> {
        todo!()
    }

    /// [`ObjectError::BucketNotEmpty`] while any version, delete marker or multipart upload
    /// is in it. Removes its settings and tags with it.
    pub async fn delete_bucket(&self, name: &str) -> Result<(), ObjectError> {
        let _ = name;
        todo!()
    }

    /// `Enabled` or `Suspended` (a bucket never goes back to `Unversioned`).
    pub async fn set_versioning(&self, bucket: &str, state: Versioning) -> Result<(), ObjectError> {
        let _ = (bucket, state);
        todo!()
    }

    /// A bucket setting stored as the edge hands it over (`kind`: "policy", "cors",
    /// "lifecycle", "encryption", "tagging", ...; the value is the edge's own document);
    /// `None` removes it.
    pub async fn put_bucket_setting(&self, bucket: &str, kind: &str, value: Option<String>) -> Result<(), ObjectError> {
        let _ = (bucket, kind, value);
        todo!()
    }

    /// None when unset. [`ObjectError::NoSuchBucket`] if the bucket does not exist.
    pub async fn bucket_setting(&self, bucket: &str, kind: &str) -> Result<Option<String>, ObjectError> {
        let _ = (bucket, kind);
        todo!()
    }

    /// Replaces the bucket's notification configuration (an empty one removes it).
    /// Validation (overlaps, destinations) is the caller's; this stores and applies it.
    pub async fn set_notifications(&self, bucket: &str, config: NotificationConfig) -> Result<(), ObjectError> {
        let _ = (bucket, config);
        todo!()
    }

    pub async fn notifications(&self, bucket: &str) -> Result<NotificationConfig, ObjectError> {
        let _ = bucket;
        todo!()
    }

    // ---- bodies ----------------------------------------------------------------------

    /// A new staging file that also computes the checksums in `want` (MD5 always).
    pub fn stage(&self, want: &[ChecksumAlgorithm]) -> std::io::Result<Staging> {
        let _ = want;
        todo!()
    }

    /// Opens a version's body for reading (a blob is never rewritten: the file stays whole
    /// while open, even if the object is deleted meanwhile). Delete markers have none.
    pub fn open_body(&self, object: &Object) -> std::io::Result<std::fs::File> {
        let _ = object;
        todo!()
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
        body: Staged,
        meta: ObjectMeta,
        tags: Vec<(String, String)>,
        checksum: Option<ChecksumAlgorithm>,
        conditions: PutConditions,
        event: &str,
    ) -> Result<PutResult, ObjectError> {
        let _ = (bucket, key, body, meta, tags, checksum, conditions, event);
        todo!()
    }

    /// The latest version, or `version_id` (`"null"` names the null version).
    /// [`ObjectError::NoSuchKey`] when there is none or the latest is a delete marker (with
    /// `delete_marker` details for the edge's headers), [`ObjectError::NoSuchVersion`] for
    /// an unknown version id. A delete marker asked for by version id is returned as is.
    pub async fn head(&self, bucket: &str, key: &str, version_id: Option<&str>) -> Result<Object, ObjectError> {
        let _ = (bucket, key, version_id);
        todo!()
    }

    /// DeleteObject: without a version id, removes the null version (unversioned) or adds a
    /// delete marker (enabled; suspended: a null delete marker replacing the null version);
    /// with one, removes exactly that version (the next newest becomes latest). Deleting a
    /// key that does not exist succeeds. Records `s3:ObjectRemoved:Delete` or
    /// `s3:ObjectRemoved:DeleteMarkerCreated`.
    pub async fn delete_object(&self, bucket: &str, key: &str, version_id: Option<&str>) -> Result<DeleteOutcome, ObjectError> {
        let _ = (bucket, key, version_id);
        todo!()
    }

    /// DeleteObjects: each as [`ObjectStore::delete_object`], in one transaction.
    pub async fn delete_objects(
        &self,
        bucket: &str,
        keys: Vec<(String, Option<String>)>,
    ) -> Result<Vec<Result<DeleteOutcome, ObjectError>>, ObjectError> {
        let _ = (bucket, keys);
        todo!()
    }

    /// CopyObject: a new version of `key` in `bucket` with `source`'s body (shared, never
    /// rewritten: the blob is hard-linked), `meta` (the edge chose COPY or REPLACE), `tags`,
    /// and `source`'s checksum. Records `s3:ObjectCreated:Copy`.
    pub async fn copy_object(
        &self,
        source: &Object,
        bucket: &str,
        key: &str,
        meta: ObjectMeta,
        tags: Vec<(String, String)>,
        conditions: PutConditions,
    ) -> Result<PutResult, ObjectError> {
        let _ = (source, bucket, key, meta, tags, conditions);
        todo!()
    }

    pub async fn list_objects(&self, bucket: &str, query: &ListQuery) -> Result<ListPage, ObjectError> {
        let _ = (bucket, query);
        todo!()
    }

    pub async fn list_versions(&self, bucket: &str, query: &VersionQuery) -> Result<VersionPage, ObjectError> {
        let _ = (bucket, query);
        todo!()
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
        let _ = (bucket, key, version_id, tags);
        todo!()
    }

    /// A version's tags and its version id.
    pub async fn tags(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<(Vec<(String, String)>, Option<String>), ObjectError> {
        let _ = (bucket, key, version_id);
        todo!()
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
        let _ = (bucket, key, meta, tags, checksum_algorithm);
        todo!()
    }

    /// The upload, or [`ObjectError::NoSuchUpload`] (also when it belongs to another key).
    pub async fn upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<UploadInfo, ObjectError> {
        let _ = (bucket, key, upload_id);
        todo!()
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
        let _ = (bucket, key, upload_id, part_number, body, checksum);
        todo!()
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
        let _ = (bucket, key, upload_id, parts, conditions);
        todo!()
    }

    /// Removes the upload and its parts.
    pub async fn abort_upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<(), ObjectError> {
        let _ = (bucket, key, upload_id);
        todo!()
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
        let _ = (bucket, key, upload_id, marker, max);
        todo!()
    }

    pub async fn list_uploads(&self, bucket: &str, query: &UploadsQuery) -> Result<UploadsPage, ObjectError> {
        let _ = (bucket, query);
        todo!()
    }

    // ---- notifications ---------------------------------------------------------------

    /// Up to `max` notifications recorded by committed changes and not yet acknowledged,
    /// oldest first (they survive restarts until acknowledged).
    pub async fn take_notifications(&self, max: usize) -> Result<Vec<PendingNotification>, ObjectError> {
        let _ = max;
        todo!()
    }

    /// Forgets delivered notifications.
    pub async fn ack_notifications(&self, ids: Vec<i64>) -> Result<(), ObjectError> {
        let _ = ids;
        todo!()
    }
}

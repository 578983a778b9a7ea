//! Nimbus's S3-compatible object storage for one account: the domain, no wire formats.
//! [`ObjectStore`] keeps buckets, object versions, multipart uploads, tags, bucket settings
//! and the notifications owed for each change in `objects.db` (SQLite behind
//! `nimbus_store::group_commit`, every change committed durably before it is acknowledged),
//! and object bodies as immutable files under `<dir>/blobs`, named by random ids and never by
//! key, so a key (`..`, `/`, control characters, any unicode) is only ever a database value.
//!
//! A body is written in two steps: [`ObjectStore::stage`] opens a [`Staging`] file the caller
//! streams the body into (hashing as it goes: MD5 for the ETag, plus the checksums asked for),
//! [`Staging::finish`] syncs it and hands back a [`Staged`] body with its digests; a commit
//! ([`ObjectStore::put_object`], [`ObjectStore::put_part`], ...) moves the staged file into the
//! blob directory and records it in one transaction, with the notification it owes. A staged
//! body that is never committed is removed when dropped; files a crash left behind (in the
//! staging directory, or blobs no row names) are removed at the next open.
//!
//! The HTTP edge (`nimbus-api::s3`) decodes S3's requests into these calls and renders their
//! results; the server hands [`ObjectStore::take_notifications`] to the functions, queues and
//! topics that receive them.

mod bodies;
pub mod checksum;
mod db;
mod error;
mod files;
mod list;
mod multipart;
pub mod notify;
mod shared;
mod sql;
mod store;

pub use bodies::{RemoteBody, SharedBodies, ORPHAN_GRACE};
pub use checksum::{ChecksumAlgorithm, Checksums};
pub use error::ObjectError;
pub use notify::{NotificationConfig, PendingNotification};
pub use store::{
    Bucket, CompletedPart, DeleteOutcome, ListPage, ListQuery, Object, ObjectBody, ObjectMeta, ObjectStore, PartInfo, PartsPage,
    PutConditions, PutResult, Staged, Staging, UploadInfo, UploadsPage, UploadsQuery, VersionPage, VersionQuery, Versioning, INLINE_MAX,
};

/// S3's limits that the store enforces.
pub mod limits {
    /// Longest key, in bytes of UTF-8.
    pub const MAX_KEY_BYTES: usize = 1024;
    /// Smallest part of a multipart upload, except the last.
    pub const MIN_PART_BYTES: u64 = 5 * 1024 * 1024;
    /// Part numbers run from 1 to this.
    pub const MAX_PART_NUMBER: u32 = 10_000;
    /// Largest single PUT (5 GiB).
    pub const MAX_PUT_BYTES: u64 = 5 * 1024 * 1024 * 1024;
    /// Largest object (5 TiB).
    pub const MAX_OBJECT_BYTES: u64 = 5 * 1024 * 1024 * 1024 * 1024;
    /// Most keys a page of a listing holds.
    pub const MAX_KEYS: usize = 1000;
    /// Most tags on an object or a bucket.
    pub const MAX_OBJECT_TAGS: usize = 10;
}

#[cfg(test)]
mod tests;

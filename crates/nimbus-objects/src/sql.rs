//! The objects' schema and the statements every change shares (reading a bucket, a
//! version, writing or removing versions with S3's versioning rules, recording the
//! notifications a change owes), each run inside the change's own transaction of either
//! engine ([`Db`]).

use crate::checksum::ChecksumAlgorithm;
use crate::db::{vals, Db, Row, Val};
use crate::error::ObjectError;
use crate::limits;
use crate::notify::NotificationConfig;
use crate::store::{Bucket, DeleteOutcome, Object, ObjectMeta, PutConditions, PutResult, Versioning};

/// `objects.db`. The null version is stored with `version_id` `'null'` (S3's own name for
/// it; generated ids never are), so every version has a unique `(bucket, name, version_id)`.
pub(crate) static SCHEMA: nimbus_store::db::Schema = nimbus_store::db::Schema {
    name: "objects",
    migrations: &[
        // 1: the schema of the first release.
        "
CREATE TABLE IF NOT EXISTS buckets (
    name TEXT PRIMARY KEY,
    region TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    versioning TEXT NOT NULL DEFAULT 'Unversioned',
    notifications TEXT
);
CREATE TABLE IF NOT EXISTS bucket_settings (
    bucket TEXT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (bucket, kind)
);
CREATE TABLE IF NOT EXISTS versions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    bucket TEXT NOT NULL,
    name TEXT NOT NULL,
    version_id TEXT NOT NULL,
    is_latest INTEGER NOT NULL,
    delete_marker INTEGER NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    last_modified_ms INTEGER NOT NULL,
    meta TEXT NOT NULL,
    checksum_algorithm TEXT,
    checksum TEXT,
    parts_count INTEGER,
    tags TEXT NOT NULL,
    blob TEXT,
    part_sizes TEXT,
    inline BLOB
);
CREATE UNIQUE INDEX IF NOT EXISTS versions_id ON versions(bucket, name, version_id);
CREATE INDEX IF NOT EXISTS versions_order ON versions(bucket, name, seq DESC);
CREATE UNIQUE INDEX IF NOT EXISTS versions_latest ON versions(bucket, name) WHERE is_latest = 1;
CREATE INDEX IF NOT EXISTS versions_live ON versions(bucket, name) WHERE is_latest = 1 AND delete_marker = 0;
CREATE INDEX IF NOT EXISTS versions_blob ON versions(blob) WHERE blob IS NOT NULL;
CREATE TABLE IF NOT EXISTS uploads (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    upload_id TEXT NOT NULL UNIQUE,
    bucket TEXT NOT NULL,
    name TEXT NOT NULL,
    initiated_ms INTEGER NOT NULL,
    meta TEXT NOT NULL,
    tags TEXT NOT NULL,
    checksum_algorithm TEXT
);
CREATE INDEX IF NOT EXISTS uploads_order ON uploads(bucket, name, seq);
CREATE TABLE IF NOT EXISTS parts (
    upload_id TEXT NOT NULL,
    part_number INTEGER NOT NULL,
    etag TEXT NOT NULL,
    size INTEGER NOT NULL,
    last_modified_ms INTEGER NOT NULL,
    checksum_algorithm TEXT,
    checksum TEXT,
    blob TEXT NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);
CREATE INDEX IF NOT EXISTS parts_blob ON parts(blob);
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    destination_arn TEXT NOT NULL,
    configuration_id TEXT NOT NULL,
    event_name TEXT NOT NULL,
    bucket TEXT NOT NULL,
    name TEXT NOT NULL,
    size INTEGER,
    etag TEXT,
    version_id TEXT,
    sequencer TEXT NOT NULL,
    event_time_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
",
        // 2: the tables named as on PostgreSQL, where they share the account's schema.
        "
ALTER TABLE buckets RENAME TO s3_buckets;
ALTER TABLE bucket_settings RENAME TO s3_bucket_settings;
ALTER TABLE versions RENAME TO s3_versions;
ALTER TABLE uploads RENAME TO s3_uploads;
ALTER TABLE parts RENAME TO s3_parts;
ALTER TABLE notifications RENAME TO s3_notifications;
ALTER TABLE counters RENAME TO s3_counters;
",
    ],
};

/// A failure of the writer thread (the commit itself) as the store's.
pub(crate) fn db_failure(e: String) -> ObjectError {
    if e.contains("database or disk is full") {
        ObjectError::StorageFull
    } else {
        ObjectError::Internal(e)
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// `bytes` random bytes, base64url (unpadded): S3-like opaque ids.
pub(crate) fn random_id(bytes: usize) -> String {
    use base64::Engine;
    let mut raw = Vec::with_capacity(bytes + 16);
    while raw.len() < bytes {
        raw.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    raw.truncate(bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// A fresh version id: 32 url-safe characters.
pub(crate) fn new_version_id() -> String {
    random_id(24)
}

pub(crate) const NULL_VERSION: &str = "null";

/// A version id as stored: the null version is `"null"`.
pub(crate) fn stored_version(v: Option<&str>) -> &str {
    v.unwrap_or(NULL_VERSION)
}

/// A stored version id as the API speaks it: the null version is `None`.
pub(crate) fn api_version(v: String) -> Option<String> {
    (v != NULL_VERSION).then_some(v)
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Result<String, ObjectError> {
    serde_json::to_string(v).map_err(ObjectError::internal)
}

fn versioning_name(v: Versioning) -> &'static str {
    match v {
        Versioning::Unversioned => "Unversioned",
        Versioning::Enabled => "Enabled",
        Versioning::Suspended => "Suspended",
    }
}

fn versioning_from(s: &str) -> Versioning {
    match s {
        "Enabled" => Versioning::Enabled,
        "Suspended" => Versioning::Suspended,
        _ => Versioning::Unversioned,
    }
}

pub(crate) fn algorithm_from(name: Option<String>) -> Option<ChecksumAlgorithm> {
    name.as_deref().and_then(ChecksumAlgorithm::from_name)
}

pub(crate) fn check_key(key: &str) -> Result<(), ObjectError> {
    if key.len() > limits::MAX_KEY_BYTES {
        return Err(ObjectError::KeyTooLongError);
    }
    Ok(())
}

pub(crate) fn check_tags(tags: &[(String, String)]) -> Result<(), ObjectError> {
    if tags.len() > limits::MAX_OBJECT_TAGS {
        return Err(ObjectError::InvalidArgument("Object tags cannot be greater than 10".into()));
    }
    Ok(())
}

// ---- buckets ----------------------------------------------------------------------------

/// A bucket with what its changes need.
pub(crate) struct BucketRow {
    pub bucket: Bucket,
    pub notifications: NotificationConfig,
}

fn bucket_from_row(r: &Row) -> Result<BucketRow, ObjectError> {
    let notifications = r.opt_text(4)?;
    Ok(BucketRow {
        bucket: Bucket { name: r.text(0)?, region: r.text(1)?, created_ms: r.int(2)?, versioning: versioning_from(&r.text(3)?) },
        notifications: notifications.and_then(|n| serde_json::from_str(&n).ok()).unwrap_or_default(),
    })
}

const BUCKET_COLUMNS: &str = "name, region, created_ms, versioning, notifications";

pub(crate) async fn find_bucket(db: &mut impl Db, name: &str) -> Result<Option<BucketRow>, ObjectError> {
    db.row(&format!("SELECT {BUCKET_COLUMNS} FROM s3_buckets WHERE name = ?1"), &vals![name])
        .await?
        .as_ref()
        .map(bucket_from_row)
        .transpose()
}

/// The bucket, or [`ObjectError::NoSuchBucket`].
pub(crate) async fn bucket(db: &mut impl Db, name: &str) -> Result<BucketRow, ObjectError> {
    find_bucket(db, name).await?.ok_or(ObjectError::NoSuchBucket)
}

/// [`bucket`] for a write inside it: held against its deletion and changes until the commit.
pub(crate) async fn bucket_for_write(db: &mut impl Db, name: &str) -> Result<BucketRow, ObjectError> {
    db.lock_bucket(name, false).await?;
    bucket(db, name).await
}

/// [`bucket`] for a change of the bucket itself: held alone until the commit.
pub(crate) async fn bucket_for_change(db: &mut impl Db, name: &str) -> Result<BucketRow, ObjectError> {
    db.lock_bucket(name, true).await?;
    bucket(db, name).await
}

pub(crate) async fn all_buckets(db: &mut impl Db) -> Result<Vec<Bucket>, ObjectError> {
    let rows = db.rows(&format!("SELECT {BUCKET_COLUMNS} FROM s3_buckets ORDER BY name"), &[]).await?;
    rows.iter().map(|r| bucket_from_row(r).map(|b| b.bucket)).collect()
}

pub(crate) async fn insert_bucket(db: &mut impl Db, name: &str, region: &str, now: i64) -> Result<Bucket, ObjectError> {
    let made = db
        .exec(
            "INSERT INTO s3_buckets (name, region, created_ms) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO NOTHING",
            &vals![name, region, now],
        )
        .await?;
    if made == 0 {
        return Err(ObjectError::BucketAlreadyOwnedByYou);
    }
    Ok(Bucket { name: name.into(), region: region.into(), created_ms: now, versioning: Versioning::Unversioned })
}

pub(crate) async fn delete_bucket(db: &mut impl Db, name: &str) -> Result<(), ObjectError> {
    bucket_for_change(db, name).await?;
    let busy = db
        .row(
            "SELECT EXISTS (SELECT 1 FROM s3_versions WHERE bucket = ?1) OR EXISTS (SELECT 1 FROM s3_uploads WHERE bucket = ?1)",
            &vals![name],
        )
        .await?
        .map(|r| r.bool(0))
        .transpose()?
        .unwrap_or(false);
    if busy {
        return Err(ObjectError::BucketNotEmpty);
    }
    db.exec("DELETE FROM s3_bucket_settings WHERE bucket = ?1", &vals![name]).await?;
    db.exec("DELETE FROM s3_buckets WHERE name = ?1", &vals![name]).await?;
    Ok(())
}

pub(crate) async fn set_versioning(db: &mut impl Db, name: &str, state: Versioning) -> Result<(), ObjectError> {
    let b = bucket_for_change(db, name).await?;
    if state == Versioning::Unversioned {
        if b.bucket.versioning == Versioning::Unversioned {
            return Ok(());
        }
        return Err(ObjectError::InvalidArgument("A versioned bucket cannot become unversioned; suspend its versioning".into()));
    }
    db.exec("UPDATE s3_buckets SET versioning = ?2 WHERE name = ?1", &vals![name, versioning_name(state)]).await?;
    Ok(())
}

pub(crate) async fn set_notifications(db: &mut impl Db, name: &str, config: &NotificationConfig) -> Result<(), ObjectError> {
    bucket_for_change(db, name).await?;
    let value = if config.destinations.is_empty() && !config.event_bridge { None } else { Some(to_json(config)?) };
    db.exec("UPDATE s3_buckets SET notifications = ?2 WHERE name = ?1", &vals![name, value]).await?;
    Ok(())
}

pub(crate) async fn put_setting(db: &mut impl Db, bucket: &str, kind: &str, value: Option<String>) -> Result<(), ObjectError> {
    bucket_for_write(db, bucket).await?;
    match value {
        Some(v) => {
            db.exec(
                "INSERT INTO s3_bucket_settings (bucket, kind, value) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (bucket, kind) DO UPDATE SET value = excluded.value",
                &vals![bucket, kind, v],
            )
            .await?
        }
        None => db.exec("DELETE FROM s3_bucket_settings WHERE bucket = ?1 AND kind = ?2", &vals![bucket, kind]).await?,
    };
    Ok(())
}

pub(crate) async fn setting(db: &mut impl Db, bucket: &str, kind: &str) -> Result<Option<String>, ObjectError> {
    self::bucket(db, bucket).await?;
    db.row("SELECT value FROM s3_bucket_settings WHERE bucket = ?1 AND kind = ?2", &vals![bucket, kind])
        .await?
        .map(|r| r.text(0))
        .transpose()
}

// ---- versions ---------------------------------------------------------------------------

pub(crate) const VERSION_COLUMNS: &str = "seq, bucket, name, version_id, is_latest, delete_marker, size, etag, last_modified_ms, meta, \
                                          checksum_algorithm, checksum, parts_count, tags, blob, part_sizes";

/// A version row (selected with [`VERSION_COLUMNS`]) and its sequence number.
pub(crate) fn version_from_row(r: &Row) -> Result<(i64, Object), ObjectError> {
    let meta = r.text(9)?;
    let tags: Vec<(String, String)> = serde_json::from_str(&r.text(13)?).unwrap_or_default();
    let seq = r.int(0)?;
    Ok((
        seq,
        Object {
            bucket: r.text(1)?,
            key: r.text(2)?,
            version_id: api_version(r.text(3)?),
            is_latest: r.bool(4)?,
            delete_marker: r.bool(5)?,
            size: r.int(6)? as u64,
            etag: r.text(7)?,
            last_modified_ms: r.int(8)?,
            meta: serde_json::from_str(&meta).unwrap_or_default(),
            checksum: algorithm_from(r.opt_text(10)?).zip(r.opt_text(11)?),
            parts_count: r.opt_int(12)?.map(|n| n as u32),
            part_sizes: r.opt_text(15)?.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default(),
            tag_count: tags.len(),
            blob: r.opt_text(14)?,
            seq,
            inline: None,
        },
    ))
}

async fn version_where(db: &mut impl Db, condition: &str, params: &[Val]) -> Result<Option<(i64, Object)>, ObjectError> {
    let sql = format!("SELECT {VERSION_COLUMNS} FROM s3_versions WHERE {condition}");
    db.row(&sql, params).await?.as_ref().map(version_from_row).transpose()
}

pub(crate) async fn latest(db: &mut impl Db, bucket: &str, key: &str) -> Result<Option<(i64, Object)>, ObjectError> {
    version_where(db, "bucket = ?1 AND name = ?2 AND is_latest = 1", &vals![bucket, key]).await
}

pub(crate) async fn version(db: &mut impl Db, bucket: &str, key: &str, version_id: &str) -> Result<Option<(i64, Object)>, ObjectError> {
    version_where(db, "bucket = ?1 AND name = ?2 AND version_id = ?3", &vals![bucket, key, version_id]).await
}

/// The version a read names: the latest (NoSuchKey when missing or a delete marker) or the
/// one with `version_id` (NoSuchVersion when unknown; a delete marker as is).
pub(crate) async fn resolve(db: &mut impl Db, bucket: &str, key: &str, version_id: Option<&str>) -> Result<Object, ObjectError> {
    match version_id {
        None => match latest(db, bucket, key).await? {
            None => Err(ObjectError::NoSuchKey { delete_marker: None }),
            Some((_, o)) if o.delete_marker => Err(ObjectError::NoSuchKey { delete_marker: Some(o.version_id) }),
            Some((_, o)) => Ok(o),
        },
        Some(v) => version(db, bucket, key, v).await?.map(|(_, o)| o).ok_or(ObjectError::NoSuchVersion),
    }
}

/// Like [`resolve`], refusing a delete marker named by version id (tagging calls).
pub(crate) async fn resolve_object(db: &mut impl Db, bucket: &str, key: &str, version_id: Option<&str>) -> Result<Object, ObjectError> {
    let o = resolve(db, bucket, key, version_id).await?;
    if o.delete_marker {
        return Err(ObjectError::MethodNotAllowed { version_id: o.version_id });
    }
    Ok(o)
}

/// What a new version holds.
pub(crate) struct NewVersion {
    pub size: u64,
    pub etag: String,
    pub meta: ObjectMeta,
    pub checksum: Option<(ChecksumAlgorithm, String)>,
    pub parts_count: Option<u32>,
    /// Each part's size, in order (multipart objects).
    pub part_sizes: Vec<u64>,
    pub tags: Vec<(String, String)>,
    /// The body's blob, or (small bodies) the body itself, kept in the row.
    pub blob: Option<String>,
    pub inline: Option<Vec<u8>>,
}

pub(crate) async fn check_conditions(db: &mut impl Db, bucket: &str, key: &str, conditions: &PutConditions) -> Result<(), ObjectError> {
    if !conditions.if_none_match_any && conditions.if_match.is_none() {
        return Ok(());
    }
    let current = latest(db, bucket, key).await?.map(|(_, o)| o).filter(|o| !o.delete_marker);
    if let Some(etag) = &conditions.if_match {
        let Some(current) = &current else { return Err(ObjectError::NoSuchKey { delete_marker: None }) };
        if current.etag != etag.trim_matches('"') {
            return Err(ObjectError::PreconditionFailed);
        }
    }
    if conditions.if_none_match_any && current.is_some() {
        return Err(ObjectError::PreconditionFailed);
    }
    Ok(())
}

/// Removes the null version of `key` if there is one; returns its blob.
async fn remove_null_version(db: &mut impl Db, bucket: &str, key: &str) -> Result<Option<String>, ObjectError> {
    let row = db
        .row("DELETE FROM s3_versions WHERE bucket = ?1 AND name = ?2 AND version_id = 'null' RETURNING blob", &vals![bucket, key])
        .await?;
    Ok(row.map(|r| r.opt_text(0)).transpose()?.flatten())
}

async fn unset_latest(db: &mut impl Db, bucket: &str, key: &str) -> Result<(), ObjectError> {
    db.exec("UPDATE s3_versions SET is_latest = 0 WHERE bucket = ?1 AND name = ?2 AND is_latest = 1", &vals![bucket, key]).await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn insert_version(
    db: &mut impl Db,
    bucket: &str,
    key: &str,
    version_id: &str,
    delete_marker: bool,
    v: Option<&NewVersion>,
    now: i64,
) -> Result<(), ObjectError> {
    let meta = match v {
        Some(v) => to_json(&v.meta)?,
        None => "{}".to_string(),
    };
    let tags = match v {
        Some(v) => to_json(&v.tags)?,
        None => "[]".to_string(),
    };
    let checksum = v.and_then(|v| v.checksum.as_ref());
    let params = vals![
        bucket,
        key,
        version_id,
        delete_marker,
        v.map_or(0, |v| v.size as i64),
        v.map_or("", |v| v.etag.as_str()),
        now,
        meta,
        checksum.map(|(a, _)| a.name()),
        checksum.map(|(_, c)| c.as_str()),
        v.and_then(|v| v.parts_count),
        tags,
        v.and_then(|v| v.blob.as_deref()),
        v.filter(|v| !v.part_sizes.is_empty()).map(|v| serde_json::to_string(&v.part_sizes).unwrap_or_default()),
        v.and_then(|v| v.inline.as_deref()),
    ];
    db.exec(
        "INSERT INTO s3_versions (bucket, name, version_id, is_latest, delete_marker, size, etag, last_modified_ms, meta, \
         checksum_algorithm, checksum, parts_count, tags, blob, part_sizes, inline) \
         VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        &params,
    )
    .await?;
    Ok(())
}

/// Writes `v` as the new latest version of `key` (S3's versioning rules), checking
/// `conditions` first, and records `ObjectCreated:<event>`. `b` was read with
/// [`bucket_for_write`]. Returns the result and the blobs the write replaced (to remove
/// once committed).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn write_version(
    db: &mut impl Db,
    b: &BucketRow,
    key: &str,
    v: NewVersion,
    conditions: &PutConditions,
    event: &str,
    now: i64,
) -> Result<(PutResult, Vec<String>), ObjectError> {
    check_key(key)?;
    check_tags(&v.tags)?;
    let bucket = b.bucket.name.as_str();
    db.lock_keys(bucket, &[key]).await?;
    check_conditions(db, bucket, key, conditions).await?;
    let mut replaced = Vec::new();
    let version_id = match b.bucket.versioning {
        Versioning::Enabled => Some(new_version_id()),
        Versioning::Unversioned | Versioning::Suspended => {
            replaced.extend(remove_null_version(db, bucket, key).await?);
            None
        }
    };
    unset_latest(db, bucket, key).await?;
    insert_version(db, bucket, key, stored_version(version_id.as_deref()), false, Some(&v), now).await?;
    let change =
        Change { event: format!("ObjectCreated:{event}"), key, size: Some(v.size), etag: Some(&v.etag), version_id: version_id.as_deref() };
    notify(db, b, change, now).await?;
    Ok((PutResult { etag: v.etag, version_id, size: v.size, checksum: v.checksum, last_modified_ms: now }, replaced))
}

/// DeleteObject's rules (see [`crate::ObjectStore::delete_object`]). The caller holds the
/// key ([`Db::lock_keys`]). Returns the outcome and the blobs to remove once committed.
pub(crate) async fn delete_version(
    db: &mut impl Db,
    b: &BucketRow,
    key: &str,
    version_id: Option<&str>,
    now: i64,
) -> Result<(DeleteOutcome, Vec<String>), ObjectError> {
    let bucket = b.bucket.name.as_str();
    let mut removed = Vec::new();
    let (outcome, event) = match version_id {
        Some(v) => match version(db, bucket, key, v).await? {
            Some((seq, o)) => {
                db.exec("DELETE FROM s3_versions WHERE seq = ?1", &vals![seq]).await?;
                removed.extend(o.blob);
                if o.is_latest {
                    db.exec(
                        "UPDATE s3_versions SET is_latest = 1 WHERE seq = \
                         (SELECT seq FROM s3_versions WHERE bucket = ?1 AND name = ?2 ORDER BY seq DESC LIMIT 1)",
                        &vals![bucket, key],
                    )
                    .await?;
                }
                (DeleteOutcome { version_id: o.version_id, delete_marker: o.delete_marker }, "ObjectRemoved:Delete")
            }
            // Removing a null version that is not there is removing nothing.
            None if v == NULL_VERSION => (DeleteOutcome { version_id: None, delete_marker: false }, "ObjectRemoved:Delete"),
            None => return Err(ObjectError::NoSuchVersion),
        },
        None => match b.bucket.versioning {
            Versioning::Unversioned => {
                removed.extend(remove_null_version(db, bucket, key).await?);
                (DeleteOutcome { version_id: None, delete_marker: false }, "ObjectRemoved:Delete")
            }
            Versioning::Enabled => {
                let id = new_version_id();
                unset_latest(db, bucket, key).await?;
                insert_version(db, bucket, key, &id, true, None, now).await?;
                (DeleteOutcome { version_id: Some(id), delete_marker: true }, "ObjectRemoved:DeleteMarkerCreated")
            }
            Versioning::Suspended => {
                removed.extend(remove_null_version(db, bucket, key).await?);
                unset_latest(db, bucket, key).await?;
                insert_version(db, bucket, key, NULL_VERSION, true, None, now).await?;
                (DeleteOutcome { version_id: None, delete_marker: true }, "ObjectRemoved:DeleteMarkerCreated")
            }
        },
    };
    let change = Change { event: event.into(), key, size: None, etag: None, version_id: outcome.version_id.as_deref() };
    notify(db, b, change, now).await?;
    Ok((outcome, removed))
}

/// Replaces a version's tags and records `ObjectTagging:Put` / `:Delete`.
pub(crate) async fn put_tags(
    db: &mut impl Db,
    b: &BucketRow,
    key: &str,
    version_id: Option<&str>,
    tags: &[(String, String)],
    now: i64,
) -> Result<Option<String>, ObjectError> {
    db.lock_keys(&b.bucket.name, &[key]).await?;
    let o = resolve_object(db, &b.bucket.name, key, version_id).await?;
    check_tags(tags)?;
    db.exec(
        "UPDATE s3_versions SET tags = ?4 WHERE bucket = ?1 AND name = ?2 AND version_id = ?3",
        &vals![b.bucket.name.as_str(), key, stored_version(o.version_id.as_deref()), to_json(&tags)?],
    )
    .await?;
    let event = if tags.is_empty() { "ObjectTagging:Delete" } else { "ObjectTagging:Put" };
    let change = Change { event: event.into(), key, size: None, etag: Some(&o.etag), version_id: o.version_id.as_deref() };
    notify(db, b, change, now).await?;
    Ok(o.version_id)
}

pub(crate) async fn tags(
    db: &mut impl Db,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<Vec<(String, String)>, ObjectError> {
    let row = db
        .row(
            "SELECT tags FROM s3_versions WHERE bucket = ?1 AND name = ?2 AND version_id = ?3",
            &vals![bucket, key, stored_version(version_id)],
        )
        .await?
        .ok_or(ObjectError::NoSuchVersion)?;
    serde_json::from_str(&row.text(0)?).map_err(ObjectError::internal)
}

/// A small body kept in its version's row.
pub(crate) async fn inline_body(db: &mut impl Db, seq: i64) -> Result<Option<Vec<u8>>, ObjectError> {
    Ok(db.row("SELECT inline FROM s3_versions WHERE seq = ?1", &vals![seq]).await?.map(|r| r.opt_bytes(0)).transpose()?.flatten())
}

/// Whether any row names blob `id` (the clean-up of blobs no row names).
pub(crate) async fn blob_referenced(db: &mut impl Db, id: &str) -> Result<bool, ObjectError> {
    db.row("SELECT EXISTS (SELECT 1 FROM s3_versions WHERE blob = ?1) OR EXISTS (SELECT 1 FROM s3_parts WHERE blob = ?1)", &vals![id])
        .await?
        .map_or(Ok(false), |r| r.bool(0))
}

// ---- notifications ----------------------------------------------------------------------

/// A committed change, as its notifications describe it.
pub(crate) struct Change<'a> {
    /// `ObjectCreated:Put`, ...
    pub event: String,
    pub key: &'a str,
    pub size: Option<u64>,
    pub etag: Option<&'a str>,
    pub version_id: Option<&'a str>,
}

/// Records one notification per destination of `b`'s configuration that `change` matches,
/// in the change's transaction.
pub(crate) async fn notify(db: &mut impl Db, b: &BucketRow, change: Change<'_>, now: i64) -> Result<(), ObjectError> {
    let destinations: Vec<_> = b.notifications.matching(&change.event, change.key).collect();
    if destinations.is_empty() {
        return Ok(());
    }
    // Per key, every change of it is numbered after the last (its writer holds the key).
    let sql = if db.postgres() {
        "SELECT nextval('s3_sequencer')"
    } else {
        "INSERT INTO s3_counters (name, value) VALUES ('sequencer', 1) \
         ON CONFLICT (name) DO UPDATE SET value = s3_counters.value + 1 RETURNING value"
    };
    let counter = db.row(sql, &[]).await?.ok_or_else(|| ObjectError::internal("the sequencer's counter returned no row"))?.int(0)?;
    let sequencer = format!("{counter:016X}");
    for d in destinations {
        let params = vals![
            to_json(&d.kind)?,
            d.arn.as_str(),
            d.id.as_str(),
            change.event.as_str(),
            b.bucket.name.as_str(),
            change.key,
            change.size.map(|s| s as i64),
            change.etag,
            change.version_id,
            sequencer.as_str(),
            now,
        ];
        db.exec(
            "INSERT INTO s3_notifications (kind, destination_arn, configuration_id, event_name, bucket, name, size, etag, version_id, \
             sequencer, event_time_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            &params,
        )
        .await?;
    }
    Ok(())
}

const NOTIFICATION_COLUMNS: &str =
    "id, kind, destination_arn, configuration_id, event_name, bucket, name, size, etag, version_id, sequencer, event_time_ms";

/// Up to `max` notifications not yet acknowledged, oldest first. On PostgreSQL each is
/// leased to `holder` until `lease_until_ms`: its holder takes it again (its one delivery
/// loop retries what failed), others only once the lease lapsed (its node died before it
/// acknowledged it).
pub(crate) async fn take_notifications(
    db: &mut impl Db,
    max: usize,
    holder: &str,
    lease_ms: i64,
) -> Result<Vec<crate::notify::PendingNotification>, ObjectError> {
    let rows = if db.postgres() {
        // Leases on the database's clock, which every node shares.
        let sql = format!(
            "WITH now AS (SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms) \
             UPDATE s3_notifications SET holder = ?2, lease_until_ms = (SELECT ms FROM now) + ?3 WHERE id IN \
             (SELECT id FROM s3_notifications WHERE lease_until_ms < (SELECT ms FROM now) OR holder = ?2 \
              ORDER BY id LIMIT ?1 FOR UPDATE SKIP LOCKED) \
             RETURNING {NOTIFICATION_COLUMNS}"
        );
        let mut rows = db.rows(&sql, &vals![max as i64, holder, lease_ms]).await?;
        rows.sort_by_key(|r| r.int(0).unwrap_or_default());
        rows
    } else {
        db.rows(&format!("SELECT {NOTIFICATION_COLUMNS} FROM s3_notifications ORDER BY id LIMIT ?1"), &vals![max as i64]).await?
    };
    rows.iter()
        .map(|r| {
            Ok(crate::notify::PendingNotification {
                id: r.int(0)?,
                kind: serde_json::from_str(&r.text(1)?).map_err(ObjectError::internal)?,
                destination_arn: r.text(2)?,
                configuration_id: r.text(3)?,
                event_name: r.text(4)?,
                bucket: r.text(5)?,
                key: r.text(6)?,
                size: r.opt_int(7)?.map(|s| s as u64),
                etag: r.opt_text(8)?,
                version_id: r.opt_text(9)?,
                sequencer: r.text(10)?,
                event_time_ms: r.int(11)?,
            })
        })
        .collect()
}

pub(crate) async fn ack_notifications(db: &mut impl Db, ids: &[i64]) -> Result<(), ObjectError> {
    for id in ids {
        db.exec("DELETE FROM s3_notifications WHERE id = ?1", &vals![*id]).await?;
    }
    Ok(())
}

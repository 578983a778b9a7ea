//! `objects.db`: its schema and the statements every change shares (reading a bucket, a
//! version, writing or removing versions with S3's versioning rules, recording the
//! notifications a change owes), each run on the writer thread inside the change's own
//! transaction.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::checksum::ChecksumAlgorithm;
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
    ],
};

/// SQLite's failures as the store's.
pub(crate) trait Sql<T> {
    fn sql(self) -> Result<T, ObjectError>;
}

impl<T> Sql<T> for rusqlite::Result<T> {
    fn sql(self) -> Result<T, ObjectError> {
        self.map_err(|e| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => ObjectError::StorageFull,
            _ => ObjectError::Internal(e.to_string()),
        })
    }
}

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

fn bucket_from_row(r: &Row<'_>) -> rusqlite::Result<BucketRow> {
    let versioning: String = r.get(3)?;
    let notifications: Option<String> = r.get(4)?;
    Ok(BucketRow {
        bucket: Bucket { name: r.get(0)?, region: r.get(1)?, created_ms: r.get(2)?, versioning: versioning_from(&versioning) },
        notifications: notifications.and_then(|n| serde_json::from_str(&n).ok()).unwrap_or_default(),
    })
}

const BUCKET_COLUMNS: &str = "name, region, created_ms, versioning, notifications";

pub(crate) fn find_bucket(conn: &Connection, name: &str) -> Result<Option<BucketRow>, ObjectError> {
    let mut st = conn.prepare_cached(&format!("SELECT {BUCKET_COLUMNS} FROM buckets WHERE name = ?1")).sql()?;
    st.query_row([name], bucket_from_row).optional().sql()
}

/// The bucket, or [`ObjectError::NoSuchBucket`].
pub(crate) fn bucket(conn: &Connection, name: &str) -> Result<BucketRow, ObjectError> {
    find_bucket(conn, name)?.ok_or(ObjectError::NoSuchBucket)
}

pub(crate) fn all_buckets(conn: &Connection) -> Result<Vec<Bucket>, ObjectError> {
    let mut st = conn.prepare_cached(&format!("SELECT {BUCKET_COLUMNS} FROM buckets ORDER BY name")).sql()?;
    let rows = st.query_map([], bucket_from_row).sql()?;
    rows.map(|r| r.map(|b| b.bucket)).collect::<rusqlite::Result<_>>().sql()
}

pub(crate) fn insert_bucket(conn: &Connection, name: &str, region: &str, now: i64) -> Result<Bucket, ObjectError> {
    if find_bucket(conn, name)?.is_some() {
        return Err(ObjectError::BucketAlreadyOwnedByYou);
    }
    conn.execute("INSERT INTO buckets (name, region, created_ms) VALUES (?1, ?2, ?3)", params![name, region, now]).sql()?;
    Ok(Bucket { name: name.into(), region: region.into(), created_ms: now, versioning: Versioning::Unversioned })
}

pub(crate) fn delete_bucket(conn: &Connection, name: &str) -> Result<(), ObjectError> {
    bucket(conn, name)?;
    let busy: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM versions WHERE bucket = ?1) OR EXISTS (SELECT 1 FROM uploads WHERE bucket = ?1)",
            [name],
            |r| r.get(0),
        )
        .sql()?;
    if busy {
        return Err(ObjectError::BucketNotEmpty);
    }
    conn.execute("DELETE FROM bucket_settings WHERE bucket = ?1", [name]).sql()?;
    conn.execute("DELETE FROM buckets WHERE name = ?1", [name]).sql()?;
    Ok(())
}

pub(crate) fn set_versioning(conn: &Connection, name: &str, state: Versioning) -> Result<(), ObjectError> {
    let b = bucket(conn, name)?;
    if state == Versioning::Unversioned {
        if b.bucket.versioning == Versioning::Unversioned {
            return Ok(());
        }
        return Err(ObjectError::InvalidArgument("A versioned bucket cannot become unversioned; suspend its versioning".into()));
    }
    conn.execute("UPDATE buckets SET versioning = ?2 WHERE name = ?1", params![name, versioning_name(state)]).sql()?;
    Ok(())
}

pub(crate) fn set_notifications(conn: &Connection, name: &str, config: &NotificationConfig) -> Result<(), ObjectError> {
    bucket(conn, name)?;
    let value = if config.destinations.is_empty() && !config.event_bridge { None } else { Some(to_json(config)?) };
    conn.execute("UPDATE buckets SET notifications = ?2 WHERE name = ?1", params![name, value]).sql()?;
    Ok(())
}

// ---- versions ---------------------------------------------------------------------------

pub(crate) const VERSION_COLUMNS: &str = "seq, bucket, name, version_id, is_latest, delete_marker, size, etag, last_modified_ms, meta, \
                                          checksum_algorithm, checksum, parts_count, tags, blob, part_sizes";

/// A version row (selected with [`VERSION_COLUMNS`]) and its sequence number.
pub(crate) fn version_from_row(r: &Row<'_>) -> rusqlite::Result<(i64, Object)> {
    let version_id: String = r.get(3)?;
    let meta: String = r.get(9)?;
    let algorithm: Option<String> = r.get(10)?;
    let checksum: Option<String> = r.get(11)?;
    let tags: String = r.get(13)?;
    let tags: Vec<(String, String)> = serde_json::from_str(&tags).unwrap_or_default();
    Ok((
        r.get(0)?,
        Object {
            bucket: r.get(1)?,
            key: r.get(2)?,
            version_id: api_version(version_id),
            is_latest: r.get(4)?,
            delete_marker: r.get(5)?,
            size: r.get::<_, i64>(6)? as u64,
            etag: r.get(7)?,
            last_modified_ms: r.get(8)?,
            meta: serde_json::from_str(&meta).unwrap_or_default(),
            checksum: algorithm_from(algorithm).zip(checksum),
            parts_count: r.get::<_, Option<i64>>(12)?.map(|n| n as u32),
            part_sizes: r.get::<_, Option<String>>(15)?.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default(),
            tag_count: tags.len(),
            blob: r.get(14)?,
            seq: r.get(0)?,
            inline: None,
        },
    ))
}

pub(crate) fn latest(conn: &Connection, bucket: &str, key: &str) -> Result<Option<(i64, Object)>, ObjectError> {
    let mut st =
        conn.prepare_cached(&format!("SELECT {VERSION_COLUMNS} FROM versions WHERE bucket = ?1 AND name = ?2 AND is_latest = 1")).sql()?;
    st.query_row([bucket, key], version_from_row).optional().sql()
}

pub(crate) fn version(conn: &Connection, bucket: &str, key: &str, version_id: &str) -> Result<Option<(i64, Object)>, ObjectError> {
    let mut st = conn
        .prepare_cached(&format!("SELECT {VERSION_COLUMNS} FROM versions WHERE bucket = ?1 AND name = ?2 AND version_id = ?3"))
        .sql()?;
    st.query_row([bucket, key, version_id], version_from_row).optional().sql()
}

/// The version a read names: the latest (NoSuchKey when missing or a delete marker) or the
/// one with `version_id` (NoSuchVersion when unknown; a delete marker as is).
pub(crate) fn resolve(conn: &Connection, bucket: &str, key: &str, version_id: Option<&str>) -> Result<Object, ObjectError> {
    match version_id {
        None => match latest(conn, bucket, key)? {
            None => Err(ObjectError::NoSuchKey { delete_marker: None }),
            Some((_, o)) if o.delete_marker => Err(ObjectError::NoSuchKey { delete_marker: Some(o.version_id) }),
            Some((_, o)) => Ok(o),
        },
        Some(v) => version(conn, bucket, key, v)?.map(|(_, o)| o).ok_or(ObjectError::NoSuchVersion),
    }
}

/// Like [`resolve`], refusing a delete marker named by version id (tagging calls).
pub(crate) fn resolve_object(conn: &Connection, bucket: &str, key: &str, version_id: Option<&str>) -> Result<Object, ObjectError> {
    let o = resolve(conn, bucket, key, version_id)?;
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
    /// The body's file, or (small bodies) the body itself, kept in the row.
    pub blob: Option<String>,
    pub inline: Option<Vec<u8>>,
}

pub(crate) fn check_conditions(conn: &Connection, bucket: &str, key: &str, conditions: &PutConditions) -> Result<(), ObjectError> {
    if !conditions.if_none_match_any && conditions.if_match.is_none() {
        return Ok(());
    }
    let current = latest(conn, bucket, key)?.map(|(_, o)| o).filter(|o| !o.delete_marker);
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
fn remove_null_version(conn: &Connection, bucket: &str, key: &str) -> Result<Option<String>, ObjectError> {
    let mut st =
        conn.prepare_cached("DELETE FROM versions WHERE bucket = ?1 AND name = ?2 AND version_id = 'null' RETURNING blob").sql()?;
    Ok(st.query_row([bucket, key], |r| r.get::<_, Option<String>>(0)).optional().sql()?.flatten())
}

fn unset_latest(conn: &Connection, bucket: &str, key: &str) -> Result<(), ObjectError> {
    conn.prepare_cached("UPDATE versions SET is_latest = 0 WHERE bucket = ?1 AND name = ?2 AND is_latest = 1")
        .sql()?
        .execute([bucket, key])
        .sql()?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn insert_version(
    conn: &Connection,
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
    conn.prepare_cached(
        "INSERT INTO versions (bucket, name, version_id, is_latest, delete_marker, size, etag, last_modified_ms, meta, \
         checksum_algorithm, checksum, parts_count, tags, blob, part_sizes, inline) VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )
    .sql()?
    .execute(params![
        bucket,
        key,
        version_id,
        delete_marker,
        v.map_or(0, |v| v.size as i64),
        v.map_or("", |v| v.etag.as_str()),
        now,
        meta,
        v.and_then(|v| v.checksum.as_ref()).map(|(a, _)| a.name()),
        v.and_then(|v| v.checksum.as_ref()).map(|(_, c)| c.as_str()),
        v.and_then(|v| v.parts_count),
        tags,
        v.and_then(|v| v.blob.as_deref()),
        v.filter(|v| !v.part_sizes.is_empty()).map(|v| serde_json::to_string(&v.part_sizes).unwrap_or_default()),
        v.and_then(|v| v.inline.as_deref()),
    ])
    .sql()?;
    Ok(())
}

/// Writes `v` as the new latest version of `key` (S3's versioning rules), checking
/// `conditions` first, and records `ObjectCreated:<event>`. Returns the result and the blobs
/// the write replaced (to remove once committed).
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_version(
    conn: &Connection,
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
    check_conditions(conn, bucket, key, conditions)?;
    let mut replaced = Vec::new();
    let version_id = match b.bucket.versioning {
        Versioning::Enabled => Some(new_version_id()),
        Versioning::Unversioned | Versioning::Suspended => {
            replaced.extend(remove_null_version(conn, bucket, key)?);
            None
        }
    };
    unset_latest(conn, bucket, key)?;
    insert_version(conn, bucket, key, stored_version(version_id.as_deref()), false, Some(&v), now)?;
    notify(
        conn,
        b,
        Change { event: format!("ObjectCreated:{event}"), key, size: Some(v.size), etag: Some(&v.etag), version_id: version_id.as_deref() },
        now,
    )?;
    Ok((PutResult { etag: v.etag, version_id, size: v.size, checksum: v.checksum, last_modified_ms: now }, replaced))
}

/// DeleteObject's rules (see [`crate::ObjectStore::delete_object`]). Returns the outcome and
/// the blobs to remove once committed.
pub(crate) fn delete_version(
    conn: &Connection,
    b: &BucketRow,
    key: &str,
    version_id: Option<&str>,
    now: i64,
) -> Result<(DeleteOutcome, Vec<String>), ObjectError> {
    let bucket = b.bucket.name.as_str();
    let mut removed = Vec::new();
    let (outcome, event) = match version_id {
        Some(v) => match version(conn, bucket, key, v)? {
            Some((seq, o)) => {
                conn.prepare_cached("DELETE FROM versions WHERE seq = ?1").sql()?.execute([seq]).sql()?;
                removed.extend(o.blob);
                if o.is_latest {
                    conn.prepare_cached(
                        "UPDATE versions SET is_latest = 1 WHERE seq = \
                         (SELECT seq FROM versions WHERE bucket = ?1 AND name = ?2 ORDER BY seq DESC LIMIT 1)",
                    )
                    .sql()?
                    .execute([bucket, key])
                    .sql()?;
                }
                (DeleteOutcome { version_id: o.version_id, delete_marker: o.delete_marker }, "ObjectRemoved:Delete")
            }
            // Removing a null version that is not there is removing nothing.
            None if v == NULL_VERSION => (DeleteOutcome { version_id: None, delete_marker: false }, "ObjectRemoved:Delete"),
            None => return Err(ObjectError::NoSuchVersion),
        },
        None => match b.bucket.versioning {
            Versioning::Unversioned => {
                removed.extend(remove_null_version(conn, bucket, key)?);
                (DeleteOutcome { version_id: None, delete_marker: false }, "ObjectRemoved:Delete")
            }
            Versioning::Enabled => {
                let id = new_version_id();
                unset_latest(conn, bucket, key)?;
                insert_version(conn, bucket, key, &id, true, None, now)?;
                (DeleteOutcome { version_id: Some(id), delete_marker: true }, "ObjectRemoved:DeleteMarkerCreated")
            }
            Versioning::Suspended => {
                removed.extend(remove_null_version(conn, bucket, key)?);
                unset_latest(conn, bucket, key)?;
                insert_version(conn, bucket, key, NULL_VERSION, true, None, now)?;
                (DeleteOutcome { version_id: None, delete_marker: true }, "ObjectRemoved:DeleteMarkerCreated")
            }
        },
    };
    notify(conn, b, Change { event: event.into(), key, size: None, etag: None, version_id: outcome.version_id.as_deref() }, now)?;
    Ok((outcome, removed))
}

/// Replaces a version's tags and records `ObjectTagging:Put` / `:Delete`.
pub(crate) fn put_tags(
    conn: &Connection,
    b: &BucketRow,
    key: &str,
    version_id: Option<&str>,
    tags: &[(String, String)],
    now: i64,
) -> Result<Option<String>, ObjectError> {
    let o = resolve_object(conn, &b.bucket.name, key, version_id)?;
    check_tags(tags)?;
    conn.prepare_cached("UPDATE versions SET tags = ?4 WHERE bucket = ?1 AND name = ?2 AND version_id = ?3")
        .sql()?
        .execute(params![b.bucket.name, key, stored_version(o.version_id.as_deref()), to_json(&tags)?])
        .sql()?;
    let event = if tags.is_empty() { "ObjectTagging:Delete" } else { "ObjectTagging:Put" };
    notify(conn, b, Change { event: event.into(), key, size: None, etag: Some(&o.etag), version_id: o.version_id.as_deref() }, now)?;
    Ok(o.version_id)
}

pub(crate) fn tags(conn: &Connection, bucket: &str, key: &str, version_id: Option<&str>) -> Result<Vec<(String, String)>, ObjectError> {
    let tags: String = conn
        .prepare_cached("SELECT tags FROM versions WHERE bucket = ?1 AND name = ?2 AND version_id = ?3")
        .sql()?
        .query_row([bucket, key, stored_version(version_id)], |r| r.get(0))
        .sql()?;
    serde_json::from_str(&tags).map_err(ObjectError::internal)
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
pub(crate) fn notify(conn: &Connection, b: &BucketRow, change: Change<'_>, now: i64) -> Result<(), ObjectError> {
    let mut destinations = b.notifications.matching(&change.event, change.key).peekable();
    if destinations.peek().is_none() {
        return Ok(());
    }
    let counter: i64 = conn
        .prepare_cached(
            "INSERT INTO counters (name, value) VALUES ('sequencer', 1) \
             ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value",
        )
        .sql()?
        .query_row([], |r| r.get(0))
        .sql()?;
    let sequencer = format!("{counter:016X}");
    let mut st = conn
        .prepare_cached(
            "INSERT INTO notifications (kind, destination_arn, configuration_id, event_name, bucket, name, size, etag, version_id, \
             sequencer, event_time_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )
        .sql()?;
    for d in destinations {
        st.execute(params![
            to_json(&d.kind)?,
            d.arn,
            d.id,
            change.event,
            b.bucket.name,
            change.key,
            change.size.map(|s| s as i64),
            change.etag,
            change.version_id,
            sequencer,
            now,
        ])
        .sql()?;
    }
    Ok(())
}

pub(crate) fn take_notifications(conn: &Connection, max: usize) -> Result<Vec<crate::notify::PendingNotification>, ObjectError> {
    let mut st = conn
        .prepare_cached(
            "SELECT id, kind, destination_arn, configuration_id, event_name, bucket, name, size, etag, version_id, sequencer, \
             event_time_ms FROM notifications ORDER BY id LIMIT ?1",
        )
        .sql()?;
    let rows = st
        .query_map([max as i64], |r| {
            let kind: String = r.get(1)?;
            let n = crate::notify::PendingNotification {
                id: r.get(0)?,
                kind: crate::notify::DestinationKind::Lambda,
                destination_arn: r.get(2)?,
                configuration_id: r.get(3)?,
                event_name: r.get(4)?,
                bucket: r.get(5)?,
                key: r.get(6)?,
                size: r.get::<_, Option<i64>>(7)?.map(|s| s as u64),
                etag: r.get(8)?,
                version_id: r.get(9)?,
                sequencer: r.get(10)?,
                event_time_ms: r.get(11)?,
            };
            Ok((kind, n))
        })
        .sql()?;
    let mut out = Vec::new();
    for row in rows {
        let (kind, mut n) = row.sql()?;
        n.kind = serde_json::from_str(&kind).map_err(ObjectError::internal)?;
        out.push(n);
    }
    Ok(out)
}

pub(crate) fn ack_notifications(conn: &Connection, ids: &[i64]) -> Result<(), ObjectError> {
    let mut st = conn.prepare_cached("DELETE FROM notifications WHERE id = ?1").sql()?;
    for id in ids {
        st.execute([id]).sql()?;
    }
    Ok(())
}

/// A small body kept in its version's row.
pub(crate) fn inline_body(conn: &Connection, seq: i64) -> Result<Option<Vec<u8>>, ObjectError> {
    conn.prepare_cached("SELECT inline FROM versions WHERE seq = ?1")
        .sql()?
        .query_row([seq], |r| r.get::<_, Option<Vec<u8>>>(0))
        .optional()
        .sql()
        .map(Option::flatten)
}

/// Whether any row names blob `id` (the clean-up at open).
pub(crate) fn blob_referenced(conn: &Connection, id: &str) -> Result<bool, ObjectError> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM versions WHERE blob = ?1) OR EXISTS (SELECT 1 FROM parts WHERE blob = ?1)")
        .sql()?
        .query_row([id], |r| r.get(0))
        .sql()
}

//! The three listings (objects, versions, multipart uploads) share one walk: rows in key order
//! from a cursor, rolled up into common prefixes under a delimiter, each prefix counted once
//! and jumped over with a range seek (never a scan of the keys under it), with an exact
//! `truncated`.

use crate::db::{vals, Db, Row, Val};
use crate::error::ObjectError;
use crate::sql;
use crate::store::{ListPage, ListQuery, Object, UploadInfo, UploadsPage, UploadsQuery, VersionPage, VersionQuery};

/// Where a walk goes on from, in key order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cursor {
    /// Keys at or after these bytes (possibly not UTF-8: the bound past a prefix).
    AtLeast(Vec<u8>),
    /// Keys after this one.
    After(String),
    /// The rows of this key after the row with this sequence number, then later keys.
    AfterRow(String, i64),
}

impl Cursor {
    fn key_bytes(&self) -> &[u8] {
        match self {
            Cursor::AtLeast(b) => b,
            Cursor::After(k) | Cursor::AfterRow(k, _) => k.as_bytes(),
        }
    }

    /// The later of two starts.
    fn max(self, other: Cursor) -> Cursor {
        match self.key_bytes().cmp(other.key_bytes()) {
            std::cmp::Ordering::Greater => self,
            std::cmp::Ordering::Less => other,
            // Same bytes: an exclusive start is the later one.
            std::cmp::Ordering::Equal => match self {
                Cursor::AtLeast(_) => other,
                _ => self,
            },
        }
    }
}

/// The common prefix `key` rolls up into: `prefix` + its text up to and including the first
/// `delimiter` after the prefix.
pub(crate) fn common_prefix(key: &str, prefix: &str, delimiter: Option<&str>) -> Option<String> {
    let delimiter = delimiter.filter(|d| !d.is_empty())?;
    let rest = key.strip_prefix(prefix)?;
    let end = rest.find(delimiter)? + delimiter.len();
    Some(format!("{prefix}{}", &rest[..end]))
}

/// The smallest byte string greater than every string starting with `prefix` (None: there
/// is none, `prefix` is empty or all 0xFF).
pub(crate) fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut s = prefix.to_vec();
    while let Some(last) = s.pop() {
        if last < 0xFF {
            s.push(last + 1);
            return Some(s);
        }
    }
    None
}

/// Where a listing starts: at `prefix`, after `marker` (past all of the marker's common
/// prefix when it rolls up into one), or after `row` of the marker's key.
fn start(prefix: &str, delimiter: Option<&str>, marker: Option<&str>, row: Option<i64>) -> Option<Cursor> {
    let mut cursor = Cursor::AtLeast(prefix.as_bytes().to_vec());
    if let Some(marker) = marker {
        let after = match common_prefix(marker, prefix, delimiter) {
            Some(cp) => Cursor::AtLeast(successor(cp.as_bytes())?),
            None => match row {
                Some(seq) => Cursor::AfterRow(marker.to_string(), seq),
                None => Cursor::After(marker.to_string()),
            },
        };
        cursor = cursor.max(after);
    }
    Some(cursor)
}

pub(crate) enum Entry<T> {
    Item(T),
    Prefix(String),
}

/// Where a walk's rows come from: up to `limit` rows (key, sequence number, item) from
/// `cursor`, in listing order.
#[allow(async_fn_in_trait)]
pub(crate) trait Fetch<T> {
    async fn fetch(&mut self, cursor: &Cursor, limit: usize) -> Result<Vec<(String, i64, T)>, ObjectError>;
}

/// Up to `max` entries from `cursor`: the rows `fetch` returns, under `prefix`, rolled up
/// by `delimiter`. Returns the entries and whether more exist.
pub(crate) async fn walk<T>(
    prefix: &str,
    delimiter: Option<&str>,
    max: usize,
    cursor: Option<Cursor>,
    fetch: &mut impl Fetch<T>,
) -> Result<(Vec<Entry<T>>, bool), ObjectError> {
    let mut out = Vec::new();
    let Some(mut cursor) = cursor else { return Ok((out, false)) };
    if max == 0 {
        return Ok((out, false));
    }
    'fetch: loop {
        let want = max - out.len() + 1;
        let rows = fetch.fetch(&cursor, want).await?;
        let fetched = rows.len();
        for (key, seq, item) in rows {
            if !key.starts_with(prefix) {
                return Ok((out, false));
            }
            if out.len() == max {
                return Ok((out, true));
            }
            if let Some(cp) = common_prefix(&key, prefix, delimiter) {
                let next = successor(cp.as_bytes());
                out.push(Entry::Prefix(cp));
                match next {
                    Some(next) => {
                        cursor = Cursor::AtLeast(next);
                        continue 'fetch;
                    }
                    None => return Ok((out, false)),
                }
            }
            out.push(Entry::Item(item));
            cursor = Cursor::AfterRow(key, seq);
        }
        if fetched < want {
            return Ok((out, false));
        }
    }
}

/// A listed row as (key, sequence number, item).
type MapRow<T> = fn(&Row) -> Result<(String, i64, T), ObjectError>;

/// One listing's statements over a table of the database.
struct Listing<'d, D, T> {
    db: &'d mut D,
    bucket: String,
    /// The rows of one key after a sequence number (`?1` bucket, `?2` key, `?3` sequence
    /// number, `?4` limit); None where a key has one row.
    same_key: Option<String>,
    /// The rows of keys from a bound, inclusive and exclusive (`?1` bucket, `?2` bound,
    /// `?3` limit).
    from: [String; 2],
    map: MapRow<T>,
}

impl<'d, D: Db, T> Listing<'d, D, T> {
    /// `select` (the columns and table) `WHERE bucket = ?1 AND name <op> <bound>`, then
    /// `rest` (more conditions, the order and the limit). A bound may end inside a UTF-8
    /// character: SQLite compares it as text of those bytes, PostgreSQL keeps keys as bytes.
    fn new(db: &'d mut D, bucket: &str, select: &str, rest: &str, same_key: Option<String>, map: MapRow<T>) -> Self {
        let bound = if db.postgres() { "?2" } else { "CAST(?2 AS TEXT)" };
        let from = [">=", ">"].map(|op| format!("{select} WHERE bucket = ?1 AND name {op} {bound}{rest}"));
        Listing { db, bucket: bucket.to_string(), same_key, from, map }
    }

    async fn from(&mut self, bound: &[u8], inclusive: bool, limit: usize) -> Result<Vec<(String, i64, T)>, ObjectError> {
        let sql = &self.from[usize::from(!inclusive)];
        let rows = self.db.rows(sql, &[Val::from(self.bucket.as_str()), Val::Bytes(bound.to_vec()), Val::Int(limit as i64)]).await?;
        rows.iter().map(self.map).collect()
    }
}

impl<D: Db, T> Fetch<T> for Listing<'_, D, T> {
    async fn fetch(&mut self, cursor: &Cursor, limit: usize) -> Result<Vec<(String, i64, T)>, ObjectError> {
        match cursor {
            Cursor::AtLeast(b) => self.from(b, true, limit).await,
            Cursor::After(k) => self.from(k.as_bytes(), false, limit).await,
            Cursor::AfterRow(k, seq) => {
                let mut rows = Vec::new();
                if let Some(sql) = &self.same_key {
                    let params = vals![self.bucket.as_str(), k.as_str(), *seq, limit as i64];
                    for r in self.db.rows(sql, &params).await? {
                        rows.push((self.map)(&r)?);
                    }
                }
                if rows.len() < limit {
                    rows.extend(self.from(k.as_bytes(), false, limit - rows.len()).await?);
                }
                Ok(rows)
            }
        }
    }
}

fn version_row(r: &Row) -> Result<(String, i64, Object), ObjectError> {
    let (seq, o) = sql::version_from_row(r)?;
    Ok((o.key.clone(), seq, o))
}

pub(crate) async fn list_objects(db: &mut impl Db, bucket: &str, q: &ListQuery) -> Result<ListPage, ObjectError> {
    sql::bucket(db, bucket).await?;
    let delimiter = q.delimiter.as_deref();
    let cols = sql::VERSION_COLUMNS;
    let select = format!("SELECT {cols} FROM s3_versions");
    // One row per key: nothing more of the same key.
    let mut listing =
        Listing::new(db, bucket, &select, " AND is_latest = 1 AND delete_marker = 0 ORDER BY name LIMIT ?3", None, version_row);
    let (entries, truncated) =
        walk(&q.prefix, delimiter, q.max_keys, start(&q.prefix, delimiter, q.after.as_deref(), None), &mut listing).await?;
    let mut page = ListPage { truncated, ..ListPage::default() };
    for e in entries {
        match e {
            Entry::Item(o) => {
                page.next_after = Some(o.key.clone());
                page.objects.push(o);
            }
            Entry::Prefix(p) => {
                page.next_after = Some(p.clone());
                page.common_prefixes.push(p);
            }
        }
    }
    if !truncated {
        page.next_after = None;
    }
    Ok(page)
}

pub(crate) async fn list_versions(db: &mut impl Db, bucket: &str, q: &VersionQuery) -> Result<VersionPage, ObjectError> {
    sql::bucket(db, bucket).await?;
    let delimiter = q.delimiter.as_deref();
    // The version id marker names a row of the key marker; one since removed starts after the key.
    let row = match (&q.key_marker, &q.version_id_marker) {
        (Some(k), Some(v)) => sql::version(db, bucket, k, v).await?.map(|(seq, _)| seq),
        _ => None,
    };
    let cols = sql::VERSION_COLUMNS;
    let select = format!("SELECT {cols} FROM s3_versions");
    let same_key = format!("{select} WHERE bucket = ?1 AND name = ?2 AND seq < ?3 ORDER BY seq DESC LIMIT ?4");
    let mut listing = Listing::new(db, bucket, &select, " ORDER BY name, seq DESC LIMIT ?3", Some(same_key), version_row);
    let (entries, truncated) =
        walk(&q.prefix, delimiter, q.max_keys, start(&q.prefix, delimiter, q.key_marker.as_deref(), row), &mut listing).await?;
    let mut page = VersionPage { truncated, ..VersionPage::default() };
    for e in entries {
        match e {
            Entry::Item(o) => {
                page.next_key_marker = Some(o.key.clone());
                page.next_version_id_marker = Some(sql::stored_version(o.version_id.as_deref()).to_string());
                page.versions.push(o);
            }
            Entry::Prefix(p) => {
                page.next_key_marker = Some(p.clone());
                page.next_version_id_marker = None;
                page.common_prefixes.push(p);
            }
        }
    }
    if !truncated {
        page.next_key_marker = None;
        page.next_version_id_marker = None;
    }
    Ok(page)
}

pub(crate) const UPLOAD_COLUMNS: &str = "seq, upload_id, bucket, name, initiated_ms, meta, checksum_algorithm";

pub(crate) fn upload_row(r: &Row) -> Result<(String, i64, UploadInfo), ObjectError> {
    let info = UploadInfo {
        upload_id: r.text(1)?,
        bucket: r.text(2)?,
        key: r.text(3)?,
        initiated_ms: r.int(4)?,
        meta: serde_json::from_str(&r.text(5)?).unwrap_or_default(),
        checksum_algorithm: sql::algorithm_from(r.opt_text(6)?),
    };
    Ok((info.key.clone(), r.int(0)?, info))
}

pub(crate) async fn list_uploads(db: &mut impl Db, bucket: &str, q: &UploadsQuery) -> Result<UploadsPage, ObjectError> {
    sql::bucket(db, bucket).await?;
    let delimiter = q.delimiter.as_deref();
    let row = match (&q.key_marker, &q.upload_id_marker) {
        (Some(k), Some(u)) => db
            .row("SELECT seq FROM s3_uploads WHERE bucket = ?1 AND name = ?2 AND upload_id = ?3", &vals![bucket, k.as_str(), u.as_str()])
            .await?
            .map(|r| r.int(0))
            .transpose()?,
        _ => None,
    };
    let select = format!("SELECT {UPLOAD_COLUMNS} FROM s3_uploads");
    let same_key = format!("{select} WHERE bucket = ?1 AND name = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4");
    let mut listing = Listing::new(db, bucket, &select, " ORDER BY name, seq LIMIT ?3", Some(same_key), upload_row);
    let (entries, truncated) =
        walk(&q.prefix, delimiter, q.max_uploads, start(&q.prefix, delimiter, q.key_marker.as_deref(), row), &mut listing).await?;
    let mut page = UploadsPage { truncated, ..UploadsPage::default() };
    for e in entries {
        match e {
            Entry::Item(u) => {
                page.next_key_marker = Some(u.key.clone());
                page.next_upload_id_marker = Some(u.upload_id.clone());
                page.uploads.push(u);
            }
            Entry::Prefix(p) => {
                page.next_key_marker = Some(p.clone());
                page.next_upload_id_marker = None;
                page.common_prefixes.push(p);
            }
        }
    }
    if !truncated {
        page.next_key_marker = None;
        page.next_upload_id_marker = None;
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_prefixes() {
        let cases: &[(&str, &str, Option<&str>, Option<&str>)] = &[
            ("a/b/c", "", Some("/"), Some("a/")),
            ("a/b/c", "a/", Some("/"), Some("a/b/")),
            ("a/b/c", "a/b/", Some("/"), None),
            ("a//b", "a/", Some("/"), Some("a//")),
            ("abc", "", None, None),
            ("abc", "", Some(""), None),
            ("x--y--z", "", Some("--"), Some("x--")),
            ("b/c", "a", Some("/"), None),
            ("é/ü", "", Some("/"), Some("é/")),
        ];
        for (key, prefix, delimiter, want) in cases {
            assert_eq!(common_prefix(key, prefix, *delimiter).as_deref(), *want, "{key} {prefix} {delimiter:?}");
        }
    }

    #[test]
    fn successors() {
        assert_eq!(successor(b"a/"), Some(b"a0".to_vec()));
        assert_eq!(successor(b"a\xFF"), Some(b"b".to_vec()));
        assert_eq!(successor(b"\xFF\xFF"), None);
        assert_eq!(successor(b""), None);
    }

    #[test]
    fn starts() {
        let s = |p: &str, d: Option<&str>, m: Option<&str>, r: Option<i64>| start(p, d, m, r);
        assert_eq!(s("p/", None, None, None), Some(Cursor::AtLeast(b"p/".to_vec())));
        // A marker before the prefix does not move the start.
        assert_eq!(s("p/", None, Some("a"), None), Some(Cursor::AtLeast(b"p/".to_vec())));
        assert_eq!(s("p/", None, Some("p/"), None), Some(Cursor::After("p/".into())));
        assert_eq!(s("", None, Some("k"), Some(3)), Some(Cursor::AfterRow("k".into(), 3)));
        // A marker inside a common prefix starts past the whole prefix.
        assert_eq!(s("", Some("/"), Some("a/"), None), Some(Cursor::AtLeast(b"a0".to_vec())));
        assert_eq!(s("", Some("/"), Some("a/b"), Some(1)), Some(Cursor::AtLeast(b"a0".to_vec())));
    }
}

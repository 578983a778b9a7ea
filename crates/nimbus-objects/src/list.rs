//! The three listings (objects, versions, multipart uploads) share one walk: rows in key order
//! from a cursor, rolled up into common prefixes under a delimiter, each prefix counted once
//! and jumped over with a range seek (never a scan of the keys under it), with an exact
//! `truncated`.

use rusqlite::{params, Connection};

use crate::error::ObjectError;
use crate::sql::{self, Sql};
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

/// Up to `max` entries from `cursor`: the rows `fetch` returns (key, sequence number, item;
/// at most the limit asked, in listing order from the cursor), under `prefix`, rolled up
/// by `delimiter`. Returns the entries and whether more exist.
pub(crate) fn walk<T>(
    prefix: &str,
    delimiter: Option<&str>,
    max: usize,
    cursor: Option<Cursor>,
    mut fetch: impl FnMut(&Cursor, usize) -> Result<Vec<(String, i64, T)>, ObjectError>,
) -> Result<(Vec<Entry<T>>, bool), ObjectError> {
    let mut out = Vec::new();
    let Some(mut cursor) = cursor else { return Ok((out, false)) };
    if max == 0 {
        return Ok((out, false));
    }
    'fetch: loop {
        let want = max - out.len() + 1;
        let rows = fetch(&cursor, want)?;
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

/// Rows from `cursor`: `same_key` (the rows of one key after a row) then `from` (rows of keys
/// at or after bytes, inclusive or not), each a statement of the listing's own.
fn fetch_rows<T>(
    cursor: &Cursor,
    limit: usize,
    same_key: impl FnOnce(&str, i64, usize) -> Result<Vec<(String, i64, T)>, ObjectError>,
    mut from: impl FnMut(&[u8], bool, usize) -> Result<Vec<(String, i64, T)>, ObjectError>,
) -> Result<Vec<(String, i64, T)>, ObjectError> {
    match cursor {
        Cursor::AtLeast(b) => from(b, true, limit),
        Cursor::After(k) => from(k.as_bytes(), false, limit),
        Cursor::AfterRow(k, seq) => {
            let mut rows = same_key(k, *seq, limit)?;
            if rows.len() < limit {
                rows.extend(from(k.as_bytes(), false, limit - rows.len())?);
            }
            Ok(rows)
        }
    }
}

fn query<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<(String, i64, T)>,
) -> Result<Vec<(String, i64, T)>, ObjectError> {
    let mut st = conn.prepare_cached(sql).sql()?;
    let rows = st.query_map(params, map).sql()?;
    rows.collect::<rusqlite::Result<_>>().sql()
}

fn version_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, i64, Object)> {
    let (seq, o) = sql::version_from_row(r)?;
    Ok((o.key.clone(), seq, o))
}

pub(crate) fn list_objects(conn: &Connection, bucket: &str, q: &ListQuery) -> Result<ListPage, ObjectError> {
    sql::bucket(conn, bucket)?;
    let delimiter = q.delimiter.as_deref();
    let cols = sql::VERSION_COLUMNS;
    let (entries, truncated) =
        walk(&q.prefix, delimiter, q.max_keys, start(&q.prefix, delimiter, q.after.as_deref(), None), |c, limit| {
            let from = |bound: &[u8], inclusive: bool, limit: usize| {
                let op = if inclusive { ">=" } else { ">" };
                query(
                    conn,
                    &format!(
                    "SELECT {cols} FROM versions WHERE bucket = ?1 AND name {op} CAST(?2 AS TEXT) AND is_latest = 1 AND delete_marker = 0 \
                     ORDER BY name LIMIT ?3"
                ),
                    params![bucket, bound, limit as i64],
                    version_row,
                )
            };
            // One row per key: nothing more of the same key.
            fetch_rows(c, limit, |_, _, _| Ok(Vec::new()), from)
        })?;
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

pub(crate) fn list_versions(conn: &Connection, bucket: &str, q: &VersionQuery) -> Result<VersionPage, ObjectError> {
    sql::bucket(conn, bucket)?;
    let delimiter = q.delimiter.as_deref();
    // The version id marker names a row of the key marker; one since removed starts after the key.
    let row = match (&q.key_marker, &q.version_id_marker) {
        (Some(k), Some(v)) => sql::version(conn, bucket, k, v)?.map(|(seq, _)| seq),
        _ => None,
    };
    let cols = sql::VERSION_COLUMNS;
    let (entries, truncated) =
        walk(&q.prefix, delimiter, q.max_keys, start(&q.prefix, delimiter, q.key_marker.as_deref(), row), |c, limit| {
            let same_key = |key: &str, seq: i64, limit: usize| {
                query(
                    conn,
                    &format!("SELECT {cols} FROM versions WHERE bucket = ?1 AND name = ?2 AND seq < ?3 ORDER BY seq DESC LIMIT ?4"),
                    params![bucket, key, seq, limit as i64],
                    version_row,
                )
            };
            let from = |bound: &[u8], inclusive: bool, limit: usize| {
                let op = if inclusive { ">=" } else { ">" };
                query(
                    conn,
                    &format!(
                        "SELECT {cols} FROM versions WHERE bucket = ?1 AND name {op} CAST(?2 AS TEXT) ORDER BY name, seq DESC LIMIT ?3"
                    ),
                    params![bucket, bound, limit as i64],
                    version_row,
                )
            };
            fetch_rows(c, limit, same_key, from)
        })?;
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

pub(crate) fn upload_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, i64, UploadInfo)> {
    let meta: String = r.get(5)?;
    let info = UploadInfo {
        upload_id: r.get(1)?,
        bucket: r.get(2)?,
        key: r.get(3)?,
        initiated_ms: r.get(4)?,
        meta: serde_json::from_str(&meta).unwrap_or_default(),
        checksum_algorithm: sql::algorithm_from(r.get(6)?),
    };
    Ok((info.key.clone(), r.get(0)?, info))
}

pub(crate) fn list_uploads(conn: &Connection, bucket: &str, q: &UploadsQuery) -> Result<UploadsPage, ObjectError> {
    sql::bucket(conn, bucket)?;
    let delimiter = q.delimiter.as_deref();
    let row = match (&q.key_marker, &q.upload_id_marker) {
        (Some(k), Some(u)) => {
            let mut st = conn.prepare_cached("SELECT seq FROM uploads WHERE bucket = ?1 AND name = ?2 AND upload_id = ?3").sql()?;
            rusqlite::OptionalExtension::optional(st.query_row([bucket, k, u], |r| r.get::<_, i64>(0))).sql()?
        }
        _ => None,
    };
    let (entries, truncated) =
        walk(&q.prefix, delimiter, q.max_uploads, start(&q.prefix, delimiter, q.key_marker.as_deref(), row), |c, limit| {
            let same_key = |key: &str, seq: i64, limit: usize| {
                query(
                    conn,
                    &format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE bucket = ?1 AND name = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4"),
                    params![bucket, key, seq, limit as i64],
                    upload_row,
                )
            };
            let from = |bound: &[u8], inclusive: bool, limit: usize| {
                let op = if inclusive { ">=" } else { ">" };
                query(
                    conn,
                    &format!(
                        "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE bucket = ?1 AND name {op} CAST(?2 AS TEXT) ORDER BY name, seq LIMIT ?3"
                    ),
                    params![bucket, bound, limit as i64],
                    upload_row,
                )
            };
            fetch_rows(c, limit, same_key, from)
        })?;
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

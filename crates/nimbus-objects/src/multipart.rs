//! Multipart uploads: their rows and parts, and CompleteMultipartUpload, which checks the
//! parts named against those stored, joins their blobs into one new blob on a blocking
//! thread (streamed, hashing as it goes when a checksum needs the bytes) and commits the
//! object only if the parts it read are still the upload's.

use std::io::{Read, Write};
use std::path::PathBuf;

use rusqlite::{params, Connection, OptionalExtension};

use crate::checksum::{self, ChecksumAlgorithm, Checksums, Hasher};
use crate::error::ObjectError;
use crate::files;
use crate::limits;
use crate::list::{upload_row, UPLOAD_COLUMNS};
use crate::sql::{self, Sql};
use crate::store::{CompletedPart, ObjectMeta, ObjectStore, PartInfo, PartsPage, PutConditions, PutResult, Staged, UploadInfo};

pub(crate) fn create(
    conn: &Connection,
    bucket: &str,
    key: &str,
    meta: &ObjectMeta,
    tags: &[(String, String)],
    checksum_algorithm: Option<ChecksumAlgorithm>,
) -> Result<String, ObjectError> {
    sql::bucket(conn, bucket)?;
    sql::check_key(key)?;
    sql::check_tags(tags)?;
    let upload_id = sql::random_id(48);
    conn.execute(
        "INSERT INTO uploads (upload_id, bucket, name, initiated_ms, meta, tags, checksum_algorithm) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![upload_id, bucket, key, sql::now_ms(), sql::to_json(meta)?, sql::to_json(&tags)?, checksum_algorithm.map(|a| a.name())],
    )
    .sql()?;
    Ok(upload_id)
}

/// The upload (its sequence number and description), or NoSuchUpload when unknown or of
/// another bucket or key.
pub(crate) fn upload(conn: &Connection, bucket: &str, key: &str, upload_id: &str) -> Result<(i64, UploadInfo), ObjectError> {
    let mut st = conn.prepare_cached(&format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE upload_id = ?1")).sql()?;
    match st.query_row([upload_id], upload_row).optional().sql()? {
        Some((_, seq, info)) if info.bucket == bucket && info.key == key => Ok((seq, info)),
        _ => Err(ObjectError::NoSuchUpload),
    }
}

fn upload_tags(conn: &Connection, upload_id: &str) -> Result<Vec<(String, String)>, ObjectError> {
    let tags: String = conn.query_row("SELECT tags FROM uploads WHERE upload_id = ?1", [upload_id], |r| r.get(0)).sql()?;
    serde_json::from_str(&tags).map_err(ObjectError::internal)
}

/// Records part `part` with blob `blob`; returns it and the blob of the part it replaced.
pub(crate) fn put_part(
    conn: &Connection,
    bucket: &str,
    key: &str,
    upload_id: &str,
    mut part: PartInfo,
    blob: &str,
) -> Result<(PartInfo, Vec<String>), ObjectError> {
    sql::bucket(conn, bucket)?;
    if part.part_number == 0 || part.part_number > limits::MAX_PART_NUMBER {
        return Err(ObjectError::InvalidArgument("Part number must be an integer between 1 and 10000, inclusive".into()));
    }
    upload(conn, bucket, key, upload_id)?;
    let replaced: Option<String> = conn
        .prepare_cached("DELETE FROM parts WHERE upload_id = ?1 AND part_number = ?2 RETURNING blob")
        .sql()?
        .query_row(params![upload_id, part.part_number], |r| r.get(0))
        .optional()
        .sql()?;
    part.last_modified_ms = sql::now_ms();
    conn.prepare_cached(
        "INSERT INTO parts (upload_id, part_number, etag, size, last_modified_ms, checksum_algorithm, checksum, blob) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .sql()?
    .execute(params![
        upload_id,
        part.part_number,
        part.etag,
        part.size as i64,
        part.last_modified_ms,
        part.checksum.as_ref().map(|(a, _)| a.name()),
        part.checksum.as_ref().map(|(_, c)| c.as_str()),
        blob,
    ])
    .sql()?;
    Ok((part, replaced.into_iter().collect()))
}

/// A stored part with its blob.
struct StoredPart {
    info: PartInfo,
    blob: String,
}

fn parts_after(conn: &Connection, upload_id: &str, marker: u32, limit: usize) -> Result<Vec<StoredPart>, ObjectError> {
    let mut st = conn
        .prepare_cached(
            "SELECT part_number, etag, size, last_modified_ms, checksum_algorithm, checksum, blob FROM parts \
             WHERE upload_id = ?1 AND part_number > ?2 ORDER BY part_number LIMIT ?3",
        )
        .sql()?;
    let rows = st
        .query_map(params![upload_id, marker, limit as i64], |r| {
            Ok(StoredPart {
                info: PartInfo {
                    part_number: r.get(0)?,
                    etag: r.get(1)?,
                    size: r.get::<_, i64>(2)? as u64,
                    last_modified_ms: r.get(3)?,
                    checksum: sql::algorithm_from(r.get(4)?).zip(r.get(5)?),
                },
                blob: r.get(6)?,
            })
        })
        .sql()?;
    rows.collect::<rusqlite::Result<_>>().sql()
}

pub(crate) fn list_parts(conn: &Connection, upload_id: &str, marker: Option<u32>, max: usize) -> Result<PartsPage, ObjectError> {
    let mut parts: Vec<PartInfo> = parts_after(conn, upload_id, marker.unwrap_or(0), max + 1)?.into_iter().map(|p| p.info).collect();
    let truncated = parts.len() > max;
    parts.truncate(max);
    let next_part_number_marker = if truncated { parts.last().map(|p| p.part_number) } else { None };
    Ok(PartsPage { parts, truncated, next_part_number_marker })
}

/// Removes the upload and its parts; returns the parts' blobs.
pub(crate) fn remove(conn: &Connection, upload_id: &str) -> Result<Vec<String>, ObjectError> {
    let mut st = conn.prepare_cached("DELETE FROM parts WHERE upload_id = ?1 RETURNING blob").sql()?;
    let blobs = st.query_map([upload_id], |r| r.get(0)).sql()?.collect::<rusqlite::Result<Vec<String>>>().sql()?;
    conn.execute("DELETE FROM uploads WHERE upload_id = ?1", [upload_id]).sql()?;
    Ok(blobs)
}

/// The named parts, checked by AWS's rules against the stored ones.
fn check_parts(named: &[CompletedPart], stored: Vec<StoredPart>) -> Result<Vec<StoredPart>, ObjectError> {
    if named.is_empty() {
        return Err(ObjectError::InvalidPart);
    }
    if named.windows(2).any(|w| w[0].part_number >= w[1].part_number) {
        return Err(ObjectError::InvalidPartOrder);
    }
    let mut stored: std::collections::HashMap<u32, StoredPart> = stored.into_iter().map(|p| (p.info.part_number, p)).collect();
    let mut chosen = Vec::with_capacity(named.len());
    for n in named {
        match stored.remove(&n.part_number) {
            Some(p) if p.info.etag == n.etag.trim_matches('"') => chosen.push(p),
            _ => return Err(ObjectError::InvalidPart),
        }
    }
    if chosen[..chosen.len() - 1].iter().any(|p| p.info.size < limits::MIN_PART_BYTES) {
        return Err(ObjectError::EntityTooSmall);
    }
    if chosen.iter().map(|p| p.info.size).sum::<u64>() > limits::MAX_OBJECT_BYTES {
        return Err(ObjectError::EntityTooLarge);
    }
    Ok(chosen)
}

/// `hex(md5(concat(binary part md5s)))-N`.
pub(crate) fn multipart_etag<'a>(part_etags: impl IntoIterator<Item = &'a str>) -> Result<String, ObjectError> {
    use md5::Digest;
    let mut h = md5::Md5::new();
    let mut n = 0;
    for e in part_etags {
        h.update(hex::decode(e).map_err(ObjectError::internal)?);
        n += 1;
    }
    Ok(format!("{}-{n}", hex::encode(h.finalize())))
}

/// What joining the parts produced beside the body.
struct Joined {
    body: Staged,
    /// The upload's checksum of each part not stored with it (None where stored).
    part_checksums: Vec<Option<String>>,
    /// The whole body's CRC64NVME, when that is the upload's algorithm.
    full_crc64: Option<String>,
}

/// Joins the part blobs into a new staging file (blocking IO).
fn join(dir: PathBuf, parts: Vec<(String, bool)>, algorithm: Option<ChecksumAlgorithm>) -> std::io::Result<Joined> {
    let path = files::staging_path(&dir);
    let mut out = std::fs::File::options().write(true).create_new(true).open(&path).map_err(files::full_kind)?;
    // From here on, dropping `body` removes the file.
    let mut body = Staged { path, inline: None, size: 0, md5: [0; 16], checksums: Checksums::default() };
    // The whole object's CRC64NVME: its checksum when the upload named it or none (S3 records
    // one for every new object).
    let mut full = matches!(algorithm, None | Some(ChecksumAlgorithm::Crc64Nvme)).then(|| Hasher::new(ChecksumAlgorithm::Crc64Nvme));
    let mut part_checksums = Vec::with_capacity(parts.len());
    let mut buf = vec![0u8; 1 << 20];
    for (blob, needs_checksum) in parts {
        let mut input = std::fs::File::open(files::blob_path(&dir, &blob))?;
        let mut part = match (needs_checksum, algorithm) {
            (true, Some(a)) => Some(Hasher::new(a)),
            _ => None,
        };
        loop {
            let n = match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            out.write_all(&buf[..n]).map_err(files::full_kind)?;
            body.size += n as u64;
            if let Some(h) = &mut full {
                h.update(&buf[..n]);
            }
            if let Some(h) = &mut part {
                h.update(&buf[..n]);
            }
        }
        part_checksums.push(part.map(Hasher::finish_base64));
    }
    out.sync_data().map_err(files::full_kind)?;
    Ok(Joined { body, part_checksums, full_crc64: full.map(Hasher::finish_base64) })
}

pub(crate) async fn complete(
    store: &ObjectStore,
    bucket: &str,
    key: &str,
    upload_id: &str,
    named: Vec<CompletedPart>,
    conditions: PutConditions,
) -> Result<PutResult, ObjectError> {
    let (b, k, u) = (bucket.to_string(), key.to_string(), upload_id.to_string());
    let (info, chosen) = store
        .read(move |c| {
            sql::bucket(c, &b)?;
            let (_, info) = upload(c, &b, &k, &u)?;
            let stored = parts_after(c, &u, 0, limits::MAX_PART_NUMBER as usize)?;
            Ok((info, check_parts(&named, stored)?))
        })
        .await?;
    let algorithm = info.checksum_algorithm;
    let needs = |p: &StoredPart| algorithm.is_some_and(|a| p.info.checksum.as_ref().is_none_or(|(pa, _)| *pa != a));
    let plan: Vec<(String, bool)> = chosen.iter().map(|p| (p.blob.clone(), needs(p))).collect();
    let dir = store.dir.clone();
    let joined = tokio::task::spawn_blocking(move || join(dir, plan, algorithm)).await.map_err(ObjectError::internal)?;
    let joined = match joined {
        Ok(j) => j,
        // A part replaced or the upload aborted meanwhile: its blob is gone.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ObjectError::InvalidPart),
        Err(e) => return Err(files::io_error(e)),
    };

    let n = chosen.len();
    let part_sizes: Vec<u64> = chosen.iter().map(|p| p.info.size).collect();
    let etag = multipart_etag(chosen.iter().map(|p| p.info.etag.as_str()))?;
    let checksum = match algorithm {
        None | Some(ChecksumAlgorithm::Crc64Nvme) => joined.full_crc64.clone().map(|v| (ChecksumAlgorithm::Crc64Nvme, v)),
        Some(a) => {
            let values: Vec<&str> = chosen
                .iter()
                .zip(&joined.part_checksums)
                .map(|(p, computed)| computed.as_deref().or(p.info.checksum.as_ref().map(|(_, v)| v.as_str())).unwrap_or_default())
                .collect();
            Some((a, checksum::composite(a, &values).ok_or_else(|| ObjectError::internal("a part's checksum is not base64"))?))
        }
    };
    let size = joined.body.size;
    let blob = store.install(joined.body).await?;
    let used: Vec<(u32, String)> = chosen.into_iter().map(|p| (p.info.part_number, p.blob)).collect();
    let (bucket, key, upload_id) = (bucket.to_string(), key.to_string(), upload_id.to_string());
    let v_blob = blob.clone();
    store
        .commit_blob(Some(blob), move |c| {
            let b = sql::bucket(c, &bucket)?;
            upload(c, &bucket, &key, &upload_id)?;
            // The parts joined must still be the upload's.
            let mut st = c.prepare_cached("SELECT blob FROM parts WHERE upload_id = ?1 AND part_number = ?2").sql()?;
            for (number, blob) in &used {
                let now: Option<String> = st.query_row(params![upload_id, number], |r| r.get(0)).optional().sql()?;
                if now.as_deref() != Some(blob.as_str()) {
                    return Err(ObjectError::InvalidPart);
                }
            }
            let v = sql::NewVersion {
                size,
                etag,
                meta: info.meta,
                checksum,
                parts_count: Some(n as u32),
                part_sizes,
                tags: upload_tags(c, &upload_id)?,
                blob: Some(v_blob),
                inline: None,
            };
            let (result, mut replaced) = sql::write_version(c, &b, &key, v, &conditions, "CompleteMultipartUpload", sql::now_ms())?;
            replaced.extend(remove(c, &upload_id)?);
            Ok((result, replaced))
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(number: u32, etag: &str, size: u64) -> StoredPart {
        StoredPart {
            info: PartInfo { part_number: number, etag: etag.into(), size, last_modified_ms: 0, checksum: None },
            blob: format!("blob{number}"),
        }
    }

    fn named(parts: &[(u32, &str)]) -> Vec<CompletedPart> {
        parts.iter().map(|(n, e)| CompletedPart { part_number: *n, etag: e.to_string() }).collect()
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn completion_rules() {
        const BIG: u64 = limits::MIN_PART_BYTES;
        let store = || vec![stored(1, "e1", BIG), stored(2, "e2", BIG - 1), stored(3, "e3", 1), stored(5, "e5", BIG)];
        let cases: &[(&[(u32, &str)], Result<&[u32], ObjectError>)] = &[
            (&[(1, "e1"), (2, "e2")], Ok(&[1, 2])),
            (&[(1, "\"e1\"")], Ok(&[1])),
            (&[(3, "e3")], Ok(&[3])),
            (&[(1, "e1"), (5, "e5"), (3, "e3")], Err(ObjectError::InvalidPartOrder)),
            (&[(1, "e1"), (1, "e1")], Err(ObjectError::InvalidPartOrder)),
            (&[(1, "e1"), (4, "e4")], Err(ObjectError::InvalidPart)),
            (&[(1, "wrong")], Err(ObjectError::InvalidPart)),
            (&[(2, "e2"), (3, "e3")], Err(ObjectError::EntityTooSmall)),
            (&[(1, "e1"), (5, "e5")], Ok(&[1, 5])),
            (&[], Err(ObjectError::InvalidPart)),
        ];
        for (i, (parts, want)) in cases.iter().enumerate() {
            let got = check_parts(&named(parts), store()).map(|c| c.iter().map(|p| p.info.part_number).collect::<Vec<_>>());
            assert_eq!(got, want.clone().map(|w| w.to_vec()), "case {i}");
        }
    }
}

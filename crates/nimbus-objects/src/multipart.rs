//! Multipart uploads: their rows and parts, and CompleteMultipartUpload, which checks the
//! parts named against those stored, joins their blobs into one new blob on a blocking
//! thread (streamed, hashing as it goes when a checksum needs the bytes) and commits the
//! object only if the parts it read are still the upload's.

use std::io::{Read, Write};
use std::path::PathBuf;

use crate::bodies::Bodies;
use crate::checksum::{self, ChecksumAlgorithm, Checksums, Hasher};
use crate::db::{vals, Db, Lock};
use crate::error::ObjectError;
use crate::files;
use crate::limits;
use crate::list::{upload_row, UPLOAD_COLUMNS};
use crate::sql;
use crate::store::in_tx;
use crate::store::{CompletedPart, ObjectMeta, ObjectStore, PartInfo, PartsPage, PutConditions, PutResult, Staged, UploadInfo};

pub(crate) async fn create(
    db: &mut impl Db,
    bucket: &str,
    key: &str,
    meta: &ObjectMeta,
    tags: &[(String, String)],
    checksum_algorithm: Option<ChecksumAlgorithm>,
) -> Result<String, ObjectError> {
    sql::bucket_for_write(db, bucket).await?;
    sql::check_key(key)?;
    sql::check_tags(tags)?;
    let upload_id = sql::random_id(48);
    let params = vals![
        upload_id.as_str(),
        bucket,
        key,
        sql::now_ms(),
        sql::to_json(meta)?,
        sql::to_json(&tags)?,
        checksum_algorithm.map(|a| a.name())
    ];
    db.exec(
        "INSERT INTO s3_uploads (upload_id, bucket, name, initiated_ms, meta, tags, checksum_algorithm) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        &params,
    )
    .await?;
    Ok(upload_id)
}

/// The upload (its sequence number and description), held as `lock` says (its parts'
/// writes share it; completing and aborting hold it alone), or NoSuchUpload when unknown or
/// of another bucket or key.
pub(crate) async fn upload(
    db: &mut impl Db,
    bucket: &str,
    key: &str,
    upload_id: &str,
    lock: Lock,
) -> Result<(i64, UploadInfo), ObjectError> {
    let sql = db.locking(&format!("SELECT {UPLOAD_COLUMNS} FROM s3_uploads WHERE upload_id = ?1"), lock);
    match db.row(&sql, &vals![upload_id]).await?.as_ref().map(upload_row).transpose()? {
        Some((_, seq, info)) if info.bucket == bucket && info.key == key => Ok((seq, info)),
        _ => Err(ObjectError::NoSuchUpload),
    }
}

async fn upload_tags(db: &mut impl Db, upload_id: &str) -> Result<Vec<(String, String)>, ObjectError> {
    let row = db.row("SELECT tags FROM s3_uploads WHERE upload_id = ?1", &vals![upload_id]).await?.ok_or(ObjectError::NoSuchUpload)?;
    serde_json::from_str(&row.text(0)?).map_err(ObjectError::internal)
}

/// Records part `part` with blob `blob`; returns it and the blob of the part it replaced.
pub(crate) async fn put_part(
    db: &mut impl Db,
    bucket: &str,
    key: &str,
    upload_id: &str,
    mut part: PartInfo,
    blob: &str,
) -> Result<(PartInfo, Vec<String>), ObjectError> {
    sql::bucket(db, bucket).await?;
    if part.part_number == 0 || part.part_number > limits::MAX_PART_NUMBER {
        return Err(ObjectError::InvalidArgument("Part number must be an integer between 1 and 10000, inclusive".into()));
    }
    upload(db, bucket, key, upload_id, Lock::Share).await?;
    db.lock_keys(upload_id, &[&part.part_number.to_string()]).await?;
    let replaced = db
        .row("DELETE FROM s3_parts WHERE upload_id = ?1 AND part_number = ?2 RETURNING blob", &vals![upload_id, part.part_number])
        .await?
        .map(|r| r.text(0))
        .transpose()?;
    part.last_modified_ms = sql::now_ms();
    let checksum = part.checksum.as_ref();
    let params = vals![
        upload_id,
        part.part_number,
        part.etag.as_str(),
        part.size as i64,
        part.last_modified_ms,
        checksum.map(|(a, _)| a.name()),
        checksum.map(|(_, c)| c.as_str()),
        blob,
    ];
    db.exec(
        "INSERT INTO s3_parts (upload_id, part_number, etag, size, last_modified_ms, checksum_algorithm, checksum, blob) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        &params,
    )
    .await?;
    Ok((part, replaced.into_iter().collect()))
}

/// A stored part with its blob.
struct StoredPart {
    info: PartInfo,
    blob: String,
}

async fn parts_after(db: &mut impl Db, upload_id: &str, marker: u32, limit: usize) -> Result<Vec<StoredPart>, ObjectError> {
    let rows = db
        .rows(
            "SELECT part_number, etag, size, last_modified_ms, checksum_algorithm, checksum, blob FROM s3_parts \
             WHERE upload_id = ?1 AND part_number > ?2 ORDER BY part_number LIMIT ?3",
            &vals![upload_id, marker, limit as i64],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(StoredPart {
                info: PartInfo {
                    part_number: r.int(0)? as u32,
                    etag: r.text(1)?,
                    size: r.int(2)? as u64,
                    last_modified_ms: r.int(3)?,
                    checksum: sql::algorithm_from(r.opt_text(4)?).zip(r.opt_text(5)?),
                },
                blob: r.text(6)?,
            })
        })
        .collect()
}

pub(crate) async fn list_parts(db: &mut impl Db, upload_id: &str, marker: Option<u32>, max: usize) -> Result<PartsPage, ObjectError> {
    let mut parts: Vec<PartInfo> = parts_after(db, upload_id, marker.unwrap_or(0), max + 1).await?.into_iter().map(|p| p.info).collect();
    let truncated = parts.len() > max;
    parts.truncate(max);
    let next_part_number_marker = if truncated { parts.last().map(|p| p.part_number) } else { None };
    Ok(PartsPage { parts, truncated, next_part_number_marker })
}

/// Removes the upload and its parts; returns the parts' blobs.
pub(crate) async fn remove(db: &mut impl Db, upload_id: &str) -> Result<Vec<String>, ObjectError> {
    let rows = db.rows("DELETE FROM s3_parts WHERE upload_id = ?1 RETURNING blob", &vals![upload_id]).await?;
    let blobs = rows.iter().map(|r| r.text(0)).collect::<Result<Vec<_>, _>>()?;
    db.exec("DELETE FROM s3_uploads WHERE upload_id = ?1", &vals![upload_id]).await?;
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
fn join(dir: PathBuf, bodies: &Bodies, parts: Vec<(String, bool)>, algorithm: Option<ChecksumAlgorithm>) -> std::io::Result<Joined> {
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
        let mut input = bodies.open(&blob)?;
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
    let (info, chosen) = in_tx!(store, false, |tx| {
        sql::bucket(tx, &b).await?;
        let (_, info) = upload(tx, &b, &k, &u, Lock::None).await?;
        let stored = parts_after(tx, &u, 0, limits::MAX_PART_NUMBER as usize).await?;
        Ok((info, check_parts(&named, stored)?))
    })?;
    let algorithm = info.checksum_algorithm;
    let needs = |p: &StoredPart| algorithm.is_some_and(|a| p.info.checksum.as_ref().is_none_or(|(pa, _)| *pa != a));
    let plan: Vec<(String, bool)> = chosen.iter().map(|p| (p.blob.clone(), needs(p))).collect();
    let dir = store.dir.clone();
    let bodies = store.bodies.clone();
    let joined = tokio::task::spawn_blocking(move || join(dir, &bodies, plan, algorithm)).await.map_err(ObjectError::internal)?;
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
    let done = in_tx!(store, true, |tx| {
        let b = sql::bucket_for_write(tx, &bucket).await?;
        upload(tx, &bucket, &key, &upload_id, Lock::Update).await?;
        // The parts joined must still be the upload's.
        for (number, blob) in &used {
            let now = tx
                .row("SELECT blob FROM s3_parts WHERE upload_id = ?1 AND part_number = ?2", &vals![upload_id.as_str(), *number])
                .await?
                .map(|r| r.text(0))
                .transpose()?;
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
            tags: upload_tags(tx, &upload_id).await?,
            blob: Some(v_blob),
            inline: None,
        };
        let (result, mut replaced) = sql::write_version(tx, &b, &key, v, &conditions, "CompleteMultipartUpload", sql::now_ms()).await?;
        replaced.extend(remove(tx, &upload_id).await?);
        Ok((result, replaced))
    });
    store.settle(Some(blob), done)
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

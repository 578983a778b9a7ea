//! S3's multipart uploads: start, parts (streamed to disk, or copied from another object's
//! range), completion by the parts' list, abort, and the listings of parts and uploads.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use http::request::Parts;
use http::{Response, StatusCode};
use nimbus_objects::{ChecksumAlgorithm, CompletedPart, ObjectError, UploadsQuery};
use serde::Deserialize;
use serde_json::{json, Value};

use super::body::RequestBody;
use super::object::{copied_object, meta_from_headers, put_conditions, put_output, quoted, tags_header};
use super::{answer, decode, empty, S3Error, S3Request};
use crate::response::Body;
use crate::server::AppState;

pub async fn serve(state: &Arc<AppState>, req: &S3Request, parts: &Parts, body: RequestBody) -> Result<Response<Body>, S3Error> {
    let store = super::store(state)?;
    let (bucket, key) = (req.bucket(), req.key());
    let of = |e: ObjectError| S3Error::from_store(e, req);
    let upload_id = req.param("uploadId").unwrap_or("");
    match req.operation {
        "CreateMultipartUpload" => {
            if key.len() > nimbus_objects::limits::MAX_KEY_BYTES {
                return Err(S3Error::from_store(ObjectError::KeyTooLongError, req));
            }
            let algorithm = match parts.headers.get("x-amz-checksum-algorithm").and_then(|v| v.to_str().ok()) {
                Some(name) => Some(ChecksumAlgorithm::from_name(name).ok_or_else(|| {
                    S3Error::invalid_request("Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]")
                })?),
                None => None,
            };
            let id = store.create_upload(bucket, key, meta_from_headers(parts), tags_header(parts)?, algorithm).await.map_err(of)?;
            let mut out = json!({"Bucket": bucket, "Key": key, "UploadId": id});
            if let Some(a) = algorithm {
                out["ChecksumAlgorithm"] = json!(a.name());
                out["ChecksumType"] = json!(if a == ChecksumAlgorithm::Crc64Nvme { "FULL_OBJECT" } else { "COMPOSITE" });
            }
            Ok(answer("CreateMultipartUpload", &out))
        }
        "UploadPart" => {
            let number = part_number(req)?;
            let upload = store.upload(bucket, key, upload_id).await.map_err(of)?;
            let (staged, algorithm) = body.stage(&store, parts, upload.checksum_algorithm).await?;
            let part = store.put_part(bucket, key, upload_id, number, staged, Some(algorithm)).await.map_err(of)?;
            let mut out = json!({"ETag": quoted(&part.etag)});
            if let Some((a, v)) = &part.checksum {
                out[format!("Checksum{}", a.name())] = json!(v);
            }
            Ok(answer("UploadPart", &out))
        }
        "UploadPartCopy" => {
            let number = part_number(req)?;
            let upload = store.upload(bucket, key, upload_id).await.map_err(of)?;
            let (source, _) = copied_object(&store, req, parts).await?;
            let (start, len) = match parts.headers.get("x-amz-copy-source-range").and_then(|v| v.to_str().ok()) {
                Some(spec) => copy_range(spec, source.size)?,
                None => (0, source.size),
            };
            let file = store.open_range(&source, start, len).map_err(S3Error::internal)?;
            let algorithm = upload.checksum_algorithm.unwrap_or(ChecksumAlgorithm::Crc64Nvme);
            let staging = store.stage(&[algorithm]).map_err(S3Error::internal)?;
            let staged = tokio::task::spawn_blocking(move || {
                let mut file = file;
                let mut staging = staging;
                file.seek(SeekFrom::Start(start))?;
                let mut left = len;
                let mut buf = vec![0u8; 1024 * 1024];
                while left > 0 {
                    let want = buf.len().min(usize::try_from(left).unwrap_or(buf.len()));
                    let n = file.read(&mut buf[..want])?;
                    if n == 0 {
                        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the source object ended early"));
                    }
                    staging.write(&buf[..n])?;
                    left -= n as u64;
                }
                staging.finish()
            })
            .await
            .map_err(S3Error::internal)?
            .map_err(S3Error::internal)?;
            let part = store.put_part(bucket, key, upload_id, number, staged, Some(algorithm)).await.map_err(of)?;
            let mut result = json!({"ETag": quoted(&part.etag), "LastModified": part.last_modified_ms as f64 / 1000.0});
            if let Some((a, v)) = &part.checksum {
                result[format!("Checksum{}", a.name())] = json!(v);
            }
            let mut out = json!({"CopyPartResult": result});
            if let Some(v) = &source.version_id {
                out["CopySourceVersionId"] = json!(v);
            }
            Ok(answer("UploadPartCopy", &out))
        }
        "CompleteMultipartUpload" => {
            let doc = body.read(parts).await?;
            let input: CompleteInput = decode(req, parts, &doc)?;
            let parts_named = input.multipart_upload.map(|u| u.parts).unwrap_or_default();
            if parts_named.is_empty() {
                return Err(S3Error::invalid_request("You must specify at least one part"));
            }
            let list: Vec<CompletedPart> = parts_named
                .into_iter()
                .map(|p| CompletedPart { part_number: p.part_number, etag: p.e_tag.trim().trim_matches('"').to_string() })
                .collect();
            let put = store
                .complete_upload(bucket, key, upload_id, list, put_conditions(parts))
                .await
                .map_err(|e| super::object::with_condition(of(e), parts))?;
            let mut out = put_output(&put);
            let host = parts.headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
            let scheme = if state.tls.is_some() { "https" } else { "http" };
            out["Location"] = json!(if req.path_style {
                format!("{scheme}://{host}/{bucket}/{}", super::object::url_path(key))
            } else {
                format!("{scheme}://{host}/{}", super::object::url_path(key))
            });
            out["Bucket"] = json!(bucket);
            out["Key"] = json!(key);
            Ok(answer("CompleteMultipartUpload", &out))
        }
        "AbortMultipartUpload" => {
            store.abort_upload(bucket, key, upload_id).await.map_err(of)?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        "ListParts" => {
            let max = bounded(req, "max-parts")?;
            let marker = match req.param("part-number-marker") {
                None | Some("") => None,
                Some(m) => Some(m.parse::<u32>().map_err(|_| {
                    S3Error::invalid_argument("Provided part-number-marker not an integer or within integer range", "part-number-marker", m)
                })?),
            };
            let upload = store.upload(bucket, key, upload_id).await.map_err(of)?;
            let page = store.list_parts(bucket, key, upload_id, marker, max).await.map_err(of)?;
            let account = state.account();
            let list: Vec<Value> = page
                .parts
                .iter()
                .map(|p| {
                    let mut e = json!({
                        "PartNumber": p.part_number, "LastModified": p.last_modified_ms as f64 / 1000.0,
                        "ETag": quoted(&p.etag), "Size": p.size,
                    });
                    if let Some((a, v)) = p.checksum.as_ref().filter(|_| upload.checksum_algorithm.is_some()) {
                        e[format!("Checksum{}", a.name())] = json!(v);
                    }
                    e
                })
                .collect();
            let mut out = json!({
                "Bucket": bucket, "Key": key, "UploadId": upload_id,
                "PartNumberMarker": marker.unwrap_or(0), "MaxParts": max, "IsTruncated": page.truncated,
                "Initiator": {"ID": super::canonical_id(account), "DisplayName": "nimbus"}, "Owner": super::object::owner(account),
                "StorageClass": upload.meta.storage_class.as_deref().unwrap_or("STANDARD"),
            });
            if !list.is_empty() {
                out["Parts"] = Value::Array(list);
            }
            // AWS names the last part listed even when nothing follows (0 for none).
            let last = page.parts.last().map_or(0, |p| p.part_number);
            out["NextPartNumberMarker"] = json!(page.next_part_number_marker.unwrap_or(last));
            if let Some(a) = upload.checksum_algorithm {
                out["ChecksumAlgorithm"] = json!(a.name());
            }
            Ok(answer("ListParts", &out))
        }
        "ListMultipartUploads" => {
            let max = bounded(req, "max-uploads")?;
            let query = UploadsQuery {
                prefix: req.param("prefix").unwrap_or("").to_string(),
                delimiter: req.param("delimiter").filter(|d| !d.is_empty()).map(str::to_string),
                key_marker: req.param("key-marker").filter(|m| !m.is_empty()).map(str::to_string),
                upload_id_marker: req.param("upload-id-marker").filter(|m| !m.is_empty()).map(str::to_string),
                max_uploads: max,
            };
            let page = store.list_uploads(bucket, &query).await.map_err(of)?;
            let account = state.account();
            let uploads: Vec<Value> = page
                .uploads
                .iter()
                .map(|u| {
                    let mut e = json!({
                        "UploadId": u.upload_id, "Key": u.key, "Initiated": u.initiated_ms as f64 / 1000.0,
                        "StorageClass": u.meta.storage_class.as_deref().unwrap_or("STANDARD"),
                        "Owner": super::object::owner(account), "Initiator": {"ID": super::canonical_id(account), "DisplayName": "nimbus"},
                    });
                    if let Some(a) = u.checksum_algorithm {
                        e["ChecksumAlgorithm"] = json!(a.name());
                    }
                    e
                })
                .collect();
            let mut out = json!({
                "Bucket": bucket, "KeyMarker": query.key_marker.clone().unwrap_or_default(),
                "UploadIdMarker": query.upload_id_marker.clone().unwrap_or_default(), "MaxUploads": max,
                "IsTruncated": page.truncated,
                // The last upload listed, even when nothing follows.
                "NextKeyMarker": page.next_key_marker.clone().or_else(|| page.uploads.last().map(|u| u.key.clone())).unwrap_or_default(),
                "NextUploadIdMarker": page.next_upload_id_marker.clone().or_else(|| page.uploads.last().map(|u| u.upload_id.clone())).unwrap_or_default(),
            });
            if req.param("prefix").is_some() {
                out["Prefix"] = json!(query.prefix);
            }
            if !uploads.is_empty() {
                out["Uploads"] = Value::Array(uploads);
            }
            if !page.common_prefixes.is_empty() {
                out["CommonPrefixes"] = Value::Array(page.common_prefixes.iter().map(|p| json!({"Prefix": p})).collect());
            }
            if let Some(d) = &query.delimiter {
                out["Delimiter"] = json!(d);
            }

            Ok(answer("ListMultipartUploads", &out))
        }
        _ => Err(S3Error::not_implemented()),
    }
}

fn part_number(req: &S3Request) -> Result<u32, S3Error> {
    let raw = req.param("partNumber").unwrap_or("");
    raw.parse::<u32>()
        .ok()
        .filter(|n| (1..=nimbus_objects::limits::MAX_PART_NUMBER).contains(n))
        .ok_or_else(|| S3Error::invalid_argument("Part number must be an integer between 1 and 10000, inclusive", "partNumber", raw))
}

fn bounded(req: &S3Request, name: &str) -> Result<usize, S3Error> {
    match req.param(name) {
        None => Ok(1000),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(|n| usize::try_from(n.min(1000)).unwrap_or(1000))
            .ok_or_else(|| S3Error::invalid_argument(format!("Provided {name} not an integer or within integer range"), name, v)),
    }
}

/// `x-amz-copy-source-range: bytes=a-b` (both ends required, within the source).
fn copy_range(spec: &str, size: u64) -> Result<(u64, u64), S3Error> {
    let invalid = || {
        S3Error::invalid_argument(
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy",
            "x-amz-copy-source-range",
            spec,
        )
    };
    let (a, b) = spec.trim().strip_prefix("bytes=").and_then(|r| r.split_once('-')).ok_or_else(invalid)?;
    let (a, b) = (a.parse::<u64>().map_err(|_| invalid())?, b.parse::<u64>().map_err(|_| invalid())?);
    if a > b {
        return Err(invalid());
    }
    if b >= size {
        return Err(S3Error::invalid_argument(
            format!("Range specified is not valid for source object of size: {size}"),
            "x-amz-copy-source-range",
            spec,
        ));
    }
    Ok((a, b - a + 1))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CompleteInput {
    multipart_upload: Option<CompletedUploadDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CompletedUploadDoc {
    #[serde(default)]
    parts: Vec<CompletedPartDoc>,
}

#[derive(Debug, Deserialize)]
struct CompletedPartDoc {
    #[serde(rename = "PartNumber")]
    part_number: u32,
    #[serde(rename = "ETag")]
    e_tag: String,
}

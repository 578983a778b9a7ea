//! Request bodies of S3 calls: read whole (configuration documents, a few MB at most) or
//! streamed to a staging file (object bodies, up to 5 GiB), and in both cases held to what
//! the signature promised (`x-amz-content-sha256`, aws-chunked chunk signatures) and to the
//! digests the client sent (`Content-MD5`, `x-amz-checksum-*` headers or trailers).

use base64::Engine;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::request::Parts;
use http_body_util::BodyExt;
use nimbus_identity::chunked::{ChunkError, ChunkedDecoder};
use nimbus_identity::sigv4::BodyCheck;
use nimbus_objects::checksum::Hasher;
use nimbus_objects::{ChecksumAlgorithm, ObjectStore, Staged, Staging};
use sha2::{Digest, Sha256};

use super::S3Error;

pub(crate) type Inner = http_body_util::combinators::UnsyncBoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// A request's body, not yet read, with what its signature says it must be.
pub struct RequestBody {
    /// Taken by whichever read comes first; what is left after an early answer is drained
    /// ([`Leftover`]).
    inner: Arc<Mutex<Option<Inner>>>,
    check: BodyCheck,
}

/// The body of a request answered before it was read (a missing bucket or upload): drained
/// when small, so the client's keep-alive connection stays usable (hyper closes a
/// connection whose request body is left unread, and an SDK's next request on it fails).
pub struct Leftover(Arc<Mutex<Option<Inner>>>);

/// Most bytes drained after an early answer; a larger body closes the connection instead.
const MAX_DRAIN: usize = 1024 * 1024;

impl Leftover {
    pub async fn drain(self) {
        let Some(mut body) = self.0.lock().unwrap_or_else(|p| p.into_inner()).take() else { return };
        let read = async {
            let mut seen = 0usize;
            while let Some(Ok(frame)) = body.frame().await {
                seen += frame.data_ref().map_or(0, Bytes::len);
                if seen > MAX_DRAIN {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), read).await;
    }
}

/// Bytes gathered before each write to the staging file.
const WRITE_BATCH: usize = 1024 * 1024;
/// Largest configuration document read whole (DeleteObjects' 1,000 keys, a completion of
/// 10,000 parts).
pub const MAX_DOCUMENT: usize = 8 * 1024 * 1024;

impl RequestBody {
    pub fn new<B>(body: B, check: BodyCheck) -> RequestBody
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        RequestBody { inner: Arc::new(Mutex::new(Some(body.map_err(Into::into).boxed_unsync()))), check }
    }

    /// The same body, held to what its now-authenticated signature says.
    pub fn checked(self, check: BodyCheck) -> RequestBody {
        RequestBody { inner: self.inner, check }
    }

    /// What is left of the body if the operation answers without reading it.
    pub fn leftover(&self) -> Leftover {
        Leftover(self.inner.clone())
    }

    fn take(&self) -> Inner {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_else(|| http_body_util::Empty::new().map_err(|e| match e {}).boxed_unsync())
    }

    /// The body's data as a stream, for a parser of its own (a POST upload's form, which
    /// no signature of the head covers).
    pub fn into_stream(self) -> http_body_util::BodyDataStream<Inner> {
        http_body_util::BodyDataStream::new(self.take())
    }

    /// The whole body (at most `MAX_DOCUMENT` bytes), checked and decoded.
    pub async fn read(self, parts: &Parts) -> Result<Bytes, S3Error> {
        let mut body = self.take();
        let mut reader = Reader::new(self.check, parts)?;
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(read_error)?;
            if let Ok(data) = frame.into_data() {
                reader.feed(&data, &mut out)?;
                if out.len() > MAX_DOCUMENT {
                    return Err(S3Error::new("MaxMessageLengthExceeded", 400, "Your request was too big."));
                }
            }
        }
        let mut hashers = Hashers::for_request(parts)?;
        hashers.update(&out);
        let trailers = reader.finish(out.len() as u64)?;
        hashers.verify(parts, &trailers)?;
        Ok(Bytes::from(out))
    }

    /// Streams the body into a staging file of `store`, checking it on the way: the staged
    /// body and the checksum algorithm to record (the one the client named, else CRC64NVME,
    /// as S3 records for every new object); `upload`: the algorithm of the multipart upload
    /// a part belongs to, which the part records whatever it names.
    pub async fn stage(
        self,
        store: &ObjectStore,
        parts: &Parts,
        upload: Option<ChecksumAlgorithm>,
    ) -> Result<(Staged, ChecksumAlgorithm), S3Error> {
        let mut body = self.take();
        let mut reader = Reader::new(self.check, parts)?;
        let named = named_algorithm(parts)?;
        let record = upload.or(named).unwrap_or(ChecksumAlgorithm::Crc64Nvme);
        let mut want = vec![record];
        for algorithm in ChecksumAlgorithm::ALL {
            if parts.headers.contains_key(algorithm.header()) && !want.contains(&algorithm) {
                want.push(algorithm);
            }
        }
        let content_md5 = content_md5(parts)?;
        let staging = store.stage(&want).map_err(stage_error)?;
        // A large body is written by a blocking thread of its own while the next batch is
        // received (a small one, in one go at the end).
        let mut writer = Writer::Idle(staging);
        let mut pending: Vec<u8> = Vec::with_capacity(WRITE_BATCH);
        let mut size = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(read_error)?;
            let Ok(data) = frame.into_data() else { continue };
            reader.feed(&data, &mut pending)?;
            if pending.len() >= WRITE_BATCH {
                size += pending.len() as u64;
                if size > nimbus_objects::limits::MAX_PUT_BYTES {
                    return Err(S3Error::new("EntityTooLarge", 400, "Your proposed upload exceeds the maximum allowed size")
                        .with("MaxSizeAllowed", nimbus_objects::limits::MAX_PUT_BYTES.to_string()));
                }
                writer = writer.send(std::mem::replace(&mut pending, Vec::with_capacity(WRITE_BATCH))).await?;
            }
        }
        size += pending.len() as u64;
        let trailers = reader.finish(size)?;
        if let Some(declared) = declared_length(parts) {
            if declared != size {
                return Err(S3Error::new(
                    "IncompleteBody",
                    400,
                    "You did not provide the number of bytes specified by the Content-Length HTTP header",
                ));
            }
        }
        if size > nimbus_objects::limits::MAX_PUT_BYTES {
            return Err(S3Error::new("EntityTooLarge", 400, "Your proposed upload exceeds the maximum allowed size")
                .with("MaxSizeAllowed", nimbus_objects::limits::MAX_PUT_BYTES.to_string()));
        }
        let staged = writer.finish(pending).await?;
        if let Some(md5) = content_md5 {
            if md5 != staged.md5 {
                return Err(S3Error::new("BadDigest", 400, "The Content-MD5 you specified did not match what we received.")
                    .with("ExpectedDigest", base64::engine::general_purpose::STANDARD.encode(md5))
                    .with("CalculatedDigest", base64::engine::general_purpose::STANDARD.encode(staged.md5)));
            }
        }
        for algorithm in &want {
            let sent = parts
                .headers
                .get(algorithm.header())
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .or_else(|| trailers.iter().find(|(k, _)| k == algorithm.header()).map(|(_, v)| v.clone()));
            if let Some(sent) = sent {
                check_checksum_form(*algorithm, &sent)?;
                let computed = staged.checksums.get(*algorithm).unwrap_or_default();
                if sent.trim() != computed {
                    return Err(checksum_mismatch(*algorithm));
                }
            }
        }
        Ok((staged, record))
    }
}

/// Where a streamed body's batches go: into its staging file in one go at the end while it
/// is small, else to a blocking thread that writes (and hashes) each batch while the next is
/// received.
enum Writer {
    Idle(Staging),
    Running { batches: tokio::sync::mpsc::Sender<Vec<u8>>, done: tokio::task::JoinHandle<std::io::Result<Staging>> },
}

/// Batches waiting for the writer thread (each up to `WRITE_BATCH`).
const WRITE_QUEUE: usize = 2;

impl Writer {
    async fn send(self, batch: Vec<u8>) -> Result<Writer, S3Error> {
        let (batches, done) = match self {
            Writer::Running { batches, done } => (batches, done),
            Writer::Idle(staging) => {
                let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(WRITE_QUEUE);
                let done = tokio::task::spawn_blocking(move || {
                    let mut staging = staging;
                    while let Some(batch) = rx.blocking_recv() {
                        staging.write(&batch)?;
                    }
                    Ok(staging)
                });
                (tx, done)
            }
        };
        if batches.send(batch).await.is_err() {
            // The writer stopped on an error: it says which.
            drop(batches);
            return Err(match done.await {
                Ok(Err(e)) => stage_error(e),
                Ok(Ok(_)) => S3Error::internal("the body's writer stopped early"),
                Err(e) => S3Error::internal(e),
            });
        }
        Ok(Writer::Running { batches, done })
    }

    /// Writes what is left, syncs the file and hands back the body.
    async fn finish(self, rest: Vec<u8>) -> Result<Staged, S3Error> {
        let staging = match self {
            Writer::Idle(staging) => staging,
            Writer::Running { batches, done } => {
                drop(batches);
                done.await.map_err(S3Error::internal)?.map_err(stage_error)?
            }
        };
        tokio::task::spawn_blocking(move || {
            let mut staging = staging;
            staging.write(&rest)?;
            staging.finish()
        })
        .await
        .map_err(S3Error::internal)?
        .map_err(stage_error)
    }
}

fn stage_error(e: std::io::Error) -> S3Error {
    if e.kind() == std::io::ErrorKind::StorageFull {
        tracing::warn!("S3: the disk is full; the upload was refused and its staging file removed");
    }
    S3Error::internal(e)
}

fn read_error(e: Box<dyn std::error::Error + Send + Sync>) -> S3Error {
    if e.is::<tower_http::timeout::TimeoutError>() {
        return S3Error::new(
            "RequestTimeout",
            400,
            "Your socket connection to the server was not read from or written to within the timeout period. Idle connections will be closed.",
        );
    }
    S3Error::new("IncompleteBody", 400, "You did not provide the number of bytes specified by the Content-Length HTTP header")
}

/// A checksum value that is not base64 of the algorithm's digest length is S3's
/// `InvalidRequest`, not a mismatch (which SDKs retry).
fn check_checksum_form(algorithm: ChecksumAlgorithm, sent: &str) -> Result<(), S3Error> {
    let want = match algorithm {
        ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c => 4,
        ChecksumAlgorithm::Crc64Nvme => 8,
        ChecksumAlgorithm::Sha1 => 20,
        ChecksumAlgorithm::Sha256 => 32,
    };
    match base64::engine::general_purpose::STANDARD.decode(sent.trim()) {
        Ok(bytes) if bytes.len() == want => Ok(()),
        _ => Err(S3Error::invalid_request(format!("Value for {} header is invalid.", algorithm.header()))),
    }
}

fn checksum_mismatch(algorithm: ChecksumAlgorithm) -> S3Error {
    S3Error::new("BadDigest", 400, format!("The {} you specified did not match the calculated checksum.", algorithm.name()))
}

/// The decoded length the client announced: `x-amz-decoded-content-length` for aws-chunked
/// bodies, else `Content-Length`.
fn declared_length(parts: &Parts) -> Option<u64> {
    let h = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    h("x-amz-decoded-content-length").or_else(|| {
        let chunked = parts
            .headers
            .get("content-encoding")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|e| e.trim() == "aws-chunked"));
        (!chunked && !streaming(parts)).then(|| h("content-length")).flatten()
    })
}

fn streaming(parts: &Parts) -> bool {
    parts.headers.get("x-amz-content-sha256").and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("STREAMING-"))
}

/// `Content-MD5`, decoded; `InvalidDigest` when it is not 16 bytes of base64.
fn content_md5(parts: &Parts) -> Result<Option<[u8; 16]>, S3Error> {
    let Some(v) = parts.headers.get("content-md5") else { return Ok(None) };
    let invalid = || {
        S3Error::new("InvalidDigest", 400, "The Content-MD5 you specified was invalid.")
            .with("Content-MD5", String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let bytes = base64::engine::general_purpose::STANDARD.decode(v.as_bytes()).map_err(|_| invalid())?;
    bytes.try_into().map(Some).map_err(|_| invalid())
}

/// The checksum algorithm the request names: `x-amz-sdk-checksum-algorithm` (or
/// `x-amz-checksum-algorithm`), else the one whose header or trailer it sends.
fn named_algorithm(parts: &Parts) -> Result<Option<ChecksumAlgorithm>, S3Error> {
    let header = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok());
    if let Some(name) = header("x-amz-sdk-checksum-algorithm").or_else(|| header("x-amz-checksum-algorithm")) {
        return ChecksumAlgorithm::from_name(name).map(Some).ok_or_else(|| {
            S3Error::new("InvalidRequest", 400, "Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]")
        });
    }
    if let Some(trailer) = header("x-amz-trailer") {
        if let Some(a) = ChecksumAlgorithm::ALL.into_iter().find(|a| trailer.split(',').any(|t| t.trim().eq_ignore_ascii_case(a.header())))
        {
            return Ok(Some(a));
        }
    }
    Ok(ChecksumAlgorithm::ALL.into_iter().find(|a| parts.headers.contains_key(a.header())))
}

/// What checks a body as it arrives: the signed hash, or the aws-chunked decoder.
enum Reader {
    Plain,
    Sha256 { expected: [u8; 32], hasher: Sha256 },
    Chunked(Box<ChunkedDecoder>),
}

impl Reader {
    fn new(check: BodyCheck, parts: &Parts) -> Result<Reader, S3Error> {
        let _ = parts;
        Ok(match check {
            BodyCheck::None => Reader::Plain,
            BodyCheck::Sha256(expected) => Reader::Sha256 { expected, hasher: Sha256::new() },
            BodyCheck::Chunked(spec) => Reader::Chunked(Box::new(ChunkedDecoder::new(&spec))),
        })
    }

    fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), S3Error> {
        match self {
            Reader::Plain => out.extend_from_slice(data),
            Reader::Sha256 { hasher, .. } => {
                hasher.update(data);
                out.extend_from_slice(data);
            }
            Reader::Chunked(d) => d.feed(data, out).map_err(chunk_error)?,
        }
        Ok(())
    }

    /// Ends the body: the trailers an aws-chunked body carried.
    fn finish(self, _size: u64) -> Result<Vec<(String, String)>, S3Error> {
        match self {
            Reader::Plain => Ok(Vec::new()),
            Reader::Sha256 { expected, hasher } => {
                let computed: [u8; 32] = hasher.finalize().into();
                if computed != expected {
                    return Err(S3Error::new(
                        "XAmzContentSHA256Mismatch",
                        400,
                        "The provided 'x-amz-content-sha256' header does not match what was computed.",
                    )
                    .with("ClientComputedContentSHA256", hex::encode(expected))
                    .with("S3ComputedContentSHA256", hex::encode(computed)));
                }
                Ok(Vec::new())
            }
            Reader::Chunked(d) => d.finish().map_err(chunk_error),
        }
    }
}

fn chunk_error(e: ChunkError) -> S3Error {
    let (status, code) = e.s3_error();
    match e {
        ChunkError::SignatureMismatch { .. } => S3Error::new(
            code,
            status,
            "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
        ),
        ChunkError::Malformed(_) | ChunkError::Incomplete => {
            S3Error::new(code, status, "You did not provide the number of bytes specified by the Content-Length HTTP header")
        }
        other => S3Error::new(
            code,
            status,
            format!("The request contained trailing data that was not well-formed or did not conform to our published schema: {other}"),
        ),
    }
}

/// The digests a whole-read body is checked against.
struct Hashers {
    md5: Option<([u8; 16], md5::Md5)>,
    checksums: Vec<(ChecksumAlgorithm, Hasher)>,
}

impl Hashers {
    fn for_request(parts: &Parts) -> Result<Hashers, S3Error> {
        let md5 = content_md5(parts)?.map(|m| (m, md5::Md5::new()));
        let mut checksums: Vec<(ChecksumAlgorithm, Hasher)> = Vec::new();
        for a in ChecksumAlgorithm::ALL {
            let trailer = parts
                .headers
                .get("x-amz-trailer")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|t| t.split(',').any(|t| t.trim().eq_ignore_ascii_case(a.header())));
            if parts.headers.contains_key(a.header()) || trailer {
                checksums.push((a, Hasher::new(a)));
            }
        }
        Ok(Hashers { md5, checksums })
    }

    fn update(&mut self, data: &[u8]) {
        if let Some((_, h)) = &mut self.md5 {
            h.update(data);
        }
        for (_, h) in &mut self.checksums {
            h.update(data);
        }
    }

    fn verify(self, parts: &Parts, trailers: &[(String, String)]) -> Result<(), S3Error> {
        if let Some((expected, h)) = self.md5 {
            let got: [u8; 16] = h.finalize().into();
            if got != expected {
                return Err(S3Error::new("BadDigest", 400, "The Content-MD5 you specified did not match what we received."));
            }
        }
        for (a, h) in self.checksums {
            let sent = parts
                .headers
                .get(a.header())
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .or_else(|| trailers.iter().find(|(k, _)| k == a.header()).map(|(_, v)| v.clone()));
            if let Some(sent) = sent {
                check_checksum_form(a, &sent)?;
                if sent.trim() != h.finish_base64() {
                    return Err(checksum_mismatch(a));
                }
            }
        }
        Ok(())
    }
}

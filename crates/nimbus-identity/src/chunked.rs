//! S3's `aws-chunked` body encoding, decoded incrementally so that a streamed upload (up to
//! 5 GB) is checked as it passes: the framing taken off, each chunk's signature checked
//! against the chain seeded by the request's own signature, and the trailer section (a
//! trailing checksum, and its signature) read. Sans-IO: the caller feeds whatever bytes
//! arrived, in any split, and the decoder keeps no more than one chunk header or the
//! trailer section in memory.
//!
//! The wire format (AWS: "Transferring Payload in Multiple Chunks", "Including Trailing
//! Headers"):
//!
//! ```text
//! <hex size>[;chunk-signature=<64 hex>]\r\n<data>\r\n   (repeated)
//! 0[;chunk-signature=<64 hex>]\r\n
//! [<name>:<value>\r\n ...][x-amz-trailer-signature:<64 hex>\r\n]
//! \r\n
//! ```
//!
//! As clients send it: botocore ends an unsigned body `0\r\nx-amz-checksum-crc32:…\r\n\r\n`
//! (or `0\r\n\r\n` without a checksum); the AWS SDK for JavaScript v3 ends it the same way
//! with a checksum, and with a bare `0\r\n` without one. So the stream may end right after the
//! last chunk's header, or after a complete trailer line, without the final empty line.
//!
//! Decoded bytes are handed out before the chunk they belong to is known to be good (its
//! signature comes in its header but covers its data): nothing decoded may be kept until
//! [`ChunkedDecoder::finish`] succeeds.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The longest chunk header accepted, its CRLF included (a signed one is 85 bytes or so).
pub const MAX_CHUNK_HEADER: usize = 4 * 1024;
/// The longest trailer section accepted, every line and CRLF included.
pub const MAX_TRAILER: usize = 16 * 1024;
/// The trailer line carrying the trailer section's signature.
pub const TRAILER_SIGNATURE: &str = "x-amz-trailer-signature";

/// SHA-256 of nothing: what each chunk's string to sign has where a header hash would be.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Which `aws-chunked` variant a request declared in `x-amz-content-sha256`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkMode {
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`: every chunk signed, no trailer.
    Signed,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`: every chunk signed, then a trailer
    /// section ending with its own signature.
    SignedTrailer,
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: chunks without signatures, then a trailer section.
    UnsignedTrailer,
}

impl ChunkMode {
    /// The mode an `x-amz-content-sha256` value names, if it names one Nimbus decodes (the
    /// ECDSA variants are not among them).
    pub fn from_content_sha256(value: &str) -> Option<ChunkMode> {
        [ChunkMode::Signed, ChunkMode::SignedTrailer, ChunkMode::UnsignedTrailer].into_iter().find(|m| m.content_sha256() == value)
    }

    /// The `x-amz-content-sha256` value that declares this mode.
    pub fn content_sha256(self) -> &'static str {
        match self {
            ChunkMode::Signed => crate::sigv4::STREAMING_PAYLOAD,
            ChunkMode::SignedTrailer => crate::sigv4::STREAMING_PAYLOAD_TRAILER,
            ChunkMode::UnsignedTrailer => crate::sigv4::STREAMING_UNSIGNED_PAYLOAD_TRAILER,
        }
    }

    fn signed(self) -> bool {
        matches!(self, ChunkMode::Signed | ChunkMode::SignedTrailer)
    }
}

/// What chunk signatures are checked with, taken from the request's verified head.
#[derive(Clone, PartialEq, Eq)]
pub struct ChunkSigning {
    /// The SigV4 signing key (`kSigning`) the request's signature was checked with.
    pub key: [u8; 32],
    /// `20130524/us-east-1/s3/aws4_request`.
    pub scope: String,
    /// The request date in basic ISO 8601 form, `20130524T000000Z`.
    pub amz_date: String,
    /// The request's own signature (lowercase hex): the first chunk's "previous signature".
    pub seed: String,
}

impl std::fmt::Debug for ChunkSigning {
    /// Never prints the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkSigning").field("scope", &self.scope).field("amz_date", &self.amz_date).field("seed", &self.seed).finish()
    }
}

/// What an `aws-chunked` body must satisfy, from its request's head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkedSpec {
    pub mode: ChunkMode,
    /// Used in the signed modes only.
    pub signing: ChunkSigning,
    /// `x-amz-decoded-content-length`, if sent: what [`ChunkedDecoder::decoded_len`] must come
    /// to (the caller compares; S3 answers a difference with `IncompleteBody`).
    pub decoded_content_length: Option<u64>,
    /// The trailer names `x-amz-trailer` announced, lowercase, in the order sent. The
    /// decoder holds the trailer section to exactly these (its signature aside).
    pub announced_trailers: Vec<String>,
    /// Whether chunk and trailer signatures are checked: false only for a server with
    /// authentication off ([`crate::sigv4::body_check_unauthenticated`]), which still decodes
    /// the framing but has no key to check it with.
    pub verify: bool,
}

/// The trailers that came after the last chunk, `(lowercase name, value)` in the order
/// sent, the trailer signature left out (it was checked).
pub type Trailers = Vec<(String, String)>;

/// Why an `aws-chunked` body is refused. [`ChunkError::s3_error`] gives S3's answer to each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// Not `aws-chunked`: a size that is not hex, a header or data without its CRLF, a signed
    /// chunk without its `chunk-signature`, a signed trailer section without its signature, a
    /// header or trailer section over [`MAX_CHUNK_HEADER`]/[`MAX_TRAILER`], bytes after the end.
    #[error("malformed aws-chunked body: {0}")]
    Malformed(String),
    /// The body ended before its last chunk, or inside the trailer section.
    #[error("the aws-chunked body ended early")]
    Incomplete,
    /// A chunk's signature, or the trailer section's, is not what the chain gives: what was
    /// signed, for diagnostics.
    #[error("chunk signature mismatch")]
    SignatureMismatch { string_to_sign: String },
    /// A trailer line that is not `name:value`, or a name sent twice.
    #[error("malformed trailer: {0}")]
    MalformedTrailer(String),
    /// A trailer that `x-amz-trailer` did not announce (or any trailer, in the mode without).
    #[error("trailer not announced in x-amz-trailer: {0}")]
    UnexpectedTrailer(String),
    /// A trailer `x-amz-trailer` announced that did not come.
    #[error("trailer announced in x-amz-trailer but not sent: {0}")]
    MissingTrailer(String),
}

impl ChunkError {
    /// The HTTP status and S3 error code S3 answers with. [`ChunkError::Malformed`] and
    /// [`ChunkError::Incomplete`] are `IncompleteBody`, as S3-compatible servers that follow
    /// S3 (versitygw) answer a broken framing; a bad chunk or trailer signature is
    /// `SignatureDoesNotMatch`; trailer trouble is `MalformedTrailerError`.
    pub fn s3_error(&self) -> (u16, &'static str) {
        match self {
            ChunkError::Malformed(_) | ChunkError::Incomplete => (400, "IncompleteBody"),
            ChunkError::SignatureMismatch { .. } => (403, "SignatureDoesNotMatch"),
            ChunkError::MalformedTrailer(_) | ChunkError::UnexpectedTrailer(_) | ChunkError::MissingTrailer(_) => {
                (400, "MalformedTrailerError")
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a chunk header (in `buf`).
    Header,
    /// Passing `remaining` bytes of data through.
    Data {
        remaining: u64,
    },
    /// Expecting the CRLF after a chunk's data; `seen` of its two bytes came.
    DataEnd {
        seen: u8,
    },
    /// Reading the trailer section (the current line in `buf`).
    Trailer,
    Done,
}

/// Decodes one `aws-chunked` body: [`ChunkedDecoder::feed`] what arrives, then
/// [`ChunkedDecoder::finish`] at its end. After an error every later call answers that error.
pub struct ChunkedDecoder {
    mode: ChunkMode,
    /// Keyed with the signing key once; cloned for each signature.
    mac: HmacSha256,
    scope: String,
    amz_date: String,
    /// The signature the next chunk (or the trailer) chains from: the seed, then each
    /// chunk's (as checked).
    previous: String,
    /// Whether signatures are checked (see [`ChunkedSpec::verify`]).
    verify: bool,
    announced: Vec<String>,
    state: State,
    /// The header line (or trailer line) read so far.
    buf: Vec<u8>,
    /// The current chunk's signature (signed modes) and the hash of its data so far.
    chunk_signature: Vec<u8>,
    chunk_hash: Sha256,
    trailer_bytes: usize,
    trailers: Trailers,
    trailer_signature: Option<String>,
    decoded: u64,
    failed: Option<ChunkError>,
}

impl std::fmt::Debug for ChunkedDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkedDecoder").field("mode", &self.mode).field("state", &self.state).field("decoded", &self.decoded).finish()
    }
}

impl ChunkedDecoder {
    pub fn new(spec: &ChunkedSpec) -> ChunkedDecoder {
        ChunkedDecoder {
            mode: spec.mode,
            mac: HmacSha256::new_from_slice(&spec.signing.key).expect("HMAC takes any key"),
            scope: spec.signing.scope.clone(),
            amz_date: spec.signing.amz_date.clone(),
            previous: spec.signing.seed.to_ascii_lowercase(),
            verify: spec.verify,
            announced: spec.announced_trailers.clone(),
            state: State::Header,
            buf: Vec::new(),
            chunk_signature: Vec::new(),
            chunk_hash: Sha256::new(),
            trailer_bytes: 0,
            trailers: Vec::new(),
            trailer_signature: None,
            decoded: 0,
            failed: None,
        }
    }

    /// The payload bytes decoded so far (to hold to `x-amz-decoded-content-length`).
    pub fn decoded_len(&self) -> u64 {
        self.decoded
    }

    /// Decodes `input`, the next bytes of the body, appending the payload bytes in it to
    /// `out`. On an error, `out` may have had part of `input`'s payload appended.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), ChunkError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = self.step(input, out);
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result
    }

    /// Ends the body: its trailers, or why it is not whole.
    pub fn finish(mut self) -> Result<Trailers, ChunkError> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        match self.state {
            State::Done => Ok(self.trailers),
            // The end of the last chunk's header or of a trailer line: the final empty line
            // may be left out (the JS SDK ends with `0\r\n` when it sends no checksum).
            State::Trailer if self.buf.is_empty() => {
                self.check_trailers()?;
                Ok(self.trailers)
            }
            _ => Err(ChunkError::Incomplete),
        }
    }

    fn step(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), ChunkError> {
        while !input.is_empty() {
            match self.state {
                State::Header => {
                    let Some(line) = self.take_line(&mut input, MAX_CHUNK_HEADER, "chunk header")? else { break };
                    self.header(&line)?;
                }
                State::Data { remaining } => {
                    let n = usize::try_from(remaining).unwrap_or(usize::MAX).min(input.len());
                    let (data, rest) = input.split_at(n);
                    if self.mode.signed() {
                        self.chunk_hash.update(data);
                    }
                    out.extend_from_slice(data);
                    self.decoded += n as u64;
                    input = rest;
                    let remaining = remaining - n as u64;
                    if remaining == 0 {
                        self.end_chunk()?;
                        self.state = State::DataEnd { seen: 0 };
                    } else {
                        self.state = State::Data { remaining };
                    }
                }
                State::DataEnd { seen } => {
                    let want = if seen == 0 { b'\r' } else { b'\n' };
                    if input[0] != want {
                        return Err(ChunkError::Malformed("chunk data not followed by CRLF".into()));
                    }
                    input = &input[1..];
                    self.state = if seen == 0 { State::DataEnd { seen: 1 } } else { State::Header };
                }
                State::Trailer => {
                    let room = MAX_TRAILER - self.trailer_bytes;
                    let Some(line) = self.take_line(&mut input, room, "trailer section")? else { break };
                    self.trailer_bytes += line.len() + 2;
                    if line.is_empty() {
                        self.check_trailers()?;
                        self.state = State::Done;
                    } else {
                        self.trailer_line(&line)?;
                    }
                }
                State::Done => return Err(ChunkError::Malformed("bytes after the end of the body".into())),
            }
        }
        Ok(())
    }

    /// The next CRLF-terminated line (without its CRLF), once whole; what is left of it
    /// in `input` is kept in `buf` meanwhile. `limit` bounds the line, CRLF included.
    fn take_line(&mut self, input: &mut &[u8], limit: usize, what: &str) -> Result<Option<Vec<u8>>, ChunkError> {
        let too_long = || ChunkError::Malformed(format!("{what} longer than {limit} bytes"));
        match input.iter().position(|b| *b == b'\n') {
            Some(i) => {
                if self.buf.len() + i + 1 > limit {
                    return Err(too_long());
                }
                self.buf.extend_from_slice(&input[..i]);
                *input = &input[i + 1..];
                let mut line = std::mem::take(&mut self.buf);
                if line.pop() != Some(b'\r') {
                    return Err(ChunkError::Malformed(format!("{what} line not ended by CRLF")));
                }
                Ok(Some(line))
            }
            None => {
                if self.buf.len() + input.len() > limit {
                    return Err(too_long());
                }
                self.buf.extend_from_slice(input);
                *input = &[];
                Ok(None)
            }
        }
    }

    /// `<hex size>[;chunk-signature=<64 hex>]`.
    fn header(&mut self, line: &[u8]) -> Result<(), ChunkError> {
        let malformed = |why: &str| ChunkError::Malformed(format!("{why}: {:?}", String::from_utf8_lossy(line)));
        let (size, extension) = match line.iter().position(|b| *b == b';') {
            Some(i) => (&line[..i], Some(&line[i + 1..])),
            None => (line, None),
        };
        if size.is_empty() || size.len() > 16 || !size.iter().all(u8::is_ascii_hexdigit) {
            return Err(malformed("chunk size is not hex"));
        }
        let size = u64::from_str_radix(std::str::from_utf8(size).unwrap_or_default(), 16).map_err(|_| malformed("chunk size too large"))?;
        if self.mode.signed() {
            let signature = extension
                .and_then(|e| e.strip_prefix(b"chunk-signature="))
                .filter(|s| s.len() == 64 && s.iter().all(u8::is_ascii_hexdigit))
                .ok_or_else(|| malformed("signed chunk without ';chunk-signature=<64 hex digits>'"))?;
            self.chunk_signature = signature.to_ascii_lowercase();
            self.chunk_hash = Sha256::new();
        }
        if size == 0 {
            self.end_chunk()?;
            self.state = State::Trailer;
        } else {
            self.state = State::Data { remaining: size };
        }
        Ok(())
    }

    /// Checks the chunk just read against its signature, and chains from it.
    fn end_chunk(&mut self) -> Result<(), ChunkError> {
        if !self.mode.signed() {
            return Ok(());
        }
        let data_hash = hex::encode(std::mem::take(&mut self.chunk_hash).finalize());
        let string_to_sign =
            format!("AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{}\n{EMPTY_SHA256}\n{data_hash}", self.amz_date, self.scope, self.previous);
        let provided = std::mem::take(&mut self.chunk_signature);
        self.previous = self.check_signature(&string_to_sign, &provided)?;
        Ok(())
    }

    /// The signature of `string_to_sign` (lowercase hex) if `provided` (lowercase hex) is it.
    fn check_signature(&self, string_to_sign: &str, provided: &[u8]) -> Result<String, ChunkError> {
        if !self.verify {
            return Ok(String::from_utf8_lossy(provided).into_owned());
        }
        let mut mac = self.mac.clone();
        mac.update(string_to_sign.as_bytes());
        let expected = hex::encode(mac.finalize().into_bytes());
        if crate::keys::constant_time_eq(expected.as_bytes(), provided) {
            Ok(expected)
        } else {
            Err(ChunkError::SignatureMismatch { string_to_sign: string_to_sign.to_string() })
        }
    }

    /// `name:value`, kept (or, for the trailer signature, set aside).
    fn trailer_line(&mut self, line: &[u8]) -> Result<(), ChunkError> {
        let text = std::str::from_utf8(line).map_err(|_| ChunkError::MalformedTrailer("not text".into()))?;
        let Some((name, value)) = text.split_once(':') else {
            return Err(ChunkError::MalformedTrailer(format!("'{text}' is not name:value")));
        };
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim_matches([' ', '\t']).to_string();
        if name.is_empty() {
            return Err(ChunkError::MalformedTrailer(format!("'{text}' has no name")));
        }
        let repeated = self.trailers.iter().any(|(n, _)| *n == name) || (name == TRAILER_SIGNATURE && self.trailer_signature.is_some());
        if repeated {
            return Err(ChunkError::MalformedTrailer(format!("{name} sent twice")));
        }
        if name == TRAILER_SIGNATURE {
            if self.mode != ChunkMode::SignedTrailer {
                return Err(ChunkError::UnexpectedTrailer(name));
            }
            self.trailer_signature = Some(value);
            return Ok(());
        }
        if !self.announced.contains(&name) || self.mode == ChunkMode::Signed {
            return Err(ChunkError::UnexpectedTrailer(name));
        }
        self.trailers.push((name, value));
        Ok(())
    }

    /// At the end of the trailer section: every announced trailer came, and the section's
    /// signature (signed-trailer mode) holds.
    fn check_trailers(&mut self) -> Result<(), ChunkError> {
        if let Some(missing) = self.announced.iter().find(|a| !self.trailers.iter().any(|(n, _)| n == *a)) {
            return Err(ChunkError::MissingTrailer(missing.clone()));
        }
        if self.mode != ChunkMode::SignedTrailer {
            return Ok(());
        }
        let provided = self
            .trailer_signature
            .take()
            .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| ChunkError::Malformed(format!("signed trailer section without '{TRAILER_SIGNATURE}:<64 hex digits>'")))?;
        let mut sorted: Vec<&(String, String)> = self.trailers.iter().collect();
        sorted.sort();
        let canonical: String = sorted.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{}\n{}",
            self.amz_date,
            self.scope,
            self.previous,
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        self.previous = self.check_signature(&string_to_sign, provided.to_ascii_lowercase().as_bytes())?;
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests;

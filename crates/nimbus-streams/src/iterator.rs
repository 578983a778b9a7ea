//! Shard iterators: opaque, self-contained positions a client hands back to GetRecords. Each
//! says which stream and shard, the index of the next record to read, and when it was issued,
//! authenticated with an HMAC under a key this server run made, so a client can neither forge
//! one nor move one to another shard. They expire five minutes after issue, as on AWS; an
//! iterator of an earlier server run is expired too (its key is gone).

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::StreamError;

/// How long an iterator is good for after its issue (AWS's 300,000 ms).
pub const LIFETIME_MS: i64 = 300_000;

const VERSION: u8 = 1;
/// The bytes of a [`RunKey::tag`].
pub const MAC_LEN: usize = 16;
/// version, run, issued, stream id, shard, position
const FIXED: usize = 1 + 8 + 8 + 8 + 4 + 8;

/// What an iterator points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub stream_id: i64,
    pub stream: String,
    pub shard: u32,
    /// The index of the next record to read (records with this index or a later one).
    pub next: u64,
    /// When the iterator was issued (ms since the epoch).
    pub issued_ms: i64,
}

/// A secret of this server run that signs the positions it hands out (Kinesis and DynamoDB
/// Streams iterators), with a random id for the run so a position of an earlier run is told
/// apart from a forged one.
pub struct RunKey {
    key: [u8; 32],
    run: [u8; 8],
}

impl RunKey {
    /// A fresh key for this run.
    pub fn generate() -> RunKey {
        let mut key = [0u8; 32];
        let mut run = [0u8; 8];
        getrandom::fill(&mut key).expect("the OS random source works");
        getrandom::fill(&mut run).expect("the OS random source works");
        RunKey { key, run }
    }

    /// A key from fixed bytes (tests).
    pub fn from_bytes(key: [u8; 32], run: [u8; 8]) -> RunKey {
        RunKey { key, run }
    }

    /// This run's id.
    pub fn run(&self) -> [u8; 8] {
        self.run
    }

    /// The truncated HMAC-SHA256 of the parts, in order.
    pub fn tag(&self, parts: &[&[u8]]) -> [u8; MAC_LEN] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        for p in parts {
            mac.update(p);
        }
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&full[..MAC_LEN]);
        out
    }

    /// Whether `tag` is the parts' tag, compared in constant time.
    pub fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        tag.len() == MAC_LEN && self.tag(parts).iter().zip(tag).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

/// The key Kinesis iterators are signed with.
pub type IteratorKey = RunKey;

/// Why an iterator was refused, before the stream is looked at.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not one of ours, or tampered with.
    Invalid,
    /// Issued by an earlier run of this server.
    OtherRun,
    /// Older than [`LIFETIME_MS`]: issued at this time (ms).
    Expired(i64),
}

impl RunKey {
    /// The iterator for `p`.
    pub fn encode(&self, p: &Position) -> String {
        let mut bytes = Vec::with_capacity(FIXED + p.stream.len() + MAC_LEN);
        bytes.push(VERSION);
        bytes.extend_from_slice(&self.run);
        bytes.extend_from_slice(&p.issued_ms.to_be_bytes());
        bytes.extend_from_slice(&p.stream_id.to_be_bytes());
        bytes.extend_from_slice(&p.shard.to_be_bytes());
        bytes.extend_from_slice(&p.next.to_be_bytes());
        bytes.extend_from_slice(p.stream.as_bytes());
        let mac = self.tag(&[&bytes]);
        bytes.extend_from_slice(&mac);
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    /// What `iterator` points at, if it is ours, authentic and not expired at `now_ms`.
    pub fn decode(&self, iterator: &str, now_ms: i64) -> Result<Position, Refusal> {
        let bytes = base64::engine::general_purpose::STANDARD.decode(iterator).map_err(|_| Refusal::Invalid)?;
        let p = unverified(&bytes).ok_or(Refusal::Invalid)?;
        if bytes[1..9] != self.run {
            return Err(Refusal::OtherRun);
        }
        let (body, mac) = bytes.split_at(bytes.len() - MAC_LEN);
        if !self.verify(&[body], mac) {
            return Err(Refusal::Invalid);
        }
        if now_ms - p.issued_ms > LIFETIME_MS {
            return Err(Refusal::Expired(p.issued_ms));
        }
        Ok(p)
    }
}

/// The stream an iterator names, without checking it (for authorization, which runs before
/// the call; the call itself checks the iterator).
pub fn stream_of(iterator: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(iterator).ok()?;
    unverified(&bytes).map(|p| p.stream)
}

fn unverified(bytes: &[u8]) -> Option<Position> {
    if bytes.len() <= FIXED + MAC_LEN || bytes[0] != VERSION {
        return None;
    }
    let int = |at: usize| -> [u8; 8] { bytes[at..at + 8].try_into().expect("8 bytes") };
    let stream = std::str::from_utf8(&bytes[FIXED..bytes.len() - MAC_LEN]).ok()?;
    Some(Position {
        issued_ms: i64::from_be_bytes(int(9)),
        stream_id: i64::from_be_bytes(int(17)),
        shard: u32::from_be_bytes(bytes[25..29].try_into().expect("4 bytes")),
        next: u64::from_be_bytes(int(29)),
        stream: stream.to_string(),
    })
}

/// AWS's text for an expired iterator (kinesalite's AWS-checked wording).
pub fn expired_message(issued_ms: i64, now_ms: i64) -> StreamError {
    let at =
        |ms: i64| chrono::DateTime::from_timestamp_millis(ms).map(|t| t.format("%a %b %d %H:%M:%S UTC %Y").to_string()).unwrap_or_default();
    StreamError::ExpiredIterator(format!(
        "Iterator expired. The iterator was created at time {} while right now it is {} which is further in the future than the tolerated delay of {LIFETIME_MS} milliseconds.",
        at(issued_ms),
        at(now_ms)
    ))
}

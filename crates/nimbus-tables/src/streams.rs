//! DynamoDB Streams' data, without IO: its typed requests and answers (records laid out as
//! AWS sends them), sequence numbers, shard ids, and shard iterators (opaque, HMAC-signed,
//! good for 15 minutes). The reads themselves are `TableService`'s (`service/stream_reader.rs`),
//! on the stream records `store::apply_change` writes with each item change.
//!
//! A stream has one shard for its whole life (AWS rolls a stream's shards about every four
//! hours; Nimbus does not). Its records' sequence numbers are their `stream_records` row ids
//! written as 21-digit decimals ([`sequence_number`]): increasing within the stream, in commit
//! order, and never reused.

use base64::Engine;
use nimbus_streams::iterator::{RunKey, MAC_LEN};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::request::KeySchemaElement;

/// How long an iterator is good for after its issue (AWS's 15 minutes).
pub const ITERATOR_LIFETIME_MS: i64 = 15 * 60 * 1000;
/// How long stream records are kept (AWS's 24 hours), in seconds.
pub const RETENTION_SECS: f64 = 24.0 * 3600.0;
/// Most records of one GetRecords (AWS's 1,000).
pub const MAX_GET_RECORDS: usize = 1000;
/// Most streams of one ListStreams page and shards of one DescribeStream page (AWS's 100).
pub const MAX_PAGE: usize = 100;

/// What a sequence number's digits add to its record's row id, so that every number has 21
/// digits (the model's minimum) and no leading zero.
const SEQUENCE_BASE: u128 = 100_000_000_000_000_000_000;

/// A record's `SequenceNumber`: its row id as a 21-digit decimal.
pub fn sequence_number(seq: i64) -> String {
    (SEQUENCE_BASE + seq.max(0) as u128).to_string()
}

/// The row id a `SequenceNumber` names, if it is one of Nimbus's (21 to 40 digits).
pub fn parse_sequence_number(text: &str) -> Option<i64> {
    if !(21..=40).contains(&text.len()) || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: u128 = text.parse().ok()?;
    i64::try_from(value.checked_sub(SEQUENCE_BASE)?).ok()
}

/// A stream's one shard id: `shardId-<creation ms, 20 digits>-<8 hex digits of the ARN's hash>`,
/// the shape of AWS's.
pub fn shard_id(arn: &str, created_at: f64) -> String {
    let digest = Sha256::digest(arn.as_bytes());
    format!("shardId-{:020}-{:02x}{:02x}{:02x}{:02x}", (created_at * 1000.0) as i64, digest[0], digest[1], digest[2], digest[3])
}

/// A record's `eventID`: 32 hex digits, the same for the same record every time it is read.
pub fn event_id(arn: &str, seq: i64) -> String {
    let digest = Sha256::new().chain_update(arn.as_bytes()).chain_update(seq.to_be_bytes()).finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

// ---- iterators ----------------------------------------------------------------------------

/// Where an iterator reads: the records of `stream_id` after sequence `after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IteratorPosition {
    /// The stream's row id.
    pub stream_id: i64,
    /// The stream's ARN.
    pub arn: String,
    /// The records after this row id are next.
    pub after: i64,
    /// When the iterator was issued (ms since the epoch).
    pub issued_ms: i64,
}

/// Why an iterator was refused, before the stream is looked at.
#[derive(Debug, PartialEq, Eq)]
pub enum IteratorRefusal {
    /// Not one of ours, or tampered with.
    Invalid,
    /// Issued by an earlier run of this server (its key is gone).
    OtherRun,
    /// Older than [`ITERATOR_LIFETIME_MS`].
    Expired,
}

const VERSION: u8 = 1;
/// version, run, issued, stream id, after.
const FIXED: usize = 1 + 8 + 8 + 8 + 8;

/// The key this server run signs iterators with (the run's key, as Kinesis iterators').
pub struct IteratorKey(RunKey);

impl IteratorKey {
    /// A fresh key for this run.
    pub fn generate() -> IteratorKey {
        IteratorKey(RunKey::generate())
    }

    /// A key from fixed bytes (tests).
    pub fn from_bytes(key: [u8; 32], run: [u8; 8]) -> IteratorKey {
        IteratorKey(RunKey::from_bytes(key, run))
    }

    /// The iterator for `p`: `<stream ARN>|1|<base64 of the position and its MAC>`, as AWS's
    /// iterators name their stream in front.
    pub fn encode(&self, p: &IteratorPosition) -> String {
        let mut bytes = Vec::with_capacity(FIXED + MAC_LEN);
        bytes.push(VERSION);
        bytes.extend_from_slice(&self.0.run());
        bytes.extend_from_slice(&p.issued_ms.to_be_bytes());
        bytes.extend_from_slice(&p.stream_id.to_be_bytes());
        bytes.extend_from_slice(&p.after.to_be_bytes());
        let mac = self.0.tag(&[p.arn.as_bytes(), &bytes]);
        bytes.extend_from_slice(&mac);
        format!("{}|1|{}", p.arn, base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    /// What `iterator` points at, if it is ours, authentic and not expired at `now_ms`.
    pub fn decode(&self, iterator: &str, now_ms: i64) -> Result<IteratorPosition, IteratorRefusal> {
        let (arn, blob) = split(iterator).ok_or(IteratorRefusal::Invalid)?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(blob).map_err(|_| IteratorRefusal::Invalid)?;
        if bytes.len() != FIXED + MAC_LEN || bytes[0] != VERSION {
            return Err(IteratorRefusal::Invalid);
        }
        let (body, tag) = bytes.split_at(FIXED);
        if body[1..9] != self.0.run() {
            return Err(IteratorRefusal::OtherRun);
        }
        if !self.0.verify(&[arn.as_bytes(), body], tag) {
            return Err(IteratorRefusal::Invalid);
        }
        let int = |at: usize| i64::from_be_bytes(body[at..at + 8].try_into().expect("8 bytes"));
        let p = IteratorPosition { issued_ms: int(9), stream_id: int(17), after: int(25), arn: arn.to_string() };
        if now_ms - p.issued_ms > ITERATOR_LIFETIME_MS {
            return Err(IteratorRefusal::Expired);
        }
        Ok(p)
    }
}

fn split(iterator: &str) -> Option<(&str, &str)> {
    let (arn, rest) = iterator.split_once('|')?;
    let blob = rest.strip_prefix("1|")?;
    Some((arn, blob))
}

/// The stream an iterator names, unchecked (authorization runs before the call, which checks
/// the iterator).
pub fn stream_of_iterator(iterator: &str) -> Option<&str> {
    split(iterator).map(|(arn, _)| arn).filter(|arn| arn.starts_with("arn:"))
}

// ---- requests and answers -----------------------------------------------------------------

/// ListStreams.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListStreamsInput {
    /// Only this table's streams.
    pub table_name: Option<String>,
    /// Page size (1 to 100).
    pub limit: Option<i64>,
    /// The page starts after this stream.
    pub exclusive_start_stream_arn: Option<String>,
}

/// DescribeStream.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamInput {
    /// StreamArn.
    pub stream_arn: String,
    /// Most shards (1 to 100).
    pub limit: Option<i64>,
    /// The shards start after this one.
    pub exclusive_start_shard_id: Option<String>,
    /// `CHILD_SHARDS` of a shard (a stream's one shard has none).
    pub shard_filter: Option<ShardFilter>,
}

/// DescribeStream's ShardFilter.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ShardFilter {
    /// `CHILD_SHARDS`.
    #[serde(rename = "Type")]
    pub kind: Option<String>,
    /// Whose children.
    pub shard_id: Option<String>,
}

/// GetShardIterator.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetShardIteratorInput {
    /// StreamArn.
    pub stream_arn: String,
    /// ShardId.
    pub shard_id: String,
    /// TRIM_HORIZON, LATEST, AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, AT_TIMESTAMP.
    pub shard_iterator_type: String,
    /// For AT_/AFTER_SEQUENCE_NUMBER.
    pub sequence_number: Option<String>,
    /// For AT_TIMESTAMP: epoch seconds.
    pub timestamp: Option<serde_json::Value>,
}

/// GetRecords.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetRecordsInput {
    /// ShardIterator.
    pub shard_iterator: String,
    /// Most records (1 to 1,000).
    pub limit: Option<i64>,
}

/// ListStreams' answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListStreamsOutput {
    /// The page.
    pub streams: Vec<StreamSummary>,
    /// Where the next page starts, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_evaluated_stream_arn: Option<String>,
}

/// One stream of ListStreams.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamSummary {
    /// StreamArn.
    pub stream_arn: String,
    /// TableName.
    pub table_name: String,
    /// StreamLabel.
    pub stream_label: String,
}

/// DescribeStream's answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamOutput {
    /// The stream.
    pub stream_description: StreamDescription,
}

/// `StreamDescription`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamDescription {
    /// StreamArn.
    pub stream_arn: String,
    /// StreamLabel.
    pub stream_label: String,
    /// ENABLED or DISABLED.
    pub stream_status: String,
    /// StreamViewType.
    pub stream_view_type: String,
    /// CreationRequestDateTime, epoch seconds.
    pub creation_request_date_time: f64,
    /// TableName.
    pub table_name: String,
    /// The table's key schema.
    pub key_schema: Vec<KeySchemaElement>,
    /// The page of shards.
    pub shards: Vec<Shard>,
    /// Where the next page of shards starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_evaluated_shard_id: Option<String>,
}

/// `Shard`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Shard {
    /// ShardId.
    pub shard_id: String,
    /// Its records' range; an open shard has no end.
    pub sequence_number_range: SequenceNumberRange,
    /// The shard it followed (never, with one shard per stream).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_shard_id: Option<String>,
}

/// `SequenceNumberRange`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SequenceNumberRange {
    /// StartingSequenceNumber.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starting_sequence_number: Option<String>,
    /// EndingSequenceNumber (a closed shard's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ending_sequence_number: Option<String>,
}

/// GetShardIterator's answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetShardIteratorOutput {
    /// ShardIterator.
    pub shard_iterator: String,
}

/// GetRecords' answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetRecordsOutput {
    /// The records, in order.
    pub records: Vec<Record>,
    /// Where to read next; absent once a closed shard is read to its end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_shard_iterator: Option<String>,
}

/// One stream record, as GetRecords answers it and as Lambda's DynamoDB event carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// A unique id of the record.
    #[serde(rename = "eventID")]
    pub event_id: String,
    /// INSERT, MODIFY, REMOVE.
    pub event_name: String,
    /// "1.1".
    pub event_version: String,
    /// "aws:dynamodb".
    pub event_source: String,
    /// The table's region.
    pub aws_region: String,
    /// The change.
    pub dynamodb: StreamRecord,
    /// Who made it, for TTL deletions only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_identity: Option<Identity>,
}

/// The `dynamodb` member of a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamRecord {
    /// When the change was made, epoch seconds rounded down (as AWS rounds it).
    pub approximate_creation_date_time: f64,
    /// The item's key attributes.
    pub keys: serde_json::Value,
    /// The item after the change (NEW_IMAGE, NEW_AND_OLD_IMAGES).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_image: Option<serde_json::Value>,
    /// The item before the change (OLD_IMAGE, NEW_AND_OLD_IMAGES).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_image: Option<serde_json::Value>,
    /// SequenceNumber.
    pub sequence_number: String,
    /// The size of the keys and images.
    pub size_bytes: u64,
    /// StreamViewType.
    pub stream_view_type: String,
}

/// `userIdentity` of a deletion DynamoDB made itself (TTL).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Identity {
    /// `dynamodb.amazonaws.com`.
    pub principal_id: String,
    /// `Service`.
    #[serde(rename = "Type")]
    pub kind: String,
}

/// A stored record as `store::apply_change` wrote it.
#[derive(Debug, Deserialize)]
struct Stored {
    event_name: String,
    keys: serde_json::Value,
    new_image: Option<serde_json::Value>,
    old_image: Option<serde_json::Value>,
    size_bytes: u64,
    stream_view_type: String,
    #[serde(default)]
    service: bool,
}

/// A stored record (`stream_records.record`) as AWS answers it.
pub fn record(arn: &str, region: &str, seq: i64, created_at: f64, stored: serde_json::Value) -> Result<Record, serde_json::Error> {
    let s: Stored = serde_json::from_value(stored)?;
    Ok(Record {
        event_id: event_id(arn, seq),
        event_name: s.event_name,
        event_version: "1.1".into(),
        event_source: "aws:dynamodb".into(),
        aws_region: region.into(),
        dynamodb: StreamRecord {
            approximate_creation_date_time: created_at.floor(),
            keys: s.keys,
            new_image: s.new_image,
            old_image: s.old_image,
            sequence_number: sequence_number(seq),
            size_bytes: s.size_bytes,
            stream_view_type: s.stream_view_type,
        },
        user_identity: s.service.then(|| Identity { principal_id: "dynamodb.amazonaws.com".into(), kind: "Service".into() }),
    })
}

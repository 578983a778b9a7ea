//! Kinesis Data Streams on the wire: JSON 1.1 requests with `X-Amz-Target:
//! Kinesis_20131202.<Action>`, decoded through `nimbus-protocol` against Kinesis's model into
//! typed [`KinesisCall`]s for `nimbus-streams`, checked against the model's constraints
//! (AWS's `ValidationException` texts), and answered with typed outputs and
//! [`StreamError`]s in Kinesis's shapes. Streams are addressed by `StreamName` or by
//! `StreamARN` (newer SDKs send the ARN). Kinesis's CBOR encoding (which the Java SDK uses by
//! default) is not served: boto3 and the AWS CLI speak JSON.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use http::Response;
use nimbus_protocol::encode::Empty;
use nimbus_protocol::{calls, encode, DecodeError, Protocol, KINESIS};
use nimbus_streams::{
    CreateStream, IteratorStart, ListShards, NewRecord, PutOutcome, ShardFilter, ShardInfo, StreamError, StreamInfo, StreamMode,
    StreamService,
};
use serde::{Deserialize, Serialize};

use crate::response::Body;

mod target;

/// The `X-Amz-Target` prefix of Kinesis.
pub const TARGET_PREFIX: &str = "Kinesis_20131202.";

/// A record's data may be at most 1 MiB (a stream's default `MaxRecordSizeInKiB`).
const MAX_DATA: usize = 1024 * 1024;
/// PutRecords' whole request may carry at most 5 MiB of data and keys.
const MAX_PUT_RECORDS_BYTES: usize = 5 * 1024 * 1024;

/// One Kinesis request: the operation, decoded (or the error AWS would answer while decoding).
#[derive(Debug)]
pub struct KinesisRequest {
    pub operation: &'static str,
    pub call: Result<KinesisCall, StreamError>,
}

calls! {
    iam "kinesis";
    /// Every Kinesis operation Nimbus serves, with its typed input.
    pub enum KinesisCall {
        CreateStream(CreateStreamInput),
        DeleteStream(StreamInput),
        DescribeStream(DescribeStreamInput),
        DescribeStreamSummary(StreamInput),
        ListStreams(ListStreamsInput),
        ListShards(ListShardsInput),
        PutRecord(PutRecordInput),
        PutRecords(PutRecordsInput),
        GetShardIterator(GetShardIteratorInput),
        GetRecords(GetRecordsInput),
        IncreaseStreamRetentionPeriod(RetentionInput),
        DecreaseStreamRetentionPeriod(RetentionInput),
        SplitShard(SplitShardInput),
        MergeShards(MergeShardsInput),
        UpdateShardCount(UpdateShardCountInput),
        AddTagsToStream(AddTagsInput),
        RemoveTagsFromStream(RemoveTagsInput),
        ListTagsForStream(ListTagsInput),
        TagResource(TagResourceInput),
        UntagResource(UntagResourceInput),
        ListTagsForResource(ResourceInput),
    }
}

impl KinesisRequest {
    /// The IAM action name (`kinesis:PutRecord`).
    pub fn name(&self) -> &'static str {
        KinesisCall::iam_action(self.operation).unwrap_or("kinesis:Unknown")
    }
}

/// Decodes the body of a `Kinesis_20131202.<operation>` request.
pub fn parse(operation: &str, body: &[u8]) -> KinesisRequest {
    match KinesisCall::from_json(&KINESIS, operation, body) {
        Some((operation, call)) => KinesisRequest { operation, call: call.map_err(decode_error).and_then(|c| c.check().map(|()| c)) },
        None => {
            let modelled = KINESIS.model().operation(operation).is_some();
            let message = if modelled {
                format!("Operation {operation} is not implemented by Nimbus yet.")
            } else {
                format!("Operation {operation} is not supported by this endpoint.")
            };
            KinesisRequest { operation: "Unknown", call: Err(StreamError::UnknownOperation(message)) }
        }
    }
}

/// A member path as Kinesis's validation messages name it (`streamName`).
fn camel(member: &str) -> String {
    let mut c = member.chars();
    c.next().map(|f| f.to_lowercase().chain(c).collect()).unwrap_or_default()
}

fn decode_error(e: DecodeError) -> StreamError {
    match e {
        DecodeError::Missing { member } => StreamError::Validation(format!(
            "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
            camel(member.rsplit('.').next().unwrap_or(&member))
        )),
        DecodeError::Type { member, expected, .. } | DecodeError::Binding { member, expected, .. } => {
            StreamError::Serialization(format!("Could not parse the request body: {member} must be a {expected}"))
        }
        DecodeError::Malformed(m) | DecodeError::Shape(m) => StreamError::Serialization(format!("Could not parse the request body: {m}")),
    }
}

// ---- model constraints -------------------------------------------------------------------

/// The model's constraints a request broke, worded as AWS words them
/// (`2 validation errors detected: Value 'a b' at 'streamName' failed to satisfy …; …`).
#[derive(Default)]
struct Violations(Vec<String>);

const NAME_PATTERN: &str = "[a-zA-Z0-9_.-]+";

impl Violations {
    fn add(&mut self, value: Option<&str>, at: &str, constraint: &str) {
        let value = value.map_or_else(|| "Value".to_string(), |v| format!("Value '{v}'"));
        self.0.push(format!("{value} at '{at}' failed to satisfy constraint: {constraint}"));
    }

    fn null(&mut self, at: &str) {
        self.0.push(format!("Value null at '{at}' failed to satisfy constraint: Member must not be null"));
    }

    /// A name (stream, shard): 1 to `max` characters of `[a-zA-Z0-9_.-]`.
    /// A list or map of 1 to `max` members.
    fn count(&mut self, n: usize, at: &str, max: usize) {
        if n == 0 {
            self.add(None, at, "Member must have length greater than or equal to 1");
        } else if n > max {
            self.add(None, at, &format!("Member must have length less than or equal to {max}"));
        }
    }

    /// A `ResourceARN` (the model: 1–2,048 characters).
    fn resource(&mut self, arn: &str) {
        if arn.is_empty() {
            self.add(Some(arn), "resourceARN", "Member must have length greater than or equal to 1");
        } else if arn.chars().count() > 2048 {
            self.add(Some(arn), "resourceARN", "Member must have length less than or equal to 2048");
        }
    }

    fn name(&mut self, value: Option<&str>, at: &str, max: usize) {
        let Some(v) = value else { return };
        if v.chars().count() > max {
            self.add(Some(v), at, &format!("Member must have length less than or equal to {max}"));
        } else if v.is_empty() {
            self.add(Some(v), at, "Member must have length greater than or equal to 1");
        }
        if !v.is_empty() && !v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')) {
            self.add(Some(v), at, &format!("Member must satisfy regular expression pattern: {NAME_PATTERN}"));
        }
    }

    fn length(&mut self, value: Option<&str>, at: &str, min: usize, max: usize) {
        let Some(v) = value else { return };
        let n = v.chars().count();
        if n < min {
            self.add(Some(v), at, &format!("Member must have length greater than or equal to {min}"));
        } else if n > max {
            self.add(Some(v), at, &format!("Member must have length less than or equal to {max}"));
        }
    }

    fn range(&mut self, value: Option<i64>, at: &str, min: i64, max: Option<i64>) {
        let Some(v) = value else { return };
        if v < min {
            self.add(Some(&v.to_string()), at, &format!("Member must have value greater than or equal to {min}"));
        } else if let Some(max) = max.filter(|m| v > *m) {
            self.add(Some(&v.to_string()), at, &format!("Member must have value less than or equal to {max}"));
        }
    }

    fn digits(&mut self, value: Option<&str>, at: &str, max_digits: usize) {
        let Some(v) = value else { return };
        let ok = v == "0" || (!v.is_empty() && !v.starts_with('0') && v.len() <= max_digits && v.bytes().all(|b| b.is_ascii_digit()));
        if !ok {
            let pattern = format!("^(0|([1-9]\\d{{0,{}}}))$", max_digits - 1);
            self.add(Some(v), at, &format!("Member must satisfy regular expression pattern: {pattern}"));
        }
    }

    fn stream(&mut self, s: &StreamRef) {
        self.name(s.stream_name.as_deref(), "streamName", 128);
        self.length(s.stream_arn.as_deref(), "streamARN", 1, 2048);
    }

    fn finish(self) -> Result<(), StreamError> {
        match self.0.len() {
            0 => Ok(()),
            1 => Err(StreamError::Validation(format!("1 validation error detected: {}", self.0[0]))),
            n => Err(StreamError::Validation(format!("{n} validation errors detected: {}", self.0.join("; ")))),
        }
    }
}

impl KinesisCall {
    /// The model's constraints on the input.
    fn check(&self) -> Result<(), StreamError> {
        use KinesisCall::*;
        let mut v = Violations::default();
        match self {
            CreateStream(i) => {
                v.name(Some(&i.stream_name), "streamName", 128);
                v.range(i.shard_count, "shardCount", 1, None);
                if i.tags.as_ref().is_some_and(|t| t.len() > 200) {
                    v.add(None, "tags", "Member must have length less than or equal to 200");
                }
            }
            DeleteStream(i) | DescribeStreamSummary(i) => v.stream(&i.stream),
            DescribeStream(i) => {
                v.stream(&i.stream);
                v.range(i.limit, "limit", 1, Some(10000));
                v.name(i.exclusive_start_shard_id.as_deref(), "exclusiveStartShardId", 128);
            }
            ListStreams(i) => {
                v.range(i.limit, "limit", 1, Some(10000));
                v.name(i.exclusive_start_stream_name.as_deref(), "exclusiveStartStreamName", 128);
            }
            ListShards(i) => {
                v.stream(&i.stream);
                v.range(i.max_results, "maxResults", 1, Some(10000));
                v.name(i.exclusive_start_shard_id.as_deref(), "exclusiveStartShardId", 128);
            }
            PutRecord(i) => {
                v.stream(&i.stream);
                v.length(i.partition_key.as_deref(), "partitionKey", 1, 256);
                v.digits(i.explicit_hash_key.as_deref(), "explicitHashKey", 39);
                v.digits(i.sequence_number_for_ordering.as_deref(), "sequenceNumberForOrdering", 129);
                if i.partition_key.is_none() {
                    v.null("partitionKey");
                }
            }
            PutRecords(i) => {
                v.stream(&i.stream);
                if i.records.is_empty() {
                    v.add(None, "records", "Member must have length greater than or equal to 1");
                } else if i.records.len() > 500 {
                    v.add(None, "records", "Member must have length less than or equal to 500");
                }
                for (n, r) in i.records.iter().enumerate() {
                    let at = |m: &str| format!("records.{}.member.{m}", n + 1);
                    v.length(r.partition_key.as_deref(), &at("partitionKey"), 1, 256);
                    v.digits(r.explicit_hash_key.as_deref(), &at("explicitHashKey"), 39);
                    if r.partition_key.is_none() {
                        v.null(&at("partitionKey"));
                    }
                }
            }
            GetShardIterator(i) => {
                v.stream(&i.stream);
                v.name(Some(&i.shard_id), "shardId", 128);
                v.digits(i.starting_sequence_number.as_deref(), "startingSequenceNumber", 129);
                const TYPES: [&str; 5] = ["AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER", "TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"];
                if !TYPES.contains(&i.shard_iterator_type.as_str()) {
                    v.add(
                        Some(&i.shard_iterator_type),
                        "shardIteratorType",
                        &format!("Member must satisfy enum value set: [{}]", TYPES.join(", ")),
                    );
                }
            }
            GetRecords(i) => {
                v.length(Some(&i.shard_iterator), "shardIterator", 1, 512);
                v.range(i.limit, "limit", 1, Some(10000));
            }
            IncreaseStreamRetentionPeriod(i) | DecreaseStreamRetentionPeriod(i) => v.stream(&i.stream),
            SplitShard(i) => {
                v.stream(&i.stream);
                v.name(Some(&i.shard_to_split), "shardToSplit", 128);
                v.digits(Some(&i.new_starting_hash_key), "newStartingHashKey", 39);
            }
            MergeShards(i) => {
                v.stream(&i.stream);
                v.name(Some(&i.shard_to_merge), "shardToMerge", 128);
                v.name(Some(&i.adjacent_shard_to_merge), "adjacentShardToMerge", 128);
            }
            UpdateShardCount(i) => {
                v.stream(&i.stream);
                v.range(Some(i.target_shard_count), "targetShardCount", 1, None);
                if i.scaling_type != "UNIFORM_SCALING" {
                    v.add(Some(&i.scaling_type), "scalingType", "Member must satisfy enum value set: [UNIFORM_SCALING]");
                }
            }
            AddTagsToStream(i) => {
                v.stream(&i.stream);
                v.count(i.tags.len(), "tags", 200);
            }
            RemoveTagsFromStream(i) => {
                v.stream(&i.stream);
                v.count(i.tag_keys.len(), "tagKeys", 50);
            }
            ListTagsForStream(i) => {
                v.stream(&i.stream);
                v.range(i.limit, "limit", 1, Some(50));
            }
            TagResource(i) => {
                v.resource(&i.resource_arn);
                v.count(i.tags.len(), "tags", 200);
            }
            UntagResource(i) => {
                v.resource(&i.resource_arn);
                v.count(i.tag_keys.len(), "tagKeys", 50);
            }
            ListTagsForResource(i) => v.resource(&i.resource_arn),
        }
        v.finish()
    }
}

// ---- typed inputs ------------------------------------------------------------------------

/// How a request names its stream: by name or (newer SDKs) by ARN.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamRef {
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
}

impl StreamRef {
    /// The stream's name: `StreamName`, or the name in `StreamARN` (both must agree).
    fn name(&self) -> Result<String, StreamError> {
        let from_arn = match &self.stream_arn {
            Some(arn) => Some(arn_name(arn).ok_or_else(|| StreamError::invalid_arn(arn))?),
            None => None,
        };
        match (&self.stream_name, from_arn) {
            (Some(n), Some(a)) if *n != a => Err(StreamError::InvalidArgument(format!(
                "StreamARN {} does not match StreamName {n}.",
                self.stream_arn.as_deref().unwrap_or_default()
            ))),
            (Some(n), _) => Ok(n.clone()),
            (None, Some(a)) => Ok(a),
            (None, None) => Err(StreamError::InvalidArgument("Either StreamName or StreamARN should be provided.".into())),
        }
    }
}

/// The stream name of `arn:aws:kinesis:<region>:<account>:stream/<name>`.
pub(crate) fn arn_name(arn: &str) -> Option<String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", _, "kinesis", _, account, resource] if account.len() == 12 => {
            resource.strip_prefix("stream/").filter(|n| !n.is_empty() && !n.contains('/')).map(str::to_string)
        }
        _ => None,
    }
}

trait InvalidArn {
    fn invalid_arn(arn: &str) -> StreamError;
}

impl InvalidArn for StreamError {
    fn invalid_arn(arn: &str) -> StreamError {
        StreamError::InvalidArgument(format!("StreamARN {arn} is not a valid Kinesis stream ARN."))
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamModeDetails {
    stream_mode: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateStreamInput {
    stream_name: String,
    shard_count: Option<i64>,
    stream_mode_details: Option<StreamModeDetails>,
    tags: Option<BTreeMap<String, String>>,
}

/// The input of operations that name only a stream.
#[derive(Debug, Deserialize)]
pub struct StreamInput {
    #[serde(flatten)]
    stream: StreamRef,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamInput {
    #[serde(flatten)]
    stream: StreamRef,
    limit: Option<i64>,
    exclusive_start_shard_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListStreamsInput {
    limit: Option<i64>,
    exclusive_start_stream_name: Option<String>,
    next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ShardFilterInput {
    r#type: String,
    shard_id: Option<String>,
    timestamp: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListShardsInput {
    #[serde(flatten)]
    stream: StreamRef,
    next_token: Option<String>,
    exclusive_start_shard_id: Option<String>,
    max_results: Option<i64>,
    stream_creation_timestamp: Option<serde_json::Value>,
    shard_filter: Option<ShardFilterInput>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordInput {
    #[serde(flatten)]
    stream: StreamRef,
    data: String,
    partition_key: Option<String>,
    explicit_hash_key: Option<String>,
    sequence_number_for_ordering: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsEntry {
    data: String,
    partition_key: Option<String>,
    explicit_hash_key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsInput {
    #[serde(flatten)]
    stream: StreamRef,
    records: Vec<PutRecordsEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetShardIteratorInput {
    #[serde(flatten)]
    stream: StreamRef,
    shard_id: String,
    shard_iterator_type: String,
    starting_sequence_number: Option<String>,
    timestamp: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetRecordsInput {
    shard_iterator: String,
    limit: Option<i64>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RetentionInput {
    #[serde(flatten)]
    stream: StreamRef,
    retention_period_hours: i64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SplitShardInput {
    #[serde(flatten)]
    stream: StreamRef,
    shard_to_split: String,
    new_starting_hash_key: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MergeShardsInput {
    #[serde(flatten)]
    stream: StreamRef,
    shard_to_merge: String,
    adjacent_shard_to_merge: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateShardCountInput {
    #[serde(flatten)]
    stream: StreamRef,
    target_shard_count: i64,
    scaling_type: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AddTagsInput {
    #[serde(flatten)]
    stream: StreamRef,
    tags: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RemoveTagsInput {
    #[serde(flatten)]
    stream: StreamRef,
    tag_keys: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsInput {
    #[serde(flatten)]
    stream: StreamRef,
    exclusive_start_tag_key: Option<String>,
    limit: Option<i64>,
}

/// TagResource: tags on a stream named by its ARN (the newer tagging API).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagResourceInput {
    #[serde(rename = "ResourceARN")]
    pub(crate) resource_arn: String,
    pub(crate) tags: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UntagResourceInput {
    #[serde(rename = "ResourceARN")]
    pub(crate) resource_arn: String,
    pub(crate) tag_keys: Vec<String>,
}

/// ListTagsForResource.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourceInput {
    #[serde(rename = "ResourceARN")]
    pub(crate) resource_arn: String,
}

/// The stream a tagging call's `ResourceARN` names (only streams are served).
fn tagged_stream(arn: &str) -> Result<String, StreamError> {
    arn_name(arn).ok_or_else(|| StreamError::InvalidArgument(format!("ResourceARN {arn} is not a valid Kinesis stream ARN.")))
}

// ---- typed outputs -----------------------------------------------------------------------

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ModeDetails {
    stream_mode: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct HashKeyRange<'a> {
    starting_hash_key: &'a str,
    ending_hash_key: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SequenceNumberRange<'a> {
    starting_sequence_number: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ending_sequence_number: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Shard<'a> {
    shard_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_shard_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    adjacent_parent_shard_id: Option<&'a str>,
    hash_key_range: HashKeyRange<'a>,
    sequence_number_range: SequenceNumberRange<'a>,
}

impl<'a> Shard<'a> {
    fn new(s: &'a ShardInfo) -> Shard<'a> {
        Shard {
            shard_id: &s.shard_id,
            parent_shard_id: s.parent_shard_id.as_deref(),
            adjacent_parent_shard_id: s.adjacent_parent_shard_id.as_deref(),
            hash_key_range: HashKeyRange { starting_hash_key: &s.starting_hash_key, ending_hash_key: &s.ending_hash_key },
            sequence_number_range: SequenceNumberRange {
                starting_sequence_number: &s.starting_sequence_number,
                ending_sequence_number: s.ending_sequence_number.as_deref(),
            },
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct EnhancedMetrics {
    shard_level_metrics: [&'static str; 0],
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct StreamDescription<'a> {
    stream_name: &'a str,
    #[serde(rename = "StreamARN")]
    stream_arn: &'a str,
    stream_status: &'static str,
    stream_mode_details: ModeDetails,
    shards: Vec<Shard<'a>>,
    has_more_shards: bool,
    retention_period_hours: u32,
    stream_creation_timestamp: f64,
    enhanced_monitoring: [EnhancedMetrics; 1],
    encryption_type: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeStreamOutput<'a> {
    stream_description: StreamDescription<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct StreamDescriptionSummary<'a> {
    stream_name: &'a str,
    #[serde(rename = "StreamARN")]
    stream_arn: &'a str,
    stream_status: &'static str,
    stream_mode_details: ModeDetails,
    retention_period_hours: u32,
    stream_creation_timestamp: f64,
    enhanced_monitoring: [EnhancedMetrics; 1],
    encryption_type: &'static str,
    open_shard_count: u32,
    consumer_count: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeStreamSummaryOutput<'a> {
    stream_description_summary: StreamDescriptionSummary<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct StreamSummaryOut<'a> {
    stream_name: &'a str,
    #[serde(rename = "StreamARN")]
    stream_arn: &'a str,
    stream_status: &'static str,
    stream_mode_details: ModeDetails,
    stream_creation_timestamp: f64,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListStreamsOutput<'a> {
    stream_names: Vec<&'a str>,
    has_more_streams: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
    stream_summaries: Vec<StreamSummaryOut<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListShardsOutput<'a> {
    shards: Vec<Shard<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordOutput {
    shard_id: String,
    sequence_number: String,
    encryption_type: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordsResultEntry {
    #[serde(skip_serializing_if = "Option::is_none")]
    sequence_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shard_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordsOutput {
    failed_record_count: usize,
    records: Vec<PutRecordsResultEntry>,
    encryption_type: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GetShardIteratorOutput {
    shard_iterator: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RecordOut {
    sequence_number: String,
    approximate_arrival_timestamp: f64,
    data: String,
    partition_key: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ChildShardOut<'a> {
    shard_id: &'a str,
    parent_shards: &'a [String],
    hash_key_range: HashKeyRange<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GetRecordsOutput<'a> {
    records: Vec<RecordOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_shard_iterator: Option<String>,
    millis_behind_latest: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    child_shards: Vec<ChildShardOut<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateShardCountOutput<'a> {
    stream_name: &'a str,
    current_shard_count: u32,
    target_shard_count: u32,
    #[serde(rename = "StreamARN")]
    stream_arn: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Tag {
    key: String,
    value: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListTagsForResourceOutput {
    tags: Vec<Tag>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListTagsOutput {
    tags: Vec<Tag>,
    has_more_tags: bool,
}

// ---- running -----------------------------------------------------------------------------

fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// A timestamp member: epoch seconds (a number, or a string of one) or ISO 8601; in ms.
fn timestamp(value: &serde_json::Value, member: &str) -> Result<i64, StreamError> {
    let bad = || StreamError::Serialization(format!("Could not parse the request body: {member} must be a timestamp"));
    match value {
        serde_json::Value::Number(n) => n.as_f64().map(|s| (s * 1000.0).round() as i64).ok_or_else(bad),
        serde_json::Value::String(s) => match s.parse::<f64>() {
            Ok(secs) => Ok((secs * 1000.0).round() as i64),
            Err(_) => chrono::DateTime::parse_from_rfc3339(s).map(|t| t.timestamp_millis()).map_err(|_| bad()),
        },
        _ => Err(bad()),
    }
}

/// A blob member: base64 on the wire.
fn blob(value: &str, member: &str) -> Result<Vec<u8>, StreamError> {
    base64::engine::general_purpose::STANDARD
        .decode(value)
        .map_err(|_| StreamError::Serialization(format!("Could not parse the request body: {member} is not valid base64")))
}

fn data(value: &str, at: &str) -> Result<Vec<u8>, StreamError> {
    let bytes = blob(value, at)?;
    if bytes.len() > MAX_DATA {
        return Err(StreamError::Validation(format!(
            "1 validation error detected: Value at '{at}' failed to satisfy constraint: Member must have length less than or equal to {MAX_DATA}"
        )));
    }
    Ok(bytes)
}

fn reply<T: Serialize>(operation: &str, request_id: &str, output: &T) -> Response<bytes::Bytes> {
    encode::output(&KINESIS, Protocol::AwsJson1_1, operation, output, request_id)
}

fn mode(m: StreamMode) -> ModeDetails {
    ModeDetails { stream_mode: m.as_str() }
}

fn describe(info: &StreamInfo) -> DescribeStreamOutput<'_> {
    DescribeStreamOutput {
        stream_description: StreamDescription {
            stream_name: &info.name,
            stream_arn: &info.arn,
            stream_status: info.status,
            stream_mode_details: mode(info.mode),
            shards: info.shards.iter().map(Shard::new).collect(),
            has_more_shards: info.has_more_shards,
            retention_period_hours: info.retention_hours,
            stream_creation_timestamp: seconds(info.created_ms),
            enhanced_monitoring: [EnhancedMetrics { shard_level_metrics: [] }],
            encryption_type: "NONE",
        },
    }
}

fn shard_filter(f: ShardFilterInput) -> Result<ShardFilter, StreamError> {
    let time = |f: &ShardFilterInput| -> Result<i64, StreamError> {
        let t = f.timestamp.as_ref().ok_or_else(|| {
            StreamError::invalid_filter("Timestamp must be supplied in a ShardFilter with a Type of FROM_TIMESTAMP or AT_TIMESTAMP")
        })?;
        timestamp(t, "ShardFilter.Timestamp")
    };
    Ok(match f.r#type.as_str() {
        "AFTER_SHARD_ID" => ShardFilter::AfterShardId(
            f.shard_id
                .clone()
                .ok_or_else(|| StreamError::invalid_filter("ShardId must be supplied in a ShardFilter with a Type of AFTER_SHARD_ID"))?,
        ),
        "AT_TRIM_HORIZON" => ShardFilter::AtTrimHorizon,
        "FROM_TRIM_HORIZON" => ShardFilter::FromTrimHorizon,
        "AT_LATEST" => ShardFilter::AtLatest,
        "AT_TIMESTAMP" => ShardFilter::AtTimestamp(time(&f)?),
        "FROM_TIMESTAMP" => ShardFilter::FromTimestamp(time(&f)?),
        other => {
            return Err(StreamError::Validation(format!(
                "1 validation error detected: Value '{other}' at 'shardFilter.type' failed to satisfy constraint: Member must satisfy enum value set: [AFTER_SHARD_ID, AT_TRIM_HORIZON, FROM_TRIM_HORIZON, AT_LATEST, AT_TIMESTAMP, FROM_TIMESTAMP]"
            )))
        }
    })
}

trait InvalidFilter {
    fn invalid_filter(msg: &str) -> StreamError;
}

impl InvalidFilter for StreamError {
    fn invalid_filter(msg: &str) -> StreamError {
        StreamError::InvalidArgument(msg.into())
    }
}

fn new_record(
    data_b64: &str,
    partition_key: Option<String>,
    explicit_hash_key: Option<String>,
    at: &str,
) -> Result<NewRecord, StreamError> {
    Ok(NewRecord { data: data(data_b64, at)?, partition_key: partition_key.unwrap_or_default(), explicit_hash_key })
}

async fn run(svc: &Arc<StreamService>, call: KinesisCall, rid: &str) -> Result<Response<bytes::Bytes>, StreamError> {
    use KinesisCall as C;
    let op = call.operation();
    Ok(match call {
        C::CreateStream(i) => {
            let on_demand = match i.stream_mode_details.as_ref().map(|d| d.stream_mode.as_str()) {
                // Neither a mode nor a shard count: AWS makes an on-demand stream of 4 shards
                // (LocalStack's AWS-validated test_kinesis.snapshot.json,
                // test_create_stream_without_shard_count).
                None => i.shard_count.is_none(),
                Some("PROVISIONED") => false,
                Some("ON_DEMAND") => true,
                Some(other) => {
                    return Err(StreamError::Validation(format!(
                        "1 validation error detected: Value '{other}' at 'streamModeDetails.streamMode' failed to satisfy constraint: Member must satisfy enum value set: [PROVISIONED, ON_DEMAND]"
                    )))
                }
            };
            let shard_count = match (on_demand, i.shard_count) {
                (true, Some(_)) => {
                    return Err(StreamError::InvalidArgument("ShardCount should not be specified for stream in ON_DEMAND mode.".into()))
                }
                (true, None) => None,
                (false, Some(n)) => Some(u32::try_from(n).map_err(|_| StreamError::InvalidArgument(format!("Invalid ShardCount {n}.")))?),
                (false, None) => return Err(StreamError::InvalidArgument("ShardCount is required for stream in PROVISIONED mode.".into())),
            };
            let mode = if on_demand { StreamMode::OnDemand } else { StreamMode::Provisioned };
            svc.create_stream(CreateStream { name: i.stream_name, shard_count, mode, tags: i.tags.unwrap_or_default() }).await?;
            reply(op, rid, &Empty {})
        }
        C::DeleteStream(i) => {
            svc.delete_stream(&i.stream.name()?).await?;
            reply(op, rid, &Empty {})
        }
        C::DescribeStream(i) => {
            let info = svc.describe_stream(&i.stream.name()?, i.limit.map(|l| l as usize), i.exclusive_start_shard_id).await?;
            reply(op, rid, &describe(&info))
        }
        C::DescribeStreamSummary(i) => {
            let info = svc.describe_stream_summary(&i.stream.name()?).await?;
            reply(
                op,
                rid,
                &DescribeStreamSummaryOutput {
                    stream_description_summary: StreamDescriptionSummary {
                        stream_name: &info.name,
                        stream_arn: &info.arn,
                        stream_status: info.status,
                        stream_mode_details: mode(info.mode),
                        retention_period_hours: info.retention_hours,
                        stream_creation_timestamp: seconds(info.created_ms),
                        enhanced_monitoring: [EnhancedMetrics { shard_level_metrics: [] }],
                        encryption_type: "NONE",
                        open_shard_count: info.open_shard_count,
                        consumer_count: 0,
                    },
                },
            )
        }
        C::ListStreams(i) => {
            if i.next_token.is_some() && i.exclusive_start_stream_name.is_some() {
                return Err(StreamError::InvalidArgument("NextToken and ExclusiveStartStreamName cannot be provided together.".into()));
            }
            let (page, more, next) = svc.list_streams(i.limit.map(|l| l as usize), i.exclusive_start_stream_name, i.next_token).await?;
            reply(
                op,
                rid,
                &ListStreamsOutput {
                    stream_names: page.iter().map(|s| s.name.as_str()).collect(),
                    has_more_streams: more,
                    next_token: next,
                    stream_summaries: page
                        .iter()
                        .map(|s| StreamSummaryOut {
                            stream_name: &s.name,
                            stream_arn: &s.arn,
                            stream_status: s.status,
                            stream_mode_details: mode(s.mode),
                            stream_creation_timestamp: seconds(s.created_ms),
                        })
                        .collect(),
                },
            )
        }
        C::ListShards(i) => {
            let named = i.stream.stream_name.is_some() || i.stream.stream_arn.is_some();
            let input = match &i.next_token {
                Some(_) if named => {
                    return Err(StreamError::InvalidArgument("NextToken and StreamName cannot be provided together.".into()))
                }
                Some(_) if i.exclusive_start_shard_id.is_some() || i.shard_filter.is_some() || i.stream_creation_timestamp.is_some() => {
                    return Err(StreamError::InvalidArgument(
                        "NextToken cannot be provided together with ExclusiveStartShardId, ShardFilter or StreamCreationTimestamp.".into(),
                    ))
                }
                Some(t) => {
                    ListShards { next_token: Some(t.clone()), max_results: i.max_results.map(|m| m as usize), ..ListShards::default() }
                }
                None if !named => return Err(StreamError::InvalidArgument("Either NextToken or StreamName should be provided.".into())),
                None => ListShards {
                    stream: Some(i.stream.name()?),
                    next_token: None,
                    exclusive_start_shard_id: i.exclusive_start_shard_id,
                    max_results: i.max_results.map(|m| m as usize),
                    filter: i.shard_filter.map(shard_filter).transpose()?,
                },
            };
            let (shards, next) = svc.list_shards(input).await?;
            reply(op, rid, &ListShardsOutput { shards: shards.iter().map(Shard::new).collect(), next_token: next })
        }
        C::PutRecord(i) => {
            let name = i.stream.name()?;
            let record = new_record(&i.data, i.partition_key, i.explicit_hash_key, "data")?;
            let (shard_id, sequence_number) = svc.put_record(&name, record, i.sequence_number_for_ordering).await?;
            reply(op, rid, &PutRecordOutput { shard_id, sequence_number, encryption_type: "NONE" })
        }
        C::PutRecords(i) => {
            let name = i.stream.name()?;
            let mut records = Vec::with_capacity(i.records.len());
            let mut total = 0;
            for (n, r) in i.records.into_iter().enumerate() {
                let record = new_record(&r.data, r.partition_key, r.explicit_hash_key, &format!("records.{}.member.data", n + 1))?;
                total += record.data.len() + record.partition_key.len();
                records.push(record);
            }
            if total > MAX_PUT_RECORDS_BYTES {
                return Err(StreamError::InvalidArgument(format!(
                    "Records size exceeds {} MB limit",
                    MAX_PUT_RECORDS_BYTES / (1024 * 1024)
                )));
            }
            let outcomes = svc.put_records(&name, records).await?;
            let failed = outcomes.iter().filter(|o| matches!(o, PutOutcome::Failed { .. })).count();
            let records = outcomes
                .into_iter()
                .map(|o| match o {
                    PutOutcome::Stored { shard_id, sequence_number } => PutRecordsResultEntry {
                        sequence_number: Some(sequence_number),
                        shard_id: Some(shard_id),
                        error_code: None,
                        error_message: None,
                    },
                    PutOutcome::Failed { code, message } => PutRecordsResultEntry {
                        sequence_number: None,
                        shard_id: None,
                        error_code: Some(code),
                        error_message: Some(message),
                    },
                })
                .collect();
            reply(op, rid, &PutRecordsOutput { failed_record_count: failed, records, encryption_type: "NONE" })
        }
        C::GetShardIterator(i) => {
            let name = i.stream.name()?;
            let kind = i.shard_iterator_type.as_str();
            let start = match (kind, i.starting_sequence_number) {
                ("AT_SEQUENCE_NUMBER", Some(s)) => IteratorStart::AtSequence(s),
                ("AFTER_SEQUENCE_NUMBER", Some(s)) => IteratorStart::AfterSequence(s),
                ("TRIM_HORIZON" | "LATEST", Some(_)) | ("AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER", None) => {
                    let also = if kind.ends_with("SEQUENCE_NUMBER") { "no" } else { "also a" };
                    return Err(StreamError::InvalidArgument(format!(
                        "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified {kind} and {also} StartingSequenceNumber."
                    )));
                }
                ("TRIM_HORIZON", None) => IteratorStart::TrimHorizon,
                ("LATEST", None) => IteratorStart::Latest,
                ("AT_TIMESTAMP", _) => match &i.timestamp {
                    Some(t) => IteratorStart::AtTimestamp(timestamp(t, "Timestamp")?),
                    None => {
                        return Err(StreamError::InvalidArgument(
                            "Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. Current request has no timestamp parameter."
                                .into(),
                        ))
                    }
                },
                _ => unreachable!("the shard iterator type was checked against the model"),
            };
            let shard_iterator = svc.get_shard_iterator(&name, &i.shard_id, start).await?;
            reply(op, rid, &GetShardIteratorOutput { shard_iterator })
        }
        C::GetRecords(i) => {
            let page = svc.get_records(&i.shard_iterator, i.limit.map(|l| l as usize)).await?;
            let b64 = base64::engine::general_purpose::STANDARD;
            reply(
                op,
                rid,
                &GetRecordsOutput {
                    records: page
                        .records
                        .into_iter()
                        .map(|r| RecordOut {
                            sequence_number: r.sequence_number,
                            approximate_arrival_timestamp: seconds(r.arrival_ms),
                            data: b64.encode(&r.data),
                            partition_key: r.partition_key,
                        })
                        .collect(),
                    next_shard_iterator: page.next_iterator,
                    millis_behind_latest: page.millis_behind_latest,
                    child_shards: page
                        .child_shards
                        .iter()
                        .map(|c| ChildShardOut {
                            shard_id: &c.shard_id,
                            parent_shards: &c.parent_shards,
                            hash_key_range: HashKeyRange { starting_hash_key: &c.starting_hash_key, ending_hash_key: &c.ending_hash_key },
                        })
                        .collect(),
                },
            )
        }
        C::IncreaseStreamRetentionPeriod(i) => {
            svc.increase_retention(&i.stream.name()?, i.retention_period_hours).await?;
            reply(op, rid, &Empty {})
        }
        C::DecreaseStreamRetentionPeriod(i) => {
            svc.decrease_retention(&i.stream.name()?, i.retention_period_hours).await?;
            reply(op, rid, &Empty {})
        }
        C::SplitShard(i) => {
            svc.split_shard(&i.stream.name()?, &i.shard_to_split, &i.new_starting_hash_key).await?;
            reply(op, rid, &Empty {})
        }
        C::MergeShards(i) => {
            svc.merge_shards(&i.stream.name()?, &i.shard_to_merge, &i.adjacent_shard_to_merge).await?;
            reply(op, rid, &Empty {})
        }
        C::UpdateShardCount(i) => {
            let name = i.stream.name()?;
            let target = u32::try_from(i.target_shard_count).unwrap_or(u32::MAX);
            let (current, target) = svc.update_shard_count(&name, target).await?;
            let stream_arn = svc.stream_arn(&name);
            reply(
                op,
                rid,
                &UpdateShardCountOutput { stream_name: &name, current_shard_count: current, target_shard_count: target, stream_arn },
            )
        }
        C::AddTagsToStream(i) => {
            svc.add_tags(&i.stream.name()?, i.tags).await?;
            reply(op, rid, &Empty {})
        }
        C::RemoveTagsFromStream(i) => {
            svc.remove_tags(&i.stream.name()?, i.tag_keys).await?;
            reply(op, rid, &Empty {})
        }
        C::ListTagsForStream(i) => {
            let (tags, more) = svc.list_tags(&i.stream.name()?, i.exclusive_start_tag_key, i.limit.map(|l| l as usize)).await?;
            reply(op, rid, &ListTagsOutput { tags: tags.into_iter().map(|(key, value)| Tag { key, value }).collect(), has_more_tags: more })
        }
        C::TagResource(i) => {
            svc.add_tags(&tagged_stream(&i.resource_arn)?, i.tags).await?;
            reply(op, rid, &Empty {})
        }
        C::UntagResource(i) => {
            svc.remove_tags(&tagged_stream(&i.resource_arn)?, i.tag_keys).await?;
            reply(op, rid, &Empty {})
        }
        C::ListTagsForResource(i) => {
            let (tags, _) = svc.list_tags(&tagged_stream(&i.resource_arn)?, None, None).await?;
            reply(op, rid, &ListTagsForResourceOutput { tags: tags.into_iter().map(|(key, value)| Tag { key, value }).collect() })
        }
    })
}

/// Runs a request and answers in Kinesis's shapes.
pub async fn execute(svc: &Arc<StreamService>, req: KinesisRequest) -> Response<Body> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let result = match req.call {
        Ok(call) => run(svc, call, &request_id).await,
        Err(e) => Err(e),
    };
    let response = result.unwrap_or_else(|e| {
        if let StreamError::Internal(why) = &e {
            tracing::error!(operation = req.operation, "kinesis: {why}");
        }
        encode::error(&KINESIS, Protocol::AwsJson1_1, &e, &request_id)
    });
    response.map(Body::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks_requests() {
        let cases: &[(&str, &str, &str)] = &[
            ("CreateStream", r#"{"StreamName":"s","ShardCount":1}"#, "ok"),
            ("CreateStream", r#"{"ShardCount":1}"#, "1 validation error detected: Value null at 'streamName' failed to satisfy constraint: Member must not be null"),
            ("CreateStream", r#"{"StreamName":"a b","ShardCount":0}"#, "2 validation errors detected: Value 'a b' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; Value '0' at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1"),
            ("PutRecord", r#"{"StreamName":"s","Data":"aGk=","PartitionKey":"k"}"#, "ok"),
            ("PutRecord", r#"{"StreamName":"s","Data":"aGk=","PartitionKey":""}"#, "1 validation error detected: Value '' at 'partitionKey' failed to satisfy constraint: Member must have length greater than or equal to 1"),
            ("PutRecord", r#"{"StreamName":"s","Data":"aGk=","PartitionKey":"k","ExplicitHashKey":"-1"}"#, "1 validation error detected: Value '-1' at 'explicitHashKey' failed to satisfy constraint: Member must satisfy regular expression pattern: ^(0|([1-9]\\d{0,38}))$"),
            ("PutRecords", r#"{"StreamName":"s","Records":[]}"#, "1 validation error detected: Value at 'records' failed to satisfy constraint: Member must have length greater than or equal to 1"),
            ("GetShardIterator", r#"{"StreamName":"s","ShardId":"shardId-000000000000","ShardIteratorType":"OLDEST"}"#, "1 validation error detected: Value 'OLDEST' at 'shardIteratorType' failed to satisfy constraint: Member must satisfy enum value set: [AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, TRIM_HORIZON, LATEST, AT_TIMESTAMP]"),
            ("GetRecords", r#"{"ShardIterator":"x","Limit":10001}"#, "1 validation error detected: Value '10001' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 10000"),
            ("GetRecords", r#"{"ShardIterator":1}"#, "SerializationException"),
            ("SubscribeToShard", "{}", "Operation SubscribeToShard is not implemented by Nimbus yet."),
            ("Bogus", "{}", "Operation Bogus is not supported by this endpoint."),
        ];
        for (op, body, want) in cases {
            let got = match parse(op, body.as_bytes()).call {
                Ok(_) => "ok".to_string(),
                Err(StreamError::Serialization(_)) => "SerializationException".to_string(),
                Err(e) => e.to_string(),
            };
            assert_eq!(got, *want, "{op} {body}");
        }
    }

    #[test]
    fn streams_by_name_or_arn() {
        let r = |name: Option<&str>, arn: Option<&str>| {
            StreamRef { stream_name: name.map(str::to_string), stream_arn: arn.map(str::to_string) }.name().map_err(|e| e.to_string())
        };
        let arn = "arn:aws:kinesis:us-east-1:123456789012:stream/orders";
        assert_eq!(r(Some("orders"), None), Ok("orders".into()));
        assert_eq!(r(None, Some(arn)), Ok("orders".into()));
        assert_eq!(r(Some("orders"), Some(arn)), Ok("orders".into()));
        assert_eq!(r(Some("other"), Some(arn)), Err(format!("StreamARN {arn} does not match StreamName other.")));
        let sqs = "arn:aws:sqs:us-east-1:123456789012:orders";
        assert_eq!(r(None, Some(sqs)), Err(format!("StreamARN {sqs} is not a valid Kinesis stream ARN.")));
        assert_eq!(r(None, None), Err("Either StreamName or StreamARN should be provided.".into()));
    }
}

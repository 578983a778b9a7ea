//! DynamoDB Streams' operations on the table service: ListStreams, DescribeStream,
//! GetShardIterator and GetRecords over the stream records each item change commits with
//! it, the 24-hour retention sweep, and [`TableService::read_stream`], the reader Lambda's
//! event-source mapping polls a stream with (from a checkpoint, no iterator, no HTTP).

use super::{validation, TableService};
use crate::error::TableError;
use crate::schema::KeySchema;
use crate::store::{in_tx, StreamRow, TableTx};
use crate::streams::*;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn no_stream(arn: &str) -> TableError {
    TableError::NotFound(format!("Requested resource not found: Stream: {arn} not found"))
}

fn no_shard() -> TableError {
    TableError::NotFound("Requested resource not found: Shard does not exist".into())
}

fn trimmed() -> TableError {
    TableError::TrimmedDataAccess("The operation attempted to read past the oldest stream record in a shard.".into())
}

/// `1 validation error detected: Value '<n>' at '<member>' …` for a number out of its range.
fn check_range(value: Option<i64>, member: &str, max: i64) -> Result<Option<usize>, TableError> {
    match value {
        None => Ok(None),
        Some(n) if n < 1 => Err(validation(format!(
            "1 validation error detected: Value '{n}' at '{member}' failed to satisfy constraint: Member must have value greater than or equal to 1"
        ))),
        Some(n) if n > max => Err(validation(format!(
            "1 validation error detected: Value '{n}' at '{member}' failed to satisfy constraint: Member must have value less than or equal to {max}"
        ))),
        Some(n) => Ok(Some(n as usize)),
    }
}

fn key_schema(key: &KeySchema) -> Vec<crate::request::KeySchemaElement> {
    super::key_schema_elements(key)
}

fn label_of(arn: &str) -> String {
    arn.rsplit_once("/stream/").map(|(_, label)| label.to_string()).unwrap_or_default()
}

/// Where a reader starts in a stream (its one shard).
#[derive(Debug, Clone, PartialEq)]
pub enum ReadFrom {
    /// The oldest record kept.
    TrimHorizon,
    /// After the newest record now.
    Latest,
    /// The first record made at or after this time (epoch seconds).
    AtTimestamp(f64),
    /// The record with this sequence number, and on.
    AtSequence(String),
    /// After the record with this sequence number (a checkpoint).
    AfterSequence(String),
}

/// A page of a stream read by [`TableService::read_stream`].
#[derive(Debug, Clone)]
pub struct StreamPage {
    /// The records, in commit order.
    pub records: Vec<Record>,
    /// Where to read next (`ReadFrom::AfterSequence(next)`), to be kept as the checkpoint once
    /// these records are handled; None once the stream is disabled and read to its end.
    pub next: Option<String>,
    /// The stream's one shard.
    pub shard_id: String,
}

/// A page of records after `after`: at most `limit` and about 1 MB, and the position after them.
async fn read_page(
    tx: &mut impl TableTx,
    row: &StreamRow,
    region: &str,
    after: i64,
    limit: usize,
) -> Result<(Vec<Record>, i64, bool), TableError> {
    if after < row.trimmed_through {
        return Err(trimmed());
    }
    let mut records = Vec::new();
    let mut bytes = 0u64;
    let mut position = after;
    for r in tx.stream_records(row.id, after, limit).await? {
        let record = record(&row.arn, region, r.seq, r.created_at, r.record)
            .map_err(|e| TableError::Internal(format!("stream record {}: {e}", r.seq)))?;
        if !records.is_empty() && bytes + record.dynamodb.size_bytes > 1024 * 1024 {
            break;
        }
        bytes += record.dynamodb.size_bytes;
        position = r.seq;
        records.push(record);
    }
    // A disabled stream read to its end has nothing more to give.
    let ended = row.disabled_at.is_some() && tx.stream_bounds(row.id).await?.1.is_none_or(|last| position >= last);
    Ok((records, position, ended))
}

/// The row id a reader starting at `from` reads after.
async fn resolve(tx: &mut impl TableTx, row: &StreamRow, from: &ReadFrom) -> Result<i64, TableError> {
    let parse = |text: &str| parse_sequence_number(text).ok_or_else(|| validation(format!("Invalid SequenceNumber: {text}")));
    Ok(match from {
        ReadFrom::TrimHorizon => row.trimmed_through,
        ReadFrom::Latest => tx.stream_bounds(row.id).await?.1.unwrap_or(0).max(row.trimmed_through),
        ReadFrom::AtTimestamp(at) => match tx.first_record_at(row.id, *at).await? {
            Some(seq) => (seq - 1).max(row.trimmed_through),
            None => tx.stream_bounds(row.id).await?.1.unwrap_or(0).max(row.trimmed_through),
        },
        ReadFrom::AtSequence(text) => {
            let seq = parse(text)?;
            if seq <= row.trimmed_through {
                return Err(trimmed());
            }
            seq - 1
        }
        ReadFrom::AfterSequence(text) => {
            let seq = parse(text)?;
            if seq < row.trimmed_through {
                return Err(trimmed());
            }
            seq
        }
    })
}

impl TableService {
    /// ListStreams: the account's streams (of one table), oldest first, disabled ones for as
    /// long as their records are kept.
    pub async fn list_streams(&self, input: ListStreamsInput) -> Result<ListStreamsOutput, TableError> {
        let limit = check_range(input.limit, "limit", MAX_PAGE as i64)?.unwrap_or(MAX_PAGE);
        in_tx!(&self.db, false, |tx| {
            let rows = tx.streams(input.table_name.as_deref()).await?;
            if let Some(name) = &input.table_name {
                if rows.is_empty() && tx.find_table(name).await?.is_none() {
                    return Err(TableError::no_such_table(name));
                }
            }
            let start = match &input.exclusive_start_stream_arn {
                None => 0,
                Some(arn) => rows.iter().position(|r| &r.arn == arn).map(|i| i + 1).ok_or_else(|| no_stream(arn))?,
            };
            let page: Vec<&StreamRow> = rows[start..].iter().take(limit).collect();
            let more = rows.len() > start + page.len();
            Ok(ListStreamsOutput {
                last_evaluated_stream_arn: more.then(|| page.last().map(|r| r.arn.clone())).flatten(),
                streams: page
                    .into_iter()
                    .map(|r| StreamSummary { stream_arn: r.arn.clone(), table_name: r.table_name.clone(), stream_label: label_of(&r.arn) })
                    .collect(),
            })
        })
    }

    /// DescribeStream: the stream and its one shard (closed, with an ending sequence number,
    /// once the stream is disabled).
    pub async fn describe_stream(&self, input: DescribeStreamInput) -> Result<DescribeStreamOutput, TableError> {
        check_range(input.limit, "limit", MAX_PAGE as i64)?;
        in_tx!(&self.db, false, |tx| {
            let row = tx.stream_by_arn(&input.stream_arn).await?.ok_or_else(|| no_stream(&input.stream_arn))?;
            let shard_id = shard_id(&row.arn, row.created_at);
            let (first, last) = tx.stream_bounds(row.id).await?;
            let start = match first {
                Some(seq) => seq,
                None if row.trimmed_through > 0 => row.trimmed_through + 1,
                None => tx.last_sequence(row.id).await? + 1,
            };
            let shard = Shard {
                shard_id: shard_id.clone(),
                sequence_number_range: SequenceNumberRange {
                    starting_sequence_number: Some(sequence_number(start)),
                    ending_sequence_number: row.disabled_at.map(|_| sequence_number(last.unwrap_or(start))),
                },
                parent_shard_id: None,
            };
            // Children of the one shard (CHILD_SHARDS) and shards after it: none.
            let children = input.shard_filter.as_ref().is_some_and(|f| f.kind.as_deref() == Some("CHILD_SHARDS"));
            let past = input.exclusive_start_shard_id.is_some();
            let shards = if children || past { Vec::new() } else { vec![shard] };
            Ok(DescribeStreamOutput {
                stream_description: StreamDescription {
                    stream_label: label_of(&row.arn),
                    stream_status: if row.disabled_at.is_some() { "DISABLED" } else { "ENABLED" }.into(),
                    stream_view_type: row.view_type.clone(),
                    creation_request_date_time: row.created_at,
                    table_name: row.table_name.clone(),
                    key_schema: key_schema(&row.key),
                    shards,
                    last_evaluated_shard_id: None,
                    stream_arn: row.arn,
                },
            })
        })
    }

    /// GetShardIterator.
    pub async fn get_shard_iterator(&self, input: GetShardIteratorInput) -> Result<GetShardIteratorOutput, TableError> {
        let from = match input.shard_iterator_type.as_str() {
            "TRIM_HORIZON" => ReadFrom::TrimHorizon,
            "LATEST" => ReadFrom::Latest,
            kind @ ("AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER") => {
                let seq = input
                    .sequence_number
                    .clone()
                    .ok_or_else(|| validation(format!("SequenceNumber is required for ShardIteratorType {kind}")))?;
                for (bad, bound) in [(seq.len() < 21, "greater than or equal to 21"), (seq.len() > 40, "less than or equal to 40")] {
                    if bad {
                        return Err(validation(format!(
                            "1 validation error detected: Value '{seq}' at 'sequenceNumber' failed to satisfy constraint: Member must have length {bound}"
                        )));
                    }
                }
                if kind == "AT_SEQUENCE_NUMBER" {
                    ReadFrom::AtSequence(seq)
                } else {
                    ReadFrom::AfterSequence(seq)
                }
            }
            "AT_TIMESTAMP" => {
                let at = match &input.timestamp {
                    Some(serde_json::Value::Number(n)) => n.as_f64(),
                    Some(serde_json::Value::String(s)) => s.parse::<f64>().ok(),
                    _ => None,
                };
                ReadFrom::AtTimestamp(at.ok_or_else(|| validation("Timestamp is required for ShardIteratorType AT_TIMESTAMP"))?)
            }
            other => {
                return Err(validation(format!(
                    "1 validation error detected: Value '{other}' at 'shardIteratorType' failed to satisfy constraint: Member must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, AT_SEQUENCE_NUMBER, AT_TIMESTAMP, LATEST, TRIM_HORIZON]"
                )))
            }
        };
        let position = in_tx!(&self.db, false, |tx| {
            let row = tx.stream_by_arn(&input.stream_arn).await?.ok_or_else(|| no_stream(&input.stream_arn))?;
            if input.shard_id != shard_id(&row.arn, row.created_at) {
                return Err(no_shard());
            }
            let after = resolve(tx, &row, &from).await?;
            Ok(IteratorPosition { stream_id: row.id, arn: row.arn, after, issued_ms: now_ms() })
        })?;
        Ok(GetShardIteratorOutput { shard_iterator: self.stream_key.encode(&position) })
    }

    /// GetRecords: up to `Limit` records (at most 1,000 and about 1 MB) from the iterator's
    /// position, and the iterator for the next page (none once a disabled stream is read to
    /// its end).
    pub async fn get_records(&self, input: GetRecordsInput) -> Result<GetRecordsOutput, TableError> {
        let limit = check_range(input.limit, "limit", MAX_GET_RECORDS as i64)?.unwrap_or(MAX_GET_RECORDS);
        if input.shard_iterator.len() > 2048 {
            return Err(validation(format!(
                "1 validation error detected: Value '{}' at 'shardIterator' failed to satisfy constraint: Member must have length less than or equal to 2048",
                input.shard_iterator
            )));
        }
        let now = now_ms();
        let position = self.stream_key.decode(&input.shard_iterator, now).map_err(|r| match r {
            IteratorRefusal::Invalid => validation("Invalid ShardIterator"),
            IteratorRefusal::OtherRun | IteratorRefusal::Expired => TableError::ExpiredIterator("Shard iterator has expired".into()),
        })?;
        let region = self.region.clone();
        let at = position.clone();
        let (records, after, ended) = in_tx!(&self.db, false, |tx| {
            let row = tx.stream_by_arn(&at.arn).await?.filter(|r| r.id == at.stream_id).ok_or_else(|| no_stream(&at.arn))?;
            read_page(tx, &row, &region, at.after, limit).await
        })?;
        let next = (!ended).then(|| self.stream_key.encode(&IteratorPosition { after, issued_ms: now, ..position }));
        Ok(GetRecordsOutput { records, next_shard_iterator: next })
    }

    /// Reads a stream for a poller (Lambda's event-source mapping): up to `limit` records
    /// (at most 1,000 and about 1 MB) from `from`, with no iterator to keep alive. The page's
    /// `next` is the checkpoint to resume from with `ReadFrom::AfterSequence`; it never
    /// expires (until the records after it are trimmed: `TrimmedDataAccessException`).
    pub async fn read_stream(&self, stream_arn: &str, from: ReadFrom, limit: usize) -> Result<StreamPage, TableError> {
        let (arn, region) = (stream_arn.to_string(), self.region.clone());
        let limit = limit.clamp(1, MAX_GET_RECORDS);
        in_tx!(&self.db, false, |tx| {
            let row = tx.stream_by_arn(&arn).await?.ok_or_else(|| no_stream(&arn))?;
            let after = resolve(tx, &row, &from).await?;
            let (records, after, ended) = read_page(tx, &row, &region, after, limit).await?;
            Ok(StreamPage { records, next: (!ended).then(|| sequence_number(after)), shard_id: shard_id(&row.arn, row.created_at) })
        })
    }

    /// The retention sweep: removes stream records older than `retention_secs` (AWS keeps
    /// them 24 hours: [`RETENTION_SECS`]) and disabled streams left empty. Returns how many
    /// records went.
    pub async fn sweep_stream_records(&self, retention_secs: f64) -> Result<usize, TableError> {
        let before = super::now() - retention_secs;
        in_tx!(&self.db, false, |tx| tx.trim_streams(before).await)
    }
}

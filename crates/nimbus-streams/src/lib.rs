//! Nimbus's Kinesis-compatible data streams: the domain, no wire formats. [`StreamService`]
//! keeps streams, their shards (hash-key ranges, parents and children) and their records
//! durably in SQLite (`<data>/streams.db`) and implements the Kinesis Data Streams actions
//! with AWS's semantics; the HTTP edge (`nimbus-api::kinesis`) parses requests into its typed
//! inputs and renders its typed outputs. Stream pollers (event-source mappings) read a shard
//! from a position without iterators: [`StreamService::read_shard`], [`StreamService::shards`].

mod error;
pub mod hashkey;
pub mod iterator;
mod routes;
pub mod sequence;
mod service;
pub mod shards;
mod store;
pub mod throttle;

pub use error::StreamError;
pub use service::{
    ChildShard, Clock, CreateStream, IteratorStart, ListShards, NewRecord, PutOutcome, ReadFrom, RecordOut, RecordsPage, ShardFilter,
    ShardInfo, StreamConfig, StreamInfo, StreamMode, StreamService, StreamSummary, SystemClock,
};

#[cfg(test)]
mod tests;

//! Per-shard write limits: a shard takes 1 MiB and 1,000 records per second (AWS's limits,
//! configurable). Each shard has two token buckets that hold at most one second's worth and
//! refill continuously; a record that does not fit is refused with
//! `ProvisionedThroughputExceededException`, and takes nothing. A
//! full bucket admits any single record, so a record of the maximum size always fits alone.

use std::collections::HashMap;

/// The write limits of one shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub bytes_per_second: u64,
    pub records_per_second: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { bytes_per_second: 1024 * 1024, records_per_second: 1000 }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    bytes: f64,
    records: f64,
    at_ms: i64,
}

/// The buckets of every shard written to, by (stream id, shard index).
#[derive(Debug, Default)]
pub struct Throttle {
    limits: Limits,
    buckets: HashMap<(i64, u32), Bucket>,
}

impl Throttle {
    pub fn new(limits: Limits) -> Throttle {
        Throttle { limits, buckets: HashMap::new() }
    }

    /// Takes one record of `size` bytes (data and partition key) from the shard's buckets at
    /// `now_ms`; false (and nothing taken) when it does not fit.
    pub fn admit(&mut self, stream: i64, shard: u32, size: u64, now_ms: i64) -> bool {
        let (max_bytes, max_records) = (self.limits.bytes_per_second as f64, self.limits.records_per_second as f64);
        let b = self.buckets.entry((stream, shard)).or_insert(Bucket { bytes: max_bytes, records: max_records, at_ms: now_ms });
        let elapsed = (now_ms - b.at_ms).max(0) as f64 / 1000.0;
        b.bytes = (b.bytes + elapsed * max_bytes).min(max_bytes);
        b.records = (b.records + elapsed * max_records).min(max_records);
        b.at_ms = b.at_ms.max(now_ms);
        // A full bucket takes any one record (one as large as the limit, with its key, fits).
        if b.records < 1.0 || (b.bytes < size as f64 && b.bytes < max_bytes) {
            return false;
        }
        b.records -= 1.0;
        b.bytes -= size as f64;
        true
    }

    /// Forgets a stream's shards (deleted).
    pub fn forget(&mut self, stream: i64) {
        self.buckets.retain(|(s, _), _| *s != stream);
    }
}

//! Where a record goes: Kinesis maps a partition key to a 128-bit hash key (the MD5 of its
//! UTF-8 bytes, read as a big-endian integer) and puts the record in the open shard whose
//! hash-key range holds it; a stream's first shards split the 128-bit space evenly.

use md5::{Digest, Md5};

/// The hash key of a partition key: its MD5 as an unsigned 128-bit integer.
pub fn of_partition_key(partition_key: &str) -> u128 {
    u128::from_be_bytes(Md5::digest(partition_key.as_bytes()).into())
}

/// A decimal hash key as the API carries it (`ExplicitHashKey`, `NewStartingHashKey`);
/// None when it is not a number in `[0, 2^128-1]`.
pub fn parse(decimal: &str) -> Option<u128> {
    if decimal.is_empty() || !decimal.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    decimal.parse::<u128>().ok()
}

/// The ranges of `count` shards splitting the 128-bit space evenly, as AWS makes them:
/// each `floor(2^128 / count)` wide, the last one taking the remainder up to `2^128 - 1`.
pub fn uniform_ranges(count: u32) -> Vec<(u128, u128)> {
    let count = u128::from(count.max(1));
    if count == 1 {
        return vec![(0, u128::MAX)];
    }
    // floor(2^128 / n) without 2^128: (2^128 - 1) / n, plus one when n divides 2^128 exactly
    // (that is, when (2^128 - 1) mod n is n - 1).
    let width = u128::MAX / count + u128::from(u128::MAX % count == count - 1);
    (0..count).map(|i| (width * i, if i + 1 == count { u128::MAX } else { width * (i + 1) - 1 })).collect()
}

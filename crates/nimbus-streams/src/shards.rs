//! Resharding as range arithmetic, no IO: SplitShard closes a shard and opens two children
//! that divide its hash-key range; MergeShards closes two adjacent shards and opens one child
//! covering both; UpdateShardCount (UNIFORM_SCALING) is a series of those two steps that ends
//! with `target` open shards splitting the 128-bit space evenly (as AWS does it), so every
//! child has at most two parents and readers can follow the lineage parent first.

use crate::hashkey::uniform_ranges;

/// An open shard: its index and hash-key range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenShard {
    pub ix: u32,
    pub start: u128,
    pub end: u128,
}

/// One resharding step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `parent` closes; `children` (lower half first) open.
    Split { parent: u32, children: [OpenShard; 2] },
    /// `parent` and `adjacent` close; `child` opens (its ParentShardId is `parent`).
    Merge { parent: u32, adjacent: u32, child: OpenShard },
}

/// Why a split is refused.
#[derive(Debug, PartialEq, Eq)]
pub struct BadSplit;

/// Splits `shard` so the upper child starts at `at`, which must be greater than one plus the
/// shard's start and less than its end (AWS's rule). Children take `*next` and `*next + 1`.
pub fn split(shard: &OpenShard, at: u128, next: &mut u32) -> Result<Change, BadSplit> {
    if at <= shard.start.saturating_add(1) || at >= shard.end {
        return Err(BadSplit);
    }
    Ok(split_unchecked(shard, at, next))
}

fn split_unchecked(shard: &OpenShard, at: u128, next: &mut u32) -> Change {
    let low = OpenShard { ix: *next, start: shard.start, end: at - 1 };
    let high = OpenShard { ix: *next + 1, start: at, end: shard.end };
    *next += 2;
    Change::Split { parent: shard.ix, children: [low, high] }
}

/// Merges two adjacent shards (in either order) into one child numbered `*next`; None when
/// their ranges do not touch.
pub fn merge(shard: &OpenShard, adjacent: &OpenShard, next: &mut u32) -> Option<Change> {
    let (low, high) = if shard.start < adjacent.start { (shard, adjacent) } else { (adjacent, shard) };
    if low.end.checked_add(1) != Some(high.start) {
        return None;
    }
    let child = OpenShard { ix: *next, start: low.start, end: high.end };
    *next += 1;
    Some(Change::Merge { parent: shard.ix, adjacent: adjacent.ix, child })
}

/// The steps that take the open shards `open` (covering the whole space) to `target` even
/// ones: first split wherever a target range starts inside a shard, then merge, left to
/// right, the pieces each target range is made of.
pub fn uniform(open: &[OpenShard], target: u32, next: &mut u32) -> Vec<Change> {
    let mut shards: Vec<OpenShard> = open.to_vec();
    shards.sort_by_key(|s| s.start);
    let ranges = uniform_ranges(target);
    let mut changes = Vec::new();
    for &(start, _) in ranges.iter().skip(1) {
        if let Some(pos) = shards.iter().position(|s| s.start < start && start <= s.end) {
            let change = split_unchecked(&shards[pos], start, next);
            if let Change::Split { children, .. } = &change {
                shards.splice(pos..=pos, children.iter().copied());
            }
            changes.push(change);
        }
    }
    for &(start, end) in &ranges {
        loop {
            let pieces: Vec<usize> = (0..shards.len()).filter(|&i| shards[i].start >= start && shards[i].end <= end).collect();
            if pieces.len() < 2 {
                break;
            }
            let (a, b) = (shards[pieces[0]], shards[pieces[1]]);
            let change = merge(&a, &b, next).expect("pieces of one range are adjacent");
            if let Change::Merge { child, .. } = &change {
                shards.splice(pieces[0]..=pieces[1], [*child]);
            }
            changes.push(change);
        }
    }
    changes
}

//! Where a put goes, without reading every shard row: each stream's open shards (hash-key
//! ranges as `u128`, sorted) kept in memory. An entry is trusted only
//! while the stream's row still has the id and `next_shard` it was built from: every
//! reshard opens new shards (so moves `next_shard`), a deleted and recreated stream gets a
//! new id, and a reshard that rolls back restores both, so a stale entry is never used.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::StreamError;
use crate::store::{self, StreamRow, StreamTx};

/// An open shard as a put needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub ix: u32,
    pub start: u128,
    pub end: u128,
    pub created_ms: i64,
}

/// A stream's open shards, sorted by hash-key range.
#[derive(Debug)]
pub struct Routes {
    stream_id: i64,
    next_shard: u32,
    open: Vec<Route>,
}

impl Routes {
    fn build(stream: &StreamRow, shards: Vec<store::ShardRow>) -> Routes {
        let mut open: Vec<Route> = shards
            .into_iter()
            .filter(store::ShardRow::is_open)
            .map(|s| Route { ix: s.ix, start: s.start, end: s.end, created_ms: s.created_ms })
            .collect();
        open.sort_by_key(|r| r.start);
        Routes { stream_id: stream.id, next_shard: stream.next_shard, open }
    }

    /// The open shard whose range holds `key` (open shards cover the hash-key space
    /// without overlap).
    pub fn find(&self, key: u128) -> Option<&Route> {
        let at = self.open.partition_point(|r| r.end < key);
        self.open.get(at).filter(|r| r.start <= key)
    }
}

/// The writer thread's routes, by stream name.
#[derive(Default)]
pub struct RouteCache {
    by_name: Mutex<HashMap<String, Arc<Routes>>>,
}

impl RouteCache {
    /// The routes of `stream` (its row as just read in the job's transaction), built from
    /// its shard rows when missing or stale.
    pub async fn get(&self, tx: &mut impl StreamTx, stream: &StreamRow) -> Result<Arc<Routes>, StreamError> {
        {
            let by_name = self.by_name.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(r) = by_name.get(&stream.name).filter(|r| r.stream_id == stream.id && r.next_shard == stream.next_shard) {
                return Ok(r.clone());
            }
        }
        let routes = Arc::new(Routes::build(stream, tx.shards(stream.id).await?));
        self.by_name.lock().unwrap_or_else(|p| p.into_inner()).insert(stream.name.clone(), routes.clone());
        Ok(routes)
    }

    /// Forgets a deleted stream.
    pub fn forget(&self, name: &str) {
        self.by_name.lock().unwrap_or_else(|p| p.into_inner()).remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(ranges: &[(u32, u128, u128)]) -> Routes {
        let open = ranges.iter().map(|&(ix, start, end)| Route { ix, start, end, created_ms: 0 }).collect();
        Routes { stream_id: 1, next_shard: 9, open }
    }

    #[test]
    fn a_key_finds_the_shard_whose_range_holds_it() {
        let r = routes(&[(3, 0, 99), (5, 100, 199), (4, 200, u128::MAX)]);
        let cases = [(0, Some(3)), (99, Some(3)), (100, Some(5)), (150, Some(5)), (200, Some(4)), (u128::MAX, Some(4))];
        for (key, want) in cases {
            assert_eq!(r.find(key).map(|s| s.ix), want, "{key}");
        }
        let gap = routes(&[(1, 10, 20)]);
        assert_eq!(gap.find(5), None);
        assert_eq!(gap.find(21), None);
        assert_eq!(routes(&[]).find(0), None);
    }
}

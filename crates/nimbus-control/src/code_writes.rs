//! Locks by code digest, so a blob is never deleted between another writer's put of the
//! same bytes and the write of the record that refers to it.
//!
//! Blobs are shared by digest: two functions (or a function and a layer) with the same zip
//! have one blob, and a put of bytes already stored is a no-op. A collector deletes a blob
//! once no record refers to its digest; without these locks, a collector that looked just
//! before a new record was written would delete the blob that record needs. A writer holds
//! its digests (its code's, and the layers its record names) shared from before its put
//! to its record's write; a collector holds its digest alone from its look to its delete.
//! Writers never wait for each other. Striped: digests that share a stripe wait only for
//! collectors' short sections; a writer takes its stripes in ascending order, so writers
//! queued behind collectors cannot wait for each other in a circle.

use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

const STRIPES: usize = 32;

/// A writer's hold on its digests; let go when dropped.
pub(crate) struct Writing<'a> {
    _held: Vec<RwLockReadGuard<'a, ()>>,
}

/// A collector's hold on one digest.
pub(crate) type Collecting<'a> = RwLockWriteGuard<'a, ()>;

pub(crate) struct CodeWrites {
    stripes: [RwLock<()>; STRIPES],
}

impl Default for CodeWrites {
    fn default() -> Self {
        CodeWrites { stripes: std::array::from_fn(|_| RwLock::new(())) }
    }
}

impl CodeWrites {
    /// Holds `digests` against collection, waiting for collectors under way.
    pub(crate) async fn writing(&self, digests: &[&str]) -> Writing<'_> {
        let mut stripes: Vec<usize> = digests.iter().map(|d| stripe(d)).collect();
        stripes.sort_unstable();
        stripes.dedup();
        let mut held = Vec::with_capacity(stripes.len());
        for s in stripes {
            held.push(self.stripes[s].read().await);
        }
        Writing { _held: held }
    }

    /// Holds `digest` alone, waiting for its writers. Not reentrant: a writer must let go
    /// of its digests before it collects.
    pub(crate) async fn collecting(&self, digest: &str) -> Collecting<'_> {
        self.stripes[stripe(digest)].write().await
    }
}

fn stripe(digest: &str) -> usize {
    // FNV-1a: digests are hex already, but any string must land somewhere.
    let h = digest.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3));
    (h % STRIPES as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn waits<T>(f: impl std::future::Future<Output = T>) -> bool {
        tokio::time::timeout(Duration::from_millis(50), f).await.is_err()
    }

    #[tokio::test]
    async fn collectors_wait_for_writers_of_their_digest_and_nothing_else_waits() {
        let locks = CodeWrites::default();
        let a = "a".repeat(64);
        // A digest on another stripe than `a`.
        let b = (0..).map(|i| format!("{i:064x}")).find(|d| stripe(d) != stripe(&a)).unwrap();
        let writer = locks.writing(&[&a]).await;
        assert!(waits(locks.collecting(&a)).await, "a collector of the written digest waits");
        assert!(!waits(locks.collecting(&b)).await, "a collector of another digest goes on");
        assert!(!waits(locks.writing(&[&a, &b])).await, "another writer of the same digest goes on");
        drop(writer);
        let collector = locks.collecting(&a).await;
        assert!(waits(locks.writing(&[&b, &a])).await, "a writer waits for a collector of one of its digests");
        assert!(!waits(locks.writing(&[&b])).await, "a writer of other digests goes on");
        drop(collector);
        assert!(!waits(locks.writing(&[&a, &a])).await, "a digest named twice is held once");
    }

    #[test]
    fn stripes_spread_hex_digests() {
        let mut seen = [0u32; STRIPES];
        for i in 0..3_200u32 {
            seen[stripe(&format!("{:064x}", u128::from(i) * 0x9e37_79b9_7f4a_7c15))] += 1;
        }
        assert!(seen.iter().all(|&n| n > 40), "{seen:?}");
    }
}

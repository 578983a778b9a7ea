//! Locks by code digest, so a blob is never deleted between another writer's put of the
//! same bytes and the write of the record that refers to it.
//!
//! Blobs are shared by digest: two functions (or a function and a layer) with the same zip
//! have one blob, and a put of bytes already stored is a no-op. A collector deletes a blob
//! once no record refers to its digest; without these locks, a collector that looked just
//! before a new record was written would delete the blob that record needs. A writer holds
//! its digest's lock from its put to its record's write, a collector from its look to its
//! delete. Striped: digests that share a stripe only wait for each other's short sections.

use tokio::sync::{Mutex, MutexGuard};

const STRIPES: usize = 32;

/// Held while a digest's blob and the records referring to it change.
pub(crate) type CodeWrite<'a> = MutexGuard<'a, ()>;

pub(crate) struct CodeWrites {
    stripes: [Mutex<()>; STRIPES],
}

impl Default for CodeWrites {
    fn default() -> Self {
        CodeWrites { stripes: std::array::from_fn(|_| Mutex::new(())) }
    }
}

impl CodeWrites {
    /// Waits for `digest`'s lock. Not reentrant: a holder must let go before it collects.
    pub(crate) async fn lock(&self, digest: &str) -> CodeWrite<'_> {
        self.stripes[stripe(digest)].lock().await
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

    #[tokio::test]
    async fn a_digest_waits_for_its_holder_and_others_do_not() {
        let locks = CodeWrites::default();
        let a = "a".repeat(64);
        // A digest on another stripe than `a`.
        let b = (0..).map(|i| format!("{i:064x}")).find(|d| stripe(d) != stripe(&a)).unwrap();
        let held = locks.lock(&a).await;
        let cases: [(&str, bool); 2] = [(&a, true), (&b, false)];
        for (digest, waits) in cases {
            let got = tokio::time::timeout(Duration::from_millis(50), locks.lock(digest)).await;
            assert_eq!(got.is_err(), waits, "{digest}");
        }
        drop(held);
        let _again = tokio::time::timeout(Duration::from_millis(50), locks.lock(&a)).await.expect("free again once let go");
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

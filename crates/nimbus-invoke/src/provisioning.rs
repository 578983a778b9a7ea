//! Provisioned concurrency across nodes: with a shared store, each live node keeps its share
//! of every config's environments (the config's count split over the nodes, the remainder
//! starting at a node picked by the config, so small configs spread), provisions again when
//! the cluster's members change, and publishes what it holds so every node answers a
//! config's status (allocated, ready) for the cluster, as AWS answers it for the region.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use nimbus_sandbox::ProvisionedCounts;

use crate::Invoker;

/// How often a node looks at the members and publishes what it holds.
const EVERY: Duration = Duration::from_secs(1);

/// Where this node stands among the live nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placement {
    pub rank: usize,
    pub nodes: usize,
}

impl Default for Placement {
    fn default() -> Self {
        Placement { rank: 0, nodes: 1 }
    }
}

/// FNV-1a: the same on every node (a config's remainder must start at the same node
/// everywhere), unlike std's per-process hasher.
fn stable_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The environments of `count` (for the config named by `key`) the node at `p` keeps: an
/// equal part, and one of the remainder for the `count % nodes` nodes from the one `key`
/// picks on. Summed over every rank, `count`.
pub(crate) fn node_share(count: u32, key: &str, p: Placement) -> u32 {
    let nodes = p.nodes.max(1) as u64;
    let rank = (p.rank as u64).min(nodes - 1);
    let count64 = u64::from(count);
    let first = stable_hash(key) % nodes;
    let position = (rank + nodes - first) % nodes;
    (count64 / nodes + u64::from(position < count64 % nodes)) as u32
}

/// Where this node stands, from the members (oldest first): a node not listed yet (it is
/// joining) counts as the newest.
pub(crate) fn placement(peers: &[nimbus_store::Peer]) -> Placement {
    match peers.iter().position(|p| p.this_node) {
        Some(rank) => Placement { rank, nodes: peers.len() },
        None => Placement { rank: peers.len(), nodes: peers.len() + 1 },
    }
}

impl Invoker {
    /// This node's share of `count` environments of a config's target.
    pub(crate) fn provision_share(&self, count: u32, key: &str) -> u32 {
        if self.shared_store.get().is_none() {
            return count;
        }
        node_share(count, key, self.placement.read().unwrap_or_else(|p| p.into_inner()).unwrap_or_default())
    }

    /// With several nodes (after [`Invoker::share_concurrency`]): learns where this node
    /// stands before the first provisioning, then every second provisions again if the
    /// members changed, publishes what it holds and reads what the cluster holds.
    pub async fn share_provisioning(self: &Arc<Self>) {
        let Some(store) = self.shared_store.get().cloned() else { return };
        if let Ok(peers) = store.peers().await {
            *self.placement.write().unwrap_or_else(|p| p.into_inner()) = Some(placement(&peers));
        }
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(invoker) = me.upgrade() else { return };
                if let Err(e) = invoker.follow_cluster(store.as_ref()).await {
                    tracing::warn!("sharing provisioned concurrency: {e}");
                }
            }
        });
    }

    async fn follow_cluster(self: &Arc<Self>, store: &dyn nimbus_store::Store) -> Result<(), nimbus_store::StoreError> {
        let now = placement(&store.peers().await?);
        let moved = {
            let mut at = self.placement.write().unwrap_or_else(|p| p.into_inner());
            at.replace(now) != Some(now)
        };
        if moved {
            tracing::info!(rank = now.rank, nodes = now.nodes, "the cluster changed: provisioning this node's shares again");
            self.provision_all();
        }
        let mine = self
            .control
            .provisioned_configs()
            .into_iter()
            .map(|(function, qualifier)| {
                let c = self.pool.provisioned_counts(&function, &qualifier);
                nimbus_store::ProvisionedAllocation {
                    function,
                    qualifier,
                    requested: c.requested as u32,
                    allocated: c.allocated as u32,
                    failure: c.failure,
                }
            })
            .collect();
        store.publish_provisioned(mine).await?;
        let everywhere: HashMap<(String, String), ProvisionedCounts> = store
            .provisioned_everywhere()
            .await?
            .into_iter()
            .map(|a| {
                let counts =
                    ProvisionedCounts { requested: a.requested as usize, allocated: a.allocated as usize, idle: 0, failure: a.failure };
                ((a.function, a.qualifier), counts)
            })
            .collect();
        *self.everywhere.write().unwrap_or_else(|p| p.into_inner()) = everywhere;
        Ok(())
    }

    /// A config's provisioned environments: this node's pool on one node, the cluster's sum
    /// (as last read, at most a second old) with several.
    pub fn provisioned_counts(&self, function: &str, qualifier: &str) -> ProvisionedCounts {
        if self.shared_store.get().is_some() {
            let everywhere = self.everywhere.read().unwrap_or_else(|p| p.into_inner());
            if let Some(c) = everywhere.get(&(function.to_string(), qualifier.to_string())) {
                return c.clone();
            }
        }
        self.pool.provisioned_counts(function, qualifier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_to_the_count_and_differ_by_at_most_one() {
        for (count, nodes) in [(0, 1), (1, 1), (5, 1), (1, 3), (2, 3), (3, 3), (4, 3), (10, 4), (7, 2), (100, 7)] {
            for key in ["f/live/1", "g/1/1", "another/prod/3"] {
                let shares: Vec<u32> = (0..nodes).map(|rank| node_share(count, key, Placement { rank, nodes })).collect();
                assert_eq!(shares.iter().sum::<u32>(), count, "{count} over {nodes} for {key}: {shares:?}");
                let (lo, hi) = (shares.iter().min().unwrap(), shares.iter().max().unwrap());
                assert!(hi - lo <= 1, "{count} over {nodes} for {key}: {shares:?}");
            }
        }
    }

    #[test]
    fn single_environments_of_different_configs_spread() {
        let p = |rank| Placement { rank, nodes: 3 };
        let keys: Vec<String> = (0..30).map(|i| format!("fn{i}/live/1")).collect();
        let per_node: Vec<u32> = (0..3).map(|rank| keys.iter().map(|k| node_share(1, k, p(rank))).sum()).collect();
        assert_eq!(per_node.iter().sum::<u32>(), 30);
        assert!(per_node.iter().all(|n| *n >= 5), "{per_node:?}");
    }

    #[test]
    fn placement_counts_a_joining_node_as_the_newest() {
        let peer = |node: &str, this_node| nimbus_store::Peer {
            node: node.into(),
            endpoint: String::new(),
            started_ms: 0,
            heartbeat_age_ms: 0,
            async_events_held: 0,
            this_node,
        };
        let cases = [
            (vec![], Placement { rank: 0, nodes: 1 }),
            (vec![peer("a", true)], Placement { rank: 0, nodes: 1 }),
            (vec![peer("a", false), peer("b", true), peer("c", false)], Placement { rank: 1, nodes: 3 }),
            (vec![peer("a", false), peer("b", false)], Placement { rank: 2, nodes: 3 }),
        ];
        for (peers, want) in cases {
            assert_eq!(placement(&peers), want);
        }
    }
}

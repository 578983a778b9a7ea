//! Changes other nodes made to the shared store (its change feed): what this node keeps in
//! memory of those records is forgotten or read again, and warm environments started from
//! a configuration that changed are retired, as after a change made here.

use std::sync::atomic::Ordering;

use nimbus_model::LATEST;
use nimbus_store::StoreChange;

use crate::{store_err, ControlPlane};

impl ControlPlane {
    /// Brings this node's view up to date after `change`, made by another node.
    pub async fn changed_elsewhere(&self, change: StoreChange) {
        match change {
            StoreChange::Function(name) => {
                self.reload_reservation(&name).await;
                self.changed(&name, None);
            }
            StoreChange::Aliases(name) => self.view.forget_aliases(&name),
            StoreChange::Urls(name) => self.view.forget_urls_of(&name),
            StoreChange::EventInvokeConfigs(name) => self.event_configs.forget_function(&name),
            StoreChange::ProvisionedConfigs(name) => {
                match self.store.list_provisioned_configs(Some(&name)).await.map_err(store_err) {
                    Ok(list) => {
                        let mut configs = self.configs_mut();
                        configs.remove(&name);
                        if !list.is_empty() {
                            configs.insert(name.clone(), list.into_iter().map(|c| (c.qualifier.clone(), c)).collect());
                        }
                    }
                    Err(e) => tracing::warn!("reloading {name}'s provisioned concurrency: {}", e.message),
                }
                self.recount_provisioned();
                self.provisioning_changed(&name);
            }
            // Event source mappings follow on their own (`EventSources::changed_elsewhere`).
            StoreChange::Mapping(_) => {}
            StoreChange::Resync => {
                for name in self.view.forget_all() {
                    self.reload_reservation(&name).await;
                    for l in self.listeners.read().unwrap_or_else(|p| p.into_inner()).iter() {
                        l(&name);
                    }
                }
                self.event_configs.forget_all();
            }
        }
    }

    /// The cluster's live members, when the store is shared (empty otherwise, and when the
    /// store cannot say).
    pub async fn peers(&self) -> Vec<nimbus_store::Peer> {
        match self.store.peers().await {
            Ok(peers) => peers,
            Err(e) => {
                tracing::warn!("reading the cluster's members: {e}");
                Vec::new()
            }
        }
    }

    /// Reads a function's reserved concurrency again (changed, or the function deleted).
    async fn reload_reservation(&self, name: &str) {
        let reserved = match self.store.get_function(name, LATEST).await {
            Ok(found) => found.and_then(|c| c.reserved_concurrency),
            Err(e) => {
                tracing::warn!("reloading {name}'s reserved concurrency: {e}");
                return;
            }
        };
        let mut map = self.reserved.write().unwrap_or_else(|p| p.into_inner());
        let before = match reserved {
            Some(r) => map.insert(name.to_string(), r),
            None => map.remove(name),
        };
        drop(map);
        self.reserved_total.fetch_sub(before.unwrap_or(0), Ordering::Relaxed);
        self.reserved_total.fetch_add(reserved.unwrap_or(0), Ordering::Relaxed);
        self.recount_provisioned();
    }
}

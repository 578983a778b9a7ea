//! Provisioned concurrency configs: Put/Get/Delete/List with AWS's checks, kept in memory
//! (loaded at start) so the invoke path reads a function's on-demand limits without the
//! database, and resolved into the environments each version should keep initialized.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;

use nimbus_model::alias::{self, Target};
use nimbus_model::provisioned::{self, Claims, Op, ProvisionedConfig};
use nimbus_model::{now_millis, ApiError, ErrorCode, Qualifier, LATEST};

use crate::{store_err, ControlPlane};

/// Configs by function, then qualifier.
pub(crate) type Configs = HashMap<String, BTreeMap<String, ProvisionedConfig>>;

/// Environments a function should keep initialized for one config: the config's
/// qualifier, the version they run, and how many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionTarget {
    pub qualifier: String,
    pub version: String,
    pub count: u32,
    /// The config's LastModified: a config written again retries a failed allocation.
    pub epoch: i64,
}

/// What an invocation that finds no provisioned environment may use.
#[derive(Debug, Clone, Copy)]
pub struct OnDemandLimits {
    /// The function's reservation minus its provisioned concurrency (None: no reservation).
    pub reserved: Option<u32>,
    /// What the account leaves to functions without a reservation.
    pub unreserved: u32,
}

fn not_found_config() -> ApiError {
    ApiError::new(ErrorCode::ProvisionedConcurrencyConfigNotFound, "No Provisioned Concurrency Config found for this function")
}

impl ControlPlane {
    fn configs(&self) -> std::sync::RwLockReadGuard<'_, Configs> {
        self.provisioned.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn configs_mut(&self) -> std::sync::RwLockWriteGuard<'_, Configs> {
        self.provisioned.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Recomputes the provisioned concurrency that functions without a reservation claim
    /// from the account (after any change to configs or reservations).
    pub(crate) fn recount_provisioned(&self) {
        let reserved = self.reserved.read().unwrap_or_else(|p| p.into_inner());
        let total: u32 =
            self.configs().iter().filter(|(f, _)| !reserved.contains_key(*f)).flat_map(|(_, c)| c.values().map(|c| c.requested)).sum();
        self.provisioned_unreserved.store(total, Ordering::Relaxed);
    }

    /// The sum of a function's provisioned configs.
    pub fn provisioned_total(&self, name: &str) -> u32 {
        self.configs().get(name).map_or(0, |c| c.values().map(|c| c.requested).sum())
    }

    /// The provisioned concurrency configured for one qualifier of `name` (from memory).
    pub fn provisioned_requested(&self, name: &str, qualifier: &str) -> Option<u32> {
        self.configs().get(name).and_then(|c| c.get(qualifier)).map(|c| c.requested)
    }

    /// Limits for an on-demand invocation of `name` (from memory: the invoke path calls it).
    pub fn on_demand_limits(&self, name: &str) -> OnDemandLimits {
        let reserved = self.reserved.read().unwrap_or_else(|p| p.into_inner()).get(name).copied();
        OnDemandLimits {
            reserved: reserved.map(|r| r.saturating_sub(self.provisioned_total(name))),
            unreserved: self.unreserved_concurrency(),
        }
    }

    /// Calls `f(function_name)` after anything that changes which environments a function
    /// should keep provisioned: its configs, its aliases, its versions, its deletion.
    pub fn on_provisioning_change(&self, f: impl Fn(&str) + Send + Sync + 'static) {
        self.provisioning_listeners.write().unwrap_or_else(|p| p.into_inner()).push(Box::new(f));
    }

    pub(crate) fn provisioning_changed(&self, name: &str) {
        for l in self.provisioning_listeners.read().unwrap_or_else(|p| p.into_inner()).iter() {
            l(name);
        }
    }

    /// Checks that the version or alias exists, as AWS words it (naming the qualified ARN
    /// even when the function itself is missing).
    async fn check_target(&self, name: &str, q: &str) -> Result<(), ApiError> {
        if alias::is_version_number(q) {
            if self.store.get_function(name, q).await.map_err(store_err)?.is_none() {
                return Err(ApiError::not_found(format!("Function not found: {}", self.partition.qualified_arn(name, q))));
            }
        } else if self.store.get_alias(name, q).await.map_err(store_err)?.is_none() {
            return Err(ApiError::not_found(format!("Cannot find alias arn: {}", self.partition.qualified_arn(name, q))));
        }
        Ok(())
    }

    /// The versions a config's qualifier runs and how many environments each gets.
    async fn resolve_targets(&self, name: &str, q: &str, requested: u32) -> Result<Vec<(String, u32)>, ApiError> {
        if alias::is_version_number(q) {
            return Ok(vec![(q.to_string(), requested)]);
        }
        let aliases = self.alias_map(name).await?;
        let start = aliases
            .get(q)
            .ok_or_else(|| ApiError::not_found(format!("Cannot find alias arn: {}", self.partition.qualified_arn(name, q))))?;
        let primary = alias::resolve(start, |n| aliases.get(n), 1.0)?;
        // A weighted alias spreads its environments over both versions; the additional
        // version counts only where the alias names it directly.
        let additional = match alias::target(&start.function_version) {
            Target::Version(_) => start.additional_version.as_ref().map(|(v, w)| (v.as_str(), *w)),
            _ => None,
        };
        Ok(provisioned::split(requested, &primary, additional))
    }

    /// PutProvisionedConcurrencyConfig.
    pub async fn put_provisioned(&self, name: &str, qualifier: Option<&Qualifier>, requested: u32) -> Result<ProvisionedConfig, ApiError> {
        let q = provisioned::qualifier(qualifier, Op::Put)?;
        let _writing = self.concurrency_writes.lock().await;
        self.check_target(name, q).await?;
        let targets = self.resolve_targets(name, q, requested).await?;
        if targets.iter().any(|(v, _)| v == LATEST) {
            return Err(ApiError::invalid("Provisioned Concurrency Configs cannot be applied to unpublished function versions."));
        }
        let claims = {
            let configs = self.configs();
            let reserved = self.reserved.read().unwrap_or_else(|p| p.into_inner());
            let function_reserved = reserved.get(name).copied();
            let others_unreserved: u32 = configs
                .iter()
                .filter(|(f, _)| !reserved.contains_key(*f))
                .flat_map(|(_, c)| c.values())
                .filter(|c| !(c.function == name && c.qualifier == q))
                .map(|c| c.requested)
                .sum();
            Claims {
                account_limit: self.concurrency_limit,
                reserved_total: self.reserved_total.load(Ordering::Relaxed),
                provisioned_unreserved: others_unreserved,
                function_reserved,
                function_provisioned: configs.get(name).map_or(0, |c| c.values().filter(|c| c.qualifier != q).map(|c| c.requested).sum()),
            }
        };
        provisioned::check_limits(requested, &claims)?;
        // A version and an alias that routes to it cannot both be provisioned.
        let others: Vec<ProvisionedConfig> =
            self.configs().get(name).map(|c| c.values().filter(|c| c.qualifier != q).cloned().collect()).unwrap_or_default();
        for other in &others {
            if alias::is_version_number(q) && !alias::is_version_number(&other.qualifier) {
                let theirs = self.resolve_targets(name, &other.qualifier, other.requested.max(1)).await.unwrap_or_default();
                if theirs.iter().any(|(v, _)| v == q) {
                    return Err(ApiError::conflict("Version is pointed by a Provisioned Concurrency alias"));
                }
            }
            if !alias::is_version_number(q)
                && alias::is_version_number(&other.qualifier)
                && targets.iter().any(|(v, _)| *v == other.qualifier)
            {
                return Err(ApiError::conflict(
                    "Alias can't be used for Provisioned Concurrency configuration on an already Provisioned version",
                ));
            }
        }
        let config = ProvisionedConfig { function: name.to_string(), qualifier: q.to_string(), requested, last_modified_ms: now_millis() };
        self.store.put_provisioned_config(&config).await.map_err(store_err)?;
        self.configs_mut().entry(name.to_string()).or_default().insert(q.to_string(), config.clone());
        self.recount_provisioned();
        self.provisioning_changed(name);
        Ok(config)
    }

    /// GetProvisionedConcurrencyConfig.
    pub async fn get_provisioned(&self, name: &str, qualifier: Option<&Qualifier>) -> Result<ProvisionedConfig, ApiError> {
        let q = provisioned::qualifier(qualifier, Op::GetOrDelete)?;
        self.check_target(name, q).await?;
        self.configs().get(name).and_then(|c| c.get(q)).cloned().ok_or_else(not_found_config)
    }

    /// DeleteProvisionedConcurrencyConfig: 204 whether or not there was one, as AWS.
    pub async fn delete_provisioned(&self, name: &str, qualifier: Option<&Qualifier>) -> Result<(), ApiError> {
        let q = provisioned::qualifier(qualifier, Op::GetOrDelete)?;
        self.check_target(name, q).await?;
        self.forget_provisioned(name, q).await
    }

    /// Removes a config (if any) from the store and memory and tells the listeners.
    pub(crate) async fn forget_provisioned(&self, name: &str, q: &str) -> Result<(), ApiError> {
        let had = self.configs().get(name).is_some_and(|c| c.contains_key(q));
        if !had {
            return Ok(());
        }
        self.store.delete_provisioned_config(name, q).await.map_err(store_err)?;
        if let Some(c) = self.configs_mut().get_mut(name) {
            c.remove(q);
        }
        self.recount_provisioned();
        self.provisioning_changed(name);
        Ok(())
    }

    /// Drops a deleted function's configs from memory (the store deleted them with it).
    pub(crate) fn forget_function_provisioned(&self, name: &str) {
        if self.configs_mut().remove(name).is_some() {
            self.recount_provisioned();
            self.provisioning_changed(name);
        }
    }

    /// ListProvisionedConcurrencyConfigs: by qualifier, after `marker`.
    pub async fn list_provisioned(
        &self,
        name: &str,
        marker: Option<&str>,
        max: usize,
    ) -> Result<(Vec<ProvisionedConfig>, Option<String>), ApiError> {
        self.get(name).await?;
        let all: Vec<ProvisionedConfig> = self.configs().get(name).map(|c| c.values().cloned().collect()).unwrap_or_default();
        let start = marker.map(|m| all.iter().position(|c| c.qualifier.as_str() > m).unwrap_or(all.len())).unwrap_or(0);
        let page: Vec<ProvisionedConfig> = all[start..].iter().take(max).cloned().collect();
        let next = (start + page.len() < all.len()).then(|| page.last().map(|c| c.qualifier.clone())).flatten();
        Ok((page, next))
    }

    /// Functions that have provisioned concurrency (to provision at start).
    pub fn provisioned_functions(&self) -> Vec<String> {
        self.configs().iter().filter(|(_, c)| !c.is_empty()).map(|(f, _)| f.clone()).collect()
    }

    /// Every (function, qualifier) that has a provisioned concurrency config.
    pub fn provisioned_configs(&self) -> Vec<(String, String)> {
        self.configs().iter().flat_map(|(f, c)| c.keys().map(move |q| (f.clone(), q.clone()))).collect()
    }

    /// Every environment `name` should keep initialized, per config and version. A config
    /// whose alias no longer leads to a published version provisions nothing.
    pub async fn provision_targets(&self, name: &str) -> Vec<ProvisionTarget> {
        let configs: Vec<ProvisionedConfig> = self.configs().get(name).map(|c| c.values().cloned().collect()).unwrap_or_default();
        let mut out = Vec::new();
        for c in configs {
            match self.resolve_targets(name, &c.qualifier, c.requested).await {
                Ok(targets) => out.extend(targets.into_iter().filter(|(v, _)| v != LATEST).map(|(version, count)| ProvisionTarget {
                    qualifier: c.qualifier.clone(),
                    version,
                    count,
                    epoch: c.last_modified_ms,
                })),
                Err(e) => tracing::warn!(function = name, qualifier = %c.qualifier, "cannot provision: {}", e.message),
            }
        }
        out
    }

    /// An alias with provisioned concurrency must keep leading to a published version.
    pub(crate) async fn check_provisioned_alias_target(&self, candidate: &alias::AliasConfig) -> Result<(), ApiError> {
        if !self.configs().get(&candidate.function_name).is_some_and(|c| c.contains_key(&candidate.name)) {
            return Ok(());
        }
        let aliases = self.alias_map(&candidate.function_name).await?;
        if alias::resolve(candidate, |n| aliases.get(n), 1.0)? == LATEST {
            return Err(ApiError::invalid("Provisioned Concurrency Configs cannot be applied to unpublished function versions."));
        }
        Ok(())
    }

    /// A reservation below the function's provisioned concurrency would throttle its
    /// provisioned environments: refused.
    pub(crate) fn check_reservation_covers_provisioned(&self, name: &str, reserved: u32) -> Result<(), ApiError> {
        let provisioned = self.provisioned_total(name);
        if reserved < provisioned {
            return Err(ApiError::invalid(format!(
                "ReservedConcurrentExecutions {reserved} should not be lower than function's total provisioned concurrency [{provisioned}]."
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    use nimbus_model::{Partition, Runtime};
    use nimbus_store::{CodeCache, LocalBlobStore, OptCache, SqliteStore};

    use super::*;
    use crate::{CodeDirs, ConfigChange, NewFunction};

    fn zip() -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        w.start_file("index.py", zip::write::SimpleFileOptions::default()).unwrap();
        w.write_all(b"def handler(e, c):\n    return e\n").unwrap();
        w.finish().unwrap().into_inner()
    }

    pub(crate) async fn control(dir: &std::path::Path) -> ControlPlane {
        let dirs = CodeDirs {
            code: CodeCache::new(dir.join("code"), dir.join("tmp")),
            layers: CodeCache::new(dir.join("layers"), dir.join("tmp")),
            opt: OptCache::new(dir.join("opt"), dir.join("tmp")),
        };
        let partition = Partition { region: "us-east-1".into(), account_id: "000000000000".into() };
        let store = Arc::new(SqliteStore::open(&dir.join("db"), nimbus_store::MasterKey::from_bytes([9; 32])).unwrap());
        ControlPlane::open(store, Arc::new(LocalBlobStore::new(dir.join("blobs"))), dirs, partition, 1000).await.unwrap()
    }

    /// Creates `name` with versions 1 and 2 and alias `live` → 1.
    pub(crate) async fn function(c: &ControlPlane, name: &str) {
        c.create(NewFunction {
            name: name.into(),
            runtime: Runtime::Python311,
            role: "arn:aws:iam::000000000000:role/r".into(),
            handler: "index.handler".into(),
            description: String::new(),
            timeout_secs: 3,
            memory_mb: 128,
            ephemeral_storage_mb: 512,
            environment: Default::default(),
            architectures: vec![],
            layers: vec![],
            dead_letter_target: None,
            tags: Default::default(),
            code_signing_config_id: None,
            kms_key_arn: None,
            vpc: None,
            tracing_active: false,
            logging: Default::default(),
            zip: zip(),
        })
        .await
        .unwrap();
        for v in ["1", "2"] {
            let env = [("MARK".to_string(), v.to_string())].into_iter().collect();
            c.update_config(name, ConfigChange { environment: Some(env), ..Default::default() }).await.unwrap();
            c.publish(name, None, None, None).await.unwrap();
        }
        c.create_alias(name, "live", "1", String::new(), Default::default()).await.unwrap();
    }

    fn q(s: &str) -> Qualifier {
        Qualifier::parse(s).expect("a valid qualifier")
    }

    #[tokio::test]
    async fn configs_follow_aws_rules_and_the_functions_they_name() {
        let dir = tempfile::tempdir().unwrap();
        let c = control(dir.path()).await;
        let changes = Arc::new(AtomicUsize::new(0));
        let seen = changes.clone();
        c.on_provisioning_change(move |_| {
            seen.fetch_add(1, Ordering::SeqCst);
        });
        function(&c, "f").await;

        let code = |r: Result<ProvisionedConfig, ApiError>| r.unwrap_err().code;
        assert_eq!(code(c.put_provisioned("f", Some(&q("$LATEST")), 1).await), ErrorCode::InvalidParameterValue);
        assert_eq!(code(c.put_provisioned("f", Some(&q("9")), 1).await), ErrorCode::ResourceNotFound);
        assert_eq!(code(c.put_provisioned("g", Some(&q("1")), 1).await), ErrorCode::ResourceNotFound);
        assert_eq!(code(c.put_provisioned("f", None, 1).await), ErrorCode::Validation);
        assert_eq!(code(c.get_provisioned("f", Some(&q("1"))).await), ErrorCode::ProvisionedConcurrencyConfigNotFound);

        c.put_provisioned("f", Some(&q("1")), 2).await.unwrap();
        assert_eq!(code(c.put_provisioned("f", Some(&q("live")), 1).await), ErrorCode::ResourceConflict);
        assert_eq!(
            c.provision_targets("f").await,
            vec![ProvisionTarget {
                qualifier: "1".into(),
                version: "1".into(),
                count: 2,
                epoch: c.get_provisioned("f", Some(&q("1"))).await.unwrap().last_modified_ms
            }]
        );
        // Without a reservation it leaves the unreserved pool; a reservation must cover it
        // and then carves it out of the function's on-demand share.
        assert_eq!(c.unreserved_concurrency(), 998);
        assert_eq!(c.on_demand_limits("f").reserved, None);
        c.set_reserved_concurrency("f", Some(1)).await.unwrap_err();
        c.set_reserved_concurrency("f", Some(3)).await.unwrap();
        assert_eq!(c.unreserved_concurrency(), 997);
        assert_eq!(c.on_demand_limits("f").reserved, Some(1));

        // Deleting the version deletes its config (the alias must move off it first).
        c.update_alias("f", "live", crate::AliasChange { function_version: Some("2".into()), ..Default::default() }).await.unwrap();
        c.delete_version("f", "1").await.unwrap();
        assert!(c.list_provisioned("f", None, 50).await.unwrap().0.is_empty());
        assert_eq!(c.on_demand_limits("f").reserved, Some(3));

        // Configs are loaded again by a new control plane over the same store.
        c.put_provisioned("f", Some(&q("live")), 1).await.unwrap();
        assert_eq!(c.provision_targets("f").await[0].version, "2");
        let before = changes.load(Ordering::SeqCst);
        assert!(before >= 4, "{before}");
        drop(c);
        let c = control(dir.path()).await;
        assert_eq!(c.provisioned_functions(), vec!["f".to_string()]);
        assert_eq!(c.get_provisioned("f", Some(&q("live"))).await.unwrap().requested, 1);
        c.delete("f").await.unwrap();
        assert!(c.provisioned_functions().is_empty());
    }
}

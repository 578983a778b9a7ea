//! Published versions: immutable snapshots of `$LATEST`, numbered 1, 2, 3… and never
//! renumbered; listing, reading by qualifier, and deleting one.

use nimbus_model::alias::{self, Target};
use nimbus_model::function::new_revision_id;
use nimbus_model::{now_millis, ApiError, ErrorCode, FunctionConfig, Qualifier, LATEST};
use nimbus_store::StoreError;

use crate::{store_err, ControlPlane};

/// Whether two configurations would run the same code the same way (what AWS compares to
/// decide that a publish has nothing new).
fn same_function(a: &FunctionConfig, b: &FunctionConfig) -> bool {
    a.code_digest == b.code_digest
        && a.runtime == b.runtime
        && a.handler == b.handler
        && a.role == b.role
        && a.memory_mb == b.memory_mb
        && a.timeout_secs == b.timeout_secs
        && a.ephemeral_storage_mb == b.ephemeral_storage_mb
        && a.environment == b.environment
        && a.architectures == b.architectures
        && a.vpc == b.vpc
        && a.tracing_active == b.tracing_active
        && a.logging == b.logging
}

impl ControlPlane {
    /// PublishVersion: snapshots `$LATEST` as the next version, or returns the newest
    /// version when nothing changed since it was published.
    pub async fn publish(
        &self,
        name: &str,
        code_sha256: Option<&str>,
        description: Option<String>,
        revision_id: Option<&str>,
    ) -> Result<FunctionConfig, ApiError> {
        let current = self.get(name).await?;
        Self::check_revision(&current, revision_id)?;
        if let Some(sha) = code_sha256.filter(|s| !s.is_empty()) {
            if sha != current.code_sha256_base64() {
                return Err(ApiError::invalid(format!(
                    "CodeSHA256 ({sha}) is different from current CodeSHA256 in $LATEST ({}). Please try again with the CodeSHA256 in $LATEST.",
                    current.code_sha256_base64()
                )));
            }
        }
        if current.last_published > 0 {
            let last = self.store.get_function(name, &current.last_published.to_string()).await.map_err(store_err)?;
            if let Some(last) = last.filter(|l| same_function(l, &current)) {
                return Ok(last);
            }
        }
        let number = current.last_published + 1;
        let version = FunctionConfig {
            version: number.to_string(),
            description: description.unwrap_or_else(|| current.description.clone()),
            revision_id: new_revision_id(),
            last_modified_ms: now_millis(),
            reserved_concurrency: None,
            last_published: 0,
            ..current.clone()
        };
        let latest = FunctionConfig { last_published: number, revision_id: new_revision_id(), ..current.clone() };
        match self.store.publish_version(&latest, &current.revision_id, &version).await {
            Ok(()) => {}
            Err(StoreError::RevisionMismatch) | Err(StoreError::Conflict) => {
                return Err(ApiError::conflict(format!(
                    "The operation cannot be performed at this time. An update is in progress for resource: {}",
                    self.partition.function_arn(name)
                )))
            }
            Err(e) => return Err(store_err(e)),
        }
        // Publishing changes neither $LATEST's code nor its configuration: its warm
        // environments stay.
        self.view.put_version(self.materialize(latest).await?);
        Ok(version)
    }

    /// ListVersionsByFunction: `$LATEST` first, then by number; paged by version.
    pub async fn list_versions(
        &self,
        name: &str,
        marker: Option<&str>,
        max: usize,
    ) -> Result<(Vec<FunctionConfig>, Option<String>), ApiError> {
        let all = self.store.list_versions(name).await.map_err(store_err)?;
        if all.is_empty() {
            return Err(self.not_found(name));
        }
        let start = match marker {
            Some(m) => all.iter().position(|c| c.version == m).map(|i| i + 1).unwrap_or(all.len()),
            None => 0,
        };
        let page: Vec<FunctionConfig> = all[start..].iter().take(max).cloned().collect();
        let next = (start + page.len() < all.len()).then(|| page.last().map(|c| c.version.clone())).flatten();
        Ok((page, next))
    }

    /// The configuration a Get call names: `$LATEST`, a version, or the version an alias
    /// points at (its primary one).
    pub async fn get_qualified(&self, name: &str, qualifier: Option<&Qualifier>) -> Result<FunctionConfig, ApiError> {
        let version = match qualifier {
            None | Some(Qualifier::Latest) => LATEST.to_string(),
            Some(Qualifier::Named(q)) if alias::is_version_number(q) => q.clone(),
            Some(Qualifier::Named(q)) => {
                let aliases = self.alias_map(name).await?;
                let start = aliases
                    .get(q.as_str())
                    .ok_or_else(|| ApiError::not_found(format!("Function not found: {}", self.partition.qualified_arn(name, q))))?;
                alias::resolve(start, |n| aliases.get(n), 1.0)?
            }
        };
        if version == LATEST {
            return self.get(name).await;
        }
        self.store
            .get_function(name, &version)
            .await
            .map_err(store_err)?
            .ok_or_else(|| ApiError::not_found(format!("Function not found: {}", self.partition.qualified_arn(name, &version))))
    }

    /// DeleteFunction with a version qualifier. A version an alias points at stays.
    pub async fn delete_version(&self, name: &str, version: &str) -> Result<(), ApiError> {
        self.get(name).await?;
        let aliases = self.alias_map(name).await?;
        if let Some(a) = aliases.values().find(|a| {
            matches!(alias::target(&a.function_version), Target::Version(v) if v == version)
                || a.additional_version.as_ref().is_some_and(|(v, _)| v == version)
        }) {
            return Err(ApiError::new(
                ErrorCode::ResourceConflict,
                format!("Unable to delete version because the following aliases reference it: [{}]", a.name),
            ));
        }
        let existing = self.store.get_function(name, version).await.map_err(store_err)?;
        let Some(existing) = existing else {
            return Err(ApiError::not_found(format!("Function not found: {}", self.partition.qualified_arn(name, version))));
        };
        self.store.delete_version(name, version).await.map_err(store_err)?;
        self.view.forget_version(name, version);
        for l in self.version_listeners.read().unwrap_or_else(|p| p.into_inner()).iter() {
            l(name, version);
        }
        // Its provisioned concurrency goes with it.
        self.forget_provisioned(name, version).await?;
        self.collect_code(&existing.code_digest).await;
        Ok(())
    }
}

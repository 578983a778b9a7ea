//! Aliases: create, read, move, delete and list, with AWS's rules plus Nimbus's alias →
//! alias links (checked for cycles and depth whenever a link is made).

use std::collections::{BTreeMap, HashMap};

use nimbus_model::alias::{self, AliasConfig, Target};
use nimbus_model::function::new_revision_id;
use nimbus_model::{ApiError, ErrorCode};
use nimbus_store::StoreError;

use crate::{store_err, ControlPlane};

/// A validated UpdateAlias request: only the given fields change.
#[derive(Debug, Clone, Default)]
pub struct AliasChange {
    pub function_version: Option<String>,
    pub description: Option<String>,
    pub routing: Option<BTreeMap<String, f64>>,
    pub revision_id: Option<String>,
}

impl ControlPlane {
    fn alias_not_found(&self, name: &str, alias: &str) -> ApiError {
        ApiError::not_found(format!("Alias not found: {}", self.partition.qualified_arn(name, alias)))
    }

    /// Checks that `candidate` may be stored: its target exists, its routing is valid, and
    /// following it from here reaches a version without a cycle or too long a chain.
    async fn check_alias(&self, candidate: &AliasConfig, weights: &BTreeMap<String, f64>) -> Result<Option<(String, f64)>, ApiError> {
        let name = &candidate.function_name;
        match alias::target(&candidate.function_version) {
            Target::Latest => {}
            Target::Version(v) => {
                if self.store.get_function(name, v).await.map_err(store_err)?.is_none() {
                    return Err(ApiError::not_found(format!("Function not found: {}", self.partition.qualified_arn(name, v))));
                }
            }
            Target::Alias(a) if a == candidate.name => {
                return Err(ApiError::invalid(format!("Alias {} cannot point at itself", candidate.name)));
            }
            Target::Alias(_) => {}
        }
        let routing = if weights.is_empty() {
            None
        } else {
            let r = alias::validate_routing(&candidate.function_version, weights)?;
            if let Some((v, _)) = &r {
                if self.store.get_function(name, v).await.map_err(store_err)?.is_none() {
                    return Err(ApiError::not_found(format!("Function not found: {}", self.partition.qualified_arn(name, v))));
                }
            }
            r
        };
        // Walk the chain as it would be with this alias in place.
        let mut all: HashMap<String, AliasConfig> = (*self.alias_map(name).await?).clone();
        let mut with = candidate.clone();
        with.additional_version = routing.clone();
        all.insert(with.name.clone(), with.clone());
        alias::resolve(&with, |n| all.get(n), 1.0)?;
        // Aliases that lead here must still resolve too.
        for other in all.values() {
            alias::resolve(other, |n| all.get(n), 1.0)
                .map_err(|e| ApiError::invalid(format!("Alias {} would no longer resolve: {}", other.name, e.message)))?;
        }
        Ok(routing)
    }

    pub async fn create_alias(
        &self,
        name: &str,
        alias_name: &str,
        function_version: &str,
        description: String,
        weights: BTreeMap<String, f64>,
    ) -> Result<AliasConfig, ApiError> {
        alias::validate_name(alias_name)?;
        self.get(name).await?;
        let mut a = AliasConfig {
            function_name: name.to_string(),
            name: alias_name.to_string(),
            function_version: function_version.to_string(),
            description,
            additional_version: None,
            revision_id: new_revision_id(),
        };
        if self.alias_map(name).await?.contains_key(alias_name) {
            return Err(ApiError::conflict(format!("Alias already exists: {}", self.partition.qualified_arn(name, alias_name))));
        }
        a.additional_version = self.check_alias(&a, &weights).await?;
        match self.store.put_alias(&a, None).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => {
                return Err(ApiError::conflict(format!("Alias already exists: {}", self.partition.qualified_arn(name, alias_name))))
            }
            Err(e) => return Err(store_err(e)),
        }
        self.view.forget_aliases(name);
        Ok(a)
    }

    /// GetAlias: AWS says "Cannot find alias arn: …" where UpdateAlias says "Alias not found: …".
    pub async fn get_alias(&self, name: &str, alias_name: &str) -> Result<AliasConfig, ApiError> {
        self.load_alias(name, alias_name).await.map_err(|e| match e.code {
            ErrorCode::ResourceNotFound if e.message.starts_with("Alias not found") => {
                ApiError::not_found(format!("Cannot find alias arn: {}", self.partition.qualified_arn(name, alias_name)))
            }
            _ => e,
        })
    }

    async fn load_alias(&self, name: &str, alias_name: &str) -> Result<AliasConfig, ApiError> {
        self.get(name).await?;
        self.store.get_alias(name, alias_name).await.map_err(store_err)?.ok_or_else(|| self.alias_not_found(name, alias_name))
    }

    pub async fn update_alias(&self, name: &str, alias_name: &str, change: AliasChange) -> Result<AliasConfig, ApiError> {
        let current = self.load_alias(name, alias_name).await?;
        if let Some(r) = change.revision_id.as_deref() {
            if r != current.revision_id {
                return Err(ApiError::new(
                    ErrorCode::PreconditionFailed,
                    "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
                ));
            }
        }
        let mut next = current.clone();
        if let Some(v) = change.function_version {
            next.function_version = v;
        }
        if let Some(d) = change.description {
            next.description = d;
        }
        let weights = match change.routing {
            Some(w) => w,
            None => current.additional_version.iter().map(|(v, w)| (v.clone(), *w)).collect(),
        };
        next.additional_version = self.check_alias(&next, &weights).await?;
        self.check_provisioned_alias_target(&next).await?;
        next.revision_id = new_revision_id();
        match self.store.put_alias(&next, Some(&current.revision_id)).await {
            Ok(()) => {}
            Err(StoreError::NotFound) => return Err(self.alias_not_found(name, alias_name)),
            Err(StoreError::RevisionMismatch) => {
                return Err(ApiError::new(
                    ErrorCode::PreconditionFailed,
                    "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
                ))
            }
            Err(e) => return Err(store_err(e)),
        }
        self.view.forget_aliases(name);
        // Its provisioned environments follow it to the version it now runs.
        self.provisioning_changed(name);
        Ok(next)
    }

    /// Deletes an alias unless another alias points at it.
    pub async fn delete_alias(&self, name: &str, alias_name: &str) -> Result<(), ApiError> {
        self.get(name).await?;
        let aliases = self.alias_map(name).await?;
        if let Some(other) = aliases.values().find(|a| a.function_version == alias_name) {
            return Err(ApiError::conflict(format!(
                "Alias {alias_name} cannot be deleted: alias {} points at it. Move {} first.",
                other.name, other.name
            )));
        }
        // AWS answers 204 for an alias that does not exist.
        self.store.delete_alias(name, alias_name).await.map_err(store_err)?;
        self.view.forget_aliases(name);
        self.forget_provisioned(name, alias_name).await?;
        Ok(())
    }

    /// ListAliases, optionally only those pointing at `function_version`.
    pub async fn list_aliases(
        &self,
        name: &str,
        function_version: Option<&str>,
        marker: Option<&str>,
        max: usize,
    ) -> Result<(Vec<AliasConfig>, Option<String>), ApiError> {
        self.get(name).await?;
        let all: Vec<AliasConfig> = self
            .store
            .list_aliases(name)
            .await
            .map_err(store_err)?
            .into_iter()
            .filter(|a| function_version.is_none_or(|v| a.function_version == v))
            .collect();
        let start = marker.map(|m| all.iter().position(|a| a.name.as_str() > m).unwrap_or(all.len())).unwrap_or(0);
        let page: Vec<AliasConfig> = all[start..].iter().take(max).cloned().collect();
        let next = (start + page.len() < all.len()).then(|| page.last().map(|a| a.name.clone())).flatten();
        Ok((page, next))
    }
}

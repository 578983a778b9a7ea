//! Layer versions: publish (zip checked, stored once by digest, unpacked once), read,
//! list (filtered by runtime and architecture), delete, share through a resource policy,
//! and turn a function's list of layer ARNs into what it mounts.

use nimbus_model::function::new_revision_id;
use nimbus_model::layer::{self, LayerRef, LayerStatement, LayerVersion, MAX_LAYERS};
use nimbus_model::validate::MAX_UNZIPPED_BYTES;
use nimbus_model::{now_millis, ApiError, ErrorCode};
use nimbus_store::code;
use nimbus_store::StoreError;

use crate::{code_err, store_err, ControlPlane};

/// A validated PublishLayerVersion request.
#[derive(Debug, Clone)]
pub struct NewLayerVersion {
    pub name: String,
    pub description: String,
    pub compatible_runtimes: Vec<String>,
    pub compatible_architectures: Vec<String>,
    pub license_info: Option<String>,
    pub zip: Vec<u8>,
}

fn matches(l: &LayerVersion, runtime: Option<&str>, arch: Option<&str>) -> bool {
    runtime.is_none_or(|r| l.compatible_runtimes.iter().any(|x| x == r))
        && arch.is_none_or(|a| l.compatible_architectures.iter().any(|x| x == a))
}

impl ControlPlane {
    fn layer_not_found(&self) -> ApiError {
        ApiError::not_found("The resource you requested does not exist.")
    }

    /// Layers live in this account only; another account's layer is not shared here.
    fn own_layer(&self, account: &str, arn: &str) -> Result<(), ApiError> {
        if account != self.partition.account_id {
            return Err(ApiError::new(
                ErrorCode::AccessDenied,
                format!("User is not authorized to perform: lambda:GetLayerVersion on resource: {arn}"),
            ));
        }
        Ok(())
    }

    pub async fn publish_layer_version(&self, v: NewLayerVersion) -> Result<LayerVersion, ApiError> {
        if v.zip.is_empty() {
            return Err(ApiError::invalid("Uploaded file must be a non-empty zip"));
        }
        let (summary, digest) = nimbus_store::blocking::in_place(|| {
            let summary = code::inspect(&v.zip).map_err(code_err)?;
            let digest = nimbus_store::blob::sha256_hex(&v.zip);
            self.layer_code.ensure(&digest, &v.zip).map_err(code_err)?;
            Ok::<_, ApiError>((summary, digest))
        })?;
        let _held = self.code_writes.writing(&[&digest]).await;
        self.blobs.put(&v.zip).await.map_err(store_err)?;
        let mut record = LayerVersion {
            layer_name: v.name,
            version: 0,
            description: v.description,
            compatible_runtimes: v.compatible_runtimes,
            compatible_architectures: v.compatible_architectures,
            license_info: v.license_info,
            code_digest: digest,
            code_size: v.zip.len() as u64,
            unzipped_size: summary.unzipped_size,
            created_ms: now_millis(),
            policy: Vec::new(),
            policy_revision: new_revision_id(),
        };
        record.version = self.store.publish_layer_version(&record).await.map_err(store_err)?;
        Ok(record)
    }

    pub async fn get_layer_version(&self, name: &str, version: u64) -> Result<LayerVersion, ApiError> {
        let (account, name) = layer::parse_layer_name(name, &self.partition)?;
        self.own_layer(&account, &name)?;
        self.store.get_layer_version(&name, version).await.map_err(store_err)?.ok_or_else(|| self.layer_not_found())
    }

    pub async fn get_layer_version_by_arn(&self, arn: &str) -> Result<LayerVersion, ApiError> {
        let (_, account, name, version) = layer::parse_layer_version_arn(arn)?;
        self.own_layer(&account, arn)?;
        self.store.get_layer_version(&name, version).await.map_err(store_err)?.ok_or_else(|| self.layer_not_found())
    }

    /// ListLayers: each layer with its newest version that matches the filters.
    pub async fn list_layers(
        &self,
        runtime: Option<&str>,
        arch: Option<&str>,
        marker: Option<&str>,
        max: usize,
    ) -> Result<(Vec<LayerVersion>, Option<String>), ApiError> {
        let mut out = Vec::new();
        for name in self.store.list_layer_names().await.map_err(store_err)? {
            if marker.is_some_and(|m| name.as_str() <= m) {
                continue;
            }
            let versions = self.store.list_layer_versions(&name).await.map_err(store_err)?;
            if let Some(latest) = versions.into_iter().find(|l| matches(l, runtime, arch)) {
                out.push(latest);
            }
        }
        let next = (out.len() > max).then(|| out[max - 1].layer_name.clone());
        out.truncate(max);
        Ok((out, next))
    }

    /// ListLayerVersions: newest first.
    pub async fn list_layer_versions(
        &self,
        name: &str,
        runtime: Option<&str>,
        arch: Option<&str>,
        marker: Option<&str>,
        max: usize,
    ) -> Result<(Vec<LayerVersion>, Option<String>), ApiError> {
        let (account, name) = layer::parse_layer_name(name, &self.partition)?;
        self.own_layer(&account, &name)?;
        let all: Vec<LayerVersion> =
            self.store.list_layer_versions(&name).await.map_err(store_err)?.into_iter().filter(|l| matches(l, runtime, arch)).collect();
        let start =
            marker.and_then(|m| m.parse::<u64>().ok()).map(|m| all.iter().position(|l| l.version < m).unwrap_or(all.len())).unwrap_or(0);
        let page: Vec<LayerVersion> = all[start..].iter().take(max).cloned().collect();
        let next = (start + page.len() < all.len()).then(|| page.last().map(|l| l.version.to_string())).flatten();
        Ok((page, next))
    }

    /// DeleteLayerVersion. Functions that use it keep their copy (AWS behaves the same);
    /// the blob goes once nothing refers to it.
    pub async fn delete_layer_version(&self, name: &str, version: u64) -> Result<(), ApiError> {
        let (account, name) = layer::parse_layer_name(name, &self.partition)?;
        self.own_layer(&account, &name)?;
        if let Some(l) = self.store.get_layer_version(&name, version).await.map_err(store_err)? {
            self.store.delete_layer_version(&name, version).await.map_err(store_err)?;
            self.collect_layer(&l.code_digest).await;
        }
        Ok(())
    }

    async fn update_policy(
        &self,
        name: &str,
        version: u64,
        revision_id: Option<&str>,
        change: impl FnOnce(&mut Vec<LayerStatement>) -> Result<(), ApiError>,
    ) -> Result<LayerVersion, ApiError> {
        let current = self.get_layer_version(name, version).await?;
        if revision_id.is_some_and(|r| r != current.policy_revision) {
            return Err(ApiError::new(
                ErrorCode::PreconditionFailed,
                "The Revision Id provided does not match the latest Revision Id. Call the GetLayerVersionPolicy API to retrieve the latest Revision Id",
            ));
        }
        let mut next = current.clone();
        change(&mut next.policy)?;
        next.policy_revision = new_revision_id();
        match self.store.update_layer_version(&next, &current.policy_revision).await {
            Ok(()) => Ok(next),
            Err(StoreError::RevisionMismatch) => Err(ApiError::new(
                ErrorCode::PreconditionFailed,
                "The Revision Id provided does not match the latest Revision Id. Call the GetLayerVersionPolicy API to retrieve the latest Revision Id",
            )),
            Err(StoreError::NotFound) => Err(self.layer_not_found()),
            Err(e) => Err(store_err(e)),
        }
    }

    pub async fn add_layer_permission(
        &self,
        name: &str,
        version: u64,
        statement: LayerStatement,
        revision_id: Option<&str>,
    ) -> Result<LayerVersion, ApiError> {
        let sid = statement.sid.clone();
        self.update_policy(name, version, revision_id, move |policy| {
            if policy.iter().any(|s| s.sid == sid) {
                return Err(ApiError::conflict(format!("The statement id ({sid}) provided already exists. Please provide a new statement id, or remove the existing statement.")));
            }
            policy.push(statement);
            Ok(())
        })
        .await
    }

    pub async fn remove_layer_permission(&self, name: &str, version: u64, sid: &str, revision_id: Option<&str>) -> Result<(), ApiError> {
        self.update_policy(name, version, revision_id, |policy| {
            let before = policy.len();
            policy.retain(|s| s.sid != sid);
            if policy.len() == before {
                return Err(ApiError::not_found(format!("Statement {sid} is not found in resource policy.")));
            }
            Ok(())
        })
        .await
        .map(|_| ())
    }

    /// [`Self::resolve_layers`], holding the layers' digests (and `code`, a digest about to
    /// be stored) against collection until the returned hold is dropped: a record naming
    /// them is written under it. A layer version deleted while the hold was awaited is
    /// gone from the store by then (its blob may be too), so they are looked up again.
    pub(crate) async fn resolve_layers_held(
        &self,
        arns: &[String],
        code_unzipped: u64,
        code: Option<&str>,
    ) -> Result<(Vec<LayerRef>, crate::code_writes::Writing<'_>), ApiError> {
        let first = self.resolve_layers(arns, code_unzipped).await?;
        let digests: Vec<&str> = first.iter().map(|l| l.code_digest.as_str()).chain(code).collect();
        let held = self.code_writes.writing(&digests).await;
        let layers = self.resolve_layers(arns, code_unzipped).await?;
        Ok((layers, held))
    }

    /// Turns a function's layer ARNs into what it mounts, checking AWS's rules: at most
    /// five, each an existing version this account may use, and code plus layers within
    /// the unzipped limit.
    pub(crate) async fn resolve_layers(&self, arns: &[String], code_unzipped: u64) -> Result<Vec<LayerRef>, ApiError> {
        if arns.len() > MAX_LAYERS {
            return Err(ApiError::invalid(format!("Cannot reference more than {MAX_LAYERS} layers.")));
        }
        let mut out = Vec::with_capacity(arns.len());
        let mut total = code_unzipped;
        for arn in arns {
            let (_, account, name, version) = layer::parse_layer_version_arn(arn)?;
            self.own_layer(&account, arn)?;
            let l = self
                .store
                .get_layer_version(&name, version)
                .await
                .map_err(store_err)?
                .ok_or_else(|| ApiError::invalid(format!("Layer version {arn} does not exist.")))?;
            total += l.unzipped_size;
            out.push(LayerRef { arn: arn.clone(), code_size: l.code_size, code_digest: l.code_digest, unzipped_size: l.unzipped_size });
        }
        if total > MAX_UNZIPPED_BYTES {
            return Err(ApiError::invalid(format!(
                "Function code combined with layers exceeds the maximum allowed size of {MAX_UNZIPPED_BYTES} bytes. The actual size is {total} bytes."
            )));
        }
        Ok(out)
    }
}

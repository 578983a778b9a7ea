//! Code signing configs: stored in their own table, attached to functions by id on
//! `$LATEST`, answered with AWS's texts. Nimbus does not verify signatures (there is no
//! AWS Signer here): a deployment under a config is accepted whatever its policy, and one
//! under `Enforce` is logged as unverified.

use nimbus_model::code_signing::CodeSigningConfig;
use nimbus_model::{now_millis, ApiError, ErrorCode, FunctionConfig, LATEST};

use crate::{store_err, ControlPlane};

/// What UpdateCodeSigningConfig changes (absent members stay).
#[derive(Debug, Default)]
pub struct CodeSigningChange {
    pub description: Option<String>,
    pub signing_profile_version_arns: Option<Vec<String>>,
    pub untrusted_artifact_on_deployment: Option<String>,
}

impl ControlPlane {
    /// AWS's answer for a config that is not there (the ARN as the caller gave it; AWS's
    /// body has no `Type` here).
    fn csc_not_found(arn: &str) -> ApiError {
        ApiError::not_found(format!("The Lambda code signing configuration {arn} can not be found.")).untyped()
    }

    /// CreateCodeSigningConfig.
    pub async fn create_code_signing_config(
        &self,
        description: String,
        signing_profile_version_arns: Vec<String>,
        untrusted_artifact_on_deployment: String,
    ) -> Result<CodeSigningConfig, ApiError> {
        let config = CodeSigningConfig {
            id: nimbus_model::code_signing::new_id(),
            description,
            signing_profile_version_arns,
            untrusted_artifact_on_deployment,
            last_modified_ms: now_millis(),
        };
        self.store.put_code_signing_config(&config, true).await.map_err(store_err)?;
        Ok(config)
    }

    /// GetCodeSigningConfig; `arn` is the caller's ARN of `id`, for the not-found text.
    pub async fn get_code_signing_config(&self, id: &str, arn: &str) -> Result<CodeSigningConfig, ApiError> {
        self.store.get_code_signing_config(id).await.map_err(store_err)?.ok_or_else(|| Self::csc_not_found(arn))
    }

    /// UpdateCodeSigningConfig: an update without changes answers the config as it is.
    pub async fn update_code_signing_config(&self, id: &str, arn: &str, change: CodeSigningChange) -> Result<CodeSigningConfig, ApiError> {
        let _writing = self.code_signing_writes.lock().await;
        let mut config = self.get_code_signing_config(id, arn).await?;
        let changed = change.description.is_some()
            || change.signing_profile_version_arns.is_some()
            || change.untrusted_artifact_on_deployment.is_some();
        if !changed {
            return Ok(config);
        }
        if let Some(d) = change.description {
            config.description = d;
        }
        if let Some(a) = change.signing_profile_version_arns {
            config.signing_profile_version_arns = a;
        }
        if let Some(p) = change.untrusted_artifact_on_deployment {
            config.untrusted_artifact_on_deployment = p;
        }
        config.last_modified_ms = now_millis();
        match self.store.put_code_signing_config(&config, false).await {
            Ok(()) => Ok(config),
            Err(nimbus_store::StoreError::NotFound) => Err(Self::csc_not_found(arn)),
            Err(e) => Err(store_err(e)),
        }
    }

    /// DeleteCodeSigningConfig: refused while a function uses the config.
    pub async fn delete_code_signing_config(&self, id: &str, arn: &str) -> Result<(), ApiError> {
        let _writing = self.code_signing_writes.lock().await;
        self.get_code_signing_config(id, arn).await?;
        if !self.functions_using_code_signing_config(id).await?.is_empty() {
            return Err(ApiError::conflict(format!(
                "The code signing configuration {arn} cannot be deleted because it is used by one or more functions."
            )));
        }
        self.store.delete_code_signing_config(id).await.map_err(store_err)?;
        Ok(())
    }

    /// ListCodeSigningConfigs: configs after `marker` (an id), at most `max`.
    pub async fn list_code_signing_configs(
        &self,
        marker: Option<&str>,
        max: usize,
    ) -> Result<(Vec<CodeSigningConfig>, Option<String>), ApiError> {
        let mut page = self.store.list_code_signing_configs(marker, max + 1).await.map_err(store_err)?;
        let next = if page.len() > max {
            page.truncate(max);
            page.last().map(|c| c.id.clone())
        } else {
            None
        };
        Ok((page, next))
    }

    /// The names of the functions a config is attached to, ordered.
    pub async fn functions_using_code_signing_config(&self, id: &str) -> Result<Vec<String>, ApiError> {
        let mut names = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.store.list_functions(LATEST, after.as_deref(), 1000).await.map_err(store_err)?;
            names.extend(page.iter().filter(|c| c.code_signing_config_id.as_deref() == Some(id)).map(|c| c.name.clone()));
            match page.last() {
                Some(c) if page.len() == 1000 => after = Some(c.name.clone()),
                _ => return Ok(names),
            }
        }
    }

    /// The config CreateFunction names, if it exists (AWS's CodeSigningConfigNotFound
    /// otherwise).
    pub(crate) async fn code_signing_config_for_function(&self, id: &str) -> Result<CodeSigningConfig, ApiError> {
        let arn = self.partition.code_signing_config_arn(id);
        self.store.get_code_signing_config(id).await.map_err(store_err)?.ok_or_else(|| {
            ApiError::new(
                ErrorCode::CodeSigningConfigNotFound,
                format!("The code signing configuration cannot be found. Check that the provided configuration is not deleted: {arn}."),
            )
        })
    }

    /// PutFunctionCodeSigningConfig: the config is looked for first, then the function.
    pub async fn put_function_code_signing_config(&self, name: &str, id: &str, arn: &str) -> Result<(), ApiError> {
        let _writing = self.code_signing_writes.lock().await;
        if self.store.get_code_signing_config(id).await.map_err(store_err)?.is_none() {
            return Err(ApiError::new(
                ErrorCode::CodeSigningConfigNotFound,
                format!("The code signing configuration cannot be found. Check that the provided configuration is not deleted: {arn}."),
            ));
        }
        self.set_code_signing_config(name, Some(id.to_string())).await
    }

    /// DeleteFunctionCodeSigningConfig (nothing attached is not an error).
    pub async fn delete_function_code_signing_config(&self, name: &str) -> Result<(), ApiError> {
        let _writing = self.code_signing_writes.lock().await;
        self.set_code_signing_config(name, None).await
    }

    async fn set_code_signing_config(&self, name: &str, id: Option<String>) -> Result<(), ApiError> {
        let current = self.get(name).await?;
        if current.code_signing_config_id == id {
            return Ok(());
        }
        let next = FunctionConfig { code_signing_config_id: id, ..current.clone() };
        self.store_property(name, &current, &next).await?;
        self.view.put_version(self.materialize(next).await?);
        Ok(())
    }

    /// Logs a deployment that a config would have AWS check: Nimbus cannot verify it.
    pub(crate) async fn note_unverified_code(&self, function: &FunctionConfig) {
        let Some(id) = &function.code_signing_config_id else { return };
        if let Ok(Some(c)) = self.store.get_code_signing_config(id).await {
            if c.enforces() {
                tracing::warn!(
                    function = %function.name,
                    code_signing_config = %id,
                    "code deployed under an Enforce code signing config without signature verification (Nimbus does not verify signatures)"
                );
            }
        }
    }
}

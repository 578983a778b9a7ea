//! Function URL configs (Create/Get/Update/Delete/ListFunctionUrlConfigs) and the lookup
//! the HTTP edge does for every URL request (from memory after the first).

use std::sync::Arc;

use nimbus_model::alias;
use nimbus_model::url::{new_url_id, AuthType, Cors, FunctionUrlConfig};
use nimbus_model::{now_millis, ApiError, ErrorCode, Qualifier, LATEST};
use nimbus_store::StoreError;

use crate::{store_err, ControlPlane};

/// A validated UpdateFunctionUrlConfig: only the given fields change (`Some(None)` clears
/// CORS).
#[derive(Debug, Clone, Default)]
pub struct UrlChange {
    pub auth_type: Option<AuthType>,
    pub cors: Option<Option<Cors>>,
    pub invoke_mode: Option<String>,
}

fn check_invoke_mode(mode: &str) -> Result<(), ApiError> {
    match mode {
        "BUFFERED" | "RESPONSE_STREAM" => Ok(()),
        other => Err(ApiError::validation(other, "invokeMode", "Member must satisfy enum value set: [BUFFERED, RESPONSE_STREAM]")),
    }
}

/// What the URL operations say when the function or alias they name is missing.
fn function_missing(e: ApiError) -> ApiError {
    if e.code == ErrorCode::ResourceNotFound {
        ApiError::not_found("Function does not exist")
    } else {
        e
    }
}

impl ControlPlane {
    /// A URL may front the function itself, `$LATEST`, or an alias, never a version.
    async fn check_url_qualifier(&self, function: &str, qualifier: Option<&str>) -> Result<(), ApiError> {
        self.get(function).await.map_err(function_missing)?;
        let Some(q) = qualifier else { return Ok(()) };
        if q == LATEST {
            return Ok(());
        }
        if alias::is_version_number(q) {
            return Err(ApiError::validation(
                q,
                "qualifier",
                "Member must satisfy regular expression pattern: ((?!^\\d+$)^[0-9a-zA-Z-_]+$)",
            ));
        }
        self.route(function, Some(&Qualifier::Named(q.to_string()))).await.map_err(function_missing)?;
        Ok(())
    }

    fn url_not_found(&self) -> ApiError {
        ApiError::not_found("The resource you requested does not exist.")
    }

    pub async fn create_function_url(
        &self,
        function: &str,
        qualifier: Option<&str>,
        auth_type: AuthType,
        cors: Option<Cors>,
        invoke_mode: Option<String>,
    ) -> Result<FunctionUrlConfig, ApiError> {
        self.check_url_qualifier(function, qualifier).await?;
        let invoke_mode = invoke_mode.unwrap_or_else(|| "BUFFERED".into());
        check_invoke_mode(&invoke_mode)?;
        let now = now_millis();
        let config = FunctionUrlConfig {
            function: function.to_string(),
            qualifier: qualifier.map(str::to_string),
            url_id: new_url_id(),
            auth_type,
            cors,
            invoke_mode,
            created_ms: now,
            modified_ms: now,
        };
        match self.store.put_function_url(&config, true).await {
            Ok(()) => Ok(config),
            Err(StoreError::Conflict) => Err(ApiError::conflict(format!(
                "Failed to create function url config for [functionArn = {}]. Error message:  FunctionUrlConfig exists for this Lambda function",
                self.partition.function_arn(function)
            ))),
            Err(e) => Err(store_err(e)),
        }
    }

    pub async fn get_function_url(&self, function: &str, qualifier: Option<&str>) -> Result<FunctionUrlConfig, ApiError> {
        self.get(function).await.map_err(|e| if e.code == ErrorCode::ResourceNotFound { self.url_not_found() } else { e })?;
        self.store.get_function_url(function, qualifier).await.map_err(store_err)?.ok_or_else(|| self.url_not_found())
    }

    pub async fn update_function_url(
        &self,
        function: &str,
        qualifier: Option<&str>,
        change: UrlChange,
    ) -> Result<FunctionUrlConfig, ApiError> {
        self.check_url_qualifier(function, qualifier).await?;
        let mut next = self.get_function_url(function, qualifier).await?;
        if let Some(a) = change.auth_type {
            next.auth_type = a;
        }
        if let Some(c) = change.cors {
            next.cors = c;
        }
        if let Some(m) = change.invoke_mode {
            check_invoke_mode(&m)?;
            next.invoke_mode = m;
        }
        next.modified_ms = now_millis();
        self.store.put_function_url(&next, false).await.map_err(|e| match e {
            StoreError::NotFound => self.url_not_found(),
            e => store_err(e),
        })?;
        self.view.forget_url(&next.url_id);
        Ok(next)
    }

    pub async fn delete_function_url(&self, function: &str, qualifier: Option<&str>) -> Result<(), ApiError> {
        let current = self.get_function_url(function, qualifier).await?;
        self.store.delete_function_url(function, qualifier).await.map_err(store_err)?;
        self.view.forget_url(&current.url_id);
        Ok(())
    }

    pub async fn list_function_urls(&self, function: &str) -> Result<Vec<FunctionUrlConfig>, ApiError> {
        self.get(function).await.map_err(function_missing)?;
        self.store.list_function_urls(function).await.map_err(store_err)
    }

    /// The URL config behind a URL id, or None; served from memory after the first request.
    pub async fn url_by_id(&self, url_id: &str) -> Result<Option<Arc<FunctionUrlConfig>>, ApiError> {
        if let Some(c) = self.view.url(url_id) {
            return Ok(Some(c));
        }
        let seen = self.view.seen_urls();
        let Some(c) = self.store.get_function_url_by_id(url_id).await.map_err(store_err)? else { return Ok(None) };
        let c = Arc::new(c);
        self.view.fill_url(c.clone(), seen);
        Ok(Some(c))
    }
}

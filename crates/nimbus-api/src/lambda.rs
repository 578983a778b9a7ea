//! Lambda actions executed, and their answers in Lambda's rest-json shapes.

use base64::Engine;
use http::{HeaderValue, Response, StatusCode};
use nimbus_model::{format_last_modified, validate, ApiError, FunctionConfig, FunctionRef, Qualifier};
use serde_json::{json, Map, Value};

use crate::action::Action;
use crate::response::{self, Body};
use crate::server::AppState;

/// AWS's FunctionConfiguration object.
pub fn configuration_json(state: &AppState, c: &FunctionConfig) -> Value {
    let mut v = json!({
        "FunctionName": c.name,
        "FunctionArn": state.control.partition().function_arn(&c.name),
        "Runtime": c.runtime.id(),
        "Role": c.role,
        "Handler": c.handler,
        "CodeSize": c.code_size,
        "Description": c.description,
        "Timeout": c.timeout_secs,
        "MemorySize": c.memory_mb,
        "LastModified": format_last_modified(c.last_modified_ms),
        "CodeSha256": c.code_sha256_base64(),
        "Version": c.version,
        "TracingConfig": {"Mode": "PassThrough"},
        "RevisionId": c.revision_id,
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "PackageType": "Zip",
        "Architectures": c.architectures,
        "EphemeralStorage": {"Size": c.ephemeral_storage_mb},
        "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": c.log_group()},
    });
    if !c.environment.is_empty() {
        v["Environment"] = json!({ "Variables": c.environment });
    }
    v
}

/// Versions and aliases arrive with their own issue; until then only `$LATEST` exists.
fn latest_only(state: &AppState, f: &FunctionRef) -> Result<(), ApiError> {
    match &f.qualifier {
        None | Some(Qualifier::Latest) => Ok(()),
        Some(Qualifier::Named(q)) => Err(ApiError::not_found(format!(
            "Function not found: {}",
            state.control.partition().qualified_arn(&f.name, q)
        ))),
    }
}

/// Concurrency settings belong to the function, never to a version or alias.
fn no_qualifier(f: &FunctionRef) -> Result<(), ApiError> {
    if f.qualifier.is_some() {
        return Err(ApiError::invalid("This operation does not support a qualifier: name the function only."));
    }
    Ok(())
}

pub async fn execute(state: &AppState, action: Action, host: &str) -> Result<Response<Body>, ApiError> {
    let control = &state.control;
    match action {
        Action::CreateFunction(f) => {
            let c = control.create(*f).await?;
            Ok(response::json(StatusCode::CREATED, &configuration_json(state, &c)))
        }
        Action::GetFunction(f) => {
            latest_only(state, &f)?;
            let c = control.get(&f.name).await?;
            let body = json!({
                "Configuration": configuration_json(state, &c),
                "Code": {
                    "RepositoryType": "S3",
                    "Location": format!("http://{host}/_nimbus/code/{}", c.code_digest),
                },
                "Tags": {},
            });
            let mut body = body;
            if let Some(r) = c.reserved_concurrency {
                body["Concurrency"] = json!({ "ReservedConcurrentExecutions": r });
            }
            Ok(response::json(StatusCode::OK, &body))
        }
        Action::GetFunctionConfiguration(f) => {
            latest_only(state, &f)?;
            let c = control.get(&f.name).await?;
            Ok(response::json(StatusCode::OK, &configuration_json(state, &c)))
        }
        Action::ListFunctions { marker, max_items } => {
            let (page, next) = control.list(marker.as_deref(), max_items).await?;
            let mut body = Map::new();
            body.insert("Functions".into(), Value::Array(page.iter().map(|c| configuration_json(state, c)).collect()));
            if let Some(n) = next {
                body.insert("NextMarker".into(), Value::String(n));
            }
            Ok(response::json(StatusCode::OK, &Value::Object(body)))
        }
        Action::UpdateFunctionCode { function, zip, revision_id } => {
            latest_only(state, &function)?;
            let c = control.update_code(&function.name, &zip, revision_id.as_deref()).await?;
            Ok(response::json(StatusCode::OK, &configuration_json(state, &c)))
        }
        Action::UpdateFunctionConfiguration { function, change } => {
            latest_only(state, &function)?;
            let c = control.update_config(&function.name, *change).await?;
            Ok(response::json(StatusCode::OK, &configuration_json(state, &c)))
        }
        Action::DeleteFunction(f) => {
            match &f.qualifier {
                Some(Qualifier::Latest) => {
                    return Err(ApiError::invalid("$LATEST version cannot be deleted without deleting the function."))
                }
                Some(Qualifier::Named(_)) => latest_only(state, &f)?,
                None => {}
            }
            control.delete(&f.name).await?;
            Ok(response::empty(StatusCode::NO_CONTENT))
        }
        Action::GetAccountSettings => {
            let (code_size, count) = control.usage().await?;
            let body = json!({
                "AccountLimit": {
                    "TotalCodeSize": 80_530_636_800u64,
                    "CodeSizeUnzipped": validate::MAX_UNZIPPED_BYTES,
                    "CodeSizeZipped": validate::MAX_ZIPPED_BYTES,
                    "ConcurrentExecutions": control.concurrency_limit(),
                    "UnreservedConcurrentExecutions": control.unreserved_concurrency(),
                },
                "AccountUsage": { "TotalCodeSize": code_size, "FunctionCount": count },
            });
            Ok(response::json(StatusCode::OK, &body))
        }
        Action::PutFunctionConcurrency { function, reserved } => {
            no_qualifier(&function)?;
            let c = control.set_reserved_concurrency(&function.name, Some(reserved)).await?;
            Ok(response::json(StatusCode::OK, &json!({ "ReservedConcurrentExecutions": c.reserved_concurrency })))
        }
        Action::GetFunctionConcurrency(function) => {
            no_qualifier(&function)?;
            let c = control.get(&function.name).await?;
            let body = match c.reserved_concurrency {
                Some(r) => json!({ "ReservedConcurrentExecutions": r }),
                None => json!({}),
            };
            Ok(response::json(StatusCode::OK, &body))
        }
        Action::DeleteFunctionConcurrency(function) => {
            no_qualifier(&function)?;
            control.set_reserved_concurrency(&function.name, None).await?;
            Ok(response::empty(StatusCode::NO_CONTENT))
        }
        Action::InvokeDryRun(f) => {
            latest_only(state, &f)?;
            control.get(&f.name).await?;
            Ok(response::empty(StatusCode::NO_CONTENT))
        }
        Action::Invoke(req) => {
            let outcome = state.invoker.invoke(req).await?;
            let mut r = response::raw(StatusCode::OK, "application/json", outcome.payload);
            let h = r.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&outcome.executed_version) {
                h.insert("x-amz-executed-version", v);
            }
            if let Some(e) = outcome.function_error.as_deref().and_then(|e| HeaderValue::from_str(e).ok()) {
                h.insert("x-amz-function-error", e);
            }
            if let Some(tail) = outcome.log_tail {
                let b64 = base64::engine::general_purpose::STANDARD.encode(tail);
                if let Ok(v) = HeaderValue::from_str(&b64) {
                    h.insert("x-amz-log-result", v);
                }
            }
            if let Ok(v) = HeaderValue::from_str(&outcome.request_id) {
                h.insert("x-amzn-requestid", v);
            }
            Ok(r)
        }
        Action::GetCode { digest } => match control.code_zip(&digest).await? {
            Some(zip) => Ok(response::raw(StatusCode::OK, "application/zip", zip.into())),
            None => Err(ApiError::not_found("No code with that digest")),
        },
        Action::Health | Action::Logs(_) => unreachable!("handled by the server"),
    }
}

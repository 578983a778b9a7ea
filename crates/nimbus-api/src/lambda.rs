//! Lambda actions executed, and their answers in Lambda's rest-json shapes.

use base64::Engine;
use http::{HeaderValue, Response, StatusCode};
use nimbus_model::alias::AliasConfig;
use nimbus_model::layer::{LayerStatement, LayerVersion};
use nimbus_model::{format_last_modified, validate, ApiError, FunctionConfig, FunctionRef, Qualifier, LATEST};
use serde_json::{json, Map, Value};

use crate::action::Action;
use crate::response::{self, Body};
use crate::server::AppState;

/// AWS's FunctionConfiguration object. `$LATEST` has the unqualified ARN unless the caller
/// named a qualifier; a published version always has its qualified one.
pub fn configuration_json(state: &AppState, c: &FunctionConfig, qualifier: Option<&str>) -> Value {
    let p = state.control.partition();
    let arn = match qualifier {
        Some(q) => p.qualified_arn(&c.name, q),
        None if c.version != LATEST => p.qualified_arn(&c.name, &c.version),
        None => p.function_arn(&c.name),
    };
    let mut v = json!({
        "FunctionName": c.name,
        "FunctionArn": arn,
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
    if !c.layers.is_empty() {
        v["Layers"] = c.layers.iter().map(|l| json!({ "Arn": l.arn, "CodeSize": l.code_size })).collect();
    }
    v
}

/// AWS's GetLayerVersion / PublishLayerVersion object (`full`) or its list item.
fn layer_json(state: &AppState, l: &LayerVersion, host: &str, full: bool) -> Value {
    let p = state.control.partition();
    let mut v = json!({
        "LayerVersionArn": l.arn(p),
        "Version": l.version,
        "Description": l.description,
        "CreatedDate": format_last_modified(l.created_ms),
        "CompatibleRuntimes": l.compatible_runtimes,
        "CompatibleArchitectures": l.compatible_architectures,
    });
    if let Some(li) = &l.license_info {
        v["LicenseInfo"] = json!(li);
    }
    if full {
        v["LayerArn"] = json!(p.layer_arn(&l.layer_name));
        let sha = nimbus_model::function::digest_to_base64(&l.code_digest);
        v["Content"] = json!({
            "Location": format!("http://{host}/_nimbus/code/{}", l.code_digest),
            "CodeSha256": sha,
            "CodeSize": l.code_size,
        });
    }
    v
}

/// A layer's policy document as AWS renders it (a JSON string inside JSON).
fn policy_statement(state: &AppState, l: &LayerVersion, s: &LayerStatement) -> Value {
    let principal = if s.principal == "*" {
        json!("*")
    } else {
        let account = s.principal.trim_start_matches("arn:aws:iam::").trim_end_matches(":root");
        json!({ "AWS": format!("arn:aws:iam::{account}:root") })
    };
    let mut st = json!({
        "Sid": s.sid,
        "Effect": "Allow",
        "Principal": principal,
        "Action": s.action,
        "Resource": l.arn(state.control.partition()),
    });
    if let Some(org) = &s.organization_id {
        st["Condition"] = json!({ "StringEquals": { "aws:PrincipalOrgID": org } });
    }
    st
}

/// Operations that change code or configuration act on `$LATEST` only.
fn latest_only(f: &FunctionRef) -> Result<(), ApiError> {
    match &f.qualifier {
        None | Some(Qualifier::Latest) => Ok(()),
        Some(Qualifier::Named(q)) => Err(ApiError::invalid(format!(
            "This operation changes $LATEST only; the qualifier {q} is not allowed"
        ))),
    }
}

/// AWS's AliasConfiguration object.
fn alias_json(state: &AppState, a: &AliasConfig) -> Value {
    let mut v = json!({
        "AliasArn": state.control.partition().qualified_arn(&a.function_name, &a.name),
        "Name": a.name,
        "FunctionVersion": a.function_version,
        "Description": a.description,
        "RevisionId": a.revision_id,
    });
    if let Some((version, weight)) = &a.additional_version {
        v["RoutingConfig"] = json!({ "AdditionalVersionWeights": { version.as_str(): weight } });
    }
    v
}

fn page(items: Vec<Value>, key: &str, next: Option<String>) -> Value {
    let mut body = Map::new();
    body.insert(key.into(), Value::Array(items));
    if let Some(n) = next {
        body.insert("NextMarker".into(), Value::String(n));
    }
    Value::Object(body)
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
        Action::CreateFunction { function, publish } => {
            let name = function.name.clone();
            let mut c = control.create(*function).await?;
            if publish {
                c = control.publish(&name, None, None, None).await?;
            }
            Ok(response::json(StatusCode::CREATED, &configuration_json(state, &c, None)))
        }
        Action::GetFunction(f) => {
            let c = control.get_qualified(&f.name, f.qualifier.as_ref()).await?;
            let q = f.qualifier.as_ref().map(|q| q.as_str());
            let mut body = json!({
                "Configuration": configuration_json(state, &c, q),
                "Code": {
                    "RepositoryType": "S3",
                    "Location": format!("http://{host}/_nimbus/code/{}", c.code_digest),
                },
                "Tags": {},
            });
            let latest = if c.version == LATEST { c } else { control.get(&f.name).await? };
            if let Some(r) = latest.reserved_concurrency {
                body["Concurrency"] = json!({ "ReservedConcurrentExecutions": r });
            }
            Ok(response::json(StatusCode::OK, &body))
        }
        Action::GetFunctionConfiguration(f) => {
            let c = control.get_qualified(&f.name, f.qualifier.as_ref()).await?;
            Ok(response::json(StatusCode::OK, &configuration_json(state, &c, f.qualifier.as_ref().map(|q| q.as_str()))))
        }
        Action::ListFunctions { marker, max_items, all_versions } => {
            let (functions, next) = control.list(marker.as_deref(), max_items).await?;
            let mut items = Vec::new();
            for c in &functions {
                if all_versions {
                    let (versions, _) = control.list_versions(&c.name, None, usize::MAX).await?;
                    items.extend(versions.iter().map(|v| configuration_json(state, v, Some(&v.version))));
                } else {
                    items.push(configuration_json(state, c, None));
                }
            }
            Ok(response::json(StatusCode::OK, &page(items, "Functions", next)))
        }
        Action::UpdateFunctionCode { function, zip, revision_id, publish } => {
            latest_only(&function)?;
            let mut c = control.update_code(&function.name, &zip, revision_id.as_deref()).await?;
            if publish {
                c = control.publish(&function.name, None, None, None).await?;
            }
            Ok(response::json(StatusCode::OK, &configuration_json(state, &c, None)))
        }
        Action::UpdateFunctionConfiguration { function, change } => {
            latest_only(&function)?;
            let c = control.update_config(&function.name, *change).await?;
            Ok(response::json(StatusCode::OK, &configuration_json(state, &c, None)))
        }
        Action::PublishVersion { function, code_sha256, description, revision_id } => {
            latest_only(&function)?;
            let c = control.publish(&function.name, code_sha256.as_deref(), description, revision_id.as_deref()).await?;
            Ok(response::json(StatusCode::CREATED, &configuration_json(state, &c, None)))
        }
        Action::ListVersionsByFunction { function, marker, max_items } => {
            latest_only(&function)?;
            let (versions, next) = control.list_versions(&function.name, marker.as_deref(), max_items).await?;
            let items = versions.iter().map(|v| configuration_json(state, v, Some(&v.version))).collect();
            Ok(response::json(StatusCode::OK, &page(items, "Versions", next)))
        }
        Action::CreateAlias { function, name, function_version, description, weights } => {
            no_qualifier(&function)?;
            let a = control.create_alias(&function.name, &name, &function_version, description, weights).await?;
            Ok(response::json(StatusCode::CREATED, &alias_json(state, &a)))
        }
        Action::GetAlias { function, name } => {
            no_qualifier(&function)?;
            let a = control.get_alias(&function.name, &name).await?;
            Ok(response::json(StatusCode::OK, &alias_json(state, &a)))
        }
        Action::UpdateAlias { function, name, change } => {
            no_qualifier(&function)?;
            let a = control.update_alias(&function.name, &name, change).await?;
            Ok(response::json(StatusCode::OK, &alias_json(state, &a)))
        }
        Action::DeleteAlias { function, name } => {
            no_qualifier(&function)?;
            control.delete_alias(&function.name, &name).await?;
            Ok(response::empty(StatusCode::NO_CONTENT))
        }
        Action::ListAliases { function, function_version, marker, max_items } => {
            no_qualifier(&function)?;
            let (aliases, next) = control.list_aliases(&function.name, function_version.as_deref(), marker.as_deref(), max_items).await?;
            let items = aliases.iter().map(|a| alias_json(state, a)).collect();
            Ok(response::json(StatusCode::OK, &page(items, "Aliases", next)))
        }
        Action::DeleteFunction(f) => {
            match &f.qualifier {
                Some(Qualifier::Latest) => {
                    return Err(ApiError::invalid("$LATEST version cannot be deleted without deleting the function."))
                }
                Some(Qualifier::Named(q)) if nimbus_model::alias::is_version_number(q) => control.delete_version(&f.name, q).await?,
                Some(Qualifier::Named(q)) => {
                    return Err(ApiError::invalid(format!(
                        "Deletion of aliases is not supported by DeleteFunction: use DeleteAlias for {q}"
                    )))
                }
                None => control.delete(&f.name).await?,
            }
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
        Action::PublishLayerVersion(v) => {
            let l = control.publish_layer_version(*v).await?;
            Ok(response::json(StatusCode::CREATED, &layer_json(state, &l, host, true)))
        }
        Action::GetLayerVersion { layer, version } => {
            let l = control.get_layer_version(&layer, version).await?;
            Ok(response::json(StatusCode::OK, &layer_json(state, &l, host, true)))
        }
        Action::GetLayerVersionByArn { arn } => {
            let l = control.get_layer_version_by_arn(&arn).await?;
            Ok(response::json(StatusCode::OK, &layer_json(state, &l, host, true)))
        }
        Action::ListLayers { runtime, architecture, marker, max_items } => {
            let (layers, next) = control.list_layers(runtime.as_deref(), architecture.as_deref(), marker.as_deref(), max_items).await?;
            let p = control.partition();
            let items = layers
                .iter()
                .map(|l| {
                    json!({
                        "LayerName": l.layer_name,
                        "LayerArn": p.layer_arn(&l.layer_name),
                        "LatestMatchingVersion": layer_json(state, l, host, false),
                    })
                })
                .collect();
            Ok(response::json(StatusCode::OK, &page(items, "Layers", next)))
        }
        Action::ListLayerVersions { layer, runtime, architecture, marker, max_items } => {
            let (versions, next) =
                control.list_layer_versions(&layer, runtime.as_deref(), architecture.as_deref(), marker.as_deref(), max_items).await?;
            let items = versions.iter().map(|l| layer_json(state, l, host, false)).collect();
            Ok(response::json(StatusCode::OK, &page(items, "LayerVersions", next)))
        }
        Action::DeleteLayerVersion { layer, version } => {
            control.delete_layer_version(&layer, version).await?;
            Ok(response::empty(StatusCode::NO_CONTENT))
        }
        Action::AddLayerVersionPermission { layer, version, statement, revision_id } => {
            let l = control.add_layer_permission(&layer, version, statement.clone(), revision_id.as_deref()).await?;
            let st = policy_statement(state, &l, &statement);
            Ok(response::json(StatusCode::CREATED, &json!({ "Statement": st.to_string(), "RevisionId": l.policy_revision })))
        }
        Action::RemoveLayerVersionPermission { layer, version, statement_id, revision_id } => {
            control.remove_layer_permission(&layer, version, &statement_id, revision_id.as_deref()).await?;
            Ok(response::empty(StatusCode::NO_CONTENT))
        }
        Action::GetLayerVersionPolicy { layer, version } => {
            let l = control.get_layer_version(&layer, version).await?;
            if l.policy.is_empty() {
                return Err(ApiError::not_found("No policy is associated with the given resource."));
            }
            let statements: Vec<Value> = l.policy.iter().map(|s| policy_statement(state, &l, s)).collect();
            let policy = json!({ "Version": "2012-10-17", "Id": "default", "Statement": statements });
            Ok(response::json(StatusCode::OK, &json!({ "Policy": policy.to_string(), "RevisionId": l.policy_revision })))
        }
        Action::InvokeDryRun(f) => {
            control.get_qualified(&f.name, f.qualifier.as_ref()).await?;
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
        Action::Health | Action::Logs(_) | Action::Sqs(_) => unreachable!("handled by the server"),
    }
}

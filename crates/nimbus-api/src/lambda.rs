//! Lambda actions executed, and their answers in Lambda's rest-json shapes.

use base64::Engine;
use http::{HeaderValue, Response, StatusCode};
use nimbus_model::alias::AliasConfig;
use nimbus_model::event_source::EventSourceMapping;
use nimbus_model::invoke::EventInvokeConfig;
use nimbus_model::layer::{LayerStatement, LayerVersion};
use nimbus_model::provisioned::{self, ProvisionedConfig, ProvisionedStatus};
use nimbus_model::url::FunctionUrlConfig;
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
    if let Some(dlq) = &c.dead_letter_target {
        v["DeadLetterConfig"] = json!({ "TargetArn": dlq });
    }
    v
}

/// AWS's FunctionEventInvokeConfig object.
fn event_config_json(state: &AppState, c: &EventInvokeConfig) -> Value {
    let mut v = json!({
        "LastModified": c.last_modified_ms as f64 / 1000.0,
        "FunctionArn": state.control.partition().qualified_arn(&c.function, &c.qualifier),
        "DestinationConfig": {},
    });
    if let Some(r) = c.maximum_retry_attempts {
        v["MaximumRetryAttempts"] = json!(r);
    }
    if let Some(a) = c.maximum_event_age_secs {
        v["MaximumEventAgeInSeconds"] = json!(a);
    }
    if let Some(d) = &c.on_success {
        v["DestinationConfig"]["OnSuccess"] = json!({ "Destination": d });
    }
    if let Some(d) = &c.on_failure {
        v["DestinationConfig"]["OnFailure"] = json!({ "Destination": d });
    }
    v
}

/// AWS's FunctionUrlConfig object.
fn url_json(state: &AppState, c: &FunctionUrlConfig, created: bool) -> Value {
    let p = state.control.partition();
    let iso = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    let mut v = json!({
        "FunctionUrl": format!("http://{}.{}:{}/", c.url_id, state.url_domain, state.port),
        "FunctionArn": match &c.qualifier {
            Some(q) => p.qualified_arn(&c.function, q),
            None => p.function_arn(&c.function),
        },
        "AuthType": c.auth_type.as_str(),
        "CreationTime": iso(c.created_ms),
        "InvokeMode": c.invoke_mode,
    });
    if !created {
        v["LastModifiedTime"] = json!(iso(c.modified_ms));
    }
    if let Some(cors) = &c.cors {
        let mut o = json!({
            "AllowCredentials": cors.allow_credentials,
            "AllowHeaders": cors.allow_headers,
            "AllowMethods": cors.allow_methods,
            "AllowOrigins": cors.allow_origins,
            "ExposeHeaders": cors.expose_headers,
        });
        if let Some(age) = cors.max_age {
            o["MaxAge"] = json!(age);
        }
        v["Cors"] = o;
    }
    v
}

/// AWS's EventSourceMappingConfiguration object.
fn mapping_json(state: &AppState, m: &EventSourceMapping, transition: Option<&str>) -> Value {
    let p = state.control.partition();
    let mut v = json!({
        "UUID": m.uuid,
        "BatchSize": m.batch_size,
        "MaximumBatchingWindowInSeconds": m.maximum_batching_window_secs,
        "EventSourceArn": m.event_source_arn,
        "FunctionArn": match &m.qualifier {
            Some(q) => p.qualified_arn(&m.function, q),
            None => p.function_arn(&m.function),
        },
        "LastModified": m.last_modified_ms as f64 / 1000.0,
        "LastProcessingResult": m.last_processing_result,
        "State": transition.unwrap_or(if m.enabled { "Enabled" } else { "Disabled" }),
        "StateTransitionReason": "USER_INITIATED",
        "FunctionResponseTypes": if m.report_batch_item_failures { vec!["ReportBatchItemFailures"] } else { vec![] },
    });
    if let Some(c) = m.maximum_concurrency {
        v["ScalingConfig"] = json!({ "MaximumConcurrency": c });
    }
    if !m.filters.is_empty() {
        v["FilterCriteria"] = json!({ "Filters": m.filters.iter().map(|p| json!({ "Pattern": p })).collect::<Vec<_>>() });
    }
    v
}

fn qualifier_or_latest(f: &FunctionRef) -> &str {
    f.qualifier.as_ref().map(|q| q.as_str()).unwrap_or(LATEST)
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

/// AWS's provisioned concurrency config object (list items also carry the ARN), with the
/// allocation as the pool sees it now.
fn provisioned_json(state: &AppState, c: &ProvisionedConfig, list_item: bool) -> Value {
    let counts = state.invoker.pool().provisioned_counts(&c.function, &c.qualifier);
    let requested = c.requested as usize;
    let status = match &counts.failure {
        Some(_) => ProvisionedStatus::Failed,
        None if counts.requested >= requested && counts.allocated >= requested => ProvisionedStatus::Ready,
        None => ProvisionedStatus::InProgress,
    };
    let allocated = counts.allocated.min(requested);
    let mut v = json!({
        "RequestedProvisionedConcurrentExecutions": c.requested,
        "AvailableProvisionedConcurrentExecutions": allocated,
        "AllocatedProvisionedConcurrentExecutions": allocated,
        "Status": status.as_str(),
        "LastModified": provisioned::format_last_modified(c.last_modified_ms),
    });
    if let Some(reason) = status.reason() {
        v["StatusReason"] = json!(reason);
    }
    if list_item {
        v["FunctionArn"] = json!(state.control.partition().qualified_arn(&c.function, &c.qualifier));
    }
    v
}

/// Operations that change code or configuration act on `$LATEST` only.
fn latest_only(f: &FunctionRef) -> Result<(), ApiError> {
    match &f.qualifier {
        None | Some(Qualifier::Latest) => Ok(()),
        Some(Qualifier::Named(q)) => {
            Err(ApiError::invalid(format!("This operation changes $LATEST only; the qualifier {q} is not allowed")))
        }
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
        Action::PutProvisionedConcurrencyConfig { function, requested } => {
            let c = control.put_provisioned(&function.name, function.qualifier.as_ref(), requested).await?;
            Ok(response::json(StatusCode::ACCEPTED, &provisioned_json(state, &c, false)))
        }
        Action::GetProvisionedConcurrencyConfig(function) => {
            let c = control.get_provisioned(&function.name, function.qualifier.as_ref()).await?;
            Ok(response::json(StatusCode::OK, &provisioned_json(state, &c, false)))
        }
        Action::DeleteProvisionedConcurrencyConfig(function) => {
            control.delete_provisioned(&function.name, function.qualifier.as_ref()).await?;
            Ok(response::empty(StatusCode::NO_CONTENT))
        }
        Action::ListProvisionedConcurrencyConfigs { function, marker, max_items } => {
            let (list, next) = control.list_provisioned(&function.name, marker.as_deref(), max_items).await?;
            let items = list.iter().map(|c| provisioned_json(state, c, true)).collect();
            Ok(response::json(StatusCode::OK, &page(items, "ProvisionedConcurrencyConfigs", next)))
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
        Action::CreateEventSourceMapping(n) => {
            let m = state.event_sources.create(*n).await?;
            Ok(response::json(StatusCode::ACCEPTED, &mapping_json(state, &m, Some("Creating"))))
        }
        Action::GetEventSourceMapping { uuid } => {
            let m = state.event_sources.get(&uuid).await?;
            Ok(response::json(StatusCode::OK, &mapping_json(state, &m, None)))
        }
        Action::UpdateEventSourceMapping { uuid, change } => {
            let m = state.event_sources.update(&uuid, *change).await?;
            Ok(response::json(StatusCode::ACCEPTED, &mapping_json(state, &m, Some("Updating"))))
        }
        Action::DeleteEventSourceMapping { uuid } => {
            let m = state.event_sources.delete(&uuid).await?;
            Ok(response::json(StatusCode::ACCEPTED, &mapping_json(state, &m, Some("Deleting"))))
        }
        Action::ListEventSourceMappings { source, function, marker, max_items } => {
            let (list, next) = state.event_sources.list(source.as_deref(), function.as_deref(), marker.as_deref(), max_items).await?;
            let items = list.iter().map(|m| mapping_json(state, m, None)).collect();
            Ok(response::json(StatusCode::OK, &page(items, "EventSourceMappings", next)))
        }
        Action::CreateFunctionUrlConfig { function, auth_type, cors, invoke_mode } => {
            let q = function.qualifier.as_ref().map(|q| q.as_str());
            let c = control.create_function_url(&function.name, q, auth_type, cors, invoke_mode).await?;
            Ok(response::json(StatusCode::CREATED, &url_json(state, &c, true)))
        }
        Action::GetFunctionUrlConfig(function) => {
            let c = control.get_function_url(&function.name, function.qualifier.as_ref().map(|q| q.as_str())).await?;
            Ok(response::json(StatusCode::OK, &url_json(state, &c, false)))
        }
        Action::UpdateFunctionUrlConfig { function, change } => {
            let c = control.update_function_url(&function.name, function.qualifier.as_ref().map(|q| q.as_str()), change).await?;
            Ok(response::json(StatusCode::OK, &url_json(state, &c, false)))
        }
        Action::DeleteFunctionUrlConfig(function) => {
            control.delete_function_url(&function.name, function.qualifier.as_ref().map(|q| q.as_str())).await?;
            Ok(response::empty(StatusCode::NO_CONTENT))
        }
        Action::ListFunctionUrlConfigs(function) => {
            let list = control.list_function_urls(&function.name).await?;
            let items: Vec<Value> = list.iter().map(|c| url_json(state, c, false)).collect();
            Ok(response::json(StatusCode::OK, &json!({ "FunctionUrlConfigs": items })))
        }
        Action::InvokeAsync { function, payload } => {
            let request_id = state.async_invoker.submit(&function, payload).await?;
            let mut r = response::empty(StatusCode::ACCEPTED);
            if let Ok(v) = HeaderValue::from_str(&request_id) {
                r.headers_mut().insert("x-amzn-requestid", v);
            }
            Ok(r)
        }
        Action::PutEventInvokeConfig { function, change, replace } => {
            let c = control.put_event_invoke_config(&function.name, qualifier_or_latest(&function), change, replace).await?;
            Ok(response::json(StatusCode::OK, &event_config_json(state, &c)))
        }
        Action::GetEventInvokeConfig(function) => {
            let c = control.get_event_invoke_config(&function.name, qualifier_or_latest(&function)).await?;
            Ok(response::json(StatusCode::OK, &event_config_json(state, &c)))
        }
        Action::DeleteEventInvokeConfig(function) => {
            control.delete_event_invoke_config(&function.name, qualifier_or_latest(&function)).await?;
            Ok(response::empty(StatusCode::NO_CONTENT))
        }
        Action::ListEventInvokeConfigs(function) => {
            let list = control.list_event_invoke_configs(&function.name).await?;
            let items: Vec<Value> = list.iter().map(|c| event_config_json(state, c)).collect();
            Ok(response::json(StatusCode::OK, &json!({ "FunctionEventInvokeConfigs": items })))
        }
        Action::InvokeDryRun(f) => {
            control.get_qualified(&f.name, f.qualifier.as_ref()).await?;
            Ok(response::empty(StatusCode::NO_CONTENT))
        }
        Action::Invoke(req) => {
            let outcome = state.invoker.invoke_detached(req).await?;
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
        Action::Health
        | Action::Status
        | Action::Logs(_)
        | Action::InvokeFunctionUrl(_)
        | Action::Sqs(_)
        | Action::Events(_)
        | Action::Sns(_)
        | Action::Gateway(_)
        | Action::InvokeApi(_) => unreachable!("handled by the server"),
    }
}

//! Lambda on the wire: requests are routed by the HTTP bindings of Lambda's model and
//! decoded through `nimbus-protocol` into typed [`LambdaCall`]s; each call is checked,
//! executed against the control plane, the invoker or the event sources, and answered with
//! a typed output encoded as rest-json.

mod input;
mod output;
mod package;
mod unbuilt;
mod vpc;

use std::sync::LazyLock;

use base64::Engine;
use bytes::Bytes;
use http::Response;
use nimbus_identity::Caller;
use nimbus_model::{ApiError, ErrorCode, FunctionRef, Qualifier, LATEST};
use nimbus_protocol::encode::Empty;
use nimbus_protocol::rest::{query_pairs, rest_json, HttpRequest, Router};
use nimbus_protocol::{encode, DecodeError, Protocol, LAMBDA};
use serde::Serialize;

pub use input::LambdaCall;
use input::{CodeUpdate, Invocation, InvokeInput, NewUrl, PolicyResource, StreamInvocation, Tagged};
use output::*;

use crate::action::RawRequest;
use crate::response::Body;
use crate::server::AppState;

static ROUTER: LazyLock<Router> = LazyLock::new(|| Router::new(LAMBDA.model()));

/// One Lambda request: the call, decoded (or the error AWS would answer while decoding).
#[derive(Debug)]
pub struct LambdaRequest {
    pub operation: &'static str,
    pub call: Result<LambdaCall, ApiError>,
}

impl LambdaRequest {
    /// What IAM authorizes this call as (None when it did not decode).
    pub(crate) fn target(&self, scope: &crate::authz::Scope<'_>) -> Option<crate::authz::Target> {
        self.call.as_ref().ok().map(|c| c.target(scope))
    }
}

/// The resource-based policy document of the function (or version, or alias) `arn` names, as
/// GetPolicy renders it; None when it has none or does not exist.
pub(crate) async fn function_policy(control: &nimbus_control::ControlPlane, arn: &str) -> Option<String> {
    let p = control.partition();
    let f = FunctionRef::parse(arn, p).ok()?;
    let policy = control.policy_in_force(&f.name, qualifier(&f)).await?;
    policy_response(p, &f, &policy).policy
}

/// A Lambda request, if the path and method are one of Lambda's HTTP bindings.
pub fn recognize(req: &RawRequest<'_>) -> Option<LambdaRequest> {
    let query = query_pairs(req.query);
    let matched = ROUTER.find(req.method, req.path, &query)?;
    let operation = matched.operation;
    if !LambdaCall::OPERATIONS.contains(&operation) {
        let e = ApiError::new(ErrorCode::UnknownOperation, format!("Nimbus does not implement the Lambda operation {operation} yet"));
        return Some(LambdaRequest { operation, call: Err(e) });
    }
    let call = rest_json(LAMBDA.model(), &matched, &HttpRequest { headers: req.headers, query: &query, body: &req.body })
        .and_then(|input| LambdaCall::decode(operation, input).expect("served operations decode"))
        .map_err(decode_error);
    Some(LambdaRequest { operation, call })
}

/// Lambda's answer to a request that does not fit its operation's input shape.
fn decode_error(e: DecodeError) -> ApiError {
    let unparsable = |m: String| ApiError::new(ErrorCode::InvalidRequestContent, format!("Could not parse request body into json: {m}"));
    match e {
        DecodeError::Malformed(m) | DecodeError::Shape(m) => unparsable(m),
        DecodeError::Missing { member } => ApiError::missing(&lower_camel(&member)),
        DecodeError::Type { member, expected, value } => {
            unparsable(format!("Could not deserialize {member}: expected {expected}, got {value}"))
        }
        DecodeError::Binding { member, expected, value } => {
            let constraint = match expected {
                "integer" | "number" => "Member must be a number".to_string(),
                other => format!("Member must be a {other}"),
            };
            ApiError::validation(&value, &lower_camel(&member), &constraint)
        }
    }
}

/// `Code.ZipFile` as Lambda's validation messages name it: `code.zipFile`.
fn lower_camel(path: &str) -> String {
    path.split('.')
        .map(|seg| {
            let mut c = seg.chars();
            match c.next() {
                Some(first) => first.to_lowercase().chain(c).collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<String>>()
        .join(".")
}

/// Runs the request and answers it; `origin` (`http(s)://host`) is where download links point.
pub async fn execute(state: &AppState, req: LambdaRequest, origin: &str, caller: Option<&Caller>) -> Response<Body> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let result = match req.call {
        Ok(call) => run(state, call, origin, &request_id, caller).await,
        Err(e) => Err(e),
    };
    result.unwrap_or_else(|e| {
        if e.code == ErrorCode::Service {
            tracing::error!(operation = req.operation, "lambda: {e}");
        }
        encode::error(&LAMBDA, Protocol::RestJson, &e, &request_id).map(Body::from)
    })
}

async fn invoke_with_response_stream(state: &AppState, input: InvokeInput, rid: &str) -> Result<Response<Body>, ApiError> {
    let op = "InvokeWithResponseStream";
    match input.into_stream_invocation(state.control.partition())? {
        StreamInvocation::Run(req) => crate::streaming::invoke_with_response_stream(state, req).await,
        StreamInvocation::DryRun(f) => {
            state.control.get_qualified(&f.name, f.qualifier.as_ref()).await?;
            Ok(reply(op, &InvokeWithResponseStreamResponse { status_code: 204, ..Default::default() }, rid).map(Body::from))
        }
    }
}

/// A zip's download link, as AWS's presigned S3 URLs: it works unsigned for ten minutes
/// (`nimbus_identity::links`), from `origin` (`http(s)://host`).
fn code_location(state: &AppState, origin: &str, digest: &str) -> String {
    let path = format!("/_nimbus/code/{}/{digest}", state.account());
    format!("{origin}{path}?{}", state.accounts.links.query(&path, chrono::Utc::now().timestamp()))
}

fn reply<T: Serialize>(operation: &str, output: &T, request_id: &str) -> Response<Bytes> {
    encode::rest(&LAMBDA, operation, output, None, request_id)
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

/// Aliases belong to the function, never to a version or alias.
fn no_qualifier(f: &FunctionRef) -> Result<(), ApiError> {
    if f.qualifier.is_some() {
        return Err(ApiError::invalid("This operation does not support a qualifier: name the function only."));
    }
    Ok(())
}

/// Reserved concurrency belongs to the function (AWS's words).
fn function_only(f: &FunctionRef) -> Result<(), ApiError> {
    if f.qualifier.is_some() {
        return Err(ApiError::invalid(
            "This operation is permitted on Lambda functions only. Aliases and versions do not support this operation. Please specify either a function name or an unqualified function ARN.",
        ));
    }
    Ok(())
}

fn qualifier_or_latest(f: &FunctionRef) -> &str {
    f.qualifier.as_ref().map(|q| q.as_str()).unwrap_or(LATEST)
}

fn qualifier(f: &FunctionRef) -> Option<&str> {
    f.qualifier.as_ref().map(|q| q.as_str())
}

/// A function's configuration as Lambda answers it, its state included.
fn configuration(state: &AppState, c: &nimbus_model::FunctionConfig, qualifier: Option<&str>) -> FunctionConfiguration {
    FunctionConfiguration::new(state.control.partition(), c, qualifier).with_runtime_check(state.invoker.runtime_unavailable(c.runtime))
}

async fn run(state: &AppState, call: LambdaCall, origin: &str, rid: &str, caller: Option<&Caller>) -> Result<Response<Body>, ApiError> {
    let control = &state.control;
    let p = control.partition();
    let op = call.operation();
    let whole = match call {
        // Its answer streams: it never becomes a whole response.
        LambdaCall::InvokeWithResponseStream(input) => return invoke_with_response_stream(state, input, rid).await,
        LambdaCall::CreateFunction(mut input) => {
            let publish = input.publish();
            let vpc_config = input.vpc_config.take();
            let (mut function, package) = input.into_new_function()?;
            crate::authz::check_execution_role(state, caller, &function.role)?;
            if let Some(target) = &function.dead_letter_target {
                crate::authz::check_dead_letter_target(state, &function.role, &function.name, target).await?;
            }
            function.vpc = vpc::resolve(state, vpc_config, &function.role).await?;
            function.zip = package.load(state, caller).await?;
            let name = function.name.clone();
            let mut c = control.create(function).await?;
            if publish {
                c = control.publish(&name, None, None, None).await?;
            }
            reply(op, &configuration(state, &c, None), rid)
        }
        LambdaCall::GetFunction(input) => {
            let f = input.function(p)?;
            let c = control.get_qualified(&f.name, f.qualifier.as_ref()).await?;
            let configuration = configuration(state, &c, qualifier(&f));
            let code = FunctionCodeLocation { repository_type: "S3", location: code_location(state, origin, &c.code_digest) };
            let latest = if c.version == LATEST { c } else { control.get(&f.name).await? };
            let concurrency = latest.reserved_concurrency.map(|r| Concurrency { reserved_concurrent_executions: Some(r) });
            reply(op, &GetFunctionResponse { configuration, code, tags: latest.tags, concurrency }, rid)
        }
        LambdaCall::GetFunctionConfiguration(input) => {
            let f = input.function(p)?;
            let c = control.get_qualified(&f.name, f.qualifier.as_ref()).await?;
            reply(op, &configuration(state, &c, qualifier(&f)), rid)
        }
        LambdaCall::ListFunctions(input) => {
            let all_versions = input.all_versions()?;
            let (functions, next_marker) = control.list(input.page.marker().as_deref(), input.page.max_items()?).await?;
            let mut items = Vec::new();
            for c in &functions {
                if all_versions {
                    let (versions, _) = control.list_versions(&c.name, None, usize::MAX).await?;
                    items.extend(versions.iter().map(|v| configuration(state, v, Some(&v.version))));
                } else {
                    items.push(configuration(state, c, None));
                }
            }
            reply(op, &ListFunctionsResponse { functions: items, next_marker }, rid)
        }
        LambdaCall::UpdateFunctionCode(input) => {
            let CodeUpdate { function, package, revision_id, publish } = input.into_update(p)?;
            latest_only(&function)?;
            let zip = package.load(state, caller).await?;
            let mut c = control.update_code(&function.name, &zip, revision_id.as_deref()).await?;
            if publish {
                c = control.publish(&function.name, None, None, None).await?;
            }
            reply(op, &configuration(state, &c, None), rid)
        }
        LambdaCall::UpdateFunctionConfiguration(mut input) => {
            let vpc_config = input.vpc_config.take();
            let (function, mut change) = input.into_change(p)?;
            latest_only(&function)?;
            if let Some(role) = &change.role {
                crate::authz::check_execution_role(state, caller, role)?;
            }
            if let Some(target) = &change.dead_letter_target {
                let role = match &change.role {
                    Some(r) => r.clone(),
                    None => control.get(&function.name).await?.role,
                };
                crate::authz::check_dead_letter_target(state, &role, &function.name, target).await?;
            }
            vpc::update(state, &function.name, vpc_config, &mut change).await?;
            let c = control.update_config(&function.name, change).await?;
            reply(op, &configuration(state, &c, None), rid)
        }
        LambdaCall::PublishVersion(input) => {
            let function = input.function(p)?;
            latest_only(&function)?;
            let c = control.publish(&function.name, input.code_sha256.as_deref(), input.description, input.revision_id.as_deref()).await?;
            reply(op, &configuration(state, &c, None), rid)
        }
        LambdaCall::ListVersionsByFunction(input) => {
            let function = input.function(p)?;
            latest_only(&function)?;
            let (versions, next_marker) =
                control.list_versions(&function.name, input.page.marker().as_deref(), input.page.max_items()?).await?;
            let versions = versions.iter().map(|v| configuration(state, v, Some(&v.version))).collect();
            reply(op, &ListVersionsByFunctionResponse { versions, next_marker }, rid)
        }
        LambdaCall::DeleteFunction(input) => {
            let f = input.function(p)?;
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
            reply(op, &StatusOnly { status_code: 204 }, rid)
        }
        LambdaCall::CreateAlias(mut input) => {
            let (function, description, weights) = input.checked(p)?;
            no_qualifier(&function)?;
            let a = control.create_alias(&function.name, &input.name, &input.function_version, description, weights).await?;
            reply(op, &AliasConfiguration::new(p, &a), rid)
        }
        LambdaCall::GetAlias(input) => {
            let function = input.function(p)?;
            no_qualifier(&function)?;
            let a = control.get_alias(&function.name, &input.name).await?;
            reply(op, &AliasConfiguration::new(p, &a), rid)
        }
        LambdaCall::UpdateAlias(input) => {
            let (function, name, change) = input.into_change(p)?;
            no_qualifier(&function)?;
            let a = control.update_alias(&function.name, &name, change).await?;
            reply(op, &AliasConfiguration::new(p, &a), rid)
        }
        LambdaCall::DeleteAlias(input) => {
            let function = input.function(p)?;
            no_qualifier(&function)?;
            control.delete_alias(&function.name, &input.name).await?;
            reply(op, &Empty {}, rid)
        }
        LambdaCall::ListAliases(input) => {
            let function = input.function(p)?;
            no_qualifier(&function)?;
            let (aliases, next_marker) = control
                .list_aliases(&function.name, input.function_version(), input.page.marker().as_deref(), input.page.max_items()?)
                .await?;
            let aliases = aliases.iter().map(|a| AliasConfiguration::new(p, a)).collect();
            reply(op, &ListAliasesResponse { aliases, next_marker }, rid)
        }
        LambdaCall::GetAccountSettings(_) => {
            let (code_size, count) = control.usage().await?;
            let out = GetAccountSettingsResponse {
                account_limit: AccountLimit {
                    total_code_size: 80_530_636_800,
                    code_size_unzipped: nimbus_model::validate::MAX_UNZIPPED_BYTES,
                    code_size_zipped: nimbus_model::validate::MAX_ZIPPED_BYTES,
                    concurrent_executions: control.concurrency_limit(),
                    unreserved_concurrent_executions: control.unreserved_concurrency(),
                },
                account_usage: AccountUsage { total_code_size: code_size, function_count: count },
            };
            reply(op, &out, rid)
        }
        LambdaCall::PutFunctionConcurrency(input) => {
            let (function, reserved) = input.checked(p)?;
            function_only(&function)?;
            let c = control.set_reserved_concurrency(&function.name, Some(reserved)).await?;
            reply(op, &Concurrency { reserved_concurrent_executions: c.reserved_concurrency }, rid)
        }
        LambdaCall::GetFunctionConcurrency(input) => {
            let function = input.function(p)?;
            function_only(&function)?;
            let c = control.get(&function.name).await?;
            reply(op, &Concurrency { reserved_concurrent_executions: c.reserved_concurrency }, rid)
        }
        LambdaCall::DeleteFunctionConcurrency(input) => {
            let function = input.function(p)?;
            function_only(&function)?;
            control.set_reserved_concurrency(&function.name, None).await?;
            reply(op, &Empty {}, rid)
        }
        LambdaCall::PutProvisionedConcurrencyConfig(input) => {
            let (function, requested) = input.checked(p)?;
            let c = control.put_provisioned(&function.name, function.qualifier.as_ref(), requested).await?;
            reply(op, &ProvisionedConcurrencyConfig::new(state, &c, false), rid)
        }
        LambdaCall::GetProvisionedConcurrencyConfig(input) => {
            let function = input.function(p)?;
            let c = control.get_provisioned(&function.name, function.qualifier.as_ref()).await?;
            reply(op, &ProvisionedConcurrencyConfig::new(state, &c, false), rid)
        }
        LambdaCall::DeleteProvisionedConcurrencyConfig(input) => {
            let function = input.function(p)?;
            control.delete_provisioned(&function.name, function.qualifier.as_ref()).await?;
            reply(op, &Empty {}, rid)
        }
        LambdaCall::ListProvisionedConcurrencyConfigs(input) => {
            let function = input.function(p)?;
            let (list, next_marker) =
                control.list_provisioned(&function.name, input.page.marker().as_deref(), input.page.max_items_up_to(50)?).await?;
            let configs = list.iter().map(|c| ProvisionedConcurrencyConfig::new(state, c, true)).collect();
            reply(op, &ListProvisionedConcurrencyConfigsResponse { provisioned_concurrency_configs: configs, next_marker }, rid)
        }
        LambdaCall::PublishLayerVersion(input) => {
            let (mut version, package) = input.into_new_version()?;
            version.zip = package.load(state, caller).await?;
            let l = control.publish_layer_version(version).await?;
            reply(op, &LayerVersionResponse::full(p, &l, code_location(state, origin, &l.code_digest)), rid)
        }
        LambdaCall::GetLayerVersion(input) => {
            let l = control.get_layer_version(&input.layer_name, input.version()?).await?;
            reply(op, &LayerVersionResponse::full(p, &l, code_location(state, origin, &l.code_digest)), rid)
        }
        LambdaCall::GetLayerVersionByArn(input) => {
            let l = control.get_layer_version_by_arn(&input.arn).await?;
            reply(op, &LayerVersionResponse::full(p, &l, code_location(state, origin, &l.code_digest)), rid)
        }
        LambdaCall::ListLayers(input) => {
            let (layers, next_marker) =
                control.list_layers(input.runtime(), input.architecture(), input.page.marker().as_deref(), input.page.max_items()?).await?;
            let layers = layers
                .iter()
                .map(|l| LayersListItem {
                    layer_name: l.layer_name.clone(),
                    layer_arn: p.layer_arn(&l.layer_name),
                    latest_matching_version: LayerVersionResponse::item(p, l),
                })
                .collect();
            reply(op, &ListLayersResponse { layers, next_marker }, rid)
        }
        LambdaCall::ListLayerVersions(input) => {
            let layer = input.layer_name.clone().unwrap_or_default();
            let (versions, next_marker) = control
                .list_layer_versions(&layer, input.runtime(), input.architecture(), input.page.marker().as_deref(), input.page.max_items()?)
                .await?;
            let layer_versions = versions.iter().map(|l| LayerVersionResponse::item(p, l)).collect();
            reply(op, &ListLayerVersionsResponse { layer_versions, next_marker }, rid)
        }
        LambdaCall::DeleteLayerVersion(input) => {
            control.delete_layer_version(&input.layer_name, input.version()?).await?;
            reply(op, &Empty {}, rid)
        }
        LambdaCall::AddLayerVersionPermission(input) => {
            let layer = input.layer_name.clone();
            let (version, statement, revision_id) = input.checked()?;
            let l = control.add_layer_permission(&layer, version, statement.clone(), revision_id.as_deref()).await?;
            let statement = serde_json::to_string(&PolicyStatement::for_layer(p, &l, &statement)).expect("serializes");
            reply(op, &PolicyResponse { statement: Some(statement), policy: None, revision_id: l.policy_revision }, rid)
        }
        LambdaCall::RemoveLayerVersionPermission(input) => {
            control.remove_layer_permission(&input.layer_name, input.version()?, &input.statement_id, input.revision_id()).await?;
            reply(op, &Empty {}, rid)
        }
        LambdaCall::GetLayerVersionPolicy(input) => {
            let l = control.get_layer_version(&input.layer_name, input.version()?).await?;
            if l.policy.is_empty() {
                return Err(ApiError::not_found("No policy is associated with the given resource."));
            }
            let statement = l.policy.iter().map(|s| PolicyStatement::for_layer(p, &l, s)).collect();
            let policy = serde_json::to_string(&PolicyDocument { version: "2012-10-17", id: "default", statement }).expect("serializes");
            reply(op, &PolicyResponse { statement: None, policy: Some(policy), revision_id: l.policy_revision }, rid)
        }
        LambdaCall::Invoke(input) => match input.into_invocation(p)? {
            Invocation::Sync(req) => {
                let outcome = state.invoker.invoke_detached(req).await?;
                let out = InvocationResponse {
                    status_code: 200,
                    function_error: outcome.function_error,
                    log_result: outcome.log_tail.map(|tail| base64::engine::general_purpose::STANDARD.encode(tail)),
                    executed_version: Some(outcome.executed_version),
                };
                encode::rest(&LAMBDA, op, &out, Some((outcome.payload, "application/json")), &outcome.request_id)
            }
            Invocation::Async { function, payload, trace } => {
                let request_id = state.async_invoker.submit_traced(&function, payload, trace).await?;
                encode::rest(&LAMBDA, op, &InvocationResponse { status_code: 202, ..Default::default() }, None, &request_id)
            }
            Invocation::DryRun(f) => {
                control.get_qualified(&f.name, f.qualifier.as_ref()).await?;
                reply(op, &InvocationResponse { status_code: 204, ..Default::default() }, rid)
            }
        },
        LambdaCall::InvokeAsync(input) => {
            let (function, payload) = input.into_invocation(p)?;
            let request_id = state.async_invoker.submit(&function, payload).await?;
            encode::rest(&LAMBDA, op, &InvokeAsyncResponse { status: 202 }, None, &request_id)
        }
        LambdaCall::CreateEventSourceMapping(input) => {
            let new = input.into_new(p)?;
            // A missing function is the mapping service's to answer, in its words.
            if let Ok(f) = control.get(&new.function.name).await {
                crate::authz::check_queue_poller(state, &f.role, &new.function.name, &new.event_source_arn).await?;
                crate::authz::check_stream_poller(state, &f.role, &new.function.name, &new.event_source_arn).await?;
                if let Some(Some(dest)) = &new.stream.on_failure {
                    crate::authz::check_mapping_destination(state, &f.role, &new.function.name, dest).await?;
                }
            }
            let m = state.event_sources.create(new).await?;
            reply(op, &EventSourceMappingConfiguration::new(p, &m, Some("Creating")), rid)
        }
        LambdaCall::GetEventSourceMapping(input) => {
            let m = state.event_sources.get(&input.uuid).await?;
            reply(op, &EventSourceMappingConfiguration::new(p, &m, None), rid)
        }
        LambdaCall::UpdateEventSourceMapping(mut input) => {
            let uuid = input.uuid.take().unwrap_or_default();
            let was_enabled = state.event_sources.get(&uuid).await.map(|m| m.enabled).ok();
            let change = input.into_change(p)?;
            if let Some(Some(dest)) = &change.stream.on_failure {
                // The role of the function the mapping will invoke must be able to write there.
                let function = match &change.function {
                    Some(f) => Some(f.name.clone()),
                    None => state.event_sources.get(&uuid).await.ok().map(|m| m.function),
                };
                if let Some(name) = function {
                    if let Ok(f) = control.get(&name).await {
                        crate::authz::check_mapping_destination(state, &f.role, &name, dest).await?;
                    }
                }
            }
            let m = state.event_sources.update(&uuid, change).await?;
            // Turning a mapping on or off answers Enabling/Disabling, as AWS does
            // (test_disabled_dynamodb_event_source_mapping, test_lambda_integration_sqs).
            let transition = match (was_enabled, m.enabled) {
                (Some(false), true) => "Enabling",
                (Some(true), false) => "Disabling",
                _ => "Updating",
            };
            reply(op, &EventSourceMappingConfiguration::new(p, &m, Some(transition)), rid)
        }
        LambdaCall::DeleteEventSourceMapping(input) => {
            let m = state.event_sources.delete(&input.uuid).await?;
            reply(op, &EventSourceMappingConfiguration::new(p, &m, Some("Deleting")), rid)
        }
        LambdaCall::ListEventSourceMappings(input) => {
            let function = input.function(p)?;
            let (list, next_marker) = state
                .event_sources
                .list(input.source(), function.as_deref(), input.page.marker().as_deref(), input.page.max_items()?)
                .await?;
            let event_source_mappings = list.iter().map(|m| EventSourceMappingConfiguration::new(p, m, None)).collect();
            reply(op, &ListEventSourceMappingsResponse { event_source_mappings, next_marker }, rid)
        }
        LambdaCall::CreateFunctionUrlConfig(input) => {
            let NewUrl { function, auth_type, cors, invoke_mode } = input.into_new(p)?;
            let c = control.create_function_url(&function.name, qualifier(&function), auth_type, cors, invoke_mode).await?;
            reply(op, &FunctionUrlConfigResponse::new(state, origin, &c, true), rid)
        }
        LambdaCall::GetFunctionUrlConfig(input) => {
            let function = input.function(p)?;
            let c = control.get_function_url(&function.name, qualifier(&function)).await?;
            reply(op, &FunctionUrlConfigResponse::new(state, origin, &c, false), rid)
        }
        LambdaCall::UpdateFunctionUrlConfig(input) => {
            let (function, change) = input.into_change(p)?;
            let c = control.update_function_url(&function.name, qualifier(&function), change).await?;
            reply(op, &FunctionUrlConfigResponse::new(state, origin, &c, false), rid)
        }
        LambdaCall::DeleteFunctionUrlConfig(input) => {
            let function = input.function(p)?;
            control.delete_function_url(&function.name, qualifier(&function)).await?;
            reply(op, &Empty {}, rid)
        }
        LambdaCall::ListFunctionUrlConfigs(input) => {
            let function = input.function(p)?;
            let list = control.list_function_urls(&function.name).await?;
            let function_url_configs = list.iter().map(|c| FunctionUrlConfigResponse::new(state, origin, c, false)).collect();
            reply(op, &ListFunctionUrlConfigsResponse { function_url_configs }, rid)
        }
        LambdaCall::PutFunctionEventInvokeConfig(input) | LambdaCall::UpdateFunctionEventInvokeConfig(input) => {
            let replace = op == "PutFunctionEventInvokeConfig";
            let (function, change) = input.into_change(p)?;
            let destinations = [&change.on_success, &change.on_failure];
            if destinations.iter().any(|d| matches!(d, Some(Some(_)))) {
                let role = control.get(&function.name).await?.role;
                for target in destinations.into_iter().flatten().flatten() {
                    crate::authz::check_destination(state, &role, &function.name, target).await?;
                }
            }
            let c = control.put_event_invoke_config(&function.name, qualifier_or_latest(&function), change, replace).await?;
            reply(op, &FunctionEventInvokeConfig::new(p, &c), rid)
        }
        LambdaCall::GetFunctionEventInvokeConfig(input) => {
            let function = input.function(p)?;
            let c = control.get_event_invoke_config(&function.name, qualifier_or_latest(&function)).await?;
            reply(op, &FunctionEventInvokeConfig::new(p, &c), rid)
        }
        LambdaCall::DeleteFunctionEventInvokeConfig(input) => {
            let function = input.function(p)?;
            control.delete_event_invoke_config(&function.name, qualifier_or_latest(&function)).await?;
            reply(op, &Empty {}, rid)
        }
        LambdaCall::TagResource(input) => {
            match input.target(p)? {
                Tagged::Function(name) => drop(control.set_tags(&name, |tags| tags.extend(input.tags)).await?),
                Tagged::Mapping(uuid) => state.event_sources.set_tags(&uuid, |tags| tags.extend(input.tags)).await?,
            }
            reply(op, &Empty {}, rid)
        }
        LambdaCall::UntagResource(input) => {
            let untag = |tags: &mut std::collections::BTreeMap<String, String>| input.tag_keys.iter().for_each(|k| drop(tags.remove(k)));
            match input.target(p)? {
                Tagged::Function(name) => drop(control.set_tags(&name, untag).await?),
                Tagged::Mapping(uuid) => state.event_sources.set_tags(&uuid, untag).await?,
            }
            reply(op, &Empty {}, rid)
        }
        LambdaCall::ListTags(input) => {
            let tags = match input.target(p)? {
                Tagged::Function(name) => control.get(&name).await?.tags,
                Tagged::Mapping(uuid) => state.event_sources.get(&uuid).await?.tags,
            };
            reply(op, &ListTagsResponse { tags }, rid)
        }
        LambdaCall::AddPermission(input) => {
            let (target, statement) = input.checked(p)?;
            let (name, q) = (&target.function.name, target.qualifier());
            control.add_permission(name, q, statement.clone(), target.revision_id.as_deref()).await?;
            let statement = serde_json::to_string(&PolicyStatement::for_function(p, name, q, &statement)).expect("serializes");
            reply(op, &PermissionResponse { statement }, rid)
        }
        LambdaCall::GetPolicy(input) => {
            let f = input.function(p)?;
            let q = qualifier(&f);
            let policy = control.get_policy(&f.name, q).await?;
            let statement = policy.statements.iter().map(|s| PolicyStatement::for_function(p, &f.name, q, s)).collect();
            let document = serde_json::to_string(&PolicyDocument { version: "2012-10-17", id: "default", statement }).expect("serializes");
            reply(op, &PolicyResponse { statement: None, policy: Some(document), revision_id: policy.revision_id }, rid)
        }
        LambdaCall::RemovePermission(input) => {
            let target = input.target(p)?;
            control
                .remove_permission(&target.function.name, target.qualifier(), &input.statement_id, target.revision_id.as_deref())
                .await?;
            reply(op, &Empty {}, rid)
        }
        LambdaCall::GetFunctionRecursionConfig(input) => {
            let f = input.function(p)?;
            function_only(&f)?;
            let c = control.get(&f.name).await?;
            reply(op, &RecursionConfig { recursive_loop: c.recursive_loop.unwrap_or_else(|| "Terminate".into()) }, rid)
        }
        LambdaCall::PutFunctionRecursionConfig(input) => {
            let f = input.function(p)?;
            function_only(&f)?;
            let c = control.set_recursive_loop(&f.name, &input.recursive_loop).await?;
            reply(op, &RecursionConfig { recursive_loop: c.recursive_loop.unwrap_or_default() }, rid)
        }
        LambdaCall::CreateCodeSigningConfig(input) => {
            let (description, publishers, policy) = input.into_new()?;
            let c = control.create_code_signing_config(description, publishers, policy).await?;
            reply(op, &CodeSigningConfigResponse { code_signing_config: CodeSigningConfigView::new(p, &c) }, rid)
        }
        LambdaCall::GetCodeSigningConfig(input) => {
            let (id, arn) = input.config()?;
            let c = control.get_code_signing_config(&id, &arn).await?;
            reply(op, &CodeSigningConfigResponse { code_signing_config: CodeSigningConfigView::new(p, &c) }, rid)
        }
        LambdaCall::UpdateCodeSigningConfig(input) => {
            let (id, arn) = input.config()?;
            let c = control.update_code_signing_config(&id, &arn, input.into_change()?).await?;
            reply(op, &CodeSigningConfigResponse { code_signing_config: CodeSigningConfigView::new(p, &c) }, rid)
        }
        LambdaCall::DeleteCodeSigningConfig(input) => {
            let (id, arn) = input.config()?;
            control.delete_code_signing_config(&id, &arn).await?;
            reply(op, &Empty {}, rid)
        }
        LambdaCall::ListCodeSigningConfigs(input) => {
            let (list, next_marker) = control.list_code_signing_configs(input.page.marker().as_deref(), input.page.max_items()?).await?;
            let code_signing_configs = list.iter().map(|c| CodeSigningConfigView::new(p, c)).collect();
            reply(op, &ListCodeSigningConfigsResponse { code_signing_configs, next_marker }, rid)
        }
        LambdaCall::ListFunctionsByCodeSigningConfig(input) => {
            let (id, arn) = input.config()?;
            control.get_code_signing_config(&id, &arn).await?;
            let max = input.page.max_items()?;
            let marker = input.page.marker();
            let names = control.functions_using_code_signing_config(&id).await?;
            let mut page: Vec<String> = names.into_iter().filter(|n| marker.as_deref().is_none_or(|m| n.as_str() > m)).collect();
            let next_marker = (page.len() > max).then(|| page[max - 1].clone());
            page.truncate(max);
            let function_arns = page.iter().map(|n| p.function_arn(n)).collect();
            reply(op, &ListFunctionsByCodeSigningConfigResponse { function_arns, next_marker }, rid)
        }
        LambdaCall::PutFunctionCodeSigningConfig(input) => {
            let (id, arn) = input.config()?;
            let f = input.function(p)?;
            function_only(&f)?;
            control.put_function_code_signing_config(&f.name, &id, &arn).await?;
            let out =
                FunctionCodeSigningConfig { code_signing_config_arn: Some(p.code_signing_config_arn(&id)), function_name: Some(f.name) };
            reply(op, &out, rid)
        }
        LambdaCall::GetFunctionCodeSigningConfig(input) => {
            let f = input.function(p)?;
            function_only(&f)?;
            let c = control.get(&f.name).await?;
            let out = match c.code_signing_config_id {
                Some(id) => {
                    FunctionCodeSigningConfig { code_signing_config_arn: Some(p.code_signing_config_arn(&id)), function_name: Some(f.name) }
                }
                None => FunctionCodeSigningConfig::default(),
            };
            reply(op, &out, rid)
        }
        LambdaCall::DeleteFunctionCodeSigningConfig(input) => {
            let f = input.function(p)?;
            function_only(&f)?;
            control.delete_function_code_signing_config(&f.name).await?;
            reply(op, &Empty {}, rid)
        }
        LambdaCall::GetRuntimeManagementConfig(input) => {
            let f = input.function(p)?;
            let c = control.get_qualified(&f.name, f.qualifier.as_ref()).await?;
            reply(op, &RuntimeManagementConfig::new(runtime_management_arn(p, &f), c.runtime_management), rid)
        }
        LambdaCall::PutRuntimeManagementConfig(input) => {
            let f = input.function(p)?;
            let setting = input.setting()?;
            let c = control.set_runtime_management(&f.name, f.qualifier.as_ref(), setting).await?;
            reply(op, &RuntimeManagementConfig::new(runtime_management_arn(p, &f), c.runtime_management), rid)
        }
        LambdaCall::GetResourcePolicy(input) => {
            let PolicyResource::Function(f) = input.resource(p)? else { return Err(no_such_resource()) };
            let q = qualifier(&f);
            let policy = control.get_policy(&f.name, q).await?;
            reply(op, &policy_response(p, &f, &policy), rid)
        }
        LambdaCall::PutResourcePolicy(input) => {
            let PolicyResource::Function(f) = input.resource(p)? else { return Err(no_such_resource()) };
            let statements = input::policy_statements(input.policy.as_deref().unwrap_or_default())?;
            let policy = control.replace_policy(&f.name, qualifier(&f), statements, input.revision_id()).await?;
            reply(op, &policy_response(p, &f, &policy), rid)
        }
        LambdaCall::DeleteResourcePolicy(input) => {
            let PolicyResource::Function(f) = input.resource(p)? else { return Err(no_such_resource()) };
            control.delete_policy(&f.name, qualifier(&f), input.revision_id()).await?;
            reply(op, &Empty {}, rid)
        }
        LambdaCall::GetFunctionScalingConfig(input)
        | LambdaCall::PutFunctionScalingConfig(input)
        | LambdaCall::CreateCapacityProvider(input)
        | LambdaCall::GetCapacityProvider(input)
        | LambdaCall::UpdateCapacityProvider(input)
        | LambdaCall::DeleteCapacityProvider(input)
        | LambdaCall::ListCapacityProviders(input)
        | LambdaCall::ListFunctionVersionsByCapacityProvider(input)
        | LambdaCall::GetDurableExecution(input)
        | LambdaCall::GetDurableExecutionHistory(input)
        | LambdaCall::GetDurableExecutionState(input)
        | LambdaCall::ListDurableExecutionsByFunction(input)
        | LambdaCall::StopDurableExecution(input)
        | LambdaCall::PauseDurableExecution(input)
        | LambdaCall::ResumeDurableExecution(input)
        | LambdaCall::DeleteDurableExecution(input)
        | LambdaCall::CheckpointDurableExecution(input)
        | LambdaCall::SendDurableExecutionCallbackSuccess(input)
        | LambdaCall::SendDurableExecutionCallbackFailure(input)
        | LambdaCall::SendDurableExecutionCallbackHeartbeat(input) => match unbuilt::outcome(op, &input, p)? {
            unbuilt::Outcome::Error(e) => return Err(e),
            unbuilt::Outcome::AfterFunction(f, e) => {
                control.get(&f.name).await?;
                return Err(e);
            }
            unbuilt::Outcome::EmptyList { function } => {
                if let Some(f) = function {
                    control.get_qualified(&f.name, f.qualifier.as_ref()).await?;
                }
                if op == "ListCapacityProviders" {
                    reply(op, &ListCapacityProvidersResponse { capacity_providers: vec![] }, rid)
                } else {
                    reply(op, &ListDurableExecutionsResponse { durable_executions: vec![] }, rid)
                }
            }
        },
        LambdaCall::ListFunctionEventInvokeConfigs(input) => {
            let function = input.function(p)?;
            let list = control.list_event_invoke_configs(&function.name).await?;
            let function_event_invoke_configs = list.iter().map(|c| FunctionEventInvokeConfig::new(p, c)).collect();
            reply(op, &ListFunctionEventInvokeConfigsResponse { function_event_invoke_configs }, rid)
        }
    };
    Ok(whole.map(Body::from))
}

/// The function ARN runtime management answers with: unqualified unless a qualifier was
/// named.
fn runtime_management_arn(p: &nimbus_model::Partition, f: &FunctionRef) -> String {
    match qualifier(f) {
        Some(q) => p.qualified_arn(&f.name, q),
        None => p.function_arn(&f.name),
    }
}

/// A resource-policy ARN of a kind Nimbus has none of (a runtime).
fn no_such_resource() -> ApiError {
    ApiError::not_found("The resource you requested does not exist.")
}

/// Get/PutResourcePolicy's answer: the policy document as GetPolicy renders it.
fn policy_response(p: &nimbus_model::Partition, f: &FunctionRef, policy: &nimbus_model::function::FunctionPolicy) -> PolicyResponse {
    let q = qualifier(f);
    let statement = policy.statements.iter().map(|s| PolicyStatement::for_function(p, &f.name, q, s)).collect();
    let document = serde_json::to_string(&PolicyDocument { version: "2012-10-17", id: "default", statement }).expect("serializes");
    PolicyResponse { statement: None, policy: Some(document), revision_id: policy.revision_id.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_paths_are_lower_camel() {
        for (path, want) in [("FunctionName", "functionName"), ("Code.ZipFile", "code.zipFile"), ("", "")] {
            assert_eq!(lower_camel(path), want);
        }
    }
}

//! The closed set of API actions and the parser that turns an HTTP request into one.
//! Authorization (SigV4 and IAM) will check an [`Action`] here, before it runs.

use std::collections::BTreeMap;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, Method};
use nimbus_control::{AliasChange, ConfigChange, EventInvokeChange, NewFunction, NewLayerVersion, UrlChange};
use nimbus_model::layer::LayerStatement;
use nimbus_model::url::{AuthType, Cors};
use nimbus_model::validate::{self, MAX_SYNC_PAYLOAD};
use nimbus_model::{ApiError, ErrorCode, FunctionRef, InvokeRequest, Partition};
use nimbus_triggers::{MappingChange, NewMapping};
use serde::Deserialize;

/// Every operation Nimbus serves.
#[derive(Debug)]
pub enum Action {
    Health,
    /// Nimbus's own status: isolation mode and which guarantees are missing.
    Status,
    CreateFunction {
        function: Box<NewFunction>,
        publish: bool,
    },
    GetFunction(FunctionRef),
    GetFunctionConfiguration(FunctionRef),
    ListFunctions {
        marker: Option<String>,
        max_items: usize,
        all_versions: bool,
    },
    UpdateFunctionCode {
        function: FunctionRef,
        zip: Vec<u8>,
        revision_id: Option<String>,
        publish: bool,
    },
    PublishVersion {
        function: FunctionRef,
        code_sha256: Option<String>,
        description: Option<String>,
        revision_id: Option<String>,
    },
    ListVersionsByFunction {
        function: FunctionRef,
        marker: Option<String>,
        max_items: usize,
    },
    CreateAlias {
        function: FunctionRef,
        name: String,
        function_version: String,
        description: String,
        weights: BTreeMap<String, f64>,
    },
    GetAlias {
        function: FunctionRef,
        name: String,
    },
    UpdateAlias {
        function: FunctionRef,
        name: String,
        change: AliasChange,
    },
    DeleteAlias {
        function: FunctionRef,
        name: String,
    },
    ListAliases {
        function: FunctionRef,
        function_version: Option<String>,
        marker: Option<String>,
        max_items: usize,
    },
    UpdateFunctionConfiguration {
        function: FunctionRef,
        change: Box<ConfigChange>,
    },
    DeleteFunction(FunctionRef),
    GetAccountSettings,
    PutFunctionConcurrency {
        function: FunctionRef,
        reserved: u32,
    },
    GetFunctionConcurrency(FunctionRef),
    DeleteFunctionConcurrency(FunctionRef),
    PutProvisionedConcurrencyConfig {
        function: FunctionRef,
        requested: u32,
    },
    GetProvisionedConcurrencyConfig(FunctionRef),
    DeleteProvisionedConcurrencyConfig(FunctionRef),
    ListProvisionedConcurrencyConfigs {
        function: FunctionRef,
        marker: Option<String>,
        max_items: usize,
    },
    PublishLayerVersion(Box<NewLayerVersion>),
    GetLayerVersion {
        layer: String,
        version: u64,
    },
    GetLayerVersionByArn {
        arn: String,
    },
    ListLayers {
        runtime: Option<String>,
        architecture: Option<String>,
        marker: Option<String>,
        max_items: usize,
    },
    ListLayerVersions {
        layer: String,
        runtime: Option<String>,
        architecture: Option<String>,
        marker: Option<String>,
        max_items: usize,
    },
    DeleteLayerVersion {
        layer: String,
        version: u64,
    },
    AddLayerVersionPermission {
        layer: String,
        version: u64,
        statement: LayerStatement,
        revision_id: Option<String>,
    },
    RemoveLayerVersionPermission {
        layer: String,
        version: u64,
        statement_id: String,
        revision_id: Option<String>,
    },
    GetLayerVersionPolicy {
        layer: String,
        version: u64,
    },
    Invoke(InvokeRequest),
    CreateEventSourceMapping(Box<NewMapping>),
    GetEventSourceMapping {
        uuid: String,
    },
    UpdateEventSourceMapping {
        uuid: String,
        change: Box<MappingChange>,
    },
    DeleteEventSourceMapping {
        uuid: String,
    },
    ListEventSourceMappings {
        source: Option<String>,
        function: Option<String>,
        marker: Option<String>,
        max_items: usize,
    },
    /// A request to a function URL.
    InvokeFunctionUrl(Box<crate::function_url::UrlRequest>),
    CreateFunctionUrlConfig {
        function: FunctionRef,
        auth_type: AuthType,
        cors: Option<Cors>,
        invoke_mode: Option<String>,
    },
    GetFunctionUrlConfig(FunctionRef),
    UpdateFunctionUrlConfig {
        function: FunctionRef,
        change: UrlChange,
    },
    DeleteFunctionUrlConfig(FunctionRef),
    ListFunctionUrlConfigs(FunctionRef),
    InvokeAsync {
        function: FunctionRef,
        payload: Bytes,
    },
    PutEventInvokeConfig {
        function: FunctionRef,
        change: EventInvokeChange,
        replace: bool,
    },
    GetEventInvokeConfig(FunctionRef),
    DeleteEventInvokeConfig(FunctionRef),
    ListEventInvokeConfigs(FunctionRef),
    InvokeDryRun(FunctionRef),
    /// The zip behind GetFunction's `Code.Location`.
    GetCode {
        digest: String,
    },
    Logs(LogsAction),
    /// An SQS request (JSON or query protocol), parsed by [`crate::sqs`].
    Sqs(crate::sqs::SqsRequest),
    /// An EventBridge request (`X-Amz-Target: AWSEvents.*`), parsed by [`crate::events`].
    Events(crate::events::EventsRequest),
    /// An SNS request (query protocol), parsed by [`crate::sns`].
    Sns(crate::sns::SnsRequest),
    /// An API Gateway V2 management request (`/v2/apis…`), parsed by [`crate::gateway`].
    Gateway(crate::gateway::GatewayRequest),
    /// A request to an HTTP API's `execute-api` endpoint.
    InvokeApi(Box<crate::gateway::ApiRequest>),
}

#[derive(Debug)]
pub enum LogsAction {
    DescribeLogGroups(serde_json::Value),
    DescribeLogStreams(serde_json::Value),
    GetLogEvents(serde_json::Value),
    FilterLogEvents(serde_json::Value),
}

impl Action {
    /// The AWS operation name (what IAM policies will name).
    pub fn name(&self) -> &'static str {
        match self {
            Action::Health => "Health",
            Action::Status => "nimbus:Status",
            Action::CreateFunction { .. } => "lambda:CreateFunction",
            Action::PublishVersion { .. } => "lambda:PublishVersion",
            Action::ListVersionsByFunction { .. } => "lambda:ListVersionsByFunction",
            Action::CreateAlias { .. } => "lambda:CreateAlias",
            Action::GetAlias { .. } => "lambda:GetAlias",
            Action::UpdateAlias { .. } => "lambda:UpdateAlias",
            Action::DeleteAlias { .. } => "lambda:DeleteAlias",
            Action::ListAliases { .. } => "lambda:ListAliases",
            Action::GetFunction(_) => "lambda:GetFunction",
            Action::GetFunctionConfiguration(_) => "lambda:GetFunctionConfiguration",
            Action::ListFunctions { .. } => "lambda:ListFunctions",
            Action::UpdateFunctionCode { .. } => "lambda:UpdateFunctionCode",
            Action::UpdateFunctionConfiguration { .. } => "lambda:UpdateFunctionConfiguration",
            Action::DeleteFunction(_) => "lambda:DeleteFunction",
            Action::GetAccountSettings => "lambda:GetAccountSettings",
            Action::PutFunctionConcurrency { .. } => "lambda:PutFunctionConcurrency",
            Action::GetFunctionConcurrency(_) => "lambda:GetFunctionConcurrency",
            Action::DeleteFunctionConcurrency(_) => "lambda:DeleteFunctionConcurrency",
            Action::PutProvisionedConcurrencyConfig { .. } => "lambda:PutProvisionedConcurrencyConfig",
            Action::GetProvisionedConcurrencyConfig(_) => "lambda:GetProvisionedConcurrencyConfig",
            Action::DeleteProvisionedConcurrencyConfig(_) => "lambda:DeleteProvisionedConcurrencyConfig",
            Action::ListProvisionedConcurrencyConfigs { .. } => "lambda:ListProvisionedConcurrencyConfigs",
            Action::Invoke(_) | Action::InvokeDryRun(_) | Action::InvokeAsync { .. } => "lambda:InvokeFunction",
            Action::InvokeFunctionUrl(_) => "lambda:InvokeFunctionUrl",
            Action::CreateEventSourceMapping(_) => "lambda:CreateEventSourceMapping",
            Action::GetEventSourceMapping { .. } => "lambda:GetEventSourceMapping",
            Action::UpdateEventSourceMapping { .. } => "lambda:UpdateEventSourceMapping",
            Action::DeleteEventSourceMapping { .. } => "lambda:DeleteEventSourceMapping",
            Action::ListEventSourceMappings { .. } => "lambda:ListEventSourceMappings",
            Action::CreateFunctionUrlConfig { .. } => "lambda:CreateFunctionUrlConfig",
            Action::GetFunctionUrlConfig(_) => "lambda:GetFunctionUrlConfig",
            Action::UpdateFunctionUrlConfig { .. } => "lambda:UpdateFunctionUrlConfig",
            Action::DeleteFunctionUrlConfig(_) => "lambda:DeleteFunctionUrlConfig",
            Action::ListFunctionUrlConfigs(_) => "lambda:ListFunctionUrlConfigs",
            Action::PutEventInvokeConfig { replace: true, .. } => "lambda:PutFunctionEventInvokeConfig",
            Action::PutEventInvokeConfig { .. } => "lambda:UpdateFunctionEventInvokeConfig",
            Action::GetEventInvokeConfig(_) => "lambda:GetFunctionEventInvokeConfig",
            Action::DeleteEventInvokeConfig(_) => "lambda:DeleteFunctionEventInvokeConfig",
            Action::ListEventInvokeConfigs(_) => "lambda:ListFunctionEventInvokeConfigs",
            Action::PublishLayerVersion(_) => "lambda:PublishLayerVersion",
            Action::GetLayerVersion { .. } | Action::GetLayerVersionByArn { .. } => "lambda:GetLayerVersion",
            Action::ListLayers { .. } => "lambda:ListLayers",
            Action::ListLayerVersions { .. } => "lambda:ListLayerVersions",
            Action::DeleteLayerVersion { .. } => "lambda:DeleteLayerVersion",
            Action::AddLayerVersionPermission { .. } => "lambda:AddLayerVersionPermission",
            Action::RemoveLayerVersionPermission { .. } => "lambda:RemoveLayerVersionPermission",
            Action::GetLayerVersionPolicy { .. } => "lambda:GetLayerVersionPolicy",
            Action::GetCode { .. } => "lambda:GetFunction",
            Action::Logs(LogsAction::DescribeLogGroups(_)) => "logs:DescribeLogGroups",
            Action::Logs(LogsAction::DescribeLogStreams(_)) => "logs:DescribeLogStreams",
            Action::Logs(LogsAction::GetLogEvents(_)) => "logs:GetLogEvents",
            Action::Logs(LogsAction::FilterLogEvents(_)) => "logs:FilterLogEvents",
            Action::Sqs(r) => r.name(),
            Action::Events(r) => r.name(),
            Action::Sns(r) => r.name(),
            Action::Gateway(r) => r.name(),
            Action::InvokeApi(_) => "execute-api:Invoke",
        }
    }
}

/// One HTTP request, as the parser sees it.
pub struct RawRequest<'a> {
    /// The domain under which function URLs are served by host name.
    pub url_domain: &'a str,
    /// The domain under which HTTP APIs are served by host name (`<api-id>.<api domain>`).
    pub api_domain: &'a str,
    pub source_ip: String,
    pub method: &'a Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: Bytes,
}

/// Decodes one percent-encoded URL component (`+` as space, as in query strings).
pub(crate) fn decode_component(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => match (bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A service's operations: (operation name, IAM action name), e.g. `("SendMessage",
/// "sqs:SendMessage")`. The tables of SQS, SNS and EventBridge are part of the closed set
/// of actions.
pub(crate) type OperationTable = [(&'static str, &'static str)];

/// The table's own spelling of `name`, if the service has that operation.
pub(crate) fn known_operation(table: &'static OperationTable, name: &str) -> Option<&'static str> {
    table.iter().find(|(op, _)| *op == name).map(|(op, _)| *op)
}

/// The IAM action name of `operation` (`sqs:SendMessage`), or `unknown`.
pub(crate) fn iam_action(table: &'static OperationTable, operation: &str, unknown: &'static str) -> &'static str {
    table.iter().find(|(op, _)| *op == operation).map(|(_, n)| *n).unwrap_or(unknown)
}

/// The `key=value` pairs of a query string or form body, decoded.
pub(crate) fn form_pairs(s: &str) -> impl Iterator<Item = (String, String)> + '_ {
    s.split('&').filter(|kv| !kv.is_empty()).map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (decode_component(k), decode_component(v))
    })
}

pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (decode_component(k) == name).then(|| decode_component(v))
    })
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn body_json<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.is_empty() { b"{}".as_slice() } else { body };
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(ErrorCode::InvalidRequestContent, format!("Could not parse request body into json: {e}")))
}

fn not_found_route(method: &Method, path: &str) -> ApiError {
    ApiError::new(ErrorCode::UnknownOperation, format!("No operation matches {method} {path}"))
}

/// Parses a Lambda or CloudWatch Logs request into an action.
pub fn parse(req: RawRequest<'_>, partition: &Partition) -> Result<Action, ApiError> {
    let http_call = |path: String| crate::proxy::HttpCall {
        method: req.method.clone(),
        path,
        raw_query: req.query.unwrap_or("").to_string(),
        headers: req.headers.clone(),
        body: req.body.clone(),
        source_ip: req.source_ip.clone(),
    };
    if let Some((api_id, path)) = crate::gateway::match_api(header(req.headers, "host"), req.path, req.api_domain) {
        return Ok(Action::InvokeApi(Box::new(crate::gateway::ApiRequest { api_id, call: http_call(path) })));
    }
    if let Some((url_id, path, format)) = crate::function_url::match_url(header(req.headers, "host"), req.path, req.url_domain) {
        return Ok(Action::InvokeFunctionUrl(Box::new(crate::function_url::UrlRequest { url_id, format, call: http_call(path) })));
    }
    if let Some(gateway) = crate::gateway::recognize(req.method, req.path, req.query, &req.body) {
        return Ok(Action::Gateway(gateway));
    }
    if let Some(sqs) = crate::sqs::recognize(&req) {
        return Ok(Action::Sqs(sqs));
    }
    if let Some(sns) = crate::sns::recognize(&req) {
        return Ok(Action::Sns(sns));
    }
    if let Some(target) = header(req.headers, "x-amz-target") {
        if let Some(op) = target.strip_prefix("AWSEvents.") {
            return Ok(Action::Events(crate::events::parse(op, &req.body)));
        }
        return parse_logs(target, &req.body);
    }
    let segments: Vec<&str> = req.path.trim_start_matches('/').trim_end_matches('/').split('/').collect();
    let m = req.method;
    let fref = |raw: &str| -> Result<FunctionRef, ApiError> {
        FunctionRef::parse(&decode_component(raw), partition)?.with_qualifier(query_param(req.query, "Qualifier").as_deref())
    };
    match (m, segments.as_slice()) {
        (&Method::GET, ["health"]) => Ok(Action::Health),
        (&Method::GET, ["_nimbus", "status"]) => Ok(Action::Status),
        (&Method::POST, ["2015-03-31", "functions"]) => parse_create(&req.body),
        (&Method::GET, ["2015-03-31", "functions"]) => {
            let all_versions = match query_param(req.query, "FunctionVersion").as_deref() {
                None | Some("") => false,
                Some("ALL") => true,
                Some(v) => return Err(ApiError::validation(v, "functionVersion", "Member must satisfy enum value set: [ALL]")),
            };
            Ok(Action::ListFunctions { marker: marker(req.query), max_items: max_items(req.query)?, all_versions })
        }
        (&Method::POST, ["2015-03-31", "functions", name, "versions"]) => {
            let function = fref(name)?;
            #[derive(Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct Input {
                code_sha256: Option<String>,
                description: Option<String>,
                revision_id: Option<String>,
            }
            let input: Input = body_json(&req.body)?;
            if let Some(d) = &input.description {
                validate::description(d)?;
            }
            Ok(Action::PublishVersion {
                function,
                code_sha256: input.code_sha256,
                description: input.description,
                revision_id: input.revision_id,
            })
        }
        (&Method::GET, ["2015-03-31", "functions", name, "versions"]) => {
            Ok(Action::ListVersionsByFunction { function: fref(name)?, marker: marker(req.query), max_items: max_items(req.query)? })
        }
        (&Method::POST, ["2015-03-31", "functions", name, "aliases"]) => {
            let function = fref(name)?;
            let input: AliasInput = body_json(&req.body)?;
            let alias_name = required(input.name, "name")?;
            let function_version = required(input.function_version, "functionVersion")?;
            let description = input.description.unwrap_or_default();
            validate::description(&description)?;
            Ok(Action::CreateAlias {
                function,
                name: alias_name,
                function_version,
                description,
                weights: input.routing_config.and_then(|r| r.additional_version_weights).unwrap_or_default(),
            })
        }
        (&Method::GET, ["2015-03-31", "functions", name, "aliases"]) => Ok(Action::ListAliases {
            function: fref(name)?,
            function_version: query_param(req.query, "FunctionVersion").filter(|v| !v.is_empty()),
            marker: marker(req.query),
            max_items: max_items(req.query)?,
        }),
        (&Method::GET, ["2015-03-31", "functions", name, "aliases", alias]) => {
            Ok(Action::GetAlias { function: fref(name)?, name: decode_component(alias) })
        }
        (&Method::DELETE, ["2015-03-31", "functions", name, "aliases", alias]) => {
            Ok(Action::DeleteAlias { function: fref(name)?, name: decode_component(alias) })
        }
        (&Method::PUT, ["2015-03-31", "functions", name, "aliases", alias]) => {
            let function = fref(name)?;
            let input: AliasInput = body_json(&req.body)?;
            if let Some(d) = &input.description {
                validate::description(d)?;
            }
            Ok(Action::UpdateAlias {
                function,
                name: decode_component(alias),
                change: AliasChange {
                    function_version: input.function_version,
                    description: input.description,
                    routing: input.routing_config.map(|r| r.additional_version_weights.unwrap_or_default()),
                    revision_id: input.revision_id,
                },
            })
        }
        (&Method::GET, ["2015-03-31", "functions", name]) => Ok(Action::GetFunction(fref(name)?)),
        (&Method::DELETE, ["2015-03-31", "functions", name]) => Ok(Action::DeleteFunction(fref(name)?)),
        (&Method::GET, ["2015-03-31", "functions", name, "configuration"]) => Ok(Action::GetFunctionConfiguration(fref(name)?)),
        (&Method::PUT, ["2015-03-31", "functions", name, "configuration"]) => {
            let function = fref(name)?;
            Ok(Action::UpdateFunctionConfiguration { function, change: Box::new(parse_config_change(&req.body)?) })
        }
        (&Method::PUT, ["2015-03-31", "functions", name, "code"]) => {
            let function = fref(name)?;
            let input: UpdateCodeInput = body_json(&req.body)?;
            if input.s3_bucket.is_some() || input.image_uri.is_some() {
                return Err(ApiError::invalid("Nimbus accepts code as ZipFile only"));
            }
            let zip = decode_zip(input.zip_file.as_deref())?;
            Ok(Action::UpdateFunctionCode { function, zip, revision_id: input.revision_id, publish: input.publish == Some(true) })
        }
        (&Method::POST, ["2015-03-31", "functions", name, "invocations"]) => parse_invoke(&req, fref(name)?),
        (&Method::GET, ["2016-08-19", "account-settings"]) => Ok(Action::GetAccountSettings),
        (&Method::PUT, ["2017-10-31", "functions", name, "concurrency"]) => {
            let function = fref(name)?;
            let reserved = required_count(&req.body, "ReservedConcurrentExecutions", 0)?;
            Ok(Action::PutFunctionConcurrency { function, reserved })
        }
        (&Method::GET, ["2019-09-30", "functions", name, "concurrency"]) => Ok(Action::GetFunctionConcurrency(fref(name)?)),
        (&Method::DELETE, ["2017-10-31", "functions", name, "concurrency"]) => Ok(Action::DeleteFunctionConcurrency(fref(name)?)),
        (&Method::PUT, ["2019-09-30", "functions", name, "provisioned-concurrency"]) => {
            let function = fref(name)?;
            let requested = required_count(&req.body, "ProvisionedConcurrentExecutions", 1)?;
            Ok(Action::PutProvisionedConcurrencyConfig { function, requested })
        }
        // ListProvisionedConcurrencyConfigs shares Get's path, told apart by `List=ALL`.
        (&Method::GET, ["2019-09-30", "functions", name, "provisioned-concurrency"]) if query_param(req.query, "List").is_some() => {
            match query_param(req.query, "List").as_deref() {
                Some("ALL") => {}
                Some(v) => return Err(ApiError::validation(v, "list", "Member must satisfy enum value set: [ALL]")),
                None => {}
            }
            let function = FunctionRef::parse(&decode_component(name), partition)?;
            Ok(Action::ListProvisionedConcurrencyConfigs {
                function,
                marker: marker(req.query),
                max_items: max_items_up_to(req.query, 50)?,
            })
        }
        (&Method::GET, ["2019-09-30", "functions", name, "provisioned-concurrency"]) => {
            Ok(Action::GetProvisionedConcurrencyConfig(fref(name)?))
        }
        (&Method::DELETE, ["2019-09-30", "functions", name, "provisioned-concurrency"]) => {
            Ok(Action::DeleteProvisionedConcurrencyConfig(fref(name)?))
        }
        (&Method::GET, ["2018-10-31", "layers"]) => {
            if query_param(req.query, "find").as_deref() == Some("LayerVersion") {
                let arn = query_param(req.query, "Arn").ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::Validation,
                        "1 validation error detected: Value null at 'arn' failed to satisfy constraint: Member must not be null",
                    )
                })?;
                return Ok(Action::GetLayerVersionByArn { arn });
            }
            Ok(Action::ListLayers {
                runtime: query_param(req.query, "CompatibleRuntime").filter(|v| !v.is_empty()),
                architecture: query_param(req.query, "CompatibleArchitecture").filter(|v| !v.is_empty()),
                marker: marker(req.query),
                max_items: max_items(req.query)?,
            })
        }
        (&Method::POST, ["2018-10-31", "layers", layer, "versions"]) => parse_publish_layer(decode_component(layer), &req.body),
        (&Method::GET, ["2018-10-31", "layers", layer, "versions"]) => Ok(Action::ListLayerVersions {
            layer: decode_component(layer),
            runtime: query_param(req.query, "CompatibleRuntime").filter(|v| !v.is_empty()),
            architecture: query_param(req.query, "CompatibleArchitecture").filter(|v| !v.is_empty()),
            marker: marker(req.query),
            max_items: max_items(req.query)?,
        }),
        (&Method::GET, ["2018-10-31", "layers", layer, "versions", v]) => {
            Ok(Action::GetLayerVersion { layer: decode_component(layer), version: layer_version(v)? })
        }
        (&Method::DELETE, ["2018-10-31", "layers", layer, "versions", v]) => {
            Ok(Action::DeleteLayerVersion { layer: decode_component(layer), version: layer_version(v)? })
        }
        (&Method::GET, ["2018-10-31", "layers", layer, "versions", v, "policy"]) => {
            Ok(Action::GetLayerVersionPolicy { layer: decode_component(layer), version: layer_version(v)? })
        }
        (&Method::POST, ["2018-10-31", "layers", layer, "versions", v, "policy"]) => {
            #[derive(Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct Input {
                statement_id: Option<String>,
                action: Option<String>,
                principal: Option<String>,
                organization_id: Option<String>,
            }
            let input: Input = body_json(&req.body)?;
            let sid = required(input.statement_id, "statementId")?;
            if sid.is_empty() || sid.len() > 100 || !sid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                return Err(ApiError::validation(&sid, "statementId", "Member must satisfy regular expression pattern: ([a-zA-Z0-9-_]+)"));
            }
            let action = required(input.action, "action")?;
            if action != "lambda:GetLayerVersion" {
                return Err(ApiError::validation(
                    &action,
                    "action",
                    "Member must satisfy regular expression pattern: lambda:GetLayerVersion",
                ));
            }
            let principal = required(input.principal, "principal")?;
            let is_account = |s: &str| s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit());
            let ok = principal == "*"
                || is_account(&principal)
                || principal.strip_prefix("arn:aws:iam::").and_then(|r| r.strip_suffix(":root")).is_some_and(is_account);
            if !ok {
                return Err(ApiError::validation(
                    &principal,
                    "principal",
                    "Member must satisfy regular expression pattern: \\d{12}|\\*|arn:(aws[a-zA-Z-]*):iam::\\d{12}:root",
                ));
            }
            Ok(Action::AddLayerVersionPermission {
                layer: decode_component(layer),
                version: layer_version(v)?,
                statement: LayerStatement { sid, action, principal, organization_id: input.organization_id },
                revision_id: query_param(req.query, "RevisionId").filter(|r| !r.is_empty()),
            })
        }
        (&Method::DELETE, ["2018-10-31", "layers", layer, "versions", v, "policy", sid]) => Ok(Action::RemoveLayerVersionPermission {
            layer: decode_component(layer),
            version: layer_version(v)?,
            statement_id: decode_component(sid),
            revision_id: query_param(req.query, "RevisionId").filter(|r| !r.is_empty()),
        }),
        (&Method::GET, ["2019-09-25", "functions", name, "event-invoke-config", "list"]) => Ok(Action::ListEventInvokeConfigs(fref(name)?)),
        (&Method::GET, ["2019-09-25", "functions", name, "event-invoke-config"]) => Ok(Action::GetEventInvokeConfig(fref(name)?)),
        (&Method::DELETE, ["2019-09-25", "functions", name, "event-invoke-config"]) => Ok(Action::DeleteEventInvokeConfig(fref(name)?)),
        (m @ (&Method::PUT | &Method::POST), ["2019-09-25", "functions", name, "event-invoke-config"]) => {
            let function = fref(name)?;
            let replace = m == Method::PUT;
            let input: serde_json::Value = body_json(&req.body)?;
            let uint = |key: &str, field: &str| -> Result<Option<u32>, ApiError> {
                match input.get(key) {
                    None | Some(serde_json::Value::Null) => Ok(None),
                    Some(v) => match v.as_i64() {
                        Some(n) if n >= 0 => Ok(Some(n.min(i64::from(u32::MAX)) as u32)),
                        _ => Err(ApiError::validation(&v.to_string(), field, "Member must have value greater than or equal to 0")),
                    },
                }
            };
            let destination = |which: &str| -> Option<Option<String>> {
                let d = input.get("DestinationConfig")?;
                let entry = d.get(which)?;
                Some(entry.get("Destination").and_then(|v| v.as_str()).filter(|s| !s.is_empty()).map(str::to_string))
            };
            Ok(Action::PutEventInvokeConfig {
                function,
                replace,
                change: EventInvokeChange {
                    maximum_retry_attempts: uint("MaximumRetryAttempts", "maximumRetryAttempts")?,
                    maximum_event_age_secs: uint("MaximumEventAgeInSeconds", "maximumEventAgeInSeconds")?,
                    on_success: destination("OnSuccess"),
                    on_failure: destination("OnFailure"),
                },
            })
        }
        (&Method::POST, ["2015-03-31", "event-source-mappings"]) => {
            let input: MappingInput = body_json(&req.body)?;
            let function = FunctionRef::parse(&required(input.function_name.clone(), "functionName")?, partition)?;
            let source = required(input.event_source_arn.clone(), "eventSourceArn")?;
            Ok(Action::CreateEventSourceMapping(Box::new(NewMapping {
                event_source_arn: source,
                function,
                enabled: input.enabled.unwrap_or(true),
                batch_size: input.batch_size()?,
                window_secs: input.window()?,
                report_batch_item_failures: input.report_failures()?.unwrap_or(false),
                maximum_concurrency: input.concurrency(),
                filters: input.filters()?.unwrap_or_default(),
            })))
        }
        (&Method::GET, ["2015-03-31", "event-source-mappings"]) => Ok(Action::ListEventSourceMappings {
            source: query_param(req.query, "EventSourceArn").filter(|v| !v.is_empty()),
            function: match query_param(req.query, "FunctionName").filter(|v| !v.is_empty()) {
                Some(f) => Some(FunctionRef::parse(&f, partition)?.name),
                None => None,
            },
            marker: marker(req.query),
            max_items: max_items(req.query)?,
        }),
        (&Method::GET, ["2015-03-31", "event-source-mappings", uuid]) => Ok(Action::GetEventSourceMapping { uuid: uuid.to_string() }),
        (&Method::DELETE, ["2015-03-31", "event-source-mappings", uuid]) => Ok(Action::DeleteEventSourceMapping { uuid: uuid.to_string() }),
        (&Method::PUT, ["2015-03-31", "event-source-mappings", uuid]) => {
            let input: MappingInput = body_json(&req.body)?;
            let function = match &input.function_name {
                Some(f) => Some(FunctionRef::parse(f, partition)?),
                None => None,
            };
            Ok(Action::UpdateEventSourceMapping {
                uuid: uuid.to_string(),
                change: Box::new(MappingChange {
                    function,
                    enabled: input.enabled,
                    batch_size: input.batch_size()?,
                    window_secs: input.window()?,
                    report_batch_item_failures: input.report_failures()?,
                    maximum_concurrency: input.scaling_config.as_ref().map(|_| input.concurrency()),
                    filters: input.filters()?,
                }),
            })
        }
        (&Method::POST, ["2021-10-31", "functions", name, "url"]) => {
            let function = fref(name)?;
            let input: UrlInput = body_json(&req.body)?;
            let auth_type = auth_type(&required(input.auth_type, "authType")?)?;
            Ok(Action::CreateFunctionUrlConfig { function, auth_type, cors: input.cors.map(Cors::from), invoke_mode: input.invoke_mode })
        }
        (&Method::GET, ["2021-10-31", "functions", name, "url"]) => Ok(Action::GetFunctionUrlConfig(fref(name)?)),
        (&Method::DELETE, ["2021-10-31", "functions", name, "url"]) => Ok(Action::DeleteFunctionUrlConfig(fref(name)?)),
        (&Method::PUT, ["2021-10-31", "functions", name, "url"]) => {
            let function = fref(name)?;
            let input: UrlInput = body_json(&req.body)?;
            Ok(Action::UpdateFunctionUrlConfig {
                function,
                change: UrlChange {
                    auth_type: input.auth_type.as_deref().map(auth_type).transpose()?,
                    cors: input.cors.map(|c| Some(Cors::from(c))),
                    invoke_mode: input.invoke_mode,
                },
            })
        }
        (&Method::GET, ["2021-10-31", "functions", name, "urls"]) => Ok(Action::ListFunctionUrlConfigs(fref(name)?)),
        (&Method::GET, ["_nimbus", "code", digest]) => Ok(Action::GetCode { digest: digest.to_string() }),
        _ => Err(not_found_route(m, req.path)),
    }
}

fn parse_logs(target: &str, body: &[u8]) -> Result<Action, ApiError> {
    let op = target
        .strip_prefix("Logs_20140328.")
        .ok_or_else(|| ApiError::new(ErrorCode::UnknownOperation, format!("Unknown target {target}")))?;
    let input: serde_json::Value = body_json(body)?;
    if !input.is_object() {
        return Err(ApiError::new(ErrorCode::InvalidParameter, "The request body must be a JSON object"));
    }
    Ok(Action::Logs(match op {
        "DescribeLogGroups" => LogsAction::DescribeLogGroups(input),
        "DescribeLogStreams" => LogsAction::DescribeLogStreams(input),
        "GetLogEvents" => LogsAction::GetLogEvents(input),
        "FilterLogEvents" => LogsAction::FilterLogEvents(input),
        _ => return Err(ApiError::new(ErrorCode::UnknownOperation, format!("Operation {op} is not supported"))),
    }))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct CodeInput {
    zip_file: Option<String>,
    #[serde(rename = "S3Bucket")]
    s3_bucket: Option<String>,
    image_uri: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct EnvironmentInput {
    variables: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EphemeralInput {
    size: i64,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct CreateFunctionInput {
    function_name: Option<String>,
    runtime: Option<String>,
    role: Option<String>,
    handler: Option<String>,
    description: Option<String>,
    timeout: Option<i64>,
    memory_size: Option<i64>,
    code: Option<CodeInput>,
    environment: Option<EnvironmentInput>,
    ephemeral_storage: Option<EphemeralInput>,
    architectures: Option<Vec<String>>,
    publish: Option<bool>,
    package_type: Option<String>,
    layers: Option<Vec<String>>,
    dead_letter_config: Option<DeadLetterInput>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct DeadLetterInput {
    target_arn: Option<String>,
}

/// DeadLetterConfig.TargetArn must name a queue or a topic; empty clears it.
fn dead_letter(input: Option<DeadLetterInput>) -> Result<Option<String>, ApiError> {
    let Some(arn) = input.and_then(|d| d.target_arn) else { return Ok(None) };
    if !arn.is_empty() {
        let service = arn.split(':').nth(2).unwrap_or("");
        if !arn.starts_with("arn:aws") || !matches!(service, "sqs" | "sns") || arn.split(':').count() != 6 {
            return Err(ApiError::invalid(format!("The dead-letter target {arn} must be an SQS queue or SNS topic ARN")));
        }
    }
    Ok(Some(arn))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct UpdateConfigInput {
    runtime: Option<String>,
    role: Option<String>,
    handler: Option<String>,
    description: Option<String>,
    timeout: Option<i64>,
    memory_size: Option<i64>,
    environment: Option<EnvironmentInput>,
    ephemeral_storage: Option<EphemeralInput>,
    revision_id: Option<String>,
    layers: Option<Vec<String>>,
    dead_letter_config: Option<DeadLetterInput>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct UpdateCodeInput {
    zip_file: Option<String>,
    #[serde(rename = "S3Bucket")]
    s3_bucket: Option<String>,
    image_uri: Option<String>,
    publish: Option<bool>,
    revision_id: Option<String>,
}

fn required<T>(v: Option<T>, field: &str) -> Result<T, ApiError> {
    v.ok_or_else(|| ApiError::missing(field))
}

/// The body's one required integer member (`ProvisionedConcurrentExecutions`…), at least
/// `min`, with AWS's messages (which name the member in camel case).
fn required_count(body: &[u8], member: &str, min: i64) -> Result<u32, ApiError> {
    let input: serde_json::Map<String, serde_json::Value> = body_json(body)?;
    let mut field = member.to_string();
    field[..1].make_ascii_lowercase();
    let n = match input.get(member) {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(v.as_i64().ok_or_else(|| {
            ApiError::new(ErrorCode::InvalidRequestContent, format!("Could not parse request body into json: {member} must be an integer"))
        })?),
    };
    let n = required(n, &field)?;
    if n < min {
        return Err(ApiError::validation(&n.to_string(), &field, &format!("Member must have value greater than or equal to {min}")));
    }
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

fn decode_zip(b64: Option<&str>) -> Result<Vec<u8>, ApiError> {
    let b64 = b64.ok_or_else(|| ApiError::invalid("Please provide a source for function code: ZipFile"))?;
    let zip = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| ApiError::invalid("Could not decode ZipFile: it must be base64-encoded"))?;
    if zip.len() as u64 > validate::MAX_ZIPPED_BYTES {
        return Err(ApiError::new(
            ErrorCode::RequestEntityTooLarge,
            format!("Zipped size must be smaller than {} bytes", validate::MAX_ZIPPED_BYTES),
        ));
    }
    Ok(zip)
}

fn parse_create(body: &[u8]) -> Result<Action, ApiError> {
    let input: CreateFunctionInput = body_json(body)?;
    let name = required(input.function_name, "functionName")?;
    if !nimbus_model::arn::is_valid_function_name(&name) {
        return Err(ApiError::validation(
            &name,
            "functionName",
            "Member must satisfy regular expression pattern: [a-zA-Z0-9-_]+ and have length less than or equal to 64",
        ));
    }
    if input.package_type.as_deref().is_some_and(|p| p != "Zip") {
        return Err(ApiError::invalid("Nimbus runs Zip packages only"));
    }
    let role = required(input.role, "role")?;
    validate::role(&role)?;
    let runtime = validate::runtime(&required(input.runtime, "runtime")?)?;
    let handler = required(input.handler, "handler")?;
    validate::handler(&handler)?;
    let description = input.description.unwrap_or_default();
    validate::description(&description)?;
    let environment = input.environment.and_then(|e| e.variables).unwrap_or_default();
    validate::environment(&environment)?;
    let code = required(input.code, "code")?;
    if code.s3_bucket.is_some() || code.image_uri.is_some() {
        return Err(ApiError::invalid("Nimbus accepts code as ZipFile only"));
    }
    let architectures = input.architectures.unwrap_or_default();
    if architectures.iter().any(|a| a != "x86_64" && a != "arm64") || architectures.len() > 1 {
        return Err(ApiError::validation(
            &format!("{architectures:?}"),
            "architectures",
            "Member must have length less than or equal to 1, Member must satisfy enum value set: [x86_64, arm64]",
        ));
    }
    let publish = input.publish == Some(true);
    Ok(Action::CreateFunction {
        publish,
        function: Box::new(NewFunction {
            name,
            runtime,
            role,
            handler,
            description,
            timeout_secs: validate::timeout(input.timeout.unwrap_or(3))?,
            memory_mb: validate::memory(input.memory_size.unwrap_or(128))?,
            ephemeral_storage_mb: validate::ephemeral_storage(input.ephemeral_storage.map(|e| e.size).unwrap_or(512))?,
            environment,
            architectures,
            layers: input.layers.unwrap_or_default(),
            dead_letter_target: dead_letter(input.dead_letter_config)?.filter(|a| !a.is_empty()),
            zip: decode_zip(code.zip_file.as_deref())?,
        }),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RoutingInput {
    additional_version_weights: Option<BTreeMap<String, f64>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AliasInput {
    name: Option<String>,
    function_version: Option<String>,
    description: Option<String>,
    routing_config: Option<RoutingInput>,
    revision_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ScalingInput {
    maximum_concurrency: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MappingInput {
    event_source_arn: Option<String>,
    function_name: Option<String>,
    enabled: Option<bool>,
    batch_size: Option<i64>,
    maximum_batching_window_in_seconds: Option<i64>,
    function_response_types: Option<Vec<String>>,
    scaling_config: Option<ScalingInput>,
    filter_criteria: Option<serde_json::Value>,
}

impl MappingInput {
    fn batch_size(&self) -> Result<Option<u32>, ApiError> {
        match self.batch_size {
            None => Ok(None),
            Some(n) if (1..=10_000).contains(&n) => Ok(Some(n as u32)),
            Some(n) => Err(ApiError::validation(&n.to_string(), "batchSize", "Member must have value between 1 and 10000")),
        }
    }
    fn window(&self) -> Result<Option<u32>, ApiError> {
        match self.maximum_batching_window_in_seconds {
            None => Ok(None),
            Some(n) if (0..=300).contains(&n) => Ok(Some(n as u32)),
            Some(n) => {
                Err(ApiError::validation(&n.to_string(), "maximumBatchingWindowInSeconds", "Member must have value between 0 and 300"))
            }
        }
    }
    fn report_failures(&self) -> Result<Option<bool>, ApiError> {
        match &self.function_response_types {
            None => Ok(None),
            Some(t) if t.iter().all(|x| x == "ReportBatchItemFailures") => Ok(Some(!t.is_empty())),
            Some(t) => Err(ApiError::validation(
                &format!("{t:?}"),
                "functionResponseTypes",
                "Member must satisfy enum value set: [ReportBatchItemFailures]",
            )),
        }
    }
    /// FilterCriteria.Filters[].Pattern (each a JSON string).
    fn filters(&self) -> Result<Option<Vec<String>>, ApiError> {
        let Some(fc) = self.filter_criteria.as_ref().filter(|f| !f.is_null()) else { return Ok(None) };
        let bad = || ApiError::invalid("FilterCriteria must be {\"Filters\": [{\"Pattern\": \"<JSON>\"}]}");
        let list = match fc.get("Filters") {
            None | Some(serde_json::Value::Null) => return Ok(Some(Vec::new())),
            Some(serde_json::Value::Array(l)) => l,
            Some(_) => return Err(bad()),
        };
        list.iter()
            .map(|f| f.get("Pattern").and_then(|p| p.as_str()).map(str::to_string).ok_or_else(bad))
            .collect::<Result<_, _>>()
            .map(Some)
    }

    fn concurrency(&self) -> Option<u32> {
        self.scaling_config.as_ref().and_then(|s| s.maximum_concurrency)
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct CorsInput {
    allow_credentials: Option<bool>,
    allow_headers: Option<Vec<String>>,
    allow_methods: Option<Vec<String>>,
    allow_origins: Option<Vec<String>>,
    expose_headers: Option<Vec<String>>,
    max_age: Option<u32>,
}

impl From<CorsInput> for Cors {
    fn from(c: CorsInput) -> Cors {
        Cors {
            allow_credentials: c.allow_credentials.unwrap_or(false),
            allow_headers: c.allow_headers.unwrap_or_default(),
            allow_methods: c.allow_methods.unwrap_or_default(),
            allow_origins: c.allow_origins.unwrap_or_default(),
            expose_headers: c.expose_headers.unwrap_or_default(),
            max_age: c.max_age,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UrlInput {
    auth_type: Option<String>,
    cors: Option<CorsInput>,
    invoke_mode: Option<String>,
}

fn auth_type(s: &str) -> Result<AuthType, ApiError> {
    match s {
        "NONE" => Ok(AuthType::None),
        "AWS_IAM" => Ok(AuthType::AwsIam),
        other => Err(ApiError::validation(other, "authType", "Member must satisfy enum value set: [NONE, AWS_IAM]")),
    }
}

fn layer_version(v: &str) -> Result<u64, ApiError> {
    v.parse::<u64>().map_err(|_| ApiError::validation(v, "versionNumber", "Member must be a number"))
}

fn parse_publish_layer(name: String, body: &[u8]) -> Result<Action, ApiError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Input {
        description: Option<String>,
        content: Option<CodeInput>,
        compatible_runtimes: Option<Vec<String>>,
        compatible_architectures: Option<Vec<String>>,
        license_info: Option<String>,
    }
    let input: Input = body_json(body)?;
    if !nimbus_model::layer::is_valid_layer_name(&name) {
        return Err(ApiError::validation(&name, "layerName", "Member must satisfy regular expression pattern: [a-zA-Z0-9-_]+"));
    }
    let content = required(input.content, "content")?;
    if content.s3_bucket.is_some() {
        return Err(ApiError::invalid("Nimbus accepts layer content as ZipFile only"));
    }
    let description = input.description.unwrap_or_default();
    validate::description(&description)?;
    let runtimes = input.compatible_runtimes.unwrap_or_default();
    if runtimes.len() > 15 {
        return Err(ApiError::validation(
            &format!("{runtimes:?}"),
            "compatibleRuntimes",
            "Member must have length less than or equal to 15",
        ));
    }
    for r in &runtimes {
        if r.parse::<nimbus_model::Runtime>().is_err() && !nimbus_model::Runtime::is_known_elsewhere(r) {
            validate::runtime(r)?;
        }
    }
    let architectures = input.compatible_architectures.unwrap_or_default();
    if architectures.len() > 2 || architectures.iter().any(|a| a != "x86_64" && a != "arm64") {
        return Err(ApiError::validation(
            &format!("{architectures:?}"),
            "compatibleArchitectures",
            "Member must satisfy enum value set: [x86_64, arm64]",
        ));
    }
    if input.license_info.as_deref().is_some_and(|l| l.len() > 512) {
        return Err(ApiError::validation("…", "licenseInfo", "Member must have length less than or equal to 512"));
    }
    Ok(Action::PublishLayerVersion(Box::new(NewLayerVersion {
        name,
        description,
        compatible_runtimes: runtimes,
        compatible_architectures: architectures,
        license_info: input.license_info,
        zip: decode_zip(content.zip_file.as_deref())?,
    })))
}

fn marker(query: Option<&str>) -> Option<String> {
    query_param(query, "Marker").filter(|m| !m.is_empty())
}

fn max_items(query: Option<&str>) -> Result<usize, ApiError> {
    match query_param(query, "MaxItems") {
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (1..=10_000).contains(&n) => Ok(n as usize),
            _ => Err(ApiError::validation(&v, "maxItems", "Member must have value between 1 and 10000")),
        },
        None => Ok(50),
    }
}

/// MaxItems where the model caps it lower than the usual 10,000, with AWS's messages.
fn max_items_up_to(query: Option<&str>, limit: i64) -> Result<usize, ApiError> {
    match query_param(query, "MaxItems") {
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n < 1 => Err(ApiError::validation(&v, "maxItems", "Member must have value greater than or equal to 1")),
            Ok(n) if n > limit => {
                Err(ApiError::validation(&v, "maxItems", &format!("Member must have value less than or equal to {limit}")))
            }
            Ok(n) => Ok(n as usize),
            Err(_) => Err(ApiError::validation(&v, "maxItems", "Member must be a number")),
        },
        None => Ok(limit as usize),
    }
}

fn parse_config_change(body: &[u8]) -> Result<ConfigChange, ApiError> {
    let input: UpdateConfigInput = body_json(body)?;
    let environment = match input.environment {
        Some(e) => {
            let vars = e.variables.unwrap_or_default();
            validate::environment(&vars)?;
            Some(vars)
        }
        None => None,
    };
    if let Some(h) = &input.handler {
        validate::handler(h)?;
    }
    if let Some(d) = &input.description {
        validate::description(d)?;
    }
    if let Some(r) = &input.role {
        validate::role(r)?;
    }
    Ok(ConfigChange {
        runtime: input.runtime.as_deref().map(validate::runtime).transpose()?,
        role: input.role,
        handler: input.handler,
        description: input.description,
        timeout_secs: input.timeout.map(validate::timeout).transpose()?,
        memory_mb: input.memory_size.map(validate::memory).transpose()?,
        ephemeral_storage_mb: input.ephemeral_storage.map(|e| validate::ephemeral_storage(e.size)).transpose()?,
        environment,
        layers: input.layers,
        dead_letter_target: dead_letter(input.dead_letter_config)?,
        revision_id: input.revision_id,
    })
}

/// AWS's limit on the base64 `X-Amz-Client-Context` header.
const MAX_CLIENT_CONTEXT: usize = 3583;

fn parse_invoke(req: &RawRequest<'_>, function: FunctionRef) -> Result<Action, ApiError> {
    let invocation_type = header(req.headers, "x-amz-invocation-type").unwrap_or("RequestResponse");
    match invocation_type {
        "RequestResponse" => {}
        "DryRun" => return Ok(Action::InvokeDryRun(function)),
        "Event" => {
            let payload = if req.body.is_empty() { Bytes::from_static(b"{}") } else { req.body.clone() };
            if payload.len() <= nimbus_model::invoke::async_limits::MAX_PAYLOAD
                && serde_json::from_slice::<serde::de::IgnoredAny>(&payload).is_err()
            {
                return Err(ApiError::new(
                    ErrorCode::InvalidRequestContent,
                    "Could not parse request body into json: Could not parse payload into json: Unexpected character",
                ));
            }
            return Ok(Action::InvokeAsync { function, payload });
        }
        other => {
            return Err(ApiError::validation(
                other,
                "invocationType",
                "Member must satisfy enum value set: [Event, RequestResponse, DryRun]",
            ))
        }
    }
    if req.body.len() > MAX_SYNC_PAYLOAD {
        return Err(ApiError::new(
            ErrorCode::RequestTooLarge,
            format!("Request must be smaller than {MAX_SYNC_PAYLOAD} bytes for the InvokeFunction operation"),
        ));
    }
    let payload = if req.body.is_empty() {
        Bytes::from_static(b"{}")
    } else {
        if serde_json::from_slice::<serde::de::IgnoredAny>(&req.body).is_err() {
            return Err(ApiError::new(
                ErrorCode::InvalidRequestContent,
                "Could not parse request body into json: Could not parse payload into json: Unexpected character",
            ));
        }
        req.body.clone()
    };
    let tail_log = match header(req.headers, "x-amz-log-type") {
        None | Some("None") => false,
        Some("Tail") => true,
        Some(other) => return Err(ApiError::validation(other, "logType", "Member must satisfy enum value set: [None, Tail]")),
    };
    let client_context = match header(req.headers, "x-amz-client-context") {
        None | Some("") => None,
        Some(b64) => {
            let bad = || ApiError::new(ErrorCode::InvalidRequestContent, "Client context must be a valid Base64-encoded JSON object.");
            if b64.len() > MAX_CLIENT_CONTEXT {
                return Err(ApiError::invalid(format!("Client context must be smaller than {MAX_CLIENT_CONTEXT} bytes")));
            }
            let raw = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|_| bad())?;
            let value: serde_json::Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
            if !value.is_object() {
                return Err(bad());
            }
            Some(String::from_utf8(raw).map_err(|_| bad())?)
        }
    };
    Ok(Action::Invoke(InvokeRequest { function, payload, tail_log, client_context, request_id: None }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition() -> Partition {
        Partition { region: "us-east-1".into(), account_id: "000000000000".into() }
    }

    fn parse_req(method: Method, path: &str, query: Option<&str>, body: &str) -> Result<Action, ApiError> {
        let headers = HeaderMap::new();
        parse(
            RawRequest {
                url_domain: "lambda-url.us-east-1.localhost",
                api_domain: "execute-api.us-east-1.localhost",
                source_ip: "127.0.0.1".into(),
                method: &method,
                path,
                query,
                headers: &headers,
                body: Bytes::from(body.to_string()),
            },
            &partition(),
        )
    }

    #[test]
    fn routes() {
        assert!(matches!(parse_req(Method::GET, "/2015-03-31/functions/", None, ""), Ok(Action::ListFunctions { max_items: 50, .. })));
        assert!(matches!(parse_req(Method::GET, "/2015-03-31/functions/f", None, ""), Ok(Action::GetFunction(_))));
        let Ok(Action::GetFunction(f)) = parse_req(
            Method::GET,
            "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Af",
            Some("Qualifier=%24LATEST"),
            "",
        ) else {
            panic!("full ARN")
        };
        assert_eq!(f.name, "f");
        assert!(matches!(parse_req(Method::POST, "/2015-03-31/functions/f/invocations", None, "{}"), Ok(Action::Invoke(_))));
        assert!(matches!(parse_req(Method::GET, "/2016-08-19/account-settings/", None, ""), Ok(Action::GetAccountSettings)));
        assert_eq!(parse_req(Method::GET, "/nope", None, "").unwrap_err().code, ErrorCode::UnknownOperation);
    }

    #[test]
    fn bad_input() {
        let e = parse_req(Method::POST, "/2015-03-31/functions/f/invocations", None, "{not json").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequestContent);
        let e = parse_req(Method::POST, "/2015-03-31/functions", None, "{\"FunctionName\": 5}").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequestContent);
        let e = parse_req(Method::GET, "/2015-03-31/functions", Some("MaxItems=0"), "").unwrap_err();
        assert_eq!(e.code, ErrorCode::Validation);
        let body = r#"{"FunctionName":"f","Role":"arn:aws:iam::000000000000:role/r","Runtime":"python3.11","Handler":"a.b","MemorySize":1,"Code":{"ZipFile":""}}"#;
        assert_eq!(parse_req(Method::POST, "/2015-03-31/functions", None, body).unwrap_err().code, ErrorCode::Validation);
    }

    #[test]
    fn decodes_percent() {
        assert_eq!(decode_component("a%24b%3A"), "a$b:");
        assert_eq!(decode_component("%"), "%");
        assert_eq!(decode_component("%4"), "%4");
    }
}

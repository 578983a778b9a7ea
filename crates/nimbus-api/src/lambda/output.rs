//! Lambda's typed outputs, as its model names them, built from the control plane's
//! records. Debug builds check every one against the model when it is encoded.

use std::collections::BTreeMap;

use nimbus_model::alias::AliasConfig;
use nimbus_model::event_source::EventSourceMapping;
use nimbus_model::invoke::EventInvokeConfig;
use nimbus_model::layer::{LayerStatement, LayerVersion};
use nimbus_model::provisioned::{self, ProvisionedConfig, ProvisionedStatus};
use nimbus_model::url::FunctionUrlConfig;
use nimbus_model::{format_last_modified, FunctionConfig, Partition, LATEST};
use serde::Serialize;

use crate::server::AppState;

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FunctionConfiguration {
    function_name: String,
    function_arn: String,
    runtime: &'static str,
    role: String,
    handler: String,
    code_size: u64,
    description: String,
    timeout: u32,
    memory_size: u32,
    last_modified: String,
    code_sha256: String,
    version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    environment: Option<EnvironmentResponse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dead_letter_config: Option<DeadLetterConfig>,
    #[serde(rename = "KMSKeyArn", skip_serializing_if = "Option::is_none")]
    kms_key_arn: Option<String>,
    tracing_config: TracingConfig,
    revision_id: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    layers: Vec<Layer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vpc_config: Option<VpcConfigResponse>,
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    state_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state_reason_code: Option<&'static str>,
    last_update_status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_update_status_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_update_status_reason_code: Option<&'static str>,
    package_type: &'static str,
    architectures: Vec<String>,
    ephemeral_storage: EphemeralStorage,
    snap_start: SnapStart,
    logging_config: LoggingConfig,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct EnvironmentResponse {
    variables: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct DeadLetterConfig {
    target_arn: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct VpcConfigResponse {
    subnet_ids: Vec<String>,
    security_group_ids: Vec<String>,
    vpc_id: String,
    ipv6_allowed_for_dual_stack: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct TracingConfig {
    mode: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Layer {
    arn: String,
    code_size: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct EphemeralStorage {
    size: u32,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct SnapStart {
    apply_on: &'static str,
    optimization_status: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct LoggingConfig {
    log_format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    application_log_level: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_log_level: Option<&'static str>,
    log_group: String,
}

impl FunctionConfiguration {
    /// `$LATEST` has the unqualified ARN unless the caller named a qualifier; a published
    /// version always has its qualified one.
    pub fn new(p: &Partition, c: &FunctionConfig, qualifier: Option<&str>) -> FunctionConfiguration {
        let function_arn = match qualifier {
            Some(q) => p.qualified_arn(&c.name, q),
            None if c.version != LATEST => p.qualified_arn(&c.name, &c.version),
            None => p.function_arn(&c.name),
        };
        FunctionConfiguration {
            function_name: c.name.clone(),
            function_arn,
            runtime: c.runtime.id(),
            role: c.role.clone(),
            handler: c.handler.clone(),
            code_size: c.code_size,
            description: c.description.clone(),
            timeout: c.timeout_secs,
            memory_size: c.memory_mb,
            last_modified: format_last_modified(c.last_modified_ms),
            code_sha256: c.code_sha256_base64(),
            version: c.version.clone(),
            environment: (!c.environment.is_empty()).then(|| EnvironmentResponse { variables: c.environment.clone() }),
            kms_key_arn: c.kms_key_arn.clone(),
            dead_letter_config: c.dead_letter_target.clone().map(|target_arn| DeadLetterConfig { target_arn }),
            tracing_config: TracingConfig { mode: if c.tracing_active { "Active" } else { "PassThrough" } },
            revision_id: c.revision_id.clone(),
            layers: c.layers.iter().map(|l| Layer { arn: l.arn.clone(), code_size: l.code_size }).collect(),
            vpc_config: c.vpc.as_ref().map(|v| VpcConfigResponse {
                subnet_ids: v.subnet_ids.clone(),
                security_group_ids: v.security_group_ids.clone(),
                vpc_id: v.vpc_id.clone(),
                ipv6_allowed_for_dual_stack: v.ipv6_allowed_for_dual_stack,
            }),
            state: "Active",
            state_reason: None,
            state_reason_code: None,
            last_update_status: "Successful",
            last_update_status_reason: None,
            last_update_status_reason_code: None,
            package_type: "Zip",
            architectures: c.architectures.clone(),
            ephemeral_storage: EphemeralStorage { size: c.ephemeral_storage_mb },
            snap_start: SnapStart { apply_on: "None", optimization_status: "Off" },
            logging_config: LoggingConfig {
                log_format: c.logging.format.as_str(),
                application_log_level: c.logging.application_level.map(|l| l.as_str()),
                system_log_level: c.logging.system_level.map(|l| l.as_str()),
                log_group: c.log_group(),
            },
        }
    }
}

impl FunctionConfiguration {
    /// A function whose runtime has no interpreter on this server cannot run: `Failed`,
    /// with AWS's `InvalidRuntime` code and a reason that says how to install it (what
    /// AWS's waiters and deployment tools read). Derived at each answer, so the function
    /// is `Active` again once the server has the runtime.
    pub fn with_runtime_check(mut self, unavailable: Option<String>) -> FunctionConfiguration {
        if let Some(why) = unavailable {
            let runtime = self.runtime;
            let reason = format!("The runtime {runtime} is not available on this Nimbus server: {why}");
            self.state = "Failed";
            self.state_reason = Some(reason.clone());
            self.state_reason_code = Some("InvalidRuntime");
            self.last_update_status = "Failed";
            self.last_update_status_reason = Some(reason);
            self.last_update_status_reason_code = Some("InvalidRuntime");
        }
        self
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetFunctionResponse {
    pub configuration: FunctionConfiguration,
    pub code: FunctionCodeLocation,
    /// Absent while the function has none, as AWS answers.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<Concurrency>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FunctionCodeLocation {
    pub repository_type: &'static str,
    pub location: String,
}

/// PutFunctionConcurrency's and GetFunctionConcurrency's answer (and GetFunction's).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Concurrency {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reserved_concurrent_executions: Option<u32>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListFunctionsResponse {
    pub functions: Vec<FunctionConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListVersionsByFunctionResponse {
    pub versions: Vec<FunctionConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AliasConfiguration {
    alias_arn: String,
    name: String,
    function_version: String,
    description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    routing_config: Option<AliasRoutingConfiguration>,
    revision_id: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct AliasRoutingConfiguration {
    additional_version_weights: BTreeMap<String, f64>,
}

impl AliasConfiguration {
    pub fn new(p: &Partition, a: &AliasConfig) -> AliasConfiguration {
        AliasConfiguration {
            alias_arn: p.qualified_arn(&a.function_name, &a.name),
            name: a.name.clone(),
            function_version: a.function_version.clone(),
            description: a.description.clone(),
            routing_config: a.additional_version.as_ref().map(|(version, weight)| AliasRoutingConfiguration {
                additional_version_weights: BTreeMap::from([(version.clone(), *weight)]),
            }),
            revision_id: a.revision_id.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListAliasesResponse {
    pub aliases: Vec<AliasConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetAccountSettingsResponse {
    pub account_limit: AccountLimit,
    pub account_usage: AccountUsage,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccountLimit {
    pub total_code_size: u64,
    pub code_size_unzipped: u64,
    pub code_size_zipped: u64,
    pub concurrent_executions: u32,
    pub unreserved_concurrent_executions: u32,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccountUsage {
    pub total_code_size: u64,
    pub function_count: u64,
}

/// A provisioned concurrency config (list items also carry the function's ARN), with the
/// allocation as the pool sees it now.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProvisionedConcurrencyConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    function_arn: Option<String>,
    requested_provisioned_concurrent_executions: u32,
    available_provisioned_concurrent_executions: usize,
    allocated_provisioned_concurrent_executions: usize,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_reason: Option<&'static str>,
    last_modified: String,
}

impl ProvisionedConcurrencyConfig {
    pub fn new(state: &AppState, c: &ProvisionedConfig, list_item: bool) -> ProvisionedConcurrencyConfig {
        let counts = state.invoker.provisioned_counts(&c.function, &c.qualifier);
        let requested = c.requested as usize;
        let status = match &counts.failure {
            Some(_) => ProvisionedStatus::Failed,
            None if counts.requested >= requested && counts.allocated >= requested => ProvisionedStatus::Ready,
            None => ProvisionedStatus::InProgress,
        };
        let allocated = counts.allocated.min(requested);
        ProvisionedConcurrencyConfig {
            function_arn: list_item.then(|| state.control.partition().qualified_arn(&c.function, &c.qualifier)),
            requested_provisioned_concurrent_executions: c.requested,
            available_provisioned_concurrent_executions: allocated,
            allocated_provisioned_concurrent_executions: allocated,
            status: status.as_str(),
            status_reason: status.reason(),
            last_modified: provisioned::format_last_modified(c.last_modified_ms),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListProvisionedConcurrencyConfigsResponse {
    pub provisioned_concurrency_configs: Vec<ProvisionedConcurrencyConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

// ---- layers ----------------------------------------------------------------------------

/// GetLayerVersion's and PublishLayerVersion's answer (with its content), or a list item.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LayerVersionResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<LayerVersionContent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    layer_arn: Option<String>,
    layer_version_arn: String,
    description: String,
    created_date: String,
    version: u64,
    compatible_runtimes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    license_info: Option<String>,
    compatible_architectures: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct LayerVersionContent {
    location: String,
    code_sha256: String,
    code_size: u64,
}

impl LayerVersionResponse {
    /// With `location`, the content's download link.
    pub fn full(p: &Partition, l: &LayerVersion, location: String) -> LayerVersionResponse {
        LayerVersionResponse {
            content: Some(LayerVersionContent {
                location,
                code_sha256: nimbus_model::function::digest_to_base64(&l.code_digest),
                code_size: l.code_size,
            }),
            layer_arn: Some(p.layer_arn(&l.layer_name)),
            ..LayerVersionResponse::item(p, l)
        }
    }

    pub fn item(p: &Partition, l: &LayerVersion) -> LayerVersionResponse {
        LayerVersionResponse {
            content: None,
            layer_arn: None,
            layer_version_arn: l.arn(p),
            description: l.description.clone(),
            created_date: format_last_modified(l.created_ms),
            version: l.version,
            compatible_runtimes: l.compatible_runtimes.clone(),
            license_info: l.license_info.clone(),
            compatible_architectures: l.compatible_architectures.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LayersListItem {
    pub layer_name: String,
    pub layer_arn: String,
    pub latest_matching_version: LayerVersionResponse,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListLayersResponse {
    pub layers: Vec<LayersListItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListLayerVersionsResponse {
    pub layer_versions: Vec<LayerVersionResponse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

/// AddLayerVersionPermission's answer and GetLayerVersionPolicy's: a policy document (or
/// one statement) as a JSON string inside the JSON.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    pub revision_id: String,
}

/// An IAM policy document.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyDocument {
    pub version: &'static str,
    pub id: &'static str,
    pub statement: Vec<PolicyStatement>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyStatement {
    sid: String,
    effect: &'static str,
    principal: Principal,
    action: String,
    resource: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    condition: Option<BTreeMap<&'static str, BTreeMap<&'static str, String>>>,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Principal {
    Anyone(&'static str),
    Aws {
        #[serde(rename = "AWS")]
        aws: String,
    },
    Service {
        #[serde(rename = "Service")]
        service: String,
    },
}

impl Principal {
    /// `*`, an account (`123456789012` or its root ARN) or another ARN, or a service.
    fn of(principal: &str) -> Principal {
        let is_account = |s: &str| s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit());
        if principal == "*" {
            Principal::Anyone("*")
        } else if is_account(principal) {
            Principal::Aws { aws: format!("arn:aws:iam::{principal}:root") }
        } else if principal.starts_with("arn:") {
            Principal::Aws { aws: principal.to_string() }
        } else {
            Principal::Service { service: principal.to_string() }
        }
    }
}

impl PolicyStatement {
    /// A function's statement as AWS renders it: conditions for the source, account,
    /// organization, event-source token and URL auth type.
    pub fn for_function(
        p: &Partition,
        name: &str,
        qualifier: Option<&str>,
        s: &nimbus_model::function::PermissionStatement,
    ) -> PolicyStatement {
        let mut condition: BTreeMap<&'static str, BTreeMap<&'static str, String>> = BTreeMap::new();
        if let Some(arn) = &s.source_arn {
            condition.entry("ArnLike").or_default().insert("AWS:SourceArn", arn.clone());
        }
        let equals = [
            ("AWS:SourceAccount", &s.source_account),
            ("aws:PrincipalOrgID", &s.principal_org_id),
            ("lambda:EventSourceToken", &s.event_source_token),
            ("lambda:FunctionUrlAuthType", &s.function_url_auth_type),
        ];
        for (key, value) in equals {
            if let Some(v) = value {
                condition.entry("StringEquals").or_default().insert(key, v.clone());
            }
        }
        PolicyStatement {
            sid: s.sid.clone(),
            effect: "Allow",
            principal: Principal::of(&s.principal),
            action: s.action.clone(),
            resource: match qualifier {
                Some(q) => p.qualified_arn(name, q),
                None => p.function_arn(name),
            },
            condition: (!condition.is_empty()).then_some(condition),
        }
    }

    /// A layer version's statement as AWS renders it.
    pub fn for_layer(p: &Partition, l: &LayerVersion, s: &LayerStatement) -> PolicyStatement {
        let principal = if s.principal == "*" {
            Principal::Anyone("*")
        } else {
            let account = s.principal.trim_start_matches("arn:aws:iam::").trim_end_matches(":root");
            Principal::Aws { aws: format!("arn:aws:iam::{account}:root") }
        };
        PolicyStatement {
            sid: s.sid.clone(),
            effect: "Allow",
            principal,
            action: s.action.clone(),
            resource: l.arn(p),
            condition: s
                .organization_id
                .as_ref()
                .map(|org| BTreeMap::from([("StringEquals", BTreeMap::from([("aws:PrincipalOrgID", org.clone())]))])),
        }
    }
}

// ---- event-source mappings -------------------------------------------------------------

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EventSourceMappingConfiguration {
    #[serde(rename = "UUID")]
    uuid: String,
    batch_size: u32,
    maximum_batching_window_in_seconds: u32,
    event_source_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    filter_criteria: Option<FilterCriteria>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scaling_config: Option<ScalingConfig>,
    function_arn: String,
    event_source_mapping_arn: String,
    last_modified: f64,
    last_processing_result: String,
    state: &'static str,
    state_transition_reason: &'static str,
    function_response_types: Vec<&'static str>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    stream: Option<StreamMappingFields>,
}

/// The members AWS answers with for stream sources only.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct StreamMappingFields {
    starting_position: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    starting_position_timestamp: Option<f64>,
    parallelization_factor: u32,
    bisect_batch_on_function_error: bool,
    maximum_retry_attempts: i32,
    maximum_record_age_in_seconds: i32,
    tumbling_window_in_seconds: u32,
    destination_config: StreamDestinationConfig,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct StreamDestinationConfig {
    on_failure: StreamDestination,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct StreamDestination {
    #[serde(skip_serializing_if = "Option::is_none")]
    destination: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct FilterCriteria {
    filters: Vec<Filter>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Filter {
    pattern: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ScalingConfig {
    maximum_concurrency: u32,
}

impl EventSourceMappingConfiguration {
    /// `transition` is the state a change leaves it in (`Creating`, `Updating`, `Deleting`).
    pub fn new(p: &Partition, m: &EventSourceMapping, transition: Option<&'static str>) -> EventSourceMappingConfiguration {
        EventSourceMappingConfiguration {
            uuid: m.uuid.clone(),
            batch_size: m.batch_size,
            maximum_batching_window_in_seconds: m.maximum_batching_window_secs,
            event_source_arn: m.event_source_arn.clone(),
            filter_criteria: (!m.filters.is_empty())
                .then(|| FilterCriteria { filters: m.filters.iter().map(|p| Filter { pattern: p.clone() }).collect() }),
            scaling_config: m.maximum_concurrency.map(|c| ScalingConfig { maximum_concurrency: c }),
            function_arn: match &m.qualifier {
                Some(q) => p.qualified_arn(&m.function, q),
                None => p.function_arn(&m.function),
            },
            event_source_mapping_arn: p.mapping_arn(&m.uuid),
            last_modified: m.last_modified_ms as f64 / 1000.0,
            last_processing_result: m.last_processing_result.clone(),
            state: transition.unwrap_or(if m.enabled { "Enabled" } else { "Disabled" }),
            // AWS's words differ by source: "User action" for streams
            // (test_lambda_integration_kinesis/dynamodbstreams.snapshot.json), USER_INITIATED
            // for queues (test_lambda_integration_sqs.snapshot.json).
            state_transition_reason: if m.stream.is_some() { "User action" } else { "USER_INITIATED" },
            function_response_types: if m.report_batch_item_failures { vec!["ReportBatchItemFailures"] } else { vec![] },
            stream: m.stream.as_ref().map(|s| StreamMappingFields {
                starting_position: s.starting_position.clone(),
                starting_position_timestamp: s.starting_position_timestamp,
                parallelization_factor: s.parallelization_factor,
                bisect_batch_on_function_error: s.bisect_on_error,
                maximum_retry_attempts: s.maximum_retry_attempts,
                maximum_record_age_in_seconds: s.maximum_record_age_secs,
                tumbling_window_in_seconds: s.tumbling_window_secs,
                destination_config: StreamDestinationConfig { on_failure: StreamDestination { destination: s.on_failure.clone() } },
            }),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListEventSourceMappingsResponse {
    pub event_source_mappings: Vec<EventSourceMappingConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

// ---- function URLs ---------------------------------------------------------------------

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FunctionUrlConfigResponse {
    function_url: String,
    function_arn: String,
    auth_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cors: Option<CorsResponse>,
    creation_time: String,
    /// Absent from CreateFunctionUrlConfig's answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    last_modified_time: Option<String>,
    invoke_mode: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct CorsResponse {
    allow_credentials: bool,
    allow_headers: Vec<String>,
    allow_methods: Vec<String>,
    allow_origins: Vec<String>,
    expose_headers: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_age: Option<u32>,
}

impl FunctionUrlConfigResponse {
    /// `origin`: where the caller reached this server (see `crate::urls`).
    pub fn new(state: &AppState, origin: &str, c: &FunctionUrlConfig, created: bool) -> FunctionUrlConfigResponse {
        let p = state.control.partition();
        let iso = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
        FunctionUrlConfigResponse {
            function_url: state.urls.function_url(origin, &c.url_id),
            function_arn: match &c.qualifier {
                Some(q) => p.qualified_arn(&c.function, q),
                None => p.function_arn(&c.function),
            },
            auth_type: c.auth_type.as_str(),
            cors: c.cors.as_ref().map(|cors| CorsResponse {
                allow_credentials: cors.allow_credentials,
                allow_headers: cors.allow_headers.clone(),
                allow_methods: cors.allow_methods.clone(),
                allow_origins: cors.allow_origins.clone(),
                expose_headers: cors.expose_headers.clone(),
                max_age: cors.max_age,
            }),
            creation_time: iso(c.created_ms),
            last_modified_time: (!created).then(|| iso(c.modified_ms)),
            invoke_mode: c.invoke_mode.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListFunctionUrlConfigsResponse {
    pub function_url_configs: Vec<FunctionUrlConfigResponse>,
}

// ---- asynchronous invocation -----------------------------------------------------------

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FunctionEventInvokeConfig {
    last_modified: f64,
    function_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    maximum_retry_attempts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    maximum_event_age_in_seconds: Option<u32>,
    destination_config: DestinationConfig,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct DestinationConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    on_success: Option<Destination>,
    #[serde(skip_serializing_if = "Option::is_none")]
    on_failure: Option<Destination>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Destination {
    destination: String,
}

impl FunctionEventInvokeConfig {
    pub fn new(p: &Partition, c: &EventInvokeConfig) -> FunctionEventInvokeConfig {
        let destination = |d: &Option<String>| d.clone().map(|destination| Destination { destination });
        FunctionEventInvokeConfig {
            last_modified: c.last_modified_ms as f64 / 1000.0,
            function_arn: p.qualified_arn(&c.function, &c.qualifier),
            maximum_retry_attempts: c.maximum_retry_attempts,
            maximum_event_age_in_seconds: c.maximum_event_age_secs,
            destination_config: DestinationConfig { on_success: destination(&c.on_success), on_failure: destination(&c.on_failure) },
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListFunctionEventInvokeConfigsResponse {
    pub function_event_invoke_configs: Vec<FunctionEventInvokeConfig>,
}

// ---- invocation ------------------------------------------------------------------------

/// Invoke's answer; the payload travels beside it, raw.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InvocationResponse {
    pub status_code: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_result: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executed_version: Option<String>,
}

/// InvokeWithResponseStream's answer when nothing streams (DryRun); a run streams its
/// events through `crate::streaming`.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InvokeWithResponseStreamResponse {
    pub status_code: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executed_version: Option<String>,
}

/// InvokeAsync's answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InvokeAsyncResponse {
    pub status: u16,
}

/// DeleteFunction's answer: AWS sends 204 with no body.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StatusOnly {
    pub status_code: u16,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsResponse {
    pub tags: BTreeMap<String, String>,
}

/// AddPermission's answer: the statement as a JSON string.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PermissionResponse {
    pub statement: String,
}

/// Get/PutFunctionRecursionConfig's answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RecursionConfig {
    pub recursive_loop: String,
}

// ---- code signing configs --------------------------------------------------------------

/// Create/Get/UpdateCodeSigningConfig's answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CodeSigningConfigResponse {
    pub code_signing_config: CodeSigningConfigView,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CodeSigningConfigView {
    code_signing_config_id: String,
    code_signing_config_arn: String,
    description: String,
    allowed_publishers: AllowedPublishers,
    code_signing_policies: CodeSigningPolicies,
    last_modified: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct AllowedPublishers {
    signing_profile_version_arns: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct CodeSigningPolicies {
    untrusted_artifact_on_deployment: String,
}

impl CodeSigningConfigView {
    pub fn new(p: &Partition, c: &nimbus_model::code_signing::CodeSigningConfig) -> CodeSigningConfigView {
        CodeSigningConfigView {
            code_signing_config_id: c.id.clone(),
            code_signing_config_arn: p.code_signing_config_arn(&c.id),
            description: c.description.clone(),
            allowed_publishers: AllowedPublishers { signing_profile_version_arns: c.signing_profile_version_arns.clone() },
            code_signing_policies: CodeSigningPolicies { untrusted_artifact_on_deployment: c.untrusted_artifact_on_deployment.clone() },
            last_modified: nimbus_model::format_last_modified(c.last_modified_ms),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListCodeSigningConfigsResponse {
    pub code_signing_configs: Vec<CodeSigningConfigView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListFunctionsByCodeSigningConfigResponse {
    pub function_arns: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

/// Put/GetFunctionCodeSigningConfig's answer; AWS answers `{}` for a function without one.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FunctionCodeSigningConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_signing_config_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_name: Option<String>,
}

/// Get/PutRuntimeManagementConfig's answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RuntimeManagementConfig {
    pub update_runtime_on: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_version_arn: Option<String>,
    pub function_arn: String,
}

impl RuntimeManagementConfig {
    /// A version's setting (`Auto` when it has none, AWS's default).
    pub fn new(function_arn: String, m: Option<nimbus_model::function::RuntimeManagement>) -> RuntimeManagementConfig {
        let m =
            m.unwrap_or_else(|| nimbus_model::function::RuntimeManagement { update_runtime_on: "Auto".into(), runtime_version_arn: None });
        RuntimeManagementConfig { update_runtime_on: m.update_runtime_on, runtime_version_arn: m.runtime_version_arn, function_arn }
    }
}

/// ListCapacityProviders' answer: Nimbus has none.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListCapacityProvidersResponse {
    pub capacity_providers: Vec<()>,
}

/// ListDurableExecutionsByFunction's answer: Nimbus runs none.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListDurableExecutionsResponse {
    pub durable_executions: Vec<()>,
}

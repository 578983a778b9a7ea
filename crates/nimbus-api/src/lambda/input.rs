//! Lambda's typed inputs, as its model names them, and their checks into the control
//! plane's requests with AWS's messages. Decoding (types, required members) was done by
//! `nimbus-protocol` against the model; what is left here is what the model cannot say.

use std::collections::BTreeMap;

use base64::Engine;
use bytes::Bytes;
use nimbus_control::{AliasChange, CodeSigningChange, ConfigChange, EventInvokeChange, NewFunction, NewLayerVersion, UrlChange};
use nimbus_model::code_signing;
use nimbus_model::function::RuntimeManagement;
use nimbus_model::layer::LayerStatement;
use nimbus_model::logging::{LoggingChange, LoggingConfig};
use nimbus_model::url::{AuthType, Cors};
use nimbus_model::validate::{self, MAX_SYNC_PAYLOAD};
use nimbus_model::{ApiError, ErrorCode, FunctionRef, Partition};

mod target;
use super::package::{CodeMembers, Package};
use nimbus_triggers::{MappingChange, NewMapping};
use serde::Deserialize;

nimbus_protocol::calls! {
    /// Every Lambda operation Nimbus serves, with its typed input.
    pub enum LambdaCall {
        CreateFunction(CreateFunctionInput),
        GetFunction(FunctionInput),
        GetFunctionConfiguration(FunctionInput),
        ListFunctions(ListFunctionsInput),
        UpdateFunctionCode(UpdateFunctionCodeInput),
        UpdateFunctionConfiguration(UpdateFunctionConfigurationInput),
        DeleteFunction(FunctionInput),
        PublishVersion(PublishVersionInput),
        ListVersionsByFunction(ListByFunctionInput),
        CreateAlias(CreateAliasInput),
        GetAlias(AliasInput),
        UpdateAlias(UpdateAliasInput),
        DeleteAlias(AliasInput),
        ListAliases(ListAliasesInput),
        GetAccountSettings(NoInput),
        PutFunctionConcurrency(PutFunctionConcurrencyInput),
        GetFunctionConcurrency(FunctionInput),
        DeleteFunctionConcurrency(FunctionInput),
        PutProvisionedConcurrencyConfig(PutProvisionedConcurrencyConfigInput),
        GetProvisionedConcurrencyConfig(FunctionInput),
        DeleteProvisionedConcurrencyConfig(FunctionInput),
        ListProvisionedConcurrencyConfigs(ListByFunctionInput),
        PublishLayerVersion(PublishLayerVersionInput),
        GetLayerVersion(LayerVersionInput),
        GetLayerVersionByArn(GetLayerVersionByArnInput),
        ListLayers(ListLayersInput),
        ListLayerVersions(ListLayersInput),
        DeleteLayerVersion(LayerVersionInput),
        AddLayerVersionPermission(AddLayerVersionPermissionInput),
        RemoveLayerVersionPermission(RemoveLayerVersionPermissionInput),
        GetLayerVersionPolicy(LayerVersionInput),
        Invoke(InvokeInput, payload => payload),
        InvokeWithResponseStream(InvokeInput, payload => payload),
        InvokeAsync(InvokeAsyncInput, payload => invoke_args),
        CreateEventSourceMapping(MappingInput),
        GetEventSourceMapping(MappingIdInput),
        UpdateEventSourceMapping(MappingInput),
        DeleteEventSourceMapping(MappingIdInput),
        ListEventSourceMappings(ListEventSourceMappingsInput),
        CreateFunctionUrlConfig(UrlConfigInput),
        GetFunctionUrlConfig(FunctionInput),
        UpdateFunctionUrlConfig(UrlConfigInput),
        DeleteFunctionUrlConfig(FunctionInput),
        ListFunctionUrlConfigs(ListByFunctionInput),
        PutFunctionEventInvokeConfig(EventInvokeConfigInput),
        UpdateFunctionEventInvokeConfig(EventInvokeConfigInput),
        GetFunctionEventInvokeConfig(FunctionInput),
        DeleteFunctionEventInvokeConfig(FunctionInput),
        ListFunctionEventInvokeConfigs(ListByFunctionInput),
        TagResource(TagResourceInput),
        UntagResource(UntagResourceInput),
        ListTags(ResourceInput),
        AddPermission(AddPermissionInput),
        GetPolicy(FunctionInput),
        RemovePermission(RemovePermissionInput),
        GetFunctionRecursionConfig(FunctionInput),
        PutFunctionRecursionConfig(RecursionConfigInput),
        CreateCodeSigningConfig(CodeSigningConfigInput),
        GetCodeSigningConfig(CodeSigningConfigInput),
        UpdateCodeSigningConfig(CodeSigningConfigInput),
        DeleteCodeSigningConfig(CodeSigningConfigInput),
        ListCodeSigningConfigs(ListInput),
        ListFunctionsByCodeSigningConfig(CodeSigningConfigInput),
        PutFunctionCodeSigningConfig(FunctionCodeSigningConfigInput),
        GetFunctionCodeSigningConfig(FunctionCodeSigningConfigInput),
        DeleteFunctionCodeSigningConfig(FunctionCodeSigningConfigInput),
        GetRuntimeManagementConfig(RuntimeManagementInput),
        PutRuntimeManagementConfig(RuntimeManagementInput),
        GetResourcePolicy(ResourcePolicyInput),
        PutResourcePolicy(ResourcePolicyInput),
        DeleteResourcePolicy(ResourcePolicyInput),
        // Capacity providers (Lambda Managed Instances) and durable executions: not built
        // yet; answered from one table (`unbuilt`) as AWS answers where none exist.
        GetFunctionScalingConfig(UnbuiltInput),
        PutFunctionScalingConfig(UnbuiltInput),
        CreateCapacityProvider(UnbuiltInput),
        GetCapacityProvider(UnbuiltInput),
        UpdateCapacityProvider(UnbuiltInput),
        DeleteCapacityProvider(UnbuiltInput),
        ListCapacityProviders(UnbuiltInput),
        ListFunctionVersionsByCapacityProvider(UnbuiltInput),
        GetDurableExecution(UnbuiltInput),
        GetDurableExecutionHistory(UnbuiltInput),
        GetDurableExecutionState(UnbuiltInput),
        ListDurableExecutionsByFunction(UnbuiltInput),
        StopDurableExecution(UnbuiltInput),
        PauseDurableExecution(UnbuiltInput),
        ResumeDurableExecution(UnbuiltInput),
        DeleteDurableExecution(UnbuiltInput),
        CheckpointDurableExecution(UnbuiltInput),
        SendDurableExecutionCallbackSuccess(UnbuiltInput),
        SendDurableExecutionCallbackFailure(UnbuiltInput),
        SendDurableExecutionCallbackHeartbeat(UnbuiltInput),
    }
}

/// An operation without input members.
#[derive(Debug, Deserialize)]
pub struct NoInput {}

/// The input of operations that name a function (and, for most, a qualifier).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FunctionInput {
    function_name: String,
    qualifier: Option<String>,
}

impl FunctionInput {
    /// The function, with its qualifier from the name or from `Qualifier` (which must agree).
    pub fn function(&self, partition: &Partition) -> Result<FunctionRef, ApiError> {
        function_ref(&self.function_name, self.qualifier.as_deref(), partition)
    }
}

fn function_ref(name: &str, qualifier: Option<&str>, partition: &Partition) -> Result<FunctionRef, ApiError> {
    FunctionRef::parse(name, partition)?.with_qualifier(qualifier.filter(|q| !q.is_empty()))
}

/// Paging members common to list operations.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Page {
    marker: Option<String>,
    max_items: Option<i64>,
}

impl Page {
    pub fn marker(&self) -> Option<String> {
        self.marker.clone().filter(|m| !m.is_empty())
    }

    /// MaxItems, 1 to 10,000 (50 when absent).
    pub fn max_items(&self) -> Result<usize, ApiError> {
        match self.max_items {
            Some(n) if (1..=10_000).contains(&n) => Ok(n as usize),
            Some(n) => Err(ApiError::validation(&n.to_string(), "maxItems", "Member must have value between 1 and 10000")),
            None => Ok(50),
        }
    }

    /// MaxItems where the model caps it lower than the usual 10,000.
    pub fn max_items_up_to(&self, limit: i64) -> Result<usize, ApiError> {
        match self.max_items {
            Some(n) if n < 1 => Err(ApiError::validation(&n.to_string(), "maxItems", "Member must have value greater than or equal to 1")),
            Some(n) if n > limit => {
                Err(ApiError::validation(&n.to_string(), "maxItems", &format!("Member must have value less than or equal to {limit}")))
            }
            Some(n) => Ok(n as usize),
            None => Ok(limit as usize),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListFunctionsInput {
    function_version: Option<String>,
    #[serde(flatten)]
    pub page: Page,
}

impl ListFunctionsInput {
    /// Whether every version is listed (`FunctionVersion=ALL`).
    pub fn all_versions(&self) -> Result<bool, ApiError> {
        match self.function_version.as_deref() {
            None | Some("") => Ok(false),
            Some("ALL") => Ok(true),
            Some(v) => Err(ApiError::validation(v, "functionVersion", "Member must satisfy enum value set: [ALL]")),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListByFunctionInput {
    function_name: String,
    #[serde(flatten)]
    pub page: Page,
}

impl ListByFunctionInput {
    pub fn function(&self, partition: &Partition) -> Result<FunctionRef, ApiError> {
        FunctionRef::parse(&self.function_name, partition)
    }
}

// ---- functions -------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CodeInput {
    zip_file: Option<String>,
    #[serde(rename = "S3Bucket")]
    s3_bucket: Option<String>,
    #[serde(rename = "S3Key")]
    s3_key: Option<String>,
    #[serde(rename = "S3ObjectVersion")]
    s3_object_version: Option<String>,
    image_uri: Option<String>,
}

impl CodeInput {
    /// Where the zip comes from, checked (`path`: where the members sit, for AWS's messages).
    fn into_package(self, path: &str) -> Result<Package, ApiError> {
        let members = CodeMembers {
            zip_file: self.zip_file,
            s3_bucket: self.s3_bucket,
            s3_key: self.s3_key,
            s3_object_version: self.s3_object_version,
        };
        members.into_package(path, decode_zip)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EnvironmentInput {
    variables: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EphemeralInput {
    size: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TracingInput {
    mode: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LoggingInput {
    log_format: Option<String>,
    application_log_level: Option<String>,
    system_log_level: Option<String>,
    log_group: Option<String>,
}

impl From<LoggingInput> for LoggingChange {
    fn from(l: LoggingInput) -> LoggingChange {
        LoggingChange {
            format: l.log_format,
            application_level: l.application_log_level,
            system_level: l.system_log_level,
            log_group: l.log_group,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeadLetterInput {
    target_arn: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateFunctionInput {
    function_name: String,
    runtime: Option<String>,
    role: String,
    handler: Option<String>,
    description: Option<String>,
    timeout: Option<i64>,
    memory_size: Option<i64>,
    code: CodeInput,
    environment: Option<EnvironmentInput>,
    ephemeral_storage: Option<EphemeralInput>,
    architectures: Option<Vec<String>>,
    publish: Option<bool>,
    package_type: Option<String>,
    layers: Option<Vec<String>>,
    dead_letter_config: Option<DeadLetterInput>,
    tags: Option<BTreeMap<String, String>>,
    code_signing_config_arn: Option<String>,
    #[serde(rename = "KMSKeyArn")]
    kms_key_arn: Option<String>,
    tracing_config: Option<TracingInput>,
    logging_config: Option<Box<LoggingInput>>,
    /// Checked against the network objects by [`super::vpc`].
    pub(crate) vpc_config: Option<super::vpc::VpcConfigInput>,
}

impl CreateFunctionInput {
    pub fn publish(&self) -> bool {
        self.publish == Some(true)
    }

    /// The function to create, its `zip` left empty, and where its zip comes from.
    pub fn into_new_function(self) -> Result<(NewFunction, Package), ApiError> {
        let name = self.function_name;
        if name.len() > 64 && nimbus_model::arn::is_valid_function_name(&name[..64]) {
            // AWS: a name that is only too long is an InvalidParameterValueException.
            return Err(ApiError::invalid(format!(
                "1 validation error detected: Value '{name}' at 'functionName' failed to satisfy constraint: Member must have length less than or equal to 64"
            )));
        }
        if !nimbus_model::arn::is_valid_function_name(&name) {
            return Err(ApiError::validation(
                &name,
                "functionName",
                "Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?",
            ));
        }
        if self.package_type.as_deref().is_some_and(|p| p != "Zip") {
            return Err(ApiError::invalid("Nimbus runs Zip packages only"));
        }
        validate::role(&self.role)?;
        let runtime = validate::runtime(&required(self.runtime, "runtime")?)?;
        let handler = required(self.handler, "handler")?;
        validate::handler(&handler)?;
        let description = self.description.unwrap_or_default();
        validate::description(&description)?;
        let environment = self.environment.and_then(|e| e.variables).unwrap_or_default();
        validate::environment(&environment)?;
        if self.code.image_uri.is_some() {
            return Err(ApiError::invalid("Nimbus accepts code as ZipFile or from S3 only"));
        }
        let tags = self.tags.unwrap_or_default();
        if tags.len() > nimbus_control::MAX_TAGS {
            return Err(ApiError::invalid("Number of tags exceeds resource tag limit."));
        }
        let architectures = self.architectures.unwrap_or_default();
        if architectures.iter().any(|a| a != "x86_64" && a != "arm64") || architectures.len() > 1 {
            return Err(ApiError::validation(
                &format!("{architectures:?}"),
                "architectures",
                "Member must have length less than or equal to 1, Member must satisfy enum value set: [x86_64, arm64]",
            ));
        }
        let function = NewFunction {
            name,
            runtime,
            role: self.role,
            handler,
            description,
            timeout_secs: validate::timeout(self.timeout.unwrap_or(3))?,
            memory_mb: validate::memory(self.memory_size.unwrap_or(128))?,
            ephemeral_storage_mb: validate::ephemeral_storage(self.ephemeral_storage.map(|e| e.size).unwrap_or(512))?,
            environment,
            architectures,
            layers: self.layers.unwrap_or_default(),
            dead_letter_target: dead_letter(self.dead_letter_config)?.filter(|a| !a.is_empty()),
            kms_key_arn: self.kms_key_arn.filter(|a| !a.is_empty()),
            vpc: None,
            tracing_active: tracing(self.tracing_config)?.unwrap_or(false),
            logging: match self.logging_config {
                Some(l) => LoggingConfig::default().apply((*l).into())?,
                None => LoggingConfig::default(),
            },
            tags,
            code_signing_config_id: self
                .code_signing_config_arn
                .as_deref()
                .filter(|a| !a.is_empty())
                .map(|a| code_signing::parse_arn(a, "codeSigningConfigArn"))
                .transpose()?,
            zip: Vec::new(),
        };
        Ok((function, self.code.into_package("code.")?))
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateFunctionCodeInput {
    function_name: String,
    zip_file: Option<String>,
    #[serde(rename = "S3Bucket")]
    s3_bucket: Option<String>,
    #[serde(rename = "S3Key")]
    s3_key: Option<String>,
    #[serde(rename = "S3ObjectVersion")]
    s3_object_version: Option<String>,
    image_uri: Option<String>,
    publish: Option<bool>,
    revision_id: Option<String>,
}

/// What UpdateFunctionCode asks for, checked.
pub struct CodeUpdate {
    pub function: FunctionRef,
    pub package: Package,
    pub revision_id: Option<String>,
    pub publish: bool,
}

impl UpdateFunctionCodeInput {
    pub fn into_update(self, partition: &Partition) -> Result<CodeUpdate, ApiError> {
        let function = FunctionRef::parse(&self.function_name, partition)?;
        if self.image_uri.is_some() {
            return Err(ApiError::invalid("Nimbus accepts code as ZipFile or from S3 only"));
        }
        let members = CodeMembers {
            zip_file: self.zip_file,
            s3_bucket: self.s3_bucket,
            s3_key: self.s3_key,
            s3_object_version: self.s3_object_version,
        };
        let package = members.into_package("", decode_zip)?;
        Ok(CodeUpdate { function, package, revision_id: self.revision_id, publish: self.publish == Some(true) })
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateFunctionConfigurationInput {
    function_name: String,
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
    #[serde(rename = "KMSKeyArn")]
    kms_key_arn: Option<String>,
    tracing_config: Option<TracingInput>,
    logging_config: Option<Box<LoggingInput>>,
    /// Checked against the network objects by [`super::vpc`].
    pub(crate) vpc_config: Option<super::vpc::VpcConfigInput>,
}

impl UpdateFunctionConfigurationInput {
    pub fn into_change(self, partition: &Partition) -> Result<(FunctionRef, ConfigChange), ApiError> {
        let function = FunctionRef::parse(&self.function_name, partition)?;
        let environment = match self.environment {
            Some(e) => {
                let vars = e.variables.unwrap_or_default();
                validate::environment(&vars)?;
                Some(vars)
            }
            None => None,
        };
        if let Some(h) = &self.handler {
            validate::handler(h)?;
        }
        if let Some(d) = &self.description {
            validate::description(d)?;
        }
        if let Some(r) = &self.role {
            validate::role(r)?;
        }
        let change = ConfigChange {
            runtime: self.runtime.as_deref().map(validate::runtime).transpose()?,
            role: self.role,
            handler: self.handler,
            description: self.description,
            timeout_secs: self.timeout.map(validate::timeout).transpose()?,
            memory_mb: self.memory_size.map(validate::memory).transpose()?,
            ephemeral_storage_mb: self.ephemeral_storage.map(|e| validate::ephemeral_storage(e.size)).transpose()?,
            environment,
            layers: self.layers,
            dead_letter_target: dead_letter(self.dead_letter_config)?,
            kms_key_arn: self.kms_key_arn,
            vpc: None,
            tracing_active: tracing(self.tracing_config)?,
            logging: self.logging_config.map(|l| (*l).into()),
            revision_id: self.revision_id,
        };
        Ok((function, change))
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PublishVersionInput {
    function_name: String,
    pub code_sha256: Option<String>,
    pub description: Option<String>,
    pub revision_id: Option<String>,
}

impl PublishVersionInput {
    pub fn function(&self, partition: &Partition) -> Result<FunctionRef, ApiError> {
        if let Some(d) = &self.description {
            validate::description(d)?;
        }
        FunctionRef::parse(&self.function_name, partition)
    }
}

/// DeadLetterConfig.TargetArn must name a queue or a topic; empty clears it.
/// TracingConfig's mode: `Some(true)` for `Active`, `Some(false)` for `PassThrough`, `None`
/// when not given.
fn tracing(input: Option<TracingInput>) -> Result<Option<bool>, ApiError> {
    match input.and_then(|t| t.mode).as_deref() {
        None => Ok(None),
        Some("Active") => Ok(Some(true)),
        Some("PassThrough") => Ok(Some(false)),
        Some(other) => Err(ApiError::validation(other, "tracingConfig.mode", "Member must satisfy enum value set: [Active, PassThrough]")),
    }
}

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

fn required<T>(v: Option<T>, field: &str) -> Result<T, ApiError> {
    v.ok_or_else(|| ApiError::missing(field))
}

/// A `ZipFile`, decoded, within the limit of a package uploaded in the request (packages
/// read from S3 have none of their own: only their unzipped size is bounded).
fn decode_zip(b64: &str) -> Result<Vec<u8>, ApiError> {
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

// ---- aliases ---------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RoutingInput {
    additional_version_weights: Option<BTreeMap<String, f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateAliasInput {
    function_name: String,
    pub name: String,
    pub function_version: String,
    description: Option<String>,
    routing_config: Option<RoutingInput>,
}

impl CreateAliasInput {
    /// (function, description, weights), checked.
    pub fn checked(&mut self, partition: &Partition) -> Result<(FunctionRef, String, BTreeMap<String, f64>), ApiError> {
        let function = FunctionRef::parse(&self.function_name, partition)?;
        let description = self.description.take().unwrap_or_default();
        validate::description(&description)?;
        let weights = self.routing_config.take().and_then(|r| r.additional_version_weights).unwrap_or_default();
        Ok((function, description, weights))
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AliasInput {
    function_name: String,
    pub name: String,
}

impl AliasInput {
    pub fn function(&self, partition: &Partition) -> Result<FunctionRef, ApiError> {
        FunctionRef::parse(&self.function_name, partition)
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateAliasInput {
    function_name: String,
    pub name: String,
    function_version: Option<String>,
    description: Option<String>,
    routing_config: Option<RoutingInput>,
    revision_id: Option<String>,
}

impl UpdateAliasInput {
    pub fn into_change(self, partition: &Partition) -> Result<(FunctionRef, String, AliasChange), ApiError> {
        let function = FunctionRef::parse(&self.function_name, partition)?;
        if let Some(d) = &self.description {
            validate::description(d)?;
        }
        let change = AliasChange {
            function_version: self.function_version,
            description: self.description,
            routing: self.routing_config.map(|r| r.additional_version_weights.unwrap_or_default()),
            revision_id: self.revision_id,
        };
        Ok((function, self.name, change))
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListAliasesInput {
    function_name: String,
    function_version: Option<String>,
    #[serde(flatten)]
    pub page: Page,
}

impl ListAliasesInput {
    pub fn function(&self, partition: &Partition) -> Result<FunctionRef, ApiError> {
        FunctionRef::parse(&self.function_name, partition)
    }

    pub fn function_version(&self) -> Option<&str> {
        self.function_version.as_deref().filter(|v| !v.is_empty())
    }
}

// ---- concurrency -----------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutFunctionConcurrencyInput {
    function_name: String,
    reserved_concurrent_executions: i64,
}

impl PutFunctionConcurrencyInput {
    pub fn checked(&self, partition: &Partition) -> Result<(FunctionRef, u32), ApiError> {
        let function = FunctionRef::parse(&self.function_name, partition)?;
        Ok((function, at_least(self.reserved_concurrent_executions, 0, "reservedConcurrentExecutions")?))
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutProvisionedConcurrencyConfigInput {
    function_name: String,
    qualifier: String,
    provisioned_concurrent_executions: i64,
}

impl PutProvisionedConcurrencyConfigInput {
    pub fn checked(&self, partition: &Partition) -> Result<(FunctionRef, u32), ApiError> {
        let function = function_ref(&self.function_name, Some(&self.qualifier), partition)?;
        Ok((function, at_least(self.provisioned_concurrent_executions, 1, "provisionedConcurrentExecutions")?))
    }
}

/// An integer member that must be at least `min`, with AWS's message.
fn at_least(n: i64, min: i64, field: &str) -> Result<u32, ApiError> {
    if n < min {
        return Err(ApiError::validation(&n.to_string(), field, &format!("Member must have value greater than or equal to {min}")));
    }
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

// ---- layers ----------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PublishLayerVersionInput {
    layer_name: String,
    description: Option<String>,
    content: CodeInput,
    compatible_runtimes: Option<Vec<String>>,
    compatible_architectures: Option<Vec<String>>,
    license_info: Option<String>,
}

impl PublishLayerVersionInput {
    /// The layer version to publish, its `zip` left empty, and where its zip comes from.
    pub fn into_new_version(self) -> Result<(NewLayerVersion, Package), ApiError> {
        let name = self.layer_name;
        if !nimbus_model::layer::is_valid_layer_name(&name) {
            return Err(ApiError::validation(&name, "layerName", "Member must satisfy regular expression pattern: [a-zA-Z0-9-_]+"));
        }
        let description = self.description.unwrap_or_default();
        validate::description(&description)?;
        let runtimes = self.compatible_runtimes.unwrap_or_default();
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
        let architectures = self.compatible_architectures.unwrap_or_default();
        if architectures.len() > 2 || architectures.iter().any(|a| a != "x86_64" && a != "arm64") {
            return Err(ApiError::validation(
                &format!("{architectures:?}"),
                "compatibleArchitectures",
                "Member must satisfy enum value set: [x86_64, arm64]",
            ));
        }
        if self.license_info.as_deref().is_some_and(|l| l.len() > 512) {
            return Err(ApiError::validation("…", "licenseInfo", "Member must have length less than or equal to 512"));
        }
        let version = NewLayerVersion {
            name,
            description,
            compatible_runtimes: runtimes,
            compatible_architectures: architectures,
            license_info: self.license_info,
            zip: Vec::new(),
        };
        Ok((version, self.content.into_package("content.")?))
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LayerVersionInput {
    pub layer_name: String,
    version_number: i64,
}

impl LayerVersionInput {
    pub fn version(&self) -> Result<u64, ApiError> {
        layer_version(self.version_number)
    }
}

fn layer_version(v: i64) -> Result<u64, ApiError> {
    match u64::try_from(v) {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(ApiError::invalid("Layer Version Cannot be less than 1")),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetLayerVersionByArnInput {
    pub arn: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListLayersInput {
    /// ListLayerVersions only.
    pub layer_name: Option<String>,
    compatible_runtime: Option<String>,
    compatible_architecture: Option<String>,
    #[serde(flatten)]
    pub page: Page,
}

impl ListLayersInput {
    pub fn runtime(&self) -> Option<&str> {
        self.compatible_runtime.as_deref().filter(|v| !v.is_empty())
    }

    pub fn architecture(&self) -> Option<&str> {
        self.compatible_architecture.as_deref().filter(|v| !v.is_empty())
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AddLayerVersionPermissionInput {
    pub layer_name: String,
    version_number: i64,
    statement_id: String,
    action: String,
    principal: String,
    organization_id: Option<String>,
    revision_id: Option<String>,
}

impl AddLayerVersionPermissionInput {
    /// (version, statement, revision id), checked as AWS checks them.
    pub fn checked(self) -> Result<(u64, LayerStatement, Option<String>), ApiError> {
        let sid = self.statement_id;
        if sid.is_empty() || sid.len() > 100 || !sid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(ApiError::validation(&sid, "statementId", "Member must satisfy regular expression pattern: ([a-zA-Z0-9-_]+)"));
        }
        if self.action != "lambda:GetLayerVersion" {
            return Err(ApiError::validation(
                &self.action,
                "action",
                "Member must satisfy regular expression pattern: lambda:GetLayerVersion",
            ));
        }
        let principal = self.principal;
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
        let statement = LayerStatement { sid, action: self.action, principal, organization_id: self.organization_id };
        Ok((layer_version(self.version_number)?, statement, self.revision_id.filter(|r| !r.is_empty())))
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RemoveLayerVersionPermissionInput {
    pub layer_name: String,
    version_number: i64,
    pub statement_id: String,
    revision_id: Option<String>,
}

impl RemoveLayerVersionPermissionInput {
    pub fn version(&self) -> Result<u64, ApiError> {
        layer_version(self.version_number)
    }

    pub fn revision_id(&self) -> Option<&str> {
        self.revision_id.as_deref().filter(|r| !r.is_empty())
    }
}

/// PutResourcePolicy's document as AddPermission statements. Nimbus keeps a function's
/// policy in that form, so a statement it cannot hold (a Deny, several actions or
/// principals, other conditions) is refused rather than stored differently.
pub fn policy_statements(document: &str) -> Result<Vec<nimbus_model::function::PermissionStatement>, ApiError> {
    use serde_json::Value;
    let doc: Value = serde_json::from_str(document).map_err(|_| ApiError::invalid("The policy is not a valid JSON document."))?;
    let unsupported =
        |what: &str| ApiError::invalid(format!("Nimbus keeps function policies in AddPermission's form and cannot store {what}."));
    let statements = match doc.get("Statement") {
        Some(Value::Array(list)) => list.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => return Err(ApiError::invalid("The policy must have a Statement.")),
    };
    let mut out = Vec::new();
    for st in &statements {
        let text = |key: &str| st.get(key).and_then(Value::as_str).map(String::from);
        let sid = text("Sid").filter(|s| !s.is_empty()).ok_or_else(|| unsupported("a statement without a Sid"))?;
        if text("Effect").as_deref() != Some("Allow") {
            return Err(unsupported("a statement whose Effect is not Allow"));
        }
        let action = text("Action").ok_or_else(|| unsupported("a statement without exactly one Action"))?;
        let principal = match st.get("Principal") {
            Some(Value::String(p)) if p == "*" => p.clone(),
            Some(Value::Object(m)) if m.len() == 1 => match m.iter().next() {
                Some((k, Value::String(v))) if k == "AWS" || k == "Service" => v.clone(),
                _ => return Err(unsupported("a statement without exactly one principal")),
            },
            _ => return Err(unsupported("a statement without exactly one principal")),
        };
        let mut statement = nimbus_model::function::PermissionStatement {
            sid,
            action,
            principal,
            source_arn: None,
            source_account: None,
            principal_org_id: None,
            event_source_token: None,
            function_url_auth_type: None,
        };
        if let Some(conditions) = st.get("Condition").and_then(Value::as_object) {
            for (operator, keys) in conditions {
                for (key, value) in keys.as_object().into_iter().flatten() {
                    let value = value.as_str().map(String::from);
                    let slot = match (operator.as_str(), key.as_str()) {
                        ("ArnLike", "AWS:SourceArn") => &mut statement.source_arn,
                        ("StringEquals", "AWS:SourceAccount") => &mut statement.source_account,
                        ("StringEquals", "aws:PrincipalOrgID") => &mut statement.principal_org_id,
                        ("StringEquals", "lambda:EventSourceToken") => &mut statement.event_source_token,
                        ("StringEquals", "lambda:FunctionUrlAuthType") => &mut statement.function_url_auth_type,
                        _ => return Err(unsupported(&format!("the condition {operator} {key}"))),
                    };
                    *slot = Some(value.ok_or_else(|| unsupported(&format!("a non-string condition value for {key}")))?);
                }
            }
        }
        out.push(statement);
    }
    Ok(out)
}

// ---- invocation ------------------------------------------------------------------------

/// AWS's limit on the base64 `X-Amz-Client-Context` header.
const MAX_CLIENT_CONTEXT: usize = 3583;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InvokeInput {
    function_name: String,
    qualifier: Option<String>,
    invocation_type: Option<String>,
    log_type: Option<String>,
    client_context: Option<String>,
    /// The event, as sent (the body).
    #[serde(skip)]
    pub payload: Bytes,
    /// The caller's trace context (`traceparent` or `X-Amzn-Trace-Id`), set by the edge.
    #[serde(skip)]
    pub trace: Option<nimbus_model::trace::Parent>,
}

/// What an Invoke asks for, checked.
pub enum Invocation {
    Sync(nimbus_model::InvokeRequest),
    Async { function: FunctionRef, payload: Bytes, trace: nimbus_model::trace::TraceContext },
    DryRun(FunctionRef),
}

/// What an InvokeWithResponseStream asks for, checked.
pub enum StreamInvocation {
    Run(nimbus_model::InvokeRequest),
    DryRun(FunctionRef),
}

fn unparsable_payload() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidRequestContent,
        "Could not parse request body into json: Could not parse payload into json: Unexpected character",
    )
}

impl InvokeInput {
    /// InvokeWithResponseStream's invocation: RequestResponse or DryRun only.
    pub fn into_stream_invocation(self, partition: &Partition) -> Result<StreamInvocation, ApiError> {
        let bad =
            |other: &str| ApiError::validation(other, "invocationType", "Member must satisfy enum value set: [RequestResponse, DryRun]");
        if let Some(other) = self.invocation_type.as_deref().filter(|t| !matches!(*t, "RequestResponse" | "DryRun")) {
            return Err(bad(other));
        }
        match self.into_invocation(partition)? {
            Invocation::Sync(req) => Ok(StreamInvocation::Run(req)),
            Invocation::DryRun(f) => Ok(StreamInvocation::DryRun(f)),
            Invocation::Async { .. } => Err(bad("Event")),
        }
    }

    /// The function's name when this is a synchronous invoke (None for the other types, or
    /// a name that does not parse: the invoke answers that itself).
    pub(crate) fn sync_function(&self, partition: &Partition) -> Option<String> {
        if !matches!(self.invocation_type.as_deref(), None | Some("RequestResponse")) {
            return None;
        }
        function_ref(&self.function_name, self.qualifier.as_deref(), partition).ok().map(|f| f.name)
    }

    pub fn into_invocation(self, partition: &Partition) -> Result<Invocation, ApiError> {
        let function = function_ref(&self.function_name, self.qualifier.as_deref(), partition)?;
        let payload = if self.payload.is_empty() { Bytes::from_static(b"{}") } else { self.payload };
        let trace = nimbus_model::trace::TraceContext { parent: self.trace, trigger: nimbus_model::trace::Trigger::Other };
        match self.invocation_type.as_deref().unwrap_or("RequestResponse") {
            "RequestResponse" => {}
            "DryRun" => return Ok(Invocation::DryRun(function)),
            "Event" => {
                if payload.len() <= nimbus_model::invoke::async_limits::MAX_PAYLOAD
                    && serde_json::from_slice::<serde::de::IgnoredAny>(&payload).is_err()
                {
                    return Err(unparsable_payload());
                }
                return Ok(Invocation::Async { function, payload, trace });
            }
            other => {
                return Err(ApiError::validation(
                    other,
                    "invocationType",
                    "Member must satisfy enum value set: [Event, RequestResponse, DryRun]",
                ))
            }
        }
        if payload.len() > MAX_SYNC_PAYLOAD {
            return Err(ApiError::new(
                ErrorCode::RequestTooLarge,
                format!("Request must be smaller than {MAX_SYNC_PAYLOAD} bytes for the InvokeFunction operation"),
            ));
        }
        if serde_json::from_slice::<serde::de::IgnoredAny>(&payload).is_err() {
            return Err(unparsable_payload());
        }
        let tail_log = match self.log_type.as_deref() {
            None | Some("None") => false,
            Some("Tail") => true,
            Some(other) => return Err(ApiError::validation(other, "logType", "Member must satisfy enum value set: [None, Tail]")),
        };
        let client_context = match self.client_context.as_deref() {
            None | Some("") => None,
            Some(b64) => Some(client_context(b64)?),
        };
        Ok(Invocation::Sync(nimbus_model::InvokeRequest { function, payload, tail_log, client_context, request_id: None, trace }))
    }
}

/// `X-Amz-Client-Context`: base64 of a JSON object, decoded.
fn client_context(b64: &str) -> Result<String, ApiError> {
    let bad = || ApiError::new(ErrorCode::InvalidRequestContent, "Client context must be a valid Base64-encoded JSON object.");
    if b64.len() > MAX_CLIENT_CONTEXT {
        return Err(ApiError::invalid(format!("Client context must be smaller than {MAX_CLIENT_CONTEXT} bytes")));
    }
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|_| bad())?;
    let value: serde_json::Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    if !value.is_object() {
        return Err(bad());
    }
    String::from_utf8(raw).map_err(|_| bad())
}

/// The deprecated InvokeAsync: an asynchronous invocation of the unqualified function.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InvokeAsyncInput {
    function_name: String,
    #[serde(skip)]
    pub invoke_args: Bytes,
}

impl InvokeAsyncInput {
    pub fn into_invocation(self, partition: &Partition) -> Result<(FunctionRef, Bytes), ApiError> {
        let function = FunctionRef::parse(&self.function_name, partition)?;
        if serde_json::from_slice::<serde::de::IgnoredAny>(&self.invoke_args).is_err() {
            return Err(unparsable_payload());
        }
        Ok((function, self.invoke_args))
    }
}

// ---- event-source mappings -------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScalingInput {
    maximum_concurrency: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FilterInput {
    pattern: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FilterCriteriaInput {
    filters: Option<Vec<FilterInput>>,
}

/// CreateEventSourceMapping's and UpdateEventSourceMapping's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MappingInput {
    /// UpdateEventSourceMapping only.
    #[serde(rename = "UUID")]
    pub uuid: Option<String>,
    event_source_arn: Option<String>,
    function_name: Option<String>,
    enabled: Option<bool>,
    batch_size: Option<i64>,
    maximum_batching_window_in_seconds: Option<i64>,
    function_response_types: Option<Vec<String>>,
    scaling_config: Option<ScalingInput>,
    filter_criteria: Option<FilterCriteriaInput>,
    // Stream sources only.
    starting_position: Option<String>,
    starting_position_timestamp: Option<f64>,
    maximum_retry_attempts: Option<i64>,
    maximum_record_age_in_seconds: Option<i64>,
    bisect_batch_on_function_error: Option<bool>,
    destination_config: Option<MappingDestinationInput>,
    parallelization_factor: Option<i64>,
    tumbling_window_in_seconds: Option<i64>,
    /// CreateEventSourceMapping only.
    tags: Option<BTreeMap<String, String>>,
}

/// A mapping's DestinationConfig (OnFailure only applies to stream sources).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MappingDestinationInput {
    on_failure: Option<MappingTargetInput>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MappingTargetInput {
    destination: Option<String>,
}

impl MappingInput {
    /// The stream-only members, range-checked as AWS's model has them.
    fn stream(&self) -> Result<nimbus_triggers::StreamOptions, ApiError> {
        let int = |v: Option<i64>, member: &str, min: i64, max: i64| -> Result<Option<i64>, ApiError> {
            match v {
                Some(n) if n < min => {
                    Err(ApiError::validation(&n.to_string(), member, &format!("Member must have value greater than or equal to {min}")))
                }
                Some(n) if n > max => {
                    Err(ApiError::validation(&n.to_string(), member, &format!("Member must have value less than or equal to {max}")))
                }
                v => Ok(v),
            }
        };
        Ok(nimbus_triggers::StreamOptions {
            starting_position: self.starting_position.clone(),
            starting_position_timestamp: self.starting_position_timestamp,
            maximum_retry_attempts: int(self.maximum_retry_attempts, "maximumRetryAttempts", -1, 10_000)?.map(|n| n as i32),
            maximum_record_age_secs: int(self.maximum_record_age_in_seconds, "maximumRecordAgeInSeconds", -1, 604_800)?.map(|n| n as i32),
            bisect_on_error: self.bisect_batch_on_function_error,
            on_failure: self.destination_config.as_ref().map(|d| d.on_failure.as_ref().and_then(|o| o.destination.clone())),
            parallelization_factor: int(self.parallelization_factor, "parallelizationFactor", 1, 10)?.map(|n| n as u32),
            tumbling_window_secs: int(self.tumbling_window_in_seconds, "tumblingWindowInSeconds", 0, 900)?.map(|n| n as u32),
        })
    }

    pub fn into_new(self, partition: &Partition) -> Result<NewMapping, ApiError> {
        let function = FunctionRef::parse(&required(self.function_name.clone(), "functionName")?, partition)?;
        // AWS: "Unrecognized event source." (test_lambda_api.snapshot.json,
        // test_event_source_mapping_exceptions, create_no_event_source_arn).
        let source = self.event_source_arn.clone().ok_or_else(|| ApiError::invalid("Unrecognized event source."))?;
        Ok(NewMapping {
            event_source_arn: source,
            function,
            enabled: self.enabled.unwrap_or(true),
            batch_size: self.batch_size()?,
            window_secs: self.window()?,
            report_batch_item_failures: self.report_failures()?.unwrap_or(false),
            maximum_concurrency: self.concurrency(),
            filters: self.filters().unwrap_or_default(),
            stream: self.stream()?,
            tags: match self.tags {
                Some(t) if t.len() > nimbus_control::MAX_TAGS => {
                    return Err(ApiError::invalid("Number of tags exceeds resource tag limit."))
                }
                t => t.unwrap_or_default(),
            },
        })
    }

    pub fn into_change(self, partition: &Partition) -> Result<MappingChange, ApiError> {
        let function = match &self.function_name {
            Some(f) => Some(FunctionRef::parse(f, partition)?),
            None => None,
        };
        Ok(MappingChange {
            function,
            enabled: self.enabled,
            batch_size: self.batch_size()?,
            window_secs: self.window()?,
            report_batch_item_failures: self.report_failures()?,
            maximum_concurrency: self.scaling_config.as_ref().map(|_| self.concurrency()),
            filters: self.filters(),
            stream: self.stream()?,
        })
    }

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

    /// FilterCriteria.Filters[].Pattern (each a JSON string; a filter without one is empty).
    fn filters(&self) -> Option<Vec<String>> {
        let criteria = self.filter_criteria.as_ref()?;
        Some(criteria.filters.iter().flatten().map(|f| f.pattern.clone().unwrap_or_default()).collect())
    }

    fn concurrency(&self) -> Option<u32> {
        self.scaling_config.as_ref().and_then(|s| s.maximum_concurrency).map(|n| u32::try_from(n).unwrap_or(0))
    }
}

#[derive(Debug, Deserialize)]
pub struct MappingIdInput {
    #[serde(rename = "UUID")]
    pub uuid: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListEventSourceMappingsInput {
    event_source_arn: Option<String>,
    function_name: Option<String>,
    #[serde(flatten)]
    pub page: Page,
}

impl ListEventSourceMappingsInput {
    pub fn source(&self) -> Option<&str> {
        self.event_source_arn.as_deref().filter(|v| !v.is_empty())
    }

    /// The function filter, by name.
    pub fn function(&self, partition: &Partition) -> Result<Option<String>, ApiError> {
        match self.function_name.as_deref().filter(|v| !v.is_empty()) {
            Some(f) => Ok(Some(FunctionRef::parse(f, partition)?.name)),
            None => Ok(None),
        }
    }
}

// ---- function URLs ---------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CorsInput {
    allow_credentials: Option<bool>,
    allow_headers: Option<Vec<String>>,
    allow_methods: Option<Vec<String>>,
    allow_origins: Option<Vec<String>>,
    expose_headers: Option<Vec<String>>,
    max_age: Option<i64>,
}

impl From<CorsInput> for Cors {
    fn from(c: CorsInput) -> Cors {
        Cors {
            allow_credentials: c.allow_credentials.unwrap_or(false),
            allow_headers: c.allow_headers.unwrap_or_default(),
            allow_methods: c.allow_methods.unwrap_or_default(),
            allow_origins: c.allow_origins.unwrap_or_default(),
            expose_headers: c.expose_headers.unwrap_or_default(),
            max_age: c.max_age.map(|n| u32::try_from(n).unwrap_or(0)),
        }
    }
}

/// CreateFunctionUrlConfig's and UpdateFunctionUrlConfig's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UrlConfigInput {
    function_name: String,
    qualifier: Option<String>,
    auth_type: Option<String>,
    cors: Option<CorsInput>,
    invoke_mode: Option<String>,
}

/// A new function URL, checked.
pub struct NewUrl {
    pub function: FunctionRef,
    pub auth_type: AuthType,
    pub cors: Option<Cors>,
    pub invoke_mode: Option<String>,
}

impl UrlConfigInput {
    pub fn into_new(self, partition: &Partition) -> Result<NewUrl, ApiError> {
        let function = function_ref(&self.function_name, self.qualifier.as_deref(), partition)?;
        let auth_type = auth_type(&required(self.auth_type, "authType")?)?;
        Ok(NewUrl { function, auth_type, cors: self.cors.map(Cors::from), invoke_mode: self.invoke_mode })
    }

    pub fn into_change(self, partition: &Partition) -> Result<(FunctionRef, UrlChange), ApiError> {
        let function = function_ref(&self.function_name, self.qualifier.as_deref(), partition)?;
        let change = UrlChange {
            auth_type: self.auth_type.as_deref().map(auth_type).transpose()?,
            cors: self.cors.map(|c| Some(Cors::from(c))),
            invoke_mode: self.invoke_mode,
        };
        Ok((function, change))
    }
}

fn auth_type(s: &str) -> Result<AuthType, ApiError> {
    match s {
        "NONE" => Ok(AuthType::None),
        "AWS_IAM" => Ok(AuthType::AwsIam),
        other => Err(ApiError::validation(other, "authType", "Member must satisfy enum value set: [NONE, AWS_IAM]")),
    }
}

// ---- asynchronous invocation configs ---------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DestinationInput {
    destination: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DestinationConfigInput {
    on_success: Option<DestinationInput>,
    on_failure: Option<DestinationInput>,
}

/// PutFunctionEventInvokeConfig's and UpdateFunctionEventInvokeConfig's input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EventInvokeConfigInput {
    function_name: String,
    qualifier: Option<String>,
    maximum_retry_attempts: Option<i64>,
    maximum_event_age_in_seconds: Option<i64>,
    destination_config: Option<DestinationConfigInput>,
}

impl EventInvokeConfigInput {
    pub fn into_change(self, partition: &Partition) -> Result<(FunctionRef, EventInvokeChange), ApiError> {
        let function = function_ref(&self.function_name, self.qualifier.as_deref(), partition)?;
        let uint = |v: Option<i64>, field: &str| -> Result<Option<u32>, ApiError> {
            match v {
                None => Ok(None),
                Some(n) if n >= 0 => Ok(Some(n.min(i64::from(u32::MAX)) as u32)),
                Some(n) => Err(ApiError::validation(&n.to_string(), field, "Member must have value greater than or equal to 0")),
            }
        };
        let destination = |d: Option<DestinationInput>| d.map(|d| d.destination.filter(|s| !s.is_empty()));
        let (on_success, on_failure) = match self.destination_config {
            Some(d) => (destination(d.on_success), destination(d.on_failure)),
            None => (None, None),
        };
        let change = EventInvokeChange {
            maximum_retry_attempts: uint(self.maximum_retry_attempts, "maximumRetryAttempts")?,
            maximum_event_age_secs: uint(self.maximum_event_age_in_seconds, "maximumEventAgeInSeconds")?,
            on_success,
            on_failure,
        };
        Ok((function, change))
    }
}

// ---- tags ------------------------------------------------------------------------------

/// A taggable resource by ARN (ListTags).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourceInput {
    resource: String,
}

impl ResourceInput {
    pub fn target(&self, partition: &Partition) -> Result<Tagged, ApiError> {
        tagged(&self.resource, partition)
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagResourceInput {
    resource: String,
    pub tags: BTreeMap<String, String>,
}

impl TagResourceInput {
    pub fn target(&self, partition: &Partition) -> Result<Tagged, ApiError> {
        let target = tagged(&self.resource, partition)?;
        if self.tags.is_empty() {
            return Err(ApiError::invalid("An error occurred and the request cannot be processed."));
        }
        Ok(target)
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UntagResourceInput {
    resource: String,
    pub tag_keys: Vec<String>,
}

impl UntagResourceInput {
    pub fn target(&self, partition: &Partition) -> Result<Tagged, ApiError> {
        tagged(&self.resource, partition)
    }
}

/// AWS's pattern for a taggable Lambda resource, as its validation message prints it.
const TAGGABLE_PATTERN: &str = "Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*):lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:\\d{12}:(function:[a-zA-Z0-9-_]+(:(\\$LATEST|[a-zA-Z0-9-_]+))?|layer:([a-zA-Z0-9-_]+)|code-signing-config:csc-[a-z0-9]{17}|event-source-mapping:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|capacity-provider:[a-zA-Z0-9-_]+)";

/// What a tag operation names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tagged {
    /// A function, by name.
    Function(String),
    /// An event source mapping, by UUID.
    Mapping(String),
}

/// The resource a tag operation names: an unqualified function ARN (a qualified one is
/// refused as AWS refuses it) or an event source mapping's ARN; other taggable resources
/// are not served yet.
fn tagged(resource: &str, partition: &Partition) -> Result<Tagged, ApiError> {
    let parts: Vec<&str> = resource.split(':').collect();
    let name_ok = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let shaped = parts.len() >= 7
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "lambda"
        && parts[3].split('-').count() >= 3
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && matches!(parts[5], "function" | "layer" | "code-signing-config" | "event-source-mapping" | "capacity-provider")
        && name_ok(parts[6])
        && parts.len() <= 8;
    if !shaped {
        return Err(ApiError::validation(resource, "resource", TAGGABLE_PATTERN));
    }
    match parts[5] {
        "function" if parts.len() == 8 => {
            Err(ApiError::invalid("Tags on function aliases and versions are not supported. Please specify a function ARN."))
        }
        "function" => Ok(Tagged::Function(FunctionRef::parse(resource, partition)?.name)),
        "event-source-mapping" if parts.len() == 7 && uuid::Uuid::parse_str(parts[6]).is_ok() => Ok(Tagged::Mapping(parts[6].to_string())),
        "event-source-mapping" => Err(ApiError::validation(resource, "resource", TAGGABLE_PATTERN)),
        other => Err(ApiError::invalid(format!("Nimbus keeps tags on functions and event source mappings only, not on {other}"))),
    }
}

// ---- resource-based policies -----------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AddPermissionInput {
    function_name: String,
    statement_id: String,
    action: String,
    principal: String,
    source_arn: Option<String>,
    source_account: Option<String>,
    event_source_token: Option<String>,
    qualifier: Option<String>,
    revision_id: Option<String>,
    #[serde(rename = "PrincipalOrgID")]
    principal_org_id: Option<String>,
    function_url_auth_type: Option<String>,
}

/// What a permission change names: the function, its qualifier (if any) and the policy
/// revision the caller expects.
pub struct PolicyTarget {
    pub function: FunctionRef,
    pub revision_id: Option<String>,
}

impl PolicyTarget {
    pub fn qualifier(&self) -> Option<&str> {
        self.function.qualifier.as_ref().map(|q| q.as_str())
    }
}

impl AddPermissionInput {
    /// The target and the statement, checked against AWS's patterns.
    pub fn checked(self, partition: &Partition) -> Result<(PolicyTarget, nimbus_model::function::PermissionStatement), ApiError> {
        let function = function_ref(&self.function_name, self.qualifier.as_deref(), partition)?;
        let sid_ok = |s: &str| !s.is_empty() && s.len() <= 100 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !sid_ok(&self.statement_id) {
            return Err(ApiError::validation(
                &self.statement_id,
                "statementId",
                "Member must satisfy regular expression pattern: ([a-zA-Z0-9-_]+)",
            ));
        }
        let action_ok = self.action == "*"
            || self
                .action
                .strip_prefix("lambda:")
                .is_some_and(|a| a == "*" || (!a.is_empty() && a.bytes().all(|b| b.is_ascii_alphabetic())));
        if !action_ok {
            return Err(ApiError::validation(
                &self.action,
                "action",
                "Member must satisfy regular expression pattern: (lambda:[*]|lambda:[a-zA-Z]+|[*])",
            ));
        }
        if self.principal.is_empty() || self.principal.chars().any(char::is_whitespace) {
            return Err(ApiError::validation(&self.principal, "principal", "Member must satisfy regular expression pattern: [^\\s]+"));
        }
        if let Some(a) = &self.source_account {
            if a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ApiError::validation(a, "sourceAccount", "Member must satisfy regular expression pattern: \\d{12}"));
            }
        }
        let statement = nimbus_model::function::PermissionStatement {
            sid: self.statement_id,
            action: self.action,
            principal: self.principal,
            source_arn: self.source_arn,
            source_account: self.source_account,
            principal_org_id: self.principal_org_id,
            event_source_token: self.event_source_token,
            function_url_auth_type: self.function_url_auth_type,
        };
        Ok((PolicyTarget { function, revision_id: self.revision_id.filter(|r| !r.is_empty()) }, statement))
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RemovePermissionInput {
    function_name: String,
    pub statement_id: String,
    qualifier: Option<String>,
    revision_id: Option<String>,
}

impl RemovePermissionInput {
    pub fn target(&self, partition: &Partition) -> Result<PolicyTarget, ApiError> {
        let function = function_ref(&self.function_name, self.qualifier.as_deref(), partition)?;
        Ok(PolicyTarget { function, revision_id: self.revision_id.clone().filter(|r| !r.is_empty()) })
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RecursionConfigInput {
    function_name: String,
    pub recursive_loop: String,
}

impl RecursionConfigInput {
    pub fn function(&self, partition: &Partition) -> Result<FunctionRef, ApiError> {
        if !matches!(self.recursive_loop.as_str(), "Allow" | "Terminate") {
            return Err(ApiError::validation(
                &self.recursive_loop,
                "recursiveLoop",
                "Member must satisfy enum value set: [Allow, Terminate]",
            ));
        }
        FunctionRef::parse(&self.function_name, partition)
    }
}

/// A list operation with paging members only.
#[derive(Debug, Deserialize)]
pub struct ListInput {
    #[serde(flatten)]
    pub page: Page,
}

// ---- code signing configs --------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AllowedPublishersInput {
    signing_profile_version_arns: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CodeSigningPoliciesInput {
    untrusted_artifact_on_deployment: Option<String>,
}

/// The input of the operations on one code signing config (and of CreateCodeSigningConfig,
/// which names none).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CodeSigningConfigInput {
    code_signing_config_arn: Option<String>,
    description: Option<String>,
    allowed_publishers: Option<AllowedPublishersInput>,
    code_signing_policies: Option<CodeSigningPoliciesInput>,
    #[serde(flatten)]
    pub page: Page,
}

impl CodeSigningConfigInput {
    /// The config's id and the ARN as given (AWS's not-found texts repeat it).
    pub fn config(&self) -> Result<(String, String), ApiError> {
        let arn = self.code_signing_config_arn.clone().unwrap_or_default();
        Ok((code_signing::parse_arn(&arn, "codeSigningConfigArn")?, arn))
    }

    /// CreateCodeSigningConfig's (description, publishers, policy); `Warn` by default.
    pub fn into_new(self) -> Result<(String, Vec<String>, String), ApiError> {
        let change = self.into_change()?;
        let publishers = change.signing_profile_version_arns.ok_or_else(|| ApiError::missing("allowedPublishers"))?;
        Ok((change.description.unwrap_or_default(), publishers, change.untrusted_artifact_on_deployment.unwrap_or_else(|| "Warn".into())))
    }

    /// UpdateCodeSigningConfig's change, checked.
    pub fn into_change(self) -> Result<CodeSigningChange, ApiError> {
        if let Some(d) = &self.description {
            if d.chars().count() > 256 {
                return Err(ApiError::validation(d, "description", "Member must have length less than or equal to 256"));
            }
        }
        let publishers = self.allowed_publishers.map(|p| p.signing_profile_version_arns);
        if let Some(p) = &publishers {
            code_signing::publishers(p)?;
        }
        let policy = self.code_signing_policies.and_then(|p| p.untrusted_artifact_on_deployment);
        Ok(CodeSigningChange {
            description: self.description,
            signing_profile_version_arns: publishers,
            untrusted_artifact_on_deployment: policy.as_deref().map(code_signing::policy).transpose()?,
        })
    }
}

/// Put/Get/DeleteFunctionCodeSigningConfig: a function, unqualified.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FunctionCodeSigningConfigInput {
    function_name: String,
    code_signing_config_arn: Option<String>,
}

impl FunctionCodeSigningConfigInput {
    pub fn function(&self, partition: &Partition) -> Result<FunctionRef, ApiError> {
        FunctionRef::parse(&self.function_name, partition)
    }

    /// PutFunctionCodeSigningConfig's config: (id, ARN as given).
    pub fn config(&self) -> Result<(String, String), ApiError> {
        let arn = self.code_signing_config_arn.clone().ok_or_else(|| ApiError::missing("codeSigningConfigArn"))?;
        Ok((code_signing::parse_arn(&arn, "codeSigningConfigArn")?, arn))
    }
}

// ---- runtime management ----------------------------------------------------------------

/// AWS's pattern for a runtime version ARN, as its validation messages print it.
const RUNTIME_VERSION_ARN_PATTERN: &str = "Member must satisfy regular expression pattern: ((arn:(aws[a-zA-Z-]*):lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}::runtime:.+)|(arn:(aws[a-zA-Z-]*):lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:\\d{12}:runtime/[A-Za-z0-9_.-]{1,128}/version/[A-Za-z0-9_.-]{1,128}))";

/// Get/PutRuntimeManagementConfig: a function and a qualifier (`$LATEST` by default).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RuntimeManagementInput {
    function_name: String,
    qualifier: Option<String>,
    update_runtime_on: Option<String>,
    runtime_version_arn: Option<String>,
}

impl RuntimeManagementInput {
    pub fn function(&self, partition: &Partition) -> Result<FunctionRef, ApiError> {
        function_ref(&self.function_name, self.qualifier.as_deref(), partition)
    }

    /// PutRuntimeManagementConfig's setting, checked: a runtime version ARN is required
    /// for `Manual` and kept only there (AWS reports none for the other modes).
    pub fn setting(&self) -> Result<RuntimeManagement, ApiError> {
        let mode = self.update_runtime_on.clone().ok_or_else(|| ApiError::missing("updateRuntimeOn"))?;
        runtime_management(&mode, self.runtime_version_arn.as_deref())
    }
}

fn runtime_management(mode: &str, arn: Option<&str>) -> Result<RuntimeManagement, ApiError> {
    if !matches!(mode, "Auto" | "Manual" | "FunctionUpdate") {
        return Err(ApiError::validation(mode, "updateRuntimeOn", "Member must satisfy enum value set: [Auto, Manual, FunctionUpdate]"));
    }
    let arn = arn.filter(|a| !a.is_empty());
    if let Some(a) = arn {
        if !is_runtime_version_arn(a) {
            return Err(ApiError::validation(a, "runtimeVersionArn", RUNTIME_VERSION_ARN_PATTERN));
        }
    }
    match (mode, arn) {
        ("Manual", None) => Err(ApiError::invalid("RuntimeVersionArn must be specified when UpdateRuntimeOn is Manual.")),
        ("Manual", Some(a)) => Ok(RuntimeManagement { update_runtime_on: mode.into(), runtime_version_arn: Some(a.into()) }),
        _ => Ok(RuntimeManagement { update_runtime_on: mode.into(), runtime_version_arn: None }),
    }
}

/// `arn:aws:lambda:<region>::runtime:<id>` (AWS's runtime versions) or
/// `arn:aws:lambda:<region>:<account>:runtime/<name>/version/<version>`.
fn is_runtime_version_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, region, account, rest] = parts[..] else { return false };
    let word = |s: &str| (1..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    let head = prefix == "arn" && partition.starts_with("aws") && service == "lambda" && region.split('-').count() >= 3;
    let tail = match account {
        "" => rest.strip_prefix("runtime:").is_some_and(|id| !id.is_empty()),
        a if a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()) => {
            let segs: Vec<&str> = rest.split('/').collect();
            matches!(segs[..], ["runtime", name, "version", v] if word(name) && word(v))
        }
        _ => false,
    };
    head && tail && (26..=2048).contains(&arn.len())
}

// ---- resource policies by ARN (2026-07-09) ---------------------------------------------

/// Get/Put/DeleteResourcePolicy: a Lambda resource by ARN, the policy document and the
/// revision the caller expects.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourcePolicyInput {
    resource_arn: String,
    pub policy: Option<String>,
    revision_id: Option<String>,
}

/// What a resource policy operation names.
pub enum PolicyResource {
    /// A function, with its qualifier if the ARN had one.
    Function(FunctionRef),
    /// A runtime (`runtime/...`): Nimbus has none of its own.
    Runtime,
}

/// AWS's pattern for a resource-policy ARN, as its validation messages print it.
const POLICY_RESOURCE_PATTERN: &str = "Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:\\d{12}:(function:[a-zA-Z0-9-_]+(:(\\$LATEST(\\.PUBLISHED)?|[a-zA-Z0-9-_])+)?|runtime/[a-zA-Z0-9-_./]+)";

impl ResourcePolicyInput {
    pub fn resource(&self, partition: &Partition) -> Result<PolicyResource, ApiError> {
        let arn = &self.resource_arn;
        let invalid = || ApiError::validation(arn, "resourceArn", POLICY_RESOURCE_PATTERN);
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [prefix, part, service, region, account, rest] = parts[..] else { return Err(invalid()) };
        let head = prefix == "arn"
            && (part.is_empty() || part.starts_with("aws"))
            && service == "lambda"
            && region.split('-').count() >= 3
            && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && arn.len() <= 512;
        if !head {
            return Err(invalid());
        }
        if let Some(path) = rest.strip_prefix("runtime/") {
            let ok = !path.is_empty() && path.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
            return if ok { Ok(PolicyResource::Runtime) } else { Err(invalid()) };
        }
        if !rest.starts_with("function:") {
            return Err(invalid());
        }
        FunctionRef::parse(arn, partition).map(PolicyResource::Function).map_err(|_| invalid())
    }

    pub fn revision_id(&self) -> Option<&str> {
        self.revision_id.as_deref().filter(|r| !r.is_empty())
    }
}

// ---- not built yet ---------------------------------------------------------------------

/// The members the `unbuilt` answers need from capacity provider, function scaling and
/// durable execution operations (the rest of each input is decoded and checked against the
/// model, then ignored).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UnbuiltInput {
    pub function_name: Option<String>,
    pub qualifier: Option<String>,
    pub capacity_provider_name: Option<String>,
    pub durable_execution_arn: Option<String>,
    pub callback_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use nimbus_model::ErrorCode;

    #[test]
    fn runtime_management_settings() {
        let arn = "arn:aws:lambda:us-east-1::runtime:0123456789abcdef0123456789abcdef";
        let custom = "arn:aws:lambda:us-east-1:123456789012:runtime/my-runtime/version/1";
        let set = |mode: &str, arn: Option<&str>| {
            Ok(RuntimeManagement { update_runtime_on: mode.into(), runtime_version_arn: arn.map(String::from) })
        };
        let cases: Vec<(&str, Option<&str>, Result<RuntimeManagement, ErrorCode>)> = vec![
            ("Auto", None, set("Auto", None)),
            ("FunctionUpdate", None, set("FunctionUpdate", None)),
            ("Auto", Some(arn), set("Auto", None)),
            ("Manual", Some(arn), set("Manual", Some(arn))),
            ("Manual", Some(custom), set("Manual", Some(custom))),
            ("Manual", None, Err(ErrorCode::InvalidParameterValue)),
            ("Manual", Some(""), Err(ErrorCode::InvalidParameterValue)),
            ("Manual", Some("arn:aws:lambda:us-east-1::function:x"), Err(ErrorCode::Validation)),
            ("Manual", Some("not-an-arn"), Err(ErrorCode::Validation)),
            ("auto", None, Err(ErrorCode::Validation)),
            ("", None, Err(ErrorCode::Validation)),
        ];
        for (mode, arn, want) in cases {
            assert_eq!(runtime_management(mode, arn).map_err(|e| e.code), want, "{mode} {arn:?}");
        }
    }

    #[test]
    fn policy_documents_in_addpermission_form() {
        let doc = r#"{"Version":"2012-10-17","Statement":[{"Sid":"s3","Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},
            "Action":"lambda:InvokeFunction","Resource":"arn:aws:lambda:us-east-1:000000000000:function:f",
            "Condition":{"ArnLike":{"AWS:SourceArn":"arn:aws:s3:::b"},"StringEquals":{"AWS:SourceAccount":"000000000000"}}}]}"#;
        let got = policy_statements(doc).unwrap();
        assert_eq!((got[0].sid.as_str(), got[0].principal.as_str()), ("s3", "s3.amazonaws.com"));
        assert_eq!(got[0].source_arn.as_deref(), Some("arn:aws:s3:::b"));
        assert_eq!(got[0].source_account.as_deref(), Some("000000000000"));
        let refused = [
            "not json",
            r#"{"Version":"2012-10-17"}"#,
            r#"{"Statement":[{"Sid":"a","Effect":"Deny","Principal":"*","Action":"lambda:InvokeFunction"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunction"}]}"#,
            r#"{"Statement":[{"Sid":"a","Effect":"Allow","Principal":"*","Action":["lambda:InvokeFunction","lambda:GetFunction"]}]}"#,
            r#"{"Statement":[{"Sid":"a","Effect":"Allow","Principal":{"AWS":["1","2"]},"Action":"lambda:InvokeFunction"}]}"#,
            r#"{"Statement":[{"Sid":"a","Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunction","Condition":{"IpAddress":{"aws:SourceIp":"1.2.3.4"}}}]}"#,
        ];
        for doc in refused {
            assert_eq!(policy_statements(doc).map_err(|e| e.code).err(), Some(ErrorCode::InvalidParameterValue), "{doc}");
        }
    }

    #[test]
    fn resource_policy_arns() {
        let p = Partition { region: "us-east-1".into(), account_id: "000000000000".into() };
        let input = |arn: &str| ResourcePolicyInput { resource_arn: arn.into(), policy: None, revision_id: None };
        let cases: &[(&str, Result<Option<&str>, ErrorCode>)] = &[
            ("arn:aws:lambda:us-east-1:000000000000:function:f", Ok(None)),
            ("arn:aws:lambda:us-east-1:000000000000:function:f:live", Ok(Some("live"))),
            ("arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST", Ok(Some("$LATEST"))),
            ("arn:aws:lambda:us-east-1:000000000000:runtime/custom/version/1", Err(ErrorCode::ResourceNotFound)),
            ("arn:aws:lambda:us-east-1:000000000000:layer:l", Err(ErrorCode::Validation)),
            ("arn:aws:lambda:us-east-1:000000000000:function:", Err(ErrorCode::Validation)),
            ("f", Err(ErrorCode::Validation)),
        ];
        for (arn, want) in cases {
            let got = match input(arn).resource(&p) {
                Ok(PolicyResource::Function(f)) => Ok(f.qualifier.as_ref().map(|q| q.as_str().to_string())),
                Ok(PolicyResource::Runtime) => Err(ErrorCode::ResourceNotFound),
                Err(e) => Err(e.code),
            };
            assert_eq!(got, want.map(|q| q.map(String::from)), "{arn}");
        }
    }
}

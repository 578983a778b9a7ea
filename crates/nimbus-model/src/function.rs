//! A function's configuration as Nimbus stores it: one record per function version.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::runtime::Runtime;

/// The version name of the editable copy of a function.
pub const LATEST: &str = "$LATEST";

/// Everything that defines one version of a function. Stored as JSON; new fields must
/// carry `#[serde(default)]` so older records still load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionConfig {
    pub name: String,
    pub version: String,
    pub runtime: Runtime,
    pub role: String,
    pub handler: String,
    #[serde(default)]
    pub description: String,
    pub timeout_secs: u32,
    pub memory_mb: u32,
    pub ephemeral_storage_mb: u32,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// Hex SHA-256 of the zip: the key of the code blob.
    pub code_digest: String,
    pub code_size: u64,
    /// Unzipped size, counted against the 250 MB limit.
    pub code_unzipped_size: u64,
    pub last_modified_ms: i64,
    pub revision_id: String,
    #[serde(default)]
    pub architectures: Vec<String>,
    /// PutFunctionConcurrency: the function's own share of the account's concurrency.
    /// A property of the function, not of a version: changing it keeps the revision.
    #[serde(default)]
    pub reserved_concurrency: Option<u32>,
    /// On `$LATEST` only: the highest version number ever published (numbers are never
    /// reused, even after a version is deleted).
    #[serde(default)]
    pub last_published: u32,
    /// Layer versions mounted under `/opt`, in order (a later layer's file wins).
    #[serde(default)]
    pub layers: Vec<crate::layer::LayerRef>,
    /// DeadLetterConfig.TargetArn: where asynchronous events go after their last failure.
    #[serde(default)]
    pub dead_letter_target: Option<String>,
    /// Tags (TagResource): kept on `$LATEST`, a property of the function like its reserved
    /// concurrency; changing them keeps the revision.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Resource-based policies (AddPermission), kept on `$LATEST` per qualifier (`""` for
    /// the unqualified function). Stored and reported; enforced once requests are signed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub policies: BTreeMap<String, FunctionPolicy>,
    /// PutFunctionRecursionConfig's `RecursiveLoop` (`Terminate` when unset, as in AWS).
    /// Stored and reported; Nimbus does not yet trace calls to detect loops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recursive_loop: Option<String>,
    /// The code signing config attached (PutFunctionCodeSigningConfig or CreateFunction's
    /// `CodeSigningConfigArn`), by id; kept on `$LATEST`. Signatures are not verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_signing_config_id: Option<String>,
    /// PutRuntimeManagementConfig, on the version it was set for (`Auto` when unset).
    /// Stored and reported; Nimbus has one build of each runtime, so it changes nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_management: Option<RuntimeManagement>,
    /// KMSKeyArn: the KMS key that wraps the data key of this version's environment
    /// variables (else Nimbus's master key does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<String>,
    /// VpcConfig: the subnets and security groups of the function's network (None: never
    /// set; empty lists: detached). Kept by every version published from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc: Option<VpcConfig>,
    /// TracingConfig `Mode: Active`: invocations are sampled (`Sampled=1` in the trace
    /// header the function gets) instead of passing the caller's decision through.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tracing_active: bool,
    /// LoggingConfig: log format, levels and log group.
    #[serde(default, skip_serializing_if = "crate::logging::LoggingConfig::is_default")]
    pub logging: crate::logging::LoggingConfig,
}

/// A function's VPC attachment, checked against Nimbus's network objects when set: every
/// subnet and group exists and all are in `vpc_id`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpcConfig {
    pub subnet_ids: Vec<String>,
    pub security_group_ids: Vec<String>,
    /// Empty when the lists are.
    pub vpc_id: String,
    #[serde(default)]
    pub ipv6_allowed_for_dual_stack: bool,
}

impl VpcConfig {
    /// Whether the function is attached to a VPC (not merely detached from one).
    pub fn attached(&self) -> bool {
        !self.subnet_ids.is_empty()
    }
}

/// A version's runtime update mode (`Auto`, `FunctionUpdate` or `Manual`) and, for
/// `Manual`, the runtime version it is pinned to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeManagement {
    pub update_runtime_on: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_version_arn: Option<String>,
}

/// One qualifier's resource-based policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionPolicy {
    pub statements: Vec<PermissionStatement>,
    /// Changes with every statement added or removed (AddPermission's RevisionId).
    pub revision_id: String,
}

/// One AddPermission statement, as given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionStatement {
    pub sid: String,
    pub action: String,
    pub principal: String,
    #[serde(default)]
    pub source_arn: Option<String>,
    #[serde(default)]
    pub source_account: Option<String>,
    #[serde(default)]
    pub principal_org_id: Option<String>,
    #[serde(default)]
    pub event_source_token: Option<String>,
    #[serde(default)]
    pub function_url_auth_type: Option<String>,
}

impl FunctionConfig {
    /// AWS's CodeSha256: the base64 (not hex) SHA-256 of the zip.
    pub fn code_sha256_base64(&self) -> String {
        digest_to_base64(&self.code_digest)
    }

    /// Where the function's logs go: `LoggingConfig.LogGroup`, else `/aws/lambda/<name>`.
    pub fn log_group(&self) -> String {
        match &self.logging.log_group {
            Some(group) => group.clone(),
            None => format!("/aws/lambda/{}", self.name),
        }
    }
}

impl Serialize for Runtime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

impl<'de> Deserialize<'de> for Runtime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(|_| serde::de::Error::custom(format!("unknown runtime {s}")))
    }
}

/// A hex SHA-256 digest as AWS reports it (`CodeSha256`): base64 of the raw bytes.
pub fn digest_to_base64(hex: &str) -> String {
    use base64::Engine;
    let bytes: Vec<u8> = (0..hex.len() / 2).filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A fresh revision id, as AWS mints one on every change.
pub fn new_revision_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

//! KMS on the wire: JSON 1.1 requests with `X-Amz-Target: TrentService.<Action>`, decoded
//! through `nimbus-protocol` against KMS's model into typed [`KmsCall`]s for `nimbus-kms`,
//! answered with typed outputs and [`KmsError`]s in KMS's shapes.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use http::Response;
use nimbus_kms::{AliasInfo, KeyInfo, KeyState, KmsError, KmsService};
use nimbus_protocol::encode::Empty;
use nimbus_protocol::{calls, encode, DecodeError, Protocol, KMS};
use serde::{Deserialize, Serialize};

use crate::response::Body;

mod target;

/// The `X-Amz-Target` prefix of KMS.
pub const TARGET_PREFIX: &str = "TrentService.";

/// One KMS request: the operation, decoded (or the error AWS would answer while decoding).
#[derive(Debug)]
pub struct KmsRequest {
    pub operation: &'static str,
    pub call: Result<KmsCall, KmsError>,
}

calls! {
    iam "kms";
    /// Every KMS operation Nimbus serves, with its typed input.
    pub enum KmsCall {
        CreateKey(CreateKeyInput),
        DescribeKey(KeyIdInput),
        ListKeys(ListInput),
        EnableKey(KeyIdInput),
        DisableKey(KeyIdInput),
        ScheduleKeyDeletion(ScheduleKeyDeletionInput),
        CancelKeyDeletion(KeyIdInput),
        CreateAlias(AliasInput),
        DeleteAlias(AliasInput),
        ListAliases(ListInput),
        Encrypt(EncryptInput),
        Decrypt(DecryptInput),
        GenerateDataKey(GenerateDataKeyInput),
        GenerateDataKeyWithoutPlaintext(GenerateDataKeyInput),
        ReEncrypt(ReEncryptInput),
        GetKeyPolicy(KeyPolicyInput),
        PutKeyPolicy(PutKeyPolicyInput),
        ListKeyPolicies(KeyIdInput),
    }
}

impl KmsRequest {
    /// The IAM action name (`kms:Encrypt`).
    pub fn name(&self) -> &'static str {
        KmsCall::iam_action(self.operation).unwrap_or("kms:Unknown")
    }
}

/// Decodes the body of a `TrentService.<operation>` request.
pub fn parse(operation: &str, body: &[u8]) -> KmsRequest {
    match KmsCall::from_json(&KMS, operation, body) {
        Some((operation, call)) => KmsRequest { operation, call: call.map_err(decode_error) },
        None => KmsRequest {
            operation: "Unknown",
            call: Err(KmsError::UnknownOperation(format!("Operation {operation} is not supported by this endpoint."))),
        },
    }
}

/// A member path as KMS's validation messages name it: `keyId`.
fn camel(member: &str) -> String {
    let mut c = member.chars();
    c.next().map(|f| f.to_lowercase().chain(c).collect()).unwrap_or_default()
}

fn decode_error(e: DecodeError) -> KmsError {
    match e {
        DecodeError::Missing { member } => KmsError::Validation(format!(
            "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
            camel(&member)
        )),
        DecodeError::Type { member, expected, .. } | DecodeError::Binding { member, expected, .. } => {
            KmsError::Serialization(format!("Could not parse the request body: {member} must be a {expected}"))
        }
        DecodeError::Malformed(m) | DecodeError::Shape(m) => KmsError::Serialization(format!("Could not parse the request body: {m}")),
    }
}

// ---- typed inputs ------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateKeyInput {
    policy: Option<String>,
    #[serde(default)]
    bypass_policy_lockout_safety_check: bool,
    description: Option<String>,
    key_usage: Option<String>,
    key_spec: Option<String>,
    customer_master_key_spec: Option<String>,
    origin: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyIdInput {
    key_id: String,
}

/// GetKeyPolicy: a key and the name of its policy (`default`, the only one).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyPolicyInput {
    key_id: String,
    policy_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutKeyPolicyInput {
    key_id: String,
    policy_name: Option<String>,
    policy: String,
    #[serde(default)]
    bypass_policy_lockout_safety_check: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScheduleKeyDeletionInput {
    key_id: String,
    pending_window_in_days: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListInput {
    key_id: Option<String>,
    limit: Option<i64>,
    marker: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AliasInput {
    alias_name: String,
    target_key_id: Option<String>,
}

type Context = Option<BTreeMap<String, String>>;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EncryptInput {
    key_id: String,
    plaintext: String,
    encryption_context: Context,
    encryption_algorithm: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DecryptInput {
    ciphertext_blob: Option<String>,
    encryption_context: Context,
    key_id: Option<String>,
    encryption_algorithm: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenerateDataKeyInput {
    key_id: String,
    encryption_context: Context,
    number_of_bytes: Option<i64>,
    key_spec: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReEncryptInput {
    ciphertext_blob: Option<String>,
    source_encryption_context: Context,
    source_key_id: Option<String>,
    destination_key_id: String,
    destination_encryption_context: Context,
}

// ---- typed outputs -----------------------------------------------------------------------

const SYMMETRIC_DEFAULT: &str = "SYMMETRIC_DEFAULT";

/// DescribeKey's `KeyMetadata`, laid out as AWS answers it (LocalStack's AWS-validated
/// snapshot `TestKMS::test_create_key`).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct KeyMetadata<'a> {
    #[serde(rename = "AWSAccountId")]
    aws_account_id: &'a str,
    key_id: &'a str,
    arn: &'a str,
    creation_date: f64,
    enabled: bool,
    description: &'a str,
    key_usage: &'static str,
    key_state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    deletion_date: Option<f64>,
    origin: &'static str,
    key_manager: &'static str,
    customer_master_key_spec: &'static str,
    key_spec: &'static str,
    encryption_algorithms: [&'static str; 1],
    multi_region: bool,
    current_key_material_id: &'a str,
}

impl<'a> KeyMetadata<'a> {
    fn new(k: &'a KeyInfo) -> KeyMetadata<'a> {
        KeyMetadata {
            aws_account_id: &k.account,
            key_id: &k.id,
            arn: &k.arn,
            creation_date: k.created,
            enabled: k.state == KeyState::Enabled,
            description: &k.description,
            key_usage: "ENCRYPT_DECRYPT",
            key_state: k.state.as_str(),
            deletion_date: k.deletion_date,
            origin: "AWS_KMS",
            key_manager: "CUSTOMER",
            customer_master_key_spec: SYMMETRIC_DEFAULT,
            key_spec: SYMMETRIC_DEFAULT,
            encryption_algorithms: [SYMMETRIC_DEFAULT],
            multi_region: false,
            current_key_material_id: &k.material_id,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct KeyMetadataOutput<'a> {
    key_metadata: KeyMetadata<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct KeyListEntry<'a> {
    key_id: &'a str,
    key_arn: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListKeysOutput<'a> {
    keys: Vec<KeyListEntry<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_marker: Option<String>,
    truncated: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ScheduleKeyDeletionOutput<'a> {
    key_id: &'a str,
    deletion_date: f64,
    key_state: &'static str,
    pending_window_in_days: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct KeyPolicyOutput {
    policy: String,
    policy_name: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListKeyPoliciesOutput {
    policy_names: [&'static str; 1],
    truncated: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct KeyIdOutput<'a> {
    key_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct AliasListEntry<'a> {
    alias_name: &'a str,
    alias_arn: &'a str,
    target_key_id: &'a str,
    creation_date: f64,
    last_updated_date: f64,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListAliasesOutput<'a> {
    aliases: Vec<AliasListEntry<'a>>,
    truncated: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct EncryptOutput<'a> {
    ciphertext_blob: String,
    key_id: &'a str,
    encryption_algorithm: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DecryptOutput<'a> {
    key_id: &'a str,
    plaintext: String,
    encryption_algorithm: &'static str,
    key_material_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GenerateDataKeyOutput<'a> {
    ciphertext_blob: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    plaintext: Option<String>,
    key_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ReEncryptOutput<'a> {
    ciphertext_blob: String,
    source_key_id: &'a str,
    key_id: &'a str,
    source_encryption_algorithm: &'static str,
    destination_encryption_algorithm: &'static str,
}

// ---- running -----------------------------------------------------------------------------

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A blob member: base64 on the wire (the decoder checked it is a string).
fn blob(value: &str, member: &str) -> Result<Vec<u8>, KmsError> {
    base64::engine::general_purpose::STANDARD
        .decode(value)
        .map_err(|_| KmsError::Serialization(format!("Could not parse the request body: {member} is not valid base64")))
}

/// The model's length bounds of a blob (`PlaintextType`: 1 to 4096 bytes; AWS's recorded
/// wording, `TestKMS::test_plaintext_size_for_encrypt`).
fn bounded(bytes: Vec<u8>, field: &str, max: usize) -> Result<Vec<u8>, KmsError> {
    if bytes.is_empty() {
        return Err(KmsError::constraint(field, "Member must have length greater than or equal to 1"));
    }
    if bytes.len() > max {
        return Err(KmsError::constraint(field, &format!("Member must have length less than or equal to {max}")));
    }
    Ok(bytes)
}

fn symmetric_only(algorithm: Option<&str>) -> Result<(), KmsError> {
    match algorithm {
        None | Some(SYMMETRIC_DEFAULT) => Ok(()),
        Some(other) => Err(KmsError::UnsupportedOperation(format!("Nimbus serves {SYMMETRIC_DEFAULT} keys only, not {other}"))),
    }
}

/// A key's only policy is `default`.
const POLICY_NAME: &str = "default";

fn policy_name(name: Option<&str>) -> Result<(), KmsError> {
    match name {
        None | Some(POLICY_NAME) => Ok(()),
        Some(other) => Err(KmsError::NotFound(format!("No such policy exists: {other}"))),
    }
}

/// A key policy document, checked as IAM checks resource-based policies.
fn key_policy(text: String) -> Result<String, KmsError> {
    nimbus_policy::Policy::parse(&text, nimbus_policy::Kind::Resource).map_err(|e| KmsError::MalformedPolicyDocument(e.to_string()))?;
    Ok(text)
}

fn reply<T: Serialize>(operation: &str, request_id: &str, output: &T) -> Response<bytes::Bytes> {
    encode::output(&KMS, Protocol::AwsJson1_1, operation, output, request_id)
}

/// Who asks, for KMS's policy lockout safety check: a key policy given without
/// `BypassPolicyLockoutSafetyCheck` must let its caller make a later PutKeyPolicy request.
pub struct Lockout {
    pub principal: nimbus_policy::Principal,
    pub identity: Vec<Arc<nimbus_policy::Policy>>,
    /// The ARN a key about to be created will have, but for its id (`arn:aws:kms:<region>:<account>:key/`).
    pub key_arn_prefix: String,
}

impl Lockout {
    /// Refuses `policy` (for the key `key_arn`) if it would lock the caller out.
    fn check(&self, policy: &str, key_arn: &str) -> Result<(), KmsError> {
        use nimbus_policy::{evaluate, Context, Kind, Policies, Policy, Request};
        let locked =
            || KmsError::MalformedPolicyDocument("The new key policy will not allow you to update the key policy in the future.".into());
        let policy = Policy::parse(policy, Kind::Resource).map_err(|_| locked())?;
        let identity: Vec<&Policy> = self.identity.iter().map(Arc::as_ref).collect();
        let context = Context::new().with_time(std::time::SystemTime::now());
        let request = Request { principal: &self.principal, action: "kms:PutKeyPolicy", resource: key_arn, context: &context };
        let policies = Policies { identity: &identity, resource: Some(&policy), resource_required: true, ..Policies::default() };
        if evaluate(&request, &policies).allowed() {
            Ok(())
        } else {
            Err(locked())
        }
    }
}

async fn run(svc: &Arc<KmsService>, call: KmsCall, rid: &str, lockout: Option<&Lockout>) -> Result<Response<bytes::Bytes>, KmsError> {
    let op = call.operation();
    let ctx = |c: Context| c.unwrap_or_default();
    Ok(match call {
        KmsCall::CreateKey(i) => {
            for spec in [i.key_spec.as_deref(), i.customer_master_key_spec.as_deref()] {
                symmetric_only(spec)?;
            }
            if let Some(usage) = i.key_usage.as_deref().filter(|u| *u != "ENCRYPT_DECRYPT") {
                return Err(KmsError::UnsupportedOperation(format!("Nimbus serves ENCRYPT_DECRYPT keys only, not {usage}")));
            }
            if let Some(origin) = i.origin.as_deref().filter(|o| *o != "AWS_KMS") {
                return Err(KmsError::UnsupportedOperation(format!("Nimbus serves AWS_KMS keys only, not {origin}")));
            }
            let policy = i.policy.map(key_policy).transpose()?;
            if let (Some(policy), Some(lockout), false) = (&policy, lockout, i.bypass_policy_lockout_safety_check) {
                // The new key's id is not known yet; a policy names it as `*`.
                lockout.check(policy, &format!("{}{}", lockout.key_arn_prefix, uuid::Uuid::new_v4()))?;
            }
            let key = svc.create_key(i.description.unwrap_or_default(), policy).await?;
            reply(op, rid, &KeyMetadataOutput { key_metadata: KeyMetadata::new(&key) })
        }
        KmsCall::DescribeKey(i) => {
            let key = svc.describe_key(&i.key_id).await?;
            reply(op, rid, &KeyMetadataOutput { key_metadata: KeyMetadata::new(&key) })
        }
        KmsCall::ListKeys(i) => {
            let page = svc.list_keys(i.limit.map(|l| l.max(1) as usize), i.marker.as_deref()).await;
            let keys = page.items.iter().map(|k| KeyListEntry { key_id: &k.id, key_arn: &k.arn }).collect();
            let truncated = page.next_marker.is_some();
            reply(op, rid, &ListKeysOutput { keys, next_marker: page.next_marker, truncated })
        }
        KmsCall::EnableKey(i) => {
            svc.enable_key(&i.key_id).await?;
            reply(op, rid, &Empty {})
        }
        KmsCall::DisableKey(i) => {
            svc.disable_key(&i.key_id).await?;
            reply(op, rid, &Empty {})
        }
        KmsCall::ScheduleKeyDeletion(i) => {
            let key = svc.schedule_key_deletion(&i.key_id, i.pending_window_in_days).await?;
            reply(
                op,
                rid,
                &ScheduleKeyDeletionOutput {
                    key_id: &key.arn,
                    deletion_date: key.deletion_date.unwrap_or_default(),
                    key_state: key.state.as_str(),
                    pending_window_in_days: key.pending_window_days.unwrap_or(30),
                },
            )
        }
        KmsCall::CancelKeyDeletion(i) => {
            let key = svc.cancel_key_deletion(&i.key_id).await?;
            reply(op, rid, &KeyIdOutput { key_id: &key.arn })
        }
        KmsCall::CreateAlias(i) => {
            let target = i.target_key_id.unwrap_or_default();
            svc.create_alias(&i.alias_name, &target).await?;
            reply(op, rid, &Empty {})
        }
        KmsCall::DeleteAlias(i) => {
            svc.delete_alias(&i.alias_name).await?;
            reply(op, rid, &Empty {})
        }
        KmsCall::ListAliases(i) => {
            let aliases: Vec<AliasInfo> = svc.list_aliases(i.key_id.as_deref()).await?;
            let entries = aliases
                .iter()
                .map(|a| AliasListEntry {
                    alias_name: &a.name,
                    alias_arn: &a.arn,
                    target_key_id: &a.target_key_id,
                    creation_date: a.created,
                    last_updated_date: a.updated,
                })
                .collect();
            reply(op, rid, &ListAliasesOutput { aliases: entries, truncated: false })
        }
        KmsCall::Encrypt(i) => {
            symmetric_only(i.encryption_algorithm.as_deref())?;
            let plaintext = bounded(blob(&i.plaintext, "Plaintext")?, "plaintext", 4096)?;
            let (ciphertext, arn) = svc.encrypt(&i.key_id, &plaintext, &ctx(i.encryption_context)).await?;
            reply(op, rid, &EncryptOutput { ciphertext_blob: b64(&ciphertext), key_id: &arn, encryption_algorithm: SYMMETRIC_DEFAULT })
        }
        KmsCall::Decrypt(i) => {
            symmetric_only(i.encryption_algorithm.as_deref())?;
            let Some(ciphertext) = i.ciphertext_blob else {
                return Err(KmsError::Validation(
                    "1 validation error detected: Value null at 'ciphertextBlob' failed to satisfy constraint: Member must not be null"
                        .into(),
                ));
            };
            let ciphertext = blob(&ciphertext, "CiphertextBlob")?;
            let (plaintext, arn) = svc.decrypt(&ciphertext, &ctx(i.encryption_context), i.key_id.as_deref()).await?;
            let key = svc.describe_key(&arn).await?;
            reply(
                op,
                rid,
                &DecryptOutput {
                    key_id: &arn,
                    plaintext: b64(&plaintext),
                    encryption_algorithm: SYMMETRIC_DEFAULT,
                    key_material_id: &key.material_id,
                },
            )
        }
        KmsCall::GenerateDataKey(i) | KmsCall::GenerateDataKeyWithoutPlaintext(i) => {
            let bytes = match (i.number_of_bytes, i.key_spec.as_deref()) {
                (Some(n), None) if (1..=1024).contains(&n) => n as usize,
                (Some(n), None) if n < 1 => {
                    return Err(KmsError::Validation(format!(
                        "1 validation error detected: Value '{n}' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1"
                    )))
                }
                (Some(n), None) => {
                    return Err(KmsError::Validation(format!(
                        "1 validation error detected: Value '{n}' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024"
                    )))
                }
                (None, Some("AES_256")) => 32,
                (None, Some("AES_128")) => 16,
                (None, Some(spec)) => {
                    return Err(KmsError::Validation(format!(
                        "1 validation error detected: Value '{spec}' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [AES_256, AES_128]"
                    )))
                }
                _ => return Err(KmsError::Validation("Please specify either number of bytes or key spec.".into())),
            };
            let with_plaintext = matches!(op, "GenerateDataKey");
            let key = svc.generate_data_key(&i.key_id, bytes, &ctx(i.encryption_context)).await?;
            reply(
                op,
                rid,
                &GenerateDataKeyOutput {
                    ciphertext_blob: b64(&key.ciphertext),
                    plaintext: with_plaintext.then(|| b64(&key.plaintext)),
                    key_id: &key.key_arn,
                },
            )
        }
        KmsCall::GetKeyPolicy(i) => {
            policy_name(i.policy_name.as_deref())?;
            reply(op, rid, &KeyPolicyOutput { policy: svc.key_policy(&i.key_id)?, policy_name: POLICY_NAME })
        }
        KmsCall::PutKeyPolicy(i) => {
            policy_name(i.policy_name.as_deref())?;
            let policy = key_policy(i.policy)?;
            if let (Some(lockout), false, Some(arn)) = (lockout, i.bypass_policy_lockout_safety_check, svc.key_arn_of(&i.key_id)) {
                lockout.check(&policy, &arn)?;
            }
            svc.put_key_policy(&i.key_id, policy).await?;
            reply(op, rid, &Empty {})
        }
        KmsCall::ListKeyPolicies(i) => {
            svc.key_policy(&i.key_id)?;
            reply(op, rid, &ListKeyPoliciesOutput { policy_names: [POLICY_NAME], truncated: false })
        }
        KmsCall::ReEncrypt(i) => {
            let Some(ciphertext) = i.ciphertext_blob else {
                return Err(KmsError::Validation(
                    "1 validation error detected: Value null at 'ciphertextBlob' failed to satisfy constraint: Member must not be null"
                        .into(),
                ));
            };
            let ciphertext = blob(&ciphertext, "CiphertextBlob")?;
            let out = svc
                .re_encrypt(
                    &ciphertext,
                    &ctx(i.source_encryption_context),
                    i.source_key_id.as_deref(),
                    &i.destination_key_id,
                    &ctx(i.destination_encryption_context),
                )
                .await?;
            reply(
                op,
                rid,
                &ReEncryptOutput {
                    ciphertext_blob: b64(&out.ciphertext),
                    source_key_id: &out.source_key_arn,
                    key_id: &out.key_arn,
                    source_encryption_algorithm: SYMMETRIC_DEFAULT,
                    destination_encryption_algorithm: SYMMETRIC_DEFAULT,
                },
            )
        }
    })
}

/// Runs a request and answers in KMS's shapes.
pub async fn execute(svc: &Arc<KmsService>, req: KmsRequest, lockout: Option<&Lockout>) -> Response<Body> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let result = match req.call {
        Ok(call) => run(svc, call, &request_id, lockout).await,
        Err(e) => Err(e),
    };
    let response = result.unwrap_or_else(|e| {
        if let KmsError::Internal(why) = &e {
            tracing::error!(operation = req.operation, "kms: {why}");
        }
        encode::error(&KMS, Protocol::AwsJson1_1, &e, &request_id)
    });
    response.map(Body::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests() {
        let cases: &[(&str, &[u8], &str)] = &[
            ("Encrypt", br#"{"KeyId":"alias/a","Plaintext":"aGk=","EncryptionContext":{"k":"v"}}"#, "ok"),
            ("Encrypt", br#"{"Plaintext":"aGk="}"#, "ValidationException"),
            ("Encrypt", br#"{"KeyId":1,"Plaintext":"aGk="}"#, "SerializationException"),
            ("Decrypt", br#"{"CiphertextBlob":"aGk="}"#, "ok"),
            ("Sign", b"{}", "UnknownOperationException"),
        ];
        for (op, body, want) in cases {
            let got = match parse(op, body).call {
                Ok(_) => "ok",
                Err(e) => e.type_name(),
            };
            assert_eq!(got, *want, "{op} {}", String::from_utf8_lossy(body));
        }
    }
}

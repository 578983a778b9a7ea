//! KMS's half of the authorization table: each call's IAM action and key, as the Service
//! Authorization Reference lists them for AWS KMS. A call that names its key by alias acts on
//! the key the alias names now (and says the alias in `kms:RequestAlias`); Decrypt and
//! ReEncrypt without a key id act on the key inside the ciphertext; ReEncrypt needs
//! `kms:ReEncryptFrom` on the source and `kms:ReEncryptTo` on the destination; CreateAlias and
//! DeleteAlias need their action on the alias and on its key.

use super::*;
use crate::authz::{Scope, Target};

fn is_alias(key_id: &str) -> bool {
    key_id.starts_with("alias/") || key_id.contains(":alias/")
}

/// The ARN of the key `key_id` names; for a key that does not exist, the ARN the request
/// spells (the call fails on its own).
fn key_arn(scope: &Scope<'_>, key_id: &str) -> String {
    if let Some(arn) = scope.names.kms_key_arn(key_id) {
        return arn;
    }
    if key_id.starts_with("arn:") {
        key_id.to_string()
    } else if is_alias(key_id) {
        alias_arn(scope, key_id)
    } else {
        format!("arn:aws:kms:{}:{}:key/{key_id}", scope.region, scope.account)
    }
}

fn alias_arn(scope: &Scope<'_>, alias: &str) -> String {
    if alias.starts_with("arn:") {
        alias.to_string()
    } else {
        format!("arn:aws:kms:{}:{}:{alias}", scope.region, scope.account)
    }
}

/// The key a ciphertext blob (base64, as on the wire) was made with.
fn blob_key(scope: &Scope<'_>, blob: Option<&str>) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(blob?).ok()?;
    nimbus_kms::ciphertext_key_id(&bytes).map(|id| key_arn(scope, id))
}

/// `action` on the key `key_id` names, with `kms:CallerAccount` and, when the request names
/// the key by alias, `kms:RequestAlias`.
fn on_key(scope: &Scope<'_>, action: &'static str, key_id: &str) -> Target {
    let t = Target::on(action, key_arn(scope, key_id)).with("kms:CallerAccount", scope.account);
    if is_alias(key_id) {
        t.with("kms:RequestAlias", key_id.rsplit_once(':').map_or(key_id, |(_, a)| a))
    } else {
        t
    }
}

/// The encryption context's condition keys and the algorithm asked for.
fn with_context(t: Target, context: &Context, algorithm: Option<&String>) -> Target {
    let context = context.clone().unwrap_or_default();
    let keys = context.keys().cloned().collect();
    let t = context.into_iter().fold(t, |t, (k, v)| t.with(format!("kms:EncryptionContext:{k}"), v));
    t.with_values("kms:EncryptionContextKeys", keys).with_some("kms:EncryptionAlgorithm", algorithm.cloned())
}

impl KmsRequest {
    /// What IAM authorizes this call as: its action and resource (None when it did not decode:
    /// it fails on its own, and reveals nothing).
    pub(crate) fn target(&self, scope: &Scope<'_>) -> Option<Target> {
        use KmsCall::*;
        let key = |action, key_id: &str| on_key(scope, action, key_id);
        Some(match self.call.as_ref().ok()? {
            CreateKey(i) => Target::any("kms:CreateKey")
                .with("kms:CallerAccount", scope.account)
                .with("kms:KeySpec", i.key_spec.as_deref().or(i.customer_master_key_spec.as_deref()).unwrap_or(SYMMETRIC_DEFAULT))
                .with("kms:KeyUsage", i.key_usage.as_deref().unwrap_or("ENCRYPT_DECRYPT"))
                .with("kms:KeyOrigin", i.origin.as_deref().unwrap_or("AWS_KMS"))
                .with("kms:BypassPolicyLockoutSafetyCheck", i.bypass_policy_lockout_safety_check.to_string()),
            DescribeKey(i) => key("kms:DescribeKey", &i.key_id),
            ListKeys(_) => Target::any("kms:ListKeys"),
            EnableKey(i) => key("kms:EnableKey", &i.key_id),
            DisableKey(i) => key("kms:DisableKey", &i.key_id),
            ScheduleKeyDeletion(i) => key("kms:ScheduleKeyDeletion", &i.key_id)
                .with("kms:ScheduleKeyDeletionPendingWindowInDays", i.pending_window_in_days.unwrap_or(30).to_string()),
            CancelKeyDeletion(i) => key("kms:CancelKeyDeletion", &i.key_id),
            CreateAlias(i) => Target::on("kms:CreateAlias", alias_arn(scope, &i.alias_name))
                .with("kms:CallerAccount", scope.account)
                .and("kms:CreateAlias", key_arn(scope, i.target_key_id.as_deref().unwrap_or_default())),
            DeleteAlias(i) => {
                let t = Target::on("kms:DeleteAlias", alias_arn(scope, &i.alias_name)).with("kms:CallerAccount", scope.account);
                match scope.names.kms_key_arn(&i.alias_name) {
                    Some(key) => t.and("kms:DeleteAlias", key),
                    None => t,
                }
            }
            ListAliases(_) => Target::any("kms:ListAliases"),
            Encrypt(i) => with_context(key("kms:Encrypt", &i.key_id), &i.encryption_context, i.encryption_algorithm.as_ref()),
            Decrypt(i) => {
                let t = match (&i.key_id, blob_key(scope, i.ciphertext_blob.as_deref())) {
                    (Some(id), _) => key("kms:Decrypt", id),
                    (None, Some(arn)) => Target::on("kms:Decrypt", arn).with("kms:CallerAccount", scope.account),
                    // Not a ciphertext of any key: Decrypt answers InvalidCiphertextException.
                    (None, None) => return None,
                };
                with_context(t, &i.encryption_context, i.encryption_algorithm.as_ref())
            }
            GenerateDataKey(i) => with_context(key("kms:GenerateDataKey", &i.key_id), &i.encryption_context, None),
            GenerateDataKeyWithoutPlaintext(i) => {
                with_context(key("kms:GenerateDataKeyWithoutPlaintext", &i.key_id), &i.encryption_context, None)
            }
            ReEncrypt(i) => {
                let source = match (&i.source_key_id, blob_key(scope, i.ciphertext_blob.as_deref())) {
                    (Some(id), _) => key_arn(scope, id),
                    (None, Some(arn)) => arn,
                    (None, None) => return None,
                };
                let destination = key_arn(scope, &i.destination_key_id);
                Target::on("kms:ReEncryptFrom", source.clone())
                    .with("kms:CallerAccount", scope.account)
                    .with("kms:ReEncryptOnSameKey", (source == destination).to_string())
                    .and("kms:ReEncryptTo", destination)
            }
            GetKeyPolicy(i) => key("kms:GetKeyPolicy", &i.key_id),
            PutKeyPolicy(i) => key("kms:PutKeyPolicy", &i.key_id)
                .with("kms:BypassPolicyLockoutSafetyCheck", i.bypass_policy_lockout_safety_check.to_string()),
            ListKeyPolicies(i) => key("kms:ListKeyPolicies", &i.key_id),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::testing::{check, context, json, target, KEY, KEY_ID};

    const ALIAS: &str = "arn:aws:kms:us-east-1:123456789012:alias/app";
    const OTHER: &str = "arn:aws:kms:us-east-1:123456789012:key/6f8d2a3c-0000-4000-8000-000000000000";

    fn k(op: &str, body: &str) -> crate::action::Action {
        json(&format!("TrentService.{op}"), body)
    }

    /// A ciphertext of the key `id`, as Nimbus's KMS makes them (the key id follows `NK1`).
    fn blob_of(id: &str) -> String {
        let mut blob = b"NK1".to_vec();
        blob.extend_from_slice(id.as_bytes());
        blob.extend_from_slice(&[0; 28]);
        base64::engine::general_purpose::STANDARD.encode(blob)
    }

    #[test]
    fn actions_and_keys() {
        let by_id = format!(r#"{{"KeyId":"{KEY_ID}"}}"#);
        check(vec![
            (k("CreateKey", "{}"), "kms:CreateKey", "*"),
            (k("DescribeKey", &by_id), "kms:DescribeKey", KEY),
            // An alias, by name or ARN, stands for its key.
            (k("DescribeKey", r#"{"KeyId":"alias/app"}"#), "kms:DescribeKey", KEY),
            (k("DescribeKey", &format!(r#"{{"KeyId":"{ALIAS}"}}"#)), "kms:DescribeKey", KEY),
            (k("DescribeKey", &format!(r#"{{"KeyId":"{KEY}"}}"#)), "kms:DescribeKey", KEY),
            // Names that resolve to no key stay as spelled.
            (k("DescribeKey", r#"{"KeyId":"6f8d2a3c-0000-4000-8000-000000000000"}"#), "kms:DescribeKey", OTHER),
            (k("DescribeKey", r#"{"KeyId":"alias/none"}"#), "kms:DescribeKey", "arn:aws:kms:us-east-1:123456789012:alias/none"),
            (k("ListKeys", "{}"), "kms:ListKeys", "*"),
            (k("EnableKey", &by_id), "kms:EnableKey", KEY),
            (k("DisableKey", &by_id), "kms:DisableKey", KEY),
            (k("ScheduleKeyDeletion", &by_id), "kms:ScheduleKeyDeletion", KEY),
            (k("CancelKeyDeletion", &by_id), "kms:CancelKeyDeletion", KEY),
            (
                k("CreateAlias", &format!(r#"{{"AliasName":"alias/new","TargetKeyId":"{KEY_ID}"}}"#)),
                "kms:CreateAlias",
                "arn:aws:kms:us-east-1:123456789012:alias/new",
            ),
            (k("DeleteAlias", r#"{"AliasName":"alias/app"}"#), "kms:DeleteAlias", ALIAS),
            (k("ListAliases", "{}"), "kms:ListAliases", "*"),
            (k("Encrypt", r#"{"KeyId":"alias/app","Plaintext":"aGk="}"#), "kms:Encrypt", KEY),
            (k("Decrypt", &format!(r#"{{"CiphertextBlob":"{}"}}"#, blob_of(KEY_ID))), "kms:Decrypt", KEY),
            (k("Decrypt", &format!(r#"{{"CiphertextBlob":"aGk=","KeyId":"{KEY_ID}"}}"#)), "kms:Decrypt", KEY),
            (k("GenerateDataKey", r#"{"KeyId":"alias/app","KeySpec":"AES_256"}"#), "kms:GenerateDataKey", KEY),
            (k("GenerateDataKeyWithoutPlaintext", &by_id), "kms:GenerateDataKeyWithoutPlaintext", KEY),
            (
                k("ReEncrypt", &format!(r#"{{"CiphertextBlob":"{}","DestinationKeyId":"{OTHER}"}}"#, blob_of(KEY_ID))),
                "kms:ReEncryptFrom",
                KEY,
            ),
            (k("GetKeyPolicy", &by_id), "kms:GetKeyPolicy", KEY),
            (k("PutKeyPolicy", &format!(r#"{{"KeyId":"{KEY_ID}","Policy":"{{}}"}}"#)), "kms:PutKeyPolicy", KEY),
            (k("ListKeyPolicies", &by_id), "kms:ListKeyPolicies", KEY),
        ]);
    }

    #[test]
    fn calls_on_two_resources_need_both() {
        let t = target(&k("ReEncrypt", &format!(r#"{{"CiphertextBlob":"{}","DestinationKeyId":"{OTHER}"}}"#, blob_of(KEY_ID))));
        assert_eq!(t.also, vec![("kms:ReEncryptTo", OTHER.to_string())]);
        assert_eq!(context(&t, "kms:ReEncryptOnSameKey"), Some(&["false".to_string()][..]));
        let t = target(&k("CreateAlias", r#"{"AliasName":"alias/new","TargetKeyId":"alias/app"}"#));
        assert_eq!(t.also, vec![("kms:CreateAlias", KEY.to_string())]);
        let t = target(&k("DeleteAlias", r#"{"AliasName":"alias/app"}"#));
        assert_eq!(t.also, vec![("kms:DeleteAlias", KEY.to_string())]);
        // A ciphertext of no key fails on its own.
        assert!(k("Decrypt", r#"{"CiphertextBlob":"aGk="}"#).target(&crate::authz::testing::scope()).is_none());
    }

    #[test]
    fn condition_keys() {
        let t = target(&k("Encrypt", r#"{"KeyId":"alias/app","Plaintext":"aGk=","EncryptionContext":{"dept":"ops","app":"x"}}"#));
        assert_eq!(context(&t, "kms:EncryptionContext:dept"), Some(&["ops".to_string()][..]));
        assert_eq!(context(&t, "kms:EncryptionContextKeys"), Some(&["app".to_string(), "dept".to_string()][..]));
        assert_eq!(context(&t, "kms:RequestAlias"), Some(&["alias/app".to_string()][..]));
        assert_eq!(context(&t, "kms:CallerAccount"), Some(&["123456789012".to_string()][..]));
        let t = target(&k("Encrypt", &format!(r#"{{"KeyId":"{ALIAS}","Plaintext":"aGk="}}"#)));
        assert_eq!(context(&t, "kms:RequestAlias"), Some(&["alias/app".to_string()][..]));
        let t = target(&k("DescribeKey", &format!(r#"{{"KeyId":"{KEY_ID}"}}"#)));
        assert_eq!(context(&t, "kms:RequestAlias"), None);
    }
}

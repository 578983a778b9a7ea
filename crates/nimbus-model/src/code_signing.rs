//! Code signing configurations (CreateCodeSigningConfig and friends): which signing profiles a
//! function's code must come from, and what to do with code that is not signed by one.
//! Nimbus stores and reports them as AWS does and attaches them to functions; it does not
//! verify signatures (it has no AWS Signer to ask), so `Enforce` refuses nothing.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::Partition;

/// AWS's pattern for a code signing config ARN, as its validation messages print it.
pub const ARN_PATTERN: &str =
    "arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:\\d{12}:code-signing-config:csc-[a-z0-9]{17}";

/// At most this many signing profile versions per config (the model's limit).
pub const MAX_PUBLISHERS: usize = 20;

/// One code signing configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeSigningConfig {
    /// `csc-` and 17 lower-case hex digits.
    pub id: String,
    #[serde(default)]
    pub description: String,
    pub signing_profile_version_arns: Vec<String>,
    /// `Warn` (AWS's default) or `Enforce`.
    pub untrusted_artifact_on_deployment: String,
    pub last_modified_ms: i64,
}

impl CodeSigningConfig {
    /// Whether AWS would refuse unsigned code under this config (Nimbus cannot check).
    pub fn enforces(&self) -> bool {
        self.untrusted_artifact_on_deployment == "Enforce"
    }
}

/// A new config id: `csc-` and 17 lower-case hex digits, as AWS mints them.
pub fn new_id() -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("csc-{}", &hex[..17])
}

impl Partition {
    pub fn code_signing_config_arn(&self, id: &str) -> String {
        format!("arn:aws:lambda:{}:{}:code-signing-config:{}", self.region, self.account_id, id)
    }
}

/// The config id an ARN names, checked against AWS's pattern (a ValidationException on
/// `member` otherwise). An ARN of another account or region names no config of ours.
pub fn parse_arn(arn: &str, member: &str) -> Result<String, ApiError> {
    let invalid = || ApiError::validation(arn, member, &format!("Member must satisfy regular expression pattern: {ARN_PATTERN}"));
    let parts: Vec<&str> = arn.split(':').collect();
    let [prefix, partition, service, region, account, kind, id] = parts[..] else { return Err(invalid()) };
    let id_ok = id.len() == 21 && id.starts_with("csc-") && id[4..].bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase());
    let shaped = prefix == "arn"
        && (partition.is_empty() || partition.starts_with("aws"))
        && service == "lambda"
        && region.split('-').count() >= 3
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && kind == "code-signing-config"
        && id_ok
        && arn.len() <= 200;
    if !shaped {
        return Err(invalid());
    }
    Ok(id.to_string())
}

/// `UntrustedArtifactOnDeployment`, checked against the model's enum.
pub fn policy(value: &str) -> Result<String, ApiError> {
    match value {
        "Warn" | "Enforce" => Ok(value.to_string()),
        other => Err(ApiError::validation(
            other,
            "codeSigningPolicies.untrustedArtifactOnDeployment",
            "Member must satisfy enum value set: [Warn, Enforce]",
        )),
    }
}

/// `AllowedPublishers.SigningProfileVersionArns`: 1 to 20 ARNs.
pub fn publishers(arns: &[String]) -> Result<(), ApiError> {
    if arns.is_empty() || arns.len() > MAX_PUBLISHERS {
        let shown = format!("[{}]", arns.join(", "));
        return Err(ApiError::validation(
            &shown,
            "allowedPublishers.signingProfileVersionArns",
            &format!("Member must have length less than or equal to {MAX_PUBLISHERS}, Member must have length greater than or equal to 1"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[test]
    fn ids_look_like_aws_ids() {
        let id = new_id();
        assert_eq!(id.len(), 21);
        let arn = format!("arn:aws:lambda:us-east-1:000000000000:code-signing-config:{id}");
        assert_eq!(parse_arn(&arn, "m").map_err(|e| e.message), Ok(id));
    }

    #[test]
    fn arns_are_checked_against_aws_pattern() {
        let good = "arn:aws:lambda:us-east-1:123456789012:code-signing-config:csc-0123456789abcdef0";
        let cases: &[(&str, Option<&str>)] = &[
            (good, Some("csc-0123456789abcdef0")),
            ("arn:aws-cn:lambda:cn-north-1:123456789012:code-signing-config:csc-0123456789abcdef0", Some("csc-0123456789abcdef0")),
            ("arn:aws:lambda:us-east-1:123456789012:code-signing-config:csc-0123456789abcdef", None),
            ("arn:aws:lambda:us-east-1:123456789012:code-signing-config:csc-0123456789ABCDEF0", None),
            ("arn:aws:lambda:us-east-1:123456789012:function:csc-0123456789abcdef0", None),
            ("arn:aws:lambda:us-east-1:1234:code-signing-config:csc-0123456789abcdef0", None),
            ("csc-0123456789abcdef0", None),
            ("", None),
        ];
        for (arn, want) in cases {
            match (parse_arn(arn, "codeSigningConfigArn"), want) {
                (Ok(id), Some(w)) => assert_eq!(&id, w, "{arn}"),
                (Err(e), None) => {
                    assert_eq!(e.code, ErrorCode::Validation, "{arn}");
                    assert!(e.message.contains("at 'codeSigningConfigArn'"), "{arn}: {}", e.message);
                }
                (got, want) => panic!("{arn}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn policies_and_publishers() {
        for (value, ok) in [("Warn", true), ("Enforce", true), ("warn", false), ("", false)] {
            assert_eq!(policy(value).is_ok(), ok, "{value}");
        }
        let arns = |n: usize| (0..n).map(|i| format!("arn:aws:signer:us-east-1:123456789012:/signing-profiles/p{i}")).collect::<Vec<_>>();
        for (n, ok) in [(0, false), (1, true), (20, true), (21, false)] {
            assert_eq!(publishers(&arns(n)).is_ok(), ok, "{n} publishers");
        }
    }
}

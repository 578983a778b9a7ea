//! Layers: versioned zips of libraries that functions mount read-only under `/opt`, and the
//! resource policy that shares a layer version with other accounts.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::Partition;

/// A function may list at most this many layers.
pub const MAX_LAYERS: usize = 5;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerVersion {
    pub layer_name: String,
    pub version: u64,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub compatible_runtimes: Vec<String>,
    #[serde(default)]
    pub compatible_architectures: Vec<String>,
    #[serde(default)]
    pub license_info: Option<String>,
    /// Hex SHA-256 of the zip (the blob key).
    pub code_digest: String,
    pub code_size: u64,
    pub unzipped_size: u64,
    pub created_ms: i64,
    #[serde(default)]
    pub policy: Vec<LayerStatement>,
    #[serde(default)]
    pub policy_revision: String,
}

/// One AddLayerVersionPermission grant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerStatement {
    pub sid: String,
    pub action: String,
    pub principal: String,
    #[serde(default)]
    pub organization_id: Option<String>,
}

/// A layer version as a function's configuration records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRef {
    pub arn: String,
    pub code_size: u64,
    pub code_digest: String,
    pub unzipped_size: u64,
}

impl Partition {
    pub fn layer_arn(&self, name: &str) -> String {
        format!("arn:aws:lambda:{}:{}:layer:{}", self.region, self.account_id, name)
    }
}

impl LayerVersion {
    pub fn arn(&self, p: &Partition) -> String {
        format!("{}:{}", p.layer_arn(&self.layer_name), self.version)
    }
}

/// AWS's layer name rule: `[a-zA-Z0-9-_]+`, 1–140 characters (or a layer ARN).
pub fn is_valid_layer_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 140 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Accepts a plain layer name or a layer ARN (`arn:aws:lambda:r:a:layer:name`) and
/// returns (account, name).
pub fn parse_layer_name(input: &str, p: &Partition) -> Result<(String, String), ApiError> {
    let parts: Vec<&str> = input.split(':').collect();
    let (account, name) = match parts.as_slice() {
        [name] => (p.account_id.as_str(), *name),
        ["arn", part, "lambda", _region, account, "layer", name] if part.starts_with("aws") => (*account, *name),
        _ => ("", ""),
    };
    if !is_valid_layer_name(name) {
        return Err(ApiError::validation(
            input,
            "layerName",
            "Member must satisfy regular expression pattern: (arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:[a-zA-Z0-9-_]+)|[a-zA-Z0-9-_]+",
        ));
    }
    Ok((account.to_string(), name.to_string()))
}

/// Parses a layer version ARN `arn:aws:lambda:<region>:<account>:layer:<name>:<version>`
/// into (region, account, name, version).
pub fn parse_layer_version_arn(arn: &str) -> Result<(String, String, String, u64), ApiError> {
    let bad = || {
        ApiError::validation(
            arn,
            "layers",
            "Member must satisfy regular expression pattern: arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+",
        )
    };
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", part, "lambda", region, account, "layer", name, version]
            if part.starts_with("aws")
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && is_valid_layer_name(name) =>
        {
            let v = version.parse::<u64>().map_err(|_| bad())?;
            Ok((region.to_string(), account.to_string(), name.to_string(), v))
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns() {
        let p = Partition { region: "us-east-1".into(), account_id: "000000000000".into() };
        assert_eq!(parse_layer_name("libs", &p).unwrap().1, "libs");
        assert_eq!(parse_layer_name("arn:aws:lambda:us-east-1:111111111111:layer:libs", &p).unwrap().0, "111111111111");
        parse_layer_name("bad name", &p).unwrap_err();
        let (r, a, n, v) = parse_layer_version_arn("arn:aws:lambda:us-east-1:000000000000:layer:libs:3").unwrap();
        assert_eq!((r.as_str(), a.as_str(), n.as_str(), v), ("us-east-1", "000000000000", "libs", 3));
        parse_layer_version_arn("arn:aws:lambda:us-east-1:000000000000:layer:libs").unwrap_err();
        parse_layer_version_arn("arn:aws:lambda:us-east-1:000000000000:layer:libs:x").unwrap_err();
    }
}

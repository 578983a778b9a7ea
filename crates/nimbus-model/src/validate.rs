//! AWS's rules for function settings, checked before anything is written.

use std::collections::BTreeMap;

use crate::error::{ApiError, ErrorCode};
use crate::runtime::Runtime;

pub const MIN_MEMORY_MB: u32 = 128;
pub const MAX_MEMORY_MB: u32 = 10_240;
pub const MAX_TIMEOUT_SECS: u32 = 900;
pub const MIN_EPHEMERAL_MB: u32 = 512;
pub const MAX_EPHEMERAL_MB: u32 = 10_240;
/// Total size of all environment variable names and values.
pub const MAX_ENV_BYTES: usize = 4 * 1024;
/// Unzipped code (plus layers) per function.
pub const MAX_UNZIPPED_BYTES: u64 = 250 * 1024 * 1024;
/// Zipped code uploaded directly in the request.
pub const MAX_ZIPPED_BYTES: u64 = 50 * 1024 * 1024;
/// Synchronous invoke request and response payloads.
pub const MAX_SYNC_PAYLOAD: usize = 6 * 1024 * 1024;

/// Variables the service sets itself; AWS rejects them in a function's configuration.
pub const RESERVED_ENV: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

pub fn memory(mb: i64) -> Result<u32, ApiError> {
    if mb < i64::from(MIN_MEMORY_MB) {
        return Err(ApiError::validation(&mb.to_string(), "memorySize", "Member must have value greater than or equal to 128"));
    }
    if mb > i64::from(MAX_MEMORY_MB) {
        return Err(ApiError::validation(&mb.to_string(), "memorySize", "Member must have value less than or equal to 10240"));
    }
    Ok(mb as u32)
}

pub fn timeout(secs: i64) -> Result<u32, ApiError> {
    if secs < 1 {
        return Err(ApiError::validation(&secs.to_string(), "timeout", "Member must have value greater than or equal to 1"));
    }
    if secs > i64::from(MAX_TIMEOUT_SECS) {
        return Err(ApiError::invalid(format!(
            "Timeout value must be less than or equal to {MAX_TIMEOUT_SECS} seconds. Timeout value provided: {secs}"
        )));
    }
    Ok(secs as u32)
}

pub fn ephemeral_storage(mb: i64) -> Result<u32, ApiError> {
    if mb < i64::from(MIN_EPHEMERAL_MB) {
        return Err(ApiError::validation(&mb.to_string(), "ephemeralStorage.size", "Member must have value greater than or equal to 512"));
    }
    if mb > i64::from(MAX_EPHEMERAL_MB) {
        return Err(ApiError::validation(&mb.to_string(), "ephemeralStorage.size", "Member must have value less than or equal to 10240"));
    }
    Ok(mb as u32)
}

pub fn runtime(s: &str) -> Result<Runtime, ApiError> {
    if let Ok(r) = s.parse::<Runtime>() {
        return Ok(r);
    }
    if Runtime::is_known_elsewhere(s) {
        return Err(ApiError::invalid(format!(
            "The runtime parameter of {s} is no longer supported for creating or updating AWS Lambda functions. We recommend you use a supported runtime while creating or updating functions."
        )));
    }
    // AWS answers an unknown runtime with InvalidParameterValueException, the value unquoted
    // and without the "1 validation error detected" preamble.
    let all: Vec<&str> = Runtime::ALL.iter().map(|r| r.id()).collect();
    Err(ApiError::invalid(format!(
        "Value {s} at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: [{}] or be a valid ARN",
        all.join(", ")
    )))
}

pub fn handler(s: &str) -> Result<(), ApiError> {
    if s.is_empty() || s.len() > 128 || s.chars().any(char::is_whitespace) {
        return Err(ApiError::validation(s, "handler", "Member must satisfy regular expression pattern: [^\\s]+"));
    }
    Ok(())
}

pub fn description(s: &str) -> Result<(), ApiError> {
    if s.chars().count() > 256 {
        return Err(ApiError::validation(s, "description", "Member must have length less than or equal to 256"));
    }
    Ok(())
}

pub fn role(s: &str) -> Result<(), ApiError> {
    let ok = s
        .strip_prefix("arn:")
        .and_then(|r| r.split_once(":iam::"))
        .and_then(|(partition, rest)| partition.starts_with("aws").then_some(rest))
        .and_then(|rest| rest.split_once(":role/"))
        .is_some_and(|(account, name)| {
            account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && !name.is_empty()
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@-_/".contains(&b))
        });
    if !ok {
        return Err(ApiError::validation(
            s,
            "role",
            "Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+",
        ));
    }
    Ok(())
}

/// AWS's rules: names match `[a-zA-Z]([a-zA-Z0-9_])+`, none reserved, 4 KB in total.
pub fn environment(vars: &BTreeMap<String, String>) -> Result<(), ApiError> {
    let mut total = 0;
    for (k, v) in vars {
        if RESERVED_ENV.contains(&k.as_str()) {
            return Err(ApiError::invalid(format!(
                "Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: {k}"
            )));
        }
        let mut chars = k.chars();
        let valid =
            chars.next().is_some_and(|c| c.is_ascii_alphabetic()) && k.len() >= 2 && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(ApiError::validation(
                k,
                "environment.variables",
                "Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+",
            ));
        }
        total += k.len() + v.len();
    }
    if total > MAX_ENV_BYTES {
        return Err(ApiError::invalid(format!(
            "Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: {total} bytes"
        )));
    }
    Ok(())
}

/// Used where a request names an unknown field of the wrong type, and similar.
pub fn malformed(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequestContent, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert!(memory(128).is_ok() && memory(10240).is_ok());
        assert_eq!(memory(127).unwrap_err().code, ErrorCode::Validation);
        assert_eq!(memory(10241).unwrap_err().code, ErrorCode::Validation);
        assert!(timeout(1).is_ok() && timeout(900).is_ok());
        assert!(timeout(0).is_err() && timeout(901).is_err());
        assert!(ephemeral_storage(511).is_err() && ephemeral_storage(512).is_ok());
    }

    #[test]
    fn env_rules() {
        let mut v = BTreeMap::new();
        v.insert("GOOD_NAME".to_string(), "x".to_string());
        environment(&v).unwrap();
        v.insert("AWS_REGION".to_string(), "x".to_string());
        assert_eq!(environment(&v).unwrap_err().code, ErrorCode::InvalidParameterValue);
        let mut v = BTreeMap::new();
        v.insert("1BAD".to_string(), "x".to_string());
        assert_eq!(environment(&v).unwrap_err().code, ErrorCode::Validation);
        let mut v = BTreeMap::new();
        v.insert("BIG".to_string(), "x".repeat(4100));
        assert_eq!(environment(&v).unwrap_err().code, ErrorCode::InvalidParameterValue);
    }

    #[test]
    fn roles() {
        role("arn:aws:iam::000000000000:role/lambda-role").unwrap();
        assert!(role("arn:aws:iam::123:role/x").is_err());
        assert!(role("nope").is_err());
    }

    #[test]
    fn runtimes() {
        runtime("python3.12").unwrap();
        assert_eq!(runtime("java21").unwrap_err().code, ErrorCode::InvalidParameterValue);
        let e = runtime("cobol").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameterValue);
        assert!(
            e.message.starts_with("Value cobol at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: ["),
            "{e}"
        );
        assert!(e.message.ends_with("] or be a valid ARN"), "{e}");
    }
}

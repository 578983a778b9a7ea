//! Provisioned concurrency: the stored configuration of a version or alias, and AWS's rules
//! for where it may go and how much of the account it may claim. Pure, so the rules are
//! unit-tested without a server.

use serde::{Deserialize, Serialize};

use crate::arn::Qualifier;
use crate::error::ApiError;
use crate::function::LATEST;

/// AWS keeps at least this much of the account's concurrency unreserved.
pub const MIN_UNRESERVED: u32 = 100;

/// One PutProvisionedConcurrencyConfig, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvisionedConfig {
    pub function: String,
    /// A version number or an alias name, never `$LATEST`.
    pub qualifier: String,
    pub requested: u32,
    pub last_modified_ms: i64,
}

/// The allocation's state, as GetProvisionedConcurrencyConfig reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvisionedStatus {
    InProgress,
    Ready,
    Failed,
}

impl ProvisionedStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ProvisionedStatus::InProgress => "IN_PROGRESS",
            ProvisionedStatus::Ready => "READY",
            ProvisionedStatus::Failed => "FAILED",
        }
    }

    /// AWS's `StatusReason` (only a failed allocation has one; whatever the init error).
    pub fn reason(self) -> Option<&'static str> {
        (self == ProvisionedStatus::Failed).then_some("FUNCTION_ERROR_INIT_FAILURE")
    }
}

/// AWS's `LastModified` for these configs has no fraction: `2019-12-31T20:28:49+0000`.
pub fn format_last_modified(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis).unwrap_or_default().format("%Y-%m-%dT%H:%M:%S+0000").to_string()
}

/// Which operation names the qualifier: Put words its `$LATEST` refusal differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Put,
    GetOrDelete,
}

/// The qualifier a config is addressed by: required, and a version or alias.
pub fn qualifier(q: Option<&Qualifier>, op: Op) -> Result<&str, ApiError> {
    let q = match q {
        None => {
            return Err(ApiError::missing("qualifier"));
        }
        Some(q) => q.as_str(),
    };
    if q == LATEST {
        return Err(ApiError::invalid(match op {
            Op::Put => "Provisioned Concurrency Configs cannot be applied to unpublished function versions.",
            Op::GetOrDelete => "The function resource provided must be an alias or a published version.",
        }));
    }
    Ok(q)
}

/// What the account and the function already claim, apart from the config being set.
#[derive(Debug, Clone, Copy, Default)]
pub struct Claims {
    /// The account's concurrency limit.
    pub account_limit: u32,
    /// All functions' reserved concurrency.
    pub reserved_total: u32,
    /// Provisioned concurrency of functions without a reservation, except this config.
    pub provisioned_unreserved: u32,
    /// This function's reserved concurrency.
    pub function_reserved: Option<u32>,
    /// This function's other provisioned configs.
    pub function_provisioned: u32,
}

impl Claims {
    /// Concurrency left to on-demand invocations of functions without a reservation.
    pub fn unreserved(&self) -> u32 {
        self.account_limit.saturating_sub(self.reserved_total).saturating_sub(self.provisioned_unreserved)
    }
}

/// AWS's limits on `requested`: within the function's reservation if it has one, else out
/// of the unreserved pool while leaving [`MIN_UNRESERVED`] of it.
pub fn check_limits(requested: u32, c: &Claims) -> Result<(), ApiError> {
    if let Some(reserved) = c.function_reserved {
        if c.function_provisioned.saturating_add(requested) > reserved {
            return Err(ApiError::invalid(
                "Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function",
            ));
        }
        return Ok(());
    }
    if requested > c.account_limit {
        return Err(ApiError::invalid(format!(
            "Specified ConcurrentExecutions for function is greater than account's unreserved concurrency [{}].",
            c.account_limit
        )));
    }
    if c.unreserved().saturating_sub(requested) < MIN_UNRESERVED || c.unreserved() < requested {
        return Err(ApiError::invalid(format!(
            "Specified ConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [{MIN_UNRESERVED}]."
        )));
    }
    Ok(())
}

/// How `requested` environments are spread over an alias's versions: the additional
/// version gets its weight's share (rounded), the primary the rest; versions with none
/// are left out.
pub fn split(requested: u32, primary: &str, additional: Option<(&str, f64)>) -> Vec<(String, u32)> {
    let extra = additional.map(|(v, w)| (v, (f64::from(requested) * w.clamp(0.0, 1.0)).round() as u32));
    let mut out = Vec::new();
    let rest = requested - extra.map_or(0, |(_, n)| n);
    if rest > 0 {
        out.push((primary.to_string(), rest));
    }
    if let Some((v, n)) = extra.filter(|(_, n)| *n > 0) {
        out.push((v.to_string(), n));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    fn claims(reserved_total: u32, provisioned_unreserved: u32, function_reserved: Option<u32>, function_provisioned: u32) -> Claims {
        Claims { account_limit: 1000, reserved_total, provisioned_unreserved, function_reserved, function_provisioned }
    }

    fn check(requested: u32, c: Claims, expected: Result<(), &str>) {
        let got = check_limits(requested, &c).map_err(|e| {
            assert_eq!(e.code, ErrorCode::InvalidParameterValue);
            e.message
        });
        assert_eq!(got.as_ref().map_err(|m| m.as_str()), expected.as_ref().map_err(|m| *m), "requested {requested} with {c:?}");
    }

    #[test]
    fn limits() {
        const RESERVED: &str = "Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function";
        const MINIMUM: &str = "Specified ConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [100].";
        // Within the function's reservation, counting its other configs.
        check(5, claims(5, 0, Some(5), 0), Ok(()));
        check(3, claims(5, 0, Some(5), 2), Ok(()));
        check(4, claims(5, 0, Some(5), 2), Err(RESERVED));
        // A reservation-less function draws on the unreserved pool and must leave 100 of it.
        check(900, claims(0, 0, None, 0), Ok(()));
        check(901, claims(0, 0, None, 0), Err(MINIMUM));
        check(400, claims(400, 100, None, 0), Ok(()));
        check(401, claims(400, 100, None, 0), Err(MINIMUM));
        check(
            1001,
            claims(0, 0, None, 0),
            Err("Specified ConcurrentExecutions for function is greater than account's unreserved concurrency [1000]."),
        );
        assert_eq!(claims(400, 100, None, 0).unreserved(), 500);
    }

    #[test]
    fn qualifiers() {
        let latest = Qualifier::Latest;
        let one = Qualifier::Named("1".into());
        assert_eq!(qualifier(Some(&one), Op::Put).unwrap(), "1");
        let e = qualifier(Some(&latest), Op::Put).unwrap_err();
        assert_eq!(e.message, "Provisioned Concurrency Configs cannot be applied to unpublished function versions.");
        let e = qualifier(Some(&latest), Op::GetOrDelete).unwrap_err();
        assert_eq!(e.message, "The function resource provided must be an alias or a published version.");
        let e = qualifier(None, Op::GetOrDelete).unwrap_err();
        assert_eq!(e.code, ErrorCode::Validation);
        assert_eq!(
            e.message,
            "1 validation error detected: Value null at 'qualifier' failed to satisfy constraint: Member must not be null"
        );
    }

    #[test]
    fn weighted_split() {
        assert_eq!(split(4, "1", None), vec![("1".to_string(), 4)]);
        assert_eq!(split(10, "1", Some(("2", 0.25))), vec![("1".to_string(), 7), ("2".to_string(), 3)]);
        assert_eq!(split(1, "1", Some(("2", 0.1))), vec![("1".to_string(), 1)]);
        assert_eq!(split(2, "1", Some(("2", 1.0))), vec![("2".to_string(), 2)]);
    }

    #[test]
    fn last_modified_has_no_fraction() {
        assert_eq!(format_last_modified(1_577_824_129_123), "2019-12-31T20:28:49+0000");
    }
}

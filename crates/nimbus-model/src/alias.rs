//! Aliases: named pointers at a function version, at `$LATEST`, or (beyond AWS) at another
//! alias, optionally sending a share of invocations to a second version. Resolution is pure
//! so the invoke path can run it on its in-memory view.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::function::LATEST;

/// How deep alias → alias links may go; deeper chains are refused when they are made.
pub const MAX_ALIAS_CHAIN: usize = 4;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AliasConfig {
    pub function_name: String,
    pub name: String,
    /// A version number, `$LATEST`, or the name of another alias of the same function.
    pub function_version: String,
    #[serde(default)]
    pub description: String,
    /// A second version and the share (0–1) of invocations it receives.
    #[serde(default)]
    pub additional_version: Option<(String, f64)>,
    pub revision_id: String,
}

/// What an alias target names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target<'a> {
    Latest,
    Version(&'a str),
    Alias(&'a str),
}

pub fn is_version_number(s: &str) -> bool {
    !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit())
}

pub fn target(s: &str) -> Target<'_> {
    if s == LATEST {
        Target::Latest
    } else if is_version_number(s) {
        Target::Version(s)
    } else {
        Target::Alias(s)
    }
}

/// AWS's alias name rule: `(?!^[0-9]+$)([a-zA-Z0-9-_]+)`, 1–128 characters.
pub fn validate_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !is_version_number(name);
    if !ok {
        return Err(ApiError::validation(name, "name", "Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)"));
    }
    Ok(())
}

/// Checks a routing config: one additional version, weight within 0–1, both versions
/// published and different.
pub fn validate_routing(primary: &str, weights: &BTreeMap<String, f64>) -> Result<Option<(String, f64)>, ApiError> {
    if weights.is_empty() {
        return Ok(None);
    }
    if weights.len() > 1 {
        return Err(ApiError::invalid("Number of items in AdditionalVersionWeights cannot be greater than 1"));
    }
    let (version, weight) = weights.iter().next().expect("one entry");
    if !(0.0..=1.0).contains(weight) || weight.is_nan() {
        return Err(ApiError::validation(
            &weight.to_string(),
            "routingConfig.additionalVersionWeights",
            "Member must have value between 0.0 and 1.0",
        ));
    }
    if primary == LATEST || version == LATEST {
        return Err(ApiError::invalid("$LATEST is not supported for an alias pointing to more than 1 version"));
    }
    if !is_version_number(primary) || !is_version_number(version) {
        return Err(ApiError::invalid("An alias with a routing configuration must point at published versions"));
    }
    if version == primary {
        return Err(ApiError::invalid(format!(
            "Invalid function version {version}. Function version {version} is already included in routing configuration."
        )));
    }
    Ok(Some((version.clone(), *weight)))
}

/// Follows alias links from `start` until a version or `$LATEST`, choosing between an
/// alias's two versions with `roll` (uniform in [0, 1)). Errors name a missing alias, a
/// cycle, or a chain deeper than [`MAX_ALIAS_CHAIN`].
pub fn resolve<'a>(start: &'a AliasConfig, lookup: impl Fn(&str) -> Option<&'a AliasConfig>, roll: f64) -> Result<String, ApiError> {
    let mut alias = start;
    let mut seen: Vec<&str> = vec![&start.name];
    loop {
        if let Some((version, weight)) = &alias.additional_version {
            if roll < *weight {
                return Ok(version.clone());
            }
        }
        match target(&alias.function_version) {
            Target::Latest => return Ok(LATEST.to_string()),
            Target::Version(v) => return Ok(v.to_string()),
            Target::Alias(next) => {
                if seen.contains(&next) {
                    return Err(ApiError::invalid(format!("Alias {} forms a cycle: {} -> {next}", start.name, seen.join(" -> "))));
                }
                if seen.len() > MAX_ALIAS_CHAIN {
                    return Err(ApiError::invalid(format!(
                        "Alias {} is more than {MAX_ALIAS_CHAIN} links away from a version",
                        start.name
                    )));
                }
                alias = lookup(next).ok_or_else(|| ApiError::not_found(format!("Alias not found: {next}")))?;
                seen.push(&alias.name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    fn alias(name: &str, to: &str, extra: Option<(&str, f64)>) -> AliasConfig {
        AliasConfig {
            function_name: "f".into(),
            name: name.into(),
            function_version: to.into(),
            description: String::new(),
            additional_version: extra.map(|(v, w)| (v.to_string(), w)),
            revision_id: "r".into(),
        }
    }

    fn check(aliases: &[AliasConfig], start: &str, roll: f64) -> Result<String, ApiError> {
        let s = aliases.iter().find(|a| a.name == start).unwrap();
        resolve(s, |n| aliases.iter().find(|a| a.name == n), roll)
    }

    #[test]
    fn chains() {
        let a = [alias("dev", "$LATEST", None), alias("qa", "dev", None), alias("prod", "3", None), alias("x", "qa", None)];
        assert_eq!(check(&a, "dev", 0.5).unwrap(), "$LATEST");
        assert_eq!(check(&a, "qa", 0.5).unwrap(), "$LATEST");
        assert_eq!(check(&a, "x", 0.5).unwrap(), "$LATEST");
        assert_eq!(check(&a, "prod", 0.5).unwrap(), "3");
    }

    #[test]
    fn cycles_depth_and_missing() {
        let a = [alias("a", "b", None), alias("b", "a", None)];
        assert_eq!(check(&a, "a", 0.0).unwrap_err().code, ErrorCode::InvalidParameterValue);
        let deep: Vec<_> =
            (0..8).map(|i| alias(&format!("l{i}"), &if i == 7 { "1".to_string() } else { format!("l{}", i + 1) }, None)).collect();
        check(&deep, "l0", 0.0).unwrap_err();
        check(&deep, "l4", 0.0).unwrap();
        let a = [alias("a", "gone", None)];
        assert_eq!(check(&a, "a", 0.0).unwrap_err().code, ErrorCode::ResourceNotFound);
    }

    #[test]
    fn weights() {
        let a = [alias("canary", "1", Some(("2", 0.25)))];
        assert_eq!(check(&a, "canary", 0.1).unwrap(), "2");
        assert_eq!(check(&a, "canary", 0.3).unwrap(), "1");
        let w = |v: &str, x: f64| BTreeMap::from([(v.to_string(), x)]);
        validate_routing("1", &w("2", 0.5)).unwrap();
        assert_eq!(validate_routing("1", &w("2", 1.5)).unwrap_err().code, ErrorCode::Validation);
        assert_eq!(validate_routing("$LATEST", &w("2", 0.5)).unwrap_err().code, ErrorCode::InvalidParameterValue);
        validate_routing("1", &w("1", 0.5)).unwrap_err();
    }

    #[test]
    fn names() {
        validate_name("prod").unwrap();
        assert!(validate_name("123").is_err());
        assert!(validate_name("a b").is_err());
        validate_name("v1").unwrap();
    }
}

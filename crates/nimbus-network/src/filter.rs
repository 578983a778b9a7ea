//! Describe* filters as EC2 applies them: every filter must match, a filter matches when any
//! of its values matches any of the object's values for that name, values may hold `*` and
//! `?` wildcards, and `tag:<key>`, `tag-key` and `tag-value` read the object's tags.

use serde::Deserialize;

use crate::store::Tag;
use crate::NetworkError;

/// One `Filter.N` of a Describe* call.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Filter {
    pub name: Option<String>,
    #[serde(default)]
    pub values: Vec<String>,
}

/// Refuses a filter whose name is not one of `known` (nor a tag filter), whether or not
/// there is anything to filter.
pub(crate) fn check_names(filters: &[Filter], known: &[&str]) -> Result<(), NetworkError> {
    for f in filters {
        let name = f.name.as_deref().unwrap_or_default();
        if !(name.starts_with("tag:") || name == "tag-key" || name == "tag-value" || known.contains(&name)) {
            return Err(NetworkError::InvalidParameterValue(format!("The filter '{name}' is invalid")));
        }
    }
    Ok(())
}

/// Whether an object passes `filters`. `field(name)` gives the object's values for a filter
/// name it knows (None: the name is not a filter of this kind of object).
pub(crate) fn passes(filters: &[Filter], tags: &[Tag], field: impl Fn(&str) -> Option<Vec<String>>) -> Result<bool, NetworkError> {
    for f in filters {
        let name = f.name.as_deref().unwrap_or_default();
        let values: Vec<String> = if let Some(key) = name.strip_prefix("tag:") {
            tags.iter().filter(|t| t.key == key).map(|t| t.value.clone()).collect()
        } else if name == "tag-key" {
            tags.iter().map(|t| t.key.clone()).collect()
        } else if name == "tag-value" {
            tags.iter().map(|t| t.value.clone()).collect()
        } else {
            field(name).ok_or_else(|| NetworkError::InvalidParameterValue(format!("The filter '{name}' is invalid")))?
        };
        if !f.values.iter().any(|pattern| values.iter().any(|v| glob(pattern.as_bytes(), v.as_bytes()))) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `*` (any run of characters) and `?` (one character); `\` escapes either.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|i| glob(rest, &text[i..])),
        Some((b'?', rest)) => !text.is_empty() && glob(rest, &text[1..]),
        Some((b'\\', rest)) if !rest.is_empty() => text.first() == rest.first() && glob(&rest[1..], &text[1..]),
        Some((c, rest)) => text.first() == Some(c) && glob(rest, &text[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        let g = |p: &str, t: &str| glob(p.as_bytes(), t.as_bytes());
        assert!(g("vpc-*", "vpc-123"));
        assert!(g("*", ""));
        assert!(g("a?c", "abc"));
        assert!(!g("a?c", "ac"));
        assert!(g("a\\*", "a*"));
        assert!(!g("a\\*", "ab"));
        assert!(!g("web", "web2"));
    }

    #[test]
    fn filters_and_tags() {
        let tags = vec![Tag { key: "Name".into(), value: "prod-a".into() }];
        let f = |name: &str, values: &[&str]| Filter { name: Some(name.into()), values: values.iter().map(|v| v.to_string()).collect() };
        let field = |n: &str| (n == "vpc-id").then(|| vec!["vpc-1".to_string()]);
        assert!(passes(&[f("tag:Name", &["prod-*"]), f("vpc-id", &["vpc-2", "vpc-1"])], &tags, field).unwrap());
        assert!(!passes(&[f("tag:Name", &["dev"])], &tags, field).unwrap());
        assert!(passes(&[f("tag-key", &["Name"])], &tags, field).unwrap());
        assert_eq!(passes(&[f("nope", &["x"])], &tags, field).unwrap_err().to_string(), "The filter 'nope' is invalid");
    }
}

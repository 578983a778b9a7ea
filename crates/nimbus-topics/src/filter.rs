//! Subscription filter policies: SNS's dialect of AWS's rule language (`nimbus-rules`) bound
//! to SNS messages, so a subscription receives only the messages it asked for. Here live what
//! is SNS's own: the parameter's error prefix, message attributes as the values a policy sees,
//! and which bodies a body-scoped policy can match.

use std::collections::BTreeMap;

use nimbus_rules::{Dialect, Pattern, Scalar};
use serde_json::Value;

use crate::error::TopicError;
use crate::message::MessageAttribute;

pub use nimbus_rules::Scope;

/// A parsed, validated filter policy.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterPolicy {
    scope: Scope,
    pattern: Pattern,
}

impl FilterPolicy {
    /// Parses and validates `text`. `on_subscribe` selects AWS's message prefix (Subscribe
    /// reports attribute errors as `Attributes Reason: …`).
    pub fn parse(text: &str, scope: Scope, on_subscribe: bool) -> Result<FilterPolicy, TopicError> {
        let prefix = if on_subscribe { "Invalid parameter: Attributes Reason: " } else { "Invalid parameter: " };
        let pattern =
            Pattern::parse(Dialect::FilterPolicy(scope), text).map_err(|e| TopicError::InvalidParameter(format!("{prefix}{e}")))?;
        Ok(FilterPolicy { scope, pattern })
    }

    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// Whether a message with these attributes and this body passes the policy: a body-scoped
    /// policy that names anything needs a body that is a JSON object.
    pub fn matches(&self, attributes: &BTreeMap<String, MessageAttribute>, body: &str) -> bool {
        match self.scope {
            Scope::MessageAttributes => self.pattern.matches_flat(&|name: &str| attributes.get(name).map(attribute_values)),
            Scope::MessageBody => {
                if self.pattern.is_empty() {
                    return true;
                }
                match serde_json::from_str::<Value>(body) {
                    Ok(doc @ Value::Object(_)) => self.pattern.matches(&doc),
                    _ => false,
                }
            }
        }
    }
}

/// A message attribute's values as the policy sees them: `Number` types as numbers,
/// `String.Array` as its JSON array's scalar elements, other `String` types as strings;
/// `Binary` attributes exist but have no value to match.
fn attribute_values(attr: &MessageAttribute) -> Vec<Scalar> {
    let text = attr.string_value.as_deref();
    if attr.data_type.starts_with("String.Array") {
        match text.and_then(|t| serde_json::from_str::<Value>(t).ok()) {
            Some(Value::Array(items)) => items.iter().filter_map(Scalar::from_json).collect(),
            _ => Vec::new(),
        }
    } else if attr.data_type.starts_with("Number") {
        text.and_then(|t| t.trim().parse::<f64>().ok()).map(Scalar::Num).into_iter().collect()
    } else if attr.data_type.starts_with("String") {
        text.map(|t| Scalar::Str(t.to_string())).into_iter().collect()
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's documented example message (sns-subscription-filter-policies).
    fn attributes() -> BTreeMap<String, MessageAttribute> {
        let mut a = BTreeMap::new();
        a.insert("customer_interests".into(), MessageAttribute::string("String.Array", r#"["soccer", "rugby", "hockey"]"#));
        a.insert("store".into(), MessageAttribute::string("String", "example_corp"));
        a.insert("event".into(), MessageAttribute::string("String", "order_placed"));
        a.insert("price_usd".into(), MessageAttribute::string("Number", "210.75"));
        a.insert("source_ip".into(), MessageAttribute::string("String", "10.0.0.255"));
        a.insert("blob".into(), MessageAttribute::binary("Binary", b"\x01\x02"));
        a
    }

    const BODY: &str = r#"{"store":"example_corp","event":"order_placed","customer":{"interests":["soccer","rugby"],"age":35,"vip":true,"nick":null},
        "items":[{"sku":"a","qty":2},{"sku":"b","qty":5}]}"#;

    fn check(scope: Scope, policy: &str, expected: bool) {
        let p = FilterPolicy::parse(policy, scope, false).unwrap_or_else(|e| panic!("{policy}: {e}"));
        assert_eq!(p.matches(&attributes(), BODY), expected, "{scope:?} {policy}");
    }

    #[test]
    fn attribute_policies() {
        let table: &[(&str, bool)] = &[
            // AWS's example policy accepting the example message.
            (
                r#"{"store":["example_corp"],"event":[{"anything-but":"order_cancelled"}],"customer_interests":["rugby","football","baseball"],"price_usd":[{"numeric":[">=",100]}]}"#,
                true,
            ),
            (r#"{"store":["example_corp"],"price_usd":[{"numeric":["<",100]}]}"#, false),
            (r#"{"store":["other_corp","example_corp"]}"#, true),
            (r#"{"store":["Example_corp"]}"#, false),
            (r#"{"store":[{"equals-ignore-case":"EXAMPLE_CORP"}]}"#, true),
            (r#"{"customer_interests":["rugby"]}"#, true),
            (r#"{"customer_interests":["baseball"]}"#, false),
            (r#"{"customer_interests":[{"prefix":"hock"}]}"#, true),
            (r#"{"event":[{"prefix":"order_"}]}"#, true),
            (r#"{"event":[{"suffix":"_placed"}]}"#, true),
            (r#"{"event":[{"suffix":"_cancelled"}]}"#, false),
            (r#"{"event":[{"anything-but":["order_cancelled","order_failed"]}]}"#, true),
            (r#"{"event":[{"anything-but":["order_placed"]}]}"#, false),
            (r#"{"event":[{"anything-but":{"prefix":"order"}}]}"#, false),
            (r#"{"event":[{"anything-but":{"prefix":"refund"}}]}"#, true),
            (r#"{"event":[{"anything-but":{"suffix":"placed"}}]}"#, false),
            (r#"{"missing":[{"anything-but":"x"}]}"#, false),
            (r#"{"price_usd":[210.75]}"#, true),
            (r#"{"price_usd":[210.7]}"#, false),
            (r#"{"price_usd":["210.75"]}"#, false),
            (r#"{"price_usd":[{"numeric":["=",210.75]}]}"#, true),
            (r#"{"price_usd":[{"numeric":[">",0,"<=",210.75]}]}"#, true),
            (r#"{"price_usd":[{"numeric":[">",0,"<",210.75]}]}"#, false),
            (r#"{"price_usd":[{"anything-but":[100,200]}]}"#, true),
            (r#"{"price_usd":[{"anything-but":[210.75]}]}"#, false),
            (r#"{"store":[{"numeric":[">",0]}]}"#, false),
            (r#"{"store":[{"exists":true}]}"#, true),
            (r#"{"store":[{"exists":false}]}"#, false),
            (r#"{"missing":[{"exists":false}]}"#, true),
            (r#"{"missing":[{"exists":true}]}"#, false),
            (r#"{"missing":["x"]}"#, false),
            (r#"{"blob":[{"exists":true}]}"#, true),
            (r#"{"missing":["x",{"exists":false}]}"#, true),
            (r#"{"source_ip":[{"cidr":"10.0.0.0/24"}]}"#, true),
            (r#"{"source_ip":[{"cidr":"10.0.1.0/24"}]}"#, false),
            (r#"{"$or":[{"store":["nope"]},{"event":["order_placed"]}]}"#, true),
            (r#"{"$or":[{"store":["nope"]},{"event":["nope"]}]}"#, false),
            (r#"{"store":["nope"],"$or":[{"store":["example_corp"]},{"event":["order_placed"]}]}"#, false),
            (r#"{"store":["example_corp"],"$or":[{"price_usd":[{"numeric":[">",500]}]},{"customer_interests":["soccer"]}]}"#, true),
            ("{}", true),
        ];
        for (policy, expected) in table {
            check(Scope::MessageAttributes, policy, *expected);
        }
    }

    #[test]
    fn body_policies() {
        let table: &[(&str, bool)] = &[
            (r#"{"store":["example_corp"]}"#, true),
            (r#"{"customer":{"interests":["rugby"]}}"#, true),
            (r#"{"customer":{"interests":["golf"]}}"#, false),
            (r#"{"customer":{"age":[{"numeric":[">",30]}]}}"#, true),
            (r#"{"customer":{"age":[35]}}"#, true),
            (r#"{"customer":{"age":["35"]}}"#, false),
            (r#"{"customer":{"vip":[true]}}"#, true),
            (r#"{"customer":{"nick":[null]}}"#, true),
            (r#"{"customer":{"name":[{"exists":false}]}}"#, true),
            (r#"{"customer":{"age":[{"exists":true}]}}"#, true),
            (r#"{"customer":[{"exists":true}]}"#, false),
            (r#"{"items":{"sku":["b"]}}"#, true),
            (r#"{"items":{"qty":[{"numeric":[">",10]}]}}"#, false),
            (r#"{"items":{"sku":["a"],"qty":[5]}}"#, true),
            (r#"{"$or":[{"customer":{"age":[1]}},{"items":{"sku":["a"]}}]}"#, true),
            (r#"{"customer":{"$or":[{"age":[1]},{"interests":[{"prefix":"rug"}]}]}}"#, true),
            (r#"{"event":[{"anything-but":"order_placed"}]}"#, false),
        ];
        for (policy, expected) in table {
            check(Scope::MessageBody, policy, *expected);
        }
        let p = FilterPolicy::parse(r#"{"a":["b"]}"#, Scope::MessageBody, false).expect("policy");
        assert!(!p.matches(&BTreeMap::new(), "not json"));
        assert!(!p.matches(&BTreeMap::new(), "[1]"));
        assert!(p.matches(&BTreeMap::new(), r#"{"a":"b"}"#));
    }

    #[test]
    fn invalid_policies_have_aws_messages() {
        let table: &[(Scope, &str, &str)] = &[
            (Scope::MessageAttributes, "not json", "FilterPolicy: failed to parse JSON."),
            (Scope::MessageAttributes, r#"{"a":"x"}"#, "FilterPolicy: \"a\" must be an object or an array"),
            (Scope::MessageAttributes, r#"{"a":[]}"#, "FilterPolicy: Empty arrays are not allowed"),
            (
                Scope::MessageAttributes,
                r#"{"a":{"b":["x"]}}"#,
                "Filter policy scope MessageAttributes does not support nested filter policy",
            ),
            (Scope::MessageAttributes, r#"{"a":[{"numeric":["<",1,">",2]}]}"#, "FilterPolicy: Too many elements in numeric expression"),
            (Scope::MessageAttributes, r#"{"a":[{"numeric":[">",5,"<",1]}]}"#, "FilterPolicy: Bottom must be less than top"),
            (Scope::MessageAttributes, r#"{"a":[{"numeric":["~",1]}]}"#, "FilterPolicy: Unrecognized numeric range operator: ~"),
            (Scope::MessageAttributes, r#"{"a":[{"numeric":["=","x"]}]}"#, "FilterPolicy: Value of equals must be numeric"),
            (Scope::MessageAttributes, r#"{"a":[{"foo":1}]}"#, "FilterPolicy: Unrecognized match type foo"),
            (Scope::MessageAttributes, r#"{"a":[{"prefix":1}]}"#, "FilterPolicy: prefix match pattern must be a string"),
            (Scope::MessageAttributes, r#"{"a":[{"exists":"yes"}]}"#, "FilterPolicy: exists match pattern must be either true or false."),
            (Scope::MessageAttributes, r#"{"a":[{"prefix":"x","suffix":"y"}]}"#, "FilterPolicy: Only one key allowed in match expression"),
            (Scope::MessageAttributes, r#"{"a":[{"anything-but":{"foo":"x"}}]}"#, "FilterPolicy: Unsupported anything-but pattern: foo"),
            (Scope::MessageAttributes, r#"{"a":[["x"]]}"#, "FilterPolicy: Match value must be String, number, true, false, or null"),
            (
                Scope::MessageAttributes,
                r#"{"a":["1"],"b":["1"],"c":["1"],"d":["1"],"e":["1"],"f":["1"]}"#,
                "FilterPolicy: Filter policy can not have more than 5 keys",
            ),
            (Scope::MessageBody, r#"{"a":[{"cidr":"10.0.0.0"}]}"#, "FilterPolicy: Malformed CIDR, one '/' required"),
        ];
        for (scope, policy, message) in table {
            let e = FilterPolicy::parse(policy, *scope, false).expect_err(policy);
            assert_eq!(e, TopicError::InvalidParameter(format!("Invalid parameter: {message}")), "{policy}");
            let e = FilterPolicy::parse(policy, *scope, true).expect_err(policy);
            assert_eq!(e, TopicError::InvalidParameter(format!("Invalid parameter: Attributes Reason: {message}")), "{policy}");
        }
        let many: Vec<String> = (0..151).map(|i| format!("\"v{i}\"")).collect();
        let complex = format!(r#"{{"a":[{}]}}"#, many.join(","));
        FilterPolicy::parse(&complex, Scope::MessageAttributes, false).unwrap_err();
    }
}

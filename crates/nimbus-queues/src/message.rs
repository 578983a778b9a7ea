//! Messages as SQS defines them: message attributes, AWS's validation rules for bodies and
//! attributes, and the MD5 digests clients check (`MD5OfMessageBody`,
//! `MD5OfMessageAttributes`), computed byte for byte as AWS does.

use std::collections::BTreeMap;

use base64::Engine;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use crate::error::QueueError;

/// One message attribute (user-defined or the `AWSTraceHeader` system attribute).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AttributeValue {
    #[serde(rename = "t")]
    pub data_type: String,
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub string_value: Option<String>,
    #[serde(rename = "b", default, skip_serializing_if = "Option::is_none", with = "nimbus_store::base64_serde::option")]
    pub binary_value: Option<Vec<u8>>,
    #[serde(rename = "sl", default, skip_serializing_if = "Vec::is_empty")]
    pub string_list_values: Vec<String>,
    #[serde(rename = "bl", default, skip_serializing_if = "Vec::is_empty", with = "nimbus_store::base64_serde::list")]
    pub binary_list_values: Vec<Vec<u8>>,
}

impl AttributeValue {
    pub fn string(data_type: &str, value: &str) -> AttributeValue {
        AttributeValue { data_type: data_type.into(), string_value: Some(value.into()), ..Default::default() }
    }

    pub fn binary(data_type: &str, value: &[u8]) -> AttributeValue {
        AttributeValue { data_type: data_type.into(), binary_value: Some(value.to_vec()), ..Default::default() }
    }

    /// Bytes this attribute counts towards the message size limit: name, type and value.
    fn size(&self, name: &str) -> usize {
        name.len()
            + self.data_type.len()
            + self.string_value.as_ref().map_or(0, String::len)
            + self.binary_value.as_ref().map_or(0, Vec::len)
            + self.string_list_values.iter().map(String::len).sum::<usize>()
            + self.binary_list_values.iter().map(Vec::len).sum::<usize>()
    }
}

/// Attributes by name; a `BTreeMap` because AWS's digest walks names in byte order.
pub type MessageAttributes = BTreeMap<String, AttributeValue>;

/// Hex MD5 of a message body (`MD5OfMessageBody`, `MD5OfBody`).
pub fn md5_of_body(body: &str) -> String {
    hex::encode(Md5::digest(body.as_bytes()))
}

/// `MD5OfMessageAttributes`: for each attribute in name order, the name, the data type, a
/// transport byte (1 string, 2 binary, 3 string list, 4 binary list) and the value(s), each
/// string or value preceded by its length as a 4-byte big-endian integer. `None` when there
/// are no attributes (AWS then omits the field).
pub fn md5_of_attributes(attrs: &MessageAttributes) -> Option<String> {
    if attrs.is_empty() {
        return None;
    }
    fn put(h: &mut Md5, bytes: &[u8]) {
        h.update((bytes.len() as u32).to_be_bytes());
        h.update(bytes);
    }
    let mut h = Md5::new();
    for (name, v) in attrs {
        put(&mut h, name.as_bytes());
        put(&mut h, v.data_type.as_bytes());
        if let Some(s) = &v.string_value {
            h.update([1u8]);
            put(&mut h, s.as_bytes());
        } else if let Some(b) = &v.binary_value {
            h.update([2u8]);
            put(&mut h, b);
        } else if !v.string_list_values.is_empty() {
            h.update([3u8]);
            for s in &v.string_list_values {
                put(&mut h, s.as_bytes());
            }
        } else if !v.binary_list_values.is_empty() {
            h.update([4u8]);
            for b in &v.binary_list_values {
                put(&mut h, b);
            }
        }
    }
    Some(hex::encode(h.finalize()))
}

/// The characters SQS accepts in bodies and string values (XML 1.0's).
pub fn is_valid_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

const INVALID_CHARS: &str =
    "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF";

pub fn validate_body(body: &str) -> Result<(), QueueError> {
    if body.is_empty() {
        return Err(QueueError::MissingParameter("The request must contain the parameter MessageBody.".into()));
    }
    if !body.chars().all(is_valid_char) {
        return Err(QueueError::InvalidMessageContents(INVALID_CHARS.into()));
    }
    Ok(())
}

fn valid_attribute_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !name.is_empty()
        && name.len() <= 256
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
        && !lower.starts_with("aws.")
        && !lower.starts_with("amazon.")
}

/// Checks user message attributes as AWS does and returns the bytes they count towards the
/// message size.
pub fn validate_attributes(attrs: &MessageAttributes) -> Result<usize, QueueError> {
    if attrs.len() > 10 {
        return Err(QueueError::invalid(format!("Number of message attributes [{}] exceeds the allowed maximum [10].", attrs.len())));
    }
    let mut size = 0;
    for (name, v) in attrs {
        if name.is_empty() {
            return Err(QueueError::invalid("The request must contain non-empty message attribute name."));
        }
        if !valid_attribute_name(name) {
            return Err(QueueError::invalid(format!(
                "Message (user) attribute name '{name}' is invalid: names can contain alphanumeric characters, hyphens, underscores and periods, cannot start or end with a period or contain consecutive periods, cannot start with AWS. or Amazon., and can be up to 256 characters long."
            )));
        }
        validate_value(name, v, "Message (user) attribute")?;
        size += v.size(name);
    }
    Ok(size)
}

fn validate_value(name: &str, v: &AttributeValue, what: &str) -> Result<(), QueueError> {
    if v.data_type.is_empty() {
        return Err(QueueError::invalid(format!("The message attribute '{name}' must contain non-empty message attribute type.")));
    }
    let base = v.data_type.split('.').next().unwrap_or("");
    let label_ok = v.data_type.len() <= 256
        && v.data_type[base.len()..].chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    if !matches!(base, "String" | "Number" | "Binary") || !label_ok {
        return Err(QueueError::invalid(format!(
            "The type of message (user) attribute '{name}' is invalid. You must use only the following supported type prefixes: Binary, Number, String."
        )));
    }
    let lists = !v.string_list_values.is_empty() || !v.binary_list_values.is_empty();
    if lists {
        return Err(QueueError::UnsupportedOperation(format!("{what} '{name}': list values are not supported (reserved by AWS).")));
    }
    match base {
        "Binary" => {
            if v.binary_value.as_ref().is_none_or(|b| b.is_empty()) {
                return Err(QueueError::invalid(format!("{what} '{name}' must contain a non-empty value of type 'Binary'.")));
            }
        }
        _ => {
            let Some(s) = v.string_value.as_deref().filter(|s| !s.is_empty()) else {
                return Err(QueueError::invalid(format!("{what} '{name}' must contain a non-empty value of type '{base}'.")));
            };
            if !s.chars().all(is_valid_char) {
                return Err(QueueError::InvalidMessageContents(INVALID_CHARS.into()));
            }
            if base == "Number" && !is_number(s) {
                return Err(QueueError::invalid(format!("Could not cast message attribute '{name}' value to number.")));
            }
        }
    }
    Ok(())
}

/// SQS numbers: an optional sign, digits with an optional fraction, an optional exponent.
fn is_number(s: &str) -> bool {
    let s = s.trim();
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |x: &str| x.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok = (!int.is_empty() || !frac.is_empty()) && digits(int) && digits(frac);
    let exp_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exp_ok && s.len() <= 40
}

/// The one system attribute a sender may set: `AWSTraceHeader` (a String).
pub fn validate_system_attributes(attrs: &MessageAttributes) -> Result<usize, QueueError> {
    let mut size = 0;
    for (name, v) in attrs {
        if name != "AWSTraceHeader" {
            return Err(QueueError::invalid(format!("Message system attribute name '{name}' is invalid.")));
        }
        if v.data_type != "String" {
            return Err(QueueError::invalid(format!("The message system attribute '{name}' must be of type 'String'.")));
        }
        validate_value(name, v, "Message system attribute")?;
        size += v.size(name);
    }
    Ok(size)
}

/// The subset of `attrs` a ReceiveMessage asked for: `All`, `.*`, exact names, or
/// `prefix.*`.
pub fn select_attributes(attrs: &MessageAttributes, requested: &[String]) -> MessageAttributes {
    if requested.is_empty() {
        return MessageAttributes::new();
    }
    let all = requested.iter().any(|r| r == "All" || r == ".*");
    attrs
        .iter()
        .filter(|(name, _)| {
            all || requested.iter().any(|r| match r.strip_suffix(".*") {
                Some(prefix) => name.starts_with(&format!("{prefix}.")),
                None => r == *name,
            })
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Decodes base64 the way AWS's JSON and query protocols carry binary values.
pub fn decode_binary(b64: &str) -> Result<Vec<u8>, QueueError> {
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| QueueError::invalid("Binary attribute values must be base64-encoded."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(items: &[(&str, AttributeValue)]) -> MessageAttributes {
        items.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    fn check(items: &[(&str, AttributeValue)], expected: &str) {
        assert_eq!(md5_of_attributes(&attrs(items)).as_deref(), Some(expected));
    }

    fn check_ends(items: &[(&str, AttributeValue)], head: &str, tail: &str) {
        let got = md5_of_attributes(&attrs(items)).unwrap_or_default();
        assert!(got.starts_with(head) && got.ends_with(tail), "{got} is not {head}...{tail}");
    }

    /// Values computed by AWS: the AWS SDKs' own checksum tests (two strings; one binary).
    #[test]
    fn attribute_md5_matches_aws_sdk_samples() {
        check(
            &[
                ("test_attribute_name_2", AttributeValue::string("String", "test_attribute_value_2")),
                ("test_attribute_name_1", AttributeValue::string("String", "test_attribute_value_1")),
            ],
            "d53f3b558fe951154770f25cb63dbba9",
        );
        check(&[("test_attribute_name", AttributeValue::binary("Binary", b"test_attribute_value"))], "23f6bd27ea87aab7dfeadcc9aebee495");
        check(&[("SellerName", AttributeValue::string("String", "Example Store"))], "cd28f3b68aeee4b2eac9c66f2f694b58");
    }

    /// Values returned by real SQS in the aws CLI's documented examples (only the first and
    /// last 8 hex digits are published).
    #[test]
    fn attribute_md5_matches_aws_cli_examples() {
        check_ends(&[("PostalCode", AttributeValue::string("String", "ABC123"))], "b8e89563", "e088e74f");
        check_ends(
            &[("PostalCode", AttributeValue::string("String", "ABC123")), ("City", AttributeValue::string("String", "Any City"))],
            "9424c491",
            "26bc3ae7",
        );
        let fuel = |seller: &str, city: &str, postal: &str, price: &str| {
            vec![
                ("SellerName", AttributeValue::string("String", seller)),
                ("City", AttributeValue::string("String", city)),
                ("Region", AttributeValue::string("String", "WA")),
                ("PostalCode", AttributeValue::string("String", postal)),
                ("PricePerGallon", AttributeValue::string("Number", price)),
            ]
        };
        check_ends(&fuel("Example Store", "Any City", "99065", "1.99"), "10809b55", "baf283ef");
        check_ends(&fuel("Example Fuels", "North Town", "99123", "1.87"), "55623928", "ae354a25");
        assert_eq!(md5_of_body("hello"), "5d41402abc4b2a76b9719d911017c592");
    }

    #[test]
    fn no_attributes_no_digest() {
        assert_eq!(md5_of_attributes(&MessageAttributes::new()), None);
    }

    #[test]
    fn validation() {
        assert!(validate_body("").is_err());
        assert!(matches!(validate_body("a\u{1}b"), Err(QueueError::InvalidMessageContents(_))));
        validate_body("ok \u{10FFFF}\t\n").unwrap();
        let ok = attrs(&[("a.b-c_d", AttributeValue::string("Number.float", "-1.5e3"))]);
        assert_eq!(validate_attributes(&ok).unwrap(), 7 + 12 + 6);
        for bad in [
            attrs(&[("AWS.x", AttributeValue::string("String", "v"))]),
            attrs(&[(".x", AttributeValue::string("String", "v"))]),
            attrs(&[("a..b", AttributeValue::string("String", "v"))]),
            attrs(&[("x", AttributeValue::string("Strung", "v"))]),
            attrs(&[("x", AttributeValue::string("Number", "12a"))]),
            attrs(&[("x", AttributeValue::string("String", ""))]),
            attrs(&[("x", AttributeValue { data_type: "Binary".into(), ..Default::default() })]),
        ] {
            assert!(validate_attributes(&bad).is_err(), "{bad:?}");
        }
        let eleven: MessageAttributes = (0..11).map(|i| (format!("a{i}"), AttributeValue::string("String", "v"))).collect();
        validate_attributes(&eleven).unwrap_err();
    }

    #[test]
    fn selects_attributes() {
        let a = attrs(&[
            ("City", AttributeValue::string("String", "x")),
            ("geo.lat", AttributeValue::string("Number", "1")),
            ("geo.lon", AttributeValue::string("Number", "2")),
        ]);
        let names =
            |r: &[&str]| select_attributes(&a, &r.iter().map(|s| s.to_string()).collect::<Vec<_>>()).into_keys().collect::<Vec<_>>();
        assert_eq!(names(&["All"]).len(), 3);
        assert_eq!(names(&[".*"]).len(), 3);
        assert_eq!(names(&["geo.*"]), vec!["geo.lat", "geo.lon"]);
        assert_eq!(names(&["City", "nope"]), vec!["City"]);
        assert!(names(&[]).is_empty());
    }
}

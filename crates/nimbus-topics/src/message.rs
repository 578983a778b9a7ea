//! Messages as SNS defines them: message attributes and AWS's validation of them, the size
//! limit, `MessageStructure=json`, and the documents subscribers receive (the JSON envelope
//! for SQS and HTTP, the Lambda event, the subscription confirmation), field for field.

use std::collections::BTreeMap;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use nimbus_model::events::{SnsEvent, SnsMessageAttribute, SnsNotification, SnsRecord};

use crate::error::TopicError;

/// Publish's limit on a message: body plus every attribute's name, type and value (256 KiB).
pub const MAX_MESSAGE_BYTES: usize = 262_144;

/// One message attribute.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MessageAttribute {
    #[serde(rename = "t")]
    pub data_type: String,
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub string_value: Option<String>,
    #[serde(rename = "b", default, skip_serializing_if = "Option::is_none", with = "nimbus_store::base64_serde::option")]
    pub binary_value: Option<Vec<u8>>,
}

impl MessageAttribute {
    pub fn string(data_type: &str, value: &str) -> MessageAttribute {
        MessageAttribute { data_type: data_type.into(), string_value: Some(value.into()), binary_value: None }
    }

    pub fn binary(data_type: &str, value: &[u8]) -> MessageAttribute {
        MessageAttribute { data_type: data_type.into(), string_value: None, binary_value: Some(value.to_vec()) }
    }

    fn size(&self, name: &str) -> usize {
        name.len()
            + self.data_type.len()
            + self.string_value.as_ref().map_or(0, String::len)
            + self.binary_value.as_ref().map_or(0, Vec::len)
    }

    /// The value as the envelope and the Lambda event show it (binary as base64).
    pub fn display_value(&self) -> String {
        match (&self.string_value, &self.binary_value) {
            (Some(s), _) => s.clone(),
            (None, Some(b)) => base64::engine::general_purpose::STANDARD.encode(b),
            (None, None) => String::new(),
        }
    }

    /// `String`, `Number`, `Binary` or `String.Array`: the type without its custom suffix.
    fn base_type(&self) -> &str {
        if self.data_type.starts_with("String.Array") {
            "String.Array"
        } else {
            self.data_type.split('.').next().unwrap_or("")
        }
    }
}

/// Attributes by name.
pub type MessageAttributes = BTreeMap<String, MessageAttribute>;

fn invalid_value(msg: impl Into<String>) -> TopicError {
    TopicError::ParameterValueInvalid(msg.into())
}

/// AWS's rules for attribute names: letters, digits, `-`, `_`, `.`; no leading, trailing or
/// doubled dot; at most 256 characters; not reserved (`AWS.`, `Amazon.`).
fn validate_attribute_name(name: &str) -> Result<(), TopicError> {
    if name.is_empty() || name.len() > 256 {
        return Err(invalid_value(format!("Message attribute name '{name}' must be between 1 and 256 characters long.")));
    }
    if name.starts_with('.') {
        return Err(invalid_value("Invalid message attribute name starting with character '.' was found."));
    }
    if name.ends_with('.') {
        return Err(invalid_value("Invalid message attribute name ending with character '.' was found."));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))) {
        return Err(invalid_value(format!(
            "Invalid non-alphanumeric character '#x{:X}' was found in the message attribute name. Can only include alphanumeric characters, hyphens, underscores, or dots.",
            c as u32
        )));
    }
    if name.contains("..") {
        return Err(invalid_value("Message attribute name can not have successive '.' character."));
    }
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("aws.") || lower.starts_with("amazon.") {
        return Err(invalid_value(format!("Message attribute name '{name}' is reserved for use by Amazon.")));
    }
    Ok(())
}

/// Checks every attribute as Publish does.
pub fn validate_attributes(attrs: &MessageAttributes) -> Result<(), TopicError> {
    for (name, a) in attrs {
        validate_attribute_name(name)?;
        let base = a.base_type();
        if !matches!(base, "String" | "Number" | "Binary" | "String.Array") {
            return Err(invalid_value(format!(
                "The message attribute '{name}' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String."
            )));
        }
        let wants_binary = base == "Binary";
        let (field, present) = if wants_binary { ("Binary", a.binary_value.is_some()) } else { ("String", a.string_value.is_some()) };
        if !present {
            if a.string_value.is_none() && a.binary_value.is_none() {
                return Err(invalid_value(format!(
                    "The message attribute '{name}' must contain non-empty message attribute value for message attribute type '{}'.",
                    a.data_type
                )));
            }
            return Err(invalid_value(format!("The message attribute '{name}' with type '{}' must use field '{field}'.", a.data_type)));
        }
        let empty = if wants_binary {
            a.binary_value.as_ref().is_some_and(Vec::is_empty)
        } else {
            a.string_value.as_ref().is_some_and(String::is_empty)
        };
        if empty {
            return Err(invalid_value(format!(
                "The message attribute '{name}' must contain non-empty message attribute value for message attribute type '{}'.",
                a.data_type
            )));
        }
        match base {
            "Number" => {
                let v = a.string_value.as_deref().unwrap_or("");
                if v.trim().parse::<f64>().map(|n| !n.is_finite()).unwrap_or(true) {
                    return Err(invalid_value(format!("Could not cast message attribute '{name}' value to number.")));
                }
            }
            "String.Array" => {
                let v = a.string_value.as_deref().unwrap_or("");
                let ok = matches!(serde_json::from_str::<Value>(v), Ok(Value::Array(items)) if items.iter().all(|i| !i.is_array() && !i.is_object()));
                if !ok {
                    return Err(invalid_value(format!(
                        "The message attribute '{name}' with type 'String.Array' has an invalid value. The value must be a JSON array of strings, numbers, true, false or null."
                    )));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Bytes a message counts against the 256 KiB limit.
pub fn message_size(body: &str, attrs: &MessageAttributes) -> usize {
    body.len() + attrs.iter().map(|(n, a)| a.size(n)).sum::<usize>()
}

/// A message's body: one text for everyone, or (`MessageStructure=json`) one per protocol
/// with a required `default`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Body {
    Text(String),
    PerProtocol(BTreeMap<String, String>),
}

impl Body {
    /// Parses a `MessageStructure=json` message with AWS's checks: a JSON object with a
    /// string `default`; keys with non-string values are ignored.
    pub fn structured(message: &str) -> Result<Body, TopicError> {
        let v: Value =
            serde_json::from_str(message).map_err(|_| TopicError::invalid("Message Structure - JSON message body failed to parse"))?;
        let Value::Object(m) = v else { return Err(TopicError::invalid("Message Structure - JSON message body failed to parse")) };
        let map: BTreeMap<String, String> = m.into_iter().filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_string()))).collect();
        if !map.contains_key("default") {
            return Err(TopicError::invalid("Message Structure - No default entry in JSON message body"));
        }
        Ok(Body::PerProtocol(map))
    }

    /// The text a subscriber of `protocol` receives.
    pub fn for_protocol(&self, protocol: &str) -> &str {
        match self {
            Body::Text(t) => t,
            Body::PerProtocol(m) => m.get(protocol).or_else(|| m.get("default")).map(String::as_str).unwrap_or(""),
        }
    }
}

/// What kind of document a delivery carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum Kind {
    Notification,
    SubscriptionConfirmation { token: String },
}

/// A published message (or confirmation request) as stored until every delivery is done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    #[serde(flatten)]
    pub kind: Kind,
    pub message_id: String,
    pub topic_arn: String,
    pub subject: Option<String>,
    pub body: Body,
    #[serde(default)]
    pub attributes: MessageAttributes,
    /// `2026-01-01T12:00:00.000Z`.
    pub timestamp: String,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
    pub sequence_number: Option<String>,
}

/// Where subscribers are told to confirm and unsubscribe, and where the signing certificate
/// would be.
#[derive(Debug, Clone)]
pub struct Urls {
    /// `http://127.0.0.1:9001`: this server as subscribers reach it.
    pub endpoint: String,
}

impl Urls {
    fn encode(s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b':') {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }

    pub fn unsubscribe(&self, subscription_arn: &str) -> String {
        format!("{}/?Action=Unsubscribe&SubscriptionArn={}", self.endpoint, Self::encode(subscription_arn))
    }

    pub fn subscribe(&self, topic_arn: &str, token: &str) -> String {
        format!("{}/?Action=ConfirmSubscription&TopicArn={}&Token={}", self.endpoint, Self::encode(topic_arn), Self::encode(token))
    }

    pub fn signing_cert(&self) -> String {
        format!("{}/SimpleNotificationService-nimbus.pem", self.endpoint)
    }
}

/// A JSON object with its keys in the order given (AWS's documents list Type first).
fn ordered(fields: Vec<(&str, Value)>) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Value::String(k.to_string()).to_string());
        out.push(':');
        out.push_str(&v.to_string());
    }
    out.push('}');
    out
}

/// Nimbus does not sign with an AWS certificate: the field is there for clients that read it,
/// holding a digest of AWS's string to sign.
fn signature(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update(b"\n");
    }
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

fn attributes_json(attrs: &MessageAttributes) -> Value {
    Value::Object(
        attrs
            .iter()
            .map(|(k, a)| {
                let mut o = serde_json::Map::new();
                o.insert("Type".into(), Value::String(a.data_type.clone()));
                o.insert("Value".into(), Value::String(a.display_value()));
                (k.clone(), Value::Object(o))
            })
            .collect(),
    )
}

impl StoredMessage {
    /// The JSON document SQS and HTTP subscribers receive (`Type` Notification or
    /// SubscriptionConfirmation), as AWS writes it.
    pub fn envelope(&self, protocol: &str, subscription_arn: &str, urls: &Urls) -> String {
        let s = |v: &str| Value::String(v.to_string());
        match &self.kind {
            Kind::SubscriptionConfirmation { token } => {
                let message = self.body.for_protocol(protocol);
                ordered(vec![
                    ("Type", s("SubscriptionConfirmation")),
                    ("MessageId", s(&self.message_id)),
                    ("Token", s(token)),
                    ("TopicArn", s(&self.topic_arn)),
                    ("Message", s(message)),
                    ("SubscribeURL", s(&urls.subscribe(&self.topic_arn, token))),
                    ("Timestamp", s(&self.timestamp)),
                    ("SignatureVersion", s("1")),
                    (
                        "Signature",
                        s(&signature(&[message, &self.message_id, "SubscriptionConfirmation", &self.timestamp, &self.topic_arn])),
                    ),
                    ("SigningCertURL", s(&urls.signing_cert())),
                ])
            }
            Kind::Notification => {
                let message = self.body.for_protocol(protocol);
                let mut f = vec![("Type", s("Notification")), ("MessageId", s(&self.message_id))];
                if let Some(seq) = &self.sequence_number {
                    f.push(("SequenceNumber", s(seq)));
                }
                f.push(("TopicArn", s(&self.topic_arn)));
                if let Some(subject) = &self.subject {
                    f.push(("Subject", s(subject)));
                }
                f.push(("Message", s(message)));
                f.push(("Timestamp", s(&self.timestamp)));
                f.push(("SignatureVersion", s("1")));
                f.push(("Signature", s(&self.notification_signature(message))));
                f.push(("SigningCertURL", s(&urls.signing_cert())));
                f.push(("UnsubscribeURL", s(&urls.unsubscribe(subscription_arn))));
                if !self.attributes.is_empty() {
                    f.push(("MessageAttributes", attributes_json(&self.attributes)));
                }
                ordered(f)
            }
        }
    }

    /// The signature of a Notification carrying `message` (the text a subscriber receives).
    fn notification_signature(&self, message: &str) -> String {
        signature(&[message, &self.message_id, self.subject.as_deref().unwrap_or(""), "Notification", &self.timestamp, &self.topic_arn])
    }

    /// The event a subscribed Lambda function is invoked with: one record, `Subject` null
    /// when absent, `…Url` spelled as Lambda does.
    pub fn lambda_event(&self, subscription_arn: &str, urls: &Urls) -> String {
        let message = self.body.for_protocol("lambda");
        let signature = self.notification_signature(message);
        let sns = SnsNotification {
            kind: "Notification".into(),
            message_id: self.message_id.clone(),
            topic_arn: self.topic_arn.clone(),
            subject: self.subject.clone(),
            message: message.to_string(),
            timestamp: self.timestamp.clone(),
            signature_version: "1".into(),
            signature,
            signing_cert_url: urls.signing_cert(),
            unsubscribe_url: urls.unsubscribe(subscription_arn),
            message_attributes: self
                .attributes
                .iter()
                .map(|(k, a)| (k.clone(), SnsMessageAttribute { kind: a.data_type.clone(), value: a.display_value() }))
                .collect(),
        };
        let event = SnsEvent {
            records: vec![SnsRecord {
                event_version: "1.0".into(),
                event_subscription_arn: subscription_arn.to_string(),
                event_source: "aws:sns".into(),
                sns,
            }],
        };
        serde_json::to_string(&event).expect("events serialize")
    }
}

/// A FIFO topic's content-based deduplication id: the SHA-256 of the message body.
pub fn content_dedup_id(message: &str) -> String {
    hex::encode(Sha256::digest(message.as_bytes()))
}

/// Message group and deduplication ids: 1–128 characters, alphanumeric or punctuation.
pub fn validate_fifo_id(value: &str, param: &str) -> Result<(), TopicError> {
    if value.is_empty() || value.len() > 128 || !value.chars().all(|c| c.is_ascii_alphanumeric() || c.is_ascii_punctuation()) {
        return Err(TopicError::invalid(format!(
            "{param} Reason: {param} can only include alphanumeric and punctuation characters. 1 to 128 in length."
        )));
    }
    Ok(())
}

/// AWS's rules for Subject: 1–99 printable ASCII characters without line breaks.
pub fn validate_subject(subject: &str) -> Result<(), TopicError> {
    let ok = !subject.is_empty()
        && subject.len() < 100
        && subject.chars().all(|c| c.is_ascii() && !c.is_ascii_control())
        && !subject.trim().is_empty();
    if ok {
        Ok(())
    } else {
        Err(TopicError::invalid("Subject"))
    }
}

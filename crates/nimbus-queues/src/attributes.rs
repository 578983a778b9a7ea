//! Queue names and queue attributes: AWS's names, ranges, defaults and the rules that tie
//! them to the queue type (FIFO-only settings, redrive policies).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::QueueError;

pub const DEFAULT_VISIBILITY_TIMEOUT: u32 = 30;
pub const DEFAULT_RETENTION: u32 = 345_600;
/// SQS's maximum (and default) message size: 1 MiB, message attributes included.
pub const MAX_MESSAGE_SIZE: u32 = 1_048_576;
pub const MAX_VISIBILITY_TIMEOUT: u32 = 43_200;
pub const MAX_DELAY: u32 = 900;
pub const MAX_WAIT: u32 = 20;

/// A redrive policy: where messages go after `max_receive_count` receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedrivePolicy {
    pub dead_letter_target_arn: String,
    pub max_receive_count: u32,
}

impl RedrivePolicy {
    /// AWS's canonical JSON text of the policy (what GetQueueAttributes returns).
    pub fn to_json(&self) -> String {
        serde_json::json!({"deadLetterTargetArn": self.dead_letter_target_arn, "maxReceiveCount": self.max_receive_count}).to_string()
    }

    pub fn parse(text: &str) -> Result<RedrivePolicy, QueueError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Raw {
            dead_letter_target_arn: Option<String>,
            max_receive_count: Option<serde_json::Value>,
        }
        let bad = |reason: &str| QueueError::bad_value(text, "RedrivePolicy", reason);
        let raw: Raw = serde_json::from_str(text).map_err(|_| bad("Redrive policy is not a valid JSON map."))?;
        let arn =
            raw.dead_letter_target_arn.ok_or_else(|| bad("Redrive policy does not contain mandatory attribute: deadLetterTargetArn."))?;
        let count = match raw.max_receive_count {
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => s.trim().parse::<u64>().ok(),
            None => return Err(bad("Redrive policy does not contain mandatory attribute: maxReceiveCount.")),
            _ => None,
        };
        let count = count
            .filter(|c| (1..=1000).contains(c))
            .ok_or_else(|| bad("Invalid value for maxReceiveCount: must be an integer from 1 to 1000."))?;
        Ok(RedrivePolicy { dead_letter_target_arn: arn, max_receive_count: count as u32 })
    }
}

/// A queue's settable attributes, parsed. Stored as AWS's attribute map (see [`to_map`]).
///
/// [`to_map`]: QueueSettings::to_map
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSettings {
    pub fifo: bool,
    pub visibility_timeout: u32,
    pub delay_seconds: u32,
    pub maximum_message_size: u32,
    pub message_retention_period: u32,
    pub receive_message_wait_time_seconds: u32,
    pub redrive_policy: Option<RedrivePolicy>,
    pub content_based_deduplication: bool,
    /// Accepted and returned as given, with no behaviour: Policy, RedriveAllowPolicy, KMS and
    /// SSE settings, DeduplicationScope, FifoThroughputLimit.
    pub passthrough: BTreeMap<String, String>,
}

impl QueueSettings {
    pub fn new(fifo: bool) -> QueueSettings {
        let mut passthrough = BTreeMap::new();
        passthrough.insert("SqsManagedSseEnabled".to_string(), "true".to_string());
        if fifo {
            passthrough.insert("DeduplicationScope".to_string(), "queue".to_string());
            passthrough.insert("FifoThroughputLimit".to_string(), "perQueue".to_string());
        }
        QueueSettings {
            fifo,
            visibility_timeout: DEFAULT_VISIBILITY_TIMEOUT,
            delay_seconds: 0,
            maximum_message_size: MAX_MESSAGE_SIZE,
            message_retention_period: DEFAULT_RETENTION,
            receive_message_wait_time_seconds: 0,
            redrive_policy: None,
            content_based_deduplication: false,
            passthrough,
        }
    }

    /// The settable attributes as AWS names and renders them.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        let mut m = self.passthrough.clone();
        // On by default (queues made before Nimbus stored it included); a KMS key turns it off.
        m.entry("SqsManagedSseEnabled".into()).or_insert_with(|| "true".into());
        m.insert("VisibilityTimeout".into(), self.visibility_timeout.to_string());
        m.insert("DelaySeconds".into(), self.delay_seconds.to_string());
        m.insert("MaximumMessageSize".into(), self.maximum_message_size.to_string());
        m.insert("MessageRetentionPeriod".into(), self.message_retention_period.to_string());
        m.insert("ReceiveMessageWaitTimeSeconds".into(), self.receive_message_wait_time_seconds.to_string());
        if let Some(r) = &self.redrive_policy {
            m.insert("RedrivePolicy".into(), r.to_json());
        }
        if self.fifo {
            m.insert("FifoQueue".into(), "true".into());
            m.insert("ContentBasedDeduplication".into(), self.content_based_deduplication.to_string());
        }
        m
    }

    /// Rebuilds settings from a stored map (written by [`to_map`](Self::to_map)).
    pub fn from_map(fifo: bool, map: &BTreeMap<String, String>) -> QueueSettings {
        let mut s = QueueSettings::new(fifo);
        // Stored maps were validated on the way in; apply cannot fail on them.
        let _ = s.apply(map, Mode::Load);
        s
    }

    /// Validates and applies `attrs` (CreateQueue or SetQueueAttributes).
    pub fn apply(&mut self, attrs: &BTreeMap<String, String>, mode: Mode) -> Result<(), QueueError> {
        for (name, value) in attrs {
            let int = |lo: u32, hi: u32| -> Result<u32, QueueError> {
                value
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|v| (lo..=hi).contains(v))
                    .ok_or_else(|| QueueError::InvalidAttributeValue(format!("Invalid value for the parameter {name}.")))
            };
            let boolean = || -> Result<bool, QueueError> {
                match value.to_ascii_lowercase().as_str() {
                    "true" => Ok(true),
                    "false" => Ok(false),
                    _ => Err(QueueError::InvalidAttributeValue(format!("Invalid value for the parameter {name}."))),
                }
            };
            let fifo_only = || -> Result<(), QueueError> {
                if self.fifo {
                    Ok(())
                } else {
                    Err(QueueError::InvalidAttributeName(format!("Unknown Attribute {name}.")))
                }
            };
            match name.as_str() {
                "VisibilityTimeout" => self.visibility_timeout = int(0, MAX_VISIBILITY_TIMEOUT)?,
                "DelaySeconds" => self.delay_seconds = int(0, MAX_DELAY)?,
                "MaximumMessageSize" => self.maximum_message_size = int(1024, MAX_MESSAGE_SIZE)?,
                "MessageRetentionPeriod" => self.message_retention_period = int(60, 1_209_600)?,
                "ReceiveMessageWaitTimeSeconds" => self.receive_message_wait_time_seconds = int(0, MAX_WAIT)?,
                "RedrivePolicy" => {
                    self.redrive_policy = if value.trim().is_empty() { None } else { Some(RedrivePolicy::parse(value)?) };
                }
                "FifoQueue" => {
                    let want = boolean()?;
                    // AWS: a standard queue does not have the attribute at all.
                    if mode == Mode::Set || (!self.fifo && !want) {
                        return Err(QueueError::InvalidAttributeName(format!("Unknown Attribute {name}.")));
                    }
                    if want != self.fifo {
                        return Err(QueueError::InvalidAttributeValue(format!("Invalid value for the parameter {name}.")));
                    }
                }
                "ContentBasedDeduplication" => {
                    fifo_only()?;
                    self.content_based_deduplication = boolean()?;
                }
                "DeduplicationScope" => {
                    fifo_only()?;
                    if !matches!(value.as_str(), "messageGroup" | "queue") {
                        return Err(QueueError::InvalidAttributeValue(format!("Invalid value for the parameter {name}.")));
                    }
                    self.passthrough.insert(name.clone(), value.clone());
                }
                "FifoThroughputLimit" => {
                    fifo_only()?;
                    if !matches!(value.as_str(), "perQueue" | "perMessageGroupId") {
                        return Err(QueueError::InvalidAttributeValue(format!("Invalid value for the parameter {name}.")));
                    }
                    self.passthrough.insert(name.clone(), value.clone());
                }
                "SqsManagedSseEnabled" => {
                    boolean()?;
                    self.passthrough.insert(name.clone(), value.to_ascii_lowercase());
                }
                "KmsDataKeyReusePeriodSeconds" => {
                    int(60, 86_400)?;
                    self.passthrough.insert(name.clone(), value.trim().to_string());
                }
                "Policy" | "RedriveAllowPolicy" | "KmsMasterKeyId" => {
                    if value.is_empty() {
                        self.passthrough.remove(name);
                    } else {
                        if name != "KmsMasterKeyId" && serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(value).is_err() {
                            return Err(QueueError::InvalidAttributeValue(format!("Invalid value for the parameter {name}.")));
                        }
                        if name == "KmsMasterKeyId" {
                            self.passthrough.insert("SqsManagedSseEnabled".into(), "false".into());
                        }
                        self.passthrough.insert(name.clone(), value.clone());
                    }
                }
                _ if READ_ONLY.contains(&name.as_str()) && mode == Mode::Load => {}
                _ => return Err(QueueError::InvalidAttributeName(format!("Unknown Attribute {name}."))),
            }
        }
        Ok(())
    }
}

/// Where attributes come from: CreateQueue may set `FifoQueue`, SetQueueAttributes may not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Create,
    Set,
    Load,
}

/// Attributes computed by the service, never set.
pub const READ_ONLY: &[&str] = &[
    "QueueArn",
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
];

/// Every name GetQueueAttributes knows (besides `All`).
pub const KNOWN: &[&str] = &[
    "Policy",
    "VisibilityTimeout",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "QueueArn",
    "ApproximateNumberOfMessagesDelayed",
    "DelaySeconds",
    "ReceiveMessageWaitTimeSeconds",
    "RedrivePolicy",
    "FifoQueue",
    "ContentBasedDeduplication",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "RedriveAllowPolicy",
    "SqsManagedSseEnabled",
];

/// Queue names: 1–80 characters of `[A-Za-z0-9_-]`, FIFO queues ending in `.fifo`
/// (counted in the 80).
pub fn validate_queue_name(name: &str, fifo: bool) -> Result<(), QueueError> {
    let stem = if fifo { name.strip_suffix(".fifo") } else { Some(name) };
    let ok =
        stem.is_some_and(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')) && name.len() <= 80;
    if ok {
        Ok(())
    } else if fifo {
        Err(QueueError::invalid(
            "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.",
        ))
    } else {
        Err(QueueError::invalid("Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(items: &[(&str, &str)]) -> BTreeMap<String, String> {
        items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_and_ranges() {
        let mut s = QueueSettings::new(false);
        assert_eq!(s.to_map()["MaximumMessageSize"], "1048576");
        assert_eq!(s.to_map()["VisibilityTimeout"], "30");
        assert!(!s.to_map().contains_key("FifoQueue"));
        s.apply(&map(&[("VisibilityTimeout", "5"), ("DelaySeconds", "900")]), Mode::Set).unwrap();
        assert_eq!(s.visibility_timeout, 5);
        for (k, v) in [
            ("VisibilityTimeout", "43201"),
            ("DelaySeconds", "-1"),
            ("MaximumMessageSize", "1048577"),
            ("MessageRetentionPeriod", "59"),
            ("ReceiveMessageWaitTimeSeconds", "21"),
        ] {
            assert!(matches!(s.apply(&map(&[(k, v)]), Mode::Set), Err(QueueError::InvalidAttributeValue(_))), "{k}={v}");
        }
        assert!(matches!(s.apply(&map(&[("Nope", "1")]), Mode::Set), Err(QueueError::InvalidAttributeName(_))));
        assert!(matches!(s.apply(&map(&[("QueueArn", "x")]), Mode::Set), Err(QueueError::InvalidAttributeName(_))));
        assert!(matches!(s.apply(&map(&[("ContentBasedDeduplication", "true")]), Mode::Create), Err(QueueError::InvalidAttributeName(_))));
    }

    #[test]
    fn redrive_policy() {
        let p = RedrivePolicy::parse(r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":"3"}"#).unwrap();
        assert_eq!(p.max_receive_count, 3);
        assert_eq!(p.to_json(), r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":3}"#);
        RedrivePolicy::parse(r#"{"deadLetterTargetArn":"a","maxReceiveCount":0}"#).unwrap_err();
        RedrivePolicy::parse(r#"{"maxReceiveCount":1}"#).unwrap_err();
        RedrivePolicy::parse("nope").unwrap_err();
        let mut s = QueueSettings::new(false);
        s.apply(&map(&[("RedrivePolicy", &p.to_json())]), Mode::Set).unwrap();
        assert_eq!(QueueSettings::from_map(false, &s.to_map()), s);
        s.apply(&map(&[("RedrivePolicy", "")]), Mode::Set).unwrap();
        assert_eq!(s.redrive_policy, None);
    }

    #[test]
    fn names() {
        validate_queue_name("a-b_C9", false).unwrap();
        validate_queue_name(&"a".repeat(80), false).unwrap();
        assert!(validate_queue_name(&"a".repeat(81), false).is_err());
        assert!(validate_queue_name("a.fifo", false).is_err());
        validate_queue_name("a.fifo", true).unwrap();
        assert!(validate_queue_name(".fifo", true).is_err());
        assert!(validate_queue_name("", false).is_err());
        assert!(validate_queue_name("a b", false).is_err());
    }
}

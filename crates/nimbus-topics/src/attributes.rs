//! Topic and subscription attributes: which names AWS accepts where, their validation (with
//! AWS's messages), their defaults, and topic names.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::TopicError;
use crate::filter::{FilterPolicy, Scope};

/// Topic attributes a caller may set (CreateTopic also takes `FifoTopic`).
pub const TOPIC_SETTABLE: &[&str] = &[
    "DisplayName",
    "Policy",
    "DeliveryPolicy",
    "TracingConfig",
    "KmsMasterKeyId",
    "SignatureVersion",
    "ContentBasedDeduplication",
    "FifoThroughputScope",
    "ArchivePolicy",
    "DataProtectionPolicy",
    "ApplicationSuccessFeedbackRoleArn",
    "ApplicationSuccessFeedbackSampleRate",
    "ApplicationFailureFeedbackRoleArn",
    "HTTPSuccessFeedbackRoleArn",
    "HTTPSuccessFeedbackSampleRate",
    "HTTPFailureFeedbackRoleArn",
    "LambdaSuccessFeedbackRoleArn",
    "LambdaSuccessFeedbackSampleRate",
    "LambdaFailureFeedbackRoleArn",
    "SQSSuccessFeedbackRoleArn",
    "SQSSuccessFeedbackSampleRate",
    "SQSFailureFeedbackRoleArn",
    "FirehoseSuccessFeedbackRoleArn",
    "FirehoseSuccessFeedbackSampleRate",
    "FirehoseFailureFeedbackRoleArn",
];

/// Subscription attributes a caller may set.
pub const SUBSCRIPTION_SETTABLE: &[&str] =
    &["DeliveryPolicy", "FilterPolicy", "FilterPolicyScope", "RawMessageDelivery", "RedrivePolicy", "SubscriptionRoleArn", "ReplayPolicy"];

/// Protocols Nimbus delivers to.
pub const PROTOCOLS: &[&str] = &["lambda", "sqs", "http", "https"];
/// Protocols SNS has that Nimbus cannot deliver to.
pub const UNSUPPORTED_PROTOCOLS: &[&str] = &["email", "email-json", "sms", "application", "firehose"];

fn bool_value(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Checks a topic name: 1–256 letters, digits, `-`, `_`, with `.fifo` at the end exactly
/// when the topic is FIFO.
pub fn validate_topic_name(name: &str, fifo: bool) -> Result<(), TopicError> {
    let base = if fifo { name.strip_suffix(".fifo") } else { Some(name) };
    let ok =
        base.is_some_and(|b| !b.is_empty() && name.len() <= 256 && b.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    if ok {
        return Ok(());
    }
    if fifo {
        Err(TopicError::invalid("Fifo Topic names must end with .fifo and must be made up of only uppercase and lowercase ASCII letters, numbers, underscores, and hyphens, and must be between 1 and 256 characters long."))
    } else {
        Err(TopicError::invalid("Topic Name"))
    }
}

/// Validates one topic attribute and returns the value to store. `reason` formats AWS's
/// message for CreateTopic (`Attributes Reason: …`) or SetTopicAttributes.
pub fn check_topic_attribute(name: &str, value: &str, fifo: bool, on_create: bool) -> Result<String, TopicError> {
    if !TOPIC_SETTABLE.contains(&name) {
        return Err(if on_create {
            TopicError::invalid(format!("Attributes Reason: Unknown attribute {name}"))
        } else {
            TopicError::invalid("AttributeName")
        });
    }
    let bad = |why: &str| TopicError::invalid(format!("{name} Reason: {why}"));
    match name {
        "ContentBasedDeduplication" => {
            if !fifo {
                return Err(bad("Content-based deduplication can only be set for FIFO topics"));
            }
            bool_value(value)
                .map(|b| b.to_string())
                .ok_or_else(|| bad("Invalid value for ContentBasedDeduplication. Must be true or false."))
        }
        "FifoThroughputScope" | "ArchivePolicy" if !fifo => Err(bad(&format!("{name} can only be set for FIFO topics"))),
        "Policy" | "DeliveryPolicy" | "DataProtectionPolicy" | "ArchivePolicy" => {
            if value.is_empty() && name != "Policy" {
                return Ok(String::new());
            }
            match serde_json::from_str::<Value>(value) {
                Ok(Value::Object(_)) => Ok(value.to_string()),
                _ => Err(TopicError::invalid(format!("{name}: failed to parse JSON"))),
            }
        }
        "SignatureVersion" => match value {
            "1" | "2" => Ok(value.to_string()),
            _ => Err(bad("must be 1 or 2")),
        },
        "TracingConfig" => match value {
            "PassThrough" | "Active" => Ok(value.to_string()),
            _ => Err(bad("must be PassThrough or Active")),
        },
        "DisplayName" => {
            if value.len() > 100 {
                Err(bad("DisplayName must be at most 100 characters long"))
            } else {
                Ok(value.to_string())
            }
        }
        _ => Ok(value.to_string()),
    }
}

/// AWS's default access policy of a new topic.
pub fn default_policy(topic_arn: &str, account: &str) -> String {
    serde_json::json!({
        "Version": "2008-10-17",
        "Id": "__default_policy_ID",
        "Statement": [{
            "Sid": "__default_statement_ID",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": ["SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:AddPermission", "SNS:RemovePermission",
                       "SNS:DeleteTopic", "SNS:Subscribe", "SNS:ListSubscriptionsByTopic", "SNS:Publish"],
            "Resource": topic_arn,
            "Condition": {"StringEquals": {"AWS:SourceOwner": account}}
        }]
    })
    .to_string()
}

/// AWS's default delivery policy, as GetTopicAttributes shows it.
pub const DEFAULT_EFFECTIVE_DELIVERY_POLICY: &str = r#"{"http":{"defaultHealthyRetryPolicy":{"minDelayTarget":20,"maxDelayTarget":20,"numRetries":3,"numMaxDelayRetries":0,"numNoDelayRetries":0,"numMinDelayRetries":0,"backoffFunction":"linear"},"disableSubscriptionOverrides":false,"defaultRequestPolicy":{"headerContentType":"text/plain; charset=UTF-8"}}}"#;

/// Validates subscription attributes (Subscribe's whole map, or one SetSubscriptionAttributes
/// change merged over `current`) and returns the complete map to store.
pub fn apply_subscription_attributes(
    current: &BTreeMap<String, String>,
    changes: &BTreeMap<String, String>,
    protocol: &str,
    on_subscribe: bool,
) -> Result<BTreeMap<String, String>, TopicError> {
    let prefix = if on_subscribe { "Attributes Reason: " } else { "" };
    let mut out = current.clone();
    for (name, value) in changes {
        if !SUBSCRIPTION_SETTABLE.contains(&name.as_str()) {
            return Err(if on_subscribe {
                TopicError::invalid(format!("Attributes Reason: Unknown attribute {name}"))
            } else {
                TopicError::invalid("AttributeName")
            });
        }
        match name.as_str() {
            "RawMessageDelivery" => {
                let Some(b) = bool_value(value) else {
                    return Err(TopicError::invalid(format!(
                        "{prefix}RawMessageDelivery: Invalid value [{value}]. Must be true or false."
                    )));
                };
                if !matches!(protocol, "sqs" | "http" | "https" | "firehose") {
                    return Err(TopicError::invalid(format!(
                        "{prefix}Delivery protocol [{protocol}] does not support raw message delivery."
                    )));
                }
                out.insert(name.clone(), b.to_string());
            }
            "FilterPolicyScope" => {
                if Scope::parse(value).is_none() {
                    return Err(TopicError::invalid(format!("{prefix}FilterPolicyScope: Invalid filter policy scope: {value}")));
                }
                out.insert(name.clone(), value.clone());
            }
            "RedrivePolicy" => {
                if value.is_empty() {
                    out.remove(name);
                    continue;
                }
                let v: Value = serde_json::from_str(value)
                    .map_err(|_| TopicError::invalid(format!("{prefix}RedrivePolicy: failed to parse JSON.")))?;
                let target = v.get("deadLetterTargetArn").and_then(Value::as_str).unwrap_or("");
                if !target.starts_with("arn:aws:sqs:") || target.split(':').count() != 6 {
                    return Err(TopicError::invalid(format!("{prefix}RedrivePolicy: deadLetterTargetArn is an invalid arn")));
                }
                out.insert(name.clone(), value.clone());
            }
            "DeliveryPolicy" => {
                if !value.is_empty() && !matches!(serde_json::from_str::<Value>(value), Ok(Value::Object(_))) {
                    return Err(TopicError::invalid(format!("{prefix}DeliveryPolicy: failed to parse JSON.")));
                }
                out.insert(name.clone(), value.clone());
            }
            "FilterPolicy" if value.is_empty() => {
                out.remove(name);
            }
            _ => {
                out.insert(name.clone(), value.clone());
            }
        }
    }
    // The policy is checked against the scope it will run with.
    if let Some(text) = out.get("FilterPolicy") {
        let scope = out.get("FilterPolicyScope").and_then(|s| Scope::parse(s)).unwrap_or_default();
        let touched = changes.contains_key("FilterPolicy") || changes.contains_key("FilterPolicyScope");
        if touched {
            FilterPolicy::parse(text, scope, on_subscribe)?;
        }
    }
    Ok(out)
}

//! The events Nimbus sends to functions, as serde types laid out exactly as AWS sends them
//! (member names, order, and which members are absent rather than null). Tested against
//! AWS's published sample events, and against the `aws_lambda_events` crate that Rust
//! functions read them with. (That crate's own types serialize absent members as `null`,
//! which AWS does not send, so they are the reader here, not the writer.)

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// An SQS event-source mapping's batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqsEvent {
    #[serde(rename = "Records")]
    pub records: Vec<SqsRecord>,
}

/// One message of an SQS batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SqsRecord {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    /// System attributes (`ApproximateReceiveCount`, `SentTimestamp`, …).
    pub attributes: BTreeMap<String, String>,
    pub message_attributes: BTreeMap<String, SqsMessageAttribute>,
    pub md5_of_body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5_of_message_attributes: Option<String>,
    pub event_source: String,
    #[serde(rename = "eventSourceARN")]
    pub event_source_arn: String,
    pub aws_region: String,
}

/// A message attribute in an SQS record (binary values base64-encoded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SqsMessageAttribute {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string_value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary_value: Option<String>,
    #[serde(default)]
    pub string_list_values: Vec<String>,
    #[serde(default)]
    pub binary_list_values: Vec<String>,
    pub data_type: String,
}

/// The event of an SNS subscription with protocol `lambda`: one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnsEvent {
    #[serde(rename = "Records")]
    pub records: Vec<SnsRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SnsRecord {
    pub event_version: String,
    pub event_subscription_arn: String,
    pub event_source: String,
    pub sns: SnsNotification,
}

/// The notification inside an SNS record. `Subject` is `null` when the publisher gave
/// none, as AWS sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SnsNotification {
    #[serde(rename = "Type")]
    pub kind: String,
    pub message_id: String,
    pub topic_arn: String,
    pub subject: Option<String>,
    pub message: String,
    pub timestamp: String,
    pub signature_version: String,
    pub signature: String,
    pub signing_cert_url: String,
    pub unsubscribe_url: String,
    pub message_attributes: BTreeMap<String, SnsMessageAttribute>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnsMessageAttribute {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Value")]
    pub value: String,
}

/// The invocation record an asynchronous invocation's destination receives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvocationRecord {
    pub version: String,
    pub timestamp: String,
    pub request_context: DestinationRequestContext,
    /// The event as the function got it (JSON; `null` if it was not JSON).
    pub request_payload: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_context: Option<DestinationResponseContext>,
    /// The function's result (JSON, or its text as a string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_payload: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationRequestContext {
    pub request_id: String,
    pub function_arn: String,
    /// `Success`, `RetriesExhausted`, `EventAgeExceeded`, …
    pub condition: String,
    pub approximate_invoke_count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationResponseContext {
    pub status_code: u16,
    pub executed_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// AWS's sample SQS event (Lambda developer guide, "Using Lambda with Amazon SQS").
    const SQS_SAMPLE: &str = r#"{"Records":[{"messageId":"059f36b4-87a3-44ab-83d2-661975830a7d",
        "receiptHandle":"AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a","body":"Test message.",
        "attributes":{"ApproximateReceiveCount":"1","SentTimestamp":"1545082649183","SenderId":"AIDAIENQZJOLO23YVJ4VO",
        "ApproximateFirstReceiveTimestamp":"1545082649185"},
        "messageAttributes":{"myAttribute":{"stringValue":"myValue","stringListValues":[],"binaryListValues":[],"dataType":"String"}},
        "md5OfBody":"e4e68fb7bd0e697a0ae8f1bb342846b3","eventSource":"aws:sqs",
        "eventSourceARN":"arn:aws:sqs:us-east-2:123456789012:my-queue","awsRegion":"us-east-2"}]}"#;

    /// AWS's sample SNS event (Lambda developer guide, "Using Lambda with Amazon SNS").
    const SNS_SAMPLE: &str = r#"{"Records":[{"EventVersion":"1.0",
        "EventSubscriptionArn":"arn:aws:sns:us-east-1:123456789012:sns-lambda:21be56ed-a058-49f5-8c98-aedd2564c486",
        "EventSource":"aws:sns","Sns":{"SignatureVersion":"1","Timestamp":"2019-01-02T12:45:07.000Z",
        "Signature":"tcc6faL2yUC6dgZdmrwh1Y4cGa/ebXEkAi6RibDsvpi+tE/1+82j...65r==",
        "SigningCertUrl":"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-ac565b8b1a6c5d002d285f9598aa1d9b.pem",
        "MessageId":"95df01b4-ee98-5cb9-9903-4c221d41eb5e","Message":"Hello from SNS!",
        "MessageAttributes":{"Test":{"Type":"String","Value":"TestString"},"TestBinary":{"Type":"Binary","Value":"TestBinary"}},
        "Type":"Notification",
        "UnsubscribeUrl":"https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&amp;SubscriptionArn=arn:aws:sns:us-east-1:123456789012:test-lambda:21be56ed-a058-49f5-8c98-aedd2564c486",
        "TopicArn":"arn:aws:sns:us-east-1:123456789012:sns-lambda","Subject":"TestInvoke"}}]}"#;

    fn round_trip<T: Serialize + serde::de::DeserializeOwned>(sample: &str) -> T {
        let typed: T = serde_json::from_str(sample).expect("the sample parses");
        let back = serde_json::to_value(&typed).expect("serializes");
        assert_eq!(back, serde_json::from_str::<Value>(sample).expect("json"), "our type writes the sample back as it was");
        typed
    }

    #[test]
    fn aws_samples_round_trip_and_rust_functions_read_ours() {
        let sqs: SqsEvent = round_trip(SQS_SAMPLE);
        let ours = serde_json::to_string(&sqs).expect("serializes");
        let read: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_str(&ours).expect("aws_lambda_events reads it");
        let r = &read.records[0];
        assert_eq!(
            (r.body.as_deref(), r.event_source_arn.as_deref()),
            (Some("Test message."), Some("arn:aws:sqs:us-east-2:123456789012:my-queue"))
        );
        assert_eq!(r.message_attributes["myAttribute"].string_value.as_deref(), Some("myValue"));

        let mut sns: SnsEvent = round_trip(SNS_SAMPLE);
        let read: aws_lambda_events::event::sns::SnsEvent =
            serde_json::from_str(&serde_json::to_string(&sns).expect("serializes")).expect("aws_lambda_events reads it");
        assert_eq!(read.records[0].sns.message, "Hello from SNS!");
        // Without a subject AWS sends `"Subject": null`, and readers accept it.
        sns.records[0].sns.subject = None;
        let text = serde_json::to_string(&sns).expect("serializes");
        assert!(text.contains(r#""Subject":null"#), "{text}");
        let read: aws_lambda_events::event::sns::SnsEvent = serde_json::from_str(&text).expect("reads a null subject");
        assert_eq!(read.records[0].sns.subject, None);
    }

    /// AWS's sample invocation record (Lambda developer guide, "Asynchronous invocation":
    /// destinations).
    const DESTINATION_SAMPLE: &str = r#"{"version":"1.0","timestamp":"2019-11-14T18:16:05.568Z",
        "requestContext":{"requestId":"e4b46cbf-b738-xmpl-8880-a18cdf61200e",
        "functionArn":"arn:aws:lambda:us-east-2:123456789012:function:my-function:$LATEST","condition":"RetriesExhausted",
        "approximateInvokeCount":3},"requestPayload":{"ORDER_IDS":["9e07af03-ce31-4ff3-xmpl-36dce652cb4f","637de236-e7b2-464e-xmpl-baf57f86bb53"]},
        "responseContext":{"statusCode":200,"executedVersion":"$LATEST","functionError":"Unhandled"},
        "responsePayload":{"errorMessage":"RequestId: e4b46cbf-b738-xmpl-8880-a18cdf61200e Process exited before completing request"}}"#;

    #[test]
    fn destination_records_round_trip() {
        let r: InvocationRecord = round_trip(DESTINATION_SAMPLE);
        assert_eq!((r.request_context.condition.as_str(), r.request_context.approximate_invoke_count), ("RetriesExhausted", 3));
        // A success record of a function without an error has no functionError.
        let ok = DestinationResponseContext { status_code: 200, executed_version: "1".into(), function_error: None };
        assert_eq!(serde_json::to_value(&ok).expect("serializes"), serde_json::json!({"statusCode": 200, "executedVersion": "1"}));
    }

    #[test]
    fn absent_members_stay_absent() {
        let attr = SqsMessageAttribute {
            string_value: None,
            binary_value: Some("AQI=".into()),
            string_list_values: vec![],
            binary_list_values: vec![],
            data_type: "Binary".into(),
        };
        assert_eq!(
            serde_json::to_value(&attr).expect("serializes"),
            serde_json::json!({"binaryValue": "AQI=", "stringListValues": [], "binaryListValues": [], "dataType": "Binary"})
        );
    }
}

//! SQS on the wire: recognises SQS requests in both of AWS's protocols (JSON 1.0 with
//! `X-Amz-Target: AmazonSQS.<Action>`, and the query protocol's form posts, also sent to a
//! queue's URL), decodes them through `nimbus-protocol` against SQS's model into typed
//! [`SqsCall`]s for `nimbus-queues`, and encodes typed outputs and [`QueueError`]s in the
//! caller's protocol.

use std::collections::BTreeMap;

use base64::Engine;
use bytes::Bytes;
use http::Response;
use nimbus_protocol::{calls, decode, encode, DecodeError, Protocol, SQS};
use nimbus_queues::{
    queue_name_from_url, AttributeValue, BatchEntry, BatchFailure, BatchOutcome, CreateQueue, MessageAttributes, QueueError, QueueService,
    ReceiveRequest, ReceivedMessage, SendMessage, SendResult, VisibilityChange,
};
use serde::{Deserialize, Serialize};

use crate::action::RawRequest;
use crate::response::Body;

mod target;

const VERSION: &str = "2012-11-05";

/// One SQS request: the operation, decoded (or the error AWS would answer while decoding).
#[derive(Debug)]
pub struct SqsRequest {
    pub protocol: Protocol,
    pub operation: &'static str,
    pub call: Result<SqsCall, QueueError>,
}

calls! {
    /// Every SQS operation Nimbus serves, with its typed input (as SQS's model names it).
    pub enum SqsCall {
        CreateQueue(CreateQueueInput),
        GetQueueUrl(GetQueueUrlInput),
        ListQueues(ListQueuesInput),
        DeleteQueue(QueueInput),
        PurgeQueue(QueueInput),
        GetQueueAttributes(GetQueueAttributesInput),
        SetQueueAttributes(SetQueueAttributesInput),
        SendMessage(SendMessageInput),
        SendMessageBatch(SendMessageBatchInput),
        ReceiveMessage(ReceiveMessageInput),
        DeleteMessage(DeleteMessageInput),
        DeleteMessageBatch(DeleteMessageBatchInput),
        ChangeMessageVisibility(ChangeMessageVisibilityInput),
        ChangeMessageVisibilityBatch(ChangeMessageVisibilityBatchInput),
        TagQueue(TagQueueInput),
        UntagQueue(UntagQueueInput),
        ListQueueTags(QueueInput),
        ListDeadLetterSourceQueues(ListDeadLetterSourceQueuesInput),
    }
}

// ---- typed inputs (members as SQS's model names them) ---------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateQueueInput {
    queue_name: String,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
    #[serde(default, rename = "tags")]
    tags: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetQueueUrlInput {
    queue_name: String,
    #[serde(default, rename = "QueueOwnerAWSAccountId")]
    queue_owner_aws_account_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListQueuesInput {
    queue_name_prefix: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

/// The input of operations that name only a queue.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueueInput {
    queue_url: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetQueueAttributesInput {
    queue_url: String,
    #[serde(default)]
    attribute_names: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SetQueueAttributesInput {
    queue_url: String,
    attributes: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireAttributeValue {
    data_type: String,
    string_value: Option<String>,
    binary_value: Option<String>,
    #[serde(default)]
    string_list_values: Vec<String>,
    #[serde(default)]
    binary_list_values: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SendMessageInput {
    queue_url: String,
    #[serde(flatten)]
    message: WireMessage,
}

/// A message to send, in SendMessage and in SendMessageBatch's entries.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireMessage {
    message_body: String,
    delay_seconds: Option<i64>,
    #[serde(default)]
    message_attributes: BTreeMap<String, WireAttributeValue>,
    #[serde(default)]
    message_system_attributes: BTreeMap<String, WireAttributeValue>,
    message_group_id: Option<String>,
    message_deduplication_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SendMessageBatchEntry {
    id: String,
    #[serde(flatten)]
    message: WireMessage,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SendMessageBatchInput {
    queue_url: String,
    entries: Vec<SendMessageBatchEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReceiveMessageInput {
    queue_url: String,
    #[serde(default)]
    attribute_names: Vec<String>,
    #[serde(default)]
    message_system_attribute_names: Vec<String>,
    #[serde(default)]
    message_attribute_names: Vec<String>,
    max_number_of_messages: Option<i64>,
    visibility_timeout: Option<i64>,
    wait_time_seconds: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteMessageInput {
    queue_url: String,
    receipt_handle: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteMessageBatchEntry {
    id: String,
    receipt_handle: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteMessageBatchInput {
    queue_url: String,
    entries: Vec<DeleteMessageBatchEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChangeMessageVisibilityInput {
    queue_url: String,
    receipt_handle: String,
    visibility_timeout: i64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChangeMessageVisibilityBatchEntry {
    id: String,
    receipt_handle: String,
    visibility_timeout: i64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChangeMessageVisibilityBatchInput {
    queue_url: String,
    entries: Vec<ChangeMessageVisibilityBatchEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagQueueInput {
    queue_url: String,
    tags: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UntagQueueInput {
    queue_url: String,
    tag_keys: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListDeadLetterSourceQueuesInput {
    queue_url: String,
    max_results: Option<i64>,
    next_token: Option<String>,
}

// ---- typed outputs ------------------------------------------------------------------

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct QueueUrlOutput {
    queue_url: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListQueuesOutput {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    queue_urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

#[derive(Serialize)]
struct ListDeadLetterSourceQueuesOutput {
    #[serde(rename = "queueUrls")]
    queue_urls: Vec<String>,
    #[serde(rename = "NextToken", skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct AttributesOutput {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    attributes: BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct TagsOutput {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    tags: BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SendMessageOutput {
    message_id: String,
    #[serde(rename = "MD5OfMessageBody")]
    md5_of_message_body: String,
    #[serde(rename = "MD5OfMessageAttributes", skip_serializing_if = "Option::is_none")]
    md5_of_message_attributes: Option<String>,
    #[serde(rename = "MD5OfMessageSystemAttributes", skip_serializing_if = "Option::is_none")]
    md5_of_message_system_attributes: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sequence_number: Option<String>,
}

impl From<SendResult> for SendMessageOutput {
    fn from(r: SendResult) -> Self {
        SendMessageOutput {
            message_id: r.message_id,
            md5_of_message_body: r.md5_of_body,
            md5_of_message_attributes: r.md5_of_attributes,
            md5_of_message_system_attributes: r.md5_of_system_attributes,
            sequence_number: r.sequence_number,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SendMessageBatchResultEntry {
    id: String,
    #[serde(flatten)]
    result: SendMessageOutput,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct BatchIdEntry {
    id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct BatchResultErrorEntry {
    id: String,
    sender_fault: bool,
    code: String,
    message: String,
}

impl From<BatchFailure> for BatchResultErrorEntry {
    fn from(f: BatchFailure) -> Self {
        BatchResultErrorEntry { id: f.id, sender_fault: f.sender_fault, code: f.code, message: f.message }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct BatchOutput<T> {
    successful: Vec<T>,
    failed: Vec<BatchResultErrorEntry>,
}

impl<T> BatchOutput<T> {
    fn from_outcome<R>(b: BatchOutcome<R>, each: impl Fn(String, R) -> T) -> Self {
        BatchOutput {
            successful: b.successful.into_iter().map(|(id, r)| each(id, r)).collect(),
            failed: b.failed.into_iter().map(BatchResultErrorEntry::from).collect(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct MessageAttributeValueOutput {
    #[serde(skip_serializing_if = "Option::is_none")]
    string_value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    binary_value: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    string_list_values: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    binary_list_values: Vec<String>,
    data_type: String,
}

impl From<AttributeValue> for MessageAttributeValueOutput {
    fn from(v: AttributeValue) -> Self {
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        MessageAttributeValueOutput {
            string_value: v.string_value,
            binary_value: v.binary_value.as_deref().map(b64),
            string_list_values: v.string_list_values,
            binary_list_values: v.binary_list_values.iter().map(|b| b64(b)).collect(),
            data_type: v.data_type,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct MessageOutput {
    message_id: String,
    receipt_handle: String,
    #[serde(rename = "MD5OfBody")]
    md5_of_body: String,
    body: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    attributes: BTreeMap<String, String>,
    #[serde(rename = "MD5OfMessageAttributes", skip_serializing_if = "Option::is_none")]
    md5_of_message_attributes: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_attributes: Option<BTreeMap<String, MessageAttributeValueOutput>>,
}

impl From<ReceivedMessage> for MessageOutput {
    fn from(m: ReceivedMessage) -> Self {
        let message_attributes =
            m.md5_of_message_attributes.as_ref().map(|_| m.message_attributes.into_iter().map(|(k, v)| (k, v.into())).collect());
        MessageOutput {
            message_id: m.message_id,
            receipt_handle: m.receipt_handle,
            md5_of_body: m.md5_of_body,
            body: m.body,
            attributes: m.attributes,
            md5_of_message_attributes: m.md5_of_message_attributes,
            message_attributes,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ReceiveMessageOutput {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    messages: Vec<MessageOutput>,
}

/// The operations, with the names IAM policies use (served or not).
const OPERATIONS: &crate::action::OperationTable = &[
    ("CreateQueue", "sqs:CreateQueue"),
    ("GetQueueUrl", "sqs:GetQueueUrl"),
    ("ListQueues", "sqs:ListQueues"),
    ("DeleteQueue", "sqs:DeleteQueue"),
    ("PurgeQueue", "sqs:PurgeQueue"),
    ("GetQueueAttributes", "sqs:GetQueueAttributes"),
    ("SetQueueAttributes", "sqs:SetQueueAttributes"),
    ("SendMessage", "sqs:SendMessage"),
    ("SendMessageBatch", "sqs:SendMessageBatch"),
    ("ReceiveMessage", "sqs:ReceiveMessage"),
    ("DeleteMessage", "sqs:DeleteMessage"),
    ("DeleteMessageBatch", "sqs:DeleteMessageBatch"),
    ("ChangeMessageVisibility", "sqs:ChangeMessageVisibility"),
    ("ChangeMessageVisibilityBatch", "sqs:ChangeMessageVisibilityBatch"),
    ("TagQueue", "sqs:TagQueue"),
    ("UntagQueue", "sqs:UntagQueue"),
    ("ListQueueTags", "sqs:ListQueueTags"),
    ("ListDeadLetterSourceQueues", "sqs:ListDeadLetterSourceQueues"),
    ("AddPermission", "sqs:AddPermission"),
    ("RemovePermission", "sqs:RemovePermission"),
    ("StartMessageMoveTask", "sqs:StartMessageMoveTask"),
    ("CancelMessageMoveTask", "sqs:CancelMessageMoveTask"),
    ("ListMessageMoveTasks", "sqs:ListMessageMoveTasks"),
];

impl SqsRequest {
    /// The IAM action name (`sqs:SendMessage`).
    pub fn name(&self) -> &'static str {
        crate::action::iam_action(OPERATIONS, self.operation, "sqs:Unknown")
    }
}

// ---- recognising and decoding -------------------------------------------------------

/// `/<12-digit account>/<queue>`: the path of a queue URL.
fn queue_path(path: &str) -> Option<&str> {
    let mut parts = path.trim_matches('/').split('/');
    let (account, name, rest) = (parts.next()?, parts.next()?, parts.next());
    (rest.is_none() && account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty()).then_some(path)
}

/// Returns the SQS request `req` carries, or `None` when it is not an SQS request.
pub fn recognize(req: &RawRequest<'_>) -> Option<SqsRequest> {
    if let Some(target) = req.headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        let op_name = target.strip_prefix("AmazonSQS.")?;
        let (operation, call) = decode_call(op_name, Protocol::AwsJson1_0, |op| decode::json(SQS.model(), op, &req.body));
        return Some(SqsRequest { protocol: Protocol::AwsJson1_0, operation, call });
    }
    let on_queue = queue_path(req.path);
    let content_type = req.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    // A form body, or any body posted to a queue URL; never a Lambda payload.
    let form = crate::action::is_form(req) || (content_type.is_empty() && on_queue.is_some());
    let mut params = crate::action::query_protocol_params(req, form);
    let action = params.iter().find(|(k, _)| k == "Action").map(|(_, v)| v.clone())?;
    let versioned = params.iter().any(|(k, v)| k == "Version" && v == VERSION);
    if !versioned && on_queue.is_none() {
        return None;
    }
    if let Some(path) = on_queue {
        if !params.iter().any(|(k, _)| k == "QueueUrl") {
            params.push(("QueueUrl".into(), path.to_string()));
        }
    }
    let (operation, call) = decode_call(&action, Protocol::AwsQuery, |op| decode::query(SQS.model(), op, &params));
    Some(SqsRequest { protocol: Protocol::AwsQuery, operation, call })
}

/// SQS's answer to a query-protocol request signed for SQS that names none of its calls.
pub fn unplaced(req: &RawRequest<'_>) -> SqsRequest {
    use crate::action::Unplaced;
    let e = match crate::action::unplaced(req) {
        Unplaced::Malformed => QueueError::Serialization("The request body is not URL-encoded UTF-8.".into()),
        Unplaced::MissingAction => QueueError::MissingAction("The request must contain the parameter Action.".into()),
        Unplaced::MissingVersion { .. } => QueueError::MissingParameter("The request must contain the parameter Version.".into()),
        Unplaced::OtherVersion { action, version } => {
            QueueError::InvalidAction(format!("Could not find operation {action} for version {version}"))
        }
    };
    SqsRequest { protocol: Protocol::AwsQuery, operation: "Unknown", call: Err(e) }
}

/// The operation's static name and its typed call (or SQS's error for the request).
fn decode_call(
    name: &str,
    protocol: Protocol,
    decode: impl FnOnce(&str) -> Result<nimbus_protocol::Input, DecodeError>,
) -> (&'static str, Result<SqsCall, QueueError>) {
    let Some(operation) = crate::action::known_operation(OPERATIONS, name) else {
        return ("Unknown", Err(QueueError::InvalidAction(format!("The action {name} is not valid for this endpoint."))));
    };
    if !SqsCall::OPERATIONS.contains(&operation) {
        return (operation, Err(QueueError::UnsupportedOperation(format!("{operation} is not supported by Nimbus."))));
    }
    let call = decode(operation)
        .and_then(|input| SqsCall::decode(operation, input).expect("served operations decode"))
        .map_err(|e| decode_error(e, protocol));
    (operation, call)
}

/// SQS's answer to a request that does not fit the operation's input shape.
fn decode_error(e: DecodeError, protocol: Protocol) -> QueueError {
    match e {
        DecodeError::Malformed(m) => QueueError::Serialization(format!("Could not parse the request body as JSON: {m}")),
        DecodeError::Missing { member } => {
            let name = member.rsplit('.').next().unwrap_or(&member);
            QueueError::MissingParameter(format!("The request must contain the parameter {name}."))
        }
        DecodeError::Type { member, expected: "integer", value } => {
            let name = member.rsplit('.').next().unwrap_or(&member);
            QueueError::InvalidParameterValue(format!("Value {value} for parameter {name} is invalid. Reason: must be an integer."))
        }
        DecodeError::Type { member, expected, .. } if protocol == Protocol::AwsJson1_0 => {
            QueueError::Serialization(format!("{member} must be a {expected}."))
        }
        DecodeError::Type { member, value, .. } | DecodeError::Binding { member, value, .. } => {
            QueueError::InvalidParameterValue(format!("Value {value} for parameter {member} is invalid."))
        }
        DecodeError::Shape(m) => QueueError::Serialization(m),
    }
}

fn attributes_in(attrs: BTreeMap<String, WireAttributeValue>) -> Result<MessageAttributes, QueueError> {
    let decode = nimbus_queues::message::decode_binary;
    attrs
        .into_iter()
        .map(|(name, v)| {
            Ok((
                name,
                AttributeValue {
                    data_type: v.data_type,
                    string_value: v.string_value,
                    binary_value: v.binary_value.as_deref().map(decode).transpose()?,
                    string_list_values: v.string_list_values,
                    binary_list_values: v.binary_list_values.iter().map(|s| decode(s)).collect::<Result<_, _>>()?,
                },
            ))
        })
        .collect()
}

impl WireMessage {
    fn into_message(self) -> Result<SendMessage, QueueError> {
        Ok(SendMessage {
            body: self.message_body,
            delay_seconds: self.delay_seconds,
            attributes: attributes_in(self.message_attributes)?,
            system_attributes: attributes_in(self.message_system_attributes)?,
            group_id: self.message_group_id,
            dedup_id: self.message_deduplication_id,
        })
    }
}

// ---- executing ----------------------------------------------------------------------

/// Runs one call and encodes its typed output.
async fn run(svc: &QueueService, origin: &str, call: SqsCall, out: &Out<'_>) -> Result<Response<Bytes>, QueueError> {
    let account = svc.account().to_string();
    let queue = |url: &str| queue_name_from_url(url, &account);
    let url = |name: &str| svc.queue_url(origin, name);
    Ok(match call {
        SqsCall::CreateQueue(i) => {
            let name = svc.create_queue(CreateQueue { name: i.queue_name, attributes: i.attributes, tags: i.tags }).await?;
            out.typed(&QueueUrlOutput { queue_url: url(&name) })
        }
        SqsCall::GetQueueUrl(i) => {
            if i.queue_owner_aws_account_id.is_some_and(|owner| owner != account) {
                return Err(QueueError::QueueDoesNotExist);
            }
            svc.get_queue(&i.queue_name).await?;
            out.typed(&QueueUrlOutput { queue_url: url(&i.queue_name) })
        }
        SqsCall::ListQueues(i) => {
            let (names, next_token) = svc.list_queues(i.queue_name_prefix, i.max_results, i.next_token).await?;
            out.typed(&ListQueuesOutput { queue_urls: names.iter().map(|n| url(n)).collect(), next_token })
        }
        SqsCall::DeleteQueue(i) => {
            svc.delete_queue(&queue(&i.queue_url)?).await?;
            out.empty()
        }
        SqsCall::PurgeQueue(i) => {
            svc.purge_queue(&queue(&i.queue_url)?).await?;
            out.empty()
        }
        SqsCall::GetQueueAttributes(i) => {
            let attributes = svc.get_queue_attributes(&queue(&i.queue_url)?, &i.attribute_names).await?;
            out.typed(&AttributesOutput { attributes })
        }
        SqsCall::SetQueueAttributes(i) => {
            svc.set_queue_attributes(&queue(&i.queue_url)?, i.attributes).await?;
            out.empty()
        }
        SqsCall::SendMessage(i) => {
            let q = queue(&i.queue_url)?;
            out.typed(&SendMessageOutput::from(svc.send_message(&q, i.message.into_message()?).await?))
        }
        SqsCall::SendMessageBatch(i) => {
            let q = queue(&i.queue_url)?;
            let entries = i
                .entries
                .into_iter()
                .map(|e| Ok(BatchEntry { id: e.id, input: e.message.into_message()? }))
                .collect::<Result<Vec<_>, QueueError>>()?;
            let outcome = svc.send_message_batch(&q, entries).await?;
            out.typed(&BatchOutput::from_outcome(outcome, |id, r| SendMessageBatchResultEntry { id, result: r.into() }))
        }
        SqsCall::ReceiveMessage(i) => {
            let q = queue(&i.queue_url)?;
            let mut system_attribute_names = i.attribute_names;
            system_attribute_names.extend(i.message_system_attribute_names);
            let request = ReceiveRequest {
                max_messages: i.max_number_of_messages.unwrap_or(1),
                visibility_timeout: i.visibility_timeout,
                wait_time_seconds: i.wait_time_seconds,
                system_attribute_names,
                message_attribute_names: i.message_attribute_names,
            };
            let messages = svc.receive_message(&q, request).await?;
            out.typed(&ReceiveMessageOutput { messages: messages.into_iter().map(MessageOutput::from).collect() })
        }
        SqsCall::DeleteMessage(i) => {
            svc.delete_message(&queue(&i.queue_url)?, &i.receipt_handle).await?;
            out.empty()
        }
        SqsCall::DeleteMessageBatch(i) => {
            let q = queue(&i.queue_url)?;
            let entries = i.entries.into_iter().map(|e| BatchEntry { id: e.id, input: e.receipt_handle }).collect();
            let outcome = svc.delete_message_batch(&q, entries).await?;
            out.typed(&BatchOutput::from_outcome(outcome, |id, ()| BatchIdEntry { id }))
        }
        SqsCall::ChangeMessageVisibility(i) => {
            svc.change_message_visibility(&queue(&i.queue_url)?, &i.receipt_handle, i.visibility_timeout).await?;
            out.empty()
        }
        SqsCall::ChangeMessageVisibilityBatch(i) => {
            let q = queue(&i.queue_url)?;
            let entries = i
                .entries
                .into_iter()
                .map(|e| BatchEntry {
                    id: e.id,
                    input: VisibilityChange { receipt_handle: e.receipt_handle, visibility_timeout: e.visibility_timeout },
                })
                .collect();
            let outcome = svc.change_message_visibility_batch(&q, entries).await?;
            out.typed(&BatchOutput::from_outcome(outcome, |id, ()| BatchIdEntry { id }))
        }
        SqsCall::TagQueue(i) => {
            svc.tag_queue(&queue(&i.queue_url)?, i.tags).await?;
            out.empty()
        }
        SqsCall::UntagQueue(i) => {
            svc.untag_queue(&queue(&i.queue_url)?, i.tag_keys).await?;
            out.empty()
        }
        SqsCall::ListQueueTags(i) => out.typed(&TagsOutput { tags: svc.list_queue_tags(&queue(&i.queue_url)?).await? }),
        SqsCall::ListDeadLetterSourceQueues(i) => {
            let (names, next_token) = svc.list_dead_letter_source_queues(&queue(&i.queue_url)?, i.max_results, i.next_token).await?;
            out.typed(&ListDeadLetterSourceQueuesOutput { queue_urls: names.iter().map(|n| url(n)).collect(), next_token })
        }
    })
}

/// Where a call's answer goes: its protocol, operation and request id.
struct Out<'a> {
    protocol: Protocol,
    operation: &'a str,
    request_id: &'a str,
}

impl Out<'_> {
    fn typed<T: Serialize>(&self, output: &T) -> Response<Bytes> {
        encode::output(&SQS, self.protocol, self.operation, output, self.request_id)
    }

    fn empty(&self) -> Response<Bytes> {
        encode::empty(&SQS, self.protocol, self.operation, self.request_id)
    }
}

/// Runs an SQS request and answers in its protocol.
/// QueueDoesNotExist as the query protocol words it.
struct QueryMissingQueue(QueueError);

impl std::fmt::Display for QueryMissingQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("The specified queue does not exist for this wsdl version.")
    }
}

impl nimbus_protocol::AwsError for QueryMissingQueue {
    fn code(&self) -> &str {
        nimbus_protocol::AwsError::code(&self.0)
    }
    fn query_code(&self) -> &str {
        nimbus_protocol::AwsError::query_code(&self.0)
    }
    fn status(&self) -> u16 {
        nimbus_protocol::AwsError::status(&self.0)
    }
}

/// Runs the request; queue URLs are given under `origin` (`http(s)://host`).
pub async fn execute(svc: &QueueService, req: SqsRequest, origin: &str) -> Response<Body> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let out = Out { protocol: req.protocol, operation: req.operation, request_id: &request_id };
    let result = match req.call {
        Ok(call) => run(svc, origin, call, &out).await,
        Err(e) => Err(e),
    };
    let response = result.unwrap_or_else(|e| {
        if let QueueError::Internal(m) = &e {
            tracing::error!(operation = req.operation, "sqs: {m}");
        }
        match (&e, req.protocol) {
            // The query protocol's text for a missing queue names the WSDL version.
            (QueueError::QueueDoesNotExist, Protocol::AwsQuery) => encode::error(&SQS, req.protocol, &QueryMissingQueue(e), &request_id),
            _ => encode::error(&SQS, req.protocol, &e, &request_id),
        }
    });
    response.map(crate::response::Body::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue, Method};

    fn query(path: &str, body: &str) -> Option<SqsRequest> {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/x-www-form-urlencoded"));
        headers.insert("host", HeaderValue::from_static("localhost:9001"));
        let req = RawRequest::for_test(&Method::POST, path, None, &headers, Bytes::from(body.to_string()));
        recognize(&req)
    }

    #[test]
    fn query_protocol_decodes_to_typed_calls() {
        let body = "Action=SendMessageBatch&Version=2012-11-05&QueueUrl=http%3A%2F%2Flocalhost%3A9001%2F000000000000%2Fq\
            &SendMessageBatchRequestEntry.1.Id=a&SendMessageBatchRequestEntry.1.MessageBody=hi+there\
            &SendMessageBatchRequestEntry.1.MessageAttribute.1.Name=City&SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.DataType=String\
            &SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringValue=Any%20City\
            &SendMessageBatchRequestEntry.2.Id=b&SendMessageBatchRequestEntry.2.MessageBody=x&SendMessageBatchRequestEntry.2.DelaySeconds=5";
        let r = query("/", body).expect("sqs");
        assert_eq!(r.protocol, Protocol::AwsQuery);
        let Ok(SqsCall::SendMessageBatch(i)) = r.call else { panic!("{:?}", r.call) };
        assert_eq!(i.queue_url, "http://localhost:9001/000000000000/q");
        assert_eq!(i.entries.len(), 2);
        let first = i.entries.into_iter().next().expect("entry").message.into_message().expect("valid");
        assert_eq!(first.body, "hi there");
        assert_eq!(first.attributes["City"].string_value.as_deref(), Some("Any City"));

        let r = query("/000000000000/q", "Action=ReceiveMessage&AttributeName.1=All&MessageAttributeName.1=geo.*&MaxNumberOfMessages=3")
            .expect("sqs");
        let Ok(SqsCall::ReceiveMessage(i)) = r.call else { panic!() };
        assert_eq!((i.queue_url.as_str(), i.max_number_of_messages), ("/000000000000/q", Some(3)));
        assert_eq!(i.attribute_names, vec!["All"]);
        assert_eq!(i.message_attribute_names, vec!["geo.*"]);

        let r = query("/", "Action=CreateQueue&Version=2012-11-05&QueueName=q&Attribute.1.Name=VisibilityTimeout&Attribute.1.Value=5&Tag.1.Key=k&Tag.1.Value=v")
            .expect("sqs");
        let Ok(SqsCall::CreateQueue(c)) = r.call else { panic!() };
        assert_eq!(c.attributes["VisibilityTimeout"], "5");
        assert_eq!(c.tags["k"], "v");

        assert!(query("/", "Action=Publish&Version=2010-03-31").is_none(), "another service's query");
        assert!(query("/2015-03-31/functions", "").is_none());
        let headers = HeaderMap::new();
        let invoke = RawRequest::for_test(
            &Method::POST,
            "/2015-03-31/functions/f/invocations",
            None,
            &headers,
            Bytes::from_static(b"Action=SendMessage&Version=2012-11-05"),
        );
        assert!(recognize(&invoke).is_none(), "a Lambda payload is never an SQS form");
    }

    #[test]
    fn decoding_errors_are_sqs_errors() {
        let cases: &[(&str, &str)] = &[
            ("Action=Nope&Version=2012-11-05", "InvalidAction"),
            ("Action=AddPermission&Version=2012-11-05", "AWS.SimpleQueueService.UnsupportedOperation"),
            ("Action=DeleteMessage&Version=2012-11-05&QueueUrl=q", "MissingParameter"),
            ("Action=ReceiveMessage&Version=2012-11-05&QueueUrl=q&MaxNumberOfMessages=x", "InvalidParameterValue"),
            ("Action=SendMessage&Version=2012-11-05&QueueUrl=q&MessageBody=b&MessageAttribute.1.Name=a", "MissingParameter"),
        ];
        for (body, code) in cases {
            let e = query("/", body).expect("sqs").call.expect_err(body);
            assert_eq!(e.query_code(), *code, "{body}: {e}");
        }
    }
}

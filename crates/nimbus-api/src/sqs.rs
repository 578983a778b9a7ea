//! SQS on the wire: recognises SQS requests in both of AWS's protocols (JSON 1.0 with
//! `X-Amz-Target: AmazonSQS.<Action>`, and the query protocol's form posts, also sent to a
//! queue's URL), parses them into typed [`SqsCall`]s for `nimbus-queues`, and renders results
//! and errors exactly as SQS does (JSON bodies with `__type` plus `x-amzn-query-error`, or
//! XML documents with a RequestId).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use nimbus_model::Partition;
use nimbus_queues::{
    queue_name_from_url, AttributeValue, BatchEntry, BatchFailure, BatchOutcome, CreateQueue, MessageAttributes, QueueError, QueueService,
    ReceiveRequest, ReceivedMessage, SendMessage, SendResult, VisibilityChange,
};
use serde_json::{json, Map, Value};

use crate::action::{form_pairs, RawRequest};
use crate::response::{self, Body};

const XMLNS: &str = "http://queue.amazonaws.com/doc/2012-11-05/";
const VERSION: &str = "2012-11-05";

/// Which protocol the caller speaks (and is answered in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqsProtocol {
    Json,
    Query,
}

/// One SQS request: the operation, parsed (or the error AWS would answer while parsing).
#[derive(Debug)]
pub struct SqsRequest {
    pub protocol: SqsProtocol,
    pub operation: &'static str,
    /// `Host` of the request: queue URLs are built on it.
    pub host: String,
    pub call: Result<SqsCall, QueueError>,
}

/// Every SQS operation Nimbus serves, with typed inputs. Queues are named (URLs resolved).
#[derive(Debug)]
pub enum SqsCall {
    CreateQueue(CreateQueue),
    GetQueueUrl { name: String },
    ListQueues { prefix: Option<String>, max_results: Option<i64>, next_token: Option<String> },
    DeleteQueue { queue: String },
    PurgeQueue { queue: String },
    GetQueueAttributes { queue: String, names: Vec<String> },
    SetQueueAttributes { queue: String, attributes: BTreeMap<String, String> },
    SendMessage { queue: String, message: Box<SendMessage> },
    SendMessageBatch { queue: String, entries: Vec<BatchEntry<SendMessage>> },
    ReceiveMessage { queue: String, request: ReceiveRequest },
    DeleteMessage { queue: String, receipt_handle: String },
    DeleteMessageBatch { queue: String, entries: Vec<BatchEntry<String>> },
    ChangeMessageVisibility { queue: String, receipt_handle: String, visibility_timeout: i64 },
    ChangeMessageVisibilityBatch { queue: String, entries: Vec<BatchEntry<VisibilityChange>> },
    TagQueue { queue: String, tags: BTreeMap<String, String> },
    UntagQueue { queue: String, keys: Vec<String> },
    ListQueueTags { queue: String },
    ListDeadLetterSourceQueues { queue: String, max_results: Option<i64>, next_token: Option<String> },
}

/// The operations, with the names IAM policies use.
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

fn operation(name: &str) -> Option<&'static str> {
    crate::action::known_operation(OPERATIONS, name)
}

// ---- recognising and parsing --------------------------------------------------------

/// `/<12-digit account>/<queue>`: the path of a queue URL.
fn queue_path(path: &str) -> Option<&str> {
    let mut parts = path.trim_matches('/').split('/');
    let (account, name, rest) = (parts.next()?, parts.next()?, parts.next());
    (rest.is_none() && account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty()).then_some(path)
}

/// Returns the SQS request `req` carries, or `None` when it is not an SQS request.
pub fn recognize(req: &RawRequest<'_>, partition: &Partition) -> Option<SqsRequest> {
    let host = req.headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("localhost").to_string();
    if let Some(target) = req.headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        let op_name = target.strip_prefix("AmazonSQS.")?;
        let (operation, call) = match operation(op_name) {
            Some(op) => (op, parse_json(op, &req.body, &partition.account_id)),
            None => ("Unknown", Err(QueueError::InvalidAction(format!("The action {op_name} is not valid for this endpoint.")))),
        };
        return Some(SqsRequest { protocol: SqsProtocol::Json, operation, host, call });
    }
    let mut params: Vec<(String, String)> = req.query.map(|q| form_pairs(q).collect()).unwrap_or_default();
    let on_queue = queue_path(req.path);
    let content_type = req.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    // A form body, or any body posted to a queue URL; never a Lambda payload.
    let form = content_type.starts_with("application/x-www-form-urlencoded") || (content_type.is_empty() && on_queue.is_some());
    if form && !req.body.is_empty() {
        if let Ok(body) = std::str::from_utf8(&req.body) {
            params.extend(form_pairs(body));
        }
    }
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
    let (operation, call) = match operation(&action) {
        Some(op) => (op, extract(op, &query_to_json(&params), &partition.account_id)),
        None => ("Unknown", Err(QueueError::InvalidAction(format!("The action {action} is not valid for this endpoint.")))),
    };
    Some(SqsRequest { protocol: SqsProtocol::Query, operation, host, call })
}

fn parse_json(op: &'static str, body: &[u8], account: &str) -> Result<SqsCall, QueueError> {
    let input: Value = if body.is_empty() {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(body).map_err(|e| QueueError::Serialization(format!("Could not parse the request body as JSON: {e}")))?
    };
    if !input.is_object() {
        return Err(QueueError::Serialization("The request body must be a JSON object.".into()));
    }
    extract(op, &input, account)
}

/// A parsed `a.1.b=c` parameter tree.
#[derive(Debug, Default)]
struct Tree {
    value: Option<String>,
    children: BTreeMap<String, Tree>,
}

impl Tree {
    fn insert(&mut self, path: &[&str], value: String) {
        match path.split_first() {
            None => self.value = Some(value),
            Some((head, rest)) => self.children.entry(head.to_string()).or_default().insert(rest, value),
        }
    }

    /// The members of a list (`x.1`, `x.2`, or `x.member.1`), in index order.
    fn items(&self) -> Vec<&Tree> {
        let base = self.children.get("member").unwrap_or(self);
        let mut v: Vec<(u64, &Tree)> = base.children.iter().filter_map(|(k, t)| k.parse::<u64>().ok().map(|i| (i, t))).collect();
        v.sort_by_key(|(i, _)| *i);
        v.into_iter().map(|(_, t)| t).collect()
    }

    fn text(&self, key: &str) -> Option<String> {
        self.children.get(key).and_then(|t| t.value.clone())
    }
}

/// Converts query parameters to the JSON protocol's input shape, so both protocols share
/// one extraction.
fn query_to_json(params: &[(String, String)]) -> Value {
    let mut root = Tree::default();
    for (k, v) in params {
        let path: Vec<&str> = k.split('.').collect();
        root.insert(&path, v.clone());
    }
    tree_to_json(&root)
}

fn attribute_value_json(t: &Tree) -> Value {
    let mut o = Map::new();
    for key in ["DataType", "StringValue", "BinaryValue"] {
        if let Some(v) = t.text(key) {
            o.insert(key.into(), Value::String(v));
        }
    }
    for (from, to) in [("StringListValue", "StringListValues"), ("BinaryListValue", "BinaryListValues")] {
        if let Some(l) = t.children.get(from) {
            o.insert(to.into(), Value::Array(l.items().iter().filter_map(|i| i.value.clone().map(Value::String)).collect()));
        }
    }
    Value::Object(o)
}

fn tree_to_json(t: &Tree) -> Value {
    let mut o = Map::new();
    for (key, child) in &t.children {
        let pairs = |k: &str, v: &str| -> Map<String, Value> {
            child.items().iter().filter_map(|i| Some((i.text(k)?, Value::String(i.text(v).unwrap_or_default())))).collect()
        };
        let list = || -> Value { Value::Array(child.items().iter().filter_map(|i| i.value.clone().map(Value::String)).collect()) };
        match key.as_str() {
            "Attribute" => {
                o.insert("Attributes".into(), Value::Object(pairs("Name", "Value")));
            }
            "Tag" => {
                let tags = Value::Object(pairs("Key", "Value"));
                o.insert("Tags".into(), tags.clone());
                o.insert("tags".into(), tags);
            }
            "Tags" => {
                o.insert("Tags".into(), Value::Object(pairs("Key", "Value")));
            }
            "AttributeName" | "AttributeNames" => {
                o.insert("AttributeNames".into(), list());
            }
            "MessageSystemAttributeName" | "MessageSystemAttributeNames" => {
                o.insert("MessageSystemAttributeNames".into(), list());
            }
            "MessageAttributeName" | "MessageAttributeNames" => {
                o.insert("MessageAttributeNames".into(), list());
            }
            "TagKey" | "TagKeys" => {
                o.insert("TagKeys".into(), list());
            }
            "MessageAttribute" | "MessageSystemAttribute" => {
                let m: Map<String, Value> = child
                    .items()
                    .iter()
                    .filter_map(|i| Some((i.text("Name")?, i.children.get("Value").map(attribute_value_json).unwrap_or(Value::Null))))
                    .collect();
                o.insert(format!("{key}s"), Value::Object(m));
            }
            k if k.ends_with("BatchRequestEntry") => {
                o.insert("Entries".into(), Value::Array(child.items().iter().map(|i| tree_to_json(i)).collect()));
            }
            _ => {
                if let Some(v) = &child.value {
                    o.insert(key.clone(), Value::String(v.clone()));
                }
            }
        }
    }
    Value::Object(o)
}

fn missing(name: &str) -> QueueError {
    QueueError::MissingParameter(format!("The request must contain the parameter {name}."))
}

fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.get(name).filter(|x| !x.is_null())
}

fn opt_str(v: &Value, name: &str) -> Result<Option<String>, QueueError> {
    match field(v, name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(_) => Err(QueueError::Serialization(format!("{name} must be a string."))),
    }
}

fn req_str(v: &Value, name: &str) -> Result<String, QueueError> {
    opt_str(v, name)?.ok_or_else(|| missing(name))
}

fn opt_int(v: &Value, name: &str) -> Result<Option<i64>, QueueError> {
    match field(v, name) {
        None => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| bad_int(name, &n.to_string())),
        Some(Value::String(s)) => s.trim().parse::<i64>().map(Some).map_err(|_| bad_int(name, s)),
        Some(other) => Err(bad_int(name, &other.to_string())),
    }
}

fn str_list(v: &Value, name: &str) -> Result<Vec<String>, QueueError> {
    match field(v, name) {
        None => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map(str::to_string).ok_or_else(|| QueueError::Serialization(format!("{name} must be a list of strings."))))
            .collect(),
        Some(_) => Err(QueueError::Serialization(format!("{name} must be a list of strings."))),
    }
}

fn str_map(v: &Value, name: &str) -> Result<BTreeMap<String, String>, QueueError> {
    match field(v, name) {
        None => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, x)| match x {
                Value::String(s) => Ok((k.clone(), s.clone())),
                Value::Number(n) => Ok((k.clone(), n.to_string())),
                Value::Bool(b) => Ok((k.clone(), b.to_string())),
                _ => Err(QueueError::Serialization(format!("{name} values must be strings."))),
            })
            .collect(),
        Some(_) => Err(QueueError::Serialization(format!("{name} must be a map of strings."))),
    }
}

fn message_attributes(v: &Value, name: &str) -> Result<MessageAttributes, QueueError> {
    let Some(m) = field(v, name) else { return Ok(MessageAttributes::new()) };
    let Value::Object(m) = m else { return Err(QueueError::Serialization(format!("{name} must be a map."))) };
    let mut out = MessageAttributes::new();
    for (attr, value) in m {
        let data_type = opt_str(value, "DataType")?.unwrap_or_default();
        let binary = |s: Option<String>| s.map(|s| nimbus_queues::message::decode_binary(&s)).transpose();
        out.insert(
            attr.clone(),
            AttributeValue {
                data_type,
                string_value: opt_str(value, "StringValue")?,
                binary_value: binary(opt_str(value, "BinaryValue")?)?,
                string_list_values: str_list(value, "StringListValues")?,
                binary_list_values: str_list(value, "BinaryListValues")?
                    .iter()
                    .map(|s| nimbus_queues::message::decode_binary(s))
                    .collect::<Result<_, _>>()?,
            },
        );
    }
    Ok(out)
}

fn send_input(v: &Value) -> Result<SendMessage, QueueError> {
    Ok(SendMessage {
        body: opt_str(v, "MessageBody")?.unwrap_or_default(),
        delay_seconds: opt_int(v, "DelaySeconds")?,
        attributes: message_attributes(v, "MessageAttributes")?,
        system_attributes: message_attributes(v, "MessageSystemAttributes")?,
        group_id: opt_str(v, "MessageGroupId")?,
        dedup_id: opt_str(v, "MessageDeduplicationId")?,
    })
}

fn entries<T>(v: &Value, each: impl Fn(&Value) -> Result<T, QueueError>) -> Result<Vec<BatchEntry<T>>, QueueError> {
    let list = match field(v, "Entries") {
        None => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => return Err(QueueError::Serialization("Entries must be a list.".into())),
    };
    list.iter().map(|e| Ok(BatchEntry { id: opt_str(e, "Id")?.unwrap_or_default(), input: each(e)? })).collect()
}

fn extract(op: &'static str, v: &Value, account: &str) -> Result<SqsCall, QueueError> {
    let queue = || -> Result<String, QueueError> { queue_name_from_url(&req_str(v, "QueueUrl")?, account) };
    Ok(match op {
        "CreateQueue" => SqsCall::CreateQueue(CreateQueue {
            name: req_str(v, "QueueName")?,
            attributes: str_map(v, "Attributes")?,
            tags: str_map(v, "tags")?,
        }),
        "GetQueueUrl" => {
            if let Some(owner) = opt_str(v, "QueueOwnerAWSAccountId")? {
                if owner != account {
                    return Err(QueueError::QueueDoesNotExist);
                }
            }
            SqsCall::GetQueueUrl { name: req_str(v, "QueueName")? }
        }
        "ListQueues" => SqsCall::ListQueues {
            prefix: opt_str(v, "QueueNamePrefix")?,
            max_results: opt_int(v, "MaxResults")?,
            next_token: opt_str(v, "NextToken")?,
        },
        "DeleteQueue" => SqsCall::DeleteQueue { queue: queue()? },
        "PurgeQueue" => SqsCall::PurgeQueue { queue: queue()? },
        "GetQueueAttributes" => SqsCall::GetQueueAttributes { queue: queue()?, names: str_list(v, "AttributeNames")? },
        "SetQueueAttributes" => SqsCall::SetQueueAttributes { queue: queue()?, attributes: str_map(v, "Attributes")? },
        "SendMessage" => {
            let q = queue()?;
            if field(v, "MessageBody").is_none() {
                return Err(missing("MessageBody"));
            }
            SqsCall::SendMessage { queue: q, message: Box::new(send_input(v)?) }
        }
        "SendMessageBatch" => SqsCall::SendMessageBatch { queue: queue()?, entries: entries(v, send_input)? },
        "ReceiveMessage" => {
            let mut system = str_list(v, "AttributeNames")?;
            system.extend(str_list(v, "MessageSystemAttributeNames")?);
            SqsCall::ReceiveMessage {
                queue: queue()?,
                request: ReceiveRequest {
                    max_messages: opt_int(v, "MaxNumberOfMessages")?.unwrap_or(1),
                    visibility_timeout: opt_int(v, "VisibilityTimeout")?,
                    wait_time_seconds: opt_int(v, "WaitTimeSeconds")?,
                    system_attribute_names: system,
                    message_attribute_names: str_list(v, "MessageAttributeNames")?,
                },
            }
        }
        "DeleteMessage" => SqsCall::DeleteMessage { queue: queue()?, receipt_handle: req_str(v, "ReceiptHandle")? },
        "DeleteMessageBatch" => SqsCall::DeleteMessageBatch { queue: queue()?, entries: entries(v, |e| req_str(e, "ReceiptHandle"))? },
        "ChangeMessageVisibility" => SqsCall::ChangeMessageVisibility {
            queue: queue()?,
            receipt_handle: req_str(v, "ReceiptHandle")?,
            visibility_timeout: opt_int(v, "VisibilityTimeout")?.ok_or_else(|| missing("VisibilityTimeout"))?,
        },
        "ChangeMessageVisibilityBatch" => SqsCall::ChangeMessageVisibilityBatch {
            queue: queue()?,
            entries: entries(v, |e| {
                Ok(VisibilityChange {
                    receipt_handle: req_str(e, "ReceiptHandle")?,
                    visibility_timeout: opt_int(e, "VisibilityTimeout")?.ok_or_else(|| missing("VisibilityTimeout"))?,
                })
            })?,
        },
        "TagQueue" => SqsCall::TagQueue { queue: queue()?, tags: str_map(v, "Tags")? },
        "UntagQueue" => SqsCall::UntagQueue { queue: queue()?, keys: str_list(v, "TagKeys")? },
        "ListQueueTags" => SqsCall::ListQueueTags { queue: queue()? },
        "ListDeadLetterSourceQueues" => SqsCall::ListDeadLetterSourceQueues {
            queue: queue()?,
            max_results: opt_int(v, "MaxResults")?,
            next_token: opt_str(v, "NextToken")?,
        },
        other => return Err(QueueError::UnsupportedOperation(format!("{other} is not supported by Nimbus."))),
    })
}

fn bad_int(name: &str, value: &str) -> QueueError {
    QueueError::InvalidParameterValue(format!("Value {value} for parameter {name} is invalid. Reason: must be an integer."))
}

// ---- executing ----------------------------------------------------------------------

fn attribute_value_out(v: &AttributeValue) -> Value {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let mut o = Map::new();
    o.insert("DataType".into(), json!(v.data_type));
    if let Some(s) = &v.string_value {
        o.insert("StringValue".into(), json!(s));
    }
    if let Some(b) = &v.binary_value {
        o.insert("BinaryValue".into(), json!(b64(b)));
    }
    if !v.string_list_values.is_empty() {
        o.insert("StringListValues".into(), json!(v.string_list_values));
    }
    if !v.binary_list_values.is_empty() {
        o.insert("BinaryListValues".into(), json!(v.binary_list_values.iter().map(|b| b64(b)).collect::<Vec<_>>()));
    }
    Value::Object(o)
}

fn sent_out(r: &SendResult) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("MessageId".into(), json!(r.message_id));
    o.insert("MD5OfMessageBody".into(), json!(r.md5_of_body));
    if let Some(m) = &r.md5_of_attributes {
        o.insert("MD5OfMessageAttributes".into(), json!(m));
    }
    if let Some(m) = &r.md5_of_system_attributes {
        o.insert("MD5OfMessageSystemAttributes".into(), json!(m));
    }
    if let Some(s) = &r.sequence_number {
        o.insert("SequenceNumber".into(), json!(s));
    }
    o
}

fn received_out(m: &ReceivedMessage) -> Value {
    let mut o = Map::new();
    o.insert("MessageId".into(), json!(m.message_id));
    o.insert("ReceiptHandle".into(), json!(m.receipt_handle));
    o.insert("MD5OfBody".into(), json!(m.md5_of_body));
    o.insert("Body".into(), json!(m.body));
    if !m.attributes.is_empty() {
        o.insert("Attributes".into(), json!(m.attributes));
    }
    if let Some(md5) = &m.md5_of_message_attributes {
        o.insert("MD5OfMessageAttributes".into(), json!(md5));
        let attrs: Map<String, Value> = m.message_attributes.iter().map(|(k, v)| (k.clone(), attribute_value_out(v))).collect();
        o.insert("MessageAttributes".into(), Value::Object(attrs));
    }
    Value::Object(o)
}

fn failures_out(f: &[BatchFailure]) -> Value {
    Value::Array(f.iter().map(|f| json!({"Id": f.id, "SenderFault": f.sender_fault, "Code": f.code, "Message": f.message})).collect())
}

fn batch_out<T>(b: &BatchOutcome<T>, each: impl Fn(&str, &T) -> Value) -> Value {
    json!({
        "Successful": b.successful.iter().map(|(id, t)| each(id, t)).collect::<Vec<_>>(),
        "Failed": failures_out(&b.failed),
    })
}

fn page_out(key: &str, urls: Vec<String>, token: Option<String>) -> Value {
    let mut o = Map::new();
    if !urls.is_empty() || key == "queueUrls" {
        o.insert(key.into(), json!(urls));
    }
    if let Some(t) = token {
        o.insert("NextToken".into(), json!(t));
    }
    Value::Object(o)
}

async fn run(svc: &QueueService, host: &str, call: SqsCall) -> Result<Value, QueueError> {
    let url = |name: &str| svc.queue_url(host, name);
    Ok(match call {
        SqsCall::CreateQueue(input) => json!({"QueueUrl": url(&svc.create_queue(input).await?)}),
        SqsCall::GetQueueUrl { name } => {
            svc.get_queue(&name).await?;
            json!({"QueueUrl": url(&name)})
        }
        SqsCall::ListQueues { prefix, max_results, next_token } => {
            let (names, token) = svc.list_queues(prefix, max_results, next_token).await?;
            page_out("QueueUrls", names.iter().map(|n| url(n)).collect(), token)
        }
        SqsCall::DeleteQueue { queue } => {
            svc.delete_queue(&queue).await?;
            json!({})
        }
        SqsCall::PurgeQueue { queue } => {
            svc.purge_queue(&queue).await?;
            json!({})
        }
        SqsCall::GetQueueAttributes { queue, names } => {
            let attrs = svc.get_queue_attributes(&queue, &names).await?;
            if attrs.is_empty() {
                json!({})
            } else {
                json!({"Attributes": attrs})
            }
        }
        SqsCall::SetQueueAttributes { queue, attributes } => {
            svc.set_queue_attributes(&queue, attributes).await?;
            json!({})
        }
        SqsCall::SendMessage { queue, message } => Value::Object(sent_out(&svc.send_message(&queue, *message).await?)),
        SqsCall::SendMessageBatch { queue, entries } => {
            let out = svc.send_message_batch(&queue, entries).await?;
            batch_out(&out, |id, r| {
                let mut o = sent_out(r);
                o.insert("Id".into(), json!(id));
                Value::Object(o)
            })
        }
        SqsCall::ReceiveMessage { queue, request } => {
            let msgs = svc.receive_message(&queue, request).await?;
            if msgs.is_empty() {
                json!({})
            } else {
                json!({"Messages": msgs.iter().map(received_out).collect::<Vec<_>>()})
            }
        }
        SqsCall::DeleteMessage { queue, receipt_handle } => {
            svc.delete_message(&queue, &receipt_handle).await?;
            json!({})
        }
        SqsCall::DeleteMessageBatch { queue, entries } => {
            batch_out(&svc.delete_message_batch(&queue, entries).await?, |id, _| json!({"Id": id}))
        }
        SqsCall::ChangeMessageVisibility { queue, receipt_handle, visibility_timeout } => {
            svc.change_message_visibility(&queue, &receipt_handle, visibility_timeout).await?;
            json!({})
        }
        SqsCall::ChangeMessageVisibilityBatch { queue, entries } => {
            batch_out(&svc.change_message_visibility_batch(&queue, entries).await?, |id, _| json!({"Id": id}))
        }
        SqsCall::TagQueue { queue, tags } => {
            svc.tag_queue(&queue, tags).await?;
            json!({})
        }
        SqsCall::UntagQueue { queue, keys } => {
            svc.untag_queue(&queue, keys).await?;
            json!({})
        }
        SqsCall::ListQueueTags { queue } => {
            let tags = svc.list_queue_tags(&queue).await?;
            if tags.is_empty() {
                json!({})
            } else {
                json!({"Tags": tags})
            }
        }
        SqsCall::ListDeadLetterSourceQueues { queue, max_results, next_token } => {
            let (names, token) = svc.list_dead_letter_source_queues(&queue, max_results, next_token).await?;
            page_out("queueUrls", names.iter().map(|n| url(n)).collect(), token)
        }
    })
}

/// Runs an SQS request and answers in its protocol.
pub async fn execute(svc: &QueueService, req: SqsRequest) -> Response<Body> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let result = match req.call {
        Ok(call) => run(svc, &req.host, call).await,
        Err(e) => Err(e),
    };
    if let Err(QueueError::Internal(e)) = &result {
        tracing::error!(operation = req.operation, "sqs: {e}");
    }
    let mut r = match (req.protocol, result) {
        (SqsProtocol::Json, Ok(v)) => json_response(StatusCode::OK, &v),
        (SqsProtocol::Json, Err(e)) => {
            let body = json!({"__type": format!("com.amazonaws.sqs#{}", e.type_name()), "message": e.to_string()});
            let mut r = json_response(status(&e), &body);
            let fault = if e.sender_fault() { "Sender" } else { "Receiver" };
            if let Ok(h) = HeaderValue::from_str(&format!("{};{fault}", e.query_code())) {
                r.headers_mut().insert("x-amzn-query-error", h);
            }
            r
        }
        (SqsProtocol::Query, Ok(v)) => xml_response(StatusCode::OK, result_xml(req.operation, &v, &request_id)),
        (SqsProtocol::Query, Err(e)) => xml_response(status(&e), error_xml(&e, &request_id)),
    };
    if let Ok(h) = HeaderValue::from_str(&request_id) {
        r.headers_mut().insert("x-amzn-requestid", h);
    }
    r
}

fn status(e: &QueueError) -> StatusCode {
    StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST)
}

fn json_response(status: StatusCode, v: &Value) -> Response<Body> {
    let mut r = response::json(status, v);
    r.headers_mut().insert("content-type", HeaderValue::from_static("application/x-amz-json-1.0"));
    r
}

fn xml_response(status: StatusCode, body: String) -> Response<Body> {
    response::raw(status, "text/xml", Bytes::from(body))
}

// ---- XML (query protocol) -----------------------------------------------------------

fn escape(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Writes `key: value` as the query protocol's XML: maps as flattened `Name`/`Value` (or
/// `Key`/`Value`) entries, lists as repeated elements named as SQS names them.
fn write_field(out: &mut String, op: &str, key: &str, v: &Value) {
    match (key, v) {
        ("Attributes" | "MessageAttributes" | "Tags", Value::Object(m)) => {
            let (elem, k_name) = match key {
                "Attributes" => ("Attribute", "Name"),
                "MessageAttributes" => ("MessageAttribute", "Name"),
                _ => ("Tag", "Key"),
            };
            for (k, val) in m {
                let _ = write!(out, "<{elem}><{k_name}>");
                escape(out, k);
                let _ = write!(out, "</{k_name}>");
                write_field(out, op, "Value", val);
                let _ = write!(out, "</{elem}>");
            }
        }
        (_, Value::Array(items)) => {
            let elem = match key {
                "QueueUrls" | "queueUrls" => "QueueUrl".to_string(),
                "Messages" => "Message".to_string(),
                "Failed" => "BatchResultErrorEntry".to_string(),
                "Successful" => format!("{op}ResultEntry"),
                "StringListValues" => "StringListValue".to_string(),
                "BinaryListValues" => "BinaryListValue".to_string(),
                other => other.to_string(),
            };
            for item in items {
                write_field(out, op, &elem, item);
            }
        }
        (_, Value::Object(m)) => {
            let _ = write!(out, "<{key}>");
            for (k, val) in m {
                write_field(out, op, k, val);
            }
            let _ = write!(out, "</{key}>");
        }
        _ => {
            let _ = write!(out, "<{key}>");
            escape(out, &scalar(v));
            let _ = write!(out, "</{key}>");
        }
    }
}

fn result_xml(op: &str, v: &Value, request_id: &str) -> String {
    let mut out = String::with_capacity(512);
    let _ = write!(out, "<?xml version=\"1.0\"?><{op}Response xmlns=\"{XMLNS}\">");
    let fields = v.as_object().filter(|m| !m.is_empty());
    let has_result = !matches!(
        op,
        "DeleteQueue" | "PurgeQueue" | "SetQueueAttributes" | "DeleteMessage" | "ChangeMessageVisibility" | "TagQueue" | "UntagQueue"
    );
    if has_result {
        let _ = write!(out, "<{op}Result>");
        if let Some(m) = fields {
            for (k, val) in m {
                write_field(&mut out, op, k, val);
            }
        }
        let _ = write!(out, "</{op}Result>");
    }
    let _ = write!(out, "<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{op}Response>");
    out
}

fn error_xml(e: &QueueError, request_id: &str) -> String {
    let mut out = String::with_capacity(256);
    let fault = if e.sender_fault() { "Sender" } else { "Receiver" };
    let _ = write!(
        out,
        "<?xml version=\"1.0\"?><ErrorResponse xmlns=\"{XMLNS}\"><Error><Type>{fault}</Type><Code>{}</Code><Message>",
        e.query_code()
    );
    escape(&mut out, &e.to_string());
    let _ = write!(out, "</Message><Detail/></Error><RequestId>{request_id}</RequestId></ErrorResponse>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, Method};

    fn partition() -> Partition {
        Partition { region: "us-east-1".into(), account_id: "000000000000".into() }
    }

    fn query(path: &str, body: &str) -> Option<SqsRequest> {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/x-www-form-urlencoded"));
        headers.insert("host", HeaderValue::from_static("localhost:9001"));
        let req = RawRequest {
            url_domain: "lambda-url.us-east-1.localhost",
            api_domain: "execute-api.us-east-1.localhost",
            source_ip: "127.0.0.1".into(),
            method: &Method::POST,
            path,
            query: None,
            headers: &headers,
            body: Bytes::from(body.to_string()),
        };
        recognize(&req, &partition())
    }

    #[test]
    fn query_protocol_parses_to_typed_calls() {
        let body = "Action=SendMessageBatch&Version=2012-11-05&QueueUrl=http%3A%2F%2Flocalhost%3A9001%2F000000000000%2Fq\
            &SendMessageBatchRequestEntry.1.Id=a&SendMessageBatchRequestEntry.1.MessageBody=hi+there\
            &SendMessageBatchRequestEntry.1.MessageAttribute.1.Name=City&SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.DataType=String\
            &SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringValue=Any%20City\
            &SendMessageBatchRequestEntry.2.Id=b&SendMessageBatchRequestEntry.2.MessageBody=x&SendMessageBatchRequestEntry.2.DelaySeconds=5";
        let r = query("/", body).expect("sqs");
        assert_eq!(r.protocol, SqsProtocol::Query);
        let Ok(SqsCall::SendMessageBatch { queue, entries }) = r.call else { panic!("{:?}", r.call) };
        assert_eq!(queue, "q");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].input.body, "hi there");
        assert_eq!(entries[0].input.attributes["City"].string_value.as_deref(), Some("Any City"));
        assert_eq!(entries[1].input.delay_seconds, Some(5));

        let r = query("/000000000000/q", "Action=ReceiveMessage&AttributeName.1=All&MessageAttributeName.1=geo.*&MaxNumberOfMessages=3")
            .expect("sqs");
        let Ok(SqsCall::ReceiveMessage { queue, request }) = r.call else { panic!() };
        assert_eq!((queue.as_str(), request.max_messages), ("q", 3));
        assert_eq!(request.system_attribute_names, vec!["All"]);
        assert_eq!(request.message_attribute_names, vec!["geo.*"]);

        let r = query("/", "Action=CreateQueue&Version=2012-11-05&QueueName=q&Attribute.1.Name=VisibilityTimeout&Attribute.1.Value=5&Tag.1.Key=k&Tag.1.Value=v").expect("sqs");
        let Ok(SqsCall::CreateQueue(c)) = r.call else { panic!() };
        assert_eq!(c.attributes["VisibilityTimeout"], "5");
        assert_eq!(c.tags["k"], "v");

        assert!(query("/", "Action=Publish&Version=2010-03-31").is_none(), "another service's query");
        assert!(query("/2015-03-31/functions", "").is_none());
        let headers = HeaderMap::new();
        let invoke = RawRequest {
            url_domain: "lambda-url.us-east-1.localhost",
            api_domain: "execute-api.us-east-1.localhost",
            source_ip: "127.0.0.1".into(),
            method: &Method::POST,
            path: "/2015-03-31/functions/f/invocations",
            query: None,
            headers: &headers,
            body: Bytes::from_static(b"Action=SendMessage&Version=2012-11-05"),
        };
        assert!(recognize(&invoke, &partition()).is_none(), "a Lambda payload is never an SQS form");
        let r = query("/", "Action=Nope&Version=2012-11-05").expect("sqs");
        assert!(matches!(r.call, Err(QueueError::InvalidAction(_))));
        let r = query("/", "Action=DeleteMessage&Version=2012-11-05&QueueUrl=q").expect("sqs");
        assert!(matches!(r.call, Err(QueueError::MissingParameter(_))));
    }

    #[test]
    fn xml_rendering() {
        let v = json!({"Messages": [{"Body": "a<b", "Attributes": {"SentTimestamp": "1"}, "MessageAttributes": {"c": {"DataType": "String", "StringValue": "d"}}}]});
        let x = result_xml("ReceiveMessage", &v, "rid");
        assert!(x.contains("<ReceiveMessageResult><Message>"), "{x}");
        assert!(x.contains("<Body>a&lt;b</Body>"), "{x}");
        assert!(x.contains("<Attribute><Name>SentTimestamp</Name><Value>1</Value></Attribute>"), "{x}");
        assert!(
            x.contains(
                "<MessageAttribute><Name>c</Name><Value><DataType>String</DataType><StringValue>d</StringValue></Value></MessageAttribute>"
            ),
            "{x}"
        );
        let x = result_xml("DeleteMessageBatch", &json!({"Successful": [{"Id": "a"}], "Failed": []}), "rid");
        assert!(x.contains("<DeleteMessageBatchResultEntry><Id>a</Id></DeleteMessageBatchResultEntry>"), "{x}");
        let x = result_xml("DeleteMessage", &json!({}), "rid");
        assert_eq!(x, format!("<?xml version=\"1.0\"?><DeleteMessageResponse xmlns=\"{XMLNS}\"><ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata></DeleteMessageResponse>"));
        let e = error_xml(&QueueError::QueueDoesNotExist, "rid");
        assert!(e.contains("<Type>Sender</Type><Code>AWS.SimpleQueueService.NonExistentQueue</Code>"), "{e}");
    }
}

//! SNS on the wire: recognises SNS requests (AWS's query protocol, `Version=2010-03-31`,
//! form posts or query strings, and the bare `Action=ConfirmSubscription` /
//! `Action=Unsubscribe` links SNS hands out), parses them into typed [`SnsCall`]s for
//! `nimbus-topics`, and answers with SNS's XML documents and errors. botocore speaks SNS
//! only in the query protocol.

use std::collections::BTreeMap;

use base64::Engine;
use bytes::Bytes;
use http::{Method, Response};
use nimbus_protocol::{calls, decode, encode, DecodeError, Protocol, SNS};
use nimbus_topics::{
    BatchOutcome, MessageAttribute, MessageAttributes, PublishInput, PublishResult, SubscribeInput, SubscriptionSummary, TopicError,
    TopicService,
};
use serde::{Deserialize, Serialize};

use crate::action::RawRequest;
use crate::response::Body;

mod target;

const VERSION: &str = "2010-03-31";

/// One SNS request: the operation and its decoded call (or the error AWS would answer).
#[derive(Debug)]
pub struct SnsRequest {
    pub operation: &'static str,
    pub call: Result<SnsCall, TopicError>,
}

calls! {
    /// Every SNS operation Nimbus serves, with its typed input (as SNS's model names it).
    pub enum SnsCall {
        CreateTopic(CreateTopicInput),
        DeleteTopic(TopicInput),
        ListTopics(PageInput),
        GetTopicAttributes(TopicInput),
        SetTopicAttributes(SetTopicAttributesInput),
        Subscribe(SubscribeWire),
        ConfirmSubscription(ConfirmSubscriptionInput),
        Unsubscribe(SubscriptionInput),
        ListSubscriptions(PageInput),
        ListSubscriptionsByTopic(ListSubscriptionsByTopicInput),
        GetSubscriptionAttributes(SubscriptionInput),
        SetSubscriptionAttributes(SetSubscriptionAttributesInput),
        Publish(PublishWire),
        PublishBatch(PublishBatchInput),
        TagResource(TagResourceInput),
        UntagResource(UntagResourceInput),
        ListTagsForResource(ResourceInput),
    }
}

// ---- typed inputs ---------------------------------------------------------------------

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    key: String,
    value: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateTopicInput {
    name: String,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
    #[serde(default)]
    tags: Vec<Tag>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TopicInput {
    topic_arn: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PageInput {
    next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SetTopicAttributesInput {
    topic_arn: String,
    attribute_name: String,
    attribute_value: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SubscribeWire {
    topic_arn: String,
    protocol: String,
    endpoint: Option<String>,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
    #[serde(default)]
    return_subscription_arn: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConfirmSubscriptionInput {
    topic_arn: String,
    token: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SubscriptionInput {
    subscription_arn: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListSubscriptionsByTopicInput {
    topic_arn: String,
    next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SetSubscriptionAttributesInput {
    subscription_arn: String,
    attribute_name: String,
    attribute_value: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireAttributeValue {
    data_type: String,
    string_value: Option<String>,
    binary_value: Option<String>,
}

/// A message to publish, in Publish and in PublishBatch's entries.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireMessage {
    message: String,
    subject: Option<String>,
    message_structure: Option<String>,
    #[serde(default)]
    message_attributes: BTreeMap<String, WireAttributeValue>,
    message_group_id: Option<String>,
    message_deduplication_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PublishWire {
    topic_arn: Option<String>,
    target_arn: Option<String>,
    phone_number: Option<String>,
    #[serde(flatten)]
    message: WireMessage,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PublishBatchEntry {
    id: String,
    #[serde(flatten)]
    message: WireMessage,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PublishBatchInput {
    topic_arn: String,
    publish_batch_request_entries: Vec<PublishBatchEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagResourceInput {
    resource_arn: String,
    tags: Vec<Tag>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UntagResourceInput {
    resource_arn: String,
    tag_keys: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourceInput {
    resource_arn: String,
}

impl WireMessage {
    fn into_input(self) -> Result<PublishInput, TopicError> {
        let mut attributes = MessageAttributes::new();
        for (name, v) in self.message_attributes {
            let binary_value = match v.binary_value {
                Some(b) => Some(base64::engine::general_purpose::STANDARD.decode(b.trim()).map_err(|_| {
                    TopicError::ParameterValueInvalid(format!(
                        "The message attribute '{name}' has an invalid binary value: it is not base64."
                    ))
                })?),
                None => None,
            };
            attributes.insert(name, MessageAttribute { data_type: v.data_type, string_value: v.string_value, binary_value });
        }
        Ok(PublishInput {
            message: self.message,
            subject: self.subject,
            message_structure: self.message_structure,
            attributes,
            group_id: self.message_group_id,
            dedup_id: self.message_deduplication_id,
        })
    }
}

fn tag_map(tags: Vec<Tag>) -> BTreeMap<String, String> {
    tags.into_iter().map(|t| (t.key, t.value)).collect()
}

// ---- typed outputs --------------------------------------------------------------------

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct TopicArnOutput {
    topic_arn: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SubscriptionArnOutput {
    subscription_arn: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListTopicsOutput {
    topics: Vec<TopicArnOutput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct AttributesOutput {
    attributes: BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SubscriptionOutput {
    subscription_arn: String,
    owner: String,
    protocol: String,
    endpoint: String,
    topic_arn: String,
}

impl From<SubscriptionSummary> for SubscriptionOutput {
    fn from(s: SubscriptionSummary) -> Self {
        SubscriptionOutput {
            subscription_arn: s.subscription_arn,
            owner: s.owner,
            protocol: s.protocol,
            endpoint: s.endpoint,
            topic_arn: s.topic_arn,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListSubscriptionsOutput {
    subscriptions: Vec<SubscriptionOutput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

impl ListSubscriptionsOutput {
    fn new((subs, next_token): (Vec<SubscriptionSummary>, Option<String>)) -> Self {
        ListSubscriptionsOutput { subscriptions: subs.into_iter().map(SubscriptionOutput::from).collect(), next_token }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PublishOutput {
    message_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sequence_number: Option<String>,
}

impl From<PublishResult> for PublishOutput {
    fn from(r: PublishResult) -> Self {
        PublishOutput { message_id: r.message_id, sequence_number: r.sequence_number }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PublishBatchResultEntry {
    id: String,
    #[serde(flatten)]
    result: PublishOutput,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct BatchResultErrorEntry {
    id: String,
    code: String,
    message: String,
    sender_fault: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PublishBatchOutput {
    successful: Vec<PublishBatchResultEntry>,
    failed: Vec<BatchResultErrorEntry>,
}

impl From<BatchOutcome> for PublishBatchOutput {
    fn from(b: BatchOutcome) -> Self {
        PublishBatchOutput {
            successful: b.successful.into_iter().map(|(id, r)| PublishBatchResultEntry { id, result: r.into() }).collect(),
            failed: b
                .failed
                .into_iter()
                .map(|f| BatchResultErrorEntry { id: f.id, code: f.code, message: f.message, sender_fault: f.sender_fault })
                .collect(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct TagsOutput {
    tags: Vec<Tag>,
}

/// The operations, with the names IAM policies use.
const OPERATIONS: &crate::action::OperationTable = &[
    ("CreateTopic", "sns:CreateTopic"),
    ("DeleteTopic", "sns:DeleteTopic"),
    ("ListTopics", "sns:ListTopics"),
    ("GetTopicAttributes", "sns:GetTopicAttributes"),
    ("SetTopicAttributes", "sns:SetTopicAttributes"),
    ("Subscribe", "sns:Subscribe"),
    ("ConfirmSubscription", "sns:ConfirmSubscription"),
    ("Unsubscribe", "sns:Unsubscribe"),
    ("ListSubscriptions", "sns:ListSubscriptions"),
    ("ListSubscriptionsByTopic", "sns:ListSubscriptionsByTopic"),
    ("GetSubscriptionAttributes", "sns:GetSubscriptionAttributes"),
    ("SetSubscriptionAttributes", "sns:SetSubscriptionAttributes"),
    ("Publish", "sns:Publish"),
    ("PublishBatch", "sns:PublishBatch"),
    ("TagResource", "sns:TagResource"),
    ("UntagResource", "sns:UntagResource"),
    ("ListTagsForResource", "sns:ListTagsForResource"),
];

impl SnsRequest {
    /// The IAM action name (`sns:Publish`).
    pub fn name(&self) -> &'static str {
        crate::action::iam_action(OPERATIONS, self.operation, "sns:Unknown")
    }
}

// ---- recognising and decoding -------------------------------------------------------

/// Returns the SNS request `req` carries, or `None` when it is not one: a query-protocol
/// request to `/` with `Version=2010-03-31`, or an unversioned `ConfirmSubscription` /
/// `Unsubscribe` (the links in SNS's messages).
pub fn recognize(req: &RawRequest<'_>) -> Option<SnsRequest> {
    if req.headers.contains_key("x-amz-target") || !matches!(req.path, "" | "/") {
        return None;
    }
    let params = crate::action::query_protocol_params(req, crate::action::is_form(req));
    let action = params.iter().rev().find(|(k, _)| k == "Action").map(|(_, v)| v.clone())?;
    match params.iter().rev().find(|(k, _)| k == "Version").map(|(_, v)| v.as_str()) {
        Some(VERSION) => {}
        None if matches!(action.as_str(), "ConfirmSubscription" | "Unsubscribe") && matches!(*req.method, Method::GET | Method::POST) => {}
        _ => return None,
    }
    let Some(operation) = crate::action::known_operation(OPERATIONS, &action) else {
        let e = TopicError::InvalidAction(format!("Could not find operation {action} for version {VERSION}"));
        return Some(SnsRequest { operation: "Unknown", call: Err(e) });
    };
    let call = decode::query(SNS.model(), operation, &params)
        .and_then(|input| SnsCall::decode(operation, input).expect("every listed operation is served"))
        .map_err(decode_error);
    Some(SnsRequest { operation, call })
}

/// SNS's answer to a query-protocol request signed for SNS that names none of its calls.
pub fn unplaced(req: &RawRequest<'_>) -> SnsRequest {
    use crate::action::Unplaced;
    let e = match crate::action::unplaced(req) {
        Unplaced::Malformed => TopicError::MalformedQueryString("The request body is not URL-encoded UTF-8.".into()),
        Unplaced::MissingAction => TopicError::MissingAction("The request must contain the parameter Action.".into()),
        Unplaced::MissingVersion { .. } => TopicError::MissingParameter("The request must contain the parameter Version.".into()),
        Unplaced::OtherVersion { action, version } => {
            TopicError::InvalidAction(format!("Could not find operation {action} for version {version}"))
        }
    };
    SnsRequest { operation: "Unknown", call: Err(e) }
}

/// SNS's answer to a request that does not fit the operation's input shape: AWS's
/// validation message, naming the member in lowerCamelCase (`messageAttributes.a.member.dataType`).
fn decode_error(e: DecodeError) -> TopicError {
    let camel = |s: &str| {
        let mut c = s.chars();
        c.next().map(|f| f.to_ascii_lowercase().to_string() + c.as_str()).unwrap_or_default()
    };
    let path = |member: &str| {
        let parts: Vec<&str> = member.split('.').collect();
        match parts.as_slice() {
            [collection, item, rest @ ..] if !rest.is_empty() => {
                format!("{}.{item}.member.{}", camel(collection), rest.iter().map(|p| camel(p)).collect::<Vec<_>>().join("."))
            }
            _ => parts.iter().map(|p| camel(p)).collect::<Vec<_>>().join("."),
        }
    };
    match e {
        DecodeError::Missing { member } => TopicError::Validation(format!(
            "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
            path(&member)
        )),
        DecodeError::Type { member, value, expected } | DecodeError::Binding { member, value, expected } => {
            TopicError::invalid(format!("{member} Reason: {value} is not a valid {expected}", member = path(&member)))
        }
        DecodeError::Malformed(m) | DecodeError::Shape(m) => TopicError::invalid(m),
    }
}

// ---- running ----------------------------------------------------------------------------

/// Where a call's answer goes: its operation and request id.
struct Out<'a> {
    operation: &'a str,
    request_id: &'a str,
}

impl Out<'_> {
    fn typed<T: Serialize>(&self, output: &T) -> Response<Bytes> {
        encode::output(&SNS, Protocol::AwsQuery, self.operation, output, self.request_id)
    }

    fn empty(&self) -> Response<Bytes> {
        encode::empty(&SNS, Protocol::AwsQuery, self.operation, self.request_id)
    }
}

/// Runs one call and encodes its typed output.
async fn run(svc: &TopicService, call: SnsCall, out: &Out<'_>) -> Result<Response<Bytes>, TopicError> {
    Ok(match call {
        SnsCall::CreateTopic(i) => {
            out.typed(&TopicArnOutput { topic_arn: svc.create_topic(&i.name, i.attributes, tag_map(i.tags)).await? })
        }
        SnsCall::DeleteTopic(i) => {
            svc.delete_topic(&i.topic_arn).await?;
            out.empty()
        }
        SnsCall::ListTopics(i) => {
            let (arns, next_token) = svc.list_topics(i.next_token.as_deref())?;
            out.typed(&ListTopicsOutput { topics: arns.into_iter().map(|topic_arn| TopicArnOutput { topic_arn }).collect(), next_token })
        }
        SnsCall::GetTopicAttributes(i) => out.typed(&AttributesOutput { attributes: svc.get_topic_attributes(&i.topic_arn)? }),
        SnsCall::SetTopicAttributes(i) => {
            svc.set_topic_attributes(&i.topic_arn, &i.attribute_name, &i.attribute_value.unwrap_or_default()).await?;
            out.empty()
        }
        SnsCall::Subscribe(i) => {
            let input = SubscribeInput {
                topic_arn: i.topic_arn,
                protocol: i.protocol,
                endpoint: i.endpoint,
                attributes: i.attributes,
                return_subscription_arn: i.return_subscription_arn,
            };
            out.typed(&SubscriptionArnOutput { subscription_arn: svc.subscribe(input).await? })
        }
        SnsCall::ConfirmSubscription(i) => {
            out.typed(&SubscriptionArnOutput { subscription_arn: svc.confirm_subscription(&i.topic_arn, &i.token).await? })
        }
        SnsCall::Unsubscribe(i) => {
            svc.unsubscribe(&i.subscription_arn).await?;
            out.empty()
        }
        SnsCall::ListSubscriptions(i) => out.typed(&ListSubscriptionsOutput::new(svc.list_subscriptions(i.next_token.as_deref())?)),
        SnsCall::ListSubscriptionsByTopic(i) => {
            out.typed(&ListSubscriptionsOutput::new(svc.list_subscriptions_by_topic(&i.topic_arn, i.next_token.as_deref())?))
        }
        SnsCall::GetSubscriptionAttributes(i) => {
            out.typed(&AttributesOutput { attributes: svc.get_subscription_attributes(&i.subscription_arn)? })
        }
        SnsCall::SetSubscriptionAttributes(i) => {
            svc.set_subscription_attributes(&i.subscription_arn, &i.attribute_name, &i.attribute_value.unwrap_or_default()).await?;
            out.empty()
        }
        SnsCall::Publish(i) => {
            if i.phone_number.is_some() && i.topic_arn.is_none() && i.target_arn.is_none() {
                return Err(TopicError::invalid("PhoneNumber Reason: Nimbus does not send SMS"));
            }
            let topic_arn = i
                .topic_arn
                .or(i.target_arn)
                .ok_or_else(|| TopicError::invalid("TopicArn or TargetArn Reason: no value for required parameter"))?;
            out.typed(&PublishOutput::from(svc.publish(&topic_arn, i.message.into_input()?).await?))
        }
        SnsCall::PublishBatch(i) => {
            let entries = i
                .publish_batch_request_entries
                .into_iter()
                .map(|e| Ok((e.id, e.message.into_input()?)))
                .collect::<Result<Vec<_>, TopicError>>()?;
            out.typed(&PublishBatchOutput::from(svc.publish_batch(&i.topic_arn, entries).await?))
        }
        SnsCall::TagResource(i) => {
            svc.tag_resource(&i.resource_arn, tag_map(i.tags)).await?;
            out.empty()
        }
        SnsCall::UntagResource(i) => {
            svc.untag_resource(&i.resource_arn, &i.tag_keys).await?;
            out.empty()
        }
        SnsCall::ListTagsForResource(i) => {
            let tags = svc.list_tags_for_resource(&i.resource_arn)?.into_iter().map(|(key, value)| Tag { key, value }).collect();
            out.typed(&TagsOutput { tags })
        }
    })
}

/// Runs an SNS request and answers with SNS's XML.
pub async fn execute(svc: &TopicService, req: SnsRequest) -> Response<Body> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let out = Out { operation: req.operation, request_id: &request_id };
    let result = match req.call {
        Ok(call) => run(svc, call, &out).await,
        Err(e) => Err(e),
    };
    let response = result.unwrap_or_else(|e| {
        if let TopicError::Internal(msg) = &e {
            tracing::error!(operation = req.operation, "sns: {msg}");
        }
        encode::error(&SNS, Protocol::AwsQuery, &e, &request_id)
    });
    response.map(crate::response::Body::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};

    fn request(method: &Method, path: &str, query: Option<&str>, body: &str) -> Option<SnsRequest> {
        let mut headers = HeaderMap::new();
        if !body.is_empty() {
            headers.insert("content-type", HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"));
        }
        let req = RawRequest::for_test(method, path, query, &headers, Bytes::from(body.to_string()));
        recognize(&req)
    }

    fn post(body: &str) -> Option<SnsRequest> {
        request(&Method::POST, "/", None, body)
    }

    #[test]
    fn query_requests_decode_to_typed_calls() {
        // What botocore sends (see its query serializer).
        let r = post("Action=Publish&Version=2010-03-31&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A000000000000%3At&Message=hi+there&Subject=s\
            &MessageAttributes.entry.1.Name=a&MessageAttributes.entry.1.Value.DataType=String&MessageAttributes.entry.1.Value.StringValue=v\
            &MessageAttributes.entry.2.Name=b&MessageAttributes.entry.2.Value.DataType=Binary&MessageAttributes.entry.2.Value.BinaryValue=AQ%3D%3D")
        .expect("sns");
        assert_eq!(r.name(), "sns:Publish");
        let Ok(SnsCall::Publish(p)) = r.call else { panic!("{:?}", r.call) };
        assert_eq!(p.topic_arn.as_deref(), Some("arn:aws:sns:us-east-1:000000000000:t"));
        let input = p.message.into_input().expect("valid");
        assert_eq!(input.message, "hi there");
        assert_eq!(input.subject.as_deref(), Some("s"));
        assert_eq!(input.attributes["a"], MessageAttribute::string("String", "v"));
        assert_eq!(input.attributes["b"], MessageAttribute::binary("Binary", &[1]));

        let r = post("Action=CreateTopic&Version=2010-03-31&Name=t&Attributes.entry.1.key=FifoTopic&Attributes.entry.1.value=true&Tags.member.1.Key=a&Tags.member.1.Value=b").expect("sns");
        let Ok(SnsCall::CreateTopic(c)) = r.call else { panic!() };
        assert_eq!((c.name.as_str(), c.attributes["FifoTopic"].as_str(), tag_map(c.tags)["a"].as_str()), ("t", "true", "b"));

        let r = post("Action=PublishBatch&Version=2010-03-31&TopicArn=x&PublishBatchRequestEntries.member.2.Id=two&PublishBatchRequestEntries.member.2.Message=m2\
            &PublishBatchRequestEntries.member.1.Id=one&PublishBatchRequestEntries.member.1.Message=m1&PublishBatchRequestEntries.member.1.MessageGroupId=g\
            &PublishBatchRequestEntries.member.1.MessageAttributes.entry.1.Name=a&PublishBatchRequestEntries.member.1.MessageAttributes.entry.1.Value.DataType=Number\
            &PublishBatchRequestEntries.member.1.MessageAttributes.entry.1.Value.StringValue=5").expect("sns");
        let Ok(SnsCall::PublishBatch(b)) = r.call else { panic!() };
        let entries: Vec<(String, PublishInput)> =
            b.publish_batch_request_entries.into_iter().map(|e| (e.id, e.message.into_input().expect("valid"))).collect();
        assert_eq!(entries.iter().map(|(id, e)| (id.as_str(), e.message.as_str())).collect::<Vec<_>>(), [("one", "m1"), ("two", "m2")]);
        assert_eq!(entries[0].1.group_id.as_deref(), Some("g"));
        assert_eq!(entries[0].1.attributes["a"], MessageAttribute::string("Number", "5"));

        let r = post("Action=UntagResource&Version=2010-03-31&ResourceArn=x&TagKeys.member.1=a&TagKeys.member.2=b").expect("sns");
        let Ok(SnsCall::UntagResource(u)) = r.call else { panic!() };
        assert_eq!(u.tag_keys, ["a", "b"]);

        let r = post("Action=Subscribe&Version=2010-03-31&TopicArn=x&Protocol=sqs&Endpoint=e&Attributes.entry.1.key=RawMessageDelivery&Attributes.entry.1.value=true&ReturnSubscriptionArn=true").expect("sns");
        let Ok(SnsCall::Subscribe(s)) = r.call else { panic!() };
        assert!(s.return_subscription_arn);
        assert_eq!(s.attributes["RawMessageDelivery"], "true");

        // The links SNS sends to HTTP endpoints carry no Version.
        let r = request(&Method::GET, "/", Some("Action=ConfirmSubscription&TopicArn=arn%3Ax&Token=abc"), "").expect("sns");
        assert!(matches!(r.call, Ok(SnsCall::ConfirmSubscription(ref c)) if c.token == "abc"));

        let r = post("Action=CreateTopic&Version=2010-03-31").expect("sns");
        let Err(TopicError::Validation(m)) = r.call else { panic!("{:?}", r.call) };
        assert_eq!(m, "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null");
        let r = post("Action=Publish&Version=2010-03-31&TopicArn=t&Message=m&MessageAttributes.entry.1.Name=a").expect("sns");
        let Err(TopicError::Validation(m)) = r.call else { panic!("{:?}", r.call) };
        assert!(m.contains("'messageAttributes.a.member.dataType'"), "{m}");
        let r = post("Action=Nope&Version=2010-03-31").expect("sns");
        assert!(matches!(r.call, Err(TopicError::InvalidAction(_))));

        assert!(post("Action=SendMessage&Version=2012-11-05").is_none(), "SQS's query protocol");
        assert!(post("Action=Publish").is_none(), "no version");
        assert!(request(&Method::POST, "/2015-03-31/functions/f/invocations", None, "Action=Publish&Version=2010-03-31").is_none());
    }
}

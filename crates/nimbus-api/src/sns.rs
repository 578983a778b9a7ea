//! SNS on the wire: recognises SNS requests (AWS's query protocol, `Version=2010-03-31`,
//! form posts or query strings, and the bare `Action=ConfirmSubscription` /
//! `Action=Unsubscribe` links SNS hands out), parses them into typed [`SnsCall`]s for
//! `nimbus-topics`, and answers with SNS's XML documents and errors. botocore speaks SNS
//! only in the query protocol.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode};
use nimbus_topics::{
    BatchOutcome, MessageAttribute, MessageAttributes, PublishInput, PublishResult, SubscribeInput, SubscriptionSummary, TopicError,
    TopicService,
};

use crate::action::{form_pairs, RawRequest};
use crate::response::{self, Body};

const XMLNS: &str = "http://sns.amazonaws.com/doc/2010-03-31/";
const VERSION: &str = "2010-03-31";

/// One SNS request: the operation and its parsed input (or the error AWS would answer).
#[derive(Debug)]
pub struct SnsRequest {
    pub operation: &'static str,
    pub call: Result<SnsCall, TopicError>,
}

/// Every SNS operation Nimbus serves, with typed inputs.
#[derive(Debug)]
pub enum SnsCall {
    CreateTopic { name: String, attributes: BTreeMap<String, String>, tags: BTreeMap<String, String> },
    DeleteTopic { topic_arn: String },
    ListTopics { next_token: Option<String> },
    GetTopicAttributes { topic_arn: String },
    SetTopicAttributes { topic_arn: String, name: String, value: String },
    Subscribe(SubscribeInput),
    ConfirmSubscription { topic_arn: String, token: String },
    Unsubscribe { subscription_arn: String },
    ListSubscriptions { next_token: Option<String> },
    ListSubscriptionsByTopic { topic_arn: String, next_token: Option<String> },
    GetSubscriptionAttributes { subscription_arn: String },
    SetSubscriptionAttributes { subscription_arn: String, name: String, value: String },
    Publish { topic_arn: String, input: Box<PublishInput> },
    PublishBatch { topic_arn: String, entries: Vec<(String, PublishInput)> },
    TagResource { arn: String, tags: BTreeMap<String, String> },
    UntagResource { arn: String, keys: Vec<String> },
    ListTagsForResource { arn: String },
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

fn operation(name: &str) -> Option<&'static str> {
    crate::action::known_operation(OPERATIONS, name)
}

// ---- recognising and parsing --------------------------------------------------------

/// Returns the SNS request `req` carries, or `None` when it is not one: a query-protocol
/// request to `/` with `Version=2010-03-31`, or an unversioned `ConfirmSubscription` /
/// `Unsubscribe` (the links in SNS's messages).
pub fn recognize(req: &RawRequest<'_>) -> Option<SnsRequest> {
    if req.headers.contains_key("x-amz-target") || !matches!(req.path, "" | "/") {
        return None;
    }
    let mut params: BTreeMap<String, String> = req.query.map(|q| form_pairs(q).collect()).unwrap_or_default();
    let content_type = req.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    if content_type.starts_with("application/x-www-form-urlencoded") && !req.body.is_empty() {
        if let Ok(body) = std::str::from_utf8(&req.body) {
            params.extend(form_pairs(body));
        }
    }
    let action = params.get("Action")?.clone();
    match params.get("Version").map(String::as_str) {
        Some(VERSION) => {}
        None if matches!(action.as_str(), "ConfirmSubscription" | "Unsubscribe") && matches!(*req.method, Method::GET | Method::POST) => {}
        _ => return None,
    }
    let (operation, call) = match operation(&action) {
        Some(op) => (op, parse(op, &Params(params))),
        None => ("Unknown", Err(TopicError::InvalidAction(format!("Could not find operation {action} for version {VERSION}")))),
    };
    Some(SnsRequest { operation, call })
}

/// Decoded query parameters.
struct Params(BTreeMap<String, String>);

/// AWS's answer for a missing required member (field named in lowerCamelCase).
fn missing(field: &str) -> TopicError {
    TopicError::Validation(format!(
        "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
    ))
}

impl Params {
    fn get(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }

    fn req(&self, key: &str, field: &str) -> Result<String, TopicError> {
        self.get(key).ok_or_else(|| missing(field))
    }

    /// The indices `n` of `<prefix>.<n>.…` (or `<prefix>.<n>`), ascending.
    fn indices(&self, prefix: &str) -> Vec<u64> {
        let p = format!("{prefix}.");
        let mut out: Vec<u64> = self
            .0
            .range(p.clone()..)
            .take_while(|(k, _)| k.starts_with(&p))
            .filter_map(|(k, _)| k[p.len()..].split('.').next()?.parse().ok())
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// A map sent as `<prefix>.entry.<n>.key` / `.value`.
    fn map(&self, prefix: &str) -> BTreeMap<String, String> {
        let base = format!("{prefix}.entry");
        self.indices(&base)
            .into_iter()
            .filter_map(|i| Some((self.get(&format!("{base}.{i}.key"))?, self.get(&format!("{base}.{i}.value")).unwrap_or_default())))
            .collect()
    }

    /// Tags sent as `<prefix>.member.<n>.Key` / `.Value`.
    fn tags(&self, prefix: &str) -> BTreeMap<String, String> {
        let base = format!("{prefix}.member");
        self.indices(&base)
            .into_iter()
            .filter_map(|i| Some((self.get(&format!("{base}.{i}.Key"))?, self.get(&format!("{base}.{i}.Value")).unwrap_or_default())))
            .collect()
    }

    /// A list of strings sent as `<prefix>.member.<n>`.
    fn strings(&self, prefix: &str) -> Vec<String> {
        let base = format!("{prefix}.member");
        self.indices(&base).into_iter().filter_map(|i| self.get(&format!("{base}.{i}"))).collect()
    }

    /// Message attributes under `<prefix>MessageAttributes.entry.<n>.Name` / `.Value.*`.
    fn message_attributes(&self, prefix: &str) -> Result<MessageAttributes, TopicError> {
        let base = format!("{prefix}MessageAttributes.entry");
        let mut out = MessageAttributes::new();
        for i in self.indices(&base) {
            let Some(name) = self.get(&format!("{base}.{i}.Name")) else { continue };
            let v = |k: &str| self.get(&format!("{base}.{i}.Value.{k}"));
            let data_type = v("DataType").ok_or_else(|| missing(&format!("messageAttributes.{name}.member.dataType")))?;
            let binary_value = match v("BinaryValue") {
                Some(b) => Some(base64::engine::general_purpose::STANDARD.decode(b.trim()).map_err(|_| {
                    TopicError::ParameterValueInvalid(format!(
                        "The message attribute '{name}' has an invalid binary value: it is not base64."
                    ))
                })?),
                None => None,
            };
            out.insert(name, MessageAttribute { data_type, string_value: v("StringValue"), binary_value });
        }
        Ok(out)
    }

    fn publish_input(&self, prefix: &str) -> Result<PublishInput, TopicError> {
        let field = |k: &str| self.get(&format!("{prefix}{k}"));
        Ok(PublishInput {
            message: field("Message").ok_or_else(|| missing("message"))?,
            subject: field("Subject"),
            message_structure: field("MessageStructure"),
            attributes: self.message_attributes(prefix)?,
            group_id: field("MessageGroupId"),
            dedup_id: field("MessageDeduplicationId"),
        })
    }
}

fn parse(op: &str, p: &Params) -> Result<SnsCall, TopicError> {
    let topic = || p.req("TopicArn", "topicArn");
    let subscription = || p.req("SubscriptionArn", "subscriptionArn");
    Ok(match op {
        "CreateTopic" => SnsCall::CreateTopic { name: p.req("Name", "name")?, attributes: p.map("Attributes"), tags: p.tags("Tags") },
        "DeleteTopic" => SnsCall::DeleteTopic { topic_arn: topic()? },
        "ListTopics" => SnsCall::ListTopics { next_token: p.get("NextToken") },
        "GetTopicAttributes" => SnsCall::GetTopicAttributes { topic_arn: topic()? },
        "SetTopicAttributes" => SnsCall::SetTopicAttributes {
            topic_arn: topic()?,
            name: p.req("AttributeName", "attributeName")?,
            value: p.get("AttributeValue").unwrap_or_default(),
        },
        "Subscribe" => SnsCall::Subscribe(SubscribeInput {
            topic_arn: topic()?,
            protocol: p.req("Protocol", "protocol")?,
            endpoint: p.get("Endpoint"),
            attributes: p.map("Attributes"),
            return_subscription_arn: p.get("ReturnSubscriptionArn").is_some_and(|v| v.eq_ignore_ascii_case("true")),
        }),
        "ConfirmSubscription" => SnsCall::ConfirmSubscription { topic_arn: topic()?, token: p.req("Token", "token")? },
        "Unsubscribe" => SnsCall::Unsubscribe { subscription_arn: subscription()? },
        "ListSubscriptions" => SnsCall::ListSubscriptions { next_token: p.get("NextToken") },
        "ListSubscriptionsByTopic" => SnsCall::ListSubscriptionsByTopic { topic_arn: topic()?, next_token: p.get("NextToken") },
        "GetSubscriptionAttributes" => SnsCall::GetSubscriptionAttributes { subscription_arn: subscription()? },
        "SetSubscriptionAttributes" => SnsCall::SetSubscriptionAttributes {
            subscription_arn: subscription()?,
            name: p.req("AttributeName", "attributeName")?,
            value: p.get("AttributeValue").unwrap_or_default(),
        },
        "Publish" => {
            if p.get("PhoneNumber").is_some() && p.get("TopicArn").is_none() && p.get("TargetArn").is_none() {
                return Err(TopicError::invalid("PhoneNumber Reason: Nimbus does not send SMS"));
            }
            let topic_arn = p
                .get("TopicArn")
                .or_else(|| p.get("TargetArn"))
                .ok_or_else(|| TopicError::invalid("TopicArn or TargetArn Reason: no value for required parameter"))?;
            SnsCall::Publish { topic_arn, input: Box::new(p.publish_input("")?) }
        }
        "PublishBatch" => {
            let base = "PublishBatchRequestEntries.member";
            let mut entries = Vec::new();
            for i in p.indices(base) {
                let prefix = format!("{base}.{i}.");
                let id = p.get(&format!("{prefix}Id")).ok_or_else(|| missing(&format!("publishBatchRequestEntries.{i}.member.id")))?;
                entries.push((id, p.publish_input(&prefix)?));
            }
            SnsCall::PublishBatch { topic_arn: topic()?, entries }
        }
        "TagResource" => SnsCall::TagResource { arn: p.req("ResourceArn", "resourceArn")?, tags: p.tags("Tags") },
        "UntagResource" => SnsCall::UntagResource { arn: p.req("ResourceArn", "resourceArn")?, keys: p.strings("TagKeys") },
        "ListTagsForResource" => SnsCall::ListTagsForResource { arn: p.req("ResourceArn", "resourceArn")? },
        other => return Err(TopicError::InvalidAction(format!("Could not find operation {other} for version {VERSION}"))),
    })
}

// ---- running and rendering ----------------------------------------------------------

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

fn element(out: &mut String, name: &str, value: &str) {
    let _ = write!(out, "<{name}>");
    escape(out, value);
    let _ = write!(out, "</{name}>");
}

fn attributes_xml(out: &mut String, attrs: &BTreeMap<String, String>) {
    out.push_str("<Attributes>");
    for (k, v) in attrs {
        out.push_str("<entry>");
        element(out, "key", k);
        element(out, "value", v);
        out.push_str("</entry>");
    }
    out.push_str("</Attributes>");
}

fn subscriptions_xml(out: &mut String, subs: &[SubscriptionSummary], next: Option<String>) {
    out.push_str("<Subscriptions>");
    for s in subs {
        out.push_str("<member>");
        element(out, "TopicArn", &s.topic_arn);
        element(out, "Protocol", &s.protocol);
        element(out, "SubscriptionArn", &s.subscription_arn);
        element(out, "Owner", &s.owner);
        element(out, "Endpoint", &s.endpoint);
        out.push_str("</member>");
    }
    out.push_str("</Subscriptions>");
    if let Some(t) = next {
        element(out, "NextToken", &t);
    }
}

fn published_xml(out: &mut String, r: &PublishResult) {
    element(out, "MessageId", &r.message_id);
    if let Some(seq) = &r.sequence_number {
        element(out, "SequenceNumber", seq);
    }
}

fn batch_xml(out: &mut String, b: &BatchOutcome) {
    out.push_str("<Successful>");
    for (id, r) in &b.successful {
        out.push_str("<member>");
        element(out, "Id", id);
        published_xml(out, r);
        out.push_str("</member>");
    }
    out.push_str("</Successful><Failed>");
    for f in &b.failed {
        out.push_str("<member>");
        element(out, "Id", &f.id);
        element(out, "Code", &f.code);
        element(out, "Message", &f.message);
        element(out, "SenderFault", if f.sender_fault { "true" } else { "false" });
        out.push_str("</member>");
    }
    out.push_str("</Failed>");
}

/// Runs the call; returns the `<…Result>` contents, or `None` for operations without one.
async fn run(svc: &TopicService, call: SnsCall) -> Result<Option<String>, TopicError> {
    let mut out = String::new();
    match call {
        SnsCall::CreateTopic { name, attributes, tags } => element(&mut out, "TopicArn", &svc.create_topic(&name, attributes, tags).await?),
        SnsCall::DeleteTopic { topic_arn } => {
            svc.delete_topic(&topic_arn).await?;
            return Ok(None);
        }
        SnsCall::ListTopics { next_token } => {
            let (arns, next) = svc.list_topics(next_token.as_deref())?;
            out.push_str("<Topics>");
            for a in arns {
                out.push_str("<member>");
                element(&mut out, "TopicArn", &a);
                out.push_str("</member>");
            }
            out.push_str("</Topics>");
            if let Some(t) = next {
                element(&mut out, "NextToken", &t);
            }
        }
        SnsCall::GetTopicAttributes { topic_arn } => attributes_xml(&mut out, &svc.get_topic_attributes(&topic_arn)?),
        SnsCall::SetTopicAttributes { topic_arn, name, value } => {
            svc.set_topic_attributes(&topic_arn, &name, &value).await?;
            return Ok(None);
        }
        SnsCall::Subscribe(input) => element(&mut out, "SubscriptionArn", &svc.subscribe(input).await?),
        SnsCall::ConfirmSubscription { topic_arn, token } => {
            element(&mut out, "SubscriptionArn", &svc.confirm_subscription(&topic_arn, &token).await?)
        }
        SnsCall::Unsubscribe { subscription_arn } => {
            svc.unsubscribe(&subscription_arn).await?;
            return Ok(None);
        }
        SnsCall::ListSubscriptions { next_token } => {
            let (subs, next) = svc.list_subscriptions(next_token.as_deref())?;
            subscriptions_xml(&mut out, &subs, next);
        }
        SnsCall::ListSubscriptionsByTopic { topic_arn, next_token } => {
            let (subs, next) = svc.list_subscriptions_by_topic(&topic_arn, next_token.as_deref())?;
            subscriptions_xml(&mut out, &subs, next);
        }
        SnsCall::GetSubscriptionAttributes { subscription_arn } => {
            attributes_xml(&mut out, &svc.get_subscription_attributes(&subscription_arn)?)
        }
        SnsCall::SetSubscriptionAttributes { subscription_arn, name, value } => {
            svc.set_subscription_attributes(&subscription_arn, &name, &value).await?;
            return Ok(None);
        }
        SnsCall::Publish { topic_arn, input } => published_xml(&mut out, &svc.publish(&topic_arn, *input).await?),
        SnsCall::PublishBatch { topic_arn, entries } => batch_xml(&mut out, &svc.publish_batch(&topic_arn, entries).await?),
        SnsCall::TagResource { arn, tags } => svc.tag_resource(&arn, tags).await?,
        SnsCall::UntagResource { arn, keys } => svc.untag_resource(&arn, &keys).await?,
        SnsCall::ListTagsForResource { arn } => {
            out.push_str("<Tags>");
            for (k, v) in svc.list_tags_for_resource(&arn)? {
                out.push_str("<member>");
                element(&mut out, "Key", &k);
                element(&mut out, "Value", &v);
                out.push_str("</member>");
            }
            out.push_str("</Tags>");
        }
    }
    Ok(Some(out))
}

fn result_xml(op: &str, result: Option<&str>, request_id: &str) -> String {
    let mut out = String::with_capacity(256 + result.map_or(0, str::len));
    let _ = write!(out, "<{op}Response xmlns=\"{XMLNS}\">");
    if let Some(r) = result {
        let _ = write!(out, "<{op}Result>{r}</{op}Result>");
    }
    let _ = write!(out, "<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{op}Response>");
    out
}

fn error_xml(e: &TopicError, request_id: &str) -> String {
    let mut out = String::with_capacity(256);
    let fault = if e.sender_fault() { "Sender" } else { "Receiver" };
    let _ = write!(out, "<ErrorResponse xmlns=\"{XMLNS}\"><Error><Type>{fault}</Type><Code>{}</Code><Message>", e.code());
    escape(&mut out, &e.to_string());
    let _ = write!(out, "</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>");
    out
}

/// Runs an SNS request and answers with SNS's XML.
pub async fn execute(svc: &TopicService, req: SnsRequest) -> Response<Body> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let result = match req.call {
        Ok(call) => run(svc, call).await,
        Err(e) => Err(e),
    };
    let (status, body) = match result {
        Ok(r) => (StatusCode::OK, result_xml(req.operation, r.as_deref(), &request_id)),
        Err(e) => {
            if let TopicError::Internal(msg) = &e {
                tracing::error!(operation = req.operation, "sns: {msg}");
            }
            (StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST), error_xml(&e, &request_id))
        }
    };
    let mut r = response::raw(status, "text/xml", Bytes::from(body));
    if let Ok(h) = HeaderValue::from_str(&request_id) {
        r.headers_mut().insert("x-amzn-requestid", h);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    fn request(method: &Method, path: &str, query: Option<&str>, body: &str) -> Option<SnsRequest> {
        let mut headers = HeaderMap::new();
        if !body.is_empty() {
            headers.insert("content-type", HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"));
        }
        let req = RawRequest {
            url_domain: "lambda-url.us-east-1.localhost",
            api_domain: "execute-api.us-east-1.localhost",
            source_ip: "127.0.0.1".into(),
            method,
            path,
            query,
            headers: &headers,
            body: Bytes::from(body.to_string()),
        };
        recognize(&req)
    }

    fn post(body: &str) -> Option<SnsRequest> {
        request(&Method::POST, "/", None, body)
    }

    #[test]
    fn query_requests_parse_to_typed_calls() {
        // What botocore sends (see its query serializer).
        let r = post("Action=Publish&Version=2010-03-31&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A000000000000%3At&Message=hi+there&Subject=s\
            &MessageAttributes.entry.1.Name=a&MessageAttributes.entry.1.Value.DataType=String&MessageAttributes.entry.1.Value.StringValue=v\
            &MessageAttributes.entry.2.Name=b&MessageAttributes.entry.2.Value.DataType=Binary&MessageAttributes.entry.2.Value.BinaryValue=AQ%3D%3D")
        .expect("sns");
        assert_eq!(r.name(), "sns:Publish");
        let Ok(SnsCall::Publish { topic_arn, input }) = r.call else { panic!("{:?}", r.call) };
        assert_eq!(topic_arn, "arn:aws:sns:us-east-1:000000000000:t");
        assert_eq!(input.message, "hi there");
        assert_eq!(input.subject.as_deref(), Some("s"));
        assert_eq!(input.attributes["a"], MessageAttribute::string("String", "v"));
        assert_eq!(input.attributes["b"], MessageAttribute::binary("Binary", &[1]));

        let r = post("Action=CreateTopic&Version=2010-03-31&Name=t&Attributes.entry.1.key=FifoTopic&Attributes.entry.1.value=true&Tags.member.1.Key=a&Tags.member.1.Value=b").expect("sns");
        let Ok(SnsCall::CreateTopic { name, attributes, tags }) = r.call else { panic!() };
        assert_eq!((name.as_str(), attributes["FifoTopic"].as_str(), tags["a"].as_str()), ("t", "true", "b"));

        let r = post("Action=PublishBatch&Version=2010-03-31&TopicArn=x&PublishBatchRequestEntries.member.2.Id=two&PublishBatchRequestEntries.member.2.Message=m2\
            &PublishBatchRequestEntries.member.1.Id=one&PublishBatchRequestEntries.member.1.Message=m1&PublishBatchRequestEntries.member.1.MessageGroupId=g\
            &PublishBatchRequestEntries.member.1.MessageAttributes.entry.1.Name=a&PublishBatchRequestEntries.member.1.MessageAttributes.entry.1.Value.DataType=Number\
            &PublishBatchRequestEntries.member.1.MessageAttributes.entry.1.Value.StringValue=5").expect("sns");
        let Ok(SnsCall::PublishBatch { entries, .. }) = r.call else { panic!() };
        assert_eq!(entries.iter().map(|(id, e)| (id.as_str(), e.message.as_str())).collect::<Vec<_>>(), [("one", "m1"), ("two", "m2")]);
        assert_eq!(entries[0].1.group_id.as_deref(), Some("g"));
        assert_eq!(entries[0].1.attributes["a"], MessageAttribute::string("Number", "5"));

        let r = post("Action=UntagResource&Version=2010-03-31&ResourceArn=x&TagKeys.member.1=a&TagKeys.member.2=b").expect("sns");
        let Ok(SnsCall::UntagResource { keys, .. }) = r.call else { panic!() };
        assert_eq!(keys, ["a", "b"]);

        let r = post("Action=Subscribe&Version=2010-03-31&TopicArn=x&Protocol=sqs&Endpoint=e&Attributes.entry.1.key=RawMessageDelivery&Attributes.entry.1.value=true&ReturnSubscriptionArn=true").expect("sns");
        let Ok(SnsCall::Subscribe(s)) = r.call else { panic!() };
        assert!(s.return_subscription_arn);
        assert_eq!(s.attributes["RawMessageDelivery"], "true");

        // The links SNS sends to HTTP endpoints carry no Version.
        let r = request(&Method::GET, "/", Some("Action=ConfirmSubscription&TopicArn=arn%3Ax&Token=abc"), "").expect("sns");
        assert!(matches!(r.call, Ok(SnsCall::ConfirmSubscription { ref token, .. }) if token == "abc"));

        let r = post("Action=Publish&Version=2010-03-31&Message=x").expect("sns");
        assert!(matches!(r.call, Err(TopicError::InvalidParameter(_))));
        let r = post("Action=CreateTopic&Version=2010-03-31").expect("sns");
        assert!(matches!(r.call, Err(TopicError::Validation(_))));
        let r = post("Action=Nope&Version=2010-03-31").expect("sns");
        assert!(matches!(r.call, Err(TopicError::InvalidAction(_))));

        assert!(post("Action=SendMessage&Version=2012-11-05").is_none(), "SQS's query protocol");
        assert!(post("Action=Publish").is_none(), "no version");
        assert!(request(&Method::POST, "/2015-03-31/functions/f/invocations", None, "Action=Publish&Version=2010-03-31").is_none());
    }

    #[test]
    fn xml_documents() {
        let x = result_xml("Publish", Some("<MessageId>m</MessageId>"), "rid");
        assert_eq!(
            x,
            format!("<PublishResponse xmlns=\"{XMLNS}\"><PublishResult><MessageId>m</MessageId></PublishResult><ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata></PublishResponse>")
        );
        let x = result_xml("DeleteTopic", None, "rid");
        assert!(!x.contains("DeleteTopicResult"), "{x}");
        let e = error_xml(&TopicError::NotFound("Topic does not exist".into()), "rid");
        assert_eq!(
            e,
            format!("<ErrorResponse xmlns=\"{XMLNS}\"><Error><Type>Sender</Type><Code>NotFound</Code><Message>Topic does not exist</Message></Error><RequestId>rid</RequestId></ErrorResponse>")
        );
        let mut out = String::new();
        attributes_xml(&mut out, &BTreeMap::from([("Policy".to_string(), "{\"a\":\"<b>\"}".to_string())]));
        assert_eq!(out, "<Attributes><entry><key>Policy</key><value>{&quot;a&quot;:&quot;&lt;b&gt;&quot;}</value></entry></Attributes>");
    }
}

//! Protocol tables: request bytes → decoded input, typed output → response bytes, per
//! protocol, on the vendored models.

use serde_json::{json, Value};

use crate::{decode, encode, AwsError, DecodeError, Protocol, SNS, SQS};

#[test]
fn every_vendored_model_loads_and_is_closed() {
    for (file, model) in crate::all_models() {
        assert!(!model.operations.is_empty(), "{file}");
        assert_eq!(model.dangling_references(), Vec::<String>::new(), "{file}");
    }
}

fn pairs(q: &str) -> Vec<(String, String)> {
    q.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn decoded_query(op: &str, q: &str) -> Result<Value, DecodeError> {
    decode::query(SQS.model(), op, &pairs(q)).and_then(|i| i.parse::<Value>())
}

#[test]
fn query_decoding_follows_the_model() {
    let cases: &[(&str, &str, Value)] = &[
        (
            "SendMessageBatch",
            "QueueUrl=q&SendMessageBatchRequestEntry.1.Id=a&SendMessageBatchRequestEntry.1.MessageBody=hi\
             &SendMessageBatchRequestEntry.1.MessageAttribute.1.Name=City\
             &SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.DataType=String\
             &SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringValue=Paris\
             &SendMessageBatchRequestEntry.2.Id=b&SendMessageBatchRequestEntry.2.MessageBody=x&SendMessageBatchRequestEntry.2.DelaySeconds=5",
            json!({"QueueUrl": "q", "Entries": [
                {"Id": "a", "MessageBody": "hi", "MessageAttributes": {"City": {"DataType": "String", "StringValue": "Paris"}}},
                {"Id": "b", "MessageBody": "x", "DelaySeconds": 5},
            ]}),
        ),
        (
            "ReceiveMessage",
            "QueueUrl=q&AttributeName.1=All&MessageAttributeName.1=geo.*&MaxNumberOfMessages=3",
            json!({"QueueUrl": "q", "AttributeNames": ["All"], "MessageAttributeNames": ["geo.*"], "MaxNumberOfMessages": 3}),
        ),
        // the non-flattened spelling is accepted too
        (
            "ReceiveMessage",
            "QueueUrl=q&AttributeNames.member.1=All&AttributeNames.member.2=SentTimestamp",
            json!({"QueueUrl": "q", "AttributeNames": ["All", "SentTimestamp"]}),
        ),
        (
            "CreateQueue",
            "QueueName=q&Attribute.1.Name=VisibilityTimeout&Attribute.1.Value=5&Tag.1.Key=k&Tag.1.Value=v",
            json!({"QueueName": "q", "Attributes": {"VisibilityTimeout": "5"}, "tags": {"k": "v"}}),
        ),
        ("UntagQueue", "QueueUrl=q&TagKey.1=a&TagKey.2=b", json!({"QueueUrl": "q", "TagKeys": ["a", "b"]})),
        // the map's wire name is the shape's locationName
        ("TagQueue", "QueueUrl=q&Tag.1.Key=a&Tag.1.Value=b", json!({"QueueUrl": "q", "Tags": {"a": "b"}})),
    ];
    for (op, q, want) in cases {
        assert_eq!(&decoded_query(op, q).expect(op), want, "{op} {q}");
    }
}

#[test]
fn query_decoding_errors() {
    let cases: &[(&str, &str, DecodeError)] = &[
        ("DeleteMessage", "QueueUrl=q", DecodeError::Missing { member: "ReceiptHandle".into() }),
        (
            "ReceiveMessage",
            "QueueUrl=q&MaxNumberOfMessages=lots",
            DecodeError::Type { member: "MaxNumberOfMessages".into(), expected: "integer", value: "lots".into() },
        ),
        (
            "SendMessageBatch",
            "QueueUrl=q&SendMessageBatchRequestEntry.1.Id=a",
            DecodeError::Missing { member: "Entries.1.MessageBody".into() },
        ),
    ];
    for (op, q, want) in cases {
        assert_eq!(&decoded_query(op, q).expect_err(op), want, "{op} {q}");
    }
}

#[test]
fn json_decoding_checks_types_and_required_members() {
    let model = SQS.model();
    let ok = |op: &str, body: &str| decode::json(model, op, body.as_bytes()).and_then(|i| i.parse::<Value>());
    assert_eq!(ok("ListQueues", "").expect("empty body"), json!({}));
    assert_eq!(ok("ListQueues", r#"{"QueueNamePrefix":"a","Unknown":1}"#).expect("unknown ignored")["QueueNamePrefix"], "a");
    let cases: &[(&str, &str, DecodeError)] = &[
        ("SendMessage", r#"{"QueueUrl":"q"}"#, DecodeError::Missing { member: "MessageBody".into() }),
        ("SendMessage", r#"{"QueueUrl":"q","MessageBody":null}"#, DecodeError::Missing { member: "MessageBody".into() }),
        (
            "ReceiveMessage",
            r#"{"QueueUrl":"q","MaxNumberOfMessages":"3"}"#,
            DecodeError::Type { member: "MaxNumberOfMessages".into(), expected: "integer", value: "3".into() },
        ),
        (
            "SendMessage",
            r#"{"QueueUrl":"q","MessageBody":"b","MessageAttributes":{"a":{"DataType":7}}}"#,
            DecodeError::Type { member: "MessageAttributes.a.DataType".into(), expected: "string", value: "7".into() },
        ),
    ];
    for (op, body, want) in cases {
        assert_eq!(&ok(op, body).expect_err(body), want, "{op} {body}");
    }
    assert!(matches!(ok("ListQueues", "{"), Err(DecodeError::Malformed(_))));
    assert!(matches!(ok("ListQueues", "[]"), Err(DecodeError::Malformed(_))));
}

fn body(r: &http::Response<bytes::Bytes>) -> String {
    String::from_utf8(r.body().to_vec()).expect("utf-8")
}

const SQS_NS: &str = "http://queue.amazonaws.com/doc/2012-11-05/";

#[test]
fn query_xml_follows_the_model() {
    let cases: &[(&str, Value, &str)] = &[
        (
            "ReceiveMessage",
            json!({"Messages": [{"MessageId": "m", "Body": "a<b\r\n", "Attributes": {"SentTimestamp": "1"},
                   "MessageAttributes": {"c": {"DataType": "String", "StringValue": "d", "StringListValues": ["x"]}}}]}),
            "<ReceiveMessageResult><Message><MessageId>m</MessageId><Body>a&lt;b&#xD;\n</Body>\
             <Attribute><Name>SentTimestamp</Name><Value>1</Value></Attribute>\
             <MessageAttribute><Name>c</Name><Value><StringValue>d</StringValue><StringListValue>x</StringListValue>\
             <DataType>String</DataType></Value></MessageAttribute></Message></ReceiveMessageResult>",
        ),
        (
            "DeleteMessageBatch",
            json!({"Successful": [{"Id": "a"}], "Failed": [{"Id": "b", "SenderFault": true, "Code": "C", "Message": "M"}]}),
            "<DeleteMessageBatchResult><DeleteMessageBatchResultEntry><Id>a</Id></DeleteMessageBatchResultEntry>\
             <BatchResultErrorEntry><Id>b</Id><SenderFault>true</SenderFault><Code>C</Code><Message>M</Message>\
             </BatchResultErrorEntry></DeleteMessageBatchResult>",
        ),
        (
            "ListQueues",
            json!({"QueueUrls": ["u1", "u2"]}),
            "<ListQueuesResult><QueueUrl>u1</QueueUrl><QueueUrl>u2</QueueUrl></ListQueuesResult>",
        ),
        ("DeleteMessage", json!({}), ""),
    ];
    for (op, value, want) in cases {
        let r = encode::output(&SQS, Protocol::AwsQuery, op, value, "rid");
        let want = format!(
            "<?xml version=\"1.0\"?><{op}Response xmlns=\"{SQS_NS}\">{want}<ResponseMetadata><RequestId>rid</RequestId>\
             </ResponseMetadata></{op}Response>"
        );
        assert_eq!(body(&r), want, "{op}");
        assert_eq!(r.headers()["content-type"], "text/xml");
    }
}

#[test]
fn sns_query_xml_wraps_lists_and_maps() {
    let value = json!({"Attributes": {"Policy": "{\"a\":\"<b>\"}"}});
    let r = encode::output(&SNS, Protocol::AwsQuery, "GetTopicAttributes", &value, "rid");
    assert!(
        body(&r).contains(
            "<GetTopicAttributesResult><Attributes><entry><key>Policy</key><value>{&quot;a&quot;:&quot;&lt;b&gt;&quot;}</value>\
             </entry></Attributes></GetTopicAttributesResult>"
        ),
        "{}",
        body(&r)
    );
    let r = encode::output(&SNS, Protocol::AwsQuery, "ListTopics", &json!({"Topics": [{"TopicArn": "a"}]}), "rid");
    assert!(body(&r).contains("<Topics><member><TopicArn>a</TopicArn></member></Topics>"), "{}", body(&r));
}

#[derive(Debug)]
struct Gone;
impl std::fmt::Display for Gone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("The specified queue does not exist.")
    }
}
impl AwsError for Gone {
    fn code(&self) -> &str {
        "QueueDoesNotExist"
    }
    fn query_code(&self) -> &str {
        "AWS.SimpleQueueService.NonExistentQueue"
    }
    fn status(&self) -> u16 {
        400
    }
}

#[test]
fn errors_per_protocol() {
    let r = encode::error(&SQS, Protocol::AwsJson1_0, &Gone, "rid");
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["x-amzn-query-error"], "AWS.SimpleQueueService.NonExistentQueue;Sender");
    assert_eq!(r.headers()["content-type"], "application/x-amz-json-1.0");
    assert_eq!(
        serde_json::from_slice::<Value>(r.body()).expect("json"),
        json!({"__type": "com.amazonaws.sqs#QueueDoesNotExist", "message": "The specified queue does not exist."})
    );
    let r = encode::error(&SQS, Protocol::AwsQuery, &Gone, "rid");
    assert_eq!(
        body(&r),
        format!(
            "<?xml version=\"1.0\"?><ErrorResponse xmlns=\"{SQS_NS}\"><Error><Type>Sender</Type>\
             <Code>AWS.SimpleQueueService.NonExistentQueue</Code><Message>The specified queue does not exist.</Message>\
             <Detail/></Error><RequestId>rid</RequestId></ErrorResponse>"
        )
    );
    let r = encode::error(&SNS, Protocol::AwsQuery, &Gone, "rid");
    assert!(!body(&r).contains("Detail"), "SNS errors have no Detail");
}

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

// ---- rest-json ---------------------------------------------------------------------------

fn lambda_request(
    method: &str,
    path: &str,
    query: Option<&str>,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<(String, Value, bytes::Bytes), String> {
    use crate::rest::{query_pairs, rest_json, HttpRequest, Router};
    let router = Router::new(crate::LAMBDA.model());
    let q = query_pairs(query);
    let method = http::Method::from_bytes(method.as_bytes()).expect("method");
    let m = router.find(&method, path, &q).ok_or("no route")?;
    let mut h = http::HeaderMap::new();
    for (k, v) in headers {
        h.insert(http::HeaderName::from_bytes(k.as_bytes()).expect("name"), http::HeaderValue::from_str(v).expect("value"));
    }
    let body = bytes::Bytes::from(body.to_string());
    let input = rest_json(crate::LAMBDA.model(), &m, &HttpRequest { headers: &h, query: &q, body: &body }).map_err(|e| e.to_string())?;
    let (v, payload) = input.parse_with_payload::<Value>().map_err(|e| e.to_string())?;
    Ok((m.operation.to_string(), v, payload))
}

#[test]
fn rest_json_routes_and_bindings_follow_the_model() {
    type Case<'a> = (&'a str, &'a str, Option<&'a str>, &'a [(&'a str, &'a str)], &'a str, &'a str, Value);
    let cases: &[Case] = &[
        ("GET", "/2015-03-31/functions/", None, &[], "", "ListFunctions", json!({})),
        ("GET", "/2015-03-31/functions", Some("MaxItems=5&Marker=m+n"), &[], "", "ListFunctions", json!({"MaxItems": 5, "Marker": "m n"})),
        (
            "GET",
            "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Af",
            Some("Qualifier=%24LATEST"),
            &[],
            "",
            "GetFunction",
            json!({"FunctionName": "arn:aws:lambda:us-east-1:000000000000:function:f", "Qualifier": "$LATEST"}),
        ),
        ("GET", "/2015-03-31/functions/f/configuration", None, &[], "", "GetFunctionConfiguration", json!({"FunctionName": "f"})),
        (
            "PUT",
            "/2015-03-31/functions/f/aliases/live",
            None,
            &[],
            r#"{"FunctionVersion":"2"}"#,
            "UpdateAlias",
            json!({"FunctionName": "f", "Name": "live", "FunctionVersion": "2"}),
        ),
        // the literal query of the request URI picks the operation
        ("GET", "/2018-10-31/layers", Some("find=LayerVersion&Arn=a"), &[], "", "GetLayerVersionByArn", json!({"Arn": "a"})),
        ("GET", "/2018-10-31/layers", None, &[], "", "ListLayers", json!({})),
        (
            "GET",
            "/2019-09-30/functions/f/provisioned-concurrency",
            Some("List=ALL"),
            &[],
            "",
            "ListProvisionedConcurrencyConfigs",
            json!({"FunctionName": "f"}),
        ),
        (
            "GET",
            "/2019-09-30/functions/f/provisioned-concurrency",
            Some("Qualifier=1"),
            &[],
            "",
            "GetProvisionedConcurrencyConfig",
            json!({"FunctionName": "f", "Qualifier": "1"}),
        ),
        // a long URI label
        ("DELETE", "/2018-10-31/layers/l/versions/3", None, &[], "", "DeleteLayerVersion", json!({"LayerName": "l", "VersionNumber": 3})),
        // headers
        (
            "POST",
            "/2015-03-31/functions/f/invocations",
            None,
            &[("x-amz-invocation-type", "Event"), ("x-amz-log-type", "Tail")],
            "{}",
            "Invoke",
            json!({"FunctionName": "f", "InvocationType": "Event", "LogType": "Tail"}),
        ),
    ];
    for (method, path, query, headers, body, op, want) in cases {
        let (got_op, got, _) = lambda_request(method, path, *query, headers, body).unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        assert_eq!((got_op.as_str(), &got), (*op, want), "{method} {path} {query:?}");
    }
    // Invoke's payload stays raw, out of the JSON.
    let (_, v, payload) = lambda_request("POST", "/2015-03-31/functions/f/invocations", None, &[], r#"{"k": [1, 2]}"#).expect("invoke");
    assert_eq!((v, &payload[..]), (json!({"FunctionName": "f"}), &br#"{"k": [1, 2]}"#[..]));
}

#[test]
fn rest_json_rejects_what_does_not_fit() {
    let cases: &[(&str, &str, Option<&str>, &str, &str)] = &[
        ("GET", "/2015-03-31/functions", Some("MaxItems=many"), "", "MaxItems: expected integer, got many"),
        ("GET", "/2018-10-31/layers/l/versions/x", None, "", "VersionNumber: expected integer, got x"),
        ("POST", "/2015-03-31/functions/f/aliases", None, r#"{"Name":"a"}"#, "missing required member FunctionVersion"),
        ("POST", "/2015-03-31/functions/f/aliases", None, r#"{"Name":"a","FunctionVersion":1}"#, "FunctionVersion: expected string, got 1"),
        ("POST", "/2015-03-31/functions", None, "{not json", "key must be a string at line 1 column 2"),
        ("POST", "/2015-03-31/functions", None, "[1]", "the request body must be a JSON object"),
        ("GET", "/2019-09-30/functions/f/provisioned-concurrency", None, "", "missing required member Qualifier"),
        ("GET", "/nope", None, "", "no route"),
        ("PATCH", "/2015-03-31/functions/f", None, "", "no route"),
    ];
    for (method, path, query, body, want) in cases {
        let got = lambda_request(method, path, *query, &[], body).expect_err(path);
        assert_eq!(&got, want, "{method} {path}");
    }
}

#[test]
fn rest_json_answers_bind_headers_status_and_payload() {
    use crate::encode;
    // Invoke: headers from the output's members, the payload raw.
    let out = json!({"StatusCode": 200, "ExecutedVersion": "$LATEST", "FunctionError": "Unhandled"});
    let r = encode::rest(&crate::LAMBDA, "Invoke", &out, Some((bytes::Bytes::from_static(b"[1]"), "application/json")), "rid");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-amz-executed-version"], "$LATEST");
    assert_eq!(r.headers()["x-amz-function-error"], "Unhandled");
    assert_eq!(r.headers()["x-amzn-requestid"], "rid");
    assert_eq!(&r.body()[..], b"[1]");
    // The operation's responseCode; JSON members in the body.
    let r = encode::rest(&crate::LAMBDA, "CreateAlias", &json!({"Name": "a", "FunctionVersion": "1"}), None, "rid");
    assert_eq!(r.status(), 201);
    assert_eq!(serde_json::from_slice::<Value>(r.body()).expect("json"), json!({"Name": "a", "FunctionVersion": "1"}));
    // No output shape: no body.
    let r = encode::rest(&crate::LAMBDA, "DeleteAlias", &json!({}), None, "rid");
    assert_eq!((r.status().as_u16(), r.body().len()), (204, 0));
    // A status-code member wins over the responseCode.
    let r = encode::rest(&crate::LAMBDA, "DeleteFunction", &json!({"StatusCode": 204}), None, "rid");
    assert_eq!((r.status().as_u16(), r.body().len()), (204, 0));
}

#[test]
fn rest_json_bodies_use_location_names_on_the_wire() {
    use crate::rest::{query_pairs, rest_json, HttpRequest, Router};
    let model = crate::APIGATEWAYV2.model();
    let router = Router::new(model);
    let q = query_pairs(None);
    let m = router.find(&http::Method::PATCH, "/v2/apis/abc123defg/routes/r1", &q).expect("UpdateRoute");
    assert_eq!(m.operation, "UpdateRoute");
    let body = bytes::Bytes::from_static(br#"{"routeKey":"GET /x","target":"integrations/i","unknown":1}"#);
    let input = rest_json(model, &m, &HttpRequest { headers: &http::HeaderMap::new(), query: &q, body: &body }).expect("decodes");
    assert_eq!(
        input.parse::<Value>().expect("json"),
        json!({"ApiId": "abc123defg", "RouteId": "r1", "RouteKey": "GET /x", "Target": "integrations/i"})
    );
    // Required members are checked under their model names, found under their wire names.
    let m = router.find(&http::Method::POST, "/v2/apis", &q).expect("CreateApi");
    let body = bytes::Bytes::from_static(br#"{"name":"a"}"#);
    let e = rest_json(model, &m, &HttpRequest { headers: &http::HeaderMap::new(), query: &q, body: &body }).expect_err("ProtocolType");
    assert_eq!(e, DecodeError::Missing { member: "ProtocolType".into() });

    let out = json!({"ApiId": "abc123defg", "Name": "a", "CorsConfiguration": {"AllowOrigins": ["*"]}, "Tags": {"K": "v"}});
    let r = encode::rest(&crate::APIGATEWAYV2, "GetApi", &out, None, "rid");
    assert_eq!(
        serde_json::from_slice::<Value>(r.body()).expect("json"),
        json!({"apiId": "abc123defg", "name": "a", "corsConfiguration": {"allowOrigins": ["*"]}, "tags": {"K": "v"}})
    );
}

#[test]
fn rest_json_error_bodies_name_the_message_as_the_model_does() {
    struct E(&'static str, u16);
    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("m")
        }
    }
    impl AwsError for E {
        fn code(&self) -> &str {
            self.0
        }
        fn status(&self) -> u16 {
            self.1
        }
    }
    let body = |service, e: E| serde_json::from_slice::<Value>(encode::error(service, Protocol::RestJson, &e, "r").body()).expect("json");
    assert_eq!(body(&crate::LAMBDA, E("ResourceNotFoundException", 404)), json!({"Type": "User", "Message": "m"}));
    assert_eq!(body(&crate::LAMBDA, E("InvalidParameterValueException", 400)), json!({"Type": "User", "message": "m"}));
    assert_eq!(body(&crate::LAMBDA, E("ServiceException", 500)), json!({"Type": "Service", "Message": "m"}));
    // API Gateway's `Message` member travels as `message`, and its errors carry no `Type`.
    assert_eq!(body(&crate::APIGATEWAYV2, E("NotFoundException", 404)), json!({"message": "m"}));
}

#[test]
fn json_error_bodies_say_message_unless_the_error_capitalizes_it() {
    struct E(bool);
    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("m")
        }
    }
    impl AwsError for E {
        fn code(&self) -> &str {
            "AccessDeniedException"
        }
        fn status(&self) -> u16 {
            400
        }
        fn capital_message(&self) -> bool {
            self.0
        }
    }
    let body = |e: E| serde_json::from_slice::<Value>(encode::error(&crate::KMS, Protocol::AwsJson1_1, &e, "r").body()).expect("json");
    // KMS's AccessDeniedException, as AWS answers it (auth-errors.md, KMS row 9).
    assert_eq!(body(E(true)), json!({"__type": "AccessDeniedException", "Message": "m"}));
    assert_eq!(body(E(false)), json!({"__type": "AccessDeniedException", "message": "m"}));
}

#[test]
fn cbor_decoding_errors() {
    use ciborium::Value as C;
    let cbor = |v: C| crate::cbor::to_bytes(&v);
    let text = |s: &str| C::Text(s.into());
    let map = |entries: Vec<(&str, C)>| C::Map(entries.into_iter().map(|(k, v)| (text(k), v)).collect());
    let metric =
        |v: C| map(vec![("Namespace", text("n")), ("MetricData", C::Array(vec![map(vec![("MetricName", text("m")), ("Value", v)])]))]);
    let cases: Vec<(&str, Vec<u8>, DecodeError)> = vec![
        ("truncated", cbor(metric(C::Float(1.5)))[..20].to_vec(), DecodeError::Malformed(String::new())),
        ("trailing bytes", [cbor(map(vec![])), vec![0]].concat(), DecodeError::Malformed(String::new())),
        ("not a map", cbor(C::Array(vec![])), DecodeError::Malformed(String::new())),
        (
            "a string for a double",
            cbor(metric(text("1.5"))),
            DecodeError::Type { member: "MetricData.1.Value".into(), expected: "number", value: "1.5".into() },
        ),
        (
            "a missing required member",
            cbor(map(vec![("MetricData", C::Array(vec![]))])),
            DecodeError::Missing { member: "Namespace".into() },
        ),
        (
            "a non-text key",
            cbor(C::Map(vec![(C::Integer(1.into()), text("x"))])),
            DecodeError::Type { member: String::new(), expected: "structure", value: "1".into() },
        ),
    ];
    for (what, body, want) in cases {
        let got = decode::cbor(crate::CLOUDWATCH.model(), "PutMetricData", &body).expect_err(what);
        match (&got, &want) {
            (DecodeError::Malformed(_), DecodeError::Malformed(_)) => {}
            _ => assert_eq!(got, want, "{what}"),
        }
    }
    // Timestamps arrive tagged (or bare) epoch seconds; nulls are absent members.
    let ok = cbor(map(vec![
        ("Namespace", text("n")),
        (
            "MetricData",
            C::Array(vec![map(vec![("MetricName", text("m")), ("Timestamp", C::Tag(1, Box::new(C::Float(1.7e9)))), ("Unit", C::Null)])]),
        ),
    ]));
    let v: Value = decode::cbor(crate::CLOUDWATCH.model(), "PutMetricData", &ok).expect("decodes").parse().expect("parses");
    assert_eq!(v, json!({"Namespace": "n", "MetricData": [{"MetricName": "m", "Timestamp": 1.7e9}]}));
    assert_eq!(
        crate::cbor::route("/service/GraniteServiceVersion20100801/operation/ListMetrics"),
        Some(("GraniteServiceVersion20100801", "ListMetrics"))
    );
    for bad in ["/service//operation/X", "/service/S/operation/", "/service/S/op/X", "/service/S/operation/X/Y", "/"] {
        assert_eq!(crate::cbor::route(bad), None, "{bad}");
    }
}

#[test]
fn rest_xml_decoding_errors() {
    use crate::rest::{rest_xml, HttpRequest, Router};
    let model = crate::S3.model();
    let router = Router::new(model);
    let decode = |body: &str| {
        let headers = http::HeaderMap::new();
        let query = vec![("delete".to_string(), String::new())];
        let m = router.find(&http::Method::POST, "/b1", &query).expect("DeleteObjects route");
        assert_eq!(m.operation, "DeleteObjects");
        let body = bytes::Bytes::from(body.to_string());
        rest_xml(model, &m, &HttpRequest { headers: &headers, query: &query, body: &body }).and_then(|i| i.parse::<Value>())
    };
    let malformed = [
        "<Delete><Object><Key>a</Key></Object>",
        "<Delete></Object>",
        "<Delete/><Delete/>",
        "text<Delete/>",
        "<!DOCTYPE d [<!ENTITY e \"x\">]><Delete><Object><Key>&e;</Key></Object></Delete>",
        "<Delete><Object><Key>&unknown;</Key></Object></Delete>",
    ];
    for body in malformed {
        assert!(matches!(decode(body), Err(DecodeError::Malformed(_))), "{body}: {:?}", decode(body));
    }
    assert_eq!(
        decode("<Delete><Object><Key>a</Key></Object><Quiet>yes</Quiet></Delete>"),
        Err(DecodeError::Type { member: "Delete.Quiet".into(), expected: "boolean", value: "yes".into() })
    );
    assert_eq!(
        decode("<Delete><Object><VersionId>v</VersionId></Object></Delete>"),
        Err(DecodeError::Missing { member: "Delete.Objects.1.Key".into() })
    );
    assert_eq!(decode(""), Err(DecodeError::Missing { member: "Delete".into() }));
    // Entities and character references are text; the root's name is not checked.
    assert_eq!(
        decode("<?xml version=\"1.0\"?><Anything xmlns=\"x\"><Object><Key>a&amp;b&#x41;</Key></Object></Anything>"),
        Ok(json!({"Bucket": "b1", "Delete": {"Objects": [{"Key": "a&bA"}]}}))
    );
}

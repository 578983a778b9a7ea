//! The closed set of API actions and the parser that turns an HTTP request into one.
//! Authorization (SigV4 and IAM) will check an [`Action`] here, before it runs.

use bytes::Bytes;
use http::{HeaderMap, Method};
use nimbus_model::{ApiError, ErrorCode};

/// Every request Nimbus serves: one variant per service, each holding that service's
/// closed set of typed calls, plus Nimbus's own endpoints and the HTTP front doors of
/// functions and APIs.
#[derive(Debug)]
pub enum Action {
    Health,
    /// Nimbus's own status: isolation mode and which guarantees are missing.
    Status,
    /// The zip behind GetFunction's `Code.Location` (a link signed by this server).
    GetCode {
        account: String,
        digest: String,
        /// The link's path and query, which carry its signature.
        path: String,
        query: Option<String>,
    },
    /// An S3 request, placed on its operation from its head alone by [`crate::s3`] (its
    /// body is read by the operation, streamed for object bodies).
    S3(Box<crate::s3::S3Request>),
    /// A Lambda request (rest-json), decoded by [`crate::lambda`].
    Lambda(crate::lambda::LambdaRequest),
    /// A request to a function URL.
    InvokeFunctionUrl(Box<crate::function_url::UrlRequest>),
    /// A CloudWatch Logs request (`X-Amz-Target: Logs_20140328.*`), decoded by [`crate::logs`].
    Logs(crate::logs::LogsRequest),
    /// An SQS request (JSON or query protocol), parsed by [`crate::sqs`].
    Sqs(crate::sqs::SqsRequest),
    /// A DynamoDB request (`X-Amz-Target: DynamoDB_20120810.*`), parsed by [`crate::dynamodb`].
    DynamoDb(crate::dynamodb::DynamoDbRequest),
    /// A DynamoDB Streams request (`X-Amz-Target: DynamoDBStreams_20120810.*`), parsed by
    /// [`crate::dynamodbstreams`].
    DynamoDbStreams(crate::dynamodbstreams::DynamoDbStreamsRequest),
    /// A Kinesis request (`X-Amz-Target: Kinesis_20131202.*`), parsed by [`crate::kinesis`].
    Kinesis(crate::kinesis::KinesisRequest),
    /// An EventBridge request (`X-Amz-Target: AWSEvents.*`), parsed by [`crate::events`].
    Events(crate::events::EventsRequest),
    /// A KMS request (`X-Amz-Target: TrentService.*`), parsed by [`crate::kms`].
    Kms(crate::kms::KmsRequest),
    /// An Organizations request (`X-Amz-Target: AWSOrganizationsV20161128.*`), parsed by
    /// [`crate::organizations`].
    Organizations(crate::organizations::OrganizationsRequest),
    /// A CloudWatch metrics call (RPC v2 CBOR, JSON 1.0 or query).
    CloudWatch(crate::cloudwatch::CloudWatchRequest),
    /// An SNS request (query protocol), parsed by [`crate::sns`].
    Sns(crate::sns::SnsRequest),
    /// An IAM request (query protocol, `Version=2010-05-08`), parsed by [`crate::iam`].
    Iam(crate::iam::IamRequest),
    /// An STS request (query protocol, `Version=2011-06-15`), parsed by [`crate::iam`].
    Sts(crate::iam::StsRequest),
    /// An EC2 request (the ec2 protocol, `Version=2016-11-15`): VPCs, subnets and security
    /// groups, parsed by [`crate::ec2`].
    Ec2(crate::ec2::Ec2Request),
    /// An API Gateway V2 management request (`/v2/apis…`), parsed by [`crate::gateway`].
    Gateway(crate::gateway::GatewayRequest),
    /// A request to an HTTP API's `execute-api` endpoint.
    InvokeApi(Box<crate::gateway::ApiRequest>),
    /// The web console: its files, and its login ([`crate::console`]).
    Console(crate::console::ConsoleCall),
}

impl Action {
    /// The service that serves it, as the server's request metrics name it.
    pub fn service(&self) -> &'static str {
        match self {
            Action::Health | Action::Status | Action::GetCode { .. } | Action::Console(_) => "nimbus",
            Action::Lambda(_) => "lambda",
            Action::S3(_) => "s3",
            Action::InvokeFunctionUrl(_) => "lambda-url",
            Action::Logs(_) => "logs",
            Action::Sqs(_) => "sqs",
            Action::DynamoDb(_) => "dynamodb",
            Action::DynamoDbStreams(_) => "dynamodbstreams",
            Action::Kinesis(_) => "kinesis",
            Action::Events(_) => "events",
            Action::Kms(_) => "kms",
            Action::Organizations(_) => "organizations",
            Action::CloudWatch(_) => "cloudwatch",
            Action::Sns(_) => "sns",
            Action::Iam(_) => "iam",
            Action::Sts(_) => "sts",
            Action::Ec2(_) => "ec2",
            Action::Gateway(_) => "apigateway",
            Action::InvokeApi(_) => "execute-api",
        }
    }

    /// The AWS operation name.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Health => "Health",
            Action::Status => "nimbus:Status",
            Action::GetCode { .. } => "nimbus:GetCode",
            Action::Lambda(r) => r.operation,
            Action::S3(r) => r.name(),
            Action::InvokeFunctionUrl(_) => "lambda:InvokeFunctionUrl",
            Action::Logs(r) => r.name(),
            Action::Sqs(r) => r.name(),
            Action::DynamoDb(r) => r.name(),
            Action::DynamoDbStreams(r) => r.name(),
            Action::Kinesis(r) => r.name(),
            Action::Events(r) => r.name(),
            Action::Kms(r) => r.name(),
            Action::Organizations(r) => r.name(),
            Action::CloudWatch(r) => r.name(),
            Action::Sns(r) => r.name(),
            Action::Iam(r) => r.name(),
            Action::Sts(r) => r.name(),
            Action::Ec2(r) => r.name(),
            Action::Gateway(r) => r.name(),
            Action::InvokeApi(_) => "execute-api:Invoke",
            Action::Console(c) => c.name(),
        }
    }
}

/// One HTTP request, as the parser sees it.
pub struct RawRequest<'a> {
    /// The domain under which function URLs are served by host name.
    pub url_domain: &'a str,
    /// The domain under which HTTP APIs are served by host name (`<api-id>.<api domain>`).
    pub api_domain: &'a str,
    pub source_ip: String,
    pub method: &'a Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: Bytes,
}

#[cfg(test)]
impl<'a> RawRequest<'a> {
    /// A request as the unit tests make them: from loopback, under the default domains.
    pub(crate) fn for_test(method: &'a Method, path: &'a str, query: Option<&'a str>, headers: &'a HeaderMap, body: Bytes) -> Self {
        RawRequest {
            url_domain: "lambda-url.us-east-1.localhost",
            api_domain: "execute-api.us-east-1.localhost",
            source_ip: "127.0.0.1".into(),
            method,
            path,
            query,
            headers,
            body,
        }
    }
}

/// Decodes one percent-encoded URL component (`+` as space, as in query strings); what is
/// not UTF-8 is replaced.
pub(crate) fn decode_component(s: &str) -> String {
    String::from_utf8_lossy(&decode_bytes(s)).into_owned()
}

/// The bytes one percent-encoded URL component stands for.
fn decode_bytes(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => match (bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// A service's operations: (operation name, IAM action name), e.g. `("SendMessage",
/// "sqs:SendMessage")`. The tables of SQS, SNS and EventBridge are part of the closed set
/// of actions.
pub(crate) type OperationTable = [(&'static str, &'static str)];

/// The table's own spelling of `name`, if the service has that operation.
pub(crate) fn known_operation(table: &'static OperationTable, name: &str) -> Option<&'static str> {
    table.iter().find(|(op, _)| *op == name).map(|(op, _)| *op)
}

/// The IAM action name of `operation` (`sqs:SendMessage`), or `unknown`.
pub(crate) fn iam_action(table: &'static OperationTable, operation: &str, unknown: &'static str) -> &'static str {
    table.iter().find(|(op, _)| *op == operation).map(|(_, n)| *n).unwrap_or(unknown)
}

/// The `key=value` pairs of a query string or form body, decoded.
pub(crate) fn form_pairs(s: &str) -> impl Iterator<Item = (String, String)> + '_ {
    s.split('&').filter(|kv| !kv.is_empty()).map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (decode_component(k), decode_component(v))
    })
}

/// A query-protocol request's parameters: the query string's, then a form body's (`form`:
/// whether the body is read as one).
pub(crate) fn query_protocol_params(req: &RawRequest<'_>, form: bool) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = req.query.map(|q| form_pairs(q).collect()).unwrap_or_default();
    if form && !req.body.is_empty() {
        if let Ok(body) = std::str::from_utf8(&req.body) {
            params.extend(form_pairs(body));
        }
    }
    params
}

/// Why a query-protocol request addressed to a service (by its signature's scope) names none
/// of its operations.
/// A query-protocol request (`/`, no `X-Amz-Target`) for the service API `version`: its
/// parameters and its `Action` (the last of each, as AWS reads them); None otherwise.
pub(crate) fn query_request(req: &RawRequest<'_>, version: &str) -> Option<(Vec<(String, String)>, String)> {
    if req.headers.contains_key("x-amz-target") || !matches!(req.path, "" | "/") {
        return None;
    }
    let params = query_protocol_params(req, is_form(req));
    let last = |name: &str| params.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    if last("Version").as_deref() != Some(version) {
        return None;
    }
    let action = last("Action")?;
    Some((params, action))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unplaced {
    /// The query string or the form body is not URL-encoded UTF-8.
    Malformed,
    /// No `Action` parameter (a body that is not a form is not read for one).
    MissingAction,
    /// An `Action` without the `Version` parameter.
    MissingVersion { action: String },
    /// An `Action` with another version than the service's.
    OtherVersion { action: String, version: String },
}

/// A form's `key=value` pairs, or None when one of them does not decode to UTF-8.
fn strict_form_pairs(s: &[u8]) -> Option<Vec<(String, String)>> {
    let text = std::str::from_utf8(s).ok()?;
    let strict = |c: &str| String::from_utf8(decode_bytes(c)).ok();
    text.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            Some((strict(k)?, strict(v)?))
        })
        .collect()
}

/// Why `req`, a query-protocol request its service's recognizer did not claim, is not one of
/// its calls.
pub(crate) fn unplaced(req: &RawRequest<'_>) -> Unplaced {
    let Some(mut params) = strict_form_pairs(req.query.unwrap_or("").as_bytes()) else { return Unplaced::Malformed };
    if is_form(req) {
        let Some(body) = strict_form_pairs(&req.body) else { return Unplaced::Malformed };
        params.extend(body);
    }
    let last = |name: &str| params.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let Some(action) = last("Action").filter(|a| !a.is_empty()) else { return Unplaced::MissingAction };
    match last("Version") {
        None => Unplaced::MissingVersion { action },
        // With the service's own version its recognizer places (or refuses) the action, so
        // the version is another one.
        Some(version) => Unplaced::OtherVersion { action, version },
    }
}

/// The service a request's SigV4 credential scope names (`sqs` in
/// `AKID/20250101/us-east-1/sqs/aws4_request`), if it is signed for SQS or SNS (the only
/// ones placed by it).
fn signed_for(req: &RawRequest<'_>) -> Option<String> {
    // Most requests are signed in their Authorization header for another service: its
    // credential scope alone says so, without a full read (which the authentication does).
    if let Some(auth) = header(req.headers, "authorization") {
        let service = auth.split_once("Credential=").and_then(|(_, c)| c.split([',', ' ']).next()).and_then(|c| c.split('/').nth(3));
        if !matches!(service, Some("sqs" | "sns")) {
            return None;
        }
    }
    let sig = nimbus_identity::sigv4::read(&nimbus_identity::sigv4::Request {
        method: req.method.as_str(),
        path: req.path,
        query: req.query,
        headers: req.headers,
        body: &req.body,
    })
    .ok()?;
    Some(sig.scope.service)
}

/// Whether a request's body is a form (`application/x-www-form-urlencoded`).
pub(crate) fn is_form(req: &RawRequest<'_>) -> bool {
    header(req.headers, "content-type").unwrap_or("").starts_with("application/x-www-form-urlencoded")
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn not_found_route(method: &Method, path: &str) -> ApiError {
    ApiError::new(ErrorCode::UnknownOperation, format!("No operation matches {method} {path}"))
}

/// Parses a Lambda or CloudWatch Logs request into an action.
pub fn parse(req: RawRequest<'_>) -> Result<Action, ApiError> {
    let http_call = |path: String, door| crate::proxy::HttpCall {
        door,
        method: req.method.clone(),
        path,
        raw_query: req.query.unwrap_or("").to_string(),
        // Nimbus's own forwarding headers are not the caller's: the function never sees them.
        headers: {
            let mut headers = req.headers.clone();
            headers.remove(crate::forward::FORWARDED_BY);
            headers.remove(crate::forward::FORWARDED_FOR);
            headers
        },
        body: req.body.clone(),
        source_ip: req.source_ip.clone(),
    };
    if let Some((api_id, path, door)) = crate::gateway::match_api(header(req.headers, "host"), req.path, req.api_domain) {
        return Ok(Action::InvokeApi(Box::new(crate::gateway::ApiRequest { api_id, call: http_call(path, door) })));
    }
    if let Some((url_id, path, format, door)) = crate::function_url::match_url(header(req.headers, "host"), req.path, req.url_domain) {
        return Ok(Action::InvokeFunctionUrl(Box::new(crate::function_url::UrlRequest { url_id, format, call: http_call(path, door) })));
    }
    if let Some(gateway) = crate::gateway::recognize(&req) {
        return Ok(Action::Gateway(gateway));
    }
    if let Some(cw) = crate::cloudwatch::recognize(&req) {
        return Ok(Action::CloudWatch(cw));
    }
    // A request signed for SQS or SNS is that service's: one it cannot place on an operation
    // (no or another `Version`, no `Action`, a body that is not a form or not text) hears
    // why from that service, in its shape, rather than from whichever service its
    // parameters look like.
    let target = req.headers.contains_key("x-amz-target");
    match signed_for(&req).as_deref() {
        Some("sqs") if !target && unplaced(&req) == Unplaced::Malformed => return Ok(Action::Sqs(crate::sqs::unplaced(&req))),
        Some("sqs") => return Ok(Action::Sqs(crate::sqs::recognize(&req).unwrap_or_else(|| crate::sqs::unplaced(&req)))),
        Some("sns") if !target && unplaced(&req) == Unplaced::Malformed => return Ok(Action::Sns(crate::sns::unplaced(&req))),
        Some("sns") if !target => return Ok(Action::Sns(crate::sns::recognize(&req).unwrap_or_else(|| crate::sns::unplaced(&req)))),
        _ => {}
    }
    if let Some(sqs) = crate::sqs::recognize(&req) {
        return Ok(Action::Sqs(sqs));
    }
    match crate::iam::recognize(&req) {
        Some(crate::iam::Recognized::Iam(r)) => return Ok(Action::Iam(r)),
        Some(crate::iam::Recognized::Sts(r)) => return Ok(Action::Sts(r)),
        None => {}
    }
    if let Some(ec2) = crate::ec2::recognize(&req) {
        return Ok(Action::Ec2(ec2));
    }
    if let Some(sns) = crate::sns::recognize(&req) {
        return Ok(Action::Sns(sns));
    }
    if let Some(target) = header(req.headers, "x-amz-target") {
        if let Some(op) = target.strip_prefix(crate::kinesis::TARGET_PREFIX) {
            return Ok(Action::Kinesis(crate::kinesis::parse(op, &req.body)));
        }
        if let Some(op) = target.strip_prefix(crate::dynamodbstreams::TARGET_PREFIX) {
            return Ok(Action::DynamoDbStreams(crate::dynamodbstreams::parse(op, &req.body)));
        }
        if let Some(op) = target.strip_prefix(crate::dynamodb::TARGET_PREFIX) {
            return Ok(Action::DynamoDb(crate::dynamodb::parse(op, &req.body)));
        }
        if let Some(op) = target.strip_prefix("AWSEvents.") {
            return Ok(Action::Events(crate::events::parse(op, &req.body)));
        }
        if let Some(op) = target.strip_prefix(crate::kms::TARGET_PREFIX) {
            return Ok(Action::Kms(crate::kms::parse(op, &req.body)));
        }
        if let Some(op) = target.strip_prefix(crate::organizations::TARGET_PREFIX) {
            return Ok(Action::Organizations(crate::organizations::parse(op, &req.body)));
        }
        if let Some(op) = target.strip_prefix(crate::cloudwatch::TARGET_PREFIX) {
            return Ok(Action::CloudWatch(crate::cloudwatch::parse_json(op, &req.body)));
        }
        if let Some(op) = target.strip_prefix(crate::logs::TARGET_PREFIX) {
            return Ok(Action::Logs(crate::logs::parse(op, &req.body)));
        }
        return Err(ApiError::new(ErrorCode::UnknownOperation, format!("Unknown target {target}")));
    }
    if let Some(lambda) = crate::lambda::recognize(&req) {
        return Ok(Action::Lambda(lambda));
    }
    // Last: the console takes only what no service claims.
    if let Some(console) = crate::console::recognize(&req) {
        return Ok(Action::Console(console));
    }
    let segments: Vec<&str> = req.path.trim_start_matches('/').trim_end_matches('/').split('/').collect();
    match (req.method, segments.as_slice()) {
        (&Method::GET, ["health"]) => Ok(Action::Health),
        (&Method::GET, ["_nimbus", "status"]) => Ok(Action::Status),
        (&Method::GET, ["_nimbus", "code", account, digest]) => Ok(Action::GetCode {
            account: account.to_string(),
            digest: digest.to_string(),
            path: req.path.to_string(),
            query: req.query.map(str::to_string),
        }),
        (m, _) => Err(not_found_route(m, req.path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::ConsoleCall;
    use crate::lambda::LambdaCall;

    fn parse_req(method: Method, path: &str, query: Option<&str>, body: &str) -> Result<Action, ApiError> {
        let headers = HeaderMap::new();
        parse(RawRequest::for_test(&method, path, query, &headers, Bytes::from(body.to_string())))
    }

    fn lambda(method: Method, path: &str, query: Option<&str>, body: &str) -> Result<LambdaCall, ApiError> {
        match parse_req(method, path, query, body) {
            Ok(Action::Lambda(r)) => r.call,
            other => panic!("{path}: not a Lambda request: {other:?}"),
        }
    }

    #[test]
    fn routes() {
        assert!(matches!(lambda(Method::GET, "/2015-03-31/functions/", None, ""), Ok(LambdaCall::ListFunctions(_))));
        assert!(matches!(lambda(Method::GET, "/2015-03-31/functions/f", None, ""), Ok(LambdaCall::GetFunction(_))));
        assert!(matches!(lambda(Method::POST, "/2015-03-31/functions/f/invocations", None, "{}"), Ok(LambdaCall::Invoke(_))));
        assert!(matches!(lambda(Method::GET, "/2016-08-19/account-settings/", None, ""), Ok(LambdaCall::GetAccountSettings(_))));
        assert!(matches!(parse_req(Method::GET, "/health", None, ""), Ok(Action::Health)));
        assert!(matches!(parse_req(Method::GET, "/_nimbus/code/000000000000/abc", None, ""), Ok(Action::GetCode { .. })));
        assert_eq!(parse_req(Method::GET, "/nope", None, "").unwrap_err().code, ErrorCode::UnknownOperation);
        // The console: its files (`/` only when nothing else claims it), its login.
        let console = |method: Method, path: &str, query: Option<&str>| match parse_req(method, path, query, "") {
            Ok(Action::Console(ConsoleCall::Asset { path })) => Some(path),
            _ => None,
        };
        assert_eq!(console(Method::GET, "/", None).as_deref(), Some(""));
        assert_eq!(console(Method::HEAD, "/", None).as_deref(), Some(""));
        assert_eq!(console(Method::GET, "/", Some("")).as_deref(), Some(""));
        assert_eq!(console(Method::GET, "/_console", None).as_deref(), Some(""));
        assert_eq!(console(Method::GET, "/_console/", None).as_deref(), Some(""));
        assert_eq!(console(Method::HEAD, "/_console/assets/index-1a2b.js", None).as_deref(), Some("assets/index-1a2b.js"));
        assert_eq!(console(Method::GET, "/_console/../x", None).as_deref(), Some("../x"), "looked up in the table, never on disk");
        assert_eq!(console(Method::GET, "/_consolex", None), None);
        assert_eq!(console(Method::POST, "/", None), None);
        assert_eq!(console(Method::GET, "/", Some("Action=ListQueues&Version=2012-11-05")), None);
        assert_eq!(parse_req(Method::POST, "/_console/", None, "").unwrap_err().code, ErrorCode::UnknownOperation);
        assert!(matches!(
            parse_req(Method::POST, "/_nimbus/console/session", None, "{}"),
            Ok(Action::Console(ConsoleCall::Session { .. }))
        ));
        assert!(matches!(parse_req(Method::POST, "/_nimbus/console/link", None, ""), Ok(Action::Console(ConsoleCall::Link))));
        assert_eq!(parse_req(Method::GET, "/_nimbus/console/session", None, "").unwrap_err().code, ErrorCode::UnknownOperation);
        // Every operation of Lambda's model is served (a model update's new ones answer
        // UnknownOperationException until they are).
        assert!(matches!(
            lambda(Method::POST, "/2021-11-15/functions/f/response-streaming-invocations", None, "{}"),
            Ok(LambdaCall::InvokeWithResponseStream(_))
        ));
    }

    /// `/` is the console's only for a browser: a signed or AWS-looking request to it goes to
    /// its service (or hears why it is none).
    #[test]
    fn the_console_takes_only_what_no_service_claims() {
        let form = "application/x-www-form-urlencoded";
        let signed = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=00";
        let s3 = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00";
        // (method, headers, body, the console's)
        type Case<'a> = (Method, &'a [(&'a str, &'a str)], &'a str, bool);
        let cases: &[Case] = &[
            (Method::GET, &[], "", true),
            (Method::GET, &[("accept", "text/html"), ("user-agent", "Mozilla/5.0")], "", true),
            (Method::GET, &[("authorization", s3)], "", false),
            (Method::GET, &[("x-amz-date", "20250101T000000Z")], "", false),
            (Method::GET, &[("x-amz-content-sha256", "UNSIGNED-PAYLOAD")], "", false),
            (Method::POST, &[("content-type", form)], "Action=ListQueues&Version=2012-11-05", false),
            (Method::POST, &[("content-type", form), ("authorization", signed)], "Action=ListQueues&Version=2012-11-05", false),
            (Method::POST, &[("x-amz-target", "AmazonSQS.ListQueues"), ("content-type", "application/x-amz-json-1.0")], "{}", false),
        ];
        for (method, headers, body, want) in cases {
            let mut map = HeaderMap::new();
            for (k, v) in *headers {
                map.insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
            }
            let parsed = parse(RawRequest::for_test(method, "/", None, &map, Bytes::from(body.to_string())));
            assert_eq!(matches!(parsed, Ok(Action::Console(_))), *want, "{method} {headers:?} {body}: {parsed:?}");
        }
        let mut map = HeaderMap::new();
        map.insert("content-type", form.parse().unwrap());
        let sqs = parse(RawRequest::for_test(&Method::POST, "/", None, &map, Bytes::from_static(b"Action=ListQueues&Version=2012-11-05")));
        assert!(matches!(sqs, Ok(Action::Sqs(_))), "{sqs:?}");
    }

    #[test]
    fn bad_input() {
        type Case<'a> = (Method, &'a str, Option<&'a str>, &'a str, ErrorCode, &'a str);
        let cases: &[Case] = &[
            (Method::POST, "/2015-03-31/functions", None, "{\"FunctionName\": 5}", ErrorCode::InvalidRequestContent, ""),
            (Method::POST, "/2015-03-31/functions", None, "{not json", ErrorCode::InvalidRequestContent, ""),
            (
                Method::POST,
                "/2015-03-31/functions",
                None,
                "{\"FunctionName\": \"f\", \"Code\": {}}",
                ErrorCode::Validation,
                "1 validation error detected: Value null at 'role' failed to satisfy constraint: Member must not be null",
            ),
            (
                Method::GET,
                "/2015-03-31/functions",
                Some("MaxItems=x"),
                "",
                ErrorCode::Validation,
                "1 validation error detected: Value 'x' at 'maxItems' failed to satisfy constraint: Member must be a number",
            ),
        ];
        for (method, path, query, body, code, message) in cases {
            let e = lambda(method.clone(), path, *query, body).expect_err(body);
            assert_eq!(e.code, *code, "{body}: {e}");
            assert!(message.is_empty() || e.message == *message, "{body}: {e}");
        }
    }

    #[test]
    fn unplaceable_query_requests() {
        let form = "application/x-www-form-urlencoded; charset=utf-8";
        let other = |action: &str, version: &str| Unplaced::OtherVersion { action: action.into(), version: version.into() };
        // (content type, query, body, why)
        let cases: Vec<(&str, Option<&str>, &[u8], Unplaced)> = vec![
            (form, None, b"Action=ListQueues", Unplaced::MissingVersion { action: "ListQueues".into() }),
            (form, None, b"Action=ListQueues&Version=2099-01-01", other("ListQueues", "2099-01-01")),
            (form, None, b"Action=A&Version=1&Action=B&Version=2", other("B", "2")),
            (form, Some("Action=ListQueues&Version=v"), b"", other("ListQueues", "v")),
            (form, None, b"Version=2012-11-05", Unplaced::MissingAction),
            (form, None, b"Action=&Version=2012-11-05", Unplaced::MissingAction),
            (form, None, b"", Unplaced::MissingAction),
            ("text/plain", None, b"Action=ListQueues&Version=2012-11-05", Unplaced::MissingAction),
            ("", None, b"Action=ListQueues&Version=2012-11-05", Unplaced::MissingAction),
            (form, None, b"Action=ListQueues&QueueNamePrefix=%ff", Unplaced::Malformed),
            (form, None, b"Action=ListQueues&QueueNamePrefix=%c3%28", Unplaced::Malformed),
            (form, None, b"Action=ListQueues&QueueNamePrefix=\xff", Unplaced::Malformed),
            (form, Some("Action=%fe"), b"", Unplaced::Malformed),
            // A replacement character that was sent is text, not a broken byte.
            (form, None, "Action=\u{FFFD}&Version=x".as_bytes(), other("\u{FFFD}", "x")),
            (form, None, b"Action=A%EF%BF%BD&Version=x", other("A\u{FFFD}", "x")),
            // Not a form: its bytes are not read, text or not.
            ("application/json", None, b"\xff\xfe", Unplaced::MissingAction),
        ];
        for (content_type, query, body, want) in cases {
            let mut headers = HeaderMap::new();
            if !content_type.is_empty() {
                headers.insert("content-type", content_type.parse().unwrap());
            }
            let req = RawRequest::for_test(&Method::POST, "/", query, &headers, Bytes::copy_from_slice(body));
            assert_eq!(unplaced(&req), want, "{content_type} {query:?} {:?}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn decodes_percent() {
        assert_eq!(decode_component("a%24b%3A"), "a$b:");
        assert_eq!(decode_component("%"), "%");
        assert_eq!(decode_component("%4"), "%4");
    }
}

//! Authentication at the edge: every request to an AWS API is checked here, once, after it
//! was parsed into its [`Action`] and before its service runs it. A request that is not
//! signed by a key Nimbus knows is answered with its service's own AWS error. Function
//! URLs and HTTP APIs are the functions' front doors (their `AWS_IAM` modes are checked by
//! their own paths); `/health`, `/_nimbus/status` and the code links are Nimbus's own, and so
//! are the web console's files (`/_console/…`, and `/` for a browser) and its login
//! (`POST /_nimbus/console/session`, whose one-time token is the credential); a new console
//! login link (`POST /_nimbus/console/link`) is signed, checked here like any AWS call, and
//! made for the administrator's key only (root's long-term key, not a session of root);
//! SNS's confirm and unsubscribe links work unsigned, as on AWS (signed, as SDKs send these
//! calls, they are checked, and then authorized, like any other call).

use bytes::Bytes;
use http::request::Parts;
use http::Response;
use nimbus_identity::sigv4::{self, AuthError, PathStyle};
use nimbus_identity::{Caller, KeyError, Keys};
use nimbus_protocol::{encode, AwsError, Protocol, Service};

use crate::action::Action;
use crate::response::Body;

/// How a service's errors travel, for the auth errors it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    /// Lambda and API Gateway (rest-json): 403 with `x-amzn-ErrorType`.
    RestJson,
    /// awsJson services (EventBridge, Logs, KMS, and SQS's JSON protocol with its query codes).
    Json,
    /// awsQuery services (SNS, SQS's query protocol): `<ErrorResponse>`.
    Query,
    /// EC2: `<Response><Errors>`, and codes of its own (`AuthFailure`, 401).
    Ec2,
}

/// The service and protocol of an AWS API action; None for Nimbus's own endpoints and the
/// functions' front doors.
fn wire(action: &Action) -> Option<(&'static Service, Protocol, Family)> {
    Some(match action {
        Action::Lambda(_) => (&nimbus_protocol::LAMBDA, Protocol::RestJson, Family::RestJson),
        Action::Gateway(_) => (&nimbus_protocol::APIGATEWAYV2, Protocol::RestJson, Family::RestJson),
        Action::Logs(_) => (&nimbus_protocol::LOGS, Protocol::AwsJson1_1, Family::Json),
        Action::Events(_) => (&nimbus_protocol::EVENTS, Protocol::AwsJson1_1, Family::Json),
        Action::DynamoDb(_) => (&nimbus_protocol::DYNAMODB, Protocol::AwsJson1_0, Family::Json),
        Action::DynamoDbStreams(_) => (&nimbus_protocol::DYNAMODBSTREAMS, Protocol::AwsJson1_0, Family::Json),
        Action::Kinesis(_) => (&nimbus_protocol::KINESIS, Protocol::AwsJson1_1, Family::Json),
        Action::Kms(_) => (&nimbus_protocol::KMS, Protocol::AwsJson1_1, Family::Json),
        Action::Organizations(_) => (&nimbus_protocol::ORGANIZATIONS, Protocol::AwsJson1_1, Family::Json),
        Action::CloudWatch(r) => match r.protocol {
            Protocol::AwsQuery => (&nimbus_protocol::CLOUDWATCH, Protocol::AwsQuery, Family::Query),
            p => (&nimbus_protocol::CLOUDWATCH, p, Family::Json),
        },
        Action::Sqs(r) => match r.protocol {
            Protocol::AwsQuery => (&nimbus_protocol::SQS, Protocol::AwsQuery, Family::Query),
            p => (&nimbus_protocol::SQS, p, Family::Json),
        },
        // The links SNS puts in its messages (SubscribeURL, UnsubscribeURL) work unsigned, as
        // on AWS: whoever holds the token may confirm or cancel that subscription.
        Action::Sns(r) if matches!(r.operation, "ConfirmSubscription" | "Unsubscribe") => return None,
        Action::Sns(_) => (&nimbus_protocol::SNS, Protocol::AwsQuery, Family::Query),
        Action::Iam(_) => (&nimbus_protocol::IAM, Protocol::AwsQuery, Family::Query),
        Action::Sts(_) => (&nimbus_protocol::STS, Protocol::AwsQuery, Family::Query),
        Action::Ec2(_) => (&nimbus_protocol::EC2, Protocol::Ec2, Family::Ec2),
        // A new console login link is the account root's to make: signed like a Lambda call
        // (any service's scope), refused as Lambda refuses.
        Action::Console(crate::console::ConsoleCall::Link) => (&nimbus_protocol::LAMBDA, Protocol::RestJson, Family::RestJson),
        // Authenticated from its head alone, before this: `check_s3`.
        Action::S3(_)
        | Action::Health
        | Action::Status
        | Action::GetCode { .. }
        | Action::Console(_)
        | Action::InvokeFunctionUrl(_)
        | Action::InvokeApi(_) => return None,
    })
}

/// An authentication failure as AWS answers it.
#[derive(Debug)]
struct Refusal {
    code: &'static str,
    query_code: &'static str,
    status: u16,
    message: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl AwsError for Refusal {
    fn code(&self) -> &str {
        self.code
    }
    fn query_code(&self) -> &str {
        self.query_code
    }
    fn status(&self) -> u16 {
        self.status
    }
    /// Signature errors come from AWS's front end, not the service: no `Type`.
    fn typed(&self) -> bool {
        false
    }
}

const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
const INVALID_TOKEN: &str = "The security token included in the request is invalid.";
const EXPIRED_TOKEN: &str = "The security token included in the request is expired";
/// EC2's answer to credentials it cannot validate (an unknown key, a bad token, a stale date).
const EC2_AUTH_FAILURE: &str = "AWS was not able to validate the provided access credentials";

/// AWS's answer to `failure` in `family`'s conventions (recorded answers and their sources:
/// `/work/shared/AWS-NOTES.md`, "Authentication errors").
fn refusal(family: Family, failure: &KeyError) -> Refusal {
    use Family::*;
    let r = |code, query_code, status, message: &str| Refusal { code, query_code, status, message: message.to_string() };
    // The status of each family: rest-json 403 throughout, awsJson 400 throughout, awsQuery
    // 403 but 400 for a malformed signature.
    let (denied, malformed) = match family {
        RestJson => (403, 403),
        Json => (400, 400),
        Query => (403, 400),
        Ec2 => (401, 400),
    };
    if family == Ec2 {
        // EC2 answers most failures as AuthFailure (401); a signature over other bytes is
        // SignatureDoesNotMatch (403), an expired session RequestExpired (400), as EC2's
        // answers recorded in public issue threads show.
        return match failure {
            KeyError::Signature(AuthError::Missing) => {
                r("MissingAuthenticationToken", "MissingAuthenticationToken", denied, "Request is missing Authentication Token")
            }
            KeyError::Signature(AuthError::Incomplete(m)) => r("IncompleteSignature", "IncompleteSignature", malformed, m),
            KeyError::Signature(AuthError::Mismatch { .. } | AuthError::ContentSha256Mismatch) => {
                r("SignatureDoesNotMatch", "SignatureDoesNotMatch", 403, SIGNATURE_MISMATCH)
            }
            KeyError::ExpiredToken => r("RequestExpired", "RequestExpired", 400, "Request has expired."),
            KeyError::Signature(AuthError::UnknownKey | AuthError::Invalid(_) | AuthError::Expired(_)) | KeyError::BadToken => {
                r("AuthFailure", "AuthFailure", denied, EC2_AUTH_FAILURE)
            }
        };
    }
    let mismatch = |m: &str| match family {
        Query => r("SignatureDoesNotMatch", "SignatureDoesNotMatch", denied, m),
        _ => r("InvalidSignatureException", "SignatureDoesNotMatch", denied, m),
    };
    match failure {
        KeyError::Signature(AuthError::Missing) => match family {
            Query => r("MissingAuthenticationToken", "MissingAuthenticationToken", denied, "Request is missing Authentication Token"),
            _ => r("MissingAuthenticationTokenException", "MissingAuthenticationToken", denied, "Missing Authentication Token"),
        },
        KeyError::Signature(AuthError::Incomplete(m)) => match family {
            Query => r("IncompleteSignature", "IncompleteSignature", malformed, m),
            _ => r("IncompleteSignatureException", "IncompleteSignature", malformed, m),
        },
        KeyError::Signature(AuthError::UnknownKey) | KeyError::BadToken => match family {
            Query => r("InvalidClientTokenId", "InvalidClientTokenId", denied, INVALID_TOKEN),
            _ => r("UnrecognizedClientException", "InvalidClientTokenId", denied, INVALID_TOKEN),
        },
        // A body that does not match its declared hash is a signature over another body.
        KeyError::Signature(AuthError::Mismatch { .. } | AuthError::ContentSha256Mismatch) => mismatch(SIGNATURE_MISMATCH),
        KeyError::Signature(AuthError::Invalid(m) | AuthError::Expired(m)) => mismatch(m),
        KeyError::ExpiredToken => match family {
            Query => r("ExpiredToken", "ExpiredToken", denied, EXPIRED_TOKEN),
            _ => r("ExpiredTokenException", "ExpiredToken", denied, EXPIRED_TOKEN),
        },
    }
}

/// The service a request that did not parse looks addressed to, from its headers and body.
fn guess(parts: &Parts, body: &Bytes) -> (&'static Service, Protocol, Family) {
    let header = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    let target = header("x-amz-target");
    if target.starts_with("AmazonSQS") {
        return (&nimbus_protocol::SQS, Protocol::AwsJson1_0, Family::Json);
    }
    if target.starts_with("Kinesis_20131202") {
        return (&nimbus_protocol::KINESIS, Protocol::AwsJson1_1, Family::Json);
    }
    if target.starts_with("DynamoDBStreams_20120810") {
        return (&nimbus_protocol::DYNAMODBSTREAMS, Protocol::AwsJson1_0, Family::Json);
    }
    if target.starts_with("DynamoDB_20120810") {
        return (&nimbus_protocol::DYNAMODB, Protocol::AwsJson1_0, Family::Json);
    }
    if target.starts_with("AWSEvents") {
        return (&nimbus_protocol::EVENTS, Protocol::AwsJson1_1, Family::Json);
    }
    if target.starts_with("TrentService") {
        return (&nimbus_protocol::KMS, Protocol::AwsJson1_1, Family::Json);
    }
    if !target.is_empty() {
        return (&nimbus_protocol::LOGS, Protocol::AwsJson1_1, Family::Json);
    }
    if header("content-type").starts_with("application/x-www-form-urlencoded") {
        let version = |v: &[u8]| {
            body.windows(v.len()).any(|w| w == v) || parts.uri.query().is_some_and(|q| q.as_bytes().windows(v.len()).any(|w| w == v))
        };
        if version(b"Version=2010-05-08") {
            return (&nimbus_protocol::IAM, Protocol::AwsQuery, Family::Query);
        }
        if version(b"Version=2011-06-15") {
            return (&nimbus_protocol::STS, Protocol::AwsQuery, Family::Query);
        }
        if version(b"Version=2016-11-15") {
            return (&nimbus_protocol::EC2, Protocol::Ec2, Family::Ec2);
        }
        let sqs = version(b"Version=2012-11-05") || parts.uri.path().len() > 1;
        return if sqs {
            (&nimbus_protocol::SQS, Protocol::AwsQuery, Family::Query)
        } else {
            (&nimbus_protocol::SNS, Protocol::AwsQuery, Family::Query)
        };
    }
    if parts.uri.path().starts_with("/v2/") {
        return (&nimbus_protocol::APIGATEWAYV2, Protocol::RestJson, Family::RestJson);
    }
    (&nimbus_protocol::LAMBDA, Protocol::RestJson, Family::RestJson)
}

/// For a request that did not parse into an action: AWS checks the signature first, so an
/// unauthenticated one hears that rather than what is wrong with it.
pub fn check_unparsed(keys: Option<&Keys>, parts: &Parts, body: &Bytes) -> Result<(), Box<Response<Body>>> {
    let Some(keys) = keys else { return Ok(()) };
    let wire = guess(parts, body);
    authenticate(keys, wire, sigv4::MAX_SKEW_SECS, "unparsed", parts, body).map(|_| ())
}

/// Whether the request carries a signature (a header or a presigned URL's).
fn signed(parts: &Parts) -> bool {
    parts.headers.contains_key(http::header::AUTHORIZATION) || parts.uri.query().is_some_and(|q| q.contains("X-Amz-Signature="))
}

/// Authenticates `action`: Ok(None) for actions that are not AWS API calls (or SNS's unsigned
/// links) or when authentication is off, Ok(caller) for a good signature, else the service's
/// error answer.
pub fn check(keys: Option<&Keys>, action: &Action, parts: &Parts, body: &Bytes) -> Result<Option<Caller>, Box<Response<Body>>> {
    let Some(keys) = keys else { return Ok(None) };
    let wire = match (wire(action), action) {
        (Some(wire), _) => wire,
        (None, Action::Sns(_)) if signed(parts) => (&nimbus_protocol::SNS, Protocol::AwsQuery, Family::Query),
        (None, _) => return Ok(None),
    };
    // Lambda allows 5 minutes of clock skew (as AWS's answers show); the others 15.
    let window = if matches!(action, Action::Lambda(_)) { 5 * 60 } else { sigv4::MAX_SKEW_SECS };
    let caller = authenticate(keys, wire, window, action.name(), parts, body)?;
    // A signature is for one service: AWS refuses one made for another.
    if let Some(name) = signing_name(action).filter(|name| !caller.service.eq_ignore_ascii_case(name)) {
        let failure = KeyError::Signature(AuthError::Invalid(format!("Credential should be scoped to correct service: '{name}'.")));
        let request_id = uuid::Uuid::new_v4().to_string();
        let (service, protocol, family) = wire;
        return Err(Box::new(encode::error(service, protocol, &refusal(family, &failure), &request_id).map(Body::from)));
    }
    Ok(Some(caller))
}

/// The service name a request to `action`'s service is signed for (its credential scope),
/// as the SDKs take it from the service's model (`signingName`, else `endpointPrefix`).
fn signing_name(action: &Action) -> Option<&'static str> {
    Some(match action {
        Action::Lambda(_) => "lambda",
        Action::Gateway(_) => "apigateway",
        Action::Sqs(_) => "sqs",
        // DynamoDB Streams' model signs as `dynamodb` (its endpoint is `streams.dynamodb`).
        Action::DynamoDb(_) | Action::DynamoDbStreams(_) => "dynamodb",
        Action::Kinesis(_) => "kinesis",
        Action::Sns(_) => "sns",
        Action::Events(_) => "events",
        Action::Logs(_) => "logs",
        Action::Kms(_) => "kms",
        Action::Iam(_) => "iam",
        Action::Sts(_) => "sts",
        Action::Ec2(_) => "ec2",
        Action::Organizations(_) => "organizations",
        Action::CloudWatch(_) => "monitoring",
        _ => return None,
    })
}

fn authenticate(
    keys: &Keys,
    (service, protocol, family): (&'static Service, Protocol, Family),
    window: i64,
    what: &str,
    parts: &Parts,
    body: &Bytes,
) -> Result<Caller, Box<Response<Body>>> {
    let req =
        sigv4::Request { method: parts.method.as_str(), path: parts.uri.path(), query: parts.uri.query(), headers: &parts.headers, body };
    keys.authenticate_within(&req, chrono::Utc::now(), PathStyle::Normalized, window).map_err(|failure| {
        if let KeyError::Signature(AuthError::Mismatch { canonical_request, .. }) = &failure {
            tracing::debug!(action = what, "signature mismatch; canonical request was:\n{canonical_request}");
        }
        let request_id = uuid::Uuid::new_v4().to_string();
        Box::new(encode::error(service, protocol, &refusal(family, &failure), &request_id).map(Body::from))
    })
}

/// Who an S3 request comes from, once its head is authenticated, and what its body must
/// then be.
pub enum S3Auth {
    /// Authentication is off.
    Off(sigv4::BodyCheck),
    /// Unsigned: S3 lets such a request do only what the bucket's policy grants everyone.
    Anonymous(sigv4::BodyCheck),
    Signed(Caller, sigv4::BodyCheck),
}

/// Authenticates an S3 request from its head (its body is streamed later, and checked
/// against what this returns).
pub fn check_s3(keys: Option<&Keys>, parts: &Parts, resource: &str) -> Result<S3Auth, Box<Response<Body>>> {
    let Some(keys) = keys else { return Ok(S3Auth::Off(unchecked_body(parts))) };
    let req = sigv4::Request {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
        body: &[],
    };
    // Signature Version 2 (boto3's presigned URLs in us-east-1): no payload hash to keep;
    // `Content-MD5` and checksums are checked as for every body.
    if let Some(sig) = nimbus_identity::sigv2::read(&parts.headers, parts.uri.query()) {
        return match keys.authenticate_v2(&sig, &req, resource, chrono::Utc::now()) {
            Ok(caller) => Ok(S3Auth::Signed(caller, unchecked_body(parts))),
            Err(failure) => Err(Box::new(s3_refusal(parts, &failure))),
        };
    }
    match keys.authenticate_head(&req, chrono::Utc::now(), PathStyle::S3, sigv4::MAX_SKEW_SECS) {
        Ok((caller, _)) if !caller.service.eq_ignore_ascii_case("s3") => {
            let failure = KeyError::Signature(AuthError::Invalid("Credential should be scoped to correct service: 's3'.".into()));
            Err(Box::new(s3_refusal(parts, &failure)))
        }
        Ok((caller, check)) => Ok(S3Auth::Signed(caller, check)),
        Err(KeyError::Signature(AuthError::Missing)) => Ok(S3Auth::Anonymous(unchecked_body(parts))),
        Err(failure) => {
            if let KeyError::Signature(AuthError::Mismatch { canonical_request, .. }) = &failure {
                tracing::debug!("S3 signature mismatch; canonical request was:\n{canonical_request}");
            }
            Err(Box::new(s3_refusal(parts, &failure)))
        }
    }
}

/// With authentication off, the body is still held to an aws-chunked encoding it declares
/// (decoded, its chunk signatures not checked) and to a hex `x-amz-content-sha256`.
fn unchecked_body(parts: &Parts) -> sigv4::BodyCheck {
    sigv4::body_check_unauthenticated(&parts.headers).unwrap_or(sigv4::BodyCheck::None)
}

/// S3's answers to a request it cannot authenticate (`<Error>` documents, S3's own codes).
fn s3_refusal(parts: &Parts, failure: &KeyError) -> Response<Body> {
    use crate::s3::S3Error;
    let access_key = || {
        sigv4::read(&sigv4::Request {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query(),
            headers: &parts.headers,
            body: &[],
        })
        .map(|s| s.scope.access_key)
        .ok()
        .or_else(|| nimbus_identity::sigv2::read(&parts.headers, parts.uri.query()).map(|s| s.access_key))
        .unwrap_or_default()
    };
    let error = match failure {
        KeyError::Signature(AuthError::Missing) => S3Error::new("AccessDenied", 403, "Access Denied"),
        KeyError::Signature(AuthError::Incomplete(m)) if parts.uri.query().is_some_and(|q| q.contains("X-Amz-")) => {
            S3Error::new("AuthorizationQueryParametersError", 400, m.clone())
        }
        KeyError::Signature(AuthError::Incomplete(m) | AuthError::Invalid(m)) => {
            S3Error::new("AuthorizationHeaderMalformed", 400, m.clone())
        }
        KeyError::Signature(AuthError::UnknownKey) => {
            S3Error::new("InvalidAccessKeyId", 403, "The AWS Access Key Id you provided does not exist in our records.")
                .with("AWSAccessKeyId", access_key())
        }
        KeyError::BadToken => S3Error::new("InvalidToken", 400, "The provided token is malformed or otherwise invalid."),
        KeyError::ExpiredToken => S3Error::new("ExpiredToken", 400, "The provided token has expired."),
        KeyError::Signature(AuthError::Expired(m)) if m.starts_with("Request has expired") => {
            S3Error::new("AccessDenied", 403, "Request has expired")
        }
        KeyError::Signature(AuthError::Expired(_)) => {
            S3Error::new("RequestTimeTooSkewed", 403, "The difference between the request time and the current time is too large.")
        }
        KeyError::Signature(AuthError::ContentSha256Mismatch) => {
            S3Error::new("XAmzContentSHA256Mismatch", 400, "The provided 'x-amz-content-sha256' header does not match what was computed.")
        }
        KeyError::Signature(AuthError::Mismatch { canonical_request, string_to_sign }) => S3Error::new(
            "SignatureDoesNotMatch",
            403,
            "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
        )
        .with("AWSAccessKeyId", access_key())
        .with("StringToSign", string_to_sign.clone())
        .with("CanonicalRequest", canonical_request.clone()),
    };
    crate::s3::error_response(&parts.method, &error)
}

/// Who signed a request to a function's front door (a function URL, an HTTP API route), whose
/// `AWS_IAM` authorization is decided on its own path.
#[derive(Debug)]
pub enum Signer {
    /// Authentication is off: nothing is checked.
    Off,
    /// No signature at all.
    Unsigned,
    /// A good signature by a known key.
    Signed(Caller),
    /// A signature that does not hold.
    Refused(KeyError),
}

/// Checks a front-door request's signature, if it has one.
pub fn signer(keys: Option<&Keys>, parts: &Parts, body: &Bytes) -> Signer {
    let Some(keys) = keys else { return Signer::Off };
    let req =
        sigv4::Request { method: parts.method.as_str(), path: parts.uri.path(), query: parts.uri.query(), headers: &parts.headers, body };
    match keys.authenticate_within(&req, chrono::Utc::now(), PathStyle::Normalized, sigv4::MAX_SKEW_SECS) {
        Ok(caller) => Signer::Signed(caller),
        Err(KeyError::Signature(AuthError::Missing)) => Signer::Unsigned,
        Err(e) => Signer::Refused(e),
    }
}

//! AWS's wire protocols, once for every service. A service is described by its botocore
//! model (vendored in `models/`); requests are decoded against the operation's input shape
//! into an [`Input`] that only deserializes into the service's typed input, typed outputs
//! are encoded by the output shape, and every error implements [`AwsError`] and is encoded
//! per protocol in one place ([`encode::error`]).
//!
//! ```text
//! request ─► decode::{json, query}, rest::rest_json ─► Input ─► typed call ─► service ─► typed output
//!                                                                         │
//!                      response ◄─ encode::{output, error} ◄──────────────┘
//! ```

pub mod cbor;
pub mod decode;
pub mod encode;
mod error;
pub mod eventstream;
pub mod model;
pub mod rest;
mod xml;

use std::sync::LazyLock;

pub use decode::Input;
pub use error::{AwsError, DecodeError};
pub use model::Model;

/// One of AWS's wire protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `X-Amz-Target` + a JSON body, `application/x-amz-json-1.0`.
    AwsJson1_0,
    /// The same with `application/x-amz-json-1.1`.
    AwsJson1_1,
    /// Form parameters in, XML out.
    AwsQuery,
    /// HTTP bindings (path, query string, headers) + JSON bodies.
    RestJson,
    /// HTTP bindings + XML bodies (S3).
    RestXml,
    /// Smithy RPC v2: `POST /service/{Service}/operation/{Op}` with CBOR bodies.
    RpcV2Cbor,
    /// EC2's own query dialect: form parameters named by capitalized `locationName`s, every
    /// list flattened (`Name.1`); answers are `<{Op}Response>` with a `<requestId>` and the
    /// members by their `locationName`s (no result wrapper), errors a `<Response><Errors>`.
    Ec2,
}

impl Protocol {
    pub fn content_type(self) -> &'static str {
        match self {
            Protocol::AwsJson1_0 => "application/x-amz-json-1.0",
            Protocol::AwsJson1_1 => "application/x-amz-json-1.1",
            Protocol::AwsQuery => "text/xml",
            Protocol::RestJson => "application/json",
            Protocol::RestXml => "application/xml",
            Protocol::RpcV2Cbor => "application/cbor",
            Protocol::Ec2 => "text/xml;charset=UTF-8",
        }
    }
}

/// A service as the protocol layer sees it: its model and the few conventions the model
/// does not record.
pub struct Service {
    model: &'static LazyLock<Model>,
    /// Prefix of the JSON protocols' `__type` (`com.amazonaws.sqs#` for SQS, empty for most).
    pub json_type_prefix: &'static str,
    /// Whether query errors carry an empty `<Detail/>` (SQS's do).
    pub query_error_detail: bool,
    /// Whether rest-json error bodies carry Lambda's `Type` (`User`/`Service`) beside the
    /// message; API Gateway's carry the message alone.
    pub rest_error_fault: bool,
    /// rest-xml: the namespace of response documents (S3's `http://s3.amazonaws.com/doc/2006-03-01/`).
    pub xml_namespace: Option<&'static str>,
    /// rest-xml: the root element of an operation's response document, where it is not
    /// `{Operation}Result` (botocore's models do not record it: S3's ListObjectsV2 answers
    /// `<ListBucketResult>`). GetBucketLocation, whose root is its one member's text, is
    /// the S3 service's own to write.
    pub xml_roots: &'static [(&'static str, &'static str)],
    /// rest-xml: errors are a bare `<Error>` (S3) rather than `<ErrorResponse><Error>`.
    pub xml_error_unwrapped: bool,
}

impl Service {
    /// A service on `model` with the conventions most services follow.
    const fn new(model: &'static LazyLock<Model>) -> Service {
        Service {
            model,
            json_type_prefix: "",
            query_error_detail: false,
            rest_error_fault: false,
            xml_namespace: None,
            xml_roots: &[],
            xml_error_unwrapped: false,
        }
    }

    pub fn model(&self) -> &'static Model {
        self.model
    }

    /// The root element of `operation`'s rest-xml response document.
    pub fn xml_root(&self, operation: &str) -> String {
        self.xml_roots.iter().find(|(op, _)| *op == operation).map_or_else(|| format!("{operation}Result"), |(_, root)| root.to_string())
    }
}

macro_rules! vendored {
    ($($static:ident => $file:literal),* $(,)?) => {
        $(static $static: LazyLock<Model> = LazyLock::new(|| Model::parse(include_str!(concat!("../models/", $file))));)*
        /// Every vendored model, by file name (for tests that walk them).
        pub fn all_models() -> Vec<(&'static str, &'static Model)> {
            vec![$(($file, &*$static)),*]
        }
    };
}

vendored! {
    SQS_MODEL => "sqs.json",
    SNS_MODEL => "sns.json",
    EVENTS_MODEL => "events.json",
    LOGS_MODEL => "logs.json",
    LAMBDA_MODEL => "lambda.json",
    APIGATEWAYV2_MODEL => "apigatewayv2.json",
    CLOUDWATCH_MODEL => "cloudwatch.json",
    S3_MODEL => "s3.json",
    IAM_MODEL => "iam.json",
    STS_MODEL => "sts.json",
    KMS_MODEL => "kms.json",
    EC2_MODEL => "ec2.json",
    ORGANIZATIONS_MODEL => "organizations.json",
    DYNAMODB_MODEL => "dynamodb.json",
    KINESIS_MODEL => "kinesis.json",
    DYNAMODBSTREAMS_MODEL => "dynamodbstreams.json",
}

/// Amazon SQS (awsJson 1.0 with query-compatible errors, and awsQuery).
pub static SQS: Service = Service { json_type_prefix: "com.amazonaws.sqs#", query_error_detail: true, ..Service::new(&SQS_MODEL) };
/// Amazon SNS (awsQuery).
pub static SNS: Service = Service::new(&SNS_MODEL);
/// Amazon EventBridge (awsJson 1.1).
pub static EVENTS: Service = Service::new(&EVENTS_MODEL);
/// Amazon CloudWatch Logs (awsJson 1.1).
pub static LOGS: Service = Service::new(&LOGS_MODEL);
/// AWS Key Management Service (awsJson 1.1, `TrentService.*`).
pub static KMS: Service = Service::new(&KMS_MODEL);
/// AWS Lambda (rest-json).
pub static LAMBDA: Service = Service { rest_error_fault: true, ..Service::new(&LAMBDA_MODEL) };
/// Amazon API Gateway V2 (rest-json).
pub static APIGATEWAYV2: Service = Service::new(&APIGATEWAYV2_MODEL);
/// Amazon CloudWatch metrics (RPC v2 CBOR, awsJson 1.0 and awsQuery, with query-compatible
/// errors).
pub static CLOUDWATCH: Service = Service { json_type_prefix: "com.amazonaws.cloudwatch#", ..Service::new(&CLOUDWATCH_MODEL) };
/// Amazon DynamoDB (awsJson 1.0, `DynamoDB_20120810.*`).
pub static DYNAMODB: Service = Service { json_type_prefix: "com.amazonaws.dynamodb.v20120810#", ..Service::new(&DYNAMODB_MODEL) };
/// Amazon Kinesis Data Streams (awsJson 1.1, `Kinesis_20131202.*`).
pub static KINESIS: Service = Service::new(&KINESIS_MODEL);
/// Amazon DynamoDB Streams (awsJson 1.0, `DynamoDBStreams_20120810.*`, signed as `dynamodb`).
pub static DYNAMODBSTREAMS: Service =
    Service { json_type_prefix: "com.amazonaws.dynamodb.v20120810#", ..Service::new(&DYNAMODBSTREAMS_MODEL) };
/// AWS Identity and Access Management (awsQuery).
pub static IAM: Service = Service::new(&IAM_MODEL);
/// AWS Organizations (awsJson 1.1): accounts.
pub static ORGANIZATIONS: Service = Service::new(&ORGANIZATIONS_MODEL);
/// AWS Security Token Service (awsQuery).
pub static STS: Service = Service::new(&STS_MODEL);
/// Amazon EC2 (the ec2 protocol; its model trimmed to the operations Nimbus serves). AWS's
/// answers carry the namespace with a trailing slash, which the model leaves out.
pub static EC2: Service = Service { xml_namespace: Some("http://ec2.amazonaws.com/doc/2016-11-15/"), ..Service::new(&EC2_MODEL) };
/// Amazon S3 (rest-xml).
pub static S3: Service = Service {
    xml_namespace: Some("http://s3.amazonaws.com/doc/2006-03-01/"),
    xml_roots: &[
        ("ListBuckets", "ListAllMyBucketsResult"),
        ("ListObjects", "ListBucketResult"),
        ("ListObjectsV2", "ListBucketResult"),
        ("ListObjectVersions", "ListVersionsResult"),
        ("ListMultipartUploads", "ListMultipartUploadsResult"),
        ("ListParts", "ListPartsResult"),
        ("GetBucketTagging", "Tagging"),
        ("GetObjectTagging", "Tagging"),
        ("GetBucketVersioning", "VersioningConfiguration"),
        ("GetBucketNotificationConfiguration", "NotificationConfiguration"),
        ("GetBucketAcl", "AccessControlPolicy"),
        ("GetObjectAcl", "AccessControlPolicy"),
        ("GetBucketCors", "CORSConfiguration"),
        ("GetBucketLifecycleConfiguration", "LifecycleConfiguration"),
        ("DeleteObjects", "DeleteResult"),
    ],
    xml_error_unwrapped: true,
    ..Service::new(&S3_MODEL)
};

/// Declares a service's closed set of typed calls: one variant per operation, holding its
/// typed input (`iam "events";` first also generates `iam_action`, the IAM name of each
/// operation). Generates `decode(operation, Input)` (the only way from a decoded request
/// to a call), `operation()` (the AWS operation name) and `OPERATIONS`. An operation whose
/// blob payload travels raw names the field that receives it: `Invoke(InvokeInput, payload
/// => payload)`.
///
/// ```ignore
/// nimbus_protocol::calls! {
///     /// Every SQS operation Nimbus serves.
///     pub enum SqsCall {
///         CreateQueue(CreateQueueInput),
///         SendMessage(SendMessageInput),
///     }
/// }
/// ```
#[macro_export]
macro_rules! calls {
    (iam $prefix:literal; $(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $op:ident($input:ty $(, payload => $field:ident)?)),* $(,)? }) => {
        $crate::calls! { $(#[$meta])* $vis enum $name { $($(#[$vmeta])* $op($input $(, payload => $field)?)),* } }

        impl $name {
            /// The IAM action an operation of this set is authorized as (`events:PutRule`).
            pub fn iam_action(operation: &str) -> Option<&'static str> {
                match operation {
                    $(stringify!($op) => Some(concat!($prefix, ":", stringify!($op))),)*
                    _ => None,
                }
            }
        }
    };
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $op:ident($input:ty $(, payload => $field:ident)?)),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug)]
        $vis enum $name {
            $($(#[$vmeta])* $op($input)),*
        }

        impl $name {
            /// Every operation this set serves, by AWS name.
            pub const OPERATIONS: &'static [&'static str] = &[$(stringify!($op)),*];

            /// The call for `operation` from its decoded input; `None` if this set does
            /// not serve it.
            pub fn decode(operation: &str, input: $crate::Input) -> Option<Result<Self, $crate::DecodeError>> {
                match operation {
                    $(stringify!($op) => Some(input.parse_with_payload::<$input>().map(|(typed, _payload)| {
                        #[allow(unused_mut)]
                        let mut typed = typed;
                        $(typed.$field = _payload;)?
                        $name::$op(typed)
                    })),)*
                    _ => None,
                }
            }

            /// An awsJson request: `operation` (from `X-Amz-Target`) as this set spells it and
            /// its body decoded against `service`'s model into the call; `None` if the set does
            /// not serve the operation.
            pub fn from_json(
                service: &$crate::Service,
                operation: &str,
                body: &[u8],
            ) -> Option<(&'static str, Result<Self, $crate::DecodeError>)> {
                let op = *Self::OPERATIONS.iter().find(|o| **o == operation)?;
                let call = $crate::decode::json(service.model(), op, body)
                    .and_then(|input| Self::decode(op, input).expect("served operations decode"));
                Some((op, call))
            }

            /// The AWS operation name.
            pub fn operation(&self) -> &'static str {
                match self {
                    $($name::$op(_) => stringify!($op)),*
                }
            }
        }
    };
}

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;

//! The HTTP edge. Every request is parsed into one value of the closed [`Action`] set (the
//! single place where authorization will slot in), executed against the control plane, the
//! invoker or the log store, and answered in the AWS wire protocol the caller speaks:
//! rest-json for Lambda, JSON 1.1 for CloudWatch Logs, EventBridge and KMS, JSON 1.0 and query (XML)
//! for SQS, query (XML) for SNS, the ec2 protocol for EC2, rest-json for API Gateway V2, rest-xml for S3 ([`s3`],
//! whose object bodies stream); function URLs and HTTP APIs
//! serve functions over plain HTTP, and [`console`] the web console's files and its login.
//! Every listener speaks HTTPS instead when the server has a certificate ([`tls`]). No other
//! crate knows wire formats.

mod accounts;
mod action;
mod auth;
mod authz;
mod cloudwatch;
pub mod conn;
pub mod console;
mod dynamodb;
mod dynamodbstreams;
mod ec2;
mod events;
pub mod forward;
mod function_url;
mod gateway;
mod iam;
mod kinesis;
mod kms;
mod lambda;
mod logs;
mod metrics;
mod organizations;
mod proxy;
mod response;
pub mod s3;
mod server;
mod sns;
mod sqs;
mod streaming;
pub mod tls;
pub mod urls;

pub use accounts::{Accounts, OpenAccount};
pub use action::Action;
pub use authz::{service_may_invoke, service_may_send};
pub use cloudwatch::notify as notify_alarm;
pub use forward::Router;
pub use metrics::serve_metrics;
pub use server::{serve, serve_stream, serve_until, AppState};

/// Walks the models of every service Nimbus serves: every operation Nimbus serves exists in the model, and its
/// typed input accepts an input with every member the model defines, at the model's types.
#[cfg(test)]
mod model_walk {
    use nimbus_protocol::{decode, Service, APIGATEWAYV2, EC2, EVENTS, KMS, LAMBDA, LOGS, SNS, SQS};

    fn walk(service: &Service, operations: &[&str], decode_call: impl Fn(&str, nimbus_protocol::Input) -> Result<(), String>) {
        walk_to(service, operations, 6, decode_call)
    }

    /// [`walk`] with examples `depth` levels deep (CloudWatch's metric data nests deeper).
    fn walk_to(
        service: &Service,
        operations: &[&str],
        depth: usize,
        decode_call: impl Fn(&str, nimbus_protocol::Input) -> Result<(), String>,
    ) {
        let model = service.model();
        for op in operations {
            let operation = model.operation(op).unwrap_or_else(|| panic!("{op} is not in the model"));
            let Some(input) = &operation.input else { continue };
            let example = model.example(input, depth);
            let body = serde_json::to_vec(&example).expect("serializes");
            let decoded = decode::json(model, op, &body).unwrap_or_else(|e| panic!("{op}: the model's own example fails: {e}"));
            decode_call(op, decoded).unwrap_or_else(|e| panic!("{op}: the typed input refuses the model's example: {e}"));
        }
    }

    /// Walks one service's closed set of calls.
    macro_rules! walk_calls {
        ($service:expr, $calls:ty) => {
            walk(&$service, <$calls>::OPERATIONS, |op, i| <$calls>::decode(op, i).expect("served").map(drop).map_err(|e| e.to_string()))
        };
    }

    #[test]
    fn served_operations_match_the_models() {
        walk_calls!(SQS, crate::sqs::SqsCall);
        walk_calls!(nimbus_protocol::DYNAMODB, crate::dynamodb::DynamoDbCall);
        walk_calls!(nimbus_protocol::DYNAMODBSTREAMS, crate::dynamodbstreams::DynamoDbStreamsCall);
        walk_calls!(nimbus_protocol::KINESIS, crate::kinesis::KinesisCall);
        walk_calls!(SNS, crate::sns::SnsCall);
        walk_calls!(EVENTS, crate::events::EventsCall);
        walk_calls!(APIGATEWAYV2, crate::gateway::GatewayCall);
        walk_calls!(LOGS, crate::logs::LogsCall);
        walk_calls!(KMS, crate::kms::KmsCall);
        walk_calls!(LAMBDA, crate::lambda::LambdaCall);
        walk_calls!(EC2, crate::ec2::Ec2Call);
        walk_calls!(nimbus_protocol::ORGANIZATIONS, crate::organizations::OrganizationsCall);
        type Cw = crate::cloudwatch::CloudWatchCall;
        walk_to(&nimbus_protocol::CLOUDWATCH, Cw::OPERATIONS, 8, |op, i| {
            Cw::decode(op, i).expect("served").map(drop).map_err(|e| e.to_string())
        });
    }
}

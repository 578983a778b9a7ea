//! The HTTP edge. Every request is parsed into one value of the closed [`Action`] set (the
//! single place where authorization will slot in), executed against the control plane, the
//! invoker or the log store, and answered in the AWS wire protocol the caller speaks:
//! rest-json for Lambda, JSON 1.1 for CloudWatch Logs and EventBridge, JSON 1.0 and query (XML)
//! for SQS, query (XML) for SNS, rest-json for API Gateway V2; function URLs and HTTP APIs
//! serve functions over plain HTTP. No other crate knows wire formats.

mod action;
mod events;
mod function_url;
mod gateway;
mod lambda;
mod logs;
mod proxy;
mod response;
mod server;
mod sns;
mod sqs;

pub use action::Action;
pub use server::{serve, AppState};

/// Walks the models of every service Nimbus serves: every operation Nimbus serves exists in the model, and its
/// typed input accepts an input with every member the model defines, at the model's types.
#[cfg(test)]
mod model_walk {
    use nimbus_protocol::{decode, Service, APIGATEWAYV2, EVENTS, LAMBDA, LOGS, SNS, SQS};

    fn walk(service: &Service, operations: &[&str], decode_call: impl Fn(&str, nimbus_protocol::Input) -> Result<(), String>) {
        let model = service.model();
        for op in operations {
            let operation = model.operation(op).unwrap_or_else(|| panic!("{op} is not in the model"));
            let Some(input) = &operation.input else { continue };
            let example = model.example(input, 6);
            let body = serde_json::to_vec(&example).expect("serializes");
            let decoded = decode::json(model, op, &body).unwrap_or_else(|e| panic!("{op}: the model's own example fails: {e}"));
            decode_call(op, decoded).unwrap_or_else(|e| panic!("{op}: the typed input refuses the model's example: {e}"));
        }
    }

    #[test]
    fn served_operations_match_the_models() {
        walk(&SQS, crate::sqs::SqsCall::OPERATIONS, |op, i| {
            crate::sqs::SqsCall::decode(op, i).expect("served").map(drop).map_err(|e| e.to_string())
        });
        walk(&SNS, crate::sns::SnsCall::OPERATIONS, |op, i| {
            crate::sns::SnsCall::decode(op, i).expect("served").map(drop).map_err(|e| e.to_string())
        });
        walk(&EVENTS, crate::events::EventsCall::OPERATIONS, |op, i| {
            crate::events::EventsCall::decode(op, i).expect("served").map(drop).map_err(|e| e.to_string())
        });
        walk(&APIGATEWAYV2, crate::gateway::GatewayCall::OPERATIONS, |op, i| {
            crate::gateway::GatewayCall::decode(op, i).expect("served").map(drop).map_err(|e| e.to_string())
        });
        walk(&LOGS, crate::logs::LogsCall::OPERATIONS, |op, i| {
            crate::logs::LogsCall::decode(op, i).expect("served").map(drop).map_err(|e| e.to_string())
        });
        walk(&LAMBDA, crate::lambda::LambdaCall::OPERATIONS, |op, i| {
            crate::lambda::LambdaCall::decode(op, i).expect("served").map(drop).map_err(|e| e.to_string())
        });
    }
}

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

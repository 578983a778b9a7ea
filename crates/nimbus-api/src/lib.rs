//! The HTTP edge. Every request is parsed into one value of the closed [`Action`] set (the
//! single place where authorization will slot in), executed against the control plane, the
//! invoker or the log store, and answered in the AWS wire protocol the caller speaks:
//! rest-json for Lambda, JSON 1.1 for CloudWatch Logs and EventBridge, JSON 1.0 and query (XML)
//! for SQS, query (XML) for SNS. No other crate knows wire formats.

mod action;
mod events;
mod function_url;
mod lambda;
mod logs;
mod response;
mod server;
mod sns;
mod sqs;

pub use action::Action;
pub use server::{serve, AppState};

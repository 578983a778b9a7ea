//! Nimbus's API Gateway (HTTP APIs, the apigatewayv2 subset) without wire formats: the
//! records ([`model`]) kept durably in `<data>/gateway.db`, or in PostgreSQL for nodes that
//! share one database ([`GatewayService`]), route
//! selection with AWS's rules ([`routing`]), and the Lambda proxy events and result mapping
//! shared by every HTTP front of a function ([`proxy`]: payload formats 1.0 and 2.0, and
//! load-balancer target events). The HTTP edge (`nimbus-api`) parses requests into this
//! crate's inputs and invokes the functions.

mod error;
pub mod model;
pub mod proxy;
pub mod routing;
mod service;
mod store;

pub use error::GatewayError;
pub use service::{function_arn, ApiFront, GatewayService, Resolved, DEFAULT_STAGE};

#[cfg(test)]
mod tests;

//! AWS IAM's policy language, once: policy documents parsed and checked as IAM checks them
//! ([`Policy::parse`], refusals worded as IAM's `MalformedPolicyDocument`), and requests
//! evaluated against them as AWS evaluates requests within one account ([`evaluate`]). Pure
//! logic: no IO, no clock (the caller puts `aws:CurrentTime` in the [`Context`]).
//!
//! A policy is compiled when parsed (lowercased action patterns, ARN patterns split into
//! segments, condition values parsed for their operator), so evaluating a request allocates
//! nothing in the common case. [`managed`] holds the AWS managed policies Lambda users attach.
//!
//! ```
//! use nimbus_policy::{evaluate, Context, Decision, Kind, Policies, Policy, Principal, Request};
//!
//! let policy = Policy::parse(
//!     r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "lambda:Get*", "Resource": "*"}}"#,
//!     Kind::Identity,
//! ).unwrap();
//! let bob = Principal::user("123456789012", "bob", "AIDAEXAMPLE");
//! let context = Context::new();
//! let request = Request { principal: &bob, action: "lambda:GetFunction", resource: "*", context: &context };
//! let identity = [&policy];
//! let outcome = evaluate(&request, &Policies { identity: &identity, ..Policies::default() });
//! assert_eq!(outcome.decision, Decision::Allow);
//! ```

mod condition;
mod document;
mod error;
mod eval;
pub mod managed;
mod pattern;
mod request;

pub use document::{Effect, Kind, Policy};
pub use error::PolicyError;
pub use eval::{evaluate, Decider, Decision, Evaluation, Policies, PolicyType};
pub use request::{Context, Principal, PrincipalType, Request};

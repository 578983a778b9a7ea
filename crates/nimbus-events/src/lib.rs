//! Nimbus's EventBridge-compatible event service (CloudWatch Events): the domain, no wire formats.

mod error;
pub mod pattern;
pub mod schedule;
pub mod transform;

pub use error::EventsError;

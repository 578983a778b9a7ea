//! Nimbus's EventBridge-compatible event service (CloudWatch Events): the domain, no wire
//! formats. [`EventsService`] keeps event buses, rules and targets durably in SQLite
//! (`<data>/events.db`), or in PostgreSQL for nodes that share one database
//! ([`EventsService::open_shared`]: each follows the others' changes, and every scheduled
//! period is fired by one node), and implements EventBridge's actions with AWS's semantics:
//! rules with event patterns (`nimbus-rules`' EventBridge dialect) and schedule expressions
//! ([`schedule`]), targets with `Input`/`InputPath`/`InputTransformer` ([`transform`]),
//! PutEvents, TestEventPattern, and a scheduler ([`EventsService::run_scheduler`]) that fires
//! scheduled rules once per period.
//! Matching events reach Lambda targets through an [`EventSink`], which the binary implements
//! with asynchronous invocation; other target types are stored and listed but not delivered to.
//! The HTTP edge (`nimbus-api`) parses requests into this crate's typed inputs.

mod error;
pub mod metrics;
mod model;
pub mod schedule;
mod scheduler;
mod service;
mod store;
pub mod transform;

pub use error::EventsError;
pub use metrics::{EventsMetric, EventsMetrics};
pub use model::{
    BusInfo, FailedEntry, InputTransformerSpec, Page, PutEventsEntry, PutEventsResult, PutRule, RuleInfo, TargetSpec, DEFAULT_BUS,
};
pub use scheduler::Fired;
pub use service::{format_time, Clock, EventSink, EventsService, SystemClock, MAX_TARGETS_PER_RULE};

#[cfg(test)]
mod tests;

//! Triggers that call the [`nimbus_invoke::Invoker`] on a function's behalf. For now:
//! event source mappings that poll the built-in SQS queues and invoke functions with
//! batches of AWS's SQS records, one supervised task per poller.

pub mod sqs;

pub use sqs::{EventSources, MappingChange, NewMapping};

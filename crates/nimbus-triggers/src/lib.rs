//! Triggers that call the [`nimbus_invoke::Invoker`] on a function's behalf: event source
//! mappings that poll the built-in SQS queues (`sqs`), Kinesis streams and DynamoDB Streams
//! (`stream`, its pure decisions in `stream_batch` and `stream_window`) and invoke functions with batches of
//! AWS's records, one supervised task per poller.

pub mod sqs;
pub mod stream;
pub mod stream_batch;
pub mod stream_window;

pub use sqs::{EventSources, MappingChange, NewMapping, StreamOptions};
pub use stream::StreamSources;

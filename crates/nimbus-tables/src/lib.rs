//! DynamoDB's data and expression core for Nimbus's table service, with no IO: the item value
//! model ([`value`], exact [`number`]s) and the expression language ([`expr`]: conditions,
//! filters, key conditions, updates, projections), with AWS's checks and error texts. Storage
//! and the wire build on it.
//!
//! A request's path through it: check its values off the wire ([`value::WireValue`] →
//! [`AttributeValue`]), build its [`Placeholders`], parse each expression it carries (each
//! marks the placeholders it uses), call [`Placeholders::check_unused`], then evaluate per item.
//!
//! On that core: the table service ([`TableService`]: DynamoDB's table, item, query, batch,
//! transaction and TTL operations on typed [`request`]s), its tables' definitions
//! ([`schema`]: key schemas, indexes, order-preserving key bytes) and their storage
//! ([`store`]: `tables.db`, items, index entries and stream records in one SQLite file).
//! DynamoDB Streams reads those records back ([`streams`]: records as AWS sends them, sequence
//! numbers, signed shard iterators; `TableService::read_stream` for Lambda's pollers).

#![warn(missing_docs)]

pub mod capacity;
mod error;
pub mod expr;
mod legacy;
pub mod number;
pub mod request;
mod reserved;
pub mod schema;
mod service;
pub mod store;
pub mod streams;
pub mod value;

#[cfg(test)]
mod service_tests;
#[cfg(test)]
mod stream_tests;
#[cfg(test)]
mod tests;

pub use error::{CancellationReason, TableError};
pub use expr::{
    Condition, ExprError, ExpressionKind, KeyCondition, KeyQuery, KeyShape, Path, PathElement, Placeholders, Projection, Reason,
    SortCondition, Update, UpdateError,
};
pub use number::{Number, NumberError};
pub use reserved::is_reserved;
pub use service::stream_reader::{ReadFrom, StreamPage};
pub use service::TableService;
pub use value::{check_item_size, item_from_wire, item_size, AttributeValue, Item, ItemTooLarge, ValueError, ValueType, WireValue};

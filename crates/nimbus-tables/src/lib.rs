//! DynamoDB's data and expression core for Nimbus's table service, with no IO: the item value
//! model ([`value`], exact [`number`]s) and the expression language ([`expr`]: conditions,
//! filters, key conditions, updates, projections), with AWS's checks and error texts. Storage
//! and the wire build on it.
//!
//! A request's path through it: check its values off the wire ([`value::WireValue`] →
//! [`AttributeValue`]), build its [`Placeholders`], parse each expression it carries (each
//! marks the placeholders it uses), call [`Placeholders::check_unused`], then evaluate per item.

#![warn(missing_docs)]

pub mod expr;
pub mod number;
mod reserved;
pub mod value;

#[cfg(test)]
mod tests;

pub use expr::{
    Condition, ExprError, ExpressionKind, KeyCondition, KeyQuery, KeyShape, Path, PathElement, Placeholders, Projection, Reason,
    SortCondition, Update, UpdateError,
};
pub use number::{Number, NumberError};
pub use reserved::is_reserved;
pub use value::{check_item_size, item_from_wire, item_size, AttributeValue, Item, ItemTooLarge, ValueError, ValueType, WireValue};

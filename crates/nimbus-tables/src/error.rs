//! The table service's errors, one variant per AWS exception it answers, with the members
//! some of them carry (the item of a failed condition, a cancelled transaction's reasons).

use serde::Serialize;

use crate::value::Item;

/// One entry of `TransactionCanceledException`'s `CancellationReasons`, in AWS's shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CancellationReason {
    /// `None`, `ConditionalCheckFailed`, `ValidationError`, …
    pub code: String,
    /// Said for every reason but `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The item, when the failed entry asked for it (`ReturnValuesOnConditionCheckFailure`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<Item>,
}

impl CancellationReason {
    /// An entry that did not fail.
    pub fn none() -> CancellationReason {
        CancellationReason { code: "None".into(), message: None, item: None }
    }
}

/// What a table operation answers instead of its output.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TableError {
    /// `ValidationException` (400) with AWS's text.
    #[error("{0}")]
    Validation(String),
    /// `SerializationException` (400): a body that is not the operation's document.
    #[error("{0}")]
    Serialization(String),
    /// `ResourceNotFoundException` (400).
    #[error("{0}")]
    NotFound(String),
    /// `ResourceInUseException` (400).
    #[error("{0}")]
    InUse(String),
    /// `TableNotFoundException` (400): the backup calls' missing table.
    #[error("{0}")]
    TableNotFound(String),
    /// `ConditionalCheckFailedException` (400); `item` when the caller asked for it with
    /// `ReturnValuesOnConditionCheckFailure: ALL_OLD` and the item exists.
    #[error("The conditional request failed")]
    ConditionalCheckFailed {
        /// The item as it was.
        item: Option<Item>,
    },
    /// `TransactionCanceledException` (400): one reason per request entry, in order.
    #[error("Transaction cancelled, please refer cancellation reasons for specific reasons [{}]", .0.iter().map(|r| r.code.as_str()).collect::<Vec<_>>().join(", "))]
    TransactionCanceled(Vec<CancellationReason>),
    /// `ExpiredIteratorException` (400): a DynamoDB Streams shard iterator past its 15 minutes.
    #[error("{0}")]
    ExpiredIterator(String),
    /// `TrimmedDataAccessException` (400): a DynamoDB Streams read before the trim horizon.
    #[error("{0}")]
    TrimmedDataAccess(String),
    /// An operation of DynamoDB's API that Nimbus does not serve.
    #[error("{0} is not supported by Nimbus")]
    NotImplemented(String),
    /// A storage failure (500).
    #[error("{0}")]
    Internal(String),
}

impl TableError {
    /// AWS's exception name.
    pub fn code(&self) -> &'static str {
        match self {
            TableError::Validation(_) => "ValidationException",
            TableError::Serialization(_) => "SerializationException",
            TableError::NotFound(_) => "ResourceNotFoundException",
            TableError::InUse(_) => "ResourceInUseException",
            TableError::TableNotFound(_) => "TableNotFoundException",
            TableError::ConditionalCheckFailed { .. } => "ConditionalCheckFailedException",
            TableError::TransactionCanceled(_) => "TransactionCanceledException",
            TableError::ExpiredIterator(_) => "ExpiredIteratorException",
            TableError::TrimmedDataAccess(_) => "TrimmedDataAccessException",
            TableError::NotImplemented(_) => "UnknownOperationException",
            TableError::Internal(_) => "InternalServerError",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            TableError::Internal(_) => 500,
            _ => 400,
        }
    }

    /// `ResourceNotFoundException` for an item operation on a missing table (AWS names no
    /// table there).
    pub fn no_table() -> TableError {
        TableError::NotFound("Requested resource not found".into())
    }

    /// `ResourceNotFoundException` of the table calls (DescribeTable, DeleteTable, …).
    pub fn no_such_table(name: &str) -> TableError {
        TableError::NotFound(format!("Requested resource not found: Table: {name} not found"))
    }

    /// `One or more parameter values were invalid: …`.
    pub fn invalid(detail: impl std::fmt::Display) -> TableError {
        TableError::Validation(format!("One or more parameter values were invalid: {detail}"))
    }
}

impl From<rusqlite::Error> for TableError {
    fn from(e: rusqlite::Error) -> TableError {
        TableError::Internal(format!("tables database: {e}"))
    }
}

impl From<crate::expr::ExprError> for TableError {
    fn from(e: crate::expr::ExprError) -> TableError {
        TableError::Validation(e.to_string())
    }
}

impl From<crate::value::ValueError> for TableError {
    fn from(e: crate::value::ValueError) -> TableError {
        TableError::Validation(e.to_string())
    }
}

impl From<crate::expr::UpdateError> for TableError {
    fn from(e: crate::expr::UpdateError) -> TableError {
        TableError::Validation(e.to_string())
    }
}

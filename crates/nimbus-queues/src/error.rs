//! The queue service's errors: one variant per AWS SQS error, so the API edge can answer
//! with both of AWS's names for it (the JSON protocol's `__type` and the query protocol's
//! code) without knowing anything else about queues.

/// An SQS error, with AWS's message text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("The specified queue does not exist.")]
    QueueDoesNotExist,
    #[error("{0}")]
    QueueNameExists(String),
    #[error("{0}")]
    InvalidParameterValue(String),
    #[error("{0}")]
    MissingParameter(String),
    #[error("{0}")]
    ReceiptHandleIsInvalid(String),
    #[error("{0}")]
    InvalidAttributeName(String),
    #[error("{0}")]
    InvalidAttributeValue(String),
    #[error("{0}")]
    InvalidMessageContents(String),
    #[error("{0}")]
    BatchEntryIdsNotDistinct(String),
    #[error("{0}")]
    EmptyBatchRequest(String),
    #[error("{0}")]
    TooManyEntriesInBatchRequest(String),
    #[error("{0}")]
    InvalidBatchEntryId(String),
    #[error("{0}")]
    BatchRequestTooLong(String),
    #[error("{0}")]
    MessageNotInflight(String),
    #[error("{0}")]
    UnsupportedOperation(String),
    /// The request names an operation this endpoint does not serve.
    #[error("{0}")]
    InvalidAction(String),
    /// A query-protocol request without an `Action`.
    #[error("{0}")]
    MissingAction(String),
    /// The request body could not be read as the protocol's format.
    #[error("{0}")]
    Serialization(String),
    #[error("{0}")]
    OverLimit(String),
    /// A second PurgeQueue within 60 seconds (AWS answers 403).
    #[error("{0}")]
    PurgeQueueInProgress(String),
    /// Ours, not the caller's: the database failed.
    #[error("Internal error: {0}")]
    Internal(String),
}

impl QueueError {
    /// The short name the JSON protocol puts in `__type` (after `com.amazonaws.sqs#`) and
    /// botocore maps to a modelled exception.
    pub fn type_name(&self) -> &'static str {
        match self {
            QueueError::QueueDoesNotExist => "QueueDoesNotExist",
            QueueError::QueueNameExists(_) => "QueueNameExists",
            // The JSON protocol's names for these two (the query protocol keeps the old ones).
            QueueError::InvalidParameterValue(_) => "InvalidParameterValueException",
            QueueError::MissingParameter(_) => "MissingRequiredParameterException",
            QueueError::ReceiptHandleIsInvalid(_) => "ReceiptHandleIsInvalid",
            QueueError::InvalidAttributeName(_) => "InvalidAttributeName",
            QueueError::InvalidAttributeValue(_) => "InvalidAttributeValue",
            QueueError::InvalidMessageContents(_) => "InvalidMessageContents",
            QueueError::BatchEntryIdsNotDistinct(_) => "BatchEntryIdsNotDistinct",
            QueueError::EmptyBatchRequest(_) => "EmptyBatchRequest",
            QueueError::TooManyEntriesInBatchRequest(_) => "TooManyEntriesInBatchRequest",
            QueueError::InvalidBatchEntryId(_) => "InvalidBatchEntryId",
            QueueError::BatchRequestTooLong(_) => "BatchRequestTooLong",
            QueueError::MessageNotInflight(_) => "MessageNotInflight",
            QueueError::UnsupportedOperation(_) => "UnsupportedOperation",
            QueueError::InvalidAction(_) => "InvalidAction",
            QueueError::MissingAction(_) => "MissingAction",
            QueueError::Serialization(_) => "SerializationException",
            QueueError::OverLimit(_) => "OverLimit",
            QueueError::PurgeQueueInProgress(_) => "PurgeQueueInProgress",
            QueueError::Internal(_) => "InternalError",
        }
    }

    /// The query protocol's `<Code>` (also the first half of the JSON protocol's
    /// `x-amzn-query-error` header, which botocore reports as `Error.Code`).
    pub fn query_code(&self) -> &'static str {
        match self {
            QueueError::QueueDoesNotExist => "AWS.SimpleQueueService.NonExistentQueue",
            QueueError::QueueNameExists(_) => "QueueAlreadyExists",
            QueueError::InvalidParameterValue(_) => "InvalidParameterValue",
            QueueError::MissingParameter(_) => "MissingParameter",
            QueueError::PurgeQueueInProgress(_) => "AWS.SimpleQueueService.PurgeQueueInProgress",
            QueueError::BatchEntryIdsNotDistinct(_) => "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
            QueueError::EmptyBatchRequest(_) => "AWS.SimpleQueueService.EmptyBatchRequest",
            QueueError::TooManyEntriesInBatchRequest(_) => "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
            QueueError::InvalidBatchEntryId(_) => "AWS.SimpleQueueService.InvalidBatchEntryId",
            QueueError::BatchRequestTooLong(_) => "AWS.SimpleQueueService.BatchRequestTooLong",
            QueueError::MessageNotInflight(_) => "AWS.SimpleQueueService.MessageNotInflight",
            QueueError::UnsupportedOperation(_) => "AWS.SimpleQueueService.UnsupportedOperation",
            QueueError::Serialization(_) => "MalformedQueryString",
            other => other.type_name(),
        }
    }

    /// `Sender` when the caller is at fault, `Receiver` when we are.
    pub fn sender_fault(&self) -> bool {
        !matches!(self, QueueError::Internal(_))
    }

    /// The HTTP status AWS answers with.
    pub fn status(&self) -> u16 {
        match self {
            QueueError::Internal(_) => 500,
            QueueError::OverLimit(_) | QueueError::PurgeQueueInProgress(_) => 403,
            _ => 400,
        }
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> QueueError {
        QueueError::InvalidParameterValue(msg.into())
    }

    /// AWS's wording for a parameter outside its range.
    pub(crate) fn bad_value(value: impl std::fmt::Display, param: &str, reason: &str) -> QueueError {
        QueueError::InvalidParameterValue(format!("Value {value} for parameter {param} is invalid. Reason: {reason}"))
    }
}

impl nimbus_protocol::AwsError for QueueError {
    fn code(&self) -> &str {
        self.type_name()
    }
    fn query_code(&self) -> &str {
        QueueError::query_code(self)
    }
    fn status(&self) -> u16 {
        QueueError::status(self)
    }
    fn sender_fault(&self) -> bool {
        QueueError::sender_fault(self)
    }
}

impl From<rusqlite::Error> for QueueError {
    fn from(e: rusqlite::Error) -> Self {
        QueueError::Internal(format!("database: {e}"))
    }
}

//! The topic service's errors: one variant per SNS error code, with AWS's message text, so
//! the API edge can render them (code, fault, HTTP status) without knowing about topics.

/// An SNS error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// A topic, subscription or endpoint that does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// A tagged resource that does not exist (404).
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    InvalidParameter(String),
    /// AWS's `InvalidParameterValueException`, code `ParameterValueInvalid`.
    #[error("{0}")]
    ParameterValueInvalid(String),
    /// A required parameter is missing (AWS's modelled-constraint failure).
    #[error("{0}")]
    Validation(String),
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
    TagLimitExceeded(String),
    /// The request names an operation SNS does not have (or Nimbus does not serve).
    #[error("{0}")]
    InvalidAction(String),
    /// A query-protocol request without an `Action`.
    #[error("{0}")]
    MissingAction(String),
    /// A query-protocol request without a parameter every request needs (`Version`).
    #[error("{0}")]
    MissingParameter(String),
    /// A form body that is not URL-encoded UTF-8.
    #[error("{0}")]
    MalformedQueryString(String),
    /// Ours, not the caller's: the database failed.
    #[error("Internal error: {0}")]
    Internal(String),
}

impl TopicError {
    /// The query protocol's `<Code>` (what botocore reports as `Error.Code`).
    pub fn code(&self) -> &'static str {
        match self {
            TopicError::NotFound(_) => "NotFound",
            TopicError::ResourceNotFound(_) => "ResourceNotFound",
            TopicError::InvalidParameter(_) => "InvalidParameter",
            TopicError::ParameterValueInvalid(_) => "ParameterValueInvalid",
            TopicError::Validation(_) => "ValidationError",
            TopicError::BatchEntryIdsNotDistinct(_) => "BatchEntryIdsNotDistinct",
            TopicError::EmptyBatchRequest(_) => "EmptyBatchRequest",
            TopicError::TooManyEntriesInBatchRequest(_) => "TooManyEntriesInBatchRequest",
            TopicError::InvalidBatchEntryId(_) => "InvalidBatchEntryId",
            TopicError::BatchRequestTooLong(_) => "BatchRequestTooLong",
            TopicError::TagLimitExceeded(_) => "TagLimitExceeded",
            TopicError::InvalidAction(_) => "InvalidAction",
            TopicError::MissingAction(_) => "MissingAction",
            TopicError::MissingParameter(_) => "MissingParameter",
            TopicError::MalformedQueryString(_) => "MalformedQueryString",
            TopicError::Internal(_) => "InternalError",
        }
    }

    /// `Sender` when the caller is at fault, `Receiver` when we are.
    pub fn sender_fault(&self) -> bool {
        !matches!(self, TopicError::Internal(_))
    }

    /// The HTTP status AWS answers with.
    pub fn status(&self) -> u16 {
        match self {
            TopicError::NotFound(_) | TopicError::ResourceNotFound(_) => 404,
            TopicError::Internal(_) => 500,
            _ => 400,
        }
    }

    /// `Invalid parameter: <what>`, AWS's usual InvalidParameter text.
    pub fn invalid(what: impl std::fmt::Display) -> TopicError {
        TopicError::InvalidParameter(format!("Invalid parameter: {what}"))
    }

    pub(crate) fn topic_not_found() -> TopicError {
        TopicError::NotFound("Topic does not exist".into())
    }

    pub(crate) fn subscription_not_found() -> TopicError {
        TopicError::NotFound("Subscription does not exist".into())
    }
}

impl From<rusqlite::Error> for TopicError {
    fn from(e: rusqlite::Error) -> Self {
        TopicError::Internal(format!("database: {e}"))
    }
}

impl nimbus_protocol::AwsError for TopicError {
    fn code(&self) -> &str {
        TopicError::code(self)
    }
    fn status(&self) -> u16 {
        TopicError::status(self)
    }
    fn sender_fault(&self) -> bool {
        TopicError::sender_fault(self)
    }
}

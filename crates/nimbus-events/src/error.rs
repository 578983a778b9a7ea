//! The event service's errors: one variant per EventBridge exception, so the API edge can
//! answer with AWS's `__type` without knowing anything else about rules or events.

/// An EventBridge error, with AWS's message text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventsError {
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    ResourceAlreadyExists(String),
    /// A parameter failed AWS's checks (constraints of the model, or the service's own).
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    InvalidEventPattern(String),
    #[error("{0}")]
    LimitExceeded(String),
    /// The request body could not be read as JSON of the operation's shape.
    #[error("{0}")]
    Serialization(String),
    /// The request names an operation this endpoint does not serve.
    #[error("{0}")]
    UnknownOperation(String),
    /// Ours, not the caller's: the database failed.
    #[error("Internal error: {0}")]
    Internal(String),
}

impl EventsError {
    /// The name AWS puts in `__type` (botocore's `Error.Code`).
    pub fn type_name(&self) -> &'static str {
        match self {
            EventsError::ResourceNotFound(_) => "ResourceNotFoundException",
            EventsError::ResourceAlreadyExists(_) => "ResourceAlreadyExistsException",
            EventsError::Validation(_) => "ValidationException",
            EventsError::InvalidEventPattern(_) => "InvalidEventPatternException",
            EventsError::LimitExceeded(_) => "LimitExceededException",
            EventsError::Serialization(_) => "SerializationException",
            EventsError::UnknownOperation(_) => "UnknownOperationException",
            EventsError::Internal(_) => "InternalException",
        }
    }

    /// The HTTP status AWS answers with.
    pub fn status(&self) -> u16 {
        match self {
            EventsError::Internal(_) => 500,
            _ => 400,
        }
    }

    /// AWS's wording for a value that breaks a constraint of the API model.
    pub(crate) fn constraint(value: &str, field: &str, constraint: &str) -> EventsError {
        EventsError::Validation(format!(
            "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: {constraint}"
        ))
    }
}

/// A pattern refused by the rule language, in EventBridge's words.
impl From<nimbus_rules::RuleError> for EventsError {
    fn from(e: nimbus_rules::RuleError) -> Self {
        EventsError::InvalidEventPattern(e.to_string())
    }
}

impl From<rusqlite::Error> for EventsError {
    fn from(e: rusqlite::Error) -> Self {
        EventsError::Internal(format!("database: {e}"))
    }
}

impl nimbus_protocol::AwsError for EventsError {
    fn code(&self) -> &str {
        self.type_name()
    }
    fn status(&self) -> u16 {
        EventsError::status(self)
    }
}

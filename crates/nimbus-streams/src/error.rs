//! The stream service's errors: one variant per Kinesis exception, with AWS's message text,
//! so the API edge answers them without knowing anything else about streams.

/// A Kinesis error, with AWS's message text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    ResourceInUse(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    ExpiredIterator(String),
    #[error("{0}")]
    ProvisionedThroughputExceeded(String),
    /// A model constraint the request broke (`1 validation error detected: …`).
    #[error("{0}")]
    Validation(String),
    /// The body could not be read as JSON of the operation's shape.
    #[error("{0}")]
    Serialization(String),
    /// An operation of Kinesis's model that Nimbus does not serve (yet).
    #[error("{0}")]
    UnknownOperation(String),
    /// Ours, not the caller's: the database failed.
    #[error("Internal error: {0}")]
    Internal(String),
}

impl StreamError {
    /// The `__type` AWS answers with.
    pub fn type_name(&self) -> &'static str {
        match self {
            StreamError::ResourceNotFound(_) => "ResourceNotFoundException",
            StreamError::ResourceInUse(_) => "ResourceInUseException",
            StreamError::InvalidArgument(_) => "InvalidArgumentException",
            StreamError::LimitExceeded(_) => "LimitExceededException",
            StreamError::ExpiredIterator(_) => "ExpiredIteratorException",
            StreamError::ProvisionedThroughputExceeded(_) => "ProvisionedThroughputExceededException",
            StreamError::Validation(_) => "ValidationException",
            StreamError::Serialization(_) => "SerializationException",
            StreamError::UnknownOperation(_) => "UnknownOperationException",
            StreamError::Internal(_) => "InternalFailure",
        }
    }

    /// The HTTP status AWS answers with: 400 for everything the caller did, 500 for ours.
    pub fn status(&self) -> u16 {
        match self {
            StreamError::Internal(_) => 500,
            _ => 400,
        }
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> StreamError {
        StreamError::InvalidArgument(msg.into())
    }
}

impl nimbus_protocol::AwsError for StreamError {
    fn code(&self) -> &str {
        self.type_name()
    }
    fn status(&self) -> u16 {
        StreamError::status(self)
    }
    fn sender_fault(&self) -> bool {
        !matches!(self, StreamError::Internal(_))
    }
}

impl From<rusqlite::Error> for StreamError {
    fn from(e: rusqlite::Error) -> Self {
        StreamError::Internal(format!("database: {e}"))
    }
}

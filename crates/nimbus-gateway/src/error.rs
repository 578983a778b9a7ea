//! The gateway's errors: one variant per API Gateway V2 exception the management API answers
//! with, so the HTTP edge renders AWS's `{"message": ...}` and `x-amzn-ErrorType` without
//! knowing anything else about APIs.

/// An API Gateway V2 error, with AWS's message text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    /// Ours, not the caller's: the database failed.
    #[error("Internal error: {0}")]
    Internal(String),
}

impl GatewayError {
    /// The exception name (botocore's `Error.Code`).
    pub fn type_name(&self) -> &'static str {
        match self {
            GatewayError::NotFound(_) => "NotFoundException",
            GatewayError::BadRequest(_) => "BadRequestException",
            GatewayError::Conflict(_) => "ConflictException",
            GatewayError::Internal(_) => "InternalServerErrorException",
        }
    }

    /// The HTTP status AWS answers with (from the API model's error shapes).
    pub fn status(&self) -> u16 {
        match self {
            GatewayError::NotFound(_) => 404,
            GatewayError::BadRequest(_) => 400,
            GatewayError::Conflict(_) => 409,
            GatewayError::Internal(_) => 500,
        }
    }
}

impl From<rusqlite::Error> for GatewayError {
    fn from(e: rusqlite::Error) -> Self {
        GatewayError::Internal(format!("database: {e}"))
    }
}

impl nimbus_protocol::AwsError for GatewayError {
    fn code(&self) -> &str {
        self.type_name()
    }
    fn status(&self) -> u16 {
        GatewayError::status(self)
    }
}

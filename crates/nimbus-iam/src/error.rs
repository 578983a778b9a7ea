//! IAM's and STS's errors, one variant per AWS error code, with AWS's message text; the API
//! edge encodes them (code, status, fault) without knowing about IAM.

/// An IAM or STS error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IamError {
    /// 404 `NoSuchEntity`.
    #[error("{0}")]
    NoSuchEntity(String),
    /// 409 `EntityAlreadyExists`.
    #[error("{0}")]
    EntityAlreadyExists(String),
    /// 400 `MalformedPolicyDocument` (the message is `nimbus-policy`'s IAM wording).
    #[error("{0}")]
    MalformedPolicyDocument(String),
    /// 409 `DeleteConflict`.
    #[error("{0}")]
    DeleteConflict(String),
    /// 409 `LimitExceeded`.
    #[error("{0}")]
    LimitExceeded(String),
    /// 400 `PackedPolicyTooLarge`: AssumeRole's session policies take more than their space.
    #[error("{0}")]
    PackedPolicyTooLarge(String),
    /// 400 `ValidationError` (modelled constraints, and STS's checks).
    #[error("{0}")]
    Validation(String),
    /// 400 `InvalidInput`.
    #[error("{0}")]
    InvalidInput(String),
    /// 403 `AccessDenied`.
    #[error("{0}")]
    AccessDenied(String),
    /// 400 `InvalidAction`: an operation IAM/STS does not have or Nimbus does not serve.
    #[error("{0}")]
    InvalidAction(String),
    /// 500 `ServiceFailure`: ours (the database failed).
    #[error("{0}")]
    Internal(String),
}

impl IamError {
    /// The query protocol's `<Code>`.
    pub fn code(&self) -> &'static str {
        match self {
            IamError::NoSuchEntity(_) => "NoSuchEntity",
            IamError::EntityAlreadyExists(_) => "EntityAlreadyExists",
            IamError::MalformedPolicyDocument(_) => "MalformedPolicyDocument",
            IamError::PackedPolicyTooLarge(_) => "PackedPolicyTooLarge",
            IamError::DeleteConflict(_) => "DeleteConflict",
            IamError::LimitExceeded(_) => "LimitExceeded",
            IamError::Validation(_) => "ValidationError",
            IamError::InvalidInput(_) => "InvalidInput",
            IamError::AccessDenied(_) => "AccessDenied",
            IamError::InvalidAction(_) => "InvalidAction",
            IamError::Internal(_) => "ServiceFailure",
        }
    }

    /// The HTTP status IAM answers with (botocore's model: `httpStatusCode`).
    pub fn status(&self) -> u16 {
        match self {
            IamError::NoSuchEntity(_) => 404,
            IamError::EntityAlreadyExists(_) | IamError::DeleteConflict(_) | IamError::LimitExceeded(_) => 409,
            IamError::AccessDenied(_) => 403,
            IamError::Internal(_) => 500,
            _ => 400,
        }
    }

    pub(crate) fn internal(e: String) -> IamError {
        IamError::Internal(e)
    }

    /// AWS's answer to a value that breaks a modelled pattern.
    pub(crate) fn pattern(value: &str, member: &str, pattern: &str) -> IamError {
        IamError::Validation(format!(
            "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: Member must satisfy regular expression pattern: {pattern}"
        ))
    }
}

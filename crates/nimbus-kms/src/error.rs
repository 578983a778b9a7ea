//! KMS's errors: one variant per exception Nimbus answers, with AWS's texts (recorded in
//! LocalStack's AWS-validated snapshots where they exist), so the edge only encodes them.

/// A KMS error with AWS's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KmsError {
    /// `Key '<arn>' does not exist`, `Invalid keyId '<id>'`, `Alias <arn> is not found.`
    #[error("{0}")]
    NotFound(String),
    /// `<key arn> is disabled.`
    #[error("{0}")]
    Disabled(String),
    /// `<key arn> is pending deletion.` and other wrong-state refusals.
    #[error("{0}")]
    InvalidState(String),
    /// The ciphertext does not open (altered, another key, another encryption context).
    /// AWS says nothing more: the message is empty.
    #[error("")]
    InvalidCiphertext,
    /// Decrypt's `KeyId` names another key than the ciphertext's.
    #[error("The key ID in the request does not identify a CMK that can perform this operation.")]
    IncorrectKey,
    #[error("{0}")]
    AlreadyExists(String),
    /// A key policy that is not a policy document (the text says why, in IAM's words).
    #[error("{0}")]
    MalformedPolicyDocument(String),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    UnsupportedOperation(String),
    /// The request body is not JSON of the operation's shape.
    #[error("{0}")]
    Serialization(String),
    #[error("{0}")]
    UnknownOperation(String),
    /// Ours: the database failed.
    #[error("Internal error: {0}")]
    Internal(String),
}

impl KmsError {
    /// AWS's `__type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            KmsError::NotFound(_) => "NotFoundException",
            KmsError::Disabled(_) => "DisabledException",
            KmsError::InvalidState(_) => "KMSInvalidStateException",
            KmsError::InvalidCiphertext => "InvalidCiphertextException",
            KmsError::IncorrectKey => "IncorrectKeyException",
            KmsError::AlreadyExists(_) => "AlreadyExistsException",
            KmsError::MalformedPolicyDocument(_) => "MalformedPolicyDocumentException",
            KmsError::Validation(_) => "ValidationException",
            KmsError::UnsupportedOperation(_) => "UnsupportedOperationException",
            KmsError::Serialization(_) => "SerializationException",
            KmsError::UnknownOperation(_) => "UnknownOperationException",
            KmsError::Internal(_) => "KMSInternalException",
        }
    }

    /// `1 validation error detected: …` for a value outside the model's bounds.
    pub fn constraint(field: &str, constraint: &str) -> KmsError {
        KmsError::Validation(format!("1 validation error detected: Value at '{field}' failed to satisfy constraint: {constraint}"))
    }
}

impl nimbus_protocol::AwsError for KmsError {
    fn code(&self) -> &str {
        self.type_name()
    }
    fn status(&self) -> u16 {
        match self {
            KmsError::Internal(_) => 500,
            _ => 400,
        }
    }
}

//! The one error type that crosses crate boundaries towards the API edge: an AWS exception
//! name, an HTTP status and a message, so every layer can say precisely what went wrong and
//! the edge maps it to the wire in one place.

use std::fmt;

/// AWS Lambda exception names Nimbus answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    ResourceNotFound,
    ResourceConflict,
    InvalidParameterValue,
    Validation,
    PreconditionFailed,
    RequestTooLarge,
    RequestEntityTooLarge,
    InvalidRequestContent,
    UnsupportedMediaType,
    TooManyRequests,
    CodeStorageExceeded,
    InvalidZipFile,
    UnknownOperation,
    Service,
    /// CloudWatch Logs' name for a request that is not valid.
    InvalidParameter,
    AccessDenied,
    ProvisionedConcurrencyConfigNotFound,
    CodeSigningConfigNotFound,
    /// The function's KMS key cannot decrypt its environment variables (502, as AWS).
    KmsDisabled,
    KmsInvalidState,
    KmsNotFound,
    /// The function's VPC network could not be set up (502, as AWS answers EC2's failures).
    Ec2Unexpected,
    /// The function's runtime cannot run on this server (502, as AWS).
    InvalidRuntime,
}

impl ErrorCode {
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::ResourceNotFound => "ResourceNotFoundException",
            ErrorCode::ResourceConflict => "ResourceConflictException",
            ErrorCode::InvalidParameterValue => "InvalidParameterValueException",
            ErrorCode::Validation => "ValidationException",
            ErrorCode::PreconditionFailed => "PreconditionFailedException",
            ErrorCode::RequestTooLarge => "RequestTooLargeException",
            ErrorCode::RequestEntityTooLarge => "RequestEntityTooLargeException",
            ErrorCode::InvalidRequestContent => "InvalidRequestContentException",
            ErrorCode::UnsupportedMediaType => "UnsupportedMediaTypeException",
            ErrorCode::TooManyRequests => "TooManyRequestsException",
            ErrorCode::CodeStorageExceeded => "CodeStorageExceededException",
            ErrorCode::InvalidZipFile => "InvalidZipFileException",
            ErrorCode::UnknownOperation => "UnknownOperationException",
            ErrorCode::Service => "ServiceException",
            ErrorCode::InvalidParameter => "InvalidParameterException",
            ErrorCode::AccessDenied => "AccessDeniedException",
            ErrorCode::ProvisionedConcurrencyConfigNotFound => "ProvisionedConcurrencyConfigNotFoundException",
            ErrorCode::CodeSigningConfigNotFound => "CodeSigningConfigNotFoundException",
            ErrorCode::KmsDisabled => "KMSDisabledException",
            ErrorCode::KmsInvalidState => "KMSInvalidStateException",
            ErrorCode::KmsNotFound => "KMSNotFoundException",
            ErrorCode::Ec2Unexpected => "EC2UnexpectedException",
            ErrorCode::InvalidRuntime => "InvalidRuntimeException",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            ErrorCode::ResourceNotFound | ErrorCode::ProvisionedConcurrencyConfigNotFound | ErrorCode::CodeSigningConfigNotFound => 404,
            ErrorCode::ResourceConflict => 409,
            ErrorCode::PreconditionFailed => 412,
            ErrorCode::RequestTooLarge | ErrorCode::RequestEntityTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::AccessDenied => 403,
            ErrorCode::TooManyRequests => 429,
            ErrorCode::Service => 500,
            ErrorCode::KmsDisabled
            | ErrorCode::KmsInvalidState
            | ErrorCode::KmsNotFound
            | ErrorCode::Ec2Unexpected
            | ErrorCode::InvalidRuntime => 502,
            ErrorCode::UnknownOperation => 404,
            _ => 400,
        }
    }

    /// `User` for the caller's mistakes, `Service` for ours: AWS's `Type` field.
    pub fn fault(self) -> &'static str {
        if matches!(
            self,
            ErrorCode::Service
                | ErrorCode::KmsDisabled
                | ErrorCode::KmsInvalidState
                | ErrorCode::KmsNotFound
                | ErrorCode::Ec2Unexpected
                | ErrorCode::InvalidRuntime
        ) {
            "Service"
        } else {
            "User"
        }
    }
}

/// An AWS exception with its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// AWS's `Reason` field, e.g. on TooManyRequestsException.
    pub reason: Option<&'static str>,
    /// Whether the body carries `Type` (AWS leaves it out of a few answers, e.g. a code
    /// signing config that is not found).
    pub typed: bool,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into(), reason: None, typed: true }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceNotFound, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceConflict, message)
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParameterValue, message)
    }
    /// A throttle: 429 with AWS's `Reason`.
    pub fn throttled(reason: &'static str) -> Self {
        ApiError { code: ErrorCode::TooManyRequests, message: "Rate Exceeded.".into(), reason: Some(reason), typed: true }
    }
    pub fn service(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Service, message)
    }
    /// The same error without the body's `Type` member, as AWS sends some.
    pub fn untyped(self) -> Self {
        ApiError { typed: false, ..self }
    }

    /// AWS's message for a required member that is missing (its value is printed bare).
    pub fn missing(field: &str) -> Self {
        Self::new(
            ErrorCode::Validation,
            format!("1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"),
        )
    }

    /// AWS's modelled-constraint message: `1 validation error detected: Value '…' at
    /// 'memorySize' failed to satisfy constraint: …`.
    pub fn validation(value: &str, field: &str, constraint: &str) -> Self {
        Self::new(
            ErrorCode::Validation,
            format!("1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: {constraint}"),
        )
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.name(), self.message)
    }
}

impl std::error::Error for ApiError {}

impl nimbus_protocol::AwsError for ApiError {
    fn code(&self) -> &str {
        self.code.name()
    }
    fn status(&self) -> u16 {
        self.code.status()
    }
    fn message(&self) -> String {
        self.message.clone()
    }
    fn reason(&self) -> Option<&str> {
        self.reason
    }
    fn typed(&self) -> bool {
        self.typed
    }
}

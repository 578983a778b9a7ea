//! What the store refuses, by S3's error codes (the edge renders each as S3's XML error).

/// An object-store failure. Each variant but `Internal` is one of S3's error codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    #[error("The specified bucket does not exist")]
    NoSuchBucket,
    #[error("Your previous request to create the named bucket succeeded and you already own it.")]
    BucketAlreadyOwnedByYou,
    #[error("The bucket you tried to delete is not empty")]
    BucketNotEmpty,
    /// The latest version is missing or a delete marker (`delete_marker`: it is one, with
    /// its version id, for `x-amz-delete-marker` and `x-amz-version-id`).
    #[error("The specified key does not exist.")]
    NoSuchKey { delete_marker: Option<Option<String>> },
    #[error("The specified version does not exist.")]
    NoSuchVersion,
    /// A delete marker asked for by version id with GET or HEAD (405 on S3).
    #[error("The specified method is not allowed against this resource.")]
    MethodNotAllowed { version_id: Option<String> },
    #[error("The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.")]
    NoSuchUpload,
    #[error("One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.")]
    InvalidPart,
    #[error("The list of parts was not in ascending order. Parts must be ordered by part number.")]
    InvalidPartOrder,
    #[error("Your proposed upload is smaller than the minimum allowed size")]
    EntityTooSmall,
    #[error("Your proposed upload exceeds the maximum allowed size")]
    EntityTooLarge,
    #[error("At least one of the pre-conditions you specified did not hold")]
    PreconditionFailed,
    #[error("Your key is too long")]
    KeyTooLongError,
    /// S3's `InvalidArgument` with its message.
    #[error("{0}")]
    InvalidArgument(String),
    /// S3's `InvalidRequest` with its message.
    #[error("{0}")]
    InvalidRequest(String),
    /// The disk is full (S3 would not say so; the edge answers 507-like `InternalError`
    /// after removing what was written).
    #[error("no space left for the object")]
    StorageFull,
    /// A storage failure (the edge logs it and answers `InternalError`).
    #[error("object store: {0}")]
    Internal(String),
}

impl ObjectError {
    /// S3's error code.
    pub fn code(&self) -> &'static str {
        match self {
            ObjectError::NoSuchBucket => "NoSuchBucket",
            ObjectError::BucketAlreadyOwnedByYou => "BucketAlreadyOwnedByYou",
            ObjectError::BucketNotEmpty => "BucketNotEmpty",
            ObjectError::NoSuchKey { .. } => "NoSuchKey",
            ObjectError::NoSuchVersion => "NoSuchVersion",
            ObjectError::MethodNotAllowed { .. } => "MethodNotAllowed",
            ObjectError::NoSuchUpload => "NoSuchUpload",
            ObjectError::InvalidPart => "InvalidPart",
            ObjectError::InvalidPartOrder => "InvalidPartOrder",
            ObjectError::EntityTooSmall => "EntityTooSmall",
            ObjectError::EntityTooLarge => "EntityTooLarge",
            ObjectError::PreconditionFailed => "PreconditionFailed",
            ObjectError::KeyTooLongError => "KeyTooLongError",
            ObjectError::InvalidArgument(_) => "InvalidArgument",
            ObjectError::InvalidRequest(_) => "InvalidRequest",
            ObjectError::StorageFull | ObjectError::Internal(_) => "InternalError",
        }
    }

    /// The HTTP status S3 answers it with.
    pub fn status(&self) -> u16 {
        match self {
            ObjectError::NoSuchBucket | ObjectError::NoSuchKey { .. } | ObjectError::NoSuchVersion | ObjectError::NoSuchUpload => 404,
            ObjectError::BucketAlreadyOwnedByYou | ObjectError::BucketNotEmpty => 409,
            ObjectError::MethodNotAllowed { .. } => 405,
            ObjectError::PreconditionFailed => 412,
            ObjectError::StorageFull | ObjectError::Internal(_) => 500,
            _ => 400,
        }
    }

    pub(crate) fn internal(e: impl std::fmt::Display) -> ObjectError {
        ObjectError::Internal(e.to_string())
    }
}

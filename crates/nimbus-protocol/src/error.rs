//! The one error trait every service's errors implement, and what a decoder reports when a
//! request does not fit its operation's input shape (each service turns that into its own
//! AWS error: SQS says `MissingParameter`, SNS `InvalidParameter`, Lambda
//! `InvalidParameterValueException`).

/// An error as AWS answers it. Encoded per protocol in one place ([`crate::encode::error`]).
pub trait AwsError: std::fmt::Display {
    /// The error's name: the JSON protocols' `__type`, rest-json's `x-amzn-ErrorType`.
    fn code(&self) -> &str;
    /// The query protocol's `<Code>` (and the first half of `x-amzn-query-error`).
    fn query_code(&self) -> &str {
        self.code()
    }
    /// The HTTP status AWS answers with.
    fn status(&self) -> u16;
    /// `Sender` when the caller is at fault, `Receiver` when the service is.
    fn sender_fault(&self) -> bool {
        self.status() < 500
    }
    /// The message on the wire (by default the error's `Display`).
    fn message(&self) -> String {
        self.to_string()
    }
    /// rest-json's `Reason` member (Lambda's throttles say which limit was hit).
    fn reason(&self) -> Option<&str> {
        None
    }
    /// Members beside the code and message that the XML protocols write into `<Error>`
    /// (S3's `<BucketName>`, `<Key>`).
    fn fields(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
    /// Whether the JSON body names the message `Message` rather than `message` (KMS's
    /// AccessDeniedException does; for rest-json the model's error shape also decides).
    fn capital_message(&self) -> bool {
        false
    }
    /// Whether rest-json's body names the fault in `Type` (for services that do, AWS still
    /// leaves it out of a few answers).
    fn typed(&self) -> bool {
        true
    }
}

/// Why a request could not be decoded into its operation's input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The body is not a document of the protocol's format.
    #[error("{0}")]
    Malformed(String),
    /// A required member is absent. `member` is its path (`Entries.1.Id`).
    #[error("missing required member {member}")]
    Missing { member: String },
    /// A URI label, query parameter or header (`member` is its wire name) that does not
    /// read as its shape's type.
    #[error("{member}: expected {expected}, got {value}")]
    Binding { member: String, expected: &'static str, value: String },
    /// A member's value does not have its shape's type.
    #[error("{member}: expected {expected}, got {value}")]
    Type { member: String, expected: &'static str, value: String },
    /// The model's shape and the service's input type disagree (a bug on our side, or a
    /// value the model allows and the type cannot hold).
    #[error("{0}")]
    Shape(String),
}

//! Why IAM refuses a policy document: each variant's `Display` is the message of IAM's
//! `MalformedPolicyDocument` error, word for word where a real answer was recorded.
//!
//! Sources: "This policy contains invalid Json" is in LocalStack's AWS-validated snapshot
//! (`tests/aws/services/iam/test_iam.snapshot.json`, CreateRole, recorded 2025-03-06);
//! "Has prohibited field Resource", "Policy document should not specify a principal.",
//! "Invalid principal in policy: …", "Missing required field Principal" (S3's
//! `MalformedPolicy`) and "Policy statement must contain resources." are quoted from real
//! answers in public bug reports; the rest are the messages moto's IAM validator reproduces
//! (`moto/iam/policy_validation.py`, with its table of documents in
//! `tests/test_iam/test_iam_policies.py`).

/// A policy document IAM would refuse, worded as IAM words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A trust policy that is not JSON (CreateRole's answer, recorded).
    #[error("This policy contains invalid Json")]
    InvalidJson,
    /// Not JSON, an unknown element, an element of the wrong type, an unknown condition
    /// operator, an empty statement list, or an unknown `Version`.
    #[error("Syntax errors in policy.")]
    Syntax,
    /// An identity policy without `"Version": "2012-10-17"`.
    #[error("Policy document must be version 2012-10-17 or greater.")]
    Version,
    /// `Effect` in the wrong case, a date IAM cannot read, a resource with too few segments.
    #[error("The policy failed legacy parsing")]
    LegacyParsing,
    /// Two statements with the same `Sid`.
    #[error("Statement IDs (SID) in a single policy must be unique.")]
    DuplicateSid,
    /// A statement without `Action` or `NotAction` (or with an empty list).
    #[error("Policy statement must contain actions.")]
    MissingActions,
    /// A statement without `Resource` or `NotResource` where one is required.
    #[error("Policy statement must contain resources.")]
    MissingResources,
    /// A resource that is not an ARN or `*` (the message names it).
    #[error("{0}")]
    Resource(String),
    /// An action without a `service:` prefix.
    #[error("Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.")]
    ActionVendor,
    /// An action with more than one colon.
    #[error("Actions/Condition can contain only one colon.")]
    ActionColons,
    /// An action whose service prefix has characters a service name cannot have.
    #[error("Vendor {0} is not valid")]
    Vendor(String),
    /// An identity policy with `Principal` or `NotPrincipal`.
    #[error("Policy document should not specify a principal.")]
    PrincipalNotAllowed,
    /// A trust policy with `Resource` or `NotResource`.
    #[error("Has prohibited field Resource")]
    ResourceNotAllowed,
    /// A trust or resource policy statement without `Principal` or `NotPrincipal`.
    #[error("Missing required field Principal")]
    MissingPrincipal,
    /// A principal IAM cannot resolve, as `"AWS":"value"`.
    #[error("Invalid principal in policy: {0}")]
    InvalidPrincipal(String),
}

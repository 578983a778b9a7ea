//! EC2's errors for the network objects, one variant per code Nimbus answers, with EC2's
//! wording; every one is a 400 except Nimbus's own failures.

/// An EC2 error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    /// `InvalidVpcID.NotFound`.
    #[error("The vpc ID '{0}' does not exist")]
    VpcNotFound(String),
    /// `InvalidSubnetID.NotFound`.
    #[error("The subnet ID '{0}' does not exist")]
    SubnetNotFound(String),
    /// `InvalidGroup.NotFound` (by id).
    #[error("The security group '{0}' does not exist")]
    GroupNotFound(String),
    /// `InvalidGroup.NotFound` (by name: names address the default VPC only, and Nimbus
    /// has none).
    #[error("The security group '{0}' does not exist in default VPC 'none'")]
    GroupNameNotFound(String),
    /// `InvalidGroup.Duplicate`.
    #[error("The security group '{name}' already exists for VPC '{vpc}'")]
    GroupDuplicate { name: String, vpc: String },
    /// `InvalidSecurityGroupRuleId.NotFound`.
    #[error("The security group rule ID '{0}' does not exist")]
    RuleNotFound(String),
    /// `InvalidPermission.Duplicate`.
    #[error("the specified rule \"{0}\" already exists")]
    PermissionDuplicate(String),
    /// `InvalidPermission.NotFound`.
    #[error("The specified rule does not exist in this security group.")]
    PermissionNotFound,
    /// `InvalidVpc.Range`.
    #[error("The CIDR '{0}' is invalid.")]
    VpcRange(String),
    /// `InvalidSubnet.Range`.
    #[error("The CIDR '{0}' is invalid.")]
    SubnetRange(String),
    /// `InvalidSubnet.Conflict`.
    #[error("The CIDR '{0}' conflicts with another subnet")]
    SubnetConflict(String),
    /// `DependencyViolation`.
    #[error("{0}")]
    DependencyViolation(String),
    /// `CannotDelete`: a VPC's default security group.
    #[error("the specified group: \"{id}\" name: \"default\" cannot be deleted by a user")]
    CannotDelete { id: String },
    /// `VPCIdNotSpecified`.
    #[error("No default VPC for this user")]
    NoDefaultVpc,
    /// `InvalidParameterValue`.
    #[error("{0}")]
    InvalidParameterValue(String),
    /// `MissingParameter`.
    #[error("The request must contain the parameter {0}")]
    MissingParameter(String),
    /// `InvalidParameterCombination`.
    #[error("{0}")]
    InvalidParameterCombination(String),
    /// `RulesPerSecurityGroupLimitExceeded`.
    #[error("The maximum number of rules per security group has been reached.")]
    RulesLimit,
    /// `DryRunOperation` (412): the call would have succeeded.
    #[error("Request would have succeeded, but DryRun flag is set.")]
    DryRun,
    /// `InvalidAction`: an operation Nimbus does not serve.
    #[error("The action {0} is not valid for this web service.")]
    InvalidAction(String),
    /// `InternalError` (500): ours.
    #[error("{0}")]
    Internal(String),
}

impl NetworkError {
    /// EC2's error code.
    pub fn code(&self) -> &'static str {
        match self {
            NetworkError::VpcNotFound(_) => "InvalidVpcID.NotFound",
            NetworkError::SubnetNotFound(_) => "InvalidSubnetID.NotFound",
            NetworkError::GroupNotFound(_) | NetworkError::GroupNameNotFound(_) => "InvalidGroup.NotFound",
            NetworkError::GroupDuplicate { .. } => "InvalidGroup.Duplicate",
            NetworkError::RuleNotFound(_) => "InvalidSecurityGroupRuleId.NotFound",
            NetworkError::PermissionDuplicate(_) => "InvalidPermission.Duplicate",
            NetworkError::PermissionNotFound => "InvalidPermission.NotFound",
            NetworkError::VpcRange(_) => "InvalidVpc.Range",
            NetworkError::SubnetRange(_) => "InvalidSubnet.Range",
            NetworkError::SubnetConflict(_) => "InvalidSubnet.Conflict",
            NetworkError::DependencyViolation(_) => "DependencyViolation",
            NetworkError::CannotDelete { .. } => "CannotDelete",
            NetworkError::NoDefaultVpc => "VPCIdNotSpecified",
            NetworkError::InvalidParameterValue(_) => "InvalidParameterValue",
            NetworkError::MissingParameter(_) => "MissingParameter",
            NetworkError::InvalidParameterCombination(_) => "InvalidParameterCombination",
            NetworkError::RulesLimit => "RulesPerSecurityGroupLimitExceeded",
            NetworkError::DryRun => "DryRunOperation",
            NetworkError::InvalidAction(_) => "InvalidAction",
            NetworkError::Internal(_) => "InternalError",
        }
    }

    pub(crate) fn internal(e: String) -> NetworkError {
        NetworkError::Internal(e)
    }
}

impl nimbus_protocol::AwsError for NetworkError {
    fn code(&self) -> &str {
        NetworkError::code(self)
    }
    fn status(&self) -> u16 {
        match self {
            NetworkError::Internal(_) => 500,
            NetworkError::DryRun => 412,
            _ => 400,
        }
    }
}

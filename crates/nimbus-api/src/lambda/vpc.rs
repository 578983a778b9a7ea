//! A function's `VpcConfig` on CreateFunction and UpdateFunctionConfiguration, checked as
//! Lambda checks it: the model's limits (16 subnets, 5 security groups, their id patterns),
//! both lists given or neither, every subnet and group known to EC2 (Nimbus's network
//! objects) and all in one VPC, and, when requests are signed, an execution role allowed to
//! manage network interfaces (what `AWSLambdaVPCAccessExecutionRole` grants). Lambda's
//! messages quote EC2's errors for what it looked up.

use nimbus_control::ConfigChange;
use nimbus_model::{ApiError, VpcConfig};
use serde::Deserialize;

use crate::server::AppState;

/// `VpcConfig` as a request gives it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VpcConfigInput {
    subnet_ids: Option<Vec<String>>,
    security_group_ids: Option<Vec<String>>,
    ipv6_allowed_for_dual_stack: Option<bool>,
}

/// Lambda's model limits.
const MAX_SUBNETS: usize = 16;
const MAX_GROUPS: usize = 5;

/// What the execution role of a function in a VPC must be allowed to call.
const INTERFACE_CALLS: [&str; 3] = ["CreateNetworkInterface", "DescribeNetworkInterfaces", "DeleteNetworkInterface"];

fn id_list(ids: &[String]) -> String {
    format!("[{}]", ids.join(", "))
}

/// The model's constraints on one list, as Lambda's ValidationException words them.
fn check_list(ids: &[String], member: &str, max: usize, prefix: &str, pattern: &str) -> Result<(), ApiError> {
    if ids.len() > max {
        return Err(ApiError::validation(&id_list(ids), member, &format!("Member must have length less than or equal to {max}")));
    }
    let fits = |id: &str| {
        id.len() <= 1024
            && id.strip_prefix(prefix).is_some_and(|rest| {
                rest.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase() || (prefix == "sg-" && b.is_ascii_uppercase()))
            })
    };
    if !ids.iter().all(|id| fits(id)) {
        return Err(ApiError::validation(
            &id_list(ids),
            member,
            &format!("Member must satisfy constraint: [Member must have length less than or equal to 1024, Member must have length greater than or equal to 0, Member must satisfy regular expression pattern: {pattern}]"),
        ));
    }
    Ok(())
}

/// The stored VpcConfig for `input` (None: no VpcConfig given), checked against the network
/// objects and the execution `role`.
pub(super) async fn resolve(state: &AppState, input: Option<VpcConfigInput>, role: &str) -> Result<Option<VpcConfig>, ApiError> {
    let Some(input) = input else { return Ok(None) };
    let subnets = input.subnet_ids.unwrap_or_default();
    let groups = input.security_group_ids.unwrap_or_default();
    check_list(&subnets, "vpcConfig.subnetIds", MAX_SUBNETS, "subnet-", "^subnet-[0-9a-z]*$")?;
    check_list(&groups, "vpcConfig.securityGroupIds", MAX_GROUPS, "sg-", "^sg-[0-9a-zA-Z]*$")?;
    if subnets.is_empty() != groups.is_empty() {
        return Err(ApiError::invalid("SubnetIds and SecurityIds must coexist or be both empty list."));
    }
    let ipv6 = input.ipv6_allowed_for_dual_stack.unwrap_or(false);
    if subnets.is_empty() {
        return Ok(Some(VpcConfig { ipv6_allowed_for_dual_stack: ipv6, ..VpcConfig::default() }));
    }
    let network = &state.network;
    let mut vpc_id: Option<String> = None;
    for id in &subnets {
        let subnet = network.subnet(id).ok_or_else(|| {
            ApiError::invalid(format!(
                "Error occurred while DescribeSubnets. EC2 Error Code: InvalidSubnetID.NotFound. EC2 Error Message: The subnet ID '{id}' does not exist"
            ))
        })?;
        match &vpc_id {
            Some(v) if *v != subnet.vpc => return Err(ApiError::invalid("Subnets are required to be in the same VPC.")),
            Some(_) => {}
            None => vpc_id = Some(subnet.vpc),
        }
    }
    let vpc_id = vpc_id.expect("at least one subnet");
    for id in &groups {
        let group = network.group(id).ok_or_else(|| {
            ApiError::invalid(format!(
                "Error occurred while DescribeSecurityGroups. EC2 Error Code: InvalidGroup.NotFound. EC2 Error Message: The security group '{id}' does not exist"
            ))
        })?;
        if group.vpc != vpc_id {
            return Err(ApiError::invalid("Security Groups are required to be in the same VPC."));
        }
    }
    if ipv6 {
        return Err(ApiError::invalid("Nimbus's VPC subnets are IPv4 only: Ipv6AllowedForDualStack cannot be true."));
    }
    check_role(state, role).await?;
    Ok(Some(VpcConfig { subnet_ids: subnets, security_group_ids: groups, vpc_id, ipv6_allowed_for_dual_stack: false }))
}

/// UpdateFunctionConfiguration: a new VpcConfig is checked into `change`; a new role of a
/// function that stays in a VPC is checked too.
pub(super) async fn update(state: &AppState, name: &str, input: Option<VpcConfigInput>, change: &mut ConfigChange) -> Result<(), ApiError> {
    if input.is_none() && change.role.is_none() {
        return Ok(());
    }
    let current = state.control.get(name).await?;
    let role = change.role.clone().unwrap_or_else(|| current.role.clone());
    match resolve(state, input, &role).await? {
        Some(vpc) => change.vpc = Some(vpc),
        None if current.vpc.as_ref().is_some_and(VpcConfig::attached) => check_role(state, &role).await?,
        None => {}
    }
    Ok(())
}

/// With signed requests, the role must be allowed to manage network interfaces, as AWS
/// checks when it attaches a function to a VPC.
async fn check_role(state: &AppState, role: &str) -> Result<(), ApiError> {
    if state.keys.is_none() {
        return Ok(());
    }
    for call in INTERFACE_CALLS {
        if !crate::authz::role_may(state, role, "nimbus-vpc-check", &format!("ec2:{call}"), "*").await {
            return Err(ApiError::invalid(format!("The provided execution role does not have permissions to call {call} on EC2")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_limits_and_patterns() {
        let ids = |n: usize, p: &str| (0..n).map(|i| format!("{p}{i}")).collect::<Vec<_>>();
        check_list(&ids(16, "subnet-"), "vpcConfig.subnetIds", MAX_SUBNETS, "subnet-", "^subnet-[0-9a-z]*$").unwrap();
        let e = check_list(&ids(17, "subnet-"), "vpcConfig.subnetIds", MAX_SUBNETS, "subnet-", "^subnet-[0-9a-z]*$").unwrap_err();
        assert!(
            e.message.ends_with("at 'vpcConfig.subnetIds' failed to satisfy constraint: Member must have length less than or equal to 16"),
            "{e}"
        );
        let e = check_list(&ids(6, "sg-"), "vpcConfig.securityGroupIds", MAX_GROUPS, "sg-", "^sg-[0-9a-zA-Z]*$").unwrap_err();
        assert!(e.message.contains("Member must have length less than or equal to 5"), "{e}");
        let e = check_list(&["sub-1".into()], "vpcConfig.subnetIds", MAX_SUBNETS, "subnet-", "^subnet-[0-9a-z]*$").unwrap_err();
        assert_eq!(
            e.message,
            "1 validation error detected: Value '[sub-1]' at 'vpcConfig.subnetIds' failed to satisfy constraint: Member must satisfy constraint: [Member must have length less than or equal to 1024, Member must have length greater than or equal to 0, Member must satisfy regular expression pattern: ^subnet-[0-9a-z]*$]"
        );
    }
}

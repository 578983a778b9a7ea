//! EC2 on the wire, the part Nimbus serves (VPCs, subnets, security groups): recognises
//! EC2's query requests (form posts to `/` with `Version=2016-11-15`), decodes them through
//! the ec2 protocol into typed [`Ec2Call`]s for `nimbus-network`, and answers with EC2's XML
//! documents and `<Response><Errors>` errors.

use bytes::Bytes;
use http::Response;
use nimbus_network::{Direction, Filter, NetworkError, NetworkService, PermissionInput, TagSpecification};
use nimbus_protocol::{calls, decode, encode, DecodeError, Protocol, EC2};
use serde::{Deserialize, Serialize};

use crate::action::RawRequest;
use crate::authz::{Scope, Target};
use crate::response::Body;

/// The API version every EC2 request names.
pub const VERSION: &str = "2016-11-15";

calls! {
    iam "ec2";
    /// Every EC2 operation Nimbus serves, with its typed input (as EC2's model names it).
    pub enum Ec2Call {
        CreateVpc(CreateVpcInput),
        DescribeVpcs(DescribeVpcsInput),
        DeleteVpc(DeleteVpcInput),
        CreateSubnet(CreateSubnetInput),
        DescribeSubnets(DescribeSubnetsInput),
        DeleteSubnet(DeleteSubnetInput),
        CreateSecurityGroup(CreateSecurityGroupInput),
        DescribeSecurityGroups(DescribeSecurityGroupsInput),
        DeleteSecurityGroup(DeleteSecurityGroupInput),
        AuthorizeSecurityGroupEgress(RuleChangeInput),
        AuthorizeSecurityGroupIngress(RuleChangeInput),
        RevokeSecurityGroupEgress(RuleChangeInput),
        RevokeSecurityGroupIngress(RuleChangeInput),
    }
}

/// One EC2 request: the operation and its decoded call (or the error EC2 would answer).
#[derive(Debug)]
pub struct Ec2Request {
    pub operation: &'static str,
    pub call: Result<Ec2Call, NetworkError>,
}

impl Ec2Request {
    /// The IAM action name (`ec2:CreateVpc`).
    pub fn name(&self) -> &'static str {
        Ec2Call::iam_action(self.operation).unwrap_or("ec2:Unknown")
    }

    /// What IAM authorizes this call as, as the Service Authorization Reference lists EC2's
    /// actions: Describe* on no resource, the others on the VPC, subnet or group they name
    /// (a Create on what it is made in). None when the call did not decode.
    pub(crate) fn target(&self, scope: &Scope<'_>) -> Option<Target> {
        use Ec2Call::*;
        let arn = |kind: &str, id: &str| format!("arn:aws:ec2:{}:{}:{kind}/{id}", scope.region, scope.account);
        let action = self.name();
        Some(match self.call.as_ref().ok()? {
            CreateVpc(_) => Target::on(action, arn("vpc", "*")),
            DescribeVpcs(_) | DescribeSubnets(_) | DescribeSecurityGroups(_) => Target::any(action),
            DeleteVpc(i) => Target::on(action, arn("vpc", &i.vpc_id)),
            CreateSubnet(i) => Target::on(action, arn("vpc", &i.vpc_id)),
            DeleteSubnet(i) => Target::on(action, arn("subnet", &i.subnet_id)),
            CreateSecurityGroup(i) => Target::on(action, arn("vpc", i.vpc_id.as_deref().unwrap_or("*"))),
            DeleteSecurityGroup(i) => Target::on(action, arn("security-group", i.group_id.as_deref().unwrap_or("*"))),
            AuthorizeSecurityGroupEgress(i)
            | AuthorizeSecurityGroupIngress(i)
            | RevokeSecurityGroupEgress(i)
            | RevokeSecurityGroupIngress(i) => Target::on(action, arn("security-group", i.group_id.as_deref().unwrap_or("*"))),
        })
    }
}

// ---- typed inputs ---------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateVpcInput {
    cidr_block: Option<String>,
    #[serde(default)]
    tag_specifications: Vec<TagSpecification>,
    dry_run: Option<bool>,
    ipv6_cidr_block: Option<String>,
    ipv4_ipam_pool_id: Option<String>,
    amazon_provided_ipv6_cidr_block: Option<bool>,
    instance_tenancy: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeVpcsInput {
    #[serde(default)]
    filters: Vec<Filter>,
    #[serde(default)]
    vpc_ids: Vec<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
    dry_run: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteVpcInput {
    vpc_id: String,
    dry_run: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateSubnetInput {
    vpc_id: String,
    cidr_block: Option<String>,
    availability_zone: Option<String>,
    #[serde(default)]
    tag_specifications: Vec<TagSpecification>,
    ipv6_cidr_block: Option<String>,
    dry_run: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeSubnetsInput {
    #[serde(default)]
    filters: Vec<Filter>,
    #[serde(default)]
    subnet_ids: Vec<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
    dry_run: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteSubnetInput {
    subnet_id: String,
    dry_run: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateSecurityGroupInput {
    description: String,
    group_name: String,
    vpc_id: Option<String>,
    #[serde(default)]
    tag_specifications: Vec<TagSpecification>,
    dry_run: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeSecurityGroupsInput {
    #[serde(default)]
    group_ids: Vec<String>,
    #[serde(default)]
    group_names: Vec<String>,
    #[serde(default)]
    filters: Vec<Filter>,
    next_token: Option<String>,
    max_results: Option<i64>,
    dry_run: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteSecurityGroupInput {
    group_id: Option<String>,
    group_name: Option<String>,
    dry_run: Option<bool>,
}

/// Authorize/Revoke Ingress/Egress: the group, and its rules as `IpPermissions`, as the
/// flat parameters of EC2's first API (`IpProtocol`, `FromPort`, `ToPort`, `CidrIp`), or (to
/// revoke) by rule id.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RuleChangeInput {
    group_id: Option<String>,
    group_name: Option<String>,
    #[serde(default)]
    ip_permissions: Vec<PermissionInput>,
    ip_protocol: Option<String>,
    from_port: Option<i64>,
    to_port: Option<i64>,
    cidr_ip: Option<String>,
    source_security_group_name: Option<String>,
    #[serde(default)]
    security_group_rule_ids: Vec<String>,
    dry_run: Option<bool>,
}

impl RuleChangeInput {
    /// The group, and every rule the request names (the flat parameters as one more
    /// permission).
    fn into_parts(self) -> Result<(String, Vec<PermissionInput>, Vec<String>), NetworkError> {
        let group = match (self.group_id, self.group_name) {
            (Some(id), _) => id,
            (None, Some(name)) => return Err(NetworkError::GroupNameNotFound(name)),
            (None, None) => return Err(NetworkError::MissingParameter("groupId".into())),
        };
        if let Some(name) = self.source_security_group_name {
            return Err(NetworkError::GroupNameNotFound(name));
        }
        let mut perms = self.ip_permissions;
        if self.ip_protocol.is_some() || self.cidr_ip.is_some() {
            perms.push(PermissionInput {
                ip_protocol: Some(self.ip_protocol.unwrap_or_else(|| "-1".into())),
                from_port: self.from_port,
                to_port: self.to_port,
                ip_ranges: vec![nimbus_network::IpRange {
                    cidr_ip: Some(self.cidr_ip.unwrap_or_else(|| "0.0.0.0/0".into())),
                    description: None,
                }],
                ..Default::default()
            });
        }
        if perms.is_empty() && self.security_group_rule_ids.is_empty() {
            return Err(NetworkError::MissingParameter("ipPermissions".into()));
        }
        Ok((group, perms, self.security_group_rule_ids))
    }
}

// ---- typed outputs --------------------------------------------------------------------

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct VpcOutput {
    vpc: nimbus_network::VpcInfo,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct VpcsOutput {
    vpcs: Vec<nimbus_network::VpcInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SubnetOutput {
    subnet: nimbus_network::SubnetInfo,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SubnetsOutput {
    subnets: Vec<nimbus_network::SubnetInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GroupsOutput {
    security_groups: Vec<nimbus_network::SecurityGroupInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteGroupOutput {
    r#return: bool,
    group_id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct AuthorizeOutput {
    r#return: bool,
    security_group_rules: Vec<nimbus_network::SecurityGroupRule>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RevokeOutput {
    r#return: bool,
    revoked_security_group_rules: Vec<nimbus_network::RevokedRule>,
}

// ---- recognising and decoding -------------------------------------------------------

/// `ipPermissions.1.fromPort`: members as EC2's messages name them.
fn lower_camel(path: &str) -> String {
    path.split('.')
        .map(|seg| {
            let mut c = seg.chars();
            c.next().map(|f| f.to_ascii_lowercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// EC2's answer to a request that does not fit the operation's input shape.
fn decode_error(e: DecodeError) -> NetworkError {
    match e {
        DecodeError::Missing { member } => NetworkError::MissingParameter(lower_camel(&member)),
        DecodeError::Type { member, value, expected } | DecodeError::Binding { member, value, expected } => {
            NetworkError::InvalidParameterValue(format!(
                "Value ({value}) for parameter {} is invalid. Expected: '{expected}'.",
                lower_camel(&member)
            ))
        }
        DecodeError::Malformed(m) | DecodeError::Shape(m) => NetworkError::InvalidParameterValue(m),
    }
}

/// Returns the EC2 request `req` carries, or `None` when it is not one.
pub fn recognize(req: &RawRequest<'_>) -> Option<Ec2Request> {
    let (params, action) = crate::action::query_request(req, VERSION)?;
    let Some(operation) = Ec2Call::OPERATIONS.iter().copied().find(|op| *op == action) else {
        return Some(Ec2Request { operation: "Unknown", call: Err(NetworkError::InvalidAction(action)) });
    };
    let call = decode::ec2(EC2.model(), operation, &params)
        .and_then(|input| Ec2Call::decode(operation, input).expect("every listed operation is served"))
        .map_err(decode_error);
    Some(Ec2Request { operation, call })
}

// ---- running ----------------------------------------------------------------------------

/// One page of `items` (`MaxResults` 5 to 1,000; the token is the offset of the next page).
fn page<T>(items: Vec<T>, max: Option<i64>, token: Option<String>) -> Result<(Vec<T>, Option<String>), NetworkError> {
    let start = match token {
        Some(t) => t.parse::<usize>().map_err(|_| NetworkError::InvalidParameterValue(format!("Invalid value '{t}' for NextToken")))?,
        None => 0,
    };
    let Some(max) = max else { return Ok((items.into_iter().skip(start).collect(), None)) };
    if !(5..=1000).contains(&max) {
        return Err(NetworkError::InvalidParameterValue(format!(
            "Value ( {max} ) for parameter maxResults is invalid. Parameter must be between 5 and 1000."
        )));
    }
    let max = max as usize;
    let total = items.len();
    let out: Vec<T> = items.into_iter().skip(start).take(max).collect();
    let next = (start + max < total).then(|| (start + max).to_string());
    Ok((out, next))
}

fn dry(flag: Option<bool>) -> Result<(), NetworkError> {
    if flag == Some(true) {
        return Err(NetworkError::DryRun);
    }
    Ok(())
}

async fn run(svc: &std::sync::Arc<NetworkService>, call: Ec2Call, op: &str, rid: &str) -> Result<Response<Bytes>, NetworkError> {
    use Ec2Call::*;
    Ok(match call {
        CreateVpc(i) => {
            dry(i.dry_run)?;
            if i.ipv6_cidr_block.is_some() || i.ipv4_ipam_pool_id.is_some() || i.amazon_provided_ipv6_cidr_block == Some(true) {
                return Err(NetworkError::InvalidParameterValue("Nimbus's VPCs have one IPv4 CIDR block (no IPv6, no IPAM pools)".into()));
            }
            if i.instance_tenancy.as_deref().is_some_and(|t| t != "default") {
                return Err(NetworkError::InvalidParameterValue("Nimbus's VPCs have default tenancy only".into()));
            }
            out(op, rid, &VpcOutput { vpc: svc.create_vpc(i.cidr_block, i.tag_specifications).await? })
        }
        DescribeVpcs(i) => {
            dry(i.dry_run)?;
            let (vpcs, next_token) = page(svc.describe_vpcs(&i.vpc_ids, &i.filters)?, i.max_results, i.next_token)?;
            out(op, rid, &VpcsOutput { vpcs, next_token })
        }
        DeleteVpc(i) => {
            dry(i.dry_run)?;
            svc.delete_vpc(i.vpc_id).await?;
            encode::empty(&EC2, Protocol::Ec2, op, rid)
        }
        CreateSubnet(i) => {
            dry(i.dry_run)?;
            if i.ipv6_cidr_block.is_some() {
                return Err(NetworkError::InvalidParameterValue("Nimbus's subnets are IPv4 only".into()));
            }
            out(
                op,
                rid,
                &SubnetOutput { subnet: svc.create_subnet(i.vpc_id, i.cidr_block, i.availability_zone, i.tag_specifications).await? },
            )
        }
        DescribeSubnets(i) => {
            dry(i.dry_run)?;
            let (subnets, next_token) = page(svc.describe_subnets(&i.subnet_ids, &i.filters)?, i.max_results, i.next_token)?;
            out(op, rid, &SubnetsOutput { subnets, next_token })
        }
        DeleteSubnet(i) => {
            dry(i.dry_run)?;
            svc.delete_subnet(i.subnet_id).await?;
            encode::empty(&EC2, Protocol::Ec2, op, rid)
        }
        CreateSecurityGroup(i) => {
            dry(i.dry_run)?;
            out(op, rid, &svc.create_security_group(i.group_name, i.description, i.vpc_id, i.tag_specifications).await?)
        }
        DescribeSecurityGroups(i) => {
            dry(i.dry_run)?;
            let groups = svc.describe_security_groups(&i.group_ids, &i.group_names, &i.filters)?;
            let (security_groups, next_token) = page(groups, i.max_results, i.next_token)?;
            out(op, rid, &GroupsOutput { security_groups, next_token })
        }
        DeleteSecurityGroup(i) => {
            dry(i.dry_run)?;
            out(op, rid, &DeleteGroupOutput { r#return: true, group_id: svc.delete_security_group(i.group_id, i.group_name).await? })
        }
        AuthorizeSecurityGroupEgress(i) | AuthorizeSecurityGroupIngress(i) => {
            dry(i.dry_run)?;
            let direction = if op == "AuthorizeSecurityGroupEgress" { Direction::Egress } else { Direction::Ingress };
            let (group, perms, _) = i.into_parts()?;
            out(op, rid, &AuthorizeOutput { r#return: true, security_group_rules: svc.authorize(group, direction, perms).await? })
        }
        RevokeSecurityGroupEgress(i) | RevokeSecurityGroupIngress(i) => {
            dry(i.dry_run)?;
            let direction = if op == "RevokeSecurityGroupEgress" { Direction::Egress } else { Direction::Ingress };
            let (group, perms, ids) = i.into_parts()?;
            out(op, rid, &RevokeOutput { r#return: true, revoked_security_group_rules: svc.revoke(group, direction, perms, ids).await? })
        }
    })
}

/// A typed output, encoded by its operation's output shape.
fn out<T: Serialize>(operation: &str, request_id: &str, output: &T) -> Response<Bytes> {
    encode::output(&EC2, Protocol::Ec2, operation, output, request_id)
}

/// Runs an EC2 request and answers with EC2's XML.
pub async fn execute(svc: &std::sync::Arc<NetworkService>, req: Ec2Request) -> Response<Body> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let result = match req.call {
        Ok(call) => run(svc, call, req.operation, &request_id).await,
        Err(e) => Err(e),
    };
    result
        .unwrap_or_else(|e| {
            if let NetworkError::Internal(msg) = &e {
                tracing::error!(operation = req.operation, "ec2: {msg}");
            }
            encode::error(&EC2, Protocol::Ec2, &e, &request_id)
        })
        .map(Body::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue, Method};

    fn post(body: &str) -> Option<Ec2Request> {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"));
        let req = RawRequest::for_test(&Method::POST, "/", None, &headers, Bytes::from(body.to_string()));
        recognize(&req)
    }

    #[test]
    fn query_requests_decode_to_typed_calls() {
        let r = post("Action=CreateVpc&Version=2016-11-15&CidrBlock=10.0.0.0%2F16&TagSpecification.1.ResourceType=vpc&TagSpecification.1.Tag.1.Key=Name&TagSpecification.1.Tag.1.Value=a").unwrap();
        assert_eq!(r.name(), "ec2:CreateVpc");
        let Ok(Ec2Call::CreateVpc(c)) = r.call else { panic!("{:?}", r.call) };
        assert_eq!(c.cidr_block.as_deref(), Some("10.0.0.0/16"));
        assert_eq!(c.tag_specifications[0].tags[0].value, "a");

        let r = post("Action=CreateSecurityGroup&Version=2016-11-15&GroupName=web&GroupDescription=d&VpcId=vpc-1").unwrap();
        let Ok(Ec2Call::CreateSecurityGroup(c)) = r.call else { panic!("{:?}", r.call) };
        assert_eq!((c.group_name.as_str(), c.description.as_str()), ("web", "d"));

        let r = post("Action=AuthorizeSecurityGroupEgress&Version=2016-11-15&GroupId=sg-1&IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=80&IpPermissions.1.ToPort=80&IpPermissions.1.IpRanges.1.CidrIp=0.0.0.0%2F0&IpPermissions.1.Groups.1.GroupId=sg-2").unwrap();
        let Ok(Ec2Call::AuthorizeSecurityGroupEgress(c)) = r.call else { panic!("{:?}", r.call) };
        let (group, perms, _) = c.into_parts().unwrap();
        assert_eq!(group, "sg-1");
        assert_eq!(perms[0].from_port, Some(80));
        assert_eq!(perms[0].user_id_group_pairs[0].group_id.as_deref(), Some("sg-2"));

        let r = post("Action=DeleteVpc&Version=2016-11-15").unwrap();
        let Err(e) = r.call else { panic!() };
        assert_eq!((e.code(), e.to_string().as_str()), ("MissingParameter", "The request must contain the parameter vpcId"));
        let r = post("Action=RunInstances&Version=2016-11-15").unwrap();
        let Err(e) = r.call else { panic!() };
        assert_eq!((e.code(), e.to_string().as_str()), ("InvalidAction", "The action RunInstances is not valid for this web service."));
        assert!(post("Action=CreateUser&Version=2010-05-08").is_none(), "IAM");
    }

    #[test]
    fn targets_name_ec2_resources() {
        let scope = Scope {
            account: "123456789012",
            region: "us-east-1",
            principal: "arn:aws:iam::123456789012:root",
            names: &crate::authz::testing::Known,
        };
        let t = |body: &str| post(body).unwrap().target(&scope).unwrap();
        assert_eq!(
            t("Action=DeleteVpc&Version=2016-11-15&VpcId=vpc-1"),
            Target::on("ec2:DeleteVpc", "arn:aws:ec2:us-east-1:123456789012:vpc/vpc-1")
        );
        assert_eq!(t("Action=DescribeSubnets&Version=2016-11-15"), Target::any("ec2:DescribeSubnets"));
        assert_eq!(
            t("Action=RevokeSecurityGroupIngress&Version=2016-11-15&GroupId=sg-9&SecurityGroupRuleId.1=sgr-1"),
            Target::on("ec2:RevokeSecurityGroupIngress", "arn:aws:ec2:us-east-1:123456789012:security-group/sg-9")
        );
    }
}

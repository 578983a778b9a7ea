"""A function's VpcConfig: checked against Nimbus's network objects as Lambda checks it
(EC2's errors quoted in Lambda's messages, one VPC, 16 subnets and 5 groups at most, an
execution role that may manage network interfaces), answered by GetFunction, kept by
versions, and holding its subnets and groups against deletion."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from helpers import ACCOUNT, boto_client, client_error, make_zip, unique

NODE_OK = {"index.mjs": "export const handler = async () => ({ ok: true });"}
TRUST_LAMBDA = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
VPC_ACCESS = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
BASIC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


@pytest.fixture(scope="module")
def ec2(server):
    return boto_client("ec2", server.endpoint)


@pytest.fixture(scope="module")
def iam(server):
    return boto_client("iam", server.endpoint)


def make_role(iam, *policies: str) -> str:
    name = unique("vpcrole")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST_LAMBDA))["Role"]["Arn"]
    for p in policies:
        iam.attach_role_policy(RoleName=name, PolicyArn=p)
    return arn


@pytest.fixture(scope="module")
def vpc_role(iam):
    return make_role(iam, VPC_ACCESS)


@pytest.fixture(scope="module")
def net(ec2):
    """A VPC with two subnets and a group, and a second VPC with one of each."""
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    a = ec2.create_subnet(VpcId=vpc, CidrBlock="10.40.1.0/24")["Subnet"]["SubnetId"]
    b = ec2.create_subnet(VpcId=vpc, CidrBlock="10.40.2.0/24", AvailabilityZone="us-east-1b")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName=unique("fn"), Description="functions", VpcId=vpc)["GroupId"]
    other = ec2.create_vpc(CidrBlock="10.41.0.0/16")["Vpc"]["VpcId"]
    other_subnet = ec2.create_subnet(VpcId=other, CidrBlock="10.41.1.0/24")["Subnet"]["SubnetId"]
    other_sg = ec2.create_security_group(GroupName=unique("fn"), Description="elsewhere", VpcId=other)["GroupId"]
    return {"vpc": vpc, "a": a, "b": b, "sg": sg, "other": other, "other_subnet": other_subnet, "other_sg": other_sg}


def create(lam, role, vpc_config=None, name=None):
    name = name or unique("vpcfn")
    kwargs = {"VpcConfig": vpc_config} if vpc_config is not None else {}
    return lam.create_function(
        FunctionName=name, Runtime="nodejs20.x", Handler="index.handler", Role=role, Code={"ZipFile": make_zip(NODE_OK)}, **kwargs
    )


def refused(fn) -> tuple[str, str]:
    with pytest.raises(ClientError) as e:
        fn()
    code, _status, message = client_error(e)
    return code, message


def test_vpc_config_is_answered_and_kept(lam, ec2, net, vpc_role):
    cfg = create(lam, vpc_role, {"SubnetIds": [net["a"], net["b"]], "SecurityGroupIds": [net["sg"]]})
    name = cfg["FunctionName"]
    try:
        want = {"SubnetIds": [net["a"], net["b"]], "SecurityGroupIds": [net["sg"]], "VpcId": net["vpc"], "Ipv6AllowedForDualStack": False}
        assert cfg["VpcConfig"] == want
        assert lam.get_function_configuration(FunctionName=name)["VpcConfig"] == want
        assert lam.get_function(FunctionName=name)["Configuration"]["VpcConfig"] == want
        version = lam.publish_version(FunctionName=name)["Version"]
        assert lam.get_function_configuration(FunctionName=name, Qualifier=version)["VpcConfig"] == want

        # In use: neither the subnet nor the group can go.
        assert refused(lambda: ec2.delete_subnet(SubnetId=net["a"])) == (
            "DependencyViolation", f"The subnet '{net['a']}' has dependencies and cannot be deleted.")
        assert refused(lambda: ec2.delete_security_group(GroupId=net["sg"])) == (
            "DependencyViolation", f"resource {net['sg']} has a dependent object")

        # Detached ($LATEST); version 1 still holds its subnets.
        cfg = lam.update_function_configuration(FunctionName=name, VpcConfig={"SubnetIds": [], "SecurityGroupIds": []})
        assert cfg["VpcConfig"] == {"SubnetIds": [], "SecurityGroupIds": [], "VpcId": "", "Ipv6AllowedForDualStack": False}
        assert refused(lambda: ec2.delete_subnet(SubnetId=net["b"]))[0] == "DependencyViolation"
    finally:
        lam.delete_function(FunctionName=name)
    # Gone with the function: the subnet could be deleted now (it is kept for other tests).
    assert lam.list_functions()  # the server is fine


def test_functions_without_vpc_config_have_none(lam, vpc_role):
    cfg = create(lam, vpc_role)
    try:
        assert "VpcConfig" not in cfg
        assert "VpcConfig" not in lam.get_function_configuration(FunctionName=cfg["FunctionName"])
    finally:
        lam.delete_function(FunctionName=cfg["FunctionName"])


def test_vpc_config_errors(lam, net, vpc_role):
    cases = [
        ({"SubnetIds": [net["a"]], "SecurityGroupIds": []}, "InvalidParameterValueException",
         "SubnetIds and SecurityIds must coexist or be both empty list."),
        ({"SubnetIds": ["subnet-0123456789abcdef0"], "SecurityGroupIds": [net["sg"]]}, "InvalidParameterValueException",
         "Error occurred while DescribeSubnets. EC2 Error Code: InvalidSubnetID.NotFound. EC2 Error Message: "
         "The subnet ID 'subnet-0123456789abcdef0' does not exist"),
        ({"SubnetIds": [net["a"]], "SecurityGroupIds": ["sg-0123456789abcdef0"]}, "InvalidParameterValueException",
         "Error occurred while DescribeSecurityGroups. EC2 Error Code: InvalidGroup.NotFound. EC2 Error Message: "
         "The security group 'sg-0123456789abcdef0' does not exist"),
        ({"SubnetIds": [net["a"], net["other_subnet"]], "SecurityGroupIds": [net["sg"]]}, "InvalidParameterValueException",
         "Subnets are required to be in the same VPC."),
        ({"SubnetIds": [net["a"]], "SecurityGroupIds": [net["other_sg"]]}, "InvalidParameterValueException",
         "Security Groups are required to be in the same VPC."),
        ({"SubnetIds": [net["a"]], "SecurityGroupIds": [f"sg-{i}" for i in range(6)]}, "ValidationException",
         "1 validation error detected: Value '[sg-0, sg-1, sg-2, sg-3, sg-4, sg-5]' at 'vpcConfig.securityGroupIds' "
         "failed to satisfy constraint: Member must have length less than or equal to 5"),
    ]
    for vpc_config, code, message in cases:
        assert refused(lambda: create(lam, vpc_role, vpc_config)) == (code, message), vpc_config
    subnets = [f"subnet-{i}" for i in range(17)]
    code, message = refused(lambda: create(lam, vpc_role, {"SubnetIds": subnets, "SecurityGroupIds": [net["sg"]]}))
    assert code == "ValidationException" and message.endswith("Member must have length less than or equal to 16"), message


def test_the_execution_role_must_manage_network_interfaces(lam, iam, net, vpc_role):
    basic = make_role(iam, BASIC)
    vpc_config = {"SubnetIds": [net["a"]], "SecurityGroupIds": [net["sg"]]}
    assert refused(lambda: create(lam, basic, vpc_config)) == (
        "InvalidParameterValueException", "The provided execution role does not have permissions to call CreateNetworkInterface on EC2")

    # An inline policy that allows two of the three calls is not enough.
    partial = make_role(iam, BASIC)
    iam.put_role_policy(
        RoleName=partial.rsplit("/", 1)[1], PolicyName="eni",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces"], "Resource": "*"}]}),
    )
    assert refused(lambda: create(lam, partial, vpc_config)) == (
        "InvalidParameterValueException", "The provided execution role does not have permissions to call DeleteNetworkInterface on EC2")

    # A function in a VPC cannot move to a role without those permissions.
    cfg = create(lam, vpc_role, vpc_config)
    try:
        assert refused(lambda: lam.update_function_configuration(FunctionName=cfg["FunctionName"], Role=basic)) == (
            "InvalidParameterValueException", "The provided execution role does not have permissions to call CreateNetworkInterface on EC2")
        # Attaching an existing function checks its role too.
        plain = create(lam, basic)
        try:
            assert refused(lambda: lam.update_function_configuration(FunctionName=plain["FunctionName"], VpcConfig=vpc_config))[0] == (
                "InvalidParameterValueException")
        finally:
            lam.delete_function(FunctionName=plain["FunctionName"])
    finally:
        lam.delete_function(FunctionName=cfg["FunctionName"])
    assert ACCOUNT in vpc_role

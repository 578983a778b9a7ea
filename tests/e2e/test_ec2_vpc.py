"""EC2's network objects (VPCs, subnets, security groups) over the ec2 protocol, with boto3
and the aws CLI: AWS's id formats, answers and error codes; what exists survives a restart;
EC2's authentication errors."""

import json
import re

import pytest
from botocore.exceptions import ClientError

from helpers import ACCOUNT, REGION, aws_cli_runner, boto_client, client_error, unique

VPC_ID = re.compile(r"^vpc-[0-9a-f]{17}$")
SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{17}$")
SG_ID = re.compile(r"^sg-[0-9a-f]{17}$")
SGR_ID = re.compile(r"^sgr-[0-9a-f]{17}$")


@pytest.fixture(scope="module")
def ec2(server):
    return boto_client("ec2", server.endpoint)


def error(excinfo) -> tuple[str, str]:
    code, _status, message = client_error(excinfo)
    return code, message


def test_vpc_lifecycle_with_its_default_group(ec2):
    name = unique("net")
    vpc = ec2.create_vpc(
        CidrBlock="10.20.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": name}]}]
    )["Vpc"]
    assert VPC_ID.match(vpc["VpcId"]), vpc
    assert vpc["CidrBlock"] == "10.20.0.0/16" and vpc["OwnerId"] == ACCOUNT and vpc["IsDefault"] is False
    assert vpc["CidrBlockAssociationSet"][0]["CidrBlockState"] == {"State": "associated"}
    assert vpc["Tags"] == [{"Key": "Name", "Value": name}]

    found = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [name]}])["Vpcs"]
    assert [v["VpcId"] for v in found] == [vpc["VpcId"]] and found[0]["State"] == "available"
    assert ec2.describe_vpcs(VpcIds=[vpc["VpcId"]])["Vpcs"][0]["CidrBlock"] == "10.20.0.0/16"
    assert ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Vpcs"][0]["VpcId"] == vpc["VpcId"]

    groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["SecurityGroups"]
    assert len(groups) == 1
    default = groups[0]
    assert SG_ID.match(default["GroupId"])
    assert (default["GroupName"], default["Description"]) == ("default", "default VPC security group")
    assert default["IpPermissions"][0]["IpProtocol"] == "-1"
    assert default["IpPermissions"][0]["UserIdGroupPairs"][0]["GroupId"] == default["GroupId"]
    assert default["IpPermissionsEgress"][0]["IpRanges"] == [{"CidrIp": "0.0.0.0/0"}]
    with pytest.raises(ClientError) as e:
        ec2.delete_security_group(GroupId=default["GroupId"])
    assert error(e) == ("CannotDelete", f'the specified group: "{default["GroupId"]}" name: "default" cannot be deleted by a user')

    ec2.delete_vpc(VpcId=vpc["VpcId"])
    with pytest.raises(ClientError) as e:
        ec2.describe_vpcs(VpcIds=[vpc["VpcId"]])
    assert error(e) == ("InvalidVpcID.NotFound", f"The vpc ID '{vpc['VpcId']}' does not exist")
    assert not ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": [default["GroupId"]]}])["SecurityGroups"]


def test_vpc_and_subnet_errors(ec2):
    for cidr, code, message in [
        ("10.0.0.0/8", "InvalidVpc.Range", "The CIDR '10.0.0.0/8' is invalid."),
        ("bad", "InvalidParameterValue", "Value (bad) for parameter cidrBlock is invalid. This is not a valid CIDR block."),
    ]:
        with pytest.raises(ClientError) as e:
            ec2.create_vpc(CidrBlock=cidr)
        assert error(e) == (code, message)
    with pytest.raises(ClientError) as e:
        ec2.describe_vpcs(Filters=[{"Name": "colour", "Values": ["x"]}])
    assert error(e) == ("InvalidParameterValue", "The filter 'colour' is invalid")

    vpc = ec2.create_vpc(CidrBlock="10.21.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.21.1.0/24")["Subnet"]
    assert SUBNET_ID.match(subnet["SubnetId"])
    assert (subnet["VpcId"], subnet["CidrBlock"], subnet["AvailableIpAddressCount"]) == (vpc, "10.21.1.0/24", 251)
    assert subnet["AvailabilityZone"] == f"{REGION}a" and subnet["State"] == "available"
    assert subnet["SubnetArn"] == f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/{subnet['SubnetId']}"
    for cidr, code, message in [
        ("10.21.1.0/25", "InvalidSubnet.Conflict", "The CIDR '10.21.1.0/25' conflicts with another subnet"),
        ("10.22.0.0/24", "InvalidSubnet.Range", "The CIDR '10.22.0.0/24' is invalid."),
    ]:
        with pytest.raises(ClientError) as e:
            ec2.create_subnet(VpcId=vpc, CidrBlock=cidr)
        assert error(e) == (code, message)
    with pytest.raises(ClientError) as e:
        ec2.create_subnet(VpcId="vpc-0123456789abcdef0", CidrBlock="10.21.2.0/24")
    assert error(e) == ("InvalidVpcID.NotFound", "The vpc ID 'vpc-0123456789abcdef0' does not exist")

    assert [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]] == [subnet["SubnetId"]]
    with pytest.raises(ClientError) as e:
        ec2.describe_subnets(SubnetIds=["subnet-0123456789abcdef0"])
    assert error(e) == ("InvalidSubnetID.NotFound", "The subnet ID 'subnet-0123456789abcdef0' does not exist")
    with pytest.raises(ClientError) as e:
        ec2.delete_vpc(VpcId=vpc)
    assert error(e) == ("DependencyViolation", f"The vpc '{vpc}' has dependencies and cannot be deleted.")
    ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    ec2.delete_vpc(VpcId=vpc)


def test_security_group_rules(ec2):
    vpc = ec2.create_vpc(CidrBlock="10.23.0.0/16")["Vpc"]["VpcId"]
    created = ec2.create_security_group(GroupName="web", Description="web tier", VpcId=vpc)
    gid = created["GroupId"]
    assert SG_ID.match(gid) and created["SecurityGroupArn"] == f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/{gid}"
    with pytest.raises(ClientError) as e:
        ec2.create_security_group(GroupName="web", Description="again", VpcId=vpc)
    assert error(e) == ("InvalidGroup.Duplicate", f"The security group 'web' already exists for VPC '{vpc}'")
    with pytest.raises(ClientError) as e:
        ec2.create_security_group(GroupName="nowhere", Description="d")
    assert error(e) == ("VPCIdNotSpecified", "No default VPC for this user")

    rules = ec2.authorize_security_group_ingress(
        GroupId=gid,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "inside"}]}],
    )
    assert rules["Return"] is True
    rule = rules["SecurityGroupRules"][0]
    assert SGR_ID.match(rule["SecurityGroupRuleId"])
    assert (rule["GroupId"], rule["IsEgress"], rule["IpProtocol"], rule["FromPort"], rule["ToPort"], rule["CidrIpv4"]) == (
        gid, False, "tcp", 443, 443, "10.0.0.0/8")
    with pytest.raises(ClientError) as e:
        ec2.authorize_security_group_ingress(GroupId=gid, IpProtocol="tcp", FromPort=443, ToPort=443, CidrIp="10.0.0.0/8")
    assert error(e) == (
        "InvalidPermission.Duplicate",
        'the specified rule "peer: 10.0.0.0/8, TCP, from port: 443, to port: 443, ALLOW" already exists',
    )
    other = ec2.create_security_group(GroupName="db", Description="db", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=other, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": gid}]}]
    )
    with pytest.raises(ClientError) as e:
        ec2.authorize_security_group_ingress(
            GroupId=other, IpPermissions=[{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": "sg-0123456789abcdef0"}]}]
        )
    assert error(e) == ("InvalidGroup.NotFound", "The security group 'sg-0123456789abcdef0' does not exist")

    # Egress: a new group allows everything out; replace that with one port.
    ec2.revoke_security_group_egress(GroupId=gid, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    with pytest.raises(ClientError) as e:
        ec2.revoke_security_group_egress(GroupId=gid, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    assert error(e) == ("InvalidPermission.NotFound", "The specified rule does not exist in this security group.")
    ec2.authorize_security_group_egress(
        GroupId=gid, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "10.23.0.0/16"}]}]
    )
    g = ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]
    assert g["IpPermissions"] == [
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "UserIdGroupPairs": [], "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "inside"}],
         "Ipv6Ranges": [], "PrefixListIds": []}
    ]
    assert g["IpPermissionsEgress"] == [
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [], "IpRanges": [{"CidrIp": "10.23.0.0/16"}],
         "Ipv6Ranges": [], "PrefixListIds": []}
    ]
    assert ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["db"]}, {"Name": "vpc-id", "Values": [vpc]}])[
        "SecurityGroups"][0]["IpPermissions"][0]["UserIdGroupPairs"] == [{"UserId": ACCOUNT, "GroupId": gid}]

    # Referenced by another group's rule: not deleted.
    with pytest.raises(ClientError) as e:
        ec2.delete_security_group(GroupId=gid)
    assert error(e) == ("DependencyViolation", f"resource {gid} has a dependent object")
    assert ec2.delete_security_group(GroupId=other)["Return"] is True
    ec2.delete_security_group(GroupId=gid)
    with pytest.raises(ClientError) as e:
        ec2.delete_security_group(GroupId=gid)
    assert error(e) == ("InvalidGroup.NotFound", f"The security group '{gid}' does not exist")
    ec2.delete_vpc(VpcId=vpc)


def test_dry_run_and_unserved_actions(ec2):
    with pytest.raises(ClientError) as e:
        ec2.create_vpc(CidrBlock="10.24.0.0/16", DryRun=True)
    code, status, message = client_error(e)
    assert (code, status, message) == ("DryRunOperation", 412, "Request would have succeeded, but DryRun flag is set.")
    with pytest.raises(ClientError) as e:
        ec2.describe_instances()
    assert error(e) == ("InvalidAction", "The action DescribeInstances is not valid for this web service.")


def test_aws_cli_ec2_commands(server, aws_cli, tmp_path):
    aws = aws_cli_runner(aws_cli, server.endpoint, tmp_path / "home")
    cp = aws("ec2", "create-vpc", "--cidr-block", "10.25.0.0/16")
    assert cp.returncode == 0, cp.err
    vpc = json.loads(cp.out)["Vpc"]["VpcId"]
    cp = aws("ec2", "create-subnet", "--vpc-id", vpc, "--cidr-block", "10.25.1.0/24")
    assert cp.returncode == 0, cp.err
    subnet = json.loads(cp.out)["Subnet"]["SubnetId"]
    cp = aws("ec2", "create-security-group", "--group-name", "app", "--description", "app", "--vpc-id", vpc)
    assert cp.returncode == 0, cp.err
    sg = json.loads(cp.out)["GroupId"]
    cp = aws("ec2", "authorize-security-group-egress", "--group-id", sg, "--ip-permissions",
             "IpProtocol=tcp,FromPort=443,ToPort=443,IpRanges=[{CidrIp=0.0.0.0/0}]")
    assert cp.returncode == 0, cp.err
    cp = aws("ec2", "describe-security-groups", "--group-ids", sg, "--query", "SecurityGroups[0].IpPermissionsEgress[].FromPort")
    assert cp.returncode == 0 and json.loads(cp.out) == [443], cp.out + cp.err
    cp = aws("ec2", "describe-subnets", "--filters", f"Name=vpc-id,Values={vpc}", "--query", "Subnets[].SubnetId")
    assert json.loads(cp.out) == [subnet], cp.out + cp.err
    cp = aws("ec2", "delete-vpc", "--vpc-id", vpc)
    assert cp.returncode != 0 and "DependencyViolation" in cp.err, cp.err
    for args in (["delete-subnet", "--subnet-id", subnet], ["delete-security-group", "--group-id", sg], ["delete-vpc", "--vpc-id", vpc]):
        cp = aws("ec2", *args)
        assert cp.returncode == 0, cp.err


def test_authentication_errors_are_ec2s(server):
    import boto3
    from botocore.config import Config

    bad = boto3.session.Session().client(
        "ec2", endpoint_url=server.endpoint, region_name=REGION, aws_access_key_id="AKIANOSUCHKEY0000000",
        aws_secret_access_key="x", config=Config(retries={"max_attempts": 0}),
    )
    with pytest.raises(ClientError) as e:
        bad.describe_vpcs()
    assert client_error(e) == ("AuthFailure", 401, "AWS was not able to validate the provided access credentials")
    wrong_secret = boto3.session.Session().client(
        "ec2", endpoint_url=server.endpoint, region_name=REGION, aws_access_key_id="test",
        aws_secret_access_key="not-the-secret", config=Config(retries={"max_attempts": 0}),
    )
    with pytest.raises(ClientError) as e:
        wrong_secret.describe_vpcs()
    assert client_error(e)[:2] == ("SignatureDoesNotMatch", 403)


def test_network_objects_survive_a_restart(server_factory):
    s = server_factory()
    ec2 = boto_client("ec2", s.endpoint)
    vpc = ec2.create_vpc(CidrBlock="10.26.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.26.1.0/24")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="g", Description="g", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg, IpProtocol="tcp", FromPort=22, ToPort=22, CidrIp="10.26.0.0/16")
    s.restart()
    ec2 = boto_client("ec2", s.endpoint)
    assert ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["VpcId"] == vpc
    assert ec2.describe_security_groups(GroupIds=[sg])["SecurityGroups"][0]["IpPermissions"][0]["FromPort"] == 22


def test_iam_authorizes_ec2_calls(server):
    import boto3
    from botocore.config import Config

    iam = boto_client("iam", server.endpoint)
    user = unique("netreader")
    iam.create_user(UserName=user)
    iam.put_user_policy(
        UserName=user, PolicyName="read",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}]}),
    )
    key = iam.create_access_key(UserName=user)["AccessKey"]
    ec2 = boto3.session.Session().client(
        "ec2", endpoint_url=server.endpoint, region_name=REGION, aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"], config=Config(retries={"max_attempts": 0}),
    )
    ec2.describe_vpcs()
    with pytest.raises(ClientError) as e:
        ec2.create_vpc(CidrBlock="10.27.0.0/16")
    code, status, message = client_error(e)
    assert (code, status) == ("UnauthorizedOperation", 403)
    assert message.startswith(
        f"You are not authorized to perform this operation. User: arn:aws:iam::{ACCOUNT}:user/{user} is not authorized to perform: "
        f"ec2:CreateVpc on resource: arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/*"
    ), message

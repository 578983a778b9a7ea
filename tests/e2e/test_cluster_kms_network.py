"""KMS keys and VPC networks shared by the nodes of a cluster (issue 17): a key made on one
node encrypts and decrypts on every node, a function whose environment variables are sealed
under it (its `KMSKeyArn`) runs on every node, and a key disabled on one node is refused on
the others; a VPC, subnet and security group made on one node are listed by the others, a
function made on another node may name them in its `VpcConfig`, which holds them against
deletion on every node, and a rule changed on one node is described by the others."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from helpers import client_error, create_function, make_zip, unique, wait_for
from test_cluster import CODE, Cluster, pg_url  # noqa: F401 (pg_url: a fixture)


@pytest.fixture
def cluster(server_factory, tmp_path, pg_url):  # noqa: F811
    return Cluster(server_factory, tmp_path, pg_url, 3)


def _within_a_second(what: str, ok) -> None:
    """Waits until ok() holds: a second at most after the change."""
    started = time.monotonic()
    while True:
        try:
            if ok():
                return
        except ClientError:
            pass
        assert time.monotonic() - started < 1.0, f"{what}: not after a second"
        time.sleep(0.02)


def test_a_kms_key_made_on_one_node_works_on_every_node(cluster):
    kms = [cluster.nodes[i].client("kms") for i in range(3)]
    key = kms[0].create_key(Description="shared")["KeyMetadata"]
    context = {"app": "cluster"}
    _within_a_second("node 1 knows the key", lambda: kms[1].describe_key(KeyId=key["KeyId"])["KeyMetadata"]["Enabled"])
    blob = kms[1].encrypt(KeyId=key["Arn"], Plaintext=b"secret", EncryptionContext=context)["CiphertextBlob"]
    _within_a_second("node 2 knows the key", lambda: kms[2].describe_key(KeyId=key["KeyId"]))
    got = kms[2].decrypt(CiphertextBlob=blob, EncryptionContext=context)
    assert (got["Plaintext"], got["KeyId"]) == (b"secret", key["Arn"])
    # An alias made on node 2 names the key on node 0.
    kms[2].create_alias(AliasName="alias/cluster", TargetKeyId=key["KeyId"])
    _within_a_second("node 0 knows the alias", lambda: kms[0].describe_key(KeyId="alias/cluster")["KeyMetadata"]["Arn"] == key["Arn"])
    assert {k["KeyId"] for k in kms[0].list_keys()["Keys"]} == {key["KeyId"]}

    # A function made on node 0 with its variables sealed under the key runs on nodes 1 and 2.
    name = unique("kmsfn")
    lam0 = cluster.lam(0)
    create_function(lam0, name, "python3.11", "index.handler", make_zip({"index.py": CODE}),
                    Environment={"Variables": {"SAYS": "sealed"}}, KMSKeyArn=key["Arn"])
    for i in (1, 2):
        assert cluster.lam(i).get_function_configuration(FunctionName=name)["KMSKeyArn"] == key["Arn"]
        assert cluster.invoke(i, name, {"node": i})["says"] == "sealed"

    # Disabled on node 1: node 2 refuses to open the variables, as AWS's Lambda does.
    kms[1].disable_key(KeyId=key["KeyId"])

    def refused_on_node_2() -> bool:
        try:
            cluster.lam(2).invoke(FunctionName=name, Payload=b"{}")
        except ClientError as e:
            return (e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]) == ("KMSDisabledException", 502)
        return False

    _within_a_second("node 2 refuses the disabled key", refused_on_node_2)
    with pytest.raises(ClientError) as e:
        kms[0].encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    assert client_error(e)[0] == "DisabledException"
    # Enabled again on node 2 itself; scheduled for deletion on node 0: refused on node 1.
    kms[2].enable_key(KeyId=key["KeyId"])
    assert cluster.invoke(2, name, {})["says"] == "sealed"
    kms[0].schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    _within_a_second("node 1 sees the deletion pending",
                     lambda: kms[1].describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "PendingDeletion")
    with pytest.raises(ClientError) as e:
        kms[1].decrypt(CiphertextBlob=blob, EncryptionContext=context)
    assert client_error(e)[0] == "KMSInvalidStateException"
    wait_for(lambda: kms[2].describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "PendingDeletion",
             what="node 2 sees the deletion pending")
    with pytest.raises(ClientError) as e:
        cluster.lam(2).invoke(FunctionName=name, Payload=b"{}")
    assert client_error(e)[0] == "KMSInvalidStateException", client_error(e)


def test_networks_made_on_one_node_are_every_nodes(cluster):
    ec2 = [cluster.nodes[i].client("ec2") for i in range(3)]
    vpc = ec2[0].create_vpc(CidrBlock="10.60.0.0/16",
                            TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "shared"}]}])["Vpc"]["VpcId"]
    subnet = ec2[0].create_subnet(VpcId=vpc, CidrBlock="10.60.1.0/24")["Subnet"]["SubnetId"]
    group = ec2[0].create_security_group(GroupName="functions", Description="shared", VpcId=vpc)["GroupId"]
    _within_a_second("node 2 lists the subnet and the group", lambda: (
        ec2[2].describe_subnets(SubnetIds=[subnet])["Subnets"][0]["VpcId"] == vpc
        and ec2[2].describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["GroupName"] == "functions"))
    assert [v["VpcId"] for v in ec2[2].describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["shared"]}])["Vpcs"]] == [vpc]
    # Checked against what node 0 made: the same name again in the VPC is refused on node 2.
    with pytest.raises(ClientError) as e:
        ec2[2].create_security_group(GroupName="functions", Description="again", VpcId=vpc)
    assert client_error(e)[0] == "InvalidGroup.Duplicate"

    # A function made through node 1 names them; every node answers its VpcConfig.
    name = unique("vpcfn")
    vpc_config = {"SubnetIds": [subnet], "SecurityGroupIds": [group]}
    _within_a_second("node 1 knows the subnet", lambda: ec2[1].describe_subnets(SubnetIds=[subnet])["Subnets"])
    fn = create_function(cluster.lam(1), name, "python3.11", "index.handler", make_zip({"index.py": CODE}), VpcConfig=vpc_config)
    assert (fn.config["VpcConfig"]["VpcId"], fn.config["VpcConfig"]["SubnetIds"]) == (vpc, [subnet])
    for i in (0, 2):
        assert cluster.lam(i).get_function_configuration(FunctionName=name)["VpcConfig"]["SecurityGroupIds"] == [group]
    # Held against deletion on the node that made them.
    for call in (lambda: ec2[0].delete_subnet(SubnetId=subnet), lambda: ec2[0].delete_security_group(GroupId=group)):
        with pytest.raises(ClientError) as e:
            call()
        assert client_error(e)[0] == "DependencyViolation"

    # A rule added on node 2 is described by node 0.
    ec2[2].authorize_security_group_egress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "10.60.0.0/16"}]}])

    def node_0_has_the_rule() -> bool:
        egress = ec2[0].describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissionsEgress"]
        return any(p.get("FromPort") == 5432 for p in egress)

    _within_a_second("node 0 describes the new rule", node_0_has_the_rule)

    # Once the function is gone, node 2 deletes what node 0 made; node 1 forgets it.
    cluster.lam(0).delete_function(FunctionName=name)
    ec2[2].delete_security_group(GroupId=group)
    ec2[2].delete_subnet(SubnetId=subnet)
    ec2[2].delete_vpc(VpcId=vpc)

    def node_1_forgot() -> bool:
        try:
            ec2[1].describe_vpcs(VpcIds=[vpc])
        except ClientError as e:
            return e.response["Error"]["Code"] == "InvalidVpcID.NotFound"
        return False

    _within_a_second("node 1 forgets the VPC", node_1_forgot)
    assert ec2[1].describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"] == []

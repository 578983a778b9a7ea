"""The VPC data plane: a function in a VPC runs with an address from its subnet, its security
groups' egress rules decide what it reaches (the Nimbus endpoint always), its ingress rules
what reaches it, and functions in different VPCs cannot reach each other. Needs the linked
network (namespaces, as root) and nftables, as scripts/test sets up."""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
import time
import urllib.parse

import pytest

from helpers import boto_client, http_get, invoke, make_zip, unique

HANDLER = r'''
import json, os, socket, urllib.request

def handler(event, context):
    mode = event["mode"]
    if mode == "addr":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect((event["host"], 9))
        return {"addr": s.getsockname()[0]}
    if mode == "connect":
        try:
            socket.create_connection((event["host"], event["port"]), timeout=event.get("timeout", 1.5)).close()
            return {"ok": True}
        except OSError as e:
            return {"ok": False, "error": repr(e)}
    if mode == "endpoint":
        with urllib.request.urlopen(os.environ["AWS_ENDPOINT_URL"] + "/health", timeout=5) as r:
            return {"status": r.status}
    if mode == "url":
        try:
            with urllib.request.urlopen(event["url"], timeout=5) as r:
                return {"status": r.status}
        except OSError as e:
            return {"error": repr(e)}
    if mode == "listen":
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("0.0.0.0", event["port"]))
        srv.listen(4)
        srv.settimeout(event["seconds"])
        try:
            conn, peer = srv.accept()
            conn.close()
            return {"accepted": peer[0]}
        except socket.timeout:
            return {"accepted": None}
        finally:
            srv.close()
    raise ValueError(mode)
'''
TRUST_LAMBDA = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
VPC_ACCESS = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"


@pytest.fixture(scope="module")
def ec2(server):
    return boto_client("ec2", server.endpoint)


@pytest.fixture(scope="module")
def role(server):
    iam = boto_client("iam", server.endpoint)
    name = unique("vpcnet")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST_LAMBDA))["Role"]["Arn"]
    iam.attach_role_policy(RoleName=name, PolicyArn=VPC_ACCESS)
    return arn


@pytest.fixture(scope="module")
def gateway(server) -> str:
    """The host's address on the environments' bridge (where the Nimbus endpoint is)."""
    status, _, body = http_get(server.endpoint + "/_nimbus/status")
    doc = json.loads(body)
    assert status == 200 and doc["isolation"] == "namespaces (linked network)", doc
    assert not [m for m in doc["missingGuarantees"] if m.startswith("VPC")], doc
    return urllib.parse.urlparse(doc["endpointUrl"]).hostname


@pytest.fixture
def functions(lam):
    made: list[str] = []

    def make(role: str, vpc_config: dict | None) -> str:
        name = unique("vpcnet")
        kwargs = {"VpcConfig": vpc_config} if vpc_config else {}
        lam.create_function(FunctionName=name, Runtime="python3.11", Handler="index.handler", Role=role,
                            Code={"ZipFile": make_zip({"index.py": HANDLER})}, Timeout=30, **kwargs)
        made.append(name)
        return name

    yield make
    for name in made:
        try:
            lam.delete_function(FunctionName=name)
        except Exception:
            pass


def call(lam, name: str, event: dict) -> dict:
    return invoke(lam, name, event).ok()


def network(ec2, cidr: str, subnet: str) -> tuple[str, str]:
    vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    return vpc, ec2.create_subnet(VpcId=vpc, CidrBlock=subnet)["Subnet"]["SubnetId"]


class Listener:
    """A TCP listener on the host that counts the connections it accepts."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("0.0.0.0", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self):
        self.sock.close()


def test_security_group_egress_rules_decide_what_a_function_reaches(lam, ec2, role, gateway, functions):
    allowed, blocked = Listener(), Listener()
    try:
        vpc, subnet = network(ec2, "10.60.0.0/16", "10.60.1.0/24")
        open_sg = ec2.create_security_group(GroupName=unique("open"), Description="all egress", VpcId=vpc)["GroupId"]
        one_port = ec2.create_security_group(GroupName=unique("one"), Description="one port", VpcId=vpc)["GroupId"]
        ec2.revoke_security_group_egress(GroupId=one_port, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        ec2.authorize_security_group_egress(
            GroupId=one_port,
            IpPermissions=[{"IpProtocol": "tcp", "FromPort": allowed.port, "ToPort": allowed.port, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
        )
        fenced = functions(role, {"SubnetIds": [subnet], "SecurityGroupIds": [one_port]})
        free = functions(role, {"SubnetIds": [subnet], "SecurityGroupIds": [open_sg]})

        # Its address is from its subnet.
        addr = call(lam, fenced, {"mode": "addr", "host": gateway})["addr"]
        assert ipaddress.ip_address(addr) in ipaddress.ip_network("10.60.1.0/24"), addr
        # A port its group allows; one it does not; the Nimbus endpoint, always.
        assert call(lam, fenced, {"mode": "connect", "host": gateway, "port": allowed.port})["ok"] is True
        got = call(lam, fenced, {"mode": "connect", "host": gateway, "port": blocked.port})
        assert got["ok"] is False, got
        assert blocked.accepted == 0
        assert call(lam, fenced, {"mode": "endpoint"}) == {"status": 200}
        # A group with the default egress rule reaches both.
        assert call(lam, free, {"mode": "connect", "host": gateway, "port": blocked.port})["ok"] is True

        # A rule added later applies to the function's next environments.
        ec2.authorize_security_group_egress(
            GroupId=one_port,
            IpPermissions=[{"IpProtocol": "tcp", "FromPort": blocked.port, "ToPort": blocked.port, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
        )
        assert call(lam, fenced, {"mode": "connect", "host": gateway, "port": blocked.port})["ok"] is True
    finally:
        allowed.close()
        blocked.close()


def test_urls_made_on_the_host_work_in_a_vpc_whatever_its_groups_say(server, lam, ec2, role, functions):
    """The server's own address (the one in every URL it hands the host) leads to the server
    inside a VPC environment too, on its loopback, like the Nimbus endpoint: even with no
    egress rule at all."""
    vpc, subnet = network(ec2, "10.64.0.0/16", "10.64.1.0/24")
    closed = ec2.create_security_group(GroupName=unique("closed"), Description="no egress", VpcId=vpc)["GroupId"]
    ec2.revoke_security_group_egress(GroupId=closed, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    fenced = functions(role, {"SubnetIds": [subnet], "SecurityGroupIds": [closed]})
    code = lam.get_function(FunctionName=fenced)["Code"]["Location"]
    assert code.startswith(server.endpoint + "/")
    assert call(lam, fenced, {"mode": "url", "url": code}) == {"status": 200}
    assert call(lam, fenced, {"mode": "url", "url": server.endpoint + "/health"}) == {"status": 200}


def test_functions_in_different_vpcs_cannot_reach_each_other(lam, ec2, role, gateway, functions):
    vpc1, subnet1 = network(ec2, "10.62.0.0/16", "10.62.1.0/24")
    vpc2, subnet2 = network(ec2, "10.63.0.0/16", "10.63.1.0/24")
    listening = ec2.create_security_group(GroupName=unique("in"), Description="8080 in", VpcId=vpc1)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=listening, IpProtocol="tcp", FromPort=8080, ToPort=8080, CidrIp="0.0.0.0/0")
    neighbour_sg = ec2.create_security_group(GroupName=unique("nb"), Description="egress", VpcId=vpc1)["GroupId"]
    stranger_sg = ec2.create_security_group(GroupName=unique("st"), Description="egress", VpcId=vpc2)["GroupId"]
    server = functions(role, {"SubnetIds": [subnet1], "SecurityGroupIds": [listening]})
    neighbour = functions(role, {"SubnetIds": [subnet1], "SecurityGroupIds": [neighbour_sg]})
    stranger = functions(role, {"SubnetIds": [subnet2], "SecurityGroupIds": [stranger_sg]})
    outsider = functions(role, None)

    addr = call(lam, server, {"mode": "addr", "host": gateway})["addr"]
    for name in (neighbour, stranger, outsider):  # warm, so the connects below are quick
        call(lam, name, {"mode": "addr", "host": gateway})
    result: dict = {}
    t = threading.Thread(target=lambda: result.update(call(lam, server, {"mode": "listen", "port": 8080, "seconds": 8})))
    t.start()
    try:
        time.sleep(1.5)
        # Another VPC and the default network: no way there.
        got = call(lam, stranger, {"mode": "connect", "host": addr, "port": 8080, "timeout": 1.5})
        assert got["ok"] is False, got
        got = call(lam, outsider, {"mode": "connect", "host": addr, "port": 8080, "timeout": 1.5})
        assert got["ok"] is False, got
        # The same VPC, allowed by the listener's ingress rule: it gets through.
        got = call(lam, neighbour, {"mode": "connect", "host": addr, "port": 8080, "timeout": 3})
        assert got["ok"] is True, got
    finally:
        t.join(timeout=30)
    assert ipaddress.ip_address(result["accepted"]) in ipaddress.ip_network("10.62.1.0/24"), result


def test_ingress_rules_decide_what_reaches_a_function(lam, ec2, role, gateway, functions):
    vpc, subnet = network(ec2, "10.64.0.0/16", "10.64.1.0/24")
    closed = ec2.create_security_group(GroupName=unique("closed"), Description="no ingress", VpcId=vpc)["GroupId"]
    client_sg = ec2.create_security_group(GroupName=unique("client"), Description="egress", VpcId=vpc)["GroupId"]
    server = functions(role, {"SubnetIds": [subnet], "SecurityGroupIds": [closed]})
    client = functions(role, {"SubnetIds": [subnet], "SecurityGroupIds": [client_sg]})
    addr = call(lam, server, {"mode": "addr", "host": gateway})["addr"]
    call(lam, client, {"mode": "addr", "host": gateway})
    result: dict = {}
    t = threading.Thread(target=lambda: result.update(call(lam, server, {"mode": "listen", "port": 8080, "seconds": 4})))
    t.start()
    try:
        time.sleep(1.5)
        got = call(lam, client, {"mode": "connect", "host": addr, "port": 8080, "timeout": 1.5})
        assert got["ok"] is False, got
    finally:
        t.join(timeout=30)
    assert result == {"accepted": None}

"""KMS keys shared by the nodes of a cluster (issue 17): a key made on one node encrypts and
decrypts on every node, a function whose environment variables are sealed under it (its
`KMSKeyArn`) runs on every node, and a key disabled on one node is refused on the others."""

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
        with pytest.raises(ClientError) as e:
            cluster.lam(2).invoke(FunctionName=name, Payload=b"{}")
        return client_error(e)[:2] == ("KMSDisabledException", 502)

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

"""Authorization in every service: an IAM user with a narrow inline policy may make exactly the
calls it grants, on exactly the resources it names, and is otherwise refused with its
service's own AccessDenied answer (code, HTTP status, and the message naming the user, the
action and the resource, as AWS words it: tests/e2e/data/aws-answers/auth-errors.md, rows
"9 IAM deny"). An explicit Deny beats an Allow; a queue's or a topic's policy naming another
user lets that user in without any identity policy; a KMS key policy that does not name the
account keeps out even a user whose IAM policy allows everything, and the account's root too. Every test is signed for
real (boto3 with the users' own access keys) and has denials in it: without authorization it
fails."""

import json

import pytest
from botocore.exceptions import ClientError

from helpers import ACCOUNT, REGION, boto_client, client_error, unique

Q_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}"
SNS_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}"


def policy(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action, resource="*"):
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def deny(action, resource="*"):
    return {"Effect": "Deny", "Action": action, "Resource": resource}


class User:
    """An IAM user with an access key of its own and, if given, one inline policy."""

    def __init__(self, server, iam, document=None, path="/"):
        self.server = server
        self.name = unique("authz")
        iam.create_user(UserName=self.name, Path=path)
        self.arn = f"arn:aws:iam::{ACCOUNT}:user{path}{self.name}"
        key = iam.create_access_key(UserName=self.name)["AccessKey"]
        self.key, self.secret = key["AccessKeyId"], key["SecretAccessKey"]
        if document:
            iam.put_user_policy(UserName=self.name, PolicyName="narrow", PolicyDocument=document)

    def client(self, service):
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            service,
            endpoint_url=self.server.endpoint,
            region_name=REGION,
            aws_access_key_id=self.key,
            aws_secret_access_key=self.secret,
            config=Config(retries={"max_attempts": 0}),
        )

    def denied(self, action, resource=None, why="because no identity-based policy allows the {action} action"):
        """AWS's message for this user being refused `action` on `resource`."""
        on = f" on resource: {resource}" if resource else ""
        return f"User: {self.arn} is not authorized to perform: {action}{on} {why.format(action=action)}"


@pytest.fixture(scope="module")
def iam(server):
    return boto_client("iam", server.endpoint)


def refused(call, **kwargs):
    """The (code, status, message) a call is refused with."""
    with pytest.raises(ClientError) as e:
        call(**kwargs)
    return client_error(e)


# ---- SQS ------------------------------------------------------------------------------


def test_sqs_allows_what_the_policy_grants_and_words_denials_as_sqs(server, iam):
    admin = boto_client("sqs", server.endpoint)
    mine, other = unique("mine"), unique("other")
    url = admin.create_queue(QueueName=mine)["QueueUrl"]
    other_url = admin.create_queue(QueueName=other)["QueueUrl"]
    user = User(server, iam, policy(allow(["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:GetQueueUrl"], f"{Q_ARN}:{mine}")))
    sqs = user.client("sqs")

    assert sqs.get_queue_url(QueueName=mine)["QueueUrl"] == url
    sqs.send_message(QueueUrl=url, MessageBody="hi")
    # SendMessageBatch needs sqs:SendMessage, as on AWS.
    assert len(sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "b"}])["Successful"]) == 1
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1).get("Messages", [])]

    # SQS lower-cases the action in its message.
    assert refused(sqs.send_message, QueueUrl=other_url, MessageBody="x") == (
        "AccessDenied", 403, user.denied("sqs:sendmessage", f"{Q_ARN}:{other}"))
    assert refused(sqs.send_message_batch, QueueUrl=other_url, Entries=[{"Id": "a", "MessageBody": "b"}]) == (
        "AccessDenied", 403, user.denied("sqs:sendmessage", f"{Q_ARN}:{other}"))
    assert refused(sqs.purge_queue, QueueUrl=url) == ("AccessDenied", 403, user.denied("sqs:purgequeue", f"{Q_ARN}:{mine}"))
    assert refused(sqs.list_queues) == ("AccessDenied", 403, user.denied("sqs:listqueues"))
    assert refused(sqs.create_queue, QueueName=unique("new"))[:2] == ("AccessDenied", 403)
    # Nothing was purged or created behind the refusals.
    assert admin.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]


def test_sqs_an_explicit_deny_beats_an_allow(server, iam):
    admin = boto_client("sqs", server.endpoint)
    name = unique("guarded")
    url = admin.create_queue(QueueName=name)["QueueUrl"]
    user = User(server, iam, policy(allow("sqs:*"), deny("sqs:PurgeQueue", f"{Q_ARN}:{name}")))
    sqs = user.client("sqs")
    sqs.send_message(QueueUrl=url, MessageBody="kept")
    assert refused(sqs.purge_queue, QueueUrl=url) == (
        "AccessDenied", 403, user.denied("sqs:purgequeue", f"{Q_ARN}:{name}", "with an explicit deny in an identity-based policy"))
    assert name in " ".join(sqs.list_queues(QueueNamePrefix=name).get("QueueUrls", []))


def test_a_queue_policy_lets_another_user_in(server, iam):
    admin = boto_client("sqs", server.endpoint)
    name = unique("shared")
    url = admin.create_queue(QueueName=name)["QueueUrl"]
    guest = User(server, iam)  # no identity policy at all
    blocked = User(server, iam, policy(allow("sqs:*")))
    queue_policy = json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": guest.arn}, "Action": "sqs:SendMessage", "Resource": f"{Q_ARN}:{name}"},
            {"Effect": "Deny", "Principal": {"AWS": blocked.arn}, "Action": "sqs:*", "Resource": f"{Q_ARN}:{name}"},
        ],
    })
    sqs = guest.client("sqs")
    assert refused(sqs.send_message, QueueUrl=url, MessageBody="before")[:2] == ("AccessDenied", 403)
    admin.set_queue_attributes(QueueUrl=url, Attributes={"Policy": queue_policy})
    sqs.send_message(QueueUrl=url, MessageBody="from a guest")
    assert refused(sqs.receive_message, QueueUrl=url) == ("AccessDenied", 403, guest.denied("sqs:receivemessage", f"{Q_ARN}:{name}"))
    # The queue's own deny beats the other user's identity allow.
    assert refused(blocked.client("sqs").send_message, QueueUrl=url, MessageBody="x") == (
        "AccessDenied", 403, blocked.denied("sqs:sendmessage", f"{Q_ARN}:{name}", "with an explicit deny in a resource-based policy"))
    got = admin.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    assert [m["Body"] for m in got] == ["from a guest"]


# ---- SNS ------------------------------------------------------------------------------


def test_sns_allows_what_the_policy_grants_and_words_denials_as_sns(server, iam):
    admin = boto_client("sns", server.endpoint)
    mine, other = unique("mine"), unique("other")
    topic = admin.create_topic(Name=mine)["TopicArn"]
    other_topic = admin.create_topic(Name=other)["TopicArn"]
    sqs = boto_client("sqs", server.endpoint)
    q = sqs.create_queue(QueueName=unique("sink"))["QueueUrl"]
    q_arn = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sub = admin.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=q_arn, ReturnSubscriptionArn=True)["SubscriptionArn"]
    user = User(server, iam, policy(allow(["sns:Publish", "sns:GetSubscriptionAttributes"], topic)))
    sns = user.client("sns")

    assert sns.publish(TopicArn=topic, Message="m")["MessageId"]
    # PublishBatch needs sns:Publish; subscription calls act on their topic.
    assert len(sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=[{"Id": "a", "Message": "m"}])["Successful"]) == 1
    assert sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]["TopicArn"] == topic

    # SNS writes its prefix in capitals, and answers AuthorizationError.
    assert refused(sns.publish, TopicArn=other_topic, Message="m") == (
        "AuthorizationError", 403, user.denied("SNS:Publish", other_topic))
    # Unsubscribe works unsigned (the link in SNS's messages); signed, it is authorized.
    assert refused(sns.unsubscribe, SubscriptionArn=sub) == ("AuthorizationError", 403, user.denied("SNS:Unsubscribe", topic))
    assert refused(sns.set_subscription_attributes, SubscriptionArn=sub, AttributeName="RawMessageDelivery", AttributeValue="true") == (
        "AuthorizationError", 403, user.denied("SNS:SetSubscriptionAttributes", topic))
    assert refused(sns.list_topics) == ("AuthorizationError", 403, user.denied("SNS:ListTopics"))
    assert refused(sns.delete_topic, TopicArn=topic)[:2] == ("AuthorizationError", 403)
    assert topic in [t["TopicArn"] for t in admin.list_topics()["Topics"]]


def test_a_topic_policy_lets_another_user_publish(server, iam):
    admin = boto_client("sns", server.endpoint)
    topic = admin.create_topic(Name=unique("open"))["TopicArn"]
    guest = User(server, iam)
    sns = guest.client("sns")
    # The default topic policy grants only to the owner's services (AWS:SourceOwner).
    assert refused(sns.publish, TopicArn=topic, Message="m") == ("AuthorizationError", 403, guest.denied("SNS:Publish", topic))
    topic_policy = json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": guest.arn}, "Action": "SNS:Publish", "Resource": topic}],
    })
    admin.set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=topic_policy)
    assert sns.publish(TopicArn=topic, Message="m")["MessageId"]
    assert refused(sns.get_topic_attributes, TopicArn=topic) == (
        "AuthorizationError", 403, guest.denied("SNS:GetTopicAttributes", topic))


# ---- EventBridge ----------------------------------------------------------------------


def test_eventbridge_rules_and_buses(server, iam):
    admin = boto_client("events", server.endpoint)
    bus = unique("orders")
    bus_arn = admin.create_event_bus(Name=bus)["EventBusArn"]
    prefix = unique("team")
    rules = f"arn:aws:events:{REGION}:{ACCOUNT}:rule"
    user = User(server, iam, policy(
        allow(["events:PutRule", "events:DescribeRule"], f"{rules}/{prefix}-*"),
        allow("events:PutEvents", f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default"),
    ))
    events = user.client("events")
    events.put_rule(Name=f"{prefix}-nightly", ScheduleExpression="rate(1 day)")
    assert events.describe_rule(Name=f"{prefix}-nightly")["Arn"] == f"{rules}/{prefix}-nightly"
    assert events.put_events(Entries=[{"Source": "app", "DetailType": "d", "Detail": "{}"}])["FailedEntryCount"] == 0

    other = unique("other")
    # EventBridge answers AccessDeniedException with 400, as the awsJson services do.
    assert refused(events.put_rule, Name=other, ScheduleExpression="rate(1 day)") == (
        "AccessDeniedException", 400, user.denied("events:PutRule", f"{rules}/{other}"))
    # A rule on another bus is rule/<bus>/<name>.
    assert refused(events.put_rule, Name=f"{prefix}-x", EventBusName=bus, EventPattern='{"source":["a"]}') == (
        "AccessDeniedException", 400, user.denied("events:PutRule", f"{rules}/{bus}/{prefix}-x"))
    assert refused(events.put_events, Entries=[{"Source": "app", "DetailType": "d", "Detail": "{}", "EventBusName": bus}]) == (
        "AccessDeniedException", 400, user.denied("events:PutEvents", bus_arn))
    assert refused(events.list_rules) == ("AccessDeniedException", 400, user.denied("events:ListRules"))
    assert other not in [r["Name"] for r in admin.list_rules()["Rules"]]


# ---- CloudWatch Logs ------------------------------------------------------------------


def test_logs_groups_and_streams(server, iam):
    group = f"/aws/lambda/{unique('fn')}"
    other = f"/aws/lambda/{unique('other')}"
    base = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group"
    user = User(server, iam, policy(allow(["logs:DescribeLogStreams", "logs:GetLogEvents"], f"{base}:{group}:*")))
    logs = user.client("logs")
    # Allowed: the group does not exist, and the service says so.
    assert refused(logs.describe_log_streams, logGroupName=group)[:2] == ("ResourceNotFoundException", 400)
    assert refused(logs.get_log_events, logGroupName=group, logStreamName="s")[:2] == ("ResourceNotFoundException", 400)
    # Denied, in the resource forms AWS's messages show.
    assert refused(logs.describe_log_streams, logGroupName=other) == (
        "AccessDeniedException", 400, user.denied("logs:DescribeLogStreams", f"{base}:{other}:log-stream:"))
    assert refused(logs.get_log_events, logGroupName=other, logStreamName="s1") == (
        "AccessDeniedException", 400, user.denied("logs:GetLogEvents", f"{base}:{other}:log-stream:s1"))
    assert refused(logs.filter_log_events, logGroupName=group) == (
        "AccessDeniedException", 400, user.denied("logs:FilterLogEvents", f"{base}:{group}:log-stream:"))
    assert refused(logs.describe_log_groups) == (
        "AccessDeniedException", 400, user.denied("logs:DescribeLogGroups", f"{base}::log-stream:"))


# ---- KMS ------------------------------------------------------------------------------


def raw_body(client, operation):
    """Keeps the raw body of `operation`'s answers (to see the JSON member names)."""
    seen = []
    client.meta.events.register(f"after-call.kms.{operation}", lambda http_response, **_: seen.append(http_response.content))
    return seen


def test_kms_keys_by_id_and_alias_and_the_words_of_a_denial(server, iam):
    admin = boto_client("kms", server.endpoint)
    key = admin.create_key(Description="authz")["KeyMetadata"]
    alias = f"alias/{unique('app')}"
    admin.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    user = User(server, iam, policy(allow(["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"], key["Arn"])))
    kms = user.client("kms")

    # An alias stands for its key: the key's ARN is what the policy names.
    blob = kms.encrypt(KeyId=alias, Plaintext=b"secret")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"secret"
    assert kms.describe_key(KeyId=alias)["KeyMetadata"]["Arn"] == key["Arn"]

    bodies = raw_body(kms, "GenerateDataKey")
    message = user.denied("kms:GenerateDataKey", key["Arn"])
    assert refused(kms.generate_data_key, KeyId=alias, KeySpec="AES_256") == ("AccessDeniedException", 400, message)
    # KMS's body says `Message`, not `message`.
    assert json.loads(bodies[-1]) == {"__type": "AccessDeniedException", "Message": message}
    assert refused(kms.list_keys) == ("AccessDeniedException", 400, user.denied("kms:ListKeys"))
    assert refused(kms.disable_key, KeyId=key["KeyId"])[:2] == ("AccessDeniedException", 400)
    assert admin.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"
    # The default key policy delegates to IAM by naming the account.
    default = json.loads(admin.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])
    assert default["Statement"] == [{"Sid": "Enable IAM User Permissions", "Effect": "Allow",
                                     "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"}]


def test_a_key_policy_without_the_account_keeps_out_even_an_iam_allowed_user(server, iam):
    admin = boto_client("kms", server.endpoint)
    everything = User(server, iam, policy(allow("kms:*")))
    named = User(server, iam)  # no identity policy: the key policy alone lets it in
    use_it = {"Effect": "Allow", "Principal": {"AWS": named.arn}, "Action": ["kms:DescribeKey", "kms:Encrypt"], "Resource": "*"}
    # The account may administer the policy (through IAM), but not use the key.
    administer = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                  "Action": ["kms:GetKeyPolicy", "kms:PutKeyPolicy"], "Resource": "*"}
    key_policy = json.dumps({"Version": "2012-10-17", "Statement": [use_it, administer]})
    key = admin.create_key(Policy=key_policy)["KeyMetadata"]
    assert json.loads(admin.get_key_policy(KeyId=key["KeyId"])["Policy"]) == json.loads(key_policy)
    # The account's root is held to the key policy too, as on AWS.
    assert refused(admin.encrypt, KeyId=key["KeyId"], Plaintext=b"x") == (
        "AccessDeniedException", 400,
        f"User: arn:aws:iam::{ACCOUNT}:root is not authorized to perform: kms:Encrypt on resource: {key['Arn']} "
        "because no resource-based policy allows the kms:Encrypt action")

    assert refused(everything.client("kms").describe_key, KeyId=key["KeyId"]) == (
        "AccessDeniedException", 400,
        everything.denied("kms:DescribeKey", key["Arn"], "because no resource-based policy allows the {action} action"))
    assert named.client("kms").describe_key(KeyId=key["KeyId"])["KeyMetadata"]["Arn"] == key["Arn"]
    assert named.client("kms").encrypt(KeyId=key["KeyId"], Plaintext=b"x")["KeyId"] == key["Arn"]
    # What the key policy does not grant it, nothing grants: the key policy is the one to blame.
    assert refused(named.client("kms").disable_key, KeyId=key["KeyId"]) == (
        "AccessDeniedException", 400, named.denied("kms:DisableKey", key["Arn"], "because no resource-based policy allows the {action} action"))
    # Giving the account back in the key policy hands the decision to IAM again.
    admin.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"}],
    }))
    assert everything.client("kms").describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyId"] == key["KeyId"]
    # A key policy that is not a policy is refused.
    assert refused(admin.put_key_policy, KeyId=key["KeyId"], PolicyName="default", Policy="{}")[:2] == (
        "MalformedPolicyDocumentException", 400)
    # So is one that would lock its caller out of the key's policy, unless the caller says so
    # (BypassPolicyLockoutSafetyCheck); then nobody but the named user gets in.
    lockout = ("MalformedPolicyDocumentException", 400, "The new key policy will not allow you to update the key policy in the future.")
    locked = json.dumps({"Version": "2012-10-17", "Statement": [use_it]})
    assert refused(admin.put_key_policy, KeyId=key["KeyId"], PolicyName="default", Policy=locked) == lockout
    assert refused(admin.create_key, Policy=locked) == lockout
    sealed = admin.create_key(Policy=locked, BypassPolicyLockoutSafetyCheck=True)["KeyMetadata"]
    assert refused(admin.get_key_policy, KeyId=sealed["KeyId"], PolicyName="default")[:2] == ("AccessDeniedException", 400)
    assert named.client("kms").describe_key(KeyId=sealed["KeyId"])["KeyMetadata"]["Arn"] == sealed["Arn"]


# ---- IAM and STS ----------------------------------------------------------------------


def test_iam_users_and_roles_by_path_and_sts(server, iam):
    other = unique("colleague")
    iam.create_user(UserName=other, Path="/team/")
    user = User(server, iam, policy(
        allow("iam:GetUser", f"arn:aws:iam::{ACCOUNT}:user/me/*"),
        allow("sts:AssumeRole"),
    ), path="/me/")
    client = user.client("iam")
    # No user name: the call is on the caller, whose path the policy names.
    assert client.get_user()["User"]["Arn"] == user.arn
    # Denied on the other user, named with its path.
    assert refused(client.get_user, UserName=other) == (
        "AccessDenied", 403, user.denied("iam:GetUser", f"arn:aws:iam::{ACCOUNT}:user/team/{other}"))
    assert refused(client.list_users) == ("AccessDenied", 403, user.denied("iam:ListUsers"))
    assert refused(client.create_user, UserName=unique("nope"))[:2] == ("AccessDenied", 403)

    sts = user.client("sts")
    # GetCallerIdentity needs no permission.
    assert sts.get_caller_identity()["Arn"] == user.arn
    # A role whose trust policy names neither the user nor the account: the user's own
    # sts:AssumeRole allow is not enough. STS's message gives no reason.
    trust = {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    role = iam.create_role(RoleName=unique("svc"), Path="/svc/", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    assert refused(sts.assume_role, RoleArn=role["Arn"], RoleSessionName="s1") == (
        "AccessDenied", 403, f"User: {user.arn} is not authorized to perform: sts:AssumeRole on resource: {role['Arn']}")
    # Naming the account delegates to the user's policy.
    trust["Statement"][0]["Principal"] = {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    iam.update_assume_role_policy(RoleName=role["RoleName"], PolicyDocument=json.dumps(trust))
    assert sts.assume_role(RoleArn=role["Arn"], RoleSessionName="s1")["AssumedRoleUser"]["Arn"].endswith(f"/{role['RoleName']}/s1")
    # ... and a user without that allow stays out.
    bare = User(server, iam)
    assert refused(bare.client("sts").assume_role, RoleArn=role["Arn"], RoleSessionName="s1") == (
        "AccessDenied", 403, f"User: {bare.arn} is not authorized to perform: sts:AssumeRole on resource: {role['Arn']}")


# ---- API Gateway V2 management --------------------------------------------------------


def test_api_gateway_methods_on_paths(server, iam):
    admin = boto_client("apigatewayv2", server.endpoint)
    api = admin.create_api(Name=unique("api"), ProtocolType="HTTP")["ApiId"]
    base = f"arn:aws:apigateway:{REGION}::"
    user = User(server, iam, policy(allow("apigateway:GET", f"{base}/apis"), allow("apigateway:GET", f"{base}/apis/{api}/*")))
    gw = user.client("apigatewayv2")
    assert api in [a["ApiId"] for a in gw.get_apis()["Items"]]
    assert gw.get_routes(ApiId=api)["Items"] == []
    assert refused(gw.get_api, ApiId=api) == ("AccessDeniedException", 403, user.denied("apigateway:GET", f"{base}/apis/{api}"))
    assert refused(gw.create_api, Name="x", ProtocolType="HTTP") == (
        "AccessDeniedException", 403, user.denied("apigateway:POST", f"{base}/apis"))
    assert refused(gw.delete_api, ApiId=api) == ("AccessDeniedException", 403, user.denied("apigateway:DELETE", f"{base}/apis/{api}"))
    assert admin.get_api(ApiId=api)["ApiId"] == api


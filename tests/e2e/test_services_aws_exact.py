"""SQS, SNS, EventBridge and CloudWatch Logs answers exactly as AWS gives them: codes, HTTP
statuses, message texts and default attributes as recorded against AWS in LocalStack's
validated snapshot files (tests/aws/services/{sqs,sns,events,logs}/*.snapshot.json; the test
names are given beside each case)."""

from __future__ import annotations

import json
import time

import pytest
from botocore.exceptions import ClientError

from helpers import ACCOUNT, REGION, client_error, events_client, sns_client, sqs_client, unique, wait_for


def _error(call) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as ei:
        call()
    return client_error(ei)


def _check(cases):
    wrong = [(got, want) for call, want in cases if (got := _error(call)) != want]
    assert wrong == [], "\n".join(f"got  {g}\nwant {w}" for g, w in wrong)


def test_sqs_defaults(server):
    """test_set_queue_attributes_default_values, test_fifo_set_content_based_deduplication_strategy."""
    sqs = sqs_client(server.endpoint)
    q = sqs.create_queue(QueueName=unique("defaults"))["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["All"])["Attributes"]
    assert sorted(attrs) == sorted([
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed", "ApproximateNumberOfMessagesNotVisible",
        "CreatedTimestamp", "LastModifiedTimestamp", "DelaySeconds", "MaximumMessageSize", "MessageRetentionPeriod",
        "QueueArn", "ReceiveMessageWaitTimeSeconds", "SqsManagedSseEnabled", "VisibilityTimeout"])
    assert (attrs["MaximumMessageSize"], attrs["MessageRetentionPeriod"], attrs["VisibilityTimeout"], attrs["SqsManagedSseEnabled"]) == (
        "1048576", "345600", "30", "true")
    f = sqs.create_queue(QueueName=unique("defaults") + ".fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=f, AttributeNames=["All"])["Attributes"]
    assert {k: attrs.get(k) for k in ("FifoQueue", "ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit")} == {
        "FifoQueue": "true", "ContentBasedDeduplication": "false", "DeduplicationScope": "queue", "FifoThroughputLimit": "perQueue"}


def test_sqs_errors(server):
    sqs = sqs_client(server.endpoint, validate=False)
    query = sqs_client(server.endpoint, validate=False, protocol="query")
    q = sqs.create_queue(QueueName=unique("errs"))["QueueUrl"]
    f = sqs.create_queue(QueueName=unique("errs") + ".fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
    name = q.rsplit("/", 1)[1]
    sqs.purge_queue(QueueUrl=q)
    cases = [
        # test_non_existent_queue
        (lambda: sqs.get_queue_url(QueueName=unique("nope")),
         ("AWS.SimpleQueueService.NonExistentQueue", 400, "The specified queue does not exist.")),
        (lambda: query.get_queue_url(QueueName=unique("nope")),
         ("AWS.SimpleQueueService.NonExistentQueue", 400, "The specified queue does not exist for this wsdl version.")),
        # test_send_oversized_message
        (lambda: sqs.send_message(QueueUrl=q, MessageBody="x" * (1048576 + 1)),
         ("InvalidParameterValue", 400, "One or more parameters are invalid. Reason: Message must be shorter than 1048576 bytes.")),
        # test_send_empty_message
        (lambda: sqs.send_message(QueueUrl=q, MessageBody=""),
         ("MissingParameter", 400, "The request must contain the parameter MessageBody.")),
        # test_posting_to_fifo_requires_deduplicationid_group_id / missing-parameter
        (lambda: sqs.send_message(QueueUrl=f, MessageBody="x"),
         ("MissingParameter", 400, "The request must contain the parameter MessageGroupId.")),
        # test_send_receive_max_number_of_messages, test_send_receive_wait_time_seconds
        (lambda: sqs.receive_message(QueueUrl=q, MaxNumberOfMessages=11),
         ("InvalidParameterValue", 400, "Value 11 for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.")),
        (lambda: sqs.receive_message(QueueUrl=q, WaitTimeSeconds=21),
         ("InvalidParameterValue", 400, "Value 21 for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.")),
        # test_too_many_entries_in_batch_request
        (lambda: sqs.send_message_batch(QueueUrl=q, Entries=[{"Id": str(i), "MessageBody": "x"} for i in range(20)]),
         ("AWS.SimpleQueueService.TooManyEntriesInBatchRequest", 400, "Maximum number of entries per request are 10. You have sent 20.")),
        # test_invalid_batch_id
        (lambda: sqs.send_message_batch(QueueUrl=q, Entries=[{"Id": "invalid:id", "MessageBody": "x"}]),
         ("AWS.SimpleQueueService.InvalidBatchEntryId", 400,
          "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.")),
        # test_successive_purge_calls_fail
        (lambda: sqs.purge_queue(QueueUrl=q),
         ("AWS.SimpleQueueService.PurgeQueueInProgress", 403, f"Only one PurgeQueue operation on {name} is allowed every 60 seconds.")),
        # test_create_standard_queue_with_fifo_attribute_raises_error
        (lambda: sqs.create_queue(QueueName=unique("std"), Attributes={"FifoQueue": "false"}),
         ("InvalidAttributeName", 400, "Unknown Attribute FifoQueue.")),
    ]
    _check(cases)
    # test_send_batch_missing_message_group_id_for_fifo_queue: a batch entry fails alone.
    r = sqs.send_message_batch(QueueUrl=f, Entries=[{"Id": "a", "MessageBody": "x"}])
    assert [(e["Code"], e["Message"], e["SenderFault"]) for e in r["Failed"]] == [
        ("InvalidParameterValue", "The request must contain the parameter MessageGroupId.", True)]


def test_sns_errors(server):
    sns = sns_client(server.endpoint, validate=False)
    topic = sns.create_topic(Name=unique("t"))["TopicArn"]
    missing = f"arn:aws:sns:{REGION}:{ACCOUNT}:{unique('nope')}"
    cases = [
        # test_create_topic_name_constraints
        (lambda: sns.create_topic(Name="bad:name"), ("InvalidParameter", 400, "Invalid parameter: Topic Name")),
        (lambda: sns.create_topic(Name="x" * 257), ("InvalidParameter", 400, "Invalid parameter: Topic Name")),
        (lambda: sns.create_topic(Name="plain.fifo"), ("InvalidParameter", 400, "Invalid parameter: Topic Name")),
        # test_unknown_topic_publish
        (lambda: sns.publish(TopicArn=missing, Message="m"), ("NotFound", 404, "Topic does not exist")),
        # test_empty_sns_message
        (lambda: sns.publish(TopicArn=topic, Message=""), ("InvalidParameter", 400, "Invalid parameter: Empty message")),
        # test_publish_batch_exceptions
        (lambda: sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=[{"Id": str(i), "Message": "m"} for i in range(11)]),
         ("TooManyEntriesInBatchRequest", 400, "The batch request contains more entries than permissible.")),
        (lambda: sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=[{"Id": "a", "Message": "m"}, {"Id": "a", "Message": "m"}]),
         ("BatchEntryIdsNotDistinct", 400, "Two or more batch entries in the request have the same Id.")),
        # test_subscribe_with_invalid_protocol
        (lambda: sns.subscribe(TopicArn=topic, Protocol="test-protocol", Endpoint="x"),
         ("InvalidParameter", 400, "Invalid parameter: Amazon SNS does not support this protocol string: test-protocol")),
        # test_publish_with_empty_subject, test_message_structure_json_exc
        (lambda: sns.publish(TopicArn=topic, Message="m", Subject=""), ("InvalidParameter", 400, "Invalid parameter: Subject")),
        (lambda: sns.publish(TopicArn=topic, Message=json.dumps({"sqs": "x"}), MessageStructure="json"),
         ("InvalidParameter", 400, "Invalid parameter: Message Structure - No default entry in JSON message body")),
        (lambda: sns.publish(TopicArn=topic, Message="{not json", MessageStructure="json"),
         ("InvalidParameter", 400, "Invalid parameter: Message Structure - JSON message body failed to parse")),
        # test_publish_batch_invalid_entry_id
        (lambda: sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=[{"Id": "message.id", "Message": "m"}]),
         ("InvalidBatchEntryId", 400, "The Id of a batch entry in the batch request contains an impermissible character: message.id")),
        # test_subscribe_to_sqs_with_queue_url
        (lambda: sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint="http://localhost/000000000000/q"),
         ("InvalidParameter", 400, "Invalid parameter: SQS endpoint ARN")),
        # test_create_subscriptions_with_attributes
        (lambda: sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=f"arn:aws:sqs:{REGION}:{ACCOUNT}:q",
                               Attributes={"RawMessageDelivery": "wrongvalue"}),
         ("InvalidParameter", 400, "Invalid parameter: Attributes Reason: RawMessageDelivery: Invalid value [wrongvalue]. Must be true or false.")),
        # test_empty_or_wrong_message_attributes
        (lambda: sns.publish(TopicArn=topic, Message="m", MessageAttributes={"attr1": {"DataType": "String", "StringValue": ""}}),
         ("ParameterValueInvalid", 400,
          "The message attribute 'attr1' must contain non-empty message attribute value for message attribute type 'String'.")),
        # test_not_found_error_on_set_subscription_attributes
        (lambda: sns.get_subscription_attributes(SubscriptionArn=f"{topic}:00000000-0000-0000-0000-000000000000"),
         ("NotFound", 404, "Subscription does not exist")),
    ]
    _check(cases)


def test_eventbridge(server):
    ev = events_client(server.endpoint, validate=False)
    # test_event_pattern_source: an event without `resources` is accepted.
    event = {"id": "1", "source": "s", "detail-type": "d", "account": ACCOUNT, "region": REGION, "time": "2024-01-01T00:00:00Z"}
    assert ev.test_event_pattern(EventPattern=json.dumps({"source": ["s"]}), Event=json.dumps(event))["Result"] is True
    bus = unique("bus")
    ev.create_event_bus(Name=bus)
    rule = unique("r")
    ev.put_rule(Name=rule, ScheduleExpression="rate(10 minutes)")
    invalid = "Parameter ScheduleExpression is not valid."
    cases = [
        # TestScheduleRate::test_put_rule_with_invalid_schedule_rate
        *[(lambda e=e: ev.put_rule(Name=unique("r"), ScheduleExpression=e), ("ValidationException", 400, invalid))
          for e in ("rate( 10 minutes )", " rate(10 minutes)", "rate(1 minutes)", "rate(10 minute)", "rate(10 MINUTES)",
                    "rate(0 minutes)", "rate(10 seconds)", "cron(0 1 * * * *)", "cron(INVALID)")],
        # test_describe_nonexistent_rule
        (lambda: ev.describe_rule(Name="nope"), ("ResourceNotFoundException", 400, "Rule nope does not exist on EventBus default.")),
        # test_describe_delete_not_existing_event_bus, test_create_multiple_event_buses_same_name, test_delete_default_event_bus
        (lambda: ev.describe_event_bus(Name="nope-bus"), ("ResourceNotFoundException", 400, "Event bus nope-bus does not exist.")),
        (lambda: ev.create_event_bus(Name=bus), ("ResourceAlreadyExistsException", 400, f"Event bus {bus} already exists.")),
        (lambda: ev.delete_event_bus(Name="default"), ("ValidationException", 400, "Cannot delete event bus default.")),
        # test_add_exceed_fife_targets_per_rule
        (lambda: ev.put_targets(Rule=rule, Targets=[{"Id": str(i), "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:q"} for i in range(7)]),
         ("LimitExceededException", 400, "The requested resource exceeds the maximum number allowed.")),
    ]
    _check(cases)
    # DeleteEventBus on a missing bus succeeds.
    ev.delete_event_bus(Name=unique("never"))


def test_logs_errors(server, logs, make_fn, lam):
    # logGroupNamePattern: a substring of the name.
    fn = make_fn("python3.11", {"h.py": "def handler(e, c):\n    print('x')\n"}, "h.handler")
    lam.invoke(FunctionName=fn.name, Payload=b"{}")
    # The log writer stores the invocation's lines after it answers (CloudWatch Logs is
    # eventually consistent too): the group appears soon after, not with the answer.
    def groups():
        return [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePattern=fn.name[-12:])["logGroups"]]

    names = wait_for(groups, timeout=15, what="the function's log group")
    assert names == [f"/aws/lambda/{fn.name}"]
    missing = unique("/aws/lambda/nope")
    cases = [
        # TestLogsEventsErrors::test_resource_does_not_exist
        (lambda: logs.get_log_events(logGroupName=missing, logStreamName="s"),
         ("ResourceNotFoundException", 400, "The specified log group does not exist.")),
        # test_get_log_events_limit_validation
        (lambda: logs.filter_log_events(logGroupName=missing, limit=10001),
         ("InvalidParameterException", 400,
          "1 validation error detected: Value '10001' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 10000")),
        # test_describe_log_groups_prefix_and_pattern_error
        (lambda: logs.describe_log_groups(logGroupNamePrefix="/aws", logGroupNamePattern="lambda"),
         ("InvalidParameterException", 400, "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.")),
        # test_describe_log_streams_with_log_group_identifier
        (lambda: logs.describe_log_streams(logGroupName=missing, logGroupIdentifier=f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{missing}"),
         ("ValidationException", 400, "LogGroup name and LogGroup ARN are mutually exclusive parameters.")),
    ]
    _check(cases)

//! Test-event templates: the sample events of AWS's Lambda console, one per event source,
//! each shaped as that service sends it (see `aws_lambda_events`).

const CLOUDWATCH_LOGS_DATA =
  "H4sIAAAAAAACA6VQTUvDQBT8K2HxGMnb77S3gLEXRUhyK0G2zbYs5Ivs1iql/92Xaj0UPfl4lzczzAzvRDrrvdnb6mO0ZEkesip7fc7LMlvlJCbDsbcTwpRxIZVOF0AZwu2wX03DYUQmMUeftKbbNCax76YbW/slKMNkTYcKBkwlQOdd3z1lVV5WNfwYms22sbvbGy38YeO3kxuDG/pH1wY7ebJck++M+90FIvUlK3+zfZjpE3ENRnK94FwCS4WkwIQESpWQDIDjRSXlqRKKp6Ao1ZxrQJUGoQTGBocPCZhBllQrzZhUME98fRTar/OieCnqaOcmH6KA+uhKnuP/VZB/V6C/VfB2O/TNTYf6/AmfBqzn1wEAAA==";

export interface Template {
  id: string;
  name: string;
  event: unknown;
}

const now = "2026-01-01T00:00:00Z";

export const TEMPLATES: Template[] = [
  { id: "hello-world", name: "Hello world", event: { key1: "value1", key2: "value2", key3: "value3" } },
  {
    id: "apigateway-http",
    name: "API Gateway HTTP API (payload 2.0)",
    event: {
      version: "2.0",
      routeKey: "GET /items/{id}",
      rawPath: "/items/42",
      rawQueryString: "verbose=true",
      headers: { accept: "application/json", host: "example.execute-api.us-east-1.amazonaws.com", "user-agent": "curl/8.0" },
      queryStringParameters: { verbose: "true" },
      pathParameters: { id: "42" },
      requestContext: {
        accountId: "123456789012",
        apiId: "example",
        domainName: "example.execute-api.us-east-1.amazonaws.com",
        domainPrefix: "example",
        http: { method: "GET", path: "/items/42", protocol: "HTTP/1.1", sourceIp: "192.0.2.1", userAgent: "curl/8.0" },
        requestId: "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
        routeKey: "GET /items/{id}",
        stage: "$default",
        time: "01/Jan/2026:00:00:00 +0000",
        timeEpoch: 1767225600000,
      },
      isBase64Encoded: false,
    },
  },
  {
    id: "apigateway-rest",
    name: "API Gateway REST API (proxy)",
    event: {
      resource: "/{proxy+}",
      path: "/path/to/resource",
      httpMethod: "POST",
      headers: { Accept: "application/json", "Content-Type": "application/json", Host: "example.execute-api.us-east-1.amazonaws.com" },
      multiValueHeaders: { Accept: ["application/json"] },
      queryStringParameters: { foo: "bar" },
      multiValueQueryStringParameters: { foo: ["bar"] },
      pathParameters: { proxy: "path/to/resource" },
      stageVariables: null,
      requestContext: {
        accountId: "123456789012",
        resourceId: "123456",
        stage: "prod",
        requestId: "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
        identity: { sourceIp: "192.0.2.1", userAgent: "curl/8.0" },
        resourcePath: "/{proxy+}",
        httpMethod: "POST",
        apiId: "1234567890",
        protocol: "HTTP/1.1",
      },
      body: '{"test":"body"}',
      isBase64Encoded: false,
    },
  },
  {
    id: "function-url",
    name: "Function URL",
    event: {
      version: "2.0",
      routeKey: "$default",
      rawPath: "/my/path",
      rawQueryString: "parameter1=value1",
      headers: { "content-type": "application/json", host: "abcdefg.lambda-url.us-east-1.on.aws" },
      queryStringParameters: { parameter1: "value1" },
      requestContext: {
        accountId: "anonymous",
        apiId: "abcdefg",
        domainName: "abcdefg.lambda-url.us-east-1.on.aws",
        domainPrefix: "abcdefg",
        http: { method: "POST", path: "/my/path", protocol: "HTTP/1.1", sourceIp: "192.0.2.1", userAgent: "agent" },
        requestId: "id",
        routeKey: "$default",
        stage: "$default",
        time: "01/Jan/2026:00:00:00 +0000",
        timeEpoch: 1767225600000,
      },
      body: '{"hello":"world"}',
      isBase64Encoded: false,
    },
  },
  {
    id: "sqs",
    name: "SQS receive message",
    event: {
      Records: [
        {
          messageId: "059f36b4-87a3-44ab-83d2-661975830a7d",
          receiptHandle: "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
          body: "test",
          attributes: {
            ApproximateReceiveCount: "1",
            SentTimestamp: "1767225600000",
            SenderId: "AIDAIENQZJOLO23YVJ4VO",
            ApproximateFirstReceiveTimestamp: "1767225600001",
          },
          messageAttributes: {},
          md5OfBody: "098f6bcd4621d373cade4e832627b4f6",
          eventSource: "aws:sqs",
          eventSourceARN: "arn:aws:sqs:us-east-1:123456789012:my-queue",
          awsRegion: "us-east-1",
        },
      ],
    },
  },
  {
    id: "sns",
    name: "SNS notification",
    event: {
      Records: [
        {
          EventVersion: "1.0",
          EventSubscriptionArn: "arn:aws:sns:us-east-1:123456789012:sns-lambda:21be56ed-a058-49f5-8c98-aedd2564c486",
          EventSource: "aws:sns",
          Sns: {
            SignatureVersion: "1",
            Timestamp: now,
            Signature: "tcc6faL2yUC6dgZdmrwh1Y4cGa/ebXEkAi6RibDsvpi+tE/1+82j...65r==",
            SigningCertUrl: "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-ac565b8b1a6c5d002d285f9598aa1d9b.pem",
            MessageId: "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
            Message: "Hello from SNS!",
            MessageAttributes: { Test: { Type: "String", Value: "TestString" } },
            Type: "Notification",
            UnsubscribeUrl: "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
            TopicArn: "arn:aws:sns:us-east-1:123456789012:sns-lambda",
            Subject: "TestInvoke",
          },
        },
      ],
    },
  },
  {
    id: "s3-put",
    name: "S3 put",
    event: {
      Records: [
        {
          eventVersion: "2.1",
          eventSource: "aws:s3",
          awsRegion: "us-east-1",
          eventTime: now,
          eventName: "ObjectCreated:Put",
          userIdentity: { principalId: "EXAMPLE" },
          requestParameters: { sourceIPAddress: "127.0.0.1" },
          responseElements: { "x-amz-request-id": "EXAMPLE123456789", "x-amz-id-2": "EXAMPLE123/5678abcdefghijklambdaisawesome/mnopqrstuvwxyzABCDEFGH" },
          s3: {
            s3SchemaVersion: "1.0",
            configurationId: "testConfigRule",
            bucket: { name: "example-bucket", ownerIdentity: { principalId: "EXAMPLE" }, arn: "arn:aws:s3:::example-bucket" },
            object: { key: "test/key", size: 1024, eTag: "0123456789abcdef0123456789abcdef", sequencer: "0A1B2C3D4E5F678901" },
          },
        },
      ],
    },
  },
  {
    id: "eventbridge-schedule",
    name: "EventBridge scheduled event",
    event: {
      version: "0",
      id: "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
      "detail-type": "Scheduled Event",
      source: "aws.events",
      account: "123456789012",
      time: now,
      region: "us-east-1",
      resources: ["arn:aws:events:us-east-1:123456789012:rule/my-schedule"],
      detail: {},
    },
  },
  {
    id: "kinesis",
    name: "Kinesis get records",
    event: {
      Records: [
        {
          kinesis: {
            kinesisSchemaVersion: "1.0",
            partitionKey: "1",
            sequenceNumber: "49590338271490256608559692538361571095921575989136588898",
            data: "SGVsbG8sIHRoaXMgaXMgYSB0ZXN0Lg==",
            approximateArrivalTimestamp: 1767225600.0,
          },
          eventSource: "aws:kinesis",
          eventVersion: "1.0",
          eventID: "shardId-000000000006:49590338271490256608559692538361571095921575989136588898",
          eventName: "aws:kinesis:record",
          invokeIdentityArn: "arn:aws:iam::123456789012:role/lambda-role",
          awsRegion: "us-east-1",
          eventSourceARN: "arn:aws:kinesis:us-east-1:123456789012:stream/lambda-stream",
        },
      ],
    },
  },
  {
    id: "dynamodb-stream",
    name: "DynamoDB stream update",
    event: {
      Records: [
        {
          eventID: "1",
          eventVersion: "1.0",
          dynamodb: {
            Keys: { Id: { N: "101" } },
            NewImage: { Message: { S: "New item!" }, Id: { N: "101" } },
            StreamViewType: "NEW_AND_OLD_IMAGES",
            SequenceNumber: "111",
            SizeBytes: 26,
          },
          awsRegion: "us-east-1",
          eventName: "INSERT",
          eventSourceARN: "arn:aws:dynamodb:us-east-1:123456789012:table/ExampleTable/stream/2026-01-01T00:00:00.000",
          eventSource: "aws:dynamodb",
        },
      ],
    },
  },
  {
    id: "cloudwatch-logs",
    name: "CloudWatch Logs subscription",
    event: { awslogs: { data: CLOUDWATCH_LOGS_DATA } },
  },
];

/** A template's event as the editor shows it. */
export function templateText(id: string): string {
  const t = TEMPLATES.find((t) => t.id === id) ?? TEMPLATES[0];
  return JSON.stringify(t.event, null, 2);
}

/** Checks a test event before it is sent: Lambda takes any JSON value. */
export function parseEvent(textValue: string): { ok: true; payload: string } | { ok: false; error: string } {
  if (textValue.trim() === "") return { ok: true, payload: "{}" };
  try {
    return { ok: true, payload: JSON.stringify(JSON.parse(textValue)) };
  } catch (e) {
    return { ok: false, error: `The event is not valid JSON: ${(e as Error).message}` };
  }
}

// The administrator with the SDK for JavaScript v3: a function created, invoked both ways
// and read back; a queue created, a message sent and received; who am I; and one error of
// each protocol (rest-json, JSON 1.0 query-compatible, query XML) as the SDK surfaces it.
//
// input: {endpoint, region, credentials, functionName, role, runtime, zipFile, queueName}

import { readFileSync } from "node:fs";
import {
  LambdaClient, CreateFunctionCommand, InvokeCommand, GetFunctionConfigurationCommand, GetFunctionCommand,
  DeleteFunctionCommand, waitUntilFunctionActiveV2,
} from "@aws-sdk/client-lambda";
import {
  SQSClient, CreateQueueCommand, GetQueueUrlCommand, SendMessageCommand, ReceiveMessageCommand,
  DeleteMessageCommand, DeleteQueueCommand,
} from "@aws-sdk/client-sqs";
import { STSClient, GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import { IAMClient, GetUserCommand } from "@aws-sdk/client-iam";
import { input, config, attempt, plain, report } from "./lib.mjs";

const lambda = new LambdaClient(config(input.credentials));
const sqs = new SQSClient(config(input.credentials));
const sts = new STSClient(config(input.credentials));
const FunctionName = input.functionName;
const out = {};

out.create = await attempt(async () => plain(await lambda.send(new CreateFunctionCommand({
  FunctionName, Runtime: input.runtime, Handler: "index.handler", Role: input.role,
  Code: { ZipFile: readFileSync(input.zipFile) }, Environment: { Variables: { GREETING: "hello" } },
}))));
out.active = await attempt(async () => (await waitUntilFunctionActiveV2(
  { client: lambda, maxWaitTime: 30, minDelay: 1, maxDelay: 1 }, { FunctionName })).state);

out.invoke = await attempt(async () => {
  const r = await lambda.send(new InvokeCommand({
    FunctionName, Payload: JSON.stringify({ n: 41 }), LogType: "Tail",
  }));
  return {
    StatusCode: r.StatusCode, FunctionError: r.FunctionError ?? null, ExecutedVersion: r.ExecutedVersion,
    Payload: JSON.parse(new TextDecoder().decode(r.Payload)),
    Log: Buffer.from(r.LogResult ?? "", "base64").toString("utf8"),
  };
});
out.invokeEvent = await attempt(async () => {
  const r = await lambda.send(new InvokeCommand({ FunctionName, InvocationType: "Event", Payload: JSON.stringify({ n: 1 }) }));
  return { StatusCode: r.StatusCode, Payload: r.Payload ? new TextDecoder().decode(r.Payload) : null };
});
out.configuration = await attempt(async () => plain(await lambda.send(new GetFunctionConfigurationCommand({ FunctionName }))));
out.getFunction = await attempt(async () => plain(await lambda.send(new GetFunctionCommand({ FunctionName }))));

out.createQueue = await attempt(async () => plain(await sqs.send(new CreateQueueCommand({ QueueName: input.queueName }))));
const QueueUrl = out.createQueue.ok?.QueueUrl;
out.getQueueUrl = await attempt(async () => plain(await sqs.send(new GetQueueUrlCommand({ QueueName: input.queueName }))));
// The SQS client checks the MD5s of the body and attributes the server answers.
out.send = await attempt(async () => plain(await sqs.send(new SendMessageCommand({
  QueueUrl, MessageBody: "from the JS SDK",
  MessageAttributes: { kind: { DataType: "String", StringValue: "greeting" } },
}))));
out.receive = await attempt(async () => plain(await sqs.send(new ReceiveMessageCommand({
  QueueUrl, MaxNumberOfMessages: 1, WaitTimeSeconds: 5, MessageAttributeNames: ["All"],
}))));
const handle = out.receive.ok?.Messages?.[0]?.ReceiptHandle;
out.deleteMessage = await attempt(async () => plain(await sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: handle }))));

out.whoami = await attempt(async () => plain(await sts.send(new GetCallerIdentityCommand({}))));

const missing = `${FunctionName}-missing`;
out.missingFunction = await attempt(async () => plain(await lambda.send(new GetFunctionCommand({ FunctionName: missing }))));
out.missingQueue = await attempt(async () => plain(await sqs.send(new GetQueueUrlCommand({ QueueName: `${input.queueName}-missing` }))));
out.missingUser = await attempt(async () => plain(await new IAMClient(config(input.credentials)).send(new GetUserCommand({ UserName: missing }))));

out.deleteQueue = await attempt(async () => plain(await sqs.send(new DeleteQueueCommand({ QueueUrl }))));
out.deleteFunction = await attempt(async () => plain(await lambda.send(new DeleteFunctionCommand({ FunctionName }))));
report(out);

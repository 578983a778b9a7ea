// An IAM user with a narrow policy, made by the administrator with the JS IAM client, then
// signing with its own key: what the policy grants works, everything else is refused.
//
// input: {endpoint, region, credentials, userName, allowedFunction, otherFunction,
//         allowedQueue: {url, arn}, otherQueue: {url, arn}}

import { IAMClient, CreateUserCommand, PutUserPolicyCommand, CreateAccessKeyCommand, ListUsersCommand } from "@aws-sdk/client-iam";
import {
  LambdaClient, InvokeCommand, GetFunctionConfigurationCommand, GetFunctionCommand, ListFunctionsCommand,
} from "@aws-sdk/client-lambda";
import { SQSClient, SendMessageCommand } from "@aws-sdk/client-sqs";
import { STSClient, GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import { input, config, attempt, plain, report } from "./lib.mjs";

const iam = new IAMClient(config(input.credentials));
const UserName = input.userName;
const out = {};

out.createUser = await attempt(async () => plain(await iam.send(new CreateUserCommand({ UserName }))));
out.putPolicy = await attempt(async () => plain(await iam.send(new PutUserPolicyCommand({
  UserName, PolicyName: "narrow",
  PolicyDocument: JSON.stringify({
    Version: "2012-10-17",
    Statement: [
      { Effect: "Allow", Action: ["lambda:InvokeFunction", "lambda:GetFunctionConfiguration"], Resource: input.allowedFunction.arn },
      { Effect: "Allow", Action: "sqs:SendMessage", Resource: input.allowedQueue.arn },
    ],
  }),
}))));
out.createKey = await attempt(async () => plain(await iam.send(new CreateAccessKeyCommand({ UserName }))));
const key = out.createKey.ok.AccessKey;
const mine = { accessKeyId: key.AccessKeyId, secretAccessKey: key.SecretAccessKey };

const lambda = new LambdaClient(config(mine));
const sqs = new SQSClient(config(mine));
const invoke = (fn) => attempt(async () => {
  const r = await lambda.send(new InvokeCommand({ FunctionName: fn.name, Payload: JSON.stringify({ by: UserName }) }));
  return { StatusCode: r.StatusCode, Payload: JSON.parse(new TextDecoder().decode(r.Payload)) };
});

out.whoami = await attempt(async () => plain(await new STSClient(config(mine)).send(new GetCallerIdentityCommand({}))));
out.invokeAllowed = await invoke(input.allowedFunction);
out.configurationAllowed = await attempt(async () => plain(await lambda.send(
  new GetFunctionConfigurationCommand({ FunctionName: input.allowedFunction.name }))));
out.invokeOther = await invoke(input.otherFunction);
out.getFunction = await attempt(async () => plain(await lambda.send(new GetFunctionCommand({ FunctionName: input.allowedFunction.name }))));
out.listFunctions = await attempt(async () => plain(await lambda.send(new ListFunctionsCommand({}))));
out.sendAllowed = await attempt(async () => plain(await sqs.send(new SendMessageCommand({ QueueUrl: input.allowedQueue.url, MessageBody: "by the user" }))));
out.sendOther = await attempt(async () => plain(await sqs.send(new SendMessageCommand({ QueueUrl: input.otherQueue.url, MessageBody: "by the user" }))));
out.listUsers = await attempt(async () => plain(await new IAMClient(config(mine)).send(new ListUsersCommand({}))));
report(out);

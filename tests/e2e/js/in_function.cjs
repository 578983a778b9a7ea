// A Node function (handler index.handler) that uses the AWS SDK for JavaScript v3 from its
// layer (/opt/nodejs/node_modules) as any function on AWS would: no keys, no endpoint, no
// region in the code. The SDK finds the role's credentials, AWS_REGION and
// AWS_ENDPOINT_URL in the environment. It reports each call's result or error.
//
// event: {allowedQueue, otherQueue (names), outsideUrl (the allowed queue's URL as made outside), body}

const { SQSClient, GetQueueUrlCommand, SendMessageCommand } = require("@aws-sdk/client-sqs");
const { STSClient, GetCallerIdentityCommand } = require("@aws-sdk/client-sts");

const sqs = new SQSClient({ maxAttempts: 1 });
const sts = new STSClient({ maxAttempts: 1 });

async function attempt(call) {
  try {
    return { ok: await call() };
  } catch (err) {
    return { error: { name: err.name, message: err.message, status: err.$metadata?.httpStatusCode ?? null } };
  }
}

exports.handler = async (event) => {
  const out = {
    endpoint: process.env.AWS_ENDPOINT_URL,
    keyInEnvironment: (process.env.AWS_ACCESS_KEY_ID || "").slice(0, 4),
    whoami: await attempt(async () => (await sts.send(new GetCallerIdentityCommand({}))).Arn),
    urlAllowed: await attempt(async () => (await sqs.send(new GetQueueUrlCommand({ QueueName: event.allowedQueue }))).QueueUrl),
    urlOther: await attempt(async () => (await sqs.send(new GetQueueUrlCommand({ QueueName: event.otherQueue }))).QueueUrl),
  };
  const allowedUrl = out.urlAllowed.ok;
  if (!allowedUrl) return out;
  // The other queue's URL, though the role may not ask for it: the same place, another name.
  const otherUrl = allowedUrl.slice(0, allowedUrl.lastIndexOf("/") + 1) + event.otherQueue;
  const send = (QueueUrl, MessageBody) => attempt(async () => (await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody }))).MessageId);
  out.sendAllowed = await send(allowedUrl, event.body);
  out.sendOther = await send(otherUrl, event.body);
  // A URL made outside: the SQS client sends to the host the URL names.
  out.sendOutsideUrl = await send(event.outsideUrl, `${event.body} (outside url)`);
  return out;
};

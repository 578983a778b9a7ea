// A Node function (handler index.handler) that uses every kind of URL Nimbus hands out from
// inside its environment, with the AWS SDK for JavaScript v3 from its layer (no endpoint,
// keys or region in the code) and Node's fetch: the URLs made on the host (in the event) and
// the ones it gets itself through the SDK. The SQS client sends to the queue URL's host.
//
// event: {functionName, queueName, functionUrl, apiEndpoint, codeLocation, queueUrl (made on the host)}

const { createHash } = require("node:crypto");
const { SQSClient, GetQueueUrlCommand, SendMessageCommand } = require("@aws-sdk/client-sqs");
const { LambdaClient, GetFunctionCommand, GetFunctionUrlConfigCommand } = require("@aws-sdk/client-lambda");

const sqs = new SQSClient({ maxAttempts: 1 });
const lambda = new LambdaClient({ maxAttempts: 1 });

async function attempt(call) {
  try {
    return { ok: await call() };
  } catch (err) {
    return { error: { name: err.name, message: err.message, code: err.cause?.code ?? err.code ?? null } };
  }
}

async function get(url) {
  try {
    const r = await fetch(url);
    const body = Buffer.from(await r.arrayBuffer());
    return { status: r.status, body: body.toString("utf8"), sha256: createHash("sha256").update(body).digest("base64") };
  } catch (err) {
    return { failed: `${err.message}: ${err.cause?.code ?? err.cause?.message ?? ""}` };
  }
}

exports.handler = async (event) => {
  const send = (QueueUrl, MessageBody) => attempt(async () => (await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody }))).MessageId);
  const inside = {
    queueUrl: (await attempt(async () => (await sqs.send(new GetQueueUrlCommand({ QueueName: event.queueName }))).QueueUrl)).ok,
    functionUrl: (await attempt(async () => (await lambda.send(new GetFunctionUrlConfigCommand({ FunctionName: event.functionName }))).FunctionUrl)).ok,
    codeLocation: (await attempt(async () => (await lambda.send(new GetFunctionCommand({ FunctionName: event.functionName }))).Code.Location)).ok,
  };
  const use = async (urls, tag) => ({
    queueUrl: await send(urls.queueUrl, `from node inside (${tag} url)`),
    functionUrl: await get(`${urls.functionUrl}from-node-inside`),
    codeLocation: await get(urls.codeLocation),
    ...(urls.apiEndpoint ? { apiEndpoint: await get(`${urls.apiEndpoint}/from-node-inside`) } : {}),
  });
  return {
    endpoint: process.env.AWS_ENDPOINT_URL,
    inside,
    usedOutside: await use(event, "outside"),
    usedInside: await use(inside, "inside"),
  };
};

// Uses every kind of URL Nimbus hands out with Node's own fetch, as an application on the
// host would: nothing but the URL (no Host header set, no name resolved by hand). The queue
// URL gets an SQS SendMessage signed with the SDK's SigV4 signer and sent with fetch.
//
// input: {functionUrl, apiEndpoint, codeLocation, queueUrl, region, credentials}

import { createHash, createHmac } from "node:crypto";
import { SignatureV4 } from "@smithy/signature-v4";
import { input, report } from "./lib.mjs";

/** SHA-256 (and its HMAC) for the signer, from node:crypto. */
class Sha256 {
  constructor(secret) {
    this.hash = secret ? createHmac("sha256", secret) : createHash("sha256");
  }
  update(data) {
    this.hash.update(data);
  }
  async digest() {
    return new Uint8Array(this.hash.digest());
  }
}

/** fetch's answer, or how it failed (a name that does not resolve is `ENOTFOUND`). */
async function get(url, init) {
  try {
    const r = await fetch(url, init);
    const body = Buffer.from(await r.arrayBuffer());
    return { status: r.status, type: r.headers.get("content-type"), body: body.toString("utf8"), sha256: createHash("sha256").update(body).digest("base64") };
  } catch (err) {
    return { failed: `${err.message}: ${err.cause?.code ?? err.cause?.message ?? ""}` };
  }
}

async function sendMessage(queueUrl, body) {
  const url = new URL(queueUrl);
  const payload = new URLSearchParams({ Action: "SendMessage", Version: "2012-11-05", MessageBody: body }).toString();
  const signer = new SignatureV4({ credentials: input.credentials, region: input.region, service: "sqs", sha256: Sha256 });
  const signed = await signer.sign({
    method: "POST",
    protocol: url.protocol,
    hostname: url.hostname,
    port: url.port ? Number(url.port) : undefined,
    path: url.pathname,
    query: {},
    headers: { host: url.host, "content-type": "application/x-www-form-urlencoded" },
    body: payload,
  });
  const { host, ...headers } = signed.headers; // fetch sends the same Host itself
  return get(queueUrl, { method: "POST", headers, body: payload });
}

report({
  functionUrl: await get(`${input.functionUrl}from-fetch?via=node`),
  apiEndpoint: await get(`${input.apiEndpoint}/from-fetch`),
  codeLocation: await get(input.codeLocation),
  queueUrl: await sendMessage(input.queueUrl, "from node fetch"),
});

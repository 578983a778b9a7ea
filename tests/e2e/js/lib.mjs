// What the e2e scripts share: their input, the clients' common configuration, and a record
// of every call (its result, or the error as the SDK surfaces it) printed as JSON for the
// Python test to check. A script never asserts: it reports, the test decides.

import { readFileSync } from "node:fs";

/** The script's input: a JSON document in the file named by the first argument. */
export const input = JSON.parse(readFileSync(process.argv[2], "utf8"));

/** Client configuration: the endpoint and region from the input, one attempt. */
export function config(credentials) {
  return { endpoint: input.endpoint, region: input.region, credentials, maxAttempts: 1 };
}

/** The error as an application sees it: its name, message, HTTP status and code fields. */
export function described(err) {
  return {
    name: err.name,
    message: err.message,
    status: err.$metadata?.httpStatusCode ?? null,
    fault: err.$fault ?? null,
    code: err.Code ?? err.code ?? null,
    type: err.Type ?? null,
  };
}

/** Runs `call`, returning {ok: value} or {error: described(err)}. */
export async function attempt(call) {
  try {
    return { ok: await call() };
  } catch (err) {
    if (!err.$metadata) throw err; // not an answer from the server: a bug in the script
    return { error: described(err) };
  }
}

/** Keeps the parts of an SDK output a test looks at: drops $metadata, decodes bytes. */
export function plain(out) {
  return JSON.parse(
    JSON.stringify(out, (k, v) => {
      if (k === "$metadata") return { httpStatusCode: v.httpStatusCode, requestId: v.requestId ?? null };
      if (v instanceof Uint8Array) return Buffer.from(v).toString("utf8");
      if (v && v.type === "Buffer" && Array.isArray(v.data)) return Buffer.from(v.data).toString("utf8");
      return v;
    }),
  );
}

/** Prints the report (the last line of stdout is what the test reads). */
export function report(doc) {
  process.stdout.write(JSON.stringify(doc) + "\n");
}

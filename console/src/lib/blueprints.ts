//! Blueprints: starter functions the Create page offers, with the managed policies their
//! execution role needs.

export interface Blueprint {
  id: string;
  name: string;
  description: string;
  runtime: string;
  handler: string;
  files: Record<string, string>;
  /** Managed policies attached to a role the console creates for it. */
  policies: string[];
}

const BASIC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole";
const SQS = "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole";

export const RUNTIMES = [
  "nodejs22.x",
  "nodejs20.x",
  "python3.13",
  "python3.12",
  "python3.11",
  "python3.10",
  "provided.al2023",
  "provided.al2",
];

export const BLUEPRINTS: Blueprint[] = [
  {
    id: "hello-node",
    name: "Hello world (Node.js)",
    description: "Returns a greeting for the event's name.",
    runtime: "nodejs22.x",
    handler: "index.handler",
    policies: [BASIC],
    files: {
      "index.mjs": `export const handler = async (event, context) => {
  console.log("event", JSON.stringify(event));
  return { greeting: \`hello \${event.name ?? "world"}\`, requestId: context.awsRequestId };
};
`,
    },
  },
  {
    id: "hello-python",
    name: "Hello world (Python)",
    description: "Returns a greeting for the event's name.",
    runtime: "python3.12",
    handler: "lambda_function.lambda_handler",
    policies: [BASIC],
    files: {
      "lambda_function.py": `import json


def lambda_handler(event, context):
    print("event", json.dumps(event))
    name = event.get("name", "world") if isinstance(event, dict) else "world"
    return {"greeting": f"hello {name}", "requestId": context.aws_request_id}
`,
    },
  },
  {
    id: "http-api",
    name: "HTTP API handler (Node.js)",
    description: "Answers API Gateway HTTP API and function URL requests (payload 2.0).",
    runtime: "nodejs22.x",
    handler: "index.handler",
    policies: [BASIC],
    files: {
      "index.mjs": `const items = new Map([["1", { id: "1", name: "first" }]]);

export const handler = async (event) => {
  const method = event.requestContext?.http?.method ?? "GET";
  const id = event.pathParameters?.id;
  if (method === "GET" && id) {
    const item = items.get(id);
    return item ? json(200, item) : json(404, { message: \`no item \${id}\` });
  }
  if (method === "GET") return json(200, [...items.values()]);
  if (method === "POST") {
    const body = JSON.parse(event.isBase64Encoded ? Buffer.from(event.body, "base64").toString() : event.body || "{}");
    const item = { id: String(items.size + 1), ...body };
    items.set(item.id, item);
    return json(201, item);
  }
  return json(405, { message: \`\${method} is not allowed\` });
};

const json = (statusCode, body) => ({
  statusCode,
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});
`,
    },
  },
  {
    id: "sqs-consumer",
    name: "SQS consumer (Python)",
    description: "Processes a queue's messages in batches and reports the ones that failed.",
    runtime: "python3.12",
    handler: "lambda_function.lambda_handler",
    policies: [BASIC, SQS],
    files: {
      "lambda_function.py": `import json


def lambda_handler(event, context):
    failures = []
    for record in event.get("Records", []):
        try:
            process(record)
        except Exception as e:
            print(f"message {record['messageId']} failed: {e}")
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


def process(record):
    body = record["body"]
    print(f"message {record['messageId']}: {body}")
    if body == "fail":
        raise ValueError("asked to fail")
`,
    },
  },
  {
    id: "scheduled",
    name: "Scheduled job (Python)",
    description: "Runs on an EventBridge schedule and logs what it did.",
    runtime: "python3.12",
    handler: "lambda_function.lambda_handler",
    policies: [BASIC],
    files: {
      "lambda_function.py": `from datetime import datetime, timezone


def lambda_handler(event, context):
    now = datetime.now(timezone.utc).isoformat()
    print(f"scheduled run at {now} for {event.get('resources', [])}")
    return {"ranAt": now}
`,
    },
  },
];

/** The role trust policy that lets Lambda assume a role. */
export const LAMBDA_TRUST = JSON.stringify({
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Principal: { Service: "lambda.amazonaws.com" }, Action: "sts:AssumeRole" }],
});

/** Function names as Lambda takes them: 1–64 letters, digits, hyphens and underscores. */
export function checkFunctionName(name: string): string | null {
  if (!name) return "Enter a name.";
  if (name.length > 64) return "At most 64 characters.";
  if (!/^[A-Za-z0-9_-]+$/.test(name)) return "Only letters, digits, hyphens (-) and underscores (_).";
  return null;
}

/** A role name for a new function, as AWS's console makes one: `<name>-role-<random>`. */
export function roleNameFor(fn: string, random: string): string {
  return `${fn.slice(0, 64 - 6 - random.length)}-role-${random}`;
}

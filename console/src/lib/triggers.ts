//! What triggers a function, read the way AWS's console reads it: event source mappings,
//! the function URL, and the resource policy's statements that let a service invoke it.

export interface Trigger {
  id: string;
  kind: string;
  label: string;
  detail: string;
  state?: string;
  /** How it is removed: an event source mapping by UUID, a policy statement by Sid, the URL. */
  remove?: { type: "mapping"; uuid: string } | { type: "statement"; sid: string } | { type: "url" };
  /** The resource that invokes it (a rule's or topic's ARN), when a statement names one. */
  source?: string;
}

const SERVICES: Record<string, string> = {
  "apigateway.amazonaws.com": "API Gateway",
  "events.amazonaws.com": "EventBridge",
  "sns.amazonaws.com": "SNS",
  "logs.amazonaws.com": "CloudWatch Logs",
  "s3.amazonaws.com": "S3",
  "sqs.amazonaws.com": "SQS",
  "scheduler.amazonaws.com": "EventBridge Scheduler",
};

/** The last part of an ARN, the way a person names the resource. */
export function arnName(arn: string): string {
  const parts = arn.split(":");
  const last = parts.slice(5).join(":");
  return last.replace(/^(rule|stream|table|function)\//, "") || arn;
}

export function serviceOfArn(arn: string): string {
  const svc = arn.split(":")[2] ?? "";
  return (
    { sqs: "SQS", kinesis: "Kinesis", dynamodb: "DynamoDB", kafka: "MSK", mq: "Amazon MQ", sns: "SNS", lambda: "Lambda", events: "EventBridge" } as Record<string, string>
  )[svc] ?? svc;
}

/** Triggers from a resource policy document (GetPolicy's `Policy`). */
export function triggersFromPolicy(policy: string | undefined): Trigger[] {
  if (!policy) return [];
  let doc: any;
  try {
    doc = JSON.parse(policy);
  } catch {
    return [];
  }
  const out: Trigger[] = [];
  for (const st of doc.Statement ?? []) {
    const principal = typeof st.Principal === "string" ? st.Principal : st.Principal?.Service;
    const service = typeof principal === "string" ? SERVICES[principal] : undefined;
    if (!service || st.Effect !== "Allow") continue;
    const source = st.Condition?.ArnLike?.["AWS:SourceArn"] ?? st.Condition?.ArnEquals?.["AWS:SourceArn"] ?? "";
    const src = Array.isArray(source) ? source[0] : source;
    out.push({
      id: `statement:${st.Sid}`,
      kind: service,
      label: src ? arnName(src) : service,
      detail: src || `any ${service} source (statement ${st.Sid})`,
      remove: { type: "statement", sid: st.Sid },
      ...(src ? { source: src } : {}),
    });
  }
  return out;
}

export interface Destinations {
  onSuccess?: string;
  onFailure?: string;
  deadLetter?: string;
  /** Whether the function has an event-invoke config (then changes update it). */
  configured?: boolean;
}

/** A statement id Lambda accepts (letters, digits, `-`, `_`; up to 100) made from names. */
export function statementId(...parts: string[]): string {
  return parts.join("-").replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 100);
}

/** Checks an EventBridge schedule expression's shape, as PutRule would. */
export function checkSchedule(expr: string): string | null {
  const e = expr.trim();
  const rate = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(e);
  if (rate) {
    const n = Number(rate[1]);
    if (n < 1) return "A rate is at least 1.";
    if ((n === 1) !== !rate[2].endsWith("s")) return n === 1 ? `Use rate(1 ${rate[2].replace(/s$/, "")}).` : `Use rate(${n} ${rate[2]}s).`;
    return null;
  }
  if (/^cron\((\S+ ){5}\S+\)$/.test(e)) return null;
  return "Use rate(5 minutes) or cron(0 12 * * ? *).";
}

import { describe, expect, it } from "vitest";
import { arnName, serviceOfArn, triggersFromPolicy } from "./triggers";

describe("triggersFromPolicy", () => {
  it("finds the services a policy lets invoke, with their sources", () => {
    const policy = JSON.stringify({
      Version: "2012-10-17",
      Statement: [
        {
          Sid: "rule",
          Effect: "Allow",
          Principal: { Service: "events.amazonaws.com" },
          Action: "lambda:InvokeFunction",
          Resource: "arn:aws:lambda:us-east-1:000000000000:function:f",
          Condition: { ArnLike: { "AWS:SourceArn": "arn:aws:events:us-east-1:000000000000:rule/nightly" } },
        },
        { Sid: "topic", Effect: "Allow", Principal: { Service: "sns.amazonaws.com" }, Action: "lambda:InvokeFunction", Resource: "x" },
        { Sid: "user", Effect: "Allow", Principal: { AWS: "arn:aws:iam::1:root" }, Action: "lambda:InvokeFunction", Resource: "x" },
      ],
    });
    expect(triggersFromPolicy(policy)).toEqual([
      {
        id: "statement:rule",
        kind: "EventBridge",
        label: "nightly",
        detail: "arn:aws:events:us-east-1:000000000000:rule/nightly",
        remove: { type: "statement", sid: "rule" },
      },
      { id: "statement:topic", kind: "SNS", label: "SNS", detail: "any SNS source (statement topic)", remove: { type: "statement", sid: "topic" } },
    ]);
  });
  it.each([[undefined], ["not json"], ['{"Statement":[]}']])("%s has none", (p) => expect(triggersFromPolicy(p)).toEqual([]));
});

describe("arn helpers", () => {
  it.each([
    ["arn:aws:sqs:us-east-1:1:jobs", "jobs", "SQS"],
    ["arn:aws:events:us-east-1:1:rule/nightly", "nightly", "EventBridge"],
    ["arn:aws:kinesis:us-east-1:1:stream/clicks", "clicks", "Kinesis"],
    ["arn:aws:sns:us-east-1:1:alerts", "alerts", "SNS"],
  ])("%s", (arn, name, svc) => {
    expect(arnName(arn)).toBe(name);
    expect(serviceOfArn(arn)).toBe(svc);
  });
});

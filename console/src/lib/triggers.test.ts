import { describe, expect, it } from "vitest";
import { arnName, checkSchedule, serviceOfArn, statementId, triggersFromPolicy } from "./triggers";

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
        source: "arn:aws:events:us-east-1:000000000000:rule/nightly",
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

describe("checkSchedule", () => {
  it.each([
    ["rate(5 minutes)", null],
    ["rate(1 hour)", null],
    ["cron(0 12 * * ? *)", null],
    ["rate(1 minutes)", "Use rate(1 minute)."],
    ["rate(5 minute)", "Use rate(5 minutes)."],
    ["rate(0 minutes)", "A rate is at least 1."],
    ["every 5 minutes", "Use rate(5 minutes) or cron(0 12 * * ? *)."],
    ["cron(0 12 * *)", "Use rate(5 minutes) or cron(0 12 * * ? *)."],
  ])("%s", (e, want) => expect(checkSchedule(e)).toBe(want));
});

describe("statementId", () => {
  it("keeps what Lambda accepts", () => expect(statementId("my.rule", "events")).toBe("my_rule-events"));
});

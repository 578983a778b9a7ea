import { describe, expect, it } from "vitest";
import { gunzipSync, strFromU8 } from "fflate";
import { TEMPLATES, parseEvent, templateText } from "./templates";

const get = (id: string) => TEMPLATES.find((t) => t.id === id)!.event as any;

describe("templates", () => {
  it("have unique ids and names", () => {
    expect(new Set(TEMPLATES.map((t) => t.id)).size).toBe(TEMPLATES.length);
    expect(new Set(TEMPLATES.map((t) => t.name)).size).toBe(TEMPLATES.length);
  });

  it.each([
    ["sqs", (e: any) => e.Records[0].eventSource, "aws:sqs"],
    ["sns", (e: any) => e.Records[0].EventSource, "aws:sns"],
    ["s3-put", (e: any) => e.Records[0].eventName, "ObjectCreated:Put"],
    ["kinesis", (e: any) => e.Records[0].eventSource, "aws:kinesis"],
    ["dynamodb-stream", (e: any) => e.Records[0].eventSource, "aws:dynamodb"],
    ["eventbridge-schedule", (e: any) => e["detail-type"], "Scheduled Event"],
    ["apigateway-http", (e: any) => e.version, "2.0"],
    ["function-url", (e: any) => e.routeKey, "$default"],
    ["apigateway-rest", (e: any) => e.httpMethod, "POST"],
  ])("%s is shaped as its service sends it", (id, pick, want) => expect(pick(get(id))).toBe(want));

  it("the Kinesis record's data is base64", () => {
    expect(atob(get("kinesis").Records[0].kinesis.data)).toBe("Hello, this is a test.");
  });

  it("the CloudWatch Logs data is a gzipped awslogs envelope", () => {
    const raw = Uint8Array.from(atob(get("cloudwatch-logs").awslogs.data), (c) => c.charCodeAt(0));
    const doc = JSON.parse(strFromU8(gunzipSync(raw)));
    expect(doc.messageType).toBe("DATA_MESSAGE");
    expect(doc.logEvents).toHaveLength(2);
    expect(doc.logEvents[0].message).toContain("first test message");
  });

  it("templateText is pretty JSON of the event, hello world for an unknown id", () => {
    expect(JSON.parse(templateText("sqs"))).toEqual(get("sqs"));
    expect(JSON.parse(templateText("nope"))).toEqual({ key1: "value1", key2: "value2", key3: "value3" });
  });
});

describe("parseEvent", () => {
  it.each([
    ['{"a": 1}', { ok: true, payload: '{"a":1}' }],
    ["  ", { ok: true, payload: "{}" }],
    ['"text"', { ok: true, payload: '"text"' }],
    ["[1, 2]", { ok: true, payload: "[1,2]" }],
  ])("%s is sent", (input, want) => expect(parseEvent(input)).toEqual(want));
  it.each([["{a: 1}"], ['{"a": 1'], ["undefined"]])("%s is refused before invoking", (input) => {
    const r = parseEvent(input);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toMatch(/^The event is not valid JSON/);
  });
});

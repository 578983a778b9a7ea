import { describe, expect, it } from "vitest";
import { BLUEPRINTS, RUNTIMES, checkFunctionName, roleNameFor } from "./blueprints";

describe("blueprints", () => {
  it.each(BLUEPRINTS.map((b) => [b.id, b]))("%s has its handler's file and a known runtime", (_, b) => {
    const module = b.handler.slice(0, b.handler.lastIndexOf("."));
    const ext = b.runtime.startsWith("python") ? ".py" : ".mjs";
    expect(Object.keys(b.files)).toContain(module + ext);
    expect(RUNTIMES).toContain(b.runtime);
    expect(b.policies[0]).toMatch(/AWSLambdaBasicExecutionRole$/);
  });
});

describe("checkFunctionName", () => {
  it.each([
    ["hello", null],
    ["a-b_C9", null],
    ["", "Enter a name."],
    ["x".repeat(65), "At most 64 characters."],
    ["has space", "Only letters, digits, hyphens (-) and underscores (_)."],
    ["dots.no", "Only letters, digits, hyphens (-) and underscores (_)."],
  ])("%s", (name, want) => expect(checkFunctionName(name)).toBe(want));
});

describe("roleNameFor", () => {
  it("fits IAM's 64 characters", () => {
    expect(roleNameFor("hello", "ab12cd34")).toBe("hello-role-ab12cd34");
    expect(roleNameFor("x".repeat(64), "ab12cd34").length).toBe(64);
  });
});

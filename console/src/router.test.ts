import { describe, expect, it } from "vitest";
import { href, parseRoute } from "./router";

describe("routes", () => {
  it.each([
    ["", { page: "functions" }],
    ["#/", { page: "functions" }],
    ["#/functions", { page: "functions" }],
    ["#/create", { page: "create" }],
    ["#/login", { page: "login", token: undefined }],
    ["#/login/abc123", { page: "login", token: "abc123" }],
    ["#/functions/hello", { page: "function", name: "hello", tab: "code" }],
    ["#/functions/hello/monitor", { page: "function", name: "hello", tab: "monitor" }],
    ["#/functions/hello/bogus", { page: "function", name: "hello", tab: "code" }],
    ["#/functions/my%20fn/test", { page: "function", name: "my fn", tab: "test" }],
    ["#/functions/50%/code", { page: "function", name: "50%", tab: "code" }],
  ])("%s", (hash, want) => expect(parseRoute(hash)).toEqual(want));

  it("href and parseRoute agree", () => {
    const r = { page: "function", name: "a-b_c", tab: "logs" } as const;
    expect(parseRoute(href(r))).toEqual(r);
  });
});

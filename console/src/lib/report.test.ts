import { describe, expect, it } from "vitest";
import { decodeTail, parseReport } from "./report";

const tail = [
  "START RequestId: 8f1c Version: $LATEST",
  "2026-01-01T00:00:00.000Z\t8f1c\tINFO\thello",
  "END RequestId: 8f1c",
  "REPORT RequestId: 8f1c\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 41 MB\tInit Duration: 101.52 ms\t",
  "",
].join("\n");

describe("parseReport", () => {
  it("reads every number of a cold invocation", () => {
    expect(parseReport(tail)).toEqual({ requestId: "8f1c", durationMs: 12.34, billedMs: 13, memoryMb: 128, maxMemoryMb: 41, initMs: 101.52 });
  });
  it("a warm invocation has no init duration", () => {
    const warm = "REPORT RequestId: a1\tDuration: 1.00 ms\tBilled Duration: 1 ms\tMemory Size: 256 MB\tMax Memory Used: 50 MB\t";
    expect(parseReport(warm)).toEqual({ requestId: "a1", durationMs: 1, billedMs: 1, memoryMb: 256, maxMemoryMb: 50, initMs: undefined });
  });
  it.each([[""], ["START RequestId: x"], ["REPORT nothing here"]])("%s has no report", (log) => expect(parseReport(log)).toBeNull());
});

describe("decodeTail", () => {
  it("decodes base64 UTF-8", () => expect(decodeTail(btoa(unescape(encodeURIComponent("héllo\n"))))).toBe("héllo\n"));
  it("nothing for no tail", () => expect(decodeTail(undefined)).toBe(""));
});

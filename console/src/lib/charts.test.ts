import { describe, expect, it } from "vitest";
import { align, rangeEndingAt, successRate, total, xs } from "./charts";

const at = (s: number) => new Date(s * 1000);

describe("rangeEndingAt and xs", () => {
  it("rounds the end up to the period and lists each period's start", () => {
    const r = rangeEndingAt(1_000_030_000, 300, 60);
    expect(r).toEqual({ start: 999_780, end: 1_000_080, period: 60 });
    expect(xs(r)).toEqual([999_780, 999_840, 999_900, 999_960, 1_000_020]);
  });
});

describe("align", () => {
  const range = { start: 600, end: 900, period: 60 };
  it.each([
    ["counts fill 0", { timestamps: [at(840), at(600)], values: [3, 1] }, 0, [1, 0, 0, 0, 3]],
    ["statistics leave gaps", { timestamps: [at(660)], values: [12.5] }, null, [null, 12.5, null, null, null]],
    ["a timestamp inside a period counts there", { timestamps: [at(685)], values: [2] }, 0, [0, 2, 0, 0, 0]],
    ["outside the range is dropped", { timestamps: [at(900), at(540)], values: [5, 5] }, 0, [0, 0, 0, 0, 0]],
    ["no series", undefined, 0, [0, 0, 0, 0, 0]],
  ])("%s", (_, series, fill, want) => expect(align(range, series as any, fill as any)).toEqual(want));
});

describe("successRate", () => {
  it.each([
    [[10, 0, 4, null], [1, 0, 4, 0], [90, null, 0, null]],
    [[2], [null], [100]],
  ])("%j with errors %j → %j", (inv, err, want) => expect(successRate(inv, err)).toEqual(want));
});

describe("total", () => {
  it("skips gaps", () => expect(total([1, null, 2.5])).toBe(3.5));
});

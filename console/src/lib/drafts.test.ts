import { describe, expect, it } from "vitest";
import { changedPaths, dropDraft, loadDraft, saveDraft } from "./drafts";
import { bytes } from "./zip";

class MemoryStorage {
  m = new Map<string, string>();
  quota = Infinity;
  getItem(k: string) {
    return this.m.get(k) ?? null;
  }
  setItem(k: string, v: string) {
    if (v.length > this.quota) throw new Error("QuotaExceededError");
    this.m.set(k, v);
  }
  removeItem(k: string) {
    this.m.delete(k);
  }
}

describe("drafts", () => {
  it("round-trip text and binary files per account and function", () => {
    const s = new MemoryStorage() as unknown as Storage;
    const files = new Map([
      ["a.py", bytes("print('é')\n")],
      ["bin", new Uint8Array([0, 255, 1])],
    ]);
    expect(saveDraft(s, "111", "f", "sha1", files, ["empty"])).toBe(true);
    const back = loadDraft(s, "111", "f")!;
    expect(back.base).toBe("sha1");
    expect(back.folders).toEqual(["empty"]);
    expect([...back.files.entries()]).toEqual([...files.entries()]);
    expect(loadDraft(s, "222", "f")).toBeNull();
    dropDraft(s, "111", "f");
    expect(loadDraft(s, "111", "f")).toBeNull();
  });

  it("a draft over the quota is not saved, and says so", () => {
    const s = new MemoryStorage();
    s.quota = 10;
    expect(saveDraft(s as unknown as Storage, "1", "f", "x", new Map([["a", bytes("long enough")]]), [])).toBe(false);
  });
});

describe("changedPaths", () => {
  it.each([
    [{ a: "1", b: "2" }, { a: "1", b: "2" }, []],
    [{ a: "1", b: "3" }, { a: "1", b: "2" }, ["b"]],
    [{ a: "1", c: "x" }, { a: "1", b: "2" }, ["b", "c"]],
    [{}, { a: "1" }, ["a"]],
  ])("%j vs %j", (x, y, want) => {
    const m = (o: Record<string, string>) => new Map(Object.entries(o).map(([k, v]) => [k, bytes(v)]));
    expect(changedPaths(m(x), m(y))).toEqual(want);
  });
});

import { describe, expect, it } from "vitest";
import { unzipSync } from "fflate";
import { bytes, cleanPath, isSymlink, isText, languageOf, pack, readModes, remove, rename, renameModes, text, tree, unpack } from "./zip";

describe("cleanPath", () => {
  it.each([
    ["index.mjs", "index.mjs"],
    ["/src/app.py", "src/app.py"],
    ["./a//b/./c.js", "a/b/c.js"],
    ["a\\b.txt", "a/b.txt"],
    ["../etc/passwd", null],
    ["a/../../b", null],
    ["", null],
    ["/", null],
  ])("%s → %s", (input, want) => expect(cleanPath(input)).toBe(want));
});

describe("pack and unpack", () => {
  it("round-trips files, sorted, with fixed times", () => {
    const files = new Map([
      ["lib/util.py", bytes("X = 1\n")],
      ["app.py", bytes("def handler(e, c):\n    return e\n")],
      ["bootstrap", bytes("#!/bin/sh\n")],
    ]);
    const zip = pack(files);
    const back = unpack(zip);
    expect([...back.keys()].sort()).toEqual(["app.py", "bootstrap", "lib/util.py"]);
    expect(text(back.get("lib/util.py")!)).toBe("X = 1\n");
    expect(Object.keys(unzipSync(zip))).toEqual(["app.py", "bootstrap", "lib/util.py"]);
    expect(pack(files)).toEqual(zip);
  });

  it("marks bootstrap executable and other files 0644", () => {
    const zip = pack(new Map([["bootstrap", bytes("x")], ["a.txt", bytes("y")]]));
    // Central directory entries: external attributes at offset 38 of each "PK\1\2" record.
    const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
    const modes: Record<string, number> = {};
    for (let i = 0; i + 46 < zip.length; i++) {
      if (view.getUint32(i, true) !== 0x02014b50) continue;
      const nameLen = view.getUint16(i + 28, true);
      const name = text(zip.subarray(i + 46, i + 46 + nameLen));
      modes[name] = (view.getUint32(i + 38, true) >>> 16) & 0o777;
    }
    expect(modes).toEqual({ "a.txt": 0o644, bootstrap: 0o755 });
  });

  it("drops directory entries and unsafe names", () => {
    const zip = pack(new Map([["a/b.txt", bytes("1")]]));
    expect([...unpack(zip).keys()]).toEqual(["a/b.txt"]);
  });
});

describe("isText", () => {
  it.each([
    ["utf-8 text", bytes("héllo ✓"), true],
    ["a NUL", new Uint8Array([104, 0, 105]), false],
    ["invalid utf-8", new Uint8Array([0xff, 0xfe, 0x41]), false],
    ["empty", new Uint8Array(), true],
  ])("%s", (_, data, want) => expect(isText(data)).toBe(want));
});

describe("languageOf", () => {
  it.each([
    ["index.mjs", "javascript"],
    ["a/b.cjs", "javascript"],
    ["x.ts", "typescript"],
    ["lambda_function.py", "python"],
    ["package.json", "json"],
    ["template.yaml", "yaml"],
    ["c.yml", "yaml"],
    ["bootstrap", "text"],
    ["README.md", "text"],
  ])("%s → %s", (p, want) => expect(languageOf(p)).toBe(want));
});

describe("tree", () => {
  it("puts folders first, each level sorted, with empty folders kept", () => {
    const t = tree(["z.js", "lib/b.py", "lib/a.py", "a.js"], ["empty"]);
    expect(t.children.map((c) => c.name)).toEqual(["empty", "lib", "a.js", "z.js"]);
    expect(t.children[1].children.map((c) => c.path)).toEqual(["lib/a.py", "lib/b.py"]);
  });
});

describe("rename and remove", () => {
  const files = new Map([
    ["a.js", bytes("a")],
    ["lib/x.js", bytes("x")],
    ["lib/y.js", bytes("y")],
  ]);
  it("renames a file", () => {
    const r = rename(files, "a.js", "src/a.js");
    expect(r instanceof Map && [...r.keys()].sort()).toEqual(["lib/x.js", "lib/y.js", "src/a.js"]);
  });
  it("renames a folder with everything under it", () => {
    const r = rename(files, "lib", "vendor");
    expect(r instanceof Map && [...r.keys()].sort()).toEqual(["a.js", "vendor/x.js", "vendor/y.js"]);
  });
  it.each([
    ["a.js", "lib/x.js", "lib/x.js already exists."],
    ["a.js", "../a.js", "That is not a valid path."],
    ["nope.js", "b.js", "nope.js does not exist."],
  ])("refuses %s → %s", (from, to, why) => expect(rename(files, from, to)).toBe(why));
  it("removes a folder", () => expect([...remove(files, "lib").keys()]).toEqual(["a.js"]));
});

describe("modes", () => {
  it("a package's executables and symbolic links survive an unpack and repack", () => {
    const files = new Map([
      ["bin/tool", bytes("#!/bin/sh\n")],
      ["lib/libx.so", bytes("target.so.1")],
      ["lib/target.so.1", bytes("ELF")],
      ["app.py", bytes("x")],
    ]);
    const original = new Map([
      ["bin/tool", 0o100750],
      ["lib/libx.so", 0o120777],
    ]);
    const zip = pack(files, original);
    const modes = readModes(zip);
    expect(modes.get("bin/tool")).toBe(0o100750);
    expect(isSymlink(modes.get("lib/libx.so"))).toBe(true);
    expect(modes.get("app.py")).toBe(0o100644);
    const again = readModes(pack(unpack(zip), modes));
    expect([...again.entries()].sort()).toEqual([...modes.entries()].sort());
  });

  it("a zip without Unix attributes has no modes", () => {
    expect(readModes(new Uint8Array([1, 2, 3]))).toEqual(new Map());
  });

  it.each([
    ["bin", "tools", [["tools/a", 0o100755], ["app", 0o100644]]],
    ["app", "main", [["bin/a", 0o100755], ["main", 0o100644]]],
  ])("rename %s → %s carries modes", (from, to, want) => {
    const m = new Map([
      ["bin/a", 0o100755],
      ["app", 0o100644],
    ]);
    expect([...renameModes(m, from, to).entries()].sort()).toEqual([...(want as [string, number][])].sort());
  });
});

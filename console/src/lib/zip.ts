//! A function's package as the editor holds it: a flat map of paths to bytes, read from and
//! written to the zip Lambda stores (fflate, in the browser).
import { unzipSync, zipSync, strFromU8, strToU8 } from "fflate";

/** AWS's limit for editing a package in the console (the zip's size). */
export const EDITABLE_LIMIT = 3 * 1024 * 1024;

export type Files = Map<string, Uint8Array>;

/** Normalises a path typed by a person: no leading `/` or `./`, no `..`, `/` separators. */
export function cleanPath(p: string): string | null {
  const parts = p.replace(/\\/g, "/").split("/").filter((s) => s !== "" && s !== ".");
  if (parts.length === 0 || parts.some((s) => s === "..")) return null;
  return parts.join("/");
}

/** The files of a zip (directories dropped: the tree is made from the paths). */
export function unpack(zip: Uint8Array): Files {
  const out: Files = new Map();
  const entries = unzipSync(zip);
  for (const [name, data] of Object.entries(entries)) {
    if (name.endsWith("/")) continue;
    const p = cleanPath(name);
    if (p) out.set(p, data);
  }
  return out;
}

/** Each entry's Unix mode (type and permissions), as a zip made on Unix records it. */
export type Modes = Map<string, number>;

/**
 * The Unix modes of a zip's entries, read from its central directory (the upper half of each
 * entry's external attributes, when the entry was made on Unix), so a package repacked in
 * the browser keeps its executables and symbolic links.
 */
export function readModes(zip: Uint8Array): Modes {
  const out: Modes = new Map();
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  // The end-of-central-directory record: the last "PK\5\6" within the final 64 KiB + 22.
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 65_557); i--) {
    if (view.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) return out;
  const count = view.getUint16(eocd + 10, true);
  let at = view.getUint32(eocd + 16, true);
  for (let n = 0; n < count && at + 46 <= zip.length; n++) {
    if (view.getUint32(at, true) !== 0x02014b50) break;
    const madeOnUnix = zip[at + 5] === 3;
    const nameLen = view.getUint16(at + 28, true);
    const extraLen = view.getUint16(at + 30, true);
    const commentLen = view.getUint16(at + 32, true);
    const mode = view.getUint32(at + 38, true) >>> 16;
    const name = cleanPath(strFromU8(zip.subarray(at + 46, at + 46 + nameLen)));
    if (madeOnUnix && mode && name) out.set(name, mode);
    at += 46 + nameLen + extraLen + commentLen;
  }
  return out;
}

/** Whether a mode is a symbolic link's (its content is the link's target). */
export const isSymlink = (mode: number | undefined) => mode !== undefined && (mode & 0o170000) === 0o120000;

/**
 * A zip of the files, sorted by path, with fixed times so the same tree zips the same. Each
 * keeps its mode from `modes` (a package's own), else 0644, or 0755 for a `bootstrap`.
 */
export function pack(files: Files, modes: Modes = new Map()): Uint8Array {
  const input: Record<string, [Uint8Array, { mtime: Date; attrs?: number; os?: number }]> = {};
  const mtime = new Date(Date.UTC(2020, 0, 1));
  for (const p of [...files.keys()].sort()) {
    const mode = modes.get(p) ?? (p === "bootstrap" || p.endsWith("/bootstrap") ? 0o100755 : 0o100644);
    // os 3: made on Unix, so unzip and Lambda read the mode from the external attributes.
    input[p] = [files.get(p)!, { mtime, attrs: mode << 16, os: 3 }];
  }
  return zipSync(input as any, { level: 6 });
}

/** The modes of a tree after a rename (`from` a file or folder, `to` its new path). */
export function renameModes(modes: Modes, from: string, to: string): Modes {
  const out: Modes = new Map();
  for (const [p, m] of modes) out.set(p === from ? to : p.startsWith(from + "/") ? to + p.slice(from.length) : p, m);
  return out;
}

/** Whether bytes are text the editor can show (UTF-8 without NULs). */
export function isText(data: Uint8Array): boolean {
  if (data.length > 1024 * 1024) return false;
  for (let i = 0; i < Math.min(data.length, 8000); i++) if (data[i] === 0) return false;
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(data);
    return true;
  } catch {
    return false;
  }
}

export const text = (data: Uint8Array) => strFromU8(data);

/** Base64 of bytes (in slices: a spread of a large array would overflow the stack). */
export function toBase64(d: Uint8Array): string {
  let s = "";
  for (let i = 0; i < d.length; i += 0x8000) s += String.fromCharCode(...d.subarray(i, i + 0x8000));
  return btoa(s);
}

export const fromBase64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
export const bytes = (s: string) => strToU8(s);

/** The language the editor highlights a path in. */
export function languageOf(path: string): "javascript" | "typescript" | "python" | "json" | "yaml" | "text" {
  const ext = path.slice(path.lastIndexOf(".") + 1).toLowerCase();
  switch (ext) {
    case "js":
    case "mjs":
    case "cjs":
      return "javascript";
    case "ts":
    case "mts":
    case "cts":
      return "typescript";
    case "py":
      return "python";
    case "json":
      return "json";
    case "yml":
    case "yaml":
      return "yaml";
    default:
      return "text";
  }
}

export interface TreeNode {
  name: string;
  path: string;
  dir: boolean;
  children: TreeNode[];
}

/** The folder tree of a set of paths (folders first, then files, each by name). */
export function tree(paths: Iterable<string>, folders: Iterable<string> = []): TreeNode {
  const root: TreeNode = { name: "", path: "", dir: true, children: [] };
  const dirOf = (parts: string[]) => {
    let node = root;
    for (let i = 0; i < parts.length; i++) {
      let next = node.children.find((c) => c.dir && c.name === parts[i]);
      if (!next) {
        next = { name: parts[i], path: parts.slice(0, i + 1).join("/"), dir: true, children: [] };
        node.children.push(next);
      }
      node = next;
    }
    return node;
  };
  for (const f of folders) dirOf(f.split("/"));
  for (const p of paths) {
    const parts = p.split("/");
    dirOf(parts.slice(0, -1)).children.push({ name: parts[parts.length - 1], path: p, dir: false, children: [] });
  }
  const sort = (n: TreeNode) => {
    n.children.sort((a, b) => (a.dir === b.dir ? a.name.localeCompare(b.name) : a.dir ? -1 : 1));
    n.children.forEach(sort);
  };
  sort(root);
  return root;
}

/** Renames a file or a folder (every path under it); refuses to overwrite. */
export function rename(files: Files, from: string, to: string): Files | string {
  const target = cleanPath(to);
  if (!target) return "That is not a valid path.";
  const out: Files = new Map();
  let moved = 0;
  for (const [p, d] of files) {
    let q = p;
    if (p === from) q = target;
    else if (p.startsWith(from + "/")) q = target + p.slice(from.length);
    if (q !== p) moved++;
    if (q !== p && files.has(q)) return `${q} already exists.`;
    out.set(q, d);
  }
  return moved ? out : `${from} does not exist.`;
}

/** Removes a file, or a folder with everything under it. */
export function remove(files: Files, path: string): Files {
  const out: Files = new Map();
  for (const [p, d] of files) if (p !== path && !p.startsWith(path + "/")) out.set(p, d);
  return out;
}

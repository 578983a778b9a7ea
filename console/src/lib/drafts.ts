//! Unsaved edits of a function's package, kept in the browser's local storage so a reload,
//! a sign-out or an expired key does not lose them; dropped once deployed.
import { fromBase64, toBase64, type Files } from "./zip";

interface Stored {
  /** The CodeSha256 the edits were made on. */
  base: string;
  files: Record<string, string>;
  folders: string[];
}

const key = (account: string, fn: string) => `nimbus.draft.${account}.${fn}`;


export function saveDraft(store: Storage, account: string, fn: string, base: string, files: Files, folders: string[]): boolean {
  const doc: Stored = { base, files: {}, folders };
  for (const [p, d] of files) doc.files[p] = toBase64(d);
  try {
    store.setItem(key(account, fn), JSON.stringify(doc));
    return true;
  } catch {
    return false; // over the storage quota: the edits stay in memory only
  }
}

export function loadDraft(store: Storage, account: string, fn: string): { base: string; files: Files; folders: string[] } | null {
  const raw = store.getItem(key(account, fn));
  if (!raw) return null;
  try {
    const doc = JSON.parse(raw) as Stored;
    return { base: doc.base, files: new Map(Object.entries(doc.files).map(([p, b]) => [p, fromBase64(b)])), folders: doc.folders ?? [] };
  } catch {
    return null;
  }
}

export function dropDraft(store: Storage, account: string, fn: string) {
  store.removeItem(key(account, fn));
}

/** The paths whose content differs between two trees (added, changed or removed). */
export function changedPaths(a: Files, b: Files): string[] {
  const out = new Set<string>();
  for (const [p, d] of a) {
    const e = b.get(p);
    if (!e || e.length !== d.length || e.some((x, i) => x !== d[i])) out.add(p);
  }
  for (const p of b.keys()) if (!a.has(p)) out.add(p);
  return [...out].sort();
}

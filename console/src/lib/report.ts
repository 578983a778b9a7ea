//! What an invocation tells in its log tail: Lambda's `REPORT` line and the tail itself.
import { fromBase64 } from "./zip";

export interface Report {
  requestId: string;
  durationMs: number;
  billedMs: number;
  memoryMb: number;
  maxMemoryMb: number;
  initMs?: number;
}

/** The `REPORT RequestId: … Duration: … ms …` line of a log tail, if it has one (the last). */
export function parseReport(log: string): Report | null {
  const lines = log.split("\n").filter((l) => l.startsWith("REPORT "));
  const line = lines[lines.length - 1];
  if (!line) return null;
  const num = (label: string) => {
    const m = new RegExp(`${label}: ([0-9.]+)`).exec(line);
    return m ? Number(m[1]) : undefined;
  };
  const requestId = /RequestId: (\S+)/.exec(line)?.[1];
  const durationMs = num("\\tDuration") ?? num("Duration");
  if (!requestId || durationMs === undefined) return null;
  return {
    requestId,
    durationMs,
    billedMs: num("Billed Duration") ?? 0,
    memoryMb: num("Memory Size") ?? 0,
    maxMemoryMb: num("Max Memory Used") ?? 0,
    initMs: num("Init Duration"),
  };
}

/** The base64 `LogResult` of an Invoke with `LogType: Tail`, as text. */
export function decodeTail(b64: string | undefined): string {
  if (!b64) return "";
  return new TextDecoder().decode(fromBase64(b64));
}

//! Chart data: CloudWatch's GetMetricData answers (newest first, only the periods that had
//! data) turned into the aligned columns a chart draws, one point per period of the range.

export interface Series {
  timestamps: Date[];
  values: number[];
}

export interface Range {
  /** Seconds since the epoch, inclusive. */
  start: number;
  end: number;
  /** Seconds per point. */
  period: number;
}

/** The time ranges the Monitor tab offers, with the period each uses (AWS console's choices). */
export const RANGES: { id: string; label: string; seconds: number; period: number }[] = [
  { id: "1h", label: "1h", seconds: 3600, period: 60 },
  { id: "3h", label: "3h", seconds: 3 * 3600, period: 60 },
  { id: "12h", label: "12h", seconds: 12 * 3600, period: 300 },
  { id: "1d", label: "1d", seconds: 86400, period: 300 },
  { id: "1w", label: "1w", seconds: 7 * 86400, period: 3600 },
];

/** The range ending now (rounded up to a period), `seconds` long. */
export function rangeEndingAt(nowMs: number, seconds: number, period: number): Range {
  const end = Math.ceil(nowMs / 1000 / period) * period;
  return { start: end - seconds, end, period };
}

/** The x column: the start of each period in the range. */
export function xs(range: Range): number[] {
  const out: number[] = [];
  for (let t = range.start; t < range.end; t += range.period) out.push(t);
  return out;
}

/**
 * One series on the range's periods: `fill` where a period has no datapoint (0 for counts,
 * null for statistics such as a duration, which a chart leaves as a gap).
 */
export function align(range: Range, series: Series | undefined, fill: number | null): (number | null)[] {
  const at = new Map<number, number>();
  series?.timestamps.forEach((ts, i) => {
    const t = Math.floor(ts.getTime() / 1000 / range.period) * range.period;
    at.set(t, (at.get(t) ?? 0) + series.values[i]);
  });
  return xs(range).map((t) => at.get(t) ?? fill);
}

/** Success rate in percent per period: 100 × (1 − errors / invocations); a gap where nothing ran. */
export function successRate(invocations: (number | null)[], errors: (number | null)[]): (number | null)[] {
  return invocations.map((n, i) => {
    if (!n) return null;
    const e = errors[i] ?? 0;
    return Math.max(0, Math.min(100, 100 * (1 - e / n)));
  });
}

/** Sum of a column (nulls skipped). */
export const total = (col: (number | null)[]) => col.reduce<number>((a, v) => a + (v ?? 0), 0);

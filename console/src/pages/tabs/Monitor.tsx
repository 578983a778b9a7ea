//! The Monitor tab: CloudWatch's AWS/Lambda metrics of the function over a chosen range,
//! refreshed every minute when asked.
import { useEffect, useMemo, useState } from "preact/hooks";
import { GetMetricDataCommand, type MetricDataResult } from "@aws-sdk/client-cloudwatch";
import { useApp } from "../../ctx";
import { describeError } from "../../session";
import { Chart, type ChartSeries } from "../../components/Chart";
import { ErrorBox } from "../../components/ui";
import { RANGES, align, rangeEndingAt, successRate, xs, type Range } from "../../lib/charts";
import { lambdaQuery } from "../../lib/metrics";
import type { FunctionProps } from "../Function";

const QUERIES: [string, string, string][] = [
  ["inv", "Invocations", "Sum"],
  ["err", "Errors", "Sum"],
  ["thr", "Throttles", "Sum"],
  ["p50", "Duration", "p50"],
  ["p90", "Duration", "p90"],
  ["p99", "Duration", "p99"],
  ["conc", "ConcurrentExecutions", "Maximum"],
  ["cold", "ColdStarts", "Sum"],
  ["init", "InitDuration", "Average"],
  ["age", "AsyncEventAge", "Maximum"],
  ["iter", "IteratorAge", "Maximum"],
];

export function MonitorTab({ name }: FunctionProps) {
  const app = useApp();
  const [rangeId, setRangeId] = useState("3h");
  const [customFrom, setCustomFrom] = useState("");
  const [customTo, setCustomTo] = useState("");
  const [auto, setAuto] = useState(true);
  const [results, setResults] = useState<Map<string, MetricDataResult>>(new Map());
  const [range, setRange] = useState<Range | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);

  useEffect(() => {
    let r: Range;
    if (rangeId === "custom") {
      const from = Date.parse(customFrom),
        to = Date.parse(customTo);
      if (!(from < to)) return;
      const seconds = (to - from) / 1000;
      const period = seconds <= 3 * 3600 ? 60 : seconds <= 86400 ? 300 : 3600;
      r = { ...rangeEndingAt(to, seconds, period) };
    } else {
      const def = RANGES.find((x) => x.id === rangeId)!;
      r = rangeEndingAt(Date.now(), def.seconds, def.period);
    }
    (async () => {
      try {
        const out = await app.call((c) =>
          c.cloudwatch.send(
            new GetMetricDataCommand({
              StartTime: new Date(r.start * 1000),
              EndTime: new Date(r.end * 1000),
              MetricDataQueries: QUERIES.map(([id, metric, stat]) => lambdaQuery(id, metric, stat, r.period, name)),
            }),
          ),
        );
        setResults(new Map((out.MetricDataResults ?? []).map((m) => [m.Id!, m])));
        setRange(r);
        setError(null);
      } catch (e) {
        setError(describeError(e));
      }
    })();
  }, [rangeId, customFrom, customTo, tick]);

  useEffect(() => {
    if (!auto || rangeId === "custom") return;
    const t = setInterval(() => setTick((x) => x + 1), 60_000);
    return () => clearInterval(t);
  }, [auto, rangeId]);

  const charts = useMemo(() => {
    if (!range) return null;
    const col = (id: string, fill: number | null) => {
      const m = results.get(id);
      return align(range, m && { timestamps: (m.Timestamps ?? []).map((t) => new Date(t)), values: m.Values ?? [] }, fill);
    };
    const inv = col("inv", 0),
      err = col("err", 0);
    const s = (label: string, values: (number | null)[], color: string, unit?: string): ChartSeries => ({ label, values, color, unit });
    return {
      x: xs(range),
      invocations: [s("Invocations", inv, "#3b82f6")],
      errors: [s("Errors", err, "#ef4444"), s("Success rate", successRate(inv, err), "#22c55e", "%")],
      duration: [s("p50", col("p50", null), "#3b82f6", " ms"), s("p90", col("p90", null), "#f59e0b", " ms"), s("p99", col("p99", null), "#ef4444", " ms")],
      throttles: [s("Throttles", col("thr", 0), "#a855f7")],
      concurrency: [s("Concurrent executions", col("conc", null), "#14b8a6")],
      cold: [s("Cold starts", col("cold", 0), "#0ea5e9"), s("Init duration", col("init", null), "#f97316", " ms")],
      age: [s("Async event age (max)", col("age", null), "#64748b", " ms")],
      iterator: [s("Iterator age (max)", col("iter", null), "#7c3aed", " ms")],
    };
  }, [results, range]);

  return (
    <div class="monitor">
      <div class="row wrap">
        <div class="segmented" role="group" aria-label="Time range">
          {[...RANGES.map((r) => r.id), "custom"].map((id) => (
            <button key={id} aria-pressed={rangeId === id} class={rangeId === id ? "active" : ""} onClick={() => setRangeId(id)}>
              {id}
            </button>
          ))}
        </div>
        {rangeId === "custom" && (
          <>
            <input type="datetime-local" aria-label="From" value={customFrom} onInput={(e) => setCustomFrom(e.currentTarget.value)} />
            <input type="datetime-local" aria-label="To" value={customTo} onInput={(e) => setCustomTo(e.currentTarget.value)} />
          </>
        )}
        <label class="inline">
          <input type="checkbox" checked={auto} onChange={(e) => setAuto(e.currentTarget.checked)} /> Auto-refresh
        </label>
        <button class="ghost" onClick={() => setTick((x) => x + 1)} aria-label="Refresh">
          ↻
        </button>
      </div>
      <ErrorBox error={error} onClose={() => setError(null)} />
      {charts && (
        <div class="charts">
          <Chart title="Invocations" x={charts.x} series={charts.invocations} />
          <Chart title="Errors and success rate" x={charts.x} series={charts.errors} />
          <Chart title="Duration" x={charts.x} series={charts.duration} />
          <Chart title="Throttles" x={charts.x} series={charts.throttles} />
          <Chart title="Concurrent executions" x={charts.x} series={charts.concurrency} />
          <Chart title="Cold starts and init duration" x={charts.x} series={charts.cold} />
          <Chart title="Async event age" x={charts.x} series={charts.age} />
          <Chart title="Iterator age (stream triggers)" x={charts.x} series={charts.iterator} />
        </div>
      )}
    </div>
  );
}

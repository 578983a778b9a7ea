//! A time-series chart (uPlot): one x column of period starts and a column per series.
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface ChartSeries {
  label: string;
  values: (number | null)[];
  color: string;
  unit?: string;
}

export function Chart({ title, x, series, height = 180 }: { title: string; x: number[]; series: ChartSeries[]; height?: number }) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);

  useEffect(() => {
    const el = host.current!;
    const width = Math.max(240, el.clientWidth);
    const fmt = (s: ChartSeries) => (_: uPlot, v: number | null) => (v == null ? "–" : `${Number.isInteger(v) ? v : v.toFixed(2)}${s.unit ?? ""}`);
    const opts: uPlot.Options = {
      width,
      height,
      cursor: { drag: { x: true, y: false } },
      legend: { show: true },
      scales: { x: { time: true }, y: { range: (_u, min, max) => [Math.min(0, min ?? 0), Math.max(1, max ?? 1)] } },
      axes: [
        { stroke: "var(--muted)", grid: { stroke: "var(--grid)" }, ticks: { stroke: "var(--grid)" } },
        { stroke: "var(--muted)", grid: { stroke: "var(--grid)" }, ticks: { stroke: "var(--grid)" }, size: 50 },
      ],
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, spanGaps: false, value: fmt(s), points: { show: x.length < 80 } }))],
    };
    plot.current?.destroy();
    plot.current = new uPlot(opts, [x, ...series.map((s) => s.values)] as uPlot.AlignedData, el);
    const ro = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(240, el.clientWidth), height }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [x, series, height]);

  const total = series.map((s) => s.values.reduce<number>((a, v) => a + (v ?? 0), 0));
  return (
    <figure class="chart" aria-label={title} data-series={series.map((s, i) => `${s.label}=${total[i]}`).join(";")}>
      <figcaption>{title}</figcaption>
      <div ref={host} />
    </figure>
  );
}

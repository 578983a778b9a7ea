//! A time-series chart (uPlot): one x column of period starts and a column per series.
import { useEffect, useRef, useState } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface ChartSeries {
  label: string;
  values: (number | null)[];
  color: string;
  unit?: string;
}

/**
 * Which points to mark: all of a short range; of a long one only the periods with a
 * non-zero value when there are few (a lone minute has no line to see), else none.
 */
export function sparsePoints(values: (number | null)[], n: number) {
  if (n < 80) return undefined;
  const marked = values.flatMap((v, i) => (v !== null && v !== 0 ? [i] : []));
  return () => (marked.length < 30 ? marked : []);
}

export function Chart({ title, x, series, height = 180 }: { title: string; x: number[]; series: ChartSeries[]; height?: number }) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const [theme, setTheme] = useState(document.documentElement.dataset.theme);
  useEffect(() => {
    const obs = new MutationObserver(() => setTheme(document.documentElement.dataset.theme));
    obs.observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
    return () => obs.disconnect();
  }, []);

  useEffect(() => {
    const el = host.current!;
    // The canvas takes colours, not CSS variables: read the theme's.
    const css = getComputedStyle(document.documentElement);
    const color = (name: string) => css.getPropertyValue(name).trim() || "#888";
    const axis = { stroke: color("--muted"), grid: { stroke: color("--grid") }, ticks: { stroke: color("--grid") } };
    const width = Math.max(240, el.clientWidth);
    const fmt = (s: ChartSeries) => (_: uPlot, v: number | null) => (v == null ? "–" : `${Number.isInteger(v) ? v : v.toFixed(2)}${s.unit ?? ""}`);
    const opts: uPlot.Options = {
      width,
      height,
      cursor: { drag: { x: true, y: false } },
      legend: { show: true },
      scales: { x: { time: true }, y: { range: (_u, min, max) => [Math.min(0, min ?? 0), Math.max(1, max ?? 1)] } },
      axes: [axis, { ...axis, size: 50 }],
      // A series with few datapoints is drawn as points too: a lone minute has no line.
      series: [
        {},
        ...series.map((s) => ({
          label: s.label,
          stroke: s.color,
          fill: s.color + "1f",
          width: 2,
          spanGaps: false,
          value: fmt(s),
          points: { show: true, size: 6, fill: s.color, filter: sparsePoints(s.values, x.length) },
        })),
      ],
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
  }, [x, series, height, theme]);

  const total = series.map((s) => s.values.reduce<number>((a, v) => a + (v ?? 0), 0));
  return (
    <figure class="chart" aria-label={title} data-series={series.map((s, i) => `${s.label}=${total[i]}`).join(";")}>
      <figcaption>{title}</figcaption>
      <div ref={host} />
    </figure>
  );
}

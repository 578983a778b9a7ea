//! The Logs tab: the function's log group read with FilterLogEvents (filter patterns, a time
//! range, live tail by polling), and the recent invocations found in it by their REPORT
//! lines, each request id a link to its own lines.
import { useEffect, useRef, useState } from "preact/hooks";
import { FilterLogEventsCommand, type FilteredLogEvent, CloudWatchLogsClient } from "@aws-sdk/client-cloudwatch-logs";
import { useApp } from "../../ctx";
import { describeError } from "../../session";
import { ErrorBox, Spinner, Head } from "../../components/ui";
import { parseReport } from "../../lib/report";
import type { FunctionProps } from "../Function";

const SPANS: [string, number][] = [
  ["15m", 15 * 60],
  ["1h", 3600],
  ["3h", 3 * 3600],
  ["1d", 86400],
  ["1w", 7 * 86400],
];

const MAX_LINES = 2000;

export function LogsTab({ name, fn }: FunctionProps) {
  const app = useApp();
  const group = fn.Configuration?.LoggingConfig?.LogGroup ?? `/aws/lambda/${name}`;
  const [pattern, setPattern] = useState("");
  const [applied, setApplied] = useState("");
  const [span, setSpan] = useState(3600);
  const [live, setLive] = useState(false);
  const [events, setEvents] = useState<FilteredLogEvent[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const seen = useRef(new Set<string>());
  const bottom = useRef<HTMLDivElement>(null);

  // FilterLogEvents answers oldest first: read on (at most 50 pages) and keep the newest.
  const fetchSince = async (startTime: number, filter: string): Promise<FilteredLogEvent[]> => {
    let out: FilteredLogEvent[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const r = await app.call((c) =>
        c.get(CloudWatchLogsClient).send(
          new FilterLogEventsCommand({ logGroupName: group, startTime, filterPattern: filter || undefined, nextToken: token, limit: 1000 }),
        ),
      );
      out.push(...(r.events ?? []));
      if (out.length > MAX_LINES) out = out.slice(-MAX_LINES);
      token = r.nextToken;
      pages++;
    } while (token && pages < 50);
    return out;
  };

  const load = async () => {
    setError(null);
    try {
      const evs = await fetchSince(Date.now() - span * 1000, applied);
      seen.current = new Set(evs.map((e) => e.eventId!));
      setEvents(evs.slice(-MAX_LINES));
    } catch (e) {
      if ((e as Error).name === "ResourceNotFoundException") {
        setEvents([]);
        return;
      }
      setError(describeError(e));
      setEvents((x) => x ?? []);
    }
  };

  useEffect(() => {
    load();
  }, [applied, span]);

  // Live tail: ask for what came since the last line every two seconds.
  useEffect(() => {
    if (!live) return;
    const t = setInterval(async () => {
      const last = events?.length ? events[events.length - 1].timestamp! : Date.now() - 60_000;
      try {
        const fresh = (await fetchSince(last, applied)).filter((e) => !seen.current.has(e.eventId!));
        if (fresh.length) {
          fresh.forEach((e) => seen.current.add(e.eventId!));
          setEvents((cur) => [...(cur ?? []), ...fresh].slice(-MAX_LINES));
          requestAnimationFrame(() => bottom.current?.scrollIntoView({ block: "end" }));
        }
      } catch {
        /* the next poll tries again */
      }
    }, 2000);
    return () => clearInterval(t);
  }, [live, events, applied]);

  const invocations = (events ?? [])
    .map((e) => ({ e, r: e.message?.startsWith("REPORT ") ? parseReport(e.message) : null }))
    .filter((x) => x.r)
    .slice(-25)
    .reverse();

  return (
    <div class="logs">
      <form
        class="row wrap"
        onSubmit={(e) => {
          e.preventDefault();
          setApplied(pattern);
        }}
      >
        <input
          class="grow"
          aria-label="Filter pattern"
          placeholder='Filter pattern, e.g. ERROR or { $.level = "ERROR" }'
          value={pattern}
          onInput={(e) => setPattern(e.currentTarget.value)}
        />
        <button type="submit">Filter</button>
        <select aria-label="Time range" value={span} onChange={(e) => setSpan(Number(e.currentTarget.value))}>
          {SPANS.map(([label, s]) => (
            <option key={s} value={s}>
              Last {label}
            </option>
          ))}
        </select>
        <label class="inline">
          <input type="checkbox" checked={live} onChange={(e) => setLive(e.currentTarget.checked)} /> Live tail
        </label>
        <button type="button" class="ghost" onClick={load} aria-label="Refresh">
          ↻
        </button>
      </form>
      <p class="muted small">
        Log group <code>{group}</code>
      </p>
      <ErrorBox error={error} onClose={() => setError(null)} />
      {events === null ? (
        <Spinner />
      ) : (
        <>
          {invocations.length > 0 && (
            <details open>
              <summary>Recent invocations</summary>
              <table class="list compact" aria-label="Recent invocations">
                <Head columns={["Time", "Request ID", "#Duration", "#Memory used", "#Init"]} />
                <tbody>
                  {invocations.map(({ e, r }) => (
                    <tr key={e.eventId}>
                      <td>{new Date(e.timestamp!).toLocaleTimeString()}</td>
                      <td>
                        <button
                          class="link mono"
                          onClick={() => {
                            setPattern(`"${r!.requestId}"`);
                            setApplied(`"${r!.requestId}"`);
                          }}
                        >
                          {r!.requestId}
                        </button>
                      </td>
                      <td class="num">{r!.durationMs.toFixed(2)} ms</td>
                      <td class="num">
                        {r!.maxMemoryMb} / {r!.memoryMb} MB
                      </td>
                      <td class="num">{r!.initMs !== undefined ? `${r!.initMs.toFixed(1)} ms` : "–"}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </details>
          )}
          {events.length === 0 ? (
            <div class="empty">No log events in this range{applied ? " match the pattern" : ""}.</div>
          ) : (
            <div class="logview" role="log" aria-label="Log events">
              {events.map((e) => (
                <div key={e.eventId} class="logline">
                  <time>{new Date(e.timestamp!).toISOString().replace("T", " ").slice(0, 23)}</time>
                  <span>{e.message}</span>
                </div>
              ))}
              <div ref={bottom} />
            </div>
          )}
        </>
      )}
    </div>
  );
}

//! The Test tab: saved test events per function (in this browser), AWS's sample events as
//! templates, and Invoke with what AWS's console shows: the response, status, duration,
//! billed duration, memory, init duration and the log tail.
import { useEffect, useState } from "preact/hooks";
import { InvokeCommand } from "@aws-sdk/client-lambda";
import { useApp } from "../../ctx";
import { describeError } from "../../session";
import { Editor } from "../../components/Editor";
import { ErrorBox, Field } from "../../components/ui";
import { TEMPLATES, parseEvent, templateText } from "../../lib/templates";
import { decodeTail, parseReport, type Report } from "../../lib/report";
import type { FunctionProps } from "../Function";

interface SavedEvent {
  name: string;
  text: string;
}

const storeKey = (account: string, fn: string) => `nimbus.events.${account}.${fn}`;

function loadEvents(account: string, fn: string): SavedEvent[] {
  try {
    return JSON.parse(localStorage.getItem(storeKey(account, fn)) ?? "[]");
  } catch {
    return [];
  }
}

interface Result {
  status: number;
  functionError?: string;
  payload: string;
  log: string;
  report: Report | null;
  version?: string;
}

export function TestTab({ name }: FunctionProps) {
  const app = useApp();
  const account = app.session.account;
  const [events, setEvents] = useState<SavedEvent[]>(() => loadEvents(account, name));
  const [current, setCurrent] = useState<string>(events[0]?.name ?? "");
  const [eventName, setEventName] = useState(events[0]?.name ?? "my-event");
  const [body, setBody] = useState(events[0]?.text ?? templateText("hello-world"));
  const [docGen, setDocGen] = useState(0);
  const [invalid, setInvalid] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [result, setResult] = useState<Result | null>(null);
  const [busy, setBusy] = useState(false);
  const [qualifier, setQualifier] = useState("");

  useEffect(() => localStorage.setItem(storeKey(account, name), JSON.stringify(events)), [events]);

  const show = (text: string) => {
    setBody(text);
    setDocGen((g) => g + 1);
    setInvalid(null);
  };

  const pick = (n: string) => {
    setCurrent(n);
    const e = events.find((x) => x.name === n);
    if (e) {
      setEventName(e.name);
      show(e.text);
    }
  };

  const fromTemplate = (id: string) => {
    if (!id) return;
    setCurrent("");
    setEventName(id);
    show(templateText(id));
  };

  const save = () => {
    const n = eventName.trim();
    if (!/^[A-Za-z0-9._-]{1,25}$/.test(n)) {
      setInvalid("An event name has 1–25 letters, digits, periods, hyphens or underscores.");
      return;
    }
    const checked = parseEvent(body);
    if (!checked.ok) return setInvalid(checked.error);
    setEvents((es) => {
      // Saved under another name, it is a new event; the one it came from stays.
      const rest = es.filter((e) => e.name !== n);
      return [...rest, { name: n, text: body }].sort((a, b) => a.name.localeCompare(b.name));
    });
    setCurrent(n);
    app.toast(`Saved the event ${n}.`);
  };

  const removeEvent = () => {
    if (!current || !confirm(`Delete the saved event ${current}?`)) return;
    setEvents((es) => es.filter((e) => e.name !== current));
    setCurrent("");
  };

  const invoke = async () => {
    const checked = parseEvent(body);
    if (!checked.ok) {
      setInvalid(checked.error);
      return;
    }
    setInvalid(null);
    setError(null);
    setBusy(true);
    try {
      const r = await app.call((c) =>
        c.lambda.send(
          new InvokeCommand({
            FunctionName: name,
            Qualifier: qualifier || undefined,
            Payload: new TextEncoder().encode(checked.payload),
            LogType: "Tail",
          }),
        ),
      );
      const log = decodeTail(r.LogResult);
      setResult({
        status: r.StatusCode ?? 0,
        functionError: r.FunctionError,
        payload: r.Payload ? new TextDecoder().decode(r.Payload) : "",
        log,
        report: parseReport(log),
        version: r.ExecutedVersion,
      });
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  };

  const pretty = (s: string) => {
    try {
      return JSON.stringify(JSON.parse(s), null, 2);
    } catch {
      return s;
    }
  };

  return (
    <div class="test">
      <div class="row wrap">
        <Field label="Saved events">
          <select aria-label="Saved events" value={current} onChange={(e) => pick(e.currentTarget.value)}>
            <option value="">{events.length ? "Choose a saved event…" : "No saved events"}</option>
            {events.map((e) => (
              <option key={e.name}>{e.name}</option>
            ))}
          </select>
        </Field>
        <Field label="Template">
          <select aria-label="Template" value="" onChange={(e) => fromTemplate(e.currentTarget.value)}>
            <option value="">New event from a template…</option>
            {TEMPLATES.map((t) => (
              <option key={t.id} value={t.id}>
                {t.name}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Event name">
          <input aria-label="Event name" value={eventName} onInput={(e) => setEventName(e.currentTarget.value)} />
        </Field>
        <Field label="Qualifier">
          <input aria-label="Qualifier" placeholder="$LATEST" value={qualifier} onInput={(e) => setQualifier(e.currentTarget.value)} />
        </Field>
      </div>
      <Editor
        docKey={`event:${name}:${docGen}`}
        path="event.json"
        initial={body}
        onChange={(v) => {
          setBody(v);
          setInvalid(null);
        }}
        onSave={save}
        label="Event JSON"
      />
      {invalid && (
        <div class="field-error" role="alert">
          {invalid}
        </div>
      )}
      <div class="row">
        <button class="primary" onClick={invoke} disabled={busy}>
          {busy ? "Invoking…" : "Test"}
        </button>
        <button onClick={save}>Save event</button>
        {current && (
          <button class="ghost danger" onClick={removeEvent}>
            Delete event
          </button>
        )}
      </div>
      <ErrorBox error={error} onClose={() => setError(null)} />
      {result && (
        <div class={`result ${result.functionError ? "failed" : "succeeded"}`} aria-label="Execution result">
          <h3>
            {result.functionError ? `Execution failed (${result.functionError})` : "Execution succeeded"}
            <span class="muted small"> · status {result.status}</span>
          </h3>
          <dl class="facts">
            {result.report && (
              <>
                <dt>Request ID</dt>
                <dd>
                  <code>{result.report.requestId}</code>
                </dd>
                <dt>Duration</dt>
                <dd>{result.report.durationMs.toFixed(2)} ms</dd>
                <dt>Billed duration</dt>
                <dd>{result.report.billedMs} ms</dd>
                <dt>Memory</dt>
                <dd>
                  {result.report.maxMemoryMb} MB used of {result.report.memoryMb} MB
                </dd>
                <dt>Init duration</dt>
                <dd>{result.report.initMs !== undefined ? `${result.report.initMs.toFixed(2)} ms` : "– (warm)"}</dd>
              </>
            )}
            {result.version && (
              <>
                <dt>Version</dt>
                <dd>{result.version}</dd>
              </>
            )}
          </dl>
          <h4>Response</h4>
          <pre class="output" aria-label="Response">
            {pretty(result.payload)}
          </pre>
          <h4>Log output</h4>
          <pre class="output log" aria-label="Log output">
            {result.log}
          </pre>
        </div>
      )}
    </div>
  );
}

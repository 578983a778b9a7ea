//! One function's page: its header (runtime, state, last change) and a tab for each thing a
//! person does with it, each with its own URL.
import { useEffect, useState } from "preact/hooks";
import { GetFunctionCommand, type GetFunctionCommandOutput } from "@aws-sdk/client-lambda";
import { useApp } from "../ctx";
import { describeError } from "../session";
import { ErrorBox, Spinner, fmtTime } from "../components/ui";
import { TABS, href, type Tab } from "../router";
import { lazy, Suspense } from "preact/compat";

// Each tab is its own chunk: the editor (CodeMirror) and the charts (uPlot) load only when
// a tab that uses them is opened, so the sign-in page and the list stay small.
const CodeTab = lazy(() => import("./tabs/Code").then((m) => m.CodeTab));
const TestTab = lazy(() => import("./tabs/Test").then((m) => m.TestTab));
const MonitorTab = lazy(() => import("./tabs/Monitor").then((m) => m.MonitorTab));
const LogsTab = lazy(() => import("./tabs/Logs").then((m) => m.LogsTab));
const ConfigurationTab = lazy(() => import("./tabs/Configuration").then((m) => m.ConfigurationTab));
const AliasesTab = lazy(() => import("./tabs/Aliases").then((m) => m.AliasesTab));
const TriggersTab = lazy(() => import("./tabs/Triggers").then((m) => m.TriggersTab));

const LABELS: Record<Tab, string> = {
  code: "Code",
  test: "Test",
  monitor: "Monitor",
  logs: "Logs",
  configuration: "Configuration",
  aliases: "Versions & aliases",
  triggers: "Triggers & destinations",
};

export interface FunctionProps {
  name: string;
  fn: GetFunctionCommandOutput;
  reload: () => Promise<void>;
}

export function FunctionPage({ name, tab }: { name: string; tab: Tab }) {
  const app = useApp();
  const [fn, setFn] = useState<GetFunctionCommandOutput | null>(null);
  const [error, setError] = useState<string | null>(null);

  const reload = async () => {
    try {
      const r = await app.call((c) => c.lambda.send(new GetFunctionCommand({ FunctionName: name })));
      setFn(r);
      setError(null);
    } catch (e) {
      setError(describeError(e));
    }
  };

  useEffect(() => {
    reload();
  }, [name]);

  const c = fn?.Configuration;
  return (
    <section class="page">
      <nav class="crumbs" aria-label="Breadcrumb">
        <a href="#/functions">Functions</a> <span aria-hidden="true">/</span> <span>{name}</span>
      </nav>
      <div class="page-head">
        <h1>{name}</h1>
        {c && (
          <div class="badges">
            <span class="badge">{c.Runtime ?? c.PackageType}</span>
            <span class="badge">{c.MemorySize} MB</span>
            <span class={`badge state-${(c.State ?? "").toLowerCase()}`} title={c.StateReason}>
              {c.State}
            </span>
            {c.LastUpdateStatus && c.LastUpdateStatus !== "Successful" && <span class="badge">{c.LastUpdateStatus}</span>}
          </div>
        )}
        <div class="spacer" />
        {c && <span class="muted small">Last modified {fmtTime(c.LastModified)}</span>}
      </div>
      {c?.Description && <p class="muted">{c.Description}</p>}
      <ErrorBox error={error} />
      <nav class="tabs" role="tablist" aria-label="Function">
        {TABS.map((t) => (
          <a key={t} role="tab" aria-selected={t === tab} class={t === tab ? "active" : ""} href={href({ page: "function", name, tab: t })}>
            {LABELS[t]}
          </a>
        ))}
      </nav>
      <div role="tabpanel" class="tabpanel">
        {!fn ? (
          error ? null : <Spinner />
        ) : (
          <Suspense fallback={<Spinner />}>
            {tab === "code" && <CodeTab name={name} fn={fn} reload={reload} />}
            {tab === "test" && <TestTab name={name} fn={fn} reload={reload} />}
            {tab === "monitor" && <MonitorTab name={name} fn={fn} reload={reload} />}
            {tab === "logs" && <LogsTab name={name} fn={fn} reload={reload} />}
            {tab === "configuration" && <ConfigurationTab name={name} fn={fn} reload={reload} />}
            {tab === "aliases" && <AliasesTab name={name} fn={fn} reload={reload} />}
            {tab === "triggers" && <TriggersTab name={name} fn={fn} reload={reload} />}
          </Suspense>
        )}
      </div>
    </section>
  );
}

//! The functions list: every function with its runtime, memory, last change and the last
//! hour's invocations, errors and p90 duration; search, sort, create and delete.
import { useEffect, useMemo, useState } from "preact/hooks";
import { DeleteFunctionCommand, ListFunctionsCommand, type FunctionConfiguration } from "@aws-sdk/client-lambda";
import { GetMetricDataCommand, type MetricDataQuery } from "@aws-sdk/client-cloudwatch";
import { useApp } from "../ctx";
import { describeError } from "../session";
import { Dialog, Empty, ErrorBox, Spinner, fmtTime } from "../components/ui";
import { batches, lambdaQuery, qid } from "../lib/metrics";
import { href } from "../router";
import { dropDraft } from "../lib/drafts";

interface Stats {
  invocations: number;
  errors: number;
  p90?: number;
}

type SortKey = "name" | "runtime" | "memory" | "modified" | "invocations" | "errors" | "p90";

export function Functions() {
  const app = useApp();
  const [functions, setFunctions] = useState<FunctionConfiguration[] | null>(null);
  const [stats, setStats] = useState<Map<string, Stats>>(new Map());
  const [statsLoaded, setStatsLoaded] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [query, setQuery] = useState("");
  const [sort, setSort] = useState<{ key: SortKey; desc: boolean }>({ key: "name", desc: false });
  const [deleting, setDeleting] = useState<string | null>(null);

  const load = async () => {
    setError(null);
    try {
      const all: FunctionConfiguration[] = [];
      let marker: string | undefined;
      do {
        const page = await app.call((c) => c.lambda.send(new ListFunctionsCommand({ Marker: marker, MaxItems: 50 })));
        all.push(...(page.Functions ?? []));
        marker = page.NextMarker;
      } while (marker);
      setFunctions(all);
      loadStats(all);
    } catch (e) {
      setError(describeError(e));
      setFunctions((f) => f ?? []);
    }
  };

  const loadStats = async (fns: FunctionConfiguration[]) => {
    const end = new Date();
    const start = new Date(end.getTime() - 3600_000);
    const queries: MetricDataQuery[] = [];
    fns.forEach((f, i) => {
      const name = f.FunctionName!;
      queries.push(lambdaQuery(qid("i", i), "Invocations", "Sum", 3600, name));
      queries.push(lambdaQuery(qid("e", i), "Errors", "Sum", 3600, name));
      queries.push(lambdaQuery(qid("d", i), "Duration", "p90", 3600, name));
    });
    const next = new Map<string, Stats>();
    try {
      for (const batch of batches(queries)) {
        const r = await app.call((c) =>
          c.cloudwatch.send(new GetMetricDataCommand({ MetricDataQueries: batch, StartTime: start, EndTime: end })),
        );
        for (const res of r.MetricDataResults ?? []) {
          const [kind, idx] = (res.Id ?? "").split("_");
          const f = fns[Number(idx)];
          if (!f) continue;
          const s = next.get(f.FunctionName!) ?? { invocations: 0, errors: 0 };
          const values = res.Values ?? [];
          const sum = values.reduce((a, v) => a + v, 0);
          if (kind === "i") s.invocations = sum;
          if (kind === "e") s.errors = sum;
          if (kind === "d" && values.length) s.p90 = Math.max(...values);
          next.set(f.FunctionName!, s);
        }
      }
      setStats(next);
    } catch {
      // The list works without metrics; their columns stay empty.
    } finally {
      setStatsLoaded(true);
    }
  };

  useEffect(() => {
    load();
  }, []);

  const rows = useMemo(() => {
    const q = query.trim().toLowerCase();
    const list = (functions ?? []).filter(
      (f) => !q || f.FunctionName!.toLowerCase().includes(q) || (f.Runtime ?? "").toLowerCase().includes(q) || (f.Description ?? "").toLowerCase().includes(q),
    );
    const val = (f: FunctionConfiguration): string | number => {
      const s = stats.get(f.FunctionName!);
      switch (sort.key) {
        case "name":
          return f.FunctionName!.toLowerCase();
        case "runtime":
          return f.Runtime ?? f.PackageType ?? "";
        case "memory":
          return f.MemorySize ?? 0;
        case "modified":
          return f.LastModified ?? "";
        case "invocations":
          return s?.invocations ?? 0;
        case "errors":
          return s?.errors ?? 0;
        case "p90":
          return s?.p90 ?? -1;
      }
    };
    return list.sort((a, b) => {
      const x = val(a),
        y = val(b);
      const c = x < y ? -1 : x > y ? 1 : 0;
      return sort.desc ? -c : c;
    });
  }, [functions, stats, query, sort]);

  const header = (key: SortKey, label: string, numeric = false) => (
    <th aria-sort={sort.key === key ? (sort.desc ? "descending" : "ascending") : "none"} class={numeric ? "num" : ""}>
      <button class="sort" onClick={() => setSort((s) => ({ key, desc: s.key === key ? !s.desc : numeric }))}>
        {label} {sort.key === key ? (sort.desc ? "↓" : "↑") : ""}
      </button>
    </th>
  );

  const remove = async (name: string) => {
    try {
      await app.call((c) => c.lambda.send(new DeleteFunctionCommand({ FunctionName: name })));
      // Its unsaved edits and saved test events go with it: a new function of that name is new.
      dropDraft(localStorage, app.session.account, name);
      localStorage.removeItem(`nimbus.events.${app.session.account}.${name}`);
      app.toast(`Deleted ${name}.`);
      setDeleting(null);
      setFunctions((fs) => (fs ?? []).filter((f) => f.FunctionName !== name));
    } catch (e) {
      setError(describeError(e));
      setDeleting(null);
    }
  };

  return (
    <section class="page">
      <div class="page-head">
        <h1>Functions</h1>
        <div class="spacer" />
        <input
          type="search"
          class="search"
          placeholder="Search functions"
          aria-label="Search functions"
          value={query}
          onInput={(e) => setQuery(e.currentTarget.value)}
        />
        <button class="ghost" onClick={load} aria-label="Refresh">
          ↻
        </button>
        <a class="button primary" href="#/create">
          Create function
        </a>
      </div>
      <ErrorBox error={error} onClose={() => setError(null)} />
      {functions === null ? (
        <Spinner />
      ) : functions.length === 0 ? (
        <Empty title="No functions yet">
          <p>Create one from a blueprint, or upload a zip.</p>
          <a class="button primary" href="#/create">
            Create function
          </a>
        </Empty>
      ) : (
        <div class="table-wrap">
          <table class="list" aria-label="Functions" data-stats={statsLoaded ? "loaded" : "loading"}>
            <thead>
              <tr>
                {header("name", "Name")}
                {header("runtime", "Runtime")}
                {header("memory", "Memory", true)}
                {header("modified", "Last modified")}
                {header("invocations", "Invocations (1h)", true)}
                {header("errors", "Errors (1h)", true)}
                {header("p90", "p90 duration (1h)", true)}
                <th>
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {rows.map((f) => {
                const s = stats.get(f.FunctionName!);
                return (
                  <tr key={f.FunctionName}>
                    <td>
                      <a href={href({ page: "function", name: f.FunctionName!, tab: "code" })}>{f.FunctionName}</a>
                      {f.Description && <div class="muted small">{f.Description}</div>}
                    </td>
                    <td>{f.Runtime ?? f.PackageType}</td>
                    <td class="num">{f.MemorySize} MB</td>
                    <td>{fmtTime(f.LastModified)}</td>
                    <td class="num">{s ? s.invocations : "–"}</td>
                    <td class={`num ${s && s.errors > 0 ? "bad" : ""}`}>{s ? s.errors : "–"}</td>
                    <td class="num">{s?.p90 !== undefined ? `${s.p90.toFixed(1)} ms` : "–"}</td>
                    <td class="actions">
                      <button class="ghost danger" onClick={() => setDeleting(f.FunctionName!)} aria-label={`Delete ${f.FunctionName}`}>
                        Delete
                      </button>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
          {rows.length === 0 && <p class="muted">No function matches “{query}”.</p>}
        </div>
      )}
      <DeleteDialog name={deleting} onCancel={() => setDeleting(null)} onConfirm={remove} />
    </section>
  );
}

export function DeleteDialog({ name, onCancel, onConfirm }: { name: string | null; onCancel: () => void; onConfirm: (n: string) => void }) {
  const [typed, setTyped] = useState("");
  useEffect(() => setTyped(""), [name]);
  return (
    <Dialog title={`Delete ${name ?? ""}?`} open={!!name} onClose={onCancel}>
      <p>
        This deletes the function, its versions and aliases. To confirm, type <strong>{name}</strong>.
      </p>
      <input aria-label="Function name to confirm" value={typed} onInput={(e) => setTyped(e.currentTarget.value)} />
      <div class="dialog-actions">
        <button onClick={onCancel}>Cancel</button>
        <button class="danger" disabled={typed !== name} onClick={() => name && onConfirm(name)}>
          Delete
        </button>
      </div>
    </Dialog>
  );
}

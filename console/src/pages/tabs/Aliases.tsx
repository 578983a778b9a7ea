//! The Versions & aliases tab: publish a version, the versions, and a picture of the aliases
//! and where they route (weights, aliases of aliases); change an alias's target or weights.
import { useEffect, useState } from "preact/hooks";
import {
  CreateAliasCommand,
  DeleteAliasCommand,
  DeleteProvisionedConcurrencyConfigCommand,
  ListProvisionedConcurrencyConfigsCommand,
  PutProvisionedConcurrencyConfigCommand,
  type ProvisionedConcurrencyConfigListItem,
  ListAliasesCommand,
  ListVersionsByFunctionCommand,
  PublishVersionCommand,
  UpdateAliasCommand,
  type AliasConfiguration,
  type FunctionConfiguration,
} from "@aws-sdk/client-lambda";
import { useApp } from "../../ctx";
import { describeError } from "../../session";
import { Dialog, ErrorBox, Field, Spinner, fmtTime, Head } from "../../components/ui";
import { BOX, layout, type AliasInfo } from "../../lib/aliasgraph";
import type { FunctionProps } from "../Function";

interface Editing {
  name: string;
  isNew: boolean;
  target: string;
  extraVersion: string;
  extraWeight: number;
  description: string;
}

export function AliasesTab({ name, reload }: FunctionProps) {
  const app = useApp();
  const [versions, setVersions] = useState<FunctionConfiguration[] | null>(null);
  const [aliases, setAliases] = useState<AliasConfiguration[]>([]);
  const [provisioned, setProvisioned] = useState<Map<string, ProvisionedConcurrencyConfigListItem>>(new Map());
  const [error, setError] = useState<string | null>(null);
  const [description, setDescription] = useState("");
  const [busy, setBusy] = useState(false);
  const [editing, setEditing] = useState<Editing | null>(null);

  const load = async () => {
    try {
      const vs: FunctionConfiguration[] = [];
      let marker: string | undefined;
      do {
        const r = await app.call((c) => c.lambda.send(new ListVersionsByFunctionCommand({ FunctionName: name, Marker: marker })));
        vs.push(...(r.Versions ?? []));
        marker = r.NextMarker;
      } while (marker);
      const as: { Aliases: AliasConfiguration[] } = { Aliases: [] };
      let next: string | undefined;
      do {
        const page = await app.call((c) => c.lambda.send(new ListAliasesCommand({ FunctionName: name, Marker: next })));
        as.Aliases.push(...(page.Aliases ?? []));
        next = page.NextMarker;
      } while (next);
      const pcs = await app.call((c) => c.lambda.send(new ListProvisionedConcurrencyConfigsCommand({ FunctionName: name })));
      setVersions(vs);
      setAliases(as.Aliases ?? []);
      // Keyed by the qualifier: the configs' ARNs end in it.
      setProvisioned(new Map((pcs.ProvisionedConcurrencyConfigs ?? []).map((p) => [p.FunctionArn!.split(":").pop()!, p])));
    } catch (e) {
      setError(describeError(e));
      setVersions((v) => v ?? []);
    }
  };

  useEffect(() => {
    load();
  }, [name]);

  // While environments are being provisioned, follow their status.
  const provisioning = [...provisioned.values()].some((p) => p.Status === "IN_PROGRESS");
  useEffect(() => {
    if (!provisioning) return;
    const t = setTimeout(load, 2000);
    return () => clearTimeout(t);
  }, [provisioning, provisioned]);

  const publish = async () => {
    setBusy(true);
    setError(null);
    try {
      const v = await app.call((c) => c.lambda.send(new PublishVersionCommand({ FunctionName: name, Description: description || undefined })));
      app.toast(`Published version ${v.Version}.`);
      setDescription("");
      await load();
      await reload();
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  };

  const saveAlias = async (e: Editing) => {
    const routing = e.extraVersion && e.extraVersion !== e.target && e.extraWeight > 0 ? { AdditionalVersionWeights: { [e.extraVersion]: e.extraWeight / 100 } } : { AdditionalVersionWeights: {} };
    const input = { FunctionName: name, Name: e.name, FunctionVersion: e.target, Description: e.description, RoutingConfig: routing };
    if (e.isNew) await app.call((c) => c.lambda.send(new CreateAliasCommand(input)));
    else await app.call((c) => c.lambda.send(new UpdateAliasCommand(input)));
    app.toast(`${e.isNew ? "Created" : "Updated"} the alias ${e.name}.`);
    setEditing(null);
    await load();
  };

  const setProvisionedFor = async (qualifier: string) => {
    const current = provisioned.get(qualifier)?.RequestedProvisionedConcurrentExecutions;
    const answer = prompt(`Provisioned concurrency of ${qualifier} (0 or empty removes it)`, current ? String(current) : "1");
    if (answer === null) return;
    const n = Number(answer.trim() || "0");
    if (!Number.isInteger(n) || n < 0) return setError("Provisioned concurrency is a whole number of environments.");
    try {
      if (n === 0) await app.call((c) => c.lambda.send(new DeleteProvisionedConcurrencyConfigCommand({ FunctionName: name, Qualifier: qualifier })));
      else
        await app.call((c) =>
          c.lambda.send(new PutProvisionedConcurrencyConfigCommand({ FunctionName: name, Qualifier: qualifier, ProvisionedConcurrentExecutions: n })),
        );
      app.toast(n ? `Provisioning ${n} environment${n > 1 ? "s" : ""} for ${qualifier}.` : `Removed the provisioned concurrency of ${qualifier}.`);
      await load();
    } catch (e) {
      setError(describeError(e));
    }
  };

  const describeProvisioned = (q: string) => {
    const p = provisioned.get(q);
    return p ? `${p.AllocatedProvisionedConcurrentExecutions ?? 0} / ${p.RequestedProvisionedConcurrentExecutions} ${p.Status}` : "–";
  };

  const removeAlias = async (a: string) => {
    if (!confirm(`Delete the alias ${a}?`)) return;
    try {
      await app.call((c) => c.lambda.send(new DeleteAliasCommand({ FunctionName: name, Name: a })));
      await load();
    } catch (e) {
      setError(describeError(e));
    }
  };

  if (!versions) return <Spinner />;
  const published = versions.filter((v) => v.Version !== "$LATEST");
  const infos: AliasInfo[] = aliases.map((a) => {
    const w = Object.entries(a.RoutingConfig?.AdditionalVersionWeights ?? {})[0];
    return { name: a.Name!, target: a.FunctionVersion!, extra: w ? { version: w[0], weight: w[1] } : undefined };
  });
  const graph = layout(infos, versions.map((v) => v.Version!));
  const pos = new Map(graph.nodes.map((n) => [n.id, n]));
  const edit = (a?: AliasConfiguration) => {
    const w = Object.entries(a?.RoutingConfig?.AdditionalVersionWeights ?? {})[0];
    setEditing({
      name: a?.Name ?? "",
      isNew: !a,
      target: a?.FunctionVersion ?? published[published.length - 1]?.Version ?? "$LATEST",
      extraVersion: w?.[0] ?? "",
      extraWeight: w ? Math.round(w[1] * 100) : 0,
      description: a?.Description ?? "",
    });
  };

  return (
    <div class="stack">
      <ErrorBox error={error} onClose={() => setError(null)} />
      <section class="card section" aria-label="Publish a version">
        <div class="row wrap">
          <input class="grow" aria-label="Version description" placeholder="Description of the new version" value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
          <button class="primary" onClick={publish} disabled={busy}>
            {busy ? "Publishing…" : "Publish new version"}
          </button>
        </div>
      </section>
      <section class="card section" aria-label="Aliases">
        <div class="section-head">
          <h2>Aliases</h2>
          <div class="spacer" />
          <button onClick={() => edit()}>Create alias</button>
        </div>
        {aliases.length === 0 ? (
          <p class="muted">No aliases. An alias is a name for a version (or for another alias) that callers use.</p>
        ) : (
          <>
            <svg class="aliasgraph" viewBox={`0 0 ${BOX.right + BOX.w + 10} ${graph.height}`} role="img" aria-label="Aliases and the versions they route to">
              <defs>
                <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
                  <path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead" />
                </marker>
              </defs>
              {graph.edges.map((e, i) => {
                const a = pos.get(e.from)!,
                  b = pos.get(e.to)!;
                const y1 = a.y + BOX.h / 2,
                  y2 = b.y + BOX.h / 2;
                const path =
                  b.kind === "alias"
                    ? `M ${a.x} ${y1} C ${a.x - 40} ${y1}, ${b.x - 40} ${y2}, ${b.x} ${y2}`
                    : `M ${a.x + BOX.w} ${y1} C ${a.x + BOX.w + 70} ${y1}, ${b.x - 70} ${y2}, ${b.x} ${y2}`;
                const mx = b.kind === "alias" ? a.x + 4 : (a.x + BOX.w + b.x) / 2;
                return (
                  <g key={i}>
                    <path d={path} class="edge" marker-end="url(#arrow)" />
                    <text x={mx} y={(y1 + y2) / 2 - 4} class="edge-label" text-anchor="middle">
                      {e.percent}%
                    </text>
                  </g>
                );
              })}
              {graph.nodes.map((n) => (
                <g key={n.id} class={`node ${n.kind}`} onClick={() => n.kind === "alias" && edit(aliases.find((a) => a.Name === n.label))}>
                  <rect x={n.x} y={n.y} width={BOX.w} height={BOX.h} rx="8" />
                  <text x={n.x + BOX.w / 2} y={n.y + BOX.h / 2 + 5} text-anchor="middle">
                    {n.label}
                  </text>
                </g>
              ))}
            </svg>
            <table class="list compact" aria-label="Alias list">
              <Head columns={["Alias", "Points at", "Weights", "Description", "Provisioned"]} actions />
              <tbody>
                {aliases.map((a) => (
                  <tr key={a.Name}>
                    <td>{a.Name}</td>
                    <td>{a.FunctionVersion}</td>
                    <td>
                      {Object.entries(a.RoutingConfig?.AdditionalVersionWeights ?? {})
                        .map(([v, w]) => `${v}: ${Math.round(w * 1000) / 10}%`)
                        .join(", ") || "–"}
                    </td>
                    <td>{a.Description}</td>
                    <td>{describeProvisioned(a.Name!)}</td>
                    <td class="actions">
                      <button class="ghost small" onClick={() => edit(a)}>
                        Edit
                      </button>
                      <button class="ghost small" onClick={() => setProvisionedFor(a.Name!)}>
                        Provisioned…
                      </button>
                      <button class="ghost small danger" onClick={() => removeAlias(a.Name!)}>
                        Delete
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </>
        )}
      </section>
      <section class="card section" aria-label="Versions">
        <h2>Versions</h2>
        <table class="list compact" aria-label="Version list">
          <Head columns={["Version", "Description", "Last modified", "Code SHA-256", "Provisioned"]} actions />
          <tbody>
            {[...versions].reverse().map((v) => (
              <tr key={v.Version}>
                <td>{v.Version}</td>
                <td>{v.Description}</td>
                <td>{fmtTime(v.LastModified)}</td>
                <td class="mono small">{v.CodeSha256?.slice(0, 12)}…</td>
                <td>{v.Version === "$LATEST" ? "" : describeProvisioned(v.Version!)}</td>
                <td class="actions">
                  {v.Version !== "$LATEST" && (
                    <button class="ghost small" onClick={() => setProvisionedFor(v.Version!)}>
                      Provisioned…
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      <AliasDialog editing={editing} setEditing={setEditing} versions={versions.map((v) => v.Version!)} aliases={aliases.map((a) => a.Name!)} onSave={saveAlias} />
    </div>
  );
}

function AliasDialog({
  editing,
  setEditing,
  versions,
  aliases,
  onSave,
}: {
  editing: Editing | null;
  setEditing: (e: Editing | null) => void;
  versions: string[];
  aliases: string[];
  onSave: (e: Editing) => Promise<void>;
}) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => setError(null), [editing?.name, editing?.isNew]);
  if (!editing) return <Dialog title="" open={false} onClose={() => setEditing(null)} children={null} />;
  const e = editing;
  const targets = [...versions, ...aliases.filter((a) => a !== e.name)];
  return (
    <Dialog title={e.isNew ? "Create alias" : `Edit alias ${e.name}`} open={true} onClose={() => setEditing(null)}>
      <form
        class="stack"
        onSubmit={async (ev) => {
          ev.preventDefault();
          setBusy(true);
          try {
            await onSave(e);
          } catch (err) {
            setError(describeError(err));
          } finally {
            setBusy(false);
          }
        }}
      >
        {e.isNew && (
          <Field label="Name">
            <input name="aliasName" value={e.name} onInput={(x) => setEditing({ ...e, name: x.currentTarget.value })} required />
          </Field>
        )}
        <Field label="Version or alias">
          <select name="aliasTarget" value={e.target} onChange={(x) => setEditing({ ...e, target: x.currentTarget.value })}>
            {targets.map((t) => (
              <option key={t} value={t}>
                {aliases.includes(t) ? `alias ${t}` : t}
              </option>
            ))}
          </select>
        </Field>
        <div class="row">
          <Field label="Additional version">
            <select name="extraVersion" value={e.extraVersion} onChange={(x) => setEditing({ ...e, extraVersion: x.currentTarget.value })}>
              <option value="">None</option>
              {versions
                .filter((v) => v !== "$LATEST" && v !== e.target)
                .map((v) => (
                  <option key={v}>{v}</option>
                ))}
            </select>
          </Field>
          <Field label={`Weight: ${e.extraWeight}%`}>
            <input
              type="range"
              min={0}
              max={99}
              name="extraWeight"
              disabled={!e.extraVersion}
              value={e.extraWeight}
              onInput={(x) => setEditing({ ...e, extraWeight: Number(x.currentTarget.value) })}
            />
          </Field>
        </div>
        <Field label="Description">
          <input name="aliasDescription" value={e.description} onInput={(x) => setEditing({ ...e, description: x.currentTarget.value })} />
        </Field>
        <ErrorBox error={error} />
        <div class="dialog-actions">
          <button type="button" onClick={() => setEditing(null)}>
            Cancel
          </button>
          <button class="primary" type="submit" disabled={busy}>
            Save
          </button>
        </div>
      </form>
    </Dialog>
  );
}

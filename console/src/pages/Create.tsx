//! Creating a function: from a blueprint or a zip, with a new execution role (basic Lambda
//! permissions, as AWS's console makes one) or an existing role.
import { useEffect, useState } from "preact/hooks";
import { CreateFunctionCommand, type Runtime } from "@aws-sdk/client-lambda";
import { AttachRolePolicyCommand, CreateRoleCommand } from "@aws-sdk/client-iam";
import { useApp } from "../ctx";
import { describeError } from "../session";
import { ErrorBox, Field } from "../components/ui";
import { BLUEPRINTS, LAMBDA_TRUST, RUNTIMES, checkFunctionName, roleNameFor } from "../lib/blueprints";
import { bytes, pack } from "../lib/zip";
import { go } from "../router";
import { useRoles } from "../resources";

export function Create() {
  const app = useApp();
  const [source, setSource] = useState<string>(BLUEPRINTS[0].id);
  const blueprint = BLUEPRINTS.find((b) => b.id === source);
  const [name, setName] = useState("");
  const [runtime, setRuntime] = useState(BLUEPRINTS[0].runtime);
  const [handler, setHandler] = useState(BLUEPRINTS[0].handler);
  const [arch, setArch] = useState("x86_64");
  const [roleMode, setRoleMode] = useState<"new" | "existing">("new");
  const [roleArn, setRoleArn] = useState("");
  const [zip, setZip] = useState<Uint8Array | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [touched, setTouched] = useState(false);

  useEffect(() => {
    if (blueprint) {
      setRuntime(blueprint.runtime);
      setHandler(blueprint.handler);
    }
  }, [source]);

  // Roles Lambda may assume.
  const roles = useRoles(app).filter((role) => (role.AssumeRolePolicyDocument ?? "").includes("lambda"));

  const nameError = checkFunctionName(name);

  const create = async (e: Event) => {
    e.preventDefault();
    setTouched(true);
    if (nameError) return;
    if (!blueprint && !zip) {
      setError("Choose a zip file to upload.");
      return;
    }
    setBusy(true);
    setError(null);
    try {
      let role = roleArn;
      if (roleMode === "new") {
        const random = Math.random().toString(36).slice(2, 10);
        const created = await app.call((c) =>
          c.iam.send(
            new CreateRoleCommand({
              RoleName: roleNameFor(name, random),
              Path: "/service-role/",
              AssumeRolePolicyDocument: LAMBDA_TRUST,
              Description: `Execution role of the function ${name}, made by the console`,
            }),
          ),
        );
        role = created.Role!.Arn!;
        for (const policy of blueprint?.policies ?? ["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"]) {
          await app.call((c) => c.iam.send(new AttachRolePolicyCommand({ RoleName: created.Role!.RoleName!, PolicyArn: policy })));
        }
      } else if (!role) {
        throw new Error("Choose an execution role.");
      }
      const code = blueprint ? pack(new Map(Object.entries(blueprint.files).map(([p, t]) => [p, bytes(t)]))) : zip!;
      await app.call((c) =>
        c.lambda.send(
          new CreateFunctionCommand({
            FunctionName: name,
            Runtime: runtime as Runtime,
            Handler: handler,
            Role: role,
            Architectures: [arch as "x86_64" | "arm64"],
            Code: { ZipFile: code },
            Description: blueprint ? `From the blueprint ${blueprint.name}` : undefined,
          }),
        ),
      );
      app.toast(`Created ${name}.`);
      go({ page: "function", name, tab: "code" });
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="page narrow">
      <div class="page-head">
        <h1>Create function</h1>
      </div>
      <form onSubmit={create} class="stack">
        <fieldset class="cards" aria-label="Start from">
          <legend>Start from</legend>
          {BLUEPRINTS.map((b) => (
            <label key={b.id} class={`choice ${source === b.id ? "selected" : ""}`}>
              <input type="radio" name="source" value={b.id} checked={source === b.id} onChange={() => setSource(b.id)} />
              <strong>{b.name}</strong>
              <span class="muted small">{b.description}</span>
            </label>
          ))}
          <label class={`choice ${source === "zip" ? "selected" : ""}`}>
            <input type="radio" name="source" value="zip" checked={source === "zip"} onChange={() => setSource("zip")} />
            <strong>Upload a .zip</strong>
            <span class="muted small">Your own package (up to 50 MB).</span>
          </label>
        </fieldset>
        {source === "zip" && (
          <Field label="Package (.zip)">
            <input
              type="file"
              accept=".zip,application/zip"
              onChange={async (e) => {
                const f = e.currentTarget.files?.[0];
                setZip(f ? new Uint8Array(await f.arrayBuffer()) : null);
              }}
            />
          </Field>
        )}
        <Field label="Function name" hint="Letters, digits, hyphens and underscores; up to 64.">
          <input name="functionName" value={name} onInput={(e) => setName(e.currentTarget.value)} aria-invalid={touched && !!nameError} required />
        </Field>
        {touched && nameError && <div class="field-error">{nameError}</div>}
        <div class="row">
          <Field label="Runtime">
            <select name="runtime" value={runtime} onChange={(e) => setRuntime(e.currentTarget.value)}>
              {RUNTIMES.map((r) => (
                <option key={r}>{r}</option>
              ))}
            </select>
          </Field>
          <Field label="Handler">
            <input name="handler" value={handler} onInput={(e) => setHandler(e.currentTarget.value)} />
          </Field>
          <Field label="Architecture">
            <select value={arch} onChange={(e) => setArch(e.currentTarget.value)}>
              <option>x86_64</option>
              <option>arm64</option>
            </select>
          </Field>
        </div>
        <fieldset>
          <legend>Execution role</legend>
          <label class="inline">
            <input type="radio" name="role" checked={roleMode === "new"} onChange={() => setRoleMode("new")} /> Create a new role with basic Lambda
            permissions{blueprint && blueprint.policies.length > 1 ? " and the trigger's" : ""}
          </label>
          <label class="inline">
            <input type="radio" name="role" checked={roleMode === "existing"} onChange={() => setRoleMode("existing")} /> Use an existing role
          </label>
          {roleMode === "existing" && (
            <select aria-label="Existing role" value={roleArn} onChange={(e) => setRoleArn(e.currentTarget.value)}>
              <option value="">Choose a role…</option>
              {roles.map((r) => (
                <option key={r.Arn} value={r.Arn}>
                  {r.RoleName}
                </option>
              ))}
            </select>
          )}
        </fieldset>
        <ErrorBox error={error} onClose={() => setError(null)} />
        <div class="row">
          <a class="button" href="#/functions">
            Cancel
          </a>
          <button class="primary" type="submit" disabled={busy}>
            {busy ? "Creating…" : "Create function"}
          </button>
        </div>
      </form>
    </section>
  );
}

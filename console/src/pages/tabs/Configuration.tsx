//! The Configuration tab: general settings, environment variables, execution role, VPC,
//! concurrency, the function URL and tags; each section saves on its own and shows its
//! own error.
import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import {
  AddPermissionCommand,
  CreateFunctionUrlConfigCommand,
  RemovePermissionCommand,
  DeleteFunctionConcurrencyCommand,
  DeleteFunctionUrlConfigCommand,
  GetFunctionConfigurationCommand,
  GetFunctionUrlConfigCommand,
  PutFunctionConcurrencyCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateFunctionCodeCommand,
  UpdateFunctionConfigurationCommand,
  type FunctionUrlConfig,
  type Runtime,
  type UpdateFunctionConfigurationCommandInput,
} from "@aws-sdk/client-lambda";
import { EncryptCommand, ListAliasesCommand as ListKeyAliasesCommand, ListKeysCommand, KMSClient } from "@aws-sdk/client-kms";
import { useApp } from "../../ctx";
import { describeError } from "../../session";
import { ErrorBox, Field, Head } from "../../components/ui";
import { RUNTIMES } from "../../lib/blueprints";
import type { FunctionProps } from "../Function";
import { downloadPackage, useRoles } from "../../resources";
import { toBase64 } from "../../lib/zip";

function Section({ title, children, onSave, busy, error, setError, dirty = true }: {
  title: string;
  children: ComponentChildren;
  onSave?: () => void;
  busy?: boolean;
  error: string | null;
  setError: (e: string | null) => void;
  dirty?: boolean;
}) {
  return (
    <section class="card section" aria-label={title}>
      <div class="section-head">
        <h2>{title}</h2>
        <div class="spacer" />
        {onSave && (
          <button class="primary" onClick={onSave} disabled={busy || !dirty}>
            {busy ? "Saving…" : "Save"}
          </button>
        )}
      </div>
      <ErrorBox error={error} onClose={() => setError(null)} />
      {children}
    </section>
  );
}

/** Runs a save: busy while it runs, the error next to the section, a toast when done. */
function useSave(reload: () => Promise<void>) {
  const app = useApp();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const run = async (what: string, f: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    try {
      await f();
      app.toast(`Saved ${what}.`);
      await reload();
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, setError, run };
}

async function waitForUpdate(app: ReturnType<typeof useApp>, name: string) {
  for (let i = 0; i < 120; i++) {
    const c = await app.call((x) => x.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: name })));
    if (c.LastUpdateStatus === "Failed") throw new Error(c.LastUpdateStatusReason ?? "The update failed.");
    if (c.LastUpdateStatus !== "InProgress") return;
    await new Promise((r) => setTimeout(r, 500));
  }
}

export function ConfigurationTab(props: FunctionProps) {
  return (
    <div class="stack">
      <General {...props} />
      <Environment {...props} />
      <RoleSection {...props} />
      <Concurrency {...props} />
      <UrlSection {...props} />
      <Vpc {...props} />
      <Tags {...props} />
    </div>
  );
}

function General({ name, fn, reload }: FunctionProps) {
  const app = useApp();
  const c = fn.Configuration!;
  const initial = {
    MemorySize: c.MemorySize ?? 128,
    Timeout: c.Timeout ?? 3,
    EphemeralStorage: c.EphemeralStorage?.Size ?? 512,
    Handler: c.Handler ?? "",
    Runtime: c.Runtime ?? "",
    Description: c.Description ?? "",
    Architecture: c.Architectures?.[0] ?? "x86_64",
  };
  const [v, setV] = useState(initial);
  const save = useSave(reload);
  const dirty = JSON.stringify(v) !== JSON.stringify(initial);
  const set = (k: keyof typeof v, val: string | number) => setV({ ...v, [k]: val });
  return (
    <Section
      title="General configuration"
      dirty={dirty}
      {...save}
      onSave={() =>
        save.run("the general configuration", async () => {
          const input: UpdateFunctionConfigurationCommandInput = {
            FunctionName: name,
            MemorySize: Number(v.MemorySize),
            Timeout: Number(v.Timeout),
            EphemeralStorage: { Size: Number(v.EphemeralStorage) },
            Description: v.Description,
          };
          if (c.PackageType !== "Image") {
            input.Handler = v.Handler;
            input.Runtime = v.Runtime as Runtime;
          }
          await app.call((x) => x.lambda.send(new UpdateFunctionConfigurationCommand(input)));
          await waitForUpdate(app, name);
          if (v.Architecture !== initial.Architecture) {
            // The architecture changes with the code, as in AWS.
            const zip = await downloadPackage(app, name);
            await app.call((x) =>
              x.lambda.send(
                new UpdateFunctionCodeCommand({ FunctionName: name, ZipFile: zip, Architectures: [v.Architecture as "x86_64" | "arm64"] }),
              ),
            );
            await waitForUpdate(app, name);
          }
        })
      }
    >
      <div class="grid">
        <Field label="Memory (MB)" hint="128–10240">
          <input name="memory" type="number" min={128} max={10240} value={v.MemorySize} onInput={(e) => set("MemorySize", e.currentTarget.value)} />
        </Field>
        <Field label="Timeout (seconds)" hint="1–900">
          <input name="timeout" type="number" min={1} max={900} value={v.Timeout} onInput={(e) => set("Timeout", e.currentTarget.value)} />
        </Field>
        <Field label="Ephemeral storage (MB)" hint="512–10240">
          <input name="ephemeral" type="number" min={512} max={10240} value={v.EphemeralStorage} onInput={(e) => set("EphemeralStorage", e.currentTarget.value)} />
        </Field>
        <Field label="Runtime">
          <select name="runtime" value={v.Runtime} onChange={(e) => set("Runtime", e.currentTarget.value)} disabled={c.PackageType === "Image"}>
            {[...new Set([v.Runtime, ...RUNTIMES])].filter(Boolean).map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
        </Field>
        <Field label="Handler">
          <input name="handler" value={v.Handler} onInput={(e) => set("Handler", e.currentTarget.value)} disabled={c.PackageType === "Image"} />
        </Field>
        <Field label="Architecture">
          <select name="architecture" value={v.Architecture} onChange={(e) => set("Architecture", e.currentTarget.value)}>
            <option>x86_64</option>
            <option>arm64</option>
          </select>
        </Field>
      </div>
      <Field label="Description">
        <input name="description" value={v.Description} onInput={(e) => set("Description", e.currentTarget.value)} />
      </Field>
    </Section>
  );
}

interface KeyChoice {
  arn: string;
  label: string;
}

/** The account's KMS keys, each named by its aliases. */
function useKmsKeys(): KeyChoice[] {
  const app = useApp();
  const [keys, setKeys] = useState<KeyChoice[]>([]);
  useEffect(() => {
    (async () => {
      try {
        const ks = await app.call((c) => c.get(KMSClient).send(new ListKeysCommand({ Limit: 1000 })));
        const as = await app.call((c) => c.get(KMSClient).send(new ListKeyAliasesCommand({ Limit: 100 })));
        setKeys(
          (ks.Keys ?? []).map((k) => {
            const names = (as.Aliases ?? []).filter((a) => a.TargetKeyId === k.KeyId).map((a) => a.AliasName);
            return { arn: k.KeyArn!, label: names.length ? `${names.join(", ")} (${k.KeyId})` : k.KeyId! };
          }),
        );
      } catch {
        setKeys([]);
      }
    })();
  }, []);
  return keys;
}

function Environment({ name, fn, reload }: FunctionProps) {
  const app = useApp();
  const c = fn.Configuration!;
  const initial = Object.entries(c.Environment?.Variables ?? {}).map(([k, v]) => ({ key: k, value: v }));
  const [rows, setRows] = useState(initial);
  const [shown, setShown] = useState<Set<number>>(new Set());
  const [kms, setKms] = useState(c.KMSKeyArn ?? "");
  const [helpers, setHelpers] = useState(false);
  const [transitKey, setTransitKey] = useState("");
  const keys = useKmsKeys();
  const save = useSave(reload);
  const names = rows.map((r) => r.key.trim());
  const problem =
    names.find((k) => !/^[a-zA-Z]([a-zA-Z0-9_])*$/.test(k)) !== undefined
      ? "Keys start with a letter and have only letters, digits and underscores."
      : new Set(names).size !== names.length
        ? "Each key appears once."
        : null;
  const dirty = JSON.stringify(rows) !== JSON.stringify(initial) || kms !== (c.KMSKeyArn ?? "");

  // Encryption in transit, as AWS's console helps with it: the value is encrypted here with
  // the chosen key (and the function's name as encryption context); the function decrypts it.
  const encrypt = async (i: number) => {
    try {
      const out = await app.call((x) =>
        x.get(KMSClient).send(
          new EncryptCommand({
            KeyId: transitKey,
            Plaintext: new TextEncoder().encode(rows[i].value),
            EncryptionContext: { LambdaFunctionName: name },
          }),
        ),
      );
      setRows(rows.map((x, j) => (j === i ? { ...x, value: toBase64(out.CiphertextBlob!) } : x)));
      app.toast(`Encrypted ${rows[i].key} with ${keys.find((k) => k.arn === transitKey)?.label ?? transitKey}.`);
    } catch (e) {
      save.setError(describeError(e));
    }
  };

  return (
    <Section
      title="Environment variables"
      dirty={dirty && !problem}
      {...save}
      onSave={() =>
        save.run("the environment variables", async () => {
          await app.call((x) =>
            x.lambda.send(
              new UpdateFunctionConfigurationCommand({
                FunctionName: name,
                Environment: { Variables: Object.fromEntries(rows.map((r) => [r.key.trim(), r.value])) },
                KMSKeyArn: kms.trim(),
              }),
            ),
          );
          await waitForUpdate(app, name);
        })
      }
    >
      <p class="muted small">Encrypted at rest; values are hidden until you show them.</p>
      <table class="list compact env" aria-label="Environment variables">
        <Head columns={["Key", "Value"]} actions />
        <tbody>
          {rows.map((r, i) => (
            <tr key={i}>
              <td>
                <input aria-label={`Key ${i + 1}`} value={r.key} onInput={(e) => setRows(rows.map((x, j) => (j === i ? { ...x, key: e.currentTarget.value } : x)))} />
              </td>
              <td>
                <input
                  aria-label={`Value ${i + 1}`}
                  type={shown.has(i) ? "text" : "password"}
                  autocomplete="off"
                  value={r.value}
                  onInput={(e) => setRows(rows.map((x, j) => (j === i ? { ...x, value: e.currentTarget.value } : x)))}
                />
              </td>
              <td class="actions">
                <button
                  class="ghost small"
                  onClick={() => {
                    const s = new Set(shown);
                    s.has(i) ? s.delete(i) : s.add(i);
                    setShown(s);
                  }}
                >
                  {shown.has(i) ? "Hide" : "Show"}
                </button>
                {helpers && (
                  <button class="ghost small" disabled={!transitKey || !r.value} onClick={() => encrypt(i)} aria-label={`Encrypt ${r.key || "value"}`}>
                    Encrypt
                  </button>
                )}
                <button
                  class="ghost small danger"
                  onClick={() => {
                    setRows(rows.filter((_, j) => j !== i));
                    // Rows below move up: so does whether their value is shown.
                    setShown(new Set([...shown].filter((j) => j !== i).map((j) => (j > i ? j - 1 : j))));
                  }}
                  aria-label={`Remove ${r.key || "variable"}`}
                >
                  Remove
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {problem && <div class="field-error">{problem}</div>}
      <div class="row">
        <button onClick={() => setRows([...rows, { key: "", value: "" }])}>Add variable</button>
      </div>
      <Field label="Encryption at rest" hint="Nimbus's own key, or a KMS key of this account (the function's role must be allowed kms:Decrypt on it).">
        <select name="kms" value={kms} onChange={(e) => setKms(e.currentTarget.value)}>
          <option value="">Nimbus's own key</option>
          {[...new Set([...(kms && !keys.some((k) => k.arn === kms) ? [kms] : []), ...keys.map((k) => k.arn)])].map((arn) => (
            <option key={arn} value={arn}>
              {keys.find((k) => k.arn === arn)?.label ?? arn}
            </option>
          ))}
        </select>
      </Field>
      <label class="inline">
        <input type="checkbox" checked={helpers} onChange={(e) => setHelpers(e.currentTarget.checked)} /> Enable helpers for encryption in transit
      </label>
      {helpers && (
        <>
          <Field label="Key for encryption in transit">
            <select name="transitKey" value={transitKey} onChange={(e) => setTransitKey(e.currentTarget.value)}>
              <option value="">Choose a key…</option>
              {keys.map((k) => (
                <option key={k.arn} value={k.arn}>
                  {k.label}
                </option>
              ))}
            </select>
          </Field>
          <p class="muted small">
            An encrypted value is base64 ciphertext; the function decrypts it with KMS Decrypt and the encryption context{" "}
            <code>{`{"LambdaFunctionName": "${name}"}`}</code>, e.g. in Python:{" "}
            <code>{`boto3.client("kms").decrypt(CiphertextBlob=b64decode(os.environ["KEY"]), EncryptionContext={"LambdaFunctionName": os.environ["AWS_LAMBDA_FUNCTION_NAME"]})["Plaintext"]`}</code>
          </p>
        </>
      )}
    </Section>
  );
}

function RoleSection({ name, fn, reload }: FunctionProps) {
  const app = useApp();
  const current = fn.Configuration!.Role ?? "";
  const [role, setRole] = useState(current);
  const save = useSave(reload);
  const roles = useRoles(app);
  return (
    <Section
      title="Execution role"
      dirty={role !== current}
      {...save}
      onSave={() =>
        save.run("the execution role", async () => {
          await app.call((x) => x.lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: name, Role: role })));
          await waitForUpdate(app, name);
        })
      }
    >
      <select aria-label="Execution role" value={role} onChange={(e) => setRole(e.currentTarget.value)}>
        {[...new Set([current, ...roles.map((r) => r.Arn!)])].map((arn) => (
          <option key={arn} value={arn}>
            {arn}
          </option>
        ))}
      </select>
    </Section>
  );
}

function Concurrency({ name, fn, reload }: FunctionProps) {
  const app = useApp();
  const current = fn.Concurrency?.ReservedConcurrentExecutions;
  const [value, setValue] = useState(current === undefined ? "" : String(current));
  const save = useSave(reload);
  return (
    <Section
      title="Reserved concurrency"
      dirty={value !== (current === undefined ? "" : String(current))}
      {...save}
      onSave={() =>
        save.run("the reserved concurrency", async () => {
          if (value.trim() === "") await app.call((x) => x.lambda.send(new DeleteFunctionConcurrencyCommand({ FunctionName: name })));
          else await app.call((x) => x.lambda.send(new PutFunctionConcurrencyCommand({ FunctionName: name, ReservedConcurrentExecutions: Number(value) })));
        })
      }
    >
      <Field label="Reserved concurrent executions" hint="Empty: the function uses the account's unreserved concurrency. 0 stops every invocation.">
        <input name="reserved" type="number" min={0} value={value} onInput={(e) => setValue(e.currentTarget.value)} />
      </Field>
      <p class="muted small">Provisioned concurrency is set per version or alias, on the Versions &amp; aliases tab.</p>
    </Section>
  );
}

/** The statement AWS's console adds for a public (NONE) function URL. */
const PUBLIC_URL_STATEMENT = "FunctionURLAllowPublicAccess";

function UrlSection({ name }: FunctionProps) {
  const app = useApp();
  const [url, setUrl] = useState<FunctionUrlConfig | null | undefined>(undefined);
  const [auth, setAuth] = useState<"NONE" | "AWS_IAM">("AWS_IAM");
  const save = useSave(async () => load());
  const load = async () => {
    try {
      const r = await app.call((c) => c.lambda.send(new GetFunctionUrlConfigCommand({ FunctionName: name })));
      setUrl(r as FunctionUrlConfig);
    } catch (e) {
      if ((e as Error).name === "ResourceNotFoundException") setUrl(null);
      else save.setError(describeError(e));
    }
  };
  useEffect(() => {
    load();
  }, []);
  return (
    <Section title="Function URL" {...save}>
      {url === undefined ? null : url ? (
        <div class="row wrap">
          <a href={url.FunctionUrl} target="_blank" rel="noreferrer">
            {url.FunctionUrl}
          </a>
          <span class="badge">{url.AuthType}</span>
          <button
            class="ghost danger"
            onClick={() =>
              save.run("the function URL", async () => {
                await app.call((c) => c.lambda.send(new DeleteFunctionUrlConfigCommand({ FunctionName: name })));
                // The public-access statement the console added with a NONE URL goes too.
                await app
                  .call((c) => c.lambda.send(new RemovePermissionCommand({ FunctionName: name, StatementId: PUBLIC_URL_STATEMENT })))
                  .catch((e) => ((e as Error).name === "ResourceNotFoundException" ? undefined : Promise.reject(e)));
              })
            }
          >
            Delete URL
          </button>
        </div>
      ) : (
        <div class="row wrap">
          <select aria-label="Auth type" value={auth} onChange={(e) => setAuth(e.currentTarget.value as "NONE" | "AWS_IAM")}>
            <option value="AWS_IAM">AWS_IAM (signed requests only)</option>
            <option value="NONE">NONE (public)</option>
          </select>
          <button
            onClick={() =>
              save.run("the function URL", async () => {
                await app.call((c) => c.lambda.send(new CreateFunctionUrlConfigCommand({ FunctionName: name, AuthType: auth })));
                // As AWS's console does: a public URL also needs the function's policy to let anyone call it.
                if (auth === "NONE") {
                  await app.call((c) =>
                    c.lambda.send(
                      new AddPermissionCommand({
                        FunctionName: name,
                        StatementId: PUBLIC_URL_STATEMENT,
                        Action: "lambda:InvokeFunctionUrl",
                        Principal: "*",
                        FunctionUrlAuthType: "NONE",
                      }),
                    ),
                  );
                }
              })
            }
          >
            Create URL
          </button>
        </div>
      )}
    </Section>
  );
}

function Vpc({ name, fn, reload }: FunctionProps) {
  const app = useApp();
  const vpc = fn.Configuration!.VpcConfig;
  const init = { subnets: (vpc?.SubnetIds ?? []).join(", "), groups: (vpc?.SecurityGroupIds ?? []).join(", ") };
  const [v, setV] = useState(init);
  const save = useSave(reload);
  const list = (s: string) => s.split(/[\s,]+/).filter(Boolean);
  return (
    <Section
      title="VPC"
      dirty={JSON.stringify(v) !== JSON.stringify(init)}
      {...save}
      onSave={() =>
        save.run("the VPC configuration", async () => {
          await app.call((x) =>
            x.lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: name, VpcConfig: { SubnetIds: list(v.subnets), SecurityGroupIds: list(v.groups) } })),
          );
          await waitForUpdate(app, name);
        })
      }
    >
      {vpc?.VpcId && (
        <p class="muted small">
          In <code>{vpc.VpcId}</code>
        </p>
      )}
      <div class="grid">
        <Field label="Subnet IDs" hint="Comma-separated; empty for no VPC.">
          <input name="subnets" value={v.subnets} onInput={(e) => setV({ ...v, subnets: e.currentTarget.value })} />
        </Field>
        <Field label="Security group IDs">
          <input name="groups" value={v.groups} onInput={(e) => setV({ ...v, groups: e.currentTarget.value })} />
        </Field>
      </div>
    </Section>
  );
}

function Tags({ fn, reload }: FunctionProps) {
  const app = useApp();
  const arn = fn.Configuration!.FunctionArn!;
  const initial = Object.entries(fn.Tags ?? {}).map(([key, value]) => ({ key, value }));
  const [rows, setRows] = useState(initial);
  const save = useSave(reload);
  return (
    <Section
      title="Tags"
      dirty={JSON.stringify(rows) !== JSON.stringify(initial)}
      {...save}
      onSave={() =>
        save.run("the tags", async () => {
          const now = Object.fromEntries(rows.filter((r) => r.key.trim()).map((r) => [r.key.trim(), r.value]));
          const gone = initial.map((r) => r.key).filter((k) => !(k in now));
          if (gone.length) await app.call((x) => x.lambda.send(new UntagResourceCommand({ Resource: arn, TagKeys: gone })));
          if (Object.keys(now).length) await app.call((x) => x.lambda.send(new TagResourceCommand({ Resource: arn, Tags: now })));
        })
      }
    >
      {rows.map((r, i) => (
        <div class="row" key={i}>
          <input aria-label={`Tag key ${i + 1}`} value={r.key} onInput={(e) => setRows(rows.map((x, j) => (j === i ? { ...x, key: e.currentTarget.value } : x)))} />
          <input aria-label={`Tag value ${i + 1}`} value={r.value} onInput={(e) => setRows(rows.map((x, j) => (j === i ? { ...x, value: e.currentTarget.value } : x)))} />
          <button class="ghost small danger" onClick={() => setRows(rows.filter((_, j) => j !== i))}>
            Remove
          </button>
        </div>
      ))}
      <button onClick={() => setRows([...rows, { key: "", value: "" }])}>Add tag</button>
    </Section>
  );
}

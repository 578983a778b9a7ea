//! The Triggers & destinations tab: a diagram of the function with what invokes it and where
//! its results go, each with its state; add an SQS trigger, enable/disable or remove
//! triggers, and set destinations.
import { useEffect, useState } from "preact/hooks";
import {
  CreateEventSourceMappingCommand,
  DeleteEventSourceMappingCommand,
  DeleteFunctionUrlConfigCommand,
  GetFunctionEventInvokeConfigCommand,
  GetFunctionUrlConfigCommand,
  GetPolicyCommand,
  ListEventSourceMappingsCommand,
  PutFunctionEventInvokeConfigCommand,
  UpdateFunctionEventInvokeConfigCommand,
  RemovePermissionCommand,
  UpdateEventSourceMappingCommand,
  type EventSourceMappingConfiguration,
} from "@aws-sdk/client-lambda";
import { GetQueueAttributesCommand, ListQueuesCommand, SQSClient } from "@aws-sdk/client-sqs";
import {
  DescribeRuleCommand,
  DisableRuleCommand,
  EnableRuleCommand,
  ListTargetsByRuleCommand,
  PutRuleCommand,
  PutTargetsCommand,
  RemoveTargetsCommand,
  EventBridgeClient,
} from "@aws-sdk/client-eventbridge";
import { ListSubscriptionsByTopicCommand, ListTopicsCommand, SubscribeCommand, UnsubscribeCommand, SNSClient } from "@aws-sdk/client-sns";
import { AddPermissionCommand } from "@aws-sdk/client-lambda";
import { useApp } from "../../ctx";
import { describeError } from "../../session";
import { Dialog, ErrorBox, Field, Spinner, ResourceSelect } from "../../components/ui";
import { arnName, checkSchedule, serviceOfArn, statementId, triggersFromPolicy, type Destinations, type Trigger } from "../../lib/triggers";
import type { FunctionProps } from "../Function";

/** The bus and name of a rule from its ARN (`rule/<name>` or `rule/<bus>/<name>`). */
function ruleOf(arn: string): { bus?: string; rule: string } {
  const path = arn.slice(arn.indexOf(":rule/") + 6);
  const i = path.indexOf("/");
  return i < 0 ? { rule: path } : { bus: path.slice(0, i), rule: path.slice(i + 1) };
}

export function TriggersTab({ name, fn }: FunctionProps) {
  const app = useApp();
  const [triggers, setTriggers] = useState<Trigger[] | null>(null);
  const [mappings, setMappings] = useState<EventSourceMappingConfiguration[]>([]);
  const [dest, setDest] = useState<Destinations>({});
  const [error, setError] = useState<string | null>(null);
  const [adding, setAdding] = useState(false);
  const [editingDest, setEditingDest] = useState(false);

  const load = async () => {
    try {
      const out: Trigger[] = [];
      const esm = await app.call((c) => c.lambda.send(new ListEventSourceMappingsCommand({ FunctionName: name })));
      const ms = esm.EventSourceMappings ?? [];
      setMappings(ms);
      for (const m of ms) {
        out.push({
          id: `mapping:${m.UUID}`,
          kind: serviceOfArn(m.EventSourceArn ?? ""),
          label: arnName(m.EventSourceArn ?? ""),
          detail: `batch size ${m.BatchSize}${m.MaximumBatchingWindowInSeconds ? `, window ${m.MaximumBatchingWindowInSeconds}s` : ""}`,
          state: m.State,
          remove: { type: "mapping", uuid: m.UUID! },
        });
      }
      try {
        const url = await app.call((c) => c.lambda.send(new GetFunctionUrlConfigCommand({ FunctionName: name })));
        out.push({ id: "url", kind: "Function URL", label: url.FunctionUrl ?? "", detail: `auth ${url.AuthType}`, remove: { type: "url" } });
      } catch (e) {
        if ((e as Error).name !== "ResourceNotFoundException") throw e;
      }
      try {
        const p = await app.call((c) => c.lambda.send(new GetPolicyCommand({ FunctionName: name })));
        for (const t of triggersFromPolicy(p.Policy)) {
          // A rule's state and schedule, as AWS's console shows them.
          if (t.kind === "EventBridge" && t.source?.includes(":rule/")) {
            try {
              const { bus, rule } = ruleOf(t.source);
              t.label = rule;
              const r = await app.call((c) => c.get(EventBridgeClient).send(new DescribeRuleCommand({ Name: rule, EventBusName: bus })));
              t.state = r.State === "DISABLED" ? "Disabled" : "Enabled";
              t.detail = r.ScheduleExpression ? `schedule ${r.ScheduleExpression}` : `event pattern ${r.EventPattern ?? ""}`;
            } catch {
              t.detail = `${t.detail} (the rule is gone)`;
            }
          }
          out.push(t);
        }
      } catch (e) {
        if ((e as Error).name !== "ResourceNotFoundException") throw e;
      }
      const d: Destinations = { deadLetter: fn.Configuration?.DeadLetterConfig?.TargetArn };
      try {
        const eic = await app.call((c) => c.lambda.send(new GetFunctionEventInvokeConfigCommand({ FunctionName: name })));
        d.onSuccess = eic.DestinationConfig?.OnSuccess?.Destination;
        d.onFailure = eic.DestinationConfig?.OnFailure?.Destination;
        d.configured = true;
      } catch (e) {
        if ((e as Error).name !== "ResourceNotFoundException") throw e;
      }
      setDest(d);
      setTriggers(out);
    } catch (e) {
      setError(describeError(e));
      setTriggers((t) => t ?? []);
    }
  };

  useEffect(() => {
    load();
  }, [name]);

  const act = async (f: () => Promise<unknown>, done: string) => {
    setError(null);
    try {
      await f();
      app.toast(done);
      await load();
    } catch (e) {
      setError(describeError(e));
    }
  };

  const fnArn = fn.Configuration!.FunctionArn!;
  // The unqualified function only: an alias's or version's trigger lives in that qualifier's policy.
  const targetsMe = (arn: string | undefined) => arn === fnArn;

  const removeTrigger = (t: Trigger) => {
    if (!t.remove || !confirm(`Remove the trigger ${t.kind} ${t.label}?`)) return;
    const r = t.remove;
    act(async () => {
      if (r.type === "mapping") return app.call((c) => c.lambda.send(new DeleteEventSourceMappingCommand({ UUID: r.uuid })));
      if (r.type === "url") return app.call((c) => c.lambda.send(new DeleteFunctionUrlConfigCommand({ FunctionName: name })));
      // The rule or topic stays; it stops sending here (its target or subscription goes).
      if (t.kind === "EventBridge" && t.source?.includes(":rule/")) {
        const { bus, rule } = ruleOf(t.source);
        const targets = await app.call((c) => c.get(EventBridgeClient).send(new ListTargetsByRuleCommand({ Rule: rule, EventBusName: bus })));
        const ids = (targets.Targets ?? []).filter((x) => targetsMe(x.Arn)).map((x) => x.Id!);
        if (ids.length) await app.call((c) => c.get(EventBridgeClient).send(new RemoveTargetsCommand({ Rule: rule, EventBusName: bus, Ids: ids })));
      }
      if (t.kind === "SNS" && t.source) {
        const subs = await app.call((c) => c.get(SNSClient).send(new ListSubscriptionsByTopicCommand({ TopicArn: t.source })));
        for (const sub of subs.Subscriptions ?? []) {
          if (sub.Protocol === "lambda" && targetsMe(sub.Endpoint)) await app.call((c) => c.get(SNSClient).send(new UnsubscribeCommand({ SubscriptionArn: sub.SubscriptionArn })));
        }
      }
      return app.call((c) => c.lambda.send(new RemovePermissionCommand({ FunctionName: name, StatementId: r.sid })));
    }, `Removed the trigger ${t.label}.`);
  };

  const toggle = (t: Trigger) => {
    const enable = t.state === "Disabled";
    const { bus, rule } = ruleOf(t.source ?? "");
    if (t.remove?.type === "mapping") {
      const uuid = t.remove.uuid;
      act(() => app.call((c) => c.lambda.send(new UpdateEventSourceMappingCommand({ UUID: uuid, Enabled: enable }))), `${enable ? "Enabled" : "Disabled"} ${t.label}.`);
    } else if (t.kind === "EventBridge") {
      act(
        () => app.call((c) => c.get(EventBridgeClient).send(enable ? new EnableRuleCommand({ Name: rule, EventBusName: bus }) : new DisableRuleCommand({ Name: rule, EventBusName: bus }))),
        `${enable ? "Enabled" : "Disabled"} ${t.label}.`,
      );
    }
  };

  if (!triggers) return <Spinner />;
  const destList: [string, string | undefined][] = [
    ["On success", dest.onSuccess],
    ["On failure", dest.onFailure],
    ["Dead-letter queue", dest.deadLetter],
  ];

  return (
    <div class="stack">
      <ErrorBox error={error} onClose={() => setError(null)} />
      <div class="diagram" aria-label="Function overview">
        <div class="diagram-col">
          <h3>Triggers</h3>
          {triggers.length === 0 && <p class="muted small">None</p>}
          {triggers.map((t) => (
            <div key={t.id} class="diagram-box trigger" aria-label={`Trigger ${t.kind} ${t.label}`}>
              <div class="row">
                <strong>{t.kind}</strong>
                {t.state && <span class={`badge state-${t.state.toLowerCase()}`}>{t.state}</span>}
              </div>
              <div class="mono small" title={t.detail}>
                {t.label}
              </div>
              <div class="muted small">{t.detail}</div>
              <div class="row">
                {t.state && (
                  <button class="ghost small" onClick={() => toggle(t)}>
                    {t.state === "Disabled" ? "Enable" : "Disable"}
                  </button>
                )}
                {t.remove && (
                  <button class="ghost small danger" onClick={() => removeTrigger(t)}>
                    Remove
                  </button>
                )}
              </div>
            </div>
          ))}
          <button onClick={() => setAdding(true)}>+ Add trigger</button>
        </div>
        <div class="diagram-arrow" aria-hidden="true">
          →
        </div>
        <div class="diagram-col center">
          <div class="diagram-box function">
            <strong>λ {name}</strong>
            <div class="muted small">{fn.Configuration?.Runtime}</div>
          </div>
        </div>
        <div class="diagram-arrow" aria-hidden="true">
          →
        </div>
        <div class="diagram-col">
          <h3>Destinations</h3>
          {destList
            .filter(([, arn]) => arn)
            .map(([label, arn]) => (
              <div key={label} class="diagram-box destination" aria-label={`Destination ${label}`}>
                <strong>{label}</strong>
                <div class="muted small">{serviceOfArn(arn!)}</div>
                <div class="mono small">{arnName(arn!)}</div>
              </div>
            ))}
          {!destList.some(([, a]) => a) && <p class="muted small">None</p>}
          <button onClick={() => setEditingDest(true)}>Edit destinations</button>
        </div>
      </div>
      {mappings.length > 0 && <p class="muted small">{mappings.length} event source mapping(s).</p>}
      <AddTrigger open={adding} name={name} functionArn={fnArn} onClose={() => setAdding(false)} onAdded={() => { setAdding(false); load(); }} />
      <EditDestinations open={editingDest} name={name} dest={dest} onClose={() => setEditingDest(false)} onSaved={() => { setEditingDest(false); load(); }} />
    </div>
  );
}

function AddTrigger({ open, name, functionArn, onClose, onAdded }: { open: boolean; name: string; functionArn: string; onClose: () => void; onAdded: () => void }) {
  const app = useApp();
  const [source, setSource] = useState<"sqs" | "schedule" | "sns">("sqs");
  const [queues, setQueues] = useState<string[]>([]);
  const [queue, setQueue] = useState("");
  const [batch, setBatch] = useState(10);
  const [topics, setTopics] = useState<string[]>([]);
  const [topic, setTopic] = useState("");
  const [rule, setRule] = useState(`${name}-schedule`);
  const [schedule, setSchedule] = useState("rate(5 minutes)");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (!open) return;
    setError(null);
    app
      .call((c) => c.get(SQSClient).send(new ListQueuesCommand({})))
      .then((r) => {
        setQueues(r.QueueUrls ?? []);
        setQueue((q) => q || r.QueueUrls?.[0] || "");
      })
      .catch((e) => setError(describeError(e)));
    app
      .call((c) => c.get(SNSClient).send(new ListTopicsCommand({})))
      .then((r) => {
        const arns = (r.Topics ?? []).map((t) => t.TopicArn!);
        setTopics(arns);
        setTopic((t) => t || arns[0] || "");
      })
      .catch(() => setTopics([]));
  }, [open]);
  const scheduleError = source === "schedule" ? checkSchedule(schedule) : null;
  const add = async (e: Event) => {
    e.preventDefault();
    if (scheduleError) return;
    setBusy(true);
    setError(null);
    try {
      if (source === "sqs") {
        const attrs = await app.call((c) => c.get(SQSClient).send(new GetQueueAttributesCommand({ QueueUrl: queue, AttributeNames: ["QueueArn"] })));
        await app.call((c) =>
          c.lambda.send(new CreateEventSourceMappingCommand({ FunctionName: name, EventSourceArn: attrs.Attributes!.QueueArn!, BatchSize: batch, Enabled: true })),
        );
        app.toast("Added the SQS trigger.");
      } else if (source === "schedule") {
        // PutRule would silently replace a rule of that name: refuse instead.
        const exists = await app.call((c) => c.get(EventBridgeClient).send(new DescribeRuleCommand({ Name: rule }))).then(
          () => true,
          (e) => ((e as Error).name === "ResourceNotFoundException" ? false : Promise.reject(e)),
        );
        if (exists) throw new Error(`A rule named ${rule} already exists: choose another name.`);
        const r = await app.call((c) => c.get(EventBridgeClient).send(new PutRuleCommand({ Name: rule, ScheduleExpression: schedule.trim(), State: "ENABLED" })));
        await app.call((c) =>
          c.lambda.send(
            new AddPermissionCommand({
              FunctionName: name,
              StatementId: statementId(rule, "events"),
              Action: "lambda:InvokeFunction",
              Principal: "events.amazonaws.com",
              SourceArn: r.RuleArn,
            }),
          ),
        );
        await app.call((c) => c.get(EventBridgeClient).send(new PutTargetsCommand({ Rule: rule, Targets: [{ Id: statementId(name), Arn: functionArn }] })));
        app.toast(`Added the schedule ${rule}.`);
      } else {
        await app.call((c) =>
          c.lambda.send(
            new AddPermissionCommand({
              FunctionName: name,
              StatementId: statementId(arnName(topic), "sns"),
              Action: "lambda:InvokeFunction",
              Principal: "sns.amazonaws.com",
              SourceArn: topic,
            }),
          ),
        );
        await app.call((c) => c.get(SNSClient).send(new SubscribeCommand({ TopicArn: topic, Protocol: "lambda", Endpoint: functionArn })));
        app.toast(`Subscribed to ${arnName(topic)}.`);
      }
      onAdded();
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog title="Add trigger" open={open} onClose={onClose}>
      <form class="stack" onSubmit={add}>
        <Field label="Source">
          <select name="source" value={source} onChange={(e) => setSource(e.currentTarget.value as "sqs" | "schedule" | "sns")}>
            <option value="sqs">SQS queue</option>
            <option value="schedule">EventBridge schedule</option>
            <option value="sns">SNS topic</option>
          </select>
        </Field>
        {source === "sqs" && (
          <>
            <ResourceSelect name="queue" label="Queue" value={queue} items={queues} none="No queues in this account" onChange={setQueue} display={(q) => q.split("/").pop()!} />
            <Field label="Batch size" hint="1–10,000">
              <input name="batchSize" type="number" min={1} max={10000} value={batch} onInput={(e) => setBatch(Number(e.currentTarget.value))} />
            </Field>
            <p class="muted small">The function's execution role needs sqs:ReceiveMessage, sqs:DeleteMessage and sqs:GetQueueAttributes on the queue.</p>
          </>
        )}
        {source === "schedule" && (
          <>
            <Field label="Rule name">
              <input name="ruleName" value={rule} onInput={(e) => setRule(e.currentTarget.value)} required />
            </Field>
            <Field label="Schedule expression" hint="rate(5 minutes), rate(1 hour), cron(0 12 * * ? *)">
              <input name="schedule" value={schedule} onInput={(e) => setSchedule(e.currentTarget.value)} aria-invalid={!!scheduleError} />
            </Field>
            {scheduleError && <div class="field-error">{scheduleError}</div>}
          </>
        )}
        {source === "sns" && (
          <ResourceSelect name="topic" label="Topic" value={topic} items={topics} none="No topics in this account" onChange={setTopic} display={arnName} />
        )}
        <ErrorBox error={error} />
        <div class="dialog-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button class="primary" type="submit" disabled={busy || (source === "sqs" && !queue) || (source === "sns" && !topic) || !!scheduleError}>
            Add
          </button>
        </div>
      </form>
    </Dialog>
  );
}

function EditDestinations({ open, name, dest, onClose, onSaved }: { open: boolean; name: string; dest: Destinations; onClose: () => void; onSaved: () => void }) {
  const app = useApp();
  const [ok, setOk] = useState(dest.onSuccess ?? "");
  const [fail, setFail] = useState(dest.onFailure ?? "");
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    setOk(dest.onSuccess ?? "");
    setFail(dest.onFailure ?? "");
    setError(null);
  }, [open]);
  const save = async (e: Event) => {
    e.preventDefault();
    try {
      // Update keeps the retry settings; Put (only when there is no config yet) replaces all.
      const input = { FunctionName: name, DestinationConfig: { OnSuccess: ok ? { Destination: ok } : {}, OnFailure: fail ? { Destination: fail } : {} } };
      await app.call((c) =>
        c.lambda.send(dest.configured ? new UpdateFunctionEventInvokeConfigCommand(input) : new PutFunctionEventInvokeConfigCommand(input)),
      );
      app.toast("Saved the destinations.");
      onSaved();
    } catch (err) {
      setError(describeError(err));
    }
  };
  return (
    <Dialog title="Destinations of asynchronous invocations" open={open} onClose={onClose}>
      <form class="stack" onSubmit={save}>
        <Field label="On success" hint="A queue, topic, function or event bus ARN; empty for none.">
          <input name="onSuccess" value={ok} onInput={(e) => setOk(e.currentTarget.value)} />
        </Field>
        <Field label="On failure">
          <input name="onFailure" value={fail} onInput={(e) => setFail(e.currentTarget.value)} />
        </Field>
        <ErrorBox error={error} />
        <div class="dialog-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button class="primary" type="submit">
            Save
          </button>
        </div>
      </form>
    </Dialog>
  );
}

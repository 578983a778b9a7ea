//! Small building blocks every page shares: buttons, messages, dialogs, loading states.
import type { ComponentChildren } from "preact";
import { useEffect, useRef } from "preact/hooks";

export function Spinner({ label = "Loading…" }: { label?: string }) {
  return (
    <div class="loading" role="status" aria-live="polite">
      <span class="spinner" aria-hidden="true" /> {label}
    </div>
  );
}

export function ErrorBox({ error, onClose }: { error: string | null; onClose?: () => void }) {
  if (!error) return null;
  return (
    <div class="error" role="alert">
      <span>{error}</span>
      {onClose && (
        <button class="link" onClick={onClose} aria-label="Dismiss">
          ×
        </button>
      )}
    </div>
  );
}

export function Empty({ title, children }: { title: string; children?: ComponentChildren }) {
  return (
    <div class="empty">
      <h3>{title}</h3>
      {children}
    </div>
  );
}

/** A modal dialog (the native <dialog>, so focus and Escape behave). */
export function Dialog({
  title,
  open,
  onClose,
  children,
}: {
  title: string;
  open: boolean;
  onClose: () => void;
  children: ComponentChildren;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) d.showModal();
    if (!open && d.open) d.close();
  }, [open]);
  return (
    <dialog ref={ref} onClose={onClose} aria-label={title}>
      <h2>{title}</h2>
      {children}
    </dialog>
  );
}

export function Field({ label, hint, children }: { label: string; hint?: string; children: ComponentChildren }) {
  return (
    <label class="field">
      <span class="field-label">{label}</span>
      {children}
      {hint && <span class="hint">{hint}</span>}
    </label>
  );
}

export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export function fmtTime(iso: string | Date | undefined): string {
  if (!iso) return "";
  const d = typeof iso === "string" ? new Date(iso) : iso;
  return isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

/**
 * A table's header row: plain column names (`#` before a name right-aligns it, for
 * numbers), and an unlabelled Actions column when the rows have buttons.
 */
export function Head({ columns, actions }: { columns: string[]; actions?: boolean }) {
  return (
    <thead>
      <tr>
        {columns.map((c) => (c.startsWith("#") ? <th key={c} class="num">{c.slice(1)}</th> : <th key={c}>{c}</th>))}
        {actions && (
          <th>
            <span class="sr-only">Actions</span>
          </th>
        )}
      </tr>
    </thead>
  );
}

/** A select of resources (queues, topics): a readable name for each, or why there are none. */
export function ResourceSelect({ name, label, value, items, none, onChange, display }: {
  name: string;
  label: string;
  value: string;
  items: string[];
  none: string;
  onChange: (v: string) => void;
  display: (item: string) => string;
}) {
  return (
    <Field label={label}>
      <select name={name} value={value} onChange={(e) => onChange(e.currentTarget.value)} required>
        {items.length === 0 && <option value="">{none}</option>}
        {items.map((i) => (
          <option key={i} value={i}>
            {display(i)}
          </option>
        ))}
      </select>
    </Field>
  );
}

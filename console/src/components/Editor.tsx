//! The code editor: CodeMirror 6 with highlighting and bracket matching per language, one
//! editor state per open file (each keeps its own undo history), Ctrl/Cmd-S to save.
import { useEffect, useRef } from "preact/hooks";
import { EditorView, basicSetup } from "codemirror";
import { EditorState, Compartment, type Extension } from "@codemirror/state";
import { keymap } from "@codemirror/view";
import { indentWithTab } from "@codemirror/commands";
import { javascript } from "@codemirror/lang-javascript";
import { python } from "@codemirror/lang-python";
import { json } from "@codemirror/lang-json";
import { yaml } from "@codemirror/lang-yaml";
import { oneDark } from "@codemirror/theme-one-dark";
import { languageOf } from "../lib/zip";

function language(path: string): Extension {
  switch (languageOf(path)) {
    case "javascript":
      return javascript();
    case "typescript":
      return javascript({ typescript: true });
    case "python":
      return python();
    case "json":
      return json();
    case "yaml":
      return yaml();
    default:
      return [];
  }
}

const dark = () => document.documentElement.dataset.theme === "dark";

/** One theme compartment for every editor: saved states are reused by later editors. */
const theme = new Compartment();

export interface EditorProps {
  /** Which document is shown; a new key is a new editor state. */
  docKey: string;
  path: string;
  initial: string;
  readOnly?: boolean;
  onChange?: (text: string) => void;
  onSave?: () => void;
  label?: string;
}

/**
 * The callbacks of the component showing each view. Saved states outlive the component that
 * made them, so their listeners find the current component's callbacks through the view.
 */
const handlersOf = new WeakMap<EditorView, { onChange?: (text: string) => void; onSave?: () => void }>();

/** States of documents that were open, by key, so switching tabs keeps undo history. */
const states = new Map<string, EditorState>();

export function forgetEditorState(prefix: string) {
  for (const k of [...states.keys()]) if (k.startsWith(prefix)) states.delete(k);
}

export function Editor({ docKey, path, initial, readOnly, onChange, onSave, label }: EditorProps) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  if (view.current) handlersOf.set(view.current, { onChange, onSave });

  const makeState = () =>
    EditorState.create({
      doc: initial,
      extensions: [
        basicSetup,
        keymap.of([
          indentWithTab,
          {
            key: "Mod-s",
            preventDefault: true,
            run: (v) => {
              handlersOf.get(v)?.onSave?.();
              return true;
            },
          },
        ]),
        language(path),
        theme.of(dark() ? oneDark : []),
        EditorState.readOnly.of(!!readOnly),
        EditorView.editable.of(!readOnly),
        EditorView.contentAttributes.of({ "aria-label": label ?? `Editor: ${path}` }),
        EditorView.updateListener.of((u) => {
          if (u.docChanged) handlersOf.get(u.view)?.onChange?.(u.state.doc.toString());
        }),
      ],
    });

  useEffect(() => {
    const state = states.get(docKey) ?? makeState();
    if (!view.current) {
      view.current = new EditorView({ state, parent: host.current! });
      handlersOf.set(view.current, { onChange, onSave });
    } else {
      const prev = view.current.state;
      view.current.setState(state);
      void prev;
    }
    // Follow the page's theme.
    view.current.dispatch({ effects: theme.reconfigure(dark() ? oneDark : []) });
    return () => {
      if (view.current) states.set(docKey, view.current.state);
    };
  }, [docKey, readOnly]);

  useEffect(() => {
    const obs = new MutationObserver(() => view.current?.dispatch({ effects: theme.reconfigure(dark() ? oneDark : []) }));
    obs.observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
    return () => {
      obs.disconnect();
      view.current?.destroy();
      view.current = null;
    };
  }, []);

  return <div class="editor" ref={host} />;
}

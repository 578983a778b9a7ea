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
import { oneDarkTheme } from "@codemirror/theme-one-dark";
import { HighlightStyle, syntaxHighlighting } from "@codemirror/language";
import { tags as t } from "@lezer/highlight";
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

/**
 * One Dark's editor colours with its syntax colours, three of them lightened (coral, violet,
 * the comments' grey) so every token reaches WCAG AA's 4.5:1 on the background and on the
 * active line, as axe-core checks in the browser tests.
 */
const c = { chalky: "#e5c07b", coral: "#ef7f88", cyan: "#56b6c2", ivory: "#abb2bf", stone: "#939db0", malibu: "#61afef", sage: "#98c379", whiskey: "#d19a66", violet: "#cf86e5" };
const darkHighlight = HighlightStyle.define([
  { tag: t.keyword, color: c.violet },
  { tag: [t.name, t.deleted, t.character, t.propertyName, t.macroName], color: c.coral },
  { tag: [t.function(t.variableName), t.labelName], color: c.malibu },
  { tag: [t.color, t.constant(t.name), t.standard(t.name)], color: c.whiskey },
  { tag: [t.definition(t.name), t.separator], color: c.ivory },
  { tag: [t.typeName, t.className, t.number, t.changed, t.annotation, t.modifier, t.self, t.namespace], color: c.chalky },
  { tag: [t.operator, t.operatorKeyword, t.url, t.escape, t.regexp, t.link, t.special(t.string)], color: c.cyan },
  { tag: [t.meta, t.comment], color: c.stone },
  { tag: t.strong, fontWeight: "bold" },
  { tag: t.emphasis, fontStyle: "italic" },
  { tag: t.strikethrough, textDecoration: "line-through" },
  { tag: t.link, color: c.stone, textDecoration: "underline" },
  { tag: t.heading, fontWeight: "bold", color: c.coral },
  { tag: [t.atom, t.bool, t.special(t.variableName)], color: c.whiskey },
  { tag: [t.processingInstruction, t.string, t.inserted], color: c.sage },
  { tag: t.invalid, color: "#ffffff" },
]);
const oneDark = [oneDarkTheme, syntaxHighlighting(darkHighlight)];

/** One theme compartment for every editor: saved states are reused by later editors. */
const theme = new Compartment();
/** Whether the document may be edited: changes while a state lives (during a deploy). */
const editable = new Compartment();
const editability = (readOnly: boolean) => [EditorState.readOnly.of(readOnly), EditorView.editable.of(!readOnly)];

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
        editable.of(editability(!!readOnly)),
        EditorView.contentAttributes.of({ "aria-label": label ?? `Editor: ${path}` }),
        EditorView.updateListener.of((u) => {
          if (u.docChanged) handlersOf.get(u.view)?.onChange?.(u.state.doc.toString());
        }),
      ],
    });

  useEffect(() => {
    // A saved state is used only if it still holds the text the caller has: a file changed
    // meanwhile (deployed, discarded, reloaded) starts a fresh state from that text.
    const saved = states.get(docKey);
    const state = saved && saved.doc.toString() === initial ? saved : makeState();
    if (!view.current) {
      view.current = new EditorView({ state, parent: host.current! });
      // The scroller takes keyboard focus too, so a read-only or long file can be scrolled
      // without a mouse (WCAG's "scrollable region must have keyboard access").
      view.current.scrollDOM.tabIndex = 0;
      handlersOf.set(view.current, { onChange, onSave });
    } else {
      view.current.setState(state);
    }
    // Follow the page's theme, and whether editing is allowed now.
    view.current.dispatch({ effects: [theme.reconfigure(dark() ? oneDark : []), editable.reconfigure(editability(!!readOnly))] });
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

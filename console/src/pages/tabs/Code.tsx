//! The Code tab: the package as a file tree with tabs of open files in the editor; edits are
//! kept as a local draft until Deploy (or Ctrl/Cmd-S) zips the tree and calls
//! UpdateFunctionCode. Packages over 3 MB and layers are shown read-only.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { GetFunctionConfigurationCommand, GetLayerVersionByArnCommand, UpdateFunctionCodeCommand } from "@aws-sdk/client-lambda";
import { useApp } from "../../ctx";
import { describeError } from "../../session";
import { Editor, forgetEditorState } from "../../components/Editor";
import { ErrorBox, Spinner, fmtBytes } from "../../components/ui";
import {
  EDITABLE_LIMIT,
  bytes,
  cleanPath,
  isSymlink,
  isText,
  pack,
  readModes,
  remove,
  rename,
  renameModes,
  text,
  tree,
  unpack,
  type Files,
  type Modes,
  type TreeNode,
} from "../../lib/zip";
import { changedPaths, dropDraft, loadDraft, saveDraft } from "../../lib/drafts";
import type { FunctionProps } from "../Function";
import { downloadPackage, fetchZip } from "../../resources";

interface Layer {
  arn: string;
  files: Files;
}

export function CodeTab({ name, fn, reload }: FunctionProps) {
  const app = useApp();
  const config = fn.Configuration!;
  const account = app.session.account;
  const [deployed, setDeployed] = useState<Files | null>(null);
  const [files, setFiles] = useState<Files>(new Map());
  const [folders, setFolders] = useState<string[]>([]);
  const [open, setOpen] = useState<string[]>([]);
  const [active, setActive] = useState<string | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [layers, setLayers] = useState<Layer[]>([]);
  const [readOnly, setReadOnly] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [deploying, setDeploying] = useState(false);
  const [generation, setGeneration] = useState(0);
  const [modes, setModes] = useState<Modes>(new Map());
  const filesRef = useRef(files);
  filesRef.current = files;
  // The digest this page just deployed: the reload that follows keeps the page as it is.
  const justDeployed = useRef<string | null>(null);

  // Load the package (and a draft of unsaved edits, if one was left).
  useEffect(() => {
    if (justDeployed.current && justDeployed.current === config.CodeSha256) return;
    let cancelled = false;
    (async () => {
      try {
        if (config.PackageType === "Image") {
          setReadOnly("This function is a container image: its code cannot be edited here.");
          setDeployed(new Map());
          return;
        }
        if ((config.CodeSize ?? 0) > EDITABLE_LIMIT) {
          setReadOnly(
            `The deployment package is ${fmtBytes(config.CodeSize ?? 0)}, over the 3 MB the console edits: its files are shown read-only. Deploy changes with UpdateFunctionCode.`,
          );
        }
        const zip = await downloadPackage(app, name);
        const pkg = unpack(zip);
        if (cancelled) return;
        setDeployed(pkg);
        setModes(readModes(zip));
        const draft = loadDraft(localStorage, account, name);
        const start = draft ?? { files: pkg, folders: [] as string[], base: config.CodeSha256 ?? "" };
        if (draft && changedPaths(draft.files, pkg).length) {
          setNotice(
            draft.base === config.CodeSha256
              ? "Restored your changes that were not deployed."
              : "Restored your changes that were not deployed; the function's code changed since you made them.",
          );
        }
        setFiles(start.files);
        setFolders(start.folders);
        const first =
          [...start.files.keys()].find((p) => config.Handler && p.startsWith(config.Handler.split(".")[0] + ".")) ??
          [...start.files.keys()].find((p) => isText(start.files.get(p)!));
        if (first) {
          setOpen([first]);
          setActive(first);
          setSelected(first);
        }
      } catch (e) {
        if (!cancelled) setError(describeError(e));
      }
    })();
    // Layers' files, read-only.
    (async () => {
      const out: Layer[] = [];
      for (const l of config.Layers ?? []) {
        try {
          const v = await app.call((c) => c.lambda.send(new GetLayerVersionByArnCommand({ Arn: l.Arn! })));
          out.push({ arn: l.Arn!, files: unpack(await fetchZip(v.Content!.Location!)) });
        } catch {
          out.push({ arn: l.Arn!, files: new Map() });
        }
      }
      if (!cancelled) setLayers(out);
    })();
    return () => {
      cancelled = true;
    };
  }, [config.CodeSha256]);

  const changed = useMemo(() => (deployed ? changedPaths(files, deployed) : []), [files, deployed]);
  const dirty = new Set(changed);

  // Keep a draft while there are changes: written half a second after the last edit, and at
  // once when the tab closes or the page goes away.
  const pendingDraft = useRef<(() => void) | null>(null);
  useEffect(() => {
    if (!deployed) return;
    const write = () => {
      pendingDraft.current = null;
      if (changed.length || folders.length) {
        if (!saveDraft(localStorage, account, name, config.CodeSha256 ?? "", files, folders)) {
          setNotice("Your changes are too large to keep in this browser: deploy them before leaving the page.");
        }
      } else dropDraft(localStorage, account, name);
    };
    pendingDraft.current = write;
    const t = setTimeout(write, 500);
    return () => clearTimeout(t);
  }, [files, folders]);
  useEffect(() => {
    const flush = () => pendingDraft.current?.();
    addEventListener("pagehide", flush);
    return () => {
      removeEventListener("pagehide", flush);
      flush();
    };
  }, []);

  const openFile = (p: string) => {
    setSelected(p);
    if (!open.includes(p)) setOpen([...open, p]);
    setActive(p);
  };

  const closeTab = (p: string) => {
    const rest = open.filter((x) => x !== p);
    setOpen(rest);
    if (active === p) setActive(rest[rest.length - 1] ?? null);
  };

  const edit = (p: string, value: string) => {
    setFiles((f) => new Map(f).set(p, bytes(value)));
  };

  const deploy = async () => {
    if (readOnly || deploying) return;
    const current = filesRef.current;
    setDeploying(true);
    setError(null);
    try {
      const zip = pack(current, modes);
      const out = await app.call((c) => c.lambda.send(new UpdateFunctionCodeCommand({ FunctionName: name, ZipFile: zip })));
      justDeployed.current = out.CodeSha256 ?? null;
      // Wait for the update to finish, as AWS's console does.
      for (let i = 0; i < 120; i++) {
        const cfg = await app.call((c) => c.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: name })));
        if (cfg.LastUpdateStatus === "Failed") throw new Error(cfg.LastUpdateStatusReason ?? "The update failed.");
        if (cfg.LastUpdateStatus !== "InProgress") break;
        await new Promise((r) => setTimeout(r, 500));
      }
      setDeployed(current);
      // Edits typed while the deploy ran stay a draft.
      if (filesRef.current === current) dropDraft(localStorage, account, name);
      setNotice(null);
      app.toast(`Deployed ${name}.`);
      await reload();
    } catch (e) {
      setError(`Deploy failed; the function still runs its previous code. ${describeError(e)}`);
    } finally {
      setDeploying(false);
    }
  };

  const newFile = () => {
    const base = selected && !files.has(selected) ? selected + "/" : selected?.includes("/") ? selected.slice(0, selected.lastIndexOf("/") + 1) : "";
    const p = cleanPath(prompt("New file name", base + "new_file.txt") ?? "");
    if (!p) return;
    if (files.has(p)) return setError(`${p} already exists.`);
    setFiles((f) => new Map(f).set(p, new Uint8Array()));
    openFile(p);
  };

  const newFolder = () => {
    const p = cleanPath(prompt("New folder name", "folder") ?? "");
    if (!p) return;
    setFolders((f) => [...new Set([...f, p])]);
  };

  const renameSelected = () => {
    if (!selected) return;
    const to = prompt(`Rename ${selected} to`, selected);
    if (!to || to === selected) return;
    if (folders.includes(selected) && ![...files.keys()].some((p) => p.startsWith(selected + "/"))) {
      const t = cleanPath(to);
      if (!t) return setError("That is not a valid path.");
      setFolders((f) => f.map((x) => (x === selected ? t : x)));
      setSelected(t);
      return;
    }
    const r = rename(files, selected, to);
    if (typeof r === "string") return setError(r);
    const t = cleanPath(to)!;
    const moved = (p: string) => (p === selected ? t : p.startsWith(selected + "/") ? t + p.slice(selected.length) : p);
    forgetEditorState(`${name}:`);
    setFiles(r);
    setModes(renameModes(modes, selected, t));
    setFolders((f) => f.map(moved));
    setOpen(open.map(moved));
    setActive(active && moved(active));
    setSelected(t);
  };

  const deleteSelected = () => {
    if (!selected) return;
    if (!confirm(`Delete ${selected}?`)) return;
    setFiles(remove(files, selected));
    setFolders((f) => f.filter((x) => x !== selected && !x.startsWith(selected + "/")));
    const left = open.filter((p) => p !== selected && !p.startsWith(selected + "/"));
    setOpen(left);
    if (active && !left.includes(active)) setActive(left[0] ?? null);
    setSelected(null);
  };

  const discard = () => {
    if (!confirm("Discard every change that was not deployed?")) return;
    dropDraft(localStorage, account, name);
    forgetEditorState(`${name}:`);
    setNotice(null);
    setFiles(new Map(deployed ?? []));
    setFolders([]);
    setOpen(open.filter((p) => deployed?.has(p)));
    if (active && !deployed?.has(active)) setActive(null);
    // New editor states, made from the deployed text.
    setGeneration((g) => g + 1);
  };

  if (!deployed) return error ? <ErrorBox error={error} /> : <Spinner label="Loading the package…" />;

  const root = tree(files.keys(), folders);
  const activeData = active ? files.get(active) : undefined;

  return (
    <div class="code">
      <div class="toolbar">
        <button class="primary" onClick={deploy} disabled={!!readOnly || deploying || (!changed.length && !folders.length)} title="Deploy (Ctrl/Cmd-S)">
          {deploying ? "Deploying…" : "Deploy"}
        </button>
        {changed.length > 0 && (
          <span class="dirty-note" role="status">
            ● {changed.length} change{changed.length > 1 ? "s" : ""} not deployed
          </span>
        )}
        {changed.length > 0 && (
          <button class="ghost" onClick={discard}>
            Discard changes
          </button>
        )}
        <div class="spacer" />
        <span class="muted small">
          {files.size} files · package {fmtBytes(config.CodeSize ?? 0)}
        </span>
      </div>
      {readOnly && <div class="notice">{readOnly}</div>}
      {notice && <div class="notice">{notice}</div>}
      <ErrorBox error={error} onClose={() => setError(null)} />
      <div class="ide">
        <aside class="filetree" aria-label="Files">
          <div class="filetree-actions">
            <button class="ghost small" onClick={newFile} disabled={!!readOnly} title="New file">
              + File
            </button>
            <button class="ghost small" onClick={newFolder} disabled={!!readOnly} title="New folder">
              + Folder
            </button>
            <button class="ghost small" onClick={renameSelected} disabled={!!readOnly || !selected} title="Rename">
              Rename
            </button>
            <button class="ghost small danger" onClick={deleteSelected} disabled={!!readOnly || !selected} title="Delete">
              Delete
            </button>
          </div>
          <ul role="tree" aria-label={`${name} package`}>
            {root.children.map((n) => (
              <TreeItem key={n.path} node={n} selected={selected} dirty={dirty} onSelect={setSelected} onOpen={openFile} />
            ))}
          </ul>
          {layers.map((l) => (
            <div key={l.arn} class="layer">
              <div class="layer-name" title={l.arn}>
                Layer {l.arn.split(":").slice(-2).join(":")} (read-only)
              </div>
              <ul>
                {[...l.files.keys()].sort().map((p) => (
                  <li key={p} class="muted small">
                    /opt/{p}
                  </li>
                ))}
              </ul>
            </div>
          ))}
        </aside>
        <div class="editor-pane">
          <nav class="editor-tabs" aria-label="Open files">
            {open.map((p) => (
              <div key={p} class={`editor-tab ${p === active ? "active" : ""}`}>
                <button class="link" onClick={() => setActive(p)} title={p} aria-current={p === active ? "true" : undefined}>
                  {p.split("/").pop()}
                  {dirty.has(p) && <span class="dot" aria-label="not deployed"> ●</span>}
                </button>
                <button class="link close" onClick={() => closeTab(p)} aria-label={`Close ${p}`}>
                  ×
                </button>
              </div>
            ))}
          </nav>
          {active && activeData !== undefined ? (
            isSymlink(modes.get(active)) ? (
              <div class="empty">
                A symbolic link to <code>{text(activeData)}</code>; it is kept as it is.
              </div>
            ) : isText(activeData) ? (
              <Editor
                docKey={`${name}:${generation}:${active}`}
                path={active}
                initial={text(activeData)}
                readOnly={!!readOnly || deploying}
                onChange={(v) => edit(active, v)}
                onSave={deploy}
              />
            ) : (
              <div class="empty">This file is binary ({fmtBytes(activeData.length)}); it is kept as it is.</div>
            )
          ) : (
            <div class="empty">Open a file from the tree.</div>
          )}
        </div>
      </div>
    </div>
  );
}

function TreeItem({
  node,
  selected,
  dirty,
  onSelect,
  onOpen,
}: {
  node: TreeNode;
  selected: string | null;
  dirty: Set<string>;
  onSelect: (p: string) => void;
  onOpen: (p: string) => void;
}) {
  const [expanded, setExpanded] = useState(true);
  if (node.dir) {
    return (
      <li role="treeitem" aria-expanded={expanded} aria-selected={selected === node.path}>
        <button
          class={`tree-row ${selected === node.path ? "selected" : ""}`}
          onClick={() => {
            onSelect(node.path);
            setExpanded(!expanded);
          }}
        >
          {expanded ? "▾" : "▸"} {node.name}/
        </button>
        {expanded && (
          <ul role="group">
            {node.children.map((c) => (
              <TreeItem key={c.path} node={c} selected={selected} dirty={dirty} onSelect={onSelect} onOpen={onOpen} />
            ))}
          </ul>
        )}
      </li>
    );
  }
  return (
    <li role="treeitem" aria-selected={selected === node.path}>
      <button class={`tree-row file ${selected === node.path ? "selected" : ""}`} onClick={() => onOpen(node.path)}>
        {node.name}
        {dirty.has(node.path) && <span class="dot"> ●</span>}
      </button>
    </li>
  );
}

//! The console's frame: sign-in gate, top bar, theme, toasts, and the page for the route.
import { useCallback, useEffect, useMemo, useState } from "preact/hooks";
import { AppContext, type Ctx } from "./ctx";
import { Clients, isSignedOutError, loadSession, saveSession, type Session } from "./session";
import { go, useRoute } from "./router";
import { Login } from "./pages/Login";
import { Functions } from "./pages/Functions";
import { Create } from "./pages/Create";
import { FunctionPage } from "./pages/Function";

type Theme = "light" | "dark";

export function initialTheme(): Theme {
  const saved = localStorage.getItem("nimbus.theme");
  if (saved === "light" || saved === "dark") return saved;
  return matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

export function App() {
  const route = useRoute();
  const [session, setSession] = useState<Session | null>(() => loadSession());
  const [notice, setNotice] = useState<string | null>(null);
  const [theme, setTheme] = useState<Theme>(initialTheme);
  const [toasts, setToasts] = useState<{ id: number; message: string; kind: "ok" | "error" }[]>([]);
  // Where to come back to after signing in again.
  const [returnTo, setReturnTo] = useState<string | null>(null);

  useEffect(() => {
    document.documentElement.dataset.theme = theme;
    localStorage.setItem("nimbus.theme", theme);
  }, [theme]);

  const signOut = useCallback((why?: string) => {
    saveSession(null);
    setSession(null);
    setNotice(why ?? null);
    if (!location.hash.startsWith("#/login")) setReturnTo(location.hash);
    go({ page: "login" });
  }, []);

  const toast = useCallback((message: string, kind: "ok" | "error" = "ok") => {
    const id = Date.now() + Math.random();
    setToasts((t) => [...t, { id, message, kind }]);
    setTimeout(() => setToasts((t) => t.filter((x) => x.id !== id)), kind === "error" ? 8000 : 4000);
  }, []);

  const ctx: Ctx | null = useMemo(() => {
    if (!session) return null;
    const clients = new Clients(session.credentials, session.region);
    return {
      session,
      clients,
      async call(f) {
        try {
          return await f(clients);
        } catch (e) {
          if (isSignedOutError(e)) {
            signOut(`Your key is no longer accepted (${(e as Error).name}). Sign in again; unsaved edits are kept.`);
          }
          throw e;
        }
      },
      toast,
    };
  }, [session, signOut, toast]);

  // A session whose temporary credentials ran out goes back to sign-in.
  useEffect(() => {
    const exp = session?.credentials.expiration;
    if (!exp) return;
    const ms = new Date(exp).getTime() - Date.now();
    if (ms <= 0) {
      signOut("Your session expired. Sign in again; unsaved edits are kept.");
      return;
    }
    const t = setTimeout(() => signOut("Your session expired. Sign in again; unsaved edits are kept."), Math.min(ms, 2 ** 31 - 1));
    return () => clearTimeout(t);
  }, [session, signOut]);

  const onSignedIn = (s: Session) => {
    saveSession(s);
    setSession(s);
    setNotice(null);
    // Replaced, not pushed: Back must not return to a used login link.
    location.replace(returnTo && !returnTo.startsWith("#/login") ? returnTo : "#/functions");
    setReturnTo(null);
  };

  if (!ctx || route.page === "login") {
    return (
      <div class="app">
        <Login token={route.page === "login" ? route.token : undefined} notice={notice} onSignedIn={onSignedIn} />
        <Toasts toasts={toasts} />
      </div>
    );
  }

  return (
    <AppContext.Provider value={ctx}>
      <div class="app">
        <header class="topbar">
          <a class="brand" href="#/functions">
            <span class="logo" aria-hidden="true">◆</span> Nimbus
          </a>
          <nav aria-label="Main">
            <a href="#/functions" aria-current={route.page === "functions" || route.page === "function" ? "page" : undefined}>
              Functions
            </a>
          </nav>
          <div class="spacer" />
          <span class="who" title={ctx.session.arn}>
            {ctx.session.arn.split(":").slice(-1)[0] || ctx.session.credentials.accessKeyId} · {ctx.session.region}
          </span>
          <button
            class="ghost"
            onClick={() => setTheme(theme === "dark" ? "light" : "dark")}
            aria-label={`Switch to ${theme === "dark" ? "light" : "dark"} theme`}
            title="Theme"
          >
            {theme === "dark" ? "☀" : "☾"}
          </button>
          <button class="ghost" onClick={() => signOut()}>
            Sign out
          </button>
        </header>
        <main>
          {route.page === "functions" && <Functions />}
          {route.page === "create" && <Create />}
          {route.page === "function" && <FunctionPage key={route.name} name={route.name} tab={route.tab} />}
        </main>
        <Toasts toasts={toasts.slice(-3)} />
      </div>
    </AppContext.Provider>
  );
}

function Toasts({ toasts }: { toasts: { id: number; message: string; kind: "ok" | "error" }[] }) {
  return (
    <div class="toasts" aria-live="polite">
      {toasts.map((t) => (
        <div key={t.id} class={`toast ${t.kind}`} role={t.kind === "error" ? "alert" : "status"}>
          {t.message}
        </div>
      ))}
    </div>
  );
}

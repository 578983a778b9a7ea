//! Deep links: every page and tab has a URL (`#/functions/<name>/<tab>`), parsed here.
import { useEffect, useState } from "preact/hooks";

export type Route =
  | { page: "login"; token?: string }
  | { page: "functions" }
  | { page: "create" }
  | { page: "function"; name: string; tab: Tab };

export const TABS = ["code", "test", "monitor", "logs", "configuration", "aliases", "triggers"] as const;
export type Tab = (typeof TABS)[number];

export function parseRoute(hash: string): Route {
  const decode = (p: string) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p; // a stray % in a typed URL
    }
  };
  const parts = hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decode);
  switch (parts[0]) {
    case "login":
      return { page: "login", token: parts[1] };
    case "create":
      return { page: "create" };
    case "functions":
      if (parts[1]) {
        const tab = (TABS as readonly string[]).includes(parts[2] ?? "") ? (parts[2] as Tab) : "code";
        return { page: "function", name: parts[1], tab };
      }
      return { page: "functions" };
    default:
      return { page: "functions" };
  }
}

export function href(r: Route): string {
  switch (r.page) {
    case "login":
      return "#/login";
    case "create":
      return "#/create";
    case "functions":
      return "#/functions";
    case "function":
      return `#/functions/${encodeURIComponent(r.name)}/${r.tab}`;
  }
}

export function go(r: Route) {
  location.hash = href(r);
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const on = () => setRoute(parseRoute(location.hash));
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return route;
}

//! What every page needs: the signed-in session, its SDK clients, and a way to call the API
//! that sends the person back to sign-in when the key stops working.
import { createContext } from "preact";
import { useContext } from "preact/hooks";
import type { Clients, Session } from "./session";

export interface Ctx {
  session: Session;
  clients: Clients;
  /** Runs an API call; a call refused for the key itself signs out (drafts are kept). */
  call<T>(f: (c: Clients) => Promise<T>): Promise<T>;
  toast(message: string, kind?: "ok" | "error"): void;
}

export const AppContext = createContext<Ctx | null>(null);

export function useApp(): Ctx {
  const c = useContext(AppContext);
  if (!c) throw new Error("no session");
  return c;
}

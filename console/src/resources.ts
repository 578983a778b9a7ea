//! What several pages read from the account: its IAM roles, and a function's package.
import { useEffect, useState } from "preact/hooks";
import { GetFunctionCommand } from "@aws-sdk/client-lambda";
import { ListRolesCommand, type Role } from "@aws-sdk/client-iam";
import type { Ctx } from "./ctx";

/** The account's roles (an empty list when the caller may not list them). */
export function useRoles(app: Ctx): Role[] {
  const [roles, setRoles] = useState<Role[]>([]);
  useEffect(() => {
    app
      .call((c) => c.iam.send(new ListRolesCommand({ MaxItems: 1000 })))
      .then((r) => setRoles(r.Roles ?? []))
      .catch(() => setRoles([]));
  }, []);
  return roles;
}

/** A zip behind a link the server signed (a function's or a layer's `Location`). */
export async function fetchZip(url: string): Promise<Uint8Array> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`Downloading the package failed: ${r.status} ${r.statusText}`);
  return new Uint8Array(await r.arrayBuffer());
}

/** A function's deployment package, through a fresh link (the one a page loaded with expires). */
export async function downloadPackage(app: Ctx, name: string): Promise<Uint8Array> {
  const current = await app.call((c) => c.lambda.send(new GetFunctionCommand({ FunctionName: name })));
  return fetchZip(current.Code!.Location!);
}

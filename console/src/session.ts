//! Who is signed in: the access key kept in this browser tab's session storage only, the
//! region the server serves, and the AWS SDK clients that sign every call with that key.
import { LambdaClient } from "@aws-sdk/client-lambda";
import { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import { IAMClient } from "@aws-sdk/client-iam";
import { STSClient, GetCallerIdentityCommand, GetSessionTokenCommand } from "@aws-sdk/client-sts";

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: string;
}

export interface Session {
  credentials: Credentials;
  region: string;
  /** The caller's ARN, from GetCallerIdentity. */
  arn: string;
  account: string;
}

const KEY = "nimbus.session";

export function loadSession(): Session | null {
  try {
    const raw = sessionStorage.getItem(KEY);
    return raw ? (JSON.parse(raw) as Session) : null;
  } catch {
    return null;
  }
}

export function saveSession(s: Session | null) {
  if (s) sessionStorage.setItem(KEY, JSON.stringify(s));
  else sessionStorage.removeItem(KEY);
}

/** The region this server serves (`/_nimbus/status`), us-east-1 if it does not say. */
export async function serverRegion(): Promise<string> {
  try {
    const r = await fetch("/_nimbus/status");
    const v = await r.json();
    return typeof v.region === "string" ? v.region : "us-east-1";
  } catch {
    return "us-east-1";
  }
}

function sdkCredentials(c: Credentials) {
  return {
    accessKeyId: c.accessKeyId,
    secretAccessKey: c.secretAccessKey,
    sessionToken: c.sessionToken,
    expiration: c.expiration ? new Date(c.expiration) : undefined,
  };
}

/** The configuration every client of a session is made with. */
type ClientConfig = { region: string; endpoint: string; credentials: ReturnType<typeof sdkCredentials>; maxAttempts: number };

export class Clients {
  lambda: LambdaClient;
  cloudwatch: CloudWatchClient;
  iam: IAMClient;
  sts: STSClient;
  private config: ClientConfig;
  private made = new Map<unknown, unknown>();

  constructor(credentials: Credentials, region: string) {
    this.config = { region, endpoint: location.origin, credentials: sdkCredentials(credentials), maxAttempts: 1 };
    this.lambda = new LambdaClient(this.config);
    this.cloudwatch = new CloudWatchClient(this.config);
    this.iam = new IAMClient(this.config);
    this.sts = new STSClient(this.config);
  }

  /**
   * A client of a service only some tabs use (SQS, SNS, EventBridge, KMS, CloudWatch Logs),
   * made once per session: its SDK module is imported by that tab, so it loads with the tab.
   */
  get<T>(Client: new (config: ClientConfig) => T): T {
    if (!this.made.has(Client)) this.made.set(Client, new Client(this.config));
    return this.made.get(Client) as T;
  }
}

/**
 * Signs in with a key: a long-term key is traded for temporary credentials (STS
 * GetSessionToken: 12 hours for an IAM user, the one hour AWS gives a root key) and only
 * those are kept, so the secret typed in is never stored; then asks who it is.
 */
export async function signIn(credentials: Credentials, region: string): Promise<Session> {
  let creds = credentials;
  if (!credentials.sessionToken) {
    const sts = new STSClient({ region, endpoint: location.origin, credentials: sdkCredentials(credentials), maxAttempts: 1 });
    const out = await sts.send(new GetSessionTokenCommand({ DurationSeconds: 12 * 3600 }));
    const c = out.Credentials!;
    creds = { accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey!, sessionToken: c.SessionToken, expiration: c.Expiration?.toISOString() };
  }
  const sts = new STSClient({ region, endpoint: location.origin, credentials: sdkCredentials(creds), maxAttempts: 1 });
  const who = await sts.send(new GetCallerIdentityCommand({}));
  return { credentials: creds, region, arn: who.Arn ?? "", account: who.Account ?? "" };
}

/** Trades a one-time login link's token for temporary credentials of the administrator. */
export async function redeemLoginToken(token: string): Promise<Credentials> {
  const r = await fetch("/_nimbus/console/session", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ token }),
  });
  const v = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(v.message ?? `The server answered ${r.status}.`);
  return { accessKeyId: v.AccessKeyId, secretAccessKey: v.SecretAccessKey, sessionToken: v.SessionToken, expiration: v.Expiration };
}

/**
 * Errors that mean the key no longer works: the console goes back to sign-in. A bad
 * signature is not one of them: with a key that signed in, it means the clocks disagree.
 */
const SIGNED_OUT = new Set([
  "ExpiredToken",
  "ExpiredTokenException",
  "UnrecognizedClientException",
  "InvalidClientTokenId",
  "IncompleteSignature",
  "MissingAuthenticationToken",
]);

export function isSignedOutError(e: unknown): boolean {
  const name = (e as { name?: string })?.name ?? "";
  return SIGNED_OUT.has(name);
}

/** An API error as a person reads it: the exception's name and AWS's message. */
export function describeError(e: unknown): string {
  const err = e as { name?: string; message?: string };
  const name = err?.name && err.name !== "Error" ? err.name : "";
  const msg = err?.message ?? String(e);
  return name && !msg.startsWith(name) ? `${name}: ${msg}` : msg;
}

//! Sign-in: an access key typed by a person, or a one-time login link the server printed.
import { useEffect, useState } from "preact/hooks";
import { redeemLoginToken, serverRegion, signIn, describeError, type Session } from "../session";
import { ErrorBox, Field } from "../components/ui";

export function Login({ token, notice, onSignedIn }: { token?: string; notice: string | null; onSignedIn: (s: Session) => void }) {
  const [accessKeyId, setKeyId] = useState("");
  const [secret, setSecret] = useState("");
  const [sessionToken, setSessionToken] = useState("");
  const [region, setRegion] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    serverRegion().then((r) => setRegion((cur) => cur || r));
  }, []);

  // A login link: trade its token once, then forget it from the address bar.
  useEffect(() => {
    if (!token) return;
    let cancelled = false;
    setBusy(true);
    (async () => {
      try {
        const creds = await redeemLoginToken(token);
        const r = await serverRegion();
        const s = await signIn(creds, r);
        if (!cancelled) onSignedIn(s);
      } catch (e) {
        if (!cancelled) setError(describeError(e));
        history.replaceState(null, "", "#/login");
      } finally {
        if (!cancelled) setBusy(false);
      }
    })();
    return () => {
      cancelled = true;
    };
  }, [token]);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const s = await signIn(
        { accessKeyId: accessKeyId.trim(), secretAccessKey: secret.trim(), sessionToken: sessionToken.trim() || undefined },
        region.trim() || "us-east-1",
      );
      onSignedIn(s);
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="login">
      <form class="card login-card" onSubmit={submit}>
        <h1>
          <span class="logo" aria-hidden="true">◆</span> Nimbus
        </h1>
        <p class="muted">Sign in with an access key. The console keeps only temporary credentials made from it (STS), in this browser tab, until you sign out or close it.</p>
        {notice && <div class="notice">{notice}</div>}
        <ErrorBox error={error} />
        <Field label="Access key ID">
          <input name="accessKeyId" autocomplete="username" value={accessKeyId} onInput={(e) => setKeyId(e.currentTarget.value)} required />
        </Field>
        <Field label="Secret access key">
          <input name="secretAccessKey" type="password" autocomplete="current-password" value={secret} onInput={(e) => setSecret(e.currentTarget.value)} required />
        </Field>
        <details>
          <summary>More options</summary>
          <Field label="Session token" hint="Only for temporary credentials (STS).">
            <input name="sessionToken" value={sessionToken} onInput={(e) => setSessionToken(e.currentTarget.value)} />
          </Field>
          <Field label="Region">
            <input name="region" value={region} onInput={(e) => setRegion(e.currentTarget.value)} />
          </Field>
        </details>
        <button class="primary" type="submit" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
        <p class="hint">
          On the server's machine, <code>nimbus console</code> prints a one-time link that signs you in as the administrator.
          The administrator's key is in <code>.nimbus/credentials</code>.
        </p>
      </form>
    </div>
  );
}

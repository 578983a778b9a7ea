// The console when things go wrong, in a real headless Chromium: a deploy the caller may not
// make fails with AWS's error next to Deploy and the edits stay; a user deleted mid-session
// (its key and the session made from it dead) sends the person back to sign-in, and signing in again returns to the page with the
// unsaved edits restored.
//
//   node console_ui_failures.mjs '{"base":…,"shots":…,"fn":…,"user":{"accessKeyId","secretAccessKey","userName"},
//                                  "admin":{"accessKeyId","secretAccessKey"},"region":"us-east-1"}'
import { IAMClient, DeleteAccessKeyCommand, DeleteUserCommand, DeleteUserPolicyCommand } from "@aws-sdk/client-iam";
import { open } from "./console_lib.mjs";

const cfg = JSON.parse(process.argv[2]);
const { page, step, shot, finish } = await open(cfg);
const EDIT = "# edited by a reader who may not deploy";

async function signIn(key) {
  await page.getByLabel("Access key ID").fill(key.accessKeyId);
  await page.getByLabel("Secret access key").fill(key.secretAccessKey);
  await page.getByRole("button", { name: "Sign in" }).click();
}

await step("a reader signs in and edits the code", async () => {
  await page.goto(`${cfg.base}/#/login`);
  await signIn(cfg.user);
  await page.getByRole("heading", { name: "Functions", exact: true }).waitFor();
  await page.goto(`${cfg.base}/#/functions/${cfg.fn}/code`);
  await page.locator(".cm-content", { hasText: "def handler" }).waitFor();
  await page.locator(".cm-content").first().click();
  await page.keyboard.press("Control+End");
  await page.keyboard.insertText(EDIT + "\n");
  await page.locator(".dirty-note").waitFor();
  return {};
});

await step("a deploy that fails shows AWS's error and keeps the edits", async () => {
  await page.getByRole("button", { name: "Deploy", exact: true }).click();
  await page.locator(".error", { hasText: "Deploy failed" }).waitFor();
  const error = await page.locator(".error").first().innerText();
  const content = await page.locator(".cm-content").first().innerText();
  await shot("deploy-failed");
  return { error, kept: content.includes(EDIT), dirty: await page.locator(".dirty-note").isVisible() };
});

await step("a revoked key sends the reader back to sign-in", async () => {
  const iam = new IAMClient({ region: cfg.region, endpoint: cfg.base, credentials: cfg.admin });
  // The console holds session credentials made from the key: they die with the user.
  await iam.send(new DeleteAccessKeyCommand({ UserName: cfg.user.userName, AccessKeyId: cfg.user.accessKeyId }));
  await iam.send(new DeleteUserPolicyCommand({ UserName: cfg.user.userName, PolicyName: "read" }));
  await iam.send(new DeleteUserCommand({ UserName: cfg.user.userName }));
  await page.getByRole("tab", { name: "Test" }).click();
  await page.getByRole("button", { name: "Test", exact: true }).click();
  await page.getByRole("button", { name: "Sign in" }).waitFor();
  const notice = await page.locator(".notice").first().innerText();
  await shot("signed-out");
  return { notice, url: page.url() };
});

await step("signing in again returns to the page with the edits restored", async () => {
  await signIn(cfg.admin);
  await page.getByRole("heading", { name: cfg.fn, exact: true }).waitFor();
  const back = page.url();
  await page.getByRole("tab", { name: "Code" }).click();
  await page.locator(".notice", { hasText: "Restored your changes" }).waitFor();
  const content = await page.locator(".cm-content").first().innerText();
  await page.getByRole("button", { name: "Deploy", exact: true }).click();
  await page.locator(".toast", { hasText: "Deployed" }).waitFor();
  return { back, restored: content.includes(EDIT) };
});

await finish();

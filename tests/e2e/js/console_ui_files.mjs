// The console and a function's package, in a real headless Chromium: create from an uploaded
// zip, the file tree (add a file, rename a folder, delete a file), a binary file kept as it
// is, deploy; a template event; a layer's files listed read-only; a package over 3 MB shown
// read-only; deleting a function after typing its name.
//
//   node console_ui_files.mjs '{"base":…,"shots":…,"zip":"/path/pkg.zip","fn":…,"layered":…,"big":…,
//                               "accessKeyId":…,"secretAccessKey":…}'
import { open } from "./console_lib.mjs";

const cfg = JSON.parse(process.argv[2]);
const { page, step, shot, finish, audit, answer } = await open(cfg);
const toast = (re) => page.locator(".toast", { hasText: re }).first().waitFor();
const treeNames = async () => (await page.locator("aside.filetree > ul").innerText()).split("\n").map((l) => l.trim()).filter(Boolean);

await step("sign in", async () => {
  await page.goto(`${cfg.base}/#/login`);
  await page.getByLabel("Access key ID").fill(cfg.accessKeyId);
  await page.getByLabel("Secret access key").fill(cfg.secretAccessKey);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Functions", exact: true }).waitFor();
  return {};
});

await step("create a function from an uploaded zip", async () => {
  await page.goto(`${cfg.base}/#/create`);
  await page.getByText("Upload a .zip").click();
  await page.locator("input[type=file]").setInputFiles(cfg.zip);
  await page.getByLabel("Function name").fill(cfg.fn);
  await page.locator("select[name=runtime]").selectOption("python3.11");
  await page.locator("input[name=handler]").fill("app.handler");
  await page.getByRole("button", { name: "Create function" }).click();
  await page.getByRole("heading", { name: cfg.fn, exact: true }).waitFor();
  await page.locator(".cm-content", { hasText: "def handler" }).waitFor();
  return { tree: await treeNames() };
});

await step("add a file, rename a folder, delete a file, and deploy", async () => {
  // + File, into the selected file's folder: lib/
  await page.getByRole("button", { name: "helper.py" }).click();
  answer("lib/extra.py");
  await page.getByRole("button", { name: "+ File" }).click();
  await page.locator(".cm-content").first().click();
  await page.keyboard.insertText("EXTRA = 42\n");
  // Rename the folder lib → pkg (everything under it moves).
  await page.getByRole("button", { name: "▾ lib/" }).click();
  answer("pkg");
  await page.getByRole("button", { name: "Rename" }).click();
  await page.getByRole("button", { name: "▾ pkg/" }).waitFor();
  // Delete README.md.
  await page.getByRole("button", { name: "README.md" }).click();
  await page.getByRole("button", { name: "Delete", exact: true }).click();
  await page.getByRole("button", { name: "README.md" }).waitFor({ state: "detached" });
  const tree = await treeNames();
  const marker = await page.locator(".dirty-note").innerText();
  await page.getByRole("button", { name: "data.bin" }).click();
  const binary = await page.locator(".editor-pane .empty").innerText();
  await shot("files");
  await audit("files");
  await page.getByRole("button", { name: "Deploy", exact: true }).click();
  await toast(/Deployed/);
  await page.locator(".dirty-note").waitFor({ state: "detached" });
  return { tree, marker, binary, after: await treeNames() };
});

await step("test with a template event", async () => {
  await page.getByRole("tab", { name: "Test" }).click();
  await page.getByLabel("Template").selectOption({ label: "SQS receive message" });
  await page.getByRole("button", { name: "Test", exact: true }).click();
  await page.getByText("Execution succeeded").waitFor();
  return { response: await page.locator("pre[aria-label=Response]").innerText() };
});

await step("a layer's files are listed read-only", async () => {
  await page.goto(`${cfg.base}/#/functions/${cfg.layered}/code`);
  await page.locator(".layer").waitFor();
  return { layer: await page.locator(".layer").innerText() };
});

await step("encrypt a variable in transit and choose the key at rest", async () => {
  await page.goto(`${cfg.base}/#/functions/${cfg.layered}/configuration`);
  const env = page.getByRole("region", { name: "Environment variables" });
  await env.getByRole("button", { name: "Add variable" }).click();
  await env.getByLabel("Key 1").fill("SECRET");
  await env.getByLabel("Value 1").fill("s3cret");
  await env.getByLabel("Enable helpers for encryption in transit").check();
  await env.locator("select[name=transitKey]").selectOption(cfg.keyArn);
  await env.getByRole("button", { name: "Encrypt SECRET" }).click();
  await toast(/Encrypted SECRET/);
  const cipher = await env.getByLabel("Value 1").inputValue();
  await env.locator("select[name=kms]").selectOption(cfg.keyArn);
  await shot("encryption");
  await audit("encryption helpers");
  await env.getByRole("button", { name: "Save" }).click();
  await toast(/Saved the environment variables/);
  return { cipher };
});

await step("set a destination; the retry settings stay", async () => {
  await page.goto(`${cfg.base}/#/functions/${cfg.layered}/triggers`);
  await page.getByRole("button", { name: "Edit destinations" }).click();
  const dialog = page.locator("dialog[open]");
  await dialog.locator("input[name=onFailure]").fill(cfg.dlq);
  await dialog.getByRole("button", { name: "Save" }).click();
  await toast(/Saved the destinations/);
  await page.locator(".diagram-box.destination", { hasText: "On failure" }).waitFor();
  return {};
});

await step("a package over 3 MB is read-only", async () => {
  await page.goto(`${cfg.base}/#/functions/${cfg.big}/code`);
  await page.locator(".notice", { hasText: "over the 3 MB" }).waitFor();
  const editable = await page.locator(".cm-content").first().getAttribute("contenteditable");
  const deploy = await page.getByRole("button", { name: "Deploy", exact: true }).isDisabled();
  await shot("read-only");
  return { notice: await page.locator(".notice").first().innerText(), editable, deployDisabled: deploy };
});

await step("delete a function after typing its name", async () => {
  await page.goto(`${cfg.base}/#/functions`);
  await page.getByRole("button", { name: `Delete ${cfg.big}` }).click();
  const dialog = page.locator("dialog[open]");
  const confirm = dialog.getByRole("button", { name: "Delete" });
  const disabledBefore = await confirm.isDisabled();
  await dialog.getByLabel("Function name to confirm").fill(cfg.big);
  await confirm.click();
  await toast(new RegExp(`Deleted ${cfg.big}`));
  await page.locator("tr", { hasText: cfg.big }).waitFor({ state: "detached" });
  return { disabledBefore };
});

await finish();

// Drives Nimbus's web console in a real headless Chromium (Debian's /usr/bin/chromium through
// playwright-core), as a person would: the one-time login link, sign-out and sign-in with a
// key, create from a blueprint, edit and deploy, test, configure, publish, alias, trigger,
// monitor, logs. Every page is saved as a screenshot. Prints a JSON report of what it saw;
// exits non-zero with the step that failed.
//
//   node console_ui.mjs '{"base":"http://127.0.0.1:PORT","loginUrl":"...","accessKeyId":"...",
//                         "secretAccessKey":"...","shots":"/tmp/dir","queueName":"q","fn":"name"}'
import { open } from "./console_lib.mjs";

const cfg = JSON.parse(process.argv[2]);
const { page, step, shot, finish, audit } = await open(cfg);

const text = (sel) => page.locator(sel).first().innerText();
const toast = (re) => page.locator(".toast", { hasText: re }).first().waitFor();

await step("the one-time login link signs in", async () => {
  await page.goto(cfg.loginUrl);
  await page.getByRole("heading", { name: "Functions", exact: true }).waitFor();
  const who = await text(".who");
  await shot("functions-empty");
  await audit("functions (empty)");
  return { who, url: page.url() };
});

await step("a used login link does not sign in again", async () => {
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.goto(cfg.loginUrl);
  await page.locator(".error").waitFor();
  await audit("sign-in with an error");
  return { error: await text(".error") };
});

await step("sign in with an access key", async () => {
  await page.goto(`${cfg.base}/#/login`);
  await page.getByLabel("Access key ID").fill(cfg.accessKeyId);
  await page.getByLabel("Secret access key").fill("wrong" + cfg.secretAccessKey);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator(".error").waitFor();
  const refused = await text(".error");
  await page.getByLabel("Secret access key").fill(cfg.secretAccessKey);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Functions", exact: true }).waitFor();
  const stored = await page.evaluate(() => {
    const s = JSON.parse(sessionStorage.getItem("nimbus.session") ?? "{}");
    return { session: !!s.credentials, keyId: s.credentials?.accessKeyId, hasToken: !!s.credentials?.sessionToken, local: Object.keys(localStorage) };
  });
  return { refused, stored };
});

await step("create a function from a blueprint", async () => {
  await page.getByRole("link", { name: "Create function" }).first().click();
  await page.getByText("SQS consumer (Python)").click();
  await page.getByLabel("Function name").fill(cfg.fn);
  await page.locator("select[name=runtime]").selectOption(cfg.runtime);
  await shot("create");
  await audit("create");
  await page.getByRole("button", { name: "Create function" }).click();
  await page.getByRole("heading", { name: cfg.fn, exact: true }).waitFor();
  await page.locator(".cm-content").first().waitFor();
  await page.getByText("lambda_function.py").first().waitFor();
  return { url: page.url() };
});

const NEW_CODE = `import os


def lambda_handler(event, context):
    print("console edit ran for", event.get("name"))
    return {"edited": True, "greeting": os.environ.get("GREETING", "unset"), "name": event.get("name")}
`;

await step("edit the code and deploy with Ctrl-S", async () => {
  const editor = page.locator(".cm-content").first();
  await editor.click();
  await page.keyboard.press("Control+A");
  await page.keyboard.press("Delete");
  await page.keyboard.insertText(NEW_CODE);
  await page.locator(".dirty-note").waitFor();
  const marker = await text(".dirty-note");
  await shot("code-unsaved");
  await audit("code");
  await page.keyboard.press("Control+S");
  await toast(/Deployed/);
  await page.locator(".dirty-note").waitFor({ state: "detached" });
  await shot("code-deployed");
  return { marker };
});

await step("an invalid test event is flagged before invoking", async () => {
  await page.getByRole("tab", { name: "Test" }).click();
  const editor = page.locator(".cm-content").first();
  await editor.click();
  await page.keyboard.press("Control+A");
  await page.keyboard.press("Delete");
  await page.keyboard.insertText('{"name": ');
  await page.getByRole("button", { name: "Test", exact: true }).click();
  await page.locator(".field-error").waitFor();
  return { error: await text(".field-error") };
});

await step("run a test event and see the new output and log lines", async () => {
  const editor = page.locator(".cm-content").first();
  await editor.click();
  await page.keyboard.press("Control+A");
  await page.keyboard.press("Delete");
  await page.keyboard.insertText('{"name": "ada"}');
  await page.getByLabel("Event name").fill("ada-event");
  await page.getByRole("button", { name: "Save event" }).click();
  await page.getByRole("button", { name: "Test", exact: true }).click();
  await page.getByText("Execution succeeded").waitFor();
  const response = await text("pre[aria-label=Response]");
  const log = await text("pre[aria-label='Log output']");
  const facts = await text(".facts");
  await shot("test");
  await audit("test result");
  return { response, log, facts };
});

await step("edits made after coming back to the Code tab count, and can be discarded", async () => {
  await page.getByRole("tab", { name: "Code" }).click();
  await page.locator(".cm-content", { hasText: "console edit ran for" }).waitFor();
  await page.locator(".cm-content").first().click();
  await page.keyboard.press("Control+End");
  await page.keyboard.insertText("# a second edit\n");
  await page.locator(".dirty-note").waitFor();
  const marker = await page.locator(".dirty-note").innerText();
  await page.getByRole("button", { name: "Discard changes" }).click();
  await page.locator(".dirty-note").waitFor({ state: "detached" });
  // The editor takes its fresh state just after the page shows the change is gone.
  const discarded = await page
    .waitForFunction(() => !document.querySelector(".cm-content").innerText.includes("a second edit"), null, { timeout: 5000 })
    .then(() => true, () => false);
  return { marker, discarded, after: await page.locator(".cm-content").first().innerText() };
});

await step("change memory and an environment variable", async () => {
  await page.getByRole("tab", { name: "Configuration" }).click();
  const general = page.getByRole("region", { name: "General configuration" });
  await general.locator("input[name=memory]").fill("256");
  await general.getByRole("button", { name: "Save" }).click();
  await toast(/Saved the general configuration/);
  const env = page.getByRole("region", { name: "Environment variables" });
  await env.getByRole("button", { name: "Add variable" }).click();
  await env.getByLabel("Key 1").fill("GREETING");
  await env.getByLabel("Value 1").fill("hello from the console");
  const masked = await env.getByLabel("Value 1").getAttribute("type");
  await env.getByRole("button", { name: "Save" }).click();
  await toast(/Saved the environment variables/);
  const url = page.getByRole("region", { name: "Function URL" });
  await url.getByLabel("Auth type").selectOption("NONE");
  await url.getByRole("button", { name: "Create URL" }).click();
  await toast(/Saved the function URL/);
  const functionUrl = await url.locator("a").first().getAttribute("href");
  await shot("configuration");
  await audit("configuration");
  await page.getByRole("tab", { name: "Test" }).click();
  await page.getByRole("button", { name: "Test", exact: true }).click();
  await page.getByText("Execution succeeded").waitFor();
  await page.locator("pre[aria-label=Response]", { hasText: "hello from the console" }).waitFor();
  const badges = await text(".badges");
  return { masked, response: await text("pre[aria-label=Response]"), badges, functionUrl };
});

await step("publish a version and point an alias at it", async () => {
  await page.getByRole("tab", { name: "Versions & aliases" }).click();
  await page.getByLabel("Version description").fill("first from the console");
  await page.getByRole("button", { name: "Publish new version" }).click();
  await toast(/Published version 1/);
  await page.getByRole("button", { name: "Create alias" }).click();
  const dialog = page.locator("dialog[open]");
  await dialog.locator("input[name=aliasName]").fill("live");
  await dialog.locator("select[name=aliasTarget]").selectOption("1");
  await dialog.getByRole("button", { name: "Save" }).click();
  await toast(/Created the alias live/);
  await page.locator("svg.aliasgraph").waitFor();
  await shot("aliases");
  await audit("versions and aliases");
  return { aliases: await text("table[aria-label='Alias list']") };
});

await step("provision concurrency for the alias", async () => {
  const row = page.locator("table[aria-label='Alias list'] tr", { hasText: "live" });
  await row.getByRole("button", { name: "Provisioned…" }).click();
  await toast(/Provisioning 1 environment for live/);
  await page.locator("table[aria-label='Alias list'] td", { hasText: "READY" }).waitFor({ timeout: 60_000 });
  return { row: await row.innerText() };
});

await step("add an SQS trigger", async () => {
  await page.getByRole("tab", { name: "Triggers & destinations" }).click();
  await page.getByRole("button", { name: "+ Add trigger" }).click();
  const dialog = page.locator("dialog[open]");
  await dialog.locator("select[name=queue]").selectOption({ label: cfg.queueName });
  await dialog.locator("input[name=batchSize]").fill("5");
  await dialog.getByRole("button", { name: "Add" }).click();
  await toast(/Added the SQS trigger/);
  const box = page.locator(".diagram-box.trigger", { hasText: cfg.queueName });
  await box.waitFor();
  await shot("triggers");
  await audit("triggers");
  return { trigger: await box.innerText() };
});

await step("add a schedule, disable it, remove it", async () => {
  await page.getByRole("button", { name: "+ Add trigger" }).click();
  const dialog = page.locator("dialog[open]");
  await dialog.locator("select[name=source]").selectOption("schedule");
  await dialog.locator("input[name=schedule]").fill("every hour");
  const invalid = await dialog.locator(".field-error").innerText();
  await dialog.locator("input[name=schedule]").fill("rate(1 hour)");
  await dialog.getByRole("button", { name: "Add" }).click();
  await toast(/Added the schedule/);
  const box = page.locator(".diagram-box.trigger", { hasText: "EventBridge" });
  await box.locator(".badge", { hasText: "Enabled" }).waitFor();
  const added = await box.innerText();
  await box.getByRole("button", { name: "Disable" }).click();
  await box.locator(".badge", { hasText: "Disabled" }).waitFor();
  await box.getByRole("button", { name: "Remove" }).click();
  await box.waitFor({ state: "detached" });
  return { invalid, added };
});

await step("see the invocations on the monitoring chart", async () => {
  await page.getByRole("tab", { name: "Monitor" }).click();
  const chart = page.locator("figure.chart[aria-label=Invocations]");
  await chart.waitFor();
  // The tab reads once (then each minute): refresh until the invocations are counted.
  for (let i = 0; ; i++) {
    const counted = await page
      .waitForFunction(() => {
        const f = document.querySelector("figure.chart[aria-label=Invocations]");
        const m = /Invocations=(\d+)/.exec(f?.getAttribute("data-series") ?? "");
        return m && Number(m[1]) >= 2;
      }, null, { timeout: 3000 })
      .then(() => true, () => false);
    if (counted) break;
    if (i === 10) throw new Error("the Invocations chart never counted 2 invocations");
    await page.getByRole("button", { name: "Refresh" }).click();
  }
  await page.locator("figure.chart canvas").first().waitFor();
  await shot("monitor");
  await audit("monitor");
  return { series: await chart.getAttribute("data-series") };
});

await step("read the logs", async () => {
  await page.getByRole("tab", { name: "Logs" }).click();
  await page.locator(".logline", { hasText: "console edit ran for ada" }).first().waitFor();
  await page.locator("table[aria-label='Recent invocations']").waitFor();
  await shot("logs");
  await audit("logs");
  return { lines: await page.locator(".logline").count() };
});

await step("the functions list shows the function with its numbers", async () => {
  await page.getByRole("link", { name: "Functions" }).first().click();
  const row = page.locator("tr", { hasText: cfg.fn });
  await row.waitFor();
  await page.waitForFunction((fn) => {
    const tr = [...document.querySelectorAll("tbody tr")].find((r) => r.textContent.includes(fn));
    return tr && !tr.textContent.includes("–");
  }, cfg.fn);
  await page.getByLabel("Search functions").fill("zzz-no-such");
  await page.getByText("No function matches").waitFor();
  await page.getByLabel("Search functions").fill(cfg.fn);
  await shot("functions");
  await audit("functions");
  return { row: await row.innerText() };
});

await step("dark theme", async () => {
  await page.getByRole("button", { name: /Switch to dark theme/ }).click();
  await page.goto(`${cfg.base}/#/functions/${cfg.fn}/code`);
  await page.locator(".cm-content").first().waitFor();
  const code = await page.locator(".cm-content").first().innerText();
  await shot("code-dark");
  await audit("code (dark)");
  await page.getByRole("tab", { name: "Test" }).click();
  await page.getByRole("button", { name: "Test", exact: true }).click();
  await page.getByText("Execution succeeded").waitFor();
  await audit("test result (dark)");
  await page.getByRole("tab", { name: "Monitor" }).click();
  await page.locator("figure.chart canvas").first().waitFor();
  await audit("monitor (dark)");
  // What the editor shows after coming back is what was deployed, not a discarded edit.
  return { theme: await page.evaluate(() => document.documentElement.dataset.theme), staleEdit: code.includes("a second edit"), code };
});

await step("keyboard only: focus is visible and Enter follows a link", async () => {
  await page.goto(`${cfg.base}/#/functions`);
  await page.locator("table.list").waitFor();
  await page.locator("body").click({ position: { x: 5, y: 200 } });
  const visited = [];
  for (let i = 0; i < 40; i++) {
    await page.keyboard.press("Tab");
    const f = await page.evaluate(() => {
      const e = document.activeElement;
      const st = getComputedStyle(e);
      return { text: (e.textContent || e.getAttribute("aria-label") || "").trim().slice(0, 40), outline: st.outlineStyle, width: st.outlineWidth };
    });
    visited.push(f);
    if (f.text === "Create function") break;
  }
  const last = visited[visited.length - 1];
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "Create function" }).waitFor();
  return { reached: last.text, outline: last.outline, width: last.width, tabs: visited.length };
});

await step("a narrow screen", async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${cfg.base}/#/functions/${cfg.fn}/code`);
  await page.locator(".cm-content").first().waitFor();
  await shot("code-narrow");
  await audit("code (narrow)");
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  await page.goto(`${cfg.base}/#/functions/${cfg.fn}/triggers`);
  await page.locator(".diagram").waitFor();
  await shot("triggers-narrow");
  await audit("triggers (narrow)");
  return { overflow, triggersOverflow: await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth) };
});

await finish();

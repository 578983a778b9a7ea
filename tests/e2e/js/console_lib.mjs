// What the console's browser scripts share: a headless Chromium page, screenshots, and steps
// that make up a JSON report (the first failing step ends the run with its screenshot).
import { chromium } from "playwright-core";
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";

// axe-core, the accessibility rules engine, run inside the page (through the DevTools
// protocol, which the console's Content-Security-Policy does not restrict).
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

export async function open(cfg) {
  mkdirSync(cfg.shots, { recursive: true });
  const report = { steps: [], consoleErrors: [], serverErrors: [], refused: [], accessibility: {} };
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  // A refused API call shows in the console as "Failed to load resource"; those are told
  // apart by their responses below (4xx are expected in places: a used link, a wrong key,
  // GetPolicy of a function without one), every other console error is a bug.
  page.on("console", (m) => m.type() === "error" && !m.text().startsWith("Failed to load resource") && report.consoleErrors.push(m.text()));
  page.on("pageerror", (e) => report.consoleErrors.push(`pageerror: ${e.message}`));
  page.on("response", (r) => {
    if (r.status() >= 500) report.serverErrors.push(`${r.status()} ${r.request().method()} ${r.url()}`);
    else if (r.status() >= 400) report.refused.push(`${r.status()} ${r.request().method()} ${new URL(r.url()).pathname} ${r.request().headers()["x-amz-target"] ?? ""}`);
  });
  // Dialogs are accepted: a prompt with the next queued answer (`answer(...)`), else its default.
  const answers = [];
  page.on("dialog", (d) => d.accept(d.type() === "prompt" ? (answers.length ? answers.shift() : d.defaultValue()) : undefined));
  const answer = (...values) => answers.push(...values);

  let n = 0;
  const shot = async (name) => {
    n += 1;
    const path = `${cfg.shots}/${String(n).padStart(2, "0")}-${name}.png`;
    await page.screenshot({ path, fullPage: true });
    return path;
  };
  const finish = async (code = 0) => {
    console.log(JSON.stringify(report));
    await browser.close();
    process.exit(code);
  };
  const step = async (name, f) => {
    const started = Date.now();
    try {
      const seen = await f();
      report.steps.push({ name, ms: Date.now() - started, seen });
    } catch (e) {
      report.failed = { step: name, error: String(e?.stack ?? e) };
      try {
        report.failed.screenshot = await shot(`failed-${name.replace(/\W+/g, "-")}`);
      } catch {}
      await finish(1);
    }
  };
  // WCAG 2.1 A and AA rules on the page as it is now; each violation with the elements it
  // found (the first three), kept in the report under the page's name.
  const audit = async (name) => {
    await page.evaluate(AXE);
    const found = await page.evaluate(async () => {
      const r = await window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } });
      return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ") + " :: " + n.failureSummary) }));
    });
    report.accessibility[name] = found;
    return found;
  };
  return { page, step, shot, finish, report, audit, answer };
}

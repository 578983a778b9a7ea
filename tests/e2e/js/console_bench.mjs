// How the console's functions list holds up with many functions (README, "Web console"):
// makes N functions through the Lambda API, then in headless Chromium measures the list's
// first full render, the last hour's metrics arriving, a search keystroke and a sort.
//
//   node console_bench.mjs '{"base":"http://127.0.0.1:9001","accessKeyId":…,"secretAccessKey":…,
//                            "role":"arn:aws:iam::…:role/…","n":300,"runtime":"python3.11","zip":"/path/fn.zip"}'
import { LambdaClient, CreateFunctionCommand, ListFunctionsCommand } from "@aws-sdk/client-lambda";
import { readFileSync } from "node:fs";
import { open } from "./console_lib.mjs";

const cfg = JSON.parse(process.argv[2]);
const credentials = { accessKeyId: cfg.accessKeyId, secretAccessKey: cfg.secretAccessKey };
const lambda = new LambdaClient({ region: "us-east-1", endpoint: cfg.base, credentials });
const zip = readFileSync(cfg.zip);

let have = 0;
let marker;
do {
  const page = await lambda.send(new ListFunctionsCommand({ Marker: marker }));
  have += page.Functions.length;
  marker = page.NextMarker;
} while (marker);
const names = Array.from({ length: Math.max(0, cfg.n - have) }, (_, i) => `bench-${String(have + i).padStart(4, "0")}`);
for (let i = 0; i < names.length; i += 8) {
  await Promise.all(
    names.slice(i, i + 8).map((FunctionName) =>
      lambda.send(new CreateFunctionCommand({ FunctionName, Runtime: cfg.runtime ?? "python3.11", Handler: "app.handler", Role: cfg.role, Code: { ZipFile: zip } })),
    ),
  );
}

const { page, step, finish } = await open({ shots: cfg.shots ?? "/tmp/console-bench" });
const ms = async (f) => {
  const t = Date.now();
  await f();
  return Date.now() - t;
};
await step("list", async () => {
  await page.goto(`${cfg.base}/#/login`);
  await page.getByLabel("Access key ID").fill(cfg.accessKeyId);
  await page.getByLabel("Secret access key").fill(cfg.secretAccessKey);
  const out = {};
  out.signInToRows = await ms(async () => {
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForFunction((n) => document.querySelectorAll("table.list tbody tr").length >= n, cfg.n, { timeout: 120_000 });
  });
  out.rows = await page.locator("table.list tbody tr").count();
  out.metricsLoaded = await ms(() => page.locator("table.list[data-stats=loaded]").waitFor({ timeout: 120_000 }));
  out.reloadToRows = await ms(async () => {
    await page.reload();
    await page.waitForFunction((n) => document.querySelectorAll("table.list tbody tr").length >= n, cfg.n, { timeout: 120_000 });
  });
  out.searchKeystroke = await ms(async () => {
    await page.getByLabel("Search functions").fill("bench-000");
    await page.waitForFunction(() => document.querySelectorAll("table.list tbody tr").length <= 10);
  });
  await page.getByLabel("Search functions").fill("");
  await page.waitForFunction((n) => document.querySelectorAll("table.list tbody tr").length >= n, cfg.n);
  out.sortByName = await ms(async () => {
    await page.getByRole("button", { name: /^Name/ }).click();
    await page.waitForFunction(() => document.querySelector("th[aria-sort=descending]"));
  });
  out.heapMB = Math.round((await page.evaluate(() => performance.memory?.usedJSHeapSize ?? 0)) / 1e6);
  return out;
});
await finish();

// Browser test of the timeline page (GET /), in headless Chromium from apt driven by
// playwright-core. It migrates and seeds a throwaway SQLite database, serves it on a free
// localhost port, and checks what a reader does: filter, open an event, read its claims and
// sources, follow the thread, share the URL, read it on a phone. It also loads the TimelineJS
// export in the real Knight Lab library (timelinejs.mjs).
//
// Screenshots go to var/artifacts/browser/ (git-ignored). Exits non-zero on any failure.
// Environment: CHROMIUM (default /usr/bin/chromium), VENV (default <repo>/.venv).

import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

import { checkTimelineJS } from "./timelinejs.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const VENV = process.env.VENV || path.join(ROOT, ".venv");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const ARTIFACTS = path.join(ROOT, "var", "artifacts", "browser");
const SHOOT_DOWN = "2025-04-01-algeria-shoots-down-malian-drone";

const results = [];
let fatal = null;

async function check(name, body) {
  try {
    await body();
    results.push([name, null]);
    console.log(`ok   ${name}`);
  } catch (error) {
    results.push([name, error]);
    console.log(`FAIL ${name}\n     ${error.message.split("\n").join("\n     ")}`);
    throw error;
  }
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function run(command, args, env) {
  const result = spawnSync(command, args, { cwd: ROOT, env, encoding: "utf8" });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(" ")} failed:\n${result.stdout}\n${result.stderr}`);
  }
}

async function waitUntilReady(base, server, seconds = 30) {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    if (server.exitCode !== null) throw new Error(`the server exited with ${server.exitCode}`);
    try {
      const response = await fetch(`${base}/readyz`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`the server did not become ready within ${seconds}s`);
}

async function main() {
  const tmp = mkdtempSync(path.join(os.tmpdir(), "dtl-browser-"));
  const env = {
    ...process.env,
    DATABASE_URL: `sqlite:///${path.join(tmp, "timeline.db")}`,
    PYTHONUNBUFFERED: "1",
  };
  mkdirSync(ARTIFACTS, { recursive: true });
  let server = null;
  let browser = null;
  let serverLog = "";
  try {
    run(path.join(VENV, "bin", "alembic"), ["upgrade", "head"], env);
    run(path.join(VENV, "bin", "python"), ["-m", "app.seed"], env);
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    server = spawn(
      path.join(VENV, "bin", "uvicorn"),
      ["app.main:app", "--host", "127.0.0.1", "--port", String(port), "--log-level", "warning"],
      { cwd: ROOT, env, detached: true, stdio: ["ignore", "pipe", "pipe"] },
    );
    server.stdout.on("data", (chunk) => { serverLog += chunk; });
    server.stderr.on("data", (chunk) => { serverLog += chunk; });
    await waitUntilReady(base, server);

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
      ],
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    const page = await context.newPage();
    const problems = [];
    page.on("request", (request) => {
      const url = request.url();
      if (!url.startsWith(base) && !url.startsWith("data:")) problems.push(`request outside the API: ${url}`);
    });
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console error: ${message.text()}`);
    });
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));

    await check("the page loads and draws the Mali-Algeria strip", async () => {
      const response = await page.goto(`${base}/`);
      assert(response.ok(), `GET / answered ${response.status()}`);
      await page.waitForSelector("body[data-ready='true']", { timeout: 15000 });
      const heading = await page.textContent("#strip-heading");
      assert(heading.includes("Mali") && heading.includes("Algeria"), `strip heading: ${heading}`);
      const rows = await page.locator("#strip .strip-row:not(.axis)").count();
      assert(rows === 5, `expected 5 strip rows, found ${rows}`);
      const segments = await page.locator("#strip .segment").count();
      assert(segments >= 10, `expected the strip's periods, found ${segments} segments`);
      const label = await page.locator("#strip .strip-bar").first().getAttribute("aria-label");
      assert(/downgraded/.test(label), `the relations row has no text alternative: ${label}`);
    });

    await check("a filter narrows the timeline and is kept in the URL", async () => {
      await page.selectOption("#f-a", "MLI");
      await page.selectOption("#f-b", "DZA");
      await page.fill("#f-from", "2025-04-01");
      await page.fill("#f-to", "2025-04-30");
      await page.getByRole("button", { name: "Apply filters" }).click();
      await page.waitForFunction(() => /events? match/.test(document.getElementById("status").textContent));
      const url = new URL(page.url());
      for (const [key, value] of [["a", "MLI"], ["b", "DZA"], ["from", "2025-04-01"], ["to", "2025-04-30"]]) {
        assert(url.searchParams.get(key) === value, `URL lacks ${key}=${value}: ${page.url()}`);
      }
      const ids = await page.locator("button.event").evaluateAll((buttons) => buttons.map((b) => b.dataset.event));
      assert(ids.length >= 10, `expected the April 2025 crisis, found ${ids.length} events`);
      assert(ids.every((id) => id.startsWith("2025-04")), `an event outside April 2025: ${ids}`);
      assert(ids.includes(SHOOT_DOWN), "the shoot-down is missing");
    });

    await check("an event opens from the keyboard, with claims side by side and sources", async () => {
      await page.locator(`button.event[data-event='${SHOOT_DOWN}']`).focus();
      await page.keyboard.press("Enter");
      await page.waitForSelector(`.event-detail[data-event='${SHOOT_DOWN}']`);
      assert(new URL(page.url()).searchParams.get("event") === SHOOT_DOWN, `URL lacks the event: ${page.url()}`);
      const focused = await page.evaluate(() => document.activeElement.id);
      assert(focused === "detail-heading", `focus did not move to the details (${focused})`);
      const claims = page.locator(".event-detail .claim");
      assert((await claims.count()) >= 2, "fewer than two claims shown");
      const row = page.locator(".event-detail .claim-row").first();
      const boxes = await row.locator(".claim").evaluateAll((cards) => cards.map((c) => c.getBoundingClientRect().toJSON()));
      assert(boxes.length >= 2 && boxes[0].top === boxes[1].top && boxes[0].left < boxes[1].left,
        "the claims of one topic are not side by side");
      const claimants = await page.locator(".event-detail .claimant").allTextContents();
      assert(claimants.includes("Algeria") && claimants.includes("Mali"), `claimants: ${claimants}`);
      const sources = page.locator("section.sources ul.sources a");
      assert((await sources.count()) >= 1, "no sources shown");
      const hrefs = await sources.evaluateAll((links) => links.map((a) => a.href));
      assert(hrefs.every((href) => href.startsWith("http")), `a source is not a link: ${hrefs}`);
    });

    await check("the event's thread covers the April 2025 crisis", async () => {
      const thread = await page.locator(".thread li.thread-item").allTextContents();
      const text = thread.join("\n");
      for (const words of ["Algeria recalls", "airspace", "Security Council", "summons"]) {
        assert(text.toLowerCase().includes(words.toLowerCase()), `the thread lacks "${words}"`);
      }
      await page.screenshot({ path: path.join(ARTIFACTS, "event-desktop.png") });
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: path.join(ARTIFACTS, "timeline-desktop.png") });
    });

    await check("the shared URL restores the filters and the open event", async () => {
      const shared = page.url();
      const other = await context.newPage();
      await other.goto(shared);
      await other.waitForSelector(`.event-detail[data-event='${SHOOT_DOWN}']`);
      assert((await other.inputValue("#f-a")) === "MLI" && (await other.inputValue("#f-from")) === "2025-04-01",
        "the form does not show the shared filters");
      await other.close();
    });

    await check("the page is readable on a phone", async () => {
      const width = 390;
      const phone = await browser.newContext({ viewport: { width, height: 844 }, isMobile: true, hasTouch: true });
      const small = await phone.newPage();
      small.on("pageerror", (error) => problems.push(`phone page error: ${error.message}`));
      await small.goto(page.url());
      await small.waitForSelector(`.event-detail[data-event='${SHOOT_DOWN}']`);
      // On a phone a too-wide element widens the layout viewport itself, so compare the page's
      // width with the screen's, not with innerWidth.
      const layout = await small.evaluate(() => document.documentElement.scrollWidth);
      assert(layout <= width, `the page is ${layout}px wide on a ${width}px phone`);
      await small.screenshot({ path: path.join(ARTIFACTS, "event-phone.png") });
      await small.evaluate(() => window.scrollTo(0, 0));
      await small.screenshot({ path: path.join(ARTIFACTS, "timeline-phone.png") });
      await phone.close();
    });

    await check("the TimelineJS export renders in the real TimelineJS library", async () => {
      await checkTimelineJS({ browser, base, artifacts: ARTIFACTS, assert });
    });

    await check("unknown paths still answer problem+json, and nothing left the API", async () => {
      const response = await fetch(`${base}/no-such-page`);
      assert(response.status === 404, `GET /no-such-page answered ${response.status}`);
      assert(response.headers.get("content-type").startsWith("application/problem+json"),
        `404 content type: ${response.headers.get("content-type")}`);
      assert(problems.length === 0, problems.join("\n"));
    });
  } finally {
    if (browser) await browser.close();
    if (server && server.exitCode === null) {
      process.kill(-server.pid, "SIGTERM");
      await new Promise((resolve) => server.once("exit", resolve));
    }
    rmSync(tmp, { recursive: true, force: true });
    if (results.some(([, error]) => error) && serverLog) console.log(`server output:\n${serverLog}`);
  }
}

main()
  .catch((error) => {
    if (!results.some(([, e]) => e === error)) {
      fatal = error;
      console.log(`FAIL ${error.stack || error}`);
    }
  })
  .finally(() => {
    const failed = results.filter(([, error]) => error).length + (fatal ? 1 : 0);
    const passed = results.length - results.filter(([, error]) => error).length;
    console.log(`browser: ${passed} passed, ${failed} failed`);
    console.log(`screenshots: ${ARTIFACTS}`);
    process.exitCode = failed ? 1 : 0;
  });

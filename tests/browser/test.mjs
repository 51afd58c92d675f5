// Browser test of the timeline page (GET /), in headless Chromium from apt driven by
// playwright-core. It migrates and seeds a throwaway SQLite database, serves it on a free
// localhost port, and checks what a reader does: filter, open an event, read its claims and
// sources, follow the thread, share the URL, read it on a phone. It also loads the TimelineJS
// export in the real Knight Lab library (timelinejs.mjs).
//
// Screenshots go to var/artifacts/browser/ (git-ignored). Exits non-zero on any failure.
// Environment: CHROMIUM (default /usr/bin/chromium), VENV (default <repo>/.venv).

import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

import { checkAxe, checkDrawnTimeline, checkEmbed, measureFrames } from "./drawn.mjs";
import { checkLive } from "./live.mjs";
import { checkTimelineJS } from "./timelinejs.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const VENV = process.env.VENV || path.join(ROOT, ".venv");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const ARTIFACTS = path.join(ROOT, "var", "artifacts", "browser");
const SHOOT_DOWN = "2025-04-01-algeria-shoots-down-malian-drone";
// Parameters of GET /v1/timeline the every-filter check may leave out: the page's paging and
// formats, which it sets itself.
const TIMELINE_ONLY = { limit: 1, cursor: 1, count: 1, format: 1, group_by: 1 };

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

// The ids of every event the API returns for a query, paged to the end.
async function apiIds(base, query) {
  const ids = [];
  let url = `${base}/v1/timeline?${query}&limit=500`;
  while (url) {
    const response = await fetch(url);
    assert(response.ok, `GET ${url} answered ${response.status}`);
    const body = await response.json();
    ids.push(...body.items.map((item) => item.id));
    url = body.links.next;
  }
  return ids;
}

// The page has started (or says why it could not).
async function ready(tab) {
  await tab
    .waitForFunction(() => document.body.dataset.ready === "true" || /could not/.test(document.getElementById("status").textContent), null, { timeout: 15000 })
    .catch(() => {});
  const status = await tab.textContent("#status");
  assert(await tab.evaluate(() => document.body.dataset.ready === "true"), `the page did not start within 15 s; status: "${status}"`);
}

// The form waits behind "Edit the filters" (the drawn timeline takes the first screen).
async function openForm(tab) {
  if (!(await tab.locator("#edit-filters").evaluate((details) => details.open))) await tab.locator("#edit-filters summary").click();
}

// Every event the page lists, after pressing "more" as a reader would until no page is left.
async function shownIds(page) {
  await page.waitForFunction(() => /match(es)?\.|No events shown|could not be loaded/.test(document.getElementById("status").textContent));
  const more = page.locator("#more");
  while (await more.isVisible()) {
    const before = await page.locator("button.event").count();
    await more.click();
    await page.waitForFunction((n) => document.querySelectorAll("button.event").length > n || document.getElementById("more").hidden, before);
  }
  return page.locator("button.event").evaluateAll((buttons) => buttons.map((b) => b.dataset.event));
}

function sameIds(shown, expected, what) {
  assert(shown.length === expected.length && shown.every((id, i) => id === expected[i]),
    `${what}: the page shows ${shown.length} events, the API ${expected.length}\n  page: ${shown}\n  API:  ${expected}`);
}

// A fresh tab that records every request and console error; `allow` lists console errors
// the check expects (a 422 the page shows, say).
async function recorded(context, base) {
  const tab = await context.newPage();
  const log = { requests: [], errors: [] };
  tab.on("request", (request) => log.requests.push(request.url()));
  tab.on("console", (message) => { if (message.type() === "error") log.errors.push(message.text()); });
  tab.on("pageerror", (error) => log.errors.push(`page error: ${error.message}`));
  log.outside = () => log.requests.filter((url) => !url.startsWith(`${base}/`) && !url.startsWith("data:") && !url.startsWith(`blob:${base}/`));
  return { tab, log };
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
    // Every page and embed holds a live stream while it is open, and the checks keep several
    // tabs open from one address: more than the default allows one client.
    STREAM_MAX_PER_CLIENT: "64",
  };
  mkdirSync(ARTIFACTS, { recursive: true });
  let server = null;
  let browser = null;
  let serverLog = "";
  try {
    run(path.join(VENV, "bin", "alembic"), ["upgrade", "head"], env);
    run(path.join(VENV, "bin", "python"), ["-m", "app.seed"], env);
    // An editor key, for the live-update check's writes while a page is open.
    const minted = spawnSync(path.join(VENV, "bin", "python"), ["-m", "app.keys", "create", "--name", "browser-editor", "--scope", "editor"], { cwd: ROOT, env, encoding: "utf8" });
    if (minted.status !== 0) throw new Error(`python -m app.keys create failed:\n${minted.stderr}`);
    const token = minted.stdout.trim();
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

    await check("a page opened again still runs (its 304 keeps the page's policy)", async () => {
      const first = await recorded(context, base);
      await first.tab.goto(`${base}/?state=NER`);
      await ready(first.tab);
      await first.tab.close();
      // The page is `no-cache`: opening it again revalidates it, and gets a 304.
      const { tab, log } = await recorded(context, base);
      const conditional = [];
      tab.on("request", async (request) => {
        if (new URL(request.url()).pathname === "/") conditional.push("if-none-match" in (await request.allHeaders()));
      });
      await tab.goto(`${base}/?state=NER`);
      await ready(tab);
      assert(conditional.includes(true), `the page was not revalidated: ${conditional}`);
      sameIds(await shownIds(tab), await apiIds(base, "state=NER"), "after a 304");
      assert([...first.log.errors, ...log.errors].length === 0, [...first.log.errors, ...log.errors].join("\n"));
      await tab.close();
    });

    await check("the issue's address applies actor, target and month dates, and shows them", async () => {
      const query = "actor=MLI&target=DZA&from=2025-04&to=2025-04";
      const { tab, log } = await recorded(context, base);
      await tab.goto(`${base}/?${query}`);
      await ready(tab);
      sameIds(await shownIds(tab), await apiIds(base, query), query);
      const status = await tab.textContent("#status");
      assert(status === "7 events match.", `status: ${status}`);
      const chips = await tab.locator("#active-filters li.chip").allTextContents();
      for (const words of ["From: 2025-04", "To: 2025-04", "Initiator: Mali (MLI)", "Target: Algeria (DZA)"]) {
        assert(chips.some((chip) => chip.includes(words)), `no chip "${words}": ${chips}`);
      }
      assert((await tab.inputValue("#f-from")) === "2025-04" && (await tab.inputValue("#f-to")) === "2025-04",
        "the date fields do not show the month");
      assert(new URL(tab.url()).search === `?${query}`, `the address changed: ${tab.url()}`);
      assert(log.errors.length === 0, log.errors.join("\n"));
      await tab.close();
    });

    await check("the page knows every filter of GET /v1/timeline, and sends each one", async () => {
      const openapi = await (await fetch(`${base}/openapi.json`)).json();
      const parameters = openapi.paths["/v1/timeline"].get.parameters;
      const api = parameters.map((p) => p.name).sort();
      const known = await page.evaluate(() => [...TimelineFilters.names, ...Object.keys(TimelineFilters.API_ONLY)].sort());
      assert(JSON.stringify(api) === JSON.stringify(known),
        `GET /v1/timeline takes ${api}, the page knows ${known}: add the new filter to filters.js`);
      const kind = parameters.find((p) => p.name === "kind").schema;
      const kinds = (kind.items || kind.anyOf.find((s) => s.items).items);
      const enumValues = (kinds.enum || openapi.components.schemas[kinds.$ref.split("/").pop()].enum).slice().sort();
      const offered = await page.locator("#f-kind option").evaluateAll((os) => os.map((o) => o.value).filter(Boolean).sort());
      assert(JSON.stringify(enumValues) === JSON.stringify(offered), `kinds: API ${enumValues}, page ${offered}`);

      // Every filter at once, each with a value the API accepts: the page keeps the address
      // as it is, shows one chip per value and asks the API for exactly these filters.
      const every = [
        ["q", "drone"], ["from", "2024"], ["to", "2025-04-30"], ["state", "DZA"], ["state", "MLI"],
        ["actor", "MLI"], ["target", "DZA"], ["between", "MLI,DZA"], ["organisation", "AES"],
        ["include_members", "true"], ["kind", "diplomatic_action"], ["category", "accusation"],
        ["tag", "drone"], ["order", "relevance"], ["as_known_at", "2100-01-01T00:00:00Z"],
      ];
      const names = new Set(every.map(([name]) => name));
      assert(known.filter((name) => !names.has(name)).every((name) => name in TIMELINE_ONLY),
        `the check leaves out a filter: ${known.filter((name) => !names.has(name) && !(name in TIMELINE_ONLY))}`);
      const address = every.map(([k, v]) => `${k}=${v}`).join("&");
      const { tab, log } = await recorded(context, base);
      const asked = [];
      tab.on("request", (request) => {
        const url = new URL(request.url());
        // The list's first page (the drawing reads the NDJSON export of the same filters).
        if (url.pathname === "/v1/timeline" && !url.searchParams.has("cursor") && !url.searchParams.has("format")) asked.push(url.searchParams);
      });
      await tab.goto(`${base}/?${address}`);
      await ready(tab);
      const shown = await shownIds(tab);
      sameIds(shown, await apiIds(base, address), "every filter");
      assert(new URL(tab.url()).search === `?${address}`, `the address changed: ${tab.url()}`);
      const chips = await tab.locator("#active-filters li.chip").evaluateAll((cs) => cs.map((c) => [c.dataset.filter, c.dataset.value]));
      assert(JSON.stringify(chips) === JSON.stringify(every), `chips ${JSON.stringify(chips)}`);
      assert(asked.length === 1, `${asked.length} first-page requests`);
      for (const [name, value] of every) {
        assert(asked[0].getAll(name).includes(value), `the API was not asked for ${name}=${value}: ${asked[0]}`);
      }
      assert(await tab.isChecked("#f-include_members"), "include_members is not checked");
      assert((await tab.inputValue("#f-order")) === "relevance", "the order is not shown");
      assert(log.errors.length === 0, log.errors.join("\n"));
      await tab.close();
    });

    await check("a filter is removed with its chip, and added and edited with the form", async () => {
      const { tab, log } = await recorded(context, base);
      await tab.goto(`${base}/?actor=MLI&target=DZA&from=2025-04&to=2025-04`);
      await ready(tab);
      await tab.getByRole("button", { name: "Remove the filter Target: Algeria (DZA)" }).click();
      await tab.waitForFunction(() => !new URL(location.href).searchParams.has("target"));
      sameIds(await shownIds(tab), await apiIds(base, "actor=MLI&from=2025-04&to=2025-04"), "without target");
      await openForm(tab);
      await tab.selectOption("#f-state", "NER");
      await tab.fill("#f-from", "2023");
      await tab.getByRole("button", { name: "Apply filters" }).click();
      await tab.waitForFunction(() => new URL(location.href).searchParams.get("state") === "NER");
      const query = "actor=MLI&state=NER&from=2023&to=2025-04";
      const url = new URL(tab.url());
      for (const [key, value] of new URLSearchParams(query)) {
        assert(url.searchParams.get(key) === value, `URL lacks ${key}=${value}: ${tab.url()}`);
      }
      sameIds(await shownIds(tab), await apiIds(base, query), "after the form");
      await tab.goBack();
      await tab.waitForFunction(() => !new URL(location.href).searchParams.has("state"));
      assert((await tab.inputValue("#f-from")) === "2025-04", "going back does not restore the form");
      assert(log.errors.length === 0, log.errors.join("\n"));
      await tab.close();
    });

    await check("an unknown parameter is shown as an error, never ignored", async () => {
      const { tab, log } = await recorded(context, base);
      await tab.goto(`${base}/?state=MLI&actr=DZA`);
      await ready(tab);
      const alert = await tab.textContent("#filter-problems [role='alert']");
      assert(alert.includes("actr=DZA"), `no error names actr: ${alert}`);
      assert((await tab.locator("button.event").count()) === 0, "events shown as if actr applied");
      assert(/No events shown/.test(await tab.textContent("#status")), "the status does not say why");
      // Applying the form keeps it: only the reader removes it.
      await openForm(tab);
      await tab.getByRole("button", { name: "Apply filters" }).click();
      assert(new URL(tab.url()).searchParams.get("actr") === "DZA", `actr was dropped: ${tab.url()}`);
      await tab.locator("[data-unknown='actr'] button").click();
      await tab.waitForFunction(() => !new URL(location.href).searchParams.has("actr"));
      sameIds(await shownIds(tab), await apiIds(base, "state=MLI"), "after removing actr");

      // API parameters with no meaning on a page are reported and kept, and the events shown
      // are every match, not `limit` of them.
      await tab.goto(`${base}/?state=NER&limit=3`);
      await ready(tab);
      const notice = await tab.textContent("#filter-problems [data-unused='limit']");
      assert(notice.includes("limit=3"), `limit is not reported: ${notice}`);
      sameIds(await shownIds(tab), await apiIds(base, "state=NER"), "state=NER&limit=3");
      assert(new URL(tab.url()).searchParams.get("limit") === "3", "limit was dropped from the address");

      // The first page's pair (`a`, `b`) is `between` now.
      await tab.goto(`${base}/?a=MLI&b=DZA&from=2025-04-01`);
      await ready(tab);
      assert(new URL(tab.url()).search === "?from=2025-04-01&between=MLI,DZA", `old address: ${tab.url()}`);
      sameIds(await shownIds(tab), await apiIds(base, "between=MLI,DZA&from=2025-04-01"), "the old pair");
      assert(log.errors.length === 0, log.errors.join("\n"));
      await tab.close();
    });

    await check("a value the API refuses is shown with the API's words", async () => {
      const { tab, log } = await recorded(context, base);
      await tab.goto(`${base}/?from=April%202025&state=MLI`);
      await ready(tab);
      await tab.waitForSelector("#filter-problems [role='alert']");
      const alert = await tab.textContent("#filter-problems [role='alert']");
      assert(/from/.test(alert), `the error does not name from: ${alert}`);
      assert(await tab.locator(".chip.invalid[data-filter='from']").count() === 1, "the from chip is not marked");
      assert((await tab.inputValue("#f-from")) === "April 2025", "the form does not show the value");
      // The browser logs the refused requests itself (the list's, the drawing's and the live
      // stream's, which EventSource reports in words of its own); nothing else may fail.
      assert(log.errors.length === 3 && log.errors.every((e) => /422|EventSource/.test(e)), log.errors.join("\n"));
      await tab.close();
    });

    await check("a filter narrows the timeline and is kept in the URL", async () => {
      await openForm(page);
      await page.selectOption("#f-a", "MLI");
      await page.selectOption("#f-b", "DZA");
      await page.fill("#f-from", "2025-04-01");
      await page.fill("#f-to", "2025-04-30");
      await page.getByRole("button", { name: "Apply filters" }).click();
      await page.waitForFunction(() => /events? match/.test(document.getElementById("status").textContent));
      const url = new URL(page.url());
      for (const [key, value] of [["between", "MLI,DZA"], ["from", "2025-04-01"], ["to", "2025-04-30"]]) {
        assert(url.searchParams.get(key) === value, `URL lacks ${key}=${value}: ${page.url()}`);
      }
      const ids = await shownIds(page);
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

    await check("the page and the docs make no request outside this server, and log no error", async () => {
      for (const [path, drawn] of [["/", "body[data-ready='true']"], ["/docs", ".swagger-ui .opblock"], ["/redoc", "[role='menu'] li"]]) {
        const { tab, log } = await recorded(context, base);
        // The page's live stream (GET /v1/changes/stream) stays open for as long as the page
        // does, so the network is never idle there: close it once the page is drawn, then wait
        // for whatever else the page asks for.
        await tab.goto(`${base}${path}`, { waitUntil: path === "/" ? "load" : "networkidle" });
        await tab.waitForSelector(drawn, { state: "attached", timeout: 20000 });
        if (path === "/") await tab.evaluate(() => TimelinePage.stopLive());
        await tab.waitForLoadState("networkidle");
        assert(log.requests.length > 1, `${path}: ${log.requests.length} requests recorded`);
        assert(log.outside().length === 0, `${path} requested ${log.outside().join(", ")}`);
        assert(log.errors.length === 0, `${path}: ${log.errors.join("\n")}`);
        await tab.close();
      }
    });

    await check("unknown paths still answer problem+json, and nothing left the API", async () => {
      const response = await fetch(`${base}/no-such-page`);
      assert(response.status === 404, `GET /no-such-page answered ${response.status}`);
      assert(response.headers.get("content-type").startsWith("application/problem+json"),
        `404 content type: ${response.headers.get("content-type")}`);
      assert(problems.length === 0, problems.join("\n"));
    });

    await checkDrawnTimeline({ browser, base, artifacts: ARTIFACTS, assert, check });
    await checkEmbed({ browser, base, artifacts: ARTIFACTS, assert, check });
    await checkLive({ browser, base, assert, check, token });
    await checkAxe({ browser, base, artifacts: ARTIFACTS, assert, check });

    // Frame times on synthetic data (bench/synth.py), each size on a server of its own.
    const frameTimes = [];
    for (const events of [1000, 10000]) {
      await check(`frame times while zooming and panning ${events} synthetic events (reported)`, async () => {
        const url = `sqlite:///${path.join(tmp, `synth-${events}.db`)}`;
        run(path.join(VENV, "bin", "python"), ["-m", "bench.synth", "--events", String(events), "--database-url", url, "--quiet"], { ...env, DATABASE_URL: url });
        const synthPort = await freePort();
        const synthBase = `http://127.0.0.1:${synthPort}`;
        const synth = spawn(
          path.join(VENV, "bin", "uvicorn"),
          ["app.main:app", "--host", "127.0.0.1", "--port", String(synthPort), "--log-level", "warning"],
          { cwd: ROOT, env: { ...env, DATABASE_URL: url }, detached: true, stdio: "ignore" },
        );
        try {
          await waitUntilReady(synthBase, synth, 60);
          const result = await measureFrames({ browser, base: synthBase, assert });
          frameTimes.push(result);
          console.log(`     ${JSON.stringify(result)}`);
        } finally {
          if (synth.exitCode === null) {
            process.kill(-synth.pid, "SIGTERM");
            await new Promise((resolve) => synth.once("exit", resolve));
          }
        }
      });
    }
    writeFileSync(path.join(ARTIFACTS, "frame-times.json"), `${JSON.stringify({ chromium: browser.version(), frameTimes }, null, 2)}\n`);
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

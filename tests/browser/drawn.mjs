// The drawn timeline (app/static/timeline.js) at `/` and in the embed, in headless Chromium:
// zoom, pan, keyboard, selection and the address; the embed in a cross-origin iframe (a second
// local server plays a newsroom's article, built from our oEmbed answer, once as is and once
// with the sandbox WordPress adds); oEmbed discovery; axe-core; and frame times at 1,000 and
// 10,000 synthetic events (bench/synth.py), written to var/artifacts/browser/frame-times.json.
//
// Frame times are measured and reported, never asserted (no timed assertions): what is asserted
// is that the number of SVG marks drawn is bounded by the screen, not by the number of events.

import { readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(import.meta.url);
const AXE = require.resolve("axe-core/axe.min.js");
const CRISIS = "between=MLI,DZA&from=2025-04&to=2025-04";
const SHOOT_DOWN = "2025-04-01-algeria-shoots-down-malian-drone";
const MONTH_EVENT = "2024-10-algeria-pantsir-deployment-reports";
const DAY = 86400000;

function record(tab, base, also = []) {
  const log = { errors: [], outside: [] };
  const ours = (url) => [base, ...also].some((origin) => url.startsWith(`${origin}/`)) || url.startsWith("data:") || url.startsWith("about:");
  tab.on("request", (request) => { if (!ours(request.url())) log.outside.push(request.url()); });
  tab.on("console", (message) => { if (message.type() === "error") log.errors.push(message.text()); });
  tab.on("pageerror", (error) => log.errors.push(`page error: ${error.message}`));
  tab.on("response", (response) => { if (response.status() >= 400) log.errors.push(`${response.status()} ${response.url()}`); });
  return log;
}

async function drawn(tab) {
  await tab.waitForSelector("body[data-ready='true']", { timeout: 30000 });
  await tab.waitForFunction(() => Number(document.querySelector(".dt-chart")?.dataset.marks || 0) + Number(document.querySelector(".dt-chart")?.dataset.clusters || 0) > 0, null, { timeout: 30000 });
}

const windowOf = (tab) => tab.evaluate(() => chart.scale);
const frameTick = (tab) => tab.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));

export async function checkDrawnTimeline({ browser, base, artifacts, assert, check }) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  const tab = await context.newPage();
  const log = record(tab, base);
  try {
    await check("the drawn timeline shows lanes, the relation band and the April 2025 crisis", async () => {
      await tab.goto(`${base}/?${CRISIS}`);
      await drawn(tab);
      const state = await tab.evaluate(() => ({ lanes: chart.lanes, crises: chart.crises, size: chart.size, band: document.querySelector(".dt-band").getAttribute("aria-label") }));
      const api = await (await fetch(`${base}/v1/timeline?${CRISIS}&count=true&limit=1`)).json();
      assert(state.size === api.total, `${state.size} events drawn, the API has ${api.total}`);
      assert(state.lanes.some((lane) => lane.label === "Mali") && state.lanes.some((lane) => lane.label === "Algeria"), `lanes: ${JSON.stringify(state.lanes)}`);
      assert(state.crises.some((c) => c.tag === "april-2025-crisis"), `crises: ${JSON.stringify(state.crises)}`);
      assert(/Diplomatic relations of Mali and Algeria: .*downgraded/.test(state.band), `band: ${state.band}`);
      assert((await tab.locator(".dt-crisis").count()) >= 1, "no crisis shaded");
      assert((await tab.locator(".dt-period").count()) >= 1, "no relation period drawn");
      await tab.locator("#drawn-heading").scrollIntoViewIfNeeded();
      await tab.screenshot({ path: path.join(artifacts, "drawn-crisis.png") });
    });

    await check("the wheel zooms around the pointer and a drag pans; the address keeps the window", async () => {
      await tab.goto(`${base}/?between=MLI,DZA`);
      await drawn(tab);
      const before = await windowOf(tab);
      const box = await tab.locator(".dt-chart").boundingBox();
      await tab.mouse.move(box.x + box.width * 0.7, box.y + 100);
      for (let i = 0; i < 5; i += 1) {
        await tab.mouse.wheel(0, -240);
        await frameTick(tab);
      }
      const zoomed = await windowOf(tab);
      assert(zoomed.end - zoomed.start < (before.end - before.start) / 4, `the wheel did not zoom: ${JSON.stringify([before, zoomed])}`);
      await tab.waitForFunction(() => new URL(location.href).searchParams.has("zoom"));
      await tab.mouse.move(box.x + box.width * 0.6, box.y + 120);
      await tab.mouse.down();
      for (let i = 1; i <= 10; i += 1) await tab.mouse.move(box.x + box.width * 0.6 - i * 30, box.y + 120);
      await tab.mouse.up();
      await frameTick(tab);
      const panned = await windowOf(tab);
      assert(panned.start > zoomed.start && Math.abs((panned.end - panned.start) - (zoomed.end - zoomed.start)) < 1000,
        `dragging left did not move later: ${JSON.stringify([zoomed, panned])}`);
      const firstZoom = new URL(tab.url()).searchParams.get("zoom");
      await tab.waitForFunction((previous) => new URL(location.href).searchParams.get("zoom") !== previous, firstZoom);
      const address = tab.url();
      const zoom = new URL(address).searchParams.get("zoom");
      // The address reproduces the window.
      const other = await context.newPage();
      await other.goto(address);
      await drawn(other);
      const shown = await other.evaluate(() => `${chart.element.dataset.start}..${chart.element.dataset.end}`);
      assert(shown === zoom, `the shared address ${zoom} shows ${shown}`);
      await other.close();
    });

    await check("zooming in splits clusters down to single days; a click on a cluster zooms into it", async () => {
      await tab.goto(`${base}/`);
      await drawn(tab);
      const whole = await tab.evaluate(() => ({ ...chart.rendered, ...chart.scale }));
      assert(whole.clusters > 0, "no cluster at the whole period");
      const cluster = tab.locator(".dt-cluster:not(.dt-span)").first();
      const count = Number(await cluster.getAttribute("data-count"));
      await cluster.click();
      await frameTick(tab);
      const inside = await tab.evaluate(() => ({ ...chart.rendered, ...chart.scale }));
      assert(inside.end - inside.start < (whole.end - whole.start) / 2 && inside.marks > 0,
        `the cluster of ${count} did not open: ${JSON.stringify([whole, inside])}`);
      // Down to one day: the deepest zoom shows a single day across the chart.
      await tab.evaluate(() => chart.setWindow(Date.UTC(2025, 3, 1), Date.UTC(2025, 3, 1, 6)));
      await frameTick(tab);
      const day = await windowOf(tab);
      assert(Math.abs(day.end - day.start - DAY) < 1000, `the deepest zoom is ${(day.end - day.start) / DAY} days`);
      assert(day.start <= Date.UTC(2025, 3, 1) + DAY / 2 && day.end >= Date.UTC(2025, 3, 1, 12), "the day is not in view");
      const shootDown = tab.locator(`.dt-mark[data-ids='${SHOOT_DOWN}']`).first();
      assert((await shootDown.count()) === 1, "the shoot-down is not a single mark on its day");
      // A day event covers its day: the part of the day in the window.
      const width = Number(await shootDown.locator("rect").getAttribute("width"));
      const visible = Math.min(day.end, Date.UTC(2025, 3, 2)) - Math.max(day.start, Date.UTC(2025, 3, 1));
      const expected = (visible / (day.end - day.start)) * day.width;
      assert(Math.abs(width - expected) < 6, `a day event at one-day zoom is ${width}px, its day ${expected.toFixed(0)}px`);
    });

    await check("a month-precision event is drawn as its whole month", async () => {
      await tab.goto(`${base}/?between=MLI,DZA&zoom=2024-08-01..2024-12-31`);
      await drawn(tab);
      const scale = await windowOf(tab);
      const mark = tab.locator(`.dt-mark[data-ids='${MONTH_EVENT}']`).first();
      assert((await mark.count()) === 1, `${MONTH_EVENT} is not drawn alone`);
      const width = Number(await mark.locator("rect").getAttribute("width"));
      const expected = ((Date.UTC(2024, 10, 1) - Date.UTC(2024, 9, 1)) / (scale.end - scale.start)) * scale.width;
      assert(Math.abs(width - expected) < 2, `October 2024 is ${width}px wide, its month ${expected.toFixed(1)}px`);
      assert(/October 2024/.test(await mark.getAttribute("aria-label")), `label: ${await mark.getAttribute("aria-label")}`);
    });

    await check("keyboard only: Tab reaches the chart, arrows move between events, Enter opens one, + − 0 zoom", async () => {
      await tab.goto(`${base}/?${CRISIS}`);
      await drawn(tab);
      // Tab from the last control of the toolbar lands on the chart.
      await tab.locator(".dt-lanes-switch input:checked").focus();
      await tab.keyboard.press("Tab");
      assert(await tab.evaluate(() => document.activeElement.classList.contains("dt-chart")), "Tab did not reach the chart");
      const start = await windowOf(tab);
      await tab.keyboard.press("+");
      await frameTick(tab);
      const zoomed = await windowOf(tab);
      assert(Math.abs((zoomed.end - zoomed.start) * 2 - (start.end - start.start)) < 1000, "+ did not halve the window");
      await tab.keyboard.press("0");
      await frameTick(tab);
      await tab.keyboard.press("Shift+ArrowLeft");
      await frameTick(tab);
      const panned = await windowOf(tab);
      assert(panned.start < start.start, "Shift+ArrowLeft did not move earlier");
      await tab.keyboard.press("0");
      await frameTick(tab);
      await tab.keyboard.press("ArrowRight");
      let focused = await tab.evaluate(() => document.activeElement.getAttribute("aria-label") || "");
      assert(focused.length > 0 && (await tab.evaluate(() => document.activeElement.classList.contains("dt-mark"))), "ArrowRight did not focus a mark");
      // Walk to the shoot-down: Enter zooms into clusters, arrows step between marks.
      let opened = false;
      for (let i = 0; i < 60 && !opened; i += 1) {
        const state = await tab.evaluate(() => ({ ids: document.activeElement.dataset.ids, first: document.activeElement.dataset.first, count: Number(document.activeElement.dataset.count) }));
        if (state.ids === SHOOT_DOWN) {
          await tab.keyboard.press("Enter");
          opened = true;
        } else if (state.count > 1) {
          await tab.keyboard.press("Enter");
          await frameTick(tab);
          await frameTick(tab);
        } else {
          await tab.keyboard.press("ArrowRight");
          await frameTick(tab);
        }
      }
      assert(opened, "the keyboard did not reach the shoot-down");
      await tab.waitForSelector(`.event-detail[data-event='${SHOOT_DOWN}']`);
      assert(new URL(tab.url()).searchParams.get("event") === SHOOT_DOWN, `the address lacks the event: ${tab.url()}`);
      assert(await tab.evaluate(() => document.activeElement.classList.contains("dt-mark")), "focus left the chart on opening");
      assert((await tab.locator(".dt-mark.selected").count()) >= 1, "the opened event is not marked as selected");
      await tab.keyboard.press("ArrowDown");
      const lane = await tab.evaluate(() => document.activeElement.closest(".dt-lane")?.dataset.lane);
      assert(lane, "ArrowDown did not move to another lane's mark");
    });

    await check("a click on a mark opens the detail panel; the list view stays for screen readers", async () => {
      await tab.goto(`${base}/?${CRISIS}&zoom=2025-03-31..2025-04-02`);
      await drawn(tab);
      await tab.locator(`.dt-mark[data-ids='${SHOOT_DOWN}']`).first().click();
      await tab.waitForSelector(`.event-detail[data-event='${SHOOT_DOWN}']`);
      assert((await tab.locator(`button.event[data-event='${SHOOT_DOWN}'][aria-pressed='true']`).count()) === 1, "the list does not show the selection");
      const listed = await tab.locator("button.event").count();
      const drawnCount = await tab.evaluate(() => chart.size);
      assert(listed === drawnCount, `the list has ${listed} events, the drawing ${drawnCount}`);
    });

    await check("the lanes switch to initiator → target pairs, and the address keeps it", async () => {
      await tab.goto(`${base}/?${CRISIS}`);
      await drawn(tab);
      await tab.getByLabel("initiator → target").check();
      await tab.waitForFunction(() => new URL(location.href).searchParams.get("lanes") === "pair");
      const lanes = await tab.evaluate(() => chart.lanes.map((lane) => lane.label));
      assert(lanes.includes("Algeria → Mali") && lanes.includes("Mali → Algeria"), `pair lanes: ${lanes}`);
      await tab.reload();
      await drawn(tab);
      assert((await tab.evaluate(() => chart.laneMode)) === "pair", "a reload lost the lanes");
      assert(await tab.getByLabel("initiator → target").isChecked(), "the switch does not show the lanes");
      await tab.locator(".dt-chart").screenshot({ path: path.join(artifacts, "drawn-pairs.png") });
    });

    await check("a live change inserts, updates and removes one event without a reload", async () => {
      await tab.goto(`${base}/?${CRISIS}`);
      await drawn(tab);
      const doc = await (await fetch(`${base}/v1/events/${SHOOT_DOWN}`)).json();
      const before = await tab.evaluate(() => chart.size);
      const copy = { ...doc, id: "2025-04-02-live-test", title: "A live event" };
      await tab.evaluate((data) => TimelinePage.applyChange({ operation: "created", id: data.id, data }), copy);
      assert((await tab.evaluate(() => chart.size)) === before + 1, "created: not drawn");
      assert((await tab.locator("button.event[data-event='2025-04-02-live-test']").count()) === 1, "created: not listed");
      await tab.evaluate((data) => TimelinePage.applyChange({ operation: "updated", id: data.id, data: { ...data, title: "A live event, renamed" } }), copy);
      assert(/renamed/.test(await tab.locator("button.event[data-event='2025-04-02-live-test']").textContent()), "updated: the list kept the old title");
      await tab.evaluate(() => TimelinePage.applyChange({ operation: "deleted", id: "2025-04-02-live-test", data: null }));
      assert((await tab.evaluate(() => chart.size)) === before, "deleted: still drawn");
      assert((await tab.locator("button.event[data-event='2025-04-02-live-test']").count()) === 0, "deleted: still listed");
      const query = await tab.evaluate(() => TimelinePage.query());
      assert(query === "from=2025-04&to=2025-04&between=MLI,DZA", `the stream query: ${query}`);
    });

    await check("the page in a screenshot, for the docs", async () => {
      await tab.setViewportSize({ width: 1280, height: 760 });
      await tab.goto(`${base}/?between=MLI,DZA`);
      await drawn(tab);
      await tab.locator("#drawn-heading").scrollIntoViewIfNeeded();
      await tab.evaluate(() => document.getElementById("drawn-heading").scrollIntoView());
      await tab.screenshot({ path: path.join(artifacts, "drawn-timeline.png") });
      assert(log.outside.length === 0, `requests elsewhere: ${log.outside}`);
      assert(log.errors.length === 0, log.errors.join("\n"));
    });
  } finally {
    await context.close();
  }
}

// A newsroom's article on another origin, built from our oEmbed answer as a CMS would.
function article(snippets) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>An article</title></head>
<body><h1>An article that embeds a timeline</h1>${snippets.map((s, i) => `<section id="s${i}">${s}</section>`).join("\n")}</body></html>`;
}

function serveArticle(body) {
  const server = http.createServer((request, response) => {
    response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    response.end(body);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

export async function checkEmbed({ browser, base, artifacts, assert, check }) {
  await check("oEmbed discovery: the page's head names the answer for its address, and follows it", async () => {
    const context = await browser.newContext();
    const tab = await context.newPage();
    const log = record(tab, base);
    await tab.goto(`${base}/?${CRISIS}`);
    await tab.waitForSelector("body[data-ready='true']");
    const href = await tab.getAttribute("link[rel='alternate'][type='application/json+oembed']", "href");
    const asked = new URL(href);
    assert(asked.origin === base && asked.pathname === "/oembed", `discovery link: ${href}`);
    assert(asked.searchParams.get("url") === `${base}/?${CRISIS}` && asked.searchParams.get("format") === "json", `discovery link: ${href}`);
    const answer = await tab.evaluate(async (url) => (await fetch(url)).json(), href);
    assert(answer.type === "rich" && answer.version === "1.0" && /<iframe [^>]*src="[^"]*\/embed\?/.test(answer.html), JSON.stringify(answer));
    // A new view names its own answer.
    await tab.getByRole("button", { name: /Remove the filter From/ }).click();
    await tab.waitForFunction(() => !new URL(location.href).searchParams.has("from"));
    const next = new URL(await tab.getAttribute("link[type='application/json+oembed']", "href")).searchParams.get("url");
    assert(next === tab.url(), `after a change the link names ${next}, the page is ${tab.url()}`);
    // "Embed this view" gives the same snippet.
    await tab.locator("#embed summary").click();
    await tab.waitForFunction(() => document.getElementById("embed-code").value.includes("<iframe"));
    const snippet = await tab.inputValue("#embed-code");
    const expected = (await (await fetch(`${base}/oembed?url=${encodeURIComponent(tab.url())}&format=json`)).json()).html;
    assert(snippet === expected, `snippet:\n${snippet}\noEmbed:\n${expected}`);
    await tab.getByRole("button", { name: "Copy the snippet" }).click();
    await tab.waitForFunction(() => document.getElementById("embed-status").textContent.length > 0);
    assert(log.errors.length === 0 && log.outside.length === 0, [...log.errors, ...log.outside].join("\n"));
    await context.close();
  });

  await check("the embed renders in iframes of an article on another origin, with WordPress's sandbox too", async () => {
    const answer = await (await fetch(`${base}/oembed?url=${encodeURIComponent(`${base}/?${CRISIS}`)}&format=json&maxwidth=760`)).json();
    const story = await (await fetch(`${base}/oembed?url=${encodeURIComponent(`${base}/embed?${CRISIS}&view=story`)}&format=json&maxwidth=760`)).json();
    // wp_filter_oembed_result: the iframe of an unlisted provider gets this sandbox.
    const sandboxed = answer.html.replace("<iframe ", '<iframe sandbox="allow-scripts" security="restricted" ');
    const server = await serveArticle(article([answer.html, sandboxed, story.html]));
    const origin = `http://127.0.0.1:${server.address().port}`;
    const context = await browser.newContext({ viewport: { width: 900, height: 2200 } });
    try {
      const tab = await context.newPage();
      const log = record(tab, base, [origin]);
      await tab.goto(`${origin}/`);
      const frames = [0, 1, 2].map((i) => tab.frameLocator(`#s${i} iframe`));
      for (const [i, frame] of frames.entries()) {
        await frame.locator("body[data-ready='true']").waitFor({ state: "attached", timeout: 30000 });
        const title = await frame.locator("h1").textContent();
        assert(title.includes("MLI and DZA"), `frame ${i} title: ${title}`);
        const back = await frame.locator("footer a").getAttribute("href");
        assert(back === `${base}/?${CRISIS}` || back === `/?${CRISIS}`, `frame ${i} links back to ${back}`);
        assert(/CC BY 4\.0/.test(await frame.locator("footer").textContent()), `frame ${i} has no licence`);
        assert(!/could not|Not a filter/.test(await frame.locator("#status").textContent()), `frame ${i}: ${await frame.locator("#status").textContent()}`);
      }
      for (const frame of frames.slice(0, 2)) {
        await frame.locator(".dt-mark").first().waitFor({ timeout: 20000 });
        await frame.locator(`.dt-mark[data-ids='${SHOOT_DOWN}'], .dt-cluster`).first().click();
      }
      await frames[2].locator(".tl-slide").first().waitFor({ state: "attached", timeout: 20000 });
      assert((await frames[2].locator(".tl-timemarker").count()) >= 10, "the story view has no markers");
      await tab.locator("#s0").screenshot({ path: path.join(artifacts, "embed.png") });
      await tab.locator("#s2").screenshot({ path: path.join(artifacts, "embed-story.png") });
      assert(log.outside.length === 0, `requests elsewhere: ${log.outside.join(", ")}`);
      assert(log.errors.length === 0, log.errors.join("\n"));
    } finally {
      await context.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });
}

export async function checkAxe({ browser, base, artifacts, assert, check }) {
  const source = readFileSync(AXE, "utf8");
  // TimelineJS's story view is Knight Lab's markup and colours: its findings are reported in
  // axe.json and printed, not asserted.
  const pages = [
    ["/", `/?${CRISIS}&event=${SHOOT_DOWN}`, true],
    ["/embed", `/embed?${CRISIS}`, true],
    ["/embed?view=story", `/embed?${CRISIS}&view=story`, false],
  ];
  const report = {};
  for (const [name, address, strict] of pages) {
    await check(`axe-core: ${strict ? "no serious or critical violation" : "findings reported"} on ${name}`, async () => {
      // The pages' policy allows only their own scripts: axe is injected around it.
      const context = await browser.newContext({ bypassCSP: true, viewport: { width: 1280, height: 1000 } });
      const tab = await context.newPage();
      await tab.goto(`${base}${address}`);
      await tab.waitForSelector("body[data-ready='true']", { timeout: 30000 });
      if (name === "/") await tab.locator("#edit-filters summary").click();
      await tab.addScriptTag({ content: source });
      const result = await tab.evaluate(() => axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } }));
      const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
      report[name] = result.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length }));
      await context.close();
      if (!strict) {
        console.log(`     ${bad.map((v) => `${v.impact} ${v.id} (${v.nodes.length})`).join(", ") || "none serious or critical"}`);
        return;
      }
      assert(bad.length === 0, bad.map((v) => `${v.impact} ${v.id}: ${v.help}\n  ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join("\n  ")}`).join("\n"));
    });
  }
  writeFileSync(path.join(artifacts, "axe.json"), JSON.stringify({ axe: require("axe-core/package.json").version, report }, null, 2));
}

function stats(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { frames: sorted.length, median: +at(0.5).toFixed(1), p95: +at(0.95).toFixed(1), max: +sorted[sorted.length - 1].toFixed(1) };
}

// Scripted zoom from the whole period to one day (wheel), a pan (drag) and back out, while the
// page records the interval between animation frames and the time of each render.
export async function measureFrames({ browser, base, assert }) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  const tab = await context.newPage();
  try {
    const loading = Date.now();
    await tab.goto(`${base}/`);
    await drawn(tab);
    const loaded = Date.now() - loading;
    const size = await tab.evaluate(() => chart.size);
    const events = (await (await fetch(`${base}/v1/timeline?count=true&limit=1`)).json()).total;
    assert(size === events, `${size} events drawn of ${events}`);
    const box = await tab.locator(".dt-chart").boundingBox();
    await tab.evaluate(() => {
      window.frameLog = [];
      chart.renderTimes.length = 0;
      let last = performance.now();
      const tick = (now) => { window.frameLog.push(now - last); last = now; if (!window.frameStop) requestAnimationFrame(tick); };
      requestAnimationFrame(tick);
    });
    await tab.mouse.move(box.x + box.width * 0.8, box.y + 120);
    let steps = 0;
    let most = 0;
    while (steps < 80) {
      await tab.mouse.wheel(0, -200);
      await frameTick(tab);
      most = Math.max(most, await tab.evaluate(() => chart.rendered.marks + chart.rendered.clusters));
      steps += 1;
      const { start, end } = await tab.evaluate(() => chart.scale);
      if (end - start <= DAY * 1.01) break;
    }
    const day = await tab.evaluate(() => chart.scale);
    assert(day.end - day.start <= DAY * 1.01, `80 wheel steps did not reach one day: ${(day.end - day.start) / DAY} days`);
    await tab.mouse.wheel(0, 2000); // back out to a few months, then drag
    for (let i = 0; i < 8; i += 1) { await tab.mouse.wheel(0, 200); await frameTick(tab); }
    await tab.mouse.down();
    for (let i = 1; i <= 40; i += 1) { await tab.mouse.move(box.x + box.width * 0.8 - i * 15, box.y + 120); await frameTick(tab); }
    await tab.mouse.up();
    for (let i = 0; i < 40; i += 1) {
      await tab.mouse.wheel(0, 300);
      await frameTick(tab);
      most = Math.max(most, await tab.evaluate(() => chart.rendered.marks + chart.rendered.clusters));
    }
    const { frames, renders, lanes } = await tab.evaluate(() => { window.frameStop = true; return { frames: window.frameLog.slice(1), renders: [...chart.renderTimes], lanes: chart.lanes.length }; });
    // Bounded by the screen: each lane holds at most one mark per few pixels of its two rows.
    const bound = lanes * 2 * Math.ceil(box.width / 8);
    assert(most <= bound, `${most} marks drawn at once for ${lanes} lanes (bound ${bound})`);
    return { events, lanes, load_ms: loaded, most_marks: most, frame_interval_ms: stats(frames), render_ms: stats(renders), zoom_steps_to_one_day: steps };
  } finally {
    await context.close();
  }
}

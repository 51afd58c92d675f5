// Our `format=timelinejs` export in the real Knight Lab TimelineJS (npm @knight-lab/timelinejs),
// in headless Chromium. A tiny static server of this script's own serves an HTML page and the
// library's dist files from node_modules on another port; the page fetches the export from the
// seeded API cross-origin (the API sends CORS headers), as a newsroom's page would, and builds
// `new TL.Timeline('timeline', data)`. Nothing is added to the API for it.
//
// Requests anywhere else (fonts, embeds, analytics) are blocked and reported, never required.
// Fails on a page error, a console error of the page, a failed or non-2xx request to either local
// server, or slides that do not match the export. Screenshot: var/artifacts/browser/timelinejs.png.

import { readFile } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DIST = path.join(HERE, "node_modules", "@knight-lab", "timelinejs", "dist");
const CRISIS = "between=MLI,DZA&from=2025-04&to=2025-04";
const SHOOT_DOWN = "2025-04-01-algeria-shoots-down-malian-drone";
const TYPES = {
  ".js": "text/javascript",
  ".css": "text/css",
  ".json": "application/json",
  ".woff": "font/woff",
  ".woff2": "font/woff2",
  ".ttf": "font/ttf",
  ".eot": "application/vnd.ms-fontobject",
  ".svg": "image/svg+xml",
  ".png": "image/png",
};

function page(api) {
  // The export's URL is data, not code: JSON.stringify quotes it for the script.
  const url = JSON.stringify(`${api}/v1/timeline?${CRISIS}&format=timelinejs`);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Diplomatic Timeline in TimelineJS</title>
<link rel="stylesheet" href="/timelinejs/css/timeline.css">
<script src="/timelinejs/js/timeline.js"></script>
<style>html, body { height: 100%; margin: 0; } #timeline { width: 100%; height: 100%; }</style>
</head>
<body>
<div id="timeline"></div>
<script>
fetch(${url})
  .then((response) => {
    if (!response.ok) throw new Error("export answered " + response.status);
    return response.json();
  })
  .then((data) => {
    window.exported = data;
    // script_path: the library's fonts and locales from here, not from its CDN (its default).
    window.timeline = new TL.Timeline("timeline", data, {
      hash_bookmark: false,
      script_path: location.origin + "/timelinejs/js/",
    });
    window.timeline.on("ready", () => { document.body.dataset.ready = "true"; });
    if (window.timeline.ready) document.body.dataset.ready = "true";
  })
  .catch((error) => { document.body.dataset.failed = String(error); console.error(error); });
</script>
</body>
</html>`;
}

function serve(api) {
  const server = http.createServer(async (request, response) => {
    const { pathname } = new URL(request.url, "http://localhost");
    if (pathname === "/") {
      response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      response.end(page(api));
      return;
    }
    if (pathname.startsWith("/timelinejs/")) {
      const file = path.resolve(DIST, "." + decodeURIComponent(pathname.slice("/timelinejs".length)));
      if (file.startsWith(DIST + path.sep)) {
        try {
          const body = await readFile(file);
          response.writeHead(200, { "content-type": TYPES[path.extname(file)] || "application/octet-stream" });
          response.end(body);
          return;
        } catch {
          // fall through to 404
        }
      }
    }
    response.writeHead(404, { "content-type": "text/plain" });
    response.end("not found");
  });
  return new Promise((resolve, reject) => {
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}

export async function checkTimelineJS({ browser, base, artifacts, assert }) {
  const server = await serve(base);
  const origin = `http://127.0.0.1:${server.address().port}`;
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  try {
    const tab = await context.newPage();
    const problems = [];
    const blocked = new Set();
    const local = (url) => url.startsWith(`${origin}/`) || url.startsWith(`${base}/`);
    await context.route((url) => !local(url.href) && url.protocol !== "data:", (route) => {
      blocked.add(route.request().url());
      return route.abort("blockedbyclient");
    });
    tab.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    tab.on("console", (message) => {
      if (message.type() !== "error") return;
      // A blocked outside request logs "Failed to load resource" against its own URL: reported
      // below, not a failure. Anything else is.
      const where = message.location().url || "";
      if (where && !local(where) && blocked.has(where)) return;
      problems.push(`console error: ${message.text()} (${where})`);
    });
    tab.on("requestfailed", (request) => {
      if (local(request.url())) problems.push(`request failed: ${request.url()} ${request.failure()?.errorText}`);
    });
    tab.on("response", (response) => {
      if (local(response.url()) && response.status() >= 400) {
        problems.push(`request answered ${response.status()}: ${response.url()}`);
      }
    });

    const exportResponse = tab.waitForResponse((r) => r.url().startsWith(`${base}/v1/timeline?`));
    await tab.goto(`${origin}/`);
    const answer = await exportResponse;
    assert(answer.status() === 200, `the export answered ${answer.status()}`);
    assert(answer.headers()["access-control-allow-origin"], "the export sent no CORS header");
    await tab.waitForSelector("body[data-ready='true'], body[data-failed]", { timeout: 20000 });
    const failed = await tab.getAttribute("body", "data-failed");
    assert(!failed, `the page could not build the timeline: ${failed}`);

    const state = await tab.evaluate(() => ({
      events: window.exported.events.length,
      eras: window.exported.eras.length,
      groups: new Set(window.exported.events.map((e) => e.group)).size,
      errors: window.timeline.config.getErrors(),
      slides: document.querySelectorAll(".tl-slide").length,
      titleSlides: document.querySelectorAll(".tl-slide-titleslide").length,
      markers: document.querySelectorAll(".tl-timemarker").length,
      renderedEras: document.querySelectorAll(".tl-timeera").length,
      renderedGroups: document.querySelectorAll(".tl-timegroup").length,
      message: document.querySelector(".tl-message-full")?.textContent || "",
    }));
    assert(state.errors.length === 0, `TimelineJS rejected the data: ${state.errors.join("; ")}`);
    assert(state.events >= 10, `expected the April 2025 crisis, found ${state.events} events`);
    assert(state.slides === state.events + 1, `${state.slides} slides for ${state.events} events and a title`);
    assert(state.titleSlides === 1, `${state.titleSlides} title slides`);
    assert(state.markers === state.events, `${state.markers} time markers for ${state.events} events`);
    assert(state.eras >= 1 && state.renderedEras === state.eras, `${state.renderedEras} eras drawn of ${state.eras}`);
    assert(state.renderedGroups === state.groups, `${state.renderedGroups} group rows for ${state.groups} groups`);

    const title = await tab.locator(".tl-slide-titleslide").innerText();
    assert(/CC BY 4\.0/.test(title) && /every event cites its own sources/.test(title),
      `the title slide lacks the licence or the attribution: ${title.slice(0, 300)}`);

    // Our event id is the slide's id: TimelineJS can go to it, and it shows the claims and sources.
    await tab.evaluate((id) => window.timeline.goToId(id), SHOOT_DOWN);
    const slide = tab.locator(`.tl-slide[id='${SHOOT_DOWN}']`);
    await slide.locator(".tl-headline").waitFor({ state: "visible", timeout: 10000 });
    await tab.waitForTimeout(1200); // the slide animation
    const headline = await slide.locator(".tl-headline").innerText();
    assert(/shoots down a Malian drone/i.test(headline), `headline: ${headline}`);
    const cells = await slide.locator(".tl-text-content th").allInnerTexts();
    assert(cells.includes("DZA") && cells.includes("MLI"), `claims side by side: ${cells}`);
    const links = await slide.locator(".tl-text-content a").evaluateAll((as) => as.map((a) => a.href));
    assert(links.some((href) => href.includes("devdiscourse")), `the sources are not links: ${links}`);
    assert((await slide.locator(".tl-media-blockquote").count()) === 1, "the main source card is missing");
    const card = await slide.locator("a.tl-media-link").getAttribute("href");
    assert(card && card.includes("devdiscourse"), `the source card does not link to the source: ${card}`);
    const images = await tab.locator(".tl-slide img").evaluateAll((imgs) => imgs.map((i) => i.src));
    assert(images.length === 0, `TimelineJS drew a source URL as an image: ${images}`);

    await tab.screenshot({ path: path.join(artifacts, "timelinejs.png") });
    await tab.evaluate(() => window.timeline.goToStart());
    await tab.waitForTimeout(1200);
    await tab.screenshot({ path: path.join(artifacts, "timelinejs-title.png") });

    assert(problems.length === 0, problems.join("\n"));
    console.log(`     ${state.slides} slides (a title and ${state.events} events), ${state.renderedEras} era(s),`
      + ` ${state.renderedGroups} group rows`);
    if (blocked.size) console.log(`     blocked outside requests (not needed): ${[...blocked].join(", ")}`);
  } finally {
    await context.close();
    await new Promise((resolve) => server.close(resolve));
  }
}

// The live stream in the browser: an open page (and an open embed) shows an event published
// through the write API without a reload, drawn and listed, within a second of its POST. The
// second is the check's wait deadline, not a measured time: the page must not need a reload or
// a poll to get there.

const LIVE_DEADLINE_MS = 1000;

function eventBody(id, title) {
  return {
    id,
    kind: "diplomatic_action",
    category: "statement",
    date: id.slice(0, 10),
    date_precision: "day",
    title,
    summary: "Published by the browser test while the page is open.",
    participants: [{ state: "MLI", role: "initiator" }, { state: "DZA", role: "target" }],
    sources: [{ url: `https://example.org/browser/${id}`, publisher: "Browser Test" }],
  };
}

async function post(base, token, body) {
  const response = await fetch(`${base}/v1/events`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  if (response.status !== 201) throw new Error(`POST /v1/events answered ${response.status}: ${await response.text()}`);
}

async function change(base, token, method, id, body) {
  const response = await fetch(`${base}/v1/events/${id}`, {
    method,
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}`, "If-Match": "*" },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!response.ok) throw new Error(`${method} /v1/events/${id} answered ${response.status}: ${await response.text()}`);
}

export async function checkLive({ browser, base, assert, check, token }) {
  await check("an open page shows an event within a second of its POST, and follows its update and deletion", async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    const tab = await context.newPage();
    const errors = [];
    tab.on("console", (message) => { if (message.type() === "error") errors.push(message.text()); });
    tab.on("pageerror", (error) => errors.push(`page error: ${error.message}`));
    try {
      await tab.goto(`${base}/?between=MLI,DZA&from=2025-05`);
      await tab.waitForSelector("body[data-ready='true']", { timeout: 30000 });
      // The page follows the changes once its stream is open; the write comes after that.
      await tab.waitForFunction(() => TimelinePage.liveOpen(), null, { timeout: 30000 });
      const id = "2025-05-20-live-browser-test";
      const listed = `button.event[data-event='${id}']`;
      await post(base, token, eventBody(id, "Published while the page is open"));
      await tab.waitForSelector(listed, { timeout: LIVE_DEADLINE_MS });
      await tab.waitForFunction((eventId) => chart.has(eventId), id, { timeout: LIVE_DEADLINE_MS });
      await change(base, token, "PATCH", id, { title: "Renamed while the page is open" });
      await tab.waitForFunction((selector) => /Renamed/.test(document.querySelector(selector)?.textContent || ""), listed, { timeout: LIVE_DEADLINE_MS });
      // Out of the view's filters: an update that takes it to 2025-04 removes it from this view.
      await change(base, token, "PATCH", id, { date: "2025-04-20" });
      await tab.waitForSelector(listed, { state: "detached", timeout: LIVE_DEADLINE_MS });
      assert(!(await tab.evaluate((eventId) => chart.has(eventId), id)), "moved out of the view: still drawn");
      assert(errors.length === 0, errors.join("\n"));
    } finally {
      await context.close();
    }
  });

  await check("an open embed shows an event within a second of its POST, and drops it when deleted", async () => {
    const context = await browser.newContext({ viewport: { width: 900, height: 900 } });
    const tab = await context.newPage();
    const errors = [];
    tab.on("console", (message) => { if (message.type() === "error") errors.push(message.text()); });
    try {
      await tab.goto(`${base}/embed?between=MLI,DZA&from=2025-06`);
      await tab.waitForSelector("body[data-ready='true']", { timeout: 30000 });
      await tab.waitForFunction(() => TimelineEmbed.liveOpen(), null, { timeout: 30000 });
      const id = "2025-06-20-live-embed-test";
      await post(base, token, eventBody(id, "Published while the embed is open"));
      await tab.waitForFunction((title) => document.body.textContent.includes(title), "Published while the embed is open", { timeout: LIVE_DEADLINE_MS });
      await change(base, token, "DELETE", id);
      await tab.waitForFunction((title) => !document.body.textContent.includes(title), "Published while the embed is open", { timeout: LIVE_DEADLINE_MS });
      assert(errors.length === 0, errors.join("\n"));
    } finally {
      await context.close();
    }
  });
}

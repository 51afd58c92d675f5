// The embed (/embed): one view of the timeline for an article's frame. It takes the page's
// address parameters (filters.js), draws the timeline (timeline.js) or, with `view=story`,
// shows the TimelineJS export in TimelineJS (served from this server), and keeps a list of the
// same events for screen readers. Links open the full page in a new tab, never in the frame.
"use strict";

const parsedView = TimelineFilters.parse(window.location.search);
let embedChart = null;
const shown = new Map();

function fullPage(extra = {}) {
  const params = TimelineFilters.serialise(parsedView.filters, { lanes: parsedView.lanes, ...extra });
  const query = TimelineFilters.text(params);
  return `/${query ? `?${query}` : ""}`;
}

function outLink(href, text) {
  return h("a", { href, target: "_blank", rel: "noopener" }, text);
}

function showDetail(id) {
  const doc = shown.get(id);
  const box = document.getElementById("embed-detail");
  if (!doc) { box.hidden = true; return; }
  if (embedChart) embedChart.select(id);
  box.hidden = false;
  box.replaceChildren(
    h("h2", {}, doc.title),
    h("p", { class: "event-meta" },
      h("span", { class: `badge kind-${doc.kind}` }, humanise(doc.kind)), " ",
      categoryLabel(doc.category), " · ",
      h("time", { datetime: doc.date }, formatDate(doc.date, doc.date_precision)),
      doc.end_date ? ` to ${formatDate(doc.end_date)}` : null, " · ", participantsLine(doc.participants)),
    h("p", { class: "summary" }, doc.summary),
    h("ul", { class: "sources", "aria-label": "Sources" }, doc.sources.map(sourceLink)),
    h("p", {}, outLink(fullPage({ event: id }), "Claims, thread and history on the full timeline")),
  );
}

function renderList() {
  const list = document.getElementById("events");
  const docs = [...shown.values()].sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : a.id < b.id ? -1 : 1));
  list.replaceChildren(...docs.map((doc) => h("li", {},
    h("button", { type: "button", class: "link", "data-event": doc.id, onclick: () => showDetail(doc.id) },
      `${formatDate(doc.date, doc.date_precision)}: ${doc.title}`))));
}

function setStatus(text) {
  document.getElementById("status").textContent = text;
}

async function drawStory() {
  const params = TimelineFilters.apiQuery(parsedView.filters);
  params.set("format", "timelinejs");
  const response = await fetch(`/v1/timeline?${params}`);
  const data = await response.json();
  if (!response.ok) throw new Error(data.detail || `${response.status}`);
  const story = new TL.Timeline("story", data, {
    hash_bookmark: false,
    // Its locales from here (TimelineJS's default is its CDN), and no web font: its font files
    // load from Google's servers. The page's system fonts apply.
    script_path: `${window.location.origin}/static/vendor/timelinejs/js/`,
    font: null,
  });
  await new Promise((resolve) => {
    if (story.ready) resolve();
    story.on("ready", resolve);
  });
}

async function drawTimeline(docs) {
  embedChart = DrawnTimeline.create(document.getElementById("drawn"), {
    eventLabel, actorName, lanes: parsedView.lanes, onSelect: showDetail,
  });
  embedChart.setEvents(docs, { zoom: parsedView.zoom });
  const pair = relationPair(parsedView.filters);
  try {
    embedChart.setBand(relationBand(await api(`/v1/relations/${pair[0]}/${pair[1]}/history`)));
  } catch {
    embedChart.setBand(null);
  }
}

// Live updates: the same hook as the page's (app.js), for the change stream.
function applyChange(change) {
  if (change.operation === "deleted" || !change.data) {
    shown.delete(change.id);
    if (embedChart) embedChart.remove(change.id);
  } else {
    shown.set(change.id, change.data);
    if (embedChart) embedChart.upsert(change.data);
  }
  renderList();
}
// The live stream of the embed's changes (an EventSource; common.js, watchChanges).
let live = null;
window.TimelineEmbed = {
  applyChange,
  query: () => TimelineFilters.text(TimelineFilters.apiQuery(parsedView.filters)),
  liveOpen: () => Boolean(live && live.readyState === EventSource.OPEN),
};

async function startEmbed() {
  const story = document.body.dataset.view === "story";
  if (parsedView.unknown.length) {
    setStatus(`Not a filter of this timeline: ${parsedView.unknown.map(([n, v]) => `${n}=${v}`).join(", ")}.`);
    document.body.dataset.ready = "true";
    return;
  }
  try {
    // Live updates (common.js, watchChanges), asked for before the events are read. TimelineJS's
    // story view draws once: only the list under it follows the changes.
    live = watchChanges(parsedView.filters, applyChange);
    await loadNames();
    const docs = await loadEvents(parsedView.filters);
    for (const doc of docs) shown.set(doc.id, doc);
    renderList();
    setStatus(docs.length === 1 ? "1 event." : `${docs.length} events.`);
    if (story) await drawStory();
    else await drawTimeline(docs);
    if (live) live.drawn();
    if (parsedView.event) showDetail(parsedView.event);
  } catch (error) {
    setStatus(`The timeline could not be loaded: ${error.message}`);
  }
  document.body.dataset.ready = "true";
}

startEmbed();

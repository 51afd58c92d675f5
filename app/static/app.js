// The timeline page. Plain JS, no build: it reads this service's API and nothing else
// (common.js has the helpers it shares with the embed, timeline.js draws the timeline).
"use strict";

const PAGE_SIZE = 100;
const EXPORTS = [["csv", "CSV"], ["ndjson", "NDJSON"], ["geojson", "GeoJSON"], ["ics", "Calendar (ICS)"], ["atom", "Atom feed"]];

let nextCursor = null;
let currentQuery = null;
// The page's address, read by TimelineFilters.parse (filters.js): the filters, the open event,
// and the parameters kept as given (unused API parameters, unknown ones).
let view = TimelineFilters.parse("");
// The drawn timeline (timeline.js), made once the names are known.
let chart = null;
// The live stream of the view's changes (an EventSource), replaced when the view changes.
let live = null;

function setStatus(text) {
  document.getElementById("status").textContent = text;
}

// --- filters: the form, the active filters and the address bar ------------------------------
// Reading and writing addresses is TimelineFilters' (filters.js); this part is the page's form.

// The spellings of true that the API (pydantic) accepts for a boolean parameter.
const TRUE_WORDS = ["true", "1", "yes", "on", "t", "y"];

function kept(parsed) {
  return [...parsed.unused, ...parsed.unknown];
}

function pushUrl(parsed, eventId, { replace = false } = {}) {
  const query = TimelineFilters.text(TimelineFilters.serialise(parsed.filters, {
    event: eventId, lanes: parsed.lanes, zoom: parsed.zoom, keep: kept(parsed),
  }));
  const url = query ? `?${query}` : window.location.pathname;
  if (url === window.location.search) return;
  if (replace) window.history.replaceState(null, "", url);
  else window.history.pushState(null, "", url);
  discoveryLink();
}

// The oEmbed discovery link names this view (the server writes the first one into the page).
function discoveryLink() {
  const link = document.querySelector('link[rel="alternate"][type="application/json+oembed"]');
  if (link) link.href = `${window.location.origin}/oembed?url=${encodeURIComponent(window.location.href)}&format=json`;
}

// The selects that add a value to a list filter, placed before and after the organisation's.
const ADD_FIELDS = {
  before: [["state", "Add a state (any role)"], ["actor", "Add an initiator"], ["target", "Add a target"]],
  after: [["kind", "Add a kind"], ["category", "Add a category"]],
};

function addFields() {
  const field = ([name, label]) => h("div", { class: "field" },
    h("label", { for: `f-${name}` }, label),
    h("select", { id: `f-${name}`, name, "data-list": true, "aria-describedby": "add-hint" }, h("option", { value: "" }, "—")));
  const organisation = document.getElementById("organisation-field");
  organisation.before(...ADD_FIELDS.before.map(field));
  organisation.after(...ADD_FIELDS.after.map(field));
}

function fillSelect(id, items, label) {
  const select = document.getElementById(id);
  for (const item of items) select.append(h("option", { value: item.value }, label(item)));
}

// A value the select does not offer (a code typed into the address) is shown as given.
function selectValue(select, value) {
  if (value && ![...select.options].some((option) => option.value === value)) {
    select.append(h("option", { value, "data-given": "" }, `${value} (as given)`));
  }
  select.value = value;
}

function writeForm(filters) {
  const form = document.getElementById("filters");
  for (const name of ["q", "from", "to", "as_known_at"]) form.elements[name].value = filters[name];
  selectValue(form.elements.order, filters.order || "asc");
  const [a = "", b = ""] = TimelineFilters.betweenCodes(filters);
  selectValue(form.elements.a, a);
  selectValue(form.elements.b, b);
  form.elements.include_members.checked = TRUE_WORDS.includes(filters.include_members.toLowerCase());
  for (const field of form.querySelectorAll("[data-list]")) field.value = "";
}

// The filters the form asks for, from the ones in force: single values are read from their
// fields, list fields add their value to the list.
function formFilters(current) {
  const form = document.getElementById("filters");
  const filters = structuredClone(current);
  for (const name of ["q", "from", "to", "as_known_at"]) filters[name] = form.elements[name].value.trim();
  const order = form.elements.order.value;
  filters.order = order === "asc" && !current.order ? "" : order;
  const codes = TimelineFilters.betweenCodes(current);
  const pair = [form.elements.a.value, form.elements.b.value];
  filters.between = [...new Set([...pair, ...codes.slice(2)].filter(Boolean))].join(",");
  const members = form.elements.include_members.checked;
  filters.include_members = members ? current.include_members || "true" : "";
  for (const field of form.querySelectorAll("[data-list]")) {
    const value = field.value.trim();
    if (value && !filters[field.name].includes(value)) filters[field.name].push(value);
  }
  return filters;
}

function valueLabel(name, value) {
  switch (name) {
    case "state":
      return stateName(value);
    case "actor":
    case "target":
    case "organisation":
      return names.states.get(value) || names.organisations.get(value) || value;
    case "between":
      return TimelineFilters.betweenCodes({ between: value }).map(stateName).join(", ");
    case "kind":
      return names.kinds.get(value) || value;
    case "category":
      return names.categories.get(value) || value;
    case "include_members":
      return TRUE_WORDS.includes(value.toLowerCase()) ? "yes" : value;
    case "order":
      return { asc: "oldest first", desc: "newest first", relevance: "best match first" }[value] || value;
    default:
      return value;
  }
}

function renderActive(parsed, invalid = new Set()) {
  const list = document.getElementById("active-filters");
  const entries = TimelineFilters.active(parsed.filters);
  if (!entries.length) {
    list.replaceChildren(h("li", { class: "hint" }, "No filters: every event."));
    return;
  }
  list.replaceChildren(
    ...entries.map(({ name, label, value }) => {
      const shown = valueLabel(name, value);
      const text = shown === value || name === "include_members" ? `${label}: ${shown}` : `${label}: ${shown} (${value})`;
      return h(
        "li",
        { class: invalid.has(name) ? "chip invalid" : "chip", "data-filter": name, "data-value": value },
        h("span", {}, text),
        h("button", {
          type: "button",
          class: "remove",
          "aria-label": `Remove the filter ${text}`,
          title: "Remove this filter",
          onclick: () => change({ ...parsed, filters: TimelineFilters.without(parsed.filters, name, value) }),
        }, "×"),
      );
    }),
  );
}

function renderProblems(parsed, apiError = null) {
  const box = document.getElementById("filter-problems");
  const parts = [];
  if (parsed.unknown.length) {
    parts.push(h("div", { class: "problem error-box", role: "alert" },
      h("p", {}, parsed.unknown.length === 1
        ? "The address has a parameter that is not a filter of this timeline, so no events are shown:"
        : "The address has parameters that are not filters of this timeline, so no events are shown:"),
      h("ul", {}, parsed.unknown.map(([name, value]) => h("li", { "data-unknown": name },
        h("code", {}, `${name}=${value}`), " ",
        h("button", { type: "button", class: "link", onclick: () => change({ ...parsed, unknown: parsed.unknown.filter(([n, v]) => n !== name || v !== value) }) }, "remove it")))),
      h("p", { class: "hint" }, `Filters: ${TimelineFilters.names.join(", ")}.`)));
  }
  if (parsed.unused.length) {
    parts.push(h("div", { class: "problem notice", role: "status" },
      h("p", {}, "Not used on this page:"),
      h("ul", {}, parsed.unused.map(([name, value]) => h("li", { "data-unused": name },
        h("code", {}, `${name}=${value}`), `: ${TimelineFilters.API_ONLY[name]}. `,
        h("button", { type: "button", class: "link", onclick: () => change({ ...parsed, unused: parsed.unused.filter(([n, v]) => n !== name || v !== value) }) }, "remove it"))))));
  }
  for (const note of parsed.notes) parts.push(h("p", { class: "problem notice" }, note));
  if (apiError) {
    parts.push(h("div", { class: "problem error-box", role: "alert" },
      h("p", {}, `The API refused these filters: ${apiError.message}`)));
  }
  box.replaceChildren(...parts);
}

function renderDownloads(filters) {
  const p = document.getElementById("downloads");
  const query = TimelineFilters.apiQuery(filters);
  const link = (format, label) => {
    const params = new URLSearchParams(query);
    params.set("format", format);
    return h("a", { href: `/v1/timeline?${TimelineFilters.text(params)}` }, label);
  };
  p.replaceChildren("This view as ", ...EXPORTS.flatMap(([format, label], i) => [i ? ", " : "", link(format, label)]), ".");
  p.hidden = false;
}

// --- the timeline ---------------------------------------------------------------------------

// With order=relevance, the API's snippet: runs of plain text, the matched words flagged.
function snippetLine(snippet) {
  if (!snippet) return null;
  const runs = snippet.map((run) => (run.match ? h("mark", {}, run.text) : run.text));
  return h("span", { class: "event-snippet" }, runs);
}

function eventButton(event) {
  return h(
    "button",
    {
      type: "button",
      class: `event kind-${event.kind}`,
      "data-event": event.id,
      "data-date": event.date,
      "aria-pressed": "false",
      onclick: () => openEvent(event.id, { push: true, focus: true }),
    },
    h("span", { class: "event-date" }, formatDate(event.date, event.date_precision)),
    h("span", { class: "event-title" }, event.title),
    snippetLine(event.snippet),
    h(
      "span",
      { class: "event-meta" },
      h("span", { class: `badge kind-${event.kind}` }, humanise(event.kind)),
      " ",
      categoryLabel(event.category),
      " · ",
      participantsLine(event.participants),
    ),
  );
}

function appendEvents(items) {
  const container = document.getElementById("events");
  for (const event of items) {
    const year = event.date.slice(0, 4);
    let list = container.querySelector(`ol[data-year="${year}"]`);
    if (!list) {
      container.append(h("h3", { class: "year" }, year));
      list = h("ol", { class: "events", "data-year": year, "aria-label": `Events of ${year}` });
      container.append(list);
    }
    list.append(h("li", {}, eventButton(event)));
  }
}

async function loadTimeline(parsed) {
  currentQuery = TimelineFilters.apiQuery(parsed.filters);
  currentQuery.set("limit", String(PAGE_SIZE));
  currentQuery.set("count", "true");
  nextCursor = null;
  document.getElementById("events").replaceChildren();
  document.getElementById("downloads").hidden = true;
  if (parsed.unknown.length) {
    setStatus("No events shown: remove or correct the parameters named above.");
    document.getElementById("more").hidden = true;
    return;
  }
  setStatus("Loading events…");
  try {
    const page = await api(`/v1/timeline?${currentQuery}`);
    appendEvents(page.items);
    nextCursor = page.next_cursor;
    const total = page.total ?? page.items.length;
    setStatus(total === 1 ? "1 event matches." : `${total} events match.`);
    renderDownloads(parsed.filters);
  } catch (error) {
    setStatus(`The events could not be loaded: ${error.message}`);
    if (error.params && error.params.size) {
      renderActive(parsed, error.params);
      renderProblems(parsed, error);
    }
  }
  document.getElementById("more").hidden = !nextCursor;
  markSelected(view.event);
}

async function loadMore() {
  if (!nextCursor) return;
  const params = new URLSearchParams(currentQuery);
  params.set("cursor", nextCursor);
  params.delete("count");
  try {
    const page = await api(`/v1/timeline?${params}`);
    appendEvents(page.items);
    nextCursor = page.next_cursor;
  } catch (error) {
    setStatus(`More events could not be loaded: ${error.message}`);
  }
  document.getElementById("more").hidden = !nextCursor;
}

function markSelected(eventId) {
  for (const button of document.querySelectorAll("button.event")) {
    button.setAttribute("aria-pressed", String(button.dataset.event === eventId));
  }
  if (chart) chart.select(eventId);
}

// --- one event ------------------------------------------------------------------------------

function claimsSection(claims) {
  if (!claims.length) return null;
  const topics = new Map();
  for (const claim of claims) {
    if (!topics.has(claim.topic)) topics.set(claim.topic, []);
    topics.get(claim.topic).push(claim);
  }
  return h(
    "section",
    { class: "claims", "aria-labelledby": "claims-heading" },
    h("h3", { id: "claims-heading" }, "Claims"),
    h("p", { class: "hint" }, "Where the parties disagree, each position is shown with its own source. No winner is picked."),
    [...topics].map(([topic, items]) =>
      h(
        "div",
        { class: "topic" },
        h("h4", {}, humanise(topic)),
        h(
          "div",
          { class: "claim-row" },
          items.map((claim) =>
            h(
              "article",
              { class: "claim" },
              h("p", { class: "claimant" }, actorName(claim.claimant)),
              h("blockquote", {}, claim.statement),
              claim.value !== null ? h("p", { class: "value" }, `${claim.value} ${claim.unit ? claim.unit.replaceAll("_", " ") : ""}`) : null,
              claim.made_on ? h("p", { class: "hint" }, `Made on ${formatDate(claim.made_on)}`) : null,
              h("ul", { class: "sources" }, claim.sources.map(sourceLink)),
            ),
          ),
        ),
      ),
    ),
  );
}

function participantsSection(participants) {
  const roles = new Map();
  for (const p of participants) {
    if (!roles.has(p.role)) roles.set(p.role, []);
    roles.get(p.role).push(actorName(p));
  }
  return h(
    "dl",
    { class: "participants" },
    [...roles].map(([role, actors]) => [h("dt", {}, humanise(role)), h("dd", {}, actors.join(", "))]),
  );
}

function threadSection(thread, currentId) {
  if (!thread || thread.items.length < 2) {
    return h("section", { class: "thread" }, h("h3", {}, "Thread"), h("p", { class: "hint" }, "No linked events."));
  }
  const titles = new Map(thread.items.map((item) => [item.id, item.title]));
  const outgoing = new Map();
  for (const link of thread.links) {
    if (!outgoing.has(link.from)) outgoing.set(link.from, []);
    outgoing.get(link.from).push(link);
  }
  return h(
    "section",
    { class: "thread", "aria-labelledby": "thread-heading" },
    h("h3", { id: "thread-heading" }, `Thread (${thread.items.length} linked events)`),
    h(
      "ol",
      {},
      thread.items.map((item) =>
        h(
          "li",
          { class: `thread-item ${item.thread.position}` },
          item.id === currentId
            ? h("span", { class: "current", "aria-current": "true" }, formatDate(item.date, item.date_precision), " ", item.title)
            : h(
                "button",
                { type: "button", class: "link", onclick: () => openEvent(item.id, { push: true, focus: true }) },
                formatDate(item.date, item.date_precision), " ", item.title,
              ),
          (outgoing.get(item.id) || []).length
            ? h(
                "ul",
                { class: "links" },
                outgoing.get(item.id).map((link) => h("li", {}, `${humanise(link.type)}: ${titles.get(link.to)}`)),
              )
            : null,
        ),
      ),
    ),
  );
}

async function openEvent(eventId, { push = false, focus = false, reveal = false } = {}) {
  const body = document.getElementById("detail-body");
  if (push) {
    view = { ...view, event: eventId };
    pushUrl(view, eventId);
  }
  markSelected(eventId);
  if (!eventId) {
    body.replaceChildren(h("p", { class: "hint" }, "Choose an event to see its summary, participants, claims, sources and thread."));
    return;
  }
  body.replaceChildren(h("p", { class: "hint" }, "Loading the event…"));
  try {
    // With `as_known_at`, the event as it was then, like the list.
    const at = view.filters.as_known_at ? `?as_known_at=${encodeURIComponent(view.filters.as_known_at)}` : "";
    const [event, thread] = await Promise.all([
      api(`/v1/events/${encodeURIComponent(eventId)}${at}`),
      api(`/v1/events/${encodeURIComponent(eventId)}/thread`),
    ]);
    const location = event.location ? event.location.name : null;
    body.replaceChildren(
      h("article", { class: `event-detail kind-${event.kind}`, "data-event": event.id },
        h("h3", { class: "detail-title" }, event.title),
        h("p", { class: "event-meta" },
          h("span", { class: `badge kind-${event.kind}` }, humanise(event.kind)), " ",
          categoryLabel(event.category), " · ",
          h("time", { datetime: event.date }, formatDate(event.date, event.date_precision)),
          event.end_date ? ` to ${formatDate(event.end_date)}` : null,
          location ? ` · ${location}` : null),
        h("p", { class: "summary" }, event.summary),
        h("h4", {}, "Participants"),
        participantsSection(event.participants),
        event.casualties
          ? h("p", {}, `Casualties: ${[event.casualties.killed !== null ? `${event.casualties.killed} killed` : null, event.casualties.wounded !== null ? `${event.casualties.wounded} wounded` : null, event.casualties.note].filter(Boolean).join(", ")}`)
          : null,
        claimsSection(event.claims),
        h("section", { class: "sources", "aria-labelledby": "sources-heading" },
          h("h3", { id: "sources-heading" }, "Sources"),
          h("ul", { class: "sources" }, event.sources.map(sourceLink))),
        threadSection(thread, event.id),
        h("p", { class: "hint" }, "As JSON: ", h("a", { href: event.url }, event.url)),
      ),
    );
  } catch (error) {
    body.replaceChildren(h("p", { class: "error" }, `This event could not be loaded: ${error.message}`));
  }
  const heading = document.getElementById("detail-heading");
  const smooth = matchMedia("(prefers-reduced-motion: reduce)").matches ? "auto" : "smooth";
  if (focus) {
    heading.focus({ preventScroll: true });
    heading.scrollIntoView({ block: "start", behavior: smooth });
  } else if (reveal && heading.getBoundingClientRect().top > window.innerHeight) {
    // A shared link to an event, on a narrow screen where the details sit below the timeline.
    heading.scrollIntoView({ block: "start", behavior: "auto" });
  }
}

// --- the relations strip --------------------------------------------------------------------

function stripRows(history) {
  const a = history.a.code;
  const b = history.b.code;
  const [ab, ba] = history.representation;
  const [airA, airB] = history.airspace;
  return [
    { label: "Diplomatic relations", periods: history.relations },
    { label: `${stateName(ab.sending_state)}'s ambassador in ${stateName(ab.receiving_state)}`, periods: ab.periods },
    { label: `${stateName(ba.sending_state)}'s ambassador in ${stateName(ba.receiving_state)}`, periods: ba.periods },
    { label: `${stateName(a)}'s airspace, for ${stateName(b)}'s aircraft`, periods: airA.periods },
    { label: `${stateName(b)}'s airspace, for ${stateName(a)}'s aircraft`, periods: airB.periods },
  ];
}

async function loadStrip(filters) {
  const pair = relationPair(filters);
  const strip = document.getElementById("strip");
  const text = document.getElementById("strip-text");
  document.getElementById("strip-heading").textContent =
    `Relations over time: ${stateName(pair[0])} and ${stateName(pair[1])}`;
  let history;
  try {
    history = await api(`/v1/relations/${pair[0]}/${pair[1]}/history`);
  } catch (error) {
    strip.replaceChildren(h("p", { class: "error" }, `The relations could not be loaded: ${error.message}`));
    text.replaceChildren();
    chart.setBand(null);
    return;
  }
  chart.setBand(relationBand(history));
  const start = Date.parse(`${history.data_start}T00:00:00Z`);
  const end = Date.now();
  const span = Math.max(end - start, 1);
  const position = (iso) => (iso ? Math.min(Math.max((Date.parse(`${iso}T00:00:00Z`) - start) / span, 0), 1) : 1);
  const rows = stripRows(history);

  const years = [];
  for (let y = new Date(start).getUTCFullYear() + 1; y <= new Date(end).getUTCFullYear(); y += 1) years.push(y);
  strip.replaceChildren(
    ...rows.map((row) =>
      h("div", { class: "strip-row" },
        h("span", { class: "strip-label" }, row.label),
        h("span", { class: "strip-bar", role: "img", "aria-label": `${row.label}: ${row.periods.map(describe).join("; ")}` },
          row.periods.map((period) => {
            const left = position(period.start_on) * 100;
            const width = Math.max(position(period.end_on) * 100 - left, 0.4);
            const segment = h("span", {
              class: `segment status-${STATUS_CLASS[period.status] || "unknown"}`,
              title: describe(period),
            });
            segment.style.left = `${left}%`;
            segment.style.width = `${width}%`;
            return segment;
          })),
      )),
    h("div", { class: "strip-row axis", "aria-hidden": "true" },
      h("span", { class: "strip-label" }),
      h("span", { class: "strip-bar" },
        years.map((year) => {
          const tick = h("span", { class: "tick" }, String(year));
          tick.style.left = `${position(`${year}-01-01`) * 100}%`;
          return tick;
        }))),
  );

  const legend = document.getElementById("strip-legend");
  legend.replaceChildren(
    ...[["good", "normal, in post, open"], ["warn", "downgraded, recalled"], ["bad", "expelled, severed, closed"], ["unknown", "unknown"]]
      .map(([cls, label]) => h("li", {}, h("span", { class: `swatch status-${cls}` }), label)),
  );
  text.replaceChildren(
    ...rows.map((row) => h("div", {},
      h("h3", {}, row.label),
      h("ul", {}, row.periods.map((period) => h("li", {},
        describe(period),
        period.opened_by ? [" ", h("button", { type: "button", class: "link", onclick: () => openEvent(period.opened_by.id, { push: true, focus: true }) }, "open the event")] : null,
        period.note ? h("span", { class: "hint" }, ` ${period.note}`) : null)))))
  );
}

// --- the drawn timeline ---------------------------------------------------------------------

function makeChart() {
  return DrawnTimeline.create(document.getElementById("drawn"), {
    eventLabel,
    actorName,
    lanes: view.lanes,
    onSelect: (id) => openEvent(id, { push: true, reveal: true }),
    // Zooming and panning replace the address (no history entry per frame), so it always
    // reproduces the view.
    onView: ({ zoom }) => {
      view = { ...view, zoom };
      pushUrl(view, view.event, { replace: true });
    },
    onLanes: (lanes) => {
      view = { ...view, lanes };
      pushUrl(view, view.event, { replace: true });
    },
  });
}

async function loadChart(parsed) {
  chart.setLanes(parsed.lanes);
  if (parsed.unknown.length) {
    chart.setEmptyText("Nothing is drawn: remove or correct the parameters named above.");
    chart.setEvents([]);
    return;
  }
  chart.setEmptyText("Loading the events to draw…");
  chart.setEvents([]);
  try {
    const docs = await loadEvents(parsed.filters);
    chart.setEmptyText("No event matches these filters.");
    chart.setEvents(docs, { zoom: parsed.zoom });
  } catch (error) {
    chart.setEmptyText(`The events could not be drawn: ${error.message}`);
  }
}

// "Embed this view": the snippet of our oEmbed answer for this address, ready to copy.
async function showEmbedCode() {
  const code = document.getElementById("embed-code");
  const note = document.getElementById("embed-status");
  note.textContent = "";
  try {
    const answer = await api(`/oembed?url=${encodeURIComponent(window.location.href)}&format=json`);
    code.value = answer.html;
  } catch (error) {
    code.value = "";
    note.textContent = `No snippet for this view: ${error.message}`;
  }
}

async function copyEmbedCode() {
  const code = document.getElementById("embed-code");
  const note = document.getElementById("embed-status");
  try {
    await navigator.clipboard.writeText(code.value);
    note.textContent = "Copied.";
  } catch {
    // No clipboard access (a page over plain HTTP, a refused permission): select it instead.
    code.select();
    note.textContent = "Selected: copy it with Ctrl+C (⌘C on a Mac).";
  }
}

// --- live updates ---------------------------------------------------------------------------
// The hook for the change stream (GET /v1/changes/stream, which takes the same filters as the
// list: TimelinePage.query()). Each change of the change feed ({ operation, id, data }) that
// matches the page's filters goes to applyChange: a document inserts or replaces the event in
// the drawing and the list; a deletion (or `data: null`) removes it.

function replaceInList(doc) {
  const old = document.querySelector(`button.event[data-event="${CSS.escape(doc.id)}"]`);
  if (old) {
    old.replaceWith(eventButton(doc));
    return;
  }
  const year = doc.date.slice(0, 4);
  let list = document.querySelector(`#events ol[data-year="${year}"]`);
  if (!list) {
    const container = document.getElementById("events");
    const lists = [...container.querySelectorAll("ol[data-year]")];
    const descending = view.filters.order === "desc";
    const after = lists.find((ol) => (descending ? ol.dataset.year < year : ol.dataset.year > year));
    const heading = h("h3", { class: "year" }, year);
    list = h("ol", { class: "events", "data-year": year, "aria-label": `Events of ${year}` });
    if (after) after.previousElementSibling.before(heading, list);
    else container.append(heading, list);
  }
  const key = (d) => `${d.date} ${d.id}`;
  const later = [...list.children].find((li) => {
    const other = li.firstChild.dataset;
    const before = key({ date: other.date, id: other.event }) > key(doc);
    return view.filters.order === "desc" ? !before : before;
  });
  const item = h("li", {}, eventButton(doc));
  if (later) later.before(item);
  else list.append(item);
}

function applyChange(change) {
  if (change.operation === "deleted" || !change.data) {
    chart.remove(change.id);
    const button = document.querySelector(`button.event[data-event="${CSS.escape(change.id)}"]`);
    if (button) button.closest("li").remove();
    return;
  }
  chart.upsert(change.data);
  replaceInList(change.data);
  markSelected(view.event);
}

window.TimelinePage = {
  applyChange,
  // Whether the view's live stream is open (EventSource.OPEN), and stop following changes
  // (the browser test, to write once the page follows, and to see the network idle).
  liveOpen: () => Boolean(live && live.readyState === EventSource.OPEN),
  stopLive: () => { if (live) live.close(); live = null; },
  // The API query of the view (GET /v1/timeline's filters), for a stream of its changes.
  query: () => TimelineFilters.text(TimelineFilters.apiQuery(view.filters)),
};

// --- start ----------------------------------------------------------------------------------

async function show(parsed, { reveal = false } = {}) {
  view = parsed;
  writeForm(parsed.filters);
  renderActive(parsed);
  renderProblems(parsed);
  document.getElementById("embed-code").value = "";
  if (document.getElementById("embed").open) showEmbedCode();
  // Live updates of this view (common.js, watchChanges), asked for before the view is read;
  // none for a view the page refuses itself (unknown parameters: no events shown).
  if (live) live.close();
  live = parsed.unknown.length ? null : watchChanges(parsed.filters, applyChange);
  await Promise.all([loadTimeline(parsed), loadStrip(parsed.filters), loadChart(parsed)]);
  if (live) live.drawn();
  await openEvent(parsed.event, { reveal });
}

// A new view chosen on the page: a new history entry, with no event open and the whole period.
function change(parsed) {
  const next = { ...parsed, event: "", zoom: "", notes: [] };
  pushUrl(next, "");
  return show(next);
}

async function start() {
  try {
    const { states, organisations, categories } = await loadNames();
    addFields();
    // The form waits behind the active filters, so the drawn timeline is on the first screen.
    const stateOptions = states.items.map((s) => ({ value: s.code, name: s.name }));
    const organisationOptions = organisations.items.map((o) => ({ value: o.code, name: o.name }));
    const label = (item) => `${item.name} (${item.value})`;
    for (const id of ["f-state", "f-a", "f-b"]) fillSelect(id, stateOptions, label);
    for (const id of ["f-actor", "f-target"]) {
      const select = document.getElementById(id);
      select.append(
        h("optgroup", { label: "States" }, stateOptions.map((item) => h("option", { value: item.value }, label(item)))),
        h("optgroup", { label: "Organisations" }, organisationOptions.map((item) => h("option", { value: item.value }, label(item)))),
      );
    }
    fillSelect("f-organisation", organisationOptions, label);
    fillSelect("f-kind", [...names.kinds].map(([value, name]) => ({ value, name })), (k) => k.name);
    fillSelect("f-category", categories.items.map((c) => ({ value: c.slug, name: c.label })), (c) => c.name);
  } catch (error) {
    setStatus(`The page could not reach the API: ${error.message}`);
    return;
  }

  const form = document.getElementById("filters");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    change({ ...view, filters: formFilters(view.filters) });
  });
  document.getElementById("reset").addEventListener("click", () => {
    change({ ...view, filters: TimelineFilters.empty(), unknown: [], unused: [] });
  });
  document.getElementById("more").addEventListener("click", loadMore);
  document.getElementById("embed").addEventListener("toggle", (event) => { if (event.target.open) showEmbedCode(); });
  document.getElementById("copy-embed").addEventListener("click", copyEmbedCode);
  window.addEventListener("popstate", () => show(TimelineFilters.parse(window.location.search), { reveal: true }));

  const parsed = TimelineFilters.parse(window.location.search);
  view = parsed;
  chart = makeChart();
  // An address of the page's first version (`a` and `b`) becomes `between`, in place.
  if (parsed.legacy) pushUrl(parsed, parsed.event, { replace: true });
  await show(parsed, { reveal: true });
  document.body.dataset.ready = "true";
}

start();

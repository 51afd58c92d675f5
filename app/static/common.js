// What the timeline page (app.js) and the embed (embed.js) share: building elements, calling the
// API, dates, names and the relation statuses. Plain script; everything here is a global of the
// page. Data is always written with textContent, never innerHTML, so no record can inject markup.
"use strict";

// The pair of states whose relations are drawn when the filters name none.
const DEFAULT_PAIR = ["MLI", "DZA"];
const names = { states: new Map(), organisations: new Map(), categories: new Map(), kinds: new Map() };

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

async function api(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = body && body.detail ? body.detail : `${response.status} ${response.statusText}`;
    const error = new Error(detail);
    // The parameters a problem names (RFC 9457 `errors`, each `loc` as ["query", name, …]).
    error.params = new Set(((body && body.errors) || []).filter((e) => e.loc && e.loc[0] === "query").map((e) => String(e.loc[1])));
    throw error;
  }
  return body;
}

const MONTH = new Intl.DateTimeFormat("en-GB", { month: "long", year: "numeric", timeZone: "UTC" });
const DAY = new Intl.DateTimeFormat("en-GB", {
  day: "numeric", month: "long", year: "numeric", timeZone: "UTC",
});

function formatDate(iso, precision = "day") {
  if (!iso) return "";
  const date = new Date(`${iso}T00:00:00Z`);
  if (precision === "year") return String(date.getUTCFullYear());
  if (precision === "month") return MONTH.format(date);
  return DAY.format(date);
}

function stateName(code) {
  return names.states.get(code) || code;
}

function actorName(actor) {
  if (actor.state) return stateName(actor.state);
  if (actor.organisation) return names.organisations.get(actor.organisation) || actor.organisation;
  return actor.group;
}

function categoryLabel(slug) {
  return names.categories.get(slug) || slug.replaceAll("_", " ");
}

function humanise(slug) {
  const text = slug.replaceAll("_", " ").replaceAll("-", " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function participantsLine(participants) {
  const by = (role) => participants.filter((p) => p.role === role).map(actorName);
  // An alleged initiator is shown as such, never as the one who did it.
  const initiators = [...by("initiator"), ...by("alleged_initiator").map((name) => `${name} (alleged)`)];
  const targets = by("target");
  if (initiators.length && targets.length) return `${initiators.join(", ")} → ${targets.join(", ")}`;
  return participants.map(actorName).join(", ");
}

const STATUS_LABELS = {
  in_post: "ambassador in post",
  recalled: "recalled",
  expelled: "expelled",
  charge_d_affaires: "chargé d'affaires",
  severed: "relations severed",
  unknown: "unknown",
  open: "open",
  closed: "closed",
  normal: "normal",
  downgraded: "downgraded",
};
const STATUS_CLASS = {
  in_post: "good", open: "good", normal: "good",
  recalled: "warn", downgraded: "warn", charge_d_affaires: "warn",
  expelled: "bad", severed: "bad", closed: "bad",
  unknown: "unknown",
};

function describe(period) {
  const from = formatDate(period.start_on, period.start_precision);
  const to = period.end_on ? formatDate(period.end_on, period.end_precision) : "now";
  const by = period.opened_by ? ` (${period.opened_by.title})` : "";
  return `${STATUS_LABELS[period.status] || period.status}, ${from} to ${to}${by}`;
}

function sourceLink(source) {
  const label = source.title ? `${source.publisher}: ${source.title}` : source.publisher;
  const extra = [
    source.published_on ? formatDate(source.published_on) : null,
    source.language ? source.language.toUpperCase() : null,
  ].filter(Boolean);
  return h(
    "li",
    {},
    h("a", { href: source.url, rel: "noopener noreferrer external", target: "_blank" }, label),
    extra.length ? ` (${extra.join(", ")})` : null,
  );
}

// The names of states, organisations, categories and kinds, for labels.
async function loadNames() {
  const [states, organisations, categories] = await Promise.all([
    api("/v1/states"), api("/v1/organisations"), api("/v1/categories"),
  ]);
  for (const s of states.items) names.states.set(s.code, s.name);
  for (const o of organisations.items) names.organisations.set(o.code, o.name);
  for (const c of categories.items) {
    names.categories.set(c.slug, c.label);
    names.kinds.set(c.kind, humanise(c.kind));
  }
  return { states, organisations, categories };
}

// Every event matching the filters, as the API's documents: the NDJSON export streams them all
// in one request, whatever their number (the JSON pages stop at 500).
async function loadEvents(filters) {
  const params = TimelineFilters.apiQuery(filters);
  // The drawing has no order; `relevance` also needs `q`, which the list reports.
  params.delete("order");
  params.set("format", "ndjson");
  const response = await fetch(`/v1/timeline?${params}`, { headers: { Accept: "application/x-ndjson" } });
  if (!response.ok) {
    const body = await response.json().catch(() => null);
    throw new Error(body && body.detail ? body.detail : `${response.status} ${response.statusText}`);
  }
  const text = await response.text();
  return text.split("\n").filter((line) => line.trim()).map((line) => JSON.parse(line));
}

// The pair of states whose relations are drawn: the first two of `between`, else a single
// initiator and target that are both states, else DEFAULT_PAIR.
function relationPair(filters) {
  const codes = TimelineFilters.betweenCodes(filters);
  if (codes.length >= 2) return codes.slice(0, 2);
  const [actor, target] = [filters.actor, filters.target];
  if (actor.length === 1 && target.length === 1 && names.states.has(actor[0]) && names.states.has(target[0]) && actor[0] !== target[0]) {
    return [actor[0], target[0]];
  }
  return DEFAULT_PAIR;
}

// The band the drawn timeline shows under its axis: the diplomatic relations of the pair.
function relationBand(history) {
  const pair = `${stateName(history.a.code)} and ${stateName(history.b.code)}`;
  return {
    short: `${history.a.code}–${history.b.code} relations`,
    label: `Diplomatic relations of ${pair}: ${history.relations.map(describe).join("; ")}`,
    periods: history.relations.map((period) => ({
      start_on: period.start_on, end_on: period.end_on, cls: STATUS_CLASS[period.status] || "unknown",
    })),
  };
}

// What a mark of the drawn timeline says to a screen reader.
function eventLabel(doc) {
  return `${formatDate(doc.date, doc.date_precision)}: ${doc.title} (${humanise(doc.kind)}, ${categoryLabel(doc.category)}; ${participantsLine(doc.participants)})`;
}

// Live updates: an EventSource on GET /v1/changes/stream with the view's filters, which hands
// each change of an event to `apply` ({ operation, id, data }; `data` null when the event was
// deleted or no longer matches the filters). EventSource reconnects by itself after a network
// error or when the server ends the stream, sending the last event's id (Last-Event-ID), so the
// server resumes right after it: nothing is missed or applied twice. Returns the source, for the
// caller to close when the filters change (null when the view cannot change: as_known_at).
//
// The stream starts at the latest change when the server receives it: a view asks for it first,
// reads its events meanwhile, and applies the changes that arrived in between once the events
// are drawn (`drawn()`); one the read already saw is applied again, which changes nothing. (A
// change committed after the read but before the server opened the stream would be missed:
// the stream's request is sent first, so that takes the server answering it last.)
function watchChanges(filters, apply) {
  const params = TimelineFilters.streamQuery(filters);
  if (!params || typeof EventSource === "undefined") return null;
  const query = TimelineFilters.text(params);
  const source = new EventSource(`/v1/changes/stream${query ? `?${query}` : ""}`);
  let early = [];
  source.addEventListener("message", (message) => {
    const change = JSON.parse(message.data);
    if (change.resource !== "event") return;
    const shown = change.in_filter === false ? { ...change, data: null } : change;
    if (early) early.push(shown);
    else apply(shown);
  });
  source.drawn = () => {
    const waiting = early || [];
    early = null;
    for (const change of waiting) apply(change);
  };
  return source;
}

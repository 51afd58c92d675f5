// The timeline's filters: what the page's address may hold and how it maps to GET /v1/timeline.
// Pure functions and no DOM, so every view of the timeline (the list, the drawn timeline, the
// embed) reads and writes the same addresses. The page uses the API's own parameter
// names, so a query copied from the API works as a page address and the other way round.
//
// Rules: every filter is kept exactly as given (the API validates the values and the page shows
// its answer), a parameter the page does not know is reported, never dropped, and the address
// is rebuilt in one canonical order.
"use strict";

const TimelineFilters = (() => {
  // Every filter of GET /v1/timeline (app/timeline/schemas.py, TimelineQuery) that means
  // something on a page. `list`: repeatable, an event matches any of the values.
  const SPEC = [
    { name: "q", label: "Words" },
    { name: "from", label: "From" },
    { name: "to", label: "To" },
    { name: "state", label: "State", list: true },
    { name: "actor", label: "Initiator", list: true },
    { name: "target", label: "Target", list: true },
    { name: "between", label: "Involving all of" },
    { name: "organisation", label: "Organisation", list: true },
    { name: "include_members", label: "With member states" },
    { name: "kind", label: "Kind", list: true },
    { name: "category", label: "Category", list: true },
    { name: "tag", label: "Tag", list: true },
    { name: "order", label: "Order" },
    { name: "as_known_at", label: "As known at" },
  ];
  const BY_NAME = new Map(SPEC.map((spec) => [spec.name, spec]));
  // The rest of the API's parameters: the page pages and formats by itself.
  const API_ONLY = {
    limit: "the page loads every matching event, 100 at a time",
    cursor: "the page pages by itself",
    count: "the page always counts the matching events",
    format: "the page shows events; the links under the list download this view in each format",
    group_by: "it applies to the TimelineJS export only",
  };
  // The page's own state: the event whose details are open, the drawn timeline's lanes
  // (`state`, the default, or `pair`: initiator → target), its window (`zoom=2025-04-01..2025-04-30`,
  // both days included) and, on the embed, `view=story` for TimelineJS's story view.
  const PAGE = ["event", "lanes", "zoom", "view"];
  // The first version of the page named a pair of states `a` and `b`: now `between=a,b`.
  const LEGACY_PAIR = ["a", "b"];

  function empty() {
    const filters = {};
    for (const spec of SPEC) filters[spec.name] = spec.list ? [] : "";
    return filters;
  }

  // The page address (`location.search`) read into filters. Returns
  // { filters, event, unknown: [[name, value]], unused: [[name, value]], notes: [text], legacy }.
  // `unknown` names parameters that are no filter at all (a typo, or a filter this page does
  // not have): the page must not show events as if they applied. `unused` are API parameters
  // that mean nothing on a page; they are kept in the address, and reported.
  function parse(search) {
    const params = new URLSearchParams(search);
    const filters = empty();
    const result = { filters, event: "", lanes: "", zoom: "", view: "", unknown: [], unused: [], notes: [], legacy: false };
    const pair = {};
    for (const [name, raw] of params) {
      const value = raw.trim();
      const spec = BY_NAME.get(name);
      if (spec) {
        // An empty parameter (`?state=`) filters nothing, as an empty form field.
        if (!value) continue;
        if (spec.list) {
          if (!filters[name].includes(value)) filters[name].push(value);
        } else {
          if (filters[name] && filters[name] !== value) {
            result.notes.push(`“${name}” is given more than once: as in the API, the last value (${value}) applies.`);
          }
          filters[name] = value;
        }
      } else if (PAGE.includes(name)) {
        result[name] = value;
      } else if (LEGACY_PAIR.includes(name)) {
        pair[name] = value;
      } else if (Object.hasOwn(API_ONLY, name)) {
        result.unused.push([name, raw]);
      } else {
        result.unknown.push([name, raw]);
      }
    }
    if (pair.a && pair.b && !filters.between) {
      filters.between = `${pair.a},${pair.b}`;
      result.legacy = true;
    } else {
      for (const name of LEGACY_PAIR) if (name in pair) result.unknown.push([name, pair[name]]);
    }
    return result;
  }

  // The page address for these filters, the page's own state and the parameters kept as given.
  function serialise(filters, { event = "", lanes = "", zoom = "", view = "", keep = [] } = {}) {
    const params = new URLSearchParams();
    for (const spec of SPEC) {
      const value = filters[spec.name];
      if (spec.list) for (const item of value) params.append(spec.name, item);
      else if (value) params.set(spec.name, value);
    }
    if (event) params.set("event", event);
    if (lanes) params.set("lanes", lanes);
    if (zoom) params.set("zoom", zoom);
    if (view) params.set("view", view);
    for (const [name, value] of keep) params.append(name, value);
    return params;
  }

  // The query string of GET /v1/timeline for these filters (paging and format are the caller's).
  function apiQuery(filters) {
    return serialise(filters);
  }

  // The query string of GET /v1/changes/stream for these filters: the filters alone (the order
  // is the page's business). Null for a view of the past (`as_known_at`): it never changes.
  function streamQuery(filters) {
    if (filters.as_known_at) return null;
    const params = serialise(filters);
    params.delete("order");
    return params;
  }

  // As `params.toString()`, with the commas of `between=MLI,DZA` left readable.
  function text(params) {
    return params.toString().replaceAll("%2C", ",");
  }

  // One removable entry per active value: [{ name, label, value }].
  function active(filters) {
    const out = [];
    for (const spec of SPEC) {
      const value = filters[spec.name];
      for (const item of spec.list ? value : value ? [value] : []) {
        out.push({ name: spec.name, label: spec.label, value: item });
      }
    }
    return out;
  }

  // A copy without one value (or the whole filter when `value` is omitted).
  function without(filters, name, value) {
    const copy = structuredClone(filters);
    if (BY_NAME.get(name).list && value !== undefined) copy[name] = copy[name].filter((v) => v !== value);
    else copy[name] = BY_NAME.get(name).list ? [] : "";
    return copy;
  }

  // The codes of `between`, in order.
  function betweenCodes(filters) {
    return filters.between ? filters.between.split(",").map((code) => code.trim()).filter(Boolean) : [];
  }

  return {
    SPEC, API_ONLY, PAGE, names: SPEC.map((spec) => spec.name),
    empty, parse, serialise, apiQuery, streamQuery, text, active, without, betweenCodes,
  };
})();

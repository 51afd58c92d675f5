// The drawn timeline: a horizontal time axis, one lane per state (or per initiator → target
// pair), events as marks coloured by kind, the relation status of a pair of states as a band
// under the axis, and the named crises shaded. Plain SVG and no library (docs/api-guide.md says
// why). It knows nothing of the page: the page gives it event documents, as the API serves them,
// and hears back through callbacks.
//
// Rendering is one pass per animation frame, and only of what is in the window: each lane's
// marks are sorted by date once, the window's slice is found by binary search, and marks that
// would overlap on screen are merged into one cluster (a count), so the number of SVG elements
// depends on the width of the screen and the number of lanes, never on the number of events.
// Elements are pooled and reused from frame to frame.
//
// Keyboard: the chart is one tab stop; the arrow keys move between marks (roving focus), Enter
// opens an event or zooms into a cluster, + and - zoom, Shift+arrows and Page Up/Down pan,
// 0 shows the whole period. Mouse: wheel zooms around the pointer, drag pans, double click zooms
// in. Touch: drag pans, pinch zooms.
"use strict";

const DrawnTimeline = (() => {
  const SVG = "http://www.w3.org/2000/svg";
  const DAY = 86400000;
  const AXIS_H = 30;
  const BAND_H = 24;
  const LANE_H = 32;
  const SPAN_Y = 5; // the thin row of spans (month and year precision, periods) in a lane
  const SPAN_H = 6;
  const POINT_Y = 14;
  const POINT_H = 14;
  const MIN_W = 8; // the narrowest mark, in pixels
  const CLUSTER_W = 22; // the narrowest cluster: room for its count
  const GAP = 2; // marks closer than this merge into a cluster
  const MAX_LANES = 24;
  const MIN_SPAN = DAY; // the deepest zoom: one day across the chart
  const TICKS = [
    [DAY, "day", 1], [2 * DAY, "day", 2], [7 * DAY, "week", 1], [30 * DAY, "month", 1],
    [91 * DAY, "month", 3], [182 * DAY, "month", 6], [365 * DAY, "year", 1], [730 * DAY, "year", 2],
    [1826 * DAY, "year", 5], [3652 * DAY, "year", 10], [7305 * DAY, "year", 20],
  ];
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

  function el(name, attrs = {}, parent = null) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
    if (parent) parent.append(node);
    return node;
  }

  function html(name, attrs = {}, text = "") {
    const node = document.createElement(name);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
    if (text) node.textContent = text;
    return node;
  }

  function utc(iso) {
    return Date.parse(`${iso}T00:00:00Z`);
  }

  // The time an event covers, from its date and precision: a month-precision event is the
  // whole month, a year-precision one the whole year; with an end date, up to that day.
  function span(doc) {
    const start = utc(doc.date);
    const d = new Date(start);
    let end;
    if (doc.end_date) end = utc(doc.end_date) + DAY;
    else if (doc.date_precision === "year") end = Date.UTC(d.getUTCFullYear() + 1, 0, 1);
    else if (doc.date_precision === "month") end = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
    else end = start + DAY;
    return [start, end, Boolean(doc.end_date) || doc.date_precision !== "day"];
  }

  function isoDay(ms) {
    return new Date(ms).toISOString().slice(0, 10);
  }

  function shortDate(ms, unit) {
    const d = new Date(ms);
    if (unit === "year") return String(d.getUTCFullYear());
    if (unit === "month") return `${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()}`;
    return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()}`;
  }

  // Tick positions aligned on days, Mondays, months or years.
  function ticks(t0, t1, width) {
    const msPerPx = (t1 - t0) / Math.max(width, 1);
    const [, unit, step] = TICKS.find(([ms]) => ms / msPerPx >= 90) || TICKS[TICKS.length - 1];
    const out = [];
    const d = new Date(t0);
    let t;
    if (unit === "year") {
      const y = Math.floor(d.getUTCFullYear() / step) * step;
      for (let year = y; (t = Date.UTC(year, 0, 1)) <= t1; year += step) out.push(t);
    } else if (unit === "month") {
      let m = d.getUTCFullYear() * 12 + Math.floor(d.getUTCMonth() / step) * step;
      for (; (t = Date.UTC(Math.floor(m / 12), m % 12, 1)) <= t1; m += step) out.push(t);
    } else {
      let start = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
      if (unit === "week") start -= ((new Date(start).getUTCDay() + 6) % 7) * DAY;
      const every = unit === "week" ? 7 * DAY : step * DAY;
      for (t = start; t <= t1; t += every) out.push(t);
    }
    return { unit: unit === "week" ? "day" : unit, at: out.filter((x) => x >= t0 - 1) };
  }

  // An element pool: the i-th call of `take` reuses the i-th element made so far.
  function pool(parent, make) {
    const items = [];
    let used = 0;
    return {
      take() {
        if (used === items.length) items.push(make(parent));
        const node = items[used];
        used += 1;
        node.removeAttribute("display");
        return node;
      },
      end() {
        for (let i = used; i < items.length; i += 1) items[i].setAttribute("display", "none");
        used = 0;
      },
      get items() { return items; },
    };
  }

  function create(root, options) {
    const opts = {
      onSelect: () => {},
      onView: () => {},
      onLanes: () => {},
      eventLabel: (doc) => `${doc.date}: ${doc.title}`,
      actorName: (p) => p.state || p.organisation || p.group,
      lanes: "state",
      ...options,
    };
    const docs = new Map();
    let items = []; // [{ id, doc, start, end, span, kind }]
    let lanes = []; // [{ key, label, items: sorted by start, maxLength }]
    let extent = null; // [first, last] over every event
    let t0 = 0;
    let t1 = 1;
    let band = null; // { label, periods: [{ start, end, cls, text }] }
    let crises = [];
    let selected = "";
    let activeFirst = ""; // the first event id of the mark with keyboard focus
    let laneMode = opts.lanes === "pair" ? "pair" : "state";
    let frame = 0;
    let width = 0;
    let rendered = { marks: 0, clusters: 0 };
    let viewTimer = 0;
    const renderTimes = []; // milliseconds of each render, for the browser test's frame times

    // --- the DOM ------------------------------------------------------------------------------
    root.classList.add("dt");
    root.replaceChildren();
    const toolbar = html("div", { class: "dt-toolbar", role: "toolbar", "aria-label": "Timeline controls" });
    const button = (label, text, action, extra = {}) => {
      const b = html("button", { type: "button", class: "secondary", "aria-label": label, title: label, ...extra }, text);
      b.addEventListener("click", action);
      toolbar.append(b);
      return b;
    };
    button("Zoom in", "+", () => zoomBy(0.5));
    button("Zoom out", "−", () => zoomBy(2));
    button("Earlier", "←", () => panBy(-0.5));
    button("Later", "→", () => panBy(0.5));
    button("Show the whole period", "Whole period", () => fit());
    const lanesGroup = html("fieldset", { class: "dt-lanes-switch" });
    lanesGroup.append(html("legend", {}, "Lanes"));
    const laneInputs = {};
    const radioName = `dt-lanes-${Math.random().toString(36).slice(2)}`;
    for (const [value, text] of [["state", "one per state"], ["pair", "initiator → target"]]) {
      const label = html("label");
      const input = html("input", { type: "radio", name: radioName, value });
      input.addEventListener("change", () => { if (input.checked) setLanes(value, { notify: true }); });
      laneInputs[value] = input;
      label.append(input, ` ${text}`);
      lanesGroup.append(label);
    }
    toolbar.append(lanesGroup);
    const range = html("p", { class: "dt-range", "aria-live": "polite" });
    const keysId = `dt-keys-${Math.random().toString(36).slice(2)}`;
    const chart = html("div", {
      class: "dt-chart", tabindex: "0", role: "group", "aria-roledescription": "timeline",
      "aria-label": "Drawn timeline", "aria-describedby": keysId,
    });
    const keys = html("p", { class: "hint dt-keys", id: keysId },
      "Keys: arrows move between events and lanes, Enter opens an event or zooms into a group, "
      + "+ and − zoom, Shift with an arrow or Page Up and Page Down move in time, 0 shows the whole period.");
    const empty = html("p", { class: "hint dt-empty", hidden: "" });
    root.append(toolbar, range, chart, empty, keys);

    const svg = el("svg", { class: "dt-svg", "aria-hidden": "false" }, chart);
    const defs = el("defs", {}, svg);
    const hatchId = `dt-hatch-${Math.random().toString(36).slice(2)}`;
    const hatch = el("pattern", { id: hatchId, width: 8, height: 8, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" }, defs);
    el("rect", { width: 8, height: 8, fill: "#e4e4e4" }, hatch);
    el("rect", { width: 4, height: 8, fill: "#b9b9b9" }, hatch);
    const clipId = `dt-clip-${Math.random().toString(36).slice(2)}`;
    const clipRect = el("rect", { x: 0, y: 0, width: 1, height: 1 }, el("clipPath", { id: clipId }, defs));
    const crisesG = el("g", { class: "dt-crises", "aria-hidden": "true", "clip-path": `url(#${clipId})` }, svg);
    const gridG = el("g", { class: "dt-grid", "aria-hidden": "true" }, svg);
    const axisG = el("g", { class: "dt-axis", "aria-hidden": "true" }, svg);
    const bandG = el("g", { class: "dt-band", role: "img" }, svg);
    const bandLabel = el("text", { class: "dt-band-label", x: 4, y: AXIS_H + 16 }, bandG);
    const bandClip = el("g", { "clip-path": `url(#${clipId})` }, bandG);
    const lanesG = el("g", { class: "dt-lanes" }, svg);

    const tickPool = pool(axisG, (parent) => el("text", { class: "dt-tick", y: 18 }, parent));
    const gridPool = pool(gridG, (parent) => el("line", { class: "dt-gridline" }, parent));
    const bandPool = pool(bandClip, (parent) => el("rect", { class: "dt-period", height: BAND_H - 8 }, parent));
    const crisisPool = pool(crisesG, (parent) => {
      const g = el("g", {}, parent);
      el("rect", { class: "dt-crisis", y: 0 }, g);
      el("text", { class: "dt-crisis-label", y: AXIS_H + BAND_H + 12 }, g);
      return g;
    });
    // Lanes are made when the events change; each keeps a pool of marks.
    let laneNodes = [];

    // --- scale and layout ---------------------------------------------------------------------
    const gutter = () => (width < 560 ? 84 : 150);
    const plotWidth = () => Math.max(width - gutter() - 8, 50);
    const x = (t) => gutter() + ((t - t0) / (t1 - t0)) * plotWidth();
    const time = (px) => t0 + ((px - gutter()) / plotWidth()) * (t1 - t0);

    function clampWindow(start, end) {
      let length = Math.max(end - start, MIN_SPAN);
      if (!extent) return [start, start + length];
      const [first, last] = extent;
      const whole = last - first;
      const max = Math.max(whole * 1.2, 30 * DAY);
      length = Math.min(length, max);
      const pad = Math.max(length * 0.1, DAY);
      let s = start;
      if (end - start !== length) s = (start + end) / 2 - length / 2;
      s = Math.min(Math.max(s, first - pad - Math.max(length - whole, 0)), last + pad - length);
      return [s, s + length];
    }

    function setWindow(start, end, { notify = true } = {}) {
      [t0, t1] = clampWindow(start, end);
      schedule();
      if (notify) {
        clearTimeout(viewTimer);
        viewTimer = setTimeout(() => opts.onView(view()), 250);
      }
    }

    function zoomBy(factor, at = null) {
      const centre = at ?? focusTime() ?? (t0 + t1) / 2;
      const ratio = (centre - t0) / (t1 - t0);
      const length = (t1 - t0) * factor;
      setWindow(centre - ratio * length, centre - ratio * length + length);
    }

    function panBy(fraction) {
      const shift = (t1 - t0) * fraction;
      setWindow(t0 + shift, t1 + shift);
    }

    function fit({ notify = true } = {}) {
      if (!extent) return;
      const [first, last] = extent;
      const pad = Math.max((last - first) * 0.02, DAY);
      setWindow(first - pad, last + pad, { notify });
    }

    function view() {
      const whole = !extent || (t0 <= extent[0] && t1 >= extent[1]);
      return { start: t0, end: t1, whole, zoom: whole ? "" : `${isoDay(t0)}..${isoDay(t1 - 1)}` };
    }

    // --- events and lanes ---------------------------------------------------------------------
    function laneKeys(doc) {
      const parts = doc.participants || [];
      const name = (p) => p.state || p.organisation || p.group || "?";
      if (laneMode === "state") {
        const states = [...new Set(parts.filter((p) => p.state).map((p) => p.state))];
        const keys = states.length ? states : [...new Set(parts.map(name))];
        return keys.length ? keys : ["?"];
      }
      const initiators = [...new Set(parts.filter((p) => p.role === "initiator" || p.role === "alleged_initiator").map(name))];
      const targets = [...new Set(parts.filter((p) => p.role === "target").map(name))];
      if (initiators.length && targets.length) {
        return initiators.flatMap((a) => targets.filter((b) => b !== a).map((b) => `${a}→${b}`));
      }
      return [[...new Set(parts.map(name))].sort().join(", ") || "?"];
    }

    function laneLabel(key) {
      const actor = (code) => opts.actorName({ state: code, organisation: code, group: code });
      if (key === "*") return "Other lanes";
      if (key.includes("→")) return key.split("→").map(actor).join(" → ");
      return key.split(", ").map(actor).join(", ");
    }

    function rebuild() {
      items = [...docs.values()].map((doc) => {
        const [start, end, isSpan] = span(doc);
        return { id: doc.id, doc, start, end, span: isSpan, kind: doc.kind };
      });
      items.sort((a, b) => a.start - b.start || (a.id < b.id ? -1 : 1));
      extent = items.length ? [items[0].start, Math.max(...items.map((i) => i.end))] : null;
      const byKey = new Map();
      for (const item of items) {
        for (const key of laneKeys(item.doc)) {
          if (!byKey.has(key)) byKey.set(key, []);
          byKey.get(key).push(item);
        }
      }
      let ordered = [...byKey].sort((a, b) => b[1].length - a[1].length || (a[0] < b[0] ? -1 : 1));
      if (ordered.length > MAX_LANES) {
        const rest = ordered.slice(MAX_LANES - 1);
        const merged = [...new Set(rest.flatMap(([, list]) => list))].sort((a, b) => a.start - b.start);
        ordered = [...ordered.slice(0, MAX_LANES - 1), ["*", merged, rest.length]];
      }
      lanes = ordered.map(([key, list, merged]) => ({
        key,
        label: key === "*" ? `${merged} other lanes` : laneLabel(key),
        items: list,
        maxLength: Math.max(0, ...list.map((i) => i.end - i.start)),
      }));
      crises = crisisPeriods(items);
      layoutLanes();
    }

    // Each `…-crisis` tag shaded from its first event to the end of its last, among the events
    // shown (as the TimelineJS export's eras).
    function crisisPeriods(list) {
      const byTag = new Map();
      for (const item of list) {
        for (const tag of item.doc.tags || []) {
          if (!tag.endsWith("-crisis")) continue;
          const period = byTag.get(tag) || { tag, start: item.start, end: item.end };
          period.start = Math.min(period.start, item.start);
          period.end = Math.max(period.end, item.end);
          byTag.set(tag, period);
        }
      }
      return [...byTag.values()].map((p) => {
        const words = p.tag.replaceAll("-", " ");
        return { ...p, label: words.charAt(0).toUpperCase() + words.slice(1) };
      });
    }

    function layoutLanes() {
      lanesG.replaceChildren();
      laneNodes = lanes.map((lane, index) => {
        const y = AXIS_H + BAND_H + index * LANE_H;
        const g = el("g", { class: "dt-lane", role: "group", "aria-label": `${lane.label}: ${lane.items.length} event${lane.items.length === 1 ? "" : "s"}`, "data-lane": lane.key }, lanesG);
        el("rect", { class: index % 2 ? "dt-lane-bg odd" : "dt-lane-bg", x: 0, y, height: LANE_H }, g);
        const label = el("text", { class: "dt-lane-label", x: 4, y: y + 20, "aria-hidden": "true" }, g);
        label.textContent = lane.label;
        const marks = el("g", { "clip-path": `url(#${clipId})` }, g);
        // Titles beside marks are outside them: a mark's name is its full label, and the
        // visible, shortened title is decoration for sighted readers.
        const titles = el("g", { "clip-path": `url(#${clipId})`, "aria-hidden": "true" }, g);
        return { lane, g, y, marks: pool(marks, makeMark), titles: pool(titles, (parent) => el("text", { class: "dt-title" }, parent)) };
      });
      const height = AXIS_H + BAND_H + Math.max(lanes.length, 1) * LANE_H + 4;
      svg.setAttribute("height", height);
      crisisPool.items.forEach((g) => g.firstChild.setAttribute("height", height));
      chart.dataset.lanes = String(lanes.length);
    }

    function makeMark(parent) {
      const g = el("g", { class: "dt-mark", tabindex: "-1", role: "button" }, parent);
      el("rect", { rx: 3, ry: 3 }, g);
      el("text", { class: "dt-count" }, g);
      return g;
    }

    // --- rendering ----------------------------------------------------------------------------
    function schedule() {
      if (!frame) frame = requestAnimationFrame(render);
    }

    function firstVisible(list, from, maxLength) {
      let lo = 0;
      let hi = list.length;
      const after = from - maxLength;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (list[mid].start < after) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    }

    // The marks of one lane in the window: spans and day events in their own rows, each row's
    // overlapping marks merged into clusters.
    function groups(lane) {
      const out = [];
      const open = { true: null, false: null };
      const left = gutter();
      const right = gutter() + plotWidth();
      for (let i = firstVisible(lane.items, t0, lane.maxLength); i < lane.items.length; i += 1) {
        const item = lane.items[i];
        if (item.start > t1) break;
        if (item.end < t0) continue;
        const x0 = x(item.start);
        const x1 = Math.max(x(item.end), x0 + MIN_W);
        const row = item.span;
        const current = open[row];
        if (current && x0 < current.x1 + GAP) {
          current.items.push(item);
          current.x1 = Math.max(current.x1, x1, current.x0 + CLUSTER_W);
        } else {
          const group = { x0, x1, items: [item], span: row };
          out.push(group);
          open[row] = group;
        }
      }
      for (const group of out) {
        group.x0 = Math.max(group.x0, left - 2);
        group.x1 = Math.min(group.x1, right + 2);
      }
      return out;
    }

    function render() {
      frame = 0;
      width = chart.clientWidth;
      if (!width) return;
      const began = performance.now();
      const plotLeft = gutter();
      const plotRight = plotLeft + plotWidth();
      const height = Number(svg.getAttribute("height")) || 100;
      svg.setAttribute("width", width);
      svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
      clipRect.setAttribute("x", plotLeft);
      clipRect.setAttribute("width", plotRight - plotLeft);
      clipRect.setAttribute("height", height);

      const { unit, at } = ticks(t0, t1, plotRight - plotLeft);
      for (const t of at) {
        const px = x(t);
        if (px < plotLeft - 1 || px > plotRight) continue;
        const line = gridPool.take();
        line.setAttribute("x1", px);
        line.setAttribute("x2", px);
        line.setAttribute("y1", 22);
        line.setAttribute("y2", height);
        const label = tickPool.take();
        label.setAttribute("x", px + 3);
        label.textContent = shortDate(t, unit);
      }
      gridPool.end();
      tickPool.end();

      for (const crisis of crises) {
        if (crisis.end < t0 || crisis.start > t1) continue;
        const g = crisisPool.take();
        const x0 = Math.max(x(crisis.start), plotLeft - 2);
        const x1 = Math.min(x(crisis.end), plotRight + 2);
        g.firstChild.setAttribute("x", x0);
        g.firstChild.setAttribute("width", Math.max(x1 - x0, 2));
        g.firstChild.setAttribute("height", height);
        g.lastChild.setAttribute("x", x0 + 3);
        g.lastChild.textContent = x1 - x0 > 60 ? crisis.label : "";
      }
      crisisPool.end();

      if (band) {
        for (const period of band.periods) {
          const end = period.end ?? Date.now();
          if (end < t0 || period.start > t1) continue;
          const rect = bandPool.take();
          const x0 = Math.max(x(period.start), plotLeft - 2);
          rect.setAttribute("x", x0);
          rect.setAttribute("y", AXIS_H + 2);
          rect.setAttribute("width", Math.max(Math.min(x(end), plotRight + 2) - x0, 1));
          rect.setAttribute("class", `dt-period status-${period.cls}`);
          if (period.cls === "unknown") rect.setAttribute("fill", `url(#${hatchId})`);
          else rect.removeAttribute("fill");
        }
      }
      bandPool.end();

      let marks = 0;
      let clusters = 0;
      const focused = chart.contains(document.activeElement) && document.activeElement !== chart;
      let refocus = null;
      for (const node of laneNodes) {
        const list = groups(node.lane);
        for (let i = 0; i < list.length; i += 1) {
          const group = list[i];
          const g = node.marks.take();
          const [rect, count] = g.childNodes;
          const one = group.items.length === 1;
          const first = group.items[0];
          const top = node.y + (group.span ? SPAN_Y : POINT_Y);
          const h = group.span ? SPAN_H : POINT_H;
          const w = Math.max(group.x1 - group.x0, one ? MIN_W : CLUSTER_W);
          rect.setAttribute("x", group.x0);
          rect.setAttribute("y", top);
          rect.setAttribute("width", w);
          rect.setAttribute("height", h);
          const isSelected = selected !== "" && group.items.some((item) => item.id === selected);
          // Names and classes change only when the mark shows another group: most frames of a
          // zoom or a pan move marks without regrouping them.
          const identity = `${first.id}|${group.items.length}|${group.span}|${isSelected}`;
          if (g.identity !== identity) {
            g.identity = identity;
            let kindClass = `kind-${first.kind}`;
            for (const item of group.items) if (item.kind !== first.kind) { kindClass = "kind-mixed"; break; }
            g.setAttribute("class", `dt-mark ${one ? "dt-event" : "dt-cluster"} ${kindClass}${group.span ? " dt-span" : ""}${isSelected ? " selected" : ""}`);
            g.dataset.first = first.id;
            g.dataset.ids = one ? first.id : "";
            g.dataset.count = String(group.items.length);
            if (one) {
              first.label = first.label || opts.eventLabel(first.doc);
              g.setAttribute("aria-label", first.label);
              g.setAttribute("aria-pressed", String(isSelected));
              count.textContent = "";
            } else {
              const last = group.items.reduce((a, b) => (b.end > a.end ? b : a));
              g.setAttribute("aria-label", `${group.items.length} events from ${shortDate(first.start, "day")} to ${shortDate(last.end - DAY, "day")} in ${node.lane.label}: Enter zooms in`);
              g.removeAttribute("aria-pressed");
              // A span cluster is too thin for its count: the label tells it.
              count.textContent = group.span ? "" : String(group.items.length);
            }
          }
          if (one) marks += 1;
          else {
            clusters += 1;
            count.setAttribute("x", group.x0 + w / 2);
            count.setAttribute("y", top + 11);
          }
          // The title beside a lone day event, where the next mark leaves room for it.
          const room = (i + 1 < list.length ? list[i + 1].x0 : plotRight) - (group.x0 + w) - 8;
          if (one && !group.span && room > 60) {
            const title = node.titles.take();
            title.textContent = fitText(first.doc.title, room);
            title.setAttribute("x", group.x0 + w + 4);
            title.setAttribute("y", top + 11);
          }
          if (focused && activeFirst && group.items.some((item) => item.id === activeFirst) && !refocus) refocus = g;
        }
        node.marks.end();
        node.titles.end();
      }
      rendered = { marks, clusters };
      chart.dataset.marks = String(marks);
      chart.dataset.clusters = String(clusters);
      chart.dataset.start = isoDay(t0);
      chart.dataset.end = isoDay(t1 - 1);
      range.textContent = extent ? `${shortDate(t0, "day")} – ${shortDate(t1 - 1, "day")}` : "";
      bandLabel.textContent = band ? fitText(band.short, plotLeft - 8) : "";
      renderTimes.push(performance.now() - began);
      if (renderTimes.length > 2000) renderTimes.splice(0, 1000);
      if (focused) {
        if (refocus && document.activeElement !== refocus) setFocus(refocus);
        else if (!refocus && document.activeElement !== chart && !document.activeElement.isConnected) chart.focus({ preventScroll: true });
      }
    }

    function fitText(text, px) {
      const chars = Math.floor(px / 6.6);
      return text.length > chars ? `${text.slice(0, chars - 1)}…` : text;
    }

    // --- focus and keys -----------------------------------------------------------------------
    function visibleMarks(laneIndex) {
      return laneNodes[laneIndex].marks.items.filter((g) => g.getAttribute("display") !== "none");
    }

    function markLane(g) {
      return laneNodes.findIndex((node) => node.g.contains(g));
    }

    function setFocus(g) {
      for (const node of laneNodes) for (const m of node.marks.items) m.setAttribute("tabindex", "-1");
      g.setAttribute("tabindex", "0");
      activeFirst = g.dataset.first;
      g.focus({ preventScroll: true });
      // Chrome does not scroll an SVG element into view by itself.
      const box = g.getBoundingClientRect();
      if (box.bottom > window.innerHeight || box.top < 0) g.scrollIntoView({ block: "nearest" });
    }

    function focusTime() {
      const g = document.activeElement;
      if (!g || !g.classList || !g.classList.contains("dt-mark") || !chart.contains(g)) return null;
      const rect = g.firstChild;
      return time(Number(rect.getAttribute("x")) + Number(rect.getAttribute("width")) / 2);
    }

    function itemsOf(g) {
      const laneIndex = markLane(g);
      if (laneIndex < 0) return [];
      const list = groups(laneNodes[laneIndex].lane);
      const group = list.find((grp) => grp.items[0].id === g.dataset.first);
      return group ? group.items : [];
    }

    function activate(g) {
      const members = itemsOf(g);
      if (!members.length) return;
      if (members.length === 1) {
        select(members[0].id);
        opts.onSelect(members[0].id);
        return;
      }
      const start = Math.min(...members.map((m) => m.start));
      const end = Math.max(...members.map((m) => m.end));
      const pad = Math.max((end - start) * 0.15, DAY / 2);
      activeFirst = members[0].id;
      setWindow(start - pad, end + pad);
    }

    // Step to the next mark of a lane, beyond the window if need be (the window follows).
    function step(laneIndex, direction, from) {
      const marks = visibleMarks(laneIndex);
      const index = marks.indexOf(from);
      const next = marks[index + direction];
      if (next) { setFocus(next); return; }
      const lane = laneNodes[laneIndex].lane;
      const members = from ? itemsOf(from) : [];
      const edge = direction > 0 ? Math.max(...members.map((m) => m.start), t1) : Math.min(...members.map((m) => m.start), t0);
      const target = direction > 0
        ? lane.items.find((item) => item.start > edge && !members.includes(item))
        : [...lane.items].reverse().find((item) => item.start < edge && !members.includes(item));
      if (!target) return;
      const length = t1 - t0;
      activeFirst = target.id;
      const start = direction > 0 ? target.start - length * 0.8 : target.start - length * 0.2;
      setWindow(start, start + length);
      focusLaterOn(target.id, laneIndex);
    }

    // After the next frame: the mark holding this event, once it is drawn.
    function focusLaterOn(id, laneIndex) {
      requestAnimationFrame(() => requestAnimationFrame(() => {
        const g = visibleMarks(laneIndex).find((m) => itemsOf(m).some((item) => item.id === id));
        if (g) setFocus(g);
      }));
    }

    function nearestIn(laneIndex, px) {
      let best = null;
      let distance = Infinity;
      for (const g of visibleMarks(laneIndex)) {
        const rect = g.firstChild;
        const d = Math.abs(Number(rect.getAttribute("x")) - px);
        if (d < distance) { best = g; distance = d; }
      }
      return best;
    }

    chart.addEventListener("keydown", (event) => {
      if (event.altKey || event.ctrlKey || event.metaKey) return;
      const current = document.activeElement && document.activeElement.classList && document.activeElement.classList.contains("dt-mark") ? document.activeElement : null;
      const laneIndex = current ? markLane(current) : 0;
      let handled = true;
      switch (event.key) {
        case "ArrowRight":
        case "ArrowLeft": {
          const direction = event.key === "ArrowRight" ? 1 : -1;
          if (event.shiftKey) panBy(direction * 0.25);
          else if (!laneNodes.length) handled = false;
          else if (!current) { const first = visibleMarks(0)[0]; if (first) setFocus(first); else step(0, 1, null); }
          else step(laneIndex, direction, current);
          break;
        }
        case "ArrowUp":
        case "ArrowDown": {
          if (!laneNodes.length) { handled = false; break; }
          const direction = event.key === "ArrowDown" ? 1 : -1;
          const px = current ? Number(current.firstChild.getAttribute("x")) : gutter();
          for (let i = (current ? laneIndex : -1) + direction; i >= 0 && i < laneNodes.length; i += direction) {
            const g = nearestIn(i, px);
            if (g) { setFocus(g); break; }
          }
          break;
        }
        case "Home":
        case "End":
          if (laneNodes.length) {
            const lane = laneNodes[laneIndex].lane;
            const target = event.key === "Home" ? lane.items[0] : lane.items[lane.items.length - 1];
            const length = t1 - t0;
            const start = event.key === "Home" ? target.start - length * 0.1 : target.end - length * 0.9;
            setWindow(start, start + length);
            focusLaterOn(target.id, laneIndex);
          }
          break;
        case "PageUp":
        case "PageDown":
          panBy(event.key === "PageDown" ? 0.9 : -0.9);
          break;
        case "+":
        case "=":
          zoomBy(0.5);
          break;
        case "-":
        case "_":
          zoomBy(2);
          break;
        case "0":
          fit();
          break;
        case "Enter":
        case " ":
          if (current) activate(current);
          else handled = false;
          break;
        case "Escape":
          if (current) chart.focus();
          else handled = false;
          break;
        default:
          handled = false;
      }
      if (handled) event.preventDefault();
    });

    // --- pointer: wheel, drag, pinch, click ---------------------------------------------------
    chart.addEventListener("wheel", (event) => {
      if (!extent) return;
      event.preventDefault();
      const unit = event.deltaMode === 1 ? 16 : event.deltaMode === 2 ? 400 : 1;
      const box = chart.getBoundingClientRect();
      if (Math.abs(event.deltaX) > Math.abs(event.deltaY) || event.shiftKey) {
        const delta = (Math.abs(event.deltaX) > Math.abs(event.deltaY) ? event.deltaX : event.deltaY) * unit;
        panBy(delta / plotWidth());
      } else {
        zoomBy(Math.exp(event.deltaY * unit * 0.002), time(event.clientX - box.left));
      }
    }, { passive: false });

    const pointers = new Map();
    let drag = null;
    chart.addEventListener("pointerdown", (event) => {
      if (event.button !== 0 || !extent) return;
      pointers.set(event.pointerId, { x: event.clientX, y: event.clientY });
      chart.setPointerCapture(event.pointerId);
      const mark = event.target.closest ? event.target.closest(".dt-mark") : null;
      drag = { startX: event.clientX, t0, t1, moved: false, mark: pointers.size === 1 ? mark : null, pinch: null };
      if (pointers.size === 2) {
        const [a, b] = [...pointers.values()];
        drag.pinch = { distance: Math.abs(a.x - b.x) || 1, t0, t1, centre: time((a.x + b.x) / 2 - chart.getBoundingClientRect().left) };
      }
    });
    chart.addEventListener("pointermove", (event) => {
      if (!drag || !pointers.has(event.pointerId)) return;
      pointers.set(event.pointerId, { x: event.clientX, y: event.clientY });
      if (drag.pinch && pointers.size === 2) {
        const [a, b] = [...pointers.values()];
        const factor = drag.pinch.distance / (Math.abs(a.x - b.x) || 1);
        const { centre } = drag.pinch;
        const ratio = (centre - drag.pinch.t0) / (drag.pinch.t1 - drag.pinch.t0);
        const length = (drag.pinch.t1 - drag.pinch.t0) * factor;
        drag.moved = true;
        setWindow(centre - ratio * length, centre - ratio * length + length);
        return;
      }
      const dx = event.clientX - drag.startX;
      if (Math.abs(dx) > 3) drag.moved = true;
      if (drag.moved) {
        const shift = (-dx / plotWidth()) * (drag.t1 - drag.t0);
        setWindow(drag.t0 + shift, drag.t1 + shift);
      }
    });
    const release = (event) => {
      if (!pointers.has(event.pointerId)) return;
      pointers.delete(event.pointerId);
      if (chart.hasPointerCapture(event.pointerId)) chart.releasePointerCapture(event.pointerId);
      if (drag && !drag.moved && drag.mark && event.type === "pointerup") {
        setFocus(drag.mark);
        activate(drag.mark);
      }
      if (!pointers.size) drag = null;
    };
    chart.addEventListener("pointerup", release);
    chart.addEventListener("pointercancel", release);
    chart.addEventListener("dblclick", (event) => {
      if (!extent || (event.target.closest && event.target.closest(".dt-mark"))) return;
      zoomBy(0.5, time(event.clientX - chart.getBoundingClientRect().left));
    });

    new ResizeObserver(() => schedule()).observe(chart);

    // --- the public side ----------------------------------------------------------------------
    function showEmpty() {
      empty.hidden = docs.size > 0;
      chart.hidden = docs.size === 0;
    }

    function setEvents(list, { zoom = "" } = {}) {
      docs.clear();
      for (const doc of list) docs.set(doc.id, doc);
      rebuild();
      showEmpty();
      const [from, to] = zoom.split("..");
      if (extent && from && to && !Number.isNaN(utc(from)) && !Number.isNaN(utc(to))) setWindow(utc(from), utc(to) + DAY, { notify: false });
      else fit({ notify: false });
      schedule();
    }

    // One event inserted or replaced by its new document (a live update), keeping the window.
    function upsert(doc) {
      const had = Boolean(extent);
      docs.set(doc.id, doc);
      rebuild();
      showEmpty();
      if (!had) fit({ notify: false });
      schedule();
    }

    function remove(id) {
      if (!docs.delete(id)) return;
      rebuild();
      showEmpty();
      schedule();
    }

    function select(id) {
      selected = id || "";
      schedule();
    }

    function setLanes(mode, { notify = false } = {}) {
      laneMode = mode === "pair" ? "pair" : "state";
      laneInputs[laneMode].checked = true;
      rebuild();
      schedule();
      if (notify) opts.onLanes(laneMode === "state" ? "" : laneMode);
    }

    // The relation status band: { label, short, periods: [{ start_on, end_on, cls, text }] }.
    function setBand(value) {
      if (!value) {
        band = null;
        bandG.removeAttribute("aria-label");
      } else {
        band = {
          ...value,
          periods: value.periods.map((p) => ({ ...p, start: utc(p.start_on), end: p.end_on ? utc(p.end_on) : null })),
        };
        bandG.setAttribute("aria-label", value.label);
      }
      schedule();
    }

    function setEmptyText(text) {
      empty.textContent = text;
    }

    setLanes(laneMode);
    showEmpty();
    return {
      setEvents, upsert, remove, select, setLanes, setBand, setEmptyText, setWindow, zoomBy, panBy, fit, view,
      has: (id) => docs.has(id),
      get size() { return docs.size; },
      get rendered() { return rendered; },
      get renderTimes() { return renderTimes; },
      get scale() { return { start: t0, end: t1, left: gutter(), width: plotWidth() }; },
      get laneMode() { return laneMode; },
      get lanes() { return lanes.map((lane) => ({ key: lane.key, label: lane.label, count: lane.items.length })); },
      get crises() { return crises.map(({ tag, start, end, label }) => ({ tag, label, start: isoDay(start), end: isoDay(end - 1) })); },
      element: chart,
    };
  }

  return { create, span };
})();

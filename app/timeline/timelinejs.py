"""The timeline as Knight Lab TimelineJS JSON (https://timeline.knightlab.com/docs/json-format.html).

TimelineJS tells stories; it is not made for thousands of slides, so the export is capped at
`MAX_EVENTS` and built whole (not streamed). One event becomes one slide whose `unique_id` is our
event id; the eras are the membership periods of the one organisation the query names, or else
the named crises (tags ending in `-crisis`) of the events.
"""

import datetime as dt
import html
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.errors import InvalidParameter
from app.models import Membership, Organisation
from app.organisations.service import membership_read
from app.timeline import service
from app.timeline.formats import ATTRIBUTION
from app.timeline.schemas import TIMELINEJS_MAX_EVENTS, GroupBy, TimelineQuery
from app.vocabulary import MEMBER_STATUSES, MembershipEnd

# The cap, documented in the `format` parameter of /v1/timeline (OpenAPI).
MAX_EVENTS = TIMELINEJS_MAX_EVENTS
CRISIS_SUFFIX = "-crisis"


def _json_safe(value: Any) -> Any:
    # The renderer sees what the JSON API serves: ISO strings, not Python dates.
    return orjson.loads(orjson.dumps(value))


# --- reading -----------------------------------------------------------------------------------


def matching_events(session: Session, query: TimelineQuery) -> list[dict[str, Any]]:
    """Every event of the query, or InvalidParameter (on `format`) when there are more than
    MAX_EVENTS: reading stops at the first batch past the cap."""
    docs: list[dict[str, Any]] = []
    for batch in service.export(session, query):
        docs.extend(batch)
        if len(docs) > MAX_EVENTS:
            raise InvalidParameter(
                ["query", "format"],
                f"timelinejs is capped at {MAX_EVENTS} events (TimelineJS is made for stories,"
                f" not for thousands of slides) and this query matches more than {MAX_EVENTS};"
                " narrow the filters (from, to, state, between, category, tag, q) or use"
                " format=csv or format=ndjson for the whole set",
            )
    return list(_json_safe(docs))


def organisation_memberships(session: Session, code: str) -> list[dict[str, Any]]:
    """The membership periods (any status) of one organisation, as the API serves them."""
    rows = session.scalars(
        select(Membership)
        .join(Organisation, Organisation.id == Membership.organisation_id)
        .where(Organisation.code == code, Membership.deleted_at.is_(None))
        .options(
            selectinload(Membership.organisation),
            selectinload(Membership.state),
            selectinload(Membership.sources),
        )
        .order_by(Membership.start_on, Membership.id)
    )
    return list(_json_safe([membership_read(m) for m in rows]))


def build(
    session: Session,
    query: TimelineQuery,
    *,
    licence: str,
    base_url: str,
    query_string: str,
) -> dict[str, Any]:
    """The TimelineJS document of a query (InvalidParameter past the cap)."""
    docs = matching_events(session, query)
    memberships = None
    if len(query.organisation) == 1:
        memberships = organisation_memberships(session, query.organisation[0])
    # The title links to the same query as JSON, the form a reader can open and cite.
    params = [(k, v) for k, v in parse_qsl(query_string) if k not in {"format", "group_by"}]
    json_url = f"{base_url}/v1/timeline" + (f"?{urlencode(params)}" if params else "")
    return render(
        docs,
        description=describe(query),
        query_url=json_url,
        base_url=base_url,
        licence=licence,
        group_by=query.group_by,
        memberships=memberships,
    )


# --- rendering ---------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def date_object(iso: str, precision: str) -> dict[str, int]:
    """A TimelineJS date with only the parts the precision vouches for."""
    day = dt.date.fromisoformat(iso)
    if precision == "year":
        return {"year": day.year}
    if precision == "month":
        return {"year": day.year, "month": day.month}
    return {"year": day.year, "month": day.month, "day": day.day}


def _link(url: str, label: str) -> str:
    return f'<a href="{_e(url)}" target="_blank" rel="noopener">{_e(label)}</a>'


def _claimant(claim: dict[str, Any]) -> str:
    return str(next(iter(claim["claimant"].values())))


def _claims_html(claims: list[dict[str, Any]]) -> str:
    """Per topic, a table with one column per claimant, so the versions sit side by side."""
    topics: dict[str, list[dict[str, Any]]] = {}
    for claim in claims:
        topics.setdefault(claim["topic"], []).append(claim)
    parts = []
    for topic, topic_claims in topics.items():
        by_claimant: dict[str, list[dict[str, Any]]] = {}
        for claim in topic_claims:
            by_claimant.setdefault(_claimant(claim), []).append(claim)
        heads = "".join(f"<th>{_e(who)}</th>" for who in by_claimant)
        cells = []
        for who_claims in by_claimant.values():
            lines = []
            for c in who_claims:
                value = ""
                if c["value"] is not None:
                    amount = f"{c['value']:g} {(c['unit'] or '').replace('_', ' ')}".strip()
                    value = f" [{_e(amount)}]"
                made = f" ({_e(c['made_on'])})" if c.get("made_on") else ""
                sources = ", ".join(_link(s["url"], s["publisher"]) for s in c["sources"])
                cite = f" {sources}" if sources else ""
                lines.append(f"<p>{_e(c['statement'])}{value}{made}{cite}</p>")
            cells.append(f'<td style="vertical-align:top">{"".join(lines)}</td>')
        label = topic.replace("-", " ").replace("_", " ").capitalize()
        parts.append(
            f"<table><caption>{_e(label)}</caption>"
            f"<tr>{heads}</tr><tr>{''.join(cells)}</tr></table>"
        )
    return f"<p><strong>Claims, side by side</strong></p>{''.join(parts)}" if parts else ""


def _source_card(source: dict[str, Any]) -> dict[str, Any]:
    """The main source as a TimelineJS media item.

    TimelineJS 3.9 treats a URL it does not recognise as an image (`<img src=...>`), so an
    article's URL would show a broken image and make the reader's browser fetch the article; a
    blockquote card (rendered as sanitised HTML, fetching nothing) links to it instead.
    """
    host = (urlsplit(source["url"]).hostname or "").removeprefix("www.")
    name = source.get("title") or source["publisher"]
    return {
        "url": f"<blockquote><p>{_e(name)}, {_e(host)}</p></blockquote>",
        "caption": "Main source; every source is listed with the text",
        "credit": _e(source["publisher"]),
        "link": source["url"],
        "link_target": "_blank",
    }


def _end_object(doc: dict[str, Any]) -> dict[str, int] | None:
    """The end date, cut to the precision of the start: a month or a year never gains a day."""
    if not doc.get("end_date"):
        return None
    end = date_object(doc["end_date"], doc["date_precision"])
    return None if end == date_object(doc["date"], doc["date_precision"]) else end


def slide(doc: dict[str, Any], *, base_url: str, group_by: GroupBy) -> dict[str, Any]:
    sources = "".join(f"<li>{_link(s['url'], s['publisher'])}</li>" for s in doc["sources"])
    text = (
        f"<p>{_e(doc['summary'])}</p>"
        + (f"<p><strong>Sources</strong></p><ul>{sources}</ul>" if sources else "")
        + _claims_html(doc["claims"])
        + f"<p>{_link(base_url + doc['url'], 'Event record and citation')}</p>"
    )
    out: dict[str, Any] = {
        "unique_id": doc["id"],
        "start_date": date_object(doc["date"], doc["date_precision"]),
    }
    end = _end_object(doc)
    if end is not None:
        out["end_date"] = end
    out["text"] = {"headline": _e(doc["title"]), "text": text}
    # A row label for readers: `diplomatic_action` is shown as "diplomatic action".
    out["group"] = doc[group_by].replace("_", " ")
    if doc["sources"]:
        out["media"] = _source_card(doc["sources"][0])
    return out


def _span(docs: list[dict[str, Any]]) -> tuple[str, str] | None:
    if not docs:
        return None
    start = min(d["date"] for d in docs)
    end = max(d.get("end_date") or d["date"] for d in docs)
    return start, end


def crisis_eras(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One era per contiguous run (in date order) of events sharing a `…-crisis` tag."""
    ordered = sorted(docs, key=lambda d: (d["date"], d["id"]))
    runs: list[tuple[str, list[dict[str, Any]]]] = []
    open_runs: dict[str, list[dict[str, Any]]] = {}
    for doc in ordered:
        tags = {t for t in doc["tags"] if t.endswith(CRISIS_SUFFIX)}
        for tag in list(open_runs):
            if tag not in tags:
                del open_runs[tag]
        for tag in sorted(tags):
            if tag in open_runs:
                open_runs[tag].append(doc)
            else:
                open_runs[tag] = [doc]
                runs.append((tag, open_runs[tag]))
    eras = []
    counts: dict[str, int] = {}
    for tag, run in runs:
        counts[tag] = counts.get(tag, 0) + 1
        first = run[0]
        last = max(run, key=lambda d: d.get("end_date") or d["date"])
        if last.get("end_date"):
            end = date_object(last["end_date"], "day")
        else:
            end = date_object(last["date"], last["date_precision"])
        label = tag.replace("-", " ")
        eras.append(
            {
                "unique_id": f"era-{tag}-{counts[tag]}",
                "start_date": date_object(first["date"], first["date_precision"]),
                "end_date": end,
                "text": {"headline": _e(label[0].upper() + label[1:])},
            }
        )
    return eras


def membership_eras(
    memberships: list[dict[str, Any]], span: tuple[str, str] | None
) -> tuple[list[dict[str, Any]], list[str]]:
    """Each member state's membership periods clipped to the events' span, and the states
    whose membership ended at a date the data does not know (left out, not guessed)."""
    if span is None:
        return [], []
    first, last = span
    eras = []
    unknown: list[str] = []
    for m in memberships:
        if m["status"] not in MEMBER_STATUSES:
            continue
        if m["end"] == MembershipEnd.unknown.value:
            unknown.append(m["state_name"])
            continue
        ends_after = m["end"] == MembershipEnd.open.value or m["end_on"] > first
        if m["start_on"] > last or not ends_after:
            continue
        if m["start_on"] < first:
            start = date_object(first, "day")
        else:
            start = date_object(m["start_on"], m["start_precision"])
        if m["end"] == MembershipEnd.open.value or m["end_on"] > last:
            end = date_object(last, "day")
        else:
            end = date_object(m["end_on"], m["end_precision"] or "day")
        eras.append(
            {
                "unique_id": f"era-{m['organisation']}-{m['state']}-{m['start_on']}".lower(),
                "start_date": start,
                "end_date": end,
                "text": {"headline": _e(f"{m['state_name']} in {m['organisation']}")},
            }
        )
    return eras, sorted(set(unknown))


def describe(query: TimelineQuery) -> str:
    """The query's filters in words, for the title slide."""
    parts: list[str] = []
    if query.between:
        parts.append("between " + " and ".join(query.between.split(",")))
    if query.state:
        parts.append("involving " + " or ".join(query.state))
    if query.actor:
        parts.append("initiated by " + " or ".join(query.actor))
    if query.target:
        parts.append("targeting " + " or ".join(query.target))
    if query.organisation:
        its = "its" if len(query.organisation) == 1 else "their"
        members = f" or {its} member states at the time" if query.include_members else ""
        parts.append("involving " + " or ".join(query.organisation) + members)
    if query.kind:
        parts.append("of kind " + " or ".join(k.value for k in query.kind))
    if query.category:
        parts.append("in category " + " or ".join(query.category))
    if query.tag:
        parts.append("tagged " + " or ".join(query.tag))
    if query.q:
        parts.append(f"matching “{query.q}”")
    if query.from_ or query.to:
        parts.append(f"from {query.from_ or 'the start'} to {query.to or 'today'}")
    if query.as_known_at:
        parts.append(f"as known at {query.as_known_at.isoformat()}")
    return "Events " + ", ".join(parts) if parts else "All events"


def render(
    docs: Iterable[dict[str, Any]],
    *,
    description: str,
    query_url: str | None,
    base_url: str,
    licence: str,
    group_by: GroupBy = "kind",
    memberships: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """TimelineJS JSON from event documents (the JSON items of /v1/timeline).

    With `memberships` (the query names one organisation), the eras are its members' periods;
    otherwise they are the named crises of the events.
    """
    docs = list(docs)
    notes = ""
    if memberships is not None:
        eras, unknown = membership_eras(memberships, _span(docs))
        if unknown:
            notes = (
                "<p>Membership periods whose end the data does not record are not drawn: "
                f"{_e(', '.join(unknown))}.</p>"
            )
    else:
        eras = crisis_eras(docs)
    count = f"{len(docs)} event{'' if len(docs) == 1 else 's'}"
    query_link = f"<p>Query: {_link(query_url, query_url)}</p>" if query_url else ""
    title_text = (
        f"<p><strong>{_e(description)}</strong> ({count}), grouped by {group_by}.</p>"
        f"{query_link}{notes}"
        f"<p>{_e(ATTRIBUTION)}. Data licence: {_e(licence)}.</p>"
    )
    return {
        "title": {
            "unique_id": "title",
            "text": {"headline": "Diplomatic Timeline", "text": title_text},
        },
        "events": [slide(doc, base_url=base_url, group_by=group_by) for doc in docs],
        "eras": eras,
        "scale": "human",
        "attribution": ATTRIBUTION,
        "licence": licence,
    }

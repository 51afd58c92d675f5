"""The timeline in the formats other tools read: CSV, NDJSON, GeoJSON, iCalendar and Atom.

Each renderer takes event documents (the JSON items of /v1/timeline) and yields text chunks, so
an export of any size streams without sitting whole in memory.
"""

import datetime as dt
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape as xml_escape

import orjson

from app.events.csvline import CSV_HEADER
from app.timeline.schemas import TimelineQuery

ATTRIBUTION = "Diplomatic Timeline API; every event cites its own sources"
NAME = "Diplomatic Timeline"

MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "ndjson": "application/x-ndjson",
    "geojson": "application/geo+json",
    "ics": "text/calendar; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
    "timelinejs": "application/json",
}
EXTENSIONS = {
    "csv": "csv",
    "ndjson": "ndjson",
    "geojson": "geojson",
    "ics": "ics",
    "atom": "xml",
    "timelinejs": "json",
}
ACCEPT = {
    "text/csv": "csv",
    "application/x-ndjson": "ndjson",
    "application/ndjson": "ndjson",
    "application/geo+json": "geojson",
    "text/calendar": "ics",
    "application/atom+xml": "atom",
    "application/json": "json",
}


def negotiate(accept: str | None) -> str:
    """The format asked for by an Accept header; JSON unless one of ours is listed."""
    if not accept:
        return "json"
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in ACCEPT:
            return ACCEPT[media]
    return "json"


def query_title(query: TimelineQuery) -> str:
    """The name a feed reader or calendar lists a query's export under, naming its filters:
    "Diplomatic Timeline: DZA", "Diplomatic Timeline: MLI → DZA · 2025-04". The parts are
    joined by a middle dot, not a comma, which iCalendar must escape and some readers of
    X-WR-CALNAME then show with its backslash."""
    parts: list[str] = []
    if query.state:
        parts.append(" or ".join(query.state))
    if query.between:
        parts.append(" and ".join(query.between.split(",")))
    actor, target = " or ".join(query.actor), " or ".join(query.target)
    if actor and target:
        parts.append(f"{actor} → {target}")
    elif actor or target:
        parts.append(f"by {actor}" if actor else f"targeting {target}")
    if query.organisation:
        members = " and members" if query.include_members else ""
        parts.append(" or ".join(query.organisation) + members)
    for slugs in ([kind.value for kind in query.kind], query.category):
        if slugs:
            parts.append(" or ".join(slug.replace("_", " ") for slug in slugs))
    if query.tag:
        parts.append(" or ".join(f"#{tag}" for tag in query.tag))
    if query.q:
        parts.append(f"“{query.q}”")
    if query.from_ and query.from_ == query.to:
        parts.append(query.from_)
    elif query.from_ or query.to:
        parts.append(
            " ".join(filter(None, [query.from_, "to" if query.to else "onwards", query.to]))
        )
    if query.as_known_at:
        parts.append(f"as known at {query.as_known_at.isoformat()}")
    return f"{NAME}: {' · '.join(parts)}" if parts else NAME


def page_url(base_url: str, doc: dict[str, Any]) -> str:
    """The event on the timeline page, for people; `doc["url"]` is its JSON."""
    return f"{base_url}/?event={quote(doc['id'], safe='')}"


# --- CSV ---------------------------------------------------------------------------------


def render_csv(batches: Iterable[list[str]]) -> Iterator[str]:
    """The header, then each batch of stored lines (app/events/csvline.py) as one chunk."""
    yield CSV_HEADER
    for batch in batches:
        yield "".join(batch)


# --- NDJSON ------------------------------------------------------------------------------


def render_ndjson(batches: Iterable[list[dict[str, Any]]]) -> Iterator[bytes]:
    for batch in batches:
        yield b"".join(orjson.dumps(doc) + b"\n" for doc in batch)


# --- GeoJSON -----------------------------------------------------------------------------


def render_geojson(batches: Iterable[list[dict[str, Any]]], licence: str) -> Iterator[bytes]:
    """A FeatureCollection of every matching event. An event without coordinates (a letter to
    the Security Council, a border "somewhere") is a feature whose geometry is null, which RFC
    7946 (3.2) allows, rather than left out: every format holds the same events. Points are
    lon before lat."""
    head = {"type": "FeatureCollection", "attribution": ATTRIBUTION, "licence": licence}
    yield orjson.dumps(head)[:-1] + b',"features":['
    first = True
    for batch in batches:
        parts = []
        for doc in batch:
            location = doc.get("location") or {}
            geometry = None
            if location.get("lat") is not None and location.get("lon") is not None:
                geometry = {"type": "Point", "coordinates": [location["lon"], location["lat"]]}
            feature = {"type": "Feature", "id": doc["id"], "geometry": geometry, "properties": doc}
            parts.append((b"" if first else b",") + orjson.dumps(feature))
            first = False
        yield b"".join(parts)
    yield b"]}"


# --- iCalendar (RFC 5545) ----------------------------------------------------------------


def _ics_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _fold(line: str) -> str:
    """Lines longer than 75 octets continue on the next line after a space (RFC 5545 3.1)."""
    data = line.encode()
    if len(data) <= 75:
        return line + "\r\n"
    pieces: list[str] = []
    start = 0
    limit = 75
    while start < len(data):
        end = min(start + limit, len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:  # don't split a UTF-8 character
            end -= 1
        pieces.append(data[start:end].decode())
        start = end
        limit = 74
    return "\r\n ".join(pieces) + "\r\n"


def period(doc: dict[str, Any]) -> tuple[dt.date, dt.date]:
    """All-day start and exclusive end, following the date's precision."""
    start = dt.date.fromisoformat(doc["date"])
    if doc.get("end_date"):
        return start, dt.date.fromisoformat(doc["end_date"]) + dt.timedelta(days=1)
    if doc["date_precision"] == "month":
        return start, dt.date(start.year + start.month // 12, start.month % 12 + 1, 1)
    if doc["date_precision"] == "year":
        return start, dt.date(start.year + 1, 1, 1)
    return start, start + dt.timedelta(days=1)


def _stamp(value: str) -> str:
    return dt.datetime.fromisoformat(value).astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def render_ics(
    batches: Iterable[list[dict[str, Any]]], base_url: str, name: str, licence: str
) -> Iterator[str]:
    yield "".join(
        _fold(line)
        for line in (
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//Diplomatic Timeline API//EN",
            "CALSCALE:GREGORIAN",
            "METHOD:PUBLISH",
            f"NAME:{_ics_text(name)}",  # RFC 7986
            f"X-WR-CALNAME:{_ics_text(name)}",  # what Apple, Google and Outlook read
            f"X-WR-CALDESC:{_ics_text(f'{ATTRIBUTION}. Licence: {licence}.')}",
        )
    )
    for batch in batches:
        chunk = []
        for doc in batch:
            start, end = period(doc)
            sources = "\n".join(f"- {s['publisher']}: {s['url']}" for s in doc["sources"])
            page, data = page_url(base_url, doc), base_url + doc["url"]
            # Calendar apps differ in what they show: Apple Calendar shows URL, Google Calendar
            # and Outlook only the description, so both links are in it too.
            description = (
                f"{doc['summary']}\n\nSources:\n{sources}\n\nEvent page: {page}\n"
                f"Data (JSON): {data}\n\nLicence: {licence}"
            )
            lines = [
                "BEGIN:VEVENT",
                f"UID:{doc['id']}@diplomatic-timeline",
                f"DTSTAMP:{_stamp(doc['updated_at'])}",
                f"LAST-MODIFIED:{_stamp(doc['updated_at'])}",
                f"DTSTART;VALUE=DATE:{start:%Y%m%d}",
                f"DTEND;VALUE=DATE:{end:%Y%m%d}",
                f"SUMMARY:{_ics_text(doc['title'])}",
                f"DESCRIPTION:{_ics_text(description)}",
                f"URL:{page}",
                f"ATTACH;FMTTYPE=application/json:{data}",
                f"CATEGORIES:{_ics_text(doc['category'])}",
            ]
            location = doc.get("location") or {}
            if location.get("name"):
                lines.append(f"LOCATION:{_ics_text(location['name'])}")
            if location.get("lat") is not None:
                lines.append(f"GEO:{location['lat']};{location['lon']}")
            lines.append("END:VEVENT")
            chunk.append("".join(_fold(line) for line in lines))
        yield "".join(chunk)
    yield "END:VCALENDAR\r\n"


# --- Atom (RFC 4287) ---------------------------------------------------------------------


def render_atom(
    docs: list[dict[str, Any]],
    self_url: str,
    base_url: str,
    title: str,
    licence: str,
    page: str | None = None,
) -> str:
    """The feed; each entry links to the event's page (what a feed reader opens) and to its JSON
    (`alternate`, application/json), and `page` is the timeline page of the whole query."""
    updated = max((d["updated_at"] for d in docs), default="1970-01-01T00:00:00+00:00")
    entries = []
    for doc in docs:
        sources = "".join(
            f'<li><a href="{xml_escape(s["url"])}">{xml_escape(s["publisher"])}</a></li>'
            for s in doc["sources"]
        )
        content = (
            f"<p>{xml_escape(doc['summary'])}</p><p>Date: {doc['date']}"
            f" ({doc['date_precision']} precision)</p><p>Sources:</p><ul>{sources}</ul>"
        )
        # The entry id stays the JSON URL it has always been: readers tell entries apart by it.
        href = xml_escape(base_url + doc["url"])
        entries.append(
            "<entry>"
            f"<id>{href}</id>"
            f"<title>{xml_escape(doc['title'])}</title>"
            f"<updated>{doc['updated_at']}</updated>"
            f"<published>{doc['created_at']}</published>"
            f'<link rel="alternate" type="text/html" href="{xml_escape(page_url(base_url, doc))}"/>'
            f'<link rel="alternate" type="application/json" href="{href}"/>'
            f'<category term="{xml_escape(doc["category"])}"/>'
            f"<summary>{xml_escape(doc['summary'])}</summary>"
            f'<content type="html">{xml_escape(content)}</content>'
            "</entry>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<feed xmlns="http://www.w3.org/2005/Atom">'
        f"<id>{xml_escape(self_url)}</id>"
        f"<title>{xml_escape(title)}</title>"
        f"<updated>{updated}</updated>"
        f'<link rel="self" type="application/atom+xml" href="{xml_escape(self_url)}"/>'
        + (f'<link rel="alternate" type="text/html" href="{xml_escape(page)}"/>' if page else "")
        + "<author><name>Diplomatic Timeline API</name></author>"
        f"<rights>{xml_escape(f'{ATTRIBUTION}. Licence: {licence}.')}</rights>"
        + "".join(entries)
        + "</feed>\n"
    )

"""The timeline in the formats other tools read: CSV, NDJSON, GeoJSON, iCalendar and Atom.

Each renderer takes event documents (the JSON items of /v1/timeline) and yields text chunks, so
an export of any size streams without sitting whole in memory.
"""

import csv
import datetime as dt
import io
from collections.abc import Iterable, Iterator
from typing import Any
from xml.sax.saxutils import escape as xml_escape

import orjson

ATTRIBUTION = "Diplomatic Timeline API; every event cites its own sources"

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

CSV_COLUMNS = [
    "id",
    "kind",
    "category",
    "date",
    "date_precision",
    "end_date",
    "title",
    "summary",
    "participants",
    "location",
    "lat",
    "lon",
    "location_precision",
    "cameo_code",
    "goldstein",
    "casualties_killed",
    "casualties_wounded",
    "tags",
    "confidence",
    "source_urls",
    "source_publishers",
    "claims",
    "url",
    "updated_at",
]


def negotiate(accept: str | None) -> str:
    """The format asked for by an Accept header; JSON unless one of ours is listed."""
    if not accept:
        return "json"
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in ACCEPT:
            return ACCEPT[media]
    return "json"


# --- CSV ---------------------------------------------------------------------------------


def safe_cell(value: Any) -> str:
    """A cell a spreadsheet will not run: a leading =, +, -, @, tab or CR becomes literal text."""
    text = "" if value is None else str(value)
    if text and text[0] in "=+-@\t\r":
        return "'" + text
    return text


def _participants(doc: dict[str, Any]) -> str:
    parts = []
    for p in doc["participants"]:
        who = p.get("state") or p.get("organisation") or p.get("group")
        parts.append(f"{who}:{p['role']}")
    return "; ".join(parts)


def _claims(doc: dict[str, Any]) -> str:
    out = []
    for c in doc["claims"]:
        claimant = next(iter(c["claimant"].values()))
        value = f" [{c['value']:g} {c['unit'] or ''}]".rstrip() if c["value"] is not None else ""
        source = c["sources"][0]["url"] if c["sources"] else ""
        out.append(f"{claimant}: {c['statement']}{value} ({source})")
    return " | ".join(out)


def csv_row(doc: dict[str, Any]) -> list[str]:
    location = doc.get("location") or {}
    casualties = doc.get("casualties") or {}
    values = {
        **{k: doc.get(k) for k in CSV_COLUMNS},
        "participants": _participants(doc),
        "location": location.get("name"),
        "lat": location.get("lat"),
        "lon": location.get("lon"),
        "location_precision": location.get("precision"),
        "casualties_killed": casualties.get("killed"),
        "casualties_wounded": casualties.get("wounded"),
        "tags": "|".join(doc["tags"]),
        "source_urls": " | ".join(s["url"] for s in doc["sources"]),
        "source_publishers": " | ".join(s["publisher"] for s in doc["sources"]),
        "claims": _claims(doc),
    }
    return [safe_cell(values[k]) for k in CSV_COLUMNS]


def _csv_text(rows: Iterable[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)  # RFC 4180 line ends and quoting
    return buffer.getvalue()


CSV_HEADER = _csv_text([CSV_COLUMNS])


def csv_line(doc: dict[str, Any]) -> str:
    """The event's line of a CSV export, stored with its document (app/events/documents.py)."""
    return _csv_text([csv_row(doc)])


def render_csv(batches: Iterable[list[str]]) -> Iterator[str]:
    """The header, then each batch of lines (`csv_line`) as one chunk."""
    yield CSV_HEADER
    for batch in batches:
        yield "".join(batch)


# --- NDJSON ------------------------------------------------------------------------------


def render_ndjson(batches: Iterable[list[dict[str, Any]]]) -> Iterator[bytes]:
    for batch in batches:
        yield b"".join(orjson.dumps(doc) + b"\n" for doc in batch)


# --- GeoJSON -----------------------------------------------------------------------------


def render_geojson(batches: Iterable[list[dict[str, Any]]], licence: str) -> Iterator[bytes]:
    """A FeatureCollection of the events that have coordinates (RFC 7946: lon before lat)."""
    head = {"type": "FeatureCollection", "attribution": ATTRIBUTION, "licence": licence}
    yield orjson.dumps(head)[:-1] + b',"features":['
    first = True
    for batch in batches:
        parts = []
        for doc in batch:
            location = doc.get("location") or {}
            if location.get("lat") is None:
                continue
            feature = {
                "type": "Feature",
                "id": doc["id"],
                "geometry": {"type": "Point", "coordinates": [location["lon"], location["lat"]]},
                "properties": doc,
            }
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
            f"X-WR-CALNAME:{_ics_text(name)}",
            f"X-WR-CALDESC:{_ics_text(f'{ATTRIBUTION}. Licence: {licence}.')}",
        )
    )
    for batch in batches:
        chunk = []
        for doc in batch:
            start, end = period(doc)
            sources = "\n".join(f"- {s['publisher']}: {s['url']}" for s in doc["sources"])
            description = f"{doc['summary']}\n\nSources:\n{sources}\n\nLicence: {licence}"
            lines = [
                "BEGIN:VEVENT",
                f"UID:{doc['id']}@diplomatic-timeline",
                f"DTSTAMP:{_stamp(doc['updated_at'])}",
                f"LAST-MODIFIED:{_stamp(doc['updated_at'])}",
                f"DTSTART;VALUE=DATE:{start:%Y%m%d}",
                f"DTEND;VALUE=DATE:{end:%Y%m%d}",
                f"SUMMARY:{_ics_text(doc['title'])}",
                f"DESCRIPTION:{_ics_text(description)}",
                f"URL:{base_url}{doc['url']}",
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
    docs: list[dict[str, Any]], self_url: str, base_url: str, title: str, licence: str
) -> str:
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
        href = xml_escape(base_url + doc["url"])
        entries.append(
            "<entry>"
            f"<id>{href}</id>"
            f"<title>{xml_escape(doc['title'])}</title>"
            f"<updated>{doc['updated_at']}</updated>"
            f"<published>{doc['created_at']}</published>"
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
        "<author><name>Diplomatic Timeline API</name></author>"
        f"<rights>{xml_escape(f'{ATTRIBUTION}. Licence: {licence}.')}</rights>"
        + "".join(entries)
        + "</feed>\n"
    )

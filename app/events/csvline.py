"""An event's line of a CSV export, stored with its JSON document (app/events/documents.py)
so that an export streams stored lines; app/timeline/formats.py writes the header and the
lines."""

from typing import Any

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


def safe_cell(value: Any) -> str:
    """Text a spreadsheet will not run: a leading =, +, -, @, tab or CR makes it literal text."""
    text = "" if value is None else str(value)
    if text and text[0] in "=+-@\t\r":
        return "'" + text
    return text


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def csv_field(value: Any) -> str:
    """One field of a line: a number as it is, text guarded (`safe_cell`) and always quoted, no
    value as nothing.

    Numbers stay numbers: `'-8.0029` in `lon` was text to pandas and spreadsheets (issue 22).
    Text is quoted even without a comma in it, because LibreOffice's import splits on
    semicolons and tabs too by default: "Military coup in Mali; President Keïta detained"
    became two columns and shifted the rest of the row."""
    if value is None or value == "":
        return ""
    if _number(value):
        return str(value)
    return '"' + safe_cell(value).replace('"', '""') + '"'


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


def csv_row(doc: dict[str, Any]) -> list[Any]:
    """The event's values in the order of CSV_COLUMNS: numbers, text or None."""
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
    return [values[k] for k in CSV_COLUMNS]


# A UTF-8 byte order mark first: Excel opens a double-clicked CSV without one in the system's
# legacy code page (Windows-1252 in Western Europe), so "Émergent" shows as "Ã‰mergent". pandas,
# LibreOffice and Python's "utf-8-sig" codec read past it.
BOM = "\ufeff"
CSV_HEADER = BOM + ",".join(CSV_COLUMNS) + "\r\n"


def csv_line(doc: dict[str, Any]) -> str:
    """The event's line of a CSV export (RFC 4180: CRLF, quotes doubled)."""
    return ",".join(csv_field(value) for value in csv_row(doc)) + "\r\n"

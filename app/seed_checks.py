"""Editorial checks on the curated data, beyond what the schemas can say about one record.

They run on every seed load (`python -m app.seed` refuses data that fails them) and, in the
test suite, on the events as the API serves them from each database (tests/test_seed_data.py).
Both pass the same plain shape: the event document of `GET /v1/events/{id}` (id, date, title,
summary, participants, location, casualties, sources, claims) plus its outgoing links as
`{"type", "event"}` pairs.
"""

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Listing, pagination and archive pages: their content changes as new articles are posted, so
# they do not stay evidence for anything. An article id under /archives/<n> is not a listing.
LISTING_URL = re.compile(
    r"/page/\d+(/|$|\?)"
    r"|[?&](page|paged|pg|start|offset)=\d"
    r"|/(tag|tags|category|categories|categorie|rubrique|author|taxonomy)/",
    re.IGNORECASE,
)
# Identifiers of the fact base (EV-nnn) and of seed/facts-addendum.md (AD-nnn): curators' keys,
# kept in the `fact_ref` field, meaningless to a reader of a summary.
INTERNAL_REFERENCE = re.compile(r"\b(EV|AD)-\d{3}\b")
# Categories that record only a party's allegation that something happened.
ALLEGATION_CATEGORIES = frozenset({"airspace_violation_claim"})


@dataclass(frozen=True, slots=True)
class Problem:
    event: str
    check: str
    detail: str

    def __str__(self) -> str:
        return f"{self.event}: {self.check}: {self.detail}"


def _date(value: object) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def _actor(ref: Mapping[str, Any]) -> str | None:
    for key in ("state", "organisation", "group"):
        if ref.get(key):
            return f"{key} {ref[key]}"
    return None


def _texts(event: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    yield "title", event.get("title") or ""
    yield "summary", event.get("summary") or ""
    if event.get("location"):
        yield "location.name", event["location"].get("name") or ""
    if event.get("casualties"):
        yield "casualties.note", event["casualties"].get("note") or ""
    for i, claim in enumerate(event.get("claims") or []):
        yield f"claims.{i}.statement", claim.get("statement") or ""
    for source in _all_sources(event):
        yield f"source {source['url']} title", source.get("title") or ""
        yield f"source {source['url']} publisher", source.get("publisher") or ""


def _claim_sources(claim: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    # The API serves `sources` (a list); the seed format has one `source`.
    if "sources" in claim:
        return list(claim["sources"] or [])
    return [claim["source"]] if claim.get("source") else []


def _all_sources(event: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    yield from event.get("sources") or []
    for claim in event.get("claims") or []:
        yield from _claim_sources(claim)


def check_event(
    event: Mapping[str, Any],
    links: Iterable[Mapping[str, Any]],
    dates: Mapping[str, dt.date],
    sources_note: str | None = None,
) -> list[Problem]:
    """Every problem with one event. `dates` maps each event id to its date (link targets)."""
    problems: list[Problem] = []
    eid = str(event["id"])
    date = _date(event["date"])

    def fail(check: str, detail: str) -> None:
        problems.append(Problem(eid, check, detail))

    for i, claim in enumerate(event.get("claims") or []):
        if _actor(claim.get("claimant") or {}) is None:
            fail("claim-claimant", f"claim {i} ({claim.get('topic')}) names no claimant")
        if not _claim_sources(claim):
            fail("claim-source", f"claim {i} ({claim.get('topic')}) cites no source")

    published = [_date(s.get("published_on")) for s in event.get("sources") or []]
    dated = any(p is not None and date is not None and p >= date for p in published)
    if not dated and not (sources_note and sources_note.strip()):
        fail(
            "dated-source",
            "no source is known to be published on or after the event's date, and there "
            "is no sources_note saying why",
        )

    for source in _all_sources(event):
        if LISTING_URL.search(source["url"]):
            fail("listing-page", f"{source['url']} is a listing or pagination page")

    for link in links:
        target = dates.get(str(link["event"]))
        if target is not None and date is not None and target > date:
            fail(
                "link-direction",
                f"{link['type']} -> {link['event']} points forward in time ({target} > {date})",
            )

    for where, text in _texts(event):
        if match := INTERNAL_REFERENCE.search(text):
            fail("internal-reference", f"{where} contains {match.group(0)}")

    participants = event.get("participants") or []
    if event.get("category") in ALLEGATION_CATEGORIES:
        for p in participants:
            if p.get("role") == "initiator":
                fail(
                    "alleged-initiator",
                    f"{_actor(p)} is a plain initiator of an event that records an allegation",
                )
    alleged = {_actor(p) for p in participants if p.get("role") == "alleged_initiator"}
    plain = {_actor(p) for p in participants if p.get("role") == "initiator"}
    for actor in sorted(a for a in alleged & plain if a):
        fail("alleged-initiator", f"{actor} is both initiator and alleged initiator")
    if alleged and not event.get("claims"):
        fail("alleged-initiator", "an alleged initiator needs the claims that allege it")
    return problems


def check_events(
    events: Iterable[Mapping[str, Any]],
    links: Mapping[str, Iterable[Mapping[str, Any]]],
    notes: Mapping[str, str] | None = None,
) -> list[Problem]:
    events = list(events)
    dates = {str(e["id"]): d for e in events if (d := _date(e["date"])) is not None}
    notes = notes or {}
    problems: list[Problem] = []
    for event in events:
        eid = str(event["id"])
        problems.extend(check_event(event, links.get(eid, ()), dates, notes.get(eid)))
    return problems


def check_text(where: str, text: str | None) -> list[Problem]:
    """The internal-reference check for text outside events (organisation descriptions,
    membership notes)."""
    if text and (match := INTERNAL_REFERENCE.search(text)):
        return [Problem(where, "internal-reference", f"contains {match.group(0)}")]
    return []

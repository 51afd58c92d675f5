"""The timeline's filters applied in Python to one event as the API serves it: for timelines
`as_known_at` an instant (rebuilt from revisions), for webhook subscription filters and for the
live stream's filters (app/stream).

Each test here is what the SQL of app/timeline/statements.py means, written for a document
instead of tables: tests/test_filter_paths.py runs random filters through both and compares the
events they select. Pure: it imports only schemas and kernel modules, so that the write path
(webhooks) can use it without importing the timeline's service.
"""

from typing import Any

from app import search
from app.schemas import parse_partial_date
from app.timeline.schemas import TimelineFilters
from app.vocabulary import MEMBER_STATUSES


def _codes(doc: dict[str, Any], kind: str, role: str | None = None) -> set[str]:
    """The codes of the participating states (`kind` "state") or organisations, in `role`."""
    return {
        p[kind] for p in doc["participants"] if kind in p and (role is None or p["role"] == role)
    }


def _member(m: dict[str, Any], organisations: set[str], states: set[str], day: str) -> bool:
    """One of `states` belonged to one of `organisations` on `day` by this membership."""
    return (
        m["organisation"] in organisations
        and m["state"] in states
        and m["status"] in MEMBER_STATUSES
        and m["start_on"] <= day
        and (m["end"] == "open" or (m["end"] == "dated" and m["end_on"] > day))
    )


def matches(
    doc: dict[str, Any],
    query: TimelineFilters,
    memberships: list[dict[str, Any]],
    place_names: dict[str, list[str]],
) -> bool:
    """Whether an event passes the query's filters. `doc` is the event as the API serves it
    (dates as ISO strings); `memberships` the live memberships (for `include_members`) and
    `place_names` every name of each place by its code (for `q`), as of the same instant."""
    day = doc["date"]
    if query.from_ and day < parse_partial_date(query.from_).isoformat():
        return False
    if query.to and day > parse_partial_date(query.to, end=True).isoformat():
        return False
    states = _codes(doc, "state")
    if query.state and not states & set(query.state):
        return False
    if query.between and not set(query.between.split(",")) <= states:
        return False
    for role, wanted in (("initiator", query.actor), ("target", query.target)):
        # A code may name a state or an organisation: either in that role passes.
        if wanted and not (
            (_codes(doc, "state", role) | _codes(doc, "organisation", role)) & set(wanted)
        ):
            return False
    if query.organisation:
        organisations = set(query.organisation)
        if not _codes(doc, "organisation") & organisations and not (
            query.include_members
            and any(_member(m, organisations, states, day) for m in memberships)
        ):
            return False
    if query.kind and doc["kind"] not in {k.value for k in query.kind}:
        return False
    if query.category and doc["category"] not in query.category:
        return False
    if query.tag and not set(doc["tags"]) & set(query.tag):
        return False
    if query.q:
        place = (doc.get("location") or {}).get("place") or ""
        text = search.searched(doc, place_names.get(place, []))
        if not search.has_words(text, search.search_terms(query.q)):
            return False
    return True


def change_matches(
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    query: TimelineFilters,
    memberships: list[dict[str, Any]],
    place_names: dict[str, list[str]],
) -> bool:
    """Whether a change of an event concerns the query: the event matched before it or after
    it, so a subscriber also learns that an event left its filter (updated out of it, or
    deleted)."""
    return any(
        matches(doc, query, memberships, place_names) for doc in (before, after) if doc is not None
    )

"""One meaning per filter: the SQL timeline and the Python matcher select the same events.

The live timeline filters in SQL (FTS5 or a tsvector for `q=`); a timeline `as_known_at` an
instant, and a webhook subscription's filter, are matched in Python on each event's document
(app/timeline/filters.py). Random filters, with words drawn from the seed's own text and
mangled as people type them (prefixes, pieces of words, capitals, accents, punctuation), go
through every path on the seed data, and each path must name the same events.
"""

import datetime as dt
import re
import subprocess
import sys
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from app.models import Revision
from app.vocabulary import CATEGORIES
from app.webhooks.schemas import FILTER_KEYS, normalise_filter
from app.webhooks.service import filter_matches
from tests.conftest import Writable

# Where a person types punctuation: around, between and inside words.
PUNCTUATION = [",", ".", "!", "?", "'", '"', "(", ")", "-", "«", "»", "’", "_", ":", "/", "*", "&"]
ACCENTED = {
    "a": "àâá",
    "e": "éèêë",
    "i": "îï",
    "o": "ôö",
    "u": "ùûü",
    "c": "ç",
    "n": "ñ",
}


def all_pages(client: TestClient, params: dict[str, Any]) -> tuple[int, Any]:
    """(status, ids of every page) of the timeline, or (status, the problem's fields)."""
    found: list[str] = []
    cursor = None
    while True:
        page = {**params, "cursor": cursor} if cursor else params
        response = client.get("/v1/timeline", params=page)
        if response.status_code != 200:
            problem = response.json()
            return response.status_code, sorted(tuple(e["loc"]) for e in problem["errors"])
        body = response.json()
        found.extend(item["id"] for item in body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return 200, found


class Seed:
    """What the strategies draw from: the seed as the API serves it."""

    def __init__(self, client: TestClient) -> None:
        page = client.get("/v1/timeline?limit=500").json()
        assert page["next_cursor"] is None  # the whole seed, in one page
        self.docs: list[dict[str, Any]] = page["items"]
        places = client.get("/v1/places").json()["items"]
        aliases = {place["code"]: place["aliases"] for place in places}
        # Each event's text, as a person reading it would copy words from it.
        self.texts_of: dict[str, list[str]] = {}
        for doc in self.docs:
            location = doc["location"] or {}
            texts = [doc["title"], doc["summary"], *doc["tags"], location.get("name") or ""]
            texts += aliases.get(location.get("place") or "", [])
            texts += [c["statement"] for c in doc["claims"]]
            texts += [c["claimant"].get("group") or "" for c in doc["claims"]]
            texts += [p.get("group") or "" for p in doc["participants"]]
            self.texts_of[doc["id"]] = [t for t in texts if t]
        texts = [t for ts in self.texts_of.values() for t in ts]
        texts += [alias for names in aliases.values() for alias in names]
        self.texts = [t for t in texts if t]
        participants = [p for doc in self.docs for p in doc["participants"]]
        self.states = sorted({p["state"] for p in participants if "state" in p})
        self.organisations = sorted(
            {p["organisation"] for p in participants if "organisation" in p}
        )
        listed = client.get("/v1/states").json()["items"]
        # A few states that take part in nothing, so that some filters match nothing.
        self.states += sorted({s["code"] for s in listed} - set(self.states))[:3]
        self.tags = sorted({t for doc in self.docs for t in doc["tags"]})
        self.categories = sorted({doc["category"] for doc in self.docs})
        self.categories += sorted(set(CATEGORIES) - set(self.categories))[:2]
        self.dates = sorted({doc["date"] for doc in self.docs})


@pytest.fixture(scope="module")
def seed(client: TestClient) -> Seed:
    return Seed(client)


def accent(draw: st.DrawFn, text: str) -> str:
    return "".join(
        draw(st.sampled_from(ACCENTED[ch])) if ch in ACCENTED and draw(st.booleans()) else ch
        for ch in text
    )


def cased(draw: st.DrawFn, text: str) -> str:
    how = draw(st.sampled_from(["lower", "upper", "title", "mixed", "as is"]))
    if how == "mixed":
        return "".join(ch.upper() if draw(st.booleans()) else ch for ch in text)
    return text if how == "as is" else getattr(text, how)()


def split(text: str) -> list[str]:
    # Only to have words to draw from; what a word is, is the API's business.
    return re.findall(r"[^\W_]+", text)


@st.composite
def a_word(draw: st.DrawFn, texts: list[str]) -> str:
    """A word of these texts, whole or cut as people type it, in their case and accents, with
    punctuation around it."""
    text = draw(st.sampled_from(texts))
    how = draw(st.sampled_from(["whole", "whole", "prefix", "prefix", "inside", "across", "1"]))
    if how == "across" or not split(text):
        # A stretch of the text, across word boundaries and punctuation.
        start = draw(st.integers(0, max(0, len(text) - 2)))
        word = text[start : start + draw(st.integers(2, 14))]
    elif how == "1":  # a number or a piece of a host name, as PostgreSQL's parser read them
        word = draw(st.sampled_from(["2025", "2024", "1", "5", "10", "04", "net", "com", "e"]))
    else:
        word = draw(st.sampled_from(split(text)))
        if how == "prefix":
            word = word[: draw(st.integers(1, len(word)))]
        elif how == "inside" and len(word) > 2:
            start = draw(st.integers(1, len(word) - 2))
            word = word[start : draw(st.integers(start + 1, len(word)))]
    word = cased(draw, accent(draw, word))
    if draw(st.integers(0, 3)) == 0:
        word = draw(st.sampled_from(PUNCTUATION)) + word
    if draw(st.integers(0, 3)) == 0:
        word += draw(st.sampled_from(PUNCTUATION))
    return word


@st.composite
def a_query(draw: st.DrawFn, texts: list[str]) -> str:
    how_many = draw(st.sampled_from([1, 1, 2, 3]))
    words = draw(st.lists(a_word(texts), min_size=1, max_size=how_many))
    glue = [draw(st.sampled_from([" ", " ", ", ", "-", " / ", "_"])) for _ in words]
    q = "".join(g + w for g, w in zip(glue, words, strict=True)).strip()
    return q[:200] or words[0][:200]


@st.composite
def a_partial_date(draw: st.DrawFn, day: str) -> str:
    if draw(st.booleans()):
        # A day next to the event's, so that the bounds' inclusiveness shows.
        moved = dt.date.fromisoformat(day) + dt.timedelta(days=draw(st.integers(-1, 1)))
        day = moved.isoformat()
    return day[: draw(st.sampled_from([4, 7, 10]))]


FILTERS = ["from", "to", "state", "between", "actor", "target", "organisation", "kind"]
FILTERS += ["category", "tag"]


@st.composite
def filters(draw: st.DrawFn, seed: Seed) -> dict[str, Any]:
    """`q=` and up to three other filters, with values mostly drawn from one event (so that
    they often select something) and otherwise from the whole seed."""
    doc = draw(st.sampled_from(seed.docs))

    def some(own: list[str], others: list[str], most: int = 1) -> list[str]:
        values = own if own and draw(st.integers(0, 3)) else others
        return draw(st.lists(st.sampled_from(values), min_size=1, max_size=most, unique=True))

    participants = doc["participants"]
    states = [p["state"] for p in participants if "state" in p]
    organisations = [p["organisation"] for p in participants if "organisation" in p]
    days = [draw(st.sampled_from(seed.dates)), doc["date"]]
    params: dict[str, Any] = {}
    if draw(st.integers(0, 2)):  # `q=` two times in three: it had two meanings
        texts = seed.texts_of[doc["id"]] if draw(st.integers(0, 3)) else seed.texts
        params["q"] = draw(a_query(texts))
    for name in draw(st.lists(st.sampled_from(FILTERS), max_size=3, unique=True)):
        if name in ("from", "to"):
            params[name] = draw(a_partial_date(draw(st.sampled_from(days))))
        elif name == "state":
            params["state"] = some(states, seed.states, 2)
        elif name == "between":
            pair = some(states, seed.states, 3) + some(seed.states, seed.states)
            params["between"] = ",".join(dict.fromkeys(pair))
        elif name in ("actor", "target"):
            params[name] = some(states + organisations, seed.states + seed.organisations, 2)
        elif name == "organisation":
            params["organisation"] = some(organisations, seed.organisations, 2)
            params["include_members"] = draw(st.booleans())
        elif name == "kind":
            params["kind"] = some([doc["kind"]], ["diplomatic_action", "incident"])
        elif name == "category":
            params["category"] = some([doc["category"]], seed.categories, 2)
        elif name == "tag":
            params["tag"] = some(doc["tags"], seed.tags, 2)
    return params


SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI stays stable
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def after_the_seed(client: TestClient) -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def test_the_live_timeline_and_as_known_at_name_the_same_events(
    client: TestClient, seed: Seed, after_the_seed: str
) -> None:
    @SETTINGS
    @given(params=filters(seed), order=st.sampled_from(["asc", "desc", "relevance"]))
    def check(params: dict[str, Any], order: str) -> None:
        if order == "relevance" and "q" not in params:
            order = "asc"
        live = all_pages(client, {**params, "order": order, "limit": 40})
        known = all_pages(client, {**params, "order": order, "as_known_at": after_the_seed})
        assert live[0] == known[0], (params, live, known)
        # `--hypothesis-show-statistics` shows how many examples found something.
        event("refused" if live[0] != 200 else "some events" if live[1] else "no event")
        if live[0] == 200:
            assert sorted(live[1]) == sorted(known[1]), (params, live[1], known[1])
            assert len(set(live[1])) == len(live[1]), "a page repeated an event"
            if order != "relevance":
                assert live[1] == known[1], "the same order"
        else:
            assert live == known

    check()


def test_webhook_filters_select_what_the_timeline_shows(client: TestClient, seed: Seed) -> None:
    """A subscription filter (the timeline filters a webhook may carry) matches an event's
    document exactly when the live timeline with that filter lists the event."""

    @SETTINGS
    @given(params=filters(seed))
    def check(params: dict[str, Any]) -> None:
        saved = {key: params[key] for key in FILTER_KEYS if key in params}
        if not saved:
            return
        status, listed = all_pages(client, {**saved, "limit": 500})
        if status != 200:
            # The timeline refuses it (a `between` of one state): so does a subscription,
            # before any event is matched (tests/webhooks check the refusals).
            return
        normalised = normalise_filter(saved)
        matched = [
            doc["id"]
            for doc in seed.docs
            if filter_matches(normalised, Revision(resource="event", before=None, after=doc))
        ]
        assert sorted(matched) == sorted(listed), saved

    check()


@pytest.mark.parametrize(
    ("q", "some"),
    [
        ("one", None),  # inside "drone", which it found in Python only
        ("rone", False),  # inside "drone": no word begins with it
        ("drone,", True),  # punctuation is not part of a word
        ("DRÔNE tinzaouat", True),  # case, accents and a prefix
        ("2025", True),  # PostgreSQL read "-2025" in "2024-2025" as one signed number
        ("net", True),  # and "bamada.net" as one host name
    ],
)
def test_issue_22s_examples(
    client: TestClient, after_the_seed: str, q: str, some: bool | None
) -> None:
    live = all_pages(client, {"q": q, "limit": 500})
    known = all_pages(client, {"q": q, "as_known_at": after_the_seed, "limit": 500})
    assert live == known
    if some is not None:
        assert bool(live[1]) is some


# --- filters after writes: codes shared by a state and an organisation, deleted memberships --

SOURCE = {"url": "https://example.org/test/filters", "publisher": "Filter Test"}


def every_path(w: Writable, params: dict[str, Any]) -> list[str]:
    """The events the live timeline lists with these filters, checked to be those the
    as_known_at timeline lists now, and those a webhook subscription with them matches."""
    at = dt.datetime.now(dt.UTC).isoformat()
    status, live = all_pages(w.client, {**params, "limit": 500})
    assert status == 200, live
    assert all_pages(w.client, {**params, "as_known_at": at, "limit": 500}) == (200, live)
    saved = {key: params[key] for key in FILTER_KEYS if key in params}
    if saved == params:
        docs = w.client.get("/v1/timeline", params={"limit": 500}).json()["items"]
        normalised = normalise_filter(saved)
        matched = [
            doc["id"]
            for doc in docs
            if filter_matches(normalised, Revision(resource="event", before=None, after=doc))
        ]
        assert sorted(matched) == sorted(live)
    return live


def organisation(w: Writable, code: str, *members: str) -> list[int]:
    """Create an organisation, and the ids of open memberships since 2020 of these states."""
    body = {"code": code, "name": f"{code}, made by a test", "kind": "international_organisation"}
    made = w.client.post("/v1/organisations", json={**body, "sources": [SOURCE]}, headers=w.auth())
    assert made.status_code == 201, made.text
    period = {"start_on": "2020-01-01", "start_precision": "day", "end": "open"}
    ids = []
    for state in members:
        body = {"organisation": code, "state": state, "status": "member", **period}
        made = w.client.post(
            "/v1/memberships", json={**body, "sources": [SOURCE]}, headers=w.auth()
        )
        assert made.status_code == 201, made.text
        ids.append(made.json()["id"])
    return ids


def test_a_code_naming_a_state_and_an_organisation(writable: Writable) -> None:
    """`state=` means the state, `organisation=` the organisation, `actor=` either: the Python
    matcher read any participant's code for each, so an organisation coded like a state passed
    `state=`."""
    organisation(writable, "NER")
    event = {
        "id": "2025-05-10-body-coded-like-niger",
        "kind": "diplomatic_action",
        "category": "statement",
        "date": "2025-05-10",
        "date_precision": "day",
        "title": "A statement by the body coded like Niger",
        "summary": "Written by the test suite.",
        "participants": [{"organisation": "NER", "role": "initiator"}],
        "sources": [SOURCE],
    }
    made = writable.client.post("/v1/events", json=event, headers=writable.auth())
    assert made.status_code == 201, made.text
    assert event["id"] not in every_path(writable, {"state": ["NER"]})
    assert every_path(writable, {"organisation": ["NER"]}) == [event["id"]]
    assert event["id"] in every_path(writable, {"actor": ["NER"]})
    assert every_path(writable, {"between": "NER,MLI"})  # Niger's own events stay


def test_a_deleted_membership_makes_no_member(writable: Writable) -> None:
    """`include_members` counts live memberships only: the SQL counted deleted ones too."""
    [membership] = organisation(writable, "TEST-BLOC", "TCD")
    query = {"organisation": ["TEST-BLOC"], "include_members": True}
    chad = every_path(writable, {"state": ["TCD"], "from": "2020"})
    assert chad
    assert every_path(writable, query) == chad
    gone = writable.client.delete(
        f"/v1/memberships/{membership}", headers={**writable.auth(), "If-Match": "*"}
    )
    assert gone.status_code == 204
    assert every_path(writable, query) == []


def test_the_matcher_imports_nothing_above_it() -> None:
    """Webhooks (on the write path) match subscriptions with app/timeline/filters.py: importing
    it, or the webhooks' service, loads no other domain's service and no stored documents."""
    probe = (
        "import sys, app.timeline.filters, app.webhooks.service;"
        "print(sorted(m for m in sys.modules if m.startswith('app.')"
        " and m.endswith(('.service', '.documents')) and m != 'app.webhooks.service'))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert "app.timeline.service" not in loaded
    assert "app.events.documents" not in loaded

"""The facet counts kept with the data (app/timeline/counts.py) stay exact.

Random writes, edits (date, kind and category, participants) and soft deletes through the API,
then random facet filters answered from the counts compared with a plain GROUP BY of the
matching events (`service.grouped`, the path the counts replace), and every stored count
compared with the tables (`counts.check`). The `writable` fixture also checks the counts after
every write-test module (tests/conftest.py).
"""

import datetime as dt
import itertools
import random
import subprocess
import sys
from typing import Any

import pytest
from sqlalchemy import select, text, update

from app.config import PROJECT_ROOT
from app.events import documents
from app.models import Event, EventTag, Organisation, State
from app.timeline import counts, service
from app.timeline.schemas import FacetsQuery
from app.vocabulary import CATEGORIES
from tests.conftest import Writable
from tests.test_writes import SOURCE, create

SLUGS = sorted(CATEGORIES)


def codes(w: Writable) -> tuple[list[str], list[str]]:
    with w.session() as s:
        return (
            sorted(s.scalars(select(State.code))),
            sorted(s.scalars(select(Organisation.code))),
        )


def random_day(rng: random.Random) -> dt.date:
    # Around the seed's years, so filters cut through real and written events alike.
    return dt.date(2019, 11, 1) + dt.timedelta(days=rng.randrange(2200))


def random_participants(
    rng: random.Random, states: list[str], organisations: list[str]
) -> list[dict[str, str]]:
    chosen = rng.sample(states, rng.randint(1, 3))
    out = [
        {"state": code, "role": "initiator" if i == 0 else "target"}
        for i, code in enumerate(chosen)
    ]
    if rng.random() < 0.4:
        # Sometimes two, so that organisations share events too.
        for code in rng.sample(organisations, 1 if rng.random() < 0.7 else 2):
            out.append({"organisation": code, "role": "mediator"})
    if rng.random() < 0.2:
        out.append({"group": "armed group", "role": "affected"})
    return out


def random_event(
    rng: random.Random, n: int, states: list[str], organisations: list[str]
) -> dict[str, Any]:
    slug = rng.choice(SLUGS)
    return {
        "id": f"2025-04-20-facet-counts-{n}",
        "kind": CATEGORIES[slug].kind.value,
        "category": slug,
        "date": random_day(rng).isoformat(),
        "date_precision": "day",
        "title": f"Facet counts test event {n}",
        "summary": "Written by the facet counts test.",
        "participants": random_participants(rng, states, organisations),
        "sources": [SOURCE],
    }


def random_edit(rng: random.Random, states: list[str], organisations: list[str]) -> dict[str, Any]:
    choice = rng.randrange(4)
    if choice == 0:
        return {"date": random_day(rng).isoformat()}
    if choice == 1:
        # Another category, of the same kind or of the other one.
        slug = rng.choice(SLUGS)
        return {"kind": CATEGORIES[slug].kind.value, "category": slug}
    if choice == 2:
        return {"participants": random_participants(rng, states, organisations)}
    return {"title": "Retitled: counts unchanged"}


def shared(w: Writable) -> list[tuple[str, str]]:
    """Pairs of actors (state codes, or a state's and an organisation's) that share live
    events, so that filters of several actors meet events counted more than once."""
    with w.session() as s:
        rows = s.execute(
            text(
                "SELECT DISTINCT sa.code, COALESCE(sb.code, o.code)"
                " FROM event_participant a JOIN state sa ON sa.id = a.state_id"
                " JOIN event_participant b ON b.event_id = a.event_id AND b.id <> a.id"
                " LEFT JOIN state sb ON sb.id = b.state_id"
                " LEFT JOIN organisation o ON o.id = b.organisation_id"
                " JOIN event e ON e.id = a.event_id"
                " WHERE e.deleted_at IS NULL AND (sb.code > sa.code OR o.code IS NOT NULL)"
            )
        ).all()
    return sorted((a, b) for a, b in rows)


def random_filters(
    rng: random.Random,
    states: list[str],
    organisations: list[str],
    pairs: list[tuple[str, str]],
    tags: list[str],
) -> FacetsQuery:
    params: dict[str, Any] = {"interval": rng.choice(["month", "year"])}
    actor = rng.random()
    state_pairs = [p for p in pairs if p[1] in states] or [(states[0], states[1])]
    mixed = [p for p in pairs if p[1] in organisations] or [(states[0], organisations[0])]
    if actor < 0.3:
        params["state"] = [rng.choice(states)]
    elif actor < 0.4:
        params["organisation"] = [rng.choice(organisations)]
    elif actor < 0.5:
        # Several of a kind: any of them; often two that share events, and others.
        params["state"] = list(
            dict.fromkeys([*rng.choice(state_pairs), *rng.sample(states, rng.randint(0, 2))])
        )
    elif actor < 0.55:
        params["organisation"] = rng.sample(organisations, rng.randint(2, 3))
    elif actor < 0.65:
        # States and organisations: both, one of each.
        state, organisation = rng.choice(mixed)
        params["state"] = [state, *rng.sample(states, rng.randint(0, 1))]
        params["organisation"] = [organisation, *rng.sample(organisations, rng.randint(0, 1))]
    elif actor < 0.72:
        # All of them.
        params["between"] = ",".join(
            dict.fromkeys([*rng.choice(state_pairs), *rng.sample(states, rng.randint(0, 1))])
        )
    # Filters read off other indexes, or from every matching event's record.
    if rng.random() < 0.15:
        params["tag"] = rng.sample(tags, rng.randint(1, 2))
    if rng.random() < 0.06:
        params["q"] = rng.choice(["facet", "counts", "summit"])
    if rng.random() < 0.06:
        params[rng.choice(["actor", "target"])] = [rng.choice(states)]
    if params.get("organisation") and rng.random() < 0.2:
        params["include_members"] = True
    if rng.random() < 0.3:
        params["kind"] = [rng.choice(["diplomatic_action", "incident"])]
    if rng.random() < 0.3:
        params["category"] = rng.sample(SLUGS, rng.randint(1, 3))
    if rng.random() < 0.6:
        lo = random_day(rng)
        hi = lo + dt.timedelta(days=rng.randrange(1, 900))
        # Days, whole months and whole years, so every split of a window is exercised.
        params["from"] = rng.choice([lo.isoformat(), lo.isoformat()[:7], lo.isoformat()[:4]])
        if rng.random() < 0.8:
            params["to"] = rng.choice([hi.isoformat(), hi.isoformat()[:7], hi.isoformat()[:4]])
    elif rng.random() < 0.3:
        params["to"] = random_day(rng).isoformat()
    return FacetsQuery.model_validate(params)


def assert_exact(
    w: Writable, rng: random.Random, states: list[str], organisations: list[str]
) -> int:
    """Random filters from the counts equal the GROUP BY; returns how many had events."""
    nonempty = 0
    pairs = shared(w)
    with w.session() as s:
        tags = sorted(s.scalars(select(EventTag.tag).distinct()))
        assert counts.check(s) == {"facet_count": 0, "facet_actor_count": 0, "facet_event": 0}
        for _ in range(80):
            query = random_filters(rng, states, organisations, pairs, tags)
            expected = service.grouped(s, query)
            assert service.facets(s, query) == expected, query
            nonempty += expected["total"] > 0
    return nonempty


@pytest.mark.parametrize("seed", [1, 2])
def test_counts_stay_exact_through_writes_edits_and_deletes(writable: Writable, seed: int) -> None:
    w = writable
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    states, organisations = codes(w)
    written: set[str] = set()
    for n in range(25):
        body = random_event(rng, n, states, organisations)
        create(w, body)
        written.add(body["id"])
    for _ in range(30):
        public_id = rng.choice(sorted(written))
        response = w.client.patch(
            f"/v1/events/{public_id}",
            json=random_edit(rng, states, organisations),
            headers={**w.auth(), "If-Match": "*"},
        )
        assert response.status_code in (200, 410), response.text
    for public_id in rng.sample(sorted(written), 6):
        response = w.client.delete(f"/v1/events/{public_id}", headers={**w.auth(), "If-Match": "*"})
        assert response.status_code in (204, 410), response.text
    assert assert_exact(w, rng, states, organisations) > 20
    # What the endpoint serves is the same sum.
    served = w.client.get("/v1/timeline/facets", params={"state": states[0], "from": "2021-03-15"})
    with w.session() as s:
        query = FacetsQuery.model_validate({"state": [states[0]], "from": "2021-03-15"})
        assert served.json() == service.grouped(s, query)


def test_a_write_past_the_write_step_is_found_and_the_rebuild_mends_it(writable: Writable) -> None:
    """A row changed with Core (as a bulk loader does) is out of step until the counts are
    rebuilt: the check finds it and the command-line rebuild mends it."""
    w = writable
    with w.session() as s:
        s.execute(
            update(Event)
            .where(Event.id == s.scalar(select(Event.id).limit(1)))
            .values(category="protest")
        )
        s.execute(update(Event).where(Event.category == "protest").values(kind="incident"))
        s.commit()
        differ = counts.check(s)
    assert differ["facet_event"] >= 1 and differ["facet_count"] > 0
    checked = subprocess.run(
        [sys.executable, "-m", "app.timeline.counts", "--check", "--database-url", w.url],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 1 and "rows differ" in checked.stderr
    rebuilt = subprocess.run(
        [sys.executable, "-m", "app.timeline.counts", "--database-url", w.url],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert rebuilt.stderr.strip().splitlines()[-1].startswith("counts: rebuilt facet_event")
    with w.session() as s:
        assert counts.check(s) == {"facet_count": 0, "facet_actor_count": 0, "facet_event": 0}
        # The stored documents, which the Core write left behind too (the fixture checks them).
        documents.write(s, list(s.scalars(select(Event.id).where(Event.category == "protest"))))
        s.commit()


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (dt.date(2024, 3, 15), dt.date(2025, 6, 30)),
        (dt.date(2024, 1, 1), dt.date(2026, 12, 31)),
        (dt.date(2024, 3, 1), dt.date(2024, 3, 31)),
        (dt.date(2024, 3, 2), dt.date(2024, 3, 30)),
        (dt.date(2023, 12, 31), dt.date(2024, 1, 1)),
        (dt.date(2023, 2, 1), dt.date(2026, 11, 30)),
        (dt.date(2023, 2, 1), None),
        (None, dt.date(2022, 11, 20)),
    ],
)
def test_a_window_splits_into_whole_periods_and_edge_days(
    start: dt.date | None, end: dt.date | None
) -> None:
    """Whole years, whole months and the days left at the edges cover the window once each."""
    pieces, days = counts.split(start, end)
    runs = sorted([counts.days_of(piece) for piece in pieces] + days)
    assert runs[0][0] == (start or dt.date.min)
    assert runs[-1][1] == (end or dt.date.max)
    for (_, hi), (lo, _) in itertools.pairwise(runs):
        assert lo == hi + dt.timedelta(days=1)
    assert len(days) <= 2 and all((hi - lo).days < 31 for lo, hi in days)
    assert counts.split(None, None) == ([("all", 0, 0)], [])

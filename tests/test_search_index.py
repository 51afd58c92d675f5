"""SQLite's full-text index in timeline order (app/timeline/search_index.py) stays exact, and the
pages read through it are the pages of the plans that read every match.

Random writes, edits (words, dates) and soft deletes through the API, then the index compared
with the events' stored words (`search_index.check`), and random `q=` pages walked cursor by
cursor compared with the same query read in one go by the plan the index replaced
(`PagePlan.unkeyed`). PostgreSQL has no such index: its pages are checked by the same walk.
"""

import random
import subprocess
import sys
from typing import Any

import orjson
import pytest
from alembic import command
from sqlalchemy import text

from app.config import PROJECT_ROOT
from app.timeline import search_index, service, statements
from app.timeline.schemas import TimelineQuery
from tests.conftest import ON_POSTGRES, ThrowawayDatabases, Writable, alembic_config
from tests.test_facet_counts import codes, random_day, random_participants
from tests.test_migrations import seeded_at_head
from tests.test_writes import SOURCE, create

SECRET = "search-index-secret"  # noqa: S105 - signs test cursors
WORDS = ["ceasefire", "border", "talks", "cease", "envoy", "border talks", "tinzaouat"]


def random_event(
    rng: random.Random, n: int, states: list[str], organisations: list[str]
) -> dict[str, Any]:
    return {
        "id": f"2025-04-20-search-index-{n}",
        "kind": "diplomatic_action",
        "category": "statement",
        "date": random_day(rng).isoformat(),
        "date_precision": "day",
        "title": f"{' '.join(rng.sample(WORDS, 2))} {n}",
        "summary": "Written by the search index test.",
        "participants": random_participants(rng, states, organisations),
        "sources": [SOURCE],
    }


def walked(session: Any, params: dict[str, Any]) -> list[str]:
    """Every page of the query, cursor by cursor: the public ids in order."""
    out: list[str] = []
    cursor = None
    while True:
        query = TimelineQuery.model_validate({**params, **({"cursor": cursor} if cursor else {})})
        page = service.page(session, query, cursor_secret=SECRET)
        out += [orjson.loads(orjson.dumps(item))["id"] for item in page.items]
        if not page.next_cursor:
            return out
        cursor = page.next_cursor


def in_one_go(session: Any, params: dict[str, Any]) -> list[str]:
    """The same query's events by the plan that reads every match (`PagePlan.unkeyed`)."""
    query = TimelineQuery.model_validate(params)
    plan = service._plan(session, query, driven=True)
    if plan.text == "fts_keys":
        plan = plan.unkeyed()
    rows = service._rows(session, plan, query.order == "desc", None, 100_000)
    return [row.public_id for row in rows]


def random_query(rng: random.Random, states: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {"q": rng.choice(WORDS), "limit": rng.choice([1, 2, 3, 7, 50])}
    if rng.random() < 0.5:
        params["order"] = "desc"
    if rng.random() < 0.4:
        params["state"] = [rng.choice(states)]
    if rng.random() < 0.4:
        params["from"] = random_day(rng).isoformat()[: rng.choice([4, 7, 10])]
    if rng.random() < 0.3:
        params["to"] = random_day(rng).isoformat()
        if "from" in params and params["to"] < params["from"]:
            del params["from"]
    return params


def test_the_index_and_its_pages_stay_exact_through_writes_edits_and_deletes(
    writable: Writable, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = writable
    rng = random.Random(7)  # noqa: S311 - reproducible test data
    states, organisations = codes(w)
    written = []
    for n in range(40):
        body = random_event(rng, n, states, organisations)
        create(w, body)
        written.append(body["id"])
    for public_id in rng.sample(written, 20):
        change = rng.choice(
            [
                {"date": random_day(rng).isoformat()},
                {"title": " ".join(rng.sample(WORDS, 2))},
                {"summary": "No word of the test's any more."},
            ]
        )
        response = w.client.patch(
            f"/v1/events/{public_id}", json=change, headers={**w.auth(), "If-Match": "*"}
        )
        assert response.status_code == 200, response.text
    for public_id in rng.sample(written, 8):
        response = w.client.delete(f"/v1/events/{public_id}", headers={**w.auth(), "If-Match": "*"})
        assert response.status_code in (204, 410), response.text
    with w.session() as s:
        if not ON_POSTGRES:
            assert search_index.check(s) == 0
        nonempty = 0
        for round_ in range(40):
            # Some pages read a few matches at a time and give up on the index (other filters
            # keep few of them), as a busy database's would.
            monkeypatch.setattr(statements, "FEW_MATCHES", 5 if round_ % 2 else 5_000)
            params = random_query(rng, states)
            expected = in_one_go(s, params)
            assert walked(s, params) == expected, params
            nonempty += bool(expected)
    assert nonempty > 20


@pytest.mark.skipif(ON_POSTGRES, reason="PostgreSQL has no index in timeline order")
def test_a_write_past_the_triggers_is_found_and_the_rebuild_mends_it(writable: Writable) -> None:
    """A bulk load that drops the triggers leaves the index behind: the check finds it and the
    command-line rebuild mends it."""
    w = writable
    with w.session() as s:
        s.execute(text("DROP TRIGGER event_fts_timeline_after_update"))
        s.execute(text("UPDATE event SET search_text = 'rewritten words' WHERE id = 1"))
        s.execute(text("UPDATE event SET deleted_at = '2025-01-01 00:00:00' WHERE id = 2"))
        s.commit()
        assert search_index.check(s) > 0
    checked = subprocess.run(
        [sys.executable, "-m", "app.timeline.search_index", "--check", "--database-url", w.url],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 1 and "pairs differ" in checked.stderr
    subprocess.run(
        [sys.executable, "-m", "app.timeline.search_index", "--database-url", w.url],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    with w.session() as s:
        assert search_index.check(s) == 0
        # The trigger back, as the fixture's own checks expect a database the API keeps.
        from importlib import import_module

        migration = import_module("migrations.versions.2026-12-07-1300_search_in_timeline_order")
        s.execute(text(migration.TRIGGERS[2]))
        s.execute(text("UPDATE event SET deleted_at = NULL WHERE id = 2"))
        s.commit()
        assert search_index.check(s) == 0


@pytest.mark.skipif(ON_POSTGRES, reason="PostgreSQL has no index in timeline order")
def test_the_index_up_and_down(databases: ThrowawayDatabases) -> None:
    """The upgrade indexes the events already there; the downgrade drops the index and its
    triggers, and writes after it still work."""
    url = databases.new()
    config = alembic_config(url)
    engine = seeded_at_head(url)
    command.downgrade(config, "-1")
    with engine.connect() as conn:
        left = conn.scalars(
            text("SELECT name FROM sqlite_master WHERE name LIKE 'event_fts_timeline%'")
        ).all()
        assert left == []
        conn.execute(text("UPDATE event SET search_text = 'after the downgrade' WHERE id = 1"))
        conn.commit()
    command.upgrade(config, "head")
    from app import writes

    with writes.session_factory(engine)() as session:
        assert search_index.check(session) == 0
        live = session.scalar(text("SELECT count(*) FROM event WHERE deleted_at IS NULL"))
        assert live and search_index.rebuild(session) == live
    engine.dispose()

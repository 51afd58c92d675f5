"""SQLite's full-text index in timeline order (app/timeline/search_index.py) stays exact, and the
pages read through it are the pages of the plans that read every match.

Random writes, edits (words, dates) and soft deletes through the API, then the index compared
with the events' stored words (`search_index.check`), and random `q=` pages walked cursor by
cursor compared with the same query read in one go by the plan the index replaced
(`PagePlan.unkeyed`). PostgreSQL has no index in timeline order, but asks its GIN index for the
words and the actors together (`event.search_actors`): its pages are checked by the same walk
against the words alone, and the column against the participants.
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
from app.timeline import planner, search_index, service, statements
from app.timeline.schemas import TimelineQuery
from tests.conftest import (
    ON_POSTGRES,
    ThrowawayDatabases,
    Writable,
    alembic_config,
    revision_before,
)
from tests.test_facet_counts import codes, random_day, random_participants
from tests.test_migrations import seeded_at_head
from tests.test_writes import SOURCE, create

SECRET = "search-index-secret"  # noqa: S105 - signs test cursors
ACTORS_MIGRATION = "migrations.versions.2026-12-07-1400_search_actors_in_timeline_order"
POSTGRESQL_ACTORS = "9e2b4d6f8a13"
# A participant written with SQL past the API: a state added to event 1, for the tests that
# write one with the index's trigger off.
A_STATE_JOINS_EVENT_1 = text(
    "INSERT INTO event_participant (event_id, position, state_id, role, date, public_id)"
    " SELECT e.id, 99, (SELECT max(id) FROM state), 'affected', e.date, e.public_id"
    " FROM event e WHERE e.id = 1"
)
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
    """The same query's events by the plan that reads every match (`PagePlan.unkeyed`) of the
    words alone, no actor asked of the index."""
    query = TimelineQuery.model_validate(params)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(planner, "_actors", lambda _f: ())
        plan = service._plan(session, query, driven=True)
    if plan.text == "fts_keys":
        plan = plan.unkeyed()
    rows = service._rows(session, plan, query.order == "desc", None, 100_000)
    return [row.public_id for row in rows]


def random_query(
    rng: random.Random, states: list[str], organisations: list[str] | None = None
) -> dict[str, Any]:
    params: dict[str, Any] = {"q": rng.choice(WORDS), "limit": rng.choice([1, 2, 3, 7, 50])}
    if rng.random() < 0.5:
        params["order"] = "desc"
    if rng.random() < 0.4:
        params["state"] = [rng.choice(states)]
    if organisations is not None:
        # The filters the index answers with the words (`planner._actors`), and those it
        # leaves to the page's statement (roles, members).
        draw = rng.random()
        if draw < 0.15:
            params["state"] = rng.sample(states, 2)
        elif draw < 0.3:
            params["between"] = ",".join(rng.sample(states, rng.choice([2, 2, 3])))
        elif draw < 0.45:
            params["organisation"] = rng.sample(organisations, rng.choice([1, 2]))
            params["include_members"] = rng.random() < 0.3
        elif draw < 0.55:
            params["actor"] = [rng.choice(states)]
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
    # Participants replaced, some with a state in two roles (one actor token all the same), some
    # of them then dropping their organisations or their states.
    for public_id in rng.sample(written, 20):
        participants = random_participants(rng, states, organisations)
        if rng.random() < 0.3:
            participants.append({"state": participants[0]["state"], "role": "affected"})
        if rng.random() < 0.2:
            participants = [p for p in participants if "organisation" not in p]
        response = w.client.patch(
            f"/v1/events/{public_id}",
            json={"participants": participants},
            headers={**w.auth(), "If-Match": "*"},
        )
        assert response.status_code == 200, response.text
    deleted = rng.sample(written, 8)
    for public_id in deleted:
        response = w.client.delete(f"/v1/events/{public_id}", headers={**w.auth(), "If-Match": "*"})
        assert response.status_code in (204, 410), response.text
    with w.session() as s:
        assert search_index.check(s) == 0
        # A soft-deleted event's participants change past the API: it stays out of the index
        # (SQLite; PostgreSQL keeps every event's actors), and in step once restored.
        s.execute(
            text(
                "UPDATE event_participant SET state_id = (SELECT min(id) FROM state)"
                " WHERE event_id = (SELECT id FROM event WHERE public_id = :id)"
                " AND state_id IS NOT NULL"
            ),
            {"id": deleted[0]},
        )
        s.execute(
            text("UPDATE event SET deleted_at = NULL WHERE public_id = :id"), {"id": deleted[1]}
        )
        assert search_index.check(s) == 0
        s.rollback()
        nonempty = 0
        asked_the_index = 0
        for round_ in range(80):
            # Some pages read a few matches at a time and give up on the index (other filters
            # keep few of them), as a busy database's would.
            monkeypatch.setattr(statements, "FEW_MATCHES", 5 if round_ % 2 else 5_000)
            params = random_query(rng, states, organisations)
            expected = in_one_go(s, params)
            assert walked(s, params) == expected, params
            nonempty += bool(expected)
            plan = service._plan(s, TimelineQuery.model_validate(params), driven=True)
            asked_the_index += bool(plan.actors)
    assert nonempty > 30
    assert asked_the_index > 20


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
    assert checked.returncode == 1 and "differ" in checked.stderr
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

        migration = import_module(ACTORS_MIGRATION)
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
    command.downgrade(config, revision_before(config, "5a1c7e3b9d20"))
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


@pytest.mark.skipif(ON_POSTGRES, reason="PostgreSQL has no index in timeline order")
def test_a_participant_written_past_the_triggers_is_found_and_the_rebuild_mends_it(
    writable: Writable,
) -> None:
    w = writable
    with w.session() as s:
        s.execute(text("DROP TRIGGER event_fts_timeline_participant_after_insert"))
        s.execute(A_STATE_JOINS_EVENT_1)
        s.commit()
        assert search_index.check(s) > 0
        search_index.rebuild(s)
        assert search_index.check(s) == 0
        from importlib import import_module

        # The trigger back, and the participant gone again, as the fixture's own checks expect
        # a database the API keeps.
        s.execute(text(import_module(ACTORS_MIGRATION).TRIGGERS[3]))
        s.execute(text("DELETE FROM event_participant WHERE event_id = 1 AND position = 99"))
        s.commit()
        assert search_index.check(s) == 0


def _one_column_index_differs(conn: Any) -> int:
    """The previous revision's check: (key, word) pairs differing between its one-column index
    and the live events' stored words."""
    conn.execute(
        text("CREATE VIRTUAL TABLE temp.words USING fts5vocab(main, event_fts_timeline, instance)")
    )
    indexed = set(conn.execute(text("SELECT doc, term FROM temp.words")).tuples())
    conn.execute(text("DROP TABLE temp.words"))
    key = "(CAST(julianday(date) AS INTEGER) << 32) + id"
    expected = {
        (k, word)
        for k, stored in conn.execute(
            text(f"SELECT {key}, search_text FROM event WHERE deleted_at IS NULL")
        ).tuples()
        for word in stored.split(" ")
        if word
    }
    return len(indexed ^ expected)


@pytest.mark.skipif(ON_POSTGRES, reason="PostgreSQL has no index in timeline order")
def test_the_actors_up_and_down(databases: ThrowawayDatabases) -> None:
    """The upgrade indexes the actors of the events already there; the downgrade gives back the
    index of words alone, exact, and kept in step by the previous triggers (a participant's
    write no longer touches it)."""
    url = databases.new()
    config = alembic_config(url)
    engine = seeded_at_head(url)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM event_fts_actors")) == conn.scalar(
            text("SELECT count(*) FROM event WHERE deleted_at IS NULL")
        )
    command.downgrade(config, revision_before(config, "7d3e9a1c4b58"))
    with engine.connect() as conn:
        left = conn.scalars(
            text(
                "SELECT name FROM sqlite_master WHERE name LIKE 'event_fts_actors%'"
                " OR name LIKE 'event_fts_timeline_participant%'"
            )
        ).all()
        assert left == []
        sql = conn.scalar(text("SELECT sql FROM sqlite_master WHERE name = 'event_fts_timeline'"))
        assert sql is not None and "actors" not in sql
        assert _one_column_index_differs(conn) == 0
        conn.execute(text("UPDATE event SET search_text = 'after the downgrade' WHERE id = 1"))
        conn.execute(text("UPDATE event SET deleted_at = '2025-01-01 00:00:00' WHERE id = 2"))
        conn.execute(text("DELETE FROM event_participant WHERE event_id = 3"))
        assert _one_column_index_differs(conn) == 0
        conn.commit()
    command.upgrade(config, "head")
    from app import writes

    with writes.session_factory(engine)() as session:
        assert search_index.check(session) == 0
        session.execute(text("UPDATE event SET deleted_at = NULL WHERE id = 2"))
        session.execute(text("DELETE FROM event_participant WHERE event_id = 4"))
        assert search_index.check(session) == 0
        # Deleted outright (never through the API): the participants go in a cascade first,
        # and the event's indexed row still with the actors it was indexed with.
        session.execute(text("DELETE FROM event WHERE id IN (5, 6)"))
        assert (
            session.scalar(text("SELECT count(*) FROM event_participant WHERE event_id = 5")) == 0
        )
        assert search_index.check(session) == 0
        session.commit()
    engine.dispose()


def _pages(session: Any, params: dict[str, Any]) -> list[tuple[bytes, str | None]]:
    """Every page of the query, cursor by cursor: each page's body and next cursor."""
    out: list[tuple[bytes, str | None]] = []
    cursor = None
    while True:
        query = TimelineQuery.model_validate({**params, **({"cursor": cursor} if cursor else {})})
        page = service.page(session, query, cursor_secret=SECRET)
        out.append((orjson.dumps(page.items), page.next_cursor))
        if not page.next_cursor:
            return out
        cursor = page.next_cursor


SEEDED_QUERIES = [
    {"q": "ambassador", "state": ["DZA"]},
    {"q": "ambassador", "state": ["MLI", "FRA"]},
    {"q": "drone", "state": ["MLI"]},
    {"q": "coup", "state": ["NER"], "from": "2023"},
    {"q": "ambassador", "between": "MLI,DZA"},
    {"q": "sanctions", "organisation": ["ECOWAS"]},
    {"q": "sanctions", "organisation": ["ECOWAS"], "include_members": True},
    {"q": "ambassador", "actor": ["DZA"]},
]


@pytest.mark.skipif(ON_POSTGRES, reason="SQLite's index in timeline order")
@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("limit", [1, 2, 50])
def test_pages_of_words_and_actors_equal_the_general_paths(
    session: Any, monkeypatch: pytest.MonkeyPatch, order: str, limit: int
) -> None:
    """Page by page, body and cursor alike: the words and actors asked of the index together,
    the words alone (the page's statement testing the actors), and every match read first."""
    from app.timeline import planner

    asked = 0
    several = 0
    for query in SEEDED_QUERIES:
        params = {**query, "order": order, "limit": limit}
        plan = service._plan(session, TimelineQuery.model_validate(params), driven=True)
        asked += bool(plan.actors)
        with_actors = _pages(session, params)
        with monkeypatch.context() as m:
            m.setattr(planner, "_actors", lambda _f: ())
            words_alone = _pages(session, params)
        with monkeypatch.context() as m:

            def unkeyed(s: Any, plan: Any, desc: bool, after: Any, limit: int, *, csv: bool) -> Any:
                return service._rows(s, plan.unkeyed(), desc, after, limit, csv=csv)

            m.setattr(service, "_keyed_rows", unkeyed)
            every_match_first = _pages(session, params)
        assert with_actors == words_alone == every_match_first, params
        assert with_actors[0][0] != b"[]", params
        several += len(with_actors) > 1
    assert asked == 6  # all but include_members and actor=
    if limit < 50:
        assert several == len(SEEDED_QUERIES)


@pytest.mark.skipif(not ON_POSTGRES, reason="PostgreSQL's actors beside the words")
def test_the_postgresql_actors_follow_participants_and_the_rebuild_mends_them(
    writable: Writable,
) -> None:
    """Triggers on `event_participant` keep `event.search_actors`; a participant written past
    them is found by the check (also on the command line) and mended by the rebuild. A change
    of a participant's copy of its event's date writes no event row."""
    w = writable
    with w.session() as s:
        before = s.scalar(text("SELECT xmin::text FROM event WHERE id = 1"))
        s.execute(text("UPDATE event_participant SET date = date WHERE event_id = 1"))
        assert s.scalar(text("SELECT xmin::text FROM event WHERE id = 1")) == before
        # Moved to another event, and a state changed: both events follow.
        s.execute(
            text(
                "UPDATE event_participant SET event_id = 2, state_id = (SELECT max(id) FROM state)"
                " WHERE id = (SELECT min(id) FROM event_participant"
                " WHERE event_id = 1 AND state_id IS NOT NULL)"
            )
        )
        assert search_index.check(s) == 0
        s.rollback()
        s.execute(
            text(
                "ALTER TABLE event_participant"
                " DISABLE TRIGGER event_participant_search_actors_after_insert_or_delete"
            )
        )
        s.execute(A_STATE_JOINS_EVENT_1)
        s.execute(
            text(
                "ALTER TABLE event_participant"
                " ENABLE TRIGGER event_participant_search_actors_after_insert_or_delete"
            )
        )
        s.commit()
        assert search_index.check(s) == 1
    command_line = [sys.executable, "-m", "app.timeline.search_index", "--database-url", w.url]
    checked = subprocess.run(
        [*command_line, "--check"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 1 and "1 events' actors or unlisted words differ" in checked.stderr
    rebuilt = subprocess.run(
        command_line, cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    assert "1 events' actors set" in rebuilt.stderr
    with w.session() as s:
        assert search_index.check(s) == 0
        # The participant gone again, as the fixture's own checks expect the seed.
        s.execute(text("DELETE FROM event_participant WHERE event_id = 1 AND position = 99"))
        s.commit()
        assert search_index.check(s) == 0


@pytest.mark.skipif(not ON_POSTGRES, reason="PostgreSQL's actors beside the words")
def test_the_postgresql_actors_up_and_down(databases: ThrowawayDatabases) -> None:
    """The upgrade fills the actors of the events already there and indexes them with the
    words; the downgrade gives back the index of words alone and no trigger, and writes of
    participants after it still work."""
    url = databases.new()
    config = alembic_config(url)
    engine = seeded_at_head(url)
    objects = (
        "SELECT (SELECT count(*) FROM pg_trigger WHERE tgname LIKE '%search_actors%'),"
        " (SELECT count(*) FROM pg_proc WHERE proname LIKE '%search_actors%'),"
        " (SELECT count(*) FROM information_schema.columns WHERE column_name = 'search_actors'),"
        " (SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_event_search')"
    )
    with engine.connect() as conn:
        assert conn.execute(text(objects)).one() == (
            2,
            2,
            1,
            "CREATE INDEX ix_event_search ON public.event USING gin (search_vector, search_actors)",
        )
    command.downgrade(config, revision_before(config, POSTGRESQL_ACTORS))
    with engine.connect() as conn:
        assert conn.execute(text(objects)).one() == (
            0,
            0,
            0,
            "CREATE INDEX ix_event_search ON public.event USING gin (search_vector)",
        )
        conn.execute(text("DELETE FROM event_participant WHERE event_id = 3"))
        conn.commit()
    command.upgrade(config, "head")
    from app import writes

    with writes.session_factory(engine)() as session:
        assert search_index.check(session) == 0
        assert session.scalar(text("SELECT search_actors FROM event WHERE id = 3")) == ""
        assert search_index.rebuild(session) == 0
        # Deleted outright (never through the API): the participants' triggers, run by the
        # cascade, find no event row to set.
        session.execute(text("DELETE FROM event WHERE id IN (5, 6)"))
        assert search_index.check(session) == 0
        session.commit()
    engine.dispose()


@pytest.mark.skipif(ON_POSTGRES, reason="the PostgreSQL migration on SQLite")
def test_the_postgresql_actors_migration_changes_nothing_on_sqlite(
    databases: ThrowawayDatabases,
) -> None:
    url = databases.new()
    config = alembic_config(url)
    engine = seeded_at_head(url)
    schema = "SELECT type, name, sql FROM sqlite_master ORDER BY type, name"
    with engine.connect() as conn:
        at_head = conn.execute(text(schema)).all()
    command.downgrade(config, revision_before(config, POSTGRESQL_ACTORS))
    with engine.connect() as conn:
        assert conn.execute(text(schema)).all() == at_head
    command.upgrade(config, "head")
    engine.dispose()

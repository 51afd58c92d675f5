"""The timeline queries use the indexes built for them, on SQLite and on PostgreSQL.

The statements are the ones `app.timeline.service.page` really executes (captured from the
engine), explained on the same connection: `EXPLAIN QUERY PLAN` on SQLite, `EXPLAIN` with
sequential scans, bitmap scans and sorts disabled on PostgreSQL (the seed tables are far too
small for the planner to prefer an index on its own; with those off, a remaining "Seq Scan" or
"Sort" means no index could serve the filter or the order). Plans are structural facts, so
nothing here is timed; bench/ measures the cost.
"""

import datetime as dt
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select, text, update
from sqlalchemy.orm import Session

from app.models import Event
from app.timeline import counts, planner, search_index, service, statements
from app.timeline.schemas import FacetsQuery, TimelineQuery
from tests.conftest import ON_POSTGRES

SECRET = "explain-secret"  # noqa: S105 - signs test cursors


@contextmanager
def captured(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    statements: list[tuple[str, Any]] = []

    def grab(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", grab)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", grab)


def page_plan(engine: Engine, session: Session, params: dict[str, Any]) -> str:
    """The plan of the page query that `service.page` runs for these parameters: the ordered and
    limited page inside `statements.page_documents` (`outer_plan` checks what wraps it)."""
    return _plans(engine, session, params)[0]


def outer_plan(engine: Engine, session: Session, params: dict[str, Any]) -> str:
    """The rest of that statement's plan: reading the page's documents and the last change."""
    return _plans(engine, session, params)[1]


def _plans(engine: Engine, session: Session, params: dict[str, Any]) -> tuple[str, str]:
    if ON_POSTGRES:
        # On a table this small every plan costs about the same; make the planner say whether an
        # index *can* serve the filter (no Seq Scan left) and the order (no Sort left).
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
            session.execute(text(f"SET LOCAL {setting} = off"))
    query = TimelineQuery.model_validate(params)
    with captured(engine) as statements:
        service.page(session, query, cursor_secret=SECRET)
    pages = [
        (sql, p)
        for sql, p in statements
        if "ORDER BY" in sql and "LIMIT" in sql and "event" in sql and "event_fts_words" not in sql
    ]
    assert len(pages) == 1, [sql for sql, _ in statements]
    sql, parameters = pages[0]
    conn = session.connection()
    if ON_POSTGRES:
        lines = [r[0] for r in conn.exec_driver_sql("EXPLAIN " + sql, parameters)]
        # The page is the subtree of the outermost Limit whose input is not the last change's
        # (that one reads the revision index).
        start = next(
            i
            for i, line in enumerate(lines)
            if "Limit" in line and "revision" not in (lines[i + 1] if i + 1 < len(lines) else "")
        )
        depth = len(lines[start]) - len(lines[start].lstrip())
        end = next(
            (
                j
                for j in range(start + 1, len(lines))
                if len(lines[j]) - len(lines[j].lstrip()) <= depth
            ),
            len(lines),
        )
        inner = lines[start:end]
        return "\n".join(inner), "\n".join(lines[:start] + lines[end:])
    rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, parameters).all()
    # (id, parent, -, detail): the page is everything under its CO-ROUTINE (or MATERIALIZE).
    head = {r[0] for r in rows if r[3] in ("CO-ROUTINE page", "MATERIALIZE page")}
    below = set(head)
    for node, parent, _, _ in rows:
        if parent in below:
            below.add(node)
    inner = [r[3] for r in rows if r[0] in below - head]
    outer = [r[3] for r in rows if r[0] not in below]
    assert inner, [r[3] for r in rows]
    return "\n".join(inner), "\n".join(outer)


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({}, id="no-filter"),
        pytest.param({"state": ["DZA"], "from": "2024"}, id="state-window"),
        pytest.param({"between": "MLI,DZA"}, id="between"),
    ],
)
def test_a_page_reads_its_documents_by_key(
    engine: Engine, session: Session, params: dict[str, Any]
) -> None:
    """The page, its stored documents and the last change (Last-Modified) come in one
    statement: each document looked up by its event's key, the change off its index."""
    plan = outer_plan(engine, session, params)
    if ON_POSTGRES:
        assert "event_document_pkey" in plan, plan
        assert "ix_revision_at" in plan, plan
    else:
        assert "SEARCH event_document USING INTEGER PRIMARY KEY" in plan, plan
        assert "ix_revision_at" in plan, plan
        # Scanning the page's own rows (at most a page) is the point.
        plan = "\n".join(line for line in plan.splitlines() if line != "SCAN page")
    assert_no_full_scan(plan)


def next_cursor(session: Session, params: dict[str, Any]) -> str:
    page = service.page(
        session, TimelineQuery.model_validate({**params, "limit": 1}), cursor_secret=SECRET
    )
    assert page.next_cursor is not None, "the seed has more than one matching event"
    return page.next_cursor


def assert_no_full_scan(plan: str) -> None:
    if ON_POSTGRES:
        assert "Seq Scan" not in plan, plan
    else:
        full_scans = [
            line for line in plan.splitlines() if line.startswith("SCAN ") and " USING " not in line
        ]
        assert not full_scans, plan


def assert_sorted_by_index(plan: str) -> None:
    """The page comes out of an index in timeline order: no sort of all matching rows."""
    if ON_POSTGRES:
        assert "Sort" not in plan, plan
    else:
        assert "TEMP B-TREE FOR ORDER BY" not in plan, plan


# (query parameters, the index that must serve them)
FILTERS = [
    pytest.param({}, "ix_event_timeline", id="no-filter"),
    pytest.param({"from": "2024", "to": "2025-04"}, "ix_event_timeline", id="date-window"),
    pytest.param({"category": ["ambassador_recall"]}, "ix_event_category_timeline", id="category"),
    pytest.param({"kind": ["incident"]}, "ix_event_kind_timeline", id="kind"),
    pytest.param({"state": ["DZA"]}, "ix_event_participant_state_timeline", id="state"),
    pytest.param(
        {"state": ["MLI"], "from": "2024"}, "ix_event_participant_state_timeline", id="state-window"
    ),
    pytest.param({"between": "MLI,DZA"}, "ix_event_state_pair_timeline", id="between"),
    pytest.param(
        {"organisation": ["AES"]}, "ix_event_participant_organisation_timeline", id="organisation"
    ),
    pytest.param({"tag": ["april-2025-crisis"]}, "ix_event_tag_timeline", id="tag"),
]


@pytest.mark.parametrize(("params", "index"), FILTERS)
def test_filter_uses_its_index(
    engine: Engine, session: Session, params: dict[str, Any], index: str
) -> None:
    plan = page_plan(engine, session, params)
    assert index in plan, plan
    assert_no_full_scan(plan)


@pytest.mark.parametrize(("params", "index"), FILTERS)
def test_cursor_page_uses_its_index(
    engine: Engine, session: Session, params: dict[str, Any], index: str
) -> None:
    cursor = next_cursor(session, params)
    plan = page_plan(engine, session, {**params, "cursor": cursor})
    assert index in plan, plan
    assert_no_full_scan(plan)


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({}, id="no-filter"),
        pytest.param({"from": "2024", "to": "2025-04"}, id="date-window"),
        pytest.param({"category": ["ambassador_recall"]}, id="category"),
        pytest.param({"kind": ["incident"]}, id="kind"),
        pytest.param({"from": "2024", "order": "desc"}, id="date-window-desc"),
    ],
)
def test_event_column_filters_read_the_page_in_index_order(
    engine: Engine, session: Session, params: dict[str, Any]
) -> None:
    assert_sorted_by_index(page_plan(engine, session, params))


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({}, id="no-filter"),
        pytest.param({"category": ["ambassador_recall"]}, id="category"),
    ],
)
def test_cursor_pages_read_in_index_order(
    engine: Engine, session: Session, params: dict[str, Any]
) -> None:
    cursor = next_cursor(session, params)
    assert_sorted_by_index(page_plan(engine, session, {**params, "cursor": cursor}))


# A filter on one state, organisation or tag reads its page off (…, date, public_id, event_id)
# in timeline order and stops: no sort of every matching event (bench/README.md measured the
# sort at hundreds of ms per page for a busy state at 1M events).
@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"state": ["DZA"]}, id="state"),
        pytest.param({"organisation": ["AES"]}, id="organisation"),
        pytest.param({"tag": ["april-2025-crisis"]}, id="tag"),
    ],
)
def test_participant_filters_read_the_page_in_index_order(
    engine: Engine, session: Session, params: dict[str, Any]
) -> None:
    assert_sorted_by_index(page_plan(engine, session, params))


def text_page(engine: Engine, session: Session, q: str, **more: Any) -> tuple[str, str]:
    """The SQL of the page `service.page` serves for `q=`, and its plan (bitmap scans allowed).
    On PostgreSQL, with more matches than `FEW_MATCHES`, that is the second page statement: the
    first counted the matches as it read them, and was void (`PagePlan.recounted`)."""
    if ON_POSTGRES:
        for setting in ("enable_seqscan", "enable_sort"):
            session.execute(text(f"SET LOCAL {setting} = off"))
    with captured(engine) as statements:
        query = TimelineQuery.model_validate({"q": q, **more})
        service.page(session, query, cursor_secret=SECRET)
    *_, (sql, parameters) = [(s, p) for s, p in statements if "ORDER BY" in s and "LIMIT" in s]
    conn = session.connection()
    if ON_POSTGRES:
        return sql, "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + sql, parameters))
    return sql, "\n".join(
        r[3] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, parameters)
    )


def test_a_rare_word_is_read_through_the_text_index_first(engine: Engine, session: Session) -> None:
    """Few matches: read them all from the text index, then order them (PostgreSQL would
    otherwise walk the date index testing every event: 3.2 s for a rare word at 1M)."""
    with captured(engine) as sent:
        sql, plan = text_page(engine, session, "tinzaouaten")
    if ON_POSTGRES:
        # Read once into a CTE that no index can order, and counted there: the page runs no
        # count of its own first (statements.few_page_documents).
        assert "MATERIALIZED" in sql, sql
        assert [s for s, _ in sent if "search_vector" in s and not s.startswith("EXPLAIN")] == [sql]
        assert "Bitmap Index Scan on ix_event_search" in plan, plan
        assert "ix_event_timeline" not in plan, plan
    else:
        # The matches read in timeline order from the index keyed so, then their events by id.
        assert_read_in_timeline_order(sent)
        assert "SEARCH event USING INTEGER PRIMARY KEY" in plan, plan


def test_a_common_word_is_tested_on_the_rows_in_page_order(
    engine: Engine, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many matches: no self-join and no fence, so the page can walk its order index."""
    monkeypatch.setattr(statements, "FEW_MATCHES", 0)
    with captured(engine) as sent:
        sql, plan = text_page(engine, session, "tinzaouaten")
    if ON_POSTGRES:
        assert "OFFSET" not in sql and "event.search_vector @@" in sql, sql
        assert "MATERIALIZED" not in sql, sql  # the page served, not the void first read
        assert "ix_event_timeline" in plan or "ix_event_search" in plan, plan
    else:
        # However many matches: read in timeline order, as many as the page needs.
        assert_read_in_timeline_order(sent)
        assert "event_fts " not in plan, plan


@pytest.mark.skipif(not ON_POSTGRES, reason="PostgreSQL's statistics")
def test_the_words_estimates_keep_ten_thousand_lexemes(session: Session) -> None:
    """A `q=` page is planned from the estimate of the words' matches; a word outside the
    lexemes ANALYZE keeps is estimated from the rarest kept one (migration 6d2e8b4f1a39)."""
    session.execute(text("ANALYZE event (search_vector)"))
    target = session.scalar(
        text(
            "SELECT attstattarget FROM pg_attribute"
            " WHERE attrelid = 'event'::regclass AND attname = 'search_vector'"
        )
    )
    assert target == 1000
    kept = session.scalar(
        text(
            "SELECT cardinality(most_common_elems) FROM pg_stats"
            " WHERE tablename = 'event' AND attname = 'search_vector'"
        )
    )
    lexemes = session.scalar(
        text("SELECT count(DISTINCT lexeme) FROM event, unnest(search_vector)")
    )
    # The seed has far fewer words than 10,000, and every one is kept.
    assert lexemes is not None and 1000 < lexemes < 10_000
    assert kept == lexemes


@pytest.mark.skipif(not ON_POSTGRES, reason="SQLite ranks with FTS5's bm25")
def test_a_ranked_common_word_scores_its_repeats_and_walks_the_rest(
    engine: Engine, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One word ranked: only the events where it occurs more than once are scored, found
    through their own index; the rest, which tie, are walked in timeline order
    (`statements.ranked_in_tiers`), not each read and scored."""
    monkeypatch.setattr(statements, "FEW_MATCHES", 0)
    # On the seed's few events every plan costs about the same: whether an index can serve
    # each tier's rows and the floor's order, as in `_plans`. The sorts of the scores remain.
    for setting in ("enable_seqscan", "enable_sort"):
        session.execute(text(f"SET LOCAL {setting} = off"))
    with captured(engine) as sent:
        query = TimelineQuery.model_validate({"q": "mali", "order": "relevance"})
        service.page(session, query, cursor_secret=SECRET)
    [(sql, parameters)] = [(s, p) for s, p in sent if "search_repeats" in s]
    plan = "\n".join(
        r[0] for r in session.connection().exec_driver_sql("EXPLAIN " + sql, parameters)
    )
    tiers = plan.split("->  Limit")
    assert len(tiers) == 3, plan  # the page's, and each tier's
    above, floor = tiers[1], tiers[2]
    assert "Bitmap Index Scan on ix_event_search_repeats" in above, plan
    assert "Index Scan using ix_event_timeline" in floor and "Sort" not in floor, plan


@pytest.mark.skipif(not ON_POSTGRES, reason="SQLite reads the matches in timeline order")
def test_a_word_in_most_of_few_events_walks_on_postgresql(engine: Engine, session: Session) -> None:
    """Far fewer matches than FEW_MATCHES, which a page read first whatever the number of
    events; but among the seed's few events, a walk of the timeline finds a page of them
    sooner (`planner.few_matches`). Walked whether the planner's estimates, which choose, are
    ANALYZE's or the defaults of a table never analysed: the first read, if any, was void."""
    words = service._engine_words("postgresql", ["mali"])
    matches = service._matches(session, words)
    events = session.scalar(select(func.count()).select_from(Event))
    _, estimated_events = service._estimated_matches(session, words)
    assert matches <= statements.FEW_MATCHES
    assert matches > planner.few_matches(events)
    assert matches > planner.few_matches(estimated_events)
    sql, plan = text_page(engine, session, "mali")
    assert "OFFSET" not in sql and "event.search_vector @@" in sql, sql
    assert "MATERIALIZED" not in sql, sql  # the page served, not a void first read
    assert "ix_event_timeline" in plan or "ix_event_search" in plan, plan


def test_a_common_word_with_a_state_walks_the_state_index(
    engine: Engine, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many matches and one state: the page walks the state's index in page order, each row
    tested against the matches (on SQLite before its event is read), and stops after a page."""
    monkeypatch.setattr(statements, "FEW_MATCHES", 0)
    with captured(engine) as sent:
        plan = page_plan(engine, session, {"state": ["DZA"], "q": "drone"})
    assert "ix_event_participant_state_timeline" in plan, plan
    assert_sorted_by_index(plan)
    if not ON_POSTGRES:
        # Tested on the index's own event id against the matches read in timeline order.
        assert_read_in_timeline_order(sent)
        assert any("event_participant.event_id IN" in sql for sql, _ in sent), sent
        # The matches were read with the state's token: only those the state takes part in.
        reads = [str(params) for sql, params in sent if "event_fts_timeline MATCH" in sql]
        assert reads and all('actors : ("s' in read for read in reads), reads


@pytest.mark.skipif(not ON_POSTGRES, reason="PostgreSQL's index of words and actors")
@pytest.mark.parametrize(
    "filters",
    [{"state": ["DZA"]}, {"between": "MLI,DZA"}, {"organisation": ["ECOWAS"]}],
)
def test_words_and_actors_are_found_together_by_the_text_index_on_postgresql(
    engine: Engine, session: Session, filters: dict[str, Any]
) -> None:
    """Few events with both: one scan of the GIN index of words and actors finds them, read off
    `event` and sorted; no walk of a participant index, no participant read to test them again.
    Chosen from one estimate of both."""
    with captured(engine) as sent:
        sql, plan = text_page(engine, session, "drone", **filters)
    assert "event.search_actors @@" in sql and "event_participant" not in sql, sql
    assert "Bitmap Index Scan on ix_event_search" in plan, plan
    scan = plan.index("Bitmap Index Scan on ix_event_search")
    cond = plan[scan:].split("Index Cond:", 1)[1].split("\n", 1)[0]
    assert "search_vector @@" in cond and "search_actors @@" in cond, plan
    assert "event_participant" not in plan and "ix_event_timeline" not in plan, plan
    estimates = [sql for sql, _ in sent if sql.startswith("EXPLAIN (FORMAT JSON)")]
    assert len(estimates) == 1 and "search_actors @@" in estimates[0], estimates


def test_how_words_are_read_is_chosen_without_counting_them_on_postgresql(
    engine: Engine, session: Session
) -> None:
    """PostgreSQL chooses between reading every match first and testing the walked rows from
    the planner's estimate (one EXPLAIN); counting a common word's matches cost about 40 ms at
    1M. SQLite reads the matches in timeline order, as many as the page needs: no count."""
    query = TimelineQuery.model_validate({"q": "drone", "state": ["DZA"]})
    with captured(engine) as sent:
        service.page(session, query, cursor_secret=SECRET)
    estimates = [sql for sql, _ in sent if sql.startswith("EXPLAIN (FORMAT JSON)")]
    counts = [sql for sql, _ in sent if "count(" in sql and "MATCH" in sql]
    if ON_POSTGRES:
        assert len(estimates) == 1 and "search_vector @@" in estimates[0], sent
        assert not [sql for sql, _ in sent if "count(" in sql and "search_vector" in sql], sent
    else:
        assert not estimates and not counts, sent
        assert_read_in_timeline_order(sent)


def assert_read_in_timeline_order(sent: list[tuple[str, Any]]) -> None:
    """SQLite: the page read the words' matches from `event_fts_timeline` in key order, which
    FTS5 gives itself (no sort of the matches), and nothing from `event_fts`."""
    reads = [sql for sql, _ in sent if "MATCH" in sql and not sql.startswith("EXPLAIN")]
    assert reads, sent
    assert all("event_fts_timeline MATCH" in sql and "ORDER BY rowid" in sql for sql in reads)
    assert not [sql for sql in reads if "event_fts MATCH" in sql], reads


@pytest.mark.skipif(ON_POSTGRES, reason="SQLite's index in timeline order")
@pytest.mark.parametrize("desc", [False, True])
@pytest.mark.parametrize("actors", [(), (("s1", "s2"),), (("s1",), ("o3",))])
def test_matches_come_from_the_index_in_timeline_order(
    session: Session, desc: bool, actors: tuple[tuple[str, ...], ...]
) -> None:
    """FTS5 reads the keyed index in rowid order, either way, within the key range: no sort,
    also with the actors asked of it beside the words."""
    sql = str(statements.MATCHES_IN_ORDER[desc])
    for name in ("words", "key_lo", "key_hi"):
        sql = sql.replace(f":{name}", "?")
    words = search_index.matching('"tinzaouat"*', actors)
    connection = session.connection()
    plan = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, (words, 0, 1 << 60)).all()
    details = [row[3] for row in plan]
    assert len(details) == 1 and details[0].startswith("SCAN event_fts_timeline VIRTUAL"), details
    # The query is one FTS5 accepts, on the index's columns.
    connection.exec_driver_sql(sql, (words, 0, 1 << 60)).all()


def test_stored_documents_come_in_binary_on_postgresql(engine: Engine, session: Session) -> None:
    """The page's statement asks for binary results: PostgreSQL would otherwise send the bytea
    documents as hex text, twice their size, encoded and decoded on every page."""
    formats: list[tuple[str, Any]] = []

    def grab(_conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        formats.append((statement, getattr(cursor, "format", None)))

    event.listen(engine, "after_cursor_execute", grab)
    try:
        page = service.page(
            session, TimelineQuery.model_validate({"state": ["DZA"]}), cursor_secret=SECRET
        )
    finally:
        event.remove(engine, "after_cursor_execute", grab)
    assert page.items
    (read,) = [fmt for sql, fmt in formats if "event_document" in sql]
    if ON_POSTGRES:
        from psycopg import pq

        assert read == pq.Format.BINARY
        others = [fmt for sql, fmt in formats if "event_document" not in sql]
        assert all(fmt == pq.Format.TEXT for fmt in others), formats


@pytest.mark.parametrize("pair", ["MLI,FRA", "FRA,MLI", "MLI,FRA,DZA"])
def test_a_pair_is_read_off_the_pair_index(engine: Engine, session: Session, pair: str) -> None:
    """Whichever order the states come in, the page reads the pair's own index in page order
    (a third state is tested on each row)."""
    plan = page_plan(engine, session, {"between": pair})
    assert "ix_event_state_pair_timeline" in plan, plan
    assert_no_full_scan(plan)
    assert_sorted_by_index(plan)


def test_statements_built_at_import_compile_for_postgresql() -> None:
    """`statements` builds PostgreSQL text search at import time, before any engine exists: it
    must import the dialect that registers `to_tsquery` itself (a fresh interpreter, so no other
    module has done it first)."""
    code = (
        "from app.timeline import statements\n"
        "from sqlalchemy.dialects.postgresql import psycopg\n"
        "print(statements.TEXT_MATCHES['postgresql'].compile(dialect=psycopg.dialect()))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "to_tsquery" in done.stdout


def force_parallel_plans(session: Session) -> None:
    """Make the planner put a Gather on any plan that may run in parallel (a test setting: the
    seed data is far too small for one to be worth it)."""
    name = session.execute(
        text(
            "SELECT name FROM pg_settings"
            " WHERE name IN ('debug_parallel_query', 'force_parallel_mode')"  # 16+, 15
        )
    ).scalar_one()
    session.execute(text(f"SET LOCAL {name} = on"))


@pytest.mark.skipif(not ON_POSTGRES, reason="parallel plans are PostgreSQL's")
def test_a_page_of_words_walks_in_one_process_on_postgresql(
    engine: Engine, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A parallel plan makes each worker walk its own share of the state's rows, far past the
    page's end (`statements.SERIAL_PLANS`): after a `q=` page, its transaction plans the
    page's walk serially even where the planner is told to go parallel whenever it can."""
    monkeypatch.setattr(statements, "FEW_MATCHES", 0)
    query = TimelineQuery.model_validate({"state": ["DZA"], "q": "drone"})
    plan = service._plan(session, query, driven=True, one_page=True)
    walk = statements.page(plan.shape, False, False)
    params = {**plan.params, "limit": 51}
    force_parallel_plans(session)
    assert service.page(session, query, cursor_secret=SECRET).items
    assert "Gather" not in explain(session, walk, params)

    # The same walk in a transaction of its own goes parallel: the check above can fail.
    session.rollback()
    force_parallel_plans(session)
    assert "Gather" in explain(session, walk, params)


@pytest.mark.skipif(not ON_POSTGRES, reason="parallel plans are PostgreSQL's")
def test_only_pages_that_walk_turn_parallel_plans_off(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only `q=` pages that walk the timeline (mode "many") turn parallel plans off, and only
    for their own transaction; a page that reads its few matches first leaves them be."""

    def workers() -> Any:
        return session.execute(text("SHOW max_parallel_workers_per_gather")).scalar()

    default = workers()
    assert default != "0"
    service.page(session, TimelineQuery.model_validate({"state": ["DZA"]}), cursor_secret=SECRET)
    assert workers() == default
    words = TimelineQuery.model_validate({"q": "drone"})
    assert service._plan(session, words, driven=True, one_page=True).text == "few"
    service.page(session, words, cursor_secret=SECRET)
    assert workers() == default
    monkeypatch.setattr(statements, "FEW_MATCHES", 0)  # now the same words are "many"
    assert service._plan(session, words, driven=True, one_page=True).text == "many"
    service.page(session, words, cursor_secret=SECRET)
    assert workers() == "0"
    session.rollback()
    assert workers() == default


@pytest.mark.skipif(not ON_POSTGRES, reason="parallel plans are PostgreSQL's")
def test_a_page_read_again_as_a_walk_turns_parallel_plans_off(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page estimated to have few matches that turns out to have many is read again as a walk
    (`PagePlan.recounted`), serially like any walk."""
    monkeypatch.setattr(service, "_estimated_matches", lambda *_: (0, 10**9))
    monkeypatch.setattr(statements, "FEW_MATCHES", 1)
    words = TimelineQuery.model_validate({"q": "drone"})
    plan = service._plan(session, words, driven=True, one_page=True)
    assert (plan.text, plan.counts_itself) == ("few", True)
    assert service.page(session, words, cursor_secret=SECRET).items
    assert session.execute(text("SHOW max_parallel_workers_per_gather")).scalar() == "0"


def explain(session: Session, stmt: Any, params: dict[str, Any]) -> str:
    compiled = stmt.compile(session.get_bind())
    sql, bound = f"EXPLAIN {compiled}", compiled.construct_params(params)
    return "\n".join(row[0] for row in session.connection().exec_driver_sql(sql, bound))


# --- the facet counts (app/timeline/counts.py) -------------------------------------------------


def facet_plans(engine: Engine, session: Session, run: Any) -> list[str]:
    """The plans of the statements `run` executes that read or change the facet tables (every
    one but the inserts), each explained on the same connection with its own values."""
    if ON_POSTGRES:
        for setting in ("enable_seqscan", "enable_bitmapscan"):
            session.execute(text(f"SET LOCAL {setting} = off"))
    with captured(engine) as seen:
        run()
    conn = session.connection()
    plans = []
    for sql, parameters in seen:
        if "facet_" not in sql or sql.lstrip().upper().startswith("INSERT"):
            continue
        one = parameters[0] if isinstance(parameters, list) else parameters
        if ON_POSTGRES:
            lines = [r[0] for r in conn.exec_driver_sql("EXPLAIN " + sql, one)]
        else:
            lines = [r[3] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, one)]
        plans.append("\n".join(lines))
    assert plans
    return plans


def assert_facet_keys(plan: str) -> None:
    """Every facet table in the plan is read by its primary key, never scanned."""
    if ON_POSTGRES:
        assert "Seq Scan" not in plan, plan
        for table in ("facet_count", "facet_actor_count", "facet_event"):
            if f" on {table} " in plan or f" on {table}\n" in plan:
                assert f"{table}_pkey" in plan, plan
    else:
        for line in plan.splitlines():
            if "facet_" in line:
                assert line.startswith("SEARCH ") and "PRIMARY KEY" in line, plan


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({}, id="no-filter"),
        pytest.param({"from": "2021", "to": "2024", "interval": "year"}, id="whole-years"),
        pytest.param({"from": "2023-03", "to": "2025-04-15"}, id="months-and-days"),
        pytest.param({"kind": ["incident"], "from": "2022"}, id="kind"),
        pytest.param({"category": ["ambassador_recall", "statement"]}, id="categories"),
        pytest.param({"state": ["DZA"], "from": "2020", "to": "2024"}, id="state-years"),
        pytest.param({"organisation": ["AES"]}, id="organisation"),
    ],
)
def test_facets_read_the_counts_by_key(
    engine: Engine, session: Session, params: dict[str, Any]
) -> None:
    query = FacetsQuery.model_validate(params)
    for plan in facet_plans(engine, session, lambda: service.facets(session, query)):
        assert_facet_keys(plan)


def test_a_write_reads_and_changes_the_counts_by_key(engine: Engine, session: Session) -> None:
    """Recounting an event whose date moved: its record read by key, the counts that fall
    updated and emptied ones deleted by key (the session is rolled back)."""
    event_id = session.scalar(select(Event.id).where(Event.deleted_at.is_(None)).limit(1))
    assert event_id is not None
    session.execute(update(Event).where(Event.id == event_id).values(date=dt.date(1999, 1, 2)))
    plans = facet_plans(engine, session, lambda: counts.recount(session, [event_id]))
    assert len(plans) >= 3  # the record, the falls, the emptied rows
    for plan in plans:
        assert_facet_keys(plan)


@pytest.mark.parametrize(
    ("params", "index"),
    [
        pytest.param(
            {"state": ["DZA"], "from": "2024-03-15", "to": "2025-04-10"},
            "ix_event_participant_state_timeline",
            id="state-edges",
        ),
        pytest.param(
            {"organisation": ["AES"], "category": ["statement"], "from": "2024"},
            "ix_event_participant_organisation_timeline",
            id="organisation-category",
        ),
    ],
)
def test_one_actors_days_read_its_participations_index(
    engine: Engine, session: Session, params: dict[str, Any], index: str
) -> None:
    """The days the counts leave to the tables, for one actor: its participations off their
    (actor, date) index, each event's counted record by key."""
    query = FacetsQuery.model_validate(params)
    plans = facet_plans(engine, session, lambda: service.facets(session, query))
    days = [plan for plan in plans if "facet_event" in plan]
    assert days, plans
    for plan in days:
        assert index in plan, plan
        assert_facet_keys(plan)
        assert_no_full_scan(plan)


def shared_actors(session: Session) -> tuple[str, str, str]:
    """Two states and an organisation of the seed that share live events with the first."""
    a, b, org = session.execute(
        text(
            "SELECT sa.code, sb.code, o.code FROM event_state_pair p"
            " JOIN state sa ON sa.id = p.state_a JOIN state sb ON sb.id = p.state_b"
            " JOIN event_participant op ON op.event_id = p.event_id"
            " JOIN organisation o ON o.id = op.organisation_id"
            " JOIN event e ON e.id = p.event_id WHERE e.deleted_at IS NULL"
            " ORDER BY p.event_id LIMIT 1"
        )
    ).one()
    return a, b, org


@pytest.mark.parametrize("kind", ["states", "state-and-organisation", "organisations"])
def test_several_actors_read_their_shared_events_by_index(
    engine: Engine, session: Session, kind: str
) -> None:
    """Several actors: each one's counts by key, and only the events they share read one by
    one, two states off their pair's index, otherwise off the rarer actor's participations
    index, each record by key."""
    a, b, org = shared_actors(session)
    params: dict[str, Any] = {
        "states": {"state": [a, b]},
        "state-and-organisation": {"state": [a], "organisation": [org]},
        "organisations": {"organisation": [org, "UN"]},
    }[kind]
    query = FacetsQuery.model_validate({**params, "from": "2020-02-10", "to": "2025-06-20"})
    plans = facet_plans(engine, session, lambda: service.facets(session, query))
    for plan in plans:
        assert_facet_keys(plan)
        assert_no_full_scan(plan)
    if kind == "states":
        shared = [plan for plan in plans if "event_state_pair" in plan]
        assert shared and all("ix_event_state_pair_timeline" in plan for plan in shared), plans
    elif kind == "state-and-organisation":
        shared = [plan for plan in plans if "facet_event" in plan]
        index = "ix_event_participant_(state|organisation)_timeline"
        assert shared and all(re.search(index, plan) for plan in shared), plans


def test_one_actors_whole_months_are_summed_not_read(
    engine: Engine, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A window that cuts a year: one actor's whole months come from its kept pairings by
    month; only the two edge months are read from its participations."""
    query = FacetsQuery.model_validate({"state": ["DZA"], "from": "2023-03-15", "to": "2024-09-20"})
    seen: list[tuple[dt.date, dt.date]] = []
    read_days = counts.read_days

    def spy(*args: Any, **kwargs: Any) -> None:
        seen.extend(kwargs["days"])
        read_days(*args, **kwargs)

    monkeypatch.setattr(counts, "read_days", spy)
    plans = facet_plans(engine, session, lambda: service.facets(session, query))
    assert seen == [
        (dt.date(2023, 3, 15), dt.date(2023, 3, 31)),
        (dt.date(2024, 9, 1), dt.date(2024, 9, 20)),
    ]
    for plan in plans:
        assert_facet_keys(plan)


@pytest.mark.parametrize("kind", ["tag", "between"])
def test_a_tag_or_a_pair_reads_its_events_off_its_index(
    engine: Engine, session: Session, kind: str
) -> None:
    """A tag's or a pair's events: off the tags' or the pairs' (key, date) index, each record
    by key."""
    a, b, _ = shared_actors(session)
    tag = session.scalar(text("SELECT tag FROM event_tag ORDER BY event_id LIMIT 1"))
    params: dict[str, Any] = {"tag": [tag]} if kind == "tag" else {"between": f"{a},{b}"}
    query = FacetsQuery.model_validate({**params, "from": "1990-02-10", "to": "2025-06-20"})
    plans = facet_plans(engine, session, lambda: service.facets(session, query))
    index = "ix_event_tag_timeline" if kind == "tag" else "ix_event_state_pair_timeline"
    read = [plan for plan in plans if "facet_event" in plan]
    assert read and all(index in plan for plan in read), plans
    for plan in plans:
        assert_facet_keys(plan)
        assert_no_full_scan(plan)

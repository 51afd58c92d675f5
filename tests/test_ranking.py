"""Relevance pages read off the best-scoring candidates (SQLite), or in tiers (PostgreSQL, one
word), are exactly the ranking of every match: same rows, same order, at every offset, with or
without filters that drop candidates."""

import itertools
import random
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from app.timeline import service, statements
from app.timeline.schemas import TimelineQuery
from tests.conftest import (
    ON_POSTGRES,
    ThrowawayDatabases,
    Writable,
    alembic_config,
    revision_before,
)
from tests.test_explain import captured
from tests.test_migrations import seeded_at_head
from tests.test_writes import new_event

SEARCH_REPEATS = "3c8f1a6d9b27"  # the revision that adds `event.search_repeats`


def ranking(session: Session, params: dict[str, Any], offset: int, limit: int) -> list[Any]:
    query = TimelineQuery.model_validate({**params, "order": "relevance"})
    plan = service._plan(session, query)
    return [(row.id, row.score) for row in service._ranked_rows(session, plan, offset, limit)]


@pytest.mark.parametrize(
    "params",
    [
        {"q": "ambassador"},
        {"q": "drone"},
        # Candidates that fail the filter are dropped, so the page can need every match.
        {"q": "ambassador", "state": ["DZA"]},
        {"q": "mali", "category": ["ambassador_recall"]},
    ],
)
def test_candidates_give_the_ranking_of_every_match(
    session: Session, monkeypatch: pytest.MonkeyPatch, params: dict[str, Any]
) -> None:
    monkeypatch.setattr(service, "CANDIDATES_MAX", 0)  # every match, scored and sorted
    everything = ranking(session, params, 0, 1000)
    assert len(everything) > 2, everything
    monkeypatch.setattr(service, "CANDIDATES_MAX", 5_000)
    # A few candidates only: the rows above the lowest one's score are certain, the rest not.
    monkeypatch.setattr(service, "CANDIDATES_MIN", 1)
    for limit in (1, 2, 3):
        walked = []
        for offset in range(0, len(everything) + 1, limit):
            walked.extend(ranking(session, params, offset, limit))
        assert walked == everything, (limit, walked)


def test_ties_at_the_last_candidate_keep_timeline_order(
    writable: Writable, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events with the same text score the same; their order is the timeline's. Created newest
    first, so the text index's own order (by row id) is the reverse of the page's."""
    for day in range(28, 22, -1):
        body = new_event(
            f"2025-03-{day}-ranking-tie",
            date=f"2025-03-{day}",
            title="Zyxtie statement",
            summary="Zyxtie, a word no other event has.",
        )
        assert (
            writable.client.post("/v1/events", json=body, headers=writable.auth()).status_code
            == 201
        )
    monkeypatch.setattr(service, "CANDIDATES_MIN", 1)
    with writable.session() as session:
        walked = [
            row for offset in range(7) for row in ranking(session, {"q": "zyxtie"}, offset, 1)
        ]
    # Internal ids grow with creation, which went newest first: timeline order is id order
    # reversed.
    ids = [event_id for event_id, _ in walked]
    assert ids == sorted(ids, reverse=True)
    assert len(ids) == 6


# Words that occur once, twice or more in an event, and words that share prefixes of every
# length, in Latin and Cyrillic letters (the prefixes shared are cut by character, the index
# compares bytes).
VOCABULARY = [
    "zyxmark",
    "zyxmarks",
    "zyxmarker",
    "zyxmo",
    "zyxq",
    "zyx",
    "zy",
    "москва",
    "москвич",
    "моряк",
    "ambassador",
    "ambush",
]
SEARCHED = ["zyx", "zyxm", "zyxmar", "zyxmark", "zyxmarks", "zyxq", "zy", "моск", "amb", "mali"]


@pytest.fixture(scope="module")
def tiered(module_writable: Writable) -> Writable:
    """Events whose text repeats and shares prefixes at random, on dates that interleave."""
    rng = random.Random(23)  # noqa: S311 - reproducible test data
    for n in range(40):
        words = rng.choices(VOCABULARY, k=rng.randint(1, 6))
        body = new_event(
            f"2024-{1 + n % 12:02d}-{1 + n % 28:02d}-tiers-{n}",
            date=f"2024-{1 + n % 12:02d}-{1 + n % 28:02d}",
            title=" ".join(words[:3]) or "zyx",
            summary=" ".join(words[3:]) + " statement.",
            participants=[
                {"state": rng.choice(["MLI", "NER"]), "role": "initiator"},
                {"state": "DZA", "role": "target"},
            ],
        )
        response = module_writable.client.post(
            "/v1/events", json=body, headers=module_writable.auth()
        )
        assert response.status_code == 201, response.text
    return module_writable


def full_ranking(
    session: Session, monkeypatch: pytest.MonkeyPatch, params: dict[str, Any]
) -> list[Any]:
    with monkeypatch.context() as m:
        m.setattr(service, "_tiered", lambda words: False)
        return ranking(session, params, 0, 1000)


@pytest.mark.skipif(not ON_POSTGRES, reason="SQLite ranks with FTS5's bm25 (above)")
@pytest.mark.parametrize("few", [True, False], ids=["read-first", "walked"])
def test_tiers_give_the_ranking_of_every_match(
    tiered: Writable, monkeypatch: pytest.MonkeyPatch, few: bool
) -> None:
    """The floor tier read first or walked in timeline order, the words repeating or not, with
    filters or not: every page is the full ranking's, scores included."""
    if not few:
        monkeypatch.setattr(statements, "FEW_MATCHES", 0)
    filters: list[dict[str, Any]] = [{}, {"state": ["NER"]}, {"from": "2024-03-01"}]
    with tiered.session() as session:
        for word, extra in itertools.product(SEARCHED, filters):
            params = {"q": word, **extra}
            everything = full_ranking(session, monkeypatch, params)
            with captured(tiered.engine) as sent:
                for limit in (1, 3, 50):
                    walked = []
                    for offset in range(0, len(everything) + 1, limit):
                        walked.extend(ranking(session, params, offset, limit))
                    assert walked == everything, (params, limit)
            in_tiers = any("search_repeats @@" in sql for sql, _ in sent)
            assert in_tiers == service._tiered(f"{word}:*"), (params, in_tiers)
        # The words repeat in some events and not in others: both tiers were read.
        scores = {score for _, score in full_ranking(session, monkeypatch, {"q": "zyxmark"})}
        assert len(scores) > 2, scores


def shared_prefixes(lexemes: list[str]) -> set[str]:
    """What `event.search_repeats` should hold for these lexemes: computed here from the
    definition, not by the migration's function."""
    ordered = sorted(lexemes, key=lambda w: w.encode())
    shared = set()
    for a, b in itertools.pairwise(ordered):
        common = 0
        while common < min(len(a), len(b)) and a[common] == b[common]:
            common += 1
        shared.add(a[:common])
    return {prefix for prefix in shared if len(prefix) >= 3}


def misfiled_repeats(connection: Connection) -> list[int]:
    """Events whose `search_repeats` differs from the definition, computed from their tsvector
    (app/timeline/statements.py, `ranked_in_tiers`), by id."""
    rows = connection.execute(
        text(
            "SELECT e.id, array(SELECT lexeme FROM unnest(e.search_repeats)) AS stored,"
            " array(SELECT lexeme FROM unnest(e.search_vector)) AS lexemes,"
            " array(SELECT lexeme FROM unnest(e.search_vector)"
            " WHERE cardinality(positions) > 1) AS repeated"
            " FROM event e"
        )
    ).all()
    assert rows
    return [
        row.id
        for row in rows
        if set(row.stored)
        != shared_prefixes(row.lexemes) | {w for w in row.repeated if len(w) >= 3}
    ]


@pytest.mark.skipif(not ON_POSTGRES, reason="PostgreSQL's column")
def test_search_repeats_holds_the_repeated_words_and_shared_prefixes(tiered: Writable) -> None:
    with tiered.engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM event")) > 40
        assert misfiled_repeats(connection) == []


@pytest.mark.skipif(not ON_POSTGRES, reason="PostgreSQL's column")
def test_the_migration_fills_search_repeats_for_the_events_there(
    databases: ThrowawayDatabases,
) -> None:
    """Added to a table that holds events (the seed's): each gets its value, and the down
    migration removes the column, its index and its function."""
    url = databases.new()
    config = alembic_config(url)
    engine = seeded_at_head(url)
    command.downgrade(config, revision_before(config, SEARCH_REPEATS))
    with engine.connect() as connection:
        leftovers = connection.execute(
            text(
                "SELECT (SELECT count(*) FROM pg_proc WHERE proname = 'search_repeats'),"
                " (SELECT count(*) FROM pg_attribute"
                "  WHERE attrelid = 'event'::regclass AND attname = 'search_repeats'),"
                " (SELECT count(*) FROM pg_class WHERE relname = 'ix_event_search_repeats')"
            )
        ).one()
    assert tuple(leftovers) == (0, 0, 0)
    command.upgrade(config, "head")
    with engine.connect() as connection:
        assert misfiled_repeats(connection) == []
        assert connection.scalar(text("SELECT count(*) FROM event WHERE search_repeats <> ''"))
    engine.dispose()


@pytest.mark.skipif(not ON_POSTGRES, reason="PostgreSQL's text parser")
@pytest.mark.parametrize("word", ["abc", "zyx", "ceasefire", "abc123", "123", "1e5", "0x1f", "x86"])
def test_a_word_ranked_in_tiers_is_one_token(session: Session, word: str) -> None:
    """A ranking of several tokens weighs how close they are, not how often each occurs: the
    words `_tiered` accepts reach the parser as one."""
    assert service._tiered(f"{word}:*")
    nodes = session.scalar(text("SELECT numnode(to_tsquery('simple', :w))"), {"w": f"{word}:*"})
    assert nodes == 1


def test_words_ranked_in_full() -> None:
    """Several words, a word shorter than the prefixes kept, and words outside ASCII's letters
    and digits are scored match by match."""
    for words in ["ab:*", "mali:* & niger:*", "москва:*", "foo_bar:*", None]:
        assert not service._tiered(words), words

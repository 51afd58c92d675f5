"""One definition of a word for `q=` (app/search.py), and the engines read words as it does."""

import re
import sqlite3

import pytest
from alembic import command
from sqlalchemy import Connection, Engine, select, text, update
from sqlalchemy.orm import Session

from app import search
from app.db import create_db_engine
from app.events import documents
from app.models import Event, Place, PlaceAlias
from app.schemas import fold
from tests.conftest import ThrowawayDatabases, alembic_config, revision_before


@pytest.mark.parametrize(
    ("text_", "expected"),
    [
        ("Tinzaouatène", ["tinzaouatene"]),
        ("DRONE, drone.", ["drone", "drone"]),
        ("2024-2025", ["2024", "2025"]),
        ("bamada.net", ["bamada", "net"]),
        ("CSP/CMA", ["csp", "cma"]),
        ("foo_bar", ["foo", "bar"]),
        ("l’armée «Wagner»", ["l", "armee", "wagner"]),
        ("Akıncı", ["akıncı"]),  # the dotless i is a letter of its own, not an accent
        ("Straße", ["strasse"]),
        ("ﬁn ½", ["fin", "1", "2"]),  # compatibility forms count as what they stand for
        ("تنزواتين ⵜⵉⵏ", ["تنزواتين", "ⵜⵉⵏ"]),
        ("x" * search.WORD_MAX + " y" + " z" * 2, ["x" * search.WORD_MAX, "y", "z", "z"]),
        ("x" * (search.WORD_MAX + 1) + " y", ["y"]),
        ("", []),
        ("-- , ! ?", []),
    ],
)
def test_words(text_: str, expected: list[str]) -> None:
    assert search.words(text_) == expected


def test_the_query_and_the_text_are_cut_alike() -> None:
    assert search.search_terms("Drone, TINZAOUAT-") == ["drone", "tinzaouat"]
    assert search.has_words(search.search_text(["A drone over Tinzaouatène."]), ["tinzaouat"])
    assert not search.has_words(search.search_text(["A drone"]), ["one"])
    assert not search.has_words(search.search_text(["A drone"]), ["drone", "tin"])


def single_words() -> list[str]:
    """For every code point that is, or folds to, word characters: the word it makes between
    two letters, as app.search cuts it."""
    out = []
    for code in range(0x20, 0x30000):
        if 0xD800 <= code < 0xE000:
            continue
        cut = search.words(f"x{chr(code)}y")
        if len(cut) == 1:
            out.append(cut[0])
    return out


def engine_words(engine: Engine, chunk: str) -> set[str]:
    """The words the database's own search index makes of a stored search text."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # The generated column's own expression, evaluated on this text.
            expression = conn.scalar(
                text(
                    "SELECT generation_expression FROM information_schema.columns"
                    " WHERE table_name = 'event' AND column_name = 'search_vector'"
                )
            )
            row = conn.execute(
                text(
                    f"SELECT tsvector_to_array({expression})"
                    " FROM (SELECT CAST(:chunk AS text) AS search_text) AS event"
                ),
                {"chunk": chunk},
            )
            return set(row.scalar_one())
        definition = conn.scalar(text("SELECT sql FROM sqlite_master WHERE name = 'event_fts'"))
    # The FTS5 table's own tokenizer, on a table of its own.
    tokenize = re.search(r"tokenize\s*=\s*'([^']*)'", definition or "")
    assert tokenize, definition
    db = sqlite3.connect(":memory:")
    try:
        db.execute(f"CREATE VIRTUAL TABLE t USING fts5(x, tokenize='{tokenize[1]}')")
        db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, row)")
        db.execute("INSERT INTO t(x) VALUES (?)", (chunk,))
        return {term for (term,) in db.execute("SELECT term FROM v")}
    finally:
        db.close()


def test_the_engine_reads_every_word_as_app_search_cuts_it(engine: Engine) -> None:
    """Every letter and digit of Unicode, between two letters, makes one word, in Python and in
    the database's index alike: a stored search text holds nothing the engine cuts otherwise.
    (An engine may lower-case a word differently, as PostgreSQL does Cherokee; it lower-cases
    the query's words the same way, so matches are the same.)"""
    words = single_words()
    assert len(words) > 100_000
    for start in range(0, len(words), 5_000):
        chunk = words[start : start + 5_000]
        found = {w.lower() for w in engine_words(engine, " ".join(chunk))}
        expected = {w.lower() for w in chunk}
        assert found == expected, (sorted(expected - found)[:10], sorted(found - expected)[:10])


def indexed_words(conn: Connection) -> dict[int, set[str]]:
    """The words in the search index of each event, by event id."""
    indexed: dict[int, set[str]] = {}
    if conn.dialect.name == "postgresql":
        for event_id, lexemes in conn.execute(
            text("SELECT id, tsvector_to_array(search_vector) FROM event")
        ):
            indexed[event_id] = set(lexemes)
        return indexed
    conn.exec_driver_sql(
        "CREATE VIRTUAL TABLE temp.event_words USING fts5vocab(main, event_fts, instance)"
    )
    for term, event_id in conn.exec_driver_sql("SELECT term, doc FROM temp.event_words"):
        indexed.setdefault(event_id, set()).add(term)
    conn.exec_driver_sql("DROP TABLE temp.event_words")
    return indexed


def test_each_event_is_indexed_by_the_words_it_is_matched_on(session: Session) -> None:
    """The stored search text of each seed event is what the Python matcher searches
    (app.search.searched on the served document), and the index holds exactly its words."""
    rows = session.execute(select(Event.id, Event.search_text).order_by(Event.id)).all()
    assert len(rows) > 50
    ids = [r.id for r in rows]
    docs = dict(zip(ids, documents.assemble(session, ids), strict=True))
    names: dict[str, list[str]] = {}
    for code, name, alias in session.execute(
        select(Place.code, Place.name, PlaceAlias.alias).outerjoin(
            PlaceAlias, PlaceAlias.place_id == Place.id
        )
    ):
        names.setdefault(code, [name]).append(alias or "")
    indexed = indexed_words(session.connection())
    for event_id, stored in rows:
        doc = docs[event_id]
        place = (doc["location"] or {}).get("place") or ""
        assert stored == search.searched(doc, names.get(place, [])), doc["id"]
        assert indexed[event_id] == set(stored.split()), doc["id"]


def test_the_migration_rewrites_text_stored_the_old_way(
    databases: ThrowawayDatabases, seeded_template: str
) -> None:
    """Text stored before the words were cut in Python (folded, punctuation and all) is
    rewritten as its words, and the index follows."""
    url = databases.copy_of(seeded_template)
    config = alembic_config(url)
    engine = create_db_engine(url)
    try:
        with engine.begin() as conn:
            rows = conn.execute(select(Event.id, Event.title, Event.summary)).all()
            for id_, title, summary in rows:
                old = fold(f"{title} | {summary}")  # as the API stored it before
                conn.execute(update(Event).where(Event.id == id_).values(search_text=old))
        with engine.connect() as conn:
            hyphenated = [w for ws in indexed_words(conn).values() for w in ws if "-" in w]
            assert bool(hyphenated) == (
                conn.dialect.name == "postgresql"  # "2024-2025" was a word of its own there
            )
        command.downgrade(config, revision_before(config, "3f7a9d2e6b41"))
        command.upgrade(config, "head")
        with engine.connect() as conn:
            stored = dict(conn.execute(select(Event.id, Event.search_text)).tuples().all())
            indexed = indexed_words(conn)
        for id_, title, summary in rows:
            assert stored[id_] == search.search_text([title, summary])
            assert indexed[id_] == set(stored[id_].split())
    finally:
        engine.dispose()

"""SQLite's full-text index in timeline order (`event_fts_timeline`), and the actors each event is
searched with on both databases: keys, rebuild and check.

`event_fts` finds an event's id by its words, in id order: to page a common word in timeline
order, a page had to read every match first. `event_fts_timeline` indexes the same words of the
live events under a key that sorts like the timeline (`timeline_key`): the day of the event's
date in the high bits, its id in the low ones. FTS5 reads a term's matches in rowid order and
can stop at any point, so a page reads its first matches in key order and stops
(`app.timeline.service._keyed_rows`). Within a day the key orders by id, the timeline by
public id: a page always reads whole days and orders them itself.

Kept by SQLite triggers on `event` (the migration that made the table), so every writer, the
API's write step and a bulk load alike, keeps it in step in its own transaction. `python -m
app.timeline.search_index` rebuilds it (after a load that dropped the triggers) or checks it
against `event.search_text` and the participants. PostgreSQL has no index in timeline order.

A second column, `actors`, holds a token per state (`s<id>`) and organisation (`o<id>`) taking
part in the event, in any role (`ACTORS`): a page of words and states asks FTS5 for both
(`matching`), which it merges in key order as it reads, so that a state in few of a word's
events costs no more matches read than the page needs. `event_fts_actors` keeps each indexed
event's actors as indexed: the table is contentless, and a row is deleted by giving back what it
was indexed with (the migration that added the column, and its triggers on `event_participant`).

PostgreSQL keeps the same tokens in `event.search_actors`, a tsvector beside `search_vector` in
the same GIN index (`ix_event_search`), set by triggers on `event_participant` for every event,
live or deleted (the migration that added it): one index scan finds the events that have the
words and the actors (`actors_query`). The same command rebuilds or checks that column there,
and `search_word`, the list of every lexeme in use that a prefix is read as (`search_exact`,
`statements.exact_tsquery`), kept by a trigger on `event`.
An archive restore turns the triggers of both databases off while it loads and rebuilds once
with this module (`app.archive.service`).
"""

import argparse
import datetime as dt
import re
import sys
import time

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.config import get_settings
from app.db import create_db_engine, create_session_factory

# The key: the day's Julian day number (what SQLite's CAST(julianday(date) AS INTEGER) gives for
# a date, as the triggers compute it) shifted past 32 bits of event id.
SHIFT = 32
ID_MASK = (1 << SHIFT) - 1
_JULIAN_DAY_OF_ORDINAL_0 = 1_721_424
# Bounds past any key, for a range without a start or an end.
LOWEST = 0
HIGHEST = (1 << 62) - 1

_KEY = f"(CAST(julianday(event.date) AS INTEGER) << {SHIFT}) + event.id"
# An event's actors as indexed (the migration's triggers write the same): each state and
# organisation taking part once, sorted, separated by spaces.
ACTORS = (
    "(SELECT coalesce(group_concat(token, ' '), '') FROM (SELECT DISTINCT"
    " CASE WHEN p.state_id IS NOT NULL THEN 's' || p.state_id ELSE 'o' || p.organisation_id END"
    " AS token FROM event_participant p WHERE p.event_id = event.id"
    " AND (p.state_id IS NOT NULL OR p.organisation_id IS NOT NULL) ORDER BY token))"
)
# An event's stored words as rows (`value`): they are letters and digits separated by single
# spaces (app/search.py), so quoted and joined by commas they make a JSON array.
_AS_JSON = "'[\"' || replace(search_text, ' ', '\",\"') || '\"]'"
_WORDS = f"json_each(CASE WHEN json_valid({_AS_JSON}) THEN {_AS_JSON} ELSE '[]' END)"

# A word of a query ends up as this many words it begins at most; a shorter prefix (a letter or
# two) stays a prefix query, which FTS5 answers by merging every match first.
EXPANDED_MAX = 64
_BEGUN = text(
    "SELECT word FROM event_fts_words WHERE word >= :term AND word < :term || char(1114111)"
    " ORDER BY word LIMIT :most"
)
_TERM = re.compile(r'"([^"]*)"\*')


def state_token(state_id: int) -> str:
    return f"s{state_id}"


def organisation_token(organisation_id: int) -> str:
    return f"o{organisation_id}"


def actors_query(actors: tuple[tuple[str, ...], ...]) -> str:
    """PostgreSQL: the tsquery, for `event.search_actors`, of every group of `actors` (any of its
    tokens). The column holds nothing but actor tokens, so no word is asked of it."""
    return " & ".join("(" + " | ".join(group) + ")" for group in actors)


def matching(words: str, actors: tuple[tuple[str, ...], ...] = ()) -> str:
    """The FTS5 query for `words` (as `expanded` gives them) in the words' column, AND each
    group of `actors` (any of its tokens) in the actors' column: without the column filter a
    word could match an actor's token."""
    query = f"search_text : ({words})"
    for group in actors:
        query += " AND actors : (" + " OR ".join(f'"{token}"' for token in group) + ")"
    return query


def expanded(session: Session, words: str) -> str:
    """The FTS5 query `words` ('"term"* "term"*', each term a prefix) with each term replaced by
    the indexed words it begins, OR-ed ('("embassy" OR "embassys") "talks"'): FTS5 reads exact
    words incrementally in rowid order, where a prefix query first merges every match of every
    word it begins. A term that begins no listed word, or more than EXPANDED_MAX, stays a
    prefix."""
    parts = []
    for term in _TERM.findall(words):
        begun = session.scalars(_BEGUN, {"term": term, "most": EXPANDED_MAX + 1}).all()
        if len(begun) > EXPANDED_MAX:
            parts.append(f'"{term}"*')
        elif not begun:
            # Most likely no event has such a word; read as a prefix, a text written past the
            # API in another form than app.search's (which lists no words) is still found.
            parts.append(f'"{term}"*')
        else:
            parts.append("(" + " OR ".join(f'"{word}"' for word in begun) + ")")
    return " AND ".join(parts)


def day_key(day: dt.date) -> int:
    """The lowest key of a day: every event of that day has a key from here to the next day's."""
    return (day.toordinal() + _JULIAN_DAY_OF_ORDINAL_0) << SHIFT


def timeline_key(day: dt.date, event_id: int) -> int:
    """An event's key in `event_fts_timeline`."""
    return day_key(day) + event_id


def day_of(key: int) -> dt.date:
    return dt.date.fromordinal((key >> SHIFT) - _JULIAN_DAY_OF_ORDINAL_0)


def rebuild(session: Session, *, rewrite: bool = False) -> int:
    """Index every live event again, from `event.search_text` and its participants; returns
    how many. PostgreSQL: set every event's `search_actors` that differs from its participants',
    and list the words in use that `search_word` lacks; returns how many events were set. With
    `rewrite`, PostgreSQL sets them all by rewriting the table instead, returning how many
    events it holds: for a table just loaded without the triggers (a restore), where every row
    would differ."""
    if session.get_bind().dialect.name == "postgresql":
        return _rewrite_postgresql(session) if rewrite else _rebuild_postgresql(session)
    emptied = "INSERT INTO event_fts_timeline(event_fts_timeline) VALUES ('delete-all')"
    session.execute(text(emptied))
    session.execute(text("DELETE FROM event_fts_actors"))
    session.execute(
        text(
            "INSERT INTO event_fts_actors(event_id, actors)"  # noqa: S608
            f" SELECT id, {ACTORS} FROM event WHERE deleted_at IS NULL"
        )
    )
    # In key order: FTS5 appends to its pending terms instead of flushing them at every key
    # lower than the last.
    session.execute(
        text(
            "INSERT INTO event_fts_timeline(rowid, search_text, actors)"  # noqa: S608
            f" SELECT {_KEY}, search_text, a.actors FROM event"
            f" JOIN event_fts_actors a ON a.event_id = event.id ORDER BY {_KEY}"
        )
    )
    listed = f"SELECT value FROM event, {_WORDS} WHERE value <> ''"  # noqa: S608
    session.execute(text(f"INSERT OR IGNORE INTO event_fts_words(word) {listed}"))
    return int(session.scalar(text("SELECT count(*) FROM event WHERE deleted_at IS NULL")) or 0)


def check(session: Session) -> int:
    """How many (key, column, token) triples differ between the index and the live events'
    stored words and actors, plus how many live events' kept actors (`event_fts_actors`) differ
    from their participants', plus how many of their words `event_fts_words` lacks (0 when all
    agree): the index's own list of what it holds (fts5vocab) against `event.search_text`, cut
    as the tokenizer cuts it (`search_text` holds only words and single spaces, app/search.py),
    and against `event_participant`. PostgreSQL: how many events' `search_actors` differ from
    their participants', plus how many words in use `search_word` lacks."""
    if session.get_bind().dialect.name == "postgresql":
        return _check_postgresql(session)
    session.execute(
        text(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.event_fts_timeline_words"
            " USING fts5vocab(main, event_fts_timeline, instance)"
        )
    )
    indexed = set(
        session.execute(text("SELECT doc, col, term FROM temp.event_fts_timeline_words")).tuples()
    )
    session.execute(text("DROP TABLE temp.event_fts_timeline_words"))
    expected: set[tuple[int, str, str]] = set()
    keys: dict[int, int] = {}
    rows = session.execute(
        text(f"SELECT event.id, {_KEY}, search_text FROM event WHERE deleted_at IS NULL")  # noqa: S608
    ).tuples()
    for event_id, key, stored in rows:
        keys[event_id] = key
        expected.update((key, "search_text", word) for word in stored.split(" ") if word)
    taking_part = _participants_actors(session)
    actors = {event_id: taking_part.get(event_id, set()) for event_id in keys}
    for event_id, tokens in actors.items():
        expected.update((keys[event_id], "actors", token) for token in tokens)
    kept = dict(
        session.execute(text("SELECT event_id, actors FROM event_fts_actors")).tuples().all()
    )
    wrongly_kept = sum(
        1
        for event_id in kept.keys() | actors.keys()
        if event_id not in kept
        or event_id not in actors
        or sorted(kept[event_id].split()) != sorted(actors[event_id])
    )
    unlisted = session.scalar(
        text(
            f"SELECT count(*) FROM (SELECT DISTINCT value FROM event, {_WORDS}"  # noqa: S608
            " WHERE deleted_at IS NULL AND value <> ''"
            " AND value NOT IN (SELECT word FROM event_fts_words))"
        )
    )
    return len(indexed ^ expected) + wrongly_kept + int(unlisted or 0)


def _participants_actors(session: Session) -> dict[int, set[str]]:
    """Every event's actor tokens, read from its participants (an event with none is absent)."""
    actors: dict[int, set[str]] = {}
    participants = session.execute(
        text("SELECT event_id, state_id, organisation_id FROM event_participant")
    ).tuples()
    for event_id, state_id, organisation_id in participants:
        if state_id is not None:
            actors.setdefault(event_id, set()).add(state_token(state_id))
        elif organisation_id is not None:
            actors.setdefault(event_id, set()).add(organisation_token(organisation_id))
    return actors


# PostgreSQL: the words in use that `search_word` lacks (migration 8b4f2c7e1d53). Words no
# event has any more are left, and so are words listed twice: on a live database another
# transaction may be adding an event with one of them, which its trigger found listed already.
_UNLISTED = (
    "SELECT DISTINCT lexeme FROM event, unnest(event.search_vector)"
    " WHERE NOT EXISTS (SELECT 1 FROM search_word WHERE word = lexeme)"
)


def _rebuild_postgresql(session: Session) -> int:
    session.execute(text(f"INSERT INTO search_word (word) {_UNLISTED}"))
    # Only the rows that differ are written: an UPDATE of every row leaves a dead copy of each.
    written = session.execute(
        text(
            "UPDATE event SET search_actors = now.actors"
            " FROM (SELECT id, event_search_actors(id) AS actors FROM event) AS now"
            " WHERE event.id = now.id AND event.search_actors IS DISTINCT FROM now.actors"
        )
    )
    return int(written.rowcount)  # type: ignore[attr-defined]


def _rewrite_postgresql(session: Session) -> int:
    # An UPDATE of every row would leave a dead copy of each behind, and the table and its GIN
    # index about twice their size until a VACUUM FULL; a rewrite writes each row once, with its
    # value, and builds the table's indexes afresh (as the migration that added the column
    # filled it). It holds an ACCESS EXCLUSIVE lock on `event` until the commit, which a restore
    # into an empty database can afford and a live database cannot.
    session.execute(
        text(
            "ALTER TABLE event ALTER COLUMN search_actors TYPE tsvector"
            " USING event_search_actors(id)"
        )
    )
    session.execute(text(f"INSERT INTO search_word (word) {_UNLISTED}"))
    return int(session.scalar(text("SELECT count(*) FROM event")) or 0)


def _check_postgresql(session: Session) -> int:
    expected = _participants_actors(session)
    stored = session.execute(text("SELECT id, tsvector_to_array(search_actors) FROM event"))
    differ = sum(1 for event_id, tokens in stored if set(tokens) != expected.get(event_id, set()))
    return differ + unlisted_words(session)


def unlisted_words(session: Session) -> int:
    """PostgreSQL: how many words in use `search_word` lacks (0 when a prefix is read as
    exactly the words it begins)."""
    return int(session.scalar(text(f"SELECT count(*) FROM ({_UNLISTED}) AS unlisted")) or 0)  # noqa: S608


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.timeline.search_index",
        description="Rebuild the search index's actors from the events' participants, on"
        " SQLite the full-text index in timeline order from their stored words, and on"
        " PostgreSQL the list of words in use (after a load that wrote the tables without the"
        " triggers), or check them against those. Triggers keep them in step at every write.",
    )
    parser.add_argument(
        "--database-url", help="database to use (default: DATABASE_URL, as the API uses)"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="compare the index with the events and change nothing; exit 1 if they differ",
    )
    args = parser.parse_args(argv)
    engine = create_db_engine(args.database_url or get_settings().database_url)
    started = time.monotonic()
    try:
        postgresql = engine.dialect.name == "postgresql"
        with create_session_factory(engine)() as session:
            if args.check:
                differ = check(session)
                session.rollback()
                what = (
                    "events' actors or unlisted words"
                    if postgresql
                    else "(key, column, token) triples or kept actors"
                )
                print(
                    f"search index: {differ:,} {what} differ in {time.monotonic() - started:.1f} s",
                    file=sys.stderr,
                )
                return 1 if differ else 0
            written = rebuild(session)
            session.commit()
    finally:
        engine.dispose()
    done = "events' actors set" if postgresql else "events indexed"
    print(
        f"search index: {written:,} {done} in {time.monotonic() - started:.1f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

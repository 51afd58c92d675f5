"""SQLite's full-text index in timeline order (`event_fts_timeline`): keys, rebuild and check.

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
against `event.search_text`. PostgreSQL has no such index.
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

_KEY = f"(CAST(julianday(date) AS INTEGER) << {SHIFT}) + id"
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


def rebuild(session: Session) -> int:
    """Index every live event again, from `event.search_text`; returns how many."""
    emptied = "INSERT INTO event_fts_timeline(event_fts_timeline) VALUES ('delete-all')"
    session.execute(text(emptied))
    fill = f"INSERT INTO event_fts_timeline(rowid, search_text) SELECT {_KEY}, search_text"
    session.execute(text(f"{fill} FROM event WHERE deleted_at IS NULL"))
    listed = f"SELECT value FROM event, {_WORDS} WHERE value <> ''"  # noqa: S608
    session.execute(text(f"INSERT OR IGNORE INTO event_fts_words(word) {listed}"))
    return int(session.scalar(text("SELECT count(*) FROM event WHERE deleted_at IS NULL")) or 0)


def check(session: Session) -> int:
    """How many (key, word) pairs differ between the index and the live events' stored words,
    plus how many of their words `event_fts_words` lacks (0 when all agree): the index's own
    list of what it holds (fts5vocab) against `event.search_text`, cut as the tokenizer cuts it
    (`search_text` holds only words and single spaces, app/search.py)."""
    session.execute(
        text(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.event_fts_timeline_words"
            " USING fts5vocab(main, event_fts_timeline, instance)"
        )
    )
    indexed = {
        (key, word)
        for word, key in session.execute(
            text("SELECT term, doc FROM temp.event_fts_timeline_words")
        ).tuples()
    }
    expected: set[tuple[int, str]] = set()
    rows = session.execute(
        text(f"SELECT {_KEY}, search_text FROM event WHERE deleted_at IS NULL")  # noqa: S608
    ).tuples()
    for key, stored in rows:
        expected.update((key, word) for word in stored.split(" ") if word)
    session.execute(text("DROP TABLE temp.event_fts_timeline_words"))
    unlisted = session.scalar(
        text(
            f"SELECT count(*) FROM (SELECT DISTINCT value FROM event, {_WORDS}"  # noqa: S608
            " WHERE deleted_at IS NULL AND value <> ''"
            " AND value NOT IN (SELECT word FROM event_fts_words))"
        )
    )
    return len(indexed ^ expected) + int(unlisted or 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.timeline.search_index",
        description="SQLite: rebuild the full-text index in timeline order from the events'"
        " stored words (after a load that wrote the tables without its triggers), or check it"
        " against them. Triggers keep it in step at every write. PostgreSQL has none.",
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
        if engine.dialect.name != "sqlite":
            print("search index: PostgreSQL has none, nothing to do", file=sys.stderr)
            return 0
        with create_session_factory(engine)() as session:
            if args.check:
                differ = check(session)
                session.rollback()
                print(
                    f"search index: {differ:,} (key, word) pairs differ"
                    f" in {time.monotonic() - started:.1f} s",
                    file=sys.stderr,
                )
                return 1 if differ else 0
            written = rebuild(session)
            session.commit()
    finally:
        engine.dispose()
    print(
        f"search index: {written:,} events indexed in {time.monotonic() - started:.1f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

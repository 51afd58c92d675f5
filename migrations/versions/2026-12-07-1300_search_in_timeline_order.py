"""SQLite: a full-text index of live events keyed in timeline order (`event_fts_timeline`)

Reviewed by hand. `event_fts` is keyed by event id, so a page of `q=` read every match (or
walked the timeline testing each event against all of them) before it could order a page. This
second FTS5 index holds the same words, of live events only, under a rowid that sorts like the
timeline: the day of the event's date (its Julian day number) in the high 32 bits, its id in
the low ones (`app.search.timeline_key`). A page then reads the first matches in key order and
stops (`app.timeline.service._keyed_rows`). `event_fts_words` lists every word indexed, so
that a query's prefix is read as the words it begins (`app.timeline.search_index.expanded`).

Contentless (the words are in `event.search_text` already), so a row is removed by giving its
indexed text back: the triggers below do so with the old row's values, and are the only
writers besides `app.search.rebuild_timeline_index`. NOTE for later migrations: like
`event_fts`'s, a batch-mode rebuild of the `event` table drops these triggers; recreate them
(TRIGGERS). The name starts with `event_fts` so that what leaves `event_fts` out (alembic's
comparison, the archive's bulk restore) leaves this out too.

PostgreSQL: nothing.

Revision ID: 5a1c7e3b9d20
Revises: 9c1f0e7a2b6d
Create Date: 2026-12-07 12:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "5a1c7e3b9d20"
down_revision: str | None = "9c1f0e7a2b6d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The rowid of an event: app.search.timeline_key computes the same in Python.
_KEY = "(CAST(julianday({row}.date) AS INTEGER) << 32) + {row}.id"
# The stored words are letters and digits separated by single spaces (app/search.py): quoted
# and joined by commas they make a JSON array of them. Text written past the API in another
# form lists nothing, and its words are then read as prefixes (`search_index.expanded`).
_WORDS = (
    "json_each(CASE WHEN json_valid('[\"' || replace({row}.search_text, ' ', '\",\"') || '\"]')"
    " THEN '[\"' || replace({row}.search_text, ' ', '\",\"') || '\"]' ELSE '[]' END)"
)
_INDEXED = f"SELECT {_KEY.format(row='new')}, new.search_text WHERE new.deleted_at IS NULL"
_LISTED = f"SELECT value FROM {_WORDS.format(row='new')} WHERE value <> ''"  # noqa: S608
_ADD = (
    f"INSERT INTO event_fts_timeline(rowid, search_text) {_INDEXED};"
    f" INSERT OR IGNORE INTO event_fts_words(word) {_LISTED};"
)
_REMOVE = (
    "INSERT INTO event_fts_timeline(event_fts_timeline, rowid, search_text)"
    f" SELECT 'delete', {_KEY.format(row='old')}, old.search_text WHERE old.deleted_at IS NULL;"
)
TRIGGERS = (
    f"CREATE TRIGGER event_fts_timeline_after_insert AFTER INSERT ON event BEGIN {_ADD} END",
    f"CREATE TRIGGER event_fts_timeline_after_delete AFTER DELETE ON event BEGIN {_REMOVE} END",
    "CREATE TRIGGER event_fts_timeline_after_update"
    f" AFTER UPDATE OF date, search_text, deleted_at ON event BEGIN {_REMOVE} {_ADD} END",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    # The tokenizer is event_fts's: both must cut the stored words alike (app/search.py).
    op.execute(
        "CREATE VIRTUAL TABLE event_fts_timeline USING fts5(search_text, content='',"
        " tokenize='unicode61 remove_diacritics 2')"
    )
    # Every word ever indexed (a word no event has any more only costs a lookup): a query's
    # word prefix becomes the words it begins, which FTS5 reads incrementally where a prefix
    # query merges every match first (app.timeline.search_index.expanded).
    op.execute("CREATE TABLE event_fts_words (word TEXT PRIMARY KEY) WITHOUT ROWID")
    listed = f"SELECT value FROM event, {_WORDS.format(row='event')} WHERE value <> ''"  # noqa: S608
    op.execute(f"INSERT OR IGNORE INTO event_fts_words(word) {listed}")
    for trigger in TRIGGERS:
        op.execute(trigger)
    live = f"SELECT {_KEY.format(row='event')}, search_text FROM event WHERE deleted_at IS NULL"  # noqa: S608
    op.execute(f"INSERT INTO event_fts_timeline(rowid, search_text) {live}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in ("after_insert", "after_delete", "after_update"):
        op.execute(f"DROP TRIGGER IF EXISTS event_fts_timeline_{name}")
    op.execute("DROP TABLE IF EXISTS event_fts_timeline")
    op.execute("DROP TABLE IF EXISTS event_fts_words")

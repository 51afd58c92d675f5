"""SQLite: a full-text index of live events keyed in timeline order (`event_fts_timeline`)

Reviewed by hand. `event_fts` is keyed by event id, so a page of `q=` read every match (or
walked the timeline testing each event against all of them) before it could order a page. This
second FTS5 index holds the same words, of live events only, under a rowid that sorts like the
timeline: the day of the event's date (its Julian day number) in the high 32 bits, its id in
the low ones (`app.search.timeline_key`). A page then reads the first matches in key order and
stops (`app.timeline.service._keyed_rows`).

Contentless (the words are in `event.search_text` already), so a row is removed by giving its
indexed text back: the triggers below do so with the old row's values, and are the only
writers besides `app.search.rebuild_timeline_index`. NOTE for later migrations: like
`event_fts`'s, a batch-mode rebuild of the `event` table drops these triggers; recreate them
(TRIGGERS). The name starts with `event_fts` so that what leaves `event_fts` out (alembic's
comparison, the archive's bulk restore) leaves this out too.

PostgreSQL: nothing.

Revision ID: 5a1c7e3b9d20
Revises: 376e39f91e76
Create Date: 2026-12-07 12:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "5a1c7e3b9d20"
down_revision: str | None = "376e39f91e76"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The rowid of an event: app.search.timeline_key computes the same in Python.
_KEY = "(CAST(julianday({row}.date) AS INTEGER) << 32) + {row}.id"
_ADD = (
    "INSERT INTO event_fts_timeline(rowid, search_text)"
    f" SELECT {_KEY.format(row='new')}, new.search_text WHERE new.deleted_at IS NULL;"
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

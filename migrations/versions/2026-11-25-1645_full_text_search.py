"""full-text search: SQLite FTS5 and PostgreSQL tsvector over event.search_text

`search_text` already holds the folded (lower-case, accent-free) title, summary, claims, place
names and every alias of the place, so both engines index the same words.

- SQLite: an external-content FTS5 table `event_fts` over event.search_text, kept in step by
  three triggers, and filled once here. NOTE for later migrations: a batch-mode rebuild of the
  `event` table on SQLite drops these triggers; recreate them (see TRIGGERS) in that migration.
- PostgreSQL: a GIN expression index on to_tsvector('simple', search_text).

Neither object is in the SQLAlchemy metadata (they are dialect-specific); migrations/env.py
leaves them out of `alembic check`.

Revision ID: 2f9d4b6c8e10
Revises: 8c3f1e0d7a21
Create Date: 2026-11-25 16:45:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "2f9d4b6c8e10"
down_revision: str | None = "8c3f1e0d7a21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRIGGERS = (
    """CREATE TRIGGER event_fts_after_insert AFTER INSERT ON event BEGIN
         INSERT INTO event_fts(rowid, search_text) VALUES (new.id, new.search_text);
       END""",
    """CREATE TRIGGER event_fts_after_delete AFTER DELETE ON event BEGIN
         INSERT INTO event_fts(event_fts, rowid, search_text)
         VALUES ('delete', old.id, old.search_text);
       END""",
    """CREATE TRIGGER event_fts_after_update AFTER UPDATE OF search_text ON event BEGIN
         INSERT INTO event_fts(event_fts, rowid, search_text)
         VALUES ('delete', old.id, old.search_text);
         INSERT INTO event_fts(rowid, search_text) VALUES (new.id, new.search_text);
       END""",
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE event_fts USING fts5(search_text, content='event',"
            " content_rowid='id', tokenize='unicode61 remove_diacritics 2')"
        )
        for trigger in TRIGGERS:
            op.execute(trigger)
        op.execute("INSERT INTO event_fts(event_fts) VALUES ('rebuild')")
    else:
        op.execute(
            "CREATE INDEX ix_event_search ON event USING gin (to_tsvector('simple', search_text))"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("event_fts_after_insert", "event_fts_after_delete", "event_fts_after_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS event_fts")
    else:
        op.execute("DROP INDEX IF EXISTS ix_event_search")

"""PostgreSQL full-text search reads a stored tsvector instead of recomputing it per row

At 1M events a ranked search for a common word took 1.5-2.2 s on PostgreSQL: ts_rank, and any
plan that tests events one by one, recomputed to_tsvector('simple', search_text) for every
candidate (about 25 us each, 50,000 times). A STORED generated column computes it once per
write; the GIN index moves onto the column. Same words, same configuration, so results do not
change. SQLite (FTS5) is untouched.

Reviewed by hand: PostgreSQL only, like the index it replaces, and outside the SQLAlchemy
metadata (migrations/env.py leaves both out of `alembic check`), so no INSERT names the column;
adding it rewrites the event table once (about a minute at 1M events).

Revision ID: 7b3d5f9a1c24
Revises: 4e6a8c0b2d13
Create Date: 2026-12-02 06:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "7b3d5f9a1c24"
down_revision: str | None = "4e6a8c0b2d13"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "ALTER TABLE event ADD COLUMN search_vector tsvector"
        " GENERATED ALWAYS AS (to_tsvector('simple', search_text)) STORED"
    )
    op.execute("DROP INDEX ix_event_search")
    op.execute("CREATE INDEX ix_event_search ON event USING gin (search_vector)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX ix_event_search")
    op.execute("ALTER TABLE event DROP COLUMN search_vector")
    op.execute(
        "CREATE INDEX ix_event_search ON event USING gin (to_tsvector('simple', search_text))"
    )

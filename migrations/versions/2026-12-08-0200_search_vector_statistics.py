"""PostgreSQL: statistics of the 10,000 commonest words, for the plans of `q=` pages

Reviewed by hand. A page of `q=` is planned from PostgreSQL's estimate of how many events have
the words (app.timeline.planner): few are read first and sorted, many are found by walking the
timeline. ANALYZE keeps the commonest lexemes of a tsvector column, ten times the column's
statistics target: 1,000 at the default of 100. A word outside them is estimated from the
rarest kept one, so at 1M synthetic events, where 4,945 words are in use, `rora` (11,867
events) was once estimated at 3,301. Its page read 5,001 matches before it found out they were
many, then walked: several times slower than a walk at once (bench/README.md). A target of
1,000 keeps 10,000 lexemes.

ANALYZE samples 300 rows per unit of the largest target among the columns it reads, so the
table's ANALYZE now reads 300,000 rows instead of 30,000 (6 s for the column at 1M).

SQLite: nothing (FTS5 is not planned from statistics).

Revision ID: 6d2e8b4f1a39
Revises: 3c8f1a6d9b27
Create Date: 2026-12-08 02:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "6d2e8b4f1a39"
down_revision: str | None = "3c8f1a6d9b27"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE event ALTER COLUMN search_vector SET STATISTICS 1000")
    op.execute("ANALYZE event (search_vector)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # -1: the server's default_statistics_target again.
    op.execute("ALTER TABLE event ALTER COLUMN search_vector SET STATISTICS -1")
    op.execute("ANALYZE event (search_vector)")

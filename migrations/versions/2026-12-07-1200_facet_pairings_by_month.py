"""facet_actor_count: one actor's pairings by month

Reviewed by hand. No schema change: adds the rows of one more level of the facet counts
(`app.timeline.counts.PAIRINGS_BY_MONTH`: per given actor, kind, month and actor taking part),
so that facets of one state or organisation with a window that cuts a year sum counts for the
whole months and read the actor's events of the two edge months only. The upgrade fills those
rows from the tables, first deleting any there (the rebuild of an earlier migration, run with
the code of today, already writes them), then gathers the table's statistics. They are the
only rows with a given actor and a month period, so the downgrade deletes exactly them.

Revision ID: 9c1f0e7a2b6d
Revises: 376e39f91e76
Create Date: 2026-12-07 05:40:00.000000
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy.orm import Session

from app.timeline import counts

revision: str = "9c1f0e7a2b6d"
down_revision: str | None = "376e39f91e76"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with Session(bind=op.get_bind()) as session:
        counts.fill(session, counts.PAIRINGS_BY_MONTH)
        session.flush()
    op.execute("ANALYZE facet_actor_count")


def downgrade() -> None:
    op.execute("DELETE FROM facet_actor_count WHERE given <> 0 AND period > 0")

"""facet_event, facet_count, facet_actor_count: the facet counts kept with the data

Reviewed by hand. Three tables derived from event and event_participant, kept by the write
step (app/timeline/counts.py). The primary keys are the only indexes: every read is an
equality on `given`, a list of kinds and categories, and ranges of `period`. On SQLite the two
count tables are WITHOUT ROWID (the primary key is the table). `facet_event.event_id` has no
foreign key on purpose: the record of what an event was counted as must outlive the event
long enough to be subtracted. The upgrade fills them with the same code as
`python -m app.timeline.counts` (counts that start empty would be wrong, not only slow), then
gathers their statistics. The downgrade drops them: nothing refers to them.

Revision ID: 376e39f91e76
Revises: fbd1ac3f2072
Create Date: 2026-12-07 02:18:16.946061
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.orm import Session

from app.timeline import counts

revision: str = "376e39f91e76"
down_revision: str | None = "fbd1ac3f2072"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "facet_actor_count",
        sa.Column("given", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("category", sa.String(length=60), nullable=False),
        sa.Column("period", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("value", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.CheckConstraint("n >= 0", name=op.f("facet_actor_count_not_negative_check")),
        sa.PrimaryKeyConstraint(
            "given", "kind", "category", "period", "value", name=op.f("facet_actor_count_pkey")
        ),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "facet_count",
        sa.Column("given", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("category", sa.String(length=60), nullable=False),
        sa.Column("period", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.CheckConstraint("n >= 0", name=op.f("facet_count_not_negative_check")),
        sa.PrimaryKeyConstraint(
            "given", "kind", "category", "period", name=op.f("facet_count_pkey")
        ),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "facet_event",
        sa.Column("event_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("category", sa.String(length=60), nullable=False),
        sa.Column("actors", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("facet_event_pkey")),
    )
    with Session(bind=op.get_bind()) as session:
        counts.rebuild(session)
        session.flush()
    for table in ("facet_event", "facet_count", "facet_actor_count"):
        op.execute(f"ANALYZE {table}")


def downgrade() -> None:
    op.drop_table("facet_event")
    op.drop_table("facet_count")
    op.drop_table("facet_actor_count")

"""timeline order indexes: copy the event's public id onto participants and tags

The timeline is ordered by (date, public_id). With the public id beside the date on
event_participant and event_tag, a filter on one state, organisation or tag reads its page
straight off (state_id | organisation_id | tag, date, public_id) and stops, instead of reading
every matching event and sorting them (bench/README.md: 747 ms -> 0.1 ms at 1M events).

Reviewed by hand: the new NOT NULL columns are backfilled from event before the constraint is
set (batch mode, so SQLite rebuilds the tables); the three indexes are replaced in both
directions.

Revision ID: 8c3f1e0d7a21
Revises: 5b7e2c9a41d0
Create Date: 2026-11-25 16:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8c3f1e0d7a21"
down_revision: str | None = "5b7e2c9a41d0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_event_participant_state_timeline": ("event_participant", "state_id"),
    "ix_event_participant_organisation_timeline": ("event_participant", "organisation_id"),
    "ix_event_tag_timeline": ("event_tag", "tag"),
}


def upgrade() -> None:
    for table in ("event_participant", "event_tag"):
        op.add_column(table, sa.Column("public_id", sa.String(length=120), nullable=True))
        op.execute(
            f"UPDATE {table} SET public_id ="  # noqa: S608 - fixed table names
            f" (SELECT event.public_id FROM event WHERE event.id = {table}.event_id)"
        )
        with op.batch_alter_table(table) as batch_op:
            batch_op.alter_column("public_id", existing_type=sa.String(length=120), nullable=False)
    for name, (table, lead) in INDEXES.items():
        op.drop_index(name, table_name=table)
        op.create_index(name, table, [lead, "date", "public_id", "event_id"])


def downgrade() -> None:
    for name, (table, lead) in INDEXES.items():
        op.drop_index(name, table_name=table)
        op.create_index(name, table, [lead, "date", "event_id"])
    for table in ("event_participant", "event_tag"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("public_id")

"""event_state_pair: each pair of states taking part in an event, for `between=` pages

Reviewed by hand. The table is derived from event_participant (the API replaces an event's
pairs with its participants on every write), so the upgrade fills it from the participants
already there, in one statement, before building its indexes (faster than maintaining them
row by row), then gathers its statistics. `state_a < state_b` keeps one row per pair;
participants without a state (an organisation, a named group) have a NULL state_id, which the
comparison leaves out. The downgrade drops the table: nothing else refers to it.

Revision ID: 9c19f5a28529
Revises: 2c8e4a6b9d15
Create Date: 2026-12-02 10:20:41.420083
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9c19f5a28529"
down_revision: str | None = "2c8e4a6b9d15"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_state_pair",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("state_a", sa.Integer(), nullable=False),
        sa.Column("state_b", sa.Integer(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("public_id", sa.String(length=120), nullable=False),
        sa.CheckConstraint("state_a < state_b", name=op.f("event_state_pair_ordered_check")),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["event.id"],
            name=op.f("event_state_pair_event_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["state_a"],
            ["state.id"],
            name=op.f("event_state_pair_state_a_fkey"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["state_b"],
            ["state.id"],
            name=op.f("event_state_pair_state_b_fkey"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("event_state_pair_pkey")),
    )
    # DISTINCT: a state taking part twice in one event (two roles) makes one pair.
    op.execute(
        "INSERT INTO event_state_pair (event_id, state_a, state_b, date, public_id) "
        "SELECT DISTINCT a.event_id, a.state_id, b.state_id, a.date, a.public_id "
        "FROM event_participant a JOIN event_participant b "
        "ON b.event_id = a.event_id AND a.state_id < b.state_id"
    )
    with op.batch_alter_table("event_state_pair", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_event_state_pair_event_id"), ["event_id"], unique=False
        )
        batch_op.create_index(
            "ix_event_state_pair_timeline",
            ["state_a", "state_b", "date", "public_id", "event_id"],
            unique=False,
        )
    # Statistics for the planners: SQLite keeps none until asked, and PostgreSQL's autovacuum
    # may not have run before the first `between=` page.
    op.execute("ANALYZE event_state_pair")


def downgrade() -> None:
    op.drop_table("event_state_pair")

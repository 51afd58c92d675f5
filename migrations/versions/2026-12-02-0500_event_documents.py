"""event documents: each event's served JSON, stored at write time for the timeline's hot path

A new table, nothing changed in existing ones. Reviewed by hand: names follow the naming
convention (`event_document_pkey`, `event_document_event_id_fkey`); the primary key is the event
id, so reading a page's 50 documents is 50 primary-key lookups; ON DELETE CASCADE because a
document is derived data that must not outlive its event. The table starts empty: the API
assembles any missing document on read, and `python -m app.events.documents` (run by the seed
step of `make run`) fills it.

Revision ID: 4e6a8c0b2d13
Revises: 9a1c3e5f7b20
Create Date: 2026-12-02 05:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4e6a8c0b2d13"
down_revision: str | None = "9a1c3e5f7b20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_document",
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("format", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["event.id"],
            name=op.f("event_document_event_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("event_document_pkey")),
    )


def downgrade() -> None:
    op.drop_table("event_document")

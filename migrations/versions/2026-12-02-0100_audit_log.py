"""audit log: one row per acknowledged write or admin action

A new table, nothing changed in existing ones. Reviewed by hand: constraint and index names
follow the naming convention (`audit_entry_pkey`, `audit_entry_key_id_fkey`); the foreign key to
api_key is ON DELETE SET NULL so an entry outlives its key (key_name keeps who it was); the
indexes serve GET /v1/audit, newest first, filtered by key or action, and `since`.

Revision ID: 9a1c3e5f7b20
Revises: 2f9d4b6c8e10
Create Date: 2026-12-02 01:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9a1c3e5f7b20"
down_revision: str | None = "2f9d4b6c8e10"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("key_id", sa.Integer(), nullable=True),
        sa.Column("key_name", sa.String(length=100), nullable=False),
        sa.Column("scopes", sa.String(length=200), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("target", sa.String(length=500), nullable=True),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("client_ip", sa.String(length=45), nullable=True),
        sa.ForeignKeyConstraint(
            ["key_id"],
            ["api_key.id"],
            name=op.f("audit_entry_key_id_fkey"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("audit_entry_pkey")),
    )
    op.create_index("ix_audit_entry_key", "audit_entry", ["key_id", "id"])
    op.create_index("ix_audit_entry_action", "audit_entry", ["action", "id"])
    op.create_index("ix_audit_entry_at", "audit_entry", ["at"])


def downgrade() -> None:
    op.drop_index("ix_audit_entry_at", table_name="audit_entry")
    op.drop_index("ix_audit_entry_action", table_name="audit_entry")
    op.drop_index("ix_audit_entry_key", table_name="audit_entry")
    op.drop_table("audit_entry")

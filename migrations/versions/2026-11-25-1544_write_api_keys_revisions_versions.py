"""write api: api keys, revision history, idempotency records, versions and soft deletes

Adds `version` (the ETag; existing rows start at 1 through the server default, so the column can
be NOT NULL on filled tables) to every writable resource, and `deleted_at` where it was missing
(events already had it). Reviewed by hand: plain ADD COLUMN on both databases; dropping columns
goes through batch mode so SQLite rebuilds the table.

Revision ID: 1d6fce2f6657
Revises: 1ed0732e5dde
Create Date: 2026-11-25 15:44:04.401434
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "1d6fce2f6657"
down_revision: str | None = "1ed0732e5dde"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VERSIONED = ("event", "state", "organisation", "membership", "source")
NEWLY_DELETABLE = ("state", "organisation", "membership", "source")


def upgrade() -> None:
    op.create_table(
        "api_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("api_key_pkey")),
        sa.UniqueConstraint("name", name=op.f("api_key_name_key")),
        sa.UniqueConstraint("token_hash", name=op.f("api_key_token_hash_key")),
    )
    op.create_index(op.f("ix_api_key_prefix"), "api_key", ["prefix"])

    op.create_table(
        "revision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resource", sa.String(length=20), nullable=False),
        sa.Column("resource_key", sa.String(length=120), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("operation", sa.String(length=10), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.CheckConstraint(
            "operation IN ('create', 'update', 'delete')", name=op.f("revision_operation_check")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("revision_pkey")),
    )
    op.create_index("ix_revision_at", "revision", ["at"])
    op.create_index("ix_revision_resource", "revision", ["resource", "resource_key", "id"])

    op.create_table(
        "idempotency_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("api_key_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_key.id"],
            name=op.f("idempotency_record_api_key_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("idempotency_record_pkey")),
        sa.UniqueConstraint(
            "api_key_id", "key", name=op.f("idempotency_record_api_key_id_key_key")
        ),
    )

    for table in VERSIONED:
        op.add_column(
            table, sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False)
        )
    for table in NEWLY_DELETABLE:
        op.add_column(table, sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for table in VERSIONED:
        with op.batch_alter_table(table) as batch_op:
            if table in NEWLY_DELETABLE:
                batch_op.drop_column("deleted_at")
            batch_op.drop_column("version")
    op.drop_table("idempotency_record")
    op.drop_index("ix_revision_resource", table_name="revision")
    op.drop_index("ix_revision_at", table_name="revision")
    op.drop_table("revision")
    op.drop_index(op.f("ix_api_key_prefix"), table_name="api_key")
    op.drop_table("api_key")

"""event documents: each event's CSV line, stored beside its JSON for streamed CSV exports

Reviewed by hand. The stored documents are derived data that `python -m app.events.documents`
rebuilds (the seed step of `make run` and the Docker image's start run it), so the upgrade
empties the table rather than adding a nullable column or a placeholder default: `csv` is
NOT NULL from the first row, and until the table is filled again the API assembles each
document on read (correct, only slower). The downgrade drops the column the same way.

Revision ID: 2c8e4a6b9d15
Revises: 7b3d5f9a1c24
Create Date: 2026-12-02 08:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2c8e4a6b9d15"
down_revision: str | None = "7b3d5f9a1c24"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("DELETE FROM event_document")
    with op.batch_alter_table("event_document") as batch:
        batch.add_column(sa.Column("csv", sa.Text(), nullable=False))


def downgrade() -> None:
    op.execute("DELETE FROM event_document")
    with op.batch_alter_table("event_document") as batch:
        batch.drop_column("csv")

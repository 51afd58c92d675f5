"""webhooks: endpoints disabled because their key was revoked; response length in the log

Reviewed by hand. `webhook_endpoint.disabled_reason` may now be `revoked` (the check
constraint is rebuilt; SQLite rebuilds the table). `webhook_attempt.response_bytes` is new and
nullable: the length of each response is kept for every receiver from now on, while a body
excerpt is kept only from receivers at public addresses. The upgrade empties the excerpts
already stored, because nothing recorded which address each came from, so any of them may be
an internal service's answer; the downgrade cannot bring them back. The downgrade turns
`revoked` into `manual` (the endpoints stay disabled) before restoring the old constraint,
and drops the new column.

Revision ID: fbd1ac3f2072
Revises: 4a7e2d9c1b36
Create Date: 2026-12-07 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "fbd1ac3f2072"
down_revision: str | None = "4a7e2d9c1b36"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHECK = "webhook_endpoint_disabled_reason_check"


def upgrade() -> None:
    with op.batch_alter_table("webhook_endpoint") as batch:
        batch.drop_constraint(op.f(CHECK), type_="check")
        batch.create_check_constraint(
            op.f(CHECK), "disabled_reason IN ('manual', 'failing', 'gone', 'revoked')"
        )
    with op.batch_alter_table("webhook_attempt") as batch:
        batch.add_column(sa.Column("response_bytes", sa.Integer(), nullable=True))
    op.execute("UPDATE webhook_attempt SET response_body = NULL")


def downgrade() -> None:
    op.execute(
        "UPDATE webhook_endpoint SET disabled_reason = 'manual' WHERE disabled_reason = 'revoked'"
    )
    with op.batch_alter_table("webhook_endpoint") as batch:
        batch.drop_constraint(op.f(CHECK), type_="check")
        batch.create_check_constraint(
            op.f(CHECK), "disabled_reason IN ('manual', 'failing', 'gone')"
        )
    with op.batch_alter_table("webhook_attempt") as batch:
        batch.drop_column("response_bytes")

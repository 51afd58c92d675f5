"""event_participant.role: allow `alleged_initiator`

Reviewed by hand. Autogenerate does not compare CHECK constraints, so this one is written out:
the role CHECK is replaced by one that also admits `alleged_initiator` (a party that only a
claimant says did the act, such as Mali in Algeria's allegations of drone incursions). On
SQLite the batch operation rebuilds event_participant; its indexes are recreated from the
reflected table, and no trigger hangs on it (the full-text triggers are on `event`).

The downgrade has to put every row back under the old CHECK, which cannot say "alleged": such
rows go back to `initiator`, the way the seed stored them before this revision. That loses the
distinction, which is what going back to the old vocabulary means; it loses no row.

Revision ID: 4a7e2d9c1b36
Revises: 3f7a9d2e6b41
Create Date: 2026-12-07 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "4a7e2d9c1b36"
down_revision: str | None = "3f7a9d2e6b41"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = "role IN ('initiator', 'target', 'affected', 'mediator', 'participant', 'observer')"
NEW = (
    "role IN ('initiator', 'alleged_initiator', 'target', 'affected', 'mediator', "
    "'participant', 'observer')"
)


def _replace_check(condition: str) -> None:
    with op.batch_alter_table("event_participant") as batch_op:
        batch_op.drop_constraint(op.f("event_participant_role_check"), type_="check")
        batch_op.create_check_constraint(op.f("event_participant_role_check"), condition)


def upgrade() -> None:
    _replace_check(NEW)


def downgrade() -> None:
    op.execute("UPDATE event_participant SET role = 'initiator' WHERE role = 'alleged_initiator'")
    _replace_check(OLD)

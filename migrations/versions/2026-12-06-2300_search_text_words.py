"""event.search_text holds the searched words only, separated by single spaces

Reviewed by hand. `q=` meant one thing on SQLite and another on PostgreSQL because each engine
cut the stored text into words its own way: PostgreSQL's parser kept "2024-2025" as 2024 and
the number -2025, "bamada.net" as one host name, "1.6" as one number. The API now stores the
words as app/search.py cuts them, so both engines (and the Python matcher of historical
timelines) see the same words. This rewrites each event's text whose stored form differs:
its words are those of the old text, which was already folded, so nothing is read but the
column. SQLite's triggers update the FTS5 table; PostgreSQL recomputes the generated tsvector.

It uses the API's own definition of a word (app.search), on purpose: the stored text must be
cut as the running code cuts queries. The downgrade leaves the text as it is: the older code
searches the plain words correctly.

Revision ID: 3f7a9d2e6b41
Revises: 9c19f5a28529
Create Date: 2026-12-06 23:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.search import search_text

revision: str = "3f7a9d2e6b41"
down_revision: str | None = "9c19f5a28529"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 2_000


def upgrade() -> None:
    bind = op.get_bind()
    read = sa.text("SELECT id, search_text FROM event WHERE id > :after ORDER BY id LIMIT :batch")
    write = sa.text("UPDATE event SET search_text = :text WHERE id = :id")
    after = 0
    while True:
        rows = bind.execute(read, {"after": after, "batch": BATCH}).all()
        if not rows:
            break
        changed = [
            {"id": id_, "text": new} for id_, old in rows if (new := search_text([old])) != old
        ]
        if changed:
            bind.execute(write, changed)
        after = rows[-1][0]


def downgrade() -> None:
    # Nothing to undo: the older code finds the plain words as well as it found the old text.
    pass

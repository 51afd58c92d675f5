from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.config import PROJECT_ROOT
from app.errors import ServiceUnavailable


class NotReady(ServiceUnavailable):
    slug = "not-ready"
    title = "Not ready"


def head_revision(root: Path = PROJECT_ROOT) -> str:
    config = Config(str(root / "alembic.ini"))
    config.set_main_option("script_location", str(root / "migrations"))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None  # noqa: S101 - the migrations folder always has a head
    return head


def readiness(session: Session) -> dict[str, str | None]:
    try:
        session.execute(text("SELECT 1"))
        current = MigrationContext.configure(session.connection()).get_current_revision()
    except Exception as exc:
        raise NotReady(f"The database does not answer: {type(exc).__name__}.") from None
    head = head_revision()
    if current != head:
        raise NotReady(f"The database is at migration {current!r}; this code needs {head!r}.")
    return {
        "status": "ready",
        "database": session.get_bind().dialect.name,
        "migration": current,
        "head": head,
    }

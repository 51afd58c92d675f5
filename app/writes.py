"""The write step: what every commit does besides committing, in one place and in this order.

A service changes rows and records a revision of each resource it changed
(`app.revisions.service.record`), then flushes; it never commits. When the request's session
commits, these steps run in the same transaction, so the change, its webhooks, its stored
documents, its counts and its audit entry commit together or not at all:

1. flush, so everything the request changed is in the database and noted (`_after_flush`);
2. queue a webhook message, and one delivery per matching endpoint, for each revision this
   transaction recorded, in revision order (the outbox, `app.webhooks.service.emit`), and
   announce them to the live streams (`app.stream.service.announce`);
3. rewrite the stored documents and CSV lines of the events it changed, and of the events
   citing a source it changed (`app.events.documents.refresh`);
4. insert the audit entry of the request, if it is an audited write (`app.auditing.record`);
5. refresh derived counts: move the facet counts of the events it changed from what they were
   counted as to what they are now (`app.timeline.counts.refresh`). Last, because on
   PostgreSQL writers run side by side and nearly every write changes the same all-time
   counters: the row locks those take are held until the commit, so they are taken as late
   as possible, in one key order (`app.timeline.counts._add`).

Then the commit; after it, the webhook workers and the live streams are woken
(`app.webhooks.service.committed`, `app.stream.service.committed`: on PostgreSQL both also
notify other processes, at commit) and the audit attempt is marked recorded. A rollback
forgets what was noted.

The steps are installed on a session factory (`session_factory`), not on SQLAlchemy's `Session`
class, so nothing depends on which modules happen to be imported. A session that records a
revision without them fails loudly (`app.revisions.service.record`).
"""

from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, UOWTransaction, sessionmaker

from app import auditing as audit
from app.db import create_session_factory
from app.events import documents
from app.models import Revision
from app.revisions import service as revisions
from app.stream import service as stream
from app.timeline import counts
from app.webhooks import service as webhooks

_REVISIONS = "app.writes.revisions"


def session_factory(engine: Engine, info: dict[str, Any] | None = None) -> sessionmaker[Session]:
    """Sessions that run the write step at every commit: the factory for anything that writes
    the timeline's data (the API, the seed loader, the command-line tools, the tests)."""
    factory = create_session_factory(engine)
    factory.configure(info={**(info or {}), revisions.WRITE_STEP: True})
    event.listen(factory, "after_flush", _after_flush)
    event.listen(factory, "before_commit", _before_commit)
    event.listen(factory, "after_commit", _after_commit)
    event.listen(factory, "after_rollback", _after_rollback)
    return factory


def _after_flush(session: Session, _flush: UOWTransaction) -> None:
    recorded = [obj for obj in session.new if isinstance(obj, Revision)]
    if recorded:
        session.info.setdefault(_REVISIONS, []).extend(recorded)
    documents.note_flush(session)
    counts.note_flush(session)
    audit.note_flush(session)


def _before_commit(session: Session) -> None:
    # The commit's own flush comes after this hook: flush first, so every change is noted.
    session.flush()
    recorded: list[Revision] = session.info.pop(_REVISIONS, [])
    webhooks.emit(session, sorted(recorded, key=lambda revision: revision.id))
    if recorded:
        stream.announce(session)
    documents.refresh(session)
    audit.record(session)
    counts.refresh(session)


def _after_commit(session: Session) -> None:
    webhooks.committed(session)
    stream.committed(session)
    audit.committed(session)


def _after_rollback(session: Session) -> None:
    session.info.pop(_REVISIONS, None)
    documents.forget(session)
    counts.forget(session)
    webhooks.forget(session)
    stream.forget(session)

"""Revision history and the change feed.

Every create, update and delete of a resource writes one revision row, in the same transaction
as the change, holding the resource's API representation after the change (`None` for a
delete: a tombstone) and before it.
"""

import base64
import binascii
import datetime as dt
from typing import Any, Protocol

import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import announce_writer, feed_horizon, utcnow
from app.errors import Gone, InvalidParameter, PreconditionFailed
from app.models import Revision
from app.schemas import INTEGER_MAX


def json_safe(value: Any) -> Any:
    """Dates and datetimes as the API serialises them, so stored snapshots equal served bodies."""
    return orjson.loads(orjson.dumps(value))


# Set on the sessions of app.writes.session_factory, whose commit queues each revision's
# webhooks (app/writes.py).
WRITE_STEP = "app.writes"


def record(
    session: Session,
    *,
    resource: str,
    key: str,
    version: int,
    operation: str,
    actor: str,
    before: Any | None,
    after: Any | None,
) -> Revision:
    if not session.info.get(WRITE_STEP):
        # Without the write step the revision would commit with no webhooks and no refreshed
        # documents: refuse rather than lose them quietly.
        raise RuntimeError("record(): make this session with app.writes.session_factory")
    # Before the revision's id is drawn: feed readers then wait for this transaction to end
    # before they serve an id it may hold (app.db.feed_horizon).
    announce_writer(session)
    revision = Revision(
        resource=resource,
        resource_key=key,
        version=version,
        operation=operation,
        actor=actor,
        at=utcnow(),
        before=json_safe(before),
        after=json_safe(after),
    )
    session.add(revision)
    session.flush()
    # Its webhook messages are queued by the write step before the commit (app/writes.py).
    return revision


def _entry(r: Revision) -> dict[str, Any]:
    return {
        "revision": r.id,
        "resource": r.resource,
        "id": r.resource_key,
        "version": r.version,
        "operation": r.operation,
        "actor": r.actor,
        "at": r.at,
        "before": r.before,
        "after": r.after,
    }


def history(session: Session, resource: str, key: str) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Revision)
        .where(Revision.resource == resource, Revision.resource_key == key)
        .order_by(Revision.id)
    )
    return [_entry(r) for r in rows]


def count(session: Session, resource: str, key: str) -> int:
    return (
        session.scalar(
            select(func.count()).where(Revision.resource == resource, Revision.resource_key == key)
        )
        or 0
    )


def known_at(session: Session, resource: str, key: str, at: dt.datetime) -> Revision | None:
    """The latest revision of one resource recorded at or before `at`."""
    return session.scalars(
        select(Revision)
        .where(Revision.resource == resource, Revision.resource_key == key, Revision.at <= at)
        .order_by(Revision.id.desc())
        .limit(1)
    ).first()


def snapshot(session: Session, resource: str, at: dt.datetime) -> dict[str, Any]:
    """Every live resource of one type as it was at `at`: key -> representation."""
    latest = (
        select(func.max(Revision.id))
        .where(Revision.resource == resource, Revision.at <= at)
        .group_by(Revision.resource_key)
    )
    rows = session.scalars(select(Revision).where(Revision.id.in_(latest)))
    return {r.resource_key: r.after for r in rows if r.after is not None}


# --- change feed ---------------------------------------------------------------------------


def encode_position(revision_id: int) -> str:
    return base64.urlsafe_b64encode(f"rev:{revision_id}".encode()).decode().rstrip("=")


def decode_position(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, number = raw.partition(":")
        if kind != "rev" or not number.isascii() or not number.isdigit():
            raise ValueError(raw)
        position = int(number)
        if position > INTEGER_MAX:
            # Issued by no API: no revision id is this large, and no database compares it.
            raise ValueError(raw)
        return position
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidParameter(
            ["query", "since"], "not a change-feed position issued by this API"
        ) from None


def feed(session: Session, after_id: int, limit: int) -> list[Revision]:
    """Up to `limit` revisions after `after_id`, in id order, never past the feed's horizon
    (`app.db.feed_horizon`): a revision this returns can never be followed by a smaller id
    committing later, so a reader that moves its position past it skips nothing. The change
    feed's rows (also read by the live stream, app/stream)."""
    horizon = feed_horizon(session)
    query = select(Revision).where(Revision.id > after_id)
    if horizon is not None:
        if horizon <= after_id:
            return []
        query = query.where(Revision.id <= horizon)
    return list(session.scalars(query.order_by(Revision.id).limit(limit)))


def position_now(session: Session) -> int:
    """A position from which the feed carries every change that commits from now on: the
    newest revision id, or on PostgreSQL the horizon, which is older while a writer that may
    hold a smaller id is open (the feed then also carries the few changes above it that
    committed just before)."""
    horizon = feed_horizon(session)
    return data_version(session)[0] if horizon is None else horizon


def change_item(r: Revision) -> dict[str, Any]:
    """One revision as the change feed serves it (`ChangeRead`)."""
    entry = _entry(r)
    entry["position"] = encode_position(r.id)
    entry["data"] = entry.pop("after")
    del entry["before"]
    return entry


def changes(session: Session, since: str | None, limit: int) -> dict[str, Any]:
    after_id = decode_position(since) if since else 0
    rows = feed(session, after_id, limit)
    last = rows[-1].id if rows else after_id
    items = [change_item(r) for r in rows]
    return {"items": items, "next_since": encode_position(last), "has_more": len(rows) == limit}


def guard(
    what: str, key: str, *, deleted_at: dt.datetime | None, version: int, expected: int | None
) -> None:
    """Refuse a write to a deleted resource (410) or one changed since the client read it (412)."""
    if deleted_at is not None:
        raise Gone(f"{what} {key!r} was deleted on {deleted_at.isoformat()}.")
    if expected is not None and version != expected:
        raise PreconditionFailed(
            f"{what} {key!r} is at version {version}, not {expected}: someone changed it since"
            " you read it. Fetch it again and reapply your change."
        )


# Two subqueries, not one SELECT of two aggregates: each is then a single index probe
# (SQLite's min/max optimisation), where the pair scanned the whole revision index. Built once:
# every timeline page runs it, and building a statement costs several times running this one.
_r = Revision.__table__.c
# The time of the latest change to any resource; the timeline's page reads it in its own
# statement (app/timeline/statements.py).
LAST_CHANGE = select(func.max(_r.at)).scalar_subquery()
_DATA_VERSION = select(select(func.max(_r.id)).scalar_subquery(), LAST_CHANGE)


def data_version(session: Session) -> tuple[int, dt.datetime | None]:
    """The latest revision id and time: changes whenever any resource changes."""
    row = session.execute(_DATA_VERSION).one()
    at = row[1]
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return row[0] or 0, at


class SoftDeletable(Protocol):
    deleted_at: dt.datetime | None
    updated_at: dt.datetime
    version: int


def soft_delete(
    session: Session,
    row: SoftDeletable,
    *,
    resource: str,
    key: str,
    before: Any,
    actor: str,
) -> None:
    """Mark the row deleted (one version step) and record the delete, with a tombstone."""
    row.deleted_at = utcnow()
    row.updated_at = row.deleted_at
    session.flush()
    record(
        session,
        resource=resource,
        key=key,
        version=row.version,
        operation="delete",
        actor=actor,
        before=before,
        after=None,
    )

"""The audit log, read: entries of acknowledged writes and admin actions, newest first. How they
are written is app/auditing.py."""

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import AuditEntry


def entry_read(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at,
        "request_id": entry.request_id,
        "key_id": entry.key_id,
        "key_name": entry.key_name,
        "scopes": entry.scopes.split(),
        "method": entry.method,
        "path": entry.path,
        "action": entry.action,
        "target": entry.target,
        "status": entry.status,
        "client_ip": entry.client_ip,
    }


def list_entries(
    session: Session,
    *,
    key_id: int | None,
    action: str | None,
    since: dt.datetime | None,
    limit: int,
    cursor: int | None,
) -> dict[str, Any]:
    """Newest first; `cursor` is the id of the last entry of the previous page."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit + 1)
    if key_id is not None:
        query = query.where(AuditEntry.key_id == key_id)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    if cursor is not None:
        query = query.where(AuditEntry.id < cursor)
    rows = list(session.scalars(query))
    more = len(rows) > limit
    items = [entry_read(row) for row in rows[:limit]]
    return {"items": items, "next_cursor": str(items[-1]["id"]) if more else None}

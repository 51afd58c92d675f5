"""Auditing a request: every acknowledged write and admin action leaves an entry in the audit
log, with who made it and what it did (read through app/audit).

A request that authenticates with a key gets an `Attempt` (app/access.py). Writes
and admin actions stay attached to the request's session, and the write step (app/writes.py)
inserts their row in the transaction of the change, just before its commit: a write is
acknowledged only after its commit, so an acknowledged write always has its row and a
rolled-back one never does. Attempts that never
commit (refused with 401/403, or failed) are logged instead, as structured lines with
`"audit": true`, once the response status is known.
"""

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from app.callers import Caller
from app.models import ApiKey, AuditEntry, Revision, WebhookEndpoint

logger = logging.getLogger("app.audit")
_SESSION_KEY = "app.audit.attempt"
TARGET_LENGTH = 500


@dataclass(slots=True)
class Attempt:
    """What is known of a keyed request before its outcome: route, caller, and targets."""

    request_id: str | None
    method: str
    path: str
    action: str
    # The status the route answers with when it succeeds; a committed write is a success.
    status: int
    client_ip: str | None
    params_target: str | None
    caller: Caller | None = None
    created: list[str] = field(default_factory=list)
    # What a write changed besides its own target, named by the service that changed it (the
    # webhook endpoints a key revocation disabled).
    noted: list[str] = field(default_factory=list)
    audited: bool = True
    recorded: bool = False

    @property
    def target(self) -> str | None:
        names = list(dict.fromkeys(self.created))
        if not names and self.params_target:
            names = [self.params_target]
        return ", ".join([*names, *self.noted])[:TARGET_LENGTH] or None

    def finish(self, status: int) -> None:
        """Called once the response has been sent: log what the table will not hold."""
        if not self.audited or self.recorded:
            return
        outcome = "refused" if status in (401, 403) else "failed" if status >= 400 else "unrecorded"
        logger.warning(
            "audit %s %s %s %s",
            outcome,
            self.method,
            self.path,
            status,
            extra={"fields": {"audit": True, "outcome": outcome, **self.fields(status)}},
        )

    def fields(self, status: int) -> dict[str, Any]:
        who = self.caller
        return {
            "key_id": who.key_id if who else None,
            "key_name": who.name if who else None,
            "scopes": sorted(who.scopes) if who else None,
            "method": self.method,
            "path": self.path,
            "action": self.action,
            "target": self.target,
            "status": status,
            "client_ip": self.client_ip,
        }


def attach(session: Session, attempt: Attempt) -> None:
    session.info[_SESSION_KEY] = attempt


def _attempt(session: Session) -> Attempt | None:
    found: Attempt | None = session.info.get(_SESSION_KEY)
    return found


def note(session: Session, target: str) -> None:
    """Add to the target of this session's audit entry, if it has one (a request with a key;
    the command line has none)."""
    attempt = _attempt(session)
    if attempt is not None:
        attempt.noted.append(target)


def note_flush(session: Session) -> None:
    """After a flush: the resources it created are the attempt's targets."""
    attempt = _attempt(session)
    if attempt is None or not attempt.audited:
        return
    # Revisions name every timeline resource a write touched; keys and webhook endpoints have
    # no revisions, and a new one is known only by the id its insert just got.
    for obj in session.new:
        if isinstance(obj, Revision):
            attempt.created.append(f"{obj.resource}/{obj.resource_key}")
        elif isinstance(obj, ApiKey):
            attempt.created.append(f"key/{obj.id}")
        elif isinstance(obj, WebhookEndpoint):
            attempt.created.append(f"webhook-endpoint/{obj.id}")


def record(session: Session) -> None:
    """Before the commit: insert the attempt's entry, if this transaction is an audited write."""
    attempt = _attempt(session)
    if attempt is None or not attempt.audited or attempt.caller is None:
        return
    session.info.pop(_SESSION_KEY)
    who = attempt.caller
    session.add(
        AuditEntry(
            request_id=attempt.request_id,
            key_id=who.key_id,
            key_name=who.name,
            scopes=" ".join(sorted(who.scopes)),
            method=attempt.method,
            path=attempt.path[:500],
            action=attempt.action,
            target=attempt.target,
            status=attempt.status,
            client_ip=attempt.client_ip,
        )
    )
    # Flushed here so a failing insert fails the commit, and with it the write.
    session.flush()
    session.info["app.audit.committing"] = attempt


def committed(session: Session) -> None:
    """After the commit: the entry is in the table, so the attempt needs no log line."""
    attempt: Attempt | None = session.info.pop("app.audit.committing", None)
    if attempt is not None:
        attempt.recorded = True

"""Authentication for writes, as route dependencies. Reads stay public; every write names the key
that made it, and every keyed request is an audit attempt (app/audit)."""

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, ClassVar

from fastapi import BackgroundTasks, Depends, FastAPI, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app import callers
from app.auditing import Attempt, attach
from app.callers import Caller, Scope
from app.db import SAFE_METHODS, WRITING_READ, SessionDep, transaction, utcnow
from app.errors import AppError
from app.observability import request_context

logger = logging.getLogger("app.access")

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description=(
        "An API key sent as `Authorization: Bearer dtl_…`. Scopes: `editor` writes timeline"
        " data, `webhooks` manages its own webhook subscriptions, `admin` manages keys and may do"
        " everything the other scopes allow. Reads need no key."
    ),
)


class Unauthorized(AppError):
    status = 401
    slug = "unauthorized"
    title = "Unauthorized"
    headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": 'Bearer realm="diplomatic-timeline"'}


class Forbidden(AppError):
    status = 403
    slug = "forbidden"
    title = "Forbidden"


def caller(
    request: Request,
    session: SessionDep,
    background: BackgroundTasks,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    # Every keyed request is an audit attempt until `require` finds it is a plain read: a write
    # is recorded in its own transaction, a refusal or failure is logged (app/audit).
    begin_attempt(request, session)
    if credentials is None:
        raise Unauthorized("This operation needs an API key: send Authorization: Bearer <key>.")
    found = callers.authenticate(session, credentials.credentials)
    if found is None:
        # Never echo the token: it may be a real key pasted into the wrong place.
        raise Unauthorized("The API key is unknown or revoked.")
    identified(request, found)
    now = utcnow()
    if callers.stale(found, now):
        if request.method in SAFE_METHODS:
            # A read's transaction stays a read. On SQLite a read that writes at its commit
            # cannot wait for a writer that committed since it began (its snapshot is stale):
            # it fails at once, and a plain read with a key answered 503. The stamp goes in a
            # short write transaction of its own, after the response.
            background.add_task(_stamp_after_read, request.app, found.key_id, now)
        else:
            callers.stamp(session, found.key_id, now)
    return found


# (app, key) pairs whose stamp is queued in this process: a burst of reads with one key queues
# one stamp.
_stamping: set[tuple[int, int]] = set()


async def _stamp_after_read(app: FastAPI, key_id: int, now: dt.datetime) -> None:
    pending = (id(app), key_id)
    if pending in _stamping:
        return
    _stamping.add(pending)
    try:
        # Behind this process's writers, as any write (app.db.one_writer).
        async with app.state.writers:
            await run_in_threadpool(_stamp, app, key_id, now)
    except OperationalError as exc:
        # Bookkeeping, not data: the read has been answered, and the next one stamps again.
        logger.warning("api_key_stamp_skipped key=%s error=%s", key_id, type(exc.orig).__name__)
    finally:
        _stamping.discard(pending)


def _stamp(app: FastAPI, key_id: int, now: dt.datetime) -> None:
    with transaction(app.state.session_factory, write=True) as session:
        callers.stamp(session, key_id, now)


def require(scope: Scope) -> Callable[..., Awaitable[Caller]]:
    # A coroutine: FastAPI runs a plain function dependency on the thread pool, where a write
    # would queue for a thread behind the reads only to compare two strings.
    async def check(request: Request, who: Annotated[Caller, Depends(caller)]) -> Caller:
        if scope.value not in who.scopes and Scope.admin.value not in who.scopes:
            raise Forbidden(f"The key {who.name!r} lacks the {scope.value!r} scope.")
        if request.method in SAFE_METHODS and scope is not Scope.admin:
            not_audited(request)
        return who

    return check


EditorCaller = Annotated[Caller, Depends(require(Scope.editor))]
AdminCaller = Annotated[Caller, Depends(require(Scope.admin))]


def audited_read(request: Request) -> None:
    """A router dependency for admin routes: their reads are audited, so they write their audit
    entry, and their transaction begins as a write (`app.db.writing`). A router's dependencies
    run before its routes' own, so this is set before the request's session begins."""
    request.scope[WRITING_READ] = True


AUDITED = [Depends(audited_read)]


# --- the audit attempt of a keyed request (app/auditing.py) ---------------------------------

_ATTEMPT_KEY = "app.audit.attempt"


def begin_attempt(request: Request, session: Session) -> None:
    """A keyed request starts: audited until proven a plain read (see `not_audited`)."""
    route = request.scope.get("route")
    params = request.path_params
    context = request_context(request.scope)
    client = request.client
    attempt = Attempt(
        request_id=context.request_id if context else None,
        method=request.method,
        path=request.url.path,
        action=getattr(route, "name", None) or f"{request.method} {request.url.path}",
        status=getattr(route, "status_code", None) or 200,
        client_ip=context.client_ip if context else (client.host if client else None),
        params_target="&".join(f"{k}={v}" for k, v in params.items()) or None,
    )
    attach(session, attempt)
    request.scope[_ATTEMPT_KEY] = attempt
    if context is not None:
        context.on_finish.append(attempt.finish)


def identified(request: Request, caller: Caller) -> None:
    attempt: Attempt | None = request.scope.get(_ATTEMPT_KEY)
    if attempt is not None:
        attempt.caller = caller
    context = request_context(request.scope)
    if context is not None:
        context.key_id = caller.key_id


def not_audited(request: Request) -> None:
    """A read that the key was allowed to make and that needs no admin scope."""
    attempt: Attempt | None = request.scope.get(_ATTEMPT_KEY)
    if attempt is not None:
        attempt.audited = False

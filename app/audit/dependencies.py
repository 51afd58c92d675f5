"""The HTTP side of the audit log, called by the authentication dependencies (app/auth).

Kept out of service.py, which knows nothing of requests: here the route, the path parameters,
the request id and the client address become an `Attempt` attached to the request's session.
"""

from fastapi import Request
from sqlalchemy.orm import Session

from app.audit.service import Attempt, attach
from app.auth.service import Caller
from app.observability import request_context

_ATTEMPT_KEY = "app.audit.attempt"


def begin(request: Request, session: Session) -> None:
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

"""Authentication for writes. Reads stay public; every write names the key that made it."""

from collections.abc import Callable
from typing import Annotated, ClassVar

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.audit import dependencies as audit
from app.auth import service
from app.auth.service import Caller, Scope
from app.db import SAFE_METHODS, SessionDep
from app.errors import AppError

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
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    # Every keyed request is an audit attempt until `require` finds it is a plain read: a write
    # is recorded in its own transaction, a refusal or failure is logged (app/audit).
    audit.begin(request, session)
    if credentials is None:
        raise Unauthorized("This operation needs an API key: send Authorization: Bearer <key>.")
    found = service.authenticate(session, credentials.credentials)
    if found is None:
        # Never echo the token: it may be a real key pasted into the wrong place.
        raise Unauthorized("The API key is unknown or revoked.")
    audit.identified(request, found)
    return found


def require(scope: Scope) -> Callable[..., Caller]:
    def check(request: Request, who: Annotated[Caller, Depends(caller)]) -> Caller:
        if scope.value not in who.scopes and Scope.admin.value not in who.scopes:
            raise Forbidden(f"The key {who.name!r} lacks the {scope.value!r} scope.")
        if request.method in SAFE_METHODS and scope is not Scope.admin:
            audit.not_audited(request)
        return who

    return check


EditorCaller = Annotated[Caller, Depends(require(Scope.editor))]
AdminCaller = Annotated[Caller, Depends(require(Scope.admin))]

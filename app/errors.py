"""Domain errors and their rendering as RFC 9457 problem details."""

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_BASE = "https://diplomatic-timeline.example/problems/"
logger = logging.getLogger("app.errors")


class AppError(Exception):
    """Raised by services; rendered by one handler. Never carries HTTP objects."""

    status = 400
    slug = "bad-request"
    title = "Bad request"
    headers: ClassVar[dict[str, str]] = {}

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors


class NotFound(AppError):
    status = 404
    slug = "not-found"
    title = "Not found"


class Gone(AppError):
    status = 410
    slug = "gone"
    title = "Gone"


class Conflict(AppError):
    status = 409
    slug = "conflict"
    title = "Conflict"


class PreconditionFailed(AppError):
    """The `If-Match` ETag is stale: someone changed the resource since it was read."""

    status = 412
    slug = "precondition-failed"
    title = "Precondition failed"


class PreconditionRequired(AppError):
    status = 428
    slug = "precondition-required"
    title = "Precondition required"


class InvalidParameter(AppError):
    """A well-formed request whose values make no sense (unknown code, from after to, …)."""

    status = 422
    slug = "invalid-parameter"
    title = "Invalid parameter"

    def __init__(self, loc: list[str | int], msg: str) -> None:
        where = ".".join(str(part) for part in loc[1:]) or str(loc[0])
        super().__init__(f"{where}: {msg}", errors=[{"loc": loc, "msg": msg, "type": self.slug}])


def problem(
    request: Request,
    status: int,
    slug: str,
    title: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(
        body, status_code=status, media_type="application/problem+json", headers=headers
    )


def _validation_errors(
    exc: RequestValidationError | ValidationError, prefix: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        msg = str(err.get("msg", "invalid"))
        # pydantic prefixes messages of ValueErrors raised by our own validators.
        msg = msg.removeprefix("Value error, ")
        loc = [*prefix, *err["loc"]]
        out.append(
            {
                "loc": [str(p) if not isinstance(p, int) else p for p in loc],
                "msg": msg,
                "type": str(err.get("type", "invalid")),
            }
        )
    return out


_STATUS_SLUGS = {
    400: ("bad-request", "Bad request"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
}


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> JSONResponse:
        return problem(
            request, exc.status, exc.slug, exc.title, exc.detail, exc.errors, exc.headers or None
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}" for e in errors
        )
        return problem(request, 422, "validation-error", "Invalid request", detail, errors)

    @app.exception_handler(ValidationError)
    async def _patched(request: Request, exc: ValidationError) -> JSONResponse:
        # Raised when a service validates a merged PATCH document: the fields are body fields.
        errors = _validation_errors(exc, ("body",))
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in errors)
        return problem(request, 422, "validation-error", "Invalid request", detail, errors)

    @app.exception_handler(StaleDataError)
    async def _stale(request: Request, exc: StaleDataError) -> JSONResponse:
        return problem(
            request,
            412,
            PreconditionFailed.slug,
            PreconditionFailed.title,
            "Another write changed this resource first; fetch it again and retry with its ETag.",
        )

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        # Reached when a concurrent request won a race the service's own checks could not see
        # (same new id, same Idempotency-Key); the constraint name says which.
        constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
        detail = "This request conflicts with another write that happened at the same time."
        if constraint:
            detail += f" (constraint {constraint})"
        return problem(request, 409, Conflict.slug, Conflict.title, detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug, title = _STATUS_SLUGS.get(exc.status_code, ("http-error", "HTTP error"))
        detail = exc.detail if isinstance(exc.detail, str) else title
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"No route matches {request.url.path}."
        return problem(request, exc.status_code, slug, title, detail, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(
            request,
            500,
            "internal-error",
            "Internal server error",
            "The server failed to answer this request; the failure has been logged.",
        )

"""Domain errors and their rendering as RFC 9457 problem details."""

import logging
from collections.abc import Awaitable, Mapping
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.db import statement_timed_out
from app.observability import REQUEST_ID_HEADER, current_request_id

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


# Long enough for a restarting database or a released lock, short enough for a retry to help.
RETRY_AFTER_SECONDS = 5


class ServiceUnavailable(AppError):
    """The database cannot answer now (down, unreachable, locked for too long): retry later."""

    status = 503
    slug = "service-unavailable"
    title = "Service unavailable"
    headers: ClassVar[dict[str, str]] = {"Retry-After": str(RETRY_AFTER_SECONDS)}


class StatementTimedOut(Exception):
    """A statement reached its time limit in another process (an export's renderer,
    app/timeline/renderers.py): answered as the driver's own cancellation is."""


# The detail of every 503 for a database that did not answer, wherever the read ran.
DATABASE_UNAVAILABLE = (
    "The database is unavailable or too busy to answer. Retry after a few seconds"
)


def database_unavailable(exc: BaseException) -> bool:
    """True for driver and pool errors that say the database cannot answer now, as opposed to
    errors that say the request or the code is wrong (IntegrityError is a 409, the rest 500).

    OperationalError is the DB-API class for conditions outside the program's control: refused
    or lost connections, a database that does not accept connections, SQLite's "database is
    locked" after busy_timeout, PostgreSQL's lock_timeout, deadlocks and serialisation failures.
    """
    if isinstance(exc, IntegrityError | DataError):
        # A value the database cannot hold or compare (PostgreSQL's NumericValueOutOfRange, an
        # impossible date): retrying the same request cannot help. Inputs are bounded before
        # any statement (app/schemas.py), so one reaching here is a bug: a 500.
        return False
    if isinstance(exc, OperationalError) and "integer overflow" in str(exc.orig):
        # SQLite reports arithmetic overflow as an OperationalError, the class of its locks.
        return False
    if isinstance(exc, OperationalError | PoolTimeout | DisconnectionError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


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
    request_id = current_request_id() if status >= 500 else None
    if request_id is not None:
        # A server-side failure: give the user the id to quote, which finds its log lines. Set
        # here as well as by the middleware, which an unhandled exception's 500 bypasses.
        body["request_id"] = request_id
        headers = {**(headers or {}), REQUEST_ID_HEADER: request_id}
    return JSONResponse(
        body, status_code=status, media_type="application/problem+json", headers=headers
    )


# pydantic's own messages for dates and instants say what is wrong but not what to send.
_DAY = "give a date as YYYY-MM-DD, such as 2025-04-10"
_INSTANT = (
    "give an instant as YYYY-MM-DDTHH:MM:SS and Z or an offset (UTC if none), such as"
    " 2025-04-07T12:00:00Z or 2025-04-07T13:00:00+01:00; a date alone means its midnight UTC"
)
_FORMS = {
    "date_type": _DAY,
    "date_parsing": _DAY,
    "date_from_datetime_parsing": _DAY,
    "date_from_datetime_inexact": _DAY,
    "datetime_type": _INSTANT,
    "datetime_parsing": _INSTANT,
    "datetime_from_date_parsing": _INSTANT,
}


def _validation_errors(
    exc: RequestValidationError | ValidationError, prefix: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        msg = str(err.get("msg", "invalid"))
        # pydantic prefixes messages of ValueErrors raised by our own validators.
        msg = msg.removeprefix("Value error, ")
        form = _FORMS.get(str(err.get("type")))
        if form is not None:
            msg = f"{msg}: {form}"
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


def allow_head(allow: str) -> str:
    """A 405's `Allow` with HEAD wherever GET is: every GET route answers HEAD (app/head.py),
    though only GET is declared on the route."""
    methods = [m.strip() for m in allow.split(",") if m.strip()]
    if "GET" in methods and "HEAD" not in methods:
        methods.insert(methods.index("GET") + 1, "HEAD")
    return ", ".join(methods)


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
        # A model-level error has no field: say "body" rather than start the detail with ": ".
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}" for e in errors
        )
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

    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        if not database_unavailable(exc):
            logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
            return _internal(request)
        # One line, no traceback: an outage produces one of these per request.
        logger.warning(
            "database unavailable on %s %s: %s: %s",
            request.method,
            request.url.path,
            type(getattr(exc, "orig", None) or exc).__name__,
            str(exc).splitlines()[0] if str(exc) else "",
        )
        error = ServiceUnavailable(
            f"{DATABASE_UNAVAILABLE} (a POST with the same Idempotency-Key)."
        )
        return await _app_error(request, error)

    for database_error in (DBAPIError, PoolTimeout, DisconnectionError):
        app.add_exception_handler(database_error, _unavailable)

    @app.exception_handler(StatementTimedOut)
    async def _statement_timed_out(request: Request, exc: StatementTimedOut) -> Response:
        return _timed_out(request)

    @app.exception_handler(OperationalError)
    async def _operational(request: Request, exc: OperationalError) -> Response:
        if statement_timed_out(exc):
            return _timed_out(request)
        # Every other OperationalError is what the DBAPIError handler makes of it.
        response = app.exception_handlers[DBAPIError](request, exc)
        return await response if isinstance(response, Awaitable) else response

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug, title = _STATUS_SLUGS.get(exc.status_code, ("http-error", "HTTP error"))
        detail = exc.detail if isinstance(exc.detail, str) else title
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"No route matches {request.url.path}."
        cause = exc.__cause__
        if exc.status_code == 400 and isinstance(cause, UnicodeDecodeError | RecursionError):
            # FastAPI answers a body that is not UTF-8, or nested deeper than the JSON parser
            # goes, with a bare 400 but malformed JSON with a 422; all three are a body that
            # cannot be read as JSON, so all get the documented 422.
            if isinstance(cause, UnicodeDecodeError):
                msg = f"the body is not valid UTF-8 (byte {cause.start})"
            else:
                msg = "the body is nested too deeply to be read as JSON"
            errors = [{"loc": ["body"], "msg": msg, "type": "json_invalid"}]
            return problem(
                request, 422, "validation-error", "Invalid request", f"body: {msg}", errors
            )
        headers = exc.headers
        if exc.status_code == 405 and headers and "Allow" in headers:
            headers = {**headers, "Allow": allow_head(headers["Allow"])}
        return problem(request, exc.status_code, slug, title, detail, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if database_unavailable(exc):
            # Raised outside routing, by a middleware that reads the database (the response
            # cache's data version, the rate limiter): the same 503 as inside a route.
            return await _unavailable(request, exc)
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return _internal(request)


QUERY_TIMEOUT_SLUG = "query-timeout"


def _timed_out(request: Request) -> JSONResponse:
    """A statement ran past its limit (app.db.STATEMENT_TIMEOUT_SECONDS) and was cancelled:
    the request asked for too much at once, or the database is busy. Either way the client can
    act: ask for less, or come back later."""
    limit = request.app.state.settings.db_statement_timeout
    logger.warning(
        "statement time limit (%g s) reached on %s %s", limit, request.method, request.url.path
    )
    return problem(
        request,
        503,
        QUERY_TIMEOUT_SLUG,
        "Query took too long",
        f"The database stopped this request after {limit:g} s. Narrow it (a shorter date range,"
        " a state, a category, more words in q; counts, facets and exports cost the most) or"
        f" retry in {RETRY_AFTER_SECONDS} s.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def _internal(request: Request) -> JSONResponse:
    return problem(
        request,
        500,
        "internal-error",
        "Internal server error",
        "The server failed to answer this request; the failure has been logged.",
    )

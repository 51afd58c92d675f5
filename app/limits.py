"""A maximum request body size (413), and the OpenAPI entries for the request and rate limits.

A pure ASGI middleware rather than BaseHTTPMiddleware: it sits on the hot path, and a request
without a body (every GET) costs one scan of the header list. A declared Content-Length over the
limit is refused before the application runs; a body without one (chunked) is counted as it is
received and refused as soon as it crosses the limit, so it is never buffered whole.
"""

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import problem
from app.ratelimit import EXEMPT_PATHS, RATE_LIMITED_RESPONSE
from app.schemas import problem_responses

TOO_LARGE_SLUG = "payload-too-large"
TOO_LARGE_TITLE = "Payload too large"
# Methods that never carry a body in practice: without a Content-Length or Transfer-Encoding,
# their receive() is left alone.
_BODILESS = frozenset({"GET", "HEAD", "OPTIONS"})


def size_text(limit: int) -> str:
    for unit, size in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if limit % size == 0:
            return f"{limit // size} {unit}"
    return f"{limit} bytes"


class BodyTooLarge(HTTPException):
    """Raised from receive(); FastAPI re-raises HTTPExceptions from body parsing, so the app's
    problem handler renders it like any other error, and nothing after the body read runs."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            status_code=413,
            detail=f"The request body is larger than the limit of {size_text(limit)}"
            f" ({limit} bytes); send a smaller body.",
        )


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared: bytes | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
            elif name == b"transfer-encoding":
                chunked = True
        if declared is not None and not chunked:
            # The server enforces Content-Length framing, so a body can never outgrow it: a
            # declared size within the limit needs no counting.
            if declared.isdigit() and int(declared) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        if not chunked and scope["method"] in _BODILESS:
            await self.app(scope, receive, send)
            return
        await self._counted(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, watched_send)
        except BodyTooLarge:
            # Normally rendered inside the app; this catches a reader outside FastAPI's body
            # parsing. Once a response has started there is nothing honest left to send.
            if started:
                raise
            await self._refuse(scope, receive, send)
        except BaseExceptionGroup as group:
            # A task group between here and the reader wraps the exception.
            _, other = group.split(BodyTooLarge)
            if started or other is not None:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = BodyTooLarge(self.max_bytes)
        response = problem(
            Request(scope),
            413,
            TOO_LARGE_SLUG,
            TOO_LARGE_TITLE,
            str(error.detail),
            headers={"Cache-Control": "no-store"},
        )
        await response(scope, receive, send)


def add_limit_responses(spec: dict[str, Any]) -> dict[str, Any]:
    """Document 413 on every operation that takes a body and 429 on every rate-limited one.

    Done on the generated document rather than in each router's decorator so a new route cannot
    forget them. 429 is documented even when RATE_LIMIT_ENABLED is off (development, tests):
    production turns it on, and a documented status that never occurs keeps the contract true.
    """
    too_large = _openapi_response(problem_responses(413)[413])
    limited = _openapi_response(RATE_LIMITED_RESPONSE)
    for path, operations in spec.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            if "requestBody" in operation:
                responses.setdefault("413", too_large)
            if path not in EXEMPT_PATHS and method != "options":
                responses.setdefault("429", limited)
    return spec


def _openapi_response(entry: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": entry["description"],
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }
    if "headers" in entry:
        out["headers"] = entry["headers"]
    return out


def document_limits(app: FastAPI) -> None:
    """Make `app.openapi()` (and so /openapi.json) carry the 413 and 429 responses."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if not app.openapi_schema:
            app.openapi_schema = add_limit_responses(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

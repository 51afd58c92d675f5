"""Structured logs: one JSON object per line, each carrying the id of the request it belongs to.

`RequestObservability` is a pure ASGI middleware (BaseHTTPMiddleware would cost the throughput
benchmark a task and a queue per request). It takes a sane incoming `X-Request-ID` or makes
one, keeps it in a context variable that every log line reads (sync endpoints run in threads
that copy the context, so their lines carry it too), returns it on every response, and writes
one access-log line per request in place of uvicorn's.

Secrets never reach a log line: `RedactSecrets` scrubs API tokens, webhook secrets,
`Authorization` values and URL passwords from messages and tracebacks, and the formatters scrub
the finished line once more, which also covers fields passed in `extra`.
"""

import logging
import re
import sys
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TextIO

import orjson
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-ID"
# Long enough for a UUID, a ULID or a W3C traceparent; the charset keeps ids safe to echo in a
# header and to grep in logs (no spaces, quotes, control characters or CR/LF).
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+=/@-]{1,128}")
_CONTEXT_KEY = "app.request_context"

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
access_logger = logging.getLogger("app.access")


def current_request_id() -> str | None:
    """The id of the request being served in this context, if any."""
    return _request_id.get()


@dataclass(slots=True)
class RequestContext:
    """Per-request facts gathered on the way in and read when the response has gone.

    Kept in the ASGI scope, which the middleware and the endpoint's dependencies share (a context
    variable set in a threadpool dependency would not flow back to the middleware).
    """

    request_id: str
    client_ip: str | None
    key_id: int | None = None
    # Called with the final status once the response is sent (app/audit logs refused writes).
    on_finish: list[Callable[[int], None]] = field(default_factory=list)


def request_context(scope: Scope) -> RequestContext | None:
    found: RequestContext | None = scope.get(_CONTEXT_KEY)
    return found


def accepted_request_id(raw: bytes) -> str | None:
    """The client's id if it is sane, else None (a fresh one is made instead)."""
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return None
    return text if _SANE_REQUEST_ID.fullmatch(text) else None


class RequestObservability:
    """Request ids, the access log, and the hooks that run once a response is sent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = accepted_request_id(value)
                break
        if request_id is None:
            request_id = uuid.uuid4().hex
        client = scope.get("client")
        context = RequestContext(request_id, client[0] if client else None)
        scope[_CONTEXT_KEY] = context
        # Not reset afterwards: an exception that escapes this middleware is rendered by
        # Starlette's ServerErrorMiddleware outside it, in this same task, and its 500 problem
        # must still carry the id. Every request runs in a task of its own, so nothing leaks.
        _request_id.set(request_id)
        id_header = (b"x-request-id", request_id.encode("ascii"))
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # A new message, never the one received: the response cache (app/responsecache.py)
                # replays the messages it keeps, and must not replay this request's id.
                headers = [*message.get("headers", ()), id_header]
                message = {**message, "headers": headers}
                if status >= 500:
                    # app/errors.py already names the id on 5xx problems: replace, never repeat.
                    MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            for hook in context.on_finish:
                hook(status)
            if access_logger.isEnabledFor(logging.INFO):
                path = scope["path"]
                fields: dict[str, Any] = {
                    "method": scope["method"],
                    "path": path,
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "client_ip": context.client_ip,
                }
                if context.key_id is not None:
                    fields["key_id"] = context.key_id
                # The query string is left out: it may carry anything a client pasted.
                _log_access(f"{scope['method']} {path} {status}", request_id, fields)


def _log_access(message: str, request_id: str, fields: dict[str, Any]) -> None:
    handler = _direct_handler()
    if handler is not None:
        # Redacted twice, as RedactSecrets and the formatter would: the same line either way.
        message = redact(message)
        line = _json_line(time.time(), "info", access_logger.name, message, request_id, fields)
        handler.write_line(line)
        return
    # Made directly: Logger.info would walk the stack to find its caller.
    record = access_logger.makeRecord(
        access_logger.name, logging.INFO, __file__, 0, message, (), None, extra={"fields": fields}
    )
    access_logger.handle(record)


def _direct_handler() -> "_StderrHandler | None":
    """The handler `configure_logging` installed, when an access line would reach it and nothing
    else: the middleware then writes the line itself.

    Through `logging` (a LogRecord, two filters, the handler chain) the line cost nearly half of
    a 304 answered from the response cache; written directly, much less (bench/README.md). Any
    other handler or filter on the way, or the text format, and the line
    goes through `logging` as configured."""
    handler = _installed
    if (
        handler is None
        or access_logger.filters
        or logging.root.handlers != [handler]
        or not handler.direct
        or handler.level > logging.INFO
    ):
        return None
    logger = access_logger.parent
    while logger is not None and logger is not logging.root:
        if logger.handlers or not logger.propagate:
            return None
        logger = logger.parent
    return handler


# --- redaction ---

REDACTED = "[REDACTED]"
_SECRETS = re.compile(
    # API tokens (app/callers.py) and webhook signing secrets (app/webhooks/signing.py),
    # wherever they appear: a header dump, an SQL parameter list, an exception message.
    r"(?P<keep>dtl_|whsec_)[A-Za-z0-9_+/=-]{6,}"
    # The value of an Authorization header in any scheme, also as it appears in header reprs and
    # in JSON. Values stop at a backslash so that an escaped quote (\") survives and a JSON line
    # stays valid.
    r"|(?P<bearer>(?i:\bbearer\s+))[^\s\"'\\,;)\]}]+"
    r"|(?P<basic>\bBasic\s+)[A-Za-z0-9+/]{8,}={0,2}"
    r"|(?P<header>(?i:authorization|x-api-key|cookie)\\?[\"']?\s*[:=,]\s*b?\\?[\"']?)"
    r"[^\"'\\\r\n]+"
    # key=value pairs of query strings and form bodies that name a secret.
    r"|(?P<param>(?i:\b(?:password|passwd|secret|token|api_key|apikey|access_token)=)\\?[\"']?)"
    r"[^&\s\"'\\]+"
    # The password of a URL (postgresql://user:password@host).
    r"|(?P<userinfo>://[^:/@\s]+:)[^@/\s\\]+(?=@)"
)


# Every pattern above contains one of these (lower-cased). Checking them with `in` costs about a
# microsecond; running the regex over a line that has none of them costs far more, on every
# access-log line.
_TRIGGERS = (
    "dtl_",
    "whsec_",
    "bearer",
    "basic",
    "authorization",
    "x-api-key",
    "cookie",
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "://",
)


def _replace(match: re.Match[str]) -> str:
    kept = next(group for group in match.groups() if group is not None)
    return kept + REDACTED


def redact(text: str) -> str:
    """The text with every secret it contains replaced by [REDACTED]."""
    lowered = text.lower()
    # A plain loop: any() over a generator costs a good part of the check itself, and this
    # runs twice per access-log line.
    for trigger in _TRIGGERS:
        if trigger in lowered:
            return _SECRETS.sub(_replace, text)
    return text


class RedactSecrets(logging.Filter):
    """Scrubs the message and the traceback of a record before any formatter sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


# --- formatting ---


_second: tuple[int, str] = (-1, "")


def _timestamp(created: float) -> str:
    """ISO 8601 UTC with milliseconds; the part up to the second is formatted once a second."""
    global _second
    second = int(created)
    if _second[0] != second:
        _second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    # As LogRecord.msecs is computed.
    return f"{_second[1]}.{int((created - second) * 1000):03d}Z"


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return fields if isinstance(fields, dict) else {}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, then any `fields`."""

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        return _json_line(
            record.created,
            record.levelname.lower(),
            record.name,
            record.getMessage(),
            getattr(record, "request_id", None),
            _fields(record),
            exception=record.exc_text,
            stack=record.stack_info,
        )


def _json_line(
    created: float,
    level: str,
    logger: str,
    message: str,
    request_id: str | None,
    fields: dict[str, Any],
    *,
    exception: str | None = None,
    stack: str | None = None,
) -> str:
    out: dict[str, Any] = {
        "time": _timestamp(created),
        "level": level,
        "logger": logger,
        "message": message,
    }
    if request_id is not None:
        out["request_id"] = request_id
    for key, value in fields.items():
        out.setdefault(key, value)
    if exception:
        out["exception"] = exception
    if stack:
        out["stack"] = stack
    return redact(orjson.dumps(out, default=str).decode())


class TextFormatter(logging.Formatter):
    """For a terminal: `time LEVEL logger [request id] message key=value …`."""

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None)
        parts = [_timestamp(record.created), record.levelname, record.name]
        if request_id is not None:
            parts.append(f"[{request_id}]")
        parts.append(record.getMessage())
        parts.extend(f"{key}={value}" for key, value in _fields(record).items())
        line = " ".join(parts)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += "\n" + record.exc_text
        if record.stack_info:
            line += "\n" + record.stack_info
        return redact(line)


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever sys.stderr is when a line is written (a test's capture included)."""

    # Set by `configure_logging` for the JSON format: a line `_log_access` makes and passes to
    # `write_line` is then the very line `emit` would write (`_direct_handler`).
    direct = False

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)

    def write_line(self, line: str) -> None:
        """A finished line, as `emit` would write it (under the handler's lock)."""
        with self.lock:  # type: ignore[union-attr]
            stream = self.stream = sys.stderr
            stream.write(line + self.terminator)
            stream.flush()


_installed: _StderrHandler | None = None


def configure_logging(level: str, log_format: str) -> logging.Handler:
    """Route every log line (ours, uvicorn's, the libraries') through one handler on the root
    logger. Idempotent: calling it again replaces the handler it installed before."""
    global _installed
    root = logging.getLogger()
    for previous in [h for h in root.handlers if getattr(h, "dtl_handler", False)]:
        root.removeHandler(previous)
    handler = _StderrHandler()
    handler.dtl_handler = True  # type: ignore[attr-defined]
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactSecrets())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    # The filters' work is in the line already: the request id is passed in, and the JSON
    # formatter redacts the whole line.
    handler.direct = log_format == "json"
    root.addHandler(handler)
    root.setLevel(level.upper())
    _installed = handler
    # uvicorn installs its own plain-text handlers before it imports the app: send its lines
    # through ours instead, and silence its access log, which the middleware replaces (the
    # server command also passes --no-access-log).
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers.clear()
    uvicorn_access.propagate = False
    return handler

"""Rendered read responses kept in memory, keyed by the request and the data version.

A pure ASGI middleware in front of routing: a hit answers (200, or 304 when the client's ETag
matches) without FastAPI's parameter handling, a session or a thread hop, which is most of the
cost of a small read (docs/performance.md). The key carries the data version, so a response
is never served after a commit that could change it: there is no invalidation step to forget.

The data version is cheap to read on SQLite: `PRAGMA data_version` on a connection of our own
changes whenever any other connection, in any process, commits. On PostgreSQL it is the current
snapshot (`xmin:xmax:in-progress ids`), which changes whenever a writing transaction starts or
ends, in any process, and never returns to an earlier value; it reads no table, but it is a
round trip, so it runs on a database thread (`app.db.DatabaseThreads`).

The key also carries the base URL the response's links were built from (`app.hosts.base_url`):
without PUBLIC_BASE_URL that is the request's own scheme and Host, and a page rendered for a
forged Host must never be replayed to anyone else.
"""

import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from sqlalchemy import Engine, Text, cast, func, select
from sqlalchemy.exc import SQLAlchemyError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.caching import PRIVATE_PREFIXES, not_modified, not_modified_headers
from app.db import DatabaseThreads
from app.hosts import base_url

Key = tuple[str, str, bytes, str, bool, str]
Entry = tuple[list[tuple[bytes, bytes]], bytes]
# Bigger bodies (a 500-event page) are rare and cheap to rebuild relative to their memory.
MAX_ENTRY_BYTES = 1024 * 1024


class SqliteDataVersion:
    """`PRAGMA data_version` on a connection of its own. The connection is opened on first use,
    so an app that never serves (one built only for its OpenAPI document) holds none, and
    `close` releases it when the app stops."""

    def __init__(self, database: str) -> None:
        self._database = database
        self._probe: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    async def __call__(self) -> str:
        # Microseconds, no I/O: it reads the WAL index in shared memory. Safe on the event
        # loop; the lock covers a TestClient or a second event loop sharing the app.
        with self._lock:
            if self._probe is None:
                self._probe = sqlite3.connect(
                    self._database, check_same_thread=False, isolation_level=None
                )
            row = self._probe.execute("PRAGMA data_version").fetchone()
        return str(row[0])

    def close(self) -> None:
        with self._lock:
            if self._probe is not None:
                self._probe.close()
                self._probe = None


def data_version_reader(
    engine: Engine, threads: DatabaseThreads
) -> Callable[[], Awaitable[str]] | None:
    """A function returning a number that changes whenever committed data may have changed."""
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        if not database or database == ":memory:":
            return None
        return SqliteDataVersion(database)

    # Not the newest revision id: a write that records no revision (an operator's UPDATE, a
    # restore) would then leave stale pages behind.
    snapshot = select(cast(func.pg_current_snapshot(), Text))
    # One statement that reads no table needs no transaction around it: BEGIN and the ROLLBACK
    # that returns the connection to the pool were two of its three round trips, paid by every
    # anonymous GET before the cache is even looked at. In autocommit it takes about half as
    # long (bench/README.md).
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")

    def read() -> str:
        with autocommit.connect() as conn:
            return str(conn.execute(snapshot).scalar_one())

    async def snapshot_version() -> str:
        return await threads.run(read)

    return snapshot_version


class ResponseCache:
    def __init__(
        self,
        app: ASGIApp,
        *,
        version: Callable[[], Awaitable[str]] | None,
        size: int,
        max_bytes: int,
    ) -> None:
        self.app = app
        self.version = version
        self.size = size
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Key, Entry] = OrderedDict()
        self._bytes = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.version is None
            or self.size <= 0
            or scope["type"] != "http"
            or scope["method"] != "GET"
            or scope["path"].startswith(PRIVATE_PREFIXES)
        ):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        # Responses to a key may differ (drafts for editors); only anonymous reads are shared.
        if "authorization" in headers or "cookie" in headers:
            await self.app(scope, receive, send)
            return
        try:
            version = await self.version()
        except (SQLAlchemyError, sqlite3.Error):
            # The database is down: no cache, and the route answers 503 (app/errors.py). Raised
            # here, outside routing, the error would also cost the client its connection.
            await self.app(scope, receive, send)
            return
        key: Key = (
            base_url(scope),
            scope["path"],
            scope["query_string"],
            headers.get("accept", ""),
            "gzip" in headers.get("accept-encoding", ""),
            version,
        )
        # `Cache-Control: no-cache` asks for a fresh answer (RFC 9111, 5.2.1.4): render it and
        # keep that, as a browser's reload does.
        fresh = "no-cache" in headers.get("cache-control", "")
        entry = None if fresh else self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            await self._replay(entry, headers, send)
            return
        await self.app(scope, receive, self._recorder(key, send))

    def _recorder(self, key: Key, send: Send) -> Send:
        headers: list[tuple[bytes, bytes]] | None = None

        async def record(message: Message) -> None:
            nonlocal headers
            if message["type"] == "http.response.start":
                # Copied now: the middlewares outside may add their per-request headers (rate
                # limit, request id) to this very message once it is sent.
                headers = list(message["headers"]) if message["status"] == 200 else None
            elif headers is not None:
                if not message.get("more_body", False) and _storable(headers):
                    self._put(key, (headers, message.get("body", b"")))
                headers = None
            await send(message)

        return record

    async def _replay(self, entry: Entry, request_headers: Headers, send: Send) -> None:
        raw_headers, body = entry
        response_headers = Headers(raw=raw_headers)
        if not_modified(request_headers, response_headers):
            await send(
                {
                    "type": "http.response.start",
                    "status": 304,
                    "headers": not_modified_headers(response_headers),
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 200, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body})

    def _put(self, key: Key, entry: Entry) -> None:
        size = len(entry[1])
        if size > MAX_ENTRY_BYTES:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old[1])
        self._entries[key] = entry
        self._bytes += size
        while len(self._entries) > self.size or self._bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= len(evicted[1])


def _storable(raw_headers: list[tuple[bytes, bytes]]) -> bool:
    headers = Headers(raw=raw_headers)
    cache_control = headers.get("cache-control", "")
    # Streamed exports have no Content-Length and never reach here whole.
    return "content-length" in headers and not any(
        word in cache_control for word in ("no-store", "private")
    )

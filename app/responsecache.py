"""Rendered read responses kept in memory, keyed by the request and the data version.

A pure ASGI middleware in front of routing: a hit answers (200, or 304 when the client's ETag
matches) without FastAPI's parameter handling, a session or a thread hop, which is most of the
cost of a small read (docs/performance.md). The key carries the data version, so a response
is never served after a commit that could change it: there is no invalidation step to forget.

The data version is cheap to read on SQLite: `PRAGMA data_version` on a connection of our own
changes whenever any other connection, in any process, commits. On PostgreSQL it is the current
snapshot (`xmin:xmax:in-progress ids`), which changes whenever a writing transaction starts or
ends, in any process, and never returns to an earlier value; it reads no table, but it is a
round trip, so it runs on a database thread (`app.db.DatabaseThreads`), and requests waiting at
the same time share one (`SharedRead`).

The key also carries the base URL the response's links were built from (`app.hosts.base_url`):
without PUBLIC_BASE_URL that is the request's own scheme and Host, and a page rendered for a
forged Host must never be replayed to anyone else.
"""

import asyncio
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import Engine, Text, cast, func, select
from sqlalchemy.exc import SQLAlchemyError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.caching import PRIVATE_PREFIXES, is_not_modified, not_modified_headers
from app.db import DatabaseThreads, sqlite_file

Key = tuple[object, str, bytes, bytes, bool, str]
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
        database = sqlite_file(engine.url)
        if database is None:
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

    return SharedRead(snapshot_version)


class SharedRead:
    """One version read at a time, shared by every request that arrived before it started.

    A request must see every commit acknowledged before it arrived, so it may not take the
    result of a read already on its way: it waits for the next one, which starts when the
    current one ends and serves everyone who arrived meanwhile. Under load that is one round
    trip for many requests; alone, a request waits for one read, as before.

    A version kept in memory and moved by LISTEN/NOTIFY would cost no round trip at all, but a
    notification arrives some time after the commit it announces, so a page written through
    another replica (or by an operator's UPDATE) could be served stale until it did; the
    snapshot never lags (docs/operations.md)."""

    def __init__(self, read: Callable[[], Awaitable[str]]) -> None:
        self._read = read
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: asyncio.Future[str] | None = None  # for the next read
        self._reading: asyncio.Task[None] | None = None

    async def __call__(self) -> str:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            if self._reading is not None:
                # Another event loop (a second test client on the same app) is mid-read.
                return await self._read()
            self._loop, self._waiting = loop, None
        waiting = self._waiting
        if waiting is None:
            waiting = self._waiting = loop.create_future()
            if self._reading is None:
                self._start(loop, waiting)
        # Shielded: a request that goes away must not cancel the read others wait for.
        return await asyncio.shield(waiting)

    def _start(self, loop: asyncio.AbstractEventLoop, done: "asyncio.Future[str]") -> None:
        self._waiting = None
        self._reading = loop.create_task(self._read_into(loop, done))

    async def _read_into(
        self, loop: asyncio.AbstractEventLoop, done: "asyncio.Future[str]"
    ) -> None:
        try:
            done.set_result(await self._read())
        except Exception as exc:  # every waiter re-raises it, and decides what to do
            done.set_exception(exc)
        finally:
            self._reading = None
            waiting = self._waiting
            if waiting is not None:
                self._start(loop, waiting)


@dataclass(frozen=True, slots=True)
class Entry:
    """A stored 200, with what a conditional request is compared with, worked out once."""

    headers: list[tuple[bytes, bytes]]
    body: bytes
    etag: str | None
    last_modified: str | None
    not_modified: list[tuple[bytes, bytes]]

    @classmethod
    def of(cls, raw_headers: list[tuple[bytes, bytes]], body: bytes) -> "Entry":
        headers = Headers(raw=raw_headers)
        return cls(
            raw_headers,
            body,
            headers.get("etag"),
            headers.get("last-modified"),
            not_modified_headers(headers),
        )


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
        # One pass over the request's headers, the first of each name as Headers.get gives:
        # this is the whole of a hit's work besides the lookup and the replay.
        headers: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name, value)
        # Responses to a key may differ (drafts for editors); only anonymous reads are shared.
        if b"authorization" in headers or b"cookie" in headers:
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
            _links_base(scope, headers),
            scope["path"],
            scope["query_string"],
            headers.get(b"accept", b""),
            b"gzip" in headers.get(b"accept-encoding", b""),
            version,
        )
        # `Cache-Control: no-cache` asks for a fresh answer (RFC 9111, 5.2.1.4): render it and
        # keep that, as a browser's reload does.
        fresh = b"no-cache" in headers.get(b"cache-control", b"")
        entry = None if fresh else self._entries.get(key)
        if entry is None:
            await self.app(scope, receive, self._recorder(key, send))
            return
        self._entries.move_to_end(key)
        if_none_match = headers.get(b"if-none-match")
        if_modified_since = headers.get(b"if-modified-since")
        if (if_none_match is not None or if_modified_since is not None) and is_not_modified(
            None if if_none_match is None else if_none_match.decode("latin-1"),
            None if if_modified_since is None else if_modified_since.decode("latin-1"),
            entry.etag,
            entry.last_modified,
        ):
            await send(
                {"type": "http.response.start", "status": 304, "headers": entry.not_modified}
            )
            await send({"type": "http.response.body", "body": b""})
            return
        # The stored lists are never changed: every middleware outside copies before it adds.
        await send({"type": "http.response.start", "status": 200, "headers": entry.headers})
        await send({"type": "http.response.body", "body": entry.body})

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
                    self._put(key, Entry.of(headers, message.get("body", b"")))
                headers = None
            await send(message)

        return record

    def _put(self, key: Key, entry: Entry) -> None:
        size = len(entry.body)
        if size > MAX_ENTRY_BYTES:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old.body)
        self._entries[key] = entry
        self._bytes += size
        while len(self._entries) > self.size or self._bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= len(evicted.body)


def _links_base(scope: Scope, headers: dict[bytes, bytes]) -> object:
    """What the response's links were built from (`app.hosts.base_url`): PUBLIC_BASE_URL, or
    the parts of the request it derives them from. Equal parts give equal links, and it
    costs a tuple where building the URL cost a good share of a hit."""
    public: str | None = scope["app"].state.settings.public_base_url
    if public:
        return public
    # Without a Host, Starlette takes the server's address (a list under some servers).
    host = headers.get(b"host") or tuple(scope.get("server") or ())
    return (scope["scheme"], host, scope.get("root_path", ""))


def _storable(raw_headers: list[tuple[bytes, bytes]]) -> bool:
    headers = Headers(raw=raw_headers)
    cache_control = headers.get("cache-control", "")
    # Streamed exports have no Content-Length and never reach here whole.
    return "content-length" in headers and not any(
        word in cache_control for word in ("no-store", "private")
    )

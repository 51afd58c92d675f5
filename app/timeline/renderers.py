"""Streamed exports, read and rendered in processes of their own at a lower CPU priority.

An export renders for seconds of Python. On a thread of the worker it shares the worker's
interpreter lock with the pages, and each page waits for it (issue 24's storm,
bench/README.md). Lowering a thread's priority cannot help: a thread descheduled while it holds
the lock stalls every other thread. In a process of its own the operating system shares the
cores, and the renderer's niceness (`EXPORT_NICENESS`) tells it the pages come first: an export
takes the CPU that pages leave.

Each uvicorn worker starts up to `EXPORT_PROCESSES` renderers on first use and keeps them. They
fork from a fork server that has imported this module once, so a start is a fork rather than an
import of the app, and no renderer inherits the worker's threads or connections. A renderer
serves one export at a time, one chunk each time the response asks for one, so a client that
reads slowly holds back its renderer, never the worker's memory. It compresses as
GZipMiddleware would when the client accepts gzip, so the worker only forwards bytes. With every
renderer busy, or on an in-memory SQLite database that no other process can open, an export
renders on a thread of the worker as before (`in_thread`).
"""

import contextlib
import itertools
import logging
import multiprocessing
import os
import signal
import threading
import time
import zlib
from collections.abc import Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Protocol, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from app.caching import GZIP_LEVEL
from app.db import (
    SQLITE_STREAM_CACHE_KIB,
    create_db_engine,
    create_session_factory,
    sqlite_file,
    statement_timed_out,
)
from app.errors import (
    DATABASE_UNAVAILABLE,
    ServiceUnavailable,
    StatementTimedOut,
    database_unavailable,
)
from app.timeline import formats, service
from app.timeline.schemas import TimelineQuery

logger = logging.getLogger(__name__)

# A fork server, not fork: a worker has threads (the database's, AnyIO's), which a forked child
# would inherit mid-operation. The server imports this module once for every renderer it forks.
CONTEXT = multiprocessing.get_context("forkserver")
CONTEXT.set_forkserver_preload([__name__])

NEXT = "next"
STOP = "stop"
# gzip's framing (zlib's wbits 16 + 15), as GZipMiddleware writes it.
GZIP_WBITS = 31
Batch = TypeVar("Batch")


class Chunks(Protocol):
    """An export's body: each chunk with the CPU seconds it took to make (app.timeline.router's
    read_ahead paces the next read by it). `close` ends the export early."""

    def __next__(self) -> tuple[bytes, float]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Export:
    """What a renderer needs to write an export: nothing of the request itself."""

    query: TimelineQuery
    fmt: str
    licence: str
    base_url: str
    title: str
    gzip: bool = False


def chunks(factory: sessionmaker[Session], export: Export) -> Generator[bytes]:
    """The export's body in chunks, read in a session of its own (it outlives the request's)."""
    with factory() as session:
        # The first batch is read before the first chunk, a CSV's header included: a database
        # that cannot answer is a 503 problem, not a 200 whose body stops short.
        body = (c.encode() if isinstance(c, str) else c for c in _rendered(session, export))
        yield from _gzipped(body) if export.gzip else body


def _gzipped(body: Iterator[bytes]) -> Iterator[bytes]:
    """The chunks compressed, each on a thread of its own while the next one is rendered: zlib
    lets go of the interpreter, so the two share the cores (GZipMiddleware does as much in the
    worker's threads). A sync flush per chunk, so a client decodes what it has while it waits.
    """
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, GZIP_WBITS)

    def compress(data: bytes) -> bytes:
        return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)

    # One thread: the chunks are compressed in order, by the one compressor.
    with ThreadPoolExecutor(1, thread_name_prefix="dtl-gzip") as pool:
        pending: Future[bytes] | None = None
        for data in body:
            compressed = pool.submit(compress, data)
            if pending is not None:
                yield pending.result()
            pending = compressed
        if pending is not None:
            yield pending.result()
    yield compressor.flush()


def _rendered(session: Session, export: Export) -> Iterator[str] | Iterator[bytes]:
    query = export.query
    if export.fmt == "csv":
        return formats.render_csv(_read_first(service.export_csv(session, query)))
    batches = _read_first(service.export(session, query))
    if export.fmt == "ndjson":
        return formats.render_ndjson(batches)
    if export.fmt == "geojson":
        return formats.render_geojson(batches, export.licence)
    return formats.render_ics(batches, export.base_url, export.title, export.licence)


def _read_first(batches: Iterator[Batch]) -> Iterator[Batch]:
    first = next(batches, None)
    return batches if first is None else itertools.chain([first], batches)


def timed(body: Generator[bytes]) -> Generator[tuple[bytes, float]]:
    """Each chunk with the CPU seconds this thread spent making it."""
    with contextlib.closing(body):
        while True:
            started = time.thread_time()
            chunk = next(body, None)
            if chunk is None:
                return
            yield chunk, time.thread_time() - started


def in_thread(factory: sessionmaker[Session], export: Export) -> Chunks:
    """The export made by the calling thread (GZipMiddleware compresses it)."""
    return timed(chunks(factory, export))


class Renderers:
    """This worker's renderer processes: at most `size`, started on first use, kept until
    `close`."""

    def __init__(
        self, database_url: str, *, size: int, niceness: int, statement_timeout: float | None
    ) -> None:
        self._config = (database_url, niceness, statement_timeout)
        self._size = size
        self._idle: list[_Renderer] = []
        self._running: list[_Renderer] = []  # idle or busy
        self._lock = threading.Lock()

    @classmethod
    def for_database(
        cls, database_url: str, *, size: int, niceness: int, statement_timeout: float | None
    ) -> "Renderers | None":
        """None where other processes cannot open the database (in-memory SQLite), or size 0."""
        private = database_url.startswith("sqlite") and sqlite_file(database_url) is None
        if size == 0 or private:
            return None
        return cls(database_url, size=size, niceness=niceness, statement_timeout=statement_timeout)

    def open(self, export: Export) -> Chunks | None:
        """The export, made by an idle renderer; None when all `size` are busy, or when the one
        taken died as it was handed the export. Blocks while a renderer starts: call it from a
        thread."""
        renderer = self._take()
        if renderer is None:
            return None
        try:
            renderer.conn.send(export)
        except OSError:
            # It died while idle, after `_take` saw it alive: this export is made in a thread.
            self._discard(renderer)
            return None
        return _Remote(self, renderer)

    @property
    def pids(self) -> list[int]:
        """The process ids of the renderers started and not yet stopped."""
        with self._lock:
            return [renderer.process.pid for renderer in self._running]

    def close(self) -> None:
        """Stop the idle renderers; a busy one stops when its export ends and its pipe closes
        (the worker is exiting)."""
        with self._lock:
            idle, self._idle = self._idle, []
            self._running = [r for r in self._running if r not in idle]
        for renderer in idle:
            renderer.stop()

    def _take(self) -> "_Renderer | None":
        with self._lock:
            while self._idle:
                renderer = self._idle.pop()
                if renderer.process.is_alive():
                    return renderer
                self._running.remove(renderer)
            if len(self._running) >= self._size:
                return None
            renderer = _Renderer.start(*self._config)
            self._running.append(renderer)
            return renderer

    def _give(self, renderer: "_Renderer") -> None:
        with self._lock:
            self._idle.append(renderer)

    def _discard(self, renderer: "_Renderer") -> None:
        renderer.stop()
        with self._lock:
            self._running.remove(renderer)


@dataclass
class _Renderer:
    process: Any  # multiprocessing's process classes are not public types
    conn: Connection

    @classmethod
    def start(
        cls, database_url: str, niceness: int, statement_timeout: float | None
    ) -> "_Renderer":
        ours, theirs = CONTEXT.Pipe()
        process = CONTEXT.Process(
            target=_serve,
            args=(theirs, database_url, niceness, statement_timeout),
            name="dtl-export",
            daemon=True,
        )
        process.start()
        theirs.close()
        return cls(process, ours)

    def stop(self) -> None:
        # A closed pipe ends the renderer's loop; a renderer stuck in a statement is killed.
        self.conn.close()
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


class _Remote:
    """An export in a renderer, read a chunk at a time (by one thread at a time)."""

    def __init__(self, pool: Renderers, renderer: _Renderer) -> None:
        self._pool = pool
        self._renderer: _Renderer | None = renderer

    def __iter__(self) -> "_Remote":
        return self

    def __next__(self) -> tuple[bytes, float]:
        renderer = self._renderer
        if renderer is None:
            raise StopIteration
        try:
            renderer.conn.send(NEXT)
            reply = renderer.conn.recv()
        except (EOFError, OSError) as exc:
            self._renderer = None
            self._pool._discard(renderer)
            raise RuntimeError("the export's renderer process exited") from exc
        if reply[0] == "chunk":
            return reply[1], reply[2]
        self._renderer = None
        self._pool._give(renderer)
        if reply[0] == "end":
            raise StopIteration
        kind, detail = reply[1], reply[2]
        if kind == "timeout":
            raise StatementTimedOut(detail)
        if kind == "unavailable":
            raise ServiceUnavailable(f"{DATABASE_UNAVAILABLE}.")
        raise RuntimeError(f"the export failed in its renderer: {detail}")

    def close(self) -> None:
        renderer, self._renderer = self._renderer, None
        if renderer is None:
            return
        try:
            renderer.conn.send(STOP)
        except OSError:
            self._pool._discard(renderer)
            return
        self._pool._give(renderer)


def _serve(
    conn: Connection, database_url: str, niceness: int, statement_timeout: float | None
) -> None:
    """A renderer's life: exports, one at a time, until the worker closes the pipe or exits."""
    # Ctrl-C reaches the whole process group; the worker decides, and this ends with its pipe.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(niceness)
    engine = create_db_engine(
        database_url,
        pool_size=1,
        sqlite_cache_kib=SQLITE_STREAM_CACHE_KIB,
        statement_timeout=statement_timeout,
    )
    factory = create_session_factory(engine)
    try:
        with contextlib.suppress(EOFError, OSError):
            while True:
                _answer(conn, factory, conn.recv())
    finally:
        engine.dispose()


def _answer(conn: Connection, factory: sessionmaker[Session], export: Export) -> None:
    """One export, a chunk per NEXT, until it ends, fails or the worker sends STOP."""
    body = chunks(factory, export)
    try:
        while conn.recv() == NEXT:
            started = time.process_time()
            try:
                chunk = next(body, None)
            except Exception as exc:
                conn.send(("error", *_described(exc)))
                return
            if chunk is None:
                conn.send(("end",))
                return
            conn.send(("chunk", chunk, time.process_time() - started))
    finally:
        body.close()


def _described(exc: Exception) -> tuple[str, str]:
    if statement_timed_out(exc):
        return "timeout", str(exc)
    if database_unavailable(exc):
        return "unavailable", str(exc)
    logger.exception("an export failed in its renderer")
    return "failed", repr(exc)

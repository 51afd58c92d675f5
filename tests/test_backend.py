import asyncio
import contextvars
import os
import select
import threading
import time

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.config import Settings
from app.db import SQLITE_CACHE_KIB, SQLITE_STREAM_CACHE_KIB, DatabaseThreads, create_db_engine
from app.main import create_app
from tests.conftest import ON_POSTGRES
from tests.helpers import libpq_url


def test_suite_runs_on_the_expected_database(engine: Engine) -> None:
    """CI sets EXPECT_DATABASE so a misconfigured run cannot silently test the wrong backend."""
    expected = os.environ.get("EXPECT_DATABASE")
    if expected:
        assert engine.dialect.name == expected


def test_streamed_exports_read_through_their_own_connections(database_url: str) -> None:
    """On SQLite, requests read through a large page cache that keeps their pages hot; exports
    stream whole tables through connections of their own with a small one, which is faster for
    a single pass and leaves the requests' cache alone. PostgreSQL shares one engine."""
    app = create_app(Settings(database_url=database_url, webhook_worker="off"))
    try:
        if app.state.engine.dialect.name != "sqlite":
            assert app.state.stream_engine is app.state.engine
            return
        assert app.state.stream_engine is not app.state.engine
        for engine, kib in (
            (app.state.engine, SQLITE_CACHE_KIB),
            (app.state.stream_engine, SQLITE_STREAM_CACHE_KIB),
        ):
            with engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -kib
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        app.state.engine.dispose()
        app.state.stream_engine.dispose()


def test_database_threads_bound_the_work_and_carry_the_request_context() -> None:
    """The timeline's database work runs on at most `size` threads, queued in order beyond
    that, with the caller's context variables (the request id its log lines carry)."""
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")
    lock = threading.Lock()
    running = peak = 0
    order: list[int] = []

    def work(n: int) -> tuple[str, str]:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            order.append(n)
        time.sleep(0.01)
        with lock:
            running -= 1
        return request_id.get(), threading.current_thread().name

    async def request(threads: DatabaseThreads, n: int) -> tuple[str, str]:
        request_id.set(f"req-{n}")
        return await threads.run(work, n)

    def requests(size: int) -> list[tuple[str, str]]:
        threads = DatabaseThreads(size, own_threads=True)

        async def all_at_once() -> list[tuple[str, str]]:
            return await asyncio.gather(*(request(threads, n) for n in range(6)))

        try:
            return asyncio.run(all_at_once())
        finally:
            threads.shutdown()

    answers = requests(1)
    assert [ctx for ctx, _ in answers] == [f"req-{n}" for n in range(6)]
    assert {name for _, name in answers} == {"dtl-db_0"}
    assert peak == 1 and order == list(range(6))
    requests(2)
    assert peak == 2


def test_timeline_pages_have_threads_of_their_own_on_postgresql_only(database_url: str) -> None:
    """On PostgreSQL the pages' threads end with the app's lifespan; SQLite uses AnyIO's pool,
    which outlives any one app (`app.db.DatabaseThreads` says why)."""
    app = create_app(Settings(database_url=database_url, webhook_worker="off"))
    with TestClient(app) as client:
        assert client.get("/v1/timeline?limit=1").status_code == 200
    threads: DatabaseThreads = app.state.db_threads
    assert threads.own_threads == (app.state.engine.dialect.name == "postgresql")
    if threads.own_threads:
        with pytest.raises(RuntimeError, match="shutdown"):
            asyncio.run(threads.run(time.sleep, 0))
    else:
        assert asyncio.run(threads.run(len, "four")) == 4


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


def _socket_of_pooled(engine: Engine) -> int:
    """The socket of the pool's one connection (it stays open while the connection idles).
    Taken before the server sends anything: a checkout reads what arrived."""
    with engine.connect() as conn:
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        return int(dbapi.fileno())


def _wait_readable(fd: int, seconds: float = 30) -> None:
    """Until something the server sent reaches the socket: what the pool's check looks for."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    assert poller.poll(seconds * 1000), "nothing reached the pooled connection's socket"


def _outside(database_url: str, sql: str) -> None:
    """Run `sql` on a connection of its own, outside the engine's pool."""
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute(sql)


@pytest.mark.skipif(not ON_POSTGRES, reason="SQLite has no server to lose")
def test_a_pooled_connection_the_server_closed_is_replaced_on_checkout(database_url: str) -> None:
    engine = create_db_engine(database_url, pool_size=1)
    try:
        pid = _backend_pid(engine)
        socket = _socket_of_pooled(engine)
        _outside(database_url, f"SELECT pg_terminate_backend({pid})")  # as a restart does
        _wait_readable(socket)  # the server's goodbye
        assert _backend_pid(engine) != pid  # and no error: a fresh connection
    finally:
        engine.dispose()


@pytest.mark.skipif(not ON_POSTGRES, reason="SQLite has no server to lose")
def test_a_pooled_connection_that_only_heard_a_message_is_kept(database_url: str) -> None:
    """Something to read is not always a goodbye: here a notification. The ping tells."""
    engine = create_db_engine(database_url, pool_size=1)
    try:
        with engine.connect() as conn:
            pid = int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
            conn.exec_driver_sql("LISTEN dtl_test_channel")
            conn.commit()
            dbapi = conn.connection.dbapi_connection
            assert dbapi is not None
            socket = int(dbapi.fileno())
        _outside(database_url, "NOTIFY dtl_test_channel")
        _wait_readable(socket)  # the notification
        assert _backend_pid(engine) == pid
    finally:
        engine.dispose()

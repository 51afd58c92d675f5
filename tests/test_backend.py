import os
import threading
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from app.config import Settings
from app.db import SQLITE_CACHE_KIB, SQLITE_STREAM_CACHE_KIB
from app.main import create_app


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


ONE_RANGE = [
    "",
    "from=2024&to=2025-04",
    "state=DZA",
    "state=MLI&from=2024&order=desc&limit=5",
    "between=MLI,DZA",
    "organisation=AES",
    "category=ambassador_recall",
    "kind=incident",
    "tag=april-2025-crisis",
]
MORE_THAN_A_RANGE = [
    "q=drone",
    "state=DZA&count=true",
    "state=DZA&state=MLI",
    "state=DZA&category=ambassador_recall",
    "between=MLI,DZA,NER",
    "actor=DZA",
    "organisation=AES&include_members=true",
    "as_known_at=2100-01-01T00:00:00Z",
    "state=DZA&format=csv",
]


@pytest.mark.parametrize("query", ONE_RANGE + MORE_THAN_A_RANGE)
def test_a_page_read_as_one_range_is_served_on_the_event_loop(
    client: TestClient, query: str
) -> None:
    """On SQLite a page that reads one index range skips the thread pool (its hand-off cost
    more than the page); anything that may read more still runs in a thread, and so does
    every page on PostgreSQL, whose round trips a second thread overlaps."""
    app = client.app
    assert isinstance(app, FastAPI)
    threads: list[str] = []

    def record(*_: Any) -> None:
        threads.append(threading.current_thread().name)

    event.listen(app.state.engine, "before_cursor_execute", record)
    try:
        response = client.get(f"/v1/timeline?{query}")
    finally:
        event.remove(app.state.engine, "before_cursor_execute", record)
    assert response.status_code == 200, response.text
    assert threads
    pooled = [name.startswith("AnyIO worker thread") for name in threads]
    inline = app.state.engine.dialect.name == "sqlite" and query in ONE_RANGE
    assert pooled == [not inline] * len(threads), threads


def test_a_page_is_the_same_on_the_event_loop_and_in_a_thread(database_url: str) -> None:
    # No response cache: the second request must build its page too.
    settings = Settings(
        database_url=database_url, cursor_secret="s", webhook_worker="off", response_cache_size=0
    )
    with TestClient(create_app(settings)) as client:
        app = client.app
        assert isinstance(app, FastAPI)
        for query in ONE_RANGE:
            app.state.inline_pages = False
            pooled = client.get(f"/v1/timeline?{query}&limit=3")
            app.state.inline_pages = True
            served = client.get(f"/v1/timeline?{query}&limit=3")
            assert_same_page(served, pooled)
        app.state.engine.dispose()
        app.state.stream_engine.dispose()


def assert_same_page(served: httpx.Response, pooled: httpx.Response) -> None:
    assert served.status_code == pooled.status_code == 200
    assert served.content == pooled.content
    assert served.headers["etag"] == pooled.headers["etag"]
    assert served.headers.get("link") == pooled.headers.get("link")

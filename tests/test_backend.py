import os

from sqlalchemy import Engine

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

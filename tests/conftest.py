"""Test fixtures: a throwaway database per run, migrated with Alembic and loaded with the real seed.

`DATABASE_URL` picks the server: unset or SQLite means a temporary SQLite file; a PostgreSQL URL
means a fresh database created on that server for this run and dropped afterwards. The suite
never touches the database the URL names.
"""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from app.config import PROJECT_ROOT, Settings, normalise_database_url
from app.db import create_db_engine, create_session_factory
from app.main import create_app
from app.seed import load

SERVER_URL = normalise_database_url(os.environ.get("DATABASE_URL", "sqlite://"))
ON_POSTGRES = SERVER_URL.startswith("postgresql")


class ThrowawayDatabases:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.created: list[str] = []

    def new(self) -> str:
        if not ON_POSTGRES:
            return f"sqlite:///{self.tmp / f'{uuid.uuid4().hex[:8]}.db'}"
        name = f"dtl_test_{uuid.uuid4().hex[:10]}"
        admin = self._admin()
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        self.created.append(name)
        return make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False)

    def _admin(self) -> Engine:
        return create_engine(
            make_url(SERVER_URL).set(database="postgres"), isolation_level="AUTOCOMMIT"
        )

    def drop_all(self) -> None:
        if not self.created:
            return
        engine = self._admin()
        with engine.connect() as conn:
            for name in self.created:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


def alembic_config(url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    return config


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThrowawayDatabases]:
    dbs = ThrowawayDatabases(tmp_path_factory.mktemp("databases"))
    yield dbs
    dbs.drop_all()


@pytest.fixture(scope="session")
def database_url(databases: ThrowawayDatabases) -> str:
    """A migrated database holding the real seed data, shared by the read-only tests."""
    url = databases.new()
    command.upgrade(alembic_config(url), "head")
    engine = create_db_engine(url)
    with create_session_factory(engine)() as session:
        load(session, PROJECT_ROOT / "seed", progress=lambda _: None)
        session.commit()
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose work is always rolled back."""
    with create_session_factory(engine)() as session:
        yield session
        session.rollback()


@pytest.fixture(scope="session")
def client(database_url: str) -> Iterator[TestClient]:
    app = create_app(Settings(database_url=database_url, cursor_secret="test-secret"))
    with TestClient(app) as client:
        yield client


def pytest_report_header() -> str:
    return f"database: {'postgresql (throwaway database per run)' if ON_POSTGRES else 'sqlite'}"

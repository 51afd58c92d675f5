"""Test fixtures: a throwaway database per run, migrated with Alembic and loaded with the real seed.

`DATABASE_URL` picks the server: unset or SQLite means a temporary SQLite file; a PostgreSQL URL
means a fresh database created on that server for this run and dropped afterwards. The suite
never touches the database the URL names.
"""

import os
import sqlite3
import uuid
from collections.abc import Iterator
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from app import writes
from app.config import PROJECT_ROOT, Settings, normalise_database_url
from app.db import create_db_engine
from app.events import documents
from app.main import create_app
from app.models import Event, EventDocument, Participant, StatePair
from app.seed import load
from app.timeline import counts, search_index

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

    def copy_of(self, url: str) -> str:
        """A new database holding what the database at `url` holds: SQLite's backup of the file,
        or PostgreSQL's CREATE DATABASE … TEMPLATE (nothing may be connected to `url`)."""
        if not ON_POSTGRES:
            copy = self.tmp / f"{uuid.uuid4().hex[:8]}.db"
            source = sqlite3.connect(make_url(url).database or "")
            target = sqlite3.connect(copy)
            with target:
                source.backup(target)
            source.close()
            target.close()
            return f"sqlite:///{copy}"
        name = f"dtl_test_{uuid.uuid4().hex[:10]}"
        template = make_url(url).database
        admin = self._admin()
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
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


def revision_before(config: Config, revision: str) -> str:
    """The revision a migration follows: what a test of its downgrade goes down to, however
    many migrations come after it."""
    down = ScriptDirectory.from_config(config).get_revision(revision).down_revision
    assert isinstance(down, str), f"{revision} does not follow exactly one revision"
    return down


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThrowawayDatabases]:
    dbs = ThrowawayDatabases(tmp_path_factory.mktemp("databases"))
    yield dbs
    dbs.drop_all()


@pytest.fixture(scope="session")
def database_url(databases: ThrowawayDatabases) -> str:
    """A migrated database holding the real seed data, shared by the read-only tests."""
    return seeded_database(databases)


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose work is always rolled back."""
    with writes.session_factory(engine)() as session:
        yield session
        session.rollback()


@pytest.fixture(scope="session")
def client(database_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(app_settings(database_url))) as client:
        yield client


@pytest.fixture(scope="session")
def uncached_client(database_url: str) -> Iterator[TestClient]:
    """As `client`, with no response cache: for tests that ask the same question twice and
    change how the service answers it in between."""
    with TestClient(create_app(app_settings(database_url, response_cache_size=0))) as client:
        yield client


def app_settings(database_url: str, **overrides: Any) -> Settings:
    """The settings of the tests' apps, with `overrides`."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "cursor_secret": "test-secret",
        "webhook_worker": "off",
    }
    return Settings(**(values | overrides))


def pytest_report_header() -> str:
    return f"database: {'postgresql (throwaway database per run)' if ON_POSTGRES else 'sqlite'}"


def seeded_database(databases: ThrowawayDatabases) -> str:
    url = databases.new()
    command.upgrade(alembic_config(url), "head")
    engine = create_db_engine(url)
    with writes.session_factory(engine)() as session:
        load(session, PROJECT_ROOT / "seed", progress=lambda _: None)
        session.commit()
    engine.dispose()
    return url


class Writable:
    """A seeded database of its own, so write tests never disturb the read-only tests."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_db_engine(url)
        self.app = create_app(app_settings(url))
        self.client = TestClient(self.app)
        self.tokens: dict[str, str] = {}
        from app.auth import service as auth_service
        from app.auth.service import Scope

        with writes.session_factory(self.engine).begin() as session:
            for name, scopes in {
                "editor": [Scope.editor],
                "admin": [Scope.admin],
                "hooks": [Scope.webhooks],
                "revoked": [Scope.editor],
            }.items():
                key, token = auth_service.create_key(session, f"test-{name}", scopes)
                self.tokens[name] = token
                if name == "revoked":
                    auth_service.revoke_key(session, key.id)

    def auth(self, who: str = "editor") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def session(self) -> Session:
        return writes.session_factory(self.engine)()

    def close(self) -> None:
        self.client.close()
        self.app.state.engine.dispose()
        self.app.state.stream_engine.dispose()
        if self.app.state.renderers is not None:
            self.app.state.renderers.close()
        self.engine.dispose()


def stale_documents(engine: Engine) -> list[str]:
    """Events whose stored document is missing, outdated or differs from what their tables give
    (app/events/documents.py), by public id."""
    with writes.session_factory(engine)() as session:
        ids = list(session.scalars(select(Event.id).order_by(Event.id)))
        stored = {
            event_id: (bytes(body), line)
            for event_id, body, line in session.execute(
                select(EventDocument.event_id, EventDocument.body, EventDocument.csv)
            )
        }
        fresh = dict(zip(ids, documents.assemble(session, ids), strict=True))
        names = dict(session.execute(select(Event.id, Event.public_id)).tuples().all())
    return [
        names[i]
        for i in ids
        if stored.get(i) != (body := documents.serialise(fresh[i]), documents.csv_line(body))
    ]


def stale_pairs(engine: Engine) -> list[str]:
    """Events whose state pairs (`event_state_pair`) are not every pair of their participating
    states with the event's date and public id, once each, by public id."""
    p, pair = Participant.__table__.c, StatePair.__table__.c
    with engine.connect() as conn:
        events = {
            i: (date, public_id)
            for i, date, public_id in conn.execute(select(Event.id, Event.date, Event.public_id))
        }
        states: dict[int, set[int]] = {}
        for event_id, state_id in conn.execute(
            select(p.event_id, p.state_id).where(p.state_id.is_not(None))
        ):
            states.setdefault(event_id, set()).add(state_id)
        rows = [
            tuple(r)
            for r in conn.execute(
                select(pair.event_id, pair.state_a, pair.state_b, pair.date, pair.public_id)
            )
        ]
    expected = {
        (event_id, a, b, *events[event_id])
        for event_id, ids in states.items()
        for a, b in combinations(sorted(ids), 2)
    }
    wrong = set(rows) ^ expected
    if len(rows) != len(set(rows)):
        wrong |= {r for r in rows if rows.count(r) > 1}
    return sorted({events[r[0]][1] for r in wrong})


@pytest.fixture(scope="session")
def seeded_template(databases: ThrowawayDatabases) -> str:
    """A seeded database no test connects to: each `writable` starts from a copy of it."""
    return seeded_database(databases)


@pytest.fixture
def writable(databases: ThrowawayDatabases, seeded_template: str) -> Iterator[Writable]:
    """A seeded database of this test's own: what one test writes, no other test sees."""
    yield from _writable(databases.copy_of(seeded_template))


@pytest.fixture(scope="module")
def module_writable(databases: ThrowawayDatabases, seeded_template: str) -> Iterator[Writable]:
    """One seeded database for a whole module, for modules whose claim spans their tests
    (tests/test_hostile.py: no hostile request changes anything) or that build one fixture
    from writes (tests/consumers/test_spreadsheet.py)."""
    yield from _writable(databases.copy_of(seeded_template))


def _writable(url: str) -> Iterator[Writable]:
    w = Writable(url)
    with w.client:
        yield w
    # Every write made left the stored documents, state pairs and facet counts as the tables say.
    stale = stale_documents(w.engine)
    pairs = stale_pairs(w.engine)
    with w.session() as session:
        wrong_counts = {name: n for name, n in counts.check(session).items() if n}
        if ON_POSTGRES:
            wrong_counts["search_word"] = search_index.unlisted_words(session)
        else:
            wrong_counts["event_fts_timeline"] = search_index.check(session)
        wrong_counts = {name: n for name, n in wrong_counts.items() if n}
    w.close()
    assert stale == [], f"stale stored documents after {w.url}: {stale[:10]}"
    assert pairs == [], f"state pairs out of step with participants after {w.url}: {pairs[:10]}"
    assert wrong_counts == {}, f"facet counts or search index out of step after {w.url}"

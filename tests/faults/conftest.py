"""Fault fixtures: a database of the package's own with API keys, and real server processes on it.

Every test here talks to `uvicorn` over TCP (tests/live.py) and breaks something real: the
database, the process (SIGTERM, SIGKILL), or a receiver. Nothing is mocked.

The database is filled once per run by `bench/synth.py` (its realistic synthetic events, which
the export test needs in bulk, and the states the tests' own events name); each test writes
events with ids of its own, so the tests share it in any order.
"""

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from app import writes
from app.auth import service as auth_service
from app.callers import Scope
from app.db import create_db_engine
from bench import synth
from tests.conftest import ThrowawayDatabases
from tests.live import LiveServer
from tests.webhooks.conftest import Receiver

# Deadline for whatever waits on a process starting (an interpreter importing the app takes
# seconds, far more on a loaded CI machine): generous, since only a hang should fail.
PATIENCE = 120.0
# Enough that an NDJSON export (about 1.4 KB an event) cannot sit whole in socket buffers.
SYNTHETIC_EVENTS = 5000


@dataclass
class Database:
    """A migrated database with synthetic events, an editor key and a webhooks key."""

    url: str
    engine: Engine
    tokens: dict[str, str]

    def auth(self, who: str = "editor") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(sql), params))


def with_keys(url: str) -> Database:
    engine = create_db_engine(url)
    tokens: dict[str, str] = {}
    with writes.session_factory(engine).begin() as session:
        for name, scopes in {"editor": [Scope.editor], "hooks": [Scope.webhooks]}.items():
            _, tokens[name] = auth_service.create_key(session, f"faults-{name}", scopes)
    return Database(url, engine, tokens)


@pytest.fixture(scope="package")
def database(databases: ThrowawayDatabases) -> Iterator[Database]:
    url = databases.new()
    synth.run(url, SYNTHETIC_EVENTS, seed=8, reset=False, batch=SYNTHETIC_EVENTS, quiet=True)
    db = with_keys(url)
    yield db
    db.engine.dispose()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Start servers on a database; every one still running at the end is killed. On a failure
    the servers' logs are printed, as pytest shows captured output."""
    started: list[LiveServer] = []

    def start(url: str, **env: str) -> LiveServer:
        server = LiveServer(url, tmp_path / f"server-{len(started)}.log", **env)
        started.append(server)
        return server.start(timeout=PATIENCE)

    yield start
    for server in started:
        server.kill()
        sys.stdout.write(f"--- {server.log_path.name}\n{server.log()[-4000:]}\n")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP server on 127.0.0.1 that records webhook requests (tests/webhooks)."""
    r = Receiver()
    yield r
    r.close()


def event_body(event_id: str, title: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id,
        "kind": "diplomatic_action",
        "category": "statement",
        "date": "2025-04-10",
        "date_precision": "day",
        "title": title or f"Statement {event_id}",
        "summary": "Written by the fault tests.",
        "participants": [
            {"state": "MLI", "role": "initiator"},
            {"state": "DZA", "role": "target"},
        ],
        "sources": [
            {"url": f"https://example.org/faults/{event_id}", "publisher": "Fault Gazette"}
        ],
        "tags": ["fault-test"],
    }


def cut_off(admin: Engine, name: str) -> None:
    """What a database server's restart looks like to its clients, done to one database of a
    shared server: new connections refused, every open one terminated."""
    with admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false'))
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": name},
        )


def wait_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    """A bounded wait with a generous deadline; fails with `what` if it runs out."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)

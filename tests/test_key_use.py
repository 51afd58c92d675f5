"""A key's `last_used_at`: a read with a key never writes in the read's own transaction.

It once did, and on SQLite a plain keyed read then failed with a 503 whenever another
transaction was writing: a read transaction cannot take the write lock it finds held, or
changed since its snapshot. Now a write stamps the key in its own transaction, a read in a short
one of its own after the response, and neither stamps more than once a minute.
"""

import datetime as dt
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, event, select, text
from sqlalchemy.exc import OperationalError

from app import callers
from app.db import WRITE_TRANSACTION
from app.models import ApiKey, AuditEntry
from tests.conftest import Writable
from tests.live import LiveServer


@contextmanager
def write_lock_held(writable: Writable) -> Iterator[None]:
    """Another transaction holds what a keyed read would need to stamp its key: the database's
    write lock on SQLite, the keys' rows on PostgreSQL."""
    with writable.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            # The engine's own BEGIN IMMEDIATE (app.db), taken by the first statement.
            conn.execution_options(**{WRITE_TRANSACTION: True}).execute(text("SELECT 1"))
        else:
            conn.execute(text("SELECT id FROM api_key FOR UPDATE"))
        try:
            yield
        finally:
            conn.rollback()


def last_used(writable: Writable, name: str) -> dt.datetime | None:
    with writable.session() as session:
        return session.scalar(select(ApiKey.last_used_at).where(ApiKey.name == f"test-{name}"))


def test_a_keyed_read_answers_while_another_transaction_writes(
    writable: Writable, tmp_path: Path
) -> None:
    assert last_used(writable, "hooks") is None
    with LiveServer(writable.url, tmp_path / "server.log") as server:
        with write_lock_held(writable):
            # The lock is held until this answers: a read that waited for it would answer 503
            # when its lock wait ran out.
            response = httpx.get(
                f"{server.base_url}/v1/webhook-endpoints",
                headers=writable.auth("hooks"),
                timeout=30,
            )
            assert response.status_code == 200, response.text
            assert last_used(writable, "hooks") is None
        # Once the lock is free, the stamp written after the response lands.
        deadline = time.monotonic() + 20
        while last_used(writable, "hooks") is None:
            assert time.monotonic() < deadline, f"the key was never stamped:\n{server.log()}"
            time.sleep(0.05)


def test_a_write_stamps_its_key_in_its_own_transaction(writable: Writable) -> None:
    response = writable.client.post(
        "/v1/sources",
        headers=writable.auth("editor"),
        json={"url": "https://example.org/test/key-use", "publisher": "P"},
    )
    assert response.status_code == 201, response.text
    assert last_used(writable, "editor") is not None


def test_a_key_is_stamped_at_most_once_a_minute(writable: Writable) -> None:
    with writable.session() as session:
        key_id = session.scalars(select(ApiKey.id).where(ApiKey.name == "test-admin")).one()
    first = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
    for at, expected in [
        (first, first),
        (first + dt.timedelta(seconds=59), first),
        # An older time never overwrites a newer one.
        (first - dt.timedelta(minutes=5), first),
        (first + callers.LAST_USED_RESOLUTION, first + callers.LAST_USED_RESOLUTION),
    ]:
        with writable.session() as session, session.begin():
            callers.stamp(session, key_id, at)
        assert last_used(writable, "admin") == expected


def test_an_admin_read_records_its_audit_entry_when_another_writer_commits_meanwhile(
    writable: Writable,
) -> None:
    """An admin's read writes its audit entry. As a read transaction it failed (503 on SQLite)
    when another writer committed between its first statement and that insert: here, right after
    the read looks its key up."""
    other = writable.engine
    committed: list[str] = []

    def write_meanwhile(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if committed or "FROM api_key" not in statement:
            return
        try:
            with other.begin() as conn:
                conn.execute(text("UPDATE api_key SET name = name WHERE name = 'test-hooks'"))
            committed.append("committed")
        except OperationalError:
            # SQLite: the read began as a write, so it holds the write lock already; the other
            # writer waits for it (here it gives up, as the read holds this thread).
            committed.append("locked out")

    engine = writable.app.state.engine
    if engine.dialect.name == "sqlite":
        # The other writer must not wait the whole busy timeout while this thread holds the lock.
        other = create_engine(writable.url, connect_args={"timeout": 0.1})
    event.listen(engine, "after_cursor_execute", write_meanwhile)
    try:
        response = writable.client.get("/v1/audit", headers=writable.auth("admin"))
    finally:
        event.remove(engine, "after_cursor_execute", write_meanwhile)
        if other is not writable.engine:
            other.dispose()
    assert response.status_code == 200, response.text
    assert committed, "the hook never ran: the read did not look its key up"
    with writable.session() as session:
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.method == "GET", AuditEntry.path == "/v1/audit")
        ).all()
    assert [entry.key_name for entry in entries] == ["test-admin"]

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

import httpx
from sqlalchemy import select, text

from app import callers
from app.db import WRITE_TRANSACTION
from app.models import ApiKey
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

"""The database stops answering: requests get a 503 problem with Retry-After within seconds, the
readiness probe says so, and once the database is back the same process serves again, with every
write it acknowledged before the outage intact.

Two real faults, on both databases where they exist:

* **A write lock held too long** (SQLite and PostgreSQL). Another process opens a write
  transaction and stalls, as a hung bulk job, a paused replica or a forgotten `sqlite3` shell
  would. On SQLite it is `BEGIN EXCLUSIVE`; on PostgreSQL it holds the advisory lock every writer
  takes before recording a revision (app/revisions/service.py). Writers wait `LOCK_WAIT_SECONDS`
  (busy_timeout / lock_timeout) and then answer 503, having written nothing. Reads go on: SQLite
  in WAL mode and PostgreSQL both let readers past a writer, so the service degrades to
  read-only rather than failing, and `/readyz` stays 200 because reads are served.

  Why not make SQLite refuse reads too: an exclusive `locking_mode` cannot be taken while the
  server has the WAL database open, renaming the file or its folder away leaves every pooled
  connection working on the open file, and root ignores file permissions. A held write lock is
  the way an embedded SQLite database really becomes unavailable.

* **The database refuses connections** (PostgreSQL). The shared server must keep running, so
  only this test's database is taken away: `ALTER DATABASE … WITH ALLOW_CONNECTIONS false` and
  `pg_terminate_backend` of its sessions, which is what a database restart looks like to a
  client (every pooled connection dies, new ones are refused). Then `ALLOW_CONNECTIONS true`.
"""

import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pytest
from sqlalchemy import create_engine, make_url, text

from app.db import FEED_LOCK_KEY, LOCK_WAIT_SECONDS
from tests.conftest import ON_POSTGRES
from tests.faults.conftest import Database, cut_off, event_body, wait_for
from tests.helpers import libpq_url
from tests.live import LiveServer
from tests.webhooks.conftest import LOCAL, Receiver

# A hang would show as an httpx timeout; a 503 must come well before it.
CLIENT_TIMEOUT = LOCK_WAIT_SECONDS + 20

SQLITE_LOCKER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
conn.execute("ROLLBACK")
"""

POSTGRES_LOCKER = """
import psycopg, sys
with psycopg.connect(sys.argv[1]) as conn:
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (int(sys.argv[2]),))
    print("locked", flush=True)
    sys.stdin.read()
    conn.rollback()
"""


@contextmanager
def write_lock(url: str) -> Iterator[None]:
    """Another process holds the database's write lock until the block ends."""
    if ON_POSTGRES:
        args = ["-c", POSTGRES_LOCKER, libpq_url(url), str(FEED_LOCK_KEY)]
    else:
        database = make_url(url).database
        assert database is not None
        args = ["-c", SQLITE_LOCKER, database]
    locker = subprocess.Popen(
        [sys.executable, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        yield
    finally:
        assert locker.stdin is not None and locker.stdout is not None
        locker.stdin.close()  # the locker rolls back and exits
        assert locker.wait(timeout=10) == 0
        locker.stdout.close()


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    assert response.json()["status"] == 503


def test_write_lock_held_too_long(database: Database, serve: Callable[..., LiveServer]) -> None:
    server = serve(database.url)
    auth = database.auth()
    patch_headers = {**auth, "Content-Type": "application/merge-patch+json"}
    with httpx.Client(base_url=server.base_url, timeout=CLIENT_TIMEOUT) as http:
        before = http.post("/v1/events", json=event_body("2025-04-10-before-lock"), headers=auth)
        assert before.status_code == 201, before.text

        with write_lock(database.url), ThreadPoolExecutor(4) as pool:
            calls = {
                "post": lambda: http.post(
                    "/v1/events",
                    json=event_body("2025-04-10-during-lock"),
                    headers={**auth, "Idempotency-Key": "during-lock"},
                ),
                "patch": lambda: http.patch(
                    "/v1/events/2025-04-10-before-lock",
                    json={"title": "Patched during the lock"},
                    headers={**patch_headers, "If-Match": '"1"'},
                ),
                "read": lambda: http.get("/v1/events/2025-04-10-before-lock"),
                "ready": lambda: http.get("/readyz"),
            }
            futures = {name: pool.submit(call) for name, call in calls.items()}
            # No hang: the client gives up after CLIENT_TIMEOUT, which a request still waiting
            # on the lock would hit.
            results = {name: future.result() for name, future in futures.items()}

        for name in ("post", "patch"):
            assert_unavailable(results[name])
        # Each gave up on the lock itself (SQLite's busy_timeout, PostgreSQL's lock_timeout),
        # not on anything else: the server says so in its log.
        lock_waits = [
            line
            for line in server.log().splitlines()
            if "database unavailable" in line
            and ("database is locked" in line or "lock timeout" in line)
        ]
        assert len(lock_waits) >= 2, server.log()[-2000:]
        assert results["read"].status_code == 200  # readers pass a writer
        assert results["read"].json()["title"] == "Statement 2025-04-10-before-lock"
        assert results["ready"].status_code == 200

        # The lock is gone: the same process writes again, and the refused writes had written
        # nothing (the same If-Match still matches, the same Idempotency-Key creates).
        retried = http.post(
            "/v1/events",
            json=event_body("2025-04-10-during-lock"),
            headers={**auth, "Idempotency-Key": "during-lock"},
        )
        assert retried.status_code == 201, retried.text
        patched = http.patch(
            "/v1/events/2025-04-10-before-lock",
            json={"title": "Patched after the lock"},
            headers={**patch_headers, "If-Match": '"1"'},
        )
        assert patched.status_code == 200, patched.text
        assert patched.headers["etag"] == '"2"'
    assert server.process is not None and server.process.poll() is None


@pytest.mark.skipif(not ON_POSTGRES, reason="a database server that refuses connections")
def test_database_refuses_connections(
    database: Database, serve: Callable[..., LiveServer], receiver: Receiver
) -> None:
    name = make_url(database.url).database
    admin = create_engine(
        make_url(database.url).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    # The embedded webhook worker runs too: it must ride out the outage and deliver afterwards.
    server = serve(database.url, WEBHOOK_WORKER="embedded", WEBHOOK_ALLOWED_SUBNETS=",".join(LOCAL))
    assert server.process is not None
    pid = server.process.pid
    auth = database.auth()
    patch_headers = {**auth, "Content-Type": "application/merge-patch+json"}
    with httpx.Client(base_url=server.base_url, timeout=CLIENT_TIMEOUT) as http:
        hook = http.post(
            "/v1/webhook-endpoints",
            json={"url": receiver.url("/outage"), "event_types": ["event.created"]},
            headers=database.auth("hooks"),
        )
        assert hook.status_code == 201, hook.text
        acked = http.post("/v1/events", json=event_body("2025-04-10-before-outage"), headers=auth)
        assert acked.status_code == 201, acked.text
        acked = http.patch(
            "/v1/events/2025-04-10-before-outage",
            json={"title": "Acknowledged before the outage"},
            headers={**patch_headers, "If-Match": '"1"'},
        )
        assert acked.status_code == 200, acked.text
        for _ in range(4):  # fill the pool: these connections die in the outage
            assert http.get("/v1/timeline?limit=5").status_code == 200

        try:
            cut_off(admin, name)
            assert_unavailable(http.get("/v1/timeline?limit=5"))
            assert_unavailable(http.get("/v1/events/2025-04-10-before-outage"))
            assert_unavailable(
                http.post(
                    "/v1/events",
                    json=event_body("2025-04-10-during-outage"),
                    headers={**auth, "Idempotency-Key": "during-outage"},
                )
            )
            assert_unavailable(
                http.patch(
                    "/v1/events/2025-04-10-before-outage",
                    json={"title": "Patched during the outage"},
                    headers={**patch_headers, "If-Match": '"2"'},
                )
            )
            ready = http.get("/readyz")
            assert ready.status_code == 503 and "retry-after" in ready.headers
            assert http.get("/healthz").status_code == 200  # the process itself is fine
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))
            admin.dispose()

        # Back without a restart: stale pooled connections are replaced on checkout.
        wait_for(lambda: http.get("/readyz").status_code == 200, 30, "/readyz never recovered")
        assert server.process.pid == pid and server.process.poll() is None
        event = http.get("/v1/events/2025-04-10-before-outage")
        assert event.status_code == 200
        assert event.json()["title"] == "Acknowledged before the outage"
        assert event.headers["etag"].startswith('"2')
        retried = http.post(
            "/v1/events",
            json=event_body("2025-04-10-during-outage"),
            headers={**auth, "Idempotency-Key": "during-outage"},
        )
        assert retried.status_code == 201, retried.text
        # The webhook worker survived the outage: the event created afterwards is delivered.
        wait_for(
            lambda: any(b"2025-04-10-during-outage" in r.body for r in receiver.at("/outage")),
            60,
            "the webhook worker did not recover from the outage",
        )
        # Unsubscribe, so that later tests' events queue nothing for this receiver.
        gone = http.delete(
            f"/v1/webhook-endpoints/{hook.json()['id']}", headers=database.auth("hooks")
        )
        assert gone.status_code == 204
    failures = server.log().count("turn failed")
    assert failures < 20, f"the worker logged {failures} failures: it does not back off"

"""`kill -9` in the middle of a burst of concurrent writes: after a restart every write the API
acknowledged is there exactly as acknowledged, and nothing is half-written.

A write is acknowledged only after its transaction committed (app/db.py), so the crash can only
cost the writes in flight, and each of those is all or nothing: absent, or complete with its
participants, sources and revision. A client that retries an unanswered POST with the same
Idempotency-Key gets the event exactly once. (SQLite runs with `synchronous=NORMAL` in WAL mode,
which is durable against a process crash; only a power loss could undo the last commits.)
"""

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi.testclient import TestClient

from app.main import create_app
from tests.conftest import ON_POSTGRES
from tests.faults.conftest import PATIENCE, Database, event_body, wait_for
from tests.live import LiveServer
from tests.webhooks.conftest import hook_settings

WRITERS = 4
PATCHES_PER_EVENT = 2
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


@dataclass
class Write:
    """One request and what became of it: `acked` (2xx), `unanswered` (sent, the server died
    before answering), `refused` (could not connect: never sent) or another status code."""

    method: str
    event_id: str
    title: str
    version: int  # the version the event has if this write is applied
    key: str | None = None
    outcome: str = "pending"
    retries: int = 0
    body: dict[str, Any] = field(default_factory=dict)


def send(http: httpx.Client, auth: dict[str, str], w: Write) -> httpx.Response:
    if w.method == "POST":
        assert w.key is not None
        return http.post(
            "/v1/events",
            json=event_body(w.event_id, w.title),
            headers={**auth, "Idempotency-Key": w.key},
        )
    return http.patch(
        f"/v1/events/{w.event_id}",
        json={"title": w.title},
        headers={**auth, **MERGE_PATCH, "If-Match": f'"{w.version - 1}"'},
    )


def write(http: httpx.Client, auth: dict[str, str], w: Write) -> None:
    try:
        response = send(http, auth, w)
        # A 503 wrote nothing (a writer kept waiting past the lock timeout on a busy machine):
        # retry as a client would, with the same If-Match or Idempotency-Key.
        while response.status_code == 503 and w.retries < 20:
            w.retries += 1
            time.sleep(0.2)
            response = send(http, auth, w)
    except httpx.ConnectError:
        w.outcome = "refused"
        return
    except httpx.TransportError:
        w.outcome = "unanswered"
        return
    w.outcome = "acked" if response.is_success else str(response.status_code)
    if response.is_success:
        w.body = response.json()


def burst(base_url: str, auth: dict[str, str], n: int, log: list[Write]) -> None:
    """One writer: create an event, patch it twice, next event; until the server is gone."""
    with httpx.Client(base_url=base_url, timeout=30) as http:
        for i in range(10_000):
            event_id = f"2025-04-10-crash-w{n}-e{i}"
            writes = [Write("POST", event_id, f"Crash test w{n} e{i} v1", 1, key=event_id)]
            writes += [
                Write("PATCH", event_id, f"Crash test w{n} e{i} v{v}", v)
                for v in range(2, PATCHES_PER_EVENT + 2)
            ]
            for w in writes:
                log.append(w)
                write(http, auth, w)
                if w.outcome != "acked":
                    return


def served(body: dict[str, Any]) -> dict[str, Any]:
    """The event with its permalink (and the citation quoting it) cut to path and query: the
    server that acknowledged a write and the one after the restart answer at other addresses,
    and the pinned version is what must survive."""
    link = body["permalink"]
    relative = link[link.index("/v1/events/") :]
    return {**body, "permalink": relative, "citation": body["citation"].replace(link, relative)}


def test_kill_9_during_concurrent_writes(
    database: Database, serve: Callable[..., LiveServer]
) -> None:
    auth = database.auth()
    server = serve(database.url)
    assert server.process is not None
    logs: list[list[Write]] = [[] for _ in range(WRITERS)]
    threads = [
        threading.Thread(target=burst, args=(server.base_url, auth, n, logs[n]))
        for n in range(WRITERS)
    ]
    for thread in threads:
        thread.start()
    wait_for(
        lambda: sum(w.outcome == "acked" for log in logs for w in log) >= 16,
        PATIENCE,
        "the writers did not get going",
    )
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=10)
    for thread in threads:
        thread.join(timeout=60)
    writes = [w for log in logs for w in log]
    # Every writer was cut off by the crash, not by an error of the API.
    assert {w.outcome for w in writes} <= {"acked", "unanswered", "refused"}, writes
    assert all(log[-1].outcome != "acked" for log in logs)

    # The restart: a new application on the same database, in this process (it is the same code
    # a new server process would run, without a second interpreter start).
    with TestClient(create_app(hook_settings(database.url))) as http:
        for log in logs:
            by_event: dict[str, list[Write]] = {}
            for w in log:
                by_event.setdefault(w.event_id, []).append(w)
            for event_id, event_writes in by_event.items():
                check_event(http, auth, event_id, event_writes)
    check_integrity(database)


def check_event(
    http: httpx.Client | TestClient, auth: dict[str, str], event_id: str, writes: list[Write]
) -> None:
    acked = [w for w in writes if w.outcome == "acked"]
    unanswered = [w for w in writes if w.outcome == "unanswered"]
    response = http.get(f"/v1/events/{event_id}")
    if not acked:
        # The POST itself was cut off: the event is absent or complete, never partial. A retry
        # with the same Idempotency-Key settles it either way, and creates it only once.
        assert response.status_code in (200, 404), response.text
        if response.status_code == 200:
            assert unanswered and response.json()["title"] == unanswered[0].title
        if unanswered:
            post = unanswered[0]
            retried = http.post(
                "/v1/events",
                json=event_body(event_id, post.title),
                headers={**auth, "Idempotency-Key": post.key or ""},
            )
            assert retried.status_code == 201, retried.text
            assert http.get(f"/v1/events/{event_id}").headers["etag"].startswith('"1-')
        return
    assert response.status_code == 200, response.text
    last = acked[-1]
    version = int(response.headers["etag"].strip('"').split("-")[0])
    if version == last.version:
        assert served(response.json()) == served(last.body)  # exactly as acknowledged
    else:
        # Only the write in flight at the crash may have committed without its answer.
        assert unanswered and version == last.version + 1 == unanswered[0].version, event_id
        assert response.json()["title"] == unanswered[0].title
    history = http.get(f"/v1/events/{event_id}/revisions").json()["items"]
    assert [r["version"] for r in sorted(history, key=lambda r: r["version"])] == list(
        range(1, version + 1)
    )


def check_integrity(database: Database) -> None:
    """No half-written record anywhere in the database, not only in the events checked above."""
    missing = {
        "events without a source": "SELECT count(*) FROM event e WHERE NOT EXISTS"
        " (SELECT 1 FROM event_source s WHERE s.event_id = e.id)",
        "events without a participant": "SELECT count(*) FROM event e WHERE NOT EXISTS"
        " (SELECT 1 FROM event_participant p WHERE p.event_id = e.id)",
        "orphan participants": "SELECT count(*) FROM event_participant p WHERE NOT EXISTS"
        " (SELECT 1 FROM event e WHERE e.id = p.event_id)",
        "orphan event sources": "SELECT count(*) FROM event_source s WHERE NOT EXISTS"
        " (SELECT 1 FROM event e WHERE e.id = s.event_id)",
        "orphan tags": "SELECT count(*) FROM event_tag t WHERE NOT EXISTS"
        " (SELECT 1 FROM event e WHERE e.id = t.event_id)",
        "orphan claims": "SELECT count(*) FROM claim c WHERE NOT EXISTS"
        " (SELECT 1 FROM event e WHERE e.id = c.event_id)",
        "revisions of no event": "SELECT count(*) FROM revision r WHERE r.resource = 'event'"
        " AND NOT EXISTS (SELECT 1 FROM event e WHERE e.public_id = r.resource_key)",
        # An event with a history has one revision per version, the latest being its version.
        "events whose history and version disagree": "SELECT count(*) FROM event e JOIN"
        " (SELECT resource_key, count(*) AS n, max(version) AS v FROM revision"
        " WHERE resource = 'event' GROUP BY resource_key) r ON r.resource_key = e.public_id"
        " WHERE r.n <> e.version OR r.v <> e.version",
        "written events without a history": "SELECT count(*) FROM event e"
        " WHERE e.public_id LIKE '2025-04-10-crash-%' AND NOT EXISTS"
        " (SELECT 1 FROM revision r WHERE r.resource = 'event' AND r.resource_key = e.public_id)",
    }
    found = {what: database.scalar(sql) for what, sql in missing.items()}
    assert found == dict.fromkeys(missing, 0)
    if not ON_POSTGRES:
        assert database.rows("PRAGMA integrity_check") == [("ok",)]
        assert database.rows("PRAGMA foreign_key_check") == []

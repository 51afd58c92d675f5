"""The change feed skips no commit when writers commit out of order.

On PostgreSQL writers run side by side: a transaction can draw a revision id, stay open, and
commit after another that drew a larger id. Here writer A records a revision and holds its
transaction open while writer B records one (a larger id) and commits; every reader in between
(`GET /v1/changes`, the live stream's reads and its start, a real SSE client resuming with
Last-Event-ID) must hold back B's change until A commits, and then serve both, in id order.
A feed that served B at once would move its reader's position past A's id, and A's change
would never be served: each test fails on such a design. On SQLite a second writer waits for
the first, so the out-of-order case cannot arise; the feed there has no horizon.
"""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.db import begin_write, feed_horizon
from app.events import documents
from app.events import service as events
from app.events.schemas import EventCreate
from app.models import Event, EventDocument, EventSource, Revision, Source
from app.revisions import service as revisions
from app.stream import service as stream
from app.stream.schemas import StreamQuery
from tests.conftest import ON_POSTGRES, Writable, stale_documents
from tests.helpers import event_body
from tests.live import LiveServer
from tests.sse import Stream

on_postgres = pytest.mark.skipif(not ON_POSTGRES, reason="writers run side by side on PostgreSQL")


def body(event_id: str) -> dict[str, Any]:
    return event_body(
        id=event_id,
        date=event_id[:10],
        participants=[{"state": "NER", "role": "initiator"}],
        # A source of its own: two writers creating one source would wait for each other.
        sources=[{"url": f"https://example.org/test/{event_id}", "publisher": "Feed Test"}],
    )


@contextmanager
def open_writer(w: Writable, event_id: str) -> Iterator[tuple[Session, int]]:
    """Writer A: an event created and its revision recorded (its id drawn), the transaction
    left open on a connection of its own until the block ends, then committed."""
    with w.session() as session:
        begin_write(session)
        events.create(session, EventCreate.model_validate(body(event_id)), "test")
        session.flush()
        drawn = session.scalars(select(Revision.id).where(Revision.resource_key == event_id)).one()
        yield session, drawn
        session.commit()


def newest(w: Writable) -> int:
    with w.session() as session:
        return revisions.data_version(session)[0]


def keys(items: list[dict[str, Any]]) -> list[str]:
    """The events among the changes (each create also records its new source)."""
    return [item["id"] for item in items if item["resource"] == "event"]


def test_the_feed_serves_every_commit_after_a_position(writable: Writable) -> None:
    """Both databases: with no writer open, every committed change is served at once."""
    w = writable
    before = revisions.encode_position(newest(w))
    for event_id in ["2025-07-01-feed-a", "2025-07-02-feed-b"]:
        r = w.client.post("/v1/events", json=body(event_id), headers=w.auth())
        assert r.status_code == 201, r.text
    page = w.client.get("/v1/changes", params={"since": before}).json()
    assert keys(page["items"]) == ["2025-07-01-feed-a", "2025-07-02-feed-b"]
    with w.session() as session:
        horizon = feed_horizon(session)
        assert (horizon is None) == (not ON_POSTGRES)
        assert horizon is None or horizon >= page["items"][-1]["revision"]
        assert revisions.position_now(session) == page["items"][-1]["revision"]


@on_postgres
def test_a_reader_never_skips_a_writer_that_commits_late(writable: Writable) -> None:
    w = writable
    start = revisions.encode_position(newest(w))
    served: list[dict[str, Any]] = []
    with open_writer(w, "2025-07-03-late-a") as (_a, a_id):
        r = w.client.post("/v1/events", json=body("2025-07-04-early-b"), headers=w.auth())
        assert r.status_code == 201, r.text
        with w.session() as session:
            b_id = session.scalars(
                select(Revision.id).where(Revision.resource_key == "2025-07-04-early-b")
            ).one()
        assert b_id > a_id
        # B has committed, A has not: B's change waits for A's.
        page = w.client.get("/v1/changes", params={"since": start}).json()
        served += page["items"]
        assert keys(page["items"]) == []
        assert revisions.decode_position(page["next_since"]) < a_id
        # The event itself is readable at once: only the feed waits.
        assert w.client.get("/v1/events/2025-07-04-early-b").status_code == 200
    page = w.client.get("/v1/changes", params={"since": page["next_since"]}).json()
    served += page["items"]
    assert keys(served) == ["2025-07-03-late-a", "2025-07-04-early-b"]
    revisions_served = [item["revision"] for item in served]
    assert revisions_served == sorted(revisions_served)
    assert {a_id, b_id} <= set(revisions_served)


@on_postgres
def test_the_stream_holds_back_what_a_late_writer_could_precede(writable: Writable) -> None:
    """The live stream's own reads and the position a stream without Last-Event-ID starts
    from (the newest revision would skip A)."""
    w = writable
    start = newest(w)
    with open_writer(w, "2025-07-05-late-a") as (_a, a_id):
        r = w.client.post("/v1/events", json=body("2025-07-06-early-b"), headers=w.auth())
        assert r.status_code == 201, r.text
        with w.session() as session:
            assert stream.read(session, start, StreamQuery()).events == []
            batch = stream.read(session, start, StreamQuery(state=["NER"]))
            assert batch.events == []
            assert batch.last < a_id
            fresh = stream.start(session, StreamQuery(), None)
            assert fresh < a_id
    with w.session() as session:
        after = stream.read(session, batch.last, StreamQuery(state=["NER"]))
        from_fresh = stream.read(session, fresh, StreamQuery())
    # Filtered: the events' changes only, A's first.
    assert [b"2025-07-05-late-a" in e for e in after.events] == [True, False]
    assert [b"2025-07-06-early-b" in e for e in after.events] == [False, True]
    assert sum(b'"resource":"event"' in e for e in from_fresh.events) == 2


@pytest.fixture
def live(writable: Writable, tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(writable.url, tmp_path / "server.log", STREAM_HEARTBEAT_SECONDS="0.3") as s:
        yield s


@on_postgres
def test_an_sse_client_resuming_with_last_event_id_gets_the_late_commit(
    writable: Writable, live: LiveServer
) -> None:
    w = writable
    last_event_id = revisions.encode_position(newest(w))
    http = httpx.Client(base_url=live.base_url, headers=w.auth(), timeout=30)
    with open_writer(w, "2025-07-07-late-a") as (_a, a_id):
        r = http.post("/v1/events", json=body("2025-07-08-early-b"))
        assert r.status_code == 201, r.text
        url = f"{live.base_url}/v1/changes/stream"
        client = Stream(url, headers={"Last-Event-ID": last_event_id}).start()
        # A heartbeat comes only after a read that found nothing more to send: the stream has
        # read the feed while B was committed and A open.
        assert client.comments.get(timeout=30) == "stream open"
        assert client.comments.get(timeout=30) == "heartbeat"
    try:
        # Each create records its source, then its event.
        got = client.take(4)
        assert [e.data["resource"] for e in got] == ["source", "event"] * 2
        assert [e.data["id"] for e in got][1::2] == ["2025-07-07-late-a", "2025-07-08-early-b"]
        assert got[1].data["revision"] == a_id
        assert got[1].id == revisions.encode_position(a_id)
        assert client.nothing_more() == []
    finally:
        client.close()
        http.close()
    with writable.session() as session:
        assert session.scalar(select(Event.id).where(Event.public_id == "2025-07-07-late-a"))


@on_postgres
def test_two_writers_rewriting_one_document_both_land(writable: Writable) -> None:
    """Writer A changes a source and rewrites the document of an event citing it, and stays
    open; writer B edits that event through the API and must wait for A's document row, then
    write a document holding both changes (no lost update, no duplicate row)."""
    w = writable
    with w.session() as session:
        source_id, event_id, public_id = session.execute(
            select(EventSource.source_id, Event.id, Event.public_id)
            .join(Event, Event.id == EventSource.event_id)
            .where(Event.deleted_at.is_(None))
            .order_by(Event.id)
            .limit(1)
        ).one()
    with w.session() as a:
        begin_write(a)
        source = a.get_one(Source, source_id)
        source.publisher = "Renamed by writer A"
        a.flush()
        documents.refresh(a)  # the write step's document rewrite, done now: A holds the row
        edit: dict[str, Any] = {}

        def b() -> None:
            edit["response"] = w.client.patch(
                f"/v1/events/{public_id}",
                json={"title": "Retitled by writer B"},
                headers={**w.auth(), "If-Match": "*"},
            )

        thread = threading.Thread(target=b)
        thread.start()
        wait_for_a_lock_wait(w)
        a.commit()
    thread.join(timeout=60)
    assert edit["response"].status_code == 200, edit["response"].text
    assert stale_documents(w.engine) == []
    doc = w.client.get(f"/v1/events/{public_id}").json()
    assert doc["title"] == "Retitled by writer B"
    assert "Renamed by writer A" in orjson.dumps(doc).decode()
    with w.session() as session:
        assert session.scalar(select(func.count()).where(EventDocument.event_id == event_id)) == 1


def wait_for_a_lock_wait(w: Writable) -> None:
    """Until some backend of this database waits for a lock (writer B, for A's row)."""
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + 30
    with w.engine.connect() as conn:
        while conn.execute(waiting).scalar_one() == 0:
            assert time.monotonic() < deadline, "writer B never waited for writer A"
            time.sleep(0.02)
            conn.rollback()

"""Stored event documents (app/events/documents.py): every commit that changes what an event is
served as rewrites its stored copy, and reads never serve a stale or missing one.

The `writable` fixture also checks, when each write-test module ends, that every stored document
equals the one its tables give (tests/conftest.py), so the other write tests check this too.
"""

import datetime as dt
import subprocess
import sys
from typing import Any

import orjson
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.orm import Session

from app.config import PROJECT_ROOT
from app.events import csvline, documents
from app.models import Event, EventDocument
from tests.conftest import ON_POSTGRES, Writable, stale_documents
from tests.test_writes import SOURCE, create, new_event


def stored_body(w: Writable, public_id: str) -> Any:
    with w.session() as s:
        body = s.scalar(
            select(EventDocument.body)
            .join(Event, Event.id == EventDocument.event_id)
            .where(Event.public_id == public_id)
        )
    return None if body is None else orjson.loads(body)


def timeline_item(w: Writable, public_id: str) -> dict[str, Any]:
    items = w.client.get("/v1/timeline", params={"from": "2025-04", "limit": 200}).json()["items"]
    found: dict[str, Any] = next(item for item in items if item["id"] == public_id)
    return found


def test_the_seed_stores_every_document(writable: Writable) -> None:
    with writable.session() as s:
        assert documents.outdated(s) == []
        assert s.scalar(select(func.count()).select_from(EventDocument)) == s.scalar(
            select(func.count()).select_from(Event)
        )
    assert stale_documents(writable.engine) == []


def test_create_patch_and_delete_keep_the_stored_copy_in_step(writable: Writable) -> None:
    w = writable
    event_id = "2025-04-21-documents-lifecycle"
    created = create(w, new_event(event_id, title="First title")).json()
    assert stored_body(w, event_id)["title"] == "First title"
    assert timeline_item(w, event_id)["updated_at"] == created["updated_at"]

    patched = w.client.patch(
        f"/v1/events/{event_id}",
        json={"title": "Second title", "tags": ["test", "documents"]},
        headers={**w.auth(), "If-Match": "*"},
    )
    assert patched.status_code == 200, patched.text
    stored = stored_body(w, event_id)
    assert stored["title"] == "Second title" and stored["tags"] == ["documents", "test"]
    assert timeline_item(w, event_id) == stored

    deleted = w.client.delete(f"/v1/events/{event_id}", headers={**w.auth(), "If-Match": "*"})
    assert deleted.status_code == 204
    items = w.client.get("/v1/timeline", params={"from": "2025-04", "limit": 200}).json()["items"]
    assert event_id not in {item["id"] for item in items}
    assert stale_documents(w.engine) == []


def test_editing_a_source_rewrites_every_event_citing_it(writable: Writable) -> None:
    w = writable
    shared = {**SOURCE, "url": "https://example.org/test/shared-by-two-events"}
    create(w, new_event("2025-04-21-documents-cites-a", sources=[shared]))
    create(w, new_event("2025-04-21-documents-cites-b", sources=[shared]))
    found = w.client.get("/v1/sources", params={"q": "shared-by-two-events"}).json()["items"]
    response = w.client.patch(
        f"/v1/sources/{found[0]['id']}",
        json={"title": "A title added later"},
        headers={**w.auth(), "If-Match": "*"},
    )
    assert response.status_code == 200, response.text
    for event_id in ("2025-04-21-documents-cites-a", "2025-04-21-documents-cites-b"):
        assert stored_body(w, event_id)["sources"][0]["title"] == "A title added later"
        assert timeline_item(w, event_id)["sources"][0]["title"] == "A title added later"

    # A source written inline by another event's write changes the first two as well.
    renamed = {**shared, "publisher": "Renamed Gazette"}
    create(w, new_event("2025-04-21-documents-cites-c", sources=[renamed]))
    for event_id in ("2025-04-21-documents-cites-a", "2025-04-21-documents-cites-b"):
        assert stored_body(w, event_id)["sources"][0]["publisher"] == "Renamed Gazette"
    assert stale_documents(w.engine) == []


def test_a_refused_write_leaves_the_stored_copy_alone(writable: Writable) -> None:
    w = writable
    event_id = "2025-04-21-documents-refused"
    create(w, new_event(event_id))
    before = stored_body(w, event_id)
    refused = w.client.patch(
        f"/v1/events/{event_id}",
        json={"title": "Never stored", "participants": [{"state": "XXX", "role": "initiator"}]},
        headers={**w.auth(), "If-Match": "*"},
    )
    assert refused.status_code == 422
    assert stored_body(w, event_id) == before


def test_missing_and_outdated_copies_are_assembled_on_read_then_refilled(
    writable: Writable,
) -> None:
    w = writable
    params = {"from": "2025-04", "limit": 200}
    served = w.client.get("/v1/timeline", params=params)
    exported = w.client.get("/v1/timeline", params={"from": "2025-04", "format": "csv"})
    lines = w.client.get("/v1/timeline", params={"from": "2025-04", "format": "ndjson"})
    with w.session() as s, s.begin():
        ids = list(s.scalars(select(Event.id).where(Event.date >= dt.date(2025, 4, 1))))
        s.execute(delete(EventDocument).where(EventDocument.event_id.in_(ids[::2])))
        # A row of another format is what an upgrade that changed the shape leaves behind.
        s.execute(
            update(EventDocument)
            .where(EventDocument.event_id.in_(ids[1::2]))
            .values(format=documents.FORMAT - 1, body=b'{"stale": true}', csv="stale\r\n")
        )
    fresh = {"Cache-Control": "no-cache"}
    assert w.client.get("/v1/timeline", params=params, headers=fresh).content == served.content
    again = w.client.get("/v1/timeline", params={"from": "2025-04", "format": "csv"}, headers=fresh)
    assert again.text == exported.text
    ndjson = {"from": "2025-04", "format": "ndjson"}
    assert w.client.get("/v1/timeline", params=ndjson, headers=fresh).text == lines.text

    done = subprocess.run(
        [sys.executable, "-m", "app.events.documents", "--database-url", w.url],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"documents: {len(ids):,} written" in done.stderr.splitlines()[-1]
    assert stale_documents(w.engine) == []


def test_reads_inside_a_writing_transaction_see_its_changes(writable: Writable) -> None:
    w = writable
    create(w, new_event("2025-04-21-documents-uncommitted"))
    with w.session() as s:
        event = s.scalars(
            select(Event).where(Event.public_id == "2025-04-21-documents-uncommitted")
        ).one()
        event.title = "Changed, not yet committed"
        s.flush()
        (doc,) = documents.documents(s, [event.id])
        assert doc["title"] == "Changed, not yet committed"
        s.rollback()
    assert stored_body(w, "2025-04-21-documents-uncommitted")["title"] == "A test statement"


def test_the_csv_export_copies_the_stored_lines(writable: Writable) -> None:
    """A CSV export streams each event's stored line as it is (no document parsed), and the
    line is the one rendering the served document gives."""
    w = writable
    event_id = "2025-04-22-documents-csv"
    create(w, new_event(event_id, title='A "quoted", title'))
    with w.session() as s, s.begin():
        row = s.execute(
            select(EventDocument.event_id, EventDocument.csv)
            .join(Event, Event.id == EventDocument.event_id)
            .where(Event.public_id == event_id)
        ).one()
        assert row.csv == csvline.csv_line(timeline_item(w, event_id))
        s.execute(
            update(EventDocument)
            .where(EventDocument.event_id == row.event_id)
            .values(csv=row.csv.replace("Written by the test suite.", "Read from the stored line"))
        )
    params = {"from": "2025-04-20", "to": "2025-04-20", "format": "csv"}
    text = w.client.get("/v1/timeline", params=params, headers={"Cache-Control": "no-cache"}).text
    assert text.startswith(csvline.CSV_HEADER)
    assert '"A ""quoted"", title"' in text and "Read from the stored line" in text
    with w.session() as s, s.begin():
        documents.write(s, [row.event_id])


def test_finding_the_outdated_documents_reads_each_table_once(
    engine: Engine, session: Session
) -> None:
    """`python -m app.events.documents` and bench.synth look for events without a current
    document. As NOT IN over every stored id, PostgreSQL could not hash the million ids in
    work_mem and probed the list once per event: it ran for hours at 1M events. NOT EXISTS is
    an anti-join there, and a lookup by key on SQLite."""
    compiled = documents.OUTDATED.compile(dialect=engine.dialect)
    conn = session.connection()
    if ON_POSTGRES:
        plan = "\n".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params))
        assert "Anti Join" in plan, plan
        assert "SubPlan" not in plan, plan
    else:
        positional = tuple(compiled.params[name] for name in compiled.positiontup or ())
        plan = "\n".join(
            r[3] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", positional)
        )
        assert "SEARCH event_document USING INTEGER PRIMARY KEY" in plan, plan

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, func, make_url, select

from app.db import Base

PROBLEM = "application/problem+json"


def assert_problem(response: Any, status: int, param: str | None = None) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status, naming `param` if given."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("https://")
    assert body["title"]
    assert body["detail"]
    if param is not None:
        locs = [error["loc"] for error in body["errors"]]
        assert any(param in [str(part) for part in loc] for loc in locs), body
        assert param in body["detail"], body
    return body


def event_body(**changes: Any) -> dict[str, Any]:
    """A valid POST /v1/events body (the hostile-input tests' statement), with `changes`."""
    body: dict[str, Any] = {
        "id": "2025-04-21-hostile-statement",
        "kind": "diplomatic_action",
        "category": "statement",
        "date": "2025-04-21",
        "date_precision": "day",
        "title": "A hostile statement",
        "summary": "Written by the hostile-input tests.",
        "participants": [{"state": "MLI", "role": "initiator"}],
        "sources": [{"url": "https://example.org/hostile", "publisher": "Test"}],
    }
    body.update(changes)
    return body


def ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def libpq_url(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as psycopg and libpq take it (no `+psycopg`)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# Their rows, not only their counts, must be unchanged. api_key is left out: reading with a key
# stamps its `last_used_at` (after the response), which is bookkeeping rather than data.
CHECKSUMMED = (
    "event",
    "event_participant",
    "claim",
    "state",
    "organisation",
    "membership",
    "source",
    "revision",
)


def fingerprint(engine: Engine) -> dict[str, Any]:
    """The row count of every table and a checksum of the editorial tables' rows: equal before
    and after requests that must write nothing."""
    with engine.connect() as conn:
        counts = {
            table.name: conn.scalar(select(func.count()).select_from(table))
            for table in Base.metadata.sorted_tables
        }
        sums = {}
        for name in CHECKSUMMED:
            table = Base.metadata.tables[name]
            rows = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
            sums[name] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return {"counts": counts, "checksums": sums}


@contextmanager
def writes_nothing(engine: Engine, what: str) -> Iterator[None]:
    """Fails if the database's `fingerprint` changed across the block, naming what changed."""
    before = fingerprint(engine)
    yield
    after = fingerprint(engine)
    changed = {
        part: [n for n in before[part] if before[part][n] != after[part].get(n)] for part in before
    }
    assert after == before, f"{what} changed the database: {changed}"

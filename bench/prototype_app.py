"""Issue 7's "tuned prototype", rebuilt as a second ceiling beside bare FastAPI.

The issue's targets came from a prototype measured before any code existed: a sync endpoint,
SQLAlchemy Core rows, orjson, the thread pool and the connection pool capped at 2, no
middleware. This is that design serving the headline page (one state and a date window, 50
events, the stored documents as they are) from the benchmark's database, so that a run shows
what the design behind the targets reaches on the machine at hand. It has none of what the API
adds around a page: validation problems, cursors that are signed, ETags, CORS, security
headers, request ids and access lines, rate and size limits, the response cache, gzip. It is
never deployed. `DATABASE_URL` names the database, as for the API.
"""

import datetime as dt
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import anyio.to_thread
import orjson
from fastapi import FastAPI, Query, Response
from sqlalchemy import create_engine, text

from app.config import normalise_database_url
from app.events.documents import FORMAT

LIMIT = 50
URL = normalise_database_url(os.environ["DATABASE_URL"])
SQLITE = URL.startswith("sqlite")
engine = create_engine(
    URL,
    pool_size=2,
    max_overflow=0,
    **({"connect_args": {"check_same_thread": False}} if SQLITE else {}),
)
with engine.connect() as connection:
    STATES: dict[str, int] = dict(connection.execute(text("SELECT code, id FROM state")).all())
PAGE = text(
    "SELECT p.date, p.public_id, d.body FROM event_participant p"
    " JOIN event e ON e.id = p.event_id"
    " JOIN event_document d ON d.event_id = p.event_id AND d.format = :format"
    " WHERE p.state_id = :state AND p.date >= :start AND p.date <= :end"
    " AND e.deleted_at IS NULL"
    " ORDER BY p.date, p.public_id LIMIT :limit"
)


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    anyio.to_thread.current_default_thread_limiter().total_tokens = 2
    yield


app = FastAPI(lifespan=lifespan)


@app.get("/healthz")
def healthz() -> dict[str, bool]:
    return {"ok": True}


@app.get("/v1/timeline")
def timeline(
    state: str, start: Annotated[str, Query(alias="from")], end: Annotated[str, Query(alias="to")]
) -> Response:
    params: dict[str, Any] = {
        "state": STATES[state],
        "start": dt.date.fromisoformat(start),
        "end": dt.date.fromisoformat(end),
    }
    with engine.connect() as conn:
        rows = conn.execute(PAGE, {**params, "format": FORMAT, "limit": LIMIT + 1}).all()
    last = rows[LIMIT - 1] if len(rows) > LIMIT else None
    body = {
        "items": [orjson.Fragment(row.body) for row in rows[:LIMIT]],
        "next_cursor": f"{last.date}|{last.public_id}" if last else None,
    }
    return Response(orjson.dumps(body), media_type="application/json")

"""Issue 23's practical ceilings for the headline page: the page's own SQL run with no layer
between the endpoint and the database driver.

- SQLite (the inline probe): an `async` FastAPI endpoint that runs the statement on a plain
  `sqlite3` connection directly on the event loop, no thread hop, no SQLAlchemy execution.
- PostgreSQL (the async probe): the same endpoint on an async driver, `PROBE_DRIVER=asyncpg`
  (the default where asyncpg is installed) or `psycopg` (psycopg's AsyncConnection, the driver
  the API ships; the default otherwise), with `PROBE_CONNECTIONS` connections (default 2, the
  API's database threads there): asyncpg's pool, or psycopg's connections in a queue.

The statement is the API's own for the headline page (one state and a date window,
`statements.page_documents`), compiled once for the database's dialect, so the probe and the
API read the same rows the same way and differ only in what runs around the read. The stored
documents are joined with orjson. The probe has none of what the API adds around a page
(validation problems, signed cursors, ETags, CORS, limits, the cache, gzip); it is a measuring
instrument, never deployed. `DATABASE_URL` names the database, as for the API.
"""

import asyncio
import datetime as dt
import importlib.util
import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import orjson
from fastapi import FastAPI, Query, Response
from sqlalchemy import make_url
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Dialect

from app.config import normalise_database_url
from app.events.documents import FORMAT
from app.timeline import planner, statements

LIMIT = 50
URL = make_url(normalise_database_url(os.environ["DATABASE_URL"]))
SQLITE = URL.get_backend_name() == "sqlite"
# asyncpg where it is installed: the faster of the two async drivers on the headline page
# (bench/README.md); psycopg, which the API ships, otherwise.
ASYNCPG = importlib.util.find_spec("asyncpg") is not None
DRIVER = (
    "sqlite3" if SQLITE else os.environ.get("PROBE_DRIVER", "asyncpg" if ASYNCPG else "psycopg")
)
CONNECTIONS = int(os.environ.get("PROBE_CONNECTIONS", "2"))
STATES_SQL = "SELECT code, id FROM state"


def headline_sql(dialect: Dialect) -> tuple[str, list[str]]:
    """The API's statement for one state and a date window, first page, in timeline order, as
    the dialect's SQL and the names of its parameters in order (empty for named styles)."""
    shape = planner.PagePlan(
        planner.Filters(start=dt.date.min, end=dt.date.max, states=(0,)),
        driver=planner.Driver("state", 0),
    ).shape
    compiled = statements.page_documents(shape, False, False).compile(dialect=dialect)
    return compiled.string, list(compiled.positiontup or [])


def values(state: int, start: str, end: str) -> dict[str, Any]:
    dates = (start, end) if SQLITE else (dt.date.fromisoformat(start), dt.date.fromisoformat(end))
    return {"driver": state, "start": dates[0], "end": dates[1], "limit": LIMIT + 1, "param_1": 0}


def page(rows: list[Any]) -> Response:
    """Columns: id, date, public_id, document_format, body, changed_at."""
    last = rows[LIMIT - 1] if len(rows) > LIMIT else None
    body = {
        "items": [orjson.Fragment(row[4]) for row in rows[:LIMIT] if row[3] == FORMAT],
        "next_cursor": f"{last[1]}|{last[2]}" if last else None,
    }
    return Response(orjson.dumps(body), media_type="application/json")


Read = Callable[[int, str, str], Any]
STATES: dict[str, int] = {}


def sqlite_reader() -> Read:
    connection = sqlite3.connect(URL.database or "", check_same_thread=False)
    connection.execute("PRAGMA cache_size=-65536")  # as the API's (app.db.SQLITE_CACHE_KIB)
    STATES.update(connection.execute(STATES_SQL).fetchall())
    sql, names = headline_sql(sqlite_dialect.dialect())

    async def read(state: int, start: str, end: str) -> Any:
        given = values(state, start, end)
        return connection.execute(sql, [given[n] for n in names]).fetchall()

    return read


async def psycopg_reader() -> Read:
    import psycopg

    dsn = URL.set(drivername="postgresql").render_as_string(hide_password=False)
    pool: asyncio.Queue[psycopg.AsyncConnection[Any]] = asyncio.Queue()
    for _ in range(CONNECTIONS):
        pool.put_nowait(await psycopg.AsyncConnection.connect(dsn, autocommit=True))
    first = await pool.get()
    STATES.update(await (await first.execute(STATES_SQL)).fetchall())  # type: ignore[arg-type]
    pool.put_nowait(first)
    sql, _ = headline_sql(postgresql.psycopg.dialect())  # type: ignore[attr-defined]

    async def read(state: int, start: str, end: str) -> Any:
        connection = await pool.get()
        try:
            # Binary results, as the API asks for the stored documents (app.db.BINARY_RESULTS).
            cursor = connection.cursor(binary=True)
            await cursor.execute(sql, values(state, start, end), prepare=True)
            return await cursor.fetchall()
        finally:
            pool.put_nowait(connection)

    return read


async def asyncpg_reader() -> Read:
    import asyncpg  # type: ignore[import-not-found]

    dsn = URL.set(drivername="postgresql").render_as_string(hide_password=False)
    pool = await asyncpg.create_pool(dsn, min_size=CONNECTIONS, max_size=CONNECTIONS)
    STATES.update(dict(await pool.fetch(STATES_SQL)))
    sql, names = headline_sql(postgresql.asyncpg.dialect())  # type: ignore[attr-defined]

    async def read(state: int, start: str, end: str) -> Any:
        given = values(state, start, end)
        return await pool.fetch(sql, *[given[n] for n in names])

    return read


reader: list[Read] = []


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    if DRIVER == "sqlite3":
        reader.append(sqlite_reader())
    elif DRIVER == "asyncpg":
        reader.append(await asyncpg_reader())
    else:
        reader.append(await psycopg_reader())
    yield


app = FastAPI(lifespan=lifespan)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"driver": DRIVER}


@app.get("/v1/timeline")
async def timeline(
    state: str, start: Annotated[str, Query(alias="from")], end: Annotated[str, Query(alias="to")]
) -> Response:
    return page(await reader[0](STATES[state], start, end))

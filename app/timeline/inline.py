"""The plain timeline page read on the event loop, on SQLite: the hot path's fast path.

The headline page (one state or none, a date window, a cursor) is read off an index and stops
after a page: on SQLite its statement takes about as long as the rest of the request. The
general path wraps that read in a trip to a database thread, a Session and SQLAlchemy's
execution (events, result processing), which together cost more than the read; the inline
probe beside the benchmark (bench/probe_app.py) shows the difference (bench/README.md). So
this page's statement, the very one the general path runs (`statements.page_documents`, from
the same plan), compiled once per shape, runs here on a `sqlite3` connection of its own,
directly on the event loop, in autocommit: one statement is one read transaction, which is
all the page needs, since the statement also reads the time of the latest change.

Everything around the read is the general path's: the route's query model validates the query
(in `router.PlainPages`, which takes these requests before the router), the page's cursor is
signed and checked by the service's functions, the router's function builds the response from a
`service.Page`, and the middlewares (ETags, CORS, limits, the response
cache, gzip) see the same response. Whatever this path does not answer exactly the way the
general path would, it hands back (`page` returns None) and the general path answers: another
filter or format, an unknown state code, `from` after `to` (the general path's problems), an
event without its stored document, an empty page (its Last-Modified needs another read), a
busy or failing database. A read that runs longer than INLINE_SECONDS, which would hold up
every other request of this process, is interrupted and handed back the same way.
"""

import datetime as dt
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import Engine
from sqlalchemy.dialects import sqlite

from app.db import SQLITE_CACHE_KIB, SQLITE_PROGRESS_STEPS, sqlite_file
from app.events.documents import FORMAT
from app.schemas import parse_partial_date
from app.timeline import planner, service, statements
from app.timeline.schemas import TimelineQuery

# The fields a plain page may set; any other set field takes the general path.
PLAIN_FIELDS = frozenset({"from_", "to", "state", "order", "limit", "cursor", "format"})
# How long a read may hold the event loop before it is interrupted and redone on a thread: far
# above an indexed page's read, far below what other requests would notice (bench/README.md).
INLINE_SECONDS = 0.05
_DIALECT = sqlite.dialect()
_STATE_ID = "SELECT id FROM state WHERE code = ?"
log = logging.getLogger(__name__)


class _Statement:
    """A page statement compiled for SQLite: its SQL, and how to bind and read its values the
    way SQLAlchemy's execution would (the types' own processors)."""

    def __init__(self, shape: statements.Shape, desc: bool, after: bool) -> None:
        select = statements.page_documents(shape, desc, after)
        compiled = select.compile(dialect=_DIALECT)
        self.sql = compiled.string
        binds = compiled.binds
        self.exact = not any(binds[name].expanding for name in compiled.positiontup or [])
        self.names = list(compiled.positiontup or [])
        self.defaults = {name: binds[name].effective_value for name in self.names}
        self.bind = [
            binds[name].type.dialect_impl(_DIALECT).bind_processor(_DIALECT) for name in self.names
        ]
        types = {column.name: column.type for column in select.selected_columns}
        self.date = types["date"].dialect_impl(_DIALECT).result_processor(_DIALECT, None)
        self.changed_at = (
            types["changed_at"].dialect_impl(_DIALECT).result_processor(_DIALECT, None)
        )

    def values(self, given: dict[str, Any]) -> list[Any]:
        out = []
        for name, bind in zip(self.names, self.bind, strict=True):
            value = given[name] if name in given else self.defaults[name]
            out.append(bind(value) if bind is not None and value is not None else value)
        return out


@lru_cache(maxsize=16)
def _statement(shape: statements.Shape, desc: bool, after: bool) -> _Statement:
    return _Statement(shape, desc, after)


def _processed(process: Callable[[Any], Any] | None, value: Any) -> Any:
    return process(value) if process is not None else value


class InlinePages:
    """The plain page's reads, on one `sqlite3` connection used from the event loop (opened on
    first use, closed with the app). `served` counts the pages answered here, `handed_back` the
    reads that failed or were interrupted."""

    def __init__(self, database: str) -> None:
        self._database = database
        self._connection: sqlite3.Connection | None = None
        self._deadline = math.inf
        # One loop uses it at a time; the lock covers test clients that run apps on loops of
        # their own threads.
        self._lock = threading.Lock()
        self._states: dict[str, int] = {}
        self.served = 0
        # Reads interrupted or failed, whose requests the general path answered.
        self.handed_back = 0

    @classmethod
    def for_engine(cls, engine: Engine) -> "InlinePages | None":
        database = sqlite_file(engine.url)
        if database is None:
            return None
        return cls(database)

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self._database, check_same_thread=False, isolation_level=None)
        # Reads only, and never a wait: a busy database is the general path's to wait for, on
        # a thread.
        connection.execute("PRAGMA query_only=ON")
        connection.execute("PRAGMA busy_timeout=0")
        connection.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        connection.set_progress_handler(self._passed, SQLITE_PROGRESS_STEPS)
        return connection

    def _passed(self) -> bool:
        return time.monotonic() > self._deadline

    def _read(self, sql: str, values: list[Any]) -> list[Any] | None:
        with self._lock:
            try:
                if self._connection is None:
                    self._connection = self._connect()
                self._deadline = time.monotonic() + INLINE_SECONDS
                return self._connection.execute(sql, values).fetchall()
            except sqlite3.Error as exc:
                self.handed_back += 1
                log.info("inline page read failed (%s); the general path answers", exc)
                return None
            finally:
                self._deadline = math.inf

    def _state_id(self, code: str) -> int | None:
        # Codes name the same row for good (service._KNOWN_CODES); an unknown one is looked up
        # every time, as it may have been created since.
        if code not in self._states:
            rows = self._read(_STATE_ID, [code])
            if not rows:
                return None
            self._states[code] = rows[0][0]
        return self._states[code]

    def page(self, query: TimelineQuery, *, cursor_secret: str) -> service.Page | None:
        """The page, or None for the general path to answer (see the module's docstring)."""
        if (
            not query.model_fields_set <= PLAIN_FIELDS
            or len(query.state) > 1
            or query.order == "relevance"
        ):
            return None
        start = parse_partial_date(query.from_) if query.from_ else None
        end = parse_partial_date(query.to, end=True) if query.to else None
        if start and end and start > end:
            return None
        states: tuple[int, ...] = ()
        if query.state:
            state = self._state_id(query.state[0])
            if state is None:
                return None
            states = (state,)
        plan = planner.plan(
            planner.Filters(start=start, end=end, states=states),
            dialect="sqlite",
            ranked=False,
            driven=True,
            one_page=True,
            matches=lambda: 0,  # never asked: no words
        )
        after = service.decode_cursor(cursor_secret, query, query.cursor) if query.cursor else None
        statement = _statement(plan.shape, query.order == "desc", after is not None)
        if not statement.exact:
            return None
        given = {**plan.params, "limit": query.limit + 1}
        if after is not None:
            given["after_date"], given["after_id"] = after
        rows = self._read(statement.sql, statement.values(given))
        # Rows: id, date, public_id, document_format, body, changed_at.
        if not rows or any(row[3] != FORMAT or row[4] is None for row in rows):
            return None
        self.served += 1
        page = rows[: query.limit]
        next_cursor = None
        if len(rows) > query.limit:
            last_date: dt.date = _processed(statement.date, page[-1][1])
            next_cursor = service.encode_cursor(cursor_secret, query, last_date, page[-1][2])
        return service.Page(
            items=[orjson.Fragment(row[4]) for row in page],
            next_cursor=next_cursor,
            total=None,
            changed_at=_processed(statement.changed_at, rows[0][5]),
        )

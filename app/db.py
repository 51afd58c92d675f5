import asyncio
import contextvars
import math
import select
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Hashable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar, TypeVarTuple

import psycopg
from fastapi import Depends, Request
from sqlalchemy import URL, DateTime, Engine, MetaData, create_engine, event, exc, make_url, text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator
from starlette.concurrency import run_in_threadpool

Returned = TypeVar("Returned")
Child = TypeVar("Child")
ChildKey = TypeVar("ChildKey", bound=Hashable)
Args = TypeVarTuple("Args")

# Set before the first migration so that every constraint has a predictable name, which
# errors.py and hand-written migrations can rely on.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "%(table_name)s_%(column_0_N_name)s_key",
    "ck": "%(table_name)s_%(constraint_name)s_check",
    "fk": "%(table_name)s_%(column_0_N_name)s_fkey",
    "pk": "%(table_name)s_pkey",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC instants on both databases.

    SQLite has no time zone type and hands back naive values; normalising here keeps
    `created_at`/`updated_at` comparable and serialised identically on SQLite and PostgreSQL.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a UTC instant is required")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# How long a request waits for a lock another transaction holds (SQLite's busy_timeout,
# PostgreSQL's lock_timeout) before it gives up with a 503. Editorial write transactions last
# milliseconds, so this only runs out when something holds the database far longer than any
# request should: a stuck session, a bulk job, a backup or restore.
LOCK_WAIT_SECONDS = 5
# How long a request waits for a free pooled connection, or for PostgreSQL to accept one.
POOL_TIMEOUT_SECONDS = 10
CONNECT_TIMEOUT_SECONDS = 5
# An execution option: the statement's own limit in seconds (None: none), instead of the
# engine's. For a statement that streams a whole table to an administrator on SQLite, whose
# clock, unlike PostgreSQL's per-FETCH one, runs while the client reads.
STATEMENT_TIMEOUT = "dtl_statement_timeout"
# SQLite calls the progress handler every this many virtual machine instructions: often enough
# to stop within milliseconds, rarely enough to cost nothing measurable on a page.
SQLITE_PROGRESS_STEPS = 10_000
_DEADLINE = "dtl_deadline"

# SQLite's page cache per connection, in KiB (its default is 2 MB). Pages outside it are read
# from the operating system's cache with a system call each, and a page reads many of them; a
# larger cache cut a page's time markedly (bench/README.md). It fills only
# as pages are read, so an idle or small database costs nothing.
SQLITE_CACHE_KIB = 64 * 1024
# For reads that stream a whole table once (exports): they ran slower through the large cache
# (bench/README.md), and would evict the pages that requests keep hot.
SQLITE_STREAM_CACHE_KIB = 2 * 1024


class _Deadline:
    """When the statement running on one SQLite connection must stop (monotonic seconds)."""

    __slots__ = ("at",)

    def __init__(self) -> None:
        self.at = math.inf

    def passed(self) -> bool:
        # SQLite's progress handler: a true result interrupts the statement ("interrupted").
        return time.monotonic() > self.at


def _sqlite_on_connect(
    cache_kib: int, statement_timeout: float | None
) -> Callable[[Any, ConnectionPoolEntry], None]:
    def on_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        if statement_timeout is not None:
            deadline = _Deadline()
            record.info[_DEADLINE] = deadline
            dbapi_connection.set_progress_handler(deadline.passed, SQLITE_PROGRESS_STEPS)
        # pysqlite's own transaction handling breaks SAVEPOINT; let SQLAlchemy emit BEGIN itself
        # (the recipe from SQLAlchemy's SQLite dialect documentation).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={LOCK_WAIT_SECONDS * 1000}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA cache_size=-{cache_kib}")
        cursor.close()

    return on_connect


def _sqlite_deadlines(engine: Engine, statement_timeout: float) -> None:
    """Arm a connection's deadline as each statement starts; disarm it when the connection goes
    back to the pool, so statements SQLAlchemy does not see (a read's BEGIN) are never cut."""

    @event.listens_for(engine, "before_cursor_execute")
    def _arm(conn: Any, _c: Any, _s: str, _p: Any, context: Any, _m: bool) -> None:
        deadline: _Deadline | None = conn.info.get(_DEADLINE)
        if deadline is None:
            return
        limit = statement_timeout
        if context is not None:
            limit = context.execution_options.get(STATEMENT_TIMEOUT, limit)
        deadline.at = math.inf if limit is None else time.monotonic() + limit

    @event.listens_for(engine, "checkin")
    def _disarm(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        deadline: _Deadline | None = record.info.get(_DEADLINE)
        if deadline is not None:
            deadline.at = math.inf


def statement_timed_out(exc: BaseException) -> bool:
    """True for the error a statement gets when its time limit cancels it: PostgreSQL's
    query_canceled (57014; statement_timeout, or an operator's pg_cancel_backend), SQLite's
    "interrupted" (only the progress handler above interrupts)."""
    orig = getattr(exc, "orig", None)
    if isinstance(orig, psycopg.errors.QueryCanceled):
        return True
    return isinstance(orig, sqlite3.OperationalError) and str(orig) == "interrupted"


def sqlite_file(url: URL | str) -> str | None:
    """The file of a SQLite database, which other connections and processes can open; None for
    any other database and for an in-memory one, which is private to its connection."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database
    return database if database and database != ":memory:" else None


def create_db_engine(
    url: str,
    *,
    pool_size: int = 4,
    sqlite_cache_kib: int = SQLITE_CACHE_KIB,
    statement_timeout: float | None = None,
) -> Engine:
    """An engine with the project's connection settings. `statement_timeout` (seconds) limits
    every statement's run time; the API's engines have one, operator tools none."""
    if url.startswith("sqlite"):
        database = sqlite_file(url)
        pool: dict[str, Any] = {}
        if database is not None:
            # The embedded default lives in a git-ignored folder that a fresh clone lacks.
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            pool = {
                "pool_size": pool_size,
                "max_overflow": pool_size,
                "pool_timeout": POOL_TIMEOUT_SECONDS,
            }
        engine = create_engine(url, connect_args={"check_same_thread": False}, **pool)
        event.listen(engine, "connect", _sqlite_on_connect(sqlite_cache_kib, statement_timeout))
        if statement_timeout is not None:
            _sqlite_deadlines(engine, statement_timeout)

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # A write transaction takes SQLite's write lock up front. Otherwise two writers both
            # read, then the second fails to upgrade its lock ("database is locked") instead of
            # waiting and seeing the first one's commit.
            if conn.get_execution_options().get(WRITE_TRANSACTION, False):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                return
            # A read's BEGIN takes no lock, so it neither waits nor fails for want of one: it
            # goes straight to the driver, past SQLAlchemy's execution path (events, result,
            # error wrapping), a noticeable share of a timeline page (bench/README.md).
            conn.connection.driver_connection.execute("BEGIN")

        return engine
    engine = _postgresql_engine(url, pool_size, statement_timeout)
    event.listen(engine, "before_cursor_execute", _binary_results)
    return engine


# An execution option: PostgreSQL sends the statement's results in binary. psycopg asks for
# text unless told otherwise, and SQLAlchemy never tells it; a page's stored documents are bytea,
# which text sends as hex, twice their size, encoded by the server and decoded by the client;
# binary costs both sides less CPU per page (bench/README.md). Set on the statements that read
# stored documents.
BINARY_RESULTS = "dtl_binary_results"


def _binary_results(
    _conn: Any, cursor: Any, _statement: str, _parameters: Any, context: Any, _many: bool
) -> None:
    if context is not None and context.execution_options.get(BINARY_RESULTS):
        cursor.format = psycopg.pq.Format.BINARY


def _postgresql_engine(url: str, pool_size: int, statement_timeout: float | None) -> Engine:
    # _replace_dead_connections lets the service recover from an outage by itself;
    # connect_timeout bounds a server that does not answer at all, lock_timeout a lock that is
    # never released, statement_timeout a statement that runs too long (errors.py: 503).
    options = f"-c lock_timeout={LOCK_WAIT_SECONDS * 1000} -c jit=off"
    if statement_timeout is not None:
        options += f" -c statement_timeout={max(1, round(statement_timeout * 1000))}"
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        connect_args={
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            # JIT compiles plans PostgreSQL thinks costly, such as ranking a common word: the
            # compiling, on every such request, costs more than such a query saves by it
            # (bench/README.md).
            "options": options,
        },
    )
    event.listen(engine, "checkout", _replace_dead_connections(engine.dialect))
    return engine


def _replace_dead_connections(dialect: Dialect) -> Callable[[Any, ConnectionPoolEntry, Any], None]:
    """A pooled connection that died while it waited (a restarted server, a terminated backend)
    is replaced before a request gets it, and so are all the pool's older ones.

    SQLAlchemy's `pool_pre_ping` does this with a `SELECT 1` on every checkout: one of a page's
    four round trips; without it PostgreSQL served more requests a second (bench/README.md). A
    pooled connection is idle, so the server has nothing to send it until it is given a query,
    except when it says goodbye: a server shutting down or a terminated backend sends an error and
    closes the socket, and a crashed one leaves it closed; either makes the socket readable. So
    only a readable socket is pinged, and the ping tells a dead connection from a harmless
    message (a `ParameterStatus` after a configuration reload). What no socket shows, a network
    that silently drops the connection, the ping would not catch either: it would wait for
    TCP's own timeout, as the request's query does."""

    def checkout(dbapi_connection: Any, _record: ConnectionPoolEntry, _proxy: Any) -> None:
        if not dbapi_connection.closed:
            # poll, not select: select refuses descriptors above 1023, which a busy server's
            # connections can be given.
            socket = select.poll()
            socket.register(dbapi_connection.fileno(), select.POLLIN)
            if not socket.poll(0):
                return
            try:
                dialect.do_ping(dbapi_connection)
                return
            except psycopg.Error:
                pass
        raise exc.InvalidatePoolError("the pooled connection was closed by the server")

    return checkout


# Whole-database jobs (an archive import) take this advisory lock exclusively to keep every
# revision writer out; writers take it shared, so they never wait for each other on it.
FEED_LOCK_KEY = 7_411_2025
# The advisory lock class (the first of two keys) under which revision writers announce
# themselves on PostgreSQL; any constant works, as long as nothing else in this database uses it.
FEED_WRITER_LOCK = 74_112_025
# The largest revision id the sequence (the SERIAL column's) has handed out: every id drawn
# later is larger. (A sequence reset with `setval(..., false)`, as a restore does, has not yet
# handed out its `last_value`.)
_LAST_DRAWN = (
    "SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM revision_id_seq"
)
_ANNOUNCE_WRITER = text(
    "SELECT pg_advisory_xact_lock_shared(:gate),"
    f" pg_advisory_xact_lock_shared(:class, ({_LAST_DRAWN})::integer)"
).bindparams(gate=FEED_LOCK_KEY, **{"class": FEED_WRITER_LOCK})
_OPEN_WRITERS = text(
    "SELECT min(objid::bigint) FROM pg_locks WHERE locktype = 'advisory'"
    " AND classid = :class AND objsubid = 2 AND granted"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
).bindparams(**{"class": FEED_WRITER_LOCK})
_ANNOUNCED_IN = "dtl_feed_writer"


def announce_writer(session: Session) -> None:
    """Before a transaction draws its first revision id: let change-feed readers see that it is
    open, and below which id it cannot hold a revision (`feed_horizon`).

    PostgreSQL only (SQLite allows one writer at a time, so ids follow commit order there). The
    writer takes a shared transaction-scoped advisory lock keyed by the largest revision id
    drawn so far: the lock shows in `pg_locks` until the transaction ends, shared locks never
    wait for each other, and every id the writer draws afterwards is larger than the key. It
    also takes FEED_LOCK_KEY shared, which a whole-database job holds exclusively. Once per
    transaction.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    # The innermost transaction: a savepoint rolled back releases the locks taken inside it.
    transaction = session.get_nested_transaction() or session.get_transaction()
    if transaction is None or session.info.get(_ANNOUNCED_IN) is transaction:
        return
    session.execute(_ANNOUNCE_WRITER)
    session.info[_ANNOUNCED_IN] = transaction


def feed_horizon(session: Session) -> int | None:
    """The largest revision id up to which every writing transaction has ended (committed or
    rolled back), so a change-feed reader may serve ids up to it and never see a smaller one
    appear later; None when there is no limit (SQLite, one writer at a time: a reader sees only
    commits, and they follow id order).

    Why not one lock for all writers (what this replaced): it held every write, its counts and
    its commit in one queue. Why not order the feed by writing transaction id (`xid8`, served
    below the snapshot's xmin): any transaction with an id, in any database of the server,
    would hold that back, and `since=` positions would stop being plain, ascending revision
    ids. This horizon waits only for this database's revision writers, and only for the ones
    that started before the ids it serves were drawn.

    Three steps, in this order, each a statement of its own (a READ COMMITTED statement sees
    what committed before it started): (1) the largest id drawn so far, S; (2) the smallest key
    among the open writers' locks, L: a writer not among them either ended before (2), so its
    revisions are visible to (3), or announces itself after (2) and draws only ids above S; a
    writer among them holds only ids above its key; (3) the caller's read of ids up to
    min(S, L), after this returns.
    """
    if session.get_bind().dialect.name != "postgresql":
        return None
    drawn = int(session.execute(text(_LAST_DRAWN)).scalar_one())
    oldest = session.execute(_OPEN_WRITERS).scalar()
    return drawn if oldest is None else min(drawn, int(oldest))


def create_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


WRITE_TRANSACTION = "dtl_write_transaction"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Set on a request's scope (by app.access.audited_read) when a read must write: an admin's read
# records its audit entry before it commits.
WRITING_READ = "dtl.writing_read"


def writing(request: Request) -> bool:
    """Whether a request's transaction writes, and so begins as a write transaction.

    On SQLite a read transaction that writes at its end fails at once if another writer has
    committed since it began (its snapshot is stale), so a read that must write begins as a
    write, like any POST."""
    return request.method not in SAFE_METHODS or bool(request.scope.get(WRITING_READ))


def begin_write(session: Session) -> None:
    """Start the session's transaction as a write transaction (BEGIN IMMEDIATE on SQLite)."""
    session.connection(execution_options={WRITE_TRANSACTION: True})


@contextmanager
def transaction(factory: sessionmaker[Session], *, write: bool) -> Iterator[Session]:
    """A request's one transaction: committed when the block ends, rolled back if it raises."""
    with factory() as session:
        if write:
            begin_write(session)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


# Set while a heavy request (an export, facets, a count, a ranked search) runs: its database
# work goes to `DatabaseThreads`' heavy threads, so it never holds the threads pages wait for.
# Set by the rate limiter (app/ratelimit.py), which also bounds how many run at once.
HEAVY: contextvars.ContextVar[bool] = contextvars.ContextVar("dtl_heavy", default=False)
# The share of a core a heavy request's streamed export may keep busy (RATE_LIMIT_EXPORT_SHARE_*):
# set by the rate limiter for the caller, read by the export's streaming
# (app/timeline/router.py, read_ahead). 1 is unpaced.
EXPORT_SHARE: contextvars.ContextVar[float] = contextvars.ContextVar(
    "dtl_export_share", default=1.0
)


class DatabaseThreads:
    """Where the timeline's pages and the response cache's version reads run their database
    work: threads of their own on PostgreSQL, AnyIO's pool (as any sync endpoint) on SQLite.

    AnyIO's `to_thread.run_sync` (Starlette's `run_in_threadpool`) passes a capacity limiter
    and a cancel scope on every call, and the event loop hands each job to an idle thread
    itself, several times the CPU a call of handing it to an executor's queue, whose threads
    take the next job without the loop. On PostgreSQL, where a request mostly waits on round
    trips, threads of our own served more requests a second, with one worker and with two. On
    SQLite the work is this process's own CPU: threads that no longer wait for the loop compete
    with it for the GIL and, with one worker per core, with the other workers for the cores:
    faster with one worker but slower with two, so SQLite keeps AnyIO's pool (figures in
    bench/README.md). Own threads number `Settings.threads`, as
    AnyIO's pool does, start on first use and end with the app's lifespan; a request
    cancelled while its job runs leaves the job to finish (its session closes there)."""

    def __init__(self, size: int, *, own_threads: bool, heavy: int = 1) -> None:
        self._executor = None
        if own_threads:
            self._executor = ThreadPoolExecutor(size, thread_name_prefix="dtl-db")
        # Heavy requests' threads, on both databases: on SQLite a page waits for AnyIO's one
        # thread, which a grouping of the whole table would otherwise hold for seconds.
        self._heavy = ThreadPoolExecutor(heavy, thread_name_prefix="dtl-heavy")

    @property
    def own_threads(self) -> bool:
        return self._executor is not None

    async def run(self, func: Callable[[*Args], Returned], *args: *Args) -> Returned:
        executor = self._heavy if HEAVY.get() else self._executor
        if executor is None:
            return await run_in_threadpool(func, *args)
        # The caller's context goes along, as AnyIO's does: the request id is logged from there.
        context = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, context.run, func, *args)

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self._heavy.shutdown(wait=True)


async def one_writer(request: Request) -> AsyncIterator[None]:
    """Let one writing request of this process at a time into the database.

    FastAPI runs a sync dependency's start, the endpoint and its end as three separate trips to
    the thread pool. A writer that has taken the database's write lock (SQLite) or a row lock
    (PostgreSQL) then waits for a free thread to commit, while the threads may all be held by
    other writers waiting for that very lock: nobody moves until the lock wait runs out (503).
    Waiting here, in the event loop and before taking a thread, cannot block a lock holder.
    Other processes' writers still wait in the database, which is safe: their lock holders have
    threads of their own.
    """
    if not writing(request):
        yield
        return
    async with request.app.state.writers:
        yield


def get_session(
    request: Request, _: Annotated[None, Depends(one_writer, scope="function")]
) -> Iterator[Session]:
    """One transaction per request: commit before the response is sent, or roll back."""
    factory: sessionmaker[Session] = request.app.state.session_factory
    with transaction(factory, write=writing(request)) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def reconcile(
    collection: list[Child],
    wanted: list[ChildKey],
    key: Callable[[Child], ChildKey],
    make: Callable[[ChildKey], Child],
) -> list[Child]:
    """Make a child collection hold exactly one object per wanted key, in `wanted` order.

    Objects whose key is still wanted are kept rather than deleted and re-inserted: the unit of
    work inserts before it deletes, so re-adding a key that a unique constraint already holds
    would fail on PostgreSQL.
    """
    existing = {key(item): item for item in collection}
    return [existing[k] if k in existing else make(k) for k in wanted]

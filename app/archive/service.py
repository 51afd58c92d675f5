"""Export the dataset to an archive and restore it, streaming both ways.

Memory stays bounded whatever the size of the data: the export reads each table with a
server-side cursor (PostgreSQL) or a lazily stepped statement (SQLite) and writes row by row;
the import parses the archive incrementally and inserts in batches. Neither holds a table.
"""

import codecs
import datetime as dt
import json
import re
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from typing import IO, Any

import orjson
from pydantic import ValidationError
from sqlalchemy import BigInteger, Date, Integer, Table, func, inspect, select, text
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from app import schemas
from app.archive.schemas import (
    EXCLUDED,
    FORMAT,
    VERSION,
    ArchiveHeader,
    ArchiveSummary,
    TableHeader,
    TableSummary,
)
from app.db import FEED_LOCK_KEY, STATEMENT_TIMEOUT, Base, UTCDateTime
from app.errors import AppError, Conflict
from app.events import documents
from app.events import service as events
from app.events.schemas import EventCreate
from app.models import Event, EventDocument, Membership, Organisation, Place, Source, State
from app.organisations import service as organisations
from app.places import service as places
from app.sources import service as sources
from app.states import service as states
from app.timeline import counts as timeline_counts
from app.timeline import search_index

Progress = Callable[[str, int, int], None]
"""Called with (table, rows done, rows in the table) every few thousand rows."""

PROGRESS_EVERY = 50_000
INSERT_BATCH = 2_000
READ_BATCH = 2_000
CHECK_BATCH = 500
# A table this large is loaded without its secondary indexes, which are rebuilt afterwards:
# one sort per index instead of a random B-tree insertion per row, which is faster for a large
# table (bench/README.md).
REBUILD_INDEXES_FROM = 10_000


class InvalidArchive(AppError):
    """Not an archive this version can read, or a damaged one. Nothing has been written."""

    status = 422
    slug = "invalid-archive"
    title = "Invalid archive"


class TargetNotEmpty(Conflict):
    """Restoring over existing data would mix two datasets; only an empty database is accepted."""

    slug = "database-not-empty"
    title = "Database not empty"


class SchemaMismatch(Conflict):
    slug = "schema-mismatch"
    title = "Schema mismatch"


def _no_progress(_table: str, _done: int, _total: int) -> None:
    return None


def data_tables() -> list[Table]:
    """Every table of the dataset, parents first, so rows can be inserted in this order."""
    return [t for t in Base.metadata.sorted_tables if t.name not in EXCLUDED]


def excluded_tables() -> dict[str, str]:
    return {name: why for name, why in EXCLUDED.items() if name in Base.metadata.tables}


def schema_revision(session: Session) -> str:
    """The database's Alembic revision; a database that was never migrated has none."""
    if not inspect(session.connection()).has_table("alembic_version"):
        raise SchemaMismatch("the database is not migrated: run `alembic upgrade head` first")
    revisions = sorted(session.scalars(text("SELECT version_num FROM alembic_version")))
    if not revisions:
        raise SchemaMismatch("the database is not migrated: run `alembic upgrade head` first")
    return ",".join(revisions)


def _ordering(session: Session, table: Table) -> list[ColumnElement[Any]]:
    # PostgreSQL sorts text by the database's collation, SQLite by bytes: "C" makes both sort
    # the same way, so an archive does not depend on which database it came from.
    postgres = session.get_bind().dialect.name == "postgresql"
    return [
        c.collate("C") if postgres and c.type.python_type is str else c
        for c in table.primary_key.columns
    ]


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_UTC_Z)


# --- export -------------------------------------------------------------------------------


class ArchiveExport:
    """The archive as an iterable of byte chunks of about 64 KiB, for a file or an HTTP body.

    Iterate it once, in a fresh session: on PostgreSQL the transaction is made a
    repeatable-read snapshot, which has to happen before its first query, so the tables agree
    with each other even while writers carry on. SQLite in WAL mode gives one read transaction
    the same snapshot. `summary` is set when the iteration ends.
    """

    CHUNK = 1 << 16

    def __init__(self, session: Session, *, progress: Progress = _no_progress) -> None:
        self.session = session
        self.progress = progress
        self.summary: ArchiveSummary | None = None

    def __iter__(self) -> Iterator[bytes]:
        buffer = bytearray()
        for piece in self._pieces():
            buffer += piece
            if len(buffer) >= self.CHUNK:
                yield bytes(buffer)
                buffer.clear()
        if buffer:
            yield bytes(buffer)

    def _pieces(self) -> Iterator[bytes]:
        started = time.perf_counter()
        session = self.session
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
        header = ArchiveHeader(
            format=FORMAT,
            version=VERSION,
            schema_revision=schema_revision(session),
            excluded=excluded_tables(),
        )
        yield b"{"
        for i, (key, value) in enumerate(header.model_dump().items()):
            yield b"%s%s: %s" % (b", " if i else b"", _dumps(key), _dumps(value))
        yield b',\n"tables": ['
        summaries = []
        for i, table in enumerate(data_tables()):
            rows = yield from self._table(table, first=i == 0)
            summaries.append(TableSummary(name=table.name, rows=rows))
        yield b"\n]}\n"
        self.summary = ArchiveSummary(
            schema_revision=header.schema_revision,
            tables=summaries,
            seconds=time.perf_counter() - started,
        )

    def _table(self, table: Table, *, first: bool) -> Generator[bytes, None, int]:
        session = self.session
        total = session.scalar(select(func.count()).select_from(table)) or 0
        columns = [c.name for c in table.columns]
        meta = TableHeader(name=table.name, columns=columns, row_count=total)
        yield b"%s\n{" % (b"" if first else b",")
        for key, value in meta.model_dump().items():
            yield b"%s: %s, " % (_dumps(key), _dumps(value))
        yield b'"rows": ['
        result = session.execute(
            select(table).order_by(*_ordering(session, table)),
            # One statement streams the table while the client reads it: SQLite's clock would
            # count the client's reading too (PostgreSQL's limits each FETCH).
            execution_options={"yield_per": READ_BATCH, STATEMENT_TIMEOUT: None},
        )
        done = 0
        for row in result:
            yield b"%s\n%s" % (b"," if done else b"", _dumps(tuple(row)))
            done += 1
            if done % PROGRESS_EVERY == 0 and done != total:
                self.progress(table.name, done, total)
        if done != total:
            # Only possible if the snapshot did not hold; an archive that disagrees with itself
            # must not be produced.
            raise RuntimeError(f"{table.name}: counted {total} rows but read {done}")
        yield b"\n]}" if done else b"]}"
        self.progress(table.name, done, total)
        return done


def export_archive(
    session: Session, out: IO[bytes], *, progress: Progress = _no_progress
) -> ArchiveSummary:
    """Write every data table to `out` as an archive (see app/archive/schemas.py)."""
    export = ArchiveExport(session, progress=progress)
    for chunk in export:
        out.write(chunk)
    if export.summary is None:  # pragma: no cover - set by the completed iteration
        raise RuntimeError("the export stopped early")
    return export.summary


# --- import -------------------------------------------------------------------------------


def import_archive(
    session: Session, source: IO[bytes], *, progress: Progress = _no_progress
) -> ArchiveSummary:
    """Restore an archive into an empty, migrated database, in the caller's transaction.

    Everything is checked that can be before the first row is written (format, version,
    schema revision, emptiness); a problem found later (a damaged or truncated file) raises,
    and the caller's rollback leaves the database as empty as it was.
    """
    started = time.perf_counter()
    reader = JsonStream(source)
    if reader.peek() != "{":
        raise InvalidArchive("not a JSON archive: it does not start with an object")
    reader.consume()
    header = _read_header(reader)
    target_revision = schema_revision(session)
    if header.schema_revision != target_revision:
        raise SchemaMismatch(
            f"the archive holds schema revision {header.schema_revision}, this database is at "
            f"{target_revision}: restore into an empty database migrated to "
            f"{header.schema_revision} (`alembic upgrade {header.schema_revision}`), "
            "then upgrade it"
        )
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        # Every editorial writer takes this lock (shared) before writing a revision: none can
        # slip rows into the tables between the emptiness check and the commit.
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": FEED_LOCK_KEY})
    _check_empty(session)

    expected = data_tables()
    search_triggers = _pause_search_triggers(session)
    summaries = []
    for i, table in enumerate(expected):
        if i:
            reader.expect(",")
        count = _import_table(session, reader, table, progress)
        summaries.append(TableSummary(name=table.name, rows=count))
    if reader.peek() == ",":
        reader.consume()
        extra = reader.peek_object_name()
        raise InvalidArchive(f"the archive has a table this schema does not: {extra}")
    reader.expect("]")
    reader.expect("}")
    reader.expect_end()
    check_resources(session, progress)
    if postgres:
        _reset_sequences(session, expected)
    if search_triggers:
        _rebuild_search(session, search_triggers)
    # Derived data, left out of archives: rebuilt in the restore's own transaction.
    for done, total in documents.fill(session):
        progress(EventDocument.__tablename__, done, total)
    for name, rows in timeline_counts.rebuild(session).items():
        progress(name, rows, rows)
    return ArchiveSummary(
        schema_revision=header.schema_revision,
        tables=summaries,
        seconds=time.perf_counter() - started,
    )


def _read_header(reader: "JsonStream") -> ArchiveHeader:
    fields: dict[str, Any] = {}
    for i, expected in enumerate(("format", "version", "schema_revision", "excluded")):
        if i:
            reader.expect(",")
        key = reader.key()
        if key != expected:
            raise InvalidArchive(f"expected the key {expected!r} in the header, found {key!r}")
        fields[key] = reader.value()
        if key == "format" and fields[key] != FORMAT:
            raise InvalidArchive(f"not a {FORMAT} archive (format {fields[key]!r})")
        if key == "version" and fields[key] != VERSION:
            raise InvalidArchive(
                f"archive format version {fields[key]!r} is not supported (this reader: {VERSION})"
            )
    reader.expect(",")
    if (key := reader.key()) != "tables":
        raise InvalidArchive(f"expected the key 'tables' after the header, found {key!r}")
    reader.expect("[")
    try:
        return ArchiveHeader.model_validate(fields)
    except ValidationError as exc:
        raise InvalidArchive(f"invalid archive header: {exc}") from exc


def _check_empty(session: Session) -> None:
    filled = [
        t.name for t in data_tables() if session.execute(select(1).select_from(t).limit(1)).first()
    ]
    if filled:
        named = ", ".join(filled[:3]) + (f" and {len(filled) - 3} more" if len(filled) > 3 else "")
        raise TargetNotEmpty(
            f"the database already holds data (in {named}): restore into an empty database "
            "that has only been migrated"
        )


def _converter(column: Any) -> Callable[[Any], Any] | None:
    if isinstance(column.type, UTCDateTime):
        return _instant
    if isinstance(column.type, Date):
        return _date
    if isinstance(column.type, BigInteger):
        return _integer(64)
    if isinstance(column.type, Integer):
        return _integer(32)
    return None


def _compose(first: Callable[[Any], Any], then: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: then(first(value))


def _preparers(
    session: Session, table: Table, columns: list[str]
) -> list[Callable[[Any], Any] | None]:
    """Per column, what turns an archive value into the parameter SQLAlchemy itself would send
    to the driver (its own bind processors), so values are stored as the application stores
    them. Going to the driver directly skips SQLAlchemy's per-row parameter handling, which
    cost more than the database's own work (profiled; bench/README.md)."""
    dialect = session.get_bind().dialect
    prepare: list[Callable[[Any], Any] | None] = []
    for name in columns:
        column = table.columns[name]
        convert = _converter(column)
        bind = column.type.dialect_impl(dialect).bind_processor(dialect)
        if convert is not None and bind is not None:
            prepare.append(_compose(convert, bind))
        else:
            prepare.append(convert or bind)
    return prepare


@contextmanager
def _row_sink(
    session: Session, table: Table, columns: list[str]
) -> Iterator[Callable[[tuple[Any, ...]], None]]:
    """A function taking one row at a time: COPY on PostgreSQL (a single statement streaming
    every row, some ten times faster than INSERTs), batched executemany on SQLite."""
    connection = session.connection()
    quote = connection.dialect.identifier_preparer.quote
    names = ", ".join(quote(c) for c in columns)
    if connection.dialect.name == "postgresql":
        driver = connection.connection.driver_connection
        if driver is None:  # pragma: no cover - an open connection always has one
            raise RuntimeError("no driver connection")
        copy_sql = f"COPY {quote(table.name)} ({names}) FROM STDIN"
        with driver.cursor() as cursor, cursor.copy(copy_sql) as copy:
            yield copy.write_row
        return
    markers = ", ".join(["?"] * len(columns))
    # Identifiers come from the metadata, quoted by the dialect; values are parameters.
    statement = f"INSERT INTO {quote(table.name)} ({names}) VALUES ({markers})"  # noqa: S608
    batch: list[tuple[Any, ...]] = []

    def write(row: tuple[Any, ...]) -> None:
        batch.append(row)
        if len(batch) == INSERT_BATCH:
            connection.exec_driver_sql(statement, batch)
            batch.clear()

    yield write
    if batch:
        connection.exec_driver_sql(statement, batch)


def _integer(bits: int) -> Callable[[Any], Any]:
    """A check that a value fits the column, so that a number too large is refused by name, not
    by the driver (SQLite raises OverflowError beyond 64 bits, PostgreSQL `integer` holds 32)."""
    high = 2 ** (bits - 1) - 1

    def check(value: Any) -> Any:
        if isinstance(value, int) and not -high - 1 <= value <= high:
            raise ValueError(f"{value} does not fit a {bits}-bit integer column")
        return value

    return check


# The API's own input schemas check every restored resource, as a POST of it would be checked:
# what the API refuses (a NUL in a title, a citation URL that is not a public http(s) address,
# a date that does not fit its precision) is not let in through a restore. Each is the
# resource's name, its table, how to load a batch of rows, and the input form of a row (which
# raises pydantic's ValidationError when the API would refuse it).
CHECKED: tuple[
    tuple[str, Any, Callable[..., Any], Callable[[Any], Any], Callable[[Any], str]], ...
] = (
    ("state", State, states.input_rows, states.as_input, lambda r: r.code),
    ("source", Source, sources.input_rows, sources.as_input, lambda r: str(r.id)),
    ("place", Place, places.input_rows, places.as_input, lambda r: r.code),
    (
        "organisation",
        Organisation,
        organisations.organisation_input_rows,
        organisations.as_input,
        lambda r: r.code,
    ),
    (
        "membership",
        Membership,
        organisations.membership_input_rows,
        organisations.membership_as_input,
        lambda r: str(r.id),
    ),
    ("event", Event, events.input_documents, EventCreate.model_validate, lambda r: r["id"]),
)


def check_resources(session: Session, progress: Progress = _no_progress) -> None:
    """Refuse the restore (InvalidArchive) if a restored resource is one the API would refuse."""
    for what, model, load, to_input, key in CHECKED:
        ids = list(session.scalars(select(model.id).order_by(model.id)))
        for start in range(0, len(ids), CHECK_BATCH):
            for row in load(session, ids[start : start + CHECK_BATCH]):
                try:
                    to_input(row)
                except ValidationError as exc:
                    first = exc.errors()[0]
                    where = ".".join(str(part) for part in first["loc"]) or "(record)"
                    msg = str(first["msg"]).removeprefix("Value error, ")
                    raise InvalidArchive(
                        f"{what} {key(row)}: field {where}: {msg} (the API refuses it, so a"
                        " restore does too)"
                    ) from exc
            # Rows are checked once: keep the session's identity map from holding them all.
            session.expunge_all()
            progress(f"{what} (checked)", min(start + CHECK_BATCH, len(ids)), len(ids))


def _instant(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"instant without a time zone: {value!r}")
    return parsed


def _date(value: Any) -> dt.date | None:
    return None if value is None else dt.date.fromisoformat(value)


def _import_table(session: Session, reader: "JsonStream", table: Table, progress: Progress) -> int:
    reader.expect("{")
    fields: dict[str, Any] = {}
    for i, key in enumerate(("name", "columns", "row_count")):
        if i:
            reader.expect(",")
        if (found := reader.key()) != key:
            raise InvalidArchive(f"expected the key {key!r} in a table header, found {found!r}")
        fields[key] = reader.value()
    try:
        meta = TableHeader.model_validate(fields)
    except ValidationError as exc:
        raise InvalidArchive(f"invalid table header: {exc}") from exc
    if meta.name != table.name:
        raise InvalidArchive(f"expected the table {table.name!r}, found {meta.name!r}")
    wanted = [c.name for c in table.columns]
    if sorted(meta.columns) != sorted(wanted):
        raise InvalidArchive(
            f"{table.name}: the archive's columns {meta.columns} are not this schema's {wanted}"
        )
    reader.expect(",")
    if (found := reader.key()) != "rows":
        raise InvalidArchive(f"{table.name}: expected the key 'rows', found {found!r}")
    prepare = _preparers(session, table, meta.columns)
    indexes = _drop_indexes(session, table) if meta.row_count >= REBUILD_INDEXES_FROM else []
    width = len(meta.columns)
    done = 0
    with _row_sink(session, table, meta.columns) as write:
        for row in reader.array_items():
            if not isinstance(row, list) or len(row) != width:
                raise InvalidArchive(
                    f"{table.name}: row {done + 1} is not a list of {width} values"
                )
            if schemas.has_nul(row):
                # The rule of every API input (app/schemas.py), for every table: PostgreSQL
                # text cannot hold NUL at all, and SQLite would keep what the API refuses.
                raise InvalidArchive(
                    f"{table.name}: row {done + 1}: NUL characters (U+0000) are not allowed"
                )
            try:
                write(tuple([v if f is None else f(v) for f, v in zip(prepare, row)]))  # noqa: B905 - width checked
            except (TypeError, ValueError) as exc:
                raise InvalidArchive(f"{table.name}: row {done + 1}: {exc}") from exc
            done += 1
            if done % PROGRESS_EVERY == 0 and done != meta.row_count:
                progress(table.name, done, meta.row_count)
    for sql in indexes:
        session.execute(text(sql))
    reader.expect("}")
    if done != meta.row_count:
        raise InvalidArchive(
            f"{table.name}: the archive announces {meta.row_count} rows, has {done}"
        )
    progress(table.name, done, meta.row_count)
    return done


def _drop_indexes(session: Session, table: Table) -> list[str]:
    """Drop the table's secondary indexes (not those behind a primary key or unique
    constraint), returning the statements that recreate them exactly as they were."""
    if session.get_bind().dialect.name == "postgresql":
        query = text(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i"
            " WHERE i.schemaname = current_schema() AND i.tablename = :table"
            " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid ="
            " (quote_ident(i.schemaname) || '.' || quote_ident(i.indexname))::regclass)"
            " ORDER BY i.indexname"
        )
    else:
        query = text(
            "SELECT name, sql FROM sqlite_master"
            " WHERE type = 'index' AND tbl_name = :table AND sql IS NOT NULL ORDER BY name"
        )
    indexes = session.execute(query, {"table": table.name}).all()
    for name, _sql in indexes:
        session.execute(text(f'DROP INDEX "{name}"'))
    return [sql for _name, sql in indexes]


def _pause_search_triggers(session: Session) -> list[str]:
    """Stop the triggers that keep the search indexes in step row by row, for this transaction
    only, returning the statements that restore them (`_rebuild_search` runs them).

    Fed one row at a time, the search indexes cost far more than rebuilt once at the end
    (bench/README.md). SQLite: the triggers that keep `event_fts` and `event_fts_timeline`
    (words and actors) are dropped and recreated; DDL is transactional in SQLite, so a failed
    import rolls them back into place too. PostgreSQL: the triggers on `event_participant` that
    set `event.search_actors`, and the one on `event` that lists its words (`search_word`).
    Fired at the end of the COPY, one per participant, each queried the event's participants
    while a large table's indexes were dropped for the load (`_drop_indexes`): a scan of every
    participant loaded, per participant.

    On PostgreSQL they are disabled (`ALTER TABLE ... DISABLE TRIGGER`), not bypassed by
    `session_replication_role`, which needs a superuser and would also skip the foreign keys'
    checks, nor by a transaction-local setting their function reads, which would need a
    migration and a test in every write's trigger for the sake of restores. The table's
    owner may disable its triggers, as it may drop and create the indexes of a large table,
    which the restore already does. The change is transactional, so a failed restore rolls it
    back, and it takes a SHARE ROW EXCLUSIVE lock on `event_participant` until the commit: a
    write to the table on another connection waits for the commit, by which time the triggers
    are back on, and so is never made without them. (Writers through the API wait anyway, on
    the feed lock the restore holds.)
    """
    if session.get_bind().dialect.name == "postgresql":
        found = session.execute(
            text(
                "SELECT c.relname, t.tgname FROM pg_trigger t"
                " JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_class c ON c.oid = t.tgrelid"
                " WHERE (c.relname, p.proname) IN (('event_participant',"
                " 'event_participant_search_actors'), ('event', 'event_search_words'))"
                " ORDER BY c.relname, t.tgname"
            )
        ).all()
        for table, name in found:
            session.execute(text(f'ALTER TABLE "{table}" DISABLE TRIGGER "{name}"'))
        return [f'ALTER TABLE "{table}" ENABLE TRIGGER "{name}"' for table, name in found]
    triggers = session.execute(
        text(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND sql LIKE '%event_fts%'"
            " ORDER BY name"
        )
    ).all()
    for name, _sql in triggers:
        session.execute(text(f'DROP TRIGGER "{name}"'))
    return [sql for _name, sql in triggers]


def _rebuild_search(session: Session, triggers: list[str]) -> None:
    """Index the restored events once, as `python -m app.timeline.search_index` does (on
    PostgreSQL by rewriting `event` with every `search_actors` set, which leaves no dead row
    behind, and listing its words), then put back the triggers with the statements
    `_pause_search_triggers` gave."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("INSERT INTO event_fts(event_fts) VALUES ('rebuild')"))
    search_index.rebuild(session, rewrite=True)
    for sql in triggers:
        session.execute(text(sql))


def _reset_sequences(session: Session, tables: list[Table]) -> None:
    """Point each id sequence past the restored ids, so the next insert gets a fresh one.

    Rows were inserted with explicit ids, which PostgreSQL sequences do not notice. (SQLite
    needs nothing: a rowid table takes the largest id plus one.)
    """
    for table in tables:
        keys = list(table.primary_key.columns)
        if len(keys) != 1 or keys[0].type.python_type is not int:
            continue
        column = keys[0]
        sequence = session.scalar(select(func.pg_get_serial_sequence(table.name, column.name)))
        if sequence is not None:
            largest = select(func.max(column)).scalar_subquery()
            session.execute(select(func.setval(sequence, func.coalesce(largest, 0) + 1, False)))


# --- streaming JSON reader ----------------------------------------------------------------

_WHITESPACE = re.compile(r"[ \t\n\r]*")


def _not_json(name: str) -> Any:
    raise InvalidArchive(f"the archive holds {name}, which is not a JSON number")


class JsonStream:
    """Reads one JSON document piece by piece, so that a table's rows are never all in memory.

    Structure (objects, arrays, keys) is walked by hand; each value (a row, a header field) is
    decoded whole by the C-accelerated `json` scanner. A value that does not fit in the buffer
    yet is retried with more input, up to `max_value` characters: a damaged file cannot make
    the reader swallow it all.
    """

    CHUNK = 1 << 16

    def __init__(self, source: IO[bytes], *, max_value: int = 64 << 20) -> None:
        self._source = source
        self._decode = codecs.getincrementaldecoder("utf-8")()
        # NaN and Infinity are not JSON (the export never writes them); SQLite would store NaN as
        # NULL.
        self._decoder = json.JSONDecoder(parse_constant=_not_json)
        self._buf = ""
        self._pos = 0
        self._consumed = 0  # characters dropped from the front of the buffer
        self._eof = False
        self._max_value = max_value

    @property
    def offset(self) -> int:
        return self._consumed + self._pos

    def _fill(self) -> bool:
        """Append more input; False at the end of the file."""
        if self._eof:
            return False
        chunk = self._source.read(self.CHUNK)
        try:
            decoded = self._decode.decode(chunk, final=not chunk)
        except UnicodeDecodeError as exc:
            raise InvalidArchive(
                f"the archive is not UTF-8 text near character {self.offset}"
            ) from exc
        if not chunk:
            self._eof = True
        self._consumed += self._pos
        self._buf = self._buf[self._pos :] + decoded
        self._pos = 0
        return bool(chunk) or bool(decoded)

    def _fail(self, what: str) -> InvalidArchive:
        if self._eof and self._pos >= len(self._buf):
            return InvalidArchive(f"the archive ends early (truncated?): {what}")
        return InvalidArchive(f"damaged archive at character {self.offset}: {what}")

    def peek(self) -> str:
        """The next character that is not whitespace ("" at the end of the input)."""
        while True:
            match = _WHITESPACE.match(self._buf, self._pos)
            self._pos = match.end() if match else self._pos
            if self._pos < len(self._buf):
                return self._buf[self._pos]
            if not self._fill():
                return ""

    def consume(self) -> None:
        self._pos += 1

    def expect(self, char: str) -> None:
        found = self.peek()
        if found != char:
            raise self._fail(f"expected {char!r}, found {found or 'the end'!r}")
        self._pos += 1

    def expect_end(self) -> None:
        if (found := self.peek()) != "":
            raise self._fail(f"unexpected {found!r} after the end of the archive")

    def value(self) -> Any:
        self.peek()
        while True:
            try:
                value, end = self._decoder.raw_decode(self._buf, self._pos)
            except json.JSONDecodeError as exc:
                if len(self._buf) - self._pos < self._max_value and self._fill():
                    continue
                if self._eof and (exc.pos >= len(self._buf) or exc.msg.startswith("Unterminated")):
                    raise InvalidArchive(
                        f"the archive ends early (truncated?) at character {self.offset}"
                    ) from exc
                raise self._fail(exc.msg) from exc
            # A number at the very end of the buffer may go on in the next chunk.
            if end == len(self._buf) and self._fill():
                continue
            self._pos = end
            return value

    def key(self) -> str:
        name = self.value()
        if not isinstance(name, str):
            raise self._fail(f"expected an object key, found {name!r}")
        self.expect(":")
        return name

    def peek_object_name(self) -> str:
        """The `name` of the table object that starts here, for an error message."""
        self.expect("{")
        if self.key() != "name":
            return "(unnamed)"
        return str(self.value())

    def array_items(self) -> Iterator[Any]:
        """The items of the array that starts here, one at a time."""
        self.expect("[")
        if self.peek() == "]":
            self._pos += 1
            return
        while True:
            yield self.value()
            found = self.peek()
            self._pos += 1
            if found == "]":
                return
            if found != ",":
                self._pos -= 1
                raise self._fail(f"expected ',' or ']' in an array, found {found or 'the end'!r}")

"""The command lines behind `python -m app.export` and `python -m app.import`."""

import argparse
import gzip
import io
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, cast

from sqlalchemy.exc import SQLAlchemyError

from app.archive import service
from app.archive.schemas import FORMAT, VERSION, ArchiveSummary
from app.config import get_settings, normalise_database_url
from app.db import begin_write, create_db_engine, create_session_factory
from app.errors import AppError

GZIP_MAGIC = b"\x1f\x8b"


def _say(quiet: bool) -> service.Progress:
    last = [0.0]

    def progress(table: str, done: int, total: int) -> None:
        # One line per table, plus one every few seconds while a large table streams.
        now = time.monotonic()
        if not quiet and (done == total or now - last[0] >= 2):
            last[0] = now
            print(f"  {table}: {done:,}/{total:,} rows", file=sys.stderr, flush=True)

    return progress


def _database_url(given: str | None) -> str:
    return normalise_database_url(given) if given else get_settings().database_url


def _summary(verb: str, summary: ArchiveSummary, where: str, size: int | None) -> str:
    rate = summary.rows / summary.seconds if summary.seconds else 0.0
    size_text = f", {size / 1e6:,.1f} MB" if size is not None else ""
    return (
        f"{verb} {summary.rows:,} rows in {len(summary.tables)} tables {where}{size_text} "
        f"(schema {summary.schema_revision}) in {summary.seconds:.1f} s ({rate:,.0f} rows/s)"
    )


@contextmanager
def _output(path: str) -> Iterator[IO[bytes]]:
    """stdout, or a file that only appears under its name once it is complete."""
    if path == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    try:
        with partial.open("wb") as raw:
            if target.suffix == ".gz":
                # mtime=0 and no file name in the gzip header: the same data, the same bytes.
                with gzip.GzipFile(
                    filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0
                ) as gz:
                    yield gz  # type: ignore[misc]
            else:
                yield raw
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def export_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.export",
        description=(
            f"Write the whole dataset to a {FORMAT} (version {VERSION}) JSON archive: states, "
            "organisations, memberships, places, events with everything they hold, sources, "
            "and the full revision history. API keys, webhook subscriptions and other "
            "operational state are left out (the archive lists them under `excluded`). The "
            "archive is deterministic: the same data gives the same bytes. Progress goes to "
            "stderr. Restore with `python -m app.import`."
        ),
    )
    parser.add_argument(
        "--output",
        "-o",
        default="-",
        metavar="FILE|-",
        help="where to write the archive: a file (gzip-compressed if it ends in .gz; written "
        "as FILE.partial and renamed when complete) or - for stdout (the default)",
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="database to read (default: DATABASE_URL, else the local SQLite file)",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)

    engine = create_db_engine(_database_url(args.database_url), pool_size=1)
    try:
        with create_session_factory(engine)() as session, _output(args.output) as out:
            summary = service.export_archive(session, out, progress=_say(args.quiet))
    except (AppError, SQLAlchemyError, OSError) as exc:
        print(f"export: failed, no archive written: {_reason(exc)}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    where = "to stdout" if args.output == "-" else f"to {args.output}"
    size = None if args.output == "-" else Path(args.output).stat().st_size
    print(_summary("exported", summary, where, size), file=sys.stderr)
    return 0


@contextmanager
def _input(path: str) -> Iterator[IO[bytes]]:
    """A file or stdin, decompressed on the fly if it is gzip (recognised by its first bytes)."""
    raw = cast(
        io.BufferedReader,
        sys.stdin.buffer if path == "-" else Path(path).open("rb"),  # noqa: SIM115
    )
    try:
        if raw.peek(2)[:2] == GZIP_MAGIC:
            with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
                yield gz  # type: ignore[misc]
        else:
            yield raw
    finally:
        if raw is not sys.stdin.buffer:
            raw.close()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, AppError):
        return exc.detail
    if isinstance(exc, SQLAlchemyError):
        # The statement and its parameters can be megabytes long; the driver's message is enough.
        original = getattr(exc, "orig", None)
        return str(original if original is not None else exc).splitlines()[0]
    return str(exc)


def import_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.import",
        description=(
            f"Restore a {FORMAT} archive (written by `python -m app.export`) into an EMPTY "
            "database migrated to the archive's schema revision (`alembic upgrade head`), in "
            "one transaction: on any error nothing is written. Ids, timestamps and revision "
            "history are kept; PostgreSQL sequences are moved past the restored ids. A "
            "database that already holds data, an unknown format or version, or a damaged "
            "archive is refused. API keys are not in archives: mint one afterwards with "
            "`python -m app.keys create`. Progress goes to stderr."
        ),
    )
    parser.add_argument(
        "file",
        metavar="FILE|-",
        help="the archive (plain or gzip-compressed JSON), or - to read stdin",
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="database to restore into (default: DATABASE_URL, else the local SQLite file)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="read and insert everything, then roll back: checks that the archive restores",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)

    engine = create_db_engine(_database_url(args.database_url), pool_size=1)
    try:
        with _input(args.file) as source, create_session_factory(engine)() as session:
            begin_write(session)
            try:
                summary = service.import_archive(session, source, progress=_say(args.quiet))
            except BaseException:
                session.rollback()
                raise
            if args.dry_run:
                session.rollback()
            else:
                session.commit()
    except (AppError, SQLAlchemyError, OSError, EOFError, gzip.BadGzipFile) as exc:
        print(f"import: refused, nothing written: {_reason(exc)}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    verb = "checked (dry run, rolled back)" if args.dry_run else "restored"
    print(_summary(verb, summary, f"from {args.file}", None), file=sys.stderr)
    return 0

"""Backup and restore: `python -m app.export` and `python -m app.import` (app/archive).

The round trip always crosses engines: a seeded SQLite database with some history written
through the API is archived, restored into a fresh PostgreSQL database, archived again and
restored into a fresh SQLite database; every archive must be byte-identical and the API must
answer the same from every copy. PostgreSQL is needed even in the SQLite run: the server in
DATABASE_URL if it is PostgreSQL, else the local one. If it cannot be reached the test fails.
"""

import gzip
import io
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, create_engine, func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app import writes
from app.archive import service
from app.archive.cli import export_main, import_main
from app.archive.schemas import EXCLUDED, FORMAT, VERSION
from app.config import PROJECT_ROOT, Settings, normalise_database_url
from app.db import begin_write, create_db_engine
from app.main import create_app
from app.models import Revision
from app.seed import load
from app.timeline import search_index
from tests.conftest import ThrowawayDatabases, Writable, alembic_config
from tests.helpers import assert_problem

POSTGRES_SERVER = (
    normalise_database_url(os.environ["DATABASE_URL"])
    if os.environ.get("DATABASE_URL", "").startswith("postgres")
    else normalise_database_url("postgresql://postgres@127.0.0.1:5432/postgres")
)
SHOOT_DOWN = "2025-04-01-algeria-shoots-down-malian-drone"
EDITED = "2025-04-06-aes-recall-ambassadors-from-algiers"
CREATED = "2025-04-21-archive-test-statement"
DELETED = "2025-04-22-archive-test-deleted"
SOURCE = {"url": "https://example.org/archive-test", "publisher": "Archive Gazette"}


def new_event(event_id: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": event_id,
        "kind": "diplomatic_action",
        "category": "statement",
        "date": event_id[:10],
        "date_precision": "day",
        "title": "An archive test statement",
        "summary": "Written through the API by the archive test.",
        "participants": [{"state": "MLI", "role": "initiator"}, {"state": "DZA", "role": "target"}],
        "sources": [SOURCE],
        "tags": ["archive-test"],
    }
    return body | changes


class PostgresDatabases:
    """Databases of our own on the PostgreSQL server, dropped at the end."""

    def __init__(self) -> None:
        self.admin = create_engine(
            make_url(POSTGRES_SERVER).set(database="postgres"), isolation_level="AUTOCOMMIT"
        )
        self.created: list[str] = []
        try:
            with self.admin.connect() as conn:
                conn.execute(text("SELECT 1"))
        except OperationalError as exc:
            self.admin.dispose()
            pytest.fail(f"the archive round trip needs PostgreSQL at {POSTGRES_SERVER}: {exc}")

    def new(self) -> str:
        name = f"dtl_archive_{uuid.uuid4().hex[:10]}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        url = make_url(POSTGRES_SERVER).set(database=name).render_as_string(hide_password=False)
        command.upgrade(alembic_config(url), "head")
        return url

    def drop_all(self) -> None:
        with self.admin.connect() as conn:
            for name in self.created:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresDatabases]:
    dbs = PostgresDatabases()
    yield dbs
    dbs.drop_all()


def migrated_sqlite(path: Path) -> str:
    url = f"sqlite:///{path}"
    command.upgrade(alembic_config(url), "head")
    return url


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Writable]:
    """A seeded SQLite database with an edit, a claim, a link and a soft deletion made
    through the API, so that it holds revisions and a deleted row."""
    url = migrated_sqlite(tmp_path_factory.mktemp("archive") / "source.db")
    engine = create_db_engine(url)
    with writes.session_factory(engine).begin() as session:
        load(session, PROJECT_ROOT / "seed", progress=lambda _: None)
    engine.dispose()
    w = Writable(url)
    with w.client:
        c = w.client
        etag = c.get(f"/v1/events/{EDITED}").headers["etag"]
        patched = c.patch(
            f"/v1/events/{EDITED}",
            json={"title": "AES states recall their ambassadors from Algiers (edited)"},
            headers={**w.auth(), "If-Match": etag, "Content-Type": "application/merge-patch+json"},
        )
        assert patched.status_code == 200, patched.text
        claim = {
            "topic": "archive-topic",
            "claimant": {"state": "DZA"},
            "statement": "A contested figure, kept side by side.",
            "value": 2.5,
            "unit": "km",
            "source": SOURCE,
        }
        body = new_event(
            CREATED,
            claims=[claim],
            links=[{"type": "in_response_to", "event": SHOOT_DOWN}],
            location={"name": "Tinzaouaten", "lat": 19.95, "lon": 2.98, "precision": "point"},
        )
        assert c.post("/v1/events", json=body, headers=w.auth()).status_code == 201
        assert c.post("/v1/events", json=new_event(DELETED), headers=w.auth()).status_code == 201
        deleted = c.delete(f"/v1/events/{DELETED}", headers={**w.auth(), "If-Match": '"1"'})
        assert deleted.status_code == 204
        yield w
    w.close()


def run_cli(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def archive(source: Writable, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Archive A, written by the real command line from the SQLite source."""
    path = tmp_path_factory.mktemp("archives") / "a.json"
    done = run_cli("app.export", "--output", str(path), "--database-url", source.url)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    summary = done.stderr.strip().splitlines()[-1]
    assert summary.startswith("exported ") and f"to {path}" in summary, summary
    return path


def api_answers(client: TestClient, as_known_at: str) -> dict[str, Any]:
    """A representative set of answers, keyed by request, cursors followed."""
    paths = [
        "/v1/timeline?limit=5",
        "/v1/timeline?state=DZA&category=ambassador_recall",
        "/v1/timeline?from=2025-04&to=2025-04&order=desc&count=true",
        "/v1/timeline?organisation=AES&include_members=true",
        "/v1/timeline?q=drone",
        "/v1/timeline?q=drone&state=DZA",
        "/v1/timeline?tag=archive-test",
        f"/v1/timeline?state=DZA&as_known_at={as_known_at}",
        "/v1/timeline/facets?between=MLI,DZA",
        "/v1/timeline?state=DZA&format=csv",
        "/v1/timeline?between=MLI,DZA&format=geojson",
        "/v1/timeline?organisation=AES&format=ndjson",
        f"/v1/events/{SHOOT_DOWN}",
        f"/v1/events/{SHOOT_DOWN}/thread",
        f"/v1/events/{EDITED}",
        f"/v1/events/{EDITED}/revisions",
        f"/v1/events/{EDITED}?as_known_at={as_known_at}",
        f"/v1/events/{CREATED}",
        f"/v1/events/{DELETED}",
        f"/v1/events/{DELETED}/revisions",
        "/v1/relations/MLI/DZA?as_of=2025-04-10",
        "/v1/relations/MLI/DZA/history",
        "/v1/states/MLI",
        "/v1/states?q=algerie",
        "/v1/organisations/AES",
        "/v1/organisations/CEMOC/members?as_of=2025-04-06",
        "/v1/places/tinzaouaten",
        "/v1/sources?limit=20",
    ]
    answers = {}
    for path in paths:
        response = client.get(path)
        answers[path] = (response.status_code, response.headers.get("etag"), response.text)
    # Paging: cursors are opaque but must lead to the same pages.
    for start in ("/v1/timeline?between=MLI,DZA&limit=4", "/v1/changes?limit=100"):
        url: str | None = start
        for page in range(4):
            if url is None:
                break
            response = client.get(url)
            assert response.status_code == 200, response.text
            answers[f"{start} page {page}"] = (response.headers.get("etag"), response.text)
            doc = response.json()
            url = (doc.get("links") or {}).get("next") or (
                f"/v1/changes?limit=100&since={doc['next_since']}"
                if doc.get("next_since") and doc.get("items")
                else None
            )
    return answers


def index_names(session_or_engine: Any) -> dict[str, set[str]]:
    found = inspect(session_or_engine)
    return {
        t.name: {i["name"] or "" for i in found.get_indexes(t.name)} for t in service.data_tables()
    }


# The triggers the migrations give PostgreSQL's `event_participant`, each on (`O`).
POSTGRES_SEARCH_TRIGGERS = {
    ("event_participant_search_actors_after_insert_or_delete", "O"),
    ("event_participant_search_actors_after_update", "O"),
}


def search_triggers(bind: Engine | Connection) -> set[tuple[str, str]]:
    """The triggers that keep the search indexes in step, each with its state: on SQLite every
    trigger with its definition, on PostgreSQL those of `event_participant` with whether they
    fire (a restore switches them off while it loads)."""
    if bind.dialect.name == "postgresql":
        query = (
            "SELECT tgname, tgenabled FROM pg_trigger"
            " WHERE tgrelid = 'event_participant'::regclass AND NOT tgisinternal"
        )
    else:
        query = "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"
    if isinstance(bind, Connection):
        return set(bind.execute(text(query)).tuples())
    with bind.connect() as conn:
        return set(conn.execute(text(query)).tuples())


def test_round_trip_sqlite_postgresql_sqlite(
    source: Writable,
    archive: Path,
    postgres: PostgresDatabases,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a = archive.read_bytes()
    doc = json.loads(a)
    assert (doc["format"], doc["version"]) == (FORMAT, VERSION)
    assert set(doc["excluded"]) <= set(EXCLUDED)
    names = [t["name"] for t in doc["tables"]]
    assert "api_key" not in names and "webhook_endpoint" not in names
    assert {"event", "claim", "revision", "membership", "place_alias", "event_link"} <= set(names)
    for token in source.tokens.values():
        assert token.encode() not in a

    # Administrators can download the same bytes over HTTP.
    served = source.client.get("/v1/archive", headers=source.auth("admin"))
    assert served.status_code == 200, served.text
    assert served.headers["content-type"] == "application/json"
    assert "attachment" in served.headers["content-disposition"]
    assert served.content == a
    assert_problem(source.client.get("/v1/archive"), 401)
    assert_problem(source.client.get("/v1/archive", headers=source.auth("editor")), 403)

    # A -> PostgreSQL (through `python -m app.import`, the keyword-named module) -> B
    pg_url = postgres.new()
    done = run_cli("app.import", str(archive), "--database-url", pg_url)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("restored "), done.stderr
    b = tmp_path / "b.json.gz"
    assert export_main(["--output", str(b), "--database-url", pg_url, "--quiet"]) == 0
    assert gunzip(b) == a

    # B -> SQLite -> C: the other direction, through the gzip path, the FTS5 index rebuild and
    # (as if every table were large) the secondary indexes dropped and rebuilt.
    sqlite_url = migrated_sqlite(tmp_path / "restored.db")
    monkeypatch.setattr(service, "REBUILD_INDEXES_FROM", 0)
    assert import_main([str(b), "--database-url", sqlite_url, "--quiet"]) == 0
    c = tmp_path / "c.json"
    assert export_main(["--output", str(c), "--database-url", sqlite_url, "--quiet"]) == 0
    assert c.read_bytes() == a
    engine = create_db_engine(sqlite_url)
    with engine.begin() as conn:
        # Raises if the external-content index disagrees with the event table.
        conn.execute(text("INSERT INTO event_fts(event_fts) VALUES ('integrity-check')"))
    assert index_names(engine) == index_names(source.engine)
    engine.dispose()

    # The API answers the same from the source and from both restored copies.
    edit = source.client.get(f"/v1/events/{EDITED}/revisions").json()["items"][-1]["at"]
    expected = api_answers(source.client, edit)
    assert expected[f"/v1/events/{DELETED}"][0] == 410
    assert "archive-topic" in expected[f"/v1/events/{CREATED}"][2]
    assert SHOOT_DOWN in expected["/v1/timeline?q=drone&state=DZA"][2]
    for url in (pg_url, sqlite_url):
        # The search index was filled once, at the end of the restore, and its triggers are
        # back as a migration made them.
        assert search_index.main(["--check", "--database-url", url]) == 0, url
        engine = create_db_engine(url)
        expected_triggers = (
            POSTGRES_SEARCH_TRIGGERS if url == pg_url else search_triggers(source.engine)
        )
        assert search_triggers(engine) == expected_triggers, url
        engine.dispose()
        settings = Settings(database_url=url, cursor_secret="test-secret", webhook_worker="off")
        app = create_app(settings)
        with TestClient(app) as client:
            assert api_answers(client, edit) == expected, url
        app.state.engine.dispose()
        # Sequences continue after the restored ids: a new write gets a fresh id.
        writer = Writable(url)
        with writer.client:
            created = writer.client.post(
                "/v1/events", json=new_event("2025-04-23-after-restore"), headers=writer.auth()
            )
            assert created.status_code == 201, created.text
        writer.close()
        # ...and its triggers index a write made after the restore.
        assert search_index.main(["--check", "--database-url", url]) == 0, url


def gunzip(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes())


# --- refusals: nothing is written ---------------------------------------------------------


# Each empty target's search triggers as its migration made them.
MIGRATED_TRIGGERS: dict[str, set[tuple[str, str]]] = {}


@pytest.fixture(scope="module")
def empty_target(databases: ThrowawayDatabases) -> Iterator[Engine]:
    """An empty, migrated database on the suite's engine (SQLite or PostgreSQL)."""
    url = databases.new()
    command.upgrade(alembic_config(url), "head")
    engine = create_db_engine(url)
    MIGRATED_TRIGGERS[str(engine.url)] = search_triggers(engine)
    yield engine
    engine.dispose()


def restore(engine: Engine, data: bytes, check: Callable[[Session], None] | None = None) -> Any:
    """Import `data` into the engine's database, run `check` on the result, roll back."""
    with writes.session_factory(engine)() as session:
        begin_write(session)
        try:
            summary = service.import_archive(session, io.BytesIO(data))
            if check is not None:
                check(session)
            return summary
        finally:
            session.rollback()


def assert_empty(engine: Engine) -> None:
    """Nothing restored, and the search triggers a restore stops while it loads are back."""
    with writes.session_factory(engine)() as session:
        for table in service.data_tables():
            assert session.scalar(select(func.count()).select_from(table)) == 0, table.name
    assert search_triggers(engine) == MIGRATED_TRIGGERS[str(engine.url)]


def test_refuses_a_database_that_holds_data(
    archive: Path, database_url: str, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    with writes.session_factory(engine)() as session:
        before = session.scalar(select(func.count()).select_from(Revision))
    assert import_main([str(archive), "--database-url", database_url]) == 1
    err = capsys.readouterr().err
    assert "already holds data" in err and "nothing written" in err
    with writes.session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(Revision)) == before


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": 2}, "version 2 is not supported"),
        ({"format": "something-else"}, "not a diplomatic-timeline-archive archive"),
        ({"schema_revision": "0000deadbeef"}, "schema revision 0000deadbeef"),
    ],
)
def test_refuses_an_unknown_format_version_or_schema(
    archive: Path, empty_target: Engine, change: dict[str, Any], message: str
) -> None:
    doc = json.loads(archive.read_bytes())
    doc.update(change)
    with pytest.raises(service.AppError, match=message):
        restore(empty_target, json.dumps(doc).encode())
    assert_empty(empty_target)


def test_refusal_over_the_command_line_writes_nothing(
    archive: Path, empty_target: Engine, tmp_path: Path
) -> None:
    doc = json.loads(archive.read_bytes())
    doc["version"] = 99
    wrong = tmp_path / "v99.json"
    wrong.write_text(json.dumps(doc))
    url = empty_target.url.render_as_string(hide_password=False)
    assert import_main([str(wrong), "--database-url", url, "--quiet"]) == 1
    assert_empty(empty_target)


@pytest.mark.parametrize("keep", [0.999, 0.5, 0.05])
def test_a_truncated_archive_leaves_the_target_empty(
    archive: Path, empty_target: Engine, keep: float
) -> None:
    data = archive.read_bytes()
    with pytest.raises(service.InvalidArchive, match=r"ends early|damaged"):
        restore(empty_target, data[: int(len(data) * keep)])
    assert_empty(empty_target)


def miscount(archive: bytes, table: str) -> bytes:
    """The archive with one more row announced for `table` than it holds."""
    start = archive.index(b'{"name": "%s", ' % table.encode())
    at = archive.index(b'"row_count": ', start) + len(b'"row_count": ')
    end = archive.index(b",", at)
    return archive[:at] + str(int(archive[at:end]) + 1).encode() + archive[end:]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda a: miscount(a, "claim"), "claim: the archive announces"),
        (
            lambda a: a.replace(b']},\n{"name": "state"', b'], "x": 1},\n{"name": "state"'),
            "damaged",
        ),
        (lambda a: b"<html>" + a, "not a JSON archive"),
        (lambda a: a[:-4] + b',{"name": "extra"}]}\n', "table this schema does not"),
    ],
)
def test_a_damaged_archive_leaves_the_target_empty(
    archive: Path, empty_target: Engine, damage: Any, message: str
) -> None:
    with pytest.raises(service.InvalidArchive, match=message):
        restore(empty_target, damage(archive.read_bytes()))
    assert_empty(empty_target)


def test_any_json_layout_streams_in_small_pieces(
    archive: Path, empty_target: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reader walks the JSON structure rather than lines: a pretty-printed archive read
    97 bytes at a time (values and multi-byte characters cut across reads) restores too."""
    pretty = json.dumps(json.loads(archive.read_bytes()), indent=2, ensure_ascii=False)
    monkeypatch.setattr(service.JsonStream, "CHUNK", 97)
    monkeypatch.setattr(service, "REBUILD_INDEXES_FROM", 0)
    indexes = index_names(empty_target)

    def same_indexes(session: Session) -> None:
        assert index_names(session.connection()) == indexes

    summary = restore(empty_target, pretty.encode(), check=same_indexes)
    doc = json.loads(archive.read_bytes())
    assert summary.counts() == {t["name"]: t["row_count"] for t in doc["tables"]}
    assert_empty(empty_target)  # restore() rolled back


def test_a_restore_indexes_what_it_restores_once(archive: Path, empty_target: Engine) -> None:
    """The search index's triggers are off while the tables load and the index is filled once at
    the end, in the restore's transaction: it agrees with every restored event and its
    participants, and the triggers are back before the commit (the tests above check that a
    failed restore leaves them as they were)."""

    def indexed(session: Session) -> None:
        assert search_index.check(session) == 0
        restored = session.scalar(text("SELECT count(*) FROM event_participant"))
        assert restored
        assert search_triggers(session.connection()) == MIGRATED_TRIGGERS[str(empty_target.url)]

    restore(empty_target, archive.read_bytes(), check=indexed)
    assert_empty(empty_target)


def test_writers_wait_while_a_restore_has_the_triggers_off(
    archive: Path, postgres: PostgresDatabases
) -> None:
    """PostgreSQL: the triggers are disabled in the restore's own transaction, so another
    connection still sees them on, and the lock that disabling them takes makes any write to
    `event_participant` wait for the restore's commit, by which time they are back on: no
    write is ever made without them."""
    engine = create_db_engine(postgres.new())
    seen: list[tuple[set[tuple[str, str]], set[tuple[str, str]]]] = []
    with writes.session_factory(engine)() as session:

        def progress(table: str, _done: int, _total: int) -> None:
            if table != "event_participant":
                return
            with engine.connect() as other:
                seen.append((search_triggers(session.connection()), search_triggers(other)))
                other.execute(text("SET LOCAL lock_timeout = '50ms'"))
                with pytest.raises(OperationalError, match="lock timeout"):
                    other.execute(text("DELETE FROM event_participant WHERE event_id < 0"))

        begin_write(session)
        with archive.open("rb") as source:
            service.import_archive(session, source, progress=progress)
        session.commit()
        off = {(name, "D") for name, _ in POSTGRES_SEARCH_TRIGGERS}
        assert seen == [(off, POSTGRES_SEARCH_TRIGGERS)]
        assert search_triggers(engine) == POSTGRES_SEARCH_TRIGGERS
        assert search_index.check(session) == 0
    engine.dispose()


def edited(archive: Path, table: str, column: str, value: Any, row: int = 0) -> bytes:
    """The archive with one value of one row replaced."""
    doc = json.loads(archive.read_bytes())
    found = next(t for t in doc["tables"] if t["name"] == table)
    found["rows"][row][found["columns"].index(column)] = value
    return json.dumps(doc, ensure_ascii=False).encode()


def first_event_title(archive: Path) -> str:
    doc = json.loads(archive.read_bytes())
    events = next(t for t in doc["tables"] if t["name"] == "event")
    return str(events["rows"][0][events["columns"].index("title")])


@pytest.mark.parametrize(
    ("table", "column", "value", "message"),
    [
        # What the API refuses, a restore refuses too, with the API's own message (issue 22).
        ("event", "title", "A title\x00with a NUL", "NUL characters"),
        ("state_alias", "alias", "Mali\x00", "NUL characters"),
        ("revision", "after", {"title": "\x00"}, "NUL characters"),
        ("source", "url", "http://[", "source 1: field url: not a citable URL"),
        ("source", "url", "https://[fe80::1%eth0]/", "not a citable URL"),
        ("event", "date_precision", "month", "field date_precision: date has month precision"),
        ("event", "title", "", "field title: String should have at least 1 character"),
        ("event", "casualties_killed", 2**40, "does not fit a 32-bit integer column"),
        ("event", "id", 2**70, "does not fit a 32-bit integer column"),
        ("event", "cameo_code", "999", "field cameo_code: unknown CAMEO code '999'"),
        ("event_tag", "tag", "Not A Tag", "field tags.0: 'Not A Tag' is not a tag"),
        ("state", "code", "M1I", "state M1I: field code: unknown state 'M1I'"),
        ("membership", "start_precision", "year", "membership 1: field start_precision"),
        ("place", "code", "tin zaouaten", "place tin zaouaten: field code"),
        ("organisation_name", "name", "", "organisation"),
    ],
)
def test_a_restore_validates_rows_as_the_api_does(
    archive: Path, empty_target: Engine, table: str, column: str, value: Any, message: str
) -> None:
    data = edited(archive, table, column, value)
    with pytest.raises(service.InvalidArchive, match=re.escape(message)):
        restore(empty_target, data)
    assert_empty(empty_target)


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity"])
def test_a_restore_refuses_numbers_json_does_not_have(
    archive: Path, empty_target: Engine, number: bytes
) -> None:
    marker = 123456.789
    data = edited(archive, "claim", "value", marker).replace(b"123456.789", number)
    with pytest.raises(service.InvalidArchive, match="not a JSON number"):
        restore(empty_target, data)
    assert_empty(empty_target)


def test_a_nul_in_a_title_over_the_command_line(
    archive: Path, empty_target: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m app.import` (the command the issue tried) refuses it and writes nothing."""
    bad = tmp_path / "nul.json"
    bad.write_bytes(edited(archive, "event", "title", first_event_title(archive) + "\x00"))
    url = empty_target.url.render_as_string(hide_password=False)
    assert import_main([str(bad), "--database-url", url, "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "refused, nothing written" in err and "NUL characters" in err, err
    assert_empty(empty_target)

"""Event documents: the JSON each event is served as, assembled from its tables and stored.

`assemble` builds documents from Core rows (participants, tags, sources, claims). Every commit
that changes an event, or a source an event cites, rewrites the stored copy in the same
transaction (`note_flush` and `refresh`, run by the write step, app/writes.py), so reads take
`EventDocument.body` as it is: a page of 50 is one primary-key read instead of six queries and
the dicts built from them. A missing
or outdated row is assembled on read instead, which keeps reads right while
`python -m app.events.documents` fills the table after an upgrade.

Bulk loaders that write with Core (bench/synth.py, app/import.py) are not seen by the write step
and call `fill` themselves.
"""

import argparse
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import orjson
from sqlalchemy import (
    BindParameter,
    Select,
    bindparam,
    delete,
    exists,
    inspect,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import InstanceState, Session

from app.config import get_settings
from app.db import create_db_engine, create_session_factory
from app.events import csvline
from app.models import (
    Claim,
    Event,
    EventDocument,
    EventSource,
    EventTag,
    Organisation,
    Participant,
    Place,
    Source,
    State,
    claim_source,
)

# Bump when `assemble` changes what a document holds: stored rows of another format are then
# ignored (assembled on read) until `python -m app.events.documents` rewrites them.
FORMAT = 3  # 2: with the CSV line; 3: its numbers unguarded, its text quoted
BATCH = 500
Value = TypeVar("Value")


# What a document shows of each source: the columns read, the keys written, and the fields
# whose change rewrites the documents citing the source.
SOURCE_FIELDS = ("url", "publisher", "title", "published_on", "language")
_SOURCE_COLUMNS = [getattr(Source, name) for name in SOURCE_FIELDS]


def serialise(doc: dict[str, Any]) -> bytes:
    # The options of app.json.JSONBytes, so a stored body is byte for byte what would be served.
    return orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS)


# The statements are built once: a statement object made per call pays for its SQLAlchemy cache
# key every time, which for a page cost more than the queries (bench/README.md).
_IDS: BindParameter[list[int]] = bindparam("ids", expanding=True)
_EVENT = Event.__table__.c
_EVENT_ROWS = (
    select(
        _EVENT.id,
        _EVENT.public_id,
        _EVENT.kind,
        _EVENT.category,
        _EVENT.date,
        _EVENT.date_precision,
        _EVENT.end_date,
        _EVENT.title,
        _EVENT.summary,
        _EVENT.place_name,
        _EVENT.lat,
        _EVENT.lon,
        _EVENT.location_precision,
        _EVENT.cameo_code,
        _EVENT.goldstein,
        _EVENT.casualties_killed,
        _EVENT.casualties_wounded,
        _EVENT.casualties_note,
        _EVENT.confidence,
        _EVENT.fact_ref,
        _EVENT.created_at,
        _EVENT.updated_at,
        Place.code.label("place_code"),
        State.code.label("country_code"),
    )
    .outerjoin(Place, Place.id == _EVENT.place_id)
    .outerjoin(State, State.id == _EVENT.location_state_id)
    .where(_EVENT.id.in_(_IDS))
)
_PARTICIPANT = Participant.__table__.c
_PARTICIPANT_ROWS = (
    select(
        _PARTICIPANT.event_id,
        _PARTICIPANT.role,
        _PARTICIPANT.group_name,
        State.code.label("state"),
        Organisation.code.label("organisation"),
    )
    .outerjoin(State, State.id == _PARTICIPANT.state_id)
    .outerjoin(Organisation, Organisation.id == _PARTICIPANT.organisation_id)
    .where(_PARTICIPANT.event_id.in_(_IDS))
    .order_by(_PARTICIPANT.event_id, _PARTICIPANT.position)
)
_TAG_ROWS = select(EventTag.event_id, EventTag.tag).where(EventTag.event_id.in_(_IDS))
_SOURCE_ROWS = (
    select(EventSource.event_id, *_SOURCE_COLUMNS)
    .join(Source, Source.id == EventSource.source_id)
    .where(EventSource.event_id.in_(_IDS))
    .order_by(EventSource.event_id, EventSource.position)
)
_CLAIM = Claim.__table__.c
_CLAIM_ROWS = (
    select(
        _CLAIM.id,
        _CLAIM.event_id,
        _CLAIM.topic,
        _CLAIM.claimant_group,
        _CLAIM.statement,
        _CLAIM.value,
        _CLAIM.unit,
        _CLAIM.made_on,
        State.code.label("state"),
        Organisation.code.label("organisation"),
    )
    .outerjoin(State, State.id == _CLAIM.claimant_state_id)
    .outerjoin(Organisation, Organisation.id == _CLAIM.claimant_organisation_id)
    .where(_CLAIM.event_id.in_(_IDS))
    .order_by(_CLAIM.event_id, _CLAIM.position)
)
_CLAIM_SOURCE_ROWS = (
    select(claim_source.c.claim_id, *_SOURCE_COLUMNS)
    .join(Source, Source.id == claim_source.c.source_id)
    .where(claim_source.c.claim_id.in_(_IDS))
    .order_by(claim_source.c.claim_id, Source.id)
)


def assemble(session: Session, event_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Event documents for these row ids, in the given order, built from their tables."""
    docs = _build(session, list(event_ids))
    return [docs[i] for i in event_ids if i in docs]


def _build(session: Session, ids: list[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    conn = session.connection()
    rows = conn.execute(_EVENT_ROWS, {"ids": ids}).all()
    participants = _participants(session, ids)
    tags = _tags(session, ids)
    sources = _event_sources(session, ids)
    claims = _claims(session, ids)

    docs: dict[int, dict[str, Any]] = {}
    for r in rows:
        location = None
        if r.place_name is not None:
            location = {
                "name": r.place_name,
                "place": r.place_code,
                "lat": r.lat,
                "lon": r.lon,
                "precision": r.location_precision,
                "country": r.country_code,
            }
        casualties = None
        if any(
            v is not None for v in (r.casualties_killed, r.casualties_wounded, r.casualties_note)
        ):
            casualties = {
                "killed": r.casualties_killed,
                "wounded": r.casualties_wounded,
                "note": r.casualties_note,
            }
        docs[r.id] = {
            "id": r.public_id,
            "kind": r.kind,
            "category": r.category,
            "date": r.date,
            "date_precision": r.date_precision,
            "end_date": r.end_date,
            "title": r.title,
            "summary": r.summary,
            "participants": participants.get(r.id, []),
            "location": location,
            "cameo_code": r.cameo_code,
            "goldstein": r.goldstein,
            "casualties": casualties,
            "tags": tags.get(r.id, []),
            "confidence": r.confidence,
            "fact_ref": r.fact_ref,
            "sources": sources.get(r.id, []),
            "claims": claims.get(r.id, []),
            "created_at": r.created_at,
            "updated_at": r.updated_at,
            "url": f"/v1/events/{r.public_id}",
        }
    return docs


def _source_dict(s: Any) -> dict[str, Any]:
    return {name: getattr(s, name) for name in SOURCE_FIELDS}


def _actor(state: str | None, organisation: str | None, group: str | None) -> dict[str, Any]:
    """A participant or claimant: one state, organisation or named group."""
    if state is not None:
        return {"state": state}
    if organisation is not None:
        return {"organisation": organisation}
    return {"group": group}


def _participants(session: Session, ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    rows = session.connection().execute(_PARTICIPANT_ROWS, {"ids": ids}).all()
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        out[r.event_id].append({**_actor(r.state, r.organisation, r.group_name), "role": r.role})
    return out


def _tags(session: Session, ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = defaultdict(list)
    for event_id, tag in session.connection().execute(_TAG_ROWS, {"ids": ids}):
        out[event_id].append(tag)
    # Sorted here, not in SQL, so the order never depends on the database's collation.
    return {event_id: sorted(tags) for event_id, tags in out.items()}


def _event_sources(session: Session, ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    rows = session.connection().execute(_SOURCE_ROWS, {"ids": ids}).all()
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        out[r.event_id].append(_source_dict(r))
    return out


def _claims(session: Session, ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    rows = session.connection().execute(_CLAIM_ROWS, {"ids": ids}).all()
    if not rows:
        return {}
    claim_sources: dict[int, list[dict[str, Any]]] = defaultdict(list)
    claim_ids = [row.id for row in rows]
    for r in session.connection().execute(_CLAIM_SOURCE_ROWS, {"ids": claim_ids}):
        claim_sources[r.claim_id].append(_source_dict(r))
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        out[r.event_id].append(
            {
                "topic": r.topic,
                "claimant": _actor(r.state, r.organisation, r.claimant_group),
                "statement": r.statement,
                "value": r.value,
                "unit": r.unit,
                "made_on": r.made_on,
                "sources": claim_sources.get(r.id, []),
            }
        )
    return out


# --- the stored copies ----------------------------------------------------------------------

_DOCUMENT = EventDocument.__table__.c
_STORED = select(_DOCUMENT.event_id, _DOCUMENT.body).where(
    _DOCUMENT.event_id.in_(_IDS), _DOCUMENT.format == FORMAT
)


def _current(
    session: Session,
    ids: list[int],
    statement: Select[Any],
    *,
    stored: Callable[[Any], Value],
    built: Callable[[bytes], Value],
) -> dict[int, Value]:
    """Each event's stored value where it can be used; for the missing, outdated, and
    changed-but-uncommitted ones, the value `built` from the document assembled afresh."""
    found = {
        event_id: stored(value) for event_id, value in session.execute(statement, {"ids": ids})
    }
    return _completed(session, ids, found, built)


def _completed(
    session: Session, ids: list[int], found: dict[int, Value], built: Callable[[bytes], Value]
) -> dict[int, Value]:
    """`found` (the stored values read), less the events this session changed, plus the value
    `built` afresh for every event in `ids` without one."""
    pending = session.info.get(_TOUCHED)
    if pending is not None:
        for event_id in pending[0]:
            found.pop(event_id, None)
    missing = [i for i in ids if i not in found]
    if missing:
        found.update((i, built(serialise(doc))) for i, doc in _build(session, missing).items())
    return found


def _bodies(session: Session, ids: list[int]) -> dict[int, bytes]:
    return _current(session, ids, _STORED, stored=bytes, built=lambda body: body)


def csv_line(body: bytes) -> str:
    # From the document as served (JSON-safe: ISO dates), as the export wrote it before lines
    # were stored.
    return csvline.csv_line(orjson.loads(body))


def csv_lines(session: Session, rows: Sequence[tuple[int, int | None, str | None]]) -> list[str]:
    """The CSV export's lines of these events, in the given order: `rows` are (event id, stored
    format, stored line), read with the batch (`statements.page_csv`), as `stored` takes them."""
    return _in_order(session, rows, stored=str, built=csv_line)


def stored(
    session: Session, rows: Sequence[tuple[int, int | None, bytes | None]]
) -> list[orjson.Fragment]:
    """The documents of these events as serialised JSON, in the given order, for responses that
    embed them untouched (orjson writes a Fragment as it is).

    `rows` are (event id, stored format, stored body), read with the page
    (`statements.page_documents`); a body missing or of another format is assembled afresh."""
    return [orjson.Fragment(body) for body in _in_order(session, rows, stored=bytes, built=bytes)]


def loaded(
    session: Session, rows: Sequence[tuple[int, int | None, bytes | None]]
) -> list[dict[str, Any]]:
    """As `stored`, each document parsed (as `documents` gives them)."""
    return [orjson.loads(body) for body in _in_order(session, rows, stored=bytes, built=bytes)]


def _in_order(
    session: Session,
    rows: Sequence[tuple[int, int | None, Any]],
    *,
    stored: Callable[[Any], Value],
    built: Callable[[bytes], Value],
) -> list[Value]:
    """The stored values read with `rows` where they can be used (`_completed` for the rest), in
    the rows' order."""
    ids = [event_id for event_id, _format, _value in rows]
    read = {
        i: stored(value) for i, format_, value in rows if format_ == FORMAT and value is not None
    }
    found = _completed(session, ids, read, built) if ids else {}
    return [found[i] for i in ids if i in found]


def documents(session: Session, event_ids: Sequence[int]) -> list[dict[str, Any]]:
    """The documents of these events as JSON-safe dicts (dates as ISO strings), in the given
    order, for callers that read or extend them."""
    ids = list(event_ids)
    found = _bodies(session, ids) if ids else {}
    return [orjson.loads(found[i]) for i in ids if i in found]


def before_change(session: Session, event_id: int) -> dict[str, Any]:
    """The event's document as `documents` gives it, for a write about to change the event: the
    stored copy, unless this transaction has already changed a source (the copies citing it
    are rewritten only at the commit), in which case it is assembled from the tables."""
    touched = session.info.get(_TOUCHED)
    if touched is not None and touched[1]:
        return orjson.loads(serialise(assemble(session, [event_id])[0]))  # type: ignore[no-any-return]
    return documents(session, [event_id])[0]


_LOCK_DOCUMENTS = (
    select(_DOCUMENT.event_id)
    .where(_DOCUMENT.event_id.in_(bindparam("ids", expanding=True)))
    .order_by(_DOCUMENT.event_id)
    .with_for_update()
)


def write(session: Session, event_ids: Sequence[int]) -> int:
    """Rewrite the stored documents of these events from their tables; returns how many.

    Writers are not serialised, so two transactions may rewrite one event's document at once
    (an edit of the event and one of a source it cites, or a fill). Each first locks the rows
    it will rewrite, in id order (no deadlock between two such writers), and only then reads
    the tables: it sees every change committed by a writer it waited for, and a writer that
    waits for it sees its change in turn, so the last to commit writes what the tables say.
    Rows are updated in place, not deleted and inserted, so a waiter's lock follows the row to
    its new version. SQLite has one writer at a time and needs no lock.
    """
    ids = sorted(set(event_ids))
    postgresql = session.get_bind().dialect.name == "postgresql"
    upsert = (pg_insert if postgresql else sqlite_insert)(EventDocument)
    upsert = upsert.on_conflict_do_update(
        index_elements=[_DOCUMENT.event_id],
        set_={name: upsert.excluded[name] for name in ("format", "body", "csv")},
    )
    written = 0
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        if postgresql:
            session.execute(_LOCK_DOCUMENTS, {"ids": chunk})
        docs = _build(session, chunk)
        gone = [i for i in chunk if i not in docs]
        if gone:
            session.execute(delete(EventDocument).where(EventDocument.event_id.in_(gone)))
        rows = [
            {"event_id": i, "format": FORMAT, "body": body, "csv": csv_line(body)}
            for i, body in ((i, serialise(doc)) for i, doc in docs.items())
        ]
        if rows:
            session.execute(upsert, rows)
        written += len(rows)
    return written


# NOT EXISTS, not NOT IN: on a large table PostgreSQL cannot hash a NOT IN list of every id
# in work_mem, and probes the subquery once per event instead; it plans NOT EXISTS as an
# anti-join, far faster (bench/README.md).
OUTDATED = (
    select(Event.id)
    .where(~exists().where(_DOCUMENT.event_id == Event.id, _DOCUMENT.format == FORMAT))
    .order_by(Event.id)
)


def outdated(session: Session) -> list[int]:
    """Events without a stored document of the current format."""
    return list(session.scalars(OUTDATED))


def fill(session: Session, *, everything: bool = False) -> Iterator[tuple[int, int]]:
    """Write the missing and outdated documents (all of them with `everything`) batch by batch,
    yielding (done, total) after each; the caller commits when it likes."""
    ids = (
        list(session.scalars(select(Event.id).order_by(Event.id)))
        if everything
        else outdated(session)
    )
    for start in range(0, len(ids), BATCH):
        write(session, ids[start : start + BATCH])
        yield min(start + BATCH, len(ids)), len(ids)


# --- keeping them in step: the write step (app/writes.py) calls these ------------------------

_TOUCHED = "app.events.documents.touched"


def _cited_change(state: InstanceState[Any]) -> bool:
    """A source's change that shows in the documents citing it (not its version or notes)."""
    return state.identity is not None and any(
        state.attrs[name].history.has_changes() for name in SOURCE_FIELDS
    )


def note_flush(session: Session) -> None:
    """Note which events a flush changed (after it). The unit of work's lists still hold what
    was flushed; ids are known now (a new row's only after its insert)."""
    events: set[int] = set()
    sources: set[int] = set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        # The instance's own dict, not attributes: reading an expired one would load it.
        state = inspect(obj)
        if isinstance(obj, Event) and state.identity is not None:
            events.add(state.identity[0])
        elif isinstance(obj, Participant | EventTag | EventSource | Claim):
            if state.dict.get("event_id") is not None:
                events.add(state.dict["event_id"])
        elif isinstance(obj, Source) and obj in session.dirty and _cited_change(state):
            sources.add(state.identity[0])
    if events or sources:
        touched = session.info.setdefault(_TOUCHED, (set(), set()))
        touched[0].update(events)
        touched[1].update(sources)


def refresh(session: Session) -> None:
    """Rewrite the stored documents of the events this transaction changed, and of the events
    citing a source it changed."""
    touched = session.info.pop(_TOUCHED, None)
    if touched is None:
        return
    events, sources = touched
    if sources:
        citing = select(EventSource.event_id).where(EventSource.source_id.in_(sources))
        claimed = (
            select(Claim.event_id)
            .join(claim_source, claim_source.c.claim_id == Claim.id)
            .where(claim_source.c.source_id.in_(sources))
        )
        events |= set(session.scalars(citing.union(claimed)))
    # Executed at once, not queued for a flush: a failing write fails the commit, and with it
    # the change.
    write(session, sorted(events))


def forget(session: Session) -> None:
    session.info.pop(_TOUCHED, None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.events.documents",
        description="Write the stored event documents that are missing or of an older format"
        " (after an upgrade, or a bulk load that wrote tables directly). The API serves correct"
        " documents without them, only slower. Commits after every batch, so it can be stopped"
        " and run again.",
    )
    parser.add_argument(
        "--database-url", help="database to fill (default: DATABASE_URL, as the API uses)"
    )
    parser.add_argument(
        "--all", action="store_true", help="rewrite every document, not only the missing ones"
    )
    parser.add_argument("--quiet", action="store_true", help="print only the final summary line")
    args = parser.parse_args(argv)
    url = args.database_url or get_settings().database_url
    engine = create_db_engine(url)
    started = time.monotonic()
    done = total = 0
    try:
        with create_session_factory(engine)() as session:
            for done, total in fill(session, everything=args.all):
                session.commit()
                if not args.quiet:
                    rate = done / max(time.monotonic() - started, 1e-9)
                    print(
                        f"documents: {done:,}/{total:,} ({done * 100 // total} %), {rate:,.0f}/s",
                        file=sys.stderr,
                        flush=True,
                    )
            session.commit()
    finally:
        engine.dispose()
    print(
        f"documents: {done:,} written ({total:,} were missing or outdated)"
        f" in {time.monotonic() - started:.1f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Facet counts kept with the data, so `GET /v1/timeline/facets` sums a few rows instead of
grouping every matching event (bench/README.md has the figures).

What is kept. `facet_count` holds live events per (given, kind, category, period) and
`facet_actor_count` the same per actor taking part (`value`): `given` is 0 for every event or
one actor (a state's id, an organisation's id negated) for the events it takes part in, which
makes the pairings that answer "which states take part in the events of state X" exact;
`category` is '' for every category of the kind; `period` is 0 for all time, a month as
202407, a year negated (-2024: then no year shares a key with a month, whatever the year).
`LEVELS` lists the combinations kept: each adds rows to every write, so the ones that would
cost many rows for few queries (an actor's pairings by year or month per category) are left out
and those queries read the tables instead (`app.timeline.service`).

How it stays exact. `facet_event` records what each live event was counted as (date, kind,
category, actors). A commit that touched an event (its row or its participants) subtracts that
record and adds what the event adds now, in the same transaction (`note_flush` and `refresh`,
run by the write step, app/writes.py), so edits, soft deletes and revisions need no case of
their own. Bulk loaders that write with Core (bench/synth.py, the archive import) call
`rebuild`; `python -m app.timeline.counts` rebuilds or checks them (`--check` compares every
stored row with a plain GROUP BY over the tables).
"""

import argparse
import datetime as dt
import sys
import time
from calendar import monthrange
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from typing import cast as cast_

from sqlalchemy import (
    BindParameter,
    Integer,
    Select,
    String,
    Table,
    and_,
    bindparam,
    case,
    cast,
    delete,
    extract,
    func,
    insert,
    inspect,
    literal,
    or_,
    select,
    text,
    tuple_,
    type_coerce,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.config import get_settings
from app.db import create_db_engine, create_session_factory
from app.models import (
    Event,
    EventTag,
    FacetActorCount,
    FacetCount,
    FacetEvent,
    Participant,
    StatePair,
)
from app.vocabulary import EventKind

Period = Literal["all", "year", "month"]
KINDS = tuple(kind.value for kind in EventKind)
BATCH = 5000


@dataclass(frozen=True, slots=True)
class Level:
    """One combination of keys kept: per given actor (else given 0), per actor taking part
    (`facet_actor_count`, else `facet_count`), per period, per category (else '')."""

    given: bool
    actors: bool
    period: Period
    category: bool


# Reads trust that exactly these rows are stored: a change here needs a migration that
# rebuilds the counts (`rebuild`), and `check` reports a database built with other levels.
LEVELS: tuple[Level, ...] = (
    # Every event: all of it, by year and by month, per kind and per category.
    *(Level(False, False, p, c) for p in ("all", "year", "month") for c in (False, True)),
    *(Level(False, True, p, False) for p in ("all", "year", "month")),
    Level(False, True, "all", True),
    Level(False, True, "year", True),
    # The events of one actor: all of it, by year and by month; its pairings per kind all of
    # it, by year and by month (a window that cuts years then reads the events of its two
    # edge months only, `read_days`), per category all of it only. Its pairings by year or
    # month per category are read from the tables: they would add a row per actor, pairing
    # and category to every write.
    *(Level(True, False, p, c) for p in ("all", "year", "month") for c in (False, True)),
    Level(True, True, "all", False),
    Level(True, True, "year", False),
    Level(True, True, "all", True),
    # Added by a migration of its own (9c1f0e7a2b6d), which fills and removes just its rows.
    Level(True, True, "month", False),
)
PAIRINGS_BY_MONTH = Level(True, True, "month", False)
KEPT = frozenset(LEVELS)


def kept(*, given: bool, actors: bool, period: Period, category: bool) -> bool:
    return Level(given, actors, period, category) in KEPT


def period_key(period: Period, date: dt.date) -> int:
    if period == "all":
        return 0
    if period == "year":
        return -date.year
    return date.year * 100 + date.month


# --- what one event adds ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Counted:
    """An event as the counts see it."""

    date: dt.date
    kind: str
    category: str
    actors: frozenset[int]

    def encoded(self) -> str:
        return " ".join(str(a) for a in sorted(self.actors))


def decode(actors: str) -> frozenset[int]:
    return frozenset(int(a) for a in actors.split())


EventKey = tuple[int, str, str, int]
ActorKey = tuple[int, str, str, int, int]


def contribution(event: Counted, events: Counter[EventKey], actors: Counter[ActorKey]) -> None:
    """Add the event's keys to the two counters."""
    for level in LEVELS:
        period = period_key(level.period, event.date)
        category = event.category if level.category else ""
        for given in sorted(event.actors) if level.given else (0,):
            if level.actors:
                for value in event.actors:
                    actors[given, event.kind, category, period, value] += 1
            else:
                events[given, event.kind, category, period] += 1


# --- keeping them in step: the write step (app/writes.py) calls these ------------------------

_TOUCHED = "app.timeline.counts.touched"
_IDS: BindParameter[list[int]] = bindparam("ids", expanding=True)
_FACET_EVENT = FacetEvent.__table__.c
_EVENT = Event.__table__.c
_PARTICIPANT = Participant.__table__.c
_ACTOR = case(
    (_PARTICIPANT.state_id.is_not(None), _PARTICIPANT.state_id), else_=-_PARTICIPANT.organisation_id
)
_RECORDED = select(
    _FACET_EVENT.event_id,
    _FACET_EVENT.date,
    _FACET_EVENT.kind,
    _FACET_EVENT.category,
    _FACET_EVENT.actors,
).where(_FACET_EVENT.event_id.in_(_IDS))
_LIVE = select(_EVENT.id, _EVENT.date, _EVENT.kind, _EVENT.category).where(
    _EVENT.id.in_(_IDS), _EVENT.deleted_at.is_(None)
)
_ACTORS = (
    select(_PARTICIPANT.event_id, _ACTOR)
    .where(
        _PARTICIPANT.event_id.in_(_IDS),
        or_(_PARTICIPANT.state_id.is_not(None), _PARTICIPANT.organisation_id.is_not(None)),
    )
    .distinct()
)


def note_flush(session: Session) -> None:
    """Note which events a flush changed (after it): their rows or their participants."""
    events: set[int] = set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        state = inspect(obj)
        if isinstance(obj, Event) and state.identity is not None:
            events.add(state.identity[0])
        elif isinstance(obj, Participant) and state.dict.get("event_id") is not None:
            events.add(state.dict["event_id"])
    if events:
        session.info.setdefault(_TOUCHED, set()).update(events)


def refresh(session: Session) -> None:
    """Move the counts of the events this transaction changed from what they were counted as
    to what they are now."""
    touched = session.info.pop(_TOUCHED, None)
    if touched:
        recount(session, sorted(touched))


def forget(session: Session) -> None:
    session.info.pop(_TOUCHED, None)


def recorded(session: Session, ids: Sequence[int]) -> dict[int, Counted]:
    """What the events among `ids` were last counted as, from their records."""
    return {
        row.event_id: Counted(row.date, row.kind, row.category, decode(row.actors))
        for row in session.connection().execute(_RECORDED, {"ids": list(ids)})
    }


def current(session: Session, ids: Sequence[int]) -> dict[int, Counted]:
    """The live events among `ids` as the counts see them now, from their tables."""
    conn = session.connection()
    actors: dict[int, set[int]] = defaultdict(set)
    for event_id, actor in conn.execute(_ACTORS, {"ids": list(ids)}):
        actors[event_id].add(actor)
    return {
        row.id: Counted(row.date, row.kind, row.category, frozenset(actors.get(row.id, ())))
        for row in conn.execute(_LIVE, {"ids": list(ids)})
    }


def recount(session: Session, ids: Sequence[int]) -> None:
    """Bring the counts and records of these events in step with their tables."""
    conn = session.connection()
    for start in range(0, len(ids), BATCH):
        chunk = list(ids[start : start + BATCH])
        before = recorded(session, chunk)
        now = current(session, chunk)
        changed = [i for i in chunk if before.get(i) != now.get(i)]
        if not changed:
            continue
        events: Counter[EventKey] = Counter()
        actors: Counter[ActorKey] = Counter()
        for event_id in changed:
            if event_id in now:
                contribution(now[event_id], events, actors)
            if event_id in before:
                gone_events: Counter[EventKey] = Counter()
                gone_actors: Counter[ActorKey] = Counter()
                contribution(before[event_id], gone_events, gone_actors)
                events.subtract(gone_events)
                actors.subtract(gone_actors)
        _add(session, FacetCount.__table__, events)
        _add(session, FacetActorCount.__table__, actors)
        conn.execute(delete(FacetEvent).where(FacetEvent.event_id.in_(changed)))
        rows = [_record(i, now[i]) for i in changed if i in now]
        if rows:
            conn.execute(insert(FacetEvent), rows)


def _record(event_id: int, event: Counted) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "date": event.date,
        "kind": event.kind,
        "category": event.category,
        "actors": event.encoded(),
    }


def _add(session: Session, table: Any, deltas: Counter[Any]) -> None:
    """Add each delta to its row: a rise creates the row at need, a fall lowers a row that
    exists (the CHECK refuses a negative count, even one an upsert would have merged) and
    the rows left at 0 are dropped. Keys in order within each statement."""
    keys = [c.name for c in table.primary_key.columns]
    rises = sorted((key, n) for key, n in deltas.items() if n > 0)
    falls = sorted((key, n) for key, n in deltas.items() if n < 0)
    conn = session.connection()
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql" and rises and falls:
        # Writers run side by side on PostgreSQL and hold the rows they change to their commit;
        # the all-time rows are in nearly every write. Rises and falls are two statements, so
        # one writer raising A then lowering B and another raising B then lowering A would
        # deadlock: the rows that exist are locked first, all in key order, as every writer
        # does. (Rows a rise creates are inserted in key order too.)
        pk = [table.c[k] for k in keys]
        conn.execute(
            select(*pk)
            .where(tuple_(*pk).in_([key for key, _n in sorted(rises + falls)]))
            .order_by(*pk)
            .with_for_update()
        )
    if rises:
        upsert = (postgresql if dialect == "postgresql" else sqlite).insert(table)
        upsert = upsert.on_conflict_do_update(
            index_elements=keys, set_={"n": table.c.n + upsert.excluded.n}
        )
        conn.execute(upsert, [{**dict(zip(keys, key, strict=True)), "n": n} for key, n in rises])
    if falls:
        where = and_(*(table.c[k] == bindparam(f"k_{k}") for k in keys))
        rows = [
            {**{f"k_{k}": v for k, v in zip(keys, key, strict=True)}, "d": n} for key, n in falls
        ]
        conn.execute(table.update().where(where).values(n=table.c.n + bindparam("d")), rows)
        conn.execute(
            delete(table).where(where, table.c.n == 0),
            [{k: v for k, v in row.items() if k != "d"} for row in rows],
        )


# --- reading ------------------------------------------------------------------------------------


# An event's record as read: event id, date (as the driver gives it: a date, or SQLite's ISO
# text, spared the conversion), kind, category, actors.
Record = tuple[int, Any, str, str, str]
_STATE_PAIR = StatePair.__table__.c
_EVENT_TAG = EventTag.__table__.c


@dataclass(slots=True)
class Tally:
    """Facet counts being summed: kind, category and period by their value, actors by key."""

    kind: Counter[str]
    category: Counter[str]
    period: Counter[str]
    actor: Counter[int]

    @classmethod
    def empty(cls) -> "Tally":
        return cls(Counter(), Counter(), Counter(), Counter())


def _bucket(period: int, interval: str) -> str:
    year, month = (-period, 0) if period < 0 else divmod(period, 100)
    return f"{year:04d}" if interval == "year" else f"{year:04d}-{month:02d}"


def _periods(column: Any, pieces: Sequence[tuple[Period, int, int]]) -> Any:
    """The keys of these pieces: all time (0), years (lo..hi, stored negated), months."""
    return or_(
        *(
            column.between(-hi, -lo) if period == "year" else column.between(lo, hi)
            for period, lo, hi in pieces
        )
    )


def read(
    session: Session,
    *,
    given: int,
    kinds: Sequence[str],
    categories: Sequence[str],
    pieces: Sequence[tuple[Period, int, int]],
    interval: str,
    tally: Tally,
) -> None:
    """Add the counts of the events of `given` (0: every event) in these pieces of time (each
    its period and first and last key, as `split` gives them) with these kinds and categories
    (none: any) to `tally`. The caller checks with `covers` that the rows are kept."""
    kinds = list(kinds) or list(KINDS)
    fc, ac = FacetCount.__table__.c, FacetActorCount.__table__.c

    def narrowed(c: Any, *, per_category: bool) -> list[Any]:
        where = [c.given == given, c.kind.in_(kinds)]
        if categories:
            where.append(c.category.in_(list(categories)))
        else:
            where.append(c.category != "" if per_category else c.category == "")
        return where

    conn = session.connection()
    stmt = (
        select(fc.kind, fc.category, func.sum(fc.n))
        .where(*narrowed(fc, per_category=True), _periods(fc.period, pieces))
        .group_by(fc.kind, fc.category)
    )
    for kind, category, n in conn.execute(stmt).all():
        tally.kind[kind] += n
        tally.category[category] += n
    stmt = (
        select(ac.value, func.sum(ac.n))
        .where(*narrowed(ac, per_category=bool(categories)), _periods(ac.period, pieces))
        .group_by(ac.value)
    )
    for value, n in conn.execute(stmt).all():
        tally.actor[value] += n
    # The `period` facet: month rows, or year rows where whole years were asked for by year.
    months: list[tuple[Period, int, int]] = []
    years: list[tuple[Period, int, int]] = []
    for piece in pieces:
        period, lo, hi = piece
        if period == "month":
            months.append(piece)
        elif interval == "year":
            years.append(("year", 1, 9999) if period == "all" else piece)
        elif period == "all":
            months.append(("month", 101, 999912))
        else:
            months.append(("month", lo * 100 + 1, hi * 100 + 12))
    for chosen in (months, years):
        if not chosen:
            continue
        stmt = (
            select(fc.period, func.sum(fc.n))
            .where(*narrowed(fc, per_category=bool(categories)), _periods(fc.period, chosen))
            .group_by(fc.period)
        )
        for period, n in conn.execute(stmt).all():
            tally.period[_bucket(period, interval)] += n


_RECORD = (
    _FACET_EVENT.event_id,
    type_coerce(_FACET_EVENT.date, String),
    _FACET_EVENT.kind,
    _FACET_EVENT.category,
    _FACET_EVENT.actors,
)


def _all(session: Session, stmt: Select[Any], params: dict[str, Any] | None = None) -> list[Record]:
    return cast_(list[Record], session.connection().execute(stmt, params).all())


@dataclass(frozen=True, slots=True)
class Window:
    """Which of the events an index lists a read keeps: those dated from `start` to `end`
    (None: open), of these kinds and categories (none: any)."""

    start: dt.date | None = None
    end: dt.date | None = None
    kinds: Sequence[str] = ()
    categories: Sequence[str] = ()


def _records_via(
    session: Session, table: Any, where: Sequence[Any], window: Window
) -> list[Record]:
    """The records of the live events a table with copies of the event's id and date (a
    participation, a pair, a tag) lists under `where`, in the window: read off its (key, date)
    index, each record by key. An event the table lists twice (an actor in two roles) comes
    twice."""
    lo, hi = window.start or dt.date.min, window.end or dt.date.max
    stmt = (
        select(*_RECORD)
        .join(table, table.c.event_id == _FACET_EVENT.event_id)
        .where(*where, table.c.date.between(lo, hi))
    )
    if window.kinds:
        stmt = stmt.where(_FACET_EVENT.kind.in_(list(window.kinds)))
    if window.categories:
        stmt = stmt.where(_FACET_EVENT.category.in_(list(window.categories)))
    return _all(session, stmt)


def read_days(
    session: Session,
    *,
    given: int,
    kinds: Sequence[str],
    categories: Sequence[str],
    days: Sequence[tuple[dt.date, dt.date]],
    interval: str,
    tally: Tally,
) -> None:
    """Add the events of one actor (`given`, not 0) on these days to `tally`, from their
    records: read off the actor's participations' (actor, date) index, each event's record by
    its key, so the cost follows the actor's events on those days, not all of its events."""
    column = _PARTICIPANT.state_id if given > 0 else _PARTICIPANT.organisation_id
    records: dict[int, Record] = {}
    # One statement per run of days: PostgreSQL bounds the index scan by a single range only,
    # and tests an OR of ranges on every participation of the actor instead.
    for lo, hi in days:
        window = Window(lo, hi, kinds, categories)
        found = _records_via(session, Participant.__table__, [column == abs(given)], window)
        # An actor taking part twice (two roles) reads the event twice.
        records.update((r[0], r) for r in found)
    add_records(tally, records.values(), interval)


def total(session: Session, given: int) -> int:
    """Live events of one actor, all time (kept counts)."""
    fc = FacetCount.__table__.c
    stmt = select(func.sum(fc.n)).where(
        fc.given == given, fc.kind.in_(list(KINDS)), fc.category == "", fc.period == 0
    )
    return int(session.connection().execute(stmt).scalar() or 0)


def shared_total(session: Session, first: int, second: int) -> int:
    """Live events both actors take part in, all time (kept pairings): 0 spares reading them."""
    ac = FacetActorCount.__table__.c
    stmt = select(func.sum(ac.n)).where(
        ac.given == first,
        ac.kind.in_(list(KINDS)),
        ac.category == "",
        ac.period == 0,
        ac.value == second,
    )
    return int(session.connection().execute(stmt).scalar() or 0)


def read_shared(session: Session, *, driver: int, other: int, window: Window) -> list[Record]:
    """The records of the live events both actors take part in (`_records_via`). Two states
    are read off their pair's (pair, date) index; otherwise the driver's participations off
    their (actor, date) index, each record tested for the other actor, so the caller passes
    the actor with fewer events as `driver`."""
    where: list[Any]
    if driver > 0 and other > 0:
        table: Any = StatePair.__table__
        a, b = sorted((driver, other))
        where = [_STATE_PAIR.state_a == a, _STATE_PAIR.state_b == b]
    else:
        table = Participant.__table__
        column = _PARTICIPANT.state_id if driver > 0 else _PARTICIPANT.organisation_id
        # The record lists its actors between single spaces.
        spaced = literal(" ") + _FACET_EVENT.actors + literal(" ")
        where = [column == abs(driver), spaced.contains(f" {other} ")]
    return _records_via(session, table, where, window)


def read_tagged(session: Session, *, tag: str, window: Window) -> list[Record]:
    """The records of the live events with a tag, off the tags' (tag, date) index."""
    return _records_via(session, EventTag.__table__, [_EVENT_TAG.tag == tag], window)


def read_matching(session: Session, ids: Select[Any], params: dict[str, Any]) -> list[Record]:
    """The records of the events whose ids `ids` selects (executed with `params`)."""
    stmt = select(*_RECORD).where(
        _FACET_EVENT.event_id.in_(ids.with_only_columns(ids.selected_columns[0]))
    )
    return _all(session, stmt, params)


def add_records(tally: Tally, records: Iterable[Record], interval: str, weight: int = 1) -> None:
    """Add each event record to `tally` `weight` times (a negative weight takes it away)."""
    width = 4 if interval == "year" else 7
    rows = list(records)
    # Counted per column first (in C), then added: far fewer Python steps per record, and each
    # distinct list of actors is split once.
    for counter, values in (
        (tally.kind, Counter(r[2] for r in rows)),
        (tally.category, Counter(r[3] for r in rows)),
        (tally.period, Counter(str(r[1])[:width] for r in rows)),
    ):
        for value, n in values.items():
            counter[value] += n * weight
    for actors, n in Counter(r[4] for r in rows).items():
        for actor in actors.split():
            tally.actor[int(actor)] += n * weight


def covers(*, given: bool, categories: bool, period: Period, interval: str) -> bool:
    """Whether the kept rows answer every facet for one piece of a query."""
    by_category = categories
    needed = [
        (False, period, True),  # kind, category, total
        (True, period, by_category),  # actors
    ]
    if period == "month" or interval == "month":
        needed.append((False, "month", by_category))
    else:
        needed.append((False, "year", by_category))
    return all(kept(given=given, actors=actors, period=p, category=c) for actors, p, c in needed)


def split(
    start: dt.date | None, end: dt.date | None
) -> tuple[list[tuple[Period, int, int]], list[tuple[dt.date, dt.date]]]:
    """A date window as whole periods (all time; whole years; whole months, each as (kind,
    first key, last key)) and the days left over at its edges, as (first, last) days."""
    if start is None and end is None:
        return [("all", 0, 0)], []
    lo = start or dt.date(1, 1, 1)
    hi = end or dt.date(9999, 12, 31)
    days: list[tuple[dt.date, dt.date]] = []
    first = _month_index(lo) + (0 if lo.day == 1 else 1)
    last = _month_index(hi) - (
        0 if hi == dt.date.max or (hi + dt.timedelta(days=1)).day == 1 else 1
    )
    if first > last:
        return [], [(lo, hi)]
    if lo.day != 1:
        days.append((lo, _month_start(first) - dt.timedelta(days=1)))
    if _month_index(hi) != last:
        days.append((_month_start(last + 1), hi))
    pieces: list[tuple[Period, int, int]] = []
    first_year = (first + 11) // 12
    last_year = (last + 1) // 12 - 1
    if first_year <= last_year:
        if first < first_year * 12:
            pieces.append(("month", _month_key(first), _month_key(first_year * 12 - 1)))
        pieces.append(("year", first_year, last_year))
        if last > last_year * 12 + 11:
            pieces.append(("month", _month_key(last_year * 12 + 12), _month_key(last)))
    else:
        pieces.append(("month", _month_key(first), _month_key(last)))
    return pieces, days


def _month_index(date: dt.date) -> int:
    return date.year * 12 + date.month - 1


def _month_key(index: int) -> int:
    return (index // 12) * 100 + index % 12 + 1


def _month_start(index: int) -> dt.date:
    return dt.date(index // 12, index % 12 + 1, 1)


def days_of(piece: tuple[Period, int, int]) -> tuple[dt.date, dt.date]:
    """The first and last day of a piece of whole years or months."""
    period, lo, hi = piece
    if period == "year":
        return dt.date(lo, 1, 1), dt.date(hi, 12, 31)
    year, month = divmod(hi, 100)
    return dt.date(lo // 100, lo % 100, 1), dt.date(year, month, monthrange(year, month)[1])


# --- rebuilding and checking --------------------------------------------------------------------


def _expected(table: Table, level: Level) -> Select[Any]:
    """A plain GROUP BY over the tables giving `level`'s rows of `table`."""
    live = Event.__table__.alias("live")
    acts = (
        select(_PARTICIPANT.event_id.label("event_id"), _ACTOR.label("actor"))
        .where(or_(_PARTICIPANT.state_id.is_not(None), _PARTICIPANT.organisation_id.is_not(None)))
        .distinct()
    )
    g, v = acts.subquery("g"), acts.subquery("v")
    year = cast(extract("year", live.c.date), Integer)
    period: Any = {
        "all": literal(0),
        "year": -year,
        "month": year * 100 + cast(extract("month", live.c.date), Integer),
    }[level.period]
    category: Any = live.c.category if level.category else literal("")
    given: Any = g.c.actor if level.given else literal(0)
    columns = [
        given.label("given"),
        live.c.kind,
        category.label("category"),
        period.label("period"),
    ]
    frm: Any = live
    if level.given:
        frm = frm.join(g, g.c.event_id == live.c.id)
    if level.actors:
        frm = frm.join(v, v.c.event_id == live.c.id)
        columns.append(v.c.actor.label("value"))
    return (
        select(*columns, func.count().label("n"))
        .select_from(frm)
        .where(live.c.deleted_at.is_(None))
        .group_by(*columns)
    )


def _tables() -> list[tuple[Table, bool]]:
    return [(FacetCount.__table__, False), (FacetActorCount.__table__, True)]  # type: ignore[list-item]


def _fill(session: Session, table: Table, actors: bool) -> int:
    names = [c.name for c in table.columns]
    for level in LEVELS:
        if level.actors == actors:
            session.execute(insert(table).from_select(names, _expected(table, level)))
    # Counted afterwards: drivers do not all give an INSERT ... SELECT's row count.
    return int(session.scalar(select(func.count()).select_from(table)) or 0)


def fill(session: Session, level: Level) -> None:
    """Recount one level's rows from the tables (a migration that adds a level); the caller
    commits."""
    table = next(t for t, actors in _tables() if actors == level.actors)
    session.execute(delete(table).where(*_level_rows(table.c, level)))
    names = [c.name for c in table.columns]
    session.execute(insert(table).from_select(names, _expected(table, level)))


def _level_rows(c: Any, level: Level) -> list[Any]:
    """The keys that are a level's own rows and no other level's."""
    return [
        c.given != 0 if level.given else c.given == 0,
        c.category != "" if level.category else c.category == "",
        {"all": c.period == 0, "year": c.period < 0, "month": c.period > 0}[level.period],
    ]


def rebuild(session: Session, progress: Any = None) -> dict[str, int]:
    """Recount everything from the tables; the caller commits."""
    if session.get_bind().dialect.name == "postgresql":
        # Writers keep the counts in step row by row as they commit: they wait until the
        # rebuild commits (reads go on), then move the rebuilt counts by what they changed.
        session.execute(
            text(
                "LOCK TABLE facet_event, facet_count, facet_actor_count IN SHARE ROW EXCLUSIVE MODE"
            )
        )
    conn = session.connection()
    conn.execute(delete(FacetEvent))
    records = 0
    for chunk in _event_id_chunks(session):
        rows = [_record(i, c) for i, c in current(session, chunk).items()]
        if rows:
            conn.execute(insert(FacetEvent), rows)
        records += len(rows)
        if progress and records % 100_000 < len(rows):
            progress("facet_event", records)
    out = {"facet_event": records}
    for table, actors in _tables():
        conn.execute(delete(table))
        out[table.name] = _fill(session, table, actors)
        if progress:
            progress(table.name, out[table.name])
    return out


def _event_id_chunks(session: Session) -> Iterator[list[int]]:
    ids = list(
        session.scalars(select(_EVENT.id).where(_EVENT.deleted_at.is_(None)).order_by(_EVENT.id))
    )
    for start in range(0, len(ids), BATCH):
        yield ids[start : start + BATCH]


def check(session: Session) -> dict[str, int]:
    """Rows that differ between the stored counts and a plain GROUP BY over the tables, per
    table (all zero when they agree); `facet_event` against each live event's rows."""
    out: dict[str, int] = {}
    conn = session.connection()
    for table, actors in _tables():
        # One statement per table, both ways round: every test's database is checked after its
        # writes (tests/conftest.py), and a scratch table cost two dozen round trips.
        expected = union_all(
            *(_expected(table, level) for level in LEVELS if level.actors == actors)
        ).cte("expected")
        stored = select(*table.columns)
        wanted = select(*(expected.c[c.name] for c in table.columns))
        missing = select(func.count()).select_from(wanted.except_(stored).subquery())
        extra = select(func.count()).select_from(stored.except_(wanted).subquery())
        both = select(missing.scalar_subquery() + extra.scalar_subquery()).add_cte(expected)
        out[table.name] = int(conn.execute(both).scalar_one())
    differ = 0
    ids = list(session.scalars(select(_EVENT.id).union(select(_FACET_EVENT.event_id))))
    for start in range(0, len(ids), BATCH):
        chunk = sorted(ids[start : start + BATCH])
        was = recorded(session, chunk)
        now = current(session, chunk)
        differ += sum(was.get(i) != now.get(i) for i in chunk)
    out["facet_event"] = differ
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.timeline.counts",
        description="Rebuild the facet counts from the tables (after an upgrade, or a bulk load"
        " that wrote tables directly), or check them against a plain GROUP BY. The API keeps them"
        " in step at every write; facets read them.",
    )
    parser.add_argument(
        "--database-url", help="database to use (default: DATABASE_URL, as the API uses)"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="compare the stored counts with the tables and change nothing; exit 1 if they differ",
    )
    parser.add_argument("--quiet", action="store_true", help="print only the final summary line")
    args = parser.parse_args(argv)
    url = args.database_url or get_settings().database_url
    engine = create_db_engine(url)
    started = time.monotonic()

    def progress(what: str, done: int) -> None:
        if not args.quiet:
            print(f"counts: {what}: {done:,} rows", file=sys.stderr, flush=True)

    try:
        with create_session_factory(engine)() as session:
            if args.check:
                differ = check(session)
                session.rollback()
                print(
                    "counts: "
                    + ", ".join(f"{name} {n:,} rows differ" for name, n in differ.items())
                    + f" in {time.monotonic() - started:.1f} s",
                    file=sys.stderr,
                )
                return 1 if any(differ.values()) else 0
            written = rebuild(session, progress)
            session.commit()
    finally:
        engine.dispose()
    print(
        "counts: rebuilt "
        + ", ".join(f"{name} {n:,} rows" for name, n in written.items())
        + f" in {time.monotonic() - started:.1f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The timeline query: filters, keyset pagination and signed cursors."""

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache, partial
from typing import Any

import orjson
from sqlalchemy import Select, bindparam, func, literal, or_, select, union_all
from sqlalchemy.orm import Session

from app.db import WRITE_TRANSACTION
from app.errors import InvalidParameter
from app.events import csvline, documents
from app.models import Event, Organisation, Participant, Place, PlaceAlias, State
from app.revisions import service as revision_service
from app.schemas import parse_partial_date, unknown_code
from app.search import search_terms
from app.search import words as search_words
from app.timeline import counts, filters, planner, search_index, statements
from app.timeline.planner import Filters, PagePlan
from app.timeline.schemas import FacetsQuery, TimelineFilters, TimelineQuery

CURSOR_VERSION = 1
PAGE_FIELDS = {"cursor", "limit", "count", "format", "group_by"}


@dataclass(frozen=True, slots=True)
class Page:
    # Dicts, or on the plain path the stored documents as orjson Fragments (served as they are).
    items: list[Any]
    next_cursor: str | None
    total: int | None
    # The time of the latest change to any data (Last-Modified), None before the first.
    changed_at: dt.datetime | None


def _fingerprint(query: TimelineQuery) -> str:
    """Identifies the filters a cursor was issued for, so it cannot be replayed on another query."""
    shape = query.model_dump(mode="json", exclude=PAGE_FIELDS)
    return hashlib.sha256(orjson.dumps(shape, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def encode_cursor(secret: str, query: TimelineQuery, date: dt.date, public_id: str) -> str:
    payload = orjson.dumps(
        {"v": CURSOR_VERSION, "d": date.isoformat(), "i": public_id, "f": _fingerprint(query)}
    )
    sig = hmac.new(secret.encode(), payload, hashlib.sha256).digest()[:12]
    return base64.urlsafe_b64encode(payload + sig).decode().rstrip("=")


def decode_cursor(secret: str, query: TimelineQuery, cursor: str) -> tuple[dt.date, str]:
    data = _verified(secret, query, cursor)
    if "d" not in data:
        raise InvalidParameter(["query", "cursor"], "this cursor belongs to another order")
    return dt.date.fromisoformat(data["d"]), str(data["i"])


def _verified(secret: str, query: TimelineQuery, cursor: str) -> dict[str, Any]:
    def bad(msg: str) -> InvalidParameter:
        return InvalidParameter(["query", "cursor"], msg)

    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raise bad("not a cursor issued by this API (it may be truncated)") from None
    payload, sig = raw[:-12], raw[-12:]
    expected = hmac.new(secret.encode(), payload, hashlib.sha256).digest()[:12]
    if len(raw) <= 12 or not hmac.compare_digest(sig, expected):
        raise bad("not a cursor issued by this API (it may be truncated or edited)")
    data = orjson.loads(payload)
    if data.get("v") != CURSOR_VERSION:
        raise bad("this cursor comes from an older version of the API; start again without it")
    if data.get("f") != _fingerprint(query):
        raise bad("this cursor belongs to a query with other filters or order; keep them unchanged")
    return dict(data)


def encode_offset(secret: str, query: TimelineQuery, offset: int) -> str:
    payload = orjson.dumps({"v": CURSOR_VERSION, "o": offset, "f": _fingerprint(query)})
    sig = hmac.new(secret.encode(), payload, hashlib.sha256).digest()[:12]
    return base64.urlsafe_b64encode(payload + sig).decode().rstrip("=")


def decode_offset(secret: str, query: TimelineQuery, cursor: str) -> int:
    data = _verified(secret, query, cursor)
    if not isinstance(data.get("o"), int):
        raise InvalidParameter(["query", "cursor"], "this cursor belongs to another order")
    return int(data["o"])


# Built once per table: every filtered page looks codes up, and building a statement costs
# several times running this one.
_BY_CODE = {
    model: select(model.__table__.c.code, model.__table__.c.id).where(
        model.__table__.c.code.in_(bindparam("codes", expanding=True))
    )
    for model in (State, Organisation)
}


# A state's or organisation's code names the same row for good: codes are never reused or
# changed (PATCH refuses it) and deleting is a soft delete. So a code once read is kept with the
# pooled connection (`Connection.info`, which lives as long as the database connection) instead
# of being looked up on every filtered page, which saved a measurable part of a page's time in
# process (bench/README.md). An unknown code is looked up every time: it may have been created
# since.
# Only read transactions fill it, so a row that a write transaction created and then rolled
# back is never kept.
_KNOWN_CODES = "dtl_known_codes"


def _ids_by_code(session: Session, model: Any, codes: list[str]) -> dict[str, int]:
    connection = session.connection()
    known: dict[tuple[Any, str], int] = connection.info.setdefault(_KNOWN_CODES, {})
    found = {code: known[model, code] for code in codes if (model, code) in known}
    missing = [code for code in codes if code not in found]
    if missing:
        rows = session.execute(_BY_CODE[model], {"codes": missing}).tuples().all()
        found.update(rows)
        if not connection.get_execution_options().get(WRITE_TRANSACTION, False):
            known.update(((model, code), id_) for code, id_ in rows)
    return found


def _lookup(session: Session, model: Any, codes: list[str], what: str, param: str) -> list[int]:
    if not codes:
        return []
    found = _ids_by_code(session, model, codes)
    for code in codes:
        if code not in found:
            raise InvalidParameter(["query", param], unknown_code(what, code))
    return [found[c] for c in codes]


def _actor_ids(session: Session, codes: list[str], param: str) -> tuple[list[int], list[int]]:
    """Split codes into state and organisation ids; a code may name either."""
    states = _ids_by_code(session, State, codes)
    orgs = _ids_by_code(session, Organisation, codes)
    for code in codes:
        if code not in states and code not in orgs:
            raise InvalidParameter(["query", param], unknown_code("state or organisation", code))
    return list(states.values()), list(orgs.values())


def _pair(session: Session, between: str) -> list[int]:
    """The state ids of `between=`: at least two different states, all known."""
    codes = list(dict.fromkeys(between.split(",")))
    if len(codes) < 2:
        raise InvalidParameter(["query", "between"], "give at least two different state codes")
    return _lookup(session, State, codes, "state", "between")


def _engine_words(dialect: str, terms: list[str]) -> str:
    """Every word, each as a prefix, in the engine's query syntax (bound as `words`)."""
    if dialect == "postgresql":
        return " & ".join(f"{term}:*" for term in terms)
    return " ".join(f'"{term}"*' for term in terms)


def _filters(session: Session, query: TimelineQuery) -> Filters:
    """The query's filters, checked and resolved: raises InvalidParameter for bad values
    (unknown codes, from after to, …)."""
    start = parse_partial_date(query.from_) if query.from_ else None
    end = parse_partial_date(query.to, end=True) if query.to else None
    if start and end and start > end:
        raise InvalidParameter(["query", "from"], f"from ({start}) is after to ({end})")
    states = _lookup(session, State, query.state, "state", "state")
    pair = _pair(session, query.between) if query.between else []
    actor = _actor_ids(session, query.actor, "actor") if query.actor else None
    target = _actor_ids(session, query.target, "target") if query.target else None
    organisations: list[int] = []
    members = False
    if query.organisation:
        organisations = _lookup(
            session, Organisation, query.organisation, "organisation", "organisation"
        )
        members = query.include_members
    elif query.include_members:
        raise InvalidParameter(["query", "include_members"], "needs an organisation parameter")
    words = None
    if query.q:
        words = _engine_words(session.get_bind().dialect.name, search_terms(query.q))
    elif query.order == "relevance":
        raise InvalidParameter(["query", "order"], "relevance needs words to search for in q")
    return Filters(
        start=start,
        end=end,
        states=tuple(states),
        pair=tuple(pair),
        actor=None if actor is None else (tuple(actor[0]), tuple(actor[1])),
        target=None if target is None else (tuple(target[0]), tuple(target[1])),
        organisations=tuple(organisations),
        members=members,
        kinds=tuple(k.value for k in query.kind),
        categories=tuple(query.category),
        tags=tuple(query.tag),
        words=words,
    )


def _plan(
    session: Session, query: TimelineQuery, *, driven: bool = False, one_page: bool = False
) -> PagePlan:
    """The query's filters, checked (`_filters`), and how to read them (`planner.plan`). With
    `driven`, a page may be read off a driver's index; with `one_page` (a page, not a whole
    export), a PostgreSQL page of words may count its matches itself."""
    resolved = _filters(session, query)
    dialect = session.get_bind().dialect.name
    matches: Callable[[], int] = partial(_matches, session, resolved.words)
    events = None
    if dialect == "postgresql":
        # Both from one plan, made only if the page's plan asks for either.
        estimates = cache(partial(_estimated_matches, session, resolved.words))
        matches, events = (lambda: estimates()[0]), (lambda: estimates()[1])
    return planner.plan(
        resolved,
        dialect=dialect,
        ranked=query.order == "relevance",
        driven=driven,
        one_page=one_page,
        matches=matches,
        events=events,
        actor_matches=lambda actors: _estimated_actor_matches(session, resolved.words, actors),
    )


def _matches(session: Session, words: str | None) -> int:
    """How many events have the words, counted up to FEW_MATCHES + 1 through the text index."""
    dialect = session.get_bind().dialect.name
    stmt = statements.TEXT_MATCHES[dialect]
    if dialect == "postgresql" and words is not None and planner.several_words(words):
        stmt = statements.EXACT_MATCHES
    return session.scalar(stmt, {"words": words}) or 0


def _estimated_matches(session: Session, words: str | None) -> tuple[int, int]:
    """PostgreSQL: how many events the planner expects to have the words, and how many events
    it expects `event` to hold (from the table's size and ANALYZE's count), from one plan.

    Counting them, even only up to FEW_MATCHES + 1, builds the text index's whole bitmap and
    reads a heap page per match: for a common word, a large part of a `q=` page with a state
    (bench/README.md). The planner's estimate comes from ANALYZE's statistics of the commonest
    lexemes, at a fraction of the cost; a common word is among them and estimated closely, a
    rarer one is estimated low, and so are a prefix's rarer words (bench/README.md). It only
    chooses how the page is read, never what it holds: a low estimate makes a page read its
    matches first, up to the plan's limit, which stays correct."""
    plan = session.execute(statements.TEXT_ESTIMATE, {"words": words}).scalar_one()
    matches, events = _subplan_rows(plan)
    return matches, events


def _estimated_actor_matches(
    session: Session, words: str | None, actors: planner.Actors
) -> tuple[int, int]:
    """PostgreSQL: how many events the planner expects to have the words and the `actors`, and
    the `actors` alone (`_estimated_matches`), from one plan."""
    plan = session.execute(
        statements.TEXT_AND_ACTORS_ESTIMATE,
        {"words": words, "actors": search_index.actors_query(actors)},
    ).scalar_one()
    both, alone = _subplan_rows(plan)
    return both, alone


def _subplan_rows(plan: Any) -> list[int]:
    """The rows PostgreSQL's planner expects of each subplan of an EXPLAIN (FORMAT JSON), in
    their order in the statement."""
    subplans: dict[str, int] = {}
    nodes = [plan[0]["Plan"]]
    while nodes:  # wherever the planner puts them (a Gather may sit on top)
        node = nodes.pop()
        if node.get("Parent Relationship") == "InitPlan":
            subplans[node["Subplan Name"]] = int(node["Plan Rows"])
        nodes.extend(node.get("Plans", ()))
    return [rows for _, rows in sorted(subplans.items())]


def filtered(session: Session, query: TimelineQuery) -> tuple[Select[Any], dict[str, Any]]:
    """The matching events as (id, date, public_id), unordered and unpaged, read off `event`,
    and the values to execute it with. Raises InvalidParameter for bad values."""
    plan = _plan(session, query)
    stmt, _, _ = statements.matching(plan.shape)
    return stmt, plan.params


def facets(session: Session, query: FacetsQuery) -> dict[str, Any]:
    """Counts per kind, category, period, state and organisation of the matching events.

    States, organisations, kinds, categories and dates: the sums of the kept counts
    (app/timeline/counts.py), plus what they do not keep read from each event's counted
    record (`facet_event`): one actor's days at a window's edges, the events several actors
    share (`_several`), a pair's (`between=`) or a tag's events, each off its (key, date)
    index. Any other filter: the records of the matching events, or for no actor the GROUP BY
    of the edge days (`grouped`, also the tests' oracle). All exact.
    """
    filters = {name: value for name, value in query if name != "interval"}
    timeline = TimelineQuery.model_construct(**filters)
    f = _filters(session, timeline)
    tally = counts.Tally.empty()
    # One of tags, a pair and states or organisations is read off its index; more than one,
    # or any other filter, every matching event.
    drivers = sum(map(bool, (f.tags, f.pair, f.states or f.organisations)))
    if f.words or f.actor or f.target or f.members or drivers > 1:
        counts.add_records(tally, _matching(session, timeline), query.interval)
    elif f.tags:
        _tagged(session, query, f, tally)
    elif f.pair:
        _together(session, query, f, tally)
    else:
        states = list(dict.fromkeys(f.states))
        organisations = list(dict.fromkeys(-o for o in f.organisations))
        if len(states) + len(organisations) > 1:
            _several(session, query, f, states, organisations, tally)
        else:
            given = (states or organisations or [0])[0]
            days = _summed(session, query, f, given, tally)
            if days is None:
                return _shown(_grouped(session, query))
            found = _found(session, tally)
            for lo, hi in days:
                edge = query.model_copy(update={"from_": lo.isoformat(), "to": hi.isoformat()})
                found.add(_grouped(session, edge))
            return _shown(found)
    return _shown(_found(session, tally))


def _matching(session: Session, query: TimelineQuery) -> list[counts.Record]:
    """The records of the events matching any filters, read by key."""
    plan = _plan(session, query)
    stmt, _, _ = statements.matching(plan.shape)
    return counts.read_matching(session, stmt, plan.params)


def _tagged(session: Session, query: FacetsQuery, f: Filters, tally: counts.Tally) -> None:
    """`tag=` (any of them): the events of each tag off the tags' (tag, date) index, each
    record by key, an event with two of the tags once."""
    records: dict[int, counts.Record] = {}
    for tag in dict.fromkeys(f.tags):
        found = counts.read_tagged(session, tag=tag, window=_window(f))
        records.update((r[0], r) for r in found)
    counts.add_records(tally, records.values(), query.interval)


def _window(f: Filters) -> counts.Window:
    return counts.Window(f.start, f.end, f.kinds, f.categories)


def _found(session: Session, tally: counts.Tally) -> "_Found":
    return _Found(tally.kind, tally.category, tally.period, *_codes(session, tally.actor))


def _together(session: Session, query: FacetsQuery, f: Filters, tally: counts.Tally) -> None:
    """`between=`: the events all its states take part in, read off the first two's pair
    index, each record tested for the others."""
    states = set(f.pair)
    if not counts.shared_total(session, f.pair[0], f.pair[1]):
        return
    records = counts.read_shared(session, driver=f.pair[0], other=f.pair[1], window=_window(f))
    shared = {r[0]: r for r in records if len(states) == 2 or states <= counts.decode(r[4])}
    counts.add_records(tally, shared.values(), query.interval)


def _summed(
    session: Session, query: FacetsQuery, f: Filters, given: int, tally: counts.Tally
) -> list[tuple[dt.date, dt.date]] | None:
    """Add the facets of the events of `given` (0: every event) passing `f`'s kinds,
    categories and dates to `tally`, from the kept counts and, for an actor, its records. For
    every event, return the runs of days left to a GROUP BY; None when the counts cannot
    answer."""
    pieces, days = counts.split(f.start, f.end)
    summed: list[tuple[counts.Period, int, int]] = []
    for piece in pieces:
        if counts.covers(
            given=bool(given),
            categories=bool(f.categories),
            period=piece[0],
            interval=query.interval,
        ):
            summed.append(piece)
        elif piece[0] != "all":
            days.append(counts.days_of(piece))
        elif given:
            days.append((dt.date.min, dt.date.max))
        else:
            return None
    if summed:
        counts.read(
            session,
            given=given,
            kinds=f.kinds,
            categories=f.categories,
            pieces=summed,
            interval=query.interval,
            tally=tally,
        )
    days = _merged(days)
    if given and days:
        counts.read_days(
            session,
            given=given,
            kinds=f.kinds,
            categories=f.categories,
            days=days,
            interval=query.interval,
            tally=tally,
        )
        return []
    return days


def _several(
    session: Session,
    query: FacetsQuery,
    f: Filters,
    states: list[int],
    organisations: list[int],
    tally: counts.Tally,
) -> None:
    """The facets of several actors (actor keys: a state's id, an organisation's id negated).

    States, like organisations, are any of (an event of any of them matches); states and
    organisations together both (an event of one of the states and one of the organisations).
    Any of: each actor's own sums (`_summed`), less each event shared by k of them k - 1
    times. Both: the events each state shares with each organisation, once each. Either way
    only the shared events are read one by one, and a pair the kept pairings show sharing
    none is not read at all."""
    if states and organisations:
        pairs = [(s, o) for s in states for o in organisations]
    else:
        actors = states or organisations
        for actor in actors:
            _summed(session, query, f, actor, tally)
        pairs = [(a, b) for i, a in enumerate(actors) for b in actors[i + 1 :]]
    sizes: dict[int, int] = {}
    shared: dict[int, counts.Record] = {}
    for a, b in pairs:
        if not counts.shared_total(session, a, b):
            continue
        for actor in (a, b):
            if actor not in sizes:
                sizes[actor] = counts.total(session, actor)
        driver, other = (a, b) if sizes[a] <= sizes[b] else (b, a)
        records = counts.read_shared(session, driver=driver, other=other, window=_window(f))
        shared.update((record[0], record) for record in records)
    if states and organisations:
        counts.add_records(tally, shared.values(), query.interval)
        return
    wanted = set(states or organisations)
    by_times: dict[int, list[counts.Record]] = defaultdict(list)
    for record in shared.values():
        by_times[len(wanted & counts.decode(record[4])) - 1].append(record)
    for times, records in by_times.items():
        counts.add_records(tally, records, query.interval, weight=-times)


@dataclass(slots=True)
class _Found:
    kind: Counter[str]
    category: Counter[str]
    period: Counter[str]
    state: Counter[str]
    organisation: Counter[str]

    def add(self, other: "_Found") -> None:
        for name in ("kind", "category", "period", "state", "organisation"):
            getattr(self, name).update(getattr(other, name))


def _codes(session: Session, actors: Counter[int]) -> tuple[Counter[str], Counter[str]]:
    """Counts by actor key (a state's id, an organisation's id negated) as counts by code."""
    states: Counter[str] = Counter()
    organisations: Counter[str] = Counter()
    for model, ids, out in (
        (State, [k for k in actors if k > 0], states),
        (Organisation, [-k for k in actors if k < 0], organisations),
    ):
        if ids:
            sign = 1 if model is State else -1
            for id_, code in session.execute(select(model.id, model.code).where(model.id.in_(ids))):
                out[code] += actors[sign * id_]
    return states, organisations


def _merged(days: list[tuple[dt.date, dt.date]]) -> list[tuple[dt.date, dt.date]]:
    """Runs of days, adjacent runs joined, so each costs one GROUP BY."""
    out: list[tuple[dt.date, dt.date]] = []
    for lo, hi in sorted(days):
        if out and lo <= out[-1][1] + dt.timedelta(days=1):
            out[-1] = (out[-1][0], max(hi, out[-1][1]))
        else:
            out.append((lo, hi))
    return out


def _shown(found: _Found) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("kind", "category", "state", "organisation"):
        counter: Counter[str] = getattr(found, name)
        out[name] = [
            {"value": value, "count": n}
            for value, n in sorted(counter.items(), key=lambda item: (-item[1], item[0]))
            if n
        ]
    out["period"] = [{"value": v, "count": n} for v, n in sorted(found.period.items()) if n]
    return {"total": sum(found.kind.values()), **out}


def grouped(session: Session, query: FacetsQuery) -> dict[str, Any]:
    """The facets as a GROUP BY of every matching event: what `facets` answers with the kept
    counts, computed without them (the tests' oracle)."""
    return _shown(_grouped(session, query))


def _grouped(session: Session, query: FacetsQuery, *, driven: bool = False) -> _Found:
    """Two queries, whatever the data: one groups the matching events by each of their own
    columns (UNION ALL of GROUP BYs over one CTE); the other groups their participants.

    `driven`: the matching events of one state or organisation are read off its participations'
    (actor, date) index, for the few days or months at a window's edges; read off `event`, the
    date bounds would be tested on every event of the actor (bench/README.md)."""
    # The filters alone, as a timeline query with its paging left at the defaults.
    filters = {name: value for name, value in query if name != "interval"}
    plan = _plan(session, TimelineQuery.model_construct(**filters), driven=driven)
    stmt, _, _ = statements.matching(plan.shape)
    params = plan.params
    matching = stmt.add_columns(Event.kind, Event.category).cte("matching")
    dialect = session.get_bind().dialect.name
    width = 7 if query.interval == "month" else 4
    iso = (
        func.to_char(matching.c.date, "YYYY-MM-DD")
        if dialect == "postgresql"
        else (func.strftime("%Y-%m-%d", matching.c.date))
    )
    bucket = func.substr(iso, 1, width)
    parts = [
        select(literal("kind"), matching.c.kind, func.count()).group_by(matching.c.kind),
        select(literal("category"), matching.c.category, func.count()).group_by(
            matching.c.category
        ),
        select(literal("period"), bucket, func.count()).group_by(bucket),
    ]
    found = _Found(Counter(), Counter(), Counter(), Counter(), Counter())
    for facet, value, count in session.execute(union_all(*parts), params):
        getattr(found, facet)[value] += count
    actor = (
        select(
            State.code.label("state"),
            Organisation.code.label("organisation"),
            func.count(func.distinct(Participant.event_id)).label("n"),
        )
        .select_from(Participant)
        .join(matching, matching.c.id == Participant.event_id)
        .outerjoin(State, State.id == Participant.state_id)
        .outerjoin(Organisation, Organisation.id == Participant.organisation_id)
        .where(or_(Participant.state_id.is_not(None), Participant.organisation_id.is_not(None)))
        .group_by(State.code, Organisation.code)
    )
    for state, organisation, count in session.execute(actor, params):
        if state is not None:
            found.state[state] += count
        else:
            found.organisation[organisation] += count
    return found


def check(session: Session, query: TimelineQuery) -> None:
    """Raise InvalidParameter for bad values (unknown codes, from after to, …) without paging."""
    _filters(session, query)


def _rows(
    session: Session,
    plan: PagePlan,
    desc: bool,
    after: tuple[dt.date, str] | None,
    limit: int,
    *,
    csv: bool = False,
) -> list[Any]:
    """Up to `limit` matching rows in timeline order, after `after`: (id, date, public_id,
    document_format, body, changed_at) (`statements.page_documents`), with `matches` when the
    page counts them itself (`statements.few_page_documents`), or with `csv`
    (id, date, public_id, document_format, csv) (`statements.page_csv`)."""
    if plan.text == "fts_keys":
        return _keyed_rows(session, plan, desc, after, limit, csv=csv)
    params = plan.params
    params["limit"] = limit
    if after is not None:
        params["after_date"], params["after_id"] = after
    build = statements.page_csv if csv else statements.page_documents
    if plan.counts_itself:
        build = statements.few_page_documents
        params["few_limit"] = plan.few + 1
    return list(session.execute(build(plan.shape, desc, after is not None), params).all())


def _keyed_rows(
    session: Session,
    plan: PagePlan,
    desc: bool,
    after: tuple[dt.date, str] | None,
    limit: int,
    *,
    csv: bool,
) -> list[Any]:
    """SQLite: `_rows` of a plan that reads the words' matches in timeline order
    (`search_index`), a few at a time, until the page is full.

    The matches come day by day; a page of the matches read so far, of the days they cover
    whole (before the last one's day), is a page of all of them. The states and organisations
    the plan asks of the index (`PagePlan.actors`) are read with the words, so only the other
    filters drop matches. If it is short (they kept few), more are read, as many as the share
    kept so far says; past FEW_MATCHES, the page is read as if they had been counted
    (`PagePlan.unkeyed`)."""
    f = plan.filters
    start, end = f.start, f.end
    if after is not None:  # the cursor's own day still holds later events
        start, end = (start, after[0]) if desc else (after[0], end)
    key_lo = search_index.day_key(start) if start else search_index.LOWEST
    key_hi = search_index.day_key(end + dt.timedelta(days=1)) - 1 if end else search_index.HIGHEST
    assert f.words is not None  # noqa: S101 - planned for words
    words = search_index.matching(search_index.expanded(session, f.words), plan.actors)
    keys = session.execute(
        statements.MATCHES_IN_ORDER[desc], {"words": words, "key_lo": key_lo, "key_hi": key_hi}
    ).scalars()
    build = statements.page_csv if csv else statements.page_documents
    stmt = build(plan.shape, desc, after is not None)
    params = plan.params
    params["limit"] = limit
    if after is not None:
        params["after_date"], params["after_id"] = after
    ids: list[int] = []
    wanted = 2 * limit
    try:
        while True:
            read = keys.fetchmany(wanted - len(ids))
            ids.extend(key & search_index.ID_MASK for key in read)
            if len(ids) < wanted:  # every match read: no edge
                edge = dt.date.min if desc else dt.date.max
            else:
                edge = search_index.day_of(read[-1])
            rows = session.execute(stmt, {**params, "ids": ids, "edge": edge}).all()
            if len(rows) >= limit or len(ids) < wanted:
                return list(rows)
            if len(ids) > statements.FEW_MATCHES:
                break
            # As many as the share kept so far says the page needs, and at least twice as many.
            wanted = max(2 * wanted, len(ids) * limit * 5 // (4 * max(len(rows), 1)))
    finally:
        keys.close()
    return _rows(session, plan.unkeyed(), desc, after, limit, csv=csv)


def _stored(rows: list[Any]) -> list[tuple[int, int | None, Any]]:
    """(id, document_format, the stored body or CSV line) of each of `_rows`'s rows.

    Unpacked, not read by attribute: a Row's attribute costs more, on every row of every page
    (bench/README.md)."""
    return [
        (event_id, document_format, stored)
        for event_id, _date, _public_id, document_format, stored, *_ in rows
    ]


def page(session: Session, query: TimelineQuery, *, cursor_secret: str) -> Page:
    if query.as_known_at is not None:
        return _historical_page(session, query, cursor_secret)
    if query.order == "relevance":
        return _relevance_page(session, query, cursor_secret)
    plan = _plan(session, query, driven=True, one_page=True)
    if plan.text == "many":  # PostgreSQL's walk; "few" reads its matches first, parallel or not
        session.execute(statements.SERIAL_PLANS)
    total = None
    if query.count:
        total = session.scalar(statements.count(plan.shape), plan.params) or 0
    after = decode_cursor(cursor_secret, query, query.cursor) if query.cursor else None
    desc = query.order == "desc"
    rows = _rows(session, plan, desc, after, query.limit + 1)
    if plan.counts_itself:
        # An empty page does not say how many matches there were: they are counted.
        matches = rows[0].matches if rows else _matches(session, plan.filters.words)
        plan = plan.recounted(matches)
        if plan.text == "many":
            session.execute(statements.SERIAL_PLANS)  # read again as "many": a walk
            rows = _rows(session, plan, desc, after, query.limit + 1)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    next_cursor = None
    if more and rows:
        last = rows[-1]
        next_cursor = encode_cursor(cursor_secret, query, last.date, last.public_id)
    items = documents.stored(session, _stored(rows))
    changed_at = rows[0].changed_at if rows else revision_service.data_version(session)[1]
    return Page(items=items, next_cursor=next_cursor, total=total, changed_at=changed_at)


def _relevance_page(session: Session, query: TimelineQuery, cursor_secret: str) -> Page:
    """Best matches first; ties in date order. Paged by position: a ranking has no stable key."""
    plan = _plan(session, query)
    assert query.q is not None  # noqa: S101 - _filters() refused relevance without q
    total = None
    if query.count:
        total = session.scalar(statements.count(plan.shape), plan.params) or 0
    offset = decode_offset(cursor_secret, query, query.cursor) if query.cursor else 0
    rows = _ranked_rows(session, plan, offset, query.limit + 1)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    items = documents.documents(session, [r.id for r in rows])
    terms = search_terms(query.q)
    for item in items:
        item["snippet"] = snippet(item, terms)
    next_cursor = encode_offset(cursor_secret, query, offset + len(rows)) if more else None
    changed_at = revision_service.data_version(session)[1]
    return Page(items=items, next_cursor=next_cursor, total=total, changed_at=changed_at)


# SQLite ranks by bm25, which FTS5 computes from its index alone. Joining every match to its
# event (for the filters and the tie order) is slow for a common word; the best few hundred
# scores, then their events, cost a fraction of that (bench/README.md).
CANDIDATES_MIN = 200
CANDIDATES_MAX = 5_000


def _ranked_rows(session: Session, plan: PagePlan, offset: int, limit: int) -> list[Any]:
    """Rows `offset` to `offset + limit` of the ranking. On SQLite, read off the best-scoring
    candidates when they certainly hold those rows, else off every match; on PostgreSQL, one
    word in two tiers, several words off every match."""
    needed = offset + limit
    candidates = max(CANDIDATES_MIN, 2 * needed)
    if plan.text == "fts" and candidates <= CANDIDATES_MAX:
        params = {**plan.params, "candidates": candidates}
        rows = session.execute(statements.ranked(plan.shape, top=True), params).all()
        if rows and rows[0].n < candidates:
            return list(rows[offset:needed])  # every match was a candidate
        # A match left out scores at most the lowest candidate's score (`floor`), so the rows
        # scoring above it come in their true order. Enough of them fill the page; if the
        # filters dropped too many candidates, rank every match.
        certain = [row for row in rows if row.score > row.floor]
        if len(certain) >= needed:
            return certain[offset:needed]
    params = {**plan.params, "offset": offset, "limit": limit}
    if plan.text in ("few", "many") and _tiered(plan.filters.words):
        params["needed"] = needed
        return list(session.execute(statements.ranked_in_tiers(plan.shape), params).all())
    return list(session.execute(statements.ranked(plan.shape), params).all())


def _tiered(words: str | None) -> bool:
    """PostgreSQL: whether the ranking may be read in tiers (`statements.ranked_in_tiers`): one
    word of at least the three characters `event.search_repeats` keeps, in letters and digits
    of ASCII, which the text parser keeps as one token (others may split into several, and a
    ranking of several words weighs how close they are)."""
    if words is None or planner.several_words(words):
        return False
    word = words.removesuffix(":*")
    return len(word) >= 3 and word.isascii() and word.isalnum()


# A word as the engines index it: letters and digits, with any combining accents (a title in
# decomposed form still shows whole words).
_WORD = re.compile(r"\w(?:\w|[\u0300-\u036f])*")


def _hit(token: str, terms: list[str]) -> bool:
    # A token's words as app.search cuts them, so a marked word is one the query matched.
    return any(word.startswith(term) for word in search_words(token) for term in terms)


def snippet(doc: dict[str, Any], terms: list[str], width: int = 30) -> list[dict[str, Any]]:
    """The title and summary around the first matching word, as runs of plain text; `match`
    marks the words that start with a term of the query.

    Runs, not HTML: a page draws each as a text node (a <mark> for matches), with nothing to
    escape or unescape; nor offsets, which JavaScript (UTF-16 units) and Python (code points)
    count differently."""
    words = f"{doc['title']} — {doc['summary']}".split()
    first = next(
        (i for i, word in enumerate(words) if any(_hit(w, terms) for w in _WORD.findall(word))),
        0,
    )
    start = max(0, first - width // 3)
    text = " ".join(words[start : start + width])
    text = ("… " if start else "") + text + (" …" if start + width < len(words) else "")
    parts: list[dict[str, Any]] = []
    done = 0
    for found in _WORD.finditer(text):
        if _hit(found.group(), terms):
            if found.start() > done:
                parts.append({"text": text[done : found.start()], "match": False})
            parts.append({"text": found.group(), "match": True})
            done = found.end()
    if done < len(text):
        parts.append({"text": text[done:], "match": False})
    return parts


EXPORT_BATCH = 500


def export(session: Session, query: TimelineQuery) -> Iterator[list[dict[str, Any]]]:
    """Every matching event, in batches, for streamed exports: memory stays flat whatever the
    size of the export, since each batch is dropped once written."""
    if query.as_known_at is not None:
        yield _historical(session, query)
        return
    for rows in _batches(session, query, csv=False):
        yield documents.loaded(session, _stored(rows))


def export_csv(session: Session, query: TimelineQuery) -> Iterator[list[str]]:
    """As `export`, each event as its CSV line: the stored ones, copied as they are."""
    if query.as_known_at is not None:
        yield [csvline.csv_line(doc) for doc in _historical(session, query)]
        return
    for rows in _batches(session, query, csv=True):
        yield documents.csv_lines(session, _stored(rows))


def _batches(session: Session, query: TimelineQuery, *, csv: bool) -> Iterator[list[Any]]:
    """The matching rows in timeline order, EXPORT_BATCH at a time, with their stored
    documents (`_rows`)."""
    plan = _plan(session, query, driven=True)
    after: tuple[dt.date, str] | None = None
    while True:
        rows = _rows(session, plan, query.order == "desc", after, EXPORT_BATCH, csv=csv)
        if not rows:
            return
        yield rows
        after = (rows[-1].date, rows[-1].public_id)


def _historical(session: Session, query: TimelineQuery) -> list[dict[str, Any]]:
    """Every matching event as it was known at `as_known_at`."""
    return _historical_page(
        session, query.model_copy(update={"limit": 10**9, "cursor": None}), ""
    ).items


def newest_changes(session: Session, query: TimelineQuery) -> list[dict[str, Any]]:
    """The matching events most recently created or changed first (for feeds)."""
    if query.as_known_at is not None:
        docs = _historical(session, query)
        return sorted(docs, key=lambda d: d["updated_at"], reverse=True)[: query.limit]
    stmt, params = filtered(session, query)
    stmt = stmt.order_by(Event.updated_at.desc(), Event.public_id).limit(query.limit)
    rows = session.execute(stmt, params).all()
    return documents.documents(session, [r.id for r in rows])


# --- the timeline as it was known at an instant ----------------------------------------------
# Rebuilt from revision snapshots and filtered in Python. It is a citation tool, rarely asked,
# so it trades speed for reusing the exact documents the API served at the time.


def filter_context(
    session: Session, query: TimelineFilters, at: dt.datetime
) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """What `filters.matches` needs besides the event: the memberships live at `at` (for
    `include_members`) and every name of each place (for `q`); empty when the query needs
    neither."""
    memberships: list[dict[str, Any]] = []
    if query.organisation and query.include_members:
        memberships = list(revision_service.snapshot(session, "membership", at).values())
    # Every name of each place, as an event's stored search text has them (its name and
    # aliases: app.events.service._search_text).
    names: dict[str, list[str]] = {}
    if query.q:
        for code, name, alias in session.execute(
            select(Place.code, Place.name, PlaceAlias.alias).outerjoin(
                PlaceAlias, PlaceAlias.place_id == Place.id
            )
        ):
            names.setdefault(code, [name]).append(alias or "")
    return memberships, names


def _historical_page(session: Session, query: TimelineQuery, cursor_secret: str) -> Page:
    assert query.as_known_at is not None  # noqa: S101 - the caller checked
    _filters(session, query)  # the same parameter checks (unknown codes, from after to, …)
    at = query.as_known_at
    events = revision_service.snapshot(session, "event", at)
    memberships, names = filter_context(session, query, at)
    docs = [
        {k: v for k, v in doc.items() if k != "links"}
        for doc in events.values()
        if filters.matches(doc, query, memberships, names)
    ]
    desc = query.order == "desc"
    docs.sort(key=lambda d: (d["date"], d["id"]), reverse=desc)
    total = len(docs) if query.count else None
    if query.cursor:
        after_date, after_id = decode_cursor(cursor_secret, query, query.cursor)
        position = (after_date.isoformat(), after_id)
        docs = [
            d
            for d in docs
            if ((d["date"], d["id"]) < position if desc else (d["date"], d["id"]) > position)
        ]
    items = docs[: query.limit]
    next_cursor = None
    if len(docs) > query.limit:
        last = items[-1]
        next_cursor = encode_cursor(
            cursor_secret, query, dt.date.fromisoformat(last["date"]), last["id"]
        )
    changed_at = revision_service.data_version(session)[1]
    return Page(items=items, next_cursor=next_cursor, total=total, changed_at=changed_at)

"""The timeline query: filters, keyset pagination and signed cursors."""

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
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
from app.timeline import counts, filters, statements
from app.timeline.schemas import FacetsQuery, TimelineQuery

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
# of being looked up on every filtered page, which saved about 7 % of a page's time in process
# (bench/README.md). An unknown code is looked up every time: it may have been created since.
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


@dataclass(slots=True)
class Filters:
    """A query's filters checked and resolved against the database: codes to ids, partial dates
    to days, words to the engine's query. The statement is built once per `shape`; these are
    the values bound to it (`params`)."""

    start: dt.date | None = None
    end: dt.date | None = None
    states: list[int] = field(default_factory=list)
    pair: list[int] = field(default_factory=list)
    actor: tuple[list[int], list[int]] | None = None  # (state ids, organisation ids)
    target: tuple[list[int], list[int]] | None = None
    organisations: list[int] = field(default_factory=list)
    members: bool = False
    kinds: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    words: str | None = None
    text: statements.TextMode | None = None
    # False when the page is to count the words' matches itself (`statements.few_page_documents`).
    counted: bool = True
    driver: "Driver | None" = None

    @property
    def shape(self) -> statements.Shape:
        kind = self.driver.kind if self.driver else None
        return statements.Shape(
            start=self.start is not None,
            end=self.end is not None,
            states=bool(self.states) and kind != "state",
            also=len(self._also()),
            actor=self.actor is not None,
            target=self.target is not None,
            organisations=bool(self.organisations) and kind != "organisation",
            members=self.members,
            kinds=bool(self.kinds),
            categories=bool(self.categories),
            tags=bool(self.tags) and kind != "tag",
            text=self.text,
            driver=kind,
        )

    def _also(self) -> list[int]:
        # Every state of `between=` is tested on each row, but the pair the driver reads.
        driver = self.driver
        if driver is not None and driver.kind == "pair":
            return [s for s in self.pair if s not in (driver.value, driver.second)]
        return self.pair

    @property
    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "start": self.start,
            "end": self.end,
            "states": self.states,
            "organisations": self.organisations,
            "kinds": self.kinds,
            "categories": self.categories,
            "tags": self.tags,
            "words": self.words,
        }
        for i, state_id in enumerate(self._also()):
            params[f"also_{i}"] = state_id
        for role, ids in (("actor", self.actor), ("target", self.target)):
            if ids is not None:
                params[f"{role}_states"], params[f"{role}_orgs"] = ids
        if self.driver is not None:
            params["driver"], params["driver_b"] = self.driver.value, self.driver.second
        return params


@dataclass(frozen=True, slots=True)
class Driver:
    """The table a page is read from, when one filter names a single state, pair of states,
    organisation or tag.

    Reading (state_id, date, public_id) in index order and joining each row to its event stops
    after one page; reading events and testing `id IN (events of the state)` reads and sorts
    every event of the state first (bench/README.md).
    """

    kind: statements.DriverKind
    # The state or organisation id, or the tag, read in index order; for a pair, the lower of
    # its two state ids, and `second` the higher.
    value: int | str
    second: int | None = None


def resolve(
    session: Session, query: TimelineQuery, *, driven: bool = False, one_page: bool = False
) -> Filters:
    """The query's filters, checked: raises InvalidParameter for bad values (unknown codes, from
    after to, …). With `driven`, also the table to read a page from (`Driver`). With `one_page`
    (a page, not a whole export), a PostgreSQL page of words may count its matches itself."""
    f = Filters()
    f.start = parse_partial_date(query.from_) if query.from_ else None
    f.end = parse_partial_date(query.to, end=True) if query.to else None
    if f.start and f.end and f.start > f.end:
        raise InvalidParameter(["query", "from"], f"from ({f.start}) is after to ({f.end})")
    f.states = _lookup(session, State, query.state, "state", "state")
    if query.between:
        f.pair = _pair(session, query.between)
    if query.actor:
        f.actor = _actor_ids(session, query.actor, "actor")
    if query.target:
        f.target = _actor_ids(session, query.target, "target")
    if query.organisation:
        f.organisations = _lookup(
            session, Organisation, query.organisation, "organisation", "organisation"
        )
        f.members = query.include_members
    elif query.include_members:
        raise InvalidParameter(["query", "include_members"], "needs an organisation parameter")
    f.kinds = [k.value for k in query.kind]
    f.categories = query.category
    f.tags = query.tag
    if driven:
        f.driver = _driver(f)
    if query.q:
        dialect = session.get_bind().dialect.name
        f.words = _engine_words(dialect, search_terms(query.q))
        ranked = query.order == "relevance"
        f.text = _text_mode(session, dialect, f, ranked=ranked)
        if one_page and f.text == "few" and _counts_itself(dialect, f, ranked=ranked):
            # Expected to be few: the page counts them as it reads them, and is read again
            # the other way if the estimate was low (`_recounted`).
            f.counted = False
    elif query.order == "relevance":
        raise InvalidParameter(["query", "order"], "relevance needs words to search for in q")
    return f


def _others(f: Filters) -> tuple[object, ...]:
    return (f.states, f.pair, f.actor, f.target, f.organisations, f.kinds, f.categories, f.tags)


def _counts_itself(dialect: str, f: Filters, *, ranked: bool) -> bool:
    """A PostgreSQL page of words and dates alone counts the matches as it reads them."""
    return dialect == "postgresql" and not ranked and f.driver is None and not any(_others(f))


def _text_mode(
    session: Session, dialect: str, f: Filters, *, ranked: bool, exact: bool = False
) -> statements.TextMode:
    sqlite = dialect != "postgresql"
    others = _others(f)
    if sqlite and (ranked or (f.driver is None and any(others))):
        # Ranked: FTS5 scores the matches whatever their number. Other filters read off
        # `event` (a category, say): walking the timeline could pass many events before one
        # passes both, so the matches are looked up instead.
        return "fts"
    if sqlite or exact:
        matches = session.scalar(statements.TEXT_MATCHES[dialect], {"words": f.words}) or 0
    else:
        matches = _estimated_matches(session, f.words)
    if matches <= statements.FEW_MATCHES:
        return "fts" if sqlite else "few"
    return "fts_walk" if sqlite else "many"


def _estimated_matches(session: Session, words: str | None) -> int:
    """PostgreSQL: how many events the planner expects to have the words.

    Counting them, even only up to FEW_MATCHES + 1, builds the text index's whole bitmap and
    reads a heap page per match: about 40 ms for a common word at 1M, a third of a `q=` page
    with a state (bench/README.md). The planner's estimate comes from ANALYZE's statistics of
    the commonest lexemes in 0.2 ms; a common word is among them and estimated within about
    25 %, a rarer one is estimated low. It only chooses how the page is read, never what it
    holds: a low estimate makes a page read every match first, which stays correct."""
    plan = session.execute(statements.TEXT_ESTIMATE, {"words": words}).scalar_one()
    return int(plan[0]["Plan"]["Plan Rows"])


def filtered(session: Session, query: TimelineQuery) -> tuple[Select[Any], dict[str, Any]]:
    """The matching events as (id, date, public_id), unordered and unpaged, read off `event`,
    and the values to execute it with. Raises InvalidParameter for bad values."""
    f = resolve(session, query)
    stmt, _, _ = statements.matching(f.shape)
    return stmt, f.params


def facets(session: Session, query: FacetsQuery) -> dict[str, Any]:
    """Counts per kind, category, period, state and organisation of the matching events.

    With at most one state or organisation and any kinds, categories and dates, the sums of the
    kept counts (app/timeline/counts.py), plus a GROUP BY of the days at the window's edges and
    of any whole months the counts do not keep; with other filters, a GROUP BY of every
    matching event (`grouped`). Both are exact.
    """
    others = (query.q, query.tag, query.between, query.actor, query.target, query.include_members)
    if len(set(query.state)) + len(set(query.organisation)) > 1 or any(others):
        return _shown(_grouped(session, query))
    filters = {name: value for name, value in query if name != "interval"}
    f = resolve(session, TimelineQuery.model_construct(**filters))
    actors = [*f.states, *(-o for o in f.organisations)]
    given = actors[0] if actors else 0
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
            return _shown(_grouped(session, query))
    tally = counts.Tally.empty()
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
        days = []
    found = _Found(tally.kind, tally.category, tally.period, *_codes(session, tally.actor))
    for lo, hi in days:
        edge = query.model_copy(update={"from_": lo.isoformat(), "to": hi.isoformat()})
        found.add(_grouped(session, edge))
    return _shown(found)


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
    f = resolve(session, TimelineQuery.model_construct(**filters), driven=driven)
    stmt, _, _ = statements.matching(f.shape)
    params = f.params
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


def _driver(f: Filters) -> Driver | None:
    if len(f.states) == 1:
        return Driver("state", f.states[0])
    if f.pair:
        # Any two states of `between=` narrow the page to their shared events; the others, if
        # any, are tested on each row.
        a, b = sorted(f.pair[:2])
        return Driver("pair", a, b)
    if len(f.organisations) == 1 and not f.members:
        return Driver("organisation", f.organisations[0])
    if len(f.tags) == 1:
        return Driver("tag", f.tags[0])
    return None


def check(session: Session, query: TimelineQuery) -> None:
    """Raise InvalidParameter for bad values (unknown codes, from after to, …) without paging."""
    resolve(session, query)


def _rows(
    session: Session,
    f: Filters,
    desc: bool,
    after: tuple[dt.date, str] | None,
    limit: int,
    *,
    csv: bool = False,
) -> list[Any]:
    """Up to `limit` matching rows in timeline order, after `after`: (id, date, public_id,
    document_format, body, changed_at) (`statements.page_documents`), or with `csv`
    (id, date, public_id, document_format, csv) (`statements.page_csv`)."""
    params = f.params
    params["limit"] = limit
    if after is not None:
        params["after_date"], params["after_id"] = after
    build = statements.page_csv if csv else statements.page_documents
    if not f.counted:
        build = statements.few_page_documents
        params["few_limit"] = statements.FEW_MATCHES + 1
    return list(session.execute(build(f.shape, desc, after is not None), params).all())


def _recounted(session: Session, f: Filters, rows: list[Any]) -> bool:
    """Whether a page that counted its matches itself must be read again as "many" (`f` is then
    set for it). An empty page does not say how many there were: they are counted."""
    if rows:
        f.text = "few" if rows[0][6] <= statements.FEW_MATCHES else "many"
    else:
        f.text = _text_mode(session, session.get_bind().dialect.name, f, ranked=False, exact=True)
    f.counted = True
    return f.text == "many"


def page(session: Session, query: TimelineQuery, *, cursor_secret: str) -> Page:
    if query.as_known_at is not None:
        return _historical_page(session, query, cursor_secret)
    if query.order == "relevance":
        return _relevance_page(session, query, cursor_secret)
    f = resolve(session, query, driven=True, one_page=True)
    if f.text == "many":  # PostgreSQL's walk; "few" reads its matches first, parallel or not
        session.execute(statements.SERIAL_PLANS)
    total = None
    if query.count:
        total = session.scalar(statements.count(f.shape), f.params) or 0
    after = decode_cursor(cursor_secret, query, query.cursor) if query.cursor else None
    desc = query.order == "desc"
    rows = _rows(session, f, desc, after, query.limit + 1)
    if not f.counted and _recounted(session, f, rows):
        session.execute(statements.SERIAL_PLANS)  # read again as "many": a walk
        rows = _rows(session, f, desc, after, query.limit + 1)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    next_cursor = None
    if more and rows:
        last = rows[-1]
        next_cursor = encode_cursor(cursor_secret, query, last.date, last.public_id)
    # Read by position, not by name: a Row's attribute costs about 0.5 µs, 75 µs a page.
    items = documents.stored(session, [(row[0], row[3], row[4]) for row in rows])
    changed_at = rows[0].changed_at if rows else revision_service.data_version(session)[1]
    return Page(items=items, next_cursor=next_cursor, total=total, changed_at=changed_at)


def _relevance_page(session: Session, query: TimelineQuery, cursor_secret: str) -> Page:
    """Best matches first; ties in date order. Paged by position: a ranking has no stable key."""
    f = resolve(session, query)
    assert query.q is not None  # noqa: S101 - resolve() refused relevance without q
    total = None
    if query.count:
        total = session.scalar(statements.count(f.shape), f.params) or 0
    offset = decode_offset(cursor_secret, query, query.cursor) if query.cursor else 0
    rows = _ranked_rows(session, f, offset, query.limit + 1)
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
# event (for the filters and the tie order) cost 190 ms for a word in 5 % of 1M events; the
# best few hundred scores, then their events, cost about 55 ms.
CANDIDATES_MIN = 200
CANDIDATES_MAX = 5_000


def _ranked_rows(session: Session, f: Filters, offset: int, limit: int) -> list[Any]:
    """Rows `offset` to `offset + limit` of the ranking. On SQLite, read off the best-scoring
    candidates when they certainly hold those rows, else off every match."""
    needed = offset + limit
    candidates = max(CANDIDATES_MIN, 2 * needed)
    if f.text == "fts" and candidates <= CANDIDATES_MAX:
        params = {**f.params, "candidates": candidates}
        rows = session.execute(statements.ranked(f.shape, top=True), params).all()
        if rows and rows[0].n < candidates:
            return list(rows[offset:needed])  # every match was a candidate
        # A match left out scores at most the lowest candidate's score (`floor`), so the rows
        # scoring above it come in their true order. Enough of them fill the page; if the
        # filters dropped too many candidates, rank every match.
        certain = [row for row in rows if row.score > row.floor]
        if len(certain) >= needed:
            return certain[offset:needed]
    params = {**f.params, "offset": offset, "limit": limit}
    return list(session.execute(statements.ranked(f.shape), params).all())


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
        yield documents.loaded(session, [(row[0], row[3], row[4]) for row in rows])


def export_csv(session: Session, query: TimelineQuery) -> Iterator[list[str]]:
    """As `export`, each event as its CSV line: the stored ones, copied as they are."""
    if query.as_known_at is not None:
        yield [csvline.csv_line(doc) for doc in _historical(session, query)]
        return
    for rows in _batches(session, query, csv=True):
        yield documents.csv_lines(session, [(row[0], row[3], row[4]) for row in rows])


def _batches(session: Session, query: TimelineQuery, *, csv: bool) -> Iterator[list[Any]]:
    """The matching rows in timeline order, EXPORT_BATCH at a time, with their stored
    documents (`_rows`)."""
    f = resolve(session, query, driven=True)
    after: tuple[dt.date, str] | None = None
    while True:
        rows = _rows(session, f, query.order == "desc", after, EXPORT_BATCH, csv=csv)
        if not rows:
            return
        yield rows
        after = (rows[-1][1], rows[-1][2])


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


def _historical_page(session: Session, query: TimelineQuery, cursor_secret: str) -> Page:
    assert query.as_known_at is not None  # noqa: S101 - the caller checked
    resolve(session, query)  # the same parameter checks (unknown codes, from after to, …)
    at = query.as_known_at
    events = revision_service.snapshot(session, "event", at)
    memberships = list(revision_service.snapshot(session, "membership", at).values())
    # Every name of each place, as an event's stored search text has them (its name and
    # aliases: app.events.service._search_text).
    names: dict[str, list[str]] = {}
    for code, name, alias in session.execute(
        select(Place.code, Place.name, PlaceAlias.alias).outerjoin(
            PlaceAlias, PlaceAlias.place_id == Place.id
        )
    ):
        names.setdefault(code, [name]).append(alias or "")
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

"""The timeline's SQL, built once per shape of query; every value is a bound parameter.

On a large table a page's statement took longer to build (SQLAlchemy expression building and
cache-key generation) than to run, on every request (bench/README.md). A `Shape`
says which conditions a query needs; the statements for it are built on its first request and
reused, with the request's values passed at execution. The SQL is what building it per
request would give: SQLAlchemy binds every value either way, so the database sees the same
statements.
"""

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Literal

from sqlalchemy import (
    Integer,
    Select,
    and_,
    bindparam,
    column,
    exists,
    func,
    literal_column,
    or_,
    select,
    table,
    text,
    union_all,
)
from sqlalchemy.dialects import postgresql  # noqa: F401 - see below
from sqlalchemy.sql.elements import ColumnClause, ColumnElement

from app.db import BINARY_RESULTS
from app.models import Event, EventDocument, EventTag, Membership, Participant, StatePair
from app.revisions.service import LAST_CHANGE
from app.vocabulary import MEMBER_STATUSES, MembershipEnd, MembershipStatus, ParticipantRole

# The table a page is read from: `None` reads events in timeline order and tests each; the
# others read one state's, pair of states', organisation's or tag's rows in (key, date,
# public_id) index order and stop after a page (`planner.plan` says when).
DriverKind = Literal["state", "pair", "organisation", "tag"]
# How `q=` is matched (`planner.plan`). SQLite's FTS5: look every match up ("fts"), walk the
# timeline in order and keep the matches ("fts_walk"), or keep the events whose ids the page's
# caller read from the index in timeline order ("fts_keys", `MATCHES_IN_ORDER`). PostgreSQL's
# tsvector: read every match first ("few"), or test the rows the plan reads ("many").
TextMode = Literal["fts", "fts_walk", "fts_keys", "few", "many"]

EVENT = Event.__table__.c
PARTICIPANT = Participant.__table__.c
EVENT_TAG = EventTag.__table__.c
STATE_PAIR = StatePair.__table__.c
MEMBERSHIP = Membership.__table__.c
EVENT_DOCUMENT = EventDocument.__table__.c

# SQLite's FTS5 table and PostgreSQL's stored tsvector of event.search_text (made by
# migrations, not in the metadata: each exists on one database only).
EVENT_FTS = table("event_fts", column("rowid"))
SEARCH_VECTOR: ColumnClause[Any] = literal_column("event.search_vector")
# PostgreSQL: each event's actors' tokens, in the same GIN index (app/timeline/search_index.py).
SEARCH_ACTORS: ColumnClause[Any] = literal_column("event.search_actors")
# PostgreSQL: the words that occur more than once in each event, and the prefixes that two of
# its words share (migrations/versions/2026-12-08-0100_search_repeats_on_postgresql.py).
SEARCH_REPEATS: ColumnClause[Any] = literal_column("event.search_repeats")


@dataclass(frozen=True, slots=True)
class Shape:
    """Which conditions a query's statement has. Values are bound at execution under the names
    used below (`planner.PagePlan.params` fills them)."""

    start: bool = False
    end: bool = False
    states: bool = False
    # States tested one by one on every row (`between=`, but the pair the driver reads).
    also: int = 0
    actor: bool = False
    target: bool = False
    organisations: bool = False
    members: bool = False
    kinds: bool = False
    categories: bool = False
    tags: bool = False
    text: TextMode | None = None
    driver: DriverKind | None = None
    # PostgreSQL: the actors' tokens asked of the text index with the words (bound as `actors`).
    actors: bool = False
    # PostgreSQL, several words read first ("few"): asked of the text index as the whole words
    # their prefixes begin (`exact_tsquery`).
    exact: bool = False


def _many(name: str) -> Any:
    return bindparam(name, expanding=True)


def _with_role(role: ParticipantRole, prefix: str) -> ColumnElement[bool]:
    return EVENT.id.in_(
        select(PARTICIPANT.event_id).where(
            PARTICIPANT.role == role.value,
            or_(
                PARTICIPANT.state_id.in_(_many(f"{prefix}_states")),
                PARTICIPANT.organisation_id.in_(_many(f"{prefix}_orgs")),
            ),
        )
    )


# The statuses that are not membership, the complement of MEMBER_STATUSES (the column's CHECK
# allows only MembershipStatus).
_NOT_MEMBER = tuple(s.value for s in MembershipStatus if s.value not in MEMBER_STATUSES)


def _member_on_event_date() -> ColumnElement[bool]:
    """A participating state belonged to one of the organisations on the event's date (by a
    membership not deleted).

    The status is tested as NOT IN the other statuses, never as IN the member ones: SQLite
    3.40, once ANALYZE's statistics say that each (organisation, state, status) holds one row,
    reads `status IN (…)` on the unique index (organisation, state, status, start_on) followed
    by the range on start_on wrongly, and passes memberships that begin after the event
    (tests/test_include_members.py). NOT IN is no index term: the index is read by
    (organisation, state) and each of that state's few memberships tested."""
    return exists(
        select(PARTICIPANT.id)
        .join(Membership, MEMBERSHIP.state_id == PARTICIPANT.state_id)
        .where(
            PARTICIPANT.event_id == EVENT.id,
            MEMBERSHIP.organisation_id.in_(_many("organisations")),
            MEMBERSHIP.deleted_at.is_(None),
            MEMBERSHIP.status.not_in(_NOT_MEMBER),
            MEMBERSHIP.start_on <= EVENT.date,
            or_(
                MEMBERSHIP.end_kind == MembershipEnd.open.value,
                and_(
                    MEMBERSHIP.end_kind == MembershipEnd.dated.value, MEMBERSHIP.end_on > EVENT.date
                ),
            ),
        )
    )


def tsquery() -> Any:
    """PostgreSQL: the words as a tsquery (`service._engine_words` writes it).

    Statements are built at import time, so the PostgreSQL dialect is imported above: it
    registers `to_tsquery`, and a `func.to_tsquery` made before that cannot be compiled."""
    return func.to_tsquery(literal_column("'simple'"), bindparam("words"))


def exact_tsquery() -> Any:
    """PostgreSQL: the words as a tsquery of the whole lexemes each prefix begins, where they
    are few (`search_exact`, migrations/versions/2026-12-08-0300_search_words_on_postgresql.py):
    the same matches. For several words read through the text index, which then intersects
    whole lexemes by skipping through the longer list, where a prefix has every match of every
    word it begins collected first. One word gains nothing (its matches are collected either
    way), a row tested one by one (a walk) is as fast either way, and a ranking scores with the
    prefix query. A subquery, so it runs once, in the statement's snapshot."""
    return select(func.search_exact(bindparam("words"))).scalar_subquery()


def actors_tsquery() -> Any:
    """PostgreSQL: the actors' tokens as a tsquery (`search_index.actors_query` writes it)."""
    return func.to_tsquery(literal_column("'simple'"), bindparam("actors"))


def _text(
    mode: TextMode, event_id: ColumnElement[int], *, driven: bool, exact: bool = False
) -> ColumnElement[bool]:
    """Events whose text has every word, each as a word prefix ("tinzaouat" finds
    "tinzaouaten"): FTS5 on SQLite, a GIN-indexed stored tsvector on PostgreSQL. `event_id` is
    the column of the table the page is read from."""
    if mode == "fts_keys":
        # The matches of whole days, read in timeline order by the caller; the page bounds its
        # dates to those days (`page`).
        return event_id.in_(_many("ids"))
    if mode in ("fts", "fts_walk"):
        matches: Select[Any] = (
            select(literal_column("rowid"))
            .select_from(text("event_fts"))
            .where(text("event_fts MATCH :words"))
        )
        if mode == "fts":
            return EVENT.id.in_(matches)
        # `+ 0` keeps SQLite from looking each match up by id (then sorting them all, slow for
        # a common word); it walks the timeline or the driver's index instead, testing each row
        # against the list of matches before reading its event, and stops after a page
        # (bench/README.md).
        return (event_id + literal_column("0")).in_(matches)
    words = exact_tsquery() if exact else tsquery()
    condition: ColumnElement[bool] = SEARCH_VECTOR.op("@@")(words)
    if mode == "few" and driven:
        # Read off a driver's index, each row is tested against every match, read first: OFFSET
        # 0 keeps the planner from merging the subquery into the outer query.
        return EVENT.id.in_(select(EVENT.id).where(condition).offset(0))
    # Few matches read off `event`: `matching` orders them so that no index can (one pass
    # over the text index's matches, then a sort). Many: tested on the page's own rows, in
    # whichever order the plan reads them.
    return condition


def conditions(shape: Shape) -> list[ColumnElement[bool]]:
    """The filters on `event` rows, but the dates, the words and the driver's own filter (the
    caller puts those on the table it reads)."""
    where: list[ColumnElement[bool]] = [EVENT.deleted_at.is_(None)]
    if shape.states:
        where.append(
            EVENT.id.in_(
                select(PARTICIPANT.event_id).where(PARTICIPANT.state_id.in_(_many("states")))
            )
        )
    for i in range(shape.also):
        # Correlated: the page is read off a driver's index (the pair's, or one state's), each
        # row checked here.
        other = Participant.__table__.alias(f"also_{i}")
        where.append(
            exists().where(other.c.event_id == EVENT.id, other.c.state_id == bindparam(f"also_{i}"))
        )
    if shape.actor:
        where.append(_with_role(ParticipantRole.initiator, "actor"))
    if shape.target:
        where.append(_with_role(ParticipantRole.target, "target"))
    if shape.organisations:
        by_org = EVENT.id.in_(
            select(PARTICIPANT.event_id).where(
                PARTICIPANT.organisation_id.in_(_many("organisations"))
            )
        )
        where.append(or_(by_org, _member_on_event_date()) if shape.members else by_org)
    if shape.kinds:
        where.append(EVENT.kind.in_(_many("kinds")))
    if shape.categories:
        where.append(EVENT.category.in_(_many("categories")))
    if shape.tags:
        where.append(
            EVENT.id.in_(select(EVENT_TAG.event_id).where(EVENT_TAG.tag.in_(_many("tags"))))
        )
    return where


def _driver_table(kind: DriverKind) -> tuple[Any, ColumnElement[bool]]:
    if kind == "pair":
        return STATE_PAIR, and_(
            STATE_PAIR.state_a == bindparam("driver"), STATE_PAIR.state_b == bindparam("driver_b")
        )
    if kind == "tag":
        return EVENT_TAG, EVENT_TAG.tag == bindparam("driver")
    if kind == "organisation":
        return PARTICIPANT, PARTICIPANT.organisation_id == bindparam("driver")
    return PARTICIPANT, PARTICIPANT.state_id == bindparam("driver")


def _window(shape: Shape, date: Any) -> list[ColumnElement[bool]]:
    """The date window's bounds on `date`, as bound by `start` and `end`."""
    bounds = []
    if shape.start:
        bounds.append(date >= bindparam("start"))
    if shape.end:
        bounds.append(date <= bindparam("end"))
    return bounds


@lru_cache(maxsize=512)
def matching(shape: Shape) -> tuple[Select[Any], Any, Any]:
    """The matching events as (id, date, public_id), unordered, and the columns to order and
    page on: the driver's copies of the event's date and public id, or the event's own."""
    where = conditions(shape)
    date: Any
    key: Any
    if shape.driver is None:
        event_id, date, key = EVENT.id, EVENT.date, EVENT.public_id
        stmt = select(EVENT.id, EVENT.date, EVENT.public_id)
    else:
        driver_table, match = _driver_table(shape.driver)
        event_id, date, key = driver_table.event_id, driver_table.date, driver_table.public_id
        stmt = (
            select(
                driver_table.event_id.label("id"),
                driver_table.date.label("date"),
                driver_table.public_id.label("public_id"),
            )
            .join(Event.__table__, EVENT.id == driver_table.event_id)
            .where(match)
            # A state taking part twice (two roles) would list the event twice.
            .distinct()
        )
    if shape.text is not None:
        where.append(
            _text(shape.text, event_id, driven=shape.driver is not None, exact=shape.exact)
        )
    if shape.actors:
        # With the words, one scan of their GIN index finds the events that have both.
        where.append(SEARCH_ACTORS.op("@@")(actors_tsquery()))
    where.extend(_window(shape, date))
    if shape.text == "few" and shape.driver is None:
        # PostgreSQL misestimates prefix matches and would walk the timeline index, testing
        # every event it passes (bench/README.md). Ordered by `date + 0`,
        # no index gives the order: it reads the matches through the text index and sorts them.
        date = EVENT.date + literal_column("0")
    return stmt.where(*where), date, key


@lru_cache(maxsize=512)
def page(shape: Shape, desc: bool, after: bool) -> Select[Any]:
    """A page in (date, public id) order, after the cursor's position when `after`.

    Binds `limit`, and `after_date` and `after_id` with a cursor; with "fts_keys", `ids` and
    `edge`, the day the ids may stop in: the page ends before it (after it, descending)."""
    stmt, date, key = matching(shape)
    if shape.text == "fts_keys":
        stmt = stmt.where(date > bindparam("edge") if desc else date < bindparam("edge"))
    return _keyset(stmt, date, key, desc, after)


def _keyset(stmt: Select[Any], date: Any, key: Any, desc: bool, after: bool) -> Select[Any]:
    if after:
        after_date: Any = bindparam("after_date")
        after_id: Any = bindparam("after_id")
        # The cursor's date bounds the index range itself; a bare row-value comparison combined
        # with `from` makes SQLite scan from `from` (research/performance-baseline.md).
        if desc:
            stmt = stmt.where(date <= after_date, or_(date < after_date, key < after_id))
        else:
            stmt = stmt.where(date >= after_date, or_(date > after_date, key > after_id))
    order = (date.desc(), key.desc()) if desc else (date, key)
    return stmt.order_by(*order).limit(bindparam("limit", type_=Integer))


@lru_cache(maxsize=512)
def page_documents(shape: Shape, desc: bool, after: bool) -> Select[Any]:
    """`page`, each row with its event's stored document (`document_format` and `body`, both
    NULL when none is stored) and the time of the latest revision (`changed_at`, for
    Last-Modified).

    One statement where three ran: each statement's own cost in SQLAlchemy and the driver (a
    round trip on PostgreSQL) was a large part of a page's
    (bench/README.md). The page is ordered and limited inside, so the join reads at most a page
    of documents; the outer ORDER BY sorts those few rows again, since a join may return them
    in any order."""
    return _with_documents(
        page(shape, desc, after), desc, EVENT_DOCUMENT.body, LAST_CHANGE.label("changed_at")
    )


@lru_cache(maxsize=64)
def page_csv(shape: Shape, desc: bool, after: bool) -> Select[Any]:
    """`page`, each row with its event's stored CSV line (`document_format` and `csv`), for an
    export's batches: one statement a batch, where reading the lines by an IN list of 500 ids
    afterwards cost a third of the export's time in SQLAlchemy alone (bench/README.md)."""
    return _with_documents(page(shape, desc, after), desc, EVENT_DOCUMENT.csv)


def _with_documents(page: Select[Any], desc: bool, *stored: Any) -> Select[Any]:
    """(id, date, public_id, document_format, *stored) of the page's events."""
    inner = page.subquery("page")
    order = (inner.c.date, inner.c.public_id)
    return (
        select(
            inner.c.id,
            inner.c.date,
            inner.c.public_id,
            EVENT_DOCUMENT.format.label("document_format"),
            *stored,
        )
        .select_from(inner)
        .outerjoin(EventDocument.__table__, EVENT_DOCUMENT.event_id == inner.c.id)
        .order_by(*(c.desc() for c in order) if desc else order)
        .execution_options(**{BINARY_RESULTS: True})
    )


@lru_cache(maxsize=16)
def few_page_documents(shape: Shape, desc: bool, after: bool) -> Select[Any]:
    """PostgreSQL, `q=` with no other filter than dates: `page_documents`, reading the matches
    once, each row also carrying how many there are (`matches`, at most `few_limit`).

    Counting the matches to choose the plan (`TEXT_MATCHES`), then reading them again for the
    page, tested each match's stored tsvector twice (bench/README.md). Here the matches, at
    most `few_limit` of them, are read once into a materialized CTE, and the page is ordered
    off it. More than the plan reads whole (`PagePlan.few`), and the rows are void: the caller
    reads the page as "many" (`service.page`). That first read costs a word estimated low
    more than the count did (keeping and sorting as many rows; bench/README.md), which is the
    price of a rare word's page in one pass."""
    if shape != Shape(start=shape.start, end=shape.end, text="few", exact=shape.exact):
        raise ValueError(f"not a page of words and dates alone: {shape}")
    condition = SEARCH_VECTOR.op("@@")(exact_tsquery() if shape.exact else tsquery())
    matches = (
        select(EVENT.id, EVENT.date, EVENT.public_id)
        .where(EVENT.deleted_at.is_(None), condition)
        .limit(bindparam("few_limit", type_=Integer))
        .cte("matches")
        .prefix_with("MATERIALIZED")
    )
    date, key = matches.c.date, matches.c.public_id
    stmt = select(matches.c.id, date, key).where(*_window(shape, date))
    counted = select(func.count()).select_from(matches).scalar_subquery()
    return _with_documents(
        _keyset(stmt, date, key, desc, after),
        desc,
        EVENT_DOCUMENT.body,
        LAST_CHANGE.label("changed_at"),
        counted.label("matches"),
    )


@lru_cache(maxsize=512)
def count(shape: Shape) -> Select[tuple[int]]:
    if shape.text == "fts_keys":  # every match counts, not a page's
        shape = replace(shape, text="fts")
    stmt, _, _ = matching(shape)
    return select(func.count()).select_from(stmt.subquery())


# Up to this many matches, a page reads them all through the text index, then orders them
# (far faster for a rare word on PostgreSQL); above it, walking the page's order and testing
# each row finds a page of a common word sooner. Walking costs about N/m tests for m matches
# among N events, reading costs m lookups; where the two cross, and the margin below it, are in
# bench/README.md. A PostgreSQL page of words and dates alone reads fewer first where there are
# fewer events (`planner.few_matches`).
FEW_MATCHES = 5_000

# How many events match, counted up to FEW_MATCHES + 1 through the text index, per dialect. On
# SQLite it picks the plan (`planner.plan`): SQLite's planner has no estimate. On PostgreSQL,
# whose planner estimates it (`TEXT_ESTIMATE`), it counts the matches of a page that was to
# count them itself and read none (`service.page`).
TEXT_MATCHES = {
    "postgresql": select(func.count()).select_from(
        select(EVENT.id).where(SEARCH_VECTOR.op("@@")(tsquery())).limit(FEW_MATCHES + 1).subquery()
    ),
    "sqlite": select(func.count()).select_from(
        select(EVENT_FTS.c.rowid)
        .where(text("event_fts MATCH :words"))
        .limit(FEW_MATCHES + 1)
        .subquery()
    ),
}


# PostgreSQL, several words: TEXT_MATCHES asked as whole words (`exact_tsquery`).
EXACT_MATCHES = select(func.count()).select_from(
    select(EVENT.id)
    .where(SEARCH_VECTOR.op("@@")(exact_tsquery()))
    .limit(FEW_MATCHES + 1)
    .subquery()
)


# SQLite: the keys of the live events that have the words, and the actors the plan asks for
# (`search_index.matching` writes the query), from `key_lo` to `key_hi`, in timeline order (by
# day, then id) or its reverse. FTS5 reads them as it goes: the caller fetches as many as a page
# needs and closes it.
_IN_ORDER = (
    "SELECT rowid FROM event_fts_timeline WHERE event_fts_timeline MATCH :words"
    " AND rowid >= :key_lo AND rowid <= :key_hi ORDER BY rowid"
)
MATCHES_IN_ORDER = {False: text(_IN_ORDER), True: text(f"{_IN_ORDER} DESC")}

# PostgreSQL: the planner's estimate of TEXT_MATCHES's rows, and of the rows of `event`, read
# from the first and second subplans of its plan (`service._estimated_matches`). The words stay
# a bound parameter, so the plan is made for them: EXPLAIN plans its query afresh on every run,
# also once psycopg has prepared it.
TEXT_ESTIMATE = text(
    "EXPLAIN (FORMAT JSON) SELECT (SELECT 1 FROM event"
    " WHERE event.search_vector @@ to_tsquery('simple', :words)),"
    " (SELECT 1 FROM event)"
)

# PostgreSQL: the same for the events that have the words and the actors the plan asks for
# (`planner.plan`, `search_index.actors_query`), and for those that have the actors, as the
# first and second subplans of one plan; ANALYZE keeps statistics of the column's commonest
# tokens, every state and organisation among them.
TEXT_AND_ACTORS_ESTIMATE = text(
    "EXPLAIN (FORMAT JSON) SELECT (SELECT 1 FROM event"
    " WHERE event.search_vector @@ to_tsquery('simple', :words)"
    " AND event.search_actors @@ to_tsquery('simple', :actors)),"
    " (SELECT 1 FROM event WHERE event.search_actors @@ to_tsquery('simple', :actors))"
)

# PostgreSQL: a `q=` page walked in timeline order (a state's events, testing each one's
# tsvector) stops at the page's end when run serially. A parallel plan, which the planner picks
# for a common word, has each worker walk ahead on its own share: several times the rows walked,
# and a slower page (bench/README.md). Only walks take it: a page that reads its matches first
# ("few") ran the same either way, and the statement is a round trip, a noticeable part of a
# rare word's page. LOCAL: for
# this request's transaction only; facets and exports, whose scans a parallel plan does
# shorten, keep it.
SERIAL_PLANS = text("SET LOCAL max_parallel_workers_per_gather = 0")


def _fts_scores(top: bool) -> Any:
    """Every match's bm25 score, higher is better (bm25 is lower for better matches; negated so
    that both engines sort descending). With `top`, only the best `candidates`, each row also
    carrying the lowest score among them (`floor`) and how many there are (`n`)."""
    bm25 = func.bm25(literal_column("event_fts"))
    scores = (
        select(EVENT_FTS.c.rowid.label("event_id"), (-bm25).label("score"))
        .select_from(EVENT_FTS)
        .where(text("event_fts MATCH :words"))
    )
    if not top:
        return scores.subquery("fts_scores")
    best = scores.order_by(bm25).limit(bindparam("candidates", type_=Integer)).subquery("best")
    return select(
        best.c.event_id,
        best.c.score,
        func.min(best.c.score).over().label("floor"),
        func.count().over().label("n"),
    ).subquery("fts_scores")


@lru_cache(maxsize=64)
def ranked(shape: Shape, top: bool = False) -> Select[Any]:
    """Best matches first (bm25 on SQLite, ts_rank on PostgreSQL), ties in timeline order.
    Relevance pages are read off `event`, never a driver.

    Binds `offset` and `limit`; on SQLite with `top`, `candidates` instead, and every row of
    the best candidates that passes the filters is returned (`service._ranked_rows`)."""
    if shape.text in ("fts", "fts_walk"):
        # Scored once by one MATCH and joined, which also keeps only the matches: a correlated
        # bm25() per row ran the MATCH again for every matching event, quadratic in the matches
        # (bench/README.md).
        stmt, _, _ = matching(replace(shape, text=None))
        scores = _fts_scores(top)
        stmt = stmt.join(scores, scores.c.event_id == EVENT.id).add_columns(scores.c.score)
        if top:
            stmt = stmt.add_columns(scores.c.floor, scores.c.n)
        score = scores.c.score
    else:
        stmt, _, _ = matching(shape)
        score = func.ts_rank(SEARCH_VECTOR, tsquery()).label("score")
        stmt = stmt.add_columns(score)
    stmt = stmt.order_by(score.desc(), EVENT.date, EVENT.public_id)
    if top:
        return stmt
    return stmt.offset(bindparam("offset", type_=Integer)).limit(bindparam("limit", type_=Integer))


@lru_cache(maxsize=64)
def ranked_in_tiers(shape: Shape) -> Select[Any]:
    """PostgreSQL, one word of three or more characters: the same rows as `ranked`, in the
    same order, without scoring every match.

    Such a word's ts_rank in an event depends only on how often it occurs there, and once is
    the lowest score, equal in every event that has it once. Those events tie, so they come in
    timeline order: read like a timeline page (walked for a common word), never all scored.
    Only the events where the word occurs more than once, which `search_repeats` indexes, are
    scored. Each tier gives its first `needed` rows; the page is cut from their union.

    Binds `needed` (offset + limit), `offset` and `limit`."""
    stmt, date, key = matching(shape)
    score = func.ts_rank(SEARCH_VECTOR, tsquery()).label("score")
    repeats = SEARCH_REPEATS.op("@@")(tsquery())
    needed = bindparam("needed", type_=Integer)
    above = (
        stmt.where(repeats)
        .add_columns(score)
        .order_by(score.desc(), EVENT.date, EVENT.public_id)
        .limit(needed)
    )
    floor = stmt.where(~repeats).add_columns(score).order_by(date, key).limit(needed)
    tiers = union_all(above, floor).subquery("tiers")
    return (
        select(tiers)
        .order_by(tiers.c.score.desc(), tiers.c.date, tiers.c.public_id)
        .offset(bindparam("offset", type_=Integer))
        .limit(bindparam("limit", type_=Integer))
    )

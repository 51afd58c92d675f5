"""The timeline query: filters, keyset pagination and signed cursors."""

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import (
    Select,
    and_,
    bindparam,
    column,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
    text,
    union_all,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnClause

from app.errors import InvalidParameter
from app.events import documents
from app.models import (
    Event,
    EventTag,
    Membership,
    Organisation,
    Participant,
    Place,
    PlaceAlias,
    State,
)
from app.organisations.service import MEMBER_STATUSES
from app.revisions import service as revision_service
from app.schemas import fold, parse_partial_date
from app.timeline import formats
from app.timeline.schemas import FacetsQuery, TimelineQuery
from app.vocabulary import MembershipEnd, ParticipantRole

CURSOR_VERSION = 1
PAGE_FIELDS = {"cursor", "limit", "count", "format", "group_by"}


@dataclass(frozen=True, slots=True)
class Page:
    # Dicts, or on the plain path the stored documents as orjson Fragments (served as they are).
    items: list[Any]
    next_cursor: str | None
    total: int | None


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


def _ids_by_code(session: Session, model: Any, codes: list[str]) -> dict[str, int]:
    return dict(session.execute(_BY_CODE[model], {"codes": codes}).tuples().all())


def _lookup(session: Session, model: Any, codes: list[str], what: str, param: str) -> list[int]:
    if not codes:
        return []
    found = _ids_by_code(session, model, codes)
    for code in codes:
        if code not in found:
            raise InvalidParameter(["query", param], f"unknown {what} code {code!r}")
    return [found[c] for c in codes]


def _actor_ids(session: Session, codes: list[str], param: str) -> tuple[list[int], list[int]]:
    """Split codes into state and organisation ids; a code may name either."""
    if not codes:
        return [], []
    states = _ids_by_code(session, State, codes)
    orgs = _ids_by_code(session, Organisation, codes)
    for code in codes:
        if code not in states and code not in orgs:
            raise InvalidParameter(["query", param], f"unknown state or organisation code {code!r}")
    return list(states.values()), list(orgs.values())


def _pair(session: Session, between: str) -> list[int]:
    """The state ids of `between=`: at least two different states, all known."""
    codes = list(dict.fromkeys(between.split(",")))
    if len(codes) < 2:
        raise InvalidParameter(["query", "between"], "give at least two different state codes")
    return _lookup(session, State, codes, "state", "between")


def _with_role(state_ids: list[int], org_ids: list[int], role: ParticipantRole) -> Any:
    return Event.id.in_(
        select(Participant.event_id).where(
            Participant.role == role.value,
            or_(Participant.state_id.in_(state_ids), Participant.organisation_id.in_(org_ids)),
        )
    )


def _member_on_event_date(org_id: int) -> Any:
    """A participating state belonged to the organisation on the event's date."""
    return exists(
        select(Participant.id)
        .join(Membership, Membership.state_id == Participant.state_id)
        .where(
            Participant.event_id == Event.id,
            Membership.organisation_id == org_id,
            Membership.status.in_(MEMBER_STATUSES),
            Membership.start_on <= Event.date,
            or_(
                Membership.end_kind == MembershipEnd.open.value,
                and_(
                    Membership.end_kind == MembershipEnd.dated.value,
                    Membership.end_on > Event.date,
                ),
            ),
        )
    )


def filtered(
    session: Session, query: TimelineQuery, *, driver: "Driver | None" = None
) -> Select[tuple[int, dt.date, str]]:
    """The matching events, unordered and unpaged. Raises InvalidParameter for bad values.

    With a `driver`, its own condition is left out: the caller reads that table directly.
    """
    stmt = select(Event.id, Event.date, Event.public_id).where(Event.deleted_at.is_(None))
    start = parse_partial_date(query.from_) if query.from_ else None
    end = parse_partial_date(query.to, end=True) if query.to else None
    if start and end and start > end:
        raise InvalidParameter(["query", "from"], f"from ({start}) is after to ({end})")
    if start:
        stmt = stmt.where(Event.date >= start)
    if end:
        stmt = stmt.where(Event.date <= end)

    # The driver has looked its codes up (and refused unknown ones) already.
    skip = driver.skip if driver else None
    if query.state and skip != "state":
        ids = _lookup(session, State, query.state, "state", "state")
        stmt = stmt.where(
            Event.id.in_(select(Participant.event_id).where(Participant.state_id.in_(ids)))
        )
    if query.between:
        pair = driver.pair if driver is not None and skip == "between" else None
        for state_id in pair or _pair(session, query.between):
            if driver is not None and state_id == driver.state_id:
                continue
            # Correlated: the page is read off the rarest state's index, each row checked here.
            other = Participant.__table__.alias("other_state")
            stmt = stmt.where(
                exists().where(other.c.event_id == Event.id, other.c.state_id == state_id)
            )
    if query.actor:
        stmt = stmt.where(
            _with_role(*_actor_ids(session, query.actor, "actor"), ParticipantRole.initiator)
        )
    if query.target:
        stmt = stmt.where(
            _with_role(*_actor_ids(session, query.target, "target"), ParticipantRole.target)
        )
    if query.organisation:
        if skip != "organisation":
            org_ids = _lookup(
                session, Organisation, query.organisation, "organisation", "organisation"
            )
            conditions = [
                Event.id.in_(
                    select(Participant.event_id).where(Participant.organisation_id.in_(org_ids))
                )
            ]
            if query.include_members:
                conditions.extend(_member_on_event_date(org_id) for org_id in org_ids)
            stmt = stmt.where(or_(*conditions))
    elif query.include_members:
        raise InvalidParameter(["query", "include_members"], "needs an organisation parameter")
    if query.kind:
        stmt = stmt.where(Event.kind.in_([k.value for k in query.kind]))
    if query.category:
        stmt = stmt.where(Event.category.in_(query.category))
    if query.tag and skip != "tag":
        stmt = stmt.where(
            Event.id.in_(select(EventTag.event_id).where(EventTag.tag.in_(query.tag)))
        )
    if query.q:
        stmt = stmt.where(_text_match(session, search_terms(query.q)))
    elif query.order == "relevance":
        raise InvalidParameter(["query", "order"], "relevance needs words to search for in q")
    return stmt


# SQLite's FTS5 table and PostgreSQL's stored tsvector of event.search_text (made by
# migrations, not in the metadata: each exists on one database only).
EVENT_FTS = table("event_fts", column("rowid"))
SEARCH_VECTOR: ColumnClause[Any] = literal_column("event.search_vector")


def _tsquery(terms: list[str]) -> Any:
    """PostgreSQL: every word, each as a prefix."""
    return func.to_tsquery(literal_column("'simple'"), " & ".join(f"{term}:*" for term in terms))


def _fts_match(terms: list[str]) -> str:
    """SQLite FTS5: every word, each as a prefix."""
    return " ".join(f'"{term}"*' for term in terms)


def search_terms(q: str) -> list[str]:
    """The words of a query, folded like the indexed text. Only letters and digits survive, so
    nothing in `q` can reach either engine's query syntax."""
    terms = re.findall(r"\w+", fold(q))
    if not terms:
        raise InvalidParameter(["query", "q"], "give at least one word to search for")
    return terms


# Up to this many matches, PostgreSQL reads them all through the GIN index before paging
# (bench/README.md: a rare word at 1M, 3.2 s -> about 12 ms); above it, walking the timeline
# order and testing each event finds a page of a common word sooner. At 1M events the two cost
# the same near 10,000 matches: walking costs about 51 x N/m tests, reading m index lookups.
FEW_MATCHES = 5_000


def _text_match(session: Session, terms: list[str]) -> Any:
    """Events whose text has every word, each as a word prefix ("tinzaouat" finds
    "tinzaouaten"): FTS5 on SQLite, a GIN-indexed stored tsvector on PostgreSQL."""
    if session.get_bind().dialect.name == "postgresql":
        condition = SEARCH_VECTOR.op("@@")(_tsquery(terms))
        matches = select(Event.id).where(condition)
        # PostgreSQL's estimate for prefix terms is poor (3,459 for a word with 977 matches),
        # so it walks the date index for a rare word, testing every event it passes. A bounded
        # count through the index tells how many there really are.
        bounded = matches.limit(FEW_MATCHES + 1).subquery()
        if (session.scalar(select(func.count()).select_from(bounded)) or 0) <= FEW_MATCHES:
            # OFFSET 0 keeps the planner from merging the subquery into the outer query, so the
            # matches are read first (and all of them, whatever a concurrent write adds).
            return Event.id.in_(matches.offset(0))
        # Many matches: tested on the page's own rows (no self-join), in whichever order the
        # plan reads them.
        return condition
    return Event.id.in_(
        select(literal_column("rowid"))
        .select_from(text("event_fts"))
        .where(text("event_fts MATCH :fts_query").bindparams(fts_query=_fts_match(terms)))
    )


def _ranked(session: Session, stmt: Select[Any], terms: list[str]) -> tuple[Select[Any], Any]:
    """The matching events with a score, higher is better (bm25 on SQLite, ts_rank on
    PostgreSQL), and the score column."""
    if session.get_bind().dialect.name == "postgresql":
        score = func.ts_rank(SEARCH_VECTOR, _tsquery(terms)).label("score")
        return stmt.add_columns(score), score
    # Scored once by one MATCH and joined: a correlated bm25() per row ran the MATCH again for
    # every matching event, quadratic in the matches (minutes for a common word at 1M).
    # bm25 is lower for better matches; negated so that both engines sort descending.
    scores = (
        select(
            EVENT_FTS.c.rowid.label("event_id"),
            (-func.bm25(literal_column("event_fts"))).label("score"),
        )
        .select_from(EVENT_FTS)
        .where(text("event_fts MATCH :fts_rank_query").bindparams(fts_rank_query=_fts_match(terms)))
        .subquery("fts_scores")
    )
    joined = stmt.join(scores, scores.c.event_id == Event.id).add_columns(scores.c.score)
    return joined, scores.c.score


def facets(session: Session, query: FacetsQuery) -> dict[str, Any]:
    """Counts per kind, category, period, state and organisation: two queries, whatever the data.

    One query groups the matching events by each of their own columns (UNION ALL of GROUP BYs
    over one CTE); the other groups their participants.
    """
    if query.as_known_at is not None:
        raise InvalidParameter(["query", "as_known_at"], "facets describe the current data only")
    matching = filtered(session, query).add_columns(Event.kind, Event.category).cte("matching")
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
    out: dict[str, list[dict[str, Any]]] = {
        "kind": [],
        "category": [],
        "period": [],
        "state": [],
        "organisation": [],
    }
    for facet, value, count in session.execute(union_all(*parts)):
        out[facet].append({"value": value, "count": count})
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
    for state, organisation, count in session.execute(actor):
        if state is not None:
            out["state"].append({"value": state, "count": count})
        else:
            out["organisation"].append({"value": organisation, "count": count})
    for name in ("kind", "category", "state", "organisation"):
        out[name].sort(key=lambda f: (-f["count"], f["value"]))
    out["period"].sort(key=lambda f: f["value"])
    return {"total": sum(f["count"] for f in out["kind"]), **out}


@dataclass(frozen=True, slots=True)
class Driver:
    """The table a page is read from, when one filter names a single state, organisation or tag.

    Reading (state_id, date, public_id) in index order and joining each row to its event stops
    after one page; reading events and testing `id IN (events of the state)` reads and sorts
    every event of the state first (bench/README.md).
    """

    skip: str
    table: Any
    match: Any
    # For `between`: the state read from the index, and the pair's states, each tested on
    # every row except that one.
    state_id: int | None = None
    pair: tuple[int, ...] = ()


# A pair is read off its rarest state's participations, found by counting each state's up to
# this many. At 1M, a page of USA with South Sudan (about 5,000 participations) read USA's
# first and took 168 ms on SQLite (seconds under load); read off South Sudan, 8 ms. The counts
# cost about 3 ms for a pair of common states; above the cap states tie and the first is read.
RARITY_CAP = 10_000


def _driver(session: Session, query: TimelineQuery) -> Driver | None:
    p, t = Participant.__table__.c, EventTag.__table__.c
    if len(query.state) == 1:
        (state_id,) = _lookup(session, State, query.state, "state", "state")
        return Driver("state", p, p.state_id == state_id)
    if query.between:
        pair = _pair(session, query.between)
        rarest = min(pair, key=lambda state_id: _participations(session, state_id))
        return Driver("between", p, p.state_id == rarest, rarest, tuple(pair))
    if len(query.organisation) == 1 and not query.include_members:
        (org_id,) = _lookup(
            session, Organisation, query.organisation, "organisation", "organisation"
        )
        return Driver("organisation", p, p.organisation_id == org_id)
    if len(query.tag) == 1:
        return Driver("tag", t, t.tag == query.tag[0])
    return None


_PARTICIPATIONS = select(func.count()).select_from(
    select(Participant.__table__.c.state_id)
    .where(Participant.__table__.c.state_id == bindparam("state_id"))
    .limit(RARITY_CAP)
    .subquery()
)


def _participations(session: Session, state_id: int) -> int:
    """How many events a state takes part in, counted up to RARITY_CAP (an index-only count)."""
    return session.scalar(_PARTICIPATIONS, {"state_id": state_id}) or 0


def _plan(session: Session, query: TimelineQuery) -> tuple[Select[Any], Any, Any]:
    """The matching events as (id, date, public_id), and the columns to order and page on."""
    driver = _driver(session, query)
    if driver is None:
        return filtered(session, query), Event.date, Event.public_id
    conditions = filtered(session, query, driver=driver).whereclause
    d = driver.table
    stmt = (
        select(d.event_id.label("id"), d.date.label("date"), d.public_id.label("public_id"))
        .join(Event, Event.id == d.event_id)
        .where(driver.match)
        # A state taking part twice (two roles) would list the event twice.
        .distinct()
    )
    if conditions is not None:
        stmt = stmt.where(conditions)
    if query.from_:
        stmt = stmt.where(d.date >= parse_partial_date(query.from_))
    if query.to:
        stmt = stmt.where(d.date <= parse_partial_date(query.to, end=True))
    return stmt, d.date, d.public_id


def check(session: Session, query: TimelineQuery) -> None:
    """Raise InvalidParameter for bad values (unknown codes, from after to, …) without paging."""
    filtered(session, query)


def _ordered_after(
    stmt: Select[Any],
    desc: bool,
    after: tuple[dt.date, str] | None,
    date: Any = Event.date,
    key: Any = Event.public_id,
) -> Select[Any]:
    """Keyset continuation in (date, id) order, on the columns the plan reads."""
    if after is not None:
        after_date, after_id = after
        # The cursor's date bounds the index range itself; a bare row-value comparison combined
        # with `from` makes SQLite scan from `from` (research/performance-baseline.md).
        if desc:
            stmt = stmt.where(date <= after_date, or_(date < after_date, key < after_id))
        else:
            stmt = stmt.where(date >= after_date, or_(date > after_date, key > after_id))
    if desc:
        return stmt.order_by(date.desc(), key.desc())
    return stmt.order_by(date, key)


def page(session: Session, query: TimelineQuery, *, cursor_secret: str) -> Page:
    if query.as_known_at is not None:
        return _historical_page(session, query, cursor_secret)
    if query.order == "relevance":
        return _relevance_page(session, query, cursor_secret)
    stmt, date, key = _plan(session, query)
    total = None
    if query.count:
        total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    after = decode_cursor(cursor_secret, query, query.cursor) if query.cursor else None
    stmt = _ordered_after(stmt, query.order == "desc", after, date, key)
    rows = session.execute(stmt.limit(query.limit + 1)).all()
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    next_cursor = None
    if more and rows:
        last = rows[-1]
        next_cursor = encode_cursor(cursor_secret, query, last.date, last.public_id)
    items = documents.stored(session, [r.id for r in rows])
    return Page(items=items, next_cursor=next_cursor, total=total)


def _relevance_page(session: Session, query: TimelineQuery, cursor_secret: str) -> Page:
    """Best matches first; ties in date order. Paged by position: a ranking has no stable key."""
    stmt = filtered(session, query)
    assert query.q is not None  # noqa: S101 - filtered() refused relevance without q
    terms = search_terms(query.q)
    total = None
    if query.count:
        total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    offset = decode_offset(cursor_secret, query, query.cursor) if query.cursor else 0
    ranked, score = _ranked(session, stmt, terms)
    ranked = ranked.order_by(score.desc(), Event.date, Event.public_id)
    rows = session.execute(ranked.offset(offset).limit(query.limit + 1)).all()
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    items = documents.documents(session, [r.id for r in rows])
    for item in items:
        item["snippet"] = snippet(item, terms)
    next_cursor = encode_offset(cursor_secret, query, offset + len(rows)) if more else None
    return Page(items=items, next_cursor=next_cursor, total=total)


def snippet(doc: dict[str, Any], terms: list[str], width: int = 30) -> str:
    """The summary around the first matching word, matches wrapped in <mark> (HTML-escaped)."""
    words = f"{doc['title']} — {doc['summary']}".split()
    marked = []
    first = None
    for i, word in enumerate(words):
        hit = any(fold(word).strip(".,;:!?()'\"«»“”").startswith(t) for t in terms)
        escaped = html.escape(word)
        marked.append(f"<mark>{escaped}</mark>" if hit else escaped)
        if hit and first is None:
            first = i
    start = max(0, (first or 0) - width // 3)
    text_ = " ".join(marked[start : start + width])
    return ("… " if start else "") + text_ + (" …" if start + width < len(marked) else "")


EXPORT_BATCH = 500


def export(session: Session, query: TimelineQuery) -> Iterator[list[dict[str, Any]]]:
    """Every matching event, in batches, for streamed exports: memory stays flat whatever the
    size of the export, since each batch is dropped once written."""
    if query.as_known_at is not None:
        yield _historical(session, query)
        return
    for ids in _export_ids(session, query):
        yield documents.documents(session, ids)


def export_csv(session: Session, query: TimelineQuery) -> Iterator[list[str]]:
    """As `export`, each event as its CSV line: the stored ones, copied as they are."""
    if query.as_known_at is not None:
        yield [formats.csv_line(doc) for doc in _historical(session, query)]
        return
    for ids in _export_ids(session, query):
        yield documents.csv_lines(session, ids)


def _export_ids(session: Session, query: TimelineQuery) -> Iterator[list[int]]:
    base, date, key = _plan(session, query)
    after: tuple[dt.date, str] | None = None
    while True:
        stmt = _ordered_after(base, query.order == "desc", after, date, key).limit(EXPORT_BATCH)
        rows = session.execute(stmt).all()
        if not rows:
            return
        yield [r.id for r in rows]
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
    stmt = filtered(session, query).order_by(Event.updated_at.desc(), Event.public_id)
    rows = session.execute(stmt.limit(query.limit)).all()
    return documents.documents(session, [r.id for r in rows])


# --- the timeline as it was known at an instant ----------------------------------------------
# Rebuilt from revision snapshots and filtered in Python. It is a citation tool, rarely asked,
# so it trades speed for reusing the exact documents the API served at the time.


def _codes(doc: dict[str, Any], role: str | None = None) -> set[str]:
    return {
        p.get("state") or p.get("organisation") or ""
        for p in doc["participants"]
        if role is None or p["role"] == role
    } - {""}


def matches(
    doc: dict[str, Any],
    query: TimelineQuery,
    memberships: list[dict[str, Any]],
    place_aliases: dict[str, list[str]],
) -> bool:
    """Whether an event's API representation passes the query's filters, evaluated in Python
    (historical timelines and webhook subscription filters)."""
    day = doc["date"]
    if query.from_ and day < parse_partial_date(query.from_).isoformat():
        return False
    if query.to and day > parse_partial_date(query.to, end=True).isoformat():
        return False
    codes = _codes(doc)
    if query.state and not codes & set(query.state):
        return False
    if query.between and not set(query.between.split(",")) <= codes:
        return False
    if query.actor and not _codes(doc, "initiator") & set(query.actor):
        return False
    if query.target and not _codes(doc, "target") & set(query.target):
        return False
    if query.organisation:
        wanted = set(query.organisation)
        member = query.include_members and any(
            m["organisation"] in wanted
            and m["state"] in codes
            and m["status"] in MEMBER_STATUSES
            and m["start_on"] <= day
            and (m["end"] == "open" or (m["end"] == "dated" and m["end_on"] > day))
            for m in memberships
        )
        if not (codes & wanted or member):
            return False
    if query.kind and doc["kind"] not in {k.value for k in query.kind}:
        return False
    if query.category and doc["category"] not in query.category:
        return False
    if query.tag and not set(doc["tags"]) & set(query.tag):
        return False
    if query.q:
        location = doc.get("location") or {}
        text = fold(
            " | ".join(
                [
                    doc["title"],
                    doc["summary"],
                    location.get("name") or "",
                    *place_aliases.get(location.get("place") or "", []),
                    *(c["statement"] for c in doc["claims"]),
                    *(c["claimant"].get("group", "") for c in doc["claims"]),
                    *(p.get("group", "") for p in doc["participants"]),
                    *doc["tags"],
                ]
            )
        )
        if not all(term in text for term in fold(query.q).split()):
            return False
    return True


def _historical_page(session: Session, query: TimelineQuery, cursor_secret: str) -> Page:
    assert query.as_known_at is not None  # noqa: S101 - the caller checked
    filtered(session, query)  # the same parameter checks (unknown codes, from after to, …)
    at = query.as_known_at
    events = revision_service.snapshot(session, "event", at)
    memberships = list(revision_service.snapshot(session, "membership", at).values())
    aliases: dict[str, list[str]] = {}
    for code, alias in session.execute(
        select(Place.code, PlaceAlias.alias).join(PlaceAlias, PlaceAlias.place_id == Place.id)
    ):
        aliases.setdefault(code, []).append(alias)
    docs = [
        {k: v for k, v in doc.items() if k != "links"}
        for doc in events.values()
        if matches(doc, query, memberships, aliases)
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
    return Page(items=items, next_cursor=next_cursor, total=total)

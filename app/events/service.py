"""Events: writes by natural key and the assembly of event documents for reads."""

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy import update as sql_update
from sqlalchemy.orm import Session, selectinload

from app import search
from app.db import reconcile, utcnow
from app.errors import Conflict, Gone, InvalidParameter, NotFound, PreconditionFailed
from app.events import documents
from app.events.schemas import (
    ActorRef,
    CasualtiesIn,
    ClaimIn,
    EventCreate,
    LinkIn,
    LocationIn,
    ParticipantIn,
)
from app.models import (
    Claim,
    DiplomaticAction,
    Event,
    EventLink,
    EventSource,
    EventTag,
    Incident,
    Organisation,
    Participant,
    Place,
    Source,
    State,
    StatePair,
)
from app.revisions import service as revision_service
from app.schemas import Outcome, patched, unknown_code
from app.sources import service as source_service
from app.vocabulary import (
    CAMEO,
    Confidence,
    DatePrecision,
    EventKind,
    LinkType,
    LocationPrecision,
    ParticipantRole,
)


class Refs:
    """Resolves natural keys to row ids, once per key, and says which field was wrong."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._states: dict[str, int] = {}
        self._organisations: dict[str, int] = {}
        self._places: dict[str, int] = {}
        self._events: dict[str, int] = {}

    def _resolve(
        self,
        cache: dict[str, int],
        column: Any,
        id_column: Any,
        key: str,
        what: str,
        loc: list[str | int],
    ) -> int:
        if key not in cache:
            found = self.session.scalar(select(id_column).where(column == key))
            if found is None:
                raise InvalidParameter(loc, unknown_code(what, key))
            cache[key] = found
        return cache[key]

    def state(self, code: str, loc: list[str | int]) -> int:
        return self._resolve(self._states, State.code, State.id, code, "state", loc)

    def organisation(self, code: str, loc: list[str | int]) -> int:
        return self._resolve(
            self._organisations, Organisation.code, Organisation.id, code, "organisation", loc
        )

    def place(self, code: str, loc: list[str | int]) -> int:
        return self._resolve(self._places, Place.code, Place.id, code, "place", loc)

    def event(self, public_id: str, loc: list[str | int]) -> int:
        return self._resolve(self._events, Event.public_id, Event.id, public_id, "event", loc)


def _load_options() -> list[Any]:
    return [
        selectinload(Event.participants).selectinload(Participant.state),
        selectinload(Event.participants).selectinload(Participant.organisation),
        selectinload(Event.state_pairs),
        selectinload(Event.tags),
        selectinload(Event.source_links).selectinload(EventSource.source),
        selectinload(Event.claims).selectinload(Claim.sources),
        selectinload(Event.claims).selectinload(Claim.claimant_state),
        selectinload(Event.claims).selectinload(Claim.claimant_organisation),
        selectinload(Event.links).selectinload(EventLink.to_event),
        selectinload(Event.place),
        selectinload(Event.location_state),
    ]


# An event with everything a write compares and changes, by public id (`public_id`), built once:
# a statement made per call pays for the SQLAlchemy cache key of its eleven loader options
# every time (app/events/documents.py builds its statements once for the same reason).
_EVENT_GRAPH = (
    select(Event).where(Event.public_id == bindparam("public_id")).options(*_load_options())
)
_EVENT_GRAPH_FOR_UPDATE = _EVENT_GRAPH.with_for_update(of=Event)


def _actor(state: State | None, organisation: Organisation | None, group: str | None) -> ActorRef:
    return ActorRef(
        state=state.code if state else None,
        organisation=organisation.code if organisation else None,
        group=group,
    )


def as_input(event: Event) -> EventCreate:
    """The event as the input that would create it, to compare against new data."""
    location = None
    if event.place_name is not None:
        location = LocationIn(
            name=event.place_name,
            place=event.place.code if event.place else None,
            lat=event.lat,
            lon=event.lon,
            precision=(
                LocationPrecision(event.location_precision) if event.location_precision else None
            ),
            country=event.location_state.code if event.location_state else None,
        )
    casualties = None
    if any(
        v is not None
        for v in (event.casualties_killed, event.casualties_wounded, event.casualties_note)
    ):
        casualties = CasualtiesIn(
            killed=event.casualties_killed,
            wounded=event.casualties_wounded,
            note=event.casualties_note,
        )
    return EventCreate.model_construct(
        id=event.public_id,
        fact_ref=event.fact_ref,
        kind=EventKind(event.kind),
        category=event.category,
        date=event.date,
        date_precision=DatePrecision(event.date_precision),
        end_date=event.end_date,
        title=event.title,
        summary=event.summary,
        participants=[
            ParticipantIn(
                **_actor(p.state, p.organisation, p.group_name).model_dump(),
                role=ParticipantRole(p.role),
            )
            for p in event.participants
        ],
        location=location,
        cameo_code=event.cameo_code,
        casualties=casualties,
        tags=[t.tag for t in event.tags],
        confidence=Confidence(event.confidence) if event.confidence else None,
        sources=[source_service.as_input(link.source) for link in event.source_links],
        claims=[
            ClaimIn.model_construct(
                topic=c.topic,
                claimant=_actor(c.claimant_state, c.claimant_organisation, c.claimant_group),
                statement=c.statement,
                value=c.value,
                unit=c.unit,
                made_on=c.made_on,
                source=source_service.as_input(c.sources[0]),
            )
            for c in event.claims
        ],
        links=[
            LinkIn(type=LinkType(link.link_type), event=link.to_event.public_id)
            for link in event.links
        ],
    )


def input_documents(session: Session, ids: Sequence[int]) -> list[dict[str, Any]]:
    """These events, deleted ones too, as the body of the POST that would create each: their
    served documents (assembled from the tables, as `documents.fill` does) less what is
    derived, plus their links. What an archive import validates with EventCreate: a fifth of
    the time of loading the ORM objects for `as_input`."""
    link = EventLink.__table__.c
    target = Event.__table__.c
    links: dict[int, list[dict[str, str]]] = {}
    rows = session.execute(
        select(link.from_event_id, link.link_type, target.public_id)
        .join(Event, target.id == link.to_event_id)
        .where(link.from_event_id.in_(ids))
    )
    for from_id, link_type, public_id in rows:
        links.setdefault(from_id, []).append({"type": link_type, "event": public_id})
    fields = EventCreate.model_fields
    bodies = []
    for event_id, doc in zip(ids, documents.assemble(session, ids), strict=True):
        body = {key: value for key, value in doc.items() if key in fields}
        # A claim is served with its sources; it is written with one.
        body["claims"] = [
            {key: value for key, value in claim.items() if key != "sources"}
            | {"source": (claim["sources"] or [None])[0]}
            for claim in doc["claims"]
        ]
        body["links"] = links.get(event_id, [])
        bodies.append(body)
    return bodies


_SEARCHED = {"title", "summary", "location", "claims", "participants", "tags"}


def _search_text(data: EventCreate, place: Place | None) -> str:
    names = [place.name, *(alias.alias for alias in place.aliases)] if place is not None else []
    return search.searched(data.model_dump(include=_SEARCHED), names)


def _apply(
    session: Session, event: Event, data: EventCreate, refs: Refs, actor: str, *, with_links: bool
) -> None:
    # First every query and every source write (each may flush), then the event's own
    # attributes with autoflush off: the event is written in one flush, so one write is one
    # version step.
    sources = [source_service.upsert(session, s, actor) for s in data.sources]
    claim_sources = [source_service.upsert(session, c.source, actor) for c in data.claims]
    place = None
    loc = data.location
    if loc is not None and loc.place is not None:
        place = session.scalars(
            select(Place)
            .where(Place.id == refs.place(loc.place, ["body", "location", "place"]))
            .options(selectinload(Place.aliases))
        ).one()
    location_state_id = (
        refs.state(loc.country, ["body", "location", "country"]) if loc and loc.country else None
    )
    participants = [_participant_key(p, i, refs) for i, p in enumerate(data.participants)]
    claims = [_claim(c, i, refs, claim_sources[i]) for i, c in enumerate(data.claims)]
    links = _link_keys(data.links, refs) if with_links else None

    with session.no_autoflush:
        event.kind = data.kind.value
        event.category = data.category
        event.date = data.date
        event.date_precision = data.date_precision.value
        event.end_date = data.end_date
        event.title = data.title
        event.summary = data.summary
        event.fact_ref = data.fact_ref
        event.confidence = data.confidence.value if data.confidence else None
        event.cameo_code = data.cameo_code
        event.goldstein = CAMEO[data.cameo_code].goldstein if data.cameo_code else None
        event.place_id = place.id if place else None
        event.place_name = loc.name if loc else None
        event.lat = loc.lat if loc else None
        event.lon = loc.lon if loc else None
        event.location_precision = loc.precision.value if loc and loc.precision else None
        event.location_state_id = location_state_id
        casualties = data.casualties
        event.casualties_killed = casualties.killed if casualties else None
        event.casualties_wounded = casualties.wounded if casualties else None
        event.casualties_note = casualties.note if casualties else None
        event.search_text = _search_text(data, place)
        # Kept, not rewritten, where unchanged: most edits touch no actor, and a rewrite costs
        # a delete and an insert per row, and moves the event's counts for nothing.
        event.participants = reconcile(
            event.participants,
            participants,
            lambda p: (p.position, p.state_id, p.organisation_id, p.group_name, p.role),
            lambda key: Participant(
                position=key[0],
                state_id=key[1],
                organisation_id=key[2],
                group_name=key[3],
                role=key[4],
            ),
        )
        states = sorted({key[1] for key in participants if key[1] is not None})
        event.state_pairs = reconcile(
            event.state_pairs,
            list(combinations(states, 2)),
            lambda pair: (pair.state_a, pair.state_b),
            lambda key: StatePair(state_a=key[0], state_b=key[1]),
        )
        for participant in event.participants:
            participant.date = data.date
            participant.public_id = data.id
        for pair in event.state_pairs:
            pair.date = data.date
            pair.public_id = data.id
        event.tags = reconcile(
            event.tags, list(data.tags), lambda t: t.tag, lambda tag: EventTag(tag=tag)
        )
        for tag in event.tags:
            tag.date = data.date
            tag.public_id = data.id
        by_id = {s.id: s for s in sources}
        event.source_links = reconcile(
            event.source_links,
            [s.id for s in sources],
            lambda link: link.source_id,
            lambda source_id: EventSource(source=by_id[source_id]),
        )
        for position, link in enumerate(event.source_links):
            link.position = position
        event.claims = claims
        if links is not None:
            _set_link_keys(event, links)
        event.updated_at = utcnow()


ParticipantKey = tuple[int, int | None, int | None, str | None, str]


def _participant_key(p: ParticipantIn, i: int, refs: Refs) -> ParticipantKey:
    """(position, state id, organisation id, group, role): what makes a participant row."""
    loc: list[str | int] = ["body", "participants", i]
    return (
        i,
        refs.state(p.state, [*loc, "state"]) if p.state else None,
        refs.organisation(p.organisation, [*loc, "organisation"]) if p.organisation else None,
        p.group,
        p.role.value,
    )


def _claim(c: ClaimIn, i: int, refs: Refs, source: Source) -> Claim:
    loc: list[str | int] = ["body", "claims", i, "claimant"]
    return Claim(
        position=i,
        topic=c.topic,
        claimant_state_id=refs.state(c.claimant.state, [*loc, "state"])
        if c.claimant.state
        else None,
        claimant_organisation_id=(
            refs.organisation(c.claimant.organisation, [*loc, "organisation"])
            if c.claimant.organisation
            else None
        ),
        claimant_group=c.claimant.group,
        statement=c.statement,
        value=c.value,
        unit=c.unit,
        made_on=c.made_on,
        sources=[source],
    )


def _link_keys(links: Sequence[LinkIn], refs: Refs) -> list[tuple[int, str]]:
    return [
        (refs.event(link.event, ["body", "links", i, "event"]), link.type.value)
        for i, link in enumerate(links)
    ]


def _set_link_keys(event: Event, wanted: list[tuple[int, str]]) -> None:
    event.links = reconcile(
        event.links,
        wanted,
        lambda link: (link.to_event_id, link.link_type),
        lambda k: EventLink(to_event_id=k[0], link_type=k[1]),
    )


def set_links(event: Event, links: Sequence[LinkIn], refs: Refs) -> None:
    _set_link_keys(event, _link_keys(links, refs))


def _change_kind(session: Session, event: Event, kind: EventKind) -> Event:
    """The same row, loaded again as the class of its new kind.

    Single-table inheritance: the row stays and its discriminator changes. The ORM cannot change
    a loaded object's class (it would flush the row under the old class, with a warning, and
    the object would not refresh), so the discriminator is updated in the row and the event is
    read again."""
    session.flush()
    session.execute(
        sql_update(Event)
        .where(Event.id == event.id)
        .values(kind=kind.value)
        .execution_options(synchronize_session=False)
    )
    public_id = event.public_id
    session.expunge(event)
    return session.scalars(_EVENT_GRAPH, {"public_id": public_id}).one()


def upsert(
    session: Session,
    data: EventCreate,
    refs: Refs,
    actor: str,
    *,
    with_links: bool = True,
    record: bool = True,
    before_out: dict[str, Any] | None = None,
) -> Outcome:
    """Create the event or bring it in line with `data`; touch nothing when it already matches.

    A change is recorded as a revision by `actor`. `with_links=False, record=False` lets a bulk
    loader write every event before linking them, since links may point forwards in the load
    order; it records the revisions itself once the links are set, and gets each updated
    event's prior representation through `before_out`.
    """
    existing = session.scalars(_EVENT_GRAPH, {"public_id": data.id}).one_or_none()
    outcome, _ = _upsert(
        session,
        existing,
        data,
        refs,
        actor,
        with_links=with_links,
        record=record,
        before_out=before_out,
    )
    return outcome


@dataclass(frozen=True)
class Written:
    """An event as a write left it: its row, and what its revision recorded."""

    event: Event
    representation: dict[str, Any]


def _upsert(
    session: Session,
    existing: Event | None,
    data: EventCreate,
    refs: Refs,
    actor: str,
    *,
    with_links: bool = True,
    record: bool = True,
    before_out: dict[str, Any] | None = None,
) -> tuple[Outcome, Written | None]:
    """`upsert` of the event `existing` (loaded with `_load_options()`), or of a new one; with
    what was written and recorded, when something was."""
    if existing is not None:
        current, wanted = as_input(existing).canonical(), data.canonical()
        if not with_links:
            # A bulk load links events afterwards: their links are not compared yet.
            current.pop("links")
            wanted.pop("links")
        if current == wanted:
            return Outcome.unchanged, None
        before = prior_representation(session, existing.id)
        if before_out is not None:
            before_out.update(before)
        if existing.kind != data.kind.value:
            existing = _change_kind(session, existing, data.kind)
        _apply(session, existing, data, refs, actor, with_links=with_links)
        session.flush()
        if not record:
            return Outcome.updated, None
        after = record_change(session, existing, Outcome.updated, before, actor)
        return Outcome.updated, Written(existing, after)
    model = Incident if data.kind is EventKind.incident else DiplomaticAction
    # Empty collections up front: assigning to an unloaded lazy="raise" collection would raise.
    event = model(
        public_id=data.id,
        search_text="",
        participants=[],
        state_pairs=[],
        tags=[],
        source_links=[],
        claims=[],
        links=[],
    )
    _apply(session, event, data, refs, actor, with_links=with_links)
    session.add(event)
    session.flush()
    refs._events[data.id] = event.id
    if not record:
        return Outcome.created, None
    after = record_change(session, event, Outcome.created, None, actor)
    return Outcome.created, Written(event, after)


def upsert_links(session: Session, data: EventCreate, refs: Refs) -> Outcome:
    event = session.scalars(
        select(Event)
        .where(Event.public_id == data.id)
        .options(selectinload(Event.links).selectinload(EventLink.to_event))
    ).one()
    current = sorted((link.to_event.public_id, link.link_type) for link in event.links)
    wanted = sorted((link.event, link.type.value) for link in data.links)
    if current == wanted:
        return Outcome.unchanged
    set_links(event, data.links, refs)
    event.updated_at = utcnow()
    session.flush()
    return Outcome.updated


def _linked(rows: Iterable[Any]) -> list[dict[str, Any]]:
    return [
        {
            "type": r.link_type,
            "event": {
                "id": r.public_id,
                "date": r.date,
                "title": r.title,
                "url": f"/v1/events/{r.public_id}",
            },
        }
        for r in rows
    ]


def _outgoing(session: Session, event_id: int) -> list[dict[str, Any]]:
    link = EventLink.__table__.c
    other = Event.__table__.c
    # Links to a since-deleted event stay listed: the link was made, and the target answers 410.
    return _linked(
        session.execute(
            select(link.link_type, other.public_id, other.date, other.title)
            .join(Event, other.id == link.to_event_id)
            .where(link.from_event_id == event_id)
            .order_by(other.date, other.public_id, link.link_type)
        )
    )


def representation(session: Session, event_id: int) -> dict[str, Any]:
    """What revisions and the change feed record: the document plus its outgoing links."""
    # Assembled, never the stored copy: a write records this before its commit stores that.
    doc = documents.assemble(session, [event_id])[0]
    doc["links"] = {"outgoing": _outgoing(session, event_id)}
    return doc


def prior_representation(session: Session, event_id: int) -> dict[str, Any]:
    """`representation` of an event that this transaction is about to change, from its stored
    document: one read where assembling takes five. The same document, because every commit
    that changes an event, or a source it cites, rewrites it in that transaction
    (`documents.before_change` assembles it where the stored one cannot be used)."""
    doc = documents.before_change(session, event_id)
    doc["links"] = {"outgoing": _outgoing(session, event_id)}
    return doc


def _live_event_row(session: Session, public_id: str) -> Any:
    row = session.execute(
        select(Event.id, Event.deleted_at, Event.version).where(Event.public_id == public_id)
    ).one_or_none()
    if row is None:
        raise NotFound(f"No event with id {public_id!r}.")
    if row.deleted_at is not None:
        raise Gone(f"Event {public_id!r} was deleted on {row.deleted_at.isoformat()}.")
    return row


def get_event(session: Session, public_id: str) -> tuple[dict[str, Any], int]:
    """One event with its links in both directions, and its version (the ETag)."""
    row = _live_event_row(session, public_id)
    doc = representation(session, row.id)
    doc["links"]["incoming"] = _incoming(session, row.id)
    return doc, row.version


def _incoming(session: Session, event_id: int) -> list[dict[str, Any]]:
    link = EventLink.__table__.c
    other = Event.__table__.c
    return _linked(
        session.execute(
            select(link.link_type, other.public_id, other.date, other.title)
            .join(Event, other.id == link.from_event_id)
            .where(link.to_event_id == event_id, other.deleted_at.is_(None))
            .order_by(other.date, other.public_id, link.link_type)
        )
    )


def _served(session: Session, written: Written) -> tuple[dict[str, Any], int]:
    """`get_event` of an event this request has just written, from what its revision recorded
    (assembled after the write, as `get_event` would assemble it again): the same document."""
    # The revision stored its own copy (`revision_service.json_safe`): this one is the answer's.
    doc = written.representation
    doc["links"]["incoming"] = _incoming(session, written.event.id)
    return doc, written.event.version


def recorded_at(session: Session, public_id: str) -> dt.datetime | None:
    """When the event's current version was recorded: the instant a permalink pins."""
    latest = revision_service.known_at(session, "event", public_id, utcnow())
    return latest.at if latest is not None else None


def get_as_known_at(session: Session, public_id: str, at: dt.datetime) -> dict[str, Any]:
    """The event exactly as the API served it at `at`, from its revisions."""
    revision = revision_service.known_at(session, "event", public_id, at)
    if revision is None:
        raise NotFound(f"Event {public_id!r} did not exist at {at.isoformat()}.")
    if revision.after is None:
        raise Gone(f"Event {public_id!r} had been deleted by {at.isoformat()}.")
    doc: dict[str, Any] = dict(revision.after)
    incoming = [
        {"type": link["type"], "event": {k: other[k] for k in ("id", "date", "title", "url")}}
        for other in revision_service.snapshot(session, "event", at).values()
        for link in other["links"]["outgoing"]
        if link["event"]["id"] == public_id
    ]
    doc["links"] = {
        "outgoing": doc["links"]["outgoing"],
        "incoming": sorted(incoming, key=lambda x: (x["event"]["date"], x["event"]["id"])),
    }
    return doc


# --- writes --------------------------------------------------------------------------------


def record_change(
    session: Session, event: Event, outcome: Outcome, before: dict[str, Any] | None, actor: str
) -> dict[str, Any]:
    """Record the event's revision; returns the representation it recorded."""
    after = representation(session, event.id)
    revision_service.record(
        session,
        resource="event",
        key=event.public_id,
        version=event.version,
        operation="create" if outcome is Outcome.created else "update",
        actor=actor,
        before=before,
        after=after,
    )
    return after


def _load_event_for_update(session: Session, public_id: str, expected: int | None) -> Event:
    """The live event, locked against concurrent writers, at the version the client read."""
    event = session.scalars(_EVENT_GRAPH_FOR_UPDATE, {"public_id": public_id}).one_or_none()
    if event is None:
        raise NotFound(f"No event with id {public_id!r}.")
    if event.deleted_at is not None:
        raise Gone(f"Event {public_id!r} was deleted on {event.deleted_at.isoformat()}.")
    if expected is not None and event.version != expected:
        raise PreconditionFailed(
            f"Event {public_id!r} is at version {event.version}, not {expected}: someone changed"
            " it since you read it. Fetch it again and reapply your change."
        )
    return event


def create(session: Session, data: EventCreate, actor: str) -> tuple[dict[str, Any], int]:
    existing = session.execute(
        select(Event.deleted_at).where(Event.public_id == data.id)
    ).one_or_none()
    if existing is not None:
        what = "was deleted; ids are never reused" if existing.deleted_at else "already exists"
        raise Conflict(f"An event with id {data.id!r} {what}.")
    _, written = _upsert(session, None, data, Refs(session), actor)
    assert written is not None  # noqa: S101 - a new event is always written and recorded
    return _served(session, written)


def update(
    session: Session, public_id: str, patch: dict[str, Any], expected: int | None, actor: str
) -> tuple[dict[str, Any], int]:
    """Apply a JSON merge patch to the event's input form, validate it whole, and write it."""
    event = _load_event_for_update(session, public_id, expected)
    data = EventCreate.model_validate(
        patched(as_input(event), patch, fixed=("id",), what="an event")
    )
    _, written = _upsert(session, event, data, Refs(session), actor)
    if written is None:  # nothing changed
        return get_event(session, public_id)
    return _served(session, written)


def delete(session: Session, public_id: str, expected: int | None, actor: str) -> None:
    """Soft delete: the event leaves the timeline, answers 410, and stays in its revisions."""
    event = _load_event_for_update(session, public_id, expected)
    before = prior_representation(session, event.id)
    revision_service.soft_delete(
        session, event, resource="event", key=public_id, before=before, actor=actor
    )


def revisions(session: Session, public_id: str) -> list[dict[str, Any]]:
    found = revision_service.history(session, "event", public_id)
    if not found and session.scalar(select(Event.id).where(Event.public_id == public_id)) is None:
        raise NotFound(f"No event with id {public_id!r}.")
    return found

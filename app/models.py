"""Every table of the service, in one module: relationships cross domains and Alembic needs
the whole metadata anyway."""

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, utcnow
from app.vocabulary import (
    Confidence,
    DatePrecision,
    EventKind,
    LinkType,
    LocationPrecision,
    MembershipEnd,
    MembershipStatus,
    OrganisationKind,
    ParticipantRole,
)


def one_of(column: str, enum: type[StrEnum], name: str | None = None) -> CheckConstraint:
    """A named CHECK for an enumerated string column.

    Plain strings plus CHECK avoid PostgreSQL enum types, whose changes need hand-written
    migrations, while still refusing bad values at the database.
    """
    values = ", ".join(f"'{member.value}'" for member in enum)
    return CheckConstraint(f"{column} IN ({values})", name=name or column)


def exactly_one(*columns: str) -> str:
    return " + ".join(f"(CASE WHEN {c} IS NOT NULL THEN 1 ELSE 0 END)" for c in columns) + " = 1"


class Timestamps:
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class State(Timestamps, Base):
    __tablename__ = "state"
    __table_args__ = (
        CheckConstraint("length(code) = 3", name="code_length"),
        CheckConstraint("length(alpha2) = 2", name="alpha2_length"),
        CheckConstraint("capital_lat BETWEEN -90 AND 90", name="capital_lat_range"),
        CheckConstraint("capital_lon BETWEEN -180 AND 180", name="capital_lon_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(3), unique=True)
    alpha2: Mapped[str] = mapped_column(String(2), unique=True)
    numeric: Mapped[str | None] = mapped_column(String(3))
    name: Mapped[str] = mapped_column(String(200))
    official_name: Mapped[str | None] = mapped_column(String(300))
    capital: Mapped[str | None] = mapped_column(String(200))
    capital_lat: Mapped[float | None] = mapped_column(Float)
    capital_lon: Mapped[float | None] = mapped_column(Float)
    wikidata_qid: Mapped[str | None] = mapped_column(String(20))
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012

    aliases: Mapped[list["StateAlias"]] = relationship(
        cascade="all, delete-orphan", lazy="raise", order_by="StateAlias.alias"
    )


class StateAlias(Base):
    __tablename__ = "state_alias"
    __table_args__ = (UniqueConstraint("state_id", "alias"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    state_id: Mapped[int] = mapped_column(ForeignKey("state.id", ondelete="CASCADE"))
    alias: Mapped[str] = mapped_column(String(200))
    # Case- and accent-folded copy, so "algerie" finds "Algérie" the same way on both databases.
    folded: Mapped[str] = mapped_column(String(200), index=True)


organisation_source = Table(
    "organisation_source",
    Base.metadata,
    Column("organisation_id", ForeignKey("organisation.id", ondelete="CASCADE"), primary_key=True),
    Column("source_id", ForeignKey("source.id", ondelete="RESTRICT"), primary_key=True),
)


class Organisation(Timestamps, Base):
    __tablename__ = "organisation"
    __table_args__ = (
        one_of("kind", OrganisationKind),
        one_of("founded_precision", DatePrecision),
        one_of("dissolved_precision", DatePrecision),
        CheckConstraint(
            "(founded_on IS NULL) = (founded_precision IS NULL)", name="founded_precision_set"
        ),
        CheckConstraint(
            "(dissolved_on IS NULL) = (dissolved_precision IS NULL)",
            name="dissolved_precision_set",
        ),
        CheckConstraint("dissolved_on >= founded_on", name="valid_lifetime"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(40))
    headquarters: Mapped[str | None] = mapped_column(String(200))
    wikidata_qid: Mapped[str | None] = mapped_column(String(20))
    description: Mapped[str | None] = mapped_column(Text)
    founded_on: Mapped[dt.date | None] = mapped_column(Date)
    founded_precision: Mapped[str | None] = mapped_column(String(5))
    dissolved_on: Mapped[dt.date | None] = mapped_column(Date)
    dissolved_precision: Mapped[str | None] = mapped_column(String(5))
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012

    names: Mapped[list["OrganisationName"]] = relationship(
        cascade="all, delete-orphan", lazy="raise", order_by="OrganisationName.position"
    )
    aliases: Mapped[list["OrganisationAlias"]] = relationship(
        cascade="all, delete-orphan", lazy="raise", order_by="OrganisationAlias.alias"
    )
    sources: Mapped[list["Source"]] = relationship(
        secondary=organisation_source, lazy="raise", order_by="Source.id"
    )


class OrganisationName(Base):
    """A name the organisation bore over a period; `valid_to` is exclusive."""

    __tablename__ = "organisation_name"
    __table_args__ = (
        UniqueConstraint("organisation_id", "name"),
        one_of("valid_from_precision", DatePrecision),
        one_of("valid_to_precision", DatePrecision),
        CheckConstraint("valid_to >= valid_from", name="valid_period"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(300))
    valid_from: Mapped[dt.date | None] = mapped_column(Date)
    valid_from_precision: Mapped[str | None] = mapped_column(String(5))
    valid_to: Mapped[dt.date | None] = mapped_column(Date)
    valid_to_precision: Mapped[str | None] = mapped_column(String(5))


class OrganisationAlias(Base):
    __tablename__ = "organisation_alias"
    __table_args__ = (UniqueConstraint("organisation_id", "alias"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="CASCADE"))
    alias: Mapped[str] = mapped_column(String(300))
    folded: Mapped[str] = mapped_column(String(300), index=True)


class Source(Timestamps, Base):
    __tablename__ = "source"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000), unique=True)
    publisher: Mapped[str] = mapped_column(String(300))
    title: Mapped[str | None] = mapped_column(String(500))
    published_on: Mapped[dt.date | None] = mapped_column(Date)
    language: Mapped[str | None] = mapped_column(String(8))
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


membership_source = Table(
    "membership_source",
    Base.metadata,
    Column("membership_id", ForeignKey("membership.id", ondelete="CASCADE"), primary_key=True),
    Column("source_id", ForeignKey("source.id", ondelete="RESTRICT"), primary_key=True),
)


class Membership(Timestamps, Base):
    """A period in which a state held one status in an organisation.

    `end_on` is exclusive. `end_kind` separates "still ongoing" (open) from "it ended, the data
    does not say when" (unknown), which a nullable date alone cannot express.
    """

    __tablename__ = "membership"
    __table_args__ = (
        UniqueConstraint("organisation_id", "state_id", "status", "start_on"),
        one_of("status", MembershipStatus),
        one_of("start_precision", DatePrecision),
        one_of("end_precision", DatePrecision),
        one_of("end_kind", MembershipEnd),
        CheckConstraint("(end_on IS NOT NULL) = (end_kind = 'dated')", name="end_kind_matches"),
        CheckConstraint("(end_on IS NULL) = (end_precision IS NULL)", name="end_precision_set"),
        CheckConstraint("end_on >= start_on", name="valid_period"),
        Index("ix_membership_state_period", "state_id", "start_on"),
        Index("ix_membership_organisation_period", "organisation_id", "start_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="CASCADE"))
    state_id: Mapped[int] = mapped_column(ForeignKey("state.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(20))
    start_on: Mapped[dt.date] = mapped_column(Date)
    start_precision: Mapped[str] = mapped_column(String(5))
    end_on: Mapped[dt.date | None] = mapped_column(Date)
    end_precision: Mapped[str | None] = mapped_column(String(5))
    end_kind: Mapped[str] = mapped_column(String(10))
    note: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012

    organisation: Mapped[Organisation] = relationship(lazy="raise")
    state: Mapped[State] = relationship(lazy="raise")
    sources: Mapped[list[Source]] = relationship(
        secondary=membership_source, lazy="raise", order_by="Source.id"
    )


class Place(Timestamps, Base):
    """A named place; its aliases make every spelling of, say, Tinzaouaten searchable."""

    __tablename__ = "place"
    __table_args__ = (
        CheckConstraint("lat BETWEEN -90 AND 90", name="lat_range"),
        CheckConstraint("lon BETWEEN -180 AND 180", name="lon_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    state_id: Mapped[int | None] = mapped_column(ForeignKey("state.id", ondelete="SET NULL"))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)

    state: Mapped[State | None] = relationship(lazy="raise")
    aliases: Mapped[list["PlaceAlias"]] = relationship(
        cascade="all, delete-orphan", lazy="raise", order_by="PlaceAlias.alias"
    )


class PlaceAlias(Base):
    __tablename__ = "place_alias"
    __table_args__ = (UniqueConstraint("place_id", "alias"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    place_id: Mapped[int] = mapped_column(ForeignKey("place.id", ondelete="CASCADE"))
    alias: Mapped[str] = mapped_column(String(200))
    folded: Mapped[str] = mapped_column(String(200), index=True)


class Event(Timestamps, Base):
    """A timeline entry. Diplomatic actions and incidents share this table (single-table
    inheritance) so that the timeline is one indexed range scan, not a UNION."""

    __tablename__ = "event"
    __table_args__ = (
        one_of("kind", EventKind),
        one_of("date_precision", DatePrecision),
        one_of("location_precision", LocationPrecision),
        one_of("confidence", Confidence),
        CheckConstraint("end_date >= date", name="valid_period"),
        CheckConstraint("lat BETWEEN -90 AND 90", name="lat_range"),
        CheckConstraint("lon BETWEEN -180 AND 180", name="lon_range"),
        CheckConstraint("(lat IS NULL) = (lon IS NULL)", name="lat_lon_together"),
        CheckConstraint("casualties_killed >= 0", name="killed_not_negative"),
        CheckConstraint("casualties_wounded >= 0", name="wounded_not_negative"),
        Index("ix_event_timeline", "date", "public_id"),
        Index("ix_event_category_timeline", "category", "date", "public_id"),
        Index("ix_event_kind_timeline", "kind", "date", "public_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    category: Mapped[str] = mapped_column(String(60))
    date: Mapped[dt.date] = mapped_column(Date)
    date_precision: Mapped[str] = mapped_column(String(5))
    end_date: Mapped[dt.date | None] = mapped_column(Date)
    title: Mapped[str] = mapped_column(String(300))
    summary: Mapped[str] = mapped_column(Text)
    place_id: Mapped[int | None] = mapped_column(
        ForeignKey("place.id", ondelete="SET NULL"), index=True
    )
    place_name: Mapped[str | None] = mapped_column(String(300))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    location_precision: Mapped[str | None] = mapped_column(String(10))
    location_state_id: Mapped[int | None] = mapped_column(
        ForeignKey("state.id", ondelete="SET NULL")
    )
    cameo_code: Mapped[str | None] = mapped_column(String(8))
    goldstein: Mapped[float | None] = mapped_column(Float)
    confidence: Mapped[str | None] = mapped_column(String(10))
    fact_ref: Mapped[str | None] = mapped_column(String(20))
    # Casualties only make sense for incidents; the columns live on the shared table because
    # that is what single-table inheritance means, and the incident model is their only writer.
    casualties_killed: Mapped[int | None] = mapped_column(Integer)
    casualties_wounded: Mapped[int | None] = mapped_column(Integer)
    casualties_note: Mapped[str | None] = mapped_column(Text)
    # Folded title, summary, place names and aliases, claims: what `q` searches.
    search_text: Mapped[str] = mapped_column(Text, default="")
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Bumped by every write; the ETag. SQLAlchemy adds `WHERE version = :seen` to each UPDATE,
    # so of two writers holding the same ETag exactly one succeeds.
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))

    # SQLAlchemy reads the mapper arguments as a plain class attribute.
    __mapper_args__ = {"polymorphic_on": "kind", "version_id_col": version}  # noqa: RUF012

    participants: Mapped[list["Participant"]] = relationship(
        cascade="all, delete-orphan", lazy="raise", order_by="Participant.position"
    )
    state_pairs: Mapped[list["StatePair"]] = relationship(
        cascade="all, delete-orphan", lazy="raise"
    )
    tags: Mapped[list["EventTag"]] = relationship(
        cascade="all, delete-orphan", lazy="raise", order_by="EventTag.tag"
    )
    source_links: Mapped[list["EventSource"]] = relationship(
        cascade="all, delete-orphan", lazy="raise", order_by="EventSource.position"
    )
    claims: Mapped[list["Claim"]] = relationship(
        cascade="all, delete-orphan", lazy="raise", order_by="Claim.position"
    )
    links: Mapped[list["EventLink"]] = relationship(
        cascade="all, delete-orphan",
        lazy="raise",
        foreign_keys="EventLink.from_event_id",
        order_by="EventLink.id",
    )
    place: Mapped[Place | None] = relationship(lazy="raise")
    location_state: Mapped[State | None] = relationship(lazy="raise")


class DiplomaticAction(Event):
    """Recalls, summons, complaints, withdrawals, airspace closures, statements, …"""

    __mapper_args__ = {"polymorphic_identity": "diplomatic_action"}  # noqa: RUF012


class Incident(Event):
    """Coups, battles, strikes, shoot-downs, claimed airspace violations, protests, …"""

    __mapper_args__ = {"polymorphic_identity": "incident"}  # noqa: RUF012


class EventDocument(Base):
    """The event's public document, serialised as it is served, kept in step at every commit
    that changes the event or a source it cites (app/events/documents.py).

    Derived data, never edited: a page of 50 is then one indexed read of 50 blobs instead of the
    assembly of participants, tags, sources and claims from six tables, which cost most of a
    page's time (bench/README.md). A row whose `format` is not the code's current one is ignored and
    the document is assembled afresh, so a change of the document's shape cannot serve stale
    JSON; `python -m app.events.documents` rewrites them all.
    """

    __tablename__ = "event_document"

    event_id: Mapped[int] = mapped_column(
        ForeignKey("event.id", ondelete="CASCADE"), primary_key=True
    )
    format: Mapped[int] = mapped_column(Integer)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    # The event's line of a CSV export (app/timeline/formats.py), so a streamed export
    # copies lines instead of parsing and flattening each document.
    csv: Mapped[str] = mapped_column(Text)


class Participant(Base):
    """A state, organisation or named group taking part in an event, with its role.

    The event's date and public id are copied here (both never change for a given event row:
    ids are immutable and a date change rewrites the participants) so that "events involving
    state X, in timeline order" is one range scan of (state_id, date, public_id) that stops
    after a page, instead of reading and sorting every event of the state.
    """

    __tablename__ = "event_participant"
    __table_args__ = (
        one_of("role", ParticipantRole),
        CheckConstraint(exactly_one("state_id", "organisation_id", "group_name"), name="one_actor"),
        Index("ix_event_participant_state_timeline", "state_id", "date", "public_id", "event_id"),
        Index(
            "ix_event_participant_organisation_timeline",
            "organisation_id",
            "date",
            "public_id",
            "event_id",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    state_id: Mapped[int | None] = mapped_column(ForeignKey("state.id", ondelete="RESTRICT"))
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisation.id", ondelete="RESTRICT")
    )
    group_name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    date: Mapped[dt.date] = mapped_column(Date)
    public_id: Mapped[str] = mapped_column(String(120))

    state: Mapped[State | None] = relationship(lazy="raise")
    organisation: Mapped[Organisation | None] = relationship(lazy="raise")


class StatePair(Base):
    """Each pair of different states taking part in an event (in any roles), lower id first.

    Derived from the participants and replaced with them on every write. With the event's date
    and public id copied as on Participant, "events involving both X and Y, in timeline order"
    is one range scan of (state_a, state_b, date, public_id) that stops after a page. Read off
    one state's participations instead, a pair that shares few events walked most of the rarer
    state's history (bench/README.md).
    """

    __tablename__ = "event_state_pair"
    __table_args__ = (
        CheckConstraint("state_a < state_b", name="ordered"),
        Index(
            "ix_event_state_pair_timeline", "state_a", "state_b", "date", "public_id", "event_id"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"), index=True)
    state_a: Mapped[int] = mapped_column(ForeignKey("state.id", ondelete="RESTRICT"))
    state_b: Mapped[int] = mapped_column(ForeignKey("state.id", ondelete="RESTRICT"))
    date: Mapped[dt.date] = mapped_column(Date)
    public_id: Mapped[str] = mapped_column(String(120))


class FacetEvent(Base):
    """What each live event adds to the facet counts, as it was last counted: its date, kind,
    category and the states and organisations taking part (`actors`, space-separated keys:
    a state's id, an organisation's id negated).

    Derived data, kept by the write step (app/timeline/counts.py). A commit that changes an
    event subtracts what this row says the event added and adds what the event adds now, so
    the counts stay exact whatever changed (date, kind, category, participants, a soft delete,
    even a hard delete). No foreign key on purpose: the row must outlive a deleted event long
    enough to be subtracted.
    """

    __tablename__ = "facet_event"

    event_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    date: Mapped[dt.date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(20))
    category: Mapped[str] = mapped_column(String(60))
    actors: Mapped[str] = mapped_column(Text)


class FacetCount(Base):
    """Live events per (given actor, kind, category, period): the `total`, `kind`, `category`
    and `period` facets read as a sum of a few rows instead of a GROUP BY of the events.

    `given` is 0 for every event, or a state id (an organisation id negated) for the events
    that actor takes part in. `category` is '' for every category of the kind. `period` is 0
    for all time, the year (2024) or year and month (202407). Which combinations are kept is
    `app.timeline.counts.LEVELS`; the primary key is the index every read uses.
    """

    __tablename__ = "facet_count"
    __table_args__ = (
        CheckConstraint("n >= 0", name="not_negative"),
        # The primary key is the table: SQLite keeps no second copy of the rows in a rowid tree.
        {"sqlite_with_rowid": False},
    )

    given: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    category: Mapped[str] = mapped_column(String(60), primary_key=True)
    period: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    n: Mapped[int] = mapped_column(Integer)


class FacetActorCount(Base):
    """Live events per (given actor, kind, category, period, actor taking part): the `state`
    and `organisation` facets, keyed as FacetCount, `value` the counted actor (a state id, an
    organisation id negated). With a given actor these are the pairings that answer "which
    states take part in the events of state X" exactly."""

    __tablename__ = "facet_actor_count"
    __table_args__ = (
        CheckConstraint("n >= 0", name="not_negative"),
        {"sqlite_with_rowid": False},
    )

    given: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    category: Mapped[str] = mapped_column(String(60), primary_key=True)
    period: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    value: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    n: Mapped[int] = mapped_column(Integer)


class EventSource(Base):
    """An event's citation of a source; `position` keeps the curator's order (main source first)."""

    __tablename__ = "event_source"

    event_id: Mapped[int] = mapped_column(
        ForeignKey("event.id", ondelete="CASCADE"), primary_key=True
    )
    source_id: Mapped[int] = mapped_column(
        ForeignKey("source.id", ondelete="RESTRICT"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer)

    source: Mapped[Source] = relationship(lazy="raise")


class EventTag(Base):
    __tablename__ = "event_tag"
    __table_args__ = (Index("ix_event_tag_timeline", "tag", "date", "public_id", "event_id"),)

    event_id: Mapped[int] = mapped_column(
        ForeignKey("event.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(60), primary_key=True)
    # Copied from the event, like Participant.date and Participant.public_id, for the same reason.
    date: Mapped[dt.date] = mapped_column(Date)
    public_id: Mapped[str] = mapped_column(String(120))


claim_source = Table(
    "claim_source",
    Base.metadata,
    Column("claim_id", ForeignKey("claim.id", ondelete="CASCADE"), primary_key=True),
    Column("source_id", ForeignKey("source.id", ondelete="RESTRICT"), primary_key=True),
)


class Claim(Base):
    """One party's position on a contested fact. Opposing positions share a `topic` and are
    stored side by side; the service never picks a winner."""

    __tablename__ = "claim"
    __table_args__ = (
        CheckConstraint(
            exactly_one("claimant_state_id", "claimant_organisation_id", "claimant_group"),
            name="one_claimant",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    topic: Mapped[str] = mapped_column(String(80))
    claimant_state_id: Mapped[int | None] = mapped_column(
        ForeignKey("state.id", ondelete="RESTRICT")
    )
    claimant_organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisation.id", ondelete="RESTRICT")
    )
    claimant_group: Mapped[str | None] = mapped_column(String(200))
    statement: Mapped[str] = mapped_column(Text)
    value: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str | None] = mapped_column(String(40))
    made_on: Mapped[dt.date | None] = mapped_column(Date)

    claimant_state: Mapped[State | None] = relationship(lazy="raise")
    claimant_organisation: Mapped[Organisation | None] = relationship(lazy="raise")
    sources: Mapped[list[Source]] = relationship(
        secondary=claim_source, lazy="raise", order_by="Source.id"
    )


class EventLink(Base):
    """A typed, directed link: `from_event` <type> `to_event` (e.g. a recall in_response_to a
    shoot-down)."""

    __tablename__ = "event_link"
    __table_args__ = (
        UniqueConstraint("from_event_id", "to_event_id", "link_type"),
        one_of("link_type", LinkType),
        CheckConstraint("from_event_id <> to_event_id", name="not_self"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    from_event_id: Mapped[int] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"))
    to_event_id: Mapped[int] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"), index=True)
    link_type: Mapped[str] = mapped_column(String(20))

    to_event: Mapped[Event] = relationship(foreign_keys=[to_event_id], lazy="raise")


class ApiKey(Base):
    """An API key. Only a hash of the token is kept; the token is shown once, at creation."""

    __tablename__ = "api_key"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # First characters of the token, shown in listings so a key can be recognised.
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Revision(Base):
    """One create, update or delete of one resource, written in the transaction of the change.

    `id` orders the change feed. Writers run side by side on PostgreSQL, so ids need not commit
    in order; the feed serves ids only up to its horizon, below which every writer has ended
    (`app.db.feed_horizon`), so a feed reader that has seen id N never later finds a smaller id
    appear.
    """

    __tablename__ = "revision"
    __table_args__ = (
        CheckConstraint("operation IN ('create', 'update', 'delete')", name="operation"),
        Index("ix_revision_resource", "resource", "resource_key", "id"),
        Index("ix_revision_at", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resource: Mapped[str] = mapped_column(String(20))
    resource_key: Mapped[str] = mapped_column(String(120))
    version: Mapped[int] = mapped_column(Integer)
    operation: Mapped[str] = mapped_column(String(10))
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    before: Mapped[Any | None] = mapped_column(JSON)
    after: Mapped[Any | None] = mapped_column(JSON)


class IdempotencyRecord(Base):
    """The first response to a POST sent with an `Idempotency-Key`, replayed on retries."""

    __tablename__ = "idempotency_record"
    __table_args__ = (UniqueConstraint("api_key_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_key.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(500))
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    headers: Mapped[Any] = mapped_column(JSON)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookEndpoint(Base):
    """A subscriber's URL, the event types and timeline filter it wants, and its health.

    The signing secret is stored in plain text for now: HMAC needs the secret itself, so a hash
    would not do, and encrypting it at rest with an application key is the next step.
    """

    __tablename__ = "webhook_endpoint"
    __table_args__ = (
        CheckConstraint(
            "disabled_reason IN ('manual', 'failing', 'gone', 'revoked')", name="disabled_reason"
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner_key_id: Mapped[int] = mapped_column(
        ForeignKey("api_key.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str | None] = mapped_column(String(500))
    event_types: Mapped[list[str]] = mapped_column(JSON)
    filter: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    secret: Mapped[str] = mapped_column(String(100))
    # Secrets replaced by a rotation, still signed with until they expire:
    # [{"secret": "whsec_…", "expires_at": "2026-…Z"}].
    previous_secrets: Mapped[list[dict[str, str]]] = mapped_column(
        JSON, server_default=text("'[]'")
    )
    enabled: Mapped[bool] = mapped_column(server_default=text("true"))
    disabled_reason: Mapped[str | None] = mapped_column(String(10))
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    consecutive_failures: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    failing_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    warned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_failure_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class WebhookMessage(Base):
    """The outbox: one row per emitted event, its body serialised once and sent byte for byte.

    `id` is the `webhook-id` header, the same for every endpoint, attempt and redelivery.
    """

    __tablename__ = "webhook_message"
    __table_args__ = (Index("ix_webhook_message_resource", "resource", "resource_key"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    type: Mapped[str] = mapped_column(String(40))
    resource: Mapped[str | None] = mapped_column(String(20))
    resource_key: Mapped[str | None] = mapped_column(String(120))
    revision_id: Mapped[int | None] = mapped_column(Integer)
    # NULL once archived by the retention job.
    payload: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class WebhookDelivery(Base):
    """One message to one endpoint: the work queue the workers claim from."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("message_id", "endpoint_id"),
        CheckConstraint(
            "status IN ('pending', 'in_flight', 'succeeded', 'failed', 'skipped')", name="status"
        ),
        CheckConstraint("trigger IN ('scheduled', 'manual', 'recover', 'test')", name="trigger"),
        Index("ix_webhook_delivery_due", "status", "next_attempt_at"),
        Index("ix_webhook_delivery_endpoint", "endpoint_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_message.id", ondelete="CASCADE"), index=True
    )
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoint.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(10), server_default=text("'pending'"))
    trigger: Mapped[str] = mapped_column(String(10), server_default=text("'scheduled'"))
    # Every attempt ever made (fences a worker's write-back); `round_attempts` counts the
    # attempts since the last (re)queue and indexes the retry schedule.
    attempt_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    round_attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error_kind: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    message: Mapped[WebhookMessage] = relationship(lazy="raise")
    attempts: Mapped[list["WebhookAttempt"]] = relationship(
        lazy="raise", order_by="WebhookAttempt.id", passive_deletes=True
    )


class WebhookAttempt(Base):
    """The delivery log: one row per HTTP attempt, never changed afterwards."""

    __tablename__ = "webhook_attempt"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_delivery.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    trigger: Mapped[str] = mapped_column(String(10))
    worker: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    duration_ms: Mapped[int] = mapped_column(Integer)
    webhook_timestamp: Mapped[int] = mapped_column(Integer)
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_headers: Mapped[dict[str, str] | None] = mapped_column(JSON)
    # Bytes of the response body read (reading stops at WEBHOOK_MAX_RESPONSE_BYTES).
    response_bytes: Mapped[int | None] = mapped_column(Integer)
    # An excerpt, kept only from receivers at public addresses (app/webhooks/ssrf.py).
    response_body: Mapped[str | None] = mapped_column(Text)
    error_kind: Mapped[str | None] = mapped_column(String(20))
    error_message: Mapped[str | None] = mapped_column(String(500))
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    """One acknowledged write or admin action, inserted in the transaction of the change itself:
    a committed write always has its row and a rolled-back one never does (app/audit).

    Append-only. The key's name and scopes are copied, so the entry still says who acted after
    the key is revoked or renamed; refused and failed attempts go to the log, not here.
    """

    __tablename__ = "audit_entry"
    __table_args__ = (
        Index("ix_audit_entry_key", "key_id", "id"),
        Index("ix_audit_entry_action", "action", "id"),
        Index("ix_audit_entry_at", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    request_id: Mapped[str | None] = mapped_column(String(128))
    key_id: Mapped[int | None] = mapped_column(ForeignKey("api_key.id", ondelete="SET NULL"))
    key_name: Mapped[str] = mapped_column(String(100))
    scopes: Mapped[str] = mapped_column(String(200))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(500))
    # The operation: the route's name, e.g. `create_event`, `revoke_key`.
    action: Mapped[str] = mapped_column(String(100))
    # What it changed: `event/<id>`, `key/<id>`, … or the path parameters (`key_id=3`).
    target: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[int] = mapped_column(Integer)
    client_ip: Mapped[str | None] = mapped_column(String(45))

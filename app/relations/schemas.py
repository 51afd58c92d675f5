"""Read models of derived relations, memberships over time and event threads.

The services return plain dicts; these models document their shape in OpenAPI, validate the
responses, and are checked against real responses in the tests.
"""

import datetime as dt
from enum import StrEnum
from typing import Literal

from pydantic import Field

from app.events.schemas import EventRead
from app.organisations.schemas import MembershipRead
from app.schemas import ReadModel
from app.vocabulary import DatePrecision, EventKind, LinkType, MembershipEnd


class Representation(StrEnum):
    in_post = "in_post"
    recalled = "recalled"
    expelled = "expelled"
    charge_d_affaires = "charge_d_affaires"
    severed = "severed"
    unknown = "unknown"


class Airspace(StrEnum):
    open = "open"
    closed = "closed"
    unknown = "unknown"


class Relations(StrEnum):
    normal = "normal"
    downgraded = "downgraded"
    severed = "severed"
    unknown = "unknown"


class MembershipStanding(StrEnum):
    founding_member = "founding_member"
    member = "member"
    suspended = "suspended"
    left = "left"


class StateRef(ReadModel):
    code: str = Field(examples=["MLI"])
    name: str = Field(examples=["Mali"])
    url: str = Field(examples=["/v1/states/MLI"])


class EventRef(ReadModel):
    """The event behind a change of status."""

    id: str = Field(examples=["2025-04-06-aes-recall-ambassadors-from-algiers"])
    date: dt.date
    date_precision: DatePrecision
    category: str = Field(examples=["ambassador_recall"])
    title: str
    url: str


class EventSummary(EventRef):
    kind: EventKind
    cameo_code: str | None = Field(examples=["161"])
    goldstein: float | None = Field(examples=[-4.0])


class StatusAsOf(ReadModel):
    since: dt.date | None = Field(
        description="The day the status began; null when no recorded event set it."
    )
    since_precision: DatePrecision | None
    set_by: EventRef | None = Field(description="The event that set the status.")
    note: str | None = Field(description="Why the status is what it is, where not obvious.")


class RepresentationAsOf(StatusAsOf):
    """The ambassador of `sending_state` in `receiving_state`."""

    sending_state: str = Field(examples=["MLI"])
    receiving_state: str = Field(examples=["DZA"])
    status: Representation


class AirspaceAsOf(StatusAsOf):
    """Whether `airspace_of` lets aircraft of `aircraft_of` through its airspace."""

    airspace_of: str = Field(examples=["DZA"])
    aircraft_of: str = Field(examples=["MLI"])
    status: Airspace


class RelationsAsOf(StatusAsOf):
    status: Relations


class OrganisationStanding(ReadModel):
    state: str = Field(examples=["MLI"])
    status: MembershipStanding
    certain: bool = Field(
        description="False when the standing rests on a record whose end the sources do not give."
    )
    since: dt.date
    since_precision: DatePrecision


class SharedOrganisation(ReadModel):
    organisation: str = Field(examples=["AU"])
    name: str = Field(description="The organisation's name on `as_of`.")
    states: list[OrganisationStanding]


class FormerlySharedOrganisation(ReadModel):
    organisation: str = Field(examples=["CEMOC"])
    name: str
    left: list[OrganisationStanding] = Field(
        description="Which of the two had left by `as_of`, and since when."
    )
    states: list[OrganisationStanding]


class Tension(ReadModel):
    """`goldstein_sum = Σ goldstein(e)` over the events of both states dated
    `as_of - window_days < e.date <= as_of`. Negative means hostile."""

    goldstein_sum: float = Field(examples=[-40.0])
    window_days: int = Field(examples=[90])
    window_start: dt.date = Field(description="First day counted.")
    window_end: dt.date = Field(description="Last day counted (`as_of`).")
    events: int = Field(description="Events with a Goldstein score in the window.")
    unscored: int = Field(description="Events in the window with no CAMEO code, so no score.")
    formula: str


class RelationsRead(ReadModel):
    a: StateRef
    b: StateRef
    as_of: dt.date
    representation: list[RepresentationAsOf] = Field(
        description="Two entries: a's ambassador in b, then b's ambassador in a."
    )
    airspace: list[AirspaceAsOf] = Field(
        description="Two entries: a's airspace for b's aircraft, then b's for a's."
    )
    relations: RelationsAsOf
    shared_organisations: list[SharedOrganisation] = Field(
        description="Organisations both states belonged to on `as_of` (suspended or not)."
    )
    formerly_shared_organisations: list[FormerlySharedOrganisation] = Field(
        description="Organisations they belonged to together before `as_of` but not on it."
    )
    latest_events: list[EventSummary] = Field(
        description="Events of both states up to `as_of`, newest first."
    )
    tension: Tension
    history_url: str = Field(examples=["/v1/relations/MLI/DZA/history"])


class Period(ReadModel):
    """One status from `start_on` up to, not including, `end_on` (null: still in force)."""

    status: str
    start_on: dt.date | None = Field(
        description="The first day; the first period starts on `data_start`."
    )
    start_precision: DatePrecision | None
    end_on: dt.date | None = Field(description="Exclusive end; null while the status holds.")
    end_precision: DatePrecision | None
    opened_by: EventRef | None = Field(description="Null for the status before any event.")
    closed_by: EventRef | None
    note: str | None


class RepresentationPeriod(Period):
    status: Representation


class AirspacePeriod(Period):
    status: Airspace


class RelationsPeriod(Period):
    status: Relations


class RepresentationHistory(ReadModel):
    sending_state: str
    receiving_state: str
    periods: list[RepresentationPeriod]


class AirspaceHistory(ReadModel):
    airspace_of: str
    aircraft_of: str
    periods: list[AirspacePeriod]


class RelationsHistory(ReadModel):
    a: StateRef
    b: StateRef
    data_start: dt.date | None = Field(description="The date of the earliest event in the data.")
    representation: list[RepresentationHistory]
    airspace: list[AirspaceHistory]
    relations: list[RelationsPeriod]
    events: list[EventSummary] = Field(description="Every event of both states, oldest first.")


class StandingPeriod(ReadModel):
    """A state's standing in an organisation over a period; periods never overlap."""

    status: MembershipStanding = Field(
        description="founding_member or member, suspended, or left (after the membership ended)."
    )
    certain: bool = Field(
        description="False when the standing rests on a record whose end the sources do not give:"
        " it held from `start_on` and may have ended at any time before `end_on`."
    )
    start_on: dt.date
    start_precision: DatePrecision
    end_on: dt.date | None = Field(description="Exclusive end: the next period's start.")
    end_precision: DatePrecision | None
    end: MembershipEnd = Field(
        description="dated; open (still holds); unknown (may have ended, the sources do not say)."
    )
    basis: list[MembershipRead] = Field(description="The membership records behind the period.")


class StateStanding(ReadModel):
    state: str = Field(examples=["MLI"])
    state_name: str
    periods: list[StandingPeriod]


class MembershipHistory(ReadModel):
    organisation: str = Field(examples=["CEMOC"])
    name: str
    states: list[StateStanding]


class StateMembershipAsOf(ReadModel):
    organisation: str = Field(examples=["AES"])
    organisation_name: str = Field(description="The organisation's name on `as_of`.")
    status: MembershipStanding
    certain: bool
    since: dt.date
    since_precision: DatePrecision
    until: dt.date | None = Field(description="Exclusive end of this standing, if it ended.")
    until_precision: DatePrecision | None
    end: MembershipEnd
    basis: list[MembershipRead]


class StateMemberships(ReadModel):
    state: str = Field(examples=["MLI"])
    state_name: str
    as_of: dt.date
    memberships: list[StateMembershipAsOf] = Field(
        description="Every organisation the state was in, or had left, on `as_of`."
    )


class ThreadPosition(ReadModel):
    position: Literal["upstream", "self", "downstream"] = Field(
        description="upstream: the event answers it, directly or not; downstream: it answers the"
        " event."
    )
    depth: int = Field(description="Links between this event and the requested one.")


class ThreadItem(EventRead):
    thread: ThreadPosition


class ThreadLink(ReadModel):
    from_: str = Field(alias="from", description="This event …")
    type: LinkType = Field(description="… is <type> …")
    to: str = Field(description="… that event.")


class Thread(ReadModel):
    event: str = Field(examples=["2025-04-01-algeria-shoots-down-malian-drone"])
    items: list[ThreadItem] = Field(description="The thread's events in date order.")
    links: list[ThreadLink]

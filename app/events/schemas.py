import calendar
import datetime as dt
from typing import Annotated, Self

from pydantic import Field, StringConstraints, ValidationInfo, field_validator, model_validator

from app.schemas import (
    SLUG,
    SLUG_ADVICE,
    Count,
    InputModel,
    Latitude,
    Longitude,
    Name,
    OrganisationCode,
    ReadModel,
    Shape,
    Slug,
    StateCode,
    Text,
    check_precision,
)
from app.sources.schemas import SourceIn, SourceRead
from app.vocabulary import (
    CAMEO,
    CATEGORIES,
    Confidence,
    DatePrecision,
    EventKind,
    LinkType,
    LocationPrecision,
    ParticipantRole,
)

Tag = Annotated[
    str,
    StringConstraints(max_length=60),
    Shape(SLUG, "{value} is not a tag: " + SLUG_ADVICE + ", such as april-2025-crisis"),
]
GroupName = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class ActorRef(InputModel):
    """Exactly one of a state, an organisation or a named non-state group."""

    state: StateCode | None = None
    organisation: OrganisationCode | None = None
    group: GroupName | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if sum(x is not None for x in (self.state, self.organisation, self.group)) != 1:
            raise ValueError("give exactly one of state, organisation or group")
        return self


class ParticipantIn(ActorRef):
    role: ParticipantRole


class LocationIn(InputModel):
    name: Name = Field(examples=["Tinzaouaten / Tin Zaouatine border area"])
    place: Slug | None = Field(
        default=None, description="Code of a known place, whose aliases become searchable."
    )
    lat: Latitude | None = None
    lon: Longitude | None = None
    precision: LocationPrecision | None = None
    country: StateCode | None = None

    @model_validator(mode="after")
    def _coordinates(self) -> Self:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon go together")
        if self.lat is not None and self.precision is None:
            raise ValueError("coordinates need a precision (point, locality, region or country)")
        return self


class CasualtiesIn(InputModel):
    killed: Count | None = None
    wounded: Count | None = None
    note: Text | None = None


class ClaimIn(InputModel):
    """One party's position on a contested fact, with the source that reports it."""

    topic: Slug = Field(examples=["drone-position"])
    claimant: ActorRef
    statement: Text
    value: float | None = None
    unit: Annotated[str, StringConstraints(min_length=1, max_length=40)] | None = None
    made_on: dt.date | None = None
    source: SourceIn

    @field_validator("topic", mode="before")
    @classmethod
    def _topic_slug(cls, value: object) -> object:
        # Seed curators write topics as snake_case; one public spelling keeps them groupable.
        return value.replace("_", "-") if isinstance(value, str) else value

    @model_validator(mode="after")
    def _unit_needs_value(self) -> Self:
        if self.unit is not None and self.value is None:
            raise ValueError("unit is given without a value")
        return self


class LinkIn(InputModel):
    type: LinkType
    event: Slug = Field(description="Id of the linked event.")


def _ends_in_the_calendar(value: dt.date, precision: DatePrecision, field: str) -> None:
    """Exports give an event the day after its period (iCalendar's exclusive DTEND): a period
    whose last day is 9999-12-31 has none, and an export holding it would fail."""
    if precision is DatePrecision.day:
        last = value
    elif precision is DatePrecision.month:
        last = value.replace(day=calendar.monthrange(value.year, value.month)[1])
    else:
        last = value.replace(month=12, day=31)
    if last >= dt.date.max:
        raise ValueError(
            f"{field} is out of range: the last day an event can cover is 9999-12-30 (exports"
            " give each event the day after it, and 9999-12-31 has none)"
        )


class EventCreate(InputModel):
    id: Slug = Field(
        description="Stable public id: a readable slug that starts with the event's date.",
        examples=["2025-04-01-algeria-shoots-down-malian-drone"],
    )
    fact_ref: (
        Annotated[
            str,
            Shape(
                r"^[A-Z]{2}-[0-9]{3}$",
                "{value} is not a fact-base reference: use two capitals, a hyphen and three"
                " digits, such as EV-001",
            ),
        ]
        | None
    ) = None
    kind: EventKind
    category: str = Field(description="A slug from `GET /v1/categories`.", examples=["shoot_down"])
    date: dt.date
    date_precision: DatePrecision
    end_date: dt.date | None = None
    title: Name
    summary: Text
    participants: list[ParticipantIn] = Field(min_length=1, max_length=100)
    location: LocationIn | None = None
    cameo_code: str | None = Field(default=None, examples=["190"])
    casualties: CasualtiesIn | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    confidence: Confidence | None = None
    sources: list[SourceIn] = Field(min_length=1, max_length=50)
    claims: list[ClaimIn] = Field(default_factory=list, max_length=100)
    links: list[LinkIn] = Field(default_factory=list, max_length=100)

    unordered = ("tags", "links")

    # Field validators (rather than one model validator) so each error names its field.

    @field_validator("category")
    @classmethod
    def _category(cls, value: str, info: ValidationInfo) -> str:
        category = CATEGORIES.get(value)
        if category is None:
            raise ValueError(f"unknown category {value!r}; see GET /v1/categories")
        kind = info.data.get("kind")
        if kind is not None and category.kind is not kind:
            raise ValueError(f"category {value!r} belongs to kind {category.kind.value!r}")
        return value

    @field_validator("date_precision")
    @classmethod
    def _precision(cls, value: DatePrecision, info: ValidationInfo) -> DatePrecision:
        if "date" in info.data:
            check_precision(info.data["date"], value, "date")
            _ends_in_the_calendar(info.data["date"], value, "date")
        return value

    @field_validator("end_date")
    @classmethod
    def _end(cls, value: dt.date | None, info: ValidationInfo) -> dt.date | None:
        start = info.data.get("date")
        if value is not None and start is not None and value < start:
            raise ValueError("end_date is before date")
        if value is not None:
            _ends_in_the_calendar(value, DatePrecision.day, "end_date")
        return value

    @field_validator("participants")
    @classmethod
    def _participants(cls, value: list[ParticipantIn]) -> list[ParticipantIn]:
        if not any(p.state or p.organisation for p in value):
            raise ValueError("at least one participant must be a state or an organisation")
        if len({(p.state, p.organisation, p.group, p.role) for p in value}) != len(value):
            raise ValueError("a participant is listed twice with the same role")
        return value

    @field_validator("cameo_code")
    @classmethod
    def _cameo(cls, value: str | None) -> str | None:
        if value is not None and value not in CAMEO:
            raise ValueError(f"unknown CAMEO code {value!r}; see GET /v1/categories")
        return value

    @field_validator("casualties")
    @classmethod
    def _casualties(cls, value: CasualtiesIn | None, info: ValidationInfo) -> CasualtiesIn | None:
        if value is not None and info.data.get("kind") is not EventKind.incident:
            raise ValueError("casualties are recorded on incidents only")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a tag is listed twice")
        return value

    @field_validator("sources")
    @classmethod
    def _sources(cls, value: list[SourceIn]) -> list[SourceIn]:
        if len({s.url for s in value}) != len(value):
            raise ValueError("a source is listed twice")
        return value

    @field_validator("links")
    @classmethod
    def _links(cls, value: list[LinkIn], info: ValidationInfo) -> list[LinkIn]:
        if len({(link.event, link.type) for link in value}) != len(value):
            raise ValueError("a link is listed twice")
        if any(link.event == info.data.get("id") for link in value):
            raise ValueError("an event cannot link to itself")
        return value


# Read models. The hot read paths return pre-serialised JSON; these models document its shape
# in OpenAPI and are checked against real responses in the tests.


class ParticipantRead(ReadModel):
    """Exactly one of `state`, `organisation` or `group` is present."""

    state: str | None = Field(default=None, examples=["DZA"])
    organisation: str | None = Field(default=None, examples=["AES"])
    group: str | None = Field(default=None, examples=["Azawad Liberation Front (FLA)"])
    role: ParticipantRole


class ClaimantRead(ReadModel):
    state: str | None = None
    organisation: str | None = None
    group: str | None = None


class ClaimRead(ReadModel):
    topic: str = Field(examples=["drone-position"])
    claimant: ClaimantRead
    statement: str
    value: float | None = Field(examples=[2.0])
    unit: str | None = Field(examples=["km_inside_algeria"])
    made_on: dt.date | None
    sources: list[SourceRead]


class LocationRead(ReadModel):
    name: str
    place: str | None
    lat: float | None
    lon: float | None
    precision: LocationPrecision | None
    country: str | None


class CasualtiesRead(ReadModel):
    killed: int | None
    wounded: int | None
    note: str | None


class SnippetPart(ReadModel):
    """A run of a relevance snippet's plain text."""

    text: str = Field(description="Plain text, never HTML: draw it as text, not as markup.")
    match: bool = Field(description="The run is a word the query matched: highlight it.")


class EventRead(ReadModel):
    id: str = Field(examples=["2025-04-01-algeria-shoots-down-malian-drone"])
    kind: EventKind
    category: str = Field(examples=["shoot_down"])
    date: dt.date = Field(examples=["2025-04-01"])
    date_precision: DatePrecision
    end_date: dt.date | None
    title: str
    summary: str
    participants: list[ParticipantRead]
    location: LocationRead | None
    cameo_code: str | None = Field(examples=["190"])
    goldstein: float | None = Field(
        description="Goldstein score of the CAMEO code, from -10 (conflict) to +10.",
        examples=[-10.0],
    )
    casualties: CasualtiesRead | None
    tags: list[str]
    confidence: Confidence | None
    fact_ref: str | None
    sources: list[SourceRead]
    claims: list[ClaimRead]
    created_at: dt.datetime
    updated_at: dt.datetime
    url: str = Field(examples=["/v1/events/2025-04-01-algeria-shoots-down-malian-drone"])
    snippet: list[SnippetPart] | None = Field(
        default=None,
        description="With `order=relevance`: the title and summary around the first matching"
        " word, as runs of plain text in order; joined, they are the passage, and runs with"
        " `match` true are the matched words. Draw each run as text (a highlight element for the"
        " matches); nothing in it is HTML or escaped.",
        # The first item of `?q=drone&order=relevance` on the seed.
        examples=[
            [
                {"text": "Second alleged Malian ", "match": False},
                {"text": "drone", "match": True},
                {
                    "text": " incursion into Algerian airspace — Algeria's foreign ministry"
                    " statement of 7 April 2025 gives 29 December 2024 as the date of a second"
                    " violation of Algerian …",
                    "match": False,
                },
            ]
        ],
    )


class LinkedEvent(ReadModel):
    id: str
    date: dt.date
    title: str
    url: str


class LinkRead(ReadModel):
    type: LinkType
    event: LinkedEvent


class EventLinks(ReadModel):
    outgoing: list[LinkRead] = Field(description="This event <type> the linked event.")
    incoming: list[LinkRead] = Field(description="The linked event <type> this event.")


class EventDetail(EventRead):
    links: EventLinks
    permalink: str | None = Field(
        default=None,
        description="A URL that will always serve this event exactly as it is now (it pins"
        " `as_known_at` to when this version was recorded): cite this.",
    )
    citation: str | None = Field(
        default=None, description="A ready-made citation string with the permalink and sources."
    )

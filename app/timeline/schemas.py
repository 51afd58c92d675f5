from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field, StringConstraints

from app.events.schemas import EventRead
from app.schemas import (
    DATE_FORMS,
    PARTIAL_DATE,
    ActorCode,
    InputModel,
    Instant,
    OrganisationCode,
    ReadModel,
    Shape,
    StateCode,
    parse_partial_date,
)
from app.vocabulary import CATEGORIES, EventKind


def _real_date(value: str) -> str:
    parse_partial_date(value)
    return value


def _known_category(value: str) -> str:
    if value not in CATEGORIES:
        raise ValueError(f"unknown category {value!r}; see GET /v1/categories")
    return value


PartialDate = Annotated[
    str, Shape(PARTIAL_DATE, DATE_FORMS + "; got {value}"), AfterValidator(_real_date)
]
StatePair = Annotated[
    str,
    Shape(
        r"^[A-Za-z]{3}(,[A-Za-z]{3})+$",
        "{value} is not a list of states: give two or more ISO 3166 alpha-3 codes separated by"
        " commas, such as MLI,DZA; find a state's code with /v1/states?q=<name>",
        upper=True,
    ),
]
Category = Annotated[str, AfterValidator(_known_category)]
GroupBy = Literal["kind", "category"]
# The TimelineJS export's cap (app/timeline/timelinejs.py reads it from here).
TIMELINEJS_MAX_EVENTS = 500


class TimelineFilters(InputModel):
    """Filters combine with AND; a repeated parameter matches any of its values."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    # Repeatable parameters default to `[]` (pydantic copies it per instance), not to a
    # default_factory: for every absent parameter of every request, pydantic inspects a
    # factory's signature, on the event loop (bench/README.md).

    from_: PartialDate | None = Field(
        default=None,
        alias="from",
        description="Earliest date, inclusive: `2024`, `2024-07` or `2024-07-15`.",
        examples=["2025-04"],
    )
    to: PartialDate | None = Field(
        default=None,
        description="Latest date, inclusive; a partial date covers its whole period (`2024` ends"
        " on 31 December).",
        examples=["2025-04-30"],
    )
    state: list[StateCode] = Field(
        default=[],
        description="State takes part in any role (repeat for any of several).",
        examples=[["DZA"]],
    )
    actor: list[ActorCode] = Field(
        default=[],
        description="State or organisation code in the role of initiator.",
        examples=[["MLI"]],
    )
    target: list[ActorCode] = Field(
        default=[],
        description="State or organisation code in the role of target.",
        examples=[["DZA"]],
    )
    between: StatePair | None = Field(
        default=None,
        description="Comma-separated state codes that must all take part: `MLI,DZA`.",
        examples=["MLI,DZA"],
    )
    organisation: list[OrganisationCode] = Field(
        default=[],
        description="The organisation itself takes part.",
        examples=[["AES"]],
    )
    include_members: bool = Field(
        default=False,
        description="With `organisation`: also events of states that were members of it on each"
        " event's date.",
    )
    kind: list[EventKind] = Field(default=[], description="`diplomatic_action` or `incident`.")
    category: list[Category] = Field(
        default=[],
        description="Category slug from `GET /v1/categories`.",
        examples=[["ambassador_recall"]],
    )
    tag: list[Annotated[str, StringConstraints(max_length=60)]] = Field(
        default=[],
        description="Tag the event carries (repeat for any of several).",
        examples=[["april-2025-crisis"]],
    )
    q: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        default=None,
        description="Words to search for: an event matches when each word begins one of the"
        " words of its title, summary, claims, tags, named groups, place name or any spelling of"
        " the place (`tinzaouat` finds Tinzaouatène, `one` does not find drone). Case, accents"
        " and punctuation are ignored.",
        examples=["tinzaouatene drone"],
    )


class TimelineQuery(TimelineFilters):
    """The filters, and how to page, order and format what matches."""

    order: Literal["asc", "desc", "relevance"] = Field(
        default="asc",
        description="By date then id (`asc`, `desc`), or best matches first (`relevance`, with"
        " `q`; each item then carries a `snippet`: the passage around the first matching word"
        " as runs of plain text, the matched words marked `match: true`).",
    )
    limit: int = Field(default=50, ge=1, le=500, description="Page size, 1 to 500.")
    cursor: Annotated[str, StringConstraints(max_length=2000)] | None = Field(
        default=None, description="Opaque cursor from `next_cursor`; keep the other parameters."
    )
    count: bool = Field(default=False, description="Add `total`, the number of matching events.")
    format: Literal["json", "csv", "ndjson", "geojson", "ics", "atom", "timelinejs"] | None = Field(
        default=None,
        description="Response format; overrides `Accept`. `csv`, `ndjson`, `geojson` and `ics`"
        " stream every matching event (paging parameters are ignored): the CSV is UTF-8 with a"
        " byte order mark (for Excel), text always quoted and numbers bare; a GeoJSON feature"
        " without coordinates has a null `geometry`. `atom` is a feed of the `limit` most"
        " recently changed events; Atom entries and calendar events link to the event's page"
        " (`/?event=…`) and to its JSON; `timelinejs` is Knight Lab TimelineJS JSON"
        " (slides, a title slide, eras from the membership periods of the one `organisation`"
        " asked for or else from named crises) of every matching event, capped at"
        f" {TIMELINEJS_MAX_EVENTS} events: a query matching more is refused with a 422 problem"
        " (narrow the filters or use `csv` or `ndjson`). Each carries the sources and the data"
        " licence.",
        examples=["csv"],
    )
    group_by: GroupBy = Field(
        default="kind",
        description="With `format=timelinejs`: the row (TimelineJS `group`) each event is drawn"
        " in, by its `kind` or its `category`.",
    )
    as_known_at: Instant | None = Field(
        default=None,
        description="Serve the timeline exactly as the API served it at this instant (from the"
        " revision history), so that a citation can be reproduced.",
        examples=["2025-04-07T12:00:00Z"],
    )


class PageLinks(ReadModel):
    next: str | None = Field(description="URL of the next page, or null on the last page.")


class TimelinePage(ReadModel):
    items: list[EventRead]
    next_cursor: str | None
    links: PageLinks
    total: int | None = Field(default=None, description="Present when `count=true`.")


class TimelineJSDate(ReadModel):
    """Only the parts the event's precision vouches for: a month-precision event has no day."""

    year: int
    month: int | None = None
    day: int | None = None


class TimelineJSText(ReadModel):
    headline: str
    text: str | None = None


class TimelineJSMedia(ReadModel):
    url: str
    caption: str | None = None
    credit: str | None = None
    link: str | None = None
    link_target: str | None = None


class TimelineJSSlide(ReadModel):
    unique_id: str = Field(description="The event id (or `title`).")
    start_date: TimelineJSDate | None = None
    end_date: TimelineJSDate | None = None
    text: TimelineJSText
    group: str | None = None
    media: TimelineJSMedia | None = None


class TimelineJSEra(ReadModel):
    unique_id: str
    start_date: TimelineJSDate
    end_date: TimelineJSDate
    text: TimelineJSText


class TimelineJSDocument(ReadModel):
    """`format=timelinejs`: Knight Lab TimelineJS JSON, served as application/json like a page."""

    title: TimelineJSSlide
    events: list[TimelineJSSlide]
    eras: list[TimelineJSEra]
    scale: Literal["human"]
    attribution: str
    licence: str


class FacetsQuery(TimelineFilters):
    interval: Literal["month", "year"] = Field(
        default="month", description="Bucket size of the `period` facet."
    )


class FacetCount(ReadModel):
    value: str = Field(examples=["ambassador_recall"])
    count: int


class Facets(ReadModel):
    total: int = Field(description="Matching events.")
    kind: list[FacetCount]
    category: list[FacetCount]
    state: list[FacetCount] = Field(description="Events in which each state takes part.")
    organisation: list[FacetCount]
    period: list[FacetCount] = Field(description="Events per month or year, in date order.")

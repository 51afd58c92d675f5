"""Shared pydantic bases and types."""

import calendar
import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, ClassVar
from urllib.parse import quote

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StringConstraints,
    field_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from app.errors import InvalidParameter, NotFound
from app.vocabulary import DatePrecision


class Outcome(StrEnum):
    """What an upsert did: the seed loader reports these, and a no-op must write nothing."""

    created = "created"
    updated = "updated"
    unchanged = "unchanged"


def has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple | set | frozenset):
        return any(has_nul(item) for item in value)
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    return False


def refuse_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("NUL characters (U+0000) are not allowed")
    return value


# A free-text query parameter: anything but NUL, which PostgreSQL cannot compare (a 500).
SearchText = Annotated[str, AfterValidator(refuse_nul)]


class InputModel(BaseModel):
    """Base for anything a client or a seed file sends: unknown fields are an error."""

    # Lists whose order carries no meaning (tags, aliases...): `canonical` sorts them.
    unordered: ClassVar[tuple[str, ...]] = ()

    def canonical(self) -> dict[str, Any]:
        """What this input means, as JSON: two inputs would write the same thing exactly when
        their canonical forms are equal. Every upsert decides "unchanged" with it, comparing
        the input with the stored row read back as an input (each service's `as_input`)."""
        dumped = self.model_dump(mode="json")
        for name in self.unordered:
            dumped[name] = sorted(dumped[name], key=orjson.dumps)
        return dumped

    # No NaN or infinity: JSON has neither (Python's parser takes `NaN` and `1e999`), and a
    # stored NaN is served as null.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # PostgreSQL text cannot hold NUL (the driver raises, a 500) while SQLite stores it:
        # refuse it on both, as the 422 of the field that carries it.
        if has_nul(value):
            refuse_nul("\x00")
        return value


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# The largest value of an integer column: every id, version and count here is PostgreSQL's
# 32-bit `integer`, and SQLAlchemy casts a value compared with one to `integer` (a larger one is
# a DataError); SQLite refuses anything beyond 64 bits outright (OverflowError). So every
# integer a client sends is bounded by this before it reaches a statement.
INTEGER_MAX = 2**31 - 1


def _shown(value: str) -> str:
    """A client's value quoted in a message, shortened: a message is no place for 20,000
    characters."""
    return repr(value if len(value) <= 60 else value[:60] + "…")


class _Check:
    """Annotation metadata: a check run after pydantic's own validation of the type, and what
    it adds to the published JSON schema."""

    def check(self, value: Any) -> Any:
        raise NotImplementedError

    def published(self) -> dict[str, Any]:
        return {}

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {**handler(schema), **self.published()}


@dataclass(frozen=True)
class Shape(_Check):
    """The form a string must have: checked with a message that says what to send (`message`,
    where `{value}` is the value given) instead of pydantic's, which shows the regular
    expression. OpenAPI still publishes the expression as `pattern`.

    With `upper` (or `lower`), an ASCII value is upper-cased first, so codes are accepted in any
    case and stored and served in one. Non-ASCII is left alone: `"ß".upper()` is "SS", and a
    dotless i (U+0131) would become I, so confusable letters could otherwise turn into a code.
    """

    pattern: str
    message: str
    upper: bool = False
    lower: bool = False

    def check(self, value: Any) -> Any:
        given = str(value)
        if given.isascii():
            value = given.upper() if self.upper else given.lower() if self.lower else given
        # fullmatch: with re.match, `$` also matches before a final newline.
        if re.fullmatch(self.pattern, value) is None:
            raise PydanticCustomError(
                "string_pattern_mismatch",
                self.message,
                {"value": _shown(given), "query": quote(given.lower()[:60], safe="")},
            )
        return value

    def published(self) -> dict[str, Any]:
        return {"pattern": self.pattern}


# What to do about a code that is malformed (pydantic) or names nothing (the services): one
# advice for both. `{value}` is the code given, `{query}` the same made a search.
STATE_ADVICE = "use an ISO 3166 alpha-3 code such as MLI; search names with /v1/states?q={query}"
ORGANISATION_ADVICE = (
    "use an organisation code such as AES or ECOWAS; search names with /v1/organisations?q={query}"
)
ACTOR_ADVICE = (
    "use a state code such as MLI or an organisation code such as AES; search names with"
    " /v1/states?q={query} or /v1/organisations?q={query}"
)


_ADVICE = {
    "state": STATE_ADVICE,
    "organisation": ORGANISATION_ADVICE,
    "state or organisation": ACTOR_ADVICE,
}


def unknown_code(what: str, code: str) -> str:
    """The message for a well-formed code or id that names nothing; for states and
    organisations with the same advice as for a malformed code."""
    message = f"unknown {what} {_shown(code)}"
    advice = _ADVICE.get(what)
    if advice is None:
        return message
    return f"{message}: " + advice.format(query=quote(code.lower()[:60], safe=""))


STATE_CODE = r"^[A-Za-z]{3}$"
ORGANISATION_CODE = r"^[A-Za-z0-9][A-Za-z0-9-]{0,39}$"
StateCode = Annotated[
    str,
    Shape(STATE_CODE, "unknown state {value}: " + STATE_ADVICE, upper=True),
    Field(
        description="ISO 3166-1 alpha-3 code, in any case (served in upper case).",
        examples=["MLI"],
    ),
]
OrganisationCode = Annotated[
    str,
    Shape(ORGANISATION_CODE, "unknown organisation {value}: " + ORGANISATION_ADVICE, upper=True),
    Field(description="Organisation code, in any case (served in upper case).", examples=["AES"]),
]
# A participant of either kind (the timeline's `actor` and `target`).
ActorCode = Annotated[
    str,
    Shape(ORGANISATION_CODE, "unknown state or organisation {value}: " + ACTOR_ADVICE, upper=True),
]
SLUG = r"^[a-z0-9]+(-[a-z0-9]+)*$"
SLUG_ADVICE = "use lower-case letters and digits in words joined by single hyphens"
Slug = Annotated[
    str,
    StringConstraints(max_length=120),
    Shape(SLUG, "{value} is not a valid id: " + SLUG_ADVICE + ", such as drone-position"),
]
EventIdText = Annotated[
    str,
    StringConstraints(max_length=120),
    Shape(
        SLUG,
        "{value} is not an event id: " + SLUG_ADVICE + ", such as"
        " 2025-04-01-algeria-shoots-down-malian-drone; find ids with /v1/timeline",
    ),
]
PlaceCodeText = Annotated[
    str,
    StringConstraints(max_length=120),
    Shape(
        r"^[A-Za-z0-9]+(-[A-Za-z0-9]+)*$",
        "{value} is not a place code: " + SLUG_ADVICE + ", such as tinzaouaten; see /v1/places",
        lower=True,
    ),
]
Name = Annotated[str, StringConstraints(min_length=1, max_length=300)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=20_000)]
Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]
WikidataQid = Annotated[
    str,
    Shape(r"^Q[1-9][0-9]*$", "{value} is not a Wikidata item id: use Q and a number, such as Q912"),
]
# A number of people (casualties), as an integer column holds it.
Count = Annotated[int, Field(ge=0, le=INTEGER_MAX)]
# An id given in a query or a body (a filter, a cursor): one no integer column can hold is out
# of range, a 422 naming the parameter.
RowId = Annotated[int, Field(ge=1, le=INTEGER_MAX)]


@dataclass(frozen=True)
class IdInPath(_Check):
    """For the id in a path: one no integer column can hold names no row, so it is a 404 with
    the same message as any unknown id (`message`, where `{}` is the id), not a range error.
    Raised from the validator as the domain's NotFound, which pydantic does not catch."""

    message: str

    def check(self, value: Any) -> Any:
        if value > INTEGER_MAX:
            raise NotFound(self.message.format(value))
        return value

    def published(self) -> dict[str, Any]:
        return {"maximum": INTEGER_MAX}


def _utc_instant(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        # 0001-01-01T00:00:00+01:00 is in year 0 in UTC; 9999-12-31T23:59:59-05:00 in 10000.
        raise ValueError(
            "out of range: give an instant from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z"
        ) from None


# An instant a client gives, as an aware UTC datetime (UTC if it has no offset): what every
# comparison with a stored instant needs, and one that cannot overflow on the way.
Instant = Annotated[dt.datetime, AfterValidator(_utc_instant)]


def fold(text: str) -> str:
    """Lower-case, strip accents and collapse spaces: "Tinzaouatène" -> "tinzaouatene"."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return re.sub(r"\s+", " ", stripped.casefold()).strip()


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7396 JSON merge patch: objects merge key by key, `null` removes a key,
    anything else (arrays included) replaces the value."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def patched(current: BaseModel, patch: Any, *, fixed: tuple[str, ...], what: str) -> dict[str, Any]:
    """The input form of a resource with a merge patch applied, refusing changes to the fields
    that identify it (they name a different resource, not a new value)."""
    base = current.model_dump(mode="json")
    merged = merge_patch(base, patch)
    if not isinstance(merged, dict):
        raise InvalidParameter(["body"], "expected a JSON object")
    for field in fixed:
        if merged.get(field) != base[field]:
            raise InvalidParameter(["body", field], f"{what}'s {field} cannot change")
    return merged


def check_precision(value: dt.date | None, precision: DatePrecision | None, field: str) -> None:
    """A month-precision date is stored as the 1st of its month, a year as 1 January."""
    if value is None:
        if precision is not None:
            raise ValueError(f"{field}_precision is set but {field} is not")
        return
    if precision is None:
        raise ValueError(f"{field} needs a precision (day, month or year)")
    if precision is DatePrecision.month and value.day != 1:
        raise ValueError(f"{field} has month precision, so it must be the 1st of the month")
    if precision is DatePrecision.year and (value.month, value.day) != (1, 1):
        raise ValueError(f"{field} has year precision, so it must be 1 January")


PARTIAL_DATE = r"^[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?$"
_PARTIAL_DATE = re.compile(r"([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2}))?)?")
DATE_FORMS = "expected a date as YYYY, YYYY-MM or YYYY-MM-DD, such as 2025, 2025-04 or 2025-04-01"


def parse_partial_date(text: str, *, end: bool = False) -> dt.date:
    """Parse `2024`, `2024-07` or `2024-07-15`.

    With `end=True` a partial date means the last day of its period, so `to=2024` includes
    the whole of 2024.
    """
    match = _PARTIAL_DATE.fullmatch(text)
    if match is None:
        raise ValueError(DATE_FORMS)
    year, month, day = match.groups()
    try:
        if day is not None:
            return dt.date(int(year), int(month), int(day))
        if month is not None:
            first = dt.date(int(year), int(month), 1)
            if not end:
                return first
            # monthrange, not "the 1st of next month minus a day": 9999-12 has no next month.
            return first.replace(day=calendar.monthrange(first.year, first.month)[1])
        return dt.date(int(year), 12, 31) if end else dt.date(int(year), 1, 1)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"not a real calendar date: {exc}") from None


class ProblemError(BaseModel):
    """One reason a request was refused."""

    loc: list[str | int] = Field(description="Where the problem is, e.g. ['query', 'limit'].")
    msg: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem details body (`application/problem+json`)."""

    type: str = Field(examples=["https://diplomatic-timeline.example/problems/not-found"])
    title: str = Field(examples=["Not found"])
    status: int = Field(examples=[404])
    detail: str = Field(examples=["No event with id 'nope'."])
    instance: str | None = Field(default=None, examples=["/v1/events/nope"])
    errors: list[ProblemError] | None = None
    request_id: str | None = Field(
        default=None,
        description="On server errors (5xx) only: this request's id, also sent as the"
        " `X-Request-ID` header. Quote it when reporting the failure.",
        examples=["0f6c1d2e9a8b4c7d8e9f0a1b2c3d4e5f"],
    )


def problem_responses(*statuses: int, database: bool = True) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the problems a route can answer with.

    503 is listed for every route that reads the database (`database`, the default): any of
    them answers 503 while the database is down or locked for too long (app/errors.py).
    """
    descriptions = {
        400: "Bad request",
        401: "No API key, or an unknown or revoked one",
        403: "The API key lacks the scope this operation needs",
        404: "Not found",
        409: "Conflicts with the current state (an id in use, a resource still referenced)",
        410: "Gone: the resource was deleted",
        412: "The If-Match ETag is stale: the resource changed since you read it",
        413: "The request body is larger than the limit (MAX_REQUEST_BYTES, 1 MiB by default)",
        428: "If-Match is required",
        422: "A parameter or the body is invalid; `errors` says which and why.",
        503: "The database is unavailable, locked for too long or not migrated; retry after"
        " `Retry-After` seconds",
    }
    retry_after = {
        "Retry-After": {
            "description": "Seconds to wait before retrying.",
            "schema": {"type": "integer", "minimum": 0},
        }
    }
    return {
        status: {
            "model": Problem,
            "description": descriptions.get(status, "Problem"),
            # Problems are sent as problem+json: the schema belongs there, or clients and schema
            # checkers see an untyped body (FastAPI adds an application/json copy from `model`).
            "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            },
            **({"headers": retry_after} if status == 503 else {}),
        }
        for status in dict.fromkeys((*statuses, 503) if database else statuses)
    }

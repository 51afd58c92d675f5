"""Shared pydantic bases and types."""

import datetime as dt
import re
import unicodedata
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from app.errors import InvalidParameter
from app.vocabulary import DatePrecision


class Outcome(StrEnum):
    """What an upsert did: the seed loader reports these, and a no-op must write nothing."""

    created = "created"
    updated = "updated"
    unchanged = "unchanged"


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple | set | frozenset):
        return any(_has_nul(item) for item in value)
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    return False


def refuse_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("NUL characters (U+0000) are not allowed")
    return value


# A free-text query parameter: anything but NUL, which PostgreSQL cannot compare (a 500).
SearchText = Annotated[str, AfterValidator(refuse_nul)]


class InputModel(BaseModel):
    """Base for anything a client or a seed file sends: unknown fields are an error."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # PostgreSQL text cannot hold NUL (the driver raises, a 500) while SQLite stores it:
        # refuse it on both, as the 422 of the field that carries it.
        if _has_nul(value):
            refuse_nul("\x00")
        return value


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


StateCode = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z]{3}$"),
    Field(description="ISO 3166-1 alpha-3 code.", examples=["MLI"]),
]
OrganisationCode = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9-]{0,39}$"),
    Field(description="Organisation code (upper-case slug).", examples=["AES"]),
]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", max_length=120)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=300)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=20_000)]
Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]
WikidataQid = Annotated[str, StringConstraints(pattern=r"^Q[1-9][0-9]*$")]


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


_PARTIAL_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


def parse_partial_date(text: str, *, end: bool = False) -> dt.date:
    """Parse `2024`, `2024-07` or `2024-07-15`.

    With `end=True` a partial date means the last day of its period, so `to=2024` includes
    the whole of 2024.
    """
    match = _PARTIAL_DATE.match(text)
    if match is None:
        raise ValueError("expected an ISO date: YYYY, YYYY-MM or YYYY-MM-DD")
    year, month, day = match.groups()
    try:
        if day is not None:
            return dt.date(int(year), int(month), int(day))
        if month is not None:
            first = dt.date(int(year), int(month), 1)
            if not end:
                return first
            following = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
            return following - dt.timedelta(days=1)
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


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the problems a route can answer with.

    503 is always listed: every route that declares its problems reads the database, and any of
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
        for status in dict.fromkeys((*statuses, 503))
    }

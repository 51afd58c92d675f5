import datetime as dt
from typing import Annotated, Any

from pydantic import Field, StringConstraints, ValidationError, field_validator, model_validator

from app.events.schemas import EventRead, LinkRead
from app.schemas import InputModel, Instant, ReadModel, Shape
from app.timeline.schemas import TimelineQuery

RESOURCES = ("event", "membership", "state", "organisation")
OPERATIONS = ("created", "updated", "deleted")
EVENT_TYPES = (*(f"{r}.{o}" for r in RESOURCES for o in OPERATIONS), "webhook.ping")
FILTER_KEYS = ("state", "between", "organisation", "kind", "category", "tag")
_LIST_KEYS = {"state", "organisation", "kind", "category", "tag"}

EventTypePattern = Annotated[
    str,
    Shape(
        r"^(\*|[a-z_]+\.(\*|[a-z_]+))$",
        "{value} is not an event type: use a type such as event.created, a wildcard such as"
        " event.* or *; see GET /v1/webhook-event-types",
    ),
    Field(examples=["event.*"]),
]


def _check_event_types(values: list[str]) -> list[str]:
    prefixes = {t.split(".")[0] for t in EVENT_TYPES}
    for value in values:
        known = value == "*" or value in EVENT_TYPES
        if value.endswith(".*"):
            known = value[:-2] in prefixes
        if not known:
            raise ValueError(f"unknown event type {value!r}; see GET /v1/webhook-event-types")
    return sorted(set(values))


def normalise_filter(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Validate a subscription filter with the timeline's own query model; None if empty."""
    if not value:
        return None
    for key in value:
        if key not in FILTER_KEYS:
            raise ValueError(f"{key!r} is not a filter field; use {', '.join(FILTER_KEYS)}")
    raw = {k: [v] if k in _LIST_KEYS and isinstance(v, str) else v for k, v in value.items()}
    try:
        query = TimelineQuery.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{where}: {first['msg']}") from None
    return query.model_dump(mode="json", include=set(raw))


class EventRevisionLinks(ReadModel):
    outgoing: list[LinkRead] = Field(description="This event <type> the linked event.")


class EventRevision(EventRead):
    """An event as its revision records it (and the change feed serves it): its own links only.
    A link another event makes to this one is part of that event's revision, so it arrives
    with that event's webhook; GET `data.url` gives the links in both directions."""

    links: EventRevisionLinks


class EndpointCreate(InputModel):
    url: Annotated[str, StringConstraints(min_length=1, max_length=2000)] = Field(
        description="Where to POST: https:// and a public address.",
        examples=["https://example.org/hooks/timeline"],
    )
    description: Annotated[str, StringConstraints(max_length=500)] | None = None
    event_types: list[EventTypePattern] = Field(
        default_factory=lambda: ["*"],
        min_length=1,
        description="Types to receive; `event.*` and `*` are wildcards.",
    )
    filter: dict[str, Any] | None = Field(
        default=None,
        description="Timeline filters for `event.*` types: state, between, organisation, kind,"
        " category, tag, as in GET /v1/timeline. Other types ignore it.",
        examples=[{"between": "MLI,DZA"}],
    )

    _types = field_validator("event_types")(_check_event_types)
    _filter = field_validator("filter")(normalise_filter)


class EndpointUpdate(InputModel):
    url: Annotated[str, StringConstraints(min_length=1, max_length=2000)] | None = None
    description: Annotated[str, StringConstraints(max_length=500)] | None = None
    event_types: list[EventTypePattern] | None = Field(default=None, min_length=1)
    filter: dict[str, Any] | None = None

    @field_validator("event_types")
    @classmethod
    def _types(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else _check_event_types(values)

    _filter = field_validator("filter")(normalise_filter)


class EndpointHealth(ReadModel):
    consecutive_failures: int
    failing_since: dt.datetime | None
    warned_at: dt.datetime | None = Field(
        description="When the owner was warned about consecutive failures, if they were."
    )
    last_success_at: dt.datetime | None
    last_failure_at: dt.datetime | None


class EndpointRead(ReadModel):
    id: str = Field(examples=["whep_0192ab34cd56e78f9a0b1c2d"])
    url: str
    description: str | None
    event_types: list[str]
    filter: dict[str, Any] | None
    enabled: bool
    disabled_reason: str | None = Field(
        description="`manual`, `failing`, `gone` (a 410) or `revoked` (its API key was revoked;"
        " it cannot be enabled again)."
    )
    disabled_at: dt.datetime | None
    previous_secret_expires_at: list[dt.datetime] = Field(
        description="While a rotation overlaps, when each old secret stops being used."
    )
    health: EndpointHealth
    created_at: dt.datetime
    updated_at: dt.datetime


class EndpointCreated(EndpointRead):
    secret: str = Field(description="The signing secret. Shown once: store it now.")


class EndpointList(ReadModel):
    items: list[EndpointRead]


class SecretRotate(InputModel):
    overlap_hours: float | None = Field(
        default=None, ge=0, le=168, description="How long the old secret keeps signing (24 h)."
    )


class SecretRotated(ReadModel):
    secret: str = Field(description="The new signing secret. Shown once.")
    previous_expires_at: dt.datetime | None


class EnableRequest(InputModel):
    recover: bool = Field(
        default=True, description="Re-queue the deliveries skipped while the endpoint was off."
    )


class RecoverRequest(InputModel):
    since: Instant | None = Field(default=None, description="Start of the window.")
    until: Instant | None = Field(default=None, description="End of the window (now).")
    event: Annotated[str, StringConstraints(max_length=120)] | None = Field(
        default=None, description="Instead of a window: every delivery about this event id."
    )

    @model_validator(mode="after")
    def _one_way(self) -> "RecoverRequest":
        if (self.since is None) == (self.event is None):
            raise ValueError("give either `since` (a window) or `event` (an event id)")
        return self


class Requeued(ReadModel):
    requeued: int


class DeliveryRead(ReadModel):
    id: int
    endpoint_id: str
    webhook_id: str = Field(description="The `webhook-id` header, stable across retries.")
    event_type: str
    status: str = Field(description="pending, in_flight, succeeded, failed or skipped.")
    trigger: str
    attempt_count: int
    next_attempt_at: dt.datetime | None
    last_status_code: int | None
    last_error_kind: str | None
    created_at: dt.datetime
    completed_at: dt.datetime | None


class AttemptRead(ReadModel):
    number: int
    trigger: str
    started_at: dt.datetime
    duration_ms: int
    webhook_timestamp: int
    response_status: int | None
    response_headers: dict[str, str] | None = Field(
        description="content-type and retry-after; location too from a public receiver."
    )
    response_bytes: int | None = Field(
        description="Length of the response body read (reading stops at 64 KiB)."
    )
    response_body: str | None = Field(
        description="The first 4 KiB of the response, kept only from receivers at public"
        " addresses: never from one inside WEBHOOK_ALLOWED_SUBNETS (an internal service)."
    )
    error_kind: str | None = Field(
        description="http_status, timeout, connect, ssrf_blocked, redirect or network."
    )
    error_message: str | None
    next_attempt_at: dt.datetime | None


class DeliveryDetail(DeliveryRead):
    payload: str | None = Field(description="The exact body sent; null once archived.")
    attempts: list[AttemptRead]


class DeliveryList(ReadModel):
    items: list[DeliveryRead]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class EventTypeRead(ReadModel):
    type: str
    description: str
    payload_schema: dict[str, Any] = Field(description="JSON Schema of the request body.")


class EventTypeList(ReadModel):
    items: list[EventTypeRead]

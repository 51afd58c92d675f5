"""Webhook subscriptions, the transactional outbox and the delivery log.

`emit_revision` runs inside the transaction of every change (called by revisions.record), so a
message and its deliveries exist exactly when the change committed. The worker
(app/webhooks/worker.py) sends them.

Retention: messages and finished deliveries are deleted 90 days after they were created, and
attempts 30 days after they were made (`enforce_retention`, run by the worker every hour and by
`python -m app.webhooks.worker --retention-only`). Pending work is never deleted.
"""

import datetime as dt
import logging
import secrets
import threading
from typing import Any, Literal

import orjson
from pydantic import BaseModel, create_model
from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.orm import Session, selectinload

from app import addresses
from app import auditing as audit
from app.callers import Caller, Scope
from app.config import Settings, get_settings
from app.db import utcnow
from app.errors import Conflict, Gone, InvalidParameter, NotFound
from app.models import (
    ApiKey,
    Revision,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
)
from app.organisations.schemas import MembershipRead, OrganisationRead
from app.states.schemas import StateRead
from app.timeline import filters
from app.timeline.schemas import TimelineQuery
from app.webhooks import signing, ssrf, wake
from app.webhooks.schemas import (
    EVENT_TYPES,
    EndpointCreate,
    EndpointUpdate,
    EventRevision,
    RecoverRequest,
)

logger = logging.getLogger("app.webhooks")

PATHS = {
    "event": "/v1/events/",
    "state": "/v1/states/",
    "organisation": "/v1/organisations/",
    "membership": "/v1/memberships/",
}
PAST = {"create": "created", "update": "updated", "delete": "deleted"}
FINISHED = ("succeeded", "failed", "skipped")
MAX_PREVIOUS_SECRETS = 3
MAX_RECOVER = 10_000

# Set after a commit that wrote deliveries: wakes an embedded worker in this process at once.
wakeup = threading.Event()
_PENDING = "webhooks_pending"
_NOTIFY = select(func.pg_notify(wake.CHANNEL, ""))


def committed(session: Session) -> None:
    """After a commit that queued deliveries: wake the embedded worker at once."""
    if session.info.pop(_PENDING, False):
        wakeup.set()


def forget(session: Session) -> None:
    session.info.pop(_PENDING, None)


def queued(session: Session) -> None:
    """Note that this transaction queued deliveries: its commit wakes the workers, in this
    process (`wakeup`) and, on PostgreSQL, in every other (`wake.CHANNEL`)."""
    if session.info.get(_PENDING):
        return
    session.info[_PENDING] = True
    if session.get_bind().dialect.name == "postgresql":
        # Sent by the server at commit, and dropped on rollback. Once per transaction: the
        # server would merge the copies anyway. (If the savepoint that sent it is rolled back
        # and a later one queues deliveries, the workers' poll finds them.)
        session.execute(_NOTIFY)


# The session's `info` key under which the app puts its public base URL (app/main.py). A write
# made outside the app (an import, the seed loader) reads it from the environment instead.
BASE_URL_INFO = "app.webhooks.base_url"
# A server listening on every interface is reached here through the loopback address.
_WILDCARD_HOSTS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104


def public_base_url(settings: Settings) -> str:
    """What `data.url` starts with: PUBLIC_BASE_URL, else the address the API listens on (HOST
    and PORT), which only a receiver on the same machine can follow. Never the Host header of
    the request that made the change: deliveries go to every subscriber."""
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/")
    host = _WILDCARD_HOSTS.get(settings.host, settings.host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def _base_url(session: Session) -> str:
    configured = session.info.get(BASE_URL_INFO)
    return configured if isinstance(configured, str) else public_base_url(get_settings())


def new_id(prefix: str) -> str:
    """Sorts by creation time, like a ULID: 48 bits of milliseconds, then 64 random bits."""
    millis = int(utcnow().timestamp() * 1000)
    return f"{prefix}{millis:012x}{secrets.token_hex(8)}"


def serialise(payload: dict[str, Any]) -> str:
    """The body, once: compact UTF-8 JSON, stored and sent byte for byte on every attempt."""
    return orjson.dumps(payload).decode()


def type_matches(patterns: list[str], event_type: str) -> bool:
    return any(
        p in ("*", event_type) or (p.endswith(".*") and event_type.startswith(p[:-1]))
        for p in patterns
    )


def filter_matches(saved: dict[str, Any] | None, revision: Revision) -> bool:
    """Only event types are filtered. An update matches if the event matched before or after
    it, so a subscriber also learns that an event left its filter."""
    if not saved or revision.resource != "event":
        return True
    query = TimelineQuery.model_validate(saved)
    return filters.change_matches(revision.before, revision.after, query, [], {})


# --- the outbox ----------------------------------------------------------------------------


def _enqueue(
    session: Session,
    endpoints: list[WebhookEndpoint],
    message: WebhookMessage,
    trigger: Literal["scheduled", "test"] = "scheduled",
) -> list[WebhookDelivery]:
    now = utcnow()
    session.add(message)
    # A disabled endpoint gets its delivery as `skipped`, which `enable` can re-queue.
    deliveries = [
        WebhookDelivery(
            message_id=message.id,
            endpoint_id=e.id,
            status="pending" if e.enabled else "skipped",
            trigger=trigger,
            attempt_count=0,
            round_attempts=0,
            next_attempt_at=now if e.enabled else None,
            created_at=now,
            completed_at=None if e.enabled else now,
        )
        for e in endpoints
    ]
    session.add_all(deliveries)
    session.flush()
    queued(session)
    return deliveries


def emit(session: Session, revisions: list[Revision]) -> None:
    """Queue the messages of these revisions, in their order: the outbox rows join the
    transaction of the change, so a rolled-back change sends nothing (app/writes.py)."""
    for revision in revisions:
        emit_revision(session, revision)


def emit_revision(session: Session, revision: Revision) -> WebhookMessage | None:
    """Write the message and one delivery per matching endpoint, in the caller's
    transaction. Sources and places emit nothing; nor does a change nobody subscribed to."""
    path = PATHS.get(revision.resource)
    if path is None:
        return None
    event_type = f"{revision.resource}.{PAST[revision.operation]}"
    endpoints = [
        e
        for e in session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id))
        if type_matches(e.event_types, event_type) and filter_matches(e.filter, revision)
    ]
    if not endpoints:
        return None
    payload = {
        "type": event_type,
        "timestamp": revision.at.isoformat().replace("+00:00", "Z"),
        "data": {
            "id": revision.resource_key,
            "sequence": revision.version,
            "url": _base_url(session) + path + revision.resource_key,
            "resource": revision.after if revision.after is not None else revision.before,
            "revision": revision.id,
        },
    }
    message = WebhookMessage(
        id=new_id("msg_"),
        type=event_type,
        resource=revision.resource,
        resource_key=revision.resource_key,
        revision_id=revision.id,
        payload=serialise(payload),
        created_at=revision.at,
    )
    _enqueue(session, endpoints, message)
    return message


def _ping(session: Session, endpoint: WebhookEndpoint, reason: str) -> WebhookDelivery:
    now = utcnow()
    payload = {
        "type": "webhook.ping",
        "timestamp": now.isoformat().replace("+00:00", "Z"),
        "data": {"endpoint": endpoint.id, "reason": reason},
    }
    message = WebhookMessage(
        id=new_id("msg_"), type="webhook.ping", payload=serialise(payload), created_at=now
    )
    return _enqueue(session, [endpoint], message, trigger="test")[0]


# --- the catalogue -------------------------------------------------------------------------

# What revisions record, as the change feed serves it: an event's own (outgoing) links, a
# state without its memberships (each comes as a membership.* webhook of its own).
_RESOURCE_MODELS: dict[str, type[BaseModel]] = {
    "event": EventRevision,
    "state": StateRead,
    "organisation": OrganisationRead,
    "membership": MembershipRead,
}
_DESCRIPTIONS = {
    "created": "{a} {r} was created.",
    "updated": "{a} {r} was changed; `resource` is its new representation.",
    "deleted": "{a} {r} was deleted; `resource` is its last representation.",
}
# `resource` is what the change feed serves for the change, not the GET document.
_RESOURCE_NOTE = {
    "event": " `resource` carries the event's own links (`links.outgoing`); GET `data.url` for both"
    " directions.",
    "state": " `resource` holds no memberships: each comes as a membership.* webhook of its own.",
}


def _data_model(resource: str, name: str) -> type[BaseModel]:
    if resource == "webhook":
        return create_model("PingData", endpoint=(str, ...), reason=(str, ...))
    return create_model(
        f"{name}Data",
        id=(str, ...),
        sequence=(int, ...),
        url=(str, ...),
        resource=(_RESOURCE_MODELS[resource], ...),
        revision=(int, ...),
    )


def _payload_model(event_type: str) -> type[BaseModel]:
    resource, _, operation = event_type.partition(".")
    name = "".join(part.capitalize() for part in (resource, operation))
    data = _data_model(resource, name)
    constant: Any = Literal[event_type]
    return create_model(
        f"{name}Payload",
        type=(constant, ...),
        timestamp=(dt.datetime, ...),
        data=(data, ...),
    )


def catalogue() -> list[dict[str, Any]]:
    items = []
    for event_type in EVENT_TYPES:
        resource, _, operation = event_type.partition(".")
        description = (
            "Sent only on request (POST /v1/webhook-endpoints/{id}/test), to test the receiver."
            if resource == "webhook"
            else _DESCRIPTIONS[operation].format(
                a="An" if resource[0] in "aeiou" else "A", r=resource
            )
            + _RESOURCE_NOTE.get(resource, "")
        )
        items.append(
            {
                "type": event_type,
                "description": description,
                "payload_schema": _payload_model(event_type).model_json_schema(),
            }
        )
    return items


# --- endpoints -----------------------------------------------------------------------------


def _is_admin(caller: Caller) -> bool:
    return Scope.admin.value in caller.scopes


def _endpoint(session: Session, caller: Caller, endpoint_id: str) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    # Someone else's endpoint is "not found": its existence is none of the caller's business.
    if endpoint is None or not (_is_admin(caller) or endpoint.owner_key_id == caller.key_id):
        raise NotFound(f"No webhook endpoint {endpoint_id!r}.")
    return endpoint


def _live_previous(endpoint: WebhookEndpoint, now: dt.datetime) -> list[dict[str, str]]:
    return [
        p for p in endpoint.previous_secrets if dt.datetime.fromisoformat(p["expires_at"]) > now
    ]


def signing_secrets(endpoint: WebhookEndpoint, now: dt.datetime) -> list[str]:
    return [endpoint.secret, *(p["secret"] for p in _live_previous(endpoint, now))]


def endpoint_read(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": endpoint.event_types,
        "filter": endpoint.filter,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "disabled_at": endpoint.disabled_at,
        "previous_secret_expires_at": [p["expires_at"] for p in _live_previous(endpoint, utcnow())],
        "health": {
            "consecutive_failures": endpoint.consecutive_failures,
            "failing_since": endpoint.failing_since,
            "warned_at": endpoint.warned_at,
            "last_success_at": endpoint.last_success_at,
            "last_failure_at": endpoint.last_failure_at,
        },
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
    }


def _check_url(url: str, allowed_subnets: list[str]) -> None:
    problem = ssrf.url_problem(url, addresses.parse_subnets(allowed_subnets))
    if problem:
        raise InvalidParameter(["body", "url"], problem)


def create_endpoint(
    session: Session, data: EndpointCreate, caller: Caller, *, allowed_subnets: list[str]
) -> tuple[WebhookEndpoint, str]:
    """Save an endpoint. The secret is returned only here. No ping is queued: the worker could
    deliver it before the caller has read the secret from the response, so a receiver that
    verifies every request would reject it. `send_test` pings when the caller is ready."""
    _check_url(data.url, allowed_subnets)
    secret = signing.new_secret()
    endpoint = WebhookEndpoint(
        id=new_id("whep_"),
        owner_key_id=caller.key_id,
        url=data.url,
        description=data.description,
        event_types=data.event_types,
        filter=data.filter,
        secret=secret,
        previous_secrets=[],
        enabled=True,
        consecutive_failures=0,
    )
    session.add(endpoint)
    session.flush()
    return endpoint, secret


def list_endpoints(session: Session, caller: Caller) -> list[dict[str, Any]]:
    query = select(WebhookEndpoint).order_by(WebhookEndpoint.id)
    if not _is_admin(caller):
        query = query.where(WebhookEndpoint.owner_key_id == caller.key_id)
    return [endpoint_read(e) for e in session.scalars(query)]


def get_endpoint(session: Session, caller: Caller, endpoint_id: str) -> dict[str, Any]:
    return endpoint_read(_endpoint(session, caller, endpoint_id))


def update_endpoint(
    session: Session,
    caller: Caller,
    endpoint_id: str,
    data: EndpointUpdate,
    *,
    allowed_subnets: list[str],
) -> dict[str, Any]:
    endpoint = _endpoint(session, caller, endpoint_id)
    changes = data.model_dump(exclude_unset=True)
    for required in ("url", "event_types"):
        if required in changes and changes[required] is None:
            raise InvalidParameter(["body", required], "may not be null")
    if "url" in changes:
        _check_url(changes["url"], allowed_subnets)
    for field, value in changes.items():
        setattr(endpoint, field, value)
    session.flush()
    return endpoint_read(endpoint)


def delete_endpoint(session: Session, caller: Caller, endpoint_id: str) -> None:
    endpoint = _endpoint(session, caller, endpoint_id)
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))
    session.delete(endpoint)
    session.flush()


def rotate_secret(
    session: Session, caller: Caller, endpoint_id: str, *, overlap: dt.timedelta
) -> dict[str, Any]:
    """A new secret; the old one keeps signing (a second signature) until the overlap ends."""
    endpoint = _endpoint(session, caller, endpoint_id)
    now = utcnow()
    expires = now + overlap
    previous = [{"secret": endpoint.secret, "expires_at": expires.isoformat()}]
    if overlap > dt.timedelta(0):
        previous += _live_previous(endpoint, now)[: MAX_PREVIOUS_SECRETS - 1]
    else:
        previous = []
    endpoint.previous_secrets = previous
    endpoint.secret = signing.new_secret()
    session.flush()
    return {"secret": endpoint.secret, "previous_expires_at": expires if previous else None}


def revoke_previous_secrets(session: Session, caller: Caller, endpoint_id: str) -> dict[str, Any]:
    endpoint = _endpoint(session, caller, endpoint_id)
    endpoint.previous_secrets = []
    session.flush()
    return endpoint_read(endpoint)


def disable(session: Session, endpoint: WebhookEndpoint, reason: str, now: dt.datetime) -> int:
    """Switch an endpoint off and skip its pending deliveries (`enable` can re-queue them)."""
    endpoint.enabled = False
    endpoint.disabled_reason = reason
    endpoint.disabled_at = now
    skipped = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.status == "pending")
        .values(status="skipped", completed_at=now, next_attempt_at=None)
    )
    session.flush()
    logger.warning("webhook_endpoint_disabled endpoint=%s reason=%s", endpoint.id, reason)
    return int(skipped.rowcount)  # type: ignore[attr-defined]


def disable_for_revoked_key(session: Session, key_id: int) -> list[str]:
    """Switch off every endpoint of a revoked key and skip what they had queued. Returns their
    ids: all of the key's endpoints, so revoking twice answers the same."""
    now = utcnow()
    endpoints = session.scalars(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.owner_key_id == key_id)
        .order_by(WebhookEndpoint.id)
    ).all()
    for endpoint in endpoints:
        if endpoint.disabled_reason != "revoked":
            disable(session, endpoint, "revoked", now)
            audit.note(session, f"webhook-endpoint/{endpoint.id} disabled")
    return [e.id for e in endpoints]


def disable_endpoint(session: Session, caller: Caller, endpoint_id: str) -> dict[str, Any]:
    endpoint = _endpoint(session, caller, endpoint_id)
    if endpoint.enabled:
        disable(session, endpoint, "manual", utcnow())
    return endpoint_read(endpoint)


def _requeue(session: Session, delivery_ids: list[int], trigger: str) -> int:
    if not delivery_ids:
        return 0
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(delivery_ids))
        .values(
            status="pending",
            trigger=trigger,
            round_attempts=0,
            next_attempt_at=utcnow(),
            completed_at=None,
        )
    )
    queued(session)
    return len(delivery_ids)


def enable_endpoint(
    session: Session, caller: Caller, endpoint_id: str, *, recover: bool
) -> dict[str, Any]:
    endpoint = _endpoint(session, caller, endpoint_id)
    owner = session.get(ApiKey, endpoint.owner_key_id)
    if owner is None or owner.revoked_at is not None:
        raise Conflict(
            f"Webhook endpoint {endpoint.id!r} belongs to a revoked API key and stays disabled;"
            " subscribe again with a live key."
        )
    endpoint.enabled = True
    endpoint.disabled_reason = None
    endpoint.disabled_at = None
    endpoint.consecutive_failures = 0
    endpoint.failing_since = None
    endpoint.warned_at = None
    requeued = 0
    if recover:
        ids = session.scalars(
            select(WebhookDelivery.id)
            .where(WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.status == "skipped")
            .limit(MAX_RECOVER)
        ).all()
        requeued = _requeue(session, list(ids), "recover")
    session.flush()
    return {**endpoint_read(endpoint), "requeued": requeued}


def _require_enabled(endpoint: WebhookEndpoint) -> None:
    if not endpoint.enabled:
        raise Conflict(f"Webhook endpoint {endpoint.id!r} is disabled; enable it first.")


def send_test(session: Session, caller: Caller, endpoint_id: str) -> dict[str, Any]:
    endpoint = _endpoint(session, caller, endpoint_id)
    _require_enabled(endpoint)
    delivery = _ping(session, endpoint, "test")
    return get_delivery(session, caller, delivery.id)


def recover(
    session: Session, caller: Caller, endpoint_id: str, data: RecoverRequest
) -> dict[str, int]:
    """Re-queue the failed and skipped deliveries of a time window, or every finished delivery
    about one event. Each gets a fresh retry schedule and keeps its webhook-id."""
    endpoint = _endpoint(session, caller, endpoint_id)
    _require_enabled(endpoint)
    query = select(WebhookDelivery.id).where(WebhookDelivery.endpoint_id == endpoint.id)
    if data.event is not None:
        query = query.where(
            WebhookDelivery.status.in_(FINISHED),
            WebhookDelivery.message_id.in_(
                select(WebhookMessage.id).where(
                    WebhookMessage.resource == "event", WebhookMessage.resource_key == data.event
                )
            ),
        )
    else:
        query = query.where(
            WebhookDelivery.status.in_(("failed", "skipped")),
            WebhookDelivery.created_at >= data.since,
            WebhookDelivery.created_at < (data.until or utcnow()),
        )
    ids = session.scalars(query.limit(MAX_RECOVER)).all()
    requeued = _requeue(session, list(ids), "recover")
    session.flush()
    return {"requeued": requeued}


# --- the delivery log ----------------------------------------------------------------------


def _delivery_read(d: WebhookDelivery, event_type: str) -> dict[str, Any]:
    return {
        "id": d.id,
        "endpoint_id": d.endpoint_id,
        "webhook_id": d.message_id,
        "event_type": event_type,
        "status": d.status,
        "trigger": d.trigger,
        "attempt_count": d.attempt_count,
        "next_attempt_at": d.next_attempt_at,
        "last_status_code": d.last_status_code,
        "last_error_kind": d.last_error_kind,
        "created_at": d.created_at,
        "completed_at": d.completed_at,
    }


def list_deliveries(
    session: Session,
    caller: Caller,
    endpoint_id: str,
    *,
    status: str | None,
    event_type: str | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
    limit: int,
    cursor: int | None,
) -> dict[str, Any]:
    """Newest first; `cursor` is the id of the last delivery of the previous page."""
    endpoint = _endpoint(session, caller, endpoint_id)
    query = (
        select(WebhookDelivery, WebhookMessage.type)
        .join(WebhookMessage, WebhookMessage.id == WebhookDelivery.message_id)
        .where(WebhookDelivery.endpoint_id == endpoint.id)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit + 1)
    )
    if status:
        query = query.where(WebhookDelivery.status == status)
    if event_type:
        query = query.where(WebhookMessage.type == event_type)
    if since:
        query = query.where(WebhookDelivery.created_at >= since)
    if until:
        query = query.where(WebhookDelivery.created_at < until)
    if cursor:
        query = query.where(WebhookDelivery.id < cursor)
    rows = session.execute(query).all()
    items = [_delivery_read(d, t) for d, t in rows[:limit]]
    more = len(rows) > limit
    return {"items": items, "next_cursor": str(items[-1]["id"]) if more else None}


def _delivery(session: Session, caller: Caller, delivery_id: int) -> WebhookDelivery:
    query = (
        select(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id)
        .options(selectinload(WebhookDelivery.message), selectinload(WebhookDelivery.attempts))
    )
    if not _is_admin(caller):
        query = query.join(
            WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id
        ).where(WebhookEndpoint.owner_key_id == caller.key_id)
    delivery = session.scalars(query).first()
    # Someone else's delivery gets the very answer an unknown id gets: naming its endpoint
    # would tell the caller that the id exists, and whose it is.
    if delivery is None:
        raise NotFound(f"No webhook delivery {delivery_id}.")
    return delivery


def get_delivery(session: Session, caller: Caller, delivery_id: int) -> dict[str, Any]:
    d = _delivery(session, caller, delivery_id)
    attempts = [
        {
            "number": a.number,
            "trigger": a.trigger,
            "started_at": a.started_at,
            "duration_ms": a.duration_ms,
            "webhook_timestamp": a.webhook_timestamp,
            "response_status": a.response_status,
            "response_headers": a.response_headers,
            "response_bytes": a.response_bytes,
            "response_body": a.response_body,
            "error_kind": a.error_kind,
            "error_message": a.error_message,
            "next_attempt_at": a.next_attempt_at,
        }
        for a in d.attempts
    ]
    return {
        **_delivery_read(d, d.message.type),
        "payload": d.message.payload,
        "attempts": attempts,
    }


def redeliver(session: Session, caller: Caller, delivery_id: int) -> dict[str, Any]:
    """One more attempt, with the same webhook-id and a new timestamp and signature."""
    d = _delivery(session, caller, delivery_id)
    endpoint = _endpoint(session, caller, d.endpoint_id)
    _require_enabled(endpoint)
    if d.status in ("pending", "in_flight"):
        raise Conflict(f"Delivery {delivery_id} is already queued.")
    if d.message.payload is None:
        raise Gone(f"The payload of delivery {delivery_id} has expired under the retention rule.")
    _requeue(session, [d.id], "manual")
    session.flush()
    session.expire(d)
    return get_delivery(session, caller, delivery_id)


def enforce_retention(
    session: Session, now: dt.datetime, *, message_days: int, attempt_days: int
) -> dict[str, int]:
    """Delete attempts after `attempt_days`, and finished deliveries and their messages after
    `message_days`. Work still pending or in flight is kept whatever its age."""
    message_cutoff = now - dt.timedelta(days=message_days)
    attempts = session.execute(
        delete(WebhookAttempt).where(
            WebhookAttempt.started_at < now - dt.timedelta(days=attempt_days)
        )
    )
    deliveries = session.execute(
        delete(WebhookDelivery).where(
            WebhookDelivery.created_at < message_cutoff, WebhookDelivery.status.in_(FINISHED)
        )
    )
    messages = session.execute(
        delete(WebhookMessage).where(
            WebhookMessage.created_at < message_cutoff,
            ~exists().where(WebhookDelivery.message_id == WebhookMessage.id),
        )
    )
    session.flush()
    return {
        "attempts": int(attempts.rowcount),  # type: ignore[attr-defined]
        "deliveries": int(deliveries.rowcount),  # type: ignore[attr-defined]
        "messages": int(messages.rowcount),  # type: ignore[attr-defined]
    }


def queue_depth(session: Session) -> int:
    return (
        session.scalar(
            select(func.count()).where(WebhookDelivery.status.in_(("pending", "in_flight")))
        )
        or 0
    )

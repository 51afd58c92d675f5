import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response

from app.access import require
from app.callers import Caller, Scope
from app.config import Settings
from app.db import SessionDep
from app.routing import StrictQueryRoute
from app.schemas import IdInPath, Instant, RowId, SearchText, problem_responses
from app.webhooks import service
from app.webhooks.schemas import (
    DeliveryDetail,
    DeliveryList,
    EnableRequest,
    EndpointCreate,
    EndpointCreated,
    EndpointList,
    EndpointRead,
    EndpointUpdate,
    EventTypeList,
    RecoverRequest,
    Requeued,
    SecretRotate,
    SecretRotated,
)

router = APIRouter(prefix="/v1", tags=["Webhooks"], route_class=StrictQueryRoute)

HooksCaller = Annotated[Caller, Depends(require(Scope.webhooks))]
# Not a pattern: an id of another shape is a 404, as any unknown id; but never NUL, which
# PostgreSQL cannot compare.
EndpointId = Annotated[SearchText, Path(max_length=40, description="The endpoint's id (`whep_…`).")]
DeliveryId = Annotated[
    int, Path(ge=1, description="The delivery's id."), IdInPath("No webhook delivery {}.")
]
READ_ERRORS = problem_responses(401, 403, 404, 422)
# Endpoints are deleted for good (404 afterwards, never 410). 409 is a disabled endpoint asked
# to send; 410 a delivery whose payload retention has removed.
WRITE_ERRORS = problem_responses(401, 403, 404, 422)
SEND_ERRORS = problem_responses(401, 403, 404, 409, 422)
REDELIVER_ERRORS = problem_responses(401, 403, 404, 409, 410, 422)


def settings(request: Request) -> Settings:
    configured: Settings = request.app.state.settings
    return configured


SettingsDep = Annotated[Settings, Depends(settings)]


@router.get("/webhook-event-types", response_model=EventTypeList)
def event_types() -> dict[str, Any]:
    """Every event type an endpoint can subscribe to, with the JSON Schema of its body."""
    return {"items": service.catalogue()}


@router.post(
    "/webhook-endpoints",
    response_model=EndpointCreated,
    status_code=201,
    responses=problem_responses(401, 403, 422),
)
def create_endpoint(
    data: EndpointCreate, session: SessionDep, caller: HooksCaller, config: SettingsDep
) -> dict[str, Any]:
    """Subscribe a URL. The `secret` is shown only in this response; a `webhook.ping` follows."""
    endpoint, secret = service.create_endpoint(
        session, data, caller, allowed_subnets=config.webhook_allowed_subnets
    )
    return {**service.endpoint_read(endpoint), "secret": secret}


@router.get(
    "/webhook-endpoints", response_model=EndpointList, responses=problem_responses(401, 403)
)
def list_endpoints(session: SessionDep, caller: HooksCaller) -> dict[str, Any]:
    """The caller's endpoints (an admin key sees everyone's)."""
    return {"items": service.list_endpoints(session, caller)}


@router.get("/webhook-endpoints/{id}", response_model=EndpointRead, responses=READ_ERRORS)
def get_endpoint(id: EndpointId, session: SessionDep, caller: HooksCaller) -> dict[str, Any]:
    """One endpoint, with its health."""
    return service.get_endpoint(session, caller, id)


@router.patch("/webhook-endpoints/{id}", response_model=EndpointRead, responses=WRITE_ERRORS)
def update_endpoint(
    id: EndpointId,
    data: EndpointUpdate,
    session: SessionDep,
    caller: HooksCaller,
    config: SettingsDep,
) -> dict[str, Any]:
    """Change the URL, description, event types or filter; absent fields are kept."""
    return service.update_endpoint(
        session, caller, id, data, allowed_subnets=config.webhook_allowed_subnets
    )


@router.delete("/webhook-endpoints/{id}", status_code=204, responses=WRITE_ERRORS)
def delete_endpoint(id: EndpointId, session: SessionDep, caller: HooksCaller) -> Response:
    """Unsubscribe, dropping the endpoint's queued deliveries and log."""
    service.delete_endpoint(session, caller, id)
    return Response(status_code=204)


@router.post(
    "/webhook-endpoints/{id}/secret/rotate", response_model=SecretRotated, responses=WRITE_ERRORS
)
def rotate_secret(
    id: EndpointId,
    session: SessionDep,
    caller: HooksCaller,
    config: SettingsDep,
    data: Annotated[SecretRotate | None, Body()] = None,
) -> dict[str, Any]:
    """A new secret. Until the overlap ends (24 h) requests carry both signatures."""
    hours = data.overlap_hours if data and data.overlap_hours is not None else None
    overlap = dt.timedelta(hours=config.webhook_rotation_overlap_hours if hours is None else hours)
    return service.rotate_secret(session, caller, id, overlap=overlap)


@router.post(
    "/webhook-endpoints/{id}/secret/revoke-previous",
    response_model=EndpointRead,
    responses=WRITE_ERRORS,
)
def revoke_previous(id: EndpointId, session: SessionDep, caller: HooksCaller) -> dict[str, Any]:
    """End a rotation's overlap now: only the new secret signs from here on."""
    return service.revoke_previous_secrets(session, caller, id)


@router.post("/webhook-endpoints/{id}/disable", response_model=EndpointRead, responses=WRITE_ERRORS)
def disable(id: EndpointId, session: SessionDep, caller: HooksCaller) -> dict[str, Any]:
    """Stop delivering; queued deliveries are skipped (and can be recovered on enable)."""
    return service.disable_endpoint(session, caller, id)


@router.post("/webhook-endpoints/{id}/enable", response_model=Requeued, responses=WRITE_ERRORS)
def enable(
    id: EndpointId,
    session: SessionDep,
    caller: HooksCaller,
    data: Annotated[EnableRequest | None, Body()] = None,
) -> dict[str, Any]:
    """Deliver again, resetting the health counters; by default re-queue what was skipped."""
    recover = data.recover if data else True
    return service.enable_endpoint(session, caller, id, recover=recover)


@router.post(
    "/webhook-endpoints/{id}/test",
    response_model=DeliveryDetail,
    status_code=202,
    responses=SEND_ERRORS,
)
def send_test(id: EndpointId, session: SessionDep, caller: HooksCaller) -> dict[str, Any]:
    """Queue a `webhook.ping` to this endpoint."""
    return service.send_test(session, caller, id)


@router.post(
    "/webhook-endpoints/{id}/recover",
    response_model=Requeued,
    status_code=202,
    responses=SEND_ERRORS,
)
def recover(
    id: EndpointId, data: RecoverRequest, session: SessionDep, caller: HooksCaller
) -> dict[str, int]:
    """Re-queue failed and skipped deliveries since a time, or every delivery about an event."""
    return service.recover(session, caller, id, data)


@router.get(
    "/webhook-endpoints/{id}/deliveries", response_model=DeliveryList, responses=READ_ERRORS
)
def list_deliveries(
    id: EndpointId,
    session: SessionDep,
    caller: HooksCaller,
    status: Annotated[
        Literal["pending", "in_flight", "succeeded", "failed", "skipped"] | None,
        Query(description="Only deliveries in this state."),
    ] = None,
    event_type: Annotated[
        SearchText | None,
        Query(max_length=40, description="Only this type, e.g. `event.created`."),
    ] = None,
    since: Annotated[Instant | None, Query(description="Created at or after.")] = None,
    until: Annotated[Instant | None, Query(description="Created before.")] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Page size, 1 to 500.")] = 50,
    cursor: Annotated[RowId | None, Query(description="`next_cursor` of the last page.")] = None,
) -> dict[str, Any]:
    """The endpoint's deliveries, newest first."""
    return service.list_deliveries(
        session,
        caller,
        id,
        status=status,
        event_type=event_type,
        since=since,
        until=until,
        limit=limit,
        cursor=cursor,
    )


@router.get("/webhook-deliveries/{id}", response_model=DeliveryDetail, responses=READ_ERRORS)
def get_delivery(id: DeliveryId, session: SessionDep, caller: HooksCaller) -> dict[str, Any]:
    """One delivery: the exact body and every attempt (status, duration, error, response)."""
    return service.get_delivery(session, caller, id)


@router.post(
    "/webhook-deliveries/{id}/redeliver",
    response_model=DeliveryDetail,
    status_code=202,
    responses=REDELIVER_ERRORS,
)
def redeliver(id: DeliveryId, session: SessionDep, caller: HooksCaller) -> dict[str, Any]:
    """One more attempt: the same webhook-id, a new timestamp and signature."""
    return service.redeliver(session, caller, id)

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, Response

from app.access import EditorCaller
from app.db import DatabaseThreads, SessionDep, transaction
from app.events import service
from app.events.schemas import EventCreate, EventDetail
from app.hosts import base_url
from app.json import JSONBytes
from app.revisions.schemas import RevisionList
from app.routing import StrictQueryRoute
from app.schemas import EventIdText, Instant, problem_responses
from app.web import MERGE_PATCH, IdempotencyKey, IfMatch, created, expected_version
from app.web import resource_response as respond

router = APIRouter(prefix="/v1/events", tags=["Timeline"], route_class=StrictQueryRoute)

EventId = Annotated[
    EventIdText,
    Path(
        description="The event's stable id.",
        examples=["2025-04-01-algeria-shoots-down-malian-drone"],
    ),
]
Patch = Annotated[
    dict[str, Any],
    Body(
        media_type=MERGE_PATCH,
        description="A JSON merge patch (RFC 7396) of the fields to change, in the shape of the"
        " POST body: `null` removes a field, arrays are replaced whole.",
        examples=[{"title": "Algeria shoots down a Malian drone near Tinzaouaten"}],
    ),
]
# No 409: an event's id cannot change and nothing blocks deleting one.
WRITE_ERRORS = problem_responses(401, 403, 404, 410, 412, 422, 428)


def _citable(
    request: Request, session: SessionDep, doc: dict[str, Any], version: int
) -> dict[str, Any]:
    """The event document as `GET /v1/events/{id}` serves it: with the permalink that pins its
    current version (when that version was recorded) and a citation built on it. A write's
    answer goes through here too, after its revision is recorded, so that it is the very body
    the read that follows serves and can be cited at once."""
    at = service.recorded_at(session, doc["id"])
    if at is None:
        return doc
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    doc["permalink"] = f"{base_url(request.scope)}{doc['url']}?as_known_at={stamp}"
    publishers = "; ".join(dict.fromkeys(s["publisher"] for s in doc["sources"]))
    doc["citation"] = (
        f"\u201c{doc['title']}\u201d ({doc['date']}). Diplomatic Timeline API, event {doc['id']},"
        f" version {version}, recorded {at:%Y-%m-%d %H:%M} UTC. {doc['permalink']}."
        f" Sources: {publishers}."
    )
    return doc


@router.get(
    "/{id}",
    response_model=EventDetail,
    response_class=JSONBytes,
    responses=problem_responses(404, 410, 422),
)
async def get_event(
    id: EventId,
    request: Request,
    as_known_at: Annotated[
        Instant | None,
        Query(
            description="Serve the event exactly as the API served it at this instant, from its"
            " revision history, so a citation can be reproduced.",
            examples=["2025-04-07T12:00:00Z"],
        ),
    ] = None,
) -> Response:
    """One event with its participants, location, claims, sources, and its links to other events in
    both directions (what it answered, and what answered it). The `ETag` header is its version."""
    # As the timeline's page: the whole read transaction in one trip to a database thread. A
    # sync endpoint with SessionDep makes three (session in, endpoint, session out), each
    # waiting for a thread of AnyIO's pool, which the writes' trips also wait for.
    threads: DatabaseThreads = request.app.state.db_threads
    return await threads.run(_get_event, request, id, as_known_at)


def _get_event(request: Request, id: str, as_known_at: dt.datetime | None) -> Response:
    with transaction(request.app.state.session_factory, write=False) as session:
        if as_known_at is not None:
            return JSONBytes(service.get_as_known_at(session, id, as_known_at))
        doc, version = service.get_event(session, id)
        return respond(_citable(request, session, doc, version), version=version)


@router.post(
    "",
    response_model=EventDetail,
    status_code=201,
    response_class=JSONBytes,
    responses=problem_responses(401, 403, 409, 422),
)
def create_event(
    data: EventCreate,
    request: Request,
    session: SessionDep,
    who: EditorCaller,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Add an event with its participants, sources, claims and links. Needs the `editor` scope.
    The answer is the event as `GET /v1/events/{id}` then serves it, `permalink` and `citation`
    included."""

    def create() -> tuple[dict[str, Any], int]:
        doc, version = service.create(session, data, who.name)
        return _citable(request, session, doc, version), version

    return created(request, who, idempotency_key, data, session, create)


@router.patch("/{id}", response_model=EventDetail, response_class=JSONBytes, responses=WRITE_ERRORS)
def update_event(
    id: EventId,
    patch: Patch,
    request: Request,
    session: SessionDep,
    who: EditorCaller,
    if_match: IfMatch = None,
) -> Response:
    """Change some fields of an event. Send `If-Match` with the ETag you read: if someone changed
    the event since, the answer is 412 and nothing is written. The answer is the event as
    `GET /v1/events/{id}` then serves it, with the `permalink` of the version just recorded."""
    doc, version = service.update(session, id, patch, expected_version(if_match), who.name)
    return respond(_citable(request, session, doc, version), version=version)


@router.delete("/{id}", status_code=204, responses=WRITE_ERRORS)
def delete_event(
    id: EventId, session: SessionDep, who: EditorCaller, if_match: IfMatch = None
) -> Response:
    """Delete an event: it leaves the timeline and answers 410, but stays in its revisions and in
    the change feed."""
    service.delete(session, id, expected_version(if_match), who.name)
    return Response(status_code=204)


@router.get("/{id}/revisions", response_model=RevisionList, responses=problem_responses(404, 422))
def event_revisions(id: EventId, session: SessionDep) -> Any:
    """Every change to this event: who made it, when, and the event before and after."""
    return JSONBytes({"items": service.revisions(session, id)})

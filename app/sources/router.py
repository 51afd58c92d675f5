from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, Response

from app.access import EditorCaller
from app.db import SessionDep
from app.json import JSONBytes
from app.revisions.schemas import RevisionList
from app.routing import StrictQueryRoute
from app.schemas import IdInPath, SearchText, problem_responses
from app.sources import service
from app.sources.schemas import SourceDetail, SourceIn, SourceList
from app.web import MERGE_PATCH, IdempotencyKey, IfMatch, created, expected_version
from app.web import resource_response as respond

router = APIRouter(prefix="/v1/sources", tags=["Sources"], route_class=StrictQueryRoute)

SourceId = Annotated[
    int,
    Path(ge=1, description="The source's id.", examples=[1]),
    IdInPath("No source with id {}."),
]
Patch = Annotated[
    dict[str, Any],
    Body(
        media_type=MERGE_PATCH,
        description="A JSON merge patch (RFC 7396) of the fields to change; the URL cannot change.",
        examples=[{"title": "Algerian army downs intruding surveillance drone"}],
    ),
]
WRITE_ERRORS = problem_responses(401, 403, 404, 410, 412, 422, 428)
# Only a delete can conflict (the source is still cited); a source's URL cannot change.
DELETE_ERRORS = problem_responses(401, 403, 404, 409, 410, 412, 422, 428)


@router.get("", response_model=SourceList, responses=problem_responses(422))
def list_sources(
    session: SessionDep,
    q: Annotated[
        SearchText | None,
        Query(max_length=200, description="Match the publisher or the URL.", examples=["reuters"]),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Page size, 1 to 500.")] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="Sources to skip.")] = 0,
) -> Any:
    """Every source the dataset cites: URL, publisher, title, publication date, language."""
    return JSONBytes(service.list_sources(session, q, limit, offset))


@router.get(
    "/{source_id}",
    response_model=SourceDetail,
    response_class=JSONBytes,
    responses=problem_responses(404, 410, 422),
)
def get_source(source_id: SourceId, session: SessionDep) -> Response:
    """One source."""
    doc, version = service.get_source(session, source_id)
    return respond(doc, version=version)


@router.post(
    "",
    response_model=SourceDetail,
    status_code=201,
    response_class=JSONBytes,
    responses=problem_responses(401, 403, 409, 422),
)
def create_source(
    data: SourceIn,
    request: Request,
    session: SessionDep,
    who: EditorCaller,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Add a source. Events can also cite new sources inline. Needs the `editor` scope."""
    return created(
        request,
        who,
        idempotency_key,
        data,
        session,
        lambda: service.create(session, data, who.name),
        location=lambda doc: f"/v1/sources/{doc['id']}",
    )


@router.patch(
    "/{source_id}", response_model=SourceDetail, response_class=JSONBytes, responses=WRITE_ERRORS
)
def update_source(
    source_id: SourceId,
    patch: Patch,
    session: SessionDep,
    who: EditorCaller,
    if_match: IfMatch = None,
) -> Response:
    """Correct a source's publisher, title, date or language; `If-Match` is required."""
    doc, version = service.update(session, source_id, patch, expected_version(if_match), who.name)
    return respond(doc, version=version)


@router.delete("/{source_id}", status_code=204, responses=DELETE_ERRORS)
def delete_source(
    source_id: SourceId, session: SessionDep, who: EditorCaller, if_match: IfMatch = None
) -> Response:
    """Delete a source that nothing live cites (409 otherwise)."""
    service.delete(session, source_id, expected_version(if_match), who.name)
    return Response(status_code=204)


@router.get(
    "/{source_id}/revisions", response_model=RevisionList, responses=problem_responses(404, 422)
)
def source_revisions(source_id: SourceId, session: SessionDep) -> Any:
    """Every change to this source."""
    return JSONBytes({"items": service.revisions(session, source_id)})

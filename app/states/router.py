from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, Response

from app.access import EditorCaller
from app.db import SessionDep
from app.json import JSONBytes
from app.revisions.schemas import RevisionList
from app.routing import StrictQueryRoute
from app.schemas import SearchText, StateCode, problem_responses
from app.states import service
from app.states.schemas import StateCreate, StateDetail, StateList
from app.web import MERGE_PATCH, IdempotencyKey, IfMatch, created, expected_version
from app.web import resource_response as respond

router = APIRouter(
    prefix="/v1/states", tags=["States and organisations"], route_class=StrictQueryRoute
)

StateCodePath = Annotated[
    StateCode,
    Path(description="ISO 3166-1 alpha-3 code, in any case.", examples=["DZA"]),
]
Patch = Annotated[
    dict[str, Any],
    Body(
        media_type=MERGE_PATCH,
        description="A JSON merge patch (RFC 7396) of the fields to change.",
        examples=[{"capital": "Bamako"}],
    ),
]
WRITE_ERRORS = problem_responses(401, 403, 404, 409, 410, 412, 422, 428)


@router.get("", response_model=StateList, responses=problem_responses(422))
def list_states(
    session: SessionDep,
    q: Annotated[
        SearchText | None,
        Query(
            max_length=200,
            description="Match a code, a name or any alias, ignoring case and accents.",
            examples=["algerie"],
        ),
    ] = None,
) -> dict[str, Any]:
    """States in the dataset, with their codes, capitals and every known spelling of their names."""
    return {"items": service.list_states(session, q)}


@router.get(
    "/{code}",
    response_model=StateDetail,
    response_class=JSONBytes,
    responses=problem_responses(404, 410, 422),
)
def get_state(code: StateCodePath, session: SessionDep) -> Response:
    """One state, with every membership period it has had (suspensions included)."""
    doc, version = service.get_state(session, code)
    return respond(doc, version=version)


@router.post(
    "",
    response_model=StateDetail,
    status_code=201,
    response_class=JSONBytes,
    responses=problem_responses(401, 403, 409, 422),
)
def create_state(
    data: StateCreate,
    request: Request,
    session: SessionDep,
    who: EditorCaller,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Add a state. Needs the `editor` scope."""
    return created(
        request,
        who,
        idempotency_key,
        data,
        session,
        lambda: service.create(session, data, who.name),
    )


@router.patch(
    "/{code}", response_model=StateDetail, response_class=JSONBytes, responses=WRITE_ERRORS
)
def update_state(
    code: StateCodePath,
    patch: Patch,
    session: SessionDep,
    who: EditorCaller,
    if_match: IfMatch = None,
) -> Response:
    """Change some fields of a state; `If-Match` is required."""
    doc, version = service.update(session, code, patch, expected_version(if_match), who.name)
    return respond(doc, version=version)


@router.delete("/{code}", status_code=204, responses=WRITE_ERRORS)
def delete_state(
    code: StateCodePath, session: SessionDep, who: EditorCaller, if_match: IfMatch = None
) -> Response:
    """Delete a state that no live event, claim or membership refers to (409 otherwise)."""
    service.delete(session, code, expected_version(if_match), who.name)
    return Response(status_code=204)


@router.get("/{code}/revisions", response_model=RevisionList, responses=problem_responses(404, 422))
def state_revisions(code: StateCodePath, session: SessionDep) -> Any:
    """Every change to this state."""
    return JSONBytes({"items": service.revisions(session, code)})

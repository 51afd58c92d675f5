import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, Response

from app.access import EditorCaller
from app.db import SessionDep
from app.json import JSONBytes
from app.organisations import service
from app.organisations.schemas import (
    MembersAsOf,
    MembershipCreate,
    MembershipRead,
    OrganisationCreate,
    OrganisationList,
    OrganisationRead,
)
from app.revisions.schemas import RevisionList
from app.routing import StrictQueryRoute
from app.schemas import IdInPath, OrganisationCode, SearchText, problem_responses
from app.web import MERGE_PATCH, IdempotencyKey, IfMatch, created, expected_version
from app.web import resource_response as respond

router = APIRouter(
    prefix="/v1/organisations", tags=["States and organisations"], route_class=StrictQueryRoute
)
memberships = APIRouter(
    prefix="/v1/memberships", tags=["States and organisations"], route_class=StrictQueryRoute
)

OrgCodePath = Annotated[
    OrganisationCode, Path(description="Organisation code, in any case.", examples=["AES"])
]
MembershipId = Annotated[
    int,
    Path(ge=1, description="The membership's id.", examples=[1]),
    IdInPath("No membership with id {}."),
]
Patch = Annotated[
    dict[str, Any],
    Body(
        media_type=MERGE_PATCH,
        description="A JSON merge patch (RFC 7396) of the fields to change.",
        examples=[{"headquarters": "Tamanrasset"}],
    ),
]
MembershipPatch = Annotated[
    dict[str, Any],
    Body(
        media_type=MERGE_PATCH,
        description="A JSON merge patch (RFC 7396) of the fields to change.",
        examples=[{"end_on": "2025-04-06", "end_precision": "day", "end": "dated"}],
    ),
]
WRITE_ERRORS = problem_responses(401, 403, 404, 410, 412, 422, 428)
# 409 where it can happen: deleting an organisation still in use, a membership edited into a
# duplicate of another.
IN_USE_ERRORS = problem_responses(401, 403, 404, 409, 410, 412, 422, 428)


@router.get("", response_model=OrganisationList, responses=problem_responses(422))
def list_organisations(
    session: SessionDep,
    q: Annotated[
        SearchText | None,
        Query(
            max_length=200,
            description="Match a code, a name (past names too) or an alias.",
            examples=["CEDEAO"],
        ),
    ] = None,
) -> dict[str, Any]:
    """Alliances, economic communities and other bodies, with their names over time."""
    return {"items": service.list_organisations(session, q)}


@router.get(
    "/{code}",
    response_model=OrganisationRead,
    response_class=JSONBytes,
    responses=problem_responses(404, 410, 422),
)
def get_organisation(code: OrgCodePath, session: SessionDep) -> Response:
    """One organisation: kind, founding and dissolution dates with precision, names over time."""
    doc, version = service.get_organisation(session, code)
    return respond(doc, version=version)


@router.get("/{code}/members", response_model=MembersAsOf, responses=problem_responses(404, 422))
def get_members(
    code: OrgCodePath,
    session: SessionDep,
    as_of: Annotated[
        dt.date | None,
        Query(
            description="The day to look at (YYYY-MM-DD). Defaults to today (UTC).",
            examples=["2025-04-10"],
        ),
    ] = None,
) -> dict[str, Any]:
    """Who were the members on a given day, which of them were suspended, and which periods the
    sources leave open."""
    day = as_of or dt.datetime.now(dt.UTC).date()
    return service.members_as_of(session, code, day)


@router.post(
    "",
    response_model=OrganisationRead,
    status_code=201,
    response_class=JSONBytes,
    responses=problem_responses(401, 403, 409, 422),
)
def create_organisation(
    data: OrganisationCreate,
    request: Request,
    session: SessionDep,
    who: EditorCaller,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Add an organisation. Needs the `editor` scope."""
    return created(
        request,
        who,
        idempotency_key,
        data,
        session,
        lambda: service.create_organisation(session, data, who.name),
    )


@router.patch(
    "/{code}", response_model=OrganisationRead, response_class=JSONBytes, responses=WRITE_ERRORS
)
def update_organisation(
    code: OrgCodePath,
    patch: Patch,
    session: SessionDep,
    who: EditorCaller,
    if_match: IfMatch = None,
) -> Response:
    """Change some fields of an organisation; `If-Match` is required."""
    doc, version = service.update_organisation(
        session, code, patch, expected_version(if_match), who.name
    )
    return respond(doc, version=version)


@router.delete("/{code}", status_code=204, responses=IN_USE_ERRORS)
def delete_organisation(
    code: OrgCodePath, session: SessionDep, who: EditorCaller, if_match: IfMatch = None
) -> Response:
    """Delete an organisation that nothing live refers to (409 otherwise)."""
    service.delete_organisation(session, code, expected_version(if_match), who.name)
    return Response(status_code=204)


@router.get("/{code}/revisions", response_model=RevisionList, responses=problem_responses(404, 422))
def organisation_revisions(code: OrgCodePath, session: SessionDep) -> Any:
    """Every change to this organisation."""
    return JSONBytes({"items": service.organisation_revisions(session, code)})


@memberships.get(
    "/{membership_id}",
    response_model=MembershipRead,
    response_class=JSONBytes,
    responses=problem_responses(404, 410, 422),
)
def get_membership(membership_id: MembershipId, session: SessionDep) -> Response:
    """One membership period."""
    doc, version = service.get_membership(session, membership_id)
    return respond(doc, version=version)


@memberships.post(
    "",
    response_model=MembershipRead,
    status_code=201,
    response_class=JSONBytes,
    responses=problem_responses(401, 403, 409, 422),
)
def create_membership(
    data: MembershipCreate,
    request: Request,
    session: SessionDep,
    who: EditorCaller,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Record a membership period (a suspension is a period too). Needs the `editor` scope."""
    return created(
        request,
        who,
        idempotency_key,
        data,
        session,
        lambda: service.create_membership(session, data, who.name),
        location=lambda doc: f"/v1/memberships/{doc['id']}",
    )


@memberships.patch(
    "/{membership_id}",
    response_model=MembershipRead,
    response_class=JSONBytes,
    responses=IN_USE_ERRORS,
)
def update_membership(
    membership_id: MembershipId,
    patch: MembershipPatch,
    session: SessionDep,
    who: EditorCaller,
    if_match: IfMatch = None,
) -> Response:
    """Change a membership period; its organisation and state cannot change."""
    doc, version = service.update_membership(
        session, membership_id, patch, expected_version(if_match), who.name
    )
    return respond(doc, version=version)


@memberships.delete("/{membership_id}", status_code=204, responses=WRITE_ERRORS)
def delete_membership(
    membership_id: MembershipId, session: SessionDep, who: EditorCaller, if_match: IfMatch = None
) -> Response:
    """Delete a membership period."""
    service.delete_membership(session, membership_id, expected_version(if_match), who.name)
    return Response(status_code=204)


@memberships.get(
    "/{membership_id}/revisions",
    response_model=RevisionList,
    responses=problem_responses(404, 422),
)
def membership_revisions(membership_id: MembershipId, session: SessionDep) -> Any:
    """Every change to this membership period."""
    return JSONBytes({"items": service.membership_revisions(session, membership_id)})

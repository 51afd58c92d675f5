import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from app.db import SessionDep
from app.organisations import service
from app.organisations.schemas import MembersAsOf, OrganisationList, OrganisationRead
from app.schemas import problem_responses

router = APIRouter(prefix="/v1/organisations", tags=["States and organisations"])

OrgCodePath = Annotated[
    str,
    Path(pattern=r"^[A-Z0-9][A-Z0-9-]{0,39}$", description="Organisation code.", examples=["AES"]),
]


@router.get("", response_model=OrganisationList, responses=problem_responses(422))
def list_organisations(
    session: SessionDep,
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Match a code, a name (past names too) or an alias.",
            examples=["CEDEAO"],
        ),
    ] = None,
) -> dict[str, Any]:
    """Alliances, economic communities and other bodies, with their names over time."""
    return {"items": service.list_organisations(session, q)}


@router.get("/{code}", response_model=OrganisationRead, responses=problem_responses(404, 422))
def get_organisation(code: OrgCodePath, session: SessionDep) -> dict[str, Any]:
    """One organisation: kind, founding and dissolution dates with precision, names over time."""
    return service.get_organisation(session, code)


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

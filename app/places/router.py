from typing import Annotated, Any

from fastapi import APIRouter, Path

from app.db import SessionDep
from app.json import JSONBytes
from app.places import service
from app.places.schemas import PlaceList, PlaceRead
from app.revisions.schemas import RevisionList
from app.routing import StrictQueryRoute
from app.schemas import PlaceCodeText, problem_responses

router = APIRouter(prefix="/v1/places", tags=["Places"], route_class=StrictQueryRoute)


@router.get("", response_model=PlaceList)
def list_places(session: SessionDep) -> dict[str, Any]:
    """Named places, with every spelling the sources use (Tinzaouaten, Tin Zaouatine, …)."""
    return {"items": service.list_places(session)}


PlaceCode = Annotated[
    PlaceCodeText,
    Path(
        description="The place's code, a slug in any case (listed by `GET /v1/places`).",
        examples=["tinzaouaten"],
    ),
]


@router.get("/{code}", response_model=PlaceRead, responses=problem_responses(404, 422))
def get_place(code: PlaceCode, session: SessionDep) -> dict[str, Any]:
    """One place and its aliases."""
    return service.get_place(session, code)


@router.get("/{code}/revisions", response_model=RevisionList, responses=problem_responses(404, 422))
def place_revisions(code: PlaceCode, session: SessionDep) -> Any:
    """Every change to this place (places are curated in the seed files)."""
    return JSONBytes({"items": service.revisions(session, code)})

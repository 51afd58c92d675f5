from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from app.db import SessionDep
from app.schemas import problem_responses
from app.states import service
from app.states.schemas import StateDetail, StateList

router = APIRouter(prefix="/v1/states", tags=["States and organisations"])

StateCodePath = Annotated[
    str,
    Path(
        description="ISO 3166-1 alpha-3 code.",
        pattern=r"^[A-Z]{3}$",
        examples=["DZA"],
    ),
]


@router.get("", response_model=StateList, responses=problem_responses(422))
def list_states(
    session: SessionDep,
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Match a code, a name or any alias, ignoring case and accents.",
            examples=["algerie"],
        ),
    ] = None,
) -> dict[str, Any]:
    """States in the dataset, with their codes, capitals and every known spelling of their names."""
    return {"items": service.list_states(session, q)}


@router.get("/{code}", response_model=StateDetail, responses=problem_responses(404, 422))
def get_state(code: StateCodePath, session: SessionDep) -> dict[str, Any]:
    """One state, with every membership period it has had (suspensions included)."""
    return service.get_state(session, code)

from typing import Annotated

from fastapi import APIRouter, Path

from app.db import SessionDep
from app.events import service
from app.events.schemas import EventDetail
from app.json import JSONBytes
from app.schemas import problem_responses

router = APIRouter(prefix="/v1/events", tags=["Timeline"])


@router.get(
    "/{id}",
    response_model=EventDetail,
    response_class=JSONBytes,
    responses=problem_responses(404, 410, 422),
)
def get_event(
    id: Annotated[
        str,
        Path(
            pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$",
            max_length=120,
            description="The event's stable id.",
            examples=["2025-04-01-algeria-shoots-down-malian-drone"],
        ),
    ],
    session: SessionDep,
) -> JSONBytes:
    """One event with its participants, location, claims, sources, and its links to other events in
    both directions (what it answered, and what answered it)."""
    return JSONBytes(service.get_detail(session, id))

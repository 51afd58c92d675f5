from typing import Annotated, Any

from fastapi import APIRouter, Query

from app.db import SessionDep
from app.json import JSONBytes
from app.revisions import service
from app.revisions.schemas import ChangeFeed
from app.routing import StrictQueryRoute
from app.schemas import problem_responses

router = APIRouter(
    prefix="/v1/changes", tags=["Revisions and changes"], route_class=StrictQueryRoute
)


@router.get(
    "", response_model=ChangeFeed, response_class=JSONBytes, responses=problem_responses(422)
)
def changes(
    session: SessionDep,
    since: Annotated[
        str | None,
        Query(max_length=100, description="`next_since` from the previous page; omit to start."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Changes per page, 1 to 1000.")] = 100,
) -> Any:
    """Every create, update and delete of every resource, in commit order.

    Replaying the feed from the start rebuilds an exact mirror of the dataset: apply each
    `data` under (`resource`, `id`), and remove the resource on a delete (`data` is null).
    """
    return JSONBytes(service.changes(session, since, limit))

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from app.access import AUDITED, AdminCaller
from app.audit import service
from app.audit.schemas import AuditList
from app.db import SessionDep
from app.routing import StrictQueryRoute
from app.schemas import Instant, RowId, problem_responses

router = APIRouter(
    prefix="/v1/audit", tags=["Audit"], route_class=StrictQueryRoute, dependencies=AUDITED
)


@router.get("", response_model=AuditList, responses=problem_responses(401, 403, 422))
def list_audit(
    session: SessionDep,
    _: AdminCaller,
    response: Response,
    key: Annotated[RowId | None, Query(description="Only entries made with this key id.")] = None,
    action: Annotated[
        str | None,
        Query(max_length=100, description="Only this operation, e.g. `create_event`."),
    ] = None,
    since: Annotated[
        Instant | None, Query(description="At or after this instant (UTC if no offset).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Page size, 1 to 500.")] = 50,
    cursor: Annotated[RowId | None, Query(description="`next_cursor` of the last page.")] = None,
) -> dict[str, Any]:
    """Every acknowledged write and admin action, newest first (admin scope).

    Each entry is written in the same transaction as the change, so every acknowledged write has
    one and a failed write has none. Refused (401, 403) and failed attempts are not here: they
    are in the service's logs, as JSON lines with `"audit": true` and the same fields.
    """
    response.headers["Cache-Control"] = "no-store"
    return service.list_entries(
        session, key_id=key, action=action, since=since, limit=limit, cursor=cursor
    )

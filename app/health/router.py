from typing import Any

from fastapi import APIRouter

from app.db import SessionDep
from app.health import service
from app.health.schemas import Health, Readiness
from app.routing import StrictQueryRoute
from app.schemas import problem_responses

router = APIRouter(tags=["Health"], route_class=StrictQueryRoute)


@router.get("/healthz", response_model=Health)
def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz", response_model=Readiness, responses=problem_responses(503))
def readyz(session: SessionDep) -> dict[str, Any]:
    """Readiness: the database answers and its migrations are at head."""
    return service.readiness(session)

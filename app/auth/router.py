from typing import Annotated, Any

from fastapi import APIRouter, Path

from app.access import AUDITED, AdminCaller
from app.auth import service
from app.auth.schemas import KeyCreate, KeyCreated, KeyList, KeyRevoked
from app.db import SessionDep
from app.routing import StrictQueryRoute
from app.schemas import IdInPath, problem_responses

router = APIRouter(
    prefix="/v1/keys", tags=["API keys"], route_class=StrictQueryRoute, dependencies=AUDITED
)


@router.get("", response_model=KeyList, responses=problem_responses(401, 403))
def list_keys(session: SessionDep, _: AdminCaller) -> dict[str, Any]:
    """Every API key, revoked ones included. Tokens are never shown again after creation."""
    return {"items": service.list_keys(session)}


@router.post(
    "", response_model=KeyCreated, status_code=201, responses=problem_responses(401, 403, 409, 422)
)
def create_key(data: KeyCreate, session: SessionDep, _: AdminCaller) -> dict[str, Any]:
    """Mint a key. The `token` in this response is the only copy: store it now."""
    key, token = service.create_key(session, data.name, data.scopes)
    return {**service.key_read(key), "token": token}


@router.delete(
    "/{key_id}", response_model=KeyRevoked, responses=problem_responses(401, 403, 404, 422)
)
def revoke_key(
    key_id: Annotated[
        int, Path(ge=1, description="The key's id."), IdInPath("No API key with id {}.")
    ],
    session: SessionDep,
    _: AdminCaller,
) -> dict[str, Any]:
    """Revoke a key at once, and disable its webhook endpoints (listed in the answer and in the
    audit log). Revoking twice is harmless."""
    return service.revoke_key(session, key_id)

"""API keys: minting, listing, revocation. Recognising a key on a request is app/callers.py."""

import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.callers import DISPLAY_CHARS, TOKEN_PREFIX, Scope, hash_token
from app.db import utcnow
from app.errors import Conflict, NotFound
from app.models import ApiKey
from app.webhooks import service as webhook_service


def create_key(session: Session, name: str, scopes: list[Scope]) -> tuple[ApiKey, str]:
    """Mint a key. The token is returned once and never stored."""
    if session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
        raise Conflict(f"A key named {name!r} already exists.")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        name=name,
        prefix=token[:DISPLAY_CHARS],
        token_hash=hash_token(token),
        scopes=" ".join(sorted({s.value for s in scopes})),
    )
    session.add(key)
    session.flush()
    return key, token


def key_read(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "scopes": key.scopes.split(),
        "created_at": key.created_at,
        "last_used_at": key.last_used_at,
        "revoked_at": key.revoked_at,
    }


def list_keys(session: Session) -> list[dict[str, Any]]:
    return [key_read(k) for k in session.scalars(select(ApiKey).order_by(ApiKey.id))]


def revoke_key(session: Session, key_id: int) -> dict[str, Any]:
    """Revoke a key, and switch off its webhook endpoints: a revoked key's subscriptions must
    not go on receiving data. Revoking twice is harmless and answers the same."""
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"No API key with id {key_id}.")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.flush()
    disabled = webhook_service.disable_for_revoked_key(session, key.id)
    return {**key_read(key), "webhook_endpoints_disabled": disabled}

"""API keys: minting, verification, listing, revocation."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import Conflict, NotFound
from app.models import ApiKey

TOKEN_PREFIX = "dtl_"  # noqa: S105 - a public marker, not a secret
DISPLAY_CHARS = 12


class Scope(StrEnum):
    editor = "editor"
    webhooks = "webhooks"
    admin = "admin"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is making a write: the key's id, name and scopes."""

    key_id: int
    name: str
    scopes: frozenset[str]


def hash_token(token: str) -> str:
    # Tokens carry 256 bits of randomness, so a fast hash is enough: there is nothing to
    # brute-force that a slow hash would protect.
    return hashlib.sha256(token.encode()).hexdigest()


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


def authenticate(session: Session, token: str) -> Caller | None:
    """The live key for this token, or None. Marks the key as used."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    digest = hash_token(token)
    key = session.scalars(
        select(ApiKey).where(ApiKey.prefix == token[:DISPLAY_CHARS], ApiKey.revoked_at.is_(None))
    ).first()
    # Compared in constant time; the prefix lookup narrows the row, the digest decides.
    if key is None or not hmac.compare_digest(key.token_hash, digest):
        return None
    key.last_used_at = utcnow()
    return Caller(key_id=key.id, name=key.name, scopes=frozenset(key.scopes.split()))


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
    # Imported here, not at the top: the webhooks service imports this module.
    from app.webhooks import service as webhook_service

    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"No API key with id {key_id}.")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.flush()
    disabled = webhook_service.disable_for_revoked_key(session, key.id)
    return {**key_read(key), "webhook_endpoints_disabled": disabled}
